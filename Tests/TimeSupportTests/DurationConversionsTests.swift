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

@Suite("Duration as other APIs' numbers")
struct DurationConversionsTests {
    @Test("fractions of a second survive every conversion")
    func fractions() {
        let duration = Duration.milliseconds(1500) + .nanoseconds(7)
        #expect(duration.inNanoseconds == 1_500_000_007)
        #expect(duration.inMilliseconds == 1500)
        #expect(abs(duration.inSeconds - 1.500000007) < 1e-12)
    }

    @Test("negative spans keep their sign; spans beyond Int64 nanoseconds saturate instead of trapping")
    func edges() {
        #expect(Duration.milliseconds(-250).inNanoseconds == -250_000_000)
        #expect(Duration.milliseconds(-250).inSeconds == -0.25)
        #expect(Duration.seconds(Int64.max / 2).inNanoseconds == .max)
        #expect(Duration.seconds(Int64.min / 2).inNanoseconds == .min)
        #expect(Duration.zero.inNanoseconds == 0)
    }

    @Test("seconds computed as a number become a Duration never shorter than them, and never trap")
    func secondsRoundedUp() {
        #expect(Duration(secondsRoundedUp: 0.25) == .milliseconds(250))
        #expect(Duration(secondsRoundedUp: 1e-10) == .nanoseconds(1), "a fraction of a nanosecond rounds up")
        #expect(Duration(secondsRoundedUp: -3) == .zero)
        #expect(Duration(secondsRoundedUp: .nan) == .zero)
        #expect(Duration(secondsRoundedUp: .infinity) == .nanoseconds(Int64.max))
    }
}
