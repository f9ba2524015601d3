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

@Suite("PATCH: merge, strategic merge, JSON patch, server-side apply", .timeLimit(.minutes(3)))
struct PatchTests {
    let configMaps = "/api/v1/namespaces/default/configmaps"

    @Test("merge patch (RFC 7386): objects merge, null deletes; strategic merge behaves the same")
    func merge() async throws {
        try await withServer { _, client in
            _ = try await client.post(self.configMaps, ["metadata": ["name": "c"], "data": ["a": "1", "b": "2"]])
            let merged = try await client.patch("\(self.configMaps)/c", ["data": ["b": nil, "c": "3"]])
            #expect(merged.body["data"] == ["a": "1", "c": "3"])
            let strategic = try await client.patch(
                "\(self.configMaps)/c",
                ["metadata": ["labels": ["x": "y"]]],
                type: "application/strategic-merge-patch+json"
            )
            #expect(strategic.body[path: ["metadata", "labels", "x"]] == "y")
            #expect(strategic.body["data"] == ["a": "1", "c": "3"])
        }
    }

    @Test("a custom resource refuses strategic merge patch with 415, as kube-apiserver does; other types are 415 too")
    func strategicMergeOnCustomResource() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            _ = try await client.post(widgets, widget("w"))
            let refused = try await client.patch(
                "\(widgets)/w",
                ["spec": ["size": 4]],
                type: "application/strategic-merge-patch+json"
            )
            #expect(refused.status == 415)
            #expect(refused.body["reason"] == "UnsupportedMediaType")
            let accepted = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            #expect(
                refused.body["message"]?.stringValue
                    == "the body of the request was in an unknown format - accepted media types include: \(accepted)"
            )
            #expect(try await client.patch("\(widgets)/w", ["spec": ["size": 4]]).status == 200)
            let unknown = try await client.patch(
                "/api/v1/namespaces/default/configmaps/x",
                ["data": ["a": "1"]],
                type: "text/plain"
            )
            #expect(unknown.status == 415)
        }
    }

    @Test("a merge patch carrying a stale resourceVersion is 409")
    func precondition() async throws {
        try await withServer { _, client in
            _ = try await client.post(self.configMaps, ["metadata": ["name": "c"]])
            let stale = try await client.patch(
                "\(self.configMaps)/c",
                ["metadata": ["resourceVersion": "1"], "data": ["a": "1"]]
            )
            #expect(stale.status == 409)
        }
    }

    @Test("JSON patch (RFC 6902): add, replace, remove, test")
    func jsonPatch() async throws {
        try await withServer { _, client in
            _ = try await client.post(self.configMaps, ["metadata": ["name": "c"], "data": ["a": "1"]])
            let operations: JSON = [
                ["op": "add", "path": "/data/b", "value": "2"],
                ["op": "replace", "path": "/data/a", "value": "9"],
                ["op": "test", "path": "/data/b", "value": "2"],
                ["op": "add", "path": "/metadata/finalizers", "value": []],
                ["op": "add", "path": "/metadata/finalizers/-", "value": "f"],
                ["op": "remove", "path": "/metadata/finalizers/0"],
            ]
            let patched = try await client.patch(
                "\(self.configMaps)/c",
                operations,
                type: "application/json-patch+json"
            )
            #expect(patched.status == 200)
            #expect(patched.body["data"] == ["a": "9", "b": "2"])
            let failing = try await client.patch(
                "\(self.configMaps)/c",
                [["op": "test", "path": "/data/a", "value": "0"]],
                type: "application/json-patch+json"
            )
            #expect(failing.status == 422)
        }
    }

    @Test("server-side apply creates, merges, records the manager and drops fields it no longer applies")
    func apply() async throws {
        try await withServer { _, client in
            let path = "\(self.configMaps)/c?fieldManager=operator&force=true"
            let first = """
                apiVersion: v1
                kind: ConfigMap
                metadata: { name: c, labels: { a: "1" } }
                data: { x: "1", y: "2" }
                """
            let created = try await client.request(
                "PATCH",
                path,
                text: first,
                contentType: "application/apply-patch+yaml"
            )
            #expect(created.status == 201)
            #expect(created.body[path: ["metadata", "managedFields"]]?.arrayValue?.first?["manager"] == "operator")
            #expect(created.body[path: ["metadata", "managedFields"]]?.arrayValue?.first?["operation"] == "Apply")
            // Another writer adds a key; the applier then drops y.
            _ = try await client.patch("\(self.configMaps)/c?fieldManager=other", ["data": ["z": "3"]])
            let second = """
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "10"}}
                """
            let applied = try await client.request(
                "PATCH",
                path,
                text: second,
                contentType: "application/apply-patch+yaml"
            )
            #expect(applied.status == 200)
            #expect(applied.body["data"] == ["x": "10", "z": "3"])
            #expect(applied.body[path: ["metadata", "labels"]] == nil)
            let managers = applied.body[path: ["metadata", "managedFields"]]?.arrayValue?.compactMap {
                $0["manager"]?.stringValue
            }
            #expect(managers?.sorted() == ["operator", "other"])
            let withoutManager = try await client.request(
                "PATCH",
                "\(self.configMaps)/c",
                text: second,
                contentType: "application/apply-patch+yaml"
            )
            // kube-apiserver's ValidatePatchOptions: an apply must name its manager.
            #expect(withoutManager.status == 422)
        }
    }

    @Test(
        "an apply body is read as go-yaml v2 reads it: JSON's \\/ escape is refused with 400, as kube-apiserver does",
        arguments: [
            (#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"u": "rtmp:\/\/h"}}"#, 1),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  u: \"a\\/b\"\n", 6),
        ]
    )
    func applyRefusesEscapedSlash(body: String, line: Int) async throws {
        try await withServer { _, client in
            let refused = try await client.request(
                "PATCH",
                "\(self.configMaps)/c?fieldManager=operator",
                text: body,
                contentType: "application/apply-patch+yaml"
            )
            #expect(refused.status == 400)
            let message = refused.body["message"]?.stringValue ?? ""
            #expect(
                message
                    == "error decoding YAML: error converting YAML to JSON: yaml: "
                    + (line > 1 ? "line \(line): " : "") + "found unknown escape character"
            )
            // The same text without the escape, and YAML's own escapes and quoting, are taken.
            let taken = try await client.request(
                "PATCH",
                "\(self.configMaps)/c?fieldManager=operator",
                text: body.replacingOccurrences(of: "\\/", with: "/")
                    + (body.hasPrefix("{") ? "" : "  q: 'it''s \\/ # not a comment'\n  t: \"tab\\t \\u00e9 \\\\\"\n"),
                contentType: "application/apply-patch+yaml"
            )
            #expect(taken.status == 201)
            #expect(taken.body[path: ["data", "u"]]?.stringValue?.contains("/") == true)
        }
    }

    @Test("server-side apply to /status changes only the status")
    func applyStatus() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            _ = try await client.post(widgets, widget("w"))
            let status = """
                {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                 "spec": {"size": 9}, "status": {"replicas": 1}}
                """
            let applied = try await client.request(
                "PATCH",
                "\(widgets)/w/status?fieldManager=operator",
                text: status,
                contentType: "application/apply-patch+yaml"
            )
            #expect(applied.body[path: ["status", "replicas"]] == 1)
            #expect(applied.body[path: ["spec", "size"]] == 3)
        }
    }
}
