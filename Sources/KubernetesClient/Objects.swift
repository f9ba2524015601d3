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

/// The object types the client works with are anything `Codable` with Kubernetes `metadata`.
///
/// The operator's own resources conform with their typed spec and status; everything else can use the generic
/// ``KubernetesObject``, which keeps the fields it does not know as ``JSONValue``.
public protocol KubernetesAPIObject: Codable, Sendable {
    var metadata: ObjectMeta { get set }
}

/// `metadata` of a Kubernetes object (`meta/v1.ObjectMeta`), with the fields controllers use.
///
/// Fields not listed here (`managedFields`, `selfLink`) are dropped on decoding; an update (PUT) that omits
/// `managedFields` leaves them unchanged on the server.
public struct ObjectMeta: Codable, Hashable, Sendable {
    public var name: String?
    public var generateName: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int64?
    public var creationTimestamp: String?
    public var deletionTimestamp: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var ownerReferences: [OwnerReference]?
    public var finalizers: [String]?

    public init(
        name: String? = nil,
        namespace: String? = nil,
        labels: [String: String]? = nil,
        annotations: [String: String]? = nil,
        ownerReferences: [OwnerReference]? = nil,
        finalizers: [String]? = nil,
        resourceVersion: String? = nil
    ) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
        self.ownerReferences = ownerReferences
        self.finalizers = finalizers
        self.resourceVersion = resourceVersion
    }
}

/// `meta/v1.OwnerReference`: ties a child to its owner for garbage collection and for mapping child events back to
/// the owner's work-queue key.
public struct OwnerReference: Codable, Hashable, Sendable {
    public var apiVersion: String
    public var kind: String
    public var name: String
    public var uid: String
    public var controller: Bool?
    public var blockOwnerDeletion: Bool?

    public init(
        apiVersion: String,
        kind: String,
        name: String,
        uid: String,
        controller: Bool? = nil,
        blockOwnerDeletion: Bool? = nil
    ) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.uid = uid
        self.controller = controller
        self.blockOwnerDeletion = blockOwnerDeletion
    }
}

/// Any Kubernetes object: typed `metadata`, everything else (`spec`, `status`, `data`, ...) as JSON.
public struct KubernetesObject: KubernetesAPIObject, Hashable {
    public var apiVersion: String?
    public var kind: String?
    public var metadata: ObjectMeta
    /// Every top-level field other than `apiVersion`, `kind` and `metadata`.
    public var fields: [String: JSONValue]

    public init(apiVersion: String?, kind: String?, metadata: ObjectMeta, fields: [String: JSONValue] = [:]) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.metadata = metadata
        self.fields = fields
    }

    public subscript(field: String) -> JSONValue? {
        get { self.fields[field] }
        set { self.fields[field] = newValue }
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { self.stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        self.apiVersion = try container.decodeIfPresent(String.self, forKey: Key("apiVersion"))
        self.kind = try container.decodeIfPresent(String.self, forKey: Key("kind"))
        self.metadata = try container.decodeIfPresent(ObjectMeta.self, forKey: Key("metadata")) ?? ObjectMeta()
        var fields: [String: JSONValue] = [:]
        for key in container.allKeys where !["apiVersion", "kind", "metadata"].contains(key.stringValue) {
            fields[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
        }
        self.fields = fields
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encodeIfPresent(self.apiVersion, forKey: Key("apiVersion"))
        try container.encodeIfPresent(self.kind, forKey: Key("kind"))
        try container.encode(self.metadata, forKey: Key("metadata"))
        for (key, value) in self.fields {
            try container.encode(value, forKey: Key(key))
        }
    }
}

/// `meta/v1.Status`: what the API server sends with every error, and in a watch `ERROR` event.
public struct Status: Codable, Hashable, Sendable {
    public var kind: String?
    public var apiVersion: String?
    /// `Success` or `Failure`.
    public var status: String?
    public var message: String?
    /// A machine-readable reason: `NotFound`, `AlreadyExists`, `Conflict`, `Expired`, `Gone`, `TooManyRequests`...
    public var reason: String?
    public var code: Int?
    public var details: JSONValue?

    public init(status: String? = "Failure", message: String? = nil, reason: String? = nil, code: Int? = nil) {
        self.kind = "Status"
        self.apiVersion = "v1"
        self.status = status
        self.message = message
        self.reason = reason
        self.code = code
    }
}

/// `meta/v1.ListMeta`.
public struct ListMeta: Codable, Hashable, Sendable {
    public var resourceVersion: String?
    /// The token for the next page, when the list was limited.
    public var `continue`: String?
    public var remainingItemCount: Int64?
}

/// A list response: items plus the `resourceVersion` to start a watch from.
public struct KubernetesList<Item: Codable & Sendable>: Codable, Sendable {
    public var apiVersion: String?
    public var kind: String?
    public var metadata: ListMeta
    public var items: [Item]

    public init(metadata: ListMeta, items: [Item]) {
        self.metadata = metadata
        self.items = items
    }

    private enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, items }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.apiVersion = try container.decodeIfPresent(String.self, forKey: .apiVersion)
        self.kind = try container.decodeIfPresent(String.self, forKey: .kind)
        self.metadata = try container.decodeIfPresent(ListMeta.self, forKey: .metadata) ?? ListMeta()
        // The API server sends `"items": null` for an empty list of some resources.
        self.items = try container.decodeIfPresent([Item].self, forKey: .items) ?? []
    }
}

/// One event of a watch stream (`meta/v1.WatchEvent`), with the object already decoded.
public enum WatchEvent<Object: KubernetesAPIObject>: Sendable {
    case added(Object)
    case modified(Object)
    case deleted(Object)
    /// A progress notification: nothing changed, but the collection is at least at this `resourceVersion`.
    case bookmark(resourceVersion: String)
    /// The server ended the watch with a `Status`; code 410 means the caller must relist.
    case error(Status)

    /// The object's or the bookmark's `resourceVersion`.
    public var resourceVersion: String? {
        switch self {
        case .added(let object), .modified(let object), .deleted(let object): return object.metadata.resourceVersion
        case .bookmark(let resourceVersion): return resourceVersion
        case .error: return nil
        }
    }
}

extension WatchEvent: Decodable {
    private enum CodingKeys: String, CodingKey { case type, object }

    private struct Bookmark: Decodable {
        struct Metadata: Decodable { var resourceVersion: String? }
        var metadata: Metadata
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "ADDED": self = .added(try container.decode(Object.self, forKey: .object))
        case "MODIFIED": self = .modified(try container.decode(Object.self, forKey: .object))
        case "DELETED": self = .deleted(try container.decode(Object.self, forKey: .object))
        case "BOOKMARK":
            let bookmark = try container.decode(Bookmark.self, forKey: .object)
            self = .bookmark(resourceVersion: bookmark.metadata.resourceVersion ?? "")
        case "ERROR": self = .error(try container.decode(Status.self, forKey: .object))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .type,
                in: container,
                debugDescription: "unknown watch event type \(type)"
            )
        }
    }
}

/// `coordination.k8s.io/v1` Lease, used for leader election.
public struct Lease: KubernetesAPIObject, Hashable {
    public var apiVersion: String? = "coordination.k8s.io/v1"
    public var kind: String? = "Lease"
    public var metadata: ObjectMeta
    public var spec: Spec

    public struct Spec: Codable, Hashable, Sendable {
        public var holderIdentity: String?
        public var leaseDurationSeconds: Int?
        /// RFC 3339 with microseconds (`MicroTime`).
        public var acquireTime: String?
        public var renewTime: String?
        public var leaseTransitions: Int?

        public init(
            holderIdentity: String? = nil,
            leaseDurationSeconds: Int? = nil,
            acquireTime: String? = nil,
            renewTime: String? = nil,
            leaseTransitions: Int? = nil
        ) {
            self.holderIdentity = holderIdentity
            self.leaseDurationSeconds = leaseDurationSeconds
            self.acquireTime = acquireTime
            self.renewTime = renewTime
            self.leaseTransitions = leaseTransitions
        }
    }

    public init(metadata: ObjectMeta, spec: Spec = Spec()) {
        self.metadata = metadata
        self.spec = spec
    }

    private enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, spec }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.apiVersion = try container.decodeIfPresent(String.self, forKey: .apiVersion)
        self.kind = try container.decodeIfPresent(String.self, forKey: .kind)
        self.metadata = try container.decode(ObjectMeta.self, forKey: .metadata)
        self.spec = try container.decodeIfPresent(Spec.self, forKey: .spec) ?? Spec()
    }
}

/// `autoscaling/v1` Scale, the scale subresource.
public struct Scale: KubernetesAPIObject, Hashable {
    public var apiVersion: String? = "autoscaling/v1"
    public var kind: String? = "Scale"
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: ScaleStatus?

    public struct Spec: Codable, Hashable, Sendable {
        public var replicas: Int?
        public init(replicas: Int? = nil) { self.replicas = replicas }
    }

    public struct ScaleStatus: Codable, Hashable, Sendable {
        public var replicas: Int?
        public var selector: String?
    }

    public init(metadata: ObjectMeta, replicas: Int) {
        self.metadata = metadata
        self.spec = Spec(replicas: replicas)
    }
}

/// Where a kind of object lives in the API: `/api/v1/...` for the core group, `/apis/GROUP/VERSION/...` otherwise.
public struct KubernetesResource: Hashable, Sendable, CustomStringConvertible {
    /// The API group; empty for the core group (`v1` Pods, ConfigMaps, Secrets, Services).
    public var group: String
    public var version: String
    /// The plural resource name used in paths: `leases`, `deployments`, `livestreams`.
    public var plural: String
    public var kind: String
    public var namespaced: Bool

    public init(group: String, version: String, plural: String, kind: String, namespaced: Bool = true) {
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
    }

    /// `group/version`, or just `version` for the core group, as written in `apiVersion`.
    public var apiVersion: String { self.group.isEmpty ? self.version : "\(self.group)/\(self.version)" }

    public var description: String { "\(self.plural).\(self.group.isEmpty ? "core" : self.group)/\(self.version)" }

    /// The request path for a collection (`name == nil`) or one object, optionally a subresource of it.
    ///
    /// A `nil` namespace on a namespaced resource addresses all namespaces (list and watch only).
    public func path(namespace: String?, name: String? = nil, subresource: String? = nil) -> String {
        var path = self.group.isEmpty ? "/api/\(self.version)" : "/apis/\(self.group)/\(self.version)"
        if self.namespaced, let namespace {
            path += "/namespaces/\(Self.escape(namespace))"
        }
        path += "/\(self.plural)"
        if let name {
            path += "/\(Self.escape(name))"
            if let subresource {
                path += "/\(subresource)"
            }
        }
        return path
    }

    private static func escape(_ segment: String) -> String {
        // Kubernetes names are DNS labels or subdomains; escape anything else rather than build a wrong path.
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? segment
    }

    public static let leases = KubernetesResource(
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease"
    )
    public static let configMaps = KubernetesResource(group: "", version: "v1", plural: "configmaps", kind: "ConfigMap")
    public static let secrets = KubernetesResource(group: "", version: "v1", plural: "secrets", kind: "Secret")
    public static let services = KubernetesResource(group: "", version: "v1", plural: "services", kind: "Service")
    public static let pods = KubernetesResource(group: "", version: "v1", plural: "pods", kind: "Pod")
    public static let namespaces = KubernetesResource(
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false
    )
    public static let deployments = KubernetesResource(
        group: "apps",
        version: "v1",
        plural: "deployments",
        kind: "Deployment"
    )
}
