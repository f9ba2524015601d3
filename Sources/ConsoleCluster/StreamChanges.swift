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
import Synchronization

/// The changes one viewer sees, from the store's one watch: an `AsyncSequence` that ends when the store stops.
///
/// It starts with the streams the store's cache holds now (one ``StreamChange/upserted(_:)`` each), then follows
/// the watch. A subscriber that reads slowly is never a reason to drop a change or to grow without bound: pending
/// changes are kept per stream, the latest replacing an older one, so a subscription holds at most one change per
/// stream it may see, and a reader always ends up with each stream's latest state.
public struct StreamChanges: AsyncSequence, Sendable {
    public typealias Element = StreamChange

    let hub: ChangeHub
    let viewer: ConsoleViewer

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(subscription: self.hub.subscribe(self.viewer))
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let subscription: Subscription

        public mutating func next() async throws -> StreamChange? {
            try await self.subscription.next()
        }
    }
}

@available(*, unavailable)
extension StreamChanges.AsyncIterator: Sendable {}

/// One subscriber of a ``ChangeHub``; unsubscribes when its iterator goes away.
final class Subscription: Sendable {
    let id: Int
    let hub: ChangeHub

    init(id: Int, hub: ChangeHub) {
        self.id = id
        self.hub = hub
    }

    func next() async throws -> StreamChange? {
        try await self.hub.next(self.id)
    }

    deinit {
        self.hub.unsubscribe(self.id)
    }
}

/// Hands every change of the watch to each subscriber that may see it, and keeps the streams as the changes left
/// them for new subscribers.
final class ChangeHub: Sendable {
    private struct Subscriber {
        var viewer: ConsoleViewer
        /// Pending changes, one per stream, in the order their streams first became pending.
        var order: [StreamID] = []
        var pending: [StreamID: StreamChange] = [:]
        var waiter: CheckedContinuation<StreamChange?, any Error>?
        /// Set when the subscriber was refused (too many) or the store stopped.
        var failure: (any Error)?
        var finished = false

        /// Keeps `change`, or returns the waiting reader, to be resumed with it outside the lock.
        mutating func enqueue(_ change: StreamChange) -> CheckedContinuation<StreamChange?, any Error>? {
            if let waiter = self.waiter {
                self.waiter = nil
                return waiter
            }
            if self.pending.updateValue(change, forKey: change.id) == nil {
                self.order.append(change.id)
            }
            return nil
        }

        mutating func dequeue() -> StreamChange? {
            guard !self.order.isEmpty else { return nil }
            let id = self.order.removeFirst()
            return self.pending.removeValue(forKey: id)
        }
    }

    private struct State {
        var subscribers: [Int: Subscriber] = [:]
        /// Every stream as the last change said, under the same lock as the subscribers: a new subscription starts
        /// with exactly what was published before it and gets everything after, nothing lost in between.
        var streams: [StreamID: ClusterStream] = [:]
        var nextID = 0
        var stopped = false
    }

    private let state = Mutex(State())
    private let maxSubscribers: Int

    init(maxSubscribers: Int) {
        self.maxSubscribers = maxSubscribers
    }

    var subscriberCount: Int { self.state.withLock { $0.subscribers.count } }

    func subscribe(_ viewer: ConsoleViewer) -> Subscription {
        let id = self.state.withLock { state in
            state.nextID += 1
            var subscriber = Subscriber(viewer: viewer)
            if state.stopped {
                subscriber.finished = true
            } else if state.subscribers.count >= self.maxSubscribers {
                subscriber.failure = ClusterStoreError(
                    code: .unavailable,
                    message: "too many live views at once (at most \(self.maxSubscribers)); try again later"
                )
                subscriber.finished = true
            } else {
                let visible = state.streams.values.filter { viewer.canAccess(namespace: $0.id.namespace) }
                for stream in visible.sorted(by: { $0.id.description < $1.id.description }) {
                    _ = subscriber.enqueue(.upserted(stream))
                }
            }
            state.subscribers[state.nextID] = subscriber
            return state.nextID
        }
        return Subscription(id: id, hub: self)
    }

    func unsubscribe(_ id: Int) {
        let waiter = self.state.withLock { $0.subscribers.removeValue(forKey: id)?.waiter }
        waiter?.resume(returning: nil)
    }

    func next(_ id: Int) async throws -> StreamChange? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<StreamChange?, any Error>) in
                let result: Result<StreamChange?, any Error>? = self.state.withLock { state in
                    guard var subscriber = state.subscribers[id] else { return .success(nil) }
                    defer { state.subscribers[id] = subscriber }
                    if let failure = subscriber.failure {
                        subscriber.failure = nil
                        subscriber.finished = true
                        return .failure(failure)
                    }
                    if let change = subscriber.dequeue() { return .success(change) }
                    if subscriber.finished || Task.isCancelled { return .success(nil) }
                    subscriber.waiter = continuation
                    return nil
                }
                if let result { continuation.resume(with: result) }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> CheckedContinuation<StreamChange?, any Error>? in
                state.subscribers[id]?.finished = true
                defer { state.subscribers[id]?.waiter = nil }
                return state.subscribers[id]?.waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Hands `change` to every subscriber that may see its namespace.
    func publish(_ change: StreamChange) {
        let waiters = self.state.withLock { state in
            switch change {
            case .upserted(let stream): state.streams[stream.id] = stream
            case .deleted(let id): state.streams[id] = nil
            }
            var waiters: [CheckedContinuation<StreamChange?, any Error>] = []
            for id in state.subscribers.keys {
                guard let viewer = state.subscribers[id]?.viewer,
                    viewer.canAccess(namespace: change.id.namespace),
                    state.subscribers[id]?.finished == false
                else { continue }
                if let waiter = state.subscribers[id]?.enqueue(change) {
                    waiters.append(waiter)
                }
            }
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: change) }
    }

    /// Ends every subscription (after its pending changes) and every later one: the store stopped.
    func stop() {
        let waiters = self.state.withLock { state in
            state.stopped = true
            var waiters: [CheckedContinuation<StreamChange?, any Error>] = []
            for id in state.subscribers.keys {
                state.subscribers[id]?.finished = true
                if let waiter = state.subscribers[id]?.waiter {
                    state.subscribers[id]?.waiter = nil
                    waiters.append(waiter)
                }
            }
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }
}
