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

import ConsoleCluster
import Foundation
import KubernetesClient
import KubernetesController
import KubernetesTestServer
import KubernetesTestSupport
import LiveStreamModel
import Logging
import PeerTestSupport
import ServiceLifecycle
import Testing
import TimeSupport

@Suite(
    "Chart RBAC of the console is least privilege",
    .enabled(
        if: peerAvailable(chartToolsAvailable),
        "python3 with helm-python and kubernetes-validate is not installed"
    ),
    .timeLimit(.minutes(3))
)
struct ConsoleRBACTests {
    /// The console's stores run with exactly the permissions the chart gives its ServiceAccount, through every
    /// operation the console offers. Every request must be allowed, and every permission granted used.
    @Test(
        "the console needs every permission the chart grants, and no other (key Secrets everywhere, in the users' namespaces, in one stream namespace)",
        arguments: [
            ["console.enabled=true"], ["console.enabled=true", "console.userNamespaces={default,other}"],
            ["console.enabled=true", "streamNamespace=default"],
        ]
    )
    func leastPrivilege(sets: [String]) async throws {
        try await withRenderedChart(sets, crds: false, lint: false) { chart in
            try await withTestServer { server, admin in
                try server.installCRD(yaml: String(contentsOfFile: Paths.crd, encoding: .utf8))
                for namespace in ["liverelay-system", "other"] {
                    _ = try server.apply([
                        "apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(namespace)],
                    ])
                }
                for object in chart.objects { _ = try server.apply(object) }
                try await Self.exercise(chart: chart, admin: admin)
            }
        }
    }

    static func exercise(chart: RenderedChart, admin: KubernetesClient) async throws {
        let rbac = RBACMiddleware(
            authorizer: Authorizer(chart: chart, serviceAccount: "liverelay-console", namespace: "liverelay-system"),
            serviceAccount: "liverelay-console"
        )
        let quiet = Logger(label: "rbac-test", factory: { _ in SwiftLogNoOpLogHandler() })
        let client = KubernetesClient(
            transport: ForwardingTransport(client: admin),
            namespace: "liverelay-system",
            middlewares: [rbac],
            logger: quiet
        )
        // The flags the chart runs `liverelay console` with.
        let usersSecret = try #require(chart.flag("liverelay-console", "--users-secret")).split(separator: "/")
        let watchNamespace = chart.flag("liverelay-console", "--namespace")

        let users = KubernetesUserStore(
            client: client,
            namespace: String(usersSecret[0]),
            secretName: String(usersSecret[1]),
            logger: quiet
        )
        let hash = "$2b$12$" + String(repeating: "h", count: 53)
        try await users.add(ConsoleUserRecord(name: "alice", passwordHash: hash, namespace: "default"))
        try await users.setPasswordHash("$2b$12$" + String(repeating: "i", count: 53), for: "alice")
        #expect(try await users.user(named: "alice")?.namespace == "default")

        let store = KubernetesStreamStore(
            client: client,
            watchNamespace: watchNamespace,
            listWatch: ListWatchOptions(
                watchTimeoutSeconds: 60,
                backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(400))
            ),
            logger: quiet
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: store)], logger: quiet)
        )
        let running = Task { try await group.run() }
        do {
            try await store.waitForSync()
            let alice = ConsoleViewer(username: "alice", namespace: "default")
            let root = ConsoleViewer(username: "root", namespace: "ops", isAdmin: true)
            var draft = StreamDraft(
                name: "show",
                spec: LiveStreamSpec(targets: [.init(name: "yt", url: "rtmp://a.rtmp.youtube.com/live2")]),
                targetKeys: ["yt": .set("first-key")]
            )
            let created = try await store.create(draft, for: alice)
            draft.targetKeys = ["yt": .set("second-key")]
            _ = try #require(try await store.update(created.id, with: draft, for: alice))
            _ = try #require(try await store.setLive(created.id, live: true, for: alice))
            _ = try #require(try await store.setTargetEnabled(created.id, target: "yt", enabled: false, for: alice))
            #expect(try await store.rotateStreamKey(created.id, for: alice))  // creates the key Secret
            #expect(try await store.rotateStreamKey(created.id, for: alice))  // writes a new key into it
            #expect(try await store.revealStreamKey(created.id, for: alice)?.count == 64)
            let renamed = try #require(try await store.rename(created.id, to: "tv", for: alice))
            #expect(try await store.streams(for: root).map(\.id) == [renamed.id])
            #expect(try await store.delete(renamed.id, for: alice))
            await group.triggerGracefulShutdown()
            try await running.value
        } catch {
            running.cancel()
            _ = try? await running.value
            throw error
        }

        #expect(rbac.denied.isEmpty, "the console was refused: \(rbac.denied)")
        let unused = rbac.authorizer.grants.subtracting(rbac.used)
        #expect(unused.isEmpty, "granted to the console but never used: \(unused.sorted())")
    }
}
