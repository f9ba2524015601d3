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
import KubernetesClient
import LiveStreamModel
import Operator
import PeerTestSupport
import Testing

@Suite("The children of a LiveStream")
struct RelayChildrenTests {
    static let fullSpec = LiveStreamSpec(
        ingest: .init(allowedSourceRanges: ["10.0.0.0/8", "2001:db8::/32", "not-a-range"]),
        targets: [
            .init(
                name: "youtube",
                url: "rtmp://a.rtmp.youtube.com/live2",
                streamKeySecretRef: .init(name: "yt", key: "key")
            ),
            .init(
                name: "ivs",
                url: "rtmps://x.live-video.net:443/app/",
                streamKeySecretRef: .init(name: "ivs", key: "k")
            ),
            .init(name: "again", url: "rtmp://b.example.com/live", streamKeySecretRef: .init(name: "yt", key: "other")),
        ],
        scaling: .init(minReplicas: 1, idleSeconds: 120)
    )

    func children(
        _ spec: LiveStreamSpec = Self.fullSpec,
        ingress: Bool = true
    ) throws -> RelayChildren {
        var configuration = OperatorConfiguration(
            relayImage: "registry.example.com/liverelay:1.0",
            gatewayNamespace: "gw",
            ingressClassName: ingress ? "nginx" : nil,
            ingressHost: ingress ? "live.example.com" : nil
        )
        configuration.gatewayMetricsPort = 9090
        return RelayChildren(
            namespace: "streams",
            name: "alice",
            uid: "uid-1",
            spec: spec,
            configuration: configuration
        )
    }

    @Test("the Deployment runs the relay hardened, mounts every Secret once, and never sets replicas")
    func deployment() throws {
        let deployment = try self.children().deployment
        let spec = try #require(deployment["spec"])
        #expect(spec["replicas"] == nil)
        let pod = try #require(spec["template"]?["spec"])
        guard case .array(let containers) = pod["containers"] ?? [], let relay = containers.first else {
            Issue.record("no container")
            return
        }
        #expect(relay["image"] == "registry.example.com/liverelay:1.0")
        #expect(relay["securityContext"]?["readOnlyRootFilesystem"] == true)
        #expect(relay["securityContext"]?["allowPrivilegeEscalation"] == false)
        #expect(relay["securityContext"]?["runAsNonRoot"] == true)
        #expect(pod["securityContext"]?["runAsNonRoot"] == true)
        #expect(relay["readinessProbe"]?["httpGet"]?["path"] == "/readyz")
        #expect(relay["livenessProbe"]?["httpGet"]?["path"] == "/healthz")
        guard case .array(let args) = relay["args"] ?? [] else {
            Issue.record("no args")
            return
        }
        #expect(args.first == "relay")
        #expect(args.contains("/etc/liverelay/config/livestream.yaml"))
        // No PROXY header is expected unless the operator is told where the gateway connects from.
        #expect(!args.contains("--proxy-protocol-from"))
        guard case .array(let mounts) = relay["volumeMounts"] ?? [] else {
            Issue.record("no mounts")
            return
        }
        let paths = mounts.compactMap { $0["mountPath"]?.stringValue }
        #expect(
            paths == [
                "/etc/liverelay/config", "/tmp", "/etc/liverelay/secrets/alice-stream-key",
                "/etc/liverelay/secrets/yt", "/etc/liverelay/secrets/ivs",
            ]
        )
        #expect(deployment["metadata"]?["ownerReferences"]?.arrayFirst?["uid"] == "uid-1")
        #expect(deployment["metadata"]?["ownerReferences"]?.arrayFirst?["controller"] == true)
    }

    @Test("ingest URLs say rtmps:// when the gateway takes TLS, rtmp:// otherwise")
    func ingestURLScheme() {
        var configuration = OperatorConfiguration(ingestHost: "rtmp.example.com")
        #expect(configuration.ingestURL(port: 31001, app: "live") == "rtmp://rtmp.example.com:31001/live")
        configuration.ingestTLS = true
        #expect(configuration.ingestURL(port: 31001, app: "live") == "rtmps://rtmp.example.com:31001/live")
    }

    @Test("relays read the gateway's PROXY header from the configured ranges only")
    func proxyProtocol() throws {
        var configuration = OperatorConfiguration(relayImage: "registry.example.com/liverelay:1.0")
        configuration.relayProxyProtocolFrom = [try IPRange("10.244.0.0/16"), try IPRange("fd00:10:244::/56")]
        let children = RelayChildren(
            namespace: "streams",
            name: "alice",
            uid: "uid-1",
            spec: Self.fullSpec,
            configuration: configuration
        )
        let container = children.deployment["spec"]?["template"]?["spec"]?["containers"]?.arrayFirst
        guard case .array(let args) = container?["args"] ?? [] else {
            Issue.record("no args")
            return
        }
        let flag = try #require(args.firstIndex(of: "--proxy-protocol-from"))
        #expect(args.dropFirst(flag + 1).first == "10.244.0.0/16,fd00:10:244::/56")
    }

    @Test("the relay's document is JSON, names the ingest key's Secret and holds no key")
    func relayDocument() throws {
        var spec = Self.fullSpec
        spec.ingest.allowedSourceRanges = ["10.0.0.0/8"]
        let children = try self.children(spec)
        let text = children.relayDocument
        #expect(children.configMap["data"]?[RelayChildren.configFile] == .string(text))
        // JSON (the relay reads it without the YAML parser), read alike by the reader of YAML files.
        let stream = try StreamFile.parse(json: text, source: "configmap").liveStreams.first
        #expect(try StreamFile.parse(yaml: text, source: "configmap").liveStreams.first == stream)
        #expect(stream?.spec.ingest.streamKeySecretRef == .init(name: "alice-stream-key", key: "streamKey"))
        #expect(stream?.spec.targets.count == 3)
        #expect(stream?.metadata.name == "alice")
    }

    @Test("the NetworkPolicy admits RTMP from the gateway and the valid ranges only")
    func networkPolicy() throws {
        let policy = try self.children().networkPolicy
        guard case .array(let rules) = policy["spec"]?["ingress"] ?? [], case .array(let peers) = rules[0]["from"] ?? []
        else {
            Issue.record("no rules")
            return
        }
        #expect(peers.count == 3)
        #expect(peers[0]["namespaceSelector"]?["matchLabels"]?["kubernetes.io/metadata.name"] == "gw")
        #expect(peers[1]["ipBlock"]?["cidr"] == "10.0.0.0/8")
        #expect(peers[2]["ipBlock"]?["cidr"] == "2001:db8::/32")
    }

    @Test("the ScaledObject reads the gateway's metric summed over its endpoints, and pauses at 0 when suspended")
    func scaledObject() throws {
        var spec = Self.fullSpec
        let running = try self.children(spec).scaledObject
        #expect(running["spec"]?["minReplicaCount"] == 1)
        #expect(running["spec"]?["cooldownPeriod"] == 120)
        let trigger = running["spec"]?["triggers"]?.arrayFirst
        #expect(trigger?["type"] == "metrics-api")
        #expect(trigger?["metadata"]?["url"] == "http://liverelay-gateway.gw.svc:9090/keda/streams/streams/alice")
        #expect(trigger?["metadata"]?["aggregateFromKubeServiceEndpoints"] == "true")
        #expect(running["metadata"]?["annotations"] == nil)
        spec.suspend = true
        let suspended = try self.children(spec).scaledObject
        #expect(suspended["metadata"]?["annotations"]?["autoscaling.keda.sh/paused-replicas"] == "0")
    }

    @Test("no Ingress without an ingress class and host, or with the preview off")
    func ingress() throws {
        #expect(try self.children().ingress != nil)
        #expect(try self.children(ingress: false).ingress == nil)
        var spec = Self.fullSpec
        spec.preview.enabled = false
        #expect(try self.children(spec).ingress == nil)
    }

    @Test("a generated stream key Secret holds 32 random bytes as hex, owned by the stream")
    func generatedSecret() throws {
        let key = StreamKey.generate()
        let secret = try self.children().generatedStreamKeySecret(key: key)
        let data = try #require(secret["data"]?["streamKey"]?.stringValue)
        let decoded = try #require(Data(base64Encoded: data))
        #expect(decoded.count == 64)
        #expect(String(decoding: decoded, as: UTF8.self) == key)
        #expect(secret["metadata"]?["name"] == "alice-stream-key")
    }

    @Test(
        "every object the operator builds is valid against the official Kubernetes and KEDA schemas",
        .enabled(if: python3Path != nil, "python3 is not on PATH")
    )
    func schemas() async throws {
        var objects: [JSONValue] = []
        var webhookSpec = LiveStreamSpec(ingest: .init(webhook: .init(url: "https://auth.example.com/publish")))
        webhookSpec.suspend = true
        for (spec, ingress) in [(Self.fullSpec, true), (LiveStreamSpec(), false), (webhookSpec, true)] {
            let children = try self.children(spec, ingress: ingress)
            objects += [
                children.configMap, children.deployment, children.service, children.networkPolicy,
                children.scaledObject, children.generatedStreamKeySecret(key: StreamKey.generate()),
            ]
            if let ingress = children.ingress { objects.append(ingress) }
        }
        let directory = try writeManifests(objects)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try await validateManifests([directory])
        #expect(result.succeeded, "\(result.standardOutput)\(result.standardError)")
        #expect(result.standardOutput.contains("\(objects.count) documents, 0 problems"))
    }

    @Test(
        "the CRD is a valid structural schema, and the examples are valid LiveStreams and Secrets",
        .enabled(if: python3Path != nil, "python3 is not on PATH")
    )
    func crdAndExamples() async throws {
        let result = try await validateManifests([Paths.crd, Paths.examples])
        #expect(result.succeeded, "\(result.standardOutput)\(result.standardError)")
        #expect(result.standardOutput.contains(" 0 problems"))

        // The validator does catch what makes a schema non-structural, and a bad LiveStream.
        var crd = try String(contentsOfFile: Paths.crd, encoding: .utf8)
        crd = crd.replacingOccurrences(
            of: "                    app:\n                      type: string\n",
            with: "                    app:\n"
        )
        let broken = try writeText(crd, name: "broken-crd.yaml")
        let bad = try writeText(
            """
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: {name: bad}
            spec:
              scaling: {minReplicas: 3}
              targets: [{name: Bad_Name, url: "http://x"}]
            """,
            name: "bad.yaml"
        )
        defer {
            try? FileManager.default.removeItem(atPath: broken)
            try? FileManager.default.removeItem(atPath: bad)
        }
        let failed = try await validateManifests([broken, bad])
        #expect(!failed.succeeded)
        #expect(failed.standardOutput.contains("openAPIV3Schema.spec.ingest.app: type must be set"))
        #expect(failed.standardOutput.contains("scaling.minReplicas"))
        #expect(failed.standardOutput.contains("targets.0.name"))
    }

    func writeText(_ text: String, name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString)-\(name)").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}

extension JSONValue {
    var arrayFirst: JSONValue? {
        if case .array(let values) = self { return values.first }
        return nil
    }
}
