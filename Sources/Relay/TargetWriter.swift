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
/// The queue wakes the writer once per burst of messages (``TargetQueue/setWaker(_:)``); the writer writes what it
/// can take while the channel is writable, flushes once, and waits for writability when the peer is slow, so the
/// queue, not the socket buffer, decides what a slow target drops. No task runs per message: the target's session
/// task only sets the writer up and waits for its end.
///
/// Each pass is encoded into one buffer by the connection's ``RTMPConnectionHandler`` directly
/// (``RTMPConnectionHandler/write(_:context:)``): one pending write per pass, and no pipeline hop per message.
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
    private let done: EventLoopPromise<Bool>
    private var context: ChannelHandlerContext?
    /// The RTMP handler before this one, and its context: batches are encoded by it directly.
    private var rtmp: (handler: RTMPConnectionHandler, context: ChannelHandlerContext)?
    private var base: UInt32?
    private var batch: [RTMPMessage] = []
    private var completed = false

    /// `done` succeeds with true once the publisher ended and everything was written, and fails if the connection
    /// closes first or ``cancel()`` is called.
    init(queue: TargetQueue, streamID: UInt32, done: EventLoopPromise<Bool>, sent: @escaping Sent) {
        self.queue = queue
        self.streamID = streamID
        self.done = done
        self.sent = sent
    }

    /// Ends the writer (its session is being torn down); safe to call on the loop at any time.
    func cancel() {
        self.complete(.failure(CancellationError()))
    }

    private func complete(_ result: Result<Bool, any Error>) {
        guard !self.completed else {
            return
        }
        self.completed = true
        self.queue.setWaker(nil)
        self.done.completeWith(result)
    }

    /// Schedules a pass of ``drain()`` on the loop, after what it is doing now (so a burst is written at once).
    private func drainLater(on loop: any EventLoop) -> @Sendable () -> Void {
        let bound = NIOLoopBound(self, eventLoop: loop)
        return { loop.execute { bound.value.drain() } }
    }

    private func drain() {
        guard let context, let rtmp, !self.completed else {
            return
        }
        var wrote = false
        while context.channel.isWritable {
            self.batch.removeAll(keepingCapacity: true)
            let (emptied, finished) = self.queue.take(limit: Self.batchLimit, into: &self.batch)
            var bytes = 0
            for index in self.batch.indices {
                let origin = self.base ?? self.batch[index].timestamp
                self.base = origin
                // Audio may be a little behind the keyframe a restart begins with; never below 0.
                let offset = Int32(bitPattern: self.batch[index].timestamp &- origin)
                self.batch[index].timestamp = offset > 0 ? UInt32(offset) : 0
                self.batch[index].messageStreamID = self.streamID
                switch self.batch[index].type {
                case .audio: self.batch[index].chunkStreamID = RTMPChunkStreamID.audio
                case .video: self.batch[index].chunkStreamID = RTMPChunkStreamID.video
                default: self.batch[index].chunkStreamID = RTMPChunkStreamID.data
                }
                bytes += self.batch[index].payload.readableBytes
            }
            if !self.batch.isEmpty {
                do {
                    try rtmp.handler.write(self.batch, context: rtmp.context)
                } catch {
                    self.complete(.failure(error))
                    context.close(promise: nil)
                    return
                }
                wrote = true
                self.sent(bytes, self.batch.count)
            }
            let count = self.batch.count
            // The payloads are in the encoded buffer now; the queue's messages need not live until the next pass.
            self.batch.removeAll(keepingCapacity: true)
            if finished {
                context.flush()
                self.complete(.success(true))
                return
            }
            if emptied {
                break
            }
            // A full batch: more may follow at once, but let the loop serve its other channels first.
            if count == Self.batchLimit {
                context.flush()
                self.drainLater(on: context.eventLoop)()
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

extension TargetWriter: ChannelDuplexHandler {
    typealias InboundIn = RTMPMessage
    typealias InboundOut = RTMPMessage
    typealias OutboundIn = RTMPMessage
    typealias OutboundOut = RTMPMessage

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let rtmp = try? context.pipeline.syncOperations.context(handlerType: RTMPConnectionHandler.self),
            let handler = rtmp.handler as? RTMPConnectionHandler
        {
            self.rtmp = (handler, rtmp)
        } else {
            self.complete(.failure(RTMPError.connectionClosed("no RTMP connection to write to")))
            return
        }
        guard context.channel.isActive else {
            self.complete(.failure(ChannelError.ioOnClosedChannel))
            return
        }
        self.queue.setWaker(self.drainLater(on: context.eventLoop))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.complete(.failure(ChannelError.ioOnClosedChannel))
        self.context = nil
        self.rtmp = nil
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
