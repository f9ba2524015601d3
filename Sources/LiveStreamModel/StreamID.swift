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
