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
import RTMP

/// An RTMP server that accepts a publish and then never reads again, like an ingest server that froze: the TCP
/// window closes and the relay's writes to it stop completing. Its receive buffer is small, so that happens within
/// a second instead of after megabytes of kernel buffering.
struct BlackHoleRTMPServer: Sendable {
    let channel: any Channel
    let port: Int
    /// One element per publish accepted (and then starved).
    let published: AsyncStream<Void>

    static func start() async throws -> BlackHoleRTMPServer {
        let (published, continuation) = AsyncStream<Void>.makeStream()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.socketOption(.so_rcvbuf), value: 4096)
            .childChannelOption(.socketOption(.so_rcvbuf), value: 4096)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RTMPConnectionHandler(role: .server))
                    try channel.pipeline.syncOperations.addHandler(
                        StarvingSessionHandler { continuation.yield() }
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return BlackHoleRTMPServer(channel: channel, port: channel.localAddress?.port ?? 0, published: published)
    }

    func url(app: String) -> String { "rtmp://127.0.0.1:\(self.port)/\(app)" }

    func stop() async {
        try? await self.channel.close()
    }
}

/// Accepts whatever is published, then stops reading.
private final class StarvingSessionHandler: ChannelInboundHandler {
    typealias InboundIn = RTMPMessage
    typealias OutboundOut = RTMPMessage

    private var session = RTMPServerSessionStateMachine(configuration: .init(applications: []))
    private let onPublished: @Sendable () -> Void

    init(onPublished: @escaping @Sendable () -> Void) {
        self.onPublished = onPublished
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.session.received(Self.unwrapInboundIn(data)) {
        case .send(let messages):
            for message in messages {
                context.write(Self.wrapOutboundOut(message), promise: nil)
            }
            context.flush()
        case .authorize:
            for message in self.session.publishAccepted() {
                context.write(Self.wrapOutboundOut(message), promise: nil)
            }
            context.flush()
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
            self.onPublished()
        case .close:
            context.close(promise: nil)
        case .none, .media, .unpublished:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension StarvingSessionHandler: Sendable {}
