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

/// An RTP header extension block (RFC 3550, 5.3.1): a 16-bit profile-defined value and the extension's data.
///
/// WebRTC uses the one-byte (`0xBEDE`) and two-byte (`0x100X`) forms of RFC 8285; the elements are not parsed here,
/// because nothing on the media path needs them.
public struct RTPHeaderExtension: Hashable, Sendable {
    /// The "defined by profile" field: `0xBEDE` for RFC 8285 one-byte elements.
    public var profile: UInt16
    /// The extension data, a multiple of four bytes long.
    public var data: ByteBuffer

    public init(profile: UInt16, data: ByteBuffer) {
        self.profile = profile
        self.data = data
    }
}

/// One RTP data packet (RFC 3550, section 5.1).
///
/// Parsing checks every length against the bytes that are there: the CSRC list, the extension and the padding count
/// are all peer-controlled. The payload is a slice of the input and shares its storage.
public struct RTPPacket: Hashable, Sendable {
    /// The payload type, 0 to 127.
    public var payloadType: UInt8
    /// The marker bit: for video, the last packet of a frame (RFC 6184, 5.1).
    public var marker: Bool
    public var sequenceNumber: UInt16
    /// The media timestamp, in the payload format's clock rate (90 kHz for video, 48 kHz for Opus).
    public var timestamp: UInt32
    /// The synchronization source.
    public var ssrc: UInt32
    /// The contributing sources (at most 15).
    public var csrcs: [UInt32]
    /// The header extension, if the X bit was set.
    public var headerExtension: RTPHeaderExtension?
    /// The payload, without padding.
    public var payload: ByteBuffer
    /// The number of padding bytes that followed the payload (0 when the P bit was clear).
    public var paddingLength: Int

    public init(
        payloadType: UInt8,
        marker: Bool = false,
        sequenceNumber: UInt16,
        timestamp: UInt32,
        ssrc: UInt32,
        csrcs: [UInt32] = [],
        headerExtension: RTPHeaderExtension? = nil,
        payload: ByteBuffer,
        paddingLength: Int = 0
    ) {
        self.payloadType = payloadType
        self.marker = marker
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrcs = csrcs
        self.headerExtension = headerExtension
        self.payload = payload
        self.paddingLength = paddingLength
    }

    /// Parses a packet from the readable bytes of `bytes`, without consuming them.
    ///
    /// - Throws: ``WebRTCMediaError`` with code ``WebRTCMediaError/Code/malformedPacket`` for a version other than 2,
    ///   an RTCP packet type (RFC 5761, 4), or a CSRC list, extension or padding count that runs past the end.
    public init(parsing bytes: ByteBuffer) throws(WebRTCMediaError) {
        let length = bytes.readableBytes
        guard length >= 12, let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self),
            let second = bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self),
            let sequenceNumber = bytes.getInteger(at: bytes.readerIndex + 2, as: UInt16.self),
            let timestamp = bytes.getInteger(at: bytes.readerIndex + 4, as: UInt32.self),
            let ssrc = bytes.getInteger(at: bytes.readerIndex + 8, as: UInt32.self)
        else {
            throw .malformed("RTP packet of \(length) bytes is shorter than the 12-byte fixed header")
        }
        guard first >> 6 == 2 else {
            throw .malformed("RTP version \(first >> 6), expected 2")
        }
        guard RTPDemultiplexer.classify(bytes) == .rtp else {
            throw .malformed("packet type \(second) is RTCP (RFC 5761), not RTP")
        }
        var offset = 12
        let csrcCount = Int(first & 0x0F)
        guard length >= offset + 4 * csrcCount else {
            throw .malformed("RTP CSRC list of \(csrcCount) entries runs past the \(length)-byte packet")
        }
        var csrcs: [UInt32] = []
        csrcs.reserveCapacity(csrcCount)
        for index in 0..<csrcCount {
            csrcs.append(bytes.getInteger(at: bytes.readerIndex + offset + 4 * index, as: UInt32.self)!)
        }
        offset += 4 * csrcCount

        var headerExtension: RTPHeaderExtension? = nil
        if first & 0x10 != 0 {
            guard let profile = bytes.getInteger(at: bytes.readerIndex + offset, as: UInt16.self),
                let words = bytes.getInteger(at: bytes.readerIndex + offset + 2, as: UInt16.self)
            else {
                throw .malformed("RTP header extension header runs past the \(length)-byte packet")
            }
            let dataLength = 4 * Int(words)
            guard let data = bytes.getSlice(at: bytes.readerIndex + offset + 4, length: dataLength) else {
                throw .malformed("RTP header extension of \(dataLength) bytes runs past the \(length)-byte packet")
            }
            headerExtension = RTPHeaderExtension(profile: profile, data: data)
            offset += 4 + dataLength
        }

        var paddingLength = 0
        if first & 0x20 != 0 {
            // RFC 3550 5.1: the last octet counts the padding, itself included.
            paddingLength = Int(bytes.getInteger(at: bytes.readerIndex + length - 1, as: UInt8.self)!)
            guard paddingLength > 0, offset + paddingLength <= length else {
                throw .malformed("RTP padding count \(paddingLength) does not fit the \(length)-byte packet")
            }
        }

        self.payloadType = second & 0x7F
        self.marker = second & 0x80 != 0
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrcs = csrcs
        self.headerExtension = headerExtension
        self.payload = bytes.getSlice(at: bytes.readerIndex + offset, length: length - offset - paddingLength)!
        self.paddingLength = paddingLength
    }

    /// Writes the packet: header, CSRCs, extension, payload, and ``paddingLength`` bytes of padding.
    ///
    /// - Precondition: at most 15 CSRCs, an extension whose data is a multiple of 4 bytes, padding below 256.
    @discardableResult
    public func write(to buffer: inout ByteBuffer) -> Int {
        precondition(self.csrcs.count <= 15, "RTP has room for 15 CSRCs")
        precondition(self.paddingLength < 256, "RTP padding is counted in one byte")
        let start = buffer.writerIndex
        var first: UInt8 = 0x80 | UInt8(self.csrcs.count)
        if self.paddingLength > 0 { first |= 0x20 }
        if self.headerExtension != nil { first |= 0x10 }
        buffer.writeInteger(first)
        buffer.writeInteger((self.marker ? 0x80 : 0) | (self.payloadType & 0x7F))
        buffer.writeInteger(self.sequenceNumber)
        buffer.writeInteger(self.timestamp)
        buffer.writeInteger(self.ssrc)
        for csrc in self.csrcs { buffer.writeInteger(csrc) }
        if let headerExtension = self.headerExtension {
            precondition(headerExtension.data.readableBytes % 4 == 0, "RTP extension data is counted in words")
            buffer.writeInteger(headerExtension.profile)
            buffer.writeInteger(UInt16(headerExtension.data.readableBytes / 4))
            buffer.writeImmutableBuffer(headerExtension.data)
        }
        buffer.writeImmutableBuffer(self.payload)
        if self.paddingLength > 0 {
            buffer.writeRepeatingByte(0, count: self.paddingLength - 1)
            buffer.writeInteger(UInt8(self.paddingLength))
        }
        return buffer.writerIndex - start
    }
}

/// Tells RTP from RTCP on a transport that carries both (RFC 5761, section 4), as WebRTC always does.
public enum RTPDemultiplexer {
    /// What a datagram is.
    public enum Kind: Hashable, Sendable {
        case rtp
        case rtcp
        /// Not version 2, or too short for either header.
        case neither
    }

    /// Classifies by the version bits and the second byte: RTCP packet types 192 to 223 collide with RTP payload
    /// types 64 to 95 with the marker set, which RFC 5761 therefore keeps out of use for RTP.
    public static func classify(_ bytes: ByteBuffer) -> Kind {
        guard bytes.readableBytes >= 4, let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self),
            first >> 6 == 2, let second = bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self)
        else {
            return .neither
        }
        if (192...223).contains(second) {
            return .rtcp
        }
        return bytes.readableBytes >= 12 ? .rtp : .neither
    }
}
