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

/// The one error type of the Kubernetes client.
///
/// The ``code`` says what kind of failure it was; it is opaque (a private enum inside) so that new kinds can be added
/// without breaking anyone's `switch`. When the API server answered with a `Status`, it is decoded into ``status``:
/// callers usually branch on ``status``'s `reason` (`NotFound`, `Conflict`, `AlreadyExists`, `Expired`) or HTTP code.
public struct KubernetesError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case apiError
            case transport
            case decoding
            case configuration
            case authentication
            case lineTooLong
            case truncatedWatch
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The API server answered with a non-2xx status; ``KubernetesError/status`` holds its `Status`.
        public static let apiError = Code(.apiError)
        /// The request could not be sent or the response could not be read (connection refused, reset, TLS).
        public static let transport = Code(.transport)
        /// A response body was not the JSON that was expected.
        public static let decoding = Code(.decoding)
        /// The kubeconfig or in-cluster configuration is missing or invalid.
        public static let configuration = Code(.configuration)
        /// Credentials could not be obtained (a token file is unreadable, an exec plugin failed).
        public static let authentication = Code(.authentication)
        /// A watch event was longer than the configured maximum line size.
        public static let lineTooLong = Code(.lineTooLong)
        /// A watch stream ended in the middle of an event.
        public static let truncatedWatch = Code(.truncatedWatch)

        public var description: String { "\(self.wrapped)" }
    }

    public var code: Code
    public var message: String
    /// The `Status` the API server sent with the error, when it sent one.
    public var status: Status?
    public var cause: (any Error)?

    public init(code: Code, message: String, status: Status? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.cause = cause
    }

    /// The HTTP status code the API server answered with, if this is an ``Code/apiError``.
    public var statusCode: Int? { self.status?.code }

    /// True for `404 Not Found`.
    public var isNotFound: Bool { self.statusCode == 404 }
    /// True for `409 Conflict` (a stale `resourceVersion`, or `AlreadyExists` on create).
    public var isConflict: Bool { self.statusCode == 409 }
    /// True for `410 Gone`: the requested `resourceVersion` has been compacted away; the caller must relist.
    public var isGone: Bool { self.statusCode == 410 || self.status?.reason == "Expired" }

    public var description: String {
        var text = "KubernetesError(\(self.code)): \(self.message)"
        if let status = self.status {
            text += " [\(status.code.map(String.init) ?? "-") \(status.reason ?? "")]"
        }
        if let cause = self.cause {
            text += " (cause: \(cause))"
        }
        return text
    }

    @inline(never)
    static func api(_ status: Status) -> KubernetesError {
        KubernetesError(code: .apiError, message: status.message ?? status.reason ?? "API error", status: status)
    }

    @inline(never)
    static func transport(_ message: String, cause: (any Error)? = nil) -> KubernetesError {
        KubernetesError(code: .transport, message: message, cause: cause)
    }

    @inline(never)
    static func decoding(_ message: String, cause: (any Error)? = nil) -> KubernetesError {
        KubernetesError(code: .decoding, message: message, cause: cause)
    }

    @inline(never)
    static func configuration(_ message: String, cause: (any Error)? = nil) -> KubernetesError {
        KubernetesError(code: .configuration, message: message, cause: cause)
    }

    @inline(never)
    static func authentication(_ message: String, cause: (any Error)? = nil) -> KubernetesError {
        KubernetesError(code: .authentication, message: message, cause: cause)
    }
}
