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
import LiveStreamModel

/// Keeps the ``IngestKeyBook`` Secret (``OperatorConfiguration/ingestKeyBookSecret``) in the gateway's namespace: an
/// entry per stream that has a stream key, so that the gateway's shared ingest port can find a stream by its key
/// while reading that one Secret only.
///
/// Each change is one JSON merge patch of one entry, so reconciles of different streams never overwrite each other's
/// entries; an entry that is already right is not written again.
struct IngestKeyBookWriter: Sendable {
    let client: KubernetesClient
    let namespace: String
    let name: String

    /// Writes the stream's entry, creating the Secret if it is missing.
    func set(_ stream: StreamID, app: String, key: String) async throws {
        let entry = IngestKeyBook.entryName(for: stream)
        let value = IngestKeyBook.encode(app: app, key: key)
        do {
            let secret = try await self.client.get(
                KubernetesObject.self,
                .secrets,
                name: self.name,
                namespace: self.namespace
            )
            if let current = secret["data"]?[entry]?.stringValue,
                IngestKeyBook.decode(current).map({ $0 == (app, key) }) == true
            {
                return
            }
            _ = try await self.patch([entry: .string(value)])
        } catch let error as KubernetesError where error.isNotFound {
            let secret = KubernetesObject(
                apiVersion: "v1",
                kind: "Secret",
                metadata: ObjectMeta(name: self.name, namespace: self.namespace, labels: [IngestKeyBook.label: "true"]),
                fields: ["type": "Opaque", "data": .object([entry: .string(value)])]
            )
            do {
                _ = try await self.client.create(secret, .secrets, namespace: self.namespace)
            } catch let error as KubernetesError where error.isConflict {
                // Created meanwhile by another worker, for another stream: add ours to it.
                _ = try await self.patch([entry: .string(value)])
            }
        }
    }

    /// Removes the stream's entry (a deleted stream, or one that no longer has a key).
    func remove(_ stream: StreamID) async throws {
        do {
            _ = try await self.patch([IngestKeyBook.entryName(for: stream): .null])
        } catch let error as KubernetesError where error.isNotFound {
            // No book, so no entry.
        }
    }

    private func patch(_ data: [String: JSONValue]) async throws -> KubernetesObject {
        try await self.client.patch(
            KubernetesObject.self,
            .secrets,
            name: self.name,
            namespace: self.namespace,
            mergePatch: ["data": .object(data)]
        )
    }
}
