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

/// An error the API answers with: an HTTP status and the `Status` object Kubernetes puts in the body.
///
/// Clients branch on `reason` and `code` (client-go's `IsNotFound`, `IsConflict`, `IsGone`), so each constructor
/// writes the reason, message and details the real API server writes for the same case.
struct APIError: Error, Sendable {
    var code: Int
    var reason: String
    var message: String
    var details: JSON?
    /// Seconds, for `Retry-After` (429 and some 500s).
    var retryAfter: Int?

    /// The `Status` body (`meta/v1`).
    var status: JSON {
        var body: JSON = [
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": [:],
            "status": "Failure",
            "message": .string(self.message),
            "reason": .string(self.reason),
            "code": .int(Int64(self.code)),
        ]
        if var details = self.details {
            if let retryAfter { details["retryAfterSeconds"] = .int(Int64(retryAfter)) }
            body["details"] = details
        }
        return body
    }

    static func details(name: String?, group: String, kind: String) -> JSON {
        var details: JSON = ["group": .string(group), "kind": .string(kind)]
        if let name { details["name"] = .string(name) }
        return details
    }

    static func notFound(_ resource: ResourceType, name: String) -> APIError {
        APIError(
            code: 404,
            reason: "NotFound",
            message: "\(resource.qualifiedName) \"\(name)\" not found",
            details: details(name: name, group: resource.group, kind: resource.plural)
        )
    }

    static func pathNotFound(_ path: String) -> APIError {
        APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource (\(path))")
    }

    static func alreadyExists(_ resource: ResourceType, name: String) -> APIError {
        APIError(
            code: 409,
            reason: "AlreadyExists",
            message: "\(resource.qualifiedName) \"\(name)\" already exists",
            details: details(name: name, group: resource.group, kind: resource.plural)
        )
    }

    static func conflict(_ resource: ResourceType, name: String) -> APIError {
        APIError(
            code: 409,
            reason: "Conflict",
            message: "Operation cannot be fulfilled on \(resource.qualifiedName) \"\(name)\": the object has been "
                + "modified; please apply your changes to the latest version and try again",
            details: details(name: name, group: resource.group, kind: resource.plural)
        )
    }

    static func badRequest(_ message: String) -> APIError {
        APIError(code: 400, reason: "BadRequest", message: message)
    }

    static func methodNotAllowed(_ method: String) -> APIError {
        APIError(code: 405, reason: "MethodNotAllowed", message: "the server does not allow this method (\(method))")
    }

    /// 415 as `negotiation.NewUnsupportedMediaTypeError` words it, listing what the endpoint accepts.
    static func unsupportedMediaType(accepted: [String]) -> APIError {
        APIError(
            code: 415,
            reason: "UnsupportedMediaType",
            message: "the body of the request was in an unknown format - accepted media types include: "
                + accepted.joined(separator: ", ")
        )
    }

    static func unauthorized() -> APIError {
        APIError(code: 401, reason: "Unauthorized", message: "Unauthorized")
    }

    static func expired(_ message: String) -> APIError {
        APIError(code: 410, reason: "Expired", message: message)
    }

    /// 422 for invalid request options (`PatchOptions`, `CreateOptions`, ...), which are `meta.k8s.io` kinds.
    static func invalidOptions(_ kind: String, causes: [FieldError]) -> APIError {
        let summary = causes.map { "\($0.field): \($0.message)" }.joined(separator: ", ")
        var details = details(name: nil, group: "meta.k8s.io", kind: kind)
        details["causes"] = .array(
            causes.map { ["reason": .string($0.reason), "message": .string($0.message), "field": .string($0.field)] }
        )
        return APIError(
            code: 422,
            reason: "Invalid",
            message: "\(kind).meta.k8s.io \"\" is invalid: \(causes.count == 1 ? summary : "[\(summary)]")",
            details: details
        )
    }

    /// 422 with one cause per offending field, as the API server reports schema violations.
    static func invalid(_ resource: ResourceType, name: String, causes: [FieldError]) -> APIError {
        let summary = causes.map { "\($0.field): \($0.message)" }.joined(separator: ", ")
        let list = causes.count == 1 ? summary : "[\(summary)]"
        var details = details(name: name, group: resource.group, kind: resource.kind)
        details["causes"] = .array(
            causes.map { ["reason": .string($0.reason), "message": .string($0.message), "field": .string($0.field)] }
        )
        return APIError(
            code: 422,
            reason: "Invalid",
            message: "\(resource.qualifiedKind) \"\(name)\" is invalid: \(list)",
            details: details
        )
    }
}

/// One field-level validation failure: a `StatusCause`.
struct FieldError: Sendable, Hashable {
    var reason: String
    var field: String
    var message: String

    static func required(_ field: String) -> FieldError {
        FieldError(reason: "FieldValueRequired", field: field, message: "Required value")
    }

    static func invalid(_ field: String, _ value: JSON, _ detail: String) -> FieldError {
        FieldError(
            reason: "FieldValueInvalid",
            field: field,
            message: "Invalid value: \(value.errorRendering): \(detail)"
        )
    }

    static func typeInvalid(_ field: String, _ value: JSON, expected: String) -> FieldError {
        FieldError(
            reason: "FieldValueTypeInvalid",
            field: field,
            message: "Invalid value: \"\(value.typeName)\": \(field) in body must be of type \(expected): "
                + value.errorRendering
        )
    }

    static func notSupported(_ field: String, _ value: JSON, supported: [JSON]) -> FieldError {
        FieldError(
            reason: "FieldValueNotSupported",
            field: field,
            message: "Unsupported value: \(value.errorRendering): supported values: "
                + supported.map(\.errorRendering).joined(separator: ", ")
        )
    }
}
