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

    /// What the cache keeps of a Secret: its metadata without annotations (`kubectl apply` copies the whole object,
    /// values included, into one), labels and creation time (never read), and its keys with empty values.
    static func reduce(_ secret: KubernetesObject) -> KubernetesObject {
        var keys: [String: JSONValue] = [:]
        for field in ["data", "stringData"] {
            if case .object(let values)? = secret[field] {
                for key in values.keys { keys[key] = "" }
            }
        }
        var metadata = secret.metadata
        metadata.annotations = nil
        metadata.labels = nil
        metadata.creationTimestamp = nil
        return KubernetesObject(
            apiVersion: secret.apiVersion,
            kind: secret.kind,
            metadata: metadata,
            fields: ["data": .object(keys)]
        )
    }

    /// Whether `secret` (reduced) holds `key`.
    static func has(_ secret: KubernetesObject, key: String) -> Bool {
        secret["data"]?[key] != nil
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
