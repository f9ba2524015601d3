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

import Logging
import Metrics
import NIOCore
import NIOPosix
import RTMP
import Synchronization
import Testing

@testable import Relay

/// RTMP ingest servers in the test's process, on 127.0.0.1: each accepted publish is recorded by its stream name
/// (the target's key), with every media message it received and whether it ended with an unpublish.
final class InProcessSinks: Sendable {
    struct Publish: Sendable {
        var media: [RTMPMessage] = []
        var unpublished = false
        /// Publishes accepted under this name (a target that rejoins publishes again).
        var starts = 0
    }

    private struct State {
        var publishes: [String: Publish] = [:]
        var waiters:
            [(condition: @Sendable ([String: Publish]) -> Bool, continuation: CheckedContinuation<Void, Never>)] =
                []
    }

    private let state = Mutex(State())
    private let channel: any Channel
    var port: Int { self.channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// - Parameter group: where the sinks' connections run; a test that must not share the process's singleton
    ///   loops with hundreds of others (a full test run) passes its own.
    static func start(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> InProcessSinks
    {
        let box = Mutex<InProcessSinks?>(nil)
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let sinks = box.withLock({ $0 }) else { throw ChannelError.ioOnClosedChannel }
                    try channel.pipeline.syncOperations.addHandler(RTMPConnectionHandler(role: .server))
                    try channel.pipeline.syncOperations.addHandler(SinkHandler(sinks: sinks))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let sinks = InProcessSinks(channel: channel)
        box.withLock { $0 = sinks }
        return sinks
    }

    func stop() async {
        try? await self.channel.close()
    }

    var publishes: [String: Publish] { self.state.withLock { $0.publishes } }

    fileprivate func change(_ name: String, _ body: (inout Publish) -> Void) {
        let ready = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            body(&state.publishes[name, default: Publish()])
            let publishes = state.publishes
            var ready: [CheckedContinuation<Void, Never>] = []
            state.waiters.removeAll { waiter in
                guard waiter.condition(publishes) else { return false }
                ready.append(waiter.continuation)
                return true
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Returns once `condition` holds of what the sinks received; throws after `timeout`, a bound for a hung test
    /// only (the wait ends on the event): a 2-core CI machine running the whole suite at once is slow to start.
    func wait(
        _ what: String,
        timeout: Duration = .seconds(60),
        until condition: @escaping @Sendable ([String: Publish]) -> Bool
    ) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let now = self.state.withLock { state -> Bool in
                        if condition(state.publishes) { return true }
                        state.waiters.append((condition, continuation))
                        return false
                    }
                    if now { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let met = try await group.next() ?? false
            group.cancelAll()
            if !met {
                // Wake the waiter left behind so the group can end.
                let left = self.state.withLock { state in
                    defer { state.waiters.removeAll() }
                    return state.waiters.map(\.continuation)
                }
                for continuation in left { continuation.resume() }
                throw FanOutTestFailure("timed out waiting for \(what): \(self.publishes.mapValues(\.media.count))")
            }
        }
    }
}

struct FanOutTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One accepted connection of ``InProcessSinks``: a live ingest that accepts every publish.
private final class SinkHandler: ChannelInboundHandler {
    typealias InboundIn = RTMPMessage
    typealias OutboundOut = RTMPMessage

    private let sinks: InProcessSinks
    private var session = RTMPServerSessionStateMachine(configuration: .init(applications: ["live"]))
    private var name: String?

    init(sinks: InProcessSinks) {
        self.sinks = sinks
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.session.received(Self.unwrapInboundIn(data)) {
        case .none:
            break
        case .send(let messages):
            self.send(messages, context: context)
        case .authorize(let request):
            self.name = request.streamName
            self.sinks.change(request.streamName) { $0.starts += 1 }
            self.send(self.session.publishAccepted(), context: context)
        case .media(let message):
            if let name { self.sinks.change(name) { $0.media.append(message) } }
        case .unpublished(let messages):
            if let name { self.sinks.change(name) { $0.unpublished = true } }
            self.send(messages, context: context)
        case .close(let messages, _):
            self.send(messages, context: context)
            context.close(promise: nil)
        }
    }

    private func send(_ messages: [RTMPMessage], context: ChannelHandlerContext) {
        for message in messages { context.write(Self.wrapOutboundOut(message), promise: nil) }
        context.flush()
    }
}

@Suite("Fan-out in process: one publish to targets on in-process RTMP servers", .timeLimit(.minutes(1)))
struct FanOutTests {
    @Test(
        "every target gets every message in order; one added mid-GOP starts at a keyframe; finish unpublishes all",
        arguments: [GOPCachePolicy.always, .joining]
    )
    func fanOut(policy: GOPCachePolicy) async throws {
        let sinks = try await InProcessSinks.start()
        let url = try RTMPURL(parsing: "rtmp://127.0.0.1:\(sinks.port)/live")
        let targets = ["a", "b"].map { PushTargetConfiguration(name: $0, url: url, streamKey: Secret("\($0)-key")) }
        var relay = RelayConfiguration(
            host: "127.0.0.1",
            port: 0,
            app: "live",
            streamKey: Secret("ingest"),
            targets: targets
        )
        relay.gopCache = policy
        // The publisher's event loop: the fan-out takes messages there, as from the publisher's connection.
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let fanOut = FanOut(
            stream: relay.streams[0],
            relay: relay,
            sslContext: nil,
            loop: loop,
            metrics: RelayMetrics(factory: NOOPMetricsHandler.instance).stream("default"),
            logger: Logger(label: "fan-out-test") { _ in SwiftLogNoOpLogHandler() }
        )
        let running = Task { await fanOut.run() }
        /// One read of the publisher's connection that brings `messages`.
        func publish(_ messages: RelayMessage...) async throws {
            try await loop.submit {
                for message in messages { fanOut.publish(message.message, now: .now) }
                fanOut.readComplete()
            }.get()
        }

        let first: [RelayMessage] = [
            relayMessage(.videoHeader, ts: 5000),
            relayMessage(.audioHeader, ts: 5000),
            relayMessage(.keyframe, ts: 5000, bytes: 3000),
            relayMessage(.audioFrame, ts: 5021),
            relayMessage(.videoFrame, ts: 5040),
            relayMessage(.keyframe, ts: 7000, bytes: 9000),
            relayMessage(.videoFrame, ts: 7040),
        ]
        for message in first { try await publish(message) }
        try await sinks.wait("both targets' first messages") { publishes in
            ["a-key", "b-key"].allSatisfy { publishes[$0]?.media.count == first.count }
        }
        for key in ["a-key", "b-key"] {
            let media = try #require(sinks.publishes[key]?.media)
            #expect(media.map(\.timestamp) == [0, 0, 0, 21, 40, 2000, 2040], "\(key): rebased, in order")
            #expect(media.map(\.payload) == first.map(\.message.payload), "\(key): payloads whole")
        }

        // A target added now starts from the GOP cache (always): the headers, then the latest keyframe and what
        // followed. With the cache kept only while a target joins, every target was pushing: it starts at the next
        // keyframe, after the headers.
        let c = PushTargetConfiguration(name: "c", url: url, streamKey: Secret("c-key"))
        fanOut.setTargets(targets + [c], rules: IngestRules())
        var cExpected: [RelayMessage]
        if policy == .always {
            cExpected = [first[0], first[1], first[5], first[6]]
            try await sinks.wait("the joining target's seed") { $0["c-key"]?.media.count == 4 }
            #expect(sinks.publishes["c-key"]?.media.map(\.timestamp) == [0, 0, 0, 40], "rebased to its keyframe")
        } else {
            try await sinks.wait("the joining target's publish") { $0["c-key"] != nil }
            let keyframe = relayMessage(.keyframe, ts: 9000, bytes: 2000)
            try await publish(relayMessage(.videoFrame, ts: 7060), keyframe)
            cExpected = [first[0], first[1], keyframe]
            try await sinks.wait("the joining target's first keyframe") { $0["c-key"]?.media.count == 3 }
            #expect(sinks.publishes["c-key"]?.media.map(\.timestamp) == [0, 0, 0], "rebased to its keyframe")
        }
        #expect(sinks.publishes["c-key"]?.media.map(\.payload) == cExpected.map(\.message.payload))
        // What a was sent so far: the first messages, and in the joining case the two that followed.
        let sentBefore = policy == .always ? first.count : first.count + 2

        // Removing a target ends its publish cleanly; the others go on.
        fanOut.setTargets(
            [targets[0], PushTargetConfiguration(name: "c", url: url, streamKey: Secret("c-key"))],
            rules: IngestRules()
        )
        try await sinks.wait("b unpublished") { $0["b-key"]?.unpublished == true }
        try await publish(relayMessage(.videoFrame, ts: 7080))
        let bSent = try #require(sinks.publishes["b-key"]?.media.count)
        let cSent = cExpected.count
        try await sinks.wait("a and c get the next frame") { publishes in
            publishes["a-key"]?.media.count == sentBefore + 1 && publishes["c-key"]?.media.count == cSent + 1
        }
        #expect(sinks.publishes["b-key"]?.media.count == bSent, "a removed target got more")

        fanOut.finish()
        try await sinks.wait("every publish ended with an unpublish") { publishes in
            ["a-key", "b-key", "c-key"].allSatisfy { publishes[$0]?.unpublished == true }
        }
        await running.value
        await sinks.stop()
    }
}
