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
import Foundation
import LiveStreamModel
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// What a running relay says about its stream: whether a publisher is connected, and each target's state.
struct RelayReport: Sendable, Hashable {
    var live: Bool
    var targets: [LiveStreamStatus.TargetStatus]
}

/// Reads a running relay's `GET /api/v1/stream` (through its Service) for the LiveStream's status.
///
/// Only the fields the status shows are decoded, so the operator does not depend on the relay module; the names of
/// target states are the relay's, capitalized as Kubernetes writes states (`pushing` becomes `Pushing`).
struct RelayStatusReader: Sendable {
    /// `{service}` and `{namespace}` are replaced by the relay's Service and namespace.
    let urlTemplate: String
    let timeout: Duration

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The status URL of the stream's relay, through its Service.
    func url(of stream: StreamID) -> String {
        self.urlTemplate
            .replacingOccurrences(of: "{service}", with: RelayChildren.childName(stream.name))
            .replacingOccurrences(of: "{namespace}", with: stream.namespace)
    }

    func read(_ stream: StreamID) async throws -> RelayReport {
        let url = self.url(of: stream)
        let response = try await HTTPClient.shared.execute(
            HTTPClientRequest(url: url),
            timeout: TimeAmount(self.timeout)
        )
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw Failure(description: "\(url) answered \(response.status.code)")
        }
        let stream = try JSONDecoder().decode(Stream.self, from: body)
        return RelayReport(
            live: stream.state == "live",
            targets: stream.targets.map { target in
                LiveStreamStatus.TargetStatus(
                    name: target.name,
                    state: target.state.prefix(1).uppercased() + target.state.dropFirst(),
                    lastError: target.lastError
                )
            }.sorted { $0.name < $1.name }
        )
    }

    /// The part of the relay's stream JSON the status uses.
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
