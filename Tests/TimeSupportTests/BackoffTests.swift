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

import Testing
import TimeSupport

@Suite("Backoff, the one retry policy")
struct BackoffTests {
    @Test("nominal delays double from the initial one up to the maximum, and stay there")
    func nominal() {
        let backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(8), jitter: .none)
        let expected: [Duration] = [
            .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(8),
        ]
        #expect((1...6).map { backoff.nominalDelay(afterFailures: $0) } == expected)
        #expect(backoff.nominalDelay(afterFailures: 10_000) == .seconds(8), "a huge count saturates at the cap")
        var generator = SystemRandomNumberGenerator()
        #expect(backoff.delay(afterFailures: 3, using: &generator) == .seconds(2), "no jitter: exact")
        // The work queue's: 5 ms doubling to 1000 s (client-go's defaults).
        let queue = Backoff(initial: .milliseconds(5), maximum: .seconds(1000), jitter: .none)
        #expect(queue.nominalDelay(afterFailures: 11) == .milliseconds(5 * 1024))
        // A maximum below the initial delay caps every delay.
        #expect(
            Backoff(initial: .seconds(1), maximum: .milliseconds(300)).nominalDelay(afterFailures: 1)
                <= .milliseconds(300)
        )
    }

    @Test("equal jitter: in the upper half of the nominal delay, whole milliseconds when the range holds one")
    func equalJitter() {
        var backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(8), jitter: .equal)
        var generator = SystemRandomNumberGenerator()
        let nominal: [Duration] = [
            .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(8), .seconds(8),
        ]
        for expected in nominal {
            let delay = backoff.nextDelay(using: &generator)
            #expect(delay >= expected / 2 && delay <= expected, "\(delay) outside [\(expected / 2), \(expected)]")
            #expect(delay.components.attoseconds % 1_000_000_000_000_000 == 0, "\(delay) is not whole milliseconds")
        }
        #expect(backoff.attempts == nominal.count)
        backoff.reset()
        #expect(backoff.attempts == 0)
        #expect(backoff.nextDelay(using: &generator) <= .milliseconds(500))
        // 0.9 µs to 1.8 µs holds no whole millisecond: still inside the range.
        let tiny = Backoff(initial: .nanoseconds(1800), maximum: .nanoseconds(1800), jitter: .equal)
        let delay = tiny.delay(afterFailures: 1, using: &generator)
        #expect(delay >= .nanoseconds(900) && delay <= .nanoseconds(1800), "\(delay)")
    }

    @Test("factor jitter spreads around the nominal delay within its range, and does spread")
    func factorJitter() {
        let backoff = Backoff(initial: .seconds(1), maximum: .seconds(30), jitter: .factor(0.8...1.2))
        var generator = SystemRandomNumberGenerator()
        var seen = Set<Duration>()
        for _ in 0..<200 {
            let delay = backoff.delay(afterFailures: 2, using: &generator)
            #expect(delay >= .milliseconds(1600) && delay <= .milliseconds(2400), "\(delay)")
            seen.insert(delay)
        }
        #expect(seen.count > 100, "no spread: \(seen.count) distinct delays of 200")
    }
}
