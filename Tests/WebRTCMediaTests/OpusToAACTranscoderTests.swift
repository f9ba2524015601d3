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
import Testing
import WebRTCMedia

@Suite struct OpusToAACTranscoderTests {
    /// A 20 ms CELT fullband stereo Opus packet with an empty frame (RFC 6716 3.1: TOC config 31, s=1, c=0): the
    /// decoder conceals it as 960 samples.
    static let emptyFrame = ByteBuffer(bytes: [0xFC])

    @Test func makesAACLCWithTheAudioSpecificConfig() throws {
        let transcoder = try OpusToAACTranscoder(channels: 2)
        // ISO/IEC 14496-3 1.6.2.1: object type 2 (LC), frequency index 3 (48 kHz), channel configuration 2.
        #expect(Array(transcoder.audioSpecificConfig.readableBytesView.prefix(2)) == [0x11, 0x90])
        #expect(transcoder.config.audioObjectType == 2)
        #expect(transcoder.config.samplingFrequency == 48000)
        #expect(transcoder.config.channelCount == 2)
    }

    @Test func keepsTimestampsExactAcrossTheReframingAndFillsGapsWithSilence() throws {
        let transcoder = try OpusToAACTranscoder(channels: 2)
        let start: Int64 = 1_000_000
        var frames: [AACFrame] = []
        // 20 packets, the 8th and 9th lost.
        for index in 0..<20 where index != 7 && index != 8 {
            frames += try transcoder.transcode(Self.emptyFrame, timestamp: start + Int64(index) * 960)
        }
        frames += try transcoder.finish()
        // 20 x 960 samples, padded to whole frames, plus the encoder's priming frame.
        #expect(frames.count == (20 * 960 + 1023) / 1024 + 1)
        #expect(frames.map(\.timestamp) == frames.indices.map { start - 1024 + Int64($0) * 1024 })
        #expect(frames.allSatisfy { $0.data.readableBytes > 0 })
    }

    @Test func refusesWhatDoesNotDecodeAndGoesOn() throws {
        let transcoder = try OpusToAACTranscoder(channels: 1)
        _ = try transcoder.transcode(Self.emptyFrame, timestamp: 0)
        #expect(throws: WebRTCMediaError.self) {
            try transcoder.transcode(ByteBuffer(), timestamp: 960)
        }
        #expect(throws: WebRTCMediaError.self) {
            try transcoder.transcode(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF]), timestamp: 960)
        }
        var frames: [AACFrame] = []
        for index in 2..<10 {
            frames += try transcoder.transcode(Self.emptyFrame, timestamp: Int64(index) * 960)
        }
        frames += try transcoder.finish()
        #expect(frames.map(\.timestamp) == frames.indices.map { -1024 + Int64($0) * 1024 })
    }
}
