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

/// One kind of resource the server serves: what discovery lists and what the generic store keys objects by.
struct ResourceType: Sendable, Hashable {
    var group: String
    var version: String
    var plural: String
    var singular: String
    var kind: String
    var namespaced: Bool
    var shortNames: [String] = []
    var categories: [String] = []
    var hasStatus: Bool = false
    /// JSON paths (as key lists) of the scale subresource, when the resource has one.
    var scale: ScalePaths?
    /// The version's `openAPIV3Schema`, for custom resources.
    var schema: JSON?
    /// `additionalPrinterColumns` of a custom resource's version, for the Table format.
    var printerColumns: [JSON] = []

    struct ScalePaths: Sendable, Hashable {
        var specReplicas: [String]
        var statusReplicas: [String]
        var labelSelector: [String]?
    }

    /// `apps/v1`, or `v1` for the core group.
    var groupVersion: String { self.group.isEmpty ? self.version : "\(self.group)/\(self.version)" }

    /// `deployments.apps`, the form used in error messages.
    var qualifiedName: String { self.group.isEmpty ? self.plural : "\(self.plural).\(self.group)" }

    /// `Deployment.apps`, the form used in "is invalid" messages.
    var qualifiedKind: String { self.group.isEmpty ? self.kind : "\(self.kind).\(self.group)" }

    /// What identifies the stored objects: objects of one group and plural are shared by all its versions.
    var storageKey: String { "\(self.group)/\(self.plural)" }

    /// The `APIResource` entries discovery lists for this resource and its subresources.
    var discoveryEntries: [JSON] {
        var main: JSON = [
            "name": .string(self.plural),
            "singularName": .string(self.singular),
            "namespaced": .bool(self.namespaced),
            "kind": .string(self.kind),
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "storageVersionHash": "",
        ]
        if !self.shortNames.isEmpty { main["shortNames"] = .array(self.shortNames.map { .string($0) }) }
        if !self.categories.isEmpty { main["categories"] = .array(self.categories.map { .string($0) }) }
        var entries = [main]
        if self.hasStatus {
            entries.append([
                "name": .string("\(self.plural)/status"), "singularName": "", "namespaced": .bool(self.namespaced),
                "kind": .string(self.kind), "verbs": ["get", "patch", "update"],
            ])
        }
        if self.scale != nil {
            entries.append([
                "name": .string("\(self.plural)/scale"), "singularName": "", "namespaced": .bool(self.namespaced),
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"],
            ])
        }
        return entries
    }
}

extension ResourceType {
    private static func core(
        _ plural: String,
        _ kind: String,
        namespaced: Bool = true,
        short: [String] = [],
        status: Bool = false
    ) -> ResourceType {
        ResourceType(
            group: "",
            version: "v1",
            plural: plural,
            singular: kind.lowercased(),
            kind: kind,
            namespaced: namespaced,
            shortNames: short,
            hasStatus: status
        )
    }

    private static func grouped(
        _ group: String,
        _ version: String,
        _ plural: String,
        _ kind: String,
        namespaced: Bool = true,
        short: [String] = [],
        status: Bool = false
    ) -> ResourceType {
        ResourceType(
            group: group,
            version: version,
            plural: plural,
            singular: kind.lowercased(),
            kind: kind,
            namespaced: namespaced,
            shortNames: short,
            hasStatus: status
        )
    }

    /// The built-in resources an operator of this project touches. Their objects are stored without validation.
    static let builtIn: [ResourceType] = {
        var deployments = grouped("apps", "v1", "deployments", "Deployment", short: ["deploy"], status: true)
        deployments.scale = ScalePaths(
            specReplicas: ["spec", "replicas"],
            statusReplicas: ["status", "replicas"],
            labelSelector: nil
        )
        var statefulSets = grouped("apps", "v1", "statefulsets", "StatefulSet", short: ["sts"], status: true)
        statefulSets.scale = deployments.scale
        return [
            core("namespaces", "Namespace", namespaced: false, short: ["ns"], status: true),
            core("pods", "Pod", short: ["po"], status: true),
            core("services", "Service", short: ["svc"], status: true),
            core("secrets", "Secret"),
            core("configmaps", "ConfigMap", short: ["cm"]),
            core("events", "Event", short: ["ev"]),
            core("serviceaccounts", "ServiceAccount", short: ["sa"]),
            core("endpoints", "Endpoints", short: ["ep"]),
            core("nodes", "Node", namespaced: false, short: ["no"], status: true),
            deployments,
            statefulSets,
            grouped("apps", "v1", "replicasets", "ReplicaSet", short: ["rs"], status: true),
            grouped("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
            grouped("events.k8s.io", "v1", "events", "Event", short: ["ev"]),
            grouped("networking.k8s.io", "v1", "ingresses", "Ingress", short: ["ing"], status: true),
            grouped("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short: ["netpol"]),
            grouped("coordination.k8s.io", "v1", "leases", "Lease"),
            grouped("rbac.authorization.k8s.io", "v1", "roles", "Role"),
            grouped("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
            grouped("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced: false),
            grouped("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced: false),
            grouped(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                namespaced: false,
                short: ["crd", "crds"],
                status: true
            ),
            grouped("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short: ["pdb"], status: true),
        ]
    }()

    /// The resources a `CustomResourceDefinition` object defines, one per served version.
    static func fromCRD(_ crd: JSON) throws(APIError) -> [ResourceType] {
        guard let spec = crd["spec"], let group = spec["group"]?.stringValue,
            let names = spec["names"], let plural = names["plural"]?.stringValue,
            let kind = names["kind"]?.stringValue,
            let versions = spec["versions"]?.arrayValue, !versions.isEmpty
        else {
            throw APIError.badRequest(
                "CustomResourceDefinition needs spec.group, spec.names.plural/kind and spec.versions"
            )
        }
        let namespaced = spec["scope"]?.stringValue != "Cluster"
        return versions.compactMap { version -> ResourceType? in
            guard let name = version["name"]?.stringValue, version["served"]?.boolValue != false else { return nil }
            var type = ResourceType(
                group: group,
                version: name,
                plural: plural,
                singular: names["singular"]?.stringValue ?? kind.lowercased(),
                kind: kind,
                namespaced: namespaced,
                shortNames: names["shortNames"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                categories: names["categories"]?.arrayValue?.compactMap(\.stringValue) ?? []
            )
            let subresources = version["subresources"]
            type.hasStatus = subresources?["status"] != nil
            if let scale = subresources?["scale"] {
                type.scale = ScalePaths(
                    specReplicas: jsonPath(scale["specReplicasPath"]?.stringValue ?? ".spec.replicas"),
                    statusReplicas: jsonPath(scale["statusReplicasPath"]?.stringValue ?? ".status.replicas"),
                    labelSelector: scale["labelSelectorPath"]?.stringValue.map(jsonPath)
                )
            }
            type.schema = version["schema"]?["openAPIV3Schema"]
            type.printerColumns = version["additionalPrinterColumns"]?.arrayValue ?? []
            return type
        }
    }
}

/// Splits a simple JSON path such as `.spec.replicas` into keys.
func jsonPath(_ path: String) -> [String] {
    path.split(separator: ".").map(String.init)
}
