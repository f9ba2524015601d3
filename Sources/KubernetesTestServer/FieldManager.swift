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

/// One `metadata.managedFields` entry: who owns which fields, through which operation and subresource.
///
/// A manager is identified, as kube-apiserver identifies it, by its name, its operation and its subresource: the
/// same name applying and updating owns two sets. (The API version, which also tells `Update` managers apart on a
/// real server, is left out: the server serves each resource in one version.)
struct ManagedFieldsEntry: Sendable, Equatable {
    var manager: String
    var operation: String
    var apiVersion: String
    var time: String?
    var subresource: String?
    var fields: FieldSet

    func isSameManager(_ manager: String, operation: String, subresource: String?) -> Bool {
        self.manager == manager && self.operation == operation && (self.subresource ?? "") == (subresource ?? "")
    }

    var json: JSON {
        var entry: JSON = [
            "operation": .string(self.operation), "apiVersion": .string(self.apiVersion), "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.fieldsV1,
        ]
        // Every field of ManagedFieldsEntry is `omitempty`.
        if !self.manager.isEmpty { entry["manager"] = .string(self.manager) }
        if let time = self.time { entry["time"] = .string(time) }
        if let subresource = self.subresource, !subresource.isEmpty { entry["subresource"] = .string(subresource) }
        return entry
    }

    init(manager: String, operation: String, apiVersion: String, time: String?, subresource: String?, fields: FieldSet)
    {
        self.manager = manager
        self.operation = operation
        self.apiVersion = apiVersion
        self.time = time
        self.subresource = subresource
        self.fields = fields
    }

    init?(json: JSON) {
        guard let operation = json["operation"]?.stringValue,
            json["fieldsType"]?.stringValue ?? "FieldsV1" == "FieldsV1",
            let fields = FieldSet(fieldsV1: json["fieldsV1"] ?? [:])
        else { return nil }
        self.manager = json["manager"]?.stringValue ?? ""
        self.operation = operation
        self.apiVersion = json["apiVersion"]?.stringValue ?? ""
        self.time = json["time"]?.stringValue
        self.subresource = json["subresource"]?.stringValue
        self.fields = fields
    }
}

/// Server-side field management, after kube-apiserver's `managedfields` package and structured-merge-diff.
///
/// - Every write records its manager: an `Update` entry (PUT, POST, merge/JSON/strategic patches) takes the fields
///   the write added or changed, away from every other manager; a field the write removed leaves every set.
/// - An apply (`application/apply-patch+yaml`) is merged into the live object (maps key by key, associative lists
///   item by item); the applier's set becomes exactly the fields of its configuration. A field another manager owns
///   whose value the apply changes is a conflict: 409 with one cause per field, unless `force=true`, which takes the
///   field from them. Applying the value a field already has makes the applier a co-owner.
/// - A field the applier applied last time and no longer applies is removed from the object, unless another manager
///   owns it (or something below it).
///
/// Sets leave out what kube-apiserver strips (`apiVersion`, `kind`, `metadata.name`, `uid`, `resourceVersion`, ...)
/// and what the request's endpoint resets: a write through the main resource does not own `status` when the type has
/// a status subresource, a write through `/status` owns only `status`, and one through `/scale` only the replicas.
/// See ``FieldSchema`` for which lists are associative.
enum FieldManager {
    /// The paths kube-apiserver never puts in a set (`managedfields/internal/stripmeta.go`).
    private static let stripped: Set<FieldPath> = [
        [.field("apiVersion")], [.field("kind")], [.field("metadata")], [.field("metadata"), .field("name")],
        [.field("metadata"), .field("namespace")], [.field("metadata"), .field("creationTimestamp")],
        [.field("metadata"), .field("selfLink")], [.field("metadata"), .field("uid")],
        [.field("metadata"), .field("clusterName")], [.field("metadata"), .field("generation")],
        [.field("metadata"), .field("managedFields")], [.field("metadata"), .field("resourceVersion")],
    ]

    /// Whether a write through `subresource` of `type` may own `path`.
    static func owns(_ path: FieldPath, type: ResourceType, subresource: Subresource?) -> Bool {
        if Self.stripped.contains(path) || path.hasPrefix([.field("metadata"), .field("managedFields")]) {
            return false
        }
        switch subresource {
        case nil: return !(type.hasStatus && path.first == .field("status"))
        case .status: return path.first == .field("status")
        case .scale:
            let replicas = (type.scale?.specReplicas ?? ["spec", "replicas"]).map { PathElement.field($0) }
            return path.hasPrefix(replicas)
        }
    }

    // MARK: managedFields

    /// The entries of an object's `metadata.managedFields`; `nil` when it has none or they cannot be read.
    static func entries(of object: JSON) -> [ManagedFieldsEntry]? {
        guard let list = object[path: ["metadata", "managedFields"]]?.arrayValue, !list.isEmpty else { return nil }
        let entries = list.compactMap(ManagedFieldsEntry.init(json:))
        return entries.count == list.count ? entries : nil
    }

    /// The entries a write starts from (`decodeLiveOrNew`): the request's own `managedFields` when it sends
    /// readable ones to the main resource, none when it sends the reset value `[{}]`, else the live object's.
    static func startingEntries(live: JSON?, request: JSON, subresource: Subresource?) -> [ManagedFieldsEntry] {
        let liveEntries = live.flatMap(Self.entries(of:)) ?? []
        guard subresource == nil else { return liveEntries }
        if let list = request[path: ["metadata", "managedFields"]]?.arrayValue, list.count == 1, list[0] == [:] {
            return []
        }
        return Self.entries(of: request) ?? liveEntries
    }

    /// Writes `entries` into `object`, ordered as kube-apiserver orders them (operation, time, manager).
    static func store(_ entries: [ManagedFieldsEntry], in object: JSON) -> JSON {
        var object = object
        let sorted = entries.filter { !$0.fields.isEmpty }.sorted { left, right in
            if left.operation != right.operation { return left.operation < right.operation }
            if (left.time ?? "") != (right.time ?? "") { return (left.time ?? "") < (right.time ?? "") }
            if left.manager != right.manager { return left.manager < right.manager }
            return (left.subresource ?? "") < (right.subresource ?? "")
        }
        object[path: ["metadata", "managedFields"]] = sorted.isEmpty ? nil : .array(sorted.map(\.json))
        return object
    }

    // MARK: Writes

    /// An `Update` by `manager`: it takes every field the write added or changed; removed fields leave every set.
    /// The entry and its time change only when the write changed a field it may own.
    static func recordUpdate(
        _ type: ResourceType,
        old: JSON?,
        new: JSON,
        request: JSON,
        manager: String,
        subresource: Subresource?
    ) -> JSON {
        let schema = FieldSchema.of(type)
        var entries = Self.startingEntries(live: old, request: request, subresource: subresource)
        let comparison = Self.compare(old ?? [:], new, schema: schema)
        let taken = comparison.added.union(comparison.modified).filter {
            Self.owns($0, type: type, subresource: subresource)
        }
        for index in entries.indices {
            entries[index].fields = entries[index].fields.subtracting(taken).subtracting(comparison.removed)
        }
        if !taken.isEmpty {
            let subresourceName = subresource?.rawValue
            if let index = entries.firstIndex(where: {
                $0.isSameManager(manager, operation: "Update", subresource: subresourceName)
            }) {
                entries[index].fields = entries[index].fields.union(taken)
                entries[index].time = Timestamps.now()
            } else {
                entries.append(
                    ManagedFieldsEntry(
                        manager: manager,
                        operation: "Update",
                        apiVersion: type.groupVersion,
                        time: Timestamps.now(),
                        subresource: subresourceName,
                        fields: taken
                    )
                )
            }
        }
        return Self.store(entries, in: new)
    }

    /// What an apply leaves: the object to store (before schema processing) and the managers' entries.
    struct Applied {
        var object: JSON
        var entries: [ManagedFieldsEntry]
    }

    /// Server-side apply of `configuration` by `manager` onto `live` (`nil` when the apply creates the object).
    static func apply(
        _ type: ResourceType,
        live: JSON?,
        configuration: JSON,
        manager: String,
        subresource: Subresource?,
        force: Bool
    ) throws(APIError) -> Applied {
        let schema = FieldSchema.of(type)
        var config = configuration
        // The fields the endpoint resets are neither merged nor owned.
        switch subresource {
        case nil: if type.hasStatus { config["status"] = nil }
        case .status: config = configuration["status"].map { ["status": $0] } ?? [:]
        case .scale:
            // An apply of a Scale is not modelled: the scale subresource takes the other patches and PUT.
            throw APIError.unsupportedMediaType(
                accepted: [
                    "application/json-patch+json", "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                ]
            )
        }
        let applied = Self.fieldSet(of: config, schema: schema).filter {
            Self.owns($0, type: type, subresource: subresource)
        }
        let old = live ?? [:]
        var entries = live.flatMap(Self.entries(of:)) ?? []
        let subresourceName = subresource?.rawValue
        let own = entries.firstIndex { $0.isSameManager(manager, operation: "Apply", subresource: subresourceName) }
        let lastApplied = own.map { entries[$0].fields } ?? FieldSet()

        var merged = Self.merge(old, config, schema: schema)

        // Conflicts: fields another manager owns that this apply changes.
        let comparison = Self.compare(old, merged, schema: schema)
        let changed = comparison.added.union(comparison.modified)
        var conflicts: [(entry: ManagedFieldsEntry, fields: FieldSet)] = []
        for (index, entry) in entries.enumerated() where index != own {
            let conflicting = entry.fields.intersection(changed)
            if !conflicting.isEmpty { conflicts.append((entry, conflicting)) }
        }
        if !conflicts.isEmpty {
            guard force else { throw Self.conflictError(conflicts) }
            for index in entries.indices where index != own {
                entries[index].fields = entries[index].fields.subtracting(changed)
            }
        }

        // Fields this manager stops applying go, unless someone else owns them or something below them.
        let others = entries.enumerated().filter { $0.offset != own }.map(\.element.fields)
        let dropped = lastApplied.subtracting(applied).paths.sorted { $0.count > $1.count }
        for path in dropped {
            if others.contains(where: { $0.containsPrefixed(by: path) }) || applied.containsPrefixed(by: path) {
                continue
            }
            if Self.isKeyField(path) { continue }
            merged = Self.remove(path, from: merged, keeping: others + [applied])
        }

        let entry = ManagedFieldsEntry(
            manager: manager,
            operation: "Apply",
            apiVersion: type.groupVersion,
            time: Timestamps.now(),
            subresource: subresourceName,
            fields: applied
        )
        if let own {
            entries[own] = entry
        } else {
            entries.append(entry)
        }
        return Applied(object: merged, entries: entries)
    }

    /// After an apply: fields the stored object no longer has leave every set; a true no-op keeps the live
    /// object's entries as they were (times included).
    static func finishApply(_ type: ResourceType, live: JSON?, stored: JSON, entries: [ManagedFieldsEntry]) -> JSON {
        var entries = entries
        let schema = FieldSchema.of(type)
        let removed = Self.compare(live ?? [:], stored, schema: schema).removed
        for index in entries.indices { entries[index].fields = entries[index].fields.subtracting(removed) }
        if let live, let before = Self.entries(of: live),
            Self.withoutManagedFields(live) == Self.withoutManagedFields(stored),
            Set(before.map(Self.identity)) == Set(entries.filter({ !$0.fields.isEmpty }).map(Self.identity))
        {
            return Self.store(before, in: stored)
        }
        return Self.store(entries, in: stored)
    }

    private static func identity(_ entry: ManagedFieldsEntry) -> [String: JSON] {
        [
            "manager": .string(entry.manager), "operation": .string(entry.operation),
            "subresource": .string(entry.subresource ?? ""), "fields": entry.fields.fieldsV1,
        ]
    }

    private static func withoutManagedFields(_ object: JSON) -> JSON {
        var object = object
        object[path: ["metadata", "managedFields"]] = nil
        object[path: ["metadata", "resourceVersion"]] = nil
        return object
    }

    /// 409 as `managedfields/internal/conflict.go` writes it: one cause per field, grouped by manager.
    static func conflictError(_ conflicts: [(entry: ManagedFieldsEntry, fields: FieldSet)]) -> APIError {
        let sorted = conflicts.sorted { Self.describe($0.entry) < Self.describe($1.entry) }
        var causes: [JSON] = []
        var count = 0
        for (entry, fields) in sorted {
            for path in fields.sorted {
                count += 1
                causes.append([
                    "reason": "FieldManagerConflict", "message": .string("conflict with \(Self.describe(entry))"),
                    "field": .string(path.pathString),
                ])
            }
        }
        let message: String
        if count == 1, let (entry, fields) = sorted.first, let path = fields.sorted.first {
            message = "Apply failed with 1 conflict: conflict with \(Self.describe(entry)): \(path.pathString)"
        } else {
            var lines: [String] = []
            for (entry, fields) in sorted {
                lines.append("conflicts with \(Self.describe(entry)):")
                lines.append(contentsOf: fields.sorted.map { "- \($0.pathString)" })
            }
            message = "Apply failed with \(count) conflicts: \(lines.joined(separator: "\n"))"
        }
        return APIError(code: 409, reason: "Conflict", message: message, details: ["causes": .array(causes)])
    }

    /// `printManager`: `"name"`, with ` with subresource "status"`, and ` using apps/v1` for an `Update` (the
    /// manager identifier in a conflict carries no time).
    static func describe(_ entry: ManagedFieldsEntry) -> String {
        var text = "\"\(entry.manager)\""
        if let subresource = entry.subresource, !subresource.isEmpty { text += " with subresource \"\(subresource)\"" }
        if entry.operation == "Update" { text += " using \(entry.apiVersion)" }
        return text
    }

    // MARK: Sets, comparison, merge

    /// `ToFieldSet`: every leaf of `value`, every item of an associative list, and every null or empty map.
    static func fieldSet(of value: JSON, schema: FieldSchema) -> FieldSet {
        var set = FieldSet()
        Self.collect(value, schema: schema, path: [], into: &set)
        return set
    }

    private static func collect(_ value: JSON, schema: FieldSchema, path: FieldPath, into set: inout FieldSet) {
        switch value {
        case .object(let object) where !schema.isAtomicMap:
            for (key, child) in object {
                let childPath = path + [.field(key)]
                if child == .null || child == [:] {
                    set.insert(childPath)
                } else {
                    Self.collect(child, schema: schema.field(key), path: childPath, into: &set)
                }
            }
        case .array(let items) where schema.listType != .atomic:
            for (index, item) in items.enumerated() {
                let itemPath = path + [schema.element(of: item, at: index)]
                Self.collect(item, schema: schema.items, path: itemPath, into: &set)
                set.insert(itemPath)
            }
        default:
            if !path.isEmpty { set.insert(path) }
        }
    }

    struct Comparison {
        var added = FieldSet()
        var modified = FieldSet()
        var removed = FieldSet()
    }

    /// `TypedValue.Compare`: the fields `new` adds, changes and removes relative to `old`.
    static func compare(_ old: JSON, _ new: JSON, schema: FieldSchema) -> Comparison {
        var comparison = Comparison()
        Self.compare(old, new, schema: schema, path: [], into: &comparison)
        return comparison
    }

    private static func compare(
        _ old: JSON?,
        _ new: JSON?,
        schema: FieldSchema,
        path: FieldPath,
        into comparison: inout Comparison
    ) {
        if old == nil && new == nil { return }
        let isMap = { (value: JSON?) in value == nil || value?.objectValue != nil }
        let isList = { (value: JSON?) in value == nil || value?.arrayValue != nil }
        if isMap(old), isMap(new), !schema.isAtomicMap {
            let oldObject = old?.objectValue ?? [:]
            let newObject = new?.objectValue ?? [:]
            for key in Set(oldObject.keys).union(newObject.keys) {
                Self.compare(
                    oldObject[key],
                    newObject[key],
                    schema: schema.field(key),
                    path: path + [.field(key)],
                    into: &comparison
                )
            }
        } else if isList(old), isList(new), schema.listType != .atomic {
            let oldItems = Self.index(old?.arrayValue ?? [], schema: schema)
            let newItems = Self.index(new?.arrayValue ?? [], schema: schema)
            var seen = Set<PathElement>()
            for (element, _) in oldItems.order + newItems.order where seen.insert(element).inserted {
                Self.compare(
                    oldItems.items[element],
                    newItems.items[element],
                    schema: schema.items,
                    path: path + [element],
                    into: &comparison
                )
            }
        } else {
            if old == nil {
                comparison.added.insert(path)
            } else if new == nil {
                comparison.removed.insert(path)
            } else if old != new {
                comparison.modified.insert(path)
            }
            return
        }
        guard !path.isEmpty else { return }
        if old == nil {
            comparison.added.insert(path)
        } else if new == nil {
            comparison.removed.insert(path)
        }
    }

    private static func index(
        _ items: [JSON],
        schema: FieldSchema
    ) -> (order: [(PathElement, JSON)], items: [PathElement: JSON]) {
        var order: [(PathElement, JSON)] = []
        var index: [PathElement: JSON] = [:]
        for (position, item) in items.enumerated() {
            let element = schema.element(of: item, at: position)
            order.append((element, item))
            index[element] = item
        }
        return (order, index)
    }

    /// `TypedValue.Merge`: `applied` over `live`; maps merge key by key, associative lists item by item in
    /// structured-merge-diff's order (live items stay where they are, new items go before the next shared one),
    /// everything else is replaced. A null in the configuration removes the field.
    static func merge(_ live: JSON?, _ applied: JSON, schema: FieldSchema) -> JSON {
        switch (live, applied) {
        case (.object(var object)?, .object(let appliedObject)) where !schema.isAtomicMap:
            for (key, value) in appliedObject {
                object[key] = value == .null ? nil : Self.merge(object[key], value, schema: schema.field(key))
            }
            return .object(object)
        case (.array(let liveItems)?, .array(let appliedItems)) where schema.listType != .atomic:
            return .array(Self.mergeList(liveItems, appliedItems, schema: schema))
        case (_, .object(let appliedObject)) where !schema.isAtomicMap:
            // Nothing live: the configuration, with its nulls dropped.
            var object: [String: JSON] = [:]
            for (key, value) in appliedObject where value != .null {
                object[key] = Self.merge(nil, value, schema: schema.field(key))
            }
            return .object(object)
        default:
            return applied
        }
    }

    private static func mergeList(_ live: [JSON], _ applied: [JSON], schema: FieldSchema) -> [JSON] {
        let left = Self.index(live, schema: schema)
        let right = Self.index(applied, schema: schema)
        var shared = right.order.map(\.0).filter { left.items[$0] != nil }[...]
        var merged = Set<PathElement>()
        var out: [JSON] = []
        var l = 0
        var r = 0
        while l < left.order.count || r < right.order.count {
            if l < left.order.count, r < right.order.count {
                let element = left.order[l].0
                if element == right.order[r].0 {
                    merged.insert(element)
                    out.append(Self.merge(left.items[element], right.items[element] ?? .null, schema: schema.items))
                    l += 1
                    r += 1
                    if shared.first == element { shared = shared.dropFirst() }
                    continue
                }
                if right.items[element] != nil, let next = shared.first, next != element {
                    l += 1
                    continue
                }
            }
            if l < left.order.count {
                let element = left.order[l].0
                if right.items[element] == nil {
                    out.append(left.order[l].1)
                    l += 1
                    continue
                } else if merged.contains(element) {
                    l += 1
                    continue
                }
            }
            if r < right.order.count {
                let element = right.order[r].0
                r += 1
                guard merged.insert(element).inserted else { continue }
                out.append(Self.merge(left.items[element], right.items[element] ?? .null, schema: schema.items))
                if shared.first == element { shared = shared.dropFirst() }
            }
        }
        return out
    }

    /// Whether `path` is a key field of the associative-list item it is in: an item that stays keeps its key.
    private static func isKeyField(_ path: FieldPath) -> Bool {
        guard path.count >= 2, case .field(let name) = path[path.count - 1],
            case .key(let fields) = path[path.count - 2]
        else { return false }
        return fields[name] != nil
    }

    /// Removes the value at `path`, then every map above it that the removal left empty and no set names.
    private static func remove(_ path: FieldPath, from object: JSON, keeping sets: [FieldSet]) -> JSON {
        func removing(_ value: JSON, _ rest: ArraySlice<PathElement>, _ prefix: FieldPath) -> JSON? {
            guard let first = rest.first else { return nil }
            let remaining = rest.dropFirst()
            switch (value, first) {
            case (.object(var object), .field(let name)):
                guard let child = object[name] else { return value }
                object[name] = removing(child, remaining, prefix + [first])
                if !remaining.isEmpty, object[name] == [:] || object[name] == [],
                    !sets.contains(where: { $0.contains(prefix + [first]) })
                {
                    object[name] = nil
                }
                return .object(object)
            case (.array(var items), _):
                guard
                    let position = items.indices.first(where: { index in
                        switch first {
                        case .key(let fields): fields.allSatisfy { items[index][$0.key] == $0.value }
                        case .value(let wanted): items[index] == wanted
                        case .index(let wanted): index == wanted
                        case .field: false
                        }
                    })
                else { return value }
                if let replaced = removing(items[position], remaining, prefix + [first]) {
                    items[position] = replaced
                } else {
                    items.remove(at: position)
                }
                return .array(items)
            default:
                return value
            }
        }
        return removing(object, path[...], []) ?? object
    }
}
