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

/// The patch formats the API accepts.
enum Patch {
    /// RFC 7386 JSON merge patch: objects merge key by key, `null` deletes, everything else replaces.
    ///
    /// `application/strategic-merge-patch+json` is applied with this too. The difference is in lists: strategic
    /// merge merges lists of objects by a key (containers by `name`) where merge patch replaces the list. Controllers
    /// in this project send merge or apply patches, and kubectl only uses strategic merge for client-side `apply`,
    /// `edit` and `scale` on built-in types, where replacing the list gives the same result for single-writer tests.
    static func merge(_ target: JSON, _ patch: JSON) -> JSON {
        guard case .object(let patchObject) = patch else { return patch }
        var result = target.objectValue ?? [:]
        for (key, value) in patchObject {
            if value == .null {
                result[key] = nil
            } else {
                result[key] = merge(result[key] ?? .null, value)
            }
        }
        return .object(result)
    }

    /// RFC 6902 JSON patch: `add`, `remove`, `replace`, `move`, `copy` and `test`.
    static func json(_ target: JSON, _ operations: JSON) throws(APIError) -> JSON {
        guard let operations = operations.arrayValue else {
            throw APIError.badRequest("a JSON patch must be an array of operations")
        }
        var document = target
        for operation in operations {
            guard let op = operation["op"]?.stringValue, let path = operation["path"]?.stringValue else {
                throw APIError.badRequest("a JSON patch operation needs op and path")
            }
            let pointer = try parsePointer(path)
            switch op {
            case "add":
                document = try add(document, pointer[...], operation["value"] ?? .null)
            case "remove":
                document = try remove(document, pointer[...])
            case "replace":
                document = try remove(document, pointer[...])
                document = try add(document, pointer[...], operation["value"] ?? .null)
            case "move", "copy":
                guard let from = operation["from"]?.stringValue else {
                    throw APIError.badRequest("\(op) needs from")
                }
                let fromPointer = try parsePointer(from)
                guard let value = get(document, fromPointer[...]) else {
                    throw APIError.badRequest("\(op): no value at \(from)")
                }
                if op == "move" { document = try remove(document, fromPointer[...]) }
                document = try add(document, pointer[...], value)
            case "test":
                guard get(document, pointer[...]) == (operation["value"] ?? .null) else {
                    throw APIError(code: 422, reason: "Invalid", message: "the test operation at \(path) failed")
                }
            default:
                throw APIError.badRequest("unknown JSON patch operation \(op)")
            }
        }
        return document
    }

    private static func parsePointer(_ pointer: String) throws(APIError) -> [String] {
        if pointer.isEmpty { return [] }
        guard pointer.hasPrefix("/") else { throw APIError.badRequest("invalid JSON pointer \(pointer)") }
        return pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    private static func get(_ document: JSON, _ pointer: ArraySlice<String>) -> JSON? {
        guard let first = pointer.first else { return document }
        switch document {
        case .object(let object): return object[first].flatMap { get($0, pointer.dropFirst()) }
        case .array(let array):
            guard let index = Int(first), array.indices.contains(index) else { return nil }
            return get(array[index], pointer.dropFirst())
        default: return nil
        }
    }

    private static func add(_ document: JSON, _ pointer: ArraySlice<String>, _ value: JSON) throws(APIError) -> JSON {
        guard let first = pointer.first else { return value }
        let rest = pointer.dropFirst()
        switch document {
        case .object(var object):
            if rest.isEmpty {
                object[first] = value
            } else {
                guard let child = object[first] else { throw APIError.badRequest("no value at /\(first)") }
                object[first] = try add(child, rest, value)
            }
            return .object(object)
        case .array(var array):
            if rest.isEmpty {
                if first == "-" {
                    array.append(value)
                } else if let index = Int(first), index >= 0, index <= array.count {
                    array.insert(value, at: index)
                } else {
                    throw APIError.badRequest("array index \(first) out of range")
                }
            } else {
                guard let index = Int(first), array.indices.contains(index) else {
                    throw APIError.badRequest("array index \(first) out of range")
                }
                array[index] = try add(array[index], rest, value)
            }
            return .array(array)
        default:
            throw APIError.badRequest("cannot add below a scalar at \(first)")
        }
    }

    private static func remove(_ document: JSON, _ pointer: ArraySlice<String>) throws(APIError) -> JSON {
        guard let first = pointer.first else { return .null }
        let rest = pointer.dropFirst()
        switch document {
        case .object(var object):
            guard let child = object[first] else { throw APIError.badRequest("no value at \(first) to remove") }
            object[first] = rest.isEmpty ? nil : try remove(child, rest)
            return .object(object)
        case .array(var array):
            guard let index = Int(first), array.indices.contains(index) else {
                throw APIError.badRequest("array index \(first) out of range")
            }
            if rest.isEmpty {
                array.remove(at: index)
            } else {
                array[index] = try remove(array[index], rest)
            }
            return .array(array)
        default:
            throw APIError.badRequest("cannot remove below a scalar at \(first)")
        }
    }
}

/// A parsed `labelSelector`: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-separated.
struct LabelSelector: Sendable {
    enum Requirement: Sendable {
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case notExists(String)
    }

    var requirements: [Requirement] = []

    init(_ text: String) throws(APIError) {
        // Split on commas that are not inside parentheses.
        var parts: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if character == "," && depth == 0 {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        for part in parts.map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            self.requirements.append(try Self.parse(part))
        }
    }

    private static func parse(_ part: String) throws(APIError) -> Requirement {
        if let range = part.range(of: "!=") {
            return .notEquals(trim(part[..<range.lowerBound]), trim(part[range.upperBound...]))
        }
        if let range = part.range(of: "==") {
            return .equals(trim(part[..<range.lowerBound]), trim(part[range.upperBound...]))
        }
        if let range = part.range(of: "=") {
            return .equals(trim(part[..<range.lowerBound]), trim(part[range.upperBound...]))
        }
        for (word, isIn) in [(" notin ", false), (" in ", true)] {
            if let range = part.range(of: word) {
                let key = trim(part[..<range.lowerBound])
                var values = trim(part[range.upperBound...])
                guard values.hasPrefix("("), values.hasSuffix(")") else {
                    throw APIError.badRequest("unable to parse requirement: \(part)")
                }
                values = String(values.dropFirst().dropLast())
                let set = Set(values.split(separator: ",").map { trim($0) })
                return isIn ? .isIn(key, set) : .notIn(key, set)
            }
        }
        if part.hasPrefix("!") { return .notExists(trim(part.dropFirst())) }
        guard !part.contains(" ") else { throw APIError.badRequest("unable to parse requirement: \(part)") }
        return .exists(part)
    }

    private static func trim(_ text: Substring) -> String {
        text.trimmingCharacters(in: .whitespaces)
    }

    func matches(_ labels: [String: String]) -> Bool {
        self.requirements.allSatisfy { requirement in
            switch requirement {
            case .equals(let key, let value): labels[key] == value
            case .notEquals(let key, let value): labels[key] != value
            case .isIn(let key, let values): labels[key].map(values.contains) ?? false
            case .notIn(let key, let values): labels[key].map { !values.contains($0) } ?? true
            case .exists(let key): labels[key] != nil
            case .notExists(let key): labels[key] == nil
            }
        }
    }
}

/// A parsed `fieldSelector`: `metadata.name` and `metadata.namespace` with `=`, `==` or `!=`.
struct FieldSelector: Sendable {
    var requirements: [(path: [String], value: String, equal: Bool)] = []

    init(_ text: String) throws(APIError) {
        for part in text.split(separator: ",") {
            let part = String(part)
            let equal = !part.contains("!=")
            let pieces = part.components(separatedBy: equal ? (part.contains("==") ? "==" : "=") : "!=")
            guard pieces.count == 2 else { throw APIError.badRequest("invalid field selector: \(part)") }
            self.requirements.append((jsonPath(pieces[0]), pieces[1], equal))
        }
    }

    func matches(_ object: JSON) -> Bool {
        self.requirements.allSatisfy { requirement in
            let value = object[path: requirement.path]?.stringValue ?? ""
            return (value == requirement.value) == requirement.equal
        }
    }
}
