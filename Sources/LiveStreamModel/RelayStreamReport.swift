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

public import Foundation

/// What a running relay's `GET /api/v1/stream` says about its stream, in the terms of a LiveStream's status: the
/// operator writes it into `status`, and local mode prints each target's changes.
public struct RelayStreamReport: Sendable, Hashable {
    /// A publisher is connected.
    public var live: Bool
    /// Each target's state (capitalized, as ``LiveStreamStatus/TargetStatus`` has it) and last error, by name.
    public var targets: [LiveStreamStatus.TargetStatus]

    public init(live: Bool, targets: [LiveStreamStatus.TargetStatus]) {
        self.live = live
        self.targets = targets
    }

    /// Reads the relay's JSON; only the fields used here are required.
    public init(json: Data) throws {
        let stream = try JSONDecoder().decode(Stream.self, from: json)
        self.live = stream.state == "live"
        self.targets = stream.targets.map { target in
            LiveStreamStatus.TargetStatus(
                name: target.name,
                state: target.state.prefix(1).uppercased() + target.state.dropFirst(),
                lastError: target.lastError
            )
        }.sorted { $0.name < $1.name }
    }

    /// The part of the relay's stream JSON the report uses.
    private struct Stream: Decodable {
        struct Target: Decodable {
            var name: String
            var state: String
            var lastError: String?
        }
        var state: String
        var targets: [Target]
    }
}
