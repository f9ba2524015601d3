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
import LiveStreamModel
import Synchronization
import TimeSupport

/// One stream's traffic through the gateway, as ``Gateway/statistics(for:)`` reports it.
public struct GatewayStreamStatistics: Hashable, Sendable {
    /// Connections proxied to the relay now.
    public var live: Int
    /// Connections held now, waiting for the relay.
    public var held: Int
    /// Bytes from clients to the relay, over all connections so far.
    public var bytesIn: Int
    /// Bytes from the relay to clients.
    public var bytesOut: Int
    /// Time connections spent held, summed over every connection that was held and is no longer.
    public var holdTime: Duration
}

/// Per-stream connection counts and byte counters, and the metrics that mirror them.
///
/// Counts change under one lock so that "held for this stream" and "held in total" stay consistent with the limits.
/// Bytes are added per batch of reads, not per byte, by the glue handlers through a ``ByteMeter``.
final class GatewayAccounting: Sendable {
    enum HoldDecision: Equatable {
        /// Held; `activate` is true for the first held connection of the stream, which wakes the relay.
        case held(activate: Bool)
        case perStreamLimit
        case totalLimit
    }

    /// Counts one direction of one stream's bytes; shared by every glue handler of the stream.
    final class ByteMeter: Sendable {
        private let total = Atomic<Int>(0)
        private let counter: Counter?

        /// - Parameter counter: the metric to mirror the total in; `nil` keeps only the total (handler tests).
        init(counter: Counter? = nil) {
            self.counter = counter
        }

        func add(_ bytes: Int) {
            self.total.add(bytes, ordering: .relaxed)
            self.counter?.increment(by: Int64(bytes))
        }

        var value: Int { self.total.load(ordering: .relaxed) }
    }

    private struct Entry {
        var live = 0
        var held = 0
        var holdTime: Duration = .zero
        let bytesIn: ByteMeter
        let bytesOut: ByteMeter
        let liveGauge: Gauge
        let heldGauge: Gauge
        let holdTimer: Timer
    }

    private struct Waiter {
        var stream: StreamID
        var until: @Sendable (_ live: Int, _ held: Int) -> Bool
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var entries: [StreamID: Entry] = [:]
        var heldTotal = 0
        /// Callers of ``waitForConnections(of:until:)``, woken when their stream's counts change.
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())
    private let factory: any MetricsFactory

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    // Labels are the stream's namespace and name: never a key, never a client address (unbounded cardinality).
    private static func dimensions(_ stream: StreamID) -> [(String, String)] {
        [("namespace", stream.namespace), ("stream", stream.name)]
    }

    private func makeEntry(_ stream: StreamID) -> Entry {
        let dimensions = Self.dimensions(stream)
        let factory = self.factory
        return Entry(
            bytesIn: ByteMeter(
                counter: Counter(
                    label: "liverelay_gateway_bytes_total",
                    dimensions: dimensions + [("direction", "in")],
                    factory: factory
                )
            ),
            bytesOut: ByteMeter(
                counter: Counter(
                    label: "liverelay_gateway_bytes_total",
                    dimensions: dimensions + [("direction", "out")],
                    factory: factory
                )
            ),
            liveGauge: Gauge(
                label: "liverelay_gateway_connections",
                dimensions: dimensions + [("state", "live")],
                factory: factory
            ),
            heldGauge: Gauge(
                label: "liverelay_gateway_connections",
                dimensions: dimensions + [("state", "held")],
                factory: factory
            ),
            holdTimer: Timer(label: "liverelay_gateway_hold_duration", dimensions: dimensions, factory: factory)
        )
    }

    private func withEntry<Result>(_ stream: StreamID, _ body: (inout Entry, inout State) -> Result) -> Result {
        let (result, ready) = self.state.withLock { state in
            var entry = state.entries.removeValue(forKey: stream) ?? self.makeEntry(stream)
            let result = body(&entry, &state)
            state.entries[stream] = entry
            var ready: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in state.waiters where waiter.stream == stream && waiter.until(entry.live, entry.held) {
                ready.append(waiter.continuation)
                state.waiters[id] = nil
            }
            return (result, ready)
        }
        for continuation in ready {
            continuation.resume()
        }
        return result
    }

    /// Returns once `until` holds for the stream's live and held counts (at once if it does now), or when the
    /// task is cancelled: an event to wait on instead of polling the counts.
    func waitForConnections(of stream: StreamID, until: @escaping @Sendable (_ live: Int, _ held: Int) -> Bool) async {
        let id = self.state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = self.state.withLock { state -> Bool in
                    let entry = state.entries[stream]
                    if until(entry?.live ?? 0, entry?.held ?? 0) || Task.isCancelled {
                        return true
                    }
                    state.waiters[id] = Waiter(stream: stream, until: until, continuation: continuation)
                    return false
                }
                if now {
                    continuation.resume()
                }
            }
        } onCancel: {
            self.state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }

    func hold(_ stream: StreamID, maxPerStream: Int, maxTotal: Int) -> HoldDecision {
        self.withEntry(stream) { entry, state in
            guard entry.held < maxPerStream else {
                return .perStreamLimit
            }
            guard state.heldTotal < maxTotal else {
                return .totalLimit
            }
            entry.held += 1
            state.heldTotal += 1
            entry.heldGauge.record(entry.held)
            return .held(activate: entry.held == 1)
        }
    }

    /// A held connection stopped being held: proxied, refused on timeout, or closed by the client.
    func release(_ stream: StreamID, heldFor duration: Duration) {
        self.withEntry(stream) { entry, state in
            entry.held -= 1
            state.heldTotal -= 1
            entry.holdTime += duration
            entry.heldGauge.record(entry.held)
            entry.holdTimer.recordNanoseconds(duration.inNanoseconds)
        }
    }

    func goLive(_ stream: StreamID) -> (bytesIn: ByteMeter, bytesOut: ByteMeter) {
        self.withEntry(stream) { entry, _ in
            entry.live += 1
            entry.liveGauge.record(entry.live)
            return (entry.bytesIn, entry.bytesOut)
        }
    }

    func endLive(_ stream: StreamID) {
        self.withEntry(stream) { entry, _ in
            entry.live -= 1
            entry.liveGauge.record(entry.live)
        }
    }

    func refused(_ stream: StreamID?, reason: String) {
        let dimensions = stream.map(Self.dimensions) ?? []
        let counter = Counter(
            label: "liverelay_gateway_refused_total",
            dimensions: dimensions + [("reason", reason)],
            factory: self.factory
        )
        counter.increment()
    }

    func connections(for stream: StreamID) -> (live: Int, held: Int) {
        self.state.withLock { state in
            guard let entry = state.entries[stream] else {
                return (0, 0)
            }
            return (entry.live, entry.held)
        }
    }

    func statistics(for stream: StreamID) -> GatewayStreamStatistics? {
        self.state.withLock { state in
            state.entries[stream].map {
                GatewayStreamStatistics(
                    live: $0.live,
                    held: $0.held,
                    bytesIn: $0.bytesIn.value,
                    bytesOut: $0.bytesOut.value,
                    holdTime: $0.holdTime
                )
            }
        }
    }
}
