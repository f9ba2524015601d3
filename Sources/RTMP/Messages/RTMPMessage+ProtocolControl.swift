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

/// Protocol control messages (RTMP 1.0 specification, section 5.4) and user control events (section 6.2, 7.1.7).
///
/// They travel on chunk stream 2 and message stream 0 with timestamp 0.
public enum RTMPControlMessage: Hashable, Sendable {
    /// 5.4.1: the largest chunk the sender will write from now on.
    case setChunkSize(UInt32)
    /// 5.4.2: drop the partial message of this chunk stream.
    case abort(chunkStreamID: UInt32)
    /// 5.4.3: the number of bytes received so far (wrapping at 2^32).
    case acknowledgement(sequenceNumber: UInt32)
    /// 5.4.4: send an Acknowledgement every this many bytes.
    case windowAcknowledgementSize(UInt32)
    /// 5.4.5: limit the peer's output bandwidth. The limit type is 0 hard, 1 soft, 2 dynamic.
    case setPeerBandwidth(size: UInt32, limitType: UInt8)
    /// 7.1.7: an event about a message stream or the connection.
    case userControl(RTMPUserControlEvent)

    /// Decodes a control message. Returns nil for message types that are not protocol control.
    public init?(_ message: RTMPMessage) throws {
        var payload = message.payload
        func read(_ name: String) throws -> UInt32 {
            guard let value = payload.readInteger(as: UInt32.self) else {
                throw RTMPError.malformedMessage("\(name) is \(message.payload.readableBytes) bytes long, too short")
            }
            return value
        }
        switch message.type {
        case .setChunkSize:
            self = .setChunkSize(try read("Set Chunk Size") & 0x7FFF_FFFF)
        case .abort:
            self = .abort(chunkStreamID: try read("Abort"))
        case .acknowledgement:
            self = .acknowledgement(sequenceNumber: try read("Acknowledgement"))
        case .windowAcknowledgementSize:
            self = .windowAcknowledgementSize(try read("Window Acknowledgement Size"))
        case .setPeerBandwidth:
            let size = try read("Set Peer Bandwidth")
            // Some servers omit the limit type; treat it as dynamic.
            self = .setPeerBandwidth(size: size, limitType: payload.readInteger(as: UInt8.self) ?? 2)
        case .userControl:
            self = .userControl(try RTMPUserControlEvent(payload: message.payload))
        default:
            return nil
        }
    }

    /// The message that carries this control message.
    public var message: RTMPMessage {
        var payload = ByteBufferAllocator().buffer(capacity: 10)
        let type: RTMPMessageType
        switch self {
        case .setChunkSize(let size):
            type = .setChunkSize
            payload.writeInteger(size & 0x7FFF_FFFF)
        case .abort(let id):
            type = .abort
            payload.writeInteger(id)
        case .acknowledgement(let sequenceNumber):
            type = .acknowledgement
            payload.writeInteger(sequenceNumber)
        case .windowAcknowledgementSize(let size):
            type = .windowAcknowledgementSize
            payload.writeInteger(size)
        case .setPeerBandwidth(let size, let limitType):
            type = .setPeerBandwidth
            payload.writeMultipleIntegers(size, limitType)
        case .userControl(let event):
            type = .userControl
            event.write(into: &payload)
        }
        return RTMPMessage(
            chunkStreamID: RTMPChunkStreamID.protocolControl,
            timestamp: 0,
            type: type,
            messageStreamID: 0,
            payload: payload
        )
    }
}

/// User control events (RTMP 1.0 specification, section 7.1.7).
public enum RTMPUserControlEvent: Hashable, Sendable {
    case streamBegin(streamID: UInt32)
    case streamEOF(streamID: UInt32)
    case streamDry(streamID: UInt32)
    case setBufferLength(streamID: UInt32, milliseconds: UInt32)
    case streamIsRecorded(streamID: UInt32)
    case pingRequest(timestamp: UInt32)
    case pingResponse(timestamp: UInt32)
    /// An event type this implementation does not interpret (for example Flash's SWF verification), kept whole.
    case other(type: UInt16, data: ByteBuffer)

    init(payload: ByteBuffer) throws {
        var payload = payload
        guard let type = payload.readInteger(as: UInt16.self) else {
            throw RTMPError.malformedMessage("User Control message without an event type")
        }
        func value() throws -> UInt32 {
            guard let value = payload.readInteger(as: UInt32.self) else {
                throw RTMPError.malformedMessage("User Control event \(type) is too short")
            }
            return value
        }
        switch type {
        case 0: self = .streamBegin(streamID: try value())
        case 1: self = .streamEOF(streamID: try value())
        case 2: self = .streamDry(streamID: try value())
        case 3: self = .setBufferLength(streamID: try value(), milliseconds: try value())
        case 4: self = .streamIsRecorded(streamID: try value())
        case 6: self = .pingRequest(timestamp: try value())
        case 7: self = .pingResponse(timestamp: try value())
        default: self = .other(type: type, data: payload)
        }
    }

    func write(into buffer: inout ByteBuffer) {
        switch self {
        case .streamBegin(let id): buffer.writeMultipleIntegers(UInt16(0), id)
        case .streamEOF(let id): buffer.writeMultipleIntegers(UInt16(1), id)
        case .streamDry(let id): buffer.writeMultipleIntegers(UInt16(2), id)
        case .setBufferLength(let id, let ms): buffer.writeMultipleIntegers(UInt16(3), id, ms)
        case .streamIsRecorded(let id): buffer.writeMultipleIntegers(UInt16(4), id)
        case .pingRequest(let timestamp): buffer.writeMultipleIntegers(UInt16(6), timestamp)
        case .pingResponse(let timestamp): buffer.writeMultipleIntegers(UInt16(7), timestamp)
        case .other(let type, var data):
            buffer.writeInteger(type)
            buffer.writeBuffer(&data)
        }
    }
}
