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

import Gateway
import IngestTLS
import LiveStreamModel
import Logging
import NIOCore
import NIOPosix
import PeerTestSupport
import ServiceLifecycle
import Synchronization
import Testing

/// Log lines kept in memory, so tests can check that a refusal names its reason and its stream.
final class LogStore: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) {
        self.lines.withLock { $0.append(line) }
    }

    var all: [String] { self.lines.withLock { $0 } }

    func contains(_ fragments: String...) -> Bool {
        self.all.contains { line in fragments.allSatisfy { line.contains($0) } }
    }

    func logger() -> Logger {
        Logger(label: "gateway-test") { _ in MemoryLogHandler(store: self) }
    }
}

struct MemoryLogHandler: LogHandler {
    let store: LogStore
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        self.store.append("\(event.level) \(event.message) \(rendered)")
    }
}

/// A value tests change and wait on. A wait returns the value once it satisfies the wait's condition (at once if
/// it does now), or `nil` when the task is cancelled, so that a test's time limit ends a wait for something that never
/// comes instead of the test run.
final class Watched<Value: Sendable>: Sendable {
    private struct Waiter {
        var until: @Sendable (Value) -> Bool
        var continuation: CheckedContinuation<Value?, Never>
    }

    private struct State {
        var value: Value
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
    }

    private let state: Mutex<State>

    init(_ value: Value) {
        self.state = Mutex(State(value: value))
    }

    var value: Value { self.state.withLock { $0.value } }

    func update(_ change: (inout Value) -> Void) {
        let (value, ready) = self.state.withLock { state in
            change(&state.value)
            let value = state.value
            let ready = state.waiters.filter { $0.value.until(value) }
            for id in ready.keys {
                state.waiters[id] = nil
            }
            return (value, ready.values.map(\.continuation))
        }
        for waiter in ready {
            waiter.resume(returning: value)
        }
    }

    @discardableResult
    func wait(until: @escaping @Sendable (Value) -> Bool) async -> Value? {
        let id = self.state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now: Value?? = self.state.withLock { state in
                    if until(state.value) {
                        return .some(state.value)
                    }
                    if Task.isCancelled {
                        return .some(nil)
                    }
                    state.waiters[id] = Waiter(until: until, continuation: continuation)
                    return nil
                }
                if let now {
                    continuation.resume(returning: now)
                }
            }
        } onCancel: {
            self.state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume(returning: nil)
        }
    }
}

/// Counts activations and lets a test wait for the first one.
final class CountingActivator: GatewayActivator {
    private let recorded = Watched<[StreamID]>([])

    func activate(_ stream: StreamID) async {
        self.recorded.update { $0.append(stream) }
    }

    var calls: [StreamID] { self.recorded.value }

    /// Returns once the activator was called (at once if it was), or when the task is cancelled.
    func waitForCall() async {
        await self.recorded.wait { !$0.isEmpty }
    }
}

/// The ports the gateway listens on, as its `onListening` hook reports them; `nil` until its first report.
final class ListenerWatch: Sendable {
    private let ports = Watched<Set<Int>?>(nil)

    func update(_ listeners: [Int: SocketAddress]) {
        let ports = Set(listeners.keys)
        self.ports.update { $0 = ports }
    }

    /// Waits until the gateway listens on exactly `ports`, or the task is cancelled.
    func wait(for ports: Set<Int>) async {
        await self.ports.wait { $0 == ports }
    }

    /// The ports of the gateway's first report (at once if it came), or `nil` if the task is cancelled first.
    func firstReport() async -> Set<Int>? {
        await self.ports.wait { $0 != nil } ?? nil
    }
}

typealias ByteChannel = NIOAsyncChannel<ByteBuffer, ByteBuffer>

/// What an upstream test server does with one connection.
typealias Serve =
    @Sendable (NIOAsyncChannelInboundStream<ByteBuffer>, NIOAsyncChannelOutboundWriter<ByteBuffer>)
    async throws -> Void

/// A test's setup went wrong; the message says how.
struct TestFailure: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

let testStream = StreamID(namespace: "streams", name: "alice")

extension GatewayConfiguration {
    static func test(
        maxHeldPerStream: Int = 8,
        maxHeldTotal: Int = 64,
        holdTimeout: Duration = .seconds(30),
        shutdownGrace: Duration = .seconds(5),
        sharedIngestPort: Int? = nil,
        ingestSetupTimeout: Duration = .seconds(10),
        tls: IngestTLSConfiguration? = nil
    ) -> GatewayConfiguration {
        GatewayConfiguration(
            host: "127.0.0.1",
            maxHeldPerStream: maxHeldPerStream,
            maxHeldTotal: maxHeldTotal,
            holdTimeout: holdTimeout,
            shutdownGrace: shutdownGrace,
            sharedIngestPort: sharedIngestPort,
            ingestSetupTimeout: ingestSetupTimeout,
            tls: tls
        )
    }
}

func route(
    port: Int,
    upstream: Int? = nil,
    ranges: [String] = ["127.0.0.0/8"],
    suspended: Bool = false,
    ingestKey: GatewayRoute.IngestKey? = nil
) throws -> GatewayRoute {
    GatewayRoute(
        stream: testStream,
        listenPort: port,
        upstream: upstream.map { .init(host: "127.0.0.1", port: $0) },
        allowedSourceRanges: try ranges.map(IPRange.init),
        suspended: suspended,
        ingestKey: ingestKey
    )
}

let quietLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

/// Runs a gateway in a `ServiceGroup` with `routes`, waits until it listens on their ports, runs `body`, then shuts
/// it down gracefully and waits for it to stop.
func withGateway<Result: Sendable>(
    routes: [GatewayRoute],
    configuration: GatewayConfiguration = .test(),
    activator: CountingActivator = CountingActivator(),
    logs: LogStore = LogStore(),
    onCertificateReload: @escaping @Sendable (IngestTLSReload) -> Void = { _ in },
    _ body: (Gateway, ListenerWatch) async throws -> Result
) async throws -> Result {
    let watch = ListenerWatch()
    let gateway = try Gateway(
        configuration: configuration,
        routes: GatewayRoutes(routes),
        activator: activator,
        logger: logs.logger(),
        onListening: { watch.update($0) },
        onCertificateReload: onCertificateReload
    )
    let group = ServiceGroup(services: [gateway], logger: quietLogger)
    return try await withThrowingTaskGroup { tasks in
        tasks.addTask { try await group.run() }
        let expected = Set(routes.map(\.listenPort) + [configuration.sharedIngestPort].compactMap { $0 })
        let listening = await watch.firstReport()
        guard listening == expected else {
            await group.triggerGracefulShutdown()
            tasks.cancelAll()
            throw TestFailure(
                "the gateway listens on \(listening.map { "\($0.sorted())" } ?? "nothing"), not on "
                    + "\(expected.sorted()): \(logs.all.filter { $0.contains("cannot listen") })"
            )
        }
        let result: Result
        do {
            result = try await body(gateway, watch)
        } catch {
            await group.triggerGracefulShutdown()
            tasks.cancelAll()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
    }
}

/// An upstream server on 127.0.0.1:0 that runs `serve` for each connection until `body` ends.
func withUpstream<Result: Sendable>(
    _ serve: @escaping Serve,
    _ body: (Int) async throws -> Result
) async throws -> Result {
    let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.allowRemoteHalfClosure, value: true)
        .bind(host: "127.0.0.1", port: 0) { channel in
            channel.eventLoop.makeCompletedFuture {
                try ByteChannel(
                    wrappingChannelSynchronously: channel,
                    configuration: .init(isOutboundHalfClosureEnabled: true)
                )
            }
        }
    let port = server.channel.localAddress!.port!
    return try await withThrowingTaskGroup { tasks in
        tasks.addTask {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { connections in
                    for try await connection in inbound {
                        connections.addTask {
                            try? await connection.executeThenClose { inbound, outbound in
                                try await serve(inbound, outbound)
                            }
                        }
                    }
                }
            }
        }
        defer { tasks.cancelAll() }
        let result = try await body(port)
        try await server.channel.close()
        return result
    }
}

/// Echoes every read at once.
@Sendable
func echo(
    _ inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
    _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
)
    async throws
{
    for try await buffer in inbound {
        try await outbound.write(buffer)
    }
    outbound.finish()
}

/// Collects everything until the client half-closes, then sends it all back and closes: proves order,
/// completeness and that the upstream saw the end of input while its output stayed open.
@Sendable
func collectThenEcho(
    _ inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
    _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
) async throws {
    var collected = ByteBuffer()
    for try await var buffer in inbound {
        collected.writeBuffer(&buffer)
    }
    try await outbound.write(collected)
    outbound.finish()
}

func connect(port: Int) async throws -> ByteChannel {
    try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelOption(.allowRemoteHalfClosure, value: true)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try ByteChannel(
                    wrappingChannelSynchronously: channel,
                    configuration: .init(isOutboundHalfClosureEnabled: true)
                )
            }
        }
}

/// Reads until the peer closes; a reset counts as closed.
func readToEnd(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) async -> ByteBuffer {
    var all = ByteBuffer()
    do {
        for try await var buffer in inbound {
            all.writeBuffer(&buffer)
        }
    } catch {}
    return all
}

/// Bytes with a pattern that a reordering or a loss would break: byte i is i mod 251 (a prime, so no power-of-two
/// chunking lines up with it). Slices of one precomputed buffer: building 20 MB byte by byte is slow in debug builds.
func patternBytes(count: Int, offset: Int = 0) -> ByteBuffer {
    let start = offset % 251
    if start + count <= patternSource.readableBytes {
        return patternSource.getSlice(at: start, length: count)!
    }
    var buffer = ByteBuffer()
    buffer.reserveCapacity(count)
    for index in offset..<(offset + count) {
        buffer.writeInteger(UInt8(truncatingIfNeeded: index % 251))
    }
    return buffer
}

private let patternSource: ByteBuffer = {
    var buffer = ByteBuffer()
    for index in 0..<(1024 * 1024 + 251) {
        buffer.writeInteger(UInt8(truncatingIfNeeded: index % 251))
    }
    return buffer
}()
