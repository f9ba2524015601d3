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
public import Hummingbird
public import Logging
import NIOCore
import NIOHTTP1

/// A relay's live preview served on the console's origin, where the console's page may frame it: one GET forwarded
/// to the relay and its answer streamed back as it arrives. Local mode forwards to the relay process, the cluster
/// console to the relay's Service.
public enum PreviewForwarding {
    /// Forwards a GET of `url`, one file of the preview (`file`, empty for the page). `live.mp4` goes on for as long
    /// as the stream is live, so it has no deadline; the browser leaving ends it (the body is no longer read).
    ///
    /// - Throws: what the HTTP client throws when the relay does not answer (it stopped, it is not there yet).
    public static func forward(_ url: String, file: String, logger: Logger) async throws -> Response {
        let deadline: NIODeadline = file == "live.mp4" ? .distantFuture : .now() + .seconds(10)
        let response = try await HTTPClient.shared.execute(
            HTTPClientRequest(url: url),
            deadline: deadline,
            logger: logger
        )
        var headers = HTTPFields()
        headers[.contentType] = response.headers.first(name: "content-type")
        headers[.cacheControl] = response.headers.first(name: "cache-control")
        headers[.contentLength] = response.headers.first(name: "content-length")
        headers[.location] = response.headers.first(name: "location")
        return Response(
            status: .init(code: Int(response.status.code)),
            headers: headers,
            body: ResponseBody(asyncSequence: response.body)
        )
    }
}
