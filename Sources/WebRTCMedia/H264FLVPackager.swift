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

public import Media
public import NIOCore

/// Turns H.264 access units into the video message bodies an RTMP publisher sends (FLV 10.1, E.4.3.1: legacy AVC
/// tags): an AVC sequence header (an ``AVCDecoderConfigurationRecord``) whenever the SPS or PPS change, and each
/// picture in AVCC form (4-byte big-endian lengths), key frames marked.
///
/// A value-typed state machine. It holds back everything until a decodable start: an IDR picture with an SPS and
/// a PPS known (in-band, from a STAP-A, or from the SDP's `sprop-parameter-sets`). After a damaged access unit or a
/// loss it drops pictures until the next IDR, since every picture until then refers to what was lost, and says so
/// through ``Output/needsKeyframe`` so that the owner sends a PLI.
///
/// SPS, PPS, access unit delimiters and filler data leave the pictures: the sequence header carries the parameter
/// sets, as an RTMP encoder sends them. WebRTC senders use no B-frames, so the composition time offset is 0.
public struct H264FLVPackager: Sendable {
    /// One video message body.
    public struct VideoPayload: Sendable, Hashable {
        /// The FLV video tag body: the tag header, then the record or the AVCC NAL units.
        public var body: ByteBuffer
        /// Whether this is the AVC sequence header.
        public var isSequenceHeader: Bool
        /// Whether this is a key frame (an IDR picture).
        public var isKeyframe: Bool
        /// The RTP timestamp of the picture this belongs to.
        public var rtpTimestamp: UInt32
    }

    /// What one access unit produced.
    public struct Output: Sendable {
        public var payloads: [VideoPayload] = []
        /// Whether the owner should ask the sender for a keyframe: the stream cannot continue without one.
        public var needsKeyframe = false
        /// Whether the access unit was dropped.
        public var dropped = false
        /// Why, when the parameter sets could not be used.
        public var error: MediaError?
    }

    private var sequenceParameterSet: ByteBuffer?
    private var pictureParameterSets: [UInt32: ByteBuffer] = [:]
    /// The record of the last sequence header sent.
    private var sentRecord: ByteBuffer?
    private var waitingForKeyframe = true

    /// - Parameter parameterSets: SPS and PPS NAL units from the SDP (`sprop-parameter-sets`, RFC 6184 8.1), if
    ///   any; in-band ones replace them.
    public init(parameterSets: [ByteBuffer] = []) {
        for nal in parameterSets { self.remember(nal) }
    }

    /// Whether pictures are being dropped until the next IDR.
    public var isWaitingForKeyframe: Bool { self.waitingForKeyframe }

    /// Notes a loss: pictures are dropped until the next IDR.
    public mutating func lost() -> Output {
        var output = Output()
        if !self.waitingForKeyframe {
            self.waitingForKeyframe = true
        }
        output.needsKeyframe = true
        return output
    }

    /// Packages one access unit.
    public mutating func package(_ unit: H264AccessUnit) -> Output {
        var output = Output()
        guard !unit.isDamaged else {
            self.waitingForKeyframe = true
            output.dropped = true
            output.needsKeyframe = true
            return output
        }
        for nal in unit.nalUnits {
            let type = nal.h264NALUnitType
            if type == H264NALUnitType.sequenceParameterSet || type == H264NALUnitType.pictureParameterSet {
                self.remember(nal)
            }
        }
        let isKeyframe = unit.isKeyframe
        if self.waitingForKeyframe && !isKeyframe {
            output.dropped = true
            output.needsKeyframe = true
            return output
        }

        let record: AVCDecoderConfigurationRecord
        do throws(MediaError) {
            guard let sps = self.sequenceParameterSet, !self.pictureParameterSets.isEmpty else {
                throw MediaError.invalidParameterSet("no H.264 SPS and PPS before the first keyframe")
            }
            let ppsList = self.pictureParameterSets.keys.sorted().map { self.pictureParameterSets[$0]! }
            record = try AVCDecoderConfigurationRecord(sequenceParameterSets: [sps], pictureParameterSets: ppsList)
        } catch {
            self.waitingForKeyframe = true
            output.dropped = true
            output.needsKeyframe = true
            output.error = error
            return output
        }
        let recordBytes = record.bytes
        if recordBytes != self.sentRecord {
            var body = ByteBufferAllocator().buffer(capacity: 5 + recordBytes.readableBytes)
            Self.writeTagHeader(&body, keyframe: true, packetType: .sequenceStart)
            body.writeImmutableBuffer(recordBytes)
            output.payloads.append(
                VideoPayload(body: body, isSequenceHeader: true, isKeyframe: false, rtpTimestamp: unit.rtpTimestamp)
            )
            self.sentRecord = recordBytes
        }

        let pictureNALs = unit.nalUnits.filter { nal in
            switch nal.h264NALUnitType {
            case H264NALUnitType.sequenceParameterSet, H264NALUnitType.pictureParameterSet,
                H264NALUnitType.accessUnitDelimiter, H264NALUnitType.fillerData, nil:
                false
            default:
                true
            }
        }
        guard !pictureNALs.isEmpty else {
            // Parameter sets alone: the sequence header (if they changed) is all there is to send.
            return output
        }
        let size = pictureNALs.reduce(5) { $0 + 4 + $1.readableBytes }
        var body = ByteBufferAllocator().buffer(capacity: size)
        Self.writeTagHeader(&body, keyframe: isKeyframe, packetType: .codedFrames)
        for nal in pictureNALs {
            body.writeInteger(UInt32(nal.readableBytes))
            body.writeImmutableBuffer(nal)
        }
        output.payloads.append(
            VideoPayload(body: body, isSequenceHeader: false, isKeyframe: isKeyframe, rtpTimestamp: unit.rtpTimestamp)
        )
        self.waitingForKeyframe = false
        return output
    }

    /// FLV 10.1 E.4.3.1: frame type and codec id 7, `AVCPacketType`, a zero composition time.
    private static func writeTagHeader(_ body: inout ByteBuffer, keyframe: Bool, packetType: VideoPacketType) {
        let frameType = keyframe ? VideoFrameType.keyFrame : VideoFrameType.interFrame
        body.writeInteger(frameType.rawValue << 4 | 7)
        body.writeInteger(packetType.rawValue)
        body.writeRepeatingByte(0, count: 3)
    }

    private mutating func remember(_ nal: ByteBuffer) {
        switch nal.h264NALUnitType {
        case H264NALUnitType.sequenceParameterSet:
            // Kept only if it parses: a broken SPS must not replace a working one.
            if (try? AVCSequenceParameterSet(parsing: nal)) != nil {
                if self.sequenceParameterSet != nal {
                    // A new SPS may renumber everything; PPS sent with it follow.
                    if self.sequenceParameterSet != nil { self.pictureParameterSets = [:] }
                    self.sequenceParameterSet = nal
                }
            }
        case H264NALUnitType.pictureParameterSet:
            // pic_parameter_set_id, ue(v), right after the NAL header.
            var reader = ExpGolombReader(nal, from: 1)
            if let id = reader.readUnsignedExpGolomb(), id <= 255,
                self.pictureParameterSets.count < 256
                    || self.pictureParameterSets[id] != nil
            {
                self.pictureParameterSets[id] = nal
            }
        default:
            break
        }
    }
}

/// The few Exp-Golomb reads the media path needs (ITU-T H.264 9.1), over emulation-prevented bytes.
struct ExpGolombReader {
    private let bytes: [UInt8]
    private var bit = 0

    init(_ buffer: ByteBuffer, from offset: Int, maximumBytes: Int = 16) {
        let available = max(0, min(buffer.readableBytes - offset, maximumBytes))
        var raw = buffer.getBytes(at: buffer.readerIndex + offset, length: available) ?? []
        // Remove emulation prevention bytes (00 00 03 -> 00 00).
        var cleaned: [UInt8] = []
        cleaned.reserveCapacity(raw.count)
        var zeros = 0
        for byte in raw {
            if zeros >= 2 && byte == 3 {
                zeros = 0
                continue
            }
            zeros = byte == 0 ? zeros + 1 : 0
            cleaned.append(byte)
        }
        raw = cleaned
        self.bytes = raw
    }

    mutating func readBit() -> UInt32? {
        guard self.bit < self.bytes.count * 8 else { return nil }
        let value = (self.bytes[self.bit / 8] >> (7 - UInt8(self.bit % 8))) & 1
        self.bit += 1
        return UInt32(value)
    }

    mutating func readUnsignedExpGolomb() -> UInt32? {
        var leadingZeros = 0
        while true {
            guard let bit = self.readBit() else { return nil }
            if bit == 1 { break }
            leadingZeros += 1
            guard leadingZeros <= 31 else { return nil }
        }
        var value: UInt32 = 0
        for _ in 0..<leadingZeros {
            guard let bit = self.readBit() else { return nil }
            value = value << 1 | bit
        }
        return (1 << UInt32(leadingZeros)) - 1 + value
    }
}
