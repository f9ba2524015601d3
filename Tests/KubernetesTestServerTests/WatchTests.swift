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

import KubernetesTestServer
import Testing

@Suite("Watch", .timeLimit(.minutes(3)))
struct WatchTests {
    let configMaps = "/api/v1/namespaces/default/configmaps"

    func configMap(_ name: String, _ value: String = "1", labels: [String: JSON] = [:]) -> JSON {
        [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string(name), "labels": .object(labels)],
            "data": ["v": .string(value)],
        ]
    }

    @Test("without a resourceVersion, current objects arrive as ADDED, then live changes follow")
    func fromNow() async throws {
        try await withServer { _, client in
            _ = try await client.post(self.configMaps, self.configMap("a"))
            var stream = try await client.watch("\(self.configMaps)?watch=1")
            let first = try await stream.nextChange()
            #expect(first?["type"] == "ADDED")
            #expect(first?["object"]?.name == "a")
            _ = try await client.patch("\(self.configMaps)/a", ["data": ["v": "2"]])
            let modified = try await stream.nextChange()
            #expect(modified?["type"] == "MODIFIED")
            #expect(modified?["object"]?[path: ["data", "v"]] == "2")
            _ = try await client.delete("\(self.configMaps)/a")
            let deleted = try await stream.nextChange()
            #expect(deleted?["type"] == "DELETED")
        }
    }

    @Test("from a resourceVersion, the history after it is replayed in order")
    func replay() async throws {
        try await withServer { _, client in
            let list = try await client.get(self.configMaps)
            let version = list.body[path: ["metadata", "resourceVersion"]]?.stringValue ?? ""
            _ = try await client.post(self.configMaps, self.configMap("a"))
            _ = try await client.post(self.configMaps, self.configMap("b"))
            _ = try await client.patch("\(self.configMaps)/a", ["data": ["v": "3"]])
            var stream = try await client.watch("\(self.configMaps)?watch=true&resourceVersion=\(version)")
            var seen: [String] = []
            for _ in 0..<3 {
                let event = try await stream.nextChange()
                seen.append("\(event?["type"]?.stringValue ?? "") \(event?["object"]?.name ?? "")")
            }
            #expect(seen == ["ADDED a", "ADDED b", "MODIFIED a"])
        }
    }

    @Test("bookmarks carry only the latest resourceVersion")
    func bookmarks() async throws {
        try await withServer { _, client in
            let created = try await client.post(self.configMaps, self.configMap("a")).body
            var stream = try await client.watch(
                "\(self.configMaps)?watch=1&allowWatchBookmarks=true&resourceVersion=\(created.resourceVersion ?? "")"
            )
            let bookmark = try await stream.next()
            #expect(bookmark?["type"] == "BOOKMARK")
            #expect(bookmark?["object"]?["kind"] == "ConfigMap")
            #expect(bookmark?["object"]?.resourceVersion == created.resourceVersion)
            #expect(bookmark?["object"]?["data"] == nil)
        }
    }

    @Test("timeoutSeconds ends the stream; dropWatches ends every stream")
    func endings() async throws {
        try await withServer { server, client in
            var timed = try await client.watch("\(self.configMaps)?watch=1&timeoutSeconds=1")
            #expect(try await timed.next() == nil)
            var dropped = try await client.watch("\(self.configMaps)?watch=1")
            server.dropWatches()
            #expect(try await dropped.next() == nil)
        }
    }

    @Test("after compact(), a watch from an old resourceVersion gets an ERROR event with 410 Expired")
    func compacted() async throws {
        try await withServer { server, client in
            let created = try await client.post(self.configMaps, self.configMap("a")).body
            server.compact()
            var stream = try await client.watch(
                "\(self.configMaps)?watch=1&resourceVersion=\(created.resourceVersion ?? "")"
            )
            let error = try await stream.next()
            #expect(error?["type"] == "ERROR")
            #expect(error?["object"]?["code"] == 410)
            #expect(error?["object"]?["reason"] == "Expired")
            #expect(try await stream.next() == nil)
            // From the current version, watching works again.
            var fresh = try await client.watch("\(self.configMaps)?watch=1&resourceVersion=\(server.resourceVersion)")
            _ = try await client.post(self.configMaps, self.configMap("b"))
            #expect(try await fresh.nextChange()?["object"]?.name == "b")
        }
    }

    @Test("the history is bounded: beyond the limit, old versions expire")
    func boundedHistory() async throws {
        try await withServer(.init(bookmarkInterval: .seconds(60), historyLimit: 3)) { _, client in
            let first = try await client.post(self.configMaps, self.configMap("a")).body
            for value in 2...6 {
                _ = try await client.patch("\(self.configMaps)/a", ["data": ["v": .string("\(value)")]])
            }
            var stream = try await client.watch(
                "\(self.configMaps)?watch=1&resourceVersion=\(first.resourceVersion ?? "")"
            )
            #expect(try await stream.next()?["object"]?["code"] == 410)
        }
    }

    @Test("watches honour label selectors")
    func selectors() async throws {
        try await withServer { _, client in
            var stream = try await client.watch("\(self.configMaps)?watch=1&labelSelector=app%3Dweb")
            _ = try await client.post(self.configMaps, self.configMap("other"))
            _ = try await client.post(self.configMaps, self.configMap("web", labels: ["app": "web"]))
            #expect(try await stream.nextChange()?["object"]?.name == "web")
            // Entering and leaving the selector are ADDED and DELETED for this watch.
            _ = try await client.patch("\(self.configMaps)/other", ["metadata": ["labels": ["app": "web"]]])
            let entered = try await stream.nextChange()
            #expect(entered?["type"] == "ADDED")
            #expect(entered?["object"]?.name == "other")
            _ = try await client.patch("\(self.configMaps)/web", ["metadata": ["labels": ["app": nil]]])
            let left = try await stream.nextChange()
            #expect(left?["type"] == "DELETED")
            #expect(left?["object"]?.name == "web")
        }
    }

    @Test("sendInitialEvents=true streams the current objects, then a bookmark marking their end")
    func initialEvents() async throws {
        try await withServer { _, client in
            _ = try await client.post(self.configMaps, self.configMap("a"))
            var stream = try await client.watch(
                "\(self.configMaps)?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
            )
            #expect(try await stream.next()?["type"] == "ADDED")
            let end = try await stream.next()
            #expect(end?["type"] == "BOOKMARK")
            #expect(end?[path: ["object", "metadata", "annotations", "k8s.io/initial-events-end"]] == "true")
        }
    }
}
