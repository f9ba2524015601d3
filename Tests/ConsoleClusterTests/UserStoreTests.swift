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

import ConsoleCluster
import Foundation
import KubernetesClient
import KubernetesTestSupport
import LiveStreamModel
import Synchronization
import Testing

/// A string shaped like a bcrypt hash (the Console module makes real ones).
func bcryptShaped(_ seed: Character) -> String {
    "$2b$12$" + String(repeating: seed, count: 53)
}

@Suite("The console's users in a Secret", .timeLimit(.minutes(2)))
struct UserStoreTests {
    @Test("users are added, changed and removed; bad names, hashes and duplicates are refused")
    func lifecycle() async throws {
        try await withTestCluster { cluster in
            let store = KubernetesUserStore(
                client: cluster.client,
                namespace: cluster.namespace,
                secretName: "console-users",
                logger: quietLogger
            )
            #expect(try await store.users().isEmpty)
            let alice = ConsoleUserRecord(name: "alice", passwordHash: bcryptShaped("a"), namespace: "alice")
            try await store.add(alice)
            try await store.add(
                ConsoleUserRecord(name: "root", passwordHash: bcryptShaped("r"), isAdmin: true, namespace: "ops")
            )
            #expect(try await store.user(named: "alice") == alice)
            #expect(try await store.users().map(\.name) == ["alice", "root"])
            #expect(
                try await store.user(named: "root")?.viewer
                    == ConsoleViewer(username: "root", namespace: "ops", isAdmin: true)
            )

            let duplicate = try await #require(throws: ClusterStoreError.self) { try await store.add(alice) }
            #expect(duplicate.code == .alreadyExists)
            let invalid = try await #require(throws: ClusterStoreError.self) {
                try await store.add(ConsoleUserRecord(name: "bad name", passwordHash: "hunter2", namespace: "Bad_NS"))
            }
            #expect(invalid.code == .invalid)
            #expect(invalid.fieldErrors.map(\.field) == ["name", "namespace", "passwordHash"])
            #expect(!invalid.description.contains("hunter2"))

            let changed = try await store.setPasswordHash(bcryptShaped("b"), for: "alice")
            #expect(changed.passwordHash == bcryptShaped("b"))
            #expect(changed.oneLiveAtATime)
            let setting = try await store.update(named: "alice") { $0.oneLiveAtATime = false }
            #expect(setting.oneLiveAtATime == false)
            #expect(try await store.user(named: "alice")?.oneLiveAtATime == false)
            // A record stored before the setting existed has it on.
            let old = #"{"name":"old","passwordHash":"x","admin":false,"namespace":"n"}"#
            #expect(try JSONDecoder().decode(ConsoleUserRecord.self, from: Data(old.utf8)).oneLiveAtATime)
            let missing = try await #require(throws: ClusterStoreError.self) {
                try await store.setPasswordHash(bcryptShaped("c"), for: "nobody")
            }
            #expect(missing.code == .notFound)
            #expect(try await store.remove(named: "alice"))
            #expect(try await store.remove(named: "alice") == false)

            // What is stored: the hashes under users.json, and a record never prints its hash.
            let secret = try await cluster.client.get(
                KubernetesObject.self,
                .secrets,
                name: "console-users",
                namespace: cluster.namespace
            )
            let encoded = try #require(secret["data"]?["users.json"]?.stringValue)
            struct Document: Decodable { var users: [ConsoleUserRecord] }
            let stored = try JSONDecoder().decode(
                Document.self,
                from: try #require(Data(base64Encoded: encoded))
            )
            #expect(stored.users.map(\.name) == ["root"])
            #expect(stored.users.first?.isAdmin == true)
            #expect(!"\(stored.users)".contains(bcryptShaped("r")))
        }
    }

    @Test("a change that meets a concurrent one (409) is made again on top of it, not lost")
    func optimisticConcurrency() async throws {
        try await withTestCluster { cluster in
            let other = KubernetesUserStore(
                client: cluster.client,
                namespace: cluster.namespace,
                secretName: "console-users",
                logger: quietLogger
            )
            try await other.add(ConsoleUserRecord(name: "first", passwordHash: bcryptShaped("f"), namespace: "f"))
            // Just before this store's first write, another replica adds a user.
            let injected = Mutex(false)
            let counter = RequestCounter { request in
                guard request.method == .put else { return }
                let first = injected.withLock { done in
                    defer { done = true }
                    return !done
                }
                if first {
                    try await other.add(
                        ConsoleUserRecord(name: "racer", passwordHash: bcryptShaped("x"), namespace: "x")
                    )
                }
            }
            let store = KubernetesUserStore(
                client: cluster.client.adding(counter),
                namespace: cluster.namespace,
                secretName: "console-users",
                logger: quietLogger
            )
            try await store.add(ConsoleUserRecord(name: "second", passwordHash: bcryptShaped("s"), namespace: "s"))
            #expect(counter.count(.put, pathSuffix: "console-users") == 2)
            other.invalidateCache()
            #expect(try await other.users().map(\.name) == ["first", "racer", "second"])
        }
    }

    @Test("reads are cached for the TTL on the injected clock; own changes refresh the cache at once")
    func caching() async throws {
        try await withTestCluster { cluster in
            let clock = ManualClock()
            let counter = RequestCounter()
            let store = KubernetesUserStore(
                client: cluster.client.adding(counter),
                namespace: cluster.namespace,
                secretName: "console-users",
                cacheTTL: .seconds(5),
                clock: clock,
                logger: quietLogger
            )
            let other = KubernetesUserStore(
                client: cluster.client,
                namespace: cluster.namespace,
                secretName: "console-users",
                logger: quietLogger
            )
            try await store.add(ConsoleUserRecord(name: "mine", passwordHash: bcryptShaped("m"), namespace: "m"))
            let reads = counter.count(.get, pathSuffix: "console-users")
            #expect(try await store.users().map(\.name) == ["mine"])
            #expect(counter.count(.get, pathSuffix: "console-users") == reads)

            try await other.add(ConsoleUserRecord(name: "theirs", passwordHash: bcryptShaped("t"), namespace: "t"))
            clock.advance(by: .seconds(4))
            #expect(try await store.user(named: "theirs") == nil)
            clock.advance(by: .seconds(2))
            #expect(try await store.user(named: "theirs")?.namespace == "t")
            #expect(counter.count(.get, pathSuffix: "console-users") == reads + 1)
        }
    }
}
