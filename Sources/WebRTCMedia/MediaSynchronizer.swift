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

/// Unwraps 32-bit RTP timestamps into a 64-bit timeline (RFC 3550 5.1: they wrap, from a random start).
public struct RTPTimestampUnwrapper: Sendable, Hashable {
    private var last: Int64?

    public init() {}

    /// The extended value of `timestamp`: the one closest to the previous result.
    public mutating func unwrap(_ timestamp: UInt32) -> Int64 {
        guard let last = self.last else {
            let value = Int64(timestamp) + (1 << 32)  // room below for a timestamp just before the first
            self.last = value
            return value
        }
        let delta = Int32(bitPattern: timestamp &- UInt32(truncatingIfNeeded: last))
        let value = last + Int64(delta)
        self.last = max(last, value)
        return value
    }

    /// The extended value of `timestamp` without moving the reference (for a sender report's timestamp).
    public func peek(_ timestamp: UInt32) -> Int64? {
        guard let last = self.last else { return nil }
        return last + Int64(Int32(bitPattern: timestamp &- UInt32(truncatingIfNeeded: last)))
    }
}

/// Puts the audio and the video of one session on one clock, in milliseconds from the start, the way an RTMP
/// publisher timestamps its messages.
///
/// Each track's RTP timestamps count from a random start at their own rate. The sender's RTCP sender reports
/// (RFC 3550 6.4.1) pair an NTP wallclock time with an RTP timestamp per track, and both tracks' NTP times come
/// from the same clock: mapped through them, audio and video line up as the sender captured them. The first sender
/// report of the session fixes the offset from the sender's NTP clock to the local clock (by its arrival time);
/// until a track has one, its timestamps are placed by arrival time (the first packet's arrival plus RTP time
/// since).
///
/// A sender's reports move a track's placement whenever they say something new (a sender whose media timestamps do
/// not follow its report clock exactly says something new in every report: GStreamer's extrapolates from its last
/// buffer). Taken at once, each such move is a jump in the track's timestamps, and through the interleaver, which
/// puts the tracks in timestamp order, latency. So the output follows a track's placement at a bounded rate, as
/// libwebrtc's audio/video synchronization moves its playout delays: ``slewPerThousand`` of the media time that
/// passes, until it has caught up; a move of more than ``discontinuity`` (a sender that restarted its clock) is taken
/// at once.
///
/// The output starts at 0 where ``start(atRTPTimestamp:track:)`` puts it (the ingest starts it at the first video
/// keyframe, see below), or else with the first message of the session; it never goes backwards within a track (a
/// jump back, as when a track switches from arrival time to sender reports, is held at the last value), and is
/// clamped at 0 for anything placed before the start.
///
/// An RTMP stream is only decodable from a video keyframe on, and a target starts there; audio from before it would
/// start the recording's audio track ahead of its video one. So the stream starts, as an encoder such as OBS starts
/// it, with the keyframe: ``precedesStart(extendedTimestamp:track:)`` tells what lies before it, to be left out.
///
/// A value-typed state machine; times come in as arguments.
public struct MediaSynchronizer: Sendable {
    /// The two tracks.
    public enum Track: Int, Sendable, Hashable, CaseIterable {
        case audio = 0
        case video = 1
    }

    private struct TrackState: Sendable {
        let clockRate: Int64
        var unwrapper = RTPTimestampUnwrapper()
        /// The first packet's extended timestamp and local time (ns), for placing by arrival.
        var arrivalBase: (timestamp: Int64, local: Int64)?
        /// The latest sender report: its extended RTP timestamp and NTP time in ns.
        var senderReport: (timestamp: Int64, ntp: Int64)?
        var lastOutput: Int64?
        /// Where the output placed the track last: an extended timestamp and its local time (ns since the epoch).
        var placed: (timestamp: Int64, local: Int64)?
    }

    /// How fast the output follows a track's moved placement: this many per thousand of the media time that passes
    /// (80 ms per second).
    public static let slewPerThousand: Int64 = 80
    /// A move of the placement larger than this is taken at once.
    public static let discontinuity: Duration = .seconds(1)

    private let epoch: ContinuousClock.Instant
    private var tracks: [TrackState]
    /// Local ns minus sender NTP ns, from the first sender report.
    private var ntpToLocal: Int64?
    /// The local time (ns) of output 0.
    private var origin: Int64?

    /// - Parameters:
    ///   - audioClockRate: The audio RTP clock rate (48000 for Opus).
    ///   - videoClockRate: The video RTP clock rate (90000 for H.264).
    ///   - epoch: Any instant before the session's first packet; times are kept relative to it.
    public init(audioClockRate: Int = 48000, videoClockRate: Int = 90000, epoch: ContinuousClock.Instant) {
        precondition(audioClockRate > 0 && videoClockRate > 0, "RTP clock rates are positive")
        self.epoch = epoch
        self.tracks = [TrackState(clockRate: Int64(audioClockRate)), TrackState(clockRate: Int64(videoClockRate))]
    }

    /// Extends a packet's RTP timestamp on the track's timeline, and notes its arrival: the first packet of a
    /// track places the track on the local clock until a sender report does. Every packet of the track should pass
    /// here once, in sequence order.
    @discardableResult
    public mutating func observe(_ timestamp: UInt32, track: Track, arrival: ContinuousClock.Instant) -> Int64 {
        let extended = self.tracks[track.rawValue].unwrapper.unwrap(timestamp)
        if self.tracks[track.rawValue].arrivalBase == nil {
            self.tracks[track.rawValue].arrivalBase = (extended, (arrival - self.epoch).nanoseconds)
        }
        return extended
    }

    /// Takes a sender report for the track.
    public mutating func senderReport(
        ntpTimestamp: UInt64,
        rtpTimestamp: UInt32,
        track: Track,
        at arrival: ContinuousClock.Instant
    ) {
        // Before the track's first packet the RTP timestamp cannot be placed on its timeline: keep it as the start.
        let extended =
            self.tracks[track.rawValue].unwrapper.peek(rtpTimestamp)
            ?? self.tracks[track.rawValue].unwrapper.unwrap(rtpTimestamp)
        let ntp = Self.nanoseconds(ntp: ntpTimestamp)
        self.tracks[track.rawValue].senderReport = (extended, ntp)
        if self.ntpToLocal == nil {
            self.ntpToLocal = (arrival - self.epoch).nanoseconds - ntp
        }
    }

    /// Whether the output has started: time 0 is fixed.
    public var hasStarted: Bool { self.origin != nil }

    /// Makes media at RTP time `timestamp` of the track time 0 of the output (taken as the extended timestamp closest
    /// to the last one ``observe(_:track:arrival:)`` saw). Does nothing once the output has started.
    public mutating func start(atRTPTimestamp timestamp: UInt32, track: Track) {
        let extended = self.tracks[track.rawValue].unwrapper.peek(timestamp) ?? Int64(timestamp) + (1 << 32)
        self.start(atExtendedTimestamp: extended, track: track)
    }

    /// Makes media at extended RTP time `timestamp` of the track time 0 of the output. Does nothing once the output
    /// has started.
    public mutating func start(atExtendedTimestamp timestamp: Int64, track: Track) {
        guard self.origin == nil, let local = self.localTime(forExtendedTimestamp: timestamp, track: track) else {
            return
        }
        self.origin = local
    }

    /// Whether media at extended RTP time `timestamp` of the track lies before the output's start, or the output has
    /// not started: media the output leaves out, so that both tracks begin together.
    public func precedesStart(extendedTimestamp timestamp: Int64, track: Track) -> Bool {
        guard let origin = self.origin, let local = self.localTime(forExtendedTimestamp: timestamp, track: track)
        else {
            return true
        }
        return local < origin
    }

    /// Where media at extended RTP time `timestamp` of the track is on the local clock (ns since the epoch): by the
    /// sender's reports once there is one, else by arrival; nil before the track's first packet or report.
    private func localTime(forExtendedTimestamp timestamp: Int64, track: Track) -> Int64? {
        let state = self.tracks[track.rawValue]
        if let report = state.senderReport, let ntpToLocal = self.ntpToLocal {
            return ntpToLocal + report.ntp + Self.nanoseconds(timestamp - report.timestamp, rate: state.clockRate)
        }
        if let base = state.arrivalBase {
            return base.local + Self.nanoseconds(timestamp - base.timestamp, rate: state.clockRate)
        }
        return nil
    }

    /// The message timestamp, in milliseconds, of media at RTP time `timestamp` of the track, taken as the
    /// extended timestamp closest to the last one ``observe(_:track:arrival:)`` saw.
    public mutating func milliseconds(forRTPTimestamp timestamp: UInt32, track: Track) -> UInt32 {
        let extended = self.tracks[track.rawValue].unwrapper.peek(timestamp) ?? Int64(timestamp) + (1 << 32)
        return self.milliseconds(forExtendedTimestamp: extended, track: track)
    }

    /// The message timestamp, in milliseconds, of media at extended RTP time `timestamp` of the track. The track
    /// must have seen a packet (``observe(_:track:arrival:)``) or a sender report.
    public mutating func milliseconds(forExtendedTimestamp timestamp: Int64, track: Track) -> UInt32 {
        var state = self.tracks[track.rawValue]
        let target = self.localTime(forExtendedTimestamp: timestamp, track: track) ?? self.origin ?? 0
        let local: Int64
        if let placed = state.placed {
            let elapsed = Self.nanoseconds(timestamp - placed.timestamp, rate: state.clockRate)
            let predicted = placed.local + elapsed
            let difference = target - predicted
            if elapsed < 0 {
                // Earlier than the last placed (a frame that came out of order): where the last placement puts it.
                local = predicted
            } else if abs(difference) > Self.discontinuity.nanoseconds {
                local = target
                state.placed = (timestamp, local)
            } else {
                let step = elapsed * Self.slewPerThousand / 1000
                local = predicted + min(max(difference, -step), step)
                state.placed = (timestamp, local)
            }
        } else {
            local = target
            state.placed = (timestamp, local)
        }
        if self.origin == nil {
            self.origin = local
        }
        var milliseconds = max(0, (local - self.origin!) / 1_000_000)
        if let last = state.lastOutput {
            milliseconds = max(milliseconds, last)
        }
        state.lastOutput = milliseconds
        self.tracks[track.rawValue] = state
        return UInt32(truncatingIfNeeded: milliseconds)
    }

    private static func nanoseconds(_ ticks: Int64, rate: Int64) -> Int64 {
        // Split to keep ticks * 1e9 from overflowing on long sessions.
        let seconds = ticks / rate
        let remainder = ticks % rate
        return seconds * 1_000_000_000 + remainder * 1_000_000_000 / rate
    }

    /// NTP's 32.32 fixed point in nanoseconds since 1900.
    static func nanoseconds(ntp: UInt64) -> Int64 {
        let seconds = Int64(ntp >> 32)
        let fraction = Int64(ntp & 0xFFFF_FFFF)
        return seconds * 1_000_000_000 + (fraction * 1_000_000_000) >> 32
    }
}
