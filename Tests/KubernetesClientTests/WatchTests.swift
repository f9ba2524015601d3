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
import NIOCore
import Synchronization
import Testing
import TimeSupport

/// A watch line for a ConfigMap-like object.
func eventLine(_ type: String, name: String, resourceVersion: String, data: String = "x") -> String {
    #"{"type":"\#(type)","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"\#(name)","namespace":"default","resourceVersion":"\#(resourceVersion)"},"data":{"v":"\#(data)"}}}"#
        + "\n"
}

func listBody(resourceVersion: String, names: [(String, String)]) -> String {
    let items = names.map {
        #"{"metadata":{"name":"\#($0.0)","namespace":"default","resourceVersion":"\#($0.1)"}}"#
    }
    return
        #"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"\#(resourceVersion)"},"items":[\#(items.joined(separator: ","))]}"#
}

/// Records every request a FakeTransport saw.
final class RequestLog: Sendable {
    private let requests = Mutex<[KubernetesRequest]>([])
    func append(_ request: KubernetesRequest) { self.requests.withLock { $0.append(request) } }
    var all: [KubernetesRequest] { self.requests.withLock { $0 } }
}

@Suite("Watch streaming", .timeLimit(.minutes(3)))
struct WatchTests {
    func client(_ handler: @escaping FakeTransport.Handler) -> KubernetesClient {
        KubernetesClient(transport: FakeTransport(handler))
    }

    @Test("an event split across chunks, even inside a UTF-8 sequence, decodes once")
    func splitAcrossChunks() async throws {
        let line =
            eventLine("ADDED", name: "a", resourceVersion: "5", data: "é✓")
            + eventLine("MODIFIED", name: "a", resourceVersion: "6")
        let bytes = Array(line.utf8)
        for chunkSize in [1, 3, 7, 64, bytes.count] {
            let buffers = stride(from: 0, to: bytes.count, by: chunkSize).map {
                ByteBuffer(bytes: bytes[$0..<min($0 + chunkSize, bytes.count)])
            }
            let client = self.client { _, _ in
                (KubernetesResponse(status: 200), KubernetesBody(BufferSequence(buffers: buffers)))
            }
            var versions: [String] = []
            for try await event in try await client.watch(KubernetesObject.self, .configMaps) {
                versions.append(event.resourceVersion ?? "?")
                if case .added(let object) = event {
                    #expect(object["data"]?["v"]?.stringValue == "é✓")
                }
            }
            #expect(versions == ["5", "6"], "chunk size \(chunkSize)")
        }
    }

    @Test("a line over the limit is a clear error; one under it but larger than a chunk is fine")
    func longLines() async throws {
        let big = String(repeating: "y", count: 100_000)
        let line = eventLine("ADDED", name: "big", resourceVersion: "9", data: big)
        let chunks = stride(from: 0, to: line.utf8.count, by: 4096).map {
            String(line.utf8.dropFirst($0).prefix(4096))!
        }
        let client = self.client { _, _ in (KubernetesResponse(status: 200), FakeTransport.chunkedBody(chunks)) }

        var count = 0
        for try await event in try await client.watch(
            KubernetesObject.self,
            .configMaps,
            options: WatchOptions(maximumEventSize: 200_000)
        ) {
            if case .added(let object) = event { #expect(object["data"]?["v"]?.stringValue?.count == 100_000) }
            count += 1
        }
        #expect(count == 1)

        let error = await #expect(throws: KubernetesError.self) {
            for try await _ in try await client.watch(
                KubernetesObject.self,
                .configMaps,
                options: WatchOptions(maximumEventSize: 50_000)
            ) {}
        }
        #expect(error?.code == .lineTooLong)
    }

    @Test("bookmarks and ERROR events decode")
    func bookmarkAndError() async throws {
        let body =
            #"{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"42"}}}"#
            + "\n"
            + #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old","reason":"Expired","code":410}}"#
            + "\n"
        let log = RequestLog()
        let client = self.client { request, _ in
            log.append(request)
            return (KubernetesResponse(status: 200), KubernetesBody(body))
        }
        var events: [WatchEvent<KubernetesObject>] = []
        for try await event in try await client.watch(
            KubernetesObject.self,
            .configMaps,
            options: WatchOptions(resourceVersion: "7")
        ) {
            events.append(event)
        }
        #expect(events.count == 2)
        guard case .bookmark(let version) = events[0], case .error(let status) = events[1] else {
            Issue.record("unexpected events \(events)")
            return
        }
        #expect(version == "42")
        #expect(status.code == 410)
        let request = try #require(log.all.first)
        #expect(request.path == "/api/v1/namespaces/default/configmaps")
        #expect(request.queryValue("allowWatchBookmarks") == "true")
        #expect(request.queryValue("watch") == "true")
        #expect(request.queryValue("resourceVersion") == "7")
    }

    @Test("a stream closed mid-event resumes from the last complete event's resourceVersion")
    func resumeAfterTornEvent() async throws {
        let log = RequestLog()
        let watchCount = Mutex(0)
        let client = self.client { request, _ in
            log.append(request)
            if request.queryValue("watch") != "true" {
                return FakeTransport.json(200, listBody(resourceVersion: "10", names: [("a", "3")]))
            }
            let attempt = watchCount.withLock { count -> Int in
                count += 1
                return count
            }
            if attempt == 1 {
                let torn = eventLine("MODIFIED", name: "a", resourceVersion: "12")
                return (
                    KubernetesResponse(status: 200),
                    FakeTransport.chunkedBody([
                        eventLine("ADDED", name: "b", resourceVersion: "11"), String(torn.prefix(40)),
                    ])
                )
            }
            return (
                KubernetesResponse(status: 200), KubernetesBody(eventLine("MODIFIED", name: "a", resourceVersion: "12"))
            )
        }
        var seen: [String] = []
        var iterator = client.listWatch(
            KubernetesObject.self,
            .configMaps,
            options: ListWatchOptions(backoff: Backoff(initial: .milliseconds(1), maximum: .milliseconds(5)))
        ).makeAsyncIterator()
        while seen.count < 3, let event = try await iterator.next() {
            switch event {
            case .listed(let items, let version): seen.append("list@\(version):\(items.count)")
            case .event(let event): seen.append("event@\(event.resourceVersion ?? "")")
            }
        }
        #expect(seen == ["list@10:1", "event@11", "event@12"])
        let watches = log.all.filter { $0.queryValue("watch") == "true" }
        #expect(watches.map { $0.queryValue("resourceVersion") } == ["10", "11"])
    }

    @Test("410 Gone, as a response or as an ERROR event, relists")
    func relistOnGone() async throws {
        let log = RequestLog()
        let step = Mutex(0)
        let client = self.client { request, _ in
            log.append(request)
            let n = step.withLock { value -> Int in
                value += 1
                return value
            }
            switch n {
            case 1: return FakeTransport.json(200, listBody(resourceVersion: "10", names: [("a", "3"), ("b", "4")]))
            case 2:
                // The watch starts, then the server says the version is too old.
                let error =
                    #"{"type":"ERROR","object":{"kind":"Status","status":"Failure","reason":"Expired","code":410}}"#
                return (
                    KubernetesResponse(status: 200),
                    KubernetesBody(eventLine("ADDED", name: "c", resourceVersion: "11") + error + "\n")
                )
            case 3: return FakeTransport.json(200, listBody(resourceVersion: "20", names: [("a", "3")]))
            case 4:
                return FakeTransport.json(
                    410,
                    #"{"kind":"Status","status":"Failure","reason":"Expired","code":410,"message":"too old"}"#
                )
            case 5: return FakeTransport.json(200, listBody(resourceVersion: "30", names: []))
            default:
                return (
                    KubernetesResponse(status: 200),
                    KubernetesBody(eventLine("ADDED", name: "z", resourceVersion: "31"))
                )
            }
        }
        var seen: [String] = []
        var iterator = client.listWatch(KubernetesObject.self, .configMaps).makeAsyncIterator()
        while seen.count < 5, let event = try await iterator.next() {
            switch event {
            case .listed(let items, let version): seen.append("list@\(version):\(items.count)")
            case .event(let event): seen.append("event@\(event.resourceVersion ?? "")")
            }
        }
        #expect(seen == ["list@10:2", "event@11", "list@20:1", "list@30:0", "event@31"])
        #expect(
            log.all.filter { $0.queryValue("watch") != "true" }.allSatisfy { $0.queryValue("resourceVersion") == nil }
        )
    }
}

/// Raw buffers as a body, so tests can split inside a UTF-8 sequence.
struct BufferSequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffers: [ByteBuffer]

    struct AsyncIterator: AsyncIteratorProtocol {
        var buffers: [ByteBuffer]
        var index = 0
        mutating func next() async throws -> ByteBuffer? {
            guard self.index < self.buffers.count else { return nil }
            defer { self.index += 1 }
            return self.buffers[self.index]
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffers: self.buffers) }
}
