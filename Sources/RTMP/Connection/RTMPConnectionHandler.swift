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

/// Turns a TCP byte stream into RTMP messages and back: the handshake, the chunk stream in both directions, and
/// the connection-level chores that every RTMP peer expects (Acknowledgement, Ping Response).
///
/// Reads produce ``RTMPMessage`` values: commands, data, media and the user control events a session may care
/// about. Protocol control that only concerns framing (Set Chunk Size, Abort, Acknowledgement, Window
/// Acknowledgement Size, Set Peer Bandwidth, Ping) is handled here and not passed on. Writes take ``RTMPMessage``
/// values; a client's writes made before the handshake completes are held and sent right after it.
///
/// Any protocol error closes the connection after firing the ``RTMPError`` down the pipeline, so the owner can log
/// the reason.
public final class RTMPConnectionHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = RTMPMessage
    public typealias OutboundIn = RTMPMessage
    public typealias OutboundOut = ByteBuffer

    /// Fired down the pipeline (as a user inbound event) once the handshake completed and the handler's own last
    /// handshake bytes were written: from here the chunk stream flows. For an owner that writes bytes of its own
    /// next to this handler's, such as a proxy that replays a client's chunk stream after its own handshake.
    public struct HandshakeCompleted: Hashable, Sendable {}

    /// Which side of the handshake we are.
    public enum Role: Sendable {
        case server
        case client
    }

    private enum State {
        case handshaking(RTMPHandshakeStateMachine)
        case established
        case failed
    }

    private var state: State
    private var handshakeStarted = false
    private let role: Role
    private var decoder: RTMPChunkDecoder
    /// A chunk header cut by the end of a read (the decoder takes payload bytes as they come, so nothing else is
    /// ever left over): at most 18 bytes, kept in a buffer of its own so the channel reuses its receive buffer.
    private var pendingHeader: ByteBuffer?
    private var encoder = RTMPChunkEncoder()
    /// What a batch write writes, in order (kept to reuse its storage).
    private var segments: [Segment] = []
    /// The buffer the last batch was encoded into, kept for the next one: once the channel has written it, this is
    /// its only reference and `clear()` reuses its storage instead of allocating (two allocations a batch, nearly
    /// one per message on a live stream). Kept only up to ``spareOutputLimit``.
    private var spareOutput: ByteBuffer?
    private enum Segment {
        /// A range of the batch's own buffer: chunk headers and small payloads.
        case own(Range<Int>)
        /// A payload cut into chunks once and shared by every connection that sends it.
        case shared(ByteBuffer)
    }
    /// Writes made before the handshake completed (a client's connect), in order.
    private var heldWrites: [(RTMPMessage, EventLoopPromise<Void>?)] = []
    private var heldFlush = false
    private static let maxHeldWrites = 64

    // Acknowledgements (section 5.4.3): bytes received since the handshake, and the window the peer asked for.
    private var bytesReceived: UInt64 = 0
    private var bytesAcknowledged: UInt64 = 0
    private var peerWindow: UInt64 = 0

    /// Whether the peer used the digest form of the handshake, once it completed.
    public private(set) var peerUsedDigest = false

    /// Offered every message that is not a protocol control message, in order, before it goes down the pipeline;
    /// what it takes goes no further. Set on the channel's event loop.
    public var tap: (any RTMPMessageTap)?

    /// Whether the peer's Acknowledgements go on down the pipeline (after being handled here): for a proxy that
    /// passes them to the client whose bytes it forwarded, since the peer counted exactly those.
    private let passesAcknowledgements: Bool

    /// - Parameter copiesSingleChunkPayloads: see ``RTMPChunkDecoder/copiesSingleChunkPayloads``.
    public init(
        role: Role,
        limits: RTMPChunkLimits = .default,
        passesAcknowledgements: Bool = false,
        copiesSingleChunkPayloads: Bool = false
    ) {
        self.role = role
        self.passesAcknowledgements = passesAcknowledgements
        switch role {
        case .server: self.state = .handshaking(.server())
        case .client: self.state = .handshaking(.client())
        }
        // Not NIO's `NIOSingleStepByteToMessageProcessor`: it keeps the read buffer whenever bytes are left over,
        // which with 4 KiB chunks is after almost every read, and then copies each following read into it. The
        // decoder here consumes everything but a partial header, so the cumulation it needs is that header alone.
        self.decoder = RTMPChunkDecoder(limits: limits, copiesSingleChunkPayloads: copiesSingleChunkPayloads)
    }

    public func channelActive(context: ChannelHandlerContext) {
        self.startHandshake(context: context)
        context.fireChannelActive()
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        // A handler added to a channel that is already active (the server side, added in the child initializer
        // after accept, or a client added after connect) still has to start its handshake. A client added when its
        // connect completed may see `channelActive` after this too: the handshake starts once.
        if context.channel.isActive, self.role == .client {
            self.startHandshake(context: context)
        }
    }

    private func startHandshake(context: ChannelHandlerContext) {
        guard !self.handshakeStarted, case .handshaking(var handshake) = self.state else {
            return
        }
        self.handshakeStarted = true
        let action = handshake.start()
        self.state = .handshaking(handshake)
        self.run(action, context: context)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = Self.unwrapInboundIn(data)
        do {
            if case .handshaking(var handshake) = self.state {
                let action = try handshake.bytesReceived(&buffer)
                self.state = .handshaking(handshake)
                self.run(action, context: context)
                guard case .established = self.state else {
                    return
                }
                self.peerUsedDigest = handshake.peerUsedDigest
            }
            guard case .established = self.state else {
                return
            }
            guard buffer.readableBytes > 0 else {
                return
            }
            self.bytesReceived += UInt64(buffer.readableBytes)
            if var pending = self.pendingHeader {
                // Rare: a read ended inside a chunk header.
                self.pendingHeader = nil
                pending.writeBuffer(&buffer)
                buffer = pending
            }
            while let message = try self.decoder.decode(buffer: &buffer) {
                try self.received(message, context: context)
            }
            if buffer.readableBytes > 0 {
                var pending = context.channel.allocator.buffer(capacity: buffer.readableBytes)
                pending.writeBuffer(&buffer)
                self.pendingHeader = pending
            }
            if self.peerWindow > 0, self.bytesReceived - self.bytesAcknowledged >= self.peerWindow {
                self.bytesAcknowledged = self.bytesReceived
                let ack = RTMPControlMessage.acknowledgement(
                    sequenceNumber: UInt32(truncatingIfNeeded: self.bytesReceived)
                )
                self.writeEncoded(ack.message, promise: nil, context: context)
                context.flush()
            }
        } catch {
            self.fail(error, context: context)
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let message = Self.unwrapOutboundIn(data)
        switch self.state {
        case .established:
            self.writeEncoded(message, promise: promise, context: context)
        case .handshaking:
            guard self.heldWrites.count < Self.maxHeldWrites else {
                promise?.fail(
                    RTMPError.limitExceeded("heldWrites", value: self.heldWrites.count + 1, maximum: Self.maxHeldWrites)
                )
                return
            }
            self.heldWrites.append((message, promise))
        case .failed:
            promise?.fail(RTMPError.connectionClosed("the RTMP connection failed"))
        }
    }

    public func flush(context: ChannelHandlerContext) {
        if case .handshaking = self.state {
            self.heldFlush = true
            return
        }
        context.flush()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // An `IdleStateHandler` in front of us reports a peer that went quiet: an encoder whose network died
        // without a FIN sends nothing, and its stream must be freed for its reconnect.
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            self.fail(RTMPError.timeout("the peer sent nothing for the idle timeout"), context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let held = self.heldWrites
        self.heldWrites = []
        for (_, promise) in held {
            promise?.fail(RTMPError.connectionClosed("the connection closed during the handshake"))
        }
        if case .handshaking = self.state {
            self.state = .failed
            context.fireErrorCaught(RTMPError.handshakeFailed("the peer closed the connection during the handshake"))
        }
        context.fireChannelInactive()
    }

    private func run(_ action: RTMPHandshakeStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .wait:
            break
        case .write(let bytes):
            context.writeAndFlush(Self.wrapOutboundOut(bytes), promise: nil)
        case .complete(let bytes):
            if let bytes {
                context.write(Self.wrapOutboundOut(bytes), promise: nil)
            }
            self.state = .established
            let held = self.heldWrites
            self.heldWrites = []
            for (message, promise) in held {
                self.writeEncoded(message, promise: promise, context: context)
            }
            if bytes != nil || self.heldFlush || !held.isEmpty {
                context.flush()
            }
            self.heldFlush = false
            context.fireUserInboundEventTriggered(HandshakeCompleted())
        }
    }

    private func received(_ message: RTMPMessage, context: ChannelHandlerContext) throws {
        guard message.type.isProtocolControl else {
            if let tap = self.tap, tap.take(message) {
                return
            }
            context.fireChannelRead(Self.wrapInboundOut(message))
            return
        }
        guard let control = try RTMPControlMessage(message) else {
            return
        }
        switch control {
        case .windowAcknowledgementSize(let size):
            self.peerWindow = UInt64(size)
        case .userControl(.pingRequest(let timestamp)):
            let pong = RTMPControlMessage.userControl(.pingResponse(timestamp: timestamp))
            self.writeEncoded(pong.message, promise: nil, context: context)
            context.flush()
        case .userControl:
            context.fireChannelRead(Self.wrapInboundOut(message))
        case .acknowledgement where self.passesAcknowledgements:
            context.fireChannelRead(Self.wrapInboundOut(message))
        case .setChunkSize, .abort, .acknowledgement, .setPeerBandwidth:
            // Set Chunk Size and Abort were applied by the decoder; we do not limit our bandwidth on request.
            break
        }
    }

    /// A message of a batch for ``write(_:context:)``: with its payload already cut into chunks (see
    /// ``RTMPChunkedPayload``) when the sender shares one chunking among many connections.
    public typealias BatchMessage = (message: RTMPMessage, chunked: RTMPChunkedPayload?)

    /// Shared chunked payloads up to this size are copied next to their header rather than written as a buffer of
    /// their own: a write costs the pipeline more than copying a small payload does.
    public static let sharedPayloadCopyLimit = 1024
    /// The largest batch buffer kept for the next batch: what a batch of headers and small payloads takes; a batch
    /// that needed more (a GOP replayed to a joining target) gives its buffer back.
    static let spareOutputLimit = 4 * 1024

    /// Encodes `batch` and writes it, without flushing: what ``write(context:data:promise:)`` does for each
    /// message, for a sender beside this handler on the channel's event loop that sends many messages (a relay's
    /// media path), with no pipeline hop or type erasure per message.
    ///
    /// The chunk headers (and small payloads) go into one buffer per batch. A message whose payload comes already
    /// cut into chunks at this connection's chunk size is not copied: its header is written, then the shared bytes,
    /// as buffers of their own, so one flush sends the batch as one gathering write. `context` must be this
    /// handler's context.
    public func write(_ batch: [BatchMessage], context: ChannelHandlerContext) throws {
        guard case .established = self.state else {
            throw RTMPError.connectionClosed("the RTMP connection is not established")
        }
        var capacity = 0
        for (message, chunked) in batch {
            if let chunked, chunked.bytes.readableBytes > Self.sharedPayloadCopyLimit {
                capacity += 18
            } else {
                // The payload, the largest first header, and a continuation header per further chunk.
                let length = message.payload.readableBytes
                capacity += length + 18 + length / self.encoder.chunkSize * 8
            }
        }
        var out: ByteBuffer
        if var spare = self.spareOutput.take() {
            // Allocates only if the channel still holds the last batch (a write the socket has not taken yet).
            spare.clear(minimumCapacity: capacity)
            out = spare
        } else {
            out = context.channel.allocator.buffer(capacity: capacity)
        }
        defer {
            if out.capacity <= Self.spareOutputLimit {
                self.spareOutput = out
            }
        }
        // Written in order once the buffer is complete: its slices (a slice taken earlier would make every later
        // write to it copy the buffer) and the shared payloads between them.
        self.segments.removeAll(keepingCapacity: true)
        var ownStart = 0
        for (message, chunked) in batch {
            if let chunked, try self.encoder.encodeHeader(of: message, chunked: chunked, out: &out) {
                if chunked.bytes.readableBytes <= Self.sharedPayloadCopyLimit {
                    out.writeImmutableBuffer(chunked.bytes)
                } else {
                    self.segments.append(.own(ownStart..<out.writerIndex))
                    self.segments.append(.shared(chunked.bytes))
                    ownStart = out.writerIndex
                }
            } else {
                try self.encoder.encode(data: message, out: &out)
            }
        }
        if self.segments.isEmpty {
            context.write(Self.wrapOutboundOut(out), promise: nil)
            return
        }
        self.segments.append(.own(ownStart..<out.writerIndex))
        for segment in self.segments {
            switch segment {
            case .own(let range) where !range.isEmpty:
                context.write(
                    Self.wrapOutboundOut(out.getSlice(at: range.lowerBound, length: range.count)!),
                    promise: nil
                )
            case .own:
                break
            case .shared(let bytes):
                context.write(Self.wrapOutboundOut(bytes), promise: nil)
            }
        }
        self.segments.removeAll(keepingCapacity: true)
    }

    private func writeEncoded(_ message: RTMPMessage, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext)
    {
        var out = context.channel.allocator.buffer(capacity: message.payload.readableBytes + 18)
        do {
            try self.encoder.encode(data: message, out: &out)
        } catch {
            promise?.fail(error)
            return
        }
        context.write(Self.wrapOutboundOut(out), promise: promise)
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        if case .failed = self.state {
            return
        }
        self.state = .failed
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension RTMPConnectionHandler: Sendable {}

/// Takes messages from an ``RTMPConnectionHandler`` as they are decoded, on the channel's event loop, before they
/// enter the pipeline: for a receiver that takes many (a relay's media path) with none of the pipeline's cost per
/// message (a message is larger than `NIOAny` holds inline, so each one down the pipeline is a heap box, then a hop
/// and a cast per handler). Messages it does not take go down the pipeline as before, in the same order relative to
/// one another; a receiver that also reads the pipeline must not depend on the order between the two.
public protocol RTMPMessageTap: AnyObject {
    /// Whether the tap takes `message`; if not, it goes down the pipeline.
    func take(_ message: RTMPMessage) -> Bool
}
