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

/// The JSON the relay serves at `/api/v1/streams`, `/api/v1/streams/{name}` and `/api/v1/stream`: what each stream is
/// doing, its ingest as measured, and each target's state. No keys, no URLs with stream names.
///
/// The one type for that JSON: the relay encodes it, and its readers (the operator, local mode, tests) decode it,
/// usually through ``RelayStreamReport``. An operator reads relays of the version before its own while they roll, so
/// a field added here must be optional.
public struct StreamStatus: Codable, Hashable, Sendable {
    public struct Publisher: Codable, Hashable, Sendable {
        /// The encoder's address (the one a trusted proxy's PROXY header names, behind the gateway).
        public var remoteAddress: String
        public var liveSeconds: Double

        public init(remoteAddress: String, liveSeconds: Double) {
            self.remoteAddress = remoteAddress
            self.liveSeconds = liveSeconds
        }
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

        public init(
            bytes: UInt64,
            videoFrames: UInt64,
            audioFrames: UInt64,
            keyframes: UInt64,
            videoCodec: String? = nil,
            width: Int? = nil,
            height: Int? = nil,
            frameRate: Double,
            declaredFrameRate: Double? = nil,
            bitrate: Double,
            keyframeIntervalSeconds: Double? = nil,
            audioCodec: String? = nil,
            audioSampleRate: Int? = nil,
            audioChannels: Int? = nil
        ) {
            self.bytes = bytes
            self.videoFrames = videoFrames
            self.audioFrames = audioFrames
            self.keyframes = keyframes
            self.videoCodec = videoCodec
            self.width = width
            self.height = height
            self.frameRate = frameRate
            self.declaredFrameRate = declaredFrameRate
            self.bitrate = bitrate
            self.keyframeIntervalSeconds = keyframeIntervalSeconds
            self.audioCodec = audioCodec
            self.audioSampleRate = audioSampleRate
            self.audioChannels = audioChannels
        }
    }

    public struct Warning: Codable, Hashable, Sendable {
        public var rule: String
        public var message: String

        public init(rule: String, message: String) {
            self.rule = rule
            self.message = message
        }
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

        public init(
            name: String,
            url: String,
            state: String,
            enabled: Bool,
            attempt: Int? = nil,
            nextRetrySeconds: Double? = nil,
            lastError: String? = nil,
            connections: Int,
            bytesSent: UInt64,
            queuedBytes: Int,
            droppedMessages: Int,
            behind: Bool
        ) {
            self.name = name
            self.url = url
            self.state = state
            self.enabled = enabled
            self.attempt = attempt
            self.nextRetrySeconds = nextRetrySeconds
            self.lastError = lastError
            self.connections = connections
            self.bytesSent = bytesSent
            self.queuedBytes = queuedBytes
            self.droppedMessages = droppedMessages
            self.behind = behind
        }
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
    /// Bytes of media the GOP cache holds for joining targets, while live.
    public var gopCacheBytes: Int?
    public var targets: [Target]

    public init(
        name: String,
        app: String,
        state: String,
        publisher: Publisher? = nil,
        ingest: Ingest? = nil,
        warnings: [Warning] = [],
        preview: PreviewStatus? = nil,
        gopCacheBytes: Int? = nil,
        targets: [Target]
    ) {
        self.name = name
        self.app = app
        self.state = state
        self.publisher = publisher
        self.ingest = ingest
        self.warnings = warnings
        self.preview = preview
        self.gopCacheBytes = gopCacheBytes
        self.targets = targets
    }
}
