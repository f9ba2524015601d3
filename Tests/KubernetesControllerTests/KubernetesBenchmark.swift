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

import Foundation
import KubernetesClient
import KubernetesController
import KubernetesTestServer
import KubernetesTestSupport
import Logging
import PeerTestSupport
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// Resident set size of this process, from `/proc/self/status` (Linux), in MiB.
func residentMemoryMiB() -> Double? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Double($0) }
        return kilobytes.map { $0 / 1024 }
    }
    return nil
}

/// Not a test: figures for the reflector and the work queue with 10,000 objects.
///
/// Run with `LIVERELAY_BENCHMARK=1 swift test --filter KubernetesBenchmark` (add `-c release` for release figures).
/// Objects are created in the in-process test server directly (not over HTTP); the controller then lists them in
/// pages of 500 over HTTP, and a no-op reconciler with 4 workers drains the queue.
@Suite("KubernetesBenchmark")
struct KubernetesBenchmark {
    static let enabled = ProcessInfo.processInfo.environment["LIVERELAY_BENCHMARK"] == "1"

    @Test("reflector and queue with 10,000 objects", .enabled(if: enabled))
    func tenThousandObjects() async throws {
        let count = Int(ProcessInfo.processInfo.environment["LIVERELAY_BENCHMARK_OBJECTS"] ?? "") ?? 10_000
        var logger = Logger(label: "benchmark")
        logger.logLevel = .warning
        try await withKubernetesTestServer(configuration: .init(historyLimit: count * 2), logger: logger) { server in
            let label = "bench"
            let setupStart = ContinuousClock.now
            for index in 0..<count {
                try server.apply(
                    [
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": [
                            "name": .string("bench-\(index)"), "namespace": "default", "labels": ["run": "bench"],
                        ],
                        "data": ["index": .string("\(index)"), "payload": .string(String(repeating: "x", count: 256))],
                    ] as JSON
                )
            }
            let setup = ContinuousClock.now - setupStart
            let configuration = try KubernetesConfiguration.kubeconfig(yaml: server.kubeconfig(), baseDirectory: "/")
            let rssBefore = residentMemoryMiB() ?? 0

            try await withKubernetesClient(configuration: configuration, logger: logger) { client in
                let reconciled = Mutex(0)
                let (allDone, allDoneContinuation) = AsyncStream<Void>.makeStream()
                let target = Mutex(count)
                let controller = Controller<KubernetesObject>(
                    client: client,
                    resource: .configMaps,
                    namespace: "default",
                    configuration: ControllerConfiguration(
                        workers: 4,
                        resyncPeriod: nil,
                        listWatch: ListWatchOptions(labelSelector: "run=\(label)", pageSize: 500)
                    ),
                    logger: logger
                ) { _, _ in
                    let (value, goal) = (
                        reconciled.withLock {
                            $0 += 1
                            return $0
                        }, target.withLock { $0 }
                    )
                    if value == goal { allDoneContinuation.yield() }
                    return .done
                }
                let (task, trigger) = await start(controller)
                var done = allDone.makeAsyncIterator()

                let start = ContinuousClock.now
                try await eventually("the first term", interval: .milliseconds(1)) { controller.reflector != nil }
                try await controller.reflector!.waitForSync()
                let synced = ContinuousClock.now - start
                let rssSynced = residentMemoryMiB() ?? 0
                await done.next()
                let firstPass = ContinuousClock.now - start

                // Second pass: every key queued at once, drained by the no-op reconciler.
                target.withLock { $0 = 2 * count }
                let queue = controller.queue!
                let passStart = ContinuousClock.now
                for key in controller.reflector!.keys { queue.add(key) }
                await done.next()
                let pass = ContinuousClock.now - passStart
                let rssEnd = residentMemoryMiB() ?? 0

                trigger.triggerGracefulShutdown()
                try await task.value

                func seconds(_ duration: Duration) -> Double {
                    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
                }
                print(
                    """
                    KubernetesBenchmark: \(count) ConfigMaps (~400 B each), 4 workers, list pages of 500
                      setup (server-side create):         \(String(format: "%.2f", seconds(setup))) s
                      time to initial sync (list+cache):  \(String(format: "%.3f", seconds(synced))) s
                      time to first reconcile of all:     \(String(format: "%.3f", seconds(firstPass))) s
                      no-op reconciles per second:        \(String(format: "%.0f", Double(count) / seconds(pass)))
                      resident memory: before \(String(format: "%.1f", rssBefore)) MiB, synced \(String(format: "%.1f", rssSynced)) MiB, end \(String(format: "%.1f", rssEnd)) MiB (includes the in-process server)
                    """
                )
            }
        }
    }
}
