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
import PeerTestSupport
import Testing

@Suite("The console's streams in a cluster", .timeLimit(.minutes(3)))
struct StreamStoreTests {
    @Test("a user neither sees nor changes another user's stream; an admin sees it but cannot reveal its key")
    func ownership() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let store = makeStore(cluster.client)
            let alice = ConsoleViewer(username: "alice", namespace: cluster.namespace)
            let bob = ConsoleViewer(username: "bob", namespace: "\(cluster.namespace)-bob")
            let admin = ConsoleViewer(username: "root", namespace: "\(cluster.namespace)-admin", isAdmin: true)
            let created = try await store.create(draft("show"), for: alice)
            let id = created.id
            #expect(id == StreamID(namespace: cluster.namespace, name: "show"))

            #expect(try await store.stream(id, for: bob) == nil)
            #expect(try await store.streams(for: bob).contains { $0.id == id } == false)
            #expect(try await store.update(id, with: draft("show", targets: []), for: bob) == nil)
            #expect(try await store.setLive(id, live: false, for: bob) == nil)
            #expect(try await store.setTargetEnabled(id, target: "youtube", enabled: false, for: bob) == nil)
            #expect(try await store.rotateStreamKey(id, for: bob) == false)
            #expect(try await store.revealStreamKey(id, for: bob) == nil)
            #expect(try await store.delete(id, for: bob) == false)
            await #expect(throws: ClusterStoreError.self) {
                _ = try await store.create(draft("intruder"), in: cluster.namespace, for: bob)
            }

            // Nothing of bob's attempts reached the stream.
            let after = try #require(try await store.stream(id, for: alice))
            #expect(after.resourceVersion == created.resourceVersion)
            #expect(after.spec == created.spec)
            #expect(try await store.stream(StreamID(namespace: cluster.namespace, name: "intruder"), for: alice) == nil)

            // An admin sees every namespace's streams, but only an owner reveals a key.
            #expect(try await store.stream(id, for: admin)?.id == id)
            #expect(try await store.streams(for: admin).contains { $0.id == id })
            #expect(try await store.revealStreamKey(id, for: admin) == nil)
            #expect(try await store.streams(for: alice).map(\.id) == [id])
        }
    }

    @Test("a field another manager owns makes the apply fail with its message; force takes it over")
    func conflict() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let store = makeStore(cluster.client)
            let alice = ConsoleViewer(username: "alice", namespace: cluster.namespace)
            // Applied by another tool (GitOps, kubectl --server-side), suspended.
            let document: JSONValue = [
                "apiVersion": "liverelay.io/v1alpha1", "kind": "LiveStream",
                "metadata": ["name": "gitops", "namespace": .string(cluster.namespace)],
                "spec": ["suspend": true, "targets": [["name": "twitch", "url": "rtmp://live.twitch.tv/app"]]],
            ]
            _ = try await cluster.client.apply(
                document,
                as: KubernetesObject.self,
                KubernetesStreamStore.liveStreams,
                name: "gitops",
                namespace: cluster.namespace,
                fieldManager: "gitops-tool"
            )
            let id = StreamID(namespace: cluster.namespace, name: "gitops")
            let error = try await #require(throws: ClusterStoreError.self) {
                _ = try await store.setLive(id, live: true, for: alice)
            }
            #expect(error.code == .conflict)
            #expect(error.message.contains("gitops-tool"))
            #expect(error.conflicts.contains { $0.field == ".spec.suspend" })
            #expect(try await store.stream(id, for: alice)?.spec.suspend == true)

            // Said and confirmed: force takes the field over.
            let result = try #require(try await store.setLive(id, live: true, force: true, for: alice))
            #expect(result.stream.spec.suspend == false)

            // An edit made on a version that has changed since is refused, not written over the newer one.
            let stale = try #require(try await store.stream(id, for: alice))
            _ = try await store.setTargetEnabled(id, target: "twitch", enabled: false, for: alice)
            var edit = draft("gitops", targets: ["twitch", "youtube"])
            edit.spec.targets[0].url = "rtmp://live.twitch.tv/app"
            let staleError = try await #require(throws: ClusterStoreError.self) {
                _ = try await store.update(id, with: edit, expectedResourceVersion: stale.resourceVersion, for: alice)
            }
            #expect(staleError.code == .stale)
            let now = try #require(try await store.stream(id, for: alice))
            #expect(now.spec.targets.map(\.name) == ["twitch"])
            #expect(now.spec.targets.first?.enabled == false)

            // A field of another manager in a whole edit: refused with its message, and the new key it carried
            // is not left behind. (GitOps takes its fields back by force, as Argo CD and Flux do.)
            _ = try await cluster.client.apply(
                document,
                as: KubernetesObject.self,
                KubernetesStreamStore.liveStreams,
                name: "gitops",
                namespace: cluster.namespace,
                fieldManager: "gitops-tool",
                force: true
            )
            var moved = draft("gitops", targets: ["twitch"])
            moved.spec.targets[0].url = "rtmp://moved.example.com/app"
            moved.targetKeys = ["twitch": .set("twitch-key")]
            let urlError = try await #require(throws: ClusterStoreError.self) {
                _ = try await store.update(id, with: moved, for: alice)
            }
            #expect(urlError.code == .conflict)
            #expect(urlError.conflicts.contains { $0.field.contains("url") && $0.message.contains("gitops-tool") })
            let keySecrets = try await cluster.client.list(
                KubernetesObject.self,
                .secrets,
                namespace: cluster.namespace,
                options: ListOptions(labelSelector: "liverelay.io/stream=gitops")
            )
            #expect(keySecrets.items.isEmpty)
        }
    }

    @Test("an invalid edit is refused with field errors and nothing is written")
    func invalidEdit() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let store = makeStore(cluster.client)
            let alice = ConsoleViewer(username: "alice", namespace: cluster.namespace)
            let created = try await store.create(draft("show"), for: alice)
            let secretsBefore = try await cluster.client.listAll(
                KubernetesObject.self,
                .secrets,
                namespace: cluster.namespace
            ).items.count

            var edit = draft("show", targets: ["youtube", "bad"])
            edit.spec.targets[1].url = "http://not-rtmp.example.com/live"
            edit.targetKeys = ["bad": .set("a-new-key-that-must-not-be-stored"), "missing": .set("x")]
            let error = try await #require(throws: ClusterStoreError.self) {
                _ = try await store.update(created.id, with: edit, for: alice)
            }
            #expect(error.code == .invalid)
            #expect(error.fieldErrors.map(\.field).contains("spec.targets[1].url"))
            #expect(error.fieldErrors.map(\.field).contains("targetKeys[missing]"))
            #expect(!error.description.contains("a-new-key-that-must-not-be-stored"))

            let after = try #require(try await store.stream(created.id, for: alice))
            #expect(after.resourceVersion == created.resourceVersion)
            let secretsAfter = try await cluster.client.listAll(
                KubernetesObject.self,
                .secrets,
                namespace: cluster.namespace
            ).items.count
            #expect(secretsAfter == secretsBefore)

            // A new stream that is invalid is not created at all.
            let badName = try await #require(throws: ClusterStoreError.self) {
                _ = try await store.create(draft("Not_A_Name"), for: alice)
            }
            #expect(badName.fieldErrors.map(\.field) == ["metadata.name"])
            #expect(try await store.streams(for: alice).map(\.id.name) == ["show"])
        }
    }

    @Test("going live takes the user's other streams offline, unless one live at a time is off")
    func oneLiveAtATime() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let store = makeStore(cluster.client)
            let alice = ConsoleViewer(username: "alice", namespace: cluster.namespace)
            let a = try await store.create(draft("a"), for: alice).id
            let b = try await store.create(draft("b"), for: alice).id
            let c = try await store.create(draft("c", suspend: true), for: alice).id

            let first = try #require(try await store.setLive(c, live: true, for: alice))
            #expect(first.stream.isOnline)
            #expect(Set(first.suspended) == [a, b])
            var online = try await store.streams(for: alice).filter(\.isOnline).map(\.id)
            #expect(online == [c])

            let second = try #require(try await store.setLive(a, live: true, for: alice))
            #expect(second.suspended == [c])
            online = try await store.streams(for: alice).filter(\.isOnline).map(\.id)
            #expect(online == [a])

            let both = try #require(try await store.setLive(b, live: true, oneLiveAtATime: false, for: alice))
            #expect(both.suspended.isEmpty)
            online = try await store.streams(for: alice).filter(\.isOnline).map(\.id)
            #expect(online == [a, b])

            let offline = try #require(try await store.setLive(a, live: false, for: alice))
            #expect(offline.stream.spec.suspend)
            #expect(offline.suspended.isEmpty)
        }
    }

    @Test("a new stream key is written into the operator's Secret; the owner reveals it, the old one is gone")
    func rotation() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let store = makeStore(cluster.client)
            let alice = ConsoleViewer(username: "alice", namespace: cluster.namespace)
            let stream = try await store.create(draft("show"), for: alice)
            // The Secret as the operator generates it (Operator's RelayChildren.generatedStreamKeySecret).
            let old = StreamKey.generate()
            _ = try await cluster.client.create(
                KubernetesObject(
                    apiVersion: "v1",
                    kind: "Secret",
                    metadata: ObjectMeta(
                        name: "show-stream-key",
                        namespace: cluster.namespace,
                        ownerReferences: [
                            OwnerReference(
                                apiVersion: "liverelay.io/v1alpha1",
                                kind: "LiveStream",
                                name: "show",
                                uid: try #require(stream.uid)
                            )
                        ]
                    ),
                    fields: ["type": "Opaque", "data": ["streamKey": .string(Data(old.utf8).base64EncodedString())]]
                ),
                .secrets
            )
            #expect(try await store.revealStreamKey(stream.id, for: alice) == old)

            #expect(try await store.rotateStreamKey(stream.id, for: alice))
            let new = try #require(
                try await secretValue(cluster.client, "show-stream-key", key: "streamKey", namespace: cluster.namespace)
            )
            #expect(new != old)
            #expect(new.count == 64)
            #expect(try await store.revealStreamKey(stream.id, for: alice) == new)

            // A stream whose key the operator has not generated yet gets one, owned by the stream.
            let fresh = try await store.create(draft("fresh"), for: alice)
            #expect(try await store.rotateStreamKey(fresh.id, for: alice))
            let generated = try await cluster.client.get(
                KubernetesObject.self,
                .secrets,
                name: "fresh-stream-key",
                namespace: cluster.namespace
            )
            #expect(generated.metadata.ownerReferences?.first?.uid == fresh.uid)
            #expect(try await store.revealStreamKey(fresh.id, for: alice)?.count == 64)

            // A key Secret someone else made (kubectl, GitOps) is theirs: rotating it is refused unless forced.
            var mine = draft("byhand")
            mine.spec.ingest.streamKeySecretRef = .init(name: "hand-made", key: "key")
            let byHand = try await store.create(mine, for: alice)
            #expect(byHand.spec.ingest.streamKeySecretRef == nil)  // a person does not pick the key's Secret here
            let document: JSONValue = [
                "apiVersion": "liverelay.io/v1alpha1", "kind": "LiveStream",
                "metadata": ["name": "byhand", "namespace": .string(cluster.namespace)],
                "spec": ["ingest": ["streamKeySecretRef": ["name": "hand-made", "key": "key"]]],
            ]
            _ = try await cluster.client.apply(
                document,
                as: KubernetesObject.self,
                KubernetesStreamStore.liveStreams,
                name: "byhand",
                namespace: cluster.namespace,
                fieldManager: "kubectl"
            )
            _ = try await cluster.client.create(
                KubernetesObject(
                    apiVersion: "v1",
                    kind: "Secret",
                    metadata: ObjectMeta(name: "hand-made", namespace: cluster.namespace),
                    fields: ["data": ["key": .string(Data("hand-made-key".utf8).base64EncodedString())]]
                ),
                .secrets
            )
            let refused = try await #require(throws: ClusterStoreError.self) {
                _ = try await store.rotateStreamKey(byHand.id, for: alice)
            }
            #expect(refused.code == .conflict)
            #expect(refused.message.contains("hand-made"))
            #expect(try await store.revealStreamKey(byHand.id, for: alice) == "hand-made-key")
            #expect(try await store.rotateStreamKey(byHand.id, force: true, for: alice))
            #expect(try await store.revealStreamKey(byHand.id, for: alice)?.count == 64)
        }
    }

    @Test("target keys are stored in Secrets the stream owns and never come back from the store")
    func targetKeysNeverReturned() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let store = makeStore(cluster.client)
            let alice = ConsoleViewer(username: "alice", namespace: cluster.namespace)
            let key = StreamKey.generate()
            var new = draft("show", targets: ["youtube", "twitch"])
            new.targetKeys = ["youtube": .set(key)]
            new.displayName = "My show"
            let created = try await store.create(new, for: alice)
            #expect(created.displayName == "My show")
            let ref = try #require(created.spec.targets.first?.streamKeySecretRef)
            #expect(ref.key == "streamKey")
            #expect(created.spec.targets.last?.streamKeySecretRef == nil)
            #expect(
                try await secretValue(cluster.client, ref.name, key: "streamKey", namespace: cluster.namespace) == key
            )
            let secret = try await cluster.client.get(
                KubernetesObject.self,
                .secrets,
                name: ref.name,
                namespace: cluster.namespace
            )
            #expect(secret.metadata.ownerReferences?.first?.uid == created.uid)

            // Nothing the store returns holds the key, however it is printed or encoded for a browser.
            let listed = try await store.streams(for: alice)
            let read = try #require(try await store.stream(created.id, for: alice))
            let json = String(decoding: try JSONEncoder().encode(listed), as: UTF8.self)
            #expect(json.contains("\"displayName\":\"My show\""))
            #expect(json.contains(ref.name))
            for text in [
                String(reflecting: created), String(reflecting: listed), String(reflecting: read),
                "\(new)", "\(TargetKeyChange.set(key))", json,
            ] {
                #expect(!text.contains(key))
            }

            // A rename keeps the key; a new key goes to a new Secret and the old one is deleted.
            var renamed = draft("show", targets: ["yt", "twitch"])
            renamed.renamedTargets = ["yt": "youtube"]
            let afterRename = try #require(
                try await store.update(
                    created.id,
                    with: renamed,
                    expectedResourceVersion: read.resourceVersion,
                    for: alice
                )
            )
            #expect(afterRename.spec.targets.first?.streamKeySecretRef == ref)
            // A rename in a spec as read (the target carries its Secret) keeps the key too; a Secret that is not
            // one of the stream's is not taken.
            var asRead = StreamDraft(name: "show", spec: afterRename.spec)
            asRead.spec.targets[0].name = "youtube"
            asRead.spec.targets[1].streamKeySecretRef = .init(name: "someone-elses", key: "key")
            let renamedAsRead = try #require(try await store.update(created.id, with: asRead, for: alice))
            #expect(renamedAsRead.spec.targets.map(\.name) == ["youtube", "twitch"])
            #expect(renamedAsRead.spec.targets[0].streamKeySecretRef == ref)
            #expect(renamedAsRead.spec.targets[1].streamKeySecretRef == nil)
            renamed.renamedTargets = ["yt": "youtube"]
            _ = try #require(try await store.update(created.id, with: renamed, for: alice))
            var rekeyed = renamed
            rekeyed.renamedTargets = [:]
            rekeyed.targetKeys = ["yt": .set("another-key")]
            let afterRekey = try #require(try await store.update(created.id, with: rekeyed, for: alice))
            let newRef = try #require(afterRekey.spec.targets.first?.streamKeySecretRef)
            #expect(newRef.name != ref.name)
            #expect(
                try await secretValue(cluster.client, newRef.name, key: "streamKey", namespace: cluster.namespace)
                    == "another-key"
            )
            await #expect(throws: KubernetesError.self) {
                _ = try await cluster.client.get(
                    KubernetesObject.self,
                    .secrets,
                    name: ref.name,
                    namespace: cluster.namespace
                )
            }
        }
    }

    @Test("a phase change reaches every subscriber that may see it, from one watch")
    func changeStream() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let counter = RequestCounter()
            let store = makeStore(cluster.client.adding(counter), watchNamespace: nil)
            let alice = ConsoleViewer(username: "alice", namespace: cluster.namespace)
            let bob = ConsoleViewer(username: "bob", namespace: "\(cluster.namespace)-bob")
            let writer = makeStore(cluster.client)
            let existing = try await writer.create(draft("before"), for: alice)
            // Bob subscribes before the watch has listed: his view starts empty and must stay so.
            var bobChanges = store.changes(for: bob).makeAsyncIterator()
            try await running(store) {
                try await store.waitForSync()
                // The watch starts right after the list.
                try await eventually("the store's watch to start") { counter.watches >= 1 }
                let watches = counter.watches
                var aliceChanges = store.changes(for: alice).makeAsyncIterator()
                var secondView = store.changes(for: alice).makeAsyncIterator()
                #expect(store.subscriberCount == 3)

                // A subscription starts with what the watch knows.
                let first = try await aliceChanges.next()
                #expect(first?.id == existing.id)

                // The operator writes a phase: every view of alice's gets it.
                _ = try await cluster.client.patchStatus(
                    KubernetesObject.self,
                    KubernetesStreamStore.liveStreams,
                    name: "before",
                    namespace: cluster.namespace,
                    mergePatch: ["status": ["phase": "Live"]]
                )
                for view in 0..<2 {
                    while true {
                        let change = try await (view == 0 ? aliceChanges.next() : secondView.next())
                        guard case .upserted(let stream)? = change else {
                            Issue.record("unexpected \(String(describing: change))")
                            break
                        }
                        if stream.status?.phase == .live { break }
                    }
                }
                // Three views, one watch.
                #expect(counter.watches == watches)

                #expect(try await writer.delete(existing.id, for: alice))
                while true {
                    let change = try await aliceChanges.next()
                    if case .deleted(let id)? = change, id == existing.id { break }
                }
            }
            // The store stopped: bob's view ends, having had nothing of alice's.
            #expect(try await bobChanges.next() == nil)
        }
    }

    @Test("a slow subscriber gets each stream's latest state once, nothing piled up; live views are limited")
    func slowSubscriberAndLimit() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let store = makeStore(cluster.client, maxSubscribers: 2)
            let alice = ConsoleViewer(username: "alice", namespace: cluster.namespace)
            let stream = try await makeStore(cluster.client).create(draft("show"), for: alice)
            var slow = store.changes(for: alice).makeAsyncIterator()
            try await running(store) {
                try await store.waitForSync()
                var fast = store.changes(for: alice).makeAsyncIterator()
                // A third live view is refused, saying why.
                var refused = store.changes(for: alice).makeAsyncIterator()
                let error = try await #require(throws: ClusterStoreError.self) { _ = try await refused.next() }
                #expect(error.code == .unavailable)

                for phase in ["Starting", "Live", "Idle", "Live"] {
                    _ = try await cluster.client.patchStatus(
                        KubernetesObject.self,
                        KubernetesStreamStore.liveStreams,
                        name: "show",
                        namespace: cluster.namespace,
                        mergePatch: ["status": ["phase": .string(phase), "port": .int(Int64(31000 + phase.count))]]
                    )
                }
                // The fast view follows (it, too, may skip states it was not there to read).
                while true {
                    guard case .upserted(let latest)? = try await fast.next() else { continue }
                    if latest.status?.phase == .live, latest.status?.port == 31004 { break }
                }
            }
            // The slow view, read only now: the stream once, as it is last, then the end.
            let change = try await slow.next()
            guard case .upserted(let latest)? = change else {
                Issue.record("expected the stream, got \(String(describing: change))")
                return
            }
            #expect(latest.id == stream.id)
            #expect(latest.status?.phase == .live)
            #expect(latest.status?.port == 31004)
            #expect(try await slow.next() == nil)
        }
    }

    @Test("no key reaches the log, at trace level, of the store or of its Kubernetes client")
    func keysNeverLogged() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let lines = LogLines()
            let client = KubernetesClient(
                transport: ForwardingTransport(client: cluster.client),
                namespace: cluster.namespace,
                logger: lines.logger("client")
            )
            let store = KubernetesStreamStore(client: client, logger: lines.logger("store"))
            let alice = ConsoleViewer(username: "alice", namespace: cluster.namespace)
            var new = draft("show", targets: ["yt", "bad"])
            new.targetKeys = ["yt": .set("first-target-key-0001")]
            let created = try await store.create(new, for: alice)
            new.targetKeys = ["yt": .set("second-target-key-0002")]
            new.spec.targets[1].url = "ftp://bad"
            new.targetKeys["bad"] = .set("refused-target-key-0003")
            _ = try? await store.update(created.id, with: new, for: alice)
            new.spec.targets[1].url = "rtmp://good.example.com/app"
            _ = try await store.update(created.id, with: new, for: alice)
            #expect(try await store.rotateStreamKey(created.id, for: alice))
            let ingestKey = try #require(try await store.revealStreamKey(created.id, for: alice))
            #expect(try await store.rotateStreamKey(created.id, for: alice))
            let rotated = try #require(try await store.revealStreamKey(created.id, for: alice))

            let logged = lines.all
            #expect(logged.contains { $0.contains("Stream key revealed") })
            for key in [
                "first-target-key-0001", "second-target-key-0002", "refused-target-key-0003", ingestKey, rotated,
            ] {
                #expect(!logged.contains { $0.contains(key) }, "a key in the log")
            }
        }
    }

    @Test("a rename makes a stream of the new name with the same spec and keys, and removes the old one")
    func rename() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            let store = makeStore(cluster.client)
            let alice = ConsoleViewer(username: "alice", namespace: cluster.namespace)
            let bob = ConsoleViewer(username: "bob", namespace: "\(cluster.namespace)-bob")
            var new = draft("show", targets: ["yt"])
            new.targetKeys = ["yt": .set("the-target-key")]
            new.displayName = "The show"
            let old = try await store.create(new, for: alice)
            #expect(try await store.rotateStreamKey(old.id, for: alice))  // the ingest key, owned by the stream
            let ingestKey = try #require(try await store.revealStreamKey(old.id, for: alice))

            #expect(try await store.rename(old.id, to: "tv", for: bob) == nil)
            let taken = try await store.create(draft("taken"), for: alice)
            let error = try await #require(throws: ClusterStoreError.self) {
                _ = try await store.rename(old.id, to: taken.id.name, for: alice)
            }
            #expect(error.code == .alreadyExists)
            let badName = try await #require(throws: ClusterStoreError.self) {
                _ = try await store.rename(old.id, to: "Bad_Name", for: alice)
            }
            #expect(badName.code == .invalid)

            let renamed = try #require(try await store.rename(old.id, to: "tv", for: alice))
            #expect(renamed.id == StreamID(namespace: cluster.namespace, name: "tv"))
            #expect(renamed.displayName == "The show")
            #expect(renamed.spec.targets == old.spec.targets)
            #expect(renamed.spec.ingest.streamKeySecretRef == .init(name: "show-stream-key", key: "streamKey"))
            #expect(try await store.stream(old.id, for: alice) == nil)
            #expect(try await store.revealStreamKey(renamed.id, for: alice) == ingestKey)
            // The keys are the new stream's now, and stay when the old one is gone.
            let targetSecret = try #require(renamed.spec.targets.first?.streamKeySecretRef?.name)
            for name in [targetSecret, "show-stream-key"] {
                let secret = try await cluster.client.get(
                    KubernetesObject.self,
                    .secrets,
                    name: name,
                    namespace: cluster.namespace
                )
                #expect(secret.metadata.ownerReferences?.map(\.uid) == [try #require(renamed.uid)])
            }
            #expect(
                try await secretValue(cluster.client, targetSecret, key: "streamKey", namespace: cluster.namespace)
                    == "the-target-key"
            )
        }
    }
}
