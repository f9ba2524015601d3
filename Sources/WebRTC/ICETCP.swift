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

public import NIOCore

/// RFC 4571 framing, which ICE-TCP uses (RFC 6544 §3): each packet preceded by its length as 16 bits.
public struct RFC4571FrameDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    /// The largest frame taken: a STUN check, a DTLS flight's record or an SRTP packet fits in far less.
    public let maximumFrameLength: Int

    public init(maximumFrameLength: Int = 4096) {
        self.maximumFrameLength = maximumFrameLength
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return nil }
        guard Int(length) <= self.maximumFrameLength else {
            throw WebRTCError.limitExceeded("RFC 4571 frame of \(length) bytes, more than \(self.maximumFrameLength)")
        }
        guard buffer.readableBytes >= 2 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 2)
        return buffer.readSlice(length: Int(length))
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        try self.decode(buffer: &buffer)
    }
}

/// One ICE-TCP connection (the peer's active candidate to our passive one): its frames go to the transport's handler,
/// on the same event loop, as if they were datagrams from the connection's remote address. A connection that has not
/// passed a check by `checkTimeout` is closed.
final class ICETCPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let central: NIOLoopBound<WebRTCDatagramHandler>
    private let checkTimeout: TimeAmount
    private var address: SocketAddress?
    private var timer: Scheduled<Void>?

    init(central: NIOLoopBound<WebRTCDatagramHandler>, checkTimeout: TimeAmount) {
        self.central = central
        self.checkTimeout = checkTimeout
    }

    func channelActive(context: ChannelHandlerContext) {
        guard let address = context.channel.remoteAddress else {
            context.close(promise: nil)
            return
        }
        self.address = address
        self.central.value.tcpConnected(context.channel, from: address)
        let channel = context.channel
        let central = self.central
        self.timer = context.eventLoop.scheduleTask(in: self.checkTimeout) {
            if !central.value.isBound(address) { channel.close(promise: nil) }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let address = self.address else { return }
        self.central.value.receive(self.unwrapInboundIn(data), from: address)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        if let address = self.address { self.central.value.tcpClosed(from: address, channel: context.channel) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A frame over the limit, or a reset: this connection ends, the sessions do not.
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ICETCPConnectionHandler: Sendable {}
