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
import RTMP
import Testing
import WebRTCMedia

@Suite struct MessageInterleaverTests {
    let start = ContinuousClock.now

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { self.start + .milliseconds(milliseconds) }

    /// An audio message, or a video one: a keyframe (FLV frame type 1) unless `key` is false.
    func message(_ type: RTMPMessageType, _ timestamp: UInt32, key: Bool = true) -> RTMPMessage {
        let payload = type == .video ? ByteBuffer(bytes: [key ? 0x17 : 0x27, 1]) : ByteBuffer(bytes: [0xAF, 1])
        return RTMPMessage(chunkStreamID: 4, timestamp: timestamp, type: type, messageStreamID: 1, payload: payload)
    }

    func names(_ messages: [RTMPMessage]) -> [String] {
        messages.map { "\($0.type == .video ? "v" : "a")\($0.timestamp)" }
    }

    @Test func aKeyframeWaitsForTheAudioOfItsMoment() {
        var interleaver = MessageInterleaver(interleaves: true)
        // The keyframe leaves first, though the audio of its moment is still in the AAC encoder.
        interleaver.push(self.message(.audio, 0), track: .audio, at: self.at(0))
        #expect(self.names(interleaver.pop(at: self.at(0))) == [])
        interleaver.push(self.message(.video, 0), track: .video, at: self.at(10))
        interleaver.push(self.message(.video, 33), track: .video, at: self.at(10))
        interleaver.push(self.message(.video, 66, key: false), track: .video, at: self.at(10))
        // Video first at equal times, then the audio; keyframe 33 waits for audio to pass 33, frame 66 behind it.
        #expect(self.names(interleaver.pop(at: self.at(10))) == ["v0", "a0"])
        interleaver.push(self.message(.audio, 21), track: .audio, at: self.at(20))
        interleaver.push(self.message(.audio, 42), track: .audio, at: self.at(20))
        #expect(self.names(interleaver.pop(at: self.at(20))) == ["a21", "v33", "a42", "v66"])
        #expect(interleaver.count == 0)
        // A keyframe waits at most video's maximum delay (150 ms), here from the audio's last message.
        interleaver.push(self.message(.video, 100), track: .video, at: self.at(30))
        #expect(interleaver.nextDeadline == self.at(170))
        #expect(self.names(interleaver.pop(at: self.at(169))) == [])
        #expect(self.names(interleaver.pop(at: self.at(170))) == ["v100"])
        #expect(interleaver.nextDeadline == nil)
    }

    @Test func framesBetweenKeyframesDoNotWaitForAudioThatRunsBehind() {
        // A publisher whose audio runs 400 ms behind its video in timestamps: a frame that no target starts at goes
        // out at once; the next keyframe waits 150 ms, not until audio reaches it.
        var interleaver = MessageInterleaver(interleaves: true)
        interleaver.push(self.message(.audio, 0), track: .audio, at: self.at(0))
        interleaver.push(self.message(.video, 400, key: false), track: .video, at: self.at(0))
        #expect(self.names(interleaver.pop(at: self.at(0))) == ["a0", "v400"])
        interleaver.push(self.message(.audio, 21), track: .audio, at: self.at(33))
        interleaver.push(self.message(.video, 433), track: .video, at: self.at(33))
        #expect(self.names(interleaver.pop(at: self.at(33))) == ["a21"])
        #expect(interleaver.nextDeadline == self.at(183))
        #expect(self.names(interleaver.pop(at: self.at(182))) == [])
        #expect(self.names(interleaver.pop(at: self.at(183))) == ["v433"])
    }

    @Test func audioWaitsLongForAPacedKeyframe() {
        var interleaver = MessageInterleaver(interleaves: true)
        interleaver.push(self.message(.video, 0), track: .video, at: self.at(0))
        interleaver.push(self.message(.audio, 0), track: .audio, at: self.at(0))
        #expect(self.names(interleaver.pop(at: self.at(0))) == ["v0"])
        // The next keyframe, at 33, is paced out over 400 ms: the audio of its moment waits for it, up to 500 ms.
        interleaver.push(self.message(.audio, 21), track: .audio, at: self.at(21))
        interleaver.push(self.message(.audio, 42), track: .audio, at: self.at(42))
        #expect(self.names(interleaver.pop(at: self.at(100))) == [])
        #expect(interleaver.nextDeadline == self.at(500))
        interleaver.push(self.message(.video, 33), track: .video, at: self.at(400))
        #expect(self.names(interleaver.pop(at: self.at(400))) == ["a0", "a21", "v33"])
    }

    @Test func aTrackThatSendsNothingIsNotWaitedFor() {
        var interleaver = MessageInterleaver(interleaves: true)
        // A session whose microphone sends nothing: the first keyframe waits video's maximum delay, then no more.
        interleaver.push(self.message(.video, 0), track: .video, at: self.at(0))
        #expect(self.names(interleaver.pop(at: self.at(0))) == [])
        #expect(self.names(interleaver.pop(at: self.at(149))) == [])
        #expect(self.names(interleaver.pop(at: self.at(150))) == ["v0"])
        interleaver.push(self.message(.video, 33), track: .video, at: self.at(183))
        #expect(self.names(interleaver.pop(at: self.at(183))) == ["v33"])
        // Audio that comes back is waited for again.
        interleaver.push(self.message(.audio, 560), track: .audio, at: self.at(600))
        interleaver.push(self.message(.video, 600), track: .video, at: self.at(600))
        #expect(self.names(interleaver.pop(at: self.at(600))) == ["a560"])
        #expect(self.names(interleaver.pop(at: self.at(650))) == [])
    }

    @Test func aSessionWithoutAudioDoesNotWaitAndTheEndFlushesInOrder() {
        var videoOnly = MessageInterleaver(interleaves: false)
        videoOnly.push(self.message(.video, 0), track: .video, at: self.at(0))
        #expect(self.names(videoOnly.pop(at: self.at(0))) == ["v0"])

        var interleaver = MessageInterleaver(interleaves: true)
        interleaver.push(self.message(.video, 0), track: .video, at: self.at(0))
        interleaver.push(self.message(.video, 40), track: .video, at: self.at(0))
        interleaver.push(self.message(.audio, 10), track: .audio, at: self.at(0))
        interleaver.push(self.message(.audio, 50), track: .audio, at: self.at(0))
        #expect(self.names(interleaver.flush()) == ["v0", "a10", "v40", "a50"])
        #expect(interleaver.count == 0)
    }
}
