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

import LiveStreamModel
import Logging
import NIOCore
import NIOPosix

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

    init(gateway: Gateway, route: GatewayRoute, held: Bool, logger: Logger) {
        self.gateway = gateway
        self.route = route
        self.logger = logger
        self.heldSince = held ? .now() : nil
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
            self.refuse("the route was removed or suspended while the connection was held")
            return
        }
        // The ranges may have changed while the client waited; the new route is the one that decides.
        guard let remote = self.context?.channel.remoteAddress,
            route.allowedSourceRanges.contains(where: { $0.contains(remote) })
        else {
            self.refuse("source address outside allowedSourceRanges")
            return
        }
        self.connect(to: upstream)
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
        case .idle, .proxied, .closed:
            return
        }
        self.refuse("hold timeout: the relay was not ready within \(self.gateway.configuration.holdTimeout)")
    }

    private func refuse(_ reason: String) {
        self.phase = .closed
        self.gateway.logRefusal(reason, stream: self.route.stream, logger: self.logger)
        self.context?.close(promise: nil)
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
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
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
            self.refuse("the route was removed or suspended while the connection was held")
            return
        }
        if let upstream = route.upstream {
            self.connect(to: upstream)
        } else {
            self.waitForUpstream(on: context.eventLoop)
        }
    }

    private func splice(_ upstream: any Channel, sendingProxyHeader: Bool, context: ChannelHandlerContext) {
        let heldSince = self.heldSince
        let stream = self.route.stream
        let accounting = self.gateway.accounting
        // Live before no longer held: a reader of the counts in between sees the connection twice, never not at all
        // (a stream that is going live would read as idle).
        let meters = accounting.goLive(stream)
        self.releaseHold()
        context.channel.closeFuture.whenComplete { _ in accounting.endLive(stream) }

        let (clientGlue, upstreamGlue) = GlueHandler.matchedPair(inbound: meters.bytesIn, outbound: meters.bytesOut)
        do {
            try upstream.pipeline.syncOperations.addHandler(upstreamGlue)
            if sendingProxyHeader, let client = context.channel.remoteAddress,
                let listener = context.channel.localAddress
            {
                // Before anything of the client's: who the client is, for the relay's logs, stats and webhook.
                let header = ProxyHeader(source: client, destination: listener).line
                upstream.write(upstream.allocator.buffer(string: header), promise: nil)
            }
            // Replay first: nothing the client sent may overtake these bytes, and nothing can, because the client
            // glue is added only below, in this same event-loop tick.
            for buffer in self.buffered {
                upstream.write(buffer, promise: nil)
            }
            upstream.flush()
            meters.bytesIn.add(self.bufferedBytes)
            self.buffered = []
            self.bufferedBytes = 0
            if self.inputClosed {
                upstream.close(mode: .output, promise: nil)
            }
            try context.pipeline.syncOperations.addHandler(clientGlue)
        } catch {
            upstream.close(promise: nil)
            self.refuse("cannot set up the proxy: \(error)")
            return
        }
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
        if let upstream = self.route.upstream {
            self.connect(to: upstream)
        } else {
            self.startHolding(context: context)
        }
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
            case .idle, .connecting, .proxied, .closed:
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
