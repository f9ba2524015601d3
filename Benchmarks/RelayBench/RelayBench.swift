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

import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import RTMP

@main
struct RelayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liverelay-bench",
        abstract: "Measure what a relay adds between publishers and a sink: latency, CPU, memory, lost frames.",
        discussion: "tools/bench-relay.sh runs it against liverelay and nginx-rtmp side by side; see BENCHMARKS.md.",
        subcommands: [Run.self, Report.self, ColdStart.self, Splice.self]
    )
}

/// What one path of one scenario measured; `run` writes it as JSON and `report` tabulates it.
struct PathResult: Codable, Sendable {
    var label: String
    var streams: Int
    var fanout: Int
    var note: String
    var seconds: Double
    /// The steady part over which CPU is counted (after the stagger and the warmup, until the first stream ends).
    var windowSeconds: Double
    var players: Int
    /// Latency of every recognised audio and video message, in milliseconds, over all players.
    var p50: Double
    var p99: Double
    var max: Double
    var measured: Int
    var lost: Int
    var unmatched: Int
    var duplicates: Int
    /// Players that received the input's first keyframe.
    var firstKeyframeDelivered: Int
    /// The largest gap, over players, between the first keyframe's and the first received video frame's time in the
    /// input, in milliseconds: 0 when every player got the stream from its first frame.
    var maxStartGapMilliseconds: Double
    var idle: ProcessSample
    var busy: ProcessSample
    var cpuSecondsInWindow: Double
    var cpuSecondsPerStreamMinute: Double
    var rssPerStreamMiB: Double
    var benchCPUPercent: Double
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish the input on every stream in real time, play every sink stream, and measure one path.",
        discussion: """
            The streams file has one line per stream: the URL to publish to, then the URLs to play that stream back \
            from, separated by spaces. URLs are rtmp://HOST:PORT/APP/STREAM; they may hold stream keys, which is why \
            they are read from a file and never printed.
            """
    )

    @Option(help: "The FLV file to publish (H.264 and AAC).")
    var input: String

    @Option(help: "The streams file: one line per stream, 'PUBLISH_URL PLAY_URL [PLAY_URL...]'.")
    var streamsFile: String

    @Option(help: "Name of the path, for the report: direct, liverelay, nginx.")
    var label: String

    @Option(help: "Seconds of the input each stream publishes.")
    var seconds: Double = 40

    @Option(help: "Streams start evenly spread over this many seconds, so their keyframes do not all coincide.")
    var stagger: Double = 2

    @Option(help: "Seconds after the last stream started before CPU is counted.")
    var warmup: Double = 5

    @Option(help: "Seconds to wait for the last messages after the publishers end.")
    var drain: Double = 3

    @Option(name: .customLong("sample-pid"), help: "A process (and its children) to measure. Repeatable.")
    var samplePIDs: [Int32] = []

    @Flag(
        inversion: .prefixedNo,
        help: "Set TCP_QUICKACK on the players' sockets after every read (see BENCHMARKS.md)."
    )
    var quickAck = true

    @Option(help: "Free text stored with the result (for example whether a build was running).")
    var note: String = ""

    @Option(help: "Where to write the result as JSON.")
    var output: String?

    func validate() throws {
        guard self.seconds > self.stagger + self.warmup + 5 else {
            throw ValidationError("--seconds must exceed --stagger + --warmup by at least 5 seconds.")
        }
    }

    func run() async throws {
        let input = try InputStream(flvFile: self.input, seconds: self.seconds)
        guard let firstKeyframe = input.firstKeyframe else {
            throw ValidationError("the input has no keyframe")
        }
        let streams = try self.readStreams()
        let group = MultiThreadedEventLoopGroup.singleton

        // Players first, so that they are waiting when each stream starts and can tell whether its first
        // keyframe arrives.
        var players: [[Client<PlayHandler>]] = []
        for stream in streams {
            var forStream: [Client<PlayHandler>] = []
            for url in stream.play {
                forStream.append(
                    try await Client.connect(url: url, group: group, quickAck: self.quickAck) {
                        PlayHandler(input: input, url: url, eventLoop: $0)
                    }
                )
            }
            players.append(forStream)
        }
        for player in players.joined() {
            let ready = try await player.run { $0.ready.futureResult }
            try await Self.wait(for: ready, seconds: 10, what: "a player's NetStream.Play.Start")
        }
        let idle = ProcFS.sample(roots: self.samplePIDs)

        var publishers: [Client<PublishHandler>] = []
        for stream in streams {
            publishers.append(
                try await Client.connect(url: stream.publish, group: group) {
                    PublishHandler(input: input, url: stream.publish, eventLoop: $0)
                }
            )
        }
        for publisher in publishers {
            let publishing = try await publisher.run { $0.publishing.futureResult }
            try await Self.wait(for: publishing, seconds: 15, what: "NetStream.Publish.Start")
        }

        let start = NIODeadline.now() + .milliseconds(200)
        let spread = Int64(self.stagger * 1e9) / Int64(publishers.count)
        for (position, publisher) in publishers.enumerated() {
            let at = start + .nanoseconds(spread * Int64(position))
            try await publisher.run { $0.start(at: at) }
        }
        let windowStart = start + .nanoseconds(Int64((self.stagger + self.warmup) * 1e9))
        let windowEnd = start + .nanoseconds(Int64(self.seconds * 1e9))
        try await Self.sleep(until: windowStart)
        let before = ProcFS.sample(roots: self.samplePIDs)
        let selfStart = ProcFS.sample(roots: [getpid()])
        try await Self.sleep(until: windowEnd)
        let busy = ProcFS.sample(roots: self.samplePIDs)
        let selfEnd = ProcFS.sample(roots: [getpid()])

        for publisher in publishers {
            let finished = try await publisher.run { $0.finished.futureResult }
            try await Self.wait(for: finished, seconds: self.stagger + 30, what: "the publishers to finish")
        }
        try await Task.sleep(for: .seconds(self.drain))

        // Gather, then close everything.
        var sendTimes: [[UInt64]] = []
        for publisher in publishers {
            sendTimes.append(try await publisher.run { $0.sendTimes })
        }
        var latencies: [UInt64] = []
        var lost = 0
        var unmatched = 0
        var duplicates = 0
        var firstKeyframeDelivered = 0
        var maxStartGap: UInt32 = 0
        let measured = input.index.values.sorted()
        for (stream, forStream) in players.enumerated() {
            let sent = sendTimes[stream]
            for player in forStream {
                let (arrivals, playerUnmatched, playerDuplicates) = try await player.run {
                    ($0.arrivals, $0.unmatched, $0.duplicates)
                }
                unmatched += playerUnmatched
                duplicates += playerDuplicates
                for position in measured where sent[position] != 0 {
                    if arrivals[position] >= sent[position] {
                        latencies.append(arrivals[position] - sent[position])
                    } else {
                        lost += 1
                    }
                }
                if arrivals[firstKeyframe] != 0 {
                    firstKeyframeDelivered += 1
                }
                let firstVideo = measured.first { input.messages[$0].type == .video && arrivals[$0] != 0 }
                let gap = firstVideo.map { input.messages[$0].offset - input.messages[firstKeyframe].offset }
                maxStartGap = Swift.max(maxStartGap, gap ?? UInt32(self.seconds * 1000))
            }
        }
        for client in publishers.map(\.channel) + players.joined().map(\.channel) {
            try? await client.close()
        }

        latencies.sort()
        func percentile(_ q: Double) -> Double {
            guard !latencies.isEmpty else { return .nan }
            return Double(latencies[Swift.min(latencies.count - 1, Int(Double(latencies.count) * q))]) / 1e6
        }
        let window = Double((windowEnd - windowStart).nanoseconds) / 1e9
        let cpu = busy.cpuSeconds - before.cpuSeconds
        let result = PathResult(
            label: self.label,
            streams: streams.count,
            fanout: streams.map(\.play.count).max() ?? 0,
            note: self.note,
            seconds: self.seconds,
            windowSeconds: window,
            players: players.joined().count,
            p50: percentile(0.50),
            p99: percentile(0.99),
            max: percentile(1),
            measured: latencies.count,
            lost: lost,
            unmatched: unmatched,
            duplicates: duplicates,
            firstKeyframeDelivered: firstKeyframeDelivered,
            maxStartGapMilliseconds: Double(maxStartGap),
            idle: idle,
            busy: busy,
            cpuSecondsInWindow: cpu,
            cpuSecondsPerStreamMinute: cpu / (window / 60) / Double(streams.count),
            rssPerStreamMiB: Double(busy.rssKiB - idle.rssKiB) / 1024 / Double(streams.count),
            benchCPUPercent: (selfEnd.cpuSeconds - selfStart.cpuSeconds) / window * 100
        )
        print(Report.describe(result))
        if let output = self.output {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(result).write(to: URL(fileURLWithPath: output))
        }
    }

    private struct StreamURLs {
        var publish: BenchURL
        var play: [BenchURL]
    }

    private func readStreams() throws -> [StreamURLs] {
        let text = try String(contentsOfFile: self.streamsFile, encoding: .utf8)
        let streams = try text.split(separator: "\n").filter { !$0.allSatisfy(\.isWhitespace) }.map { line in
            let urls = try line.split(whereSeparator: \.isWhitespace).map { try BenchURL(String($0)) }
            guard urls.count >= 2 else {
                throw ValidationError("each line of --streams-file needs a publish URL and at least one play URL")
            }
            return StreamURLs(publish: urls[0], play: Array(urls.dropFirst()))
        }
        guard !streams.isEmpty else { throw ValidationError("--streams-file lists no stream") }
        return streams
    }

    private static func sleep(until deadline: NIODeadline) async throws {
        let now = NIODeadline.now()
        if deadline > now {
            try await Task.sleep(for: .nanoseconds((deadline - now).nanoseconds))
        }
    }

    private static func wait(for future: EventLoopFuture<Void>, seconds: Double, what: String) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await future.get()
                return true
            }
            group.addTask {
                try await Task.sleep(for: .nanoseconds(Int64(seconds * 1e9)))
                return false
            }
            defer { group.cancelAll() }
            guard try await group.next() == true else {
                throw BenchError("timed out after \(seconds) s waiting for \(what)")
            }
        }
    }
}

/// TLS for `rtmps://` publishers. The benchmark measures what TLS costs the server, against a certificate made for the
/// run, so it does not verify it.
let benchClientTLS: NIOSSLContext = {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.certificateVerification = .none
    // Only a configuration the library cannot use throws; this one is fixed.
    return try! NIOSSLContext(configuration: configuration)
}()

/// A connected channel and its handler, which lives on the channel's event loop.
struct Client<Handler: ChannelInboundHandler & SendableMetatype>: Sendable where Handler.InboundIn == RTMPMessage {
    let channel: any Channel
    let handler: NIOLoopBound<Handler>

    static func connect(
        url: BenchURL,
        group: any EventLoopGroup,
        quickAck: Bool = false,
        makeHandler: @escaping @Sendable (any EventLoop) -> Handler
    ) async throws -> Self {
        try await ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: url.host, port: url.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = makeHandler(channel.eventLoop)
                    if quickAck {
                        try channel.pipeline.syncOperations.addHandler(QuickAckHandler())
                    }
                    if url.tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: benchClientTLS, serverHostname: nil)
                        )
                    }
                    try channel.pipeline.syncOperations.addHandler(RTMPConnectionHandler(role: .client))
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return Client(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
                }
            }
    }

    /// Runs `body` with the handler on its event loop.
    func run<Result: Sendable>(_ body: @escaping @Sendable (Handler) -> Result) async throws -> Result {
        let handler = self.handler
        return try await self.channel.eventLoop.submit { body(handler.value) }.get()
    }
}
