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
public import LiveStreamModel

/// A LiveStream as the operator's cache keeps it: its metadata without labels and annotations (no reconcile reads
/// them, and `kubectl apply` copies the whole object into an annotation), its spec as JSON (read and validated at
/// each reconcile, so an invalid one is reported as such), and its status typed.
///
/// The status is most of a stream's weight once it runs (conditions with their messages and times, one entry per
/// target): as a typed value it takes a fraction of the memory of its JSON tree. A status the operator cannot read
/// is kept as none, as the reconcile has always read it.
public struct CachedLiveStream: KubernetesAPIObject, Hashable {
    public var metadata: ObjectMeta
    public var spec: JSONValue?
    public var status: LiveStreamStatus?

    public init(metadata: ObjectMeta, spec: JSONValue? = nil, status: LiveStreamStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    private enum CodingKeys: String, CodingKey { case metadata, spec, status }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var metadata = try container.decodeIfPresent(ObjectMeta.self, forKey: .metadata) ?? ObjectMeta()
        metadata.labels = nil
        metadata.annotations = nil
        self.metadata = metadata
        self.spec = try container.decodeIfPresent(JSONValue.self, forKey: .spec)
        self.status = (try? container.decodeIfPresent(LiveStreamStatus.self, forKey: .status)) ?? nil
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.metadata, forKey: .metadata)
        try container.encodeIfPresent(self.spec, forKey: .spec)
        try container.encodeIfPresent(self.status, forKey: .status)
    }
}
