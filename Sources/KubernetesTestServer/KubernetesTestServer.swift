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
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// An in-process Kubernetes API server for tests, with the semantics a controller depends on.
///
/// It keeps every object in memory and serves the REST API over HTTP/1.1 (or HTTPS) with JSON bodies: discovery,
/// generic CRUD for built-in and custom resources, `resourceVersion` and `generation` bookkeeping, optimistic
/// concurrency (409), watch with history replay, bookmarks and 410 Gone, status and scale subresources,
/// finalizers, ownerReference cascading, merge and JSON patches, server-side apply with field ownership and
/// conflicts (`managedFields`), protobuf bodies of Namespaces, Secrets and ConfigMaps, and structural schema
/// validation and pruning for custom resources. The real `kubectl` works against it.
///
/// Faults a controller must survive can be injected: refused connections, failed requests, dropped watches and a
/// compacted history.
///
/// ```swift
/// try await withKubernetesTestServer { server in
///     try server.installCRD(yaml: crd)
///     try server.writeKubeconfig(to: path)
///     // ... run the code under test against server.baseURL
/// }
/// ```
public final class KubernetesTestServer: Sendable {
    /// How the server listens and behaves.
    public struct Configuration: Sendable {
        /// The address to bind; `127.0.0.1` by default.
        public var host: String
        /// The port to bind; 0 picks a free one (read it back from ``KubernetesTestServer/port``).
        public var port: Int
        /// Serve HTTPS with a self-signed certificate made with `openssl`, embedded in the kubeconfig as the CA.
        public var tls: Bool
        /// When set, every request must carry `Authorization: Bearer <token>` or gets 401.
        public var bearerToken: String?
        /// How often a watch that asked for bookmarks gets one. Real servers send one about every minute; tests
        /// want it short.
        public var bookmarkInterval: Duration
        /// How many events the watch history keeps: the oldest are compacted away once it holds an eighth more.
        public var historyLimit: Int

        public init(
            host: String = "127.0.0.1",
            port: Int = 0,
            tls: Bool = false,
            bearerToken: String? = nil,
            bookmarkInterval: Duration = .seconds(5),
            historyLimit: Int = 10_000
        ) {
            self.host = host
            self.port = port
            self.tls = tls
            self.bearerToken = bearerToken
            self.bookmarkInterval = bookmarkInterval
            self.historyLimit = historyLimit
        }
    }

    /// The configuration the server was started with.
    public var configuration: Configuration { self.core.configuration }
    /// The port the server listens on.
    public let port: Int
    /// `http://127.0.0.1:PORT` or `https://...` when TLS is on.
    public let baseURL: String
    /// The PEM certificate clients must trust when TLS is on.
    public let certificateAuthorityPEM: String?

    let core: ServerCore
    private let serviceGroup: ServiceGroup
    private let running: Mutex<Task<Void, Never>?>

    private init(
        core: ServerCore,
        port: Int,
        baseURL: String,
        certificate: String?,
        serviceGroup: ServiceGroup,
        task: Task<Void, Never>
    ) {
        self.core = core
        self.port = port
        self.baseURL = baseURL
        self.certificateAuthorityPEM = certificate
        self.serviceGroup = serviceGroup
        self.running = Mutex(task)
    }

    /// Starts a server and returns once it listens. Call ``stop()`` when done, or use
    /// ``withKubernetesTestServer(configuration:logger:_:)``.
    public static func start(
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "kube-test-server")
    ) async throws -> KubernetesTestServer {
        let core = ServerCore(configuration: configuration, logger: logger)
        let faults = core.faults
        let http1 = HTTPServerBuilder.http1(
            configuration: .init(additionalChannelHandlers: [ConnectionGate(faults: faults)])
        )
        var certificatePEM: String?
        let server: HTTPServerBuilder
        if configuration.tls {
            let (certificate, key) = try SelfSignedCertificate.make(host: configuration.host)
            certificatePEM = certificate
            let tlsConfiguration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificate.utf8)).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.utf8), format: .pem))
            )
            server = try .tls(http1, tlsConfiguration: tlsConfiguration)
        } else {
            server = http1
        }

        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let failure = Mutex<(any Error)?>(nil)
        let application = Application(
            responder: APIHandler(server: core),
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
            },
            logger: logger
        )
        let serviceGroup = ServiceGroup(configuration: .init(services: [application], logger: logger))
        let task = Task {
            do {
                try await serviceGroup.run()
            } catch {
                failure.withLock { $0 = error }
            }
            portContinuation.finish()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            let error = failure.withLock { $0 }
            throw KubernetesTestServerError.startFailed("the server did not start: \(String(describing: error))")
        }
        let scheme = configuration.tls ? "https" : "http"
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        logger.info("kubernetes test server listening", metadata: ["k8s.server.url": "\(scheme)://\(host):\(port)"])
        return KubernetesTestServer(
            core: core,
            port: port,
            baseURL: "\(scheme)://\(host):\(port)",
            certificate: certificatePEM,
            serviceGroup: serviceGroup,
            task: task
        )
    }

    /// Ends every watch, closes the listener and every connection, and returns when the server has stopped.
    public func stop() async {
        self.core.store.endAllWatches()
        guard
            let task = self.running.withLock({ running in
                defer { running = nil }
                return running
            })
        else { return }
        // Graceful: the listener closes, idle keep-alive connections close, and nothing is left in flight once the
        // watches have ended.
        await self.serviceGroup.triggerGracefulShutdown()
        await task.value
    }

    // MARK: Kubeconfig

    /// A kubeconfig with one cluster, user and context (`kube-test-server`), the CA embedded when TLS is on and the
    /// bearer token when one is required.
    public func kubeconfig(namespace: String = "default") -> String {
        var cluster = "    server: \(self.baseURL)\n"
        if let certificate = self.certificateAuthorityPEM {
            cluster += "    certificate-authority-data: \(Data(certificate.utf8).base64EncodedString())\n"
        }
        let user = self.configuration.bearerToken.map { "    token: \($0)\n" } ?? "    {}\n"
        return """
            apiVersion: v1
            kind: Config
            clusters:
            - name: kube-test-server
              cluster:
            \(cluster)users:
            - name: kube-test-server
              user:
            \(user)contexts:
            - name: kube-test-server
              context:
                cluster: kube-test-server
                user: kube-test-server
                namespace: \(namespace)
            current-context: kube-test-server

            """
    }

    /// Writes ``kubeconfig(namespace:)`` to `path`.
    public func writeKubeconfig(to path: String, namespace: String = "default") throws {
        try Data(self.kubeconfig(namespace: namespace).utf8).write(to: URL(fileURLWithPath: path))
    }

    // MARK: Objects

    /// Creates or replaces every object in a (multi-document) YAML or JSON manifest, as `kubectl apply` would
    /// for new objects. CRDs take effect at once, so a manifest may define a CRD and then use it.
    @discardableResult
    public func apply(yaml: String) throws -> [JSON] {
        let documents: [JSON]
        do {
            documents = try JSON.documents(yaml: yaml)
        } catch {
            throw KubernetesTestServerError.invalidManifest("cannot parse the manifest: \(error)")
        }
        return try documents.flatMap { document -> [JSON] in
            if document["kind"]?.stringValue == "List" {
                return try document["items"]?.arrayValue?.map(self.apply) ?? []
            }
            return [try self.apply(document)]
        }
    }

    /// Creates `object`, or replaces the stored one of that name.
    @discardableResult
    public func apply(_ object: JSON) throws -> JSON {
        guard let apiVersion = object["apiVersion"]?.stringValue, let kind = object["kind"]?.stringValue,
            let name = object[path: ["metadata", "name"]]?.stringValue
        else {
            throw KubernetesTestServerError.invalidManifest("an object needs apiVersion, kind and metadata.name")
        }
        let parts = apiVersion.split(separator: "/").map(String.init)
        let (group, version) = parts.count == 2 ? (parts[0], parts[1]) : ("", parts[0])
        let limit = self.core.store.historyLimit
        do {
            return try self.core.store.withState { state throws(APIError) in
                guard
                    let type = state.allTypes.first(where: {
                        $0.group == group && $0.version == version && $0.kind == kind
                    })
                else {
                    throw APIError.badRequest("no resource for \(apiVersion) \(kind)")
                }
                let namespace =
                    type.namespaced ? (object[path: ["metadata", "namespace"]]?.stringValue ?? "default") : nil
                if (try? state.get(type, namespace: namespace, name: name)) != nil {
                    var body = object
                    body[path: ["metadata", "resourceVersion"]] = nil
                    var result = try state.update(
                        type,
                        namespace: namespace,
                        name: name,
                        body: body,
                        subresource: nil,
                        limit: limit
                    )
                    if type.hasStatus, let status = object["status"] {
                        result["status"] = status
                        result = try state.update(
                            type,
                            namespace: namespace,
                            name: name,
                            body: result,
                            subresource: .status,
                            limit: limit
                        )
                    }
                    return result
                }
                var result = try state.create(type, namespace: namespace, object: object, limit: limit)
                if type.hasStatus, let status = object["status"],
                    type.storageKey != "apiextensions.k8s.io/customresourcedefinitions"
                {
                    result["status"] = status
                    result = try state.update(
                        type,
                        namespace: namespace,
                        name: name,
                        body: result,
                        subresource: .status,
                        limit: limit
                    )
                }
                return result
            }
        } catch {
            throw KubernetesTestServerError.rejected(error.status)
        }
    }

    /// Installs CustomResourceDefinitions from YAML (one or many documents).
    public func installCRD(yaml: String) throws {
        let documents = try JSON.documents(yaml: yaml)
        guard documents.allSatisfy({ $0["kind"]?.stringValue == "CustomResourceDefinition" }) else {
            throw KubernetesTestServerError.invalidManifest("only CustomResourceDefinition documents are accepted")
        }
        for document in documents { try self.apply(document) }
    }

    /// Installs every CRD in the `.yaml`, `.yml` and `.json` files of `directory`.
    public func installCRDs(directory: String) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        for file in files where file.hasSuffix(".yaml") || file.hasSuffix(".yml") || file.hasSuffix(".json") {
            let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            try self.installCRD(yaml: text)
        }
    }

    /// The stored object, as the API would return it, or `nil`.
    public func object(apiVersion: String, kind: String, namespace: String? = nil, name: String) -> JSON? {
        let parts = apiVersion.split(separator: "/").map(String.init)
        let (group, version) = parts.count == 2 ? (parts[0], parts[1]) : ("", parts[0])
        return self.core.store.state.withLock { state in
            guard
                let type = state.allTypes.first(where: { $0.group == group && $0.version == version && $0.kind == kind }
                )
            else { return nil }
            return try? state.get(type, namespace: type.namespaced ? (namespace ?? "default") : nil, name: name)
        }
    }

    /// The cluster-wide latest resourceVersion.
    public var resourceVersion: String { String(self.core.store.state.withLock { $0.resourceVersion }) }

    // MARK: Faults

    /// For `duration`, closes every new connection at once and every request on an open connection, as a
    /// restarting API server would.
    public func refuseConnections(for duration: Duration) {
        self.core.faults.refuse(for: duration)
    }

    /// Answers the next `count` requests with `status` (500, 503 or 429) and a `Status` body, with `Retry-After`
    /// when `retryAfter` (seconds) is given.
    public func failNextRequests(count: Int, status: Int = 500, retryAfter: Int? = nil) {
        self.core.faults.failNext(count: count, status: status, retryAfter: retryAfter)
    }

    /// Ends every open watch stream cleanly, as an API server does when it restarts or a watch times out.
    public func dropWatches() {
        self.core.store.endAllWatches()
    }

    /// Forgets the watch history. Every resourceVersion handed out before the call becomes too old: a watch from
    /// one gets an `ERROR` event with a 410 `Status` (reason `Expired`), and the client must list again.
    public func compact() {
        self.core.store.state.withLock { $0.compact() }
    }
}

/// Runs `body` with a started server and stops the server when `body` returns or throws.
public func withKubernetesTestServer<Result>(
    configuration: KubernetesTestServer.Configuration = .init(),
    logger: Logger = Logger(label: "kube-test-server"),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (KubernetesTestServer) async throws -> Result
) async throws -> Result {
    let server = try await KubernetesTestServer.start(configuration: configuration, logger: logger)
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

/// Why the test server could not do what it was asked.
public struct KubernetesTestServerError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case startFailed
        case certificateFailed
        case invalidManifest
        case rejected
    }

    private let code: Code
    /// What went wrong.
    public let message: String
    /// The `Status` the API answered with, when the server rejected an object.
    public let status: JSON?

    private init(_ code: Code, _ message: String, status: JSON? = nil) {
        self.code = code
        self.message = message
        self.status = status
    }

    @inline(never)
    static func startFailed(_ message: String) -> Self { Self(.startFailed, message) }
    @inline(never)
    static func certificateFailed(_ message: String) -> Self { Self(.certificateFailed, message) }
    @inline(never)
    static func invalidManifest(_ message: String) -> Self { Self(.invalidManifest, message) }
    @inline(never)
    static func rejected(_ status: JSON) -> Self {
        Self(.rejected, status["message"]?.stringValue ?? "rejected", status: status)
    }

    public var description: String { "KubernetesTestServerError.\(self.code): \(self.message)" }
}

/// Closes connections while ``KubernetesTestServer/refuseConnections(for:)`` is in force.
final class ConnectionGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    private let faults: Faults

    init(faults: Faults) {
        self.faults = faults
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive && self.faults.refusing { context.close(promise: nil) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if self.faults.refusing {
            context.close(promise: nil)
        } else {
            context.fireChannelActive()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.faults.refusing {
            context.close(promise: nil)
        } else {
            context.fireChannelRead(data)
        }
    }
}

@available(*, unavailable)
extension ConnectionGate: Sendable {}

/// A self-signed certificate for `127.0.0.1` and `localhost`, made with the `openssl` command.
enum SelfSignedCertificate {
    static func make(host: String) throws -> (certificate: String, key: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "kube-test-server-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificatePath = directory.appendingPathComponent("cert.pem").path
        let keyPath = directory.appendingPathComponent("key.pem").path
        var names = "IP:127.0.0.1,DNS:localhost"
        if host != "127.0.0.1" && host != "localhost" {
            names += host.allSatisfy({ $0.isNumber || $0 == "." || $0 == ":" }) ? ",IP:\(host)" : ",DNS:\(host)"
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", keyPath, "-out", certificatePath, "-days", "2", "-subj", "/CN=kube-test-server",
            "-addext", "subjectAltName=\(names)", "-addext", "basicConstraints=critical,CA:TRUE",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw KubernetesTestServerError.certificateFailed("cannot run openssl: \(error)")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let certificate = try? String(contentsOfFile: certificatePath, encoding: .utf8),
            let key = try? String(contentsOfFile: keyPath, encoding: .utf8)
        else {
            throw KubernetesTestServerError.certificateFailed(
                "openssl req failed (status \(process.terminationStatus))"
            )
        }
        return (certificate, key)
    }
}
