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

import KubernetesClient
import KubernetesController
import LiveStreamModel
import Synchronization

/// The operator's view of Secrets: which exist, with which keys, owned by whom, and which streams refer to each.
///
/// A LiveStream names Secrets it does not own (its targets' keys, its ingest key), so no label selects them. The
/// choices were:
/// - a metadata-only watch (`PartialObjectMetadata`): small on the wire, but it carries no key names, and "Secret
///   `yt` has no key `key`" is what a user must be told;
/// - one watch per referenced Secret (a `metadata.name` field selector): a held connection per Secret, ten thousand
///   of them for ten thousand streams;
/// - a watch of every Secret in the operator's namespaces, reduced by a transform before it is cached to an index
///   entry: name, `resourceVersion`, owner references and the *names* of its keys. Never a value: a key is read (a
///   GET) only for the gateway's shared ingest port, and only when its Secret's `resourceVersion` changed.
///
/// This is the third, with a field selector that leaves out the two kinds of Secret that are large or numerous and
/// never a stream key (Helm release records and service-account tokens). It costs the list and watch traffic of the
/// other Secrets, never their memory; an operator limited to one namespace (`streamNamespace`) sees that
/// namespace's only.
enum SecretIndex {
    static let id = "secrets"
    /// Secrets never referenced as stream keys, left out of the watch.
    static let fieldSelector = "type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token"

    /// What the cache keeps of a Secret (see ``IndexedSecret``).
    static func reduce(_ secret: KubernetesObject) -> IndexedSecret {
        var keys: [String] = []
        for field in ["data", "stringData"] {
            if case .object(let values)? = secret[field] { keys += values.keys }
        }
        return IndexedSecret(metadata: secret.metadata, keys: keys)
    }

    /// Whether `secret` holds `key`.
    static func has(_ secret: IndexedSecret, key: String) -> Bool {
        secret.keys.contains(key)
    }
}

/// What the operator's index keeps of a Secret: its metadata without annotations (`kubectl apply` copies the whole
/// object, values included, into one), labels and creation time (never read), compacted (``CompactObjectMeta``), and
/// the names of its keys, never a value. Decoded straight from the API server's JSON: the values are skipped, not
/// kept even for a moment. One box per Secret, so a cache's dictionary holds eight bytes per Secret beside its key.
struct IndexedSecret: KubernetesAPIObject, Hashable {
    private struct Fields: Hashable, Sendable {
        var meta: CompactObjectMeta
        var keys: [String]
    }

    private final class Box: Sendable {
        let fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var box: Box

    init(metadata: ObjectMeta, keys: some Sequence<String>) {
        var metadata = metadata
        metadata.annotations = nil
        metadata.labels = nil
        metadata.creationTimestamp = nil
        metadata.generateName = nil
        self.box = Box(Fields(meta: CompactObjectMeta(metadata), keys: Set(keys).sorted()))
    }

    var metadata: ObjectMeta {
        get { self.box.fields.meta.metadata }
        set { self = IndexedSecret(metadata: newValue, keys: self.keys) }
    }

    /// The names of its keys (of `data` and `stringData`), sorted.
    var keys: [String] { self.box.fields.keys }

    static func == (lhs: IndexedSecret, rhs: IndexedSecret) -> Bool {
        lhs.box === rhs.box || lhs.box.fields == rhs.box.fields
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(self.box.fields)
    }

    private enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, data, stringData }

    /// A member name of `data` or `stringData`.
    private struct Name: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let metadata = try container.decodeIfPresent(ObjectMeta.self, forKey: .metadata) ?? ObjectMeta()
        var keys: [String] = []
        for field in [CodingKeys.data, .stringData] where container.contains(field) {
            // `null` is no keys; anything else must be an object, as the API server sends.
            if try container.decodeNil(forKey: field) { continue }
            keys += try container.nestedContainer(keyedBy: Name.self, forKey: field).allKeys.map(\.stringValue)
        }
        self.init(metadata: metadata, keys: keys)
    }

    /// The metadata, and the keys with empty values.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("v1", forKey: .apiVersion)
        try container.encode("Secret", forKey: .kind)
        try container.encode(self.metadata, forKey: .metadata)
        var data = container.nestedContainer(keyedBy: Name.self, forKey: .data)
        for key in self.keys {
            try data.encode("", forKey: Name(stringValue: key)!)
        }
    }
}

/// Which streams refer to which Secrets, as their last reconcile read their spec: so a Secret that appears or
/// changes queues exactly the streams that name it.
final class SecretReferences: Sendable {
    private struct State {
        var byStream: [StreamID: Set<String>] = [:]
        var bySecret: [ObjectKey: Set<StreamID>] = [:]
    }

    private let state = Mutex(State())

    /// Records that `stream` refers to the Secrets `names` (in its namespace), and to no other.
    func set(_ stream: StreamID, names: Set<String>) {
        self.state.withLock { state in
            let old = state.byStream[stream] ?? []
            guard old != names else { return }
            for name in old.subtracting(names) {
                let key = ObjectKey(namespace: stream.namespace, name: name)
                state.bySecret[key]?.remove(stream)
                if state.bySecret[key]?.isEmpty == true { state.bySecret[key] = nil }
            }
            for name in names.subtracting(old) {
                state.bySecret[ObjectKey(namespace: stream.namespace, name: name), default: []].insert(stream)
            }
            state.byStream[stream] = names.isEmpty ? nil : names
        }
    }

    func remove(_ stream: StreamID) {
        self.set(stream, names: [])
    }

    /// The streams that refer to the Secret `key`.
    func streams(referring key: ObjectKey) -> [ObjectKey] {
        self.state.withLock { state in
            (state.bySecret[key] ?? []).map { ObjectKey(namespace: $0.namespace, name: $0.name) }
        }
    }
}
