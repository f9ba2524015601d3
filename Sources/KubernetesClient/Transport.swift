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
public import NIOCore

/// One request to the API server, before authentication and transport details are added.
public struct KubernetesRequest: Sendable {
    public enum Method: String, Sendable {
        case get = "GET"
        case post = "POST"
        case put = "PUT"
        case patch = "PATCH"
        case delete = "DELETE"
    }

    public var method: Method
    /// The absolute path, e.g. `/apis/coordination.k8s.io/v1/namespaces/default/leases/operator`.
    public var path: String
    public var query: [(name: String, value: String)]
    public var headers: [(name: String, value: String)]
    /// Whether sending the request twice has the same effect as sending it once; only these are retried after a
    /// 429 or a 5xx. GET, PUT (guarded by `resourceVersion`), DELETE and server-side apply are; POST and merge
    /// patches are not.
    public var isIdempotent: Bool

    public init(
        method: Method,
        path: String,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [],
        isIdempotent: Bool? = nil
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.isIdempotent = isIdempotent ?? [.get, .put, .delete].contains(method)
    }

    /// The first value of the query parameter `name`.
    public func queryValue(_ name: String) -> String? {
        self.query.first { $0.name == name }?.value
    }

    /// The first value of the header `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        self.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// `path?query`, percent-encoded.
    public var target: String {
        guard !self.query.isEmpty else { return self.path }
        let query = self.query.map { "\(Self.encode($0.name))=\(Self.encode($0.value))" }.joined(separator: "&")
        return "\(self.path)?\(query)"
    }

    private static func encode(_ string: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return string.addingPercentEncoding(withAllowedCharacters: allowed) ?? string
    }
}

/// The status line and headers of a response; the body travels separately as a ``KubernetesBody``.
public struct KubernetesResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]

    public init(status: Int, headers: [(name: String, value: String)] = []) {
        self.status = status
        self.headers = headers
    }

    public func header(_ name: String) -> String? {
        self.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// A request or response body: an asynchronous sequence of `ByteBuffer`s.
///
/// It is our own type, not AsyncHTTPClient's, so the client's callers and tests never depend on the transport (NIO's
/// advice for public async sequences). Backpressure is the base sequence's: nothing is read ahead of the consumer.
public struct KubernetesBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    public typealias Failure = any Error

    private enum Storage: Sendable {
        case buffer(ByteBuffer)
        case stream(@Sendable () -> AsyncIterator)
    }

    private let storage: Storage

    /// A body that is one buffer, known in full (requests, and responses in tests).
    public init(_ buffer: ByteBuffer) {
        self.storage = .buffer(buffer)
    }

    public init(_ string: String) {
        self.storage = .buffer(ByteBuffer(string: string))
    }

    /// A body that streams `sequence`.
    public init<Base: AsyncSequence & Sendable>(_ sequence: Base) where Base.Element == ByteBuffer {
        self.storage = .stream {
            var iterator = sequence.makeAsyncIterator()
            return AsyncIterator(next: { try await iterator.next() })
        }
    }

    public static var empty: KubernetesBody { KubernetesBody(ByteBuffer()) }

    /// The whole body when it is one buffer already (so it can be sent again on a retry).
    public var buffer: ByteBuffer? {
        if case .buffer(let buffer) = self.storage { return buffer }
        return nil
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        private var nextElement: () async throws -> ByteBuffer?

        fileprivate init(next: @escaping () async throws -> ByteBuffer?) {
            self.nextElement = next
        }

        public mutating func next() async throws -> ByteBuffer? {
            try await self.nextElement()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        switch self.storage {
        case .buffer(let buffer):
            var pending: ByteBuffer? = buffer.readableBytes > 0 ? buffer : nil
            return AsyncIterator(next: {
                defer { pending = nil }
                return pending
            })
        case .stream(let make):
            return make()
        }
    }

    /// Reads the whole body, refusing more than `maxBytes`.
    public func collect(upTo maxBytes: Int) async throws -> ByteBuffer {
        if let buffer = self.buffer {
            guard buffer.readableBytes <= maxBytes else {
                throw KubernetesError.transport("response body larger than \(maxBytes) bytes")
            }
            return buffer
        }
        var result = ByteBuffer()
        for try await chunk in self {
            guard result.readableBytes + chunk.readableBytes <= maxBytes else {
                throw KubernetesError.transport("response body larger than \(maxBytes) bytes")
            }
            var chunk = chunk
            result.writeBuffer(&chunk)
        }
        return result
    }
}

/// How requests reach the API server. ``AsyncHTTPClientTransport`` is the real one; ``FakeTransport`` answers from a
/// closure in tests. Authentication and retries are ``KubernetesMiddleware`` around a transport, not part of it.
public protocol KubernetesTransport: Sendable {
    func send(_ request: KubernetesRequest, body: KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
}

/// A step around every request, shaped like swift-openapi-runtime's `ClientMiddleware`: it may change the request,
/// call `next` zero or more times, and change the response.
public protocol KubernetesMiddleware: Sendable {
    func intercept(
        _ request: KubernetesRequest,
        body: KubernetesBody?,
        next: @Sendable (KubernetesRequest, KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    ) async throws -> (KubernetesResponse, KubernetesBody)
}

/// A transport whose answers come from a closure: for tests of the client and of anything built on it.
public struct FakeTransport: KubernetesTransport {
    public typealias Handler =
        @Sendable (KubernetesRequest, KubernetesBody?) async throws -> (
            KubernetesResponse, KubernetesBody
        )

    private let handler: Handler

    public init(_ handler: @escaping Handler) {
        self.handler = handler
    }

    public func send(
        _ request: KubernetesRequest,
        body: KubernetesBody?
    ) async throws -> (
        KubernetesResponse, KubernetesBody
    ) {
        try await self.handler(request, body)
    }

    /// A body delivered as the given chunks, one `next()` each, to test decoding across chunk boundaries.
    public static func chunkedBody(_ chunks: [String]) -> KubernetesBody {
        KubernetesBody(ChunkSequence(chunks: chunks.map { ByteBuffer(string: $0) }))
    }

    /// A body delivered as the given chunks that then fails with `error`, as a dropped connection does.
    public static func chunkedBody(_ chunks: [String], thenFail error: any Error & Sendable) -> KubernetesBody {
        KubernetesBody(ChunkSequence(chunks: chunks.map { ByteBuffer(string: $0) }, failure: error))
    }

    /// A JSON response with the given status.
    public static func json(_ status: Int, _ body: String) -> (KubernetesResponse, KubernetesBody) {
        (
            KubernetesResponse(status: status, headers: [("Content-Type", "application/json")]),
            KubernetesBody(body)
        )
    }

    private struct ChunkSequence: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        var chunks: [ByteBuffer]
        var failure: (any Error & Sendable)? = nil

        struct AsyncIterator: AsyncIteratorProtocol {
            var chunks: [ByteBuffer]
            var index = 0
            var failure: (any Error)?

            mutating func next() async throws -> ByteBuffer? {
                if self.index < self.chunks.count {
                    defer { self.index += 1 }
                    return self.chunks[self.index]
                }
                if let failure = self.failure {
                    self.failure = nil
                    throw failure
                }
                return nil
            }
        }

        func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(chunks: self.chunks, failure: self.failure)
        }
    }
}

@available(*, unavailable)
extension KubernetesBody.AsyncIterator: Sendable {}
