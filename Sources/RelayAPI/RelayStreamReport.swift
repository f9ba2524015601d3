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

public import LiveStreamModel

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// What a running relay's `GET /api/v1/stream` (a ``StreamStatus``) says about its stream, in the terms of a
/// LiveStream's status: the operator writes it into `status`, and local mode prints each target's changes.
public struct RelayStreamReport: Sendable, Hashable {
    /// A publisher is connected.
    public var live: Bool
    /// Each target's state (capitalized, as ``LiveStreamStatus/TargetStatus`` has it) and last error, by name.
    public var targets: [LiveStreamStatus.TargetStatus]

    public init(live: Bool, targets: [LiveStreamStatus.TargetStatus]) {
        self.live = live
        self.targets = targets
    }

    /// What `status` says, without its counters.
    public init(_ status: StreamStatus) {
        self.live = status.state == "live"
        self.targets = status.targets.map { target in
            LiveStreamStatus.TargetStatus(
                name: target.name,
                state: target.state.prefix(1).uppercased() + target.state.dropFirst(),
                lastError: target.lastError
            )
        }.sorted { $0.name < $1.name }
    }

    /// Reads the relay's JSON, a ``StreamStatus``.
    public init(json: Data) throws {
        self.init(try JSONDecoder().decode(StreamStatus.self, from: json))
    }

    /// A validator of the report (an HTTP entity tag, quoted): equal reports have equal tags, in every process. The
    /// relay answers a watch with it, and a reader sends it back to wait for the next change.
    public var entityTag: String {
        var text = self.live ? "live" : "idle"
        for target in self.targets {
            text += "\u{0}\(target.name)\u{1}\(target.state)\u{1}\(target.lastError ?? "")"
        }
        // FNV-1a, 64 bits: a stable digest, not a secret.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "\"" + String(repeating: "0", count: 16 - hex.count) + hex + "\""
    }
}
