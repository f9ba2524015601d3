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
import RTMP

/// Sends a live target's queue on its connection, on the connection's event loop: the media path of a target.
///
/// The queue wakes the writer once per burst of messages (``TargetQueue/setWaker(_:direct:)``): the fan-out runs it
/// directly at the end of the publisher's read, anything else schedules it on the loop. The writer writes what it
/// can take while the channel is writable, flushes once, and waits for writability when the peer is slow, so the
/// queue, not the socket buffer, decides what a slow target drops. No task runs per message: the target's
/// ``PushSessionHandler`` puts the writer in the pipeline when the target accepts the publish.
///
/// Each pass is encoded by the connection's ``RTMPConnectionHandler`` directly (``RTMPConnectionHandler/write(_:context:)``):
/// the chunk headers into one buffer, the payloads the fan-out cut into chunks once shared with every other target,
/// one flush per pass, and no pipeline hop per message.
///
/// Timestamps are rebased to start at 0 on each connection, and messages are put on the publish stream and on the
/// chunk streams encoders use (audio, video, data).
final class TargetWriter {
    /// Per batch of messages written: bytes and count, for statistics and metrics.
    typealias Sent = @Sendable (_ bytes: Int, _ messages: Int) -> Void

    /// How many messages one pass takes before it lets the event loop serve others.
    static let batchLimit = 64

    private let queue: TargetQueue
    private let streamID: UInt32
    private let sent: Sent
    private let done: EventLoopPromise<Void>
    /// The connection's RTMP handler and its context: it encodes each pass directly.
    private let rtmp: (handler: RTMPConnectionHandler, context: ChannelHandlerContext)
    private var context: ChannelHandlerContext?
    private var base: UInt32?
    private var batch: [RelayMessage] = []
    private var encoded: [RTMPConnectionHandler.BatchMessage] = []
    private var completed = false
    /// ``drainFunctions(on:)``'s scheduling function for this connection, made when the handler is added.
    private var drainSoon: (@Sendable () -> Void)?

    /// `done` succeeds once the publisher ended and everything was written, and fails if the connection closes or
    /// the writer leaves the pipeline first.
    init(
        queue: TargetQueue,
        streamID: UInt32,
        rtmp: (handler: RTMPConnectionHandler, context: ChannelHandlerContext),
        done: EventLoopPromise<Void>,
        sent: @escaping Sent
    ) {
        self.queue = queue
        self.streamID = streamID
        self.rtmp = rtmp
        self.done = done
        self.sent = sent
    }

    private func complete(_ result: Result<Void, any Error>) {
        guard !self.completed else {
            return
        }
        self.completed = true
        self.queue.setWaker(nil)
        // It holds this writer: let both go.
        self.drainSoon = nil
        self.done.completeWith(result)
    }

    /// A function that runs a pass of ``drain()`` (`now`, for the fan-out at the end of the publisher's read), and
    /// one that schedules it on the loop, after what it is doing now (`later`, so a burst is written at once). Made
    /// once per connection: the pass is one closure, handed to `execute` as it is, so a wake allocates nothing (a
    /// closure made per call would be a context allocated per message).
    private func drainFunctions(on loop: any EventLoop) -> (now: @Sendable () -> Void, later: @Sendable () -> Void) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let pass: @Sendable () -> Void = { bound.value.drain() }
        return (pass, { loop.execute(pass) })
    }

    /// Puts a message on this connection: its timestamp rebased to the connection's first message, the publish
    /// stream, and the chunk stream encoders use for its type.
    private func place(_ message: inout RTMPMessage) {
        let origin = self.base ?? message.timestamp
        self.base = origin
        // Audio may be a little behind the keyframe a restart begins with; never below 0.
        let offset = Int32(bitPattern: message.timestamp &- origin)
        message.timestamp = offset > 0 ? UInt32(offset) : 0
        message.messageStreamID = self.streamID
        message.chunkStreamID = RelayMessage.chunkStreamID(for: message.type)
    }

    private func drain() {
        guard let context, !self.completed else {
            return
        }
        var wrote = false
        while context.channel.isWritable {
            let (emptied, finished) = self.queue.take(limit: Self.batchLimit, into: &self.batch)
            var bytes = 0
            for item in self.batch {
                var message = item.message
                self.place(&message)
                bytes += message.payload.readableBytes
                self.encoded.append((message, item.chunked))
            }
            if !self.encoded.isEmpty {
                do {
                    try self.rtmp.handler.write(self.encoded, context: self.rtmp.context)
                } catch {
                    self.complete(.failure(error))
                    context.close(promise: nil)
                    return
                }
                wrote = true
                self.sent(bytes, self.encoded.count)
            }
            let count = self.batch.count
            // The payloads are written (or in the pending writes) now: the batch need not hold them until the next
            // pass.
            self.batch.removeAll(keepingCapacity: true)
            self.encoded.removeAll(keepingCapacity: true)
            if finished {
                context.flush()
                self.complete(.success(()))
                return
            }
            if emptied {
                break
            }
            // A full batch: more may follow at once, but let the loop serve its other channels first.
            if count == Self.batchLimit {
                context.flush()
                self.drainSoon?()
                return
            }
        }
        if wrote {
            context.flush()
        }
    }
}

@available(*, unavailable)
extension TargetWriter: Sendable {}

extension TargetWriter: ChannelInboundHandler {
    typealias InboundIn = RTMPMessage
    typealias InboundOut = RTMPMessage

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard context.channel.isActive else {
            self.complete(.failure(ChannelError.ioOnClosedChannel))
            return
        }
        let drain = self.drainFunctions(on: context.eventLoop)
        self.drainSoon = drain.later
        // Run directly only on the queue's (the fan-out's) loop, where the fan-out calls it.
        self.queue.setWaker(drain.later, direct: self.queue.loop.inEventLoop ? drain.now : nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.complete(.failure(ChannelError.ioOnClosedChannel))
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.complete(.failure(ChannelError.ioOnClosedChannel))
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.drain()
        }
        context.fireChannelWritabilityChanged()
    }
}
