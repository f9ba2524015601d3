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
/// On the shared ingest port the pair is one-way (``matchedPair(inbound:outbound:upstreamReadsGoOn:)``): the client's
/// bytes go to the relay as they are, while the relay's go on up the upstream pipeline, to be decoded and sent to the
/// client as RTMP messages (see ``RelayAnswerHandler``).
final class GlueHandler {
    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private let meter: GatewayAccounting.ByteMeter
    private var unreported = 0
    /// Whether this channel's reads go on up its own pipeline instead of to the partner.
    private let readsGoOn: Bool

    private init(meter: GatewayAccounting.ByteMeter, readsGoOn: Bool = false) {
        self.meter = meter
        self.readsGoOn = readsGoOn
    }

    /// A connected pair. `inbound` counts what the client sends (bytes in), `outbound` what the relay sends back.
    /// With `upstreamReadsGoOn`, the relay's bytes are not passed to the client but on up the upstream pipeline.
    static func matchedPair(
        inbound: GatewayAccounting.ByteMeter,
        outbound: GatewayAccounting.ByteMeter,
        upstreamReadsGoOn: Bool = false
    ) -> (client: GlueHandler, upstream: GlueHandler) {
        let client = GlueHandler(meter: inbound)
        let upstream = GlueHandler(meter: outbound, readsGoOn: upstreamReadsGoOn)
        client.partner = upstream
        upstream.partner = client
        return (client, upstream)
    }

    /// Writes bytes to this handler's channel below every handler after it (a replay of what the client sent
    /// before the pair was complete). Not flushed.
    func writeRaw(_ buffer: ByteBuffer) {
        self.context?.write(NIOAny(buffer), promise: nil)
    }

    private func partnerWrite(_ data: NIOAny) {
        self.context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        self.context?.flush()
    }

    private func partnerWriteEOF() {
        self.context?.close(mode: .output, promise: nil)
    }

    private func partnerCloseFull() {
        self.context?.close(promise: nil)
    }

    private func partnerBecameWritable() {
        if self.pendingRead {
            self.pendingRead = false
            self.context?.read()
        }
    }

    private var partnerWritable: Bool {
        self.context?.channel.isWritable ?? false
    }

    private func report() {
        if self.unreported > 0 {
            self.meter.add(self.unreported)
            self.unreported = 0
        }
    }
}

@available(*, unavailable)
extension GlueHandler: Sendable {}

extension GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The partner may have asked whether we are writable before we could answer.
        if context.channel.isWritable {
            self.partner?.partnerBecameWritable()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.report()
        self.context = nil
        self.partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.unreported += Self.unwrapInboundIn(data).readableBytes
        if self.readsGoOn {
            context.fireChannelRead(data)
        } else {
            self.partner?.partnerWrite(data)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.report()
        if self.readsGoOn {
            context.fireChannelReadComplete()
        } else {
            self.partner?.partnerFlush()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.report()
        if self.readsGoOn {
            // First up the pipeline: a relay that closes before answering the publish lets the client hear why.
            context.fireChannelInactive()
        }
        self.partner?.partnerCloseFull()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.partner?.partnerWriteEOF()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.partner?.partnerCloseFull()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.partner?.partnerBecameWritable()
        }
    }

    func read(context: ChannelHandlerContext) {
        // One-way, the relay's side reads before the client's glue is in place: it has the RTMP handshake to do
        // first, and what it reads goes up its own pipeline, not to the client.
        if let partner = self.partner, partner.partnerWritable || (self.readsGoOn && partner.context == nil) {
            context.read()
        } else {
            self.pendingRead = true
        }
    }
}
