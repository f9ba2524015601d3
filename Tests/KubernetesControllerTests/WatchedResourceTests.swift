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
import KubernetesClient
import KubernetesController
import KubernetesTestServer
import KubernetesTestSupport
import Logging
import PeerTestSupport
import Prometheus
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// Counts reconciles per key, and whether every cache had synced when each ran.
final class ReconcileLog: Sendable {
    private let state = Mutex<(counts: [ObjectKey: Int], unsynced: Int)>(([:], 0))

    func record(_ key: ObjectKey, synced: Bool) {
        self.state.withLock {
            $0.counts[key, default: 0] += 1
            if !synced { $0.unsynced += 1 }
        }
    }

    func count(_ key: ObjectKey) -> Int { self.state.withLock { $0.counts[key] ?? 0 } }
    var unsynced: Int { self.state.withLock { $0.unsynced } }
}

/// A CustomResourceDefinition the test server does not serve until a test installs it.
let widgetCRD = """
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.example.com
    spec:
      group: example.com
      scope: Namespaced
      names: { plural: widgets, singular: widget, kind: Widget, listKind: WidgetList }
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              x-kubernetes-preserve-unknown-fields: true
    """

extension KubernetesResource {
    static let widgets = KubernetesResource(group: "example.com", version: "v1", plural: "widgets", kind: "Widget")
    static let serviceAccounts = KubernetesResource(
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        kind: "ServiceAccount"
    )
    static let endpoints = KubernetesResource(group: "", version: "v1", plural: "endpoints", kind: "Endpoints")
    static let coreEvents = KubernetesResource(group: "", version: "v1", plural: "events", kind: "Event")
    static let statefulSets = KubernetesResource(
        group: "apps",
        version: "v1",
        plural: "statefulsets",
        kind: "StatefulSet"
    )
    static let replicaSets = KubernetesResource(group: "apps", version: "v1", plural: "replicasets", kind: "ReplicaSet")
    static let endpointSlices = KubernetesResource(
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        kind: "EndpointSlice"
    )
    static let ingresses = KubernetesResource(
        group: "networking.k8s.io",
        version: "v1",
        plural: "ingresses",
        kind: "Ingress"
    )
    static let networkPolicies = KubernetesResource(
        group: "networking.k8s.io",
        version: "v1",
        plural: "networkpolicies",
        kind: "NetworkPolicy"
    )
}

/// The key a test object names in its `parent` label.
@Sendable func parentKey(_ object: KubernetesObject) -> [ObjectKey] {
    guard let parent = object.metadata.labels?["parent"] else { return [] }
    return [ObjectKey(namespace: object.metadata.namespace, name: parent)]
}

/// The text of `registry` as Prometheus scrapes it.
func scrape(_ registry: PrometheusCollectorRegistry) -> String {
    String(decoding: registry.emitToBuffer(), as: UTF8.self)
}

/// The value of the sample `name` whose labels include `labels`, summed over the samples that match.
func sample(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
    var total: Double?
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " ") else { continue }
        let series = line[..<space]
        let metric = series.split(separator: "{", maxSplits: 1).first.map(String.init) ?? ""
        guard metric == name else { continue }
        guard labels.allSatisfy({ series.contains("\($0.key)=\"\($0.value)\"") }) else { continue }
        total = (total ?? 0) + (Double(line[line.index(after: space)...]) ?? 0)
    }
    return total
}

@Suite("Watched resources, optional resources, health and metrics of a Controller", .timeLimit(.minutes(3)))
struct WatchedResourceTests {
    func controller(
        _ client: KubernetesClient,
        namespace: String,
        label: String,
        watches: [WatchedResource],
        configuration: ControllerConfiguration? = nil,
        metrics: ControllerMetrics? = nil,
        log: ReconcileLog,
        reconcile: @escaping @Sendable (ObjectKey, KubernetesObject?) async throws -> ReconcileAction = { _, _ in
            .done
        }
    ) -> Controller<KubernetesObject> {
        let ids = watches.map(\.id)
        let holder = Mutex<Controller<KubernetesObject>?>(nil)
        let controller = Controller<KubernetesObject>(
            client: client,
            resource: .configMaps,
            namespace: namespace,
            watches: watches,
            configuration: configuration
                ?? ControllerConfiguration(resyncPeriod: nil, listWatch: fastOptions(label: label)),
            metrics: metrics,
            logger: quietLogger
        ) { key, object in
            let controller = holder.withLock { $0 }
            let synced =
                controller?.reflector?.hasSynced == true
                && ids.allSatisfy { id in controller?.cache(id).map(\.hasSynced) ?? true }
            log.record(key, synced: synced)
            return try await reconcile(key, object)
        }
        holder.withLock { $0 = controller }
        return controller
    }

    @Test(
        "changes of a watched resource queue the keys it names, its transform reduces what is cached, and workers start only once a dozen caches have synced"
    )
    func watchedResources() async throws {
        try await withTestCluster { cluster in
            let (client, server) = (cluster.client, cluster.server)
            let label = uniqueName("watched")
            let parent = uniqueName("parent")
            let log = ReconcileLog()
            // A secret's values never reach the cache; its label names the ConfigMap it concerns.
            let secrets = WatchedResource(
                id: "secrets",
                .secrets,
                labelSelector: "run=\(label)",
                transform: { secret in
                    var reduced = secret
                    reduced.fields["data"] = nil
                    return reduced
                },
                keys: parentKey
            )
            // Eleven more watches, each holding a connection: over HTTP/1.1 that is more than AsyncHTTPClient's
            // default pool per host, and the reconciles' own requests must still get through.
            let others: [KubernetesResource] = [
                .services, .deployments, .pods, .serviceAccounts, .endpoints, .endpointSlices, .ingresses,
                .networkPolicies, .statefulSets, .replicaSets, .coreEvents,
            ]
            let watches =
                [secrets]
                + others.map { WatchedResource(id: $0.plural, $0, labelSelector: "run=\(label)", keys: parentKey) }
            let controller = self.controller(
                client,
                namespace: cluster.namespace,
                label: label,
                watches: watches,
                log: log
            ) { key, _ in
                // A read in every reconcile: it needs a connection besides the watches'.
                _ = try await client.list(
                    KubernetesObject.self,
                    .configMaps,
                    namespace: key.namespace,
                    options: ListOptions(limit: 1)
                )
                return .done
            }
            _ = try await client.create(
                configMap(parent, namespace: cluster.namespace, label: label, value: "1"),
                .configMaps
            )
            // Some first lists fail and are retried: no reconcile may run before every cache has its list.
            if let server {
                server.failNextRequests(count: 4)
            } else {
                cluster.notExercised("first lists failing and retried (injected into the in-process server)")
            }
            let (task, trigger) = await start(controller)
            let key = ObjectKey(namespace: cluster.namespace, name: parent)
            try await eventually("the ConfigMap reconciled") { log.count(key) >= 1 }
            let before = log.count(key)

            let secretName = uniqueName("secret")
            _ = try await client.create(
                KubernetesObject(
                    apiVersion: "v1",
                    kind: "Secret",
                    metadata: ObjectMeta(
                        name: secretName,
                        namespace: cluster.namespace,
                        labels: ["run": label, "parent": parent]
                    ),
                    fields: ["data": ["key": "c2VjcmV0"]]
                ),
                .secrets
            )
            try await eventually("the Secret's parent reconciled again") { log.count(key) > before }
            let cached = try #require(
                controller.cache("secrets")?.get(ObjectKey(namespace: cluster.namespace, name: secretName))
            )
            #expect(cached["data"] == nil, "the transform keeps values out of the cache")
            #expect(controller.cache("pods") != nil)
            #expect(log.unsynced == 0, "a reconcile ran before every cache had synced")
            #expect(controller.health.isReady)
            #expect(controller.health.isLive)

            trigger.triggerGracefulShutdown()
            try await task.value
            try await client.delete(.secrets, name: secretName, namespace: cluster.namespace)
            try await client.delete(.configMaps, name: parent, namespace: cluster.namespace)
        }
    }

    @Test(
        "an optional resource not served: its cache is nil and workers run; once served it is watched, every key queued",
        .disabled(
            if: isRealCluster,
            "installs a CRD into the in-process server; one never to be deleted on a real cluster"
        )
    )
    func optionalResource() async throws {
        try await withTestCluster { cluster in
            let client = cluster.client
            // Installs a CRD during the test, which must not be served before: the in-process server only.
            let server = try #require(cluster.server)
            let label = uniqueName("optional")
            let parent = uniqueName("parent")
            let log = ReconcileLog()
            var configuration = ControllerConfiguration(resyncPeriod: nil, listWatch: fastOptions(label: label))
            configuration.absentResourceRetry = .milliseconds(200)
            let controller = self.controller(
                client,
                namespace: cluster.namespace,
                label: label,
                watches: [WatchedResource(id: "widgets", .widgets, isOptional: true, keys: parentKey)],
                configuration: configuration,
                log: log
            )
            _ = try await client.create(
                configMap(parent, namespace: cluster.namespace, label: label, value: "1"),
                .configMaps
            )
            let (task, trigger) = await start(controller)
            let key = ObjectKey(namespace: cluster.namespace, name: parent)
            try await eventually("reconciled without the widgets") { log.count(key) >= 1 }
            #expect(controller.cache("widgets") == nil)
            #expect(controller.health.isReady, "\(controller.health)")

            let before = log.count(key)
            try server.installCRD(yaml: widgetCRD)
            try await eventually("widgets served and watched") { controller.cache("widgets") != nil }
            try await eventually("every key queued again once they are served") { log.count(key) > before }
            let afterServed = log.count(key)
            _ = try await client.create(
                KubernetesObject(
                    apiVersion: "example.com/v1",
                    kind: "Widget",
                    metadata: ObjectMeta(name: "w", namespace: cluster.namespace, labels: ["parent": parent])
                ),
                .widgets
            )
            try await eventually("a widget queues its parent") { log.count(key) > afterServed }

            trigger.triggerGracefulShutdown()
            try await task.value
        }
    }

    @Test(
        "health: ready once every cache synced; a watch that cannot reach the server for the stall timeout is not live",
        .disabled(if: isRealCluster, "refuses connections of the in-process server: not on a real cluster")
    )
    func health() async throws {
        try await withTestCluster { cluster in
            let client = cluster.client
            let server = try #require(cluster.server)
            let label = uniqueName("health")
            var configuration = ControllerConfiguration(resyncPeriod: nil, listWatch: fastOptions(label: label))
            configuration.stallTimeout = .seconds(1)
            let controller = self.controller(
                client,
                namespace: cluster.namespace,
                label: label,
                watches: [WatchedResource(id: "secrets", .secrets, labelSelector: "run=\(label)", keys: parentKey)],
                configuration: configuration,
                log: ReconcileLog()
            )
            #expect(!controller.health.isReady, "not running yet")
            let (task, trigger) = await start(controller)
            try await eventually("ready") { controller.health.isReady && controller.health.isLive }

            server.refuseConnections(for: .seconds(4))
            server.dropWatches()
            try await eventually("stalled", timeout: .seconds(4)) { !controller.health.isLive }
            #expect(!controller.health.stalled.isEmpty)
            try await eventually("live again", timeout: .seconds(20)) { controller.health.isLive }

            trigger.triggerGracefulShutdown()
            try await task.value
            #expect(!controller.health.isReady && !controller.health.isLeading)
            #expect(!controller.health.isLive, "stopped: nothing watches any more")
        }
    }

    @Test(
        "metrics: reconciles by result, failures by reason, duration and queue latency, depth, requests by verb and code"
    )
    func metrics() async throws {
        try await withTestCluster { cluster in
            let registry = PrometheusCollectorRegistry()
            let factory = PrometheusMetricsFactory(registry: registry)
            let label = uniqueName("metrics")
            let name = uniqueName("parent")
            let client = cluster.client.adding(KubernetesRequestMetrics(prefix: "test", factory: factory))
            let attempts = Mutex(0)
            let controller = self.controller(
                client,
                namespace: cluster.namespace,
                label: label,
                watches: [],
                metrics: ControllerMetrics(prefix: "test", factory: factory),
                log: ReconcileLog()
            ) { key, object in
                let attempt = attempts.withLock {
                    $0 += 1
                    return $0
                }
                switch attempt {
                case 1:
                    // Creating what exists: 409 AlreadyExists.
                    _ = try await client.create(
                        configMap(key.name, namespace: cluster.namespace, label: label, value: "again"),
                        .configMaps
                    )
                    return .done
                case 2:
                    return .requeue(after: .milliseconds(10))
                default:
                    return .done
                }
            }
            _ = try await client.create(
                configMap(name, namespace: cluster.namespace, label: label, value: "1"),
                .configMaps
            )
            let (task, trigger) = await start(controller)
            try await eventually("failed, requeued and done") { attempts.withLock { $0 } >= 3 }
            let text = scrape(registry)
            #expect(sample(text, "test_reconciles_total", ["result": "error"]) == 1, "\(text)")
            #expect(sample(text, "test_reconciles_total", ["result": "requeue"]) == 1)
            #expect((sample(text, "test_reconciles_total", ["result": "success"]) ?? 0) >= 1)
            #expect(sample(text, "test_reconcile_failures_total", ["reason": "AlreadyExists"]) == 1)
            #expect((sample(text, "test_reconcile_duration_seconds_count") ?? 0) >= 3)
            #expect((sample(text, "test_workqueue_latency_seconds_count") ?? 0) >= 3)
            #expect(sample(text, "test_workqueue_depth") != nil)
            #expect(sample(text, "test_leader") == 1)
            #expect(
                sample(
                    text,
                    "test_kubernetes_requests_total",
                    ["verb": "create", "resource": "configmaps", "code": "409"]
                )
                    == 1
            )
            #expect(
                (sample(
                    text,
                    "test_kubernetes_requests_total",
                    ["verb": "list", "resource": "configmaps", "code": "200"]
                )
                    ?? 0) >= 1
            )
            #expect(
                (sample(
                    text,
                    "test_kubernetes_requests_total",
                    ["verb": "watch", "resource": "configmaps", "code": "200"]
                )
                    ?? 0) >= 1
            )
            trigger.triggerGracefulShutdown()
            try await task.value
            #expect(sample(scrape(registry), "test_leader") == 0)
            try await client.delete(.configMaps, name: name, namespace: cluster.namespace)
        }
    }
}

@Suite("Controller runtime parts without a server")
struct ControllerPartsTests {
    @Test("the queue says how long a key waited: from its add, its delay's deadline, or the done that queued it again")
    func queueLatency() {
        var machine = WorkQueueStateMachine<String, TestInstant>()
        let t0 = TestInstant.zero
        machine.add("a", now: t0)
        var (action, waited) = machine.take(now: t0.advanced(by: .seconds(3)))
        #expect(action == .process("a"))
        #expect(waited == .seconds(3))

        machine.add("a", now: t0.advanced(by: .seconds(4)))  // while in flight: queued again at done
        machine.done("a", now: t0.advanced(by: .seconds(5)))
        (action, waited) = machine.take(now: t0.advanced(by: .seconds(7)))
        #expect(action == .process("a") && waited == .seconds(2))
        machine.done("a", now: t0.advanced(by: .seconds(7)))

        machine.add("b", after: .seconds(10), now: t0)
        (action, waited) = machine.take(now: t0.advanced(by: .seconds(11)))
        #expect(action == .process("b") && waited == .seconds(1))

        machine.add("c")
        (action, waited) = machine.take(now: t0.advanced(by: .seconds(12)))
        #expect(action == .process("c") && waited == nil, "queued without a time: no latency")
    }

    @Test("write expectations: behind until the cache shows the written version or the expectation lapses")
    func expectations() throws {
        let expectations = WriteExpectations(timeout: .seconds(60))
        let key = ObjectKey(namespace: "ns", name: "a")
        var written = KubernetesObject(
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: ObjectMeta(name: "a", namespace: "ns")
        )
        written.metadata.resourceVersion = "7"
        expectations.expect(.configMaps, written: written, note: "hash")
        #expect(expectations.isBehind(.configMaps, key, cachedVersion: nil))
        #expect(expectations.pendingWrite(.configMaps, key, cachedVersion: "6") == .some("hash"))
        #expect(!expectations.isBehind(.secrets, key, cachedVersion: "6"), "another resource")
        expectations.observe(.configMaps, .upserted(written))
        #expect(!expectations.isBehind(.configMaps, key, cachedVersion: "6"), "fulfilled by the event")

        expectations.expectDeletion(.configMaps, key)
        #expect(expectations.isBehind(.configMaps, key, cachedVersion: "7"))
        #expect(!expectations.isBehind(.configMaps, key, cachedVersion: nil))

        let lapsing = WriteExpectations(timeout: .zero)
        lapsing.expect(.configMaps, written: written)
        #expect(!lapsing.isBehind(.configMaps, key, cachedVersion: "6"))
        #expect(lapsing.count == 0)
    }

    @Test("write expectations: a write whose event came before its answer expects nothing, so a later edit shows")
    func expectationsAfterTheirEvent() throws {
        let expectations = WriteExpectations(timeout: .seconds(60))
        let key = ObjectKey(namespace: "ns", name: "a")
        // What the caches hold: the event of version 7 was delivered (and observed) before the write answered.
        let cached = Mutex<String?>("7")
        expectations.reset { resource, _ in resource == .configMaps ? [nil, cached.withLock { $0 }] : [] }
        var written = KubernetesObject(
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: ObjectMeta(name: "a", namespace: "ns")
        )
        written.metadata.resourceVersion = "7"
        expectations.expect(.configMaps, written: written, note: "hash")
        #expect(expectations.count == 0, "the caches show the write already")
        // Someone edits it: the cache's version 8 is newer, not older, than the write.
        cached.withLock { $0 = "8" }
        #expect(expectations.pendingWrite(.configMaps, key, cachedVersion: "8") == nil)

        // Not delivered yet: expected, and fulfilled by its event as before.
        written.metadata.resourceVersion = "9"
        expectations.expect(.configMaps, written: written, note: "hash")
        #expect(expectations.pendingWrite(.configMaps, key, cachedVersion: "8") == .some("hash"))
        cached.withLock { $0 = "9" }
        expectations.observe(.configMaps, .upserted(written))
        #expect(expectations.count == 0)

        // A deletion the caches show already (every cache of the resource without the object) expects nothing.
        cached.withLock { $0 = nil }
        expectations.expectDeletion(.configMaps, key)
        #expect(expectations.count == 0)
        // One the cache has not shown yet is expected until it does.
        cached.withLock { $0 = "9" }
        expectations.expectDeletion(.configMaps, key)
        #expect(expectations.isBehind(.configMaps, key, cachedVersion: "9"))
    }

    @Test(
        "requests are counted by their RBAC verb and resource",
        arguments: [
            (KubernetesRequest(method: .get, path: "/api/v1/namespaces/a/secrets/b"), "get", "secrets"),
            (KubernetesRequest(method: .get, path: "/api/v1/namespaces/a/secrets"), "list", "secrets"),
            (
                KubernetesRequest(method: .get, path: "/apis/apps/v1/deployments", query: [("watch", "true")]), "watch",
                "deployments"
            ),
            (KubernetesRequest(method: .post, path: "/api/v1/namespaces/a/configmaps"), "create", "configmaps"),
            (
                KubernetesRequest(
                    method: .patch,
                    path: "/apis/apps/v1/namespaces/a/deployments/b",
                    headers: [("Content-Type", "application/apply-patch+yaml")]
                ), "apply", "deployments"
            ),
            (
                KubernetesRequest(
                    method: .patch,
                    path: "/apis/liverelay.io/v1alpha1/namespaces/a/livestreams/b/status",
                    headers: [("Content-Type", "application/merge-patch+json")]
                ), "patch", "livestreams/status"
            ),
            (
                KubernetesRequest(method: .put, path: "/apis/apps/v1/namespaces/a/deployments/b/scale"), "update",
                "deployments/scale"
            ),
            (
                KubernetesRequest(method: .delete, path: "/apis/networking.k8s.io/v1/namespaces/a/ingresses/b"),
                "delete", "ingresses"
            ),
            (KubernetesRequest(method: .get, path: "/apis/keda.sh/v1alpha1"), "get", "discovery"),
        ]
    )
    func requestVerbs(request: KubernetesRequest, verb: String, resource: String) {
        let described = KubernetesRequestMetrics.describe(request)
        #expect(described.verb == verb)
        #expect(described.resource == resource)
    }

    @Test("failure reasons are the API server's reason or a fixed word, never a message")
    func failureReasons() {
        #expect(
            ControllerMetrics.reason(of: KubernetesError(code: .transport, message: "refused by 10.0.0.1"))
                == "Transport"
        )
        #expect(ControllerMetrics.reason(of: CancellationError()) == "CancellationError")
        let conflict = KubernetesError(
            code: .apiError,
            message: "Operation cannot be fulfilled on deployments \"ls-alice\"",
            status: Status(message: "the object has been modified", reason: "Conflict", code: 409)
        )
        #expect(ControllerMetrics.reason(of: conflict) == "Conflict")
        let bare = KubernetesError(code: .apiError, message: "x", status: Status(reason: "weird reason!", code: 418))
        #expect(ControllerMetrics.reason(of: bare) == "HTTP418")
    }
}
