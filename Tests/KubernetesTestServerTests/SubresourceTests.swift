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

import KubernetesTestServer
import Testing

@Suite("Status and scale subresources", .timeLimit(.minutes(3)))
struct SubresourceTests {
    @Test("/status changes only the status and not the generation; the main resource ignores status")
    func status() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            var created = try await client.post(widgets, widget("w")).body
            #expect(created["status"] == nil)
            created["status"] = ["replicas": 2]
            created[path: ["spec", "size"]] = 9
            let statusWrite = try await client.put("\(widgets)/w/status", created)
            #expect(statusWrite.status == 200)
            #expect(statusWrite.body[path: ["status", "replicas"]] == 2)
            #expect(statusWrite.body[path: ["spec", "size"]] == 3)
            #expect(statusWrite.body.generation == 1)

            var mainWrite = statusWrite.body
            mainWrite["status"] = ["replicas": 7]
            mainWrite[path: ["spec", "size"]] = 4
            let updated = try await client.put("\(widgets)/w", mainWrite)
            #expect(updated.body[path: ["status", "replicas"]] == 2)
            #expect(updated.body[path: ["spec", "size"]] == 4)
            #expect(updated.body.generation == 2)

            let patched = try await client.patch("\(widgets)/w/status", ["status": ["replicas": 5]])
            #expect(patched.body[path: ["status", "replicas"]] == 5)
            #expect(patched.body.generation == 2)
        }
    }

    @Test("deployments/scale reads and writes spec.replicas as an autoscaling/v1 Scale")
    func deploymentScale() async throws {
        try await withServer { _, client in
            let deployments = "/apis/apps/v1/namespaces/default/deployments"
            let deployment: JSON = [
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "relay"],
                "spec": ["replicas": 0, "selector": ["matchLabels": ["app": "relay"]]],
            ]
            _ = try await client.post(deployments, deployment)
            let scale = try await client.get("\(deployments)/relay/scale")
            #expect(scale.body["kind"] == "Scale")
            #expect(scale.body["apiVersion"] == "autoscaling/v1")
            #expect(scale.body[path: ["spec", "replicas"]] == 0)
            #expect(scale.body[path: ["status", "selector"]] == "app=relay")
            let patched = try await client.patch("\(deployments)/relay/scale", ["spec": ["replicas": 1]])
            #expect(patched.body[path: ["spec", "replicas"]] == 1)
            var put = patched.body
            put[path: ["spec", "replicas"]] = 3
            #expect(try await client.put("\(deployments)/relay/scale", put).status == 200)
            let stored = try await client.get("\(deployments)/relay")
            #expect(stored.body[path: ["spec", "replicas"]] == 3)
            #expect(stored.body.generation == 3)
        }
    }

    @Test("a CRD's scale subresource follows its specReplicasPath")
    func customScale() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            _ = try await client.post(widgets, widget("w", extra: ["replicas": 1]))
            let patched = try await client.patch("\(widgets)/w/scale", ["spec": ["replicas": 4]])
            #expect(patched.body[path: ["spec", "replicas"]] == 4)
            #expect(try await client.get("\(widgets)/w").body[path: ["spec", "replicas"]] == 4)
            #expect(try await client.get("/api/v1/namespaces/default/secrets/x/scale").status == 404)
        }
    }
}
