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
final class GlueHandler {
    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private let meter: GatewayAccounting.ByteMeter
    private var unreported = 0

    private init(meter: GatewayAccounting.ByteMeter) {
        self.meter = meter
    }

    /// A connected pair. `inbound` counts what the client sends (bytes in), `outbound` what the relay sends back.
    static func matchedPair(
        inbound: GatewayAccounting.ByteMeter,
        outbound: GatewayAccounting.ByteMeter
    ) -> (client: GlueHandler, upstream: GlueHandler) {
        let client = GlueHandler(meter: inbound)
        let upstream = GlueHandler(meter: outbound)
        client.partner = upstream
        upstream.partner = client
        return (client, upstream)
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
        self.partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.report()
        self.partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.report()
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
        if let partner = self.partner, partner.partnerWritable {
            context.read()
        } else {
            self.pendingRead = true
        }
    }
}
