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

#if canImport(Glibc)
import Glibc
#endif

/// The C library's heap.
public enum Heap {
    /// glibc's `malloc_trim`, looked up at run time (no Swift module declares it); `nil` in a C library without it
    /// (musl).
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()

    /// Whether ``trim()`` can do anything here.
    public static var canTrim: Bool { Self.mallocTrim != nil }

    /// Returns every whole free page of every heap (arena) to the system: glibc returns only the free top of each
    /// heap by itself, and keeps what was freed between long-lived objects. Costs a few milliseconds.
    public static func trim() {
        _ = Self.mallocTrim?(0)
    }
}
