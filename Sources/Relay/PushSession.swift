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

/// One connection's publish to a target, on the connection's event loop: runs the
/// ``RTMPPublishClientStateMachine`` (connect, createStream, publish), puts a ``TargetWriter`` in the pipeline once
/// the target accepted, and ends the publish (`FCUnpublish`, `deleteStream`) once the writer has sent everything.
///
/// It keeps reading after the publish started, because a server may end it with an error status. The outcome is
/// one promise: it succeeds when the publisher ended and the goodbye is on the wire, and fails with the reason the
/// connection ended otherwise (the first error seen in the pipeline, or the target closing it).
///
/// A handler rather than a task per connection: a target that pushes holds no task and no async channel, only
/// this and the writer (a task and its async frames cost more than the rest of a target's connection).
final class PushSessionHandler {
    /// Called on the loop when the target accepted the publish, before any media is written.
    typealias Publishing = @Sendable () -> Void

    private var session: RTMPPublishClientStateMachine
    private let streamName: String
    private let queue: TargetQueue
    private let sent: TargetWriter.Sent
    private let publishing: Publishing
    private let ended: EventLoopPromise<Void>
    private let setupTimeout: Duration
    private var setupTimer: Scheduled<Void>?
    private var error: (any Error)?
    private var started = false
    private var completed = false

    init(
        configuration: RTMPPublishClientStateMachine.Configuration,
        queue: TargetQueue,
        ended: EventLoopPromise<Void>,
        setupTimeout: Duration,
        publishing: @escaping Publishing,
        sent: @escaping TargetWriter.Sent
    ) {
        self.session = RTMPPublishClientStateMachine(configuration: configuration)
        self.streamName = configuration.streamName
        self.queue = queue
        self.ended = ended
        self.setupTimeout = setupTimeout
        self.publishing = publishing
        self.sent = sent
    }

    private func start(context: ChannelHandlerContext) {
        guard !self.started else {
            return
        }
        self.started = true
        // The handshake, connect, createStream and publish must be done in time.
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let timeout = self.setupTimeout
        self.setupTimer = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            let (handler, context) = loopBound.value
            handler.fail(RTMPError.timeout("no accepted publish within \(timeout)"), context: context)
        }
        // Held by the RTMP handler until its handshake completes.
        self.send(self.session.start(), context: context)
    }

    private func send(_ messages: [RTMPMessage], context: ChannelHandlerContext) {
        for message in messages {
            context.write(Self.wrapOutboundOut(message), promise: nil)
        }
        context.flush()
    }

    /// The target accepted: from here the writer sends the queue on the publish stream.
    private func startWriting(streamID: UInt32, context: ChannelHandlerContext) {
        self.setupTimer?.cancel()
        self.publishing()
        let done = context.eventLoop.makePromise(of: Void.self)
        do {
            // Next to the RTMP handler, which encodes its batches.
            let pipeline = context.pipeline.syncOperations
            let rtmp = try pipeline.handler(type: RTMPConnectionHandler.self)
            let writer = TargetWriter(
                queue: self.queue,
                streamID: streamID,
                rtmp: (rtmp, try pipeline.context(handler: rtmp)),
                done: done,
                sent: self.sent
            )
            // From here the writer ends itself: it is before this handler, so it sees the channel go inactive first,
            // and a pipeline torn down removes it.
            try pipeline.addHandler(writer, position: .after(rtmp))
        } catch {
            done.fail(error)
            self.fail(error, context: context)
            return
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        done.futureResult.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success:
                handler.unpublish(streamID: streamID, context: context)
            case .failure:
                // The connection closed or the pipeline is going away: `channelInactive` gives the reason.
                context.channel.close(promise: nil)
            }
        }
    }

    /// The publisher ended and the writer sent everything: end the publish cleanly, and succeed once the bytes are
    /// written.
    private func unpublish(streamID: UInt32, context: ChannelHandlerContext) {
        guard !self.completed else {
            return
        }
        let goodbye = RTMPPublishClientStateMachine.unpublishMessages(
            streamName: self.streamName,
            messageStreamID: streamID
        )
        let written = context.eventLoop.makePromise(of: Void.self)
        for (index, message) in goodbye.enumerated() {
            context.write(Self.wrapOutboundOut(message), promise: index == goodbye.count - 1 ? written : nil)
        }
        context.flush()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        written.futureResult.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success:
                handler.complete(.success(()))
            case .failure(let error):
                handler.fail(error, context: context)
            }
        }
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        self.error = self.error ?? error
        self.complete(.failure(self.error ?? error))
        context.channel.close(promise: nil)
    }

    private func complete(_ result: Result<Void, any Error>) {
        guard !self.completed else {
            return
        }
        self.completed = true
        self.setupTimer?.cancel()
        self.ended.completeWith(result)
    }
}

@available(*, unavailable)
extension PushSessionHandler: Sendable {}

extension PushSessionHandler: ChannelInboundHandler {
    typealias InboundIn = RTMPMessage
    typealias OutboundOut = RTMPMessage

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            self.start(context: context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.start(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.session.received(Self.unwrapInboundIn(data)) {
        case .none:
            break
        case .send(let reply):
            self.send(reply, context: context)
        case .publishing(let reply):
            self.send(reply, context: context)
            guard let streamID = self.session.messageStreamID else {
                self.fail(RTMPError.connectionClosed("the publish started without a stream"), context: context)
                return
            }
            self.startWriting(streamID: streamID, context: context)
        case .fail(let error):
            self.fail(error, context: context)
        case .keyframeRequested:
            // Only for a publisher that asked for them in connect; a target's session never does.
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The first error is the reason; the close that follows it only confirms it.
        self.fail(error, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let reason =
            self.session.isPublishing
            ? "the target closed the connection" : "the target closed the connection during the publish setup"
        self.complete(.failure(self.error ?? RTMPError.connectionClosed(reason)))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.complete(.failure(self.error ?? ChannelError.ioOnClosedChannel))
    }
}
