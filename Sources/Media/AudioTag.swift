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

/// The kind of packet an audio tag carries.
///
/// This is enhanced RTMP's `AudioPacketType`. Legacy AAC tags carry an `AACPacketType` (FLV 10.1 E.4.2.1: 0
/// sequence header, 1 raw) that ``AudioTagHeader`` reports as ``sequenceStart`` and ``codedFrames``. Legacy
/// formats other than AAC have no packet type and report `nil`.
public struct AudioPacketType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The codec configuration (AAC AudioSpecificConfig, Opus ID header, FLAC STREAMINFO).
    public static let sequenceStart = Self(rawValue: 0)
    /// Coded audio frames.
    public static let codedFrames = Self(rawValue: 1)
    /// End of the sequence; at least the meaning of the empty "silence" message (enhanced RTMP v2).
    public static let sequenceEnd = Self(rawValue: 2)
    /// Channel order and count for codecs whose configuration does not describe them (enhanced RTMP v2).
    public static let multichannelConfig = Self(rawValue: 4)
    /// Switches the message into multitrack mode; never the resolved packet type (enhanced RTMP v2).
    public static let multitrack = Self(rawValue: 5)
    /// Announces a modifier/extension block; never the resolved packet type (enhanced RTMP v2).
    public static let modEx = Self(rawValue: 7)

    public var description: String {
        switch self {
        case .sequenceStart: "SequenceStart"
        case .codedFrames: "CodedFrames"
        case .sequenceEnd: "SequenceEnd"
        case .multichannelConfig: "MultichannelConfig"
        case .multitrack: "Multitrack"
        case .modEx: "ModEx"
        default: "AudioPacketType\(self.rawValue)"
        }
    }
}

/// The audio codec named by a tag header.
///
/// Legacy FLV names the format with a 4-bit `SoundFormat` (FLV 10.1 E.4.2.1), enhanced RTMP with a ``FourCC``
/// after `SoundFormat` 9 (`ExHeader`); `mp4a` and sound format 10 are both ``aac``, `.mp3` and 2 both ``mp3``.
/// Reserved formats and unknown FOURCCs are kept raw.
public enum AudioCodec: Hashable, Sendable {
    /// Linear PCM, platform endian (sound format 0).
    case linearPCMPlatformEndian
    /// ADPCM (1).
    case adpcm
    /// MP3 (2, FOURCC `.mp3`).
    case mp3
    /// Linear PCM, little endian (3).
    case linearPCMLittleEndian
    /// Nellymoser 16 kHz mono (4).
    case nellymoser16kHzMono
    /// Nellymoser 8 kHz mono (5).
    case nellymoser8kHzMono
    /// Nellymoser (6).
    case nellymoser
    /// G.711 A-law (7).
    case g711ALaw
    /// G.711 mu-law (8).
    case g711MuLaw
    /// AAC (10, FOURCC `mp4a`).
    case aac
    /// Speex (11).
    case speex
    /// MP3 8 kHz (14).
    case mp3At8kHz
    /// Device-specific sound (15).
    case deviceSpecific
    /// Opus (FOURCC `Opus`).
    case opus
    /// FLAC (FOURCC `fLaC`).
    case flac
    /// AC-3 (FOURCC `ac-3`).
    case ac3
    /// E-AC-3 (FOURCC `ec-3`).
    case eac3
    /// A reserved legacy sound format (12 or 13).
    case unknownSoundFormat(UInt8)
    /// A FOURCC this module does not know.
    case unknownFourCC(FourCC)

    /// The codec for a legacy 4-bit FLV `SoundFormat` other than 9 (which announces the enhanced header).
    public init(soundFormat: UInt8) {
        switch soundFormat {
        case 0: self = .linearPCMPlatformEndian
        case 1: self = .adpcm
        case 2: self = .mp3
        case 3: self = .linearPCMLittleEndian
        case 4: self = .nellymoser16kHzMono
        case 5: self = .nellymoser8kHzMono
        case 6: self = .nellymoser
        case 7: self = .g711ALaw
        case 8: self = .g711MuLaw
        case 10: self = .aac
        case 11: self = .speex
        case 14: self = .mp3At8kHz
        case 15: self = .deviceSpecific
        default: self = .unknownSoundFormat(soundFormat)
        }
    }

    /// The codec for an enhanced RTMP audio FOURCC.
    public init(fourCC: FourCC) {
        switch fourCC {
        case .mp4a: self = .aac
        case .mp3: self = .mp3
        case .opus: self = .opus
        case .flac: self = .flac
        case .ac3: self = .ac3
        case .eac3: self = .eac3
        default: self = .unknownFourCC(fourCC)
        }
    }

    /// The enhanced RTMP FOURCC for this codec, or `nil` for the legacy-only formats.
    public var fourCC: FourCC? {
        switch self {
        case .aac: .mp4a
        case .mp3: .mp3
        case .opus: .opus
        case .flac: .flac
        case .ac3: .ac3
        case .eac3: .eac3
        case .unknownFourCC(let fourCC): fourCC
        default: nil
        }
    }
}

/// The header at the start of an RTMP audio message (an FLV `AUDIODATA` tag body), legacy or enhanced.
///
/// Like ``VideoTagHeader`` it reads only the first bytes, at offsets from the reader index, and copies nothing.
///
/// - Legacy FLV (FLV 10.1, E.4.2.1): `SoundFormat` UB[4], `SoundRate` UB[2], `SoundSize` UB[1], `SoundType`
///   UB[1]; AAC adds an `AACPacketType` UI8.
/// - Enhanced RTMP v1/v2 ("Enhanced Audio"): `SoundFormat` 9 (`ExHeader`), `AudioPacketType` UB[4], zero or more
///   `ModEx` blocks, then a multitrack byte and (unless every track has its own codec) a FOURCC, or a FOURCC.
///
/// An empty audio message is RTMP's undocumented "silence" message; it has no header and does not parse (it
/// classifies as ``MediaFrameKind/audioFrame``).
public struct AudioTagHeader: Hashable, Sendable {
    /// The codec, or `nil` for a multitrack message whose tracks each name their own codec.
    public let codec: AudioCodec?
    /// The packet type, resolved through `ModEx` and `Multitrack`; `nil` for legacy formats other than AAC.
    public let packetType: AudioPacketType?
    /// Whether the header uses enhanced RTMP's extended layout (`SoundFormat` 9).
    public let isEnhanced: Bool
    /// The multitrack layout, or `nil` for a single-track message.
    public let multitrackType: AVMultitrackType?
    /// The legacy `SoundRate` in Hz (5512, 11025, 22050 or 44100), `nil` for enhanced headers. Flash players
    /// ignore it for AAC, which always signals 44 kHz; the AudioSpecificConfig is authoritative there.
    public let sampleRate: Int?
    /// The legacy `SoundSize`: 8 or 16 bits per sample for uncompressed formats, `nil` for enhanced headers.
    public let bitsPerSample: Int?
    /// The legacy `SoundType`: 1 (mono) or 2 (stereo), `nil` for enhanced headers. AAC always signals stereo.
    public let channelCount: Int?
    /// The number of header bytes: the offset from the payload's reader index where the codec data starts.
    public let headerLength: Int

    /// Parses the header at the start of `payload` without consuming, copying or retaining it.
    ///
    /// - Throws: ``MediaError`` with code ``MediaError/Code/truncated`` if the payload ends inside the header
    ///   (including an empty payload), ``MediaError/Code/malformedTagHeader`` for an `AACPacketType` above 1 or
    ///   nested multitrack, ``MediaError/Code/unsupported`` for reserved packet or multitrack types.
    public init(parsing payload: ByteBuffer) throws(MediaError) {
        do {
            self = try Self.parse(payload)
        } catch {
            throw MediaError(error)
        }
    }

    private init(
        codec: AudioCodec?,
        packetType: AudioPacketType?,
        isEnhanced: Bool,
        multitrackType: AVMultitrackType? = nil,
        sampleRate: Int? = nil,
        bitsPerSample: Int? = nil,
        channelCount: Int? = nil,
        headerLength: Int
    ) {
        self.codec = codec
        self.packetType = packetType
        self.isEnhanced = isEnhanced
        self.multitrackType = multitrackType
        self.sampleRate = sampleRate
        self.bitsPerSample = bitsPerSample
        self.channelCount = channelCount
        self.headerLength = headerLength
    }

    /// Whether the message carries the codec configuration (AAC sequence header, enhanced `SequenceStart`). A relay
    /// keeps the latest one to send to late joiners.
    public var isSequenceHeader: Bool { self.packetType == .sequenceStart }

    /// Whether the message ends the sequence (enhanced `SequenceEnd`).
    public var isEndOfSequence: Bool { self.packetType == .sequenceEnd }

    /// Whether this is a multitrack message (enhanced RTMP v2).
    public var isMultitrack: Bool { self.multitrackType != nil }

    /// The relay's classification of the message (see ``MediaFrameKind``).
    public var kind: MediaFrameKind { self.isSequenceHeader ? .audioSequenceHeader : .audioFrame }

    /// The bytes after the header, as a slice that shares `payload`'s storage, or `nil` if `payload` is shorter
    /// than the header.
    public func codecData(in payload: ByteBuffer) -> ByteBuffer? {
        guard payload.readableBytes >= self.headerLength else { return nil }
        return payload.getSlice(
            at: payload.readerIndex + self.headerLength,
            length: payload.readableBytes - self.headerLength
        )
    }
}

extension AudioTagHeader {
    private static let exHeaderSoundFormat: UInt8 = 9
    private static let aacSoundFormat: UInt8 = 10

    /// The allocation-free parser behind ``init(parsing:)`` and ``MediaFrameKind/classify(audio:)``.
    static func parse(_ payload: ByteBuffer) throws(TagParseFailure) -> Self {
        guard let first = payload.mediaUInt8(at: 0) else {
            throw .truncated("audio tag header", needed: 1, available: 0)
        }
        let soundFormat = first >> 4
        guard soundFormat != Self.exHeaderSoundFormat else {
            return try Self.parseEnhanced(first: first, payload)
        }

        let sampleRate: Int
        switch (first >> 2) & 0x03 {
        case 0: sampleRate = 5512
        case 1: sampleRate = 11025
        case 2: sampleRate = 22050
        default: sampleRate = 44100
        }
        let bitsPerSample = first & 0x02 == 0 ? 8 : 16
        let channelCount = first & 0x01 == 0 ? 1 : 2

        guard soundFormat == Self.aacSoundFormat else {
            return Self(
                codec: AudioCodec(soundFormat: soundFormat),
                packetType: nil,
                isEnhanced: false,
                sampleRate: sampleRate,
                bitsPerSample: bitsPerSample,
                channelCount: channelCount,
                headerLength: 1
            )
        }
        guard let aacPacketType = payload.mediaUInt8(at: 1) else {
            throw .truncated("AAC audio tag header", needed: 2, available: payload.readableBytes)
        }
        guard aacPacketType <= 1 else {
            throw .malformed("AACPacketType", value: Int(aacPacketType))
        }
        return Self(
            codec: .aac,
            packetType: AudioPacketType(rawValue: aacPacketType),
            isEnhanced: false,
            sampleRate: sampleRate,
            bitsPerSample: bitsPerSample,
            channelCount: channelCount,
            headerLength: 2
        )
    }

    /// Enhanced RTMP v2, "Enhanced Audio", `ExAudioTagHeader`.
    private static func parseEnhanced(first: UInt8, _ payload: ByteBuffer) throws(TagParseFailure) -> Self {
        var packetType = AudioPacketType(rawValue: first & 0x0F)
        var offset = 1

        // Each ModEx block is at least three bytes long, so the loop ends with the payload.
        while packetType == .modEx {
            let (next, end) = try skipModExBlock(payload, at: offset, what: "audio ModEx block")
            packetType = AudioPacketType(rawValue: next)
            offset = end
        }

        var multitrackType: AVMultitrackType? = nil
        var codec: AudioCodec? = nil
        if packetType == .multitrack {
            guard let byte = payload.mediaUInt8(at: offset) else {
                throw .truncated(
                    "enhanced audio multitrack header",
                    needed: offset + 1,
                    available: payload.readableBytes
                )
            }
            offset += 1
            let type = AVMultitrackType(rawValue: byte >> 4)
            guard type.rawValue <= AVMultitrackType.manyTracksManyCodecs.rawValue else {
                throw .unsupported("reserved AvMultitrackType", value: Int(type.rawValue))
            }
            packetType = AudioPacketType(rawValue: byte & 0x0F)
            guard packetType != .multitrack && packetType != .modEx else {
                throw .malformed("AudioPacketType inside multitrack", value: Int(packetType.rawValue))
            }
            multitrackType = type
            if type != .manyTracksManyCodecs {
                guard let fourCC = payload.mediaUInt32(at: offset) else {
                    throw .truncated("enhanced audio FOURCC", needed: offset + 4, available: payload.readableBytes)
                }
                codec = AudioCodec(fourCC: FourCC(rawValue: fourCC))
                offset += 4
            }
        } else {
            guard let fourCC = payload.mediaUInt32(at: offset) else {
                throw .truncated("enhanced audio FOURCC", needed: offset + 4, available: payload.readableBytes)
            }
            codec = AudioCodec(fourCC: FourCC(rawValue: fourCC))
            offset += 4
        }

        switch packetType {
        case .sequenceStart, .codedFrames, .sequenceEnd, .multichannelConfig:
            break
        default:
            throw .unsupported("reserved AudioPacketType", value: Int(packetType.rawValue))
        }

        return Self(
            codec: codec,
            packetType: packetType,
            isEnhanced: true,
            multitrackType: multitrackType,
            headerLength: offset
        )
    }
}
