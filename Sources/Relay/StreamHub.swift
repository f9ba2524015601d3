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

import Logging
import NIOCore
import Preview
import RelayAPI
import Synchronization
import TimeSupport

/// One configured stream, across its publish sessions: its configuration (which a reload can change), its current
/// publisher and fan-out, and what to report about it.
final class StreamHub: Sendable {
    struct Publisher: Sendable {
        var id: UInt64
        var channel: any Channel
        var remoteAddress: String
        var since: ContinuousClock.Instant
        var fanOut: FanOut
        /// Signalled when this publisher's session has ended and released the stream.
        var released: OneShotEvent
    }

    private struct State {
        var configuration: StreamConfiguration
        var publisher: Publisher?
        var lastIngest: IngestStatistics?
    }

    let name: String
    let metrics: RelayMetrics.Stream
    /// The stream's live preview, across publishes; used while ``StreamConfiguration/previewEnabled``.
    let preview: PreviewStream
    private let state: Mutex<State>

    init(configuration: StreamConfiguration, metrics: RelayMetrics, preview: PreviewConfiguration) {
        self.name = configuration.name
        self.metrics = metrics.stream(configuration.name)
        self.preview = PreviewStream(name: configuration.name, configuration: preview)
        self.state = Mutex(State(configuration: configuration))
    }

    var configuration: StreamConfiguration { self.state.withLock { $0.configuration } }

    var publisher: Publisher? { self.state.withLock { $0.publisher } }

    enum Claim {
        case claimed
        /// Another publisher holds the stream (and takeover is off, or it did not let go in time).
        case busy
    }

    /// Makes `publisher` the stream's publisher. With `takeover`, a current publisher is disconnected first: an
    /// encoder that reconnects is usually faster than the relay at noticing its old connection died.
    func claim(_ publisher: Publisher, takeover: Bool, logger: Logger) async -> Claim {
        for attempt in 0..<2 {
            let current: Publisher? = self.state.withLock { state in
                if let current = state.publisher {
                    return current
                }
                state.publisher = publisher
                return nil
            }
            guard let current else {
                return .claimed
            }
            guard takeover, attempt == 0 else {
                return .busy
            }
            logger.notice(
                "A new publisher takes over the stream from the current one",
                metadata: ["rtmp.previous.remote": "\(current.remoteAddress)"]
            )
            current.channel.close(promise: nil)
            guard await current.released.wait(timeout: .seconds(3)) else {
                return .busy
            }
        }
        return .busy
    }

    /// Ends a publisher's hold on the stream.
    func release(_ id: UInt64) {
        let released: OneShotEvent? = self.state.withLock { state in
            guard let publisher = state.publisher, publisher.id == id else {
                return nil
            }
            state.lastIngest = publisher.fanOut.ingest
            state.publisher = nil
            return publisher.released
        }
        released?.signal()
    }

    /// Applies a new configuration of this stream; a live publish gets the target changes at once.
    func update(_ configuration: StreamConfiguration) {
        let fanOut = self.state.withLock { state in
            state.configuration = configuration
            return state.publisher?.fanOut
        }
        fanOut?.setTargets(configuration.targets, rules: configuration.rules)
    }

    /// Enables or disables a target while live (or for the next publish). Returns false if there is no such target.
    func setTarget(_ name: String, enabled: Bool) -> Bool {
        let (found, configuration, fanOut) = self.state.withLock { state in
            guard let index = state.configuration.targets.firstIndex(where: { $0.name == name }) else {
                return (false, state.configuration, state.publisher?.fanOut)
            }
            state.configuration.targets[index].enabled = enabled
            return (true, state.configuration, state.publisher?.fanOut)
        }
        if found {
            fanOut?.setTargets(configuration.targets, rules: configuration.rules)
        }
        return found
    }

    /// The stream removed from the configuration: its publisher is disconnected.
    func close() {
        self.publisher?.channel.close(promise: nil)
    }

    var status: StreamStatus {
        let (configuration, publisher, lastIngest) = self.state.withLock {
            ($0.configuration, $0.publisher, $0.lastIngest)
        }
        let now = ContinuousClock.now
        let ingest = publisher?.fanOut.ingest ?? lastIngest
        let live = publisher?.fanOut.targets ?? []
        var warnings: [StreamStatus.Warning] = []
        if let ingest, publisher != nil, ingest.keyframeIntervalRuleBroken,
            let limit = configuration.rules.maxKeyframeInterval
        {
            warnings.append(
                .init(
                    rule: "maxKeyframeInterval",
                    message: "keyframe interval \(ingest.keyframeInterval.map { "\($0)" } ?? "?") is over \(limit)"
                )
            )
        }
        return StreamStatus(
            name: configuration.name,
            app: configuration.app,
            state: publisher == nil ? "idle" : "live",
            publisher: publisher.map {
                .init(remoteAddress: $0.remoteAddress, liveSeconds: (now - $0.since).inSeconds)
            },
            ingest: ingest.map { ingest in
                let rates = ingest.rates
                return StreamStatus.Ingest(
                    bytes: ingest.bytes,
                    videoFrames: ingest.videoFrames,
                    audioFrames: ingest.audioFrames,
                    keyframes: ingest.keyframes,
                    videoCodec: ingest.videoCodec,
                    width: ingest.width,
                    height: ingest.height,
                    frameRate: rates.frameRate,
                    declaredFrameRate: ingest.declaredFrameRate,
                    bitrate: rates.bitrate,
                    keyframeIntervalSeconds: ingest.keyframeInterval.map(\.inSeconds),
                    audioCodec: ingest.audioCodec,
                    audioSampleRate: ingest.audioSampleRate,
                    audioChannels: ingest.audioChannels
                )
            },
            warnings: warnings,
            preview: configuration.previewEnabled ? self.preview.status : nil,
            gopCacheBytes: publisher?.fanOut.gopCacheBytes,
            targets: configuration.targets.map { target in
                let running = live.first { $0.configuration == target }
                let statistics = running?.snapshot
                let queue = running?.queue.statistics
                var attempt: Int?
                let state: String
                switch statistics?.state {
                case .some(let current):
                    state = current.name
                    if case .backingOff(let number, _) = current { attempt = number }
                    if case .connecting(let number) = current { attempt = number }
                case .none:
                    state = !target.enabled ? "disabled" : (publisher == nil ? "idle" : "connecting")
                }
                return StreamStatus.Target(
                    name: target.name,
                    url: "\(target.url)",
                    state: state,
                    enabled: target.enabled,
                    attempt: attempt,
                    nextRetrySeconds: statistics?.nextRetry.map { max(0, ($0 - now).inSeconds) },
                    lastError: statistics?.lastError,
                    connections: statistics?.connections ?? 0,
                    bytesSent: statistics?.bytesSent ?? 0,
                    queuedBytes: queue?.queuedBytes ?? 0,
                    droppedMessages: queue?.droppedMessages ?? 0,
                    behind: queue?.behind ?? false
                )
            }
        )
    }
}
