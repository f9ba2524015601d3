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
import PeerTestSupport
import Testing

@Suite("liverelay console users")
struct ConsoleCommandTests {
    func run(_ arguments: [String]) async throws -> ProcessExit {
        let process = try RunningProcess.launch(
            try liverelayExecutable(),
            arguments: ["console", "users"] + arguments,
            standardOutput: .capture(limit: 64 * 1024)
        )
        return await process.waitForExit()
    }

    func password(_ exit: ProcessExit) throws -> String {
        let line = try #require(
            exit.standardOutput.split(separator: "\n").first { $0.hasPrefix("password (shown once): ") }
        )
        return String(line.dropFirst("password (shown once): ".count))
    }

    @Test("add, list, passwd and remove manage the state directory's users; passwords are shown once, never stored")
    func manageUsers() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("liverelay-users-cli-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = ["--state-dir", directory]
        let store = LocalUserStore(stateDirectory: directory)

        let added = try await self.run(["add", "carol", "--namespace", "studio", "--admin"] + state)
        #expect(added.succeeded, "\(added)")
        let first = try self.password(added)
        let carol = try #require(try await store.verify(name: "carol", password: first))
        #expect(carol.admin && carol.namespace == "studio")

        let again = try await self.run(["add", "carol"] + state)
        #expect(!again.succeeded)
        #expect(again.standardError.contains("exists already"))
        let badName = try await self.run(["add", "Carol_1"] + state)
        #expect(!badName.succeeded)

        let list = try await self.run(["list"] + state)
        #expect(list.standardOutput == "carol\tnamespace studio\tadmin\n")

        let changed = try await self.run(["passwd", "carol"] + state)
        #expect(changed.succeeded, "\(changed)")
        let second = try self.password(changed)
        #expect(try await store.verify(name: "carol", password: first) == nil)
        #expect(try await store.verify(name: "carol", password: second) != nil)
        let file = try String(contentsOfFile: store.path, encoding: .utf8)
        #expect(!file.contains(first) && !file.contains(second))

        #expect(try await self.run(["remove", "carol"] + state).succeeded)
        #expect(try await store.users().isEmpty)
        #expect(!(try await self.run(["remove", "carol"] + state)).succeeded)
    }
}
