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
import KubernetesTestServer
import Logging

/// Runs `body` with a client of the in-process test server, or, when `LIVERELAY_TEST_KUBECONFIG` names a
/// kubeconfig, of that cluster. The server is passed too (`nil` for a real cluster) so tests can inject faults;
/// tests that need faults skip those steps on a real cluster.
func withTestCluster<T>(
    tls: Bool = false,
    bearerToken: String? = nil,
    _ body: (KubernetesClient, KubernetesTestServer?) async throws -> T
) async throws -> T {
    if let path = ProcessInfo.processInfo.environment["LIVERELAY_TEST_KUBECONFIG"], !path.isEmpty {
        let configuration = try KubernetesConfiguration.kubeconfig(path: path)
        return try await withKubernetesClient(configuration: configuration) { client in
            try await body(client, nil)
        }
    }
    var logger = Logger(label: "kube-test-server")
    logger.logLevel = .warning
    return try await withKubernetesTestServer(
        configuration: .init(tls: tls, bearerToken: bearerToken, bookmarkInterval: .milliseconds(500)),
        logger: logger
    ) { server in
        var configuration = try KubernetesConfiguration.kubeconfig(yaml: server.kubeconfig(), baseDirectory: "/")
        configuration.retry.defaultDelay = .milliseconds(20)
        return try await withKubernetesClient(configuration: configuration) { client in
            try await body(client, server)
        }
    }
}

/// A name no other test (or earlier run on a real cluster) uses.
func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}
