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

import IngestTLS
import LiveStreamModel
import NIOCore
import Testing

@testable import Gateway

/// The connection state machine without sockets or clocks: every instant is a `NIODeadline` the test makes up.
@Suite("GatewayConnectionStateMachine")
struct GatewayConnectionStateMachineTests {
    typealias Machine = GatewayConnectionStateMachine

    static let holdTimeout: Duration = .seconds(30)
    static let connectTimeout: Duration = .seconds(5)
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    static let relay = GatewayRoute.Upstream(host: "10.0.0.7", port: 1935)
    static let client = try! SocketAddress(ipAddress: "127.0.0.1", port: 40000)

    static func machine(held: Bool = true, relayHandshake: Bool = false) -> Machine {
        Machine(
            configuration: .init(
                holdTimeout: Self.holdTimeout,
                connectTimeout: Self.connectTimeout,
                relayHandshake: relayHandshake
            ),
            heldSince: held ? Self.start : nil
        )
    }

    static func at(_ offset: Duration) -> NIODeadline {
        Self.start + TimeAmount(offset)
    }

    static func route(
        upstream: GatewayRoute.Upstream? = Self.relay,
        ranges: [String] = ["127.0.0.0/8"],
        suspended: Bool = false
    ) throws -> GatewayRoute {
        GatewayRoute(
            stream: StreamID(namespace: "streams", name: "alice"),
            listenPort: 1935,
            upstream: upstream,
            allowedSourceRanges: try ranges.map(IPRange.init),
            suspended: suspended
        )
    }

    /// A held machine after a route update gave it the relay.
    static func connectingAfterHold() throws -> Machine {
        var machine = Self.machine()
        _ = machine.start(upstream: nil, now: Self.start)
        let route = try Self.route()
        #expect(
            machine.routeDecided(route, current: route, client: Self.client, now: Self.at(.seconds(2)))
                == .connect(Self.relay)
        )
        return machine
    }

    // MARK: Hold, relay ready, connected

    @Test("A held connection waits for its route, connects when the relay is ready, and is proxied")
    func holdThenRelayReadyThenConnected() throws {
        var machine = Self.machine()
        #expect(machine.start(upstream: nil, now: Self.start) == .startHolding(holdTimer: Self.at(Self.holdTimeout)))
        #expect(machine.isHeld)
        let route = try Self.route()
        #expect(
            machine.routeDecided(route, current: route, client: Self.client, now: Self.at(.seconds(2)))
                == .connect(Self.relay)
        )
        #expect(!machine.isHeld)
        #expect(machine.connectSucceeded(now: Self.at(.seconds(3))) == .splice(releasingHold: .seconds(3)))
        #expect(machine.spliced(now: Self.at(.milliseconds(3100))) == .proxied(heldFor: .milliseconds(3100)))
        // Proxied: the hold timer, a late route decision and the client's close change nothing.
        #expect(machine.holdTimerFired(now: Self.at(Self.holdTimeout)) == .none)
        #expect(machine.channelInactive(now: Self.at(.seconds(40))) == .none)
        #expect(machine.handlerRemoved(routeExists: true, now: Self.at(.seconds(40))) == .none)
    }

    @Test("A ready route is proxied at once, and was never held")
    func readyAtOnce() {
        var machine = Self.machine(held: false)
        #expect(machine.start(upstream: Self.relay, now: Self.start) == .connect(Self.relay))
        #expect(machine.start(upstream: Self.relay, now: Self.start) == .none)
        #expect(machine.connectSucceeded(now: Self.at(.milliseconds(2))) == .splice(releasingHold: nil))
        #expect(machine.spliced(now: Self.at(.milliseconds(3))) == .proxied(heldFor: nil))
    }

    @Test("Shared ingest port: the relay's RTMP handshake comes between the connect and the splice, with a timeout")
    func relayHandshake() throws {
        var machine = Self.machine(relayHandshake: true)
        _ = machine.start(upstream: nil, now: Self.start)
        _ = machine.routeDecided(
            try Self.route(),
            current: nil,
            client: Self.client,
            now: Self.at(.seconds(1))
        )
        #expect(
            machine.connectSucceeded(now: Self.at(.seconds(2)))
                == .spliceWithRelayHandshake(releasingHold: .seconds(2), timeout: Self.at(.seconds(7)))
        )
        #expect(machine.spliced(now: Self.at(.seconds(2))) == .none, "not before the handshake")
        #expect(machine.relayHandshakeCompleted() == .completeRelayHandshake)
        #expect(machine.relayHandshakeCompleted() == .none)
        #expect(machine.relayHandshakeTimerFired(now: Self.at(.seconds(7))) == .none)
        #expect(machine.spliced(now: Self.at(.milliseconds(2500))) == .proxied(heldFor: .milliseconds(2500)))
        // The encoder still waits for the relay's answer to its publish: a relay that closes now is a refusal.
        #expect(
            machine.relayFailed(.relayClosed, now: Self.at(.seconds(3))) == .refuse(.relayClosed, releasingHold: nil)
        )
        #expect(machine.relayFailed(.relayClosed, now: Self.at(.seconds(3))) == .none)
    }

    @Test("Shared ingest port: a relay that does not complete its handshake in time is a refusal")
    func relayHandshakeTimeout() {
        var machine = Self.machine(held: false, relayHandshake: true)
        _ = machine.start(upstream: Self.relay, now: Self.start)
        _ = machine.connectSucceeded(now: Self.start)
        #expect(
            machine.relayHandshakeTimerFired(now: Self.at(Self.connectTimeout))
                == .refuse(.relayHandshakeTimeout(Self.connectTimeout), releasingHold: nil)
        )
        #expect(machine.relayHandshakeCompleted() == .none)
    }

    // MARK: Timeouts

    @Test("A connection held past the hold timeout is refused, and gives its hold back")
    func holdTimeout() {
        var machine = Self.machine()
        _ = machine.start(upstream: nil, now: Self.start)
        #expect(
            machine.holdTimerFired(now: Self.at(Self.holdTimeout))
                == .refuse(.holdTimeout(Self.holdTimeout, connectError: nil), releasingHold: Self.holdTimeout)
        )
        #expect(machine.holdTimerFired(now: Self.at(Self.holdTimeout)) == .none)
    }

    @Test("The hold timeout during a connect leaves that attempt the last: its failure is the refusal")
    func holdTimeoutWhileConnecting() throws {
        var machine = try Self.connectingAfterHold()
        #expect(machine.holdTimerFired(now: Self.at(Self.holdTimeout)) == .none)
        #expect(
            machine.connectFailed(error: "connection refused", now: Self.at(.seconds(31)))
                == .refuse(
                    .holdTimeout(Self.holdTimeout, connectError: "connection refused"),
                    releasingHold: .seconds(31)
                )
        )
    }

    @Test("The hold timeout during a connect that then succeeds changes nothing")
    func holdTimeoutWhileConnectingThenConnected() throws {
        var machine = try Self.connectingAfterHold()
        _ = machine.holdTimerFired(now: Self.at(Self.holdTimeout))
        #expect(machine.connectSucceeded(now: Self.at(.seconds(31))) == .splice(releasingHold: .seconds(31)))
    }

    // MARK: Retries

    @Test("The retry delay grows from 50 ms to 1 s and stays there")
    func retryBackoff() {
        let delays = (1...8).map { Machine.retryDelay(afterFailures: $0) }
        #expect(delays == [50, 100, 200, 400, 800, 1000, 1000, 1000].map { Duration.milliseconds($0) })
    }

    @Test("A relay that does not take the connection: held from then on, retried with backoff, then proxied")
    func retriesWithBackoff() throws {
        var machine = Self.machine(held: false)
        _ = machine.start(upstream: Self.relay, now: Self.start)
        // Not held yet: the gateway is asked to hold it.
        #expect(machine.connectFailed(error: "refused", now: Self.at(.milliseconds(10))) == .requestHold)
        #expect(
            machine.holdDecided(nil, now: Self.at(.milliseconds(10)))
                == .scheduleRetry(
                    at: Self.at(.milliseconds(60)),
                    delay: .milliseconds(50),
                    connectError: "refused",
                    holdTimer: Self.at(.milliseconds(10) + Self.holdTimeout)
                )
        )
        #expect(machine.isHeld)
        // The retry finds the relay again; it fails again; the delay doubles, and the hold timer is not restarted.
        let route = try Self.route()
        #expect(machine.retryTimerFired(route: route, now: Self.at(.milliseconds(60))) == .connect(Self.relay))
        #expect(
            machine.connectFailed(error: "refused", now: Self.at(.milliseconds(70)))
                == .scheduleRetry(
                    at: Self.at(.milliseconds(170)),
                    delay: .milliseconds(100),
                    connectError: "refused",
                    holdTimer: nil
                )
        )
        // The relay has no endpoint now: wait for the route like any held connection.
        #expect(
            machine.retryTimerFired(route: try Self.route(upstream: nil), now: Self.at(.milliseconds(170)))
                == .waitForRoute
        )
        #expect(machine.retryTimerFired(route: route, now: Self.at(.milliseconds(170))) == .none)
        #expect(
            machine.routeDecided(route, current: route, client: Self.client, now: Self.at(.seconds(1)))
                == .connect(Self.relay)
        )
        #expect(machine.connectSucceeded(now: Self.at(.seconds(2))) == .splice(releasingHold: .milliseconds(1990)))
        #expect(machine.spliced(now: Self.at(.seconds(2))) == .proxied(heldFor: .milliseconds(1990)))
    }

    @Test("A held connection whose relay keeps failing is refused at the hold timeout, between retries")
    func holdTimeoutWhileRetrying() throws {
        var machine = try Self.connectingAfterHold()
        _ = machine.connectFailed(error: "refused", now: Self.at(.seconds(3)))
        #expect(
            machine.holdTimerFired(now: Self.at(Self.holdTimeout))
                == .refuse(.holdTimeout(Self.holdTimeout, connectError: nil), releasingHold: Self.holdTimeout)
        )
        #expect(machine.retryTimerFired(route: try Self.route(), now: Self.at(.seconds(31))) == .none)
    }

    // MARK: Refusals

    @Test("A connect that fails when the gateway cannot hold the connection is refused with both reasons")
    func cannotHold() {
        var machine = Self.machine(held: false)
        _ = machine.start(upstream: Self.relay, now: Self.start)
        _ = machine.connectFailed(error: "refused", now: Self.start)
        let refusal = GatewayRefusal.upstreamUnreachable(error: "refused", cannotHold: .heldPerStreamLimit(8))
        #expect(machine.holdDecided(.heldPerStreamLimit(8), now: Self.start) == .refuse(refusal, releasingHold: nil))
        #expect(
            refusal.reason
                == "cannot connect to the relay (refused) and cannot hold the connection: held-per-stream limit (8) reached"
        )
        #expect(refusal.metricLabel == "upstream_unreachable")
    }

    @Test("A held connection's route that is removed, suspended or narrowed is a refusal")
    func routeChangedWhileHeld() throws {
        let cases: [(route: GatewayRoute?, current: GatewayRoute?, refusal: GatewayRefusal)] = [
            (nil, nil, .routeRemoved(whileHeld: true)),
            (nil, try Self.route(upstream: nil, suspended: true), .suspended),
            (try Self.route(ranges: ["10.0.0.0/8"]), nil, .sourceRange),
        ]
        for (route, current, refusal) in cases {
            var machine = Self.machine()
            _ = machine.start(upstream: nil, now: Self.start)
            #expect(
                machine.routeDecided(route, current: current, client: Self.client, now: Self.at(.seconds(4)))
                    == .refuse(refusal, releasingHold: .seconds(4))
            )
        }
    }

    @Test("A retry that finds the route removed or suspended is a refusal")
    func routeChangedWhileRetrying() throws {
        let cases: [(GatewayRoute?, GatewayRefusal)] = [
            (nil, .routeRemoved(whileHeld: true)), (try Self.route(suspended: true), .suspended),
        ]
        for (route, refusal) in cases {
            var machine = try Self.connectingAfterHold()
            _ = machine.connectFailed(error: "refused", now: Self.at(.seconds(3)))
            #expect(
                machine.retryTimerFired(route: route, now: Self.at(.seconds(4)))
                    == .refuse(refusal, releasingHold: .seconds(4))
            )
        }
    }

    @Test("A splice that cannot be set up is a refusal")
    func spliceFailed() {
        var machine = Self.machine(held: false)
        _ = machine.start(upstream: Self.relay, now: Self.start)
        _ = machine.connectSucceeded(now: Self.start)
        #expect(
            machine.spliceFailed(error: "boom", now: Self.start)
                == .refuse(.proxySetupFailed(error: "boom"), releasingHold: nil)
        )
        #expect(machine.spliced(now: Self.start) == .none)
    }

    @Test("A handler removed before it started is refused: the route went away, or the gateway is stopping")
    func removedBeforeStart() {
        for routeExists in [false, true] {
            var machine = Self.machine()
            #expect(
                machine.handlerRemoved(routeExists: routeExists, now: Self.at(.seconds(1)))
                    == .refuse(
                        routeExists ? .shuttingDown : .routeRemoved(whileHeld: false),
                        releasingHold: .seconds(1)
                    )
            )
            #expect(machine.start(upstream: nil, now: Self.at(.seconds(1))) == .none)
        }
    }

    static let everyRefusal: [(GatewayRefusal, label: String)] = [
        (.noRoute, "no_route"),
        (.suspended, "suspended"),
        (.sourceRange, "source_range"),
        (.unknownKey(app: "live"), "unknown_key"),
        (.heldPerStreamLimit(8), "held_per_stream_limit"),
        (.heldTotalLimit(64), "held_total_limit"),
        (.holdTimeout(.seconds(30), connectError: nil), "hold_timeout"),
        (.holdTimeout(.seconds(30), connectError: "refused"), "hold_timeout"),
        (.upstreamUnreachable(error: "refused", cannotHold: .heldTotalLimit(1)), "upstream_unreachable"),
        (.routeRemoved(whileHeld: true), "route_removed"),
        (.routeRemoved(whileHeld: false), "route_removed"),
        (.shuttingDown, "shutting_down"),
        (.proxySetupFailed(error: "boom"), "proxy_setup"),
        (.relayHandshakeTimeout(.seconds(5)), "relay_handshake_timeout"),
        (.relayClosed, "relay_closed"),
        (.relayProtocolError(error: "bad chunk"), "rtmp_error"),
        (.clientProtocolError(error: "bad version"), "rtmp_error"),
        (.setupTimeout(.seconds(10)), "rtmp_error"),
        (.tls(.noCertificate(hint: "give one")), "tls_without_certificate"),
        (.tls(.handshakeFailed(error: "bad cert")), "tls_handshake"),
    ]

    @Test("Every refusal has its metric label, a reason for the log and a message for the encoder")
    func refusalLabels() {
        for (refusal, label) in Self.everyRefusal {
            #expect(refusal.metricLabel == label, "\(refusal)")
            #expect(!refusal.reason.isEmpty)
            #expect(refusal.encoderMessage.hasSuffix("."), "\(refusal)")
        }
    }

    @Test("The log reasons and encoder messages that tests and users know stay as they were")
    func refusalTexts() {
        #expect(
            GatewayRefusal.holdTimeout(.milliseconds(300), connectError: nil).reason
                == "hold timeout: the relay was not ready within 0.3 seconds"
        )
        #expect(
            GatewayRefusal.heldTotalLimit(1).encoderMessage
                == "The stream's relay is not available: held-total limit (1) reached."
        )
        #expect(GatewayRefusal.suspended.encoderMessage == "The stream is offline: it is suspended.")
        #expect(GatewayRefusal.unknownKey(app: "live").reason == "unknown stream key for application live")
        #expect(
            GatewayRefusal.tls(.noCertificate(hint: "hint")).reason == "TLS client (rtmps://) but no certificate: hint"
        )
    }

    // MARK: The client leaves; events after the end

    @Test("A held client that leaves gives its hold back and is said to have left while held")
    func clientLeavesWhileHeld() {
        var machine = Self.machine()
        _ = machine.start(upstream: nil, now: Self.start)
        #expect(
            machine.channelInactive(now: Self.at(.seconds(5))) == .clientLeft(wasHeld: true, releasingHold: .seconds(5))
        )
    }

    @Test("A client that leaves while its connect is under way: the relay's connection is closed when it comes")
    func clientLeavesWhileConnecting() {
        var machine = Self.machine(held: false)
        _ = machine.start(upstream: Self.relay, now: Self.start)
        #expect(machine.channelInactive(now: Self.start) == .clientLeft(wasHeld: false, releasingHold: nil))
        #expect(machine.connectSucceeded(now: Self.start) == .closeUpstream)
        #expect(machine.connectFailed(error: "refused", now: Self.start) == .none)
    }

    @Test("Every event after a refusal is ignored, and none traps")
    func eventsAfterClose() throws {
        var machine = Self.machine(relayHandshake: true)
        _ = machine.start(upstream: nil, now: Self.start)
        _ = machine.holdTimerFired(now: Self.at(Self.holdTimeout))
        let later = Self.at(.seconds(60))
        let route = try Self.route()
        #expect(machine.start(upstream: Self.relay, now: later) == .none)
        #expect(machine.routeDecided(route, current: route, client: Self.client, now: later) == .none)
        #expect(machine.holdTimerFired(now: later) == .none)
        #expect(machine.connectFailed(error: "refused", now: later) == .none)
        #expect(machine.holdDecided(nil, now: later) == .none)
        #expect(machine.retryTimerFired(route: route, now: later) == .none)
        #expect(machine.connectSucceeded(now: later) == .closeUpstream)
        #expect(machine.relayHandshakeCompleted() == .none)
        #expect(machine.relayHandshakeTimerFired(now: later) == .none)
        #expect(machine.relayFailed(.relayClosed, now: later) == .none)
        #expect(machine.spliced(now: later) == .none)
        #expect(machine.spliceFailed(error: "boom", now: later) == .none)
        #expect(machine.channelInactive(now: later) == .none)
        #expect(machine.handlerRemoved(routeExists: true, now: later) == .none)
        #expect(!machine.isHeld)
    }
}
