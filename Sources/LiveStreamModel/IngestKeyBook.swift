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

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The streams' ingest keys as the cluster gateway reads them for its shared ingest port: one Secret, kept by the
/// operator, with an entry per stream that has a key. The gateway may read that Secret alone (RBAC `resourceNames`)
/// instead of every stream's key Secret.
///
/// An entry is named `NAMESPACE.NAME` (a namespace has no dot, so the first dot splits it) and holds
/// `{"app":"live","key":"..."}`.
public enum IngestKeyBook {
    /// The label on the book's Secret.
    public static let label = "liverelay.io/ingest-keys"

    public static func entryName(for stream: StreamID) -> String {
        "\(stream.namespace).\(stream.name)"
    }

    public static func stream(forEntry name: String) -> StreamID? {
        guard let dot = name.firstIndex(of: ".") else {
            return nil
        }
        let namespace = String(name[..<dot])
        let stream = String(name[name.index(after: dot)...])
        guard !namespace.isEmpty, !stream.isEmpty else {
            return nil
        }
        return StreamID(namespace: namespace, name: stream)
    }

    private struct Entry: Codable {
        var app: String
        var key: String
    }

    /// An entry's value, as the Secret's `data` holds it (base64).
    public static func encode(app: String, key: String) -> String {
        // Encoding two strings cannot fail.
        let json = (try? JSONEncoder().encode(Entry(app: app, key: key))) ?? Data()
        return json.base64EncodedString()
    }

    /// An entry's application and key from the Secret's `data` value (base64), or `nil` if it is not one.
    public static func decode(_ value: String) -> (app: String, key: String)? {
        guard let data = Data(base64Encoded: value), let entry = try? JSONDecoder().decode(Entry.self, from: data)
        else {
            return nil
        }
        return (entry.app, entry.key)
    }
}
