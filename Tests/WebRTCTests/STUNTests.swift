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

@testable import WebRTC

/// RFC 5769 §2.1, "Sample Request": USERNAME "evtj:h6vY", password "VOkJxbRl1RmTxUk/WvJxBt", padded with spaces.
let rfc5769Request: [UInt8] = hex(
    """
    000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74\
    002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020\
    000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf
    """
)

func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8.filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\n") })
    return stride(from: 0, to: digits.count, by: 2).map {
        UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)!
    }
}

@Suite struct STUNTests {
    @Test func decodesRFC5769SampleRequest() throws {
        let message = try STUNMessage.decode(rfc5769Request)
        #expect(message.method == STUNMessage.bindingMethod)
        #expect(message.messageClass == .request)
        #expect(message.username == "evtj:h6vY")
        #expect(message.attribute(STUNAttributeType.priority) == [0x6E, 0x00, 0x01, 0xFF])
        #expect(STUNMessage.fingerprintIsValid(in: rfc5769Request))
        #expect(STUNMessage.integrityIsValid(in: rfc5769Request, password: "VOkJxbRl1RmTxUk/WvJxBt"))
        #expect(!STUNMessage.integrityIsValid(in: rfc5769Request, password: "wrong-password-wrong-pw"))
    }

    @Test func detectsTampering() {
        var tampered = rfc5769Request
        tampered[30] ^= 0x01
        #expect(!STUNMessage.fingerprintIsValid(in: tampered))
        #expect(!STUNMessage.integrityIsValid(in: tampered, password: "VOkJxbRl1RmTxUk/WvJxBt"))
    }

    @Test func roundTripsWithIntegrityAndFingerprint() throws {
        let transactionID = Array(0..<12).map { UInt8($0) }
        let message = STUNMessage(
            method: STUNMessage.bindingMethod,
            messageClass: .successResponse,
            transactionID: transactionID,
            attributes: [
                .init(
                    type: STUNAttributeType.xorMappedAddress,
                    value: STUNMessage.xorMappedAddress(
                        address: [127, 0, 0, 1],
                        port: 5000,
                        transactionID: transactionID
                    )
                )
            ]
        )
        let bytes = message.encode(integrityPassword: "a-password-of-24-chars!!", fingerprint: true)
        #expect(bytes.count % 4 == 0)
        #expect(STUNMessage.fingerprintIsValid(in: bytes))
        #expect(STUNMessage.integrityIsValid(in: bytes, password: "a-password-of-24-chars!!"))
        let decoded = try STUNMessage.decode(bytes)
        #expect(decoded.messageClass == .successResponse)
        #expect(decoded.transactionID == transactionID)
        let mapped = try #require(
            STUNMessage.decodeXORMappedAddress(
                decoded.attribute(STUNAttributeType.xorMappedAddress) ?? [],
                transactionID: transactionID
            )
        )
        #expect(mapped.address == [127, 0, 0, 1])
        #expect(mapped.port == 5000)
    }

    @Test(arguments: [
        [UInt8](),
        [0x00, 0x01, 0x00, 0x00],
        Array(rfc5769Request.prefix(40)),
        [0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xA4, 0x42] + [UInt8](repeating: 0, count: 12) + [0x00, 0x06, 0x00, 0x40],
        [0x00, 0x01, 0x00, 0x03, 0x21, 0x12, 0xA4, 0x42] + [UInt8](repeating: 0, count: 15),
        [UInt8](repeating: 0, count: 20),
    ])
    func refusesMalformedMessages(bytes: [UInt8]) {
        #expect(throws: WebRTCError.self) { try STUNMessage.decode(bytes) }
    }

    @Test func refusesOversizedAndAttributeFloods() {
        var header: [UInt8] = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42] + [UInt8](repeating: 7, count: 12)
        let attributes = [UInt8](repeating: 0, count: 4 * 40)  // 40 empty attributes of type 0
        header[2] = UInt8(attributes.count >> 8)
        header[3] = UInt8(attributes.count & 0xFF)
        #expect {
            try STUNMessage.decode(header + attributes)
        } throws: { ($0 as? WebRTCError)?.code == .limitExceeded }
        #expect {
            try STUNMessage.decode([UInt8](repeating: 0, count: 4000))
        } throws: { ($0 as? WebRTCError)?.code == .limitExceeded }
    }
}

@Suite struct PacketKindTests {
    @Test func classifiesByFirstByte() {
        #expect(PacketKind(classifying: rfc5769Request) == .stun)
        #expect(PacketKind(classifying: [22, 0xFE, 0xFD] + [UInt8](repeating: 0, count: 10)) == .dtls)
        // RTP version 2, payload type 96.
        #expect(PacketKind(classifying: [0x80, 96] + [UInt8](repeating: 0, count: 10)) == .rtp)
        // Marker bit with payload type 111.
        #expect(PacketKind(classifying: [0x80, 0x80 | 111] + [UInt8](repeating: 0, count: 10)) == .rtp)
        // RTCP receiver report (201) and PSFB (206).
        #expect(PacketKind(classifying: [0x81, 201] + [UInt8](repeating: 0, count: 10)) == .rtcp)
        #expect(PacketKind(classifying: [0x81, 206] + [UInt8](repeating: 0, count: 10)) == .rtcp)
        #expect(PacketKind(classifying: [0x80, 96]) == .unknown)
        #expect(PacketKind(classifying: [16, 0, 0]) == .unknown)
        #expect(PacketKind(classifying: [64, 0, 0]) == .unknown)
        #expect(PacketKind(classifying: [UInt8]()) == .unknown)
        #expect(PacketKind(classifying: [0xFF]) == .unknown)
    }
}
