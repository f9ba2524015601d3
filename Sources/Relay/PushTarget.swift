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

import Foundation  // strerror
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import RTMP
import Synchronization

/// What a push target is doing, for logs, stats and (later) status.
public enum PushTargetState: Hashable, Sendable, CustomStringConvertible {
    case connecting(attempt: Int)
    case pushing
    case backingOff(attempt: Int, delay: Duration)
    case stopped

    public var description: String {
        switch self {
        case .connecting(let attempt): "connecting (attempt \(attempt))"
        case .pushing: "pushing"
        case .backingOff(let attempt, let delay): "backing off after attempt \(attempt), retry in \(delay)"
        case .stopped: "stopped"
        }
    }
}

/// One target of one live publish: connects, publishes, sends what its queue gives it, and reconnects with
/// backoff while the publisher is live. Its failures are its own: the publisher and other targets never wait.
final class PushTarget: Sendable {
    let configuration: PushTargetConfiguration
    let queue: TargetQueue
    let eventLoopGroup: any EventLoopGroup
    let sslContext: NIOSSLContext?
    let connectTimeout: Duration
    let backoff: Backoff
    let logger: Logger
    let state: Mutex<(state: PushTargetState, lastError: String?)>

    init(
        configuration: PushTargetConfiguration,
        relay: RelayConfiguration,
        sslContext: NIOSSLContext?,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) {
        self.configuration = configuration
        self.queue = TargetQueue(maxBytes: relay.targetQueueBytes)
        self.eventLoopGroup = eventLoopGroup
        self.sslContext = sslContext
        self.connectTimeout = relay.targetConnectTimeout
        self.backoff = Backoff(initial: relay.reconnectInitial, maximum: relay.reconnectMaximum)
        var logger = logger
        logger[metadataKey: "relay.target.name"] = "\(configuration.name)"
        logger[metadataKey: "relay.target.url"] = "\(configuration.url)"
        self.logger = logger
        self.state = Mutex((.connecting(attempt: 1), nil))
    }

    /// Pushes until the publisher ends (and the queue is drained) or the task is cancelled.
    func run() async {
        var backoff = self.backoff
        var attempt = 0
        // After a failure, a publisher that ended meanwhile ends the retries.
        while !Task.isCancelled, attempt == 0 || !self.queue.isFinished {
            attempt += 1
            if attempt > 1 {
                // A new connection starts at the next keyframe with the stream's headers.
                self.queue.restart()
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
                let reason = Self.describe(error)
                self.state.withLock { $0.lastError = reason }
                if self.queue.isFinished || Task.isCancelled {
                    self.logger.warning("Target failed as the stream ended", metadata: ["error": "\(reason)"])
                    break
                }
                // A connection that pushed for a while was healthy: start the backoff over.
                if case .pushing = self.currentState, ContinuousClock.now - started > .seconds(5) {
                    backoff.reset()
                }
                let delay = backoff.nextDelay()
                self.setState(.backingOff(attempt: backoff.attempts, delay: delay))
                self.logger.warning(
                    "Target failed; reconnecting",
                    metadata: [
                        "error": "\(reason)",
                        "relay.target.attempt": "\(backoff.attempts)",
                        "relay.target.retry_in": "\(delay)",
                    ]
                )
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    break
                }
            }
        }
        self.setState(.stopped)
    }

    var currentState: PushTargetState { self.state.withLock { $0.state } }

    private func setState(_ state: PushTargetState) {
        self.state.withLock { $0.state = state }
    }

    /// One connection: connect, handshake, publish, then send until the queue ends. Throws why it stopped.
    private func pushOnce() async throws {
        let url = self.configuration.url
        let channel = try await self.connect(url)
        // Connecting, the handshake and the publish must finish in time; the channel is closed if they do not.
        let timedOut = NIOLockedValueBox(false)
        let setupTimeout = channel.channel.eventLoop.scheduleTask(in: TimeAmount(self.connectTimeout)) {
            timedOut.withLockedValue { $0 = true }
            channel.channel.close(promise: nil)
        }
        let configuration = RTMPPublishClientStateMachine.Configuration(
            app: url.app,
            tcURL: url.tcURL,
            streamName: self.configuration.streamName ?? ""
        )
        do {
            try await channel.executeThenClose { inbound, outbound in
                let (published, publishedContinuation) = AsyncStream<UInt32>.makeStream()
                let finished = try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        // The session: setup, then keep reading, because the server may end the publish with an
                        // error status (acknowledgements and pings are answered by the connection handler).
                        var session = RTMPPublishClientStateMachine(configuration: configuration)
                        try await outbound.write(contentsOf: session.start())
                        for try await message in inbound {
                            switch session.received(message) {
                            case .none:
                                continue
                            case .send(let reply):
                                try await outbound.write(contentsOf: reply)
                            case .publishing(let reply):
                                try await outbound.write(contentsOf: reply)
                                setupTimeout.cancel()
                                if let id = session.messageStreamID {
                                    publishedContinuation.yield(id)
                                }
                            case .fail(let error):
                                throw error
                            }
                        }
                        if session.isPublishing {
                            throw RTMPError.connectionClosed("the target closed the connection")
                        }
                        throw RTMPError.connectionClosed("the target closed the connection during the publish setup")
                    }
                    group.addTask {
                        var ids = published.makeAsyncIterator()
                        guard let streamID = await ids.next() else {
                            return false
                        }
                        self.setState(.pushing)
                        self.logger.info("Target is live")
                        guard try await self.send(streamID: streamID, outbound: outbound) else {
                            return false
                        }
                        // The publisher ended: end the publish cleanly and wait until the bytes are on the wire.
                        let goodbye = RTMPPublishClientStateMachine.unpublishMessages(
                            streamName: configuration.streamName,
                            messageStreamID: streamID
                        )
                        for message in goodbye {
                            try await channel.channel.writeAndFlush(message).get()
                        }
                        self.logger.info("Target unpublished")
                        return true
                    }
                    defer { group.cancelAll() }
                    return try await group.next() ?? false
                }
                publishedContinuation.finish()
                if !finished {
                    throw CancellationError()
                }
            }
        } catch {
            setupTimeout.cancel()
            if timedOut.withLockedValue({ $0 }) {
                throw RTMPError.timeout("no accepted publish within \(self.connectTimeout)")
            }
            throw error
        }
    }

    /// Sends the queue's messages on the publish stream, with timestamps starting at 0 for this connection.
    /// Returns true when the publisher ended and everything was sent, false when cancelled.
    private func send(streamID: UInt32, outbound: NIOAsyncChannelOutboundWriter<RTMPMessage>) async throws -> Bool {
        var base: UInt32?
        while let next = await self.queue.next() {
            var message = next
            let origin = base ?? message.timestamp
            base = origin
            // Timestamps of audio may be a little behind the keyframe a restart begins with; never go below 0.
            let offset = Int32(bitPattern: message.timestamp &- origin)
            message.timestamp = offset > 0 ? UInt32(offset) : 0
            message.messageStreamID = streamID
            switch message.type {
            case .audio: message.chunkStreamID = RTMPChunkStreamID.audio
            case .video: message.chunkStreamID = RTMPChunkStreamID.video
            default: message.chunkStreamID = RTMPChunkStreamID.data
            }
            try await outbound.write(message)
        }
        return self.queue.isFinished
    }

    private func connect(_ url: RTMPURL) async throws -> NIOAsyncChannel<RTMPMessage, RTMPMessage> {
        let sslContext = self.sslContext
        let bootstrap = ClientBootstrap(group: self.eventLoopGroup)
            .connectTimeout(TimeAmount(self.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        return try await bootstrap.connect(host: url.host, port: url.port) { channel in
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
                }
                try channel.pipeline.syncOperations.addHandler(RTMPConnectionHandler(role: .client))
                return try NIOAsyncChannel<RTMPMessage, RTMPMessage>(wrappingChannelSynchronously: channel)
            }
        }
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

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
