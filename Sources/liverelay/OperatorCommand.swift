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
import KubernetesClient
import KubernetesController
import LiveStreamModel
import Logging
import Metrics
import Operator
import Prometheus
import ServiceLifecycle
import UnixSignals

struct OperatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operator",
        abstract: "Run the Kubernetes operator: a port, a relay and its firewall for every LiveStream.",
        discussion: """
            Watches LiveStreams (liverelay.io/v1alpha1) and, for each, allocates a port from --port-range, \
            records it in status, adds it to the gateway Service, and applies the relay's Deployment, Service, \
            NetworkPolicy, preview Ingress and KEDA ScaledObject. Install crds/livestream.yaml first.

            Example:
              liverelay operator --namespace streams --relay-image ghcr.io/liverelay/liverelay-relay:0.1.0 \\
                --ingest-host rtmp.example.com --ingress-class nginx --ingress-host live.example.com
            """
    )

    @OptionGroup var cluster: ClusterOptions

    @Option(help: "Reconcile LiveStreams of this namespace only (default: every namespace).")
    var namespace: String?

    @Option(help: "The ports streams are given, LOW-HIGH.")
    var portRange = "31000-31999"

    @Option(help: "The relay image; its entrypoint must be the liverelay executable.")
    var relayImage = OperatorConfiguration.defaultRelayImage

    @Option(help: "The gateway's Service, which gets one port per stream.")
    var gatewayService = "liverelay-gateway"

    @Option(help: "The gateway's namespace.")
    var gatewayNamespace = "liverelay-system"

    @Option(help: "A label of the gateway's pods, KEY=VALUE, for the relays' NetworkPolicy. Repeatable.")
    var gatewayPodLabel: [String] = ["app.kubernetes.io/name=liverelay-gateway"]

    @Option(help: "The gateway's HTTP port, where KEDA reads /keda/streams/NAMESPACE/NAME.")
    var gatewayMetricsPort = 8080

    @Option(help: "The host encoders publish to, in ingest URLs (default: the gateway Service's cluster name).")
    var ingestHost: String?

    @Flag(help: "The gateway takes rtmps:// (it runs with --tls-cert): ingest URLs in status say rtmps://.")
    var ingestTLS = false

    @Option(help: "The ingress class of preview Ingresses (no Ingress without it and --ingress-host).")
    var ingressClass: String?

    @Option(help: "The host of preview Ingresses.")
    var ingressHost: String?

    @Option(help: "The start of preview URLs, e.g. https://live.example.com (default: https://<ingress-host>).")
    var previewURLBase: String?

    @Option(
        help: """
            Where a running relay's status is read, for phase Live and status.targets; {service} and {namespace} \
            are replaced (default: the relay Service's cluster name, port 8080, /api/v1/stream).
            """
    )
    var relayStatusURL: String?

    @Option(
        help: """
            CIDRs the gateway's pods connect from, comma-separated (the cluster's pod range, say): relays read the \
            PROXY protocol header the gateway sends (liverelay gateway --send-proxy-header) from these peers, and so \
            see the encoder's own address. Set it with the gateway's flag, never alone (default: none).
            """
    )
    var relayProxyProtocolFrom: String = ""

    @Option(
        help: """
            A Secret in the gateway's namespace to keep every stream's key in, for the gateway's shared ingest port \
            (its --ingest-key-book); none by default.
            """
    )
    var ingestKeyBook: String?

    @Option(help: "Streams reconciled at once.")
    var workers = 4

    @Flag(inversion: .prefixedEnableDisable, help: "Reconcile only while holding a Lease (for several replicas).")
    var leaderElection = true

    @Option(help: "The leader election Lease.")
    var leaseName = "liverelay-operator"

    @Option(help: "The Lease's namespace (default: the client's namespace).")
    var leaseNamespace: String?

    @OptionGroup(title: "Logging")
    var log: LogOptions

    @Option(help: "HOST:PORT of the HTTP endpoints: /metrics (Prometheus), /healthz and /readyz.")
    var httpListen: String = "0.0.0.0:8081"

    func validate() throws {
        var configuration = OperatorConfiguration()
        do {
            try configuration.setPortRange(parsing: self.portRange)
        } catch {
            throw ValidationError("--port-range: \(error)")
        }
        guard self.workers >= 1 else {
            throw ValidationError("--workers must be at least 1.")
        }
        guard (1...65535).contains(self.gatewayMetricsPort) else {
            throw ValidationError("--gateway-metrics-port must be a port from 1 to 65535.")
        }
        _ = try self.podLabels()
        _ = try self.proxyRanges()
        _ = try RelayCommand.hostAndPort(self.httpListen, flag: "--http-listen")
    }

    func podLabels() throws -> [String: String] {
        var labels: [String: String] = [:]
        for item in self.gatewayPodLabel {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ValidationError("--gateway-pod-label must be KEY=VALUE, got \(item).")
            }
            labels[String(parts[0])] = String(parts[1])
        }
        return labels
    }

    func proxyRanges() throws -> [IPRange] {
        try RelayCommand.ranges(self.relayProxyProtocolFrom, flag: "--relay-proxy-protocol-from")
    }

    /// The operator's configuration from the flags.
    func makeConfiguration(identity: String) throws -> OperatorConfiguration {
        var configuration = OperatorConfiguration(
            namespace: self.namespace,
            relayImage: self.relayImage,
            gatewayServiceName: self.gatewayService,
            gatewayNamespace: self.gatewayNamespace,
            gatewayPodLabels: try self.podLabels(),
            gatewayMetricsPort: self.gatewayMetricsPort,
            ingestHost: self.ingestHost,
            ingressClassName: self.ingressClass,
            ingressHost: self.ingressHost,
            previewURLBase: self.previewURLBase,
            reportingInstance: identity
        )
        try configuration.setPortRange(parsing: self.portRange)
        if let url = self.relayStatusURL {
            configuration.relayStatusURL = url
        }
        configuration.relayProxyProtocolFrom = try self.proxyRanges()
        configuration.ingestKeyBookSecret = self.ingestKeyBook
        configuration.ingestTLS = self.ingestTLS
        configuration.controller = ControllerConfiguration(
            workers: self.workers,
            leaderElection: self.leaderElection
                ? LeaderElectionConfiguration(
                    leaseName: self.leaseName,
                    leaseNamespace: self.leaseNamespace,
                    identity: identity
                ) : nil
        )
        return configuration
    }

    func run() async throws {
        self.log.bootstrap()
        let logger = Logger(label: "liverelay.operator")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let environment = ProcessInfo.processInfo.environment
        // Unique per process: the pod's name (from the downward API or the hostname) and a random suffix.
        let pod = environment["POD_NAME"] ?? ProcessInfo.processInfo.hostName
        let identity = "\(pod)-\(UInt32.random(in: 0...UInt32.max))"
        let configuration = try self.makeConfiguration(identity: identity)
        let kubernetes = try self.cluster.kubernetesConfiguration()
        try await withKubernetesClient(configuration: kubernetes, logger: logger) { client in
            let liveStreamOperator = LiveStreamOperator(client: client, configuration: configuration, logger: logger)
            let (host, port) = try RelayCommand.hostAndPort(self.httpListen, flag: "--http-listen")
            let http = makeOperatorHTTPApplication(
                health: { liveStreamOperator.health },
                registry: registry,
                host: host,
                port: port,
                logger: Logger(label: "liverelay.http")
            )
            // HTTP first so it stops last: probes and a last scrape still answer while the operator stops.
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: http), .init(service: liveStreamOperator)],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            logger.info(
                "operator starting",
                metadata: [
                    "k8s.namespace": "\(self.namespace ?? "all")",
                    "liverelay.port-range": "\(self.portRange)",
                    "k8s.leader-election": "\(self.leaderElection)",
                    "liverelay.http-listen": "\(self.httpListen)",
                ]
            )
            try await group.run()
        }
    }
}
