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

/// A self-signed certificate for 127.0.0.1 and localhost, made by `openssl` for one test, valid for a day.
public struct TestCertificate: Sendable, Hashable {
    /// The PEM certificate.
    public var certificate: String
    /// The PEM private key (P-256).
    public var key: String

    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }

    /// Makes a key and a certificate with the subject `CN=commonName` at the two paths, replacing what is there.
    @discardableResult
    public static func make(
        certificate: String,
        key: String,
        commonName: String = "localhost"
    ) async throws -> TestCertificate {
        let openssl = try RunningProcess.launch(
            "openssl",
            arguments: [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", "/CN=\(commonName)", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", key, "-out", certificate,
            ]
        )
        let exit = await openssl.waitForExit()
        guard exit.succeeded else {
            throw PeerError.startFailed("openssl req failed (\(exit)): \(exit.standardError)")
        }
        return TestCertificate(certificate: certificate, key: key)
    }

    /// Makes a certificate as `tls.crt` and `tls.key` in a temporary directory of its own, runs `body` with it and
    /// the directory, then removes the directory.
    public static func withTemporary<Result>(
        commonName: String = "localhost",
        isolation: isolated (any Actor)? = #isolation,
        _ body: (TestCertificate, _ directory: String) async throws -> Result
    ) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("liverelay-tls-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificate = try await Self.make(
            certificate: directory + "/tls.crt",
            key: directory + "/tls.key",
            commonName: commonName
        )
        return try await body(certificate, directory)
    }

    /// The subject common name of the certificate a TLS server at 127.0.0.1:`port` presents, as `openssl s_client`
    /// sees it, or `nil` if no TLS handshake completed.
    public static func presented(atPort port: Int) async throws -> String? {
        let client = try RunningProcess.launch(
            "openssl",
            arguments: ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost", "-brief"]
        )
        let exit = await client.waitForExit()
        // -brief prints the peer's subject on standard error: "Peer certificate: CN = NAME" (OpenSSL 3).
        let output = exit.standardError + exit.standardOutput
        for line in output.split(separator: "\n") where line.hasPrefix("Peer certificate:") {
            guard let range = line.range(of: "CN = ") ?? line.range(of: "CN=") else {
                continue
            }
            return String(line[range.upperBound...].prefix { $0 != "," && $0 != "/" })
                .trimmingCharacters(in: .whitespaces)
        }
        return nil
    }
}
