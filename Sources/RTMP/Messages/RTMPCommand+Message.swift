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

extension RTMPCommand {
    /// The AMF0 command message (type 20) carrying this command on a message stream: 0 for the connection's
    /// commands (`connect`, `createStream`), the created stream for `publish`, `onStatus` and the like.
    public func message(streamID: UInt32, timestamp: UInt32 = 0) -> RTMPMessage {
        RTMPMessage(
            chunkStreamID: RTMPChunkStreamID.command,
            timestamp: timestamp,
            type: .commandAMF0,
            messageStreamID: streamID,
            payload: self.payload
        )
    }

    /// The longest command message accepted, in bytes. A command is a few hundred bytes; decoding a huge one would
    /// amplify it (a one-byte AMF0 null becomes a 24-byte value), so it is refused before decoding.
    public static let maxMessageLength = 64 << 10

    /// Decodes a command message (type 20, or 17 whose first byte selects the encoding and whose values are AMF0,
    /// RTMP 1.0 section 7.1.1). Throws ``RTMPError`` for an oversized or malformed command.
    public init(message: RTMPMessage) throws(RTMPError) {
        guard message.payload.readableBytes <= Self.maxMessageLength else {
            throw .limitExceeded(
                "maxCommandLength",
                value: message.payload.readableBytes,
                maximum: Self.maxMessageLength
            )
        }
        var payload = message.payload
        if message.type == .commandAMF3 {
            payload.moveReaderIndex(forwardBy: min(1, payload.readableBytes))
        }
        do {
            try self.init(payload: payload)
        } catch let error as RTMPError {
            throw error
        } catch {
            throw .malformedMessage("\(error)")
        }
    }
}
