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

/// An error of the WebRTC media path: a packet that does not parse, a codec this ingest does not take, a limit that
/// a peer's packets exceeded, a codec library that failed.
///
/// None of these ends a session by itself: a bad packet is dropped and reported, and the session goes on with the
/// next one. The ``code`` says what kind of failure it was; the ``message`` says what exactly was wrong.
public struct WebRTCMediaError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case malformedPacket
            case unsupportedCodec
            case unknownPayloadType
            case unsupportedPacketization
            case limitExceeded
            case invalidConfiguration
            case codecFailure
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The bytes are not a valid RTP or RTCP packet, or an H.264 payload is inconsistent.
        public static let malformedPacket = Self(.malformedPacket)
        /// The session negotiated, or the peer sent, a codec that this ingest does not take (VP8, VP9, AV1, ...).
        public static let unsupportedCodec = Self(.unsupportedCodec)
        /// An RTP packet carried a payload type that the session did not negotiate.
        public static let unknownPayloadType = Self(.unknownPayloadType)
        /// An H.264 payload used a packetization this ingest does not take (interleaved mode: STAP-B, MTAP, FU-B).
        public static let unsupportedPacketization = Self(.unsupportedPacketization)
        /// A peer-controlled size or count went over its configured limit.
        public static let limitExceeded = Self(.limitExceeded)
        /// The negotiated parameters cannot make a session (no H.264 or Opus, a bad `sprop-parameter-sets`).
        public static let invalidConfiguration = Self(.invalidConfiguration)
        /// libavcodec could not be loaded or failed to decode or encode.
        public static let codecFailure = Self(.codecFailure)

        public var description: String {
            switch self.wrapped {
            case .malformedPacket: "malformed packet"
            case .unsupportedCodec: "unsupported codec"
            case .unknownPayloadType: "unknown payload type"
            case .unsupportedPacketization: "unsupported packetization"
            case .limitExceeded: "limit exceeded"
            case .invalidConfiguration: "invalid configuration"
            case .codecFailure: "codec failure"
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
}

extension WebRTCMediaError {
    @inline(never)
    static func malformed(_ message: String) -> Self { Self(code: .malformedPacket, message: message) }

    @inline(never)
    static func limit(_ message: String) -> Self { Self(code: .limitExceeded, message: message) }

    @inline(never)
    static func codec(_ message: String) -> Self { Self(code: .codecFailure, message: message) }
}
