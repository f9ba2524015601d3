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
public import Hummingbird
public import LiveStreamModel
public import Logging
import NIOCore
public import ServiceLifecycle
import Synchronization

/// The console's HTTP side: the single-page app at `/`, the JSON API under `/api`, server-sent events at
/// `/api/events`. It is a `Service` (it relays the store's changes to the browsers while it runs) whose routes go on
/// any Hummingbird router: local mode's HTTP listener, or `liverelay console`'s own.
///
/// Every `/api` endpoint but sign-in checks the session cookie; every state-changing one also the CSRF token the
/// session was given (`X-CSRF-Token`); every stream endpoint asks the store for the stream as the signed-in user, so
/// another user's stream is 404 exactly as a missing one.
public final class ConsoleServer: Service, Sendable {
    /// An authenticating proxy in front (oauth2-proxy and the like) that names the signed-in user in a header.
    public struct TrustedProxy: Sendable {
        /// The header with the user name (`X-Forwarded-User`, `X-Auth-Request-User`).
        public var header: String
        /// Where the proxy connects from; the header is ignored from anywhere else, and wherever the client's
        /// address is unknown (a request context without ``Hummingbird/RemoteAddressRequestContext``).
        public var sources: [IPRange]

        public init(header: String, sources: [IPRange]) {
            self.header = header
            self.sources = sources
        }
    }

    public struct Configuration: Sendable {
        /// Users named by a trusted proxy's header are signed in without a password (`GET /api/session` starts
        /// their session); `nil` trusts no header.
        public var trustedProxy: TrustedProxy?
        /// `Secure` on the session cookie: set it when browsers reach the console over HTTPS (a TLS listener or a
        /// TLS-terminating Ingress).
        public var secureCookies: Bool
        /// The largest request body taken; more is 413.
        public var maxBodyBytes: Int
        public var sessionIdleTimeout: Duration
        public var sessionAbsoluteTimeout: Duration
        /// bcrypt cost of new passwords.
        public var bcryptCost: UInt8
        /// How often a comment line goes down every event stream, so proxies keep it open and a closed one is noticed.
        public var heartbeatInterval: Duration
        /// Where each stream's go-live page (`/go-live/NAMESPACE/NAME`, served with WHIP) is: `""` when it is on
        /// this listener (local mode), the gateway's public HTTP base (`https://gateway.example.org`) in a cluster,
        /// `nil` when the console does not know it: the app's link to the page is left out then.
        public var goLiveBase: String?

        public init(
            secureCookies: Bool = false,
            maxBodyBytes: Int = 64 * 1024,
            sessionIdleTimeout: Duration = .seconds(8 * 3600),
            sessionAbsoluteTimeout: Duration = .seconds(7 * 86400),
            bcryptCost: UInt8 = 12,
            heartbeatInterval: Duration = .seconds(20),
            trustedProxy: TrustedProxy? = nil,
            goLiveBase: String? = nil
        ) {
            self.goLiveBase = goLiveBase
            self.trustedProxy = trustedProxy
            self.secureCookies = secureCookies
            self.maxBodyBytes = maxBodyBytes
            self.sessionIdleTimeout = sessionIdleTimeout
            self.sessionAbsoluteTimeout = sessionAbsoluteTimeout
            self.bcryptCost = bcryptCost
            self.heartbeatInterval = heartbeatInterval
        }
    }

    /// What goes to every open event stream.
    enum Notice: Sendable {
        case stream(ConsoleStreamChange)
        case sessionEnded(token: String)
        case heartbeat
    }

    static let cookieName = "liverelay_session"
    static let csrfHeader = HTTPFields.Element.Name("X-CSRF-Token")!

    public let configuration: Configuration
    public let users: any ConsoleUserStore
    public let streams: any ConsoleStreamStore
    let logger: Logger
    let now: @Sendable () -> ContinuousClock.Instant
    let sessions: Mutex<ConsoleSessions>
    let throttle = Mutex(SignInThrottle())
    let notices = Broadcast<Notice>(bufferSize: 256)

    /// - Parameter now: the clock sessions and the sign-in throttle read; tests pass one they move.
    public init(
        configuration: Configuration = .init(),
        users: any ConsoleUserStore,
        streams: any ConsoleStreamStore,
        logger: Logger,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.configuration = configuration
        self.users = users
        self.streams = streams
        self.logger = logger
        self.now = now
        self.sessions = Mutex(
            ConsoleSessions(
                idleTimeout: configuration.sessionIdleTimeout,
                absoluteTimeout: configuration.sessionAbsoluteTimeout
            )
        )
    }

    /// Relays the store's changes to the event streams until shutdown, then ends them (so that the HTTP server's
    /// own shutdown does not wait on them).
    public func run() async throws {
        let changes = self.streams.changes()
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await change in changes.cancelOnGracefulShutdown() {
                    self.notices.yield(.stream(change))
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(for: self.configuration.heartbeatInterval)
                    } catch {
                        break
                    }
                    self.notices.yield(.heartbeat)
                }
            }
            try? await gracefulShutdown()
            self.notices.finish()
            group.cancelAll()
        }
    }

    // MARK: Routes

    /// Adds the app (`/`, `/console/…`) and the API (`/api/…`) to `router`.
    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get("/") { _, _ in Self.asset(ConsoleAssets.indexHTML, type: "text/html; charset=utf-8") }
        router.get("console/app.js") { _, _ in
            Self.asset(ConsoleAssets.appJS, type: "text/javascript; charset=utf-8")
        }
        router.get("console/app.css") { _, _ in Self.asset(ConsoleAssets.appCSS, type: "text/css; charset=utf-8") }

        let api = router.group("api")
        api.get("session") { request, context in
            if let proxied = try await self.proxySignIn(request, context: context) {
                return proxied
            }
            let auth = try await self.authenticate(request, context: context, changing: false)
            return try Self.json(self.sessionView(auth))
        }
        api.post("session") { request, context in
            try await self.signIn(request, context: context)
        }
        api.delete("session") { request, context in
            let auth = try await self.authenticate(request, context: context, changing: true)
            self.sessions.withLock { $0.end(auth.token) }
            self.notices.yield(.sessionEnded(token: auth.token))
            self.logger.info("Console sign-out", metadata: ["console.user": "\(auth.user.name)"])
            var response = Response(status: .noContent)
            response.setCookie(self.cookie(value: "signed-out", maxAge: 0))
            return response
        }
        api.put("settings") { request, context in
            let auth = try await self.authenticate(request, context: context, changing: true)
            let settings = try await self.decode(
                SwitchRequest<OneLiveAtATimeField>.self,
                from: request,
                context: context
            )
            var user = auth.user
            user.oneLiveAtATime = settings.value
            try await self.storeCall { try await self.users.update(user) }
            return try Self.json(self.sessionView(.init(user: user, token: auth.token, session: auth.session)))
        }
        api.get("streams") { request, context in
            let auth = try await self.authenticate(request, context: context, changing: false)
            let streams = try await self.storeCall { try await self.streams.streams(visibleTo: auth.user) }
            return try Self.json(streams.map { StreamView($0, goLiveBase: self.configuration.goLiveBase) })
        }
        api.post("streams") { request, context in
            let auth = try await self.authenticate(request, context: context, changing: true)
            let edit = try await self.decode(StreamEditRequest.self, from: request, context: context)
            return try await self.create(edit, by: auth.user)
        }
        api.get("streams/:namespace/:name") { request, context in
            let auth = try await self.authenticate(request, context: context, changing: false)
            let stream = try await self.visibleStream(context, user: auth.user)
            return try Self.json(StreamView(stream, goLiveBase: self.configuration.goLiveBase))
        }
        api.put("streams/:namespace/:name") { request, context in
            let auth = try await self.authenticate(request, context: context, changing: true)
            let stream = try await self.visibleStream(context, user: auth.user)
            let edit = try await self.decode(StreamEditRequest.self, from: request, context: context)
            return try await self.update(stream, with: edit, by: auth.user)
        }
        api.delete("streams/:namespace/:name") { request, context in
            let auth = try await self.authenticate(request, context: context, changing: true)
            let stream = try await self.visibleStream(context, user: auth.user)
            try await self.storeCall { try await self.streams.delete(stream.id, by: auth.user) }
            self.logger.info("Console deleted a stream", metadata: self.metadata(auth.user, stream.id))
            return Response(status: .noContent)
        }
        api.post("streams/:namespace/:name/live") { request, context in
            let auth = try await self.authenticate(request, context: context, changing: true)
            let stream = try await self.visibleStream(context, user: auth.user)
            let live = try await self.decode(SwitchRequest<LiveField>.self, from: request, context: context)
            return try await self.setLive(stream, live.value, by: auth.user)
        }
        api.put("streams/:namespace/:name/targets/:target/enabled") { request, context in
            let auth = try await self.authenticate(request, context: context, changing: true)
            let stream = try await self.visibleStream(context, user: auth.user)
            let name = try context.parameters.require("target")
            let change = try await self.decode(SwitchRequest<EnabledField>.self, from: request, context: context)
            var spec = stream.resource.spec
            guard let index = spec.targets.firstIndex(where: { $0.name == name }) else {
                throw ConsoleHTTPError(.notFound, "no target \(name) in \(stream.id)")
            }
            spec.targets[index].enabled = change.value
            try await self.storeCall {
                try await self.streams.update(stream.id, spec: spec, secrets: [], by: auth.user)
            }
            return try await self.current(stream.id, user: auth.user)
        }
        api.post("streams/:namespace/:name/key") { request, context in
            let auth = try await self.authenticate(request, context: context, changing: true)
            let stream = try await self.visibleStream(context, user: auth.user)
            try await self.storeCall { try await self.streams.rotateStreamKey(stream.id, by: auth.user) }
            self.logger.info("Console replaced a stream key", metadata: self.metadata(auth.user, stream.id))
            return Response(status: .noContent)
        }
        api.post("streams/:namespace/:name/key/reveal") { request, context in
            let auth = try await self.authenticate(request, context: context, changing: true)
            let stream = try await self.visibleStream(context, user: auth.user)
            // An admin sees and edits every stream, but a key leaves the console only for its owner: the same rule
            // in local mode and in a cluster, kept here rather than in each store.
            guard stream.id.namespace == auth.user.namespace else {
                throw ConsoleHTTPError(.forbidden, "only the owner of \(stream.id) can reveal its key")
            }
            let key = try await self.storeCall { try await self.streams.revealStreamKey(stream.id, by: auth.user) }
            self.logger.info("Console revealed a stream key", metadata: self.metadata(auth.user, stream.id))
            return try Self.json(["key": key])
        }
        api.get("events") { request, context in
            let auth = try await self.authenticate(request, context: context, changing: false)
            return self.events(for: auth)
        }
    }

    // MARK: Sessions

    struct Authenticated: Sendable {
        var user: ConsoleUser
        var token: String
        var session: ConsoleSessions.Session
    }

    /// The signed-in user of the request: 401 without a live session, 403 for a state-changing request without the
    /// session's CSRF token.
    func authenticate(
        _ request: Request,
        context: some RequestContext,
        changing: Bool
    ) async throws -> Authenticated {
        guard let token = request.cookies[Self.cookieName]?.value, !token.isEmpty,
            let session = self.sessions.withLock({ $0.use(token, now: self.now()) })
        else {
            throw ConsoleHTTPError(.unauthorized, "sign in first")
        }
        if let named = self.proxiedUser(request, context: context), named != session.user {
            // The proxy signed someone else in since: this session is not theirs.
            throw ConsoleHTTPError(.unauthorized, "sign in first")
        }
        if changing {
            let sent = request.headers[Self.csrfHeader] ?? ""
            guard constantTimeEqual(sent, session.csrfToken) else {
                throw ConsoleHTTPError(.forbidden, "missing or wrong CSRF token (X-CSRF-Token)")
            }
        }
        guard let user = try await self.storeCall({ try await self.users.user(named: session.user) }),
            user.passwordHash == session.credential
        else {
            // Removed, or given a new password, since: the session ends with it.
            self.sessions.withLock { $0.end(user: session.user) }
            throw ConsoleHTTPError(.unauthorized, "sign in first")
        }
        return Authenticated(user: user, token: token, session: session)
    }

    private func signIn(_ request: Request, context: some RequestContext) async throws -> Response {
        let form = try await self.decode(SignInRequest.self, from: request, context: context)
        let address = Self.address(of: context)
        let name = String(form.username.prefix(64))
        if let wait = self.throttle.withLock({ $0.wait(user: name, address: address, now: self.now()) }) {
            let seconds = max(
                1,
                Int((Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18).rounded(.up))
            )
            self.logger.notice(
                "Console sign-in refused: too many failures",
                metadata: [
                    "console.user": "\(name)", "console.remote": "\(address ?? "unknown")",
                    "console.retry_after": "\(seconds)",
                ]
            )
            var headers = HTTPFields()
            headers[.retryAfter] = "\(seconds)"
            throw ConsoleHTTPError(
                .tooManyRequests,
                "too many failed sign-ins: try again in \(seconds) s",
                headers: headers
            )
        }
        let user = try await self.storeCall { try await self.users.verify(name: name, password: form.password) }
        guard let user else {
            let delay = self.throttle.withLock { $0.failed(user: name, address: address, now: self.now()) }
            // Never the password, and not whether the name exists.
            self.logger.notice(
                "Console sign-in failed",
                metadata: [
                    "console.user": "\(name)", "console.remote": "\(address ?? "unknown")",
                    "console.next_attempt_delay": "\(delay.map { "\($0)" } ?? "none")",
                ]
            )
            throw ConsoleHTTPError(.unauthorized, "wrong user name or password")
        }
        self.throttle.withLock { $0.succeeded(user: name) }
        let (token, session) = self.sessions.withLock {
            $0.start(user: user.name, credential: user.passwordHash, now: self.now())
        }
        self.logger.info(
            "Console sign-in",
            metadata: ["console.user": "\(user.name)", "console.remote": "\(address ?? "unknown")"]
        )
        var response = try Self.json(self.sessionView(.init(user: user, token: token, session: session)))
        response.setCookie(
            self.cookie(value: token, maxAge: Int(self.configuration.sessionAbsoluteTimeout.components.seconds))
        )
        return response
    }

    /// The user a trusted proxy names, when the request comes from one of its addresses.
    private func proxiedUser(_ request: Request, context: some RequestContext) -> String? {
        guard let proxy = self.configuration.trustedProxy,
            let name = HTTPFields.Element.Name(proxy.header).flatMap({ request.headers[$0] }), !name.isEmpty,
            let address = (context as? any RemoteAddressRequestContext)?.remoteAddress,
            proxy.sources.contains(where: { $0.contains(address) })
        else {
            return nil
        }
        return name
    }

    /// `GET /api/session` through a trusted proxy: the session of the user it names, started when the request has
    /// none of theirs. `nil` when no trusted proxy names anyone.
    private func proxySignIn(_ request: Request, context: some RequestContext) async throws -> Response? {
        guard let name = self.proxiedUser(request, context: context) else {
            return nil
        }
        if let token = request.cookies[Self.cookieName]?.value,
            let session = self.sessions.withLock({ $0.use(token, now: self.now()) }), session.user == name,
            let user = try await self.storeCall({ try await self.users.user(named: name) })
        {
            return try Self.json(self.sessionView(.init(user: user, token: token, session: session)))
        }
        guard let user = try await self.storeCall({ try await self.users.user(named: name) }) else {
            self.logger.notice(
                "Console: the trusted proxy names an unknown user",
                metadata: ["console.user": "\(name)"]
            )
            throw ConsoleHTTPError(.forbidden, "no console user \(name)")
        }
        let (token, session) = self.sessions.withLock {
            $0.start(user: user.name, credential: user.passwordHash, now: self.now())
        }
        self.logger.info("Console sign-in through the trusted proxy", metadata: ["console.user": "\(user.name)"])
        var response = try Self.json(self.sessionView(.init(user: user, token: token, session: session)))
        response.setCookie(
            self.cookie(value: token, maxAge: Int(self.configuration.sessionAbsoluteTimeout.components.seconds))
        )
        return response
    }

    private func cookie(value: String, maxAge: Int) -> Cookie {
        Cookie(
            name: Self.cookieName,
            value: value,
            maxAge: maxAge,
            path: "/",
            secure: self.configuration.secureCookies,
            httpOnly: true,
            sameSite: .strict
        )
    }

    private func sessionView(_ auth: Authenticated) -> SessionView {
        SessionView(
            user: auth.user.name,
            admin: auth.user.admin,
            namespace: auth.user.namespace,
            csrfToken: auth.session.csrfToken,
            oneLiveAtATime: auth.user.oneLiveAtATime
        )
    }

    /// The client's address, when the request context knows it (``ConsoleRequestContext``, or the gateway's context
    /// on local mode's listener); without one, failed
    /// sign-ins count per name only, so that one client's guesses cannot lock everyone out.
    private static func address(of context: some RequestContext) -> String? {
        (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress
    }

    // MARK: Streams

    /// The stream `id`, when the request's signed-in user may see it: for what a deployment serves beside the API
    /// (the cluster console's preview). 401 without a session, 404 for a stream the user may not see, as the API.
    public func visibleStream(
        _ id: StreamID,
        request: Request,
        context: some RequestContext
    ) async throws -> ConsoleStream {
        let auth = try await self.authenticate(request, context: context, changing: false)
        guard let stream = try await self.storeCall({ try await self.streams.stream(id, visibleTo: auth.user) }) else {
            throw ConsoleHTTPError(.notFound, "no stream \(id)")
        }
        return stream
    }

    private func visibleStream(_ context: some RequestContext, user: ConsoleUser) async throws -> ConsoleStream {
        let id = StreamID(
            namespace: try context.parameters.require("namespace"),
            name: try context.parameters.require("name")
        )
        guard let stream = try await self.storeCall({ try await self.streams.stream(id, visibleTo: user) }) else {
            throw ConsoleHTTPError(.notFound, "no stream \(id)")
        }
        return stream
    }

    private func current(_ id: StreamID, user: ConsoleUser, status: HTTPResponse.Status = .ok) async throws -> Response
    {
        guard let stream = try await self.storeCall({ try await self.streams.stream(id, visibleTo: user) }) else {
            throw ConsoleHTTPError(.notFound, "no stream \(id)")
        }
        return try Self.json(StreamView(stream, goLiveBase: self.configuration.goLiveBase), status: status)
    }

    /// The spec and the key Secrets an edit asks for; field errors from LiveStreamModel's validation, per field.
    private func spec(
        from edit: StreamEditRequest,
        id: StreamID,
        base: LiveStreamSpec
    ) throws -> (LiveStreamSpec, [SecretDocument]) {
        var spec = base
        if let app = edit.app {
            spec.ingest.app = app
        }
        if let preview = edit.preview {
            spec.preview.enabled = preview
        }
        if let interval = edit.maxKeyframeIntervalSeconds {
            spec.rules = interval.map { LiveStreamSpec.Rules(maxKeyframeIntervalSeconds: $0) }
        }
        var secrets: [SecretDocument] = []
        var errors: [FieldError] = []
        spec.targets = edit.targets.enumerated().map { index, target in
            var ref = base.targets.first { $0.name == target.name }?.streamKeySecretRef
            if let key = target.key.map(StreamKey.normalized), !key.isEmpty {
                if key.count > 1024 {
                    errors.append(FieldError(field: "spec.targets[\(index)].key", message: "at most 1024 characters"))
                }
                let secret = LiveStreamSpec.SecretKeySelector(name: "\(id.name)-\(target.name)-key", key: "key")
                ref = secret
                secrets.append(SecretDocument(name: secret.name, namespace: id.namespace, values: [secret.key: key]))
            }
            return LiveStreamSpec.Target(
                name: target.name,
                url: target.url,
                streamKeySecretRef: ref,
                enabled: target.enabled
            )
        }
        errors += spec.validate(name: id.name)
        // A target's key Secret is named after the target: a bad name is reported once, at the name.
        let named = Set(errors.map(\.field))
        errors.removeAll { error in
            guard error.field.hasSuffix(".streamKeySecretRef.name"),
                let prefix = error.field.components(separatedBy: ".streamKeySecretRef").first
            else {
                return false
            }
            return named.contains(prefix + ".name") || named.contains("metadata.name")
        }
        if !errors.isEmpty {
            throw ConsoleHTTPError.invalid(errors)
        }
        return (spec, secrets)
    }

    private func create(_ edit: StreamEditRequest, by user: ConsoleUser) async throws -> Response {
        let namespace = edit.namespace ?? user.namespace
        let id = StreamID(namespace: namespace, name: edit.name)
        guard user.owns(id) else {
            throw ConsoleHTTPError(.forbidden, "you can create streams only in namespace \(user.namespace)")
        }
        // New streams start offline: going live is a separate, explicit step (and takes the others offline).
        let (spec, secrets) = try self.spec(from: edit, id: id, base: LiveStreamSpec(suspend: true))
        let stream = LiveStream(metadata: .init(name: id.name, namespace: id.namespace), spec: spec)
        try await self.storeCall { try await self.streams.create(stream, secrets: secrets, by: user) }
        self.logger.info("Console created a stream", metadata: self.metadata(user, id))
        return try await self.current(id, user: user, status: .created)
    }

    private func update(
        _ stream: ConsoleStream,
        with edit: StreamEditRequest,
        by user: ConsoleUser
    ) async throws -> Response {
        if let namespace = edit.namespace, namespace != stream.id.namespace {
            throw ConsoleHTTPError.invalid([FieldError(field: "metadata.namespace", message: "cannot be changed")])
        }
        var id = stream.id
        if edit.name != id.name {
            if let problem = LiveStreamSpec.dnsLabelProblem(edit.name, maxLength: LiveStreamLimits.maxNameLength) {
                throw ConsoleHTTPError.invalid([FieldError(field: "metadata.name", message: problem)])
            }
            try await self.storeCall { try await self.streams.rename(stream.id, to: edit.name, by: user) }
            id = StreamID(namespace: id.namespace, name: edit.name)
            self.logger.info("Console renamed a stream", metadata: self.metadata(user, id))
        }
        guard let current = try await self.storeCall({ try await self.streams.stream(id, visibleTo: user) }) else {
            throw ConsoleHTTPError(.notFound, "no stream \(id)")
        }
        let (spec, secrets) = try self.spec(from: edit, id: id, base: current.resource.spec)
        if spec != current.resource.spec || !secrets.isEmpty {
            try await self.storeCall { try await self.streams.update(id, spec: spec, secrets: secrets, by: user) }
        }
        return try await self.current(id, user: user)
    }

    /// Go Live (`suspend: false`; with "one stream live at a time", the user's other streams of the namespace go
    /// offline first) or Go Offline (`suspend: true`).
    private func setLive(_ stream: ConsoleStream, _ live: Bool, by user: ConsoleUser) async throws -> Response {
        if live, user.oneLiveAtATime {
            let others = try await self.storeCall { try await self.streams.streams(visibleTo: user) }
            for other in others
            where other.id != stream.id && other.id.namespace == stream.id.namespace && !other.resource.spec.suspend {
                try await self.storeCall { try await self.streams.setSuspend(other.id, true, by: user) }
                self.logger.info(
                    "Console took a stream offline (one live at a time)",
                    metadata: self.metadata(user, other.id)
                )
            }
        }
        try await self.storeCall { try await self.streams.setSuspend(stream.id, !live, by: user) }
        self.logger.info(live ? "Console Go Live" : "Console Go Offline", metadata: self.metadata(user, stream.id))
        return try await self.current(stream.id, user: user)
    }

    private func metadata(_ user: ConsoleUser, _ id: StreamID) -> Logger.Metadata {
        [
            "console.user": "\(user.name)", "k8s.resource.namespace": "\(id.namespace)",
            "k8s.resource.name": "\(id.name)",
        ]
    }

    // MARK: Events

    /// `text/event-stream`: a `stream` event with the stream's JSON whenever a stream the user may see changes, a
    /// `removed` event when one goes; ends when the session does (sign-out) or the server stops.
    private func events(for auth: Authenticated) -> Response {
        let notices = self.notices.subscribe()
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-store"
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "retry: 2000\n: connected\n\n"))
                for await notice in notices {
                    guard self.sessions.withLock({ $0.use(auth.token, now: self.now()) }) != nil else {
                        break
                    }
                    switch notice {
                    case .heartbeat:
                        try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                    case .sessionEnded(let token):
                        if token == auth.token {
                            try await writer.finish(nil)
                            return
                        }
                    case .stream(.removed(let id)):
                        if auth.user.owns(id) {
                            let data = try Self.encoder.encode(["namespace": id.namespace, "name": id.name])
                            try await writer.write(Self.event("removed", data))
                        }
                    case .stream(.changed(let id)):
                        guard auth.user.owns(id),
                            let stream = try? await self.streams.stream(id, visibleTo: auth.user)
                        else {
                            continue
                        }
                        try await writer.write(
                            Self.event(
                                "stream",
                                try Self.encoder.encode(StreamView(stream, goLiveBase: self.configuration.goLiveBase))
                            )
                        )
                    }
                }
                try await writer.finish(nil)
            }
        )
    }

    private static func event(_ name: String, _ data: Data) -> ByteBuffer {
        var buffer = ByteBuffer(string: "event: \(name)\ndata: ")
        buffer.writeBytes(data)
        buffer.writeString("\n\n")
        return buffer
    }

    // MARK: Bodies and answers

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The request's JSON body as `T`: 415 for another content type, 413 past the limit, 400 naming the field for
    /// malformed JSON, a wrong type, a missing or an unknown field.
    func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        let contentType = request.headers[.contentType] ?? ""
        guard contentType.lowercased().hasPrefix("application/json") else {
            throw ConsoleHTTPError(.unsupportedMediaType, "send JSON (Content-Type: application/json)")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > self.configuration.maxBodyBytes {
            throw ConsoleHTTPError(.contentTooLarge, "the body is larger than \(self.configuration.maxBodyBytes) bytes")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: self.configuration.maxBodyBytes)
        } catch {
            throw ConsoleHTTPError(.contentTooLarge, "the body is larger than \(self.configuration.maxBodyBytes) bytes")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw ConsoleHTTPError(.badRequest, Self.describe(error))
        } catch {
            throw ConsoleHTTPError(.badRequest, "not valid JSON")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            var text = ""
            for key in keys {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text.isEmpty ? "the body" : text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): missing"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(Self.typeName(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(Self.typeName(type)), found null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "not valid JSON" : "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "not valid JSON"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Double.Type: "a number"
        default: type is any Collection.Type ? "a list" : "an object"
        }
    }

    /// Runs a store call, turning what the store refuses into the matching 4xx (and anything else into 503).
    func storeCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ConsoleStoreError {
            switch error {
            case .notFound(let message): throw ConsoleHTTPError(.notFound, message)
            case .alreadyExists(let message):
                throw ConsoleHTTPError(
                    .conflict,
                    message,
                    fields: [FieldErrorView(field: "metadata.name", message: message)]
                )
            case .conflict(let message): throw ConsoleHTTPError(.conflict, message)
            case .invalid(let errors): throw ConsoleHTTPError.invalid(errors)
            case .unavailable(let message):
                self.logger.warning("Console store unavailable", metadata: ["error": "\(message)"])
                throw ConsoleHTTPError(.serviceUnavailable, message)
            }
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(
            status: status,
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: try Self.encoder.encode(value)))
        )
    }

    /// The app's Content-Security-Policy: scripts, styles and connections from this origin only, nothing inline;
    /// frames (the preview) from this origin.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        + "media-src 'self' blob:; frame-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    private static func asset(_ bytes: [UInt8], type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        headers[HTTPFields.Element.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPFields.Element.Name("Referrer-Policy")!] = "no-referrer"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// A 4xx or 5xx with a JSON body: `{"error": "...", "fields": [{"field": "spec.targets[0].url", "message": "..."}]}`.
struct ConsoleHTTPError: HTTPResponseError {
    var status: HTTPResponse.Status
    var message: String
    var fields: [FieldErrorView]?
    var headers: HTTPFields

    init(_ status: HTTPResponse.Status, _ message: String, fields: [FieldErrorView]? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.fields = fields
        self.headers = headers
    }

    static func invalid(_ errors: [FieldError]) -> Self {
        Self(
            .unprocessableContent,
            errors.map(\.description).joined(separator: "; "),
            fields: errors.map { FieldErrorView(field: $0.field, message: $0.message) }
        )
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try ConsoleServer.json(ErrorView(error: self.message, fields: self.fields), status: self.status)
        response.headers.append(contentsOf: self.headers)
        return response
    }
}

/// Compares two tokens in time that depends on their lengths only.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    guard x.count == y.count else {
        return false
    }
    var difference: UInt8 = 0
    for index in x.indices {
        difference |= x[index] ^ y[index]
    }
    return difference == 0
}
