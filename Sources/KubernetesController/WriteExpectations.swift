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
import Synchronization

/// Writes a controller made that its caches have not shown yet (client-go's controller "expectations").
///
/// A reconcile that compares what it wants with its cache must not mistake a cache that lags behind its own last
/// write for a change: it would write again, once per event that arrives in between. So each write records the
/// `resourceVersion` the API server answered with; until the cache has delivered that version of the object (events
/// of one object arrive in order), the object counts as *behind* and the reconcile trusts its own write. The event
/// that brings the version queues the owner again anyway. An expectation lapses after `timeout`, so a watch that
/// relisted past the version (a 410) cannot hold an object back for longer than that.
public final class WriteExpectations: Sendable {
    /// One object of one resource.
    public struct ID: Hashable, Sendable {
        public var resource: String
        public var key: ObjectKey

        public init(_ resource: KubernetesResource, _ key: ObjectKey) {
            self.resource = "\(resource.group)/\(resource.plural)"
            self.key = key
        }
    }

    private struct Expectation {
        /// `nil`: a delete, fulfilled when the object is gone.
        var resourceVersion: String?
        var note: String?
        var at: ContinuousClock.Instant
    }

    public let timeout: Duration
    private let expected = Mutex<[ID: Expectation]>([:])

    public init(timeout: Duration = .seconds(10)) {
        self.timeout = timeout
    }

    /// Records that this controller wrote `object` (as the API server answered the write), with a `note` of what
    /// it wrote (a hash, say) for ``pendingWrite(_:_:cachedVersion:)``.
    public func expect(_ resource: KubernetesResource, written object: some KubernetesAPIObject, note: String? = nil) {
        guard let version = object.metadata.resourceVersion else { return }
        self.expected.withLock {
            $0[ID(resource, ObjectKey(object))] = Expectation(resourceVersion: version, note: note, at: .now)
        }
    }

    /// Records that this controller deleted the object.
    public func expectDeletion(_ resource: KubernetesResource, _ key: ObjectKey) {
        self.expected.withLock { $0[ID(resource, key)] = Expectation(resourceVersion: nil, note: nil, at: .now) }
    }

    /// What a cache delivered (from its change stream): fulfils the expectation it matches.
    public func observe(_ resource: KubernetesResource, _ change: ReflectorChange<some KubernetesAPIObject>) {
        let id: ID
        let version: String?
        switch change {
        case .upserted(let object):
            id = ID(resource, ObjectKey(object))
            version = object.metadata.resourceVersion
        case .deleted(let object):
            id = ID(resource, ObjectKey(object))
            version = nil
        }
        self.expected.withLock { expected in
            guard let expectation = expected[id], expectation.resourceVersion == version else { return }
            expected[id] = nil
        }
    }

    /// Whether the cache's copy of the object, at `cachedVersion` (`nil`: absent from the cache), is older than this
    /// controller's last write of it: `true` until the cache has delivered the written version, or the expectation
    /// lapsed.
    public func isBehind(_ resource: KubernetesResource, _ key: ObjectKey, cachedVersion version: String?) -> Bool {
        self.pendingWrite(resource, key, cachedVersion: version) != nil
    }

    /// The write the cache, at `cachedVersion`, does not show yet: `.some(note)` (the note it was recorded with),
    /// `nil` when there is none.
    public func pendingWrite(
        _ resource: KubernetesResource,
        _ key: ObjectKey,
        cachedVersion version: String?
    ) -> String?? {
        let id = ID(resource, key)
        return self.expected.withLock { expected -> String?? in
            guard let expectation = expected[id] else { return nil }
            if expectation.resourceVersion == version || ContinuousClock.now - expectation.at >= self.timeout {
                expected[id] = nil
                return nil
            }
            return .some(expectation.note)
        }
    }

    /// Forgets every expectation (a new leadership term starts with fresh caches).
    public func reset() {
        self.expected.withLock { $0.removeAll() }
    }

    /// Expectations not fulfilled yet, for tests.
    public var count: Int { self.expected.withLock { $0.count } }
}
