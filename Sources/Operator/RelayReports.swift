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

import KubernetesController
import LiveStreamModel
import Logging
import RelayAPI
import Synchronization

/// What the running relays say, read from the relays themselves (not the API server), one long-polling watch per
/// running relay.
///
/// The relay answers a watch when what it says in a LiveStream's terms changes (a publisher came or went, a target
/// changed state), and the stream is queued then, within a fraction of a second, with no request to the API server
/// while nothing changes. Only the leader watches: a standby forgets the relays it knew, and the next leader learns
/// them from its reconciles.
final class RelayReports: Sendable {
    private struct Known {
        var report: RelayStreamReport?
        var since: ContinuousClock.Instant
    }

    private let reader: RelayStatusReader
    private let interval: Duration
    private let logger: Logger
    /// The queue of the current leadership term, `nil` while not leading.
    private let queue: @Sendable () -> WorkQueue<ObjectKey>?
    /// Streams whose relay runs: what the relay last reported (`nil`: not read yet, or unreadable) and since when it
    /// runs.
    private let relays = Mutex<[StreamID: Known]>([:])
    /// The streams watched now.
    private let watching = Mutex<Set<StreamID>>([])
    private let watchRequests = AsyncStream.makeStream(of: StreamID.self)

    init(
        reader: RelayStatusReader,
        interval: Duration,
        logger: Logger,
        queue: @escaping @Sendable () -> WorkQueue<ObjectKey>?
    ) {
        self.reader = reader
        self.interval = interval
        self.logger = logger
        self.queue = queue
    }

    /// What the stream's running relay says, and since when it runs (in this process's view): as its watch last
    /// read it, or, for a relay not known yet, read now, and then watched.
    func observe(_ id: StreamID) async -> RelayObservation {
        if let known = self.relays.withLock({ $0[id] }), known.report != nil {
            return RelayObservation(report: known.report, since: known.since)
        }
        let report: RelayStreamReport?
        do {
            report = try await self.reader.read(id)
        } catch {
            self.logger.debug("Cannot read the relay's status", metadata: ["k8s.name": "\(id)", "error": "\(error)"])
            report = nil
        }
        let since = self.relays.withLock { relays in
            let since = relays[id]?.since ?? .now
            relays[id] = Known(report: report, since: since)
            return since
        }
        self.watchRequests.continuation.yield(id)
        return RelayObservation(report: report, since: since)
    }

    /// The stream's relay does not run (any more): stop watching it.
    func forget(_ id: StreamID) {
        self.relays.withLock { _ = $0.removeValue(forKey: id) }
    }

    /// Keeps one watch on each running relay, until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await id in self.watchRequests.stream {
                guard self.watching.withLock({ $0.insert(id).inserted }) else { continue }
                group.addTask { await self.watch(id) }
            }
        }
    }

    /// Watches one relay while the stream's relay runs and this process leads.
    private func watch(_ id: StreamID) async {
        var tag = self.relays.withLock { $0[id]?.report?.entityTag }
        var failures = 0
        while !Task.isCancelled {
            guard let queue = self.queue() else {
                self.relays.withLock { $0.removeAll() }
                break
            }
            guard self.relays.withLock({ $0[id] != nil }) else { break }
            do {
                guard let (report, newTag) = try await self.reader.read(id, changedFrom: tag, wait: self.interval)
                else { continue }
                failures = 0
                tag = newTag ?? report.entityTag
                // The reconcile it queues uses this report. A stream whose relay stopped meanwhile is gone from the
                // map, and stays gone.
                let changed = self.relays.withLock { relays in
                    guard var known = relays[id], known.report != report else { return false }
                    known.report = report
                    relays[id] = known
                    return true
                }
                if changed {
                    queue.add(ObjectKey(namespace: id.namespace, name: id.name))
                }
            } catch {
                // Unreadable now (restarting, or not reachable yet): keep what was last seen rather than flap.
                failures += 1
                let delay = Duration.milliseconds(min(10_000, 250 << min(failures, 6)))
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    break
                }
            }
        }
        self.watching.withLock { _ = $0.remove(id) }
        // Running again since the loop looked: watched again.
        if self.relays.withLock({ $0[id] != nil }) {
            self.watchRequests.continuation.yield(id)
        }
    }
}
