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

/// A reception report block of an SR or RR (RFC 3550, 6.4.1).
public struct RTCPReportBlock: Hashable, Sendable {
    /// The source this block reports on.
    public var ssrc: UInt32
    /// The fraction of packets lost since the previous report, in 1/256 units.
    public var fractionLost: UInt8
    /// Packets lost since the start of reception (24-bit signed: duplicates can make it negative).
    public var cumulativeLost: Int32
    /// The highest sequence number received, with the count of wraparounds in the upper 16 bits.
    public var extendedHighestSequenceNumber: UInt32
    /// The interarrival jitter in timestamp units (RFC 3550, 6.4.1 and A.8).
    public var jitter: UInt32
    /// The middle 32 bits of the NTP timestamp of the last SR from this source, or 0.
    public var lastSenderReport: UInt32
    /// The delay since that SR, in 1/65536 seconds, or 0.
    public var delaySinceLastSenderReport: UInt32

    public init(
        ssrc: UInt32,
        fractionLost: UInt8 = 0,
        cumulativeLost: Int32 = 0,
        extendedHighestSequenceNumber: UInt32 = 0,
        jitter: UInt32 = 0,
        lastSenderReport: UInt32 = 0,
        delaySinceLastSenderReport: UInt32 = 0
    ) {
        self.ssrc = ssrc
        self.fractionLost = fractionLost
        self.cumulativeLost = cumulativeLost
        self.extendedHighestSequenceNumber = extendedHighestSequenceNumber
        self.jitter = jitter
        self.lastSenderReport = lastSenderReport
        self.delaySinceLastSenderReport = delaySinceLastSenderReport
    }
}

/// A sender report (RFC 3550, 6.4.1, packet type 200): the sender's NTP wallclock at one RTP timestamp.
public struct RTCPSenderReport: Hashable, Sendable {
    public var ssrc: UInt32
    /// The 64-bit NTP timestamp: seconds since 1900 in the upper 32 bits, the fraction in the lower.
    public var ntpTimestamp: UInt64
    /// The RTP timestamp that corresponds to ``ntpTimestamp``.
    public var rtpTimestamp: UInt32
    public var packetCount: UInt32
    public var octetCount: UInt32
    public var reports: [RTCPReportBlock]

    public init(
        ssrc: UInt32,
        ntpTimestamp: UInt64,
        rtpTimestamp: UInt32,
        packetCount: UInt32,
        octetCount: UInt32,
        reports: [RTCPReportBlock] = []
    ) {
        self.ssrc = ssrc
        self.ntpTimestamp = ntpTimestamp
        self.rtpTimestamp = rtpTimestamp
        self.packetCount = packetCount
        self.octetCount = octetCount
        self.reports = reports
    }
}

/// A receiver report (RFC 3550, 6.4.2, packet type 201).
public struct RTCPReceiverReport: Hashable, Sendable {
    public var ssrc: UInt32
    public var reports: [RTCPReportBlock]

    public init(ssrc: UInt32, reports: [RTCPReportBlock] = []) {
        self.ssrc = ssrc
        self.reports = reports
    }
}

/// Source description items (RFC 3550, 6.5, packet type 202).
public struct RTCPSourceDescription: Hashable, Sendable {
    /// One item: its type (1 CNAME, 2 NAME, ...) and its UTF-8 text.
    public struct Item: Hashable, Sendable {
        public var type: UInt8
        public var value: String

        public init(type: UInt8, value: String) {
            self.type = type
            self.value = value
        }

        /// The canonical name item (type 1).
        public static func cname(_ value: String) -> Self { Self(type: 1, value: value) }
    }

    /// One chunk: a source and its items.
    public struct Chunk: Hashable, Sendable {
        public var ssrc: UInt32
        public var items: [Item]

        public init(ssrc: UInt32, items: [Item]) {
            self.ssrc = ssrc
            self.items = items
        }
    }

    public var chunks: [Chunk]

    public init(chunks: [Chunk]) { self.chunks = chunks }
}

/// Goodbye (RFC 3550, 6.6, packet type 203): the sources are leaving.
public struct RTCPBye: Hashable, Sendable {
    public var ssrcs: [UInt32]
    public var reason: String?

    public init(ssrcs: [UInt32], reason: String? = nil) {
        self.ssrcs = ssrcs
        self.reason = reason
    }
}

/// A generic NACK (RFC 4585, 6.2.1: transport-layer feedback, FMT 1): sequence numbers the receiver is missing.
public struct RTCPGenericNACK: Hashable, Sendable {
    public var senderSSRC: UInt32
    public var mediaSSRC: UInt32
    /// The missing sequence numbers, in the order written (each FCI entry is a PID and a 16-bit mask of the next 16).
    public var sequenceNumbers: [UInt16]

    public init(senderSSRC: UInt32, mediaSSRC: UInt32, sequenceNumbers: [UInt16]) {
        self.senderSSRC = senderSSRC
        self.mediaSSRC = mediaSSRC
        self.sequenceNumbers = sequenceNumbers
    }

    /// The FCI entries (PID, BLP) that cover ``sequenceNumbers``: each PID takes the 16 numbers after it into its
    /// bitmask, in the order of the list, wrapping at 65535.
    public var entries: [(pid: UInt16, bitmask: UInt16)] {
        var entries: [(pid: UInt16, bitmask: UInt16)] = []
        for sequenceNumber in self.sequenceNumbers {
            if let last = entries.last {
                let distance = sequenceNumber &- last.pid
                if distance == 0 { continue }
                if distance <= 16 {
                    entries[entries.count - 1].bitmask |= 1 << (distance - 1)
                    continue
                }
            }
            entries.append((pid: sequenceNumber, bitmask: 0))
        }
        return entries
    }
}

/// A picture loss indication (RFC 4585, 6.3.1: payload-specific feedback, FMT 1): please send a keyframe.
public struct RTCPPictureLossIndication: Hashable, Sendable {
    public var senderSSRC: UInt32
    public var mediaSSRC: UInt32

    public init(senderSSRC: UInt32, mediaSSRC: UInt32) {
        self.senderSSRC = senderSSRC
        self.mediaSSRC = mediaSSRC
    }
}

/// A full intra request (RFC 5104, 4.3.1: payload-specific feedback, FMT 4): a keyframe, now, with a command
/// sequence number per source so that a retransmitted request is not served twice.
public struct RTCPFullIntraRequest: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var ssrc: UInt32
        public var sequenceNumber: UInt8

        public init(ssrc: UInt32, sequenceNumber: UInt8) {
            self.ssrc = ssrc
            self.sequenceNumber = sequenceNumber
        }
    }

    public var senderSSRC: UInt32
    public var entries: [Entry]

    public init(senderSSRC: UInt32, entries: [Entry]) {
        self.senderSSRC = senderSSRC
        self.entries = entries
    }
}

/// A receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb-03: application-layer feedback, PSFB FMT 15,
/// identifier `REMB`): the most the receiver wants the sender to send, summed over the listed sources.
public struct RTCPReceiverEstimatedMaximumBitrate: Hashable, Sendable {
    public var senderSSRC: UInt32
    /// Bits per second. Written as a 6-bit exponent and an 18-bit mantissa, so values above 2^18 lose precision
    /// (always rounded down, as the draft asks).
    public var bitrate: UInt64
    public var ssrcs: [UInt32]

    public init(senderSSRC: UInt32, bitrate: UInt64, ssrcs: [UInt32]) {
        self.senderSSRC = senderSSRC
        self.bitrate = bitrate
        self.ssrcs = ssrcs
    }
}

/// One RTCP packet of a compound packet (RFC 3550, 6.1; feedback from RFC 4585 and RFC 5104).
public enum RTCPPacket: Hashable, Sendable {
    case senderReport(RTCPSenderReport)
    case receiverReport(RTCPReceiverReport)
    case sourceDescription(RTCPSourceDescription)
    case bye(RTCPBye)
    case genericNACK(RTCPGenericNACK)
    case pictureLossIndication(RTCPPictureLossIndication)
    case fullIntraRequest(RTCPFullIntraRequest)
    case receiverEstimatedMaximumBitrate(RTCPReceiverEstimatedMaximumBitrate)
    /// A packet type or feedback format this module does not parse (APP, XR, transport-cc, ...), kept whole.
    case other(packetType: UInt8, count: UInt8, body: ByteBuffer)

    /// Packet types (RFC 3550 12.1, RFC 4585 6.1).
    public enum PacketType {
        public static let senderReport: UInt8 = 200
        public static let receiverReport: UInt8 = 201
        public static let sourceDescription: UInt8 = 202
        public static let bye: UInt8 = 203
        public static let application: UInt8 = 204
        public static let transportFeedback: UInt8 = 205
        public static let payloadSpecificFeedback: UInt8 = 206
    }

    /// Parses every packet of a compound (or RFC 5506 reduced-size) RTCP packet.
    ///
    /// Each packet's length must fit the bytes that are there, and every count inside it (report blocks, SDES
    /// chunks and items, NACK entries) is checked against that length, so the work is bounded by the input size.
    ///
    /// - Throws: ``WebRTCMediaError`` with code ``WebRTCMediaError/Code/malformedPacket`` for a version other than
    ///   2, a length that runs past the end, or a body too short for what its header announces.
    public static func parseCompound(_ bytes: ByteBuffer) throws(WebRTCMediaError) -> [RTCPPacket] {
        var packets: [RTCPPacket] = []
        var offset = bytes.readerIndex
        let end = bytes.writerIndex
        guard end - offset >= 4 else {
            throw .malformed("RTCP packet of \(end - offset) bytes is shorter than the 4-byte header")
        }
        while offset < end {
            guard end - offset >= 4, let first = bytes.getInteger(at: offset, as: UInt8.self),
                let packetType = bytes.getInteger(at: offset + 1, as: UInt8.self),
                let words = bytes.getInteger(at: offset + 2, as: UInt16.self)
            else {
                throw .malformed("RTCP compound packet ends inside a header")
            }
            guard first >> 6 == 2 else {
                throw .malformed("RTCP version \(first >> 6), expected 2")
            }
            let length = 4 * (Int(words) + 1)
            guard offset + length <= end else {
                throw .malformed("RTCP packet type \(packetType) of \(length) bytes runs past the compound packet")
            }
            var bodyLength = length - 4
            if first & 0x20 != 0 {
                let padding = Int(bytes.getInteger(at: offset + length - 1, as: UInt8.self)!)
                guard padding > 0, padding <= bodyLength else {
                    throw .malformed("RTCP padding count \(padding) does not fit the \(length)-byte packet")
                }
                bodyLength -= padding
            }
            let body = bytes.getSlice(at: offset + 4, length: bodyLength)!
            packets.append(try Self.parse(packetType: packetType, count: first & 0x1F, body: body))
            offset += length
        }
        return packets
    }

    private static func parse(
        packetType: UInt8,
        count: UInt8,
        body: ByteBuffer
    ) throws(WebRTCMediaError) -> RTCPPacket {
        var body = body
        switch packetType {
        case PacketType.senderReport:
            guard let ssrc = body.readInteger(as: UInt32.self), let ntp = body.readInteger(as: UInt64.self),
                let rtp = body.readInteger(as: UInt32.self), let packets = body.readInteger(as: UInt32.self),
                let octets = body.readInteger(as: UInt32.self)
            else {
                throw .malformed("RTCP sender report is shorter than its 24-byte sender info")
            }
            let reports = try Self.readReportBlocks(&body, count: Int(count), what: "sender report")
            return .senderReport(
                RTCPSenderReport(
                    ssrc: ssrc,
                    ntpTimestamp: ntp,
                    rtpTimestamp: rtp,
                    packetCount: packets,
                    octetCount: octets,
                    reports: reports
                )
            )
        case PacketType.receiverReport:
            guard let ssrc = body.readInteger(as: UInt32.self) else {
                throw .malformed("RTCP receiver report has no SSRC")
            }
            let reports = try Self.readReportBlocks(&body, count: Int(count), what: "receiver report")
            return .receiverReport(RTCPReceiverReport(ssrc: ssrc, reports: reports))
        case PacketType.sourceDescription:
            return .sourceDescription(try Self.readSourceDescription(&body, count: Int(count)))
        case PacketType.bye:
            var ssrcs: [UInt32] = []
            for _ in 0..<count {
                guard let ssrc = body.readInteger(as: UInt32.self) else {
                    throw .malformed("RTCP BYE announces \(count) sources but is shorter")
                }
                ssrcs.append(ssrc)
            }
            var reason: String? = nil
            if let reasonLength = body.readInteger(as: UInt8.self) {
                guard let text = body.readString(length: Int(reasonLength)) else {
                    throw .malformed("RTCP BYE reason of \(reasonLength) bytes runs past the packet")
                }
                reason = text
            }
            return .bye(RTCPBye(ssrcs: ssrcs, reason: reason))
        case PacketType.transportFeedback where count == 1:
            guard let sender = body.readInteger(as: UInt32.self), let media = body.readInteger(as: UInt32.self) else {
                throw .malformed("RTCP generic NACK is shorter than its two SSRCs")
            }
            var sequenceNumbers: [UInt16] = []
            while let pid = body.readInteger(as: UInt16.self) {
                guard let bitmask = body.readInteger(as: UInt16.self) else {
                    throw .malformed("RTCP generic NACK ends inside an FCI entry")
                }
                sequenceNumbers.append(pid)
                for bit in 0..<16 where bitmask & (1 << bit) != 0 {
                    sequenceNumbers.append(pid &+ UInt16(bit + 1))
                }
            }
            return .genericNACK(RTCPGenericNACK(senderSSRC: sender, mediaSSRC: media, sequenceNumbers: sequenceNumbers))
        case PacketType.payloadSpecificFeedback where count == 1:
            guard let sender = body.readInteger(as: UInt32.self), let media = body.readInteger(as: UInt32.self) else {
                throw .malformed("RTCP PLI is shorter than its two SSRCs")
            }
            return .pictureLossIndication(RTCPPictureLossIndication(senderSSRC: sender, mediaSSRC: media))
        case PacketType.payloadSpecificFeedback where count == 4:
            guard let sender = body.readInteger(as: UInt32.self), body.readInteger(as: UInt32.self) != nil else {
                throw .malformed("RTCP FIR is shorter than its two SSRCs")
            }
            var entries: [RTCPFullIntraRequest.Entry] = []
            while let ssrc = body.readInteger(as: UInt32.self) {
                guard let sequenceNumber = body.readInteger(as: UInt8.self), body.readBytes(length: 3) != nil else {
                    throw .malformed("RTCP FIR ends inside an FCI entry")
                }
                entries.append(RTCPFullIntraRequest.Entry(ssrc: ssrc, sequenceNumber: sequenceNumber))
            }
            return .fullIntraRequest(RTCPFullIntraRequest(senderSSRC: sender, entries: entries))
        case PacketType.payloadSpecificFeedback
        where count == 15 && body.getString(at: body.readerIndex + 8, length: 4) == "REMB":
            guard let sender = body.readInteger(as: UInt32.self), body.readInteger(as: UInt32.self) != nil,
                body.readInteger(as: UInt32.self) != nil, let numberOfSSRCs = body.readInteger(as: UInt8.self),
                let exponentAndMantissa = body.readInteger(as: UInt8.self),
                let mantissaLow = body.readInteger(as: UInt16.self)
            else {
                throw .malformed("RTCP REMB is shorter than its 16-byte fixed part")
            }
            let exponent = UInt64(exponentAndMantissa >> 2)
            let mantissa = UInt64(exponentAndMantissa & 0x03) << 16 | UInt64(mantissaLow)
            guard exponent <= 46 else {
                throw .malformed("RTCP REMB exponent \(exponent) overflows 64 bits")
            }
            var ssrcs: [UInt32] = []
            for _ in 0..<numberOfSSRCs {
                guard let ssrc = body.readInteger(as: UInt32.self) else {
                    throw .malformed("RTCP REMB announces \(numberOfSSRCs) sources but is shorter")
                }
                ssrcs.append(ssrc)
            }
            return .receiverEstimatedMaximumBitrate(
                RTCPReceiverEstimatedMaximumBitrate(senderSSRC: sender, bitrate: mantissa << exponent, ssrcs: ssrcs)
            )
        default:
            return .other(packetType: packetType, count: count, body: body)
        }
    }

    private static func readReportBlocks(
        _ body: inout ByteBuffer,
        count: Int,
        what: StaticString
    ) throws(WebRTCMediaError) -> [RTCPReportBlock] {
        guard body.readableBytes >= 24 * count else {
            throw .malformed("RTCP \(what) announces \(count) report blocks but has \(body.readableBytes) bytes")
        }
        var blocks: [RTCPReportBlock] = []
        blocks.reserveCapacity(count)
        for _ in 0..<count {
            let ssrc = body.readInteger(as: UInt32.self)!
            let lost = body.readInteger(as: UInt32.self)!
            // 24-bit two's complement, sign-extended.
            let cumulative = Int32(bitPattern: (lost & 0x00FF_FFFF) << 8) >> 8
            blocks.append(
                RTCPReportBlock(
                    ssrc: ssrc,
                    fractionLost: UInt8(lost >> 24),
                    cumulativeLost: cumulative,
                    extendedHighestSequenceNumber: body.readInteger(as: UInt32.self)!,
                    jitter: body.readInteger(as: UInt32.self)!,
                    lastSenderReport: body.readInteger(as: UInt32.self)!,
                    delaySinceLastSenderReport: body.readInteger(as: UInt32.self)!
                )
            )
        }
        return blocks
    }

    private static func readSourceDescription(
        _ body: inout ByteBuffer,
        count: Int
    ) throws(WebRTCMediaError) -> RTCPSourceDescription {
        var chunks: [RTCPSourceDescription.Chunk] = []
        for _ in 0..<count {
            let chunkStart = body.readerIndex
            guard let ssrc = body.readInteger(as: UInt32.self) else {
                throw .malformed("RTCP SDES announces \(count) chunks but is shorter")
            }
            var items: [RTCPSourceDescription.Item] = []
            while true {
                guard let type = body.readInteger(as: UInt8.self) else {
                    throw .malformed("RTCP SDES chunk has no end item")
                }
                if type == 0 { break }
                guard let length = body.readInteger(as: UInt8.self), let value = body.readString(length: Int(length))
                else {
                    throw .malformed("RTCP SDES item of type \(type) runs past the packet")
                }
                items.append(RTCPSourceDescription.Item(type: type, value: value))
            }
            // Each chunk ends on a 32-bit boundary: the end item is followed by up to three more zero bytes.
            let consumed = body.readerIndex - chunkStart
            body.moveReaderIndex(forwardBy: min((4 - consumed % 4) % 4, body.readableBytes))
            chunks.append(RTCPSourceDescription.Chunk(ssrc: ssrc, items: items))
        }
        return RTCPSourceDescription(chunks: chunks)
    }
}

extension RTCPPacket {
    /// Writes the packet with its common header (no padding).
    ///
    /// - Precondition: at most 31 report blocks, SDES chunks or BYE sources; SDES texts and a BYE reason of at
    ///   most 255 bytes; at most 255 REMB sources. ``other(packetType:count:body:)`` needs a body that is a
    ///   multiple of 4 bytes.
    @discardableResult
    public func write(to buffer: inout ByteBuffer) -> Int {
        let start = buffer.writerIndex
        switch self {
        case .senderReport(let report):
            precondition(report.reports.count <= 31, "RTCP counts report blocks in 5 bits")
            Self.writeHeader(&buffer, count: UInt8(report.reports.count), packetType: PacketType.senderReport)
            buffer.writeInteger(report.ssrc)
            buffer.writeInteger(report.ntpTimestamp)
            buffer.writeInteger(report.rtpTimestamp)
            buffer.writeInteger(report.packetCount)
            buffer.writeInteger(report.octetCount)
            for block in report.reports { Self.writeReportBlock(&buffer, block) }
        case .receiverReport(let report):
            precondition(report.reports.count <= 31, "RTCP counts report blocks in 5 bits")
            Self.writeHeader(&buffer, count: UInt8(report.reports.count), packetType: PacketType.receiverReport)
            buffer.writeInteger(report.ssrc)
            for block in report.reports { Self.writeReportBlock(&buffer, block) }
        case .sourceDescription(let description):
            precondition(description.chunks.count <= 31, "RTCP counts SDES chunks in 5 bits")
            Self.writeHeader(&buffer, count: UInt8(description.chunks.count), packetType: PacketType.sourceDescription)
            for chunk in description.chunks {
                let chunkStart = buffer.writerIndex
                buffer.writeInteger(chunk.ssrc)
                for item in chunk.items {
                    let utf8 = Array(item.value.utf8)
                    precondition(utf8.count <= 255, "an SDES item holds at most 255 bytes")
                    buffer.writeInteger(item.type)
                    buffer.writeInteger(UInt8(utf8.count))
                    buffer.writeBytes(utf8)
                }
                // The end item, then zeros to the next 32-bit boundary.
                let length = buffer.writerIndex - chunkStart + 1
                buffer.writeRepeatingByte(0, count: 1 + (4 - length % 4) % 4)
            }
        case .bye(let bye):
            precondition(bye.ssrcs.count <= 31, "RTCP counts BYE sources in 5 bits")
            Self.writeHeader(&buffer, count: UInt8(bye.ssrcs.count), packetType: PacketType.bye)
            for ssrc in bye.ssrcs { buffer.writeInteger(ssrc) }
            if let reason = bye.reason {
                let utf8 = Array(reason.utf8)
                precondition(utf8.count <= 255, "a BYE reason holds at most 255 bytes")
                buffer.writeInteger(UInt8(utf8.count))
                buffer.writeBytes(utf8)
                buffer.writeRepeatingByte(0, count: (4 - (utf8.count + 1) % 4) % 4)
            }
        case .genericNACK(let nack):
            Self.writeHeader(&buffer, count: 1, packetType: PacketType.transportFeedback)
            buffer.writeInteger(nack.senderSSRC)
            buffer.writeInteger(nack.mediaSSRC)
            for entry in nack.entries {
                buffer.writeInteger(entry.pid)
                buffer.writeInteger(entry.bitmask)
            }
        case .pictureLossIndication(let pli):
            Self.writeHeader(&buffer, count: 1, packetType: PacketType.payloadSpecificFeedback)
            buffer.writeInteger(pli.senderSSRC)
            buffer.writeInteger(pli.mediaSSRC)
        case .fullIntraRequest(let fir):
            Self.writeHeader(&buffer, count: 4, packetType: PacketType.payloadSpecificFeedback)
            buffer.writeInteger(fir.senderSSRC)
            buffer.writeInteger(UInt32(0))  // RFC 5104 4.3.1.2: the media source SSRC is unused and 0.
            for entry in fir.entries {
                buffer.writeInteger(entry.ssrc)
                buffer.writeInteger(entry.sequenceNumber)
                buffer.writeRepeatingByte(0, count: 3)
            }
        case .receiverEstimatedMaximumBitrate(let remb):
            precondition(remb.ssrcs.count <= 255, "REMB counts sources in 8 bits")
            Self.writeHeader(&buffer, count: 15, packetType: PacketType.payloadSpecificFeedback)
            buffer.writeInteger(remb.senderSSRC)
            buffer.writeInteger(UInt32(0))
            buffer.writeString("REMB")
            buffer.writeInteger(UInt8(remb.ssrcs.count))
            var mantissa = remb.bitrate
            var exponent: UInt64 = 0
            while mantissa >= 1 << 18 {
                mantissa >>= 1
                exponent += 1
            }
            buffer.writeInteger(UInt8(exponent << 2 | mantissa >> 16))
            buffer.writeInteger(UInt16(truncatingIfNeeded: mantissa))
            for ssrc in remb.ssrcs { buffer.writeInteger(ssrc) }
        case .other(let packetType, let count, let body):
            precondition(body.readableBytes % 4 == 0, "an RTCP body is a whole number of 32-bit words")
            Self.writeHeader(&buffer, count: count, packetType: packetType)
            buffer.writeImmutableBuffer(body)
        }
        // The length field: the packet's size in 32-bit words, minus one.
        let words = (buffer.writerIndex - start) / 4 - 1
        buffer.setInteger(UInt16(words), at: start + 2)
        return buffer.writerIndex - start
    }

    private static func writeHeader(_ buffer: inout ByteBuffer, count: UInt8, packetType: UInt8) {
        buffer.writeInteger(0x80 | (count & 0x1F))
        buffer.writeInteger(packetType)
        buffer.writeInteger(UInt16(0))
    }

    private static func writeReportBlock(_ buffer: inout ByteBuffer, _ block: RTCPReportBlock) {
        buffer.writeInteger(block.ssrc)
        let cumulative = UInt32(bitPattern: max(-0x80_0000, min(0x7F_FFFF, block.cumulativeLost))) & 0x00FF_FFFF
        buffer.writeInteger(UInt32(block.fractionLost) << 24 | cumulative)
        buffer.writeInteger(block.extendedHighestSequenceNumber)
        buffer.writeInteger(block.jitter)
        buffer.writeInteger(block.lastSenderReport)
        buffer.writeInteger(block.delaySinceLastSenderReport)
    }

    /// Writes `packets` one after the other as one compound packet.
    public static func compound(
        _ packets: [RTCPPacket],
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    )
        -> ByteBuffer
    {
        var buffer = allocator.buffer(capacity: 128)
        for packet in packets { packet.write(to: &buffer) }
        return buffer
    }
}
