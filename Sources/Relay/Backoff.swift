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

import TimeSupport

/// Exponential backoff with jitter for reconnecting to a target.
///
/// The delay before attempt `n` (counting from 1) is drawn uniformly from `[d/2, d]` where
/// `d = min(maximum, initial * 2^(n-1))`: "equal jitter", which spreads the reconnects of many relays after a
/// shared outage while never waiting less than half the nominal delay.
public struct Backoff: Hashable, Sendable {
    public var initial: Duration
    public var maximum: Duration
    /// Failed attempts since the last success.
    public private(set) var attempts = 0

    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(30)) {
        precondition(initial > .zero && maximum >= initial, "backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
    }

    /// Records a failure and returns how long to wait before the next attempt.
    public mutating func nextDelay(using generator: inout some RandomNumberGenerator) -> Duration {
        self.attempts += 1
        let exponent = min(self.attempts - 1, 30)
        var nominal = self.initial * (1 << exponent)
        if nominal > self.maximum || nominal < self.initial {
            nominal = self.maximum
        }
        let upper = nominal.inNanoseconds
        let lower = upper / 2
        // In whole milliseconds, plenty for a reconnect, so the log says "retry in 4.68 seconds", not
        // "4.680184145 seconds"; in nanoseconds only if the range holds no whole millisecond.
        let (lowerMilliseconds, upperMilliseconds) = ((lower + 999_999) / 1_000_000, upper / 1_000_000)
        guard lowerMilliseconds <= upperMilliseconds else {
            return .nanoseconds(Int64.random(in: lower...upper, using: &generator))
        }
        return .milliseconds(Int64.random(in: lowerMilliseconds...upperMilliseconds, using: &generator))
    }

    public mutating func nextDelay() -> Duration {
        var generator = SystemRandomNumberGenerator()
        return self.nextDelay(using: &generator)
    }

    /// Records a success: the next failure starts from the initial delay again.
    public mutating func reset() {
        self.attempts = 0
    }
}
