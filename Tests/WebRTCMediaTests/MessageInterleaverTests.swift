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

    func message(_ type: RTMPMessageType, _ timestamp: UInt32) -> RTMPMessage {
        RTMPMessage(chunkStreamID: 4, timestamp: timestamp, type: type, messageStreamID: 1, payload: ByteBuffer())
    }

    func names(_ messages: [RTMPMessage]) -> [String] {
        messages.map { "\($0.type == .video ? "v" : "a")\($0.timestamp)" }
    }

    @Test func aTrackWaitsForTheOtherToReachItsTime() {
        var interleaver = MessageInterleaver(interleaves: true)
        // The keyframe leaves first, though the audio of its moment is still in the AAC encoder.
        interleaver.push(self.message(.audio, 0), track: .audio, at: self.at(0))
        #expect(self.names(interleaver.pop(at: self.at(0))) == [])
        interleaver.push(self.message(.video, 0), track: .video, at: self.at(10))
        interleaver.push(self.message(.video, 33), track: .video, at: self.at(10))
        interleaver.push(self.message(.video, 66), track: .video, at: self.at(10))
        // Video first at equal times, then the audio; video 33 waits for audio to pass 33.
        #expect(self.names(interleaver.pop(at: self.at(10))) == ["v0", "a0"])
        interleaver.push(self.message(.audio, 21), track: .audio, at: self.at(20))
        interleaver.push(self.message(.audio, 42), track: .audio, at: self.at(20))
        #expect(self.names(interleaver.pop(at: self.at(20))) == ["a21", "v33", "a42"])
        #expect(interleaver.count == 1)
        // Video 66 waits at most the maximum delay from its arrival.
        #expect(interleaver.nextDeadline == self.at(510))
        #expect(self.names(interleaver.pop(at: self.at(509))) == [])
        #expect(self.names(interleaver.pop(at: self.at(510))) == ["v66"])
        #expect(interleaver.nextDeadline == nil)
    }

    @Test func aTrackThatSendsNothingIsNotWaitedFor() {
        var interleaver = MessageInterleaver(interleaves: true)
        // A session whose microphone sends nothing: the first video waits the maximum delay, then no more.
        interleaver.push(self.message(.video, 0), track: .video, at: self.at(0))
        #expect(self.names(interleaver.pop(at: self.at(0))) == [])
        #expect(self.names(interleaver.pop(at: self.at(500))) == ["v0"])
        interleaver.push(self.message(.video, 33), track: .video, at: self.at(533))
        #expect(self.names(interleaver.pop(at: self.at(533))) == ["v33"])
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
