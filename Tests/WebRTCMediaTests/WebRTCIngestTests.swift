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

import Media
import NIOCore
import RTMP
import Testing
import WebRTCMedia

@Suite struct WebRTCIngestTests {
    let start = ContinuousClock.now

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { self.start + .milliseconds(milliseconds) }

    static let h264 = RTPCodecParameters(
        payloadType: 102,
        name: "H264",
        clockRate: 90000,
        formatParameters: RTPCodecParameters.parseFormatParameters(
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
        )
    )
    static let vp8 = RTPCodecParameters(payloadType: 96, name: "VP8", clockRate: 90000)

    func videoIngest() throws -> WebRTCIngest {
        var configuration = WebRTCIngest.Configuration(codecs: [Self.h264, Self.vp8], localSSRC: 0xABCD, cname: "t")
        configuration.videoJitterBuffer.latency = .milliseconds(100)
        return try WebRTCIngest(configuration: configuration, now: self.start)
    }

    func feedback(_ output: WebRTCIngest.Output) throws -> [RTCPPacket] {
        try output.rtcp.flatMap { try RTCPPacket.parseCompound($0) }
    }

    @Test func aVP8OnlySessionIsRefusedClearly() {
        let configuration = WebRTCIngest.Configuration(
            codecs: [Self.vp8, RTPCodecParameters(payloadType: 97, name: "rtx", clockRate: 90000)],
            localSSRC: 1,
            cname: "t"
        )
        #expect {
            try WebRTCIngest(configuration: configuration, now: self.start)
        } throws: { error in
            let error = error as! WebRTCMediaError
            return error.code == .unsupportedCodec && error.message.contains("needs H.264")
                && error.message.contains("VP8")
        }
    }

    @Test func vp8PacketsAndGarbageAreRefusedAndTheSessionGoesOn() throws {
        let ingest = try self.videoIngest()
        #expect {
            try ingest.receive(rtp: rtp(1, payloadType: 96, payload: [0x90, 0x80, 0x00]).bytes, at: self.at(0))
        } throws: { error in
            let error = error as! WebRTCMediaError
            return error.code == .unsupportedCodec && error.message.contains("VP8")
        }
        #expect {
            try ingest.receive(rtp: rtp(1, payloadType: 100).bytes, at: self.at(0))
        } throws: { error in
            (error as! WebRTCMediaError).code == .unknownPayloadType
        }
        for garbage in [[UInt8](), [0x00, 0x01, 0x00, 0x00], [UInt8](repeating: 0xFF, count: 100)] {
            #expect(throws: WebRTCMediaError.self) {
                try ingest.receive(datagram: ByteBuffer(bytes: garbage), at: self.at(0))
            }
        }
        #expect {
            try ingest.receive(rtp: ByteBuffer(repeating: 0x80, count: 5000), at: self.at(0))
        } throws: { error in
            (error as! WebRTCMediaError).code == .limitExceeded
        }
        #expect(ingest.statistics.refusedPackets == 6)
        // Still working: an H.264 keyframe goes through.
        let output = try ingest.receive(
            rtp: rtp(10, timestamp: 3000, marker: true, payload: stapA([testSPS, testPPS, idrSlice])).bytes,
            at: self.at(1)
        )
        // Metadata first, as OBS sends it, then the sequence header and the picture.
        #expect(output.messages.map(\.type) == [.dataAMF0, .video, .video])
        #expect(output.messages.allSatisfy { $0.messageStreamID == 1 && $0.timestamp == 0 })
        var metadata = output.messages[0].payload
        #expect(try metadata.readAMF0Values().prefix(2) == ["@setDataFrame", "onMetaData"])
        let video = output.messages.dropFirst()
        #expect(video.map { MediaFrameKind.classify(video: $0.payload) } == [.videoSequenceHeader, .videoKeyframe])
    }

    @Test func asksForAKeyframeAtStartAndAfterALossUntilOneComes() throws {
        let ingest = try self.videoIngest()
        var output = try ingest.receive(
            rtp: rtp(1, timestamp: 0, marker: true, payload: interSlice).bytes,
            at: self.at(0)
        )
        #expect(output.messages.isEmpty)
        #expect(try self.feedback(output) == [.pictureLossIndication(.init(senderSSRC: 0xABCD, mediaSSRC: 0x1111))])
        // Not again within the interval; again after it while no keyframe came.
        output = try ingest.receive(
            rtp: rtp(2, timestamp: 3000, marker: true, payload: interSlice).bytes,
            at: self.at(100)
        )
        #expect(output.rtcp.isEmpty)
        #expect(ingest.nextDeadline == self.at(500))
        #expect(try self.feedback(ingest.tick(at: self.at(500))).count == 1)

        output = try ingest.receive(
            rtp: rtp(3, timestamp: 6000, marker: true, payload: stapA([testSPS, testPPS, idrSlice])).bytes,
            at: self.at(600)
        )
        #expect(output.messages.map(\.type) == [.dataAMF0, .video, .video])
        output = try ingest.receive(
            rtp: rtp(4, timestamp: 9000, marker: true, payload: interSlice).bytes,
            at: self.at(633)
        )
        #expect(output.messages.map(\.timestamp) == [33])

        // Packet 5 is lost: NACKed, then given up on; pictures are dropped and a PLI goes out.
        output = try ingest.receive(
            rtp: rtp(6, timestamp: 15000, marker: true, payload: interSlice).bytes,
            at: self.at(700)
        )
        #expect(output.messages.isEmpty)
        #expect(
            try self.feedback(ingest.tick(at: self.at(710)))
                == [.genericNACK(.init(senderSSRC: 0xABCD, mediaSSRC: 0x1111, sequenceNumbers: [5]))]
        )
        // Given up at 800 ms; the keyframe request waits for the interval since the last one (500 ms).
        #expect(try self.feedback(ingest.tick(at: self.at(800))).isEmpty)
        let afterLoss = try self.feedback(ingest.tick(at: self.at(1000)))
        #expect(afterLoss.first == .pictureLossIndication(.init(senderSSRC: 0xABCD, mediaSSRC: 0x1111)))
        output = try ingest.receive(
            rtp: rtp(7, timestamp: 18000, marker: true, payload: interSlice).bytes,
            at: self.at(1010)
        )
        #expect(output.messages.isEmpty)
        output = try ingest.receive(
            rtp: rtp(8, timestamp: 21000, marker: true, payload: stapA([testSPS, testPPS, idrSlice])).bytes,
            at: self.at(1020)
        )
        // The same parameter sets: just the keyframe, at its place on the clock.
        #expect(output.messages.map { MediaFrameKind.classify(video: $0.payload) } == [.videoKeyframe])
        #expect(output.messages.map(\.timestamp) == [166])
        #expect(ingest.statistics.droppedPictures == 4)
    }

    @Test func reportsEverySecondWithRRSDESAndREMB() throws {
        let ingest = try self.videoIngest()
        _ = try ingest.receive(
            rtp: rtp(1, timestamp: 0, marker: true, payload: stapA([testSPS, testPPS, idrSlice])).bytes,
            at: self.at(0)
        )
        let report = try self.feedback(ingest.tick(at: self.at(1000)))
        #expect(report.count == 3)
        guard case .receiverReport(let rr) = report[0] else {
            Issue.record("\(report)")
            return
        }
        #expect(rr.ssrc == 0xABCD && rr.reports.map(\.ssrc) == [0x1111])
        #expect(report[1] == .sourceDescription(.init(chunks: [.init(ssrc: 0xABCD, items: [.cname("t")])])))
        #expect(
            report[2]
                == .receiverEstimatedMaximumBitrate(.init(senderSSRC: 0xABCD, bitrate: 8_000_000, ssrcs: [0x1111]))
        )
    }

    @Test func keyframeRequestsForJoiningTargetsAreMerged() throws {
        var configuration = WebRTCIngest.Configuration(codecs: [Self.h264], localSSRC: 0xABCD, cname: "t")
        configuration.sendFIR = true
        configuration.reportInterval = .seconds(3600)
        let ingest = try WebRTCIngest(configuration: configuration, now: self.start)
        _ = try ingest.receive(
            rtp: rtp(1, timestamp: 0, marker: true, payload: stapA([testSPS, testPPS, idrSlice])).bytes,
            at: self.at(0)
        )
        let first = try self.feedback(ingest.requestKeyframe(at: self.at(1000)))
        #expect(
            first == [
                .pictureLossIndication(.init(senderSSRC: 0xABCD, mediaSSRC: 0x1111)),
                .fullIntraRequest(.init(senderSSRC: 0xABCD, entries: [.init(ssrc: 0x1111, sequenceNumber: 1)])),
            ]
        )
        #expect(try self.feedback(ingest.requestKeyframe(at: self.at(1100))).isEmpty)
        #expect(try self.feedback(ingest.tick(at: self.at(1500))).count == 2)
    }
}

extension WebRTCIngestTests {
    @Test func retransmissionsOnRTXFillTheGap() throws {
        let rtx = RTPCodecParameters(payloadType: 103, name: "rtx", clockRate: 90000, formatParameters: ["apt": "102"])
        let ingest = try WebRTCIngest(
            configuration: WebRTCIngest.Configuration(codecs: [Self.h264, rtx], localSSRC: 0xABCD, cname: "t"),
            now: self.start
        )
        let keyframe = try ingest.receive(
            rtp: rtp(1, timestamp: 0, marker: true, payload: stapA([testSPS, testPPS, idrSlice])).bytes,
            at: self.at(0)
        )
        #expect(keyframe.messages.count == 3)
        #expect(
            try ingest.receive(rtp: rtp(3, timestamp: 6000, marker: true, payload: interSlice).bytes, at: self.at(66))
                .messages.isEmpty
        )
        // Packet 2 comes back on the RTX stream: its sequence number first, then its payload.
        let repaired = try ingest.receive(
            rtp: rtp(
                500,
                timestamp: 3000,
                marker: true,
                payloadType: 103,
                ssrc: 0x9999,
                payload: [0x00, 0x02] + interSlice
            )
            .bytes,
            at: self.at(80)
        )
        #expect(repaired.messages.map(\.timestamp) == [33, 66])
        // Padding-only RTX (a bandwidth probe) is dropped quietly.
        #expect(
            try ingest.receive(rtp: rtp(501, payloadType: 103, ssrc: 0x9999, payload: []).bytes, at: self.at(90))
                .messages.isEmpty
        )
        #expect(ingest.statistics.retransmissions == 1 && ingest.statistics.droppedPictures == 0)
    }
}
