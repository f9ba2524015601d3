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

public import Logging
public import ServiceLifecycle
import UnixSignals

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reloads the relay's streams from its YAML file on SIGHUP and when the file changes, without touching the
/// streams and targets that did not change. A file that does not parse is reported and changes nothing.
public struct ConfigurationReloader: Service {
    let path: String
    let secretsDirectory: String
    let relay: RelayServer
    let logger: Logger
    let pollInterval: Duration

    public init(
        path: String,
        secretsDirectory: String,
        relay: RelayServer,
        logger: Logger,
        pollInterval: Duration = .seconds(1)
    ) {
        self.path = path
        self.secretsDirectory = secretsDirectory
        self.relay = relay
        self.logger = logger
        self.pollInterval = pollInterval
    }

    public func run() async throws {
        var lastSeen = self.fingerprint()
        await withDiscardingTaskGroup { group in
            let (triggers, trigger) = AsyncStream<String>.makeStream()
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
                    trigger.yield("SIGHUP")
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(for: self.pollInterval)
                    } catch {
                        break
                    }
                    trigger.yield("poll")
                }
                trigger.finish()
            }
            for await reason in triggers.cancelOnGracefulShutdown() {
                let current = self.fingerprint()
                guard reason == "SIGHUP" || current != lastSeen else {
                    continue
                }
                lastSeen = current
                self.reload(because: reason == "SIGHUP" ? "SIGHUP" : "the file changed")
            }
            group.cancelAll()
        }
    }

    /// What a change of the configuration shows in: the file's contents, and the contents of the mounted Secrets
    /// its streams read keys from. Kubelet updates a mounted ConfigMap or Secret by swapping the `..data` symlink of
    /// its directory: the file the relay is given is a symlink whose own attributes never change, so only what it
    /// leads to tells an update (a target switched in the console, or a key rotated with "New key"); the relay
    /// then reloads, and a stream whose ingest key changed takes only the new one. Hashed in this process only: no
    /// key is kept or logged.
    private func fingerprint() -> Int {
        var hasher = Hasher()
        let files = FileManager.default
        // `contents(atPath:)` follows the symlinks; the document is a few kilobytes.
        if let contents = files.contents(atPath: self.path) {
            hasher.combine(contents)
        } else {
            hasher.combine("missing")
        }
        let secrets = (try? files.contentsOfDirectory(atPath: self.secretsDirectory)) ?? []
        for secret in secrets.sorted().prefix(Self.maxSecrets) where !secret.hasPrefix(".") {
            let directory = self.secretsDirectory + "/" + secret
            let keys = (try? files.contentsOfDirectory(atPath: directory)) ?? []
            for key in keys.sorted().prefix(Self.maxKeysPerSecret) where !key.hasPrefix(".") {
                hasher.combine(secret)
                hasher.combine(key)
                // `contents(atPath:)` follows the key's symlink into the current `..data`; a Secret is at most
                // 1 MiB, and these are a stream's few keys.
                hasher.combine(files.contents(atPath: directory + "/" + key))
            }
        }
        return hasher.finalize()
    }

    /// Bounds on what a poll reads of the Secrets directory (the operator mounts one Secret per key reference).
    static let maxSecrets = 64
    static let maxKeysPerSecret = 16

    func reload(because reason: String) {
        do {
            let text = try String(contentsOfFile: self.path, encoding: .utf8)
            let streams = try RelayConfiguration.streams(
                yaml: text,
                source: self.path,
                secretsDirectory: self.secretsDirectory
            )
            try self.relay.reload(streams: streams)
        } catch {
            self.logger.error(
                "Configuration not reloaded; the running one stays",
                metadata: ["relay.config": "\(self.path)", "relay.reload.reason": "\(reason)", "error": "\(error)"]
            )
        }
    }
}
