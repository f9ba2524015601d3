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

import Foundation
import Synchronization

/// How many browsers and WHIP clients run at once in one test process: `LIVERELAY_TEST_BROWSERS`, 2 by default and
/// at least 2 (one test runs two whip-clients at once, holding two slots).
///
/// A headless browser playing or encoding video takes most of a core, and a whip-client encodes video too. Swift Testing starts every test at once, so
/// on a 2-core machine a dozen browsers (the console's journeys in two browsers, the preview's, WHIP's) would starve
/// each other and every other test's timing. A browser waits here for a slot before it starts, so the suites that use
/// one take their turns instead; their time limits allow for the wait.
public enum BrowserSlots {
    public static let limit: Int = {
        let configured = ProcessInfo.processInfo.environment["LIVERELAY_TEST_BROWSERS"].flatMap { Int($0) }
        return max(2, configured ?? 2)
    }()

    private struct State {
        var free: Int
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextID: UInt64 = 0
    }

    private static let state = Mutex(State(free: limit))

    /// Waits for a free slot (throws `CancellationError` if the task is cancelled while it waits).
    static func acquire() async throws {
        let id = Self.state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = Self.state.withLock { state -> Bool in
                    if Task.isCancelled {
                        return false
                    }
                    if state.free > 0 {
                        state.free -= 1
                        return true
                    }
                    state.waiters.append((id, continuation))
                    return false
                }
                if resumeNow {
                    continuation.resume()
                } else if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let waiter = Self.state.withLock { state in
                state.waiters.firstIndex { $0.id == id }.map { state.waiters.remove(at: $0).continuation }
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Gives a slot back: to the longest waiter, if any.
    static func release() {
        let next = Self.state.withLock { state in
            if state.waiters.isEmpty {
                state.free += 1
                return CheckedContinuation<Void, any Error>?.none
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }
}
