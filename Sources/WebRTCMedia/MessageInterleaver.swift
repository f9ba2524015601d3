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
public import RTMP

/// Puts the RTMP messages of the two tracks in timestamp order, as a muxer does (OBS interleaves its packets the
/// same way before they go out).
///
/// The tracks reach the output at different delays: a keyframe is paced out over many packets and leaves the
/// depacketizer late, and the AAC encoder holds a frame or two. Sent as they come, a message of one track would
/// follow later ones of the other, and a target that starts at a keyframe (the relay's targets, nginx-rtmp's
/// recorder) would take the audio that trails it and start its audio track ahead of its video one. So each message
/// waits until the other track has reached its time, or for its track's longest delay at most, so that a track that
/// stops (a muted microphone that sends nothing, a camera that stalls) costs the other one that much latency and no
/// more: a track that has sent nothing for that long is not waited for.
///
/// What waits, and how long, differs by track. Audio waits for video, long (``Configuration/maximumAudioDelay``): a
/// keyframe paced out at a low bitrate arrives hundreds of milliseconds after the audio of its moment, and held audio
/// costs no picture latency. Of the video, only what a target can start at waits for audio (a keyframe, the sequence
/// header, the metadata), briefly (``Configuration/maximumVideoDelay``), so that the audio of its moment comes after
/// it: what the audio path holds is the AAC encoder's frame or two. The frames between keyframes go out as they come
/// (behind a held keyframe, in their order): a publisher whose audio timestamps run behind its video (GStreamer's
/// `rawvideoparse` stamps frames by their count, not their capture) must not put that lag into every picture's
/// glass-to-glass time, and past a keyframe the order of the tracks matters to no target.
///
/// A value-typed state machine: times come in as arguments.
public struct MessageInterleaver: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// The longest an audio message waits for video.
        public var maximumAudioDelay: Duration = .milliseconds(500)
        /// The longest a keyframe (or the sequence header, or the metadata) waits for audio: Opus's 20 ms packet
        /// and the AAC encoder's two frames of 1024 samples (43 ms at 48 kHz) with room to spare.
        public var maximumVideoDelay: Duration = .milliseconds(150)
        /// The most messages held per track; past it the oldest go out at once.
        public var maximumHeld = 1024

        public init() {}

        /// The longest a message of `track` waits for the other.
        public func maximumDelay(of track: MediaSynchronizer.Track) -> Duration {
            track == .audio ? self.maximumAudioDelay : self.maximumVideoDelay
        }
    }

    private struct Held: Sendable {
        var message: RTMPMessage
        var arrival: ContinuousClock.Instant
    }

    public let configuration: Configuration
    /// Whether the session has both tracks; with one alone nothing waits.
    private let interleaves: Bool
    private var queues: [CircularBuffer<Held>] = [[], []]
    private var lastPush: [ContinuousClock.Instant?] = [nil, nil]
    private var firstPush: ContinuousClock.Instant?

    /// - Parameters:
    ///   - interleaves: Whether there are two tracks to interleave (false for a session without audio).
    public init(interleaves: Bool, configuration: Configuration = Configuration()) {
        self.interleaves = interleaves
        self.configuration = configuration
    }

    /// The messages held now.
    public var count: Int { self.queues[0].count + self.queues[1].count }

    /// Takes one message of the track; messages of one track must come in their order.
    public mutating func push(
        _ message: RTMPMessage,
        track: MediaSynchronizer.Track,
        at now: ContinuousClock.Instant
    ) {
        self.queues[track.rawValue].append(Held(message: message, arrival: now))
        self.lastPush[track.rawValue] = now
        if self.firstPush == nil {
            self.firstPush = now
        }
    }

    /// The messages that can go out now, in timestamp order.
    public mutating func pop(at now: ContinuousClock.Instant) -> [RTMPMessage] {
        var out: [RTMPMessage] = []
        while let track = self.nextTrack(at: now) {
            out.append(self.queues[track.rawValue].removeFirst().message)
        }
        return out
    }

    /// Everything held, in timestamp order (the session ends).
    public mutating func flush() -> [RTMPMessage] {
        var out: [RTMPMessage] = []
        while let track = self.nextTrack(at: nil) {
            out.append(self.queues[track.rawValue].removeFirst().message)
        }
        return out
    }

    /// When ``pop(at:)`` next releases something that waits, if anything does.
    public var nextDeadline: ContinuousClock.Instant? {
        var deadline: ContinuousClock.Instant?
        for track in MediaSynchronizer.Track.allCases {
            guard let head = self.queues[track.rawValue].first else { continue }
            let limit = self.configuration.maximumDelay(of: track)
            var candidate = head.arrival + limit
            if let last = self.lastPush[track.other.rawValue] ?? self.firstPush {
                candidate = min(candidate, last + limit)
            }
            deadline = min(deadline ?? candidate, candidate)
        }
        return deadline
    }

    /// The track whose head goes out next, or nil if none may yet. `now` nil: no waiting.
    private func nextTrack(at now: ContinuousClock.Instant?) -> MediaSynchronizer.Track? {
        let video = self.queues[MediaSynchronizer.Track.video.rawValue].first
        let audio = self.queues[MediaSynchronizer.Track.audio.rawValue].first
        switch (video, audio) {
        case (nil, nil):
            return nil
        case (let video?, let audio?):
            // Video first at equal times: a target that starts at a keyframe keeps the audio of that moment.
            return Int32(bitPattern: audio.message.timestamp &- video.message.timestamp) < 0 ? .audio : .video
        case (let head?, nil), (nil, let head?):
            let track: MediaSynchronizer.Track = video != nil ? .video : .audio
            guard let now, self.interleaves, track == .audio || Self.startsAPicture(head.message) else {
                return track
            }
            let limit = self.configuration.maximumDelay(of: track)
            if now - head.arrival >= limit || self.queues[track.rawValue].count >= self.configuration.maximumHeld {
                return track
            }
            // A track that has sent nothing for a while (or never, since the first message) is not waited for.
            let other = self.lastPush[track.other.rawValue] ?? self.firstPush ?? now
            return now - other >= limit ? track : nil
        }
    }
}

extension MessageInterleaver {
    /// Whether a message of the video track is one a target can start at: a keyframe or the sequence header (FLV
    /// frame type 1, legacy or enhanced RTMP), or the metadata before them.
    static func startsAPicture(_ message: RTMPMessage) -> Bool {
        guard message.type == .video else { return true }
        guard let first = message.payload.getInteger(at: message.payload.readerIndex, as: UInt8.self) else {
            return false
        }
        return (first >> 4) & 0x07 == 1
    }
}

extension MediaSynchronizer.Track {
    fileprivate var other: Self { self == .audio ? .video : .audio }
}
