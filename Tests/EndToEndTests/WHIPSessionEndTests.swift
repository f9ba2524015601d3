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

import AsyncHTTPClient
import Foundation
import Gateway
import LiveStreamModel
import LocalRuntime
import NIOCore
import NIOHTTP1
import NIOPosix
import PeerTestSupport
import Testing
import WebRTC

/// How WHIP sessions end without a DELETE, on local mode's gateway with real relays and nginx-rtmp as the target:
/// the peer stops giving ICE consent (RFC 7675), or its DTLS handshake fails. The peer is this test's own UDP
/// socket, which passes ICE with the answer's credentials and then does what the case needs.
@Suite("WHIP sessions that end without a DELETE", .serialized, .timeLimit(.minutes(5)))
struct WHIPSessionEndTests {
    @Test("No ICE consent for the consent timeout ends the session: the resource is gone, the target's publish ends")
    func consentExpires() async throws {
        try await withNginxRTMP(applications: ["consent"]) { nginx in
            let port = try freeTCPPort()
            let ingestKey = makeTestKey("ingest")
            let targetKey = makeTestKey("target")
            let yaml = liveStreamYAML(
                name: "quiet",
                port: port,
                ingestKey: ingestKey,
                target: (nginx.url(app: "consent"), targetKey)
            )
            try await withLocalMode(yaml: yaml, secrets: [ingestKey, targetKey]) { local in
                try await local.waitForListening(port)
                try await withWHIP(
                    local,
                    webrtcHost: "127.0.0.1",
                    configure: {
                        // RFC 7675's 30 s, shortened for the test; sessions are looked at every 100 ms.
                        $0.ice.consentTimeout = .seconds(3)
                        $0.tickInterval = .milliseconds(100)
                    }
                ) { base, whip in
                    let answer = try await WHIPLocalModeTests.post(base, path: "/whip/default/quiet", key: ingestKey)
                    try #require(answer.status == 201, "\(answer.body)")
                    let location = try #require(answer.headers.first(name: "Location"))
                    let peer = try await FakeWHIPPeer(answer: answer.body)
                    defer { peer.close() }
                    // Consent for a while: the session stays while checks come (every 500 ms, as browsers send).
                    // The peer sends no media, which the relay would take as an idle publisher after 10 s: the whole
                    // case stays well within that.
                    let checking = ContinuousClock.now
                    var checks = 0
                    var lastCheck = checking
                    var longestGap = Duration.zero
                    while ContinuousClock.now - checking < .seconds(4) {
                        // Before the send: the gateway takes the check after it, so consent lasts from later.
                        longestGap = max(longestGap, ContinuousClock.now - lastCheck)
                        lastCheck = ContinuousClock.now
                        let answered = try await peer.check(nominate: true, require: false)
                        try #require(answered, "check \(checks) unanswered; \(local.logs.lines.suffix(30))")
                        checks += 1
                        try await Task.sleep(for: .milliseconds(500))
                    }
                    // A test process that runs hundreds of tests on two cores can itself wait longer than the timeout
                    // between two checks; the session then ends by rights, and this part says nothing.
                    if longestGap < .milliseconds(2500) {
                        #expect(whip.sessionCount == 1, "longest gap between checks: \(longestGap)")
                    }
                    // Then none: the session ends with the consent timeout after the last check, and the log says why
                    // (the transport's line; the WHIP session's own may name the relay, which can close first).
                    try await local.logs.waitFor("the session's end", timeout: .seconds(30)) {
                        $0.contains("WebRTC session timed out") && $0.contains("no ICE consent")
                    }
                    #expect(ContinuousClock.now - lastCheck >= .seconds(3))
                    // The relay had published to the target when the WHIP publish started; that publish ends.
                    try await nginx.waitForPublishEnded(app: "consent", stream: targetKey)
                    let stream = StreamID(namespace: "default", name: "quiet")
                    await local.runtime.gateway.waitForConnections(of: stream) { live, held in live == 0 && held == 0 }
                    #expect(whip.sessionCount == 0)
                    var delete = HTTPClientRequest(url: base + location)
                    delete.method = .DELETE
                    #expect(try await HTTPClient.shared.execute(delete, timeout: .seconds(10)).status == .notFound)
                }
            }
        }
    }

    @Test("A publisher whose media stops while its consent goes on: the relay's idle timeout ends it, the log says why")
    func silentPublisherEndsWithTheReason() async throws {
        try await withNginxRTMP(applications: ["silent"]) { nginx in
            let port = try freeTCPPort()
            let ingestKey = makeTestKey("ingest")
            let targetKey = makeTestKey("target")
            let yaml = liveStreamYAML(
                name: "silent",
                port: port,
                ingestKey: ingestKey,
                target: (nginx.url(app: "silent"), targetKey)
            )
            try await withLocalMode(yaml: yaml, secrets: [ingestKey, targetKey]) { local in
                try await local.waitForListening(port)
                try await withWHIP(local, webrtcHost: "127.0.0.1") { base, whip in
                    let answer = try await WHIPLocalModeTests.post(base, path: "/whip/default/silent", key: ingestKey)
                    try #require(answer.status == 201, "\(answer.body)")
                    let peer = try await FakeWHIPPeer(answer: answer.body)
                    defer { peer.close() }
                    // Consent (checks every 500 ms, as browsers send) and no media: the relay takes the publish as
                    // idle after its 10 s and closes it; the gateway's line names the silence, not the relay.
                    let deadline = ContinuousClock.now + .seconds(40)
                    var ended: String?
                    while ended == nil, ContinuousClock.now < deadline {
                        _ = try await peer.check(nominate: true, require: false)
                        try await Task.sleep(for: .milliseconds(500))
                        ended = local.logs.lines.first { $0.contains("WHIP session ended") }
                    }
                    let line = try #require(ended, "no session end in 40 s: \(local.logs.lines.suffix(30))")
                    #expect(
                        line.contains("the relay closed the connection after")
                            && line.contains("s without media from the publisher"),
                        "\(line)"
                    )
                    try await nginx.waitForPublishEnded(app: "silent", stream: targetKey)
                    #expect(whip.sessionCount == 0)
                }
            }
        }
    }

    @Test("A DTLS handshake that fails ends its session with a clear log line; another stream's session goes on")
    func dtlsFailureEndsOnlyThatSession() async throws {
        try await withNginxRTMP(applications: ["dtls"]) { nginx in
            let ports = (try freeTCPPort(), try freeTCPPort())
            let keys = (makeTestKey("bad"), makeTestKey("good"))
            let targets = (makeTestKey("target-bad"), makeTestKey("target-good"))
            let yaml =
                liveStreamYAML(
                    name: "bad",
                    port: ports.0,
                    ingestKey: keys.0,
                    target: (nginx.url(app: "dtls"), targets.0)
                )
                + "---\n"
                + liveStreamYAML(
                    name: "good",
                    port: ports.1,
                    ingestKey: keys.1,
                    target: (nginx.url(app: "dtls"), targets.1)
                )
            try await withLocalMode(yaml: yaml, secrets: [keys.0, keys.1, targets.0, targets.1]) { local in
                try await local.waitForListening(ports.0, ports.1)
                try await withWHIP(local, webrtcHost: "127.0.0.1") { base, whip in
                    let bad = try await WHIPLocalModeTests.post(base, path: "/whip/default/bad", key: keys.0)
                    try #require(bad.status == 201, "\(bad.body)")
                    let good = try await WHIPLocalModeTests.post(base, path: "/whip/default/good", key: keys.1)
                    try #require(good.status == 201, "\(good.body)")
                    let badPeer = try await FakeWHIPPeer(answer: bad.body)
                    defer { badPeer.close() }
                    let goodPeer = try await FakeWHIPPeer(answer: good.body)
                    defer { goodPeer.close() }
                    try await badPeer.check(nominate: true)
                    try await goodPeer.check(nominate: true)
                    #expect(whip.sessionCount == 2)

                    // A ClientHello that is no ClientHello, from the address that passed ICE.
                    try await badPeer.send(FakeWHIPPeer.garbageClientHello)
                    try await local.logs.waitFor("the failed session's end", timeout: .seconds(30)) {
                        $0.contains("WHIP session ended") && $0.contains("DTLS")
                    }
                    #expect(local.logs.lines.contains { $0.contains("DTLS handshake failed") }, "\(local.logs.lines)")
                    try await nginx.waitForPublishEnded(app: "dtls", stream: targets.0)
                    await local.runtime.gateway.waitForConnections(of: StreamID(namespace: "default", name: "bad")) {
                        live,
                        held in live == 0 && held == 0
                    }
                    #expect(whip.sessionCount == 1)
                    var delete = HTTPClientRequest(url: base + (bad.headers.first(name: "Location") ?? ""))
                    delete.method = .DELETE
                    #expect(try await HTTPClient.shared.execute(delete, timeout: .seconds(10)).status == .notFound)

                    // The other session still answers checks and ends by its DELETE.
                    try await goodPeer.check(nominate: false)
                    delete = HTTPClientRequest(url: base + (good.headers.first(name: "Location") ?? ""))
                    delete.method = .DELETE
                    #expect(try await HTTPClient.shared.execute(delete, timeout: .seconds(10)).status == .ok)
                    try await nginx.waitForPublishEnded(app: "dtls", stream: targets.1)
                    #expect(whip.sessionCount == 0)
                }
            }
        }
    }
}

/// A WHIP peer that does ICE (Binding requests with the answer's credentials, as the controlling agent) from a UDP
/// socket on 127.0.0.1, and sends whatever else a test wants from the address that passed.
private final class FakeWHIPPeer: Sendable {
    let channel: any Channel
    let responses: AsyncStream<[UInt8]>
    let remote: SocketAddress
    let username: String
    let password: String

    private final class Receiver: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let continuation: AsyncStream<[UInt8]>.Continuation

        init(_ continuation: AsyncStream<[UInt8]>.Continuation) {
            self.continuation = continuation
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.continuation.yield(Array(Self.unwrapInboundIn(data).data.readableBytesView))
        }
    }

    /// Reads the answer's credentials and UDP candidate. The offer's fragment is `Qx7b` (WHIPLocalModeTests.offer).
    init(answer text: String) async throws {
        let answer = try SessionDescription(parsing: text)
        let media = try #require(answer.media.first)
        let fragment = try #require(media.value("ice-ufrag"))
        self.password = try #require(media.value("ice-pwd"))
        self.username = "\(fragment):Qx7b"
        let candidate = try #require(media.values("candidate").first { $0.contains(" UDP ") })
        let fields = candidate.split(separator: " ")
        self.remote = try SocketAddress(ipAddress: String(fields[4]), port: try #require(Int(fields[5])))
        let (responses, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        self.responses = responses
        self.channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Receiver(continuation))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    /// Sends one Binding request and waits for its success response (10 s at most); returns whether it came.
    @discardableResult
    func check(nominate: Bool, require: Bool = true) async throws -> Bool {
        var attributes: [STUNMessage.Attribute] = [
            .init(type: STUNAttributeType.username, value: Array(self.username.utf8)),
            .init(type: STUNAttributeType.priority, value: [0x6E, 0x00, 0x01, 0xFF]),
            .init(type: STUNAttributeType.iceControlling, value: [1, 2, 3, 4, 5, 6, 7, 8]),
        ]
        if nominate {
            attributes.append(.init(type: STUNAttributeType.useCandidate, value: []))
        }
        let transaction = (0..<12).map { _ in UInt8.random(in: 0...255) }
        let request = STUNMessage(
            method: STUNMessage.bindingMethod,
            messageClass: .request,
            transactionID: transaction,
            attributes: attributes
        )
        try await self.send(request.encode(integrityPassword: self.password, fingerprint: true))
        let answered = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await datagram in self.responses {
                    if let response = try? STUNMessage.decode(datagram), response.transactionID == transaction {
                        return response.messageClass == .successResponse
                    }
                }
                return false
            }
            group.addTask {
                try await Task.sleep(for: .seconds(10))
                return false
            }
            let first = try await group.next() ?? false
            group.cancelAll()
            return first
        }
        if require {
            try #require(answered, "the Binding request was not answered with success")
        }
        return answered
    }

    func send(_ bytes: [UInt8]) async throws {
        try await self.channel.writeAndFlush(
            AddressedEnvelope(remoteAddress: self.remote, data: ByteBuffer(bytes: bytes))
        )
    }

    func close() {
        self.channel.close(promise: nil)
    }

    /// A DTLS 1.2 record (RFC 6347 4.1) holding a handshake message of type ClientHello whose body is nonsense (its
    /// version 0xEEEE): OpenSSL answers with an alert and fails the handshake.
    static let garbageClientHello: [UInt8] = {
        let body = [UInt8](repeating: 0xEE, count: 40)
        // msg_type 1, length, message_seq 0, fragment_offset 0, fragment_length.
        let handshake: [UInt8] = [1, 0, 0, UInt8(body.count), 0, 0, 0, 0, 0, 0, 0, UInt8(body.count)] + body
        // content type 22 (handshake), version DTLS 1.0 (0xFEFF), epoch 0, sequence number 0, length.
        return [22, 0xFE, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, UInt8(handshake.count)] + handshake
    }()
}
