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

public import IngestTLS
public import LiveStreamModel
public import NIOCore

/// Wakes a stream's relay when the gateway holds a connection for it.
///
/// In Kubernetes it scales the relay's Deployment to one replica through the scale subresource, because KEDA alone
/// would notice the held connection only at its next poll; in local mode it starts a relay process. The gateway
/// calls ``activate(_:)`` once per stream while connections are held for it, not once per connection, and does not
/// wait for the relay: readiness arrives as a route update.
public protocol GatewayActivator: Sendable {
    func activate(_ stream: StreamID) async
}

/// The gateway's limits. The defaults suit a gateway in front of a few hundred streams.
public struct GatewayConfiguration: Sendable {
    /// The address every listener binds; one listener per route port.
    public var host: String
    /// Connections held at once for one stream. A publisher reconnecting in a loop must not eat the gateway.
    public var maxHeldPerStream: Int
    /// Connections held at once over all streams.
    public var maxHeldTotal: Int
    /// How long a connection may be held before it is refused. A cold relay pulls an image and starts; RTMP
    /// encoders give up after about 30 s of handshake silence anyway.
    public var holdTimeout: Duration
    /// Bytes read from a held client before reading stops. An RTMP client sends C0+C1 (1,537 bytes) and waits for
    /// S0+S1, so it never comes close; a non-RTMP client that keeps sending is throttled by TCP, not buffered.
    public var holdBufferSize: Int
    /// How long connecting to a ready upstream may take.
    public var connectTimeout: Duration
    /// How long proxied connections may go on after graceful shutdown starts.
    public var shutdownGrace: Duration
    /// A port on which the gateway serves every stream that has a stream key, routing each connection by the
    /// application and key it publishes to (`rtmp://GATEWAY:PORT/APP/KEY`), or `nil` for none. For where a port per
    /// stream is dear: a cloud load balancer takes few listeners (an AWS Network Load Balancer 50). The gateway
    /// answers the encoder's `connect` and `createStream` itself, then hands the connection to the stream's relay.
    public var sharedIngestPort: Int?
    /// How long an encoder on the shared ingest port may take from connecting to naming its stream (`publish`).
    public var ingestSetupTimeout: Duration
    /// The certificate for encoders that publish with `rtmps://`, on every port (stream ports and the shared one),
    /// or `nil` for `rtmp://` only. A TLS client is told apart from an RTMP one by its first byte.
    public var tls: IngestTLSConfiguration?
    /// The largest read from an encoder's connection, in bytes (NIO's adaptive receive allocator grows up to it), or
    /// `nil` for NIO's default (64 KiB). For benchmarks that compare the splice with the relay at one read size.
    public var ingestReadBytes: Int? = nil
    /// Where an upstream's host name leads, when not through the system's resolver (DNS): given the route's host
    /// and port, the address to connect to, or `nil` to resolve it as usual. For tests that run relays as processes
    /// of their own machine behind names such as `ls-NAME.NAMESPACE.svc`, as kube-proxy and cluster DNS would.
    public var upstreamAddress: (@Sendable (_ host: String, _ port: Int) -> SocketAddress?)? = nil

    public init(
        host: String = "0.0.0.0",
        maxHeldPerStream: Int = 16,
        maxHeldTotal: Int = 1024,
        holdTimeout: Duration = .seconds(60),
        holdBufferSize: Int = 64 * 1024,
        connectTimeout: Duration = .seconds(5),
        shutdownGrace: Duration = .seconds(30),
        sharedIngestPort: Int? = nil,
        ingestSetupTimeout: Duration = .seconds(10),
        tls: IngestTLSConfiguration? = nil
    ) {
        self.host = host
        self.maxHeldPerStream = maxHeldPerStream
        self.maxHeldTotal = maxHeldTotal
        self.holdTimeout = holdTimeout
        self.holdBufferSize = holdBufferSize
        self.connectTimeout = connectTimeout
        self.shutdownGrace = shutdownGrace
        self.sharedIngestPort = sharedIngestPort
        self.ingestSetupTimeout = ingestSetupTimeout
        self.tls = tls
    }

    /// Throws ``GatewayError`` with code ``GatewayError/Code/invalidConfiguration`` for a limit that cannot work.
    public func validate() throws {
        guard self.maxHeldPerStream >= 0, self.maxHeldTotal >= 0 else {
            throw GatewayError.invalidConfiguration("held-connection limits cannot be negative")
        }
        guard self.holdBufferSize > 0 else {
            throw GatewayError.invalidConfiguration("holdBufferSize must be positive, got \(self.holdBufferSize)")
        }
        guard self.holdTimeout > .zero, self.connectTimeout > .zero, self.shutdownGrace >= .zero,
            self.ingestSetupTimeout > .zero
        else {
            throw GatewayError.invalidConfiguration("timeouts must be positive")
        }
        if let port = self.sharedIngestPort, !(0...65535).contains(port) {
            throw GatewayError.invalidConfiguration("sharedIngestPort must be a TCP port (0-65535), got \(port)")
        }
    }
}
