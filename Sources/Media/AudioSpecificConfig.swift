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

/// The body of an AAC sequence header: the start of an MPEG-4 `AudioSpecificConfig` (ISO/IEC 14496-3, 1.6.2.1).
///
/// Only the fields every AAC stream has are read: object type, sampling frequency and channel configuration, plus
/// the explicit SBR/PS signalling of HE-AAC (object types 5 and 29), which changes the meaning of what follows.
/// The object-type-specific config after them is not parsed.
public struct AudioSpecificConfig: Hashable, Sendable {
    /// The sampling frequencies of `samplingFrequencyIndex` 0 to 12 (ISO/IEC 14496-3, table 1.18).
    public static let samplingFrequencies: [Int] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ]

    /// The audio object type: 2 is AAC LC, 1 AAC Main, 42 USAC. For explicitly signalled HE-AAC this is the
    /// underlying core type (usually 2) and ``extensionAudioObjectType`` is 5.
    public let audioObjectType: UInt8
    /// `samplingFrequencyIndex`; 15 means the frequency was written out as 24 bits.
    public let samplingFrequencyIndex: UInt8
    /// The (core) sampling frequency in Hz.
    public let samplingFrequency: Int
    /// `channelConfiguration`: 0 means the channels are described by a program config element.
    public let channelConfiguration: UInt8
    /// 5 (SBR) when the config explicitly signals HE-AAC with object type 5 or 29 (the latter adds parametric
    /// stereo, see ``hasParametricStereo``), otherwise `nil`.
    public let extensionAudioObjectType: UInt8?
    /// The output sampling frequency of SBR, when ``extensionAudioObjectType`` is set.
    public let extensionSamplingFrequency: Int?
    /// Whether the config signals HE-AAC v2 (object type 29, SBR with parametric stereo).
    public let hasParametricStereo: Bool

    /// Parses the config.
    ///
    /// - Parameter config: The config at the reader index: for an RTMP message, the bytes after the audio tag
    ///   header (``AudioTagHeader/codecData(in:)``).
    /// - Throws: ``MediaError`` with code ``MediaError/Code/truncated`` if the bits run out and
    ///   ``MediaError/Code/invalidConfigurationRecord`` for object type 0, a reserved sampling frequency index
    ///   (13, 14) or a zero explicit frequency.
    public init(parsing config: ByteBuffer) throws(MediaError) {
        var reader = BitReader(config, removingEmulationPrevention: false, what: "AAC AudioSpecificConfig")
        var objectType = try Self.readAudioObjectType(&reader)
        guard objectType != 0 else {
            throw .invalidConfigurationRecord("AAC audio object type 0 (null)")
        }
        let (index, frequency) = try Self.readSamplingFrequency(&reader)
        self.samplingFrequencyIndex = index
        self.samplingFrequency = frequency
        self.channelConfiguration = UInt8(try reader.readBits(4))

        // 1.6.2.1: explicit hierarchical signalling of SBR (5) and PS (29) comes before the core object type.
        if objectType == 5 || objectType == 29 {
            self.hasParametricStereo = objectType == 29
            self.extensionAudioObjectType = 5
            self.extensionSamplingFrequency = try Self.readSamplingFrequency(&reader).frequency
            objectType = try Self.readAudioObjectType(&reader)
        } else {
            self.hasParametricStereo = false
            self.extensionAudioObjectType = nil
            self.extensionSamplingFrequency = nil
        }
        self.audioObjectType = objectType
    }

    /// `GetAudioObjectType()`: 5 bits, or 32 plus 6 more bits after the escape value 31.
    private static func readAudioObjectType(_ reader: inout BitReader) throws(MediaError) -> UInt8 {
        let objectType = try reader.readBits(5)
        guard objectType == 31 else { return UInt8(objectType) }
        return UInt8(32 + (try reader.readBits(6)))
    }

    /// `samplingFrequencyIndex`, and the 24-bit `samplingFrequency` after the escape index 15.
    private static func readSamplingFrequency(
        _ reader: inout BitReader
    ) throws(MediaError) -> (index: UInt8, frequency: Int) {
        let index = Int(try reader.readBits(4))
        if index == 0xF {
            let frequency = Int(try reader.readBits(24))
            guard frequency > 0 else {
                throw .invalidConfigurationRecord("AAC explicit sampling frequency 0")
            }
            return (0xF, frequency)
        }
        guard index < Self.samplingFrequencies.count else {
            throw .invalidConfigurationRecord("AAC sampling frequency index \(index) is reserved")
        }
        return (UInt8(index), Self.samplingFrequencies[index])
    }

    /// The number of output channels for ``channelConfiguration`` (ISO/IEC 14496-3, table 1.19, and 23003-3),
    /// or `nil` for 0 (defined in a program config element) and reserved values.
    public var channelCount: Int? {
        switch self.channelConfiguration {
        case 1...6: Int(self.channelConfiguration)
        case 7: 8  // 7.1
        case 11: 7  // 6.1
        case 12: 8  // 7.1 with back channels
        case 13: 24  // 22.2
        case 14: 8  // 7.1 with top front channels
        default: nil
        }
    }
}
