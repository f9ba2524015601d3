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
import Gateway
import LiveStreamModel
import LocalRuntime
import PeerTestSupport
import Relay
import Testing

/// One stream key normalisation: the relay, which checks a publisher's key, and the gateway's shared ingest port,
/// which routes by it, read a key from the same Secret the same way (``StreamKey/normalized(_:)``), so a key one of
/// them takes the other does not refuse. (The operator's key book is checked in `GatewayRouteSourceTests`.)
@Suite("Stream key normalisation")
struct StreamKeyAgreementTests {
    @Test("A key Secret with whitespace and a newline after the key: the relay and the shared ingest agree")
    func trailingWhitespace() async throws {
        // Ports of their own: another test's local mode may hold the lowest port of the range at the same time.
        let (port, otherPort) = (try freeTCPPort(), try freeTCPPort())
        let (plain, encoded) = (makeTestKey("plain"), makeTestKey("encoded"))
        let yaml = """
            apiVersion: v1
            kind: Secret
            metadata: { name: keys }
            stringData: { one: "\(plain) \\n" }
            data: { two: \(Data("\(encoded)\t \n".utf8).base64EncodedString()) }
            ---
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: one }
            spec: { ingest: { port: \(port), streamKeySecretRef: { name: keys, key: one } } }
            ---
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: two }
            spec: { ingest: { app: other, port: \(otherPort), streamKeySecretRef: { name: keys, key: two } } }
            """
        // The relay, given the file as `--config`.
        let streams = try RelayConfiguration.streams(
            yaml: yaml,
            source: "streams.yaml",
            secretsDirectory: "/nonexistent"
        )
        #expect(streams.map(\.authorization) == [.key(Secret(plain)), .key(Secret(encoded))])

        // Local mode's gateway, given the same file: its shared ingest routes by the same keys, and by nothing else.
        try await withLocalMode(yaml: yaml, secrets: [plain, encoded], sharedIngestPort: try freeTCPPort()) { local in
            try await local.waitForListening(port, otherPort)
            let routes = local.runtime.gateway.routes
            #expect(routes.route(forIngest: .init(app: "live", key: plain))?.stream.name == "one")
            #expect(routes.route(forIngest: .init(app: "other", key: encoded))?.stream.name == "two")
            #expect(routes.route(forIngest: .init(app: "live", key: plain + " ")) == nil)
            #expect(routes.route(forIngest: .init(app: "other", key: encoded + "\t")) == nil)
        }
    }
}
