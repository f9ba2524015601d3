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

public import NIOCore

extension AVCDecoderConfigurationRecord {
    /// Makes the record for a stream's parameter sets, as an encoder writes it into an AVC sequence header.
    ///
    /// Profile, compatibility and level come from the first SPS. For profiles other than Baseline, Main and Extended
    /// the chroma format and bit depths of ISO/IEC 14496-15:2017 5.3.3.1.2 are appended, from the SPS, as ffmpeg's
    /// `ff_isom_write_avcc` does.
    ///
    /// - Parameters:
    ///   - sequenceParameterSets: SPS NAL units (type 7), each with its NAL header, without start code or length.
    ///   - pictureParameterSets: PPS NAL units (type 8), the same way.
    ///   - nalUnitLengthSize: The size of the NAL unit length prefix in coded frames: 1, 2 or 4.
    /// - Throws: ``MediaError`` with code ``MediaError/Code/invalidConfigurationRecord`` without an SPS or a PPS,
    ///   with more than 31 SPS or 255 PPS, or with one longer than 65535 bytes; whatever
    ///   ``AVCSequenceParameterSet/init(parsing:)`` throws for the first SPS.
    public init(
        sequenceParameterSets: [ByteBuffer],
        pictureParameterSets: [ByteBuffer],
        nalUnitLengthSize: Int = 4
    ) throws(MediaError) {
        guard let first = sequenceParameterSets.first, !pictureParameterSets.isEmpty else {
            throw .invalidConfigurationRecord("an AVCDecoderConfigurationRecord needs an SPS and a PPS")
        }
        guard sequenceParameterSets.count <= 31, pictureParameterSets.count <= 255 else {
            throw .invalidConfigurationRecord(
                "\(sequenceParameterSets.count) SPS and \(pictureParameterSets.count) PPS do not fit the record"
            )
        }
        guard (sequenceParameterSets + pictureParameterSets).allSatisfy({ $0.readableBytes <= 0xFFFF }) else {
            throw .invalidConfigurationRecord("a parameter set is longer than 65535 bytes")
        }
        guard [1, 2, 4].contains(nalUnitLengthSize) else {
            throw .invalidConfigurationRecord("AVC NAL unit length size \(nalUnitLengthSize) (1, 2 or 4)")
        }
        let sps = try AVCSequenceParameterSet(parsing: first)
        let hasExtension = ![66, 77, 88].contains(sps.profileIDC)

        var record = ByteBufferAllocator().buffer(capacity: 16 + first.readableBytes + 64)
        record.writeInteger(UInt8(1))
        record.writeInteger(sps.profileIDC)
        record.writeInteger(sps.constraintFlags)
        record.writeInteger(sps.levelIDC)
        record.writeInteger(UInt8(0xFC | (nalUnitLengthSize - 1)))
        record.writeInteger(UInt8(0xE0 | sequenceParameterSets.count))
        for parameterSet in sequenceParameterSets {
            record.writeInteger(UInt16(parameterSet.readableBytes))
            record.writeImmutableBuffer(parameterSet)
        }
        record.writeInteger(UInt8(pictureParameterSets.count))
        for parameterSet in pictureParameterSets {
            record.writeInteger(UInt16(parameterSet.readableBytes))
            record.writeImmutableBuffer(parameterSet)
        }
        if hasExtension {
            record.writeInteger(UInt8(0xFC | (sps.chromaFormatIDC & 0x03)))
            record.writeInteger(UInt8(0xF8 | (sps.bitDepthLuma - 8)))
            record.writeInteger(UInt8(0xF8 | (sps.bitDepthChroma - 8)))
            record.writeInteger(UInt8(0))  // numOfSequenceParameterSetExt
        }
        try self.init(parsing: record)
    }

    /// The record's bytes, as the body of an AVC sequence header or an `avcC` box.
    public var bytes: ByteBuffer {
        var record = ByteBufferAllocator().buffer(capacity: 64)
        record.writeInteger(self.configurationVersion)
        record.writeInteger(self.profileIndication)
        record.writeInteger(self.profileCompatibility)
        record.writeInteger(self.levelIndication)
        record.writeInteger(UInt8(0xFC | (self.nalUnitLengthSize - 1)))
        record.writeInteger(UInt8(0xE0 | self.sequenceParameterSets.count))
        for parameterSet in self.sequenceParameterSets {
            record.writeInteger(UInt16(parameterSet.readableBytes))
            record.writeImmutableBuffer(parameterSet)
        }
        record.writeInteger(UInt8(self.pictureParameterSets.count))
        for parameterSet in self.pictureParameterSets {
            record.writeInteger(UInt16(parameterSet.readableBytes))
            record.writeImmutableBuffer(parameterSet)
        }
        if let chroma = self.chromaFormat, let luma = self.bitDepthLuma, let chromaDepth = self.bitDepthChroma {
            record.writeInteger(UInt8(0xFC | chroma))
            record.writeInteger(UInt8(0xF8 | (luma - 8)))
            record.writeInteger(UInt8(0xF8 | (chromaDepth - 8)))
            record.writeInteger(UInt8(0))
        }
        return record
    }
}
