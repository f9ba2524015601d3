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

import NIOCore
import Testing
import WebRTCMedia

/// Whatever a peer sends, the media path answers with errors, never a crash, and stays within its limits.
@Suite struct RandomInputTests {
    /// A small deterministic generator (SplitMix64), so that a failure reproduces.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func randomDatagramsAndPayloads() throws {
        var random = SplitMix(state: 24)
        let start = ContinuousClock.now
        let configuration = WebRTCIngest.Configuration(
            codecs: [
                RTPCodecParameters(payloadType: 102, name: "H264", clockRate: 90000),
                RTPCodecParameters(payloadType: 111, name: "opus", clockRate: 48000, channels: 2),
            ],
            localSSRC: 1,
            cname: "t"
        )
        let ingest = try WebRTCIngest(configuration: configuration, now: start)
        var depacketizer = H264Depacketizer()
        for index in 0..<5000 {
            let now = start + .milliseconds(index)
            let length = Int.random(in: 0...300, using: &random)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Mostly well-formed headers of the session's payload types, so that payloads reach the codecs.
            if bytes.count >= 12 && index % 4 != 0 {
                bytes[0] = 0x80
                bytes[1] = [102, 111, 0xE6, 0xC8][index % 4 == 1 ? 0 : Int.random(in: 0...3, using: &random)]
                bytes[2] = 0
                bytes[3] = UInt8(truncatingIfNeeded: index)
            }
            let buffer = ByteBuffer(bytes: bytes)
            _ = try? ingest.receive(datagram: buffer, at: now)
            _ = try? RTCPPacket.parseCompound(buffer)
            if let packet = try? RTPPacket(parsing: buffer) {
                _ = depacketizer.push(packet)
            }
            if index % 50 == 0 {
                _ = ingest.tick(at: now)
                depacketizer.lost()
            }
        }
        _ = ingest.finish(at: start + .seconds(10))
        #expect(ingest.statistics.refusedPackets > 0)
    }
}
