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

@Suite("AVCDecoderConfigurationRecord from parameter sets, as ffmpeg writes it")
struct AVCDecoderConfigurationRecordWritingTests {
    /// Each fixture is a sequence header from ffmpeg's FLV muxer (`ff_isom_write_avcc`): the record made from its
    /// parameter sets must be the same bytes, extension for the high profiles included.
    @Test(arguments: [
        Fixtures.qvgaVideoSequenceHeader, Fixtures.hd720VideoSequenceHeader, Fixtures.odd642x362VideoSequenceHeader,
        Fixtures.fwvga854x480VideoSequenceHeader, Fixtures.interlaced1080VideoSequenceHeader,
        Fixtures.progressive1080p60VideoSequenceHeader,
    ])
    func matchesFFmpegByteForByte(sequenceHeader: String) throws {
        let payload = hex(sequenceHeader)
        let original = try #require(VideoTagHeader(parsing: payload).codecData(in: payload))
        let parsed = try AVCDecoderConfigurationRecord(parsing: original)
        let made = try AVCDecoderConfigurationRecord(
            sequenceParameterSets: parsed.sequenceParameterSets,
            pictureParameterSets: parsed.pictureParameterSets
        )
        #expect(made.bytes == original)
        #expect(parsed.bytes == original)
        #expect(made == parsed)
    }

    @Test func refusesWhatCannotMakeARecord() {
        let sps = hex("6742c00ad9047b0110000003001000000303c8f1226480")
        let pps = hex("68cb83cb20")
        #expect(throws: MediaError.self) {
            try AVCDecoderConfigurationRecord(sequenceParameterSets: [sps], pictureParameterSets: [])
        }
        #expect(throws: MediaError.self) {
            try AVCDecoderConfigurationRecord(sequenceParameterSets: [pps], pictureParameterSets: [pps])
        }
        #expect(throws: MediaError.self) {
            try AVCDecoderConfigurationRecord(
                sequenceParameterSets: [sps],
                pictureParameterSets: [pps],
                nalUnitLengthSize: 3
            )
        }
    }
}
