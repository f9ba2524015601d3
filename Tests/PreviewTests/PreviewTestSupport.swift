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
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PeerTestSupport
import Preview
import Relay
import RelayAPI
import ServiceLifecycle
import Synchronization
import Testing

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The relay's log lines, kept for assertions.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { self.lines.withLock { $0 } }
    func append(_ line: String) { self.lines.withLock { $0.append(line) } }
    func contains(_ text: String) -> Bool { self.all.contains { $0.contains(text) } }
}

struct LineLogHandler: LogHandler {
    let lines: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = self.metadata
        if let extra = event.metadata {
            all.merge(extra) { $1 }
        }
        let rendered = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        self.lines.append("\(event.level) \(event.message) \(rendered)")
    }
}

/// What the preview page reported to the test's endpoint.
struct PageReport: Decodable, Sendable {
    struct Frame: Decodable, Sendable {
        var png: String
        var brightness: Double
    }
    var state: String
    var detail: String
    var generation: Int
    var supported: Bool?
    var sessions: Int
    var currentTime: Double
    var paused: Bool
    var readyState: Int
    var videoWidth: Int
    var videoHeight: Int
    var decodedFrames: Int?
    var frame: Frame?
}

/// The reports the page POSTs while a test runs.
final class PageReports: Sendable {
    private let reports = Mutex<[PageReport]>([])
    var all: [PageReport] { self.reports.withLock { $0 } }
    var last: PageReport? { self.all.last }
    func append(_ report: PageReport) { self.reports.withLock { $0.append(report) } }
}

/// A relay running in this process on 127.0.0.1 with ephemeral ports, its HTTP server, and an endpoint that
/// receives the preview page's reports.
struct PreviewRelay: Sendable {
    let rtmpPort: Int
    let httpPort: Int
    let reportPort: Int
    let streamKey: String
    let logs: LogLines
    let reports: PageReports
    let server: RelayServer

    var publishURL: String { "rtmp://127.0.0.1:\(self.rtmpPort)/live/\(self.streamKey)" }
    func url(_ path: String) -> String { "http://127.0.0.1:\(self.httpPort)\(path)" }
    var pageURL: String {
        self.url("/preview/default/?capture=1&report=http://127.0.0.1:\(self.reportPort)/report")
    }

    func get(
        _ path: String,
        headers: [(String, String)] = []
    ) async throws -> (
        status: Int, headers: HTTPHeaders, body: ByteBuffer
    ) {
        var request = HTTPClientRequest(url: self.url(path))
        for (name, value) in headers {
            request.headers.add(name: name, value: value)
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), response.headers, body)
    }

    func previewStatus() async throws -> PreviewStatus {
        let (status, _, body) = try await self.get("/preview/default/status")
        guard status == 200 else {
            throw TestFailure("GET status answered \(status): \(String(buffer: body))")
        }
        return try JSONDecoder().decode(PreviewStatus.self, from: body)
    }

    func streamStatus() async throws -> StreamStatus {
        let (status, _, body) = try await self.get("/api/v1/streams/default")
        guard status == 200 else {
            throw TestFailure("GET /api/v1/streams/default answered \(status)")
        }
        return try JSONDecoder().decode(StreamStatus.self, from: body)
    }

    /// Waits for a page report that matches `predicate`, with the last reports in the failure.
    func waitForReport(
        _ what: String,
        timeout: Duration = .seconds(40),
        _ predicate: @escaping @Sendable (PageReport) -> Bool
    ) async throws -> PageReport {
        do {
            return try await eventually(what, timeout: timeout) { self.reports.all.last(where: predicate) }
        } catch {
            let last = self.reports.all.suffix(3).map {
                "state=\($0.state) detail=\($0.detail) t=\($0.currentTime) paused=\($0.paused) ready=\($0.readyState)"
            }
            throw TestFailure("\(error); last page reports: \(last)")
        }
    }
}

/// Runs a relay with one stream `default` (preview on, HLS under a directory of the test's own) for `body`.
func withPreviewRelay<Result: Sendable>(
    targets: [PushTargetConfiguration] = [],
    configure: @Sendable (inout RelayConfiguration) -> Void = { _ in },
    _ body: @Sendable (PreviewRelay) async throws -> Result
) async throws -> Result {
    let lines = LogLines()
    let logger = Logger(label: "liverelay.preview-test") { _ in LineLogHandler(lines: lines) }
    let key = "ingest-\(UInt64.random(in: 0...UInt64.max))"
    var configuration = RelayConfiguration(
        host: "127.0.0.1",
        port: 0,
        app: "live",
        streamKey: Secret(key),
        targets: targets
    )
    configuration.reconnectInitial = .milliseconds(200)
    configuration.reconnectMaximum = .seconds(2)
    configuration.shutdownGrace = .seconds(2)
    configure(&configuration)
    let (ports, portContinuation) = AsyncStream<(String, Int)>.makeStream()
    let server = try RelayServer(configuration: configuration, logger: logger) { address in
        portContinuation.yield(("rtmp", address.port ?? 0))
    }
    let http = makeRelayHTTPApplication(
        relay: server,
        host: "127.0.0.1",
        port: 0,
        logger: logger
    ) { portContinuation.yield(("http", $0)) }
    let reports = PageReports()
    let reportRouter = Router()
    reportRouter.post("report") { request, _ -> HTTPResponse.Status in
        let body = try await request.body.collect(upTo: 32 << 20)
        if let report = try? JSONDecoder().decode(PageReport.self, from: body) {
            reports.append(report)
        }
        return .noContent
    }
    let reportServer = Application(
        router: reportRouter,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in portContinuation.yield(("report", channel.localAddress?.port ?? 0)) },
        logger: Logger(label: "preview-test.report") { _ in SwiftLogNoOpLogHandler() }
    )
    let group = ServiceGroup(
        configuration: .init(
            services: [.init(service: reportServer), .init(service: http), .init(service: server)],
            logger: Logger(label: "preview-test.services") { _ in SwiftLogNoOpLogHandler() }
        )
    )
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var found: [String: Int] = [:]
        for await (name, port) in ports {
            found[name] = port
            if found.count == 3 {
                break
            }
        }
        guard let rtmp = found["rtmp"], let httpPort = found["http"], let reportPort = found["report"] else {
            throw TestFailure("the relay did not start")
        }
        let relay = PreviewRelay(
            rtmpPort: rtmp,
            httpPort: httpPort,
            reportPort: reportPort,
            streamKey: key,
            logs: lines,
            reports: reports,
            server: server
        )
        do {
            let result = try await body(relay)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            #expect(!lines.contains(key), "the ingest key appeared in the log")
            return result
        } catch {
            await group.triggerGracefulShutdown()
            tasks.cancelAll()
            throw error
        }
    }
}

/// A directory of the test's own, removed afterwards.
func withTemporaryDirectory<Result>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (String) async throws -> Result
) async throws -> Result {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("liverelay-preview-test-\(UInt64.random(in: 0...UInt64.max))").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// Saves the PNG frame a page report carries to `name` in the artifacts directory (`LIVERELAY_ARTIFACTS`, or
/// `liverelay-test-artifacts-UID` in the temporary directory: a file of a fixed name there belongs to whichever user
/// ran the tests first), and returns the path.
func saveFrame(_ report: PageReport, name: String) throws -> String? {
    guard let frame = report.frame, let comma = frame.png.firstIndex(of: ",") else {
        return nil
    }
    guard let data = Data(base64Encoded: String(frame.png[frame.png.index(after: comma)...])) else {
        return nil
    }
    let directory =
        ProcessInfo.processInfo.environment["LIVERELAY_ARTIFACTS"]
        ?? FileManager.default.temporaryDirectory.appendingPathComponent("liverelay-test-artifacts-\(getuid())").path
    try FileManager.default.createDirectory(
        atPath: directory,
        withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700]
    )
    let path = directory + "/\(name).png"
    try data.write(to: URL(fileURLWithPath: path))
    return path
}
