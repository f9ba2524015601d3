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
import KubernetesTestServer
import KubernetesTestSupport
import Testing

func configMap(_ name: String, data: [String: String], labels: [String: String]? = nil) -> KubernetesObject {
    KubernetesObject(
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: ObjectMeta(name: name, labels: labels),
        fields: ["data": .object(data.mapValues { .string($0) })]
    )
}

@Suite("Client against the test server (or LIVERELAY_TEST_KUBECONFIG)", .timeLimit(.minutes(3)))
struct TestServerClientTests {
    @Test("create, get, update with conflict, merge patch, apply, list pages, delete")
    func crud() async throws {
        try await withTestCluster { cluster in
            let client = cluster.client
            let name = uniqueName("crud")
            let label = uniqueName("run")
            let created = try await client.create(
                configMap(name, data: ["a": "1"], labels: ["run": label]),
                .configMaps
            )
            #expect(created.metadata.resourceVersion != nil)
            #expect(created.metadata.uid != nil)

            let conflict = await #expect(throws: KubernetesError.self) {
                _ = try await client.create(configMap(name, data: [:]), .configMaps)
            }
            #expect(conflict?.isConflict == true)
            #expect(conflict?.status?.reason == "AlreadyExists")

            var fetched = try await client.get(KubernetesObject.self, .configMaps, name: name)
            fetched["data"] = ["a": "2"]
            let updated = try await client.update(fetched, .configMaps)
            #expect(updated["data"]?["a"]?.stringValue == "2")

            // The same stale resourceVersion again: 409.
            let stale = await #expect(throws: KubernetesError.self) {
                _ = try await client.update(fetched, .configMaps)
            }
            #expect(stale?.isConflict == true)

            let patched = try await client.patch(
                KubernetesObject.self,
                .configMaps,
                name: name,
                mergePatch: ["data": ["b": "3"]]
            )
            #expect(patched["data"]?["a"]?.stringValue == "2")
            #expect(patched["data"]?["b"]?.stringValue == "3")

            let applied = try await client.apply(
                configMap(name, data: ["c": "4"], labels: ["run": label]),
                as: KubernetesObject.self,
                .configMaps,
                name: name,
                fieldManager: "liverelay-test",
                force: true
            )
            #expect(applied["data"]?["c"]?.stringValue == "4")

            for index in 0..<4 {
                _ = try await client.create(
                    configMap("\(name)-\(index)", data: [:], labels: ["run": label]),
                    .configMaps
                )
            }
            let page = try await client.list(
                KubernetesObject.self,
                .configMaps,
                options: ListOptions(labelSelector: "run=\(label)", limit: 2)
            )
            // A server may ignore `limit` (the test server does); when it pages, it sends a continue token.
            if page.items.count < 5 {
                #expect(page.items.count == 2)
                #expect(page.metadata.continue?.isEmpty == false)
            }
            let all = try await client.listAll(
                KubernetesObject.self,
                .configMaps,
                options: ListOptions(labelSelector: "run=\(label)", limit: 2)
            )
            #expect(all.items.count == 5)
            #expect(!all.resourceVersion.isEmpty)

            for index in 0..<4 {
                try await client.delete(.configMaps, name: "\(name)-\(index)")
            }
            try await client.delete(.configMaps, name: name, propagationPolicy: .background)
            let gone = await #expect(throws: KubernetesError.self) {
                _ = try await client.get(KubernetesObject.self, .configMaps, name: name)
            }
            #expect(gone?.isNotFound == true)
        }
    }

    @Test("status and scale subresources")
    func subresources() async throws {
        try await withTestCluster { cluster in
            let client = cluster.client
            let name = uniqueName("deploy")
            let deployment = KubernetesObject(
                apiVersion: "apps/v1",
                kind: "Deployment",
                metadata: ObjectMeta(name: name),
                fields: [
                    "spec": [
                        "replicas": 1,
                        "selector": ["matchLabels": ["app": .string(name)]],
                        "template": [
                            "metadata": ["labels": ["app": .string(name)]],
                            "spec": ["containers": [["name": "c", "image": "busybox"]]],
                        ],
                    ]
                ]
            )
            _ = try await client.create(deployment, .deployments)
            let patched = try await client.patchStatus(
                KubernetesObject.self,
                .deployments,
                name: name,
                mergePatch: ["status": ["observedGeneration": 1]]
            )
            #expect(patched["status"]?["observedGeneration"]?.intValue == 1)
            let status = try await client.getStatus(KubernetesObject.self, .deployments, name: name)
            #expect(status["status"]?["observedGeneration"]?.intValue == 1)

            var scale = try await client.getScale(.deployments, name: name)
            #expect(scale.spec.replicas == 1)
            scale.spec.replicas = 3
            _ = try await client.updateScale(scale, .deployments)
            let after = try await client.get(KubernetesObject.self, .deployments, name: name)
            #expect(after["spec"]?["replicas"]?.intValue == 3)
            try await client.delete(.deployments, name: name)
        }
    }

    @Test("watch from a version sees later changes; retries after injected 503s")
    func watchAndRetry() async throws {
        try await withTestCluster { cluster in
            let (client, server) = (cluster.client, cluster.server)
            let name = uniqueName("watch")
            let created = try await client.create(configMap(name, data: ["v": "0"]), .configMaps)
            // GET is idempotent: retried through the injected 503s.
            server?.failNextRequests(count: 2, status: 503, retryAfter: 0)
            _ = try await client.get(KubernetesObject.self, .configMaps, name: name)
            // A merge patch is not: the 503 reaches the caller.
            server?.failNextRequests(count: 1, status: 503, retryAfter: 0)
            cluster.notExercised("retries through injected 503s, and a 503 reaching a merge patch")
            if server != nil {
                await #expect(throws: KubernetesError.self) {
                    _ = try await client.patch(
                        KubernetesObject.self,
                        .configMaps,
                        name: name,
                        mergePatch: ["data": ["v": "x"]]
                    )
                }
            }
            _ = try await client.patch(KubernetesObject.self, .configMaps, name: name, mergePatch: ["data": ["v": "1"]])
            var iterator = try await client.watch(
                KubernetesObject.self,
                .configMaps,
                options: WatchOptions(
                    resourceVersion: created.metadata.resourceVersion,
                    fieldSelector: "metadata.name=\(name)"
                )
            ).makeAsyncIterator()
            var values: [String] = []
            while values.count < 1, let event = try await iterator.next() {
                if case .modified(let object) = event, let value = object["data"]?["v"]?.stringValue {
                    values.append(value)
                }
            }
            #expect(values == ["1"])
            try await client.delete(.configMaps, name: name)
        }
    }

    @Test(
        "TLS with the server's CA and a bearer token from the kubeconfig",
        .disabled(if: isRealCluster, "configures the in-process server's TLS and token; a real cluster has its own")
    )
    func tls() async throws {
        try await withTestCluster(tls: true, bearerToken: "s3cret") { cluster in
            let client = cluster.client
            let server = try #require(cluster.server)
            let name = uniqueName("tls")
            _ = try await client.create(configMap(name, data: [:]), .configMaps)
            let fetched = try await client.get(KubernetesObject.self, .configMaps, name: name)
            #expect(fetched.metadata.name == name)

            // The same server without the token: 401, decoded.
            var anonymous = try KubernetesConfiguration.kubeconfig(
                yaml: server.kubeconfig(namespace: cluster.namespace),
                baseDirectory: "/"
            )
            anonymous.credentials = .none
            try await withKubernetesClient(configuration: anonymous) { client in
                let error = await #expect(throws: KubernetesError.self) {
                    _ = try await client.get(KubernetesObject.self, .configMaps, name: name)
                }
                #expect(error?.statusCode == 401)
            }
        }
    }
}
