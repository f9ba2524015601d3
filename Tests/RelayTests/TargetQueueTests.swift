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

func relayMessage(_ kind: RelayMessage.Kind, ts: UInt32, bytes: Int = 10) -> RelayMessage {
    let type: RTMPMessageType
    // The first bytes are what an FLV tag body starts with, so the queue can tell headers from frames.
    let prefix: [UInt8]
    switch kind {
    case .metadata, .data:
        type = .dataAMF0
        prefix = []
    case .audioHeader:
        type = .audio
        prefix = [0xAF, 0x00]
    case .audioFrame:
        type = .audio
        prefix = [0xAF, 0x01]
    case .videoHeader:
        type = .video
        prefix = [0x17, 0x00]
    case .keyframe:
        type = .video
        prefix = [0x17, 0x01]
    case .videoFrame:
        type = .video
        prefix = [0x27, 0x01]
    }
    var payload = ByteBuffer(bytes: prefix)
    payload.writeRepeatingByte(0, count: max(0, bytes - prefix.count))
    return RelayMessage(
        message: RTMPMessage(chunkStreamID: 6, timestamp: ts, type: type, messageStreamID: 1, payload: payload),
        kind: kind
    )
}

private func drain(_ machine: inout TargetQueueStateMachine) -> [(RTMPMessageType, UInt32)] {
    var result: [(RTMPMessageType, UInt32)] = []
    while let message = machine.pop()?.message {
        result.append((message.type, message.timestamp))
    }
    return result
}

extension TargetQueueStateMachine {
    /// A queue bounded by bytes alone: the time limits far beyond any test.
    init(maxBytes: Int) {
        self.init(limits: Limits(maxBytes: maxBytes, maxDuration: .seconds(3600), maxBehind: .seconds(3600)))
    }
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
            #expect(accepted1 == .available)
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
        #expect(accepted2 == .none)
        let accepted3 = machine.enqueue(relayMessage(.audioFrame, ts: 85))
        #expect(accepted3 == .none)
        let accepted4 = machine.enqueue(relayMessage(.keyframe, ts: 2000))
        #expect(accepted4 == .available)
        let accepted5 = machine.enqueue(relayMessage(.audioFrame, ts: 2005))
        #expect(accepted5 == .available)
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
        let first = machine.pop()?.message
        #expect(first?.payload.readableBytes == 7)
        #expect(first?.timestamp == 120)
    }

    @Test("An audio-only stream restarts at its next audio frame")
    func audioOnly() {
        var machine = TargetQueueStateMachine(maxBytes: 10_000)
        _ = machine.enqueue(relayMessage(.audioHeader, ts: 0))
        machine.restart()
        let accepted6 = machine.enqueue(relayMessage(.audioFrame, ts: 500))
        #expect(accepted6 == .available)
        #expect(drain(&machine).map(\.0) == [.audio, .audio])
    }

    @Test("Past the byte bound, video is dropped up to the next keyframe; audio and headers are kept")
    func behindDropsVideo() {
        var machine = TargetQueueStateMachine(maxBytes: 100)
        _ = machine.enqueue(relayMessage(.videoHeader, ts: 0))
        _ = machine.enqueue(relayMessage(.keyframe, ts: 0, bytes: 50))
        let overflowing = machine.enqueue(relayMessage(.videoFrame, ts: 40, bytes: 50))
        #expect(overflowing == .available)
        #expect(machine.overflows == 1)
        #expect(machine.droppedMessages == 2)
        #expect(machine.bytes == 10)
        let droppedFrame = machine.enqueue(relayMessage(.videoFrame, ts: 80, bytes: 50))
        #expect(droppedFrame == .none)
        let audio = machine.enqueue(relayMessage(.audioFrame, ts: 85))
        #expect(audio == .available)
        let keyframe = machine.enqueue(relayMessage(.keyframe, ts: 2000, bytes: 50))
        #expect(keyframe == .available)
        let drained = drain(&machine)
        #expect(drained.map(\.0) == [.video, .audio, .video])
        #expect(drained.map(\.1) == [0, 85, 2000])
    }

    @Test("Past the media-time bound the target is behind too, whatever the bytes")
    func durationBound() {
        var machine = TargetQueueStateMachine(
            limits: .init(maxBytes: 1 << 20, maxDuration: .seconds(1), maxBehind: .seconds(60))
        )
        _ = machine.enqueue(relayMessage(.keyframe, ts: 0))
        _ = machine.enqueue(relayMessage(.videoFrame, ts: 500))
        #expect(machine.overflows == 0)
        _ = machine.enqueue(relayMessage(.videoFrame, ts: 1040))
        #expect(machine.overflows == 1)
        #expect(machine.droppingVideo)
    }

    @Test("Behind on media time with audio alone, the target keeps its audio and falls behind only once")
    func audioOverDurationBound() {
        var machine = TargetQueueStateMachine(
            limits: .init(maxBytes: 1 << 20, maxDuration: .seconds(1), maxBehind: .seconds(60))
        )
        _ = machine.enqueue(relayMessage(.keyframe, ts: 0))
        _ = machine.enqueue(relayMessage(.audioFrame, ts: 10))
        _ = machine.enqueue(relayMessage(.videoFrame, ts: 1040))
        #expect(machine.overflows == 1)
        for step in 1...100 {
            _ = machine.enqueue(relayMessage(.audioFrame, ts: 1040 + UInt32(step) * 21))
            _ = machine.enqueue(relayMessage(.videoFrame, ts: 1040 + UInt32(step) * 33))
        }
        #expect(machine.overflows == 1, "falling behind is counted when it happens, not once per message after it")
        #expect(machine.items.count == 101)
        #expect(machine.items.allSatisfy { $0.kind == .audioFrame })
        #expect(machine.droppedMessages == 102)
    }

    @Test("Behind with audio alone over the byte bound, the target starts over at the next keyframe")
    func audioOverByteBound() {
        var machine = TargetQueueStateMachine(
            limits: .init(maxBytes: 100, maxDuration: .seconds(60), maxBehind: .seconds(60))
        )
        _ = machine.enqueue(relayMessage(.videoHeader, ts: 0))
        _ = machine.enqueue(relayMessage(.keyframe, ts: 0, bytes: 60))
        _ = machine.enqueue(relayMessage(.videoFrame, ts: 40, bytes: 60))
        #expect(machine.droppingVideo)
        for step in 1...10 {
            _ = machine.enqueue(relayMessage(.audioFrame, ts: 40 + UInt32(step) * 21, bytes: 30))
        }
        #expect(machine.gate == .awaitingKeyframe)
        #expect(machine.bytes <= 100)
        #expect(machine.overflows == 1)
        let keyframe = machine.enqueue(relayMessage(.keyframe, ts: 2000, bytes: 10))
        #expect(keyframe == .available)
        // The video header, re-stamped, then the keyframe.
        #expect(drain(&machine).map(\.1) == [2000, 2000])
    }

    @Test("A parked target holds nothing but the headers, and restarts from its seed with nothing lost or repeated")
    func parkedWhileReconnecting() {
        var machine = TargetQueueStateMachine(maxBytes: 1 << 20)
        var sequence: UInt64 = 0
        func numbered(_ kind: RelayMessage.Kind, ts: UInt32) -> RelayMessage {
            sequence += 1
            var message = relayMessage(kind, ts: ts)
            message.sequence = sequence
            return message
        }
        _ = machine.enqueue(numbered(.videoHeader, ts: 0))
        _ = machine.enqueue(numbered(.audioHeader, ts: 0))
        _ = machine.enqueue(numbered(.keyframe, ts: 0))
        _ = machine.enqueue(numbered(.videoFrame, ts: 33))
        machine.park()
        #expect(machine.items.isEmpty)
        #expect(machine.droppedMessages == 2)
        let whileDown = [
            numbered(.audioFrame, ts: 40), numbered(.videoHeader, ts: 50), numbered(.keyframe, ts: 2000),
            numbered(.videoFrame, ts: 2033),
        ]
        for message in whileDown {
            #expect(machine.enqueue(message) == .none)
        }
        #expect(machine.items.isEmpty && machine.bytes == 0)
        #expect(machine.droppedMessages == 5)

        // Reconnecting: unpark, the publisher sends one more, the seed is taken, one more, then the restart.
        machine.unpark()
        let beforeSeed = numbered(.videoFrame, ts: 2066)
        _ = machine.enqueue(beforeSeed)
        let seed = [whileDown[2], whileDown[3], beforeSeed]
        let upTo = sequence
        let afterSeed = numbered(.videoFrame, ts: 2100)
        _ = machine.enqueue(afterSeed)
        machine.restart(seed: seed, upTo: upTo)
        // The headers seen while parked (the newer video header), then the GOP, then what came after the seed.
        let drained = drain(&machine)
        #expect(drained.map(\.0) == [.video, .audio, .video, .video, .video, .video])
        #expect(drained.map(\.1) == [2000, 2000, 2000, 2033, 2066, 2100])
    }

    @Test("A target that stays behind longer than maxBehind without reading is disconnected, once")
    func disconnectWhenBehindTooLong() {
        var machine = TargetQueueStateMachine(
            limits: .init(maxBytes: 100, maxDuration: .seconds(60), maxBehind: .seconds(5))
        )
        let start = ContinuousClock.now
        _ = machine.enqueue(relayMessage(.keyframe, ts: 0, bytes: 60), now: start)
        _ = machine.enqueue(relayMessage(.videoFrame, ts: 40, bytes: 60), now: start)
        #expect(machine.behindSince == start)
        let early = machine.enqueue(relayMessage(.audioFrame, ts: 100), now: start + .seconds(4))
        #expect(early == .available)
        let late = machine.enqueue(relayMessage(.audioFrame, ts: 200), now: start + .seconds(6))
        #expect(late == .disconnect)
        let again = machine.enqueue(relayMessage(.audioFrame, ts: 300), now: start + .seconds(7))
        #expect(again == .available)
    }

    @Test("A consumer that empties the queue is no longer behind")
    func catchingUp() {
        var machine = TargetQueueStateMachine(
            limits: .init(maxBytes: 100, maxDuration: .seconds(60), maxBehind: .seconds(5))
        )
        let start = ContinuousClock.now
        _ = machine.enqueue(relayMessage(.keyframe, ts: 0, bytes: 60), now: start)
        _ = machine.enqueue(relayMessage(.videoFrame, ts: 40, bytes: 60), now: start)
        _ = drain(&machine)
        #expect(machine.behindSince == nil)
        let later = machine.enqueue(relayMessage(.keyframe, ts: 2000), now: start + .seconds(10))
        #expect(later == .available)
    }

    @Test("A target seeded with headers alone (no keyframe yet) sends them before the first keyframe")
    func headersOnlySeed() {
        var machine = TargetQueueStateMachine(maxBytes: 10_000)
        machine.restart(seed: [
            relayMessage(.metadata, ts: 0), relayMessage(.videoHeader, ts: 0), relayMessage(.audioHeader, ts: 0),
        ])
        #expect(machine.items.isEmpty)
        let keyframe = machine.enqueue(relayMessage(.keyframe, ts: 1500))
        #expect(keyframe == .available)
        #expect(drain(&machine).map(\.0) == [.dataAMF0, .video, .audio, .video])
    }

    @Test("A restart seeded with the GOP starts at its keyframe at once, headers re-stamped")
    func seededRestart() {
        var machine = TargetQueueStateMachine(maxBytes: 10_000)
        _ = machine.enqueue(relayMessage(.videoFrame, ts: 5000))
        machine.restart(seed: [
            relayMessage(.metadata, ts: 0), relayMessage(.videoHeader, ts: 0), relayMessage(.audioHeader, ts: 0),
            relayMessage(.keyframe, ts: 4000), relayMessage(.audioFrame, ts: 4010), relayMessage(.videoFrame, ts: 4040),
        ])
        #expect(machine.gate == .open)
        let drained = drain(&machine)
        #expect(drained.map(\.1) == [4000, 4000, 4000, 4000, 4010, 4040])
    }

    @Test("A restart racing the publisher neither loses nor repeats a message: the seed covers up to its number")
    func restartRacingThePublisher() {
        func numbered(_ kind: RelayMessage.Kind, ts: UInt32, _ sequence: UInt64) -> RelayMessage {
            var message = relayMessage(kind, ts: ts)
            message.sequence = sequence
            return message
        }
        let header = numbered(.videoHeader, ts: 0, 1)
        let keyframe = numbered(.keyframe, ts: 2000, 2)
        let frame3 = numbered(.videoFrame, ts: 2033, 3)
        let frame4 = numbered(.videoFrame, ts: 2066, 4)
        let frame5 = numbered(.videoFrame, ts: 2100, 5)
        var machine = TargetQueueStateMachine(maxBytes: 10_000)
        // Queued before the restart: 3 (which the seed, taken after it, also holds) and 4 (taken after the seed).
        _ = machine.enqueue(frame3)
        _ = machine.enqueue(frame4)
        machine.restart(seed: [header, keyframe, frame3], upTo: 3)
        // Queued after the restart: 3 again (a publisher that recorded it before the seed was taken), then 5.
        _ = machine.enqueue(frame3)
        _ = machine.enqueue(frame5)
        #expect(drain(&machine).map(\.1) == [2000, 2000, 2033, 2066, 2100])
    }

    @Test("The GOP cache holds the latest keyframe on, and forgets a GOP too large to hold")
    func gopCache() {
        var cache = GOPCache(maxBytes: 100)
        #expect(cache.seed.isEmpty)
        cache.record(relayMessage(.videoHeader, ts: 0))
        // Headers before the first keyframe are the seed: a target joining now must get them.
        #expect(cache.seed.map(\.kind) == [.videoHeader])
        cache.record(relayMessage(.keyframe, ts: 0, bytes: 20))
        cache.record(relayMessage(.videoFrame, ts: 40, bytes: 20))
        cache.record(relayMessage(.keyframe, ts: 2000, bytes: 20))
        cache.record(relayMessage(.audioFrame, ts: 2010))
        #expect(cache.seed.map(\.message.timestamp) == [0, 2000, 2010])
        cache.record(relayMessage(.videoFrame, ts: 2040, bytes: 90))
        #expect(cache.seed.map(\.kind) == [.videoHeader])
    }

    @Test("A GOP cache that does not record keeps the headers only, frees its GOP, and records from a keyframe on")
    func gopCacheRecording() {
        var cache = GOPCache(maxBytes: 1000)
        cache.setRecording(false)
        cache.record(relayMessage(.videoHeader, ts: 0))
        cache.record(relayMessage(.keyframe, ts: 0, bytes: 20))
        cache.record(relayMessage(.videoFrame, ts: 40, bytes: 20))
        #expect(cache.seed.map(\.kind) == [.videoHeader])
        #expect(cache.bytes == 0)
        cache.setRecording(true)
        // Mid-GOP: nothing until the next keyframe, which a target could not start without.
        cache.record(relayMessage(.videoFrame, ts: 80, bytes: 20))
        #expect(cache.seed.map(\.kind) == [.videoHeader])
        cache.record(relayMessage(.keyframe, ts: 2000, bytes: 20))
        cache.record(relayMessage(.audioFrame, ts: 2010, bytes: 10))
        #expect(cache.seed.map(\.message.timestamp) == [0, 2000, 2010])
        #expect(cache.bytes == 30)
        cache.setRecording(false)
        #expect(cache.seed.map(\.kind) == [.videoHeader])
        #expect(cache.bytes == 0)
        #expect(cache.messages.capacity == 0, "a cache that stops recording frees its storage")
        // A cache without room never records.
        var none = GOPCache(maxBytes: 0)
        none.record(relayMessage(.keyframe, ts: 0, bytes: 1))
        #expect(!none.isRecording && none.seed.isEmpty)
    }

    @Test("After finish nothing is taken, and what is queued is still delivered")
    func finish() {
        var machine = TargetQueueStateMachine(maxBytes: 1000)
        _ = machine.enqueue(relayMessage(.keyframe, ts: 0))
        machine.finish()
        let accepted10 = machine.enqueue(relayMessage(.videoFrame, ts: 40))
        #expect(accepted10 == .none)
        #expect(drain(&machine).count == 1)
    }

    @Test("The consumer is woken once per burst, takes what is queued, and finish wakes it with the end")
    func wakerHandOff() {
        // The queue is the event loop's: an embedded one here, run by the test's thread.
        let queue = TargetQueue(limits: TargetQueueStateMachine(maxBytes: 1000).limits, loop: EmbeddedEventLoop())
        let wakes = Atomic(0)
        queue.setWaker { wakes.add(1, ordering: .relaxed) }
        // Woken at once when it becomes the consumer, in case something is queued already.
        #expect(wakes.load(ordering: .relaxed) == 1)
        var batch: [RelayMessage] = []
        #expect(queue.take(limit: 64, into: &batch) == (emptied: true, finished: false))
        queue.enqueue(relayMessage(.keyframe, ts: 7))
        queue.enqueue(relayMessage(.videoFrame, ts: 40))
        queue.enqueue(relayMessage(.videoFrame, ts: 80))
        // One wake for the burst: it has not emptied the queue since.
        #expect(wakes.load(ordering: .relaxed) == 2)
        #expect(queue.take(limit: 2, into: &batch) == (emptied: false, finished: false))
        #expect(batch.map(\.message.timestamp) == [7, 40])
        queue.enqueue(relayMessage(.videoFrame, ts: 120))
        #expect(wakes.load(ordering: .relaxed) == 2, "woken again before it emptied the queue")
        batch.removeAll()
        #expect(queue.take(limit: 64, into: &batch) == (emptied: true, finished: false))
        #expect(batch.map(\.message.timestamp) == [80, 120])
        queue.finish()
        #expect(wakes.load(ordering: .relaxed) == 3)
        batch.removeAll()
        #expect(queue.take(limit: 64, into: &batch) == (emptied: true, finished: true))
        #expect(batch.isEmpty)
    }

    @Test("The fan-out's wakes wait for the end of the publisher's read, then run the consumer directly, once")
    func deferredWake() {
        let queue = TargetQueue(limits: TargetQueueStateMachine(maxBytes: 1000).limits, loop: EmbeddedEventLoop())
        let scheduled = Atomic(0)
        let direct = Atomic(0)
        queue.setWaker({ scheduled.add(1, ordering: .relaxed) }, direct: { direct.add(1, ordering: .relaxed) })
        #expect(scheduled.load(ordering: .relaxed) == 1)
        var batch: [RelayMessage] = []
        #expect(queue.take(limit: 64, into: &batch) == (emptied: true, finished: false))
        queue.wakeIfDeferred()
        #expect(direct.load(ordering: .relaxed) == 0, "nothing was deferred")
        // One read brings three messages: no wake until it ends, then one direct run.
        queue.enqueue(relayMessage(.keyframe, ts: 7), deferringWake: true)
        queue.enqueue(relayMessage(.videoFrame, ts: 40), deferringWake: true)
        queue.enqueue(relayMessage(.videoFrame, ts: 80), deferringWake: true)
        #expect(scheduled.load(ordering: .relaxed) == 1 && direct.load(ordering: .relaxed) == 0)
        queue.wakeIfDeferred()
        queue.wakeIfDeferred()
        #expect(scheduled.load(ordering: .relaxed) == 1 && direct.load(ordering: .relaxed) == 1)
        #expect(queue.take(limit: 64, into: &batch) == (emptied: true, finished: false))
        #expect(batch.map(\.message.timestamp) == [7, 40, 80])
        // Without a direct consumer a deferred enqueue wakes the scheduled one at once, as any other enqueue.
        queue.setWaker({ scheduled.add(1, ordering: .relaxed) })
        batch.removeAll()
        _ = queue.take(limit: 64, into: &batch)
        queue.enqueue(relayMessage(.videoFrame, ts: 120), deferringWake: true)
        #expect(scheduled.load(ordering: .relaxed) == 3)
        queue.wakeIfDeferred()
        #expect(direct.load(ordering: .relaxed) == 1)
        // A consumer that leaves takes a deferred wake with it.
        queue.setWaker({ scheduled.add(1, ordering: .relaxed) }, direct: { direct.add(1, ordering: .relaxed) })
        _ = queue.take(limit: 64, into: &batch)
        queue.enqueue(relayMessage(.videoFrame, ts: 160), deferringWake: true)
        queue.setWaker(nil)
        queue.wakeIfDeferred()
        #expect(direct.load(ordering: .relaxed) == 1)
    }
}

@Suite("What the relay holds for long does not keep read buffers alive")
struct CompactionTests {
    /// A message whose payload is a slice of a 64 KiB read buffer, as the chunk decoder makes it.
    private func sliced(_ kind: RelayMessage.Kind, ts: UInt32, bytes: Int = 300) -> RelayMessage {
        var message = relayMessage(kind, ts: ts, bytes: bytes)
        var read = ByteBufferAllocator().buffer(capacity: 64 << 10)
        read.writeRepeatingByte(0, count: 1000)
        read.writeImmutableBuffer(message.message.payload)
        message.message.payload = read.getSlice(at: 1000, length: bytes)!
        message.chunked = RTMPChunkedPayload(payload: message.message.payload, chunkStreamID: 6, chunkSize: 128)
        return message
    }

    @Test("the GOP cache keeps payloads of their own and no chunked copies")
    func gopCache() {
        var cache = GOPCache(maxBytes: 1 << 20)
        let keyframe = self.sliced(.keyframe, ts: 0)
        cache.record(keyframe)
        cache.record(self.sliced(.audioFrame, ts: 20))
        #expect(cache.seed.count == 2)
        for message in cache.seed {
            #expect(message.message.payload.storageCapacity < 4096, "a read buffer kept alive")
            #expect(message.chunked == nil)
        }
        #expect(cache.seed[0].message.payload == keyframe.message.payload, "the same bytes")
    }

    @Test("a queue that grows past a read or two compacts what it queues; a short one shares the read buffer")
    func queue() {
        var machine = TargetQueueStateMachine(maxBytes: 1 << 20)
        for index in 0..<(TargetQueueStateMachine.compactAfter + 4) {
            _ = machine.enqueue(self.sliced(index == 0 ? .keyframe : .audioFrame, ts: UInt32(index)))
        }
        let items = Array(machine.items)
        #expect(items.prefix(TargetQueueStateMachine.compactAfter).allSatisfy { $0.chunked != nil })
        #expect(
            items.prefix(TargetQueueStateMachine.compactAfter).allSatisfy {
                $0.message.payload.storageCapacity >= 64 << 10
            }
        )
        #expect(items.dropFirst(TargetQueueStateMachine.compactAfter).allSatisfy { $0.chunked == nil })
        #expect(
            items.dropFirst(TargetQueueStateMachine.compactAfter).allSatisfy {
                $0.message.payload.storageCapacity < 4096
            }
        )
    }
}
