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

/// Splits RTMP messages into chunks (RTMP 1.0 specification, section 5.3).
///
/// The encoder remembers the last header it wrote on each chunk stream and picks the smallest header format that
/// describes the next message exactly: format 0 for a new chunk stream, another message stream or a timestamp that
/// goes backwards; format 1 when the length or type changed; format 2 when only the timestamp delta changed;
/// format 3 when the delta is the one the reader will add anyway. A format 3 header that starts a message adds the
/// previous header's timestamp field, as ffmpeg and nginx-rtmp read it.
///
/// Our own Set Chunk Size changes the outgoing chunk size only after that message has been encoded, so the peer
/// reads the Set Chunk Size itself at the old size.
///
/// It is a value with a `mutating` ``encode(data:out:)`` rather than a NIO `MessageToByteEncoder`, whose `encode`
/// cannot change state: the previous headers are the state. ``RTMPConnectionHandler`` drives it.
public struct RTMPChunkEncoder: Sendable {
    private struct ChunkStream: Sendable {
        var timestamp: UInt32
        var timestampField: UInt32
        var messageLength: Int
        var type: RTMPMessageType
        var messageStreamID: UInt32
    }

    /// The chunk size we write with: 128 until we send Set Chunk Size.
    public private(set) var chunkSize: Int = 128
    private var streams: [UInt32: ChunkStream] = [:]

    public init() {}

    public mutating func encode(data message: RTMPMessage, out: inout ByteBuffer) throws {
        let length = try Self.checkedLength(of: message)
        let (format, timestampField) = self.header(for: message, length: length)
        self.commit(message, length: length, timestampField: timestampField)
        let extended = timestampField >= 0xFF_FFFF
        let chunks = max(1, (length + self.chunkSize - 1) / self.chunkSize)
        out.reserveCapacity(minimumWritableBytes: length + 18 + (chunks - 1) * 8)
        Self.writeHeader(format: format, timestampField: timestampField, of: message, length: length, into: &out)

        var payload = message.payload
        var first = true
        while first || payload.readableBytes > 0 {
            if !first {
                // Continuation chunks are format 3 and repeat the extended timestamp (section 5.3.1.3).
                Self.writeBasicHeader(format: 3, chunkStreamID: message.chunkStreamID, into: &out)
                if extended {
                    out.writeInteger(timestampField)
                }
            }
            first = false
            var chunk = payload.readSlice(length: min(self.chunkSize, payload.readableBytes))!
            out.writeBuffer(&chunk)
        }
        self.applyOwnSetChunkSize(message)
    }

    /// Encodes `message` as ``encode(data:out:)`` does, but writes only its first chunk header into `out`, when
    /// `chunked` (the message's payload already cut into chunks) can follow that header as it is: the caller then
    /// writes `chunked.bytes` next. That holds when `chunked` was cut at this encoder's chunk size, on the message's
    /// chunk stream, and the message needs no extended timestamp here (its continuation chunks would repeat it).
    /// Otherwise returns `false` having written and changed nothing, and the caller encodes the message in full.
    ///
    /// This is how one message goes to many connections with one chunking: only the first header, which carries
    /// each connection's timestamp and compression state, is per connection.
    public mutating func encodeHeader(
        of message: RTMPMessage,
        chunked: RTMPChunkedPayload,
        out: inout ByteBuffer
    ) throws -> Bool {
        let length = try Self.checkedLength(of: message)
        guard chunked.chunkSize == self.chunkSize, chunked.chunkStreamID == message.chunkStreamID,
            chunked.payloadLength == length, message.type != .setChunkSize
        else {
            return false
        }
        let (format, timestampField) = self.header(for: message, length: length)
        guard timestampField < 0xFF_FFFF || length <= self.chunkSize else {
            return false
        }
        self.commit(message, length: length, timestampField: timestampField)
        Self.writeHeader(format: format, timestampField: timestampField, of: message, length: length, into: &out)
        return true
    }

    private static func checkedLength(of message: RTMPMessage) throws -> Int {
        let length = message.payload.readableBytes
        guard length <= 0xFF_FFFF else {
            throw RTMPError.limitExceeded("messageLength", value: length, maximum: 0xFF_FFFF)
        }
        precondition(
            (2...65599).contains(message.chunkStreamID),
            "chunk stream id \(message.chunkStreamID) is outside 2...65599"
        )
        return length
    }

    /// The smallest header format that describes `message` exactly, and its timestamp field (absolute for format 0,
    /// the delta otherwise).
    private func header(for message: RTMPMessage, length: Int) -> (format: UInt8, timestampField: UInt32) {
        if let previous = self.streams[message.chunkStreamID],
            previous.messageStreamID == message.messageStreamID,
            message.timestamp >= previous.timestamp
        {
            let delta = message.timestamp - previous.timestamp
            if previous.messageLength != length || previous.type != message.type {
                return (1, delta)
            } else if delta != previous.timestampField {
                return (2, delta)
            } else {
                return (3, delta)
            }
        }
        return (0, message.timestamp)
    }

    private mutating func commit(_ message: RTMPMessage, length: Int, timestampField: UInt32) {
        self.streams[message.chunkStreamID] = ChunkStream(
            timestamp: message.timestamp,
            timestampField: timestampField,
            messageLength: length,
            type: message.type,
            messageStreamID: message.messageStreamID
        )
    }

    /// The first chunk's header: basic header, message header of `format`, extended timestamp if needed.
    private static func writeHeader(
        format: UInt8,
        timestampField: UInt32,
        of message: RTMPMessage,
        length: Int,
        into out: inout ByteBuffer
    ) {
        let extended = timestampField >= 0xFF_FFFF
        let headerField = extended ? 0xFF_FFFF : timestampField
        Self.writeBasicHeader(format: format, chunkStreamID: message.chunkStreamID, into: &out)
        switch format {
        case 0:
            out.writeMultipleIntegers(
                UInt16(truncatingIfNeeded: headerField >> 8),
                UInt8(truncatingIfNeeded: headerField),
                UInt16(truncatingIfNeeded: length >> 8),
                UInt8(truncatingIfNeeded: length),
                message.type.rawValue,
                message.messageStreamID.byteSwapped
            )
        case 1:
            out.writeMultipleIntegers(
                UInt16(truncatingIfNeeded: headerField >> 8),
                UInt8(truncatingIfNeeded: headerField),
                UInt16(truncatingIfNeeded: length >> 8),
                UInt8(truncatingIfNeeded: length),
                message.type.rawValue
            )
        case 2:
            out.writeMultipleIntegers(
                UInt16(truncatingIfNeeded: headerField >> 8),
                UInt8(truncatingIfNeeded: headerField)
            )
        default:
            break
        }
        if extended {
            out.writeInteger(timestampField)
        }
    }

    /// Our own Set Chunk Size changes the outgoing chunk size once it is encoded.
    private mutating func applyOwnSetChunkSize(_ message: RTMPMessage) {
        if message.type == .setChunkSize,
            let size = message.payload.getInteger(at: message.payload.readerIndex, as: UInt32.self)
        {
            self.chunkSize = Int(size & 0x7FFF_FFFF)
        }
    }

    /// Writes the basic header (section 5.3.1.1) with the shortest chunk stream id form.
    static func writeBasicHeader(format: UInt8, chunkStreamID: UInt32, into out: inout ByteBuffer) {
        let flag = format << 6
        switch chunkStreamID {
        case 2...63:
            out.writeInteger(flag | UInt8(chunkStreamID))
        case 64...319:
            out.writeMultipleIntegers(flag, UInt8(chunkStreamID - 64))
        default:
            let id = chunkStreamID - 64
            out.writeMultipleIntegers(flag | 1, UInt8(truncatingIfNeeded: id), UInt8(truncatingIfNeeded: id >> 8))
        }
    }
}

/// A message's payload cut into chunks once (RTMP 1.0 specification, section 5.3): the bytes that follow the first
/// chunk's header, with a format 3 basic header before each further chunk. They are the same on every connection
/// that writes the message with the same chunk size on the same chunk stream, as long as it needs no extended
/// timestamp, so a relay cuts each message once and sends the result to every target (see
/// ``RTMPChunkEncoder/encodeHeader(of:chunked:out:)``).
///
/// A payload that fits in one chunk is used as it is, without a copy.
public struct RTMPChunkedPayload: Hashable, Sendable {
    public let chunkSize: Int
    public let chunkStreamID: UInt32
    /// The payload's length (without the continuation headers).
    public let payloadLength: Int
    /// The payload with the continuation chunks' basic headers between its chunks.
    public let bytes: ByteBuffer

    public init(
        payload: ByteBuffer,
        chunkStreamID: UInt32,
        chunkSize: Int,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) {
        precondition(chunkSize >= 1 && (2...65599).contains(chunkStreamID))
        self.chunkSize = chunkSize
        self.chunkStreamID = chunkStreamID
        self.payloadLength = payload.readableBytes
        guard payload.readableBytes > chunkSize else {
            self.bytes = payload
            return
        }
        let continuations = (payload.readableBytes - 1) / chunkSize
        let headerLength = chunkStreamID < 64 ? 1 : (chunkStreamID < 320 ? 2 : 3)
        var bytes = allocator.buffer(capacity: payload.readableBytes + continuations * headerLength)
        var rest = payload
        var first = rest.readSlice(length: chunkSize)!
        bytes.writeBuffer(&first)
        while rest.readableBytes > 0 {
            RTMPChunkEncoder.writeBasicHeader(format: 3, chunkStreamID: chunkStreamID, into: &bytes)
            var chunk = rest.readSlice(length: min(chunkSize, rest.readableBytes))!
            bytes.writeBuffer(&chunk)
        }
        self.bytes = bytes
    }
}
