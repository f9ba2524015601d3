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
import Gateway
import KubernetesClient
import KubernetesTestSupport
import LiveStreamModel
import Operator
import PeerTestSupport
import ServiceLifecycle
import Testing

@Suite("The gateway's routes from the cluster, and its activator", .timeLimit(.minutes(3)))
struct GatewayRouteSourceTests {
    func endpointSlice(_ service: String, namespace: String, ready: Bool) -> KubernetesObject {
        KubernetesObject(
            apiVersion: "discovery.k8s.io/v1",
            kind: "EndpointSlice",
            metadata: ObjectMeta(
                name: "\(service)-abcde",
                namespace: namespace,
                labels: ["kubernetes.io/service-name": service]
            ),
            fields: [
                "addressType": "IPv4",
                "endpoints": [["addresses": ["10.1.2.3"], "conditions": ["ready": .bool(ready)]]],
                "ports": [["name": "rtmp", "port": 1935, "protocol": "TCP"]],
            ]
        )
    }

    /// Runs `source` in a service group for the duration of `body`, then shuts it down gracefully.
    static func running(_ source: KubernetesGatewayRouteSource, _ body: () async throws -> Void) async throws {
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: source)], logger: quietLogger)
        )
        let task = Task { try await group.run() }
        defer { task.cancel() }
        try await body()
        await group.triggerGracefulShutdown()
        try await task.value
    }

    @Test(
        "routes follow status.port, source ranges, suspend and relay readiness (with and without a PROXY header)",
        arguments: [false, true]
    )
    func routes(sendsProxyHeader: Bool) async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let client = cluster.client
            let ns = cluster.namespace
            let routes = GatewayRoutes()
            let source = KubernetesGatewayRouteSource(
                client: client,
                namespace: ns,
                routes: routes,
                sendsProxyHeader: sendsProxyHeader,
                logger: quietLogger
            )
            try await Self.running(source) {
                let stream = StreamID(namespace: ns, name: "erin")

                _ = try await client.createLiveStream(
                    "erin",
                    namespace: ns,
                    spec: ["ingest": ["allowedSourceRanges": ["10.0.0.0/8", "10.0.0.0/99"]]]
                )
                _ = try await client.createLiveStream("nobody", namespace: ns)
                // No port yet: no route.
                _ = try await client.patchStatus(
                    KubernetesObject.self,
                    .liveStreams,
                    name: "erin",
                    namespace: ns,
                    mergePatch: ["status": ["port": 31007]]
                )
                try await eventually("erin's route appears") { routes.route(for: stream) != nil }
                var route = try #require(routes.route(for: stream))
                #expect(route.listenPort == 31007)
                #expect(route.upstream == nil)
                #expect(route.allowedSourceRanges.map(\.description) == ["10.0.0.0/8"])
                #expect(route.suspended == false)
                #expect(routes.routes.count == 1)

                // A ready endpoint of ls-erin: the relay is the upstream.
                _ = try await client.create(self.endpointSlice("ls-erin", namespace: ns, ready: false), .endpointSlices)
                _ = try await client.update(
                    self.endpointSlice("ls-erin", namespace: ns, ready: true).withVersion(of: client),
                    .endpointSlices
                )
                try await eventually("erin's upstream is ready") { routes.route(for: stream)?.upstream != nil }
                route = try #require(routes.route(for: stream))
                #expect(
                    route.upstream
                        == GatewayRoute.Upstream(
                            host: "ls-erin.\(ns).svc",
                            port: 1935,
                            sendsProxyHeader: sendsProxyHeader
                        )
                )

                // Suspended: the route says so.
                _ = try await client.patch(
                    KubernetesObject.self,
                    .liveStreams,
                    name: "erin",
                    namespace: ns,
                    mergePatch: ["spec": ["suspend": true]]
                )
                try await eventually("erin is suspended") { routes.route(for: stream)?.suspended == true }

                // Deleted: the route goes.
                try await client.delete(.liveStreams, name: "erin", namespace: ns)
                try await eventually("erin's route is gone") { routes.route(for: stream) == nil }
            }
        }
    }

    @Test(
        "the operator keeps every stream's key in the key book and the gateway's routes carry it: a generated key, a key the user gave, a changed app, a webhook stream (none), a delete"
    )
    func ingestKeyBook() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            try await createGatewayService(cluster)
            var configuration = try testConfiguration(cluster)
            configuration.ingestKeyBookSecret = "liverelay-ingest-keys"
            try await withOperator(cluster, configuration: configuration) { _ in
                let client = cluster.client
                let ns = cluster.namespace
                let routes = GatewayRoutes()
                let source = KubernetesGatewayRouteSource(
                    client: client,
                    namespace: ns,
                    routes: routes,
                    ingestKeyBook: (ns, "liverelay-ingest-keys"),
                    logger: quietLogger
                )
                try await Self.running(source) {

                    // A key the user gave, with the line break `kubectl create secret --from-file` keeps and a space
                    // an editor left: found by the key alone, as the relay reads it (`StreamKey.normalized`).
                    let given = "test-key-\(UInt64.random(in: 0...UInt64.max))"
                    _ = try await client.create(
                        KubernetesObject(
                            apiVersion: "v1",
                            kind: "Secret",
                            metadata: ObjectMeta(name: "gina-key", namespace: ns),
                            fields: ["data": ["streamKey": .string(Data((given + " \n").utf8).base64EncodedString())]]
                        ),
                        .secrets,
                        namespace: ns
                    )
                    _ = try await client.createLiveStream(
                        "gina",
                        namespace: ns,
                        spec: ["ingest": ["streamKeySecretRef": ["name": "gina-key", "key": "streamKey"]]]
                    )
                    // No key Secret: the operator generates one.
                    _ = try await client.createLiveStream("hank", namespace: ns)
                    _ = try await client.createLiveStream(
                        "ivan",
                        namespace: ns,
                        spec: ["ingest": ["webhook": ["url": "http://127.0.0.1:9/auth"]]]
                    )
                    let gina = StreamID(namespace: ns, name: "gina")
                    let hank = StreamID(namespace: ns, name: "hank")
                    let ivan = StreamID(namespace: ns, name: "ivan")
                    try await eventually("routes with keys") {
                        routes.route(for: gina)?.ingestKey != nil && routes.route(for: hank)?.ingestKey != nil
                            && routes.route(for: ivan) != nil
                    }
                    #expect(routes.route(forIngest: .init(app: "live", key: given))?.stream == gina)
                    #expect(routes.route(forIngest: .init(app: "live", key: given + " ")) == nil)
                    #expect(routes.route(for: ivan)?.ingestKey == nil, "a webhook stream has no key to be found by")
                    // The generated key is the one in hank's Secret, which the relay reads.
                    let hankKey = try await client.get(
                        KubernetesObject.self,
                        .secrets,
                        name: "hank-stream-key",
                        namespace: ns
                    )
                    let generated = try #require(
                        hankKey["data"]?["streamKey"]?.stringValue.flatMap { Data(base64Encoded: $0) }
                            .map { String(decoding: $0, as: UTF8.self) }
                    )
                    #expect(routes.route(forIngest: .init(app: "live", key: generated))?.stream == hank)
                    let book = try await client.get(
                        KubernetesObject.self,
                        .secrets,
                        name: "liverelay-ingest-keys",
                        namespace: ns
                    )
                    #expect(book.metadata.labels?[IngestKeyBook.label] == "true")
                    #expect(book["data"]?["\(ns).ivan"] == nil)

                    // A new application: found by it from then on.
                    _ = try await client.patch(
                        KubernetesObject.self,
                        .liveStreams,
                        name: "gina",
                        namespace: ns,
                        mergePatch: ["spec": ["ingest": ["app": "studio"]]]
                    )
                    try await eventually("gina found by her new app") {
                        routes.route(forIngest: .init(app: "studio", key: given))?.stream == gina
                    }
                    #expect(routes.route(forIngest: .init(app: "live", key: given)) == nil)

                    // Deleted: the entry goes with the stream.
                    try await client.delete(.liveStreams, name: "gina", namespace: ns)
                    try await eventually("gina's entry removed") {
                        let book = try? await client.get(
                            KubernetesObject.self,
                            .secrets,
                            name: "liverelay-ingest-keys",
                            namespace: ns
                        )
                        return book?["data"]?["\(ns).gina"] == nil
                    }
                    #expect(routes.route(forIngest: .init(app: "studio", key: given)) == nil)
                    #expect(routes.route(forIngest: .init(app: "live", key: generated))?.stream == hank)
                }
            }
        }
    }

    @Test("the activator scales a relay at zero to one, leaves a running one alone, and never throws")
    func activator() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let client = cluster.client
            let ns = cluster.namespace
            let deployment = KubernetesObject(
                apiVersion: "apps/v1",
                kind: "Deployment",
                metadata: ObjectMeta(name: "ls-frank", namespace: ns),
                fields: [
                    "spec": [
                        "replicas": 0,
                        "selector": ["matchLabels": ["app": "x"]],
                        "template": [
                            "metadata": ["labels": ["app": "x"]],
                            "spec": ["containers": [["name": "relay", "image": "x"]]],
                        ],
                    ]
                ]
            )
            _ = try await client.create(deployment, .deployments, namespace: ns)
            let activator = KubernetesScaleActivator(client: client, logger: quietLogger)
            await activator.activate(StreamID(namespace: ns, name: "frank"))
            #expect(try await client.getScale(.deployments, name: "ls-frank", namespace: ns).spec.replicas == 1)
            // Already running: unchanged.
            var scale = try await client.getScale(.deployments, name: "ls-frank", namespace: ns)
            scale.spec.replicas = 2
            _ = try await client.updateScale(scale, .deployments, namespace: ns)
            await activator.activate(StreamID(namespace: ns, name: "frank"))
            #expect(try await client.getScale(.deployments, name: "ls-frank", namespace: ns).spec.replicas == 2)
            // No such relay: logged, not thrown.
            await activator.activate(StreamID(namespace: ns, name: "nobody"))
        }
    }
}

extension KubernetesObject {
    /// This object with the `resourceVersion` the server holds, for an update.
    func withVersion(of client: KubernetesClient) async throws -> KubernetesObject {
        var object = self
        let current = try await client.get(
            KubernetesObject.self,
            .endpointSlices,
            name: self.metadata.name ?? "",
            namespace: self.metadata.namespace
        )
        object.metadata.resourceVersion = current.metadata.resourceVersion
        return object
    }
}
