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

/// See WHIPClientTests: Debian 12's whip-client links libsoup 2 and GStreamer pulls in libsoup 3, which aborts at
/// load when it sees libsoup 2; this preload hides the one probe.
private let soupProbeShim = """
    #define _GNU_SOURCE
    #include <dlfcn.h>
    #include <string.h>
    typedef int gboolean;
    typedef void *gpointer;
    gboolean g_module_symbol(void *module, const char *name, gpointer *symbol) {
        static gboolean (*real)(void *, const char *, gpointer *);
        if (!real) real = (gboolean (*)(void *, const char *, gpointer *))dlsym(RTLD_NEXT, "g_module_symbol");
        if (strcmp(name, "soup_uri_new") == 0) { *symbol = 0; return 0; }
        return real(module, name, symbol);
    }
    """

private let whipClient = "/usr/bin/whip-client"

/// WHIP (RFC 9725) on local mode's gateway HTTP application: real `liverelay relay` children, Debian's whip-client
/// publishing x264 and Opus, nginx-rtmp as the target, ffprobe on what it recorded.
@Suite("WHIP in local mode", .serialized, .timeLimit(.minutes(5)))
struct WHIPLocalModeTests {
    @Test("whip-client publishes x264 and Opus through a cold relay: nginx records H.264 and AAC; DELETE ends it")
    func whipClientPublishes() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: whipClient), "whip-client (simple-whip-client)")
        let shim = try await Self.buildShim()
        defer { try? FileManager.default.removeItem(atPath: shim.directory) }
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
                    try await withRunningProcess(
                        "env",
                        arguments: [
                            "LD_PRELOAD=\(shim.library)", "HOME=\(shim.directory)", whipClient,
                            "-u", "\(base)/whip/default/show", "-t", ingestKey, "-n", "-o", "-l", "4",
                            "-V",
                            "videotestsrc is-live=true ! video/x-raw,width=320,height=240 ! x264enc tune=zerolatency "
                                + "key-int-max=30 ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! "
                                + "application/x-rtp,media=video,encoding-name=H264,payload=96",
                            "-A",
                            "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! queue ! opusenc ! "
                                + "rtpopuspay ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111",
                        ],
                        standardOutput: .capture(limit: 64 * 1024)
                    ) { client in
                        try await nginx.waitForPublishStarted(app: "whip", stream: targetKey, timeout: .seconds(60))
                        #expect(whip.sessionCount == 1, "whip-client said: \(Self.output(of: client))")
                        let stream = StreamID(namespace: "default", name: "show")
                        #expect(local.runtime.gateway.connections(for: stream) == (live: 1, held: 0))

                        // A second publisher of the stream, with the right key: the relay has one already.
                        let second = try await Self.post(base, path: "/whip/default/show", key: ingestKey)
                        #expect(second.status == 409, "\(second.body)")
                        #expect(second.body.contains("already being published"))

                        // Media recorded, audio and video: what the recording is checked for.
                        try await Self.waitForRecording(nginx.recordingPath(app: "whip", stream: targetKey), frames: 61)
                        // Ctrl-C: whip-client sends DELETE to the Location; the relay's publish ends.
                        client.interrupt()
                        try await nginx.waitForPublishEnded(app: "whip", stream: targetKey)
                        let exit = await client.waitForExit(timeout: .seconds(20))
                        #expect(exit != nil, "whip-client did not exit after SIGINT")
                        let output = Self.output(of: client)
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

    @Test("WHIP answers: 401, 404, 403 with the reason, 406 without H.264, 415, CORS preflight, PATCH 405")
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
                #expect(unknown.headers.first(name: "Access-Control-Expose-Headers")?.contains("Location") == true)

                var patch = HTTPClientRequest(url: "\(base)/whip/default/on/0123456789abcdef")
                patch.method = .PATCH
                #expect(try await HTTPClient.shared.execute(patch, timeout: .seconds(10)).status == .methodNotAllowed)
                var delete = HTTPClientRequest(url: "\(base)/whip/default/on/0123456789abcdef")
                delete.method = .DELETE
                #expect(try await HTTPClient.shared.execute(delete, timeout: .seconds(10)).status == .notFound)
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
                        try await Self.waitForRecording(
                            nginx.recordingPath(app: "browser", stream: targetKey),
                            frames: 31
                        )
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
                report("answered " + response.headers.get("Location"));
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

    /// The address the WebRTC transport binds: whip-client's libnice pairs no loopback candidate of ours with its
    /// non-loopback ones (see WHIPClientTests), so the first non-loopback IPv4 address, on an ephemeral port.
    static func hostAddress() throws -> String {
        for device in try System.enumerateDevices() {
            guard case .v4 = device.address, let ip = device.address?.ipAddress, !ip.hasPrefix("127.") else { continue }
            return ip
        }
        return "127.0.0.1"
    }

    static func buildShim() async throws -> (directory: String, library: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "liverelay-whip-\(UInt64.random(in: 0...UInt64.max))"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try soupProbeShim.write(toFile: "\(directory)/shim.c", atomically: true, encoding: .utf8)
        try await withRunningProcess(
            "cc",
            arguments: ["-shared", "-fPIC", "-o", "\(directory)/shim.so", "\(directory)/shim.c", "-ldl"]
        ) { process in
            let exit = await process.waitForExit()
            try #require(exit.succeeded, "cc: \(exit)")
        }
        return (directory, "\(directory)/shim.so")
    }

    /// whip-client's output without the lines that show the Bearer token.
    static func output(of client: RunningProcess) -> String {
        (client.standardOutputSoFar + client.standardErrorSoFar).split(separator: "\n")
            .filter { !$0.contains("Bearer") && !$0.contains("GLib") && !$0.isEmpty }
            .suffix(40)
            .joined(separator: "\n")
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
        host: try webrtcHost ?? WHIPLocalModeTests.hostAddress(),
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
