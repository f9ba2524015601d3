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

public import CoreMetrics
import Synchronization

/// The relay's metrics, made through an injected `MetricsFactory` (swift-prometheus' in production, a test
/// factory in tests). Labels are stream and target *names*, never keys or URLs.
///
/// Counters are counted where things happen (bytes in and out, reconnects, rule violations); gauges (states, queue
/// depth, bitrate, frame rate, keyframe interval) are set from the stats just before each scrape, by
/// ``RelayServer/refreshMetrics()``.
public struct RelayMetrics: Sendable {
    let factory: any MetricsFactory

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    struct Stream: Sendable {
        let name: String
        let factory: any MetricsFactory
        let ingestBytes: Counter
        let ruleViolations: Counter

        func target(_ name: String) -> Target {
            Target(stream: self.name, name: name, factory: self.factory)
        }
    }

    final class Target: Sendable {
        let sentBytes: Counter
        let reconnects: Counter
        let droppedMessages: Counter
        /// The dropped-message count last reported, so the counter moves by the difference.
        let reportedDrops = Mutex<Int>(0)

        init(stream: String, name: String, factory: any MetricsFactory) {
            let dimensions = [("stream", stream), ("target", name)]
            self.sentBytes = Counter(
                label: "liverelay_target_sent_bytes_total",
                dimensions: dimensions,
                factory: factory
            )
            self.reconnects = Counter(
                label: "liverelay_target_reconnects_total",
                dimensions: dimensions,
                factory: factory
            )
            self.droppedMessages = Counter(
                label: "liverelay_target_dropped_messages_total",
                dimensions: dimensions,
                factory: factory
            )
        }
    }

    func stream(_ name: String) -> Stream {
        let dimensions = [("stream", name)]
        return Stream(
            name: name,
            factory: self.factory,
            ingestBytes: Counter(label: "liverelay_ingest_bytes_total", dimensions: dimensions, factory: self.factory),
            ruleViolations: Counter(
                label: "liverelay_ingest_rule_violations_total",
                dimensions: dimensions,
                factory: self.factory
            )
        )
    }

    func gauge(_ label: String, _ dimensions: [(String, String)]) -> Gauge {
        Gauge(label: label, dimensions: dimensions, factory: self.factory)
    }
}
