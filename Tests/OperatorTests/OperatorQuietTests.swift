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
import Testing

/// Quiet at rest: once its streams are Ready the operator writes nothing and reads nothing per stream, whatever
/// reconciles them again (a resync, a relay Deployment's status, a restart), and it makes each child with one write.
@Suite("Operator: quiet at rest", .timeLimit(.minutes(4)))
struct OperatorQuietTests {
    static let count = 20

    /// Creates `count` streams, each with a target whose key Secret exists, and waits until every one is Ready.
    func createReady(_ cluster: TestCluster, prefix: String) async throws -> [String] {
        let client = cluster.client
        let ns = cluster.namespace
        try await client.createSecret("\(prefix)-target", namespace: ns, data: ["key": "live_1"])
        let names = (0..<Self.count).map { "\(prefix)-\($0)" }
        for name in names {
            _ = try await client.createLiveStream(
                name,
                namespace: ns,
                spec: [
                    "targets": [
                        [
                            "name": "yt", "url": "rtmp://a.example.com/live",
                            "streamKeySecretRef": ["name": .string("\(prefix)-target"), "key": "key"],
                        ]
                    ]
                ]
            )
        }
        try await eventually("every stream Ready", timeout: .seconds(60), interval: .milliseconds(200)) {
            let items = try await client.listAll(KubernetesObject.self, .liveStreams, namespace: ns).items
            return items.filter { names.contains($0.metadata.name ?? "") }
                .filter { $0.condition("Ready")?["status"] == "True" }.count == names.count
        }
        return names
    }

    @Test("after the streams are Ready: a resync, relay status changes and a restart write nothing, read nothing")
    func quietAtRest() async throws {
        try await withTestCluster(crds: [.liveStream], keda: true) { cluster in
            try await createGatewayService(cluster)
            let counter = VerbCounter()
            let configuration = try testConfiguration(cluster)
            let prefix = uniqueName("q")
            counter.start()
            let names = try await withOperator(cluster, configuration: configuration, middlewares: [counter]) {
                running in
                let names = try await self.createReady(cluster, prefix: prefix)
                try await waitUntilIdle(running)
                // One write per child, whatever the watches queued meanwhile.
                let creation = counter.requests
                func count(_ verb: String, _ resource: String) -> Int {
                    creation.filter { $0.verb == verb && $0.resource == resource }.count
                }
                let n = names.count
                for resource in ["configmaps", "services", "networkpolicies", "ingresses", "scaledobjects"] {
                    // The gateway Service's port list is a Service apply too, shared by all streams.
                    let applies = creation.filter {
                        $0.verb == "apply" && $0.resource == resource && !$0.path.hasSuffix("/liverelay-gateway")
                    }
                    #expect(applies.count == n, "\(resource): \(applies.count) applies for \(n) streams")
                }
                #expect(count("create", "deployments") == n)
                #expect(count("apply", "deployments") == 0, "created with its final content: no apply after")
                #expect(count("create", "secrets") == n, "one generated key each")
                #expect(count("patch", "livestreams") == n, "one finalizer each")
                #expect(
                    count("patch", "livestreams/status") == 2 * n,
                    "the port claim and the Ready status: \(count("patch", "livestreams/status"))"
                )
                let reads = creation.filter { $0.verb == "get" }
                #expect(reads.isEmpty, "reads of single objects while creating: \(reads.prefix(10))")

                // At rest: a resync, then every relay Deployment's status changing as the Deployment controller
                // would change it (nothing the operator must act on).
                counter.start()
                try await resyncAndDrain(running)
                var patched: [ObjectKey: String] = [:]
                for name in names {
                    let deployment = try await cluster.client.patchStatus(
                        KubernetesObject.self,
                        .deployments,
                        name: RelayChildren.childName(name),
                        namespace: cluster.namespace,
                        mergePatch: ["status": ["observedGeneration": 1, "replicas": 0]]
                    )
                    patched[ObjectKey(deployment)] = deployment.metadata.resourceVersion
                }
                // Every status event has reached the operator's cache, which queues the owner as it takes the event;
                // then the queue drains.
                try await eventually("the status events in the operator's cache") {
                    guard let cache = running.instance.controller.ownedCache(.deployments, as: ObjectSummary.self)
                    else { return false }
                    return patched.allSatisfy { cache.get($0.key)?.metadata.resourceVersion == $0.value }
                }
                try await waitUntilIdle(running)
                let atRest = counter.requests.filter { !$0.path.contains("/leases/") }
                let writes = atRest.filter(\.isWrite)
                #expect(writes.isEmpty, "writes at rest: \(writes)")
                let readsAtRest = atRest.filter { $0.verb == "get" }
                #expect(readsAtRest.isEmpty, "reads of single objects at rest: \(readsAtRest)")
                return names
            }

            // A restart lists everything again, and finds nothing to write.
            counter.start()
            try await withOperator(cluster, configuration: configuration, middlewares: [counter]) { running in
                try await eventually("every stream reconciled after the restart") {
                    running.instance.allocatedPorts >= names.count
                }
                try await waitUntilIdle(running)
                let writes = counter.requests.filter { $0.isWrite && !$0.path.contains("/leases/") }
                #expect(writes.isEmpty, "writes after a restart: \(writes)")
                let reads = counter.requests.filter { $0.verb == "get" }
                #expect(reads.isEmpty, "reads of single objects after a restart: \(reads)")
            }
        }
    }
}
