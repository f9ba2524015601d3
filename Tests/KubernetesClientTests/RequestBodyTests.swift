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
import Logging
import NIOCore
import NIOFoundationCompat
import Synchronization
import Testing

/// Records every request body the client sends, as it leaves the middleware chain.
private final class BodyRecorder: KubernetesMiddleware {
    let bodies = Mutex<[(request: String, body: ByteBuffer)]>([])

    func intercept(
        _ request: KubernetesRequest,
        body: KubernetesBody?,
        next: @Sendable (KubernetesRequest, KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    ) async throws -> (KubernetesResponse, KubernetesBody) {
        if let buffer = body?.buffer {
            let label = "\(request.method.rawValue) \(request.path) \(request.header("Content-Type") ?? "")"
            self.bodies.withLock { $0.append((label, buffer)) }
        }
        return try await next(request, body)
    }
}

@Suite("Request bodies: every body the client sends reads the same as JSON and as the API server's YAML")
struct RequestBodyTests {
    static let gadgetCRD = """
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: { name: gadgets.example.com }
        spec:
          group: example.com
          scope: Namespaced
          names: { plural: gadgets, singular: gadget, kind: Gadget }
          versions:
          - name: v1
            served: true
            storage: true
            subresources: { status: {} }
            schema:
              openAPIV3Schema:
                type: object
                properties:
                  spec: { type: object, x-kubernetes-preserve-unknown-fields: true }
                  status: { type: object, x-kubernetes-preserve-unknown-fields: true }
        """

    static let gadgets = KubernetesResource(group: "example.com", version: "v1", plural: "gadgets", kind: "Gadget")

    /// Values a JSON encoder escapes and YAML 1.1 could read differently: slashes (`\/`), quotes, backslashes,
    /// control characters JSON escapes, non-ASCII text, and strings YAML 1.1 would take for booleans, numbers or
    /// null if they were unquoted.
    static let awkward: [String: JSONValue] = [
        "url": "rtmps://live.example.com:443/app/key?x=1&y=/z",
        "quote": "say \"hi\" \\ back\\slash",
        "control": "tab\there\nnewline \u{1} \u{1F}",
        "unicode": "caf\u{E9} \u{1F3A5} \u{4E2D}",
        "yaml11": "yes",
        "number": "0x1F",
        "null": "~",
        "colon": "a: b # not a comment",
    ]

    @Test("create, update, merge patch, apply, status patch and update, delete: each body parses alike")
    func everyBody() async throws {
        var logger = Logger(label: "kube-test-server")
        logger.logLevel = .warning
        try await withKubernetesTestServer(logger: logger) { server in
            try server.installCRD(yaml: Self.gadgetCRD)
            let configuration = try KubernetesConfiguration.kubeconfig(yaml: server.kubeconfig(), baseDirectory: "/")
            let recorder = BodyRecorder()
            try await withKubernetesClient(configuration: configuration) { base in
                let client = base.adding(recorder)
                let data = JSONValue.object(Self.awkward)
                var configMap = try await client.create(
                    KubernetesObject(
                        apiVersion: "v1",
                        kind: "ConfigMap",
                        metadata: ObjectMeta(name: "bodies", labels: ["app.kubernetes.io/name": "liverelay"]),
                        fields: ["data": data]
                    ),
                    .configMaps,
                    fieldManager: "liverelay/test"
                )
                configMap["data"] = ["url": "rtmp://h/app"]
                configMap = try await client.update(configMap, .configMaps)
                _ = try await client.patch(
                    KubernetesObject.self,
                    .configMaps,
                    name: "bodies",
                    mergePatch: ["data": data]
                )
                let applied: JSONValue = [
                    "apiVersion": "example.com/v1", "kind": "Gadget",
                    "metadata": ["name": "g", "annotations": ["example.com/url": "https://example.com/a/b"]],
                    "spec": ["targets": [["name": "one", "url": "rtmp://a/b/c"]], "text": data],
                ]
                var gadget = try await client.apply(
                    applied,
                    as: KubernetesObject.self,
                    Self.gadgets,
                    name: "g",
                    fieldManager: "liverelay",
                    force: true
                )
                _ = try await client.patchStatus(
                    KubernetesObject.self,
                    Self.gadgets,
                    name: "g",
                    mergePatch: ["status": ["message": "see http://x/y", "text": data]]
                )
                gadget = try await client.get(KubernetesObject.self, Self.gadgets, name: "g")
                gadget["status"] = ["url": "rtmp://relay/live"]
                _ = try await client.update(gadget, Self.gadgets, subresource: "status")
                let status: JSONValue = [
                    "apiVersion": "example.com/v1", "kind": "Gadget", "metadata": ["name": "g"],
                    "status": ["a/b": "c/d"],
                ]
                _ = try await client.apply(
                    status,
                    as: KubernetesObject.self,
                    Self.gadgets,
                    name: "g",
                    fieldManager: "liverelay",
                    force: true,
                    subresource: "status"
                )
                try await client.delete(Self.gadgets, name: "g", propagationPolicy: .background, resourceVersion: nil)
                try await client.delete(.configMaps, name: "bodies")
            }
            let bodies = recorder.bodies.withLock { $0 }
            #expect(bodies.count == 9)
            for (request, body) in bodies {
                let text = String(buffer: body)
                let json = try JSON(data: Data(buffer: body))
                let yaml = try #require(
                    try? JSON(kubeAPIServerYAML: text),
                    "\(request): the API server's YAML reader refuses the body \(text)"
                )
                #expect(yaml == json, "\(request): YAML reads \(yaml), JSON reads \(json)")
                #expect(!text.contains("\\/"), "\(request): \(text)")
            }
        }
    }

    /// Characters JSON may leave raw that YAML 1.1 does not take as they are: DEL (U+007F) and the C1 controls are
    /// not printable, so go-yaml and libyaml refuse the body ("control characters are not allowed"); NEL (U+0085),
    /// LINE SEPARATOR (U+2028) and PARAGRAPH SEPARATOR (U+2029) are YAML 1.1 line breaks, folded inside a
    /// double-quoted scalar, so the API server would store another string; U+FEFF, U+FFFE and U+FFFF neither. The
    /// client escapes each (`\u007f` ...), which JSON and YAML read alike; other characters, a four-byte one
    /// included, stay as they are.
    @Test("DEL, C1 controls, NEL, U+2028, U+2029, U+FEFF, U+FFFE, U+FFFF in an apply body read alike as JSON and YAML")
    func yaml11LineBreaksAndDelete() async throws {
        var logger = Logger(label: "kube-test-server")
        logger.logLevel = .warning
        try await withKubernetesTestServer(logger: logger) { server in
            let configuration = try KubernetesConfiguration.kubeconfig(yaml: server.kubeconfig(), baseDirectory: "/")
            let recorder = BodyRecorder()
            let values = [
                "del \u{7F}", "nel \u{85}", "ls \u{2028}", "ps \u{2029}", "c1 \u{80}\u{9F}", "bom \u{FEFF}",
                "non \u{FFFE}\u{FFFF}", "kept é © \u{A0} \u{1F3A5} \\ \u{7F}\"",
            ]
            try await withKubernetesClient(configuration: configuration) { base in
                let client = base.adding(recorder)
                for (index, value) in values.enumerated() {
                    let object: JSONValue = [
                        "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string("raw-\(index)")],
                        "data": ["value": .string(value)],
                    ]
                    _ = try? await client.apply(
                        object,
                        as: KubernetesObject.self,
                        .configMaps,
                        name: "raw-\(index)",
                        fieldManager: "liverelay"
                    )
                }
            }
            let bodies = recorder.bodies.withLock { $0 }
            #expect(bodies.count == values.count)
            for ((request, body), value) in zip(bodies, values) {
                let json = try JSON(data: Data(buffer: body))
                let yaml = try JSON(kubeAPIServerYAML: String(buffer: body))
                #expect(yaml == json, "\(request)")
                #expect(json[path: ["data", "value"]]?.stringValue == value, "\(request): the value changed")
            }
        }
    }
}
