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
import KubernetesTestServer
import Operator
import PeerTestSupport
import Testing
import Yams

/// One documented way to install the chart: the `--set` expressions and what must then be true of the objects.
struct ChartCase: Sendable, CustomTestStringConvertible {
    let name: String
    let release: String
    let sets: [String]
    let check: @Sendable (RenderedChart) -> Void

    init(
        _ name: String,
        release: String = "liverelay",
        _ sets: [String],
        check: @escaping @Sendable (RenderedChart) -> Void
    ) {
        self.name = name
        self.release = release
        self.sets = sets
        self.check = check
    }

    var testDescription: String { self.name }
}

private func rules(_ chart: RenderedChart, _ kind: String, _ name: String) -> [JSON] {
    chart.object(kind, name)?["rules"]?.arrayValue ?? []
}

/// Whether a rule of `rules` names `resource` (with its subresource, `deployments/scale`).
private func grants(_ rules: [JSON], _ resource: String) -> Set<String> {
    var verbs: Set<String> = []
    for rule in rules where rule["resources"]?.arrayValue?.contains(.string(resource)) == true {
        verbs.formUnion(rule["verbs"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
    return verbs
}

let chartCases: [ChartCase] = [
    ChartCase("defaults", []) { chart in
        #expect(chart.objects.count == 13)
        let service = chart.object("Service", "liverelay-gateway")
        #expect(service?[path: ["spec", "type"]] == "LoadBalancer")
        #expect(service?[path: ["spec", "externalTrafficPolicy"]] == "Local")
        #expect(chart.object("PodDisruptionBudget", "liverelay-gateway")?[path: ["spec", "minAvailable"]] == .int(1))
        #expect(chart.object("Deployment", "liverelay-gateway")?[path: ["spec", "replicas"]] == .int(2))
        #expect(chart.objects("ClusterRoleBinding").count == 2)
        #expect(chart.objects("RoleBinding").count == 1)
        #expect(chart.container("liverelay-operator")?["image"] == "ghcr.io/liverelay/liverelay-operator:0.1.0")
        #expect(chart.flag("liverelay-operator", "--relay-image") == "ghcr.io/liverelay/liverelay-relay:0.1.0")
        #expect(chart.flag("liverelay-operator", "--port-range") == "31000-31999")
        #expect(chart.flag("liverelay-operator", "--ingest-host") == nil)
        #expect(chart.flag("liverelay-operator", "--namespace") == nil)
        #expect(chart.arguments("liverelay-operator").contains("--enable-leader-election"))
        let operatorRules = rules(chart, "ClusterRole", "liverelay-operator")
        #expect(grants(operatorRules, "scaledobjects") == ["list", "watch", "create", "patch"])
        #expect(grants(operatorRules, "ingresses").isEmpty)
        #expect(grants(operatorRules, "livestreams/finalizers") == ["update"])
        // Watched into a key index; a key is read (get) only for the shared ingest port.
        #expect(grants(operatorRules, "secrets") == ["list", "watch", "create"])
        let gatewayRules = rules(chart, "ClusterRole", "liverelay-gateway")
        #expect(grants(gatewayRules, "deployments/scale") == ["get", "update"])
        #expect(grants(gatewayRules, "livestreams") == ["list", "watch"])
        #expect(grants(gatewayRules, "secrets").isEmpty)
        for deployment in ["liverelay-operator", "liverelay-gateway"] {
            let pod = chart.object("Deployment", deployment)?[path: ["spec", "template", "spec"]]
            #expect(pod?[path: ["securityContext", "runAsNonRoot"]] == .bool(true))
            let container = chart.container(deployment)
            #expect(container?[path: ["securityContext", "readOnlyRootFilesystem"]] == .bool(true))
            #expect(container?[path: ["securityContext", "allowPrivilegeEscalation"]] == .bool(false))
            #expect(container?[path: ["securityContext", "capabilities", "drop"]] == ["ALL"])
            #expect(container?[path: ["resources", "requests", "memory"]] != nil)
        }
        #expect(chart.notes.contains("get service liverelay-gateway"))
        #expect(chart.notes.contains("tools/install-keda.sh"))
    },
    ChartCase("NodePort Service (kind, minikube, bare metal)", ["gateway.service.type=NodePort"]) { chart in
        let service = chart.object("Service", "liverelay-gateway")
        #expect(service?[path: ["spec", "type"]] == "NodePort")
        #expect(service?[path: ["spec", "externalTrafficPolicy"]] == "Local")
        #expect(chart.notes.contains("any node's address"))
    },
    ChartCase("WHIP by default: the gateway's UDP and ICE-TCP ports, exposed, with their flags", []) { chart in
        #expect(chart.flag("liverelay-gateway", "--webrtc-udp-port") == "8189")
        #expect(chart.flag("liverelay-gateway", "--webrtc-tcp-port") == "8189")
        #expect(chart.flag("liverelay-gateway", "--whip-allow-origin") == "*")
        #expect(!chart.arguments("liverelay-gateway").contains("--disable-whip"))
        let ports = chart.object("Service", "liverelay-gateway")?[path: ["spec", "ports"]]?.arrayValue ?? []
        #expect(ports.contains { $0["name"] == "webrtc-udp" && $0["protocol"] == "UDP" && $0["port"] == .int(8189) })
        #expect(ports.contains { $0["name"] == "webrtc-tcp" && $0["protocol"] == "TCP" && $0["port"] == .int(8189) })
        let container = chart.container("liverelay-gateway")?["ports"]?.arrayValue ?? []
        #expect(container.contains { $0["name"] == "webrtc-udp" && $0["containerPort"] == .int(8189) })
        #expect(chart.object("Service", "liverelay-gateway")?[path: ["spec", "sessionAffinity"]] == "ClientIP")
    },
    ChartCase(
        "WHIP behind a load balancer's address, UDP only, one origin",
        [
            "gateway.webrtc.announce={203.0.113.7}", "gateway.webrtc.tcpPort=0",
            "gateway.webrtc.allowOrigin=https://studio.example", "gateway.webrtc.iceServers={stun:stun.example.org}",
        ]
    ) { chart in
        #expect(chart.flag("liverelay-gateway", "--webrtc-announce") == "203.0.113.7")
        #expect(chart.flag("liverelay-gateway", "--webrtc-tcp-port") == nil)
        #expect(chart.flag("liverelay-gateway", "--whip-allow-origin") == "https://studio.example")
        #expect(chart.flag("liverelay-gateway", "--whip-ice-server") == "stun:stun.example.org")
        let ports = chart.object("Service", "liverelay-gateway")?[path: ["spec", "ports"]]?.arrayValue ?? []
        #expect(!ports.contains { $0["name"] == "webrtc-tcp" })
    },
    ChartCase("WHIP off", ["gateway.webrtc.enabled=false"]) { chart in
        #expect(chart.arguments("liverelay-gateway").contains("--disable-whip"))
        #expect(chart.flag("liverelay-gateway", "--webrtc-udp-port") == nil)
        let ports = chart.object("Service", "liverelay-gateway")?[path: ["spec", "ports"]]?.arrayValue ?? []
        #expect(!ports.contains { $0["name"] == "webrtc-udp" })
        #expect(chart.object("Service", "liverelay-gateway")?[path: ["spec", "sessionAffinity"]] == nil)
    },
    ChartCase("ClusterIP Service", ["gateway.service.type=ClusterIP"]) { chart in
        let service = chart.object("Service", "liverelay-gateway")
        #expect(service?[path: ["spec", "type"]] == "ClusterIP")
        #expect(service?[path: ["spec", "externalTrafficPolicy"]] == nil)
    },
    ChartCase(
        "LoadBalancer with source ranges, class, annotations and Cluster traffic policy",
        [
            "gateway.service.loadBalancerSourceRanges={203.0.113.0/24,198.51.100.0/24}",
            "gateway.service.loadBalancerClass=service.k8s.aws/nlb",
            "gateway.service.annotations.service\\.beta\\.kubernetes\\.io/aws-load-balancer-type=external",
            "gateway.service.externalTrafficPolicy=Cluster",
        ]
    ) { chart in
        let service = chart.object("Service", "liverelay-gateway")
        #expect(service?[path: ["spec", "loadBalancerSourceRanges"]] == ["203.0.113.0/24", "198.51.100.0/24"])
        #expect(service?[path: ["spec", "loadBalancerClass"]] == "service.k8s.aws/nlb")
        #expect(service?[path: ["spec", "externalTrafficPolicy"]] == "Cluster")
        #expect(
            service?[path: ["metadata", "annotations", "service.beta.kubernetes.io/aws-load-balancer-type"]]
                == "external"
        )
    },
    ChartCase("helm uninstall first deletes the LiveStreams, while the operator runs", []) { chart in
        let job = chart.hook("Job", "liverelay-teardown")
        #expect(job?[path: ["metadata", "annotations", "helm.sh/hook"]] == "pre-delete")
        let container = job?[path: ["spec", "template", "spec", "containers"]]?.arrayValue?.first
        #expect(container?["image"] == "ghcr.io/liverelay/liverelay-operator:0.1.0")
        let arguments = container?["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(arguments == ["teardown", "--in-cluster", "--streams=delete", "--timeout=120"])
        #expect(container?[path: ["securityContext", "readOnlyRootFilesystem"]] == .bool(true))
        #expect(job?[path: ["spec", "template", "spec", "serviceAccountName"]] == "liverelay-teardown")
        let role = chart.hook("ClusterRole", "liverelay-teardown")
        #expect(grants(role?["rules"]?.arrayValue ?? [], "livestreams") == ["list", "delete", "patch"])
        #expect(chart.hook("ClusterRoleBinding", "liverelay-teardown") != nil)
        #expect(chart.hook("ServiceAccount", "liverelay-teardown") != nil)
        #expect(chart.hooks.count == 4)
    },
    ChartCase("helm uninstall can keep the LiveStreams, released", ["uninstall.liveStreams=release"]) { chart in
        let job = chart.hook("Job", "liverelay-teardown")
        let container = job?[path: ["spec", "template", "spec", "containers"]]?.arrayValue?.first
        #expect(container?["args"]?.arrayValue?.contains("--streams=release") == true)
        let role = chart.hook("ClusterRole", "liverelay-teardown")
        #expect(grants(role?["rules"]?.arrayValue ?? [], "livestreams") == ["list", "patch"])
    },
    ChartCase("no uninstall hook when told to keep", ["uninstall.liveStreams=keep"]) { chart in
        #expect(chart.hooks.isEmpty)
    },
    ChartCase("KEDA off", ["keda.enabled=false"]) { chart in
        #expect(grants(rules(chart, "ClusterRole", "liverelay-operator"), "scaledobjects").isEmpty)
        #expect(chart.notes.contains("KEDA is off"))
    },
    ChartCase("one stream namespace", ["streamNamespace=streams"]) { chart in
        #expect(chart.objects("ClusterRoleBinding").isEmpty)
        let bindings = chart.objects("RoleBinding").filter { $0[path: ["metadata", "namespace"]] == "streams" }
        #expect(bindings.count == 2)
        #expect(chart.flag("liverelay-operator", "--namespace") == "streams")
        #expect(chart.flag("liverelay-gateway", "--namespace") == "streams")
        let teardown = chart.hooks.first { $0["kind"] == "RoleBinding" }
        #expect(teardown?[path: ["metadata", "namespace"]] == "streams")
        let job = chart.hook("Job", "liverelay-teardown")
        let container = job?[path: ["spec", "template", "spec", "containers"]]?.arrayValue?.first
        #expect(container?["args"]?.arrayValue?.contains("--namespace=streams") == true)
    },
    ChartCase(
        "preview ingress",
        ["ingress.className=nginx", "ingress.host=live.example.com", "ingress.previewURLBase=https://cdn.example.com"]
    ) { chart in
        #expect(chart.flag("liverelay-operator", "--ingress-class") == "nginx")
        #expect(chart.flag("liverelay-operator", "--ingress-host") == "live.example.com")
        #expect(chart.flag("liverelay-operator", "--preview-url-base") == "https://cdn.example.com")
        #expect(
            grants(rules(chart, "ClusterRole", "liverelay-operator"), "ingresses")
                == ["list", "watch", "create", "patch", "delete"]
        )
    },
    ChartCase("ingress class without host makes no Ingress", ["ingress.className=nginx"]) { chart in
        #expect(chart.flag("liverelay-operator", "--ingress-class") == nil)
        #expect(grants(rules(chart, "ClusterRole", "liverelay-operator"), "ingresses").isEmpty)
    },
    ChartCase("one gateway replica has no PodDisruptionBudget", ["gateway.replicas=1"]) { chart in
        #expect(chart.objects("PodDisruptionBudget").isEmpty)
    },
    ChartCase(
        "PodDisruptionBudget off and minAvailable",
        ["gateway.replicas=3", "gateway.podDisruptionBudget.minAvailable=2"]
    ) { chart in
        #expect(chart.object("PodDisruptionBudget", "liverelay-gateway")?[path: ["spec", "minAvailable"]] == .int(2))
    },
    ChartCase("no PodDisruptionBudget when disabled", ["gateway.podDisruptionBudget.enabled=false"]) { chart in
        #expect(chart.objects("PodDisruptionBudget").isEmpty)
    },
    ChartCase("the shared ingest port", ["gateway.sharedPort.enabled=true"]) { chart in
        #expect(chart.flag("liverelay-gateway", "--shared-port") == "1935")
        #expect(chart.flag("liverelay-gateway", "--ingest-key-book") == "liverelay-system/liverelay-ingest-keys")
        #expect(chart.flag("liverelay-operator", "--ingest-key-book") == "liverelay-ingest-keys")
        let ports = chart.object("Service", "liverelay-gateway")?[path: ["spec", "ports"]]?.arrayValue ?? []
        #expect(
            ports.contains { $0["name"] == "rtmp-shared" && $0["port"] == 1935 && $0["targetPort"] == "rtmp-shared" }
        )
        // The gateway may read the key book and no other Secret.
        let gateway = rules(chart, "Role", "liverelay-gateway-keys")
        #expect(grants(gateway, "secrets") == ["list", "watch"])
        #expect(gateway.allSatisfy { $0["resourceNames"] == ["liverelay-ingest-keys"] })
        #expect(grants(rules(chart, "ClusterRole", "liverelay-gateway"), "secrets").isEmpty)
        #expect(grants(rules(chart, "Role", "liverelay-operator"), "secrets") == ["create", "get", "patch"])
        // The streams' keys are read for the book.
        #expect(
            grants(rules(chart, "ClusterRole", "liverelay-operator"), "secrets") == ["list", "watch", "create", "get"]
        )
    },
    ChartCase("no shared ingest port by default", []) { chart in
        #expect(chart.flag("liverelay-gateway", "--shared-port") == nil)
        #expect(chart.flag("liverelay-operator", "--ingest-key-book") == nil)
        #expect(chart.object("Role", "liverelay-gateway-keys") == nil)
    },
    ChartCase("rtmps:// with a TLS Secret", ["gateway.tls.secretName=ingest-tls"]) { chart in
        #expect(chart.flag("liverelay-gateway", "--tls-cert") == "/etc/liverelay/tls/tls.crt")
        #expect(chart.flag("liverelay-gateway", "--tls-key") == "/etc/liverelay/tls/tls.key")
        #expect(chart.arguments("liverelay-operator").contains("--ingest-tls"))
        #expect(
            chart.container("liverelay-gateway")?["volumeMounts"] == [
                ["name": "tls", "mountPath": "/etc/liverelay/tls", "readOnly": true]
            ]
        )
        // A whole Secret volume (not subPath), which the kubelet updates when the certificate is renewed.
        let volumes = chart.object("Deployment", "liverelay-gateway")?[path: ["spec", "template", "spec", "volumes"]]
        #expect(volumes == [["name": "tls", "secret": ["secretName": "ingest-tls"]]])
    },
    ChartCase("rtmp:// only by default", []) { chart in
        #expect(chart.flag("liverelay-gateway", "--tls-cert") == nil)
        #expect(!chart.arguments("liverelay-operator").contains("--ingest-tls"))
        #expect(chart.container("liverelay-gateway")?["volumeMounts"] == nil)
    },
    ChartCase("leader election off", ["operator.leaderElection=false"]) { chart in
        #expect(chart.arguments("liverelay-operator").contains("--disable-leader-election"))
        #expect(grants(rules(chart, "Role", "liverelay-operator"), "leases").isEmpty)
    },
    ChartCase(
        "images, tags and pull secrets",
        [
            "image.repository=registry.example.com/lr/operator", "image.tag=1.2.3", "image.pullPolicy=Always",
            "relayImage.repository=registry.example.com/lr/relay", "relayImage.tag=1.2.4",
            "imagePullSecrets[0].name=regcred",
        ]
    ) { chart in
        for deployment in ["liverelay-operator", "liverelay-gateway"] {
            #expect(chart.container(deployment)?["image"] == "registry.example.com/lr/operator:1.2.3")
            #expect(chart.container(deployment)?["imagePullPolicy"] == "Always")
            let secrets = chart.object("Deployment", deployment)?[path: [
                "spec", "template", "spec", "imagePullSecrets",
            ]]
            #expect(secrets == [["name": "regcred"]])
        }
        #expect(chart.flag("liverelay-operator", "--relay-image") == "registry.example.com/lr/relay:1.2.4")
    },
    ChartCase("no RBAC and no ServiceAccounts", ["rbac.create=false", "serviceAccount.create=false"]) { chart in
        #expect(chart.objects.filter { $0["apiVersion"] == "rbac.authorization.k8s.io/v1" }.isEmpty)
        #expect(chart.hooks.filter { $0["apiVersion"] == "rbac.authorization.k8s.io/v1" }.isEmpty)
        #expect(chart.objects("ServiceAccount").isEmpty)
        let pod = chart.object("Deployment", "liverelay-operator")?[path: ["spec", "template", "spec"]]
        #expect(pod?["serviceAccountName"] == "default")
    },
    ChartCase(
        "named ServiceAccounts",
        ["serviceAccount.operatorName=lr-op", "serviceAccount.gatewayName=lr-gw", "serviceAccount.annotations.a=b"]
    ) { chart in
        #expect(chart.object("ServiceAccount", "lr-op")?[path: ["metadata", "annotations", "a"]] == "b")
        #expect(chart.object("ServiceAccount", "lr-gw") != nil)
    },
    ChartCase(
        "ports, ingest host, resources, scheduling and log levels",
        [
            "portRange=32000-32099", "ingestHost=rtmp.example.com", "operator.resources.limits.memory=1Gi",
            "gateway.resources.requests.cpu=500m", "operator.workers=8", "operator.logLevel=debug",
            "gateway.logLevel=notice", "gateway.nodeSelector.role=edge", "gateway.tolerations[0].key=edge",
            "gateway.tolerations[0].operator=Exists", "operator.nodeSelector.role=system",
            "gateway.topologySpread=false",
        ]
    ) { chart in
        #expect(chart.flag("liverelay-operator", "--port-range") == "32000-32099")
        #expect(chart.flag("liverelay-operator", "--ingest-host") == "rtmp.example.com")
        #expect(chart.flag("liverelay-operator", "--workers") == "8")
        #expect(chart.flag("liverelay-operator", "--log-level") == "debug")
        #expect(chart.flag("liverelay-gateway", "--log-level") == "notice")
        #expect(chart.container("liverelay-operator")?[path: ["resources", "limits", "memory"]] == "1Gi")
        #expect(chart.container("liverelay-gateway")?[path: ["resources", "requests", "cpu"]] == "500m")
        let pod = chart.object("Deployment", "liverelay-gateway")?[path: ["spec", "template", "spec"]]
        #expect(pod?[path: ["nodeSelector", "role"]] == "edge")
        #expect(pod?["topologySpreadConstraints"] == nil)
    },
    ChartCase(
        "gateway hold limits, grace and ports",
        [
            "gateway.holdTimeout=30", "gateway.maxHeldPerStream=4", "gateway.maxHeldTotal=100",
            "gateway.shutdownGrace=10", "gateway.httpPort=9090", "gateway.relayPort=1936",
            "gateway.prometheusAnnotations=false", "gateway.podAnnotations.team=video",
        ]
    ) { chart in
        #expect(chart.flag("liverelay-gateway", "--hold-timeout") == "30")
        #expect(chart.flag("liverelay-gateway", "--max-held-per-stream") == "4")
        #expect(chart.flag("liverelay-gateway", "--max-held-total") == "100")
        #expect(chart.flag("liverelay-gateway", "--shutdown-grace") == "10")
        #expect(chart.flag("liverelay-gateway", "--relay-port") == "1936")
        #expect(chart.flag("liverelay-gateway", "--http-listen") == "0.0.0.0:9090")
        let template = chart.object("Deployment", "liverelay-gateway")?[path: ["spec", "template"]]
        #expect(template?[path: ["spec", "terminationGracePeriodSeconds"]] == .int(15))
        #expect(template?[path: ["metadata", "annotations"]] == ["team": "video"])
    },
    ChartCase(
        "PROXY protocol from the gateway to the relays",
        ["gateway.proxyProtocol.enabled=true", "gateway.proxyProtocol.trustedRanges={10.244.0.0/16,fd00:10:244::/56}"]
    ) { chart in
        // The two sides are set together: the gateway sends the header, the relays expect it from its pods.
        #expect(chart.arguments("liverelay-gateway").contains("--send-proxy-header"))
        #expect(chart.flag("liverelay-operator", "--relay-proxy-protocol-from") == "10.244.0.0/16,fd00:10:244::/56")
    },
    ChartCase("no console by default", []) { chart in
        #expect(chart.object("Deployment", "liverelay-console") == nil)
        #expect(chart.objects.allSatisfy { $0[path: ["metadata", "name"]]?.stringValue?.contains("console") != true })
    },
    ChartCase("the console", ["console.enabled=true"]) { chart in
        #expect(
            chart.arguments("liverelay-console") == [
                "console", "--in-cluster", "--users-secret=liverelay-system/liverelay-console-users",
                "--http-listen=0.0.0.0:8082", "--log-level=info",
            ]
        )
        let pod = chart.object("Deployment", "liverelay-console")?[path: ["spec", "template", "spec"]]
        #expect(pod?["serviceAccountName"] == "liverelay-console")
        #expect(pod?[path: ["securityContext", "runAsUser"]] == .int(65532))
        #expect(pod?[path: ["securityContext", "runAsNonRoot"]] == true)
        let container = chart.container("liverelay-console")
        #expect(container?[path: ["securityContext", "readOnlyRootFilesystem"]] == true)
        #expect(container?[path: ["securityContext", "allowPrivilegeEscalation"]] == false)
        #expect(container?[path: ["securityContext", "capabilities", "drop"]] == ["ALL"])
        #expect(container?[path: ["livenessProbe", "httpGet", "path"]] == "/healthz")
        #expect(container?[path: ["readinessProbe", "httpGet", "path"]] == "/readyz")
        #expect(container?["ports"] == [["name": "http", "containerPort": 8082, "protocol": "TCP"]])
        let annotations = chart.object("Deployment", "liverelay-console")?[
            path: ["spec", "template", "metadata", "annotations"]
        ]
        #expect(annotations?["prometheus.io/port"] == "8082")
        #expect(annotations?["prometheus.io/path"] == "/metrics")
        let service = chart.object("Service", "liverelay-console")
        #expect(service?[path: ["spec", "type"]] == "ClusterIP")
        #expect(
            service?[path: ["spec", "ports"]] == [
                ["name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"]
            ]
        )
        // The users' Secret: made empty (helm upgrade never resets it) and kept on uninstall.
        let users = chart.object("Secret", "liverelay-console-users")
        #expect(users?[path: ["metadata", "annotations", "helm.sh/resource-policy"]] == "keep")
        #expect(users?["data"] == nil)
        #expect(chart.object("Ingress", "liverelay-console") == nil)
        #expect(chart.object("ServiceAccount", "liverelay-console") != nil)
        // Streams everywhere, their key Secrets without list or watch, the users' Secret by name.
        #expect(
            grants(rules(chart, "ClusterRole", "liverelay-console"), "livestreams")
                == ["get", "list", "watch", "create", "patch", "delete"]
        )
        #expect(grants(rules(chart, "ClusterRole", "liverelay-console"), "secrets").isEmpty)
        #expect(
            grants(rules(chart, "ClusterRole", "liverelay-console-keys"), "secrets") == [
                "get", "create", "patch", "delete",
            ]
        )
        #expect(chart.object("ClusterRoleBinding", "liverelay-console-keys") != nil)
        let usersRole = rules(chart, "Role", "liverelay-console")
        #expect(grants(usersRole, "secrets") == ["get", "update"])
        #expect(usersRole.allSatisfy { $0["resourceNames"] == ["liverelay-console-users"] })
        #expect(chart.notes.contains("port-forward service/liverelay-console 8082:80"))
    },
    ChartCase(
        "the console behind an Ingress with TLS, a trusted proxy, key Secrets in the users' namespaces only",
        [
            "console.enabled=true", "console.ingress.enabled=true", "console.ingress.className=nginx",
            "console.ingress.host=console.example.com", "console.ingress.tls.secretName=console-tls",
            "console.userNamespaces={alice,bob}", "console.trustedProxy.sourceRanges={10.0.0.0/8}",
            "console.usersSecret=people", "console.httpPort=9000",
        ]
    ) { chart in
        let arguments = chart.arguments("liverelay-console")
        #expect(arguments.contains("--secure-cookies"))
        #expect(arguments.contains("--trusted-proxy-from=10.0.0.0/8"))
        #expect(arguments.contains("--trusted-proxy-header=X-Forwarded-User"))
        #expect(chart.flag("liverelay-console", "--users-secret") == "liverelay-system/people")
        let ingress = chart.object("Ingress", "liverelay-console")
        #expect(ingress?[path: ["spec", "ingressClassName"]] == "nginx")
        #expect(ingress?[path: ["spec", "tls"]] == [["hosts": ["console.example.com"], "secretName": "console-tls"]])
        #expect(rules(chart, "Role", "liverelay-console").allSatisfy { $0["resourceNames"] == ["people"] })
        #expect(chart.notes.contains("https://console.example.com/"))
        #expect(chart.object("ClusterRoleBinding", "liverelay-console-keys") == nil)
        let keyBindings = chart.objects("RoleBinding").filter {
            $0[path: ["metadata", "name"]] == "liverelay-console-keys"
        }
        #expect(Set(keyBindings.compactMap { $0[path: ["metadata", "namespace"]]?.stringValue }) == ["alice", "bob"])
    },
    ChartCase(
        "the console for one stream namespace, HTTPS in front",
        ["console.enabled=true", "streamNamespace=streams", "console.secureCookies=true"]
    ) { chart in
        #expect(chart.flag("liverelay-console", "--namespace") == "streams")
        #expect(chart.arguments("liverelay-console").contains("--secure-cookies"))
        #expect(chart.object("ClusterRoleBinding", "liverelay-console") == nil)
        #expect(chart.object("ClusterRoleBinding", "liverelay-console-keys") == nil)
        let bindings = chart.objects("RoleBinding").filter {
            $0[path: ["metadata", "namespace"]] == "streams"
                && $0[path: ["metadata", "name"]]?.stringValue?.hasPrefix("liverelay-console") == true
        }
        #expect(bindings.count == 2)
    },
    ChartCase("another release name", release: "streaming", []) { chart in
        #expect(chart.object("Service", "streaming-liverelay-gateway") != nil)
        #expect(chart.object("Deployment", "streaming-liverelay-operator") != nil)
    },
]

@Suite(
    "Helm chart",
    .enabled(
        if: peerAvailable(chartToolsAvailable),
        "python3 with helm-python and kubernetes-validate is not installed"
    ),
    .timeLimit(.minutes(5))
)
struct ChartRenderTests {
    @Test("renders, lints and validates against the Kubernetes schemas", arguments: chartCases)
    func render(_ option: ChartCase) async throws {
        try await withRenderedChart(option.sets, release: option.release) { chart in
            let validation = try await validateManifests(chart.directory)
            #expect(validation.succeeded, "\(validation.standardOutput)")
            Self.checkConsistency(chart, release: option.release)
            option.check(chart)
        }
    }

    /// What must hold for any values: the operator's flags name the gateway the chart made, and the bindings name
    /// the ServiceAccounts the pods run as.
    static func checkConsistency(_ chart: RenderedChart, release: String) {
        let fullname = release.contains("liverelay") ? release : "\(release)-liverelay"
        let operatorName = "\(fullname)-operator"
        let gatewayName = "\(fullname)-gateway"
        let service = chart.object("Service", gatewayName)
        #expect(service != nil)
        #expect(chart.flag(operatorName, "--gateway-service") == gatewayName)
        #expect(chart.flag(operatorName, "--gateway-namespace") == "liverelay-system")
        let gatewayPod = chart.object("Deployment", gatewayName)?[path: ["spec", "template"]]
        let podLabels = gatewayPod?[path: ["metadata", "labels"]]?.objectValue ?? [:]
        let claimed = chart.arguments(operatorName).filter { $0.hasPrefix("--gateway-pod-label=") }
        #expect(claimed.count == 2)
        for label in claimed {
            let pair = label.dropFirst("--gateway-pod-label=".count).split(separator: "=", maxSplits: 1)
            #expect(podLabels[String(pair[0])]?.stringValue == String(pair[1]), "\(label)")
        }
        for (key, value) in service?[path: ["spec", "selector"]]?.objectValue ?? [:] {
            #expect(podLabels[key] == value, "Service selector \(key)")
        }
        let httpPort = chart.flag(gatewayName, "--http-listen")?.split(separator: ":").last.map(String.init)
        #expect(chart.flag(operatorName, "--gateway-metrics-port") == httpPort)
        let servicePort = service?[path: ["spec", "ports"]]?.arrayValue?.first { $0["name"] == "http" }
        #expect(servicePort?["port"]?.intValue.map(String.init) == httpPort)
        if let role = chart.object("Role", operatorName) {
            let serviceRule = role["rules"]?.arrayValue?.first {
                $0["resources"]?.arrayValue?.contains("services") == true
            }
            #expect(serviceRule?["resourceNames"] == [.string(gatewayName)])
            if let leaseRule = role["rules"]?.arrayValue?.first(where: {
                $0["resourceNames"] != nil && $0 != serviceRule
            }) {
                #expect(leaseRule["resourceNames"] == [.string(chart.flag(operatorName, "--lease-name") ?? "")])
            }
        }
        for binding in chart.objects("ClusterRoleBinding") + chart.objects("RoleBinding") {
            let subject = binding["subjects"]?.arrayValue?.first
            let roleName = binding[path: ["roleRef", "name"]]?.stringValue ?? ""
            let deployment =
                roleName.hasSuffix("-operator")
                ? operatorName : roleName.hasPrefix("\(fullname)-console") ? "\(fullname)-console" : gatewayName
            let account = chart.object("Deployment", deployment)?[path: [
                "spec", "template", "spec", "serviceAccountName",
            ]]
            #expect(subject?["name"] == account, "\(roleName)")
            #expect(subject?["namespace"] == "liverelay-system")
        }
    }

    @Test("the chart's CRD is the repository's crds/livestream.yaml, byte for byte")
    func crdInSync() throws {
        let chart = try Data(contentsOf: URL(fileURLWithPath: Paths.chartCRD))
        let source = try Data(contentsOf: URL(fileURLWithPath: Paths.crd))
        #expect(
            chart == source,
            "charts/liverelay/crds/livestream.yaml differs: cp crds/livestream.yaml charts/liverelay/crds/"
        )
    }

    /// `liverelay operator` run by hand (without the chart) uses the relay image the chart would use.
    @Test("the operator's default relay image is the chart's, at the chart's appVersion")
    func defaultRelayImage() throws {
        let chart = try Yams.load(yaml: String(contentsOfFile: Paths.chart + "/Chart.yaml", encoding: .utf8))
        let values = try Yams.load(yaml: String(contentsOfFile: Paths.chart + "/values.yaml", encoding: .utf8))
        let appVersion = try #require((chart as? [String: Any])?["appVersion"] as? String)
        let relayImage = try #require((values as? [String: Any])?["relayImage"] as? [String: Any])
        let repository = try #require(relayImage["repository"] as? String)
        #expect(appVersion == OperatorConfiguration.version)
        #expect(OperatorConfiguration.defaultRelayImage == "\(repository):\(appVersion)")
    }

    @Test("the operator serves /metrics, /healthz and /readyz on its port, probed, with Prometheus annotations")
    func operatorEndpoints() async throws {
        for (sets, annotated) in [
            ([String](), true), (["operator.httpPort=9090", "operator.prometheusAnnotations=false"], false),
        ] {
            try await withRenderedChart(sets, lint: false) { chart in
                let port: Int64 = annotated ? 8081 : 9090
                #expect(chart.flag("liverelay-operator", "--http-listen") == "0.0.0.0:\(port)")
                let container = try #require(chart.container("liverelay-operator"))
                let http = container["ports"]?.arrayValue?.first { $0["name"] == "http" }
                #expect(http?["containerPort"]?.intValue == port)
                #expect(container[path: ["livenessProbe", "httpGet", "path"]] == "/healthz")
                #expect(container[path: ["livenessProbe", "httpGet", "port"]] == "http")
                #expect(container[path: ["readinessProbe", "httpGet", "path"]] == "/readyz")
                #expect(container[path: ["readinessProbe", "httpGet", "port"]] == "http")
                let annotations = chart.object("Deployment", "liverelay-operator")?[
                    path: ["spec", "template", "metadata", "annotations"]
                ]
                #expect((annotations?["prometheus.io/port"] == .string("\(port)")) == annotated)
                #expect((annotations?["prometheus.io/scrape"] == "true") == annotated)
            }
        }
    }

    @Test(
        "values that cannot work fail the render with a message that names them",
        arguments: [
            // The wrong kind: refused by values.schema.json, in Helm's words.
            ("gateway.service.type=Ingress", "gateway/service/type"),
            // The PROXY protocol without the gateway pods' ranges: refused by the template, saying what is missing.
            ("gateway.proxyProtocol.enabled=true", "gateway.proxyProtocol.trustedRanges"),
            // The console's Ingress without a host.
            ("console.ingress.enabled=true", "console.ingress.host"),
        ]
    )
    func invalidValues(set: String, message: String) async throws {
        try await withTemporaryDirectory("chart-bad") { directory in
            let exit = try await run(
                python3Path ?? "python3",
                [Paths.renderer, "--output", directory, "--set", set, Paths.chart]
            )
            #expect(!exit.succeeded)
            #expect(exit.standardError.contains(message), "\(exit.standardError)")
        }
    }
}
