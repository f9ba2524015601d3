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
public import Logging
public import ServiceLifecycle

/// The console's streams in a cluster: LiveStreams and their Secrets, read and written through the Kubernetes API
/// with the console's own ServiceAccount.
///
/// **Ownership.** Every call takes the ``ConsoleViewer`` it acts for. A user's streams are the LiveStreams in the
/// user's namespace, an admin's those of every namespace (the store's `watchNamespace` at most). A stream the viewer
/// may not see is answered exactly as one that does not exist (`nil`), so a user learns nothing of another's
/// streams. Only the owner (the stream is in their namespace) reveals its key.
///
/// **Writes.** The LiveStream is written by server-side apply with field manager ``fieldManager``, the whole spec
/// each time (server-side apply takes what a manager sends as all it wants, so a partial apply would drop the rest).
/// An edit based on a version the caller read carries it as `metadata.resourceVersion`, so one made on a stale page
/// fails (``ClusterStoreError/Code/stale``) instead of overwriting a newer edit; Go Live, Go Offline and a target's
/// switch read the latest version and retry on a stale one, since they mean "set this" whatever else changed. A
/// field that another manager (kubectl, GitOps) owns with another value makes the apply fail with
/// ``ClusterStoreError/Code/conflict``, carrying the API server's message and fields; only `force: true`, which the
/// console passes after asking the person, takes such fields over. Nothing is written before LiveStreamModel's
/// validation (the same as the CRD's and local mode's) passes.
///
/// **Keys.** Target keys go into Secrets the stream owns (`<stream>-target-<8 hex>`, key `streamKey`), each new
/// key into a new Secret, applied before the LiveStream that names it; the Secret it replaces is deleted once the
/// LiveStream is applied, so a refused edit changes no key. The ingest key is the operator's Secret
/// (`spec.ingest.streamKeySecretRef`, default `<stream>-stream-key`/`streamKey`), which the operator generates for a
/// new stream; ``rotateStreamKey(_:force:for:)`` writes a new value into it (into a Secret the stream does not own
/// only with `force`). No key is ever returned, logged or put in an error, except by ``revealStreamKey(_:for:)`` to
/// the owner.
///
/// **Live updates.** ``run()`` (a `Service`) lists and watches LiveStreams once, with the project's `Reflector`,
/// and ``changes(for:)`` hands each change to every subscriber that may see it: every browser's updates come from
/// that one watch. Reads (``streams(for:)``, ``stream(_:for:)``) ask the API server, so a page reflects a write at
/// once, even before the watch brings it.
public final class KubernetesStreamStore: Service, Sendable {
    /// The field manager of every write: `liverelay-console`.
    public static let fieldManager = "liverelay-console"
    /// The annotation that holds a stream's display name.
    public static let displayNameAnnotation = "liverelay.io/display-name"
    /// The label on the Secrets the console writes.
    public static let managedByLabel = ["app.kubernetes.io/managed-by": "liverelay-console"]
    /// The key, in a target key Secret, that holds the key.
    public static let targetSecretKey = "streamKey"
    /// The LiveStream resource (`livestreams.liverelay.io/v1alpha1`).
    public static let liveStreams = KubernetesResource(
        group: LiveStreamResource.group,
        version: LiveStreamResource.version,
        plural: LiveStreamResource.plural,
        kind: LiveStreamResource.kind
    )

    private let client: KubernetesClient
    private let watchNamespace: String?
    private let reflector: Reflector<KubernetesObject>
    private let hub: ChangeHub
    private let logger: Logger
    /// How often Go Live, Go Offline and a target's switch read again after a stale write.
    private let maxAttempts = 5

    /// A store over `client`.
    ///
    /// - Parameters:
    ///   - watchNamespace: the one namespace whose streams the console serves (the chart's `streamNamespace`), or
    ///     `nil` for every namespace (one watch of them all).
    ///   - maxSubscribers: live views (``changes(for:)``) at once; one more is refused with
    ///     ``ClusterStoreError/Code/unavailable``.
    ///   - listWatch: the watch's settings (page size, timeouts, backoff, largest event).
    public init(
        client: KubernetesClient,
        watchNamespace: String? = nil,
        maxSubscribers: Int = 1024,
        listWatch: ListWatchOptions = ListWatchOptions(),
        logger: Logger = Logger(label: "liverelay.console.streams")
    ) {
        self.client = client
        self.watchNamespace = watchNamespace
        self.logger = logger
        let reflector = Reflector<KubernetesObject>(
            client: client,
            resource: Self.liveStreams,
            namespace: watchNamespace,
            options: listWatch
        )
        self.reflector = reflector
        self.hub = ChangeHub(maxSubscribers: maxSubscribers)
    }

    // MARK: Live updates

    /// Lists and watches LiveStreams until cancelled or a graceful shutdown, feeding ``changes(for:)``; then ends
    /// every subscription.
    public func run() async throws {
        defer { self.hub.stop() }
        do {
            try await cancelWhenGracefulShutdown {
                try await self.reflector.run { change in
                    switch change {
                    case .upserted(let object):
                        if let stream = Self.stream(from: object) {
                            self.hub.publish(.upserted(stream))
                        }
                    case .deleted(let object):
                        guard let name = object.metadata.name else { return }
                        self.hub.publish(.deleted(StreamID(namespace: object.metadata.namespace ?? "", name: name)))
                    }
                }
            }
        } catch is CancellationError {
            // Graceful shutdown (or cancellation) ends the watch; that is a normal end.
        }
    }

    /// Whether the watch has loaded its first list (a console's `/readyz`).
    public var hasSynced: Bool { self.reflector.hasSynced }

    /// Returns once the watch has loaded its first list; throws `CancellationError` if cancelled first.
    public func waitForSync() async throws {
        try await self.reflector.waitForSync()
    }

    /// The changes to the streams `viewer` may see: first the streams the watch knows now, then every change.
    ///
    /// The sequence ends when the store stops; it throws ``ClusterStoreError/Code/unavailable`` on the first
    /// `next()` when ``init(client:watchNamespace:maxSubscribers:listWatch:logger:)``'s `maxSubscribers` are
    /// subscribed already.
    public func changes(for viewer: ConsoleViewer) -> StreamChanges {
        StreamChanges(hub: self.hub, viewer: viewer)
    }

    /// How many live views are subscribed now.
    public var subscriberCount: Int { self.hub.subscriberCount }

    // MARK: Reads

    /// The streams of `viewer`: those in the viewer's namespace, or in every namespace for an admin; by namespace
    /// and name.
    public func streams(for viewer: ConsoleViewer) async throws -> [ClusterStream] {
        let items: [KubernetesObject]
        do {
            if viewer.isAdmin {
                if let namespace = self.watchNamespace {
                    items = try await self.client.listAll(KubernetesObject.self, Self.liveStreams, namespace: namespace)
                        .items
                } else {
                    items = try await self.client.listAll(KubernetesObject.self, Self.liveStreams, allNamespaces: true)
                        .items
                }
            } else {
                guard self.watchNamespace == nil || self.watchNamespace == viewer.namespace else { return [] }
                items = try await self.client.listAll(
                    KubernetesObject.self,
                    Self.liveStreams,
                    namespace: viewer.namespace
                ).items
            }
        } catch let error as KubernetesError {
            throw ClusterStoreError.from(error, writing: "listing streams")
        }
        return items.compactMap(Self.stream(from:)).sorted { $0.id.description < $1.id.description }
    }

    /// The stream `id`, or `nil` when it does not exist or `viewer` may not see it.
    public func stream(_ id: StreamID, for viewer: ConsoleViewer) async throws -> ClusterStream? {
        guard let object = try await self.object(id, for: viewer) else { return nil }
        return Self.stream(from: object)
    }

    // MARK: Writes

    /// Creates a stream in `namespace` (default: the viewer's own; another one only for an admin), with the keys
    /// of `draft.targetKeys`. The operator then generates its ingest key.
    ///
    /// - Throws: ``ClusterStoreError`` — ``ClusterStoreError/Code/invalid`` (with field errors; nothing written),
    ///   ``ClusterStoreError/Code/alreadyExists``, ``ClusterStoreError/Code/forbidden`` for another's namespace.
    public func create(
        _ draft: StreamDraft,
        in namespace: String? = nil,
        for viewer: ConsoleViewer
    ) async throws -> ClusterStream {
        let namespace = namespace ?? viewer.namespace
        let id = StreamID(namespace: namespace, name: draft.name)
        guard viewer.canAccess(namespace: namespace), self.serves(namespace) else {
            throw ClusterStoreError.forbidden("you cannot create streams in namespace \(namespace)")
        }
        let plan = try Self.plan(draft, current: nil)
        if try await self.object(id, for: viewer) != nil {
            throw ClusterStoreError.alreadyExists("a stream named \(draft.name) exists already")
        }
        // Keys first, so the LiveStream never names a Secret that is not there; owned by the stream once it is.
        // (A stream of that name made by another writer since the check above is not overwritten: a field it owns
        // with another value makes the apply fail with a conflict.)
        let applied: KubernetesObject
        do {
            try await self.writeKeys(plan.keys, stream: id, owner: nil)
            applied = try await self.apply(plan, id: id, resourceVersion: nil, force: false)
        } catch {
            await self.deleteSecrets(plan.keys.map(\.secret), namespace: namespace)
            throw error
        }
        if let uid = applied.metadata.uid {
            do {
                try await self.writeKeys(plan.keys, stream: id, owner: uid)
            } catch {
                // The stream and its keys are there and work; only their deletion with the stream is missing.
                self.logger.warning(
                    "Could not make the stream the owner of its target key Secrets",
                    metadata: ["console.stream": "\(id)", "error": "\(error)"]
                )
            }
        }
        self.logger.info(
            "Stream created",
            metadata: ["console.user": "\(viewer.username)", "console.stream": "\(id)"]
        )
        return try Self.required(Self.stream(from: applied), id)
    }

    /// Replaces the spec of the stream `id` with `draft`'s (see ``StreamDraft`` for what is kept).
    ///
    /// - Parameters:
    ///   - expectedResourceVersion: the ``ClusterStream/resourceVersion`` the edit was made on; the write fails
    ///     with ``ClusterStoreError/Code/stale`` if the stream changed since. `nil` writes over whatever is there.
    ///   - force: take over fields another manager owns (after the person confirmed a
    ///     ``ClusterStoreError/Code/conflict``).
    /// - Returns: the stream as written, or `nil` when it does not exist or `viewer` may not see it.
    public func update(
        _ id: StreamID,
        with draft: StreamDraft,
        expectedResourceVersion: String? = nil,
        force: Bool = false,
        for viewer: ConsoleViewer
    ) async throws -> ClusterStream? {
        guard draft.name == id.name else {
            throw ClusterStoreError.invalid([
                FieldError(field: "metadata.name", message: "a stream's name cannot change (it is \(id.name))")
            ])
        }
        guard let object = try await self.object(id, for: viewer),
            let current = Self.stream(from: object)
        else { return nil }
        let plan = try Self.plan(draft, current: current)
        let applied: KubernetesObject
        do {
            try await self.writeKeys(plan.keys, stream: id, owner: current.uid)
            applied = try await self.apply(plan, id: id, resourceVersion: expectedResourceVersion, force: force)
        } catch {
            await self.deleteSecrets(plan.keys.map(\.secret), namespace: id.namespace)
            throw error
        }
        await self.deleteSecrets(plan.replacedSecrets, namespace: id.namespace)
        self.logger.info(
            "Stream updated",
            metadata: ["console.user": "\(viewer.username)", "console.stream": "\(id)"]
        )
        return try Self.required(Self.stream(from: applied), id)
    }

    /// Gives the stream `id` another name in its namespace: a new LiveStream `name` with the same spec (its ingest
    /// key's Secret named explicitly, so the key stays) and display name, the Secrets the old one owned (its ingest
    /// key, its targets' keys) handed to the new one, then the old one deleted. A LiveStream's name cannot change,
    /// so this is the only way; the new stream gets a port of its own (the old one's is released with it).
    ///
    /// - Returns: the new stream, or `nil` when `id` does not exist or `viewer` may not see it.
    /// - Throws: ``ClusterStoreError/Code/invalid`` for a bad name, ``ClusterStoreError/Code/alreadyExists`` when
    ///   it is taken. When a step fails, the new stream is deleted again and the old one is left as it was.
    public func rename(_ id: StreamID, to name: String, for viewer: ConsoleViewer) async throws -> ClusterStream? {
        guard let object = try await self.object(id, for: viewer), let old = Self.stream(from: object),
            let oldUID = old.uid
        else { return nil }
        let newID = StreamID(namespace: id.namespace, name: name)
        var spec = old.spec
        if spec.ingest.webhook == nil {
            spec.ingest.streamKeySecretRef = old.spec.streamKeySecret(streamName: id.name)
        }
        let errors = spec.validate(name: name)
        guard errors.isEmpty else { throw ClusterStoreError.invalid(errors) }
        if try await self.object(newID, for: viewer) != nil {
            throw ClusterStoreError.alreadyExists("a stream named \(name) exists already")
        }
        let plan = Plan(spec: spec, displayName: old.displayName, keys: [], replacedSecrets: [])
        let applied = try await self.apply(plan, id: newID, resourceVersion: nil, force: false)
        do {
            guard let newUID = applied.metadata.uid else {
                throw ClusterStoreError(code: .unavailable, message: "the new stream \(name) has no uid")
            }
            var secrets = spec.targets.compactMap(\.streamKeySecretRef).map(\.name)
            if let ingest = spec.ingest.streamKeySecretRef { secrets.append(ingest.name) }
            for secret in Set(secrets).sorted() {
                try await self.handOver(
                    secret,
                    namespace: id.namespace,
                    from: oldUID,
                    to: Self.ownerReference(newID, uid: newUID)
                )
            }
            try await self.client.delete(
                Self.liveStreams,
                name: id.name,
                namespace: id.namespace,
                propagationPolicy: .background
            )
        } catch {
            do {
                try await self.client.delete(Self.liveStreams, name: name, namespace: id.namespace)
            } catch {
                self.logger.warning(
                    "Could not delete the new stream of a failed rename",
                    metadata: ["console.stream": "\(newID)", "error": "\(error)"]
                )
            }
            if let error = error as? KubernetesError {
                throw ClusterStoreError.from(error, writing: "renaming stream \(id.name)")
            }
            throw error
        }
        self.logger.info(
            "Stream renamed",
            metadata: ["console.user": "\(viewer.username)", "console.stream": "\(id)", "console.to": "\(name)"]
        )
        return try Self.required(Self.stream(from: applied), newID)
    }

    /// Makes `owner` the owner of Secret `name` instead of the stream `oldUID`, if that one owns it (a Secret the
    /// old stream does not own is left alone; one not there yet is the operator's to make).
    private func handOver(
        _ name: String,
        namespace: String,
        from oldUID: String,
        to owner: OwnerReference
    )
        async throws
    {
        let secret: KubernetesObject
        do {
            secret = try await self.client.get(KubernetesObject.self, .secrets, name: name, namespace: namespace)
        } catch let error as KubernetesError where error.isNotFound {
            return
        }
        let owners = secret.metadata.ownerReferences ?? []
        guard owners.contains(where: { $0.uid == oldUID }) else { return }
        let kept = owners.filter { $0.uid != oldUID }.map(\.json)
        _ = try await self.client.patch(
            KubernetesObject.self,
            .secrets,
            name: name,
            namespace: namespace,
            mergePatch: [
                "metadata": [
                    "resourceVersion": .string(secret.metadata.resourceVersion ?? ""),
                    "ownerReferences": .array(kept + [owner.json]),
                ]
            ]
        )
    }

    /// Deletes the stream `id` (its relay, routes and the Secrets it owns go with it).
    ///
    /// - Returns: whether there was such a stream `viewer` may see.
    public func delete(
        _ id: StreamID,
        expectedResourceVersion: String? = nil,
        for viewer: ConsoleViewer
    ) async throws -> Bool {
        guard viewer.canAccess(namespace: id.namespace), self.serves(id.namespace) else { return false }
        do {
            try await self.client.delete(
                Self.liveStreams,
                name: id.name,
                namespace: id.namespace,
                propagationPolicy: .background,
                resourceVersion: expectedResourceVersion
            )
        } catch let error as KubernetesError where error.isNotFound {
            return false
        } catch let error as KubernetesError {
            throw ClusterStoreError.from(error, writing: "deleting stream \(id.name)")
        }
        self.logger.info(
            "Stream deleted",
            metadata: ["console.user": "\(viewer.username)", "console.stream": "\(id)"]
        )
        return true
    }

    /// Go Live (`live: true`, `spec.suspend: false`) or Go Offline (`spec.suspend: true`).
    ///
    /// With `oneLiveAtATime` (the per-user setting, on by default in the console), going live first takes every
    /// other stream of the same namespace offline; if one of them cannot be, the stream does not go live.
    ///
    /// - Returns: the stream as written and the streams taken offline, or `nil` when it does not exist or `viewer`
    ///   may not see it.
    public func setLive(
        _ id: StreamID,
        live: Bool,
        oneLiveAtATime: Bool = true,
        force: Bool = false,
        for viewer: ConsoleViewer
    ) async throws -> GoLiveResult? {
        guard try await self.object(id, for: viewer) != nil else { return nil }
        var suspended: [StreamID] = []
        if live && oneLiveAtATime {
            let others: [KubernetesObject]
            do {
                others = try await self.client.listAll(
                    KubernetesObject.self,
                    Self.liveStreams,
                    namespace: id.namespace
                ).items
            } catch let error as KubernetesError {
                throw ClusterStoreError.from(error, writing: "listing streams")
            }
            for other in others.compactMap(Self.stream(from:)) where other.id != id && !other.spec.suspend {
                if try await self.modify(other.id, force: force, { $0.suspend = true }) != nil {
                    suspended.append(other.id)
                }
            }
        }
        guard let stream = try await self.modify(id, force: force, { $0.suspend = !live }) else { return nil }
        self.logger.info(
            live ? "Stream set live" : "Stream set offline",
            metadata: [
                "console.user": "\(viewer.username)", "console.stream": "\(id)",
                "console.suspended": "\(suspended.map(\.name))",
            ]
        )
        return GoLiveResult(stream: stream, suspended: suspended)
    }

    /// Turns one target on or off; a live relay follows at the target's next keyframe, the others untouched.
    ///
    /// - Returns: the stream as written, or `nil` when it does not exist or `viewer` may not see it.
    /// - Throws: ``ClusterStoreError/Code/notFound`` when the stream has no target `target`.
    public func setTargetEnabled(
        _ id: StreamID,
        target: String,
        enabled: Bool,
        force: Bool = false,
        for viewer: ConsoleViewer
    ) async throws -> ClusterStream? {
        guard try await self.object(id, for: viewer) != nil else { return nil }
        return try await self.modify(id, force: force) { spec in
            guard let index = spec.targets.firstIndex(where: { $0.name == target }) else {
                throw ClusterStoreError.notFound("stream \(id.name) has no target \(target)")
            }
            spec.targets[index].enabled = enabled
        }
    }

    /// Writes a new generated key into the stream's ingest key Secret (the one the operator generated, or
    /// `spec.ingest.streamKeySecretRef`), creating it, owned by the stream, when absent. The operator's key book and
    /// the gateway's shared port follow at once (the Secret's change requeues the stream); a relay reads its key when
    /// it starts.
    ///
    /// A Secret the stream does not own (made with kubectl or by GitOps, and named by the stream) is another
    /// writer's: rotating it is refused with ``ClusterStoreError/Code/conflict`` unless `force` (after the person
    /// confirmed), since that writer would put its key back.
    ///
    /// The new key is not returned: the owner reveals it with ``revealStreamKey(_:for:)``.
    ///
    /// - Returns: whether there was such a stream `viewer` may see.
    /// - Throws: ``ClusterStoreError/Code/noStreamKey`` when a webhook authorizes the stream's publishers.
    public func rotateStreamKey(_ id: StreamID, force: Bool = false, for viewer: ConsoleViewer) async throws -> Bool {
        guard let object = try await self.object(id, for: viewer), let stream = Self.stream(from: object) else {
            return false
        }
        guard stream.spec.ingest.webhook == nil else {
            throw ClusterStoreError.noStreamKey("a webhook authorizes publishers of \(id.name); it has no key")
        }
        let selector = stream.spec.streamKeySecret(streamName: id.name)
        let encoded = JSONValue.string(Data(StreamKey.generate().utf8).base64EncodedString())
        let what = "stream key of \(id.name)"
        do {
            let secret = try await self.client.get(
                KubernetesObject.self,
                .secrets,
                name: selector.name,
                namespace: id.namespace
            )
            let owned = secret.metadata.ownerReferences?.contains { $0.uid == stream.uid } == true
            guard owned || force else {
                throw ClusterStoreError(
                    code: .conflict,
                    message: "\(what): Secret \(selector.name) is not the stream's own; change the key where the "
                        + "Secret is managed, or replace it here anyway",
                    conflicts: [FieldConflict(field: ".data.\(selector.key)", message: "Secret \(selector.name)")]
                )
            }
            // The version read is a precondition: a key changed meanwhile is not silently written over.
            _ = try await self.client.patch(
                KubernetesObject.self,
                .secrets,
                name: selector.name,
                namespace: id.namespace,
                mergePatch: [
                    "metadata": ["resourceVersion": .string(secret.metadata.resourceVersion ?? "")],
                    "data": .object([selector.key: encoded]),
                ]
            )
        } catch let error as KubernetesError where error.isNotFound {
            // Not generated yet: make it as the operator would, owned by the stream.
            var metadata = ObjectMeta(name: selector.name, namespace: id.namespace, labels: Self.managedByLabel)
            if let uid = stream.uid { metadata.ownerReferences = [Self.ownerReference(id, uid: uid)] }
            let secret = KubernetesObject(
                apiVersion: "v1",
                kind: "Secret",
                metadata: metadata,
                fields: ["type": "Opaque", "data": .object([selector.key: encoded])]
            )
            do {
                _ = try await self.client.create(secret, .secrets, fieldManager: Self.fieldManager)
            } catch let error as KubernetesError {
                throw ClusterStoreError.from(error, writing: what)
            }
        } catch let error as KubernetesError {
            throw ClusterStoreError.from(error, writing: what)
        }
        self.logger.info(
            "Stream key rotated",
            metadata: ["console.user": "\(viewer.username)", "console.stream": "\(id)"]
        )
        return true
    }

    /// The stream's ingest key, for its owner's explicit reveal; `nil` when the stream does not exist or is not
    /// `viewer`'s own (an admin reveals only the keys of their own namespace).
    ///
    /// - Throws: ``ClusterStoreError/Code/noStreamKey`` when a webhook authorizes publishers, or the operator has
    ///   not generated the key yet.
    public func revealStreamKey(_ id: StreamID, for viewer: ConsoleViewer) async throws -> String? {
        guard viewer.owns(id), let object = try await self.object(id, for: viewer),
            let stream = Self.stream(from: object)
        else { return nil }
        guard stream.spec.ingest.webhook == nil else {
            throw ClusterStoreError.noStreamKey("a webhook authorizes publishers of \(id.name); it has no key")
        }
        let selector = stream.spec.streamKeySecret(streamName: id.name)
        let secret: KubernetesObject
        do {
            secret = try await self.client.get(
                KubernetesObject.self,
                .secrets,
                name: selector.name,
                namespace: id.namespace
            )
        } catch let error as KubernetesError where error.isNotFound {
            throw ClusterStoreError.noStreamKey("the stream key of \(id.name) has not been generated yet")
        } catch let error as KubernetesError {
            throw ClusterStoreError.from(error, writing: "stream key of \(id.name)")
        }
        guard let value = Self.secretValue(secret, key: selector.key) else {
            throw ClusterStoreError.noStreamKey("Secret \(selector.name) has no key \(selector.key)")
        }
        self.logger.info(
            "Stream key revealed",
            metadata: ["console.user": "\(viewer.username)", "console.stream": "\(id)"]
        )
        return value
    }

    // MARK: Internals

    /// Whether the console serves `namespace` at all.
    private func serves(_ namespace: String) -> Bool {
        self.watchNamespace == nil || self.watchNamespace == namespace
    }

    /// The LiveStream `id` if it exists and `viewer` may see it.
    private func object(_ id: StreamID, for viewer: ConsoleViewer) async throws -> KubernetesObject? {
        guard viewer.canAccess(namespace: id.namespace), self.serves(id.namespace) else { return nil }
        do {
            return try await self.client.get(
                KubernetesObject.self,
                Self.liveStreams,
                name: id.name,
                namespace: id.namespace
            )
        } catch let error as KubernetesError where error.isNotFound {
            return nil
        } catch let error as KubernetesError {
            throw ClusterStoreError.from(error, writing: "reading stream \(id.name)")
        }
    }

    /// Reads the latest version, changes its spec, applies it with that version; again on a stale version.
    private func modify(
        _ id: StreamID,
        force: Bool,
        _ change: (inout LiveStreamSpec) throws -> Void
    ) async throws -> ClusterStream? {
        var attempt = 0
        while true {
            attempt += 1
            let object: KubernetesObject
            do {
                object = try await self.client.get(
                    KubernetesObject.self,
                    Self.liveStreams,
                    name: id.name,
                    namespace: id.namespace
                )
            } catch let error as KubernetesError where error.isNotFound {
                return nil
            } catch let error as KubernetesError {
                throw ClusterStoreError.from(error, writing: "reading stream \(id.name)")
            }
            guard let current = Self.stream(from: object) else { return nil }
            var spec = current.spec
            try change(&spec)
            let errors = spec.validate(name: id.name)
            guard errors.isEmpty else { throw ClusterStoreError.invalid(errors) }
            let plan = Plan(spec: spec, displayName: current.displayName, keys: [], replacedSecrets: [])
            do {
                let applied = try await self.apply(plan, id: id, resourceVersion: current.resourceVersion, force: force)
                return try Self.required(Self.stream(from: applied), id)
            } catch let error as ClusterStoreError where error.code == .stale && attempt < self.maxAttempts {
                continue
            }
        }
    }

    /// What an edit writes: the LiveStream's spec, the target key Secrets to write first, those to delete after.
    struct Plan {
        struct Key {
            var secret: String
            var value: String
        }

        var spec: LiveStreamSpec
        var displayName: String?
        var keys: [Key]
        var replacedSecrets: [String]
    }

    /// Checks `draft` and works out what to write; throws ``ClusterStoreError/Code/invalid`` with every field
    /// error, before anything is written.
    static func plan(_ draft: StreamDraft, current: ClusterStream?) throws -> Plan {
        var errors: [FieldError] = []
        var spec = draft.spec
        spec.ingest.streamKeySecretRef = current?.spec.ingest.streamKeySecretRef
        spec.ingest.webhook = current?.spec.ingest.webhook
        if let current { spec.suspend = current.spec.suspend }

        let names = Set(spec.targets.map(\.name))
        for name in draft.targetKeys.keys.sorted() where !names.contains(name) {
            errors.append(FieldError(field: "targetKeys[\(name)]", message: "there is no target named \(name)"))
        }
        var keys: [Plan.Key] = []
        var kept = Set<String>()
        let currentRefs = Set((current?.spec.targets ?? []).compactMap(\.streamKeySecretRef))
        for index in spec.targets.indices {
            let name = spec.targets[index].name
            let previous = current?.spec.targets.first { $0.name == (draft.renamedTargets[name] ?? name) }
            switch draft.targetKeys[name] ?? .keep {
            case .keep:
                // The Secret the draft names, if it is one of the stream's targets' now (a target renamed as read
                // keeps its key); else the key of the target of that name (or of its name before a rename).
                if let ref = spec.targets[index].streamKeySecretRef, currentRefs.contains(ref) {
                    break
                }
                spec.targets[index].streamKeySecretRef = previous?.streamKeySecretRef
            case .remove:
                spec.targets[index].streamKeySecretRef = nil
            case .set(let value):
                let key = StreamKey.normalized(value)
                if let problem = Self.keyProblem(key) {
                    errors.append(FieldError(field: "spec.targets[\(index)].streamKey", message: problem))
                    continue
                }
                let secret = "\(draft.name)-target-\(Self.randomSuffix())"
                keys.append(Plan.Key(secret: secret, value: key))
                spec.targets[index].streamKeySecretRef = LiveStreamSpec.SecretKeySelector(
                    name: secret,
                    key: Self.targetSecretKey
                )
            }
            if let ref = spec.targets[index].streamKeySecretRef { kept.insert(ref.name) }
        }
        let displayName = draft.displayName.flatMap { $0.isEmpty ? nil : $0 }
        if let displayName {
            if displayName.count > StreamDraft.maxDisplayNameLength {
                errors.append(
                    FieldError(
                        field: "metadata.annotations[\(Self.displayNameAnnotation)]",
                        message: "at most \(StreamDraft.maxDisplayNameLength) characters"
                    )
                )
            } else if displayName.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                errors.append(
                    FieldError(
                        field: "metadata.annotations[\(Self.displayNameAnnotation)]",
                        message: "must not hold control characters"
                    )
                )
            }
        }
        errors = spec.validate(name: draft.name) + errors
        guard errors.isEmpty else { throw ClusterStoreError.invalid(errors) }

        // The console's own target Secrets this edit no longer names.
        let prefix = "\(draft.name)-target-"
        let replaced = (current?.spec.targets ?? []).compactMap(\.streamKeySecretRef).map(\.name).filter {
            $0.hasPrefix(prefix) && !kept.contains($0)
        }
        return Plan(spec: spec, displayName: displayName, keys: keys, replacedSecrets: Array(Set(replaced)).sorted())
    }

    /// Why `key` cannot be a target's stream key, or `nil`.
    private static func keyProblem(_ key: String) -> String? {
        if key.isEmpty { return "must not be empty" }
        if key.count > StreamDraft.maxTargetKeyLength {
            return "must be at most \(StreamDraft.maxTargetKeyLength) characters"
        }
        if key.unicodeScalars.contains(where: {
            $0.properties.isWhitespace || $0.properties.generalCategory == .control
        }) {
            return "must not contain spaces or control characters"
        }
        return nil
    }

    private static func randomSuffix() -> String {
        String(StreamKey.generate().prefix(8))
    }

    /// The server-side apply of the LiveStream: everything the console means, and nothing of the status.
    private struct LiveStreamConfiguration: Encodable, Sendable {
        struct Metadata: Encodable, Sendable {
            var name: String
            var namespace: String
            var resourceVersion: String?
            var annotations: [String: String]?
        }

        var apiVersion = LiveStreamResource.apiVersion
        var kind = LiveStreamResource.kind
        var metadata: Metadata
        var spec: LiveStreamSpec
    }

    private func apply(
        _ plan: Plan,
        id: StreamID,
        resourceVersion: String?,
        force: Bool
    ) async throws -> KubernetesObject {
        let configuration = LiveStreamConfiguration(
            metadata: .init(
                name: id.name,
                namespace: id.namespace,
                resourceVersion: resourceVersion,
                annotations: plan.displayName.map { [Self.displayNameAnnotation: $0] }
            ),
            spec: plan.spec
        )
        do {
            return try await self.client.apply(
                configuration,
                as: KubernetesObject.self,
                Self.liveStreams,
                name: id.name,
                namespace: id.namespace,
                fieldManager: Self.fieldManager,
                force: force
            )
        } catch let error as KubernetesError {
            throw ClusterStoreError.from(error, writing: "stream \(id.name)")
        }
    }

    /// Server-side applies each target key Secret, owned by the stream when its `uid` is known.
    private func writeKeys(_ keys: [Plan.Key], stream id: StreamID, owner uid: String?) async throws {
        for key in keys {
            var metadata: JSONValue = [
                "name": .string(key.secret),
                "namespace": .string(id.namespace),
                "labels": .object(
                    Self.managedByLabel.mapValues { .string($0) }.merging(["liverelay.io/stream": .string(id.name)]) {
                        $1
                    }
                ),
            ]
            if let uid {
                metadata["ownerReferences"] = [Self.ownerReference(id, uid: uid).json]
            }
            let secret: JSONValue = [
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": metadata,
                "type": "Opaque",
                "data": .object([Self.targetSecretKey: .string(Data(key.value.utf8).base64EncodedString())]),
            ]
            do {
                _ = try await self.client.apply(
                    secret,
                    as: KubernetesObject.self,
                    .secrets,
                    name: key.secret,
                    namespace: id.namespace,
                    fieldManager: Self.fieldManager
                )
            } catch let error as KubernetesError {
                throw ClusterStoreError.from(error, writing: "target key of stream \(id.name)")
            }
        }
    }

    /// Deletes Secrets the console wrote and no longer needs; a failure is logged, never thrown (the stream owns
    /// them, so they go with it at the latest).
    private func deleteSecrets(_ names: [String], namespace: String) async {
        for name in names {
            do {
                try await self.client.delete(.secrets, name: name, namespace: namespace)
            } catch let error as KubernetesError where error.isNotFound {
            } catch {
                self.logger.warning(
                    "Could not delete a target key Secret the stream no longer uses",
                    metadata: ["k8s.namespace": "\(namespace)", "k8s.secret": "\(name)", "error": "\(error)"]
                )
            }
        }
    }

    private static func ownerReference(_ id: StreamID, uid: String) -> OwnerReference {
        OwnerReference(
            apiVersion: LiveStreamResource.apiVersion,
            kind: LiveStreamResource.kind,
            name: id.name,
            uid: uid
        )
    }

    private static func required(_ stream: ClusterStream?, _ id: StreamID) throws -> ClusterStream {
        guard let stream else {
            throw ClusterStoreError(
                code: .unavailable,
                message: "the API server's answer for \(id.name) is not a LiveStream"
            )
        }
        return stream
    }

    /// The value of `key` in a Secret, as every component reads it (``StreamKey/normalized(_:)``).
    static func secretValue(_ secret: KubernetesObject, key: String) -> String? {
        if let encoded = secret["data"]?[key]?.stringValue, let data = Data(base64Encoded: encoded) {
            return StreamKey.normalized(String(decoding: data, as: UTF8.self))
        }
        return secret["stringData"]?[key]?.stringValue.map(StreamKey.normalized)
    }

    /// A LiveStream object as the console shows it; `nil` for one whose spec does not decode.
    static func stream(from object: KubernetesObject) -> ClusterStream? {
        guard let name = object.metadata.name else { return nil }
        let decoder = JSONDecoder()
        let encoder = JSONEncoder()
        func decode<T: Decodable>(_ type: T.Type, _ value: JSONValue) -> T? {
            guard let data = try? encoder.encode(value) else { return nil }
            return try? decoder.decode(T.self, from: data)
        }
        guard let spec = decode(LiveStreamSpec.self, object["spec"] ?? [:]) else { return nil }
        let status = object["status"].flatMap { decode(LiveStreamStatus.self, $0) }
        return ClusterStream(
            id: StreamID(namespace: object.metadata.namespace ?? "", name: name),
            uid: object.metadata.uid,
            resourceVersion: object.metadata.resourceVersion,
            generation: object.metadata.generation,
            creationTimestamp: object.metadata.creationTimestamp,
            deletionTimestamp: object.metadata.deletionTimestamp,
            displayName: object.metadata.annotations?[Self.displayNameAnnotation],
            spec: spec,
            status: status
        )
    }
}

extension OwnerReference {
    fileprivate var json: JSONValue {
        var json: JSONValue = [
            "apiVersion": .string(self.apiVersion),
            "kind": .string(self.kind),
            "name": .string(self.name),
            "uid": .string(self.uid),
        ]
        if let controller = self.controller { json["controller"] = .bool(controller) }
        if let block = self.blockOwnerDeletion { json["blockOwnerDeletion"] = .bool(block) }
        return json
    }
}
