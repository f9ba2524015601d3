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

import NIOCore
import Testing
import WebRTCMedia

@Suite struct RTPPacketTests {
    @Test func parsesTheFixedHeaderCSRCsExtensionAndPadding() throws {
        // V=2 P=1 X=1 CC=2, M=1 PT=96, seq 0x1234, ts 0xDEADBEEF, SSRC 0x01020304, two CSRCs, a one-byte-header
        // extension of one word, payload AA BB, then 3 bytes of padding counting themselves.
        let bytes = ByteBuffer(
            bytes: hex(
                """
                B2 E0 1234 DEADBEEF 01020304
                0000000A 0000000B
                BEDE 0001 10FF0000
                AABB 000003
                """
            )
        )
        let packet = try RTPPacket(parsing: bytes)
        #expect(packet.payloadType == 96)
        #expect(packet.marker)
        #expect(packet.sequenceNumber == 0x1234)
        #expect(packet.timestamp == 0xDEAD_BEEF)
        #expect(packet.ssrc == 0x0102_0304)
        #expect(packet.csrcs == [10, 11])
        #expect(packet.headerExtension?.profile == 0xBEDE)
        #expect(packet.headerExtension?.data == ByteBuffer(bytes: hex("10FF0000")))
        #expect(packet.payload == ByteBuffer(bytes: [0xAA, 0xBB]))
        #expect(packet.paddingLength == 3)
        // Written back byte for byte.
        #expect(packet.bytes == bytes)
    }

    @Test(arguments: [
        ("80", "shorter than the 12-byte fixed header"),
        ("40600001 00000000 00000000", "RTP version 1"),
        ("83600001 00000000 00000000 00000001", "CSRC list of 3 entries"),
        ("90600001 00000000 00000000 BEDE0004 00000000", "header extension of 16 bytes"),
        ("A0600001 00000000 00000000 AA 10", "padding count 16"),
        ("A0600001 00000000 00000000 AA 00", "padding count 0"),
        ("80C80001 00000000 00000000", "is RTCP"),
    ])
    func refusesMalformedPackets(bytes: String, reason: String) {
        #expect {
            try RTPPacket(parsing: ByteBuffer(bytes: hex(bytes)))
        } throws: { error in
            let error = error as! WebRTCMediaError
            return error.code == .malformedPacket && error.message.contains(reason)
        }
    }

    @Test func demultiplexesRTPAndRTCPAsRFC5761Says() {
        #expect(RTPDemultiplexer.classify(ByteBuffer(bytes: hex("80600001 00000000 00000000"))) == .rtp)
        // Payload type 72 with the marker set is 200 (SR): RTCP, which is why RTP avoids 64-95.
        #expect(RTPDemultiplexer.classify(ByteBuffer(bytes: hex("80C80006 00000000"))) == .rtcp)
        #expect(RTPDemultiplexer.classify(ByteBuffer(bytes: hex("81CD0002 00000000"))) == .rtcp)
        #expect(RTPDemultiplexer.classify(ByteBuffer(bytes: hex("00010002 00000000"))) == .neither)  // STUN
        #expect(RTPDemultiplexer.classify(ByteBuffer(bytes: hex("16FEFD00"))) == .neither)  // DTLS
    }
}

@Suite struct RTCPPacketTests {
    @Test func parsesACompoundSenderReportAndSourceDescription() throws {
        let bytes = ByteBuffer(
            bytes: hex(
                """
                81C8000C 00001111
                E1234567 89ABCDEF 00015F90 0000000A 00000400
                00002222 05FFFFFE 00010064 00000020 23456789 00008000
                81CA0003 00001111 0103 616263 000000
                """
            )
        )
        let packets = try RTCPPacket.parseCompound(bytes)
        #expect(packets.count == 2)
        guard case .senderReport(let report) = packets[0], case .sourceDescription(let sdes) = packets[1] else {
            Issue.record("unexpected \(packets)")
            return
        }
        #expect(report.ssrc == 0x1111)
        #expect(report.ntpTimestamp == 0xE123_4567_89AB_CDEF)
        #expect(report.rtpTimestamp == 90000)
        #expect(report.packetCount == 10 && report.octetCount == 1024)
        #expect(
            report.reports == [
                RTCPReportBlock(
                    ssrc: 0x2222,
                    fractionLost: 5,
                    cumulativeLost: -2,
                    extendedHighestSequenceNumber: 0x1_0064,
                    jitter: 32,
                    lastSenderReport: 0x2345_6789,
                    delaySinceLastSenderReport: 0x8000
                )
            ]
        )
        #expect(sdes.chunks == [.init(ssrc: 0x1111, items: [.cname("abc")])])
        // Round trip.
        #expect(RTCPPacket.compound(packets) == bytes)
    }

    @Test func writesFeedbackByteForByte() {
        // RFC 4585 6.2.1: PID 1000 and a bitmask with 1001, 1003 and 1016.
        let nack = RTCPPacket.genericNACK(
            RTCPGenericNACK(senderSSRC: 1, mediaSSRC: 2, sequenceNumbers: [1000, 1001, 1003, 1016, 2000])
        )
        #expect(RTCPPacket.compound([nack]) == ByteBuffer(bytes: hex("81CD0004 00000001 00000002 03E88005 07D00000")))
        // RFC 4585 6.3.1: PLI has no FCI.
        let pli = RTCPPacket.pictureLossIndication(RTCPPictureLossIndication(senderSSRC: 1, mediaSSRC: 2))
        #expect(RTCPPacket.compound([pli]) == ByteBuffer(bytes: hex("81CE0002 00000001 00000002")))
        // RFC 5104 4.3.1: FIR, media SSRC 0, one FCI entry (SSRC, sequence number, 3 reserved bytes).
        let fir = RTCPPacket.fullIntraRequest(
            RTCPFullIntraRequest(senderSSRC: 1, entries: [.init(ssrc: 2, sequenceNumber: 7)])
        )
        #expect(RTCPPacket.compound([fir]) == ByteBuffer(bytes: hex("84CE0004 00000001 00000000 00000002 07000000")))
        // draft-alvestrand-rmcat-remb: 1 Mbit/s is mantissa 250000 (0x3D090) with exponent 2.
        let remb = RTCPPacket.receiverEstimatedMaximumBitrate(
            RTCPReceiverEstimatedMaximumBitrate(senderSSRC: 1, bitrate: 1_000_000, ssrcs: [2])
        )
        #expect(
            RTCPPacket.compound([remb])
                == ByteBuffer(bytes: hex("8FCE0005 00000001 00000000 52454D42 010BD090 00000002"))
        )
        // RFC 3550 6.4.2: an RR without report blocks is just its SSRC.
        let rr = RTCPPacket.receiverReport(RTCPReceiverReport(ssrc: 1))
        #expect(RTCPPacket.compound([rr]) == ByteBuffer(bytes: hex("80C90001 00000001")))
    }

    @Test func feedbackAndByeRoundTrip() throws {
        let packets: [RTCPPacket] = [
            .receiverReport(RTCPReceiverReport(ssrc: 9, reports: [RTCPReportBlock(ssrc: 3, cumulativeLost: 7)])),
            .genericNACK(RTCPGenericNACK(senderSSRC: 9, mediaSSRC: 3, sequenceNumbers: [65535, 0, 1, 40])),
            .pictureLossIndication(RTCPPictureLossIndication(senderSSRC: 9, mediaSSRC: 3)),
            .fullIntraRequest(RTCPFullIntraRequest(senderSSRC: 9, entries: [.init(ssrc: 3, sequenceNumber: 1)])),
            .receiverEstimatedMaximumBitrate(
                RTCPReceiverEstimatedMaximumBitrate(senderSSRC: 9, bitrate: 3 << 20, ssrcs: [3, 4])
            ),
            .bye(RTCPBye(ssrcs: [3], reason: "done")),
        ]
        #expect(try RTCPPacket.parseCompound(RTCPPacket.compound(packets)) == packets)
    }

    @Test(arguments: [
        ("81C9", "shorter than the 4-byte header"),
        ("41C90001 00000001", "RTCP version 1"),
        ("80C90002 00000001", "runs past the compound packet"),
        ("81C90001 00000001", "announces 1 report blocks"),
        ("81CA0001 00000001", "SDES chunk has no end item"),
        ("81CA0002 00000001 010A6162", "runs past the packet"),
        ("A0C90001 00000009", "padding count 9"),
    ])
    func refusesMalformedCompounds(bytes: String, reason: String) {
        #expect {
            try RTCPPacket.parseCompound(ByteBuffer(bytes: hex(bytes)))
        } throws: { error in
            let error = error as! WebRTCMediaError
            return error.code == .malformedPacket && error.message.contains(reason)
        }
    }

    @Test func keepsPacketsItDoesNotParse() throws {
        // An APP packet (204) and a transport-cc feedback (205, FMT 15).
        let bytes = ByteBuffer(bytes: hex("80CC0002 00000001 41424344 8FCD0002 00000001 00000002"))
        let packets = try RTCPPacket.parseCompound(bytes)
        #expect(packets.count == 2)
        guard case .other(204, 0, _) = packets[0], case .other(205, 15, _) = packets[1] else {
            Issue.record("unexpected \(packets)")
            return
        }
    }
}
