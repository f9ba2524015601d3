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

/// Polls `condition` every `interval` until it holds, or throws ``EventuallyTimeout`` once `timeout` has passed.
///
/// For state in another process (the API server, a relay, kubectl) where the test has no event to await; a throwing
/// check counts as not holding yet (the server may be refusing connections on purpose), and the last error is named
/// in the timeout. Where the code under test runs on a ``ManualClock``, the condition may advance the clock itself:
/// the timeout is real time, what the test judges is the clock's.
public func eventually(
    _ what: @autoclosure () -> String = "condition",
    timeout: Duration = .seconds(30),
    interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async throws {
    let _: Bool = try await eventually(what(), timeout: timeout, interval: interval) {
        try await condition() ? true : nil
    }
}

/// Polls `produce` every `interval` until it gives a value, and returns that; throws ``EventuallyTimeout`` once
/// `timeout` has passed. As ``eventually(_:timeout:interval:_:)``, for a check that finds something.
public func eventually<Value>(
    _ what: @autoclosure () -> String = "a value",
    timeout: Duration = .seconds(30),
    interval: Duration = .milliseconds(50),
    _ produce: () async throws -> Value?
) async throws -> Value {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while true {
        do {
            if let value = try await produce() { return value }
            lastError = nil
        } catch {
            lastError = error
        }
        guard ContinuousClock.now < deadline else { break }
        try await Task.sleep(for: interval)
    }
    throw EventuallyTimeout(what: what(), timeout: timeout, lastError: lastError)
}

/// What ``eventually(_:timeout:interval:_:)`` throws when its condition did not hold in time; a test that lets it
/// escape fails with its description.
public struct EventuallyTimeout: Error, CustomStringConvertible {
    public var what: String
    public var timeout: Duration
    /// What the last check threw, if it threw.
    public var lastError: (any Error)?

    public var description: String {
        "timed out after \(self.timeout) waiting for \(self.what)" + (self.lastError.map { ": \($0)" } ?? "")
    }
}
