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
import LiveStreamModel
import Testing

@Suite("Streams file and validation")
struct StreamFileTests {
    @Test("LiveStreams and Secrets in one file, with the CRD's defaults filled in")
    func parsesWithDefaults() throws {
        let yaml = """
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: alice, namespace: streams }
            spec:
              ingest:
                streamKeySecretRef: { name: alice-key, key: streamKey }
              targets:
                - name: youtube
                  url: rtmp://a.rtmp.youtube.com/live2
            ---
            apiVersion: v1
            kind: Secret
            metadata: { name: alice-key, namespace: streams }
            stringData:
              streamKey: "from-string-data"
            ---
            apiVersion: v1
            kind: Secret
            metadata: { name: encoded }
            data:
              key: ZW5jb2RlZC12YWx1ZQo=
            ---
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: bob }
            spec:
              ingest: { port: 31005, allowedSourceRanges: ["10.0.0.0/8"] }
              scaling: { minReplicas: 1, idleSeconds: 5 }
              suspend: true
            ---
            """
        let file = try StreamFile.parse(yaml: yaml, source: "streams.yaml")
        #expect(file.liveStreams.map(\.id.description) == ["streams/alice", "default/bob"])
        let alice = file.liveStreams[0]
        #expect(alice.spec.ingest.app == "live")
        #expect(alice.spec.ingest.port == 0)
        #expect(alice.spec.ingest.allowedSourceRanges == ["0.0.0.0/0", "::/0"])
        #expect(alice.spec.targets[0].enabled)
        #expect(alice.spec.preview.enabled)
        #expect(alice.spec.scaling == .init(minReplicas: 0, idleSeconds: 60))
        #expect(!alice.spec.suspend)
        let bob = file.liveStreams[1]
        #expect(bob.spec.ingest.port == 31005)
        #expect(bob.spec.scaling.idleSeconds == 5)
        #expect(bob.spec.suspend)
        #expect(bob.spec.streamKeySecret(streamName: "bob") == .init(name: "bob-stream-key", key: "streamKey"))
        #expect(file.secret("alice-key", namespace: "streams")?.value("streamKey") == "from-string-data")
        #expect(file.secret("encoded", namespace: "default")?.value("key") == "encoded-value")
        #expect(file.secret("alice-key", namespace: "default") == nil)
        // A Secret never prints its values.
        #expect(!"\(file.secrets[0])".contains("from-string-data"))
    }

    @Test(
        "A bad document is named, with the field and what is wrong",
        arguments: [
            ("kind: Deployment\napiVersion: apps/v1\n", "document 1", "kind Deployment is not supported"),
            (
                "apiVersion: liverelay.io/v1\nkind: LiveStream\nmetadata: {name: a}\n", "document 1",
                "apiVersion must be"
            ),
            (
                "apiVersion: liverelay.io/v1alpha1\nkind: LiveStream\nmetadata: {name: a}\nspec: {ingest: {port: nope}}\n",
                "document 1", "spec.ingest.port: expected an integer"
            ),
            (
                "apiVersion: liverelay.io/v1alpha1\nkind: LiveStream\nmetadata: {name: a}\nspec: {}\n---\napiVersion: liverelay.io/v1alpha1\nkind: LiveStream\nmetadata: {name: a}\nspec: {}\n",
                "document 2", "already defined in document 1"
            ),
            (
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '%%%'}\n", "document 1",
                "not base64-encoded"
            ),
            ("a: [1, 2\n", "streams.yaml", "not valid YAML"),
            (
                "apiVersion: liverelay.io/v1alpha1\nkind: LiveStream\nmetadata: {name: a}\n", "document 1",
                "missing field spec"
            ),
        ]
    )
    func badDocuments(yaml: String, location: String, message: String) {
        #expect {
            try StreamFile.parse(yaml: yaml, source: "streams.yaml")
        } throws: { error in
            let text = "\(error)"
            return text.contains(location) && text.contains(message)
        }
    }

    @Test("The JSON form of a file reads as its YAML form does, one document or an array of them")
    func json() throws {
        let yaml = """
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: alice, namespace: streams }
            spec:
              ingest: { port: 31005, streamKeySecretRef: { name: alice-key, key: streamKey } }
              targets:
                - { name: youtube, url: rtmp://a.rtmp.youtube.com/live2, streamKeySecretRef: { name: yt, key: key } }
              rules: { maxKeyframeIntervalSeconds: 4 }
            ---
            apiVersion: v1
            kind: Secret
            metadata: { name: alice-key, namespace: streams }
            data: { streamKey: ZW5jb2RlZC12YWx1ZQo= }
            stringData: { other: " text " }
            """
        let stream = """
            {
              "apiVersion": "liverelay.io/v1alpha1",
              "kind": "LiveStream",
              "metadata": { "name": "alice", "namespace": "streams" },
              "spec": {
                "ingest": { "port": 31005, "streamKeySecretRef": { "name": "alice-key", "key": "streamKey" } },
                "targets": [
                  {
                    "name": "youtube", "url": "rtmp://a.rtmp.youtube.com/live2",
                    "streamKeySecretRef": { "name": "yt", "key": "key" }
                  }
                ],
                "rules": { "maxKeyframeIntervalSeconds": 4 }
              }
            }
            """
        let secret = """
            { "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "alice-key", "namespace": "streams" },
              "data": { "streamKey": "ZW5jb2RlZC12YWx1ZQo=" }, "stringData": { "other": " text " } }
            """
        let fromYAML = try StreamFile.parse(yaml: yaml, source: "streams.yaml")
        let array = "\n [\(stream), null, \(secret)]\n"
        for file in [
            try StreamFile.parse(json: array, source: "streams.json"),
            try StreamFile.parse(yaml: array, source: "streams.json"),
        ] {
            #expect(file.liveStreams == fromYAML.liveStreams)
            #expect(file.secrets == fromYAML.secrets)
            #expect(file.secret("alice-key", namespace: "streams")?.value("streamKey") == "encoded-value")
            #expect(file.secret("alice-key", namespace: "streams")?.value("other") == "text")
        }
        let one = try StreamFile.parse(yaml: stream, source: "livestream.yaml")
        #expect(one.liveStreams == fromYAML.liveStreams)
        #expect(one.liveStreams.first?.spec.ingest.allowedSourceRanges == ["0.0.0.0/0", "::/0"], "defaults")
        // YAML's flow style starts like JSON and is not JSON: still read, as YAML.
        let flow = try StreamFile.parse(
            yaml: "{apiVersion: liverelay.io/v1alpha1, kind: LiveStream, metadata: {name: bob}, spec: {}}",
            source: "flow.yaml"
        )
        #expect(flow.liveStreams.map(\.id.description) == ["default/bob"])
    }

    @Test(
        "A bad JSON document is named as its YAML form would be",
        arguments: [
            (#"{"kind": "Deployment", "apiVersion": "apps/v1"}"#, "document 1", "kind Deployment is not supported"),
            (
                #"[null, {"apiVersion": "liverelay.io/v1alpha1", "kind": "LiveStream", "metadata": {"name": "a"}, "#
                    + #""spec": {"ingest": {"port": "nope"}}}]"#,
                "document 2", "spec.ingest.port: expected an integer"
            ),
            (
                #"{"apiVersion": "liverelay.io/v1alpha1", "kind": "LiveStream", "metadata": {"name": "a"}}"#,
                "document 1", "missing field spec"
            ),
            (
                #"{"apiVersion": "liverelay.io/v1alpha1", "kind": "LiveStream", "metadata": {"name": "-a"}, "spec": {}}"#,
                "document 1", "LiveStream -a is invalid: metadata.name"
            ),
            (
                #"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "%%%"}}"#,
                "document 1", "not base64-encoded"
            ),
            (#"{"apiVersion": "v1", "kind": "Secret", "metadata": {}}"#, "document 1", "needs metadata.name"),
            (#"{"apiVersion": "v1", "kind": "Secret""#, "streams.json", "not valid JSON"),
        ]
    )
    func badJSONDocuments(json: String, location: String, message: String) {
        #expect {
            try StreamFile.parse(json: json, source: "streams.json")
        } throws: { error in
            let text = "\(error)"
            return text.contains(location) && text.contains(message)
        }
    }

    @Test("Validation names every bad field")
    func validation() {
        let spec = LiveStreamSpec(
            ingest: .init(app: "li ve", port: 70000, allowedSourceRanges: ["10.0.0.0/33"]),
            targets: [
                .init(name: "yt", url: "http://example.com/live"),
                .init(name: "yt", url: "rtmp://user:pw@example.com/live"),
                .init(name: "Bad_Name", url: "rtmps://example.com:443/app/"),
            ],
            scaling: .init(minReplicas: 2, idleSeconds: 0)
        )
        let fields = spec.validate(name: "-x").map(\.field)
        #expect(
            fields == [
                "metadata.name", "spec.ingest.app", "spec.ingest.port", "spec.ingest.allowedSourceRanges[0]",
                "spec.targets[0].url", "spec.targets[1].name", "spec.targets[1].url", "spec.targets[2].name",
                "spec.scaling.minReplicas", "spec.scaling.idleSeconds",
            ]
        )
        #expect(LiveStreamSpec().validate(name: "ok").isEmpty)
        let long = String(repeating: "a", count: LiveStreamLimits.maxNameLength + 1)
        #expect(LiveStreamSpec().validate(name: long).map(\.field) == ["metadata.name"])
    }

    @Test("Generated stream keys are 64 hex digits and differ")
    func streamKeys() {
        let keys = (0..<100).map { _ in StreamKey.generate() }
        #expect(Set(keys).count == 100)
        #expect(keys.allSatisfy { $0.count == 64 && $0.allSatisfy(\.isHexDigit) })
    }

    @Test("A stream key is read without the whitespace and line breaks around it, from stringData and data alike")
    func streamKeyNormalization() throws {
        #expect(StreamKey.normalized("key\n") == "key")
        #expect(StreamKey.normalized("key \r\n") == "key")
        #expect(StreamKey.normalized("\tkey\t") == "key")
        #expect(StreamKey.normalized("a key") == "a key", "inside a key, whitespace is the key's")
        #expect(StreamKey.normalized(" \n") == "")
        let yaml = """
            apiVersion: v1
            kind: Secret
            metadata: { name: keys }
            stringData: { plain: "key-one \\n", clean: key-two }
            data: { encoded: \(Data("key-three\t\n".utf8).base64EncodedString()) }
            """
        let secret = try #require(
            try StreamFile.parse(yaml: yaml, source: "keys.yaml").secret("keys", namespace: "default")
        )
        #expect(secret.value("plain") == "key-one")
        #expect(secret.value("clean") == "key-two")
        #expect(secret.value("encoded") == "key-three")
    }

    @Test("setCondition moves lastTransitionTime only when the status changes")
    func conditions() {
        var status = LiveStreamStatus()
        status.setCondition(.init(type: "Ready", status: .false, reason: "A", message: "a", lastTransitionTime: "t1"))
        status.setCondition(.init(type: "Ready", status: .false, reason: "B", message: "b", lastTransitionTime: "t2"))
        #expect(status.condition("Ready")?.lastTransitionTime == "t1")
        #expect(status.condition("Ready")?.reason == "B")
        status.setCondition(.init(type: "Ready", status: .true, reason: "C", message: "c", lastTransitionTime: "t3"))
        #expect(status.condition("Ready")?.lastTransitionTime == "t3")
        #expect(status.conditions?.count == 1)
    }
}
