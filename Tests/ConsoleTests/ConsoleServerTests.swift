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
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import LiveStreamModel
import LocalRuntime
import Logging
import NIOCore
import Synchronization
import Testing

/// A clock the test moves.
final class TestNow: Sendable {
    private let now = Mutex(ContinuousClock.now)
    var instant: ContinuousClock.Instant { self.now.withLock { $0 } }
    func advance(_ duration: Duration) { self.now.withLock { $0 += duration } }
}

/// Captures log records, to check what is logged (and what never is).
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { self.lines.withLock { $0 } }
    func append(_ line: String) { self.lines.withLock { $0.append(line) } }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
            self.capture.append("\(event.level) \(event.message) \(merged)")
        }
    }
}

/// The console's server on a real local store (a streams file in a temporary directory, local mode's runtime not
/// running), through HummingbirdTesting's router client.
struct ConsoleFixture: Sendable {
    let runtime: LocalRuntime
    let directory: String
    let streamsFile: String
    let users: LocalUserStore
    let server: ConsoleServer
    let now: TestNow
    let logs: LogCapture

    static let initialFile = """
        # Alice's streams, kept by hand
        apiVersion: liverelay.io/v1alpha1
        kind: LiveStream
        metadata: { name: show, namespace: alice }
        spec:
          ingest: { streamKeySecretRef: { name: show-ingest, key: streamKey } }
          targets:
            - { name: one, url: "rtmp://127.0.0.1:1/one" }
        ---
        apiVersion: v1
        kind: Secret
        metadata: { name: show-ingest, namespace: alice }
        stringData: { streamKey: alice-secret-ingest-key }
        ---
        apiVersion: liverelay.io/v1alpha1
        kind: LiveStream
        metadata: { name: other, namespace: bob }
        spec: {}

        """

    static func with(
        goLiveBase: String? = nil,
        _ body: @escaping @Sendable (ConsoleFixture, any TestClientProtocol) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("liverelay-console-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let streamsFile = directory + "/streams.yaml"
        try Self.initialFile.write(toFile: streamsFile, atomically: true, encoding: .utf8)
        let runtime = try LocalRuntime(
            configuration: LocalConfiguration(
                streamsFile: streamsFile,
                gateway: GatewayConfiguration(host: "127.0.0.1"),
                relayExecutable: "/bin/false",
                stateDirectory: directory + "/state"
            ),
            logger: Logger(label: "test")
        )
        let users = LocalUserStore(stateDirectory: directory + "/state")
        for (name, admin) in [("alice", false), ("bob", false), ("root", true)] {
            try await users.add(
                ConsoleUser(
                    name: name,
                    passwordHash: ConsoleUser.hash(password: "\(name)-password", cost: 4),
                    admin: admin,
                    namespace: name
                )
            )
        }
        let logs = LogCapture()
        let now = TestNow()
        let server = ConsoleServer(
            configuration: .init(
                sessionIdleTimeout: .seconds(600),
                sessionAbsoluteTimeout: .seconds(3600),
                goLiveBase: goLiveBase
            ),
            users: users,
            streams: LocalConsoleStreamStore(runtime: runtime),
            logger: Logger(label: "console") { _ in LogCapture.Handler(capture: logs) },
            now: { now.instant }
        )
        let router = Router()
        server.addRoutes(to: router)
        let fixture = ConsoleFixture(
            runtime: runtime,
            directory: directory,
            streamsFile: streamsFile,
            users: users,
            server: server,
            now: now,
            logs: logs
        )
        try await Application(router: router).test(.router) { client in
            try await body(fixture, client)
        }
    }

    var file: String { (try? String(contentsOfFile: self.streamsFile, encoding: .utf8)) ?? "" }
}

/// A signed-in browser: its cookie and CSRF token.
struct Browser: Sendable {
    var cookie: String
    var csrf: String

    func headers(changing: Bool = true, json: Bool = true) -> HTTPFields {
        var headers = HTTPFields()
        headers[.cookie] = "liverelay_session=\(self.cookie)"
        if changing {
            headers[ConsoleTestHeaders.csrf] = self.csrf
        }
        if json {
            headers[.contentType] = "application/json"
        }
        return headers
    }
}

enum ConsoleTestHeaders {
    static let csrf = HTTPFields.Element.Name("X-CSRF-Token")!
}

func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

func object(_ response: TestResponse) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
}

func signIn(_ client: any TestClientProtocol, _ user: String, password: String? = nil) async throws -> Browser {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    let response = try await client.execute(
        uri: "/api/session",
        method: .post,
        headers: headers,
        body: json(#"{"username":"\#(user)","password":"\#(password ?? "\(user)-password")"}"#)
    )
    try #require(response.status == .ok, "sign-in of \(user): \(response.status)")
    let setCookie = try #require(response.headers[.setCookie])
    let token = try #require(setCookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last)
    let csrf = try #require(try object(response)["csrfToken"] as? String)
    return Browser(cookie: String(token), csrf: csrf)
}

@Suite("Console server: sessions, CSRF, ownership, validation")
struct ConsoleServerTests {
    @Test("Sign-in sets an HttpOnly, SameSite=Strict session cookie that expires; sign-out ends it on the server")
    func sessionLifecycle() async throws {
        try await ConsoleFixture.with { fixture, client in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            let response = try await client.execute(
                uri: "/api/session",
                method: .post,
                headers: headers,
                body: json(#"{"username":"alice","password":"alice-password"}"#)
            )
            #expect(response.status == .ok)
            let cookie = try #require(response.headers[.setCookie])
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("SameSite=Strict"))
            #expect(cookie.contains("Max-Age=3600"))
            #expect(!cookie.contains("Secure"))
            let browser = try await signIn(client, "alice")
            let session = try await client.execute(
                uri: "/api/session",
                method: .get,
                headers: browser.headers(changing: false, json: false)
            )
            #expect(session.status == .ok)
            #expect(try object(session)["user"] as? String == "alice")

            // Sign-out needs the CSRF token, then the session is gone.
            let noToken = try await client.execute(
                uri: "/api/session",
                method: .delete,
                headers: browser.headers(changing: false)
            )
            #expect(noToken.status == .forbidden)
            let out = try await client.execute(uri: "/api/session", method: .delete, headers: browser.headers())
            #expect(out.status == .noContent)
            let after = try await client.execute(
                uri: "/api/streams",
                method: .get,
                headers: browser.headers(changing: false, json: false)
            )
            #expect(after.status == .unauthorized)

            // Idle sessions expire on the server's clock.
            let idle = try await signIn(client, "alice")
            fixture.now.advance(.seconds(601))
            let expired = try await client.execute(
                uri: "/api/session",
                method: .get,
                headers: idle.headers(changing: false, json: false)
            )
            #expect(expired.status == .unauthorized)

            // A new password ends the sessions signed in with the old one.
            let before = try await signIn(client, "alice")
            try await fixture.users.setPassword(name: "alice", password: "changed", cost: 4)
            let stale = try await client.execute(
                uri: "/api/session",
                method: .get,
                headers: before.headers(changing: false, json: false)
            )
            #expect(stale.status == .unauthorized)
        }
    }

    @Test("Repeated failed sign-ins are slowed down per user and logged without the password")
    func throttledSignIn() async throws {
        try await ConsoleFixture.with { fixture, client in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<5 {
                let response = try await client.execute(
                    uri: "/api/session",
                    method: .post,
                    headers: headers,
                    body: json(#"{"username":"alice","password":"guess-hunter2"}"#)
                )
                statuses.append(response.status)
            }
            #expect(statuses == [.unauthorized, .unauthorized, .unauthorized, .unauthorized, .tooManyRequests])
            // Even the right password waits while the delay runs.
            let early = try await client.execute(
                uri: "/api/session",
                method: .post,
                headers: headers,
                body: json(#"{"username":"alice","password":"alice-password"}"#)
            )
            #expect(early.status == .tooManyRequests)
            #expect(early.headers[.retryAfter] != nil)
            fixture.now.advance(.seconds(5))
            _ = try await signIn(client, "alice")
            let logs = fixture.logs.all
            #expect(logs.contains { $0.contains("sign-in failed") && $0.contains("alice") })
            #expect(!logs.contains { $0.contains("guess-hunter2") || $0.contains("alice-password") })
        }
    }

    @Test("A state-changing request without the session's CSRF token changes nothing")
    func csrfRequired() async throws {
        try await ConsoleFixture.with { fixture, client in
            let alice = try await signIn(client, "alice")
            let before = fixture.file
            var forged = alice.headers(changing: false)
            forged[ConsoleTestHeaders.csrf] = String(repeating: "0", count: 64)
            for headers in [alice.headers(changing: false), forged] {
                let response = try await client.execute(
                    uri: "/api/streams/alice/show/live",
                    method: .post,
                    headers: headers,
                    body: json(#"{"live":false}"#)
                )
                #expect(response.status == .forbidden)
            }
            #expect(fixture.file == before)
        }
    }

    @Test(
        "Each stream links its go-live page where the console knows the gateway's base, and only there",
        arguments: [
            (nil, nil), ("", "/go-live/alice/show"),
            ("https://gw.example.org/", "https://gw.example.org/go-live/alice/show"),
        ] as [(String?, String?)]
    )
    func goLiveLink(base: String?, expected: String?) async throws {
        try await ConsoleFixture.with(goLiveBase: base) { _, client in
            let alice = try await signIn(client, "alice")
            let stream = try object(
                try await client.execute(
                    uri: "/api/streams/alice/show",
                    method: .get,
                    headers: alice.headers(changing: false, json: false)
                )
            )
            #expect(stream["goLiveURL"] as? String == expected)
        }
    }

    @Test("Another user's stream is 404 everywhere, as a missing one; an admin sees all, reveals no key")
    func ownership() async throws {
        try await ConsoleFixture.with { fixture, client in
            let bob = try await signIn(client, "bob")
            let list = try await client.execute(
                uri: "/api/streams",
                method: .get,
                headers: bob.headers(changing: false, json: false)
            )
            let names = try #require(
                try JSONSerialization.jsonObject(with: Data(list.body.readableBytesView)) as? [[String: Any]]
            ).compactMap { $0["name"] as? String }
            #expect(names == ["other"])
            let before = fixture.file
            let attempts: [(String, HTTPRequest.Method, String?)] = [
                ("/api/streams/alice/show", .get, nil),
                ("/api/streams/alice/show", .put, #"{"name":"show","targets":[]}"#),
                ("/api/streams/alice/show", .delete, nil),
                ("/api/streams/alice/show/live", .post, #"{"live":true}"#),
                ("/api/streams/alice/show/key", .post, "{}"),
                ("/api/streams/alice/show/key/reveal", .post, "{}"),
                ("/api/streams/alice/show/targets/one/enabled", .put, #"{"enabled":false}"#),
                ("/api/streams/alice/nothing", .get, nil),
            ]
            for (uri, method, body) in attempts {
                let response = try await client.execute(
                    uri: uri,
                    method: method,
                    headers: bob.headers(),
                    body: body.map(json)
                )
                #expect(response.status == .notFound, "\(method) \(uri)")
                #expect(!String(buffer: response.body).contains("alice-secret-ingest-key"))
            }
            #expect(fixture.file == before)

            let root = try await signIn(client, "root")
            let all = try await client.execute(
                uri: "/api/streams",
                method: .get,
                headers: root.headers(changing: false, json: false)
            )
            #expect(String(buffer: all.body).contains(#""name":"show""#))
            #expect(String(buffer: all.body).contains(#""name":"other""#))
            // An admin sees every stream but reveals no one else's key; the owner does.
            let refused = try await client.execute(
                uri: "/api/streams/alice/show/key/reveal",
                method: .post,
                headers: root.headers(),
                body: json("{}")
            )
            #expect(refused.status == .forbidden)
            #expect(String(buffer: refused.body).contains("only the owner"))
            #expect(!String(buffer: refused.body).contains("alice-secret-ingest-key"))
            let alice = try await signIn(client, "alice")
            let revealed = try await client.execute(
                uri: "/api/streams/alice/show/key/reveal",
                method: .post,
                headers: alice.headers(),
                body: json("{}")
            )
            #expect(revealed.status == .ok)
            #expect(String(buffer: revealed.body).contains("alice-secret-ingest-key"))
        }
    }

    @Test("Bad input is a clear 4xx that changes nothing: size, type, unknown field, invalid spec per field")
    func badInput() async throws {
        try await ConsoleFixture.with { fixture, client in
            let alice = try await signIn(client, "alice")
            let before = fixture.file
            func post(_ body: String, headers: HTTPFields? = nil) async throws -> TestResponse {
                try await client.execute(
                    uri: "/api/streams",
                    method: .post,
                    headers: headers ?? alice.headers(),
                    body: json(body)
                )
            }
            let big = try await post(
                #"{"name":"x","targets":[],"app":""# + String(repeating: "a", count: 70_000) + "\"}"
            )
            #expect(big.status == .contentTooLarge)
            let wrongType = try await post(#"{"name":42,"targets":[]}"#)
            #expect(wrongType.status == .badRequest)
            #expect(try object(wrongType)["error"] as? String == "name: expected a string")
            let unknown = try await post(#"{"name":"x","targets":[],"owner":"bob"}"#)
            #expect(unknown.status == .badRequest)
            #expect((try object(unknown)["error"] as? String)?.contains("owner") == true)
            let nested = try await post(#"{"name":"x","targets":[{"name":"a","url":"rtmp://h/a","colour":1}]}"#)
            #expect(nested.status == .badRequest)
            var text = alice.headers()
            text[.contentType] = "text/plain"
            #expect(try await post(#"{"name":"x","targets":[]}"#, headers: text).status == .unsupportedMediaType)
            let invalid = try await post(
                #"{"name":"Bad_Name","targets":[{"name":"yt","url":"http://example.com/live","key":"k"}]}"#
            )
            #expect(invalid.status == .unprocessableContent)
            let fields = try #require(try object(invalid)["fields"] as? [[String: String]])
            #expect(fields.map { $0["field"] } == ["metadata.name", "spec.targets[0].url"])
            #expect(fields.last?["message"] == "must be a URL starting with rtmp:// or rtmps://")
            let rule = try await post(#"{"name":"x","maxKeyframeIntervalSeconds":0,"targets":[]}"#)
            #expect(rule.status == .unprocessableContent)
            #expect(
                (try object(rule)["fields"] as? [[String: String]])?.first?["field"]
                    == "spec.rules.maxKeyframeIntervalSeconds"
            )
            #expect(fixture.file == before)
        }
    }

    @Test("Create, edit, switch, go live and delete write the streams file; keys never come back but by reveal")
    func editing() async throws {
        try await ConsoleFixture.with { fixture, client in
            let alice = try await signIn(client, "alice")
            let created = try await client.execute(
                uri: "/api/streams",
                method: .post,
                headers: alice.headers(),
                body: json(
                    #"{"name":"second","targets":[{"name":"yt","url":"rtmp://127.0.0.1:1/live","key":"target-key-secret"}]}"#
                )
            )
            #expect(created.status == .created)
            #expect(!String(buffer: created.body).contains("target-key-secret"))
            #expect(try object(created)["suspended"] as? Bool == true)
            let withRule = try await client.execute(
                uri: "/api/streams/alice/show",
                method: .put,
                headers: alice.headers(),
                body: json(
                    #"{"name":"show","maxKeyframeIntervalSeconds":2,"targets":[{"name":"one","url":"rtmp://127.0.0.1:1/one"}]}"#
                )
            )
            #expect(try object(withRule)["maxKeyframeIntervalSeconds"] as? Double == 2)
            var file = try StreamFile.parse(yaml: fixture.file, source: "test")
            #expect(file.secret("second-yt-key", namespace: "alice")?.value("key") == "target-key-secret")
            // The other documents, and the comment, are kept.
            #expect(fixture.file.hasPrefix("# Alice's streams, kept by hand\n"))
            #expect(file.liveStreams.map(\.id.name) == ["show", "other", "second"])

            // One stream live at a time: going live with "show" takes "second" offline.
            let liveSecond = try await client.execute(
                uri: "/api/streams/alice/second/live",
                method: .post,
                headers: alice.headers(),
                body: json(#"{"live":true}"#)
            )
            #expect(try object(liveSecond)["suspended"] as? Bool == false)
            let liveShow = try await client.execute(
                uri: "/api/streams/alice/show/live",
                method: .post,
                headers: alice.headers(),
                body: json(#"{"live":true}"#)
            )
            #expect(liveShow.status == .ok)
            file = try StreamFile.parse(yaml: fixture.file, source: "test")
            #expect(file.liveStreams.first { $0.id.name == "second" }?.spec.suspend == true)
            #expect(file.liveStreams.first { $0.id.name == "show" }?.spec.suspend == false)

            // A target's switch, and an edit that keeps the target's key without sending it.
            let off = try await client.execute(
                uri: "/api/streams/alice/second/targets/yt/enabled",
                method: .put,
                headers: alice.headers(),
                body: json(#"{"enabled":false}"#)
            )
            #expect(off.status == .ok)
            let renamed = try await client.execute(
                uri: "/api/streams/alice/second",
                method: .put,
                headers: alice.headers(),
                body: json(
                    #"{"name":"third","targets":[{"name":"yt","url":"rtmp://127.0.0.1:2/live","enabled":false}]}"#
                )
            )
            #expect(renamed.status == .ok)
            file = try StreamFile.parse(yaml: fixture.file, source: "test")
            let third = try #require(file.liveStreams.first { $0.id.name == "third" })
            #expect(third.spec.targets.first?.streamKeySecretRef?.name == "second-yt-key")
            #expect(third.spec.targets.first?.enabled == false)
            #expect(!file.liveStreams.contains { $0.id.name == "second" })

            // The ingest key: only by explicit reveal; a new key replaces it.
            let reveal = try await client.execute(
                uri: "/api/streams/alice/show/key/reveal",
                method: .post,
                headers: alice.headers(),
                body: json("{}")
            )
            #expect(try object(reveal)["key"] as? String == "alice-secret-ingest-key")
            let rotated = try await client.execute(
                uri: "/api/streams/alice/show/key",
                method: .post,
                headers: alice.headers(),
                body: json("{}")
            )
            #expect(rotated.status == .noContent)
            file = try StreamFile.parse(yaml: fixture.file, source: "test")
            let newKey = try #require(file.secret("show-ingest", namespace: "alice")?.value("streamKey"))
            #expect(newKey != "alice-secret-ingest-key" && newKey.count == 64)

            let deleted = try await client.execute(
                uri: "/api/streams/alice/third",
                method: .delete,
                headers: alice.headers()
            )
            #expect(deleted.status == .noContent)
            file = try StreamFile.parse(yaml: fixture.file, source: "test")
            #expect(file.secret("second-yt-key", namespace: "alice") == nil)
            #expect(file.liveStreams.map(\.id.name) == ["show", "other"])
            #expect(!fixture.logs.all.contains { $0.contains("target-key-secret") || $0.contains(newKey) })
        }
    }

    @Test("The app is served with a Content-Security-Policy that allows no inline script")
    func contentSecurityPolicy() async throws {
        try await ConsoleFixture.with { _, client in
            for path in ["/", "/console/app.js", "/console/app.css"] {
                let response = try await client.execute(uri: path, method: .get)
                #expect(response.status == .ok)
                let policy = try #require(response.headers[.contentSecurityPolicy])
                #expect(policy.contains("script-src 'self'"))
                #expect(!policy.contains("unsafe-inline"))
            }
            let page = try await client.execute(uri: "/", method: .get)
            let html = String(buffer: page.body)
            #expect(html.contains(#"<script type="module" src="/console/app.js"></script>"#))
            // Every script is a file: no inline code.
            #expect(html.components(separatedBy: "<script").count == 2)
            #expect(html.range(of: #"\son[a-z]+="#, options: .regularExpression) == nil)
        }
    }
}

@Suite("Console server behind a trusted authenticating proxy")
struct ConsoleProxyTests {
    func withProxiedConsole(
        trusting ranges: [String],
        _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        try await ConsoleFixture.with { fixture, _ in
            let server = ConsoleServer(
                configuration: .init(
                    trustedProxy: .init(header: "X-Forwarded-User", sources: try ranges.map { try IPRange($0) })
                ),
                users: fixture.users,
                streams: fixture.server.streams,
                logger: Logger(label: "console")
            )
            let router = Router(context: ConsoleRequestContext.self)
            server.addRoutes(to: router)
            // Live: the client's address (127.0.0.1) is real.
            try await Application(router: router).test(.live) { client in
                try await body(client)
            }
        }
    }

    @Test("The proxy's header signs the named user in, from the proxy's addresses only")
    func proxiedSignIn() async throws {
        let headers: HTTPFields = [HTTPFields.Element.Name("X-Forwarded-User")!: "alice"]
        try await self.withProxiedConsole(trusting: ["127.0.0.0/8"]) { client in
            let session = try await client.execute(uri: "/api/session", method: .get, headers: headers)
            #expect(session.status == .ok)
            #expect(try object(session)["user"] as? String == "alice")
            #expect(session.headers[.setCookie]?.contains("HttpOnly") == true)
            var unknown = HTTPFields()
            unknown[HTTPFields.Element.Name("X-Forwarded-User")!] = "mallory"
            #expect(try await client.execute(uri: "/api/session", method: .get, headers: unknown).status == .forbidden)
        }
        try await self.withProxiedConsole(trusting: ["10.0.0.0/8"]) { client in
            let session = try await client.execute(uri: "/api/session", method: .get, headers: headers)
            #expect(session.status == .unauthorized)
        }
    }
}
