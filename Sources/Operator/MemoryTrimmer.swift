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
import ResidentMemory
import Synchronization

/// Gives the memory a burst of work used back to the system: glibc's free heap and the pages of code it ran.
///
/// A burst (the first list of every stream, a resync, thousands of streams created at once) decodes and encodes
/// many bodies at once; freed, their memory stays in glibc's heaps, between the caches' long-lived objects, where
/// glibc returns only the free top of each heap by itself. ``Heap/trim()`` returns every whole free page of every
/// heap to the system, in a few milliseconds. The burst also ran code an operator at rest does not run, and a static
/// binary's code stays mapped once run: ``CodePages/release()`` unmaps it, and what runs afterwards faults back
/// from the page cache. Both happen once the work queue has been idle for a moment after at least ``threshold``
/// reconciles since the last trim, so an operator at rest never trims. `LIVERELAY_MALLOC_TRIM` in the environment
/// measures what each saves: `0` trims nothing, `heap` only the heap.
final class MemoryTrimmer: Sendable {
    /// Reconciles since the last trim that make the next idle moment trim.
    let threshold: Int
    /// Whether a trim also unmaps the code the burst ran.
    let releasesCode: Bool
    private let reconciles = Atomic<Int>(0)

    init(threshold: Int = 200, environment: [String: String] = ProcessInfo.processInfo.environment) {
        let setting = environment["LIVERELAY_MALLOC_TRIM"]
        self.threshold = setting == "0" ? .max : threshold
        self.releasesCode = setting != "heap"
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
        Heap.trim()
        if self.releasesCode {
            CodePages.release()
        }
        return true
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
