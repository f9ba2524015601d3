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

import BrowserTestSupport
import Foundation
import Gateway
import NIOCore
import NIOPosix
import PeerTestSupport
import Synchronization
import Testing
import WebRTC

/// The go-live page through a network drop, in headless Chromium against local mode's gateway (in this process) with
/// nginx-rtmp as the target. The answer's candidate is a UDP hop of this test's (`UDPForwarder`), so that the test can
/// cut the path both ways, as a drop would; DevTools blocks the page's DELETE, which a drop would not let out either.
@Suite("The go-live page after a network drop", .serialized, .timeLimit(.minutes(5)))
struct GoLiveReconnectTests {
    @Test("After a drop the page retries, through 409s while the old session's consent runs out, and goes live again")
    func reconnectsAfterANetworkDrop() async throws {
        try #require(Chromium.isAvailable, "headless Chromium (Debian's chromium) is needed at \(Chromium.executable)")
        try await withNginxRTMP(applications: ["again"]) { nginx in
            let port = try freeTCPPort()
            let ingestKey = makeTestKey("ingest")
            let targetKey = makeTestKey("target")
            let yaml = liveStreamYAML(
                name: "cam",
                port: port,
                ingestKey: ingestKey,
                target: (nginx.url(app: "again"), targetKey)
            )
            let forwarder = try await UDPForwarder.bind()
            defer { forwarder.close() }
            try await withLocalMode(yaml: yaml, secrets: [ingestKey, targetKey]) { local in
                try await local.waitForListening(port)
                try await withWHIP(
                    local,
                    webrtcHost: "127.0.0.1",
                    configure: {
                        $0.announcedAddresses = ["127.0.0.1"]
                        $0.announcedPort = forwarder.port
                        // RFC 7675's 30 s, shortened: long enough that the page's first retries find the old session.
                        $0.ice.consentTimeout = .seconds(20)
                    }
                ) { base, whip in
                    forwarder.setUpstream(whip.transport.localAddress)
                    try await withDevToolsPage("\(base)/go-live/default/cam") { page in
                        try await GoLivePageTests.waitForDevices(page)
                        try await GoLivePageTests.typeKeyAndStart(page, key: ingestKey)
                        let live = try await GoLivePageTests.waitForState(
                            page,
                            in: ["live", "error"],
                            timeout: .seconds(60)
                        )
                        try #require(live.state == "live", "the page says: \(live.text)")
                        try await nginx.waitForPublishStarted(app: "again", stream: targetKey, timeout: .seconds(60))
                        #expect(forwarder.forwarded > 0)

                        // The drop: nothing passes either way, and the DELETE of the session cannot get out.
                        _ = try await page.connection.send("Network.enable")
                        _ = try await page.connection.send(
                            "Network.setBlockedURLs",
                            ["urls": ["*/whip/default/cam/*"]]
                        )
                        forwarder.setDropping(true)
                        let reconnecting = try await GoLivePageTests.waitForState(
                            page,
                            in: ["reconnecting", "error"],
                            timeout: .seconds(60)
                        )
                        #expect(reconnecting.state == "reconnecting", "the page says: \(reconnecting.text)")
                        // The gateway ends the old session, and its publish at the target, when its consent runs out
                        // or the relay gives up on a publisher that sends nothing, whichever comes first.
                        try await local.logs.waitFor("the old session's end", timeout: .seconds(60)) {
                            $0.contains("WHIP session ended")
                        }
                        try await nginx.waitForPublishEnded(app: "again", stream: targetKey)
                        // Until then the page's new offers were refused, as a second publisher's are, and retried.
                        #expect(
                            local.logs.lines.contains {
                                $0.contains("WHIP publish refused") && $0.contains("already being published")
                            },
                            "no POST came while the old session lasted"
                        )

                        // The network is back: the page's next attempt publishes again.
                        forwarder.setDropping(false)
                        _ = try await page.connection.send("Network.setBlockedURLs", ["urls": [String]()])
                        let again = try await GoLivePageTests.waitForState(
                            page,
                            in: ["live", "error"],
                            timeout: .seconds(90)
                        )
                        try #require(again.state == "live", "the page says: \(again.text)")
                        try await nginx.waitForPublishStarted(app: "again", stream: targetKey, timeout: .seconds(60))
                        try await WHIPLocalModeTests.waitForRecording(
                            nginx.recordingPath(app: "again", stream: targetKey),
                            frames: 30
                        )

                        try await page.run("document.getElementById('stop').focus()")
                        try await page.press(.space)
                        _ = try await GoLivePageTests.waitForState(page, in: ["idle"], timeout: .seconds(10))
                        try await nginx.waitForPublishEnded(app: "again", stream: targetKey, count: 2)
                    }
                    #expect(whip.sessionCount == 0)
                }
                let info = try await FFprobe.inspect(nginx.recordingPath(app: "again", stream: targetKey))
                #expect(info.video?.codecName == "h264", "\(info)")
                #expect(info.audio?.codecName == "aac", "\(info)")
            }
        }
    }
}

/// A UDP hop on 127.0.0.1 between a browser and the WebRTC transport, one upstream socket per browser socket (so the
/// transport sees each as its own peer, as it would the browser), that a test can make drop everything.
final class UDPForwarder: Sendable {
    private struct State {
        var upstream: SocketAddress?
        var dropping = false
        var forwarded = 0
        var clients: [SocketAddress: EventLoopFuture<any Channel>] = [:]
        var front: (any Channel)?
    }
    private let state = Mutex(State())

    private init() {}

    /// Binds the browser-facing socket on an ephemeral port.
    static func bind() async throws -> UDPForwarder {
        let forwarder = UDPForwarder()
        let front = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FrontHandler(forwarder: forwarder))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        forwarder.state.withLock { $0.front = front }
        return forwarder
    }

    /// The browser-facing port: what the answer's candidate announces.
    var port: Int { self.state.withLock { $0.front?.localAddress?.port ?? 0 } }

    /// Datagrams passed either way so far.
    var forwarded: Int { self.state.withLock { $0.forwarded } }

    func setUpstream(_ address: SocketAddress) {
        self.state.withLock { $0.upstream = address }
    }

    /// While dropping, nothing passes either way.
    func setDropping(_ dropping: Bool) {
        self.state.withLock { $0.dropping = dropping }
    }

    func close() {
        let (front, clients) = self.state.withLock { state in
            defer {
                state.front = nil
                state.clients = [:]
            }
            return (state.front, Array(state.clients.values))
        }
        front?.close(promise: nil)
        for client in clients {
            client.whenSuccess { $0.close(promise: nil) }
        }
    }

    /// On the front channel's event loop.
    fileprivate func fromBrowser(_ data: ByteBuffer, from client: SocketAddress, front: any Channel) {
        let (upstream, existing) = self.state.withLock { state -> (SocketAddress?, EventLoopFuture<any Channel>?) in
            guard !state.dropping, let upstream = state.upstream else { return (nil, nil) }
            state.forwarded += 1
            return (upstream, state.clients[client])
        }
        guard let upstream else { return }
        let channel =
            existing
            ?? DatagramBootstrap(group: front.eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        BackHandler(forwarder: self, client: client, front: front)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
        if existing == nil {
            self.state.withLock { $0.clients[client] = channel }
        }
        channel.whenSuccess { $0.writeAndFlush(AddressedEnvelope(remoteAddress: upstream, data: data), promise: nil) }
    }

    fileprivate func fromTransport(_ data: ByteBuffer, to client: SocketAddress, front: any Channel) {
        let passes = self.state.withLock { state in
            if !state.dropping { state.forwarded += 1 }
            return !state.dropping
        }
        if passes {
            front.writeAndFlush(AddressedEnvelope(remoteAddress: client, data: data), promise: nil)
        }
    }

    private final class FrontHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let forwarder: UDPForwarder

        init(forwarder: UDPForwarder) {
            self.forwarder = forwarder
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = Self.unwrapInboundIn(data)
            self.forwarder.fromBrowser(envelope.data, from: envelope.remoteAddress, front: context.channel)
        }
    }

    private final class BackHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let forwarder: UDPForwarder
        let client: SocketAddress
        let front: any Channel

        init(forwarder: UDPForwarder, client: SocketAddress, front: any Channel) {
            self.forwarder = forwarder
            self.client = client
            self.front = front
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.forwarder.fromTransport(Self.unwrapInboundIn(data).data, to: self.client, front: self.front)
        }
    }
}
