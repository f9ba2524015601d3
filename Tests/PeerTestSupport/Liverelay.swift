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

/// The `liverelay` executable built beside the test bundle.
public func liverelayExecutable() throws -> String {
    let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    let path = URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("liverelay").path
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw PeerError.executableNotFound("liverelay (build the package with `swift build` first)", searched: [path])
    }
    return path
}

private func randomHex() -> String { String(UInt64.random(in: 0...UInt64.max), radix: 16) }

/// A `liverelay relay` child process on 127.0.0.1 with ephemeral ports, one stream (app `live`) and the given targets.
public struct RelayChildProcess: Sendable {
    public let process: RunningProcess
    public let rtmpPort: Int
    public let httpPort: Int
    public let streamKey: String

    public var publishURL: String { "rtmp://127.0.0.1:\(self.rtmpPort)/live/\(self.streamKey)" }

    private struct Announcement: Decodable {
        var rtmpPort: Int
        var httpPort: Int
    }

    /// Runs the relay for the duration of `body`, then stops it (SIGTERM) and waits for it to exit. Publishers give
    /// `streamKey`, or, with `webhook`, any name the webhook admits (`publishURL` then names `streamKey`).
    public static func with<Result>(
        targets: [(name: String, url: String)],
        webhook: String? = nil,
        extraArguments: [String] = [],
        _ body: (RelayChildProcess) async throws -> Result
    ) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("liverelay-relay-\(randomHex())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = "ingest-" + randomHex()
        let keyFile = directory.appendingPathComponent("key").path
        try Data(key.utf8).write(to: URL(fileURLWithPath: keyFile))
        var arguments = [
            "relay", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--announce", "--app", "live",
            "--log-level", "warning",
        ]
        arguments += webhook.map { ["--webhook", $0] } ?? ["--stream-key-file", keyFile]
        for target in targets {
            arguments += ["--target", "\(target.name)=\(target.url)"]
        }
        // Ended (killed) by `withRunningProcess` if `body` throws; stopped as a supervisor would when it returns.
        return try await withRunningProcess(
            try liverelayExecutable(),
            arguments: arguments + extraArguments,
            standardOutput: .capture(limit: 64 * 1024)
        ) { process in
            guard await process.waitForOutput(containing: "\n") else {
                throw PeerError.startFailed(
                    "liverelay relay did not announce its ports: \(process.standardOutputSoFar)"
                        + process.standardErrorSoFar
                )
            }
            let line = process.standardOutputSoFar.split(separator: "\n").first.map(String.init) ?? ""
            let announced = try JSONDecoder().decode(Announcement.self, from: Data(line.utf8))
            let relay = RelayChildProcess(
                process: process,
                rtmpPort: announced.rtmpPort,
                httpPort: announced.httpPort,
                streamKey: key
            )
            let result = try await body(relay)
            process.terminate()
            _ = await process.waitForExit(timeout: .seconds(30))
            return result
        }
    }
}
