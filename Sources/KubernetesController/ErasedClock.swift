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

/// Any clock whose durations are `Duration`, erased: the clock the timers of this module run on.
///
/// ``WorkQueue``, ``LeaderElector`` and ``Controller`` take `some Clock<Duration>` (the continuous clock by default,
/// a manual clock in tests) and keep it as this type, so that none of them grows a generic parameter that every
/// user would have to spell (`WorkQueue<ObjectKey, ContinuousClock>`). An instant is the time elapsed since the clock
/// was wrapped; the erasure costs one closure call per reading, which is nothing beside a request to the API server.
struct ErasedClock: Clock {
    struct Instant: InstantProtocol {
        /// Time since the wrapped clock's instant at wrapping.
        var offset: Duration

        func advanced(by duration: Duration) -> Instant { Instant(offset: self.offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - self.offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
        static func + (lhs: Instant, rhs: Duration) -> Instant { lhs.advanced(by: rhs) }
    }

    private let elapsed: @Sendable () -> Duration
    private let sleeper: @Sendable (Duration, Duration?) async throws -> Void
    let minimumResolution: Duration

    init<C: Clock>(_ clock: C) where C.Duration == Duration {
        if let clock = clock as? ErasedClock {
            self = clock
            return
        }
        let origin = clock.now
        self.elapsed = { origin.duration(to: clock.now) }
        self.sleeper = { offset, tolerance in
            try await clock.sleep(until: origin.advanced(by: offset), tolerance: tolerance)
        }
        self.minimumResolution = clock.minimumResolution
    }

    var now: Instant { Instant(offset: self.elapsed()) }

    func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try await self.sleeper(deadline.offset, tolerance)
    }
}
