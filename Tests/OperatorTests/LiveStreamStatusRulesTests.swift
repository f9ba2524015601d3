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
import KubernetesController
import LiveStreamModel
import RelayAPI
import Testing

@testable import Operator

/// The status rules and the desired-versus-observed test, without an API server, a relay or a clock.
@Suite("A stream's status and its children, as pure functions")
struct LiveStreamStatusRulesTests {
    let now = ContinuousClock.now
    let t1 = "2026-01-01T00:00:00Z"
    let t2 = "2026-01-01T00:05:00Z"

    func observation(
        spec: LiveStreamSpec = LiveStreamSpec(),
        streamKey: StreamKeyObservation = .found(secret: "a-stream-key", generated: true),
        missingTargetKeys: [String] = [],
        kedaInstalled: Bool = true,
        replicas: Int = 0,
        readyReplicas: Int = 0,
        relay: RelayObservation? = nil
    ) -> LiveStreamObservation {
        LiveStreamObservation(
            generation: 3,
            spec: spec,
            port: PortClaim(port: 31001, status: .true, reason: "Allocated", message: "port 31001"),
            ingestURL: "rtmp://gw:31001/live",
            previewURL: "https://live.example.com/live/ns/a/index.m3u8",
            streamKey: streamKey,
            missingTargetKeys: missingTargetKeys,
            kedaInstalled: kedaInstalled,
            replicas: replicas,
            readyReplicas: readyReplicas,
            relay: relay
        )
    }

    func status(
        _ observation: LiveStreamObservation,
        previous: LiveStreamStatus? = nil,
        timestamp: String? = nil
    ) -> (status: LiveStreamStatus, requeueAfter: Duration?) {
        LiveStreamStatusRules.status(
            of: observation,
            previous: previous,
            now: self.now,
            timestamp: timestamp ?? self.t1
        )
    }

    @Test("configured, relay at zero: Idle and Ready, with the port, URLs, generation and every condition")
    func idle() {
        let (status, requeue) = self.status(self.observation())
        #expect(status.phase == .idle)
        #expect(requeue == nil)
        #expect(status.port == 31001)
        #expect(status.ingestURL == "rtmp://gw:31001/live")
        #expect(status.previewURL == "https://live.example.com/live/ns/a/index.m3u8")
        #expect(status.observedGeneration == 3)
        #expect(status.condition("Ready")?.status == .true)
        #expect(status.condition("Ready")?.reason == "Configured")
        #expect(status.condition("Ready")?.observedGeneration == 3)
        #expect(status.condition("PortAllocated")?.reason == "Allocated")
        #expect(status.condition("StreamKey")?.reason == "Generated")
        #expect(status.condition("Autoscaling")?.reason == "ScaledObjectReady")
    }

    @Test("the same observation later gives the same status: nothing to write, transition times kept")
    func stable() {
        let first = self.status(self.observation()).status
        let again = self.status(self.observation(), previous: first, timestamp: self.t2).status
        #expect(again == first)
        let suspended = self.status(
            self.observation(spec: LiveStreamSpec(suspend: true)),
            previous: first,
            timestamp: self.t2
        )
        .status
        #expect(suspended.condition("Ready")?.lastTransitionTime == self.t2, "Ready went False: a new transition")
        #expect(suspended.condition("PortAllocated")?.lastTransitionTime == self.t1, "unchanged: kept")
    }

    @Test("without KEDA the relay asks for a replica: Starting, and Autoscaling says KEDA is missing")
    func withoutKEDA() {
        let (status, _) = self.status(self.observation(kedaInstalled: false, replicas: 1))
        #expect(status.phase == .starting)
        #expect(status.condition("Autoscaling")?.status == .false)
        #expect(status.condition("Autoscaling")?.reason == "KEDANotInstalled")
    }

    @Test("suspended: Suspended, Ready=False Suspended, KEDA paused")
    func suspended() {
        let (status, _) = self.status(self.observation(spec: LiveStreamSpec(suspend: true), readyReplicas: 1))
        #expect(status.phase == .suspended)
        #expect(status.condition("Ready")?.reason == "Suspended")
        #expect(status.condition("Autoscaling")?.reason == "Paused")
        #expect(status.targets == nil)
    }

    @Test("a missing key: Failed, Ready=False SecretMissing naming every missing Secret; the relay is not asked")
    func missingKeys() {
        let observation = self.observation(
            streamKey: .missing("Secret k has no key streamKey"),
            missingTargetKeys: ["spec.targets[0].streamKeySecretRef: Secret yt with key key not found"],
            readyReplicas: 1
        )
        #expect(
            !LiveStreamStatusRules.relayRuns(
                spec: observation.spec,
                streamKey: observation.streamKey,
                missingTargetKeys: observation.missingTargetKeys,
                readyReplicas: 1
            )
        )
        let (status, _) = self.status(observation)
        #expect(status.phase == .failed)
        #expect(status.condition("StreamKey")?.status == .false)
        #expect(status.condition("Ready")?.reason == "SecretMissing")
        #expect(status.condition("Ready")?.message.contains("Secret k has no key streamKey") == true)
        #expect(status.condition("Ready")?.message.contains("Secret yt with key key not found") == true)
    }

    @Test("a running relay's report gives Live and the targets; an unreadable one keeps what was last seen")
    func relay() {
        let live = RelayStreamReport(live: true, targets: [.init(name: "yt", state: "Pushing")])
        let ready = self.observation(
            readyReplicas: 1,
            relay: RelayObservation(report: live, since: self.now - .seconds(60))
        )
        let (status, _) = self.status(ready)
        #expect(status.phase == .live)
        #expect(status.targets == [.init(name: "yt", state: "Pushing")])

        let unreadable = self.observation(readyReplicas: 1, relay: RelayObservation(report: nil, since: self.now))
        let kept = self.status(unreadable, previous: status).status
        #expect(kept.phase == .live)
        #expect(kept.targets == status.targets)
    }

    @Test("a relay ready a moment ago without a publisher stays Starting for the grace, and asks to look again")
    func startingGrace() {
        var previous = self.status(self.observation(kedaInstalled: false, replicas: 1)).status
        #expect(previous.phase == .starting)
        let idle = RelayStreamReport(live: false, targets: [])
        let justReady = self.observation(
            kedaInstalled: false,
            replicas: 1,
            readyReplicas: 1,
            relay: RelayObservation(report: idle, since: self.now - .seconds(5))
        )
        let (status, requeue) = self.status(justReady, previous: previous)
        #expect(status.phase == .starting)
        #expect(requeue == .seconds(10))

        previous = status
        let later = self.observation(
            kedaInstalled: false,
            replicas: 1,
            readyReplicas: 1,
            relay: RelayObservation(report: idle, since: self.now - .seconds(20))
        )
        let (after, again) = self.status(later, previous: previous)
        #expect(after.phase == .idle)
        #expect(again == nil)
    }

    @Test("a webhook stream has no key; a refused fixed port keeps the held one with PortAllocated=False")
    func webhookAndHeldPort() {
        var observation = self.observation(streamKey: .webhook)
        observation.port = PortClaim(port: 31001, status: .false, reason: "PortTaken", message: "taken")
        let (status, _) = self.status(observation)
        #expect(status.condition("StreamKey")?.reason == "Webhook")
        #expect(status.condition("PortAllocated")?.status == .false)
        #expect(status.condition("Ready")?.status == .true)
        #expect(status.port == 31001)
    }

    @Test("an invalid spec and an exhausted range: Failed, with the reason, the rest kept")
    func refusals() throws {
        let configured = self.status(self.observation()).status
        let invalid = LiveStreamStatusRules.invalidSpec(
            [FieldError(field: "spec.targets[0].url", message: "bad"), FieldError(field: "spec.x", message: "y")],
            previous: configured,
            generation: 4,
            timestamp: self.t2
        )
        #expect(invalid.phase == .failed)
        #expect(invalid.condition("Ready")?.reason == "InvalidSpec")
        #expect(invalid.condition("Ready")?.message.contains("spec.targets[0].url") == true)
        #expect(invalid.condition("Ready")?.message.contains("(and 1 more)") == true)
        #expect(invalid.observedGeneration == 4)
        #expect(invalid.port == 31001)

        let range = try PortRange(31000...31001)
        let exhausted = LiveStreamStatusRules.portUnavailable(
            .exhausted(range),
            previous: nil,
            generation: 1,
            timestamp: self.t1
        )
        #expect(exhausted.condition("PortAllocated")?.reason == "RangeExhausted")
        #expect(exhausted.condition("Ready")?.reason == "PortUnavailable")
        #expect(exhausted.port == nil)
    }
}

@Suite("Desired children against observed ones")
struct DesiredChildTests {
    let children = RelayChildren(
        namespace: "ns",
        name: "alice",
        uid: "uid-1",
        spec: LiveStreamSpec(),
        configuration: OperatorConfiguration(ingressClassName: "nginx", ingressHost: "live.example.com")
    )

    /// `desired` as an API server returns it: with defaults, status and server metadata added.
    func served(_ desired: DesiredChild, edit: (inout JSONValue) -> Void = { _ in }) throws -> KubernetesObject {
        var object = desired.object
        object["metadata"]?["uid"] = "child-uid"
        object["metadata"]?["resourceVersion"] = "42"
        object["metadata"]?["annotations"]?["deployment.kubernetes.io/revision"] = "1"
        object["metadata"]?["labels"]?["added-by-someone"] = "x"
        object["status"] = ["observedGeneration": 1]
        if object["spec"]?["template"] != nil {
            object["spec"]?["replicas"] = 0
            object["spec"]?["strategy"] = ["type": "RollingUpdate"]
            object["spec"]?["template"]?["spec"]?["dnsPolicy"] = "ClusterFirst"
            if case .array(var containers)? = object["spec"]?["template"]?["spec"]?["containers"] {
                containers[0]["terminationMessagePath"] = "/dev/termination-log"
                object["spec"]?["template"]?["spec"]?["containers"] = .array(containers)
            }
        }
        edit(&object)
        return try JSONValue.decode(KubernetesObject.self, from: object)
    }

    @Test("every child as the server returns it, with defaults and status added, is as desired")
    func servedIsSatisfied() throws {
        for (resource, object) in [
            (KubernetesResource.deployments, self.children.deployment),
            (.services, self.children.service),
            (.configMaps, self.children.configMap),
            (.networkPolicies, self.children.networkPolicy),
            (.ingresses, try #require(self.children.ingress)),
            (.scaledObjects, self.children.scaledObject),
        ] {
            let desired = DesiredChild(resource, object)
            #expect(desired.isSatisfied(by: try self.served(desired)), "\(resource)")
        }
    }

    @Test("an edited field, a shortened list, a lost owner or label, or a different hash is not as desired")
    func differences() throws {
        let desired = DesiredChild(.networkPolicies, self.children.networkPolicy)
        #expect(!desired.isSatisfied(by: try self.served(desired) { $0["spec"]?["ingress"] = [] }))
        #expect(
            !desired.isSatisfied(by: try self.served(desired) { $0["spec"]?["policyTypes"] = ["Ingress", "Egress"] })
        )
        #expect(!desired.isSatisfied(by: try self.served(desired) { $0["metadata"]?["ownerReferences"] = [] }))
        #expect(
            !desired.isSatisfied(
                by: try self.served(desired) { $0["metadata"]?["labels"]?["liverelay.io/stream"] = "bob" }
            )
        )
        // A field the operator stopped setting is found by the hash alone: the paused-replicas annotation of a
        // stream resumed.
        var suspendedSpec = LiveStreamSpec()
        suspendedSpec.suspend = true
        var suspended = self.children
        suspended.spec = suspendedSpec
        let paused = try self.served(DesiredChild(.scaledObjects, suspended.scaledObject))
        let resumed = DesiredChild(.scaledObjects, self.children.scaledObject)
        #expect(paused.metadata.annotations?[RelayChildren.pausedReplicasAnnotation] == "0")
        #expect(!resumed.isSatisfied(by: paused))
    }

    /// `served` as the operator's cache keeps it: decoded from the JSON straight into a summary.
    func cached(_ served: KubernetesObject) throws -> ObjectSummary {
        try JSONDecoder().decode(ObjectSummary.self, from: JSONEncoder().encode(served))
    }

    @Test("every child as the cache keeps it is as desired, and not once a compared field is edited by hand")
    func cachedChildren() throws {
        func containers(_ object: inout JSONValue, _ edit: (inout JSONValue) -> Void) {
            guard case .array(var containers)? = object["spec"]?["template"]?["spec"]?["containers"] else { return }
            edit(&containers[0])
            object["spec"]?["template"]?["spec"]?["containers"] = .array(containers)
        }
        let cases: [(KubernetesResource, JSONValue, String, (inout JSONValue) -> Void)] = [
            (.deployments, self.children.deployment, "image", { containers(&$0) { $0["image"] = "evil:1" } }),
            (
                .deployments, self.children.deployment, "privilege",
                { containers(&$0) { $0["securityContext"]?["privileged"] = true } }
            ),
            (.deployments, self.children.deployment, "volume mounts", { containers(&$0) { $0["volumeMounts"] = nil } }),
            (
                .configMaps, self.children.configMap, "config",
                { $0["data"]?[RelayChildren.configFile] = "targets: []" }
            ),
            (.services, self.children.service, "selector", { $0["spec"]?["selector"] = ["app": "other"] }),
            (.services, self.children.service, "ports", { $0["spec"]?["ports"] = [] }),
            (.networkPolicies, self.children.networkPolicy, "ingress", { $0["spec"]?["ingress"] = [] }),
            (.ingresses, try #require(self.children.ingress), "rules", { $0["spec"]?["rules"] = [] }),
            (.scaledObjects, self.children.scaledObject, "target", { $0["spec"]?["scaleTargetRef"] = ["name": "x"] }),
        ]
        for (resource, object, field, edit) in cases {
            let desired = DesiredChild(resource, object)
            #expect(desired.isSatisfied(by: try self.cached(try self.served(desired))), "\(resource)")
            #expect(!desired.isSatisfied(by: try self.cached(try self.served(desired, edit: edit))), "\(field)")
        }
    }

    @Test("the hash is stable across processes and key order, and differs with the content")
    func hash() {
        let a: JSONValue = ["b": 1, "a": ["x": "y"]]
        let b: JSONValue = ["a": ["x": "y"], "b": 1]
        #expect(DesiredChild.fingerprint(a) == DesiredChild.fingerprint(b))
        #expect(DesiredChild.fingerprint(a) != DesiredChild.fingerprint(["b": 2, "a": ["x": "y"]]))
        // FNV-1a 64 of `{}` (checked with Python), so the value cannot drift between builds.
        #expect(DesiredChild.fingerprint([:]) == "08f44b07b5901a25")
        #expect(
            DesiredChild(.services, self.children.service).object["metadata"]?["annotations"]?[
                DesiredChild.hashAnnotation
            ] == .string(DesiredChild(.services, self.children.service).hash)
        )
    }

    @Test("the Secret index keeps key names, never values or annotations")
    func secretIndex() throws {
        let secret = try JSONValue.decode(
            KubernetesObject.self,
            from: [
                "apiVersion": "v1", "kind": "Secret",
                "metadata": [
                    "name": "yt", "namespace": "ns", "resourceVersion": "9",
                    "annotations": [
                        "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"key\":\"c2VjcmV0\"}}"
                    ],
                ],
                "data": ["key": "c2VjcmV0"], "stringData": ["other": "plain secret"],
            ]
        )
        let reduced = SecretIndex.reduce(secret)
        #expect(SecretIndex.has(reduced, key: "key"))
        #expect(SecretIndex.has(reduced, key: "other"))
        #expect(!SecretIndex.has(reduced, key: "missing"))
        #expect(reduced.metadata.resourceVersion == "9")
        let text = String(decoding: try JSONEncoder().encode(reduced), as: UTF8.self)
        #expect(!text.contains("c2VjcmV0") && !text.contains("plain secret"), "\(text)")
        // Decoded straight from the JSON, as the index decodes each Secret: the same entry.
        let decoded = try JSONDecoder().decode(IndexedSecret.self, from: try JSONEncoder().encode(secret))
        #expect(decoded == reduced)
        #expect(decoded.keys == ["key", "other"])
        #expect(decoded.metadata.annotations == nil)
    }

    @Test("references: a Secret queues exactly the streams that name it")
    func references() {
        let references = SecretReferences()
        let a = StreamID(namespace: "ns", name: "a")
        let b = StreamID(namespace: "ns", name: "b")
        references.set(a, names: ["yt", "a-key"])
        references.set(b, names: ["yt"])
        #expect(Set(references.streams(referring: ObjectKey(namespace: "ns", name: "yt"))).count == 2)
        #expect(references.streams(referring: ObjectKey(namespace: "other", name: "yt")).isEmpty)
        references.set(a, names: ["a-key"])
        #expect(
            references.streams(referring: ObjectKey(namespace: "ns", name: "yt")) == [
                ObjectKey(namespace: "ns", name: "b")
            ]
        )
        references.remove(b)
        #expect(references.streams(referring: ObjectKey(namespace: "ns", name: "yt")).isEmpty)
    }
}

@Suite("The gateway Service's stream ports")
struct GatewayServicePortsTests {
    @Test("decoded straight from the Service: the stream ports as a set, the chart's own ports left out")
    func decoding() throws {
        let json = """
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "liverelay-gateway", "namespace": "gw", "resourceVersion": "7"},
             "spec": {"type": "NodePort", "ports": [
               {"name": "rtmp", "port": 1935, "targetPort": "rtmp", "protocol": "TCP"},
               {"name": "http", "port": 8080, "targetPort": 8080},
               {"name": "ls-31000", "port": 31000, "targetPort": 31000, "nodePort": 31000, "protocol": "TCP"},
               {"name": "ls-31001", "port": 31001, "targetPort": 31001, "nodePort": 31001},
               {"name": "ls-31002", "port": 31003, "targetPort": 31003}]}}
            """
        let service = try JSONDecoder().decode(GatewayServicePorts.self, from: Data(json.utf8))
        #expect(service.metadata.resourceVersion == "7")
        #expect(service.pinsNodePort)
        #expect(
            service.streamPorts == [
                GatewayServiceWriter.Entry(port: 31000, nodePort: 31000),
                GatewayServiceWriter.Entry(port: 31001, nodePort: 31001),
            ]
        )
        let again = try JSONDecoder().decode(GatewayServicePorts.self, from: JSONEncoder().encode(service))
        #expect(again == service)
    }

    @Test("the next apply gathers four times as long as the last one took, within bounds")
    func gathering() {
        #expect(LiveStreamReconciler.gatewayGathering(after: .milliseconds(10)) == .milliseconds(200))
        #expect(LiveStreamReconciler.gatewayGathering(after: .milliseconds(300)) == .milliseconds(1200))
        #expect(LiveStreamReconciler.gatewayGathering(after: .seconds(30)) == .seconds(5))
    }
}

@Suite("A LiveStream as the operator's cache keeps it")
struct CachedLiveStreamTests {
    func decoded(_ json: String) throws -> CachedLiveStream {
        try JSONDecoder().decode(CachedLiveStream.self, from: Data(json.utf8))
    }

    @Test("spec and status typed, no labels or annotations, the rest of metadata kept")
    func typed() throws {
        let stream = try self.decoded(
            """
            {"apiVersion": "liverelay.io/v1alpha1", "kind": "LiveStream",
             "metadata": {"name": "alice", "namespace": "ns", "uid": "u-1", "resourceVersion": "5", "generation": 2,
               "creationTimestamp": "2026-12-06T00:00:00Z", "finalizers": ["liverelay.io/release-port"],
               "labels": {"team": "a"},
               "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\\"spec\\": {}}"}},
             "spec": {"targets": [{"name": "yt", "url": "rtmp://a.rtmp.youtube.com/live2"}]},
             "status": {"phase": "Idle", "port": 31000, "observedGeneration": 2,
               "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "ok",
                 "lastTransitionTime": "2026-12-06T00:00:01Z", "observedGeneration": 2}]}}
            """
        )
        #expect(stream.metadata.labels == nil)
        #expect(stream.metadata.annotations == nil)
        #expect(stream.metadata.uid == "u-1")
        #expect(stream.metadata.creationTimestamp == "2026-12-06T00:00:00Z")
        #expect(stream.metadata.finalizers == [LiveStreamResource.finalizer])
        #expect(stream.status?.port == 31000)
        #expect(stream.status?.condition("Ready")?.status == .true)
        let spec = try stream.readSpec()
        #expect(spec.targets.map(\.name) == ["yt"])
        #expect((try? LiveStreamReconciler.spec(of: stream, name: "alice").get())?.targets.count == 1)
        let again = try JSONDecoder().decode(CachedLiveStream.self, from: JSONEncoder().encode(stream))
        #expect(again == stream)
    }

    @Test("a spec that cannot be read is kept and reported; no spec is the defaults")
    func unreadable() throws {
        let stream = try self.decoded(#"{"metadata": {"name": "bob"}, "spec": {"targets": "not a list"}}"#)
        guard case .unreadable = stream.spec else {
            Issue.record("an unreadable spec was not kept as JSON: \(stream.spec)")
            return
        }
        guard case .failure(let invalid) = LiveStreamReconciler.spec(of: stream, name: "bob") else {
            Issue.record("an unreadable spec was read")
            return
        }
        #expect(invalid.problems.first?.field == "spec")
        let empty = try self.decoded(#"{"metadata": {"name": "carol"}}"#)
        #expect(empty.spec == .absent)
        #expect(try empty.readSpec() == LiveStreamSpec())
    }
}
