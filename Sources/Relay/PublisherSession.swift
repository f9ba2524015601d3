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

import IngestNetworking
import LiveStreamModel
import Logging
import NIOCore
import Preview
import RTMP

/// One RTMP connection's read loop, from accept until it should close: commands answered through the
/// ``RTMPServerSessionStateMachine``, the publisher authorized and given its stream, media handed to the fan-out by
/// the connection's ``IngestTap``, a clean unpublish acted on.
///
/// A value owned by the connection's task; ``RelayServer`` makes it per connection and, once ``serve(_:tasks:)``
/// returns, drains what ``live`` holds.
struct PublisherSession {
    /// The stream this connection publishes to, and its fan-out, once the publish was accepted.
    typealias Live = (hub: StreamHub, fanOut: FanOut)

    private let relay: RelayServer
    private let id: UInt64
    private let channel: any Channel
    private let client: ClientAddress
    private let outbound: NIOAsyncChannelOutboundWriter<RTMPMessage>
    private let setupTimeout: Scheduled<Void>
    private var session: RTMPServerSessionStateMachine
    private(set) var live: Live?
    /// The connection's logger, with the stream's name once known.
    private(set) var logger: Logger

    init(
        relay: RelayServer,
        connection: (id: UInt64, channel: any Channel, client: ClientAddress),
        outbound: NIOAsyncChannelOutboundWriter<RTMPMessage>,
        session: RTMPServerSessionStateMachine,
        setupTimeout: Scheduled<Void>,
        logger: Logger
    ) {
        self.relay = relay
        (self.id, self.channel, self.client) = connection
        self.outbound = outbound
        self.session = session
        self.setupTimeout = setupTimeout
        self.logger = logger
    }

    /// Reads until the connection should close. The fan-out of an accepted publish runs in `tasks`.
    mutating func serve(
        _ inbound: NIOAsyncChannelInboundStream<RTMPMessage>,
        tasks: inout ThrowingTaskGroup<Void, any Error>
    ) async throws {
        for try await message in inbound {
            switch self.session.received(message) {
            case .none:
                break
            case .send(let messages):
                try await self.outbound.write(contentsOf: messages)
            case .media:
                // Sent before the publish was accepted (the tap publishes everything after): dropped, as the
                // session drops all media before acceptance.
                break
            case .authorize(let request):
                guard try await self.publish(request, tasks: &tasks) else {
                    return
                }
            case .unpublished(let messages):
                await self.unpublished(answer: messages)
            case .close(let messages, let error):
                try? await self.outbound.write(contentsOf: messages)
                self.logger.notice("Closing connection", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    /// Authorizes the publish, claims its stream and starts the fan-out. Returns `false` when it was refused (the
    /// refusal is sent): the connection closes.
    private mutating func publish(
        _ request: RTMPPublishRequest,
        tasks: inout ThrowingTaskGroup<Void, any Error>
    ) async throws -> Bool {
        // The encoder, also behind the gateway (whose PROXY header, the first bytes, was read by now).
        let client = self.client.address
        self.logger[metadataKey: "rtmp.remote"] = "\(client.displayed)"
        // The webhook gets its IP address alone, as nginx-rtmp's `on_publish` (`addr`) and SRS's hooks (`ip`) send
        // it: what an allowlist or a geo lookup needs.
        let hub: StreamHub
        switch await self.relay.authorize(request, client: client?.ipAddress ?? "", logger: self.logger) {
        case .refused(let description):
            try await self.outbound.write(contentsOf: self.session.publishRefused(description: description))
            return false
        case .accepted(let accepted):
            hub = accepted
        }
        self.logger[metadataKey: "relay.stream"] = "\(hub.name)"
        let fanOut = FanOut(
            stream: hub.configuration,
            relay: self.relay.configuration,
            sslContext: self.relay.sslContext,
            // The targets' connections live on the publisher's event loop, beside the media path: the queue wakes a
            // target's writer without crossing threads.
            loop: self.channel.eventLoop,
            metrics: hub.metrics,
            logger: self.logger
        )
        let publisher = StreamHub.Publisher(
            id: self.id,
            channel: self.channel,
            remoteAddress: client.displayed,
            since: .now,
            fanOut: fanOut,
            released: OneShotEvent()
        )
        let takeover = self.relay.configuration.publisherTakeover
        guard await hub.claim(publisher, takeover: takeover, logger: self.logger) == .claimed else {
            self.logger.notice("Publish refused: the stream already has a publisher")
            try await self.outbound.write(
                contentsOf: self.session.publishRefused(description: "The stream is already being published.")
            )
            return false
        }
        self.setupTimeout.cancel()
        if hub.configuration.previewEnabled {
            fanOut.attachPreview(hub.preview.startSession(logger: self.logger))
        }
        self.live = (hub, fanOut)
        tasks.addTask { await fanOut.run() }
        // From here the publisher's media go to the fan-out on its event loop, before it hears that the publish
        // started.
        let streamID = request.messageStreamID
        try await self.withIngestTap { $0.attach(fanOut, messageStreamID: streamID) }
        try await self.outbound.write(contentsOf: self.session.publishAccepted())
        if let keyframeRequest = self.session.keyframeRequest {
            // The publisher asked for keyframe requests in connect: it gets one when a target starts pushing.
            fanOut.requestKeyframes { [channel = self.channel] in
                channel.writeAndFlush(keyframeRequest, promise: nil)
            }
        }
        self.logger.info("Publisher is live", metadata: ["rtmp.app": "\(request.app)"])
        return true
    }

    /// The publisher ended its stream (`FCUnpublish`, `deleteStream`) and may keep the connection open.
    private mutating func unpublished(answer messages: [RTMPMessage]) async {
        self.logger.info("Publisher ended the stream")
        try? await self.withIngestTap { $0.detach() }
        // The stream is free and reported idle now, not when the encoder gets round to closing the connection (OBS
        // keeps it open a while; a client may keep it open for good).
        self.live?.hub.release(self.id)
        self.live?.fanOut.finish()
        try? await self.outbound.write(contentsOf: messages)
    }

    /// Runs `body` with the connection's ``IngestTap``, on the connection's event loop.
    private func withIngestTap(_ body: @escaping @Sendable (IngestTap) -> Void) async throws {
        let channel = self.channel
        try await channel.eventLoop.submit {
            body(try channel.pipeline.syncOperations.handler(type: IngestTap.self))
        }.get()
    }
}
