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

import LiveStreamModel
import NIOCore
import TimeSupport

/// What happens to an admitted connection before it is proxied: hold, retry, timeouts and refusal, as events in and
/// actions out, for ``GatewayConnectionHandler`` to perform.
///
/// The machine reads no clock and touches no channel: every event that depends on time takes `now`, and every timer
/// it wants comes back as a deadline in an action. The handler schedules the timer on its event loop and reports it
/// as an event when it fires; a timer whose moment has passed (the state moved on) is ignored, so the handler's
/// cancelling one is an economy, never a condition of being right. Events that come after the connection closed,
/// was refused or was proxied are ignored (a late connect still gets ``Action/closeUpstream``); none of them traps.
///
///     idle ─start─▶ connecting ─connected─▶ splicing ─spliced─▶ proxied
///     idle ─start─▶ waitingForRoute ─route ready─▶ connecting
///     connecting ─failed─▶ (requestingHold ─held─▶) retrying ─retry timer─▶ connecting or waitingForRoute
///     connecting ─connected─▶ relayHandshake ─completed─▶ splicing          (shared ingest port)
///     any state ─refusal or client gone─▶ closed   (proxied: only a relay that fails before answering the publish)
///
/// A connection is counted as held from admission (no upstream then) or from its first failed connect, until it is
/// proxied, refused or gone; the hold timeout runs from that first moment, however many waits and retries follow.
struct GatewayConnectionStateMachine {
    struct Configuration: Hashable, Sendable {
        /// How long a connection may be held in all.
        var holdTimeout: Duration
        /// How long connecting to the relay may take, and on the shared ingest port its RTMP handshake.
        var connectTimeout: Duration
        /// Whether the relay gets an RTMP handshake of the gateway's own before the client's bytes (a connection of
        /// the shared ingest port).
        var relayHandshake: Bool

        init(holdTimeout: Duration, connectTimeout: Duration, relayHandshake: Bool) {
            self.holdTimeout = holdTimeout
            self.connectTimeout = connectTimeout
            self.relayHandshake = relayHandshake
        }

        init(_ configuration: GatewayConfiguration, relayHandshake: Bool) {
            self.init(
                holdTimeout: configuration.holdTimeout,
                connectTimeout: configuration.connectTimeout,
                relayHandshake: relayHandshake
            )
        }
    }

    /// What the handler does next.
    enum Action: Hashable {
        case none
        /// Count the wait from here: schedule the hold timer at `holdTimer`, wait for the route to get an upstream,
        /// and say the connection is held.
        case startHolding(holdTimer: NIODeadline)
        /// Wait for the route to get an upstream again (the hold timer runs already).
        case waitForRoute
        /// Connect to the relay; report ``connectSucceeded(now:)`` or ``connectFailed(error:now:)``.
        case connect(GatewayRoute.Upstream)
        /// A connect failed before the connection was held: ask the gateway to count it as held, and report the
        /// answer with ``holdDecided(_:now:)``.
        case requestHold
        /// Schedule the retry timer at `deadline` (`delay` from now, for the log); `holdTimer`, when set, is the
        /// hold timer to schedule too (the connection is held from now).
        case scheduleRetry(at: NIODeadline, delay: Duration, connectError: String, holdTimer: NIODeadline?)
        /// Splice the client to the connected relay, counting it live and, if `releasingHold` is set, no longer
        /// held after that long; report ``spliced(now:)`` or ``spliceFailed(error:now:)``.
        case splice(releasingHold: Duration?)
        /// As ``splice(releasingHold:)``, but the relay gets the gateway's RTMP handshake first: schedule its
        /// timeout at `timeout`, and report ``relayHandshakeCompleted()``.
        case spliceWithRelayHandshake(releasingHold: Duration?, timeout: NIODeadline)
        /// The relay's handshake is done: replay what the client sent and complete the splice; report
        /// ``spliced(now:)`` or ``spliceFailed(error:now:)``.
        case completeRelayHandshake
        /// Proxied: step out of the pipeline; `heldFor` is how long the connection was held, if it was.
        case proxied(heldFor: Duration?)
        /// A relay connection came after the client left: close it.
        case closeUpstream
        /// Refuse the connection: stop everything pending, give back the hold after `releasingHold` if set, log and
        /// count the refusal, and tell the client why where it can hear it.
        case refuse(GatewayRefusal, releasingHold: Duration?)
        /// The client is gone: stop everything pending and give back the hold after `releasingHold` if set;
        /// `wasHeld` says it left while it waited (worth a log line).
        case clientLeft(wasHeld: Bool, releasingHold: Duration?)
    }

    private enum State: Hashable {
        case idle
        /// Held, waiting for a route update that gives the stream an upstream.
        case waitingForRoute
        /// Held after a failed connect, until the retry timer.
        case retrying
        /// Connecting to the relay; `holdExpired` once the hold timeout passed meanwhile, which makes this attempt
        /// the last.
        case connecting(holdExpired: Bool)
        /// A connect failed before the connection was held; the gateway decides whether it may be.
        case requestingHold(connectError: String)
        /// Shared ingest port: connected, the gateway's RTMP handshake with the relay under way.
        case relayHandshake
        /// Connected, the glue being put in place.
        case splicing
        case proxied
        case closed
    }

    private enum Hold: Hashable {
        case notHeld
        /// Counted as held since then.
        case held(since: NIODeadline)
        /// Was held since then, and no longer counts (live, refused or gone).
        case released(since: NIODeadline)
    }

    let configuration: Configuration
    private var state = State.idle
    private var hold: Hold
    /// Failed connects so far, for the retry's backoff. Never reset: a relay that keeps failing is retried at most
    /// every second until the hold timeout.
    private var failedConnects = 0

    /// - Parameter heldSince: when the gateway counted the connection as held, if it did when admitting it.
    init(configuration: Configuration, heldSince: NIODeadline?) {
        self.configuration = configuration
        self.hold = heldSince.map { .held(since: $0) } ?? .notHeld
    }

    /// Whether the client waits for its relay now (a route update or a retry), for the log.
    var isHeld: Bool {
        switch self.state {
        case .waitingForRoute, .retrying: true
        default: false
        }
    }

    /// The wait after the `failures`-th failed connect: 50 ms, 100 ms, ... up to 1 s. A restarting relay is back
    /// within a second or two. No jitter: the clients of one relay that fail together are few, and the relay's
    /// listener takes them in one accept loop.
    static func retryDelay(afterFailures failures: Int) -> Duration {
        Self.retryBackoff.nominalDelay(afterFailures: failures)
    }

    private static let retryBackoff = Backoff(initial: .milliseconds(50), maximum: .seconds(1), jitter: .none)

    // MARK: Events

    /// The connection is active (on the shared ingest port: routed): proxy at once if the route has an upstream,
    /// else hold.
    mutating func start(upstream: GatewayRoute.Upstream?, now: NIODeadline) -> Action {
        guard case .idle = self.state else {
            return .none
        }
        if let upstream {
            self.state = .connecting(holdExpired: false)
            return .connect(upstream)
        }
        self.state = .waitingForRoute
        let since: NIODeadline
        switch self.hold {
        case .held(let heldSince), .released(let heldSince):
            since = heldSince
        case .notHeld:
            // Admission holds every connection without an upstream; should it not have, the timeout still holds.
            since = now
        }
        return .startHolding(holdTimer: since + TimeAmount(self.configuration.holdTimeout))
    }

    /// The route wait ended: `route` is the route with an upstream, or `nil` when it was removed or suspended
    /// first; `current` is the route table's route for the stream now, and `client` the client's address.
    mutating func routeDecided(
        _ route: GatewayRoute?,
        current: GatewayRoute?,
        client: SocketAddress?,
        now: NIODeadline
    ) -> Action {
        guard case .waitingForRoute = self.state else {
            return .none
        }
        guard let route, let upstream = route.upstream else {
            return self.refuse(current?.suspended == true ? .suspended : .routeRemoved(whileHeld: true), now: now)
        }
        // The ranges may have changed while the client waited; the new route is the one that decides.
        guard let client, route.allowedSourceRanges.contains(where: { $0.contains(client) }) else {
            return self.refuse(.sourceRange, now: now)
        }
        self.state = .connecting(holdExpired: false)
        return .connect(upstream)
    }

    /// The hold timer fired.
    mutating func holdTimerFired(now: NIODeadline) -> Action {
        switch self.state {
        case .waitingForRoute, .retrying:
            return self.refuse(.holdTimeout(self.configuration.holdTimeout, connectError: nil), now: now)
        case .connecting:
            // The connect timeout decides this attempt; if it fails, there is no other.
            self.state = .connecting(holdExpired: true)
            return .none
        case .idle, .requestingHold, .relayHandshake, .splicing, .proxied, .closed:
            return .none
        }
    }

    /// Connecting to the relay failed. A relay that the route calls ready did not take the connection: it is
    /// restarting (local mode restarts a crashed relay; a pod is replaced) or the route is stale. The client is not
    /// refused for that: it is held like any client of a relay that is not ready, and the route is looked up again
    /// after a short, growing delay.
    mutating func connectFailed(error: String, now: NIODeadline) -> Action {
        guard case .connecting(let holdExpired) = self.state else {
            return .none
        }
        if holdExpired {
            return self.refuse(.holdTimeout(self.configuration.holdTimeout, connectError: error), now: now)
        }
        guard case .notHeld = self.hold else {
            return self.retry(after: error, now: now, holdTimer: nil)
        }
        self.state = .requestingHold(connectError: error)
        return .requestHold
    }

    /// The gateway's answer to ``Action/requestHold``: `nil` if the connection is held now, else why it cannot be.
    mutating func holdDecided(_ refusal: GatewayRefusal?, now: NIODeadline) -> Action {
        guard case .requestingHold(let error) = self.state else {
            return .none
        }
        if let refusal {
            return self.refuse(.upstreamUnreachable(error: error, cannotHold: refusal), now: now)
        }
        self.hold = .held(since: now)
        return self.retry(after: error, now: now, holdTimer: now + TimeAmount(self.configuration.holdTimeout))
    }

    /// The retry timer fired; `route` is the stream's route now.
    mutating func retryTimerFired(route: GatewayRoute?, now: NIODeadline) -> Action {
        guard case .retrying = self.state else {
            return .none
        }
        guard let route else {
            return self.refuse(.routeRemoved(whileHeld: true), now: now)
        }
        guard !route.suspended else {
            return self.refuse(.suspended, now: now)
        }
        guard let upstream = route.upstream else {
            self.state = .waitingForRoute
            return .waitForRoute
        }
        self.state = .connecting(holdExpired: false)
        return .connect(upstream)
    }

    /// The relay took the connection.
    mutating func connectSucceeded(now: NIODeadline) -> Action {
        guard case .connecting = self.state else {
            // The client left while we connected.
            return .closeUpstream
        }
        let released = self.releaseHold(now: now)
        guard self.configuration.relayHandshake else {
            self.state = .splicing
            return .splice(releasingHold: released)
        }
        self.state = .relayHandshake
        return .spliceWithRelayHandshake(
            releasingHold: released,
            timeout: now + TimeAmount(self.configuration.connectTimeout)
        )
    }

    /// Shared ingest port: the relay completed the gateway's RTMP handshake.
    mutating func relayHandshakeCompleted() -> Action {
        guard case .relayHandshake = self.state else {
            return .none
        }
        self.state = .splicing
        return .completeRelayHandshake
    }

    /// Shared ingest port: the relay's handshake timer fired.
    mutating func relayHandshakeTimerFired(now: NIODeadline) -> Action {
        guard case .relayHandshake = self.state else {
            return .none
        }
        return self.refuse(.relayHandshakeTimeout(self.configuration.connectTimeout), now: now)
    }

    /// Shared ingest port: the relay closed or broke RTMP before it answered the publish. Proxied too the encoder
    /// still waits for that answer: it hears why before the glue closes its connection.
    mutating func relayFailed(_ refusal: GatewayRefusal, now: NIODeadline) -> Action {
        switch self.state {
        case .relayHandshake, .splicing, .proxied:
            return self.refuse(refusal, now: now)
        case .idle, .waitingForRoute, .retrying, .connecting, .requestingHold, .closed:
            // Refused already (which closed the relay's connection).
            return .none
        }
    }

    /// The glue is in place.
    mutating func spliced(now: NIODeadline) -> Action {
        guard case .splicing = self.state else {
            return .none
        }
        self.state = .proxied
        switch self.hold {
        case .released(let since), .held(let since):
            return .proxied(heldFor: Self.duration(from: since, to: now))
        case .notHeld:
            return .proxied(heldFor: nil)
        }
    }

    /// The glue could not be put in place.
    mutating func spliceFailed(error: String, now: NIODeadline) -> Action {
        switch self.state {
        case .relayHandshake, .splicing:
            return self.refuse(.proxySetupFailed(error: error), now: now)
        case .idle, .waitingForRoute, .retrying, .connecting, .requestingHold, .proxied, .closed:
            return .none
        }
    }

    /// The client's connection closed.
    mutating func channelInactive(now: NIODeadline) -> Action {
        let wasHeld = self.isHeld
        switch self.state {
        case .closed, .proxied:
            return .none
        case .idle, .waitingForRoute, .retrying, .connecting, .requestingHold, .relayHandshake, .splicing:
            self.state = .closed
            return .clientLeft(wasHeld: wasHeld, releasingHold: self.releaseHold(now: now))
        }
    }

    /// The handler left the pipeline. Before it started, that is NIO closing a connection whose listener closed
    /// while it was being set up, which happens when its route is removed (`routeExists` is false then) or the
    /// gateway stops: that is a refusal, and says so.
    mutating func handlerRemoved(routeExists: Bool, now: NIODeadline) -> Action {
        switch self.state {
        case .idle:
            return self.refuse(routeExists ? .shuttingDown : .routeRemoved(whileHeld: false), now: now)
        case .closed, .proxied:
            return .none
        case .waitingForRoute, .retrying, .connecting, .requestingHold, .relayHandshake, .splicing:
            self.state = .closed
            return .clientLeft(wasHeld: false, releasingHold: self.releaseHold(now: now))
        }
    }

    // MARK: Helpers

    private mutating func retry(after error: String, now: NIODeadline, holdTimer: NIODeadline?) -> Action {
        self.failedConnects += 1
        let delay = Self.retryDelay(afterFailures: self.failedConnects)
        self.state = .retrying
        return .scheduleRetry(at: now + TimeAmount(delay), delay: delay, connectError: error, holdTimer: holdTimer)
    }

    private mutating func refuse(_ refusal: GatewayRefusal, now: NIODeadline) -> Action {
        self.state = .closed
        return .refuse(refusal, releasingHold: self.releaseHold(now: now))
    }

    /// Gives back the hold, if it is still counted, and says how long it was held.
    private mutating func releaseHold(now: NIODeadline) -> Duration? {
        guard case .held(let since) = self.hold else {
            return nil
        }
        self.hold = .released(since: since)
        return Self.duration(from: since, to: now)
    }

    private static func duration(from start: NIODeadline, to end: NIODeadline) -> Duration {
        .nanoseconds(max(0, (end - start).nanoseconds))
    }
}
