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
import Hummingbird
import IngestNetworking
import LiveStreamModel
public import Logging
import NIOCore
import NIOPosix
import RTMP
import Synchronization
import TimeSupport
public import WebRTC
import WebRTCMedia

/// What the gateway's WHIP endpoint (RFC 9725) accepts and announces.
public struct WHIPConfiguration: Sendable {
    /// `Access-Control-Allow-Origin` of every WHIP answer, so that a page on another origin can publish.
    public var allowOrigin: String
    /// The largest SDP offer taken, in bytes; a browser's offer is a few kilobytes.
    public var maximumOfferBytes: Int
    /// ICE servers announced as `Link` headers (RFC 9725 section 4.6): `stun:` or `turn:` URLs.
    public var iceServers: [String]
    /// How long the relay may take to answer the publish once it is reachable.
    public var publishTimeout: Duration
    /// Limits on a PATCH's `application/trickle-ice-sdpfrag` body (RFC 9725 §4.3): its bytes and candidates.
    public var fragmentLimits: TrickleICEFragment.Limits
    /// The bitrate, in bits per second, the session's REMB allows the publisher (its receiver's estimate, which a
    /// browser takes as a cap once `goog-remb` is negotiated): above any bitrate the go-live page offers, so that the
    /// page's choice is what limits, and a bound for publishers that choose none.
    public var maximumBitrate: UInt64
    /// The longest GOP sent to the relay: the ingest asks the publisher for a keyframe before the last one gets this
    /// old (see `WebRTCIngest.Configuration.maximumKeyframeInterval`); nil for no requests beyond the ones needed.
    public var maximumKeyframeInterval: Duration?

    public init(
        allowOrigin: String = "*",
        maximumOfferBytes: Int = 64 * 1024,
        iceServers: [String] = [],
        publishTimeout: Duration = .seconds(10),
        fragmentLimits: TrickleICEFragment.Limits = .init(),
        maximumBitrate: UInt64 = 8_000_000,
        maximumKeyframeInterval: Duration? = .seconds(2)
    ) {
        self.allowOrigin = allowOrigin
        self.maximumOfferBytes = maximumOfferBytes
        self.iceServers = iceServers
        self.publishTimeout = publishTimeout
        self.fragmentLimits = fragmentLimits
        self.maximumBitrate = maximumBitrate
        self.maximumKeyframeInterval = maximumKeyframeInterval
    }
}

/// WebRTC ingest on the gateway: `POST /whip/NAMESPACE/NAME` with the stream key as Bearer token.
///
/// Each session is published into the stream's relay as RTMP, with the key as the stream name, after the relay is
/// woken like for any held connection: the relay stays the one authority on keys. The session's RTP and RTCP go
/// through a `WebRTCIngest` (H.264 passes through, Opus becomes AAC) in one task per session, whose RTMP messages
/// are written to the relay connection. The session counts as a live connection of its stream while it lasts, so
/// that KEDA keeps a WHIP-only stream's relay up.
public final class WHIPService: Sendable {
    let gateway: Gateway
    /// The WebRTC transport every session runs on.
    public let transport: WebRTCTransport
    let configuration: WHIPConfiguration
    private let logger: Logger

    private struct Entry {
        var stream: StreamID
        var session: WebRTCSession
        var ice: WHIPICEResource
    }
    private let sessions = Mutex<[String: Entry]>([:])
    private let patches = Mutex<(trickled: Int, restarts: Int)>((0, 0))
    private let relayKeyframeRequests = Atomic<Int>(0)

    public init(
        gateway: Gateway,
        transport: WebRTCTransport,
        configuration: WHIPConfiguration = .init(),
        logger: Logger
    ) {
        self.gateway = gateway
        self.transport = transport
        self.configuration = configuration
        self.logger = logger
    }

    /// The sessions open now, for tests.
    package var sessionCount: Int { self.sessions.withLock { $0.count } }
    /// PATCHes that trickled candidates (204), for tests.
    package var trickledPatches: Int { self.patches.withLock { $0.trickled } }
    /// PATCHes that restarted ICE (200), for tests.
    package var iceRestarts: Int { self.patches.withLock { $0.restarts } }
    /// Keyframe requests the relays sent (a target started pushing), for tests.
    package var keyframeRequestsFromRelays: Int { self.relayKeyframeRequests.load(ordering: .relaxed) }

    /// The counters of the sessions open now, for tests.
    package func statistics() async -> [WebRTCSessionStatistics] {
        var statistics: [WebRTCSessionStatistics] = []
        for session in self.sessions.withLock({ $0.values.map(\.session) }) {
            if let counters = await session.statistics() { statistics.append(counters) }
        }
        return statistics
    }

    // MARK: HTTP

    func addRoutes(to router: Router<GatewayHTTPContext>) {
        GoLivePage.addRoutes(to: router)
        router.post("whip/:namespace/:name") { request, context -> Response in
            let stream = StreamID(
                namespace: try context.parameters.require("namespace"),
                name: try context.parameters.require("name")
            )
            return self.cors(await self.publish(request, context: context, stream: stream))
        }
        router.delete("whip/:namespace/:name/:session") { _, context -> Response in
            let stream = StreamID(
                namespace: try context.parameters.require("namespace"),
                name: try context.parameters.require("name")
            )
            let id = try context.parameters.require("session")
            return self.cors(self.end(session: id, stream: stream))
        }
        router.patch("whip/:namespace/:name/:session") { request, context -> Response in
            let stream = StreamID(
                namespace: try context.parameters.require("namespace"),
                name: try context.parameters.require("name")
            )
            let id = try context.parameters.require("session")
            return self.cors(await self.patch(request, session: id, stream: stream))
        }
        for path in ["whip/:namespace/:name", "whip/:namespace/:name/:session"] {
            router.on(RouterPath(path), method: .options) { _, _ -> Response in
                var response = Response(status: .noContent)
                response.headers[.accessControlAllowMethods] = "POST, DELETE, PATCH, OPTIONS"
                response.headers[.accessControlAllowHeaders] = "Authorization, Content-Type, If-Match"
                response.headers[.accessControlMaxAge] = "86400"
                response.headers[Self.acceptPatch] = Self.fragmentType
                self.addLinks(to: &response.headers)
                return self.cors(response)
            }
        }
    }

    /// The media type of trickle ICE and ICE restart PATCH bodies (RFC 8840 §9, RFC 9725 §4.3.1).
    static let fragmentType = "application/trickle-ice-sdpfrag"
    /// RFC 5789 §3.1: the PATCH bodies a resource takes, announced on OPTIONS and on the 201.
    static let acceptPatch = HTTPFields.Element.Name("Accept-Patch")!

    private func cors(_ response: Response) -> Response {
        var response = response
        response.headers[.accessControlAllowOrigin] = self.configuration.allowOrigin
        response.headers[.accessControlExposeHeaders] = "Location, ETag, Link, Accept-Patch"
        if self.configuration.allowOrigin != "*" {
            response.headers[.vary] = "Origin"
        }
        return response
    }

    private func addLinks(to headers: inout HTTPFields) {
        for server in self.configuration.iceServers {
            headers.append(
                HTTPFields.Element(name: HTTPFields.Element.Name("Link")!, value: "<\(server)>; rel=\"ice-server\"")
            )
        }
    }

    /// A refusal: logged at notice (never with the key) and answered with its reason.
    private func refuse(
        _ status: HTTPResponse.Status,
        _ message: String,
        stream: StreamID,
        metric: String? = nil
    ) -> Response {
        if let metric {
            self.gateway.accounting.refused(stream, reason: metric)
        }
        self.logger.notice(
            "WHIP publish refused: \(message)",
            metadata: ["gateway.stream": "\(stream)", "http.status": "\(status.code)"]
        )
        return gatewayProblem(status, message)
    }

    private func publish(_ request: Request, context: GatewayHTTPContext, stream: StreamID) async -> Response {
        let contentType = request.headers[.contentType]?.split(separator: ";").first?
            .trimmingCharacters(in: .whitespaces).lowercased()
        guard contentType == "application/sdp" else {
            return self.refuse(
                .unsupportedMediaType,
                "A WHIP offer must have Content-Type: application/sdp.",
                stream: stream
            )
        }
        guard let route = self.gateway.routes.route(for: stream) else {
            return self.refuse(.notFound, "No stream \(stream).", stream: stream)
        }
        if route.suspended {
            return self.refuse(
                .forbidden,
                GatewayRefusal.suspended.encoderMessage,
                stream: stream,
                metric: GatewayRefusal.suspended.metricLabel
            )
        }
        if let remote = context.remoteAddress, !route.allowedSourceRanges.contains(where: { $0.contains(remote) }) {
            return self.refuse(
                .forbidden,
                GatewayRefusal.sourceRange.encoderMessage,
                stream: stream,
                metric: GatewayRefusal.sourceRange.metricLabel
            )
        }
        guard let authorization = request.headers[.authorization],
            authorization.lowercased().hasPrefix("bearer "),
            case let key = String(authorization.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces),
            !key.isEmpty
        else {
            var response = self.refuse(
                .unauthorized,
                "The stream key is missing: send it as Bearer token.",
                stream: stream
            )
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        // The relay lets a publisher with the key take a stream over (an RTMP encoder that reconnects before its old
        // connection timed out); a WHIP publisher has no such half-dead predecessor, so a stream that has a
        // publisher through this gateway is refused here.
        if self.gateway.connections(for: stream).live > 0 {
            return self.refuse(.conflict, "The stream is already being published.", stream: stream)
        }
        let offer: String
        do {
            let body = try await request.body.collect(upTo: self.configuration.maximumOfferBytes)
            offer = String(buffer: body)
        } catch {
            return self.refuse(
                .contentTooLarge,
                "The offer is larger than \(self.configuration.maximumOfferBytes) bytes.",
                stream: stream
            )
        }
        // Checked before the relay is woken: an offer we cannot answer should not start a relay.
        if case .failure(let error) = Result(catching: { () throws(WebRTCError) in try WHIPOffer(parsing: offer) }) {
            let status: HTTPResponse.Status = error.code == .noH264 ? .notAcceptable : .badRequest
            return self.refuse(status, "The offer cannot be answered: \(error.message)", stream: stream)
        }

        let upstream: GatewayRoute.Upstream
        let heldSince: ContinuousClock.Instant?
        switch await self.upstream(for: route) {
        case .ready(let ready, let since):
            upstream = ready
            heldSince = since
        case .refused(let refusal):
            self.gateway.logRefusal(refusal, stream: stream, logger: self.logger)
            let status: HTTPResponse.Status =
                switch refusal {
                case .suspended: .forbidden
                case .routeRemoved: .notFound
                default: .serviceUnavailable
                }
            return gatewayProblem(status, refusal.encoderMessage)
        }

        let (results, continuation) = AsyncStream.makeStream(of: PublishResult.self)
        let addresses = (source: context.remoteAddress, destination: context.localAddress)
        Task {
            await self.run(
                stream: stream,
                upstream: upstream,
                heldSince: heldSince,
                app: route.app,
                key: key,
                offer: offer,
                addresses: addresses,
                report: { continuation.yield($0) }
            )
            continuation.finish()
        }
        var iterator = results.makeAsyncIterator()
        switch await iterator.next() ?? .failed(.badGateway, "The WHIP session ended before it started.") {
        case .failed(let status, let message):
            return self.refuse(status, message, stream: stream)
        case .answered(let session, let resource, let entityTag):
            var headers = HTTPFields()
            headers[.contentType] = "application/sdp"
            headers[.location] = "/whip/\(stream.namespace)/\(stream.name)/\(resource)"
            headers[.eTag] = entityTag
            headers[Self.acceptPatch] = Self.fragmentType
            self.addLinks(to: &headers)
            self.logger.info(
                "WHIP session started",
                metadata: ["gateway.stream": "\(stream)", "webrtc.session.id": "\(session.id)"]
            )
            return Response(
                status: .created,
                headers: headers,
                body: .init(byteBuffer: ByteBuffer(string: session.answer))
            )
        }
    }

    /// A PATCH of a session's resource (RFC 9725 §4.3): candidates (204) or an ICE restart (200 with our new
    /// credentials and a new ETag). Like DELETE it needs no key: the resource's URL is the capability.
    private func patch(_ request: Request, session id: String, stream: StreamID) async -> Response {
        guard self.sessions.withLock({ $0[id]?.stream == stream }) else {
            return gatewayProblem(.notFound, "No such WHIP session for stream \(stream).")
        }
        let contentType = request.headers[.contentType]?.split(separator: ";").first?
            .trimmingCharacters(in: .whitespaces).lowercased()
        guard contentType == Self.fragmentType else {
            var response = gatewayProblem(
                .unsupportedMediaType,
                "A WHIP PATCH must have Content-Type: \(Self.fragmentType)."
            )
            response.headers[Self.acceptPatch] = Self.fragmentType
            return response
        }
        let limits = self.configuration.fragmentLimits
        let text: String
        do {
            text = String(buffer: try await request.body.collect(upTo: limits.maximumBytes))
        } catch {
            return gatewayProblem(.contentTooLarge, "The ICE fragment is larger than \(limits.maximumBytes) bytes.")
        }
        let ifMatch = request.headers[.ifMatch]
        // Decided and, for a restart, handed to the transport under the lock: two PATCHes of one session reach the
        // transport in the order their entity tags say.
        let decided = self.sessions.withLock { sessions -> (WHIPICEResource.Outcome, Entry, ICECredentials?)? in
            guard var entry = sessions[id], entry.stream == stream else { return nil }
            let outcome = entry.ice.patch(
                ifMatch: ifMatch,
                fragment: text,
                newEntityTag: { "\"\(StreamKey.generate().prefix(24))\"" },
                limits: limits
            )
            var local: ICECredentials?
            if case .restart(let remote) = outcome {
                local = entry.session.restartICE(remoteUsernameFragment: remote.usernameFragment)
                sessions[id] = entry
            }
            return (outcome, entry, local)
        }
        guard let (outcome, entry, local) = decided else {
            return gatewayProblem(.notFound, "No such WHIP session for stream \(stream).")
        }
        let metadata: Logger.Metadata = ["gateway.stream": "\(stream)", "webrtc.session.id": "\(entry.session.id)"]
        switch outcome {
        case .trickle(let candidates, let endOfCandidates):
            self.patches.withLock { $0.trickled += 1 }
            self.logger.debug(
                "WHIP session: trickled candidates taken",
                metadata: metadata.merging(
                    ["webrtc.candidates": "\(candidates)", "webrtc.end_of_candidates": "\(endOfCandidates)"]
                ) { $1 }
            )
            return Response(status: .noContent)
        case .restart:
            guard let local else { return gatewayProblem(.internalServerError, "The ICE restart failed.") }
            self.patches.withLock { $0.restarts += 1 }
            self.logger.info("WHIP session: ICE restarted", metadata: metadata)
            var headers = HTTPFields()
            headers[.contentType] = Self.fragmentType
            headers[.eTag] = entry.ice.entityTag
            let body = TrickleICEFragment.answer(
                credentials: local,
                candidates: entry.session.candidates,
                media: entry.session.media
            )
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        case .refused(let status, let message):
            self.logger.notice(
                "WHIP PATCH refused: \(message)",
                metadata: metadata.merging(["http.status": "\(status.code)"]) { $1 }
            )
            return gatewayProblem(status, message)
        }
    }

    private func end(session id: String, stream: StreamID) -> Response {
        let entry = self.sessions.withLock { sessions -> Entry? in
            guard let entry = sessions[id], entry.stream == stream else {
                return nil
            }
            return entry
        }
        guard let entry else {
            return gatewayProblem(.notFound, "No such WHIP session for stream \(stream).")
        }
        self.logger.info(
            "WHIP session ended by DELETE",
            metadata: ["gateway.stream": "\(stream)", "webrtc.session.id": "\(entry.session.id)"]
        )
        entry.session.close()
        return Response(status: .ok)
    }

    /// The route's upstream, at once or after holding for it like an RTMP connection (counted as held, waking the
    /// relay), within the gateway's hold timeout; with when the hold began, for the caller to release it.
    private func upstream(for route: GatewayRoute) async -> HoldOutcome {
        if let upstream = route.upstream {
            return .ready(upstream, heldSince: nil)
        }
        if let refusal = self.gateway.hold(route.stream) {
            return .refused(refusal)
        }
        let start = ContinuousClock.now
        let timeout = self.gateway.configuration.holdTimeout
        self.logger.info("WHIP publish held while the relay starts", metadata: ["gateway.stream": "\(route.stream)"])
        let ready = await withTaskGroup(of: GatewayRoute?.self) { group in
            group.addTask { await self.gateway.routes.upstream(for: route.stream) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let ready, let upstream = ready.upstream else {
            self.gateway.accounting.release(route.stream, heldFor: .now - start)
            if let current = self.gateway.routes.route(for: route.stream) {
                return .refused(current.suspended ? .suspended : .holdTimeout(timeout, connectError: nil))
            }
            return .refused(.routeRemoved(whileHeld: true))
        }
        return .ready(upstream, heldSince: start)
    }

    private enum HoldOutcome {
        case ready(GatewayRoute.Upstream, heldSince: ContinuousClock.Instant?)
        case refused(GatewayRefusal)
    }

    // MARK: Session

    enum PublishResult: Sendable {
        case failed(HTTPResponse.Status, String)
        case answered(WebRTCSession, resource: String, entityTag: String)
    }

    private enum Input: Sendable {
        case relay(RTMPMessage)
        case relayEnded((any Error)?)
        case event(WebRTCSessionEvent)
        case webrtcEnded((any Error)?)
        case publishTimeout
        case tick
    }

    /// One session from the relay connection to its end; `report` gets the answer or why there is none. The session
    /// counts as a live connection of the stream throughout, and no longer as held from then on.
    private func run(
        stream: StreamID,
        upstream: GatewayRoute.Upstream,
        heldSince: ContinuousClock.Instant?,
        app: String,
        key: String,
        offer: String,
        addresses: (source: SocketAddress?, destination: SocketAddress?),
        report: @escaping @Sendable (PublishResult) -> Void
    ) async {
        let accounting = self.gateway.accounting
        // Live before no longer held: a reader of the counts in between sees the publisher twice, never not at all.
        _ = accounting.goLive(stream)
        if let heldSince {
            accounting.release(stream, heldFor: .now - heldSince)
        }
        defer { accounting.endLive(stream) }
        var logger = self.logger
        logger[metadataKey: "gateway.stream"] = "\(stream)"

        let connection: NIOAsyncChannel<RTMPMessage, RTMPMessage>
        do {
            connection = try await self.connect(to: upstream, addresses: addresses)
        } catch {
            report(.failed(.badGateway, "Cannot connect to the stream's relay: \(error)."))
            return
        }
        guard self.gateway.register(connection.channel) else {
            connection.channel.close(promise: nil)
            report(.failed(.serviceUnavailable, GatewayRefusal.shuttingDown.encoderMessage))
            return
        }
        do {
            try await connection.executeThenClose { inbound, outbound in
                let (inputs, input) = AsyncStream.makeStream(of: Input.self, bufferingPolicy: .bufferingNewest(4096))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            // After the publish starts, the relay sends keyframe requests (asked for in connect);
                            // otherwise its end is what matters.
                            for try await message in inbound {
                                input.yield(.relay(message))
                            }
                            input.yield(.relayEnded(nil))
                        } catch {
                            input.yield(.relayEnded(error))
                        }
                    }
                    let timeout = self.configuration.publishTimeout
                    group.addTask {
                        try await Task.sleep(for: timeout)
                        input.yield(.publishTimeout)
                    }
                    var iterator = inputs.makeAsyncIterator()
                    defer {
                        input.finish()
                        group.cancelAll()
                    }
                    var rtmp = RTMPPublishClientStateMachine.Configuration(
                        app: app,
                        tcURL: "rtmp://\(upstream)/\(app)",
                        streamName: key
                    )
                    // The ingest can ask the browser for a keyframe: the relay asks for one when a target starts.
                    rtmp.acceptsKeyframeRequests = true
                    var machine = RTMPPublishClientStateMachine(configuration: rtmp)
                    try await outbound.write(contentsOf: machine.start())
                    while !machine.isPublishing {
                        switch await iterator.next() {
                        case .relay(let message):
                            switch machine.received(message) {
                            case .none, .keyframeRequested: break
                            case .send(let reply), .publishing(let reply): try await outbound.write(contentsOf: reply)
                            case .fail(let error):
                                if "\(error)".contains("already") {
                                    report(.failed(.conflict, "The stream is already being published."))
                                } else {
                                    report(.failed(.unauthorized, "The relay refused the stream key."))
                                }
                                return
                            }
                        case .publishTimeout:
                            report(.failed(.gatewayTimeout, "The stream's relay did not answer the publish in time."))
                            return
                        case .relayEnded, nil:
                            report(.failed(.badGateway, "The stream's relay closed the connection before the publish."))
                            return
                        default:
                            break
                        }
                    }
                    guard let messageStreamID = machine.messageStreamID else {
                        return
                    }
                    let session: WebRTCSession
                    do {
                        session = try await self.transport.register(offer: offer, logger: logger)
                    } catch {
                        let code = (error as? WebRTCError)?.code
                        let status: HTTPResponse.Status =
                            code == .noH264
                            ? .notAcceptable : code == .limitExceeded ? .serviceUnavailable : .badRequest
                        let message = (error as? WebRTCError)?.message ?? "\(error)"
                        report(.failed(status, "The offer cannot be answered: \(message)"))
                        try await outbound.write(contentsOf: machine.unpublish())
                        return
                    }
                    let ingest: WebRTCIngest
                    do {
                        var ingestConfiguration = WebRTCIngest.Configuration(
                            codecs: session.media.map(Self.codec),
                            localSSRC: UInt32.random(in: 1...UInt32.max),
                            cname: "liverelay"
                        )
                        ingestConfiguration.messageStreamID = messageStreamID
                        ingestConfiguration.maximumBitrate = self.configuration.maximumBitrate
                        ingestConfiguration.maximumKeyframeInterval = self.configuration.maximumKeyframeInterval
                        ingest = try WebRTCIngest(configuration: ingestConfiguration, now: .now)
                    } catch {
                        session.close()
                        report(.failed(.notAcceptable, "The offer cannot be ingested: \(error)"))
                        try await outbound.write(contentsOf: machine.unpublish())
                        return
                    }
                    // The session's resource (its Location) is a capability: DELETE needs no key (some clients send
                    // none), so it is a random token of its own, never logged, not the session id the logs name.
                    let resource = StreamKey.generate()
                    // The entity tag of the ICE session (RFC 9725 §4.3.1), new on every ICE restart.
                    let entityTag = "\"\(StreamKey.generate().prefix(24))\""
                    self.sessions.withLock {
                        $0[resource] = Entry(
                            stream: stream,
                            session: session,
                            ice: WHIPICEResource(entityTag: entityTag, remote: session.offeredCredentials)
                        )
                    }
                    defer { _ = self.sessions.withLock { $0.removeValue(forKey: resource) } }
                    // Go Offline ends the session like a live RTMP connection.
                    self.gateway.registerLive(connection.channel, stream: stream) { _ in session.close() }
                    group.addTask {
                        do {
                            for try await event in session.events {
                                input.yield(.event(event))
                            }
                            input.yield(.webrtcEnded(nil))
                        } catch {
                            input.yield(.webrtcEnded(error))
                        }
                    }
                    report(.answered(session, resource: resource, entityTag: entityTag))

                    logger[metadataKey: "webrtc.session.id"] = "\(session.id)"
                    let reason = await Self.pump(
                        &iterator,
                        machine: &machine,
                        keyframeRequested: { self.relayKeyframeRequests.add(1, ordering: .relaxed) },
                        input: input,
                        session: session,
                        ingest: ingest,
                        outbound: outbound,
                        logger: logger
                    )
                    session.close()
                    logger.info("WHIP session ended: \(reason)")
                    // Best effort: the relay may be gone already.
                    try? await outbound.write(contentsOf: ingest.finish(at: .now).messages)
                    try? await outbound.write(contentsOf: machine.unpublish())
                }
            }
        } catch {
            report(.failed(.badGateway, "The stream's relay connection failed: \(error)."))
            logger.notice("WHIP session's relay connection failed", metadata: ["error": "\(error)"])
        }
    }

    /// Moves media from the session to the relay until either ends, with the ingest's ticks at its deadlines;
    /// returns why it ended.
    private static func pump(
        _ inputs: inout AsyncStream<Input>.Iterator,
        machine: inout RTMPPublishClientStateMachine,
        keyframeRequested: () -> Void,
        input: AsyncStream<Input>.Continuation,
        session: WebRTCSession,
        ingest: WebRTCIngest,
        outbound: NIOAsyncChannelOutboundWriter<RTMPMessage>,
        logger: Logger
    ) async -> String {
        var timer: Task<Void, Never>?
        var scheduled: ContinuousClock.Instant?
        var refusals = RateLimitedWarning(interval: .seconds(10))
        // When media last went to the relay: a relay that closes the connection after the publisher's media stopped
        // (its idle timeout) is not the cause, and the log says so.
        var lastMedia = ContinuousClock.now
        defer { timer?.cancel() }
        while let next = await inputs.next() {
            let now = ContinuousClock.now
            var output: WebRTCIngest.Output
            switch next {
            case .event(.rtp(let packet)):
                do {
                    output = try ingest.receive(rtp: packet, at: now)
                } catch {
                    // One bad packet is dropped, not the session (a payload type that was not negotiated, a
                    // malformed or oversized packet): said at warning, at most once per interval with a count.
                    if let suppressed = refusals.refused(at: now) {
                        logger.warning(
                            "WHIP session: RTP packet dropped",
                            metadata: ["error": "\(error)", "dropped-since-last-warning": "\(suppressed)"]
                        )
                    }
                    output = .init()
                }
            case .event(.rtcp(let packet)):
                output = (try? ingest.receive(rtcp: packet, at: now)) ?? .init()
            case .event(.iceConnected):
                logger.debug("WHIP session: ICE connected")
                output = .init()
            case .event(.dtlsConnected):
                logger.info("WHIP session connected (ICE and DTLS)")
                output = .init()
            case .tick:
                scheduled = nil
                output = ingest.tick(at: now)
            case .webrtcEnded(let error):
                return error.map { "the WebRTC session failed: \($0)" } ?? "the WebRTC session was closed"
            case .relayEnded(let error):
                let silence = now - lastMedia
                let cause =
                    silence >= .seconds(2)
                    ? " after \(Int(silence.inSeconds.rounded())) s without media from the publisher"
                    : ""
                return error.map { "the relay connection failed\(cause): \($0)" }
                    ?? "the relay closed the connection\(cause)"
            case .relay(let message):
                if case .keyframeRequested = machine.received(message) {
                    // A target started pushing: a keyframe now lets it catch up at once (merged with the ingest's
                    // own requests, see WebRTCIngest.requestKeyframe(at:)).
                    logger.debug("WHIP session: the relay asks for a keyframe")
                    keyframeRequested()
                    output = ingest.requestKeyframe(at: now)
                } else {
                    output = .init()
                }
            case .publishTimeout:
                output = .init()
            }
            for error in output.errors {
                logger.debug("WHIP session: media problem", metadata: ["error": "\(error)"])
            }
            for packet in output.rtcp {
                session.sendRTCP(packet)
            }
            if !output.messages.isEmpty {
                lastMedia = now
                do {
                    try await outbound.write(contentsOf: output.messages)
                } catch {
                    return "the relay connection failed: \(error)"
                }
            }
            let deadline = ingest.nextDeadline
            if scheduled.map({ deadline < $0 }) ?? true {
                timer?.cancel()
                scheduled = deadline
                timer = Task {
                    try? await Task.sleep(until: deadline)
                    if !Task.isCancelled {
                        input.yield(.tick)
                    }
                }
            }
        }
        return "the gateway stopped"
    }

    private static func codec(_ media: NegotiatedMedia) -> RTPCodecParameters {
        RTPCodecParameters(
            payloadType: media.payloadType,
            name: media.codec == .h264 ? "H264" : "opus",
            clockRate: media.clockRate,
            channels: media.kind == .audio ? media.channels : nil,
            formatParameters: media.formatParameters.map(RTPCodecParameters.parseFormatParameters) ?? [:]
        )
    }

    private func connect(
        to upstream: GatewayRoute.Upstream,
        addresses: (source: SocketAddress?, destination: SocketAddress?)
    ) async throws -> NIOAsyncChannel<RTMPMessage, RTMPMessage> {
        let configuration = self.gateway.configuration
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.nanoseconds(configuration.connectTimeout.inNanoseconds))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        let header: String? = {
            guard upstream.sendsProxyHeader, let source = addresses.source, let destination = addresses.destination
            else {
                return nil
            }
            return ProxyHeader(source: source, destination: destination).line
        }()
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<RTMPMessage, RTMPMessage>> = {
            channel in
            channel.eventLoop.makeCompletedFuture {
                if let header {
                    try channel.pipeline.syncOperations.addHandler(ProxyHeaderWriter(header: header))
                }
                try channel.pipeline.syncOperations.addHandler(RTMPConnectionHandler(role: .client))
                return try NIOAsyncChannel<RTMPMessage, RTMPMessage>(wrappingChannelSynchronously: channel)
            }
        }
        if let address = configuration.upstreamAddress?(upstream.host, upstream.port) {
            return try await bootstrap.connect(to: address, channelInitializer: initializer)
        }
        return try await bootstrap.connect(host: upstream.host, port: upstream.port, channelInitializer: initializer)
    }
}

/// Writes a PROXY protocol header when the relay connection opens, before the RTMP handshake.
private final class ProxyHeaderWriter: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let header: String

    init(header: String) {
        self.header = header
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: self.header)), promise: nil)
        context.fireChannelActive()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Says a repeated problem at most once per interval: the first time at once, then once an interval has passed, with
/// how many times it happened in between. A value; time is passed in.
struct RateLimitedWarning: Sendable {
    let interval: Duration
    private var lastWarning: ContinuousClock.Instant?
    private var suppressed = 0

    init(interval: Duration) {
        self.interval = interval
    }

    /// Records one occurrence; returns how many were not said since the last warning when this one is to be said,
    /// nil when it is not.
    mutating func refused(at now: ContinuousClock.Instant) -> Int? {
        if let last = self.lastWarning, now - last < self.interval {
            self.suppressed += 1
            return nil
        }
        defer {
            self.lastWarning = now
            self.suppressed = 0
        }
        return self.suppressed
    }
}
