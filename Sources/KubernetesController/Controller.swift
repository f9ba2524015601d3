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
    /// Nothing could be judged yet (the cache lags behind this controller's own last write of the object, see
    /// ``WriteExpectations``): neither a success nor a failure. The key is queued again after the delay, and keeps
    /// its failure count and backoff, so a failing key that is deferred in between is still the same failure.
    case deferred(after: Duration)
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
    /// How long a cache's watch may go without progress before ``Controller/health`` calls it stalled; `nil`: twice
    /// the watch timeout plus a minute (a healthy watch is renewed every watch timeout, with bookmarks meanwhile).
    public var stallTimeout: Duration?
    /// How often an optional watched resource the API server does not serve (KEDA not installed) is looked for again.
    public var absentResourceRetry: Duration
    /// How long a write's expectation (``WriteExpectations``) holds at most.
    public var expectationTimeout: Duration

    public init(
        workers: Int = 2,
        resyncPeriod: Duration? = .seconds(300),
        queue: WorkQueueConfiguration = WorkQueueConfiguration(),
        listWatch: ListWatchOptions = ListWatchOptions(),
        leaderElection: LeaderElectionConfiguration? = nil,
        stallTimeout: Duration? = nil,
        absentResourceRetry: Duration = .seconds(60),
        expectationTimeout: Duration = .seconds(10)
    ) {
        self.workers = workers
        self.resyncPeriod = resyncPeriod
        self.queue = queue
        self.listWatch = listWatch
        self.leaderElection = leaderElection
        self.stallTimeout = stallTimeout
        self.absentResourceRetry = absentResourceRetry
        self.expectationTimeout = expectationTimeout
    }

    /// ``stallTimeout``, or its default.
    var effectiveStallTimeout: Duration {
        self.stallTimeout ?? .seconds(2 * max(1, self.listWatch.watchTimeoutSeconds) + 60)
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

    /// Whether the API server may not serve the resource (a CRD that may not be installed): see
    /// ``WatchedResource/isOptional``.
    public var isOptional: Bool

    /// Makes the watch of the children, in the type they are cached as.
    private let makeWatched: @Sendable (OwnedResource) -> WatchedResource

    /// Children cached as whole objects, each reduced by `transform` first when given (see ``Reflector``).
    public init(
        _ resource: KubernetesResource,
        ownerKind: String,
        labelSelector: String? = nil,
        isOptional: Bool = false,
        transform: (@Sendable (KubernetesObject) -> KubernetesObject)? = nil
    ) {
        self.init(
            resource,
            caching: KubernetesObject.self,
            ownerKind: ownerKind,
            labelSelector: labelSelector,
            isOptional: isOptional,
            transform: transform
        )
    }

    /// Children cached as `Cached`, decoded from the API server's JSON: ``ObjectSummary`` keeps what a controller
    /// compares and little more.
    public init<Cached: KubernetesAPIObject>(
        _ resource: KubernetesResource,
        caching: Cached.Type,
        ownerKind: String,
        labelSelector: String? = nil,
        isOptional: Bool = false,
        transform: (@Sendable (Cached) -> Cached)? = nil
    ) {
        self.resource = resource
        self.ownerKind = ownerKind
        self.labelSelector = labelSelector
        self.isOptional = isOptional
        self.makeWatched = { owned in
            let kind = owned.ownerKind
            return WatchedResource(
                id: owned.resource.plural,
                owned.resource,
                caching: Cached.self,
                labelSelector: owned.labelSelector,
                isOptional: owned.isOptional,
                transform: transform
            ) { child in
                Self.ownerKeys(of: child, kind: kind)
            }
        }
    }

    /// The keys of the owners of `child` (same namespace: owners of namespaced objects are in their namespace).
    static func ownerKeys(of child: some KubernetesAPIObject, kind: String) -> [ObjectKey] {
        (child.metadata.ownerReferences ?? [])
            .filter { $0.kind == kind }
            .map { ObjectKey(namespace: child.metadata.namespace, name: $0.name) }
    }

    var watched: WatchedResource { self.makeWatched(self) }
}

/// Any resource whose changes queue some of the controller's keys: owned children (``OwnedResource``), objects the
/// reconciled objects refer to (Secrets named in a spec), or objects a reconcile reads (a Service of another
/// namespace). Its cache lives as long as a leadership term, like the controller's own.
public struct WatchedResource: Sendable {
    /// Where the resource is watched.
    public enum Scope: Sendable, Hashable {
        /// The controller's namespace (every namespace when the controller watches all).
        case controller
        /// This namespace only.
        case namespace(String)
    }

    /// The cache's name in ``Controller/cache(_:as:)``.
    public var id: String
    public var resource: KubernetesResource
    public var scope: Scope
    public var labelSelector: String?
    public var fieldSelector: String?
    /// The list page size; `nil`: the controller's.
    public var pageSize: Int?
    /// Whether the API server may not serve the resource (a CRD that may not be installed, or one the controller
    /// may not be allowed to read): a list answered 404 or 403 then means *not served*, not a failure. The
    /// controller looks again every `absentResourceRetry`, ``Controller/cache(_:as:)`` is `nil` meanwhile, and every
    /// key is queued again when the resource comes or goes.
    public var isOptional: Bool
    /// Makes the cache of the resource, in the type it caches.
    let makeCache:
        @Sendable (
            _ client: KubernetesClient,
            _ resource: KubernetesResource,
            _ namespace: String?,
            _ options: ListWatchOptions
        ) -> any WatchCache

    /// Objects cached whole, each reduced by `transform` first when given (see ``Reflector``); a change of one
    /// queues the keys `keys` names (it may also note the change, e.g. to wake something else).
    public init(
        id: String,
        _ resource: KubernetesResource,
        scope: Scope = .controller,
        labelSelector: String? = nil,
        fieldSelector: String? = nil,
        pageSize: Int? = nil,
        isOptional: Bool = false,
        transform: (@Sendable (KubernetesObject) -> KubernetesObject)? = nil,
        keys: @escaping @Sendable (KubernetesObject) -> [ObjectKey]
    ) {
        self.init(
            id: id,
            resource,
            caching: KubernetesObject.self,
            scope: scope,
            labelSelector: labelSelector,
            fieldSelector: fieldSelector,
            pageSize: pageSize,
            isOptional: isOptional,
            transform: transform,
            keys: keys
        )
    }

    /// Objects cached as `Cached`, decoded straight from the API server's JSON (read them with
    /// ``Controller/cache(_:as:)``).
    public init<Cached: KubernetesAPIObject>(
        id: String,
        _ resource: KubernetesResource,
        caching: Cached.Type,
        scope: Scope = .controller,
        labelSelector: String? = nil,
        fieldSelector: String? = nil,
        pageSize: Int? = nil,
        isOptional: Bool = false,
        transform: (@Sendable (Cached) -> Cached)? = nil,
        keys: @escaping @Sendable (Cached) -> [ObjectKey]
    ) {
        self.id = id
        self.resource = resource
        self.scope = scope
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.pageSize = pageSize
        self.isOptional = isOptional
        self.makeCache = { client, resource, namespace, options in
            TypedWatchCache(
                reflector: Reflector<Cached>(
                    client: client,
                    resource: resource,
                    namespace: namespace,
                    options: options,
                    transform: transform
                ),
                keys: keys
            )
        }
    }
}

/// The reflector of a watched resource, whatever type it caches, with what the controller does with its changes.
protocol WatchCache: Sendable {
    /// The `Reflector<Cached>`.
    var anyReflector: any Sendable { get }
    var hasSynced: Bool { get }
    func madeNoProgress(for duration: Duration, now: ContinuousClock.Instant) -> Bool
    /// The cached object's `resourceVersion`; `nil` when absent.
    func resourceVersion(of key: ObjectKey) -> String?
    /// Runs the reflector: each change is shown to `expectations` and queues the keys it names.
    func run(
        expectations: WriteExpectations,
        queue: WorkQueue<ObjectKey>,
        onListed: @Sendable () -> Void
    ) async throws
}

private struct TypedWatchCache<Cached: KubernetesAPIObject>: WatchCache {
    let reflector: Reflector<Cached>
    let keys: @Sendable (Cached) -> [ObjectKey]

    var anyReflector: any Sendable { self.reflector }
    var hasSynced: Bool { self.reflector.hasSynced }

    func madeNoProgress(for duration: Duration, now: ContinuousClock.Instant) -> Bool {
        self.reflector.madeNoProgress(for: duration, now: now)
    }

    func resourceVersion(of key: ObjectKey) -> String? {
        self.reflector.get(key)?.metadata.resourceVersion
    }

    func run(
        expectations: WriteExpectations,
        queue: WorkQueue<ObjectKey>,
        onListed: @Sendable () -> Void
    ) async throws {
        let resource = self.reflector.resource
        try await self.reflector.run(
            onChange: { change in
                expectations.observe(resource, change)
                for key in self.keys(change.object) { queue.add(key) }
            },
            onListed: onListed
        )
    }
}

/// What ``Controller/health`` reports: the process's liveness and readiness in the controller's terms.
public struct ControllerHealth: Sendable, Hashable, CustomStringConvertible {
    /// `run()` is running (it has started and not ended).
    public var isRunning: Bool
    /// `run()` has ended (returned or thrown): the controller does nothing any more.
    public var hasStopped: Bool
    /// The controller leads a term now: it holds the Lease, or runs without leader election.
    public var isLeading: Bool
    /// Whether it runs with leader election.
    public var usesLeaderElection: Bool
    /// The caches of the current term that have not been listed yet (empty outside a term).
    public var unsynced: [String]
    /// The caches of the current term whose watch made no progress for the stall timeout.
    public var stalled: [String]

    /// Alive: not stopped, and no watch stalled. A liveness probe restarts a process that is not. (Not started yet
    /// counts as alive: a process's HTTP endpoints may answer a moment before its controller runs.)
    public var isLive: Bool { !self.hasStopped && self.stalled.isEmpty }

    /// Ready: the leader once every cache has synced; a standby (with leader election) as soon as it runs, since it
    /// has no caches to sync and a rollout must not wait for it to lead.
    public var isReady: Bool {
        guard self.isRunning else { return false }
        return self.isLeading ? self.unsynced.isEmpty : self.usesLeaderElection
    }

    public var description: String {
        guard self.isRunning else { return self.hasStopped ? "stopped" : "not started" }
        var parts = [self.isLeading ? "leading" : self.usesLeaderElection ? "standby" : "starting"]
        if !self.unsynced.isEmpty { parts.append("not synced: \(self.unsynced.joined(separator: ", "))") }
        if !self.stalled.isEmpty { parts.append("stalled: \(self.stalled.joined(separator: ", "))") }
        return parts.joined(separator: "; ")
    }
}

/// A level-based controller: list + watch into a cache, a rate-limited work queue, N reconcile workers.
///
/// It is a `Service`: run it in a `ServiceGroup`. On graceful shutdown it stops watching, lets each worker finish
/// the key it is reconciling, releases its Lease, and returns. With leader election it reconciles only while it
/// holds the Lease; when renewing fails for `renewDeadline` it stops reconciling and becomes a candidate again.
///
/// Besides its own resource it watches owned and other resources (``WatchedResource``) into caches of their own, and
/// workers start only once every cache has been listed, so a reconcile can compare what it wants with what the
/// caches hold instead of asking the API server.
///
/// The reconciler gets the key and the cached object (`nil` when the object is gone: clean up what it owned).
public final class Controller<Object: KubernetesAPIObject>: Service, Sendable {
    public typealias Reconcile = @Sendable (ObjectKey, Object?) async throws -> ReconcileAction

    public let resource: KubernetesResource
    public let configuration: ControllerConfiguration
    /// The writes of reconciles that the caches have not shown yet; reconcilers record theirs here.
    public let expectations: WriteExpectations
    private let client: KubernetesClient
    private let namespace: String?
    private let watched: [WatchedResource]
    private let transform: (@Sendable (Object) -> Object)?
    private let reconcile: Reconcile
    private let logger: Logger
    private let metrics: ControllerMetrics?
    private let current = Mutex<Term?>(nil)
    /// Not started (`nil`), running (`true`), stopped (`false`).
    private let running = Mutex<Bool?>(nil)
    private let failures = FailureLog()
    private let clock: ErasedClock

    /// A controller of `resource` in `namespace` (all namespaces when `nil`).
    ///
    /// `clock` is what its timers run on: leader election, the work queue's delays and backoff, resync and the
    /// retries of absent resources. Tests give a manual clock to check that timing without waiting for it; the
    /// metrics and ``health`` measure real time on the continuous clock whatever this is.
    ///
    /// `transform` reduces each object of `resource` before it is cached (see ``Reflector``): what the reconcile
    /// gets is what it left.
    public init(
        client: KubernetesClient,
        resource: KubernetesResource,
        namespace: String?,
        owns owned: [OwnedResource] = [],
        watches: [WatchedResource] = [],
        transform: (@Sendable (Object) -> Object)? = nil,
        configuration: ControllerConfiguration = ControllerConfiguration(),
        metrics: ControllerMetrics? = nil,
        clock: some Clock<Duration> = ContinuousClock(),
        logger: Logger,
        reconcile: @escaping Reconcile
    ) {
        self.clock = ErasedClock(clock)
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.watched = owned.map(\.watched) + watches
        self.transform = transform
        self.configuration = configuration
        self.expectations = WriteExpectations(timeout: configuration.expectationTimeout)
        self.metrics = metrics
        self.logger = logger
        self.reconcile = reconcile
    }

    /// What one leadership term runs on.
    private struct Term: Sendable {
        var reflector: Reflector<Object>
        var queue: WorkQueue<ObjectKey>
        /// The caches of the watched resources, by id.
        var caches: [String: WatchedCache]
    }

    /// The cache of the current leadership term (nil while not leading).
    public var reflector: Reflector<Object>? { self.current.withLock { $0?.reflector } }
    /// The work queue of the current leadership term (nil while not leading).
    public var queue: WorkQueue<ObjectKey>? { self.current.withLock { $0?.queue } }

    /// The cache of an owned resource in the current leadership term (nil while not leading, or not owned, or
    /// cached as another type): what a reconcile reads instead of asking the API server whether a child exists.
    public func ownedCache<Cached: KubernetesAPIObject>(
        _ resource: KubernetesResource,
        as type: Cached.Type
    ) -> Reflector<Cached>? {
        self.cache(resource.plural, as: type)
    }

    /// The cache of the watched resource `id` in the current leadership term: `nil` while not leading, for an id
    /// not watched (or cached as another type), and for an optional resource the API server does not serve.
    public func cache<Cached: KubernetesAPIObject>(
        _ id: String,
        as type: Cached.Type = KubernetesObject.self
    ) -> Reflector<Cached>? {
        guard let cache = self.current.withLock({ $0?.caches[id] }) else { return nil }
        if cache.watched.isOptional, cache.isServed != true { return nil }
        return cache.watch.anyReflector as? Reflector<Cached>
    }

    /// Whether the watched resource `id` is cached now (see ``cache(_:as:)``), whatever type it caches.
    public func isCaching(_ id: String) -> Bool {
        guard let cache = self.current.withLock({ $0?.caches[id] }) else { return false }
        return !cache.watched.isOptional || cache.isServed == true
    }

    /// Liveness and readiness now (see ``ControllerHealth``).
    public var health: ControllerHealth {
        let term = self.current.withLock { $0 }
        let running = self.running.withLock { $0 }
        var health = ControllerHealth(
            isRunning: running == true,
            hasStopped: running == false,
            isLeading: term != nil,
            usesLeaderElection: self.configuration.leaderElection != nil,
            unsynced: [],
            stalled: []
        )
        guard let term else { return health }
        let now = ContinuousClock.now
        let timeout = self.configuration.effectiveStallTimeout
        let primary = self.resource.plural
        if !term.reflector.hasSynced { health.unsynced.append(primary) }
        if term.reflector.madeNoProgress(for: timeout, now: now) { health.stalled.append(primary) }
        for (id, cache) in term.caches.sorted(by: { $0.key < $1.key }) {
            switch cache.isServed {
            case nil:
                health.unsynced.append(id)
            case false?:
                continue
            case true?:
                if !cache.watch.hasSynced { health.unsynced.append(id) }
            }
            if cache.watch.madeNoProgress(for: timeout, now: now) { health.stalled.append(id) }
        }
        return health
    }

    public func run() async throws {
        self.running.withLock { $0 = true }
        defer { self.running.withLock { $0 = false } }
        guard let election = self.configuration.leaderElection else {
            try await self.lead(elector: nil)
            return
        }
        let elector = LeaderElector(
            client: self.client,
            configuration: election,
            clock: self.clock,
            logger: self.logger
        )
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
            options: self.configuration.listWatch,
            transform: self.transform
        )
        let queue = WorkQueue<ObjectKey>(
            configuration: self.configuration.queue,
            metrics: self.metrics?.queue,
            clock: self.clock
        )
        let caches = self.watched.map { watched in
            var options = self.configuration.listWatch
            options.labelSelector = watched.labelSelector
            options.fieldSelector = watched.fieldSelector
            if let pageSize = watched.pageSize { options.pageSize = pageSize }
            let namespace: String?
            switch watched.scope {
            case .controller: namespace = self.namespace
            case .namespace(let name): namespace = name
            }
            return WatchedCache(
                watched: watched,
                watch: watched.makeCache(self.client, watched.resource, namespace, options)
            )
        }
        let byID = Dictionary(caches.map { ($0.watched.id, $0) }, uniquingKeysWith: { first, _ in first })
        let resource = self.resource
        self.expectations.reset { written, key in
            var versions = [String?]()
            if written == resource { versions.append(reflector.get(key)?.metadata.resourceVersion) }
            for cache in caches where cache.watched.resource == written {
                versions.append(cache.watch.resourceVersion(of: key))
            }
            return versions
        }
        self.current.withLock { $0 = Term(reflector: reflector, queue: queue, caches: byID) }
        self.metrics?.leading.record(1)
        defer {
            self.current.withLock { $0 = nil }
            self.metrics?.leading.record(0)
        }
        self.logger.info("k8s controller started", metadata: ["k8s.resource": "\(self.resource)"])

        try await withThrowingDiscardingTaskGroup { group in
            for worker in 0..<max(1, self.configuration.workers) {
                group.addTask {
                    // Reconciles compare with the caches: none starts before every cache holds its first list.
                    guard await Self.waitForSync(reflector, caches) else { return }
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
                            self.expectations.observe(self.resource, change)
                            queue.add(ObjectKey(change.object))
                        }
                    }
                    for cache in caches {
                        feeders.addTask {
                            try await self.feed(cache, queue: queue, primary: reflector)
                        }
                    }
                    if let period = self.configuration.resyncPeriod {
                        feeders.addTask {
                            while true {
                                try await self.clock.sleep(for: period)
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

    /// Returns `false` if cancelled first.
    private static func waitForSync(_ reflector: Reflector<Object>, _ caches: [WatchedCache]) async -> Bool {
        do {
            try await reflector.waitForSync()
            for cache in caches {
                try await cache.waitUntilKnown()
            }
            return true
        } catch {
            return false
        }
    }

    /// Runs one watched resource's cache and queues the keys its changes name. An optional resource that is not
    /// served is looked for again every `absentResourceRetry`; when it comes or goes, every key is queued.
    private func feed(_ cache: WatchedCache, queue: WorkQueue<ObjectKey>, primary: Reflector<Object>) async throws {
        let watched = cache.watched
        while true {
            do {
                try await cache.watch.run(
                    expectations: self.expectations,
                    queue: queue,
                    onListed: {
                        guard cache.markServed() else { return }
                        self.logger.info("k8s resource served now", metadata: ["k8s.resource": "\(watched.resource)"])
                        for key in primary.keys { queue.add(key) }
                    }
                )
                return
            } catch let error as KubernetesError
                where watched.isOptional && (error.statusCode == 404 || error.statusCode == 403)
            {
                if cache.markNotServed() {
                    self.logger.info(
                        "k8s resource not served; looking again later",
                        metadata: [
                            "k8s.resource": "\(watched.resource)", "k8s.status": "\(error.statusCode ?? 0)",
                            "k8s.retry.delay": "\(self.configuration.absentResourceRetry)",
                        ]
                    )
                    for key in primary.keys { queue.add(key) }
                }
                try await self.clock.sleep(for: self.configuration.absentResourceRetry)
            }
        }
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
            let start = ContinuousClock.now
            do {
                let action = try await self.reconcile(key, reflector.get(key))
                self.metrics?.reconciled(action, after: ContinuousClock.now - start)
                if case .deferred(let delay) = action {
                    queue.add(key, after: delay)
                    queue.done(key)
                    continue
                }
                queue.forget(key)
                if self.failures.recovered(key) {
                    self.logger.info("k8s reconcile succeeded again", metadata: ["k8s.key": "\(key)"])
                }
                if case .requeue(let delay) = action {
                    queue.add(key, after: delay)
                }
            } catch {
                if !(error is CancellationError) {
                    self.metrics?.failed(error, after: ContinuousClock.now - start)
                }
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

extension ReflectorChange {
    /// The object added, changed or deleted.
    public var object: Object {
        switch self {
        case .upserted(let object), .deleted(let object): object
        }
    }
}

/// A watched resource's cache in one term, and whether the API server serves the resource.
final class WatchedCache: Sendable {
    private enum Availability {
        case unknown
        case served
        case notServed
    }

    private struct State {
        var availability = Availability.unknown
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        var nextWaiter = 0
    }

    let watched: WatchedResource
    let watch: any WatchCache
    private let state = Mutex(State())

    init(watched: WatchedResource, watch: any WatchCache) {
        self.watched = watched
        self.watch = watch
    }

    /// `nil` until the first list was answered (with the objects, or with 404/403 for an optional resource).
    var isServed: Bool? {
        switch self.state.withLock({ $0.availability }) {
        case .unknown: nil
        case .served: true
        case .notServed: false
        }
    }

    /// Records a complete list; returns whether the resource was known not to be served before.
    func markServed() -> Bool {
        self.settle(.served) == .notServed
    }

    /// Records a list answered 404 or 403; returns whether the resource was served before.
    func markNotServed() -> Bool {
        self.settle(.notServed) == .served
    }

    private func settle(_ availability: Availability) -> Availability {
        let (previous, waiters) = self.state.withLock { state in
            let previous = state.availability
            state.availability = availability
            defer { state.waiters.removeAll() }
            return (previous, Array(state.waiters.values))
        }
        for waiter in waiters { waiter.resume(returning: true) }
        return previous
    }

    /// Returns once the resource is listed or known not to be served. Throws `CancellationError` if cancelled first.
    func waitUntilKnown() async throws {
        let id = self.state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let known = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now: Bool? = self.state.withLock { state in
                    if state.availability != .unknown { return true }
                    if Task.isCancelled { return false }
                    state.waiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: false)
        }
        guard known else { throw CancellationError() }
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
