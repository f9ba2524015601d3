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
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing
import TimeSupport

/// What reconciles saw: per key the last reconciled resourceVersion (`"deleted"` when the object was gone), and
/// every reconcile's interval per controller.
///
/// Intervals are in real time, to tell whether two reconciles ran at once; with a `clock` (the controllers' manual
/// clock) each also says when it started on that clock, to judge the controllers' timing.
final class ReconcileRecorder: Sendable {
    struct Interval: Sendable {
        var controller: String
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant
        /// When it started on the recorder's clock, if it has one.
        var started: ManualClock.Instant?
    }

    private let clock: ManualClock?

    init(clock: ManualClock? = nil) {
        self.clock = clock
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

    func end(
        _ key: ObjectKey,
        controller: String,
        object: KubernetesObject?,
        start: ContinuousClock.Instant,
        started: ManualClock.Instant?
    ) {
        let now = ContinuousClock.now
        self.state.withLock {
            $0.active[key, default: 1] -= 1
            $0.last[key] = object?.metadata.resourceVersion ?? "deleted"
            $0.intervals.append(Interval(controller: controller, start: start, end: now, started: started))
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
            let started = self.clock?.now
            self.begin(key)
            defer { self.end(key, controller: controller, object: object, start: start, started: started) }
            if delay > .zero { try await Task.sleep(for: delay) }
            return .done
        }
    }
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
                // The controller's watch is cut and its reconnects are refused until the server serves again.
                try await eventually("the server serves again") {
                    _ = try await client.list(
                        KubernetesObject.self,
                        .configMaps,
                        namespace: cluster.namespace,
                        options: ListOptions(limit: 1)
                    )
                    return true
                }
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
            // Every controller's timers run on this clock, which moves only when the test moves it: the takeovers
            // are judged on it, exactly, however slow the machine is.
            let clock = ManualClock()
            // Few retry periods to a lease's expiry: each is a request of the standby's, slow on a loaded machine.
            let leaseDuration = Duration.seconds(4)
            let retryPeriod = Duration.milliseconds(500)
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
                            leaseDuration: leaseDuration,
                            renewDeadline: .seconds(2),
                            retryPeriod: retryPeriod
                        )
                    ),
                    clock: clock,
                    logger: quietLogger,
                    reconcile: recorder.reconcile(controller: identity, delay: .milliseconds(5))
                )
            }
            let controllers = ["a", "b", "c"].map { ($0, makeController($0)) }
                .reduce(into: [String: Controller<KubernetesObject>]()) { $0[$1.0] = $1.1 }
            for index in 0..<5 {
                _ = try await client.create(
                    configMap("\(label)-\(index)", namespace: cluster.namespace, label: label, value: "0"),
                    .configMaps
                )
            }
            let runningA = await start(controllers["a"]!)
            let runningB = await start(controllers["b"]!)
            let running = ["a": runningA, "b": runningB]
            func leader() -> String? {
                recorder.intervals.max { $0.end < $1.end }?.controller
            }
            // The first to ask creates the Lease and leads; its first reconciles need no time to pass. The clock
            // moves only while nobody leads and both sleep between attempts (a request failed on a loaded machine).
            try await eventually("a first leader", interval: .milliseconds(5)) {
                if leader() != nil { return true }
                let leading = controllers.values.contains { $0.health.isLeading }
                if !leading && clock.sleepers >= 2 { clock.advance(by: retryPeriod) }
                return false
            }
            let first = leader()!
            let standby = first == "a" ? "b" : "a"

            // Kill the first leader: its requests are cancelled with it, so it cannot release the lease.
            let killed = clock.now
            running[first]!.task.cancel()
            _ = try? await running[first]!.task.value
            let held = try await client.get(Lease.self, .leases, name: lease, namespace: cluster.namespace)
            let holder = held.spec.holderIdentity ?? "nobody"
            #expect(holder == first, "a killed leader released its lease")
            // The standby is the only one left that sleeps on the clock: move it a retry period at a time, each
            // time once the standby sleeps between two attempts, so that it sees every retry period pass.
            let next = controllers[standby]!
            try await eventually("takeover after a kill", timeout: .seconds(60), interval: .milliseconds(5)) {
                if next.health.isLeading { return true }
                if clock.sleepers > 0 { clock.advance(by: retryPeriod) }
                return false
            }
            let takeover = clock.now
            let waited = takeover - killed
            #expect(waited >= leaseDuration, "took over \(waited) after a kill, before expiry")
            #expect(waited <= leaseDuration + retryPeriod, "took over \(waited) after a kill")
            try await eventually("the standby reconciles") { leader() == standby }

            // A third candidate joins; the second leader shuts down gracefully and releases the lease.
            let runningC = await start(controllers["c"]!)
            running[standby]!.trigger.triggerGracefulShutdown()
            try await running[standby]!.task.value
            let untilReleaseTaken = try await Self.takeOverReleasedLease(
                controllers["c"]!,
                clock: clock,
                retryPeriod: retryPeriod
            )
            #expect(untilReleaseTaken < leaseDuration, "a released lease is taken without waiting for it to expire")
            try await eventually("c reconciles") { leader() == "c" }

            runningC.trigger.triggerGracefulShutdown()
            try await runningC.task.value

            Self.expectNoOverlap(recorder.intervals)
            #expect(Set(recorder.intervals.map(\.controller)).count == 3)
            for index in 0..<5 { try await client.delete(.configMaps, name: "\(label)-\(index)") }
        }
    }

    /// Expects no two reconciles of different controllers to have run at the same time.
    static func expectNoOverlap(_ intervals: [ReconcileRecorder.Interval]) {
        for (i, x) in intervals.enumerated() {
            for y in intervals[(i + 1)...] where x.controller != y.controller {
                #expect(x.end <= y.start || y.end <= x.start, "\(x.controller) and \(y.controller) overlapped")
            }
        }
    }

    /// Lets `candidate`, alone on `clock`, take a released lease, moving the clock a retry period each time it sleeps
    /// between two attempts; returns how far the clock moved. One retry period does, unless a request failed.
    static func takeOverReleasedLease(
        _ candidate: Controller<KubernetesObject>,
        clock: ManualClock,
        retryPeriod: Duration
    ) async throws -> Duration {
        let released = clock.now
        try await eventually("takeover after a release", timeout: .seconds(60), interval: .milliseconds(5)) {
            if candidate.health.isLeading { return true }
            if clock.sleepers > 0 { clock.advance(by: retryPeriod) }
            return false
        }
        return clock.now - released
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
            let clock = ManualClock()
            let recorder = ReconcileRecorder(clock: clock)
            let renewDeadline = Duration.seconds(2)
            let step = Duration.milliseconds(50)
            let controller = Controller<KubernetesObject>(
                client: client,
                resource: .configMaps,
                namespace: cluster.namespace,
                configuration: ControllerConfiguration(
                    workers: 1,
                    // Resync reconciles from the cache every 50 ms, without the API server: only leadership stops it.
                    resyncPeriod: step,
                    listWatch: fastOptions(label: label),
                    leaderElection: LeaderElectionConfiguration(
                        leaseName: uniqueName("lease"),
                        identity: "solo",
                        leaseDuration: .seconds(3),
                        renewDeadline: renewDeadline,
                        retryPeriod: .milliseconds(100)
                    )
                ),
                clock: clock,
                logger: quietLogger,
                reconcile: recorder.reconcile(controller: "solo")
            )
            _ = try await client.create(
                configMap("\(label)-0", namespace: cluster.namespace, label: label, value: "0"),
                .configMaps
            )
            let (task, trigger) = await start(controller)
            // The clock moves only while the controller sleeps between attempts to take the lease (a request
            // failed on a loaded machine); from the lease taken to the refusal below it stands still.
            try await eventually("leading", interval: .milliseconds(5)) {
                if !recorder.intervals.isEmpty { return true }
                if !controller.health.isLeading && clock.sleepers > 0 { clock.advance(by: .milliseconds(100)) }
                return false
            }

            // The clock has not moved since the lease was taken: the last successful renewal is no later than this.
            let refusedAt = clock.now
            server.refuseConnections(for: .seconds(600))
            try await eventually("the term ended, 4 s on the clock after the refusal", interval: .milliseconds(20)) {
                clock.advance(by: step)
                return clock.now >= refusedAt + .seconds(4) && controller.reflector == nil
            }
            let refusalEnded = clock.now
            // From renewDeadline after the last renewal no reconcile may start: the workers check the lease on the
            // clock before each one. One step of slack: the test may move the clock between that check and the
            // reconcile's first line.
            let quietFrom = refusedAt + renewDeadline + step
            let started = recorder.intervals.compactMap(\.started)
            #expect(started.contains { $0 > refusedAt && $0 < quietFrom }, "resync reconciled while leading")
            let during = started.filter { $0 > quietFrom && $0 <= refusalEnded }
            #expect(during.isEmpty, "reconciled \(during.count) times without the lease: \(during)")
            #expect(controller.reflector == nil, "no term is running while not leading")

            server.refuseConnections(for: .zero)
            try await eventually("leading again", interval: .milliseconds(20)) {
                clock.advance(by: step)
                return recorder.intervals.contains { ($0.started ?? refusalEnded) > refusalEnded }
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
            let (proceed, proceedContinuation) = AsyncStream<Void>.makeStream()
            let finished = Mutex(false)
            let stoppedBeforeFinishing = Mutex(false)
            // Filled in below, before the one reconcile can run.
            let controllerBox = Mutex<Controller<KubernetesObject>?>(nil)
            let controller = Controller<KubernetesObject>(
                client: client,
                resource: .configMaps,
                namespace: cluster.namespace,
                configuration: ControllerConfiguration(workers: 1, listWatch: fastOptions(label: label)),
                logger: quietLogger
            ) { _, _ in
                startedContinuation.yield()
                // The work in progress: it goes on until the test says, after shutdown has begun.
                var iterator = proceed.makeAsyncIterator()
                await iterator.next()
                // A shutdown that cancelled the reconcile instead of letting it finish fails the test.
                try Task.checkCancellation()
                let running = controllerBox.withLock { $0 }?.health.isRunning ?? false
                stoppedBeforeFinishing.withLock { $0 = !running }
                finished.withLock { $0 = true }
                return .done
            }
            controllerBox.withLock { $0 = controller }
            let (task, trigger) = await start(controller)
            _ = try await client.create(
                configMap("\(label)-x", namespace: cluster.namespace, label: label, value: "0"),
                .configMaps
            )
            var iterator = started.makeAsyncIterator()
            await iterator.next()
            trigger.triggerGracefulShutdown()
            // Shutdown has begun when the term's queue is shut down; the controller now waits only for the worker.
            try await eventually("the queue shut down") { controller.queue?.isShutDown == true }
            proceedContinuation.yield()
            try await task.value
            #expect(finished.withLock { $0 })
            #expect(!stoppedBeforeFinishing.withLock { $0 }, "the controller stopped before its reconcile finished")
            try await client.delete(.configMaps, name: "\(label)-x")
        }
    }
}

/// A client object as the test server's JSON, for writes that bypass HTTP.
func json(_ object: KubernetesObject) throws -> JSON {
    try JSON(data: JSONEncoder().encode(object))
}
