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
import KubernetesTestServer
import KubernetesTestSupport
import LiveStreamModel
import Logging
import Operator
import PeerTestSupport
import ServiceLifecycle
import Testing

@Suite(
    "helm uninstall's teardown",
    .enabled(
        if: peerAvailable(chartToolsAvailable),
        "python3 with helm-python and kubernetes-validate is not installed"
    ),
    .timeLimit(.minutes(3))
)
struct TeardownTests {
    /// The chart's pre-delete Job, with exactly its ServiceAccount's grants: while the operator runs, every
    /// LiveStream is deleted and released by the operator (its port leaves the gateway Service); what an operator
    /// that is gone left behind has its finalizer removed, so nothing hangs; `release` keeps the streams and removes
    /// only the finalizer. Every grant is used.
    @Test("deletes every LiveStream while the operator runs, releases what a stopped one left, keeps on release")
    func teardown() async throws {
        try await withRenderedChart(crds: false, lint: false) { chart in
            try await withTestServer { server, admin in
                try server.installCRD(yaml: String(contentsOfFile: Paths.crd, encoding: .utf8))
                _ = try server.apply([
                    "apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "liverelay-system"],
                ])
                for object in chart.objects { _ = try server.apply(object) }
                try await Self.exercise(chart: chart, server: server, admin: admin)
            }
        }
    }

    static func exercise(chart: RenderedChart, server: KubernetesTestServer, admin: KubernetesClient) async throws {
        let quiet = Logger(label: "teardown-test", factory: { _ in SwiftLogNoOpLogHandler() })
        let teardownRBAC = RBACMiddleware(
            authorizer: Authorizer(chart: chart, serviceAccount: "liverelay-teardown", namespace: "liverelay-system"),
            serviceAccount: "liverelay-teardown"
        )
        let teardownClient = KubernetesClient(
            transport: ForwardingTransport(client: admin),
            namespace: "liverelay-system",
            middlewares: [teardownRBAC],
            logger: quiet
        )
        let teardown = LiveStreamTeardown(client: teardownClient, namespace: nil, logger: quiet)
        func stream(_ namespace: String, _ name: String) -> JSON? {
            server.object(apiVersion: "liverelay.io/v1alpha1", kind: "LiveStream", namespace: namespace, name: name)
        }
        func gatewayPorts() -> Set<Int64> {
            let service = server.object(
                apiVersion: "v1",
                kind: "Service",
                namespace: "liverelay-system",
                name: "liverelay-gateway"
            )
            return Set((service?[path: ["spec", "ports"]]?.arrayValue ?? []).compactMap { $0["port"]?.intValue })
        }
        func create(_ namespace: String, _ name: String) throws {
            _ = try server.apply([
                "apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(namespace)],
            ])
            _ = try server.apply([
                "apiVersion": "liverelay.io/v1alpha1", "kind": "LiveStream",
                "metadata": ["name": .string(name), "namespace": .string(namespace)],
                "spec": ["ingest": ["app": "live"], "targets": []],
            ])
        }

        // While the operator runs: it adds its finalizer and a port to each stream; the teardown deletes them and
        // the operator releases each.
        let operatorConfiguration = try operatorConfiguration(
            chart.arguments("liverelay-operator"),
            identity: "teardown-test"
        )
        let liveOperator = LiveStreamOperator(client: admin, configuration: operatorConfiguration, logger: quiet)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: liveOperator)], logger: quiet)
        )
        let running = Task { try await group.run() }
        do {
            try create("default", "alice")
            try create("team", "bob")
            try await eventually("both streams with a port and the finalizer", timeout: .seconds(90)) {
                [stream("default", "alice"), stream("team", "bob")].allSatisfy {
                    $0?[path: ["status", "port"]]?.intValue != nil
                        && $0?[path: ["metadata", "finalizers"]]?.arrayValue?.contains(
                            .string(LiveStreamResource.finalizer)
                        ) == true
                }
            }
            let ports = Set(
                [stream("default", "alice"), stream("team", "bob")].compactMap {
                    $0?[path: ["status", "port"]]?.intValue
                }
            )
            try await eventually("both ports on the gateway Service") { gatewayPorts().isSuperset(of: ports) }
            let report = try await teardown.run(mode: .delete, timeout: .seconds(30), pollInterval: .milliseconds(50))
            #expect(
                Set(report.deleted) == [
                    StreamID(namespace: "default", name: "alice"), StreamID(namespace: "team", name: "bob"),
                ]
            )
            #expect(report.released.isEmpty, "the operator released them itself: \(report.released)")
            #expect(stream("default", "alice") == nil && stream("team", "bob") == nil)
            #expect(gatewayPorts().isDisjoint(with: ports), "the operator gave the ports back: \(gatewayPorts())")
            await group.triggerGracefulShutdown()
            try await running.value
        } catch {
            running.cancel()
            _ = try? await running.value
            throw error
        }

        // The operator is gone: a stream that still has its finalizer would hang on delete; the teardown deletes it
        // and, at its deadline, removes the finalizer.
        func createWithFinalizer(_ name: String) throws {
            _ = try server.apply([
                "apiVersion": "liverelay.io/v1alpha1", "kind": "LiveStream",
                "metadata": [
                    "name": .string(name), "namespace": "default",
                    "finalizers": [.string(LiveStreamResource.finalizer)],
                ],
                "spec": ["ingest": ["app": "live"], "targets": []],
            ])
        }
        try createWithFinalizer("carol")
        let orphaned = try await teardown.run(
            mode: .delete,
            timeout: .milliseconds(200),
            pollInterval: .milliseconds(50)
        )
        #expect(orphaned.deleted == [StreamID(namespace: "default", name: "carol")])
        #expect(orphaned.released == [StreamID(namespace: "default", name: "carol")])
        #expect(stream("default", "carol") == nil, "deleted once its finalizer was removed")

        // release: kept, without the finalizer, so a delete later needs no operator.
        try createWithFinalizer("dave")
        let kept = try await teardown.run(mode: .release, timeout: .seconds(30))
        #expect(kept.deleted.isEmpty)
        #expect(kept.released == [StreamID(namespace: "default", name: "dave")])
        let dave = try #require(stream("default", "dave"))
        #expect(dave[path: ["metadata", "finalizers"]]?.arrayValue?.isEmpty ?? true)
        #expect(dave[path: ["metadata", "deletionTimestamp"]] == nil)

        #expect(teardownRBAC.denied.isEmpty, "the teardown was refused: \(teardownRBAC.denied)")
        let unused = teardownRBAC.authorizer.grants.subtracting(teardownRBAC.used)
        #expect(unused.isEmpty, "granted to the teardown but never used: \(unused.sorted())")
        #expect(
            teardownRBAC.authorizer.grants == [
                "liverelay.io/livestreams:list", "liverelay.io/livestreams:delete", "liverelay.io/livestreams:patch",
            ]
        )
    }
}
