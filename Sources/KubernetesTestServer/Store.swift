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
import Synchronization

/// A change to one object, as kept in the watch history and sent to watchers.
struct WatchEvent: Sendable {
    var type: String
    var storageKey: String
    var namespace: String
    var resourceVersion: Int64
    var object: JSON
    /// The object before a `MODIFIED` change, so a watch with a selector can tell an object entering or leaving it.
    var previous: JSON?

    /// The event as a watcher with `options` sees it: a modification that makes an object match a selector is an
    /// `ADDED`, one that makes it stop matching is a `DELETED`, as the API server's watch cache reports them.
    func translated(for options: ListOptions) -> String? {
        let matchesNow = options.matches(self.object)
        guard self.type == "MODIFIED", let previous else { return matchesNow ? self.type : nil }
        switch (options.matches(previous), matchesNow) {
        case (true, true): return "MODIFIED"
        case (false, true): return "ADDED"
        case (true, false): return "DELETED"
        case (false, false): return nil
        }
    }
}

/// Options of a list or watch.
struct ListOptions: Sendable {
    var namespace: String?
    var labelSelector: LabelSelector?
    var fieldSelector: FieldSelector?

    func matches(_ object: JSON) -> Bool {
        if let namespace, object[path: ["metadata", "namespace"]]?.stringValue != namespace { return false }
        if let labelSelector {
            let labels = object[path: ["metadata", "labels"]]?.objectValue?.compactMapValues(\.stringValue) ?? [:]
            if !labelSelector.matches(labels) { return false }
        }
        if let fieldSelector, !fieldSelector.matches(object) { return false }
        return true
    }
}

/// How a write records its manager in `metadata.managedFields` (see ``FieldManager``).
enum Ownership: Sendable {
    /// An `Update` by this manager: it takes the fields the write changes.
    case update(manager: String)
    /// An apply, whose entries ``FieldManager/apply(_:live:configuration:manager:subresource:force:)`` computed.
    case apply([ManagedFieldsEntry])
}

/// Whether a request writes the main resource or one of its subresources.
enum Subresource: String, Sendable {
    case status
    case scale
}

/// The whole cluster: objects, resource types, watch history and open watches, behind one lock.
///
/// Every write happens under the lock and hands its event to the watchers before the lock is released, so a
/// watcher sees events in `resourceVersion` order with no gap, and a watch registered from version N sees exactly
/// the events after N: the replay and the registration happen in the same critical section.
final class Store: Sendable {
    struct Watcher {
        var type: ResourceType
        var options: ListOptions
        /// Whether events carry `Table`s (kubectl's `get -w`) rather than objects.
        var asTable: Bool
        var continuation: AsyncStream<Data>.Continuation
    }

    struct State {
        var resourceVersion: Int64 = 1
        var builtIn: [ResourceType] = ResourceType.builtIn
        /// Types defined by each CRD, by CRD name.
        var custom: [String: [ResourceType]] = [:]
        /// Objects by storage key, then by `namespace/name` (`/name` for cluster-scoped ones).
        var objects: [String: [String: JSON]] = [:]
        var history: [WatchEvent] = []
        /// A watch must start at or after this version; older versions have been compacted away.
        var compactedVersion: Int64 = 0
        var watchers: [Int: Watcher] = [:]
        var nextWatcherID = 0
        /// Set for the duration of one write that asked for `fieldValidation=Strict`.
        var strictFieldValidation = false
        /// Set for the duration of one `dryRun=All` write: events are neither kept nor sent.
        var dryRun = false

        var allTypes: [ResourceType] { self.builtIn + self.custom.values.flatMap { $0 } }
    }

    let state: Mutex<State>
    let historyLimit: Int

    init(historyLimit: Int) {
        self.historyLimit = historyLimit
        var state = State()
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let namespaces = state.builtIn[0]
            _ = try? state.create(
                namespaces,
                namespace: nil,
                object: ["metadata": ["name": .string(name)]],
                limit: historyLimit
            )
        }
        self.state = Mutex(state)
    }

    /// Runs one write. With `dryRun`, everything is checked and the answer computed, then the state is put back
    /// and no watcher hears of it, as `dryRun=All` does on a real server.
    func write<Result>(
        strict: Bool,
        dryRun: Bool,
        _ body: (inout State) throws(APIError) -> Result
    ) throws(APIError) -> Result {
        try self.withState { (state: inout State) throws(APIError) -> Result in
            let saved = dryRun ? state : nil
            state.strictFieldValidation = strict
            state.dryRun = dryRun
            defer {
                if let saved { state = saved }
                state.strictFieldValidation = false
                state.dryRun = false
            }
            return try body(&state)
        }
    }

    func withState<Result>(_ body: (inout State) throws(APIError) -> Result) throws(APIError) -> Result {
        try self.state.withLock { (state: inout State) throws(APIError) -> Result in try body(&state) }
    }
}

func objectKey(namespace: String?, name: String) -> String {
    "\(namespace ?? "")/\(name)"
}

extension Store.State {
    // MARK: Types

    func findType(group: String, version: String, plural: String) -> ResourceType? {
        self.allTypes.first { $0.group == group && $0.version == version && $0.plural == plural }
    }

    // MARK: Reads

    func get(_ type: ResourceType, namespace: String?, name: String) throws(APIError) -> JSON {
        guard let object = self.objects[type.storageKey]?[objectKey(namespace: namespace, name: name)] else {
            throw APIError.notFound(type, name: name)
        }
        return object
    }

    func list(_ type: ResourceType, options: ListOptions) -> [JSON] {
        let objects = self.objects[type.storageKey]?.values.filter { options.matches($0) } ?? []
        return objects.sorted {
            let left = (
                $0[path: ["metadata", "namespace"]]?.stringValue ?? "",
                $0[path: ["metadata", "name"]]?.stringValue ?? ""
            )
            let right = (
                $1[path: ["metadata", "namespace"]]?.stringValue ?? "",
                $1[path: ["metadata", "name"]]?.stringValue ?? ""
            )
            return left < right
        }
    }

    // MARK: Writes

    /// Validates, prunes and defaults a custom object against its schema, and fills in a CRD's status.
    func prepare(_ type: ResourceType, _ object: JSON, name: String) throws(APIError) -> JSON {
        var object = object
        if let schema = type.schema {
            let (processed, errors, pruned) = Schema.process(object, schema: schema)
            if self.strictFieldValidation, !pruned.isEmpty {
                let fields = pruned.map { "unknown field \"\($0)\"" }.joined(separator: ", ")
                throw APIError.badRequest(
                    "\(type.kind) in version \"\(type.version)\" cannot be handled as a \(type.kind): "
                        + "strict decoding error: \(fields)"
                )
            }
            if !errors.isEmpty { throw APIError.invalid(type, name: name, causes: errors) }
            object = processed
        }
        if type.storageKey == "/secrets" {
            // stringData is write-only: merged into data (base64), never stored or returned; type defaults to Opaque.
            if let stringData = object["stringData"]?.objectValue {
                var data = object["data"]?.objectValue ?? [:]
                for (key, value) in stringData {
                    data[key] = .string(Data((value.stringValue ?? "").utf8).base64EncodedString())
                }
                object["data"] = .object(data)
                object["stringData"] = nil
            }
            if (object["type"]?.stringValue ?? "").isEmpty { object["type"] = "Opaque" }
        }
        if type.storageKey == "apiextensions.k8s.io/customresourcedefinitions" {
            let types = try ResourceType.fromCRD(object)
            guard let first = types.first else { throw APIError.badRequest("the CRD serves no version") }
            let expected = "\(first.plural).\(first.group)"
            guard name == expected else {
                throw APIError.invalid(
                    type,
                    name: name,
                    causes: [.invalid("metadata.name", .string(name), "must be spec.names.plural+\".\"+spec.group")]
                )
            }
            let now = Timestamps.now()
            let condition: (String, String) -> JSON = { type, reason in
                [
                    "type": .string(type), "status": "True", "reason": .string(reason), "message": "",
                    "lastTransitionTime": .string(now),
                ]
            }
            object["status"] = [
                "acceptedNames": object[path: ["spec", "names"]] ?? [:],
                "conditions": [
                    condition("NamesAccepted", "NoConflicts"), condition("Established", "InitialNamesAccepted"),
                ],
                "storedVersions": .array(types.map { .string($0.version) }),
            ]
        }
        return object
    }

    mutating func nextVersion() -> Int64 {
        self.resourceVersion += 1
        return self.resourceVersion
    }

    mutating func create(
        _ type: ResourceType,
        namespace: String?,
        object input: JSON,
        limit: Int,
        ownership: Ownership? = nil
    ) throws(APIError) -> JSON {
        guard case .object = input else { throw APIError.badRequest("the body must be a JSON object") }
        var object = input
        var name = object[path: ["metadata", "name"]]?.stringValue ?? ""
        if name.isEmpty, let prefix = object[path: ["metadata", "generateName"]]?.stringValue, !prefix.isEmpty {
            let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
            name = prefix + String((0..<5).map { _ in alphabet.randomElement()! })
        }
        guard !name.isEmpty else {
            throw APIError.invalid(type, name: "", causes: [.required("metadata.name")])
        }
        if let bodyNamespace = object[path: ["metadata", "namespace"]]?.stringValue, let namespace,
            !bodyNamespace.isEmpty, bodyNamespace != namespace
        {
            throw APIError.badRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        }
        let key = objectKey(namespace: type.namespaced ? namespace : nil, name: name)
        if self.objects[type.storageKey]?[key] != nil { throw APIError.alreadyExists(type, name: name) }

        object["apiVersion"] = .string(type.groupVersion)
        object["kind"] = .string(type.kind)
        var metadata = object["metadata"]?.objectValue ?? [:]
        metadata["name"] = .string(name)
        metadata["namespace"] = type.namespaced ? .string(namespace ?? "default") : nil
        metadata["uid"] = .string(UUID().uuidString.lowercased())
        metadata["creationTimestamp"] = .string(Timestamps.now())
        metadata["generation"] = 1
        metadata["deletionTimestamp"] = nil
        metadata["deletionGracePeriodSeconds"] = nil
        object["metadata"] = .object(metadata)
        if type.hasStatus { object["status"] = nil }
        if type.storageKey == "/namespaces" { object["status"] = ["phase": "Active"] }
        object = try self.prepare(type, object, name: name)
        switch ownership {
        case .update(let manager):
            object = FieldManager.recordUpdate(
                type,
                old: nil,
                new: object,
                request: object,
                manager: manager,
                subresource: nil
            )
        case .apply(let entries):
            object = FieldManager.finishApply(type, live: nil, stored: object, entries: entries)
        case nil:
            break
        }

        let version = self.nextVersion()
        object[path: ["metadata", "resourceVersion"]] = .string(String(version))
        self.objects[type.storageKey, default: [:]][key] = object
        self.record("ADDED", type: type, object: object, limit: limit)
        self.afterWrite(type, object: object, removed: false, limit: limit)
        return object
    }

    /// Stores `new` in place of `old` with the API server's bookkeeping: identity fields kept, generation bumped
    /// when anything but metadata and status changed, `managedFields` recorded for `ownership` (written through
    /// `subresource`), nothing written for a no-op, and the object removed when it is being deleted and its last
    /// finalizer has gone.
    mutating func commitUpdate(
        _ type: ResourceType,
        old: JSON,
        new input: JSON,
        limit: Int,
        ownership: Ownership? = nil,
        subresource: Subresource? = nil
    ) throws(APIError) -> JSON {
        var new = input
        let name = old[path: ["metadata", "name"]]?.stringValue ?? ""
        let namespace = old[path: ["metadata", "namespace"]]?.stringValue
        new["apiVersion"] = .string(type.groupVersion)
        new["kind"] = .string(type.kind)
        var metadata = new["metadata"]?.objectValue ?? [:]
        for field in [
            "name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
            "generation",
        ] {
            metadata[field] = old[path: ["metadata", field]]
        }
        metadata["resourceVersion"] = old[path: ["metadata", "resourceVersion"]]
        new["metadata"] = .object(metadata)
        new = try self.prepare(type, new, name: name)

        var oldSpec = old
        oldSpec["metadata"] = nil
        oldSpec["status"] = nil
        var newSpec = new
        newSpec["metadata"] = nil
        newSpec["status"] = nil
        if oldSpec != newSpec {
            let generation = old[path: ["metadata", "generation"]]?.intValue ?? 1
            new[path: ["metadata", "generation"]] = .int(generation + 1)
        }
        switch ownership {
        case .update(let manager):
            new = FieldManager.recordUpdate(
                type,
                old: old,
                new: new,
                request: new,
                manager: manager,
                subresource: subresource
            )
        case .apply(let entries):
            new = FieldManager.finishApply(type, live: old, stored: new, entries: entries)
        case nil:
            // A write of the library API (``KubernetesTestServer/apply(_:)``) keeps the live owners.
            if new[path: ["metadata", "managedFields"]] == nil {
                new[path: ["metadata", "managedFields"]] = old[path: ["metadata", "managedFields"]]
            }
        }

        if type.storageKey == "/secrets" || type.storageKey == "/configmaps",
            old["immutable"]?.boolValue == true
        {
            // An immutable Secret or ConfigMap keeps its data (ValidateSecretUpdate, ValidateConfigMapUpdate).
            var causes: [FieldError] = []
            let message = "Forbidden: field is immutable when `immutable` is set"
            if new["immutable"]?.boolValue != true {
                causes.append(FieldError(reason: "FieldValueForbidden", field: "immutable", message: message))
            }
            for field in ["data", "binaryData"] where new[field] != old[field] {
                causes.append(FieldError(reason: "FieldValueForbidden", field: field, message: message))
            }
            if !causes.isEmpty { throw APIError.invalid(type, name: name, causes: causes) }
        }
        let key = objectKey(namespace: namespace, name: name)
        let finalizers = new[path: ["metadata", "finalizers"]]?.arrayValue ?? []
        if new[path: ["metadata", "deletionTimestamp"]] != nil && finalizers.isEmpty {
            return self.remove(type, key: key, object: new, limit: limit)
        }
        if new == old { return old }
        let version = self.nextVersion()
        new[path: ["metadata", "resourceVersion"]] = .string(String(version))
        self.objects[type.storageKey, default: [:]][key] = new
        self.record("MODIFIED", type: type, object: new, previous: old, limit: limit)
        self.afterWrite(type, object: new, removed: false, limit: limit)
        return new
    }

    /// Deletes an object: marks it when finalizers remain, removes it otherwise.
    mutating func delete(
        _ type: ResourceType,
        namespace: String?,
        name: String,
        cascade: Bool,
        limit: Int
    ) throws(APIError) -> JSON {
        var object = try self.get(type, namespace: namespace, name: name)
        let key = objectKey(namespace: namespace, name: name)
        let finalizers = object[path: ["metadata", "finalizers"]]?.arrayValue ?? []
        if finalizers.isEmpty {
            return self.remove(type, key: key, object: object, cascade: cascade, limit: limit)
        }
        if object[path: ["metadata", "deletionTimestamp"]] != nil { return object }
        object[path: ["metadata", "deletionTimestamp"]] = .string(Timestamps.now())
        object[path: ["metadata", "deletionGracePeriodSeconds"]] = 0
        let version = self.nextVersion()
        object[path: ["metadata", "resourceVersion"]] = .string(String(version))
        let previous = self.objects[type.storageKey]?[key]
        self.objects[type.storageKey, default: [:]][key] = object
        self.record("MODIFIED", type: type, object: object, previous: previous, limit: limit)
        return object
    }

    private mutating func remove(
        _ type: ResourceType,
        key: String,
        object input: JSON,
        cascade: Bool = true,
        limit: Int
    ) -> JSON {
        var object = input
        let version = self.nextVersion()
        object[path: ["metadata", "resourceVersion"]] = .string(String(version))
        self.objects[type.storageKey]?[key] = nil
        self.record("DELETED", type: type, object: object, limit: limit)
        self.afterWrite(type, object: object, removed: true, limit: limit)
        if cascade { self.collectGarbage(ownerUID: object[path: ["metadata", "uid"]]?.stringValue, limit: limit) }
        return object
    }

    /// Background cascading deletion: every object that names the removed owner in `ownerReferences` is deleted
    /// in turn (which respects the dependent's own finalizers).
    private mutating func collectGarbage(ownerUID: String?, limit: Int) {
        guard let ownerUID else { return }
        for type in self.allTypes {
            for (_, object) in self.objects[type.storageKey] ?? [:] {
                let owners = object[path: ["metadata", "ownerReferences"]]?.arrayValue ?? []
                guard owners.contains(where: { $0["uid"]?.stringValue == ownerUID }) else { continue }
                let name = object[path: ["metadata", "name"]]?.stringValue ?? ""
                let namespace = object[path: ["metadata", "namespace"]]?.stringValue
                _ = try? self.delete(type, namespace: namespace, name: name, cascade: true, limit: limit)
            }
        }
    }

    /// Keeps resource types in step with CRDs, and empties a deleted namespace.
    private mutating func afterWrite(_ type: ResourceType, object: JSON, removed: Bool, limit: Int) {
        let name = object[path: ["metadata", "name"]]?.stringValue ?? ""
        if type.storageKey == "apiextensions.k8s.io/customresourcedefinitions" {
            if removed {
                let defined = self.custom.removeValue(forKey: name) ?? []
                if let first = defined.first {
                    for (key, item) in self.objects[first.storageKey] ?? [:] {
                        _ = self.remove(first, key: key, object: item, cascade: false, limit: limit)
                    }
                    // The resource is gone, so are its watches (after they have seen the DELETED events).
                    for (id, watcher) in self.watchers where watcher.type.storageKey == first.storageKey {
                        watcher.continuation.finish()
                        self.watchers[id] = nil
                    }
                }
            } else if let types = try? ResourceType.fromCRD(object) {
                self.custom[name] = types
            }
        }
        if type.storageKey == "/namespaces" && removed {
            // Everything in the namespace goes, so no dependent needs looking for: owners and dependents share a
            // namespace (a namespaced owner cannot have dependents elsewhere). Cascading would scan every object
            // of the cluster once per object deleted: minutes for a namespace of thousands on a loaded machine.
            for type in self.allTypes where type.namespaced {
                for (_, item) in self.objects[type.storageKey] ?? [:]
                where item[path: ["metadata", "namespace"]]?.stringValue == name {
                    let itemName = item[path: ["metadata", "name"]]?.stringValue ?? ""
                    _ = try? self.delete(type, namespace: name, name: itemName, cascade: false, limit: limit)
                }
            }
        }
    }

    // MARK: Watch

    /// Appends to the bounded history and hands the event to every matching watcher.
    mutating func record(_ eventType: String, type: ResourceType, object: JSON, previous: JSON? = nil, limit: Int) {
        let version = Int64(object[path: ["metadata", "resourceVersion"]]?.stringValue ?? "") ?? self.resourceVersion
        let event = WatchEvent(
            type: eventType,
            storageKey: type.storageKey,
            namespace: object[path: ["metadata", "namespace"]]?.stringValue ?? "",
            resourceVersion: version,
            object: object,
            previous: previous
        )
        guard !self.dryRun else { return }
        self.history.append(event)
        // Trimmed back to the limit an eighth of it at a time: removing the first event of a full array at every
        // write moved the whole history each time.
        if self.history.count > limit + max(1, limit / 8) {
            let excess = self.history.count - limit
            self.compactedVersion = self.history[excess - 1].resourceVersion
            self.history.removeFirst(excess)
        }
        for watcher in self.watchers.values where watcher.type.storageKey == type.storageKey {
            if let translated = event.translated(for: watcher.options) {
                watcher.continuation.yield(Self.encodeEvent(translated, object, watcher: watcher))
            }
        }
    }

    static func encodeEvent(_ type: String, _ object: JSON, watcher: Store.Watcher) -> Data {
        var object = object
        object["apiVersion"] = .string(watcher.type.groupVersion)
        if watcher.asTable { object = Table.make(watcher.type, items: [object], resourceVersion: nil) }
        var line = JSON.object(["type": .string(type), "object": object]).encoded()
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// Forgets the history: every resourceVersion handed out so far becomes too old to watch from.
    mutating func compact() {
        _ = self.nextVersion()
        self.history.removeAll()
        self.compactedVersion = self.resourceVersion
    }
}
