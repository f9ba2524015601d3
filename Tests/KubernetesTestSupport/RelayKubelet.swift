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
public import KubernetesClient
import KubernetesController
import Logging
import NIOCore
import NIOHTTP1
import PeerTestSupport
import Synchronization
import TimeSupport

/// What a node would do for the relay Deployments of one namespace, on this machine, for tests that run the operator
/// and the gateway in-process against the Kubernetes API test server (which runs no pods):
///
/// - kubelet: while a Deployment wants a replica (`spec.replicas` ≥ 1, not deleted) it runs its container as a
///   process of this machine, the image's entry point being `executable` (`liverelay`), with the container's `args`
///   and `env`. Its ConfigMap and Secret volumes are materialized in a directory of their own as kubelet lays them
///   out (every key a symlink into `..data`, itself a symlink to a timestamped directory swapped atomically), and
///   kept up to date while the process runs, so a relay reloads a changed ConfigMap as in a pod. The mount paths in
///   the arguments name those directories; `--listen` and `--http-listen` bind ephemeral ports of 127.0.0.1, which
///   the relay announces (`--announce`). The readiness probe is `/readyz` on the HTTP port. A process that exits is
///   started again; one whose Deployment goes to 0 replicas, or away, gets SIGTERM (SIGKILL after its grace).
/// - the Deployment controller: the Deployment's `status` (`replicas`, `readyReplicas`, `availableReplicas`).
/// - the EndpointSlice controller: an EndpointSlice of the Service named as the Deployment (the operator names both
///   `ls-NAME`), ready while the process is.
/// - kube-proxy and cluster DNS: ``resolve(host:port:)`` maps `SERVICE.NAMESPACE.svc:PORT` to the running process's
///   address (the gateway takes it as ``GatewayConfiguration/upstreamAddress``), and an HTTP front forwards
///   `\(httpFrontURL)/NAMESPACE/SERVICE/PATH` to the Service's HTTP port (for URL templates, such as the operator's
///   relay status URL and the console's preview URL).
///
/// One replica at most, and no rollouts: a changed pod template does not restart a running process (the operator
/// changes a running relay's template only when its Secrets change).
///
/// A Service port leads to the container port of the same number (the operator's Services map 1935 to `rtmp` and 8080
/// to `http`).
public final class RelayKubelet: Sendable {
    /// Where a Service port leads on this machine.
    public struct Address: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var description: String { "\(self.host):\(self.port)" }
    }

    private struct Pod {
        var process: RunningProcess
        var directory: URL
        /// Container port number to the port the process bound.
        var ports: [Int: Int] = [:]
        var ready = false
        /// The files of every ConfigMap and Secret volume as last written.
        var volumes: [String: [String: Data]]
        var version = 1
        var mounts: [String: String]
    }

    private struct State {
        var pods: [String: Pod] = [:]
        var starts: [String: Int] = [:]
    }

    private static let endpointSlices = KubernetesResource(
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        kind: "EndpointSlice"
    )

    public let namespace: String
    /// The start of the HTTP front's URLs: `\(httpFrontURL)/NAMESPACE/SERVICE/PATH`.
    public let httpFrontURL: String
    private let client: KubernetesClient
    private let executable: String
    private let directory: URL
    private let state = Mutex(State())
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>

    private init(client: KubernetesClient, namespace: String, executable: String, httpFrontURL: String) {
        self.client = client
        self.namespace = namespace
        self.executable = executable
        self.httpFrontURL = httpFrontURL
        self.directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("relay-kubelet-\(UInt64.random(in: 0...UInt64.max))")
        (self.wakes, self.wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// How many times the Deployment's process has been started so far.
    public func starts(of deployment: String) -> Int {
        self.state.withLock { $0.starts[deployment] ?? 0 }
    }

    /// Where `SERVICE.NAMESPACE.svc[.cluster.local]:PORT` leads now: the address of the ready process of the
    /// Service's Deployment, or `nil` (another name, or no ready process).
    public func resolve(host: String, port: Int) -> Address? {
        let labels = host.split(separator: ".").map(String.init)
        guard labels.count >= 3, labels[2] == "svc", labels[1] == self.namespace else { return nil }
        return self.address(service: labels[0], port: port)
    }

    /// Where the Service's `port` leads now, or `nil`.
    public func address(service: String, port: Int) -> Address? {
        self.state.withLock { state in
            guard let pod = state.pods[service], pod.ready, let bound = pod.ports[port] else { return nil }
            return Address(host: "127.0.0.1", port: bound)
        }
    }

    /// Runs the stand-in for the Deployments of `namespace` (those matching `labelSelector`) while `body` runs, then
    /// stops every process it started.
    public static func with<Result>(
        client: KubernetesClient,
        namespace: String,
        executable: String,
        labelSelector: String? = nil,
        _ body: (RelayKubelet) async throws -> Result
    ) async throws -> Result {
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let box = Mutex<RelayKubelet?>(nil)
        let router = Router()
        router.get(":namespace/:service/**") { request, context -> Response in
            guard let kubelet = box.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
            return await kubelet.forward(request, context: context)
        }
        let front = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { portContinuation.yield($0.localAddress?.port ?? 0) },
            logger: Logger(label: "relay-kubelet-front") { _ in SwiftLogNoOpLogHandler() }
        )
        let frontTask = Task { try await front.runService() }
        defer { frontTask.cancel() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port != 0 else {
            throw PeerError.startFailed("the kubelet stand-in's HTTP front did not listen")
        }
        let kubelet = RelayKubelet(
            client: client,
            namespace: namespace,
            executable: executable,
            httpFrontURL: "http://127.0.0.1:\(port)"
        )
        box.withLock { $0 = kubelet }
        try FileManager.default.createDirectory(at: kubelet.directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: kubelet.directory) }
        let loop = Task { try await kubelet.run(labelSelector: labelSelector) }
        let result: Result
        do {
            result = try await body(kubelet)
        } catch {
            loop.cancel()
            _ = try? await loop.value
            await kubelet.stopAll()
            throw error
        }
        loop.cancel()
        _ = try? await loop.value
        await kubelet.stopAll()
        return result
    }

    // MARK: The loop

    private func run(labelSelector: String?) async throws {
        var options = ListWatchOptions(
            watchTimeoutSeconds: 60,
            backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(400))
        )
        let configOptions = options
        options.labelSelector = labelSelector
        let deployments = Reflector<KubernetesObject>(
            client: self.client,
            resource: .deployments,
            namespace: self.namespace,
            options: options
        )
        let configMaps = Reflector<KubernetesObject>(
            client: self.client,
            resource: .configMaps,
            namespace: self.namespace,
            options: configOptions
        )
        let secrets = Reflector<KubernetesObject>(
            client: self.client,
            resource: .secrets,
            namespace: self.namespace,
            options: configOptions
        )
        let wake = self.wake
        try await withThrowingDiscardingTaskGroup { group in
            for reflector in [deployments, configMaps, secrets] {
                group.addTask {
                    try await reflector.run { _ in
                        wake.yield()
                    } onListed: {
                        wake.yield()
                    }
                }
            }
            group.addTask {
                // Ends when the task is cancelled.
                for await _ in self.wakes {
                    guard deployments.hasSynced, configMaps.hasSynced, secrets.hasSynced else { continue }
                    await self.sync(deployments: deployments.list(), configMaps: configMaps, secrets: secrets)
                }
            }
        }
    }

    private func sync(
        deployments: [KubernetesObject],
        configMaps: Reflector<KubernetesObject>,
        secrets: Reflector<KubernetesObject>
    ) async {
        var seen = Set<String>()
        for deployment in deployments {
            guard let name = deployment.metadata.name else { continue }
            seen.insert(name)
            let replicas = deployment["spec"]?["replicas"]?.intValue ?? 1
            let wanted = deployment.metadata.deletionTimestamp == nil && replicas >= 1
            let volumes = Self.volumeFiles(of: deployment, configMaps: configMaps, secrets: secrets)
            let current = self.state.withLock { $0.pods[name] }
            if let current, !wanted || current.process.hasExited {
                await self.stop(name)
            }
            guard wanted, let volumes else { continue }
            if let current, !current.process.hasExited {
                if current.volumes != volumes { self.update(name, volumes: volumes) }
                continue
            }
            do {
                try await self.start(deployment, volumes: volumes)
            } catch {
                print("relay kubelet: \(name) did not start: \(error)")
                await self.stop(name)
            }
        }
        for name in self.state.withLock({ Array($0.pods.keys) }) where !seen.contains(name) {
            await self.stop(name)
        }
    }

    // MARK: Pods

    /// The files of every ConfigMap and Secret volume of the pod template, or `nil` while one is missing (the pod
    /// would wait in ContainerCreating).
    private static func volumeFiles(
        of deployment: KubernetesObject,
        configMaps: Reflector<KubernetesObject>,
        secrets: Reflector<KubernetesObject>
    ) -> [String: [String: Data]]? {
        let namespace = deployment.metadata.namespace
        guard case .array(let volumes) = deployment["spec"]?["template"]?["spec"]?["volumes"] ?? [] else { return [:] }
        var files: [String: [String: Data]] = [:]
        for volume in volumes {
            guard let name = volume["name"]?.stringValue else { continue }
            if let source = volume["configMap"]?["name"]?.stringValue {
                guard let map = configMaps.get(ObjectKey(namespace: namespace, name: source)) else { return nil }
                guard case .object(let data) = map["data"] ?? [:] else { continue }
                files[name] = data.compactMapValues { $0.stringValue.map { Data($0.utf8) } }
            } else if let source = volume["secret"]?["secretName"]?.stringValue {
                guard let secret = secrets.get(ObjectKey(namespace: namespace, name: source)) else { return nil }
                guard case .object(let data) = secret["data"] ?? [:] else { continue }
                files[name] = data.compactMapValues { $0.stringValue.flatMap { Data(base64Encoded: $0) } }
            }
        }
        return files
    }

    /// Writes a volume's files as kubelet does: into a new `..N` directory, then `..data` swapped to it at once.
    private static func write(_ files: [String: Data], to volume: URL, version: Int) throws {
        let manager = FileManager.default
        try manager.createDirectory(at: volume, withIntermediateDirectories: true)
        let data = volume.appendingPathComponent("..\(version)")
        try manager.createDirectory(at: data, withIntermediateDirectories: true)
        for (key, contents) in files {
            try contents.write(to: data.appendingPathComponent(key))
        }
        let next = volume.appendingPathComponent("..data_tmp").path
        try? manager.removeItem(atPath: next)
        try manager.createSymbolicLink(atPath: next, withDestinationPath: "..\(version)")
        guard rename(next, volume.appendingPathComponent("..data").path) == 0 else {
            throw PeerError.startFailed("cannot swap ..data in \(volume.path)")
        }
        for key in files.keys {
            let link = volume.appendingPathComponent(key).path
            if (try? manager.destinationOfSymbolicLink(atPath: link)) == nil {
                try manager.createSymbolicLink(atPath: link, withDestinationPath: "..data/\(key)")
            }
        }
        if version > 1 {
            try? manager.removeItem(at: volume.appendingPathComponent("..\(version - 1)"))
        }
    }

    private func update(_ name: String, volumes: [String: [String: Data]]) {
        let pod = self.state.withLock { state -> Pod? in
            guard var pod = state.pods[name] else { return nil }
            pod.version += 1
            state.pods[name] = pod
            return pod
        }
        guard let pod else { return }
        for (volume, files) in volumes where pod.volumes[volume] != files {
            guard let path = pod.mounts[volume] else { continue }
            try? Self.write(files, to: URL(fileURLWithPath: path), version: pod.version)
        }
        self.state.withLock { $0.pods[name]?.volumes = volumes }
    }

    private func start(_ deployment: KubernetesObject, volumes: [String: [String: Data]]) async throws {
        guard let name = deployment.metadata.name,
            let template = deployment["spec"]?["template"]?["spec"],
            case .array(let containers) = template["containers"] ?? [], let container = containers.first
        else { return }
        let start = self.state.withLock { state -> Int in
            state.starts[name, default: 0] += 1
            return state.starts[name]!
        }
        let directory = self.directory.appendingPathComponent("\(name)-\(start)")
        // The container's file system: every mount at its path under `root`, the volume's files there.
        let root = directory.appendingPathComponent("root")
        var mounts: [String: String] = [:]
        if case .array(let volumeMounts) = container["volumeMounts"] ?? [] {
            for mount in volumeMounts {
                guard let volume = mount["name"]?.stringValue, let path = mount["mountPath"]?.stringValue else {
                    continue
                }
                let local = root.appendingPathComponent(String(path.drop { $0 == "/" }))
                try FileManager.default.createDirectory(at: local, withIntermediateDirectories: true)
                if let files = volumes[volume] {
                    try Self.write(files, to: local, version: 1)
                }
                mounts[volume] = local.path
            }
        }
        // Paths in the arguments that lie in the container's file system name it under `root`.
        var arguments: [String] = []
        var listenNext = false
        if case .array(let args) = container["args"] ?? [] {
            for argument in args.compactMap(\.stringValue) {
                if listenNext {
                    arguments.append("127.0.0.1:0")
                    listenNext = false
                    continue
                }
                listenNext = argument == "--listen" || argument == "--http-listen"
                let local = root.path + argument
                if argument.hasPrefix("/"), FileManager.default.fileExists(atPath: local) {
                    arguments.append(local)
                } else {
                    arguments.append(argument)
                }
            }
        }
        arguments.append("--announce")
        var environment: [String: String] = [:]
        if case .array(let variables) = container["env"] ?? [] {
            for variable in variables {
                if let key = variable["name"]?.stringValue, let value = variable["value"]?.stringValue {
                    environment[key] = value
                }
            }
        }
        let process = try RunningProcess.launch(
            self.executable,
            arguments: arguments,
            standardOutput: .capture(limit: 64 * 1024),
            environment: environment
        )
        self.state.withLock {
            $0.pods[name] = Pod(process: process, directory: directory, volumes: volumes, mounts: mounts)
        }
        // Started again, as kubelet would, when it exits.
        let wake = self.wake
        Task {
            _ = await process.waitForExit()
            wake.yield()
        }
        guard await process.waitForOutput(containing: "\n") else {
            throw PeerError.startFailed("\(name) announced no ports: \(process.standardErrorSoFar)")
        }
        struct Announcement: Decodable {
            var rtmpPort: Int
            var httpPort: Int
        }
        let line = process.standardOutputSoFar.split(separator: "\n").first.map(String.init) ?? ""
        let announced = try JSONDecoder().decode(Announcement.self, from: Data(line.utf8))
        var ports: [Int: Int] = [:]
        if case .array(let declared) = container["ports"] ?? [] {
            for port in declared {
                guard let number = port["containerPort"]?.intValue else { continue }
                switch port["name"]?.stringValue {
                case "rtmp": ports[Int(number)] = announced.rtmpPort
                case "http": ports[Int(number)] = announced.httpPort
                default: break
                }
            }
        }
        // The readiness probe: kubelet asks every period until it answers 200.
        try await eventually("\(name) ready", timeout: .seconds(60), interval: .milliseconds(100)) {
            guard !process.hasExited else {
                throw PeerError.startFailed("\(name) exited: \(process.standardErrorSoFar)")
            }
            let response = try? await HTTPClient.shared.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(announced.httpPort)/readyz"),
                timeout: .seconds(2)
            )
            return response?.status == .ok
        }
        self.state.withLock {
            $0.pods[name]?.ports = ports
            $0.pods[name]?.ready = true
        }
        try await self.publishEndpoints(name, ready: true, ports: ports)
        _ = try? await self.client.patchStatus(
            KubernetesObject.self,
            .deployments,
            name: name,
            namespace: self.namespace,
            mergePatch: [
                "status": [
                    "observedGeneration": .int(deployment.metadata.generation ?? 1),
                    "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
                ]
            ]
        )
    }

    private func publishEndpoints(_ name: String, ready: Bool, ports: [Int: Int]) async throws {
        let slice = KubernetesObject(
            apiVersion: "discovery.k8s.io/v1",
            kind: "EndpointSlice",
            metadata: ObjectMeta(
                name: "\(name)-kubelet",
                namespace: self.namespace,
                labels: ["kubernetes.io/service-name": name]
            ),
            fields: [
                "addressType": "IPv4",
                "endpoints": [["addresses": ["127.0.0.1"], "conditions": ["ready": .bool(ready)]]],
                "ports": .array(
                    ports.keys.sorted().map { ["port": .int(Int64($0)), "protocol": "TCP"] }
                ),
            ]
        )
        try? await self.client.delete(Self.endpointSlices, name: "\(name)-kubelet", namespace: self.namespace)
        _ = try await self.client.create(slice, Self.endpointSlices, namespace: self.namespace)
    }

    /// Takes the process out of the endpoints, reports no replica, then ends it: SIGTERM, SIGKILL after 15 s.
    private func stop(_ name: String) async {
        guard let pod = self.state.withLock({ $0.pods.removeValue(forKey: name) }) else { return }
        try? await self.client.delete(Self.endpointSlices, name: "\(name)-kubelet", namespace: self.namespace)
        _ = try? await self.client.patchStatus(
            KubernetesObject.self,
            .deployments,
            name: name,
            namespace: self.namespace,
            mergePatch: [
                "status": [
                    "replicas": .null, "updatedReplicas": .null, "readyReplicas": .null, "availableReplicas": .null,
                ]
            ]
        )
        pod.process.terminate()
        if await pod.process.waitForExit(timeout: .seconds(15)) == nil {
            pod.process.kill()
            _ = await pod.process.waitForExit()
        }
        try? FileManager.default.removeItem(at: pod.directory)
    }

    private func stopAll() async {
        for name in self.state.withLock({ Array($0.pods.keys) }) {
            await self.stop(name)
        }
    }

    // MARK: The HTTP front

    /// `/NAMESPACE/SERVICE/PATH?QUERY` to the Service's HTTP port, answers streamed back as they arrive.
    private func forward(_ request: Request, context: some RequestContext) async -> Response {
        let components = request.uri.path.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: true)
        guard components.count >= 2, String(components[0]) == self.namespace,
            let address = self.address(service: String(components[1]), port: 8080)
        else {
            return Response(status: .badGateway)
        }
        var url = "http://\(address)/" + (components.count > 2 ? String(components[2]) : "")
        if request.uri.path.hasSuffix("/"), !url.hasSuffix("/") { url += "/" }
        if let query = request.uri.query, !query.isEmpty { url += "?" + query }
        var forwarded = HTTPClientRequest(url: url)
        if let tag = request.headers[.ifNoneMatch] { forwarded.headers.add(name: "If-None-Match", value: tag) }
        let deadline: NIODeadline = url.hasSuffix("live.mp4") ? .distantFuture : .now() + .seconds(120)
        do {
            let response = try await HTTPClient.shared.execute(forwarded, deadline: deadline)
            var headers = HTTPFields()
            headers[.contentType] = response.headers.first(name: "content-type")
            headers[.cacheControl] = response.headers.first(name: "cache-control")
            headers[.eTag] = response.headers.first(name: "etag")
            headers[.contentLength] = response.headers.first(name: "content-length")
            headers[.location] = response.headers.first(name: "location")
            return Response(
                status: .init(code: Int(response.status.code)),
                headers: headers,
                body: ResponseBody(asyncSequence: response.body)
            )
        } catch {
            return Response(status: .badGateway)
        }
    }
}
