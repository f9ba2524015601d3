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

import LiveStreamModel
import Logging
import NIOCore
import RTMP

// The shared ingest port: many streams on one port, routed by the application and stream key an encoder publishes
// to. The key comes only in `publish`, after the server has answered `connect` and `createStream`, so the gateway
// speaks RTMP until then:
//
//   encoder ── handshake, connect, createStream, publish ──▶ gateway (answers them itself; keeps every byte the
//            encoder sent after its handshake)
//   gateway ── PROXY header, handshake, the encoder's kept bytes as they were ──▶ relay
//   relay's answer to the publish (onStatus) ──▶ encoder; from then on the encoder's bytes go to the relay as they
//            are, and the relay's messages reach the encoder re-encoded by the gateway.
//
// The encoder's chunk stream reaches the relay byte for byte from its first chunk, so the relay decodes it exactly
// as the encoder wrote it (Set Chunk Size, compressed headers) and the media path costs what the TCP splice of a
// stream port costs. The other direction is re-encoded because the encoder's view of that chunk stream is the
// gateway's; it carries commands and acknowledgements only. The gateway does not check the key beyond finding a
// route by it: the relay checks it, as on the stream's own port.

/// The first handler of a connection on the shared ingest port: passes every byte on to the RTMP decoder and keeps
/// a copy of those after the handshake (C0, C1 and C2, 3,073 bytes), so they can be replayed to the relay.
final class IngestCapture: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// C0 (1 byte), C1 and C2 (1,536 bytes each): the client's side of the handshake, which the relay gets from the
    /// gateway's own.
    static let handshakeLength = 1 + 1536 + 1536

    private var handshakeLeft = IngestCapture.handshakeLength
    private var captured: [ByteBuffer] = []
    private var capturedBytes = 0
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = Self.unwrapInboundIn(data)
        let skipped = min(self.handshakeLeft, buffer.readableBytes)
        self.handshakeLeft -= skipped
        buffer.moveReaderIndex(forwardBy: skipped)
        if buffer.readableBytes > 0 {
            self.capturedBytes += buffer.readableBytes
            guard self.capturedBytes <= self.limit else {
                // An encoder sends a few hundred bytes before `publish`; this one is not setting up a publish.
                context.fireErrorCaught(
                    RTMPError.limitExceeded("bytes before publish", value: self.capturedBytes, maximum: self.limit)
                )
                context.close(promise: nil)
                return
            }
            self.captured.append(buffer)
        }
        context.fireChannelRead(data)
    }

    /// What the client sent after its handshake, in order; the capture keeps nothing more.
    func take() -> [ByteBuffer] {
        defer { self.captured = [] }
        return self.captured
    }
}

@available(*, unavailable)
extension IngestCapture: Sendable {}

/// The RTMP server of the shared ingest port, up to `publish`: answers `connect`, `releaseStream`, `FCPublish` and
/// `createStream` as the relay would (the same session state machine), finds the stream's route by the published
/// application and key, and puts a ``GatewayConnectionHandler`` in front of the pipeline with the bytes the encoder
/// sent so far. It then stays at the end of the pipeline to send the relay's answers to the encoder, and to send the
/// encoder the reason when the gateway refuses the publish.
final class SharedIngestHandler {
    private enum Phase {
        /// Before `publish`: the gateway answers the encoder.
        case negotiating
        /// Routed; the encoder waits for the relay's answer to its publish.
        case routed
        /// The relay answered; its messages go to the encoder.
        case answered
        case closed
    }

    private let gateway: Gateway
    private var logger: Logger
    private var session = RTMPServerSessionStateMachine(configuration: .init(applications: []))
    private var phase = Phase.negotiating
    private var context: ChannelHandlerContext?
    private var setupTimer: Scheduled<Void>?
    /// Set for a connection the gateway refused (and logged) when it came, on any port: it is answered in RTMP
    /// only to tell the encoder why, at its publish.
    private let refusal: GatewayRefusal?
    /// The publish's message stream, once routed.
    private var publishStreamID: UInt32 = 1

    init(gateway: Gateway, logger: Logger, refusal: GatewayRefusal? = nil) {
        self.gateway = gateway
        self.logger = logger
        self.refusal = refusal
    }

    /// A message from the relay (see ``RelayAnswerHandler``): sent to the encoder through this connection's chunk
    /// stream.
    func relayed(_ message: RTMPMessage) {
        guard let context = self.context else {
            return
        }
        switch self.phase {
        case .routed, .answered:
            self.phase = .answered
            context.writeAndFlush(Self.wrapOutboundOut(message), promise: nil)
        case .negotiating, .closed:
            break
        }
    }

    /// Go Offline for a live publish: tells the encoder why its publish ends (an `onStatus` error), then closes the
    /// connection, which closes the relay's too.
    func end(description: String) {
        guard let context = self.context else {
            return
        }
        switch self.phase {
        case .routed, .answered:
            self.phase = .closed
            let status = RTMPServerSessionStateMachine.onStatus(
                streamID: self.publishStreamID,
                level: "error",
                code: "NetStream.Publish.Rejected",
                description: description
            )
            context.writeAndFlush(Self.wrapOutboundOut(status), promise: nil)
            closeAfterEncoderHeard(context.channel)
        case .negotiating, .closed:
            context.close(promise: nil)
        }
    }

    /// The publish will not go through: tells the encoder why (an `onStatus` error, which encoders show), unless
    /// the relay answered already. The caller logs the refusal and closes the connection.
    func sendRefusal(_ refusal: GatewayRefusal) {
        guard let context = self.context else {
            return
        }
        switch self.phase {
        case .routed:
            self.phase = .closed
            self.send(
                self.session.publishRefused(description: refusal.encoderMessage),
                context: context
            )
        case .negotiating, .answered, .closed:
            self.phase = .closed
        }
    }

    private func received(_ message: RTMPMessage, context: ChannelHandlerContext) {
        switch self.session.received(message) {
        case .none, .media:
            break
        case .send(let messages):
            self.send(messages, context: context)
        case .authorize(let request):
            self.route(request, context: context)
        case .unpublished(let messages), .close(let messages, _):
            // Before a publish neither ends a stream; the encoder is leaving (or broke the protocol).
            self.send(messages, context: context)
            self.phase = .closed
            self.logger.debug("Client left the shared ingest port before publishing")
            context.close(promise: nil)
        }
    }

    private func route(_ request: RTMPPublishRequest, context: ChannelHandlerContext) {
        if let refusal = self.refusal {
            // Logged when the connection came.
            self.phase = .closed
            self.send(self.session.publishRefused(description: refusal.encoderMessage), context: context)
            context.close(promise: nil)
            return
        }
        self.publishStreamID = request.messageStreamID
        let key = GatewayRoute.IngestKey(app: request.app, key: request.streamName)
        guard let route = self.gateway.routes.route(forIngest: key) else {
            return self.refuse(.unknownKey(app: request.app), stream: nil, context: context)
        }
        self.logger[metadataKey: "gateway.stream"] = "\(route.stream)"
        if route.suspended {
            return self.refuse(.suspended, stream: route.stream, context: context)
        }
        guard let remote = context.channel.remoteAddress,
            route.allowedSourceRanges.contains(where: { $0.contains(remote) })
        else {
            return self.refuse(.sourceRange, stream: route.stream, context: context)
        }
        var held = false
        if route.upstream == nil {
            if let refusal = self.gateway.hold(route.stream) {
                return self.refuse(refusal, stream: route.stream, context: context)
            }
            held = true
        }
        self.setupTimer?.cancel()
        self.phase = .routed
        let pipeline = context.pipeline.syncOperations
        do {
            let capture = try pipeline.handler(type: IngestCapture.self)
            let connection = GatewayConnectionHandler(
                gateway: self.gateway,
                route: route,
                held: held,
                now: context.eventLoop.now,
                logger: self.logger,
                front: self,
                preface: capture.take()
            )
            // In the capture's place: from now on the encoder's bytes are the connection's, not the decoder's.
            try pipeline.addHandler(connection, position: .before(capture))
            pipeline.removeHandler(capture, promise: nil)
        } catch {
            // Cannot happen while this handler runs on its pipeline; if it does, the connection goes.
            self.logger.error("Cannot route the connection", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    private func refuse(_ refusal: GatewayRefusal, stream: StreamID?, context: ChannelHandlerContext) {
        self.gateway.logRefusal(refusal, stream: stream, logger: self.logger)
        self.phase = .closed
        self.send(self.session.publishRefused(description: refusal.encoderMessage), context: context)
        context.close(promise: nil)
    }

    private func send(_ messages: [RTMPMessage], context: ChannelHandlerContext) {
        for message in messages {
            context.write(Self.wrapOutboundOut(message), promise: nil)
        }
        context.flush()
    }
}

@available(*, unavailable)
extension SharedIngestHandler: Sendable {}

extension SharedIngestHandler: ChannelInboundHandler {
    typealias InboundIn = RTMPMessage
    typealias OutboundOut = RTMPMessage

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let timeout = self.gateway.configuration.ingestSetupTimeout
        self.setupTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
            guard case .negotiating = self.phase, let context = self.context else {
                return
            }
            self.phase = .closed
            guard self.refusal == nil else {
                // Refused and logged already; it never got to its publish.
                self.logger.debug("Refused client did not publish within the setup timeout")
                context.close(promise: nil)
                return
            }
            self.gateway.logRefusal(.setupTimeout(timeout), stream: nil, logger: self.logger)
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.setupTimer?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After routing, what the decoder still finds in the last read is in the replay already.
        guard case .negotiating = self.phase else {
            return
        }
        self.received(Self.unwrapInboundIn(data), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.setupTimer?.cancel()
        if case .negotiating = self.phase {
            self.logger.debug("Client left the shared ingest port before publishing")
        }
        self.phase = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The decoder's or the capture's: a client that does not speak RTMP, or broke it, before it was routed.
        if case .negotiating = self.phase, self.refusal == nil {
            self.phase = .closed
            self.gateway.logRefusal(.clientProtocolError(error: "\(error)"), stream: nil, logger: self.logger)
        } else {
            self.logger.debug("Client connection failed", metadata: ["error": "\(error)"])
        }
        context.close(promise: nil)
    }
}

/// The last handler of the gateway's connection to a relay for a shared-port client (after an
/// ``RTMPConnectionHandler`` in the client role that passes Acknowledgements on): says when the handshake is done, so
/// the client's bytes can be replayed, drops the relay's answers to what the gateway answered already (`connect`,
/// `createStream`), and hands the rest, from the relay's answer to `publish` on, to the ``SharedIngestHandler`` to
/// send to the encoder. That includes the relay's Acknowledgements: the relay counts the bytes it received since its
/// handshake, which are the encoder's since its own, so their sequence numbers are right for the encoder.
final class RelayAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = RTMPMessage

    private let front: SharedIngestHandler
    private let handshaken: () -> Void
    private let failed: (GatewayRefusal) -> Void
    private var answered = false

    /// - Parameters:
    ///   - handshaken: called once the handshake with the relay completed.
    ///   - failed: called with the refusal when the relay closes or breaks the protocol before it answered the
    ///     publish.
    init(front: SharedIngestHandler, handshaken: @escaping () -> Void, failed: @escaping (GatewayRefusal) -> Void) {
        self.front = front
        self.handshaken = handshaken
        self.failed = failed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = Self.unwrapInboundIn(data)
        if !self.answered {
            // The relay answers `publish` with `onStatus` (started, or refused with the reason); everything before
            // answers commands the encoder had answered by the gateway.
            guard message.type == .commandAMF0, (try? RTMPCommand(payload: message.payload))?.name == "onStatus"
            else {
                return
            }
            self.answered = true
        }
        self.front.relayed(message)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is RTMPConnectionHandler.HandshakeCompleted {
            self.handshaken()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !self.answered {
            self.answered = true
            self.failed(.relayClosed)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !self.answered {
            self.answered = true
            self.failed(.relayProtocolError(error: "\(error)"))
        }
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension RelayAnswerHandler: Sendable {}
