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
        let length = message.payload.readableBytes
        guard length <= 0xFF_FFFF else {
            throw RTMPError.limitExceeded("messageLength", value: length, maximum: 0xFF_FFFF)
        }
        precondition(
            (2...65599).contains(message.chunkStreamID),
            "chunk stream id \(message.chunkStreamID) is outside 2...65599"
        )

        let format: UInt8
        let timestampField: UInt32
        if let previous = self.streams[message.chunkStreamID],
            previous.messageStreamID == message.messageStreamID,
            message.timestamp >= previous.timestamp
        {
            let delta = message.timestamp - previous.timestamp
            if previous.messageLength != length || previous.type != message.type {
                format = 1
            } else if delta != previous.timestampField {
                format = 2
            } else {
                format = 3
            }
            timestampField = delta
        } else {
            format = 0
            timestampField = message.timestamp
        }
        self.streams[message.chunkStreamID] = ChunkStream(
            timestamp: message.timestamp,
            timestampField: timestampField,
            messageLength: length,
            type: message.type,
            messageStreamID: message.messageStreamID
        )

        let extended = timestampField >= 0xFF_FFFF
        let headerField = extended ? 0xFF_FFFF : timestampField
        let chunks = max(1, (length + self.chunkSize - 1) / self.chunkSize)
        out.reserveCapacity(minimumWritableBytes: length + 18 + (chunks - 1) * 8)

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

        if message.type == .setChunkSize,
            let size = message.payload.getInteger(at: message.payload.readerIndex, as: UInt32.self)
        {
            self.chunkSize = Int(size & 0x7FFF_FFFF)
        }
    }

    /// Writes the basic header (section 5.3.1.1) with the shortest chunk stream id form.
    private static func writeBasicHeader(format: UInt8, chunkStreamID: UInt32, into out: inout ByteBuffer) {
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
