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

@Suite("Keyframe requests to a publisher that asked for them", .timeLimit(.minutes(2)))
struct KeyframeRequestTests {
    @Test(
        "a target that starts, then rejoins, gets the opted-in publisher asked for a keyframe each time; others never"
    )
    func requestsOnTargetStart() async throws {
        let sinks = try await InProcessSinks.start()
        let url = try RTMPURL(parsing: "rtmp://127.0.0.1:\(sinks.port)/live")
        let streams = ["asks", "plain"].map { name in
            StreamConfiguration(
                name: name,
                app: "live",
                authorization: .key(Secret("\(name)-key")),
                targets: [PushTargetConfiguration(name: "a", url: url, streamKey: Secret("\(name)-a"))]
            )
        }
        var configuration = RelayConfiguration(host: "127.0.0.1", port: 0, streams: streams)
        configuration.gopCache = .always
        let logger = Logger(label: "keyframe-request-test") { _ in SwiftLogNoOpLogHandler() }
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let server = try RelayServer(
            configuration: configuration,
            metricsFactory: NOOPMetricsHandler.instance,
            logger: logger
        ) { portContinuation.yield($0.port ?? 0) }
        let services = ServiceGroup(services: [server], logger: logger)
        let frames = [
            RTMPMessage(chunkStreamID: 6, timestamp: 0, type: .video, messageStreamID: 1, payload: flv([0x17, 0x00])),
            RTMPMessage(chunkStreamID: 6, timestamp: 0, type: .video, messageStreamID: 1, payload: flv([0x17, 0x01])),
            RTMPMessage(chunkStreamID: 6, timestamp: 33, type: .video, messageStreamID: 1, payload: flv([0x27, 0x01])),
        ]
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await services.run() }
            var portIterator = ports.makeAsyncIterator()
            let port = try #require(await portIterator.next())

            let (requests, request) = AsyncStream<String>.makeStream()
            let (closing, close) = AsyncStream<Never>.makeStream()
            let publishers = Task {
                try await withThrowingTaskGroup(of: Void.self) { publishers in
                    for (key, asks) in [("asks-key", true), ("plain-key", false)] {
                        publishers.addTask {
                            try await publishInProcess(
                                port: port,
                                key: key,
                                frames: frames,
                                asksForKeyframes: asks
                            ) {
                                request.yield(key)
                            } while: {
                                for await _ in closing {}
                            }
                        }
                    }
                    try await publishers.waitForAll()
                }
            }

            // The first start of each target.
            try await sinks.wait("both targets got every frame") { publishes in
                ["asks-a", "plain-a"].allSatisfy { publishes[$0]?.media.count == frames.count }
            }
            #expect(await next(requests, timeout: .seconds(20)) == "asks-key", "no request for a starting target")

            // Each target stopped and started again: it rejoins from the GOP cache.
            for name in ["asks", "plain"] {
                let hub = try #require(server.hub(named: name))
                #expect(hub.setTarget("a", enabled: false))
                try await sinks.wait("\(name)'s target unpublished") { $0["\(name)-a"]?.unpublished == true }
                #expect(hub.setTarget("a", enabled: true))
            }
            try await sinks.wait("both targets published again, from the cache") { publishes in
                ["asks-a", "plain-a"].allSatisfy { (publishes[$0]?.starts ?? 0) == 2 }
                    && ["asks-a", "plain-a"].allSatisfy { (publishes[$0]?.media.count ?? 0) >= 2 * frames.count }
            }
            #expect(await next(requests, timeout: .seconds(20)) == "asks-key", "no request for a rejoining target")

            close.finish()
            try await publishers.value
            request.finish()
            // The publisher that did not opt in was never asked, nor was the other one asked more than twice.
            var rest: [String] = []
            for await key in requests {
                rest.append(key)
            }
            #expect(rest.isEmpty, "unexpected requests: \(rest)")
            await services.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        await sinks.stop()
    }
}

/// The next element of `stream`, or `nil` after `timeout` (which ends the stream: a test that times out fails).
private func next(_ stream: AsyncStream<String>, timeout: Duration) async -> String? {
    await withTaskGroup(of: String?.self) { group in
        group.addTask {
            var iterator = stream.makeAsyncIterator()
            return await iterator.next()
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// An FLV tag body: `prefix`, then filler.
private func flv(_ prefix: [UInt8]) -> ByteBuffer {
    var buffer = ByteBuffer(bytes: prefix)
    buffer.writeBytes([0, 0, 0, 1, 2, 3])
    return buffer
}
