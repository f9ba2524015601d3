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
public import Console
import Foundation
public import Gateway
public import LiveStreamModel
public import Logging
import NIOCore
import NIOHTTP1
public import RelayAPI
public import ServiceLifecycle
import Synchronization
import TimeSupport

/// Local mode: the streams of one YAML file, each on its own port behind the in-process gateway, each with a
/// `liverelay relay` child process that runs only while someone streams.
///
/// The first connection to a stream's port is held by the gateway, which asks this runtime to start the relay
/// (``GatewayActivator``); the relay announces its port, the route gets an upstream, and the held client is proxied
/// without losing a byte. A relay with no connection for the stream's `idleSeconds` is stopped; one that crashes is
/// restarted (at once, then with a growing delay) while someone needs it. The file is reloaded when it changes:
/// streams that did not change are not touched. Graceful shutdown (Ctrl-C) stops every relay.
public final class LocalRuntime: Service, Sendable {
    public let configuration: LocalConfiguration
    /// The gateway in front of the relays; tests read its counters.
    public let gateway: Gateway
    private let controller: LocalController
    private let logger: Logger

    public init(configuration: LocalConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let routes = GatewayRoutes()
        let controller = LocalController(configuration: configuration, routes: routes, logger: logger)
        self.controller = controller
        self.gateway = try Gateway(
            configuration: configuration.gateway,
            routes: routes,
            activator: LocalActivator(controller: controller),
            logger: logger,
            onListening: { listeners in
                await controller.gatewayListens(on: listeners.keys.sorted())
            }
        )
        controller.gateway.withLock { $0 = self.gateway }
        try FileManager.default.createDirectory(
            atPath: configuration.stateDirectory + "/run",
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
    }

    /// Reads each running relay's targets (`GET /api/v1/stream`, at once for all) and reports what changed: a user
    /// of local mode sees that the stream reaches its targets, or why not, without reading the relays' logs.
    private func readTargets() async {
        let relays = await self.controller.readyRelays()
        await withTaskGroup(of: (LocalController.ReadyRelay, StreamStatus?).self) { group in
            for relay in relays {
                group.addTask {
                    do {
                        let response = try await HTTPClient.shared.execute(
                            HTTPClientRequest(url: "http://127.0.0.1:\(relay.httpPort)/api/v1/stream"),
                            timeout: .seconds(1)
                        )
                        let body = try await response.body.collect(upTo: 1 << 20)
                        guard response.status == .ok else {
                            return (relay, nil)
                        }
                        return (relay, try JSONDecoder().decode(StreamStatus.self, from: Data(body.readableBytesView)))
                    } catch {
                        // Starting or stopping: the next poll reads it again.
                        return (relay, nil)
                    }
                }
            }
            for await (relay, status) in group {
                if let status {
                    await self.controller.relayRead(relay, status: status)
                }
            }
        }
    }

    /// Everything that happens from now on, for the console and for tests.
    public func events() -> AsyncStream<LocalEvent> {
        self.controller.events()
    }

    /// The streams and their state now.
    public func snapshot() async -> [LocalStreamState] {
        await self.controller.snapshot()
    }

    /// The stream's state now, with the last report of its running relay (`nil` while none runs).
    public func state(of id: StreamID) async -> (state: LocalStreamState, relay: StreamStatus?)? {
        await self.controller.state(of: id)
    }

    /// The stream key local mode generated and keeps in the state directory for a Secret missing from the file.
    public func storedKey(namespace: String, secret: String, key: String) -> String? {
        KeyStore(directory: self.configuration.stateDirectory).read(namespace: namespace, secret: secret, key: key)
    }

    /// What changed, for the console: a stream added, changed or removed, its phase, its relay's report.
    public var consoleChanges: Broadcast<ConsoleStreamChange> { self.controller.consoleChanges }

    /// Local mode's HTTP listener is bound to `host` (as given to it, a wildcard included) and `port`: each stream's
    /// preview address is announced (``LocalEvent/previewAvailable(_:url:)``), now and for streams added later.
    public func httpListening(host: String, port: Int, whip: Bool = false) async {
        await self.controller.httpListening(host: host, port: port, whip: whip)
    }

    /// Where a request for the stream's preview goes now.
    func previewTarget(_ id: StreamID) async -> LocalPreviewTarget {
        await self.controller.previewTarget(id)
    }

    public func run() async throws {
        // A file that cannot be used at start is an error for the person starting local mode; later, a bad edit
        // only skips that reload.
        let file = try StreamFile.load(path: self.configuration.streamsFile)
        await self.controller.apply(file, initial: true)
        let initialText = try? String(contentsOfFile: self.configuration.streamsFile, encoding: .utf8)

        await withDiscardingTaskGroup { group in
            group.addTask {
                try? await self.gateway.run()
            }
            group.addTask {
                await cancelWhenGracefulShutdown {
                    // Polled, not watched with inotify: editors replace files in ways (rename, truncate) that a
                    // watch on one inode misses, and a once-a-second read of one small file costs nothing.
                    var lastText = initialText
                    while !Task.isCancelled {
                        try? await Task.sleep(for: self.configuration.pollInterval)
                        if Task.isCancelled { break }
                        await self.controller.tick()
                        await self.readTargets()
                        let text = try? String(contentsOfFile: self.configuration.streamsFile, encoding: .utf8)
                        if text != lastText {
                            lastText = text
                            await self.reload(text)
                        }
                    }
                }
            }
            try? await gracefulShutdown()
            self.logger.info("Local mode stopping: stopping every relay")
            await self.controller.shutdown()
        }
    }

    private func reload(_ text: String?) async {
        guard let text else {
            await self.controller.emit(.reloadFailed("cannot read \(self.configuration.streamsFile)"))
            return
        }
        do {
            let file = try StreamFile.parse(yaml: text, source: self.configuration.streamsFile)
            await self.controller.apply(file, initial: false)
        } catch {
            await self.controller.emit(.reloadFailed("\(error)"))
        }
    }
}

/// One stream as local mode sees it.
public struct LocalStreamState: Sendable, Hashable {
    public var id: StreamID
    public var port: Int?
    public var ingestURL: String?
    public var phase: LiveStreamStatus.Phase
    public var relayPID: Int32?
    public var problem: String?
}

private struct LocalActivator: GatewayActivator {
    let controller: LocalController

    func activate(_ stream: StreamID) async {
        await self.controller.activate(stream)
    }
}

/// The state of every stream and its relay; all changes go through this actor, one at a time.
///
/// The decisions are pure units of their own: each relay's life in ``RelaySupervisor``, the gateway's routes in
/// ``LocalRoutes``, each stream's phase and targets in ``LocalStreamStatus``. This actor performs them: it spawns and
/// signals the processes, runs the timers, publishes the routes and emits the events.
actor LocalController {
    private typealias Supervisor = RelaySupervisor<RelayProcess>

    private struct Managed {
        var stream: LiveStream
        var claimant: PortClaimant
        var port: Int?
        var ranges: [IPRange] = []
        /// Why the stream cannot run; `nil` when it can.
        var problem: String?
        /// The relay's configuration file contents (with the keys it needs).
        var relayConfig: String = ""
        var keySource: String = ""
        /// The stream key, for the gateway's shared ingest port; `nil` for a stream authorized by webhook.
        var ingestKey: GatewayRoute.IngestKey?
        var supervisor: Supervisor
        /// The timer of ``RelaySupervisor/Action/crashed(_:_:restartAfter:)``, while the supervisor is restarting.
        var restartTimer: Task<Void, Never>?
        var status = LocalStreamStatus()
        /// The running relay's last report (`GET /api/v1/stream`); `nil` while no relay is ready.
        var relayStatus: StreamStatus?

        var routeInput: LocalRoutes.Stream {
            LocalRoutes.Stream(
                id: self.stream.id,
                port: self.port,
                problem: self.problem,
                allowedSourceRanges: self.ranges,
                suspended: self.stream.spec.suspend,
                ingestKey: self.ingestKey,
                relayRTMPPort: self.supervisor.readyPorts?.rtmpPort
            )
        }
    }

    private let configuration: LocalConfiguration
    private let routes: GatewayRoutes
    private let logger: Logger
    private let keyStore: KeyStore
    nonisolated let gateway = Mutex<Gateway?>(nil)
    nonisolated let consoleChanges = Broadcast<ConsoleStreamChange>(bufferSize: 256)
    private var streams: [StreamID: Managed] = [:]
    private var sequence = 0
    private var generation: UInt64 = 0
    private struct Subscribers {
        var next: UInt64 = 0
        var continuations: [UInt64: AsyncStream<LocalEvent>.Continuation] = [:]
    }
    /// Outside the actor's state so that subscribing is synchronous: a subscriber misses nothing after it returns.
    private nonisolated let subscribers = Mutex(Subscribers())
    private var exitWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var allocator: PortAllocator
    /// What the gateway last reported listening on; `nil` before its first report.
    private var listeningPorts: [Int]?

    init(configuration: LocalConfiguration, routes: GatewayRoutes, logger: Logger) {
        self.configuration = configuration
        self.routes = routes
        self.logger = logger
        self.keyStore = KeyStore(directory: configuration.stateDirectory)
        self.allocator = PortAllocator(range: configuration.portRange)
    }

    // MARK: Events

    nonisolated func events() -> AsyncStream<LocalEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: LocalEvent.self)
        let id = self.subscribers.withLock { subscribers in
            subscribers.next += 1
            subscribers.continuations[subscribers.next] = continuation
            return subscribers.next
        }
        continuation.onTermination = { _ in
            _ = self.subscribers.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    /// The gateway reports its ports after every route update and bind retry; the console hears of changes only.
    func gatewayListens(on ports: [Int]) {
        guard ports != self.listeningPorts else {
            return
        }
        let before = self.listeningPorts ?? []
        self.listeningPorts = ports
        self.emit(.listening(ports: ports))
        if let shared = self.configuration.gateway.sharedIngestPort, ports.contains(shared), !before.contains(shared) {
            self.emit(.sharedIngest(url: self.ingestURL(port: shared, app: "APP") + "/KEY"))
        }
    }

    func emit(_ event: LocalEvent) {
        // Info, not warning, even for failures: `liverelay local` prints every event to standard output already,
        // and a second copy on standard error would be noise. With --log-level info the log has them all.
        self.logger.info("\(event)")
        for subscriber in self.subscribers.withLock({ Array($0.continuations.values) }) {
            subscriber.yield(event)
        }
        switch event {
        case .streamRemoved(let id):
            self.consoleChanges.yield(.removed(id))
        case .streamAdded(let id, _, _), .streamChanged(let id, _, _), .streamFailed(let id, _),
            .phaseChanged(let id, _), .relayReady(let id, _, _, _), .relayStopped(let id, _),
            .relayCrashed(let id, _, _), .targetChanged(let id, _), .previewAvailable(let id, _):
            self.consoleChanges.yield(.changed(id))
        case .whipAvailable:
            break
        case .keyGenerated, .relayStarting, .listening, .sharedIngest, .reloadFailed, .reloaded:
            break
        }
    }

    // MARK: Previews

    /// Where local mode's HTTP listener answers, once it does (``LocalRuntime/httpListening(host:port:)``).
    private var previewBaseURL: String?
    /// Whether the HTTP listener takes WHIP publishers.
    private var whipEnabled = false

    func httpListening(host: String, port: Int, whip: Bool) {
        // A wildcard address is reached at the host the ingest URLs name.
        let wildcard = host.isEmpty || host == "0.0.0.0" || host == "::"
        self.previewBaseURL = "http://\(Self.urlHost(wildcard ? self.configuration.advertisedHost : host)):\(port)"
        self.whipEnabled = whip
        for id in self.streams.keys.sorted(by: { $0.description < $1.description }) {
            guard let managed = self.streams[id] else { continue }
            if let url = self.whipURL(managed) {
                self.emit(.whipAvailable(id, url: url))
            }
            if let url = self.previewURL(managed) {
                self.emit(.previewAvailable(id, url: url))
            }
        }
    }

    /// The stream's WHIP address, for a stream that can run, once the HTTP listener answers and takes WHIP.
    private func whipURL(_ managed: Managed) -> String? {
        guard self.whipEnabled, let base = self.previewBaseURL, managed.port != nil, managed.problem == nil else {
            return nil
        }
        return "\(base)/whip/\(managed.stream.id.namespace)/\(managed.stream.id.name)"
    }

    /// The stream's preview address, for a stream that can run (it has a port and no problem) and shows a preview,
    /// once the HTTP listener answers.
    private func previewURL(_ managed: Managed) -> String? {
        guard let base = self.previewBaseURL, managed.stream.spec.preview.enabled, managed.port != nil,
            managed.problem == nil
        else {
            return nil
        }
        return "\(base)/preview/\(managed.stream.id.namespace)/\(managed.stream.id.name)/"
    }

    /// Where a request for the stream's preview goes now.
    func previewTarget(_ id: StreamID) -> LocalPreviewTarget {
        guard let managed = self.streams[id] else {
            return .refused(.unknown)
        }
        guard managed.stream.spec.preview.enabled else {
            return .refused(.disabled)
        }
        // A stream without a port has a problem saying why.
        guard managed.problem == nil, let port = managed.port else {
            return .refused(.cannotRun(managed.problem ?? "no port"))
        }
        if let ports = managed.supervisor.readyPorts {
            return .relay(httpPort: ports.httpPort)
        }
        return .notRunning(ingestURL: self.ingestURL(managed.stream, port: port))
    }

    func snapshot() -> [LocalStreamState] {
        self.streams.values.map(self.state).sorted { $0.id.description < $1.id.description }
    }

    func state(of id: StreamID) -> (state: LocalStreamState, relay: StreamStatus?)? {
        guard let managed = self.streams[id] else {
            return nil
        }
        return (self.state(managed), managed.supervisor.readyPorts == nil ? nil : managed.relayStatus)
    }

    private func state(_ managed: Managed) -> LocalStreamState {
        LocalStreamState(
            id: managed.stream.id,
            port: managed.port,
            ingestURL: managed.port.map { self.ingestURL(managed.stream, port: $0) },
            phase: managed.status.phase ?? .idle,
            relayPID: managed.supervisor.relay?.pid,
            problem: managed.problem
        )
    }

    // MARK: The file

    /// Makes the running streams match the file: adds, changes and removes streams, leaving the unchanged alone.
    func apply(_ file: StreamFile, initial: Bool) {
        let wanted = Dictionary(file.liveStreams.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for id in self.streams.keys where wanted[id] == nil {
            self.remove(id)
        }
        // Fixed ports first, in file order, so a stream that asks for a port gets it before automatic allocation
        // can hand it to another.
        let ordered =
            file.liveStreams.filter { $0.spec.ingest.port != 0 } + file.liveStreams.filter { $0.spec.ingest.port == 0 }
        for stream in ordered {
            if let existing = self.streams[stream.id] {
                self.change(existing, to: stream, file: file)
            } else {
                self.add(stream, file: file)
            }
        }
        self.publishRoutes()
        self.updatePhases()
        if !initial {
            self.emit(.reloaded(streams: wanted.count))
        }
    }

    private func add(_ stream: LiveStream, file: StreamFile) {
        self.sequence += 1
        let claimant = PortClaimant(stream: stream.id, createdAt: String(format: "%09d", self.sequence))
        var managed = Managed(
            stream: stream,
            claimant: claimant,
            supervisor: Supervisor(configuration: self.supervisorConfiguration, now: .now)
        )
        self.prepare(&managed, file: file)
        self.streams[stream.id] = managed
        if let port = managed.port, managed.problem == nil {
            self.emit(
                .streamAdded(stream.id, ingestURL: self.ingestURL(stream, port: port), keySource: managed.keySource)
            )
            if let url = self.whipURL(managed) {
                self.emit(.whipAvailable(stream.id, url: url))
            }
            if let url = self.previewURL(managed) {
                self.emit(.previewAvailable(stream.id, url: url))
            }
        }
        self.startIfAlwaysOn(stream.id)
    }

    private func change(_ existing: Managed, to stream: LiveStream, file: StreamFile) {
        var managed = existing
        managed.stream = stream
        self.prepare(&managed, file: file)
        // Targets alone (a switch, a new target key) the running relay takes from its configuration file in place,
        // at the next keyframe, without touching the publisher or the other targets; anything else restarts it.
        var before = existing.stream.spec
        var after = stream.spec
        before.targets = []
        after.targets = []
        let targetsOnly =
            before == after && managed.ingestKey == existing.ingestKey && managed.problem == nil
            && existing.problem == nil && managed.port == existing.port
        var restart = managed.relayConfig != existing.relayConfig && existing.supervisor.relay != nil
        if restart, targetsOnly {
            do {
                try writePrivateFile(self.relayConfigPath(stream.id), contents: managed.relayConfig)
                restart = false
            } catch {
                self.logger.warning("\(stream.id): cannot rewrite the relay's configuration, restarting it: \(error)")
            }
        }
        let changed = managed.stream != existing.stream || managed.relayConfig != existing.relayConfig
        self.streams[stream.id] = managed
        guard changed else {
            return
        }
        if let port = managed.port, managed.problem == nil {
            self.emit(
                .streamChanged(stream.id, ingestURL: self.ingestURL(stream, port: port), restartsRelay: restart)
            )
        }
        if managed.problem != nil || stream.spec.suspend {
            self.stop(stream.id, reason: stream.spec.suspend ? "suspended" : "cannot run", then: .nothing)
        } else if restart {
            self.stop(stream.id, reason: "changed", then: .startAgain)
        } else {
            self.startIfAlwaysOn(stream.id)
        }
    }

    private func remove(_ id: StreamID) {
        guard let managed = self.streams[id] else {
            return
        }
        self.allocator.release(id)
        if managed.supervisor.relay != nil {
            self.stop(id, reason: "removed", then: .forget)
        } else {
            managed.restartTimer?.cancel()
            self.streams[id] = nil
        }
        self.emit(.streamRemoved(id))
        self.publishRoutes()
    }

    /// Port, source ranges, keys and the relay's configuration for the stream's current spec.
    private func prepare(_ managed: inout Managed, file: StreamFile) {
        let stream = managed.stream
        managed.problem = nil
        do {
            managed.port = try self.allocator.allocate(for: managed.claimant, requested: stream.spec.ingest.port)
        } catch {
            self.allocator.release(stream.id)
            managed.port = nil
            self.fail(&managed, "\(error)")
            return
        }
        managed.ranges = stream.spec.ingest.allowedSourceRanges.compactMap { try? IPRange($0) }
        do {
            let (config, keySource, key) = try self.relayConfiguration(for: stream, file: file)
            managed.relayConfig = config
            managed.keySource = keySource
            // Normalized where it was read (`StreamKey.normalized`), as the relay reads it.
            managed.ingestKey = key.map { GatewayRoute.IngestKey(app: stream.spec.ingest.app, key: $0) }
        } catch {
            self.fail(&managed, error.message)
        }
    }

    private func fail(_ managed: inout Managed, _ reason: String) {
        let changed = managed.problem != reason
        managed.problem = reason
        if changed {
            self.emit(.streamFailed(managed.stream.id, reason: reason))
        }
    }

    /// The relay's configuration: the LiveStream, its ingest key reference made explicit, and the Secrets it
    /// names, as one YAML file the relay reads with `--config`.
    private func relayConfiguration(
        for stream: LiveStream,
        file: StreamFile
    ) throws(LocalRuntimeError) -> (config: String, keySource: String, key: String?) {
        var spec = stream.spec
        let namespace = stream.id.namespace
        var secrets: [String: [String: String]] = [:]
        var keySource = "webhook \(spec.ingest.webhook?.url ?? "")"
        var key: String?
        if spec.ingest.webhook == nil {
            let ref = spec.streamKeySecret(streamName: stream.metadata.name)
            spec.ingest.streamKeySecretRef = ref
            if let secret = file.secret(ref.name, namespace: namespace) {
                guard let value = secret.value(ref.key) else {
                    throw LocalRuntimeError("Secret \(ref.name) has no key \(ref.key) (spec.ingest.streamKeySecretRef)")
                }
                secrets[ref.name, default: [:]][ref.key] = value
                key = value
                keySource = "Secret \(ref.name), key \(ref.key)"
            } else if let stored = self.keyStore.read(namespace: namespace, secret: ref.name, key: ref.key) {
                secrets[ref.name, default: [:]][ref.key] = stored
                key = stored
                keySource = self.keyStore.path(namespace: namespace, secret: ref.name, key: ref.key)
            } else {
                do {
                    let (value, path) = try self.keyStore.generate(namespace: namespace, secret: ref.name, key: ref.key)
                    secrets[ref.name, default: [:]][ref.key] = value
                    key = value
                    keySource = path
                    self.emit(.keyGenerated(stream.id, secret: ref.name, path: path))
                } catch {
                    throw LocalRuntimeError("cannot store a generated stream key: \(error)")
                }
            }
        }
        for (index, target) in spec.targets.enumerated() {
            guard let ref = target.streamKeySecretRef else {
                continue
            }
            guard let secret = file.secret(ref.name, namespace: namespace), let value = secret.value(ref.key) else {
                throw LocalRuntimeError(
                    "spec.targets[\(index)].streamKeySecretRef: no Secret \(ref.name) with key \(ref.key) in namespace \(namespace) of the file"
                )
            }
            secrets[ref.name, default: [:]][ref.key] = value
        }

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json(_ value: some Encodable) throws(LocalRuntimeError) -> String {
            do {
                return String(decoding: try encoder.encode(value), as: UTF8.self)
            } catch {
                throw LocalRuntimeError("cannot write the relay's configuration: \(error)")
            }
        }
        // JSON is YAML: every value is quoted exactly as it is, whatever characters a key holds.
        var documents = [
            """
            apiVersion: \(LiveStreamResource.apiVersion)
            kind: LiveStream
            metadata: \(try json(["name": stream.metadata.name]))
            spec: \(try json(spec))
            """
        ]
        for (name, values) in secrets.sorted(by: { $0.key < $1.key }) {
            documents.append(
                """
                apiVersion: v1
                kind: Secret
                metadata: \(try json(["name": name]))
                stringData: \(try json(values))
                """
            )
        }
        return (documents.joined(separator: "\n---\n") + "\n", keySource, key)
    }

    /// `rtmps://` when the gateway has a certificate (`rtmp://` works on the same port all the same).
    private func ingestURL(_ stream: LiveStream, port: Int) -> String {
        self.ingestURL(port: port, app: stream.spec.ingest.app)
    }

    private func ingestURL(port: Int, app: String) -> String {
        let scheme = self.configuration.gateway.tls == nil ? "rtmp" : "rtmps"
        return "\(scheme)://\(Self.urlHost(self.configuration.advertisedHost)):\(port)/\(app)"
    }

    /// A host as a URL writes it: an IPv6 address in brackets.
    private static func urlHost(_ host: String) -> String {
        host.contains(":") ? "[\(host)]" : host
    }

    // MARK: Routes and phases

    private func publishRoutes() {
        self.routes.update(LocalRoutes.routes(for: self.streams.values.map(\.routeInput)))
    }

    private func connections(_ id: StreamID) -> (live: Int, held: Int) {
        self.gateway.withLock { $0 }?.connections(for: id) ?? (0, 0)
    }

    private func updatePhases() {
        for id in self.streams.keys.sorted(by: { $0.description < $1.description }) {
            guard var managed = self.streams[id] else { continue }
            let (live, held) = self.connections(id)
            let changed = managed.status.update(
                problem: managed.problem,
                suspended: managed.stream.spec.suspend,
                relay: managed.supervisor.stage,
                live: live,
                held: held
            )
            if let phase = changed {
                self.streams[id] = managed
                self.emit(.phaseChanged(id, phase))
            }
        }
    }

    // MARK: Relays

    private var supervisorConfiguration: Supervisor.Configuration {
        Supervisor.Configuration(maxRestartDelay: self.configuration.maxRestartDelay)
    }

    /// Whether someone needs the stream's relay now, for its supervisor.
    private func demand(_ managed: Managed) -> Supervisor.Demand {
        let (live, held) = self.connections(managed.stream.id)
        return Supervisor.Demand(
            alwaysOn: managed.stream.spec.scaling.minReplicas > 0,
            idleSeconds: managed.stream.spec.scaling.idleSeconds,
            connections: live + held
        )
    }

    /// Gives one event to the stream's relay supervisor and performs what it asks; returns that.
    @discardableResult
    private func supervise(_ id: StreamID, _ event: (inout Supervisor) -> Supervisor.Action) -> Supervisor.Action {
        guard var managed = self.streams[id] else {
            return .none
        }
        let action = event(&managed.supervisor)
        if managed.supervisor.stage != .restarting {
            // An economy: a restart timer that fires late is ignored.
            managed.restartTimer?.cancel()
            managed.restartTimer = nil
        }
        self.streams[id] = managed
        self.perform(action, for: id)
        return action
    }

    private func perform(_ action: Supervisor.Action, for id: StreamID) {
        switch action {
        case .none:
            break
        case .spawn:
            self.spawn(id)
        case .started(let process):
            self.emit(.relayStarting(id, pid: process.pid))
        case .ready(let process, let ports):
            self.streams[id]?.status.relayReady()
            self.streams[id]?.relayStatus = nil
            self.emit(.relayReady(id, pid: process.pid, rtmpPort: ports.rtmpPort, httpPort: ports.httpPort))
            self.publishRoutes()
            self.updatePhases()
        case .terminate(let process):
            process.terminate()
            self.startStopTimer(id, process)
        case .kill(let process):
            self.logger.warning("\(id): relay did not stop within \(self.configuration.relayStopTimeout): killing it")
            process.forceKill()
        case .stopped(let reason, let then):
            self.emit(.relayStopped(id, reason: reason))
            switch then {
            case .nothing: break
            case .startAgain: self.spawn(id)
            case .forget: self.streams[id] = nil
            }
            self.publishRoutes()
            self.updatePhases()
        case .crashed(let process, let exit, let delay):
            if let delay {
                self.startRestartTimer(id, process, delay: delay)
            }
            self.emit(.relayCrashed(id, exit: exit.description, restartIn: delay))
            self.publishRoutes()
            self.updatePhases()
        case .forget:
            self.streams[id] = nil
        }
    }

    /// Reports ``RelaySupervisor/stopTimerFired(generation:)`` after the stop timeout.
    private func startStopTimer(_ id: StreamID, _ process: RelayProcess) {
        let timeout = self.configuration.relayStopTimeout
        Task {
            try? await Task.sleep(for: timeout)
            self.supervise(id) { $0.stopTimerFired(generation: process.generation) }
        }
    }

    /// Reports ``RelaySupervisor/restartTimerFired(generation:)`` after `delay`, unless cancelled first.
    private func startRestartTimer(_ id: StreamID, _ crashed: RelayProcess, delay: Duration) {
        self.streams[id]?.restartTimer = Task {
            do {
                try await Task.sleep(for: delay)
            } catch {
                return
            }
            self.supervise(id) { $0.restartTimerFired(generation: crashed.generation) }
        }
    }

    /// The gateway holds a connection for `id`: start its relay unless it is on its way.
    func activate(_ id: StreamID) {
        guard let managed = self.streams[id], managed.problem == nil, !managed.stream.spec.suspend else {
            return
        }
        self.supervise(id) { $0.activated(now: .now) }
        self.updatePhases()
    }

    private func startIfAlwaysOn(_ id: StreamID) {
        guard let managed = self.streams[id], managed.problem == nil, !managed.stream.spec.suspend,
            managed.stream.spec.scaling.minReplicas > 0
        else {
            return
        }
        self.supervise(id) { $0.startRequested() }
    }

    /// Starts the relay process the supervisor asked for (``RelaySupervisor/Action/spawn``) and reports the outcome.
    private func spawn(_ id: StreamID) {
        guard var managed = self.streams[id] else {
            return
        }
        self.generation += 1
        let generation = self.generation
        let path = self.relayConfigPath(id)
        do {
            try writePrivateFile(path, contents: managed.relayConfig)
        } catch {
            self.spawnFailed(&managed, "cannot write the relay's configuration: \(error)")
            return
        }
        let arguments =
            [
                "relay", "--config", path, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--announce",
                "--parent-pid", "\(getpid())",
                // The gateway connects from loopback and names the encoder in a PROXY header.
                "--proxy-protocol-from", "127.0.0.1/32,::1/128",
            ] + self.configuration.relayArguments
        do {
            let process = try RelayProcess.start(
                generation: generation,
                executable: self.configuration.relayExecutable,
                arguments: arguments,
                onAnnounce: { ports in
                    Task { await self.announced(id, generation: generation, ports: ports) }
                },
                onExit: { exit in
                    Task { await self.exited(id, generation: generation, exit: exit) }
                }
            )
            self.supervise(id) { $0.relayStarted(process) }
        } catch {
            self.spawnFailed(&managed, "cannot start \(self.configuration.relayExecutable): \(error)")
            return
        }
        self.updatePhases()
    }

    /// Where the relay of `id` reads its configuration (and, while it runs, reloads it from).
    private func relayConfigPath(_ id: StreamID) -> String {
        "\(self.configuration.stateDirectory)/run/\(id.namespace)-\(id.name).yaml"
    }

    private func spawnFailed(_ managed: inout Managed, _ reason: String) {
        self.fail(&managed, reason)
        managed.supervisor.spawnFailed()
        self.streams[managed.stream.id] = managed
        self.publishRoutes()
        self.updatePhases()
    }

    private func announced(_ id: StreamID, generation: UInt64, ports: RelayProcess.Ports) {
        self.supervise(id) { $0.announced(generation: generation, ports: ports, now: .now) }
    }

    private func exited(_ id: StreamID, generation: UInt64, exit: RelayExit) {
        defer {
            self.exitWaiters.removeValue(forKey: generation)?.resume()
        }
        guard let managed = self.streams[id] else {
            return
        }
        let demand = self.demand(managed)
        self.supervise(id) { $0.exited(generation: generation, exit: exit, demand: demand, now: .now) }
    }

    private func stop(_ id: StreamID, reason: String, then: Supervisor.AfterStop) {
        guard self.streams[id] != nil else {
            return
        }
        self.supervise(id) { $0.stopRequested(reason: reason, then: then) }
        self.publishRoutes()
    }

    /// A relay that is ready, and so answers `/api/v1/stream`.
    struct ReadyRelay: Sendable {
        var stream: StreamID
        var generation: UInt64
        var httpPort: Int
    }

    func readyRelays() -> [ReadyRelay] {
        self.streams.compactMap { id, managed in
            guard let process = managed.supervisor.relay, let ports = managed.supervisor.readyPorts else {
                return nil
            }
            return ReadyRelay(stream: id, generation: process.generation, httpPort: ports.httpPort)
        }
    }

    /// Reports the targets whose state or error changed since the last read of the same relay
    /// (``LocalStreamStatus/targetsRead(_:)``).
    func relayRead(_ relay: ReadyRelay, status: StreamStatus) {
        // A read of a relay that has stopped (or was replaced) since says nothing about the current one.
        guard var managed = self.streams[relay.stream], managed.supervisor.relay?.generation == relay.generation
        else {
            return
        }
        let report = RelayStreamReport(status)
        if managed.relayStatus != status {
            managed.relayStatus = status
            self.consoleChanges.yield(.changed(relay.stream))
        }
        let changed = managed.status.targetsRead(report.targets)
        self.streams[relay.stream] = managed
        for target in changed {
            self.emit(.targetChanged(relay.stream, target))
        }
    }

    /// Runs every poll interval: notes activity, stops relays idle for their `idleSeconds`, updates phases.
    func tick() {
        let now = ContinuousClock.now
        var stopped = false
        for id in Array(self.streams.keys) {
            guard let managed = self.streams[id] else { continue }
            let demand = self.demand(managed)
            stopped = self.supervise(id) { $0.tick(demand, now: now) } != .none || stopped
        }
        if stopped {
            self.publishRoutes()
        }
        self.updatePhases()
    }

    /// Stops every relay and waits for them to exit (each is killed after the stop timeout).
    func shutdown() async {
        var waiting: [UInt64] = []
        for (id, managed) in self.streams {
            if let process = managed.supervisor.relay {
                waiting.append(process.generation)
            }
            self.stop(id, reason: "shutdown", then: .forget)
        }
        for generation in waiting {
            await withCheckedContinuation { continuation in
                // The exit may have been handled already while we were not waiting.
                if self.streams.values.contains(where: { $0.supervisor.relay?.generation == generation }) {
                    self.exitWaiters[generation] = continuation
                } else {
                    continuation.resume()
                }
            }
        }
        for subscriber in self.subscribers.withLock({ Array($0.continuations.values) }) {
            subscriber.finish()
        }
    }
}
