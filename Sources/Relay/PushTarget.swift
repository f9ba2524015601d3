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

import CoreMetrics
import Foundation  // strerror
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import RTMP
import Synchronization
import TimeSupport

/// What a push target is doing, for logs, stats and (later) status.
public enum PushTargetState: Hashable, Sendable, CustomStringConvertible {
    case connecting(attempt: Int)
    case pushing
    case backingOff(attempt: Int, delay: Duration)
    case stopped
    case disabled

    public var description: String {
        switch self {
        case .connecting(let attempt): "connecting (attempt \(attempt))"
        case .pushing: "pushing"
        case .backingOff(let attempt, let delay): "backing off after attempt \(attempt), retry in \(delay)"
        case .stopped: "stopped"
        case .disabled: "disabled"
        }
    }
}

extension PushTargetState {
    /// The state as `StreamStatus.Target.state` reports it.
    var name: String {
        switch self {
        case .connecting: "connecting"
        case .pushing: "pushing"
        case .backingOff: "backingOff"
        case .stopped: "stopped"
        case .disabled: "disabled"
        }
    }

    /// Every ``name``, and `idle` (a target of a stream without a publisher).
    static let allNames = ["connecting", "pushing", "backingOff", "stopped", "disabled", "idle"]
}

/// What the relay knows about one target's connection, for stats and metrics.
struct PushTargetStatistics: Sendable, Hashable {
    var state: PushTargetState = .connecting(attempt: 1)
    var lastError: String?
    /// Connections that reached the publishing state, counting the first.
    var connections = 0
    var bytesSent: UInt64 = 0
    var messagesSent: UInt64 = 0
    var nextRetry: ContinuousClock.Instant?
    var liveSince: ContinuousClock.Instant?
}

/// One target of one live publish: connects, publishes, sends what its queue gives it, and reconnects with
/// backoff while the publisher is live. Its failures are its own: the publisher and other targets never wait.
///
/// Its connections and its queue live on the publisher's event loop (`loop`), beside the fan-out: a message reaches
/// the target's socket without crossing a thread. Its retry loop is a task, which goes to the loop for what it
/// does with the queue.
final class PushTarget: Sendable {
    /// The chunk size of every target connection (sent with Set Chunk Size before `connect`): the fan-out cuts each
    /// payload into chunks of this size once, for all of them.
    static let chunkSize = 4096

    let configuration: PushTargetConfiguration
    let queue: TargetQueue
    /// Signalled by ``stop()``: the target drains what it holds, unpublishes and ends.
    let stopped = OneShotEvent()
    /// The publisher's connection's event loop: the target's connections and queue live there.
    let loop: any EventLoop
    private let sslContext: NIOSSLContext?
    private let connectTimeout: Duration
    private let sendBufferBytes: Int?
    private let maxBehind: Duration
    private let backoff: Backoff
    private let logger: Logger
    let metrics: RelayMetrics.Target
    private let seed: @Sendable () -> GOPSeed
    private let pushingChanged: @Sendable (PushTarget, Bool) -> Void
    private let statistics = Mutex(PushTargetStatistics())
    /// Counted per write on the loop, without a lock; ``snapshot`` adds them.
    private let bytesSent = Atomic<UInt64>(0)
    private let messagesSent = Atomic<UInt64>(0)
    /// Set when the queue asked to drop the connection because the target stayed behind.
    private let fellBehind = Mutex(false)
    /// The current connection, so that ``abort()`` can close it: a write to a peer that stopped reading ends only
    /// when its channel closes. Once aborted, a connection that comes up is closed at once.
    private let connection = Mutex<(channel: (any Channel)?, aborted: Bool)>((nil, false))
    private let drainTimeout: Duration

    init(
        configuration: PushTargetConfiguration,
        relay: RelayConfiguration,
        sslContext: NIOSSLContext?,
        loop: any EventLoop,
        metrics: RelayMetrics.Target,
        logger: Logger,
        seed: @escaping @Sendable () -> GOPSeed,
        pushingChanged: @escaping @Sendable (_ target: PushTarget, _ pushing: Bool) -> Void = { _, _ in }
    ) {
        self.configuration = configuration
        self.queue = TargetQueue(
            limits: .init(
                maxBytes: relay.targetQueueBytes,
                maxDuration: relay.targetQueueDuration,
                maxBehind: relay.targetMaxBehind
            ),
            loop: loop
        )
        self.loop = loop
        self.sslContext = sslContext
        self.connectTimeout = relay.targetConnectTimeout
        self.sendBufferBytes = relay.targetSendBufferBytes
        self.maxBehind = relay.targetMaxBehind
        self.drainTimeout = relay.drainTimeout
        self.backoff = Backoff(initial: relay.reconnectInitial, maximum: relay.reconnectMaximum, jitter: .equal)
        self.metrics = metrics
        self.seed = seed
        self.pushingChanged = pushingChanged
        var logger = logger
        logger[metadataKey: "relay.target.name"] = "\(configuration.name)"
        logger[metadataKey: "relay.target.url"] = "\(configuration.url)"
        self.logger = logger
    }

    /// Ends the target: it sends what it holds and unpublishes, for at most the drain timeout (then it is
    /// aborted), or stops retrying.
    func stop() {
        guard !self.stopped.isSignalled else {
            return
        }
        self.queue.finish()
        self.stopped.signal()
        // Drained, or out of time: a target stuck writing to a peer that stopped reading only notices when its
        // connection closes.
        self.loop.scheduleTask(in: TimeAmount(self.drainTimeout)) { [self] in
            self.abort()
        }
    }

    /// Ends the target now: closes its connection, whatever it is doing.
    func abort() {
        self.queue.finish()
        self.stopped.signal()
        self.connection.withLock { connection in
            connection.aborted = true
            return connection.channel
        }?.close(promise: nil)
    }

    var snapshot: PushTargetStatistics {
        var snapshot = self.statistics.withLock { $0 }
        snapshot.bytesSent = self.bytesSent.load(ordering: .relaxed)
        snapshot.messagesSent = self.messagesSent.load(ordering: .relaxed)
        return snapshot
    }

    /// The channel of the current connection, if any (for tests that check where it runs).
    var channel: (any Channel)? { self.connection.withLock { $0.channel } }

    /// Runs `body` on the loop, where the queue lives, and waits for it.
    private func onLoop(_ body: @escaping @Sendable (PushTarget) -> Void) async {
        try? await self.loop.submit { body(self) }.get()
    }

    /// Pushes until the publisher ends (and the queue is drained), the target is stopped, or the task is cancelled.
    func run() async {
        var backoff = self.backoff
        var attempt = 0
        // The failure last logged as a warning: the same one again, at every retry, is logged at info level, so a
        // target that is down for an hour says so once (its state, attempts and last error are in the stats).
        var warned: String?
        // After a failure, a publisher that ended (or a stop) meanwhile ends the retries.
        while !Task.isCancelled, attempt == 0 || !self.queue.isFinished {
            attempt += 1
            self.fellBehind.withLock { $0 = false }
            if attempt > 1 {
                // A new connection starts at the latest keyframe, with the stream's headers, taken on the loop
                // between two messages of the publisher.
                await self.onLoop { target in
                    target.queue.unpark()
                    let seed = target.seed()
                    target.logger.debug(
                        "Target restarts from the GOP cache",
                        metadata: ["relay.target.seed_messages": "\(seed.messages.count { !$0.kind.isHeader })"]
                    )
                    target.queue.restart(from: seed)
                }
            }
            self.setState(.connecting(attempt: backoff.attempts + 1))
            let started = ContinuousClock.now
            do {
                try await self.pushOnce()
                self.setState(.stopped)
                return
            } catch is CancellationError {
                break
            } catch {
                var reason = Self.describe(error)
                if self.fellBehind.withLock({ $0 }) {
                    reason = "the target stayed behind for more than \(self.maxBehind) (too slow for the stream)"
                }
                self.statistics.withLock { $0.lastError = reason }
                if self.queue.isFinished || Task.isCancelled {
                    self.logger.warning("Target failed as the stream ended", metadata: ["error": "\(reason)"])
                    break
                }
                // A connection that pushed for a while was healthy: start the backoff over.
                if case .pushing = self.snapshot.state {
                    warned = nil
                    if ContinuousClock.now - started > .seconds(5) {
                        backoff.reset()
                    }
                }
                // Nothing queued now could be sent: the next connection starts from the GOP cache.
                await self.onLoop { $0.queue.park() }
                let delay = backoff.nextDelay()
                self.metrics.reconnects.increment()
                self.setState(.backingOff(attempt: backoff.attempts, delay: delay))
                let repeated = warned == reason
                warned = reason
                self.logger.log(
                    level: repeated ? .info : .warning,
                    repeated ? "Target still failing; reconnecting" : "Target failed; reconnecting",
                    metadata: [
                        "error": "\(reason)",
                        "relay.target.attempt": "\(backoff.attempts)",
                        "relay.target.retry_in": "\(delay)",
                    ]
                )
                if await self.stopped.wait(timeout: delay) || Task.isCancelled {
                    break
                }
            }
        }
        self.setState(.stopped)
    }

    /// Records the target's state (and what follows from it for stats), and tells the fan-out when the target starts
    /// or stops pushing.
    private func setState(_ state: PushTargetState) {
        let isPushing = state == .pushing
        let wasPushing = self.statistics.withLock {
            let wasPushing = $0.state == .pushing
            $0.state = state
            switch state {
            case .pushing:
                $0.nextRetry = nil
                $0.liveSince = .now
                $0.connections += 1
            case .backingOff(_, let delay):
                $0.nextRetry = .now + delay
                $0.liveSince = nil
            case .stopped:
                $0.nextRetry = nil
                $0.liveSince = nil
            case .connecting, .disabled:
                break
            }
            return wasPushing
        }
        if isPushing != wasPushing {
            self.pushingChanged(self, isPushing)
        }
    }

    /// One connection: connect, handshake, publish, then send until the queue ends. Throws why it stopped.
    private func pushOnce() async throws {
        let url = self.configuration.url
        let tlsFailure = NIOLockedValueBox<(any Error)?>(nil)
        do {
            try await self.pushOnce(url, tlsFailure: tlsFailure)
        } catch {
            // A failed TLS handshake closes the channel; what the push loop sees first may be the write that found
            // it closed. The handshake's own error is the reason a person can act on.
            if let failure = tlsFailure.withLockedValue({ $0 }) {
                throw failure
            }
            throw error
        }
    }

    private func pushOnce(_ url: RTMPURL, tlsFailure: NIOLockedValueBox<(any Error)?>) async throws {
        let loop = self.loop
        let ended = loop.makePromise(of: Void.self)
        var publish = RTMPPublishClientStateMachine.Configuration(
            app: url.app,
            tcURL: url.tcURL,
            streamName: self.configuration.streamName ?? ""
        )
        publish.chunkSize = UInt32(Self.chunkSize)
        let configuration = publish
        let makeSession: @Sendable () -> PushSessionHandler = { [self] in
            PushSessionHandler(
                configuration: configuration,
                queue: self.queue,
                ended: ended,
                setupTimeout: self.connectTimeout,
                publishing: { [self] in
                    self.setState(.pushing)
                    self.logger.info("Target is live")
                },
                sent: { [self] bytes, messages in
                    self.metrics.sentBytes.increment(by: Int64(bytes))
                    self.bytesSent.add(UInt64(bytes), ordering: .relaxed)
                    self.messagesSent.add(UInt64(messages), ordering: .relaxed)
                }
            )
        }
        let channel: any Channel
        do {
            channel = try await self.connect(url, on: loop, session: makeSession, tlsFailure: tlsFailure)
        } catch {
            ended.fail(error)
            throw error
        }
        let aborted = self.connection.withLock { connection in
            connection.channel = connection.aborted ? nil : channel
            return connection.aborted
        }
        defer { self.connection.withLock { $0.channel = nil } }
        if aborted {
            channel.close(promise: nil)
        }
        // When the target stays behind too long, the queue closes this connection.
        await self.onLoop { target in
            target.queue.setDisconnect { [target] in
                target.fellBehind.withLock { $0 = true }
                channel.close(promise: nil)
            }
        }
        defer { loop.execute { self.queue.setDisconnect(nil) } }
        do {
            try await withTaskCancellationHandler {
                try await ended.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
            self.logger.info("Target unpublished")
            try? await channel.close()
        } catch {
            if Task.isCancelled || aborted {
                throw CancellationError()
            }
            throw error
        }
    }

    private func connect(
        _ url: RTMPURL,
        on loop: any EventLoop,
        session makeSession: @escaping @Sendable () -> PushSessionHandler,
        tlsFailure: NIOLockedValueBox<(any Error)?>
    ) async throws -> any Channel {
        let sslContext = self.sslContext
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(TimeAmount(self.connectTimeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            // A target sends us little (acknowledgements, status), and the channel keeps its receive buffer between
            // reads: a fixed 1 KiB. An adaptive one grew to 4-8 KiB on the handshake's 3 KiB and, with almost no
            // reads after it, never shrank again.
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if url.useTLS {
                        guard let sslContext else {
                            preconditionFailure("an rtmps:// target without a TLS context")
                        }
                        // SNI and hostname verification need a name; an IP literal is checked against the
                        // certificate's IP addresses instead.
                        let isAddress = (try? SocketAddress(ipAddress: url.host, port: 0)) != nil
                        let handler = try NIOSSLClientHandler(
                            context: sslContext,
                            serverHostname: isAddress ? nil : url.host
                        )
                        try channel.pipeline.syncOperations.addHandler(handler)
                        try channel.pipeline.syncOperations.addHandler(TLSFailureLatch(failure: tlsFailure))
                    }
                    try channel.pipeline.syncOperations.addHandler(RTMPConnectionHandler(role: .client))
                    try channel.pipeline.syncOperations.addHandler(makeSession())
                }
            }
        if let bytes = self.sendBufferBytes {
            bootstrap = bootstrap.channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(bytes))
        }
        return try await bootstrap.connect(host: url.host, port: url.port).get()
    }

    /// A reason a person can act on, without the stream key.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as RTMPError:
            return error.description
        case let error as NIOSSLError:
            return "TLS failed: \(error)"
        case let error as BoringSSLError:
            return "TLS failed: \(error)"
        case let error as NIOConnectionError:
            // One line per address tried, with the system's words for the failure ("Connection refused").
            let reasons = Set(error.connectionErrors.map { Self.describeSocketError($0.error) })
            let reason = reasons.sorted().joined(separator: "; ")
            return "cannot connect to \(error.host):\(error.port)" + (reason.isEmpty ? "" : ": \(reason)")
        case is ChannelError:
            return "connection failed: \(error)"
        case let error as IOError:
            return "connection failed: \(Self.describeSocketError(error))"
        default:
            return "\(error)"
        }
    }
}

extension PushTarget {
    fileprivate static func describeSocketError(_ error: any Error) -> String {
        guard let error = error as? IOError else {
            return "\(error)"
        }
        return String(cString: strerror(error.errnoCode))
    }
}

/// Keeps the first TLS error that passes through (and passes it on), so that a handshake failure is reported as
/// such even when a write on the closed channel fails first.
private final class TLSFailureLatch: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    private let failure: NIOLockedValueBox<(any Error)?>

    init(failure: NIOLockedValueBox<(any Error)?>) {
        self.failure = failure
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOSSLError || error is BoringSSLError {
            self.failure.withLockedValue { $0 = $0 ?? error }
        }
        context.fireErrorCaught(error)
    }
}
