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
import RelayAPI
import TimeSupport

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
        guard let (report, _) = try await self.read(stream, changedFrom: nil, wait: .zero) else {
            throw Failure(description: "\(self.url(of: stream)) answered 304 to a plain read")
        }
        return report
    }

    /// Waits up to `wait` for the relay's report to differ from the one tagged `tag` (see
    /// ``RelayStreamReport/entityTag``); returns it with its tag, or `nil` when nothing changed in that time.
    func read(
        _ stream: StreamID,
        changedFrom tag: String?,
        wait: Duration
    ) async throws -> (report: RelayStreamReport, tag: String?)? {
        let seconds = wait.inSeconds
        var url = self.url(of: stream)
        var request = HTTPClientRequest(url: url)
        if let tag, seconds > 0 {
            url += (url.contains("?") ? "&" : "?") + "wait=\(seconds)"
            request = HTTPClientRequest(url: url)
            request.headers.add(name: "If-None-Match", value: tag)
        }
        let response = try await HTTPClient.shared.execute(request, timeout: TimeAmount(self.timeout + wait))
        let body = try await response.body.collect(upTo: 1 << 20)
        if response.status == .notModified {
            return nil
        }
        guard response.status == .ok else {
            throw Failure(description: "\(url) answered \(response.status.code)")
        }
        return (try RelayStreamReport(json: Data(buffer: body)), response.headers.first(name: "ETag"))
    }
}
