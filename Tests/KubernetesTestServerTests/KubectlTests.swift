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
import PeerTestSupport
import Testing

/// Whether `kubectl` is on `PATH`; the kubectl tests are skipped, with this reason, when it is not.
let kubectlPath: String? = {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    return path.split(separator: ":").map { "\($0)/kubectl" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}()

/// Runs the real kubectl against the test server: the proof that the server's API is close enough to the real one.
@Suite("kubectl", .enabled(if: kubectlPath != nil, "kubectl is not on PATH"), .timeLimit(.minutes(2)))
final class KubectlTests {
    let directory: String

    init() throws {
        self.directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("kubectl-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = "\(self.directory)/\(name)"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Runs `kubectl ARGS` to completion and returns how it ended, output captured.
    func kubectl(_ kubeconfig: String, _ arguments: [String]) async throws -> ProcessExit {
        let exit = try await withRunningProcess(
            kubectlPath ?? "kubectl",
            arguments: ["--kubeconfig", kubeconfig] + arguments,
            standardOutput: .capture(limit: 1 << 20)
        ) { process in
            await process.waitForExit(timeout: .seconds(45))
        }
        return try #require(exit, "kubectl \(arguments.joined(separator: " ")) did not finish")
    }

    /// Waits until the file at `path` contains `text`.
    func waitForFile(_ path: String, toContain text: String) async throws -> Bool {
        for _ in 0..<100 {
            if let content = try? String(contentsOfFile: path, encoding: .utf8), content.contains(text) { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test("apply --server-side a CRD and a custom resource, get, get -o json, get -w, wait, delete")
    func lifecycle() async throws {
        try await withServer { server, client in
            let kubeconfig = "\(self.directory)/kubeconfig"
            try server.writeKubeconfig(to: kubeconfig)
            let crd = try self.write("crd.yaml", widgetCRD)
            let resource = try self.write(
                "cr.yaml",
                """
                apiVersion: example.com/v1
                kind: Widget
                metadata: { name: w1 }
                spec: { size: 3 }
                """
            )
            let unknown = try self.write(
                "unknown.yaml",
                """
                apiVersion: example.com/v1
                kind: Widget
                metadata: { name: w2 }
                spec: { size: 3, unknownField: 1 }
                """
            )

            let applyCRD = try await self.kubectl(kubeconfig, ["apply", "--server-side", "-f", crd])
            #expect(applyCRD.succeeded, "\(applyCRD.standardError)")
            #expect(applyCRD.standardOutput.contains("widgets.example.com serverside-applied"))
            let applyCR = try await self.kubectl(kubeconfig, ["apply", "--server-side", "-f", resource])
            #expect(applyCR.succeeded, "\(applyCR.standardError)")
            #expect(applyCR.standardOutput.contains("widget.example.com/w1 serverside-applied"))
            // Applying again is a no-op, not a conflict.
            #expect(try await self.kubectl(kubeconfig, ["apply", "--server-side", "-f", resource]).succeeded)
            // kubectl asks for strict field validation, so an unknown field is an error, as on a real cluster.
            let strict = try await self.kubectl(kubeconfig, ["apply", "--server-side", "-f", unknown])
            #expect(!strict.succeeded)
            #expect(strict.standardError.contains("unknown field \"spec.unknownField\""))

            let table = try await self.kubectl(kubeconfig, ["get", "widgets"])
            #expect(table.succeeded, "\(table.standardError)")
            let header = table.standardOutput.split(separator: "\n").first.map(String.init) ?? ""
            #expect(header.split(separator: " ", omittingEmptySubsequences: true) == ["NAME", "SIZE", "READY", "AGE"])
            #expect(table.standardOutput.contains("w1"))

            let json = try await self.kubectl(kubeconfig, ["get", "widgets", "-o", "json"])
            #expect(json.succeeded, "\(json.standardError)")
            let list = try JSON(data: Data(json.standardOutput.utf8))
            #expect(list["items"]?.arrayValue?.first?.name == "w1")
            #expect(list["items"]?.arrayValue?.count == 1)

            // get -w prints a line per change.
            let watchOutput = "\(self.directory)/watch.out"
            try await withRunningProcess(
                kubectlPath ?? "kubectl",
                arguments: ["--kubeconfig", kubeconfig, "get", "widgets", "-w"],
                standardOutput: .file(watchOutput)
            ) { watch in
                #expect(try await self.waitForFile(watchOutput, toContain: "w1"))
                _ = try await client.patch("\(widgets)/w1", ["spec": ["size": 7]])
                #expect(
                    try await self.waitForFile(watchOutput, toContain: "7"),
                    "kubectl get -w did not print the change"
                )
                watch.kill()
            }

            // wait sees a condition set while it waits.
            let waitResult = try await withRunningProcess(
                kubectlPath ?? "kubectl",
                arguments: ["--kubeconfig", kubeconfig, "wait", "--for=condition=Ready", "widget/w1", "--timeout=30s"],
                standardOutput: .capture(limit: 1 << 16)
            ) { wait in
                try await Task.sleep(for: .milliseconds(500))
                let status: JSON = ["status": ["conditions": [["type": "Ready", "status": "True"]]]]
                #expect(try await client.patch("\(widgets)/w1/status", status).status == 200)
                return await wait.waitForExit(timeout: .seconds(40))
            }
            #expect(waitResult?.succeeded == true, "\(waitResult?.standardError ?? "timed out")")
            #expect(waitResult?.standardOutput.contains("condition met") == true)

            let deleted = try await self.kubectl(kubeconfig, ["delete", "widget", "w1"])
            #expect(deleted.succeeded, "\(deleted.standardError)")
            #expect(try await client.get("\(widgets)/w1").status == 404)
        }
    }

    @Test("kubectl create secret generic, configmap and namespace: typed creates, in protobuf from kubectl 1.32")
    func typedCreate() async throws {
        try await withServer { server, client in
            let kubeconfig = "\(self.directory)/kubeconfig-typed"
            try server.writeKubeconfig(to: kubeconfig)
            // -v=8 logs the request headers: the proof of which encoding kubectl chose.
            let secret = try await self.kubectl(
                kubeconfig,
                ["create", "secret", "generic", "x", "--from-literal=k=v", "--type=Opaque", "-v=8"]
            )
            #expect(secret.succeeded, "\(secret.standardError)")
            let stored = try await client.get("/api/v1/namespaces/default/secrets/x").body
            #expect(stored["data"] == ["k": "dg=="])
            #expect(stored["type"] == "Opaque")
            #expect(
                stored.managedFields("kubectl-create", "Update")?["fieldsV1"] == [
                    "f:data": [".": [:], "f:k": [:]], "f:type": [:],
                ]
            )
            let configMap = try await self.kubectl(
                kubeconfig,
                ["create", "configmap", "c", "--from-literal=url=rtmp://h/app", "-v=8"]
            )
            #expect(configMap.succeeded, "\(configMap.standardError)")
            #expect(
                try await client.get("/api/v1/namespaces/default/configmaps/c").body["data"] == ["url": "rtmp://h/app"]
            )
            let namespace = try await self.kubectl(kubeconfig, ["create", "namespace", "team-a", "-v=8"])
            #expect(namespace.succeeded, "\(namespace.standardError)")
            #expect(try await client.get("/api/v1/namespaces/team-a").body[path: ["status", "phase"]] == "Active")
            let version = try await self.kubectl(kubeconfig, ["version", "--client", "-o", "json"])
            let minor = try JSON(data: Data(version.standardOutput.utf8))[path: ["clientVersion", "minor"]]?.stringValue
            if let minor = minor.flatMap({ Int($0.prefix(while: \.isNumber)) }), minor >= 32 {
                for exit in [secret, configMap, namespace] {
                    #expect(exit.standardError.contains("Content-Type: application/vnd.kubernetes.protobuf"))
                }
            }
        }
    }

    @Test("HTTPS with the CA in the kubeconfig, and a bearer token")
    func tls() async throws {
        try await withServer(.init(tls: true, bearerToken: "t0ken")) { server, _ in
            #expect(server.baseURL.hasPrefix("https://127.0.0.1:"))
            let kubeconfig = "\(self.directory)/kubeconfig-tls"
            try server.writeKubeconfig(to: kubeconfig)
            let namespaces = try await self.kubectl(kubeconfig, ["get", "namespaces", "-o", "name"])
            #expect(namespaces.succeeded, "\(namespaces.standardError)")
            #expect(namespaces.standardOutput.contains("namespace/default"))
        }
    }
}
