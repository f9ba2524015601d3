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
import KubernetesTestServer
import Testing

@Suite("Objects: CRUD, metadata, selectors", .timeLimit(.minutes(3)))
struct ObjectTests {
    let secrets = "/api/v1/namespaces/default/secrets"

    func secret(_ name: String, labels: [String: JSON] = [:]) -> JSON {
        [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": .string(name), "labels": .object(labels)],
            "data": ["key": "dmFsdWU="],
        ]
    }

    @Test("create fills in uid, creationTimestamp, resourceVersion and generation; get returns it")
    func create() async throws {
        try await withServer { _, client in
            let created = try await client.post(self.secrets, self.secret("a"))
            #expect(created.status == 201)
            #expect(created.body[path: ["metadata", "uid"]]?.stringValue?.isEmpty == false)
            #expect(created.body[path: ["metadata", "creationTimestamp"]]?.stringValue?.hasSuffix("Z") == true)
            #expect(created.body.generation == 1)
            #expect(created.body[path: ["metadata", "namespace"]] == "default")
            let fetched = try await client.get("\(self.secrets)/a")
            #expect(fetched.body == created.body)
            let second = try await client.post(self.secrets, self.secret("b"))
            #expect(Int(second.body.resourceVersion ?? "")! > Int(created.body.resourceVersion ?? "")!)
        }
    }

    @Test("a duplicate create is 409 AlreadyExists; a missing object is 404 NotFound with a Status")
    func errors() async throws {
        try await withServer { _, client in
            _ = try await client.post(self.secrets, self.secret("a"))
            let duplicate = try await client.post(self.secrets, self.secret("a"))
            #expect(duplicate.status == 409)
            #expect(duplicate.body["reason"] == "AlreadyExists")
            let missing = try await client.get("\(self.secrets)/nope")
            #expect(missing.status == 404)
            #expect(missing.body["kind"] == "Status")
            #expect(missing.body["apiVersion"] == "v1")
            #expect(missing.body["status"] == "Failure")
            #expect(missing.body["reason"] == "NotFound")
            #expect(missing.body["code"] == 404)
            #expect(missing.body["message"] == "secrets \"nope\" not found")
            #expect(missing.body[path: ["details", "name"]] == "nope")
            #expect(missing.body[path: ["details", "kind"]] == "secrets")
            #expect(try await client.get("/api/v1/namespaces/default/nothings").status == 404)
        }
    }

    @Test("PUT with a stale resourceVersion is 409 Conflict; generation moves only with the spec")
    func update() async throws {
        try await withServer { _, client in
            let deployments = "/apis/apps/v1/namespaces/default/deployments"
            let deployment: JSON = [
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web"],
                "spec": ["replicas": 1, "selector": ["matchLabels": ["app": "web"]]],
            ]
            let created = try await client.post(deployments, deployment).body
            var changed = created
            changed[path: ["spec", "replicas"]] = 2
            let updated = try await client.put("\(deployments)/web", changed)
            #expect(updated.status == 200)
            #expect(updated.body.generation == 2)
            let stale = try await client.put("\(deployments)/web", changed)
            #expect(stale.status == 409)
            #expect(stale.body["reason"] == "Conflict")
            var labelled = updated.body
            labelled[path: ["metadata", "labels"]] = ["tier": "front"]
            let relabelled = try await client.put("\(deployments)/web", labelled)
            #expect(relabelled.body.generation == 2)
            #expect(relabelled.body.resourceVersion != updated.body.resourceVersion)
            // A no-op update writes nothing.
            let same = try await client.put("\(deployments)/web", relabelled.body)
            #expect(same.body.resourceVersion == relabelled.body.resourceVersion)
        }
    }

    @Test("cluster-scoped resources and namespaces")
    func clusterScoped() async throws {
        try await withServer { _, client in
            let namespaces = try await client.get("/api/v1/namespaces")
            #expect(namespaces.body["items"]?.arrayValue?.contains { $0.name == "default" } == true)
            let created = try await client.post("/api/v1/namespaces", ["metadata": ["name": "streams"]])
            #expect(created.status == 201)
            #expect(created.body[path: ["status", "phase"]] == "Active")
            #expect(created.body[path: ["metadata", "namespace"]] == nil)
            let secret = try await client.post("/api/v1/namespaces/streams/secrets", self.secret("k"))
            #expect(secret.body[path: ["metadata", "namespace"]] == "streams")
            let role: JSON = [
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": ["name": "r"],
            ]
            #expect(try await client.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", role).status == 201)
            #expect(try await client.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/r").status == 200)
            // Deleting a namespace deletes what is in it.
            #expect(try await client.delete("/api/v1/namespaces/streams").status == 200)
            #expect(try await client.get("/api/v1/namespaces/streams/secrets/k").status == 404)
        }
    }

    @Test(
        "label selectors",
        arguments: [
            ("app=web", ["a"]), ("app==web", ["a"]), ("app!=web", ["b", "c"]), ("app in (web,db)", ["a", "b"]),
            ("app notin (web)", ["b", "c"]), ("app", ["a", "b"]), ("!app", ["c"]), ("app=web,tier=front", ["a"]),
        ]
    )
    func labelSelectors(selector: String, expected: [String]) async throws {
        try await withServer { _, client in
            _ = try await client.post(self.secrets, self.secret("a", labels: ["app": "web", "tier": "front"]))
            _ = try await client.post(self.secrets, self.secret("b", labels: ["app": "db"]))
            _ = try await client.post(self.secrets, self.secret("c"))
            let encoded = selector.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? selector
            let list = try await client.get("\(self.secrets)?labelSelector=\(encoded)")
            #expect(list.body["items"]?.arrayValue?.compactMap(\.name) == expected)
            #expect(list.body[path: ["metadata", "resourceVersion"]]?.stringValue?.isEmpty == false)
            #expect(list.body["kind"] == "SecretList")
        }
    }

    @Test("field selectors on metadata.name and metadata.namespace; lists across namespaces")
    func fieldSelectors() async throws {
        try await withServer { _, client in
            _ = try await client.post(self.secrets, self.secret("a"))
            _ = try await client.post(self.secrets, self.secret("b"))
            _ = try await client.post("/api/v1/namespaces", ["metadata": ["name": "other"]])
            _ = try await client.post("/api/v1/namespaces/other/secrets", self.secret("a"))
            let byName = try await client.get("\(self.secrets)?fieldSelector=metadata.name%3Db&resourceVersion=0")
            #expect(byName.body["items"]?.arrayValue?.compactMap(\.name) == ["b"])
            let all = try await client.get("/api/v1/secrets")
            #expect(all.body["items"]?.arrayValue?.count == 3)
            let inOther = try await client.get("/api/v1/secrets?fieldSelector=metadata.namespace%3Dother")
            #expect(inOther.body["items"]?.arrayValue?.count == 1)
        }
    }

    @Test("generateName, deletecollection with a selector, and a Table for kubectl's Accept header")
    func extras() async throws {
        try await withServer { server, client in
            let generated = try await client.post(self.secrets, ["metadata": ["generateName": "token-"]])
            #expect(generated.status == 201)
            #expect(generated.body.name?.hasPrefix("token-") == true)
            #expect(generated.body.name?.count == 11)
            _ = try await client.post(self.secrets, self.secret("a", labels: ["app": "web"]))
            _ = try await client.post(self.secrets, self.secret("b", labels: ["app": "web"]))
            let removed = try await client.request("DELETE", "\(self.secrets)?labelSelector=app%3Dweb")
            #expect(removed.body["items"]?.arrayValue?.count == 2)
            #expect(try await client.get(self.secrets).body["items"]?.arrayValue?.count == 1)

            try server.installCRD(yaml: widgetCRD)
            _ = try await client.post(widgets, widget("w", size: 5))
            let table = try await client.request(
                "GET",
                widgets,
                accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
            )
            #expect(table.body["kind"] == "Table")
            let columns = table.body["columnDefinitions"]?.arrayValue?.compactMap { $0["name"]?.stringValue }
            #expect(columns == ["Name", "Size", "Ready", "Age"])
            #expect(table.body["rows"]?.arrayValue?.first?["cells"]?.arrayValue?.prefix(2) == ["w", 5])
        }
    }

    @Test("deleting a CRD removes its objects and its resources from discovery")
    func deleteCRD() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            _ = try await client.post(widgets, widget("w"))
            var stream = try await client.watch("\(widgets)?watch=1&resourceVersion=\(server.resourceVersion)")
            let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
            #expect(try await client.delete("\(crds)/widgets.example.com").status == 200)
            #expect(try await stream.nextChange()?["type"] == "DELETED")
            #expect(try await stream.next() == nil)
            #expect(try await client.get("/apis/example.com/v1").status == 404)
            #expect(try await client.get("\(widgets)/w").status == 404)
            try server.installCRD(yaml: widgetCRD)
            #expect(try await client.get(widgets).body["items"] == [])
        }
    }

    @Test("a PUT of a custom resource without a resourceVersion is refused; built-in kinds allow it")
    func unconditionalUpdate() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            _ = try await client.post(widgets, widget("w"))
            let refused = try await client.put("\(widgets)/w", widget("w", size: 4))
            #expect(refused.status == 422)
            #expect(
                refused.body[path: ["details", "causes"]]?.arrayValue?.first?["field"] == "metadata.resourceVersion"
            )
            _ = try await client.post(self.secrets, self.secret("s"))
            #expect(try await client.put("\(self.secrets)/s", self.secret("s")).status == 200)
        }
    }

    @Test("dryRun=All validates and answers but stores nothing")
    func dryRun() async throws {
        try await withServer { _, client in
            let version = try await client.get(self.secrets).body[path: ["metadata", "resourceVersion"]]
            let created = try await client.post("\(self.secrets)?dryRun=All", self.secret("d"))
            #expect(created.status == 201)
            #expect(created.body.name == "d")
            #expect(try await client.get("\(self.secrets)/d").status == 404)
            #expect(try await client.get(self.secrets).body[path: ["metadata", "resourceVersion"]] == version)
        }
    }

    @Test("seeding through apply(yaml:) creates, replaces, writes status, and reports rejections")
    func seed() async throws {
        try await withServer { server, _ in
            try server.installCRD(yaml: widgetCRD)
            let manifest = """
                apiVersion: v1
                kind: Namespace
                metadata: { name: streams }
                ---
                apiVersion: example.com/v1
                kind: Widget
                metadata: { name: w, namespace: streams }
                spec: { size: 2 }
                status: { replicas: 1 }
                """
            try server.apply(yaml: manifest)
            try server.apply(yaml: manifest.replacingOccurrences(of: "size: 2", with: "size: 5"))
            let stored = server.object(apiVersion: "example.com/v1", kind: "Widget", namespace: "streams", name: "w")
            #expect(stored?[path: ["spec", "size"]] == 5)
            #expect(stored?[path: ["status", "replicas"]] == 1)
            #expect(stored?.generation == 2)
            #expect(throws: KubernetesTestServerError.self) {
                try server.apply(widget("bad", size: 0))
            }
        }
    }

    @Test("limit and continue page through a list")
    func paging() async throws {
        try await withServer { _, client in
            for name in ["a", "b", "c", "d", "e"] { _ = try await client.post(self.secrets, self.secret(name)) }
            var names: [String] = []
            var token = ""
            var pages = 0
            repeat {
                let page = try await client.get("\(self.secrets)?limit=2&continue=\(token)")
                names += page.body["items"]?.arrayValue?.compactMap(\.name) ?? []
                token = page.body[path: ["metadata", "continue"]]?.stringValue ?? ""
                token = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token
                pages += 1
            } while !token.isEmpty && pages < 10
            #expect(names == ["a", "b", "c", "d", "e"])
            #expect(pages == 3)
        }
    }
}
