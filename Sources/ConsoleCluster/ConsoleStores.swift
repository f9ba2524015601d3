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

public import Console
public import LiveStreamModel

/// The console's stream store in a cluster: ``KubernetesStreamStore`` behind the Console module's protocol, so the
/// same server, API and page serve a cluster and local mode.
///
/// The console server decides what a request means (the Secrets a target key goes into, "one stream live at a
/// time"); this type maps it onto the cluster store's operations and maps the cluster store's errors onto the
/// console's, so a browser gets the same status codes in both modes.
public struct ClusterConsoleStreamStore: ConsoleStreamStore {
    public let store: KubernetesStreamStore

    /// The viewer the one subscription of ``changes()`` acts for: it sees every stream the store serves, and the
    /// console server checks each browser's user before it shows one.
    static let everyStream = ConsoleViewer(username: "liverelay-console", namespace: "", isAdmin: true)

    public init(store: KubernetesStreamStore) {
        self.store = store
    }

    public func streams(visibleTo user: ConsoleUser) async throws -> [ConsoleStream] {
        try await Self.mapping { try await self.store.streams(for: user.viewer).map(Self.consoleStream) }
    }

    public func stream(_ id: StreamID, visibleTo user: ConsoleUser) async throws -> ConsoleStream? {
        try await Self.mapping { try await self.store.stream(id, for: user.viewer).map(Self.consoleStream) }
    }

    public func create(_ stream: LiveStream, secrets: [SecretDocument], by user: ConsoleUser) async throws {
        let draft = StreamDraft(
            name: stream.metadata.name,
            spec: stream.spec,
            targetKeys: Self.targetKeys(stream.spec, secrets)
        )
        _ = try await Self.mapping { try await self.store.create(draft, in: stream.id.namespace, for: user.viewer) }
    }

    public func update(
        _ id: StreamID,
        spec: LiveStreamSpec,
        secrets: [SecretDocument],
        by user: ConsoleUser
    ) async throws {
        let draft = StreamDraft(name: id.name, spec: spec, targetKeys: Self.targetKeys(spec, secrets))
        let written = try await Self.mapping { try await self.store.update(id, with: draft, for: user.viewer) }
        guard written != nil else { throw ConsoleStoreError.notFound("no stream \(id)") }
    }

    /// A new LiveStream with the same spec and keys, then the old one deleted (the port is allocated anew).
    public func rename(_ id: StreamID, to name: String, by user: ConsoleUser) async throws {
        let renamed = try await Self.mapping { try await self.store.rename(id, to: name, for: user.viewer) }
        guard renamed != nil else { throw ConsoleStoreError.notFound("no stream \(id)") }
    }

    public func delete(_ id: StreamID, by user: ConsoleUser) async throws {
        let deleted = try await Self.mapping { try await self.store.delete(id, for: user.viewer) }
        guard deleted else { throw ConsoleStoreError.notFound("no stream \(id)") }
    }

    /// The console server takes the user's other streams offline itself, first, when the user wants one stream
    /// live at a time: this sets only the one stream.
    public func setSuspend(_ id: StreamID, _ suspend: Bool, by user: ConsoleUser) async throws {
        let result = try await Self.mapping {
            try await self.store.setLive(id, live: !suspend, oneLiveAtATime: false, for: user.viewer)
        }
        guard result != nil else { throw ConsoleStoreError.notFound("no stream \(id)") }
    }

    public func rotateStreamKey(_ id: StreamID, by user: ConsoleUser) async throws {
        let found = try await Self.mapping { try await self.store.rotateStreamKey(id, for: user.viewer) }
        guard found else { throw ConsoleStoreError.notFound("no stream \(id)") }
    }

    public func revealStreamKey(_ id: StreamID, by user: ConsoleUser) async throws -> String {
        let key = try await Self.mapping { try await self.store.revealStreamKey(id, for: user.viewer) }
        guard let key else { throw ConsoleStoreError.notFound("no stream \(id)") }
        return key
    }

    /// One subscription to the store's one watch, for the console server, which fans it out to its browsers.
    public func changes() -> AsyncStream<ConsoleStreamChange> {
        let changes = self.store.changes(for: Self.everyStream)
        return AsyncStream { continuation in
            let task = Task {
                do {
                    for try await change in changes {
                        switch change {
                        case .upserted(let stream): continuation.yield(.changed(stream.id))
                        case .deleted(let id): continuation.yield(.removed(id))
                        }
                    }
                } catch {
                    // The store stopped or refused the subscription; the console server's events end with it.
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: Mapping

    static func consoleStream(_ stream: ClusterStream) -> ConsoleStream {
        var metadata = LiveStream.Metadata(
            name: stream.id.name,
            namespace: stream.id.namespace,
            creationTimestamp: stream.creationTimestamp
        )
        metadata.generation = stream.generation
        var status = stream.status
        // The console serves the preview on its own origin (``ClusterConsole/httpApplication``), for its page to
        // frame; the status's URL (the Ingress's) is for players elsewhere.
        status?.previewURL = stream.spec.preview.enabled ? "/preview/\(stream.id.namespace)/\(stream.id.name)/" : nil
        return ConsoleStream(
            resource: LiveStream(metadata: metadata, spec: stream.spec, status: status)
        )
    }

    /// The key the console server put in a Secret for each target: the cluster store writes it into a Secret the
    /// stream owns, named by the store.
    static func targetKeys(_ spec: LiveStreamSpec, _ secrets: [SecretDocument]) -> [String: TargetKeyChange] {
        var keys: [String: TargetKeyChange] = [:]
        for target in spec.targets {
            guard let reference = target.streamKeySecretRef,
                let secret = secrets.first(where: { $0.name == reference.name }),
                let value = secret.value(reference.key)
            else { continue }
            keys[target.name] = .set(value)
        }
        return keys
    }

    /// Runs `body`, turning the cluster store's errors into the console's.
    static func mapping<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ClusterStoreError {
            throw Self.consoleError(error)
        }
    }

    static func consoleError(_ error: ClusterStoreError) -> ConsoleStoreError {
        switch error.code {
        case .invalid: .invalid(error.fieldErrors)
        case .alreadyExists: .alreadyExists(error.message)
        // Another user's namespace is answered as nothing there, as everywhere in the console.
        case .notFound, .forbidden: .notFound(error.message)
        case .unavailable: .unavailable(error.message)
        // A field another writer manages, an edit made on a stale page, or a stream whose key is not the console's
        // to show: the request conflicts with what is there now.
        default: .conflict(error.message)
        }
    }
}

/// The console's users in a cluster: ``KubernetesUserStore`` (one Secret) behind the Console module's protocol.
public struct ClusterConsoleUserStore: ConsoleUserStore {
    public let store: KubernetesUserStore

    public init(store: KubernetesUserStore) {
        self.store = store
    }

    public func users() async throws -> [ConsoleUser] {
        try await ClusterConsoleStreamStore.mapping { try await self.store.users().map(Self.consoleUser) }
    }

    public func user(named name: String) async throws -> ConsoleUser? {
        try await ClusterConsoleStreamStore.mapping { try await self.store.user(named: name).map(Self.consoleUser) }
    }

    public func add(_ user: ConsoleUser) async throws {
        try await ClusterConsoleStreamStore.mapping { try await self.store.add(Self.record(user)) }
    }

    public func remove(named name: String) async throws {
        let removed = try await ClusterConsoleStreamStore.mapping { try await self.store.remove(named: name) }
        guard removed else { throw ConsoleStoreError.notFound("there is no user named \(name)") }
    }

    public func update(_ user: ConsoleUser) async throws {
        let record = Self.record(user)
        _ = try await ClusterConsoleStreamStore.mapping {
            try await self.store.update(named: user.name) { $0 = record }
        }
    }

    static func consoleUser(_ record: ConsoleUserRecord) -> ConsoleUser {
        ConsoleUser(
            name: record.name,
            passwordHash: record.passwordHash,
            admin: record.isAdmin,
            namespace: record.namespace,
            oneLiveAtATime: record.oneLiveAtATime
        )
    }

    static func record(_ user: ConsoleUser) -> ConsoleUserRecord {
        ConsoleUserRecord(
            name: user.name,
            passwordHash: user.passwordHash,
            isAdmin: user.admin,
            namespace: user.namespace,
            oneLiveAtATime: user.oneLiveAtATime
        )
    }
}

extension ConsoleUser {
    /// The viewer the cluster store acts for when this user is signed in.
    var viewer: ConsoleViewer {
        ConsoleViewer(username: self.name, namespace: self.namespace, isAdmin: self.admin)
    }
}
