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

import Foundation

/// Stream keys: made for a stream whose key Secret does not exist yet, and read from Secrets and files.
public enum StreamKey {
    /// A stream key as every component reads it from a Secret value or a file: without the whitespace and line
    /// breaks around it. `echo key > file` and `kubectl create secret --from-file` leave a trailing newline, an
    /// editor may leave a space, and no encoder sends either, so the relay (which checks the key), the gateway's
    /// shared ingest port (which routes by it) and the operator's key book must all drop them the same way, or a key
    /// one of them routes the other refuses.
    public static func normalized(_ value: String) -> String {
        value.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A new key: 32 bytes from the system's cryptographic generator (`getrandom` on Linux), as 64 lowercase hex
    /// digits, which every encoder's key field takes as it is.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        var key = ""
        key.reserveCapacity(64)
        for _ in 0..<4 {
            let word = generator.next() as UInt64
            let hex = String(word, radix: 16)
            key += String(repeating: "0", count: 16 - hex.count) + hex
        }
        return key
    }
}
