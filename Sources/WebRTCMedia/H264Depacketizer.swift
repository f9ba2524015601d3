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

/// One H.264 picture as it came out of RTP: its NAL units in decoding order, and whether all of it arrived.
public struct H264AccessUnit: Sendable, Hashable {
    /// The RTP timestamp of every packet of the access unit (RFC 6184, 5.1).
    public var rtpTimestamp: UInt32
    /// The NAL units, each with its one-byte header, without start code or length prefix.
    public var nalUnits: [ByteBuffer]
    /// Whether a part may be missing: a loss inside it or just before it (unless it provably starts at its first
    /// slice), a fragment without its start or end, or a packet that could not be depacketized. A decoder must not
    /// be given a damaged access unit.
    public var isDamaged: Bool

    public init(rtpTimestamp: UInt32, nalUnits: [ByteBuffer], isDamaged: Bool = false) {
        self.rtpTimestamp = rtpTimestamp
        self.nalUnits = nalUnits
        self.isDamaged = isDamaged
    }

    /// Whether the access unit holds an IDR picture (NAL unit type 5): a decoder can start here.
    public var isKeyframe: Bool { self.nalUnits.contains { $0.h264NALUnitType == H264NALUnitType.idrSlice } }
}

/// H.264 NAL unit types (ITU-T H.264 table 7-1) and the RTP payload structures of RFC 6184 (5.2).
public enum H264NALUnitType {
    public static let nonIDRSlice: UInt8 = 1
    public static let idrSlice: UInt8 = 5
    public static let sei: UInt8 = 6
    public static let sequenceParameterSet: UInt8 = 7
    public static let pictureParameterSet: UInt8 = 8
    public static let accessUnitDelimiter: UInt8 = 9
    public static let endOfSequence: UInt8 = 10
    public static let endOfStream: UInt8 = 11
    public static let fillerData: UInt8 = 12
    /// Single-time aggregation packet (packetization modes 1 and 2).
    public static let stapA: UInt8 = 24
    /// Single-time aggregation packet with decoding order numbers (interleaved mode only).
    public static let stapB: UInt8 = 25
    /// Multi-time aggregation packets (interleaved mode only).
    public static let mtap16: UInt8 = 26
    public static let mtap24: UInt8 = 27
    /// Fragmentation unit (packetization modes 1 and 2).
    public static let fuA: UInt8 = 28
    /// Fragmentation unit with a decoding order number (interleaved mode only).
    public static let fuB: UInt8 = 29
}

extension ByteBuffer {
    /// The `nal_unit_type` of a NAL unit at the reader index, or `nil` when empty.
    var h264NALUnitType: UInt8? {
        self.getInteger(at: self.readerIndex, as: UInt8.self).map { $0 & 0x1F }
    }
}

/// Turns the RTP packets of an H.264 stream (RFC 6184, packetization-mode 1: single NAL unit packets, STAP-A and
/// FU-A) into access units.
///
/// A value-typed state machine fed in sequence order (from a ``JitterBuffer``): ``push(_:)`` for each packet,
/// ``lost()`` for each gap the jitter buffer gave up on. An access unit ends with the marker bit, or when a packet
/// with another timestamp starts the next one (a lost marker).
///
/// Interleaved mode (STAP-B, MTAP16, MTAP24, FU-B) is never negotiated by this ingest; such a packet is refused with
/// a clear error and damages its access unit. Sizes are bounded: one NAL unit (which caps FU-A reassembly), one
/// access unit, and the NAL units in it.
public struct H264Depacketizer: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// The largest NAL unit, reassembled from fragments or not.
        public var maximumNALUnitSize = 4 * 1024 * 1024
        /// The largest access unit, all NAL units together.
        public var maximumAccessUnitSize = 8 * 1024 * 1024
        /// The most NAL units in one access unit.
        public var maximumNALUnitsPerAccessUnit = 1024

        public init() {}
    }

    public let configuration: Configuration

    private var current: H264AccessUnit?
    private var currentSize = 0
    /// The FU-A being reassembled, with its reconstructed NAL header as the first byte.
    private var fragment: ByteBuffer?
    /// Whether packets were lost since the last one pushed.
    private var lossPending = false

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Notes that packets were lost before the next one: the access unit in progress is damaged, and the next one
    /// unless it starts at its first slice.
    public mutating func lost() {
        self.current?.isDamaged = true
        self.fragment = nil
        self.lossPending = true
    }

    /// What one packet produced.
    public struct Output: Sendable {
        /// The access units completed by the packet: the previous one if the packet started another (its marker
        /// was lost), and the packet's own if it carries the marker.
        public var accessUnits: [H264AccessUnit] = []
        /// Why the packet's payload was refused, if it was: malformed, interleaved mode, or over a limit. The
        /// payload is skipped and its access unit marked damaged; the depacketizer stays usable.
        public var error: WebRTCMediaError?
    }

    /// Takes the next packet in sequence order.
    public mutating func push(_ packet: RTPPacket) -> Output {
        var output = Output()
        if let current = self.current, current.rtpTimestamp != packet.timestamp {
            output.accessUnits.append(self.finish())
        }
        if self.current == nil {
            self.current = H264AccessUnit(rtpTimestamp: packet.timestamp, nalUnits: [])
            self.currentSize = 0
            // Whatever was lost may have been the start of this access unit; finish() checks.
            self.currentStartedAfterLoss = self.lossPending
        }
        self.lossPending = false
        do {
            try self.depacketize(packet.payload)
        } catch {
            self.current?.isDamaged = true
            self.fragment = nil
            output.error = error
        }
        if packet.marker {
            output.accessUnits.append(self.finish())
        }
        return output
    }

    /// Ends the access unit in progress, if any (at the end of the stream).
    public mutating func flush() -> H264AccessUnit? {
        self.current == nil ? nil : self.finish()
    }

    /// Whether the access unit in progress began right after a loss.
    private var currentStartedAfterLoss = false

    /// Whether the first VCL NAL unit of `unit` is its first slice (`first_mb_in_slice` 0, coded as the single bit
    /// 1): then a loss just before it cost nothing of this picture. Parameter sets and SEI before it do not count.
    private static func startsAtFirstSlice(_ unit: H264AccessUnit) -> Bool {
        for nal in unit.nalUnits {
            let type = nal.h264NALUnitType
            if type == H264NALUnitType.nonIDRSlice || type == H264NALUnitType.idrSlice {
                guard let byte = nal.getInteger(at: nal.readerIndex + 1, as: UInt8.self) else { return false }
                return byte & 0x80 != 0
            }
        }
        return false
    }

    private mutating func finish() -> H264AccessUnit {
        var unit = self.current!
        if self.fragment != nil {
            // A fragment without its end.
            unit.isDamaged = true
            self.fragment = nil
        }
        if unit.nalUnits.isEmpty || (self.currentStartedAfterLoss && !Self.startsAtFirstSlice(unit)) {
            unit.isDamaged = true
        }
        self.currentStartedAfterLoss = false
        self.current = nil
        self.currentSize = 0
        return unit
    }

    private mutating func depacketize(_ payload: ByteBuffer) throws(WebRTCMediaError) {
        guard let header = payload.getInteger(at: payload.readerIndex, as: UInt8.self) else {
            throw .malformed("empty H.264 RTP payload")
        }
        guard header & 0x80 == 0 else {
            throw .malformed("H.264 NAL unit header with forbidden_zero_bit set")
        }
        let type = header & 0x1F
        switch type {
        case 1...23:
            try self.append(payload)
        case H264NALUnitType.stapA:
            var body = payload.getSlice(at: payload.readerIndex + 1, length: payload.readableBytes - 1)!
            var count = 0
            while body.readableBytes > 0 {
                guard let size = body.readInteger(as: UInt16.self), size > 0,
                    let nal = body.readSlice(length: Int(size))
                else {
                    throw .malformed("H.264 STAP-A unit size runs past the \(payload.readableBytes)-byte payload")
                }
                try self.append(nal)
                count += 1
            }
            guard count > 0 else {
                throw .malformed("H.264 STAP-A without NAL units")
            }
        case H264NALUnitType.fuA:
            try self.fragmentUnit(payload, indicator: header)
        case H264NALUnitType.stapB, H264NALUnitType.mtap16, H264NALUnitType.mtap24, H264NALUnitType.fuB:
            throw WebRTCMediaError(
                code: .unsupportedPacketization,
                message:
                    "H.264 RTP packet type \(type) (\(Self.name(of: type))) belongs to interleaved mode "
                    + "(packetization-mode=2); this ingest takes packetization-mode=1 only"
            )
        default:
            throw .malformed("H.264 RTP packet with reserved NAL unit type \(type)")
        }
    }

    private static func name(of type: UInt8) -> String {
        switch type {
        case H264NALUnitType.stapB: "STAP-B"
        case H264NALUnitType.mtap16: "MTAP16"
        case H264NALUnitType.mtap24: "MTAP24"
        default: "FU-B"
        }
    }

    /// RFC 6184 5.8: the FU indicator's F and NRI, the FU header's S, E and type.
    private mutating func fragmentUnit(_ payload: ByteBuffer, indicator: UInt8) throws(WebRTCMediaError) {
        guard let fuHeader = payload.getInteger(at: payload.readerIndex + 1, as: UInt8.self) else {
            throw .malformed("H.264 FU-A without its FU header")
        }
        let start = fuHeader & 0x80 != 0
        let end = fuHeader & 0x40 != 0
        guard !(start && end) else {
            throw .malformed("H.264 FU-A with both start and end bits (RFC 6184 5.8 forbids it)")
        }
        let data = payload.getSlice(at: payload.readerIndex + 2, length: payload.readableBytes - 2)!
        if start {
            if self.fragment != nil {
                // The previous fragment never ended.
                self.current?.isDamaged = true
            }
            var nal = ByteBufferAllocator().buffer(capacity: 1 + data.readableBytes * 4)
            nal.writeInteger((indicator & 0xE0) | (fuHeader & 0x1F))
            nal.writeImmutableBuffer(data)
            self.fragment = nal
        } else {
            guard var nal = self.fragment else {
                // A middle or end fragment whose start was lost: nothing to append to.
                self.current?.isDamaged = true
                return
            }
            guard nal.h264NALUnitType == fuHeader & 0x1F else {
                self.fragment = nil
                throw .malformed("H.264 FU-A fragment of type \(fuHeader & 0x1F) inside a type \(nal.h264NALUnitType!)")
            }
            self.fragment = nil  // unique reference: the write below does not copy
            nal.writeImmutableBuffer(data)
            self.fragment = nal
        }
        guard self.fragment!.readableBytes <= self.configuration.maximumNALUnitSize else {
            let size = self.fragment!.readableBytes
            self.fragment = nil
            throw .limit(
                "H.264 FU-A reassembly of \(size) bytes exceeds the \(self.configuration.maximumNALUnitSize)-byte limit"
            )
        }
        if end {
            let nal = self.fragment!
            self.fragment = nil
            try self.append(nal)
        }
    }

    private mutating func append(_ nal: ByteBuffer) throws(WebRTCMediaError) {
        guard nal.readableBytes <= self.configuration.maximumNALUnitSize else {
            throw .limit(
                "H.264 NAL unit of \(nal.readableBytes) bytes exceeds the "
                    + "\(self.configuration.maximumNALUnitSize)-byte limit"
            )
        }
        guard self.current!.nalUnits.count < self.configuration.maximumNALUnitsPerAccessUnit else {
            throw .limit(
                "H.264 access unit has more than \(self.configuration.maximumNALUnitsPerAccessUnit) NAL units"
            )
        }
        guard self.currentSize + nal.readableBytes <= self.configuration.maximumAccessUnitSize else {
            throw .limit(
                "H.264 access unit exceeds the \(self.configuration.maximumAccessUnitSize)-byte limit"
            )
        }
        self.currentSize += nal.readableBytes
        self.current!.nalUnits.append(nal)
    }
}
