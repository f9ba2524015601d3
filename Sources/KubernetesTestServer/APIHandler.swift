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
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import Synchronization
import Yams

/// Answers one API request: parses the Kubernetes URL layout itself and dispatches on verb and resource.
///
/// A single catch-all responder rather than router patterns: the layout
/// `/apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/{subresource}]]` depends on whether a plural is
/// namespaced, which only the resource table knows.
struct APIHandler: HTTPResponder {
    typealias Context = BasicRequestContext

    let server: ServerCore

    func respond(to request: Request, context: Context) async throws -> Response {
        let path = request.uri.path
        let method = request.method.rawValue
        let query = Query(request.uri.query ?? "")
        self.server.logger.debug(
            "request",
            metadata: ["k8s.request.method": "\(method)", "k8s.request.uri": "\(request.uri)"]
        )
        do {
            if let token = self.server.configuration.bearerToken {
                guard request.headers[.authorization] == "Bearer \(token)" else { throw APIError.unauthorized() }
            }
            if let injected = self.server.faults.takeInjectedFailure() { throw injected }
            let body = try await request.body.collect(upTo: 64 * 1024 * 1024)
            let bodyData = Data(buffer: body)
            return try self.route(
                method: method,
                path: path,
                query: query,
                contentType: request.headers[.contentType] ?? "application/json",
                accept: request.headers[.accept] ?? "",
                userAgent: request.headers[.userAgent] ?? "",
                body: bodyData
            )
        } catch let error as APIError {
            self.server.logger.debug(
                "request failed",
                metadata: ["k8s.request.uri": "\(request.uri)", "k8s.status.code": "\(error.code)"]
            )
            return Self.errorResponse(error)
        }
    }

    static func errorResponse(_ error: APIError) -> Response {
        var response = jsonResponse(error.status, status: .init(code: error.code))
        if let retryAfter = error.retryAfter { response.headers[.retryAfter] = String(retryAfter) }
        return response
    }

    static func jsonResponse(_ json: JSON, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(data: json.encoded()))
        )
    }

    // MARK: Routing

    private func route(
        method: String,
        path: String,
        query: Query,
        contentType: String,
        accept: String,
        userAgent: String,
        body: Data
    ) throws -> Response {
        let segments = path.split(separator: "/").map(String.init)
        switch segments.first {
        case "version" where segments.count == 1:
            return Self.jsonResponse(Discovery.version)
        case "openapi" where segments.count >= 2 && segments[1] == "v3":
            let types = self.server.store.state.withLock { $0.allTypes }
            if segments.count == 2 { return Self.jsonResponse(OpenAPI.root(types)) }
            // `/openapi/v3/api/v1` or `/openapi/v3/apis/GROUP/VERSION`.
            let isCore = segments[2] == "api" && segments.count == 4
            guard isCore || (segments[2] == "apis" && segments.count == 5) else { throw APIError.pathNotFound(path) }
            let (group, version) = isCore ? ("", segments[3]) : (segments[3], segments[4])
            let selected = types.filter { $0.group == group && $0.version == version }
            guard !selected.isEmpty else { throw APIError.pathNotFound(path) }
            return Self.jsonResponse(OpenAPI.groupVersion(selected))
        case "healthz", "readyz", "livez":
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain"],
                body: .init(byteBuffer: ByteBuffer(string: "ok"))
            )
        case "api":
            if segments.count == 1 { return Self.jsonResponse(Discovery.coreVersions) }
            guard segments[1] == "v1" else { throw APIError.pathNotFound(path) }
            if segments.count == 2 { return Self.jsonResponse(self.server.discovery(group: "", version: "v1")) }
            return try self.resource(
                group: "",
                version: "v1",
                rest: Array(segments[2...]),
                method: method,
                query: query,
                contentType: contentType,
                accept: accept,
                userAgent: userAgent,
                body: body,
                path: path
            )
        case "apis":
            if segments.count == 1 { return Self.jsonResponse(self.server.groupList()) }
            if segments.count == 2 {
                guard let group = self.server.group(named: segments[1]) else { throw APIError.pathNotFound(path) }
                return Self.jsonResponse(group)
            }
            if segments.count == 3 {
                let list = self.server.discovery(group: segments[1], version: segments[2])
                guard list["resources"]?.arrayValue?.isEmpty == false else { throw APIError.pathNotFound(path) }
                return Self.jsonResponse(list)
            }
            return try self.resource(
                group: segments[1],
                version: segments[2],
                rest: Array(segments[3...]),
                method: method,
                query: query,
                contentType: contentType,
                accept: accept,
                userAgent: userAgent,
                body: body,
                path: path
            )
        default:
            throw APIError.pathNotFound(path)
        }
    }

    private func resource(
        group: String,
        version: String,
        rest: [String],
        method: String,
        query: Query,
        contentType: String,
        accept: String,
        userAgent: String,
        body: Data,
        path: String
    ) throws -> Response {
        var rest = rest
        var namespace: String?
        if rest.count >= 3, rest[0] == "namespaces",
            let type = self.server.type(group: group, version: version, plural: rest[2]), type.namespaced
        {
            namespace = rest[1]
            rest.removeFirst(2)
        }
        guard let plural = rest.first, let type = self.server.type(group: group, version: version, plural: plural),
            rest.count <= 3
        else {
            throw APIError.pathNotFound(path)
        }
        if type.namespaced == false { namespace = nil }
        let name = rest.count > 1 ? rest[1] : nil
        var subresource: Subresource?
        if rest.count == 3 {
            guard let sub = Subresource(rawValue: rest[2]),
                sub == .status ? type.hasStatus : type.scale != nil
            else { throw APIError.pathNotFound(path) }
            subresource = sub
        }
        if let fieldManager = query["fieldManager"] {
            let options = ["POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"][method]
            if let options { try Self.validate(fieldManager: fieldManager, options: options) }
        }
        let request = ResourceRequest(
            type: type,
            namespace: namespace,
            subresource: subresource,
            query: query,
            contentType: contentType,
            asTable: accept.contains("as=Table"),
            userAgentManager: Self.manager(fromUserAgent: userAgent),
            body: body
        )
        switch (method, name) {
        case ("GET", nil): return try self.list(request)
        case ("GET", let name?): return try self.get(request, name: name)
        case ("POST", nil): return try self.create(request)
        case ("PUT", let name?): return try self.update(request, name: name)
        case ("PATCH", let name?): return try self.patch(request, name: name)
        case ("DELETE", let name?): return try self.delete(request, name: name)
        case ("DELETE", nil): return try self.deleteCollection(request)
        default: throw APIError.methodNotAllowed(method)
        }
    }

    /// What a request on a resource path says, parsed from its path, query and headers.
    private struct ResourceRequest {
        var type: ResourceType
        var namespace: String?
        var subresource: Subresource?
        var query: Query
        var contentType: String
        var asTable: Bool
        /// Who a write is recorded as in managedFields without `fieldManager`: the user agent's product name.
        var userAgentManager: String
        var body: Data

        var manager: String { self.query["fieldManager"] ?? self.userAgentManager }
        var strict: Bool { self.query["fieldValidation"] == "Strict" }
        var dryRun: Bool { self.query["dryRun"] == "All" }
    }

    private func list(_ request: ResourceRequest) throws -> Response {
        let type = request.type
        let options = try request.query.listOptions(namespace: request.namespace)
        if request.query.bool("watch") {
            return self.server.watch(type, options: options, query: request.query, asTable: request.asTable)
        }
        let (all, version) = try self.server.store.withState { state throws(APIError) in
            (state.list(type, options: options), state.resourceVersion)
        }
        let page = try Page(all, limit: request.query["limit"], continueToken: request.query["continue"])
        var metadata: JSON = ["resourceVersion": .string(String(version))]
        if let token = page.continueToken {
            metadata["continue"] = .string(token)
            metadata["remainingItemCount"] = .int(Int64(page.remaining))
        }
        if request.asTable {
            var table = Table.make(type, items: page.items, resourceVersion: version)
            table["metadata"] = metadata
            return Self.jsonResponse(table)
        }
        return Self.jsonResponse([
            "kind": .string("\(type.kind)List"),
            "apiVersion": .string(type.groupVersion),
            "metadata": metadata,
            "items": .array(page.items.map { self.present($0, type) }),
        ])
    }

    private func get(_ request: ResourceRequest, name: String) throws -> Response {
        let object = try self.server.store.withState { state throws(APIError) in
            try state.get(request.type, namespace: request.namespace, name: name)
        }
        if request.subresource == .scale { return Self.jsonResponse(Scale.make(from: object, type: request.type)) }
        if request.asTable, request.subresource == nil {
            return Self.jsonResponse(Table.make(request.type, items: [object], resourceVersion: nil))
        }
        return Self.jsonResponse(self.present(object, request.type))
    }

    private func create(_ request: ResourceRequest) throws -> Response {
        let object = try parse(request.body, contentType: request.contentType)
        let store = self.server.store
        let created = try store.write(strict: request.strict, dryRun: request.dryRun) { state throws(APIError) in
            try state.create(
                request.type,
                namespace: request.namespace,
                object: object,
                limit: store.historyLimit,
                ownership: .update(manager: request.manager)
            )
        }
        return Self.jsonResponse(self.present(created, request.type), status: .created)
    }

    private func update(_ request: ResourceRequest, name: String) throws -> Response {
        let object = try parse(request.body, contentType: request.contentType)
        let store = self.server.store
        let updated = try store.write(strict: request.strict, dryRun: request.dryRun) { state throws(APIError) in
            try state.update(
                request.type,
                namespace: request.namespace,
                name: name,
                body: object,
                subresource: request.subresource,
                limit: store.historyLimit,
                requireResourceVersion: request.subresource != .scale,
                manager: request.manager
            )
        }
        if request.subresource == .scale { return Self.jsonResponse(Scale.make(from: updated, type: request.type)) }
        return Self.jsonResponse(self.present(updated, request.type))
    }

    private func patch(_ request: ResourceRequest, name: String) throws -> Response {
        let store = self.server.store
        let (patched, created) = try store.write(strict: request.strict, dryRun: request.dryRun) {
            state throws(APIError) in
            try state.patch(
                request.type,
                namespace: request.namespace,
                name: name,
                body: request.body,
                contentType: request.contentType,
                subresource: request.subresource,
                fieldManager: request.query["fieldManager"],
                userAgentManager: request.userAgentManager,
                force: request.query["force"].map { $0 == "true" || $0 == "1" },
                limit: store.historyLimit
            )
        }
        if request.subresource == .scale { return Self.jsonResponse(Scale.make(from: patched, type: request.type)) }
        return Self.jsonResponse(self.present(patched, request.type), status: created ? .created : .ok)
    }

    private func delete(_ request: ResourceRequest, name: String) throws -> Response {
        let (type, namespace) = (request.type, request.namespace)
        let options =
            request.body.isEmpty ? JSON.object([:]) : try parse(request.body, contentType: "application/json")
        let policy = request.query["propagationPolicy"] ?? options["propagationPolicy"]?.stringValue
        let store = self.server.store
        let deleted = try store.write(strict: false, dryRun: request.dryRun) { state throws(APIError) in
            for field in ["resourceVersion", "uid"] {
                guard let precondition = options[path: ["preconditions", field]]?.stringValue else { continue }
                let current = try state.get(type, namespace: namespace, name: name)
                if current[path: ["metadata", field]]?.stringValue != precondition {
                    throw APIError.conflict(type, name: name)
                }
            }
            return try state.delete(
                type,
                namespace: namespace,
                name: name,
                cascade: policy != "Orphan",
                limit: store.historyLimit
            )
        }
        return Self.jsonResponse(self.present(deleted, type))
    }

    private func deleteCollection(_ request: ResourceRequest) throws -> Response {
        let type = request.type
        let options = try request.query.listOptions(namespace: request.namespace)
        let store = self.server.store
        let deleted = try store.write(strict: false, dryRun: request.dryRun) { state throws(APIError) in
            state.list(type, options: options).compactMap { object in
                let name = object[path: ["metadata", "name"]]?.stringValue ?? ""
                let namespace = object[path: ["metadata", "namespace"]]?.stringValue
                return try? state.delete(
                    type,
                    namespace: namespace,
                    name: name,
                    cascade: true,
                    limit: store.historyLimit
                )
            }
        }
        return Self.jsonResponse([
            "kind": .string("\(type.kind)List"),
            "apiVersion": .string(type.groupVersion),
            "metadata": [:],
            "items": .array(deleted.map { self.present($0, type) }),
        ])
    }

    /// `prefixFromUserAgent`: what comes before the first `/` of the user agent, printable characters only, at most
    /// 128 bytes (`kubectl/v1.32.4 (linux/amd64) kubernetes/...` is `kubectl`).
    static func manager(fromUserAgent userAgent: String) -> String {
        var manager = ""
        for character in userAgent.prefix(while: { $0 != "/" })
        where !character.unicodeScalars.contains(where: {
            $0.properties.generalCategory == .control || $0.properties.generalCategory == .format
        }) {
            guard manager.utf8.count + character.utf8.count <= 128 else { break }
            manager.append(character)
        }
        return manager
    }

    /// `ValidateFieldManager`: at most 128 bytes, printable characters only.
    static func validate(fieldManager: String, options: String) throws(APIError) {
        var causes: [FieldError] = []
        if fieldManager.utf8.count > 128 {
            causes.append(
                FieldError(
                    reason: "FieldValueTooLong",
                    field: "fieldManager",
                    message: "Too long: may not be more than 128 bytes"
                )
            )
        }
        if fieldManager.unicodeScalars.contains(where: {
            $0.properties.generalCategory == .control || $0.properties.generalCategory == .format
        }) {
            causes.append(
                .invalid("fieldManager", .string(fieldManager), "must only contain printable characters")
            )
        }
        if !causes.isEmpty { throw APIError.invalidOptions(options, causes: causes) }
    }

    /// An object as served through `type`'s version.
    private func present(_ object: JSON, _ type: ResourceType) -> JSON {
        var object = object
        object["apiVersion"] = .string(type.groupVersion)
        return object
    }
}

/// One page of a list (`limit` and `continue`).
///
/// The continue token is the `namespace/name` of the last item returned, and the next page starts after it in the
/// current state. A real server serves every page from the snapshot of the first; here objects created or deleted
/// between pages show up or vanish, which a paging client must tolerate anyway once a token expires.
struct Page {
    var items: [JSON]
    var continueToken: String?
    var remaining = 0

    init(_ all: [JSON], limit: String?, continueToken: String?) throws(APIError) {
        var items = all
        if let continueToken, !continueToken.isEmpty {
            guard let data = Data(base64Encoded: continueToken), let after = String(data: data, encoding: .utf8) else {
                throw APIError.badRequest("invalid continue token")
            }
            items = items.filter { Self.key($0) > after }
        }
        if let limit = limit.flatMap(Int.init), limit > 0, items.count > limit {
            self.remaining = items.count - limit
            items = Array(items.prefix(limit))
            self.continueToken = Data(Self.key(items[items.count - 1]).utf8).base64EncodedString()
        }
        self.items = items
    }

    /// The sort key of `list`, as one string; `\u{1}` sorts below every character a name may contain.
    static func key(_ object: JSON) -> String {
        let namespace = object[path: ["metadata", "namespace"]]?.stringValue ?? ""
        let name = object[path: ["metadata", "name"]]?.stringValue ?? ""
        return "\(namespace)\u{1}\(name)"
    }
}

/// Parses a request body: JSON, or YAML for apply patches.
func parse(_ body: Data, contentType: String) throws(APIError) -> JSON {
    if contentType.contains("yaml") {
        let text = String(decoding: body, as: UTF8.self)
        if let unknown = GoYAML.unknownEscape(in: text) {
            // As kube-apiserver words it: the apply patcher's "error decoding YAML", sigs.k8s.io/yaml's "error
            // converting YAML to JSON", then go-yaml v2's scanner error, which names the line except the first.
            throw APIError.badRequest("error decoding YAML: error converting YAML to JSON: \(unknown.goYAMLMessage)")
        }
        do {
            return try JSON(yaml: text)
        } catch let error as YamlError {
            // libyaml and go-yaml (a port of it) name the same problems: word them as kube-apiserver does.
            let problem: String
            switch error {
            case .reader(let readerProblem, _, _, _):
                problem = readerProblem
            case .scanner(_, let scannerProblem, let mark, _), .parser(_, let scannerProblem, let mark, _),
                .composer(_, let scannerProblem, let mark, _):
                problem = mark.line > 1 ? "line \(mark.line): \(scannerProblem)" : scannerProblem
            default:
                problem = "\(error)"
            }
            throw APIError.badRequest("error decoding YAML: error converting YAML to JSON: yaml: \(problem)")
        } catch {
            throw APIError.badRequest("error decoding YAML: \(error)")
        }
    }
    if contentType.contains("application/vnd.kubernetes.protobuf") {
        return try KubernetesProtobuf.decode(body)
    }
    do {
        return try JSON(data: body)
    } catch {
        throw APIError.badRequest("the body is not valid JSON: \(error)")
    }
}

/// The query string, decoded.
struct Query: Sendable {
    var values: [String: String] = [:]

    init(_ query: String) {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            let key = parts[0].removingPercentEncoding ?? parts[0]
            let value = parts.count > 1 ? parts[1].replacingOccurrences(of: "+", with: " ") : ""
            self.values[key] = value.removingPercentEncoding ?? value
        }
    }

    subscript(key: String) -> String? { self.values[key] }

    func bool(_ key: String) -> Bool {
        guard let value = self.values[key] else { return false }
        return value == "1" || value == "true" || value.isEmpty
    }

    func listOptions(namespace: String?) throws(APIError) -> ListOptions {
        var options = ListOptions(namespace: namespace)
        if let text = self["labelSelector"], !text.isEmpty { options.labelSelector = try LabelSelector(text) }
        if let text = self["fieldSelector"], !text.isEmpty { options.fieldSelector = try FieldSelector(text) }
        return options
    }
}
