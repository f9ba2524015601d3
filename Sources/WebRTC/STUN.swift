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

import CWebRTCSSL
import Crypto

/// A STUN message (RFC 8489 §5): the subset ICE needs, with MESSAGE-INTEGRITY (HMAC-SHA1, from swift-crypto) and
/// FINGERPRINT (CRC-32, from zlib).
public struct STUNMessage: Hashable, Sendable {
    /// The message class, from the C0 and C1 bits of the type.
    public enum MessageClass: Hashable, Sendable {
        case request
        case indication
        case successResponse
        case errorResponse
    }

    /// One attribute, its value unpadded.
    public struct Attribute: Hashable, Sendable {
        public var type: UInt16
        public var value: [UInt8]

        public init(type: UInt16, value: [UInt8]) {
            self.type = type
            self.value = value
        }
    }

    /// RFC 8489 §5: the fixed value in bytes 4–7 of every STUN message.
    public static let magicCookie: UInt32 = 0x2112_A442
    /// The Binding method, the only one ICE uses.
    public static let bindingMethod: UInt16 = 0x001
    /// The largest message this decoder takes: ICE checks are about a hundred bytes, and a UDP datagram on any path
    /// we serve is smaller than this.
    public static let maximumLength = 1500
    /// The most attributes one message may carry here.
    public static let maximumAttributes = 32

    public var method: UInt16
    public var messageClass: MessageClass
    /// Twelve bytes (RFC 8489 §5).
    public var transactionID: [UInt8]
    /// Every attribute in order, MESSAGE-INTEGRITY and FINGERPRINT included when decoded.
    public var attributes: [Attribute]

    public init(method: UInt16, messageClass: MessageClass, transactionID: [UInt8], attributes: [Attribute] = []) {
        self.method = method
        self.messageClass = messageClass
        self.transactionID = transactionID
        self.attributes = attributes
    }

    /// The first attribute of `type`, if any.
    public func attribute(_ type: UInt16) -> [UInt8]? {
        self.attributes.first { $0.type == type }?.value
    }

    /// USERNAME as text, if present and UTF-8.
    public var username: String? {
        self.attribute(STUNAttributeType.username).flatMap { String(validating: $0, as: UTF8.self) }
    }

    // MARK: - Decoding

    /// Whether `bytes` looks like a STUN message: first two bits zero, the magic cookie, a length that fits.
    public static func isSTUN(_ bytes: some Collection<UInt8>) -> Bool {
        guard bytes.count >= 20 else { return false }
        let b = Array(bytes.prefix(8))
        guard b[0] & 0xC0 == 0 else { return false }
        let cookie = UInt32(b[4]) << 24 | UInt32(b[5]) << 16 | UInt32(b[6]) << 8 | UInt32(b[7])
        return cookie == Self.magicCookie
    }

    /// Decodes one message from a whole datagram.
    ///
    /// Attributes after MESSAGE-INTEGRITY other than FINGERPRINT are ignored, as RFC 8489 §14.5 says; nothing may
    /// follow FINGERPRINT.
    public static func decode(_ bytes: [UInt8]) throws(WebRTCError) -> STUNMessage {
        guard bytes.count <= Self.maximumLength else {
            throw .limitExceeded("STUN message of \(bytes.count) bytes, more than \(Self.maximumLength)")
        }
        guard Self.isSTUN(bytes) else { throw .malformedSTUN("not a STUN message") }
        let type = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        let length = Int(UInt16(bytes[2]) << 8 | UInt16(bytes[3]))
        guard length % 4 == 0, 20 + length == bytes.count else {
            throw .malformedSTUN("length \(length) does not match a datagram of \(bytes.count) bytes")
        }
        let method = (type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2)
        let messageClass: MessageClass =
            switch type & 0x0110 {
            case 0x0000: .request
            case 0x0010: .indication
            case 0x0100: .successResponse
            default: .errorResponse
            }
        var attributes: [Attribute] = []
        var offset = 20
        var sawIntegrity = false
        while offset < bytes.count {
            guard attributes.count < Self.maximumAttributes else {
                throw .limitExceeded("more than \(Self.maximumAttributes) STUN attributes")
            }
            guard offset + 4 <= bytes.count else { throw .malformedSTUN("truncated attribute header") }
            let attributeType = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
            let attributeLength = Int(UInt16(bytes[offset + 2]) << 8 | UInt16(bytes[offset + 3]))
            let valueStart = offset + 4
            let padded = (attributeLength + 3) & ~3
            guard valueStart + padded <= bytes.count else {
                throw .malformedSTUN("attribute 0x\(String(attributeType, radix: 16)) overruns the message")
            }
            if attributes.last?.type == STUNAttributeType.fingerprint {
                throw .malformedSTUN("attribute after FINGERPRINT")
            }
            if !sawIntegrity || attributeType == STUNAttributeType.fingerprint {
                attributes.append(
                    Attribute(type: attributeType, value: Array(bytes[valueStart..<valueStart + attributeLength]))
                )
            }
            if attributeType == STUNAttributeType.messageIntegrity { sawIntegrity = true }
            offset = valueStart + padded
        }
        return STUNMessage(
            method: method,
            messageClass: messageClass,
            transactionID: Array(bytes[8..<20]),
            attributes: attributes
        )
    }

    /// Checks FINGERPRINT (RFC 8489 §14.7) of the datagram `bytes`; true when it is absent.
    public static func fingerprintIsValid(in bytes: [UInt8]) -> Bool {
        guard let offset = Self.offset(of: STUNAttributeType.fingerprint, in: bytes) else { return true }
        guard offset + 8 == bytes.count else { return false }
        var prefix = Array(bytes[0..<offset])
        Self.setLength(&prefix, to: offset + 8 - 20)
        let expected = Self.crc32(prefix) ^ 0x5354_554E
        let actual =
            UInt32(bytes[offset + 4]) << 24 | UInt32(bytes[offset + 5]) << 16 | UInt32(bytes[offset + 6]) << 8
            | UInt32(bytes[offset + 7])
        return expected == actual
    }

    /// Checks MESSAGE-INTEGRITY (RFC 8489 §14.5) of the datagram `bytes` with ICE's short-term credential: the
    /// password is the key as is (RFC 8445 §7.2.2). False when it is absent.
    public static func integrityIsValid(in bytes: [UInt8], password: String) -> Bool {
        guard let offset = Self.offset(of: STUNAttributeType.messageIntegrity, in: bytes),
            offset + 24 <= bytes.count
        else { return false }
        var prefix = Array(bytes[0..<offset])
        Self.setLength(&prefix, to: offset + 24 - 20)
        let mac = Array(
            HMAC<Insecure.SHA1>.authenticationCode(for: prefix, using: SymmetricKey(data: Array(password.utf8)))
        )
        let received = bytes[offset + 4..<offset + 24]
        // Constant time: a difference anywhere costs the same.
        var difference: UInt8 = 0
        for (a, b) in zip(mac, received) { difference |= a ^ b }
        return difference == 0
    }

    // MARK: - Encoding

    /// The message as bytes, with MESSAGE-INTEGRITY keyed by `integrityPassword` when given, then FINGERPRINT when
    /// `fingerprint` is true. Attributes of those two types in ``attributes`` are not written twice.
    public func encode(integrityPassword: String? = nil, fingerprint: Bool = true) -> [UInt8] {
        let type =
            (self.method & 0x000F) | ((self.method & 0x0070) << 1) | ((self.method & 0x0F80) << 2)
            | {
                switch self.messageClass {
                case .request: 0x0000
                case .indication: 0x0010
                case .successResponse: 0x0100
                case .errorResponse: 0x0110
                }
            }()
        var bytes: [UInt8] = [UInt8(type >> 8), UInt8(type & 0xFF), 0, 0]
        bytes += [0x21, 0x12, 0xA4, 0x42]
        bytes += self.transactionID.prefix(12)
        for attribute in self.attributes
        where attribute.type != STUNAttributeType.messageIntegrity && attribute.type != STUNAttributeType.fingerprint {
            Self.append(attribute, to: &bytes)
        }
        if let integrityPassword {
            Self.setLength(&bytes, to: bytes.count + 24 - 20)
            let mac = HMAC<Insecure.SHA1>.authenticationCode(
                for: bytes,
                using: SymmetricKey(data: Array(integrityPassword.utf8))
            )
            Self.append(Attribute(type: STUNAttributeType.messageIntegrity, value: Array(mac)), to: &bytes)
        }
        if fingerprint {
            Self.setLength(&bytes, to: bytes.count + 8 - 20)
            let crc = Self.crc32(bytes) ^ 0x5354_554E
            Self.append(
                Attribute(
                    type: STUNAttributeType.fingerprint,
                    value: [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)]
                ),
                to: &bytes
            )
        }
        Self.setLength(&bytes, to: bytes.count - 20)
        return bytes
    }

    // MARK: - XOR-MAPPED-ADDRESS

    /// The value of an XOR-MAPPED-ADDRESS (RFC 8489 §14.2) for an IPv4 (4 bytes) or IPv6 (16 bytes) address.
    public static func xorMappedAddress(address: [UInt8], port: UInt16, transactionID: [UInt8]) -> [UInt8] {
        let cookie: [UInt8] = [0x21, 0x12, 0xA4, 0x42]
        let xport = port ^ 0x2112
        var value: [UInt8] = [0, address.count == 4 ? 0x01 : 0x02, UInt8(xport >> 8), UInt8(xport & 0xFF)]
        let mask = cookie + transactionID
        for (index, byte) in address.enumerated() { value.append(byte ^ mask[index]) }
        return value
    }

    /// Decodes an XOR-MAPPED-ADDRESS value into its address bytes and port.
    public static func decodeXORMappedAddress(
        _ value: [UInt8],
        transactionID: [UInt8]
    ) -> (address: [UInt8], port: UInt16)? {
        guard value.count >= 8 else { return nil }
        let count = value[1] == 0x01 ? 4 : value[1] == 0x02 ? 16 : 0
        guard count > 0, value.count == 4 + count else { return nil }
        let port = (UInt16(value[2]) << 8 | UInt16(value[3])) ^ 0x2112
        let mask: [UInt8] = [0x21, 0x12, 0xA4, 0x42] + transactionID
        let address = (0..<count).map { value[4 + $0] ^ mask[$0] }
        return (address, port)
    }

    // MARK: - Helpers

    private static func append(_ attribute: Attribute, to bytes: inout [UInt8]) {
        let length = attribute.value.count
        bytes += [UInt8(attribute.type >> 8), UInt8(attribute.type & 0xFF), UInt8(length >> 8), UInt8(length & 0xFF)]
        bytes += attribute.value
        bytes += [UInt8](repeating: 0, count: (4 - length % 4) % 4)
    }

    private static func setLength(_ bytes: inout [UInt8], to length: Int) {
        bytes[2] = UInt8((length >> 8) & 0xFF)
        bytes[3] = UInt8(length & 0xFF)
    }

    /// The offset of the first attribute of `type` in a message already known to be well-formed.
    private static func offset(of type: UInt16, in bytes: [UInt8]) -> Int? {
        var offset = 20
        while offset + 4 <= bytes.count {
            let attributeType = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
            if attributeType == type { return offset }
            let length = Int(UInt16(bytes[offset + 2]) << 8 | UInt16(bytes[offset + 3]))
            offset += 4 + ((length + 3) & ~3)
        }
        return nil
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { lr_crc32($0.baseAddress, $0.count) }
    }
}

/// The STUN attribute types ICE uses (RFC 8489 §18.3, RFC 8445 §16.1).
public enum STUNAttributeType {
    public static let mappedAddress: UInt16 = 0x0001
    public static let username: UInt16 = 0x0006
    public static let messageIntegrity: UInt16 = 0x0008
    public static let errorCode: UInt16 = 0x0009
    public static let xorMappedAddress: UInt16 = 0x0020
    public static let priority: UInt16 = 0x0024
    public static let useCandidate: UInt16 = 0x0025
    public static let software: UInt16 = 0x8022
    public static let fingerprint: UInt16 = 0x8028
    public static let iceControlled: UInt16 = 0x8029
    public static let iceControlling: UInt16 = 0x802A
}
