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
/// ties it to its owner and orders writes, the replica counts a controller reads, and a 32-bit digest of each field
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
/// The digests are SipHash (`Hasher`), seeded per process, cut to 32 bits: they are compared in the process that
/// made them and never leave it. A desired node that is not in the object is taken for present when its digest
/// happens to be one of the object's, a probability of about n × 2⁻³² for an object of n nodes (a Deployment has
/// about a hundred: 2 × 10⁻⁸). What that would miss is a field edited by hand, or a change whose every new node
/// matched by chance too (a controller that keeps the hash of what it applied in an annotation sees a changed desire
/// by that annotation's digest as well). 32 bits instead of 64 halve what the digests take, most of a summary.
///
/// Kept as they are: of `metadata` what ties the object to its owner and orders writes (`name`, `namespace`,
/// `resourceVersion`, `generation`, `ownerReferences`, `deletionTimestamp`, `finalizers`; `labels` and `annotations`
/// are digested, under `metadata`), and of `status` only its integer members. `status` is not digested: no
/// controller desires a status. `apiVersion` and `kind` are left out (the cache is of one resource).
///
/// A summary is one reference to an immutable box: a cache's dictionary holds eight bytes per object beside its key,
/// and the box what the object needs, no more.
public struct ObjectSummary: KubernetesAPIObject, Hashable {
    /// What a summary holds beside its digests.
    private struct Fields: Hashable, Sendable {
        var meta: CompactObjectMeta
        var replicas: Int64?
        var statusCounts: [String: Int64]
        /// How many digests follow the fields in the box.
        var digestCount: Int

        init(metadata: ObjectMeta, replicas: Int64?, statusCounts: [String: Int64], digestCount: Int) {
            var kept = ObjectMeta(
                name: metadata.name,
                namespace: metadata.namespace,
                ownerReferences: metadata.ownerReferences,
                finalizers: metadata.finalizers,
                resourceVersion: metadata.resourceVersion
            )
            kept.generation = metadata.generation
            kept.deletionTimestamp = metadata.deletionTimestamp
            self.meta = CompactObjectMeta(kept)
            self.replicas = replicas
            self.statusCounts = statusCounts
            self.digestCount = digestCount
        }

        var metadata: ObjectMeta { self.meta.metadata }
    }

    /// The fields, then the digests (sorted, without duplicates): one allocation per summary.
    private final class Box: ManagedBuffer<Fields, UInt32> {

        static func make(_ fields: Fields, digests: UnsafeBufferPointer<UInt32>) -> Box {
            let buffer = Box.create(minimumCapacity: digests.count) { _ in fields }
            buffer.withUnsafeMutablePointerToElements { elements in
                if let base = digests.baseAddress { elements.initialize(from: base, count: digests.count) }
            }
            return unsafeDowncast(buffer, to: Box.self)
        }

        var fields: Fields { self.header }

        func withDigests<Result>(_ body: (UnsafeBufferPointer<UInt32>) throws -> Result) rethrows -> Result {
            try self.withUnsafeMutablePointerToElements { elements in
                try body(UnsafeBufferPointer(start: elements, count: self.header.digestCount))
            }
        }
    }

    /// `ManagedBuffer` is never `Sendable`; a box is immutable once made (``Box/make(_:digests:)``), so sharing one
    /// across tasks is safe.
    private struct SharedBox: @unchecked Sendable {
        let box: Box
    }

    private var shared: SharedBox

    private var box: Box {
        get { self.shared.box }
        set { self.shared = SharedBox(box: newValue) }
    }

    /// The object's metadata: `name`, `namespace`, `resourceVersion`, `generation`, `deletionTimestamp`,
    /// `finalizers` and `ownerReferences` (no `labels` or `annotations`: those are digested).
    public var metadata: ObjectMeta {
        get { self.box.fields.metadata }
        set {
            let fields = self.box.fields
            self.box = self.box.withDigests { digests in
                Box.make(
                    Fields(
                        metadata: newValue,
                        replicas: fields.replicas,
                        statusCounts: fields.statusCounts,
                        digestCount: digests.count
                    ),
                    digests: digests
                )
            }
        }
    }

    /// `spec.replicas`, when the object has it.
    public var replicas: Int64? { self.box.fields.replicas }
    /// The integer members of `status` (`readyReplicas`, `observedGeneration`, ...).
    public var statusCounts: [String: Int64] { self.box.fields.statusCounts }

    public static func == (lhs: ObjectSummary, rhs: ObjectSummary) -> Bool {
        if lhs.box === rhs.box { return true }
        guard lhs.box.fields == rhs.box.fields else { return false }
        return lhs.box.withDigests { left in rhs.box.withDigests { right in left.elementsEqual(right) } }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.box.fields)
        self.box.withDigests { digests in
            for digest in digests { hasher.combine(digest) }
        }
    }

    private init(metadata: ObjectMeta, replicas: Int64?, statusCounts: [String: Int64], digests: [UInt32]) {
        let fields = Fields(
            metadata: metadata,
            replicas: replicas,
            statusCounts: statusCounts,
            digestCount: digests.count
        )
        self.shared = SharedBox(box: digests.withUnsafeBufferPointer { Box.make(fields, digests: $0) })
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
        return wanted.allSatisfy { self.has($0) }
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

    /// How many digests the summary holds (its size is four bytes each).
    public var digestCount: Int { self.box.fields.digestCount }

    private func has(_ digest: UInt64) -> Bool {
        let digest = FieldDigest.stored(digest)
        return self.box.withDigests { digests in
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

/// An ``ObjectMeta`` in less room, for caches that keep thousands: the namespace and finalizers interned, the
/// owner references as ``CompactOwners``, the `uid` as 128 bits. `labels`, `annotations` and `generateName` are not
/// kept. ``metadata`` gives back the same values.
///
/// What a controller's children seldom have (a `uid` kept, creation and deletion times, finalizers) sits in a box of
/// its own, absent when all of it is: a child summary holds one empty reference in place of 64 bytes.
public struct CompactObjectMeta: Hashable, Sendable {
    /// The fields most cached children leave empty.
    private final class Seldom: Hashable, Sendable {
        let uid: CompactOwner.UID?
        let creationTimestamp: String?
        let deletionTimestamp: String?
        let finalizers: [String]?

        init?(_ metadata: ObjectMeta) {
            guard
                metadata.uid != nil || metadata.creationTimestamp != nil || metadata.deletionTimestamp != nil
                    || metadata.finalizers != nil
            else { return nil }
            self.uid = metadata.uid.map(CompactOwner.UID.init)
            self.creationTimestamp = metadata.creationTimestamp.map { RecentStrings.shared($0) }
            self.deletionTimestamp = metadata.deletionTimestamp
            self.finalizers = metadata.finalizers?.map { Intern.shared($0) }
        }

        static func == (lhs: Seldom, rhs: Seldom) -> Bool {
            lhs === rhs
                || (lhs.uid == rhs.uid && lhs.creationTimestamp == rhs.creationTimestamp
                    && lhs.deletionTimestamp == rhs.deletionTimestamp && lhs.finalizers == rhs.finalizers)
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(self.uid)
            hasher.combine(self.creationTimestamp)
            hasher.combine(self.deletionTimestamp)
            hasher.combine(self.finalizers)
        }
    }

    var name: String?
    var namespace: String?
    var resourceVersion: String?
    var generation: Int64?
    var owners: CompactOwners
    private var seldom: Seldom?

    public init(_ metadata: ObjectMeta) {
        self.name = metadata.name
        self.namespace = metadata.namespace.map { Intern.shared($0) }
        self.resourceVersion = metadata.resourceVersion
        self.generation = metadata.generation
        self.owners = CompactOwners(metadata.ownerReferences, objectName: metadata.name)
        self.seldom = Seldom(metadata)
    }

    public var metadata: ObjectMeta {
        var metadata = ObjectMeta(
            name: self.name,
            namespace: self.namespace,
            ownerReferences: self.owners.references(objectName: self.name),
            finalizers: self.seldom?.finalizers,
            resourceVersion: self.resourceVersion
        )
        metadata.uid = self.seldom?.uid?.string
        metadata.generation = self.generation
        metadata.creationTimestamp = self.seldom?.creationTimestamp
        metadata.deletionTimestamp = self.seldom?.deletionTimestamp
        return metadata
    }
}

/// The owner references of a summarized object, in less room than `[OwnerReference]`: the one owner most objects
/// have is kept inline (no array), its `uid` as the 128 bits of a UUID (not a 36-character string), and its name,
/// when it is the end of the object's own name (a child named after its owner, `ls-NAME` for `NAME`), as how many
/// bytes of the object's name precede it. Anything else is kept as it came.
enum CompactOwners: Hashable, Sendable {
    case none
    case one(CompactOwner)
    case many([OwnerReference])

    init(_ references: [OwnerReference]?, objectName: String?) {
        guard let references else {
            self = .none
            return
        }
        if references.count == 1 {
            self = .one(CompactOwner(references[0], objectName: objectName))
        } else {
            self = .many(references.map(Intern.shared.reference))
        }
    }

    func references(objectName: String?) -> [OwnerReference]? {
        switch self {
        case .none: nil
        case .one(let owner): [owner.reference(objectName: objectName)]
        case .many(let references): references
        }
    }
}

struct CompactOwner: Hashable, Sendable {
    enum Name: Hashable, Sendable {
        case string(String)
        /// The object's name without its first `dropping` bytes.
        case suffix(dropping: Int)
    }

    enum UID: Hashable, Sendable {
        case string(String)
        /// A canonical (lowercase, hyphenated) UUID.
        case uuid(UInt64, UInt64)

        init(_ string: String) {
            self = CompactOwner.parseUUID(string).map { .uuid($0.0, $0.1) } ?? .string(string)
        }

        var string: String {
            switch self {
            case .string(let string): string
            case .uuid(let high, let low): CompactOwner.formatUUID(high, low)
            }
        }
    }

    var apiVersion: String
    var kind: String
    var name: Name
    var uid: UID
    var controller: Bool?
    var blockOwnerDeletion: Bool?

    init(_ reference: OwnerReference, objectName: String?) {
        self.apiVersion = Intern.shared(reference.apiVersion)
        self.kind = Intern.shared(reference.kind)
        self.name = .string(reference.name)
        if let objectName, reference.name.utf8.count > 15, objectName.utf8.count >= reference.name.utf8.count {
            let dropping = objectName.utf8.count - reference.name.utf8.count
            if objectName.utf8.dropFirst(dropping).elementsEqual(reference.name.utf8) {
                self.name = .suffix(dropping: dropping)
            }
        }
        self.uid = UID(reference.uid)
        self.controller = reference.controller
        self.blockOwnerDeletion = reference.blockOwnerDeletion
    }

    func reference(objectName: String?) -> OwnerReference {
        let name: String
        switch self.name {
        case .string(let string): name = string
        case .suffix(let dropping): name = String(decoding: (objectName ?? "").utf8.dropFirst(dropping), as: UTF8.self)
        }
        return OwnerReference(
            apiVersion: self.apiVersion,
            kind: self.kind,
            name: name,
            uid: self.uid.string,
            controller: self.controller,
            blockOwnerDeletion: self.blockOwnerDeletion
        )
    }

    /// Where a canonical UUID has its hyphens.
    private static let hyphens: Set<Int> = [8, 13, 18, 23]

    /// The 128 bits of `string` if it is a UUID written as ``formatUUID(_:_:)`` writes it, else `nil`.
    static func parseUUID(_ string: String) -> (UInt64, UInt64)? {
        guard string.utf8.count == 36 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        var digits = 0
        for (index, byte) in string.utf8.enumerated() {
            if Self.hyphens.contains(index) {
                guard byte == UInt8(ascii: "-") else { return nil }
                continue
            }
            let value: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
            default: return nil
            }
            if digits < 16 {
                high = high << 4 | UInt64(value)
            } else {
                low = low << 4 | UInt64(value)
            }
            digits += 1
        }
        return (high, low)
    }

    /// `8-4-4-4-12` lowercase hexadecimal digits.
    static func formatUUID(_ high: UInt64, _ low: UInt64) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(36)
        for digit in 0..<32 {
            if Self.hyphens.contains(bytes.count) { bytes.append(UInt8(ascii: "-")) }
            let word = digit < 16 ? high : low
            let shift = UInt64(60 - 4 * (digit % 16))
            bytes.append(hex[Int((word >> shift) & 0xF)])
        }
        return String(decoding: bytes, as: UTF8.self)
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

    /// A digest as a summary keeps it: its low 32 bits.
    static func stored(_ digest: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: digest)
    }

    /// The digests as a summary keeps them: 32 bits each, sorted, without duplicates.
    static func sorted(_ digests: [UInt64]) -> [UInt32] {
        var unique: [UInt32] = []
        unique.reserveCapacity(digests.count)
        for digest in digests.map(Self.stored).sorted() where unique.last != digest {
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

/// One copy of strings that recur among cached objects but come from a set no one bounds (the time of a condition,
/// a message, a target's URL): a direct-mapped table of ``slots`` strings, where a string takes the slot of its hash
/// and evicts whatever was there. A string seen again while it holds its slot comes back as the copy already kept,
/// so ten thousand streams that got the same condition in the same second share one string, and the table never
/// holds more than ``slots`` strings, whatever a peer sends. Strings of 15 bytes or fewer are returned as they are:
/// Swift keeps them inline, with nothing to share.
public final class RecentStrings: Sendable {
    public static let shared = RecentStrings()
    public static let slots = 4096

    private let table = Mutex([String?](repeating: nil, count: RecentStrings.slots))

    public init() {}

    public func callAsFunction(_ string: String) -> String {
        guard string.utf8.count > 15 else { return string }
        let slot = Int(UInt(bitPattern: string.hashValue) % UInt(Self.slots))
        return self.table.withLock { table in
            if let kept = table[slot], kept == string { return kept }
            table[slot] = string
            return string
        }
    }
}
