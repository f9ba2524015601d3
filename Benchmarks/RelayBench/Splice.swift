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

import ArgumentParser
import Gateway
import LiveStreamModel
import Logging
import ServiceLifecycle
import UnixSignals

/// `liverelay-bench splice`: the gateway's TCP splice, alone, between publishers and the sink: the floor of a SwiftNIO
/// media path. It moves the same bytes a relay moves with one read and one write per segment and nothing else (no
/// RTMP parsing, no queue, no fan-out), so what it costs is what NIO costs to move them before the relay does any
/// work of its own (`tools/bench-relay.sh --paths splice`, fan-out 1 only).
struct Splice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Proxy each listed port to the sink through the gateway's splice (the NIO floor of a relay)."
    )

    @Option(help: "The sink, as host:port.")
    var upstream: String

    @Option(help: "Ports to listen on, on 127.0.0.1, separated by spaces or commas: one route each.")
    var ports: String

    @Option(help: "Largest read from a publisher's connection, in bytes (NIO's default, 64 KiB, if not given).")
    var readBytes: Int?

    mutating func run() async throws {
        let parts = self.upstream.split(separator: ":")
        guard parts.count == 2, let upstreamPort = Int(parts[1]) else {
            throw ValidationError("--upstream must be host:port")
        }
        let upstream = GatewayRoute.Upstream(host: String(parts[0]), port: upstreamPort)
        let ports = self.ports.split(whereSeparator: { $0 == " " || $0 == "," }).compactMap { Int($0) }
        guard !ports.isEmpty else {
            throw ValidationError("--ports names no port")
        }
        let loopback = try IPRange("127.0.0.1/32")
        let routes = GatewayRoutes(
            ports.enumerated().map { index, port in
                GatewayRoute(
                    stream: StreamID(namespace: "bench", name: "s\(index + 1)"),
                    listenPort: port,
                    upstream: upstream,
                    allowedSourceRanges: [loopback]
                )
            }
        )
        var logger = Logger(label: "liverelay-bench.splice")
        logger.logLevel = .warning
        var configuration = GatewayConfiguration(host: "127.0.0.1", shutdownGrace: .seconds(2))
        configuration.ingestReadBytes = self.readBytes
        let gateway = try Gateway(
            configuration: configuration,
            routes: routes,
            activator: NoActivator(),
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: gateway)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}

/// Every route has its upstream from the start: nothing is ever held, so nothing needs waking.
private struct NoActivator: GatewayActivator {
    func activate(_ stream: StreamID) async {}
}
