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
import IngestTLS
import LiveStreamModel
import NIOCore
import PeerTestSupport
import Testing

@testable import Gateway

/// `rtmps://` ingest: the gateway terminates TLS on the ports it already has, told apart from `rtmp://` by the first
/// byte. The relay behind it is nginx-rtmp here (the gateway proxies RTMP to whatever serves it), and ffmpeg is the
/// encoder, as a streamer's would be.
@Suite("Gateway rtmps:// ingest", .timeLimit(.minutes(2)))
struct IngestTLSTests {
    /// A key made for one test; never a real one.
    private static func testKey() -> String {
        "test-\(UInt64.random(in: 0...UInt64.max))"
    }

    private static func tls(
        _ certificate: TestCertificate,
        reloadInterval: Duration = .seconds(30)
    ) -> IngestTLSConfiguration {
        IngestTLSConfiguration(
            certificateChainFile: certificate.certificate,
            privateKeyFile: certificate.key,
            reloadInterval: reloadInterval
        )
    }

    enum Port: String, CaseIterable, Sendable {
        /// The stream's own port.
        case own
        /// The shared ingest port, which routes by key.
        case shared
    }

    @Test(
        "ffmpeg publishes with rtmps://, then with rtmp://, on one port; both streams arrive whole",
        arguments: Port.allCases
    )
    func rtmpsAndRTMP(_ port: Port) async throws {
        try await TestCertificate.withTemporary { certificate, _ in
            try await withNginxRTMP(applications: ["live"]) { nginx in
                let tls = Self.tls(certificate)
                let key = Self.testKey()
                let ownPort = try freeTCPPort()
                let shared = port == .shared ? try freeTCPPort() : nil
                let route = try route(
                    port: ownPort,
                    upstream: nginx.rtmpPort,
                    ingestKey: .init(app: "live", key: key)
                )
                let logs = LogStore()
                try await withGateway(
                    routes: [route],
                    configuration: .test(sharedIngestPort: shared, tls: tls),
                    logs: logs
                ) { gateway, _ in
                    for (count, scheme) in ["rtmps", "rtmp"].enumerated() {
                        let url = "\(scheme)://127.0.0.1:\(shared ?? ownPort)/live/\(key)"
                        let exit = try await FFmpeg.publish(to: url, duration: 3).waitForExit()
                        // ffmpeg's output names the URL, key included: only the outcome is printed.
                        #expect(exit.succeeded, "ffmpeg failed to publish with \(scheme)://")
                        try await nginx.waitForPublishEnded(app: "live", stream: key, count: count + 1)
                        let info = try await FFprobe.inspect(nginx.recordingPath(app: "live", stream: key))
                        let frames = info.video?.frameCount ?? 0
                        #expect(frames >= 70, "\(scheme)://: \(frames) video frames of 75 arrived")
                        #expect(info.audio != nil, "\(scheme)://: no audio arrived")
                    }
                    await gateway.waitForConnections(of: testStream) { live, held in live == 0 && held == 0 }
                    let statistics = try #require(gateway.statistics(for: testStream))
                    #expect(statistics.bytesIn > 100_000, "both publishes were counted for the stream")
                }
                #expect(!logs.all.contains { $0.contains(key) }, "a key appeared in the log")
                #expect(!logs.contains("Connection refused"), "\(logs.all.filter { $0.contains("refused") })")
            }
        }
    }

    @Test("A TLS client on a gateway without a certificate is refused, and the log says how to fix it")
    func noCertificate() async throws {
        let port = try freeTCPPort()
        let logs = LogStore()
        try await withGateway(routes: [try route(port: port)], logs: logs) { gateway, _ in
            let exit = try await FFmpeg.publish(to: "rtmps://127.0.0.1:\(port)/live/\(Self.testKey())", duration: 2)
                .waitForExit()
            #expect(!exit.succeeded)
            #expect(
                logs.contains(
                    "Connection refused",
                    "TLS client (rtmps://) but no certificate: publish with rtmp://, or give the gateway one"
                )
            )
            await gateway.waitForConnections(of: testStream) { live, held in live == 0 && held == 0 }
        }
    }

    @Test("A TLS handshake that fails is refused with the reason; the port serves on")
    func badHandshake() async throws {
        try await TestCertificate.withTemporary { certificate, _ in
            let tls = Self.tls(certificate)
            let port = try freeTCPPort()
            let logs = LogStore()
            // A ready route (to an echo server), so that a client that completes its handshake and leaves is not held.
            try await withUpstream(echo) { upstream in
                try await withGateway(
                    routes: [try route(port: port, upstream: upstream)],
                    configuration: .test(tls: tls),
                    logs: logs
                ) { _, _ in
                    // A TLS record header (handshake, TLS 1.0, 16 bytes) around bytes that are no ClientHello.
                    let connection = try await connect(port: port)
                    try await connection.executeThenClose { inbound, outbound in
                        var garbage = ByteBuffer(bytes: [22, 3, 1, 0, 16])
                        garbage.writeBytes(Array(repeating: UInt8(0xEE), count: 16))
                        try await outbound.write(garbage)
                        _ = await readToEnd(inbound)
                    }
                    #expect(logs.contains("Connection refused", "TLS handshake failed"), "\(logs.all)")
                    #expect(try await TestCertificate.presented(atPort: port) == "localhost", "the port serves TLS on")
                }
            }
        }
    }

    @Test("A renewed certificate is used for new connections; a broken renewal is logged and the old one kept")
    func reload() async throws {
        try await TestCertificate.withTemporary(commonName: "first") { certificate, _ in
            let tls = Self.tls(certificate, reloadInterval: .milliseconds(50))
            let port = try freeTCPPort()
            let logs = LogStore()
            let (reloads, reloaded) = AsyncStream.makeStream(of: IngestTLSReload.self)
            try await withUpstream(echo) { upstream in
                try await withGateway(
                    routes: [try route(port: port, upstream: upstream)],
                    configuration: .test(tls: tls),
                    logs: logs,
                    onCertificateReload: { reloaded.yield($0) }
                ) { _, _ in
                    var events = reloads.makeAsyncIterator()
                    #expect(try await TestCertificate.presented(atPort: port) == "first")

                    // A renewal writes the key, then the certificate: a look in between may see them mismatched.
                    try await TestCertificate.make(
                        certificate: tls.certificateChainFile,
                        key: tls.privateKeyFile,
                        commonName: "second"
                    )
                    while let event = await events.next() {
                        if case .reloaded(let summary) = event, summary.contains("second") {
                            break
                        }
                    }
                    #expect(try await TestCertificate.presented(atPort: port) == "second")
                    #expect(logs.contains("New TLS certificate in use", "second"))

                    try "not a certificate\n".write(toFile: tls.certificateChainFile, atomically: true, encoding: .utf8)
                    var failure: String?
                    while let event = await events.next() {
                        if case .failed(let reason) = event {
                            failure = reason
                            break
                        }
                    }
                    #expect(failure?.contains("holds no PEM certificate") == true, "\(failure ?? "no failure")")
                    #expect(logs.contains("Cannot use the changed TLS certificate; keeping the one in use"))
                    #expect(
                        try await TestCertificate.presented(atPort: port) == "second",
                        "the old certificate is kept"
                    )
                }
            }
        }
    }

    enum BadFiles: String, CaseIterable, Sendable {
        case missingCertificate, notPEM, keyOfAnotherCertificate
    }

    @Test(
        "A certificate that cannot be used stops the gateway from starting, with the reason",
        arguments: BadFiles.allCases
    )
    func badCertificateAtStart(_ bad: BadFiles) async throws {
        try await TestCertificate.withTemporary { certificate, directory in
            let tls = Self.tls(certificate)
            let expected: String
            switch bad {
            case .missingCertificate:
                try FileManager.default.removeItem(atPath: tls.certificateChainFile)
                expected = "cannot read the certificate file \(tls.certificateChainFile)"
            case .notPEM:
                try "hello\n".write(toFile: tls.privateKeyFile, atomically: true, encoding: .utf8)
                expected = "\(tls.privateKeyFile) holds no PEM private key"
            case .keyOfAnotherCertificate:
                try await TestCertificate.make(certificate: directory + "/other.crt", key: tls.privateKeyFile)
                expected = "does not go with the certificate"
            }
            let error = #expect(throws: GatewayError.self) {
                try Gateway(
                    configuration: .test(tls: tls),
                    routes: GatewayRoutes([]),
                    activator: CountingActivator(),
                    logger: quietLogger
                )
            }
            #expect(error?.code == .invalidCertificate)
            #expect(error?.message.contains(expected) == true, "\(error.map { "\($0)" } ?? "no error")")
        }
    }
}
