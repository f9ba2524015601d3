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
import AsyncHTTPClient
import Foundation
import KubernetesClient
import KubernetesTestServer
import LiveStreamModel
import Logging
import NIOCore
import NIOHTTP1
import Operator
import Synchronization

/// The operator at scale: N LiveStreams created at once, the time until every one is Ready, the API requests per
/// stream by verb, the operator's resident memory at rest, and what it asks of the API server in a quiet minute.
///
/// The operator runs as its own process (`liverelay operator`, from the same build), so its memory is its own; the
/// API server is the in-process test server, or the cluster of `LIVERELAY_TEST_KUBECONFIG` (its namespace, with the
/// CRDs installed; with KEDA, or every relay starts a pod). Requests are counted by the operator itself
/// (`liverelay_operator_kubernetes_requests_total` on its `/metrics`).
@main
struct OperatorBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liverelay-operator-bench",
        abstract: "Create LiveStreams at once and measure the operator: time to Ready, requests, memory, quiet."
    )

    @Option(help: "LiveStreams to create.")
    var streams = 1000

    @Option(help: "Creates in flight at once.")
    var concurrency = 32

    @Option(help: "Seconds of the quiet window after every stream is Ready and the operator settled.")
    var quietSeconds = 60

    @Option(help: "The operator's reconcile workers.")
    var workers = 4

    @Option(help: "The port range, LOW-HIGH (as many ports as streams at least).")
    var portRange = "20000-39999"

    @Flag(help: "Install KEDA's ScaledObject CRD in the test server (a ScaledObject per stream).")
    var keda = false

    @Option(help: "The liverelay executable (default: the one beside this benchmark).")
    var liverelay: String?

    @Option(help: "Where the operator's HTTP endpoints listen.")
    var operatorHTTP = "127.0.0.1:18081"

    @Flag(help: "Create no gateway Service (as on a cluster without the gateway installed).")
    var noGatewayService = false

    @Option(help: "Seconds to wait at most for the operator to settle (nothing queued, no request for 5 s).")
    var settleTimeout = 300

    func run() async throws {
        var logger = Logger(label: "operator-bench")
        logger.logLevel = .warning
        let executable =
            self.liverelay
            ?? Bundle.main.executableURL!.deletingLastPathComponent().appendingPathComponent("liverelay").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ValidationError("no liverelay executable at \(executable); build it first (swift build)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("operator-bench-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()

        if let path = ProcessInfo.processInfo.environment["LIVERELAY_TEST_KUBECONFIG"], !path.isEmpty {
            let configuration = try KubernetesConfiguration.kubeconfig(path: path)
            try await withKubernetesClient(configuration: configuration, logger: logger) { client in
                try await self.measure(
                    client: client,
                    kubeconfig: path,
                    namespace: client.namespace,
                    executable: executable,
                    where: "the cluster of LIVERELAY_TEST_KUBECONFIG",
                    cleanUp: true
                )
            }
            return
        }
        try await withKubernetesTestServer(
            configuration: .init(historyLimit: max(10_000, self.streams * 40)),
            logger: logger
        ) { server in
            try server.installCRD(
                yaml: String(contentsOf: repository.appendingPathComponent("crds/livestream.yaml"), encoding: .utf8)
            )
            if self.keda {
                let crd = repository.deletingLastPathComponent().appendingPathComponent(
                    "shared/schemas/keda.sh_scaledobjects.yaml"
                )
                guard FileManager.default.fileExists(atPath: crd.path) else {
                    throw ValidationError("--keda needs KEDA's ScaledObject CRD at \(crd.path)")
                }
                try server.installCRD(yaml: String(contentsOf: crd, encoding: .utf8))
            }
            let kubeconfig = directory.appendingPathComponent("kubeconfig").path
            try server.writeKubeconfig(to: kubeconfig)
            let configuration = try KubernetesConfiguration.kubeconfig(path: kubeconfig)
            try await withKubernetesClient(configuration: configuration, logger: logger) { client in
                try await self.measure(
                    client: client,
                    kubeconfig: kubeconfig,
                    namespace: "default",
                    executable: executable,
                    where: "the in-process test server" + (self.keda ? " with KEDA's CRD" : ""),
                    cleanUp: false
                )
            }
        }
    }

    func measure(
        client: KubernetesClient,
        kubeconfig: String,
        namespace: String,
        executable: String,
        where place: String,
        cleanUp: Bool
    ) async throws {
        let prefix = "bench-\(UInt32.random(in: 0...UInt32.max) % 100_000)"
        // The gateway Service's port list is one Service for every stream, applied by the operator with the child
        // Services' verb and resource: its changes are counted apart, from a watch of it.
        let gatewayChanges = Counter()
        let gatewayWatch: Task<Void, Never>?
        if self.noGatewayService {
            gatewayWatch = nil
        } else {
            let service = try await self.createGatewayService(client, namespace: namespace)
            let stream = try await client.watch(
                KubernetesObject.self,
                .services,
                namespace: namespace,
                options: WatchOptions(
                    resourceVersion: service.metadata.resourceVersion,
                    fieldSelector: "metadata.name=liverelay-gateway",
                    timeoutSeconds: 86_400
                )
            )
            gatewayWatch = Task {
                do {
                    for try await event in stream {
                        if case .modified = event { gatewayChanges.add() }
                    }
                } catch {}
            }
        }
        defer { gatewayWatch?.cancel() }
        let operatorProcess = Process()
        operatorProcess.executableURL = URL(fileURLWithPath: executable)
        operatorProcess.arguments = [
            "operator", "--kubeconfig", kubeconfig, "--namespace", namespace, "--gateway-namespace", namespace,
            "--disable-leader-election", "--http-listen", self.operatorHTTP, "--port-range", self.portRange,
            "--workers", "\(self.workers)", "--ingress-class", "nginx", "--ingress-host", "live.example.com",
            "--ingest-host", "rtmp.example.com", "--log-level", "error",
        ]
        try operatorProcess.run()
        let pid = operatorProcess.processIdentifier
        defer {
            if operatorProcess.isRunning {
                operatorProcess.terminate()
                operatorProcess.waitUntilExit()
            }
        }
        let metricsURL = "http://\(self.operatorHTTP)/metrics"
        try await waitFor("the operator ready", timeout: .seconds(120)) {
            (try? await httpGet("http://\(self.operatorHTTP)/readyz").status) == 200
        }
        let rssStart = ProcStatus.rssMiB(pid) ?? 0
        let before = try await OperatorMetrics.scrape(metricsURL)
        let cpuStart = ProcStatus.cpuSeconds(pid) ?? 0

        // All at once.
        let names = (0..<self.streams).map { String(format: "\(prefix)-%05d", $0) }
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            var iterator = names.makeIterator()
            func next() -> String? { iterator.next() }
            for _ in 0..<self.concurrency {
                guard let name = next() else { break }
                group.addTask { try await self.create(client, name, namespace: namespace) }
            }
            while try await group.next() != nil {
                guard let name = next() else { continue }
                group.addTask { try await self.create(client, name, namespace: namespace) }
            }
        }
        let created = ContinuousClock.now - start
        // A list of every stream each second (not faster: the test server shares the machine with the operator).
        try await waitFor("every stream Ready", timeout: .seconds(3600), interval: .seconds(1)) {
            try await self.readyCount(client, namespace: namespace, prefix: prefix) == names.count
        }
        let allReady = ContinuousClock.now - start
        let afterReady = try await OperatorMetrics.scrape(metricsURL)

        // Settled: nothing queued, and no request for five seconds; an operator that never stops asking is reported
        // as such after the settle timeout, and measured from there.
        var previous = afterReady
        var still = 0
        let settleDeadline = ContinuousClock.now + .seconds(self.settleTimeout)
        while still < 5 && ContinuousClock.now < settleDeadline {
            try await Task.sleep(for: .seconds(1))
            let now = try await OperatorMetrics.scrape(metricsURL)
            still = now.requests == previous.requests && now.depth == 0 ? still + 1 : 0
            previous = now
        }
        let didSettle = still >= 5
        let settledAfter = ContinuousClock.now - start
        let settled = previous
        let gatewayAtSettle = gatewayChanges.value
        let rssAtRest = ProcStatus.rssMiB(pid) ?? 0
        let rssPeak = ProcStatus.peakRSSMiB(pid) ?? 0
        let rssAnonAtRest = ProcStatus.kibField("RssAnon:", pid).map { $0 / 1024 } ?? 0
        let rssFileAtRest = ProcStatus.kibField("RssFile:", pid).map { $0 / 1024 } ?? 0
        let cpuBefore = ProcStatus.cpuSeconds(pid) ?? 0
        // For whoever inspects the operator at rest meanwhile (a heap profile, `/proc/PID/smaps`).
        print("settled; the quiet window of \(self.quietSeconds) s starts (operator pid \(pid))")
        // Now, also into a pipe or a file (tools/relay-symbol-order.sh waits for this line).
        fflush(nil)

        // The quiet window.
        try await Task.sleep(for: .seconds(self.quietSeconds))
        let quiet = try await OperatorMetrics.scrape(metricsURL)
        let cpuQuiet = (ProcStatus.cpuSeconds(pid) ?? 0) - cpuBefore
        let rssAfterQuiet = ProcStatus.rssMiB(pid) ?? 0
        let gatewayInWindow = gatewayChanges.value - gatewayAtSettle

        let creation = settled.requests.subtracting(before.requests)
        let window = quiet.requests.subtracting(settled.requests)
        let n = Double(names.count)
        func seconds(_ duration: Duration) -> String {
            String(
                format: "%.1f s",
                Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
            )
        }
        var report = """
            liverelay-operator-bench: \(names.count) LiveStreams created at once on \(place)\
            \(self.noGatewayService ? ", no gateway Service" : "")
              operator: \(self.workers) workers, no leader election, its own process (pid \(pid))
              created (\(self.concurrency) in flight):   \(seconds(created))
              every stream Ready after:        \(seconds(allReady)) (polled each second)
              \(didSettle ? "settled" : "NOT settled (still asking or queued)") after: \(seconds(settledAfter)); \
            operator CPU from the first create: \(String(format: "%.1f", cpuBefore - cpuStart)) s
              API requests per stream, creation until settled (verb resource: count/stream):

            """
        for (key, count) in creation.byVerbAndResource.sorted(by: { $0.key < $1.key }) {
            report +=
                "    \(key.padding(toLength: 32, withPad: " ", startingAt: 0)) \(String(format: "%.3f", Double(count) / n))\n"
        }
        report += String(
            format: "    %@ %.3f\n    %@ %.3f\n",
            "writes (all)".padding(toLength: 32, withPad: " ", startingAt: 0),
            Double(creation.writes) / n,
            "reads (get, list)".padding(toLength: 32, withPad: " ", startingAt: 0),
            Double(creation.reads) / n
        )
        if !self.noGatewayService {
            report += String(
                format: "    of the service applies, gateway Service port-list changes: %d (%.3f/stream)\n",
                gatewayAtSettle,
                Double(gatewayAtSettle) / n
            )
        }
        report += """
              operator resident memory: \(String(format: "%.1f", rssStart)) MiB before, \
            \(String(format: "%.1f", rssAtRest)) MiB at rest with \(names.count) streams (peak \
            \(String(format: "%.1f", rssPeak)) MiB), \(String(format: "%.1f", rssAfterQuiet)) MiB after the quiet window; \
            at rest \(String(format: "%.1f", rssAnonAtRest)) MiB anonymous, \(String(format: "%.1f", rssFileAtRest)) MiB \
            of files
              quiet window of \(self.quietSeconds) s: \(window.writes) writes, \(window.reads) reads (get, list), \
            \(window.watches) watch requests; \(String(format: "%.2f", cpuQuiet)) s CPU\
            \(self.noGatewayService ? "" : "; \(gatewayInWindow) gateway Service changes")
            """
        if !window.byVerbAndResource.isEmpty {
            report += "\n    in the window: \(window.byVerbAndResource.sorted(by: { $0.key < $1.key }))"
        }
        print(report)

        if cleanUp {
            for name in names {
                try? await client.delete(.liveStreams, name: name, namespace: namespace)
            }
            try await waitFor("the streams released", timeout: .seconds(600), interval: .seconds(2)) {
                try await self.readyCount(client, namespace: namespace, prefix: prefix, anyState: true) == 0
            }
        }
    }

    func create(_ client: KubernetesClient, _ name: String, namespace: String) async throws {
        let object = KubernetesObject(
            apiVersion: LiveStreamResource.apiVersion,
            kind: LiveStreamResource.kind,
            metadata: ObjectMeta(name: name, namespace: namespace),
            fields: ["spec": ["targets": [["name": "yt", "url": "rtmp://a.rtmp.youtube.com/live2"]]]]
        )
        _ = try await client.create(object, .liveStreams, namespace: namespace)
    }

    /// Streams of the run that are Ready (or, with `anyState`, that exist).
    func readyCount(
        _ client: KubernetesClient,
        namespace: String,
        prefix: String,
        anyState: Bool = false
    ) async throws -> Int {
        let items = try await client.listAll(
            KubernetesObject.self,
            .liveStreams,
            namespace: namespace,
            options: ListOptions(limit: 500)
        ).items
        return items.filter { item in
            guard item.metadata.name?.hasPrefix(prefix) == true else { return false }
            if anyState { return true }
            guard case .array(let conditions)? = item["status"]?["conditions"] else { return false }
            return conditions.contains { $0["type"] == "Ready" && $0["status"] == "True" }
        }.count
    }

    /// The gateway Service the operator adds stream ports to (the chart's, in a cluster).
    func createGatewayService(_ client: KubernetesClient, namespace: String) async throws -> KubernetesObject {
        let service = KubernetesObject(
            apiVersion: "v1",
            kind: "Service",
            metadata: ObjectMeta(name: "liverelay-gateway", namespace: namespace),
            fields: [
                "spec": [
                    "type": "ClusterIP",
                    "selector": ["app.kubernetes.io/name": "liverelay-gateway"],
                    "ports": [["name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"]],
                ]
            ]
        )
        do {
            return try await client.create(service, .services, namespace: namespace)
        } catch let error as KubernetesError where error.isConflict {
            return try await client.get(
                KubernetesObject.self,
                .services,
                name: "liverelay-gateway",
                namespace: namespace
            )
        }
    }
}

/// What the operator's `/metrics` says: its API requests by verb, resource and code, and its queue depth.
struct OperatorMetrics {
    struct Requests: Equatable {
        /// `verb resource` → count (all codes).
        var byVerbAndResource: [String: Int] = [:]

        func subtracting(_ other: Requests) -> Requests {
            var result = Requests()
            for (key, count) in self.byVerbAndResource {
                let difference = count - (other.byVerbAndResource[key] ?? 0)
                if difference != 0 { result.byVerbAndResource[key] = difference }
            }
            return result
        }

        func total(_ verbs: Set<String>) -> Int {
            self.byVerbAndResource.filter { verbs.contains(String($0.key.split(separator: " ")[0])) }.values.reduce(
                0,
                +
            )
        }

        var writes: Int { self.total(["create", "apply", "patch", "update", "delete", "deletecollection"]) }
        var reads: Int { self.total(["get", "list"]) }
        var watches: Int { self.total(["watch"]) }
    }

    var requests = Requests()
    var depth: Double = 0

    static func scrape(_ url: String) async throws -> OperatorMetrics {
        let text = try await httpGet(url).body
        var metrics = OperatorMetrics()
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            let series = String(line[..<space])
            if series.hasPrefix("liverelay_operator_kubernetes_requests_total{") {
                let labels = Self.labels(series)
                let key = "\(labels["verb"] ?? "?") \(labels["resource"] ?? "?")"
                metrics.requests.byVerbAndResource[key, default: 0] += Int(value)
            } else if series == "liverelay_operator_workqueue_depth" {
                metrics.depth = value
            }
        }
        return metrics
    }

    static func labels(_ series: String) -> [String: String] {
        guard let open = series.firstIndex(of: "{"), let close = series.lastIndex(of: "}") else { return [:] }
        var labels: [String: String] = [:]
        for pair in series[series.index(after: open)..<close].split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            labels[String(parts[0])] = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return labels
    }
}

/// A count shared between tasks.
final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { self.count.withLock { $0 += 1 } }
    var value: Int { self.count.withLock { $0 } }
}

/// Resident memory and CPU time of a process, from `/proc` (Linux).
enum ProcStatus {
    /// `VmRSS`: resident now.
    static func rssMiB(_ pid: Int32) -> Double? { self.kibField("VmRSS:", pid).map { $0 / 1024 } }

    /// `VmHWM`: the most ever resident.
    static func peakRSSMiB(_ pid: Int32) -> Double? { self.kibField("VmHWM:", pid).map { $0 / 1024 } }

    /// A `kB` line of `/proc/PID/status` (`VmRSS:\t   1234 kB`).
    static func kibField(_ name: String, _ pid: Int32) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            return line.dropFirst(name.count).split(whereSeparator: \.isWhitespace).first.flatMap { Double($0) }
        }
        return nil
    }

    static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// A GET of the operator's local endpoints.
func httpGet(_ url: String) async throws -> (status: Int, body: String) {
    let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
    let body = try await response.body.collect(upTo: 64 << 20)
    return (Int(response.status.code), String(buffer: body))
}

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(self.what)" }
}

func waitFor(
    _ what: String,
    timeout: Duration,
    interval: Duration = .milliseconds(200),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return }
        try await Task.sleep(for: interval)
    }
    throw TimedOut(what: what)
}
