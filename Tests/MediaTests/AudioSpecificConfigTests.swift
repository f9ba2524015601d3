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

@Suite("AAC AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1)")
struct AudioSpecificConfigTests {
    @Test("AAC LC 44.1 kHz mono from ffmpeg, with its SBR sync extension ignored")
    func lcMono() throws {
        let config = try AudioSpecificConfig(parsing: hex("120856e500"))
        #expect(config.audioObjectType == 2)
        #expect(config.samplingFrequencyIndex == 4)
        #expect(config.samplingFrequency == 44100)
        #expect(config.channelConfiguration == 1)
        #expect(config.channelCount == 1)
        #expect(config.extensionAudioObjectType == nil)
        #expect(!config.hasParametricStereo)
    }

    @Test("HE-AAC with explicit SBR signalling: object type 5, then the LC core")
    func heAAC() throws {
        // 00101 (SBR) 0110 (24 kHz) 0010 (stereo) 0011 (48 kHz) 00010 (LC)
        let config = try AudioSpecificConfig(parsing: hex("2b1188"))
        #expect(config.audioObjectType == 2)
        #expect(config.extensionAudioObjectType == 5)
        #expect(config.samplingFrequency == 24000)
        #expect(config.extensionSamplingFrequency == 48000)
        #expect(config.channelCount == 2)
        #expect(!config.hasParametricStereo)
    }

    @Test("HE-AAC v2: object type 29 adds parametric stereo")
    func heAACv2() throws {
        // 11101 (PS) 0110 (24 kHz) 0001 (mono) 0011 (48 kHz) 00010 (LC)
        let config = try AudioSpecificConfig(parsing: hex("eb0988"))
        #expect(config.audioObjectType == 2)
        #expect(config.extensionAudioObjectType == 5)
        #expect(config.hasParametricStereo)
        #expect(config.channelCount == 1)
    }

    @Test("The escape object type 31 and an explicit 24-bit sampling frequency")
    func escapes() throws {
        // 11111 001010 (32 + 10 = 42, USAC) 1111 (explicit) 0x00ac44 (44100) 0010 (stereo)
        let config = try AudioSpecificConfig(parsing: hex("f95e01588840"))
        #expect(config.audioObjectType == 42)
        #expect(config.samplingFrequencyIndex == 15)
        #expect(config.samplingFrequency == 44100)
        #expect(config.channelCount == 2)
    }

    @Test(
        "Channel configurations",
        arguments: [(0, nil), (1, 1), (2, 2), (6, 6), (7, 8), (8, nil), (11, 7), (12, 8), (13, 24), (14, 8), (15, nil)]
            as [(UInt8, Int?)]
    )
    func channels(configuration: UInt8, count: Int?) throws {
        // 00010 (LC) 0100 (44.1 kHz) then the 4-bit configuration.
        var bytes = hex("1200")
        bytes.setInteger(configuration << 3, at: 1)
        let config = try AudioSpecificConfig(parsing: bytes)
        #expect(config.channelConfiguration == configuration)
        #expect(config.channelCount == count)
    }

    @Test(
        "Invalid configs",
        arguments: [
            ("1690", MediaError.Code.invalidConfigurationRecord),  // sampling frequency index 13 is reserved
            ("0210", MediaError.Code.invalidConfigurationRecord),  // object type 0
            ("178000000010", MediaError.Code.invalidConfigurationRecord),  // explicit frequency 0
            ("", MediaError.Code.truncated),
            ("12", MediaError.Code.truncated),
            ("f9", MediaError.Code.truncated),
            ("2b11", MediaError.Code.truncated),
        ]
    )
    func invalid(bytes: String, code: MediaError.Code) throws {
        let error = #expect(throws: MediaError.self) { try AudioSpecificConfig(parsing: hex(bytes)) }
        #expect(error?.code == code)
    }
}
