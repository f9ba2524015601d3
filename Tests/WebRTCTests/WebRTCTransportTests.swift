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

import Logging
import NIOCore
import Testing

@testable import WebRTC

@Suite struct WebRTCTransportTests {
    /// Registration refuses offers it cannot answer and sessions beyond the limit; close() ends a session's events
    /// without an error and frees its place.
    @Test(.timeLimit(.minutes(1)))
    func registersWithinLimits() async throws {
        var configuration = WebRTCTransportConfiguration(host: "127.0.0.1", port: 0)
        configuration.maximumSessions = 1
        let transport = try await WebRTCTransport.bind(
            configuration: configuration,
            logger: Logger(label: "transport-test") { _ in SwiftLogNoOpLogHandler() }
        )
        do {
            await #expect {
                try await transport.register(offer: browserOffer(video: "96 97", h264: false))
            } throws: { ($0 as? WebRTCError)?.code == .noH264 }
            await #expect {
                try await transport.register(offer: "not sdp")
            } throws: { ($0 as? WebRTCError)?.code == .malformedSDP }

            let first = try await transport.register(offer: browserOffer())
            #expect(first.answer.contains("a=candidate:1 1 UDP"))
            #expect(first.answer.contains(" \(transport.localAddress.port ?? 0) typ host"))
            #expect(await transport.sessionCount() == 1)
            await #expect {
                try await transport.register(offer: browserOffer())
            } throws: { ($0 as? WebRTCError)?.code == .limitExceeded }

            first.close()
            for try await _ in first.events {}
            #expect(await first.statistics() == nil)
            let second = try await transport.register(offer: browserOffer())
            #expect(second.id != first.id)
            second.close()
        } catch {
            await transport.close()
            throw error
        }
        await transport.close()
    }
}
