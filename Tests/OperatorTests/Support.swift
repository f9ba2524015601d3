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
import KubernetesClient
import KubernetesController
import KubernetesTestServer
import KubernetesTestSupport
import LiveStreamModel
import Logging
import NIOCore
import NIOHTTP1
import Operator
import PeerTestSupport
import RelayAPI
import ServiceLifecycle
import Synchronization
import Testing
import TimeSupport

/// Paths of the repository and of the shared schemas beside it.
enum Paths {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let crd = TestSupportPaths.liveStreamCRD
    static let examples = repository.appendingPathComponent("examples/kubernetes").path
    static let validator = repository.appendingPathComponent("tools/validate-manifests.py").path
    static let kedaCRD = TestSupportPaths.kedaCRD
}

let kubectlPath: String? = {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    return path.split(separator: ":").map { "\($0)/kubectl" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}()

let python3Path: String? = {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    return path.split(separator: ":").map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}()

var quietLogger: Logger {
    var logger = Logger(label: "operator-test")
    logger.logLevel =
        ProcessInfo.processInfo.environment["OPERATOR_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .error
    return logger
}

/// The configuration the tests run the operator with: the cluster's namespace, the gateway in it, fast watches.
func testConfiguration(
    _ cluster: TestCluster,
    portRange: ClosedRange<Int> = 31000...31999,
    workers: Int = 4
) throws -> OperatorConfiguration {
    var configuration = OperatorConfiguration(
        namespace: cluster.namespace,
        portRange: try PortRange(portRange),
        relayImage: "registry.example.com/liverelay:test",
        gatewayServiceName: "liverelay-gateway",
        gatewayNamespace: cluster.namespace,
        ingestHost: "rtmp.example.com",
        ingressClassName: "nginx",
        ingressHost: "live.example.com",
        kedaPollingInterval: 5
    )
    configuration.controller = ControllerConfiguration(
        workers: workers,
        resyncPeriod: nil,
        queue: WorkQueueConfiguration(),
        listWatch: ListWatchOptions(
            watchTimeoutSeconds: 60,
            backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(400))
        )
    )
    return configuration
}

/// The test configuration, with the operator reading `relay` as every running stream's relay, every `interval`.
func testConfiguration(
    _ cluster: TestCluster,
    readingRelay relay: RelayChildProcess,
    every interval: Duration
) throws -> OperatorConfiguration {
    var configuration = try testConfiguration(cluster)
    configuration.relayStatusURL = "http://127.0.0.1:\(relay.httpPort)/api/v1/stream"
    configuration.relayStatusInterval = interval
    return configuration
}

/// Whether the operator reconciling `stream` sees KEDA served, as its `Autoscaling` condition says, once it has
/// one: the operator learns it when it starts, and a test that asked for no KEDA may still meet one (a real KEDA, or
/// the CRD another test installed on the same cluster). Where KEDA was served before the test began, it must.
func operatorSeesKEDA(_ cluster: TestCluster, _ stream: String) async throws -> Bool {
    var reason: String?
    try await eventually("\(stream) has an Autoscaling condition") {
        reason = try await cluster.client.liveStream(stream, namespace: cluster.namespace)
            .condition("Autoscaling")?["reason"]?.stringValue
        return reason != nil
    }
    let sees = reason != "KEDANotInstalled"
    if cluster.kedaServed { #expect(sees, "KEDA was served before the operator started") }
    if sees {
        try await eventually("the ScaledObject of \(stream), since the operator sees KEDA") {
            _ = try await cluster.client.get(
                KubernetesObject.self,
                .scaledObjects,
                name: RelayChildren.childName(stream),
                namespace: cluster.namespace
            )
            return true
        }
    }
    return sees
}

/// A running operator, stopped by ``stop()`` (graceful) or ``kill()`` (cancelled, as a crash would).
struct RunningOperator {
    let instance: LiveStreamOperator
    let group: ServiceGroup
    let task: Task<Void, any Error>

    static func start(
        _ cluster: TestCluster,
        configuration: OperatorConfiguration,
        middlewares: [any KubernetesMiddleware] = []
    ) -> RunningOperator {
        let client = middlewares.reversed().reduce(cluster.client) { $0.adding($1) }
        let instance = LiveStreamOperator(client: client, configuration: configuration, logger: quietLogger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: instance)], logger: quietLogger)
        )
        let task = Task { try await group.run() }
        return RunningOperator(instance: instance, group: group, task: task)
    }

    func stop() async {
        await self.group.triggerGracefulShutdown()
        _ = try? await self.task.value
    }

    func kill() async {
        self.task.cancel()
        _ = try? await self.task.value
    }
}

/// Runs `body` with an operator running; stops it afterwards, whatever happens.
func withOperator<T>(
    _ cluster: TestCluster,
    configuration: OperatorConfiguration,
    middlewares: [any KubernetesMiddleware] = [],
    _ body: (RunningOperator) async throws -> T
) async throws -> T {
    let running = RunningOperator.start(cluster, configuration: configuration, middlewares: middlewares)
    do {
        let result = try await body(running)
        await running.stop()
        return result
    } catch {
        await running.kill()
        throw error
    }
}

/// Runs `kubectl ARGS` against the cluster to completion.
func kubectl(
    _ cluster: TestCluster,
    _ arguments: [String],
    timeout: Duration = .seconds(90)
) async throws -> ProcessExit {
    let exit = try await withRunningProcess(
        kubectlPath ?? "kubectl",
        arguments: ["--kubeconfig", cluster.kubeconfig] + arguments,
        standardOutput: .capture(limit: 1 << 20)
    ) { process in
        await process.waitForExit(timeout: timeout)
    }
    return try #require(exit, "kubectl \(arguments.joined(separator: " ")) did not finish")
}

/// Runs the manifest validator (kubernetes-validate's official schemas, KEDA's and our CRD's) on `paths`.
func validateManifests(_ paths: [String]) async throws -> ProcessExit {
    let exit = try await withRunningProcess(
        python3Path ?? "python3",
        arguments: [Paths.validator, "--crd", Paths.kedaCRD, "--crd", Paths.crd] + paths,
        standardOutput: .capture(limit: 1 << 20)
    ) { process in
        await process.waitForExit(timeout: .seconds(120))
    }
    return try #require(exit, "the validator did not finish")
}

/// Writes `objects` as JSON documents into a new directory and returns it.
func writeManifests(_ objects: [JSONValue]) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("manifests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    for (index, object) in objects.enumerated() {
        try encoder.encode(object).write(to: directory.appendingPathComponent("\(index).json"))
    }
    return directory.path
}

extension KubernetesClient {
    func liveStream(_ name: String, namespace: String) async throws -> KubernetesObject {
        try await self.get(KubernetesObject.self, .liveStreams, name: name, namespace: namespace)
    }

    /// Reports the stream's relay Deployment as ready, as the Deployment controller would once its pod is.
    func reportRelayReady(_ name: String, namespace: String) async throws {
        _ = try await self.patchStatus(
            KubernetesObject.self,
            .deployments,
            name: RelayChildren.childName(name),
            namespace: namespace,
            mergePatch: ["status": ["replicas": 1, "readyReplicas": 1]]
        )
    }

    func createLiveStream(_ name: String, namespace: String, spec: JSONValue = [:]) async throws -> KubernetesObject {
        let object = KubernetesObject(
            apiVersion: LiveStreamResource.apiVersion,
            kind: LiveStreamResource.kind,
            metadata: ObjectMeta(name: name, namespace: namespace),
            fields: ["spec": spec]
        )
        return try await self.create(object, .liveStreams, namespace: namespace)
    }

    /// The stream ports on the gateway Service.
    func gatewayPorts(namespace: String) async throws -> Set<Int> {
        let service = try await self.get(
            KubernetesObject.self,
            .services,
            name: "liverelay-gateway",
            namespace: namespace
        )
        guard case .array(let ports) = service["spec"]?["ports"] ?? [] else { return [] }
        return Set(
            ports.filter { $0["name"]?.stringValue?.hasPrefix("ls-") == true }.compactMap { $0["port"]?.intValue }
                .map { Int($0) }
        )
    }
}

extension KubernetesObject {
    var statusPort: Int? { self["status"]?["port"]?.intValue.map { Int($0) } }
    var phase: String? { self["status"]?["phase"]?.stringValue }

    func condition(_ type: String) -> JSONValue? {
        guard case .array(let conditions) = self["status"]?["conditions"] ?? [] else { return nil }
        return conditions.first { $0["type"]?.stringValue == type }
    }
}

/// Counts the requests a client makes, by method and path, from when it is asked to.
final class RequestCounter: KubernetesMiddleware {
    private let state = Mutex<(counting: Bool, requests: [String])>((false, []))

    /// Starts counting from zero.
    func start() { self.state.withLock { $0 = (true, []) } }
    var requests: [String] { self.state.withLock { $0.requests } }

    func intercept(
        _ request: KubernetesRequest,
        body: KubernetesBody?,
        next: @Sendable (KubernetesRequest, KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    ) async throws -> (KubernetesResponse, KubernetesBody) {
        self.state.withLock { state in
            if state.counting { state.requests.append("\(request.method) \(request.path)") }
        }
        return try await next(request, body)
    }
}

extension RelayChildProcess {
    /// The relay's own word on its stream (`live` while a publisher is connected), read from its HTTP endpoint.
    func streamState() async throws -> String {
        let response = try await HTTPClient.shared.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(self.httpPort)/api/v1/stream"),
            timeout: .seconds(5)
        )
        let body = try await response.body.collect(upTo: 1 << 20)
        return try JSONDecoder().decode(StreamStatus.self, from: Data(body.readableBytesView)).state
    }
}

/// An HTTP front of a relay's status endpoint (`/api/v1/stream`, its long polls included) on a port of its own: the
/// operator reads the relay through it, and it counts the reads, so a test can wait for so many reads instead of for
/// the time they should take.
final class RelayFront: Sendable {
    let port: Int
    private let counter: Counter
    private let task: Task<Void, any Error>

    private init(port: Int, counter: Counter, task: Task<Void, any Error>) {
        self.port = port
        self.counter = counter
        self.task = task
    }

    /// The reads of the relay so far.
    var reads: Int { self.counter.count.withLock { $0 } }

    static func start(_ relay: RelayChildProcess) async throws -> RelayFront {
        let counter = Counter()
        let router = Router()
        router.get("api/v1/stream") { request, _ -> Response in
            counter.increment()
            var forwarded = HTTPClientRequest(url: "http://127.0.0.1:\(relay.httpPort)\(request.uri)")
            if let tag = request.headers[.ifNoneMatch] { forwarded.headers.add(name: "If-None-Match", value: tag) }
            let response = try await HTTPClient.shared.execute(forwarded, timeout: .seconds(60))
            let body = try await response.body.collect(upTo: 1 << 20)
            var headers = HTTPFields()
            if let tag = response.headers.first(name: "ETag") { headers[.eTag] = tag }
            return Response(
                status: HTTPResponse.Status(code: Int(response.status.code)),
                headers: headers,
                body: ResponseBody(byteBuffer: body)
            )
        }
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let application = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { portContinuation.yield($0.localAddress?.port ?? 0) },
            logger: Logger(label: "relay-front") { _ in SwiftLogNoOpLogHandler() }
        )
        let task = Task { try await application.runService() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port != 0 else {
            task.cancel()
            throw CancellationError()
        }
        return RelayFront(port: port, counter: counter, task: task)
    }

    func stop() {
        self.task.cancel()
    }

    private final class Counter: Sendable {
        let count = Mutex(0)
        func increment() { self.count.withLock { $0 += 1 } }
    }
}
