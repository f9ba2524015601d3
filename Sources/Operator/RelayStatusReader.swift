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

/// Reads a running relay's ``RelayStreamReport`` through its Service.
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

    func read(_ stream: StreamID) async throws -> RelayStreamReport {
        let url = self.url(of: stream)
        let response = try await HTTPClient.shared.execute(
            HTTPClientRequest(url: url),
            timeout: TimeAmount(self.timeout)
        )
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw Failure(description: "\(url) answered \(response.status.code)")
        }
        return try RelayStreamReport(json: Data(buffer: body))
    }
}
