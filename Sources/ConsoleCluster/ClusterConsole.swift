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

public import Console
public import Hummingbird
public import KubernetesClient
public import Logging
import NIOCore
public import Prometheus
public import ServiceLifecycle

/// `liverelay console` in a cluster: the Console module's server over the cluster stores, the one watch of
/// LiveStreams that feeds every browser's live view, and the HTTP endpoints a pod needs.
///
/// Run ``services`` in one service group, HTTP first so that it stops last (probes still answer while the rest
/// stops).
public struct ClusterConsole: Sendable {
    public struct Configuration: Sendable {
        /// The one namespace whose streams the console serves, or `nil` for every namespace.
        public var streamNamespace: String?
        /// The Secret of users: its namespace and name.
        public var usersNamespace: String
        public var usersSecret: String
        public var server: ConsoleServer.Configuration

        public init(
            streamNamespace: String? = nil,
            usersNamespace: String,
            usersSecret: String,
            server: ConsoleServer.Configuration = .init()
        ) {
            self.streamNamespace = streamNamespace
            self.usersNamespace = usersNamespace
            self.usersSecret = usersSecret
            self.server = server
        }
    }

    public let streams: KubernetesStreamStore
    public let users: KubernetesUserStore
    public let server: ConsoleServer

    public init(client: KubernetesClient, configuration: Configuration, logger: Logger) {
        self.streams = KubernetesStreamStore(client: client, watchNamespace: configuration.streamNamespace)
        self.users = KubernetesUserStore(
            client: client,
            namespace: configuration.usersNamespace,
            secretName: configuration.usersSecret
        )
        self.server = ConsoleServer(
            configuration: configuration.server,
            users: ClusterConsoleUserStore(store: self.users),
            streams: ClusterConsoleStreamStore(store: self.streams),
            logger: logger
        )
    }

    /// The console's HTTP application: the app and its API (``ConsoleServer/addRoutes(to:)``), and
    /// - `GET /healthz`: 200 while the process serves;
    /// - `GET /readyz`: 200 once the watch of LiveStreams has loaded its first list (503 before, with the reason);
    /// - `GET /metrics`: Prometheus text.
    public func httpApplication(
        registry: PrometheusCollectorRegistry,
        host: String,
        port: Int,
        logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        // The client's address: per-address sign-in throttling, and the trusted proxy's source check.
        let router = Router(context: ConsoleRequestContext.self)
        let streams = self.streams
        router.get("healthz") { _, _ in "ok\n" }
        router.get("readyz") { _, _ -> Response in
            streams.hasSynced
                ? Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ready\n")))
                : Response(
                    status: .serviceUnavailable,
                    body: .init(byteBuffer: ByteBuffer(string: "not ready: LiveStreams not listed yet\n"))
                )
        }
        router.get("metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok,
                headers: headers,
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
        self.server.addRoutes(to: router)
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "liverelay-console"),
            onServerRunning: { channel in
                await onServerRunning(channel.localAddress?.port ?? port)
            },
            logger: logger
        )
    }

    /// The watch, then the server that relays its changes to the browsers.
    public var services: [any Service] {
        [StreamWatch(store: self.streams), self.server]
    }
}

/// The store's one watch of LiveStreams as a service.
private struct StreamWatch: Service {
    let store: KubernetesStreamStore

    func run() async throws {
        try await self.store.run()
    }
}
