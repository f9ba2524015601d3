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
import Logging
import NIOCore
import NIOPosix
import PeerTestSupport
import Testing

@testable import WebRTC

@Suite(.serialized) struct WHIPClientTests {
    /// Debian's whip-client (GStreamer webrtcbin, libnice) publishes x264 and Opus over WHIP: ICE, DTLS, and
    /// decrypted RTP of both payload types in sequence for seconds; on SIGINT it sends DELETE and the session ends.
    @Test(.timeLimit(.minutes(4)))
    func whipClientPublishes() async throws {
        try #require(WHIPClient.isAvailable, "whip-client (simple-whip-client) at \(WHIPClient.executable)")

        let transport = try await WebRTCTransport.bind(
            configuration: WebRTCTransportConfiguration(
                host: WHIPClient.hostAddress(),
                port: 0
            ),
            logger: {
                var logger = Logger(label: "whip-client-test.transport")
                logger.logLevel = ProcessInfo.processInfo.environment["WEBRTC_TEST_DEBUG"] == nil ? .info : .trace
                return logger
            }()
        )
        let token = "test-\(UInt64.random(in: 0...UInt64.max))"
        let server = WHIPTestServer(transport: transport, token: token, page: "")
        do {
            try await server.run { port in
                try await WHIPClient.withPublisher(url: "http://127.0.0.1:\(port)/whip/live/show", token: token) {
                    client in
                    try await self.check(server: server, client: client)
                }
            }
        } catch {
            await transport.close()
            throw error
        }
        #expect(await transport.sessionCount() == 0)
        await transport.close()
    }

    private func check(server: WHIPTestServer, client: RunningProcess) async throws {
        let registered = await withTaskGroup(of: WebRTCSession?.self) { group in
            group.addTask {
                var iterator = server.sessions.makeAsyncIterator()
                return await iterator.next()?.session
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(30))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        let session = try #require(registered, "whip-client did not post an offer: \(WHIPClient.output(of: client))")
        let video = try #require(session.media.first { $0.codec == .h264 })
        let audio = try #require(session.media.first { $0.codec == .opus })

        var packets: [UInt8: Int] = [:]
        var lastSequence: [UInt32: UInt16] = [:]
        var backward = 0
        var start: ContinuousClock.Instant?
        var connected = false
        for try await event in session.events {
            switch event {
            case .iceConnected:
                break
            case .dtlsConnected:
                connected = true
            case .rtcp:
                break
            case .rtp(let packet):
                start = start ?? .now
                let bytes = Array(packet.readableBytesView.prefix(12))
                guard bytes.count == 12 else { continue }
                packets[bytes[1] & 0x7F, default: 0] += 1
                let sequence = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
                let ssrc = UInt32(bytes[8]) << 24 | UInt32(bytes[9]) << 16 | UInt32(bytes[10]) << 8 | UInt32(bytes[11])
                if let last = lastSequence[ssrc] {
                    let delta = sequence &- last
                    if delta == 0 || delta >= 0x8000 { backward += 1 }
                }
                lastSequence[ssrc] = sequence
            }
            if let start, ContinuousClock.now - start > .seconds(3) { break }
        }
        #expect(
            connected,
            "whip-client said: \(WHIPClient.output(of: client))"
        )
        #expect((packets[video.payloadType] ?? 0) > 30, "\(packets)")
        #expect((packets[audio.payloadType] ?? 0) > 100, "\(packets)")
        #expect(backward == 0)

        // Ctrl-C: whip-client sends DELETE to the Location, and the session's events end without an error.
        client.interrupt()
        for try await _ in session.events {}
        let exit = await client.waitForExit(timeout: .seconds(20))
        #expect(exit != nil, "whip-client did not exit after SIGINT")
    }
}
