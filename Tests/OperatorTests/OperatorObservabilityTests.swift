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

import AsyncHTTPClient
import Foundation
import KubernetesClient
import KubernetesController
import KubernetesTestSupport
import LiveStreamModel
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import Operator
import PeerTestSupport
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

/// Log lines kept in memory: level, message and metadata.
final class LogLines: Sendable {
    struct Line: Sendable, CustomStringConvertible {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
        var description: String { "\(self.level) \(self.message) \(self.metadata)" }
    }

    private let lines = Mutex<[Line]>([])

    func append(_ line: Line) { self.lines.withLock { $0.append(line) } }
    var all: [Line] { self.lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "operator-test") { _ in LogLinesHandler(store: self) }
    }
}

struct LogLinesHandler: LogHandler {
    let store: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
        self.store.append(
            LogLines.Line(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" })
        )
    }
}

/// Answers every server-side apply of a NetworkPolicy with 422 Invalid while `failing` is set.
final class RefuseNetworkPolicies: KubernetesMiddleware {
    let failing = Mutex(true)

    func intercept(
        _ request: KubernetesRequest,
        body: KubernetesBody?,
        next: @Sendable (KubernetesRequest, KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    ) async throws -> (KubernetesResponse, KubernetesBody) {
        let (verb, resource) = KubernetesRequestMetrics.describe(request)
        guard verb == "apply", resource == "networkpolicies", self.failing.withLock({ $0 }) else {
            return try await next(request, body)
        }
        let status =
            #"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Invalid","code":422,"message":"injected: spec.ingress is refused"}"#
        return (
            KubernetesResponse(status: 422, headers: [("Content-Type", "application/json")]), KubernetesBody(status)
        )
    }
}

/// The value of the Prometheus sample `name` whose labels include `labels`, summed over the samples that match.
func promSample(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
    var total: Double?
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " ") else { continue }
        let series = line[..<space]
        guard (series.split(separator: "{", maxSplits: 1).first.map(String.init) ?? "") == name else { continue }
        guard labels.allSatisfy({ series.contains("\($0.key)=\"\($0.value)\"") }) else { continue }
        total = (total ?? 0) + (Double(line[line.index(after: space)...]) ?? 0)
    }
    return total
}

func httpGet(_ port: Int, _ path: String) async throws -> (status: Int, body: String) {
    let response = try await HTTPClient.shared.execute(
        HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"),
        timeout: .seconds(5)
    )
    let body = try await response.body.collect(upTo: 4 << 20)
    return (Int(response.status.code), String(buffer: body))
}

@Suite("Operator: health, metrics, and failures shown", .timeLimit(.minutes(3)))
struct OperatorObservabilityTests {
    @Test("/healthz, /readyz and /metrics: ready once synced, metrics of reconciles, the queue and API requests")
    func endpoints() async throws {
        try await withTestCluster(crds: [.liveStream], keda: true) { cluster in
            try await createGatewayService(cluster)
            let registry = PrometheusCollectorRegistry()
            let instance = LiveStreamOperator(
                client: cluster.client,
                configuration: try testConfiguration(cluster),
                metricsFactory: PrometheusMetricsFactory(registry: registry),
                logger: quietLogger
            )
            let (ports, bound) = AsyncStream.makeStream(of: Int.self)
            let http = makeOperatorHTTPApplication(
                health: { instance.health },
                registry: registry,
                host: "127.0.0.1",
                port: 0,
                logger: quietLogger,
                onServerRunning: { bound.yield($0) }
            )
            let httpGroup = ServiceGroup(configuration: .init(services: [.init(service: http)], logger: quietLogger))
            let httpTask = Task { try await httpGroup.run() }
            defer { httpTask.cancel() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())

            // Serving before the operator runs: alive, not ready.
            #expect(try await httpGet(port, "/healthz").status == 200)
            #expect(try await httpGet(port, "/readyz").status == 503)

            let operatorGroup = ServiceGroup(
                configuration: .init(services: [.init(service: instance)], logger: quietLogger)
            )
            let operatorTask = Task { try await operatorGroup.run() }
            try await eventually("ready") { try await httpGet(port, "/readyz").status == 200 }
            #expect(try await httpGet(port, "/readyz").body.contains("leading"))
            #expect(try await httpGet(port, "/healthz").status == 200)

            let name = uniqueName("m")
            _ = try await cluster.client.createLiveStream(name, namespace: cluster.namespace)
            try await eventually("Ready") {
                try await cluster.client.liveStream(name, namespace: cluster.namespace).condition("Ready")?["status"]
                    == "True"
            }
            let text = try await httpGet(port, "/metrics").body
            #expect(
                (promSample(text, "liverelay_operator_reconciles_total", ["result": "success"]) ?? 0) >= 1,
                "\(text)"
            )
            #expect((promSample(text, "liverelay_operator_reconcile_duration_seconds_count") ?? 0) >= 1)
            #expect((promSample(text, "liverelay_operator_workqueue_latency_seconds_count") ?? 0) >= 1)
            #expect(promSample(text, "liverelay_operator_workqueue_depth") != nil)
            #expect(promSample(text, "liverelay_operator_leader") == 1)
            let requests = "liverelay_operator_kubernetes_requests_total"
            #expect((promSample(text, requests, ["verb": "apply", "resource": "configmaps"]) ?? 0) >= 1)
            #expect(
                (promSample(text, requests, ["verb": "create", "resource": "deployments", "code": "201"]) ?? 0) >= 1
            )
            #expect((promSample(text, requests, ["verb": "patch", "resource": "livestreams/status"]) ?? 0) >= 1)
            #expect((promSample(text, requests, ["verb": "watch", "resource": "secrets", "code": "200"]) ?? 0) >= 1)
            #expect(!text.contains(name), "a metric label names the stream")

            await operatorGroup.triggerGracefulShutdown()
            _ = try? await operatorTask.value
            #expect(try await httpGet(port, "/healthz").status == 503)
            #expect(try await httpGet(port, "/readyz").status == 503)
            await httpGroup.triggerGracefulShutdown()
        }
    }

    @Test(
        "a failing reconcile: one warning (not one per retry), Ready=False ReconcileFailed, a Warning event, a failure metric; then recovery"
    )
    func failureShown() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            try await createGatewayService(cluster)
            let registry = PrometheusCollectorRegistry()
            let logs = LogLines()
            let refuse = RefuseNetworkPolicies()
            let instance = LiveStreamOperator(
                client: cluster.client.adding(refuse),
                configuration: try testConfiguration(cluster),
                metricsFactory: PrometheusMetricsFactory(registry: registry),
                logger: logs.logger
            )
            let group = ServiceGroup(configuration: .init(services: [.init(service: instance)], logger: quietLogger))
            let task = Task { try await group.run() }
            defer { task.cancel() }
            let client = cluster.client
            let ns = cluster.namespace
            let name = uniqueName("fail")
            _ = try await client.createLiveStream(name, namespace: ns)
            try await eventually("Ready=False ReconcileFailed") {
                let ready = try await client.liveStream(name, namespace: ns).condition("Ready")
                return ready?["reason"] == "ReconcileFailed"
                    && ready?["message"]?.stringValue?.contains("spec.ingress is refused") == true
            }
            // Several retries with backoff, then the one warning.
            try await eventually("retried") {
                (promSample(scrape(registry), "liverelay_operator_reconcile_failures_total", ["reason": "Invalid"]) ?? 0)
                    >= 4
            }
            let key = "\(ns)/\(name)"
            let failed = logs.all.filter { $0.message == "k8s reconcile failed; retrying with backoff" }
                .filter { $0.metadata["k8s.key"] == key }
            let warnings = failed.filter { $0.level == .warning }
            let retries = failed.filter { $0.level == .debug }
            #expect(warnings.count == 1, "\(failed)")
            #expect(retries.count >= 3)
            let events = try await client.listAll(KubernetesObject.self, .eventsV1, namespace: ns).items
            let warning = events.filter {
                $0["reason"] == "ReconcileFailed" && $0["regarding"]?["name"] == .string(name)
            }
            #expect(warning.count == 1, "one event for the failure, not one per retry")
            #expect(warning.first?["type"] == "Warning")
            #expect(
                (promSample(
                    scrape(registry),
                    "liverelay_operator_kubernetes_requests_total",
                    [
                        "verb": "apply", "resource": "networkpolicies", "code": "422",
                    ]
                ) ?? 0) >= 4
            )

            refuse.failing.withLock { $0 = false }
            try await eventually("recovered") {
                try await client.liveStream(name, namespace: ns).condition("Ready")?["status"] == "True"
            }
            try await eventually("the recovery logged") {
                logs.all.contains { $0.message == "k8s reconcile succeeded again" && $0.metadata["k8s.key"] == key }
            }
            // The stream key is nowhere in the logs, events or status.
            let secret = try await client.child(.secrets, "\(name)-stream-key", namespace: ns)
            let streamKey = try #require(
                secret["data"]?["streamKey"]?.stringValue.flatMap { Data(base64Encoded: $0) }
                    .map { String(decoding: $0, as: UTF8.self) }
            )
            #expect(!logs.all.contains { $0.description.contains(streamKey) })
            let notes = try await client.listAll(KubernetesObject.self, .eventsV1, namespace: ns).items
                .compactMap { $0["note"]?.stringValue }
            #expect(!notes.contains { $0.contains(streamKey) })
            let status = try JSONEncoder().encode(try await client.liveStream(name, namespace: ns)["status"])
            #expect(!String(decoding: status, as: UTF8.self).contains(streamKey))
            #expect(!scrape(registry).contains(streamKey))

            await group.triggerGracefulShutdown()
            _ = try? await task.value
        }
    }
}

func scrape(_ registry: PrometheusCollectorRegistry) -> String {
    String(decoding: registry.emitToBuffer(), as: UTF8.self)
}
