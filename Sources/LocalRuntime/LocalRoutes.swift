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

/// The route publisher: local mode's gateway routes, as a pure function of its streams. ``LocalController`` hands
/// the result to `GatewayRoutes` whenever a stream or its relay changes.
enum LocalRoutes {
    /// What the routes need to know of one stream.
    struct Stream: Hashable, Sendable {
        var id: StreamID
        /// The stream's own port on the gateway; `nil` when it has none.
        var port: Int?
        /// Why the stream cannot run; `nil` when it can.
        var problem: String?
        var allowedSourceRanges: [IPRange]
        var suspended: Bool
        /// The stream key, for the gateway's shared ingest port; `nil` for a stream authorized by webhook.
        var ingestKey: GatewayRoute.IngestKey?
        /// The RTMP port of the stream's relay while it is ready; `nil` otherwise.
        var relayRTMPPort: Int?
    }

    /// One route for each stream that can run and has a port, in port order. A stream whose relay is ready has it as
    /// its upstream; the others have none, so the gateway holds their connections (or refuses a suspended stream's).
    static func routes(for streams: some Sequence<Stream>) -> [GatewayRoute] {
        streams.compactMap(Self.route(for:)).sorted { $0.listenPort < $1.listenPort }
    }

    static func route(for stream: Stream) -> GatewayRoute? {
        guard let port = stream.port, stream.problem == nil else {
            return nil
        }
        // The relay reads the gateway's PROXY header (`--proxy-protocol-from 127.0.0.1/32,::1/128`), so it knows
        // the encoder's address.
        let upstream = stream.relayRTMPPort.map {
            GatewayRoute.Upstream(host: "127.0.0.1", port: $0, sendsProxyHeader: true)
        }
        return GatewayRoute(
            stream: stream.id,
            listenPort: port,
            upstream: upstream,
            allowedSourceRanges: stream.allowedSourceRanges,
            suspended: stream.suspended,
            ingestKey: stream.ingestKey
        )
    }
}
