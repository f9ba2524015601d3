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
}
