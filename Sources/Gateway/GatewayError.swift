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

/// An error of the gateway: what went wrong, in words fit for a log line or a status condition.
public struct GatewayError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is; compare with the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case invalidConfiguration
            case invalidCertificate
        }
        private let base: Base

        /// A gateway configuration that cannot work (a zero limit, a negative timeout).
        public static let invalidConfiguration = Code(base: .invalidConfiguration)
        /// The TLS certificate or key for `rtmps://` cannot be read or used.
        public static let invalidCertificate = Code(base: .invalidCertificate)

        public var description: String { "\(self.base)" }
    }

    public var code: Code
    public var message: String

    public var description: String { "\(self.code): \(self.message)" }

    @inline(never)
    static func invalidConfiguration(_ message: String) -> GatewayError {
        GatewayError(code: .invalidConfiguration, message: message)
    }

    @inline(never)
    static func invalidCertificate(_ message: String) -> GatewayError {
        GatewayError(code: .invalidCertificate, message: message)
    }
}
