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

import Logging
import NIOCore
import NIOPosix
import Testing

@testable import WebRTC

/// What Debian's whip-client PATCHes (its `whip_send_candidates`): credentials at session level, a stand-in m= line
/// with the bundle's first mid, webrtcbin's candidates and the end.
private let whipClientFragment =
    [
        "a=ice-ufrag:Qx7b",
        "a=ice-pwd:k9n2J+/pQ0rS1tU2vW3xY4zA",
        "m=audio 9 RTP/AVP 0",
        "a=mid:audio0",
        "a=candidate:1 1 UDP 2015363327 192.0.2.7 43110 typ host",
        "a=candidate:2 1 TCP 1015021823 192.0.2.7 9 typ host tcptype active",
        "a=candidate:3 1 UDP 1679819007 198.51.100.4 43110 typ srflx raddr 192.0.2.7 rport 43110",
        "a=end-of-candidates",
    ].joined(separator: "\r\n") + "\r\n"

/// RFC 9725 §4.3.2's shape, a browser's: credentials in the media section, an mDNS host candidate.
private let browserFragment =
    [
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:0",
        "a=ice-ufrag:Qx7b",
        "a=ice-pwd:k9n2J+/pQ0rS1tU2vW3xY4zA",
        "a=candidate:1387637174 1 udp 2122260223 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 61764 typ host generation 0 "
            + "ufrag Qx7b network-id 1",
    ].joined(separator: "\n") + "\n"

private let offered = ICECredentials(usernameFragment: "Qx7b", password: "k9n2J+/pQ0rS1tU2vW3xY4zA")

@Suite struct TrickleICEFragmentTests {
    @Test func readsWhipClientsFragment() throws {
        let fragment = try TrickleICEFragment(parsing: whipClientFragment)
        #expect(fragment.credentials == offered)
        #expect(fragment.candidates.count == 3)
        #expect(fragment.candidates[0].address == "192.0.2.7")
        #expect(fragment.candidates[0].port == 43110)
        #expect(fragment.candidates[1].transport == "TCP")
        #expect(fragment.candidates[2].type == "srflx")
        #expect(fragment.endOfCandidates)
        #expect(fragment.mids == ["audio0"])
        #expect(!fragment.restarts(from: offered))
    }

    @Test func readsABrowsersFragment() throws {
        let fragment = try TrickleICEFragment(parsing: browserFragment)
        #expect(fragment.credentials == offered)
        #expect(fragment.candidates.first?.address.hasSuffix(".local") == true)
        #expect(fragment.candidates.first?.transport == "UDP")
        #expect(!fragment.endOfCandidates)
        #expect(!fragment.restarts(from: offered))
    }

    @Test func restartIsOtherCredentials() throws {
        let restart = try TrickleICEFragment(
            parsing: "a=ice-ufrag:NeW1\r\na=ice-pwd:aNewPasswordOf22Chars+/\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
        )
        #expect(restart.restarts(from: offered))
        #expect(restart.credentials?.usernameFragment == "NeW1")
        #expect(!"\(restart.credentials!)".contains("aNewPassword"), "a description shows no password")
        // Only candidates: the current ICE session's.
        let bare = try TrickleICEFragment(parsing: "a=candidate:1 1 UDP 1 192.0.2.7 5000 typ host\r\n")
        #expect(!bare.restarts(from: offered))
        #expect(bare.credentials == nil)
    }

    @Test(arguments: [
        ("v=0\r\na=ice-ufrag:Qx7b\r\n", "v= line"),
        ("a=candidate:1 1 UDP 1 192.0.2.7 5000\r\n", "fewer than 8"),
        ("a=candidate:1 1 SCTP 1 192.0.2.7 5000 typ host\r\n", "neither UDP nor TCP"),
        ("a=candidate:1 1 UDP 99999999999 192.0.2.7 5000 typ host\r\n", "priority"),
        ("a=candidate:1 1 UDP 1 192.0.2.7 70000 typ host\r\n", "port"),
        ("a=candidate:1 1 UDP 1 <script> 5000 typ host\r\n", "address"),
        ("a=candidate:1 0 UDP 1 192.0.2.7 5000 typ host\r\n", "component"),
        ("a=candidate:1 1 UDP 1 192.0.2.7 5000 type host\r\n", "typ"),
        ("a=candidate:f!o 1 UDP 1 192.0.2.7 5000 typ host\r\n", "foundation"),
        ("a=ice-ufrag:Qx7b\r\nm=audio 9 RTP/AVP 0\r\na=ice-ufrag:Othr\r\n", "two different a=ice-ufrag"),
        ("a=ice-ufrag:a b\r\n", "a=ice-ufrag"),
        ("a=ice-pwd:short\r\n", "a=ice-pwd"),
        ("garbage\r\n", "<type>=<value>"),
    ])
    func refusesMalformedFragments(_ text: String, reason: String) {
        #expect {
            try TrickleICEFragment(parsing: text)
        } throws: { error in
            guard let error = error as? WebRTCError else { return false }
            return error.code == .malformedSDP && error.message.contains(reason)
        }
    }

    @Test func limitsWhatAPeerSends() {
        var limits = TrickleICEFragment.Limits()
        limits.maximumCandidates = 4
        let many = (0..<5).map { "a=candidate:\($0) 1 UDP 1 192.0.2.7 \(5000 + $0) typ host" }.joined(separator: "\n")
        #expect { try TrickleICEFragment(parsing: many, limits: limits) } throws: {
            ($0 as? WebRTCError)?.code == .limitExceeded
        }
        let large = String(repeating: "a=x\r\n", count: 4000)
        #expect { try TrickleICEFragment(parsing: large) } throws: { ($0 as? WebRTCError)?.code == .limitExceeded }
    }

    /// Our answer to a restart reads back as a fragment with our credentials and candidates.
    @Test func answerReadsBack() throws {
        let ours = ICECredentials(usernameFragment: "LoCa", password: "localPasswordForTests0123")
        let media = try WHIPOffer(parsing: browserOffer()).media
        let text = TrickleICEFragment.answer(
            credentials: ours,
            candidates: [
                ICECandidate(address: "192.0.2.1", port: 40000),
                .init(address: "192.0.2.1", port: 40001, transport: .tcp),
            ],
            media: media
        )
        #expect(text.hasPrefix("a=ice-lite\r\n"))
        #expect(text.contains("a=group:BUNDLE 0 1\r\n"))
        let fragment = try TrickleICEFragment(parsing: text)
        #expect(fragment.credentials == ours)
        #expect(fragment.candidates.map(\.port) == [40000, 40001])
        #expect(fragment.endOfCandidates)
        #expect(fragment.mids == [media[0].mid])
    }
}

@Suite struct ICERestartTests {
    private let peer = try! SocketAddress(ipAddress: "127.0.0.1", port: 40000)
    private let newPeer = try! SocketAddress(ipAddress: "127.0.0.1", port: 40002)
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func agentTakesNewCredentialsAndKeepsThePair() {
        var configuration = ICELiteAgent.Configuration()
        configuration.consentTimeout = .seconds(30)
        var agent = ICELiteAgent(
            localUsernameFragment: "LoCa",
            localPassword: "local-password-for-tests-0",
            remoteUsernameFragment: "ReMo",
            now: self.start,
            configuration: configuration
        )
        guard case .respond = agent.receive(stun: bindingRequest(useCandidate: true), from: self.peer, now: self.start)
        else {
            Issue.record("the nomination was not answered")
            return
        }
        let restarted = agent.restart(
            localUsernameFragment: "NeWl",
            localPassword: "new-local-password-for-t",
            remoteUsernameFragment: "NeWr",
            now: self.start + .seconds(20)
        )
        #expect(restarted)
        // The old credentials no longer pass; the pair in use still carries DTLS and SRTP.
        guard
            case .drop(let error) = agent.receive(
                stun: bindingRequest(useCandidate: false),
                from: self.peer,
                now: self.start
            )
        else {
            Issue.record("a check with the old credentials was answered")
            return
        }
        #expect(error.code == .integrityFailed)
        #expect(agent.accepts(from: self.peer))
        #expect(agent.state == .connected)
        // A full consent timeout from the restart to check under the new credentials.
        #expect(agent.tick(now: self.start + .seconds(49)) == .connected)
        let check = bindingRequest(username: "NeWl:NeWr", password: "new-local-password-for-t", useCandidate: true)
        guard case .respond = agent.receive(stun: check, from: self.newPeer, now: self.start + .seconds(49)) else {
            Issue.record("a check with the new credentials was not answered")
            return
        }
        #expect(agent.selectedAddress == self.newPeer)
        #expect(agent.tick(now: self.start + .seconds(78)) == .connected)
        guard case .failed = agent.tick(now: self.start + .seconds(80)) else {
            Issue.record("consent did not expire")
            return
        }
        let failed = agent.restart(
            localUsernameFragment: "a",
            localPassword: "b",
            remoteUsernameFragment: nil,
            now: self.start
        )
        #expect(!failed, "a failed session does not restart")
    }

    @Test func routerRekeysASession() {
        var router = SessionRouter<Int>()
        let registered = [
            router.register(1, localUsernameFragment: "aaaa"), router.register(2, localUsernameFragment: "bbbb"),
        ]
        #expect(registered == [true, true])
        router.bind(self.peer, to: 1)
        let rekeyed = router.rekey(1, localUsernameFragment: "cccc")
        #expect(rekeyed)
        #expect(router.session(forUsername: "aaaa:r") == nil)
        #expect(router.session(forUsername: "cccc:r") == 1)
        #expect(router.session(for: self.peer) == 1, "the addresses stay the session's")
        let taken = router.rekey(1, localUsernameFragment: "bbbb")
        #expect(!taken, "another session's fragment")
        #expect(router.session(forUsername: "bbbb:r") == 2)
        let unknown = router.rekey(3, localUsernameFragment: "dddd")
        #expect(!unknown, "an unknown session")
        #expect(router.count == 2)
    }

    /// Over the transport's UDP socket: after a restart a check with the old fragment goes unanswered and one with
    /// the new credentials is answered; the statistics count the restart.
    @Test(.timeLimit(.minutes(1)))
    func transportRestartsASession() async throws {
        let transport = try await WebRTCTransport.bind(
            configuration: WebRTCTransportConfiguration(host: "127.0.0.1", port: 0),
            logger: Logger(label: "restart-test") { _ in SwiftLogNoOpLogHandler() }
        )
        do {
            let session = try await transport.register(offer: browserOffer())
            #expect(session.offeredCredentials == offered)
            let local = try #require(Self.credentials(in: session.answer))
            try await withUDPPeer { peer in
                let first = try await peer.check(
                    bindingRequest(
                        username: "\(local.usernameFragment):Qx7b",
                        password: local.password,
                        useCandidate: true
                    ),
                    to: transport.localAddress
                )
                #expect(first)
                let new = session.restartICE(remoteUsernameFragment: "NeWr")
                #expect(new.usernameFragment != local.usernameFragment)
                #expect(new.password != local.password)
                // Same event loop, in order: the restart has happened when the counters are read.
                #expect(await session.statistics()?.iceRestarts == 1)
                #expect(await session.statistics()?.answeredChecks == 0)
                // Sent first, so its answer (were there one) would arrive first.
                try await peer.send(
                    bindingRequest(
                        username: "\(local.usernameFragment):Qx7b",
                        password: local.password,
                        useCandidate: false
                    ),
                    to: transport.localAddress
                )
                let second = try await peer.check(
                    bindingRequest(
                        username: "\(new.usernameFragment):NeWr",
                        password: new.password,
                        useCandidate: true
                    ),
                    to: transport.localAddress
                )
                #expect(second, "the first answer after the restart is the new check's")
                #expect(await session.statistics()?.answeredChecks == 1)
            }
            session.close()
            for try await _ in session.events {}
        } catch {
            await transport.close()
            throw error
        }
        await transport.close()
    }

    static func credentials(in answer: String) -> ICECredentials? {
        let lines = answer.split(separator: "\r\n")
        guard let ufrag = lines.first(where: { $0.hasPrefix("a=ice-ufrag:") })?.dropFirst(12),
            let password = lines.first(where: { $0.hasPrefix("a=ice-pwd:") })?.dropFirst(10)
        else { return nil }
        return ICECredentials(usernameFragment: String(ufrag), password: String(password))
    }
}

/// A UDP socket on 127.0.0.1 that sends STUN and reads the answers, in order.
final class UDPPeer {
    private var inbound: NIOAsyncChannelInboundStream<AddressedEnvelope<ByteBuffer>>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<AddressedEnvelope<ByteBuffer>>

    init(
        inbound: NIOAsyncChannelInboundStream<AddressedEnvelope<ByteBuffer>>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<AddressedEnvelope<ByteBuffer>>
    ) {
        self.inbound = inbound
        self.outbound = outbound
    }

    func send(_ bytes: [UInt8], to address: SocketAddress) async throws {
        try await self.outbound.write(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: bytes)))
    }

    /// Sends a check and reads the next datagram: true when it is the success response to this check.
    func check(_ request: [UInt8], to address: SocketAddress) async throws -> Bool {
        try await self.send(request, to: address)
        guard let answer = try await self.inbound.next() else { return false }
        let response = try STUNMessage.decode(Array(answer.data.readableBytesView))
        return response.messageClass == .successResponse && response.transactionID == Array(request[8..<20])
    }
}

@available(*, unavailable)
extension UDPPeer: Sendable {}

func withUDPPeer(_ body: (UDPPeer) async throws -> Void) async throws {
    let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(
                    wrappingChannelSynchronously: channel
                )
            }
        }
    try await channel.executeThenClose { inbound, outbound in
        try await body(UDPPeer(inbound: inbound.makeAsyncIterator(), outbound: outbound))
    }
}
