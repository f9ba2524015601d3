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

/// What the operator's cache holds of the gateway Service.
enum GatewayServiceView: Sendable {
    /// No cache: not leading, or not synced yet.
    case unknown
    case absent
    /// The Service; `behind` when the cache has not shown the writer's last apply yet.
    case present(GatewayServicePorts, behind: Bool)
}

/// What the operator keeps of the gateway Service: its metadata, its type and its stream ports as a set, decoded
/// straight from its JSON. With one port per stream the Service is the largest object the operator watches, and it
/// is read at every stream's reconcile (is my port there yet?): a set answers that at once, where the decoded object
/// would be a tree of ten thousand port objects walked each time.
struct GatewayServicePorts: KubernetesAPIObject, Hashable {
    var metadata: ObjectMeta
    /// `spec.type` (`ClusterIP` when absent).
    var type: String
    /// The stream port entries: named `ls-PORT`, to the same target port.
    var streamPorts: Set<GatewayServiceWriter.Entry>

    init(metadata: ObjectMeta, type: String = "ClusterIP", streamPorts: Set<GatewayServiceWriter.Entry> = []) {
        self.metadata = metadata
        self.type = type
        self.streamPorts = streamPorts
    }

    /// On a NodePort or LoadBalancer Service the node port is the stream's port too (the default range lies in the
    /// NodePort range), so encoders reach the same port on any node.
    var pinsNodePort: Bool { self.type == "NodePort" || self.type == "LoadBalancer" }

    private struct Spec: Codable {
        var type: String?
        var ports: [Port]?
    }

    private struct Port: Codable {
        var name: String?
        var port: Int?
        /// Only a number is a stream's (a named target port is not).
        var targetPort: Int?
        var nodePort: Int?

        init(name: String?, port: Int?, targetPort: Int?, nodePort: Int?) {
            self.name = name
            self.port = port
            self.targetPort = targetPort
            self.nodePort = nodePort
        }

        private enum CodingKeys: String, CodingKey { case name, port, targetPort, nodePort }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.name = try container.decodeIfPresent(String.self, forKey: .name)
            self.port = try container.decodeIfPresent(Int.self, forKey: .port)
            self.targetPort = try? container.decodeIfPresent(Int.self, forKey: .targetPort)
            self.nodePort = try container.decodeIfPresent(Int.self, forKey: .nodePort)
        }
    }

    private enum CodingKeys: String, CodingKey { case metadata, spec }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.metadata = try container.decodeIfPresent(ObjectMeta.self, forKey: .metadata) ?? ObjectMeta()
        let spec = try container.decodeIfPresent(Spec.self, forKey: .spec)
        self.type = spec?.type ?? "ClusterIP"
        var entries = Set<GatewayServiceWriter.Entry>()
        for entry in spec?.ports ?? [] {
            guard let port = entry.port, entry.name == GatewayServiceWriter.portName(port), entry.targetPort == port
            else { continue }
            entries.insert(GatewayServiceWriter.Entry(port: port, nodePort: entry.nodePort))
        }
        self.streamPorts = entries
    }

    /// Encodes the type and the stream ports (the Service's other ports are not kept).
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.metadata, forKey: .metadata)
        let ports = self.streamPorts.sorted { $0.port < $1.port }.map {
            Port(
                name: GatewayServiceWriter.portName($0.port),
                port: $0.port,
                targetPort: $0.port,
                nodePort: $0.nodePort
            )
        }
        try container.encode(Spec(type: self.type, ports: ports), forKey: .spec)
    }
}

/// The single writer of the gateway Service's stream ports.
///
/// One field manager owns the whole list of stream ports and applies it whole, from the ``PortBook``. A stream's
/// reconcile asks ``isExposed(_:)`` and, when not, has the reconciler's gateway loop call ``sync()``; callers of
/// ``sync()`` share one apply: while one is in flight the others wait, and the first of them then applies everything
/// that changed meanwhile, so a thousand new streams cost a few applies, not a thousand. Server-side apply merges `spec.ports` by port and protocol, so the
/// ports the gateway's chart declares (HTTP, 1935) are left alone.
///
/// It reads the Service from the operator's watch of it (``view``), never from the API server: a sync that finds
/// the Service listing exactly the allocated ports writes nothing, and a missing Service costs nothing until it
/// appears (its watch then syncs). Until the watch shows the writer's own last apply, that apply is what counts.
actor GatewayServiceWriter {
    /// The name of a stream's port on the gateway Service (a DNS label of at most 15 characters).
    static func portName(_ port: Int) -> String { "ls-\(port)" }

    private let client: KubernetesClient
    private let configuration: OperatorConfiguration
    private let book: PortBook
    private let logger: Logger
    private let view: @Sendable () -> GatewayServiceView
    private let written: @Sendable (GatewayServicePorts) -> Void
    /// The ports of the last apply, as they were applied (with node ports pinned or not).
    private var applied: Set<Entry>?
    private var running: Task<Void, any Error>?
    private var missingLogged = false

    /// One stream port entry.
    struct Entry: Hashable, Sendable {
        var port: Int
        var nodePort: Int?
    }

    /// - Parameters:
    ///   - view: the gateway Service as the operator's cache holds it.
    ///   - written: told of every apply's answer (for the controller's write expectations).
    init(
        client: KubernetesClient,
        configuration: OperatorConfiguration,
        book: PortBook,
        logger: Logger,
        view: @escaping @Sendable () -> GatewayServiceView,
        written: @escaping @Sendable (GatewayServicePorts) -> Void
    ) {
        self.client = client
        self.configuration = configuration
        self.book = book
        self.logger = logger
        self.view = view
        self.written = written
    }

    /// Makes the gateway Service list exactly the allocated ports; returns once a write that began after this call
    /// has succeeded (or nothing needed writing). A missing gateway Service is logged once and skipped.
    func sync() async throws {
        try await self.syncNow()
    }

    /// Whether `port` is on the Service as it should be, or there is no Service to put it on (nothing to wait for).
    func isExposed(_ port: Int) -> Bool {
        guard let (current, service) = self.current() else { return true }
        return current.contains(Entry(port: port, nodePort: service.pinsNodePort ? port : nil))
    }

    private func syncNow() async throws {
        // A write in flight may have read the ports before this call's change: wait for it to end.
        if let running = self.running {
            _ = try? await running.value
        }
        // A write started after that one (by another caller) read them after this call's change: it is enough.
        if let running = self.running {
            try await running.value
            return
        }
        guard let (current, service) = self.current() else { return }
        let pinNodePort = service.pinsNodePort
        let desired = Set(self.book.allocations.map { Entry(port: $0.port, nodePort: pinNodePort ? $0.port : nil) })
        if desired == current { return }
        // The task runs on this actor (it captures `self`), so it cannot start before `running` is set, and it
        // clears `running` before it completes, so whoever awaited it sees the next write, or none.
        let task = Task {
            do {
                try await self.write(desired)
                self.applied = desired
                self.running = nil
            } catch {
                self.running = nil
                throw error
            }
        }
        self.running = task
        try await task.value
    }

    /// The stream ports the Service lists now (the last apply's while the cache is behind it), and the Service;
    /// `nil` without a Service (or a cache).
    private func current() -> (Set<Entry>, GatewayServicePorts)? {
        switch self.view() {
        case .unknown:
            return nil
        case .absent:
            self.logMissing()
            return nil
        case .present(let service, let behind):
            self.missingLogged = false
            if behind, let applied = self.applied {
                return (applied, service)
            }
            return (service.streamPorts, service)
        }
    }

    private nonisolated func write(_ entries: Set<Entry>) async throws {
        let name = self.configuration.gatewayServiceName
        let namespace = self.configuration.gatewayNamespace
        let ports: [JSONValue] = entries.sorted { $0.port < $1.port }.map { entry in
            var port: JSONValue = [
                "name": .string(Self.portName(entry.port)),
                "port": .int(Int64(entry.port)),
                "targetPort": .int(Int64(entry.port)),
                "protocol": "TCP",
            ]
            if let nodePort = entry.nodePort { port["nodePort"] = .int(Int64(nodePort)) }
            return port
        }
        let service: JSONValue = [
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": ["name": .string(name), "namespace": .string(namespace)],
            "spec": ["ports": .array(ports)],
        ]
        let answer = try await self.client.apply(
            service,
            as: GatewayServicePorts.self,
            .services,
            name: name,
            namespace: namespace,
            fieldManager: "\(self.configuration.fieldManager)-gateway-ports",
            force: true
        )
        self.written(answer)
        self.logger.debug("gateway service ports applied", metadata: ["k8s.ports": "\(entries.count)"])
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
