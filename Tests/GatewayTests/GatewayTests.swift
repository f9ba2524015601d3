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

import LiveStreamModel
import Logging
import NIOCore
import NIOPosix
import PeerTestSupport
import ServiceLifecycle
import Testing

@testable import Gateway

@Suite("Gateway", .timeLimit(.minutes(1)))
struct GatewayTests {
    @Test("Proxies a ready route at once, bytes both ways")
    func proxiesBothWays() async throws {
        try await withUpstream(echo) { upstream in
            let port = try freeTCPPort()
            try await withGateway(routes: [try route(port: port, upstream: upstream)]) { gateway, _ in
                let client = try await connect(port: port)
                try await client.executeThenClose { inbound, outbound in
                    var iterator = inbound.makeAsyncIterator()
                    for message in ["hello", "relay"] {
                        try await outbound.write(ByteBuffer(string: message))
                        var echoed = ByteBuffer()
                        while echoed.readableBytes < message.utf8.count, var next = try await iterator.next() {
                            echoed.writeBuffer(&next)
                        }
                        #expect(String(buffer: echoed) == message)
                    }
                    #expect(gateway.connections(for: testStream) == (live: 1, held: 0))
                    #expect(gateway.kedaMetric(for: testStream) == #"{"stream":"streams/alice","connections":1}"#)
                }
            }
        }
    }

    @Test("Both connections of a proxied client set TCP_NODELAY at IPPROTO_TCP, and nothing at SOL_SOCKET")
    func tcpNoDelay() async throws {
        // TCP_NODELAY's number given at the socket level is SO_DEBUG: root may set it (and TCP_NODELAY is then never
        // set), and in a pod without capabilities it fails with EACCES and the connection is closed.
        try await withUpstream(echo) { upstream in
            let port = try freeTCPPort()
            try await withGateway(routes: [try route(port: port, upstream: upstream)]) { _, _ in
                let client = try await connect(port: port)
                try await client.executeThenClose { inbound, outbound in
                    var iterator = inbound.makeAsyncIterator()
                    try await outbound.write(ByteBuffer(string: "ping"))
                    _ = try await iterator.next()
                    let accepted = tcpSocketOptions(port: port).filter { $0.localPort == port }
                    let toRelay = tcpSocketOptions(port: upstream).filter { $0.remotePort == upstream }
                    #expect(accepted.count == 1, "\(accepted)")
                    #expect(toRelay.count == 1, "\(toRelay)")
                    for socket in accepted + toRelay {
                        #expect(socket.noDelay, "\(socket)")
                        #expect(!socket.debug, "\(socket)")
                    }
                }
            }
        }
    }

    @Test("Half-close: the client's end of input reaches the relay, whose answer still comes back")
    func halfClose() async throws {
        try await withUpstream(collectThenEcho) { upstream in
            let port = try freeTCPPort()
            try await withGateway(routes: [try route(port: port, upstream: upstream)]) { _, _ in
                let client = try await connect(port: port)
                try await client.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(string: "publish then hang up"))
                    outbound.finish()
                    #expect(String(buffer: await readToEnd(inbound)) == "publish then hang up")
                }
            }
        }
    }

    @Test("20 MB through a slow reader arrive whole and in order")
    func backpressure() async throws {
        let total = 20 * 1024 * 1024
        let chunk = 64 * 1024
        // The relay reads slowly: a pause every megabyte, so the gateway must stop reading from the client.
        let slowSink: Serve = { inbound, outbound in
            var received = 0
            var mismatches = 0
            var nextPause = 1024 * 1024
            for try await buffer in inbound {
                let expected = patternBytes(count: buffer.readableBytes, offset: received)
                if expected != buffer {
                    mismatches += 1
                }
                received += buffer.readableBytes
                if received >= nextPause {
                    nextPause += 1024 * 1024
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
            try await outbound.write(ByteBuffer(string: "\(received) \(mismatches)"))
            outbound.finish()
        }
        try await withUpstream(slowSink) { upstream in
            let port = try freeTCPPort()
            try await withGateway(routes: [try route(port: port, upstream: upstream)]) { gateway, _ in
                let client = try await connect(port: port)
                try await client.executeThenClose { inbound, outbound in
                    var sent = 0
                    while sent < total {
                        try await outbound.write(patternBytes(count: chunk, offset: sent))
                        sent += chunk
                    }
                    outbound.finish()
                    #expect(String(buffer: await readToEnd(inbound)) == "\(total) 0")
                }
                let statistics = try #require(gateway.statistics(for: testStream))
                #expect(statistics.bytesIn == total)
            }
        }
    }

    @Test("To a relay that reads it, the client's address goes first, as a PROXY header; then the client's bytes")
    func proxyHeader() async throws {
        try await withUpstream(echo) { upstream in
            let port = try freeTCPPort()
            var proxied = try route(port: port, upstream: upstream)
            proxied.upstream?.sendsProxyHeader = true
            try await withGateway(routes: [proxied]) { _, _ in
                let client = try await connect(port: port)
                let clientPort = try #require(client.channel.localAddress?.port)
                try await client.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(string: "hello"))
                    outbound.finish()
                    let echoed = String(buffer: await readToEnd(inbound))
                    #expect(echoed == "PROXY TCP4 127.0.0.1 127.0.0.1 \(clientPort) \(port)\r\nhello")
                }
            }
        }
    }

    @Test("A held connection activates the relay once and reaches it with every byte, in order")
    func holdThenProxy() async throws {
        let activator = CountingActivator()
        let port = try freeTCPPort()
        let logs = LogStore()
        try await withGateway(routes: [try route(port: port)], activator: activator, logs: logs) { gateway, _ in
            let first = try await connect(port: port)
            let second = try await connect(port: port)
            try await first.executeThenClose { firstInbound, firstOutbound in
                try await second.executeThenClose { secondInbound, secondOutbound in
                    // C0+C1 of an RTMP handshake: 1,537 bytes, then the client waits.
                    try await firstOutbound.write(patternBytes(count: 1537))
                    try await secondOutbound.write(patternBytes(count: 100))
                    await activator.waitForCall()
                    await gateway.waitForConnections(of: testStream) { _, held in held >= 2 }
                    #expect(gateway.kedaMetric(for: testStream) == #"{"stream":"streams/alice","connections":2}"#)

                    try await withUpstream(collectThenEcho) { upstream in
                        gateway.routes.update([try route(port: port, upstream: upstream)])
                        try await firstOutbound.write(patternBytes(count: 5000, offset: 1537))
                        firstOutbound.finish()
                        #expect(await readToEnd(firstInbound) == patternBytes(count: 6537))
                        secondOutbound.finish()
                        #expect(await readToEnd(secondInbound) == patternBytes(count: 100))
                    }
                }
            }
            #expect(activator.calls == [testStream])
            let statistics = try #require(gateway.statistics(for: testStream))
            #expect(statistics.held == 0)
            #expect(statistics.bytesIn == 6637)
            #expect(statistics.holdTime > .zero)
            #expect(logs.contains("Holding connection", "streams/alice"))
        }
    }

    @Test("A held client that ends its input keeps what it sent: the relay gets the bytes, then the end of input")
    func halfCloseWhileHeld() async throws {
        let port = try freeTCPPort()
        try await withGateway(routes: [try route(port: port)]) { gateway, _ in
            let client = try await connect(port: port)
            try await client.executeThenClose { inbound, outbound in
                try await outbound.write(patternBytes(count: 3000))
                outbound.finish()
                await gateway.waitForConnections(of: testStream) { _, held in held >= 1 }
                try await withUpstream(collectThenEcho) { upstream in
                    gateway.routes.update([try route(port: port, upstream: upstream)])
                    #expect(await readToEnd(inbound) == patternBytes(count: 3000))
                }
            }
            #expect(gateway.statistics(for: testStream)?.bytesIn == 3000)
        }
    }

    @Test(
        "Beyond a held-connection limit a publish is refused with the reason, which ffmpeg shows, and the log says",
        arguments: [
            (1, 64, "held-per-stream limit (1) reached"),
            (8, 1, "held-total limit (1) reached"),
        ]
    )
    func heldLimits(perStream: Int, total: Int, reason: String) async throws {
        let logs = LogStore()
        let port = try freeTCPPort()
        try await withGateway(
            routes: [try route(port: port)],
            configuration: .test(maxHeldPerStream: perStream, maxHeldTotal: total),
            logs: logs
        ) { gateway, _ in
            let held = try await connect(port: port)
            await gateway.waitForConnections(of: testStream) { _, held in held >= 1 }
            let refused = try await FFmpeg.publish(to: "rtmp://127.0.0.1:\(port)/live/test", duration: 5)
                .waitForExit()
            #expect(!refused.succeeded)
            #expect(refused.standardError.contains("The stream's relay is not available: \(reason)"), "\(refused)")
            #expect(logs.contains("Connection refused", reason, "streams/alice"))
            #expect(gateway.connections(for: testStream) == (live: 0, held: 1))
            try await held.channel.close()
        }
    }

    @Test("A publish held past the hold timeout is refused with the reason, which ffmpeg shows, and the log says")
    func holdTimeout() async throws {
        let logs = LogStore()
        let port = try freeTCPPort()
        try await withGateway(
            routes: [try route(port: port)],
            configuration: .test(holdTimeout: .milliseconds(300)),
            logs: logs
        ) { gateway, _ in
            let exit = try await FFmpeg.publish(to: "rtmp://127.0.0.1:\(port)/live/test", duration: 5).waitForExit()
            #expect(!exit.succeeded)
            #expect(exit.standardError.contains("The stream's relay is not available: hold timeout"), "\(exit)")
            #expect(logs.contains("Connection refused", "hold timeout", "streams/alice"))
            await gateway.waitForConnections(of: testStream) { _, held in held <= 0 }
        }
    }

    @Test("A held publish is refused with the reason when its route is removed, or suspended (Go Offline)")
    func routeGoneWhileHeld() async throws {
        for suspended in [false, true] {
            let logs = LogStore()
            let port = try freeTCPPort()
            try await withGateway(routes: [try route(port: port)], logs: logs) { gateway, watch in
                try await FFmpeg.withPublisher(to: "rtmp://127.0.0.1:\(port)/live/test", duration: 30) { ffmpeg in
                    await gateway.waitForConnections(of: testStream) { _, held in held >= 1 }
                    gateway.routes.update(suspended ? [try route(port: port, suspended: true)] : [])
                    let exit = await ffmpeg.waitForExit()
                    let shown =
                        suspended
                        ? "The stream is offline: it is suspended."
                        : "The stream's relay is not available: the route was removed while the connection was held"
                    #expect(exit.standardError.contains(shown), "\(exit)")
                    let logged = suspended ? "the stream is suspended" : "route was removed"
                    #expect(logs.contains("Connection refused", logged, "streams/alice"), "\(logs.all)")
                }
                if !suspended {
                    await watch.wait(for: [])
                }
            }
        }
    }

    @Test(
        "Refuses a publish from a source outside the allowed ranges, and to a suspended stream, with the reason",
        arguments: [
            (["10.0.0.0/8", "::/0"], false, "source address outside allowedSourceRanges"),
            ([String](), false, "source address outside allowedSourceRanges"),
            (["0.0.0.0/0"], true, "the stream is suspended"),
        ]
    )
    func refuses(ranges: [String], suspended: Bool, reason: String) async throws {
        let logs = LogStore()
        let activator = CountingActivator()
        let port = try freeTCPPort()
        try await withGateway(
            routes: [try route(port: port, ranges: ranges, suspended: suspended)],
            activator: activator,
            logs: logs
        ) { gateway, _ in
            let exit = try await FFmpeg.publish(to: "rtmp://127.0.0.1:\(port)/live/test", duration: 5).waitForExit()
            #expect(!exit.succeeded)
            let shown =
                suspended
                ? "The stream is offline: it is suspended." : "The stream does not take publishers from this address."
            #expect(exit.standardError.contains(shown), "\(exit)")
            #expect(logs.contains("Connection refused", reason, "streams/alice"))
            // Once: the RTMP answer does not count the refusal again.
            #expect(logs.all.filter { $0.contains("Connection refused") }.count == 1, "\(logs.all)")
            #expect(gateway.connections(for: testStream) == (live: 0, held: 0))
            #expect(activator.calls.isEmpty)
        }
    }

    @Test("A client that is not RTMP on a refused port is dropped; a silent one at the setup timeout")
    func refusedNonRTMPClient() async throws {
        let port = try freeTCPPort()
        try await withGateway(
            routes: [try route(port: port, suspended: true)],
            configuration: .test(ingestSetupTimeout: .milliseconds(300))
        ) { _, _ in
            for bytes in ["GET / HTTP/1.1\r\n\r\n", ""] {
                let client = try await connect(port: port)
                try await client.executeThenClose { inbound, outbound in
                    if !bytes.isEmpty {
                        try await outbound.write(ByteBuffer(string: bytes))
                    }
                    #expect(await readToEnd(inbound).readableBytes == 0)
                }
            }
        }
    }

    @Test(
        "Go Offline ends a live publish within 5 s: ffmpeg shows why, the relay (nginx-rtmp) sees the publish end",
        arguments: [false, true]
    )
    func goOfflineWhileLive(sharedPort: Bool) async throws {
        try await withNginxRTMP(applications: ["live"]) { nginx in
            let logs = LogStore()
            let port = try freeTCPPort()
            let shared = try freeTCPPort()
            let key = GatewayRoute.IngestKey(app: "live", key: "offline")
            let live = try route(port: port, upstream: nginx.rtmpPort, ingestKey: key)
            try await withGateway(
                routes: [live],
                configuration: .test(sharedIngestPort: shared),
                logs: logs
            ) { gateway, _ in
                let url = "rtmp://127.0.0.1:\(sharedPort ? shared : port)/live/offline"
                try await FFmpeg.withPublisher(to: url, duration: 60) { ffmpeg in
                    try await nginx.waitForPublishStarted(app: "live", stream: "offline")
                    #expect(gateway.connections(for: testStream) == (live: 1, held: 0))
                    let suspendedAt = ContinuousClock.now
                    gateway.routes.update([
                        try route(port: port, upstream: nginx.rtmpPort, suspended: true, ingestKey: key)
                    ])
                    let exit = await ffmpeg.waitForExit()
                    let took = ContinuousClock.now - suspendedAt
                    #expect(took < .seconds(5), "ffmpeg ended \(took) after the stream was suspended")
                    #expect(exit.standardError.contains("The stream was taken offline: it is suspended."), "\(exit)")
                    try await nginx.waitForPublishEnded(app: "live", stream: "offline", timeout: .seconds(5))
                    await gateway.waitForConnections(of: testStream) { live, held in live == 0 && held == 0 }
                    #expect(logs.contains("Ending the stream's live connections", "streams/alice"), "\(logs.all)")
                }
            }
        }
    }

    @Test("Routes added and removed open and close listeners")
    func listenersFollowRoutes() async throws {
        let first = try freeTCPPort()
        let second = try freeTCPPort()
        let other = StreamID(namespace: "streams", name: "bob")
        try await withGateway(routes: [try route(port: first)]) { gateway, watch in
            var bob = try route(port: second)
            bob.stream = other
            gateway.routes.update([try route(port: first), bob])
            await watch.wait(for: [first, second])
            let client = try await connect(port: second)
            await gateway.waitForConnections(of: other) { _, held in held >= 1 }
            try await client.channel.close()

            gateway.routes.update([bob])
            await watch.wait(for: [second])
            await #expect(throws: (any Error).self) {
                try await connect(port: first).channel.close()
            }
        }
    }

    @Test("A port another socket holds is logged, retried, and served once it is free, with no route change")
    func portInUseIsRetried() async throws {
        let port = try freeTCPPort()
        let blocker = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port)
            .get()
        let logs = LogStore()
        let watch = ListenerWatch()
        let gateway = try Gateway(
            configuration: .test(),
            routes: GatewayRoutes([try route(port: port)]),
            activator: CountingActivator(),
            logger: logs.logger(),
            onListening: { watch.update($0) }
        )
        try await withThrowingTaskGroup { tasks in
            let group = ServiceGroup(services: [gateway], logger: quietLogger)
            tasks.addTask { try await group.run() }
            #expect(await watch.firstReport() == [])
            #expect(logs.contains("Gateway cannot listen", "gateway.port=\(port)"), "\(logs.all)")

            try await blocker.close()
            await watch.wait(for: [port])
            let client = try await connect(port: port)
            await gateway.waitForConnections(of: testStream) { _, held in held >= 1 }
            try await client.channel.close()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test("Bind retries back off from 0.5 s to 30 s while a port fails, one at a time, and start over once bound")
    func bindRetryBackoff() {
        var retry = BindRetry()
        #expect(retry.next(allBound: false) == .milliseconds(500))
        #expect(retry.next(allBound: false) == nil, "a retry is already pending")
        var delays: [Duration] = []
        for _ in 0..<8 {
            retry.fired()
            delays.append(retry.next(allBound: false)!)
        }
        #expect(delays == [1, 2, 4, 8, 16, 30, 30, 30].map { Duration.seconds($0) })
        #expect(retry.next(allBound: true) == nil, "bound while a retry is pending")
        #expect(retry.next(allBound: false) == nil, "the pending retry covers it")
        retry.fired()
        #expect(retry.next(allBound: false) == .milliseconds(500), "the backoff started over")
    }

    @Test("Graceful shutdown closes the listeners and lets a proxied connection finish")
    func gracefulShutdown() async throws {
        try await withUpstream(echo) { upstream in
            let port = try freeTCPPort()
            let watch = ListenerWatch()
            let gateway = try Gateway(
                configuration: .test(),
                routes: GatewayRoutes([try route(port: port, upstream: upstream)]),
                activator: CountingActivator(),
                logger: LogStore().logger(),
                onListening: { watch.update($0) }
            )
            try await withThrowingTaskGroup { tasks in
                let group = ServiceGroup(services: [gateway], logger: quietLogger)
                tasks.addTask { try await group.run() }
                await watch.wait(for: [port])
                let client = try await connect(port: port)
                try await client.executeThenClose { inbound, outbound in
                    var iterator = inbound.makeAsyncIterator()
                    try await outbound.write(ByteBuffer(string: "before"))
                    _ = try await iterator.next()

                    await group.triggerGracefulShutdown()
                    await watch.wait(for: [])
                    await #expect(throws: (any Error).self) {
                        // Through executeThenClose, so that a connection made after all fails this test, not the
                        // whole run (NIO traps when an async channel's writer is dropped unfinished).
                        try await connect(port: port).executeThenClose { _, _ in }
                    }
                    // The proxied connection still works during the grace period.
                    try await outbound.write(ByteBuffer(string: "after"))
                    let echoed = try await iterator.next()
                    #expect(echoed.map { String(buffer: $0) } == "after")
                }
                // Once it ends, the gateway stops.
                try await tasks.waitForAll()
            }
        }
    }
}
