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

/// Capped exponential backoff: the one policy for every retry in the project (a target's reconnect, a watch's
/// relist, a failed reconcile, a gateway's connect to a waking relay, a local relay's restart).
///
/// After `n` consecutive failures (counting from 1) the nominal delay is `min(maximum, initial * multiplier^(n-1))`;
/// ``Jitter`` then spreads it. A `maximum` below `initial` caps every delay at `maximum`. ``delay(afterFailures:using:)`` is a pure function of the count; ``nextDelay()`` and
/// ``reset()`` keep the count for callers that retry in a loop.
public struct Backoff: Sendable, Hashable {
    /// How the nominal delay `d` is spread, so that many clients failing together do not retry together.
    public enum Jitter: Sendable, Hashable {
        /// Exactly `d`: for a queue that must be predictable (a work queue's per-key backoff).
        case none
        /// Uniform in `[d/2, d]` ("equal jitter"), in whole milliseconds when that range holds one, so a log reads
        /// "retry in 4.68 seconds": never less than half the delay, for a target's reconnect.
        case equal
        /// `d` times a factor drawn uniformly from the range (client-go's watch backoff uses 0.8...1.2).
        case factor(ClosedRange<Double>)
    }

    public var initial: Duration
    public var maximum: Duration
    public var multiplier: Double
    public var jitter: Jitter
    /// Failed attempts since the last ``reset()``, as counted by ``nextDelay(using:)``.
    public private(set) var attempts = 0

    public init(
        initial: Duration = .milliseconds(200),
        maximum: Duration = .seconds(30),
        multiplier: Double = 2,
        jitter: Jitter = .factor(0.8...1.2)
    ) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The delay before the next attempt after `failures` consecutive failures (1 or more), without jitter.
    public func nominalDelay(afterFailures failures: Int) -> Duration {
        let exponent = Double(max(0, failures - 1))
        let seconds = min(self.initial.inSeconds * power(self.multiplier, exponent), self.maximum.inSeconds)
        return Duration(secondsRoundedUp: seconds)
    }

    /// The delay before the next attempt after `failures` consecutive failures (1 or more), jitter applied.
    public func delay(afterFailures failures: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let nominal = self.nominalDelay(afterFailures: failures)
        switch self.jitter {
        case .none:
            return nominal
        case .equal:
            let upper = nominal.inNanoseconds
            let lower = upper / 2
            let (lowerMilliseconds, upperMilliseconds) = ((lower + 999_999) / 1_000_000, upper / 1_000_000)
            guard lowerMilliseconds <= upperMilliseconds else {
                return .nanoseconds(Int64.random(in: lower...upper, using: &generator))
            }
            return .milliseconds(Int64.random(in: lowerMilliseconds...upperMilliseconds, using: &generator))
        case .factor(let range):
            return Duration(secondsRoundedUp: nominal.inSeconds * Double.random(in: range, using: &generator))
        }
    }

    /// As ``delay(afterFailures:using:)``, with the system's random numbers.
    public func delay(afterFailures failures: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return self.delay(afterFailures: failures, using: &generator)
    }

    /// Records a failure and returns how long to wait before the next attempt.
    public mutating func nextDelay(using generator: inout some RandomNumberGenerator) -> Duration {
        self.attempts += 1
        return self.delay(afterFailures: self.attempts, using: &generator)
    }

    /// As ``nextDelay(using:)``, with the system's random numbers.
    public mutating func nextDelay() -> Duration {
        var generator = SystemRandomNumberGenerator()
        return self.nextDelay(using: &generator)
    }

    /// Records a success: the next failure starts from the initial delay again.
    public mutating func reset() {
        self.attempts = 0
    }
}

/// `base` to the power `exponent` by repeated squaring, without Foundation's `pow`; large exponents saturate to
/// infinity, which the cap then bounds.
private func power(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var factor = base
    var remaining = Int(min(exponent, 2048))
    while remaining > 0 {
        if remaining & 1 == 1 { result *= factor }
        factor *= factor
        remaining >>= 1
    }
    return result
}
