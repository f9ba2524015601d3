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

import AsyncHTTPClient
public import CoreMetrics
import IngestNetworking
import IngestTLS
import LiveStreamModel
public import Logging
public import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
public import Preview
import RTMP
public import RelayAPI
public import ServiceLifecycle
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The relay: an RTMP server for one or many streams, each with one publisher at a time, re-streamed to every
/// target of that stream.
///
/// A publisher connects to a stream's application and is authorized by the stream's key (constant-time) or by its
/// webhook; a refusal is `NetStream.Publish.BadName` before anything reaches a target. Each accepted publish gets its
/// own fan-out to the targets, which connect when the publish starts and unpublish when it ends. Streams are
/// isolated: a stream's failures, limits and targets are its own.
///
/// Run it in a `ServiceGroup`. Graceful shutdown stops accepting, lets live publishers go on for
/// ``RelayConfiguration/shutdownGrace``, then ends their streams so every target gets a clean unpublish.
public final class RelayServer: Service, Sendable {
    let configuration: RelayConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let onServerRunning: @Sendable (SocketAddress) async -> Void
    /// The TLS of `rtmps://` targets: a context is made on first use (see ``sslContext``).
    private let targetTLS: Mutex<TargetTLS>
    /// The certificate for `rtmps://` publishers, if the configuration gives one.
    private let certificate: IngestCertificate?
    private let metrics: RelayMetrics
    private let hubs: Mutex<[StreamHub]>
    private let connectionIDs = Atomic<UInt64>(0)

    private struct Connections {
        var channels: [UInt64: any Channel] = [:]
        var listening = false
        var draining = false
    }
    private let connections = Mutex(Connections())
    private let drained = OneShotEvent()

    /// - Parameters:
    ///   - metricsFactory: where metrics go; the global `MetricsSystem.factory` by default.
    ///   - onServerRunning: called with the bound address once the server listens (tests bind port 0).
    public init(
        configuration: RelayConfiguration,
        eventLoopGroup: (any EventLoopGroup)? = nil,
        metricsFactory: (any MetricsFactory)? = nil,
        logger: Logger,
        onServerRunning: @escaping @Sendable (SocketAddress) async -> Void = { _ in }
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        self.logger = logger
        self.onServerRunning = onServerRunning
        let metricsFactory = metricsFactory ?? MetricsSystem.factory
        let metrics = RelayMetrics(factory: metricsFactory)
        self.metrics = metrics
        do {
            self.certificate = try configuration.tls.map {
                try IngestCertificate(
                    configuration: $0,
                    expiryMetric: "liverelay_tls_certificate_expiry_timestamp_seconds",
                    metricsFactory: metricsFactory
                )
            }
        } catch {
            throw RelayConfigurationError.invalid("cannot use the certificate for rtmps://: \(error)")
        }
        self.hubs = Mutex(
            configuration.streams.map { StreamHub(configuration: $0, metrics: metrics, preview: configuration.preview) }
        )
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = configuration.caFile {
            tls.additionalTrustRoots = [.file(caFile)]
            // A file given on the command line is checked at start, where a mistake in it is the operator's to see.
            do {
                self.targetTLS = Mutex(.made(try NIOSSLContext(configuration: tls)))
            } catch {
                throw RelayConfigurationError.invalid("cannot set up TLS for rtmps:// targets: \(error)")
            }
        } else {
            self.targetTLS = Mutex(.configured(tls))
        }
    }

    private enum TargetTLS {
        case configured(TLSConfiguration)
        case made(NIOSSLContext?)
    }

    /// The context of `rtmps://` targets, made when the first publish starts: making one parses every certificate
    /// authority the system trusts (hundreds of them, about a megabyte of memory), which an idle relay does not need.
    /// If the system's authorities cannot be read, the relay logs it once and trusts none: every `rtmps://` target
    /// then fails its handshake with a certificate error, and `rtmp://` targets go on.
    var sslContext: NIOSSLContext? {
        self.targetTLS.withLock { state in
            switch state {
            case .made(let context):
                return context
            case .configured(let tls):
                let context: NIOSSLContext?
                do {
                    context = try NIOSSLContext(configuration: tls)
                } catch {
                    self.logger.error(
                        "Cannot read the trusted certificate authorities for rtmps:// targets",
                        metadata: ["error.message": "\(error)"]
                    )
                    var none = tls
                    none.trustRoots = .certificates([])
                    context = try? NIOSSLContext(configuration: none)
                }
                state = .made(context)
                return context
            }
        }
    }

    // MARK: Serving

    /// An accepted connection, its pipeline set up, and the client it serves (behind the gateway: whom the PROXY
    /// header names).
    private typealias Accepted = (connection: NIOAsyncChannel<RTMPMessage, RTMPMessage>, client: ClientAddress)

    public func run() async throws {
        let server = try await self.bind()
        guard let address = server.channel.localAddress else {
            throw RelayConfigurationError.invalid("the server socket has no local address")
        }
        self.logger.info(
            "Relay listening",
            metadata: [
                "rtmp.listen": "\(address.displayed)",
                "relay.streams": "\(self.configuration.streams.map(\.name).joined(separator: ","))",
            ]
        )
        self.connections.withLock { $0.listening = true }
        await self.onServerRunning(address)

        try await withThrowingDiscardingTaskGroup { group in
            if let certificate = self.certificate {
                self.logger.info("Relay takes rtmps://", metadata: ["tls.certificate": "\(certificate.summary)"])
                group.addTask { await certificate.keepCurrent(logger: self.logger) }
            }
            group.addTask { await self.endRemainingAfterGrace() }
            try await withGracefulShutdownHandler {
                try await self.accept(from: server)
            } onGracefulShutdown: {
                self.logger.info("Relay stops accepting connections")
                let empty = self.connections.withLock { state in
                    state.draining = true
                    state.listening = false
                    return state.channels.isEmpty
                }
                if empty {
                    self.drained.signal()
                }
                server.channel.close(promise: nil)
            }
            group.cancelAll()
        }
    }

    /// Binds the listener; each accepted connection gets its pipeline (``makePipeline(_:)``).
    private func bind() async throws -> NIOAsyncChannel<Accepted, Never> {
        try await ServerBootstrap(group: self.eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Each connection keeps its receive buffer, adapting between 1 KiB and the configured largest read
            // (``RelayConfiguration/ingestReadBytes``; BENCHMARKS.md has what each size costs).
            .childChannelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(
                    minimum: 1024,
                    initial: min(4096, self.configuration.ingestReadBytes),
                    maximum: self.configuration.ingestReadBytes
                )
            )
            .bind(host: self.configuration.host, port: self.configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture { try self.makePipeline(channel) }
            }
    }

    /// A connection's handlers: the PROXY header from a trusted proxy, TLS if the client speaks it, the idle
    /// timeout, RTMP, and the tap that hands media to the fan-out.
    private func makePipeline(_ channel: any Channel) throws -> Accepted {
        let logger = self.logger
        // Set here rather than as a child channel option: a failing child option is an error of the listener,
        // which would end the relay. One connection without TCP_NODELAY only adds latency.
        do {
            try channel.syncOptions?.setOption(.tcpOption(.tcp_nodelay), value: 1)
        } catch {
            logger.warning("Cannot set TCP_NODELAY on a connection", metadata: ["error": "\(error)"])
        }
        // Behind the gateway, the client is whom its PROXY header names.
        let client = ClientAddress(peer: channel.remoteAddress)
        let pipeline = channel.pipeline.syncOperations
        if let peer = channel.remoteAddress, self.configuration.proxyProtocolFrom.contains(where: { $0.contains(peer) })
        {
            try pipeline.addHandler(ProxyHeaderReader(client: client))
        }
        // After the PROXY header (which the gateway sends in the clear), TLS if the client speaks it.
        try pipeline.addHandler(
            TLSSniffer(
                certificate: self.certificate,
                logger: logger,
                noCertificateHint: "publish with rtmp://, or give the relay one (--tls-cert, --tls-key)"
            ) { reason in
                logger.notice("Connection refused: \(reason)", metadata: ["rtmp.remote": "\(client.address.displayed)"])
            }
        )
        // A peer that sends nothing for the idle timeout is dropped (the handler turns the event into an error with
        // the reason); a TLS handshake that stalls as well.
        try pipeline.addHandler(IdleStateHandler(readTimeout: TimeAmount(self.configuration.publisherIdleTimeout)))
        let rtmp = RTMPConnectionHandler(
            role: .server,
            limits: self.configuration.chunkLimits,
            copiesSingleChunkPayloads: self.configuration.ingestCopiesPayloads
        )
        let tap = IngestTap()
        // Media goes from the decoder to the fan-out directly; the handler after it sees the rest, and the end of
        // each read.
        rtmp.tap = tap
        try pipeline.addHandler(rtmp)
        try pipeline.addHandler(tap)
        return (try NIOAsyncChannel<RTMPMessage, RTMPMessage>(wrappingChannelSynchronously: channel), client)
    }

    /// Serves every connection the listener accepts, each in its own task, until the listener closes.
    private func accept(from server: NIOAsyncChannel<Accepted, Never>) async throws {
        try await server.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { connections in
                for try await (connection, client) in inbound {
                    guard let id = self.admit(connection.channel) else {
                        // Closed through the async channel, which finishes its writer: NIO traps when an unfinished
                        // one is dropped, so closing the bare channel would end the relay.
                        connections.addTask { try? await connection.executeThenClose { _, _ in } }
                        continue
                    }
                    connections.addTask {
                        defer { self.dismiss(id) }
                        await self.handle(connection, client: client, id: id)
                    }
                }
            }
        }
    }

    /// After SIGTERM: live publishers have the grace period, then their streams are ended.
    private func endRemainingAfterGrace() async {
        try? await gracefulShutdown()
        guard !Task.isCancelled else {
            return
        }
        if !(await self.drained.wait(timeout: self.configuration.shutdownGrace)) {
            let open = self.connections.withLock { Array($0.channels.values) }
            self.logger.notice(
                "Shutdown grace period over: ending the remaining streams",
                metadata: ["relay.connections": "\(open.count)"]
            )
            for channel in open {
                channel.close(promise: nil)
            }
        }
    }

    private func admit(_ channel: any Channel) -> UInt64? {
        let id = self.connectionIDs.add(1, ordering: .relaxed).newValue
        let admitted = self.connections.withLock { state in
            guard state.channels.count < self.configuration.maxConnections, !state.draining else {
                return false
            }
            state.channels[id] = channel
            return true
        }
        guard admitted else {
            self.logger.notice(
                "Connection refused: too many connections",
                metadata: [
                    "rtmp.remote": "\(channel.remoteAddress.displayed)",
                    "relay.max_connections": "\(self.configuration.maxConnections)",
                ]
            )
            return nil
        }
        return id
    }

    private func dismiss(_ id: UInt64) {
        let drained = self.connections.withLock { state in
            state.channels[id] = nil
            return state.draining && state.channels.isEmpty
        }
        if drained {
            self.drained.signal()
        }
    }

    /// Serves one RTMP connection until it closes. Errors are logged here and end only this connection.
    private func handle(
        _ connection: NIOAsyncChannel<RTMPMessage, RTMPMessage>,
        client: ClientAddress,
        id: UInt64
    ) async {
        var logger = self.logger
        let remote = connection.channel.remoteAddress.displayed
        logger[metadataKey: "rtmp.connection.id"] = "\(id)"
        logger[metadataKey: "rtmp.remote"] = "\(remote)"
        logger.debug("Connection accepted")

        // The client has this long to get from TCP accept to an accepted publish.
        let channel = connection.channel
        let timeoutLogger = logger
        let setupTimeout = channel.eventLoop.scheduleTask(in: TimeAmount(self.configuration.sessionSetupTimeout)) {
            timeoutLogger.info("Closing connection: no publish within the setup timeout")
            channel.close(promise: nil)
        }
        defer { setupTimeout.cancel() }

        // Built by insertion: a set made from an array reserves room for every element, duplicates included.
        var applications = Set<String>()
        for hub in self.hubs.withLock({ $0 }) {
            applications.insert(hub.configuration.app)
        }
        let setup = RTMPServerSessionStateMachine(configuration: .init(applications: applications))
        var live: PublisherSession.Live?
        do {
            try await connection.executeThenClose { inbound, outbound in
                var publisher = PublisherSession(
                    relay: self,
                    connection: (id, channel, client),
                    outbound: outbound,
                    session: setup,
                    setupTimeout: setupTimeout,
                    logger: logger
                )
                try await withThrowingTaskGroup(of: Void.self) { group in
                    var failure: (any Error)?
                    do {
                        try await publisher.serve(inbound, tasks: &group)
                    } catch {
                        failure = error
                    }
                    live = publisher.live
                    logger = publisher.logger
                    // Whatever ended the publish, the targets send what they hold and unpublish, for at most the
                    // drain timeout; a target still backing off is stopped.
                    if let live {
                        // The stream is free for the next publisher (an encoder taking over) at once; this
                        // session's targets finish sending what they hold meanwhile.
                        live.hub.release(id)
                        logger.info("Publisher disconnected")
                        live.fanOut.finish()
                        let drainTimeout = self.configuration.drainTimeout
                        group.addTask { try? await Task.sleep(for: drainTimeout) }
                        _ = try? await group.next()
                        group.cancelAll()
                    }
                    if let failure {
                        throw failure
                    }
                }
            }
        } catch {
            logger.notice("Connection closed", metadata: ["error": "\(PushTarget.describe(error))"])
        }
        if let live {
            // Released above unless the connection failed before the drain; releasing twice is harmless.
            live.hub.release(id)
        }
    }

    // MARK: Authorization

    enum Authorization {
        case accepted(StreamHub)
        /// Refused, with the description the encoder shows (never the key).
        case refused(String)
    }

    /// Finds the stream a publisher asks for: by app, then by key (each candidate compared in constant time), or by
    /// the app's webhook.
    func authorize(_ request: RTMPPublishRequest, client: String, logger: Logger) async -> Authorization {
        let candidates = self.hubs.withLock { $0.filter { $0.configuration.app == request.app } }
        var matched: StreamHub?
        for hub in candidates {
            switch hub.configuration.authorization {
            case .key(let key):
                // No early exit: every candidate is compared, so timing says nothing about which one matched.
                if key.matches(request.streamName) {
                    matched = hub
                }
            case .webhook(let url, let timeout):
                switch await Self.askWebhook(url: url, timeout: timeout, request: request, client: client) {
                case .success:
                    return .accepted(hub)
                case .failure(let reason):
                    logger.notice(
                        "Publish refused by the webhook",
                        metadata: ["relay.stream": "\(hub.name)", "error": "\(reason.message)"]
                    )
                    return .refused("Not authorized.")
                }
            }
        }
        guard let matched else {
            logger.notice("Publish refused: wrong stream key", metadata: ["rtmp.app": "\(request.app)"])
            return .refused("Invalid stream key.")
        }
        return .accepted(matched)
    }

    struct WebhookRefusal: Error {
        var message: String
    }

    private static func askWebhook(
        url: String,
        timeout: Duration,
        request: RTMPPublishRequest,
        client: String
    ) async -> Result<Void, WebhookRefusal> {
        struct Body: Encodable {
            var app: String
            var name: String
            var query: String?
            var tcUrl: String?
            /// The encoder's IP address, without the port.
            var clientAddress: String
        }
        var call = HTTPClientRequest(url: url)
        call.method = .POST
        call.headers.add(name: "Content-Type", value: "application/json")
        do {
            let body = try JSONEncoder().encode(
                Body(
                    app: request.app,
                    name: request.streamName,
                    query: request.query,
                    tcUrl: request.tcURL,
                    clientAddress: client
                )
            )
            call.body = .bytes(ByteBuffer(bytes: body))
            let response = try await HTTPClient.shared.execute(call, timeout: TimeAmount(timeout))
            guard (200..<300).contains(response.status.code) else {
                return .failure(.init(message: "the webhook answered \(response.status.code)"))
            }
            return .success(())
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            return .failure(.init(message: "the webhook did not answer within \(timeout)"))
        } catch {
            return .failure(.init(message: "the webhook is unreachable: \(PushTarget.describe(error))"))
        }
    }

    // MARK: Control and observation

    /// Ready when it listens and is not draining: what `/readyz` answers.
    public var isReady: Bool { self.connections.withLock { $0.listening && !$0.draining } }

    /// Every stream's status, in configuration order.
    /// The stream named `name` (for tests that look inside its publish).
    func hub(named name: String) -> StreamHub? {
        self.hubs.withLock { $0.first { $0.name == name } }
    }

    public var statuses: [StreamStatus] { self.hubs.withLock { $0 }.map(\.status) }

    /// Whether any stream has a publisher now.
    public var hasPublisher: Bool { self.hubs.withLock { $0 }.contains { $0.publisher != nil } }

    public func status(stream: String) -> StreamStatus? {
        self.hubs.withLock { $0.first { $0.name == stream } }?.status
    }

    /// The live preview of a stream, or `nil` if there is no such stream or its preview is disabled.
    public func preview(stream: String) -> PreviewStream? {
        guard let hub = self.hubs.withLock({ $0.first { $0.name == stream } }), hub.configuration.previewEnabled else {
            return nil
        }
        return hub.preview
    }

    public enum ControlError: Error, Equatable {
        case noSuchStream
        case noSuchTarget
    }

    /// Enables or disables one target of a stream, at once if the stream is live.
    public func setTarget(stream: String, target: String, enabled: Bool) throws(ControlError) {
        guard let hub = self.hubs.withLock({ $0.first { $0.name == stream } }) else {
            throw .noSuchStream
        }
        guard hub.setTarget(target, enabled: enabled) else {
            throw .noSuchTarget
        }
        self.logger.info(
            enabled ? "Target enabled" : "Target disabled",
            metadata: ["relay.stream": "\(stream)", "relay.target.name": "\(target)"]
        )
    }

    /// Applies a reloaded configuration's streams: new streams are served, removed ones disconnected, changed ones
    /// updated in place (a live publish keeps going; only the targets that changed restart).
    public func reload(streams: [StreamConfiguration]) throws(RelayConfigurationError) {
        var candidate = self.configuration
        candidate.streams = streams
        try candidate.validate()
        let (removed, changed, added) = self.hubs.withLock {
            hubs -> ([StreamHub], [(StreamHub, StreamConfiguration)], [String]) in
            var removed: [StreamHub] = []
            var changed: [(StreamHub, StreamConfiguration)] = []
            var added: [String] = []
            var next: [StreamHub] = []
            for stream in streams {
                if let hub = hubs.first(where: { $0.name == stream.name }) {
                    if hub.configuration.app != stream.app || hub.configuration.authorization != stream.authorization {
                        // Another app or key is another stream: the current publisher must reconnect.
                        removed.append(hub)
                        next.append(
                            StreamHub(configuration: stream, metrics: self.metrics, preview: self.configuration.preview)
                        )
                    } else {
                        if hub.configuration != stream {
                            changed.append((hub, stream))
                        }
                        next.append(hub)
                    }
                } else {
                    added.append(stream.name)
                    next.append(
                        StreamHub(configuration: stream, metrics: self.metrics, preview: self.configuration.preview)
                    )
                }
            }
            removed += hubs.filter { hub in !streams.contains { $0.name == hub.name } }
            hubs = next
            return (removed, changed, added)
        }
        for hub in removed {
            hub.close()
        }
        for (hub, stream) in changed {
            hub.update(stream)
        }
        self.logger.info(
            "Configuration reloaded",
            metadata: [
                "relay.streams.added": "\(added.joined(separator: ","))",
                "relay.streams.changed": "\(changed.map(\.0.name).joined(separator: ","))",
                "relay.streams.removed_or_replaced": "\(removed.map(\.name).joined(separator: ","))",
            ]
        )
    }

    /// Sets the gauges from the current stats; call before rendering metrics.
    public func refreshMetrics() {
        let hubs = self.hubs.withLock { $0 }
        for hub in hubs {
            let status = hub.status
            let stream = [("stream", hub.name)]
            self.metrics.gauge("liverelay_publisher_connected", stream).record(status.state == "live" ? 1 : 0)
            if let ingest = status.ingest {
                self.metrics.gauge("liverelay_ingest_bitrate_bps", stream).record(ingest.bitrate)
                self.metrics.gauge("liverelay_ingest_frame_rate", stream).record(ingest.frameRate)
                self.metrics.gauge("liverelay_ingest_keyframe_interval_seconds", stream)
                    .record(ingest.keyframeIntervalSeconds ?? 0)
            }
            self.metrics.gauge("liverelay_ingest_rule_broken", stream + [("rule", "maxKeyframeInterval")])
                .record(status.warnings.isEmpty ? 0 : 1)
            let running = hub.publisher?.fanOut.targets ?? []
            for target in status.targets {
                let labels = stream + [("target", target.name)]
                for state in PushTargetState.allNames {
                    self.metrics.gauge("liverelay_target_state", labels + [("state", state)])
                        .record(state == target.state ? 1 : 0)
                }
                self.metrics.gauge("liverelay_target_queue_bytes", labels).record(target.queuedBytes)
                if let pushTarget = running.first(where: { $0.configuration.name == target.name }) {
                    // The target's own counter remembers what it reported, so the counter moves by the difference.
                    let drops = pushTarget.queue.statistics.droppedMessages
                    let counter = pushTarget.metrics
                    let delta = counter.reportedDrops.withLock { reported in
                        defer { reported = drops }
                        return max(0, drops - reported)
                    }
                    counter.droppedMessages.increment(by: Int64(delta))
                }
            }
        }
    }
}
