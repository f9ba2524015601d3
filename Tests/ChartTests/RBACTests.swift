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
import Gateway
import KubernetesClient
import KubernetesController
import KubernetesTestServer
import KubernetesTestSupport
import LiveStreamModel
import Logging
import Operator
import PeerTestSupport
import ServiceLifecycle
import Synchronization
import Testing
import TimeSupport

/// What a request asks for, in RBAC's terms.
struct RequestAttributes: Hashable, Sendable, CustomStringConvertible {
    var verb: String
    var group: String
    /// `plural` or `plural/subresource`.
    var resource: String
    var namespace: String?
    var name: String?

    var description: String {
        "\(self.verb) \(self.group.isEmpty ? "core" : self.group)/\(self.resource)"
            + (self.namespace.map { " in \($0)" } ?? "") + (self.name.map { " named \($0)" } ?? "")
    }

    /// The permission, without namespace and name: what a ClusterRole rule grants.
    var grant: String { "\(self.group)/\(self.resource):\(self.verb)" }

    /// `nil` for non-resource paths (discovery), which every authenticated client may read.
    init?(_ request: KubernetesRequest) {
        var parts = request.path.split(separator: "/").map(String.init)
        if parts.first == "api", parts.count >= 2 {
            self.group = ""
            parts.removeFirst(2)
        } else if parts.first == "apis", parts.count >= 3 {
            self.group = parts[1]
            parts.removeFirst(3)
        } else {
            return nil
        }
        if parts.count >= 2, parts[0] == "namespaces", parts.count > 2 {
            self.namespace = parts[1]
            parts.removeFirst(2)
        } else {
            self.namespace = nil
        }
        guard let plural = parts.first else { return nil }
        self.name = parts.count >= 2 ? parts[1] : nil
        self.resource = parts.count >= 3 ? "\(plural)/\(parts[2])" : plural
        let watch = request.queryValue("watch") == "true" || request.queryValue("watch") == "1"
        // A list or watch of one object by a metadata.name field selector is checked against resourceNames, as
        // the API server does.
        if request.method == .get, self.name == nil, let selector = request.queryValue("fieldSelector"),
            selector.hasPrefix("metadata.name="), !selector.contains(",")
        {
            self.name = String(selector.dropFirst("metadata.name=".count))
            self.verb = watch ? "watch" : "list"
            return
        }
        switch request.method {
        case .get: self.verb = self.name == nil ? (watch ? "watch" : "list") : "get"
        case .post: self.verb = "create"
        case .put: self.verb = "update"
        case .patch: self.verb = "patch"
        case .delete: self.verb = self.name == nil ? "deletecollection" : "delete"
        }
    }
}

/// The RBAC rules the chart grants one ServiceAccount, evaluated as the API server's RBAC authorizer does.
struct Authorizer: Sendable {
    struct Rule: Sendable {
        var groups: Set<String>
        var resources: Set<String>
        var verbs: Set<String>
        var names: Set<String>
        /// `nil`: every namespace (a ClusterRoleBinding).
        var namespace: String?

        func allows(_ request: RequestAttributes) -> Bool {
            if let namespace = self.namespace, request.namespace != namespace { return false }
            guard self.groups.contains(request.group) || self.groups.contains("*") else { return false }
            guard self.resources.contains(request.resource) || self.resources.contains("*") else { return false }
            guard self.verbs.contains(request.verb) || self.verbs.contains("*") else { return false }
            if !self.names.isEmpty {
                guard let name = request.name, self.names.contains(name) else { return false }
            }
            return true
        }
    }

    let rules: [Rule]

    /// The rules bound to `serviceAccount` (in `namespace`) by the chart's bindings.
    init(chart: RenderedChart, serviceAccount: String, namespace: String) {
        var rules: [Rule] = []
        // Hooks too: the teardown Job's ServiceAccount is bound by hook objects.
        let all = chart.objects + chart.hooks
        func objects(_ kind: String) -> [JSON] { all.filter { $0["kind"]?.stringValue == kind } }
        for binding in objects("ClusterRoleBinding") + objects("RoleBinding") {
            let subjects = binding["subjects"]?.arrayValue ?? []
            guard
                subjects.contains(where: {
                    $0["kind"] == "ServiceAccount" && $0["name"]?.stringValue == serviceAccount
                        && $0["namespace"]?.stringValue == namespace
                })
            else { continue }
            let boundNamespace: String? =
                binding["kind"] == "RoleBinding" ? binding[path: ["metadata", "namespace"]]?.stringValue : nil
            let roleKind = binding[path: ["roleRef", "kind"]]?.stringValue ?? ""
            let roleName = binding[path: ["roleRef", "name"]]?.stringValue ?? ""
            guard
                let role = objects(roleKind).first(where: { $0[path: ["metadata", "name"]]?.stringValue == roleName })
            else { continue }
            func strings(_ value: JSON?) -> Set<String> { Set(value?.arrayValue?.compactMap(\.stringValue) ?? []) }
            for rule in role["rules"]?.arrayValue ?? [] {
                rules.append(
                    Rule(
                        groups: strings(rule["apiGroups"]),
                        resources: strings(rule["resources"]),
                        verbs: strings(rule["verbs"]),
                        names: strings(rule["resourceNames"]),
                        namespace: boundNamespace
                    )
                )
            }
        }
        self.rules = rules
    }

    func allows(_ request: RequestAttributes) -> Bool {
        self.rules.contains { $0.allows(request) }
    }

    /// Every permission granted, as `group/resource:verb`.
    var grants: Set<String> {
        var result: Set<String> = []
        for rule in self.rules {
            for group in rule.groups {
                for resource in rule.resources {
                    for verb in rule.verbs { result.insert("\(group)/\(resource):\(verb)") }
                }
            }
        }
        return result
    }
}

/// Answers 403 Forbidden, as a real API server with RBAC would, to every request the ServiceAccount's rules do not
/// allow, and records what was asked. A server-side apply that created its object needs `create` as well.
final class RBACMiddleware: KubernetesMiddleware {
    let authorizer: Authorizer
    let serviceAccount: String
    private let state = Mutex<(used: Set<String>, denied: [String])>(([], []))

    init(authorizer: Authorizer, serviceAccount: String) {
        self.authorizer = authorizer
        self.serviceAccount = serviceAccount
    }

    var used: Set<String> { self.state.withLock { $0.used } }
    var denied: [String] { self.state.withLock { $0.denied } }

    func intercept(
        _ request: KubernetesRequest,
        body: KubernetesBody?,
        next: @Sendable (KubernetesRequest, KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    ) async throws -> (KubernetesResponse, KubernetesBody) {
        guard let attributes = RequestAttributes(request) else { return try await next(request, body) }
        guard self.authorizer.allows(attributes) else {
            self.state.withLock { $0.denied.append(attributes.description) }
            let message = "\(self.serviceAccount) cannot \(attributes)"
            let status =
                #"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"\#(message)"}"#
            return (
                KubernetesResponse(status: 403, headers: [("Content-Type", "application/json")]), KubernetesBody(status)
            )
        }
        self.state.withLock { _ = $0.used.insert(attributes.grant) }
        let (response, responseBody) = try await next(request, body)
        if request.method == .patch, response.status == 201 {
            var create = attributes
            create.verb = "create"
            if self.authorizer.allows(create) {
                self.state.withLock { _ = $0.used.insert(create.grant) }
            } else {
                self.state.withLock { $0.denied.append("\(create) (server-side apply that created)") }
            }
        }
        return (response, responseBody)
    }
}

/// Forwards to a client (with its authentication and retries), so a second client can add middleware in front.
struct ForwardingTransport: KubernetesTransport {
    let client: KubernetesClient

    func send(_ request: KubernetesRequest, body: KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    {
        try await self.client.send(request, body: body)
    }
}

/// The operator's configuration from the rendered Deployment's arguments, as `liverelay operator` reads them.
func operatorConfiguration(_ arguments: [String], identity: String) throws -> OperatorConfiguration {
    var configuration = OperatorConfiguration(reportingInstance: identity)
    var labels: [String: String] = [:]
    var leaderElection = true
    var leaseName = "liverelay-operator"
    var leaseNamespace: String?
    var workers = 4
    for argument in arguments.dropFirst() {
        let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
        let flag = parts[0]
        let value = parts.count == 2 ? parts[1] : ""
        switch flag {
        case "--in-cluster": break
        case "--namespace": configuration.namespace = value
        case "--port-range": try configuration.setPortRange(parsing: value)
        case "--relay-image": configuration.relayImage = value
        case "--gateway-service": configuration.gatewayServiceName = value
        case "--gateway-namespace": configuration.gatewayNamespace = value
        case "--gateway-pod-label":
            let pair = value.split(separator: "=", maxSplits: 1).map(String.init)
            labels[pair[0]] = pair[1]
        case "--gateway-metrics-port": configuration.gatewayMetricsPort = try #require(Int(value))
        case "--ingest-host": configuration.ingestHost = value
        case "--ingress-class": configuration.ingressClassName = value
        case "--ingress-host": configuration.ingressHost = value
        case "--preview-url-base": configuration.previewURLBase = value
        case "--workers": workers = try #require(Int(value))
        case "--enable-leader-election": leaderElection = true
        case "--disable-leader-election": leaderElection = false
        case "--lease-name": leaseName = value
        case "--lease-namespace": leaseNamespace = value
        case "--log-level", "--http-listen": break
        case "--ingest-key-book": configuration.ingestKeyBookSecret = value
        default: Issue.record("the chart passes \(argument), which this test does not know")
        }
    }
    configuration.gatewayPodLabels = labels
    configuration.controller = ControllerConfiguration(
        workers: workers,
        resyncPeriod: nil,
        listWatch: ListWatchOptions(
            watchTimeoutSeconds: 60,
            backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(400))
        ),
        leaderElection: leaderElection
            ? LeaderElectionConfiguration(leaseName: leaseName, leaseNamespace: leaseNamespace, identity: identity)
            : nil
    )
    return configuration
}

@Suite(
    "Chart RBAC is least privilege",
    .enabled(
        if: peerAvailable(chartToolsAvailable),
        "python3 with helm-python and kubernetes-validate is not installed"
    ),
    .timeLimit(.minutes(3))
)
struct RBACTests {
    /// The operator and the gateway run with exactly the permissions the chart gives their ServiceAccounts, through
    /// a stream's whole life (create with a generated key, preview off, suspend, wake, delete). Every request must be
    /// allowed, and every permission granted must have been used: a grant nothing needs fails the test.
    @Test(
        "the operator and the gateway need every permission the chart grants, and no other (with and without the shared ingest port, with and without KEDA in the cluster)",
        arguments: [(false, true), (true, true), (false, false)]
    )
    func leastPrivilege(sharedPort: Bool, kedaInstalled: Bool) async throws {
        let sets =
            ["ingress.className=nginx", "ingress.host=live.example.com", "ingestHost=rtmp.example.com"]
            + (sharedPort ? ["gateway.sharedPort.enabled=true"] : [])
        try await withRenderedChart(sets, crds: false, lint: false) { chart in
            try await withTestServer { server, admin in
                try server.installCRD(yaml: String(contentsOfFile: Paths.crd, encoding: .utf8))
                if kedaInstalled {
                    try server.installCRD(yaml: String(contentsOfFile: Paths.kedaCRD, encoding: .utf8))
                }
                _ = try server.apply([
                    "apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "liverelay-system"],
                ])
                for object in chart.objects { _ = try server.apply(object) }
                try await Self.exercise(chart: chart, server: server, admin: admin, kedaInstalled: kedaInstalled)
            }
        }
    }

    static func exercise(
        chart: RenderedChart,
        server: KubernetesTestServer,
        admin: KubernetesClient,
        kedaInstalled: Bool
    ) async throws {
        let operatorRBAC = RBACMiddleware(
            authorizer: Authorizer(chart: chart, serviceAccount: "liverelay-operator", namespace: "liverelay-system"),
            serviceAccount: "liverelay-operator"
        )
        let gatewayRBAC = RBACMiddleware(
            authorizer: Authorizer(chart: chart, serviceAccount: "liverelay-gateway", namespace: "liverelay-system"),
            serviceAccount: "liverelay-gateway"
        )
        let quiet = Logger(label: "rbac-test", factory: { _ in SwiftLogNoOpLogHandler() })
        let operatorClient = KubernetesClient(
            transport: ForwardingTransport(client: admin),
            namespace: "liverelay-system",
            middlewares: [operatorRBAC],
            logger: quiet
        )
        let gatewayClient = KubernetesClient(
            transport: ForwardingTransport(client: admin),
            namespace: "liverelay-system",
            middlewares: [gatewayRBAC],
            logger: quiet
        )
        let configuration = try operatorConfiguration(chart.arguments("liverelay-operator"), identity: "rbac-test")
        let liveOperator = LiveStreamOperator(client: operatorClient, configuration: configuration, logger: quiet)
        let routes = GatewayRoutes()
        let routeSource = KubernetesGatewayRouteSource(
            client: gatewayClient,
            namespace: nil,
            routes: routes,
            ingestKeyBook: chart.flag("liverelay-gateway", "--ingest-key-book").flatMap { book in
                let parts = book.split(separator: "/")
                return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
            },
            logger: quiet
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: liveOperator), .init(service: routeSource)],
                logger: quiet
            )
        )
        let running = Task { try await group.run() }
        do {
            try await Self.streamLife(
                server: server,
                admin: admin,
                routes: routes,
                gatewayClient: gatewayClient,
                kedaInstalled: kedaInstalled
            )
            await group.triggerGracefulShutdown()
            try await running.value
        } catch {
            running.cancel()
            _ = try? await running.value
            throw error
        }

        #expect(operatorRBAC.denied.isEmpty, "the operator was refused: \(operatorRBAC.denied)")
        #expect(gatewayRBAC.denied.isEmpty, "the gateway was refused: \(gatewayRBAC.denied)")
        // Checked by the API server's OwnerReferencesPermissionEnforcement admission plugin when a child with
        // blockOwnerDeletion is written, never requested by the operator itself.
        let admissionOnly: Set<String> = ["liverelay.io/livestreams/finalizers:update"]
        // The chart cannot know whether KEDA will be in the cluster: with KEDA the ScaledObject owns the replica
        // count (the operator never writes the scale); without, the operator does, and only lists ScaledObjects to learn
        // when KEDA comes.
        let otherMode: Set<String> =
            kedaInstalled
            ? ["apps/deployments/scale:get", "apps/deployments/scale:update"]
            : ["keda.sh/scaledobjects:create", "keda.sh/scaledobjects:patch", "keda.sh/scaledobjects:watch"]
        let operatorUnused = operatorRBAC.authorizer.grants.subtracting(operatorRBAC.used).subtracting(admissionOnly)
            .subtracting(otherMode)
        #expect(operatorUnused.isEmpty, "granted to the operator but never used: \(operatorUnused.sorted())")
        let gatewayUnused = gatewayRBAC.authorizer.grants.subtracting(gatewayRBAC.used)
        #expect(gatewayUnused.isEmpty, "granted to the gateway but never used: \(gatewayUnused.sorted())")
    }

    static func streamLife(
        server: KubernetesTestServer,
        admin: KubernetesClient,
        routes: GatewayRoutes,
        gatewayClient: KubernetesClient,
        kedaInstalled: Bool
    ) async throws {
        func stream() -> JSON? {
            server.object(apiVersion: "liverelay.io/v1alpha1", kind: "LiveStream", namespace: "default", name: "alice")
        }
        func deployment() -> JSON? {
            server.object(apiVersion: "apps/v1", kind: "Deployment", namespace: "default", name: "ls-alice")
        }
        for path in ["target-keys.yaml", "livestream.yaml"] {
            _ = try server.apply(yaml: String(contentsOfFile: "\(Paths.examples)/\(path)", encoding: .utf8))
        }
        try await eventually("alice Ready with a port", timeout: .seconds(90)) {
            stream()?[path: ["status", "port"]]?.intValue != nil
        }
        try await eventually("the preview Ingress") {
            server.object(apiVersion: "networking.k8s.io/v1", kind: "Ingress", namespace: "default", name: "ls-alice")
                != nil
        }
        try await eventually("the gateway's route") {
            routes.route(for: StreamID(namespace: "default", name: "alice")) != nil
        }
        if server.object(apiVersion: "v1", kind: "Secret", namespace: "liverelay-system", name: "liverelay-ingest-keys")
            != nil
        {
            try await eventually("the route's key, for the shared port") {
                routes.route(for: StreamID(namespace: "default", name: "alice"))?.ingestKey != nil
            }
        }

        // An encoder arrives while the relay is at zero: the gateway wakes it.
        try await eventually("the relay Deployment") { deployment() != nil }
        // Scaled to zero as KEDA would: read and write the scale, again if the operator rewrote the Deployment in
        // between (409 Conflict), as every Kubernetes client does.
        try await eventually("the relay scaled to zero") {
            var scale = try await admin.getScale(.deployments, name: "ls-alice", namespace: "default")
            scale.spec.replicas = 0
            do {
                _ = try await admin.updateScale(scale, .deployments, namespace: "default")
                return true
            } catch let error as KubernetesError where error.isConflict {
                return false
            }
        }
        // The activator gives up on a conflict (the operator may rewrite the Deployment at that moment); a held
        // connection asks again.
        let activator = KubernetesScaleActivator(client: gatewayClient, logger: Logger(label: "rbac-test"))
        try await eventually("the relay woken by the gateway") {
            await activator.activate(StreamID(namespace: "default", name: "alice"))
            return deployment()?[path: ["spec", "replicas"]]?.intValue == 1
        }

        // A Deployment edited by hand is restored: the operator watches it and applies its own fields again.
        _ = try await admin.patch(
            KubernetesObject.self,
            .deployments,
            name: "ls-alice",
            namespace: "default",
            mergePatch: ["spec": ["revisionHistoryLimit": 9]]
        )
        try await eventually("the hand-edited Deployment restored") {
            deployment()?[path: ["spec", "revisionHistoryLimit"]]?.intValue == 3
        }

        // Preview off: the Ingress is deleted. Suspended: the ScaledObject is paused at zero replicas (KEDA owns the
        // count; the operator never writes it while KEDA scales the relay).
        _ = try await admin.patch(
            KubernetesObject.self,
            .liveStreams,
            name: "alice",
            namespace: "default",
            mergePatch: ["spec": ["preview": ["enabled": false], "suspend": true]]
        )
        try await eventually("the Ingress deleted") {
            server.object(apiVersion: "networking.k8s.io/v1", kind: "Ingress", namespace: "default", name: "ls-alice")
                == nil
        }
        if !kedaInstalled {
            try await eventually("the suspended relay at zero") {
                deployment()?[path: ["spec", "replicas"]]?.intValue == 0
            }
        } else {
            try await eventually("the ScaledObject paused at zero") {
                let scaledObject = server.object(
                    apiVersion: "keda.sh/v1alpha1",
                    kind: "ScaledObject",
                    namespace: "default",
                    name: "ls-alice"
                )
                return scaledObject?[path: ["metadata", "annotations", "autoscaling.keda.sh/paused-replicas"]]?
                    .stringValue
                    == "0"
            }
        }

        // The leader renews its Lease.
        try await eventually("the operator's Lease renewed", timeout: .seconds(20)) {
            let lease = server.object(
                apiVersion: "coordination.k8s.io/v1",
                kind: "Lease",
                namespace: "liverelay-system",
                name: "liverelay-operator"
            )
            let spec = lease?["spec"]
            return spec?["renewTime"] != nil && spec?["renewTime"] != spec?["acquireTime"]
        }

        // Deleted: the finalizer releases the port and the stream goes.
        try await admin.delete(.liveStreams, name: "alice", namespace: "default")
        try await eventually("alice deleted") { stream() == nil }
    }
}
