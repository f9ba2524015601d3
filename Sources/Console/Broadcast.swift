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

import Synchronization

/// Hands every element to every current subscriber, each through a stream of its own that keeps at most
/// `bufferSize` unread elements (the newest): a slow browser misses old updates, it never holds up the others.
public final class Broadcast<Element: Sendable>: Sendable {
    private struct State {
        var next: UInt64 = 0
        var continuations: [UInt64: AsyncStream<Element>.Continuation] = [:]
        var finished = false
    }

    private let state = Mutex(State())
    private let bufferSize: Int

    public init(bufferSize: Int = 64) {
        self.bufferSize = bufferSize
    }

    /// A stream of every element yielded from now on; it ends when ``finish()`` is called or the stream is dropped.
    public func subscribe() -> AsyncStream<Element> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: Element.self,
            bufferingPolicy: .bufferingNewest(self.bufferSize)
        )
        let id: UInt64? = self.state.withLock { state in
            guard !state.finished else {
                return nil
            }
            state.next += 1
            state.continuations[state.next] = continuation
            return state.next
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { _ in
            _ = self.state.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    public func yield(_ element: Element) {
        for continuation in self.state.withLock({ Array($0.continuations.values) }) {
            continuation.yield(element)
        }
    }

    /// Ends every subscriber's stream, and those subscribed later at once.
    public func finish() {
        let continuations = self.state.withLock { state in
            state.finished = true
            return Array(state.continuations.values)
        }
        for continuation in continuations {
            continuation.finish()
        }
    }

    public var subscriberCount: Int { self.state.withLock { $0.continuations.count } }
}
