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

/// One step of a path into an object, as structured-merge-diff names it (`sigs.k8s.io/structured-merge-diff`,
/// `fieldpath/element.go`): a field of a map or struct, an item of an associative list by its key fields, an item
/// of a set by its value, or an item of an atomic list by its index.
enum PathElement: Hashable, Sendable, Comparable {
    case field(String)
    case key([String: JSON])
    case value(JSON)
    case index(Int)

    /// The element as a key of a `fieldsV1` object: `f:name`, `k:{"name":"relay"}`, `v:"finalizer"`, `i:0`.
    var fieldsV1Key: String {
        switch self {
        case .field(let name): "f:\(name)"
        case .key(let fields): "k:\(String(decoding: JSON.object(fields).encoded(), as: UTF8.self))"
        case .value(let value): "v:\(String(decoding: value.encoded(), as: UTF8.self))"
        case .index(let index): "i:\(index)"
        }
    }

    /// Parses a `fieldsV1` key; `nil` for anything else (including `.`, the member marker).
    init?(fieldsV1Key key: String) {
        let body = String(key.dropFirst(2))
        switch key.prefix(2) {
        case "f:":
            self = .field(body)
        case "k:":
            guard let fields = (try? JSON(data: Data(body.utf8)))?.objectValue else { return nil }
            self = .key(fields)
        case "v:":
            guard let value = try? JSON(data: Data(body.utf8)) else { return nil }
            self = .value(value)
        case "i:":
            guard let index = Int(body) else { return nil }
            self = .index(index)
        default:
            return nil
        }
    }

    /// The element as `fieldpath.Path.String()` writes it in conflict messages: `.replicas`,
    /// `[containerPort=80,protocol="TCP"]`, `[="finalizer"]`, `[0]`.
    var pathString: String {
        switch self {
        case .field(let name): return ".\(name)"
        case .key(let fields):
            return "[" + fields.map { "\($0.key)=\(Self.goValue($0.value))" }.sorted().joined(separator: ",") + "]"
        case .value(let value): return "[=\(Self.goValue(value))]"
        case .index(let index): return "[\(index)]"
        }
    }

    /// `value.ToString`: strings quoted, numbers and booleans bare.
    private static func goValue(_ value: JSON) -> String {
        String(decoding: value.encoded(), as: UTF8.self)
    }

    /// The order `fieldpath.PathElement.Less` gives: fields, then keys, then values, then indexes.
    static func < (left: PathElement, right: PathElement) -> Bool {
        func rank(_ element: PathElement) -> Int {
            switch element {
            case .field: 0
            case .key: 1
            case .value: 2
            case .index: 3
            }
        }
        if rank(left) != rank(right) { return rank(left) < rank(right) }
        if case .index(let a) = left, case .index(let b) = right { return a < b }
        return left.fieldsV1Key < right.fieldsV1Key
    }
}

/// A path from the root of an object.
typealias FieldPath = [PathElement]

extension Array where Element == PathElement {
    /// `.spec.template.spec.containers[name="relay"].image`, as conflict messages write a path.
    var pathString: String { self.map(\.pathString).joined() }

    func hasPrefix(_ prefix: FieldPath) -> Bool {
        self.count >= prefix.count && Array(self.prefix(prefix.count)) == prefix
    }

    static func precedes(_ left: FieldPath, _ right: FieldPath) -> Bool {
        for (a, b) in zip(left, right) where a != b { return a < b }
        return left.count < right.count
    }
}

/// The set of fields one manager owns: the paths that are members of the set.
///
/// A flat `Set` of paths: the operations field management needs are union, difference, intersection and "does this
/// manager own anything at or below this path", all cheap at the sizes objects have. The tree shape exists only in
/// the `fieldsV1` encoding.
struct FieldSet: Hashable, Sendable {
    var paths: Set<FieldPath> = []

    init(_ paths: Set<FieldPath> = []) {
        self.paths = paths
    }

    var isEmpty: Bool { self.paths.isEmpty }

    func contains(_ path: FieldPath) -> Bool { self.paths.contains(path) }

    /// Whether `path` or anything below it is a member.
    func containsPrefixed(by path: FieldPath) -> Bool {
        self.paths.contains { $0.hasPrefix(path) }
    }

    mutating func insert(_ path: FieldPath) { self.paths.insert(path) }

    func union(_ other: FieldSet) -> FieldSet { FieldSet(self.paths.union(other.paths)) }
    func subtracting(_ other: FieldSet) -> FieldSet { FieldSet(self.paths.subtracting(other.paths)) }
    func intersection(_ other: FieldSet) -> FieldSet { FieldSet(self.paths.intersection(other.paths)) }
    func filter(_ isIncluded: (FieldPath) -> Bool) -> FieldSet { FieldSet(self.paths.filter(isIncluded)) }

    /// The members in the order structured-merge-diff iterates a set.
    var sorted: [FieldPath] { self.paths.sorted(by: FieldPath.precedes) }

    // MARK: fieldsV1

    /// The `fieldsV1` tree: every member path spelled out key by key; a member with members below it carries `.`.
    var fieldsV1: JSON {
        final class Node {
            var member = false
            var children: [PathElement: Node] = [:]
        }
        let root = Node()
        for path in self.paths {
            var node = root
            for element in path {
                if let child = node.children[element] {
                    node = child
                } else {
                    let child = Node()
                    node.children[element] = child
                    node = child
                }
            }
            node.member = true
        }
        func encode(_ node: Node) -> JSON {
            var object: [String: JSON] = [:]
            if node.member && !node.children.isEmpty { object["."] = [:] }
            for (element, child) in node.children { object[element.fieldsV1Key] = encode(child) }
            return .object(object)
        }
        return encode(root)
    }

    /// Reads a `fieldsV1` tree; `nil` when it is not one.
    init?(fieldsV1 json: JSON) {
        guard case .object = json else { return nil }
        var paths: Set<FieldPath> = []
        func decode(_ json: JSON, at path: FieldPath) -> Bool {
            guard let object = json.objectValue else { return false }
            if object.isEmpty, !path.isEmpty {
                paths.insert(path)
                return true
            }
            for (key, child) in object {
                if key == "." {
                    paths.insert(path)
                    continue
                }
                guard let element = PathElement(fieldsV1Key: key), decode(child, at: path + [element]) else {
                    return false
                }
            }
            return true
        }
        guard decode(json, at: []) else { return nil }
        self.paths = paths
    }
}
