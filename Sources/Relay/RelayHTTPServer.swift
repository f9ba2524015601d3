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

import Foundation
public import Hummingbird
public import Logging
import NIOCore
public import Prometheus

/// The relay's HTTP endpoints, on Hummingbird:
///
/// - `GET /healthz`: the process is up.
/// - `GET /readyz`: 200 while the RTMP server listens and is not draining, else 503 (so a draining pod leaves the
///   Service's endpoints).
/// - `GET /metrics`: Prometheus text.
/// - `GET /api/v1/streams`, `GET /api/v1/streams/{name}`, and `GET /api/v1/stream` when there is one stream: JSON.
/// - `POST /api/v1/streams/{name}/targets/{target}/enable` and `.../disable`: switch a target while live.
public func makeRelayHTTPApplication(
    relay: RelayServer,
    registry: PrometheusCollectorRegistry,
    host: String,
    port: Int,
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router()
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
    router.get("api/v1/stream") { _, _ -> Response in
        let statuses = relay.statuses
        guard statuses.count == 1 else {
            return problem(.conflict, "this relay serves \(statuses.count) streams: use /api/v1/streams/{name}")
        }
        return try json(statuses[0])
    }
    router.get("api/v1/streams/:name") { _, context -> Response in
        let name = try context.parameters.require("name")
        guard let status = relay.status(stream: name) else {
            return problem(.notFound, "no stream named '\(name)'")
        }
        return try json(status)
    }
    for (action, enabled) in [("enable", true), ("disable", false)] {
        router.post("api/v1/streams/:name/targets/:target/\(action)") { _, context -> Response in
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
    return Application(
        router: router,
        configuration: .init(address: .hostname(host, port: port), serverName: "liverelay"),
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? port)
        },
        logger: logger
    )
}

private func json(_ value: some Encodable) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(
        status: .ok,
        headers: headers,
        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value)))
    )
}

private func problem(_ status: HTTPResponse.Status, _ message: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    let body = (try? JSONEncoder().encode(["error": message])) ?? Data()
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
}
