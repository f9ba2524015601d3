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
import Logging
import NIOCore
import NIOEmbedded
import Prometheus
import Testing

@testable import Gateway

/// The connection handler on an `EmbeddedChannel`: its hold timer runs on the `EmbeddedEventLoop`'s clock, which the
/// test advances, so a hold of 30 s takes no time at all.
@Suite("GatewayConnectionHandler in virtual time")
struct GatewayConnectionHandlerTests {
    private struct Held {
        let loop = EmbeddedEventLoop()
        let channel: EmbeddedChannel
        let gateway: Gateway
        let registry = PrometheusCollectorRegistry()
        let logs = LogStore()

        /// A connection admitted and held (its route has no upstream), active, having sent its C0.
        init(holdTimeout: Duration) throws {
            let held = try route(port: 1935)
            self.gateway = try Gateway(
                configuration: .test(holdTimeout: holdTimeout),
                routes: GatewayRoutes([held]),
                activator: CountingActivator(),
                metricsFactory: PrometheusMetricsFactory(registry: self.registry),
                logger: self.logs.logger()
            )
            #expect(self.gateway.hold(testStream) == nil)
            self.channel = EmbeddedChannel(loop: self.loop)
            let handler = GatewayConnectionHandler(
                gateway: self.gateway,
                route: held,
                held: true,
                now: self.loop.now,
                logger: self.logs.logger()
            )
            try self.channel.pipeline.syncOperations.addHandler(handler)
            try self.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1935)).wait()
            try self.channel.writeInbound(ByteBuffer(bytes: [3]))
        }

        func refusals(_ label: String) -> Bool {
            self.registry.emitToString().split(separator: "\n").contains {
                $0.hasPrefix("liverelay_gateway_refused_total{") && $0.contains(#"reason="\#(label)""#)
                    && $0.hasSuffix(" 1")
            }
        }
    }

    @Test("A held connection is refused at the hold timeout of its event loop's clock, and counted as hold_timeout")
    func holdTimeout() throws {
        let held = try Held(holdTimeout: .seconds(30))
        #expect(held.logs.contains("Holding connection until the relay is ready"))

        held.loop.advanceTime(by: .seconds(30) - .milliseconds(1))
        #expect(held.gateway.connections(for: testStream) == (live: 0, held: 1))
        #expect(!held.logs.contains("Connection refused"))

        held.loop.advanceTime(by: .milliseconds(1))
        #expect(
            held.logs.contains(
                "notice Connection refused: hold timeout: the relay was not ready within 30.0 seconds",
                "gateway.stream=streams/alice"
            ),
            "\(held.logs.all)"
        )
        #expect(held.refusals("hold_timeout"))
        #expect(held.gateway.connections(for: testStream) == (live: 0, held: 0))
        #expect(held.gateway.statistics(for: testStream)?.holdTime == .seconds(30))
        // Answered in RTMP (the encoder hears why at its publish), not closed.
        #expect(held.channel.isActive)
        _ = try? held.channel.finish()
    }

    @Test("A held client that leaves gives its hold back after the time it was held, and is not refused")
    func clientLeaves() throws {
        let held = try Held(holdTimeout: .seconds(30))
        held.loop.advanceTime(by: .seconds(5))
        try held.channel.close().wait()
        #expect(held.logs.contains("Held client disconnected before the relay was ready"))
        #expect(held.gateway.connections(for: testStream) == (live: 0, held: 0))
        #expect(held.gateway.statistics(for: testStream)?.holdTime == .seconds(5))
        // The hold timer was cancelled with the connection: its moment passes without a refusal.
        held.loop.advanceTime(by: .seconds(60))
        #expect(!held.logs.contains("Connection refused"))
    }
}
