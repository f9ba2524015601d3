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

import AsyncHTTPClient
import Console
import ConsoleCluster
import Foundation
import KubernetesClient
import KubernetesTestSupport
import LiveStreamModel
import Logging
import NIOHTTP1
import PeerTestSupport
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

/// The browser journey's editing, live view and ownership steps against the console as `liverelay console` serves it
/// in a cluster (the in-process Kubernetes API test server, or `LIVERELAY_TEST_KUBECONFIG`). No relay runs there:
/// the operator's part, the status, is written by the test as the operator would.
@Suite("Console in a real browser against a cluster", .timeLimit(.minutes(4)))
struct ClusterBrowserTests {
    @Test(
        "Sign in, create with two targets, go live, see the status live, switch a target, go offline, sign out",
        arguments: WebBrowser.allCases
    )
    func journey(in browser: WebBrowser) async throws {
        try browser.require()
        var logger = Logger(label: "console-cluster-browser")
        logger.logLevel = .error
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let namespace = cluster.namespace
            let console = ClusterConsole(
                client: cluster.client,
                configuration: .init(usersNamespace: namespace, usersSecret: "console-users"),
                logger: logger
            )
            let users = ClusterConsoleUserStore(store: console.users)
            for (name, userNamespace) in [("alice", namespace), ("bob", "\(namespace)-bob")] {
                try await users.add(
                    ConsoleUser(
                        name: name,
                        passwordHash: ConsoleUser.hash(password: "\(name)-password", cost: 4),
                        admin: false,
                        namespace: userNamespace
                    )
                )
            }
            let port = Mutex<Int?>(nil)
            let application = console.httpApplication(
                registry: PrometheusCollectorRegistry(),
                host: "127.0.0.1",
                port: 0,
                logger: logger,
                onServerRunning: { bound in port.withLock { $0 = bound } }
            )
            let services: [ServiceGroupConfiguration.ServiceConfiguration] =
                [.init(service: application)] + console.services.map { .init(service: $0) }
            let group = ServiceGroup(configuration: .init(services: services, logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                do {
                    let bound = try await eventually("the console listening") { port.withLock { $0 } }
                    try await console.streams.waitForSync()
                    let url = "http://127.0.0.1:\(bound)/"
                    try await browser.withPage(url, screenshotName: "console-cluster-failure") { page in
                        try await Self.journey(page, cluster: cluster, url: url)
                    }
                } catch {
                    await group.triggerGracefulShutdown()
                    try? await tasks.waitForAll()
                    throw error
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }

    static func journey(_ page: any BrowserPage, cluster: TestCluster, url: String) async throws {
        typealias B = ConsoleBrowserTests
        let namespace = cluster.namespace
        let card = "[data-stream=\"\(namespace)/show\"]"
        try await B.signIn(page, "alice", "alice-password")

        try await B.click(page, "#new-stream")
        try await B.waitFor(page, "the editor", "document.querySelector('#editor').open")
        try await B.type(page, "#edit-name", "show")
        for (name, key) in [("one", "key-one"), ("two", "key-two")] {
            try await B.click(page, "#add-target")
            let row = "#edit-targets li:last-child"
            try await B.type(page, "\(row) .t-name", name)
            try await B.type(page, "\(row) .t-url", "rtmp://127.0.0.1:1935/\(name)")
            try await B.type(page, "\(row) .t-key", key)
        }
        try await page.run("document.querySelector('#edit-form').requestSubmit()")
        try await B.waitFor(page, "the new stream's card", "!!document.querySelector('\(card)')")

        func stream() async throws -> KubernetesObject {
            try await cluster.client.get(
                KubernetesObject.self,
                KubernetesStreamStore.liveStreams,
                name: "show",
                namespace: namespace
            )
        }
        // Go Live writes spec.suspend: false.
        let suspendedBefore = try await stream()["spec"]?["suspend"]
        try await B.click(page, "\(card) .s-live")
        try await eventually("spec.suspend false") {
            try await stream()["spec"]?["suspend"] == .bool(false)
        }
        #expect(suspendedBefore == .bool(true))

        // The operator reports the stream live and its targets: the page shows it without a reload (the watch).
        _ = try await cluster.client.patchStatus(
            KubernetesObject.self,
            KubernetesStreamStore.liveStreams,
            name: "show",
            namespace: namespace,
            mergePatch: [
                "status": [
                    "phase": "Live",
                    "targets": [
                        ["name": "one", "state": "Pushing"],
                        ["name": "two", "state": "BackingOff", "lastError": "cannot connect: Connection refused"],
                    ],
                ]
            ]
        )
        try await B.waitFor(page, "Live in the page", "document.querySelector('\(card) .phase').textContent === 'Live'")
        try await B.waitFor(
            page,
            "target two backing off with the reason",
            "document.querySelector('\(card) li[data-target=\"two\"] .t-state').textContent.includes('Connection refused')"
        )

        // A target's switch writes only that target.
        try await B.click(page, "\(card) li[data-target=\"one\"] .t-switch")
        try await eventually("target one off in the spec") {
            guard case .array(let targets)? = try await stream()["spec"]?["targets"], targets.count == 2 else {
                return false
            }
            return targets[0]["enabled"] == .bool(false) && targets[1]["enabled"] != .bool(false)
        }

        // Go Offline.
        try await B.click(page, "\(card) .s-live")
        try await eventually("spec.suspend true") {
            try await stream()["spec"]?["suspend"] == .bool(true)
        }

        // Sign out ends the session; bob sees and changes nothing of alice's.
        let alice = try #require(try await B.sessionCookie(page))
        try await B.click(page, "#sign-out")
        try await B.waitFor(page, "the sign-in form again", "!document.querySelector('#sign-in-view').hidden")
        #expect(try await consoleRequest(url + "api/streams", cookie: alice).status == 401)
        try await B.signIn(page, "bob", "bob-password")
        try await B.waitFor(page, "bob's empty list", "!document.querySelector('#no-streams').hidden")
        let bob = try #require(try await B.sessionCookie(page))
        let csrf = try await page.evaluate(
            "fetch('/api/session').then(r => r.json()).then(s => s.csrfToken)",
            as: String.self
        )
        let path = url + "api/streams/\(namespace)/show"
        #expect(try await consoleRequest(path, cookie: bob).status == 404)
        #expect(try await consoleRequest(path, method: .DELETE, cookie: bob, csrf: csrf).status == 404)
        #expect(
            try await consoleRequest(path + "/live", method: .POST, cookie: bob, csrf: csrf, body: #"{"live":true}"#)
                .status == 404
        )
        #expect(try await stream()["spec"]?["suspend"] == .bool(true))
    }
}
