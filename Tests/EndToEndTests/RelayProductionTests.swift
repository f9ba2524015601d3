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
import NIOHTTP1
import PeerTestSupport
import Relay
import RelayAPI
import ServiceLifecycle
import Synchronization
import Testing

/// What streamers and operators expect of a relay in production, between real peers: ffmpeg publishes, nginx-rtmp
/// receives, ffprobe checks. Serialized: each test runs encoders and servers on a 2-core machine.
@Suite("Relay in production", .serialized, .timeLimit(.minutes(3)))
struct RelayProductionTests {
    @Test("Two streams through one relay at once, each to its own target, isolated")
    func twoStreams() async throws {
        try await withNginxRTMP(applications: ["a", "b"]) { nginx in
            let (keyA, keyB, targetA, targetB) = (
                makeTestKey("ia"), makeTestKey("ib"), makeTestKey("ta"), makeTestKey("tb")
            )
            var configuration = RelayConfiguration(streams: [
                StreamConfiguration(
                    name: "alpha",
                    app: "live",
                    authorization: .key(Secret(keyA)),
                    targets: [try PushTargetConfiguration.nginx(nginx, app: "a", key: targetA)]
                ),
                StreamConfiguration(
                    name: "beta",
                    app: "studio",
                    authorization: .key(Secret(keyB)),
                    targets: [try PushTargetConfiguration.nginx(nginx, app: "b", key: targetB)]
                ),
            ])
            configuration.drainTimeout = .seconds(5)
            try await withRelay(configuration: configuration) { relay in
                async let first = FFmpeg.withPublisher(to: relay.publishURL(key: keyA, app: "live"), duration: 10) {
                    await $0.waitForExit()
                }
                async let second = FFmpeg.withPublisher(to: relay.publishURL(key: keyB, app: "studio"), duration: 10) {
                    await $0.waitForExit()
                }
                try await nginx.waitForPublishStarted(app: "a", stream: targetA)
                try await nginx.waitForPublishStarted(app: "b", stream: targetB)
                // Both publishers run for 10 s: long enough that a loaded machine still sees them live together.
                let statuses = try JSONDecoder().decode(
                    [StreamStatus].self,
                    from: Data(try await relay.http(.GET, "/api/v1/streams").body.utf8)
                )
                #expect(statuses.map(\.name) == ["alpha", "beta"])
                #expect(statuses.allSatisfy { $0.state == "live" })
                // The publisher's address as people write it, not NIO's `[IPv4]127.0.0.1/127.0.0.1:PORT`.
                #expect(statuses.allSatisfy { $0.publisher?.remoteAddress.hasPrefix("127.0.0.1:") == true })
                let (exitA, exitB) = try await (first, second)
                #expect(exitA.succeeded && exitB.succeeded, "ffmpeg: \(exitA) \(exitB)")
                try await nginx.waitForPublishEnded(app: "a", stream: targetA, timeout: .seconds(20))
                try await nginx.waitForPublishEnded(app: "b", stream: targetB, timeout: .seconds(20))
                #expect(!relay.logs.lines.contains { $0.contains(keyA) || $0.contains(keyB) })
            }
            try await RelayEndToEndTests.expectComplete(nginx.recordingPath(app: "a", stream: targetA), seconds: 10)
            try await RelayEndToEndTests.expectComplete(nginx.recordingPath(app: "b", stream: targetB), seconds: 10)
        }
    }

    @Test("Target control from a client outside --control-from is refused with 403 and the reason; reading is not")
    func targetControlOutsideControlFrom() async throws {
        let unreachable = try freeTCPPort()
        let target = PushTargetConfiguration(
            name: "only",
            url: try RTMPURL(parsing: "rtmp://127.0.0.1:\(unreachable)/live"),
            streamKey: Secret(makeTestKey("t"))
        )
        var configuration = RelayConfiguration(
            host: "127.0.0.1",
            port: 0,
            app: "live",
            streamKey: Secret(makeTestKey("ingest")),
            targets: [target]
        )
        configuration.reconnectInitial = .seconds(1)
        try await withRelay(configuration: configuration, controlFrom: [try IPRange("10.0.0.0/8")]) { relay in
            let refused = try await relay.http(.POST, "/api/v1/streams/default/targets/only/disable")
            #expect(refused.status == 403)
            #expect(refused.body.contains("allowed from 10.0.0.0/8 only (--control-from)"), "\(refused.body)")
            #expect(refused.body.contains("came from 127.0.0.1"), "\(refused.body)")
            #expect(try await relay.streamStatus().targets.first { $0.name == "only" }?.state != "disabled")
            #expect(relay.logs.lines.contains { $0.contains("Target control refused") && $0.contains("127.0.0.1") })
        }
    }

    @Test("A target disabled and re-enabled over HTTP while live; the other target's recording has no gap")
    func toggleTarget() async throws {
        try await withNginxRTMP(applications: ["steady", "toggled"]) { nginx in
            let (steadyKey, toggledKey) = (makeTestKey("s"), makeTestKey("t"))
            let targets = [
                try PushTargetConfiguration.nginx(nginx, app: "steady", key: steadyKey),
                try PushTargetConfiguration.nginx(nginx, app: "toggled", key: toggledKey),
            ]
            try await withRelay(targets: targets) { relay in
                try await FFmpeg.withPublisher(to: relay.publishURL(), duration: 14) { ffmpeg in
                    try await nginx.waitForPublishStarted(app: "toggled", stream: toggledKey)
                    #expect(
                        try await relay.http(.POST, "/api/v1/streams/default/targets/toggled/disable").status == 200
                    )
                    try await nginx.waitForPublishEnded(app: "toggled", stream: toggledKey, timeout: .seconds(10))
                    #expect(try await relay.streamStatus().targets.first { $0.name == "toggled" }?.state == "disabled")
                    #expect(try await relay.http(.POST, "/api/v1/streams/default/targets/toggled/enable").status == 200)
                    try await nginx.waitForPublishStarted(app: "toggled", stream: toggledKey)
                    #expect(try await relay.http(.POST, "/api/v1/streams/default/targets/nope/enable").status == 404)
                    let exit = await ffmpeg.waitForExit()
                    #expect(exit.succeeded, "ffmpeg: \(exit)")
                }
                try await nginx.waitForPublishEnded(app: "steady", stream: steadyKey, timeout: .seconds(20))
                try await nginx.waitForPublishEnded(app: "toggled", stream: toggledKey, count: 2, timeout: .seconds(20))
            }
            let steady = nginx.recordingPath(app: "steady", stream: steadyKey)
            try await RelayEndToEndTests.expectComplete(steady, seconds: 14)
            let gap = try await largestVideoGap(steady)
            #expect(gap < 0.25, "largest gap in the steady target's video: \(gap) s")
            // nginx-rtmp overwrote the toggled target's recording with the second publish: it starts at a keyframe.
            let errors = try await FFprobe.decodeErrors(nginx.recordingPath(app: "toggled", stream: toggledKey))
            #expect(errors.isEmpty, "decode errors after re-enabling: \(errors)")
        }
    }

    @Test("A black-holed target (accepting, never reading) slows neither the ingest nor the other target")
    func blackHoledTarget() async throws {
        try await withNginxRTMP(applications: ["steady"]) { steady in
            let hole = try await BlackHoleRTMPServer.start()
            let steadyKey = makeTestKey("s")
            let targets = [
                try PushTargetConfiguration.nginx(steady, app: "steady", key: steadyKey),
                PushTargetConfiguration(
                    name: "hole",
                    url: try RTMPURL(parsing: hole.url(app: "hole")),
                    streamKey: Secret(makeTestKey("h"))
                ),
            ]
            let seconds = 14.0
            do {
                try await withRelay(
                    targets: targets,
                    configure: {
                        $0.targetQueueBytes = 256 << 10
                        $0.targetQueueDuration = .seconds(2)
                        $0.targetMaxBehind = .seconds(3)
                        $0.targetSendBufferBytes = 16 << 10
                    }
                ) { relay in
                    let started = ContinuousClock.now
                    try await FFmpeg.withPublisher(to: relay.publishURL(), duration: seconds) { ffmpeg in
                        var published = hole.published.makeAsyncIterator()
                        _ = await published.next()
                        _ = try await relay.logs.waitFor(
                            "the hole disconnected for staying behind",
                            timeout: .seconds(30)
                        ) {
                            $0.contains("name=hole") && $0.contains("stayed behind")
                        }
                        // The drop counter moves by what was dropped, however often it is scraped.
                        _ = try await relay.http(.GET, "/metrics")
                        let metrics = try await relay.http(.GET, "/metrics").body
                        let counted = metricValue(
                            metrics,
                            #"liverelay_target_dropped_messages_total{stream="default",target="hole"}"#
                        )
                        let dropped = try #require(try await relay.streamStatus().targets.first { $0.name == "hole" })
                            .droppedMessages
                        #expect(
                            (counted ?? 0) > 0 && Int(counted ?? 0) <= dropped,
                            "counter \(counted ?? -1), stats \(dropped)"
                        )
                        let exit = await ffmpeg.waitForExit()
                        #expect(exit.succeeded, "ffmpeg: \(exit)")
                    }
                    // ffmpeg sends at the media's own pace (-re): had the relay stopped reading, it would have blocked.
                    let elapsed = ContinuousClock.now - started
                    #expect(elapsed < .seconds(seconds * 1.25 + 3), "publishing \(seconds) s took \(elapsed)")
                    try await steady.waitForPublishEnded(app: "steady", stream: steadyKey, timeout: .seconds(20))
                    let drops = relay.logs.lines.filter { $0.contains("name=hole") && $0.contains("stayed behind") }
                    #expect(!drops.isEmpty)
                }
            } catch {
                await hole.stop()
                throw error
            }
            await hole.stop()
            let path = steady.recordingPath(app: "steady", stream: steadyKey)
            try await RelayEndToEndTests.expectComplete(path, seconds: seconds)
            let gap = try await largestVideoGap(path)
            #expect(gap < 0.25, "largest gap in the steady target's video: \(gap) s")
        }
    }

    @Test("An encoder that hangs and reconnects with its key takes over its stale session at once")
    func takeover() async throws {
        try await withNginxRTMP(applications: ["target"]) { nginx in
            let targetKey = makeTestKey("t")
            try await withRelay(targets: [try PushTargetConfiguration.nginx(nginx, app: "target", key: targetKey)]) {
                relay in
                let stale = try FFmpeg.publish(to: relay.publishURL(), duration: 60)
                defer { stale.kill() }
                try await nginx.waitForPublishStarted(app: "target", stream: targetKey)
                // The encoder's network dies without a FIN: its connection stays open and silent.
                stale.signal(SIGSTOP)
                let started = ContinuousClock.now
                let exit = try await FFmpeg.withPublisher(to: relay.publishURL(), duration: 6) { fresh in
                    _ = try await relay.logs.waitFor("the takeover") { $0.contains("takes over the stream") }
                    // Connection 1 is the stale encoder, 2 the reconnecting one.
                    _ = try await relay.logs.waitFor("the new publisher live") {
                        $0.contains("Publisher is live") && $0.contains("rtmp.connection.id=2 ")
                    }
                    // From the new encoder's process start (which includes ffmpeg starting up and its handshake)
                    // to its publish accepted. Reported, and bounded loosely to catch a takeover that waits.
                    let takeover = ContinuousClock.now - started
                    print("takeover: from the new encoder's start to its publish accepted: \(takeover)")
                    #expect(takeover < .seconds(5))
                    return await fresh.waitForExit()
                }
                #expect(exit.succeeded, "the reconnecting encoder failed: \(exit)")
                #expect(relay.logs.lines.filter { $0.contains("Publisher is live") }.count == 2)
                try await nginx.waitForPublishEnded(app: "target", stream: targetKey, count: 2, timeout: .seconds(20))
                stale.signal(SIGCONT)
            }
            try await RelayEndToEndTests.expectComplete(
                nginx.recordingPath(app: "target", stream: targetKey),
                seconds: 6
            )
        }
    }

    @Test("A webhook admits on 2xx only; refused and unreachable webhooks refuse with the reason logged")
    func webhook() async throws {
        let good = makeTestKey("good")
        let calls = Mutex<[(app: String, clientAddress: String)]>([])
        let router = Router()
        router.post("auth") { request, context -> HTTPResponse.Status in
            struct Call: Decodable {
                var app: String
                var name: String
                var clientAddress: String
            }
            let call = try await request.decode(as: Call.self, context: context)
            calls.withLock { $0.append((call.app, call.clientAddress)) }
            return call.name == good ? .noContent : .forbidden
        }
        let (hookPorts, hookPort) = AsyncStream<Int>.makeStream()
        let hook = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: {
                hookPort.yield($0.localAddress?.port ?? 0)
            }
        )
        try await withNginxRTMP(applications: ["target"]) { nginx in
            let targetKey = makeTestKey("t")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await hook.runService() }
                var ports = hookPorts.makeAsyncIterator()
                let port = try #require(await ports.next())
                let unreachable = try freeTCPPort()
                let configuration = RelayConfiguration(streams: [
                    StreamConfiguration(
                        name: "hooked",
                        app: "live",
                        authorization: .webhook(url: "http://127.0.0.1:\(port)/auth", timeout: .seconds(2)),
                        targets: [try PushTargetConfiguration.nginx(nginx, app: "target", key: targetKey)]
                    ),
                    StreamConfiguration(
                        name: "orphan",
                        app: "other",
                        authorization: .webhook(url: "http://127.0.0.1:\(unreachable)/auth", timeout: .seconds(2))
                    ),
                ])
                try await withRelay(configuration: configuration) { relay in
                    let refused = try await FFmpeg.withPublisher(
                        to: relay.publishURL(key: makeTestKey("bad")),
                        duration: 3
                    ) { await $0.waitForExit() }
                    #expect(!refused.succeeded)
                    _ = try await relay.logs.waitFor("the webhook refusal") {
                        $0.contains("Publish refused by the webhook") && $0.contains("answered 403")
                    }
                    let orphan = try await FFmpeg.withPublisher(
                        to: relay.publishURL(key: good, app: "other"),
                        duration: 3
                    ) { await $0.waitForExit() }
                    #expect(!orphan.succeeded)
                    _ = try await relay.logs.waitFor("the unreachable webhook") {
                        $0.contains("Publish refused by the webhook") && $0.contains("unreachable")
                    }
                    let admitted = try await FFmpeg.withPublisher(to: relay.publishURL(key: good), duration: 4) {
                        await $0.waitForExit()
                    }
                    #expect(admitted.succeeded, "ffmpeg: \(admitted)")
                    try await nginx.waitForPublishEnded(app: "target", stream: targetKey, timeout: .seconds(20))
                    #expect(!relay.logs.lines.contains { $0.contains(good) })
                }
                group.cancelAll()
            }
            let made = calls.withLock { $0 }
            #expect(made.map(\.app) == ["live", "live"])
            // The encoder's IP address alone, as webhook receivers (allowlists, geo lookups) expect it.
            #expect(made.map(\.clientAddress) == ["127.0.0.1", "127.0.0.1"])
            try await RelayEndToEndTests.expectComplete(
                nginx.recordingPath(app: "target", stream: targetKey),
                seconds: 4
            )
        }
    }

    @Test("`liverelay relay --webhook URL` starts on flags alone and admits whom the webhook admits")
    func webhookOnFlagsAlone() async throws {
        let names = Mutex<[String]>([])
        let router = Router()
        router.post("auth") { request, context -> HTTPResponse.Status in
            struct Call: Decodable { var name: String }
            let call = try await request.decode(as: Call.self, context: context)
            names.withLock { $0.append(call.name) }
            return call.name.hasPrefix("admit-") ? .noContent : .forbidden
        }
        let (hookPorts, hookPort) = AsyncStream<Int>.makeStream()
        let hook = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { hookPort.yield($0.localAddress?.port ?? 0) }
        )
        try await withNginxRTMP(applications: ["target"]) { nginx in
            let targetKey = makeTestKey("t")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await hook.runService() }
                var ports = hookPorts.makeAsyncIterator()
                let port = try #require(await ports.next())
                try await RelayChildProcess.with(
                    targets: [("nginx", nginx.url(app: "target") + "/" + targetKey)],
                    webhook: "http://127.0.0.1:\(port)/auth"
                ) { relay in
                    let base = "rtmp://127.0.0.1:\(relay.rtmpPort)/live/"
                    let refused = try await FFmpeg.withPublisher(to: base + "refuse-me", duration: 2) {
                        await $0.waitForExit()
                    }
                    #expect(!refused.succeeded)
                    let admitted = try await FFmpeg.withPublisher(to: base + "admit-me", duration: 3) {
                        await $0.waitForExit()
                    }
                    #expect(admitted.succeeded, "ffmpeg: \(admitted)")
                    try await nginx.waitForPublishEnded(app: "target", stream: targetKey, timeout: .seconds(20))
                }
                group.cancelAll()
            }
            #expect(names.withLock { $0 } == ["refuse-me", "admit-me"])
            try await RelayEndToEndTests.expectComplete(
                nginx.recordingPath(app: "target", stream: targetKey),
                seconds: 3
            )
        }
    }

    @Test("Ingest is measured (codec, size, frame rate, bitrate, keyframe interval) and a broken rule is reported")
    func ingestChecks() async throws {
        var configuration = RelayConfiguration(streamKey: Secret(makeTestKey("i")))
        configuration.streams[0].rules.maxKeyframeInterval = .seconds(2)
        guard case .key(let key) = configuration.streams[0].authorization else {
            Issue.record("expected a key")
            return
        }
        try await withRelay(configuration: configuration, streamKey: key.revealed) { relay in
            // A 4-second GOP, where the rule allows 2.
            try await FFmpeg.withPublisher(to: relay.publishURL(), duration: 12, keyframeInterval: 4) { ffmpeg in
                _ = try await relay.logs.waitFor("the broken rule", timeout: .seconds(15)) {
                    $0.contains("Ingest rule broken")
                }
                let status = try await relay.streamStatus()
                let ingest = try #require(status.ingest)
                #expect(
                    ingest.videoCodec == "avc" || ingest.videoCodec?.lowercased().contains("avc") == true,
                    "\(ingest)"
                )
                #expect(ingest.width == 320 && ingest.height == 240)
                #expect(abs(ingest.frameRate - 25) < 3, "frame rate \(ingest.frameRate)")
                #expect(ingest.bitrate > 10_000, "bitrate \(ingest.bitrate)")
                #expect(abs((ingest.keyframeIntervalSeconds ?? 0) - 4) < 0.2)
                #expect(ingest.audioCodec?.lowercased().contains("aac") == true)
                #expect(status.warnings.map(\.rule) == ["maxKeyframeInterval"])
                let metrics = try await relay.http(.GET, "/metrics").body
                #expect(
                    metrics.contains(#"liverelay_ingest_rule_broken{stream="default",rule="maxKeyframeInterval"} 1"#),
                    "\(metrics)"
                )
                #expect(metrics.contains(#"liverelay_publisher_connected{stream="default"} 1"#))
                #expect(metrics.contains("liverelay_ingest_bytes_total"))
                #expect(!metrics.contains(relay.streamKey))
                ffmpeg.kill()
            }
        }
    }

    @Test("Health, readiness and metrics endpoints answer")
    func endpoints() async throws {
        try await withRelay(targets: []) { relay in
            #expect(try await relay.http(.GET, "/healthz").status == 200)
            #expect(try await relay.http(.GET, "/readyz").status == 200)
            let stream = try await relay.streamStatus()
            #expect(stream.state == "idle")
            #expect(try await relay.http(.GET, "/api/v1/stream").status == 200)
            #expect(try await relay.http(.GET, "/api/v1/streams/nope").status == 404)
        }
    }

    @Test("Editing the config file adds a target to a live stream without touching the other")
    func reloadAddsTarget() async throws {
        try await withNginxRTMP(applications: ["first", "second"]) { nginx in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "liverelay-reload-\(UUID().uuidString)"
            )
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let (ingest, firstKey, secondKey) = (makeTestKey("i"), makeTestKey("f"), makeTestKey("s"))
            func yaml(_ targets: [(String, String, String)]) -> String {
                """
                apiVersion: v1
                kind: Secret
                metadata: { name: keys }
                stringData: { ingest: \(ingest), first: \(firstKey), second: \(secondKey) }
                ---
                apiVersion: liverelay.io/v1alpha1
                kind: LiveStream
                metadata: { name: show }
                spec:
                  ingest: { streamKeySecretRef: { name: keys, key: ingest } }
                  targets:
                """
                    + targets.map {
                        "\n    - { name: \($0.0), url: \"\(nginx.url(app: $0.1))\", streamKeySecretRef: { name: keys, key: \($0.2) } }"
                    }.joined() + "\n"
            }
            let file = directory.appendingPathComponent("streams.yaml").path
            try yaml([("first", "first", "first")]).write(toFile: file, atomically: true, encoding: .utf8)
            let updated = yaml([("first", "first", "first"), ("second", "second", "second")])
            let configuration = try RelayConfiguration.load(yamlFile: file, secretsDirectory: directory.path)
            try await withRelay(
                configuration: configuration,
                streamKey: ingest,
                extraServices: { server, logger in
                    [
                        ConfigurationReloader(
                            path: file,
                            secretsDirectory: directory.path,
                            relay: server,
                            logger: logger,
                            pollInterval: .milliseconds(200)
                        )
                    ]
                }
            ) { relay in
                try await FFmpeg.withPublisher(to: relay.publishURL(key: ingest), duration: 12) { ffmpeg in
                    try await nginx.waitForPublishStarted(app: "first", stream: firstKey)
                    try updated.write(toFile: file, atomically: true, encoding: .utf8)
                    _ = try await relay.logs.waitFor("the reload") { $0.contains("Configuration reloaded") }
                    try await nginx.waitForPublishStarted(app: "second", stream: secondKey)
                    let exit = await ffmpeg.waitForExit()
                    #expect(exit.succeeded, "ffmpeg: \(exit)")
                }
                try await nginx.waitForPublishEnded(app: "first", stream: firstKey, timeout: .seconds(20))
                try await nginx.waitForPublishEnded(app: "second", stream: secondKey, timeout: .seconds(20))
                #expect(
                    nginx.finishedSessions().filter { $0.app == "first" }.count == 1,
                    "the first target was restarted"
                )
            }
            let first = nginx.recordingPath(app: "first", stream: firstKey)
            try await RelayEndToEndTests.expectComplete(first, seconds: 12)
            #expect(try await largestVideoGap(first) < 0.25)
            #expect(try await FFprobe.decodeErrors(nginx.recordingPath(app: "second", stream: secondKey)).isEmpty)
        }
    }

    @Test("A key Secret rotated as kubelet rotates a mounted one: the relay takes the new key, refuses the old")
    func mountedKeyRotation() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "liverelay-rotate-\(UUID().uuidString)"
        )
        defer { try? FileManager.default.removeItem(at: directory) }
        // A mounted Secret as kubelet lays it out: the key a symlink into `..data`, itself a symlink to the
        // current timestamped directory, swapped atomically on an update.
        let secret = directory.appendingPathComponent("secrets/show-stream-key")
        @Sendable func mount(_ key: String, version: Int) throws {
            let data = secret.appendingPathComponent("..v\(version)")
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
            try key.write(to: data.appendingPathComponent("streamKey"), atomically: true, encoding: .utf8)
            let next = secret.appendingPathComponent("..data_tmp").path
            try FileManager.default.createSymbolicLink(atPath: next, withDestinationPath: "..v\(version)")
            #expect(rename(next, secret.appendingPathComponent("..data").path) == 0)
            let link = secret.appendingPathComponent("streamKey").path
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == nil {
                try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "..data/streamKey")
            }
        }
        let (old, new) = (makeTestKey("old"), makeTestKey("new"))
        try mount(old, version: 1)
        let file = directory.appendingPathComponent("streams.yaml").path
        try """
        apiVersion: liverelay.io/v1alpha1
        kind: LiveStream
        metadata: { name: show }
        spec:
          ingest: { streamKeySecretRef: { name: show-stream-key, key: streamKey } }

        """.write(toFile: file, atomically: true, encoding: .utf8)
        let secrets = directory.appendingPathComponent("secrets").path
        let configuration = try RelayConfiguration.load(yamlFile: file, secretsDirectory: secrets)
        let reloader: @Sendable (RelayServer, Logger) -> [any Service] = { server, logger in
            [
                ConfigurationReloader(
                    path: file,
                    secretsDirectory: secrets,
                    relay: server,
                    logger: logger,
                    pollInterval: .milliseconds(100)
                )
            ]
        }
        try await withRelay(configuration: configuration, streamKey: old, extraServices: reloader) { relay in
            let before = try await FFmpeg.publish(to: relay.publishURL(key: old), duration: 1).waitForExit()
            #expect(before.succeeded, "the first key before the rotation: \(before)")
            try mount(new, version: 2)
            _ = try await relay.logs.waitFor("the reload") { $0.contains("Configuration reloaded") }
            let stale = try await FFmpeg.publish(to: relay.publishURL(key: old), duration: 1).waitForExit()
            #expect(!stale.succeeded, "the rotated-out key still publishes")
            let fresh = try await FFmpeg.publish(to: relay.publishURL(key: new), duration: 1).waitForExit()
            #expect(fresh.succeeded, "the new key: \(fresh)")
            #expect(!relay.logs.lines.contains { $0.contains(old) || $0.contains(new) })
        }
    }

    @Test("A ConfigMap update, as kubelet makes it (the file a symlink into a swapped ..data), reloads the relay")
    func mountedConfigMapUpdate() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "liverelay-configmap-\(UUID().uuidString)"
        )
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("config")
        let secrets = directory.appendingPathComponent("secrets/show-stream-key")
        let key = makeTestKey("ingest")
        // A mounted volume as kubelet lays it out: each file a symlink into `..data`, itself a symlink to the current
        // timestamped directory, swapped atomically on an update.
        @Sendable func mount(_ files: [String: String], at volume: URL, version: Int) throws {
            let data = volume.appendingPathComponent("..v\(version)")
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
            for (name, contents) in files {
                try contents.write(to: data.appendingPathComponent(name), atomically: true, encoding: .utf8)
            }
            let next = volume.appendingPathComponent("..data_tmp").path
            try FileManager.default.createSymbolicLink(atPath: next, withDestinationPath: "..v\(version)")
            #expect(rename(next, volume.appendingPathComponent("..data").path) == 0)
            for name in files.keys {
                let link = volume.appendingPathComponent(name).path
                if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == nil {
                    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "..data/\(name)")
                }
            }
        }
        @Sendable func document(enabled: Bool) -> String {
            """
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: show }
            spec:
              ingest: { streamKeySecretRef: { name: show-stream-key, key: streamKey } }
              targets: [ { name: one, url: "rtmp://127.0.0.1:9/live/one", enabled: \(enabled) } ]

            """
        }
        try mount(["streamKey": key], at: secrets, version: 1)
        try mount(["livestream.yaml": document(enabled: true)], at: config, version: 1)
        let file = config.appendingPathComponent("livestream.yaml").path
        let secretsPath = directory.appendingPathComponent("secrets").path
        let configuration = try RelayConfiguration.load(yamlFile: file, secretsDirectory: secretsPath)
        let reloader: @Sendable (RelayServer, Logger) -> [any Service] = { server, logger in
            [
                ConfigurationReloader(
                    path: file,
                    secretsDirectory: secretsPath,
                    relay: server,
                    logger: logger,
                    pollInterval: .milliseconds(100)
                )
            ]
        }
        try await withRelay(configuration: configuration, streamKey: key, extraServices: reloader) { relay in
            // The file is a symlink whose own attributes stay as they were: only what it leads to changed.
            try mount(["livestream.yaml": document(enabled: false)], at: config, version: 2)
            _ = try await relay.logs.waitFor("the reload") { $0.contains("Configuration reloaded") }
        }
    }

    @Test("SIGTERM during a live publish: the relay drains, ends the stream cleanly, and every recording decodes")
    func sigtermDrains() async throws {
        let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/liverelay").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the package first: \(binary)")
        try await withNginxRTMP(applications: ["one", "two"]) { nginx in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "liverelay-term-\(UUID().uuidString)"
            )
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let (ingest, oneKey, twoKey) = (makeTestKey("i"), makeTestKey("o"), makeTestKey("t"))
            for (name, value) in [("ingest", ingest), ("one", oneKey), ("two", twoKey)] {
                try value.write(toFile: directory.appendingPathComponent(name).path, atomically: true, encoding: .utf8)
            }
            let (port, httpPort) = (try freeTCPPort(), try freeTCPPort())
            let relay = try RunningProcess.launch(
                binary,
                arguments: [
                    "relay", "--listen", "127.0.0.1:\(port)", "--http-listen", "127.0.0.1:\(httpPort)",
                    "--stream-key-file", directory.appendingPathComponent("ingest").path,
                    "--target", "one=\(nginx.url(app: "one"))", "--target-key-file",
                    "one=\(directory.appendingPathComponent("one").path)",
                    "--target", "two=\(nginx.url(app: "two"))", "--target-key-file",
                    "two=\(directory.appendingPathComponent("two").path)",
                    "--shutdown-grace", "4",
                ]
            )
            defer { relay.kill() }
            try await waitUntilReady(httpPort: httpPort, process: relay)
            let publisher = try await FFmpeg.withPublisher(to: "rtmp://127.0.0.1:\(port)/live/\(ingest)", duration: 30)
            { ffmpeg in
                try await nginx.waitForPublishStarted(app: "one", stream: oneKey, timeout: .seconds(30))
                try await nginx.waitForPublishStarted(app: "two", stream: twoKey, timeout: .seconds(30))
                relay.terminate()
                // The publisher goes on through the grace period; then the relay ends the stream.
                let exit = await relay.waitForExit()
                #expect(exit.succeeded, "the relay exited with \(exit)")
                #expect(exit.standardError.contains("Shutdown grace period over"), "\(exit.standardError)")
                #expect(!exit.standardError.contains(ingest) && !exit.standardError.contains(oneKey))
                return await ffmpeg.waitForExit()
            }
            #expect(!publisher.succeeded, "the publisher should have been disconnected at the end of the grace period")
            try await nginx.waitForPublishEnded(app: "one", stream: oneKey, timeout: .seconds(10))
            try await nginx.waitForPublishEnded(app: "two", stream: twoKey, timeout: .seconds(10))
            for (app, key) in [("one", oneKey), ("two", twoKey)] {
                let path = nginx.recordingPath(app: app, stream: key)
                let info = try await FFprobe.inspect(path)
                // Live from the first keyframe to the end of the 4-second grace; the encoder's first keyframe takes
                // up to a second or two.
                #expect((info.duration ?? 0) >= 2, "\(app) recorded \(info.duration ?? 0) s")
                #expect(try await FFprobe.decodeErrors(path).isEmpty)
            }
        }
    }
}

/// Polls a relay process's `/readyz` (10 ms doubling to 200 ms, 15 s at most), as a kubelet's readiness probe would.
func waitUntilReady(httpPort: Int, process: RunningProcess) async throws {
    var delay = Duration.milliseconds(10)
    let deadline = ContinuousClock.now + .seconds(15)
    while ContinuousClock.now < deadline {
        if process.hasExited {
            throw TestFailure("the relay exited: \(process.standardErrorSoFar)")
        }
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(httpPort)/readyz")
        request.method = .GET
        if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(2)), response.status == .ok {
            return
        }
        try await Task.sleep(for: delay)
        delay = min(delay * 2, .milliseconds(200))
    }
    throw TestFailure("the relay did not become ready: \(process.standardErrorSoFar)")
}

/// The value of one series in Prometheus text, by its name and labels as printed.
func metricValue(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}
