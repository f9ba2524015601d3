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

/// What the preview of a stream is doing, as `/api/v1/streams` and the preview page report it.
public struct PreviewStatus: Codable, Hashable, Sendable {
    /// `waiting` (no publisher, or no keyframe yet), `live`, `ended`, `unsupported` (a codec the preview cannot
    /// package or browsers cannot play: see ``error``) or `failed` (libavformat failed: see ``error``).
    public var state: String
    /// Counts the outputs started: a browser starts over (new init segment) when it changes.
    public var generation: Int
    /// The MIME type with RFC 6381 codecs for `MediaSource.isTypeSupported`, once live.
    public var mimeType: String?
    public var videoCodec: String?
    public var audioCodec: String?
    public var width: Int?
    public var height: Int?
    /// Why the preview does not play, or what a browser may not be able to play.
    public var error: String?
    public var fragments: UInt64
    public var hlsSegments: UInt64
    /// Media messages the preview dropped because it fell behind.
    public var droppedMessages: UInt64
    public var bufferedBytes: Int

    /// Before anything was packaged: no publisher yet, or none now (`error` says why, if there is more to say).
    public static func waiting(_ error: String? = nil) -> PreviewStatus {
        PreviewStatus(
            state: "waiting",
            generation: 0,
            error: error,
            fragments: 0,
            hlsSegments: 0,
            droppedMessages: 0,
            bufferedBytes: 0
        )
    }
}
