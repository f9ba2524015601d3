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
import Logging
import PeerTestSupport
import Testing

/// The shell scripts that install liverelay and its images, run its tests and check a cluster.
let installScripts = [
    "install-keda.sh", "up.sh", "down.sh", "build-images.sh", "test-images.sh", "test.sh", "e2e-cluster.sh",
]

/// Every shell script in the repository: `tools/*.sh`, the benchmarks' scripts and CI's entry point.
func shellScripts() -> [String] {
    let files = FileManager.default
    var scripts = [Paths.repository.appendingPathComponent(".ci/run").path]
    for directory in ["tools", "Benchmarks/kubernetes"] {
        let path = Paths.repository.appendingPathComponent(directory).path
        let names = (try? files.contentsOfDirectory(atPath: path)) ?? []
        scripts += names.filter { $0.hasSuffix(".sh") }.sorted().map { path + "/" + $0 }
    }
    return scripts
}

@Suite("Install scripts", .timeLimit(.minutes(2)))
struct ScriptTests {
    /// Every shell script of the repository, with the files it sources followed (`-x`) from the repository root,
    /// as a reader running `shellcheck -x` in a checkout sees them.
    @Test(
        "pass shellcheck",
        .enabled(if: peerAvailable(shellcheckPath != nil), "shellcheck is not installed (Debian package shellcheck)"),
        arguments: shellScripts()
    )
    func shellcheck(_ script: String) async throws {
        let exit = try await run(
            shellcheckPath ?? "shellcheck",
            ["--severity=style", "--external-sources", "--source-path=\(Paths.repository.path)", script]
        )
        #expect(exit.succeeded, "\(exit.standardOutput)")
    }

    /// Each script, with nothing on `PATH`, names the tool it misses and stops before doing anything.
    @Test(
        "fail with a clear message when a tool is missing",
        arguments: [
            (["install-keda.sh"], "install-keda.sh: kubectl is needed"),
            (["up.sh", "--cluster"], "up.sh: kubectl is needed"),
            (["test-images.sh"], "test-images.sh: buildah is needed"),
            (["e2e-cluster.sh", "--sink-host", "127.0.0.1"], "e2e-cluster.sh: kubectl is needed"),
        ]
    )
    func missingTool(_ command: [String], _ message: String) async throws {
        let exit = try await run(
            "/usr/bin/env",
            ["PATH=/nonexistent", "/bin/bash", Paths.tool(command[0])] + command.dropFirst()
        )
        #expect(exit.reason == .exited && exit.status == 1, "\(exit)")
        #expect(exit.standardError.contains(message), "\(exit.standardError)")
    }

    @Test("answer --help with their usage", arguments: installScripts)
    func help(_ script: String) async throws {
        let exit = try await run("/bin/bash", [Paths.tool(script), "--help"])
        #expect(exit.succeeded, "\(exit)")
        #expect(exit.standardOutput.contains("Usage: tools/\(script)"), "\(exit.standardOutput)")
    }

    /// tools/down.sh on a cluster whose operator is gone (none runs here): a LiveStream keeps its
    /// liverelay.io/release-port finalizer, which only the operator removes. down.sh deletes it, waits its
    /// --timeout, then removes that finalizer (saying so) and leaves no LiveStream; with --purge-crd it deletes the
    /// CRD last, which then does not hang in Terminating. The release is not installed (the test server keeps no
    /// Helm release), so the uninstall finds nothing to do.
    @Test(
        "down.sh removes LiveStreams whose operator is gone, then the release, then the CRD",
        .enabled(if: peerAvailable(kubectlPath != nil), "kubectl is not installed"),
        .enabled(
            if: peerAvailable(chartToolsAvailable || executableOnPath("helm") != nil),
            "neither helm nor python3 with helm-python is installed"
        ),
        arguments: [false, true]
    )
    func downRemovesStrandedStreams(_ purgeCRD: Bool) async throws {
        var logger = Logger(label: "kube-test-server")
        logger.logLevel = .warning
        try await withTemporaryDirectory("down") { directory in
            try await withKubernetesTestServer(logger: logger) { server in
                try server.installCRD(yaml: String(contentsOfFile: Paths.crd, encoding: .utf8))
                let kubeconfig = "\(directory)/kubeconfig"
                try server.writeKubeconfig(to: kubeconfig)
                let stream = """
                    apiVersion: liverelay.io/v1alpha1
                    kind: LiveStream
                    metadata:
                      name: stranded
                      namespace: default
                      finalizers: ["liverelay.io/release-port"]
                    spec:
                      ingest: { app: live }
                      targets: []
                    """
                try Data(stream.utf8).write(to: URL(fileURLWithPath: "\(directory)/stream.yaml"))
                let kubectl: ([String]) async throws -> ProcessExit = { arguments in
                    try await run(kubectlPath ?? "kubectl", ["--kubeconfig", kubeconfig] + arguments)
                }
                var exit = try await kubectl(["apply", "-f", "\(directory)/stream.yaml"])
                try #require(exit.succeeded, "kubectl apply: \(exit.standardError)")
                // What tools/up.sh records after installing into a cluster: its context and namespace.
                try Data("cluster kube-test-server liverelay-system\n".utf8)
                    .write(to: URL(fileURLWithPath: "\(directory)/up"))

                exit = try await run(
                    "/usr/bin/env",
                    [
                        "KUBECONFIG=\(kubeconfig)", "LIVERELAY_STATE_DIR=\(directory)", "/bin/bash",
                        Paths.tool("down.sh"), "--timeout", "2",
                    ] + (purgeCRD ? ["--purge-crd"] : []),
                    timeout: .seconds(60)
                )
                #expect(exit.succeeded, "down.sh: \(exit)\n\(exit.standardOutput)\n\(exit.standardError)")
                #expect(exit.standardOutput.contains("deleting 1 LiveStream(s)"), "\(exit.standardOutput)")
                #expect(
                    exit.standardError.contains(
                        "removing the finalizer liverelay.io/release-port from LiveStream default/stranded"
                    ),
                    "\(exit.standardError)"
                )
                #expect(exit.standardOutput.contains("no LiveStream remains"), "\(exit.standardOutput)")
                #expect(exit.standardOutput.contains("liverelay uninstalled"), "\(exit.standardOutput)")

                exit = try await kubectl(["get", "crd", "livestreams.liverelay.io", "-o", "name"])
                if purgeCRD {
                    #expect(!exit.succeeded && exit.standardError.contains("NotFound"), "\(exit.standardError)")
                } else {
                    #expect(exit.succeeded, "the CRD stays without --purge-crd: \(exit.standardError)")
                    exit = try await kubectl(["get", "livestreams", "--all-namespaces", "-o", "name"])
                    #expect(exit.succeeded && exit.standardOutput.isEmpty, "\(exit)\n\(exit.standardOutput)")
                }
                #expect(!FileManager.default.fileExists(atPath: "\(directory)/up"))
            }
        }
    }
}
