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

/// Headless Firefox (Debian's `firefox-esr`) as a test peer, driven through WebDriver BiDi, which Firefox speaks
/// itself (no geckodriver).
public enum Firefox {
    /// Where Debian installs it; `FIREFOX` in the environment overrides it.
    public static var executable: String {
        ProcessInfo.processInfo.environment["FIREFOX"] ?? "/usr/bin/firefox-esr"
    }

    /// Whether the browser is installed.
    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: self.executable)
    }

    /// Preferences for a test profile: no first-run pages, no updates, no telemetry, no requests to Mozilla's
    /// services, and muted autoplay allowed (the preview starts by itself, as in Chromium).
    static let preferences: [(String, String)] = [
        ("browser.shell.checkDefaultBrowser", "false"),
        ("browser.startup.homepage_override.mstone", #""ignore""#),
        ("browser.startup.page", "0"),
        ("browser.aboutwelcome.enabled", "false"),
        ("startup.homepage_welcome_url", #""about:blank""#),
        ("browser.tabs.warnOnClose", "false"),
        ("app.update.disabledForTesting", "true"),
        ("app.update.auto", "false"),
        ("app.normandy.enabled", "false"),
        ("extensions.update.enabled", "false"),
        ("extensions.getAddons.cache.enabled", "false"),
        ("datareporting.policy.dataSubmissionEnabled", "false"),
        ("datareporting.healthreport.uploadEnabled", "false"),
        ("toolkit.telemetry.enabled", "false"),
        ("toolkit.telemetry.reportingpolicy.firstRun", "false"),
        ("messaging-system.rsexperimentloader.enabled", "false"),
        ("services.settings.server", #""data:,#remote-settings-dummy/v1""#),
        ("browser.safebrowsing.malware.enabled", "false"),
        ("browser.safebrowsing.phishing.enabled", "false"),
        ("browser.safebrowsing.downloads.enabled", "false"),
        ("network.captive-portal-service.enabled", "false"),
        ("network.connectivity-service.enabled", "false"),
        ("network.dns.disablePrefetch", "true"),
        ("network.prefetch-next", "false"),
        ("media.autoplay.default", "0"),
        ("media.autoplay.blocking_policy", "0"),
    ]

    /// The command-line arguments to run headless with the profile in `profileDirectory` and WebDriver BiDi on an
    /// ephemeral port of 127.0.0.1. The BiDi WebSocket refuses a handshake whose `Origin` it does not know; the
    /// WebSocket client sends `ws://127.0.0.1`, so that origin is allowed.
    static func arguments(profileDirectory: String) -> [String] {
        [
            "--headless", "--no-remote", "--profile", profileDirectory, "--remote-debugging-port=0",
            "--remote-allow-origins=ws://127.0.0.1", "--window-size=1280,800", "about:blank",
        ]
    }

    /// Starts headless Firefox with a fresh profile, runs `body` while it runs, then kills the browser (its whole
    /// process group) and removes its profile, whether `body` returns or throws.
    public static func withBrowser<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RunningProcess) async throws -> Result
    ) async throws -> Result {
        try await BrowserSlots.acquire()
        defer { BrowserSlots.release() }
        let profile = FileManager.default.temporaryDirectory
            .appendingPathComponent("liverelay-firefox-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let userJS = self.preferences.map { "user_pref(\"\($0.0)\", \($0.1));\n" }.joined()
        try userJS.write(toFile: profile + "/user.js", atomically: true, encoding: .utf8)
        return try await withRunningProcess(
            self.executable,
            arguments: self.arguments(profileDirectory: profile),
            standardError: .capture(limit: 256 * 1024),
            isolation: isolation,
            body
        )
    }

    /// The BiDi WebSocket's port, from the line Firefox prints on standard error, once it has.
    public static func webDriverBiDiPort(in standardError: String) -> Int? {
        guard
            let line = standardError.split(separator: "\n").first(where: { $0.contains("WebDriver BiDi listening on") }
            ),
            let start = line.range(of: "ws://127.0.0.1:")
        else {
            return nil
        }
        return Int(line[start.upperBound...].prefix { $0.isNumber })
    }
}
