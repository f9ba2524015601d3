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

public import KubernetesClient
public import KubernetesController
public import LiveStreamModel

/// What the operator needs to know about the cluster it runs in: where ports come from, which image runs a relay,
/// where the gateway is, and how the preview is exposed.
public struct OperatorConfiguration: Sendable {
    /// The namespace whose LiveStreams are reconciled; `nil` reconciles every namespace.
    public var namespace: String?
    /// The ports streams are given; the gateway Service gets one entry per allocated port.
    public var portRange: PortRange
    /// The image of the relay (`liverelay relay`), whose entrypoint is the `liverelay` executable.
    public var relayImage: String
    /// The gateway's Service: it gets one port per stream, and its pods are the only ones the NetworkPolicy lets in.
    public var gatewayServiceName: String
    public var gatewayNamespace: String
    /// Labels of the gateway's pods, for the NetworkPolicy.
    public var gatewayPodLabels: [String: String]
    /// The gateway's HTTP port, where KEDA reads `/keda/streams/NAMESPACE/NAME`.
    public var gatewayMetricsPort: Int
    /// The host name encoders use (`rtmp://HOST:PORT/APP`); `nil` uses the gateway Service's cluster DNS name.
    public var ingestHost: String?
    /// Whether the gateway takes `rtmps://` (it has a certificate): ingest URLs then say `rtmps://`. `rtmp://` works
    /// on the same ports all the same.
    public var ingestTLS = false
    /// Ingress class and host for the preview; no Ingress is made when either is `nil`.
    public var ingressClassName: String?
    public var ingressHost: String?
    /// The start of preview URLs (`https://example.com`); `nil` derives it from `ingressHost`.
    public var previewURLBase: String?
    /// KEDA's `pollingInterval`, in seconds.
    public var kedaPollingInterval: Int
    /// The relay container's resources, as a Kubernetes `ResourceRequirements`.
    public var relayResources: JSONValue
    /// The field manager of every server-side apply.
    public var fieldManager: String
    /// `reportingController` of events.
    public var reportingController: String
    /// `reportingInstance` of events: this process (its pod name).
    public var reportingInstance: String
    public var controller: ControllerConfiguration
    /// Where a running relay's stream status is read (`GET /api/v1/stream` on its Service): phase `Live` while a
    /// publisher is connected, and `status.targets`. `{service}` and `{namespace}` are replaced.
    public var relayStatusURL = "http://{service}.{namespace}.svc:\(RelayChildren.httpPort)/api/v1/stream"
    /// How long one watch of a running relay waits for a change before it asks again (the relay answers at once
    /// when what it says changes); a stream is reconciled only when its relay's answer changed.
    public var relayStatusInterval: Duration = .seconds(25)
    /// The addresses the gateway's pods connect to relays from (the cluster's pod range, say), when the gateway
    /// sends a PROXY protocol header (`liverelay gateway --send-proxy-header`): each relay reads the header from
    /// these peers (`--proxy-protocol-from`) and so knows the encoder's own address for its logs and its publish
    /// webhook. Empty (the default): relays read no header, and see the gateway's address. The two must be set
    /// together: a relay that does not expect the header refuses a connection that starts with one.
    public var relayProxyProtocolFrom: [IPRange] = []
    /// The name of the Secret, in ``gatewayNamespace``, that the operator keeps every stream's ingest key in for
    /// the gateway's shared ingest port (``IngestKeyBook``); `nil` keeps none.
    public var ingestKeyBookSecret: String?

    /// This build's version, which is the chart's `appVersion` and the tag of the images `tools/build-images.sh`
    /// makes.
    public static let version = "0.1.0"
    /// The relay image of this version, as the chart names it (`relayImage.repository`, tagged with `appVersion`).
    public static let defaultRelayImage = "ghcr.io/liverelay/liverelay-relay:\(version)"

    public init(
        namespace: String? = nil,
        portRange: PortRange = .operatorDefault,
        relayImage: String = OperatorConfiguration.defaultRelayImage,
        gatewayServiceName: String = "liverelay-gateway",
        gatewayNamespace: String = "liverelay-system",
        gatewayPodLabels: [String: String] = ["app.kubernetes.io/name": "liverelay-gateway"],
        gatewayMetricsPort: Int = 8080,
        ingestHost: String? = nil,
        ingressClassName: String? = nil,
        ingressHost: String? = nil,
        previewURLBase: String? = nil,
        kedaPollingInterval: Int = 5,
        relayResources: JSONValue = [
            "requests": ["cpu": "100m", "memory": "64Mi"],
            "limits": ["memory": "512Mi"],
        ],
        fieldManager: String = "liverelay-operator",
        reportingController: String = "liverelay.io/operator",
        reportingInstance: String = "liverelay-operator",
        controller: ControllerConfiguration = ControllerConfiguration(workers: 4)
    ) {
        self.namespace = namespace
        self.portRange = portRange
        self.relayImage = relayImage
        self.gatewayServiceName = gatewayServiceName
        self.gatewayNamespace = gatewayNamespace
        self.gatewayPodLabels = gatewayPodLabels
        self.gatewayMetricsPort = gatewayMetricsPort
        self.ingestHost = ingestHost
        self.ingressClassName = ingressClassName
        self.ingressHost = ingressHost
        self.previewURLBase = previewURLBase
        self.kedaPollingInterval = kedaPollingInterval
        self.relayResources = relayResources
        self.fieldManager = fieldManager
        self.reportingController = reportingController
        self.reportingInstance = reportingInstance
        self.controller = controller
    }

    /// A stream's ingest URL, without the key.
    public func ingestURL(port: Int, app: String) -> String {
        "\(self.ingestTLS ? "rtmps" : "rtmp")://\(self.effectiveIngestHost):\(port)/\(app)"
    }

    /// The host in ingest URLs.
    var effectiveIngestHost: String {
        self.ingestHost ?? "\(self.gatewayServiceName).\(self.gatewayNamespace).svc"
    }

    /// Whether an Ingress is made for previews.
    var ingressEnabled: Bool { self.ingressClassName != nil && self.ingressHost != nil }

    /// The start of preview URLs, if previews are reachable from outside.
    var effectivePreviewURLBase: String? {
        if let base = self.previewURLBase {
            return base.hasSuffix("/") ? String(base.dropLast()) : base
        }
        return self.ingressHost.map { "https://\($0)" }
    }
}

/// The resources the operator reads and writes, besides the core ones ``KubernetesResource`` names.
extension KubernetesResource {
    public static let liveStreams = KubernetesResource(
        group: LiveStreamResource.group,
        version: LiveStreamResource.version,
        plural: LiveStreamResource.plural,
        kind: LiveStreamResource.kind
    )
    public static let ingresses = KubernetesResource(
        group: "networking.k8s.io",
        version: "v1",
        plural: "ingresses",
        kind: "Ingress"
    )
    public static let networkPolicies = KubernetesResource(
        group: "networking.k8s.io",
        version: "v1",
        plural: "networkpolicies",
        kind: "NetworkPolicy"
    )
    public static let scaledObjects = KubernetesResource(
        group: "keda.sh",
        version: "v1alpha1",
        plural: "scaledobjects",
        kind: "ScaledObject"
    )
    public static let endpointSlices = KubernetesResource(
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        kind: "EndpointSlice"
    )
    public static let events = KubernetesResource(
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        kind: "Event"
    )
}

extension OperatorConfiguration {
    /// Sets ``portRange`` from `LOW-HIGH`; for command lines, which need not know `PortRange`.
    public mutating func setPortRange(parsing text: String) throws {
        self.portRange = try PortRange(parsing: text)
    }
}
