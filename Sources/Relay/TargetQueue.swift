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

/// What the relay holds for one target, as a value: the messages waiting to be sent, and where the target can
/// start when it (re)connects.
///
/// The stream is only decodable from a keyframe on, after the decoder configuration and metadata. So a target that
/// restarts (first connect after falling behind, or reconnect) is *gated*: the queue takes nothing until the next
/// keyframe, and then the latest metadata, video and audio configuration, re-stamped with the keyframe's time, then
/// the keyframe. A stream without video opens the gate at its first audio frame.
///
/// The queue is bounded in bytes. A target that falls that far behind loses what it holds and restarts at the next
/// keyframe; the publisher and the other targets never wait for it.
struct TargetQueueStateMachine {
    enum Gate {
        /// Messages pass.
        case open
        /// Nothing passes until a keyframe (or, with no video, an audio frame).
        case awaitingKeyframe
    }

    private(set) var items = CircularBuffer<RTMPMessage>(initialCapacity: 64)
    private(set) var bytes = 0
    private(set) var gate: Gate = .open
    private(set) var finished = false
    let maxBytes: Int

    private var metadata: RTMPMessage?
    private var videoHeader: RTMPMessage?
    private var audioHeader: RTMPMessage?

    /// Messages dropped because the target fell behind or was restarting.
    private(set) var droppedMessages = 0
    /// Times the queue overflowed.
    private(set) var overflows = 0

    init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// Takes one message from the publisher. Returns whether the queue has something new for the consumer.
    mutating func enqueue(_ message: RelayMessage) -> Bool {
        guard !self.finished else {
            return false
        }
        switch message.kind {
        case .metadata: self.metadata = message.message
        case .videoHeader: self.videoHeader = message.message
        case .audioHeader: self.audioHeader = message.message
        default: break
        }
        switch self.gate {
        case .open:
            self.append(message.message)
            if self.bytes > self.maxBytes {
                self.overflows += 1
                self.droppedMessages += self.items.count
                self.items.removeAll(keepingCapacity: true)
                self.bytes = 0
                self.gate = .awaitingKeyframe
                return false
            }
            return true
        case .awaitingKeyframe:
            let startsHere = message.kind == .keyframe || (message.kind == .audioFrame && self.videoHeader == nil)
            guard startsHere else {
                if message.kind != .metadata && message.kind != .videoHeader && message.kind != .audioHeader {
                    self.droppedMessages += 1
                }
                return false
            }
            self.gate = .open
            let timestamp = message.message.timestamp
            for header in [self.metadata, self.videoHeader, self.audioHeader] {
                if var header {
                    header.timestamp = timestamp
                    self.append(header)
                }
            }
            self.append(message.message)
            return true
        }
    }

    private mutating func append(_ message: RTMPMessage) {
        self.items.append(message)
        self.bytes += message.payload.readableBytes
    }

    mutating func pop() -> RTMPMessage? {
        guard let message = self.items.popFirst() else {
            return nil
        }
        self.bytes -= message.payload.readableBytes
        return message
    }

    /// The target reconnects: forget what it held and start it at the next keyframe.
    mutating func restart() {
        self.droppedMessages += self.items.count
        self.items.removeAll(keepingCapacity: true)
        self.bytes = 0
        self.gate = .awaitingKeyframe
    }

    /// The publisher ended: the consumer gets what is queued, then the end.
    mutating func finish() {
        self.finished = true
    }
}

/// The queue between the publisher and one target's connection: a ``TargetQueueStateMachine`` under a lock, and
/// the one consumer waiting for it.
///
/// A hand-written queue rather than an `AsyncStream` because dropping must be GOP-aware (an `AsyncStream`'s
/// `bufferingNewest` drops single messages and leaves an undecodable stream) and because the producer, the
/// publisher's read loop, must never suspend.
final class TargetQueue: Sendable {
    private struct State {
        var machine: TargetQueueStateMachine
        var waiter: CheckedContinuation<RTMPMessage?, Never>?
        var cancelled = false
    }

    private let state: Mutex<State>

    init(maxBytes: Int) {
        self.state = Mutex(State(machine: TargetQueueStateMachine(maxBytes: maxBytes)))
    }

    /// Called by the publisher's read loop; never blocks beyond the lock.
    func enqueue(_ message: RelayMessage) {
        let resume: (CheckedContinuation<RTMPMessage?, Never>, RTMPMessage?)? = self.state.withLock { state in
            guard state.machine.enqueue(message), let waiter = state.waiter else {
                return nil
            }
            state.waiter = nil
            return (waiter, state.machine.pop())
        }
        if let (waiter, message) = resume {
            waiter.resume(returning: message)
        }
    }

    /// The next message for the target, or nil once the publisher ended and everything was taken, or when the
    /// calling task is cancelled.
    func next() async -> RTMPMessage? {
        let immediate: RTMPMessage?? = self.state.withLock { state in
            if let message = state.machine.pop() {
                return .some(message)
            }
            if state.machine.finished || state.cancelled {
                return .some(nil)
            }
            return .none
        }
        if let immediate {
            return immediate
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<RTMPMessage?, Never>) in
                let resume: RTMPMessage?? = self.state.withLock { state in
                    if let message = state.machine.pop() {
                        return .some(message)
                    }
                    if state.machine.finished || state.cancelled || Task.isCancelled {
                        return .some(nil)
                    }
                    precondition(state.waiter == nil, "TargetQueue has one consumer")
                    state.waiter = continuation
                    return .none
                }
                if let resume {
                    continuation.resume(returning: resume)
                }
            }
        } onCancel: {
            let waiter = self.state.withLock { state in
                state.cancelled = true
                let waiter = state.waiter
                state.waiter = nil
                return waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Starts the target over at the next keyframe, for a new connection. Clears a previous cancellation.
    func restart() {
        self.state.withLock { state in
            state.machine.restart()
            state.cancelled = false
        }
    }

    func finish() {
        let waiter = self.state.withLock { state in
            state.machine.finish()
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: nil)
    }

    var isFinished: Bool {
        self.state.withLock { $0.machine.finished }
    }

    struct Statistics: Sendable {
        var queuedBytes: Int
        var queuedMessages: Int
        var droppedMessages: Int
        var overflows: Int
    }

    var statistics: Statistics {
        self.state.withLock { state in
            Statistics(
                queuedBytes: state.machine.bytes,
                queuedMessages: state.machine.items.count,
                droppedMessages: state.machine.droppedMessages,
                overflows: state.machine.overflows
            )
        }
    }
}
