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

import KubernetesClient
public import LiveStreamModel

/// One field another writer owns with another value, from a server-side apply conflict.
public struct FieldConflict: Sendable, Hashable, CustomStringConvertible {
    /// The field, as the API server names it (`.spec.suspend`).
    public var field: String
    /// Who owns it, as the API server says (`conflict with "kubectl" using liverelay.io/v1alpha1`).
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(self.field): \(self.message)" }
}

/// The one error of the console's cluster stores. Its ``message`` is fit to show a person (it never holds a key);
/// ``code`` says what kind of failure it is.
public struct ClusterStoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case invalid
            case conflict
            case stale
            case alreadyExists
            case notFound
            case noStreamKey
            case forbidden
            case unavailable
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The edit is invalid; ``ClusterStoreError/fieldErrors`` says where. Nothing was written.
        public static let invalid = Code(.invalid)
        /// Another writer (field manager) owns a field the edit changes, with another value: the server-side apply
        /// was refused (``ClusterStoreError/conflicts``). Nothing was written; the same edit with `force` takes the
        /// fields over.
        public static let conflict = Code(.conflict)
        /// The object changed since the version the edit was based on. Nothing was written; reload and edit again.
        public static let stale = Code(.stale)
        /// A stream or user of that name exists already.
        public static let alreadyExists = Code(.alreadyExists)
        /// Something the request names within a stream (a target) or a user does not exist.
        public static let notFound = Code(.notFound)
        /// The stream has no key to rotate or reveal (a webhook authorizes its publishers, or the operator has not
        /// generated it yet).
        public static let noStreamKey = Code(.noStreamKey)
        /// The viewer may not do this (create a stream in another user's namespace).
        public static let forbidden = Code(.forbidden)
        /// The API server refused or could not be reached; ``ClusterStoreError/cause`` has the client's error.
        public static let unavailable = Code(.unavailable)

        public var description: String { "\(self.wrapped)" }
    }

    public var code: Code
    public var message: String
    /// Where an ``Code/invalid`` edit is wrong, field by field.
    public var fieldErrors: [FieldError]
    /// The fields of a ``Code/conflict``.
    public var conflicts: [FieldConflict]
    public var cause: (any Error)?

    public init(
        code: Code,
        message: String,
        fieldErrors: [FieldError] = [],
        conflicts: [FieldConflict] = [],
        cause: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.fieldErrors = fieldErrors
        self.conflicts = conflicts
        self.cause = cause
    }

    public var description: String {
        var text = "ClusterStoreError(\(self.code)): \(self.message)"
        if !self.fieldErrors.isEmpty {
            text += " [" + self.fieldErrors.map(\.description).joined(separator: "; ") + "]"
        }
        return text
    }

    @inline(never)
    static func invalid(_ errors: [FieldError]) -> ClusterStoreError {
        ClusterStoreError(
            code: .invalid,
            message: "invalid: " + errors.map(\.description).joined(separator: "; "),
            fieldErrors: errors
        )
    }

    @inline(never)
    static func notFound(_ message: String) -> ClusterStoreError {
        ClusterStoreError(code: .notFound, message: message)
    }

    @inline(never)
    static func noStreamKey(_ message: String) -> ClusterStoreError {
        ClusterStoreError(code: .noStreamKey, message: message)
    }

    @inline(never)
    static func forbidden(_ message: String) -> ClusterStoreError {
        ClusterStoreError(code: .forbidden, message: message)
    }

    @inline(never)
    static func alreadyExists(_ message: String) -> ClusterStoreError {
        ClusterStoreError(code: .alreadyExists, message: message)
    }

    /// The API server's answer to a write, as the console says it: a field-manager conflict (409 with
    /// `FieldManagerConflict` causes), a stale `resourceVersion` (409 otherwise), or anything else.
    @inline(never)
    static func from(_ error: KubernetesError, writing what: String) -> ClusterStoreError {
        guard error.isConflict else {
            if error.status?.reason == "AlreadyExists" {
                return ClusterStoreError(code: .alreadyExists, message: "\(what): \(error.message)", cause: error)
            }
            if error.statusCode == 422 || error.statusCode == 400 {
                // The CRD's schema refused what LiveStreamModel's validation let through: say the server's words.
                return ClusterStoreError(
                    code: .invalid,
                    message: "\(what): \(error.message)",
                    fieldErrors: Self.fieldErrors(of: error.status),
                    cause: error
                )
            }
            return ClusterStoreError(code: .unavailable, message: "\(what): \(error.message)", cause: error)
        }
        if error.status?.reason == "AlreadyExists" {
            return ClusterStoreError(code: .alreadyExists, message: "\(what): \(error.message)", cause: error)
        }
        let conflicts = Self.conflicts(of: error.status)
        if conflicts.isEmpty {
            return ClusterStoreError(
                code: .stale,
                message: "\(what): it changed since it was read; reload and edit again (\(error.message))",
                cause: error
            )
        }
        return ClusterStoreError(
            code: .conflict,
            message: "\(what): \(error.message)",
            conflicts: conflicts,
            cause: error
        )
    }

    private static func causes(of status: Status?) -> [JSONValue] {
        guard case .array(let causes)? = status?.details?["causes"] else { return [] }
        return causes
    }

    private static func conflicts(of status: Status?) -> [FieldConflict] {
        Self.causes(of: status).compactMap { cause in
            guard cause["reason"]?.stringValue == "FieldManagerConflict" else { return nil }
            return FieldConflict(
                field: cause["field"]?.stringValue ?? "",
                message: cause["message"]?.stringValue ?? "conflict"
            )
        }
    }

    private static func fieldErrors(of status: Status?) -> [FieldError] {
        Self.causes(of: status).compactMap { cause in
            guard let field = cause["field"]?.stringValue else { return nil }
            return FieldError(field: field, message: cause["message"]?.stringValue ?? "invalid")
        }
    }
}
