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

/// The repository's root, from this file's place in it.
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// Why the conformance suite cannot run here, or `nil` when it can: it needs kubectl 1.26 or later and curl.
private let conformanceMissing: String? = {
    guard let kubectl = kubectlPath else { return "kubectl is not on PATH" }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    guard path.split(separator: ":").contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/curl") })
    else { return "curl is not on PATH" }
    let process = Process()
    let output = Pipe()
    process.executableURL = URL(fileURLWithPath: kubectl)
    process.arguments = ["version", "--client", "-o", "json"]
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return "kubectl does not run" }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let minor = (try? JSON(data: data))?[path: ["clientVersion", "minor"]]?.stringValue
    guard let number = minor.flatMap({ Int($0.prefix(while: \.isNumber)) }), number >= 26 else {
        return "kubectl 1.\(minor ?? "?") is older than 1.26, which the conformance suite needs"
    }
    return nil
}()

/// tools/conformance.sh, one line per API behaviour the project relies on, compared with
/// tools/conformance.expected (beside the script: a file in a test target's folder would be a resource SwiftPM
/// warns about without a manifest entry): lines written from what kube-apiserver v1.28+ does (its documentation and kubectl's
/// source), not from what the test server prints. Against the test server by default; against the cluster of
/// `LIVERELAY_TEST_KUBECONFIG` when it is set, in a namespace of its own, with the same expected lines. Under
/// `LIVERELAY_REQUIRE_PEERS=1` a missing kubectl (or curl) fails the test instead of skipping it.
@Suite("Conformance: kubectl against the test server (or LIVERELAY_TEST_KUBECONFIG)", .timeLimit(.minutes(5)))
struct ConformanceTests {
    @Test(
        "tools/conformance.sh prints the lines of tools/conformance.expected",
        .enabled(if: peerAvailable(conformanceMissing == nil), "\(conformanceMissing ?? "")")
    )
    func conformance() async throws {
        if let missing = conformanceMissing {
            Issue.record("LIVERELAY_REQUIRE_PEERS=1, and the conformance suite cannot run: \(missing)")
            return
        }
        let expected = try String(
            contentsOfFile: "\(repositoryRoot)/tools/conformance.expected",
            encoding: .utf8
        )
        let output: ProcessExit
        if let cluster = ProcessInfo.processInfo.environment["LIVERELAY_TEST_KUBECONFIG"], !cluster.isEmpty {
            output = try await self.run(kubeconfig: cluster)
        } else {
            output = try await withServer { server, _ in
                try server.installCRDs(directory: "\(repositoryRoot)/crds")
                let kubeconfig = FileManager.default.temporaryDirectory
                    .appendingPathComponent("conformance-\(UUID().uuidString).kubeconfig").path
                try server.writeKubeconfig(to: kubeconfig)
                defer { try? FileManager.default.removeItem(atPath: kubeconfig) }
                return try await self.run(kubeconfig: kubeconfig)
            }
        }
        #expect(output.succeeded, "tools/conformance.sh failed: \(output.standardError)")
        let lines = output.standardOutput.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        let wanted = expected.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        // One expectation per behaviour, so a difference names the behaviour.
        for want in wanted {
            let behaviour = String(want.prefix { $0 != ":" })
            let got = lines.first { $0.hasPrefix(behaviour + ":") }
            #expect(got == want, "\(behaviour)")
        }
        #expect(lines.count == wanted.count, "\(output.standardOutput)")
    }

    private func run(kubeconfig: String) async throws -> ProcessExit {
        let exit = try await withRunningProcess(
            "/bin/bash",
            arguments: ["\(repositoryRoot)/tools/conformance.sh", "--kubeconfig", kubeconfig],
            standardOutput: .capture(limit: 1 << 20)
        ) { process in
            await process.waitForExit(timeout: .seconds(240))
        }
        return try #require(exit, "tools/conformance.sh did not finish in 240 seconds")
    }
}
