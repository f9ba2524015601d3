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
import Testing

@Suite("What a cache keeps of a child: its summary")
struct ObjectSummaryTests {
    /// A Deployment as an API server answers it: defaults, status and server metadata beside what was applied.
    static let served = """
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "ls-alice", "namespace": "ns", "uid": "u-1", "resourceVersion": "42", "generation": 3,
           "labels": {"app.kubernetes.io/name": "liverelay-relay", "app.kubernetes.io/instance": "alice"},
           "annotations": {"liverelay.io/applied-hash": "0123456789abcdef", "deployment.kubernetes.io/revision": "1"},
           "ownerReferences": [{"apiVersion": "liverelay.io/v1alpha1", "kind": "LiveStream", "name": "alice",
             "uid": "s-1", "controller": true, "blockOwnerDeletion": true}],
           "managedFields": [{"manager": "liverelay-operator", "operation": "Apply", "fieldsV1": {"f:spec": {}}}]},
         "spec": {"replicas": 2, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600.0,
           "selector": {"matchLabels": {"app.kubernetes.io/instance": "alice"}},
           "template": {"metadata": {"labels": {"app.kubernetes.io/instance": "alice"}},
             "spec": {"dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30,
               "containers": [{"name": "relay", "image": "liverelay:1", "args": ["relay", "--port", "1935"],
                 "resources": {"limits": {"cpu": 0.5}}, "env": [], "securityContext": {"privileged": false},
                 "readinessProbe": null, "terminationMessagePath": "/dev/termination-log"}]}}},
         "status": {"observedGeneration": 3, "replicas": 2, "readyReplicas": 1,
           "conditions": [{"type": "Available", "status": "True"}]}}
        """

    /// What the operator applied, contained in ``served``.
    static let desired: JSONValue = [
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": [
            "name": "ls-alice",
            "namespace": "ns",
            "labels": ["app.kubernetes.io/name": "liverelay-relay"],
            "annotations": ["liverelay.io/applied-hash": "0123456789abcdef"],
            "ownerReferences": [
                [
                    "apiVersion": "liverelay.io/v1alpha1", "kind": "LiveStream", "name": "alice", "uid": "s-1",
                    "controller": true, "blockOwnerDeletion": true,
                ]
            ],
        ],
        "spec": [
            "progressDeadlineSeconds": 600,
            "selector": ["matchLabels": ["app.kubernetes.io/instance": "alice"]],
            "template": [
                "spec": [
                    "containers": [
                        [
                            "name": "relay", "image": "liverelay:1", "args": ["relay", "--port", "1935"],
                            "resources": ["limits": ["cpu": .double(0.5)]], "env": [],
                            "securityContext": ["privileged": false], "readinessProbe": nil,
                        ]
                    ]
                ]
            ],
        ],
    ]

    func decoded(_ json: String) throws -> ObjectSummary {
        try JSONDecoder().decode(ObjectSummary.self, from: Data(json.utf8))
    }

    func served(editing edit: (inout JSONValue) -> Void) throws -> ObjectSummary {
        var object = try JSONDecoder().decode(JSONValue.self, from: Data(Self.served.utf8))
        edit(&object)
        return try self.decoded(String(decoding: try JSONEncoder().encode(object), as: UTF8.self))
    }

    @Test("decoded from JSON as from the decoded object; keeps metadata, replicas and status counts, no labels")
    func decoding() throws {
        let summary = try self.decoded(Self.served)
        let object = try JSONDecoder().decode(KubernetesObject.self, from: Data(Self.served.utf8))
        #expect(summary == ObjectSummary(object))
        #expect(summary.metadata.name == "ls-alice")
        #expect(summary.metadata.resourceVersion == "42")
        #expect(summary.metadata.ownerReferences?.first?.uid == "s-1")
        #expect(summary.metadata.labels == nil)
        #expect(summary.metadata.annotations == nil)
        #expect(summary.replicas == 2)
        #expect(summary.statusCounts == ["observedGeneration": 3, "replicas": 2, "readyReplicas": 1])
        // One digest per node outside status: a few dozen numbers for the whole Deployment.
        #expect(summary.digestCount < 60)
    }

    @Test("the desired object is in the served one, defaults and status beside it; numbers by value")
    func contained() throws {
        let summary = try self.decoded(Self.served)
        #expect(summary.contains(Self.desired))
        #expect(summary.contains(.int(2), at: ["spec", "replicas"]))
        #expect(summary.contains(.double(2), at: ["spec", "replicas"]))
        #expect(summary.contains(.int(600), at: ["spec", "progressDeadlineSeconds"]))
        #expect(!summary.contains(.int(3), at: ["spec", "replicas"]))
        #expect(!summary.contains(.string("2"), at: ["spec", "replicas"]))
        #expect(!summary.contains(.int(1), at: ["status", "readyReplicas"]), "status is not compared")
    }

    @Test("a field edited, removed or a list made longer or shorter by hand is not as desired")
    func edits() throws {
        func template(_ object: inout JSONValue, _ edit: (inout JSONValue) -> Void) {
            guard case .array(var containers)? = object["spec"]?["template"]?["spec"]?["containers"] else { return }
            edit(&containers[0])
            object["spec"]?["template"]?["spec"]?["containers"] = .array(containers)
        }
        let edits: [(String, (inout JSONValue) -> Void)] = [
            ("image edited", { template(&$0) { $0["image"] = "evil:1" } }),
            ("argument edited", { template(&$0) { $0["args"] = ["relay", "--port", "1936"] } }),
            ("argument added", { template(&$0) { $0["args"] = ["relay", "--port", "1935", "--debug"] } }),
            ("argument removed", { template(&$0) { $0["args"] = ["relay", "--port"] } }),
            ("environment added", { template(&$0) { $0["env"] = [["name": "X", "value": "1"]] } }),
            ("limit edited", { template(&$0) { $0["resources"] = ["limits": ["cpu": 1]] } }),
            ("flag flipped", { template(&$0) { $0["securityContext"] = ["privileged": true] } }),
            ("null replaced", { template(&$0) { $0["readinessProbe"] = ["exec": ["command": ["true"]]] } }),
            ("container removed", { $0["spec"]?["template"]?["spec"]?["containers"] = [] }),
            ("selector removed", { $0["spec"]?["selector"] = nil }),
            ("number edited", { $0["spec"]?["progressDeadlineSeconds"] = 601 }),
            ("label edited", { $0["metadata"]?["labels"]?["app.kubernetes.io/name"] = "other" }),
            ("labels removed", { $0["metadata"]?["labels"] = nil }),
            ("hash changed", { $0["metadata"]?["annotations"]?["liverelay.io/applied-hash"] = "fedcba9876543210" }),
            ("owner removed", { $0["metadata"]?["ownerReferences"] = [] }),
            ("renamed", { $0["metadata"]?["name"] = "ls-bob" }),
        ]
        for (what, edit) in edits {
            #expect(!(try self.served(editing: edit)).contains(Self.desired), "\(what)")
        }
        // What the operator does not set may change freely.
        let free: [(String, (inout JSONValue) -> Void)] = [
            ("another label", { $0["metadata"]?["labels"]?["team"] = "a" }),
            ("another annotation", { $0["metadata"]?["annotations"]?["note"] = "b" }),
            ("a default", { $0["spec"]?["revisionHistoryLimit"] = 3 }),
            ("the status", { $0["status"] = ["readyReplicas": 0] }),
            ("the replicas", { $0["spec"]?["replicas"] = 5 }),
        ]
        for (what, edit) in free {
            #expect((try self.served(editing: edit)).contains(Self.desired), "\(what)")
        }
    }

    @Test("a member of metadata a summary does not keep is never seen as present")
    func unknownMetadata() throws {
        var desired = Self.desired
        desired["metadata"]?["finalizers"] = ["x"]
        #expect(!(try self.decoded(Self.served)).contains(desired))
    }

    @Test("compact metadata gives back what it was made from: UUIDs, owner names ending the name, anything else")
    func compactMetadata() {
        let uid = "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011"
        var metadata = ObjectMeta(
            name: "ls-a-stream-with-a-long-name",
            namespace: "streams-of-a-long-namespace",
            ownerReferences: [
                OwnerReference(
                    apiVersion: "liverelay.io/v1alpha1",
                    kind: "LiveStream",
                    name: "a-stream-with-a-long-name",
                    uid: uid,
                    controller: true,
                    blockOwnerDeletion: true
                )
            ],
            finalizers: ["liverelay.io/finalizer"],
            resourceVersion: "7"
        )
        metadata.uid = "8F1E2D3C-4B5A-6978-8A9B-ACBDCEDF0011"  // not canonical: kept as it came
        metadata.generation = 2
        metadata.creationTimestamp = "2026-12-07T01:02:03Z"
        metadata.deletionTimestamp = "2026-12-07T01:02:04Z"
        #expect(CompactObjectMeta(metadata).metadata == metadata)
        metadata.uid = uid
        metadata.ownerReferences?[0].name = "someone-else-entirely"
        metadata.ownerReferences?[0].uid = "not-a-uuid"
        #expect(CompactObjectMeta(metadata).metadata == metadata)
        let owner = metadata.ownerReferences?[0]
        metadata.ownerReferences?.append(contentsOf: owner.map { [$0] } ?? [])
        #expect(CompactObjectMeta(metadata).metadata == metadata)
        metadata.ownerReferences = []
        #expect(CompactObjectMeta(metadata).metadata == metadata)
        metadata.ownerReferences = nil
        metadata.labels = ["a": "b"]
        metadata.annotations = ["c": "d"]
        let kept = CompactObjectMeta(metadata).metadata
        #expect(kept.labels == nil && kept.annotations == nil && kept.uid == uid && kept.name == metadata.name)
    }

    @Test("recent strings: one copy of a string seen again, any string given back as it came")
    func recentStrings() {
        let strings = RecentStrings()
        let long = "a condition message longer than fifteen bytes"
        #expect(strings(long) == long)
        #expect(strings(String(long.reversed().reversed())) == long)
        #expect(strings("short") == "short")
        for index in 0..<(2 * RecentStrings.slots) {
            let string = "a string that evicts others: \(index)"
            #expect(strings(string) == string)
        }
    }
}
