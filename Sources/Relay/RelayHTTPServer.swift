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

public import Hummingbird
public import LiveStreamModel
public import Logging
public import NIOCore
import Preview
public import Prometheus
import RelayAPI

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The relay's HTTP endpoints, on Hummingbird:
///
/// - `GET /healthz`: the process is up.
/// - `GET /readyz`: 200 while the RTMP server listens and is not draining, else 503 (so a draining pod leaves the
///   Service's endpoints).
/// - `GET /metrics`: Prometheus text.
/// - `GET /api/v1/streams`, `GET /api/v1/streams/{name}`, and `GET /api/v1/stream` when there is one stream: JSON.
/// - `POST /api/v1/streams/{name}/targets/{target}/enable` and `.../disable`: switch a target while live; only for
///   clients inside `controlFrom` (403 otherwise).
/// - `GET /preview/{name}/`: the live preview (see ``addPreviewRoutes(to:relay:)``).
///
/// The read-only endpoints answer anyone who reaches the port: probes, Prometheus and the preview's Ingress all
/// need them. Switching a target off stops a stream going out, so it is loopback-only by default: local mode's
/// relays and `kubectl port-forward` (which connects inside the pod's network namespace) come from there, a
/// neighbouring pod does not.
public func makeRelayHTTPApplication(
    relay: RelayServer,
    registry: PrometheusCollectorRegistry,
    host: String,
    port: Int,
    controlFrom: [IPRange] = RelayHTTPContext.loopback,
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router(context: RelayHTTPContext.self)
    router.get("healthz") { _, _ in "ok\n" }
    router.get("readyz") { _, _ -> Response in
        relay.isReady
            ? Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ready\n")))
            : Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "not ready\n")))
    }
    router.get("metrics") { _, _ -> Response in
        relay.refreshMetrics()
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(
            status: .ok,
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
        )
    }
    router.get("api/v1/streams") { _, _ in try json(relay.statuses) }
    router.get("api/v1/stream") { request, _ -> Response in
        try await watchable(request) {
            let statuses = relay.statuses
            guard statuses.count == 1 else {
                return .answer(
                    problem(.conflict, "this relay serves \(statuses.count) streams: use /api/v1/streams/{name}")
                )
            }
            return .found(statuses[0])
        }
    }
    router.get("api/v1/streams/:name") { request, context -> Response in
        let name = try context.parameters.require("name")
        return try await watchable(request) {
            guard let status = relay.status(stream: name) else {
                return .answer(problem(.notFound, "no stream named '\(name)'"))
            }
            return .found(status)
        }
    }
    for (action, enabled) in [("enable", true), ("disable", false)] {
        router.post("api/v1/streams/:name/targets/:target/\(action)") { _, context -> Response in
            guard let remote = context.remoteAddress, controlFrom.contains(where: { $0.contains(remote) }) else {
                let from = context.remoteAddress?.ipAddress ?? "an unknown address"
                logger.notice(
                    "Target control refused: the client is outside --control-from",
                    metadata: ["http.client": "\(from)"]
                )
                return problem(
                    .forbidden,
                    "target control is allowed from \(controlFrom.map(\.description).joined(separator: ", ")) only "
                        + "(--control-from); this request came from \(from)"
                )
            }
            let name = try context.parameters.require("name")
            let target = try context.parameters.require("target")
            do throws(RelayServer.ControlError) {
                try relay.setTarget(stream: name, target: target, enabled: enabled)
            } catch .noSuchStream {
                return problem(.notFound, "no stream named '\(name)'")
            } catch {
                return problem(.notFound, "stream '\(name)' has no target named '\(target)'")
            }
            return try json(relay.status(stream: name))
        }
    }
    addPreviewRoutes(to: router, relay: relay)
    return Application(
        router: router,
        configuration: .init(address: .hostname(host, port: port), serverName: "liverelay"),
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? port)
        },
        logger: logger
    )
}

private enum StatusLookup {
    case found(StreamStatus)
    /// No such stream: the answer that says so.
    case answer(Response)
}

/// The most a watch of a stream's status may wait for a change.
let maximumStatusWait: Duration = .seconds(60)
/// How often a waiting watch looks at the stream.
let statusWatchInterval: Duration = .milliseconds(100)

/// A stream's status, watchable: the answer's `ETag` is the ``RelayStreamReport/entityTag`` of what the status says
/// in a LiveStream's terms (live or not, each target's state and last error; not its counters). A request with
/// `?wait=SECONDS` and `If-None-Match` set to that tag is answered when the report changes, or `304 Not Modified`
/// after the wait (at most ``maximumStatusWait``): how the operator learns within a fraction of a second that a
/// stream went live or idle, with one request per relay and change instead of polling.
private func watchable(
    _ request: Request,
    status: () -> StatusLookup
) async throws -> Response {
    let wait = request.uri.queryParameters["wait"].flatMap { Double(String($0)) }.map { max(0, $0) } ?? 0
    let known = request.headers[.ifNoneMatch]
    let deadline = ContinuousClock.now + min(.milliseconds(Int64(wait * 1000)), maximumStatusWait)
    while true {
        let current: StreamStatus
        switch status() {
        case .answer(let response): return response
        case .found(let value): current = value
        }
        let body = try jsonData(current)
        let tag = RelayStreamReport(current).entityTag
        guard let known, known == tag else {
            var response = jsonResponse(body)
            response.headers[.eTag] = tag
            return response
        }
        guard ContinuousClock.now < deadline else {
            var headers = HTTPFields()
            headers[.eTag] = tag
            return Response(status: .notModified, headers: headers)
        }
        try await Task.sleep(for: statusWatchInterval)
    }
}

private func json(_ value: some Encodable) throws -> Response {
    jsonResponse(try jsonData(value))
}

private func jsonData(_ value: some Encodable) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    return try encoder.encode(value)
}

private func jsonResponse(_ body: Data) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
}

private func problem(_ status: HTTPResponse.Status, _ message: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    let encoder = JSONEncoder()
    encoder.outputFormatting = .withoutEscapingSlashes
    let body = (try? encoder.encode(["error": message])) ?? Data()
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
}

/// A request to the relay's HTTP endpoints, with the client's address for the target-control check.
public struct RelayHTTPContext: RequestContext, RemoteAddressRequestContext {
    /// What target control accepts unless told otherwise: the loopback addresses, as written in `--control-from`.
    public static let loopbackRanges = ["127.0.0.0/8", "::1/128"]
    public static let loopback: [IPRange] = loopbackRanges.map { try! IPRange($0) }  // literals: cannot fail

    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}

/// The relay's HTTP endpoints with a registry of their own for `/metrics`.
public func makeRelayHTTPApplication(
    relay: RelayServer,
    host: String,
    port: Int,
    controlFrom: [IPRange] = RelayHTTPContext.loopback,
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    makeRelayHTTPApplication(
        relay: relay,
        registry: PrometheusCollectorRegistry(),
        host: host,
        port: port,
        controlFrom: controlFrom,
        logger: logger,
        onServerRunning: onServerRunning
    )
}

/// The live preview of each stream with `preview.enabled`, under `/preview/{name}/` (and the same under the Ingress
/// path, `/live/{namespace}/{name}/`), every URL relative to it:
///
/// - `/preview/{name}/`: the preview page (``PreviewPage``); `/preview/{name}` redirects there.
/// - `status`: the preview's state as JSON (``PreviewStatus``).
/// - `live.mp4`: fragmented MP4 as it is written, init segment first, from the latest keyframe on; it ends when the
///   output ends or restarts.
/// - `init.mp4`: the init segment alone.
/// - `index.m3u8` and its segments: HLS, a sliding window of short segments cut at keyframes.
///
/// Every answer allows any origin (CORS). The playlist, status and live stream are not cached; segments, whose
/// names are never reused, are immutable.
func addPreviewRoutes(to router: Router<RelayHTTPContext>, relay: RelayServer) {
    // `/preview/NAME/`, and `/live/NAMESPACE/NAME/`: the path of the stream's Ingress in a cluster (the operator's
    // `RelayChildren.previewPath`), which an Ingress passes on unchanged. A relay serves one stream in a cluster, so
    // the namespace, which only keeps streams of the same name apart on the Ingress host, is not checked.
    for prefix in ["preview", "live/:namespace"] {
        addPreviewRoutes(to: router, under: RouterPath(stringLiteral: prefix), relay: relay)
    }
}

private func addPreviewRoutes(to router: Router<RelayHTTPContext>, under prefix: RouterPath, relay: RelayServer) {
    let group = router.group(prefix)
        .add(
            middleware: CORSMiddleware(
                allowOrigin: .all,
                allowHeaders: [.accept, .range, .origin, .contentType],
                allowMethods: [.get, .head, .options],
                maxAge: .seconds(600)
            )
        )
    group.get(":name") { request, context -> Response in
        let name = try context.parameters.require("name")
        guard relay.preview(stream: name) != nil else {
            return problem(.notFound, "no stream named '\(name)' with a preview")
        }
        guard request.uri.path.hasSuffix("/") else {
            // The page's URLs are relative to its directory; relative here too, for an ingress path prefix.
            var headers = HTTPFields()
            headers[.location] = "\(name)/"
            return Response(status: .movedPermanently, headers: headers)
        }
        return previewResponse(
            ByteBuffer(string: PreviewPage.html),
            contentType: "text/html; charset=utf-8",
            cache: "no-cache"
        )
    }
    group.get(":name/:file") { _, context -> Response in
        let name = try context.parameters.require("name")
        let file = try context.parameters.require("file")
        guard let preview = relay.preview(stream: name) else {
            return problem(.notFound, "no stream named '\(name)' with a preview")
        }
        switch file {
        case "status":
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return previewResponse(
                ByteBuffer(bytes: try encoder.encode(preview.status)),
                contentType: "application/json",
                cache: "no-store"
            )
        case "live.mp4":
            guard let live = preview.subscribe() else {
                return problem(.notFound, "the preview of '\(name)' is not live")
            }
            var headers = HTTPFields()
            headers[.contentType] = live.mimeType
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: live.body))
        case "init.mp4":
            guard let segment = preview.initSegment else {
                return problem(.notFound, "the preview of '\(name)' is not live")
            }
            return previewResponse(segment, contentType: "video/mp4", cache: "no-cache")
        default:
            guard let data = preview.hlsFile(file) else {
                return problem(.notFound, "no preview file '\(file)' for '\(name)'")
            }
            if file.hasSuffix(".m3u8") {
                return previewResponse(data, contentType: "application/vnd.apple.mpegurl", cache: "no-cache")
            }
            return previewResponse(data, contentType: "video/mp2t", cache: "public, max-age=31536000, immutable")
        }
    }
    for path in [":name", ":name/:file"] {
        group.on(RouterPath(stringLiteral: path), method: .options) { _, _ in Response(status: .noContent) }
    }
}

private func previewResponse(_ body: ByteBuffer, contentType: String, cache: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = contentType
    headers[.cacheControl] = cache
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
}
