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
import Foundation
import NIOCore
import NIOHTTP1
import PeerTestSupport
import Testing

/// The go-live page (`GET /go-live/NAMESPACE/NAME`) of `liverelay local`, the command, in headless Chromium with its
/// fake camera and microphone: typed key, keyboard Start and Stop, nginx-rtmp as the target, ffprobe on what it
/// recorded.
@Suite("The go-live page in local mode", .serialized, .timeLimit(.minutes(5)))
struct GoLivePageTests {
    @Test("Chromium goes live from the page for 20 s: nginx records H.264 and AAC in step; Stop sends DELETE")
    func goLive() async throws {
        try #require(Chromium.isAvailable, "headless Chromium (Debian's chromium) is needed at \(Chromium.executable)")
        try await withNginxRTMP(applications: ["golive"]) { nginx in
            let port = try freeTCPPort()
            let ingestKey = makeTestKey("ingest")
            let targetKey = makeTestKey("target")
            let yaml = liveStreamYAML(
                name: "cam",
                port: port,
                ingestKey: ingestKey,
                target: (nginx.url(app: "golive"), targetKey)
            )
            let published = try await withLocalCommand(yaml: yaml, port: port, secrets: [ingestKey, targetKey]) {
                local,
                base in
                let page = try await HTTPClient.shared.execute(
                    HTTPClientRequest(url: "\(base)/go-live/default/cam"),
                    timeout: .seconds(10)
                )
                #expect(page.status == .ok)
                let policy = page.headers["Content-Security-Policy"].first ?? ""
                #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "\(policy)")

                return try await withDevToolsPage("\(base)/go-live/default/cam") { page in
                    try await Self.waitForDevices(page)
                    try await Self.typeKeyAndStart(page, key: ingestKey)
                    let state = try await Self.waitForState(page, in: ["live", "error"], timeout: .seconds(60))
                    try #require(state.state == "live", "the page says: \(state.text)")
                    try await nginx.waitForPublishStarted(app: "golive", stream: targetKey, timeout: .seconds(30))
                    let frameRate: Double = try await page.evaluate(
                        "document.getElementById('preview').srcObject.getVideoTracks()[0].getSettings().frameRate"
                    )
                    // What the recording is checked for: 20 s of media.
                    try await Task.sleep(for: .seconds(20))

                    // Stop, from the keyboard: DELETE on the session's Location ends the publish at once.
                    try await page.run("document.getElementById('stop').focus()")
                    try await page.press(.space)
                    let stopped = try await Self.waitForState(page, in: ["idle"], timeout: .seconds(10))
                    #expect(stopped.text == "Idle")
                    try await nginx.waitForPublishEnded(app: "golive", stream: targetKey)
                    // The log (standard error) says so.
                    try await eventually("the gateway's log of the DELETE", timeout: .seconds(10)) {
                        local.standardErrorSoFar.contains("WHIP session ended by DELETE")
                    }

                    let url: String = try await page.evaluate("location.href")
                    #expect(!url.contains(ingestKey), "the key went into the page's URL")
                    #expect(url == "\(base)/go-live/default/cam")
                    let stored: Int = try await page.evaluate("localStorage.length + sessionStorage.length")
                    #expect(stored == 0)
                    return frameRate
                }
            }

            let info = try await FFprobe.inspect(nginx.recordingPath(app: "golive", stream: targetKey))
            #expect(info.video?.codecName == "h264", "\(info)")
            #expect(info.audio?.codecName == "aac", "\(info)")
            #expect(info.streams.count == 2, "\(info)")
            let expected = published * 20
            let frames = Double(info.video?.frameCount ?? 0)
            #expect(
                frames >= 0.9 * expected,
                "\(frames) video frames of \(expected) at \(published) fps: \(info)"
            )
            let videoStart = try #require(info.video?.startTime, "\(info)")
            let audioStart = try #require(info.audio?.startTime, "\(info)")
            // The ingest starts both tracks at the first keyframe and sends them in timestamp order, so the
            // recording's audio starts within one AAC frame (21 ms) of its video.
            #expect(abs(videoStart - audioStart) < 0.1, "video starts at \(videoStart) s, audio at \(audioStart) s")
            // Chromium makes keyframes only when asked: the gateway asks before the last is 2 s old, so every GOP
            // keeps AWS IVS's rule (with the relay's one frame of slack).
            let keyframes = try await FFprobe.keyframeTimes(nginx.recordingPath(app: "golive", stream: targetKey))
            let gaps = zip(keyframes.dropFirst(), keyframes).map { $0 - $1 }
            #expect(keyframes.count >= 8, "keyframes at \(keyframes)")
            #expect((gaps.max() ?? 0) <= 2.05, "keyframes at \(keyframes)")
        }
    }

    @Test("A wrong key shows the gateway's 401 reason in the page's state, and the page can start again")
    func wrongKey() async throws {
        try #require(Chromium.isAvailable, "headless Chromium (Debian's chromium) is needed at \(Chromium.executable)")
        let port = try freeTCPPort()
        let ingestKey = makeTestKey("ingest")
        let wrongKey = makeTestKey("wrong")
        let yaml = liveStreamYAML(name: "cam", port: port, ingestKey: ingestKey)
        try await withLocalCommand(yaml: yaml, port: port, secrets: [ingestKey, wrongKey]) { _, base in
            try await withDevToolsPage("\(base)/go-live/default/cam") { page in
                try await Self.waitForDevices(page)
                try await Self.typeKeyAndStart(page, key: wrongKey)
                let state = try await Self.waitForState(page, in: ["error", "live"], timeout: .seconds(60))
                #expect(state.state == "error")
                #expect(state.text.contains("401"), "the page says: \(state.text)")
                #expect(state.text.contains("The relay refused the stream key."), "the page says: \(state.text)")
                // Not retried: a wrong key stays wrong. Start is enabled again for the right one.
                let startEnabled: Bool = try await page.evaluate("!document.getElementById('start').disabled")
                #expect(startEnabled)
                let url: String = try await page.evaluate("location.href")
                #expect(!url.contains(wrongKey))
            }
        }
    }

    // MARK: Steps

    struct PageState: Decodable {
        var state: String
        var text: String
    }

    /// Until the camera and microphone selects list the fake devices (after permission).
    static func waitForDevices(_ page: DevToolsPage) async throws {
        do {
            try await eventually("the page lists the camera and microphone", timeout: .seconds(30)) {
                let ready: Bool = try await page.evaluate(
                    "document.getElementById('camera')?.disabled === false"
                        + " && document.getElementById('microphone')?.disabled === false"
                        + " && document.getElementById('preview')?.srcObject != null"
                )
                return ready
            }
        } catch {
            let shown: String? = try? await page.evaluate(
                "location.href + ': ' + (document.getElementById('state')?.textContent ?? document.title)"
            )
            throw BrowserTestError("\(error); the page shows \(shown ?? "nothing")")
        }
    }

    /// Types `key` into the password input as key presses and starts with Enter, as a person would.
    static func typeKeyAndStart(_ page: DevToolsPage, key: String) async throws {
        try await page.run("document.getElementById('key').focus()")
        try await page.press(.text(key), .enter)
    }

    static func waitForState(
        _ page: DevToolsPage,
        in states: Set<String>,
        timeout: Duration
    ) async throws -> PageState {
        try await eventually("the page's state in \(states.sorted())", timeout: timeout, interval: .milliseconds(100)) {
            let state: PageState = try await page.evaluate(
                "({state: document.getElementById('state')?.dataset.state ?? '',"
                    + " text: document.getElementById('state')?.textContent ?? ''})"
            )
            return states.contains(state.state) ? state : nil
        }
    }
}

/// `liverelay local`, the command, on `yaml` with its stream port `port` and its HTTP listener on an ephemeral port
/// of 127.0.0.1 (WebRTC on 127.0.0.1 too), for the duration of `body`, which gets the process and the HTTP base URL.
/// Stopped with Ctrl-C afterwards; none of `secrets` may appear in its output.
private func withLocalCommand<Result: Sendable>(
    yaml: String,
    port: Int,
    secrets: [String],
    _ body: (RunningProcess, String) async throws -> Result
) async throws -> Result {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("liverelay-golive-\(UInt64.random(in: 0...UInt64.max))").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let file = directory + "/streams.yaml"
    try yaml.write(toFile: file, atomically: true, encoding: .utf8)
    return try await withRunningProcess(
        try liverelayExecutable(),
        arguments: [
            "local", "-f", file, "--listen-host", "127.0.0.1", "--port-range", "\(port)-\(port)",
            "--http-listen", "127.0.0.1:0", "--state-dir", directory + "/state", "--webrtc-udp-port", "0",
            "--log-level", "info",
        ],
        standardOutput: .capture(limit: 1 << 20),
        standardError: .capture(limit: 1 << 20)
    ) { local in
        // Printed after the first admin's line ("liverelay local: console user admin created").
        let prefix = "liverelay local: console http"
        guard await local.waitForOutput(containing: prefix) else {
            throw PeerError.startFailed("liverelay local: \(local.standardOutputSoFar)\(local.standardErrorSoFar)")
        }
        let line = try #require(local.standardOutputSoFar.split(separator: "\n").first { $0.hasPrefix(prefix) })
        var base = String(line.dropFirst("liverelay local: console ".count))
        if base.hasSuffix("/") {
            base.removeLast()
        }
        let result = try await body(local, base)
        local.interrupt()
        let exit = await local.waitForExit(timeout: .seconds(30))
        #expect(exit?.succeeded == true, "liverelay local did not exit cleanly on Ctrl-C: \(String(describing: exit))")
        let output = local.standardOutputSoFar + local.standardErrorSoFar
        for secret in secrets {
            #expect(!output.contains(secret), "a key appeared in local mode's output")
        }
        return result
    }
}
