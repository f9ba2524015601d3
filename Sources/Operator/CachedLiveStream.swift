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
public import LiveStreamModel

/// A LiveStream as the operator's cache keeps it: its metadata without labels and annotations (no reconcile reads
/// them, and `kubectl apply` copies the whole object into an annotation), its spec and its status, both typed.
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
    }

    private struct Fields: Hashable, Sendable {
        var metadata: ObjectMeta
        var spec: Spec
        var status: LiveStreamStatus?
    }

    private final class Box: Sendable {
        let fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var box: Box

    public var metadata: ObjectMeta {
        get { self.box.fields.metadata }
        set { self.box = Box(Fields(metadata: newValue, spec: self.spec, status: self.status)) }
    }

    public var spec: Spec { self.box.fields.spec }
    public var status: LiveStreamStatus? { self.box.fields.status }

    public init(metadata: ObjectMeta, spec: Spec = .absent, status: LiveStreamStatus? = nil) {
        var metadata = metadata
        metadata.labels = nil
        metadata.annotations = nil
        self.box = Box(Fields(metadata: metadata, spec: spec, status: status))
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
        self.init(metadata: metadata, spec: spec, status: status)
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
