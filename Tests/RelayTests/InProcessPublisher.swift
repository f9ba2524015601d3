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
import Testing

/// A publisher in the test's process: connects on `group` (asking for keyframe requests if `asksForKeyframes`),
/// publishes `key` to the app `live`, sends `frames` on its stream, calls `requested` for each keyframe request, and
/// stays connected while `body` runs.
func publishInProcess(
    port: Int,
    key: String,
    frames: [RTMPMessage],
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    asksForKeyframes: Bool = false,
    requested: @escaping @Sendable () -> Void = {},
    while body: @escaping @Sendable () async -> Void
) async throws {
    let connection = try await ClientBootstrap(group: group)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RTMPConnectionHandler(role: .client))
                return try NIOAsyncChannel<RTMPMessage, RTMPMessage>(wrappingChannelSynchronously: channel)
            }
        }
    try await connection.executeThenClose { inbound, outbound in
        var configuration = RTMPPublishClientStateMachine.Configuration(
            app: "live",
            tcURL: "rtmp://127.0.0.1:\(port)/live",
            streamName: key
        )
        configuration.acceptsKeyframeRequests = asksForKeyframes
        var machine = RTMPPublishClientStateMachine(configuration: configuration)
        try await outbound.write(contentsOf: machine.start())
        var messages = inbound.makeAsyncIterator()
        while !machine.isPublishing {
            guard let message = try await messages.next() else {
                throw FanOutTestFailure("the relay closed the connection before the publish started")
            }
            switch machine.received(message) {
            case .none: break
            case .keyframeRequested: requested()
            case .send(let reply), .publishing(let reply): try await outbound.write(contentsOf: reply)
            case .fail(let error): throw FanOutTestFailure("the relay refused the publish: \(error)")
            }
        }
        let streamID = try #require(machine.messageStreamID)
        try await outbound.write(
            contentsOf: frames.map { frame in
                var frame = frame
                frame.messageStreamID = streamID
                return frame
            }
        )
        // Once `body` ends the connection closes, which ends the reads.
        let closer = Task {
            await body()
            connection.channel.close(promise: nil)
        }
        defer { closer.cancel() }
        do {
            while let message = try await messages.next() {
                if case .keyframeRequested = machine.received(message) {
                    requested()
                }
            }
        } catch {
            // The connection closed under the read.
        }
    }
}
