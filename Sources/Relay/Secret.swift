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

/// A secret string: a stream key or a token.
///
/// Its description is always `***`, so a secret that ends up in a log line, an error or a test's output by mistake
/// shows nothing. Comparison takes time that depends only on the lengths, not on where the strings differ, so a
/// publisher cannot guess a key byte by byte from response times.
/// Equality (for configuration diffs) is not constant-time; authentication uses ``matches(_:)``.
public struct Secret: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    private let bytes: [UInt8]

    public init(_ value: String) {
        self.bytes = Array(value.utf8)
    }

    /// The secret's value, for the one place that must send it (a push target's stream name).
    public var revealed: String { String(decoding: self.bytes, as: UTF8.self) }

    public var isEmpty: Bool { self.bytes.isEmpty }

    public var description: String { "***" }
    public var debugDescription: String { "Secret(***)" }

    /// Compares with a candidate in constant time for a given candidate length.
    public func matches(_ candidate: some StringProtocol) -> Bool {
        var difference = UInt8(truncatingIfNeeded: self.bytes.count ^ candidate.utf8.count)
        var index = 0
        for byte in candidate.utf8 {
            // Compare against our own bytes cyclically, so the loop's length never depends on the secret.
            let ours = self.bytes.isEmpty ? 0 : self.bytes[index % self.bytes.count]
            difference |= ours ^ byte
            index += 1
        }
        return difference == 0 && !self.bytes.isEmpty && self.bytes.count == candidate.utf8.count
    }
}
