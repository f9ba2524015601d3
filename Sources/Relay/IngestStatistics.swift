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
import RTMP

/// What the relay measures of an incoming stream: codecs and size from the sequence headers, frame rate, bitrate
/// and keyframe interval from the messages themselves (by their media timestamps, so a burst from a reconnecting
/// encoder does not read as a bitrate spike). Updated once per message on the ingest path; cheap by design.
struct IngestStatistics: Sendable {
    var bytes: UInt64 = 0
    var messages: UInt64 = 0
    var videoFrames: UInt64 = 0
    var audioFrames: UInt64 = 0
    var keyframes: UInt64 = 0

    var videoCodec: String?
    var width: Int?
    var height: Int?
    /// The frame rate the encoder declared in the SPS timing information, if any.
    var declaredFrameRate: Double?
    var audioCodec: String?
    var audioSampleRate: Int?
    var audioChannels: Int?

    var lastKeyframeTimestamp: UInt32?
    /// The interval between the last two keyframes.
    var keyframeInterval: Duration?

    /// Bytes and video frames per media-time second, for the last few seconds: a ring indexed by the second, inline
    /// in the value. An array here was copied at every read, since the status snapshot holds a copy of these
    /// statistics and the next message's update then found the array's buffer shared.
    private var buckets = InlineArray<8, Bucket>(repeating: Bucket())
    private static let windowSeconds: UInt32 = 5

    private struct Bucket: Sendable {
        var second: UInt32 = 0
        var bytes = 0
        var frames = 0
        var used = false
    }

    /// Whether the keyframe-interval rule is broken right now.
    var keyframeIntervalRuleBroken = false
    /// Times the rule went from kept to broken.
    var ruleViolations: UInt64 = 0

    enum RuleEvent: Equatable {
        case broken(interval: Duration, limit: Duration)
        case kept(interval: Duration)
    }

    /// Records one message; returns a rule event when the keyframe-interval rule changed state.
    mutating func record(_ message: RelayMessage, rules: IngestRules) -> RuleEvent? {
        let size = message.message.payload.readableBytes
        self.bytes += UInt64(size)
        self.messages += 1
        let second = message.message.timestamp / 1000
        var frames = 0
        var event: RuleEvent?
        switch message.kind {
        case .keyframe:
            self.videoFrames += 1
            self.keyframes += 1
            frames = 1
            if let last = self.lastKeyframeTimestamp {
                let delta = Int64(Int32(bitPattern: message.message.timestamp &- last))
                if delta > 0 {
                    let interval = Duration.milliseconds(delta)
                    self.keyframeInterval = interval
                    event = self.check(interval: interval, rules: rules)
                }
            }
            self.lastKeyframeTimestamp = message.message.timestamp
        case .videoFrame:
            self.videoFrames += 1
            frames = 1
        case .audioFrame:
            self.audioFrames += 1
        case .videoHeader:
            self.parseVideoHeader(message.message.payload)
        case .audioHeader:
            self.parseAudioHeader(message.message.payload)
        case .metadata, .data:
            break
        }
        let index = Int(second % UInt32(self.buckets.count))
        if self.buckets[index].used && self.buckets[index].second == second {
            self.buckets[index].bytes += size
            self.buckets[index].frames += frames
        } else {
            // A new second: forget what is out of the window, or after it (the timestamps went back: a new
            // publisher, or an encoder that restarted its clock).
            for other in self.buckets.indices
            where second > self.buckets[other].second + Self.windowSeconds + 1 || self.buckets[other].second > second {
                self.buckets[other].used = false
            }
            self.buckets[index] = Bucket(second: second, bytes: size, frames: frames, used: true)
        }
        return event
    }

    private mutating func check(interval: Duration, rules: IngestRules) -> RuleEvent? {
        guard let limit = rules.maxKeyframeInterval else {
            return nil
        }
        // Timestamps are in milliseconds and frame-aligned: allow one frame of slack over the limit.
        let broken = interval > limit + .milliseconds(50)
        defer { self.keyframeIntervalRuleBroken = broken }
        if broken && !self.keyframeIntervalRuleBroken {
            self.ruleViolations += 1
            return .broken(interval: interval, limit: limit)
        }
        if !broken && self.keyframeIntervalRuleBroken {
            return .kept(interval: interval)
        }
        return nil
    }

    /// Bits per second and frames per second over the last complete seconds of media time.
    var rates: (bitrate: Double, frameRate: Double) {
        var newest: UInt32?
        for index in self.buckets.indices where self.buckets[index].used {
            newest = max(newest ?? 0, self.buckets[index].second)
        }
        guard let newest else {
            return (0, 0)
        }
        // The newest second is still filling: leave it out.
        var (seconds, bytes, frames) = (0, 0, 0)
        for index in self.buckets.indices {
            let bucket = self.buckets[index]
            if bucket.used && bucket.second < newest && bucket.second + Self.windowSeconds >= newest {
                seconds += 1
                bytes += bucket.bytes
                frames += bucket.frames
            }
        }
        guard seconds > 0 else {
            return (0, 0)
        }
        return (Double(bytes) * 8 / Double(seconds), Double(frames) / Double(seconds))
    }

    private mutating func parseVideoHeader(_ payload: ByteBuffer) {
        guard let header = try? VideoTagHeader(parsing: payload), let codec = header.codec else {
            return
        }
        self.videoCodec = "\(codec)"
        guard let data = header.codecData(in: payload) else {
            return
        }
        switch codec {
        case .avc:
            if let record = try? AVCDecoderConfigurationRecord(parsing: data),
                let sps = try? record.parseSequenceParameterSet()
            {
                self.width = sps.width
                self.height = sps.height
                self.declaredFrameRate = sps.frameRate
            }
        case .hevc:
            if let record = try? HEVCDecoderConfigurationRecord(parsing: data),
                let sps = try? record.parseSequenceParameterSet()
            {
                self.width = sps.width
                self.height = sps.height
            }
        default:
            break
        }
    }

    private mutating func parseAudioHeader(_ payload: ByteBuffer) {
        guard let header = try? AudioTagHeader(parsing: payload), let codec = header.codec else {
            return
        }
        self.audioCodec = "\(codec)"
        if codec == .aac, let data = header.codecData(in: payload), let config = try? AudioSpecificConfig(parsing: data)
        {
            self.audioSampleRate = config.samplingFrequency
            self.audioChannels = config.channelCount
        }
    }
}
