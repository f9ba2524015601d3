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
import Gateway
import IngestTLS
import LiveStreamModel
import LocalRuntime
import Logging
import PeerTestSupport
import ServiceLifecycle
import Synchronization
import Testing

/// Local mode, run in this process with real `liverelay relay` children, real ffmpeg publishers and nginx-rtmp as
/// the target.
struct LocalUnderTest: Sendable {
    let runtime: LocalRuntime
    let events: Recorder<LocalEvent>
    let logs: LogRecorder
    let streamsFile: String
    let stateDirectory: String

    /// Replaces the streams file; local mode notices the change on its next poll.
    func rewrite(_ yaml: String) throws {
        try yaml.write(toFile: self.streamsFile, atomically: true, encoding: .utf8)
    }

    @discardableResult
    func waitFor(
        _ what: String,
        timeout: Duration = .seconds(30),
        _ predicate: @escaping @Sendable (LocalEvent) -> Bool
    ) async throws -> LocalEvent {
        try await self.events.waitFor(what, timeout: timeout, predicate)
    }

    /// Waits until the gateway listens on every port of `ports`.
    func waitForListening(_ ports: Int...) async throws {
        try await self.waitFor("the gateway listening on \(ports)") {
            if case .listening(let listening) = $0 { return Set(ports).isSubset(of: listening) }
            return false
        }
    }

    /// The relays started so far, by process ID.
    var relayPIDs: [Int32] {
        self.events.entries.compactMap {
            if case .relayStarting(_, let pid) = $0 { return pid }
            return nil
        }
    }
}

/// Runs local mode on `yaml` for the duration of `body`, then stops it and checks that every relay it started has
/// exited and that no secret of the file appeared in the log.
func withLocalMode<Result: Sendable>(
    yaml: String,
    secrets: [String] = [],
    stateDirectory: String? = nil,
    idlePoll: Duration = .milliseconds(200),
    sharedIngestPort: Int? = nil,
    tls: Bool = false,
    _ body: @Sendable (LocalUnderTest) async throws -> Result
) async throws -> Result {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("liverelay-local-\(makeTestKey("t"))")
        .path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var tlsConfiguration: IngestTLSConfiguration?
    if tls {
        let certificate = try await TestCertificate.make(
            certificate: directory + "/tls.crt",
            key: directory + "/tls.key"
        )
        tlsConfiguration = IngestTLSConfiguration(
            certificateChainFile: certificate.certificate,
            privateKeyFile: certificate.key
        )
    }
    let streamsFile = directory + "/streams.yaml"
    try yaml.write(toFile: streamsFile, atomically: true, encoding: .utf8)

    let logs = LogRecorder()
    let logger = Logger(label: "liverelay.local.test") { _ in logs.handler }
    let configuration = LocalConfiguration(
        streamsFile: streamsFile,
        portRange: try PortRange(1024...65535),
        advertisedHost: "127.0.0.1",
        gateway: GatewayConfiguration(
            host: "127.0.0.1",
            holdTimeout: .seconds(30),
            sharedIngestPort: sharedIngestPort,
            tls: tlsConfiguration
        ),
        relayExecutable: try liverelayExecutable(),
        relayArguments: ["--log-level", "notice", "--reconnect-min", "0.2", "--reconnect-max", "1"],
        stateDirectory: stateDirectory ?? directory + "/state",
        pollInterval: idlePoll
    )
    let runtime = try LocalRuntime(configuration: configuration, logger: logger)
    let events = Recorder<LocalEvent>()
    let stream = runtime.events()
    let recording = Task {
        for await event in stream {
            events.append(event)
        }
    }
    let local = LocalUnderTest(
        runtime: runtime,
        events: events,
        logs: logs,
        streamsFile: streamsFile,
        stateDirectory: stateDirectory ?? directory + "/state"
    )
    let group = ServiceGroup(configuration: .init(services: [.init(service: runtime)], logger: logger))
    let result: Result = try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            let result = try await body(local)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
    await recording.value
    let listening = events.entries.compactMap { event -> [Int]? in
        if case .listening(let ports) = event { return ports }
        return nil
    }
    #expect(
        zip(listening, listening.dropFirst()).allSatisfy { $0 != $1 },
        "the gateway's ports were announced again unchanged: \(listening)"
    )
    for pid in local.relayPIDs {
        #expect(kill(pid, 0) != 0, "relay \(pid) still runs after local mode stopped")
    }
    for secret in secrets {
        #expect(!logs.lines.contains { $0.contains(secret) }, "a key appeared in the log")
        #expect(!events.entries.contains { "\($0)".contains(secret) }, "a key appeared in an event")
    }
    return result
}

/// One LiveStream and its Secrets as YAML, pushing to one nginx-rtmp application.
func liveStreamYAML(
    name: String,
    port: Int,
    ingestKey: String,
    target: (url: String, key: String)? = nil,
    extraSpec: String = "",
    scaling: String = "{ minReplicas: 0, idleSeconds: 2 }"
) -> String {
    var yaml = """
        apiVersion: liverelay.io/v1alpha1
        kind: LiveStream
        metadata: { name: \(name) }
        spec:
          ingest:
            port: \(port)
            streamKeySecretRef: { name: \(name)-ingest, key: streamKey }
          scaling: \(scaling)

        """
    if let target {
        yaml += """
              targets:
                - name: nginx
                  url: \(target.url)
                  streamKeySecretRef: { name: \(name)-target, key: key }

            """
    }
    yaml += extraSpec
    yaml += """
        ---
        apiVersion: v1
        kind: Secret
        metadata: { name: \(name)-ingest }
        stringData: { streamKey: "\(ingestKey)" }

        """
    if let target {
        yaml += """
            ---
            apiVersion: v1
            kind: Secret
            metadata: { name: \(name)-target }
            stringData: { key: "\(target.key)" }

            """
    }
    return yaml
}

@Suite("Local mode", .serialized, .timeLimit(.minutes(5)))
struct LocalModeTests {
    private static func expectDecodable(_ path: String, video: Bool = true) async throws {
        let info = try await FFprobe.inspect(path)
        #expect(info.video?.codecName == "h264", "no H.264 video in \(path)")
        #expect((info.video?.frameCount ?? 0) > 10, "too few frames in \(path)")
        let errors = try await FFprobe.decodeErrors(path)
        #expect(errors.isEmpty, "decoding \(path) failed: \(errors)")
    }

    @Test("Cold start: the first publish wakes the relay, goes through without an error, and the relay stops when idle")
    func coldStart() async throws {
        try await withNginxRTMP(applications: ["cold"]) { nginx in
            let port = try freeTCPPort()
            let ingestKey = makeTestKey("ingest")
            let targetKey = makeTestKey("target")
            let yaml = liveStreamYAML(
                name: "cold",
                port: port,
                ingestKey: ingestKey,
                target: (nginx.url(app: "cold"), targetKey)
            )
            try await withLocalMode(yaml: yaml, secrets: [ingestKey, targetKey]) { local in
                try await local.waitFor("the stream added") {
                    if case .streamAdded(let id, let url, _) = $0 {
                        return id.name == "cold" && url == "rtmp://127.0.0.1:\(port)/live"
                    }
                    return false
                }
                #expect(local.relayPIDs.isEmpty, "the relay ran before anyone connected")
                try await local.waitForListening(port)

                let publisher = try FFmpeg.publish(to: "rtmp://127.0.0.1:\(port)/live/\(ingestKey)", duration: 4)
                let exit = await publisher.waitForExit()
                #expect(exit.succeeded, "ffmpeg failed: \(exit)")
                try await nginx.waitForPublishEnded(app: "cold", stream: targetKey)
                try await Self.expectDecodable(nginx.recordingPath(app: "cold", stream: targetKey))
                // The console said that the stream reached its target, from the relay's own report.
                let cold = StreamID(namespace: "default", name: "cold")
                try await local.waitFor("the target reported pushing") {
                    $0 == .targetChanged(cold, .init(name: "nginx", state: "Pushing"))
                }

                #expect(local.relayPIDs.count == 1)
                let statistics = local.runtime.gateway.statistics(for: StreamID(namespace: "default", name: "cold"))
                #expect((statistics?.holdTime ?? .zero) > .zero, "the first connection was not held")
                #expect((statistics?.bytesIn ?? 0) > 100_000)
                try await local.waitFor("the relay stopped when idle") {
                    if case .relayStopped(let id, let reason) = $0 {
                        return id.name == "cold" && reason.hasPrefix("idle")
                    }
                    return false
                }
                try await local.waitFor("the stream idle again") {
                    $0 == .phaseChanged(StreamID(namespace: "default", name: "cold"), .idle)
                }
                let phases = local.events.entries.compactMap { event -> LiveStreamStatus.Phase? in
                    if case .phaseChanged(let id, let phase) = event, id.name == "cold" { return phase }
                    return nil
                }
                #expect(phases == [.idle, .starting, .live, .idle])
            }
        }
    }

    @Test("A target that is down is reported once, with why, while the publisher goes on")
    func targetDown() async throws {
        let port = try freeTCPPort()
        let ingestKey = makeTestKey("ingest")
        let targetKey = makeTestKey("target")
        // Nothing listens on the target's port: every attempt is refused.
        let yaml = liveStreamYAML(
            name: "down",
            port: port,
            ingestKey: ingestKey,
            target: ("rtmp://127.0.0.1:\(try freeTCPPort())/live", targetKey)
        )
        try await withLocalMode(yaml: yaml, secrets: [ingestKey, targetKey]) { local in
            try await local.waitForListening(port)
            let id = StreamID(namespace: "default", name: "down")
            let publisher = try FFmpeg.publish(to: "rtmp://127.0.0.1:\(port)/live/\(ingestKey)", duration: 4)
            let event = try await local.waitFor("the target reported backing off") {
                if case .targetChanged(id, let target) = $0 { return target.state == "BackingOff" }
                return false
            }
            #expect("\(event)".hasPrefix("default/down: target nginx backing off: cannot connect to 127.0.0.1:"))
            let exit = await publisher.waitForExit()
            #expect(exit.succeeded, "ffmpeg failed while its target was down: \(exit)")
            // The relay retried every 0.2 to 1 s for 4 s, with the same error each time: one line, not one per retry.
            let reports = local.events.entries.filter {
                if case .targetChanged(id, _) = $0 { return true }
                return false
            }
            #expect(reports.count == 1, "\(reports.map { "\($0)" })")
        }
    }

    /// Two streams, each with its own key and nginx-rtmp target, published at once by ffmpeg to `url(port, key)`
    /// (the stream's own port and key); both must arrive whole, each through its own relay. `then` goes on with
    /// local mode still running.
    private static func publishTwoStreams(
        sharedIngestPort: Int? = nil,
        tls: Bool = false,
        secrets extra: [String] = [],
        url: @escaping @Sendable (_ port: Int, _ key: String) -> String,
        then: @Sendable (LocalUnderTest) async throws -> Void = { _ in }
    ) async throws {
        try await withNginxRTMP(applications: ["one", "two"]) { nginx in
            let ports = (try freeTCPPort(), try freeTCPPort())
            let keys = (makeTestKey("one"), makeTestKey("two"))
            let targets = (makeTestKey("t1"), makeTestKey("t2"))
            let yaml =
                liveStreamYAML(
                    name: "one",
                    port: ports.0,
                    ingestKey: keys.0,
                    target: (nginx.url(app: "one"), targets.0)
                )
                + "---\n"
                + liveStreamYAML(
                    name: "two",
                    port: ports.1,
                    ingestKey: keys.1,
                    target: (nginx.url(app: "two"), targets.1)
                )
            let secrets = [keys.0, keys.1, targets.0, targets.1] + extra
            try await withLocalMode(yaml: yaml, secrets: secrets, sharedIngestPort: sharedIngestPort, tls: tls) {
                local in
                try await local.waitForListening(ports.0, ports.1)
                if let sharedIngestPort {
                    try await local.waitForListening(sharedIngestPort)
                }
                async let first = FFmpeg.publish(to: url(ports.0, keys.0), duration: 4).waitForExit()
                async let second = FFmpeg.publish(to: url(ports.1, keys.1), duration: 4).waitForExit()
                let exits = try await (first, second)
                #expect(exits.0.succeeded, "ffmpeg on the first stream failed: \(exits.0)")
                #expect(exits.1.succeeded, "ffmpeg on the second stream failed: \(exits.1)")
                try await nginx.waitForPublishEnded(app: "one", stream: targets.0)
                try await nginx.waitForPublishEnded(app: "two", stream: targets.1)
                try await Self.expectDecodable(nginx.recordingPath(app: "one", stream: targets.0))
                try await Self.expectDecodable(nginx.recordingPath(app: "two", stream: targets.1))
                #expect(Set(local.relayPIDs).count == 2)
                try await then(local)
            }
        }
    }

    @Test("Two streams on two ports at once, each to its own target")
    func twoStreams() async throws {
        try await Self.publishTwoStreams { port, key in "rtmp://127.0.0.1:\(port)/live/\(key)" }
    }

    @Test("Two streams published with rtmps:// to cold relays, one on its own port, one on the shared port")
    func rtmps() async throws {
        let shared = try freeTCPPort()
        try await Self.publishTwoStreams(sharedIngestPort: shared, tls: true) { port, key in
            key.hasPrefix("one") ? "rtmps://127.0.0.1:\(port)/live/\(key)" : "rtmps://127.0.0.1:\(shared)/live/\(key)"
        } then: { local in
            // What local mode prints for a stream: the secure URL (rtmp:// works on the same port as well).
            let added = local.events.entries.compactMap { event -> String? in
                if case .streamAdded(_, let url, _) = event { return url }
                return nil
            }
            #expect(added.count == 2 && added.allSatisfy { $0.hasPrefix("rtmps://127.0.0.1:") }, "\(added)")
            #expect(local.events.entries.contains(.sharedIngest(url: "rtmps://127.0.0.1:\(shared)/APP/KEY")))
            #expect(!local.logs.lines.contains { $0.contains("TLS handshake failed") })
        }
    }

    @Test(
        "Two streams through one shared port, each found by its key; a wrong key is refused with the reason"
    )
    func sharedPort() async throws {
        let shared = try freeTCPPort()
        let wrongKey = makeTestKey("wrong")
        // Both relays are cold: each publish is held on the shared port until its own relay is ready.
        try await Self.publishTwoStreams(sharedIngestPort: shared, secrets: [wrongKey]) { _, key in
            "rtmp://127.0.0.1:\(shared)/live/\(key)"
        } then: { local in
            // Counted for its own stream, as on the stream's port (the figure KEDA scales by in a cluster).
            for name in ["one", "two"] {
                let statistics = local.runtime.gateway.statistics(for: StreamID(namespace: "default", name: name))
                #expect((statistics?.bytesIn ?? 0) > 100_000, "\(name): \(String(describing: statistics))")
            }

            // The encoder hears why (ffmpeg prints the server's onStatus description), the log says why without
            // the key, and no relay is woken.
            let relays = local.relayPIDs.count
            let refused = try await FFmpeg.publish(to: "rtmp://127.0.0.1:\(shared)/live/\(wrongKey)", duration: 2)
                .waitForExit()
            #expect(!refused.succeeded)
            // (ffmpeg's output names the URL, key included: not printed here.)
            #expect(refused.standardError.contains("No stream has this key."), "ffmpeg did not show the reason")
            #expect(
                local.logs.lines.contains {
                    $0.contains("Connection refused: unknown stream key for application live")
                }
            )
            #expect(local.relayPIDs.count == relays)
        }
    }

    @Test("A source outside allowedSourceRanges is refused, with a log line that says why, and wakes nothing")
    func refusedSourceRange() async throws {
        let port = try freeTCPPort()
        let key = makeTestKey("ingest")
        let yaml = liveStreamYAML(
            name: "private",
            port: port,
            ingestKey: key,
            extraSpec: "",
            scaling: "{ minReplicas: 0, idleSeconds: 2 }"
        ).replacingOccurrences(
            of: "streamKeySecretRef: { name: private-ingest, key: streamKey }",
            with:
                "streamKeySecretRef: { name: private-ingest, key: streamKey }\n    allowedSourceRanges: [\"10.0.0.0/8\"]"
        )
        try await withLocalMode(yaml: yaml, secrets: [key]) { local in
            try await local.waitForListening(port)
            let exit = try await FFmpeg.publish(to: "rtmp://127.0.0.1:\(port)/live/\(key)", duration: 2).waitForExit()
            #expect(!exit.succeeded, "ffmpeg published from outside the allowed ranges")
            try await local.logs.waitFor("the refusal") {
                $0.contains("Connection refused: source address outside allowedSourceRanges")
                    && $0.contains("gateway.stream=default/private")
            }
            #expect(local.relayPIDs.isEmpty, "a refused connection started the relay")
        }
    }

    @Test("A suspended stream refuses publishers; resuming it in the file lets them in, without a restart")
    func suspendAndResume() async throws {
        try await withNginxRTMP(applications: ["resume"]) { nginx in
            let port = try freeTCPPort()
            let key = makeTestKey("ingest")
            let targetKey = makeTestKey("target")
            let suspended = liveStreamYAML(
                name: "paused",
                port: port,
                ingestKey: key,
                target: (nginx.url(app: "resume"), targetKey),
                extraSpec: "  suspend: true\n"
            )
            try await withLocalMode(yaml: suspended, secrets: [key, targetKey]) { local in
                let id = StreamID(namespace: "default", name: "paused")
                try await local.waitFor("the stream suspended") { $0 == .phaseChanged(id, .suspended) }
                try await local.waitForListening(port)
                let refused = try await FFmpeg.publish(to: "rtmp://127.0.0.1:\(port)/live/\(key)", duration: 2)
                    .waitForExit()
                #expect(!refused.succeeded, "ffmpeg published to a suspended stream")
                try await local.logs.waitFor("the refusal") {
                    $0.contains("Connection refused: the stream is suspended")
                }
                #expect(local.relayPIDs.isEmpty)

                try local.rewrite(suspended.replacingOccurrences(of: "  suspend: true\n", with: "  suspend: false\n"))
                try await local.waitFor("the stream resumed") { $0 == .phaseChanged(id, .idle) }
                let exit = try await FFmpeg.publish(to: "rtmp://127.0.0.1:\(port)/live/\(key)", duration: 3)
                    .waitForExit()
                #expect(exit.succeeded, "ffmpeg failed after resume: \(exit)")
                try await nginx.waitForPublishEnded(app: "resume", stream: targetKey)
                try await Self.expectDecodable(nginx.recordingPath(app: "resume", stream: targetKey))
            }
        }
    }

    @Test("A relay killed mid-stream is restarted, and the encoder's reconnect goes through")
    func relayCrash() async throws {
        try await withNginxRTMP(applications: ["crash"]) { nginx in
            let port = try freeTCPPort()
            let key = makeTestKey("ingest")
            let targetKey = makeTestKey("target")
            let yaml = liveStreamYAML(
                name: "crashy",
                port: port,
                ingestKey: key,
                target: (nginx.url(app: "crash"), targetKey),
                scaling: "{ minReplicas: 0, idleSeconds: 30 }"
            )
            try await withLocalMode(yaml: yaml, secrets: [key, targetKey]) { local in
                let url = "rtmp://127.0.0.1:\(port)/live/\(key)"
                try await local.waitForListening(port)
                try await FFmpeg.withPublisher(to: url, duration: 60) { publisher in
                    try await nginx.waitForPublishStarted(app: "crash", stream: targetKey)
                    let pid = try #require(local.relayPIDs.first)
                    kill(pid, SIGKILL)
                    try await local.waitFor("the crash noticed") {
                        if case .relayCrashed(_, let exit, let restartIn) = $0 {
                            return exit == "killed by signal 9" && restartIn != nil
                        }
                        return false
                    }
                    let exit = await publisher.waitForExit()
                    #expect(!exit.succeeded, "the first encoder did not notice the relay's death")
                }
                // The encoder reconnects, as OBS does after a dropped connection.
                let exit = try await FFmpeg.publish(to: url, duration: 3).waitForExit()
                #expect(exit.succeeded, "the reconnect failed: \(exit)")
                #expect(local.relayPIDs.count == 2, "the relay was not restarted exactly once")
                try await nginx.waitForPublishEnded(app: "crash", stream: targetKey, count: 2)
            }
        }
    }

    @Test("Reloading the file adds, changes and removes streams without touching the others")
    func reload() async throws {
        let ports = (try freeTCPPort(), try freeTCPPort(), try freeTCPPort())
        let keys = (makeTestKey("a"), makeTestKey("b"), makeTestKey("c"))
        let alwaysOn = "{ minReplicas: 1, idleSeconds: 60 }"
        let a = liveStreamYAML(name: "alpha", port: ports.0, ingestKey: keys.0, scaling: alwaysOn)
        let b = liveStreamYAML(name: "beta", port: ports.1, ingestKey: keys.1, scaling: alwaysOn)
        let c = liveStreamYAML(name: "gamma", port: ports.2, ingestKey: keys.2, scaling: alwaysOn)
        try await withLocalMode(yaml: a + "---\n" + b, secrets: [keys.0, keys.1, keys.2]) { local in
            for name in ["alpha", "beta"] {
                try await local.waitFor("\(name) ready") {
                    if case .relayReady(let id, _, _, _) = $0 { return id.name == name }
                    return false
                }
            }
            let alphaPID = try #require(await local.runtime.snapshot().first { $0.id.name == "alpha" }?.relayPID)

            try local.rewrite(a + "---\n" + c)
            try await local.waitFor("beta removed") {
                if case .relayStopped(let id, let reason) = $0 { return id.name == "beta" && reason == "removed" }
                return false
            }
            try await local.waitFor("gamma ready") {
                if case .relayReady(let id, _, _, _) = $0 { return id.name == "gamma" }
                return false
            }
            #expect(await local.runtime.snapshot().first { $0.id.name == "alpha" }?.relayPID == alphaPID)

            // A change the relay must see restarts only that relay.
            try local.rewrite(a.replacingOccurrences(of: "ingest:\n", with: "ingest:\n    app: studio\n") + "---\n" + c)
            try await local.waitFor("alpha restarted") {
                if case .relayStopped(let id, let reason) = $0 { return id.name == "alpha" && reason == "changed" }
                return false
            }
            try await local.waitFor("alpha ready again") {
                if case .relayReady(let id, let pid, _, _) = $0 { return id.name == "alpha" && pid != alphaPID }
                return false
            }
            #expect(
                !local.events.entries.contains {
                    if case .relayStopped(let id, _) = $0 { id.name == "gamma" } else { false }
                }
            )

            // A broken file is reported and changes nothing.
            try local.rewrite(
                "apiVersion: liverelay.io/v1alpha1\nkind: LiveStream\nmetadata: { name: Bad }\nspec: {}\n"
            )
            try await local.waitFor("the reload refused") {
                if case .reloadFailed(let reason) = $0 {
                    return reason.contains("document 1: LiveStream Bad is invalid: metadata.name")
                }
                return false
            }
            let snapshot = await local.runtime.snapshot()
            #expect(snapshot.map(\.id.name) == ["alpha", "gamma"])
            #expect(snapshot.allSatisfy { $0.phase == .idle && $0.relayPID != nil })
        }
    }

    @Test("A missing stream key Secret is generated once, kept private, and reused at the next start")
    func generatedKey() async throws {
        let port = try freeTCPPort()
        let yaml = """
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: fresh, namespace: studio }
            spec:
              ingest: { port: \(port) }

            """
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("liverelay-key-\(makeTestKey("t"))")
            .path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let path = state + "/secrets/studio/fresh-stream-key/streamKey"
        let key: String = try await withLocalMode(yaml: yaml, stateDirectory: state) { local in
            let event = try await local.waitFor("the key generated") {
                if case .keyGenerated = $0 { return true }
                return false
            }
            #expect(
                event
                    == .keyGenerated(
                        StreamID(namespace: "studio", name: "fresh"),
                        secret: "fresh-stream-key",
                        path: path
                    )
            )
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let key = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .newlines)
            #expect(key.count == 64 && key.allSatisfy(\.isHexDigit))
            #expect(!local.logs.lines.contains { $0.contains(key) }, "the generated key appeared in the log")
            return key
        }
        // The next start finds the stored key: nothing is generated, and the key is not printed again.
        try await withLocalMode(yaml: yaml, secrets: [key], stateDirectory: state) { local in
            try await local.waitFor("the stream added with the stored key") {
                $0
                    == .streamAdded(
                        StreamID(namespace: "studio", name: "fresh"),
                        ingestURL: "rtmp://127.0.0.1:\(port)/live",
                        keySource: path
                    )
            }
            #expect(!local.events.entries.contains { if case .keyGenerated = $0 { true } else { false } })
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .newlines) == key)
    }
}
