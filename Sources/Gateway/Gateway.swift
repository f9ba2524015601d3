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

public import CoreMetrics
import IngestNetworking
public import IngestTLS
public import LiveStreamModel
public import Logging
public import NIOCore
import NIOPosix
import RTMP
public import ServiceLifecycle
import Synchronization

/// The always-on gateway: a listener per stream port, hold-and-activate for streams whose relay is scaled to zero,
/// a TCP proxy to the relay, and per-stream connection accounting for KEDA.
///
/// On each connection the gateway looks up the route of the port it arrived on and refuses (closes at once, with a
/// log line naming the stream and the reason) when there is no route, the route is suspended, or the source address
/// is outside the route's `allowedSourceRanges`. With a ready upstream it proxies at once. Without one it holds the
/// connection: it counts it for the stream immediately (so KEDA sees it), asks the ``GatewayActivator`` to wake the
/// relay, keeps the client's first bytes, and splices to the relay the moment a route update gives it an upstream.
/// Held connections are bounded per stream, in total and in time.
///
/// Run it in a `ServiceGroup`. Graceful shutdown closes the listeners, lets connections go on for
/// ``GatewayConfiguration/shutdownGrace``, then closes what is left.
public final class Gateway: Service, Sendable {
    let configuration: GatewayConfiguration
    /// The route table this gateway serves; the route source updates it.
    public let routes: GatewayRoutes
    let accounting: GatewayAccounting
    private let activator: any GatewayActivator
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let onListening: @Sendable ([Int: SocketAddress]) async -> Void
    private let activations: (stream: AsyncStream<StreamID>, continuation: AsyncStream<StreamID>.Continuation)
    /// The certificate for `rtmps://`, if the configuration gives one.
    let certificate: IngestCertificate?
    private let onCertificateReload: @Sendable (IngestTLSReload) -> Void

    private struct Registry {
        var channels: [ObjectIdentifier: any Channel] = [:]
        /// The proxied connections of each stream, with how to end one for a reason the encoder shows.
        var live: [StreamID: [ObjectIdentifier: LiveConnection]] = [:]
        var listening = false
        var draining = false
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let registry = Mutex(Registry())

    /// - Parameters:
    ///   - routes: the route table; the route source keeps updating it while the gateway runs.
    ///   - activator: wakes a stream's relay when a connection is held for it.
    ///   - metricsFactory: where metrics go; the global `MetricsSystem.factory` by default.
    ///   - onListening: called after every change of listeners with the bound address of each route port (empty
    ///     after shutdown), so tests know when a port opened or closed.
    ///   - onCertificateReload: called after every look at the TLS files that found them changed, with what came of
    ///     it (the gateway logs it as well).
    /// - Throws: ``GatewayError`` for a configuration that cannot work, or a TLS certificate that cannot be used.
    public init(
        configuration: GatewayConfiguration = .init(),
        routes: GatewayRoutes,
        activator: any GatewayActivator,
        eventLoopGroup: (any EventLoopGroup)? = nil,
        metricsFactory: (any MetricsFactory)? = nil,
        logger: Logger,
        onListening: @escaping @Sendable ([Int: SocketAddress]) async -> Void = { _ in },
        onCertificateReload: @escaping @Sendable (IngestTLSReload) -> Void = { _ in }
    ) throws {
        try configuration.validate()
        let metricsFactory = metricsFactory ?? MetricsSystem.factory
        do {
            self.certificate = try configuration.tls.map {
                try IngestCertificate(
                    configuration: $0,
                    expiryMetric: "liverelay_gateway_tls_certificate_expiry_timestamp_seconds",
                    metricsFactory: metricsFactory
                )
            }
        } catch let error as IngestTLSError {
            throw GatewayError.invalidCertificate(error.message)
        }
        self.onCertificateReload = onCertificateReload
        self.configuration = configuration
        self.routes = routes
        self.activator = activator
        self.eventLoopGroup = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        self.accounting = GatewayAccounting(factory: metricsFactory)
        self.logger = logger
        self.onListening = onListening
        self.activations = AsyncStream.makeStream(of: StreamID.self)
    }

    // MARK: Accounting

    /// The stream's connections now: proxied to the relay, and held waiting for it.
    public func connections(for stream: StreamID) -> (live: Int, held: Int) {
        self.accounting.connections(for: stream)
    }

    /// Returns once `until` holds for the stream's live and held connection counts (at once if it does now), or
    /// when the task is cancelled. For this package's tests, which wait on the counts instead of polling them.
    package func waitForConnections(
        of stream: StreamID,
        until: @escaping @Sendable (_ live: Int, _ held: Int) -> Bool
    ) async {
        await self.accounting.waitForConnections(of: stream, until: until)
    }

    /// The stream's counters, or `nil` if it never had a connection.
    public func statistics(for stream: StreamID) -> GatewayStreamStatistics? {
        self.accounting.statistics(for: stream)
    }

    /// The body KEDA's `metrics-api` trigger reads for the stream: `{"stream":"ns/name","connections":N}`, where N
    /// counts held connections too, so that a held client is what scales the relay from zero.
    public func kedaMetric(for stream: StreamID) -> String {
        let (live, held) = self.connections(for: stream)
        return "{\"stream\":\"\(Self.jsonEscaped(stream.description))\",\"connections\":\(live + held)}"
    }

    private static func jsonEscaped(_ text: String) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case _ where scalar.value < 0x20:
                escaped += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                escaped += String(scalar.value, radix: 16)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    // MARK: Serving

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                // Activations run beside the listeners, each in its own child task: a slow scale call for one
                // stream delays nobody else.
                await withDiscardingTaskGroup { activations in
                    for await stream in self.activations.stream {
                        activations.addTask { await self.activator.activate(stream) }
                    }
                }
            }
            if let certificate = self.certificate {
                self.logger.info(
                    "Gateway takes rtmps:// on every port",
                    metadata: ["tls.certificate": "\(certificate.summary)"]
                )
                group.addTask {
                    await certificate.keepCurrent(logger: self.logger, onReload: self.onCertificateReload)
                }
            }
            await self.serve()
            group.cancelAll()
        }
    }

    private func serve() async {
        // A wake-up means "bring the listeners in line with the routes": a route update, or a retry of ports that
        // could not be bound (another process holds one; it may let go). Route updates arrive coalesced and at
        // most one retry is pending, so the buffer stays small.
        let (wakeups, wake) = AsyncStream.makeStream(of: BindRetry.Wakeup.self)
        var listeners: [Int: any Channel] = [:]
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await routes in self.routes.changes().cancelOnGracefulShutdown() {
                    self.endLiveConnections(suspendedIn: routes)
                    wake.yield(.routes)
                }
                wake.finish()
            }
            var retry = BindRetry()
            for await wakeup in wakeups {
                if wakeup == .retry {
                    retry.fired()
                }
                var ports = Set(self.routes.routes.map(\.listenPort))
                if let shared = self.configuration.sharedIngestPort {
                    ports.insert(shared)
                }
                let unbound = await self.reconcile(&listeners, ports: ports)
                let delay = retry.next(allBound: unbound.isEmpty)
                for (port, error) in unbound.sorted(by: { $0.key < $1.key }) {
                    // One unusable port must not take the other streams down.
                    self.logger.error(
                        "Gateway cannot listen; retrying",
                        metadata: [
                            "gateway.port": "\(port)", "error": "\(error)",
                            "gateway.retry_in": "\(delay.map { "\($0)" } ?? "already scheduled")",
                        ]
                    )
                }
                self.registry.withLock { $0.listening = true }
                await self.onListening(listeners.compactMapValues(\.localAddress))
                if let delay {
                    group.addTask {
                        try? await Task.sleep(for: delay)
                        wake.yield(.retry)
                    }
                }
            }
            // A pending retry has nothing left to do.
            group.cancelAll()
        }

        self.logger.info("Gateway stops accepting connections")
        self.registry.withLock { $0.draining = true }
        for (port, listener) in listeners {
            try? await listener.close()
            self.logger.info("Gateway stopped listening", metadata: ["gateway.port": "\(port)"])
        }
        await self.onListening([:])
        await self.drain()
    }

    /// Opens and closes listeners to match `ports`; returns the ports that could not be bound, with why.
    private func reconcile(_ listeners: inout [Int: any Channel], ports: Set<Int>) async -> [Int: any Error] {
        for (port, listener) in listeners where !ports.contains(port) {
            listeners[port] = nil
            // Connections already accepted on this port stay: closing a server socket leaves its children alone.
            try? await listener.close()
            self.logger.info("Gateway stopped listening", metadata: ["gateway.port": "\(port)"])
        }
        var unbound: [Int: any Error] = [:]
        for port in ports.sorted() where listeners[port] == nil {
            do {
                let listener = try await self.bind(port: port)
                listeners[port] = listener
                self.logger.info(
                    "Gateway listening",
                    metadata: [
                        "gateway.port": "\(port)",
                        "gateway.listen": "\(listener.localAddress.displayed)",
                    ]
                )
            } catch {
                unbound[port] = error
            }
        }
        return unbound
    }

    /// Whether the gateway has opened the listeners of its routes and is not draining: what `/readyz` answers.
    public var isReady: Bool {
        self.registry.withLock { $0.listening && !$0.draining }
    }

    private func bind(port: Int) async throws -> any Channel {
        var bootstrap = ServerBootstrap(group: self.eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.admit(channel, listenPort: port)
                }
            }
        if let maximum = self.configuration.ingestReadBytes {
            bootstrap = bootstrap.childChannelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: min(4096, maximum), maximum: maximum)
            )
        }
        return try await bootstrap.bind(host: self.configuration.host, port: port).get()
    }

    /// Decides what happens to a new connection and sets up its pipeline; runs on the channel's event loop.
    private func admit(_ channel: any Channel, listenPort: Int) throws {
        var logger = self.logger
        logger[metadataKey: "gateway.port"] = "\(listenPort)"
        logger[metadataKey: "gateway.remote"] = "\(channel.remoteAddress.displayed)"

        func close(_ refusal: GatewayRefusal, stream: StreamID?) throws {
            self.logRefusal(refusal, stream: stream, logger: logger)
            try channel.pipeline.syncOperations.addHandler(CloseOnActiveHandler())
        }
        // Refused in RTMP: the encoder gets its handshake and connect answered, then the reason as the answer to its
        // publish, which ffmpeg and OBS show; a connection reset would tell it nothing.
        func refuse(_ refusal: GatewayRefusal, stream: StreamID?) throws {
            self.logRefusal(refusal, stream: stream, logger: logger)
            try channel.pipeline.syncOperations.addHandlers([
                self.sniffer(stream: stream, logger: logger),
                RTMPConnectionHandler(role: .server),
                SharedIngestHandler(gateway: self, logger: logger, refusal: refusal),
            ])
        }

        if listenPort == self.configuration.sharedIngestPort {
            return try self.admitShared(channel, logger: logger, refuse: close)
        }
        guard let route = self.routes.route(forPort: listenPort) else {
            return try refuse(.noRoute, stream: nil)
        }
        logger[metadataKey: "gateway.stream"] = "\(route.stream)"
        if route.suspended {
            return try refuse(.suspended, stream: route.stream)
        }
        guard let remote = channel.remoteAddress,
            route.allowedSourceRanges.contains(where: { $0.contains(remote) })
        else {
            return try refuse(.sourceRange, stream: route.stream)
        }
        guard self.register(channel) else {
            return try close(.shuttingDown, stream: route.stream)
        }

        var held = false
        if route.upstream == nil {
            if let refusal = self.hold(route.stream) {
                return try refuse(refusal, stream: route.stream)
            }
            held = true
        }
        try channel.pipeline.syncOperations.addHandlers([
            self.sniffer(stream: route.stream, logger: logger),
            GatewayConnectionHandler(
                gateway: self,
                route: route,
                held: held,
                now: channel.eventLoop.now,
                logger: logger
            ),
        ])
    }

    /// A connection on the shared ingest port: the gateway speaks RTMP with it until it names its stream, and
    /// ``SharedIngestHandler`` then routes it as if it had come in on the stream's own port.
    private func admitShared(
        _ channel: any Channel,
        logger: Logger,
        refuse: (GatewayRefusal, StreamID?) throws -> Void
    ) throws {
        guard self.register(channel) else {
            return try refuse(.shuttingDown, nil)
        }
        let handlers: [any ChannelHandler] = [
            self.sniffer(stream: nil, logger: logger),
            IngestCapture(limit: self.configuration.holdBufferSize),
            RTMPConnectionHandler(role: .server),
            SharedIngestHandler(gateway: self, logger: logger),
        ]
        try channel.pipeline.syncOperations.addHandlers(handlers)
    }

    /// The first handler of an admitted connection: TLS for an `rtmps://` client; its refusals are the gateway's.
    private func sniffer(stream: StreamID?, logger: Logger) -> TLSSniffer {
        TLSSniffer(
            certificate: self.certificate,
            logger: logger,
            noCertificateHint: "publish with rtmp://, or give the gateway one (--tls-cert, --tls-key)"
        ) { refusal in
            self.logRefusal(.tls(refusal), stream: stream, logger: logger)
        }
    }

    /// Tracks the connection until it closes, for the drain; `false` once the gateway is draining.
    func register(_ channel: any Channel) -> Bool {
        let registered = self.registry.withLock { registry in
            guard !registry.draining else {
                return false
            }
            registry.channels[ObjectIdentifier(channel)] = channel
            return true
        }
        if registered {
            channel.closeFuture.whenComplete { _ in self.unregister(channel) }
        }
        return registered
    }

    /// A proxied connection, and how to end it with a reason its encoder shows; run on its event loop.
    struct LiveConnection: Sendable {
        var channel: any Channel
        var end: @Sendable (String) -> Void
    }

    /// Keeps a proxied connection of `stream` until it closes, so that taking the stream offline ends it.
    func registerLive(_ channel: any Channel, stream: StreamID, end: @escaping @Sendable (String) -> Void) {
        let id = ObjectIdentifier(channel)
        self.registry.withLock { $0.live[stream, default: [:]][id] = LiveConnection(channel: channel, end: end) }
        channel.closeFuture.whenComplete { _ in
            self.registry.withLock { registry in
                registry.live[stream]?[id] = nil
                if registry.live[stream]?.isEmpty == true {
                    registry.live[stream] = nil
                }
            }
        }
    }

    /// Go Offline: the live connections of a stream that is suspended now end with the reason (an RTMP error the
    /// encoder shows), at the route update that says so. A route that goes away leaves its connections alone, as it
    /// leaves its listener's: a route source that relists must not cut live streams.
    private func endLiveConnections(suspendedIn routes: [GatewayRoute]) {
        let suspended = Set(routes.filter(\.suspended).map(\.stream))
        let description = "The stream was taken offline: it is suspended."
        let ending = self.registry.withLock { registry in
            registry.live.compactMap { stream, connections -> (StreamID, [LiveConnection])? in
                suspended.contains(stream) ? (stream, Array(connections.values)) : nil
            }
        }
        for (stream, connections) in ending {
            self.logger.notice(
                "Ending the stream's live connections: \(description)",
                metadata: ["gateway.stream": "\(stream)", "gateway.connections": "\(connections.count)"]
            )
            for connection in connections {
                connection.channel.eventLoop.execute { connection.end(description) }
            }
        }
    }

    /// Counts a connection as held for `stream` if the limits allow, and asks the activator to wake the relay for the
    /// first one (beside the listeners, never on an event loop). Returns why the connection cannot be held, if so.
    func hold(_ stream: StreamID) -> GatewayRefusal? {
        switch self.accounting.hold(
            stream,
            maxPerStream: self.configuration.maxHeldPerStream,
            maxTotal: self.configuration.maxHeldTotal
        ) {
        case .perStreamLimit:
            return .heldPerStreamLimit(self.configuration.maxHeldPerStream)
        case .totalLimit:
            return .heldTotalLimit(self.configuration.maxHeldTotal)
        case .held(let activate):
            if activate {
                self.activations.continuation.yield(stream)
            }
            return nil
        }
    }

    /// Logs a refusal with its reason (never a key) and counts it under its label.
    func logRefusal(_ refusal: GatewayRefusal, stream: StreamID?, logger: Logger) {
        self.accounting.refused(stream, reason: refusal.metricLabel)
        let reason = refusal.reason
        logger.notice(
            "Connection refused: \(reason)",
            metadata: ["gateway.reason": "\(reason)", "gateway.stream": "\(stream.map { "\($0)" } ?? "-")"]
        )
    }

    // MARK: Shutdown

    private func unregister(_ channel: any Channel) {
        let waiters = self.registry.withLock { registry in
            registry.channels[ObjectIdentifier(channel)] = nil
            guard registry.draining, registry.channels.isEmpty else {
                return [CheckedContinuation<Void, Never>]()
            }
            defer { registry.drainWaiters = [] }
            return registry.drainWaiters
        }
        for waiter in waiters {
            waiter.resume()
        }
    }

    /// Waits for the open connections to end, for at most the shutdown grace, then closes the rest.
    private func drain() async {
        let open = self.registry.withLock { $0.channels.count }
        guard open > 0 else {
            return
        }
        self.logger.info("Gateway draining connections", metadata: ["gateway.connections": "\(open)"])
        await withDiscardingTaskGroup { group in
            group.addTask {
                // Also runs when the service is cancelled: then the sleep ends at once.
                try? await Task.sleep(for: self.configuration.shutdownGrace)
                let remaining = self.registry.withLock { Array($0.channels.values) }
                if !remaining.isEmpty {
                    self.logger.notice(
                        "Shutdown grace period over: closing the remaining connections",
                        metadata: ["gateway.connections": "\(remaining.count)"]
                    )
                }
                for channel in remaining {
                    channel.close(promise: nil)
                }
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let drained = self.registry.withLock { registry in
                    guard registry.channels.isEmpty else {
                        registry.drainWaiters.append(continuation)
                        return false
                    }
                    return true
                }
                if drained {
                    continuation.resume()
                }
            }
            group.cancelAll()
        }
    }
}

/// Closes a refused connection as soon as it is active; the refusal is decided in the child initializer, before
/// the channel is registered, where closing it directly would fail the registration instead.
private final class CloseOnActiveHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        context.close(promise: nil)
    }
}

/// When to try binding ports again that could not be bound: after 0.5 s, doubling up to 30 s while any port keeps
/// failing, and from 0.5 s again once every port is bound (or the routes no longer need the ones that failed). At
/// most one retry is pending: a failure seen while one is scheduled waits for it.
struct BindRetry {
    enum Wakeup {
        case routes
        case retry
    }

    static let first: Duration = .milliseconds(500)
    static let maximum: Duration = .seconds(30)

    private var delay: Duration = Self.first
    /// Whether a retry is scheduled and has not come yet.
    private var pending = false

    /// Called after every reconcile with whether it bound every port; returns the delay of the retry to schedule.
    mutating func next(allBound: Bool) -> Duration? {
        if allBound {
            self.delay = Self.first
            return nil
        }
        guard !self.pending else {
            return nil
        }
        let scheduled = self.delay
        self.delay = min(self.delay * 2, Self.maximum)
        self.pending = true
        return scheduled
    }

    /// The scheduled retry has come.
    mutating func fired() {
        self.pending = false
    }
}
