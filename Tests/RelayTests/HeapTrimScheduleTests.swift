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

import Relay
import Testing

@Suite("Heap trims: while live, once after, never while idle")
struct HeapTrimScheduleTests {
    @Test("idle from the start: no trim; live: every tick; ended: one more, then none")
    func schedule() {
        var schedule = HeapTrimSchedule()
        let ticks = [false, false, true, true, true, false, false, false, true, false, false]
        let trims = ticks.map { schedule.tick(isLive: $0) }
        #expect(trims == [false, false, true, true, true, true, false, false, true, true, false])
    }
}
