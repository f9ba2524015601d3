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

/// Tuning of a ``WorkQueueStateMachine``: client-go's default controller rate limiter.
public struct WorkQueueConfiguration: Sendable, Hashable {
    /// The delay after a key's first failure; it doubles with every further failure.
    public var baseDelay: Duration
    /// The cap of the per-key delay.
    public var maxDelay: Duration
    /// The sustained rate of failure requeues over all keys (token bucket refill, per second).
    public var queriesPerSecond: Double
    /// How many failure requeues may happen at once before the rate applies.
    public var burst: Int

    public init(
        baseDelay: Duration = .milliseconds(5),
        maxDelay: Duration = .seconds(1000),
        queriesPerSecond: Double = 10,
        burst: Int = 100
    ) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.queriesPerSecond = queriesPerSecond
        self.burst = burst
    }
}

/// The pure logic of a controller's work queue, with time as an input.
///
/// Semantics are client-go's `workqueue`:
/// - A key is queued at most once (*dirty* set); adding it again while queued does nothing.
/// - A key being processed is never handed out again until ``done(_:)``. If it is added meanwhile it is marked
///   dirty and queued when processing ends, so the change is not lost and no two workers hold one key.
/// - ``addRateLimited(_:now:)`` (after a failed reconcile) delays the key by the larger of its own exponential
///   backoff (`baseDelay * 2^(failures-1)`, capped at `maxDelay`) and the global token bucket's wait.
///   ``forget(_:)`` (after a success) resets the key's failure count.
/// - Plain adds are not rate limited: they come from watch events, which the API server already paces.
///
/// Delayed keys are kept in a dictionary scanned for the earliest deadline; fine for the thousands of keys of one
/// operator, where few keys are failing at once.
///
/// Each queued key remembers when it was queued (the time passed to ``add(_:now:)`` or ``done(_:now:)``, or the
/// deadline of a delay), so ``take(now:)`` can say how long it waited: client-go's `workqueue_queue_duration_seconds`.
public struct WorkQueueStateMachine<Key: Hashable & Sendable, Instant: InstantProtocol & Sendable>: Sendable
where Instant.Duration == Duration {
    public let configuration: WorkQueueConfiguration
    private var queue: [Key] = []
    private var head = 0
    private var dirty: Set<Key> = []
    private var processing: Set<Key> = []
    private var delayed: [Key: Instant] = [:]
    private var failures: [Key: Int] = [:]
    /// When each queued key was queued, for keys queued with a time.
    private var queuedAt: [Key: Instant] = [:]
    private var tokens: Double
    private var lastRefill: Instant?
    private(set) public var isShutDown = false

    public init(configuration: WorkQueueConfiguration = WorkQueueConfiguration()) {
        self.configuration = configuration
        self.tokens = Double(configuration.burst)
    }

    /// What a worker asking for work should do.
    public enum NextAction: Hashable, Sendable {
        /// Process this key, then call ``done(_:)``.
        case process(Key)
        /// Nothing is ready: wait for a change, or until this instant when a delayed key becomes ready.
        case wait(until: Instant?)
        /// The queue is shut down: the worker should stop.
        case shutDown
    }

    /// Keys waiting to be handed out (not counting delayed or in-flight keys).
    public var count: Int { self.queue.count - self.head }
    /// Keys being processed.
    public var inFlight: Int { self.processing.count }
    /// Keys waiting for a delay (backoff or requeue-after).
    public var delayedCount: Int { self.delayed.count }

    /// The number of failures recorded for `key` since its last ``forget(_:)``.
    public func failureCount(_ key: Key) -> Int { self.failures[key] ?? 0 }

    /// Queues `key` now. Returns whether the queue changed (a waiting worker should be woken).
    @discardableResult
    public mutating func add(_ key: Key) -> Bool {
        self.enqueue(key, at: nil)
    }

    /// Queues `key`, noting `now` as when it was queued (see ``take(now:)``).
    @discardableResult
    public mutating func add(_ key: Key, now: Instant) -> Bool {
        self.enqueue(key, at: now)
    }

    @discardableResult
    private mutating func enqueue(_ key: Key, at now: Instant?) -> Bool {
        guard !self.isShutDown else { return false }
        self.delayed[key] = nil
        guard self.dirty.insert(key).inserted else { return false }
        if self.processing.contains(key) {
            return false
        }
        self.queue.append(key)
        if let now { self.queuedAt[key] = now }
        return true
    }

    /// Queues `key` once `delay` has passed from `now`; an earlier pending deadline for the key wins.
    @discardableResult
    public mutating func add(_ key: Key, after delay: Duration, now: Instant) -> Bool {
        guard !self.isShutDown else { return false }
        guard delay > .zero else { return self.add(key) }
        if self.dirty.contains(key) && !self.processing.contains(key) {
            // Already queued to run sooner than any delay.
            return false
        }
        let deadline = now.advanced(by: delay)
        if let existing = self.delayed[key], existing <= deadline {
            return false
        }
        self.delayed[key] = deadline
        return true
    }

    /// Queues `key` after its backoff and the global rate limit: for a failed reconcile.
    @discardableResult
    public mutating func addRateLimited(_ key: Key, now: Instant) -> Bool {
        let failures = (self.failures[key] ?? 0) + 1
        self.failures[key] = failures
        let backoff = self.backoff(failures: failures)
        let bucket = self.reserveToken(now: now)
        return self.add(key, after: max(backoff, bucket), now: now)
    }

    /// Clears `key`'s failure count after a successful reconcile.
    public mutating func forget(_ key: Key) {
        self.failures[key] = nil
    }

    /// Marks `key` as processed. Returns whether it was queued again (it was added while being processed).
    @discardableResult
    public mutating func done(_ key: Key) -> Bool {
        self.finish(key, at: nil)
    }

    /// As ``done(_:)``; a key queued again counts as queued at `now`.
    @discardableResult
    public mutating func done(_ key: Key, now: Instant) -> Bool {
        self.finish(key, at: now)
    }

    @discardableResult
    private mutating func finish(_ key: Key, at now: Instant?) -> Bool {
        guard self.processing.remove(key) != nil else { return false }
        if self.dirty.contains(key) && !self.isShutDown {
            self.queue.append(key)
            if let now { self.queuedAt[key] = now }
            return true
        }
        return false
    }

    /// Hands out the next key, promoting delayed keys whose time has come.
    public mutating func next(now: Instant) -> NextAction {
        self.take(now: now).action
    }

    /// As ``next(now:)``, with how long the key handed out waited in the queue: from when it was queued (a delayed
    /// key: from its deadline) to `now`; `nil` when it was queued without a time.
    public mutating func take(now: Instant) -> (action: NextAction, waited: Duration?) {
        if self.isShutDown { return (.shutDown, nil) }
        var earliest: Instant? = nil
        if !self.delayed.isEmpty {
            for (key, deadline) in self.delayed {
                if deadline <= now {
                    self.delayed[key] = nil
                    self.enqueue(key, at: deadline)
                } else if earliest.map({ deadline < $0 }) ?? true {
                    earliest = deadline
                }
            }
        }
        guard self.head < self.queue.count else {
            return (.wait(until: earliest), nil)
        }
        let key = self.queue[self.head]
        self.head += 1
        if self.head > 1024 && self.head * 2 > self.queue.count {
            self.queue.removeFirst(self.head)
            self.head = 0
        }
        self.dirty.remove(key)
        self.processing.insert(key)
        let waited = self.queuedAt.removeValue(forKey: key).map { $0.duration(to: now) }
        if self.head == self.queue.count {
            // Drained: the storage a burst grew (ten thousand keys at the first list) goes back, not kept at rest.
            self.queue = []
            self.head = 0
            if self.dirty.isEmpty { self.dirty = [] }
            if self.queuedAt.isEmpty { self.queuedAt = [:] }
        }
        return (.process(key), waited)
    }

    /// Stops handing out keys. Keys in flight may still call ``done(_:)``.
    public mutating func shutDown() {
        self.isShutDown = true
        self.queue.removeAll()
        self.head = 0
        self.delayed.removeAll()
        self.queuedAt.removeAll()
    }

    func backoff(failures: Int) -> Duration {
        Backoff(initial: self.configuration.baseDelay, maximum: self.configuration.maxDelay, jitter: .none)
            .nominalDelay(afterFailures: failures)
    }

    /// Takes one token from the bucket; returns how long the caller must wait for it (zero if one was there).
    mutating func reserveToken(now: Instant) -> Duration {
        let rate = self.configuration.queriesPerSecond
        guard rate > 0 else { return .zero }
        if let last = self.lastRefill {
            let elapsed = last.duration(to: now).inSeconds
            if elapsed > 0 {
                self.tokens = min(Double(self.configuration.burst), self.tokens + elapsed * rate)
                self.lastRefill = now
            }
        } else {
            self.lastRefill = now
        }
        self.tokens -= 1
        return self.tokens >= 0 ? .zero : Duration(secondsRoundedUp: -self.tokens / rate)
    }
}
