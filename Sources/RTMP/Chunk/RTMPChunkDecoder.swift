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

/// Limits on what an RTMP peer can make us hold. Breaking one closes that peer's connection.
public struct RTMPChunkLimits: Hashable, Sendable {
    /// The largest message a peer may send, in bytes. A 4K keyframe at a high bitrate is a few megabytes; anything
    /// far beyond that is an attack or a broken encoder. nginx-rtmp's `max_message` defaults to 1 MiB, which real
    /// 1080p60 encoders exceed.
    public var maxMessageLength: Int
    /// The most chunk streams with state that a peer may open. ffmpeg and OBS use fewer than 8; each open chunk
    /// stream may hold a partial message, so this bounds memory with ``maxBufferedBytes``.
    public var maxChunkStreams: Int
    /// The largest chunk size a peer may set with Set Chunk Size (the wire allows 2^31 - 1).
    public var maxChunkSize: Int
    /// The most bytes of partial messages held across all chunk streams at once.
    public var maxBufferedBytes: Int

    public init(
        maxMessageLength: Int = 16 << 20,
        maxChunkStreams: Int = 64,
        maxChunkSize: Int = 16 << 20,
        maxBufferedBytes: Int = 32 << 20
    ) {
        self.maxMessageLength = maxMessageLength
        self.maxChunkStreams = maxChunkStreams
        self.maxChunkSize = maxChunkSize
        self.maxBufferedBytes = maxBufferedBytes
    }

    public static let `default` = Self()
}

/// Reassembles RTMP messages from the chunk stream (RTMP 1.0 specification, section 5.3).
///
/// The decoder keeps, per chunk stream, the previous message header (to expand compressed headers of format 1, 2
/// and 3) and the partial payload of the message in flight. A message that arrives whole in one chunk is a slice of
/// the input (no copy). A message of several chunks is copied once, into a buffer of the message's size, as its
/// bytes arrive: a chunk whose header is complete is consumed even if its payload is not all there yet, so the input
/// never holds more than a partial header (at most 18 bytes) between reads, and the connection can reuse its receive
/// buffer for the next read once the slices taken from it are gone.
///
/// Protocol control that changes how the following bytes are framed is applied here, when its message completes,
/// because NIO calls ``decode(buffer:)`` in a loop on the same buffer and the next chunk may already be in it:
/// Set Chunk Size (5.4.1) changes the incoming chunk size, and Abort (5.4.2) drops the named chunk stream's partial
/// message. Both are still passed on, so the connection can log them.
public struct RTMPChunkDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = RTMPMessage

    /// The largest message header plus basic header plus extended timestamp: 3 + 11 + 4 bytes.

    private struct ChunkStream: Sendable {
        var timestamp: UInt32 = 0
        /// The raw timestamp field of the last format 0, 1 or 2 header (absolute for 0, delta for 1 and 2).
        /// A format 3 header that starts a new message adds it again, as ffmpeg and nginx-rtmp do.
        var timestampField: UInt32 = 0
        var messageLength: Int = 0
        var type = RTMPMessageType(rawValue: 0)
        var messageStreamID: UInt32 = 0
        /// Whether the last format 0, 1 or 2 header carried an extended timestamp, so format 3 chunks do too.
        var extendedTimestamp = false
        /// The payload of the message in flight, nil between messages.
        var partial: ByteBuffer? = nil

        /// The message whose header this is, with its payload.
        func message(chunkStreamID: UInt32, payload: ByteBuffer) -> RTMPMessage {
            RTMPMessage(
                chunkStreamID: chunkStreamID,
                timestamp: self.timestamp,
                type: self.type,
                messageStreamID: self.messageStreamID,
                payload: payload
            )
        }
    }

    public let limits: RTMPChunkLimits
    /// The peer's current chunk size: 128 until it sends Set Chunk Size.
    public private(set) var chunkSize: Int = 128
    private var streams: [UInt32: ChunkStream] = [:]
    private var bufferedBytes = 0
    /// The chunk whose payload is still arriving: its chunk stream and the bytes of it still to come. Chunks are
    /// not interleaved below the chunk level, so the next bytes of the input belong to it.
    private var current: (chunkStreamID: UInt32, remaining: Int)?

    /// Whether a message that arrives whole in one chunk gets a payload of its own (a copy) instead of a slice of
    /// the input. For measuring what slices cost in memory against what copies cost in time.
    public let copiesSingleChunkPayloads: Bool

    public init(limits: RTMPChunkLimits = .default, copiesSingleChunkPayloads: Bool = false) {
        self.limits = limits
        self.copiesSingleChunkPayloads = copiesSingleChunkPayloads
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> RTMPMessage? {
        // One call decodes until a message completes or the input runs out. A chunk header is only consumed when it
        // is complete, so a short read leaves a partial header in the buffer; payload bytes are taken as they come.
        while true {
            if self.current != nil {
                guard buffer.readableBytes > 0 else {
                    return nil
                }
                if let message = try self.continueChunk(buffer: &buffer) {
                    return message
                }
                continue
            }
            let start = buffer.readerIndex
            guard let message = try self.decodeChunk(buffer: &buffer) else {
                if buffer.readerIndex == start {
                    return nil
                }
                continue
            }
            return message
        }
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RTMPMessage? {
        try self.decode(buffer: &buffer)
    }

    /// Decodes one chunk's header and takes what the input has of its payload. Returns the message if that completed
    /// one; leaves the buffer untouched if the header is not all there yet.
    private mutating func decodeChunk(buffer: inout ByteBuffer) throws -> RTMPMessage? {
        let start = buffer.readerIndex
        guard let (format, chunkStreamID) = Self.readBasicHeader(&buffer) else {
            return nil
        }
        var stream: ChunkStream
        if let existing = self.streams[chunkStreamID] {
            stream = existing
        } else {
            // Only a full header can open a chunk stream. Format 1 is accepted too: some encoders (librtmp) open
            // a chunk stream with it on message stream 0.
            guard format <= 1 else {
                throw RTMPError.malformedChunk(
                    "chunk stream \(chunkStreamID) starts with a format \(format) header, which needs a previous one"
                )
            }
            guard self.streams.count < self.limits.maxChunkStreams else {
                throw RTMPError.limitExceeded(
                    "maxChunkStreams",
                    value: self.streams.count + 1,
                    maximum: self.limits.maxChunkStreams
                )
            }
            stream = ChunkStream()
        }

        let startsMessage = stream.partial == nil
        if format < 3 && !startsMessage {
            throw RTMPError.malformedChunk(
                "chunk stream \(chunkStreamID) sent a new format \(format) header before finishing its message"
            )
        }

        // Message header, section 5.3.1.2.
        var timestampField: UInt32 = 0
        var hasExtendedTimestamp = stream.extendedTimestamp
        switch format {
        case 0:
            guard let header = buffer.readMultipleIntegers(as: (UInt16, UInt8, UInt16, UInt8, UInt8, UInt32).self)
            else {
                buffer.moveReaderIndex(to: start)
                return nil
            }
            timestampField = UInt32(header.0) << 8 | UInt32(header.1)
            stream.messageLength = Int(header.2) << 8 | Int(header.3)
            stream.type = RTMPMessageType(rawValue: header.4)
            // The message stream id is the one little-endian field of RTMP.
            stream.messageStreamID = header.5.byteSwapped
        case 1:
            guard let header = buffer.readMultipleIntegers(as: (UInt16, UInt8, UInt16, UInt8, UInt8).self) else {
                buffer.moveReaderIndex(to: start)
                return nil
            }
            timestampField = UInt32(header.0) << 8 | UInt32(header.1)
            stream.messageLength = Int(header.2) << 8 | Int(header.3)
            stream.type = RTMPMessageType(rawValue: header.4)
        case 2:
            guard let header = buffer.readMultipleIntegers(as: (UInt16, UInt8).self) else {
                buffer.moveReaderIndex(to: start)
                return nil
            }
            timestampField = UInt32(header.0) << 8 | UInt32(header.1)
        default:
            break
        }
        if format < 3 {
            hasExtendedTimestamp = timestampField == 0xFF_FFFF
        }

        // Extended timestamp, section 5.3.1.3. A format 3 chunk repeats it when the header it continues had one.
        // Some encoders leave it out of format 3 continuations; when the four bytes there are not the value we
        // expect, they are payload, as SRS and librtmp also decide.
        if hasExtendedTimestamp {
            guard let extended = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else {
                buffer.moveReaderIndex(to: start)
                return nil
            }
            if format < 3 || startsMessage {
                timestampField = extended
                buffer.moveReaderIndex(forwardBy: 4)
            } else if extended == stream.timestampField {
                buffer.moveReaderIndex(forwardBy: 4)
            }
        }

        if startsMessage {
            guard stream.messageLength <= self.limits.maxMessageLength else {
                throw RTMPError.limitExceeded(
                    "maxMessageLength",
                    value: stream.messageLength,
                    maximum: self.limits.maxMessageLength
                )
            }
        }

        // Payload of this chunk: up to the chunk size, up to the end of the message.
        let received = stream.partial?.readableBytes ?? 0
        let chunkLength = min(self.chunkSize, stream.messageLength - received)

        // The header is complete: commit its state.
        if startsMessage {
            switch format {
            case 0:
                stream.timestamp = timestampField
                stream.timestampField = timestampField
            case 1, 2:
                stream.timestamp &+= timestampField
                stream.timestampField = timestampField
            default:
                stream.timestamp &+= stream.timestampField
            }
            if format < 3 {
                stream.extendedTimestamp = hasExtendedTimestamp
            }
        }

        if startsMessage && chunkLength == stream.messageLength && buffer.readableBytes >= chunkLength {
            // The whole message is in this chunk and in the input: its payload is a slice of the input, no copy.
            // The slice keeps the read buffer alive while the message is held, so whoever holds messages for long
            // (a relay's GOP cache, the queue of a target that fell behind) copies them out (`compacted()`).
            var payload = buffer.readSlice(length: chunkLength)!
            if self.copiesSingleChunkPayloads {
                payload = ByteBufferAllocator().buffer(buffer: payload)
            }
            self.streams[chunkStreamID] = stream
            return try self.completed(stream.message(chunkStreamID: chunkStreamID, payload: payload))
        }
        // Taken out of the stream and put back into the dictionary, which then holds the only reference to it, so
        // that writing the payload never copies it.
        var partial = stream.partial.take()
        if partial == nil {
            guard self.bufferedBytes + stream.messageLength <= self.limits.maxBufferedBytes else {
                throw RTMPError.limitExceeded(
                    "maxBufferedBytes",
                    value: self.bufferedBytes + stream.messageLength,
                    maximum: self.limits.maxBufferedBytes
                )
            }
            partial = ByteBufferAllocator().buffer(capacity: stream.messageLength)
            self.bufferedBytes += stream.messageLength
        }
        self.streams[chunkStreamID] = stream
        self.streams[chunkStreamID]!.partial = partial.take()
        self.current = (chunkStreamID, chunkLength)
        return try self.continueChunk(buffer: &buffer)
    }

    /// Takes what the input has of the current chunk's payload. Returns the message if that completed one.
    private mutating func continueChunk(buffer: inout ByteBuffer) throws -> RTMPMessage? {
        guard let (chunkStreamID, remaining) = self.current else {
            return nil
        }
        let length = min(remaining, buffer.readableBytes)
        var chunk = buffer.readSlice(length: length)!
        // Written in place: the partial payload stays uniquely referenced and is never copied.
        self.streams[chunkStreamID]!.partial!.writeBuffer(&chunk)
        if length < remaining {
            self.current = (chunkStreamID, remaining - length)
            return nil
        }
        self.current = nil
        let stream = self.streams[chunkStreamID]!
        guard let payload = stream.partial, payload.readableBytes == stream.messageLength else {
            return nil
        }
        self.streams[chunkStreamID]!.partial = nil
        self.bufferedBytes -= stream.messageLength
        return try self.completed(stream.message(chunkStreamID: chunkStreamID, payload: payload))
    }

    /// A message is complete: protocol control that changes the framing of what follows applies now.
    private mutating func completed(_ message: RTMPMessage) throws -> RTMPMessage {
        if message.type.isProtocolControl {
            try self.applyProtocolControl(message)
        }
        return message
    }

    /// Reads the basic header (section 5.3.1.1): the format and a chunk stream id of one, two or three bytes.
    private static func readBasicHeader(_ buffer: inout ByteBuffer) -> (format: UInt8, chunkStreamID: UInt32)? {
        let start = buffer.readerIndex
        guard let first = buffer.readInteger(as: UInt8.self) else {
            return nil
        }
        let format = first >> 6
        switch first & 0x3F {
        case 0:
            guard let second = buffer.readInteger(as: UInt8.self) else {
                buffer.moveReaderIndex(to: start)
                return nil
            }
            return (format, 64 + UInt32(second))
        case 1:
            guard let (second, third) = buffer.readMultipleIntegers(as: (UInt8, UInt8).self) else {
                buffer.moveReaderIndex(to: start)
                return nil
            }
            return (format, 64 + UInt32(second) + UInt32(third) * 256)
        case let id:
            return (format, UInt32(id))
        }
    }

    private mutating func applyProtocolControl(_ message: RTMPMessage) throws {
        switch message.type {
        case .setChunkSize:
            guard let raw = message.payload.getInteger(at: message.payload.readerIndex, as: UInt32.self) else {
                throw RTMPError.malformedMessage("Set Chunk Size has \(message.payload.readableBytes) bytes, not 4")
            }
            // Section 5.4.1: the top bit must be zero; the size is at least 1.
            let size = Int(raw & 0x7FFF_FFFF)
            guard size >= 1 else {
                throw RTMPError.malformedMessage("Set Chunk Size of 0")
            }
            guard size <= self.limits.maxChunkSize else {
                throw RTMPError.limitExceeded("maxChunkSize", value: size, maximum: self.limits.maxChunkSize)
            }
            self.chunkSize = size
        case .abort:
            guard let id = message.payload.getInteger(at: message.payload.readerIndex, as: UInt32.self) else {
                throw RTMPError.malformedMessage("Abort has \(message.payload.readableBytes) bytes, not 4")
            }
            if var stream = self.streams[id], stream.partial != nil {
                self.bufferedBytes -= stream.messageLength
                stream.partial = nil
                self.streams[id] = stream
            }
        default:
            break
        }
    }
}
