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
public import Hummingbird
import LiveStreamModel
import Logging
import NIOCore
import NIOHTTP1
import Preview

/// Where a request for a stream's preview goes now.
enum LocalPreviewTarget: Sendable, Hashable {
    /// No such stream in the file.
    case unknown
    /// `spec.preview.enabled: false`.
    case disabled
    /// The stream cannot run (a missing Secret, a taken port): why.
    case cannotRun(String)
    /// No relay runs now; one starts when an encoder connects to `ingestURL`.
    case notRunning(ingestURL: String?)
    /// The stream's relay runs and serves its preview on this port of 127.0.0.1.
    case relay(httpPort: Int)
}

extension LocalRuntime {
    /// The live preview of every stream at one address for as long as local mode runs, as the Ingress path gives it
    /// in a cluster: `/preview/NAMESPACE/NAME/`.
    ///
    /// A relay runs only while someone streams, and binds a new HTTP port each time it starts, so its own preview
    /// address changes with every start. Here the page is served whether the relay runs or not; its `status` says
    /// `waiting` (with the ingest URL to publish to) while no relay runs, and the page starts playing by itself once
    /// one does. Every other file (`live.mp4`, `init.mp4`, the HLS playlist and segments) is proxied to the running
    /// relay, streamed as it arrives; without one it is 503 with the reason. CORS as on the relay.
    public func addPreviewRoutes(to router: Router<BasicRequestContext>) {
        let group = router.group("preview")
            .add(
                middleware: CORSMiddleware(
                    allowOrigin: .all,
                    allowHeaders: [.accept, .range, .origin, .contentType],
                    allowMethods: [.get, .head, .options],
                    maxAge: .seconds(600)
                )
            )
        group.get(":namespace/:name") { request, context -> Response in
            let id = StreamID(
                namespace: try context.parameters.require("namespace"),
                name: try context.parameters.require("name")
            )
            if let refusal = Self.refusal(for: await self.previewTarget(id), of: id) {
                return refusal
            }
            guard request.uri.path.hasSuffix("/") else {
                // The page's URLs are relative to its directory.
                var headers = HTTPFields()
                headers[.location] = "\(id.name)/"
                return Response(status: .movedPermanently, headers: headers)
            }
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            headers[.cacheControl] = "no-cache"
            return Response(
                status: .ok,
                headers: headers,
                body: .init(byteBuffer: ByteBuffer(string: PreviewPage.html))
            )
        }
        group.get(":namespace/:name/:file") { _, context -> Response in
            let id = StreamID(
                namespace: try context.parameters.require("namespace"),
                name: try context.parameters.require("name")
            )
            let file = try context.parameters.require("file")
            let target = await self.previewTarget(id)
            if let refusal = Self.refusal(for: target, of: id) {
                return refusal
            }
            guard case .relay(let port) = target else {
                let ingest: String
                if case .notRunning(let url?) = target {
                    ingest = url
                } else {
                    ingest = "its ingest URL"
                }
                let reason = "no relay runs for \(id) now: one starts when an encoder publishes to \(ingest)"
                if file == "status" {
                    // What the page shows while it waits; it plays once a relay runs.
                    return try Self.json(WaitingStatus(error: reason))
                }
                return Self.problem(.serviceUnavailable, reason)
            }
            return await Self.proxy(file: file, of: id, port: port, logger: context.logger)
        }
        for path in [":namespace/:name", ":namespace/:name/:file"] {
            group.on(RouterPath(stringLiteral: path), method: .options) { _, _ in Response(status: .noContent) }
        }
    }

    /// The answer for a stream whose preview cannot be served at all, or `nil`.
    private static func refusal(for target: LocalPreviewTarget, of id: StreamID) -> Response? {
        switch target {
        case .unknown:
            problem(.notFound, "no stream \(id) in the streams file")
        case .disabled:
            problem(.notFound, "the preview of \(id) is off (spec.preview.enabled: false)")
        case .cannotRun(let reason):
            problem(.serviceUnavailable, "\(id) cannot run: \(reason)")
        case .notRunning, .relay:
            nil
        }
    }

    /// Forwards a GET for one preview file to the relay and streams its answer back. `live.mp4` goes on for as long
    /// as the stream is live, so it has no deadline; the browser leaving ends it (the body is no longer read).
    private static func proxy(file: String, of id: StreamID, port: Int, logger: Logger) async -> Response {
        let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/preview/\(id.name)/\(file)")
        let deadline: NIODeadline = file == "live.mp4" ? .distantFuture : .now() + .seconds(10)
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, deadline: deadline, logger: logger)
        } catch {
            // The relay stopped between the lookup and the request (idle, a crash): the page retries.
            return problem(.badGateway, "the relay of \(id) did not answer: \(error)")
        }
        var headers = HTTPFields()
        headers[.contentType] = response.headers.first(name: "content-type")
        headers[.cacheControl] = response.headers.first(name: "cache-control")
        headers[.contentLength] = response.headers.first(name: "content-length")
        return Response(
            status: .init(code: Int(response.status.code)),
            headers: headers,
            body: ResponseBody(asyncSequence: response.body)
        )
    }

    private static func problem(_ status: HTTPResponse.Status, _ message: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let body = (try? encoder.encode(["error": message])) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    private static func json(_ value: some Encodable) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(
            status: .ok,
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value)))
        )
    }
}

/// The preview status (the relay's `PreviewStatus` fields the page reads) while no relay runs.
private struct WaitingStatus: Encodable {
    var state = "waiting"
    var generation = 0
    var error: String
}
