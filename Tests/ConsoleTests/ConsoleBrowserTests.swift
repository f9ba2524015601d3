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

import AsyncHTTPClient
import BrowserTestSupport
import Console
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PeerTestSupport
import Testing

/// `liverelay local` as a user starts it, with its console, on ephemeral ports of 127.0.0.1.
struct LocalModeProcess: Sendable {
    let process: RunningProcess
    let consoleURL: String
    let stateDirectory: String
    let streamsFile: String

    static func with<Result: Sendable>(
        in directory: String,
        adminPassword: String,
        _ body: @Sendable (LocalModeProcess) async throws -> Result
    ) async throws -> Result {
        let streamsFile = directory + "/streams.yaml"
        try "# Streams made in the console\n".write(toFile: streamsFile, atomically: true, encoding: .utf8)
        let httpPort = try freeTCPPort()
        let base = try freeTCPPort()
        let portRange = base < 65000 ? "\(base)-\(base + 20)" : "\(base - 20)-\(base)"
        let arguments = [
            "local", "-f", streamsFile, "--state-dir", directory + "/state", "--listen-host", "127.0.0.1",
            "--http-listen", "127.0.0.1:\(httpPort)", "--port-range", portRange,
            "--console-admin-password", adminPassword, "--relay-log-level", "warning", "--webrtc-udp-port", "0",
        ]
        return try await withRunningProcess(
            try liverelayExecutable(),
            arguments: arguments,
            standardOutput: .capture(limit: 256 * 1024)
        ) { process in
            let url = "http://127.0.0.1:\(httpPort)/"
            guard await process.waitForOutput(containing: "liverelay local: console \(url)") else {
                throw PeerError.startFailed(
                    "liverelay local printed no console URL: \(process.standardOutputSoFar) \(process.standardErrorSoFar)"
                )
            }
            let local = LocalModeProcess(
                process: process,
                consoleURL: url,
                stateDirectory: directory + "/state",
                streamsFile: streamsFile
            )
            let result: Result
            do {
                result = try await body(local)
            } catch {
                process.terminate()
                _ = await process.waitForExit(timeout: .seconds(20))
                throw error
            }
            process.terminate()
            let exit = await process.waitForExit(timeout: .seconds(20))
            #expect(exit?.succeeded == true, "liverelay local ended: \(exit.map { "\($0)" } ?? "not in time")")
            return result
        }
    }
}

/// An HTTP request to the console outside the browser, with a given session cookie.
func consoleRequest(
    _ url: String,
    method: HTTPMethod = .GET,
    cookie: String?,
    csrf: String? = nil,
    body: String? = nil
) async throws -> (status: Int, body: String) {
    var request = HTTPClientRequest(url: url)
    request.method = method
    if let cookie {
        request.headers.add(name: "Cookie", value: "liverelay_session=\(cookie)")
    }
    if let csrf {
        request.headers.add(name: "X-CSRF-Token", value: csrf)
    }
    if let body {
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
    }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let bytes = try await response.body.collect(upTo: 1 << 20)
    return (Int(response.status.code), String(buffer: bytes))
}

@Suite("Console in a real browser against local mode", .timeLimit(.minutes(10)))
struct ConsoleBrowserTests {
    /// Where the test saves README screenshots (`LIVERELAY_CONSOLE_SCREENSHOTS=docs`), if anywhere.
    static let screenshotDirectory = ProcessInfo.processInfo.environment["LIVERELAY_CONSOLE_SCREENSHOTS"]

    @Test(
        "Sign in, create a stream with two targets, go live, preview, switch a target, go offline, new key, sign out",
        arguments: WebBrowser.allCases
    )
    func journey(in browser: WebBrowser) async throws {
        try browser.require()
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("liverelay-console-journey-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        try await withNginxRTMP(applications: ["one", "two"]) { nginx in
            try await LocalModeProcess.with(in: directory, adminPassword: "admin-password-1") { local in
                // A second user, made as an operator would: `liverelay console users add`.
                let add = try RunningProcess.launch(
                    try liverelayExecutable(),
                    arguments: ["console", "users", "add", "bob", "--state-dir", local.stateDirectory],
                    standardOutput: .capture(limit: 64 * 1024)
                )
                let added = await add.waitForExit()
                #expect(added.succeeded, "\(added)")
                let bobPassword = try #require(
                    added.standardOutput.split(separator: "\n").first { $0.hasPrefix("password (shown once): ") }?
                        .dropFirst("password (shown once): ".count)
                )
                try await browser.withPage(local.consoleURL, screenshotName: "console-journey-failure") { page in
                    try await Self.journey(page, local: local, nginx: nginx, bobPassword: String(bobPassword))
                }
            }
        }
    }

    static func journey(
        _ page: any BrowserPage,
        local: LocalModeProcess,
        nginx: NginxRTMP,
        bobPassword: String
    ) async throws {
        typealias B = BrowserSteps
        let card = #"[data-stream="default/show"]"#
        try await B.screenshot(page, "console-sign-in.png")
        try await B.signIn(page, "admin", "admin-password-1")
        try await B.expectAccessibleNames(page, "no stream yet")

        // Create a stream with two targets, keys in password fields.
        try await B.createStream(
            page,
            card: card,
            name: "show",
            targets: [("one", nginx.url(app: "one"), "key-one"), ("two", nginx.url(app: "two"), "key-two")],
            beforeSaving: {
                try await B.expectAccessibleNames(page, "the editor with two targets")
                try await B.screenshot(page, "console-edit.png")
            }
        )
        #expect(try await B.text(page, "\(card) .phase") == "Suspended")
        try await B.expectAccessibleNames(page, "a suspended stream")

        // Go Live allows publishing; the key is revealed only on request.
        try await B.click(page, "\(card) .s-live")
        try await B.waitForPhase(page, card: card, "Idle")
        let (ingest, key) = try await B.revealKey(page, card: card)
        try await B.expectAccessibleNames(page, "an idle stream, its key revealed")

        try await FFmpeg.withPublisher(to: "\(ingest)/\(key)", duration: 300, size: "640x360") { ffmpeg in
            try await B.expectLive(page, card: card, nginx: nginx)
            try await B.waitFor(page, "live figures", "!!document.querySelector('\(card) .stat-frame-rate')")
            try await B.expectPreviewPlaying(page, card: card)
            try await B.switchTargetOneOff(page, card: card, nginx: nginx)
            #expect(ffmpeg.hasExited == false)
            // For the README: the key hidden again, one target off, the other pushing, the preview playing.
            try await B.click(page, "\(card) .s-reveal")
            try await B.waitFor(
                page,
                "the key hidden",
                "document.querySelector('\(card) .s-key').type === 'password'"
            )
            try await B.expectAccessibleNames(page, "a live stream with its preview, one target off")
            try await B.screenshot(page, "console-live.png")

            // Go Offline: the relay stops, a new publish is refused.
            try await B.click(page, "\(card) .s-live")
            try await B.waitForPhase(page, card: card, "Suspended")
            _ = await ffmpeg.waitForExit(timeout: .seconds(30))
        }
        try await B.expectPublishRefusedOffline(to: "\(ingest)/\(key)")

        // New key: once live again, the old key stops working at once and the new one works.
        try await B.click(page, "\(card) .s-live")
        try await B.waitForPhase(page, card: card, "Idle")
        try await page.run("window.confirm = () => true")  // the page asks before replacing the key
        try await B.click(page, "\(card) .s-new-key")
        try await B.waitFor(
            page,
            "the key hidden after the new one",
            "document.querySelector('\(card) .s-key').type === 'password'"
        )
        // The key was hidden before New key too, so the wait above does not tell that the new key's answer came:
        // a Reveal may show the old key, or be hidden again by that answer. Press Reveal (it toggles) until the
        // field shows a key that is not the old one.
        let newKey = try await eventually(
            "the new key revealed",
            timeout: .seconds(30),
            interval: .milliseconds(500)
        ) { () -> String? in
            let shown = try await page.evaluate(
                "document.querySelector('\(card) .s-key').type === 'text' ? document.querySelector('\(card) .s-key').value : ''",
                as: String.self
            )
            if shown.count == 64 && shown != key {
                return shown
            }
            try await B.click(page, "\(card) .s-reveal")
            return nil
        }
        try await eventually("the old key refused", timeout: .seconds(60), interval: .milliseconds(500)) {
            let old = try FFmpeg.publish(to: "\(ingest)/\(key)", duration: 3)
            return !(await old.waitForExit(timeout: .seconds(30))?.succeeded ?? true)
        }
        let withNewKey = try FFmpeg.publish(to: "\(ingest)/\(newKey)", duration: 2)
        let accepted = await withNewKey.waitForExit(timeout: .seconds(60))
        #expect(accepted?.succeeded == true, "\(accepted.map { "\($0)" } ?? "no exit")")

        // Sign out: the session no longer works, from the browser or elsewhere.
        try await B.signOut(page, consoleURL: local.consoleURL)
        try await B.expectAccessibleNames(page, "signed out")

        // Bob sees none of it, in the page and through the API.
        try await B.expectHidden(
            page,
            card: card,
            streamURL: local.consoleURL + "api/streams/default/show",
            from: "bob",
            password: bobPassword
        )
        let file = try String(contentsOfFile: local.streamsFile, encoding: .utf8)
        #expect(file.contains("name: show"))
        #expect(try await page.evaluate("fetch('/api/streams/default/show').then(r => r.status)", as: Int.self) == 404)
    }
}
