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
import Foundation
public import LiveStreamModel

/// The console's stream store in local mode: the streams file given with `-f`.
///
/// Reads parse the file afresh (it is the truth, and a person may edit it by hand too) and add what local mode
/// knows now (phase, ingest URL, the running relay's report). Every change is made to the file's text one document
/// at a time (``StreamFileEditor``: the other documents and their comments stay), validated as local mode will read
/// it, and only then written, atomically; local mode then applies it as it applies any edit of the file. Target keys
/// and a new stream key go into the file as Secret documents, as they would go into Secrets in a cluster.
public actor LocalConsoleStreamStore: ConsoleStreamStore {
    private let runtime: LocalRuntime
    private let path: String

    public init(runtime: LocalRuntime) {
        self.runtime = runtime
        self.path = runtime.configuration.streamsFile
    }

    // MARK: Reading

    private func file() throws -> StreamFile {
        do {
            return try StreamFile.load(path: self.path)
        } catch {
            throw ConsoleStoreError.unavailable("\(error)")
        }
    }

    public func streams(visibleTo user: ConsoleUser) async throws -> [ConsoleStream] {
        var result: [ConsoleStream] = []
        for stream in try self.file().liveStreams where user.owns(stream.id) {
            result.append(await self.view(stream))
        }
        return result.sorted { ($0.id.namespace, $0.id.name) < ($1.id.namespace, $1.id.name) }
    }

    public func stream(_ id: StreamID, visibleTo user: ConsoleUser) async throws -> ConsoleStream? {
        guard user.owns(id), let stream = try self.file().liveStreams.first(where: { $0.id == id }) else {
            return nil
        }
        return await self.view(stream)
    }

    private func view(_ stream: LiveStream) async -> ConsoleStream {
        var resource = stream
        var status = LiveStreamStatus()
        let now = await self.runtime.state(of: stream.id)
        if let state = now?.state {
            status.phase = state.phase
            status.port = state.port
            status.ingestURL = state.ingestURL
            if let problem = state.problem {
                status.setCondition(
                    Condition(
                        type: "Ready",
                        status: .false,
                        reason: "CannotRun",
                        message: problem,
                        lastTransitionTime: ""
                    )
                )
            }
        } else {
            status.phase = stream.spec.suspend ? .suspended : .starting
        }
        if stream.spec.preview.enabled {
            // On the same listener as the console, so the page embeds it from its own origin.
            status.previewURL = "/preview/\(stream.id.namespace)/\(stream.id.name)/"
        }
        resource.status = status
        return ConsoleStream(resource: resource, relay: now?.relay)
    }

    // MARK: Writing

    /// Applies `edit` to the file's text, checks the result as local mode will read it, and writes it.
    private func edit(_ edit: (inout StreamFileEditor, StreamFile) throws -> Void) throws {
        let text: String
        do {
            text = try String(contentsOfFile: self.path, encoding: .utf8)
        } catch {
            throw ConsoleStoreError.unavailable("cannot read \(self.path): \(error.localizedDescription)")
        }
        var editor: StreamFileEditor
        let file: StreamFile
        do {
            editor = try StreamFileEditor(text: text, source: self.path)
            file = try editor.validated()
        } catch {
            throw ConsoleStoreError.unavailable("\(error)")
        }
        try edit(&editor, file)
        do {
            _ = try editor.validated()
        } catch {
            throw ConsoleStoreError.invalid([FieldError(field: "spec", message: error.message)])
        }
        try AtomicFile.replace(self.path, with: editor.text)
    }

    private func existing(_ id: StreamID, in file: StreamFile, user: ConsoleUser) throws -> LiveStream {
        guard user.owns(id), let stream = file.liveStreams.first(where: { $0.id == id }) else {
            throw ConsoleStoreError.notFound("no stream \(id)")
        }
        return stream
    }

    private static func check(_ stream: LiveStream) throws {
        let errors = stream.spec.validate(name: stream.metadata.name)
        if !errors.isEmpty {
            throw ConsoleStoreError.invalid(errors)
        }
    }

    private static func write(_ secrets: [SecretDocument], to editor: inout StreamFileEditor) throws {
        for secret in secrets {
            var values: [String: String] = [:]
            for key in secret.keys {
                values[key] = secret.value(key)
            }
            try editor.setSecret(secret.name, namespace: secret.namespace, values: values)
        }
    }

    public func create(_ stream: LiveStream, secrets: [SecretDocument], by user: ConsoleUser) throws {
        guard user.owns(stream.id) else {
            throw ConsoleStoreError.notFound("no namespace \(stream.id.namespace) of yours")
        }
        try Self.check(stream)
        try self.edit { editor, file in
            guard !file.liveStreams.contains(where: { $0.id == stream.id }) else {
                throw ConsoleStoreError.alreadyExists("a stream \(stream.id) exists already")
            }
            try Self.write(secrets, to: &editor)
            try editor.setStream(stream)
        }
    }

    public func update(_ id: StreamID, spec: LiveStreamSpec, secrets: [SecretDocument], by user: ConsoleUser) throws {
        try self.edit { editor, file in
            var stream = try self.existing(id, in: file, user: user)
            stream.spec = spec
            try Self.check(stream)
            try Self.write(secrets, to: &editor)
            try editor.setStream(stream)
        }
    }

    public func rename(_ id: StreamID, to name: String, by user: ConsoleUser) throws {
        try self.edit { editor, file in
            var stream = try self.existing(id, in: file, user: user)
            let renamed = StreamID(namespace: id.namespace, name: name)
            guard !file.liveStreams.contains(where: { $0.id == renamed }) else {
                throw ConsoleStoreError.alreadyExists("a stream \(renamed) exists already")
            }
            // The key stays where it is: the default Secret name follows the stream's name, so name it.
            stream.spec.ingest.streamKeySecretRef = stream.spec.streamKeySecret(streamName: id.name)
            stream.metadata.name = name
            try Self.check(stream)
            editor.removeStream(id)
            try editor.setStream(stream)
        }
    }

    public func delete(_ id: StreamID, by user: ConsoleUser) throws {
        try self.edit { editor, file in
            let stream = try self.existing(id, in: file, user: user)
            editor.removeStream(id)
            // The Secrets only this stream referenced go with it.
            let others = file.liveStreams.filter { $0.id != id && $0.id.namespace == id.namespace }
            let referenced = Set(others.flatMap(Self.secretNames))
            for name in Set(Self.secretNames(stream)) where !referenced.contains(name) {
                editor.removeSecret(name, namespace: id.namespace)
            }
        }
    }

    private static func secretNames(_ stream: LiveStream) -> [String] {
        var names = stream.spec.targets.compactMap { $0.streamKeySecretRef?.name }
        if stream.spec.ingest.webhook == nil {
            names.append(stream.spec.streamKeySecret(streamName: stream.metadata.name).name)
        }
        return names
    }

    public func setSuspend(_ id: StreamID, _ suspend: Bool, by user: ConsoleUser) throws {
        try self.edit { editor, file in
            var stream = try self.existing(id, in: file, user: user)
            guard stream.spec.suspend != suspend else {
                return
            }
            stream.spec.suspend = suspend
            try editor.setStream(stream)
        }
    }

    public func rotateStreamKey(_ id: StreamID, by user: ConsoleUser) throws {
        try self.edit { editor, file in
            let stream = try self.existing(id, in: file, user: user)
            guard stream.spec.ingest.webhook == nil else {
                throw ConsoleStoreError.invalid([
                    FieldError(field: "spec.ingest.webhook", message: "a webhook authorizes this stream: it has no key")
                ])
            }
            let ref = stream.spec.streamKeySecret(streamName: id.name)
            var values: [String: String] = [:]
            if let secret = file.secret(ref.name, namespace: id.namespace) {
                for key in secret.keys {
                    values[key] = secret.value(key)
                }
            }
            values[ref.key] = StreamKey.generate()
            try editor.setSecret(ref.name, namespace: id.namespace, values: values)
        }
    }

    public func revealStreamKey(_ id: StreamID, by user: ConsoleUser) throws -> String {
        let file = try self.file()
        let stream = try self.existing(id, in: file, user: user)
        guard stream.spec.ingest.webhook == nil else {
            throw ConsoleStoreError.notFound("a webhook authorizes \(id): it has no key")
        }
        let ref = stream.spec.streamKeySecret(streamName: id.name)
        if let value = file.secret(ref.name, namespace: id.namespace)?.value(ref.key) {
            return value
        }
        if let value = self.runtime.storedKey(namespace: id.namespace, secret: ref.name, key: ref.key) {
            return value
        }
        throw ConsoleStoreError.notFound("\(id) has no key yet: local mode makes one when it takes the stream")
    }

    public nonisolated func changes() -> AsyncStream<ConsoleStreamChange> {
        self.runtime.consoleChanges.subscribe()
    }
}
