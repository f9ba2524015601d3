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

import BrowserTestSupport
import Console
import ConsoleCluster
import Foundation
import Gateway
import KubernetesClient
import KubernetesController
import KubernetesTestSupport
import LiveStreamModel
import Logging
import NIOCore
import Operator
import PeerTestSupport
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing
import TimeSupport

/// The browser journey against the console as `liverelay console` serves it in a cluster (the in-process Kubernetes
/// API test server), with everything else of a cluster running too: the operator and the gateway in this process,
/// and the relays the operator's Deployments ask for as processes of this machine (``RelayKubelet``). A real
/// encoder (ffmpeg) publishes through the gateway, which wakes the relay from zero; two nginx-rtmp applications
/// receive; Chromium and Firefox play the preview in the page.
@Suite("Console in a real browser against a cluster", .timeLimit(.minutes(10)))
struct ClusterBrowserTests {
    @Test(
        "Sign in, create with two targets, go live, publish, preview, switch a target, go offline, sign out",
        arguments: WebBrowser.allCases
    )
    func journey(in browser: WebBrowser) async throws {
        try browser.require()
        var logger = Logger(label: "console-cluster-browser")
        logger.logLevel = .error
        try await withNginxRTMP(applications: ["one", "two"]) { nginx in
            // KEDA's CRD served, as in a cluster with KEDA: the relay starts at zero replicas, and the gateway's
            // activator wakes it (no KEDA controller runs here, so nothing else scales it).
            try await withTestCluster(crds: [.liveStream], keda: true) { cluster in
                guard !cluster.isReal else {
                    cluster.notExercised("relays run as processes of this machine, not as the cluster's pods")
                    return
                }
                try await createGatewayService(cluster, type: "ClusterIP")
                try await RelayKubelet.with(
                    client: cluster.client,
                    namespace: cluster.namespace,
                    executable: try liverelayExecutable(),
                    labelSelector: RelayChildren.childLabelSelector
                ) { kubelet in
                    try await Self.withCluster(cluster, kubelet: kubelet, logger: logger) { url in
                        try await browser.withPage(url, screenshotName: "console-cluster-failure") { page in
                            try await Self.journey(page, cluster: cluster, kubelet: kubelet, nginx: nginx, url: url)
                        }
                    }
                }
            }
        }
    }

    /// Runs the operator, the gateway (its routes from the cluster, its activator) and the console, with users
    /// alice (streams in the cluster's namespace) and bob (another), while `body` runs with the console's URL.
    static func withCluster(
        _ cluster: TestCluster,
        kubelet: RelayKubelet,
        logger: Logger,
        _ body: (String) async throws -> Void
    ) async throws {
        let namespace = cluster.namespace
        let base = try freeTCPPort()
        var configuration = OperatorConfiguration(
            namespace: namespace,
            portRange: try PortRange(base < 65000 ? base...(base + 20) : (base - 20)...base),
            relayImage: "registry.example.com/liverelay:test",
            gatewayServiceName: "liverelay-gateway",
            gatewayNamespace: namespace,
            ingestHost: "127.0.0.1"
        )
        configuration.controller = ControllerConfiguration(
            workers: 2,
            resyncPeriod: nil,
            queue: WorkQueueConfiguration(),
            listWatch: ListWatchOptions(
                watchTimeoutSeconds: 60,
                backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(400))
            )
        )
        // The relay's Service, reached as kube-proxy would (the stand-in's HTTP front).
        configuration.relayStatusURL = "\(kubelet.httpFrontURL)/{namespace}/{service}/api/v1/stream"
        let operatorInstance = LiveStreamOperator(client: cluster.client, configuration: configuration, logger: logger)

        let routes = GatewayRoutes()
        let routeSource = KubernetesGatewayRouteSource(
            client: cluster.client,
            namespace: namespace,
            routes: routes,
            logger: logger
        )
        var gatewayConfiguration = GatewayConfiguration(host: "127.0.0.1", shutdownGrace: .seconds(2))
        gatewayConfiguration.upstreamAddress = { host, port in
            kubelet.resolve(host: host, port: port).flatMap { try? SocketAddress(ipAddress: $0.host, port: $0.port) }
        }
        let gateway = try Gateway(
            configuration: gatewayConfiguration,
            routes: routes,
            activator: KubernetesScaleActivator(client: cluster.client, logger: logger),
            logger: logger
        )

        var consoleConfiguration = ClusterConsole.Configuration(usersNamespace: namespace, usersSecret: "console-users")
        consoleConfiguration.relayPreviewURL = "\(kubelet.httpFrontURL)/{namespace}/{service}/preview/{name}/"
        let console = ClusterConsole(client: cluster.client, configuration: consoleConfiguration, logger: logger)
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
            + [.init(service: operatorInstance), .init(service: routeSource), .init(service: gateway)]
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                let bound = try await eventually("the console listening") { port.withLock { $0 } }
                try await console.streams.waitForSync()
                try await body("http://127.0.0.1:\(bound)/")
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    static func journey(
        _ page: any BrowserPage,
        cluster: TestCluster,
        kubelet: RelayKubelet,
        nginx: NginxRTMP,
        url: String
    ) async throws {
        typealias B = BrowserSteps
        let namespace = cluster.namespace
        let card = "[data-stream=\"\(namespace)/show\"]"
        let relay = RelayChildren.childName("show")
        func stream() async throws -> KubernetesObject {
            try await cluster.client.get(
                KubernetesObject.self,
                KubernetesStreamStore.liveStreams,
                name: "show",
                namespace: namespace
            )
        }
        try await B.signIn(page, "alice", "alice-password")
        try await B.createStream(
            page,
            card: card,
            name: "show",
            targets: [("one", nginx.url(app: "one"), "key-one"), ("two", nginx.url(app: "two"), "key-two")]
        )
        // The operator's word: made offline, as the console makes every stream.
        try await B.waitForPhase(page, card: card, "Suspended")
        #expect(try await stream()["spec"]?["suspend"] == .bool(true))

        // Go Live: the relay stays at zero replicas until a publisher comes.
        try await B.click(page, "\(card) .s-live")
        try await B.waitForPhase(page, card: card, "Idle")
        #expect(try await stream()["spec"]?["suspend"] == .bool(false))
        #expect(kubelet.starts(of: relay) == 0)
        let (ingest, key) = try await B.revealKey(page, card: card)

        try await FFmpeg.withPublisher(to: "\(ingest)/\(key)", duration: 300, size: "640x360") { ffmpeg in
            // The gateway holds the publisher and its activator scales the relay to one; once the relay is ready
            // the gateway splices, the relay pushes, and the operator reads it live.
            try await B.expectLive(page, card: card, nginx: nginx)
            #expect(kubelet.starts(of: relay) == 1)
            try await B.expectPreviewPlaying(page, card: card)
            // The switch edits the LiveStream; the operator's ConfigMap reaches the running relay, which reloads.
            try await B.switchTargetOneOff(page, card: card, nginx: nginx)
            #expect(ffmpeg.hasExited == false)
            #expect(kubelet.starts(of: relay) == 1, "the relay ran on, without a restart")

            // Go Offline: the gateway ends the publish with the reason.
            try await B.click(page, "\(card) .s-live")
            try await B.waitForPhase(page, card: card, "Suspended")
            let ended = await ffmpeg.waitForExit(timeout: .seconds(30))
            #expect(
                ended?.standardError.contains("The stream was taken offline: it is suspended.") == true,
                "\(ended.map { "\($0)" } ?? "ffmpeg still publishing")"
            )
        }
        try await B.expectPublishRefusedOffline(to: "\(ingest)/\(key)")

        // Sign out ends the session, the preview's too; bob sees and changes nothing of alice's.
        let alice = try #require(try await B.sessionCookie(page))
        try await B.signOut(page, consoleURL: url)
        #expect(try await consoleRequest(url + "preview/\(namespace)/show/", cookie: alice).status == 401)
        try await B.expectHidden(
            page,
            card: card,
            streamURL: url + "api/streams/\(namespace)/show",
            from: "bob",
            password: "bob-password"
        )
        let bob = try #require(try await B.sessionCookie(page))
        #expect(try await consoleRequest(url + "preview/\(namespace)/show/", cookie: bob).status == 404)
        #expect(try await stream()["spec"]?["suspend"] == .bool(true))
    }
}
