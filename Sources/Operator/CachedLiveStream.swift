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
public import KubernetesClient
import KubernetesController
public import LiveStreamModel

/// A LiveStream as the operator's cache keeps it: its metadata without labels and annotations (no reconcile reads
/// them, and `kubectl apply` copies the whole object into an annotation), compacted (``CompactObjectMeta``), its
/// spec and its status, both typed.
///
/// As JSON trees a spec and a status (conditions with their messages and times, one entry per target) are most of a
/// stream's weight in the cache; typed, they take a fraction of it. A spec that cannot be read as a
/// ``LiveStreamSpec`` is kept as JSON, so the reconcile reports what is wrong with it; a status the operator cannot
/// read is kept as none, as the reconcile has always read it. All of it sits in one box, so a cache's dictionary
/// holds eight bytes per stream beside its key.
public struct CachedLiveStream: KubernetesAPIObject, Hashable {
    /// The spec as the cache holds it.
    public enum Spec: Hashable, Sendable {
        /// No `spec`: the defaults.
        case absent
        case decoded(LiveStreamSpec)
        /// A `spec` that cannot be read as a ``LiveStreamSpec``, as it came.
        case unreadable(JSONValue)

        /// The spec with its recurring strings (target names and URLs, source ranges) shared with the other
        /// streams' (``RecentStrings``).
        var shared: Spec {
            guard case .decoded(var spec) = self else { return self }
            let intern = RecentStrings.shared
            if spec.ingest.allowedSourceRanges == Self.anywhere {
                spec.ingest.allowedSourceRanges = Self.anywhere
            } else {
                spec.ingest.allowedSourceRanges = spec.ingest.allowedSourceRanges.map(intern.callAsFunction)
            }
            spec.targets = spec.targets.map { target in
                var target = target
                target.name = intern(target.name)
                target.url = intern(target.url)
                return target
            }
            return .decoded(spec)
        }

        /// The default source ranges, one array for every stream that has them.
        private static let anywhere = ["0.0.0.0/0"]
    }

    private struct Fields: Hashable, Sendable {
        var meta: CompactObjectMeta
        var spec: Spec
        var status: LiveStreamStatus?
    }

    private final class Box: Sendable {
        let fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var box: Box

    public var metadata: ObjectMeta {
        get { self.box.fields.meta.metadata }
        set { self.box = Box(Fields(meta: CompactObjectMeta(newValue), spec: self.spec, status: self.status)) }
    }

    public var spec: Spec { self.box.fields.spec }
    public var status: LiveStreamStatus? { self.box.fields.status }

    public init(metadata: ObjectMeta, spec: Spec = .absent, status: LiveStreamStatus? = nil) {
        self.box = Box(Fields(meta: CompactObjectMeta(metadata), spec: spec, status: status))
    }

    public static func == (lhs: CachedLiveStream, rhs: CachedLiveStream) -> Bool {
        lhs.box === rhs.box || lhs.box.fields == rhs.box.fields
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.box.fields)
    }

    /// The spec, read: the defaults for none, or the error that makes it unreadable.
    public func readSpec() throws -> LiveStreamSpec {
        switch self.spec {
        case .absent: try JSONDecoder().decode(LiveStreamSpec.self, from: Data("{}".utf8))
        case .decoded(let spec): spec
        case .unreadable(let raw): try JSONDecoder().decode(LiveStreamSpec.self, from: JSONEncoder().encode(raw))
        }
    }

    private enum CodingKeys: String, CodingKey { case metadata, spec, status }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let metadata = try container.decodeIfPresent(ObjectMeta.self, forKey: .metadata) ?? ObjectMeta()
        let spec: Spec
        if !container.contains(.spec) {
            spec = .absent
        } else if let decoded = try? container.decode(LiveStreamSpec.self, forKey: .spec) {
            spec = .decoded(decoded)
        } else {
            spec = .unreadable(try container.decode(JSONValue.self, forKey: .spec))
        }
        let status = (try? container.decodeIfPresent(LiveStreamStatus.self, forKey: .status)) ?? nil
        self.init(metadata: metadata, spec: spec.shared, status: status.map(Self.shared))
    }

    /// The status with its recurring strings (condition reasons, messages and times, target states) shared with
    /// the other streams' (``RecentStrings``).
    static func shared(_ status: LiveStreamStatus) -> LiveStreamStatus {
        let intern = RecentStrings.shared
        var status = status
        status.conditions = status.conditions?.map { condition in
            var condition = condition
            condition.type = intern(condition.type)
            condition.reason = intern(condition.reason)
            condition.message = intern(condition.message)
            condition.lastTransitionTime = intern(condition.lastTransitionTime)
            return condition
        }
        status.targets = status.targets?.map { target in
            var target = target
            target.name = intern(target.name)
            target.state = intern(target.state)
            target.lastError = target.lastError.map(intern.callAsFunction)
            return target
        }
        return status
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.metadata, forKey: .metadata)
        switch self.spec {
        case .absent: break
        case .decoded(let spec): try container.encode(spec, forKey: .spec)
        case .unreadable(let raw): try container.encode(raw, forKey: .spec)
        }
        try container.encodeIfPresent(self.status, forKey: .status)
    }
}
