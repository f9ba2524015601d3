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
import KubernetesClient
import KubernetesTestSupport
import LiveStreamModel
import Operator
import PeerTestSupport
import Testing

@Suite("Operator at scale and across restarts", .timeLimit(.minutes(4)))
struct OperatorScaleTests {
    /// Creates `names` with `concurrency` requests in flight.
    func create(_ names: [String], in cluster: TestCluster, concurrency: Int = 16) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var iterator = names.makeIterator()
            for _ in 0..<concurrency {
                guard let name = iterator.next() else { break }
                group.addTask { _ = try await cluster.client.createLiveStream(name, namespace: cluster.namespace) }
            }
            while try await group.next() != nil {
                guard let name = iterator.next() else { continue }
                group.addTask { _ = try await cluster.client.createLiveStream(name, namespace: cluster.namespace) }
            }
        }
    }

    func ports(_ cluster: TestCluster, prefix: String) async throws -> [String: Int] {
        let items = try await cluster.client.listAll(KubernetesObject.self, .liveStreams, namespace: cluster.namespace)
            .items
        var ports: [String: Int] = [:]
        for item in items where item.metadata.name?.hasPrefix(prefix) == true {
            if let port = item.statusPort { ports[item.metadata.name ?? ""] = port }
        }
        return ports
    }

    @Test("an operator killed in the middle of reconciles, then restarted, never gives a port twice")
    func restartMidFlight() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            try await createGatewayService(cluster)
            let configuration = try testConfiguration(cluster, workers: 4)
            let names = (0..<80).map { String(format: "r-%03d", $0) }
            let first = RunningOperator.start(cluster, configuration: configuration)
            try await self.create(names, in: cluster)
            try await eventually("some streams have ports") { try await self.ports(cluster, prefix: "r-").count >= 10 }
            await first.kill()
            let before = try await self.ports(cluster, prefix: "r-")
            try await withOperator(cluster, configuration: configuration) { _ in
                try await eventually("every stream has a port", timeout: .seconds(90), interval: .milliseconds(500)) {
                    try await self.ports(cluster, prefix: "r-").count == names.count
                }
                let after = try await self.ports(cluster, prefix: "r-")
                #expect(Set(after.values).count == names.count, "a port was given twice")
                // A port recorded before the restart is kept.
                for (name, port) in before { #expect(after[name] == port, "\(name)") }
                try await eventually("the gateway Service lists exactly the streams' ports") {
                    try await cluster.client.gatewayPorts(namespace: cluster.namespace) == Set(after.values)
                }
            }
        }
    }

    @Test("500 LiveStreams created at once get 500 distinct ports")
    func fiveHundred() async throws {
        try await withTestCluster(crds: [.liveStream]) { cluster in
            try await createGatewayService(cluster)
            let configuration = try testConfiguration(cluster, workers: 8)
            let names = (0..<500).map { String(format: "s-%03d", $0) }
            try await withOperator(cluster, configuration: configuration) { running in
                let start = ContinuousClock.now
                try await self.create(names, in: cluster, concurrency: 32)
                let created = ContinuousClock.now - start
                try await eventually("500 streams have ports", timeout: .seconds(200), interval: .seconds(1)) {
                    running.instance.allocatedPorts == names.count
                }
                try await eventually("500 streams have ports in status", timeout: .seconds(60), interval: .seconds(1)) {
                    try await self.ports(cluster, prefix: "s-").count == names.count
                }
                let allocated = ContinuousClock.now - start
                let ports = try await self.ports(cluster, prefix: "s-")
                #expect(Set(ports.values).count == 500)
                #expect(ports.values.allSatisfy { (31000...31999).contains($0) })
                #expect(running.instance.allocatedPorts == 500)
                try await eventually(
                    "the gateway Service lists 500 ports",
                    timeout: .seconds(60),
                    interval: .seconds(1)
                ) {
                    try await cluster.client.gatewayPorts(namespace: cluster.namespace).count == 500
                }
                print("500 LiveStreams: created in \(created), all ports in status after \(allocated)")
            }
        }
    }
}
