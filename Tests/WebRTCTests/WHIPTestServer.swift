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
import ServiceLifecycle
import Synchronization
import WebRTC

/// A minimal WHIP endpoint (RFC 9725 §4.2) over a ``WebRTCTransport``, for tests only: POST an offer with the
/// Bearer token to `/whip/NAMESPACE/NAME`, get 201, the answer and a Location; DELETE the Location to end it. It
/// also serves a publisher page and takes the page's reports.
final class WHIPTestServer: Sendable {
    struct Registered: Sendable {
        var path: String
        var session: WebRTCSession
    }

    let transport: WebRTCTransport
    let token: String
    let sessions: AsyncStream<Registered>
    private let sessionsContinuation: AsyncStream<Registered>.Continuation
    private let reports = Mutex<[String]>([])
    private let open = Mutex<[String: WebRTCSession]>([:])
    /// Whether a POST to a path ending in `-tampered` gets its offer's fingerprint replaced, so that the peer's real
    /// certificate no longer matches.
    let page: String

    init(transport: WebRTCTransport, token: String, page: String) {
        self.transport = transport
        self.token = token
        self.page = page
        (self.sessions, self.sessionsContinuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    /// What the page reported, in order.
    var pageReports: [String] { self.reports.withLock { $0 } }

    /// Runs the HTTP server on an ephemeral port of 127.0.0.1 while `body` runs.
    func run<Result: Sendable>(_ body: @Sendable (Int) async throws -> Result) async throws -> Result {
        let router = Router()
        router.get("publish.html") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: self.page))
            )
        }
        router.post("report") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 64 * 1024)
            self.reports.withLock { $0.append(String(buffer: body)) }
            return .noContent
        }
        router.post("whip/:namespace/:name") { request, context -> Response in
            guard request.headers[.authorization] == "Bearer \(self.token)" else {
                return Response(status: .unauthorized)
            }
            let name = context.parameters.get("name") ?? ""
            let body = try await request.body.collect(upTo: 128 * 1024)
            var offer = String(buffer: body)
            if name.hasSuffix("-tampered") {
                offer = offer.split(separator: "\r\n", omittingEmptySubsequences: false).map { line in
                    line.hasPrefix("a=fingerprint:sha-256 ")
                        ? "a=fingerprint:sha-256 " + Array(repeating: "00", count: 32).joined(separator: ":")
                        : String(line)
                }.joined(separator: "\r\n")
            }
            let session: WebRTCSession
            do {
                session = try await self.transport.register(offer: offer)
            } catch let error as WebRTCError {
                return Response(
                    status: error.code == .limitExceeded ? .serviceUnavailable : .unprocessableContent,
                    body: .init(byteBuffer: ByteBuffer(string: "\(error)\n"))
                )
            }
            self.open.withLock { $0[session.id] = session }
            self.sessionsContinuation.yield(Registered(path: request.uri.path, session: session))
            return Response(
                status: .created,
                headers: [
                    .contentType: "application/sdp",
                    .location: "/whip/resource/\(session.id)",
                ],
                body: .init(byteBuffer: ByteBuffer(string: session.answer))
            )
        }
        router.delete("whip/resource/:id") { _, context -> HTTPResponse.Status in
            guard let id = context.parameters.get("id"),
                let session = self.open.withLock({ $0.removeValue(forKey: id) })
            else { return .notFound }
            session.close()
            return .ok
        }
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { portContinuation.yield($0.localAddress?.port ?? 0) },
            logger: Logger(label: "whip-test.http") { _ in SwiftLogNoOpLogHandler() }
        )
        let services = ServiceGroup(
            configuration: .init(
                services: [application],
                logger: Logger(label: "whip-test.services") { _ in SwiftLogNoOpLogHandler() }
            )
        )
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw WebRTCError(code: .sessionClosed, message: "no port") }
            do {
                let result = try await body(port)
                await services.triggerGracefulShutdown()
                try await group.waitForAll()
                return result
            } catch {
                await services.triggerGracefulShutdown()
                group.cancelAll()
                throw error
            }
        }
    }
}
