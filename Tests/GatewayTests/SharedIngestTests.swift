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

import LiveStreamModel
import NIOCore
import NIOEmbedded
import PeerTestSupport
import Testing

@testable import Gateway

/// The shared ingest port without a relay: what the gateway itself decides, as a real encoder (ffmpeg) sees it. The
/// way through to a relay is tested end to end with local mode (`LocalModeTests.sharedPort`).
@Suite("Gateway shared ingest port", .timeLimit(.minutes(1)))
struct SharedIngestTests {
    /// A key made for one test; never a real one.
    private static func testKey() -> String {
        "test-\(UInt64.random(in: 0...UInt64.max))"
    }

    enum Refusal: String, CaseIterable, Sendable {
        case unknownKey, suspended, sourceRange, holdTimeout
    }

    @Test(
        "A publish the gateway refuses ends with the reason, shown by ffmpeg and logged without the key",
        arguments: Refusal.allCases
    )
    func refusal(_ refusal: Refusal) async throws {
        let key = Self.testKey()
        let shared = try freeTCPPort()
        let route = try route(
            port: try freeTCPPort(),
            ranges: refusal == .sourceRange ? ["10.0.0.0/8"] : ["127.0.0.0/8"],
            suspended: refusal == .suspended,
            ingestKey: .init(app: "live", key: key)
        )
        let published = refusal == .unknownKey ? Self.testKey() : key
        let (shown, logged): (String, String) =
            switch refusal {
            case .unknownKey: ("No stream has this key.", "unknown stream key for application live")
            case .suspended: ("The stream is offline: it is suspended.", "the stream is suspended")
            case .sourceRange:
                ("The stream does not take publishers from this address.", "source address outside allowedSourceRanges")
            case .holdTimeout: ("The stream's relay is not available: hold timeout", "hold timeout")
            }
        let logs = LogStore()
        try await withGateway(
            routes: [route],
            configuration: .test(holdTimeout: .milliseconds(300), sharedIngestPort: shared),
            logs: logs
        ) { gateway, _ in
            let exit = try await FFmpeg.publish(to: "rtmp://127.0.0.1:\(shared)/live/\(published)", duration: 5)
                .waitForExit()
            #expect(!exit.succeeded)
            // ffmpeg's output names the URL, key included: only whether it holds the reason is printed.
            #expect(exit.standardError.contains(shown), "ffmpeg did not show \"\(shown)\"")
            #expect(logs.contains("Connection refused", logged))
            #expect(!logs.all.contains { $0.contains(key) || $0.contains(published) }, "a key appeared in the log")
            await gateway.waitForConnections(of: testStream) { live, held in live == 0 && held == 0 }
        }
    }

    enum BadClient: String, CaseIterable, Sendable {
        /// RTMP version 3 is the only one; 0x47 is an HTTP client's "G".
        case http
        /// Connects and sends nothing.
        case silent
    }

    @Test(
        "A client that does not speak RTMP, or never publishes, is dropped with the reason; the port serves on",
        arguments: BadClient.allCases
    )
    func badClient(_ client: BadClient) async throws {
        let shared = try freeTCPPort()
        let logs = LogStore()
        // Only the silent client may meet the setup timeout: on a loaded machine a short one could also end the
        // HTTP client's connection before its bytes are read. It is the same gateway's timeout for the ffmpeg that
        // checks the port serves on, which under the whole suite's load took longer than 0.3 s to publish once.
        let timeout: Duration = client == .silent ? .seconds(2) : .seconds(60)
        try await withGateway(
            routes: [],
            configuration: .test(sharedIngestPort: shared, ingestSetupTimeout: timeout),
            logs: logs
        ) { _, _ in
            let connection = try await connect(port: shared)
            try await connection.executeThenClose { inbound, outbound in
                if client == .http {
                    try await outbound.write(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
                }
                #expect(await readToEnd(inbound).readableBytes == 0)
            }
            let reason = client == .http ? "RTMP error before publish" : "did not publish within 2.0 seconds"
            #expect(logs.contains("Connection refused", reason), "\(logs.all)")

            // Still serving: an encoder gets its answer (no stream has its key here).
            let exit = try await FFmpeg.publish(to: "rtmp://127.0.0.1:\(shared)/live/\(Self.testKey())", duration: 2)
                .waitForExit()
            #expect(exit.standardError.contains("No stream has this key."), "ffmpeg did not get the gateway's answer")
        }
    }

    @Test("Routes by application and key; a key two streams share reaches neither; a key never prints")
    func routesByKey() throws {
        let key = Self.testKey()
        let alice = GatewayRoute(
            stream: testStream,
            listenPort: 31000,
            allowedSourceRanges: [],
            ingestKey: .init(app: "live", key: key)
        )
        let bob = GatewayRoute(
            stream: StreamID(namespace: "streams", name: "bob"),
            listenPort: 31001,
            allowedSourceRanges: [],
            ingestKey: .init(app: "live", key: "other-\(key)")
        )
        let routes = GatewayRoutes([alice, bob])
        #expect(routes.route(forIngest: .init(app: "live", key: key))?.stream == testStream)
        #expect(routes.route(forIngest: .init(app: "other", key: key)) == nil)
        #expect(routes.route(forIngest: .init(app: "live", key: "x")) == nil)

        var twin = bob
        twin.ingestKey = alice.ingestKey
        routes.update([alice, twin])
        #expect(routes.route(forIngest: .init(app: "live", key: key)) == nil)
        #expect(routes.route(for: testStream) != nil, "the streams keep their own ports")

        #expect("\(alice)".contains("live/<key>"))
        #expect(!"\(alice)".contains(key))
    }

    @Test("The capture keeps exactly what follows the client's 3,073 handshake bytes, however the reads split it")
    func captureSkipsHandshake() throws {
        let channel = EmbeddedChannel(handler: IngestCapture(limit: 64 * 1024))
        defer { _ = try? channel.finish() }
        let bytes = patternBytes(count: IngestCapture.handshakeLength + 700)
        var rest = bytes
        for size in [1, 1536, 1000, 900, 336] {
            let piece = rest.readSlice(length: size)!
            try channel.writeInbound(piece)
        }
        try channel.writeInbound(rest)
        let capture = try channel.pipeline.syncOperations.handler(type: IngestCapture.self)
        var captured = ByteBuffer()
        for var buffer in capture.take() {
            captured.writeBuffer(&buffer)
        }
        #expect(captured == bytes.getSlice(at: IngestCapture.handshakeLength, length: 700))
        #expect(capture.take().isEmpty)
        // Everything went on to the decoder too.
        var passed = 0
        while let buffer = try channel.readInbound(as: ByteBuffer.self) {
            passed += buffer.readableBytes
        }
        #expect(passed == bytes.readableBytes)
    }

    @Test("More than the limit before publish closes the connection")
    func captureLimit() throws {
        let channel = EmbeddedChannel(handler: IngestCapture(limit: 100))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1935)).wait()
        try channel.writeInbound(patternBytes(count: IngestCapture.handshakeLength + 100))
        #expect(channel.isActive)
        #expect(throws: (any Error).self) { try channel.writeInbound(patternBytes(count: 1)) }
        #expect(!channel.isActive)
    }
}
