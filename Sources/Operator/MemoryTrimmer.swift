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
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Gives the memory freed after a burst of work back to the system (glibc's `malloc_trim`).
///
/// A burst (the first list of every stream, a resync, thousands of streams created at once) decodes and encodes
/// many bodies at once; freed, their memory stays in glibc's heaps, between the caches' long-lived objects, where
/// glibc returns only the free top of each heap by itself. `malloc_trim(0)` returns every whole free page of every
/// heap (arena) to the system, and costs a few milliseconds. It is called once the work queue has been idle for a
/// moment after at least ``threshold`` reconciles since the last trim, so an operator at rest never calls it. Where
/// the C library has no `malloc_trim` (musl), it does nothing; nor does it with `LIVERELAY_MALLOC_TRIM=0` in the
/// environment (to measure what it saves).
final class MemoryTrimmer: Sendable {
    /// Reconciles since the last trim that make the next idle moment trim.
    let threshold: Int
    private let reconciles = Atomic<Int>(0)

    init(threshold: Int = 200, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.threshold = environment["LIVERELAY_MALLOC_TRIM"] == "0" ? .max : threshold
    }

    /// Notes one reconcile.
    func noteReconcile() {
        self.reconciles.add(1, ordering: .relaxed)
    }

    /// Trims if enough reconciles happened since the last trim and `isIdle()`; returns whether it trimmed.
    @discardableResult
    func trimIfDue(isIdle: () -> Bool) -> Bool {
        guard self.reconciles.load(ordering: .relaxed) >= self.threshold, isIdle() else { return false }
        self.reconciles.store(0, ordering: .relaxed)
        Self.trim()
        return true
    }

    /// glibc's `malloc_trim`, looked up at run time (no Swift module declares it); `nil` in a C library without it.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()

    /// Returns the free memory of every heap to the system now.
    static func trim() {
        _ = Self.mallocTrim?(0)
    }

    /// Checks every `interval` until cancelled: trims when due and the queue is empty with nothing in flight.
    func run(interval: Duration = .seconds(5), isIdle: @escaping @Sendable () -> Bool) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            self.trimIfDue(isIdle: isIdle)
        }
    }
}
