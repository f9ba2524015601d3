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

import Gateway
import LiveStreamModel
import Testing

@testable import LocalRuntime

@Suite("LocalRoutes")
struct LocalRoutesTests {
    static func stream(
        _ name: String,
        port: Int?,
        problem: String? = nil,
        suspended: Bool = false,
        relayRTMPPort: Int? = nil
    ) -> LocalRoutes.Stream {
        LocalRoutes.Stream(
            id: StreamID(namespace: "default", name: name),
            port: port,
            problem: problem,
            allowedSourceRanges: [try! IPRange("10.0.0.0/8")],
            suspended: suspended,
            ingestKey: GatewayRoute.IngestKey(app: "live", key: "k-\(name)"),
            relayRTMPPort: relayRTMPPort
        )
    }

    @Test func aStreamWithoutARelayHasARouteWithoutUpstream() throws {
        let route = try #require(LocalRoutes.route(for: Self.stream("a", port: 1935)))
        #expect(route.stream == StreamID(namespace: "default", name: "a"))
        #expect(route.listenPort == 1935)
        #expect(route.upstream == nil)
        #expect(route.allowedSourceRanges == [try IPRange("10.0.0.0/8")])
        #expect(route.suspended == false)
        #expect(route.ingestKey == GatewayRoute.IngestKey(app: "live", key: "k-a"))
    }

    @Test func aReadyRelayIsTheUpstreamAndReadsTheProxyHeader() throws {
        let route = try #require(LocalRoutes.route(for: Self.stream("a", port: 1935, relayRTMPPort: 40001)))
        #expect(route.upstream == GatewayRoute.Upstream(host: "127.0.0.1", port: 40001, sendsProxyHeader: true))
    }

    @Test func aSuspendedStreamKeepsItsRouteSoTheGatewayRefusesIt() throws {
        let route = try #require(LocalRoutes.route(for: Self.stream("a", port: 1935, suspended: true)))
        #expect(route.suspended)
    }

    @Test func streamsThatCannotRunHaveNoRoute() {
        #expect(LocalRoutes.route(for: Self.stream("a", port: nil)) == nil)
        #expect(LocalRoutes.route(for: Self.stream("a", port: 1935, problem: "no Secret")) == nil)
    }

    @Test func routesAreInPortOrder() {
        let routes = LocalRoutes.routes(for: [
            Self.stream("c", port: 1937),
            Self.stream("a", port: 1935, relayRTMPPort: 40001),
            Self.stream("x", port: nil),
            Self.stream("b", port: 1936, problem: "port taken"),
        ])
        #expect(routes.map(\.listenPort) == [1935, 1937])
        #expect(routes.map(\.stream.name) == ["a", "c"])
    }
}
