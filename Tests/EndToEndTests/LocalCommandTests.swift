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

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import PeerTestSupport
import Testing

/// `liverelay local` as a person runs it: the executable, the example file as it is in the repository, Ctrl-C.
@Suite("liverelay local, the command", .serialized, .timeLimit(.minutes(3)))
struct LocalCommandTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// The demo key of examples/streams.yaml, read from the file as a person would copy it.
    static func exampleKey() throws -> String {
        let text = try String(contentsOfFile: Self.repository + "/examples/streams.yaml", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.contains("streamKey: ") && !$0.contains("{") })
        else {
            throw TestFailure("no demo key in examples/streams.yaml")
        }
        return String(line.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces)
    }

    /// Runs the README's first command on examples/streams.yaml with a free ingest port and a state directory of its
    /// own, and with the HTTP listener as the README's command has it (on an ephemeral port here).
    private func withExampleLocalMode(
        _ body: (_ local: RunningProcess, _ port: Int) async throws -> Void
    ) async throws {
        let port = try freeTCPPort()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("liverelay-cli-\(makeTestKey("t"))")
            .path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let local = try RunningProcess.launch(
            try liverelayExecutable(),
            arguments: [
                "local", "-f", Self.repository + "/examples/streams.yaml", "--listen-host", "127.0.0.1",
                "--port-range", "\(port)-\(port)", "--http-listen", "127.0.0.1:0", "--state-dir", state,
                "--webrtc-udp-port", "0",
            ],
            standardOutput: .capture(limit: 256 * 1024)
        )
        try await body(local, port)
    }

    @Test("The README's first command serves examples/streams.yaml as it is, takes a publish, and stops on Ctrl-C")
    func readmeCommand() async throws {
        try await self.withExampleLocalMode { local, port in
            let ingest = "default/demo: ingest rtmp://127.0.0.1:\(port)/live"
            #expect(
                await local.waitForOutput(containing: ingest),
                "no ingest URL printed: \(local.standardOutputSoFar)"
            )
            #expect(await local.waitForOutput(containing: "gateway listens on \(port)"))
            // WHIP beside RTMP, on the HTTP listener.
            #expect(await local.waitForOutput(containing: "default/demo: WHIP (WebRTC) ingest http://127.0.0.1:"))

            // The console is at / of the HTTP listener, printed with its first admin's password (once).
            #expect(await local.waitForOutput(containing: "liverelay local: console http://127.0.0.1:"))
            #expect(local.standardOutputSoFar.contains("console user admin created"))
            #expect(local.standardOutputSoFar.contains("password (shown once): "))
            let console = try #require(
                local.standardOutputSoFar.split(separator: "\n").first {
                    $0.hasPrefix("liverelay local: console http")
                }?
                .split(separator: " ").last.map(String.init)
            )
            let page = try await HTTPClient.shared.execute(HTTPClientRequest(url: console), timeout: .seconds(10))
            #expect(page.status == .ok)
            let html = String(buffer: try await page.body.collect(upTo: 1 << 20))
            #expect(html.contains("<title>liverelay console</title>"))

            // A publisher gets through; the example's target (127.0.0.1:1936) need not exist for that.
            let publish = try FFmpeg.publish(to: "rtmp://127.0.0.1:\(port)/live/\(try Self.exampleKey())", duration: 2)
            let published = await publish.waitForExit()
            #expect(published.succeeded, "ffmpeg failed: \(published)")
            #expect(await local.waitForOutput(containing: "default/demo: relay ready"))

            local.interrupt()
            let exit = await local.waitForExit()
            #expect(exit.succeeded, "liverelay local did not exit cleanly on Ctrl-C: \(exit)")
            #expect(exit.standardOutput.contains("default/demo: relay stopped (shutdown)"))
            // Every relay it started has exited with it.
            for line in exit.standardOutput.split(separator: "\n") where line.contains("relay starting (pid ") {
                let pid = Int32(line.split(separator: "pid ")[1].prefix { $0.isNumber })!
                #expect(kill(pid, 0) != 0, "relay \(pid) outlived local mode")
            }
        }
    }

    @Test("Ctrl-C before any encoder came exits cleanly, the HTTP listener included")
    func interruptWhileIdle() async throws {
        try await self.withExampleLocalMode { local, port in
            #expect(await local.waitForOutput(containing: "gateway listens on \(port)"))
            local.interrupt()
            let exit = await local.waitForExit()
            #expect(exit.succeeded, "liverelay local did not exit cleanly on Ctrl-C: \(exit)")
            #expect(!exit.standardError.contains("Error"), "\(exit.standardError)")
        }
    }

    @Test("A file with a mistake is refused before anything listens, naming the document and the field")
    func invalidFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "liverelay-cli-\(makeTestKey("t"))"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("streams.yaml").path
        try """
        apiVersion: liverelay.io/v1alpha1
        kind: LiveStream
        metadata: { name: demo }
        spec:
          targets: [ { name: yt, url: "http://example.com/live" } ]
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let exit = try await RunningProcess.launch(
            try liverelayExecutable(),
            arguments: ["local", "-f", file, "--http-listen", "none", "--state-dir", directory.path + "/state"]
        ).waitForExit()
        #expect(exit.status != 0)
        #expect(
            exit.standardError.contains("document 1: LiveStream demo is invalid: spec.targets[0].url: must be a URL"),
            "\(exit.standardError)"
        )
    }

    @Test("A certificate that cannot be used is refused before anything listens, naming the file")
    func unusableCertificate() async throws {
        let (certificate, exit) = try await TestCertificate.withTemporary { certificate, directory in
            // The certificate given as its own key: no PEM private key in it.
            let exit = try await RunningProcess.launch(
                try liverelayExecutable(),
                arguments: [
                    "local", "-f", Self.repository + "/examples/streams.yaml", "--http-listen", "none", "--port-range",
                    "20000-59999", "--state-dir", directory + "/state", "--tls-cert", certificate.certificate,
                    "--tls-key", certificate.certificate,
                ]
            ).waitForExit()
            return (certificate, exit)
        }
        #expect(exit.status != 0)
        #expect(
            exit.standardError.contains(
                "cannot use the certificate for rtmps://: \(certificate.certificate) holds no PEM private key"
            ),
            "\(exit.standardError)"
        )
    }
}
