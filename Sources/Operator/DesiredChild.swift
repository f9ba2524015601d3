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
import KubernetesController

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
    ///
    /// The cache keeps children as summaries (``ObjectSummary``): digests of their fields, compared with the
    /// desired object's; a field edited, removed or a list lengthened by hand is not as desired.
    func isSatisfied(by observed: ObjectSummary) -> Bool {
        guard observed.contains(.string(self.hash), at: ["metadata", "annotations", Self.hashAnnotation]) else {
            return false
        }
        return observed.contains(self.object)
    }

    /// Whether the whole object `observed` is this child as desired (as its summary is).
    func isSatisfied(by observed: KubernetesObject) -> Bool {
        self.isSatisfied(by: ObjectSummary(observed))
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
}
