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

/// Golden bytes captured from real encoders (ffmpeg 5.1.9 with libx264, libx265 and its native AAC encoder).
///
/// The FLV files were made with, for example,
/// `ffmpeg -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine -t 1 -c:v libx264 -g 25 -c:a aac -f flv a.flv`
/// and the tag bodies taken from the file by walking its tag structure (9-byte file header and 4-byte previous
/// tag size, then 11-byte tag headers). A tag body is exactly the payload of the RTMP message that carries it.
enum Fixtures {
    /// 320x240 at 25 fps, `testsrc` (RGB) encoded by libx264 as High 4:4:4 Predictive (profile 244), level 1.3.
    /// The SPS contains emulation-prevention bytes (`00 00 03`) and a VUI with timing (1/50).
    static let qvgaVideoSequenceHeader =
        "170000000001f4000dffe1001967f4000d919b28283f6022000003000200000300641e28532c01000668ebe3c44844ff"
        + "f8f800"
    /// The AAC sequence header of the same file: AAC LC, 44100 Hz, mono (`sine` is mono), then ffmpeg's
    /// backward-compatible SBR sync extension (`56e500`).
    static let qvgaAudioSequenceHeader = "af00120856e500"
    /// The first key frame of the same file (first 12 bytes): AVC NALU with composition time 80 ms.
    static let qvgaKeyframePrefix = "1701000050000002ab0605ff"
    /// The second video frame of the same file (first 12 bytes): an inter frame with composition time 200 ms.
    static let qvgaInterframePrefix = "27010000c800000270419a24"
    /// The last video tag of the same file: AVC end of sequence.
    static let qvgaEndOfSequence = "1702000000"
    /// The second audio tag of the same file (first 8 bytes): raw AAC.
    static let qvgaAudioFramePrefix = "af01de02004c6176"

    /// 1280x720 at 30 fps, `-pix_fmt yuv420p -profile:v high`: High profile (100), level 3.1, with the avcC
    /// high-profile extension (chroma format 1, 8 bits).
    static let hd720VideoSequenceHeader =
        "17000000000164001fffe1001a6764001facd9405005bb0110000003001000000303c0f183196001000668ebe3cb22c0"
        + "fdf8f800"
    /// The AAC sequence header of the same file, `-f lavfi -i sine=sample_rate=48000 -ac 2`: LC, 48000 Hz,
    /// stereo.
    static let hd720AudioSequenceHeader = "af00119056e500"

    /// 642x362 at 25 fps, Main profile (77): coded as 656x368 (41x23 macroblocks) and cropped by 14 and 6.
    static let odd642x362VideoSequenceHeader =
        "1700000000014d401effe1001a674d401eeca05217f1126022000003000200000300641e2c5b2c01000568ebe3cb20"

    /// 854x480 at 30000/1001 fps, Constrained Baseline (66): coded as 864x480 and cropped by 10 on the right.
    static let fwvga854x480VideoSequenceHeader =
        "17000000000142c01fffe100186742c01fd900d83de6f01100000303e90000ea600f18324801000568cb83cb20"

    /// 1920x1080 at 25 fps interlaced (`-flags +ildct+ilme -x264-params tff=1`), High profile (100): field coding
    /// (`frame_mbs_only_flag` 0), 34 map units of 32 lines, cropped by 8 lines in units of 4.
    static let interlaced1080VideoSequenceHeader =
        "170000000001640028ffe1001a67640028acd94078044fde0220000003002000000643e2c5b2c001000668fba3cb22c0"
        + "fdf8f800"

    /// 1920x1080 at 60 fps progressive, High profile (100): 68 macroblock rows cropped by 8 lines.
    static let progressive1080p60VideoSequenceHeader =
        "17000000000164002affe1001b6764002aacd940780227e5c044000003000400000301e03c60c65801000668ebe3cb22c0"
        + "fdf8f800"

    /// The `hvcC` of a 320x240 libx265 Main-profile stream (`-c:v libx265 -f mp4`, level 2), with its VPS, SPS
    /// and PPS arrays; the SEI array (x265's 2 KB version banner) was dropped and `numOfArrays` set to 3. ffmpeg
    /// 5.1 cannot write HEVC into FLV, so tests wrap it in an enhanced RTMP header by hand.
    static let hevc320x240Record =
        "0101600000009000000000003cf000fcfdf8f800000f03200001001840010c01ffff01600000030090000003000003"
        + "003c959809210001002a42010101600000030090000003000003003ca00a080f165959a4932bc05a020000030002"
        + "00000300321022000100074401c172b46240"
    /// The same for 642x362 (level 2.1): coded as 648x368 and cropped through the conformance window.
    static let hevc642x362Record =
        "0101600000009000000000003ff000fcfdf8f800000f03200001001840010c01ffff01600000030090000003000003"
        + "003f959809210001002c42010101600000030090000003000003003fa005120171c9265959a4932bc05a020000030002"
        + "00000300321022000100074401c172b46240"
}

/// A buffer from hex digits; whitespace is ignored so that fixtures can be split and grouped.
func hex(_ digits: String) -> ByteBuffer {
    let compact = String(digits.unicodeScalars.filter { !$0.properties.isWhitespace })
    return try! ByteBuffer(plainHexEncodedBytes: compact)
}

/// The same bytes behind a non-zero reader index, to prove that parsers read relative to it.
func hexBehindJunk(_ digits: String) -> ByteBuffer {
    var buffer = ByteBuffer(bytes: [0xDE, 0xAD, 0xBE, 0xEF])
    buffer.writeImmutableBuffer(hex(digits))
    buffer.moveReaderIndex(forwardBy: 4)
    return buffer
}
