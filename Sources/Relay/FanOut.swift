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
        case .metadata: self.metadata = Self.kept(message)
        case .videoHeader: self.videoHeader = Self.kept(message)
        case .audioHeader: self.audioHeader = Self.kept(message)
        case .keyframe:
            guard self.isRecording else {
                return
            }
            self.messages.removeAll(keepingCapacity: true)
            self.messages.append(Self.kept(message))
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
                self.messages.append(Self.kept(message))
            }
        }
    }

    /// Kept for seconds: with a payload of its own (not a slice pinning a read buffer), and without the chunked copy
    /// of the payload, which a target that starts from the cache does not need.
    private static func kept(_ message: RelayMessage) -> RelayMessage {
        var message = message
        message.compact()
        return message
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
///
/// A fan-out lives on one event loop, the publisher's connection's: the per-message path (``publish(_:now:)``), the
/// targets' queues and their connections all run there, so a message is handed on without a lock or a thread hop.
/// Its state is loop-bound (`NIOLoopBoundBox`); changes that come from elsewhere (a new configuration, a target's
/// state) are carried out on the loop. Status readers get a snapshot refreshed once per read (``readComplete()``).
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
        /// Ingest bytes not yet added to the metric (it is updated once per read).
        var unreportedBytes = 0
        /// A rule event of this read, logged once per read.
        var ruleEvent: IngestStatistics.RuleEvent?
        /// Asks the publisher for a keyframe, if it can make one on demand (``requestKeyframes(using:)``).
        var requestKeyframe: (@Sendable () -> Void)?

        /// What a target (re)starting now starts from.
        var seed: GOPSeed { GOPSeed(messages: self.gop.seed, upTo: self.sequence) }
    }

    /// What status readers off the loop see.
    private struct Snapshot {
        var ingest = IngestStatistics()
        var targets: [PushTarget] = []
        var gopCacheBytes = 0
    }

    /// The publisher's connection's event loop: the fan-out's and every target's.
    let loop: any EventLoop
    private let state: NIOLoopBoundBox<State>
    private let snapshot = Mutex(Snapshot())
    private let starts: AsyncStream<PushTarget>
    private let startsContinuation: AsyncStream<PushTarget>.Continuation
    private let relay: RelayConfiguration
    private let sslContext: NIOSSLContext?
    private let logger: Logger
    private let metrics: RelayMetrics.Stream

    init(
        stream: StreamConfiguration,
        relay: RelayConfiguration,
        sslContext: NIOSSLContext?,
        loop: any EventLoop,
        metrics: RelayMetrics.Stream,
        logger: Logger
    ) {
        self.relay = relay
        self.sslContext = sslContext
        self.loop = loop
        self.logger = logger
        self.metrics = metrics
        (self.starts, self.startsContinuation) = AsyncStream.makeStream()
        self.state = NIOLoopBoundBox.makeBoxSendingValue(
            State(gop: GOPCache(maxBytes: relay.gopCacheBytes), rules: stream.rules),
            eventLoop: loop
        )
        // Also applies the GOP cache policy.
        self.setTargets(stream.targets, rules: stream.rules)
    }

    /// Runs `body` on the loop: now if called there, else as soon as the loop gets to it (in call order).
    private func onLoop(_ body: @escaping @Sendable (FanOut) -> Void) {
        if self.loop.inEventLoop {
            body(self)
        } else {
            self.loop.execute { body(self) }
        }
    }

    /// Hands a publisher's message to every target, on the loop. Never suspends: a target that cannot keep up drops
    /// its own video (see ``TargetQueueStateMachine``). `now` is read once per read, not per message.
    ///
    /// A payload larger than a chunk is cut into chunks here, once, at the targets' chunk size: every target sends
    /// those bytes as they are, after a chunk header of its own (``RTMPChunkedPayload``).
    ///
    /// The targets write what a read brought when it ends: the caller calls ``readComplete()`` after the read's
    /// messages.
    func publish(_ message: RTMPMessage, now: ContinuousClock.Instant) {
        var classified = RelayMessage(classifying: message)
        let chunkStreamID = RelayMessage.chunkStreamID(for: message.type)
        classified.message.chunkStreamID = chunkStreamID
        classified.chunked = RTMPChunkedPayload(
            payload: message.payload,
            chunkStreamID: chunkStreamID,
            chunkSize: PushTarget.chunkSize
        )
        let targets = self.state.withValue { state in
            state.sequence += 1
            classified.sequence = state.sequence
            state.gop.record(classified)
            if let event = state.ingest.record(classified, rules: state.rules) {
                state.ruleEvent = event
            }
            state.unreportedBytes += message.payload.readableBytes
            if let preview = state.preview {
                // Queued for the preview's thread for up to a fragment: a payload of its own, not a slice of a read
                // buffer.
                let (payload, timestamp) = (message.compacted().payload, message.timestamp)
                switch classified.kind {
                case .videoHeader: preview.video(payload, timestamp: timestamp, role: .sequenceHeader)
                case .keyframe: preview.video(payload, timestamp: timestamp, role: .keyframe)
                case .videoFrame: preview.video(payload, timestamp: timestamp, role: .frame)
                case .audioHeader: preview.audio(payload, timestamp: timestamp, role: .sequenceHeader)
                case .audioFrame: preview.audio(payload, timestamp: timestamp, role: .frame)
                case .metadata, .data: break
                }
            }
            return state.targets
        }
        for target in targets {
            // Woken once the read ends (``readComplete()``).
            target.queue.enqueue(classified, now: now, deferringWake: true)
        }
    }

    /// The end of one read from the publisher, on the loop: each target with new messages writes them, and the
    /// metrics, the status snapshot and a rule event are brought up to date, once per read rather than per message.
    func readComplete() {
        for target in self.state.value.targets {
            target.queue.wakeIfDeferred()
        }
        let bytes = self.state.value.unreportedBytes
        guard bytes > 0 else {
            return
        }
        self.state.value.unreportedBytes = 0
        self.metrics.ingestBytes.increment(by: Int64(bytes))
        self.publishSnapshot()
        switch self.state.value.ruleEvent.take() {
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

    /// Copies what status readers see out of the loop-bound state; on the loop.
    private func publishSnapshot() {
        let state = self.state.value
        self.snapshot.withLock { snapshot in
            snapshot.ingest = state.ingest
            snapshot.targets = state.targets
            snapshot.gopCacheBytes = state.gop.bytes
        }
    }

    /// Applies a stream's targets: starts new and re-enabled ones, stops removed, disabled and changed ones. From
    /// any thread; carried out on the loop.
    func setTargets(_ configurations: [PushTargetConfiguration], rules: IngestRules) {
        self.onLoop { $0.setTargetsOnLoop(configurations, rules: rules) }
    }

    private func setTargetsOnLoop(_ configurations: [PushTargetConfiguration], rules: IngestRules) {
        self.state.value.rules = rules
        guard !self.state.value.finished else {
            return
        }
        let wanted = configurations.filter(\.enabled)
        var stopped: [PushTarget] = []
        self.state.value.targets.removeAll { target in
            let keep = wanted.contains(target.configuration)
            if !keep {
                stopped.append(target)
            }
            return !keep
        }
        for target in stopped {
            self.state.value.joining.remove(ObjectIdentifier(target))
        }
        var started: [PushTarget] = []
        let seed = self.state.value.seed
        let live = self.state.value.ingest.messages > 0
        for configuration in wanted
        where !self.state.value.targets.contains(where: { $0.configuration == configuration }) {
            let target = PushTarget(
                configuration: configuration,
                relay: self.relay,
                sslContext: configuration.url.useTLS ? self.sslContext : nil,
                loop: self.loop,
                metrics: self.metrics.target(configuration.name),
                logger: self.logger,
                seed: { [weak self] in self?.state.value.seed ?? GOPSeed() },
                pushingChanged: { [weak self] target, pushing in self?.target(target, pushing: pushing) }
            )
            self.state.value.joining.insert(ObjectIdentifier(target))
            if live {
                // Joining a live stream: start at the latest keyframe.
                target.queue.restart(from: seed)
            }
            self.state.value.targets.append(target)
            started.append(target)
        }
        self.updateGOPCache()
        self.publishSnapshot()
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

    /// Bytes of media the GOP cache holds (headers not counted), as of the last read.
    var gopCacheBytes: Int { self.snapshot.withLock { $0.gopCacheBytes } }

    /// From now on, asks the publisher for a keyframe with `request` whenever a target starts or restarts pushing
    /// (a publisher that can make one on demand: the gateway for a WebRTC publisher). The target starts at once
    /// from the GOP cache, if any; the new keyframe lets it catch up with the live edge without waiting for the
    /// encoder's next one, and is what a target has to start at without a cache. If a target pushes already, one
    /// request goes now.
    func requestKeyframes(using request: @escaping @Sendable () -> Void) {
        self.onLoop { fanOut in
            fanOut.state.value.requestKeyframe = request
            let joining = fanOut.state.value.joining
            if fanOut.state.value.targets.contains(where: { !joining.contains(ObjectIdentifier($0)) }) {
                fanOut.askForKeyframe(because: "a target is pushing")
            }
        }
    }

    /// Asks the publisher for a keyframe, on the loop, if it can make one and the publish goes on.
    private func askForKeyframe(because reason: String) {
        guard let request = self.state.value.requestKeyframe, !self.state.value.finished else { return }
        request()
        self.logger.debug("Asked the publisher for a keyframe: \(reason)")
    }

    /// A target started or stopped pushing: with ``GOPCachePolicy/joining`` the cache is kept while one is not.
    private func target(_ target: PushTarget, pushing: Bool) {
        self.onLoop { fanOut in
            let id = ObjectIdentifier(target)
            if pushing {
                fanOut.state.value.joining.remove(id)
                fanOut.askForKeyframe(because: "target \(target.configuration.name) started pushing")
            } else if fanOut.state.value.targets.contains(where: { $0 === target }) {
                fanOut.state.value.joining.insert(id)
            }
            if fanOut.updateGOPCache() {
                fanOut.publishSnapshot()
                fanOut.logger.debug(
                    fanOut.state.value.gop.isRecording
                        ? "GOP cache on from the next keyframe: a target is joining"
                        : "GOP cache off and freed: every target is pushing"
                )
            }
        }
    }

    /// Applies the policy, on the loop; returns whether the cache started or stopped recording.
    @discardableResult
    private func updateGOPCache() -> Bool {
        let was = self.state.value.gop.isRecording
        switch self.relay.gopCache {
        case .always: self.state.value.gop.setRecording(true)
        case .joining: self.state.value.gop.setRecording(!self.state.value.joining.isEmpty)
        case .off: self.state.value.gop.setRecording(false)
        }
        return self.state.value.gop.isRecording != was
    }

    /// The ingest as of the last read.
    var ingest: IngestStatistics { self.snapshot.withLock { $0.ingest } }

    /// The targets as of the last change.
    var targets: [PushTarget] { self.snapshot.withLock { $0.targets } }

    /// Feeds the stream's preview from now on.
    func attachPreview(_ preview: PreviewSession) {
        self.onLoop { fanOut in
            if fanOut.state.value.finished {
                preview.finish()
            } else {
                fanOut.state.value.preview = preview
            }
        }
    }

    /// The publisher ended: each target sends what it holds, then unpublishes.
    func finish() {
        self.onLoop { fanOut in
            fanOut.readComplete()
            fanOut.state.value.finished = true
            let (targets, preview) = (fanOut.state.value.targets, fanOut.state.value.preview)
            fanOut.state.value.preview = nil
            preview?.finish()
            for target in targets {
                target.stop()
            }
            fanOut.startsContinuation.finish()
        }
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
