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

import Console
import Foundation
import Gateway
public import Hummingbird
import LiveStreamModel
import Logging
import NIOCore
import NIOHTTP1
import Preview
import RelayAPI

/// Where a request for a stream's preview goes now.
enum LocalPreviewTarget: Sendable, Hashable {
    /// The preview cannot be served at all.
    case refused(LocalPreviewRefusal)
    /// No relay runs now; one starts when an encoder connects to `ingestURL`.
    case notRunning(ingestURL: String)
    /// The stream's relay runs and serves its preview on this port of 127.0.0.1.
    case relay(httpPort: Int)
}

/// Why a stream's preview cannot be served.
enum LocalPreviewRefusal: Sendable, Hashable {
    /// No such stream in the file.
    case unknown
    /// `spec.preview.enabled: false`.
    case disabled
    /// The stream cannot run (a missing Secret, a taken port): why.
    case cannotRun(String)
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
    public func addPreviewRoutes<Context: RequestContext>(to router: Router<Context>) {
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
            let id = try Self.stream(of: context)
            if case .refused(let refusal) = await self.previewTarget(id) {
                return Self.answer(refusal, of: id)
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
            let id = try Self.stream(of: context)
            let file = try context.parameters.require("file")
            switch await self.previewTarget(id) {
            case .refused(let refusal):
                return Self.answer(refusal, of: id)
            case .relay(let port):
                return await Self.proxy(file: file, of: id, port: port, logger: context.logger)
            case .notRunning(let ingestURL):
                let reason = "no relay runs for \(id) now: one starts when an encoder publishes to \(ingestURL)"
                guard file == "status" else {
                    return gatewayProblem(.serviceUnavailable, reason)
                }
                // The relay's own status while its preview waits, with the reason; the page plays once a relay runs.
                return try gatewayJSON(
                    PreviewStatus.waiting(reason),
                    formatting: [.sortedKeys, .withoutEscapingSlashes],
                    cacheControl: "no-store"
                )
            }
        }
        for path in [":namespace/:name", ":namespace/:name/:file"] {
            group.on(RouterPath(stringLiteral: path), method: .options) { _, _ in Response(status: .noContent) }
        }
    }

    /// The stream a preview path names.
    private static func stream(of context: some RequestContext) throws -> StreamID {
        StreamID(namespace: try context.parameters.require("namespace"), name: try context.parameters.require("name"))
    }

    /// The answer for a stream whose preview cannot be served.
    private static func answer(_ refusal: LocalPreviewRefusal, of id: StreamID) -> Response {
        switch refusal {
        case .unknown:
            gatewayProblem(.notFound, "no stream \(id) in the streams file")
        case .disabled:
            gatewayProblem(.notFound, "the preview of \(id) is off (spec.preview.enabled: false)")
        case .cannotRun(let reason):
            gatewayProblem(.serviceUnavailable, "\(id) cannot run: \(reason)")
        }
    }

    /// Forwards a GET for one preview file to the relay and streams its answer back. `live.mp4` goes on for as long
    /// as the stream is live, so it has no deadline; the browser leaving ends it (the body is no longer read).
    private static func proxy(file: String, of id: StreamID, port: Int, logger: Logger) async -> Response {
        do {
            return try await PreviewForwarding.forward(
                "http://127.0.0.1:\(port)/preview/\(id.name)/\(file)",
                file: file,
                logger: logger
            )
        } catch {
            // The relay stopped between the lookup and the request (idle, a crash): the page retries.
            return gatewayProblem(.badGateway, "the relay of \(id) did not answer: \(error)")
        }
    }
}
