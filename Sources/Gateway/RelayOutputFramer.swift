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

import Logging
import NIOCore
import RTMP

/// On a stream's own port, what the relay sends the encoder passes through here (between the client's glue and its
/// socket, after TLS): the relay's side of the handshake (S0, S1, S2) as it is, then its chunk stream decoded and
/// encoded again, message by message, so the gateway can add a message of its own between two of the relay's.
///
/// That is how a live publish is ended with a reason the encoder shows (``end(description:)``, when the
/// stream is taken offline): an `onStatus` error on the publish's message stream, then the close. The relay's
/// messages to an encoder are few and small (command answers, acknowledgements, pings), so encoding them again costs
/// little; the media go the other way, untouched. The encoder's own chunk stream is not touched.
///
/// A client whose first byte is not RTMP's version (3) gets the relay's bytes as they are: a stream port is a TCP
/// proxy for whatever the client speaks, and only an RTMP publish can be told anything.
final class RelayOutputFramer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Mode {
        /// The client has sent nothing yet.
        case undecided
        case rtmp
        /// Not RTMP, or the relay's output could not be followed: passed on as it is, and cannot be added to.
        case passThrough
    }

    private var mode = Mode.undecided
    private var handshakeLeft = 1 + 1536 + 1536
    private var decoder = RTMPChunkDecoder()
    private var encoder = RTMPChunkEncoder()
    private var pending = ByteBuffer()
    /// The relay's bytes since the last message it completed: what is sent as it is if decoding fails.
    private var uncovered = ByteBuffer()
    /// How many bytes of `uncovered` the decoder took into a message that is not complete yet.
    private var consumedSinceMessage = 0
    /// The message stream of the publish, from the relay's `onStatus` (ffmpeg and OBS publish on stream 1).
    private var publishStreamID: UInt32 = 1
    private var ended = false
    private let logger: Logger
    private var context: ChannelHandlerContext?

    init(logger: Logger) {
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// The client's first byte, when it came before this handler was added (the gateway replays what a held
    /// client sent straight to the relay).
    func clientStarted(with first: UInt8) {
        if case .undecided = self.mode {
            self.mode = first == 3 ? .rtmp : .passThrough
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        if case .undecided = self.mode, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) {
            self.clientStarted(with: first)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var buffer = Self.unwrapOutboundIn(data)
        guard !self.ended else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch self.mode {
        case .undecided:
            // An RTMP server waits for the client's C0 and C1: this relay spoke first.
            self.mode = .passThrough
            fallthrough
        case .passThrough:
            context.write(Self.wrapOutboundOut(buffer), promise: promise)
            return
        case .rtmp:
            break
        }
        if self.handshakeLeft > 0 {
            let length = min(self.handshakeLeft, buffer.readableBytes)
            self.handshakeLeft -= length
            let handshake = buffer.readSlice(length: length)!
            guard buffer.readableBytes > 0 else {
                context.write(Self.wrapOutboundOut(handshake), promise: promise)
                return
            }
            context.write(Self.wrapOutboundOut(handshake), promise: nil)
        }
        self.uncovered.writeImmutableBuffer(buffer)
        self.pending.writeBuffer(&buffer)
        var out = context.channel.allocator.buffer(capacity: self.pending.readableBytes + 64)
        do {
            var left = self.pending.readableBytes
            defer { self.consumedSinceMessage += left - self.pending.readableBytes }
            while let message = try self.decoder.decode(buffer: &self.pending) {
                // Every byte decoded so far is in this message or the ones before it.
                self.uncovered.moveReaderIndex(forwardBy: self.consumedSinceMessage + left - self.pending.readableBytes)
                self.uncovered.discardReadBytes()
                self.consumedSinceMessage = 0
                left = self.pending.readableBytes
                if message.type == .commandAMF0, message.messageStreamID != 0 {
                    self.publishStreamID = message.messageStreamID
                }
                try self.encoder.encode(data: message, out: &out)
            }
        } catch {
            // Not expected of an RTMP relay: what was decoded is sent, then every byte since as it came.
            self.logger.warning(
                "Cannot follow the relay's RTMP output: passing it on as it is",
                metadata: ["error": "\(error)"]
            )
            self.mode = .passThrough
            out.writeBuffer(&self.uncovered)
            self.pending.clear()
        }
        self.pending.discardReadBytes()
        guard out.readableBytes > 0 else {
            promise?.succeed(())
            return
        }
        context.write(Self.wrapOutboundOut(out), promise: promise)
    }

    /// Tells the encoder why its publish ends (an `onStatus` error it shows), then closes the connection, which
    /// closes the relay's too: the relay ends the stream and its targets unpublish.
    func end(description: String) {
        guard !self.ended, let context = self.context else {
            return
        }
        guard case .rtmp = self.mode, self.handshakeLeft == 0 else {
            self.ended = true
            context.close(promise: nil)
            return
        }
        var out = context.channel.allocator.buffer(capacity: 256)
        let status = RTMPServerSessionStateMachine.onStatus(
            streamID: self.publishStreamID,
            level: "error",
            code: "NetStream.Publish.Rejected",
            description: description
        )
        try? self.encoder.encode(data: status, out: &out)
        self.ended = true
        context.writeAndFlush(Self.wrapOutboundOut(out), promise: nil)
        closeAfterEncoderHeard(context.channel)
    }
}

@available(*, unavailable)
extension RelayOutputFramer: Sendable {}

/// How long an encoder that was told its publish ends has to hang up before the gateway closes the connection.
let encoderHangUpGrace = TimeAmount.seconds(3)

/// Closes `channel` once its encoder has had the time to read what it was just told. Closing at once would reset
/// the connection (the encoder's media are still arriving, unread), and a reset makes the encoder drop what it had
/// not read yet: ffmpeg would print "Broken pipe" instead of the reason. An encoder hangs up as soon as it reads an
/// error status, which closes the connection sooner; the relay's connection closes with it.
func closeAfterEncoderHeard(_ channel: any Channel) {
    let timer = channel.eventLoop.scheduleTask(in: encoderHangUpGrace) {
        channel.close(promise: nil)
    }
    channel.closeFuture.whenComplete { _ in timer.cancel() }
}
