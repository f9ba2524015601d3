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

/// An error raised while parsing an FLV audio or video tag body or a codec configuration inside one.
///
/// The relay never needs to understand a media payload to forward it, so none of these errors is a reason to drop
/// a message or close a connection: ``MediaFrameKind/classify(video:)`` and ``MediaFrameKind/classify(audio:)``
/// never throw. The errors exist for the callers that want details (stream info in logs and metrics, tests). The
/// ``code`` says what kind of failure it was; the ``message`` says what exactly was wrong.
public struct MediaError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case truncated
            case malformedTagHeader
            case invalidConfigurationRecord
            case invalidParameterSet
            case unsupported
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The bytes ended before a field that the header or record says is there.
        public static let truncated = Self(.truncated)
        /// An FLV or enhanced RTMP tag header carried a value that the specification does not allow.
        public static let malformedTagHeader = Self(.malformedTagHeader)
        /// A decoder configuration record (`avcC`, `hvcC`) or an AAC AudioSpecificConfig was invalid.
        public static let invalidConfigurationRecord = Self(.invalidConfigurationRecord)
        /// An H.264 or H.265 parameter set (SPS) was invalid.
        public static let invalidParameterSet = Self(.invalidParameterSet)
        /// The bytes use a value that is reserved, or a feature that this module does not parse.
        public static let unsupported = Self(.unsupported)

        public var description: String {
            switch self.wrapped {
            case .truncated: "truncated"
            case .malformedTagHeader: "malformed tag header"
            case .invalidConfigurationRecord: "invalid configuration record"
            case .invalidParameterSet: "invalid parameter set"
            case .unsupported: "unsupported"
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

extension MediaError {
    /// The input ended early. `what` names the structure being read (for example `AVC video tag header`).
    @inline(never)
    public static func truncated(_ what: String, needed: Int, available: Int) -> Self {
        Self(code: .truncated, message: "\(what) needs \(needed) bytes, only \(available) available")
    }

    @inline(never)
    public static func malformedTagHeader(_ message: String) -> Self {
        Self(code: .malformedTagHeader, message: message)
    }

    @inline(never)
    public static func invalidConfigurationRecord(_ message: String) -> Self {
        Self(code: .invalidConfigurationRecord, message: message)
    }

    @inline(never)
    public static func invalidParameterSet(_ message: String) -> Self {
        Self(code: .invalidParameterSet, message: message)
    }

    @inline(never)
    public static func unsupported(_ message: String) -> Self { Self(code: .unsupported, message: message) }
}

/// Why a tag header did not parse, without allocating.
///
/// The tag header parsers run once per media message on the relay's hot path, and ``MediaFrameKind`` discards the
/// reason. Building a ``MediaError`` means formatting a `String`, so the parsers throw this trivially copyable value
/// instead and only the public throwing initialisers turn it into a ``MediaError``.
enum TagParseFailure: Error, Sendable {
    case truncated(StaticString, needed: Int, available: Int)
    case malformed(StaticString, value: Int)
    case unsupported(StaticString, value: Int)
}

extension MediaError {
    @inline(never)
    init(_ failure: TagParseFailure) {
        switch failure {
        case .truncated(let what, let needed, let available):
            self = .truncated("\(what)", needed: needed, available: available)
        case .malformed(let what, let value):
            self = .malformedTagHeader("\(what) \(value)")
        case .unsupported(let what, let value):
            self = .unsupported("\(what) \(value)")
        }
    }
}
