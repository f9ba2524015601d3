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

public import LiveStreamModel
public import RelayAPI

/// One stream as the console shows it: the resource (spec with Secret references, never a key, and the status the
/// store knows: phase, port, ingest and preview URLs, each target's state) and, while its relay runs, what the relay
/// reports of itself (ingest figures, rule warnings, each target's state with its error and next retry).
public struct ConsoleStream: Hashable, Sendable {
    public var resource: LiveStream
    /// The running relay's report (`GET /api/v1/stream` of the relay); `nil` when no relay runs.
    public var relay: StreamStatus?

    public init(resource: LiveStream, relay: StreamStatus? = nil) {
        self.resource = resource
        self.relay = relay
    }

    public var id: StreamID { self.resource.id }
}

/// Something about a stream changed (spec, phase, a target's state, the relay's figures): the console reads it again
/// and tells the browsers that may see it.
public enum ConsoleStreamChange: Hashable, Sendable {
    case changed(StreamID)
    case removed(StreamID)
}

/// Where the console reads and writes streams: the streams file in local mode (`LocalConsoleStreamStore` in
/// LocalRuntime), LiveStreams and Secrets through the Kubernetes API in a cluster.
///
/// Ownership is the store's to enforce, on every call: a user owns the streams of ``ConsoleUser/namespace``, an admin
/// every stream. A stream that does not exist and a stream that is not the user's are the same to a caller:
/// `nil` from ``stream(_:visibleTo:)`` and ``ConsoleStoreError/notFound(_:)`` from every change, which the server
/// answers with 404. Every change is validated (`LiveStreamSpec.validate(name:)`) before anything is written, and
/// refused with ``ConsoleStoreError/invalid(_:)``; a store never writes half of a change it refuses.
///
/// Keys: target keys arrive as `SecretDocument`s to write beside the spec (the spec references them); no method
/// returns one. The stream's own ingest key leaves the store only through ``revealStreamKey(_:by:)``, which the
/// server calls only on the owner's explicit request.
public protocol ConsoleStreamStore: Sendable {
    /// Every stream `user` may see, sorted by namespace and name.
    func streams(visibleTo user: ConsoleUser) async throws -> [ConsoleStream]

    /// The stream, or `nil` when it does not exist or is not the user's.
    func stream(_ id: StreamID, visibleTo user: ConsoleUser) async throws -> ConsoleStream?

    /// Creates the stream (in `stream.id.namespace`, which must be the user's unless an admin) and writes `secrets`
    /// (the targets' keys) beside it. ``ConsoleStoreError/alreadyExists(_:)`` when the name is taken.
    func create(_ stream: LiveStream, secrets: [SecretDocument], by user: ConsoleUser) async throws

    /// Replaces the stream's spec and writes `secrets` (new target keys; the others stay as they are).
    func update(_ id: StreamID, spec: LiveStreamSpec, secrets: [SecretDocument], by user: ConsoleUser) async throws

    /// Gives the stream another name in the same namespace, keeping its spec, its keys and its port when free.
    func rename(_ id: StreamID, to name: String, by user: ConsoleUser) async throws

    /// Deletes the stream and the Secrets only it referenced.
    func delete(_ id: StreamID, by user: ConsoleUser) async throws

    /// Sets `spec.suspend`: `true` is Go Offline (relay stopped, publishes refused), `false` Go Live.
    func setSuspend(_ id: StreamID, _ suspend: Bool, by user: ConsoleUser) async throws

    /// Replaces the stream's ingest key with a new random one; the old one stops working at once.
    func rotateStreamKey(_ id: StreamID, by user: ConsoleUser) async throws

    /// The stream's ingest key, for its owner's explicit request to see or copy it.
    func revealStreamKey(_ id: StreamID, by user: ConsoleUser) async throws -> String

    /// Every change from now on, of any stream; the server subscribes once and fans out to its browsers.
    func changes() -> AsyncStream<ConsoleStreamChange>
}

extension ConsoleUser {
    /// Whether this user may see and change the stream `id`.
    public func owns(_ id: StreamID) -> Bool {
        self.admin || id.namespace == self.namespace
    }
}
