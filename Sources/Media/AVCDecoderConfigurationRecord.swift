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

/// The body of an AVC sequence header: an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15, 5.3.3.1, known as
/// 5.2.4.1 in the 2004 edition), the same bytes as an MP4 `avcC` box.
///
/// The relay does not need it to forward video; it is for stream information (profile, level, and through
/// ``parseSequenceParameterSet()`` the picture size and frame rate). Parameter sets are slices of the input and
/// share its storage.
public struct AVCDecoderConfigurationRecord: Hashable, Sendable {
    /// `configurationVersion`, always 1.
    public let configurationVersion: UInt8
    /// `AVCProfileIndication`, the `profile_idc` of the SPS: 66 Baseline, 77 Main, 100 High, 244 High 4:4:4, ...
    public let profileIndication: UInt8
    /// `profile_compatibility`, the SPS constraint flags byte.
    public let profileCompatibility: UInt8
    /// `AVCLevelIndication`, the `level_idc` of the SPS: ten times the level (31 is level 3.1).
    public let levelIndication: UInt8
    /// The size in bytes of the length prefix of each NAL unit in coded frames: 1, 2 or 4
    /// (`lengthSizeMinusOne + 1`).
    public let nalUnitLengthSize: Int
    /// The sequence parameter set NAL units, each including its one-byte NAL unit header.
    public let sequenceParameterSets: [ByteBuffer]
    /// The picture parameter set NAL units, each including its one-byte NAL unit header.
    public let pictureParameterSets: [ByteBuffer]
    /// `chroma_format` from the extension that follows the parameter sets for profiles other than 66, 77 and 88,
    /// or `nil` when the record ends before it (many encoders omit it). The SPS's
    /// ``AVCSequenceParameterSet/chromaFormatIDC`` is always there.
    public let chromaFormat: UInt8?
    /// `bit_depth_luma_minus8 + 8` from the same extension, or `nil`.
    public let bitDepthLuma: Int?
    /// `bit_depth_chroma_minus8 + 8` from the same extension, or `nil`.
    public let bitDepthChroma: Int?

    /// Parses a record, with every length checked against the bytes that are there.
    ///
    /// - Parameter record: The record, starting at the reader index: for an RTMP message, the bytes after the
    ///   video tag header (``VideoTagHeader/codecData(in:)``).
    /// - Throws: ``MediaError`` with code ``MediaError/Code/truncated`` if a length points past the end and
    ///   ``MediaError/Code/invalidConfigurationRecord`` for a version other than 1, a NAL unit length size of 3
    ///   or an empty parameter set.
    public init(parsing record: ByteBuffer) throws(MediaError) {
        guard record.readableBytes >= 6, let version = record.mediaUInt8(at: 0),
            let profile = record.mediaUInt8(at: 1), let compatibility = record.mediaUInt8(at: 2),
            let level = record.mediaUInt8(at: 3), let lengthSizeByte = record.mediaUInt8(at: 4),
            let spsCountByte = record.mediaUInt8(at: 5)
        else {
            throw .truncated("AVCDecoderConfigurationRecord", needed: 6, available: record.readableBytes)
        }
        guard version == 1 else {
            throw .invalidConfigurationRecord("AVCDecoderConfigurationRecord version \(version), expected 1")
        }
        let lengthSizeMinusOne = lengthSizeByte & 0x03
        guard lengthSizeMinusOne != 2 else {
            throw .invalidConfigurationRecord("AVC NAL unit length size 3 is not allowed (1, 2 or 4)")
        }

        var offset = 6
        let sequenceParameterSets = try Self.readParameterSets(
            record,
            count: Int(spsCountByte & 0x1F),
            offset: &offset,
            what: "AVC sequence parameter set"
        )
        guard let ppsCount = record.mediaUInt8(at: offset) else {
            throw .truncated("AVCDecoderConfigurationRecord", needed: offset + 1, available: record.readableBytes)
        }
        offset += 1
        let pictureParameterSets = try Self.readParameterSets(
            record,
            count: Int(ppsCount),
            offset: &offset,
            what: "AVC picture parameter set"
        )

        self.configurationVersion = version
        self.profileIndication = profile
        self.profileCompatibility = compatibility
        self.levelIndication = level
        self.nalUnitLengthSize = Int(lengthSizeMinusOne) + 1
        self.sequenceParameterSets = sequenceParameterSets
        self.pictureParameterSets = pictureParameterSets

        // ISO/IEC 14496-15:2017 5.3.3.1.2: profiles other than Baseline, Main and Extended append chroma format,
        // bit depths and SPS extensions. Older encoders and the 2004 edition's list of profiles leave it out,
        // so a record that ends here is still valid.
        if ![66, 77, 88].contains(profile), let chroma = record.mediaUInt8(at: offset),
            let luma = record.mediaUInt8(at: offset + 1), let chromaDepth = record.mediaUInt8(at: offset + 2)
        {
            self.chromaFormat = chroma & 0x03
            self.bitDepthLuma = Int(luma & 0x07) + 8
            self.bitDepthChroma = Int(chromaDepth & 0x07) + 8
        } else {
            self.chromaFormat = nil
            self.bitDepthLuma = nil
            self.bitDepthChroma = nil
        }
    }

    private static func readParameterSets(
        _ record: ByteBuffer,
        count: Int,
        offset: inout Int,
        what: StaticString
    ) throws(MediaError) -> [ByteBuffer] {
        var parameterSets: [ByteBuffer] = []
        parameterSets.reserveCapacity(count)
        for _ in 0..<count {
            guard let length = record.mediaUInt16(at: offset) else {
                throw .truncated("\(what) length", needed: offset + 2, available: record.readableBytes)
            }
            offset += 2
            guard length > 0 else {
                throw .invalidConfigurationRecord("\(what) is empty")
            }
            guard let parameterSet = record.getSlice(at: record.readerIndex + offset, length: Int(length)) else {
                throw .truncated("\(what)", needed: offset + Int(length), available: record.readableBytes)
            }
            offset += Int(length)
            parameterSets.append(parameterSet)
        }
        return parameterSets
    }

    /// Parses the first sequence parameter set.
    ///
    /// - Throws: ``MediaError`` with code ``MediaError/Code/invalidConfigurationRecord`` if the record has no
    ///   SPS, or whatever ``AVCSequenceParameterSet/init(parsing:)`` throws.
    public func parseSequenceParameterSet() throws(MediaError) -> AVCSequenceParameterSet {
        guard let first = self.sequenceParameterSets.first else {
            throw .invalidConfigurationRecord("AVCDecoderConfigurationRecord has no sequence parameter set")
        }
        return try AVCSequenceParameterSet(parsing: first)
    }
}

/// The parts of an H.264 sequence parameter set (ITU-T H.264, 7.3.2.1.1) that describe the stream: profile,
/// level, chroma format, picture size after cropping, and frame rate.
public struct AVCSequenceParameterSet: Hashable, Sendable {
    /// Frame cropping offsets as coded (`frame_crop_*_offset`), in units of ``cropUnitX`` and ``cropUnitY``.
    public struct FrameCropping: Hashable, Sendable {
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

    /// VUI timing information (H.264 E.1.1).
    public struct Timing: Hashable, Sendable {
        /// `num_units_in_tick`: time units of one clock tick.
        public var numUnitsInTick: UInt32
        /// `time_scale`: time units per second.
        public var timeScale: UInt32
        /// `fixed_frame_rate_flag`.
        public var fixedFrameRate: Bool

        public init(numUnitsInTick: UInt32, timeScale: UInt32, fixedFrameRate: Bool) {
            self.numUnitsInTick = numUnitsInTick
            self.timeScale = timeScale
            self.fixedFrameRate = fixedFrameRate
        }
    }

    /// `profile_idc`.
    public let profileIDC: UInt8
    /// The byte with `constraint_set0_flag` to `constraint_set5_flag` and two reserved zero bits.
    public let constraintFlags: UInt8
    /// `level_idc`.
    public let levelIDC: UInt8
    /// `seq_parameter_set_id`.
    public let sequenceParameterSetID: UInt32
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4 (1 when the profile does not code it).
    public let chromaFormatIDC: UInt32
    /// `separate_colour_plane_flag` (4:4:4 coded as three monochrome planes).
    public let separateColourPlane: Bool
    /// `bit_depth_luma_minus8 + 8`.
    public let bitDepthLuma: Int
    /// `bit_depth_chroma_minus8 + 8`.
    public let bitDepthChroma: Int
    /// `frame_mbs_only_flag`: false when the stream may contain field pictures (interlaced).
    public let frameMbsOnly: Bool
    /// The coded width in luma samples, a multiple of 16.
    public let codedWidth: Int
    /// The coded height in luma samples: macroblock rows, doubled for field coding.
    public let codedHeight: Int
    /// The cropping rectangle, or `nil` when `frame_cropping_flag` is 0.
    public let frameCropping: FrameCropping?
    /// The VUI timing information, or `nil` when absent (or when the VUI is cut short, as some encoders do).
    public let timing: Timing?

    /// Parses an SPS NAL unit.
    ///
    /// - Parameter nalUnit: The NAL unit including its one-byte header (`nal_unit_type` 7), without a start code
    ///   or length prefix, as stored in ``AVCDecoderConfigurationRecord/sequenceParameterSets``.
    /// - Throws: ``MediaError`` with code ``MediaError/Code/truncated`` if the SPS ends before the frame size, and
    ///   ``MediaError/Code/invalidParameterSet`` for a wrong NAL unit type or out-of-range values.
    public init(parsing nalUnit: ByteBuffer) throws(MediaError) {
        guard let nalHeader = nalUnit.mediaUInt8(at: 0) else {
            throw .truncated("H.264 SPS", needed: 1, available: 0)
        }
        guard nalHeader & 0x1F == 7 else {
            throw .invalidParameterSet("H.264 NAL unit type \(nalHeader & 0x1F) is not an SPS (7)")
        }
        var reader = BitReader(nalUnit, from: 1, removingEmulationPrevention: true, what: "H.264 SPS")

        let profileIDC = UInt8(try reader.readBits(8))
        self.profileIDC = profileIDC
        self.constraintFlags = UInt8(try reader.readBits(8))
        self.levelIDC = UInt8(try reader.readBits(8))
        self.sequenceParameterSetID = try reader.readUnsignedExpGolomb()
        guard self.sequenceParameterSetID <= 31 else {
            throw .invalidParameterSet("H.264 seq_parameter_set_id \(self.sequenceParameterSetID) > 31")
        }

        var chromaFormatIDC: UInt32 = 1
        var separateColourPlane = false
        var bitDepthLuma = 8
        var bitDepthChroma = 8
        // The high profiles (7.3.2.1.1) code chroma format, bit depth and scaling matrices.
        if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(profileIDC) {
            chromaFormatIDC = try reader.readUnsignedExpGolomb()
            guard chromaFormatIDC <= 3 else {
                throw .invalidParameterSet("H.264 chroma_format_idc \(chromaFormatIDC) > 3")
            }
            if chromaFormatIDC == 3 {
                separateColourPlane = try reader.readFlag()
            }
            let lumaMinus8 = try reader.readUnsignedExpGolomb()
            let chromaMinus8 = try reader.readUnsignedExpGolomb()
            guard lumaMinus8 <= 6, chromaMinus8 <= 6 else {
                throw .invalidParameterSet("H.264 bit depth above 14")
            }
            bitDepthLuma = Int(lumaMinus8) + 8
            bitDepthChroma = Int(chromaMinus8) + 8
            _ = try reader.readFlag()  // qpprime_y_zero_transform_bypass_flag
            if try reader.readFlag() {  // seq_scaling_matrix_present_flag
                let listCount = chromaFormatIDC == 3 ? 12 : 8
                for index in 0..<listCount where try reader.readFlag() {
                    try Self.skipScalingList(&reader, size: index < 6 ? 16 : 64)
                }
            }
        }
        self.chromaFormatIDC = chromaFormatIDC
        self.separateColourPlane = separateColourPlane
        self.bitDepthLuma = bitDepthLuma
        self.bitDepthChroma = bitDepthChroma

        let log2MaxFrameNumMinus4 = try reader.readUnsignedExpGolomb()
        guard log2MaxFrameNumMinus4 <= 12 else {
            throw .invalidParameterSet("H.264 log2_max_frame_num_minus4 \(log2MaxFrameNumMinus4) > 12")
        }
        let picOrderCountType = try reader.readUnsignedExpGolomb()
        switch picOrderCountType {
        case 0:
            _ = try reader.readUnsignedExpGolomb()  // log2_max_pic_order_cnt_lsb_minus4
        case 1:
            _ = try reader.readFlag()  // delta_pic_order_always_zero_flag
            _ = try reader.readSignedExpGolomb()  // offset_for_non_ref_pic
            _ = try reader.readSignedExpGolomb()  // offset_for_top_to_bottom_field
            let cycleLength = try reader.readUnsignedExpGolomb()
            guard cycleLength <= 255 else {
                throw .invalidParameterSet("H.264 num_ref_frames_in_pic_order_cnt_cycle \(cycleLength) > 255")
            }
            for _ in 0..<cycleLength {
                _ = try reader.readSignedExpGolomb()  // offset_for_ref_frame
            }
        case 2:
            break
        default:
            throw .invalidParameterSet("H.264 pic_order_cnt_type \(picOrderCountType) > 2")
        }
        _ = try reader.readUnsignedExpGolomb()  // max_num_ref_frames
        _ = try reader.readFlag()  // gaps_in_frame_num_value_allowed_flag
        let widthInMacroblocks = Int(try reader.readUnsignedExpGolomb()) + 1
        let heightInMapUnits = Int(try reader.readUnsignedExpGolomb()) + 1
        let frameMbsOnly = try reader.readFlag()
        if !frameMbsOnly {
            _ = try reader.readFlag()  // mb_adaptive_frame_field_flag
        }
        _ = try reader.readFlag()  // direct_8x8_inference_flag
        self.frameMbsOnly = frameMbsOnly
        self.codedWidth = widthInMacroblocks * 16
        self.codedHeight = (frameMbsOnly ? 1 : 2) * heightInMapUnits * 16

        if try reader.readFlag() {  // frame_cropping_flag
            self.frameCropping = FrameCropping(
                left: try reader.readUnsignedExpGolomb(),
                right: try reader.readUnsignedExpGolomb(),
                top: try reader.readUnsignedExpGolomb(),
                bottom: try reader.readUnsignedExpGolomb()
            )
        } else {
            self.frameCropping = nil
        }
        // The VUI is optional and only read for the frame rate; an SPS cut short inside it keeps its size.
        if (try? reader.readFlag()) == true {  // vui_parameters_present_flag
            self.timing = try? Self.readTiming(&reader)
        } else {
            self.timing = nil
        }

        guard self.width > 0, self.height > 0 else {
            throw .invalidParameterSet("H.264 cropping exceeds the \(self.codedWidth)x\(self.codedHeight) picture")
        }
    }

    /// `scaling_list()` (7.3.2.1.1.1), skipped: the deltas only matter to a decoder.
    private static func skipScalingList(_ reader: inout BitReader, size: Int) throws(MediaError) {
        var lastScale: Int32 = 8
        var nextScale: Int32 = 8
        for _ in 0..<size {
            if nextScale != 0 {
                let delta = try reader.readSignedExpGolomb()
                nextScale = (lastScale + delta + 256) % 256
            }
            lastScale = nextScale == 0 ? lastScale : nextScale
        }
    }

    /// `vui_parameters()` (E.1.1) up to and including the timing information.
    private static func readTiming(_ reader: inout BitReader) throws(MediaError) -> Timing? {
        if try reader.readFlag() {  // aspect_ratio_info_present_flag
            let aspectRatioIDC = try reader.readBits(8)
            if aspectRatioIDC == 255 {  // Extended_SAR
                try reader.skipBits(32)  // sar_width, sar_height
            }
        }
        if try reader.readFlag() {  // overscan_info_present_flag
            _ = try reader.readFlag()  // overscan_appropriate_flag
        }
        if try reader.readFlag() {  // video_signal_type_present_flag
            try reader.skipBits(4)  // video_format, video_full_range_flag
            if try reader.readFlag() {  // colour_description_present_flag
                try reader.skipBits(24)  // colour_primaries, transfer_characteristics, matrix_coefficients
            }
        }
        if try reader.readFlag() {  // chroma_loc_info_present_flag
            _ = try reader.readUnsignedExpGolomb()
            _ = try reader.readUnsignedExpGolomb()
        }
        guard try reader.readFlag() else { return nil }  // timing_info_present_flag
        let numUnitsInTick = try reader.readBits(32)
        let timeScale = try reader.readBits(32)
        let fixedFrameRate = try reader.readFlag()
        return Timing(numUnitsInTick: numUnitsInTick, timeScale: timeScale, fixedFrameRate: fixedFrameRate)
    }

    /// `CropUnitX` (7-19, 7-21): one luma sample for monochrome and 4:4:4, two for 4:2:0 and 4:2:2.
    public var cropUnitX: Int {
        let chromaArrayType = self.separateColourPlane ? 0 : self.chromaFormatIDC
        return chromaArrayType == 1 || chromaArrayType == 2 ? 2 : 1
    }

    /// `CropUnitY` (7-20, 7-22): doubled for 4:2:0 chroma and again for field coding.
    public var cropUnitY: Int {
        let chromaArrayType = self.separateColourPlane ? 0 : self.chromaFormatIDC
        let subHeightC = chromaArrayType == 1 ? 2 : 1
        return subHeightC * (self.frameMbsOnly ? 1 : 2)
    }

    /// The displayed width in luma samples: the coded width minus the cropping.
    public var width: Int {
        guard let cropping = self.frameCropping else { return self.codedWidth }
        return self.codedWidth - self.cropUnitX * (Int(cropping.left) + Int(cropping.right))
    }

    /// The displayed height in luma samples: the coded height minus the cropping.
    public var height: Int {
        guard let cropping = self.frameCropping else { return self.codedHeight }
        return self.codedHeight - self.cropUnitY * (Int(cropping.top) + Int(cropping.bottom))
    }

    /// Frames per second from the VUI timing, `time_scale / (2 * num_units_in_tick)` (E.2.1: one frame is two
    /// field ticks), or `nil` without timing information.
    public var frameRate: Double? {
        guard let timing = self.timing, timing.numUnitsInTick > 0 else { return nil }
        return Double(timing.timeScale) / (2 * Double(timing.numUnitsInTick))
    }
}
