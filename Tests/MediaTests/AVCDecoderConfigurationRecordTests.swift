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

/// The AVCDecoderConfigurationRecord inside a legacy AVC sequence header fixture.
private func record(_ sequenceHeader: String) throws -> AVCDecoderConfigurationRecord {
    let payload = hex(sequenceHeader)
    let header = try VideoTagHeader(parsing: payload)
    return try AVCDecoderConfigurationRecord(parsing: try #require(header.codecData(in: payload)))
}

@Suite("AVCDecoderConfigurationRecord and H.264 SPS (ISO/IEC 14496-15 5.3.3.1, H.264 7.3.2.1.1)")
struct AVCDecoderConfigurationRecordTests {
    @Test("320x240 High 4:4:4 from libx264, with emulation prevention bytes in the SPS")
    func qvga() throws {
        let avcC = try record(Fixtures.qvgaVideoSequenceHeader)
        #expect(avcC.configurationVersion == 1)
        #expect(avcC.profileIndication == 244)
        #expect(avcC.levelIndication == 13)
        #expect(avcC.nalUnitLengthSize == 4)
        #expect(avcC.sequenceParameterSets.count == 1)
        #expect(avcC.pictureParameterSets.count == 1)
        #expect(avcC.pictureParameterSets.first?.getInteger(at: 0, as: UInt8.self) == 0x68)
        // Profile 244 is not in the 2004 edition's list but ffmpeg writes the extension: 4:4:4, 8 bits.
        #expect(avcC.chromaFormat == 3)
        #expect(avcC.bitDepthLuma == 8)

        let spsBytes = Array(try #require(avcC.sequenceParameterSets.first).readableBytesView)
        let hasEmulationPrevention = (2..<spsBytes.count).contains {
            spsBytes[$0 - 2] == 0 && spsBytes[$0 - 1] == 0 && spsBytes[$0] == 3
        }
        #expect(hasEmulationPrevention)

        let sps = try avcC.parseSequenceParameterSet()
        #expect(sps.profileIDC == 244)
        #expect(sps.levelIDC == 13)
        #expect(sps.chromaFormatIDC == 3)
        #expect(sps.bitDepthLuma == 8)
        #expect(sps.frameMbsOnly)
        #expect(sps.width == 320)
        #expect(sps.height == 240)
        #expect(sps.frameRate == 25)
    }

    @Test("1280x720 High from libx264, with the high-profile record extension")
    func hd720() throws {
        let avcC = try record(Fixtures.hd720VideoSequenceHeader)
        #expect(avcC.profileIndication == 100)
        #expect(avcC.levelIndication == 31)
        #expect(avcC.chromaFormat == 1)
        #expect(avcC.bitDepthLuma == 8)
        #expect(avcC.bitDepthChroma == 8)

        let sps = try avcC.parseSequenceParameterSet()
        #expect(sps.chromaFormatIDC == 1)
        #expect(sps.frameCropping == nil)
        #expect(sps.width == 1280)
        #expect(sps.height == 720)
        #expect(sps.frameRate == 30)
        #expect(sps.timing?.fixedFrameRate == false)
    }

    @Test("642x362 Main: cropping in 4:2:0 units of two samples")
    func oddSize() throws {
        let avcC = try record(Fixtures.odd642x362VideoSequenceHeader)
        #expect(avcC.profileIndication == 77)
        #expect(avcC.chromaFormat == nil)
        let sps = try avcC.parseSequenceParameterSet()
        #expect(sps.codedWidth == 656)
        #expect(sps.codedHeight == 368)
        #expect(sps.frameCropping == .init(left: 0, right: 7, top: 0, bottom: 3))
        #expect(sps.cropUnitX == 2)
        #expect(sps.cropUnitY == 2)
        #expect(sps.width == 642)
        #expect(sps.height == 362)
        #expect(sps.frameRate == 25)
    }

    @Test("854x480 Constrained Baseline at 30000/1001 fps")
    func fwvga() throws {
        let avcC = try record(Fixtures.fwvga854x480VideoSequenceHeader)
        #expect(avcC.profileIndication == 66)
        #expect(avcC.profileCompatibility == 0xC0)
        let sps = try avcC.parseSequenceParameterSet()
        #expect(sps.codedWidth == 864)
        #expect(sps.width == 854)
        #expect(sps.height == 480)
        #expect(sps.timing?.timeScale == 60000)
        #expect(sps.timing?.numUnitsInTick == 1001)
        let frameRate = try #require(sps.frameRate)
        #expect(abs(frameRate - 30000.0 / 1001.0) < 1e-9)
    }

    @Test("1920x1080 interlaced: field coding doubles the height and the vertical crop unit")
    func interlaced() throws {
        let sps = try record(Fixtures.interlaced1080VideoSequenceHeader).parseSequenceParameterSet()
        #expect(!sps.frameMbsOnly)
        #expect(sps.codedHeight == 1088)
        #expect(sps.cropUnitY == 4)
        #expect(sps.frameCropping?.bottom == 2)
        #expect(sps.width == 1920)
        #expect(sps.height == 1080)
        #expect(sps.frameRate == 25)
    }

    @Test("1920x1080 progressive at 60 fps")
    func progressive1080p60() throws {
        let sps = try record(Fixtures.progressive1080p60VideoSequenceHeader).parseSequenceParameterSet()
        #expect(sps.frameMbsOnly)
        #expect(sps.codedHeight == 1088)
        #expect(sps.width == 1920)
        #expect(sps.height == 1080)
        #expect(sps.frameRate == 60)
    }

    @Test("Every prefix of a record that cuts into a parameter set throws truncated")
    func truncatedRecords() throws {
        // The Baseline record has no extension, so it ends with its last parameter set.
        let payload = hex(Fixtures.fwvga854x480VideoSequenceHeader)
        let full = try #require(try VideoTagHeader(parsing: payload).codecData(in: payload))
        #expect(throws: Never.self) { try AVCDecoderConfigurationRecord(parsing: full) }
        for length in 0..<full.readableBytes {
            let prefix = try #require(full.getSlice(at: full.readerIndex, length: length))
            let error = #expect(throws: MediaError.self) { try AVCDecoderConfigurationRecord(parsing: prefix) }
            #expect(error?.code == .truncated, "prefix of \(length) bytes")
        }
    }

    @Test("A cut-short SPS throws truncated before the frame size and keeps the size when cut in the VUI")
    func truncatedSPS() throws {
        let sps = try #require(try record(Fixtures.odd642x362VideoSequenceHeader).sequenceParameterSets.first)
        let timing = try AVCSequenceParameterSet(parsing: sps).timing
        var truncatedCount = 0
        for length in 0..<sps.readableBytes {
            let prefix = try #require(sps.getSlice(at: sps.readerIndex, length: length))
            do {
                let parsed = try AVCSequenceParameterSet(parsing: prefix)
                #expect(parsed.width == 642, "prefix of \(length) bytes")
                #expect(parsed.height == 362, "prefix of \(length) bytes")
                // Either the cut is inside the VUI before the timing, or after it.
                #expect(parsed.timing == nil || parsed.timing == timing, "prefix of \(length) bytes")
            } catch {
                #expect(error.code == .truncated, "prefix of \(length) bytes")
                truncatedCount += 1
            }
        }
        #expect(truncatedCount >= 8)
    }

    @Test(
        "Invalid records",
        arguments: [
            ("0042c01fffe100046742c01f01000468cb83cb", "version 0"),
            ("0142c01ffee100046742c01f01000468cb83cb", "NAL unit length size 3"),
            ("0142c01fffe1000001000468cb83cb", "empty SPS"),
        ]
    )
    func invalidRecords(bytes: String, reason: String) throws {
        let error = #expect(throws: MediaError.self, "\(reason)") {
            try AVCDecoderConfigurationRecord(parsing: hex(bytes))
        }
        #expect(error?.code == .invalidConfigurationRecord)
    }

    @Test("A record without SPS parses, but has no SPS to parse")
    func noSPS() throws {
        let avcC = try AVCDecoderConfigurationRecord(parsing: hex("0142c01fffe0 00"))
        #expect(avcC.sequenceParameterSets.isEmpty)
        let error = #expect(throws: MediaError.self) { try avcC.parseSequenceParameterSet() }
        #expect(error?.code == .invalidConfigurationRecord)
    }

    @Test("A NAL unit that is not an SPS is rejected")
    func notAnSPS() throws {
        let error = #expect(throws: MediaError.self) { try AVCSequenceParameterSet(parsing: hex("68ebe3cb20")) }
        #expect(error?.code == .invalidParameterSet)
    }

    @Test("Cropping larger than the picture is rejected")
    func croppingTooLarge() throws {
        // Baseline, level 3.0, then: sps id 0, log2_max_frame_num_minus4 0, pic_order_cnt_type 2, no reference
        // frames, no gaps, 1x1 macroblocks, frame_mbs_only, direct_8x8_inference, cropping with left offset 8 (16
        // luma samples, the whole width) and 0, 0, 0, no VUI, stop bit.
        let bits = "1 1 011 1 0 1 1 1 1 1 0001001 1 1 1 0 1"
        let error = #expect(throws: MediaError.self) {
            try AVCSequenceParameterSet(parsing: hex("67 42 00 1e") + hexBits(bits))
        }
        #expect(error?.code == .invalidParameterSet)
    }
}

/// A buffer from a string of bits, padded with zero bits to whole bytes.
func hexBits(_ bits: String) -> ByteBuffer {
    let digits = bits.filter { $0 == "0" || $0 == "1" }
    var buffer = ByteBuffer()
    var byte: UInt8 = 0
    var count = 0
    for digit in digits {
        byte = byte << 1 | (digit == "1" ? 1 : 0)
        count += 1
        if count == 8 {
            buffer.writeInteger(byte)
            byte = 0
            count = 0
        }
    }
    if count > 0 {
        buffer.writeInteger(byte << (8 - count))
    }
    return buffer
}

extension ByteBuffer {
    fileprivate static func + (lhs: ByteBuffer, rhs: ByteBuffer) -> ByteBuffer {
        var result = lhs
        result.writeImmutableBuffer(rhs)
        return result
    }
}
