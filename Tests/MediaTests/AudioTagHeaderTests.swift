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

@Suite("Legacy FLV audio tag headers (FLV 10.1 E.4.2.1)")
struct LegacyAudioTagHeaderTests {
    @Test("An AAC sequence header from ffmpeg: 44.1 kHz mono")
    func aacSequenceHeader() throws {
        let payload = hex(Fixtures.qvgaAudioSequenceHeader)
        let header = try AudioTagHeader(parsing: payload)
        #expect(header.codec == .aac)
        #expect(header.packetType == .sequenceStart)
        #expect(!header.isEnhanced)
        // Flash signals 44 kHz, 16 bits, stereo for AAC whatever the stream is; the config is authoritative.
        #expect(header.sampleRate == 44100)
        #expect(header.bitsPerSample == 16)
        #expect(header.channelCount == 2)
        #expect(header.headerLength == 2)
        #expect(header.isSequenceHeader)
        #expect(header.kind == .audioSequenceHeader)

        let config = try AudioSpecificConfig(parsing: try #require(header.codecData(in: payload)))
        #expect(config.audioObjectType == 2)
        #expect(config.samplingFrequency == 44100)
        #expect(config.channelConfiguration == 1)
        #expect(config.channelCount == 1)
    }

    @Test("An AAC sequence header from ffmpeg: 48 kHz stereo")
    func aacSequenceHeader48k() throws {
        let payload = hexBehindJunk(Fixtures.hd720AudioSequenceHeader)
        let header = try AudioTagHeader(parsing: payload)
        let config = try AudioSpecificConfig(parsing: try #require(header.codecData(in: payload)))
        #expect(config.audioObjectType == 2)
        #expect(config.samplingFrequencyIndex == 3)
        #expect(config.samplingFrequency == 48000)
        #expect(config.channelCount == 2)
        #expect(config.extensionAudioObjectType == nil)
    }

    @Test("A raw AAC frame from ffmpeg")
    func aacRaw() throws {
        let header = try AudioTagHeader(parsing: hex(Fixtures.qvgaAudioFramePrefix))
        #expect(header.packetType == .codedFrames)
        #expect(!header.isSequenceHeader)
        #expect(header.kind == .audioFrame)
    }

    @Test(
        "Sound formats, rates, sizes and channels",
        arguments: [
            ("2f", AudioCodec.mp3, 44100, 16, 2),
            ("2c", AudioCodec.mp3, 44100, 8, 1),
            ("e2", AudioCodec.mp3At8kHz, 5512, 16, 1),
            ("b2", AudioCodec.speex, 5512, 16, 1),
            ("0e", AudioCodec.linearPCMPlatformEndian, 44100, 16, 1),
            ("1d", AudioCodec.adpcm, 44100, 8, 2),
            ("37", AudioCodec.linearPCMLittleEndian, 11025, 16, 2),
            ("46", AudioCodec.nellymoser16kHzMono, 11025, 16, 1),
            ("5a", AudioCodec.nellymoser8kHzMono, 22050, 16, 1),
            ("69", AudioCodec.nellymoser, 22050, 8, 2),
            ("72", AudioCodec.g711ALaw, 5512, 16, 1),
            ("82", AudioCodec.g711MuLaw, 5512, 16, 1),
            ("f2", AudioCodec.deviceSpecific, 5512, 16, 1),
            ("c2", AudioCodec.unknownSoundFormat(12), 5512, 16, 1),
            ("d2", AudioCodec.unknownSoundFormat(13), 5512, 16, 1),
        ]
    )
    func legacyFormats(bytes: String, codec: AudioCodec, rate: Int, bits: Int, channels: Int) throws {
        let header = try AudioTagHeader(parsing: hex(bytes + "fffb"))
        #expect(header.codec == codec)
        #expect(header.sampleRate == rate)
        #expect(header.bitsPerSample == bits)
        #expect(header.channelCount == channels)
        #expect(header.packetType == nil)
        #expect(header.headerLength == 1)
        #expect(header.kind == .audioFrame)
    }

    @Test("An AACPacketType above 1 is malformed")
    func invalidAACPacketType() throws {
        let error = #expect(throws: MediaError.self) { try AudioTagHeader(parsing: hex("af02")) }
        #expect(error?.code == .malformedTagHeader)
        #expect(MediaFrameKind.classify(audio: hex("af02")) == .audioFrame)
    }
}

@Suite("Enhanced RTMP audio tag headers (veovera/enhanced-rtmp v2)")
struct EnhancedAudioTagHeaderTests {
    @Test(
        "Every audio FOURCC is recognised",
        arguments: [
            ("4f707573", AudioCodec.opus),
            ("664c6143", AudioCodec.flac),
            ("61632d33", AudioCodec.ac3),
            ("65632d33", AudioCodec.eac3),
            ("6d703461", AudioCodec.aac),
            ("2e6d7033", AudioCodec.mp3),
        ]
    )
    func fourCCs(fourCC: String, codec: AudioCodec) throws {
        let sequenceStart = try AudioTagHeader(parsing: hex("90" + fourCC + "0102"))
        #expect(sequenceStart.isEnhanced)
        #expect(sequenceStart.codec == codec)
        #expect(sequenceStart.codec?.fourCC?.rawValue == hex(fourCC).getInteger(at: 0, as: UInt32.self))
        #expect(sequenceStart.packetType == .sequenceStart)
        #expect(sequenceStart.sampleRate == nil)
        #expect(sequenceStart.headerLength == 5)
        #expect(sequenceStart.kind == .audioSequenceHeader)

        let frame = try AudioTagHeader(parsing: hex("91" + fourCC + "0102"))
        #expect(frame.packetType == .codedFrames)
        #expect(frame.kind == .audioFrame)
    }

    @Test("AAC over enhanced RTMP (mp4a) carries the same AudioSpecificConfig")
    func mp4a() throws {
        let payload = hex("90 6d703461 1190")
        let header = try AudioTagHeader(parsing: payload)
        let config = try AudioSpecificConfig(parsing: try #require(header.codecData(in: payload)))
        #expect(config.samplingFrequency == 48000)
        #expect(config.channelCount == 2)
    }

    @Test("SequenceEnd and MultichannelConfig are not sequence headers")
    func otherPacketTypes() throws {
        let end = try AudioTagHeader(parsing: hex("92 4f707573"))
        #expect(end.isEndOfSequence)
        #expect(end.kind == .audioFrame)

        let multichannel = try AudioTagHeader(parsing: hex("94 4f707573 01 06 0000003f"))
        #expect(multichannel.packetType == .multichannelConfig)
        #expect(multichannel.kind == .audioFrame)
    }

    @Test("ModEx blocks are skipped")
    func modEx() throws {
        let header = try AudioTagHeader(parsing: hex("97 02 0f4240 00 4f707573 4f707573486561640102"))
        #expect(header.packetType == .sequenceStart)
        #expect(header.codec == .opus)
        #expect(header.headerLength == 10)
        #expect(header.kind == .audioSequenceHeader)
    }

    @Test("Multitrack is recognised, not demultiplexed")
    func multitrack() throws {
        let oneTrack = try AudioTagHeader(parsing: hex("95 00 4f707573 00 4f707573486561640102"))
        #expect(oneTrack.multitrackType == .oneTrack)
        #expect(oneTrack.codec == .opus)
        #expect(oneTrack.headerLength == 6)
        #expect(oneTrack.kind == .audioSequenceHeader)

        let manyCodecs = try AudioTagHeader(parsing: hex("95 21 6d703461 00 000002 aabb"))
        #expect(manyCodecs.multitrackType == .manyTracksManyCodecs)
        #expect(manyCodecs.codec == nil)
        #expect(manyCodecs.headerLength == 2)
        #expect(manyCodecs.kind == .audioFrame)
    }

    @Test("An unknown FOURCC is kept")
    func unknownFourCC() throws {
        let header = try AudioTagHeader(parsing: hex("91 61632d34"))
        #expect(header.codec == .unknownFourCC(try #require(FourCC("ac-4"))))
    }

    @Test(
        "Invalid and reserved enhanced headers throw and classify as audio frames",
        arguments: [
            ("93 4f707573", MediaError.Code.unsupported),  // reserved AudioPacketType 3
            ("96 4f707573", MediaError.Code.unsupported),  // reserved AudioPacketType 6
            ("98 4f707573", MediaError.Code.unsupported),  // reserved AudioPacketType 8
            ("95 05 4f707573", MediaError.Code.malformedTagHeader),  // multitrack inside multitrack
            ("95 30 4f707573", MediaError.Code.unsupported),  // reserved AvMultitrackType 3
        ]
    )
    func invalid(bytes: String, code: MediaError.Code) throws {
        let error = #expect(throws: MediaError.self) { try AudioTagHeader(parsing: hex(bytes)) }
        #expect(error?.code == code)
        #expect(MediaFrameKind.classify(audio: hex(bytes)) == .audioFrame)
    }

    @Test(
        "Every short header throws truncated",
        arguments: ["", "af", "90", "90 4f7075", "97", "97 02 0f", "97 02 0f4240", "95", "95 00 4f"]
    )
    func truncated(bytes: String) throws {
        let error = #expect(throws: MediaError.self) { try AudioTagHeader(parsing: hex(bytes)) }
        #expect(error?.code == .truncated)
        #expect(MediaFrameKind.classify(audio: hex(bytes)) == .audioFrame)
    }
}
