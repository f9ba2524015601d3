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
import HummingbirdBcrypt
public import LiveStreamModel

extension ConsoleUser {
    /// Why `name` cannot name a user (it is a DNS label of at most 63 characters, as a namespace is), or `nil`.
    public static func nameProblem(_ name: String) -> String? {
        LiveStreamSpec.dnsLabelProblem(name, maxLength: 63)
    }

    /// The bcrypt hash of `password`, with `cost` rounds (2^cost); 12 in production, lower only in tests.
    public static func hash(password: String, cost: UInt8 = 12) -> String {
        Bcrypt.hash(password, cost: cost)
    }

    /// Whether `password` is this user's.
    public func verify(password: String) -> Bool {
        Bcrypt.verify(password, hash: self.passwordHash)
    }
}

/// Where the console keeps its users: a file in the state directory locally (``LocalUserStore``), a Secret in a
/// cluster. Every method may throw ``ConsoleStoreError``; names are checked with ``ConsoleUser/nameProblem(_:)`` by
/// the caller. Passwords never reach a store: only their bcrypt hashes (``ConsoleUser/hash(password:cost:)``).
public protocol ConsoleUserStore: Sendable {
    /// Every user, sorted by name.
    func users() async throws -> [ConsoleUser]
    /// The user called `name`, or `nil`.
    func user(named name: String) async throws -> ConsoleUser?
    /// Adds `user`; ``ConsoleStoreError/alreadyExists(_:)`` when the name is taken.
    func add(_ user: ConsoleUser) async throws
    /// Removes the user; ``ConsoleStoreError/notFound(_:)`` when there is none.
    func remove(named name: String) async throws
    /// Replaces the user's record (a new password hash, a setting); ``ConsoleStoreError/notFound(_:)`` when there is
    /// none.
    func update(_ user: ConsoleUser) async throws
}

extension ConsoleUserStore {
    /// The user, when `password` is theirs; `nil` for an unknown user or a wrong password. An unknown user costs a
    /// bcrypt verification all the same, so the time taken does not tell which names exist.
    public func verify(name: String, password: String) async throws -> ConsoleUser? {
        let user = try await self.user(named: name)
        let hash = user?.passwordHash ?? decoyHash
        let matches = Bcrypt.verify(password, hash: hash)
        return matches ? user : nil
    }

    /// Sets the password of `name` (hashed here).
    public func setPassword(name: String, password: String, cost: UInt8 = 12) async throws {
        guard var user = try await self.user(named: name) else {
            throw ConsoleStoreError.notFound("no user \(name)")
        }
        user.passwordHash = ConsoleUser.hash(password: password, cost: cost)
        try await self.update(user)
    }
}

/// A hash nobody's password matches, verified against for an unknown user (computed once, on first use).
private let decoyHash = Bcrypt.hash(StreamKey.generate(), cost: 12)

/// What a store refuses, with a message for the person (never a key).
public enum ConsoleStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No such stream or user (or not the user's: the same answer).
    case notFound(String)
    case alreadyExists(String)
    /// The edit is not valid; each field and what is wrong, from LiveStreamModel's validation.
    case invalid([FieldError])
    /// Someone else changed it first (a cluster's 409); try again with what is there now.
    case conflict(String)
    /// The store cannot be reached or written.
    case unavailable(String)

    public var description: String {
        switch self {
        case .notFound(let message), .alreadyExists(let message), .conflict(let message),
            .unavailable(let message):
            message
        case .invalid(let errors):
            errors.map(\.description).joined(separator: "; ")
        }
    }
}

/// The users in one JSON file (`console-users.json` in local mode's state directory), mode 0600, replaced
/// atomically on every change and read again on every call, so `liverelay console users` in another process takes
/// effect at once.
public actor LocalUserStore: ConsoleUserStore {
    public nonisolated let path: String

    private struct File: Codable {
        var users: [ConsoleUser]
    }

    /// The store of `console-users.json` in `stateDirectory`.
    public init(stateDirectory: String) {
        self.path = stateDirectory + "/console-users.json"
    }

    public func users() throws -> [ConsoleUser] {
        try self.read().users.sorted { $0.name < $1.name }
    }

    public func user(named name: String) throws -> ConsoleUser? {
        try self.read().users.first { $0.name == name }
    }

    public func add(_ user: ConsoleUser) throws {
        var file = try self.read()
        guard !file.users.contains(where: { $0.name == user.name }) else {
            throw ConsoleStoreError.alreadyExists("a user \(user.name) exists already")
        }
        file.users.append(user)
        try self.write(file)
    }

    public func remove(named name: String) throws {
        var file = try self.read()
        guard file.users.contains(where: { $0.name == name }) else {
            throw ConsoleStoreError.notFound("no user \(name)")
        }
        file.users.removeAll { $0.name == name }
        try self.write(file)
    }

    public func update(_ user: ConsoleUser) throws {
        var file = try self.read()
        guard let index = file.users.firstIndex(where: { $0.name == user.name }) else {
            throw ConsoleStoreError.notFound("no user \(user.name)")
        }
        file.users[index] = user
        try self.write(file)
    }

    private func read() throws -> File {
        guard FileManager.default.fileExists(atPath: self.path) else {
            return File(users: [])
        }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: self.path))
            return try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw ConsoleStoreError.unavailable("cannot read \(self.path): \(error)")
        }
    }

    private func write(_ file: File) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            let directory = (self.path as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
            try AtomicFile.replace(self.path, with: String(decoding: try encoder.encode(file), as: UTF8.self) + "\n")
        } catch let error as ConsoleStoreError {
            throw error
        } catch {
            throw ConsoleStoreError.unavailable("cannot write \(self.path): \(error)")
        }
    }
}

extension ConsoleUserStore {
    /// Makes the first admin when there is no user at all: `name` in `namespace`, with `password` or, when `nil`, a
    /// generated one, which is returned so that the caller shows it once. `nil` when users exist already.
    public func ensureFirstAdmin(
        name: String = "admin",
        namespace: String = "default",
        password: String?,
        cost: UInt8 = 12
    ) async throws -> (name: String, generatedPassword: String?)? {
        guard try await self.users().isEmpty else {
            return nil
        }
        let chosen = password ?? ConsoleUser.generatePassword()
        try await self.add(
            ConsoleUser(
                name: name,
                passwordHash: ConsoleUser.hash(password: chosen, cost: cost),
                admin: true,
                namespace: namespace
            )
        )
        return (name, password == nil ? chosen : nil)
    }
}

extension ConsoleUser {
    /// A new password: 24 hex digits (96 bits) from the system's cryptographic generator.
    public static func generatePassword() -> String {
        String(StreamKey.generate().prefix(24))
    }
}
