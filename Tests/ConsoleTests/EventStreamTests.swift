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
import Console
import Foundation
import Hummingbird
import HummingbirdTesting
import LiveStreamModel
import LocalRuntime
import Logging
import NIOCore
import NIOHTTP1
import PeerTestSupport
import ServiceLifecycle
import Testing

@Suite("Console server-sent events")
struct EventStreamTests {
    @Test("/api/events tells a user of their own streams' changes only, and ends when the session does")
    func ownChangesOnly() async throws {
        try await ConsoleFixture.with { fixture, client in
            let alice = try await signIn(client, "alice")
            let port = try freeTCPPort()
            let router = Router()
            fixture.server.addRoutes(to: router)
            let app = Application(
                router: router,
                configuration: .init(address: .hostname("127.0.0.1", port: port)),
                logger: .init(label: "test")
            )
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: app), .init(service: fixture.server)],
                    logger: .init(label: "test")
                )
            )
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                defer { tasks.cancelAll() }
                // The browser's event stream, over a real connection.
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/events")
                request.headers.add(name: "Cookie", value: "liverelay_session=\(alice.cookie)")
                let response = try await eventually("the event stream") { () -> HTTPClientResponse? in
                    try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                }
                #expect(response.status == .ok)
                #expect(response.headers.first(name: "content-type") == "text/event-stream")
                var body = response.body.makeAsyncIterator()
                var received = ""
                func next(until text: String) async throws {
                    while !received.contains(text) {
                        guard let chunk = try await body.next() else {
                            return
                        }
                        received += String(buffer: chunk)
                    }
                }
                try await next(until: ": connected\n\n")
                // Changes as the store reports them: bob's stream first, then alice's.
                try await eventually("the server subscribed") { fixture.runtime.consoleChanges.subscriberCount > 0 }
                fixture.runtime.consoleChanges.yield(.changed(StreamID(namespace: "bob", name: "other")))
                fixture.runtime.consoleChanges.yield(.changed(StreamID(namespace: "alice", name: "show")))
                try await next(until: "\n\n")
                try await next(until: #""name":"show""#)
                #expect(received.contains("event: stream\ndata: {"))
                #expect(!received.contains(#""name":"other""#))
                #expect(!received.contains("alice-secret-ingest-key"))

                // Sign-out ends the stream.
                let out = try await client.execute(uri: "/api/session", method: .delete, headers: alice.headers())
                #expect(out.status == .noContent)
                while try await body.next() != nil {}
                await group.triggerGracefulShutdown()
            }
        }
    }
}
