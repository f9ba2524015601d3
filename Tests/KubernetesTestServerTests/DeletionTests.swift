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

@Suite("Deletion: finalizers and ownerReference cascade", .timeLimit(.minutes(3)))
struct DeletionTests {
    @Test("with a finalizer, delete marks the object; removing the finalizer deletes it")
    func finalizers() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            var object = widget("w")
            object[path: ["metadata", "finalizers"]] = ["liverelay.io/ports"]
            _ = try await client.post(widgets, object)
            var stream = try await client.watch("\(widgets)?watch=1&resourceVersion=\(server.resourceVersion)")
            let deleting = try await client.delete("\(widgets)/w")
            #expect(deleting.status == 200)
            #expect(deleting.body[path: ["metadata", "deletionTimestamp"]] != nil)
            #expect(deleting.body[path: ["metadata", "deletionGracePeriodSeconds"]] == 0)
            #expect(try await stream.nextChange()?["type"] == "MODIFIED")
            #expect(try await client.get("\(widgets)/w").status == 200)
            let removed = try await client.patch("\(widgets)/w", ["metadata": ["finalizers": nil]])
            #expect(removed.status == 200)
            #expect(try await stream.nextChange()?["type"] == "DELETED")
            #expect(try await client.get("\(widgets)/w").status == 404)
        }
    }

    @Test("without finalizers, delete is immediate; deleting again is 404")
    func immediate() async throws {
        try await withServer { _, client in
            let path = "/api/v1/namespaces/default/configmaps"
            _ = try await client.post(path, ["metadata": ["name": "c"]])
            #expect(try await client.delete("\(path)/c").status == 200)
            #expect(try await client.delete("\(path)/c").status == 404)
        }
    }

    @Test("deleting an owner deletes its dependents, which keep their own finalizers")
    func cascade() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            let owner = try await client.post(widgets, widget("owner")).body
            let reference: JSON = [
                "apiVersion": "example.com/v1", "kind": "Widget", "name": "owner",
                "uid": owner[path: ["metadata", "uid"]] ?? "", "controller": true,
            ]
            let deployments = "/apis/apps/v1/namespaces/default/deployments"
            _ = try await client.post(
                deployments,
                ["metadata": ["name": "child", "ownerReferences": [reference]], "spec": [:]]
            )
            _ = try await client.post(
                "/api/v1/namespaces/default/services",
                ["metadata": ["name": "kept", "ownerReferences": [reference], "finalizers": ["x/y"]], "spec": [:]]
            )
            _ = try await client.post("/api/v1/namespaces/default/configmaps", ["metadata": ["name": "unrelated"]])
            #expect(try await client.delete("\(widgets)/owner?propagationPolicy=Background").status == 200)
            #expect(try await client.get("\(deployments)/child").status == 404)
            let kept = try await client.get("/api/v1/namespaces/default/services/kept")
            #expect(kept.body[path: ["metadata", "deletionTimestamp"]] != nil)
            #expect(try await client.get("/api/v1/namespaces/default/configmaps/unrelated").status == 200)
        }
    }

    @Test("propagationPolicy=Orphan leaves dependents alone")
    func orphan() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            let owner = try await client.post(widgets, widget("owner")).body
            let reference: JSON = [
                "apiVersion": "example.com/v1", "kind": "Widget", "name": "owner",
                "uid": owner[path: ["metadata", "uid"]] ?? "",
            ]
            _ = try await client.post(
                "/api/v1/namespaces/default/configmaps",
                ["metadata": ["name": "c", "ownerReferences": [reference]]]
            )
            #expect(try await client.delete("\(widgets)/owner?propagationPolicy=Orphan").status == 200)
            #expect(try await client.get("/api/v1/namespaces/default/configmaps/c").status == 200)
        }
    }
}
