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

extension Store.State {
    /// PUT: replaces the object, or only its status or its replicas for the subresources.
    mutating func update(
        _ type: ResourceType,
        namespace: String?,
        name: String,
        body: JSON,
        subresource: Subresource?,
        limit: Int,
        requireResourceVersion: Bool = false,
        manager: String? = nil
    ) throws(APIError) -> JSON {
        let old = try self.get(type, namespace: namespace, name: name)
        // Custom resources do not allow unconditional updates; most built-in kinds do.
        if requireResourceVersion, type.schema != nil,
            (body[path: ["metadata", "resourceVersion"]]?.stringValue ?? "").isEmpty
        {
            throw APIError.invalid(
                type,
                name: name,
                causes: [.invalid("metadata.resourceVersion", .int(0), "must be specified for an update")]
            )
        }
        if let version = body[path: ["metadata", "resourceVersion"]]?.stringValue, !version.isEmpty,
            version != old[path: ["metadata", "resourceVersion"]]?.stringValue
        {
            throw APIError.conflict(type, name: name)
        }
        if let bodyName = body[path: ["metadata", "name"]]?.stringValue, !bodyName.isEmpty, bodyName != name {
            throw APIError.badRequest(
                "the name of the object (\(bodyName)) does not match the name on the URL (\(name))"
            )
        }
        let new = try Self.combine(type, old: old, changed: body, subresource: subresource)
        return try self.commitUpdate(
            type,
            old: old,
            new: new,
            limit: limit,
            ownership: manager.map { .update(manager: $0) },
            subresource: subresource
        )
    }

    /// What a write through the main resource or a subresource leaves: the main resource keeps the stored status
    /// (when the type has a status subresource), `/status` changes only the status, `/scale` only the replicas.
    static func combine(
        _ type: ResourceType,
        old: JSON,
        changed: JSON,
        subresource: Subresource?
    ) throws(APIError) -> JSON {
        switch subresource {
        case nil:
            var new = changed
            if type.hasStatus { new["status"] = old["status"] }
            return new
        case .status:
            var new = old
            new["status"] = changed["status"]
            return new
        case .scale:
            guard let paths = type.scale else { throw APIError.badRequest("no scale subresource") }
            guard let replicas = changed[path: ["spec", "replicas"]]?.intValue else {
                throw APIError.badRequest("the Scale needs spec.replicas as an integer")
            }
            var new = old
            new[path: paths.specReplicas] = .int(replicas)
            return new
        }
    }

    /// PATCH in any of the four patch formats; an apply patch creates the object when it is absent.
    mutating func patch(
        _ type: ResourceType,
        namespace: String?,
        name: String,
        body: Data,
        contentType: String,
        subresource: Subresource?,
        fieldManager: String?,
        userAgentManager: String = "",
        force: Bool? = nil,
        limit: Int
    ) throws(APIError) -> (JSON, created: Bool) {
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        // Custom resources have no Go struct to read patch strategies from: no strategic merge patch for them.
        var accepted = ["application/json-patch+json", "application/merge-patch+json"]
        if type.schema == nil { accepted.append("application/strategic-merge-patch+json") }
        accepted.append("application/apply-patch+yaml")
        guard accepted.contains(mediaType) else { throw APIError.unsupportedMediaType(accepted: accepted) }
        if mediaType == "application/apply-patch+yaml" {
            // `ValidatePatchOptions`: an apply names its manager.
            guard let fieldManager, !fieldManager.isEmpty else {
                throw APIError.invalidOptions(
                    "PatchOptions",
                    causes: [
                        FieldError(
                            reason: "FieldValueRequired",
                            field: "fieldManager",
                            message: "Required value: is required for apply patch"
                        )
                    ]
                )
            }
            return try self.apply(
                type,
                namespace: namespace,
                name: name,
                applied: try parse(body, contentType: "yaml"),
                subresource: subresource,
                fieldManager: fieldManager,
                force: force ?? false,
                limit: limit
            )
        }
        if force != nil {
            throw APIError.invalidOptions(
                "PatchOptions",
                causes: [
                    FieldError(
                        reason: "FieldValueForbidden",
                        field: "force",
                        message: "Forbidden: may not be specified for non-apply patch"
                    )
                ]
            )
        }
        let old = try self.get(type, namespace: namespace, name: name)
        let patch = try parse(body, contentType: "application/json")
        let base = subresource == .scale ? Scale.make(from: old, type: type) : old
        let patched: JSON
        switch mediaType {
        case "application/merge-patch+json", "application/strategic-merge-patch+json":
            patched = Patch.merge(base, patch)
        case "application/json-patch+json":
            patched = try Patch.json(base, patch)
        default:
            throw APIError.unsupportedMediaType(accepted: accepted)
        }
        if let version = patched[path: ["metadata", "resourceVersion"]]?.stringValue,
            version != base[path: ["metadata", "resourceVersion"]]?.stringValue
        {
            throw APIError.conflict(type, name: name)
        }
        let new = try Self.combine(type, old: old, changed: patched, subresource: subresource)
        let updated = try self.commitUpdate(
            type,
            old: old,
            new: new,
            limit: limit,
            ownership: .update(manager: fieldManager ?? userAgentManager),
            subresource: subresource
        )
        return (updated, false)
    }

    /// Server-side apply (see ``FieldManager``): creates the object when it is absent, else merges the
    /// configuration into it with field ownership and conflicts.
    private mutating func apply(
        _ type: ResourceType,
        namespace: String?,
        name: String,
        applied: JSON,
        subresource: Subresource?,
        fieldManager: String,
        force: Bool,
        limit: Int
    ) throws(APIError) -> (JSON, created: Bool) {
        guard case .object = applied else { throw APIError.badRequest("the applied configuration must be an object") }
        if let appliedName = applied[path: ["metadata", "name"]]?.stringValue, appliedName != name {
            throw APIError.badRequest(
                "the name of the object (\(appliedName)) does not match the name on the URL (\(name))"
            )
        }
        if applied[path: ["metadata", "managedFields"]] != nil {
            throw APIError.badRequest("metadata.managedFields must be nil")
        }
        guard let old = try? self.get(type, namespace: namespace, name: name) else {
            guard subresource == nil else { throw APIError.notFound(type, name: name) }
            var result = try FieldManager.apply(
                type,
                live: nil,
                configuration: applied,
                manager: fieldManager,
                subresource: nil,
                force: force
            )
            result.object[path: ["metadata", "name"]] = .string(name)
            let created = try self.create(
                type,
                namespace: namespace,
                object: result.object,
                limit: limit,
                ownership: .apply(result.entries)
            )
            return (created, true)
        }
        if let version = applied[path: ["metadata", "resourceVersion"]]?.stringValue,
            version != old[path: ["metadata", "resourceVersion"]]?.stringValue
        {
            throw APIError.conflict(type, name: name)
        }
        let result = try FieldManager.apply(
            type,
            live: old,
            configuration: applied,
            manager: fieldManager,
            subresource: subresource,
            force: force
        )
        let new = try Self.combine(type, old: old, changed: result.object, subresource: subresource)
        let updated = try self.commitUpdate(
            type,
            old: old,
            new: new,
            limit: limit,
            ownership: .apply(result.entries),
            subresource: subresource
        )
        return (updated, false)
    }
}

/// The `autoscaling/v1` `Scale` view of an object with a scale subresource.
enum Scale {
    static func make(from object: JSON, type: ResourceType) -> JSON {
        let paths =
            type.scale
            ?? ResourceType.ScalePaths(
                specReplicas: ["spec", "replicas"],
                statusReplicas: ["status", "replicas"]
            )
        var metadata: JSON = [:]
        for field in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
            metadata[field] = object[path: ["metadata", field]]
        }
        var status: JSON = ["replicas": .int(object[path: paths.statusReplicas]?.intValue ?? 0)]
        if let selectorPath = paths.labelSelector, let selector = object[path: selectorPath]?.stringValue {
            status["selector"] = .string(selector)
        } else if let labels = object[path: ["spec", "selector", "matchLabels"]]?.objectValue {
            status["selector"] = .string(
                labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.stringValue ?? "")" }.joined(
                    separator: ","
                )
            )
        }
        return [
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": metadata,
            "spec": ["replicas": .int(object[path: paths.specReplicas]?.intValue ?? 0)],
            "status": status,
        ]
    }
}

extension ResourceType.ScalePaths {
    init(specReplicas: [String], statusReplicas: [String]) {
        self.init(specReplicas: specReplicas, statusReplicas: statusReplicas, labelSelector: nil)
    }
}
