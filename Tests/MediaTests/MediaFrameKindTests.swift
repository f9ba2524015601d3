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

@Suite("MediaFrameKind: per-message classification that never throws")
struct MediaFrameKindTests {
    @Test(
        "Real fixtures",
        arguments: [
            (Fixtures.qvgaVideoSequenceHeader, MediaFrameKind.videoSequenceHeader),
            (Fixtures.hd720VideoSequenceHeader, .videoSequenceHeader),
            (Fixtures.qvgaKeyframePrefix, .videoKeyframe),
            (Fixtures.qvgaInterframePrefix, .videoInterframe),
            (Fixtures.qvgaEndOfSequence, .videoEndOfSequence),
            ("90 68766331" + Fixtures.hevc320x240Record, .videoSequenceHeader),
        ]
    )
    func video(bytes: String, kind: MediaFrameKind) throws {
        #expect(MediaFrameKind.classify(video: hex(bytes)) == kind)
        #expect(MediaFrameKind.classify(video: hexBehindJunk(bytes)) == kind)
        #expect(try VideoTagHeader(parsing: hex(bytes)).kind == kind)
        #expect(kind.isVideo)
    }

    @Test(
        "Real audio fixtures",
        arguments: [
            (Fixtures.qvgaAudioSequenceHeader, MediaFrameKind.audioSequenceHeader),
            (Fixtures.hd720AudioSequenceHeader, .audioSequenceHeader),
            (Fixtures.qvgaAudioFramePrefix, .audioFrame),
        ]
    )
    func audio(bytes: String, kind: MediaFrameKind) throws {
        #expect(MediaFrameKind.classify(audio: hex(bytes)) == kind)
        #expect(MediaFrameKind.classify(audio: hexBehindJunk(bytes)) == kind)
        #expect(!kind.isVideo)
        #expect(kind.isSequenceHeader == (kind == .audioSequenceHeader))
    }

    @Test("Empty and one-byte payloads")
    func shortPayloads() {
        #expect(MediaFrameKind.classify(video: ByteBuffer()) == .videoInterframe)
        #expect(MediaFrameKind.classify(audio: ByteBuffer()) == .audioFrame)  // the "silence" message
        // An AVC key frame byte without its packet type might be a sequence header: not a key frame.
        #expect(MediaFrameKind.classify(video: hex("17")) == .videoInterframe)
        // A complete one-byte H.263 header is a key frame.
        #expect(MediaFrameKind.classify(video: hex("12")) == .videoKeyframe)
        #expect(MediaFrameKind.classify(video: hex("90")) == .videoInterframe)
        #expect(MediaFrameKind.classify(audio: hex("af")) == .audioFrame)
        #expect(MediaFrameKind.classify(audio: hex("2f")) == .audioFrame)
    }

    @Test("Every prefix of every fixture classifies without trapping")
    func prefixes() throws {
        let fixtures = [
            Fixtures.qvgaVideoSequenceHeader, Fixtures.qvgaKeyframePrefix, Fixtures.qvgaAudioSequenceHeader,
            "97 ff 0100" + String(repeating: "00", count: 257) + "03 61763031 aa",
            "96 11 61763031 00 000003 aabbcc",
        ]
        for fixture in fixtures {
            let full = hex(fixture)
            for length in 0...full.readableBytes {
                let prefix = try #require(full.getSlice(at: 0, length: length))
                _ = MediaFrameKind.classify(video: prefix)
                _ = MediaFrameKind.classify(audio: prefix)
            }
        }
    }

    @Test("Arbitrary bytes classify without trapping, and agree with the header parsers")
    func arbitraryBytes() {
        var generator = SplitMix64(seed: 0x6C69_7665_7265_6C61)
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...12, using: &generator)
            var buffer = ByteBuffer()
            for _ in 0..<length {
                buffer.writeInteger(UInt8.random(in: 0...255, using: &generator))
            }
            let video = MediaFrameKind.classify(video: buffer)
            #expect(video == ((try? VideoTagHeader(parsing: buffer))?.kind ?? .videoInterframe))
            let audio = MediaFrameKind.classify(audio: buffer)
            #expect(audio == ((try? AudioTagHeader(parsing: buffer))?.kind ?? .audioFrame))
        }
    }
}

/// A small deterministic generator, so that a failure can be reproduced.
private struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("FourCC")
struct FourCCTests {
    @Test("Constants are the big-endian ASCII codes of the specification")
    func constants() {
        #expect(FourCC.avc1.rawValue == 0x6176_6331)
        #expect(FourCC.hvc1.rawValue == 0x6876_6331)
        #expect(FourCC.av01.rawValue == 0x6176_3031)
        #expect(FourCC.vp09.rawValue == 0x7670_3039)
        #expect(FourCC.opus == FourCC("Opus"))
        #expect(FourCC.mp3.description == ".mp3")
        #expect(FourCC.eac3.description == "ec-3")
    }

    @Test("Only four ASCII characters make a code; others print as hex")
    func parsing() {
        #expect(FourCC("avc") == nil)
        #expect(FourCC("avc1x") == nil)
        #expect(FourCC("avé1") == nil)
        #expect(FourCC(rawValue: 0x0000_0001).description == "0x00000001")
    }
}
