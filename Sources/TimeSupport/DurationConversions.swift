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

/// `Duration` as the numbers other APIs take: metrics timers, query strings, log fields. (NIO's `TimeAmount` has
/// its own `init(_: Duration)`.)
///
/// One place for the conversions, so that none of them loses a fraction of a second (a connect timeout of 500 ms
/// once became 0 by taking `components.seconds` alone).
extension Duration {
    /// Whole nanoseconds, rounded toward zero, saturating at `Int64`'s range (about 292 years).
    public var inNanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else {
            return seconds < 0 ? .min : .max
        }
        let (total, sumOverflow) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        guard !sumOverflow else {
            return seconds < 0 ? .min : .max
        }
        return total
    }

    /// Whole milliseconds, rounded toward zero.
    public var inMilliseconds: Int64 {
        self.inNanoseconds / 1_000_000
    }

    /// `seconds` in whole nanoseconds, rounded up (a delay computed in seconds is never shorter than computed),
    /// saturating; a negative or NaN count is zero.
    public init(secondsRoundedUp seconds: Double) {
        let nanoseconds = (seconds * 1e9).rounded(.up)
        if nanoseconds >= 9.2e18 {
            self = .nanoseconds(Int64.max)
        } else {
            self = .nanoseconds(nanoseconds > 0 ? Int64(nanoseconds) : 0)
        }
    }

    /// Seconds as a floating-point number.
    public var inSeconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
