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

import ArgumentParser
import Foundation
import Gateway
import KubernetesClient
import Logging
import Metrics
import Operator
import Prometheus
import ServiceLifecycle
import UnixSignals
import WebRTC

/// `liverelay gateway`: the always-on front of every relay in a cluster.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Listen on every LiveStream's port, hold connections while a relay scales up, proxy to the relay.",
        discussion: """
            Routes come from the LiveStreams in the cluster (their status.port, allowedSourceRanges and suspend) \
            and the endpoints of each stream's relay Service. A connection for a relay with no ready endpoint is \
            held, counted at once in /keda/streams/NAMESPACE/NAME, and the relay's Deployment is scaled to one \
            replica through its scale subresource. Without a cluster, use `liverelay local`, which runs this \
            gateway in-process.
            """
    )

    @OptionGroup var cluster: ClusterOptions

    @Option(help: "Watch LiveStreams in this namespace only (default: every namespace).")
    var namespace: String?

    @Option(help: "Address the stream ports listen on.")
    var listenHost: String = "0.0.0.0"

    @OptionGroup(title: "WebRTC ingest (WHIP)")
    var whip: WHIPOptions

    @Option(help: "The relays' RTMP port, on their per-stream Service.")
    var relayPort: Int = 1935

    @Option(help: "HTTP address of /keda/streams/NS/NAME, /metrics, /healthz, /readyz, /api/v1/routes.")
    var httpListen: String = "0.0.0.0:8080"

    @Flag(
        help: """
            Start every connection to a relay with a PROXY protocol (v1) header naming the encoder. The relays must \
            expect it: run the operator with --relay-proxy-protocol-from covering this gateway's pods.
            """
    )
    var sendProxyHeader = false

    @Option(
        help: ArgumentHelp(
            "A port that takes every stream with a key, as rtmp://HOST:PORT/APP/KEY (1935, say); none by default.",
            discussion: "Needs --ingest-key-book: the keys come from the Secret the operator keeps them in."
        )
    )
    var sharedPort: Int?

    @Option(
        help: """
            NAMESPACE/NAME of the Secret the operator keeps the streams' keys in (its --ingest-key-book), the only \
            Secret the gateway reads.
            """
    )
    var ingestKeyBook: String?

    @OptionGroup(title: "rtmps://")
    var tls: IngestTLSOptions

    @Option(help: "Seconds a connection is held while its relay scales up, before it is refused.")
    var holdTimeout: Double = 60

    @Option(help: "Connections held at once for one stream.")
    var maxHeldPerStream: Int = 16

    @Option(help: "Connections held at once over all streams.")
    var maxHeldTotal: Int = 1024

    @Option(help: "Seconds proxied connections may go on after SIGTERM.")
    var shutdownGrace: Double = 30

    @OptionGroup(title: "Logging")
    var log: LogOptions

    func validate() throws {
        if let port = self.sharedPort, !(1...65535).contains(port) {
            throw ValidationError("--shared-port must be a TCP port (1-65535), got \(port).")
        }
        if self.sharedPort != nil, self.ingestKeyBook == nil {
            throw ValidationError(
                "--shared-port needs --ingest-key-book: without the keys no stream can be found on it."
            )
        }
        if let book = self.ingestKeyBook, Self.secretName(book) == nil {
            throw ValidationError("--ingest-key-book must be NAMESPACE/NAME, got \(book).")
        }
        guard self.holdTimeout > 0, self.shutdownGrace >= 0, self.maxHeldPerStream >= 0, self.maxHeldTotal >= 0 else {
            throw ValidationError("hold timeout must be above 0; limits and grace at least 0.")
        }
        guard (1...65535).contains(self.relayPort) else {
            throw ValidationError("--relay-port must be a port, 1 to 65535.")
        }
        _ = try RelayCommand.hostAndPort(self.httpListen, flag: "--http-listen")
    }

    func run() async throws {
        self.log.bootstrap()
        let logger = Logger(label: "liverelay.gateway")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let configuration: KubernetesConfiguration
        do {
            configuration = try self.cluster.kubernetesConfiguration()
        } catch {
            throw ValidationError("no Kubernetes API to watch: \(error). Without a cluster, run `liverelay local`.")
        }
        try await withKubernetesClient(configuration: configuration, logger: logger) { client in
            let routes = GatewayRoutes()
            let gateway: Gateway
            do {
                gateway = try Gateway(
                    configuration: GatewayConfiguration(
                        host: self.listenHost,
                        maxHeldPerStream: self.maxHeldPerStream,
                        maxHeldTotal: self.maxHeldTotal,
                        holdTimeout: .milliseconds(Int64(self.holdTimeout * 1000)),
                        shutdownGrace: .milliseconds(Int64(self.shutdownGrace * 1000)),
                        sharedIngestPort: self.sharedPort,
                        tls: self.tls.configuration
                    ),
                    routes: routes,
                    activator: KubernetesScaleActivator(client: client, logger: logger),
                    logger: logger
                )
            } catch let error as GatewayError where error.code == .invalidCertificate {
                throw ValidationError("cannot use the certificate for rtmps://: \(error.message)")
            }
            let source = KubernetesGatewayRouteSource(
                client: client,
                namespace: self.namespace,
                routes: routes,
                relayPort: self.relayPort,
                sendsProxyHeader: self.sendProxyHeader,
                ingestKeyBook: self.ingestKeyBook.flatMap(Self.secretName),
                logger: logger
            )
            let (host, port) = try RelayCommand.hostAndPort(self.httpListen, flag: "--http-listen")
            let whip = try await self.whip.makeService(
                gateway: gateway,
                listenHost: self.listenHost,
                announce: WHIPOptions.hostAddresses(),
                logger: logger
            )
            let http = makeGatewayHTTPApplication(
                gateway: gateway,
                registry: registry,
                host: host,
                port: port,
                logger: Logger(label: "liverelay.http"),
                whip: whip
            )
            // HTTP first so it stops last: /readyz answers 503 while the gateway drains.
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: http), .init(service: gateway), .init(service: source)],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            do {
                try await group.run()
            } catch {
                await whip?.transport.close()
                throw error
            }
            await whip?.transport.close()
        }
    }

    /// `NAMESPACE/NAME` split, or `nil` if it is not that.
    static func secretName(_ text: String) -> (namespace: String, name: String)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            return nil
        }
        return (String(parts[0]), String(parts[1]))
    }
}
