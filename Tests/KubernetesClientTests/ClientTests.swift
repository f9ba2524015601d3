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
import NIOCore
import Synchronization
import Testing

@Suite("Typed operations, errors and retries", .timeLimit(.minutes(3)))
struct ClientTests {
    @Test("errors decode the API's Status")
    func statusErrors() async throws {
        let client = KubernetesClient(
            transport: FakeTransport { _, _ in
                FakeTransport.json(
                    409,
                    #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the object has been modified","reason":"Conflict","code":409}"#
                )
            }
        )
        let error = await #expect(throws: KubernetesError.self) {
            _ = try await client.get(KubernetesObject.self, .configMaps, name: "a")
        }
        #expect(error?.code == .apiError)
        #expect(error?.isConflict == true)
        #expect(error?.status?.reason == "Conflict")
        #expect(error?.message == "the object has been modified")
    }

    @Test("429 and 5xx are retried for idempotent requests, honouring Retry-After, and not for POST")
    func retries() async throws {
        let log = RequestLog()
        let configuration = KubernetesConfiguration(
            server: "http://unused",
            retry: .init(maxAttempts: 3, defaultDelay: .milliseconds(1))
        )
        let client = KubernetesClient(
            configuration: configuration,
            transport: FakeTransport { request, _ in
                log.append(request)
                let attempts = log.all.filter { $0.method == request.method }.count
                if attempts < 3 {
                    return (
                        KubernetesResponse(status: attempts == 1 ? 429 : 503, headers: [("Retry-After", "0")]),
                        KubernetesBody("busy")
                    )
                }
                return FakeTransport.json(200, #"{"metadata":{"name":"a","resourceVersion":"1"}}"#)
            }
        )
        let object = try await client.get(KubernetesObject.self, .configMaps, name: "a")
        #expect(object.metadata.name == "a")
        #expect(log.all.count == 3)

        let error = await #expect(throws: KubernetesError.self) {
            _ = try await client.create(
                KubernetesObject(apiVersion: "v1", kind: "ConfigMap", metadata: ObjectMeta(name: "b")),
                .configMaps
            )
        }
        #expect(error?.statusCode == 429)
        #expect(log.all.filter { $0.method == .post }.count == 1)
    }

    @Test("request shapes: paths, selectors, apply, merge patch, delete options, subresources")
    func requestShapes() async throws {
        let log = RequestLog()
        let bodies = Mutex<[String]>([])
        let client = KubernetesClient(
            transport: FakeTransport { request, body in
                log.append(request)
                if let body {
                    let buffer = try await body.collect(upTo: 1 << 20)
                    bodies.withLock { $0.append(String(buffer: buffer)) }
                }
                if request.path.hasSuffix("/scale") {
                    return FakeTransport.json(200, #"{"metadata":{"name":"d"},"spec":{"replicas":2}}"#)
                }
                return FakeTransport.json(200, #"{"metadata":{"name":"d","namespace":"ns"},"items":[]}"#)
            },
            namespace: "ns"
        )
        _ = try await client.list(
            KubernetesObject.self,
            .deployments,
            options: ListOptions(labelSelector: "app=x", fieldSelector: "metadata.name=d", limit: 5, continue: "tok")
        )
        _ = try await client.apply(
            [
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": ["name": "d", "annotations": ["example.com/url": "rtmps://h:443/app/"]],
            ] as JSONValue,
            as: KubernetesObject.self,
            .deployments,
            name: "d",
            fieldManager: "liverelay",
            force: true
        )
        _ = try await client.patchStatus(
            KubernetesObject.self,
            .deployments,
            name: "d",
            mergePatch: ["status": ["phase": "Live"]]
        )
        try await client.delete(.deployments, name: "d", propagationPolicy: .foreground)
        let scale = try await client.getScale(.deployments, name: "d")
        #expect(scale.spec.replicas == 2)
        _ = try await client.updateScale(Scale(metadata: ObjectMeta(name: "d"), replicas: 1), .deployments)

        let requests = log.all
        #expect(requests[0].path == "/apis/apps/v1/namespaces/ns/deployments")
        #expect(requests[0].queryValue("labelSelector") == "app=x")
        #expect(requests[0].queryValue("limit") == "5")
        #expect(requests[0].queryValue("continue") == "tok")
        #expect(requests[0].target.contains("labelSelector=app%3Dx"))
        #expect(requests[1].method == .patch)
        #expect(requests[1].header("Content-Type") == "application/apply-patch+yaml")
        #expect(requests[1].queryValue("fieldManager") == "liverelay")
        #expect(requests[1].queryValue("force") == "true")
        // kube-apiserver reads an apply body as YAML 1.1 (go-yaml v2), which refuses JSON's `\/`.
        #expect(bodies.withLock { $0[0] }.contains(#""example.com/url":"rtmps://h:443/app/""#))
        #expect(!bodies.withLock { $0 }.contains { $0.contains(#"\/"#) })
        #expect(requests[2].path == "/apis/apps/v1/namespaces/ns/deployments/d/status")
        #expect(requests[2].header("Content-Type") == "application/merge-patch+json")
        #expect(requests[3].method == .delete)
        #expect(bodies.withLock { $0[2] }.contains(#""propagationPolicy":"Foreground""#))
        #expect(requests[4].path == "/apis/apps/v1/namespaces/ns/deployments/d/scale")
        #expect(requests[5].method == .put)
    }

    @Test("JSONValue and KubernetesObject round-trip unknown fields and integers")
    func objectRoundTrip() throws {
        let json =
            #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"k":"v"}},"spec":{"replicas":3,"ratio":0.5,"on":true,"list":[1,"x",null]}}"#
        let object = try JSONDecoder().decode(KubernetesObject.self, from: Data(json.utf8))
        #expect(object["spec"]?["replicas"] == .int(3))
        #expect(object["spec"]?["ratio"] == .double(0.5))
        let again = try JSONDecoder().decode(KubernetesObject.self, from: JSONEncoder().encode(object))
        #expect(again == object)
    }

    @Test("listAll follows continue tokens")
    func pagination() async throws {
        let log = RequestLog()
        let client = KubernetesClient(
            transport: FakeTransport { request, _ in
                log.append(request)
                switch request.queryValue("continue") {
                case nil:
                    return FakeTransport.json(
                        200,
                        #"{"metadata":{"resourceVersion":"5","continue":"p2"},"items":[{"metadata":{"name":"a"}}]}"#
                    )
                case "p2":
                    return FakeTransport.json(
                        200,
                        #"{"metadata":{"resourceVersion":"5","continue":""},"items":[{"metadata":{"name":"b"}}]}"#
                    )
                default:
                    return FakeTransport.json(500, "")
                }
            }
        )
        let (items, version) = try await client.listAll(
            KubernetesObject.self,
            .configMaps,
            options: ListOptions(limit: 1)
        )
        #expect(items.map(\.metadata.name) == ["a", "b"])
        #expect(version == "5")
        #expect(log.all.map { $0.queryValue("limit") } == ["1", "1"])
    }
}
