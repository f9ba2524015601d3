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
import KubernetesController
import KubernetesTestSupport
import LiveStreamModel
import Logging
import ServiceLifecycle
import Synchronization
import TimeSupport

var quietLogger: Logger {
    var logger = Logger(label: "console-cluster-test")
    logger.logLevel = .error
    return logger
}

/// A store on the test cluster with a fast watch.
func makeStore(
    _ client: KubernetesClient,
    watchNamespace: String? = nil,
    maxSubscribers: Int = 1024
) -> KubernetesStreamStore {
    KubernetesStreamStore(
        client: client,
        watchNamespace: watchNamespace,
        maxSubscribers: maxSubscribers,
        listWatch: ListWatchOptions(
            watchTimeoutSeconds: 60,
            backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(400))
        ),
        logger: quietLogger
    )
}

/// Runs `store` in a service group for the duration of `body`, then shuts it down gracefully.
func running<T>(_ store: KubernetesStreamStore, _ body: () async throws -> T) async throws -> T {
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(services: [.init(service: store)], logger: quietLogger)
    )
    let task = Task { try await group.run() }
    defer { task.cancel() }
    let result = try await body()
    await group.triggerGracefulShutdown()
    try await task.value
    return result
}

/// A stream with the given targets (no keys), online unless `suspend`.
func draft(_ name: String, targets: [String] = ["youtube"], suspend: Bool = false) -> StreamDraft {
    StreamDraft(
        name: name,
        spec: LiveStreamSpec(
            targets: targets.map { LiveStreamSpec.Target(name: $0, url: "rtmp://\($0).example.com/live") },
            suspend: suspend
        )
    )
}

/// The value of `key` in Secret `name`, decoded.
func secretValue(_ client: KubernetesClient, _ name: String, key: String, namespace: String) async throws -> String? {
    let secret = try await client.get(KubernetesObject.self, .secrets, name: name, namespace: namespace)
    guard let encoded = secret["data"]?[key]?.stringValue, let data = Data(base64Encoded: encoded) else { return nil }
    return String(decoding: data, as: UTF8.self)
}

/// Counts the requests a client sends, by what they are.
final class RequestCounter: KubernetesMiddleware {
    private let counts = Mutex<[String: Int]>([:])
    /// Called before a request is sent, with its method and path (to inject a concurrent write).
    private let before: (@Sendable (KubernetesRequest) async throws -> Void)?

    init(before: (@Sendable (KubernetesRequest) async throws -> Void)? = nil) {
        self.before = before
    }

    /// Requests whose `watch=true`.
    var watches: Int { self.counts.withLock { $0["watch"] ?? 0 } }

    func count(_ method: KubernetesRequest.Method, pathSuffix: String) -> Int {
        self.counts.withLock { $0["\(method.rawValue) \(pathSuffix)"] ?? 0 }
    }

    func intercept(
        _ request: KubernetesRequest,
        body: KubernetesBody?,
        next: @Sendable (KubernetesRequest, KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    ) async throws -> (KubernetesResponse, KubernetesBody) {
        let isWatch = request.query.contains { $0.name == "watch" && ($0.value == "true" || $0.value == "1") }
        let last = request.path.split(separator: "/").last.map(String.init) ?? ""
        self.counts.withLock { counts in
            if isWatch { counts["watch", default: 0] += 1 }
            counts["\(request.method.rawValue) \(last)", default: 0] += 1
        }
        try await self.before?(request)
        return try await next(request, body)
    }
}

/// Every line logged through ``logger``, at every level, metadata included.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { self.lines.withLock { $0 } }

    func append(_ line: String) {
        self.lines.withLock { $0.append(line) }
    }

    func logger(_ label: String) -> Logger {
        Logger(label: label) { _ in RecordingLogHandler(lines: self) }
    }
}

struct RecordingLogHandler: LogHandler {
    let lines: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        self.lines.append("\(event.level) \(event.message) \(rendered)")
    }
}

/// Sends through another client (its authentication and retries), so a client with another logger or middleware
/// can share it.
struct ForwardingTransport: KubernetesTransport {
    let client: KubernetesClient

    func send(_ request: KubernetesRequest, body: KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    {
        try await self.client.send(request, body: body)
    }
}
