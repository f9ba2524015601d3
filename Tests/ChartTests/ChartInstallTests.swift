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
import KubernetesTestServer
import KubernetesTestSupport
import Logging
import PeerTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A TCP connection to 127.0.0.1:`port`, as an encoder opens one; closed by ``close()``.
struct TestConnection {
    let descriptor: Int32

    init(port: Int) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result != 0 {
            let error = errno
            Glibc.close(descriptor)
            Issue.record("connect to 127.0.0.1:\(port) failed: errno \(error)")
            throw CancellationError()
        }
        self.descriptor = descriptor
    }

    func close() {
        Glibc.close(self.descriptor)
    }
}

@Suite(
    "Chart installed into the Kubernetes API test server",
    .enabled(
        if: peerAvailable(chartToolsAvailable),
        "python3 with helm-python and kubernetes-validate is not installed"
    ),
    .enabled(if: peerAvailable(kubectlPath != nil), "kubectl is not installed"),
    .enabled(if: peerAvailable(liverelayPath != nil), "the liverelay executable is not built (swift build)"),
    .enabled(if: peerAvailable(executableOnPath("curl") != nil), "curl is not installed"),
    .timeLimit(.minutes(5))
)
struct ChartInstallTests {
    /// The whole install path a platform team takes: kubectl applies what Helm renders (CRD, RBAC, Deployments,
    /// Service, PDB), the operator and the gateway run with exactly the arguments of the rendered Deployments (only
    /// the API server and listen addresses differ), a LiveStream from examples/kubernetes gets its port, children
    /// and ingest URL, the gateway Service gets the stream's port, and an encoder's connection to that port is held
    /// while the gateway asks for the relay's first replica.
    @Test("kubectl applies the rendered chart; its operator and gateway serve examples/kubernetes/livestream.yaml")
    func installAndStream() async throws {
        try #require(liverelayPath != nil, "the liverelay executable is not built beside the tests (swift build)")
        let streamPort = try freeTCPPort()
        let httpPort = try freeTCPPort()
        let sets = [
            "portRange=\(streamPort)-\(streamPort)", "gateway.httpPort=\(httpPort)", "ingestHost=rtmp.example.com",
            "gateway.service.type=NodePort", "gateway.shutdownGrace=1", "ingress.className=nginx",
            "ingress.host=live.example.com",
        ]
        try await withRenderedChart(sets) { chart in
            var logger = Logger(label: "kube-test-server")
            logger.logLevel = .warning
            try await withKubernetesTestServer(logger: logger) { server in
                // KEDA's CRD stands for an installed KEDA (tools/install-keda.sh in a real cluster).
                try server.installCRD(yaml: String(contentsOfFile: Paths.kedaCRD, encoding: .utf8))
                let kubeconfig = "\(chart.directory)/kubeconfig"
                try server.writeKubeconfig(to: kubeconfig)
                try await Self.install(chart, kubeconfig: kubeconfig)
                try await Self.runRendered(chart, kubeconfig: kubeconfig, server: server, ports: (streamPort, httpPort))
            }
        }
    }

    static func kubectl(_ kubeconfig: String, _ arguments: [String]) async throws -> ProcessExit {
        try await run(kubectlPath ?? "kubectl", ["--kubeconfig", kubeconfig] + arguments, timeout: .seconds(90))
    }

    /// `kubectl apply --server-side` of every rendered file, into the release's namespace.
    static func install(_ chart: RenderedChart, kubeconfig: String) async throws {
        let namespace = "\(chart.directory)/namespace.json"
        try Data(#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"liverelay-system"}}"#.utf8)
            .write(to: URL(fileURLWithPath: namespace))
        var exit = try await kubectl(kubeconfig, ["apply", "--server-side", "-f", namespace])
        try #require(exit.succeeded, "\(exit)")
        try FileManager.default.removeItem(atPath: namespace)
        exit = try await kubectl(kubeconfig, ["apply", "--server-side", "-f", chart.directory])
        try #require(exit.succeeded, "kubectl apply of the rendered chart: \(exit)")
        #expect(exit.standardOutput.components(separatedBy: "serverside-applied").count - 1 == chart.objects.count)
        exit = try await kubectl(
            kubeconfig,
            ["wait", "--for=condition=Established", "--timeout=30s", "crd/livestreams.liverelay.io"]
        )
        #expect(exit.succeeded, "\(exit)")
        exit = try await kubectl(
            kubeconfig,
            ["-n", "liverelay-system", "get", "deployments,services,pdb", "-o", "name"]
        )
        #expect(exit.standardOutput.contains("deployment.apps/liverelay-operator"), "\(exit.standardOutput)")
        #expect(exit.standardOutput.contains("service/liverelay-gateway"), "\(exit.standardOutput)")
    }

    /// The rendered Deployment's arguments, for a process outside the cluster: the kubeconfig instead of the pod's
    /// service account, and loopback instead of every interface.
    static func localArguments(_ chart: RenderedChart, _ deployment: String, kubeconfig: String) -> [String] {
        var arguments = chart.arguments(deployment).filter { $0 != "--in-cluster" }.map { argument in
            argument.replacingOccurrences(of: "=0.0.0.0", with: "=127.0.0.1")
        }
        arguments.append("--kubeconfig=\(kubeconfig)")
        return arguments
    }

    static func runRendered(
        _ chart: RenderedChart,
        kubeconfig: String,
        server: KubernetesTestServer,
        ports: (stream: Int, http: Int)
    ) async throws {
        let operatorArguments = localArguments(chart, "liverelay-operator", kubeconfig: kubeconfig)
        let gatewayArguments = localArguments(chart, "liverelay-gateway", kubeconfig: kubeconfig)
        try await withRunningProcess(liverelayPath ?? "liverelay", arguments: operatorArguments) { liveOperator in
            try await withRunningProcess(liverelayPath ?? "liverelay", arguments: gatewayArguments) { gateway in
                let exit = try await kubectl(
                    kubeconfig,
                    [
                        "apply", "--server-side", "-f", "\(Paths.examples)/target-keys.yaml", "-f",
                        "\(Paths.examples)/livestream.yaml",
                    ]
                )
                try #require(exit.succeeded, "\(exit)")
                try await self.checkStream(kubeconfig: kubeconfig, server: server, ports: ports)
                try await self.checkWake(server: server, ports: ports)

                liveOperator.terminate()
                let operatorExit = await liveOperator.waitForExit(timeout: .seconds(30))
                #expect(operatorExit?.succeeded == true, "operator: \(String(describing: operatorExit))")
                gateway.terminate()
                let gatewayExit = await gateway.waitForExit(timeout: .seconds(30))
                #expect(gatewayExit != nil, "the gateway did not stop on SIGTERM")
                #expect(gatewayExit?.succeeded == true, "gateway: \(String(describing: gatewayExit))")
            }
        }
    }

    /// What `kubectl get livestream` shows, the children, and the gateway's Service and routes.
    static func checkStream(
        kubeconfig: String,
        server: KubernetesTestServer,
        ports: (stream: Int, http: Int)
    ) async throws {
        func stream() -> JSON? {
            server.object(apiVersion: "liverelay.io/v1alpha1", kind: "LiveStream", namespace: "default", name: "alice")
        }
        try await eventually("alice's ingest URL") {
            stream()?[path: ["status", "ingestURL"]]?.stringValue == "rtmp://rtmp.example.com:\(ports.stream)/live"
        }
        #expect(stream()?[path: ["status", "port"]]?.intValue == Int64(ports.stream))
        let children = [
            ("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap"),
            ("networking.k8s.io/v1", "NetworkPolicy"),
            ("networking.k8s.io/v1", "Ingress"), ("keda.sh/v1alpha1", "ScaledObject"),
        ]
        for (apiVersion, kind) in children {
            try await eventually("\(kind) ls-alice") {
                server.object(apiVersion: apiVersion, kind: kind, namespace: "default", name: "ls-alice") != nil
            }
        }
        try await eventually("the generated stream key") {
            server.object(apiVersion: "v1", kind: "Secret", namespace: "default", name: "alice-stream-key") != nil
        }
        try await eventually("the stream's port on the gateway Service") {
            let service = server.object(
                apiVersion: "v1",
                kind: "Service",
                namespace: "liverelay-system",
                name: "liverelay-gateway"
            )
            let entries = service?[path: ["spec", "ports"]]?.arrayValue ?? []
            return entries.contains {
                $0["port"]?.intValue == Int64(ports.stream) && $0["nodePort"]?.intValue == Int64(ports.stream)
            }
        }
        // The README's commands: what an encoder needs, from the status and the generated Secret.
        var exit = try await kubectl(kubeconfig, ["get", "livestreams"])
        #expect(exit.standardOutput.contains("rtmp://rtmp.example.com:\(ports.stream)/live"), "\(exit.standardOutput)")
        exit = try await kubectl(kubeconfig, ["get", "livestream", "alice", "-o", "jsonpath={.status.ingestURL}"])
        #expect(exit.standardOutput == "rtmp://rtmp.example.com:\(ports.stream)/live")
        exit = try await kubectl(kubeconfig, ["get", "livestream", "alice", "-o", "yaml"])
        #expect(exit.standardOutput.contains("type: PortAllocated"), "\(exit.standardOutput)")
        exit = try await kubectl(kubeconfig, ["get", "secret", "alice-stream-key", "-o", "jsonpath={.data.streamKey}"])
        let key = Data(base64Encoded: exit.standardOutput).map { String(decoding: $0, as: UTF8.self) } ?? ""
        #expect(key.count == 64 && key.allSatisfy(\.isHexDigit), "the generated key is 32 random bytes as hex")
        try await eventually("the gateway's route for alice") {
            let routes = try await run(
                executableOnPath("curl") ?? "curl",
                ["-fsS", "http://127.0.0.1:\(ports.http)/api/v1/routes"]
            )
            return routes.succeeded && routes.standardOutput.contains("\(ports.stream)")
        }
    }

    /// An encoder connects while the relay has no pod: the gateway holds it, counts it for KEDA, and asks for one
    /// replica through the Deployment's scale subresource.
    static func checkWake(server: KubernetesTestServer, ports: (stream: Int, http: Int)) async throws {
        let connection = try TestConnection(port: ports.stream)
        defer { connection.close() }
        // The listener opens once the gateway has the route; checkStream waited for it.
        try await eventually("the held connection in /keda/streams/default/alice") {
            let answer = try await run(
                executableOnPath("curl") ?? "curl",
                ["-fsS", "http://127.0.0.1:\(ports.http)/keda/streams/default/alice"]
            )
            return answer.standardOutput.contains(#""held":1"#)
        }
        try await eventually("the relay Deployment scaled to one replica") {
            let deployment = server.object(
                apiVersion: "apps/v1",
                kind: "Deployment",
                namespace: "default",
                name: "ls-alice"
            )
            return deployment?[path: ["spec", "replicas"]]?.intValue == 1
        }
    }
}
