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

/// One finished RTMP connection, as nginx-rtmp's access log records it when the connection closes.
public struct RTMPSessionLogEntry: Sendable, Hashable {
    /// What the connection did: `PUBLISH`, `PLAY`, `PLAY+PUBLISH`, or `NONE` for one that only connected.
    public var command: String
    /// The application it connected to.
    public var app: String
    /// The stream it published or played, without query arguments.
    public var stream: String
    /// Bytes nginx received on the connection.
    public var bytesReceived: Int
    /// Bytes nginx sent on the connection.
    public var bytesSent: Int
    /// How long the connection lasted, in whole seconds.
    public var sessionSeconds: Int

    /// Whether the connection published.
    public var published: Bool { self.command.contains("PUBLISH") }
    /// Whether the connection played.
    public var played: Bool { self.command.contains("PLAY") }

    public init(command: String, app: String, stream: String, bytesReceived: Int, bytesSent: Int, sessionSeconds: Int) {
        self.command = command
        self.app = app
        self.stream = stream
        self.bytesReceived = bytesReceived
        self.bytesSent = bytesSent
        self.sessionSeconds = sessionSeconds
    }

    /// Parses one line in ``NginxRTMP/accessLogFormat``; `nil` for anything else (such as a partly written line).
    init?(line: Substring) {
        let fields = line.split(separator: "|", omittingEmptySubsequences: false)
        guard fields.count == 6, let received = Int(fields[3]), let sent = Int(fields[4]),
            let seconds = Int(fields[5])
        else { return nil }
        self.init(
            command: String(fields[0]),
            app: String(fields[1]),
            stream: String(fields[2]),
            bytesReceived: received,
            bytesSent: sent,
            sessionSeconds: seconds
        )
    }

    /// The complete lines of an access log. A last line without its newline is still being written and is skipped.
    static func parse(log: String) -> [RTMPSessionLogEntry] {
        var lines = log.split(separator: "\n", omittingEmptySubsequences: false)
        lines.removeLast()
        return lines.compactMap(RTMPSessionLogEntry.init(line:))
    }
}

extension NginxRTMP {
    /// How often the waits below look at the access log or the statistics page.
    static let pollInterval = Duration.milliseconds(50)

    /// Every RTMP connection that has finished so far, oldest first.
    public func finishedSessions() -> [RTMPSessionLogEntry] {
        RTMPSessionLogEntry.parse(log: readFile(self.accessLogPath))
    }

    /// Waits until `count` publish sessions of `app`/`stream` have finished, and returns the last of them.
    ///
    /// nginx-rtmp writes an access-log line when a connection closes, after it has closed the stream's recording, so
    /// once this returns ``recordingPath(app:stream:)`` is complete and will not change. The log is polled every
    /// 50 ms (a stat of its size, and a read when it grew): an inotify watch would save little, and nothing here
    /// sleeps blindly.
    ///
    /// - Parameters:
    ///   - count: How many finished publish sessions of this stream to wait for, counting from nginx's start. Use 2
    ///     after the second publish of the same stream name.
    ///   - timeout: How long to wait.
    /// - Throws: ``PeerError`` with the access and error logs on timeout, or when nginx has exited.
    @discardableResult
    public func waitForPublishEnded(
        app: String,
        stream: String,
        count: Int = 1,
        timeout: Duration = .seconds(30)
    ) async throws -> RTMPSessionLogEntry {
        try await self.waitForSessions(count: count, timeout: timeout, what: "publish of \(app)/\(stream) to end") {
            $0.published && $0.app == app && $0.stream == stream
        }
    }

    /// Waits until `count` play sessions of `app`/`stream` have finished, and returns the last of them.
    @discardableResult
    public func waitForPlayEnded(
        app: String,
        stream: String,
        count: Int = 1,
        timeout: Duration = .seconds(30)
    ) async throws -> RTMPSessionLogEntry {
        try await self.waitForSessions(count: count, timeout: timeout, what: "play of \(app)/\(stream) to end") {
            $0.played && $0.app == app && $0.stream == stream
        }
    }

    private func waitForSessions(
        count: Int,
        timeout: Duration,
        what: String,
        matching predicate: (RTMPSessionLogEntry) -> Bool
    ) async throws -> RTMPSessionLogEntry {
        let deadline = ContinuousClock.now + timeout
        var seenSize = -1
        while true {
            let size = fileSize(self.accessLogPath)
            if size != seenSize {
                seenSize = size
                let matching = self.finishedSessions().filter(predicate)
                if matching.count >= count, let last = matching.last {
                    return last
                }
            }
            try await self.pollAgain(until: deadline, waitingFor: what)
        }
    }

    /// Waits until `app`/`stream` has a publisher that is sending media, as nginx-rtmp's `/stat` page shows it.
    ///
    /// The page is fetched every 50 ms until the stream shows both `publishing` (a publisher is attached) and
    /// `active` (which nginx-rtmp's live module sets when the first audio or video message arrives), so a player
    /// connecting after this returns gets media.
    ///
    /// - Throws: ``PeerError`` with the last statistics and the error log on timeout, or when nginx has exited.
    public func waitForPublishStarted(app: String, stream: String, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        func finished() -> Int {
            self.finishedSessions().count { $0.app == app && $0.stream == stream && $0.published }
        }
        let finishedBefore = finished()
        while true {
            if let statistics = try? self.statistics(),
                Self.isPublishing(statistics: statistics, app: app, stream: stream)
            {
                return
            }
            // A short publish may have started and ended between two polls (or while a loaded machine kept /stat
            // from answering): a session that ended since the wait began says it started.
            if finished() > finishedBefore {
                return
            }
            try await self.pollAgain(until: deadline, waitingFor: "publish of \(app)/\(stream) to start")
        }
    }

    /// Whether `app`/`stream` has an active publisher right now.
    public func isPublishing(app: String, stream: String) throws -> Bool {
        Self.isPublishing(statistics: try self.statistics(), app: app, stream: stream)
    }

    /// nginx-rtmp's statistics page (XML), as served at `http://127.0.0.1:statPort/stat`.
    public func statistics() throws -> String {
        try httpGet(port: self.statPort, path: "/stat")
    }

    /// Sleeps one poll interval, or throws when the deadline has passed or nginx has exited.
    private func pollAgain(until deadline: ContinuousClock.Instant, waitingFor what: String) async throws {
        if let exit = self.process.exit {
            throw PeerError.processFailed("nginx exited (\(exit)) while waiting for \(what); \(self.diagnostics())")
        }
        guard ContinuousClock.now < deadline else {
            throw PeerError.timeout(
                "timed out waiting for \(what); access log:\n\(readFileTail(self.accessLogPath, maxBytes: 4096))\n"
                    + self.diagnostics(maxBytes: 4096)
            )
        }
        try await Task.sleep(for: Self.pollInterval)
    }

    /// Finds `<stream><name>STREAM</name>…<publishing/>…<active/>…</stream>` inside the `<application>` named `app`.
    ///
    /// A purpose-built scan rather than an XML parser: FoundationXML would pull in libxml2 for two tags, and the page's
    /// layout (one tag per line or run together) is fixed by nginx-rtmp's `ngx_rtmp_stat_module.c`.
    static func isPublishing(statistics: String, app: String, stream: String) -> Bool {
        for application in statistics.components(separatedBy: "<application>").dropFirst() {
            guard firstName(in: application) == app else { continue }
            for block in application.components(separatedBy: "<stream>").dropFirst() {
                let body = block.components(separatedBy: "</stream>")[0]
                if firstName(in: body) == stream && body.contains("<publishing/>") && body.contains("<active/>") {
                    return true
                }
            }
        }
        return false
    }

    private static func firstName(in xml: String) -> String? {
        guard let start = xml.range(of: "<name>"),
            let end = xml.range(of: "</name>", range: start.upperBound..<xml.endIndex)
        else { return nil }
        return String(xml[start.upperBound..<end.lowerBound])
    }
}
