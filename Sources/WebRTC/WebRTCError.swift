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

/// An error raised by the WebRTC transport.
///
/// What a peer can provoke (a bad offer, a malformed packet, a failed handshake) ends that peer's session and
/// nothing else. The ``code`` says what kind of failure it was; the ``message`` says what exactly was wrong, for a
/// person reading the log. Messages never contain keys, passwords or stream keys.
public struct WebRTCError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case malformedSDP
            case unsupportedOffer
            case noH264
            case limitExceeded
            case malformedSTUN
            case integrityFailed
            case dtlsFailed
            case fingerprintMismatch
            case srtpFailed
            case sessionClosed
            case timeout
            case cryptoUnavailable
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The offer is not valid SDP (RFC 8866).
        public static let malformedSDP = Self(.malformedSDP)
        /// The offer is valid SDP but not a WebRTC offer we can answer (no ICE credentials, no fingerprint, ...).
        public static let unsupportedOffer = Self(.unsupportedOffer)
        /// The offer carries no H.264 with packetization-mode=1 in a profile we take (a VP8-only offer, say).
        public static let noH264 = Self(.noH264)
        /// The peer tried to make us hold more than a named limit allows.
        public static let limitExceeded = Self(.limitExceeded)
        /// A STUN message was invalid (RFC 8489).
        public static let malformedSTUN = Self(.malformedSTUN)
        /// A STUN message's MESSAGE-INTEGRITY or FINGERPRINT did not match.
        public static let integrityFailed = Self(.integrityFailed)
        /// The DTLS handshake failed.
        public static let dtlsFailed = Self(.dtlsFailed)
        /// The peer's DTLS certificate is not the one its offer's `a=fingerprint` names.
        public static let fingerprintMismatch = Self(.fingerprintMismatch)
        /// libsrtp2 refused a key or a packet.
        public static let srtpFailed = Self(.srtpFailed)
        /// The session was closed (DELETE, shutdown, or the peer's close_notify).
        public static let sessionClosed = Self(.sessionClosed)
        /// The peer did not connect, or stopped sending, in time.
        public static let timeout = Self(.timeout)
        /// OpenSSL or libsrtp2 could not make what was asked (a certificate, a context).
        public static let cryptoUnavailable = Self(.cryptoUnavailable)

        public var description: String {
            switch self.wrapped {
            case .malformedSDP: "malformed SDP"
            case .unsupportedOffer: "unsupported offer"
            case .noH264: "no H.264"
            case .limitExceeded: "limit exceeded"
            case .malformedSTUN: "malformed STUN"
            case .integrityFailed: "integrity check failed"
            case .dtlsFailed: "DTLS failed"
            case .fingerprintMismatch: "fingerprint mismatch"
            case .srtpFailed: "SRTP failed"
            case .sessionClosed: "session closed"
            case .timeout: "timeout"
            case .cryptoUnavailable: "crypto unavailable"
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// What exactly went wrong, for a person reading the log.
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.code): \(self.message)" }

    @inline(never)
    static func malformedSDP(_ message: String) -> Self { Self(code: .malformedSDP, message: message) }
    @inline(never)
    static func unsupportedOffer(_ message: String) -> Self { Self(code: .unsupportedOffer, message: message) }
    @inline(never)
    static func noH264(_ message: String) -> Self { Self(code: .noH264, message: message) }
    @inline(never)
    static func limitExceeded(_ message: String) -> Self { Self(code: .limitExceeded, message: message) }
    @inline(never)
    static func malformedSTUN(_ message: String) -> Self { Self(code: .malformedSTUN, message: message) }
    @inline(never)
    static func integrityFailed(_ message: String) -> Self { Self(code: .integrityFailed, message: message) }
    @inline(never)
    static func dtlsFailed(_ message: String) -> Self { Self(code: .dtlsFailed, message: message) }
    @inline(never)
    static func fingerprintMismatch(_ message: String) -> Self { Self(code: .fingerprintMismatch, message: message) }
    @inline(never)
    static func srtpFailed(_ message: String) -> Self { Self(code: .srtpFailed, message: message) }
    @inline(never)
    static func sessionClosed(_ message: String) -> Self { Self(code: .sessionClosed, message: message) }
    @inline(never)
    static func timeout(_ message: String) -> Self { Self(code: .timeout, message: message) }
    @inline(never)
    static func cryptoUnavailable(_ message: String) -> Self { Self(code: .cryptoUnavailable, message: message) }
}
