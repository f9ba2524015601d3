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

import Dispatch
import Foundation
import Synchronization

/// Supplies the bearer token, caching it as its source allows.
///
/// Not an actor: the cache is a `Mutex`, held only to read or replace it, never across an `await`. Two requests that
/// find the cache stale at the same time may both refresh it; the last one wins, which is harmless.
final class TokenProvider: Sendable {
    private struct Cached {
        var token: String
        var validUntil: ContinuousClock.Instant?
    }

    private let credentials: KubernetesConfiguration.Credentials
    private let fileRefreshInterval: Duration
    private let cache = Mutex<Cached?>(nil)

    init(credentials: KubernetesConfiguration.Credentials, fileRefreshInterval: Duration = .seconds(60)) {
        self.credentials = credentials
        self.fileRefreshInterval = fileRefreshInterval
    }

    /// Forgets the cached token, after the server answered 401 with it.
    func invalidate() {
        self.cache.withLock { $0 = nil }
    }

    func token() async throws -> String? {
        let now = ContinuousClock.now
        let cached = self.cache.withLock { cached -> String? in
            guard let value = cached else { return nil }
            if let validUntil = value.validUntil, validUntil <= now { return nil }
            return value.token
        }
        if let cached { return cached }

        switch self.credentials {
        case .none:
            return nil
        case .token(let token):
            return token
        case .tokenFile(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw KubernetesError.authentication("cannot read token file \(path)")
            }
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            self.cache.withLock { $0 = Cached(token: token, validUntil: now + self.fileRefreshInterval) }
            return token
        case .exec(let plugin):
            let credential = try await Self.run(plugin)
            var validUntil: ContinuousClock.Instant? = nil
            if let expiry = credential.expiration {
                // Refresh ten seconds early so a request never leaves with a token about to expire.
                let remaining = expiry.timeIntervalSinceNow - 10
                validUntil = now + .milliseconds(Int64(max(0, remaining) * 1000))
            }
            self.cache.withLock { $0 = Cached(token: credential.token, validUntil: validUntil) }
            return credential.token
        }
    }

    struct ExecCredential: Decodable {
        struct Status: Decodable {
            var token: String?
            var expirationTimestamp: String?
        }
        var apiVersion: String?
        var kind: String?
        var status: Status?
    }

    /// Runs an exec credential plugin and parses the `ExecCredential` it prints.
    static func run(
        _ plugin: KubernetesConfiguration.ExecCredentialPlugin
    ) async throws -> (token: String, expiration: Date?) {
        let process = Process()
        if plugin.command.contains("/") {
            process.executableURL = URL(fileURLWithPath: plugin.command)
            process.arguments = plugin.arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [plugin.command] + plugin.arguments
        }
        if let directory = plugin.workingDirectory {
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
        }
        var environment = ProcessInfo.processInfo.environment
        environment.merge(plugin.environment) { _, new in new }
        environment["KUBERNETES_EXEC_INFO"] =
            #"{"apiVersion":"\#(plugin.apiVersion)","kind":"ExecCredential","spec":{"interactive":false}}"#
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice

        let data: Data = try await withCheckedThrowingContinuation { continuation in
            // Reading the pipe and waiting block a thread; keep them off the cooperative pool.
            DispatchQueue.global().async {
                do {
                    try process.run()
                    let data = output.fileHandleForReading.readDataToEndOfFile()
                    process.waitUntilExit()
                    guard process.terminationStatus == 0 else {
                        continuation.resume(
                            throwing: KubernetesError.authentication(
                                "exec plugin \(plugin.command) exited with status \(process.terminationStatus)"
                            )
                        )
                        return
                    }
                    continuation.resume(returning: data)
                } catch {
                    continuation.resume(
                        throwing: KubernetesError.authentication(
                            "cannot run exec plugin \(plugin.command)",
                            cause: error
                        )
                    )
                }
            }
        }
        let credential: ExecCredential
        do {
            credential = try JSONDecoder().decode(ExecCredential.self, from: data)
        } catch {
            throw KubernetesError.authentication("exec plugin printed no ExecCredential", cause: error)
        }
        guard let token = credential.status?.token, !token.isEmpty else {
            throw KubernetesError.authentication("ExecCredential from \(plugin.command) has no status.token")
        }
        let expiration = credential.status?.expirationTimestamp.flatMap(Self.parseTimestamp)
        return (token, expiration)
    }

    static func parseTimestamp(_ string: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: string) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: string)
    }
}

/// Adds `Authorization: Bearer` and, after a 401, refreshes the token and tries once more.
struct BearerTokenMiddleware: KubernetesMiddleware {
    let provider: TokenProvider

    func intercept(
        _ request: KubernetesRequest,
        body: KubernetesBody?,
        next: @Sendable (KubernetesRequest, KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    ) async throws -> (KubernetesResponse, KubernetesBody) {
        guard let token = try await self.provider.token() else {
            return try await next(request, body)
        }
        var authorized = request
        authorized.headers.append(("Authorization", "Bearer \(token)"))
        let (response, responseBody) = try await next(authorized, body)
        // A rotated token file or an expired exec credential: refresh once. A streamed body cannot be replayed.
        guard response.status == 401, body == nil || body?.buffer != nil else {
            return (response, responseBody)
        }
        self.provider.invalidate()
        guard let fresh = try await self.provider.token(), fresh != token else {
            return (response, responseBody)
        }
        var retried = request
        retried.headers.append(("Authorization", "Bearer \(fresh)"))
        return try await next(retried, body)
    }
}

/// Retries idempotent requests answered with 429 or 5xx, waiting as `Retry-After` asks (bounded).
struct RetryMiddleware: KubernetesMiddleware {
    let policy: KubernetesConfiguration.RetryPolicy

    func intercept(
        _ request: KubernetesRequest,
        body: KubernetesBody?,
        next: @Sendable (KubernetesRequest, KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    ) async throws -> (KubernetesResponse, KubernetesBody) {
        let replayable = body == nil || body?.buffer != nil
        guard request.isIdempotent, replayable, self.policy.maxAttempts > 1 else {
            return try await next(request, body)
        }
        var attempt = 1
        while true {
            let (response, responseBody) = try await next(request, body)
            let retryable = response.status == 429 || (500...599).contains(response.status)
            guard retryable, attempt < self.policy.maxAttempts else {
                return (response, responseBody)
            }
            attempt += 1
            var delay = self.policy.defaultDelay * (1 << min(attempt - 2, 10))
            if let header = response.header("Retry-After"),
                let seconds = Int(header.trimmingCharacters(in: .whitespaces))
            {
                delay = .seconds(max(0, seconds))
            }
            try await Task.sleep(for: min(delay, self.policy.maxDelay))
        }
    }
}
