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

import NIOCore
import RTMP
import Synchronization

/// What the relay holds for one target, as a value: the messages waiting to be sent, and how the target starts
/// when it (re)connects.
///
/// The stream is only decodable from a keyframe on, after the decoder configuration and metadata. A target that
/// restarts is seeded with the current GOP (headers re-stamped to its keyframe, then the keyframe and what followed)
/// so it starts at once; with nothing to seed from it is *gated* until the next keyframe (or, without video, the
/// next audio frame).
///
/// The queue is bounded in bytes and in media time. Past either bound the target is *behind*: its queued video
/// frames are dropped and new ones too, up to the next keyframe, while audio, metadata and sequence headers are
/// kept, so the target stays decodable and in sync. A target that stays behind longer than `maxBehind` is
/// disconnected (``EnqueueResult/disconnect``) and restarts. The publisher and the other targets never wait.
struct TargetQueueStateMachine {
    enum Gate: Equatable {
        /// Messages pass.
        case open
        /// Nothing passes until a keyframe (or, with no video, an audio frame).
        case awaitingKeyframe
        /// The target has no connection and waits to reconnect: nothing passes, and nothing is held but the
        /// stream's headers. Its next connection starts from the GOP cache (``restart(seed:upTo:)``), so what it
        /// would hold meanwhile could never be sent.
        case parked
    }

    enum EnqueueResult: Equatable {
        /// Nothing new for the consumer.
        case none
        /// The consumer has something to take.
        case available
        /// The target stayed behind too long: close its connection.
        case disconnect
    }

    struct Limits {
        var maxBytes: Int
        var maxDuration: Duration
        var maxBehind: Duration
    }

    /// Messages with their kind as classified once at ingest, so dropping needs no second look at a payload.
    private(set) var items = CircularBuffer<RelayMessage>(initialCapacity: 16)
    private(set) var bytes = 0
    private(set) var gate: Gate = .open
    /// Video frames are dropped until the next keyframe (the target is behind).
    private(set) var droppingVideo = false
    private(set) var finished = false
    let limits: Limits

    private var metadata: RelayMessage?
    private var videoHeader: RelayMessage?
    private var audioHeader: RelayMessage?
    /// Messages numbered up to this came with the last restart's seed (or were left out of it on purpose).
    private var seededUpTo: UInt64 = 0
    /// When the target fell behind, if it is behind now.
    private(set) var behindSince: ContinuousClock.Instant?
    private var disconnectRequested = false

    /// Messages dropped because the target fell behind or was restarting.
    private(set) var droppedMessages = 0
    /// Times the target fell behind.
    private(set) var overflows = 0

    init(limits: Limits) {
        self.limits = limits
    }

    /// Takes one message from the publisher.
    mutating func enqueue(_ message: RelayMessage, now: ContinuousClock.Instant = .now) -> EnqueueResult {
        guard !self.finished else {
            return .none
        }
        guard message.sequence == 0 || message.sequence > self.seededUpTo else {
            // The publisher queued it while the target restarted, after the seed was taken: the seed has it.
            return .none
        }
        switch message.kind {
        case .metadata: self.metadata = message
        case .videoHeader: self.videoHeader = message
        case .audioHeader: self.audioHeader = message
        default: break
        }
        switch self.gate {
        case .parked:
            if !message.kind.isHeader {
                self.droppedMessages += 1
            }
            return .none
        case .awaitingKeyframe:
            let startsHere = message.kind == .keyframe || (message.kind == .audioFrame && self.videoHeader == nil)
            guard startsHere else {
                if !message.kind.isHeader {
                    self.droppedMessages += 1
                }
                return .none
            }
            self.gate = .open
            self.appendHeaders(stampedAt: message.message.timestamp)
            self.append(message)
            return .available
        case .open:
            if self.droppingVideo {
                if message.kind == .keyframe {
                    self.droppingVideo = false
                } else if message.kind == .videoFrame {
                    self.droppedMessages += 1
                    return self.checkBehind(now: now)
                }
            }
            self.append(message)
            if self.isOverBound {
                if !self.droppingVideo {
                    self.fallBehind(now: now)
                } else if self.bytes > self.limits.maxBytes {
                    // Behind already, so no video is queued: audio and data alone are over the byte bound.
                    self.startOver()
                }
                // Else audio alone spans more than the media-time bound: it is kept (the target stays in sync when
                // it catches up), and `maxBehind` ends a target that never does. Dropping video again would find
                // none, and cost a pass over the queue per message.
            }
            // Behind ends when the consumer has emptied the queue (see `pop`), not when dropping made it small:
            // a target that reads nothing at all must still be disconnected.
            return self.checkBehind(now: now) == .disconnect ? .disconnect : .available
        }
    }

    private var isOverBound: Bool {
        if self.bytes > self.limits.maxBytes {
            return true
        }
        guard let first = self.items.first, let last = self.items.last else {
            return false
        }
        let span = Int64(Int32(bitPattern: last.message.timestamp &- first.message.timestamp))
        return span > 0 && Duration.milliseconds(span) > self.limits.maxDuration
    }

    /// Drops the queued video frames (keeping audio, metadata and headers) and the coming ones until a keyframe.
    private mutating func fallBehind(now: ContinuousClock.Instant) {
        self.overflows += 1
        self.droppingVideo = true
        if self.behindSince == nil {
            self.behindSince = now
        }
        var kept = CircularBuffer<RelayMessage>(initialCapacity: self.items.count)
        var keptBytes = 0
        for message in self.items {
            if message.kind == .keyframe || message.kind == .videoFrame {
                self.droppedMessages += 1
            } else {
                kept.append(message)
                keptBytes += message.message.payload.readableBytes
            }
        }
        self.items = kept
        self.bytes = keptBytes
        if self.bytes > self.limits.maxBytes {
            self.startOver()
        }
    }

    /// Even without video the queue does not fit: drop it all and start over at the next keyframe.
    private mutating func startOver() {
        self.droppedMessages += self.items.count
        self.items.removeAll(keepingCapacity: true)
        self.bytes = 0
        self.gate = .awaitingKeyframe
        self.droppingVideo = false
    }

    private mutating func checkBehind(now: ContinuousClock.Instant) -> EnqueueResult {
        guard let since = self.behindSince, !self.disconnectRequested, now - since > self.limits.maxBehind else {
            return .none
        }
        self.disconnectRequested = true
        return .disconnect
    }

    private mutating func appendHeaders(stampedAt timestamp: UInt32) {
        for header in [self.metadata, self.videoHeader, self.audioHeader] {
            if var header {
                header.message.timestamp = timestamp
                self.append(header)
            }
        }
    }

    /// Beyond this many queued messages the target is not keeping up within a read or two, and what it holds may
    /// stay for seconds: messages are compacted as they are queued (see ``RelayMessage/compact()``).
    static let compactAfter = 64

    private mutating func append(_ message: RelayMessage) {
        var message = message
        if self.items.count >= Self.compactAfter {
            message.compact()
        }
        self.items.append(message)
        self.bytes += message.message.payload.readableBytes
    }

    mutating func pop() -> RelayMessage? {
        guard let next = self.items.popFirst() else {
            // The consumer asks for more than there is: it has caught up.
            self.behindSince = nil
            return nil
        }
        self.bytes -= next.message.payload.readableBytes
        if self.behindSince != nil, self.items.isEmpty {
            self.behindSince = nil
        }
        return next
    }

    /// The target (re)connects: forget what it held and start it from `seed` (the current GOP, beginning with a
    /// keyframe) or, without one, at the next keyframe.
    ///
    /// `upTo` is the sequence number of the publisher's last message when the seed was taken. The publisher does not
    /// wait for a restart, so messages may be queued just before it (and must not be lost) or just after it (and
    /// must not be sent twice): queued ones numbered after `upTo` are kept after the seed, and later ones numbered up
    /// to `upTo` are ignored.
    mutating func restart(seed: [RelayMessage] = [], upTo: UInt64 = 0) {
        let newer = upTo == 0 ? [] : self.items.filter { $0.sequence > upTo }
        self.droppedMessages += self.items.count - newer.count
        self.items.removeAll(keepingCapacity: true)
        self.bytes = 0
        self.droppingVideo = false
        self.behindSince = nil
        self.disconnectRequested = false
        self.gate = .awaitingKeyframe
        self.seededUpTo = 0
        for message in seed {
            _ = self.enqueue(message)
        }
        self.seededUpTo = upTo
        for message in newer {
            _ = self.enqueue(message)
        }
    }

    /// The target lost its connection and waits to reconnect: drop what it holds, and hold nothing but the headers
    /// until ``unpark()``. A target that is down for minutes then costs neither memory nor work per message.
    mutating func park() {
        self.droppedMessages += self.items.count { !$0.kind.isHeader }
        self.items.removeAll(keepingCapacity: false)
        self.bytes = 0
        self.droppingVideo = false
        self.behindSince = nil
        self.gate = .parked
    }

    /// The target is about to reconnect: queue again, so that what the publisher sends between taking the GOP seed
    /// and ``restart(seed:upTo:)`` is kept (that restart then drops what the seed covers). Call it before taking the
    /// seed.
    mutating func unpark() {
        if self.gate == .parked {
            self.gate = .open
        }
    }

    /// The publisher ended: the consumer gets what is queued, then the end.
    mutating func finish() {
        self.finished = true
    }
}

extension RelayMessage.Kind {
    var isHeader: Bool {
        self == .metadata || self == .videoHeader || self == .audioHeader
    }
}

/// The queue between the publisher and one target's connection: a ``TargetQueueStateMachine`` on the event loop
/// that the publisher's connection, the fan-out and the target's connection share, and its one consumer, a
/// ``TargetWriter`` that the queue wakes with one call per burst (see ``setWaker(_:direct:)``; the fan-out's wakes wait
/// for the end of the publisher's read, ``wakeIfDeferred()``) and that takes what is queued with
/// ``take(limit:into:)``. No lock: the state is loop-bound, and what readers elsewhere see (``statistics``,
/// ``isFinished``) is kept in atomics.
///
/// A hand-written queue rather than an `AsyncStream` because dropping must be GOP-aware (an `AsyncStream`'s
/// `bufferingNewest` drops single messages and leaves an undecodable stream) and because the producer, the
/// publisher's read loop, must never suspend.
final class TargetQueue: Sendable {
    private struct State {
        var machine: TargetQueueStateMachine
        /// Wakes the consumer; called once, then not again until the consumer has emptied the queue.
        var waker: Callback?
        /// Runs the consumer at once, for ``wakeIfDeferred()``.
        var directWaker: Callback?
        var wakePending = false
        /// A wake that ``enqueue(_:now:deferringWake:)`` left to ``wakeIfDeferred()``.
        var wakeDeferred = false
        /// Closes the target's current connection when it stayed behind too long.
        var disconnect: Callback?
    }

    /// A closure in a struct: what `withValue` hands out of the loop-bound state. A bare function type returned
    /// through that generic method is reabstracted, which allocates a thunk context on every message.
    private struct Callback {
        let call: @Sendable () -> Void
    }

    /// The event loop of the publisher's connection, the fan-out and the target's connections.
    let loop: any EventLoop
    private let state: NIOLoopBoundBox<State>
    private let finished = Atomic(false)
    private let queuedBytes = Atomic(0)
    private let queuedMessages = Atomic(0)
    private let droppedMessages = Atomic(0)
    private let overflows = Atomic(0)
    private let behind = Atomic(false)

    init(limits: TargetQueueStateMachine.Limits, loop: any EventLoop) {
        self.loop = loop
        self.state = NIOLoopBoundBox.makeBoxSendingValue(
            State(machine: TargetQueueStateMachine(limits: limits)),
            eventLoop: loop
        )
    }

    /// Copies what readers off the loop see; on the loop, after every change.
    private func publish(_ machine: TargetQueueStateMachine) {
        self.queuedBytes.store(machine.bytes, ordering: .relaxed)
        self.queuedMessages.store(machine.items.count, ordering: .relaxed)
        self.droppedMessages.store(machine.droppedMessages, ordering: .relaxed)
        self.overflows.store(machine.overflows, ordering: .relaxed)
        self.behind.store(machine.behindSince != nil, ordering: .relaxed)
        if machine.finished {
            // Never back to false: ``finish()`` sets it before the loop gets to the machine.
            self.finished.store(true, ordering: .relaxed)
        }
    }

    /// Called by the publisher's read loop, on the loop; never blocks.
    ///
    /// With `deferringWake`, a wake that is due is not made here but by ``wakeIfDeferred()``, which the fan-out calls
    /// once the publisher's read ends: the consumer then runs once per read, directly, rather than as a task that the
    /// loop queues (under its lock) and runs later.
    func enqueue(_ message: RelayMessage, now: ContinuousClock.Instant = .now, deferringWake: Bool = false) {
        let callback = self.state.withValue { state -> Callback? in
            let result = state.machine.enqueue(message, now: now)
            self.publish(state.machine)
            switch result {
            case .none:
                return nil
            case .disconnect:
                return state.disconnect
            case .available:
                guard let waker = state.waker, !state.wakePending else {
                    return nil
                }
                state.wakePending = true
                guard !deferringWake || state.directWaker == nil else {
                    state.wakeDeferred = true
                    return nil
                }
                return waker
            }
        }
        callback?.call()
    }

    /// Runs the consumer now if ``enqueue(_:now:deferringWake:)`` deferred its wake; on the loop.
    func wakeIfDeferred() {
        let callback = self.state.withValue { state -> Callback? in
            guard state.wakeDeferred else {
                return nil
            }
            state.wakeDeferred = false
            return state.directWaker
        }
        callback?.call()
    }

    /// Makes an event-loop consumer the queue's consumer (or, with nil, none), on the loop: `waker` is called when
    /// there is something to take and the consumer has not been woken since it last emptied the queue, and when the
    /// queue finishes. It is also called at once, in case something is queued already.
    ///
    /// `direct`, if given, runs the consumer at once (where `waker` may schedule it): ``wakeIfDeferred()`` calls it.
    func setWaker(_ waker: (@Sendable () -> Void)?, direct: (@Sendable () -> Void)? = nil) {
        self.state.withValue { state in
            state.waker = waker.map(Callback.init)
            state.directWaker = waker == nil ? nil : direct.map(Callback.init)
            state.wakePending = waker != nil
            state.wakeDeferred = false
        }
        waker?()
    }

    /// Takes up to `limit` messages for the consumer, on the loop. `emptied` says the queue has nothing more, so the
    /// next message wakes the consumer again; otherwise the consumer comes back by itself (it stopped at `limit` or
    /// because its connection is not writable). `finished`: the publisher ended and everything was taken.
    func take(limit: Int, into batch: inout [RelayMessage]) -> (emptied: Bool, finished: Bool) {
        self.state.withValue { state in
            while batch.count < limit, let message = state.machine.pop() {
                batch.append(message)
            }
            let emptied = state.machine.items.isEmpty
            if emptied {
                state.wakePending = false
            }
            self.publish(state.machine)
            return (emptied, emptied && state.machine.finished)
        }
    }

    /// Starts the target over for a new connection, from `seed` (the current GOP) or at the next keyframe; on the
    /// loop. The connection says how to close it if it falls too far behind with ``setDisconnect(_:)``.
    func restart(from seed: GOPSeed) {
        self.state.withValue { state in
            state.machine.restart(seed: seed.messages, upTo: seed.upTo)
            self.publish(state.machine)
        }
    }

    /// See ``TargetQueueStateMachine/park()``; on the loop.
    func park() {
        self.state.withValue { state in
            state.machine.park()
            self.publish(state.machine)
        }
    }

    /// See ``TargetQueueStateMachine/unpark()``; on the loop.
    func unpark() {
        self.state.value.machine.unpark()
    }

    /// On the loop.
    func setDisconnect(_ disconnect: (@Sendable () -> Void)?) {
        self.state.value.disconnect = disconnect.map(Callback.init)
    }

    /// The publisher ended: the consumer gets what is queued, then the end. From any thread; takes effect at once
    /// for ``isFinished`` and on the loop for the rest.
    func finish() {
        self.finished.store(true, ordering: .relaxed)
        guard self.loop.inEventLoop else {
            self.loop.execute { self.finish() }
            return
        }
        let wake = self.state.withValue { state -> Callback? in
            state.machine.finish()
            state.disconnect = nil
            // The consumer learns of the end from `take`; wake it unless it is awake already.
            guard let waker = state.waker, !state.wakePending else {
                return nil
            }
            state.wakePending = true
            return waker
        }
        wake?.call()
    }

    var isFinished: Bool {
        self.finished.load(ordering: .relaxed)
    }

    struct Statistics: Sendable, Hashable {
        var queuedBytes: Int
        var queuedMessages: Int
        var droppedMessages: Int
        var overflows: Int
        var behind: Bool
    }

    /// As of the queue's last change; from any thread.
    var statistics: Statistics {
        Statistics(
            queuedBytes: self.queuedBytes.load(ordering: .relaxed),
            queuedMessages: self.queuedMessages.load(ordering: .relaxed),
            droppedMessages: self.droppedMessages.load(ordering: .relaxed),
            overflows: self.overflows.load(ordering: .relaxed),
            behind: self.behind.load(ordering: .relaxed)
        )
    }
}
