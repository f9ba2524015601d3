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
///
/// The watch event of a write can arrive before the write's answer does. An expectation recorded after its event
/// would then never be fulfilled, and once someone else changed the object the cache's newer copy would look like
/// an older one: the reconcile would trust its own stale write and leave a hand edit in place until the
/// expectation lapsed. So recording looks at the caches first (``CachedVersions``), under the same lock as
/// ``observe(_:_:)``, which runs after the cache is updated: a write the caches show already expects nothing.
public final class WriteExpectations: Sendable {
    /// The `resourceVersion` of the object `key` of `resource` in every cache that holds that resource: `nil` for
    /// a cache without the object; no element when no cache holds the resource.
    public typealias CachedVersions = @Sendable (_ resource: KubernetesResource, _ key: ObjectKey) -> [String?]

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

    private struct State {
        var expected: [ID: Expectation] = [:]
        var cachedVersions: CachedVersions = { _, _ in [] }
    }

    public let timeout: Duration
    private let state = Mutex(State())

    public init(timeout: Duration = .seconds(10)) {
        self.timeout = timeout
    }

    /// Records that this controller wrote `object` (as the API server answered the write), with a `note` of what
    /// it wrote (a hash, say) for ``pendingWrite(_:_:cachedVersion:)``.
    public func expect(_ resource: KubernetesResource, written object: some KubernetesAPIObject, note: String? = nil) {
        guard let version = object.metadata.resourceVersion else { return }
        let key = ObjectKey(object)
        self.state.withLock { state in
            let id = ID(resource, key)
            if state.cachedVersions(resource, key).contains(version) {
                state.expected[id] = nil
            } else {
                state.expected[id] = Expectation(resourceVersion: version, note: note, at: .now)
            }
        }
    }

    /// Records that this controller deleted the object.
    public func expectDeletion(_ resource: KubernetesResource, _ key: ObjectKey) {
        self.state.withLock { state in
            let id = ID(resource, key)
            let cached = state.cachedVersions(resource, key)
            if !cached.isEmpty, cached.allSatisfy({ $0 == nil }) {
                state.expected[id] = nil
            } else {
                state.expected[id] = Expectation(resourceVersion: nil, note: nil, at: .now)
            }
        }
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
        self.state.withLock { state in
            guard let expectation = state.expected[id], expectation.resourceVersion == version else { return }
            state.expected[id] = nil
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
        return self.state.withLock { state -> String?? in
            guard let expectation = state.expected[id] else { return nil }
            if expectation.resourceVersion == version || ContinuousClock.now - expectation.at >= self.timeout {
                state.expected[id] = nil
                return nil
            }
            return .some(expectation.note)
        }
    }

    /// Forgets every expectation (a new leadership term starts with fresh caches) and reads the caches of the new
    /// term through `cachedVersions`.
    public func reset(cachedVersions: @escaping CachedVersions = { _, _ in [] }) {
        self.state.withLock { state in
            state.expected.removeAll()
            state.cachedVersions = cachedVersions
        }
    }

    /// Expectations not fulfilled yet, for tests.
    public var count: Int { self.state.withLock { $0.expected.count } }
}
