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
import Logging
import Synchronization

/// The work-queue key of an object: its namespace (empty for cluster-scoped objects) and name.
public struct ObjectKey: Hashable, Sendable, CustomStringConvertible, Comparable {
    public var namespace: String
    public var name: String

    public init(namespace: String?, name: String) {
        self.namespace = namespace ?? ""
        self.name = name
    }

    public init(_ object: some KubernetesAPIObject) {
        self.init(namespace: object.metadata.namespace, name: object.metadata.name ?? "")
    }

    public var description: String { self.namespace.isEmpty ? self.name : "\(self.namespace)/\(self.name)" }

    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name)
    }
}

/// A change the reflector applied to its cache.
public enum ReflectorChange<Object: KubernetesAPIObject>: Sendable {
    /// The object was added, changed, or seen again in a relist.
    case upserted(Object)
    /// The object is gone (a delete event, or absent from a relist).
    case deleted(Object)
}

/// List + watch of one resource into a local cache keyed by namespace/name (client-go's reflector and store).
///
/// ``run(onChange:onListed:)`` drives a ``ListWatchSequence``: a relist replaces the cache (reporting objects that
/// vanished as deleted), each event updates it. Readers (``get(_:)``, ``list()``) see a consistent snapshot under a
/// `Mutex`.
///
/// A `transform` (client-go's `SetTransform`) reduces each object before it is cached and reported: a cache of
/// Secrets can keep their names and key names without a single value. The reflector also notes its progress (a
/// list or watch request answered, an event or a bookmark received) for ``madeNoProgress(for:)``.
public final class Reflector<Object: KubernetesAPIObject>: Sendable {
    private struct State {
        var objects: [ObjectKey: Object] = [:]
        var resourceVersion: String?
        var synced = false
        var syncWaiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        var nextSyncWaiter = 0
    }

    public let resource: KubernetesResource
    private let client: KubernetesClient
    private let namespace: String?
    private let options: ListWatchOptions
    private let transform: (@Sendable (Object) -> Object)?
    private let state = Mutex(State())
    private let progress: Progress

    /// Watches `resource` in `namespace`, or in all namespaces when `namespace` is `nil`.
    public init(
        client: KubernetesClient,
        resource: KubernetesResource,
        namespace: String?,
        options: ListWatchOptions = ListWatchOptions(),
        transform: (@Sendable (Object) -> Object)? = nil
    ) {
        let progress = Progress()
        self.client = client.adding(ProgressMiddleware(progress: progress))
        self.progress = progress
        self.resource = resource
        self.namespace = namespace
        self.options = options
        self.transform = transform
    }

    /// Whether nothing moved for `duration` up to `now`: no list or watch request of this reflector was answered
    /// with success, and no event or bookmark came. A watch is renewed at least every `watchTimeoutSeconds` and the
    /// API server sends bookmarks meanwhile, so a live reflector never goes that long without progress; one that
    /// does cannot reach the API server (or its watch hangs). Counted from the first ``run(onChange:onListed:)``.
    public func madeNoProgress(for duration: Duration, now: ContinuousClock.Instant = .now) -> Bool {
        guard let last = self.progress.last else { return false }
        return now - last > duration
    }

    public func get(_ key: ObjectKey) -> Object? {
        self.state.withLock { $0.objects[key] }
    }

    public func list() -> [Object] {
        self.state.withLock { Array($0.objects.values) }
    }

    public var keys: [ObjectKey] {
        self.state.withLock { Array($0.objects.keys) }
    }

    public var count: Int { self.state.withLock { $0.objects.count } }

    /// The last `resourceVersion` the cache reflects.
    public var resourceVersion: String? { self.state.withLock { $0.resourceVersion } }

    public var hasSynced: Bool { self.state.withLock { $0.synced } }

    /// Returns once the first list has been loaded into the cache.
    ///
    /// - Throws: `CancellationError` if the task is cancelled first (a shutdown while the API server is
    ///   unreachable): a caller must not go on as if the cache were complete.
    public func waitForSync() async throws {
        let id = self.state.withLock { state in
            state.nextSyncWaiter += 1
            return state.nextSyncWaiter
        }
        let synced = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now: Bool? = self.state.withLock { state in
                    if state.synced { return true }
                    if Task.isCancelled { return false }
                    state.syncWaiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            self.state.withLock { $0.syncWaiters.removeValue(forKey: id) }?.resume(returning: false)
        }
        guard synced else {
            throw CancellationError()
        }
    }

    /// Lists and watches until cancelled, calling `onChange` for every change after the cache has been updated, and
    /// `onListed` after each complete list has replaced the cache (after its changes).
    public func run(
        onChange: @Sendable (ReflectorChange<Object>) -> Void,
        onListed: @Sendable () -> Void = {}
    ) async throws {
        self.progress.note()
        let sequence = self.client.listWatch(
            Object.self,
            self.resource,
            namespace: self.namespace,
            allNamespaces: self.namespace == nil,
            options: self.options
        )
        for try await event in sequence {
            self.progress.note()
            switch event {
            case .listed(var objects, let resourceVersion):
                if let transform = self.transform { objects = objects.map(transform) }
                let (removed, waiters) = self.state.withLock { state in
                    var fresh: [ObjectKey: Object] = [:]
                    fresh.reserveCapacity(objects.count)
                    for object in objects {
                        fresh[ObjectKey(object)] = object
                    }
                    let removed = state.objects.filter { fresh[$0.key] == nil }.map(\.value)
                    state.objects = fresh
                    state.resourceVersion = resourceVersion
                    state.synced = true
                    defer { state.syncWaiters.removeAll() }
                    return (removed, Array(state.syncWaiters.values))
                }
                for waiter in waiters { waiter.resume(returning: true) }
                for object in removed { onChange(.deleted(object)) }
                for object in objects { onChange(.upserted(object)) }
                onListed()
                self.client.logger.debug(
                    "k8s reflector listed",
                    metadata: ["k8s.resource": "\(self.resource)", "k8s.count": "\(objects.count)"]
                )
            case .event(.added(var object)), .event(.modified(var object)):
                if let transform = self.transform { object = transform(object) }
                self.state.withLock {
                    $0.objects[ObjectKey(object)] = object
                    $0.resourceVersion = object.metadata.resourceVersion
                }
                onChange(.upserted(object))
            case .event(.deleted(var object)):
                if let transform = self.transform { object = transform(object) }
                self.state.withLock {
                    $0.objects[ObjectKey(object)] = nil
                    $0.resourceVersion = object.metadata.resourceVersion
                }
                onChange(.deleted(object))
            case .event(.bookmark(let resourceVersion)):
                self.state.withLock { $0.resourceVersion = resourceVersion }
            case .event(.error):
                // The list-watch loop handles errors itself and never yields them.
                break
            }
        }
    }
}

/// When a reflector last made progress.
private final class Progress: Sendable {
    private let instant = Mutex<ContinuousClock.Instant?>(nil)

    var last: ContinuousClock.Instant? { self.instant.withLock { $0 } }

    func note() {
        self.instant.withLock { $0 = .now }
    }
}

/// Notes a reflector's progress on every successful answer to its requests (a watch counts when it starts).
private struct ProgressMiddleware: KubernetesMiddleware {
    let progress: Progress

    func intercept(
        _ request: KubernetesRequest,
        body: KubernetesBody?,
        next: @Sendable (KubernetesRequest, KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    ) async throws -> (KubernetesResponse, KubernetesBody) {
        let (response, responseBody) = try await next(request, body)
        if (200..<300).contains(response.status) {
            self.progress.note()
        }
        return (response, responseBody)
    }
}
