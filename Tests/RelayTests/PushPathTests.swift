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
import NIOEmbedded
import RTMP
import Synchronization
import Testing

@testable import Relay

/// A target's connection in the test's process: the relay's push side (``PushSessionHandler``, then
/// ``TargetWriter``) on one `EmbeddedChannel`, an RTMP server on another, and the bytes between them moved by
/// ``pump()``. Time is the embedded loop's: the setup timeout fires only when the test advances it.
final class EmbeddedTargetLink {
    let client = EmbeddedChannel()
    let server = EmbeddedChannel()
    let queue: TargetQueue
    let ended: EventLoopPromise<Void>
    private(set) var session = RTMPServerSessionStateMachine(configuration: .init(applications: ["live"]))
    /// What the server received, in order.
    private(set) var media: [RTMPMessage] = []
    private(set) var publishedName: String?
    private(set) var unpublished = false
    private let ending = Locked<Result<Void, any Error>?>(nil)
    /// How the push ended; `nil` while it runs.
    var outcome: Result<Void, any Error>? { self.ending.withLock { $0 } }
    let publishing = Locked(0)
    let sent = Locked<(bytes: Int, messages: Int)>((0, 0))
    /// How the server answers a publish: accepted, or refused with this description.
    var refusal: String?

    init(setupTimeout: Duration = .seconds(5)) throws {
        self.queue = TargetQueue(limits: TargetQueueStateMachine(maxBytes: 1 << 20).limits, loop: self.client.eventLoop)
        self.ended = self.client.eventLoop.makePromise()
        let ending = self.ending
        self.ended.futureResult.whenComplete { result in ending.withLock { $0 = result } }
        try self.server.pipeline.syncOperations.addHandler(RTMPConnectionHandler(role: .server))
        try self.client.pipeline.syncOperations.addHandler(RTMPConnectionHandler(role: .client))
        let publishing = self.publishing
        let sent = self.sent
        try self.client.pipeline.syncOperations.addHandler(
            PushSessionHandler(
                configuration: .init(app: "live", tcURL: "rtmp://target.test/live", streamName: "target-key"),
                queue: self.queue,
                ended: self.ended,
                setupTimeout: setupTimeout,
                publishing: { publishing.withLock { $0 += 1 } },
                sent: { bytes, messages in sent.withLock { $0 = ($0.bytes + bytes, $0.messages + messages) } }
            )
        )
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1935)
        try self.server.connect(to: address).wait()
        try self.client.connect(to: address).wait()
    }

    /// Moves bytes both ways, running both loops, until none move; the server answers as a live ingest does.
    func pump() throws {
        var moved = true
        while moved {
            moved = false
            self.client.embeddedEventLoop.run()
            while let bytes = try self.client.readOutbound(as: ByteBuffer.self) {
                moved = true
                try self.server.writeInbound(bytes)
            }
            while let message = try self.server.readInbound(as: RTMPMessage.self) {
                try self.serve(message)
            }
            self.server.embeddedEventLoop.run()
            while let bytes = try self.server.readOutbound(as: ByteBuffer.self) {
                moved = true
                if self.client.isActive { try self.client.writeInbound(bytes) }
            }
        }
    }

    private func serve(_ message: RTMPMessage) throws {
        switch self.session.received(message) {
        case .none:
            break
        case .send(let messages):
            try self.reply(messages)
        case .media(let media):
            self.media.append(media)
        case .authorize(let request):
            self.publishedName = request.streamName
            if let refusal {
                try self.reply(self.session.publishRefused(description: refusal))
            } else {
                try self.reply(self.session.publishAccepted())
            }
        case .unpublished(let messages):
            self.unpublished = true
            try self.reply(messages)
        case .close(let messages, _):
            try self.reply(messages)
        }
    }

    private func reply(_ messages: [RTMPMessage]) throws {
        for message in messages { try self.server.writeOutbound(message) }
    }

    func finish() {
        _ = try? self.client.finish()
        _ = try? self.server.finish()
    }
}

/// A `Mutex` a closure can capture.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { self.mutex = Mutex(value) }
    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { self.mutex.withLock { body(&$0) } }
}

@Suite("Push path in process: session and writer on EmbeddedChannel")
struct PushPathTests {
    @Test(
        "the publish is set up, the queue arrives rebased on the publish stream, and the end is a clean unpublish",
        arguments: [false, true]
    )
    func publishAndUnpublish(chunkedOnce: Bool) throws {
        let link = try EmbeddedTargetLink()
        defer { link.finish() }
        try link.pump()
        #expect(link.publishedName == "target-key")
        #expect(link.publishing.withLock { $0 } == 1)
        #expect(link.outcome == nil)

        let sent = [
            relayMessage(.videoHeader, ts: 1000),
            relayMessage(.keyframe, ts: 1000, bytes: 5000),
            relayMessage(.audioFrame, ts: 1010),
            relayMessage(.videoFrame, ts: 1033, bytes: 700),
        ].map { message in
            // As the fan-out gives them: cut into chunks once for every target, at the targets' chunk size.
            var message = message
            if chunkedOnce {
                message.chunked = RTMPChunkedPayload(
                    payload: message.message.payload,
                    chunkStreamID: RelayMessage.chunkStreamID(for: message.message.type),
                    chunkSize: PushTarget.chunkSize
                )
            }
            return message
        }
        for message in sent { link.queue.enqueue(message) }
        try link.pump()
        #expect(link.media.count == sent.count)
        #expect(link.media.map(\.timestamp) == [0, 0, 10, 33], "rebased to the connection's first message")
        #expect(link.media.map(\.type) == sent.map(\.message.type))
        #expect(link.media.map(\.payload) == sent.map(\.message.payload), "payloads arrive whole")
        #expect(link.media.allSatisfy { $0.messageStreamID == 1 }, "on the stream the server gave")
        #expect(
            link.media.map(\.chunkStreamID) == [
                RTMPChunkStreamID.video, RTMPChunkStreamID.video, RTMPChunkStreamID.audio, RTMPChunkStreamID.video,
            ]
        )
        let counted = link.sent.withLock { $0 }
        #expect(counted.messages == 4 && counted.bytes == sent.reduce(0) { $0 + $1.message.payload.readableBytes })
        #expect(!link.unpublished)

        link.queue.finish()
        try link.pump()
        #expect(link.unpublished, "FCUnpublish and deleteStream once everything was sent")
        guard case .success = link.outcome else {
            Issue.record("the push did not end cleanly: \(String(describing: link.outcome))")
            return
        }
    }

    @Test("a slow target: nothing is written while the channel is not writable, all of it once it is again")
    func writability() throws {
        let link = try EmbeddedTargetLink()
        defer { link.finish() }
        try link.pump()
        link.client.isWritable = false
        link.client.pipeline.fireChannelWritabilityChanged()
        link.queue.enqueue(relayMessage(.keyframe, ts: 0))
        link.queue.enqueue(relayMessage(.videoFrame, ts: 40))
        try link.pump()
        #expect(link.media.isEmpty, "written past a full socket buffer")
        link.client.isWritable = true
        link.client.pipeline.fireChannelWritabilityChanged()
        try link.pump()
        #expect(link.media.map(\.timestamp) == [0, 40])
    }

    @Test("no accepted publish within the setup timeout fails the push, on the loop's clock, not before")
    func setupTimeout() throws {
        let link = try EmbeddedTargetLink(setupTimeout: .seconds(5))
        defer { link.finish() }
        // The target never answers: nothing is pumped back.
        link.client.embeddedEventLoop.advanceTime(by: .milliseconds(4999))
        #expect(link.outcome == nil)
        link.client.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        guard case .failure(let error as RTMPError) = link.outcome else {
            Issue.record("no timeout: \(String(describing: link.outcome))")
            return
        }
        #expect("\(error)".contains("no accepted publish within"))
        #expect(!link.client.isActive, "the connection is closed")
    }

    @Test("a refused publish fails the push with the target's reason, the key masked")
    func refused() throws {
        let link = try EmbeddedTargetLink()
        defer { link.finish() }
        link.refusal = "Invalid stream key target-key."
        try link.pump()
        guard case .failure(let error) = link.outcome else {
            Issue.record("a refused publish did not fail: \(String(describing: link.outcome))")
            return
        }
        #expect("\(error)".contains("Invalid stream key"))
        #expect(!"\(error)".contains("target-key"), "the key reached the error: \(error)")
        #expect(link.publishing.withLock { $0 } == 0)
    }
}
