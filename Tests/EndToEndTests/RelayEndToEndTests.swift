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
import IngestTLS
import NIOCore
import NIOPosix
import PeerTestSupport
import Relay
import RelayAPI
import Testing

/// The relay between real peers: ffmpeg publishes, nginx-rtmp receives (directly and behind a TLS front), ffprobe
/// and ffmpeg check what arrived. Serialized, because each test runs encoders and servers on a 2-core machine.
@Suite("Relay end to end", .serialized, .timeLimit(.minutes(3)))
struct RelayEndToEndTests {
    static let seconds = 8.0

    /// Checks a recording: the codecs and size that were sent, at least 90 % of the duration, and a clean decode.
    static func expectComplete(
        _ path: String,
        seconds: Double = Self.seconds,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let info = try await FFprobe.inspect(path)
        #expect(info.video?.codecName == "h264", sourceLocation: sourceLocation)
        #expect(info.video?.width == 320 && info.video?.height == 240, sourceLocation: sourceLocation)
        #expect(info.audio?.codecName == "aac", sourceLocation: sourceLocation)
        let duration = try #require(info.duration, sourceLocation: sourceLocation)
        #expect(duration >= 0.9 * seconds, "recorded \(duration) s of \(seconds) s", sourceLocation: sourceLocation)
        let errors = try await FFprobe.decodeErrors(path)
        #expect(errors.isEmpty, "decode errors: \(errors)", sourceLocation: sourceLocation)
    }

    @Test("ffmpeg → relay → two nginx-rtmp applications and an RTMPS endpoint, each complete and decodable")
    func fanOutToThreeTargets() async throws {
        try await withNginxRTMP(applications: ["first", "second", "secure"], tls: true) { nginx in
            let keys = (makeTestKey("a"), makeTestKey("b"), makeTestKey("s"))
            let targets = [
                try PushTargetConfiguration.nginx(nginx, app: "first", key: keys.0),
                try PushTargetConfiguration.nginx(nginx, app: "second", key: keys.1),
                PushTargetConfiguration(
                    name: "secure",
                    url: try RTMPURL(parsing: nginx.rtmpsURL(app: "secure")),
                    streamKey: Secret(keys.2)
                ),
            ]
            try await withRelay(targets: targets, configure: { $0.caFile = nginx.certificatePath }) { relay in
                let exit = try await FFmpeg.withPublisher(to: relay.publishURL(), duration: Self.seconds) {
                    await $0.waitForExit()
                }
                #expect(exit.succeeded, "ffmpeg: \(exit)")
                for (app, key) in [("first", keys.0), ("second", keys.1), ("secure", keys.2)] {
                    try await nginx.waitForPublishEnded(app: app, stream: key, timeout: .seconds(20))
                }
                _ = try await relay.logs.waitFor("the secure target unpublishing") {
                    $0.contains("Target unpublished") && $0.contains("relay.target.name=secure")
                }
                #expect(
                    !relay.logs.lines.contains { $0.contains(keys.0) || $0.contains(keys.1) || $0.contains(keys.2) },
                    "a target key was logged"
                )
            }
            for (app, key) in [("first", keys.0), ("second", keys.1), ("secure", keys.2)] {
                try await Self.expectComplete(nginx.recordingPath(app: app, stream: key))
            }
        }
    }

    @Test(
        "A target killed mid-stream is reconnected and gets a decodable stream again; the other plays on without a gap"
    )
    func targetKilledAndRestarted() async throws {
        try await withNginxRTMP(applications: ["steady"]) { steady in
            let flaky = try await NginxRTMP.start(applications: ["flaky"])
            let flakyKey = makeTestKey("f")
            let steadyKey = makeTestKey("s")
            let targets = [
                try PushTargetConfiguration.nginx(steady, app: "steady", key: steadyKey),
                try PushTargetConfiguration.nginx(flaky, app: "flaky", key: flakyKey),
            ]
            let total = 16.0
            let again: NginxRTMP
            do {
                // A restarted nginx that a failure leaves behind is killed when its process object goes away.
                again = try await withRelay(targets: targets) { relay in
                    let again = try await FFmpeg.withPublisher(to: relay.publishURL(), duration: total) { ffmpeg in
                        try await flaky.waitForPublishStarted(app: "flaky", stream: flakyKey)
                        _ = try await relay.logs.waitFor("flaky live") {
                            $0.contains("Target is live") && $0.contains("name=flaky")
                        }
                        // With both targets pushing, the GOP cache (policy `joining`) holds nothing.
                        _ = try await relay.logs.waitFor("the GOP cache freed") { $0.contains("GOP cache off") }
                        #expect(relay.server.status(stream: "default")?.gopCacheBytes == 0)
                        // Kill the target hard, as a crashed server would go.
                        flaky.kill()
                        _ = try await relay.logs.waitFor("the flaky target failing") {
                            $0.contains("Target failed; reconnecting") && $0.contains("name=flaky")
                        }
                        _ = try await relay.logs.waitFor("the GOP cache recording") { $0.contains("GOP cache on") }
                        let again = try await flaky.restart()
                        try await again.waitForPublishStarted(app: "flaky", stream: flakyKey, timeout: .seconds(20))
                        // The reconnect started from the GOP the cache recorded after the failure ...
                        let seeds = relay.logs.lines.filter {
                            $0.contains("Target restarts from the GOP cache") && $0.contains("name=flaky")
                        }
                        #expect(
                            seeds.contains { !$0.contains("seed_messages=0") },
                            "every restart of the flaky target found an empty GOP cache: \(seeds)"
                        )
                        // ... and once it is pushing again, the cache is freed again.
                        _ = try await relay.logs.waitFor("the GOP cache freed again", count: 2) {
                            $0.contains("GOP cache off")
                        }
                        let exit = await ffmpeg.waitForExit()
                        #expect(exit.succeeded, "ffmpeg: \(exit)")
                        return again
                    }
                    try await steady.waitForPublishEnded(app: "steady", stream: steadyKey, timeout: .seconds(20))
                    try await again.waitForPublishEnded(app: "flaky", stream: flakyKey, timeout: .seconds(20))
                    #expect(
                        relay.logs.lines.filter { $0.contains("Target is live") && $0.contains("name=flaky") }.count
                            == 2
                    )
                    return again
                }
            } catch {
                await flaky.stop()
                throw error
            }
            // The steady target has the whole stream, without a gap.
            try await Self.expectComplete(steady.recordingPath(app: "steady", stream: steadyKey), seconds: total)
            let gap = try await largestVideoGap(steady.recordingPath(app: "steady", stream: steadyKey))
            #expect(gap < 0.25, "largest gap in the steady target's video: \(gap) s")
            // The restarted target has a decodable stream that starts at a keyframe.
            let path = again.recordingPath(app: "flaky", stream: flakyKey)
            let info = try await FFprobe.inspect(path)
            #expect(info.video?.codecName == "h264" && info.audio?.codecName == "aac")
            #expect((info.duration ?? 0) >= 2, "the restarted target got \(info.duration ?? 0) s")
            let errors = try await FFprobe.decodeErrors(path)
            #expect(errors.isEmpty, "decode errors after the restart: \(errors)")
            await again.stop()
            again.removeFiles()
            flaky.removeFiles()
        }
    }

    @Test("ffmpeg publishes with rtmps:// straight to a relay with a certificate, then with rtmp://; both arrive whole")
    func rtmpsIngest() async throws {
        try await TestCertificate.withTemporary { certificate, _ in
            try await withNginxRTMP(applications: ["target"]) { nginx in
                let targetKey = makeTestKey("t")
                let targets = [
                    try PushTargetConfiguration.nginx(nginx, app: "target", key: targetKey)
                ]
                let tls = IngestTLSConfiguration(
                    certificateChainFile: certificate.certificate,
                    privateKeyFile: certificate.key
                )
                try await withRelay(targets: targets, configure: { $0.tls = tls }) { relay in
                    for (count, scheme) in ["rtmps", "rtmp"].enumerated() {
                        let exit = try await FFmpeg.withPublisher(
                            to: relay.publishURL(scheme: scheme),
                            duration: Self.seconds
                        ) {
                            await $0.waitForExit()
                        }
                        #expect(exit.succeeded, "ffmpeg failed with \(scheme)://")
                        try await nginx.waitForPublishEnded(
                            app: "target",
                            stream: targetKey,
                            count: count + 1,
                            timeout: .seconds(20)
                        )
                        try await Self.expectComplete(nginx.recordingPath(app: "target", stream: targetKey))
                    }
                    #expect(relay.logs.lines.contains { $0.contains("Relay takes rtmps://") })
                    #expect(!relay.logs.lines.contains { $0.contains("Connection refused") })
                }
            }
        }
    }

    @Test("rtmps:// to a relay without a certificate is refused, and the log says what to do")
    func rtmpsWithoutCertificate() async throws {
        try await withRelay(targets: []) { relay in
            let exit = try await FFmpeg.withPublisher(to: relay.publishURL(scheme: "rtmps"), duration: 2) {
                await $0.waitForExit()
            }
            #expect(!exit.succeeded)
            _ = try await relay.logs.waitFor("the refusal") {
                $0.contains("Connection refused: TLS client (rtmps://) but no certificate: publish with rtmp://")
            }
        }
    }

    @Test("A wrong stream key is refused with NetStream.Publish.BadName and nothing reaches any target")
    func wrongKey() async throws {
        try await withNginxRTMP(applications: ["target"]) { nginx in
            let targetKey = makeTestKey("t")
            let targets = [
                try PushTargetConfiguration.nginx(nginx, app: "target", key: targetKey)
            ]
            try await withRelay(targets: targets) { relay in
                let wrong = makeTestKey("wrong")
                let exit = try await FFmpeg.withPublisher(to: relay.publishURL(key: wrong), duration: 3) {
                    await $0.waitForExit()
                }
                #expect(!exit.succeeded)
                #expect(exit.standardError.contains("Invalid stream key"), "ffmpeg said: \(exit.standardError)")
                _ = try await relay.logs.waitFor("the refusal") { $0.contains("Publish refused: wrong stream key") }
                #expect(!relay.logs.lines.contains { $0.contains(wrong) }, "the refused key was logged")
                #expect(nginx.finishedSessions().isEmpty, "a target was contacted: \(nginx.finishedSessions())")
                #expect(!relay.logs.lines.contains { $0.contains("Target is live") })
            }
            #expect(!FileManager.default.fileExists(atPath: nginx.recordingPath(app: "target", stream: targetKey)))
        }
    }

    @Test(
        "Garbage, a truncated handshake and a malformed chunk close only their connection; the next publisher is relayed"
    )
    func badInputIsContained() async throws {
        try await withNginxRTMP(applications: ["target"]) { nginx in
            let targetKey = makeTestKey("t")
            let targets = [
                try PushTargetConfiguration.nginx(nginx, app: "target", key: targetKey)
            ]
            try await withRelay(targets: targets) { relay in
                // An HTTP request is not RTMP: refused at the first byte.
                try await RawClient.sendThenAwaitClose(
                    port: relay.port,
                    bytes: Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
                )
                _ = try await relay.logs.waitFor("the version refusal") { $0.contains("unsupported version") }

                // A handshake cut off half way.
                try await RawClient.sendThenClose(port: relay.port, bytes: [3] + [UInt8](repeating: 0, count: 700))
                _ = try await relay.logs.waitFor("the truncated handshake") { $0.contains("during the handshake") }

                // A complete plain handshake, then a chunk that continues a chunk stream that was never opened.
                try await RawClient.handshakeThenSend(port: relay.port, bytes: [0xC6, 0x00, 0x01])
                _ = try await relay.logs.waitFor("the malformed chunk") { $0.contains("malformed chunk") }

                let exit = try await FFmpeg.withPublisher(to: relay.publishURL(), duration: 4) {
                    await $0.waitForExit()
                }
                #expect(exit.succeeded, "ffmpeg: \(exit)")
                try await nginx.waitForPublishEnded(app: "target", stream: targetKey, timeout: .seconds(20))
            }
            try await Self.expectComplete(nginx.recordingPath(app: "target", stream: targetKey), seconds: 4)
        }
    }

    @Test("A connection beyond maxConnections is refused and logged; the relay goes on, and the freed slot serves")
    func connectionLimit() async throws {
        try await withNginxRTMP(applications: ["limit"]) { nginx in
            let targetKey = makeTestKey("t")
            let targets = [
                try PushTargetConfiguration.nginx(nginx, app: "limit", key: targetKey)
            ]
            try await withRelay(targets: targets, configure: { $0.maxConnections = 1 }) { relay in
                // The first connection takes the only slot.
                try await RawClient.withAdmittedConnection(port: relay.port) {
                    try await RawClient.sendThenAwaitClose(port: relay.port, bytes: [3])
                    _ = try await relay.logs.waitFor("the refusal") { $0.contains("too many connections") }
                }
                // Its slot is free again: a publisher gets through, to the target.
                let exit = try await FFmpeg.withPublisher(to: relay.publishURL(), duration: 2) {
                    await $0.waitForExit()
                }
                #expect(exit.succeeded, "ffmpeg: \(exit)")
                try await nginx.waitForPublishEnded(app: "limit", stream: targetKey, timeout: .seconds(20))
            }
        }
    }

    @Test("liverelay relay --max-connections 1: a second connection is refused, and the log names the limit")
    func maxConnectionsFlag() async throws {
        let stderr = try await RelayChildProcess.with(
            targets: [],
            extraArguments: ["--max-connections", "1", "--log-level", "notice"]
        ) { relay in
            try await RawClient.withAdmittedConnection(port: relay.rtmpPort) {
                try await RawClient.sendThenAwaitClose(port: relay.rtmpPort, bytes: [3])
            }
            // Stopped here so that its whole log has been read.
            relay.process.terminate()
            return await relay.process.waitForExit().standardError
        }
        #expect(stderr.contains("Connection refused: too many connections"), "\(stderr)")
        #expect(stderr.contains("relay.max_connections=1"))
    }

    @Test("librtmp (rtmpdump) gets through the handshake and connect, and is told that this relay does not play")
    func librtmpInterop() async throws {
        try await withRelay(targets: []) { relay in
            let exit = try await withRunningProcess(
                "rtmpdump",
                arguments: ["-r", relay.publishURL(key: "anything"), "-o", "/dev/null", "--live", "--timeout", "10"]
            ) { await $0.waitForExit() }
            #expect(!exit.succeeded)
            #expect(exit.standardError.contains("Connected..."), "rtmpdump said: \(exit.standardError)")
            #expect(exit.standardError.contains("NetStream.Play.Failed"), "rtmpdump said: \(exit.standardError)")
            _ = try await relay.logs.waitFor("the refused play") { $0.contains("only publishing is accepted") }
        }
    }

    @Test(
        "An unreachable target, a TLS failure and a refused publish are logged with the target's name and reason, never its key"
    )
    func actionableErrors() async throws {
        try await withNginxRTMP(applications: ["busy", "fine"], tls: true) { nginx in
            let busyKey = makeTestKey("busy")
            let fineKey = makeTestKey("fine")
            let unreachablePort = try freeTCPPort()
            let targets = [
                PushTargetConfiguration(
                    name: "unreachable",
                    url: try RTMPURL(parsing: "rtmp://127.0.0.1:\(unreachablePort)/app"),
                    streamKey: Secret(makeTestKey("u"))
                ),
                // The TLS front's certificate is self-signed and this relay is not given its CA.
                PushTargetConfiguration(
                    name: "untrusted",
                    url: try RTMPURL(parsing: nginx.rtmpsURL(app: "fine")),
                    streamKey: Secret(makeTestKey("x"))
                ),
                // Somebody else already publishes this stream: nginx-rtmp refuses with NetStream.Publish.BadName.
                try PushTargetConfiguration.nginx(nginx, app: "busy", key: busyKey),
                try PushTargetConfiguration.nginx(nginx, app: "fine", key: fineKey),
            ]
            try await FFmpeg.withPublisher(to: nginx.url(app: "busy", stream: busyKey), duration: 30) { squatter in
                try await nginx.waitForPublishStarted(app: "busy", stream: busyKey)
                try await withRelay(targets: targets) { relay in
                    try await FFmpeg.withPublisher(to: relay.publishURL(), duration: 4) { ffmpeg in
                        let unreachable = try await relay.logs.waitFor("the unreachable target") {
                            $0.contains("name=unreachable") && $0.contains("Target failed")
                        }
                        #expect(unreachable.contains("cannot connect to 127.0.0.1:\(unreachablePort)"))
                        // While it waits to retry, the down target holds nothing: its next connection starts
                        // from the GOP cache, so what it queued meanwhile could never be sent.
                        let waiting = try await Self.targetStatus(relay, "unreachable") { $0.state == "backingOff" }
                        #expect(waiting.queuedBytes == 0, "\(waiting)")
                        #expect(waiting.lastError?.contains("cannot connect") == true)
                        let untrusted = try await relay.logs.waitFor("the TLS failure") {
                            $0.contains("name=untrusted") && $0.contains("Target failed")
                        }
                        #expect(untrusted.contains("TLS"), "\(untrusted)")
                        let busy = try await relay.logs.waitFor("the refused publish") {
                            $0.contains("name=busy") && $0.contains("Target failed")
                        }
                        #expect(
                            busy.contains("publish refused") && busy.contains("NetStream.Publish.BadName"),
                            "\(busy)"
                        )
                        let exit = await ffmpeg.waitForExit()
                        #expect(exit.succeeded, "ffmpeg: \(exit)")
                    }
                    // The same failure at every retry is one warning, then info lines.
                    let unreachable: [String] = relay.logs.lines.filter { $0.contains("name=unreachable") }
                    let warnings = unreachable.filter { $0.contains("Target failed; reconnecting") }.count
                    let repeats = unreachable.filter { $0.contains("Target still failing; reconnecting") }.count
                    #expect(warnings == 1 && repeats >= 1, "\(unreachable)")
                    try await nginx.waitForPublishEnded(app: "fine", stream: fineKey, timeout: .seconds(20))
                    let keys = targets.compactMap { $0.streamKey?.revealed }
                    #expect(
                        !relay.logs.lines.contains { line in keys.contains { line.contains($0) } },
                        "a target key was logged"
                    )
                }
                squatter.kill()
            }
            try await Self.expectComplete(nginx.recordingPath(app: "fine", stream: fineKey), seconds: 4)
        }
    }
}

extension RelayEndToEndTests {
    /// Reads the stream's status until the target is as `wanted` says (10 s at most) and returns the target's status.
    static func targetStatus(
        _ relay: RelayUnderTest,
        _ name: String,
        until wanted: (StreamStatus.Target) -> Bool
    ) async throws -> StreamStatus.Target {
        let deadline = ContinuousClock.now + .seconds(10)
        var last: StreamStatus.Target?
        while ContinuousClock.now < deadline {
            last = try await relay.streamStatus().targets.first { $0.name == name }
            if let last, wanted(last) {
                return last
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("target \(name) did not reach the wanted state; last: \(last.map { "\($0)" } ?? "none")")
    }
}

/// A TCP client that sends raw bytes, for the bad-input tests.
enum RawClient {
    static func connect(port: Int) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Runs `body` while holding a connection the server has admitted: it has answered C0+C1 with S0+S1, which a
    /// refused connection never gets. Connecting alone proves nothing: the kernel completes the TCP handshake before
    /// the server accepts, and a server with several event loops may take up two waiting connections in either
    /// order.
    static func withAdmittedConnection(port: Int, _ body: () async throws -> Void) async throws {
        try await self.connect(port: port).executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: [3] + [UInt8](repeating: 0, count: 1536)))
            var received = 0
            for try await buffer in inbound {
                received += buffer.readableBytes
                if received >= 1 + 1536 {
                    break
                }
            }
            guard received >= 1 + 1536 else {
                throw TestFailure("the server closed the connection instead of answering its handshake")
            }
            try await body()
        }
    }

    /// Sends the bytes and waits until the server closes the connection. A server that closes before reading them
    /// (a refused connection) makes the kernel send a reset instead of an end of stream, and one that closes at once
    /// may leave nothing to write to: those are closes too.
    static func sendThenAwaitClose(port: Int, bytes: [UInt8]) async throws {
        let channel = try await self.connect(port: port)
        try await channel.executeThenClose { inbound, outbound in
            do {
                try await outbound.write(ByteBuffer(bytes: bytes))
                for try await _ in inbound {}
            } catch let error as IOError where error.errnoCode == ECONNRESET || error.errnoCode == EPIPE {
                // Closed with our bytes unread.
            } catch ChannelError.ioOnClosedChannel {
                // Closed before our bytes were written (a refusal can be that quick).
            }
        }
    }

    /// Sends the bytes and closes from our side.
    static func sendThenClose(port: Int, bytes: [UInt8]) async throws {
        let channel = try await self.connect(port: port)
        try await channel.executeThenClose { _, outbound in
            try await outbound.write(ByteBuffer(bytes: bytes))
        }
    }

    /// A plain handshake (C0, a zero-version C1, C2 echoing S1), then the bytes; waits for the server to close.
    static func handshakeThenSend(port: Int, bytes: [UInt8]) async throws {
        let channel = try await self.connect(port: port)
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: [3] + [UInt8](repeating: 0, count: 1536)))
            var received = ByteBuffer()
            var iterator = inbound.makeAsyncIterator()
            while received.readableBytes < 3073, var chunk = try await iterator.next() {
                received.writeBuffer(&chunk)
            }
            let s1 = try #require(received.getSlice(at: received.readerIndex + 1, length: 1536))
            try await outbound.write(s1)
            try await outbound.write(ByteBuffer(bytes: bytes))
            while try await iterator.next() != nil {}
        }
    }
}
