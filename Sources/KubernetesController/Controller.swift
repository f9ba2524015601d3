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

public import KubernetesClient
public import Logging
public import ServiceLifecycle
import Synchronization

/// What a reconcile asks for next.
public enum ReconcileAction: Sendable, Hashable {
    /// The object is in its desired state; reconcile again only when something changes (or at resync).
    case done
    /// Reconcile again after this delay, e.g. to poll something outside the cluster.
    case requeue(after: Duration)
}

/// Settings of a ``Controller``.
public struct ControllerConfiguration: Sendable {
    /// Concurrent reconciles. One key is never reconciled by two workers at once, whatever this is.
    public var workers: Int
    /// Every this often every cached key is queued again, catching anything a reconcile missed. `nil`: never.
    public var resyncPeriod: Duration?
    public var queue: WorkQueueConfiguration
    public var listWatch: ListWatchOptions
    /// Run only while holding this Lease. `nil`: always run (a single replica).
    public var leaderElection: LeaderElectionConfiguration?

    public init(
        workers: Int = 2,
        resyncPeriod: Duration? = .seconds(300),
        queue: WorkQueueConfiguration = WorkQueueConfiguration(),
        listWatch: ListWatchOptions = ListWatchOptions(),
        leaderElection: LeaderElectionConfiguration? = nil
    ) {
        self.workers = workers
        self.resyncPeriod = resyncPeriod
        self.queue = queue
        self.listWatch = listWatch
        self.leaderElection = leaderElection
    }
}

/// A resource the controller's objects own: its events queue the owner, found through `ownerReferences`.
public struct OwnedResource: Sendable {
    public var resource: KubernetesResource
    /// The `kind` in the child's `ownerReferences` that names our object (e.g. `LiveStream`).
    public var ownerKind: String

    /// Which children to watch; `nil` watches all of the resource in the controller's namespace. Children carry
    /// the operator's labels, so a selector keeps the cache to what the operator made.
    public var labelSelector: String?

    public init(_ resource: KubernetesResource, ownerKind: String, labelSelector: String? = nil) {
        self.resource = resource
        self.ownerKind = ownerKind
        self.labelSelector = labelSelector
    }

    /// The keys of the owners of `child` (same namespace: owners of namespaced objects are in their namespace).
    func ownerKeys(of child: KubernetesObject) -> [ObjectKey] {
        (child.metadata.ownerReferences ?? [])
            .filter { $0.kind == self.ownerKind }
            .map { ObjectKey(namespace: child.metadata.namespace, name: $0.name) }
    }
}

/// A level-based controller: list + watch into a cache, a rate-limited work queue, N reconcile workers.
///
/// It is a `Service`: run it in a `ServiceGroup`. On graceful shutdown it stops watching, lets each worker finish
/// the key it is reconciling, releases its Lease, and returns. With leader election it reconciles only while it
/// holds the Lease; when renewing fails for `renewDeadline` it stops reconciling and becomes a candidate again.
///
/// The reconciler gets the key and the cached object (`nil` when the object is gone: clean up what it owned).
public final class Controller<Object: KubernetesAPIObject>: Service, Sendable {
    public typealias Reconcile = @Sendable (ObjectKey, Object?) async throws -> ReconcileAction

    public let resource: KubernetesResource
    public let configuration: ControllerConfiguration
    private let client: KubernetesClient
    private let namespace: String?
    private let owned: [OwnedResource]
    private let reconcile: Reconcile
    private let logger: Logger
    private let current = Mutex<Term?>(nil)
    private let failures = FailureLog()

    /// A controller of `resource` in `namespace` (all namespaces when `nil`).
    public init(
        client: KubernetesClient,
        resource: KubernetesResource,
        namespace: String?,
        owns owned: [OwnedResource] = [],
        configuration: ControllerConfiguration = ControllerConfiguration(),
        logger: Logger,
        reconcile: @escaping Reconcile
    ) {
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.owned = owned
        self.configuration = configuration
        self.logger = logger
        self.reconcile = reconcile
    }

    /// What one leadership term runs on.
    private struct Term: Sendable {
        var reflector: Reflector<Object>
        var queue: WorkQueue<ObjectKey>
        /// The caches of the owned resources, by resource plural.
        var owned: [String: Reflector<KubernetesObject>]
    }

    /// The cache of the current leadership term (nil while not leading).
    public var reflector: Reflector<Object>? { self.current.withLock { $0?.reflector } }
    /// The work queue of the current leadership term (nil while not leading).
    public var queue: WorkQueue<ObjectKey>? { self.current.withLock { $0?.queue } }

    /// The cache of an owned resource in the current leadership term (nil while not leading, or not owned): what
    /// a reconcile reads instead of asking the API server whether a child exists.
    public func ownedCache(_ resource: KubernetesResource) -> Reflector<KubernetesObject>? {
        self.current.withLock { $0?.owned[resource.plural] }
    }

    public func run() async throws {
        guard let election = self.configuration.leaderElection else {
            try await self.lead(elector: nil)
            return
        }
        let elector = LeaderElector(client: self.client, configuration: election, logger: self.logger)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown {
                    try await elector.acquire()
                }
            } catch is CancellationError {
                return
            }
            try await self.lead(elector: elector)
        }
    }

    /// One term: reflectors and workers run until graceful shutdown, cancellation, or (with an elector) lost lease.
    private func lead(elector: LeaderElector?) async throws {
        let reflector = Reflector<Object>(
            client: self.client,
            resource: self.resource,
            namespace: self.namespace,
            options: self.configuration.listWatch
        )
        let queue = WorkQueue<ObjectKey>(configuration: self.configuration.queue)
        let children = self.owned.map { owned in
            var options = self.configuration.listWatch
            options.labelSelector = owned.labelSelector
            options.fieldSelector = nil
            return (
                owned,
                Reflector<KubernetesObject>(
                    client: self.client,
                    resource: owned.resource,
                    namespace: self.namespace,
                    options: options
                )
            )
        }
        let caches = Dictionary(children.map { ($0.0.resource.plural, $0.1) }, uniquingKeysWith: { first, _ in first })
        self.current.withLock { $0 = Term(reflector: reflector, queue: queue, owned: caches) }
        defer { self.current.withLock { $0 = nil } }
        self.logger.info("k8s controller started", metadata: ["k8s.resource": "\(self.resource)"])

        try await withThrowingDiscardingTaskGroup { group in
            for worker in 0..<max(1, self.configuration.workers) {
                group.addTask {
                    await self.work(queue: queue, reflector: reflector, worker: worker, elector: elector)
                }
            }
            group.addTask {
                // Everything that feeds the queue. The first of these to end (graceful shutdown, a lost lease, a
                // fatal watch error) ends the term: the rest are cancelled and the queue is shut down, which lets
                // each worker finish its current key and stop.
                defer { queue.shutDown() }
                try await withThrowingTaskGroup(of: Void.self) { feeders in
                    feeders.addTask {
                        try await reflector.run { change in
                            switch change {
                            case .upserted(let object), .deleted(let object):
                                queue.add(ObjectKey(object))
                            }
                        }
                    }
                    for (owned, cache) in children {
                        feeders.addTask {
                            try await cache.run { change in
                                switch change {
                                case .upserted(let child), .deleted(let child):
                                    for key in owned.ownerKeys(of: child) { queue.add(key) }
                                }
                            }
                        }
                    }
                    if let period = self.configuration.resyncPeriod {
                        feeders.addTask {
                            while true {
                                try await Task.sleep(for: period)
                                for key in reflector.keys { queue.add(key) }
                            }
                        }
                    }
                    if let elector {
                        feeders.addTask { try await elector.holdLease() }
                    }
                    feeders.addTask {
                        // Ends on graceful shutdown; throws CancellationError when the term ends otherwise.
                        try await gracefulShutdown()
                    }
                    defer { feeders.cancelAll() }
                    do {
                        try await feeders.next()
                    } catch is CancellationError {
                        return
                    }
                }
            }
        }
        if let elector, Task.isShuttingDownGracefully || Task.isCancelled {
            await elector.release()
        }
        self.logger.info("k8s controller stopped", metadata: ["k8s.resource": "\(self.resource)"])
    }

    private func work(
        queue: WorkQueue<ObjectKey>,
        reflector: Reflector<Object>,
        worker: Int,
        elector: LeaderElector?
    ) async {
        while let key = await queue.next() {
            if let elector, !elector.isLeading {
                // The lease lapsed: reconcile nothing until it is renewed. The term is ending (its queue shuts
                // down, and the next term lists every object again) unless a late renewal still came through.
                queue.add(key, after: elector.configuration.retryPeriod)
                queue.done(key)
                continue
            }
            do {
                let action = try await self.reconcile(key, reflector.get(key))
                queue.forget(key)
                if self.failures.recovered(key) {
                    self.logger.info("k8s reconcile succeeded again", metadata: ["k8s.key": "\(key)"])
                }
                if case .requeue(let delay) = action {
                    queue.add(key, after: delay)
                }
            } catch {
                // A user sees a failure by default; its retries, the same failure again, only at debug level.
                let level: Logger.Level = self.failures.failed(key, "\(error)") ? .warning : .debug
                self.logger.log(
                    level: level,
                    "k8s reconcile failed; retrying with backoff",
                    metadata: ["k8s.key": "\(key)", "k8s.worker": "\(worker)", "error": "\(error)"]
                )
                queue.addRateLimited(key)
            }
            queue.done(key)
        }
    }
}

/// Which keys' reconciles are failing, and with what: a failure is worth a warning when it is new for its key, or
/// differs from the last one, or the last warning is `repeatAfter` old; retries of the same failure are not.
final class FailureLog: Sendable {
    private let repeatAfter: Duration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let failing = Mutex<[ObjectKey: (message: String, warnedAt: ContinuousClock.Instant)]>([:])

    init(repeatAfter: Duration = .seconds(300), now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.repeatAfter = repeatAfter
        self.now = now
    }

    /// Records a failure of `key`; returns whether to warn of it.
    func failed(_ key: ObjectKey, _ message: String) -> Bool {
        let now = self.now()
        return self.failing.withLock { failing in
            if let last = failing[key], last.message == message, now - last.warnedAt < self.repeatAfter {
                return false
            }
            failing[key] = (message, now)
            return true
        }
    }

    /// Records a success of `key`; returns whether it had been failing.
    func recovered(_ key: ObjectKey) -> Bool {
        self.failing.withLock { $0.removeValue(forKey: key) != nil }
    }
}
