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

import CoreMetrics
import Synchronization
import TimeSupport

/// A work queue for N concurrent workers: a ``WorkQueueStateMachine`` in a `Mutex`, on a clock (the continuous
/// clock unless a test gives a manual one).
///
/// Workers call ``next()`` and suspend when nothing is ready. Every change wakes all suspended workers, who ask the
/// state machine again; with a handful of workers this is cheaper than tracking who should get what. A worker
/// that waits for a delayed key also sleeps until that key's deadline.
public final class WorkQueue<Key: Hashable & Sendable>: Sendable {
    private struct State {
        var machine: WorkQueueStateMachine<Key, ErasedClock.Instant>
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiterID: UInt64 = 0
        var generation: UInt64 = 0
    }

    private let state: Mutex<State>
    private let metrics: WorkQueueMetrics?
    private let clock: ErasedClock

    /// A queue whose delays and waiting times are measured on `clock`.
    public init(
        configuration: WorkQueueConfiguration = WorkQueueConfiguration(),
        metrics: WorkQueueMetrics? = nil,
        clock: some Clock<Duration> = ContinuousClock()
    ) {
        self.state = Mutex(State(machine: WorkQueueStateMachine(configuration: configuration)))
        self.metrics = metrics
        self.clock = ErasedClock(clock)
    }

    public func add(_ key: Key) {
        let now = self.clock.now
        self.change { $0.add(key, now: now) }
    }

    public func add(_ key: Key, after delay: Duration) {
        let now = self.clock.now
        self.change { $0.add(key, after: delay, now: now) }
    }

    public func addRateLimited(_ key: Key) {
        let now = self.clock.now
        self.change { $0.addRateLimited(key, now: now) }
    }

    public func forget(_ key: Key) {
        self.state.withLock { $0.machine.forget(key) }
    }

    public func done(_ key: Key) {
        let now = self.clock.now
        self.change { $0.done(key, now: now) }
    }

    public func shutDown() {
        self.change {
            $0.shutDown()
            return true
        }
    }

    /// Whether ``shutDown()`` was called.
    public var isShutDown: Bool {
        self.state.withLock { $0.machine.isShutDown }
    }

    /// Keys ready, in flight and delayed, for metrics and tests.
    public var counts: (queued: Int, inFlight: Int, delayed: Int) {
        self.state.withLock { ($0.machine.count, $0.machine.inFlight, $0.machine.delayedCount) }
    }

    /// The next key to process, or `nil` once the queue is shut down or the calling task is cancelled.
    public func next() async -> Key? {
        while true {
            if Task.isCancelled { return nil }
            let now = self.clock.now
            let (action, waited, depth, generation, id) = self.state.withLock { state in
                state.nextWaiterID += 1
                let (action, waited) = state.machine.take(now: now)
                return (action, waited, state.machine.count, state.generation, state.nextWaiterID)
            }
            switch action {
            case .process(let key):
                if let metrics = self.metrics {
                    metrics.depth.record(depth)
                    if let waited { metrics.latency.recordNanoseconds(waited.inNanoseconds) }
                }
                return key
            case .shutDown:
                return nil
            case .wait(let deadline):
                await self.wait(id: id, generation: generation, deadline: deadline)
            }
        }
    }

    private func change(_ body: (inout WorkQueueStateMachine<Key, ErasedClock.Instant>) -> Bool) {
        let (waiters, depth) = self.state.withLock { state -> ([CheckedContinuation<Void, Never>], Int?) in
            guard body(&state.machine) else { return ([], nil) }
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return (Array(state.waiters.values), state.machine.count)
        }
        if let depth { self.metrics?.depth.record(depth) }
        for waiter in waiters {
            waiter.resume()
        }
    }

    private func wake(id: UInt64) {
        let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.resume()
    }

    private func suspend(id: UInt64, generation: UInt64, deadline: ErasedClock.Instant?) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state -> Bool in
                    // Something changed since the worker looked, its deadline passed, or it was cancelled: look again.
                    if state.generation != generation || Task.isCancelled { return true }
                    if let deadline, deadline <= self.clock.now { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.wake(id: id)
        }
    }

    private func wait(id: UInt64, generation: UInt64, deadline: ErasedClock.Instant?) async {
        guard let deadline else {
            await self.suspend(id: id, generation: generation, deadline: nil)
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.suspend(id: id, generation: generation, deadline: deadline) }
            group.addTask {
                try? await self.clock.sleep(until: deadline)
                self.wake(id: id)
            }
            await group.next()
            group.cancelAll()
        }
    }
}
