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

import Console
import ConsoleCluster
import Foundation
import Hummingbird
import HummingbirdTesting
import KubernetesClient
import KubernetesTestSupport
import LiveStreamModel
import Logging
import NIOCore
import PeerTestSupport
import Prometheus
import Testing

/// The console as `liverelay console` serves it in a cluster: the Console module's server and API over the cluster
/// stores, against the test server (or `LIVERELAY_TEST_KUBECONFIG`), through HummingbirdTesting's router client.
@Suite("Console served in a cluster", .timeLimit(.minutes(2)))
struct ClusterConsoleTests {
    struct Browser {
        var cookie: String
        var csrf: String

        func headers(changing: Bool = true) -> HTTPFields {
            var headers = HTTPFields()
            headers[.cookie] = "liverelay_session=\(self.cookie)"
            headers[.contentType] = "application/json"
            if changing {
                headers[HTTPFields.Element.Name("X-CSRF-Token")!] = self.csrf
            }
            return headers
        }
    }

    static func signIn(_ client: any TestClientProtocol, _ user: String) async throws -> Browser {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let response = try await client.execute(
            uri: "/api/session",
            method: .post,
            headers: headers,
            body: ByteBuffer(string: #"{"username":"\#(user)","password":"\#(user)-password"}"#)
        )
        try #require(response.status == .ok, "sign-in of \(user): \(response.status)")
        let setCookie = try #require(response.headers[.setCookie])
        let token = try #require(setCookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last)
        let body = try #require(
            try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
        )
        return Browser(cookie: String(token), csrf: try #require(body["csrfToken"] as? String))
    }

    @Test("sign in; create with a target key, go live, rename, delete; another user gets 404")
    func journeyThroughTheAPI() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let namespace = cluster.namespace
            let id = StreamID(namespace: namespace, name: "show")
            let owner = ConsoleViewer(username: "test", namespace: namespace)
            let console = ClusterConsole(
                client: cluster.client,
                configuration: .init(
                    streamNamespace: nil,
                    usersNamespace: namespace,
                    usersSecret: "console-users"
                ),
                logger: quietLogger
            )
            // Users as `liverelay console users add --users-secret` makes them: in the Secret, as bcrypt hashes.
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
            let stored = try #require(
                try await secretValue(cluster.client, "console-users", key: "users.json", namespace: namespace)
            )
            #expect(stored.contains("$2b$") && !stored.contains("alice-password"))

            let application = console.httpApplication(
                registry: PrometheusCollectorRegistry(),
                host: "127.0.0.1",
                port: 0,
                logger: quietLogger
            )
            try await application.test(.router) { client in
                // Not ready until the one watch of LiveStreams has listed.
                #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
                #expect(try await client.execute(uri: "/readyz", method: .get).status == .serviceUnavailable)

                let alice = try await Self.signIn(client, "alice")
                let created = try await client.execute(
                    uri: "/api/streams",
                    method: .post,
                    headers: alice.headers(),
                    body: ByteBuffer(
                        string:
                            #"{"name":"show","targets":[{"name":"yt","url":"rtmp://127.0.0.1:1/live","key":"target-key-secret"}]}"#
                    )
                )
                #expect(created.status == .created, "\(String(buffer: created.body))")
                #expect(!String(buffer: created.body).contains("target-key-secret"))

                // Written to the cluster: the LiveStream, offline, and its target's key in a Secret.
                let stream = try #require(try await console.streams.stream(id, for: owner))
                #expect(stream.spec.suspend)
                let reference = try #require(stream.spec.targets.first?.streamKeySecretRef)
                #expect(
                    try await secretValue(cluster.client, reference.name, key: reference.key, namespace: namespace)
                        == "target-key-secret"
                )

                // Bob is refused as if there were nothing there, in every verb.
                let bob = try await Self.signIn(client, "bob")
                let list = try await client.execute(
                    uri: "/api/streams",
                    method: .get,
                    headers: bob.headers(changing: false)
                )
                #expect(list.status == .ok)
                #expect(!String(buffer: list.body).contains("show"))
                for (method, uri) in [
                    (HTTPRequest.Method.get, "/api/streams/\(namespace)/show"),
                    (.delete, "/api/streams/\(namespace)/show"),
                    (.post, "/api/streams/\(namespace)/show/key/reveal"),
                ] {
                    let response = try await client.execute(uri: uri, method: method, headers: bob.headers())
                    #expect(response.status == .notFound, "bob \(method) \(uri): \(response.status)")
                }
                let bobLive = try await client.execute(
                    uri: "/api/streams/\(namespace)/show/live",
                    method: .post,
                    headers: bob.headers(),
                    body: ByteBuffer(string: #"{"live":true}"#)
                )
                #expect(bobLive.status == .notFound)
                #expect(try await console.streams.stream(id, for: owner)?.spec.suspend == true)

                // Go Live sets spec.suspend in the cluster.
                let live = try await client.execute(
                    uri: "/api/streams/\(namespace)/show/live",
                    method: .post,
                    headers: alice.headers(),
                    body: ByteBuffer(string: #"{"live":true}"#)
                )
                #expect(live.status == .ok, "\(String(buffer: live.body))")
                #expect(try await console.streams.stream(id, for: owner)?.spec.suspend == false)

                // A rename makes the stream anew under the new name, with its target's key; the old name is gone.
                let renamed = try await client.execute(
                    uri: "/api/streams/\(namespace)/show",
                    method: .put,
                    headers: alice.headers(),
                    body: ByteBuffer(
                        string: #"{"name":"renamed","targets":[{"name":"yt","url":"rtmp://127.0.0.1:1/live"}]}"#
                    )
                )
                #expect(renamed.status == .ok, "\(String(buffer: renamed.body))")
                let newID = StreamID(namespace: namespace, name: "renamed")
                let moved = try #require(try await console.streams.stream(newID, for: owner))
                let movedKey = try #require(moved.spec.targets.first?.streamKeySecretRef)
                #expect(
                    try await secretValue(cluster.client, movedKey.name, key: movedKey.key, namespace: namespace)
                        == "target-key-secret"
                )
                #expect(try await console.streams.stream(id, for: owner) == nil)

                // Delete removes it from the cluster.
                let deleted = try await client.execute(
                    uri: "/api/streams/\(namespace)/renamed",
                    method: .delete,
                    headers: alice.headers()
                )
                #expect(deleted.status.code < 300, "\(deleted.status)")
                try await eventually("the LiveStream deleted") {
                    try await console.streams.stream(newID, for: owner) == nil
                }
            }
        }
    }

    @Test("/readyz answers 200 once the watch of LiveStreams has listed")
    func readiness() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let console = ClusterConsole(
                client: cluster.client,
                configuration: .init(usersNamespace: cluster.namespace, usersSecret: "console-users"),
                logger: quietLogger
            )
            let application = console.httpApplication(
                registry: PrometheusCollectorRegistry(),
                host: "127.0.0.1",
                port: 0,
                logger: quietLogger
            )
            try await running(console.streams) {
                try await console.streams.waitForSync()
                let statuses = try await application.test(.router) { client -> [HTTPResponse.Status] in
                    [
                        try await client.execute(uri: "/readyz", method: .get).status,
                        try await client.execute(uri: "/metrics", method: .get).status,
                    ]
                }
                #expect(statuses == [.ok, .ok])
            }
        }
    }

    @Test(
        "the preview on the console's origin: the owner's request forwarded to the relay's Service and streamed back; none without a session, 404 to another user"
    )
    func previewThroughTheConsole() async throws {
        // The relay's HTTP port as the console reaches it: answers with the path it was asked for.
        let router = Router()
        router.get("**") { request, _ in "relay answered \(request.uri.path)" }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let relay = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) },
            logger: quietLogger
        )
        let relayTask = Task { try await relay.runService() }
        defer { relayTask.cancel() }
        var iterator = ports.makeAsyncIterator()
        let relayPort = try #require(await iterator.next())

        try await withTestCluster(crds: [.liveStream]) { cluster in
            let namespace = cluster.namespace
            var configuration = ClusterConsole.Configuration(usersNamespace: namespace, usersSecret: "console-users")
            configuration.relayPreviewURL = "http://127.0.0.1:\(relayPort)/{namespace}/{service}/preview/{name}/"
            let console = ClusterConsole(client: cluster.client, configuration: configuration, logger: quietLogger)
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
            let application = console.httpApplication(
                registry: PrometheusCollectorRegistry(),
                host: "127.0.0.1",
                port: 0,
                logger: quietLogger
            )
            try await application.test(.router) { client in
                let alice = try await Self.signIn(client, "alice")
                let created = try await client.execute(
                    uri: "/api/streams",
                    method: .post,
                    headers: alice.headers(),
                    body: ByteBuffer(
                        string: #"{"name":"show","targets":[{"name":"yt","url":"rtmp://127.0.0.1:1/live"}]}"#
                    )
                )
                #expect(created.status == .created, "\(String(buffer: created.body))")
                let page = "/preview/\(namespace)/show/"

                #expect(try await client.execute(uri: page, method: .get).status == .unauthorized)
                let bob = try await Self.signIn(client, "bob")
                let refused = try await client.execute(uri: page, method: .get, headers: bob.headers(changing: false))
                #expect(refused.status == .notFound)
                #expect(!String(buffer: refused.body).contains("relay answered"))

                let shown = try await client.execute(uri: page, method: .get, headers: alice.headers(changing: false))
                #expect(shown.status == .ok)
                #expect(String(buffer: shown.body) == "relay answered /\(namespace)/ls-show/preview/show/")
                let file = try await client.execute(
                    uri: page + "status",
                    method: .get,
                    headers: alice.headers(changing: false)
                )
                #expect(String(buffer: file.body) == "relay answered /\(namespace)/ls-show/preview/show/status")
                // The page's URLs are relative to its directory.
                let bare = try await client.execute(
                    uri: "/preview/\(namespace)/show",
                    method: .get,
                    headers: alice.headers(changing: false)
                )
                #expect(bare.status == .movedPermanently)
                #expect(bare.headers[.location] == "show/")
            }
        }
    }
}
