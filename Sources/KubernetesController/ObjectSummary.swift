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
import Synchronization

/// What a cache keeps of an object that its controller made and only compares with what it wants: the metadata that
/// ties it to its owner and orders writes, the replica counts a controller reads, and a 64-bit digest of each field
/// value in place of the values.
///
/// A decoded object is a tree of dictionaries, arrays and strings, several kilobytes for a Deployment; a controller
/// that owns thousands of children keeps all of them. The comparison a controller makes needs much less: whether
/// every field it set still has the value it set (``contains(_:)``). So the summary keeps one digest per node of the
/// object (every object, every array with its length, every scalar with its value, each at its path), sorted, and a
/// desired object is in the observed one when each of its own nodes' digests is. A field edited by hand, removed, or
/// a list made shorter or longer changes a digest, and is seen. It is controller-runtime's metadata-only cache with
/// the comparison kept, and it is decoded straight from the API server's JSON (a list page or a watch event) without
/// building the object's tree first.
///
/// The digests are SipHash (`Hasher`), seeded per process: they are compared in the process that made them and
/// never leave it. Two different nodes share a digest with a probability of about 2⁻⁶⁴ per pair compared.
///
/// Kept as they are: of `metadata` what ties the object to its owner and orders writes (`name`, `namespace`,
/// `resourceVersion`, `generation`, `ownerReferences`, `deletionTimestamp`, `finalizers`; `labels` and `annotations`
/// are digested, under `metadata`), and of `status` only its integer members. `status` is not digested: no
/// controller desires a status. `apiVersion` and `kind` are left out (the cache is of one resource).
///
/// A summary is one reference to an immutable box: a cache's dictionary holds eight bytes per object beside its key,
/// and the box what the object needs, no more.
public struct ObjectSummary: KubernetesAPIObject, Hashable {
    /// What a summary holds.
    private struct Fields: Hashable, Sendable {
        var name: String?
        var namespace: String?
        var resourceVersion: String?
        var generation: Int64?
        var deletionTimestamp: String?
        var finalizers: [String]?
        var ownerReferences: [OwnerReference]?
        var replicas: Int64?
        var statusCounts: [String: Int64]
        /// The digests of every node but `status`, sorted, without duplicates.
        var digests: [UInt64]

        init(metadata: ObjectMeta, replicas: Int64?, statusCounts: [String: Int64], digests: [UInt64]) {
            self.name = metadata.name
            self.namespace = metadata.namespace
            self.resourceVersion = metadata.resourceVersion
            self.generation = metadata.generation
            self.deletionTimestamp = metadata.deletionTimestamp
            self.finalizers = metadata.finalizers
            self.ownerReferences = metadata.ownerReferences?.map(Intern.shared.reference)
            self.replicas = replicas
            self.statusCounts = statusCounts
            self.digests = digests
        }

        var metadata: ObjectMeta {
            var metadata = ObjectMeta(
                name: self.name,
                namespace: self.namespace,
                ownerReferences: self.ownerReferences,
                finalizers: self.finalizers,
                resourceVersion: self.resourceVersion
            )
            metadata.generation = self.generation
            metadata.deletionTimestamp = self.deletionTimestamp
            return metadata
        }
    }

    private final class Box: Sendable {
        let fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var box: Box

    /// The object's metadata: `name`, `namespace`, `resourceVersion`, `generation`, `deletionTimestamp`,
    /// `finalizers` and `ownerReferences` (no `labels` or `annotations`: those are digested).
    public var metadata: ObjectMeta {
        get { self.box.fields.metadata }
        set {
            let fields = self.box.fields
            self.box = Box(
                Fields(
                    metadata: newValue,
                    replicas: fields.replicas,
                    statusCounts: fields.statusCounts,
                    digests: fields.digests
                )
            )
        }
    }

    /// `spec.replicas`, when the object has it.
    public var replicas: Int64? { self.box.fields.replicas }
    /// The integer members of `status` (`readyReplicas`, `observedGeneration`, ...).
    public var statusCounts: [String: Int64] { self.box.fields.statusCounts }
    private var digests: [UInt64] { self.box.fields.digests }

    public static func == (lhs: ObjectSummary, rhs: ObjectSummary) -> Bool {
        lhs.box === rhs.box || lhs.box.fields == rhs.box.fields
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.box.fields)
    }

    private init(metadata: ObjectMeta, replicas: Int64?, statusCounts: [String: Int64], digests: [UInt64]) {
        self.box = Box(Fields(metadata: metadata, replicas: replicas, statusCounts: statusCounts, digests: digests))
    }

    /// The summary of a whole object (one the API server answered a write with, say).
    public init(_ object: KubernetesObject) {
        var digests: [UInt64] = []
        let metadata = object.metadata
        Self.digestLabelsAndAnnotations(metadata, into: &digests)
        var counts: [String: Int64] = [:]
        for (name, value) in object.fields {
            if name == "status" {
                if case .object(let members) = value {
                    for (member, value) in members {
                        if case .int(let count) = value { counts[member] = count }
                    }
                }
                continue
            }
            FieldDigest.walk(value, at: FieldDigest.root.member(name), into: &digests)
        }
        self.init(
            metadata: metadata,
            replicas: object["spec"]?["replicas"]?.intValue,
            statusCounts: counts,
            digests: FieldDigest.sorted(digests)
        )
    }

    /// Whether the object holds `value` at `path` (member names from the top, as in `["spec", "replicas"]`):
    /// scalars by value (numbers by value whether integer or not), objects as objects, arrays with every element.
    public func contains(_ value: JSONValue, at path: [String]) -> Bool {
        var at = FieldDigest.root
        for name in path { at = at.member(name) }
        var wanted: [UInt64] = []
        FieldDigest.walk(value, at: at, into: &wanted)
        return wanted.allSatisfy(self.has)
    }

    /// Whether every field of `desired` (a whole object, as applied) is in the object with the same value: its
    /// `metadata`'s `name` and `namespace`, `labels` and `annotations` entries, `ownerReferences` (each present,
    /// in any order); every other member but `apiVersion` and `kind` by its nodes' digests. A `metadata` member
    /// other than those is never seen as present.
    public func contains(_ desired: JSONValue) -> Bool {
        guard case .object(let members) = desired else { return false }
        for (name, value) in members {
            switch name {
            case "apiVersion", "kind":
                continue
            case "metadata":
                guard self.containsMetadata(value) else { return false }
            default:
                guard self.contains(value, at: [name]) else { return false }
            }
        }
        return true
    }

    private func containsMetadata(_ desired: JSONValue) -> Bool {
        guard case .object(let members) = desired else { return false }
        for (name, value) in members {
            switch name {
            case "name":
                guard self.metadata.name == value.stringValue else { return false }
            case "namespace":
                guard self.metadata.namespace == value.stringValue else { return false }
            case "labels", "annotations":
                guard self.contains(value, at: ["metadata", name]) else { return false }
            case "ownerReferences":
                guard case .array(let references) = value else { return false }
                for reference in references {
                    let found = (self.metadata.ownerReferences ?? []).contains { owner in
                        owner.uid == reference["uid"]?.stringValue && owner.kind == reference["kind"]?.stringValue
                            && owner.name == reference["name"]?.stringValue
                            && owner.apiVersion == reference["apiVersion"]?.stringValue
                            && owner.controller == reference["controller"]?.boolValue
                            && owner.blockOwnerDeletion == reference["blockOwnerDeletion"]?.boolValue
                    }
                    guard found else { return false }
                }
            default:
                // A metadata field kept by no summary: never seen as present.
                return false
            }
        }
        return true
    }

    /// How many digests the summary holds (its size is eight bytes each).
    public var digestCount: Int { self.digests.count }

    private func has(_ digest: UInt64) -> Bool {
        let digests = self.digests
        var low = 0
        var high = digests.count
        while low < high {
            let middle = (low + high) / 2
            if digests[middle] < digest {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low < digests.count && digests[low] == digest
    }

    /// Appends the digests of `labels` and `annotations`.
    private static func digestLabelsAndAnnotations(_ metadata: ObjectMeta, into digests: inout [UInt64]) {
        let at = FieldDigest.root.member("metadata")
        for (name, entries) in [("labels", metadata.labels), ("annotations", metadata.annotations)] {
            guard let entries else { continue }
            let map = at.member(name)
            digests.append(map.digest(.object))
            for (key, value) in entries {
                digests.append(map.member(key).digest(.string(value)))
            }
        }
    }

    // MARK: Codable

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { self.stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// `spec.replicas` alone.
    private struct Replicas: Decodable {
        var replicas: Int64?
    }

    /// Decodes the summary straight from an object's JSON: each member but `metadata` and `status` is walked for
    /// its digests, without a tree of it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        var digests: [UInt64] = []
        var metadata = ObjectMeta()
        var replicas: Int64?
        var counts: [String: Int64] = [:]
        for key in container.allKeys {
            switch key.stringValue {
            case "apiVersion", "kind":
                continue
            case "metadata":
                metadata = try container.decode(ObjectMeta.self, forKey: key)
            case "status":
                if case .object(let members)? = try? container.decode(JSONValue.self, forKey: key) {
                    for (member, value) in members {
                        if case .int(let count) = value { counts[member] = count }
                    }
                }
            default:
                if key.stringValue == "spec" {
                    replicas = (try? container.decode(Replicas.self, forKey: key))?.replicas
                }
                try FieldDigest.walk(
                    container.superDecoder(forKey: key),
                    at: FieldDigest.root.member(key.stringValue),
                    into: &digests
                )
            }
        }
        Self.digestLabelsAndAnnotations(metadata, into: &digests)
        self.init(metadata: metadata, replicas: replicas, statusCounts: counts, digests: FieldDigest.sorted(digests))
    }

    /// Encodes what can be: the metadata, `spec.replicas` and the status counts (digests have no JSON form).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(self.metadata, forKey: Key("metadata"))
        if let replicas = self.replicas {
            var spec = container.nestedContainer(keyedBy: Key.self, forKey: Key("spec"))
            try spec.encode(replicas, forKey: Key("replicas"))
        }
        if !self.statusCounts.isEmpty {
            try container.encode(self.statusCounts, forKey: Key("status"))
        }
    }
}

/// One copy of the strings that recur in every cached object (the `apiVersion` and `kind` of owner references), so
/// ten thousand children do not hold ten thousand copies each. At most ``limit`` strings: past that, strings are
/// kept as they come (a peer controls them).
final class Intern: Sendable {
    static let shared = Intern()
    static let limit = 256

    private let strings = Mutex(Set<String>())

    func callAsFunction(_ string: String) -> String {
        self.strings.withLock { strings in
            if let known = strings.firstIndex(of: string) { return strings[known] }
            if strings.count < Self.limit { strings.insert(string) }
            return string
        }
    }

    func reference(_ reference: OwnerReference) -> OwnerReference {
        var reference = reference
        reference.apiVersion = self(reference.apiVersion)
        reference.kind = self(reference.kind)
        return reference
    }
}

/// The digest of one node of an object at its path: the path's members and indices, then the node's kind and
/// value, fed to a `Hasher` (copied at each step, so a path's prefix is hashed once).
struct FieldDigest {
    enum Node {
        case null
        case bool(Bool)
        case int(Int64)
        case double(Double)
        case string(String)
        case object
        case array(count: Int)
    }

    private var hasher: Hasher

    static var root: FieldDigest { FieldDigest(hasher: Hasher()) }

    func member(_ name: String) -> FieldDigest {
        var next = self
        next.hasher.combine(UInt8(0))
        next.hasher.combine(name)
        return next
    }

    func element(_ index: Int) -> FieldDigest {
        var next = self
        next.hasher.combine(UInt8(1))
        next.hasher.combine(index)
        return next
    }

    func digest(_ node: Node) -> UInt64 {
        var hasher = self.hasher
        switch node {
        case .null:
            hasher.combine(UInt8(2))
        case .bool(let value):
            hasher.combine(UInt8(3))
            hasher.combine(value)
        case .int(let value):
            hasher.combine(UInt8(4))
            hasher.combine(value)
        case .double(let value):
            // A number is its value: 3.0 is the integer 3, as the API server may answer either.
            if let integer = Int64(exactly: value) {
                hasher.combine(UInt8(4))
                hasher.combine(integer)
            } else {
                hasher.combine(UInt8(5))
                hasher.combine(value.bitPattern)
            }
        case .string(let value):
            hasher.combine(UInt8(6))
            hasher.combine(value)
        case .object:
            hasher.combine(UInt8(7))
        case .array(let count):
            hasher.combine(UInt8(8))
            hasher.combine(count)
        }
        return UInt64(UInt(bitPattern: hasher.finalize()))
    }

    static func sorted(_ digests: [UInt64]) -> [UInt64] {
        var unique: [UInt64] = []
        unique.reserveCapacity(digests.count)
        for digest in digests.sorted() where unique.last != digest {
            unique.append(digest)
        }
        return unique
    }

    /// Appends the digests of `value` and of every node under it.
    static func walk(_ value: JSONValue, at path: FieldDigest, into digests: inout [UInt64]) {
        switch value {
        case .null: digests.append(path.digest(.null))
        case .bool(let value): digests.append(path.digest(.bool(value)))
        case .int(let value): digests.append(path.digest(.int(value)))
        case .double(let value): digests.append(path.digest(.double(value)))
        case .string(let value): digests.append(path.digest(.string(value)))
        case .object(let members):
            digests.append(path.digest(.object))
            for (name, member) in members {
                Self.walk(member, at: path.member(name), into: &digests)
            }
        case .array(let elements):
            digests.append(path.digest(.array(count: elements.count)))
            for (index, element) in elements.enumerated() {
                Self.walk(element, at: path.element(index), into: &digests)
            }
        }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Appends the digests of the value `decoder` decodes and of every node under it, as ``walk(_:at:into:)``
    /// does for the same value as a ``JSONValue``.
    static func walk(_ decoder: any Decoder, at path: FieldDigest, into digests: inout [UInt64]) throws {
        // Scalars first: they outnumber objects and arrays, and each shape tried in vain costs a thrown error.
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            digests.append(path.digest(.null))
        } else if let value = try? single.decode(String.self) {
            digests.append(path.digest(.string(value)))
        } else if let value = try? single.decode(Bool.self) {
            digests.append(path.digest(.bool(value)))
        } else if let value = try? single.decode(Int64.self) {
            digests.append(path.digest(.int(value)))
        } else if let value = try? single.decode(Double.self) {
            digests.append(path.digest(.double(value)))
        } else if let object = try? decoder.container(keyedBy: AnyKey.self) {
            digests.append(path.digest(.object))
            for key in object.allKeys {
                try Self.walk(object.superDecoder(forKey: key), at: path.member(key.stringValue), into: &digests)
            }
        } else {
            var array = try decoder.unkeyedContainer()
            var count = 0
            while !array.isAtEnd {
                try Self.walk(array.superDecoder(), at: path.element(count), into: &digests)
                count += 1
            }
            digests.append(path.digest(.array(count: count)))
        }
    }
}
