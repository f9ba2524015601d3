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

@Suite("HEVCDecoderConfigurationRecord and H.265 SPS (ISO/IEC 14496-15 8.3.3.1, H.265 7.3.2.2.1)")
struct HEVCDecoderConfigurationRecordTests {
    @Test("320x240 Main from libx265")
    func qvga() throws {
        let hvcC = try HEVCDecoderConfigurationRecord(parsing: hex(Fixtures.hevc320x240Record))
        #expect(hvcC.configurationVersion == 1)
        #expect(hvcC.generalProfileSpace == 0)
        #expect(!hvcC.generalTierFlag)
        #expect(hvcC.generalProfileIDC == 1)
        #expect(hvcC.generalProfileCompatibilityFlags == 0x6000_0000)
        #expect(hvcC.generalConstraintIndicatorFlags == 0x9000_0000_0000)
        #expect(hvcC.generalLevelIDC == 60)
        #expect(hvcC.chromaFormatIDC == 1)
        #expect(hvcC.bitDepthLuma == 8)
        #expect(hvcC.bitDepthChroma == 8)
        #expect(hvcC.numberOfTemporalLayers == 1)
        #expect(hvcC.nalUnitLengthSize == 4)
        #expect(hvcC.arrays.map(\.nalUnitType) == [32, 33, 34])
        #expect(hvcC.arrays.allSatisfy { $0.nalUnits.count == 1 && !$0.isComplete })

        let sps = try hvcC.parseSequenceParameterSet()
        #expect(sps.generalProfileIDC == 1)
        #expect(sps.generalLevelIDC == 60)
        #expect(sps.chromaFormatIDC == 1)
        #expect(sps.conformanceWindow == nil)
        #expect(sps.width == 320)
        #expect(sps.height == 240)
        #expect(sps.bitDepthLuma == 8)
    }

    @Test("642x362 Main from libx265: the conformance window crops in 4:2:0 units")
    func oddSize() throws {
        let hvcC = try HEVCDecoderConfigurationRecord(parsing: hexBehindJunk(Fixtures.hevc642x362Record))
        #expect(hvcC.generalLevelIDC == 63)
        let sps = try hvcC.parseSequenceParameterSet()
        #expect(sps.codedWidth == 648)
        #expect(sps.codedHeight == 368)
        #expect(sps.subWidthC == 2)
        #expect(sps.conformanceWindow == .init(left: 0, right: 3, top: 0, bottom: 3))
        #expect(sps.width == 642)
        #expect(sps.height == 362)
    }

    @Test("Every proper prefix of a record throws truncated")
    func truncated() throws {
        let full = hex(Fixtures.hevc320x240Record)
        for length in 0..<full.readableBytes {
            let prefix = try #require(full.getSlice(at: 0, length: length))
            let error = #expect(throws: MediaError.self) { try HEVCDecoderConfigurationRecord(parsing: prefix) }
            #expect(error?.code == .truncated, "prefix of \(length) bytes")
        }
    }

    @Test("Version 0 and a NAL unit length size of 3 are invalid")
    func invalid() throws {
        var version0 = hex(Fixtures.hevc320x240Record)
        version0.setInteger(UInt8(0), at: 0)
        let versionError = #expect(throws: MediaError.self) { try HEVCDecoderConfigurationRecord(parsing: version0) }
        #expect(versionError?.code == .invalidConfigurationRecord)

        var lengthSize3 = hex(Fixtures.hevc320x240Record)
        lengthSize3.setInteger(UInt8(0x0E), at: 21)
        let lengthError = #expect(throws: MediaError.self) {
            try HEVCDecoderConfigurationRecord(parsing: lengthSize3)
        }
        #expect(lengthError?.code == .invalidConfigurationRecord)
    }

    @Test("A record without SPS has no SPS to parse, and a VPS is not an SPS")
    func noSPS() throws {
        var withoutArrays = hex(Fixtures.hevc320x240Record)
        withoutArrays.moveWriterIndex(to: 23)
        withoutArrays.setInteger(UInt8(0), at: 22)
        let hvcC = try HEVCDecoderConfigurationRecord(parsing: withoutArrays)
        #expect(hvcC.arrays.isEmpty)
        let error = #expect(throws: MediaError.self) { try hvcC.parseSequenceParameterSet() }
        #expect(error?.code == .invalidConfigurationRecord)

        let vps = try #require(
            try HEVCDecoderConfigurationRecord(parsing: hex(Fixtures.hevc320x240Record)).arrays.first
        )
        let spsError = #expect(throws: MediaError.self) {
            try HEVCSequenceParameterSet(parsing: try #require(vps.nalUnits.first))
        }
        #expect(spsError?.code == .invalidParameterSet)
    }
}
