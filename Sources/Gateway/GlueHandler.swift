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

import NIOCore

/// One half of a proxy: two of these, one in each channel's pipeline, pass bytes across in both directions.
///
/// The idea is swift-nio-ssh's `NIOSSHServer/GlueHandler`. Both channels must be on the same event loop, because
/// each handler calls straight into its partner's context. Backpressure: a handler lets its own channel read only
/// while the partner channel is writable, and when the partner becomes writable again it replays the read it held
/// back, so a slow reader on one side stops reading on the other instead of buffering without bound. Half-close:
/// end of input on one side closes the partner's output, which needs `allowRemoteHalfClosure` on both channels.
///
/// The only work per read is adding its length to a local count, reported to the stream's meter once per batch.
///
/// On the shared ingest port the client's half is one of these and the relay's half a ``OneWayGlueHandler``
/// (``OneWayGlueHandler/matchedPair(inbound:outbound:)``): the client's bytes go to the relay as they are, while
/// the relay's go on up the upstream pipeline.
final class GlueHandler {
    private let end: GlueEnd

    private init(end: GlueEnd) {
        self.end = end
    }

    /// A connected pair. `inbound` counts what the client sends (bytes in), `outbound` what the relay sends back.
    static func matchedPair(
        inbound: GatewayAccounting.ByteMeter,
        outbound: GatewayAccounting.ByteMeter
    ) -> (client: GlueHandler, upstream: GlueHandler) {
        let client = GlueEnd(meter: inbound)
        let upstream = GlueEnd(meter: outbound)
        GlueEnd.pair(client, upstream)
        return (GlueHandler(end: client), GlueHandler(end: upstream))
    }

    /// The client's half of a one-way pair.
    fileprivate static func client(of end: GlueEnd) -> GlueHandler {
        GlueHandler(end: end)
    }

    /// Writes bytes to this handler's channel below every handler after it (a replay of what the client sent
    /// before the pair was complete). Not flushed.
    func writeRaw(_ buffer: ByteBuffer) {
        self.end.writeRaw(buffer)
    }
}

@available(*, unavailable)
extension GlueHandler: Sendable {}

extension GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    func handlerAdded(context: ChannelHandlerContext) {
        self.end.added(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.end.removed()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.end.count(Self.unwrapInboundIn(data))
        self.end.partner?.write(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.end.report()
        self.end.partner?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.end.report()
        self.end.partner?.closeFull()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        self.end.inboundEvent(event)
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.end.failed(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.end.writabilityChanged(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if self.end.partner?.isWritable == true {
            context.read()
        } else {
            self.end.pendingRead = true
        }
    }
}

/// The relay's half of a one-way pair, on the shared ingest port: what the relay sends is counted and goes on up the
/// relay's own pipeline, to be decoded and sent to the client as RTMP messages (see ``RelayAnswerHandler``), not to
/// the partner. The partner, the client's ``GlueHandler``, still writes the client's bytes to the relay as they are,
/// and backpressure and closes work as in a two-way pair.
final class OneWayGlueHandler {
    private let end: GlueEnd

    private init(end: GlueEnd) {
        self.end = end
    }

    /// A connected pair. `inbound` counts what the client sends (bytes in), `outbound` what the relay sends back.
    static func matchedPair(
        inbound: GatewayAccounting.ByteMeter,
        outbound: GatewayAccounting.ByteMeter
    ) -> (client: GlueHandler, upstream: OneWayGlueHandler) {
        let client = GlueEnd(meter: inbound)
        let upstream = GlueEnd(meter: outbound)
        GlueEnd.pair(client, upstream)
        return (GlueHandler.client(of: client), OneWayGlueHandler(end: upstream))
    }

    /// Writes bytes to the relay's channel below every handler after it (a replay of what the client sent before
    /// the pair was complete). Not flushed.
    func writeRaw(_ buffer: ByteBuffer) {
        self.end.writeRaw(buffer)
    }
}

@available(*, unavailable)
extension OneWayGlueHandler: Sendable {}

extension OneWayGlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    func handlerAdded(context: ChannelHandlerContext) {
        self.end.added(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.end.removed()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.end.count(Self.unwrapInboundIn(data))
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.end.report()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.end.report()
        // First up the pipeline: a relay that closes before answering the publish lets the client hear why.
        context.fireChannelInactive()
        self.end.partner?.closeFull()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        self.end.inboundEvent(event)
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.end.failed(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.end.writabilityChanged(context: context)
    }

    func read(context: ChannelHandlerContext) {
        // The relay's side reads before the client's glue is in place: it has the RTMP handshake to do first, and
        // what it reads goes up its own pipeline, not to the client.
        if let partner = self.end.partner, partner.isWritable || !partner.isInPipeline {
            context.read()
        } else {
            self.end.pendingRead = true
        }
    }
}

/// One channel's end of a glue pair: its context, its byte count, and what the partner's handler may do to its
/// channel. Shared by ``GlueHandler`` and ``OneWayGlueHandler``, which differ only in where their reads go.
private final class GlueEnd {
    private(set) var partner: GlueEnd?
    private var context: ChannelHandlerContext?
    /// A read of this channel held back while the partner was not writable.
    var pendingRead = false
    private let meter: GatewayAccounting.ByteMeter
    private var unreported = 0

    init(meter: GatewayAccounting.ByteMeter) {
        self.meter = meter
    }

    static func pair(_ first: GlueEnd, _ second: GlueEnd) {
        first.partner = second
        second.partner = first
    }

    // What this end's own handler does.

    func added(context: ChannelHandlerContext) {
        self.context = context
        // The partner may have asked whether we are writable before we could answer.
        if context.channel.isWritable {
            self.partner?.becameWritable()
        }
    }

    func removed() {
        self.report()
        self.context = nil
        self.partner = nil
    }

    func count(_ buffer: ByteBuffer) {
        self.unreported += buffer.readableBytes
    }

    func report() {
        if self.unreported > 0 {
            self.meter.add(self.unreported)
            self.unreported = 0
        }
    }

    func inboundEvent(_ event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.partner?.writeEOF()
        }
    }

    func failed(context: ChannelHandlerContext) {
        self.partner?.closeFull()
        context.close(promise: nil)
    }

    func writabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.partner?.becameWritable()
        }
    }

    func writeRaw(_ buffer: ByteBuffer) {
        self.context?.write(NIOAny(buffer), promise: nil)
    }

    // What the partner's handler does to this end's channel.

    func write(_ data: NIOAny) {
        self.context?.write(data, promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    func writeEOF() {
        self.context?.close(mode: .output, promise: nil)
    }

    func closeFull() {
        self.context?.close(promise: nil)
    }

    func becameWritable() {
        if self.pendingRead {
            self.pendingRead = false
            self.context?.read()
        }
    }

    var isWritable: Bool {
        self.context?.channel.isWritable ?? false
    }

    var isInPipeline: Bool {
        self.context != nil
    }
}

@available(*, unavailable)
extension GlueEnd: Sendable {}
