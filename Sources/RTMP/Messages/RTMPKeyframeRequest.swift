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

/// A server's request for a keyframe, which RTMP lacks: liverelay's extension, between its gateway and its relay.
///
/// An RTMP encoder makes keyframes on its own schedule, so RTMP has no way to ask for one. A publisher that can make
/// one on demand (the gateway, for a WebRTC publisher it can send a PLI) says so in `connect`'s command object,
/// ``connectProperty`` set to `true`, as Enhanced RTMP's clients announce their capabilities there; a server that
/// does not know the property ignores it. The relay then sends ``commandName``, an AMF0 command with transaction 0
/// and a null command object on the publish's message stream, when a keyframe would help now: when a target starts
/// or restarts pushing. A publisher that did not opt in never receives it.
public enum RTMPKeyframeRequest {
    /// The property of `connect`'s command object by which a publisher opts in.
    public static let connectProperty = "keyframeRequests"
    /// The command's name.
    public static let commandName = "requestKeyframe"

    /// The request, on the publish's message stream.
    public static func message(streamID: UInt32) -> RTMPMessage {
        RTMPCommand(name: Self.commandName, transactionID: 0, commandObject: .null, arguments: [])
            .message(streamID: streamID)
    }
}
