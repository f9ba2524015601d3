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

/// An error raised while running a real media peer (nginx, ffmpeg, ffprobe, openssl) for a test.
///
/// The ``message`` is written for the person reading a failed test: it names the peer, what it was asked to do, and
/// includes the tail of the peer's own diagnostics (nginx's error log, ffmpeg's standard error) where there are any.
public struct PeerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case executableNotFound
            case invalidArgument
            case startFailed
            case processFailed
            case timeout
            case malformedOutput
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// A peer program is not installed (see `.ci/run` for the Debian packages).
        public static let executableNotFound = Self(.executableNotFound)
        /// The caller asked for something the harness refuses, such as an application name nginx cannot parse.
        public static let invalidArgument = Self(.invalidArgument)
        /// A peer could not be started or did not become ready.
        public static let startFailed = Self(.startFailed)
        /// A peer ran but exited unsuccessfully.
        public static let processFailed = Self(.processFailed)
        /// An awaited event did not happen in time.
        public static let timeout = Self(.timeout)
        /// A peer's output could not be understood.
        public static let malformedOutput = Self(.malformedOutput)

        public var description: String {
            switch self.wrapped {
            case .executableNotFound: "executable not found"
            case .invalidArgument: "invalid argument"
            case .startFailed: "start failed"
            case .processFailed: "process failed"
            case .timeout: "timeout"
            case .malformedOutput: "malformed output"
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// What exactly went wrong, with the peer's own diagnostics.
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.code): \(self.message)" }
}

extension PeerError {
    @inline(never)
    static func executableNotFound(_ name: String, searched: [String]) -> Self {
        Self(
            code: .executableNotFound,
            message:
                "'\(name)' not found in \(searched.joined(separator: ":")); .ci/run installs the peers with apt-get"
        )
    }

    @inline(never)
    public static func invalidArgument(_ message: String) -> Self { Self(code: .invalidArgument, message: message) }

    @inline(never)
    public static func startFailed(_ message: String) -> Self { Self(code: .startFailed, message: message) }

    @inline(never)
    public static func processFailed(_ message: String) -> Self { Self(code: .processFailed, message: message) }

    @inline(never)
    public static func timeout(_ message: String) -> Self { Self(code: .timeout, message: message) }

    @inline(never)
    public static func malformedOutput(_ message: String) -> Self { Self(code: .malformedOutput, message: message) }
}
