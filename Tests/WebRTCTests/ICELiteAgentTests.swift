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

import NIOCore
import Testing

@testable import WebRTC

private let localFragment = "LoCa"
private let localPassword = "local-password-for-tests-0"
private let peer = try! SocketAddress(ipAddress: "127.0.0.1", port: 40000)
private let otherPeer = try! SocketAddress(ipAddress: "127.0.0.1", port: 40001)
private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

/// A Binding request as a controlling full agent sends it (RFC 8445 §7.1.2).
func bindingRequest(
    username: String = "\(localFragment):ReMo",
    password: String = localPassword,
    useCandidate: Bool,
    transactionID: [UInt8] = (0..<12).map { _ in UInt8.random(in: 0...255) }
) -> [UInt8] {
    var attributes: [STUNMessage.Attribute] = [
        .init(type: STUNAttributeType.username, value: Array(username.utf8)),
        .init(type: STUNAttributeType.priority, value: [0x6E, 0x00, 0x01, 0xFF]),
        .init(type: STUNAttributeType.iceControlling, value: [1, 2, 3, 4, 5, 6, 7, 8]),
    ]
    if useCandidate { attributes.append(.init(type: STUNAttributeType.useCandidate, value: [])) }
    return STUNMessage(
        method: STUNMessage.bindingMethod,
        messageClass: .request,
        transactionID: transactionID,
        attributes: attributes
    ).encode(integrityPassword: password, fingerprint: true)
}

@Suite struct ICELiteAgentTests {
    func makeAgent(_ configuration: ICELiteAgent.Configuration = .init()) -> ICELiteAgent {
        ICELiteAgent(
            localUsernameFragment: localFragment,
            localPassword: localPassword,
            remoteUsernameFragment: "ReMo",
            now: start,
            configuration: configuration
        )
    }

    @Test func answersChecksAndTakesTheNomination() throws {
        var agent = self.makeAgent()
        let transactionID = [UInt8](repeating: 9, count: 12)
        guard
            case .respond(let response) = agent.receive(
                stun: bindingRequest(useCandidate: false, transactionID: transactionID),
                from: peer,
                now: start
            )
        else {
            Issue.record("no response")
            return
        }
        #expect(agent.state == .checking)
        #expect(agent.accepts(from: peer))
        #expect(!agent.accepts(from: otherPeer))
        #expect(STUNMessage.integrityIsValid(in: response, password: localPassword))
        #expect(STUNMessage.fingerprintIsValid(in: response))
        let decoded = try STUNMessage.decode(response)
        #expect(decoded.messageClass == .successResponse)
        #expect(decoded.transactionID == transactionID)
        let mapped = STUNMessage.decodeXORMappedAddress(
            decoded.attribute(STUNAttributeType.xorMappedAddress) ?? [],
            transactionID: transactionID
        )
        #expect(mapped?.address == [127, 0, 0, 1])
        #expect(mapped?.port == 40000)

        guard case .respond = agent.receive(stun: bindingRequest(useCandidate: true), from: peer, now: start) else {
            Issue.record("no response to the nomination")
            return
        }
        #expect(agent.state == .connected)
        #expect(agent.selectedAddress == peer)
    }

    @Test(arguments: [
        ("wrong password", bindingRequest(password: "another-password-entirely", useCandidate: true)),
        ("other session", bindingRequest(username: "OTHR:ReMo", useCandidate: true)),
        ("other remote", bindingRequest(username: "\(localFragment):Else", useCandidate: true)),
        ("no colon", bindingRequest(username: localFragment, useCandidate: true)),
    ])
    func refusesBadCredentials(_ name: String, request: [UInt8]) {
        var agent = self.makeAgent()
        guard case .drop(let error) = agent.receive(stun: request, from: peer, now: start) else {
            Issue.record("\(name) was answered")
            return
        }
        #expect(error.code == .integrityFailed)
        #expect(agent.state == .checking)
        #expect(!agent.accepts(from: peer))
    }

    @Test func refusesGarbageWithoutChangingState() {
        var agent = self.makeAgent()
        _ = agent.receive(stun: bindingRequest(useCandidate: true), from: peer, now: start)
        for garbage in [
            [UInt8](repeating: 0, count: 20), rfc5769Request, Array(bindingRequest(useCandidate: true).dropLast(4)),
        ] {
            guard case .drop = agent.receive(stun: garbage, from: otherPeer, now: start) else {
                Issue.record("garbage was answered")
                return
            }
        }
        #expect(agent.state == .connected)
        #expect(agent.selectedAddress == peer)
        #expect(!agent.accepts(from: otherPeer))
    }

    @Test func failsWhenNothingIsNominatedInTime() {
        var configuration = ICELiteAgent.Configuration()
        configuration.connectTimeout = .seconds(10)
        var agent = self.makeAgent(configuration)
        #expect(agent.tick(now: start + .seconds(10)) == .checking)
        guard case .failed(let error) = agent.tick(now: start + .seconds(11)) else {
            Issue.record("did not time out")
            return
        }
        #expect(error.code == .timeout)
    }

    @Test func consentExpiresWithoutChecks() {
        var configuration = ICELiteAgent.Configuration()
        configuration.consentTimeout = .seconds(30)
        var agent = self.makeAgent(configuration)
        _ = agent.receive(stun: bindingRequest(useCandidate: true), from: peer, now: start)
        // Checks every 20 seconds keep it alive past the connect timeout.
        for step in 1...5 {
            let now = start + .seconds(Int64(step * 20))
            #expect(agent.tick(now: now) == .connected)
            _ = agent.receive(stun: bindingRequest(useCandidate: false), from: peer, now: now)
        }
        #expect(agent.tick(now: start + .seconds(130)) == .connected)
        guard case .failed(let error) = agent.tick(now: start + .seconds(131)) else {
            Issue.record("consent did not expire")
            return
        }
        #expect(error.code == .timeout)
        guard case .drop = agent.receive(stun: bindingRequest(useCandidate: true), from: peer, now: start) else {
            Issue.record("a failed agent answered")
            return
        }
    }

    /// A publisher that checks only until it is connected (libnice, as in GStreamer's webrtcbin, unless its
    /// consent-freshness is on) is kept while its authenticated media arrives, and only from an address that passed a
    /// check; once both stop, the session times out.
    @Test func authenticatedTrafficKeepsTheSession() {
        var configuration = ICELiteAgent.Configuration()
        configuration.consentTimeout = .seconds(30)
        var agent = self.makeAgent(configuration)
        // Before a nomination, traffic counts for nothing.
        agent.receivedTraffic(from: peer, now: start)
        _ = agent.receive(stun: bindingRequest(useCandidate: true), from: peer, now: start)
        for step in 1...6 {
            let now = start + .seconds(Int64(step * 10))
            #expect(agent.tick(now: now) == .connected)
            agent.receivedTraffic(from: peer, now: now)
            // Another address, which never passed a check, refreshes nothing.
            agent.receivedTraffic(from: otherPeer, now: now + .seconds(29))
        }
        #expect(agent.tick(now: start + .seconds(90)) == .connected)
        guard case .failed(let error) = agent.tick(now: start + .seconds(91)) else {
            Issue.record("the session outlived its peer's last packet")
            return
        }
        #expect(error.code == .timeout)
        #expect("\(error)".contains("no media"))
    }

    @Test func remembersABoundedNumberOfAddresses() throws {
        var configuration = ICELiteAgent.Configuration()
        configuration.maximumRemoteAddresses = 3
        var agent = self.makeAgent(configuration)
        _ = agent.receive(stun: bindingRequest(useCandidate: true), from: peer, now: start)
        for port in 50000..<50010 {
            _ = agent.receive(
                stun: bindingRequest(useCandidate: false),
                from: try SocketAddress(ipAddress: "127.0.0.1", port: port),
                now: start
            )
        }
        #expect(agent.validatedAddresses.count == 3)
        // The nominated address is never the one evicted.
        #expect(agent.accepts(from: peer))
    }
}

@Suite struct SessionRouterTests {
    @Test func routesByFragmentThenByAddress() {
        var router = SessionRouter<Int>()
        let first = router.register(1, localUsernameFragment: "aaaa")
        let second = router.register(2, localUsernameFragment: "bbbb")
        let duplicate = router.register(3, localUsernameFragment: "aaaa")
        #expect(first)
        #expect(second)
        #expect(!duplicate)
        #expect(router.session(forUsername: "aaaa:remote") == 1)
        #expect(router.session(forUsername: "bbbb:remote") == 2)
        #expect(router.session(forUsername: "cccc:remote") == nil)
        #expect(router.session(forUsername: "aaaa") == nil)
        #expect(router.session(for: peer) == nil)
        router.bind(peer, to: 1)
        router.bind(otherPeer, to: 2)
        #expect(router.session(for: peer) == 1)
        #expect(router.session(for: otherPeer) == 2)
        // The latest check wins an address.
        router.bind(peer, to: 2)
        #expect(router.session(for: peer) == 2)
        router.remove(2)
        #expect(router.session(for: peer) == nil)
        #expect(router.session(for: otherPeer) == nil)
        #expect(router.session(forUsername: "bbbb:remote") == nil)
        #expect(router.count == 1)
        // Unknown sessions cannot claim addresses.
        router.bind(peer, to: 7)
        #expect(router.session(for: peer) == nil)
    }
}
