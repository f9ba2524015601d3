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

import KubernetesClient
import KubernetesTestServer
import Logging
import Testing

@Suite("Client connect timeout")
struct ConnectTimeoutTests {
    /// The transport once kept only the whole seconds of the connect timeout: 500 ms became 0, and no connection
    /// could be made at all.
    @Test("a sub-second connect timeout still connects")
    func subSecond() async throws {
        var logger = Logger(label: "kube-test-server")
        logger.logLevel = .warning
        try await withKubernetesTestServer(logger: logger) { server in
            var configuration = try KubernetesConfiguration.kubeconfig(yaml: server.kubeconfig(), baseDirectory: "/")
            configuration.connectTimeout = .milliseconds(500)
            try await withKubernetesClient(configuration: configuration) { client in
                let namespace = try await client.get(KubernetesObject.self, .namespaces, name: "default")
                #expect(namespace.metadata.name == "default")
            }
        }
    }
}
