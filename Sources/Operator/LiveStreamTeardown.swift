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

public import KubernetesClient
public import LiveStreamModel
public import Logging

/// What uninstalling the operator does to the LiveStreams it serves, so that none is left stuck on its
/// `liverelay.io/release-port` finalizer once nothing runs to remove it (a delete that then hangs, and a CRD that
/// hangs in Terminating). It runs while the operator still does: the chart's pre-delete hook, and `tools/down.sh`.
public struct LiveStreamTeardown: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Delete every LiveStream and wait for the operator to release each (port, key, children); any still
        /// there at the deadline has its finalizer removed.
        case delete
        /// Keep every LiveStream and its relay, and remove only the finalizer: deleting one later needs no operator
        /// (its children go with it, by owner reference). Installing the operator again adopts them.
        case release
    }

    public struct Report: Sendable, Equatable {
        /// Streams deleted by this teardown.
        public var deleted: [StreamID] = []
        /// Streams whose finalizer this teardown removed, because the operator had not.
        public var released: [StreamID] = []
    }

    let client: KubernetesClient
    /// `nil`: every namespace.
    let namespace: String?
    let logger: Logger

    public init(client: KubernetesClient, namespace: String?, logger: Logger) {
        self.client = client
        self.namespace = namespace
        self.logger = logger
    }

    /// - Parameters:
    ///   - timeout: how long deleted streams are given to be released by the operator.
    ///   - pollInterval: how often the remaining streams are listed while waiting.
    public func run(mode: Mode, timeout: Duration, pollInterval: Duration = .seconds(1)) async throws -> Report {
        var report = Report()
        if mode == .delete {
            for stream in try await self.streams() {
                guard let id = Self.id(stream), stream.metadata.deletionTimestamp == nil else { continue }
                do {
                    try await self.client.delete(.liveStreams, name: id.name, namespace: id.namespace)
                    report.deleted.append(id)
                } catch let error as KubernetesError where error.isNotFound {
                    continue
                }
            }
            self.logger.notice(
                "LiveStreams deleted; waiting for the operator to release them",
                metadata: ["liverelay.streams": "\(report.deleted.count)", "liverelay.timeout": "\(timeout)"]
            )
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline, try await !self.streams().isEmpty {
                try await Task.sleep(for: pollInterval)
            }
        }
        // A stream the operator changed meanwhile (409 Conflict) is read again, a few times.
        for _ in 0..<5 {
            var conflicted = false
            for stream in try await self.streams() {
                guard let id = Self.id(stream) else { continue }
                let finalizers = stream.metadata.finalizers ?? []
                guard finalizers.contains(LiveStreamResource.finalizer) else { continue }
                do {
                    _ = try await self.client.patch(
                        KubernetesObject.self,
                        .liveStreams,
                        name: id.name,
                        namespace: id.namespace,
                        mergePatch: [
                            "metadata": [
                                "finalizers": .array(
                                    finalizers.filter { $0 != LiveStreamResource.finalizer }.map { .string($0) }
                                ),
                                "resourceVersion": .string(stream.metadata.resourceVersion ?? ""),
                            ]
                        ]
                    )
                } catch let error as KubernetesError where error.isNotFound {
                    continue
                } catch let error as KubernetesError where error.isConflict {
                    conflicted = true
                    continue
                }
                report.released.append(id)
                if mode == .delete {
                    self.logger.warning(
                        "The operator did not release a deleted LiveStream in time: its finalizer was removed",
                        metadata: ["k8s.name": "\(id)"]
                    )
                } else {
                    self.logger.info("LiveStream kept, its finalizer removed", metadata: ["k8s.name": "\(id)"])
                }
            }
            if !conflicted { break }
        }
        return report
    }

    private func streams() async throws -> [KubernetesObject] {
        try await self.client.listAll(
            KubernetesObject.self,
            .liveStreams,
            namespace: self.namespace,
            allNamespaces: self.namespace == nil
        ).items
    }

    private static func id(_ object: KubernetesObject) -> StreamID? {
        guard let name = object.metadata.name, let namespace = object.metadata.namespace else { return nil }
        return StreamID(namespace: namespace, name: name)
    }
}
