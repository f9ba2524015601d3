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

@Suite("Legacy FLV video tag headers (FLV 10.1 E.4.3.1)")
struct LegacyVideoTagHeaderTests {
    @Test("An AVC sequence header from libx264")
    func avcSequenceHeader() throws {
        let header = try VideoTagHeader(parsing: hex(Fixtures.qvgaVideoSequenceHeader))
        #expect(header.frameType == .keyFrame)
        #expect(header.codec == .avc)
        #expect(header.packetType == .sequenceStart)
        #expect(!header.isEnhanced)
        #expect(header.multitrackType == nil)
        #expect(header.compositionTimeOffset == nil)
        #expect(header.headerLength == 5)
        #expect(header.isSequenceHeader)
        #expect(!header.isKeyframe)
        #expect(!header.isEndOfSequence)
        #expect(header.kind == .videoSequenceHeader)
    }

    @Test("An AVC key frame from libx264 carries its composition time")
    func avcKeyframe() throws {
        let header = try VideoTagHeader(parsing: hex(Fixtures.qvgaKeyframePrefix))
        #expect(header.frameType == .keyFrame)
        #expect(header.packetType == .codedFrames)
        #expect(header.compositionTimeOffset == 80)
        #expect(header.headerLength == 5)
        #expect(header.isKeyframe)
        #expect(header.kind == .videoKeyframe)
    }

    @Test("An AVC inter frame from libx264")
    func avcInterframe() throws {
        let header = try VideoTagHeader(parsing: hex(Fixtures.qvgaInterframePrefix))
        #expect(header.frameType == .interFrame)
        #expect(header.compositionTimeOffset == 200)
        #expect(!header.isKeyframe)
        #expect(header.kind == .videoInterframe)
    }

    @Test("An AVC end of sequence from ffmpeg")
    func avcEndOfSequence() throws {
        let header = try VideoTagHeader(parsing: hex(Fixtures.qvgaEndOfSequence))
        #expect(header.packetType == .sequenceEnd)
        #expect(header.isEndOfSequence)
        #expect(!header.isKeyframe)
        #expect(header.compositionTimeOffset == nil)
        #expect(header.kind == .videoEndOfSequence)
    }

    @Test(
        "The composition time is a signed 24-bit integer",
        arguments: [
            ("2701ffffd8", Int32(-40)),
            ("27017fffff", Int32(8_388_607)),
            ("2701800000", Int32(-8_388_608)),
            ("2701000001", Int32(1)),
            ("2701ffffff", Int32(-1)),
        ]
    )
    func signedCompositionTime(bytes: String, expected: Int32) throws {
        let header = try VideoTagHeader(parsing: hex(bytes))
        #expect(header.compositionTimeOffset == expected)
    }

    @Test("Codec id 12 is HEVC in the AVC layout")
    func hevcCodecID12() throws {
        let sequenceHeader = try VideoTagHeader(parsing: hex("1c00000000" + Fixtures.hevc320x240Record))
        #expect(sequenceHeader.codec == .hevc)
        #expect(sequenceHeader.isSequenceHeader)
        #expect(sequenceHeader.headerLength == 5)
        let record = try HEVCDecoderConfigurationRecord(
            parsing: try #require(sequenceHeader.codecData(in: hex("1c00000000" + Fixtures.hevc320x240Record)))
        )
        #expect(record.generalProfileIDC == 1)

        let keyframe = try VideoTagHeader(parsing: hex("1c01000021 00000010"))
        #expect(keyframe.codec == .hevc)
        #expect(keyframe.compositionTimeOffset == 33)
        #expect(keyframe.kind == .videoKeyframe)
    }

    @Test(
        "Legacy codecs without a packet type have a one-byte header",
        arguments: [
            ("12", VideoCodec.h263, MediaFrameKind.videoKeyframe),
            ("22", VideoCodec.h263, MediaFrameKind.videoInterframe),
            ("32", VideoCodec.h263, MediaFrameKind.videoInterframe),
            ("13", VideoCodec.screen, MediaFrameKind.videoKeyframe),
            ("24", VideoCodec.vp6, MediaFrameKind.videoInterframe),
            ("15", VideoCodec.vp6Alpha, MediaFrameKind.videoKeyframe),
            ("26", VideoCodec.screenV2, MediaFrameKind.videoInterframe),
            ("42", VideoCodec.h263, MediaFrameKind.videoKeyframe),
            ("1b", VideoCodec.unknownCodecID(11), MediaFrameKind.videoKeyframe),
            ("20", VideoCodec.unknownCodecID(0), MediaFrameKind.videoInterframe),
            ("02", VideoCodec.h263, MediaFrameKind.videoInterframe),
        ]
    )
    func legacyCodecs(bytes: String, codec: VideoCodec, kind: MediaFrameKind) throws {
        let header = try VideoTagHeader(parsing: hex(bytes + "aabbcc"))
        #expect(header.codec == codec)
        #expect(header.packetType == nil)
        #expect(header.compositionTimeOffset == nil)
        #expect(header.headerLength == 1)
        #expect(header.kind == kind)
        #expect(MediaFrameKind.classify(video: hex(bytes)) == kind)
    }

    @Test("A legacy command frame carries one command byte and no packet type")
    func legacyCommandFrame() throws {
        let start = try VideoTagHeader(parsing: hex("5700"))
        #expect(start.frameType == .command)
        #expect(start.codec == .avc)
        #expect(start.command == .startSeek)
        #expect(start.packetType == nil)
        #expect(start.headerLength == 2)
        #expect(start.isCommand)
        #expect(!start.isSequenceHeader)
        #expect(start.kind == .videoCommand)

        let end = try VideoTagHeader(parsing: hex("5201"))
        #expect(end.codec == .h263)
        #expect(end.command == .endSeek)
        #expect(end.kind == .videoCommand)
    }

    @Test("An AVCPacketType above 2 is malformed and classifies as an inter frame")
    func invalidAVCPacketType() throws {
        let error = #expect(throws: MediaError.self) { try VideoTagHeader(parsing: hex("1703000000")) }
        #expect(error?.code == .malformedTagHeader)
        #expect(MediaFrameKind.classify(video: hex("1703000000")) == .videoInterframe)
    }

    @Test("Offsets are relative to the reader index")
    func readerIndex() throws {
        let payload = hexBehindJunk(Fixtures.qvgaKeyframePrefix)
        let header = try VideoTagHeader(parsing: payload)
        #expect(header.compositionTimeOffset == 80)
        let data = try #require(header.codecData(in: payload))
        #expect(data.readableBytesView.elementsEqual([0x00, 0x00, 0x02, 0xAB, 0x06, 0x05, 0xFF]))
    }

    @Test("The codec data is a slice of the payload, not a copy")
    func codecDataSharesStorage() throws {
        let payload = hex(Fixtures.qvgaVideoSequenceHeader)
        let header = try VideoTagHeader(parsing: payload)
        let data = try #require(header.codecData(in: payload))
        let payloadBase = payload.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let dataBase = data.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(dataBase == payloadBase + 5)
        #expect(header.codecData(in: hex("17")) == nil)
    }
}

@Suite("Enhanced RTMP video tag headers (veovera/enhanced-rtmp v1, v2)")
struct EnhancedVideoTagHeaderTests {
    @Test("HEVC SequenceStart with a libx265 hvcC")
    func hevcSequenceStart() throws {
        let payload = hex("90 68766331" + Fixtures.hevc320x240Record)
        let header = try VideoTagHeader(parsing: payload)
        #expect(header.isEnhanced)
        #expect(header.frameType == .keyFrame)
        #expect(header.codec == .hevc)
        #expect(header.codec?.fourCC == .hvc1)
        #expect(header.packetType == .sequenceStart)
        #expect(header.headerLength == 5)
        #expect(header.compositionTimeOffset == nil)
        #expect(header.kind == .videoSequenceHeader)

        let record = try HEVCDecoderConfigurationRecord(parsing: try #require(header.codecData(in: payload)))
        let sps = try record.parseSequenceParameterSet()
        #expect(sps.width == 320)
        #expect(sps.height == 240)
    }

    @Test("HEVC CodedFrames carry an SI24 composition time; CodedFramesX imply zero")
    func hevcCodedFrames() throws {
        let keyframe = try VideoTagHeader(parsing: hex("91 68766331 fffff6 00000020"))
        #expect(keyframe.packetType == .codedFrames)
        #expect(keyframe.compositionTimeOffset == -10)
        #expect(keyframe.headerLength == 8)
        #expect(keyframe.kind == .videoKeyframe)

        let interframe = try VideoTagHeader(parsing: hex("a3 68766331 00000020"))
        #expect(interframe.frameType == .interFrame)
        #expect(interframe.packetType == .codedFramesX)
        #expect(interframe.compositionTimeOffset == 0)
        #expect(interframe.headerLength == 5)
        #expect(interframe.kind == .videoInterframe)
    }

    @Test("AVC over enhanced RTMP (avc1) with a libx264 avcC")
    func avc1() throws {
        let record = String(Fixtures.hd720VideoSequenceHeader.dropFirst(10))
        let payload = hex("90 61766331" + record)
        let header = try VideoTagHeader(parsing: payload)
        #expect(header.codec == .avc)
        #expect(header.isSequenceHeader)
        let avcC = try AVCDecoderConfigurationRecord(parsing: try #require(header.codecData(in: payload)))
        #expect(try avcC.parseSequenceParameterSet().width == 1280)

        let frame = try VideoTagHeader(parsing: hex("91 61766331 000050"))
        #expect(frame.compositionTimeOffset == 80)
        #expect(frame.headerLength == 8)
    }

    @Test("AV1: SequenceStart, and CodedFrames without composition time")
    func av1() throws {
        let sequenceStart = try VideoTagHeader(parsing: hex("90 61763031 81000c00"))
        #expect(sequenceStart.codec == .av1)
        #expect(sequenceStart.kind == .videoSequenceHeader)

        let keyframe = try VideoTagHeader(parsing: hex("91 61763031 12000a0b"))
        #expect(keyframe.codec == .av1)
        #expect(keyframe.compositionTimeOffset == nil)
        #expect(keyframe.headerLength == 5)
        #expect(keyframe.kind == .videoKeyframe)

        let descriptor = try VideoTagHeader(parsing: hex("95 61763031 80"))
        #expect(descriptor.packetType == .mpeg2TSSequenceStart)
        #expect(descriptor.isSequenceHeader)
    }

    @Test("VP9 and VP8")
    func vp9AndVP8() throws {
        let sequenceStart = try VideoTagHeader(parsing: hex("90 76703039 01000000 0a"))
        #expect(sequenceStart.codec == .vp9)
        #expect(sequenceStart.kind == .videoSequenceHeader)

        let interframe = try VideoTagHeader(parsing: hex("a1 76703039 8649"))
        #expect(interframe.codec == .vp9)
        #expect(interframe.compositionTimeOffset == nil)
        #expect(interframe.kind == .videoInterframe)

        let vp8 = try VideoTagHeader(parsing: hex("91 76703038 9d012a"))
        #expect(vp8.codec == .vp8)
        #expect(vp8.kind == .videoKeyframe)
    }

    @Test("SequenceEnd")
    func sequenceEnd() throws {
        let header = try VideoTagHeader(parsing: hex("92 68766331"))
        #expect(header.isEndOfSequence)
        #expect(header.kind == .videoEndOfSequence)
    }

    @Test("An unknown FOURCC is kept and still classified")
    func unknownFourCC() throws {
        let header = try VideoTagHeader(parsing: hex("91 76766331 00"))
        let fourCC = try #require(FourCC("vvc1"))
        #expect(header.codec == .unknownFourCC(fourCC))
        #expect(header.codec?.fourCC == fourCC)
        #expect(header.compositionTimeOffset == nil)
        #expect(header.kind == .videoKeyframe)
        #expect(fourCC.description == "vvc1")
    }

    @Test("Metadata ignores the frame type and is not a picture")
    func metadata() throws {
        // "colorInfo" as an AMF0 string, the start of the metadata body.
        let header = try VideoTagHeader(parsing: hex("94 68766331 020009636f6c6f72496e666f"))
        #expect(header.packetType == .metadata)
        #expect(header.isMetadata)
        #expect(!header.isKeyframe)
        #expect(header.headerLength == 5)
        #expect(header.kind == .videoCommand)

        // Frame type 5 does not make Metadata a command: the FOURCC still follows.
        let withCommandFrameType = try VideoTagHeader(parsing: hex("d4 68766331 02"))
        #expect(withCommandFrameType.isMetadata)
        #expect(!withCommandFrameType.isCommand)
        #expect(withCommandFrameType.codec == .hevc)
    }

    @Test("A command frame carries a command byte instead of a FOURCC")
    func commandFrame() throws {
        let header = try VideoTagHeader(parsing: hex("d1 01"))
        #expect(header.frameType == .command)
        #expect(header.command == .endSeek)
        #expect(header.codec == nil)
        #expect(header.headerLength == 2)
        #expect(header.kind == .videoCommand)
    }

    @Test("ModEx blocks are skipped, with 8-bit and 16-bit sizes, chained")
    func modEx() throws {
        // TimestampOffsetNano: 3 bytes of data (size - 1 = 2), then ModExType 0 and packet type CodedFrames.
        let nano = try VideoTagHeader(parsing: hex("97 02 07a120 01 68766331 000028 00000010"))
        #expect(nano.packetType == .codedFrames)
        #expect(nano.codec == .hevc)
        #expect(nano.compositionTimeOffset == 40)
        #expect(nano.headerLength == 13)
        #expect(nano.kind == .videoKeyframe)

        // A 257-byte block: the UI8 is 255, so a UI16 of 256 follows.
        let wide = try VideoTagHeader(
            parsing: hex("97 ff 0100" + String(repeating: "00", count: 257) + "03 61763031 aa")
        )
        #expect(wide.packetType == .codedFramesX)
        #expect(wide.codec == .av1)
        #expect(wide.headerLength == 1 + 1 + 2 + 257 + 1 + 4)

        let chained = try VideoTagHeader(parsing: hex("a7 00 aa 07 01 bbcc 00 76703039"))
        #expect(chained.packetType == .sequenceStart)
        #expect(chained.codec == .vp9)
        #expect(chained.headerLength == 12)
        #expect(chained.kind == .videoSequenceHeader)
    }

    @Test("Multitrack is recognised, not demultiplexed")
    func multitrack() throws {
        let oneTrack = try VideoTagHeader(parsing: hex("96 00 68766331 00" + Fixtures.hevc320x240Record))
        #expect(oneTrack.multitrackType == .oneTrack)
        #expect(oneTrack.isMultitrack)
        #expect(oneTrack.codec == .hevc)
        #expect(oneTrack.packetType == .sequenceStart)
        #expect(oneTrack.headerLength == 6)
        #expect(oneTrack.kind == .videoSequenceHeader)

        let manyTracks = try VideoTagHeader(parsing: hex("96 11 61763031 00 000003 aabbcc 01 000001 dd"))
        #expect(manyTracks.multitrackType == .manyTracks)
        #expect(manyTracks.codec == .av1)
        #expect(manyTracks.compositionTimeOffset == nil)
        #expect(manyTracks.kind == .videoKeyframe)

        let manyCodecs = try VideoTagHeader(parsing: hex("a6 21 68766331 00 000006 000000aabbcc"))
        #expect(manyCodecs.multitrackType == .manyTracksManyCodecs)
        #expect(manyCodecs.codec == nil)
        #expect(manyCodecs.headerLength == 2)
        #expect(manyCodecs.compositionTimeOffset == nil)
        #expect(manyCodecs.kind == .videoInterframe)
    }

    @Test(
        "Invalid and reserved enhanced headers throw and classify as inter frames",
        arguments: [
            ("96 06 68766331", MediaError.Code.malformedTagHeader),  // multitrack inside multitrack
            ("96 07 68766331", MediaError.Code.malformedTagHeader),  // ModEx inside multitrack
            ("96 31 68766331", MediaError.Code.unsupported),  // reserved AvMultitrackType 3
            ("98 68766331", MediaError.Code.unsupported),  // reserved VideoPacketType 8
            ("9f 68766331", MediaError.Code.unsupported),  // reserved VideoPacketType 15
        ]
    )
    func invalid(bytes: String, code: MediaError.Code) throws {
        let error = #expect(throws: MediaError.self) { try VideoTagHeader(parsing: hex(bytes)) }
        #expect(error?.code == code)
        #expect(MediaFrameKind.classify(video: hex(bytes)) == .videoInterframe)
    }
}

@Suite("Truncated video tag headers")
struct TruncatedVideoTagHeaderTests {
    @Test(
        "Every short header throws truncated",
        arguments: [
            "",
            "17",
            "1700",
            "17010000",
            "1c0100",
            "57",
            "90",
            "90 687663",
            "91 68766331",
            "91 68766331 0000",
            "d1",
            "97",
            "97 02 07a1",
            "97 02 07a120",
            "97 ff 01",
            "96",
            "96 00 6876",
            "a6",
        ]
    )
    func truncated(bytes: String) throws {
        let error = #expect(throws: MediaError.self) { try VideoTagHeader(parsing: hex(bytes)) }
        #expect(error?.code == .truncated)
        #expect(MediaFrameKind.classify(video: hex(bytes)) == .videoInterframe)
    }

    @Test("The message names what was cut short")
    func message() throws {
        let error = #expect(throws: MediaError.self) { try VideoTagHeader(parsing: hex("1701")) }
        #expect(error?.description == "truncated: AVC video tag header needs 5 bytes, only 2 available")
    }
}
