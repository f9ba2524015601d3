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
import NIOCore
import Synchronization
import Testing

/// A fresh temporary directory, removed when `body` returns.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = NSTemporaryDirectory() + "k8s-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

func write(_ text: String, to path: String) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// A client over a transport that records the Authorization header and answers 401 when `reject` says so.
func authRecordingClient(
    _ configuration: KubernetesConfiguration,
    reject: @escaping @Sendable (String?) -> Bool = { _ in false }
) -> (KubernetesClient, RequestLog) {
    let log = RequestLog()
    let client = KubernetesClient(
        configuration: configuration,
        transport: FakeTransport { request, _ in
            log.append(request)
            if reject(request.header("Authorization")) {
                return FakeTransport.json(
                    401,
                    #"{"kind":"Status","status":"Failure","reason":"Unauthorized","code":401}"#
                )
            }
            return FakeTransport.json(200, #"{"metadata":{"name":"a"}}"#)
        }
    )
    return (client, log)
}

let testPEM = """
    -----BEGIN CERTIFICATE-----
    MIIBszCCAVmgAwIBAgIUYhvBQn0mQhKCZUq0mB+ZbHcTWRQwCgYIKoZIzj0EAwIw
    -----END CERTIFICATE-----

    """

@Suite("Kubeconfig and in-cluster configuration")
struct ConfigurationTests {
    func kubeconfig(user: String, cluster: String = "server: https://10.0.0.1:6443") -> String {
        """
        apiVersion: v1
        kind: Config
        current-context: dev
        clusters:
        - name: other
          cluster:
            server: https://wrong
        - name: c1
          cluster:
            \(cluster.replacingOccurrences(of: "\n", with: "\n    "))
        contexts:
        - name: prod
          context: {cluster: other, user: u1}
        - name: dev
          context:
            cluster: c1
            user: u1
            namespace: streams
        users:
        - name: u1
          user:
            \(user.replacingOccurrences(of: "\n", with: "\n    "))
        """
    }

    @Test("token, CA data and current-context")
    func bearerToken() async throws {
        let caData = Data(testPEM.utf8).base64EncodedString()
        let yaml = self.kubeconfig(
            user: "token: abc123",
            cluster: "server: https://10.0.0.1:6443\ncertificate-authority-data: \(caData)"
        )
        let configuration = try KubernetesConfiguration.kubeconfig(yaml: yaml, baseDirectory: "/tmp")
        #expect(configuration.server == "https://10.0.0.1:6443")
        #expect(configuration.namespace == "streams")
        #expect(configuration.certificateAuthorityPEM == Array(testPEM.utf8))
        #expect(configuration.insecureSkipTLSVerify == false)
        let (client, log) = authRecordingClient(configuration)
        _ = try await client.get(KubernetesObject.self, .configMaps, name: "a")
        #expect(log.all.first?.header("Authorization") == "Bearer abc123")
        #expect(log.all.first?.path == "/api/v1/namespaces/streams/configmaps/a")

        let other = try KubernetesConfiguration.kubeconfig(yaml: yaml, context: "prod", baseDirectory: "/tmp")
        #expect(other.server == "https://wrong")
    }

    @Test("files relative to the kubeconfig, client certificates, insecure-skip-tls-verify, KUBECONFIG")
    func filesAndCertificates() async throws {
        try await withTemporaryDirectory { directory in
            try write(testPEM, to: "\(directory)/ca.crt")
            try write("CERT", to: "\(directory)/client.crt")
            try write("KEY", to: "\(directory)/client.key")
            let yaml = self.kubeconfig(
                user: "client-certificate: client.crt\nclient-key: \(directory)/client.key",
                cluster: "server: https://h:1\ncertificate-authority: ca.crt\ninsecure-skip-tls-verify: true"
            )
            try write(yaml, to: "\(directory)/config")
            let configuration = try KubernetesConfiguration.kubeconfig(
                environment: ["KUBECONFIG": "\(directory)/config:/nonexistent", "HOME": "/nonexistent"]
            )
            #expect(configuration.certificateAuthorityPEM == Array(testPEM.utf8))
            #expect(configuration.clientCertificate?.certificatePEM == Array("CERT".utf8))
            #expect(configuration.clientCertificate?.keyPEM == Array("KEY".utf8))
            #expect(configuration.insecureSkipTLSVerify)

            let data = self.kubeconfig(
                user:
                    "client-certificate-data: \(Data("C2".utf8).base64EncodedString())\nclient-key-data: \(Data("K2".utf8).base64EncodedString())"
            )
            let fromData = try KubernetesConfiguration.kubeconfig(yaml: data, baseDirectory: directory)
            #expect(fromData.clientCertificate?.certificatePEM == Array("C2".utf8))
            #expect(fromData.clientCertificate?.keyPEM == Array("K2".utf8))

            #expect(throws: KubernetesError.self) {
                try KubernetesConfiguration.kubeconfig(
                    yaml: self.kubeconfig(user: "client-certificate: client.crt"),
                    baseDirectory: directory
                )
            }
        }
    }

    @Test("tokenFile is re-read after a 401")
    func tokenFile() async throws {
        try await withTemporaryDirectory { directory in
            try write("first\n", to: "\(directory)/token")
            let configuration = try KubernetesConfiguration.kubeconfig(
                yaml: self.kubeconfig(user: "tokenFile: token"),
                baseDirectory: directory
            )
            let rotated = Mutex(false)
            let (client, log) = authRecordingClient(configuration) { header in
                rotated.withLock { $0 } && header == "Bearer first"
            }
            _ = try await client.get(KubernetesObject.self, .configMaps, name: "a")
            try write("second\n", to: "\(directory)/token")
            rotated.withLock { $0 = true }
            // The cached token is rejected; the client re-reads the file and retries once.
            _ = try await client.get(KubernetesObject.self, .configMaps, name: "a")
            #expect(log.all.map { $0.header("Authorization") } == ["Bearer first", "Bearer first", "Bearer second"])
        }
    }

    @Test("exec credential plugin: run, parse ExecCredential, cache until expiry")
    func execPlugin() async throws {
        try await withTemporaryDirectory { directory in
            let script = """
                #!/bin/sh
                echo run >> "\(directory)/runs"
                test "$PLUGIN_ENV" = yes || exit 3
                test "$1" = --flag || exit 4
                cat <<JSON
                {"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-token-$(wc -l < "\(directory)/runs" | tr -d ' ')","expirationTimestamp":"$EXPIRY"}}
                JSON
                """
            try write(script, to: "\(directory)/plugin.sh")
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(directory)/plugin.sh")

            func configuration(expiry: Date) throws -> KubernetesConfiguration {
                let formatter = ISO8601DateFormatter()
                let user = """
                    exec:
                      apiVersion: client.authentication.k8s.io/v1
                      command: ./plugin.sh
                      args: ["--flag"]
                      env:
                      - {name: PLUGIN_ENV, value: "yes"}
                      - {name: EXPIRY, value: "\(formatter.string(from: expiry))"}
                    """
                return try KubernetesConfiguration.kubeconfig(
                    yaml: self.kubeconfig(user: user),
                    baseDirectory: directory
                )
            }

            // Valid for an hour: one run serves both requests.
            let (client, log) = authRecordingClient(try configuration(expiry: Date().addingTimeInterval(3600)))
            _ = try await client.get(KubernetesObject.self, .configMaps, name: "a")
            _ = try await client.get(KubernetesObject.self, .configMaps, name: "a")
            #expect(log.all.map { $0.header("Authorization") } == ["Bearer exec-token-1", "Bearer exec-token-1"])

            // Already expired: every request runs the plugin again.
            let (expiring, log2) = authRecordingClient(try configuration(expiry: Date().addingTimeInterval(-60)))
            _ = try await expiring.get(KubernetesObject.self, .configMaps, name: "a")
            _ = try await expiring.get(KubernetesObject.self, .configMaps, name: "a")
            #expect(log2.all.map { $0.header("Authorization") } == ["Bearer exec-token-2", "Bearer exec-token-3"])
        }
    }

    @Test("a failing exec plugin is an authentication error")
    func execPluginFailure() async throws {
        let configuration = KubernetesConfiguration(
            server: "http://unused",
            credentials: .exec(.init(command: "/bin/false"))
        )
        let (client, _) = authRecordingClient(configuration)
        let error = await #expect(throws: KubernetesError.self) {
            _ = try await client.get(KubernetesObject.self, .configMaps, name: "a")
        }
        #expect(error?.code == .authentication)
    }

    @Test("in-cluster: service account directory and KUBERNETES_SERVICE_HOST/PORT")
    func inCluster() async throws {
        try await withTemporaryDirectory { directory in
            try write("sa-token", to: "\(directory)/token")
            try write(testPEM, to: "\(directory)/ca.crt")
            try write("operators\n", to: "\(directory)/namespace")
            let configuration = try KubernetesConfiguration.inCluster(
                serviceAccountDirectory: directory,
                environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"]
            )
            #expect(configuration.server == "https://[fd00::1]:443")
            #expect(configuration.namespace == "operators")
            #expect(configuration.certificateAuthorityPEM == Array(testPEM.utf8))
            let (client, log) = authRecordingClient(configuration) { $0 == "Bearer sa-token" }
            try write("rotated", to: "\(directory)/token")
            // The first read caches "sa-token" only if it was read before the rotation; either way a 401 re-reads.
            _ = try await client.get(KubernetesObject.self, .configMaps, name: "a")
            #expect(log.all.last?.header("Authorization") == "Bearer rotated")

            #expect(throws: KubernetesError.self) {
                try KubernetesConfiguration.inCluster(serviceAccountDirectory: directory, environment: [:])
            }
        }
    }
}
