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

/// What the relay needs to know about one audio or video message, and nothing more.
///
/// The relay keeps the latest sequence headers to replay to late joiners and starts a new subscriber's video at a
/// key frame. It must still forward everything, including what it does not understand, so classification never
/// throws: a payload whose header does not parse (empty, truncated, reserved values) is classified as the kind
/// that the relay treats most conservatively, ``videoInterframe`` or ``audioFrame``. Such a message is forwarded to
/// subscribers that are already in sync but is never cached as a configuration nor used as a starting point.
///
/// Classification reads the first bytes of the payload in place: no bytes are consumed, copied or allocated, even
/// when the header is invalid.
public enum MediaFrameKind: Hashable, Sendable {
    /// A video decoder configuration: legacy AVC sequence header, or enhanced `SequenceStart` or
    /// `MPEG2TSSequenceStart`, single or multitrack.
    case videoSequenceHeader
    /// Coded video that a decoder can start from: frame type key frame (1) or generated key frame (4).
    case videoKeyframe
    /// Any other coded video, and any video message whose header does not parse.
    case videoInterframe
    /// Legacy AVC end of sequence or enhanced `SequenceEnd`.
    case videoEndOfSequence
    /// A message that is not a picture: a command frame (frame type 5, client-side seeking) or enhanced
    /// `Metadata` (AMF `colorInfo` for HDR). Forward it; do not gate subscribers on it.
    case videoCommand
    /// An audio decoder configuration: AAC sequence header or enhanced `SequenceStart`.
    case audioSequenceHeader
    /// Any other audio message, including the empty "silence" message, enhanced `SequenceEnd` and
    /// `MultichannelConfig`, and any audio message whose header does not parse.
    case audioFrame

    /// Classifies the payload of an RTMP video message (type 9). Never throws; see ``MediaFrameKind``.
    public static func classify(video payload: ByteBuffer) -> Self {
        guard let header = try? VideoTagHeader.parse(payload) else { return .videoInterframe }
        return header.kind
    }

    /// Classifies the payload of an RTMP audio message (type 8). Never throws; see ``MediaFrameKind``.
    public static func classify(audio payload: ByteBuffer) -> Self {
        guard let header = try? AudioTagHeader.parse(payload) else { return .audioFrame }
        return header.kind
    }

    /// Whether this is ``videoSequenceHeader`` or ``audioSequenceHeader``.
    public var isSequenceHeader: Bool { self == .videoSequenceHeader || self == .audioSequenceHeader }

    /// Whether this is one of the video kinds.
    public var isVideo: Bool {
        switch self {
        case .videoSequenceHeader, .videoKeyframe, .videoInterframe, .videoEndOfSequence, .videoCommand: true
        case .audioSequenceHeader, .audioFrame: false
        }
    }
}
