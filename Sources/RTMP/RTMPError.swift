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

/// An error raised by the RTMP protocol layer.
///
/// Every error that a peer can provoke closes that peer's connection and nothing else. The ``code`` says what kind
/// of failure it was (for metrics and tests); the ``message`` says what exactly was wrong, for a person reading
/// the log. Messages never contain stream keys.
public struct RTMPError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case handshakeFailed
            case unsupportedVersion
            case limitExceeded
            case malformedChunk
            case malformedAMF
            case malformedMessage
            case unexpectedMessage
            case commandFailed
            case connectionClosed
            case timeout
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The handshake bytes were invalid or arrived in the wrong order.
        public static let handshakeFailed = Self(.handshakeFailed)
        /// The peer asked for an RTMP version other than 3 (plain) or 6 (encrypted, which we refuse).
        public static let unsupportedVersion = Self(.unsupportedVersion)
        /// The peer tried to make us hold more than a named limit allows.
        public static let limitExceeded = Self(.limitExceeded)
        /// A chunk header or chunk sequence was invalid.
        public static let malformedChunk = Self(.malformedChunk)
        /// An AMF0 value could not be decoded.
        public static let malformedAMF = Self(.malformedAMF)
        /// A message's payload did not match its type.
        public static let malformedMessage = Self(.malformedMessage)
        /// A well-formed message arrived in a state that does not accept it.
        public static let unexpectedMessage = Self(.unexpectedMessage)
        /// The peer answered a command with `_error` or a failing `onStatus`.
        public static let commandFailed = Self(.commandFailed)
        /// The connection closed before the operation completed.
        public static let connectionClosed = Self(.connectionClosed)
        /// The peer did not answer in time.
        public static let timeout = Self(.timeout)

        public var description: String {
            switch self.wrapped {
            case .handshakeFailed: "handshake failed"
            case .unsupportedVersion: "unsupported version"
            case .limitExceeded: "limit exceeded"
            case .malformedChunk: "malformed chunk"
            case .malformedAMF: "malformed AMF0"
            case .malformedMessage: "malformed message"
            case .unexpectedMessage: "unexpected message"
            case .commandFailed: "command failed"
            case .connectionClosed: "connection closed"
            case .timeout: "timeout"
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

extension RTMPError {
    @inline(never)
    public static func handshakeFailed(_ message: String) -> Self { Self(code: .handshakeFailed, message: message) }

    @inline(never)
    public static func unsupportedVersion(_ version: UInt8) -> Self {
        Self(code: .unsupportedVersion, message: "RTMP version \(version) is not supported (expected 3)")
    }

    /// A limit was exceeded. `limit` names the limit as documented (for example `maxMessageLength`).
    @inline(never)
    public static func limitExceeded(_ limit: String, value: Int, maximum: Int) -> Self {
        Self(code: .limitExceeded, message: "\(limit) exceeded: \(value) > \(maximum)")
    }

    @inline(never)
    public static func malformedChunk(_ message: String) -> Self { Self(code: .malformedChunk, message: message) }

    @inline(never)
    public static func malformedAMF(_ message: String) -> Self { Self(code: .malformedAMF, message: message) }

    @inline(never)
    public static func malformedMessage(_ message: String) -> Self { Self(code: .malformedMessage, message: message) }

    @inline(never)
    public static func unexpectedMessage(_ message: String) -> Self {
        Self(code: .unexpectedMessage, message: message)
    }

    @inline(never)
    public static func commandFailed(_ message: String) -> Self { Self(code: .commandFailed, message: message) }

    @inline(never)
    public static func connectionClosed(_ message: String) -> Self { Self(code: .connectionClosed, message: message) }

    @inline(never)
    public static func timeout(_ message: String) -> Self { Self(code: .timeout, message: message) }
}
