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

/// Stream keys made for a stream whose key Secret does not exist yet.
public enum StreamKey {
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
