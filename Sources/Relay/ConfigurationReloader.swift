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

    /// The file's modification time and size, which change when an editor or a ConfigMap update rewrites it.
    private func fingerprint() -> String {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: self.path) else {
            return "missing"
        }
        let date = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(date)-\(attributes[.size] ?? 0)"
    }

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
