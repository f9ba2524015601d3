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

@testable import Gateway

/// A WHIP session drops a bad RTP packet and goes on; the warning it logs is said once per interval with a count.
@Suite("A repeated warning is said once per interval")
struct RateLimitedWarningTests {
    @Test("The first at once, then one per interval with the count in between")
    func oncePerInterval() {
        let start = ContinuousClock.now
        var warning = RateLimitedWarning(interval: .seconds(10))
        #expect(warning.refused(at: start) == 0)
        #expect(warning.refused(at: start + .seconds(1)) == nil)
        #expect(warning.refused(at: start + .seconds(9)) == nil)
        #expect(warning.refused(at: start + .seconds(10)) == 2)
        #expect(warning.refused(at: start + .seconds(11)) == nil)
        #expect(warning.refused(at: start + .seconds(25)) == 1)
        #expect(warning.refused(at: start + .seconds(40)) == 0)
    }
}
