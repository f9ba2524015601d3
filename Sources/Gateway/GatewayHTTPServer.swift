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

package import Foundation
public import Hummingbird
import LiveStreamModel
public import Logging
public import NIOCore
public import Prometheus

/// The gateway's HTTP endpoints, on Hummingbird:
///
/// - `GET /keda/streams/{namespace}/{name}`: the stream's connections for KEDA's `metrics-api` trigger,
///   `{"stream":"ns/name","connections":N,"live":L,"held":H}`, where `connections` = live + held. A stream the
///   gateway has no route for answers 0, not 404: KEDA polls streams before their first connection, and an error
///   there would show as a failing ScaledObject rather than an idle one.
/// - `GET /api/v1/routes`: every route, with its port and whether its relay is ready (JSON).
/// - `GET /metrics`: Prometheus text.
/// - `POST /whip/{namespace}/{name}` and the session resources: WebRTC ingest (``WHIPService``), when given.
/// - `GET /go-live/{namespace}/{name}`: the browser's go-live page, which publishes to that WHIP endpoint, with it.
/// - `GET /healthz`: the process is up. `GET /readyz`: 200 once the listeners are open, 503 while draining.
///
/// `routes` adds endpoints of the process the gateway runs in (local mode adds its stable preview paths).
public func makeGatewayHTTPApplication(
    gateway: Gateway,
    registry: PrometheusCollectorRegistry,
    host: String,
    port: Int,
    logger: Logger,
    whip: WHIPService? = nil,
    routes: (Router<GatewayHTTPContext>) -> Void = { _ in },
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router(context: GatewayHTTPContext.self)
    addGatewayRoutes(to: router, gateway: gateway, registry: registry)
    whip?.addRoutes(to: router)
    routes(router)
    return Application(
        router: router,
        configuration: .init(address: .hostname(host, port: port), serverName: "liverelay-gateway"),
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? port)
        },
        logger: logger
    )
}

/// A request to the gateway's HTTP listener, with the client's address: local mode's console counts failed
/// sign-ins per address with it.
public struct GatewayHTTPContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The listener's address the request came to: the destination of the PROXY header a WHIP publish sends the
    /// relay.
    public let localAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.localAddress = source.channel.localAddress
    }
}

/// The endpoints of ``makeGatewayHTTPApplication(gateway:registry:host:port:logger:whip:routes:onServerRunning:)``.
func addGatewayRoutes(to router: Router<GatewayHTTPContext>, gateway: Gateway, registry: PrometheusCollectorRegistry) {
    router.get("healthz") { _, _ in "ok\n" }
    router.get("readyz") { _, _ -> Response in
        gateway.isReady
            ? Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ready\n")))
            : Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "not ready\n")))
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
    router.get("keda/streams/:namespace/:name") { _, context -> Response in
        let namespace = try context.parameters.require("namespace")
        let name = try context.parameters.require("name")
        let stream = StreamID(namespace: namespace, name: name)
        let (live, held) = gateway.connections(for: stream)
        return try gatewayJSON(KEDAMetric(stream: stream.description, connections: live + held, live: live, held: held))
    }
    router.get("api/v1/routes") { _, _ -> Response in
        let routes = gateway.routes.routes.sorted { $0.listenPort < $1.listenPort }.map { route in
            let (live, held) = gateway.connections(for: route.stream)
            return RouteSummary(
                stream: route.stream.description,
                port: route.listenPort,
                relayReady: route.upstream != nil,
                suspended: route.suspended,
                allowedSourceRanges: route.allowedSourceRanges.map(\.description),
                connections: live,
                held: held
            )
        }
        return try gatewayJSON(routes)
    }
}

private struct KEDAMetric: Encodable {
    var stream: String
    var connections: Int
    var live: Int
    var held: Int
}

private struct RouteSummary: Encodable {
    var stream: String
    var port: Int
    var relayReady: Bool
    var suspended: Bool
    var allowedSourceRanges: [String]
    var connections: Int
    var held: Int
}

/// A JSON answer of the gateway's HTTP endpoints, and of those added to them
/// (``makeGatewayHTTPApplication(gateway:registry:host:port:logger:whip:routes:onServerRunning:)``).
package func gatewayJSON(
    _ value: some Encodable,
    formatting: JSONEncoder.OutputFormatting = [.sortedKeys],
    cacheControl: String? = nil
) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = formatting
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    headers[.cacheControl] = cacheControl
    return Response(
        status: .ok,
        headers: headers,
        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value)))
    )
}

/// An error answer, `{"error": message}`, in the shape the relay's endpoints use.
package func gatewayProblem(_ status: HTTPResponse.Status, _ message: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    let encoder = JSONEncoder()
    encoder.outputFormatting = .withoutEscapingSlashes
    let body = (try? encoder.encode(["error": message])) ?? Data()
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
}
