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
public import KubernetesClient
public import LiveStreamModel
public import Logging
import Synchronization

/// A console user as stored: name, bcrypt hash, admin flag, the namespace whose streams are theirs, and their
/// settings.
///
/// The hash is made and checked by the Console module (hummingbird-auth's bcrypt); this store keeps it as the
/// string it is given. ``description`` never shows it.
public struct ConsoleUserRecord: Codable, Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// A bcrypt hash (`$2b$...`), never a password.
    public var passwordHash: String
    public var isAdmin: Bool
    public var namespace: String
    /// "One stream live at a time": going live with one stream takes the user's others offline (on unless the user
    /// turned it off; a record stored without it has it on).
    public var oneLiveAtATime: Bool

    public init(
        name: String,
        passwordHash: String,
        isAdmin: Bool = false,
        namespace: String,
        oneLiveAtATime: Bool = true
    ) {
        self.name = name
        self.passwordHash = passwordHash
        self.isAdmin = isAdmin
        self.namespace = namespace
        self.oneLiveAtATime = oneLiveAtATime
    }

    /// The same JSON as the Console module's `ConsoleUser` (local mode's `console-users.json`).
    private enum CodingKeys: String, CodingKey {
        case name, passwordHash, namespace, oneLiveAtATime
        case isAdmin = "admin"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.name = try container.decode(String.self, forKey: .name)
        self.passwordHash = try container.decode(String.self, forKey: .passwordHash)
        self.isAdmin = try container.decodeIfPresent(Bool.self, forKey: .isAdmin) ?? false
        self.namespace = try container.decode(String.self, forKey: .namespace)
        self.oneLiveAtATime = try container.decodeIfPresent(Bool.self, forKey: .oneLiveAtATime) ?? true
    }

    /// The viewer the stream store acts for when this user is signed in.
    public var viewer: ConsoleViewer {
        ConsoleViewer(username: self.name, namespace: self.namespace, isAdmin: self.isAdmin)
    }

    public var description: String {
        "\(self.name) (namespace \(self.namespace)\(self.isAdmin ? ", admin" : ""))"
    }

    /// The longest user name taken.
    public static let maxNameLength = 64
    /// The most users one Secret takes (a Secret holds at most 1 MiB; a user takes some 200 bytes).
    public static let maxUsers = 2000

    /// Every problem with this record: a name of 1 to 64 letters, digits, `.`, `_`, `-` or `@`; a namespace that is
    /// a DNS label; a hash that looks like bcrypt's (`$2a$`, `$2b$` or `$2y$`, 60 characters).
    public func validate() -> [FieldError] {
        var errors: [FieldError] = []
        let nameCharacters = self.name.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-", "@": true
            default: false
            }
        }
        if self.name.isEmpty || self.name.count > Self.maxNameLength || !nameCharacters {
            errors.append(
                FieldError(
                    field: "name",
                    message: "must be 1 to \(Self.maxNameLength) letters, digits, '.', '_', '-' or '@'"
                )
            )
        }
        if let problem = LiveStreamSpecNames.dnsLabelProblem(self.namespace) {
            errors.append(FieldError(field: "namespace", message: problem))
        }
        let hash = self.passwordHash
        if hash.count != 60 || !(hash.hasPrefix("$2a$") || hash.hasPrefix("$2b$") || hash.hasPrefix("$2y$")) {
            errors.append(FieldError(field: "passwordHash", message: "must be a bcrypt hash"))
        }
        return errors
    }
}

/// Console users in one Secret of the console's namespace, key `users.json`: `{"users": [...]}` of
/// ``ConsoleUserRecord``s (at most ``ConsoleUserRecord/maxUsers``), the document local mode keeps in
/// `console-users.json`, so that every change is one compare-and-swap of one object.
///
/// Changes read the Secret, change the list and write it back with its `resourceVersion` (a PUT): a concurrent
/// change (another console replica, `liverelay console users add`) makes the write fail with 409, and the change is
/// made again on what is there now, up to ``maxAttempts`` times. No change is lost and no lock is needed.
///
/// Reads are cached for ``cacheTTL`` (every sign-in reads a user; the console's own changes refresh the cache at
/// once): a user removed or changed by another replica is seen within that time.
///
/// RBAC: `get` and `update` on this one Secret (`resourceNames`); `create` only if the store must make it (the
/// chart makes it, empty).
public final class KubernetesUserStore: Sendable {
    /// The key of the Secret that holds the users.
    public static let dataKey = "users.json"
    /// How often a change is made again after a conflicting write.
    public static let maxAttempts = 5

    private struct Cache {
        var users: [ConsoleUserRecord]
        var resourceVersion: String?
        var readAt: Duration
    }

    private let client: KubernetesClient
    public let namespace: String
    public let secretName: String
    public let cacheTTL: Duration
    private let now: @Sendable () -> Duration
    private let cache = Mutex<Cache?>(nil)
    private let logger: Logger

    /// A store of the users in Secret `secretName` of `namespace`, read at most every `cacheTTL` by `clock`.
    public init<C: Clock>(
        client: KubernetesClient,
        namespace: String,
        secretName: String,
        cacheTTL: Duration = .seconds(5),
        clock: C = ContinuousClock(),
        logger: Logger = Logger(label: "liverelay.console.users")
    ) where C.Duration == Duration {
        self.client = client
        self.namespace = namespace
        self.secretName = secretName
        self.cacheTTL = cacheTTL
        let origin = clock.now
        self.now = { origin.duration(to: clock.now) }
        self.logger = logger
    }

    /// Every user, by name.
    public func users() async throws -> [ConsoleUserRecord] {
        let now = self.now()
        if let cached = self.cache.withLock({ $0 }), now - cached.readAt < self.cacheTTL {
            return cached.users
        }
        let (users, _) = try await self.read()
        return users
    }

    /// The user `name`, or `nil`.
    public func user(named name: String) async throws -> ConsoleUserRecord? {
        try await self.users().first { $0.name == name }
    }

    /// Adds `user`.
    ///
    /// - Throws: ``ClusterStoreError/Code/invalid`` for a bad name, namespace or hash,
    ///   ``ClusterStoreError/Code/alreadyExists`` when the name is taken.
    public func add(_ user: ConsoleUserRecord) async throws {
        let errors = user.validate()
        guard errors.isEmpty else { throw ClusterStoreError.invalid(errors) }
        try await self.change { users in
            guard !users.contains(where: { $0.name == user.name }) else {
                throw ClusterStoreError.alreadyExists("a user named \(user.name) exists already")
            }
            guard users.count < ConsoleUserRecord.maxUsers else {
                throw ClusterStoreError.invalid([
                    FieldError(field: "name", message: "at most \(ConsoleUserRecord.maxUsers) users")
                ])
            }
            users.append(user)
        }
        self.logger.info("Console user added", metadata: ["console.user": "\(user)"])
    }

    /// Removes the user `name`; returns whether there was one.
    @discardableResult
    public func remove(named name: String) async throws -> Bool {
        var found = false
        try await self.change { users in
            found = users.contains { $0.name == name }
            users.removeAll { $0.name == name }
        }
        if found { self.logger.info("Console user removed", metadata: ["console.user": "\(name)"]) }
        return found
    }

    /// Changes the user `name` with `body` (a new hash, the admin flag, the namespace, a setting; not the name).
    ///
    /// - Returns: the user as stored.
    /// - Throws: ``ClusterStoreError/Code/notFound`` when there is no such user, ``ClusterStoreError/Code/invalid``
    ///   when the result is invalid.
    @discardableResult
    public func update(
        named name: String,
        _ body: (inout ConsoleUserRecord) throws -> Void
    ) async throws -> ConsoleUserRecord {
        var result: ConsoleUserRecord?
        try await self.change { users in
            guard let index = users.firstIndex(where: { $0.name == name }) else {
                throw ClusterStoreError.notFound("there is no user named \(name)")
            }
            var user = users[index]
            try body(&user)
            user.name = name
            let errors = user.validate()
            guard errors.isEmpty else { throw ClusterStoreError.invalid(errors) }
            users[index] = user
            result = user
        }
        guard let result else { throw ClusterStoreError.notFound("there is no user named \(name)") }
        self.logger.info("Console user changed", metadata: ["console.user": "\(result)"])
        return result
    }

    /// Sets the password hash of `name` (`liverelay console users passwd`).
    @discardableResult
    public func setPasswordHash(_ hash: String, for name: String) async throws -> ConsoleUserRecord {
        try await self.update(named: name) { $0.passwordHash = hash }
    }

    /// Drops the cache: the next read asks the API server.
    public func invalidateCache() {
        self.cache.withLock { $0 = nil }
    }

    // MARK: Internals

    /// Reads the Secret (`nil` object when it does not exist) and caches the users.
    private func read() async throws -> (users: [ConsoleUserRecord], secret: KubernetesObject?) {
        let secret: KubernetesObject?
        do {
            secret = try await self.client.get(
                KubernetesObject.self,
                .secrets,
                name: self.secretName,
                namespace: self.namespace
            )
        } catch let error as KubernetesError where error.isNotFound {
            secret = nil
        } catch let error as KubernetesError {
            throw ClusterStoreError.from(error, writing: "reading the console's users")
        }
        let users = try secret.map(Self.decode) ?? []
        self.remember(users, resourceVersion: secret?.metadata.resourceVersion)
        return (users, secret)
    }

    private func remember(_ users: [ConsoleUserRecord], resourceVersion: String?) {
        let now = self.now()
        self.cache.withLock { $0 = Cache(users: users, resourceVersion: resourceVersion, readAt: now) }
    }

    /// Reads, changes and writes back with the read `resourceVersion`; again on 409.
    private func change(_ body: (inout [ConsoleUserRecord]) throws -> Void) async throws {
        var attempt = 0
        while true {
            attempt += 1
            let (current, secret) = try await self.read()
            var users = current
            try body(&users)
            users.sort { $0.name < $1.name }
            do {
                let written = try await self.write(users, over: secret)
                self.remember(users, resourceVersion: written.metadata.resourceVersion)
                return
            } catch let error as KubernetesError where error.isConflict && attempt < Self.maxAttempts {
                self.logger.debug(
                    "Console users changed meanwhile; changing them again",
                    metadata: ["console.attempt": "\(attempt)"]
                )
                continue
            } catch let error as KubernetesError {
                throw ClusterStoreError.from(error, writing: "the console's users")
            }
        }
    }

    private func write(_ users: [ConsoleUserRecord], over secret: KubernetesObject?) async throws -> KubernetesObject {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(UsersDocument(users: users))
        } catch {
            throw ClusterStoreError(code: .unavailable, message: "cannot encode the console's users", cause: error)
        }
        let encoded = JSONValue.string(data.base64EncodedString())
        if var secret {
            var values: [String: JSONValue] = [:]
            if case .object(let existing)? = secret["data"] { values = existing }
            values[Self.dataKey] = encoded
            secret["data"] = .object(values)
            secret["stringData"] = nil
            return try await self.client.update(secret, .secrets, namespace: self.namespace)
        }
        let secret = KubernetesObject(
            apiVersion: "v1",
            kind: "Secret",
            metadata: ObjectMeta(
                name: self.secretName,
                namespace: self.namespace,
                labels: KubernetesStreamStore.managedByLabel
            ),
            fields: ["type": "Opaque", "data": .object([Self.dataKey: encoded])]
        )
        return try await self.client.create(secret, .secrets, fieldManager: KubernetesStreamStore.fieldManager)
    }

    private static func decode(_ secret: KubernetesObject) throws -> [ConsoleUserRecord] {
        guard let encoded = secret["data"]?[Self.dataKey]?.stringValue else { return [] }
        guard let data = Data(base64Encoded: encoded) else {
            throw ClusterStoreError(code: .unavailable, message: "the console's users are not base64")
        }
        do {
            return try JSONDecoder().decode(UsersDocument.self, from: data).users
        } catch {
            // The decoding error would quote the document, hashes and all: say only where.
            throw ClusterStoreError(
                code: .unavailable,
                message: "the console's users (Secret key \(Self.dataKey)) are not {\"users\": [...]}"
            )
        }
    }
}

/// What the Secret's `users.json` holds.
struct UsersDocument: Codable {
    var users: [ConsoleUserRecord]
}

/// DNS label checks, shared with LiveStreamModel's.
enum LiveStreamSpecNames {
    static func dnsLabelProblem(_ text: String) -> String? {
        LiveStreamSpec.dnsLabelProblem(text, maxLength: 63)
    }
}
