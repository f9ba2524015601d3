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
import Logging
import NIOCore
import PeerTestSupport
import Relay
import ServiceLifecycle
import Synchronization
import Testing

/// A test's own failure, with what it was waiting for and what it saw.
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Every log line the relay writes during a test, with a way to wait for one.
final class LogRecorder: Sendable {
    private struct Waiter {
        var predicate: @Sendable (String) -> Bool
        var continuation: CheckedContinuation<String, Never>
    }
    private struct State {
        var lines: [String] = []
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
    }
    private let state = Mutex(State())

    var lines: [String] { self.state.withLock { $0.lines } }

    func append(_ line: String) {
        let ready: [CheckedContinuation<String, Never>] = self.state.withLock { state in
            state.lines.append(line)
            var ready: [CheckedContinuation<String, Never>] = []
            for (id, waiter) in state.waiters where waiter.predicate(line) {
                ready.append(waiter.continuation)
                state.waiters[id] = nil
            }
            return ready
        }
        for continuation in ready {
            continuation.resume(returning: line)
        }
    }

    /// Waits until a line matching `predicate` is logged (or was already), up to `timeout`.
    func waitFor(
        _ what: String,
        timeout: Duration = .seconds(30),
        _ predicate: @escaping @Sendable (String) -> Bool
    ) async throws -> String {
        let id: Int? = self.state.withLock { state in
            if state.lines.contains(where: predicate) {
                return nil
            }
            state.nextWaiter += 1
            return state.nextWaiter
        }
        guard let id else {
            return self.lines.first(where: predicate)!
        }
        return try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let already: String? = self.state.withLock { state in
                        if let line = state.lines.first(where: predicate) {
                            return line
                        }
                        state.waiters[id] = Waiter(predicate: predicate, continuation: continuation)
                        return nil
                    }
                    if let already {
                        continuation.resume(returning: already)
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            guard let line = first else {
                // Wake the waiter so the group can finish.
                let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
                waiter?.continuation.resume(returning: "")
                throw TestFailure(
                    "no log line for \(what) within \(timeout); log:\n" + self.lines.suffix(40).joined(separator: "\n")
                )
            }
            return line
        }
    }

    var handler: RecordingLogHandler { RecordingLogHandler(recorder: self) }
}

struct RecordingLogHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = self.metadata
        if let extra = event.metadata {
            all.merge(extra) { $1 }
        }
        let rendered = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        self.recorder.append("\(event.level) \(event.message) \(rendered)")
    }
}

/// A relay running in this process on 127.0.0.1 with an ephemeral port.
struct RelayUnderTest: Sendable {
    let port: Int
    let streamKey: String
    let logs: LogRecorder

    func publishURL(key: String? = nil) -> String {
        "rtmp://127.0.0.1:\(self.port)/live/\(key ?? self.streamKey)"
    }
}

/// A random key, as a streamer's would be; tests never use a fixed one.
func makeTestKey(_ prefix: String = "k") -> String {
    "\(prefix)-\(UInt64.random(in: 0...UInt64.max).hexString)"
}

extension UInt64 {
    var hexString: String { String(self, radix: 16) }
}

/// Runs a relay for the duration of `body`, then shuts it down gracefully and waits for it.
func withRelay<Result: Sendable>(
    targets: [PushTargetConfiguration],
    configure: (inout RelayConfiguration) -> Void = { _ in },
    _ body: @Sendable (RelayUnderTest) async throws -> Result
) async throws -> Result {
    let recorder = LogRecorder()
    let logger = Logger(label: "liverelay.test") { _ in recorder.handler }
    let key = makeTestKey("ingest")
    var configuration = RelayConfiguration(
        host: "127.0.0.1",
        port: 0,
        app: "live",
        streamKey: Secret(key),
        targets: targets
    )
    configuration.reconnectInitial = .milliseconds(200)
    configuration.reconnectMaximum = .seconds(2)
    configure(&configuration)
    let (addresses, addressContinuation) = AsyncStream<SocketAddress>.makeStream()
    let server = try RelayServer(configuration: configuration, logger: logger) { address in
        addressContinuation.yield(address)
    }
    let group = ServiceGroup(services: [server], logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = addresses.makeAsyncIterator()
        guard let address = await iterator.next(), let port = address.port else {
            throw TestFailure("the relay did not start")
        }
        let relay = RelayUnderTest(port: port, streamKey: key, logs: recorder)
        do {
            let result = try await body(relay)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            #expect(!recorder.lines.contains { $0.contains(key) }, "the ingest key appeared in the log")
            return result
        } catch {
            await group.triggerGracefulShutdown()
            tasks.cancelAll()
            throw error
        }
    }
}

/// The largest gap between consecutive video packets of a recording, in seconds.
func largestVideoGap(_ path: String) async throws -> Double {
    let process = try RunningProcess.launch(
        "ffprobe",
        arguments: ["-v", "error", "-select_streams", "v", "-show_entries", "packet=dts_time", "-of", "csv=p=0", path],
        standardOutput: .capture(limit: 1 << 20)
    )
    let exit = await process.waitForExit()
    guard exit.succeeded else {
        throw TestFailure("ffprobe failed on \(path): \(exit)")
    }
    let times = exit.standardOutput.split(whereSeparator: \.isNewline).compactMap {
        Double($0.trimmingCharacters(in: .whitespaces.union(.init(charactersIn: ","))))
    }
    guard times.count > 1 else {
        return .infinity
    }
    return zip(times.dropFirst(), times).map { $0 - $1 }.max() ?? .infinity
}
