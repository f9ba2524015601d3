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
import NIOFoundationCompat
import NIOHTTP1
import PeerTestSupport
import Prometheus
import RelayAPI
import ServiceLifecycle
import Testing

/// Local mode's preview address, `/preview/NAMESPACE/NAME/` on its HTTP listener, wired as `liverelay local` wires
/// it: one address for a stream across relay starts, whether a relay runs or not.
@Suite("Local mode's preview address", .serialized, .timeLimit(.minutes(3)))
struct LocalPreviewTests {
    private struct HTTPAnswer {
        var status: Int
        var contentType: String?
        var body: ByteBuffer
        var text: String { String(buffer: self.body) }
    }

    private static func get(_ url: String) async throws -> HTTPAnswer {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return HTTPAnswer(
            status: Int(response.status.code),
            contentType: response.headers.first(name: "content-type"),
            body: body
        )
    }

    private static func status(_ base: String) async throws -> PreviewStatus {
        let answer = try await Self.get(base + "status")
        guard answer.status == 200 else {
            throw TestFailure("GET \(base)status answered \(answer.status): \(answer.text)")
        }
        return try JSONDecoder().decode(PreviewStatus.self, from: answer.body)
    }

    /// Polls the preview's status (the page does the same; nothing else tells when the preview went live).
    private static func waitForState(_ state: String, at base: String) async throws {
        var last: PreviewStatus?
        for _ in 0..<150 {
            last = try await Self.status(base)
            if last?.state == state {
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("the preview at \(base) did not become \(state); last status: \(String(describing: last))")
    }

    /// The first bytes of `live.mp4` through local mode's address: an ISO BMFF file starts with its `ftyp` box.
    private static func expectLiveMP4(_ base: String) async throws {
        let response = try await HTTPClient.shared.execute(
            HTTPClientRequest(url: base + "live.mp4"),
            timeout: .seconds(10)
        )
        #expect(response.status.code == 200)
        #expect(response.headers.first(name: "content-type")?.hasPrefix("video/mp4") == true)
        var received = ByteBuffer()
        for try await chunk in response.body {
            received.writeImmutableBuffer(chunk)
            if received.readableBytes >= 8 {
                break
            }
        }
        #expect(received.getString(at: 4, length: 4) == "ftyp", "live.mp4 does not start with an ftyp box")
    }

    @Test(
        "One address across relay starts: waiting while no relay runs, live while one does, the same URL after it restarts"
    )
    func stableAcrossRestarts() async throws {
        let port = try freeTCPPort()
        let ingestKey = makeTestKey("ingest")
        let yaml = liveStreamYAML(name: "show", port: port, ingestKey: ingestKey)
        let stream = StreamID(namespace: "default", name: "show")
        try await withLocalMode(yaml: yaml, secrets: [ingestKey]) { local in
            let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
            let http = makeGatewayHTTPApplication(
                gateway: local.runtime.gateway,
                registry: PrometheusCollectorRegistry(),
                host: "127.0.0.1",
                port: 0,
                logger: Logger(label: "liverelay.local.http.test"),
                routes: { local.runtime.addPreviewRoutes(to: $0) },
                onServerRunning: { bound in
                    await local.runtime.httpListening(host: "127.0.0.1", port: bound)
                    portContinuation.yield(bound)
                }
            )
            // A service group without signal handlers: `runService()` would ignore SIGINT in this process, and the
            // ffmpeg started below would inherit that and not stop when interrupted.
            let services = ServiceGroup(
                configuration: .init(services: [http], logger: Logger(label: "liverelay.local.http.test"))
            )
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await services.run() }
                defer { group.cancelAll() }
                var iterator = ports.makeAsyncIterator()
                let httpPort = try #require(await iterator.next())
                let base = "http://127.0.0.1:\(httpPort)/preview/default/show/"
                try await local.waitFor("the preview address announced") {
                    $0 == .previewAvailable(stream, url: base)
                }

                // No relay runs: the page is there, and its status says what to do.
                let page = try await Self.get(base)
                #expect(page.status == 200)
                #expect(page.contentType?.hasPrefix("text/html") == true)
                #expect(page.text.contains(#"fetch("live.mp4""#), "not the preview page: \(page.text.prefix(200))")
                let waiting = try await Self.status(base)
                #expect(waiting.state == "waiting")
                #expect(waiting.error?.contains("rtmp://127.0.0.1:\(port)/live") == true, "\(waiting)")
                let noRelay = try await Self.get(base + "live.mp4")
                #expect(noRelay.status == 503)
                #expect(noRelay.text.contains("no relay runs for default/show"), "\(noRelay.text)")
                let unknown = try await Self.get("http://127.0.0.1:\(httpPort)/preview/default/nosuch/status")
                #expect(unknown.status == 404)
                #expect(unknown.text.contains("no stream default/nosuch"))
                #expect(local.relayPIDs.isEmpty, "asking for the preview started a relay")

                // Two publishes, each waking a relay of its own; the address stays the same.
                for round in 1...2 {
                    try await FFmpeg.withPublisher(
                        to: "rtmp://127.0.0.1:\(port)/live/\(ingestKey)",
                        duration: 30,
                        keyframeInterval: 1
                    ) { publisher in
                        let ready = try await local.events.waitFor("relay \(round) ready", count: round) {
                            if case .relayReady(stream, _, _, _) = $0 { return true }
                            return false
                        }
                        try await Self.waitForState("live", at: base)
                        if case .relayReady(_, _, _, let relayHTTP) = ready {
                            // The relay names the encoder, not the gateway: the gateway's PROXY header told it.
                            let relay = try await Self.get("http://127.0.0.1:\(relayHTTP)/api/v1/stream")
                            let publisher = try #require(
                                try JSONDecoder().decode(StreamStatus.self, from: Data(relay.text.utf8)).publisher
                            ).remoteAddress
                            #expect(
                                local.logs.lines.contains { $0.contains("gateway.remote=\(publisher)") },
                                "the relay reports \(publisher), which is not the client the gateway served"
                            )
                        }
                        try await Self.expectLiveMP4(base)
                        publisher.interrupt()
                        _ = await publisher.waitForExit()
                    }
                    try await local.events.waitFor("relay \(round) stopped when idle", count: round) {
                        if case .relayStopped(stream, let reason) = $0 { return reason.hasPrefix("idle") }
                        return false
                    }
                    #expect(try await Self.status(base).state == "waiting")
                }
                // Two relay processes served the one address.
                #expect(Set(local.relayPIDs).count == 2, "\(local.relayPIDs)")
            }
        }
    }
}
