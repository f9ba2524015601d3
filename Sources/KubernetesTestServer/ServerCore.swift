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
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import Synchronization

/// What the HTTP layer shares: the store, the configuration and the injected faults.
final class ServerCore: Sendable {
    let store: Store
    let configuration: KubernetesTestServer.Configuration
    let faults = Faults()
    let logger: Logger

    init(configuration: KubernetesTestServer.Configuration, logger: Logger) {
        self.store = Store(historyLimit: configuration.historyLimit)
        self.configuration = configuration
        self.logger = logger
    }

    func type(group: String, version: String, plural: String) -> ResourceType? {
        self.store.state.withLock { $0.findType(group: group, version: version, plural: plural) }
    }

    func discovery(group: String, version: String) -> JSON {
        let types = self.store.state.withLock { $0.allTypes }.filter { $0.group == group && $0.version == version }
        return Discovery.resourceList(groupVersion: group.isEmpty ? version : "\(group)/\(version)", types: types)
    }

    func groupList() -> JSON {
        [
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": .array(Discovery.groups(self.store.state.withLock { $0.allTypes })),
        ]
    }

    func group(named name: String) -> JSON? {
        Discovery.groups(self.store.state.withLock { $0.allTypes }).first { $0["name"]?.stringValue == name }
    }

    // MARK: Watch

    /// Starts a watch: replays history after `resourceVersion` (or synthesises `ADDED` for every current object),
    /// then streams new events as newline-delimited JSON until the client goes, `timeoutSeconds` passes, the
    /// server drops watches, or the server stops.
    func watch(_ type: ResourceType, options: ListOptions, query: Query, asTable: Bool) -> Response {
        let (stream, continuation) = AsyncStream<Data>.makeStream()
        let bookmarks = query.bool("allowWatchBookmarks")
        let sendInitialEvents = query.bool("sendInitialEvents")
        let requested = query["resourceVersion"] ?? ""
        let watcher = Store.Watcher(type: type, options: options, asTable: asTable, continuation: continuation)
        let id: Int? = self.store.state.withLock { state in
            if !requested.isEmpty && requested != "0" && !sendInitialEvents {
                guard let from = Int64(requested) else {
                    let error = APIError.badRequest("invalid resourceVersion \(requested)")
                    continuation.yield(Store.State.encodeError(error))
                    continuation.finish()
                    return nil
                }
                if from < state.compactedVersion {
                    let error = APIError.expired("too old resource version: \(from) (\(state.compactedVersion))")
                    continuation.yield(Store.State.encodeError(error))
                    continuation.finish()
                    return nil
                }
                for event in state.history where event.storageKey == type.storageKey && event.resourceVersion > from {
                    if let translated = event.translated(for: options) {
                        continuation.yield(Store.State.encodeEvent(translated, event.object, watcher: watcher))
                    }
                }
            } else {
                for object in state.list(type, options: options) {
                    continuation.yield(Store.State.encodeEvent("ADDED", object, watcher: watcher))
                }
                if sendInitialEvents {
                    continuation.yield(state.bookmark(for: watcher, initialEventsEnd: true))
                }
            }
            let id = state.nextWatcherID
            state.nextWatcherID += 1
            state.watchers[id] = watcher
            return id
        }
        let store = self.store
        let interval = self.configuration.bookmarkInterval
        let timeout = query["timeoutSeconds"].flatMap(Int.init)
        let body = ResponseBody { writer in
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    if let id, bookmarks {
                        group.addTask {
                            while true {
                                try await Task.sleep(for: interval)
                                store.sendBookmark(watcherID: id)
                            }
                        }
                    }
                    if let id, let timeout, timeout > 0 {
                        group.addTask {
                            try await Task.sleep(for: .seconds(timeout))
                            store.endWatch(id)
                        }
                    }
                    for await chunk in stream {
                        try await writer.write(ByteBuffer(data: chunk))
                    }
                    group.cancelAll()
                }
            } catch {
                if let id { store.endWatch(id) }
                throw error
            }
            if let id { store.endWatch(id) }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: body)
    }
}

extension Store {
    func sendBookmark(watcherID: Int) {
        self.state.withLock { state in
            guard let watcher = state.watchers[watcherID] else { return }
            watcher.continuation.yield(state.bookmark(for: watcher, initialEventsEnd: false))
        }
    }

    func endWatch(_ id: Int) {
        let watcher = self.state.withLock { $0.watchers.removeValue(forKey: id) }
        watcher?.continuation.finish()
    }

    func endAllWatches() {
        let watchers = self.state.withLock { state in
            defer { state.watchers.removeAll() }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.continuation.finish() }
    }
}

extension Store.State {
    /// A `BOOKMARK`: an object of the watched kind carrying only the latest resourceVersion.
    func bookmark(for watcher: Store.Watcher, initialEventsEnd: Bool) -> Data {
        var metadata: JSON = ["resourceVersion": .string(String(self.resourceVersion))]
        if initialEventsEnd { metadata["annotations"] = ["k8s.io/initial-events-end": "true"] }
        let object: JSON = [
            "kind": .string(watcher.type.kind), "apiVersion": .string(watcher.type.groupVersion), "metadata": metadata,
        ]
        var line = JSON.object(["type": "BOOKMARK", "object": object]).encoded()
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// An `ERROR` event with a `Status`, which is how a watch reports 410 Gone once the stream has started.
    static func encodeError(_ error: APIError) -> Data {
        var line = JSON.object(["type": "ERROR", "object": error.status]).encoded()
        line.append(UInt8(ascii: "\n"))
        return line
    }
}

/// Failures a test asks for: refused connections and failed requests.
final class Faults: Sendable {
    private struct State {
        var failures = 0
        var status = 500
        var retryAfter: Int?
        var refuseUntil: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    func failNext(count: Int, status: Int, retryAfter: Int?) {
        self.state.withLock {
            $0 = State(failures: count, status: status, retryAfter: retryAfter, refuseUntil: $0.refuseUntil)
        }
    }

    func takeInjectedFailure() -> APIError? {
        self.state.withLock { state in
            guard state.failures > 0 else { return nil }
            state.failures -= 1
            if state.status == 429 {
                return APIError(
                    code: 429,
                    reason: "TooManyRequests",
                    message: "the server has received too many requests and has asked us to try again later",
                    details: ["causes": []],
                    retryAfter: state.retryAfter
                )
            }
            return APIError(
                code: state.status,
                reason: "InternalError",
                message: "an error on the server (\"injected failure\") has prevented the request from succeeding",
                details: ["causes": []],
                retryAfter: state.retryAfter
            )
        }
    }

    func refuse(for duration: Duration) {
        self.state.withLock { $0.refuseUntil = .now + duration }
    }

    var refusing: Bool {
        self.state.withLock { state in
            guard let until = state.refuseUntil else { return false }
            return ContinuousClock.now < until
        }
    }
}
