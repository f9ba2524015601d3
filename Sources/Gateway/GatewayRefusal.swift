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

import IngestTLS

/// Why the gateway turns a connection away: what its log says (``reason``, never a key), what an encoder is told as
/// the answer to its publish (``encoderMessage``; ffmpeg prints it, OBS shows it), and the bounded label the refusal
/// counts under in `liverelay_gateway_refused_total{reason=...}` (``metricLabel``).
///
/// Errors are kept as their text: a refusal is compared in tests and logged, never thrown.
enum GatewayRefusal: Hashable, Sendable {
    /// Nothing is routed on the port the connection came to.
    case noRoute
    /// The stream is suspended (Go Offline).
    case suspended
    /// The client's address is outside the route's `allowedSourceRanges`.
    case sourceRange
    /// No stream has the key published on the shared ingest port. Only the application is kept, never the key:
    /// it is enough to tell a typo in it from a wrong key.
    case unknownKey(app: String)
    /// The stream holds as many connections as `--max-held-per-stream` allows.
    case heldPerStreamLimit(Int)
    /// The gateway holds as many connections as `--max-held-total` allows.
    case heldTotalLimit(Int)
    /// The relay was not ready within the hold timeout; `connectError` is set when it had an upstream that did not
    /// take the connection.
    case holdTimeout(Duration, connectError: String?)
    /// The relay did not take the connection, and the connection cannot be held to try again.
    indirect case upstreamUnreachable(error: String, cannotHold: GatewayRefusal)
    /// The route went away: while the connection was held, or before it was set up.
    case routeRemoved(whileHeld: Bool)
    /// The gateway is draining.
    case shuttingDown
    /// The proxy's handlers could not be added to a pipeline.
    case proxySetupFailed(error: String)
    /// Shared ingest port: the relay did not complete the gateway's RTMP handshake in time.
    case relayHandshakeTimeout(Duration)
    /// Shared ingest port: the relay closed its connection before it answered the publish.
    case relayClosed
    /// Shared ingest port: the relay broke RTMP before it answered the publish.
    case relayProtocolError(error: String)
    /// Shared ingest port: the client broke RTMP (or is no RTMP client) before it published.
    case clientProtocolError(error: String)
    /// Shared ingest port: the client did not publish within the setup timeout.
    case setupTimeout(Duration)
    /// `rtmps://`: a TLS client without a certificate to answer it, or a failed TLS handshake.
    case tls(TLSRefusal)

    /// What the log says after "Connection refused: ". Never a stream key.
    var reason: String {
        switch self {
        case .noRoute:
            "no route for this port"
        case .suspended:
            "the stream is suspended"
        case .sourceRange:
            "source address outside allowedSourceRanges"
        case .unknownKey(let app):
            "unknown stream key for application \(app)"
        case .heldPerStreamLimit(let limit):
            "held-per-stream limit (\(limit)) reached"
        case .heldTotalLimit(let limit):
            "held-total limit (\(limit)) reached"
        case .holdTimeout(let timeout, connectError: nil):
            "hold timeout: the relay was not ready within \(timeout)"
        case .holdTimeout(let timeout, connectError: let error?):
            "hold timeout: the relay was not reachable within \(timeout): \(error)"
        case .upstreamUnreachable(let error, let cannotHold):
            "cannot connect to the relay (\(error)) and cannot hold the connection: \(cannotHold.reason)"
        case .routeRemoved(whileHeld: true):
            "the route was removed while the connection was held"
        case .routeRemoved(whileHeld: false):
            "the route was removed before the connection was set up"
        case .shuttingDown:
            "the gateway is shutting down"
        case .proxySetupFailed(let error):
            "cannot set up the proxy: \(error)"
        case .relayHandshakeTimeout(let timeout):
            "the relay did not complete the RTMP handshake within \(timeout)"
        case .relayClosed:
            "the relay closed the connection before answering the publish"
        case .relayProtocolError(let error):
            "RTMP error from the relay: \(error)"
        case .clientProtocolError(let error):
            "RTMP error before publish: \(error)"
        case .setupTimeout(let timeout):
            "RTMP client did not publish within \(timeout) of connecting"
        case .tls(let refusal):
            refusal.description
        }
    }

    /// What the encoder is told, as the `onStatus` error that answers its publish.
    var encoderMessage: String {
        switch self {
        case .noRoute:
            "No stream is published on this port."
        case .suspended:
            "The stream is offline: it is suspended."
        case .sourceRange:
            "The stream does not take publishers from this address."
        case .unknownKey:
            "No stream has this key."
        default:
            "The stream's relay is not available: \(self.reason)."
        }
    }

    /// The `reason` label of `liverelay_gateway_refused_total`: one per kind of refusal, without its numbers and
    /// details, so the metric's cardinality stays bounded.
    var metricLabel: String {
        switch self {
        case .noRoute: "no_route"
        case .suspended: "suspended"
        case .sourceRange: "source_range"
        case .unknownKey: "unknown_key"
        case .heldPerStreamLimit: "held_per_stream_limit"
        case .heldTotalLimit: "held_total_limit"
        case .holdTimeout: "hold_timeout"
        case .upstreamUnreachable: "upstream_unreachable"
        case .routeRemoved: "route_removed"
        case .shuttingDown: "shutting_down"
        case .proxySetupFailed: "proxy_setup"
        case .relayHandshakeTimeout: "relay_handshake_timeout"
        case .relayClosed: "relay_closed"
        // The labels these had when they were recovered from the reason's text: dashboards keep working.
        case .relayProtocolError, .clientProtocolError, .setupTimeout: "rtmp_error"
        case .tls(.noCertificate): "tls_without_certificate"
        case .tls(.handshakeFailed): "tls_handshake"
        }
    }
}
