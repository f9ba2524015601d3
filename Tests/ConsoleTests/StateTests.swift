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

import Console
import Foundation
import LiveStreamModel
import Testing

@Suite("Console state as values: sessions, the sign-in throttle, the local stores")
struct ConsoleStateTests {
    @Test("A session ends when idle too long, and at its absolute limit however busy")
    func sessionExpiry() {
        var sessions = ConsoleSessions(idleTimeout: .seconds(60), absoluteTimeout: .seconds(300))
        let start = ContinuousClock.now
        let (token, session) = sessions.start(user: "alice", now: start)
        #expect(session.csrfToken.count == 64 && token.count == 64 && session.csrfToken != token)
        var now = start
        for _ in 0..<4 {
            now += .seconds(59)
            #expect(sessions.use(token, now: now) != nil)
        }
        now += .seconds(65)  // 301 s after the start, 65 s after the last use
        #expect(sessions.use(token, now: now) == nil)
        let (other, _) = sessions.start(user: "alice", now: now)
        sessions.end(user: "alice")
        #expect(sessions.use(other, now: now) == nil)
    }

    @Test("Failures beyond the free ones wait, doubling up to the limit, per name and per address")
    func throttle() {
        var throttle = SignInThrottle(freeFailures: 2, baseDelay: .seconds(1), maxDelay: .seconds(4))
        let now = ContinuousClock.now
        #expect(throttle.failed(user: "a", address: "1.2.3.4", now: now) == nil)
        #expect(throttle.failed(user: "a", address: "1.2.3.4", now: now) == nil)
        #expect(throttle.failed(user: "a", address: "1.2.3.4", now: now) == .seconds(1))
        #expect(throttle.wait(user: "a", address: "5.6.7.8", now: now) == .seconds(1))
        #expect(throttle.wait(user: "b", address: "1.2.3.4", now: now) == .seconds(1))
        #expect(throttle.wait(user: "b", address: "5.6.7.8", now: now) == nil)
        #expect(throttle.failed(user: "a", address: "1.2.3.4", now: now) == .seconds(2))
        #expect(throttle.failed(user: "a", address: "1.2.3.4", now: now) == .seconds(4))
        #expect(throttle.failed(user: "a", address: "1.2.3.4", now: now) == .seconds(4))
        #expect(throttle.wait(user: "a", address: "9.9.9.9", now: now + .seconds(5)) == nil)
        throttle.succeeded(user: "a")
        #expect(throttle.wait(user: "a", address: "9.9.9.9", now: now) == nil)
        // An unknown address counts for nothing: the name alone.
        for _ in 0..<3 {
            throttle.failed(user: "c", address: nil, now: now)
        }
        #expect(throttle.wait(user: "c", address: nil, now: now) == .seconds(1))
        #expect(throttle.wait(user: "d", address: nil, now: now) == nil)
    }

    @Test("Users are kept as bcrypt hashes in a 0600 file, replaced atomically")
    func userFile() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("liverelay-users-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = LocalUserStore(stateDirectory: directory)
        let first = try #require(try await store.ensureFirstAdmin(password: nil, cost: 4))
        let password = try #require(first.generatedPassword)
        #expect(try await store.ensureFirstAdmin(password: nil, cost: 4) == nil)
        #expect(try await store.verify(name: "admin", password: password)?.admin == true)
        #expect(try await store.verify(name: "admin", password: "wrong") == nil)
        try await store.setPassword(name: "admin", password: "new-one", cost: 4)
        #expect(try await store.verify(name: "admin", password: password) == nil)
        #expect(try await store.verify(name: "admin", password: "new-one") != nil)
        let text = try String(contentsOfFile: store.path, encoding: .utf8)
        #expect(!text.contains(password) && !text.contains("new-one") && text.contains("$2b$04$"))
        let mode = try FileManager.default.attributesOfItem(atPath: store.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        await #expect(throws: ConsoleStoreError.self) {
            try await store.add(ConsoleUser(name: "admin", passwordHash: "x", admin: false, namespace: "x"))
        }
        try await store.remove(named: "admin")
        #expect(try await store.users().isEmpty)
    }

    @Test("The streams file editor keeps the other documents and refuses an invalid result")
    func editor() throws {
        let text = """
            # top comment
            apiVersion: v1
            kind: Secret
            metadata: { name: keep, namespace: default }
            stringData: { k: v } # a comment that stays
            ---
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: a }
            spec: {}

            """
        var editor = try StreamFileEditor(text: text, source: "test")
        var stream = try #require(try editor.validated().liveStreams.first)
        stream.spec.suspend = true
        try editor.setStream(stream)
        #expect(editor.text.hasPrefix("# top comment\napiVersion: v1\nkind: Secret\n"))
        #expect(editor.text.contains("stringData: { k: v } # a comment that stays\n---\n"))
        #expect(try editor.validated().liveStreams.first?.spec.suspend == true)
        stream.spec.targets = [.init(name: "t", url: "http://nope")]
        try editor.setStream(stream)
        #expect(throws: StreamFileError.self) { try editor.validated() }
        // A replaced document keeps the comment lines above it.
        try editor.setSecret("keep", namespace: "default", values: ["k": "w"])
        #expect(editor.text.hasPrefix("# top comment\n"))
        editor.removeStream(stream.id)
        #expect(try editor.validated().liveStreams.isEmpty)
        #expect(try editor.validated().secrets.count == 1)
    }
}
