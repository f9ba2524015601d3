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
import Foundation
public import Hummingbird
public import KubernetesClient
import LiveStreamModel
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
        /// Where the console reaches a relay's live preview, which it serves to the stream's owner at
        /// `/preview/NAMESPACE/NAME/` on its own origin, the only one its page may frame: `{service}` (the relay's
        /// Service), `{namespace}` and `{name}` (the stream's) are replaced. The relay's HTTP port through its Service
        /// by default, which the relay's NetworkPolicy opens to the cluster.
        public var relayPreviewURL = "http://{service}.{namespace}.svc:8080/preview/{name}/"

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
    private let relayPreviewURL: String

    public init(client: KubernetesClient, configuration: Configuration, logger: Logger) {
        self.relayPreviewURL = configuration.relayPreviewURL
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
    /// - `GET /metrics`: Prometheus text;
    /// - `GET /preview/NAMESPACE/NAME/` and the files of that page: the stream's live preview, for a user who may
    ///   see the stream (401 and 404 as the API), forwarded to its relay (``Configuration/relayPreviewURL``). The
    ///   page frames it from there; a preview on another origin (the Ingress's) its Content-Security-Policy refuses.
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
        self.addPreviewRoutes(to: router)
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "liverelay-console"),
            onServerRunning: { channel in
                await onServerRunning(channel.localAddress?.port ?? port)
            },
            logger: logger
        )
    }

    private func addPreviewRoutes(to router: Router<ConsoleRequestContext>) {
        let server = self.server
        let template = self.relayPreviewURL
        @Sendable func forward(_ id: StreamID, file: String, logger: Logger) async throws -> Response {
            let url =
                template
                .replacingOccurrences(of: "{service}", with: "ls-\(id.name)")
                .replacingOccurrences(of: "{namespace}", with: id.namespace)
                .replacingOccurrences(of: "{name}", with: id.name) + file
            do {
                return try await PreviewForwarding.forward(url, file: file, logger: logger)
            } catch {
                // No relay runs (the stream is idle), or it stopped meanwhile: the page retries.
                throw HTTPError(.badGateway, message: "the relay of \(id) did not answer")
            }
        }
        router.get("preview/:namespace/:name") { request, context -> Response in
            let id = try Self.previewStream(context)
            _ = try await server.visibleStream(id, request: request, context: context)
            guard request.uri.path.hasSuffix("/") else {
                // The page's URLs are relative to its directory.
                var headers = HTTPFields()
                headers[.location] = "\(id.name)/"
                return Response(status: .movedPermanently, headers: headers)
            }
            return try await forward(id, file: "", logger: context.logger)
        }
        router.get("preview/:namespace/:name/:file") { request, context -> Response in
            let id = try Self.previewStream(context)
            _ = try await server.visibleStream(id, request: request, context: context)
            return try await forward(id, file: try context.parameters.require("file"), logger: context.logger)
        }
    }

    private static func previewStream(_ context: ConsoleRequestContext) throws -> StreamID {
        StreamID(namespace: try context.parameters.require("namespace"), name: try context.parameters.require("name"))
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
