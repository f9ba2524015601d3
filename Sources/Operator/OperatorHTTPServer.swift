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
public import KubernetesController
public import Logging
import NIOCore
public import Prometheus

/// The operator's HTTP endpoints, on Hummingbird, as the gateway and the relay serve theirs:
///
/// - `GET /metrics`: Prometheus text (see ``ControllerMetrics`` and ``KubernetesRequestMetrics``).
/// - `GET /healthz`: 200 while the controller runs and every watch makes progress; 503 when its run ended or a
///   watch has not reached the API server for the stall timeout (a liveness probe then restarts the process).
/// - `GET /readyz`: 200 once every cache of the leader has synced; a standby (leader election) is ready as soon as
///   it runs, whatever its leadership, because it has nothing to sync and a rolling update must not wait for it to
///   lead. Nothing routes traffic by it: it tells a rollout that the new pod works.
///
/// The body says why (`leading`, `standby`, `not synced: secrets`, `stalled: deployments`).
public func makeOperatorHTTPApplication(
    health: @escaping @Sendable () -> ControllerHealth,
    registry: PrometheusCollectorRegistry,
    host: String,
    port: Int,
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router()
    router.get("healthz") { _, _ -> Response in
        let health = health()
        return plain(health.isLive ? .ok : .serviceUnavailable, "\(health)\n")
    }
    router.get("readyz") { _, _ -> Response in
        let health = health()
        return plain(health.isReady ? .ok : .serviceUnavailable, "\(health)\n")
    }
    router.get("metrics") { _, _ -> Response in
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(
            status: .ok,
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
        )
    }
    return Application(
        router: router,
        configuration: .init(address: .hostname(host, port: port), serverName: "liverelay-operator"),
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? port)
        },
        logger: logger
    )
}

private func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "text/plain; charset=utf-8"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
}
