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

/// A four-character code, the codec identifier of enhanced RTMP.
///
/// Enhanced RTMP (veovera/enhanced-rtmp v1 and v2, "Enhanced Audio" and "Enhanced Video") replaces the 4-bit FLV
/// codec ids with a FOURCC that follows the tag header's first byte, written big-endian: `avc1` is `0x61766331`.
/// Keeping the raw 32 bits, rather than an enum, lets the relay carry codecs it has never heard of.
public struct FourCC: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The four characters as one big-endian integer, exactly as they appear on the wire.
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Makes a code from exactly four ASCII characters, for example `FourCC("hvc1")`.
    public init?(_ string: String) {
        var value: UInt32 = 0
        var count = 0
        for byte in string.utf8 {
            guard byte < 0x80, count < 4 else { return nil }
            value = value << 8 | UInt32(byte)
            count += 1
        }
        guard count == 4 else { return nil }
        self.rawValue = value
    }

    private init(_ a: Unicode.Scalar, _ b: Unicode.Scalar, _ c: Unicode.Scalar, _ d: Unicode.Scalar) {
        self.rawValue = a.value << 24 | b.value << 16 | c.value << 8 | d.value
    }

    /// H.264/AVC (ISO/IEC 14496-15 `AVCDecoderConfigurationRecord`).
    public static let avc1 = Self("a", "v", "c", "1")
    /// H.265/HEVC (ISO/IEC 14496-15 `HEVCDecoderConfigurationRecord`).
    public static let hvc1 = Self("h", "v", "c", "1")
    /// AV1 (`AV1CodecConfigurationRecord`).
    public static let av01 = Self("a", "v", "0", "1")
    /// VP9 (`VPCodecConfigurationRecord`).
    public static let vp09 = Self("v", "p", "0", "9")
    /// VP8 (`VPCodecConfigurationRecord`).
    public static let vp08 = Self("v", "p", "0", "8")

    /// AAC (ISO/IEC 14496-3 AudioSpecificConfig as the sequence start).
    public static let mp4a = Self("m", "p", "4", "a")
    /// MP3.
    public static let mp3 = Self(".", "m", "p", "3")
    /// Opus (RFC 7845 ID header as the sequence start).
    public static let opus = Self("O", "p", "u", "s")
    /// FLAC (`fLaC` signature and STREAMINFO as the sequence start).
    public static let flac = Self("f", "L", "a", "C")
    /// Dolby AC-3.
    public static let ac3 = Self("a", "c", "-", "3")
    /// Dolby E-AC-3.
    public static let eac3 = Self("e", "c", "-", "3")

    /// The four characters when they are printable ASCII, otherwise `0x` and eight hex digits.
    public var description: String {
        var scalars = String.UnicodeScalarView()
        for shift in stride(from: 24, through: 0, by: -8) {
            let byte = UInt8(truncatingIfNeeded: self.rawValue >> UInt32(shift))
            guard (0x20...0x7E).contains(byte) else {
                let hex = String(self.rawValue, radix: 16)
                return "0x" + String(repeating: "0", count: 8 - hex.count) + hex
            }
            scalars.append(Unicode.Scalar(byte))
        }
        return String(scalars)
    }
}

/// How the tracks of an enhanced RTMP multitrack message are laid out (enhanced RTMP v2, `AvMultitrackType`).
///
/// The relay does not demultiplex tracks; it only needs to know that a message is multitrack so that it does not
/// mistake the per-track bytes for codec data.
public struct AVMultitrackType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// One track, with a track id but no per-track size.
    public static let oneTrack = Self(rawValue: 0)
    /// Several tracks with the same codec, each with a track id and a 24-bit size.
    public static let manyTracks = Self(rawValue: 1)
    /// Several tracks, each naming its own codec with a FOURCC before its track id.
    public static let manyTracksManyCodecs = Self(rawValue: 2)

    public var description: String {
        switch self {
        case .oneTrack: "OneTrack"
        case .manyTracks: "ManyTracks"
        case .manyTracksManyCodecs: "ManyTracksManyCodecs"
        default: "AvMultitrackType\(self.rawValue)"
        }
    }
}
