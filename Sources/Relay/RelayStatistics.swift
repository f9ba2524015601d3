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

public import Preview

/// The JSON the relay serves at `/api/v1/streams`: what each stream is doing, its ingest as measured, and each
/// target's state. No keys, no URLs with stream names.
public struct StreamStatus: Codable, Hashable, Sendable {
    public struct Publisher: Codable, Hashable, Sendable {
        public var remoteAddress: String
        public var liveSeconds: Double
    }

    public struct Ingest: Codable, Hashable, Sendable {
        public var bytes: UInt64
        public var videoFrames: UInt64
        public var audioFrames: UInt64
        public var keyframes: UInt64
        public var videoCodec: String?
        public var width: Int?
        public var height: Int?
        public var frameRate: Double
        public var declaredFrameRate: Double?
        public var bitrate: Double
        public var keyframeIntervalSeconds: Double?
        public var audioCodec: String?
        public var audioSampleRate: Int?
        public var audioChannels: Int?
    }

    public struct Warning: Codable, Hashable, Sendable {
        public var rule: String
        public var message: String
    }

    public struct Target: Codable, Hashable, Sendable {
        public var name: String
        /// The URL without its stream name.
        public var url: String
        /// `connecting`, `pushing`, `backingOff`, `disabled`, `idle` (no publisher) or `stopped`.
        public var state: String
        public var enabled: Bool
        public var attempt: Int?
        public var nextRetrySeconds: Double?
        public var lastError: String?
        public var connections: Int
        public var bytesSent: UInt64
        public var queuedBytes: Int
        public var droppedMessages: Int
        public var behind: Bool
    }

    public var name: String
    public var app: String
    /// `idle` (no publisher) or `live`.
    public var state: String
    public var publisher: Publisher?
    public var ingest: Ingest?
    public var warnings: [Warning]
    /// The live preview (HLS and fragmented MP4), `nil` when `preview.enabled` is false: its state, codecs, and
    /// why it does not play (a codec browsers cannot play, a libavformat failure).
    public var preview: PreviewStatus?
    /// Bytes of media the GOP cache holds for joining targets, while live (see ``GOPCachePolicy``).
    public var gopCacheBytes: Int?
    public var targets: [Target]
}

extension PushTargetState {
    var name: String {
        switch self {
        case .connecting: "connecting"
        case .pushing: "pushing"
        case .backingOff: "backingOff"
        case .stopped: "stopped"
        case .disabled: "disabled"
        }
    }

    static let allNames = ["connecting", "pushing", "backingOff", "stopped", "disabled", "idle"]
}
