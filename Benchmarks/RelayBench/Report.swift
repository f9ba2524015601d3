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

import ArgumentParser
import Foundation

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tabulate the JSON results of `run` as Markdown, with liverelay's ratios to nginx-rtmp."
    )

    @Argument(help: "JSON files written by `run --output`.")
    var files: [String]

    func run() throws {
        let decoder = JSONDecoder()
        let results = try self.files.map {
            try decoder.decode(PathResult.self, from: Data(contentsOf: URL(fileURLWithPath: $0)))
        }
        print(Self.markdown(results))
    }

    static func describe(_ result: PathResult) -> String {
        """
        \(result.label) streams=\(result.streams) fanout=\(result.fanout): \
        latency p50 \(ms(result.p50)) p99 \(ms(result.p99)) max \(ms(result.max)) ms over \(result.measured) \
        messages, lost \(result.lost), unmatched \(result.unmatched), first keyframe \
        \(result.firstKeyframeDelivered)/\(result.players), start gap \(Int(result.maxStartGapMilliseconds)) ms; \
        CPU \(fixed(result.cpuSecondsPerStreamMinute, 3)) s per stream-minute; RSS idle \
        \(mib(result.idle.rssKiB)) busy \(mib(result.busy.rssKiB)) MiB, \(fixed(result.rssPerStreamMiB, 3)) MiB per \
        stream; bench CPU \(fixed(result.benchCPUPercent, 0)) %
        """
    }

    static func markdown(_ results: [PathResult]) -> String {
        let order = [
            "direct": 0, "splice": 1, "liverelay": 2, "liverelay-tls": 3, "gateway": 4, "shared": 5, "tls": 6,
            "nginx": 7,
        ]
        let sorted = results.sorted {
            ($0.streams, $0.fanout, order[$0.label] ?? 9) < ($1.streams, $1.fanout, order[$1.label] ?? 9)
        }
        var lines = [
            "| Streams | Fan-out | Path | Latency p50 / p99 / max (ms) | Added p50 / p99 / max (ms) "
                + "| CPU s per stream-minute | RSS idle → busy (MiB) | RSS per stream (MiB) | Lost / measured "
                + "| First keyframe | Start gap (ms) | Bench CPU | Note |",
            "|---:|---:|---|---|---|---:|---|---:|---|---|---:|---:|---|",
        ]
        for result in sorted {
            let direct = results.first {
                $0.label == "direct" && $0.streams == result.streams && $0.fanout == result.fanout
            }
            var added = "—"
            if let direct, result.label != "direct" {
                added = [result.p50 - direct.p50, result.p99 - direct.p99, result.max - direct.max].map(ms)
                    .joined(separator: " / ")
            }
            let isRelay = result.label != "direct"
            lines.append(
                "| \(result.streams) | \(result.fanout) | \(result.label) "
                    + "| \(ms(result.p50)) / \(ms(result.p99)) / \(ms(result.max)) | \(added) "
                    + "| \(isRelay ? fixed(result.cpuSecondsPerStreamMinute, 3) : "—") "
                    + "| \(isRelay ? "\(mib(result.idle.rssKiB)) → \(mib(result.busy.rssKiB))" : "—") "
                    + "| \(isRelay ? fixed(result.rssPerStreamMiB, 3) : "—") "
                    + "| \(result.lost) / \(result.lost + result.measured) "
                    + "| \(result.firstKeyframeDelivered) of \(result.players) "
                    + "| \(Int(result.maxStartGapMilliseconds)) | \(fixed(result.benchCPUPercent, 0)) % | \(result.note) |"
            )
        }
        var nginxLines = [
            "",
            "| Streams | Fan-out | CPU per stream, liverelay ÷ nginx | RSS per stream, liverelay ÷ nginx "
                + "| p99 latency, liverelay − nginx (ms) | Idle RSS, liverelay ÷ nginx |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        let scenarios = Set(results.map { [$0.streams, $0.fanout] }).sorted { ($0[0], $0[1]) < ($1[0], $1[1]) }
        /// The result of one path in one scenario (`[streams, fanout]`), if that path ran.
        func path(_ label: String, _ scenario: [Int]) -> PathResult? {
            results.first { $0.label == label && $0.streams == scenario[0] && $0.fanout == scenario[1] }
        }
        for scenario in scenarios {
            guard let relay = path("liverelay", scenario), let nginx = path("nginx", scenario) else { continue }
            nginxLines.append(
                "| \(scenario[0]) | \(scenario[1]) "
                    + "| \(fixed(relay.cpuSecondsPerStreamMinute / nginx.cpuSecondsPerStreamMinute, 2)) "
                    + "| \(fixed(relay.rssPerStreamMiB / nginx.rssPerStreamMiB, 2)) "
                    + "| \(ms(relay.p99 - nginx.p99)) "
                    + "| \(fixed(Double(relay.idle.rssKiB) / Double(nginx.idle.rssKiB), 2)) |"
            )
        }
        if nginxLines.count > 3 {
            lines += nginxLines
        }
        // The gateway paths (local mode: gateway in front of one relay process per stream; on each stream's own port,
        // on the shared port that routes by key, and with rtmps:// on each stream's own port) against the relay alone.
        var gatewayLines = [
            "",
            "| Gateway port | Streams | Fan-out | Added by the gateway p50 / p99 (ms) | CPU per stream, gateway path ÷ relay alone |",
            "|---|---:|---:|---|---:|",
        ]
        let ports = [
            ("gateway", "the stream's own"), ("shared", "shared, by key"), ("tls", "the stream's own, rtmps://"),
        ]
        for (label, port) in ports {
            for scenario in scenarios {
                guard let relay = path("liverelay", scenario), let gateway = path(label, scenario) else { continue }
                gatewayLines.append(
                    "| \(port) | \(scenario[0]) | \(scenario[1]) "
                        + "| \(ms(gateway.p50 - relay.p50)) / \(ms(gateway.p99 - relay.p99)) "
                        + "| \(fixed(gateway.cpuSecondsPerStreamMinute / relay.cpuSecondsPerStreamMinute, 2)) |"
                )
            }
        }
        if gatewayLines.count > 3 {
            lines += gatewayLines
        }
        // rtmps:// ingest at the relay (bench-relay.sh's tls path) against rtmp:// to the same relay.
        var tlsLines = [
            "",
            "| Streams | Fan-out | CPU per stream, relay with rtmps:// ÷ rtmp:// "
                + "| RSS per stream, rtmps:// ÷ rtmp:// | p99 latency, rtmps:// − rtmp:// (ms) |",
            "|---:|---:|---:|---:|---:|",
        ]
        for scenario in scenarios {
            guard let plain = path("liverelay", scenario), let tls = path("liverelay-tls", scenario) else { continue }
            tlsLines.append(
                "| \(scenario[0]) | \(scenario[1]) "
                    + "| \(fixed(tls.cpuSecondsPerStreamMinute / plain.cpuSecondsPerStreamMinute, 2)) "
                    + "| \(fixed(tls.rssPerStreamMiB / plain.rssPerStreamMiB, 2)) | \(ms(tls.p99 - plain.p99)) |"
            )
        }
        if tlsLines.count > 3 {
            lines += tlsLines
        }
        // The splice (the gateway's TCP splice alone: NIO moving the same bytes with no RTMP work) is the floor of a
        // SwiftNIO media path; what liverelay spends above it is its own work.
        var floorLines = [
            "",
            "| Streams | Fan-out | CPU per stream, splice ÷ nginx | CPU per stream, liverelay ÷ splice "
                + "| liverelay − splice (CPU s per stream-minute) |",
            "|---:|---:|---:|---:|---:|",
        ]
        for scenario in scenarios {
            guard let splice = path("splice", scenario), let relay = path("liverelay", scenario),
                let nginx = path("nginx", scenario)
            else {
                continue
            }
            floorLines.append(
                "| \(scenario[0]) | \(scenario[1]) "
                    + "| \(fixed(splice.cpuSecondsPerStreamMinute / nginx.cpuSecondsPerStreamMinute, 2)) "
                    + "| \(fixed(relay.cpuSecondsPerStreamMinute / splice.cpuSecondsPerStreamMinute, 2)) "
                    + "| \(fixed(relay.cpuSecondsPerStreamMinute - splice.cpuSecondsPerStreamMinute, 3)) |"
            )
        }
        if floorLines.count > 3 {
            lines += floorLines
        }
        // Every path against nginx-rtmp in its scenario, variants (`liverelay-64k`, `splice-8k`: read sizes) included.
        var variantLines = [
            "",
            "| Streams | Fan-out | Path | CPU per stream ÷ nginx | RSS per stream ÷ nginx | p99 latency − nginx (ms) |",
            "|---:|---:|---|---:|---:|---:|",
        ]
        let variants = Set(results.map(\.label)).filter {
            $0.hasPrefix("liverelay-") || $0.hasPrefix("splice-") || $0 == "baseline"
        }
        if !variants.isEmpty {
            for scenario in scenarios {
                guard let nginx = path("nginx", scenario) else { continue }
                for label in ["splice", "liverelay"] + variants.sorted() {
                    guard let other = path(label, scenario) else { continue }
                    variantLines.append(
                        "| \(scenario[0]) | \(scenario[1]) | \(label) "
                            + "| \(fixed(other.cpuSecondsPerStreamMinute / nginx.cpuSecondsPerStreamMinute, 2)) "
                            + "| \(fixed(other.rssPerStreamMiB / nginx.rssPerStreamMiB, 2)) "
                            + "| \(ms(other.p99 - nginx.p99)) |"
                    )
                }
            }
            lines += variantLines
        }
        return lines.joined(separator: "\n")
    }
}

private func fixed(_ value: Double, _ digits: Int) -> String {
    value.isFinite ? String(format: "%.\(digits)f", value) : "n/a"
}

private func ms(_ value: Double) -> String { fixed(value, 2) }

private func mib(_ kib: Int) -> String { fixed(Double(kib) / 1024, 1) }
