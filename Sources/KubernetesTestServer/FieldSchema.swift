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

/// What field management needs to know of a type's shape: which lists are associative (merged item by item, by key
/// fields or by value) and which maps are atomic (owned and replaced whole).
///
/// For custom resources it reads the CRD's structural schema: `x-kubernetes-list-type` (`atomic`, the default,
/// `set` or `map` with `x-kubernetes-list-map-keys`) and `x-kubernetes-map-type`. For built-in kinds it carries the
/// part of Kubernetes' OpenAPI that the objects of this project touch (see ``FieldSchema/builtIn(_:)``). Everything
/// else is "deduced", as structured-merge-diff treats a value without a schema: maps are merged key by key and lists
/// are atomic.
struct FieldSchema: Sendable {
    enum ListType: Sendable, Equatable {
        /// Owned and replaced as one value.
        case atomic
        /// Items are scalars, each owned on its own (`v:` keys).
        case set
        /// Items are objects identified by these key fields (`k:` keys).
        case map([String])
    }

    /// The OpenAPI v3 node, or `nil` when nothing is known of the value.
    var node: JSON?
    /// Whether `metadata` here is an `ObjectMeta` (the root of an object, or an embedded resource).
    var isResource = false

    static let deduced = FieldSchema(node: nil)

    func field(_ name: String) -> FieldSchema {
        let embedded = self.isResource || self.node?["x-kubernetes-embedded-resource"]?.boolValue == true
        if embedded, name == "metadata" { return FieldSchema(node: Self.objectMeta) }
        if let property = self.node?["properties"]?[name] { return Self.child(property) }
        if let additional = self.node?["additionalProperties"], additional.objectValue != nil {
            return Self.child(additional)
        }
        return .deduced
    }

    var items: FieldSchema {
        guard let items = self.node?["items"] else { return .deduced }
        return Self.child(items)
    }

    private static func child(_ node: JSON) -> FieldSchema {
        FieldSchema(node: node, isResource: node["x-kubernetes-embedded-resource"]?.boolValue == true)
    }

    var listType: ListType {
        switch self.node?["x-kubernetes-list-type"]?.stringValue {
        case "set": return .set
        case "map":
            return .map(self.node?["x-kubernetes-list-map-keys"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        default: return .atomic
        }
    }

    /// A map owned as one value: `x-kubernetes-map-type: atomic`, or an int-or-string (a scalar).
    var isAtomicMap: Bool {
        self.node?["x-kubernetes-map-type"]?.stringValue == "atomic"
            || self.node?["x-kubernetes-int-or-string"]?.boolValue == true
    }

    /// The path element of one item of this list: by its key fields (a missing key field takes the schema's
    /// default, as structured-merge-diff does for `protocol: TCP`), by its value for a set, else by its index.
    func element(of item: JSON, at index: Int) -> PathElement {
        switch self.listType {
        case .atomic:
            return .index(index)
        case .set:
            return .value(item)
        case .map(let keys):
            var fields: [String: JSON] = [:]
            for key in keys {
                if let value = item[key] ?? self.items.node?["properties"]?[key]?["default"] { fields[key] = value }
            }
            return .key(fields)
        }
    }

    // MARK: Built-in kinds

    /// The schema of a type: its CRD's, or the built-in one.
    static func of(_ type: ResourceType) -> FieldSchema {
        FieldSchema(node: type.schema ?? Self.builtIn(type.storageKey), isResource: true)
    }

    private static func listMap(_ keys: [String], items: JSON = [:]) -> JSON {
        [
            "type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": .array(keys.map { .string($0) }),
            "items": items,
        ]
    }

    /// `ObjectMeta`: finalizers are a set, ownerReferences are keyed by uid, labels and annotations are maps.
    static let objectMeta: JSON = [
        "type": "object",
        "properties": [
            "finalizers": ["type": "array", "x-kubernetes-list-type": "set"],
            "ownerReferences": listMap(["uid"]),
        ],
    ]

    private static let tcpProtocol: JSON = ["properties": ["protocol": ["type": "string", "default": "TCP"]]]

    private static let container: JSON = [
        "properties": [
            "ports": listMap(["containerPort", "protocol"], items: tcpProtocol),
            "env": listMap(["name"]),
            "volumeMounts": listMap(["mountPath"]),
            "volumeDevices": listMap(["devicePath"]),
        ]
    ]

    private static let podSpec: JSON = [
        "properties": [
            "containers": listMap(["name"], items: container),
            "initContainers": listMap(["name"], items: container),
            "ephemeralContainers": listMap(["name"], items: container),
            "volumes": listMap(["name"]),
            "imagePullSecrets": listMap(["name"]),
            "hostAliases": listMap(["ip"]),
            "topologySpreadConstraints": listMap(["topologyKey", "whenUnsatisfiable"]),
        ]
    ]

    private static let conditions: JSON = ["properties": ["conditions": listMap(["type"])]]
    private static let labelSelector: JSON = ["type": "object", "x-kubernetes-map-type": "atomic"]

    /// The associative lists and atomic maps of the built-in kinds this project writes, from Kubernetes' OpenAPI
    /// (`+listType=map`, `+patchMergeKey` with `+patchStrategy=merge`, `+structType=atomic`). Lists not named here
    /// (tolerations, Ingress rules, RBAC rules, NetworkPolicy peers, ...) are atomic, as are the lists of kinds not
    /// named here at all; that is a simplification where the real schema merges by key.
    static func builtIn(_ storageKey: String) -> JSON {
        let workload: JSON = [
            "properties": [
                "spec": [
                    "properties": [
                        "selector": labelSelector,
                        "template": ["properties": ["metadata": objectMeta, "spec": podSpec]],
                    ]
                ],
                "status": conditions,
            ]
        ]
        switch storageKey {
        case "apps/deployments", "apps/replicasets", "apps/statefulsets", "apps/daemonsets":
            return workload
        case "/pods":
            return ["properties": ["spec": podSpec, "status": conditions]]
        case "/services":
            return [
                "properties": [
                    "spec": ["properties": ["ports": listMap(["port", "protocol"], items: tcpProtocol)]],
                    "status": conditions,
                ]
            ]
        case "policy/poddisruptionbudgets":
            return ["properties": ["spec": ["properties": ["selector": labelSelector]], "status": conditions]]
        case "networking.k8s.io/networkpolicies":
            return ["properties": ["spec": ["properties": ["podSelector": labelSelector]]]]
        default:
            return [:]
        }
    }
}
