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

import IngestNetworking
import LiveStreamModel
import Logging
import NIOCore
import NIOPosix
import RTMP
import TimeSupport

/// The first handler of every admitted connection: holds the client until its stream's relay is ready, connects
/// to the relay, replays what the client sent meanwhile, then hands the two channels to a ``GlueHandler`` pair and
/// removes itself.
///
/// It also covers a route that is ready at accept time: the client's first bytes arrive while the upstream connect
/// is in flight and are replayed the same way. Reading stops once ``GatewayConfiguration/holdBufferSize`` bytes are
/// buffered, so a held client is throttled by TCP instead of costing memory; an RTMP client sends its 1,537-byte
/// C0+C1 and then waits for the server anyway.
///
/// What to do when (hold, retry, timeouts, refusal) is ``GatewayConnectionStateMachine``'s to decide; this handler
/// feeds it the channel's events with the event loop's time, and performs the actions it returns.
final class GatewayConnectionHandler {
    /// What the client sent before the splice, and how its reads stand.
    private struct Input {
        var buffers: [ByteBuffer]
        var bytes: Int
        /// A read held back because the buffer is full.
        var pendingRead = false
        /// The client ended its input; the relay gets the end after the bytes.
        var closed = false

        init(_ buffers: [ByteBuffer]) {
            self.buffers = buffers
            self.bytes = buffers.reduce(0) { $0 + $1.readableBytes }
        }

        /// The buffered bytes, which the input keeps no more.
        mutating func take() -> [ByteBuffer] {
            defer {
                self.buffers = []
                self.bytes = 0
            }
            return self.buffers
        }
    }

    /// What the handler has scheduled or opened for the machine's current state, ended together.
    private struct Pending {
        var routeWait: UInt64?
        var holdTimer: Scheduled<Void>?
        var retryTimer: Scheduled<Void>?
        var relayHandshakeTimer: Scheduled<Void>?
        /// The relay's connection until the splice completes, and whether it takes a PROXY header.
        var upstream: (channel: any Channel, sendsProxyHeader: Bool)?
        /// Shared ingest port: the glue pair waiting for the relay's handshake.
        var glue: (client: GlueHandler, upstream: OneWayGlueHandler, bytesIn: GatewayAccounting.ByteMeter)?
    }

    private let gateway: Gateway
    private let route: GatewayRoute
    private var logger: Logger
    private var machine: GatewayConnectionStateMachine
    private var context: ChannelHandlerContext?
    private var input: Input
    private var pending = Pending()

    /// The RTMP server that routed a connection of the shared ingest port, or `nil` on a stream's own port.
    private let front: SharedIngestHandler?

    /// - Parameters:
    ///   - held: whether the gateway counted the connection as held when it admitted it.
    ///   - now: when it did; the hold timeout runs from then.
    ///   - front: for a connection of the shared ingest port, the handler that answered the encoder until its
    ///     publish; the relay then gets an RTMP handshake of the gateway's own before `preface`.
    ///   - preface: what the client sent before this handler was added (on the shared port, everything after the
    ///     client's handshake).
    init(
        gateway: Gateway,
        route: GatewayRoute,
        held: Bool,
        now: NIODeadline,
        logger: Logger,
        front: SharedIngestHandler? = nil,
        preface: [ByteBuffer] = []
    ) {
        self.gateway = gateway
        self.route = route
        self.logger = logger
        self.machine = GatewayConnectionStateMachine(
            configuration: .init(gateway.configuration, relayHandshake: front != nil),
            heldSince: held ? now : nil
        )
        self.front = front
        self.input = Input(preface)
    }

    /// The event loop's time, which an `EmbeddedEventLoop` lets a test advance.
    private var now: NIODeadline {
        self.context?.eventLoop.now ?? .now()
    }

    // MARK: Actions

    private func run(_ action: GatewayConnectionStateMachine.Action) {
        switch action {
        case .none:
            break
        case .startHolding(let holdTimer):
            self.scheduleHoldTimer(at: holdTimer)
            self.waitForRoute()
            self.logger.info("Holding connection until the relay is ready")
        case .waitForRoute:
            self.waitForRoute()
        case .connect(let upstream):
            self.connect(to: upstream)
        case .requestHold:
            self.run(self.machine.holdDecided(self.gateway.hold(self.route.stream), now: self.now))
        case .scheduleRetry(let deadline, let delay, let error, let holdTimer):
            self.scheduleRetry(at: deadline, delay: delay, error: error, holdTimer: holdTimer)
        case .splice(let held):
            self.splice(releasingHold: held)
        case .spliceWithRelayHandshake(let held, let timeout):
            self.spliceRTMP(releasingHold: held, timeout: timeout)
        case .completeRelayHandshake:
            self.completeRelayHandshake()
        case .proxied(let heldFor):
            self.proxied(heldFor: heldFor)
        case .closeUpstream:
            self.endPending(closingUpstream: true)
        case .refuse(let refusal, let held):
            self.refuse(refusal, releasingHold: held)
        case .clientLeft(let wasHeld, let held):
            self.endPending(closingUpstream: true)
            self.releaseHold(held)
            if wasHeld {
                self.logger.info("Held client disconnected before the relay was ready")
            }
        }
    }

    private func schedule(at deadline: NIODeadline, _ event: @escaping () -> Void) -> Scheduled<Void>? {
        self.context?.eventLoop.assumeIsolated().scheduleTask(deadline: deadline, event)
    }

    /// The hold timeout runs from the first moment the connection is held, however many waits and retries follow.
    private func scheduleHoldTimer(at deadline: NIODeadline) {
        self.pending.holdTimer = self.schedule(at: deadline) {
            self.run(self.machine.holdTimerFired(now: self.now))
        }
    }

    private func waitForRoute() {
        guard let loop = self.context?.eventLoop else {
            return
        }
        let bound = NIOLoopBound(self, eventLoop: loop)
        // The callback runs on whichever thread updated the routes; hop to our loop. `execute` also makes a
        // callback that runs at once (route became ready just now) safe to run after the wait's ID is kept below.
        self.pending.routeWait = self.gateway.routes.wait(for: self.route.stream) { route in
            loop.execute { bound.value.routeDecided(route) }
        }
    }

    private func routeDecided(_ route: GatewayRoute?) {
        self.pending.routeWait = nil
        let action = self.machine.routeDecided(
            route,
            current: self.gateway.routes.route(for: self.route.stream),
            client: self.context?.channel.remoteAddress,
            now: self.now
        )
        self.run(action)
    }

    private func scheduleRetry(at deadline: NIODeadline, delay: Duration, error: String, holdTimer: NIODeadline?) {
        if let holdTimer {
            self.scheduleHoldTimer(at: holdTimer)
        }
        self.logger.info(
            "Cannot connect to the relay: holding the connection and retrying",
            metadata: ["error": "\(error)", "gateway.retry_ms": "\(delay.inMilliseconds)"]
        )
        self.pending.retryTimer = self.schedule(at: deadline) {
            self.pending.retryTimer = nil
            self.run(
                self.machine.retryTimerFired(route: self.gateway.routes.route(for: self.route.stream), now: self.now)
            )
        }
    }

    private func connect(to upstream: GatewayRoute.Upstream) {
        guard let context = self.context else {
            return
        }
        self.logger[metadataKey: "gateway.upstream"] = "\(upstream)"
        // Same event loop as the client: the glue handlers call into each other directly.
        let bootstrap = ClientBootstrap(group: context.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(TimeAmount(self.gateway.configuration.connectTimeout))
        let connecting =
            if let address = self.gateway.configuration.upstreamAddress?(upstream.host, upstream.port) {
                bootstrap.connect(to: address)
            } else {
                bootstrap.connect(host: upstream.host, port: upstream.port)
            }
        connecting
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.pending.upstream = (channel, upstream.sendsProxyHeader)
                    self.run(self.machine.connectSucceeded(now: self.now))
                case .failure(let error):
                    self.run(self.machine.connectFailed(error: "\(error)", now: self.now))
                }
            }
    }

    /// Ends what is pending: the route wait, the timers, and with `closingUpstream` a relay connection that is not
    /// spliced yet.
    private func endPending(closingUpstream: Bool) {
        if let wait = self.pending.routeWait {
            self.gateway.routes.cancelWait(wait)
        }
        self.pending.holdTimer?.cancel()
        self.pending.retryTimer?.cancel()
        self.pending.relayHandshakeTimer?.cancel()
        if closingUpstream {
            self.pending.upstream?.channel.close(promise: nil)
        }
        self.pending = Pending()
    }

    /// The connection no longer counts as held, after `heldFor` (if it did).
    private func releaseHold(_ heldFor: Duration?) {
        self.pending.holdTimer?.cancel()
        self.pending.holdTimer = nil
        if let heldFor {
            self.gateway.accounting.release(self.route.stream, heldFor: heldFor)
        }
    }

    private func refuse(_ refusal: GatewayRefusal, releasingHold heldFor: Duration?) {
        self.endPending(closingUpstream: true)
        self.releaseHold(heldFor)
        self.gateway.logRefusal(refusal, stream: self.route.stream, logger: self.logger)
        if let front = self.front {
            // An encoder on the shared port has sent its publish and waits for the answer: it shows this one.
            front.sendRefusal(refusal)
            self.context?.close(promise: nil)
        } else if let context = self.context, context.channel.isActive {
            self.answerInRTMP(refusal, context: context)
        }
    }

    /// On a stream's own port the client is an encoder that sent its handshake and waits: the gateway answers it
    /// in RTMP from here (the handshake, `connect`, `createStream`) and refuses its publish with the reason, which
    /// the encoder shows, instead of a bare close.
    private func answerInRTMP(_ refusal: GatewayRefusal, context: ChannelHandlerContext) {
        do {
            try context.pipeline.syncOperations.addHandlers(
                [
                    RTMPConnectionHandler(role: .server),
                    SharedIngestHandler(gateway: self.gateway, logger: self.logger, refusal: refusal),
                ],
                position: .after(self)
            )
        } catch {
            context.close(promise: nil)
            return
        }
        // What the client sent while it was held, its handshake first, now goes to the RTMP server.
        let pendingRead = self.input.pendingRead
        for buffer in self.input.take() {
            context.fireChannelRead(NIOAny(buffer))
        }
        context.fireChannelReadComplete()
        self.stepOut(context: context, pendingRead: pendingRead)
    }

    /// Removes this handler; a read it held back because the buffer was full is now for what follows to decide.
    private func stepOut(context: ChannelHandlerContext, pendingRead: Bool) {
        let channel = context.channel
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        if pendingRead {
            channel.read()
        }
    }

    // MARK: Splicing

    /// Counts the connection as live for its stream from now until it closes, and no longer as held.
    private func goLive(
        context: ChannelHandlerContext,
        releasingHold heldFor: Duration?
    ) -> (bytesIn: GatewayAccounting.ByteMeter, bytesOut: GatewayAccounting.ByteMeter) {
        let stream = self.route.stream
        let accounting = self.gateway.accounting
        // Live before no longer held: a reader of the counts in between sees the connection twice, never not at all
        // (a stream that is going live would read as idle).
        let meters = accounting.goLive(stream)
        self.releaseHold(heldFor)
        context.channel.closeFuture.whenComplete { _ in accounting.endLive(stream) }
        return meters
    }

    /// Before anything of the client's: who the client is, for the relay's logs, stats and webhook.
    private func writeProxyHeader(to upstream: any Channel, context: ChannelHandlerContext) {
        if let client = context.channel.remoteAddress, let listener = context.channel.localAddress {
            let header = ProxyHeader(source: client, destination: listener).line
            upstream.write(upstream.allocator.buffer(string: header), promise: nil)
        }
    }

    private func splice(releasingHold heldFor: Duration?) {
        guard let context = self.context, let upstream = self.pending.upstream?.channel else {
            return
        }
        let sendsProxyHeader = self.pending.upstream?.sendsProxyHeader == true
        let meters = self.goLive(context: context, releasingHold: heldFor)
        let (clientGlue, upstreamGlue) = GlueHandler.matchedPair(inbound: meters.bytesIn, outbound: meters.bytesOut)
        let framer = RelayOutputFramer(logger: self.logger)
        if let first = self.input.buffers.first(where: { $0.readableBytes > 0 }) {
            framer.clientStarted(with: first.getInteger(at: first.readerIndex, as: UInt8.self)!)
        }
        do {
            try upstream.pipeline.syncOperations.addHandler(upstreamGlue)
            if sendsProxyHeader {
                self.writeProxyHeader(to: upstream, context: context)
            }
            // Replay first: nothing the client sent may overtake these bytes, and nothing can, because the client
            // glue is added only below, in this same event-loop tick.
            self.replay(to: upstream, through: upstreamGlue.writeRaw, counting: meters.bytesIn)
            try context.pipeline.syncOperations.addHandlers(framer, clientGlue)
            let bound = NIOLoopBound(framer, eventLoop: context.eventLoop)
            self.gateway.registerLive(context.channel, stream: self.route.stream) { bound.value.end(description: $0) }
        } catch {
            return self.run(self.machine.spliceFailed(error: "\(error)", now: self.now))
        }
        self.run(self.machine.spliced(now: self.now))
    }

    /// The shared ingest port: an RTMP handshake of the gateway's own with the relay, then the client's bytes
    /// replayed as they came (see ``SharedIngestHandler``). The client keeps being buffered until the handshake
    /// completes, in ``completeRelayHandshake()``.
    private func spliceRTMP(releasingHold heldFor: Duration?, timeout: NIODeadline) {
        guard let context = self.context, let front = self.front, let upstream = self.pending.upstream?.channel else {
            return
        }
        let sendsProxyHeader = self.pending.upstream?.sendsProxyHeader == true
        let meters = self.goLive(context: context, releasingHold: heldFor)
        let (clientGlue, upstreamGlue) = OneWayGlueHandler.matchedPair(
            inbound: meters.bytesIn,
            outbound: meters.bytesOut
        )
        self.pending.glue = (clientGlue, upstreamGlue, meters.bytesIn)
        let answers = RelayAnswerHandler(
            front: front,
            handshaken: { [self] in self.run(self.machine.relayHandshakeCompleted()) },
            failed: { [self] refusal in self.run(self.machine.relayFailed(refusal, now: self.now)) }
        )
        do {
            // The header first, then the handshake, which the client-role handler starts as it is added.
            if sendsProxyHeader {
                self.writeProxyHeader(to: upstream, context: context)
            }
            try upstream.pipeline.syncOperations.addHandlers([
                upstreamGlue, RTMPConnectionHandler(role: .client, passesAcknowledgements: true), answers,
            ])
        } catch {
            return self.run(self.machine.spliceFailed(error: "\(error)", now: self.now))
        }
        self.pending.relayHandshakeTimer = self.schedule(at: timeout) {
            self.run(self.machine.relayHandshakeTimerFired(now: self.now))
        }
    }

    private func completeRelayHandshake() {
        guard let context = self.context, let upstream = self.pending.upstream?.channel,
            let glue = self.pending.glue
        else {
            return
        }
        self.pending.relayHandshakeTimer?.cancel()
        self.pending.relayHandshakeTimer = nil
        self.replay(to: upstream, through: glue.upstream.writeRaw, counting: glue.bytesIn)
        do {
            // In front of the client's RTMP handler, which from now on only encodes what the relay says (and behind
            // the TLS server of an rtmps:// client).
            try context.pipeline.syncOperations.addHandler(glue.client, position: .after(self))
            if let front = self.front {
                let bound = NIOLoopBound(front, eventLoop: context.eventLoop)
                self.gateway.registerLive(context.channel, stream: self.route.stream) {
                    bound.value.end(description: $0)
                }
            }
        } catch {
            return self.run(self.machine.spliceFailed(error: "\(error)", now: self.now))
        }
        self.run(self.machine.spliced(now: self.now))
    }

    /// Sends the relay what the client sent so far, below any handler of the relay's pipeline after the glue, then
    /// the client's end of input if it came.
    private func replay(
        to upstream: any Channel,
        through writeRaw: (ByteBuffer) -> Void,
        counting meter: GatewayAccounting.ByteMeter
    ) {
        let bytes = self.input.bytes
        for buffer in self.input.take() {
            writeRaw(buffer)
        }
        upstream.flush()
        meter.add(bytes)
        if self.input.closed {
            upstream.close(mode: .output, promise: nil)
        }
    }

    private func proxied(heldFor: Duration?) {
        // The relay's connection is the glue's now.
        self.endPending(closingUpstream: false)
        guard let context = self.context else {
            return
        }
        if let heldFor {
            self.logger.info(
                "Relay ready: proxying the held connection",
                metadata: ["gateway.held_ms": "\(heldFor.inMilliseconds)"]
            )
        } else {
            self.logger.debug("Proxying")
        }
        self.stepOut(context: context, pendingRead: self.input.pendingRead)
    }
}

@available(*, unavailable)
extension GatewayConnectionHandler: Sendable {}

extension GatewayConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = NIOAny

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // On the shared ingest port the connection is active already, and routed only now.
        if self.front != nil, context.channel.isActive {
            self.run(self.machine.start(upstream: self.route.upstream, now: self.now))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        let routeExists = self.gateway.routes.route(for: self.route.stream) != nil
        self.run(self.machine.handlerRemoved(routeExists: routeExists, now: context.eventLoop.now))
    }

    func channelActive(context: ChannelHandlerContext) {
        self.run(self.machine.start(upstream: self.route.upstream, now: self.now))
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.run(self.machine.channelInactive(now: self.now))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.input.bytes += buffer.readableBytes
        self.input.buffers.append(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            // The client's end of input is kept, not taken for a departure: it goes to the relay after the bytes
            // the client sent, as soon as there is a relay (a TCP proxy forwards a half-close; dropping the
            // connection here would lose what it sent). A client that left for good is held no longer than the
            // hold timeout, and a write from the relay then finds it gone.
            self.input.closed = true
            if self.machine.isHeld {
                self.logger.debug("Held client ended its input: kept until the relay is ready")
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("Client connection failed", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if self.input.bytes >= self.gateway.configuration.holdBufferSize {
            self.input.pendingRead = true
        } else {
            context.read()
        }
    }
}
