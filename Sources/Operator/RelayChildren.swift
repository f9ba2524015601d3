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
public import KubernetesClient
public import LiveStreamModel

/// The objects the operator applies for one LiveStream, as pure functions of the stream and the configuration, so
/// tests can validate them against the Kubernetes schemas without a cluster.
///
/// Every child is named `ls-<name>`, carries the relay labels and a controller ownerReference to the LiveStream, so
/// deleting the stream deletes its children.
public struct RelayChildren: Sendable {
    public static let relayPort = 1935
    public static let httpPort = 8080
    /// Where the relay finds its LiveStream document and the Secrets it references.
    public static let configDirectory = "/etc/liverelay/config"
    public static let configFile = "livestream.yaml"
    public static let secretsDirectory = "/etc/liverelay/secrets"
    /// The user the relay runs as (the distroless `nonroot` user).
    public static let runAsUser: Int64 = 65532
    /// KEDA's annotation that pins a ScaledObject's target at a replica count: how a suspended stream stays at 0.
    public static let pausedReplicasAnnotation = "autoscaling.keda.sh/paused-replicas"
    /// The pod template's record of the stream key Secret's `resourceVersion`: a new key rolls the relay out, so the
    /// old key stops working once the new pod is ready, not when kubelet next refreshes the mounted copy (up to a
    /// minute or two later), as the mature reloaders of Kubernetes do with a checksum annotation.
    public static let streamKeyVersionAnnotation = "liverelay.io/stream-key-version"

    public var namespace: String
    public var name: String
    public var uid: String
    public var spec: LiveStreamSpec
    public var configuration: OperatorConfiguration
    /// The stream key Secret's `resourceVersion`, when the operator has seen it (see
    /// ``streamKeyVersionAnnotation``).
    public var streamKeyVersion: String?

    public init(
        namespace: String,
        name: String,
        uid: String,
        spec: LiveStreamSpec,
        configuration: OperatorConfiguration
    ) {
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.spec = spec
        self.configuration = configuration
    }

    /// `ls-<name>`: the name of every child.
    public static func childName(_ stream: String) -> String { "ls-\(stream)" }
    public var childName: String { Self.childName(self.name) }

    /// The labels of every child and of the relay's pods.
    public static func labels(_ stream: String) -> [String: String] {
        [
            "app.kubernetes.io/name": "liverelay-relay",
            "app.kubernetes.io/instance": stream,
            "app.kubernetes.io/managed-by": "liverelay-operator",
            "liverelay.io/stream": stream,
        ]
    }

    /// What selects the relay's pods: stable labels only.
    public static func selector(_ stream: String) -> [String: String] {
        ["app.kubernetes.io/name": "liverelay-relay", "app.kubernetes.io/instance": stream]
    }

    /// The label selector of everything the operator makes.
    public static let childLabelSelector = "app.kubernetes.io/name=liverelay-relay"

    var ownerReference: JSONValue {
        [
            "apiVersion": .string(LiveStreamResource.apiVersion),
            "kind": .string(LiveStreamResource.kind),
            "name": .string(self.name),
            "uid": .string(self.uid),
            "controller": true,
            "blockOwnerDeletion": true,
        ]
    }

    func metadata(name: String? = nil, annotations: [String: String] = [:]) -> JSONValue {
        var metadata: JSONValue = [
            "name": .string(name ?? self.childName),
            "namespace": .string(self.namespace),
            "labels": .strings(Self.labels(self.name)),
            "ownerReferences": [self.ownerReference],
        ]
        if !annotations.isEmpty {
            metadata["annotations"] = .strings(annotations)
        }
        return metadata
    }

    /// The ingest key's Secret and key (the spec's, or the default `<name>-stream-key`/`streamKey`).
    public var streamKeySecret: LiveStreamSpec.SecretKeySelector {
        self.spec.streamKeySecret(streamName: self.name)
    }

    /// Every Secret the relay reads, in a stable order: the ingest key's (unless a webhook decides) and the targets'.
    public var secretNames: [String] {
        var names: [String] = []
        if self.spec.ingest.webhook == nil {
            names.append(self.streamKeySecret.name)
        }
        for target in self.spec.targets {
            if let ref = target.streamKeySecretRef { names.append(ref.name) }
        }
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }

    /// The LiveStream document the relay runs (`--config`): the spec with the ingest key's Secret made explicit,
    /// as JSON, which is YAML. The relay reloads it when the mounted ConfigMap changes, so a target edit reaches a
    /// running relay without restarting the publisher.
    public var relayDocument: String {
        var spec = self.spec
        if spec.ingest.webhook == nil {
            spec.ingest.streamKeySecretRef = self.streamKeySecret
        }
        struct Document: Encodable {
            var apiVersion = LiveStreamResource.apiVersion
            var kind = LiveStreamResource.kind
            var metadata: [String: String]
            var spec: LiveStreamSpec
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let document = Document(metadata: ["name": self.name, "namespace": self.namespace], spec: spec)
        let data = (try? encoder.encode(document)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    public var configMap: JSONValue {
        [
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.metadata(),
            "data": .object([Self.configFile: .string(self.relayDocument)]),
        ]
    }

    /// The relay's Deployment as the operator applies it: without `spec.replicas`, which KEDA's ScaledObject (or,
    /// without KEDA, the operator through the scale subresource) owns.
    public var deployment: JSONValue { self.deployment(replicas: nil) }

    /// The relay's Deployment; `replicas` only when it is created (see ``deployment``).
    public func deployment(replicas: Int?) -> JSONValue {
        let labels = JSONValue.strings(Self.labels(self.name))
        var volumes: [JSONValue] = [
            ["name": "config", "configMap": ["name": .string(self.childName)]],
            ["name": "tmp", "emptyDir": ["medium": "Memory", "sizeLimit": "64Mi"]],
        ]
        var mounts: [JSONValue] = [
            ["name": "config", "mountPath": .string(Self.configDirectory), "readOnly": true],
            ["name": "tmp", "mountPath": "/tmp"],
        ]
        for (index, secret) in self.secretNames.enumerated() {
            let volume = JSONValue.string("secret-\(index)")
            volumes.append(["name": volume, "secret": ["secretName": .string(secret), "defaultMode": 0o440]])
            mounts.append([
                "name": volume, "mountPath": .string("\(Self.secretsDirectory)/\(secret)"), "readOnly": true,
            ])
        }
        let probe: (String, Int64, Int64) -> JSONValue = { path, period, failures in
            [
                "httpGet": ["path": .string(path), "port": "http"],
                "periodSeconds": .int(period),
                "failureThreshold": .int(failures),
                "timeoutSeconds": 2,
            ]
        }
        var args: [JSONValue] = [
            "relay",
            "--listen", .string("0.0.0.0:\(Self.relayPort)"),
            "--config", .string("\(Self.configDirectory)/\(Self.configFile)"),
            "--secrets-dir", .string(Self.secretsDirectory),
            "--http-listen", .string("0.0.0.0:\(Self.httpPort)"),
        ]
        if !self.configuration.relayProxyProtocolFrom.isEmpty {
            // The gateway sends a PROXY header naming the encoder; the relay reads it from the gateway's pods only.
            let ranges = self.configuration.relayProxyProtocolFrom.map(\.description).joined(separator: ",")
            args += ["--proxy-protocol-from", .string(ranges)]
        }
        let container: JSONValue = [
            "name": "relay",
            "image": .string(self.configuration.relayImage),
            "imagePullPolicy": "IfNotPresent",
            "args": .array(args),
            "ports": [
                ["name": "rtmp", "containerPort": .int(Int64(Self.relayPort)), "protocol": "TCP"],
                ["name": "http", "containerPort": .int(Int64(Self.httpPort)), "protocol": "TCP"],
            ],
            "startupProbe": probe("/healthz", 1, 60),
            "readinessProbe": probe("/readyz", 2, 2),
            "livenessProbe": probe("/healthz", 10, 3),
            "resources": self.configuration.relayResources,
            "securityContext": [
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "runAsNonRoot": true,
                "privileged": false,
                "capabilities": ["drop": ["ALL"]],
            ],
            "volumeMounts": .array(mounts),
        ]
        var deployment: JSONValue = [
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self.metadata(),
            "spec": [
                "selector": ["matchLabels": .strings(Self.selector(self.name))],
                "revisionHistoryLimit": 3,
                "template": [
                    "metadata": self.streamKeyVersion.map {
                        ["labels": labels, "annotations": [Self.streamKeyVersionAnnotation: .string($0)]]
                    } ?? ["labels": labels],
                    "spec": [
                        "automountServiceAccountToken": false,
                        "enableServiceLinks": false,
                        // A relay drains on SIGTERM: it keeps a live publisher until it ends or this runs out.
                        "terminationGracePeriodSeconds": 60,
                        "securityContext": [
                            "runAsNonRoot": true,
                            "runAsUser": .int(Self.runAsUser),
                            "runAsGroup": .int(Self.runAsUser),
                            "fsGroup": .int(Self.runAsUser),
                            "seccompProfile": ["type": "RuntimeDefault"],
                        ],
                        "containers": [container],
                        "volumes": .array(volumes),
                    ],
                ],
            ],
        ]
        if let replicas {
            deployment["spec"]?["replicas"] = .int(Int64(replicas))
        }
        return deployment
    }

    public var service: JSONValue {
        [
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.metadata(),
            "spec": [
                "type": "ClusterIP",
                "selector": .strings(Self.selector(self.name)),
                "ports": [
                    [
                        "name": "rtmp", "port": .int(Int64(Self.relayPort)), "targetPort": "rtmp",
                        "protocol": "TCP",
                    ],
                    [
                        "name": "http", "port": .int(Int64(Self.httpPort)), "targetPort": "http",
                        "protocol": "TCP",
                    ],
                ],
            ],
        ]
    }

    /// The preview's path on the ingress host.
    public var previewPath: String { "/live/\(self.namespace)/\(self.name)" }

    /// The Ingress for the preview, or `nil` when the operator has no ingress class and host or the preview is off.
    public var ingress: JSONValue? {
        guard self.spec.preview.enabled, let className = self.configuration.ingressClassName,
            let host = self.configuration.ingressHost
        else { return nil }
        return [
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": self.metadata(),
            "spec": [
                "ingressClassName": .string(className),
                "rules": [
                    [
                        "host": .string(host),
                        "http": [
                            "paths": [
                                [
                                    "path": .string(self.previewPath),
                                    "pathType": "Prefix",
                                    "backend": [
                                        "service": ["name": .string(self.childName), "port": ["name": "http"]]
                                    ],
                                ]
                            ]
                        ],
                    ]
                ],
            ],
        ]
    }

    /// The allowed source ranges that parse, normalized, and the ones that do not.
    public var sourceRanges: (valid: [IPRange], invalid: [String]) {
        var valid: [IPRange] = []
        var invalid: [String] = []
        for text in self.spec.ingest.allowedSourceRanges {
            if let range = try? IPRange(text) { valid.append(range) } else { invalid.append(text) }
        }
        return (valid, invalid)
    }

    /// The relay's firewall: RTMP only from the gateway's pods and the stream's allowed source ranges; HTTP (probes,
    /// metrics, the preview behind the Ingress) from anywhere in the cluster. The relay itself answers target control
    /// on that port to loopback clients only (`--control-from`), so a neighbouring pod can read but not switch.
    public var networkPolicy: JSONValue {
        var peers: [JSONValue] = [
            [
                "namespaceSelector": [
                    "matchLabels": ["kubernetes.io/metadata.name": .string(self.configuration.gatewayNamespace)]
                ],
                "podSelector": ["matchLabels": .strings(self.configuration.gatewayPodLabels)],
            ]
        ]
        for range in self.sourceRanges.valid {
            peers.append(["ipBlock": ["cidr": .string(range.cidr)]])
        }
        return [
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": self.metadata(),
            "spec": [
                "podSelector": ["matchLabels": .strings(Self.selector(self.name))],
                "policyTypes": ["Ingress"],
                "ingress": [
                    ["from": .array(peers), "ports": [["protocol": "TCP", "port": .int(Int64(Self.relayPort))]]],
                    ["ports": [["protocol": "TCP", "port": .int(Int64(Self.httpPort))]]],
                ],
            ],
        ]
    }

    /// The gateway's KEDA endpoint for this stream.
    public var kedaMetricURL: String {
        let configuration = self.configuration
        return "http://\(configuration.gatewayServiceName).\(configuration.gatewayNamespace).svc:"
            + "\(configuration.gatewayMetricsPort)/keda/streams/\(self.namespace)/\(self.name)"
    }

    /// KEDA's ScaledObject: the relay runs while the gateway counts a connection (held ones included), summed over
    /// every gateway pod, and scales to `minReplicas` after `idleSeconds` without one. A suspended stream is pinned
    /// at zero with KEDA's paused-replicas annotation.
    public var scaledObject: JSONValue {
        [
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": self.metadata(annotations: self.spec.suspend ? [Self.pausedReplicasAnnotation: "0"] : [:]),
            "spec": [
                "scaleTargetRef": ["apiVersion": "apps/v1", "kind": "Deployment", "name": .string(self.childName)],
                "minReplicaCount": .int(Int64(self.spec.scaling.minReplicas)),
                "maxReplicaCount": 1,
                "pollingInterval": .int(Int64(self.configuration.kedaPollingInterval)),
                "cooldownPeriod": .int(Int64(self.spec.scaling.idleSeconds)),
                "triggers": [
                    [
                        "type": "metrics-api",
                        "name": "connections",
                        "metricType": "AverageValue",
                        "metadata": [
                            "url": .string(self.kedaMetricURL),
                            "format": "json",
                            "valueLocation": "connections",
                            "targetValue": "1",
                            "activationTargetValue": "0",
                            "aggregateFromKubeServiceEndpoints": "true",
                            "aggregationType": "sum",
                        ],
                    ]
                ],
            ],
        ]
    }

    /// A new Secret holding a generated ingest key, owned by the stream.
    public func generatedStreamKeySecret(key: String) -> JSONValue {
        let selector = self.streamKeySecret
        return [
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": self.metadata(name: selector.name),
            "type": "Opaque",
            "data": .object([selector.key: .string(Data(key.utf8).base64EncodedString())]),
        ]
    }
}

extension JSONValue {
    static func strings(_ dictionary: [String: String]) -> JSONValue {
        .object(dictionary.mapValues { .string($0) })
    }
}

extension IPRange {
    /// The range in the compact form Kubernetes writes (`10.0.0.0/8`, `::/0`, `2001:db8::/32`).
    var cidr: String {
        let text = self.description
        guard text.contains(":") else { return text }
        // Parse the full IPv6 form back through the system, which prints the compressed one.
        let parts = text.split(separator: "/")
        var address = in6_addr()
        guard parts.count == 2, inet_pton(AF_INET6, String(parts[0]), &address) == 1 else { return text }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count)) != nil else { return text }
        let compressed = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return "\(compressed)/\(parts[1])"
    }
}
