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
import Logging
public import NIOCore
import NIOFoundationCompat
public import TimeSupport

/// Splits a byte stream into lines (`\n`-terminated) holding at most `maximumLineLength` bytes of one line.
///
/// NIO's `splitLines()` does the same, but at the end of the stream it hands out an unterminated remainder as a last
/// line. For a watch that remainder is a torn event from a dropped connection, and must be reported as such, not
/// decoded; hence this small splitter. It reads from its base only when asked for a line (backpressure), and it
/// remembers how far it searched so a long line arriving in many chunks is scanned once.
public struct BoundedLineSequence<Base: AsyncSequence>: AsyncSequence where Base.Element == ByteBuffer {
    public typealias Element = ByteBuffer
    let base: Base
    let maximumLineLength: Int

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let maximumLineLength: Int
        var buffer = ByteBuffer()
        var searched = 0
        var finished = false

        public mutating func next() async throws -> ByteBuffer? {
            while true {
                if let newline = self.buffer.readableBytesView.dropFirst(self.searched).firstIndex(
                    of: UInt8(ascii: "\n")
                ) {
                    let length = newline - self.buffer.readableBytesView.startIndex
                    var line = self.buffer.readSlice(length: length)!
                    self.buffer.moveReaderIndex(forwardBy: 1)
                    self.searched = 0
                    if self.buffer.readableBytes == 0 { self.buffer.clear() }
                    if line.readableBytesView.last == UInt8(ascii: "\r") {
                        line.moveWriterIndex(to: line.writerIndex - 1)
                    }
                    if line.readableBytes == 0 { continue }
                    return line
                }
                self.searched = self.buffer.readableBytes
                guard self.buffer.readableBytes <= self.maximumLineLength else {
                    throw KubernetesError(
                        code: .lineTooLong,
                        message: "watch event longer than \(self.maximumLineLength) bytes"
                    )
                }
                if self.finished { return nil }
                guard var chunk = try await self.base.next() else {
                    self.finished = true
                    if self.buffer.readableBytes > 0 {
                        throw KubernetesError(
                            code: .truncatedWatch,
                            message: "watch stream ended inside an event (\(self.buffer.readableBytes) bytes)"
                        )
                    }
                    return nil
                }
                if self.buffer.readableBytes == 0 {
                    self.buffer = chunk
                } else {
                    self.buffer.discardReadBytes()
                    self.buffer.writeBuffer(&chunk)
                }
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.base.makeAsyncIterator(), maximumLineLength: self.maximumLineLength)
    }
}

extension BoundedLineSequence: Sendable where Base: Sendable {}

extension AsyncSequence where Element == ByteBuffer {
    /// The lines of this byte stream, none longer than `maximumLineLength`.
    public func boundedLines(maximumLineLength: Int) -> BoundedLineSequence<Self> {
        BoundedLineSequence(base: self, maximumLineLength: maximumLineLength)
    }
}

/// The events of one watch request, decoded one line at a time as the consumer asks for them.
public struct WatchEventSequence<Object: KubernetesAPIObject>: AsyncSequence, Sendable {
    public typealias Element = WatchEvent<Object>
    let lines: BoundedLineSequence<KubernetesBody>

    public struct AsyncIterator: AsyncIteratorProtocol {
        var lines: BoundedLineSequence<KubernetesBody>.AsyncIterator
        let decoder = JSONDecoder()

        public mutating func next() async throws -> WatchEvent<Object>? {
            guard let line = try await self.lines.next() else { return nil }
            do {
                return try self.decoder.decode(WatchEvent<Object>.self, from: line)
            } catch {
                throw KubernetesError.decoding("undecodable watch event", cause: error)
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(lines: self.lines.makeAsyncIterator())
    }
}

/// Options of a watch call.
public struct WatchOptions: Sendable, Hashable {
    /// Start after this version; `nil` starts with synthetic ADDED events for every existing object.
    public var resourceVersion: String?
    public var labelSelector: String?
    public var fieldSelector: String?
    /// Ask the server to end the watch after this long (it adds jitter); the caller then resumes.
    public var timeoutSeconds: Int?
    /// The longest event accepted. An event is one JSON line; 16 MiB is far above the 1.5 MiB etcd object limit.
    public var maximumEventSize: Int

    public init(
        resourceVersion: String? = nil,
        labelSelector: String? = nil,
        fieldSelector: String? = nil,
        timeoutSeconds: Int? = nil,
        maximumEventSize: Int = 16 * 1024 * 1024
    ) {
        self.resourceVersion = resourceVersion
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.timeoutSeconds = timeoutSeconds
        self.maximumEventSize = maximumEventSize
    }
}

extension KubernetesClient {
    /// Opens a watch (`?watch=true&allowWatchBookmarks=true`) and returns its events as they arrive.
    ///
    /// A `410 Gone` answer (the version was compacted away) throws a ``KubernetesError`` whose
    /// ``KubernetesError/isGone`` is true; the same can arrive later as an ``WatchEvent/error(_:)`` event.
    public func watch<T: KubernetesAPIObject>(
        _ type: T.Type = T.self,
        _ resource: KubernetesResource,
        namespace: String? = nil,
        allNamespaces: Bool = false,
        options: WatchOptions = WatchOptions()
    ) async throws -> WatchEventSequence<T> {
        let path = resource.path(
            namespace: allNamespaces || !resource.namespaced ? nil : (namespace ?? self.namespace)
        )
        var query: [(name: String, value: String)] = [("watch", "true"), ("allowWatchBookmarks", "true")]
        if let resourceVersion = options.resourceVersion { query.append(("resourceVersion", resourceVersion)) }
        if let labelSelector = options.labelSelector { query.append(("labelSelector", labelSelector)) }
        if let fieldSelector = options.fieldSelector { query.append(("fieldSelector", fieldSelector)) }
        if let timeoutSeconds = options.timeoutSeconds { query.append(("timeoutSeconds", String(timeoutSeconds))) }
        let request = KubernetesRequest(
            method: .get,
            path: path,
            query: query,
            headers: [("Accept", "application/json")]
        )
        let (response, body) = try await self.send(request)
        guard (200..<300).contains(response.status) else {
            let buffer = try await body.collect(upTo: 1024 * 1024)
            throw Self.error(status: response.status, body: buffer, request: request)
        }
        return WatchEventSequence(lines: body.boundedLines(maximumLineLength: options.maximumEventSize))
    }

    /// A list then an endless watch of a resource, resuming after failures: see ``ListWatchSequence``.
    public func listWatch<T: KubernetesAPIObject>(
        _ type: T.Type = T.self,
        _ resource: KubernetesResource,
        namespace: String? = nil,
        allNamespaces: Bool = false,
        options: ListWatchOptions = ListWatchOptions()
    ) -> ListWatchSequence<T> {
        ListWatchSequence(
            client: self,
            resource: resource,
            namespace: namespace,
            allNamespaces: allNamespaces,
            options: options
        )
    }
}

/// Options of ``KubernetesClient/listWatch(_:_:namespace:allNamespaces:options:)``.
public struct ListWatchOptions: Sendable {
    public var labelSelector: String?
    public var fieldSelector: String?
    /// Page size of the (re)list.
    public var pageSize: Int
    /// Each watch request asks the server to end after about this long; the loop then resumes where it was.
    public var watchTimeoutSeconds: Int
    public var backoff: Backoff
    public var maximumEventSize: Int

    public init(
        labelSelector: String? = nil,
        fieldSelector: String? = nil,
        pageSize: Int = 500,
        watchTimeoutSeconds: Int = 300,
        backoff: Backoff = Backoff(),
        maximumEventSize: Int = 16 * 1024 * 1024
    ) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.pageSize = pageSize
        self.watchTimeoutSeconds = watchTimeoutSeconds
        self.backoff = backoff
        self.maximumEventSize = maximumEventSize
    }
}

/// What a list-watch loop reports.
public enum ListWatchEvent<Object: KubernetesAPIObject>: Sendable {
    /// A complete list: the caller replaces its whole view with these objects (delete what is not among them).
    case listed([Object], resourceVersion: String)
    /// A change after the last list or event.
    case event(WatchEvent<Object>)
}

/// The reflector loop of client-go, as one async sequence with no stored task and no unbounded buffer.
///
/// It lists (paginated), then watches from the list's `resourceVersion`. When a watch ends or drops it watches again
/// from the last `resourceVersion` it delivered (an object's or a bookmark's), so no event is skipped and none is
/// repeated. On `410 Gone`, as a response or an `ERROR` event, it lists again and yields ``ListWatchEvent/listed``.
/// Failures (refused connections, 5xx, torn events) are retried after a capped exponential backoff that resets once
/// something succeeds. It only ends by throwing `CancellationError` or an error that retrying cannot fix
/// (an event larger than the limit, 401/403/404 on the list).
public struct ListWatchSequence<Object: KubernetesAPIObject>: AsyncSequence, Sendable {
    public typealias Element = ListWatchEvent<Object>
    let client: KubernetesClient
    let resource: KubernetesResource
    let namespace: String?
    let allNamespaces: Bool
    let options: ListWatchOptions

    public struct AsyncIterator: AsyncIteratorProtocol {
        let sequence: ListWatchSequence
        var resourceVersion: String?
        var needsList = true
        var failures = 0
        var watch: WatchEventSequence<Object>.AsyncIterator?
        /// Whether the current watch delivered anything; one that ends empty counts as a failure, so a server that
        /// closes every watch at once is not hammered in a tight loop.
        var watchDeliveredEvents = false

        var logger: Logger { self.sequence.client.logger }

        private mutating func fail(_ error: any Error, _ what: String) async throws {
            if error is CancellationError { throw error }
            if let error = error as? KubernetesError {
                if error.code == .lineTooLong { throw error }
                if what == "list", let code = error.statusCode, [401, 403, 404].contains(code) { throw error }
            }
            self.failures += 1
            let delay = self.sequence.options.backoff.delay(afterFailures: self.failures)
            self.logger.debug(
                "k8s \(what) failed, retrying",
                metadata: [
                    "k8s.resource": "\(self.sequence.resource)", "error": "\(error)",
                    "k8s.retry.delay": "\(delay)",
                ]
            )
            try await Task.sleep(for: delay)
        }

        public mutating func next() async throws -> ListWatchEvent<Object>? {
            let options = self.sequence.options
            while true {
                try Task.checkCancellation()
                if self.needsList {
                    do {
                        let (items, version) = try await self.sequence.client.listAll(
                            Object.self,
                            self.sequence.resource,
                            namespace: self.sequence.namespace,
                            allNamespaces: self.sequence.allNamespaces,
                            options: ListOptions(
                                labelSelector: options.labelSelector,
                                fieldSelector: options.fieldSelector,
                                limit: options.pageSize
                            )
                        )
                        self.needsList = false
                        self.resourceVersion = version
                        self.failures = 0
                        return .listed(items, resourceVersion: version)
                    } catch {
                        try await self.fail(error, "list")
                        continue
                    }
                }
                if self.watch == nil {
                    do {
                        let events = try await self.sequence.client.watch(
                            Object.self,
                            self.sequence.resource,
                            namespace: self.sequence.namespace,
                            allNamespaces: self.sequence.allNamespaces,
                            options: WatchOptions(
                                resourceVersion: self.resourceVersion,
                                labelSelector: options.labelSelector,
                                fieldSelector: options.fieldSelector,
                                timeoutSeconds: options.watchTimeoutSeconds,
                                maximumEventSize: options.maximumEventSize
                            )
                        )
                        self.watch = events.makeAsyncIterator()
                        self.watchDeliveredEvents = false
                    } catch let error as KubernetesError where error.isGone {
                        self.logger.debug("k8s watch: resourceVersion gone, relisting")
                        self.needsList = true
                        continue
                    } catch {
                        try await self.fail(error, "watch")
                        continue
                    }
                }
                do {
                    guard let event = try await self.watch!.next() else {
                        // The server ended the watch (its timeout): resume from where we are.
                        self.watch = nil
                        if !self.watchDeliveredEvents {
                            try await self.fail(KubernetesError.transport("watch ended without events"), "watch")
                        }
                        continue
                    }
                    if case .error(let status) = event {
                        self.watch = nil
                        if status.code == 410 || status.reason == "Expired" || status.reason == "Gone" {
                            self.needsList = true
                        } else {
                            try await self.fail(KubernetesError.api(status), "watch")
                        }
                        continue
                    }
                    if let version = event.resourceVersion, !version.isEmpty {
                        self.resourceVersion = version
                    }
                    self.failures = 0
                    self.watchDeliveredEvents = true
                    return .event(event)
                } catch {
                    self.watch = nil
                    try await self.fail(error, "watch")
                }
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(sequence: self)
    }
}

@available(*, unavailable)
extension BoundedLineSequence.AsyncIterator: Sendable {}

@available(*, unavailable)
extension WatchEventSequence.AsyncIterator: Sendable {}

@available(*, unavailable)
extension ListWatchSequence.AsyncIterator: Sendable {}
