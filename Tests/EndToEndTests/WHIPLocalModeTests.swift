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
import Foundation
import Gateway
import Hummingbird
import LiveStreamModel
import LocalRuntime
import Logging
import NIOCore
import NIOHTTP1
import PeerTestSupport
import Prometheus
import ServiceLifecycle
import Testing
import WebRTC

/// WHIP (RFC 9725) on local mode's gateway HTTP application: real `liverelay relay` children, Debian's whip-client
/// publishing x264 and Opus, nginx-rtmp as the target, ffprobe on what it recorded.
@Suite("WHIP in local mode", .serialized, .timeLimit(.minutes(5)))
struct WHIPLocalModeTests {
    @Test("whip-client publishes x264 and Opus through a cold relay: nginx records H.264 and AAC; DELETE ends it")
    func whipClientPublishes() async throws {
        try #require(WHIPClient.isAvailable, "whip-client (simple-whip-client) at \(WHIPClient.executable)")
        try await withNginxRTMP(applications: ["whip"]) { nginx in
            let port = try freeTCPPort()
            let ingestKey = makeTestKey("ingest")
            let targetKey = makeTestKey("target")
            let yaml = liveStreamYAML(
                name: "show",
                port: port,
                ingestKey: ingestKey,
                target: (nginx.url(app: "whip"), targetKey)
            )
            try await withLocalMode(yaml: yaml, secrets: [ingestKey, targetKey]) { local in
                try await local.waitForListening(port)
                #expect(local.relayPIDs.isEmpty, "the relay ran before anyone connected")
                try await withWHIP(local) { base, whip in
                    try await WHIPClient.withPublisher(url: "\(base)/whip/default/show", token: ingestKey) { client in
                        try await nginx.waitForPublishStarted(app: "whip", stream: targetKey, timeout: .seconds(60))
                        #expect(whip.sessionCount == 1, "whip-client said: \(WHIPClient.output(of: client))")
                        let stream = StreamID(namespace: "default", name: "show")
                        #expect(local.runtime.gateway.connections(for: stream) == (live: 1, held: 0))

                        // A second publisher of the stream, with the right key: the relay has one already.
                        let second = try await Self.post(base, path: "/whip/default/show", key: ingestKey)
                        #expect(second.status == 409, "\(second.body)")
                        #expect(second.body.contains("already being published"))

                        // Media recorded, audio and video: what the recording is checked for.
                        try await Self.waitForRecording(nginx.recordingPath(app: "whip", stream: targetKey), frames: 61)
                        // The target started pushing: the relay asked the gateway for a keyframe, as it asked in
                        // connect (RTMPKeyframeRequest), well before 61 frames were recorded.
                        #expect(whip.keyframeRequestsFromRelays >= 1, "the relay asked for no keyframe")
                        // Ctrl-C: whip-client sends DELETE to the Location; the relay's publish ends.
                        client.interrupt()
                        try await nginx.waitForPublishEnded(app: "whip", stream: targetKey)
                        let exit = await client.waitForExit(timeout: .seconds(20))
                        #expect(exit != nil, "whip-client did not exit after SIGINT")
                        let output = WHIPClient.output(of: client)
                        #expect(!output.contains(ingestKey))
                    }
                    await local.runtime.gateway.waitForConnections(of: StreamID(namespace: "default", name: "show")) {
                        live,
                        held in live == 0 && held == 0
                    }
                    #expect(whip.sessionCount == 0)
                }
                let info = try await FFprobe.inspect(nginx.recordingPath(app: "whip", stream: targetKey))
                #expect(info.video?.codecName == "h264", "\(info)")
                #expect(info.audio?.codecName == "aac", "\(info)")
                #expect((info.video?.frameCount ?? 0) > 60, "\(info)")
                #expect(info.streams.count == 2, "\(info)")
                // The WHIP request woke the relay: it was held, not refused.
                #expect(local.relayPIDs.count == 1)
                let statistics = local.runtime.gateway.statistics(for: StreamID(namespace: "default", name: "show"))
                #expect((statistics?.holdTime ?? .zero) > .zero, "the WHIP publish was not held")
            }
        }
    }

    @Test("WHIP answers: 401, 404, 403 with the reason, 406 without H.264, 415, CORS preflight, PATCH 404")
    func statuses() async throws {
        let ingestKey = makeTestKey("ingest")
        let offKey = makeTestKey("off")
        let yaml =
            liveStreamYAML(name: "on", port: try freeTCPPort(), ingestKey: ingestKey)
            + "---\n"
            + liveStreamYAML(name: "off", port: try freeTCPPort(), ingestKey: offKey, extraSpec: "  suspend: true\n")
        try await withLocalMode(yaml: yaml, secrets: [ingestKey, offKey]) { local in
            try await local.events.waitFor("both streams added", count: 2) {
                if case .streamAdded = $0 { return true }
                return false
            }
            try await withWHIP(local) { base, whip in
                let unknown = try await Self.post(base, path: "/whip/default/nobody", key: ingestKey)
                #expect(unknown.status == 404)

                let suspended = try await Self.post(base, path: "/whip/default/off", key: offKey)
                #expect(suspended.status == 403)
                #expect(suspended.body.contains("suspended"), "\(suspended.body)")

                let noType = try await Self.post(base, path: "/whip/default/on", key: ingestKey, contentType: nil)
                #expect(noType.status == 415)
                let wrongType = try await Self.post(
                    base,
                    path: "/whip/default/on",
                    key: ingestKey,
                    contentType: "application/json"
                )
                #expect(wrongType.status == 415)

                let noKey = try await Self.post(base, path: "/whip/default/on", key: nil)
                #expect(noKey.status == 401)

                let vp8 = try await Self.post(
                    base,
                    path: "/whip/default/on",
                    key: ingestKey,
                    offer: Self.offer(h264: false)
                )
                #expect(vp8.status == 406)
                #expect(vp8.body.contains("H.264"), "\(vp8.body)")
                #expect(local.relayPIDs.isEmpty, "an offer without H.264 woke the relay")

                let tooLarge = try await Self.post(
                    base,
                    path: "/whip/default/on",
                    key: ingestKey,
                    offer: String(repeating: "a=x\r\n", count: 20_000)
                )
                #expect(tooLarge.status == 413)

                // A wrong key wakes the relay (the gateway holds the publish); the relay, the authority, refuses it.
                let wrongKey = try await Self.post(base, path: "/whip/default/on", key: makeTestKey("wrong"))
                #expect(wrongKey.status == 401, "\(wrongKey.body)")
                #expect(!wrongKey.body.contains(ingestKey))
                #expect(local.relayPIDs.count == 1)
                #expect(whip.sessionCount == 0)

                // CORS: a page on another origin may publish.
                var preflight = HTTPClientRequest(url: "\(base)/whip/default/on")
                preflight.method = .OPTIONS
                preflight.headers.add(name: "Origin", value: "https://studio.example")
                preflight.headers.add(name: "Access-Control-Request-Method", value: "POST")
                preflight.headers.add(name: "Access-Control-Request-Headers", value: "authorization, content-type")
                let answer = try await HTTPClient.shared.execute(preflight, timeout: .seconds(10))
                #expect(answer.status == .noContent)
                #expect(answer.headers.first(name: "Access-Control-Allow-Origin") == "*")
                let allowed = answer.headers.first(name: "Access-Control-Allow-Headers")?.lowercased() ?? ""
                #expect(allowed.contains("authorization") && allowed.contains("content-type"))
                #expect(answer.headers.first(name: "Access-Control-Allow-Methods")?.contains("POST") == true)
                #expect(answer.headers.first(name: "Link")?.contains("rel=\"ice-server\"") == true)
                #expect(answer.headers.first(name: "Accept-Patch") == "application/trickle-ice-sdpfrag")
                #expect(allowed.contains("if-match"))
                #expect(answer.headers.first(name: "Access-Control-Allow-Methods")?.contains("PATCH") == true)
                #expect(unknown.headers.first(name: "Access-Control-Expose-Headers")?.contains("Location") == true)

                // PATCH of a resource that is no session.
                let unknownPatch = try await Self.patch(base, path: "/whip/default/on/0123456789abcdef", fragment: "")
                #expect(unknownPatch.status == 404)
                var delete = HTTPClientRequest(url: "\(base)/whip/default/on/0123456789abcdef")
                delete.method = .DELETE
                #expect(try await HTTPClient.shared.execute(delete, timeout: .seconds(10)).status == .notFound)
            }
        }
    }

    @Test("PATCH (RFC 9725 §4.3): 204 for candidates, 200 and a new ETag for an ICE restart, 412, 428, 415, 400, 413")
    func patch() async throws {
        let ingestKey = makeTestKey("ingest")
        let yaml = liveStreamYAML(name: "on", port: try freeTCPPort(), ingestKey: ingestKey)
        try await withLocalMode(yaml: yaml, secrets: [ingestKey]) { local in
            try await local.events.waitFor("the stream added") {
                if case .streamAdded = $0 { return true }
                return false
            }
            try await withWHIP(local) { base, whip in
                // A session that waits for ICE checks that never come: its resource is what is PATCHed.
                let created = try await Self.post(base, path: "/whip/default/on", key: ingestKey)
                try #require(created.status == 201, "\(created.body)")
                #expect(created.headers.first(name: "Accept-Patch") == "application/trickle-ice-sdpfrag")
                let location = try #require(created.headers.first(name: "Location"))
                let tag = try #require(created.headers.first(name: "ETag"))
                #expect(tag.hasPrefix("\"") && tag.hasSuffix("\""))

                let candidates =
                    [
                        "a=ice-ufrag:Qx7b", "a=ice-pwd:k9n2J+/pQ0rS1tU2vW3xY4zA", "m=audio 9 RTP/AVP 0", "a=mid:0",
                        "a=candidate:1 1 UDP 2015363327 192.0.2.7 43110 typ host", "a=end-of-candidates",
                    ].joined(separator: "\r\n") + "\r\n"
                let trickled = try await Self.patch(base, path: location, fragment: candidates, ifMatch: tag)
                #expect(trickled.status == 204, "\(trickled.body)")
                #expect(try await Self.patch(base, path: location, fragment: candidates).status == 204)

                let wrongType = try await Self.patch(
                    base,
                    path: location,
                    fragment: candidates,
                    ifMatch: tag,
                    contentType: "application/sdp"
                )
                #expect(wrongType.status == 415)
                #expect(wrongType.headers.first(name: "Accept-Patch") == "application/trickle-ice-sdpfrag")
                let malformed = try await Self.patch(
                    base,
                    path: location,
                    fragment: "a=candidate:1 1 UDP 1 192.0.2.7 5000\r\n",
                    ifMatch: tag
                )
                #expect(malformed.status == 400)
                #expect(malformed.body.contains("fewer than 8"), "\(malformed.body)")
                let tooLarge = try await Self.patch(
                    base,
                    path: location,
                    fragment: String(repeating: "a=x\r\n", count: 5000),
                    ifMatch: tag
                )
                #expect(tooLarge.status == 413)
                let otherStream = location.replacingOccurrences(of: "/whip/default/on/", with: "/whip/default/off/")
                #expect(try await Self.patch(base, path: otherStream, fragment: candidates).status == 404)

                // An ICE restart: new credentials, If-Match: *.
                let restart =
                    [
                        "a=ice-ufrag:NeW1", "a=ice-pwd:aNewPasswordOf22Chars+/", "m=audio 9 RTP/AVP 0", "a=mid:0",
                        "a=candidate:1 1 UDP 2015363327 192.0.2.9 43112 typ host",
                    ].joined(separator: "\r\n") + "\r\n"
                #expect(try await Self.patch(base, path: location, fragment: restart).status == 428)
                #expect(try await Self.patch(base, path: location, fragment: restart, ifMatch: "\"old\"").status == 412)
                let restarted = try await Self.patch(base, path: location, fragment: restart, ifMatch: "*")
                #expect(restarted.status == 200, "\(restarted.body)")
                #expect(restarted.headers.first(name: "Content-Type") == "application/trickle-ice-sdpfrag")
                let newTag = try #require(restarted.headers.first(name: "ETag"))
                #expect(newTag != tag)
                let answer = try TrickleICEFragment(parsing: restarted.body)
                let answered = try #require(answer.credentials)
                #expect(!created.body.contains("a=ice-ufrag:\(answered.usernameFragment)\r\n"))
                #expect(restarted.body.contains("a=ice-lite"))
                #expect(answer.candidates.count >= 1)
                #expect(answer.endOfCandidates)
                #expect(answer.mids == ["0"])
                // Candidates of the old ICE session come too late; the new session's are taken.
                let stale = try await Self.patch(base, path: location, fragment: candidates, ifMatch: tag)
                #expect(stale.status == 412, "\(stale.body)")
                #expect(try await Self.patch(base, path: location, fragment: restart, ifMatch: newTag).status == 204)
                #expect(whip.sessionCount == 1)

                var delete = HTTPClientRequest(url: base + location)
                delete.method = .DELETE
                #expect(try await HTTPClient.shared.execute(delete, timeout: .seconds(10)).status == .ok)
                #expect(try await Self.patch(base, path: location, fragment: candidates).status == 404)
            }
        }
    }

    /// libnice (whip-client's ICE) stops checking once connected; its session lives on its media. With the consent
    /// timeout at 5 s, the session must outlast it three times over while media flows (before, every GStreamer
    /// publisher was cut off one consent timeout after connecting: 30 s in production). 5 s rather than less: a
    /// loaded machine can pause the publisher's media for a second or two.
    @Test("A whip-client that checks only until connected keeps its session while its media flows")
    func sessionLivesOnMedia() async throws {
        try #require(WHIPClient.isAvailable, "whip-client (simple-whip-client) at \(WHIPClient.executable)")
        try await withNginxRTMP(applications: ["whip"]) { nginx in
            let ingestKey = makeTestKey("ingest")
            let targetKey = makeTestKey("target")
            let yaml = liveStreamYAML(
                name: "steady",
                port: try freeTCPPort(),
                ingestKey: ingestKey,
                target: (nginx.url(app: "whip"), targetKey)
            )
            try await withLocalMode(yaml: yaml, secrets: [ingestKey, targetKey]) { local in
                try await local.events.waitFor("the stream added") {
                    if case .streamAdded = $0 { return true }
                    return false
                }
                try await withWHIP(
                    local,
                    configure: {
                        $0.ice.consentTimeout = .seconds(5)
                        $0.tickInterval = .milliseconds(100)
                    }
                ) { base, whip in
                    try await WHIPClient.withPublisher(url: "\(base)/whip/default/steady", token: ingestKey) { client in
                        do {
                            try await nginx.waitForPublishStarted(app: "whip", stream: targetKey, timeout: .seconds(90))
                        } catch {
                            // Once in four full runs the publish never started: say what each side saw.
                            let said = WHIPClient.output(of: client)
                            let logs = local.logs.lines.suffix(40).joined(separator: "\n")
                            Issue.record("whip-client said:\n\(said)\nlocal mode said:\n\(logs)")
                            throw error
                        }
                        let recording = nginx.recordingPath(app: "whip", stream: targetKey)
                        try await Self.waitForRecording(recording, frames: 30)
                        // 15 s of video more (30 fps) is three consent timeouts.
                        try await Self.waitForRecording(recording, frames: 30 + 15 * 30)
                        #expect(whip.sessionCount == 1, "\(WHIPClient.output(of: client))")
                        #expect(!client.hasExited, "\(WHIPClient.output(of: client))")
                        client.interrupt()
                        try await nginx.waitForPublishEnded(app: "whip", stream: targetKey)
                        #expect(await client.waitForExit(timeout: .seconds(20)) != nil)
                    }
                    #expect(whip.sessionCount == 0)
                }
            }
        }
    }

    /// Two whip-clients publishing at once to two streams of one gateway, one trickling its candidates by PATCH:
    /// both sessions last and both reach their targets (issue 24: one session used to end at once).
    ///
    /// It failed about two runs in three on a loaded machine: the stream's relay aborted in libavformat's mp4 muxer
    /// (`Assertion next_dts >= 0 failed at libavformat/movenc.c`, its preview thread), which closed the session's
    /// relay connection. PreviewFirstPacketTests has the cause; the preview stays on here so that this test covers it.
    @Test("Two whip-clients at once, one trickling by PATCH: both streams reach their targets")
    func twoWhipClientsAtOnce() async throws {
        try #require(WHIPClient.isAvailable, "whip-client (simple-whip-client) at \(WHIPClient.executable)")
        try await withNginxRTMP(applications: ["whip"]) { nginx in
            let keys = (
                ingest: [makeTestKey("ingest"), makeTestKey("ingest")], target: [makeTestKey("a"), makeTestKey("b")]
            )
            let names = ["first", "second"]
            let yaml = (0..<2).map { index in
                liveStreamYAML(
                    name: names[index],
                    port: (try? freeTCPPort()) ?? 0,
                    ingestKey: keys.ingest[index],
                    target: (nginx.url(app: "whip"), keys.target[index])
                )
            }.joined(separator: "---\n")
            try await withLocalMode(yaml: yaml, secrets: keys.ingest + keys.target) { local in
                try await local.events.waitFor("both streams added", count: 2) {
                    if case .streamAdded = $0 { return true }
                    return false
                }
                try await withWHIP(local) { base, whip in
                    try await WHIPClient.withPublisher(url: "\(base)/whip/default/first", token: keys.ingest[0]) {
                        first in
                        try await WHIPClient.withPublisher(
                            url: "\(base)/whip/default/second",
                            token: keys.ingest[1],
                            trickle: true
                        ) { second in
                            let said = {
                                "first said:\n\(WHIPClient.output(of: first))\nsecond said:\n\(WHIPClient.output(of: second))"
                            }
                            for key in keys.target {
                                try await nginx.waitForPublishStarted(app: "whip", stream: key, timeout: .seconds(90))
                            }
                            do {
                                for key in keys.target {
                                    try await Self.waitForRecording(
                                        nginx.recordingPath(app: "whip", stream: key),
                                        frames: 61
                                    )
                                }
                            } catch {
                                let logs = local.logs.lines.suffix(60).joined(separator: "\n")
                                Issue.record("\(said())\nlocal mode said:\n\(logs)")
                                throw error
                            }
                            #expect(whip.sessionCount == 2, "\(said())")
                            #expect(!first.hasExited && !second.hasExited, "\(said())")
                            #expect(whip.trickledPatches > 0, "the trickling client PATCHed no candidates: \(said())")
                            for client in [first, second] { client.interrupt() }
                            for key in keys.target {
                                try await nginx.waitForPublishEnded(app: "whip", stream: key)
                            }
                            for client in [first, second] {
                                #expect(await client.waitForExit(timeout: .seconds(20)) != nil)
                            }
                        }
                    }
                    #expect(whip.sessionCount == 0)
                }
            }
        }
    }

    @Test("Headless Chromium publishes through WHIP from a page on another origin: nginx records H.264 and AAC")
    func chromiumPublishes() async throws {
        try #require(Chromium.isAvailable, "headless Chromium (Debian's chromium) is needed at \(Chromium.executable)")
        try await withNginxRTMP(applications: ["browser"]) { nginx in
            let port = try freeTCPPort()
            let ingestKey = makeTestKey("ingest")
            let targetKey = makeTestKey("target")
            let yaml = liveStreamYAML(
                name: "web",
                port: port,
                ingestKey: ingestKey,
                target: (nginx.url(app: "browser"), targetKey)
            )
            try await withLocalMode(yaml: yaml, secrets: [ingestKey, targetKey]) { local in
                try await local.waitForListening(port)
                let reports = Recorder<String>()
                let pages = Recorder<Int>()
                try await withWHIP(
                    local,
                    webrtcHost: "127.0.0.1",
                    routes: { router in
                        router.get("publish.html") { _, _ in
                            Response(
                                status: .ok,
                                headers: [.contentType: "text/html; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: Self.page(key: ingestKey, port: pages)))
                            )
                        }
                        router.post("report") { request, _ -> HTTPResponse.Status in
                            reports.append(String(buffer: try await request.body.collect(upTo: 64 * 1024)))
                            return .noContent
                        }
                    }
                ) { base, whip in
                    let httpPort = try #require(Int(base.split(separator: ":").last ?? ""))
                    pages.append(httpPort)
                    // The page comes from http://localhost:PORT and publishes to http://127.0.0.1:PORT: another
                    // origin, so the POST goes through a CORS preflight and the Location must be exposed to it.
                    try await Chromium.withPage("http://localhost:\(httpPort)/publish.html") { _ in
                        let answered = try await reports.waitFor("the page's WHIP POST answered", timeout: .seconds(60))
                        {
                            $0.hasPrefix("answered ") || $0.hasPrefix("error ")
                        }
                        let location = try #require(
                            answered.hasPrefix("answered /whip/default/web/") ? answered.dropFirst(9) : nil,
                            "the page said: \(reports.entries)"
                        )
                        try await nginx.waitForPublishStarted(app: "browser", stream: targetKey, timeout: .seconds(60))
                        #expect(whip.sessionCount == 1)
                        // Media recorded, audio and video: what the recording is checked for.
                        let recording = nginx.recordingPath(app: "browser", stream: targetKey)
                        try await Self.waitForRecording(recording, frames: 31)

                        // The page restarts ICE by PATCH: Chromium's checks under the new credentials are answered,
                        // and media go on in the same session (DTLS and SRTP continue).
                        let restarted = try await reports.waitFor("the page's ICE restart", timeout: .seconds(60)) {
                            $0.hasPrefix("restarted ") || $0.hasPrefix("error ")
                        }
                        #expect(restarted.hasPrefix("restarted \""), "the page said: \(reports.entries)")
                        #expect(whip.iceRestarts == 1)
                        try await eventually("Chromium's checks under the new credentials answered") {
                            await whip.statistics().first.map { $0.iceRestarts == 1 && $0.answeredChecks > 0 } ?? false
                        }
                        let before = try await FFprobe.inspect(recording).video?.frameCount ?? 0
                        try await Self.waitForRecording(recording, frames: before + 60)
                        #expect(whip.sessionCount == 1)
                        var delete = HTTPClientRequest(url: base + location)
                        delete.method = .DELETE
                        delete.headers.add(name: "Authorization", value: "Bearer \(ingestKey)")
                        #expect(try await HTTPClient.shared.execute(delete, timeout: .seconds(10)).status == .ok)
                        try await nginx.waitForPublishEnded(app: "browser", stream: targetKey)
                    }
                    #expect(whip.sessionCount == 0)
                }
                let info = try await FFprobe.inspect(nginx.recordingPath(app: "browser", stream: targetKey))
                #expect(info.video?.codecName == "h264", "\(info)")
                #expect(info.audio?.codecName == "aac", "\(info)")
                #expect((info.video?.frameCount ?? 0) > 30, "\(info)")
            }
        }
    }

    /// Waits until nginx-rtmp's recording of a publish holds `frames` H.264 frames and AAC audio (ffprobe reads the
    /// file as it grows), rather than for a fixed time: a publisher's video may start after its audio.
    static func waitForRecording(_ path: String, frames: Int) async throws {
        try await eventually(
            "\(frames) H.264 frames and AAC recorded",
            timeout: .seconds(60),
            interval: .milliseconds(500)
        ) {
            guard let info = try? await FFprobe.inspect(path) else { return false }
            return info.audio?.codecName == "aac" && info.video?.codecName == "h264"
                && (info.video?.frameCount ?? 0) >= frames
        }
    }

    /// A WHIP publisher page: a canvas animation and an oscillator, non-trickle, posting to 127.0.0.1 (another
    /// origin than the page's localhost) and reporting `answered LOCATION` or `error ...` to the page's origin.
    static func page(key: String, port: Recorder<Int>) -> String {
        let port = port.entries.last ?? 0
        return """
            <!doctype html>
            <html><body><canvas id="c" width="320" height="240"></canvas><script>
            const report = (what) => fetch("/report", { method: "POST", body: what });
            (async () => {
              try {
                const canvas = document.getElementById("c");
                const g = canvas.getContext("2d");
                let frame = 0;
                setInterval(() => {
                  g.fillStyle = `hsl(${(frame * 7) % 360}, 80%, 50%)`;
                  g.fillRect(0, 0, 320, 240);
                  g.fillStyle = "#fff";
                  g.font = "48px sans-serif";
                  g.fillText(String(frame++), 20, 120);
                }, 33);
                const video = canvas.captureStream(30).getVideoTracks()[0];
                const context = new AudioContext();
                const oscillator = context.createOscillator();
                const destination = context.createMediaStreamDestination();
                oscillator.connect(destination);
                oscillator.start();
                const audio = destination.stream.getAudioTracks()[0];
                const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
                pc.addTransceiver(audio, { direction: "sendonly" });
                pc.addTransceiver(video, { direction: "sendonly" });
                await pc.setLocalDescription(await pc.createOffer());
                await new Promise((resolve) => {
                  if (pc.iceGatheringState === "complete") return resolve();
                  pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
                  setTimeout(resolve, 3000);
                });
                const response = await fetch("http://127.0.0.1:\(port)/whip/default/web", {
                  method: "POST",
                  headers: { "Content-Type": "application/sdp", "Authorization": "Bearer \(key)" },
                  body: pc.localDescription.sdp,
                });
                if (response.status !== 201) throw new Error("POST answered " + response.status);
                await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
                window.connection = pc;
                const location = response.headers.get("Location");
                report("answered " + location);

                // An ICE restart (RFC 9725 §4.3.3) once media flows: new credentials PATCHed with If-Match: *, the
                // session's new ones put into the answer in place of the old.
                await new Promise((resolve) => setTimeout(resolve, 4000));
                pc.restartIce();
                const restart = await pc.createOffer();
                await pc.setLocalDescription(restart);
                const ours = (name, sdp) => sdp.match(new RegExp("a=" + name + ":(.*)\\r\\n"))[1];
                const fragment = "a=ice-ufrag:" + ours("ice-ufrag", restart.sdp) + "\\r\\n"
                  + "a=ice-pwd:" + ours("ice-pwd", restart.sdp) + "\\r\\n"
                  + "m=audio 9 UDP/TLS/RTP/SAVPF 111\\r\\na=mid:" + pc.getTransceivers()[0].mid + "\\r\\n";
                const patched = await fetch("http://127.0.0.1:\(port)" + location, {
                  method: "PATCH",
                  headers: { "Content-Type": "application/trickle-ice-sdpfrag", "If-Match": "*" },
                  body: fragment,
                });
                if (patched.status !== 200) throw new Error("PATCH answered " + patched.status);
                const theirs = await patched.text();
                const remote = pc.currentRemoteDescription.sdp
                  .replace(/a=ice-ufrag:.*\\r\\n/g, "a=ice-ufrag:" + ours("ice-ufrag", theirs) + "\\r\\n")
                  .replace(/a=ice-pwd:.*\\r\\n/g, "a=ice-pwd:" + ours("ice-pwd", theirs) + "\\r\\n");
                await pc.setRemoteDescription({ type: "answer", sdp: remote });
                report("restarted " + patched.headers.get("ETag"));
              } catch (error) {
                report("error " + error);
              }
            })();
            </script></body></html>
            """
    }

    // MARK: Helpers

    struct Answer {
        var status: UInt
        var headers: HTTPHeaders
        var body: String
    }

    static func post(
        _ base: String,
        path: String,
        key: String?,
        contentType: String? = "application/sdp",
        offer: String = Self.offer()
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        if let contentType {
            request.headers.add(name: "Content-Type", value: contentType)
        }
        if let key {
            request.headers.add(name: "Authorization", value: "Bearer \(key)")
        }
        request.body = .bytes(ByteBuffer(string: offer))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return Answer(status: response.status.code, headers: response.headers, body: body)
    }

    static func patch(
        _ base: String,
        path: String,
        fragment: String,
        ifMatch: String? = nil,
        contentType: String? = "application/trickle-ice-sdpfrag"
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: base + path)
        request.method = .PATCH
        if let contentType {
            request.headers.add(name: "Content-Type", value: contentType)
        }
        if let ifMatch {
            request.headers.add(name: "If-Match", value: ifMatch)
        }
        request.body = .bytes(ByteBuffer(string: fragment))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return Answer(status: response.status.code, headers: response.headers, body: body)
    }

    /// A browser-shaped offer: Opus, then VP8 and (unless `h264` is false) H.264.
    static func offer(h264: Bool = true) -> String {
        let fingerprint =
            "sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F"
        var lines = [
            "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
            "a=msid-semantic: WMS",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=ice-ufrag:Qx7b",
            "a=ice-pwd:k9n2J+/pQ0rS1tU2vW3xY4zA", "a=fingerprint:\(fingerprint)", "a=setup:actpass", "a=mid:0",
            "a=sendonly", "a=rtcp-mux", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
            "m=video 9 UDP/TLS/RTP/SAVPF \(h264 ? "96 102" : "96")", "c=IN IP4 0.0.0.0", "a=ice-ufrag:Qx7b",
            "a=ice-pwd:k9n2J+/pQ0rS1tU2vW3xY4zA", "a=fingerprint:\(fingerprint)", "a=setup:actpass", "a=mid:1",
            "a=sendonly", "a=rtcp-mux", "a=rtpmap:96 VP8/90000",
        ]
        if h264 {
            lines += [
                "a=rtpmap:102 H264/90000",
                "a=rtcp-fb:102 nack pli",
                "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            ]
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}

/// Local mode's gateway HTTP application with WHIP, on an ephemeral port of 127.0.0.1, and the WebRTC transport on
/// this host's address (`configure` may change its configuration), for the duration of `body`; `body` gets the HTTP
/// base URL.
func withWHIP(
    _ local: LocalUnderTest,
    webrtcHost: String? = nil,
    configure: (inout WebRTCTransportConfiguration) -> Void = { _ in },
    routes: (Router<GatewayHTTPContext>) -> Void = { _ in },
    _ body: @Sendable (String, WHIPService) async throws -> Void
) async throws {
    let logger = Logger(label: "liverelay.whip.test") { _ in local.logs.handler }
    var configuration = WebRTCTransportConfiguration(
        host: webrtcHost ?? WHIPClient.hostAddress(),
        port: 0
    )
    configure(&configuration)
    let transport = try await WebRTCTransport.bind(configuration: configuration, logger: logger)
    let whip = WHIPService(
        gateway: local.runtime.gateway,
        transport: transport,
        configuration: WHIPConfiguration(iceServers: ["stun:stun.example.org:3478"]),
        logger: logger
    )
    let (ports, port) = AsyncStream.makeStream(of: Int.self)
    let http = makeGatewayHTTPApplication(
        gateway: local.runtime.gateway,
        registry: PrometheusCollectorRegistry(),
        host: "127.0.0.1",
        port: 0,
        logger: logger,
        whip: whip,
        routes: routes,
        onServerRunning: { port.yield($0) }
    )
    let group = ServiceGroup(configuration: .init(services: [.init(service: http)], logger: logger))
    do {
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let bound = try #require(await iterator.next())
            do {
                try await body("http://127.0.0.1:\(bound)", whip)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    } catch {
        await transport.close()
        throw error
    }
    await transport.close()
}
