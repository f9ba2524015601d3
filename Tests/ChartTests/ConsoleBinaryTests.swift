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
import KubernetesTestServer
import KubernetesTestSupport
import PeerTestSupport
import Testing

@Suite(
    "The chart's console runs: its arguments, the binary, the users command",
    .enabled(
        if: peerAvailable(chartToolsAvailable),
        "python3 with helm-python and kubernetes-validate is not installed"
    ),
    .timeLimit(.minutes(2))
)
struct ConsoleBinaryTests {
    /// The console Deployment's arguments, run by the real binary against the test server (the kubeconfig in place
    /// of the pod's service account); the first admin added as the chart's notes say; then signed in over HTTP.
    @Test("liverelay console with the chart's arguments serves; the users command's admin signs in, or its proxy")
    func chartArgumentsServe() async throws {
        try await withRenderedChart(
            ["console.enabled=true", "console.trustedProxy.sourceRanges={127.0.0.0/8}"],
            crds: false,
            lint: false
        ) { chart in
            try await withTestServer { server, _ in
                try server.installCRD(yaml: String(contentsOfFile: Paths.crd, encoding: .utf8))
                _ = try server.apply([
                    "apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "liverelay-system"],
                ])
                for object in chart.objects { _ = try server.apply(object) }
                let directory = FileManager.default.temporaryDirectory
                    .appendingPathComponent("liverelay-console-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: directory) }
                let kubeconfig = directory.appendingPathComponent("kubeconfig").path
                try server.writeKubeconfig(to: kubeconfig)
                let binary = try liverelayExecutable()

                // The chart's notes: `liverelay console users add NAME --admin --namespace NS --users-secret ...`.
                let usersSecret = try #require(
                    chart.arguments("liverelay-console").first { $0.hasPrefix("--users-secret=") }
                )
                let add = try await RunningProcess.launch(
                    binary,
                    arguments: [
                        "console", "users", "add", "root", "--admin", "--namespace", "default", usersSecret,
                        "--kubeconfig", kubeconfig,
                    ],
                    standardOutput: .capture(limit: 4096)
                ).waitForExit()
                #expect(add.succeeded, "\(add)")
                let password = try #require(
                    add.standardOutput.split(separator: "\n").first { $0.hasPrefix("password (shown once): ") }?
                        .dropFirst("password (shown once): ".count)
                )

                // The Deployment's arguments, but for the pod's service account and the listen address.
                let port = try freeTCPPort()
                var arguments = chart.arguments("liverelay-console").filter { $0 != "--in-cluster" }
                arguments = arguments.map { $0.hasPrefix("--http-listen=") ? "--http-listen=127.0.0.1:\(port)" : $0 }
                #expect(arguments.first == "console")
                let console = try RunningProcess.launch(binary, arguments: arguments + ["--kubeconfig", kubeconfig])
                defer { console.kill() }
                let base = "http://127.0.0.1:\(port)"
                try await eventually("the console ready") {
                    try await Self.curl(["-o", "/dev/null", "-w", "%{http_code}", "\(base)/readyz"]) == "200"
                }
                let signIn = try await Self.curl([
                    "-i", "-X", "POST", "-H", "Content-Type: application/json",
                    "--data", #"{"username":"root","password":"\#(password)"}"#, "\(base)/api/session",
                ])
                #expect(signIn.hasPrefix("HTTP/1.1 200"), "\(signIn.prefix(200))")
                #expect(signIn.lowercased().contains("set-cookie: liverelay_session="))
                let wrong = try await Self.curl([
                    "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", "Content-Type: application/json",
                    "--data", #"{"username":"root","password":"not-it"}"#, "\(base)/api/session",
                ])
                #expect(wrong == "401")
                // The trusted proxy's header, from its range (the console sees the client's address): a session.
                let proxied = try await Self.curl(["-i", "-H", "X-Forwarded-User: root", "\(base)/api/session"])
                #expect(proxied.hasPrefix("HTTP/1.1 200"), "\(proxied.prefix(200))")
                #expect(proxied.lowercased().contains("set-cookie: liverelay_session="))
                console.terminate()
                let exit = await console.waitForExit()
                #expect(exit.succeeded, "\(exit)")
                #expect(!exit.standardError.contains(String(password)))
            }
        }
    }

    static func curl(_ arguments: [String]) async throws -> String {
        let exit = try await RunningProcess.launch(
            "curl",
            arguments: ["-s", "--max-time", "10"] + arguments,
            standardOutput: .capture(limit: 64 * 1024)
        ).waitForExit()
        return exit.standardOutput
    }
}
