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

import Foundation
import NIOCore
import RTMP

/// What a message of the input is, for the measurement.
enum MediaKind: Sendable {
    case metadata
    /// AVC or AAC decoder configuration: servers re-send these to each player, so their arrival says nothing.
    case header
    case keyframe
    case videoFrame
    case audioFrame
}

/// One FLV tag as the RTMP message a publisher sends.
struct InputMessage: Sendable {
    /// Milliseconds from the first tag of the file.
    var offset: UInt32
    var type: RTMPMessageType
    var kind: MediaKind
    var payload: ByteBuffer
}

/// The input file as messages, and which of them can be recognised again at a player.
///
/// Servers rebase timestamps (nginx-rtmp and liverelay both start each outgoing stream at 0), so a message is
/// recognised by its type, its length and a hash of its payload. A signature that occurs twice in the input (AAC
/// frames of a pure tone repeat) is not measured.
struct InputStream: Sendable {
    var messages: [InputMessage]
    /// Signature to index in ``messages``, for unique audio and video frames only.
    var index: [Signature: Int]
    /// Index of the first keyframe that is not a decoder configuration record.
    var firstKeyframe: Int?

    /// Reads an FLV file (FLV specification 10.1, annex E): a 9-byte header, then tags each followed by its 4-byte
    /// previous-tag size. Audio (8), video (9) and script data (18) tags become messages; `onMetaData` is sent the
    /// way a publisher sends it, as `@setDataFrame`. Only tags of the first `seconds` are kept.
    init(flvFile path: String, seconds: Double) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BenchError("cannot read \(path)")
        }
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        buffer.writeBytes(data)
        guard buffer.readString(length: 3) == "FLV", let _ = buffer.readInteger(as: UInt8.self),
            let _ = buffer.readInteger(as: UInt8.self), let headerSize = buffer.readInteger(as: UInt32.self),
            headerSize >= 9
        else {
            throw BenchError("\(path) is not an FLV file")
        }
        buffer.moveReaderIndex(forwardBy: Int(headerSize) - 9 + 4)
        let limit = UInt32(seconds * 1000)
        var messages: [InputMessage] = []
        var first: UInt32?
        while let tagType = buffer.readInteger(as: UInt8.self), let length = buffer.readUInt24(),
            let timestampLow = buffer.readUInt24(), let timestampExtended = buffer.readInteger(as: UInt8.self),
            buffer.readUInt24() != nil,  // stream id, always 0
            let payload = buffer.readSlice(length: length), buffer.readInteger(as: UInt32.self) != nil
        {
            let timestamp = UInt32(timestampExtended) << 24 | UInt32(timestampLow)
            guard !payload.readableBytesView.isEmpty else { continue }
            let start = first ?? timestamp
            first = start
            // Tags may be a few milliseconds out of order between audio and video; never go below the start.
            let offset = timestamp > start ? timestamp - start : 0
            guard offset < limit else { break }
            switch tagType {
            case 8:
                let format = payload.getInteger(at: payload.readerIndex, as: UInt8.self) ?? 0
                let packetType = payload.getInteger(at: payload.readerIndex + 1, as: UInt8.self) ?? 1
                let kind: MediaKind = format >> 4 == 10 && packetType == 0 ? .header : .audioFrame
                messages.append(.init(offset: offset, type: .audio, kind: kind, payload: payload))
            case 9:
                let flags = payload.getInteger(at: payload.readerIndex, as: UInt8.self) ?? 0
                let packetType = payload.getInteger(at: payload.readerIndex + 1, as: UInt8.self) ?? 1
                let kind: MediaKind = packetType == 0 ? .header : (flags >> 4 == 1 ? .keyframe : .videoFrame)
                messages.append(.init(offset: offset, type: .video, kind: kind, payload: payload))
            case 18:
                let data = try RTMPDataMessage(payload: payload)
                guard let metadata = data.metadata else { continue }
                messages.append(
                    .init(
                        offset: offset,
                        type: .dataAMF0,
                        kind: .metadata,
                        payload: RTMPDataMessage.setDataFrame(metadata: metadata).payload
                    )
                )
            default:
                continue
            }
        }
        var counts: [Signature: Int] = [:]
        for message in messages where message.kind.isMeasured {
            counts[Signature(type: message.type, payload: message.payload), default: 0] += 1
        }
        var index: [Signature: Int] = [:]
        for (position, message) in messages.enumerated() where message.kind.isMeasured {
            let signature = Signature(type: message.type, payload: message.payload)
            if counts[signature] == 1 {
                index[signature] = position
            }
        }
        self.messages = messages
        self.index = index
        self.firstKeyframe = messages.firstIndex { $0.kind == .keyframe }
    }
}

extension MediaKind {
    var isMeasured: Bool {
        switch self {
        case .keyframe, .videoFrame, .audioFrame: true
        case .metadata, .header: false
        }
    }
}

/// Type, length and a hash of the first and last 512 bytes of a payload. `Hasher` is seeded per process, which is
/// enough: publishers and players of one run share the process.
struct Signature: Hashable, Sendable {
    var type: UInt8
    var length: Int
    var hash: Int

    init(type: RTMPMessageType, payload: ByteBuffer) {
        self.type = type.rawValue
        self.length = payload.readableBytes
        var hasher = Hasher()
        payload.withUnsafeReadableBytes { bytes in
            let head = UnsafeRawBufferPointer(rebasing: bytes.prefix(512))
            hasher.combine(bytes: head)
            if bytes.count > 512 {
                hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: bytes.suffix(512)))
            }
        }
        self.hash = hasher.finalize()
    }
}

extension ByteBuffer {
    fileprivate mutating func readUInt24() -> Int? {
        guard let (high, low) = self.readMultipleIntegers(as: (UInt8, UInt16).self) else { return nil }
        return Int(high) << 16 | Int(low)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
