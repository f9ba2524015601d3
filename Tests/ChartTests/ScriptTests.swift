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
import PeerTestSupport
import Testing

/// The shell scripts that install liverelay and its images.
let installScripts = ["install-keda.sh", "up.sh", "down.sh", "test-images.sh"]

@Suite("Install scripts", .timeLimit(.minutes(2)))
struct ScriptTests {
    @Test(
        "pass shellcheck",
        .enabled(if: peerAvailable(shellcheckPath != nil), "shellcheck is not installed (Debian package shellcheck)"),
        arguments: installScripts
    )
    func shellcheck(_ script: String) async throws {
        let exit = try await run(shellcheckPath ?? "shellcheck", ["--severity=style", Paths.tool(script)])
        #expect(exit.succeeded, "\(exit.standardOutput)")
    }

    /// Each script, with nothing on `PATH`, names the tool it misses and stops before doing anything.
    @Test(
        "fail with a clear message when a tool is missing",
        arguments: [
            (["install-keda.sh"], "install-keda.sh: kubectl is needed"),
            (["up.sh", "--cluster"], "up.sh: kubectl is needed"),
            (["test-images.sh"], "test-images.sh: buildah is needed"),
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
}
