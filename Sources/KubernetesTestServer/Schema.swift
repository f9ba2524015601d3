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

/// Structural-schema processing of custom objects, in the order the API server applies it: prune unknown fields and
/// non-nullable nulls, apply `default`s, then validate.
///
/// Pruning matters as much as validation: a controller that writes a field its CRD does not declare must see the
/// field vanish here as it would on a real cluster, or the bug only shows in production. What is not implemented:
/// CEL rules (`x-kubernetes-validations`), `format`, `multipleOf`, list-type uniqueness, and pruning inside
/// `anyOf`/`oneOf`/`allOf` branches (those are validated only).
enum Schema {
    /// Returns the pruned and defaulted object, every validation failure, and the paths of the unknown fields
    /// that were pruned (which `fieldValidation=Strict` turns into an error).
    static func process(_ object: JSON, schema: JSON) -> (JSON, [FieldError], pruned: [String]) {
        var errors: [FieldError] = []
        var pruned: [String] = []
        let result = walk(object, schema: schema, path: "", isRoot: true, errors: &errors, pruned: &pruned)
        return (result, errors, pruned.sorted())
    }

    private static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    private static func walk(
        _ value: JSON,
        schema: JSON,
        path: String,
        isRoot: Bool = false,
        errors: inout [FieldError],
        pruned: inout [String]
    ) -> JSON {
        let intOrString = schema["x-kubernetes-int-or-string"]?.boolValue == true
        let type = schema["type"]?.stringValue
        var result = value

        if intOrString {
            switch value {
            case .int, .string: break
            case .double(let number) where number == number.rounded(): break
            default: errors.append(.typeInvalid(path, value, expected: "integer or string"))
            }
        } else if let type, !matches(value, type: type) {
            errors.append(.typeInvalid(path, value, expected: type))
            return value
        }

        switch value {
        case .object(let object):
            let embedded = isRoot || schema["x-kubernetes-embedded-resource"]?.boolValue == true
            result = .object(walkObject(object, schema: schema, path: path, embedded: embedded, &errors, &pruned))
        case .array(let items):
            result = walkArray(items, schema: schema, path: path, &errors, &pruned) ?? value
        case .string(let string):
            errors += checkString(string, schema: schema, path: path)
        case .int(let int):
            errors += checkNumber(Double(int), value, schema: schema, path: path)
        case .double(let double):
            errors += checkNumber(double, value, schema: schema, path: path)
        default:
            break
        }

        if let options = schema["enum"]?.arrayValue, !options.contains(result) {
            errors.append(.notSupported(path, result, supported: options))
        }
        for branch in schema["allOf"]?.arrayValue ?? [] {
            _ = walk(value, schema: branch, path: path, errors: &errors, pruned: &pruned)
        }
        if let branches = schema["anyOf"]?.arrayValue, !branches.isEmpty {
            let passing = branches.filter { validates(value, $0, path) }.count
            if passing == 0 {
                errors.append(.invalid(path, value, "\(path) in body must match at least one schema in anyOf"))
            }
        }
        if let branches = schema["oneOf"]?.arrayValue, !branches.isEmpty {
            let passing = branches.filter { validates(value, $0, path) }.count
            if passing != 1 {
                errors.append(.invalid(path, value, "\(path) in body must match exactly one schema in oneOf"))
            }
        }
        return result
    }

    /// An object's fields: each known one walked with its schema, unknown ones kept (preserved or additional) or
    /// pruned, defaults filled in, required ones checked. `apiVersion`, `kind` and `metadata` of a resource (the
    /// root or an embedded one) pass as they are.
    private static func walkObject(
        _ object: [String: JSON],
        schema: JSON,
        path: String,
        embedded: Bool,
        _ errors: inout [FieldError],
        _ pruned: inout [String]
    ) -> [String: JSON] {
        let properties = schema["properties"]?.objectValue ?? [:]
        let additional = schema["additionalProperties"]
        let preserveUnknown = schema["x-kubernetes-preserve-unknown-fields"]?.boolValue == true
        var kept: [String: JSON] = [:]
        for (key, child) in object {
            let childPath = join(path, key)
            if embedded && ["apiVersion", "kind", "metadata"].contains(key) {
                kept[key] = child
                continue
            }
            let childSchema = properties[key] ?? (additional?.objectValue != nil ? additional : nil)
            if let childSchema {
                if child == .null && childSchema["nullable"]?.boolValue != true {
                    // The API server drops nulls of non-nullable fields before defaulting.
                    continue
                }
                kept[key] = walk(child, schema: childSchema, path: childPath, errors: &errors, pruned: &pruned)
            } else if preserveUnknown || additional?.boolValue == true {
                kept[key] = child
            } else {
                // Anything else is an unknown field: pruned silently unless validation is strict.
                pruned.append(childPath)
            }
        }
        for (key, property) in properties where kept[key] == nil {
            if let defaultValue = property["default"] {
                kept[key] = walk(
                    defaultValue,
                    schema: property,
                    path: join(path, key),
                    errors: &errors,
                    pruned: &pruned
                )
            }
        }
        for required in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where kept[required] == nil {
            errors.append(.required(join(path, required)))
        }
        return kept
    }

    /// An array's items walked with `items` (`nil`: no item schema, the array as it was), and its length checked.
    private static func walkArray(
        _ items: [JSON],
        schema: JSON,
        path: String,
        _ errors: inout [FieldError],
        _ pruned: inout [String]
    ) -> JSON? {
        var result: JSON?
        if let itemSchema = schema["items"] {
            result = .array(
                items.enumerated().map { index, item in
                    walk(item, schema: itemSchema, path: "\(path)[\(index)]", errors: &errors, pruned: &pruned)
                }
            )
        }
        if let minItems = schema["minItems"]?.intValue, items.count < minItems {
            errors.append(.invalid(path, .array(items), "\(path) in body should have at least \(minItems) items"))
        }
        if let maxItems = schema["maxItems"]?.intValue, items.count > maxItems {
            errors.append(.invalid(path, .array(items), "\(path) in body should have at most \(maxItems) items"))
        }
        return result
    }

    private static func checkString(_ string: String, schema: JSON, path: String) -> [FieldError] {
        var errors: [FieldError] = []
        let value = JSON.string(string)
        if let minLength = schema["minLength"]?.intValue, string.count < minLength {
            errors.append(.invalid(path, value, "\(path) in body should be at least \(minLength) chars long"))
        }
        if let maxLength = schema["maxLength"]?.intValue, string.count > maxLength {
            errors.append(
                FieldError(
                    reason: "FieldValueTooLong",
                    field: path,
                    message: "Too long: may not be more than \(maxLength) bytes"
                )
            )
        }
        if let pattern = schema["pattern"]?.stringValue,
            let regex = try? NSRegularExpression(pattern: pattern),
            regex.firstMatch(in: string, range: NSRange(string.startIndex..., in: string)) == nil
        {
            errors.append(.invalid(path, value, "\(path) in body should match '\(pattern)'"))
        }
        return errors
    }

    private static func checkNumber(_ number: Double, _ value: JSON, schema: JSON, path: String) -> [FieldError] {
        var errors: [FieldError] = []
        if let minimum = numeric(schema["minimum"]) {
            let exclusive = schema["exclusiveMinimum"]?.boolValue == true
            if exclusive ? number <= minimum : number < minimum {
                let relation = exclusive ? "greater than" : "greater than or equal to"
                errors.append(.invalid(path, value, "\(path) in body should be \(relation) \(render(minimum))"))
            }
        }
        if let maximum = numeric(schema["maximum"]) {
            let exclusive = schema["exclusiveMaximum"]?.boolValue == true
            if exclusive ? number >= maximum : number > maximum {
                let relation = exclusive ? "less than" : "less than or equal to"
                errors.append(.invalid(path, value, "\(path) in body should be \(relation) \(render(maximum))"))
            }
        }
        return errors
    }

    private static func validates(_ value: JSON, _ schema: JSON, _ path: String) -> Bool {
        var errors: [FieldError] = []
        var pruned: [String] = []
        _ = walk(value, schema: schema, path: path, errors: &errors, pruned: &pruned)
        return errors.isEmpty
    }

    private static func matches(_ value: JSON, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool): true
        case ("integer", .int): true
        case ("integer", .double(let number)): number == number.rounded()
        case ("number", .int), ("number", .double): true
        case (_, .null): true  // Reached only for nullable fields; the parent drops the others.
        default: false
        }
    }

    private static func numeric(_ value: JSON?) -> Double? {
        switch value {
        case .int(let int): Double(int)
        case .double(let double): double
        default: nil
        }
    }

    private static func render(_ number: Double) -> String {
        number == number.rounded() ? String(Int64(number)) : String(number)
    }
}
