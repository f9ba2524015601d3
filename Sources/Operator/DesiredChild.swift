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
import KubernetesClient

/// A child as the operator wants it, and the test of whether an observed object already is that: so a reconcile
/// that finds nothing changed writes nothing.
///
/// An object the API server returns is never equal to what was applied (it adds defaults, status, metadata), so the
/// test is containment: every field the operator sets has that value in the observed object, and lists have the
/// same length. That finds a child deleted or edited by hand. It cannot find a field the operator *stopped* setting
/// (a server-side apply removes those: the paused-replicas annotation of a resumed stream, say), so each child also
/// carries the hash of the whole desired object in an annotation, and a different hash means apply again.
struct DesiredChild: Sendable {
    /// The annotation holding ``hash``.
    static let hashAnnotation = "liverelay.io/applied-hash"

    let resource: KubernetesResource
    let name: String
    let namespace: String
    /// FNV-1a (64 bit) of the canonical JSON of the desired object, without the annotation: a change detector, not
    /// a security measure.
    let hash: String
    /// The desired object, with the hash annotation: the body of the apply.
    let object: JSONValue

    init(_ resource: KubernetesResource, _ object: JSONValue) {
        self.resource = resource
        self.name = object["metadata"]?["name"]?.stringValue ?? ""
        self.namespace = object["metadata"]?["namespace"]?.stringValue ?? ""
        let hash = Self.fingerprint(object)
        self.hash = hash
        var annotated = object
        var annotations = object["metadata"]?["annotations"] ?? [:]
        annotations[Self.hashAnnotation] = .string(hash)
        annotated["metadata"]?["annotations"] = annotations
        self.object = annotated
    }

    /// Whether `observed` is this child as desired: same hash, and every desired field there.
    func isSatisfied(by observed: KubernetesObject) -> Bool {
        guard observed.metadata.annotations?[Self.hashAnnotation] == self.hash else { return false }
        return Self.contains(observed, self.object)
    }

    static func fingerprint(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data()
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Whether `observed` holds every field of `desired` (both whole objects).
    static func contains(_ observed: KubernetesObject, _ desired: JSONValue) -> Bool {
        guard case .object(let fields) = desired else { return false }
        for (name, value) in fields {
            switch name {
            case "apiVersion", "kind":
                continue
            case "metadata":
                guard Self.contains(observed.metadata, value) else { return false }
            default:
                guard let field = observed[name], Self.contains(field, value) else { return false }
            }
        }
        return true
    }

    /// Whether `observed` holds every field of `desired`: objects by key, lists element by element with the same
    /// count, scalars equal (numbers by value).
    static func contains(_ observed: JSONValue, _ desired: JSONValue) -> Bool {
        switch (observed, desired) {
        case (.object(let observed), .object(let desired)):
            return desired.allSatisfy { key, value in
                observed[key].map { Self.contains($0, value) } ?? false
            }
        case (.array(let observed), .array(let desired)):
            return observed.count == desired.count && zip(observed, desired).allSatisfy { Self.contains($0, $1) }
        case (.int(let observed), .double(let desired)):
            return Double(observed) == desired
        case (.double(let observed), .int(let desired)):
            return observed == Double(desired)
        default:
            return observed == desired
        }
    }

    private static func contains(_ metadata: ObjectMeta, _ desired: JSONValue) -> Bool {
        guard case .object(let fields) = desired else { return false }
        for (name, value) in fields {
            switch name {
            case "name":
                guard metadata.name == value.stringValue else { return false }
            case "namespace":
                guard metadata.namespace == value.stringValue else { return false }
            case "labels":
                guard Self.contains(metadata.labels ?? [:], value) else { return false }
            case "annotations":
                guard Self.contains(metadata.annotations ?? [:], value) else { return false }
            case "ownerReferences":
                guard case .array(let references) = value else { return false }
                for reference in references {
                    let found = (metadata.ownerReferences ?? []).contains { owner in
                        owner.uid == reference["uid"]?.stringValue && owner.kind == reference["kind"]?.stringValue
                            && owner.name == reference["name"]?.stringValue
                            && owner.apiVersion == reference["apiVersion"]?.stringValue
                            && owner.controller == reference["controller"]?.boolValue
                            && owner.blockOwnerDeletion == reference["blockOwnerDeletion"]?.boolValue
                    }
                    guard found else { return false }
                }
            default:
                // A metadata field the operator does not set today: apply rather than guess.
                return false
            }
        }
        return true
    }

    private static func contains(_ observed: [String: String], _ desired: JSONValue) -> Bool {
        guard case .object(let entries) = desired else { return false }
        return entries.allSatisfy { key, value in observed[key] == value.stringValue }
    }
}
