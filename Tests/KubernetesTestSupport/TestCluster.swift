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

public import Foundation
public import KubernetesClient
public import KubernetesTestServer
import Logging
import PeerTestSupport
import Yams

/// The kubeconfig of `LIVERELAY_TEST_KUBECONFIG`, when it names one: the Kubernetes tests then run against that
/// cluster instead of an in-process test server.
public var realClusterKubeconfig: String? {
    guard let path = ProcessInfo.processInfo.environment["LIVERELAY_TEST_KUBECONFIG"], !path.isEmpty else {
        return nil
    }
    return path
}

/// Whether the Kubernetes tests run against the cluster of `LIVERELAY_TEST_KUBECONFIG`.
public var isRealCluster: Bool { realClusterKubeconfig != nil }

/// A name no other test (or earlier run on a real cluster) uses.
public func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}

/// Files of the repository the tests install, and the schemas beside it.
public enum TestSupportPaths {
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    /// The LiveStream CustomResourceDefinition.
    public static let liveStreamCRD = repository.appendingPathComponent("crds/livestream.yaml").path
    /// KEDA's ScaledObject CustomResourceDefinition.
    public static let kedaCRD = repository.deletingLastPathComponent()
        .appendingPathComponent("shared/schemas/keda.sh_scaledobjects.yaml").path
}

/// A CustomResourceDefinition a test needs served.
public struct TestCRD: Sendable, Hashable {
    /// `plural.group`, the CRD's name.
    public let name: String
    /// The YAML file that defines it.
    public let path: String
    /// A resource it defines, listed to learn whether it is served.
    public let resource: KubernetesResource

    public init(name: String, path: String, resource: KubernetesResource) {
        self.name = name
        self.path = path
        self.resource = resource
    }

    /// `livestreams.liverelay.io`, from crds/livestream.yaml.
    public static let liveStream = TestCRD(
        name: "livestreams.liverelay.io",
        path: TestSupportPaths.liveStreamCRD,
        resource: KubernetesResource(
            group: "liverelay.io",
            version: "v1alpha1",
            plural: "livestreams",
            kind: "LiveStream"
        )
    )

    /// `scaledobjects.keda.sh`, KEDA's, installed only where KEDA's is not served already.
    public static let kedaScaledObject = TestCRD(
        name: "scaledobjects.keda.sh",
        path: TestSupportPaths.kedaCRD,
        resource: KubernetesResource(
            group: "keda.sh",
            version: "v1alpha1",
            plural: "scaledobjects",
            kind: "ScaledObject"
        )
    )
}

/// The cluster of one test: a namespace of its own, in the in-process test server or in the cluster of
/// `LIVERELAY_TEST_KUBECONFIG`.
public struct TestCluster: Sendable {
    /// A client whose default namespace is ``namespace``.
    public let client: KubernetesClient
    /// The in-process server, for tests that inject faults or write past the API; `nil` on a real cluster.
    public let server: KubernetesTestServer?
    /// A kubeconfig file whose current context has ``namespace`` as its namespace, for kubectl and child processes.
    public let kubeconfig: String
    /// `lrt-` and 8 hex digits: created for this test, deleted after it.
    public let namespace: String
    /// Whether KEDA's ScaledObject is served: a real KEDA's, or the CRD installed for a test that asked for it.
    public let kedaServed: Bool

    /// Whether this is the cluster of `LIVERELAY_TEST_KUBECONFIG`.
    public var isReal: Bool { self.server == nil }

    /// Says in the test output that a step needing the in-process server (fault injection, writes past the API) was
    /// not exercised on this real cluster.
    public func notExercised(_ what: String, in function: String = #function) {
        guard self.isReal else { return }
        print("[real cluster] \(function): not exercised: \(what)")
    }
}

/// Creates the gateway Service the operator adds stream ports to (the Helm chart's job in a cluster): by default a
/// NodePort Service on the in-process server, and a ClusterIP one on a real cluster, where node ports are taken
/// cluster-wide and the operators of tests running in parallel, each in its own namespace, would give the same ones.
public func createGatewayService(_ cluster: TestCluster, type: String? = nil) async throws {
    let type = type ?? (cluster.isReal ? "ClusterIP" : "NodePort")
    let service = KubernetesObject(
        apiVersion: "v1",
        kind: "Service",
        metadata: ObjectMeta(name: "liverelay-gateway", namespace: cluster.namespace),
        fields: [
            "spec": [
                "type": .string(type),
                "selector": ["app.kubernetes.io/name": "liverelay-gateway"],
                "ports": [["name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"]],
            ]
        ]
    )
    do {
        _ = try await cluster.client.create(service, .services, namespace: cluster.namespace)
    } catch let error as KubernetesError where error.isConflict {}
}

/// Runs `body` in a namespace of its own (`lrt-` and 8 hex digits), on the in-process test server or, when
/// `LIVERELAY_TEST_KUBECONFIG` names a kubeconfig, on that cluster.
///
/// First it installs `crds` by server-side apply (idempotent; a real cluster's copy is updated to the repository's,
/// never deleted, since tests run in parallel), and KEDA's ScaledObject CRD when `keda` is set and no KEDA serves it.
/// Afterwards, whatever `body` did, it releases the finalizers of the LiveStreams left in the namespace (their
/// operator is gone) and deletes the namespace. `tls` and `bearerToken` configure the in-process server only.
public func withTestCluster<T>(
    crds: [TestCRD] = [],
    keda: Bool = false,
    tls: Bool = false,
    bearerToken: String? = nil,
    _ body: (TestCluster) async throws -> T
) async throws -> T {
    let namespace = "lrt-\(UUID().uuidString.prefix(8).lowercased())"
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(namespace)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(
        at: directory,
        withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700]
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let kubeconfig = directory.appendingPathComponent("kubeconfig").path

    if let path = realClusterKubeconfig {
        try writeKubeconfig(from: path, to: kubeconfig, namespace: namespace)
        let configuration = try KubernetesConfiguration.kubeconfig(path: kubeconfig)
        return try await withKubernetesClient(configuration: configuration) { client in
            try await inNamespace(
                client: client,
                server: nil,
                kubeconfig: kubeconfig,
                namespace: namespace,
                crds: crds,
                keda: keda,
                body
            )
        }
    }
    return try await withTestServer(
        configuration: .init(tls: tls, bearerToken: bearerToken, bookmarkInterval: .milliseconds(500)),
        namespace: namespace
    ) { server, client in
        try server.writeKubeconfig(to: kubeconfig, namespace: namespace)
        return try await inNamespace(
            client: client,
            server: server,
            kubeconfig: kubeconfig,
            namespace: namespace,
            crds: crds,
            keda: keda,
            body
        )
    }
}

/// Runs `body` with an in-process test server and a client of it whose default namespace is `namespace`: what
/// ``withTestCluster(crds:keda:tls:bearerToken:_:)`` runs on, for tests that need the whole server rather than a
/// namespace of their own (a chart's cluster-scoped objects and its release namespace).
///
/// The server logs warnings only, and the client retries a refused or throttled request after 20 ms instead of its
/// production default, so that fault tests do not wait.
public func withTestServer<T>(
    configuration: KubernetesTestServer.Configuration = .init(bookmarkInterval: .milliseconds(500)),
    namespace: String = "default",
    _ body: (KubernetesTestServer, KubernetesClient) async throws -> T
) async throws -> T {
    var logger = Logger(label: "kube-test-server")
    logger.logLevel = .warning
    return try await withKubernetesTestServer(configuration: configuration, logger: logger) { server in
        var clientConfiguration = try KubernetesConfiguration.kubeconfig(
            yaml: server.kubeconfig(namespace: namespace),
            baseDirectory: "/"
        )
        clientConfiguration.retry.defaultDelay = .milliseconds(20)
        return try await withKubernetesClient(configuration: clientConfiguration) { client in
            try await body(server, client)
        }
    }
}

private let fieldManager = "liverelay-tests"

private let customResourceDefinitions = KubernetesResource(
    group: "apiextensions.k8s.io",
    version: "v1",
    plural: "customresourcedefinitions",
    kind: "CustomResourceDefinition",
    namespaced: false
)

/// The same steps on either kind of cluster: install, create the namespace, run, clean up.
private func inNamespace<T>(
    client: KubernetesClient,
    server: KubernetesTestServer?,
    kubeconfig: String,
    namespace: String,
    crds: [TestCRD],
    keda: Bool,
    _ body: (TestCluster) async throws -> T
) async throws -> T {
    for crd in crds { try await install(crd, client: client) }
    var kedaServed = try await isServed(TestCRD.kedaScaledObject, client: client)
    if keda && !kedaServed {
        try await install(.kedaScaledObject, client: client)
        kedaServed = true
    }
    _ = try await client.create(
        KubernetesObject(
            apiVersion: "v1",
            kind: "Namespace",
            metadata: ObjectMeta(name: namespace, labels: ["liverelay.io/test": "true"])
        ),
        .namespaces
    )
    let cluster = TestCluster(
        client: client,
        server: server,
        kubeconfig: kubeconfig,
        namespace: namespace,
        kedaServed: kedaServed
    )
    let result: T
    do {
        result = try await body(cluster)
    } catch {
        // The test's failure is the one to report; a failed cleanup is only printed then.
        do {
            try await cleanUp(cluster)
        } catch let cleanup {
            print("cleanup of namespace \(namespace) failed: \(cleanup)")
        }
        throw error
    }
    try await cleanUp(cluster)
    return result
}

/// Releases the finalizers of the LiveStreams left in the namespace, then deletes it. Runs in a task of its own, so
/// a test cancelled by its time limit still cleans up.
private func cleanUp(_ cluster: TestCluster) async throws {
    try await Task {
        let client = cluster.client
        let namespace = cluster.namespace
        let liveStreams = TestCRD.liveStream.resource
        do {
            let (items, _) = try await client.listAll(KubernetesObject.self, liveStreams, namespace: namespace)
            for item in items where !(item.metadata.finalizers ?? []).isEmpty {
                guard let name = item.metadata.name else { continue }
                do {
                    _ = try await client.patch(
                        KubernetesObject.self,
                        liveStreams,
                        name: name,
                        namespace: namespace,
                        mergePatch: ["metadata": ["finalizers": nil]]
                    )
                } catch let error as KubernetesError where error.isNotFound {}
            }
        } catch let error as KubernetesError where error.isNotFound {
            // LiveStreams are not served here: nothing to release.
        }
        do {
            try await client.delete(.namespaces, name: namespace, propagationPolicy: .background)
        } catch let error as KubernetesError where error.isNotFound {}
    }.value
}

/// Whether `crd`'s resource is served: a list of it succeeds.
private func isServed(_ crd: TestCRD, client: KubernetesClient) async throws -> Bool {
    do {
        _ = try await client.list(
            KubernetesObject.self,
            crd.resource,
            namespace: client.namespace,
            options: ListOptions(limit: 1)
        )
        return true
    } catch let error as KubernetesError where error.isNotFound {
        return false
    }
}

/// Applies `crd` server-side and waits until its resource is served.
private func install(_ crd: TestCRD, client: KubernetesClient) async throws {
    let documents = try JSON.documents(yaml: String(contentsOfFile: crd.path, encoding: .utf8))
    guard let document = documents.first(where: { $0["kind"]?.stringValue == "CustomResourceDefinition" }) else {
        throw TestClusterError("\(crd.path) holds no CustomResourceDefinition")
    }
    let object = try JSONDecoder().decode(JSONValue.self, from: document.encoded())
    let applied = try await client.apply(
        object,
        as: KubernetesObject.self,
        customResourceDefinitions,
        name: crd.name,
        fieldManager: fieldManager,
        force: true
    )
    if !isEstablished(applied) {
        let events = try await client.watch(
            KubernetesObject.self,
            customResourceDefinitions,
            options: WatchOptions(
                resourceVersion: applied.metadata.resourceVersion,
                fieldSelector: "metadata.name=\(crd.name)",
                timeoutSeconds: 60
            )
        )
        watching: for try await event in events {
            switch event {
            case .added(let object), .modified(let object):
                if isEstablished(object) { break watching }
            default:
                continue
            }
        }
    }
    // kube-apiserver serves a resource a moment after its CRD is Established (its handlers are installed
    // asynchronously); there is no event for that, so this asks until it is.
    try await eventually("\(crd.name), Established, to be served", interval: .milliseconds(100)) {
        try await isServed(crd, client: client)
    }
}

private func isEstablished(_ crd: KubernetesObject) -> Bool {
    guard case .array(let conditions)? = crd["status"]?["conditions"] else { return false }
    return conditions.contains { $0["type"]?.stringValue == "Established" && $0["status"]?.stringValue == "True" }
}

/// Writes `source` (a kubeconfig) to `destination` with `namespace` as the current context's namespace. File paths
/// in it are made absolute, since they were relative to the source's directory.
private func writeKubeconfig(from source: String, to destination: String, namespace: String) throws {
    let text = try String(contentsOfFile: source, encoding: .utf8)
    guard var config = try Yams.load(yaml: text) as? [String: Any] else {
        throw TestClusterError("\(source) is not a kubeconfig")
    }
    let base = URL(fileURLWithPath: source).deletingLastPathComponent().path
    func absolute(_ value: Any?) -> Any? {
        guard let path = value as? String, !path.isEmpty, !path.hasPrefix("/") else { return value }
        return "\(base)/\(path)"
    }
    guard let current = config["current-context"] as? String,
        var contexts = config["contexts"] as? [[String: Any]],
        let index = contexts.firstIndex(where: { $0["name"] as? String == current })
    else {
        throw TestClusterError("\(source) has no current-context")
    }
    var context = contexts[index]["context"] as? [String: Any] ?? [:]
    context["namespace"] = namespace
    contexts[index]["context"] = context
    config["contexts"] = contexts
    if var clusters = config["clusters"] as? [[String: Any]] {
        for index in clusters.indices {
            guard var cluster = clusters[index]["cluster"] as? [String: Any] else { continue }
            cluster["certificate-authority"] = absolute(cluster["certificate-authority"])
            clusters[index]["cluster"] = cluster
        }
        config["clusters"] = clusters
    }
    if var users = config["users"] as? [[String: Any]] {
        for index in users.indices {
            guard var user = users[index]["user"] as? [String: Any] else { continue }
            for key in ["client-certificate", "client-key", "tokenFile"] { user[key] = absolute(user[key]) }
            if var exec = user["exec"] as? [String: Any], let command = exec["command"] as? String,
                command.contains("/")
            {
                exec["command"] = absolute(command)
                user["exec"] = exec
            }
            users[index]["user"] = user
        }
        config["users"] = users
    }
    let yaml = try Yams.dump(object: config)
    // It holds the cluster's credentials: readable by this user only.
    guard
        FileManager.default.createFile(
            atPath: destination,
            contents: Data(yaml.utf8),
            attributes: [.posixPermissions: 0o600]
        )
    else {
        throw TestClusterError("cannot write \(destination)")
    }
}

/// A cluster a test cannot be given: an unreadable kubeconfig or CRD file, a CRD never served.
public struct TestClusterError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}
