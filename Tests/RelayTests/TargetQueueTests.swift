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
import RTMP
import Testing

@testable import Relay

private func relayMessage(_ kind: RelayMessage.Kind, ts: UInt32, bytes: Int = 10) -> RelayMessage {
    let type: RTMPMessageType
    switch kind {
    case .metadata, .data: type = .dataAMF0
    case .audioHeader, .audioFrame: type = .audio
    default: type = .video
    }
    return RelayMessage(
        message: RTMPMessage(
            chunkStreamID: 6,
            timestamp: ts,
            type: type,
            messageStreamID: 1,
            payload: ByteBuffer(repeating: 0, count: bytes)
        ),
        kind: kind
    )
}

private func drain(_ machine: inout TargetQueueStateMachine) -> [(RTMPMessageType, UInt32)] {
    var result: [(RTMPMessageType, UInt32)] = []
    while let message = machine.pop() {
        result.append((message.type, message.timestamp))
    }
    return result
}

@Suite("Target queue")
struct TargetQueueTests {
    @Test("A fresh target gets everything from the start of the publish, in order")
    func startsOpen() {
        var machine = TargetQueueStateMachine(maxBytes: 1000)
        for message in [
            relayMessage(.metadata, ts: 0), relayMessage(.videoHeader, ts: 0), relayMessage(.audioHeader, ts: 0),
            relayMessage(.keyframe, ts: 0), relayMessage(.audioFrame, ts: 21),
        ] {
            let accepted1 = machine.enqueue(message)
            #expect(accepted1)
        }
        #expect(drain(&machine).map(\.1) == [0, 0, 0, 0, 21])
    }

    @Test("A restarted target waits for a keyframe, then gets metadata and both headers re-stamped, then the keyframe")
    func restartsAtKeyframe() {
        var machine = TargetQueueStateMachine(maxBytes: 10_000)
        for message in [
            relayMessage(.metadata, ts: 0), relayMessage(.videoHeader, ts: 0), relayMessage(.audioHeader, ts: 0),
            relayMessage(.keyframe, ts: 0), relayMessage(.videoFrame, ts: 40),
        ] {
            _ = machine.enqueue(message)
        }
        machine.restart()
        #expect(machine.items.isEmpty)
        let accepted2 = machine.enqueue(relayMessage(.videoFrame, ts: 80))
        #expect(!accepted2)
        let accepted3 = machine.enqueue(relayMessage(.audioFrame, ts: 85))
        #expect(!accepted3)
        let accepted4 = machine.enqueue(relayMessage(.keyframe, ts: 2000))
        #expect(accepted4)
        let accepted5 = machine.enqueue(relayMessage(.audioFrame, ts: 2005))
        #expect(accepted5)
        let drained = drain(&machine)
        #expect(drained.map(\.0) == [.dataAMF0, .video, .audio, .video, .audio])
        #expect(drained.map(\.1) == [2000, 2000, 2000, 2000, 2005])
        #expect(machine.droppedMessages >= 2)
    }

    @Test("A new sequence header while gated is the one replayed")
    func latestHeaderReplayed() {
        var machine = TargetQueueStateMachine(maxBytes: 10_000)
        _ = machine.enqueue(relayMessage(.videoHeader, ts: 0, bytes: 5))
        machine.restart()
        _ = machine.enqueue(relayMessage(.videoHeader, ts: 100, bytes: 7))
        _ = machine.enqueue(relayMessage(.keyframe, ts: 120))
        let first = machine.pop()
        #expect(first?.payload.readableBytes == 7)
        #expect(first?.timestamp == 120)
    }

    @Test("An audio-only stream restarts at its next audio frame")
    func audioOnly() {
        var machine = TargetQueueStateMachine(maxBytes: 10_000)
        _ = machine.enqueue(relayMessage(.audioHeader, ts: 0))
        machine.restart()
        let accepted6 = machine.enqueue(relayMessage(.audioFrame, ts: 500))
        #expect(accepted6)
        #expect(drain(&machine).map(\.0) == [.audio, .audio])
    }

    @Test("A target that falls behind by more than maxBytes loses its queue and restarts at the next keyframe")
    func overflow() {
        var machine = TargetQueueStateMachine(maxBytes: 100)
        _ = machine.enqueue(relayMessage(.videoHeader, ts: 0))
        _ = machine.enqueue(relayMessage(.keyframe, ts: 0, bytes: 50))
        let accepted7 = machine.enqueue(relayMessage(.videoFrame, ts: 40, bytes: 50))
        #expect(!accepted7)
        #expect(machine.items.isEmpty)
        #expect(machine.bytes == 0)
        #expect(machine.overflows == 1)
        #expect(machine.droppedMessages == 3)
        let accepted8 = machine.enqueue(relayMessage(.videoFrame, ts: 80, bytes: 50))
        #expect(!accepted8)
        let accepted9 = machine.enqueue(relayMessage(.keyframe, ts: 2000, bytes: 50))
        #expect(accepted9)
        #expect(drain(&machine).map(\.1) == [2000, 2000])
    }

    @Test("After finish nothing is taken, and what is queued is still delivered")
    func finish() {
        var machine = TargetQueueStateMachine(maxBytes: 1000)
        _ = machine.enqueue(relayMessage(.keyframe, ts: 0))
        machine.finish()
        let accepted10 = machine.enqueue(relayMessage(.videoFrame, ts: 40))
        #expect(!accepted10)
        #expect(drain(&machine).count == 1)
    }

    @Test("The consumer waits for the producer, and finish wakes it with the end")
    func asyncHandOff() async {
        let queue = TargetQueue(maxBytes: 1000)
        async let first = queue.next()
        // The producer never waits for the consumer; the consumer may or may not be suspended yet.
        queue.enqueue(relayMessage(.keyframe, ts: 7))
        #expect(await first?.timestamp == 7)
        async let end = queue.next()
        queue.finish()
        #expect(await end == nil)
    }

    @Test("Cancelling a waiting consumer returns nil")
    func cancellation() async {
        let queue = TargetQueue(maxBytes: 1000)
        let task = Task { await queue.next() }
        task.cancel()
        #expect(await task.value == nil)
    }
}
