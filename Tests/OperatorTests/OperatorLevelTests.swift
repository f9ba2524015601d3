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
import KubernetesTestSupport
import LiveStreamModel
import Operator
import PeerTestSupport
import Synchronization
import Testing

/// Counts what a client asks the API server, by RBAC verb and resource, from when it is asked to.
final class VerbCounter: KubernetesMiddleware {
    struct Request: Sendable, CustomStringConvertible {
        var verb: String
        var resource: String
        var path: String
        var description: String { "\(self.verb) \(self.path)" }
        var isWrite: Bool { !["get", "list", "watch"].contains(self.verb) }
    }

    private let state = Mutex<(counting: Bool, requests: [Request])>((false, []))

    /// Starts counting from zero.
    func start() { self.state.withLock { $0 = (true, []) } }
    var requests: [Request] { self.state.withLock { $0.requests } }

    func intercept(
        _ request: KubernetesRequest,
        body: KubernetesBody?,
        next: @Sendable (KubernetesRequest, KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    ) async throws -> (KubernetesResponse, KubernetesBody) {
        let (verb, resource) = KubernetesRequestMetrics.describe(request)
        self.state.withLock { state in
            if state.counting { state.requests.append(Request(verb: verb, resource: resource, path: request.path)) }
        }
        return try await next(request, body)
    }
}

/// What the resync of a controller does: every key queued at once. Returns once the queue has drained.
func resyncAndDrain(_ running: RunningOperator) async throws {
    let controller = running.instance.controller
    let queue = try #require(controller.queue)
    for key in controller.reflector?.keys ?? [] { queue.add(key) }
    try await waitUntilIdle(running)
}

/// Returns once nothing is queued or in flight (delayed keys may remain).
func waitUntilIdle(_ running: RunningOperator) async throws {
    let queue = try #require(running.instance.controller.queue)
    try await eventually("the queue drained", timeout: .seconds(60), interval: .milliseconds(20)) {
        let counts = queue.counts
        return counts.queued == 0 && counts.inFlight == 0
    }
}

extension KubernetesClient {
    func child(_ resource: KubernetesResource, _ name: String, namespace: String) async throws -> KubernetesObject {
        try await self.get(KubernetesObject.self, resource, name: name, namespace: namespace)
    }

    func createSecret(_ name: String, namespace: String, data: [String: String]) async throws {
        let secret = KubernetesObject(
            apiVersion: "v1",
            kind: "Secret",
            metadata: ObjectMeta(name: name, namespace: namespace),
            fields: [
                "type": "Opaque", "data": .object(data.mapValues { .string(Data($0.utf8).base64EncodedString()) }),
            ]
        )
        _ = try await self.create(secret, .secrets, namespace: namespace)
    }
}

/// Level-based: every child, the key Secrets and the gateway Service are watched, so a change to any is acted on
/// within a moment, with no resync (the test configuration has none).
@Suite("Operator: every child and every named Secret watched", .timeLimit(.minutes(3)))
struct OperatorLevelTests {
    /// Within seconds: a resync (300 s by default, none in these tests) would be far later.
    let soon = Duration.seconds(8)

    @Test("a child deleted or edited by hand is restored within seconds; so is a deleted generated key")
    func childrenRestored() async throws {
        try await withTestCluster(crds: [.liveStream], keda: true) { cluster in
            try await createGatewayService(cluster)
            try await withOperator(cluster, configuration: try testConfiguration(cluster)) { _ in
                let client = cluster.client
                let ns = cluster.namespace
                let name = uniqueName("lv")
                let child = RelayChildren.childName(name)
                _ = try await client.createLiveStream(name, namespace: ns)
                try await eventually("Ready") {
                    try await client.liveStream(name, namespace: ns).condition("Ready")?["status"] == "True"
                }
                for resource in [
                    KubernetesResource.deployments, .services, .configMaps, .networkPolicies, .ingresses,
                    .scaledObjects,
                ] {
                    let uid = try await client.child(resource, child, namespace: ns).metadata.uid
                    try await client.delete(resource, name: child, namespace: ns)
                    try await eventually("\(resource.plural) restored", timeout: self.soon) {
                        try await client.child(resource, child, namespace: ns).metadata.uid != uid
                    }
                }

                // Edited by hand: the operator's fields come back.
                _ = try await client.patch(
                    KubernetesObject.self,
                    .networkPolicies,
                    name: child,
                    namespace: ns,
                    mergePatch: ["spec": ["ingress": []]]
                )
                try await eventually("the NetworkPolicy's rules restored", timeout: self.soon) {
                    let policy = try await client.child(.networkPolicies, child, namespace: ns)
                    return policy["spec"]?["ingress"]?.arrayValues.count == 2
                }
                _ = try await client.patch(
                    KubernetesObject.self,
                    .configMaps,
                    name: child,
                    namespace: ns,
                    mergePatch: ["data": ["livestream.yaml": "{}"]]
                )
                try await eventually("the relay's document restored", timeout: self.soon) {
                    let map = try await client.child(.configMaps, child, namespace: ns)
                    return map["data"]?["livestream.yaml"]?.stringValue?.contains(name) == true
                }
                _ = try await client.patch(
                    KubernetesObject.self,
                    .scaledObjects,
                    name: child,
                    namespace: ns,
                    mergePatch: ["spec": ["cooldownPeriod": 1]]
                )
                try await eventually("the ScaledObject's cooldown restored", timeout: self.soon) {
                    let scaled = try await client.child(.scaledObjects, child, namespace: ns)
                    return scaled["spec"]?["cooldownPeriod"] == .int(Int64(LiveStreamSpec.Scaling.defaultIdleSeconds))
                }

                // The generated key deleted: a new one, with an event.
                let keyName = "\(name)-stream-key"
                let keyUID = try await client.child(.secrets, keyName, namespace: ns).metadata.uid
                try await client.delete(.secrets, name: keyName, namespace: ns)
                try await eventually("a new key generated", timeout: self.soon) {
                    try await client.child(.secrets, keyName, namespace: ns).metadata.uid != keyUID
                }
                #expect(
                    try await client.liveStream(name, namespace: ns).condition("StreamKey")?["reason"] == "Generated"
                )
            }
        }
    }

    @Test("a new stream key rolls the relay out: its pod template records the key Secret's version")
    func newKeyRollsOut() async throws {
        try await withTestCluster(crds: [.liveStream], keda: true) { cluster in
            try await createGatewayService(cluster)
            try await withOperator(cluster, configuration: try testConfiguration(cluster)) { _ in
                let client = cluster.client
                let ns = cluster.namespace
                let name = uniqueName("lk")
                let child = RelayChildren.childName(name)
                let keyName = "\(name)-stream-key"
                _ = try await client.createLiveStream(name, namespace: ns)
                try await eventually("Ready") {
                    try await client.liveStream(name, namespace: ns).condition("Ready")?["status"] == "True"
                }
                func recorded() async throws -> String? {
                    let deployment = try await client.child(.deployments, child, namespace: ns)
                    return deployment["spec"]?["template"]?["metadata"]?["annotations"]?[
                        RelayChildren.streamKeyVersionAnnotation
                    ]?.stringValue
                }
                var secret = try await client.child(.secrets, keyName, namespace: ns)
                #expect(try await recorded() == secret.metadata.resourceVersion)
                // Written once: the generated key's version was known when the Deployment was created.
                #expect(try await client.child(.deployments, child, namespace: ns).metadata.generation == 1)

                // A new key, as the console's "New key" writes it.
                secret["data"] = ["streamKey": .string(Data(StreamKey.generate().utf8).base64EncodedString())]
                let updated = try await client.update(secret, .secrets, namespace: ns)
                try await eventually("the relay's pod template records the new key", timeout: self.soon) {
                    try await recorded() == updated.metadata.resourceVersion
                }
            }
        }
    }

    @Test("a target key Secret that appears, loses its key, or gets it back requeues its stream at once")
    func referencedSecrets() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            try await createGatewayService(cluster)
            try await withOperator(cluster, configuration: try testConfiguration(cluster)) { _ in
                let client = cluster.client
                let ns = cluster.namespace
                let name = uniqueName("ref")
                let secret = "\(name)-yt"
                _ = try await client.createLiveStream(
                    name,
                    namespace: ns,
                    spec: [
                        "targets": [
                            [
                                "name": "yt", "url": "rtmp://a.example.com/live",
                                "streamKeySecretRef": ["name": .string(secret), "key": "key"],
                            ]
                        ]
                    ]
                )
                try await eventually("waiting for the target's key") {
                    try await client.liveStream(name, namespace: ns).condition("Ready")?["reason"] == "SecretMissing"
                }
                // Before, a stream missing a Secret looked again only every 30 seconds.
                try await client.createSecret(secret, namespace: ns, data: ["key": "live_123"])
                try await eventually("Ready once the Secret exists", timeout: self.soon) {
                    try await client.liveStream(name, namespace: ns).condition("Ready")?["status"] == "True"
                }
                _ = try await client.patch(
                    KubernetesObject.self,
                    .secrets,
                    name: secret,
                    namespace: ns,
                    mergePatch: ["data": ["key": .null, "other": "eA=="]]
                )
                try await eventually("SecretMissing once the key is gone", timeout: self.soon) {
                    let ready = try await client.liveStream(name, namespace: ns).condition("Ready")
                    return ready?["reason"] == "SecretMissing"
                        && ready?["message"]?.stringValue?.contains("Secret \(secret) with key key not found") == true
                }
                _ = try await client.patch(
                    KubernetesObject.self,
                    .secrets,
                    name: secret,
                    namespace: ns,
                    mergePatch: ["data": ["key": "eA=="]]
                )
                try await eventually("Ready again", timeout: self.soon) {
                    try await client.liveStream(name, namespace: ns).condition("Ready")?["status"] == "True"
                }
            }
        }
    }

    @Test("the gateway Service created after the streams gets their ports at once; ports removed by hand come back")
    func gatewayServiceWatched() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let counter = VerbCounter()
            try await withOperator(cluster, configuration: try testConfiguration(cluster), middlewares: [counter]) {
                running in
                let client = cluster.client
                let ns = cluster.namespace
                let names = [uniqueName("gw"), uniqueName("gw")]
                for name in names { _ = try await client.createLiveStream(name, namespace: ns) }
                try await eventually("both Ready without a gateway Service") {
                    for name in names {
                        guard try await client.liveStream(name, namespace: ns).condition("Ready")?["status"] == "True"
                        else { return false }
                    }
                    return true
                }
                var ports = Set<Int>()
                for name in names {
                    ports.insert(try #require(try await client.liveStream(name, namespace: ns).statusPort))
                }

                // Absent, it costs nothing: a resync reads nothing.
                counter.start()
                try await resyncAndDrain(running)
                let gatewayRequests = counter.requests.filter { $0.path.hasSuffix("/services/liverelay-gateway") }
                #expect(gatewayRequests.isEmpty, "\(gatewayRequests)")

                try await createGatewayService(cluster)
                try await eventually("the ports applied when the Service appears", timeout: self.soon) {
                    try await client.gatewayPorts(namespace: ns).isSuperset(of: ports)
                }
                // Someone replaces the port list by hand: the streams' ports come back.
                var service = try await client.child(.services, "liverelay-gateway", namespace: ns)
                service.fields["spec"]?["ports"] = [
                    ["name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"]
                ]
                _ = try await client.update(service, .services, namespace: ns)
                try await eventually("the ports restored", timeout: self.soon) {
                    try await client.gatewayPorts(namespace: ns).isSuperset(of: ports)
                }
            }
        }
    }
}
