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

@testable import Operator

@Suite("Memory trimmer")
struct MemoryTrimmerTests {
    @Test("trims only at an idle moment after enough reconciles, then counts again")
    func trimsAfterABurst() {
        let trimmer = MemoryTrimmer(threshold: 3, environment: [:])
        #expect(trimmer.releasesCode)
        trimmer.noteReconcile()
        trimmer.noteReconcile()
        #expect(!trimmer.trimIfDue(isIdle: { true }), "before the threshold")
        trimmer.noteReconcile()
        #expect(!trimmer.trimIfDue(isIdle: { false }), "while the queue is busy")
        #expect(trimmer.trimIfDue(isIdle: { true }))
        #expect(!trimmer.trimIfDue(isIdle: { true }), "at rest: nothing to trim again")
    }

    @Test("LIVERELAY_MALLOC_TRIM: 0 never trims, heap keeps the code mapped")
    func settings() {
        let off = MemoryTrimmer(threshold: 1, environment: ["LIVERELAY_MALLOC_TRIM": "0"])
        off.noteReconcile()
        #expect(!off.trimIfDue(isIdle: { true }))
        let heap = MemoryTrimmer(threshold: 1, environment: ["LIVERELAY_MALLOC_TRIM": "heap"])
        #expect(!heap.releasesCode)
        heap.noteReconcile()
        #expect(heap.trimIfDue(isIdle: { true }))
    }
}
