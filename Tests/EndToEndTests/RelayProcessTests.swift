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

/// What a `liverelay relay` process runs, read from /proc as a person would with `top -H`: on Kubernetes every live
/// stream is one such process, so its threads (each a stack and a malloc arena) are the product's unit cost. These
/// are counts, not timings: a regression that starts a thread the configuration does not need fails here whatever
/// the machine's speed. BENCHMARKS.md ("Relay memory") has what they cost in bytes.
@Suite("The relay process", .serialized, .timeLimit(.minutes(3)))
struct RelayProcessTests {
    /// The process's threads by name (`/proc/PID/task/TID/comm`: Linux keeps 15 bytes of a name).
    static func threadNames(_ pid: Int32) throws -> [String] {
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        return tasks.compactMap { task in
            (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8))
                .map { $0.trimmingCharacters(in: .newlines) }
        }
    }

    /// NIO's shared event loops are named `NIO-SGLTN-<group>-#<loop>`; its shared blocking pool `SGLTN-TP-#<n>`.
    static func eventLoops(_ names: [String]) -> [String] { names.filter { $0.hasPrefix("NIO-SGLTN-") } }
    static func previewThreads(_ names: [String]) -> [String] { names.filter { $0.hasPrefix("preview-") } }

    /// The most threads a one-stream relay may run, live or idle: the main thread, one event loop, the Swift
    /// concurrency pool (libdispatch's, at most one thread per core) and its overcommit threads (the signal handler's
    /// queue), and one preview thread when the preview is on. NIO's default would add a loop per core.
    static let maximumThreads = 4 + 2 * ProcessInfo.processInfo.activeProcessorCount

    /// A stream's LiveStream file with the preview as given and no targets (the test adds one by flag), and its key
    /// Secret beside it, as a pod mounts them. Returns the arguments that point the relay at them.
    static func configuration(in directory: URL, preview: Bool) throws -> [String] {
        let secret = directory.appendingPathComponent("secrets/ingest")
        try FileManager.default.createDirectory(at: secret, withIntermediateDirectories: true)
        try Data(makeTestKey("file").utf8).write(to: secret.appendingPathComponent("streamKey"))
        let file = directory.appendingPathComponent("relay.yaml")
        try Data(
            """
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata:
              name: process
            spec:
              ingest:
                app: live
                streamKeySecretRef: { name: ingest, key: streamKey }
              preview: { enabled: \(preview) }

            """.utf8
        ).write(to: file)
        return ["--config", file.path, "--secrets-dir", directory.appendingPathComponent("secrets").path]
    }

    /// Runs a one-stream relay (its one target the test's nginx-rtmp): `idle` gets its thread names before anyone
    /// publishes, `live` its process ID once nginx-rtmp receives the stream, `ended` the same after the publish.
    static func withOneStreamRelay(
        preview: Bool,
        idle: (_ names: [String]) throws -> Void,
        live: (_ pid: Int32) async throws -> Void,
        ended: (_ pid: Int32) async throws -> Void = { _ in }
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("relay-process-\(makeTestKey())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let arguments = try Self.configuration(in: directory, preview: preview)
        try await withNginxRTMP(applications: ["live"]) { nginx in
            let targetKey = makeTestKey("target")
            try await RelayChildProcess.with(
                targets: [("nginx", nginx.url(app: "live", stream: targetKey))],
                extraArguments: arguments
            ) { relay in
                let pid = relay.process.processIdentifier
                try idle(try Self.threadNames(pid))
                try await FFmpeg.withPublisher(to: relay.publishURL, duration: 8) { ffmpeg in
                    try await nginx.waitForPublishStarted(app: "live", stream: targetKey)
                    try await live(pid)
                    let exit = await ffmpeg.waitForExit()
                    #expect(exit.succeeded, "ffmpeg: \(exit)")
                }
                try await ended(pid)
            }
        }
    }

    static func expectOneStreamThreads(_ names: [String], preview: Int, _ phase: String) {
        #expect(Self.eventLoops(names).count == 1, "\(phase): threads \(names)")
        #expect(Self.previewThreads(names).count == preview, "\(phase): threads \(names)")
        #expect(names.count <= Self.maximumThreads, "\(phase): threads \(names)")
    }

    /// The file names of the libraries `pid` maps (`/proc/PID/maps`).
    static func mappedLibraries(_ pid: Int32) throws -> Set<String> {
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        return Set(
            maps.split(separator: "\n").compactMap { line in
                line.split(separator: " ", omittingEmptySubsequences: true).last.flatMap { path in
                    path.hasPrefix("/") ? String(path.split(separator: "/").last ?? "") : nil
                }
            }
        )
    }

    /// What a relay never loads: WebRTC's OpenSSL and libsrtp2 (with NSS, which Debian's libsrtp2 uses), loaded by
    /// the gateway at its first WHIP session.
    static func expectNoWebRTCLibraries(_ pid: Int32, _ phase: String) throws {
        let loaded = try Self.mappedLibraries(pid).filter {
            $0.hasPrefix("libssl.") || $0.hasPrefix("libcrypto.") || $0.hasPrefix("libsrtp2.")
                || $0.hasPrefix("libnss3.")
        }
        #expect(loaded.isEmpty, "\(phase): \(loaded.sorted())")
    }

    @Test("A one-stream relay with its preview off: one event loop, no preview thread, no WebRTC library loaded")
    func oneStreamPreviewOff() async throws {
        try await Self.withOneStreamRelay(preview: false) { names in
            Self.expectOneStreamThreads(names, preview: 0, "idle")
        } live: { pid in
            Self.expectOneStreamThreads(try Self.threadNames(pid), preview: 0, "live")
            try Self.expectNoWebRTCLibraries(pid, "live")
        }
    }

    @Test("With its preview on, the relay runs one preview thread while a publish is live, and none before or after")
    func oneStreamPreviewOn() async throws {
        try await Self.withOneStreamRelay(preview: true) { names in
            Self.expectOneStreamThreads(names, preview: 0, "idle")
        } live: { pid in
            // The thread takes its name when it starts packaging, a moment after the publish starts.
            let names = try await eventually("a thread named preview-process") {
                let names = try Self.threadNames(pid)
                return Self.previewThreads(names).isEmpty ? nil : names
            }
            Self.expectOneStreamThreads(names, preview: 1, "live")
            #expect(Self.previewThreads(names) == ["preview-process"])
        } ended: { pid in
            try await eventually("the preview thread ends with the publish") {
                Self.previewThreads(try Self.threadNames(pid)).isEmpty
            }
        }
    }

    @Test("--event-loops sets the relay's event loops")
    func eventLoopsFlag() async throws {
        try await RelayChildProcess.with(targets: [], extraArguments: ["--event-loops", "3"]) { relay in
            let names = try Self.threadNames(relay.process.processIdentifier)
            #expect(Self.eventLoops(names).count == 3, "threads: \(names)")
        }
    }
}
