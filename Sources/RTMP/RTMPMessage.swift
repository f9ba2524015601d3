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

/// The type of an RTMP message (RTMP 1.0 specification, section 5.4 and 7.1).
public struct RTMPMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let setChunkSize = Self(rawValue: 1)
    public static let abort = Self(rawValue: 2)
    public static let acknowledgement = Self(rawValue: 3)
    public static let userControl = Self(rawValue: 4)
    public static let windowAcknowledgementSize = Self(rawValue: 5)
    public static let setPeerBandwidth = Self(rawValue: 6)
    public static let audio = Self(rawValue: 8)
    public static let video = Self(rawValue: 9)
    public static let dataAMF3 = Self(rawValue: 15)
    public static let sharedObjectAMF3 = Self(rawValue: 16)
    public static let commandAMF3 = Self(rawValue: 17)
    public static let dataAMF0 = Self(rawValue: 18)
    public static let sharedObjectAMF0 = Self(rawValue: 19)
    public static let commandAMF0 = Self(rawValue: 20)
    public static let aggregate = Self(rawValue: 22)

    /// Protocol control messages (types 1 to 6) travel on chunk stream 2 and message stream 0.
    public var isProtocolControl: Bool { (1...6).contains(self.rawValue) }

    public var description: String {
        switch self {
        case .setChunkSize: "SetChunkSize"
        case .abort: "Abort"
        case .acknowledgement: "Acknowledgement"
        case .userControl: "UserControl"
        case .windowAcknowledgementSize: "WindowAcknowledgementSize"
        case .setPeerBandwidth: "SetPeerBandwidth"
        case .audio: "Audio"
        case .video: "Video"
        case .dataAMF0: "Data"
        case .dataAMF3: "DataAMF3"
        case .commandAMF0: "Command"
        case .commandAMF3: "CommandAMF3"
        case .aggregate: "Aggregate"
        default: "Type\(self.rawValue)"
        }
    }
}

/// One complete RTMP message, reassembled from its chunks.
///
/// The decoder slices a payload that arrived in one chunk out of the read buffer and copies one of several chunks
/// once into a buffer of its own (see ``RTMPChunkDecoder``). From then on the payload is shared, not copied: every
/// target that relays the message holds the same storage. Whoever keeps a message for long calls
/// ``compacted()``, so that a small payload does not keep a whole read buffer alive.
public struct RTMPMessage: Hashable, Sendable {
    /// The chunk stream the message travelled on (2 to 65599). Protocol control uses 2; the encoder keeps each
    /// chunk stream's previous header to compress the next one.
    public var chunkStreamID: UInt32
    /// Message timestamp in milliseconds. RTMP timestamps are 32 bits and wrap; see the specification, 5.3.1.3.
    public var timestamp: UInt32
    public var type: RTMPMessageType
    /// The message stream (0 for the connection's control stream, 1 and up for streams made by `createStream`).
    public var messageStreamID: UInt32
    public var payload: ByteBuffer

    public init(
        chunkStreamID: UInt32,
        timestamp: UInt32,
        type: RTMPMessageType,
        messageStreamID: UInt32,
        payload: ByteBuffer
    ) {
        self.chunkStreamID = chunkStreamID
        self.timestamp = timestamp
        self.type = type
        self.messageStreamID = messageStreamID
        self.payload = payload
    }
}

extension RTMPMessage {
    /// The message with a payload of its own when it is a slice of a much larger buffer (a read buffer), so that
    /// holding it does not hold that buffer; the message itself otherwise.
    public func compacted() -> RTMPMessage {
        let length = self.payload.readableBytes
        guard self.payload.storageCapacity > 2 * length + 1024 else {
            return self
        }
        var message = self
        message.payload = ByteBufferAllocator().buffer(buffer: self.payload)
        return message
    }
}

/// Well-known chunk stream ids. Any id from 3 up is legal for any message; these are the ones that ffmpeg,
/// OBS and nginx-rtmp use, which keeps captures comparable.
public enum RTMPChunkStreamID {
    public static let protocolControl: UInt32 = 2
    public static let command: UInt32 = 3
    public static let audio: UInt32 = 4
    public static let video: UInt32 = 6
    public static let data: UInt32 = 5
}

extension RTMPMessage {
    /// The first AMF0 value of a command or data message when it is a string (a command's name, `@setDataFrame`,
    /// `onMetaData`), read in place: nothing else is decoded. The AMF3 variants' leading format byte is skipped.
    public var leadingAMF0String: String? {
        var payload = self.payload
        if self.type == .commandAMF3 || self.type == .dataAMF3 {
            payload.moveReaderIndex(forwardBy: min(1, payload.readableBytes))
        }
        return payload.getLeadingAMF0String()
    }
}
