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

/// One cold or warm start: from the encoder's TCP connect to the first media message at the sink.
struct StartResult: Codable, Sendable {
    var label: String
    /// Connect to NetStream.Publish.Start, in milliseconds.
    var publishAcceptedMilliseconds: Double
    /// Connect to the first audio or video message arriving at the player of the sink.
    var firstMediaMilliseconds: Double
}

struct ColdStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Time one start: connect a publisher and report when the first media message reaches the sink.",
        discussion: """
            A player of the sink connects first. Then the clock starts, the publisher connects (to a gateway whose \
            relay is at zero for a cold start, or running for a warm one), publishes the input from its start, and \
            the time until the player receives the first audio or video message is printed as JSON.
            """
    )

    @Option(help: "The FLV file to publish (H.264 and AAC).")
    var input: String

    @Option(help: "A file with one line: 'PUBLISH_URL PLAY_URL' (URLs hold keys, so they are not arguments).")
    var streamsFile: String

    @Option(help: "cold or warm, for the report.")
    var label: String

    @Option(help: "Seconds of input to publish.")
    var seconds: Double = 3

    func run() async throws {
        let input = try InputStream(flvFile: self.input, seconds: self.seconds)
        let line = try String(contentsOfFile: self.streamsFile, encoding: .utf8)
            .split(whereSeparator: \.isWhitespace).map(String.init)
        guard line.count == 2 else {
            throw ValidationError("--streams-file must hold 'PUBLISH_URL PLAY_URL'")
        }
        let publishURL = try BenchURL(line[0])
        let playURL = try BenchURL(line[1])
        let group = MultiThreadedEventLoopGroup.singleton

        let player = try await Client.connect(url: playURL, group: group, quickAck: true) {
            PlayHandler(input: input, url: playURL, eventLoop: $0)
        }
        try await player.run { $0.ready.futureResult }.get()

        let start = NIODeadline.now()
        let publisher = try await Client.connect(url: publishURL, group: group) {
            PublishHandler(input: input, url: publishURL, eventLoop: $0)
        }
        try await publisher.run { $0.publishing.futureResult }.get()
        let accepted = NIODeadline.now()
        try await publisher.run { $0.start(at: .now()) }
        let firstMedia = try await player.run { $0.firstMedia.futureResult }.get()
        let result = StartResult(
            label: self.label,
            publishAcceptedMilliseconds: Double((accepted - start).nanoseconds) / 1e6,
            firstMediaMilliseconds: Double(Int64(firstMedia) - Int64(start.uptimeNanoseconds)) / 1e6
        )
        try? await publisher.channel.close()
        try? await player.channel.close()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(result), as: UTF8.self))
    }
}
