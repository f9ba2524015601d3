//===----------------------------------------------------------------------===//
//
// This source file is part of the liverelay open source project
//
// Copyright (c) 2026 the liverelay project authors
// Licensed under Apache License v2.0
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import BrowserTestSupport
import Foundation
import PeerTestSupport
import Testing

/// The browsers the console is tested in.
enum WebBrowser: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case chromium
    case firefox

    var testDescription: String { self == .chromium ? "Chromium" : "Firefox" }

    var executable: String {
        switch self {
        case .chromium: Chromium.executable
        case .firefox: Firefox.executable
        }
    }

    var isAvailable: Bool {
        switch self {
        case .chromium: Chromium.isAvailable
        case .firefox: Firefox.isAvailable
        }
    }

    /// Fails the test (a missing browser is a missing peer) unless the browser is installed.
    func require(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let package = self == .chromium ? "chromium" : "firefox-esr"
        try #require(
            self.isAvailable,
            "headless \(self.testDescription) (Debian's \(package)) is needed at \(self.executable)",
            sourceLocation: sourceLocation
        )
    }

    /// Opens `url` in this browser, headless, runs `body` with the page, then stops the browser, whatever happens.
    /// Should `body` throw, a screenshot of the page is saved first and its path recorded as an issue.
    func withPage<Result: Sendable>(
        _ url: String,
        screenshotName: String,
        _ body: @escaping @Sendable (any BrowserPage) async throws -> Result
    ) async throws -> Result {
        let guarded: @Sendable (any BrowserPage) async throws -> Result = { page in
            do {
                return try await body(page)
            } catch {
                let path = FileManager.default.temporaryDirectory
                    .appendingPathComponent(
                        "\(screenshotName)-\(self.rawValue)-\(UInt32.random(in: 0...UInt32.max)).png"
                    )
                    .path
                try? await page.screenshot(path)
                var message = "screenshot of the failure in \(self.testDescription): \(path)"
                if let log = (page as? BiDiPage)?.log.lines, !log.isEmpty {
                    message += "\nthe page logged:\n" + log.joined(separator: "\n")
                }
                Issue.record(Comment(rawValue: message))
                throw error
            }
        }
        switch self {
        case .chromium: return try await withDevToolsPage(url) { try await guarded($0) }
        case .firefox: return try await withBiDiPage(url) { try await guarded($0) }
        }
    }
}
