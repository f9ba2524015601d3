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

import Crypto
public import NIOCore

/// Constants and digest arithmetic of the RTMP handshake.
///
/// The RTMP 1.0 specification (section 5.2) describes a *plain* handshake: C0/S0 carry the version byte 3, C1/S1
/// are 1536 bytes of time, four zero bytes and random data, and C2/S2 echo the peer's C1/S1. Flash Player, Flash
/// Media Server and everything that had to talk to them (ffmpeg's `rtmpproto.c`, librtmp, nginx-rtmp) use a
/// *digest* variant instead, which the specification never documented:
///
/// - Bytes 4..<8 of C1/S1 hold a nonzero version (ffmpeg sends 9.0.124.2, nginx-rtmp's server 13.14.10.13).
/// - C1/S1 carry a 32-byte HMAC-SHA256 digest at an offset derived from four of its own bytes (``DigestScheme``).
///   The digest covers the 1536 bytes minus the digest itself. A client keys it with the first 30 bytes of the
///   Flash Player key, a server with the first 36 bytes of the Flash Media Server key.
/// - C2/S2 are 1504 random bytes followed by `HMAC(key: HMAC(fullKey, peerDigest), data: bytes[0..<1504])`,
///   where `fullKey` is the responder's whole key (62 bytes for a client, 68 for a server).
///
/// Some peers insist on it: ffmpeg playing a stream validates S1 and S2 whenever the server's version byte is 3
/// or more, and fails the connection on a bad signature. These helpers are public so that test peers can build
/// and check handshakes without reimplementing them.
public enum RTMPHandshake {
    /// The version byte of C0/S0 for plain RTMP.
    public static let version: UInt8 = 3
    /// The version byte of C0 with which a client asks for RTMPE (encrypted RTMP), which we do not support.
    public static let encryptedVersion: UInt8 = 6
    /// The length of C1, S1, C2 and S2.
    public static let packetSize = 1536
    /// The length of an HMAC-SHA256 digest.
    public static let digestLength = 32
    /// The length of the random part of a signed C2/S2; the signature follows it.
    public static let signedResponseDataLength = packetSize - digestLength

    /// The version our server writes (big-endian) into bytes 4..<8 of S1 when it answers a digest handshake. Any
    /// nonzero value selects the digest form; this is nginx-rtmp's 13.14.10.13. ffmpeg playing a stream checks S1
    /// and S2, and signs its C2, only when the first of these bytes is 3 or more.
    public static let serverVersion: UInt32 = 0x0D0E_0A0D
    /// The version our client writes (big-endian) into bytes 4..<8 of C1: ffmpeg's emulated Flash Player
    /// 9.0.124.2.
    public static let clientVersion: UInt32 = 0x0900_7C02

    /// Where in C1/S1 the digest sits.
    ///
    /// Both schemes sum four bytes of the packet, take the sum modulo 728 and add a base, so the 32-byte digest
    /// always lies inside the packet (at most 776 + 727 + 32 = 1535 bytes). Flash Player 9 put it after the
    /// bytes at 8; Flash Player 10 (and ffmpeg's RTMPE) after the bytes at 772. A server finds the scheme by
    /// trying both and answers in the one the client used.
    public enum DigestScheme: Hashable, Sendable, CaseIterable, CustomStringConvertible {
        /// The offset is `(sum of bytes 8..<12) % 728 + 12`. ffmpeg and librtmp use it for plain RTMP.
        case offsetAt8
        /// The offset is `(sum of bytes 772..<776) % 728 + 776`. ffmpeg uses it for RTMPE.
        case offsetAt772

        /// The position of the four bytes that select the offset.
        var base: Int {
            switch self {
            case .offsetAt8: 8
            case .offsetAt772: 772
            }
        }

        /// The offset of the digest in `packet` (1536 readable bytes of C1 or S1, without C0/S0).
        public func digestOffset(in packet: ByteBuffer) -> Int {
            precondition(packet.readableBytes == RTMPHandshake.packetSize, "a handshake packet is 1536 bytes")
            var sum = 0
            for index in self.base..<(self.base + 4) {
                sum += Int(packet.getInteger(at: packet.readerIndex + index, as: UInt8.self)!)
            }
            return sum % 728 + self.base + 4
        }

        public var description: String {
            switch self {
            case .offsetAt8: "offset at 8"
            case .offsetAt772: "offset at 772"
            }
        }
    }

    /// Which side signs: the key differs.
    public enum Signer: Hashable, Sendable {
        /// A client, keyed with "Genuine Adobe Flash Player 001" and the common suffix.
        case client
        /// A server, keyed with "Genuine Adobe Flash Media Server 001" and the common suffix.
        case server

        /// The key that signs C1/S1: only the readable prefix of the full key.
        var partialKey: ArraySlice<UInt8> {
            switch self {
            case .client: RTMPHandshake.flashPlayerKey.prefix(30)
            case .server: RTMPHandshake.flashMediaServerKey.prefix(36)
            }
        }

        /// The key from which the C2/S2 signing key is derived: the whole key.
        var fullKey: [UInt8] {
            switch self {
            case .client: RTMPHandshake.flashPlayerKey
            case .server: RTMPHandshake.flashMediaServerKey
            }
        }
    }

    /// A digest found in, or written into, a C1/S1.
    public struct Digest: Hashable, Sendable {
        /// The scheme that placed it.
        public var scheme: DigestScheme
        /// Its offset within the 1536-byte packet.
        public var offset: Int
        /// The 32 digest bytes.
        public var bytes: [UInt8]
    }

    /// The 32 bytes that follow the readable part of both keys. They are protocol constants, published in every
    /// implementation of the digest handshake.
    private static let keySuffix: [UInt8] = [
        0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
        0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
    ]

    /// The Flash Player key (62 bytes).
    static let flashPlayerKey: [UInt8] = Array("Genuine Adobe Flash Player 001".utf8) + keySuffix

    /// The Flash Media Server key (68 bytes).
    static let flashMediaServerKey: [UInt8] = Array("Genuine Adobe Flash Media Server 001".utf8) + keySuffix

    /// Computes the digest of `packet` (1536 readable bytes) over everything except the 32 bytes at `offset`.
    static func computeDigest(of packet: ByteBuffer, excludingAt offset: Int, signer: Signer) -> [UInt8] {
        precondition(packet.readableBytes == Self.packetSize, "a handshake packet is 1536 bytes")
        precondition(offset >= 0 && offset + Self.digestLength <= Self.packetSize)
        var mac = HMAC<SHA256>(key: SymmetricKey(data: signer.partialKey))
        packet.withUnsafeReadableBytes { bytes in
            mac.update(data: UnsafeRawBufferPointer(rebasing: bytes[..<offset]))
            mac.update(data: UnsafeRawBufferPointer(rebasing: bytes[(offset + Self.digestLength)...]))
        }
        return Array(mac.finalize())
    }

    /// Writes the digest of `packet` (1536 readable bytes of C1 or S1, version bytes already set) into it, at the
    /// offset that `scheme` computes, and returns it. The peer's C2/S2 will be signed from it.
    @discardableResult
    public static func imprintDigest(
        in packet: inout ByteBuffer,
        scheme: DigestScheme,
        signer: Signer
    ) -> Digest {
        let offset = scheme.digestOffset(in: packet)
        let digest = Self.computeDigest(of: packet, excludingAt: offset, signer: signer)
        packet.setBytes(digest, at: packet.readerIndex + offset)
        return Digest(scheme: scheme, offset: offset, bytes: digest)
    }

    /// Looks for a valid digest in `packet` (1536 readable bytes of C1 or S1), trying each scheme in turn.
    ///
    /// - Parameters:
    ///   - packet: The peer's C1 or S1, without C0/S0.
    ///   - signer: Who signed it: ``Signer/client`` for a C1, ``Signer/server`` for an S1.
    /// - Returns: The digest, or `nil` if neither scheme yields a valid one (a plain handshake).
    public static func findDigest(in packet: ByteBuffer, signer: Signer) -> Digest? {
        for scheme in DigestScheme.allCases {
            let offset = scheme.digestOffset(in: packet)
            let expected = Self.computeDigest(of: packet, excludingAt: offset, signer: signer)
            // Not a constant-time comparison on purpose: the keys are public and the digest guards nothing secret.
            if packet.getBytes(at: packet.readerIndex + offset, length: Self.digestLength) == expected {
                return Digest(scheme: scheme, offset: offset, bytes: expected)
            }
        }
        return nil
    }

    /// The signature that ends a digest-form C2/S2.
    ///
    /// - Parameters:
    ///   - response: The C2/S2 (1536 readable bytes); only its first 1504 bytes are signed.
    ///   - challengeDigest: The digest in the C1/S1 that this packet answers.
    ///   - responder: Who sends `response`: ``Signer/server`` for S2, ``Signer/client`` for C2.
    public static func responseSignature(
        of response: ByteBuffer,
        challengeDigest: [UInt8],
        responder: Signer
    ) -> [UInt8] {
        precondition(response.readableBytes == Self.packetSize, "a handshake packet is 1536 bytes")
        let key = HMAC<SHA256>.authenticationCode(for: challengeDigest, using: SymmetricKey(data: responder.fullKey))
        let signature = response.withUnsafeReadableBytes { bytes in
            HMAC<SHA256>.authenticationCode(
                for: UnsafeRawBufferPointer(rebasing: bytes[..<Self.signedResponseDataLength]),
                using: SymmetricKey(data: Array(key))
            )
        }
        return Array(signature)
    }

    /// Writes the signature into the last 32 bytes of `response` (1536 readable bytes whose first 1504 are
    /// already filled).
    public static func signResponse(
        _ response: inout ByteBuffer,
        challengeDigest: [UInt8],
        responder: Signer
    ) {
        let signature = Self.responseSignature(of: response, challengeDigest: challengeDigest, responder: responder)
        response.setBytes(signature, at: response.readerIndex + Self.signedResponseDataLength)
    }

    /// Whether `response` ends with the signature that answers `challengeDigest`.
    public static func isValidResponse(
        _ response: ByteBuffer,
        challengeDigest: [UInt8],
        responder: Signer
    ) -> Bool {
        let expected = Self.responseSignature(of: response, challengeDigest: challengeDigest, responder: responder)
        let actual = response.getBytes(
            at: response.readerIndex + Self.signedResponseDataLength,
            length: Self.digestLength
        )
        return actual == expected
    }
}
