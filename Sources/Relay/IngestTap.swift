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

/// The publisher's media path: once the publish is accepted, media messages go from the RTMP decoder to the
/// fan-out on the connection's event loop, where the targets' connections also live, instead of through the
/// session task. Everything else (commands, and all messages before the publish is accepted) goes on to the
/// session, which answers commands and decides on the publish.
///
/// It is the RTMP handler's ``RTMPMessageTap`` (so media skip the pipeline: no box, hop or cast per message) and the
/// handler after it, which passes on what the tap left and sees the end of each read.
///
/// The session attaches the fan-out with ``attach(_:messageStreamID:)`` before it tells the publisher that the
/// publish started. Media that reach the session after that were sent before the publish was accepted, and the
/// session drops them, as it always drops media before acceptance; so no message is published twice or out of order.
final class IngestTap {
    private var fanOut: FanOut?
    private var messageStreamID: UInt32 = 0
    /// The time of the current read, taken at its first media message: the clock is read once per read.
    private var readTime: ContinuousClock.Instant?

    init() {}

    func attach(_ fanOut: FanOut, messageStreamID: UInt32) {
        self.fanOut = fanOut
        self.messageStreamID = messageStreamID
    }

    /// Stops the direct path (the publisher unpublished or the connection is going away).
    func detach() {
        self.fanOut = nil
    }
}

@available(*, unavailable)
extension IngestTap: Sendable {}

extension IngestTap: RTMPMessageTap {
    /// The publisher's media, once attached: straight to the fan-out; everything else goes on to the session.
    func take(_ message: RTMPMessage) -> Bool {
        guard let fanOut = self.fanOut else {
            return false
        }
        switch message.type {
        case .audio, .video, .dataAMF0, .dataAMF3, .aggregate:
            if message.messageStreamID == self.messageStreamID {
                let now = self.readTime ?? .now
                self.readTime = now
                fanOut.publish(message, now: now)
            }
            return true
        default:
            return false
        }
    }
}

extension IngestTap: ChannelInboundHandler {
    typealias InboundIn = RTMPMessage
    typealias InboundOut = RTMPMessage

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // What the RTMP handler's tap did not take (or all of it, without the tap).
        guard self.take(Self.unwrapInboundIn(data)) else {
            context.fireChannelRead(data)
            return
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.readTime != nil {
            self.readTime = nil
            self.fanOut?.readComplete()
        }
        context.fireChannelReadComplete()
    }
}
