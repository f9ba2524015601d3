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

import AsyncHTTPClient
import Foundation
import Hummingbird
import LiveStreamModel
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PeerTestSupport
import Prometheus
import Relay
import RelayAPI
import ServiceLifecycle
import Synchronization
import Testing

/// A test's own failure, with what it was waiting for and what it saw.
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Every log line the relay writes during a test, with a way to wait for one.
typealias LogRecorder = Recorder<String>

extension Recorder<String> {
    var lines: [String] { self.entries }

    var handler: RecordingLogHandler { RecordingLogHandler(recorder: self) }
}

/// Everything that happened during a test, in order (log lines, local mode's events), with a way to wait for an
/// entry: an event, not a poll.
final class Recorder<Element: Sendable>: Sendable {
    private struct Waiter {
        var predicate: @Sendable (Element) -> Bool
        /// Matching entries still to come before the waiter is resumed.
        var remaining: Int
        var continuation: CheckedContinuation<Element?, Never>
    }
    private struct State {
        var entries: [Element] = []
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
    }
    private let state = Mutex(State())

    var entries: [Element] { self.state.withLock { $0.entries } }

    func append(_ entry: Element) {
        let ready: [CheckedContinuation<Element?, Never>] = self.state.withLock { state in
            state.entries.append(entry)
            var ready: [CheckedContinuation<Element?, Never>] = []
            for (id, waiter) in state.waiters where waiter.predicate(entry) {
                if waiter.remaining > 1 {
                    state.waiters[id]!.remaining -= 1
                } else {
                    ready.append(waiter.continuation)
                    state.waiters[id] = nil
                }
            }
            return ready
        }
        for continuation in ready {
            continuation.resume(returning: entry)
        }
    }

    /// The `count`-th entry matching `predicate`, if there are that many.
    private static func match(
        _ count: Int,
        of predicate: (Element) -> Bool,
        in entries: [Element]
    ) -> Element? {
        var seen = 0
        for entry in entries where predicate(entry) {
            seen += 1
            if seen == count {
                return entry
            }
        }
        return nil
    }

    /// Waits until an entry matching `predicate` is recorded (or was already), up to `timeout`. The predicate runs
    /// under the recorder's lock: it must not read the recorder.
    /// With `count`, waits for that many matching entries (counting those already recorded) and returns the last.
    @discardableResult
    func waitFor(
        _ what: String,
        count: Int = 1,
        timeout: Duration = .seconds(30),
        _ predicate: @escaping @Sendable (Element) -> Bool
    ) async throws -> Element {
        let id = self.state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withThrowingTaskGroup(of: Element?.self) { group in
            group.addTask {
                // Cancellable, so that the test's time limit (or its other failure) ends the wait and the group.
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let already: Element?? = self.state.withLock { state in
                            if let entry = Self.match(count, of: predicate, in: state.entries) {
                                return .some(entry)
                            }
                            if Task.isCancelled {
                                return .some(nil)
                            }
                            state.waiters[id] = Waiter(
                                predicate: predicate,
                                remaining: count - state.entries.count(where: predicate),
                                continuation: continuation
                            )
                            return nil
                        }
                        if let already {
                            continuation.resume(returning: already)
                        }
                    }
                } onCancel: {
                    self.state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume(returning: nil)
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            // The cancellation also ended a wait still pending.
            guard let entry = first else {
                throw TestFailure(
                    "nothing for \(what) within \(timeout); recorded:\n"
                        + self.entries.suffix(40).map { "\($0)" }.joined(separator: "\n")
                )
            }
            return entry
        }
    }
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

/// A relay running in this process on 127.0.0.1 with ephemeral ports, with its HTTP endpoints.
struct RelayUnderTest: Sendable {
    let port: Int
    let httpPort: Int
    let streamKey: String
    let logs: LogRecorder
    let server: RelayServer

    func publishURL(key: String? = nil, app: String = "live", scheme: String = "rtmp") -> String {
        "\(scheme)://127.0.0.1:\(self.port)/\(app)/\(key ?? self.streamKey)"
    }

    /// An HTTP request to the relay's endpoints; returns the status and body.
    func http(_ method: HTTPMethod = .GET, _ path: String) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(self.httpPort)\(path)")
        request.method = method
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 4 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    func streamStatus(_ name: String = "default") async throws -> StreamStatus {
        let (status, body) = try await self.http(.GET, "/api/v1/streams/\(name)")
        guard status == 200 else {
            throw TestFailure("GET /api/v1/streams/\(name) answered \(status): \(body)")
        }
        return try JSONDecoder().decode(StreamStatus.self, from: Data(body.utf8))
    }
}

/// A random key, as a streamer's would be; tests never use a fixed one.
func makeTestKey(_ prefix: String = "k") -> String {
    "\(prefix)-\(UInt64.random(in: 0...UInt64.max).hexString)"
}

extension UInt64 {
    var hexString: String { String(self, radix: 16) }
}

/// Runs a relay with one stream (`default`, app `live`, a random key) for the duration of `body`.
func withRelay<Result: Sendable>(
    targets: [PushTargetConfiguration],
    configure: (inout RelayConfiguration) -> Void = { _ in },
    _ body: @Sendable (RelayUnderTest) async throws -> Result
) async throws -> Result {
    let key = makeTestKey("ingest")
    var configuration = RelayConfiguration(
        host: "127.0.0.1",
        port: 0,
        app: "live",
        streamKey: Secret(key),
        targets: targets
    )
    configure(&configuration)
    return try await withRelay(configuration: configuration, streamKey: key, body)
}

/// Runs a relay with the given configuration (its port is replaced by an ephemeral one) and its HTTP endpoints for
/// the duration of `body`, then shuts both down gracefully and waits for them.
func withRelay<Result: Sendable>(
    configuration: RelayConfiguration,
    streamKey: String = "",
    controlFrom: [IPRange] = RelayHTTPContext.loopback,
    extraServices: @Sendable (RelayServer, Logger) -> [any Service] = { _, _ in [] },
    _ body: @Sendable (RelayUnderTest) async throws -> Result
) async throws -> Result {
    let recorder = LogRecorder()
    let logger = Logger(label: "liverelay.test") { _ in recorder.handler }
    var configuration = configuration
    configuration.host = "127.0.0.1"
    configuration.port = 0
    if configuration.reconnectInitial == .milliseconds(500) {
        configuration.reconnectInitial = .milliseconds(200)
        configuration.reconnectMaximum = .seconds(2)
    }
    let (ports, portContinuation) = AsyncStream<(String, Int)>.makeStream()
    let registry = PrometheusCollectorRegistry()
    let server = try RelayServer(
        configuration: configuration,
        metricsFactory: PrometheusMetricsFactory(registry: registry),
        logger: logger
    ) { address in
        portContinuation.yield(("rtmp", address.port ?? 0))
    }
    let http = makeRelayHTTPApplication(
        relay: server,
        registry: registry,
        host: "127.0.0.1",
        port: 0,
        controlFrom: controlFrom,
        logger: logger
    ) {
        portContinuation.yield(("http", $0))
    }
    let group = ServiceGroup(
        configuration: .init(
            services: [.init(service: http), .init(service: server)]
                + extraServices(server, logger).map { .init(service: $0) },
            logger: logger
        )
    )
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var found: [String: Int] = [:]
        for await (name, port) in ports {
            found[name] = port
            if found.count == 2 {
                break
            }
        }
        guard let port = found["rtmp"], let httpPort = found["http"] else {
            throw TestFailure("the relay did not start")
        }
        let relay = RelayUnderTest(port: port, httpPort: httpPort, streamKey: streamKey, logs: recorder, server: server)
        do {
            let result = try await body(relay)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            if !streamKey.isEmpty {
                #expect(!recorder.lines.contains { $0.contains(streamKey) }, "the ingest key appeared in the log")
            }
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

extension PushTargetConfiguration {
    /// A target named after the nginx-rtmp application `app` it pushes to, with `key` as its stream name.
    static func nginx(_ nginx: NginxRTMP, app: String, key: String) throws -> PushTargetConfiguration {
        PushTargetConfiguration(name: app, url: try RTMPURL(parsing: nginx.url(app: app)), streamKey: Secret(key))
    }
}
