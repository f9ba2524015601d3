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

import Media
import NIOCore
public import RTMP

/// A message of the live stream with what the relay needs to know about it, decided once at ingest and shared by
/// every target.
public struct RelayMessage: Sendable {
    public enum Kind: Hashable, Sendable {
        /// `@setDataFrame`/`onMetaData`: replayed to a target that (re)starts.
        case metadata
        /// Another data message (cue points, captions): passed on in order.
        case data
        /// A video decoder configuration (AVC/HEVC/AV1 sequence start): replayed to a target that (re)starts.
        case videoHeader
        /// An audio decoder configuration (AAC AudioSpecificConfig): replayed to a target that (re)starts.
        case audioHeader
        /// A video keyframe: where a target can start.
        case keyframe
        case videoFrame
        case audioFrame
    }

    public var message: RTMPMessage
    public var kind: Kind
    /// The message's place in its publish, from 1 (0: not from a publish): lets a target that restarts from the
    /// GOP cache tell the messages its seed covers from those that came after it.
    public var sequence: UInt64 = 0
    /// The payload cut into chunks once for every target (see ``RTMPChunkedPayload``), when the fan-out did; a
    /// target whose connection cannot use it encodes the payload itself.
    public var chunked: RTMPChunkedPayload?

    public init(message: RTMPMessage, kind: Kind) {
        self.message = message
        self.kind = kind
    }

    /// Classifies a message the publisher sent. Anything the classifier does not understand passes as a frame.
    public init(classifying message: RTMPMessage) {
        self.message = message
        switch message.type {
        case .video:
            switch MediaFrameKind.classify(video: message.payload) {
            case .videoSequenceHeader: self.kind = .videoHeader
            case .videoKeyframe: self.kind = .keyframe
            default: self.kind = .videoFrame
            }
        case .audio:
            switch MediaFrameKind.classify(audio: message.payload) {
            case .audioSequenceHeader: self.kind = .audioHeader
            default: self.kind = .audioFrame
            }
        default:
            self.kind = Self.isMetadata(message) ? .metadata : .data
        }
    }

    /// Makes the message fit to be held for long (the GOP cache, a target that fell behind): a payload of its own
    /// rather than a slice of a read buffer, and no chunked copy of it.
    public mutating func compact() {
        self.message = self.message.compacted()
        self.chunked = nil
    }

    /// The chunk stream a target sends a message of `type` on: those ffmpeg, OBS and nginx-rtmp use.
    public static func chunkStreamID(for type: RTMPMessageType) -> UInt32 {
        switch type {
        case .audio: RTMPChunkStreamID.audio
        case .video: RTMPChunkStreamID.video
        default: RTMPChunkStreamID.data
        }
    }

    /// Whether a data message is `@setDataFrame onMetaData ...` or `onMetaData ...`, from its first AMF0 string.
    static func isMetadata(_ message: RTMPMessage) -> Bool {
        let first = message.leadingAMF0String
        return first == "@setDataFrame" || first == "onMetaData"
    }
}
