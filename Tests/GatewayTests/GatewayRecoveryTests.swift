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
import Gateway
import Hummingbird
import HummingbirdTesting
import LiveStreamModel
import Logging
import NIOCore
import PeerTestSupport
import Prometheus
import Testing

@Suite("Gateway: unreachable relays and HTTP", .timeLimit(.minutes(3)))
struct GatewayRecoveryTests {
    @Test("A relay that refuses the connection (restarting) gets the client held and retried, not refused")
    func unreachableUpstreamIsHeld() async throws {
        let activator = CountingActivator()
        let port = try freeTCPPort()
        let dead = try freeTCPPort()  // nothing listens here: connect is refused at once
        let logs = LogStore()
        try await withGateway(routes: [try route(port: port, upstream: dead)], activator: activator, logs: logs) {
            gateway,
            _ in
            let client = try await connect(port: port)
            try await client.executeThenClose { inbound, outbound in
                try await outbound.write(patternBytes(count: 1537))
                // The failed connect makes the connection held, which wakes the relay like any held connection.
                await activator.waitForCall()
                #expect(gateway.connections(for: testStream) == (live: 0, held: 1))

                try await withUpstream(collectThenEcho) { upstream in
                    // The relay is back, on another port (as a restarted local relay is).
                    gateway.routes.update([try route(port: port, upstream: upstream)])
                    // The next retry finds it. (A held client that hangs up is gone, so the end of input waits
                    // until the connection is proxied.)
                    await gateway.waitForConnections(of: testStream) { live, _ in live != 0 }
                    try await outbound.write(patternBytes(count: 3000, offset: 1537))
                    outbound.finish()
                    #expect(await readToEnd(inbound) == patternBytes(count: 4537))
                }
            }
            let statistics = try #require(gateway.statistics(for: testStream))
            #expect(statistics.held == 0)
            #expect(statistics.bytesIn == 4537)
            // Logged when the first connect failed (after the hold that woke the relay, so checked here, once the
            // retry that followed it has proxied the connection).
            #expect(logs.contains("Cannot connect to the relay: holding the connection and retrying"))
            #expect(!logs.all.contains { $0.hasPrefix("notice Connection refused") })
        }
    }

    @Test("A relay that stays unreachable is given up on at the hold timeout, with the reason")
    func unreachableUpstreamTimesOut() async throws {
        let port = try freeTCPPort()
        let dead = try freeTCPPort()
        let logs = LogStore()
        try await withGateway(
            routes: [try route(port: port, upstream: dead)],
            configuration: .test(holdTimeout: .milliseconds(600)),
            logs: logs
        ) { gateway, _ in
            let client = try await connect(port: port)
            try await client.executeThenClose { inbound, outbound in
                try await outbound.write(patternBytes(count: 10))
                // The gateway closes the connection: the read ends.
                #expect(await readToEnd(inbound).readableBytes == 0)
            }
            #expect(logs.contains("Connection refused: hold timeout", "streams/alice"))
            #expect(gateway.connections(for: testStream) == (live: 0, held: 0))
        }
    }

    @Test("/keda, /api/v1/routes, /metrics, /healthz and /readyz answer from the running gateway")
    func httpEndpoints() async throws {
        let registry = PrometheusCollectorRegistry()
        let port = try freeTCPPort()
        let other = StreamID(namespace: "streams", name: "bob")
        let routes = GatewayRoutes([try route(port: port)])
        let activator = CountingActivator()
        let (listening, listeningContinuation) = AsyncStream<Void>.makeStream()
        let gateway = try Gateway(
            configuration: .test(),
            routes: routes,
            activator: activator,
            metricsFactory: PrometheusMetricsFactory(registry: registry),
            logger: quietLogger,
            onListening: { addresses in
                if !addresses.isEmpty {
                    listeningContinuation.yield()
                }
            }
        )
        let application = makeGatewayHTTPApplication(
            gateway: gateway,
            registry: registry,
            host: "127.0.0.1",
            port: 0,
            logger: quietLogger
        )
        try await application.test(.live) { http in
            // Not running yet: not ready.
            try await http.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await withRunning(gateway) {
                var listened = listening.makeAsyncIterator()
                await listened.next()
                #expect(gateway.isReady)
                try await http.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
                try await http.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }

                let client = try await connect(port: port)
                try await client.executeThenClose { _, outbound in
                    try await outbound.write(patternBytes(count: 10))
                    await activator.waitForCall()
                    try await http.execute(uri: "/keda/streams/streams/alice", method: .get) { response in
                        #expect(response.status == .ok)
                        #expect(response.headers[.contentType] == "application/json")
                        let body = String(buffer: response.body)
                        #expect(body == #"{"connections":1,"held":1,"live":0,"stream":"streams\/alice"}"#)
                    }
                    // A stream without a route or connection: zero, not an error, so KEDA reads it as idle.
                    try await http.execute(uri: "/keda/streams/\(other.namespace)/\(other.name)", method: .get) {
                        #expect(String(buffer: $0.body).contains(#""connections":0"#))
                    }
                    try await http.execute(uri: "/api/v1/routes", method: .get) { response in
                        let body = String(buffer: response.body)
                        #expect(body.contains(#""port":\#(port)"#))
                        #expect(body.contains(#""relayReady":false"#))
                        #expect(body.contains(#""held":1"#))
                    }
                    try await http.execute(uri: "/metrics", method: .get) { response in
                        let text = String(buffer: response.body)
                        #expect(
                            text.contains(
                                #"liverelay_gateway_connections{namespace="streams",stream="alice",state="held"} 1"#
                            )
                        )
                    }
                    outbound.finish()
                }
            }
        }
    }
}

/// Runs `gateway` for the duration of `body`, then shuts it down.
private func withRunning(_ gateway: Gateway, _ body: () async throws -> Void) async throws {
    try await withThrowingTaskGroup { tasks in
        tasks.addTask { try await gateway.run() }
        defer { tasks.cancelAll() }
        try await body()
    }
}
