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

import Testing
import WebRTCMedia

@Suite struct MediaSynchronizerTests {
    let start = ContinuousClock.now

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { self.start + .milliseconds(milliseconds) }

    @Test func unwrapsTimestampsAcrossTheWrap() {
        var unwrapper = RTPTimestampUnwrapper()
        let first = unwrapper.unwrap(0xFFFF_FF00)
        #expect(unwrapper.unwrap(0x0000_0100) - first == 0x200)
        #expect(unwrapper.unwrap(0xFFFF_FF80) - first == 0x80)  // a late one, before the wrap
        #expect(unwrapper.peek(0x0000_0200)! - first == 0x300)
    }

    @Test func placesTracksByArrivalUntilSenderReportsArrive() {
        var sync = MediaSynchronizer(epoch: self.start)
        // Video arrives first at 100 ms, audio at 120 ms; each advances by its own clock.
        let video = sync.observe(1_000_000, track: .video, arrival: self.at(100))
        let audio = sync.observe(5_000, track: .audio, arrival: self.at(120))
        #expect(sync.milliseconds(forExtendedTimestamp: video, track: .video) == 0)
        #expect(sync.milliseconds(forExtendedTimestamp: audio, track: .audio) == 20)
        #expect(sync.milliseconds(forExtendedTimestamp: video + 9000, track: .video) == 100)
        #expect(sync.milliseconds(forExtendedTimestamp: audio + 960, track: .audio) == 40)
        // Before the start: clamped to 0 on a fresh track... and never backwards on a running one.
        #expect(sync.milliseconds(forExtendedTimestamp: audio - 48000, track: .audio) == 40)
    }

    @Test func senderReportsLineTheTracksUpOnTheSendersClock() {
        var sync = MediaSynchronizer(epoch: self.start)
        // NTP second 1000 is video RTP 90000 and audio RTP 48000; audio arrives 500 ms late, as if delayed.
        let ntp: UInt64 = 1000 << 32
        sync.senderReport(ntpTimestamp: ntp, rtpTimestamp: 90000, track: .video, at: self.at(0))
        sync.senderReport(ntpTimestamp: ntp, rtpTimestamp: 48000, track: .audio, at: self.at(500))
        let video = sync.observe(90000 + 9000, track: .video, arrival: self.at(100))
        let audio = sync.observe(48000 + 4800, track: .audio, arrival: self.at(600))
        #expect(sync.milliseconds(forExtendedTimestamp: video, track: .video) == 0)
        #expect(sync.milliseconds(forExtendedTimestamp: audio, track: .audio) == 0)
        #expect(sync.milliseconds(forExtendedTimestamp: audio + 48000, track: .audio) == 1000)
        // A half-second NTP fraction: 0x8000_0000.
        sync.senderReport(ntpTimestamp: ntp + 0x8000_0000, rtpTimestamp: 90000 + 45000, track: .video, at: self.at(700))
        #expect(sync.milliseconds(forRTPTimestamp: 90000 + 9000 + 90000, track: .video) == 1000)
    }

    @Test func startsAtTheVideoKeyframeAndLeavesEarlierAudioOut() {
        var sync = MediaSynchronizer(epoch: self.start)
        // Audio from 0 ms on; the keyframe's first packet arrives at 150 ms (paced out behind the audio of its time).
        let audio = sync.observe(48000, track: .audio, arrival: self.at(0))
        #expect(!sync.hasStarted)
        #expect(sync.precedesStart(extendedTimestamp: audio + 48000, track: .audio))
        let keyframe = sync.observe(90000, track: .video, arrival: self.at(150))
        sync.start(atExtendedTimestamp: keyframe, track: .video)
        #expect(sync.hasStarted)
        // Audio captured before the keyframe is before the start; from its moment on it is not.
        #expect(sync.precedesStart(extendedTimestamp: audio, track: .audio))
        #expect(sync.precedesStart(extendedTimestamp: audio + 7199, track: .audio))
        #expect(!sync.precedesStart(extendedTimestamp: audio + 7200, track: .audio))
        // Both tracks start at 0 at the keyframe's moment, whichever asks first.
        #expect(sync.milliseconds(forExtendedTimestamp: audio + 7200, track: .audio) == 0)
        #expect(sync.milliseconds(forExtendedTimestamp: keyframe, track: .video) == 0)
        #expect(sync.milliseconds(forExtendedTimestamp: keyframe + 3000, track: .video) == 33)
        #expect(sync.milliseconds(forExtendedTimestamp: audio + 7200 + 1024, track: .audio) == 21)
        // The start stays where it is.
        sync.start(atExtendedTimestamp: keyframe + 90000, track: .video)
        #expect(sync.milliseconds(forExtendedTimestamp: keyframe + 90000, track: .video) == 1000)
    }

    @Test func theStartFollowsSenderReportsWhenTheyCameFirst() {
        var sync = MediaSynchronizer(epoch: self.start)
        // Both tracks captured together at NTP second 1000; the video arrives 300 ms after the audio.
        let ntp: UInt64 = 1000 << 32
        sync.senderReport(ntpTimestamp: ntp, rtpTimestamp: 48000, track: .audio, at: self.at(0))
        sync.senderReport(ntpTimestamp: ntp, rtpTimestamp: 90000, track: .video, at: self.at(300))
        let audio = sync.observe(48000, track: .audio, arrival: self.at(0))
        let keyframe = sync.observe(90000, track: .video, arrival: self.at(300))
        sync.start(atExtendedTimestamp: keyframe, track: .video)
        #expect(!sync.precedesStart(extendedTimestamp: audio, track: .audio))
        #expect(sync.precedesStart(extendedTimestamp: audio - 1, track: .audio))
        #expect(sync.milliseconds(forExtendedTimestamp: audio, track: .audio) == 0)
    }
    @Test func aMovedPlacementIsFollowedAtABoundedRate() {
        var sync = MediaSynchronizer(epoch: self.start)
        let ntp: UInt64 = 1000 << 32
        sync.senderReport(ntpTimestamp: ntp, rtpTimestamp: 90000, track: .video, at: self.at(0))
        #expect(sync.milliseconds(forExtendedTimestamp: 90000, track: .video) == 0)
        #expect(sync.milliseconds(forExtendedTimestamp: 90000 + 90000, track: .video) == 1000)
        // The sender now says RTP 180000 was captured 300 ms later than its first report implied.
        sync.senderReport(ntpTimestamp: ntp + (13 << 32) / 10, rtpTimestamp: 180000, track: .video, at: self.at(1300))
        // One more second of media: 80 ms of the 300 taken, not all of it.
        #expect(sync.milliseconds(forExtendedTimestamp: 270000, track: .video) == 2080)
        // Frame by frame (33 ms: 2.6 ms each) it catches up, then follows the new placement exactly.
        var last: UInt32 = 2080
        var timestamp: Int64 = 270000
        for _ in 0..<120 {
            timestamp += 3000
            let milliseconds = sync.milliseconds(forExtendedTimestamp: timestamp, track: .video)
            #expect(milliseconds > last && milliseconds - last <= 36)
            last = milliseconds
        }
        #expect(sync.milliseconds(forExtendedTimestamp: timestamp + 3000, track: .video) == 6333)
        // A move of more than a second (a sender that restarted its clock) is taken at once.
        sync.senderReport(
            ntpTimestamp: ntp + (20 << 32),
            rtpTimestamp: UInt32(timestamp),
            track: .video,
            at: self.at(9000)
        )
        #expect(sync.milliseconds(forExtendedTimestamp: timestamp + 6000, track: .video) == 20_066)
    }
}
