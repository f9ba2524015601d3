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

import KubernetesController
import KubernetesTestSupport
import Testing

/// A hand-driven instant: tests say what time it is.
struct TestInstant: InstantProtocol, Sendable {
    var offset: Duration

    static let zero = TestInstant(offset: .zero)

    func advanced(by duration: Duration) -> TestInstant { TestInstant(offset: self.offset + duration) }
    func duration(to other: TestInstant) -> Duration { other.offset - self.offset }
    static func < (lhs: TestInstant, rhs: TestInstant) -> Bool { lhs.offset < rhs.offset }
}

/// Reference wrapper so `#expect` can call mutating methods (the macro evaluates its operands as `let`s).
final class Machine {
    var machine: WorkQueueStateMachine<String, TestInstant>

    init(configuration: WorkQueueConfiguration = WorkQueueConfiguration()) {
        self.machine = WorkQueueStateMachine(configuration: configuration)
    }

    var count: Int { self.machine.count }
    func failureCount(_ key: String) -> Int { self.machine.failureCount(key) }
    @discardableResult func add(_ key: String) -> Bool { self.machine.add(key) }
    @discardableResult func add(_ key: String, after delay: Duration, now: TestInstant) -> Bool {
        self.machine.add(key, after: delay, now: now)
    }
    @discardableResult func addRateLimited(_ key: String, now: TestInstant) -> Bool {
        self.machine.addRateLimited(key, now: now)
    }
    func forget(_ key: String) { self.machine.forget(key) }
    @discardableResult func done(_ key: String) -> Bool { self.machine.done(key) }
    func next(now: TestInstant) -> WorkQueueStateMachine<String, TestInstant>.NextAction { self.machine.next(now: now) }
    func shutDown() { self.machine.shutDown() }
}

@Suite("WorkQueueStateMachine")
struct WorkQueueStateMachineTests {
    let t0 = TestInstant.zero

    @Test("a key queued twice is handed out once")
    func dedup() {
        let machine = Machine()
        #expect(machine.add("a"))
        #expect(!machine.add("a"))
        #expect(machine.add("b"))
        #expect(machine.count == 2)
        #expect(machine.next(now: self.t0) == .process("a"))
        #expect(machine.next(now: self.t0) == .process("b"))
        #expect(machine.next(now: self.t0) == .wait(until: nil))
    }

    @Test("a key is never handed out while in flight; added meanwhile, it comes back after done")
    func neverTwiceAtOnce() {
        let machine = Machine()
        machine.add("a")
        #expect(machine.next(now: self.t0) == .process("a"))
        #expect(!machine.add("a"), "in flight: marked dirty, not queued")
        #expect(!machine.add("a"))
        #expect(machine.next(now: self.t0) == .wait(until: nil))
        #expect(machine.done("a"), "dirty: queued again")
        #expect(machine.next(now: self.t0) == .process("a"))
        #expect(!machine.done("a"))
        #expect(machine.next(now: self.t0) == .wait(until: nil))
    }

    @Test("failures back off exponentially per key, forget resets")
    func backoff() {
        let machine = Machine(
            configuration: WorkQueueConfiguration(
                baseDelay: .milliseconds(5),
                maxDelay: .milliseconds(30),
                queriesPerSecond: 0
            )
        )
        var now = self.t0
        var delays: [Duration] = []
        machine.add("a")
        for _ in 0..<5 {
            guard case .process("a") = machine.next(now: now) else {
                Issue.record("expected a")
                return
            }
            machine.addRateLimited("a", now: now)
            machine.done("a")
            guard case .wait(let deadline?) = machine.next(now: now) else {
                Issue.record("expected a deadline")
                return
            }
            delays.append(now.duration(to: deadline))
            #expect(machine.next(now: deadline.advanced(by: .nanoseconds(-1))) == .wait(until: deadline))
            now = deadline
        }
        #expect(
            delays == [.milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(30), .milliseconds(30)]
        )
        #expect(machine.failureCount("a") == 5)
        #expect(machine.next(now: now) == .process("a"))
        machine.forget("a")
        machine.addRateLimited("a", now: now)
        machine.done("a")
        #expect(machine.next(now: now) == .wait(until: now.advanced(by: .milliseconds(5))))
    }

    @Test("the global token bucket limits rate-limited requeues after the burst")
    func tokenBucket() {
        let machine = Machine(
            configuration: WorkQueueConfiguration(
                baseDelay: .nanoseconds(1),
                maxDelay: .nanoseconds(1),
                queriesPerSecond: 10,
                burst: 3
            )
        )
        for key in ["a", "b", "c", "d", "e"] {
            machine.addRateLimited(key, now: self.t0)
        }
        // Three tokens in the burst, then one every 100 ms.
        let ready = (0..<3).map { _ in machine.next(now: self.t0.advanced(by: .microseconds(1))) }
        #expect(ready.allSatisfy { if case .process = $0 { true } else { false } })
        #expect(
            machine.next(now: self.t0.advanced(by: .microseconds(1)))
                == .wait(until: self.t0.advanced(by: .milliseconds(100)))
        )
        guard case .process = machine.next(now: self.t0.advanced(by: .milliseconds(100))) else {
            Issue.record("4th key not ready at 100 ms")
            return
        }
        #expect(
            machine.next(now: self.t0.advanced(by: .milliseconds(100)))
                == .wait(until: self.t0.advanced(by: .milliseconds(200)))
        )
        // After a quiet second the bucket has refilled.
        machine.addRateLimited("f", now: self.t0.advanced(by: .seconds(2)))
        guard case .process = machine.next(now: self.t0.advanced(by: .milliseconds(200))) else {
            Issue.record("5th key not ready at 200 ms")
            return
        }
        // The refilled bucket adds no wait: only f's own 1 ns backoff.
        #expect(
            machine.next(now: self.t0.advanced(by: .seconds(2)))
                == .wait(until: self.t0.advanced(by: .seconds(2) + .nanoseconds(1)))
        )
        #expect(machine.next(now: self.t0.advanced(by: .seconds(2) + .nanoseconds(1))) == .process("f"))
    }

    @Test("add(after:) keeps the earliest deadline; an immediate add wins over a delay")
    func delayed() {
        let machine = Machine()
        machine.add("a", after: .seconds(10), now: self.t0)
        machine.add("a", after: .seconds(5), now: self.t0)
        machine.add("a", after: .seconds(20), now: self.t0)
        #expect(machine.next(now: self.t0) == .wait(until: self.t0.advanced(by: .seconds(5))))
        machine.add("a")
        #expect(machine.next(now: self.t0) == .process("a"))
        machine.done("a")
        #expect(machine.next(now: self.t0.advanced(by: .seconds(6))) == .wait(until: nil))
    }

    @Test("shut down: no more keys, done still accepted")
    func shutDown() {
        let machine = Machine()
        machine.add("a")
        machine.add("b")
        #expect(machine.next(now: self.t0) == .process("a"))
        machine.shutDown()
        #expect(!machine.add("c"))
        #expect(machine.next(now: self.t0) == .shutDown)
        #expect(!machine.done("a"))
    }
}

@Suite("WorkQueue")
struct WorkQueueTests {
    @Test("workers wake for added and delayed keys, not before a delay has passed, and stop at shutdown")
    func wakeAndStop() async throws {
        let clock = ManualClock()
        let queue = WorkQueue<String>(clock: clock)
        let (taken, takenContinuation) = AsyncStream<String>.makeStream()
        try await withThrowingTaskGroup(of: [String].self) { group in
            group.addTask {
                var seen: [String] = []
                while let key = await queue.next() {
                    seen.append(key)
                    takenContinuation.yield(key)
                    queue.done(key)
                }
                return seen
            }
            var keys = taken.makeAsyncIterator()
            queue.add("a")
            #expect(await keys.next() == "a")
            queue.add("b", after: .milliseconds(20))
            // The worker sleeps on the clock until b's deadline; short of it, b stays delayed.
            await clock.waitForSleepers()
            clock.advance(by: .milliseconds(19))
            #expect(queue.counts.delayed == 1)
            clock.advance(by: .milliseconds(1))
            #expect(await keys.next() == "b")
            queue.shutDown()
            let seen = try await group.next()
            #expect(seen == ["a", "b"])
        }
    }
}
