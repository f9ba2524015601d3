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

/// Protobuf messages built by hand from the field numbers of `k8s.io/api`'s `generated.proto`, the way Go's
/// generated marshalling writes them (every string field, even empty, as kubectl's bodies show).
enum ProtobufWire {
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            bytes.append(byte)
        } while value != 0
        return bytes
    }

    static func field(_ number: Int, _ bytes: [UInt8]) -> [UInt8] {
        Self.varint(UInt64(number << 3 | 2)) + Self.varint(UInt64(bytes.count)) + bytes
    }

    static func field(_ number: Int, _ string: String) -> [UInt8] { Self.field(number, Array(string.utf8)) }

    static func bool(_ number: Int, _ value: Bool) -> [UInt8] {
        Self.varint(UInt64(number << 3)) + [value ? 1 : 0]
    }

    static func entry(_ number: Int, _ key: String, _ value: [UInt8]) -> [UInt8] {
        Self.field(number, Self.field(1, key) + Self.field(2, value))
    }

    /// `k8s\0` and a `runtime.Unknown`: TypeMeta (1), raw (2), contentEncoding (3), contentType (4).
    static func envelope(apiVersion: String, kind: String, raw: [UInt8]) -> [UInt8] {
        [0x6B, 0x38, 0x73, 0x00]
            + Self.field(1, Self.field(1, apiVersion) + Self.field(2, kind))
            + Self.field(2, raw) + Self.field(3, "") + Self.field(4, "")
    }

    /// `ObjectMeta`: name 1, generateName 2, namespace 3, labels 11, annotations 12, finalizers 14, and an unknown
    /// field (a uid, 5) the reader must skip.
    static func objectMeta(
        name: String,
        generateName: String = "",
        labels: [String: String] = [:],
        annotations: [String: String] = [:]
    ) -> [UInt8] {
        var bytes = Self.field(1, name) + Self.field(2, generateName) + Self.field(3, "") + Self.field(5, "")
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) { bytes += Self.entry(11, key, Array(value.utf8)) }
        for (key, value) in annotations.sorted(by: { $0.key < $1.key }) {
            bytes += Self.entry(12, key, Array(value.utf8))
        }
        // generation (7), a varint field the reader skips.
        return bytes + Self.varint(7 << 3) + [3]
    }
}

@Suite("Protobuf request bodies (application/vnd.kubernetes.protobuf)", .timeLimit(.minutes(2)))
struct ProtobufTests {
    let protobuf = "application/vnd.kubernetes.protobuf"

    @Test("a Secret: data (bytes), stringData, type, immutable, labels, annotations, generateName")
    func secret() async throws {
        try await withServer { _, client in
            let raw =
                ProtobufWire.field(
                    1,
                    ProtobufWire.objectMeta(
                        name: "",
                        generateName: "key-",
                        labels: ["app": "relay"],
                        annotations: ["note": "a/b"]
                    )
                )
                + ProtobufWire.entry(2, "binary", [0, 255, 10])
                + ProtobufWire.field(3, "Opaque")
                + ProtobufWire.entry(4, "text", Array("hello".utf8))
                + ProtobufWire.bool(5, true)
            let created = try await client.request(
                "POST",
                "/api/v1/namespaces/default/secrets?fieldManager=kubectl-create",
                contentType: self.protobuf,
                accept: "application/vnd.kubernetes.protobuf, application/json",
                bytes: ProtobufWire.envelope(apiVersion: "v1", kind: "Secret", raw: raw)
            )
            #expect(created.status == 201)
            #expect(created.header("Content-Type") == "application/json")
            let secret = created.body
            #expect(secret.name?.hasPrefix("key-") == true)
            #expect(secret[path: ["metadata", "labels"]] == ["app": "relay"])
            #expect(secret[path: ["metadata", "annotations"]] == ["note": "a/b"])
            #expect(secret["type"] == "Opaque")
            #expect(secret["immutable"] == true)
            // stringData is merged into data and never stored.
            #expect(secret["data"] == ["binary": "AP8K", "text": "aGVsbG8="])
            #expect(secret["stringData"] == nil)
            #expect(secret.managedFields("kubectl-create", "Update") != nil)
            // Immutable: the data cannot change any more.
            let changed = try await client.patch(
                "/api/v1/namespaces/default/secrets/\(secret.name ?? "")",
                ["data": ["text": "Ynll"]]
            )
            #expect(changed.status == 422)
            #expect(changed.body[path: ["details", "causes"]]?.arrayValue?.first?["field"] == "data")
        }
    }

    @Test("a ConfigMap: data, binaryData, immutable; a PUT in protobuf too")
    func configMap() async throws {
        try await withServer { _, client in
            let path = "/api/v1/namespaces/default/configmaps"
            let raw =
                ProtobufWire.field(1, ProtobufWire.objectMeta(name: "c"))
                + ProtobufWire.entry(2, "url", Array("rtmp://h/app".utf8))
                + ProtobufWire.entry(3, "blob", [1, 2, 3])
            let created = try await client.request(
                "POST",
                path,
                contentType: self.protobuf,
                bytes: ProtobufWire.envelope(apiVersion: "v1", kind: "ConfigMap", raw: raw)
            )
            #expect(created.status == 201)
            #expect(created.body["data"] == ["url": "rtmp://h/app"])
            #expect(created.body["binaryData"] == ["blob": "AQID"])
            #expect(created.body["immutable"] == nil)

            let replaced =
                ProtobufWire.field(1, ProtobufWire.objectMeta(name: "c"))
                + ProtobufWire.entry(2, "url", Array("x".utf8))
            let put = try await client.request(
                "PUT",
                "\(path)/c",
                contentType: self.protobuf,
                bytes: ProtobufWire.envelope(apiVersion: "v1", kind: "ConfigMap", raw: replaced)
            )
            #expect(put.status == 200)
            #expect(put.body["data"] == ["url": "x"])
            #expect(put.body["binaryData"] == nil)
        }
    }

    @Test("a Namespace with spec.finalizers")
    func namespace() async throws {
        try await withServer { _, client in
            let raw =
                ProtobufWire.field(1, ProtobufWire.objectMeta(name: "team-a", labels: ["env": "test"]))
                + ProtobufWire.field(2, ProtobufWire.field(1, "kubernetes"))
            let created = try await client.request(
                "POST",
                "/api/v1/namespaces",
                contentType: self.protobuf,
                bytes: ProtobufWire.envelope(apiVersion: "v1", kind: "Namespace", raw: raw)
            )
            #expect(created.status == 201)
            #expect(created.body.name == "team-a")
            #expect(created.body[path: ["spec", "finalizers"]] == ["kubernetes"])
            #expect(created.body[path: ["metadata", "labels", "env"]] == "test")
            #expect(created.body[path: ["status", "phase"]] == "Active")
        }
    }

    @Test("other kinds are 415 naming the kind; a body without the magic number, or cut short, is 400")
    func refusals() async throws {
        try await withServer { _, client in
            let deployment = try await client.request(
                "POST",
                "/apis/apps/v1/namespaces/default/deployments",
                contentType: self.protobuf,
                bytes: ProtobufWire.envelope(
                    apiVersion: "apps/v1",
                    kind: "Deployment",
                    raw: ProtobufWire.field(1, ProtobufWire.objectMeta(name: "d"))
                )
            )
            #expect(deployment.status == 415)
            #expect(deployment.body["reason"] == "UnsupportedMediaType")
            #expect(deployment.body["message"]?.stringValue?.contains("apps/v1 Deployment") == true)

            let noMagic = try await client.request(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                contentType: self.protobuf,
                bytes: Array(ProtobufWire.envelope(apiVersion: "v1", kind: "ConfigMap", raw: []).dropFirst(4))
            )
            #expect(noMagic.status == 400)
            let whole = ProtobufWire.envelope(
                apiVersion: "v1",
                kind: "ConfigMap",
                raw: ProtobufWire.field(1, ProtobufWire.objectMeta(name: "c"))
            )
            let truncated = try await client.request(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                contentType: self.protobuf,
                bytes: Array(whole.prefix(whole.count - 12))
            )
            #expect(truncated.status == 400)
            #expect(try await client.get("/api/v1/namespaces/default/configmaps/c").status == 404)
        }
    }
}
