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

import CoreMetrics
import Logging
import NIOCore
import NIOSSL
import Preview
import RTMP
import Synchronization

/// When a stream keeps its current GOP for targets that join or rejoin.
///
/// The cache costs about one GOP of memory per stream (at 3 Mbit/s with a 2 s GOP, up to 0.75 MB, 0.6 MiB on
/// average as measured), which is most of what a stream costs the relay. It only helps a target that starts while
/// the publisher is live, so by default it is kept only while such a target exists.
public enum GOPCachePolicy: String, Sendable, Hashable, CaseIterable {
    /// Always keep it: a target added, re-enabled or reconnecting at any moment starts at once.
    case always
    /// Keep it while a target of the stream is connecting or backing off (a target that is about to join or rejoin),
    /// and free it while every target is pushing. A target that fails while the cache is free finds it filled from
    /// the next keyframe on when it reconnects (the first retry comes after `reconnectInitial`), or, if it reconnects
    /// sooner, starts at that keyframe. A target added or re-enabled while every other one is pushing starts at the
    /// next keyframe, as it would without a cache.
    case joining
    /// Never keep it: every (re)starting target waits for the next keyframe, as with nginx-rtmp.
    case off
}

/// What a target (re)starts from: the GOP cache's seed, and the sequence number of the last message the publisher had
/// sent when it was taken. Messages up to `upTo` are the seed's to give (or to leave out); later ones come through
/// the queue, even if they were queued just before the restart.
struct GOPSeed: Sendable {
    var messages: [RelayMessage] = []
    var upTo: UInt64 = 0
}

/// The messages from the latest keyframe on, with the stream's current headers, so that a target that joins or
/// rejoins starts at once instead of waiting up to a GOP. Bounded: a GOP larger than `maxBytes` is not cached, and
/// such targets wait for the next keyframe. While not recording (see ``GOPCachePolicy``) it keeps the headers
/// alone; recording starts at the next keyframe.
struct GOPCache: Sendable {
    private(set) var messages: [RelayMessage] = []
    private(set) var bytes = 0
    let maxBytes: Int
    private(set) var isRecording: Bool
    private var metadata: RelayMessage?
    private var videoHeader: RelayMessage?
    private var audioHeader: RelayMessage?

    /// Records from the start (if `maxBytes` leaves room for anything); ``setRecording(_:)`` applies a policy.
    init(maxBytes: Int) {
        self.maxBytes = maxBytes
        self.isRecording = false
        self.setRecording(true)
    }

    /// Starts recording (from the next keyframe on) or stops and frees what it holds.
    mutating func setRecording(_ recording: Bool) {
        let recording = recording && self.maxBytes > 0
        guard recording != self.isRecording else {
            return
        }
        self.isRecording = recording
        if !recording {
            self.messages = []
            self.bytes = 0
        }
    }

    mutating func record(_ message: RelayMessage) {
        switch message.kind {
        case .metadata: self.metadata = message
        case .videoHeader: self.videoHeader = message
        case .audioHeader: self.audioHeader = message
        case .keyframe:
            guard self.isRecording else {
                return
            }
            self.messages.removeAll(keepingCapacity: true)
            self.messages.append(message)
            self.bytes = message.message.payload.readableBytes
        case .videoFrame, .audioFrame, .data:
            guard !self.messages.isEmpty else {
                return
            }
            self.bytes += message.message.payload.readableBytes
            if self.bytes > self.maxBytes {
                self.messages.removeAll(keepingCapacity: false)
                self.bytes = 0
            } else {
                self.messages.append(message)
            }
        }
    }

    /// The current headers, then the GOP. Without a keyframe yet (an encoder's first frame can come a second or
    /// two after its headers) it is the headers alone: a target seeded with them waits for the keyframe and then
    /// sends them first, as it must, since they will not come again.
    var seed: [RelayMessage] {
        [self.metadata, self.videoHeader, self.audioHeader].compactMap { $0 } + self.messages
    }
}

/// One live publish, fanned out: every message from the publisher goes to each target's queue, and each target's
/// connection runs on its own. Targets can be added, removed, enabled and disabled while the publish is live; an
/// added or re-enabled target starts at the latest keyframe from the GOP cache.
final class FanOut: Sendable {
    private struct State {
        var targets: [PushTarget] = []
        /// The sequence number of the publisher's last message.
        var sequence: UInt64 = 0
        /// Targets that are connecting or backing off, for ``GOPCachePolicy/joining``.
        var joining: Set<ObjectIdentifier> = []
        var gop: GOPCache
        var ingest = IngestStatistics()
        var rules: IngestRules
        var finished = false
        /// The stream's preview, fed from the publisher's messages like a target (it never makes them wait).
        var preview: PreviewSession?

        /// What a target (re)starting now starts from.
        var seed: GOPSeed { GOPSeed(messages: self.gop.seed, upTo: self.sequence) }
    }

    private let state: Mutex<State>
    private let starts: AsyncStream<PushTarget>
    private let startsContinuation: AsyncStream<PushTarget>.Continuation
    private let relay: RelayConfiguration
    private let sslContext: NIOSSLContext?
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let metrics: RelayMetrics.Stream

    init(
        stream: StreamConfiguration,
        relay: RelayConfiguration,
        sslContext: NIOSSLContext?,
        eventLoopGroup: any EventLoopGroup,
        metrics: RelayMetrics.Stream,
        logger: Logger
    ) {
        self.relay = relay
        self.sslContext = sslContext
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.metrics = metrics
        (self.starts, self.startsContinuation) = AsyncStream.makeStream()
        self.state = Mutex(State(gop: GOPCache(maxBytes: relay.gopCacheBytes), rules: stream.rules))
        // Also applies the GOP cache policy.
        self.setTargets(stream.targets, rules: stream.rules)
    }

    /// Hands a publisher's message to every target. Never suspends: a target that cannot keep up drops its own
    /// video (see ``TargetQueueStateMachine``).
    func publish(_ message: RTMPMessage) {
        var classified = RelayMessage(classifying: message)
        let (targets, event, preview) = self.state.withLock { state in
            state.sequence += 1
            classified.sequence = state.sequence
            state.gop.record(classified)
            let event = state.ingest.record(classified, rules: state.rules)
            return (state.targets, event, state.preview)
        }
        if let preview {
            let (payload, timestamp) = (message.payload, message.timestamp)
            switch classified.kind {
            case .videoHeader: preview.video(payload, timestamp: timestamp, role: .sequenceHeader)
            case .keyframe: preview.video(payload, timestamp: timestamp, role: .keyframe)
            case .videoFrame: preview.video(payload, timestamp: timestamp, role: .frame)
            case .audioHeader: preview.audio(payload, timestamp: timestamp, role: .sequenceHeader)
            case .audioFrame: preview.audio(payload, timestamp: timestamp, role: .frame)
            case .metadata, .data: break
            }
        }
        self.metrics.ingestBytes.increment(by: Int64(message.payload.readableBytes))
        let now = ContinuousClock.now
        for target in targets {
            target.queue.enqueue(classified, now: now)
        }
        switch event {
        case .broken(let interval, let limit):
            self.metrics.ruleViolations.increment()
            self.logger.warning(
                "Ingest rule broken: keyframe interval too long",
                metadata: [
                    "relay.ingest.keyframe_interval": "\(interval)",
                    "relay.rule.max_keyframe_interval": "\(limit)",
                ]
            )
        case .kept(let interval):
            self.logger.info("Ingest rule kept again", metadata: ["relay.ingest.keyframe_interval": "\(interval)"])
        case nil:
            break
        }
    }

    /// Applies a stream's targets: starts new and re-enabled ones, stops removed, disabled and changed ones.
    func setTargets(_ configurations: [PushTargetConfiguration], rules: IngestRules) {
        let (started, stopped) = self.state.withLock { state -> ([PushTarget], [PushTarget]) in
            state.rules = rules
            guard !state.finished else {
                return ([], [])
            }
            let wanted = configurations.filter(\.enabled)
            var stopped: [PushTarget] = []
            state.targets.removeAll { target in
                let keep = wanted.contains(target.configuration)
                if !keep {
                    stopped.append(target)
                    state.joining.remove(ObjectIdentifier(target))
                }
                return !keep
            }
            var started: [PushTarget] = []
            let seed = state.seed
            let live = state.ingest.messages > 0
            for configuration in wanted where !state.targets.contains(where: { $0.configuration == configuration }) {
                let target = PushTarget(
                    configuration: configuration,
                    relay: self.relay,
                    sslContext: configuration.url.useTLS ? self.sslContext : nil,
                    eventLoopGroup: self.eventLoopGroup,
                    metrics: self.metrics.target(configuration.name),
                    logger: self.logger,
                    seed: { [weak self] in self?.seed ?? GOPSeed() },
                    pushingChanged: { [weak self] target, pushing in self?.target(target, pushing: pushing) }
                )
                state.joining.insert(ObjectIdentifier(target))
                if live {
                    // Joining a live stream: start at the latest keyframe.
                    target.queue.restart(from: seed)
                }
                state.targets.append(target)
                started.append(target)
            }
            self.updateGOPCache(&state)
            return (started, stopped)
        }
        for target in stopped {
            self.logger.info(
                "Target stopped by configuration",
                metadata: ["relay.target.name": "\(target.configuration.name)"]
            )
            target.stop()
        }
        for target in started {
            self.startsContinuation.yield(target)
        }
    }

    var seed: GOPSeed { self.state.withLock { $0.seed } }

    /// Bytes of media the GOP cache holds now (headers not counted).
    var gopCacheBytes: Int { self.state.withLock { $0.gop.bytes } }

    /// A target started or stopped pushing: with ``GOPCachePolicy/joining`` the cache is kept while one is not.
    private func target(_ target: PushTarget, pushing: Bool) {
        let (changed, recording) = self.state.withLock { state in
            let id = ObjectIdentifier(target)
            if pushing {
                state.joining.remove(id)
            } else if state.targets.contains(where: { $0 === target }) {
                state.joining.insert(id)
            }
            return (self.updateGOPCache(&state), state.gop.isRecording)
        }
        if changed {
            self.logger.debug(
                recording
                    ? "GOP cache on from the next keyframe: a target is joining"
                    : "GOP cache off and freed: every target is pushing"
            )
        }
    }

    /// Applies the policy; returns whether the cache started or stopped recording.
    @discardableResult
    private func updateGOPCache(_ state: inout State) -> Bool {
        let was = state.gop.isRecording
        switch self.relay.gopCache {
        case .always: state.gop.setRecording(true)
        case .joining: state.gop.setRecording(!state.joining.isEmpty)
        case .off: state.gop.setRecording(false)
        }
        return state.gop.isRecording != was
    }

    var ingest: IngestStatistics { self.state.withLock { $0.ingest } }

    var targets: [PushTarget] { self.state.withLock { $0.targets } }

    /// Feeds the stream's preview from now on.
    func attachPreview(_ preview: PreviewSession) {
        let finished = self.state.withLock { state in
            if !state.finished {
                state.preview = preview
            }
            return state.finished
        }
        if finished {
            preview.finish()
        }
    }

    /// The publisher ended: each target sends what it holds, then unpublishes.
    func finish() {
        let (targets, preview) = self.state.withLock { state in
            state.finished = true
            defer { state.preview = nil }
            return (state.targets, state.preview)
        }
        preview?.finish()
        for target in targets {
            target.stop()
        }
        self.startsContinuation.finish()
    }

    /// Runs every target's connection until the publisher ended and they drained (each for at most the drain
    /// timeout after it was stopped, see ``PushTarget/stop()``), or until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await target in self.starts {
                group.addTask { await target.run() }
            }
        }
    }
}
