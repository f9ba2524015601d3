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

/// Server-side apply with real field ownership: `managedFields` per manager, operation and subresource, with the
/// `fieldsV1` sets kube-apiserver writes, and the 409 an apply meets on a field another manager owns.
@Suite("Field management: managedFields, apply conflicts, force, co-ownership", .timeLimit(.minutes(3)))
struct FieldManagementTests {
    let deployments = "/apis/apps/v1/namespaces/default/deployments"
    let configMaps = "/api/v1/namespaces/default/configmaps"

    func deployment(replicas: Int64? = nil, image: String? = nil, labels: [String: JSON]? = nil) -> String {
        var spec: JSON = [:]
        if let replicas { spec["replicas"] = .int(replicas) }
        if let image {
            spec["selector"] = ["matchLabels": ["app": "relay"]]
            spec["template"] = [
                "metadata": ["labels": ["app": "relay"]],
                "spec": [
                    "containers": [["name": "relay", "image": .string(image), "ports": [["containerPort": 1935]]]]
                ],
            ]
        }
        var metadata: JSON = ["name": "relay"]
        if let labels { metadata["labels"] = .object(labels) }
        let object: JSON = ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec]
        return String(decoding: object.encoded(), as: UTF8.self)
    }

    func apply(
        _ client: TestClient,
        _ path: String,
        _ body: String,
        manager: String,
        force: Bool = false
    ) async throws -> APIResponse {
        try await client.request(
            "PATCH",
            "\(path)?fieldManager=\(manager)\(force ? "&force=true" : "")",
            text: body,
            contentType: "application/apply-patch+yaml"
        )
    }

    @Test("an apply owns exactly what it sent: f: for fields, k: for containers and ports, no status, no metadata.name")
    func appliedFieldsV1() async throws {
        try await withServer { _, client in
            let created = try await self.apply(
                client,
                "\(self.deployments)/relay",
                self.deployment(replicas: 2, image: "relay:1", labels: ["team": "live"]),
                manager: "operator"
            )
            #expect(created.status == 201)
            let entry = try #require(created.body.managedFields("operator", "Apply"))
            #expect(entry["fieldsType"] == "FieldsV1")
            #expect(entry["apiVersion"] == "apps/v1")
            #expect(entry["time"]?.stringValue != nil)
            let expected: JSON = [
                "f:metadata": ["f:labels": ["f:team": [:]]],
                "f:spec": [
                    "f:replicas": [:],
                    "f:selector": [:],
                    "f:template": [
                        "f:metadata": ["f:labels": ["f:app": [:]]],
                        "f:spec": [
                            "f:containers": [
                                #"k:{"name":"relay"}"#: [
                                    ".": [:], "f:name": [:], "f:image": [:],
                                    "f:ports": [
                                        #"k:{"containerPort":1935,"protocol":"TCP"}"#: [
                                            ".": [:], "f:containerPort": [:],
                                        ]
                                    ],
                                ]
                            ]
                        ],
                    ],
                ],
            ]
            #expect(entry["fieldsV1"] == expected)
        }
    }

    @Test("a create records an Update entry with the fields it set; a status write one for subresource status")
    func updateEntries() async throws {
        try await withServer { server, client in
            let created = try await client.post(
                "\(self.configMaps)?fieldManager=creator",
                ["metadata": ["name": "c", "labels": ["a": "1"]], "data": ["k": "v"]]
            )
            let entry = try #require(created.body.managedFields("creator", "Update"))
            #expect(
                entry["fieldsV1"] == [
                    "f:data": [".": [:], "f:k": [:]], "f:metadata": ["f:labels": [".": [:], "f:a": [:]]],
                ]
            )
            #expect(entry["subresource"] == nil)

            // Without fieldManager the manager is the user agent's product name, as kube-apiserver derives it.
            let patched = try await client.request(
                "PATCH",
                "\(self.configMaps)/c",
                body: ["data": ["other": "x"]],
                contentType: "application/merge-patch+json",
                headers: [("User-Agent", "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd")]
            )
            #expect(patched.body.managedFields("kubectl", "Update")?["fieldsV1"] == ["f:data": ["f:other": [:]]])
            // A write that changes nothing leaves the entries (and their times) as they were.
            let again = try await client.request(
                "PATCH",
                "\(self.configMaps)/c",
                body: ["data": ["other": "x"]],
                contentType: "application/merge-patch+json",
                headers: [("User-Agent", "kubectl/v1.32.4")]
            )
            #expect(again.body.resourceVersion == patched.body.resourceVersion)

            try server.installCRD(yaml: widgetCRD)
            _ = try await client.post("\(widgets)?fieldManager=creator", widget("w"))
            let status = try await client.patch(
                "\(widgets)/w/status?fieldManager=operator",
                ["status": ["replicas": 1], "spec": ["size": 9]]
            )
            let statusEntry = try #require(status.body.managedFields("operator", "Update", subresource: "status"))
            #expect(statusEntry["fieldsV1"] == ["f:status": [".": [:], "f:replicas": [:]]])
            // The main resource's manager owns the spec it created (with the defaulted color), never the status.
            let mainEntry = try #require(status.body.managedFields("creator", "Update"))
            #expect(mainEntry["fieldsV1"] == ["f:spec": [".": [:], "f:size": [:], "f:color": [:]]])
        }
    }

    @Test("an apply that changes a field another applier owns is 409 Conflict naming the field and its manager")
    func conflict() async throws {
        try await withServer { _, client in
            let path = "\(self.deployments)/relay"
            #expect(
                try await self.apply(client, path, self.deployment(replicas: 2, image: "a"), manager: "A").status == 201
            )
            let refused = try await self.apply(client, path, self.deployment(replicas: 3), manager: "B")
            #expect(refused.status == 409)
            #expect(refused.body["reason"] == "Conflict")
            #expect(refused.body["message"] == #"Apply failed with 1 conflict: conflict with "A": .spec.replicas"#)
            #expect(
                refused.body[path: ["details", "causes"]] == [
                    ["reason": "FieldManagerConflict", "message": #"conflict with "A""#, "field": ".spec.replicas"]
                ]
            )
            // Two fields: grouped by manager, one cause per field.
            let two = try await self.apply(client, path, self.deployment(replicas: 3, image: "b"), manager: "B")
            #expect(two.status == 409)
            #expect(
                two.body["message"]
                    == .string(
                        """
                        Apply failed with 2 conflicts: conflicts with "A":
                        - .spec.replicas
                        - .spec.template.spec.containers[name="relay"].image
                        """
                    )
            )
            #expect(two.body[path: ["details", "causes"]]?.arrayValue?.count == 2)
            // Nothing changed.
            #expect(try await client.get(path).body[path: ["spec", "replicas"]] == 2)
        }
    }

    @Test("force takes the field: the other manager's set loses it")
    func force() async throws {
        try await withServer { _, client in
            let path = "\(self.deployments)/relay"
            _ = try await self.apply(client, path, self.deployment(replicas: 2, image: "a"), manager: "A")
            let forced = try await self.apply(client, path, self.deployment(replicas: 3), manager: "B", force: true)
            #expect(forced.status == 200)
            #expect(forced.body[path: ["spec", "replicas"]] == 3)
            #expect(forced.body.managedFields("B", "Apply")?["fieldsV1"] == ["f:spec": ["f:replicas": [:]]])
            let owned = forced.body.managedFields("A", "Apply")?["fieldsV1"]
            #expect(owned?[path: ["f:spec", "f:replicas"]] == nil)
            #expect(owned?[path: ["f:spec", "f:selector"]] == [:])
            // A now meets B's ownership in turn.
            let back = try await self.apply(client, path, self.deployment(replicas: 2, image: "a"), manager: "A")
            #expect(back.status == 409)
            #expect(back.body["message"] == #"Apply failed with 1 conflict: conflict with "B": .spec.replicas"#)
        }
    }

    @Test("applying the value a field already has makes the appliers co-owners, without conflict")
    func coOwnership() async throws {
        try await withServer { _, client in
            let path = "\(self.deployments)/relay"
            _ = try await self.apply(client, path, self.deployment(replicas: 2, image: "a"), manager: "A")
            let shared = try await self.apply(client, path, self.deployment(replicas: 2), manager: "B")
            #expect(shared.status == 200)
            #expect(shared.body.managedFields("A", "Apply")?[path: ["fieldsV1", "f:spec", "f:replicas"]] == [:])
            #expect(shared.body.managedFields("B", "Apply")?[path: ["fieldsV1", "f:spec", "f:replicas"]] == [:])
            // A co-owned field A stops applying stays (B still owns it); a field only A owned goes.
            let dropped = try await self.apply(
                client,
                path,
                #"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "relay"}, "spec": {"selector": {"matchLabels": {"app": "relay"}}}}"#,
                manager: "A"
            )
            #expect(dropped.status == 200)
            #expect(dropped.body[path: ["spec", "replicas"]] == 2)
            #expect(dropped.body[path: ["spec", "template"]] == nil)
            #expect(dropped.body[path: ["spec", "selector"]] == ["matchLabels": ["app": "relay"]])
            // Now B alone owns replicas; when B drops it too, it goes.
            let gone = try await self.apply(
                client,
                path,
                #"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "relay", "labels": {"b": "1"}}}"#,
                manager: "B"
            )
            #expect(gone.body[path: ["spec", "replicas"]] == nil)
            #expect(gone.body.managedFields("B", "Apply")?["fieldsV1"] == ["f:metadata": ["f:labels": ["f:b": [:]]]])
        }
    }

    @Test("a field an Update (merge patch, PUT, the scale subresource) set is owned: an apply changing it is 409")
    func updateOwnership() async throws {
        try await withServer { _, client in
            let path = "\(self.deployments)/relay"
            _ = try await self.apply(client, path, self.deployment(replicas: 1, image: "a"), manager: "operator")
            // `kubectl scale`-like: someone else sets the replicas.
            let scaled = try await client.patch("\(path)?fieldManager=kubectl-edit", ["spec": ["replicas": 5]])
            #expect(scaled.body.managedFields("kubectl-edit", "Update")?["fieldsV1"] == ["f:spec": ["f:replicas": [:]]])
            #expect(scaled.body.managedFields("operator", "Apply")?[path: ["fieldsV1", "f:spec", "f:replicas"]] == nil)
            let refused = try await self.apply(
                client,
                path,
                self.deployment(replicas: 1, image: "a"),
                manager: "operator"
            )
            #expect(refused.status == 409)
            #expect(
                refused.body["message"]
                    == #"Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas"#
            )
            // Through /scale the entry is the scale subresource's.
            let scale = try await client.patch("\(path)/scale?fieldManager=autoscaler", ["spec": ["replicas": 7]])
            #expect(scale.status == 200)
            let stored = try await client.get(path).body
            #expect(
                stored.managedFields("autoscaler", "Update", subresource: "scale")?["fieldsV1"] == [
                    "f:spec": ["f:replicas": [:]]
                ]
            )
            let refusedAgain = try await self.apply(
                client,
                path,
                self.deployment(replicas: 1, image: "a"),
                manager: "operator"
            )
            #expect(
                refusedAgain.body["message"]
                    == #"Apply failed with 1 conflict: conflict with "autoscaler" with subresource "scale" using apps/v1: .spec.replicas"#
            )
            // An apply that leaves the replicas out meets no conflict and keeps them.
            let without = try await self.apply(client, path, self.deployment(image: "b"), manager: "operator")
            #expect(without.status == 200)
            #expect(without.body[path: ["spec", "replicas"]] == 7)
        }
    }

    @Test("associative lists merge by key: two managers' Service ports both stay")
    func servicePorts() async throws {
        try await withServer { _, client in
            let path = "/api/v1/namespaces/default/services/gateway"
            func service(_ port: Int64, _ name: String) -> String {
                """
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gateway"},
                 "spec": {"ports": [{"name": "\(name)", "port": \(port), "protocol": "TCP"}]}}
                """
            }
            _ = try await self.apply(client, path, service(80, "http"), manager: "chart")
            let both = try await self.apply(client, path, service(31000, "stream"), manager: "operator")
            #expect(both.status == 200)
            #expect(
                both.body[path: ["spec", "ports"]]?.arrayValue?.compactMap { $0["port"]?.intValue } == [80, 31000]
            )
            #expect(
                both.body.managedFields("operator", "Apply")?[path: ["fieldsV1", "f:spec", "f:ports"]]
                    == [
                        #"k:{"port":31000,"protocol":"TCP"}"#: [
                            ".": [:], "f:name": [:], "f:port": [:], "f:protocol": [:],
                        ]
                    ]
            )
            // Renaming another manager's port is a conflict on that item's field.
            let renamed = try await self.apply(client, path, service(80, "web"), manager: "operator")
            #expect(renamed.status == 409)
            #expect(
                renamed.body["message"]
                    == #"Apply failed with 1 conflict: conflict with "chart": .spec.ports[port=80,protocol="TCP"].name"#
            )
            // The operator stops applying its port: it goes, the chart's stays.
            let removed = try await self.apply(
                client,
                path,
                #"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gateway"}, "spec": {"type": "ClusterIP"}}"#,
                manager: "operator"
            )
            #expect(removed.body[path: ["spec", "ports"]]?.arrayValue?.compactMap { $0["port"]?.intValue } == [80])
        }
    }

    @Test("finalizers are a set: each manager owns its own")
    func finalizerSet() async throws {
        try await withServer { _, client in
            let path = "\(self.configMaps)/c"
            func config(_ finalizer: String) -> String {
                #"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["\#(finalizer)"]}}"#
            }
            _ = try await self.apply(client, path, config("a.example.com/x"), manager: "A")
            let both = try await self.apply(client, path, config("b.example.com/y"), manager: "B")
            #expect(both.body[path: ["metadata", "finalizers"]] == ["a.example.com/x", "b.example.com/y"])
            #expect(
                both.body.managedFields("B", "Apply")?["fieldsV1"]
                    == ["f:metadata": ["f:finalizers": [#"v:"b.example.com/y""#: [:]]]]
            )
        }
    }

    @Test("managedFields [{}] resets the owners; a request's own managedFields are kept; apply refuses them")
    func resetAndRequestEntries() async throws {
        try await withServer { _, client in
            _ = try await client.post(
                "\(self.configMaps)?fieldManager=creator",
                ["metadata": ["name": "c"], "data": ["k": "v"]]
            )
            var object = try await client.get("\(self.configMaps)/c").body
            object[path: ["metadata", "managedFields"]] = [[:]]
            let reset = try await client.put("\(self.configMaps)/c?fieldManager=resetter", object)
            #expect(reset.status == 200)
            #expect(reset.body[path: ["metadata", "managedFields"]] == nil)
            let refused = try await self.apply(
                client,
                "\(self.configMaps)/c",
                #"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "managedFields": [{"manager": "x"}]}}"#,
                manager: "A"
            )
            #expect(refused.status == 400)
            #expect(refused.body["message"] == "metadata.managedFields must be nil")
        }
    }

    @Test("an apply without fieldManager, and force on a non-apply patch, are 422 as ValidatePatchOptions says")
    func patchOptions() async throws {
        try await withServer { _, client in
            _ = try await client.post(self.configMaps, ["metadata": ["name": "c"]])
            let noManager = try await client.request(
                "PATCH",
                "\(self.configMaps)/c",
                text: #"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}"#,
                contentType: "application/apply-patch+yaml"
            )
            #expect(noManager.status == 422)
            #expect(
                noManager.body["message"]
                    == #"PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#
            )
            let force = try await client.patch("\(self.configMaps)/c?force=true", ["data": ["a": "1"]])
            #expect(force.status == 422)
            #expect(
                force.body["message"]
                    == #"PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch"#
            )
        }
    }
}
