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

public import ServiceLifecycle

/// When to give the heap's free pages back: every tick while a stream is live, and once more after the last one
/// ended; never while the relay stays idle, where nothing is freed. A value; the service below drives it.
public struct HeapTrimSchedule: Sendable, Hashable {
    private var trimmedSinceLive = true

    public init() {}

    /// One tick: whether to trim now, given whether a stream is live.
    public mutating func tick(isLive: Bool) -> Bool {
        if isLive {
            self.trimmedSinceLive = false
            return true
        }
        defer { self.trimmedSinceLive = true }
        return !self.trimmedSinceLive
    }
}

/// Gives the C library's free heap pages back to the system while streams run, off the event loops.
///
/// glibc keeps what a thread frees between long-lived allocations for that arena's reuse, and returns only the free
/// top of a heap by itself. A relay frees in bursts (a target's queue dropped while its connection restarts, a
/// keyframe's buffers, the preview's): over an hour with a black-holed target its anonymous memory climbed from 18.0
/// to 20.3 MiB in steps, and one `malloc_trim(0)` then gave back 5.7 MiB of it (BENCHMARKS.md, "Memory over one hour
/// with a black-holed target"). A trim takes a few milliseconds and holds each arena's lock while it walks it.
public struct HeapTrimService: Service {
    let interval: Duration
    let isLive: @Sendable () -> Bool
    let trim: @Sendable () -> Void

    /// - Parameters:
    ///   - interval: Time between ticks of ``HeapTrimSchedule``.
    ///   - isLive: Whether a stream has a publisher now.
    ///   - trim: Gives the free pages back (`ResidentMemory.Heap.trim`).
    public init(interval: Duration, isLive: @escaping @Sendable () -> Bool, trim: @escaping @Sendable () -> Void) {
        self.interval = interval
        self.isLive = isLive
        self.trim = trim
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var schedule = HeapTrimSchedule()
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: self.interval)
                } catch {
                    return
                }
                if schedule.tick(isLive: self.isLive()) {
                    self.trim()
                }
            }
        }
    }
}
