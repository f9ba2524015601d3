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

/// The discovery documents: what kubectl and client-go read before anything else.
///
/// Only the legacy forms (`APIVersions`, `APIGroupList`, `APIResourceList`) are served. kubectl 1.32 asks for the
/// aggregated form (`as=APIGroupDiscoveryList`) first and falls back to these when the response's content type
/// says plain `application/json`.
enum Discovery {
    static let version: JSON = [
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-liverelay-test",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    ]

    static let coreVersions: JSON = [
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"]],
    ]

    static func resourceList(groupVersion: String, types: [ResourceType]) -> JSON {
        [
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": .string(groupVersion),
            "resources": .array(types.flatMap(\.discoveryEntries)),
        ]
    }

    /// The `APIGroup` of every group but the core one, versions in the order their types were defined.
    static func groups(_ types: [ResourceType]) -> [JSON] {
        var order: [String] = []
        var versions: [String: [String]] = [:]
        for type in types where !type.group.isEmpty {
            if versions[type.group] == nil { order.append(type.group) }
            if versions[type.group]?.contains(type.version) != true {
                versions[type.group, default: []].append(type.version)
            }
        }
        return order.map { group in
            let entries: [JSON] = (versions[group] ?? []).map {
                ["groupVersion": .string("\(group)/\($0)"), "version": .string($0)]
            }
            return [
                "kind": "APIGroup",
                "apiVersion": "v1",
                "name": .string(group),
                "versions": .array(entries),
                "preferredVersion": entries.first ?? [:],
            ]
        }
    }
}

/// The `meta.k8s.io/v1` `Table` form that `kubectl get` asks for, with a CRD's `additionalPrinterColumns`.
enum Table {
    static func make(_ type: ResourceType, items: [JSON], resourceVersion: Int64?) -> JSON {
        var columns: [JSON] = [
            ["name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0]
        ]
        for column in type.printerColumns {
            columns.append([
                "name": column["name"] ?? "", "type": column["type"] ?? "string", "format": column["format"] ?? "",
                "description": column["description"] ?? "", "priority": column["priority"] ?? 0,
            ])
        }
        let hasAge = type.printerColumns.contains { $0["jsonPath"]?.stringValue == ".metadata.creationTimestamp" }
        if !hasAge {
            columns.append(["name": "Age", "type": "date", "format": "", "description": "Age", "priority": 0])
        }
        let rows: [JSON] = items.map { item in
            var cells: [JSON] = [item[path: ["metadata", "name"]] ?? ""]
            for column in type.printerColumns {
                let path = column["jsonPath"]?.stringValue ?? ""
                let value = evaluate(path, in: item) ?? .null
                if path == ".metadata.creationTimestamp" || column["type"]?.stringValue == "date" {
                    cells.append(.string(age(value.stringValue)))
                } else {
                    cells.append(value)
                }
            }
            if !hasAge { cells.append(.string(age(item[path: ["metadata", "creationTimestamp"]]?.stringValue))) }
            var metadata = item["metadata"] ?? [:]
            metadata["managedFields"] = nil
            return [
                "cells": .array(cells),
                "object": ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata],
            ]
        }
        var metadata: JSON = [:]
        if let resourceVersion { metadata["resourceVersion"] = .string(String(resourceVersion)) }
        return [
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "columnDefinitions": .array(columns),
            "rows": .array(rows),
        ]
    }

    /// The subset of JSONPath printer columns use: `.a.b`, `.a[0]`, and `.conditions[?(@.type=="Ready")].status`.
    static func evaluate(_ path: String, in object: JSON) -> JSON? {
        var current: JSON? = object
        var remaining = Substring(path)
        while !remaining.isEmpty, let value = current {
            if remaining.hasPrefix(".") {
                remaining = remaining.dropFirst()
                let end = remaining.firstIndex { $0 == "." || $0 == "[" } ?? remaining.endIndex
                current = value[String(remaining[..<end])]
                remaining = remaining[end...]
            } else if remaining.hasPrefix("[") {
                guard let close = remaining.firstIndex(of: "]") else { return nil }
                let inner = remaining[remaining.index(after: remaining.startIndex)..<close]
                remaining = remaining[remaining.index(after: close)...]
                if let index = Int(inner) {
                    current = value.arrayValue.flatMap { $0.indices.contains(index) ? $0[index] : nil }
                } else if inner.hasPrefix("?(@."), inner.hasSuffix(")") {
                    let condition = inner.dropFirst(4).dropLast()
                    let parts = condition.components(separatedBy: "==")
                    guard parts.count == 2 else { return nil }
                    let key = parts[0].trimmingCharacters(in: .whitespaces)
                    let expected = parts[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(
                        in: CharacterSet(charactersIn: "\"'")
                    )
                    current = value.arrayValue?.first { $0[key]?.stringValue == expected }
                } else {
                    return nil
                }
            } else {
                return nil
            }
        }
        return current
    }

    /// kubectl's short age form: `42s`, `5m`, `3h`, `2d`.
    static func age(_ timestamp: String?) -> String {
        guard let timestamp, let date = ISO8601DateFormatter().date(from: timestamp) else { return "<unknown>" }
        let seconds = max(0, Int(Date().timeIntervalSince(date)))
        if seconds < 120 { return "\(seconds)s" }
        if seconds < 7200 { return "\(seconds / 60)m" }
        if seconds < 172_800 { return "\(seconds / 3600)h" }
        return "\(seconds / 86400)d"
    }
}

/// Just enough OpenAPI v3 for kubectl.
///
/// kubectl validates what it sends (`--validate=strict`, the default) by asking the server to: it looks in the
/// group-version's OpenAPI v3 document for the `PATCH` operation of the kind and checks that it takes a
/// `fieldValidation` query parameter. Without the document kubectl refuses to apply anything; with it, kubectl
/// sends `fieldValidation=Strict` and leaves validation to the server. No schemas are served, so `kubectl explain`
/// does not work.
enum OpenAPI {
    static func root(_ types: [ResourceType]) -> JSON {
        var paths: [String: JSON] = [:]
        for type in types {
            let key = type.group.isEmpty ? "api/\(type.version)" : "apis/\(type.group)/\(type.version)"
            paths[key] = ["serverRelativeURL": .string("/openapi/v3/\(key)")]
        }
        return ["paths": .object(paths)]
    }

    static func groupVersion(_ types: [ResourceType]) -> JSON {
        var paths: [String: JSON] = [:]
        for type in types {
            let prefix = type.group.isEmpty ? "/api/\(type.version)" : "/apis/\(type.group)/\(type.version)"
            let collection =
                type.namespaced ? "\(prefix)/namespaces/{namespace}/\(type.plural)" : "\(prefix)/\(type.plural)"
            let gvk: JSON = [
                "group": .string(type.group), "version": .string(type.version), "kind": .string(type.kind),
            ]
            let parameters: JSON = [
                ["name": "fieldValidation", "in": "query", "schema": ["type": "string"]],
                ["name": "fieldManager", "in": "query", "schema": ["type": "string"]],
                ["name": "dryRun", "in": "query", "schema": ["type": "string"]],
            ]
            let operation: JSON = [
                "x-kubernetes-group-version-kind": gvk,
                "x-kubernetes-action": "patch",
                "parameters": parameters,
                "responses": ["200": ["description": "OK"]],
            ]
            paths["\(collection)/{name}"] = ["patch": operation]
        }
        return [
            "openapi": "3.0.0",
            "info": ["title": "Kubernetes", "version": "v1.32.0"],
            "paths": .object(paths),
            "components": ["schemas": [:]],
        ]
    }
}
