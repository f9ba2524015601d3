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

public import Logging
public import NIOCore
import NIOPosix
import NIOSSL
import RTMP
public import ServiceLifecycle
import Synchronization

/// The relay: an RTMP server for one stream's publisher, which re-streams what it receives to every target.
///
/// It accepts one publisher at a time on the configured application with the configured stream key; a wrong key is
/// refused with `NetStream.Publish.BadName` before anything reaches a target. Each accepted publish gets its own
/// fan-out to the targets, which connect when the publish starts and unpublish when it ends.
///
/// Run it in a `ServiceGroup`: graceful shutdown stops accepting connections and lets a live publisher finish.
public final class RelayServer: Service, Sendable {
    private let configuration: RelayConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let onServerRunning: @Sendable (SocketAddress) async -> Void
    private let sslContext: NIOSSLContext?
    private let publisher = Mutex<UInt64?>(nil)
    private let connections = Mutex<Int>(0)
    private let connectionIDs = Atomic<UInt64>(0)

    /// - Parameter onServerRunning: called with the bound address once the server listens (tests bind port 0).
    public init(
        configuration: RelayConfiguration,
        eventLoopGroup: (any EventLoopGroup)? = nil,
        logger: Logger,
        onServerRunning: @escaping @Sendable (SocketAddress) async -> Void = { _ in }
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        self.logger = logger
        self.onServerRunning = onServerRunning
        if configuration.targets.contains(where: \.url.useTLS) || configuration.caFile != nil {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let caFile = configuration.caFile {
                tls.additionalTrustRoots = [.file(caFile)]
            }
            do {
                self.sslContext = try NIOSSLContext(configuration: tls)
            } catch {
                throw RelayConfigurationError.invalid("cannot set up TLS for rtmps:// targets: \(error)")
            }
        } else {
            self.sslContext = nil
        }
    }

    public func run() async throws {
        let limits = self.configuration.chunkLimits
        let server = try await ServerBootstrap(group: self.eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: self.configuration.host, port: self.configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RTMPConnectionHandler(role: .server, limits: limits))
                    return try NIOAsyncChannel<RTMPMessage, RTMPMessage>(wrappingChannelSynchronously: channel)
                }
            }
        guard let address = server.channel.localAddress else {
            throw RelayConfigurationError.invalid("the server socket has no local address")
        }
        self.logger.info(
            "Relay listening",
            metadata: [
                "rtmp.listen": "\(address)",
                "rtmp.app": "\(self.configuration.app)",
                "relay.targets": "\(self.configuration.targets.map(\.name).joined(separator: ","))",
            ]
        )
        await self.onServerRunning(address)

        try await withGracefulShutdownHandler {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        let admitted = self.connections.withLock { count in
                            guard count < self.configuration.maxConnections else {
                                return false
                            }
                            count += 1
                            return true
                        }
                        guard admitted else {
                            self.logger.notice(
                                "Connection refused: too many connections",
                                metadata: [
                                    "rtmp.remote": "\(connection.channel.remoteAddress.map { "\($0)" } ?? "?")",
                                    "relay.max_connections": "\(self.configuration.maxConnections)",
                                ]
                            )
                            connection.channel.close(promise: nil)
                            continue
                        }
                        group.addTask {
                            defer { self.connections.withLock { $0 -= 1 } }
                            await self.handle(connection)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            self.logger.info("Relay stops accepting connections")
            server.channel.close(promise: nil)
        }
    }

    /// Serves one RTMP connection until it closes. Errors are logged here and end only this connection.
    private func handle(_ connection: NIOAsyncChannel<RTMPMessage, RTMPMessage>) async {
        let id = self.connectionIDs.add(1, ordering: .relaxed).newValue
        var logger = self.logger
        logger[metadataKey: "rtmp.connection.id"] = "\(id)"
        logger[metadataKey: "rtmp.remote"] = "\(connection.channel.remoteAddress.map { "\($0)" } ?? "?")"
        logger.debug("Connection accepted")

        // The client has this long to get from TCP accept to an accepted publish.
        let channel = connection.channel
        let timeoutLogger = logger
        let setupTimeout = channel.eventLoop.scheduleTask(in: TimeAmount(self.configuration.sessionSetupTimeout)) {
            timeoutLogger.info("Closing connection: no publish within the setup timeout")
            channel.close(promise: nil)
        }
        defer { setupTimeout.cancel() }

        var session = RTMPServerSessionStateMachine(configuration: .init(applications: [self.configuration.app]))
        var fanOut: FanOut?
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    var failure: (any Error)?
                    do {
                        try await self.serve(
                            inbound: inbound,
                            outbound: outbound,
                            session: &session,
                            fanOut: &fanOut,
                            connectionID: id,
                            setupTimeout: setupTimeout,
                            group: &group,
                            logger: logger
                        )
                    } catch {
                        failure = error
                    }
                    // Whatever ended the publish, the targets send what they hold and unpublish, for at most the
                    // drain timeout; a target still backing off is stopped.
                    if let fanOut {
                        fanOut.finish()
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
            logger.notice("Connection failed", metadata: ["error": "\(PushTarget.describe(error))"])
        }
        if fanOut != nil {
            self.releasePublisher(id)
            logger.info("Publisher disconnected")
        }
    }

    /// The publisher's read loop: commands answered, the key checked, media handed to the fan-out.
    /// Returns when the connection should close.
    private func serve(
        inbound: NIOAsyncChannelInboundStream<RTMPMessage>,
        outbound: NIOAsyncChannelOutboundWriter<RTMPMessage>,
        session: inout RTMPServerSessionStateMachine,
        fanOut: inout FanOut?,
        connectionID id: UInt64,
        setupTimeout: Scheduled<Void>,
        group: inout ThrowingTaskGroup<Void, any Error>,
        logger: Logger
    ) async throws {
        for try await message in inbound {
            switch session.received(message) {
            case .none:
                break
            case .send(let messages):
                try await outbound.write(contentsOf: messages)
            case .media(let message):
                fanOut?.publish(message)
            case .authorize(let request):
                guard self.configuration.streamKey.matches(request.streamName) else {
                    logger.notice("Publish refused: wrong stream key", metadata: ["rtmp.app": "\(request.app)"])
                    try await outbound.write(contentsOf: session.publishRefused(description: "Invalid stream key."))
                    return
                }
                guard self.claimPublisher(id) else {
                    logger.notice("Publish refused: the stream already has a publisher")
                    try await outbound.write(
                        contentsOf: session.publishRefused(description: "The stream is already being published.")
                    )
                    return
                }
                setupTimeout.cancel()
                let started = FanOut(
                    configuration: self.configuration,
                    sslContext: self.sslContext,
                    eventLoopGroup: self.eventLoopGroup,
                    logger: logger
                )
                fanOut = started
                group.addTask { await started.run() }
                try await outbound.write(contentsOf: session.publishAccepted())
                logger.info("Publisher is live", metadata: ["rtmp.app": "\(request.app)"])
            case .unpublished(let messages):
                logger.info("Publisher ended the stream")
                fanOut?.finish()
                try? await outbound.write(contentsOf: messages)
            case .close(let messages, let error):
                try? await outbound.write(contentsOf: messages)
                logger.notice("Closing connection", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    private func claimPublisher(_ id: UInt64) -> Bool {
        self.publisher.withLock { current in
            guard current == nil else {
                return false
            }
            current = id
            return true
        }
    }

    private func releasePublisher(_ id: UInt64) {
        self.publisher.withLock { current in
            if current == id {
                current = nil
            }
        }
    }
}
