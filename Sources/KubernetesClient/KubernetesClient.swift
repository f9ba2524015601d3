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

import AsyncHTTPClient
import Foundation
public import Logging
import NIOCore
import NIOFoundationCompat

/// A typed client of the Kubernetes REST API.
///
/// A `struct`, not an actor: it holds a transport and immutable settings, and the only mutable state (the token
/// cache) lives behind a `Mutex` in the middleware. Copy it freely; every copy shares the same connections.
public struct KubernetesClient: Sendable {
    /// The namespace calls use when they do not name one.
    public let namespace: String
    public let logger: Logger
    private let transport: any KubernetesTransport
    private let middlewares: [any KubernetesMiddleware]
    /// The largest non-watch response body the client reads.
    public var maxResponseBytes = 256 * 1024 * 1024

    /// A client over any transport; `middlewares` run outermost first.
    public init(
        transport: any KubernetesTransport,
        namespace: String = "default",
        middlewares: [any KubernetesMiddleware] = [],
        logger: Logger = Logger(label: "liverelay.kubernetes")
    ) {
        self.transport = transport
        self.namespace = namespace
        self.middlewares = middlewares
        self.logger = logger
    }

    /// A client for `configuration` over `transport`, with its retry and authentication middleware.
    public init(
        configuration: KubernetesConfiguration,
        transport: any KubernetesTransport,
        logger: Logger = Logger(label: "liverelay.kubernetes")
    ) {
        self.init(
            transport: transport,
            namespace: configuration.namespace,
            middlewares: [
                RetryMiddleware(policy: configuration.retry),
                BearerTokenMiddleware(provider: TokenProvider(credentials: configuration.credentials)),
            ],
            logger: logger
        )
    }

    /// The same client, sharing its transport, with `middleware` run before its own (outermost): to observe or
    /// police what one component of a process asks the API server.
    public func adding(_ middleware: any KubernetesMiddleware) -> KubernetesClient {
        var client = KubernetesClient(
            transport: self.transport,
            namespace: self.namespace,
            middlewares: [middleware] + self.middlewares,
            logger: self.logger
        )
        client.maxResponseBytes = self.maxResponseBytes
        return client
    }

    /// Sends one request through the middleware chain and the transport.
    public func send(
        _ request: KubernetesRequest,
        body: KubernetesBody? = nil
    ) async throws -> (
        KubernetesResponse, KubernetesBody
    ) {
        try await Self.run(request, body: body, middlewares: self.middlewares[...], transport: self.transport)
    }

    private static func run(
        _ request: KubernetesRequest,
        body: KubernetesBody?,
        middlewares: ArraySlice<any KubernetesMiddleware>,
        transport: any KubernetesTransport
    ) async throws -> (KubernetesResponse, KubernetesBody) {
        guard let first = middlewares.first else {
            return try await transport.send(request, body: body)
        }
        let rest = middlewares.dropFirst()
        return try await first.intercept(request, body: body) { request, body in
            try await Self.run(request, body: body, middlewares: rest, transport: transport)
        }
    }

    /// Sends a request and decodes a 2xx JSON body as `T`; anything else becomes a ``KubernetesError``.
    func perform<T: Decodable>(
        _ type: T.Type,
        _ request: KubernetesRequest,
        body: KubernetesBody? = nil
    ) async throws -> T {
        var request = request
        request.headers.append(("Accept", "application/json"))
        let (response, responseBody) = try await self.send(request, body: body)
        let buffer = try await responseBody.collect(upTo: self.maxResponseBytes)
        guard (200..<300).contains(response.status) else {
            throw Self.error(status: response.status, body: buffer, request: request)
        }
        do {
            return try JSONDecoder().decode(T.self, from: buffer)
        } catch {
            throw KubernetesError.decoding(
                "\(request.method.rawValue) \(request.path): unexpected response",
                cause: error
            )
        }
    }

    static func error(status: Int, body: ByteBuffer, request: KubernetesRequest) -> KubernetesError {
        if var decoded = try? JSONDecoder().decode(Status.self, from: body), decoded.kind == "Status" {
            decoded.code = decoded.code ?? status
            return .api(decoded)
        }
        // Proxies and overloaded servers answer with plain text; keep the HTTP code so callers can still branch.
        let text = String(buffer: body).prefix(200)
        return .api(
            Status(
                message: "\(request.method.rawValue) \(request.path): HTTP \(status) \(text)",
                reason: Self.reason(status),
                code: status
            )
        )
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "NotFound"
        case 409: return "Conflict"
        case 410: return "Expired"
        case 422: return "Invalid"
        case 429: return "TooManyRequests"
        case 500...599: return "InternalError"
        default: return "Unknown"
        }
    }

    /// The JSON of every request body. An apply body is read as YAML by kube-apiserver (go-yaml v2, YAML 1.1),
    /// which refuses the `\/` escape `JSONEncoder` writes for `/` by default: so `/` is written as it is. And the
    /// characters JSON may leave raw that YAML 1.1 does not read as they are are escaped (``yamlSafe(_:)``).
    static func encode(_ value: some Encodable) throws -> KubernetesBody {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        do {
            return KubernetesBody(Self.yamlSafe(ByteBuffer(data: try encoder.encode(value))))
        } catch {
            throw KubernetesError.decoding("cannot encode request body", cause: error)
        }
    }

    /// `json` with every character YAML 1.1 would refuse or change written as a `\u` escape, which both read alike:
    /// DEL and the C1 controls (U+007F–U+009F: go-yaml's reader refuses them, "control characters are not
    /// allowed"), of which NEL (U+0085) and LINE and PARAGRAPH SEPARATOR (U+2028, U+2029) are YAML 1.1 line breaks,
    /// folded inside a double-quoted scalar; U+FEFF (a byte order mark, which the reader takes out) and U+FFFE and
    /// U+FFFF (not characters to YAML). `JSONEncoder` writes them raw. They can only be inside strings (JSON's
    /// structure is ASCII), and none is part of an escape, so each is replaced where it is.
    static func yamlSafe(_ json: ByteBuffer) -> ByteBuffer {
        let view = json.readableBytesView
        guard view.contains(where: { $0 == 0x7F || $0 == 0xC2 || $0 == 0xE2 || $0 == 0xEF }) else {
            return json
        }
        let bytes = Array(view)
        var out = ByteBuffer()
        out.reserveCapacity(bytes.count + 32)
        func escape(_ scalar: UInt32) {
            out.writeString("\\u")
            let hex = String(scalar, radix: 16)
            out.writeString(String(repeating: "0", count: 4 - hex.count) + hex)
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            let next = index + 1 < bytes.count ? bytes[index + 1] : 0
            let third = index + 2 < bytes.count ? bytes[index + 2] : 0
            if byte == 0x7F {
                escape(0x7F)
                index += 1
            } else if byte == 0xC2, (0x80...0x9F).contains(next) {
                escape(UInt32(next))
                index += 2
            } else if byte == 0xE2, next == 0x80, third == 0xA8 || third == 0xA9 {
                escape(third == 0xA8 ? 0x2028 : 0x2029)
                index += 3
            } else if byte == 0xEF, (next == 0xBB && third == 0xBF) || (next == 0xBF && third >= 0xBE) {
                escape(next == 0xBB ? 0xFEFF : third == 0xBE ? 0xFFFE : 0xFFFF)
                index += 3
            } else {
                out.writeInteger(byte)
                index += 1
            }
        }
        return out
    }

    private func namespace(_ namespace: String?, for resource: KubernetesResource) -> String? {
        resource.namespaced ? (namespace ?? self.namespace) : nil
    }
}

/// Options of a list call.
public struct ListOptions: Sendable, Hashable {
    public var labelSelector: String?
    public var fieldSelector: String?
    /// At most this many items per page; pass the returned `metadata.continue` to get the next page.
    public var limit: Int?
    public var `continue`: String?
    public var resourceVersion: String?

    public init(
        labelSelector: String? = nil,
        fieldSelector: String? = nil,
        limit: Int? = nil,
        continue: String? = nil,
        resourceVersion: String? = nil
    ) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.limit = limit
        self.continue = `continue`
        self.resourceVersion = resourceVersion
    }

    var query: [(name: String, value: String)] {
        var query: [(name: String, value: String)] = []
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        if let fieldSelector { query.append(("fieldSelector", fieldSelector)) }
        if let limit { query.append(("limit", String(limit))) }
        if let `continue` { query.append(("continue", `continue`)) }
        if let resourceVersion { query.append(("resourceVersion", resourceVersion)) }
        return query
    }
}

/// `propagationPolicy` of a delete.
public enum PropagationPolicy: String, Sendable {
    case foreground = "Foreground"
    case background = "Background"
    case orphan = "Orphan"
}

extension KubernetesClient {
    /// Reads one object. A `nil` namespace means the client's default (ignored for cluster-scoped resources).
    public func get<T: KubernetesAPIObject>(
        _ type: T.Type = T.self,
        _ resource: KubernetesResource,
        name: String,
        namespace: String? = nil
    ) async throws -> T {
        let path = resource.path(namespace: self.namespace(namespace, for: resource), name: name)
        return try await self.perform(T.self, KubernetesRequest(method: .get, path: path))
    }

    /// Lists one page. For all namespaces pass `allNamespaces: true`.
    public func list<T: KubernetesAPIObject>(
        _ type: T.Type = T.self,
        _ resource: KubernetesResource,
        namespace: String? = nil,
        allNamespaces: Bool = false,
        options: ListOptions = ListOptions()
    ) async throws -> KubernetesList<T> {
        let path = resource.path(namespace: allNamespaces ? nil : self.namespace(namespace, for: resource))
        return try await self.perform(
            KubernetesList<T>.self,
            KubernetesRequest(method: .get, path: path, query: options.query)
        )
    }

    /// Lists every page (following `continue` tokens) and returns all items with the list's `resourceVersion`.
    public func listAll<T: KubernetesAPIObject>(
        _ type: T.Type = T.self,
        _ resource: KubernetesResource,
        namespace: String? = nil,
        allNamespaces: Bool = false,
        options: ListOptions = ListOptions(limit: 500)
    ) async throws -> (items: [T], resourceVersion: String) {
        var options = options
        var items: [T] = []
        while true {
            let page = try await self.list(
                T.self,
                resource,
                namespace: namespace,
                allNamespaces: allNamespaces,
                options: options
            )
            items.append(contentsOf: page.items)
            guard let token = page.metadata.continue, !token.isEmpty else {
                return (items, page.metadata.resourceVersion ?? "")
            }
            options.continue = token
        }
    }

    /// Creates an object (POST) in its `metadata.namespace`, else the given or default namespace. `fieldManager`
    /// names the writer in `metadata.managedFields` (the server derives one from the user agent otherwise).
    public func create<T: KubernetesAPIObject>(
        _ object: T,
        _ resource: KubernetesResource,
        namespace: String? = nil,
        fieldManager: String? = nil
    ) async throws -> T {
        let path = resource.path(namespace: self.namespace(namespace ?? object.metadata.namespace, for: resource))
        return try await self.perform(
            T.self,
            KubernetesRequest(
                method: .post,
                path: path,
                query: fieldManager.map { [("fieldManager", $0)] } ?? [],
                headers: [("Content-Type", "application/json")]
            ),
            body: try Self.encode(object)
        )
    }

    /// Replaces an object (PUT). The object's `metadata.resourceVersion` makes it a compare-and-swap: a stale one
    /// fails with 409 Conflict.
    public func update<T: KubernetesAPIObject>(
        _ object: T,
        _ resource: KubernetesResource,
        namespace: String? = nil,
        subresource: String? = nil
    ) async throws -> T {
        guard let name = object.metadata.name else {
            throw KubernetesError.configuration("update of an object without metadata.name")
        }
        let path = resource.path(
            namespace: self.namespace(namespace ?? object.metadata.namespace, for: resource),
            name: name,
            subresource: subresource
        )
        return try await self.perform(
            T.self,
            KubernetesRequest(method: .put, path: path, headers: [("Content-Type", "application/json")]),
            body: try Self.encode(object)
        )
    }

    /// Deletes an object. Returns nothing: the server answers with the object or a `Status` depending on finalizers.
    public func delete(
        _ resource: KubernetesResource,
        name: String,
        namespace: String? = nil,
        propagationPolicy: PropagationPolicy? = nil,
        resourceVersion: String? = nil
    ) async throws {
        let path = resource.path(namespace: self.namespace(namespace, for: resource), name: name)
        var options: [String: JSONValue] = ["kind": "DeleteOptions", "apiVersion": "v1"]
        if let propagationPolicy { options["propagationPolicy"] = .string(propagationPolicy.rawValue) }
        if let resourceVersion { options["preconditions"] = ["resourceVersion": .string(resourceVersion)] }
        _ = try await self.perform(
            JSONValue.self,
            KubernetesRequest(method: .delete, path: path, headers: [("Content-Type", "application/json")]),
            body: try Self.encode(JSONValue.object(options))
        )
    }

    /// Applies a JSON merge patch (RFC 7386) to an object or one of its subresources.
    public func patch<T: KubernetesAPIObject>(
        _ type: T.Type = T.self,
        _ resource: KubernetesResource,
        name: String,
        namespace: String? = nil,
        mergePatch: JSONValue,
        subresource: String? = nil
    ) async throws -> T {
        let path = resource.path(
            namespace: self.namespace(namespace, for: resource),
            name: name,
            subresource: subresource
        )
        return try await self.perform(
            T.self,
            KubernetesRequest(
                method: .patch,
                path: path,
                headers: [("Content-Type", "application/merge-patch+json")],
                isIdempotent: false
            ),
            body: try Self.encode(mergePatch)
        )
    }

    /// Server-side apply: the server merges `object` with what this `fieldManager` applied before and owns only the
    /// fields it sends. JSON is valid YAML, so the body is JSON sent as `application/apply-patch+yaml`. With `force`,
    /// conflicting fields owned by other managers are taken over instead of failing with 409.
    public func apply<T: KubernetesAPIObject>(
        _ object: some Encodable & Sendable,
        as type: T.Type = T.self,
        _ resource: KubernetesResource,
        name: String,
        namespace: String? = nil,
        fieldManager: String,
        force: Bool = false,
        subresource: String? = nil
    ) async throws -> T {
        let path = resource.path(
            namespace: self.namespace(namespace, for: resource),
            name: name,
            subresource: subresource
        )
        var query: [(name: String, value: String)] = [("fieldManager", fieldManager)]
        if force { query.append(("force", "true")) }
        return try await self.perform(
            T.self,
            KubernetesRequest(
                method: .patch,
                path: path,
                query: query,
                headers: [("Content-Type", "application/apply-patch+yaml")],
                isIdempotent: true
            ),
            body: try Self.encode(object)
        )
    }

    /// Reads the status subresource.
    public func getStatus<T: KubernetesAPIObject>(
        _ type: T.Type = T.self,
        _ resource: KubernetesResource,
        name: String,
        namespace: String? = nil
    ) async throws -> T {
        let path = resource.path(namespace: self.namespace(namespace, for: resource), name: name, subresource: "status")
        return try await self.perform(T.self, KubernetesRequest(method: .get, path: path))
    }

    /// Merge-patches the status subresource.
    public func patchStatus<T: KubernetesAPIObject>(
        _ type: T.Type = T.self,
        _ resource: KubernetesResource,
        name: String,
        namespace: String? = nil,
        mergePatch: JSONValue
    ) async throws -> T {
        try await self.patch(
            T.self,
            resource,
            name: name,
            namespace: namespace,
            mergePatch: mergePatch,
            subresource: "status"
        )
    }

    /// Reads the scale subresource.
    public func getScale(_ resource: KubernetesResource, name: String, namespace: String? = nil) async throws -> Scale {
        let path = resource.path(namespace: self.namespace(namespace, for: resource), name: name, subresource: "scale")
        return try await self.perform(Scale.self, KubernetesRequest(method: .get, path: path))
    }

    /// Replaces the scale subresource.
    public func updateScale(
        _ scale: Scale,
        _ resource: KubernetesResource,
        namespace: String? = nil
    ) async throws
        -> Scale
    {
        try await self.update(scale, resource, namespace: namespace, subresource: "scale")
    }
}

/// Runs `body` with a client for `configuration` over a new `HTTPClient`, and shuts the `HTTPClient` down when
/// `body` returns or throws, so no connection outlives the scope.
public func withKubernetesClient<Result>(
    configuration: KubernetesConfiguration,
    logger: Logger = Logger(label: "liverelay.kubernetes"),
    _ body: (KubernetesClient) async throws -> Result
) async throws -> Result {
    let httpConfiguration = try AsyncHTTPClientTransport.httpClientConfiguration(for: configuration)
    return try await HTTPClient.withHTTPClient(configuration: httpConfiguration) { httpClient in
        let transport = AsyncHTTPClientTransport(
            client: httpClient,
            server: configuration.server,
            requestTimeout: configuration.requestTimeout
        )
        return try await body(KubernetesClient(configuration: configuration, transport: transport, logger: logger))
    }
}
