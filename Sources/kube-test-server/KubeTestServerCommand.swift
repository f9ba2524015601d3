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

import ArgumentParser
import KubernetesTestServer
import Logging
import UnixSignals

/// `kube-test-server`: the in-process test API server as a program, for running kubectl or an operator binary
/// against it by hand.
@main
struct KubeTestServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kube-test-server",
        abstract: "An in-memory Kubernetes API server for tests; kubectl can talk to it."
    )

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on; 0 picks a free one.")
    var port = 0

    @Flag(help: "Serve HTTPS with a generated self-signed certificate (embedded in the kubeconfig).")
    var tls = false

    @Option(help: "Require this bearer token on every request.")
    var token: String?

    @Option(help: "A directory of CustomResourceDefinition YAML files to install at start.")
    var crd: [String] = []

    @Option(help: "Write a kubeconfig for this server to this path.")
    var kubeconfigOut: String?

    @Option(help: "Seconds between watch bookmarks.")
    var bookmarkSeconds = 5

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard (0...65535).contains(self.port) else { throw ValidationError("--port must be 0...65535") }
        guard Logger.Level(rawValue: self.logLevel) != nil else { throw ValidationError("unknown --log-level") }
        guard self.bookmarkSeconds > 0 else { throw ValidationError("--bookmark-seconds must be positive") }
    }

    func run() async throws {
        var logger = Logger(label: "kube-test-server")
        logger.logLevel = Logger.Level(rawValue: self.logLevel) ?? .info
        let server = try await KubernetesTestServer.start(
            configuration: .init(
                host: self.host,
                port: self.port,
                tls: self.tls,
                bearerToken: self.token,
                bookmarkInterval: .seconds(self.bookmarkSeconds)
            ),
            logger: logger
        )
        do {
            for directory in self.crd {
                try server.installCRDs(directory: directory)
            }
            if let path = self.kubeconfigOut {
                try server.writeKubeconfig(to: path)
                logger.info("kubeconfig written", metadata: ["k8s.kubeconfig.path": "\(path)"])
            }
            print(server.baseURL)
            for await signal in await UnixSignalsSequence(trapping: .sigint, .sigterm) {
                logger.info("stopping", metadata: ["signal": "\(signal)"])
                break
            }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}
