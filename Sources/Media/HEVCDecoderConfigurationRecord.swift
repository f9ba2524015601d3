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

/// The body of an HEVC sequence start: an `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15, 8.3.3.1), the same
/// bytes as an MP4 `hvcC` box.
///
/// Read for stream information: profile, tier, level, chroma format and bit depth from the fixed 23-byte part,
/// and the NAL unit arrays (VPS, SPS, PPS, SEI) as slices that share the input's storage.
public struct HEVCDecoderConfigurationRecord: Hashable, Sendable {
    /// One `array` of the record: NAL units of one type.
    public struct NALUnitArray: Hashable, Sendable {
        /// `array_completeness`: whether all NAL units of this type are in the array (none in the stream).
        public var isComplete: Bool
        /// `NAL_unit_type`: 32 VPS, 33 SPS, 34 PPS, 39 and 40 SEI.
        public var nalUnitType: UInt8
        /// The NAL units, each including its two-byte NAL unit header.
        public var nalUnits: [ByteBuffer]

        public init(isComplete: Bool, nalUnitType: UInt8, nalUnits: [ByteBuffer]) {
            self.isComplete = isComplete
            self.nalUnitType = nalUnitType
            self.nalUnits = nalUnits
        }
    }

    /// `configurationVersion`, always 1.
    public let configurationVersion: UInt8
    /// `general_profile_space`.
    public let generalProfileSpace: UInt8
    /// `general_tier_flag`: false Main tier, true High tier.
    public let generalTierFlag: Bool
    /// `general_profile_idc`: 1 Main, 2 Main 10, 3 Main Still Picture, 4 range extensions, ...
    public let generalProfileIDC: UInt8
    /// `general_profile_compatibility_flags`.
    public let generalProfileCompatibilityFlags: UInt32
    /// `general_constraint_indicator_flags`, 48 bits.
    public let generalConstraintIndicatorFlags: UInt64
    /// `general_level_idc`: thirty times the level (93 is level 3.1).
    public let generalLevelIDC: UInt8
    /// `chromaFormat` (`chroma_format_idc`): 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    public let chromaFormatIDC: UInt8
    /// `bitDepthLumaMinus8 + 8`.
    public let bitDepthLuma: Int
    /// `bitDepthChromaMinus8 + 8`.
    public let bitDepthChroma: Int
    /// `avgFrameRate` in frames per 256 seconds, 0 when unspecified.
    public let averageFrameRate: UInt16
    /// `numTemporalLayers`.
    public let numberOfTemporalLayers: UInt8
    /// The size in bytes of the length prefix of each NAL unit in coded frames: 1, 2 or 4.
    public let nalUnitLengthSize: Int
    /// The NAL unit arrays (`numOfArrays` of them), in record order.
    public let arrays: [NALUnitArray]

    /// Parses a record, with every length checked against the bytes that are there.
    ///
    /// - Parameter record: The record at the reader index: for an RTMP message, the bytes after the video tag
    ///   header (``VideoTagHeader/codecData(in:)``).
    /// - Throws: ``MediaError`` with code ``MediaError/Code/truncated`` if a length points past the end and
    ///   ``MediaError/Code/invalidConfigurationRecord`` for a version other than 1, a NAL unit length size of 3
    ///   or an empty NAL unit.
    public init(parsing record: ByteBuffer) throws(MediaError) {
        guard record.readableBytes >= 23, let version = record.mediaUInt8(at: 0),
            let profileByte = record.mediaUInt8(at: 1), let compatibility = record.mediaUInt32(at: 2),
            let constraintHigh = record.mediaUInt16(at: 6), let constraintLow = record.mediaUInt32(at: 8),
            let level = record.mediaUInt8(at: 12), let chroma = record.mediaUInt8(at: 16),
            let luma = record.mediaUInt8(at: 17), let chromaDepth = record.mediaUInt8(at: 18),
            let frameRate = record.mediaUInt16(at: 19), let layering = record.mediaUInt8(at: 21),
            let arrayCount = record.mediaUInt8(at: 22)
        else {
            throw .truncated("HEVCDecoderConfigurationRecord", needed: 23, available: record.readableBytes)
        }
        guard version == 1 else {
            throw .invalidConfigurationRecord("HEVCDecoderConfigurationRecord version \(version), expected 1")
        }
        let lengthSizeMinusOne = layering & 0x03
        guard lengthSizeMinusOne != 2 else {
            throw .invalidConfigurationRecord("HEVC NAL unit length size 3 is not allowed (1, 2 or 4)")
        }

        var arrays: [NALUnitArray] = []
        arrays.reserveCapacity(Int(arrayCount))
        var offset = 23
        for _ in 0..<arrayCount {
            guard let typeByte = record.mediaUInt8(at: offset), let nalUnitCount = record.mediaUInt16(at: offset + 1)
            else {
                throw .truncated("HEVC NAL unit array", needed: offset + 3, available: record.readableBytes)
            }
            offset += 3
            var nalUnits: [ByteBuffer] = []
            nalUnits.reserveCapacity(min(Int(nalUnitCount), record.readableBytes / 2))
            for _ in 0..<nalUnitCount {
                guard let length = record.mediaUInt16(at: offset) else {
                    throw .truncated("HEVC NAL unit length", needed: offset + 2, available: record.readableBytes)
                }
                offset += 2
                guard length > 0 else {
                    throw .invalidConfigurationRecord("HEVC NAL unit of type \(typeByte & 0x3F) is empty")
                }
                guard let nalUnit = record.getSlice(at: record.readerIndex + offset, length: Int(length)) else {
                    throw .truncated("HEVC NAL unit", needed: offset + Int(length), available: record.readableBytes)
                }
                offset += Int(length)
                nalUnits.append(nalUnit)
            }
            arrays.append(
                NALUnitArray(isComplete: typeByte & 0x80 != 0, nalUnitType: typeByte & 0x3F, nalUnits: nalUnits)
            )
        }

        self.configurationVersion = version
        self.generalProfileSpace = profileByte >> 6
        self.generalTierFlag = profileByte & 0x20 != 0
        self.generalProfileIDC = profileByte & 0x1F
        self.generalProfileCompatibilityFlags = compatibility
        self.generalConstraintIndicatorFlags = UInt64(constraintHigh) << 32 | UInt64(constraintLow)
        self.generalLevelIDC = level
        self.chromaFormatIDC = chroma & 0x03
        self.bitDepthLuma = Int(luma & 0x07) + 8
        self.bitDepthChroma = Int(chromaDepth & 0x07) + 8
        self.averageFrameRate = frameRate
        self.numberOfTemporalLayers = (layering >> 3) & 0x07
        self.nalUnitLengthSize = Int(lengthSizeMinusOne) + 1
        self.arrays = arrays
    }

    /// Parses the first SPS (NAL unit type 33) of the record.
    ///
    /// - Throws: ``MediaError`` with code ``MediaError/Code/invalidConfigurationRecord`` if the record has no
    ///   SPS, or whatever ``HEVCSequenceParameterSet/init(parsing:)`` throws.
    public func parseSequenceParameterSet() throws(MediaError) -> HEVCSequenceParameterSet {
        for array in self.arrays where array.nalUnitType == 33 {
            if let first = array.nalUnits.first {
                return try HEVCSequenceParameterSet(parsing: first)
            }
        }
        throw .invalidConfigurationRecord("HEVCDecoderConfigurationRecord has no sequence parameter set")
    }
}

/// The beginning of an H.265 sequence parameter set (ITU-T H.265, 7.3.2.2.1), up to the picture size and bit
/// depth.
public struct HEVCSequenceParameterSet: Hashable, Sendable {
    /// `conf_win_*_offset`, in units of ``subWidthC`` and ``subHeightC`` luma samples.
    public struct ConformanceWindow: Hashable, Sendable {
        public var left: UInt32
        public var right: UInt32
        public var top: UInt32
        public var bottom: UInt32

        public init(left: UInt32, right: UInt32, top: UInt32, bottom: UInt32) {
            self.left = left
            self.right = right
            self.top = top
            self.bottom = bottom
        }
    }

    /// `sps_max_sub_layers_minus1 + 1`.
    public let maxSubLayers: Int
    /// `general_profile_idc` from `profile_tier_level`.
    public let generalProfileIDC: UInt8
    /// `general_level_idc` from `profile_tier_level`.
    public let generalLevelIDC: UInt8
    /// `sps_seq_parameter_set_id`.
    public let sequenceParameterSetID: UInt32
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    public let chromaFormatIDC: UInt32
    /// `separate_colour_plane_flag`.
    public let separateColourPlane: Bool
    /// `pic_width_in_luma_samples`.
    public let codedWidth: Int
    /// `pic_height_in_luma_samples`.
    public let codedHeight: Int
    /// The conformance (cropping) window, or `nil` when `conformance_window_flag` is 0.
    public let conformanceWindow: ConformanceWindow?
    /// `bit_depth_luma_minus8 + 8`.
    public let bitDepthLuma: Int
    /// `bit_depth_chroma_minus8 + 8`.
    public let bitDepthChroma: Int

    /// Parses an SPS NAL unit.
    ///
    /// - Parameter nalUnit: The NAL unit including its two-byte header (`nal_unit_type` 33), without a start code
    ///   or length prefix, as stored in ``HEVCDecoderConfigurationRecord/arrays``.
    /// - Throws: ``MediaError`` with code ``MediaError/Code/truncated`` if the SPS ends before the bit depths, and
    ///   ``MediaError/Code/invalidParameterSet`` for a wrong NAL unit type or out-of-range values.
    public init(parsing nalUnit: ByteBuffer) throws(MediaError) {
        guard let nalHeader = nalUnit.mediaUInt16(at: 0) else {
            throw .truncated("H.265 SPS", needed: 2, available: nalUnit.readableBytes)
        }
        let nalUnitType = (nalHeader >> 9) & 0x3F
        guard nalUnitType == 33 else {
            throw .invalidParameterSet("H.265 NAL unit type \(nalUnitType) is not an SPS (33)")
        }
        var reader = BitReader(nalUnit, from: 2, removingEmulationPrevention: true, what: "H.265 SPS")

        try reader.skipBits(4)  // sps_video_parameter_set_id
        let maxSubLayersMinus1 = Int(try reader.readBits(3))
        guard maxSubLayersMinus1 < 7 else {
            throw .invalidParameterSet("H.265 sps_max_sub_layers_minus1 7")
        }
        self.maxSubLayers = maxSubLayersMinus1 + 1
        _ = try reader.readFlag()  // sps_temporal_id_nesting_flag

        // profile_tier_level(1, sps_max_sub_layers_minus1), 7.3.3.
        try reader.skipBits(3)  // general_profile_space, general_tier_flag
        self.generalProfileIDC = UInt8(try reader.readBits(5))
        try reader.skipBits(32 + 48)  // compatibility flags; source, constraint and reserved flags
        self.generalLevelIDC = UInt8(try reader.readBits(8))
        var subLayerProfilePresent: [Bool] = []
        var subLayerLevelPresent: [Bool] = []
        for _ in 0..<maxSubLayersMinus1 {
            subLayerProfilePresent.append(try reader.readFlag())
            subLayerLevelPresent.append(try reader.readFlag())
        }
        if maxSubLayersMinus1 > 0 {
            try reader.skipBits(2 * (8 - maxSubLayersMinus1))  // reserved_zero_2bits
        }
        for index in 0..<maxSubLayersMinus1 {
            if subLayerProfilePresent[index] {
                try reader.skipBits(88)  // sub_layer profile space, tier, idc, flags
            }
            if subLayerLevelPresent[index] {
                try reader.skipBits(8)  // sub_layer_level_idc
            }
        }

        self.sequenceParameterSetID = try reader.readUnsignedExpGolomb()
        guard self.sequenceParameterSetID <= 15 else {
            throw .invalidParameterSet("H.265 sps_seq_parameter_set_id \(self.sequenceParameterSetID) > 15")
        }
        let chromaFormatIDC = try reader.readUnsignedExpGolomb()
        guard chromaFormatIDC <= 3 else {
            throw .invalidParameterSet("H.265 chroma_format_idc \(chromaFormatIDC) > 3")
        }
        self.chromaFormatIDC = chromaFormatIDC
        self.separateColourPlane = chromaFormatIDC == 3 ? try reader.readFlag() : false
        self.codedWidth = Int(try reader.readUnsignedExpGolomb())
        self.codedHeight = Int(try reader.readUnsignedExpGolomb())
        if try reader.readFlag() {  // conformance_window_flag
            self.conformanceWindow = ConformanceWindow(
                left: try reader.readUnsignedExpGolomb(),
                right: try reader.readUnsignedExpGolomb(),
                top: try reader.readUnsignedExpGolomb(),
                bottom: try reader.readUnsignedExpGolomb()
            )
        } else {
            self.conformanceWindow = nil
        }
        let lumaMinus8 = try reader.readUnsignedExpGolomb()
        let chromaMinus8 = try reader.readUnsignedExpGolomb()
        guard lumaMinus8 <= 8, chromaMinus8 <= 8 else {
            throw .invalidParameterSet("H.265 bit depth above 16")
        }
        self.bitDepthLuma = Int(lumaMinus8) + 8
        self.bitDepthChroma = Int(chromaMinus8) + 8

        guard self.width > 0, self.height > 0 else {
            throw .invalidParameterSet("H.265 picture size \(self.width)x\(self.height) after the conformance window")
        }
    }

    /// `SubWidthC` (table 6-1): 2 for 4:2:0 and 4:2:2, 1 for monochrome, 4:4:4 and separate planes.
    public var subWidthC: Int {
        let chromaArrayType = self.separateColourPlane ? 0 : self.chromaFormatIDC
        return chromaArrayType == 1 || chromaArrayType == 2 ? 2 : 1
    }

    /// `SubHeightC` (table 6-1): 2 for 4:2:0, otherwise 1.
    public var subHeightC: Int {
        let chromaArrayType = self.separateColourPlane ? 0 : self.chromaFormatIDC
        return chromaArrayType == 1 ? 2 : 1
    }

    /// The displayed width in luma samples, after the conformance window.
    public var width: Int {
        guard let window = self.conformanceWindow else { return self.codedWidth }
        return self.codedWidth - self.subWidthC * (Int(window.left) + Int(window.right))
    }

    /// The displayed height in luma samples, after the conformance window.
    public var height: Int {
        guard let window = self.conformanceWindow else { return self.codedHeight }
        return self.codedHeight - self.subHeightC * (Int(window.top) + Int(window.bottom))
    }
}
