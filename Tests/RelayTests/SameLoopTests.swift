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
import ServiceLifecycle
import Testing

@testable import Relay

@Suite("A stream's media path on one event loop", .timeLimit(.minutes(2)))
struct SameLoopTests {
    @Test(
        "ingest, fan-out, queues and every target connection run on the ingest channel's loop; streams spread out"
    )
    func sameLoop() async throws {
        // The sinks and the publishers on a loop of their own: in a full test run the process's singleton loops
        // serve hundreds of tests at once, and this test asserts where the relay's work runs, not how fast.
        let peers = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let sinks = try await InProcessSinks.start(group: peers)
        let url = try RTMPURL(parsing: "rtmp://127.0.0.1:\(sinks.port)/live")
        let streams = ["s1", "s2"].map { name in
            StreamConfiguration(
                name: name,
                app: "live",
                authorization: .key(Secret("\(name)-key")),
                targets: ["a", "b"].map {
                    PushTargetConfiguration(name: $0, url: url, streamKey: Secret("\(name)-\($0)"))
                }
            )
        }
        var configuration = RelayConfiguration(host: "127.0.0.1", port: 0, streams: streams)
        configuration.gopCache = .off
        // Two loops, as on this two-core machine: the two publishers' connections land on different ones.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let logger = Logger(label: "same-loop-test") { _ in SwiftLogNoOpLogHandler() }
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let server = try RelayServer(
            configuration: configuration,
            eventLoopGroup: group,
            metricsFactory: NOOPMetricsHandler.instance,
            logger: logger
        ) { portContinuation.yield($0.port ?? 0) }
        let services = ServiceGroup(services: [server], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await services.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())

            let frames = [
                RTMPMessage(
                    chunkStreamID: 6,
                    timestamp: 0,
                    type: .video,
                    messageStreamID: 1,
                    payload: flv([0x17, 0x00])
                ),
                RTMPMessage(
                    chunkStreamID: 6,
                    timestamp: 0,
                    type: .video,
                    messageStreamID: 1,
                    payload: flv([0x17, 0x01], 9000)
                ),
                RTMPMessage(
                    chunkStreamID: 4,
                    timestamp: 20,
                    type: .audio,
                    messageStreamID: 1,
                    payload: flv([0xAF, 0x01], 300)
                ),
                RTMPMessage(
                    chunkStreamID: 6,
                    timestamp: 33,
                    type: .video,
                    messageStreamID: 1,
                    payload: flv([0x27, 0x01], 5000)
                ),
            ]
            // Each publisher publishes, sends the frames and stays connected until `closing` ends.
            let (closing, close) = AsyncStream<Never>.makeStream()
            for key in ["s1-key", "s2-key"] {
                tasks.addTask {
                    try await publishInProcess(port: port, key: key, frames: frames, group: peers) {
                        for await _ in closing {}
                    }
                }
            }
            try await sinks.wait("every target got every frame", timeout: .seconds(60)) { publishes in
                ["s1-a", "s1-b", "s2-a", "s2-b"].allSatisfy { publishes[$0]?.media.count == frames.count }
            }
            for name in ["s1-a", "s1-b", "s2-a", "s2-b"] {
                #expect(sinks.publishes[name]?.media.map(\.payload) == frames.map(\.payload), "\(name): whole")
            }

            var ingestLoops: [any EventLoop] = []
            for name in ["s1", "s2"] {
                let publisher = try #require(server.hub(named: name)?.publisher)
                let ingest = publisher.channel.eventLoop
                ingestLoops.append(ingest)
                #expect(publisher.fanOut.loop === ingest, "\(name): the fan-out is on another loop")
                let targets = publisher.fanOut.targets
                #expect(targets.count == 2)
                for target in targets {
                    let channel = try #require(target.channel, "\(name): a target without a connection")
                    #expect(channel.eventLoop === ingest, "\(name): a target's connection is on another loop")
                    #expect(target.loop === ingest && target.queue.loop === ingest)
                }
            }
            #expect(ingestLoops[0] !== ingestLoops[1], "both streams on one loop, the other idle")

            close.finish()
            try await sinks.wait("every target unpublished") { publishes in
                ["s1-a", "s1-b", "s2-a", "s2-b"].allSatisfy { publishes[$0]?.unpublished == true }
            }
            await services.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        await sinks.stop()
        try await group.shutdownGracefully()
        try await peers.shutdownGracefully()
    }
}

/// An FLV tag body: `prefix`, then filler up to `length` bytes.
private func flv(_ prefix: [UInt8], _ length: Int = 2) -> ByteBuffer {
    var buffer = ByteBuffer(bytes: prefix)
    buffer.writeBytes((0..<(length - prefix.count)).map { UInt8(truncatingIfNeeded: $0) })
    return buffer
}
