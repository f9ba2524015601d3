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

@Suite("Custom resources: structural schema validation, pruning and defaults", .timeLimit(.minutes(3)))
struct SchemaTests {
    /// KEDA's own CRD, unchanged from its project, in the `shared/` folder beside the repository.
    static let kedaPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("shared/schemas/keda.sh_scaledobjects.yaml").path
    let scaledObjects = "/apis/keda.sh/v1alpha1/namespaces/default/scaledobjects"

    func scaledObject(minReplicaCount: JSON = 0, extra: [String: JSON] = [:]) -> JSON {
        var spec: [String: JSON] = [
            "scaleTargetRef": ["name": "ls-alice"],
            "minReplicaCount": minReplicaCount,
            "maxReplicaCount": 1,
            "pollingInterval": 5,
            "triggers": [
                [
                    "type": "metrics-api",
                    "metadata": [
                        "targetValue": "1", "url": "http://gateway:8080/keda/streams/default/alice",
                        "valueLocation": "connections",
                    ],
                ]
            ],
        ]
        for (key, value) in extra { spec[key] = value }
        return [
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": ["name": "alice"],
            "spec": .object(spec),
        ]
    }

    @Test(
        "KEDA's ScaledObject CRD: valid accepted, wrong type refused, unknown field pruned",
        .enabled(if: FileManager.default.fileExists(atPath: kedaPath))
    )
    func keda() async throws {
        try await withServer { server, client in
            try server.installCRDs(directory: URL(fileURLWithPath: Self.kedaPath).deletingLastPathComponent().path)
            let wrongType = try await client.post(self.scaledObjects, self.scaledObject(minReplicaCount: "zero"))
            #expect(wrongType.status == 422)
            #expect(wrongType.body["reason"] == "Invalid")
            let causes = wrongType.body[path: ["details", "causes"]]?.arrayValue ?? []
            #expect(causes.contains { $0["field"] == "spec.minReplicaCount" })

            let created = try await client.post(self.scaledObjects, self.scaledObject(extra: ["notInTheSchema": true]))
            #expect(created.status == 201)
            #expect(created.body[path: ["spec", "notInTheSchema"]] == nil)
            #expect(created.body[path: ["spec", "minReplicaCount"]] == 0)
            // Trigger metadata is a map of strings (additionalProperties), so it is kept.
            let trigger = created.body[path: ["spec", "triggers"]]?.arrayValue?.first
            #expect(trigger?[path: ["metadata", "valueLocation"]] == "connections")

            let missing = try await client.post(
                self.scaledObjects,
                [
                    "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": ["name": "x"],
                    "spec": ["triggers": []],
                ]
            )
            #expect(missing.status == 422)
            #expect(
                missing.body[path: ["details", "causes"]]?.arrayValue?.contains { $0["field"] == "spec.scaleTargetRef" }
                    == true
            )
        }
    }

    @Test(
        "each schema keyword is enforced",
        arguments: [
            ("size", JSON.int(0), "spec.size"), ("size", 11, "spec.size"), ("size", "three", "spec.size"),
            ("color", "green", "spec.color"), ("name", "Upper", "spec.name"), ("name", "waytoolongname", "spec.name"),
            ("port", true, "spec.port"), ("tags", ["a", "b", "c", "d"], "spec.tags"), ("tags", [1], "spec.tags[0]"),
            ("labels", ["a": 1], "spec.labels.a"),
        ] as [(String, JSON, String)]
    )
    func keywords(field: String, value: JSON, path: String) async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            let response = try await client.post(widgets, widget("w", extra: [field: value]))
            #expect(response.status == 422)
            #expect(
                response.body[path: ["details", "causes"]]?.arrayValue?.contains { $0["field"] == .string(path) }
                    == true
            )
            #expect(response.body["message"]?.stringValue?.hasPrefix("Widget.example.com \"w\" is invalid: ") == true)
        }
    }

    @Test("required, defaults, int-or-string, nullable and preserve-unknown-fields")
    func accepted() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            let missing = try await client.post(
                widgets,
                ["apiVersion": "example.com/v1", "kind": "Widget", "metadata": ["name": "m"], "spec": [:]]
            )
            #expect(missing.body[path: ["details", "causes"]]?.arrayValue?.first?["reason"] == "FieldValueRequired")
            let object = widget(
                "w",
                extra: [
                    "port": "http", "note": nil, "extra": ["free": ["form": 1]], "unknown": 1, "labels": ["a": "b"],
                ]
            )
            let created = try await client.post(widgets, object)
            #expect(created.status == 201)
            let spec = created.body["spec"]
            #expect(spec?["color"] == "red")
            #expect(spec?["port"] == "http")
            #expect(spec?["note"] == .null)
            #expect(spec?[path: ["extra", "free", "form"]] == 1)
            #expect(spec?["unknown"] == nil)
            #expect(spec?["labels"] == ["a": "b"])
            let numeric = try await client.post(widgets, widget("n", extra: ["port": 8080]))
            #expect(numeric.status == 201)
        }
    }

    @Test("fieldValidation=Strict refuses unknown fields instead of pruning them")
    func strict() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            let refused = try await client.post("\(widgets)?fieldValidation=Strict", widget("w", extra: ["bogus": 1]))
            #expect(refused.status == 400)
            #expect(refused.body["message"]?.stringValue?.contains("unknown field \"spec.bogus\"") == true)
            #expect(try await client.post("\(widgets)?fieldValidation=Strict", widget("w")).status == 201)
        }
    }

    @Test("an update is validated too")
    func update() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            _ = try await client.post(widgets, widget("w"))
            let invalid = try await client.patch("\(widgets)/w", ["spec": ["size": 100]])
            #expect(invalid.status == 422)
            #expect(try await client.get("\(widgets)/w").body[path: ["spec", "size"]] == 3)
        }
    }
}
