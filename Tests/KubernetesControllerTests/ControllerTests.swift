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
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing
import TimeSupport

/// What reconciles saw: per key the last reconciled resourceVersion (`"deleted"` when the object was gone), and
/// every reconcile's interval per controller.
final class ReconcileRecorder: Sendable {
    struct Interval: Sendable {
        var controller: String
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant
    }

    private let state = Mutex<
        (last: [ObjectKey: String], intervals: [Interval], active: [ObjectKey: Int], doubled: Int)
    >(
        ([:], [], [:], 0)
    )

    func begin(_ key: ObjectKey) {
        self.state.withLock {
            $0.active[key, default: 0] += 1
            if $0.active[key]! > 1 { $0.doubled += 1 }
        }
    }

    func end(_ key: ObjectKey, controller: String, object: KubernetesObject?, start: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        self.state.withLock {
            $0.active[key, default: 1] -= 1
            $0.last[key] = object?.metadata.resourceVersion ?? "deleted"
            $0.intervals.append(Interval(controller: controller, start: start, end: now))
        }
    }

    var last: [ObjectKey: String] { self.state.withLock { $0.last } }
    var intervals: [Interval] { self.state.withLock { $0.intervals } }
    /// How often a key was reconciled by two workers at once (must stay 0).
    var doubled: Int { self.state.withLock { $0.doubled } }

    func reconcile(
        controller: String,
        delay: Duration = .zero
    ) -> @Sendable (ObjectKey, KubernetesObject?) async throws -> ReconcileAction {
        { key, object in
            let start = ContinuousClock.now
            self.begin(key)
            defer { self.end(key, controller: controller, object: object, start: start) }
            if delay > .zero { try await Task.sleep(for: delay) }
            return .done
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes; a throwing check counts as not holding. For waiting on another process's state (the API server's),
/// where there is no event to await.
func eventually(
    _ what: @autoclosure () -> String = "condition",
    timeout: Duration = .seconds(30),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        // The server may be refusing connections on purpose: an error means "not yet".
        if (try? await condition()) == true { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out waiting for \(what())")
    throw CancellationError()
}

/// The server's current view: key → resourceVersion of every ConfigMap with the label.
func serverState(_ client: KubernetesClient, label: String) async throws -> [ObjectKey: String] {
    let (items, _) = try await client.listAll(
        KubernetesObject.self,
        .configMaps,
        options: ListOptions(labelSelector: "run=\(label)")
    )
    return Dictionary(uniqueKeysWithValues: items.map { (ObjectKey($0), $0.metadata.resourceVersion ?? "") })
}

func configMap(_ name: String, namespace: String, label: String, value: String) -> KubernetesObject {
    KubernetesObject(
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: ObjectMeta(name: name, namespace: namespace, labels: ["run": label]),
        fields: ["data": ["v": .string(value)]]
    )
}

func fastOptions(label: String) -> ListWatchOptions {
    ListWatchOptions(
        labelSelector: "run=\(label)",
        watchTimeoutSeconds: 60,
        backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(400))
    )
}

var quietLogger: Logger {
    var logger = Logger(label: "controller-test")
    logger.logLevel = .warning
    return logger
}

/// Runs `controller` in an unstructured task under its own graceful-shutdown trigger.
func start(_ controller: some Service) async -> (task: Task<Void, any Error>, trigger: GracefulShutdownTestTrigger) {
    let (triggers, continuation) = AsyncStream<GracefulShutdownTestTrigger>.makeStream()
    let task = Task {
        try await testGracefulShutdown { trigger in
            continuation.yield(trigger)
            try await controller.run()
        }
    }
    var iterator = triggers.makeAsyncIterator()
    return (task, await iterator.next()!)
}

enum Fault: String, CaseIterable, Sendable {
    case dropWatches, compact, refuseConnections
}

@Suite("Controller against the test server (or LIVERELAY_TEST_KUBECONFIG)", .timeLimit(.minutes(3)))
struct ControllerTests {
    @Test("the cache and reconciles converge after a fault", arguments: Fault.allCases)
    func convergesAfterFault(_ fault: Fault) async throws {
        try await withTestCluster { cluster in
            let (client, server) = (cluster.client, cluster.server)
            let label = uniqueName("run")
            let recorder = ReconcileRecorder()
            let controller = Controller<KubernetesObject>(
                client: client,
                resource: .configMaps,
                namespace: cluster.namespace,
                configuration: ControllerConfiguration(workers: 3, listWatch: fastOptions(label: label)),
                logger: quietLogger,
                reconcile: recorder.reconcile(controller: "c")
            )
            let (task, trigger) = await start(controller)
            let names = (0..<10).map { "\(label)-\($0)" }
            for name in names {
                _ = try await client.create(
                    configMap(name, namespace: cluster.namespace, label: label, value: "0"),
                    .configMaps
                )
            }
            try await eventually("initial sync") { controller.reflector?.count == names.count }

            switch fault {
            case .dropWatches: server?.dropWatches()
            case .compact: server?.compact()
            case .refuseConnections: server?.refuseConnections(for: .seconds(3))
            }
            cluster.notExercised("the \(fault) fault (injected into the in-process server); only convergence is")
            // Change things while the watch is down (through the server directly when it refuses connections).
            for name in names.prefix(5) {
                if let server, fault == .refuseConnections {
                    try server.apply(json(configMap(name, namespace: cluster.namespace, label: label, value: "1")))
                } else {
                    _ = try await client.patch(
                        KubernetesObject.self,
                        .configMaps,
                        name: name,
                        mergePatch: ["data": ["v": "1"]]
                    )
                }
            }
            if fault == .compact { server?.dropWatches() }
            try await eventually("converged after \(fault)", timeout: .seconds(30)) {
                let expected = try await serverState(client, label: label)
                let cached = Dictionary(
                    uniqueKeysWithValues: (controller.reflector?.list() ?? []).map {
                        (ObjectKey($0), $0.metadata.resourceVersion ?? "")
                    }
                )
                return cached == expected && recorder.last == expected
            }
            #expect(recorder.doubled == 0)
            trigger.triggerGracefulShutdown()
            try await task.value
            for name in names { try await client.delete(.configMaps, name: name) }
        }
    }

    @Test("no event is lost: every object's final state is reconciled through faults")
    func noEventLost() async throws {
        try await withTestCluster { cluster in
            let (client, server) = (cluster.client, cluster.server)
            let label = uniqueName("run")
            let recorder = ReconcileRecorder()
            let controller = Controller<KubernetesObject>(
                client: client,
                resource: .configMaps,
                namespace: cluster.namespace,
                configuration: ControllerConfiguration(workers: 4, listWatch: fastOptions(label: label)),
                logger: quietLogger,
                reconcile: recorder.reconcile(controller: "c", delay: .milliseconds(1))
            )
            let (task, trigger) = await start(controller)
            let count = 60
            cluster.notExercised("dropped watches, compactions and refused connections (the in-process server's)")
            let names = (0..<count).map { "\(label)-\($0)" }
            for (index, name) in names.enumerated() {
                _ = try await client.create(
                    configMap(name, namespace: cluster.namespace, label: label, value: "0"),
                    .configMaps
                )
                if index == 20 { server?.dropWatches() }
                if index == 40 { server?.compact() }
            }
            for round in 1...3 {
                for (index, name) in names.enumerated() where index % round == 0 {
                    _ = try await client.patch(
                        KubernetesObject.self,
                        .configMaps,
                        name: name,
                        mergePatch: ["data": ["v": .string("\(round)")]]
                    )
                }
                if round == 1 { server?.compact() }
                if round == 2 { server?.dropWatches() }
            }
            if let server {
                server.refuseConnections(for: .seconds(2))
                for name in names.prefix(10) {
                    try server.apply(
                        json(configMap(name, namespace: cluster.namespace, label: label, value: "during-refusal"))
                    )
                }
                try await Task.sleep(for: .seconds(2))
            }
            for name in names.suffix(15) {
                try await client.delete(.configMaps, name: name)
            }
            server?.compact()
            server?.dropWatches()

            let expected = try await serverState(client, label: label)
            #expect(expected.count == count - 15)
            var deleted = expected
            for name in names.suffix(15) { deleted[ObjectKey(namespace: cluster.namespace, name: name)] = "deleted" }
            try await eventually("every final state reconciled", timeout: .seconds(40)) {
                recorder.last == deleted
            }
            #expect(recorder.doubled == 0)
            trigger.triggerGracefulShutdown()
            try await task.value
            for name in names.prefix(count - 15) { try await client.delete(.configMaps, name: name) }
        }
    }

    @Test("two controllers with one Lease never reconcile at the same time; the standby takes over")
    func leaderElection() async throws {
        try await withTestCluster { cluster in
            let client = cluster.client
            let label = uniqueName("run")
            let lease = uniqueName("lease")
            let recorder = ReconcileRecorder()
            func makeController(_ identity: String) -> Controller<KubernetesObject> {
                Controller<KubernetesObject>(
                    client: client,
                    resource: .configMaps,
                    namespace: cluster.namespace,
                    configuration: ControllerConfiguration(
                        workers: 2,
                        resyncPeriod: .milliseconds(200),
                        listWatch: fastOptions(label: label),
                        leaderElection: LeaderElectionConfiguration(
                            leaseName: lease,
                            identity: identity,
                            // Long enough that a takeover which waited for expiry is told apart from one that did
                            // not, even on a loaded machine where a graceful shutdown takes a second.
                            leaseDuration: .seconds(4),
                            renewDeadline: .milliseconds(2500),
                            retryPeriod: .milliseconds(100)
                        )
                    ),
                    logger: quietLogger,
                    reconcile: recorder.reconcile(controller: identity, delay: .milliseconds(5))
                )
            }
            for index in 0..<5 {
                _ = try await client.create(
                    configMap("\(label)-\(index)", namespace: cluster.namespace, label: label, value: "0"),
                    .configMaps
                )
            }
            var running = [
                "a": await start(makeController("a")),
                "b": await start(makeController("b")),
            ]
            func leader() -> String? {
                recorder.intervals.max { $0.end < $1.end }?.controller
            }
            try await eventually("a first leader") { leader() != nil }
            let first = leader()!

            // Kill the first leader (no graceful release): the other takes over once the lease expires.
            running[first]!.task.cancel()
            _ = try? await running[first]!.task.value
            running[first] = nil
            try await eventually("takeover after a kill", timeout: .seconds(10)) {
                leader() != nil && leader() != first
            }
            let second = leader()!

            // A third candidate joins; the second leader shuts down gracefully and releases the lease.
            running["c"] = await start(makeController("c"))
            try await Task.sleep(for: .milliseconds(300))
            let stopped = ContinuousClock.now
            running[second]!.trigger.triggerGracefulShutdown()
            try await running[second]!.task.value
            running[second] = nil
            try await eventually("takeover after a release", timeout: .seconds(10)) { leader() == "c" }
            let takeover = recorder.intervals.filter { $0.controller == "c" }.map(\.start).min()!
            #expect(takeover - stopped < .seconds(3), "a released lease is taken without waiting for expiry (4 s)")

            for (_, controller) in running {
                controller.trigger.triggerGracefulShutdown()
                try await controller.task.value
            }

            let intervals = recorder.intervals
            for (i, x) in intervals.enumerated() {
                for y in intervals[(i + 1)...] where x.controller != y.controller {
                    #expect(x.end <= y.start || y.end <= x.start, "\(x.controller) and \(y.controller) overlapped")
                }
            }
            #expect(Set(intervals.map(\.controller)).count == 3)
            for index in 0..<5 { try await client.delete(.configMaps, name: "\(label)-\(index)") }
        }
    }

    @Test(
        "a leader that cannot renew for renewDeadline stops reconciling, then leads again",
        .disabled(if: isRealCluster, "refuses connections of the in-process server: not on a real cluster")
    )
    func stepDownWhenRenewalFails() async throws {
        try await withTestCluster { cluster in
            let client = cluster.client
            let server = try #require(cluster.server)
            let label = uniqueName("run")
            let recorder = ReconcileRecorder()
            let controller = Controller<KubernetesObject>(
                client: client,
                resource: .configMaps,
                namespace: cluster.namespace,
                configuration: ControllerConfiguration(
                    workers: 1,
                    // Resync reconciles from the cache every 50 ms, without the API server: only leadership stops it.
                    resyncPeriod: .milliseconds(50),
                    listWatch: fastOptions(label: label),
                    leaderElection: LeaderElectionConfiguration(
                        leaseName: uniqueName("lease"),
                        identity: "solo",
                        // A renewal deadline a loaded CI machine meets; the refusal below is twice as long.
                        leaseDuration: .seconds(3),
                        renewDeadline: .seconds(2),
                        retryPeriod: .milliseconds(100)
                    )
                ),
                logger: quietLogger,
                reconcile: recorder.reconcile(controller: "solo")
            )
            _ = try await client.create(
                configMap("\(label)-0", namespace: cluster.namespace, label: label, value: "0"),
                .configMaps
            )
            let (task, trigger) = await start(controller)
            try await eventually("leading") { !recorder.intervals.isEmpty }

            let refusedAt = ContinuousClock.now
            server.refuseConnections(for: .seconds(4))
            try await Task.sleep(for: .seconds(4))
            let refusalEnded = ContinuousClock.now
            // The last successful renewal was sent before the refusal, so from renewDeadline after it no reconcile
            // may start: the workers check the lease on the clock before each one, however late the renewal loop
            // runs. The slack covers only a worker preempted between that check and the reconcile's first line.
            let quietFrom = refusedAt + .seconds(2) + .milliseconds(200)
            let during = recorder.intervals.filter { $0.start > quietFrom && $0.start < refusalEnded }
            #expect(during.isEmpty, "reconciled \(during.count) times without the lease")
            #expect(controller.reflector == nil, "no term is running while not leading")

            try await eventually("leading again", timeout: .seconds(10)) {
                recorder.intervals.contains { $0.start > refusalEnded }
            }
            trigger.triggerGracefulShutdown()
            try await task.value
            try await client.delete(.configMaps, name: "\(label)-0")
        }
    }

    @Test("events of owned objects queue their owner")
    func ownedObjects() async throws {
        try await withTestCluster { cluster in
            let client = cluster.client
            let label = uniqueName("run")
            let recorder = ReconcileRecorder()
            let count = Mutex(0)
            let controller = Controller<KubernetesObject>(
                client: client,
                resource: .configMaps,
                namespace: cluster.namespace,
                owns: [OwnedResource(.secrets, ownerKind: "ConfigMap", labelSelector: "run=\(label)")],
                configuration: ControllerConfiguration(
                    workers: 1,
                    resyncPeriod: nil,
                    listWatch: fastOptions(label: label)
                ),
                logger: quietLogger
            ) { key, object in
                count.withLock { $0 += 1 }
                return try await recorder.reconcile(controller: "c")(key, object)
            }
            let (task, trigger) = await start(controller)
            let parent = try await client.create(
                configMap("\(label)-parent", namespace: cluster.namespace, label: label, value: "0"),
                .configMaps
            )
            try await eventually("parent reconciled") { count.withLock { $0 } == 1 }
            let secret = KubernetesObject(
                apiVersion: "v1",
                kind: "Secret",
                metadata: ObjectMeta(
                    name: "\(label)-child",
                    labels: ["run": label],
                    ownerReferences: [
                        OwnerReference(
                            apiVersion: "v1",
                            kind: "ConfigMap",
                            name: parent.metadata.name!,
                            uid: parent.metadata.uid ?? "",
                            controller: true
                        )
                    ]
                ),
                fields: ["stringData": ["k": "v"]]
            )
            _ = try await client.create(secret, .secrets)
            try await eventually("owner reconciled for the child") { count.withLock { $0 } >= 2 }
            trigger.triggerGracefulShutdown()
            try await task.value
            try await client.delete(.secrets, name: "\(label)-child")
            try await client.delete(.configMaps, name: "\(label)-parent")
        }
    }

    @Test("graceful shutdown lets the current reconcile finish")
    func gracefulShutdownFinishesWork() async throws {
        try await withTestCluster { cluster in
            let client = cluster.client
            let label = uniqueName("run")
            let (started, startedContinuation) = AsyncStream<Void>.makeStream()
            let finished = Mutex(false)
            let controller = Controller<KubernetesObject>(
                client: client,
                resource: .configMaps,
                namespace: cluster.namespace,
                configuration: ControllerConfiguration(workers: 1, listWatch: fastOptions(label: label)),
                logger: quietLogger
            ) { _, _ in
                startedContinuation.yield()
                try await Task.sleep(for: .milliseconds(300))
                finished.withLock { $0 = true }
                return .done
            }
            let (task, trigger) = await start(controller)
            _ = try await client.create(
                configMap("\(label)-x", namespace: cluster.namespace, label: label, value: "0"),
                .configMaps
            )
            var iterator = started.makeAsyncIterator()
            await iterator.next()
            trigger.triggerGracefulShutdown()
            try await task.value
            #expect(finished.withLock { $0 })
            try await client.delete(.configMaps, name: "\(label)-x")
        }
    }
}

/// A client object as the test server's JSON, for writes that bypass HTTP.
func json(_ object: KubernetesObject) throws -> JSON {
    try JSON(data: JSONEncoder().encode(object))
}
