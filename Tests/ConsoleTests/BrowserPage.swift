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

import Foundation
import PeerTestSupport
import Testing

/// A key a test presses: the browser's own key events, as a person's keyboard sends them.
enum Key: Sendable, Hashable {
    case tab
    case shiftTab
    case enter
    case space
    case escape
    case backspace
    /// Each character typed as its own key press.
    case text(String)
}

/// A cookie as the browser holds it (the page itself cannot read an HttpOnly one).
struct BrowserCookie: Sendable, Hashable {
    var value: String
    var httpOnly: Bool
    /// `strict`, `lax` or `none`, lowercased.
    var sameSite: String?
}

/// A page in a real browser that a test drives: Chromium through the DevTools protocol (``DevToolsPage``), Firefox
/// through WebDriver BiDi (``BiDiPage``). A journey written against this runs in both.
protocol BrowserPage: Sendable {
    /// The browser's name, for messages.
    var browserName: String { get }
    /// Evaluates `expression` (it may `await`) in the page and decodes its value, passed through `JSON.stringify`.
    func evaluate<T: Decodable>(_ expression: String, as type: T.Type) async throws -> T
    /// Loads `url` in the page.
    func navigate(_ url: String) async throws
    /// Saves what the page shows as a PNG at `path`.
    func screenshot(_ path: String) async throws
    /// The cookie named `name` that the browser would send to the page's origin, if any.
    func cookie(named name: String) async throws -> BrowserCookie?
    /// Presses `keys` one after the other, as key events the browser dispatches to whatever has the focus.
    func press(_ keys: [Key]) async throws
}

extension BrowserPage {
    func evaluate<T: Decodable>(_ expression: String) async throws -> T {
        try await self.evaluate(expression, as: T.self)
    }

    /// Runs `statement` in the page for its effect.
    func run(_ statement: String) async throws {
        _ = try await self.evaluate("(async () => { \(statement); return true })()", as: Bool.self)
    }

    func press(_ keys: Key...) async throws {
        try await self.press(keys)
    }
}

/// `expression` wrapped so that the page answers its awaited value as a JSON string.
func browserPageExpression(_ expression: String) -> String {
    "(async () => JSON.stringify(await (async () => (\(expression)))()))()"
}

/// A browser test's failure, said in words.
struct BrowserTestError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

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
