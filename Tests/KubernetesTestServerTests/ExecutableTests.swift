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

/// The `kube-test-server` program next to the test bundle, when SwiftPM has built it.
let kubeTestServerPath: String? = {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [directory, directory.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("kube-test-server").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}()

@Suite(
    "kube-test-server",
    .enabled(if: peerAvailable(kubeTestServerPath != nil), "kube-test-server is not built"),
    .timeLimit(.minutes(1))
)
struct ExecutableTests {
    @Test("serves with CRDs from a directory, writes a kubeconfig, and exits cleanly on SIGTERM")
    func run() async throws {
        let executable = try #require(
            kubeTestServerPath,
            "kube-test-server is not built beside the test bundle (swift build --product kube-test-server)"
        )
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kts-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: "\(directory)/crds", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(widgetCRD.utf8).write(to: URL(fileURLWithPath: "\(directory)/crds/widgets.yaml"))
        let kubeconfig = "\(directory)/kubeconfig"
        try await withRunningProcess(
            executable,
            arguments: ["--port", "0", "--crd", "\(directory)/crds", "--kubeconfig-out", kubeconfig]
        ) { process in
            var text = ""
            for _ in 0..<100 where text.isEmpty {
                text = (try? String(contentsOfFile: kubeconfig, encoding: .utf8)) ?? ""
                if text.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
            }
            let server = try #require(
                text.split(separator: "\n").first { $0.contains("server: ") }?.split(separator: " ").last.map(
                    String.init
                )
            )
            #expect(server.hasPrefix("http://127.0.0.1:"))
            let client = TestClient(baseURL: server)
            #expect(try await client.get("/apis/example.com/v1").status == 200)
            process.terminate()
            let exit = await process.waitForExit(timeout: .seconds(20))
            #expect(exit?.succeeded == true, "\(exit?.standardError ?? "did not exit")")
        }
    }
}
