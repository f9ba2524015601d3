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
public import NIOCore

/// Our DTLS certificate: a self-signed ECDSA P-256 certificate and its key, made by OpenSSL at start.
///
/// WebRTC peers authenticate each other by the fingerprint each puts in its SDP (RFC 8122), not by a CA.
public final class DTLSCertificate: @unchecked Sendable {
    // @unchecked: the certificate and key are never changed after init, and OpenSSL allows concurrent reads of both.
    fileprivate let pointer: OpaquePointer
    /// SHA-256 of the DER certificate, for `a=fingerprint:sha-256`.
    public let fingerprint: [UInt8]

    /// Generates a fresh certificate valid for `days` days.
    public static func generate(commonName: String = "liverelay", days: Int = 30) throws(WebRTCError) -> DTLSCertificate
    {
        guard let pointer = lr_certificate_generate(commonName, Int32(clamping: days)) else {
            throw .cryptoUnavailable("OpenSSL could not generate an ECDSA certificate")
        }
        return try DTLSCertificate(pointer)
    }

    /// Loads a certificate and its private key from PEM text.
    public static func load(certificatePEM: String, privateKeyPEM: String) throws(WebRTCError) -> DTLSCertificate {
        guard let pointer = lr_certificate_from_pem(certificatePEM, privateKeyPEM) else {
            throw .cryptoUnavailable("the PEM certificate or key could not be loaded, or they do not match")
        }
        return try DTLSCertificate(pointer)
    }

    private init(_ pointer: OpaquePointer) throws(WebRTCError) {
        var digest = [UInt8](repeating: 0, count: 32)
        guard lr_certificate_sha256(pointer, &digest) == 0 else {
            lr_certificate_free(pointer)
            throw .cryptoUnavailable("OpenSSL could not digest the certificate")
        }
        self.pointer = pointer
        self.fingerprint = digest
    }

    deinit { lr_certificate_free(self.pointer) }

    /// The fingerprint as SDP writes it: `AB:CD:...`.
    public var fingerprintText: String {
        self.fingerprint.map { byte in
            let digits = Array("0123456789ABCDEF")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
        }.joined(separator: ":")
    }
}

/// An SRTP protection profile negotiated through DTLS's use_srtp extension (RFC 5764 §4.1.2).
public enum SRTPProfile: Int32, Hashable, Sendable, CaseIterable {
    /// SRTP_AES128_CM_HMAC_SHA1_80.
    case aes128CMSHA1_80 = 1
    /// SRTP_AEAD_AES_128_GCM (RFC 7714).
    case aeadAES128GCM = 7

    /// The master key length in bytes.
    public var keyLength: Int { 16 }
    /// The master salt length in bytes.
    public var saltLength: Int { self == .aes128CMSHA1_80 ? 14 : 12 }

    /// OpenSSL's name for it.
    var openSSLName: String {
        switch self {
        case .aes128CMSHA1_80: "SRTP_AES128_CM_SHA1_80"
        case .aeadAES128GCM: "SRTP_AEAD_AES_128_GCM"
        }
    }
}

/// The SRTP master keys and salts exported from a DTLS handshake (RFC 5764 §4.2). Its description shows no key.
public struct SRTPKeyingMaterial: Sendable, CustomStringConvertible {
    public var profile: SRTPProfile
    /// What the DTLS client (the WHIP publisher) protects with: the key followed by the salt.
    public var clientKeyAndSalt: [UInt8]
    /// What the DTLS server (we) protect with.
    public var serverKeyAndSalt: [UInt8]

    /// Splits the exporter's output: client key, server key, client salt, server salt.
    init(profile: SRTPProfile, exported: [UInt8]) {
        let k = profile.keyLength
        let s = profile.saltLength
        self.profile = profile
        self.clientKeyAndSalt = Array(exported[0..<k]) + Array(exported[2 * k..<2 * k + s])
        self.serverKeyAndSalt = Array(exported[k..<2 * k]) + Array(exported[2 * k + s..<2 * k + 2 * s])
    }

    public var description: String { "SRTPKeyingMaterial(\(self.profile), keys redacted)" }
}

/// A DTLS server context: our certificate and the SRTP profiles we offer, shared by every session.
public final class DTLSServerContext: @unchecked Sendable {
    // @unchecked: the SSL_CTX is configured in init and only read afterwards (SSL_new), which OpenSSL allows from any
    // thread.
    fileprivate let pointer: OpaquePointer
    public let certificate: DTLSCertificate

    /// `profiles` in order of preference.
    public init(
        certificate: DTLSCertificate,
        profiles: [SRTPProfile] = [.aeadAES128GCM, .aes128CMSHA1_80]
    ) throws(WebRTCError) {
        let list = profiles.map(\.openSSLName).joined(separator: ":")
        guard let pointer = lr_dtls_context_new(certificate.pointer, list) else {
            throw .cryptoUnavailable("OpenSSL could not make a DTLS context: \(lastOpenSSLError())")
        }
        self.pointer = pointer
        self.certificate = certificate
    }

    deinit { lr_dtls_context_free(self.pointer) }
}

/// One DTLS 1.2 server connection (RFC 6347) for DTLS-SRTP, over memory: the caller feeds the datagrams it receives
/// and sends the ones this hands back. It never touches a socket or a clock; OpenSSL's retransmission timer is read
/// through ``nextTimeout`` and fired with ``handleTimeout()``.
///
/// Owned by one event loop; not Sendable.
public final class DTLSServerConnection {
    /// What a datagram did.
    public enum Event: Hashable, Sendable {
        /// Nothing to report (the handshake goes on, or application data was dropped).
        case none
        /// The handshake has just completed.
        case handshakeCompleted
        /// The peer closed with close_notify.
        case closed
    }

    /// RFC 8261 §5: WebRTC datagrams stay below 1200 bytes on unknown paths.
    public static let defaultMTU = 1200

    private let pointer: OpaquePointer
    private let mtu: Int
    /// Whether the connection has failed or closed; it takes nothing more.
    public private(set) var isFinished = false

    public init(context: DTLSServerContext, mtu: Int = DTLSServerConnection.defaultMTU) throws(WebRTCError) {
        guard let pointer = lr_dtls_new(context.pointer, Int32(mtu)) else {
            throw .cryptoUnavailable("OpenSSL could not make a DTLS connection")
        }
        self.pointer = pointer
        self.mtu = mtu
    }

    deinit { lr_dtls_free(self.pointer) }

    /// Whether the handshake has completed.
    public var isEstablished: Bool { lr_dtls_is_established(self.pointer) != 0 }

    /// Feeds one datagram from the peer.
    public func receive(_ datagram: [UInt8]) throws(WebRTCError) -> Event {
        guard !self.isFinished else { throw .sessionClosed("the DTLS connection has ended") }
        let status = datagram.withUnsafeBufferPointer { lr_dtls_feed(self.pointer, $0.baseAddress, $0.count) }
        return try self.event(status)
    }

    /// The datagrams OpenSSL wants sent, in order.
    public func outgoingDatagrams() -> [[UInt8]] {
        var datagrams: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: max(self.mtu, 1500))
        while true {
            let count = buffer.withUnsafeMutableBufferPointer {
                lr_dtls_next_datagram(self.pointer, $0.baseAddress, $0.count)
            }
            if count == 0 { break }
            datagrams.append(Array(buffer[0..<count]))
        }
        return datagrams
    }

    /// How long until OpenSSL wants to retransmit, or nil when its timer is not running.
    public var nextTimeout: TimeAmount? {
        let microseconds = lr_dtls_timeout_microseconds(self.pointer)
        return microseconds < 0 ? nil : .microseconds(microseconds)
    }

    /// Lets OpenSSL retransmit its last flight if its timer has expired; then send ``outgoingDatagrams()``.
    public func handleTimeout() throws(WebRTCError) {
        guard !self.isFinished else { return }
        if lr_dtls_handle_timeout(self.pointer) == Int32(LR_DTLS_ERROR) {
            self.isFinished = true
            throw .dtlsFailed("retransmission failed: \(lastOpenSSLError())")
        }
    }

    /// Queues close_notify; send ``outgoingDatagrams()`` after.
    public func shutdown() {
        guard !self.isFinished else { return }
        lr_dtls_shutdown(self.pointer)
        self.isFinished = true
    }

    /// SHA-256 of the certificate the peer presented.
    public var peerFingerprint: [UInt8]? {
        var digest = [UInt8](repeating: 0, count: 32)
        return lr_dtls_peer_sha256(self.pointer, &digest) == 0 ? digest : nil
    }

    /// The negotiated SRTP profile, once established.
    public var srtpProfile: SRTPProfile? {
        SRTPProfile(rawValue: lr_dtls_srtp_profile(self.pointer))
    }

    /// The SRTP keys (RFC 5764 §4.2), from the exporter with the label "EXTRACTOR-dtls_srtp".
    public func exportSRTPKeyingMaterial() throws(WebRTCError) -> SRTPKeyingMaterial {
        guard self.isEstablished, let profile = self.srtpProfile else {
            throw .dtlsFailed("no SRTP profile was negotiated (the peer did not offer use_srtp with one we take)")
        }
        var exported = [UInt8](repeating: 0, count: 2 * (profile.keyLength + profile.saltLength))
        let status = exported.withUnsafeMutableBufferPointer {
            lr_dtls_export_srtp_keying_material(self.pointer, $0.baseAddress, $0.count)
        }
        guard status == 0 else { throw .dtlsFailed("key export failed: \(lastOpenSSLError())") }
        return SRTPKeyingMaterial(profile: profile, exported: exported)
    }

    /// Checks the peer's certificate against the fingerprint from its SDP.
    public func verifyPeer(fingerprint expected: [UInt8]) throws(WebRTCError) {
        guard let actual = self.peerFingerprint else {
            throw .fingerprintMismatch("the peer presented no certificate")
        }
        var difference: UInt8 = actual.count == expected.count ? 0 : 1
        for (a, b) in zip(actual, expected) { difference |= a ^ b }
        guard difference == 0 else {
            throw .fingerprintMismatch("the peer's certificate is not the one its offer's a=fingerprint names")
        }
    }

    private func event(_ status: Int32) throws(WebRTCError) -> Event {
        switch status {
        case Int32(LR_DTLS_DONE):
            return .handshakeCompleted
        case Int32(LR_DTLS_CLOSED):
            self.isFinished = true
            return .closed
        case Int32(LR_DTLS_ERROR):
            self.isFinished = true
            throw .dtlsFailed(lastOpenSSLError())
        default:
            return .none
        }
    }
}

@available(*, unavailable)
extension DTLSServerConnection: Sendable {}

private func lastOpenSSLError() -> String {
    var buffer = [UInt8](repeating: 0, count: 256)
    buffer.withUnsafeMutableBufferPointer { lr_dtls_error($0.baseAddress, $0.count) }
    return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
}
