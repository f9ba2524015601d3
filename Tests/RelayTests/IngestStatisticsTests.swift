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

@testable import Relay

@Suite("Ingest statistics: rates over the last seconds of media time")
struct IngestStatisticsTests {
    /// `seconds` of 30 fps video from `start` (ms), a keyframe a second, each frame `size` bytes.
    private func feed(
        _ statistics: inout IngestStatistics,
        from start: UInt32,
        seconds: Double,
        size: Int
    ) {
        let frames = Int(seconds * 30)
        for frame in 0..<frames {
            var payload = ByteBuffer(bytes: [frame % 30 == 0 ? 0x17 : 0x27, 0x01])
            payload.writeRepeatingByte(0, count: size - 2)
            let timestamp = start + UInt32(frame * 1000 / 30)
            let message = RTMPMessage(
                chunkStreamID: 6,
                timestamp: timestamp,
                type: .video,
                messageStreamID: 1,
                payload: payload
            )
            _ = statistics.record(RelayMessage(classifying: message), rules: IngestRules())
        }
    }

    @Test("bitrate and frame rate count the complete seconds of the window, not the one still filling")
    func ratesOverTheWindow() {
        var statistics = IngestStatistics()
        #expect(statistics.rates.bitrate == 0 && statistics.rates.frameRate == 0)
        self.feed(&statistics, from: 0, seconds: 0.5, size: 1000)
        #expect(statistics.rates.bitrate == 0, "no complete second yet")

        var steady = IngestStatistics()
        self.feed(&steady, from: 0, seconds: 12.5, size: 1000)
        #expect(steady.rates.frameRate == 30)
        #expect(steady.rates.bitrate == 30 * 1000 * 8)
        // A second copy (as the status snapshot keeps) and the original go on independently.
        let snapshot = steady
        self.feed(&steady, from: 12_500, seconds: 10, size: 2000)
        #expect(steady.rates.bitrate == 30 * 2000 * 8)
        #expect(snapshot.rates.bitrate == 30 * 1000 * 8)
    }

    @Test("timestamps that go back (a new publisher, an encoder that restarted) forget the seconds after them")
    func timestampsGoingBack() {
        var statistics = IngestStatistics()
        self.feed(&statistics, from: 600_000, seconds: 8.5, size: 4000)
        #expect(statistics.rates.bitrate == 30 * 4000 * 8)
        self.feed(&statistics, from: 0, seconds: 2.5, size: 1000)
        #expect(statistics.rates.bitrate == 30 * 1000 * 8)
        #expect(statistics.rates.frameRate == 30)
        #expect(statistics.keyframes == 9 + 3)
    }
}
