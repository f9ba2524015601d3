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

/// Paths of the repository, its chart and scripts, and the shared schemas beside it.
enum Paths {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let chart = repository.appendingPathComponent("charts/liverelay").path
    static let crd = repository.appendingPathComponent("crds/livestream.yaml").path
    static let chartCRD = repository.appendingPathComponent("charts/liverelay/crds/livestream.yaml").path
    static let renderer = repository.appendingPathComponent("tools/render-chart.py").path
    static let validator = repository.appendingPathComponent("tools/validate-manifests.py").path
    static let examples = repository.appendingPathComponent("examples/kubernetes").path
    static let kedaCRD = repository.deletingLastPathComponent()
        .appendingPathComponent("shared/schemas/keda.sh_scaledobjects.yaml").path

    static func tool(_ name: String) -> String { repository.appendingPathComponent("tools/\(name)").path }
}

/// The first executable called `name` on `PATH`.
func executableOnPath(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Whether a test that needs a peer runs: when the peer is there, and always under `LIVERELAY_REQUIRE_PEERS=1`
/// (tools/test.sh), where a missing peer fails the test, saying what is missing, instead of skipping it.
func peerAvailable(_ available: Bool) -> Bool {
    available || ProcessInfo.processInfo.environment["LIVERELAY_REQUIRE_PEERS"] == "1"
}

let python3Path = executableOnPath("python3")
let kubectlPath = executableOnPath("kubectl")
let shellcheckPath = executableOnPath("shellcheck")

/// Whether python3 can import the Helm library and the Kubernetes schemas the chart tests need.
let chartToolsAvailable: Bool = {
    guard let python = python3Path else { return false }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = ["-c", "import helm_python, kubernetes_validate, jsonschema, yaml"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}()

/// The `liverelay` executable SwiftPM built beside the test bundle, if it did.
let liverelayPath: String? = {
    guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
        return nil
    }
    let directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
    for candidate in [directory, directory.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("liverelay").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}()

/// Runs a program to completion and returns how it ended.
func run(
    _ executable: String,
    _ arguments: [String],
    timeout: Duration = .seconds(120)
) async throws -> ProcessExit {
    let exit = try await withRunningProcess(
        executable,
        arguments: arguments,
        standardOutput: .capture(limit: 1 << 20),
        standardError: .capture(limit: 1 << 20)
    ) { process in
        await process.waitForExit(timeout: timeout)
    }
    return try #require(exit, "\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
}

/// A temporary directory, removed when `body` returns or throws.
func withTemporaryDirectory<T>(_ prefix: String, _ body: (String) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory.path)
}

/// The chart rendered by the Helm library into `directory`: one object per file, and NOTES.txt.
struct RenderedChart: Sendable {
    let directory: String
    /// What `helm install` creates.
    let objects: [JSON]
    /// Helm hooks (in `directory/hooks`), created only at their event: `helm uninstall`'s teardown Job.
    let hooks: [JSON]
    let notes: String

    func objects(_ kind: String) -> [JSON] {
        self.objects.filter { $0["kind"]?.stringValue == kind }
    }

    func object(_ kind: String, _ name: String) -> JSON? {
        self.objects(kind).first { $0[path: ["metadata", "name"]]?.stringValue == name }
    }

    func hook(_ kind: String, _ name: String) -> JSON? {
        self.hooks.first { $0["kind"]?.stringValue == kind && $0[path: ["metadata", "name"]]?.stringValue == name }
    }

    /// The container of the Deployment `name`.
    func container(_ deployment: String) -> JSON? {
        self.object("Deployment", deployment)?[path: ["spec", "template", "spec", "containers"]]?.arrayValue?.first
    }

    /// The arguments of the Deployment `name`'s container.
    func arguments(_ deployment: String) -> [String] {
        self.container(deployment)?["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// The value of `--flag=value` in the Deployment's arguments, or `nil`.
    func flag(_ deployment: String, _ flag: String) -> String? {
        self.arguments(deployment).first { $0.hasPrefix("\(flag)=") }.map { String($0.dropFirst(flag.count + 1)) }
    }
}

/// Renders the chart with `sets` (`helm --set` expressions) and, unless `lint` is false, Helm's strict lint, then
/// runs `body` with the result. The rendered files are removed afterwards.
func withRenderedChart<T>(
    _ sets: [String] = [],
    release: String = "liverelay",
    namespace: String = "liverelay-system",
    crds: Bool = true,
    lint: Bool = true,
    _ body: (RenderedChart) async throws -> T
) async throws -> T {
    try #require(
        chartToolsAvailable,
        "python3 cannot import helm_python, kubernetes_validate, jsonschema and yaml (tools/test.sh installs them)"
    )
    return try await withTemporaryDirectory("chart") { directory in
        var arguments = [Paths.renderer, "--output", directory, "--namespace", namespace, "--name", release]
        if crds { arguments.append("--crds") }
        if lint { arguments.append("--lint") }
        for set in sets { arguments += ["--set", set] }
        arguments.append(Paths.chart)
        let exit = try await run(python3Path ?? "python3", arguments)
        try #require(exit.succeeded, "render-chart.py \(sets) failed: \(exit)")
        func documents(in directory: String) throws -> [JSON] {
            var objects: [JSON] = []
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for file in files.sorted() where file.hasSuffix(".yaml") {
                objects += try JSON.documents(yaml: String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8))
            }
            return objects
        }
        let notes = (try? String(contentsOfFile: "\(directory)/NOTES.txt", encoding: .utf8)) ?? ""
        return try await body(
            RenderedChart(
                directory: directory,
                objects: try documents(in: directory),
                hooks: try documents(in: "\(directory)/hooks"),
                notes: notes
            )
        )
    }
}

/// Validates every file in `directory` (and its `hooks/`, if any) against the official Kubernetes schemas (and our
/// and KEDA's CRDs).
func validateManifests(_ directory: String) async throws -> ProcessExit {
    var directories = [directory]
    if FileManager.default.fileExists(atPath: "\(directory)/hooks") { directories.append("\(directory)/hooks") }
    return try await run(
        python3Path ?? "python3",
        [Paths.validator, "--crd", Paths.kedaCRD, "--crd", Paths.crd] + directories
    )
}
