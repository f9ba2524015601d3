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

import NIOCore

/// A stream, named as its `LiveStream` resource is: namespace and name.
///
/// The gateway keys everything by it (routes, accounting, metrics labels, the KEDA metric), never by stream key, so
/// nothing secret reaches a log line or a metric label.
public struct StreamID: Hashable, Sendable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    /// `namespace/name`, as `kubectl` prints it and as KEDA's metric path uses it.
    public var description: String { "\(self.namespace)/\(self.name)" }
}

/// An error of the gateway: what went wrong, in words fit for a log line or a status condition.
public struct GatewayError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is; compare with the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case invalidIPRange
            case invalidConfiguration
        }
        private let base: Base

        /// A source range that is not an IPv4 or IPv6 CIDR.
        public static let invalidIPRange = Code(base: .invalidIPRange)
        /// A gateway configuration that cannot work (a zero limit, a negative timeout).
        public static let invalidConfiguration = Code(base: .invalidConfiguration)

        public var description: String { "\(self.base)" }
    }

    public var code: Code
    public var message: String

    public var description: String { "\(self.code): \(self.message)" }

    @inline(never)
    static func invalidIPRange(_ text: String, _ reason: String) -> GatewayError {
        GatewayError(code: .invalidIPRange, message: "invalid IP range \"\(text)\": \(reason)")
    }

    @inline(never)
    static func invalidConfiguration(_ message: String) -> GatewayError {
        GatewayError(code: .invalidConfiguration, message: message)
    }
}
