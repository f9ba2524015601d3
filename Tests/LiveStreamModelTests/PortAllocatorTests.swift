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

import LiveStreamModel
import Testing

@Suite("PortAllocator")
struct PortAllocatorTests {
    private func claimant(_ name: String, created: String = "2026-11-21T10:00:00Z") -> PortClaimant {
        PortClaimant(stream: StreamID(namespace: "streams", name: name), createdAt: created)
    }

    @Test("Hands out every port of the range once, then reports exhaustion with the range")
    func exhaustion() throws {
        var allocator = PortAllocator(range: try PortRange(31000...31004))
        var given: Set<Int> = []
        for index in 0..<5 {
            given.insert(try allocator.allocate(for: self.claimant("s\(index)")))
        }
        #expect(given == Set(31000...31004))
        #expect(throws: PortAllocationError.exhausted(allocator.range)) {
            try allocator.allocate(for: self.claimant("one-too-many"))
        }
        let error = PortAllocationError.exhausted(allocator.range)
        #expect(error.description.contains("31000-31004"))
        #expect(error.reason == "RangeExhausted")
    }

    @Test("Asking again gives the same port; a released port is not the next one handed out")
    func idempotentAndCursor() throws {
        var allocator = PortAllocator(range: try PortRange(31000...31009))
        let alice = try allocator.allocate(for: self.claimant("alice"))
        #expect(try allocator.allocate(for: self.claimant("alice")) == alice)
        #expect(allocator.release(self.claimant("alice").stream) == alice)
        let bob = try allocator.allocate(for: self.claimant("bob"))
        #expect(bob != alice)
        #expect(allocator.owner(of: bob) == self.claimant("bob").stream)
        #expect(allocator.owner(of: alice) == nil)
    }

    @Test("A fixed port is honoured, refused outside the range, refused when another stream holds it")
    func fixedPorts() throws {
        var allocator = PortAllocator(range: try PortRange(31000...31009))
        #expect(try allocator.allocate(for: self.claimant("alice"), requested: 31005) == 31005)
        #expect(throws: PortAllocationError.outOfRange(port: 40000, range: allocator.range)) {
            try allocator.allocate(for: self.claimant("bob"), requested: 40000)
        }
        #expect(throws: PortAllocationError.taken(port: 31005, by: self.claimant("alice").stream)) {
            try allocator.allocate(for: self.claimant("bob"), requested: 31005)
        }
        // Moving to another fixed port frees the old one.
        #expect(try allocator.allocate(for: self.claimant("alice"), requested: 31007) == 31007)
        #expect(allocator.owner(of: 31005) == nil)
        #expect(allocator.port(of: self.claimant("alice").stream) == 31007)
        // The automatic search skips held ports.
        var automatic: Set<Int> = []
        for index in 0..<9 {
            automatic.insert(try allocator.allocate(for: self.claimant("auto\(index)")))
        }
        #expect(!automatic.contains(31007))
        #expect(automatic.count == 9)
    }

    @Test("Rebuilding from recorded ports keeps the older claim, whichever order they come in")
    func conflictsOlderWins() throws {
        let older = self.claimant("older", created: "2026-11-01T00:00:00Z")
        let newer = self.claimant("newer", created: "2026-11-20T00:00:00Z")
        for order in [[older, newer], [newer, older]] {
            var allocator = PortAllocator(range: try PortRange(31000...31009))
            var displaced: [PortDisplacement] = []
            for claimant in order {
                if let loser = allocator.record(claimant, port: 31003) {
                    displaced.append(loser)
                }
            }
            #expect(allocator.owner(of: 31003) == older.stream)
            #expect(allocator.port(of: newer.stream) == nil)
            #expect(displaced == [PortDisplacement(stream: newer.stream, port: 31003, reason: .keptBy(older.stream))])
            // The loser is re-allocated elsewhere.
            let port = try allocator.allocate(for: newer)
            #expect(port != 31003)
        }
    }

    @Test("Same creation time: the namespace/name order decides, so every operator replica agrees")
    func tieBreak() throws {
        let a = self.claimant("a")
        let b = self.claimant("b")
        #expect(a.precedes(b))
        #expect(!b.precedes(a))
    }

    @Test("A recorded port outside a narrowed range is not taken")
    func recordedOutOfRange() throws {
        var allocator = PortAllocator(range: try PortRange(31000...31009))
        let displaced = allocator.record(self.claimant("alice"), port: 32000)
        #expect(displaced?.reason == .outOfRange(allocator.range))
        #expect(allocator.allocatedCount == 0)
    }

    @Test("Port ranges parse and refuse nonsense", arguments: ["31000-31999", "1935", " 100 - 200 "])
    func rangeParses(text: String) throws {
        let range = try PortRange(parsing: text)
        #expect(range.count >= 1)
    }

    @Test("Port ranges refuse nonsense", arguments: ["", "abc", "200-100", "0-10", "65000-70000", "1-2-3"])
    func rangeRefuses(text: String) {
        #expect(throws: FieldError.self) {
            try PortRange(parsing: text)
        }
    }
}
