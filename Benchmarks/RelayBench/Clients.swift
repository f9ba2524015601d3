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

/// An `rtmp://host:port/app/stream` or `rtmps://` address, split the simple way the benchmark needs.
struct BenchURL: Sendable {
    var tls: Bool
    var host: String
    var port: Int
    var app: String
    var stream: String
    var tcURL: String { "\(self.tls ? "rtmps" : "rtmp")://\(self.host):\(self.port)/\(self.app)" }

    init(_ string: String) throws {
        guard let scheme = ["rtmp://", "rtmps://"].first(where: string.hasPrefix) else {
            throw BenchError("not an rtmp:// or rtmps:// URL")
        }
        self.tls = scheme == "rtmps://"
        let parts = string.dropFirst(scheme.count).split(separator: "/", maxSplits: 2).map(String.init)
        guard parts.count == 3, let colon = parts[0].lastIndex(of: ":"),
            let port = Int(parts[0][parts[0].index(after: colon)...])
        else {
            throw BenchError("expected rtmp://HOST:PORT/APP/STREAM or rtmps://")
        }
        self.host = String(parts[0][..<colon])
        self.port = port
        self.app = parts[1]
        self.stream = parts[2]
    }
}

/// Publishes the input in real time on one connection and notes when each message was handed to the channel.
///
/// Runs entirely on its channel's event loop: the session's commands are answered in `channelRead`, and media is
/// paced by timers at the start time plus each message's offset, so that 50 publishers cost a few timer wakeups each
/// per frame and nothing else.
final class PublishHandler: ChannelInboundHandler {
    typealias InboundIn = RTMPMessage
    typealias OutboundOut = RTMPMessage

    private let input: InputStream
    private var session: RTMPPublishClientStateMachine
    private var context: ChannelHandlerContext?
    private var next = 0
    private var start: NIODeadline = .distantFuture
    /// Monotonic nanoseconds at which message `i` was written; 0 if it was not.
    private(set) var sendTimes: [UInt64]
    let publishing: EventLoopPromise<Void>
    let finished: EventLoopPromise<Void>

    init(input: InputStream, url: BenchURL, eventLoop: any EventLoop) {
        self.input = input
        self.session = RTMPPublishClientStateMachine(
            configuration: .init(app: url.app, tcURL: url.tcURL, streamName: url.stream)
        )
        self.sendTimes = Array(repeating: 0, count: input.messages.count)
        self.publishing = eventLoop.makePromise()
        self.finished = eventLoop.makePromise()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        for message in self.session.start() {
            context.write(Self.wrapOutboundOut(message), promise: nil)
        }
        context.flush()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.session.received(Self.unwrapInboundIn(data)) {
        case .none, .keyframeRequested:
            break
        case .send(let messages), .publishing(let messages):
            for message in messages {
                context.write(Self.wrapOutboundOut(message), promise: nil)
            }
            context.flush()
            if self.session.isPublishing {
                self.publishing.succeed()
            }
        case .fail(let error):
            self.fail(error, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(error, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.fail(BenchError("the server closed the publishing connection"), context: context)
        context.fireChannelInactive()
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        self.publishing.fail(error)
        self.finished.fail(error)
        context.close(promise: nil)
    }

    /// Starts sending media at `start`.
    func start(at start: NIODeadline) {
        self.start = start
        self.schedule()
    }

    private func schedule() {
        guard let context = self.context else { return }
        let due = self.start + .milliseconds(Int64(self.input.messages[self.next].offset))
        context.eventLoop.assumeIsolated().scheduleTask(deadline: due) {
            self.pump()
        }
    }

    /// Writes every message that is due, then sleeps until the next one.
    private func pump() {
        guard let context = self.context, context.channel.isActive, let streamID = self.session.messageStreamID else {
            return
        }
        let now = NIODeadline.now()
        let messages = self.input.messages
        while self.next < messages.count,
            self.start + .milliseconds(Int64(messages[self.next].offset)) <= now
        {
            let input = messages[self.next]
            let chunkStreamID: UInt32 =
                switch input.type {
                case .audio: RTMPChunkStreamID.audio
                case .video: RTMPChunkStreamID.video
                default: RTMPChunkStreamID.data
                }
            let message = RTMPMessage(
                chunkStreamID: chunkStreamID,
                timestamp: input.offset,
                type: input.type,
                messageStreamID: streamID,
                payload: input.payload
            )
            self.sendTimes[self.next] = now.uptimeNanoseconds
            context.write(Self.wrapOutboundOut(message), promise: nil)
            self.next += 1
        }
        context.flush()
        if self.next < messages.count {
            self.schedule()
            return
        }
        for message in self.session.unpublish() {
            context.write(Self.wrapOutboundOut(message), promise: nil)
        }
        context.flush()
        self.finished.succeed()
    }
}

@available(*, unavailable)
extension PublishHandler: Sendable {}

/// Plays one stream and notes when each recognised message arrived: `connect`, `createStream`, `play`, then media.
final class PlayHandler: ChannelInboundHandler {
    typealias InboundIn = RTMPMessage
    typealias OutboundOut = RTMPMessage

    private enum State {
        case connecting
        case creatingStream
        case playing(streamID: UInt32)
    }

    private let index: [Signature: Int]
    private let url: BenchURL
    private var state: State = .connecting
    /// Monotonic nanoseconds at which message `i` of the input arrived; 0 if it did not.
    private(set) var arrivals: [UInt64]
    /// Audio and video messages that matched no unique signature of the input.
    private(set) var unmatched = 0
    /// Messages that matched a signature already seen on this connection.
    private(set) var duplicates = 0
    let ready: EventLoopPromise<Void>
    /// Succeeds with the monotonic time of the first audio or video message of the input that arrives.
    let firstMedia: EventLoopPromise<UInt64>
    private var sawMedia = false

    init(input: InputStream, url: BenchURL, eventLoop: any EventLoop) {
        self.index = input.index
        self.url = url
        self.arrivals = Array(repeating: 0, count: input.messages.count)
        self.ready = eventLoop.makePromise()
        self.firstMedia = eventLoop.makePromise()
    }

    func channelActive(context: ChannelHandlerContext) {
        let connect = RTMPCommand(
            name: "connect",
            transactionID: 1,
            commandObject: .object([
                (key: "app", value: .string(self.url.app)),
                (key: "flashVer", value: "LNX 9,0,124,2"),
                (key: "tcUrl", value: .string(self.url.tcURL)),
                (key: "fpad", value: false),
                (key: "capabilities", value: 15),
                (key: "audioCodecs", value: 4071),
                (key: "videoCodecs", value: 252),
                (key: "videoFunction", value: 1),
            ])
        )
        context.writeAndFlush(Self.wrapOutboundOut(connect.message(streamID: 0)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = Self.unwrapInboundIn(data)
        switch message.type {
        case .audio, .video:
            let now = NIODeadline.now().uptimeNanoseconds
            guard let position = self.index[Signature(type: message.type, payload: message.payload)] else {
                self.unmatched += 1
                return
            }
            if !self.sawMedia {
                self.sawMedia = true
                self.firstMedia.succeed(now)
            }
            if self.arrivals[position] == 0 {
                self.arrivals[position] = now
            } else {
                self.duplicates += 1
            }
        case .commandAMF0:
            guard let command = try? RTMPCommand(payload: message.payload) else { return }
            self.received(command, context: context)
        default:
            break
        }
    }

    private func received(_ command: RTMPCommand, context: ChannelHandlerContext) {
        switch (self.state, command.name) {
        case (.connecting, "_result"):
            self.state = .creatingStream
            let createStream = RTMPCommand(name: "createStream", transactionID: 2)
            context.writeAndFlush(Self.wrapOutboundOut(createStream.message(streamID: 0)), promise: nil)
        case (.creatingStream, "_result"):
            guard let number = command.arguments.first?.numberValue, number >= 1, number < 65536 else {
                self.fail(BenchError("createStream answered without a stream id"), context: context)
                return
            }
            let streamID = UInt32(number)
            self.state = .playing(streamID: streamID)
            let buffer = RTMPControlMessage.userControl(.setBufferLength(streamID: streamID, milliseconds: 1000))
            context.write(Self.wrapOutboundOut(buffer.message), promise: nil)
            // A start of -1000 asks for the live stream only (the same as ffmpeg's `-rtmp_live live`).
            let play = RTMPCommand(name: "play", transactionID: 0, arguments: [.string(self.url.stream), -1000])
            context.writeAndFlush(Self.wrapOutboundOut(play.message(streamID: streamID)), promise: nil)
        case (_, "onStatus"):
            let info = command.arguments.first
            if info?["level"]?.stringValue == "error" {
                let code = info?["code"]?.stringValue ?? "?"
                self.fail(BenchError("play of \(self.url.app)/… failed: \(code)"), context: context)
            } else if info?["code"]?.stringValue == "NetStream.Play.Start" {
                self.ready.succeed()
            }
        case (_, "_error"):
            let reason = command.arguments.first ?? .null
            self.fail(BenchError("the sink refused \(self.url.app): \(reason)"), context: context)
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(error, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.ready.fail(BenchError("the sink closed the playing connection"))
        self.firstMedia.fail(BenchError("the sink closed the playing connection before any media arrived"))
        context.fireChannelInactive()
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        self.ready.fail(error)
        self.firstMedia.fail(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension PlayHandler: Sendable {}

/// Asks the kernel to acknowledge at once after every read (`TCP_QUICKACK`, which Linux clears again by itself).
///
/// nginx-rtmp does not set `TCP_NODELAY` on the connections to its players, so without this the sink's Nagle
/// algorithm and the player's delayed acknowledgements hold the tail of some frames for up to 40 ms, on every path
/// alike. That noise would hide what the relays add.
final class QuickAckHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private static let option = ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: 12))

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        try? context.channel.syncOptions?.setOption(Self.option, value: 1)
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension QuickAckHandler: Sendable {}
