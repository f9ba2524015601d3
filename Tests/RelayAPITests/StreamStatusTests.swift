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
import LiveStreamModel
import RelayAPI
import Testing

@Suite("The relay's stream JSON")
struct StreamStatusTests {
    private static let status = StreamStatus(
        name: "alice",
        app: "live",
        state: "live",
        publisher: .init(remoteAddress: "192.0.2.7:51234", liveSeconds: 12.5),
        preview: .waiting(),
        targets: [
            .init(
                name: "youtube",
                url: "rtmp://a.rtmp.youtube.com:1935/live2",
                state: "pushing",
                enabled: true,
                connections: 1,
                bytesSent: 1000,
                queuedBytes: 0,
                droppedMessages: 0,
                behind: false
            ),
            .init(
                name: "ivs",
                url: "rtmps://example.global-contribute.live-video.net:443/app",
                state: "backingOff",
                enabled: true,
                attempt: 2,
                nextRetrySeconds: 1.5,
                lastError: "connection refused",
                connections: 0,
                bytesSent: 0,
                queuedBytes: 0,
                droppedMessages: 0,
                behind: false
            ),
        ]
    )

    @Test("What the relay writes, its readers decode into the same value")
    func roundTrip() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let json = try encoder.encode(Self.status)
        #expect(try JSONDecoder().decode(StreamStatus.self, from: json) == Self.status)
        #expect(try RelayStreamReport(json: json) == RelayStreamReport(Self.status))
    }

    @Test("The report says it in a LiveStream's terms: live, targets by name with capitalized states")
    func report() {
        let report = RelayStreamReport(Self.status)
        #expect(report.live)
        #expect(
            report.targets == [
                .init(name: "ivs", state: "BackingOff", lastError: "connection refused"),
                .init(name: "youtube", state: "Pushing"),
            ]
        )
        var idle = Self.status
        idle.state = "idle"
        #expect(!RelayStreamReport(idle).live)
        #expect(RelayStreamReport(idle).entityTag != report.entityTag)
        var counted = Self.status
        counted.targets[1].bytesSent += 1
        #expect(RelayStreamReport(counted).entityTag == report.entityTag, "counters do not change the tag")
    }

    @Test("JSON that is not a stream status is refused")
    func notAStatus() {
        #expect(throws: DecodingError.self) { try RelayStreamReport(json: Data(#"{"state":"live"}"#.utf8)) }
    }
}
