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

import KubernetesClient
import LiveStreamModel
import Logging

/// The single writer of the gateway Service's stream ports.
///
/// One field manager owns the whole list of stream ports and applies it whole, from the ``PortBook``; concurrent
/// workers call ``sync()`` and share one apply: while one is in flight the others wait, and the first of them then
/// applies everything that changed meanwhile. Server-side apply merges `spec.ports` by port and protocol, so the
/// ports the gateway's chart declares (HTTP, 1935) are left alone.
actor GatewayServiceWriter {
    /// The name of a stream's port on the gateway Service (a DNS label of at most 15 characters).
    static func portName(_ port: Int) -> String { "ls-\(port)" }

    private let client: KubernetesClient
    private let configuration: OperatorConfiguration
    private let book: PortBook
    private let logger: Logger
    private var applied: [Int]?
    private var running: Task<Bool, any Error>?
    private var missingLogged = false

    init(client: KubernetesClient, configuration: OperatorConfiguration, book: PortBook, logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.book = book
        self.logger = logger
    }

    /// Makes the gateway Service list exactly the allocated ports; returns once a write that began after this call
    /// has succeeded (or nothing needed writing). A missing gateway Service is logged and skipped.
    func sync() async throws {
        try await self.sync(unlessApplied: nil)
    }

    /// As ``sync()``, but returns at once when `port` is already on the Service: the common case of a reconcile
    /// that finds its stream as it left it, which must not wait behind other streams' writes.
    func ensure(port: Int) async throws {
        try await self.sync(unlessApplied: port)
    }

    private func sync(unlessApplied port: Int?) async throws {
        if let port, self.applied?.contains(port) == true {
            return
        }
        // A write in flight may have read the ports before this call's change: wait for it to end.
        if let running = self.running {
            _ = try? await running.value
        }
        // A write started after that one (by another caller) read them after this call's change: it is enough.
        if let running = self.running {
            _ = try await running.value
            return
        }
        let desired = self.book.allocations.map(\.port)
        if desired == self.applied { return }
        // The task runs on this actor (it captures `self`), so it cannot start before `running` is set, and it
        // clears `running` before it completes, so whoever awaited it sees the next write, or none.
        let task = Task {
            do {
                let written = try await self.write(desired)
                self.running = nil
                if written { self.applied = desired }
                return written
            } catch {
                self.running = nil
                throw error
            }
        }
        self.running = task
        _ = try await task.value
    }

    /// Applies `ports`; `false` when the gateway Service does not exist.
    private nonisolated func write(_ ports: [Int]) async throws -> Bool {
        let name = self.configuration.gatewayServiceName
        let namespace = self.configuration.gatewayNamespace
        let current: KubernetesObject
        do {
            current = try await self.client.get(KubernetesObject.self, .services, name: name, namespace: namespace)
        } catch let error as KubernetesError where error.isNotFound {
            await self.logMissing()
            return false
        }
        // On a NodePort or LoadBalancer Service the node port is the stream's port too (the default range lies in
        // the NodePort range), so encoders reach the same port on any node.
        let type = current["spec"]?["type"]?.stringValue ?? "ClusterIP"
        let pinNodePort = type == "NodePort" || type == "LoadBalancer"
        let entries: [JSONValue] = ports.map { port in
            var entry: JSONValue = [
                "name": .string(Self.portName(port)),
                "port": .int(Int64(port)),
                "targetPort": .int(Int64(port)),
                "protocol": "TCP",
            ]
            if pinNodePort { entry["nodePort"] = .int(Int64(port)) }
            return entry
        }
        let service: JSONValue = [
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": ["name": .string(name), "namespace": .string(namespace)],
            "spec": ["ports": .array(entries)],
        ]
        _ = try await self.client.apply(
            service,
            as: KubernetesObject.self,
            .services,
            name: name,
            namespace: namespace,
            fieldManager: "\(self.configuration.fieldManager)-gateway-ports",
            force: true
        )
        self.logger.debug("gateway service ports applied", metadata: ["k8s.ports": "\(ports.count)"])
        return true
    }

    private func logMissing() {
        guard !self.missingLogged else { return }
        self.missingLogged = true
        self.logger.warning(
            "gateway service not found; stream ports are not exposed until it exists",
            metadata: [
                "k8s.name": "\(self.configuration.gatewayServiceName)",
                "k8s.namespace": "\(self.configuration.gatewayNamespace)",
            ]
        )
    }
}
