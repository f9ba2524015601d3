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
import NIOPosix
import PeerTestSupport
import RTMP
import Relay
import RelayAPI
import Testing

/// An RTMP publisher in the test's process, driven message by message: what ffmpeg cannot do, such as ending the
/// publish (`FCUnpublish`, `deleteStream`) and keeping the connection open afterwards, as OBS does for a while.
struct InProcessPublisher {
    typealias Connection = NIOAsyncChannel<RTMPMessage, RTMPMessage>

    let inbound: NIOAsyncChannelInboundStream<RTMPMessage>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<RTMPMessage>

    /// Connects, publishes `key` on `app` and runs `body` while publishing. Throws what the relay answered if it
    /// refused the publish.
    static func publishing<T>(
        port: Int,
        app: String = "live",
        key: String,
        _ body: (inout Session) async throws -> T
    ) async throws -> T {
        let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RTMPConnectionHandler(role: .client))
                    return try Connection(wrappingChannelSynchronously: channel)
                }
            }
        return try await connection.executeThenClose { inbound, outbound in
            var session = Session(
                machine: RTMPPublishClientStateMachine(
                    configuration: .init(app: app, tcURL: "rtmp://127.0.0.1:\(port)/\(app)", streamName: key)
                ),
                inbound: inbound.makeAsyncIterator(),
                outbound: outbound
            )
            try await outbound.write(contentsOf: session.machine.start())
            while !session.machine.isPublishing {
                guard let message = try await session.inbound.next() else {
                    throw TestFailure("the relay closed the connection before the publish started")
                }
                switch session.machine.received(message) {
                case .none, .keyframeRequested: break
                case .send(let messages), .publishing(let messages): try await outbound.write(contentsOf: messages)
                case .fail(let error): throw TestFailure("the relay refused the publish: \(error)")
                }
            }
            return try await body(&session)
        }
    }

    struct Session {
        var machine: RTMPPublishClientStateMachine
        var inbound: NIOAsyncChannelInboundStream<RTMPMessage>.AsyncIterator
        let outbound: NIOAsyncChannelOutboundWriter<RTMPMessage>

        /// Sends `FCUnpublish` and `deleteStream`, and returns the code of the `onStatus` the relay answers with.
        mutating func unpublish() async throws -> String? {
            try await self.outbound.write(contentsOf: self.machine.unpublish())
            while let message = try await self.inbound.next() {
                guard message.type == .commandAMF0, let command = try? RTMPCommand(message: message),
                    command.name == "onStatus"
                else { continue }
                return command.arguments.first?["code"]?.stringValue
            }
            return nil
        }
    }
}

@Suite("Relay: a clean unpublish", .timeLimit(.minutes(2)))
struct UnpublishTests {
    @Test("FCUnpublish frees the stream at once: reported idle, and the next publisher is let in, connection open")
    func unpublishFreesTheStream() async throws {
        // Without takeover, a second publisher is refused while one holds the stream. The publisher sends no media,
        // so the relay's idle timeout (10 s without a byte) must not close it on a loaded machine mid-test.
        try await withRelay(targets: []) {
            $0.publisherTakeover = false
            $0.publisherIdleTimeout = .seconds(300)
        } _: { relay in
            try await InProcessPublisher.publishing(port: relay.port, key: relay.streamKey) { session in
                _ = try await relay.logs.waitFor("the publish") { $0.contains("Publisher is live") }
                #expect(try await relay.streamStatus().publisher != nil)

                let code = try await session.unpublish()
                #expect(code == "NetStream.Unpublish.Success")
                _ = try await relay.logs.waitFor("the unpublish") { $0.contains("Publisher ended the stream") }
                // The first connection stays open: the stream must not wait for it to close.
                let status = try await relay.streamStatus()
                #expect(status.publisher == nil, "still reported live after its publisher unpublished")
                #expect(status.state == "idle")

                // The stream is free: the next publisher is let in, no takeover needed.
                let next = try await InProcessPublisher.publishing(port: relay.port, key: relay.streamKey) { _ in
                    try await relay.streamStatus().publisher
                }
                #expect(next != nil)
            }
        }
    }
}
