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

import KubernetesTestServer
import Logging
import NIOCore
import Testing

@Suite("Fault injection and authentication", .timeLimit(.minutes(3)))
struct FaultTests {
    @Test("failNextRequests answers with the status, a Status body and Retry-After, then recovers")
    func failures() async throws {
        try await withServer { server, client in
            server.failNextRequests(count: 2, status: 429, retryAfter: 3)
            let first = try await client.get("/api/v1/namespaces")
            #expect(first.status == 429)
            #expect(first.header("Retry-After") == "3")
            #expect(first.body["reason"] == "TooManyRequests")
            #expect(first.body[path: ["details", "retryAfterSeconds"]] == 3)
            #expect(try await client.get("/api/v1/namespaces").status == 429)
            #expect(try await client.get("/api/v1/namespaces").status == 200)
            server.failNextRequests(count: 1)
            let serverError = try await client.get("/api/v1/namespaces")
            #expect(serverError.status == 500)
            #expect(serverError.body["reason"] == "InternalError")
        }
    }

    @Test("refuseConnections closes connections for a while, then serves again")
    func refuse() async throws {
        try await withServer { server, client in
            // A window long enough that a loaded machine still asks within it, then one that ends by itself.
            server.refuseConnections(for: .seconds(30))
            await #expect(throws: (any Error).self) { try await client.get("/version") }
            server.refuseConnections(for: .milliseconds(200))
            var status: Int?
            let deadline = ContinuousClock.now + .seconds(30)
            while status == nil && ContinuousClock.now < deadline {
                status = try? await client.get("/version").status
            }
            #expect(status == 200)
        }
    }

    @Test("with a bearer token configured, requests without it get 401")
    func token() async throws {
        try await withServer(.init(bearerToken: "s3cret")) { server, client in
            #expect(try await client.get("/api/v1/namespaces").status == 200)
            let anonymous = TestClient(server)
            let refused = try await anonymous.get("/api/v1/namespaces")
            #expect(refused.status == 401)
            #expect(refused.body["reason"] == "Unauthorized")
            #expect(server.kubeconfig().contains("token: s3cret"))
        }
    }

    @Test("stop() ends open watches and stops listening")
    func stop() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let server = try await KubernetesTestServer.start(logger: logger)
        let client = TestClient(server)
        var stream = try await client.watch("/api/v1/namespaces/default/configmaps?watch=1")
        await server.stop()
        #expect(try await stream.next() == nil)
        // AsyncHTTPClient retries refused connections until the deadline, so keep the deadline short.
        await #expect(throws: (any Error).self) { try await client.request("GET", "/version", timeout: .seconds(1)) }
    }
}
