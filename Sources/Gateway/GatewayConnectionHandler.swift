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

/// The first handler of every admitted connection: holds the client until its stream's relay is ready, connects
/// to the relay, replays what the client sent meanwhile, then hands the two channels to a ``GlueHandler`` pair and
/// removes itself.
///
/// It also covers a route that is ready at accept time: the client's first bytes arrive while the upstream connect
/// is in flight and are replayed the same way. Reading stops once ``GatewayConfiguration/holdBufferSize`` bytes are
/// buffered, so a held client is throttled by TCP instead of costing memory; an RTMP client sends its 1,537-byte
/// C0+C1 and then waits for the server anyway.
final class GatewayConnectionHandler {
    private enum Phase {
        case idle
        case waiting(waitID: UInt64)
        /// The route had an upstream but connecting to it failed (a relay restarting, or a stale route): held, and
        /// trying again after a short delay.
        case retrying(Scheduled<Void>)
        case connecting
        /// Shared ingest port: connected, the RTMP handshake with the relay under way (the client's bytes are
        /// replayed when it completes).
        case handshaking(upstream: any Channel, timeout: Scheduled<Void>)
        case proxied
        case closed
    }

    private let gateway: Gateway
    private let route: GatewayRoute
    private var logger: Logger
    private var phase = Phase.idle
    private var context: ChannelHandlerContext?

    private var buffered: [ByteBuffer] = []
    private var bufferedBytes = 0
    private var pendingRead = false
    private var inputClosed = false

    /// Set while the connection counts as held; cleared exactly once, when it is proxied or closes.
    private var heldSince: NIODeadline?
    private var holdTimeout: Scheduled<Void>?
    private var failedConnects = 0
    private var holdExpired = false

    /// The RTMP server that routed a connection of the shared ingest port, or `nil` on a stream's own port.
    private let front: SharedIngestHandler?

    /// - Parameters:
    ///   - front: for a connection of the shared ingest port, the handler that answered the encoder until its
    ///     publish; the relay then gets an RTMP handshake of the gateway's own before `preface`.
    ///   - preface: what the client sent before this handler was added (on the shared port, everything after the
    ///     client's handshake).
    init(
        gateway: Gateway,
        route: GatewayRoute,
        held: Bool,
        logger: Logger,
        front: SharedIngestHandler? = nil,
        preface: [ByteBuffer] = []
    ) {
        self.gateway = gateway
        self.route = route
        self.logger = logger
        self.heldSince = held ? .now() : nil
        self.front = front
        self.buffered = preface
        self.bufferedBytes = preface.reduce(0) { $0 + $1.readableBytes }
    }

    /// Proxies at once, or holds until the relay is ready.
    private func begin(context: ChannelHandlerContext) {
        if let upstream = self.route.upstream {
            self.connect(to: upstream)
        } else {
            self.startHolding(context: context)
        }
    }

    private func startHolding(context: ChannelHandlerContext) {
        self.startHoldTimer(on: context.eventLoop)
        self.waitForUpstream(on: context.eventLoop)
        self.logger.info("Holding connection until the relay is ready")
    }

    /// The hold timeout runs from the first moment the connection is held, however many waits and retries follow.
    private func startHoldTimer(on loop: any EventLoop) {
        guard self.holdTimeout == nil else {
            return
        }
        self.holdTimeout = loop.assumeIsolated().scheduleTask(in: TimeAmount(self.gateway.configuration.holdTimeout)) {
            self.holdTimedOut()
        }
    }

    private func waitForUpstream(on loop: any EventLoop) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        // The callback runs on whichever thread updated the routes; hop to our loop. `execute` also makes a
        // callback that runs at once (route became ready just now) safe to run after `phase` is set below.
        let waitID = self.gateway.routes.wait(for: self.route.stream) { route in
            loop.execute { bound.value.routeDecided(route) }
        }
        self.phase = .waiting(waitID: waitID)
    }

    private func routeDecided(_ route: GatewayRoute?) {
        guard case .waiting = self.phase else {
            return
        }
        guard let route, let upstream = route.upstream else {
            self.refuse(self.whyNoRoute())
            return
        }
        // The ranges may have changed while the client waited; the new route is the one that decides.
        guard let remote = self.context?.channel.remoteAddress,
            route.allowedSourceRanges.contains(where: { $0.contains(remote) })
        else {
            self.refuse(.sourceRange)
            return
        }
        self.connect(to: upstream)
    }

    /// Why a held connection has no route to wait for any more: suspended (Go Offline), or removed.
    private func whyNoRoute() -> IngestRefusal {
        if self.gateway.routes.route(for: self.route.stream)?.suspended == true {
            return .suspended
        }
        return .relayUnavailable("the route was removed while the connection was held")
    }

    private func holdTimedOut() {
        switch self.phase {
        case .waiting(let waitID):
            self.gateway.routes.cancelWait(waitID)
        case .retrying(let retry):
            retry.cancel()
        case .connecting:
            // The connect timeout decides this attempt; if it fails, there is no other.
            self.holdExpired = true
            return
        case .idle, .handshaking, .proxied, .closed:
            return
        }
        self.refuse("hold timeout: the relay was not ready within \(self.gateway.configuration.holdTimeout)")
    }

    private func refuse(_ reason: String) {
        self.refuse(.relayUnavailable(reason))
    }

    private func refuse(_ refusal: IngestRefusal) {
        self.abandonRelayHandshake()
        self.phase = .closed
        self.gateway.logRefusal(refusal.reason, stream: self.route.stream, logger: self.logger)
        if let front = self.front {
            // An encoder on the shared port has sent its publish and waits for the answer: it shows this one.
            front.sendRefusal(refusal.reason)
            self.context?.close(promise: nil)
        } else if let context = self.context, context.channel.isActive {
            self.answerInRTMP(refusal, context: context)
        }
    }

    /// On a stream's own port the client is an encoder that sent its handshake and waits: the gateway answers it
    /// in RTMP from here (the handshake, `connect`, `createStream`) and refuses its publish with the reason, which
    /// the encoder shows, instead of a bare close.
    private func answerInRTMP(_ refusal: IngestRefusal, context: ChannelHandlerContext) {
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
        let buffered = self.buffered
        self.buffered = []
        self.bufferedBytes = 0
        for buffer in buffered {
            context.fireChannelRead(NIOAny(buffer))
        }
        context.fireChannelReadComplete()
        let channel = context.channel
        let pendingRead = self.pendingRead
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        if pendingRead {
            channel.read()
        }
    }

    /// Ends the handshake with the relay of a shared-port connection, if one is under way.
    private func abandonRelayHandshake() {
        if case .handshaking(let upstream, let timeout) = self.phase {
            timeout.cancel()
            upstream.close(promise: nil)
        }
    }

    private func releaseHold() {
        guard let heldSince = self.heldSince else {
            return
        }
        self.heldSince = nil
        self.holdTimeout?.cancel()
        self.holdTimeout = nil
        let held = NIODeadline.now() - heldSince
        self.gateway.accounting.release(self.route.stream, heldFor: .nanoseconds(held.nanoseconds))
    }

    private func connect(to upstream: GatewayRoute.Upstream) {
        guard let context = self.context else {
            return
        }
        self.phase = .connecting
        self.logger[metadataKey: "gateway.upstream"] = "\(upstream)"
        // Same event loop as the client: the glue handlers call into each other directly.
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(TimeAmount(self.gateway.configuration.connectTimeout))
            .connect(host: upstream.host, port: upstream.port)
            .assumeIsolated()
            .whenComplete { result in
                self.connected(result, to: upstream)
            }
    }

    private func connected(_ result: Result<any Channel, any Error>, to endpoint: GatewayRoute.Upstream) {
        switch result {
        case .failure(let error):
            guard case .connecting = self.phase else {
                return
            }
            self.upstreamFailed(error)
        case .success(let upstream):
            guard case .connecting = self.phase, let context = self.context else {
                // The client left while we connected.
                upstream.close(promise: nil)
                return
            }
            self.splice(upstream, sendingProxyHeader: endpoint.sendsProxyHeader, context: context)
        }
    }

    /// A relay that the route calls ready did not take the connection: it is restarting (local mode restarts a
    /// crashed relay; a pod is replaced) or the route is stale. The client is not refused for that: it is held like
    /// any client of a relay that is not ready, and the route is looked up again after a short, growing delay.
    private func upstreamFailed(_ error: any Error) {
        guard let context = self.context else {
            return
        }
        guard !self.holdExpired else {
            self.refuse(
                "hold timeout: the relay was not reachable within \(self.gateway.configuration.holdTimeout): \(error)"
            )
            return
        }
        if self.heldSince == nil {
            if let reason = self.gateway.hold(self.route.stream) {
                self.refuse("cannot connect to the relay (\(error)) and cannot hold the connection: \(reason)")
                return
            }
            self.heldSince = .now()
            self.startHoldTimer(on: context.eventLoop)
        }
        self.failedConnects += 1
        // 50 ms, 100 ms, ... up to 1 s: a restarting relay is back within a second or two.
        let delay = TimeAmount.milliseconds(min(1000, 50 << min(self.failedConnects - 1, 5)))
        self.logger.info(
            "Cannot connect to the relay: holding the connection and retrying",
            metadata: ["error": "\(error)", "gateway.retry_ms": "\(delay.nanoseconds / 1_000_000)"]
        )
        let retry = context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            self.retryRoute()
        }
        self.phase = .retrying(retry)
    }

    private func retryRoute() {
        guard case .retrying = self.phase, let context = self.context else {
            return
        }
        guard let route = self.gateway.routes.route(for: self.route.stream), !route.suspended else {
            self.refuse(self.whyNoRoute())
            return
        }
        if let upstream = route.upstream {
            self.connect(to: upstream)
        } else {
            self.waitForUpstream(on: context.eventLoop)
        }
    }

    /// Counts the connection as live for its stream from now until it closes, and no longer as held.
    private func goLive(
        context: ChannelHandlerContext
    ) -> (bytesIn: GatewayAccounting.ByteMeter, bytesOut: GatewayAccounting.ByteMeter) {
        let stream = self.route.stream
        let accounting = self.gateway.accounting
        // Live before no longer held: a reader of the counts in between sees the connection twice, never not at all
        // (a stream that is going live would read as idle).
        let meters = accounting.goLive(stream)
        self.releaseHold()
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

    private func splice(_ upstream: any Channel, sendingProxyHeader: Bool, context: ChannelHandlerContext) {
        if let front = self.front {
            return self.spliceRTMP(upstream, sendingProxyHeader: sendingProxyHeader, context: context, front: front)
        }
        let heldSince = self.heldSince
        let meters = self.goLive(context: context)
        let (clientGlue, upstreamGlue) = GlueHandler.matchedPair(inbound: meters.bytesIn, outbound: meters.bytesOut)
        let framer = RelayOutputFramer(logger: self.logger)
        if let first = self.buffered.first(where: { $0.readableBytes > 0 }) {
            framer.clientStarted(with: first.getInteger(at: first.readerIndex, as: UInt8.self)!)
        }
        do {
            try upstream.pipeline.syncOperations.addHandler(upstreamGlue)
            if sendingProxyHeader {
                self.writeProxyHeader(to: upstream, context: context)
            }
            // Replay first: nothing the client sent may overtake these bytes, and nothing can, because the client
            // glue is added only below, in this same event-loop tick.
            self.replay(to: upstream, through: upstreamGlue, counting: meters.bytesIn)
            try context.pipeline.syncOperations.addHandlers(framer, clientGlue)
            let bound = NIOLoopBound(framer, eventLoop: context.eventLoop)
            self.gateway.registerLive(context.channel, stream: self.route.stream) { bound.value.end(description: $0) }
        } catch {
            upstream.close(promise: nil)
            self.refuse("cannot set up the proxy: \(error)")
            return
        }
        self.proxied(context: context, heldSince: heldSince)
    }

    /// The shared ingest port: an RTMP handshake of the gateway's own with the relay, then the client's bytes
    /// replayed as they came (see ``SharedIngestHandler``). The client keeps being buffered until the handshake
    /// completes, in ``relayHandshaken(clientGlue:upstreamGlue:counting:since:)``.
    private func spliceRTMP(
        _ upstream: any Channel,
        sendingProxyHeader: Bool,
        context: ChannelHandlerContext,
        front: SharedIngestHandler
    ) {
        let heldSince = self.heldSince
        let meters = self.goLive(context: context)
        let (clientGlue, upstreamGlue) = GlueHandler.matchedPair(
            inbound: meters.bytesIn,
            outbound: meters.bytesOut,
            upstreamReadsGoOn: true
        )
        let answers = RelayAnswerHandler(
            front: front,
            handshaken: { [self] in
                self.relayHandshaken(
                    clientGlue: clientGlue,
                    upstreamGlue: upstreamGlue,
                    counting: meters.bytesIn,
                    since: heldSince
                )
            },
            failed: { [self] reason in
                switch self.phase {
                case .handshaking, .proxied:
                    // Proxied too, the encoder still waits for the answer to its publish: it hears why before the
                    // glue closes its connection.
                    self.refuse(reason)
                case .idle, .waiting, .retrying, .connecting, .closed:
                    // Refused already (which closed the relay's connection).
                    break
                }
            }
        )
        do {
            // The header first, then the handshake, which the client-role handler starts as it is added.
            if sendingProxyHeader {
                self.writeProxyHeader(to: upstream, context: context)
            }
            try upstream.pipeline.syncOperations.addHandlers([
                upstreamGlue, RTMPConnectionHandler(role: .client, passesAcknowledgements: true), answers,
            ])
        } catch {
            upstream.close(promise: nil)
            self.refuse("cannot set up the proxy: \(error)")
            return
        }
        let timeout = context.eventLoop.assumeIsolated().scheduleTask(
            in: TimeAmount(self.gateway.configuration.connectTimeout)
        ) {
            self.refuse(
                "the relay did not complete the RTMP handshake within \(self.gateway.configuration.connectTimeout)"
            )
        }
        self.phase = .handshaking(upstream: upstream, timeout: timeout)
    }

    private func relayHandshaken(
        clientGlue: GlueHandler,
        upstreamGlue: GlueHandler,
        counting bytesIn: GatewayAccounting.ByteMeter,
        since heldSince: NIODeadline?
    ) {
        guard case .handshaking(let upstream, let timeout) = self.phase, let context = self.context else {
            return
        }
        timeout.cancel()
        self.replay(to: upstream, through: upstreamGlue, counting: bytesIn)
        do {
            // In front of the client's RTMP handler, which from now on only encodes what the relay says (and behind
            // the TLS server of an rtmps:// client).
            try context.pipeline.syncOperations.addHandler(clientGlue, position: .after(self))
            if let front = self.front {
                let bound = NIOLoopBound(front, eventLoop: context.eventLoop)
                self.gateway.registerLive(context.channel, stream: self.route.stream) {
                    bound.value.end(description: $0)
                }
            }
        } catch {
            self.refuse("cannot set up the proxy: \(error)")
            return
        }
        self.proxied(context: context, heldSince: heldSince)
    }

    /// Sends the relay what the client sent so far, below any handler of the relay's pipeline after the glue, then
    /// the client's end of input if it came.
    private func replay(
        to upstream: any Channel,
        through glue: GlueHandler,
        counting meter: GatewayAccounting.ByteMeter
    ) {
        for buffer in self.buffered {
            glue.writeRaw(buffer)
        }
        upstream.flush()
        meter.add(self.bufferedBytes)
        self.buffered = []
        self.bufferedBytes = 0
        if self.inputClosed {
            upstream.close(mode: .output, promise: nil)
        }
    }

    private func proxied(context: ChannelHandlerContext, heldSince: NIODeadline?) {
        self.phase = .proxied
        let channel = context.channel
        let pendingRead = self.pendingRead
        if let heldSince {
            let held = NIODeadline.now() - heldSince
            self.logger.info(
                "Relay ready: proxying the held connection",
                metadata: ["gateway.held_ms": "\(held.nanoseconds / 1_000_000)"]
            )
        } else {
            self.logger.debug("Proxying")
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        // A read we held back because the buffer was full is now the glue's to decide.
        if pendingRead {
            channel.read()
        }
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
            self.begin(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        if case .idle = self.phase {
            // Closed before it became active: NIO closes a connection whose listener closed while it was being set
            // up, which happens when its route is removed or the gateway stops. Say so, and give back its hold.
            self.refuse(
                self.gateway.routes.route(for: self.route.stream) == nil
                    ? "the route was removed before the connection was set up"
                    : "the gateway is shutting down"
            )
        }
        self.releaseHold()
    }

    func channelActive(context: ChannelHandlerContext) {
        self.begin(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch self.phase {
        case .waiting(let waitID):
            self.gateway.routes.cancelWait(waitID)
            self.logger.info("Held client disconnected before the relay was ready")
        case .retrying(let retry):
            retry.cancel()
            self.logger.info("Held client disconnected before the relay was ready")
        case .handshaking:
            self.abandonRelayHandshake()
        case .idle, .connecting, .proxied, .closed:
            break
        }
        self.phase = .closed
        self.releaseHold()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.bufferedBytes += buffer.readableBytes
        self.buffered.append(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            // The client's end of input is kept, not taken for a departure: it goes to the relay after the bytes
            // the client sent, as soon as there is a relay (a TCP proxy forwards a half-close; dropping the
            // connection here would lose what it sent). A client that left for good is held no longer than the
            // hold timeout, and a write from the relay then finds it gone.
            self.inputClosed = true
            switch self.phase {
            case .waiting, .retrying:
                self.logger.debug("Held client ended its input: kept until the relay is ready")
            case .idle, .connecting, .handshaking, .proxied, .closed:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("Client connection failed", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if self.bufferedBytes >= self.gateway.configuration.holdBufferSize {
            self.pendingRead = true
        } else {
            context.read()
        }
    }
}
