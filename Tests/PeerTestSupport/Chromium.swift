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

/// Headless Chromium (Debian's `chromium`) as a test peer: a browser that opens a page and keeps it running.
public enum Chromium {
    /// Where Debian installs it; `CHROMIUM` in the environment overrides it.
    public static var executable: String {
        ProcessInfo.processInfo.environment["CHROMIUM"] ?? "/usr/bin/chromium"
    }

    /// Whether the browser is installed.
    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: self.executable)
    }

    /// The command-line arguments to open `url` headless, with a fresh profile in `profileDirectory`, muted
    /// autoplay allowed, no sandbox (tests run as root in containers) and no GPU. The DevTools WebSocket (on an
    /// ephemeral port of 127.0.0.1) takes any Origin, since WebSocket clients send one that Chromium refuses otherwise.
    /// `getUserMedia` gets Chromium's fake camera (a test pattern with a frame counter) and microphone (a beep), and
    /// its permission prompt is accepted without asking: what the go-live page publishes in tests.
    static func arguments(url: String, profileDirectory: String) -> [String] {
        [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
            "--autoplay-policy=no-user-gesture-required", "--remote-debugging-port=0",
            "--remote-allow-origins=*",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            "--user-data-dir=\(profileDirectory)", "--window-size=1280,800", url,
        ]
    }

    /// Opens `url` in headless Chromium, runs `body` while the page runs, then kills the browser (its whole process
    /// group) and removes its profile, whether `body` returns or throws.
    public static func withPage<Result>(
        _ url: String,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RunningProcess) async throws -> Result
    ) async throws -> Result {
        try await BrowserSlots.acquire()
        defer { BrowserSlots.release() }
        let profile = FileManager.default.temporaryDirectory
            .appendingPathComponent("liverelay-chromium-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: profile) }
        return try await withRunningProcess(
            self.executable,
            arguments: self.arguments(url: url, profileDirectory: profile),
            isolation: isolation,
            body
        )
    }
}
