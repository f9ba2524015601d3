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

extension WebRTCIngestTests {
    static let opus = RTPCodecParameters(payloadType: 111, name: "opus", clockRate: 48000, channels: 2)

    /// A browser's start: the microphone's packets from 0 ms on, the camera's keyframe arriving at 150 ms (paced out
    /// behind the audio of its moment), then a picture every 33 ms.
    @Test func audioAndVideoStartTogetherAtTheFirstKeyframe() throws {
        let ingest = try WebRTCIngest(
            configuration: WebRTCIngest.Configuration(codecs: [Self.h264, Self.opus], localSSRC: 0xABCD, cname: "t"),
            now: self.start
        )
        enum Packet {
            case audio(UInt16)
            case video(UInt16)
        }
        var schedule: [(at: Int, packet: Packet)] = (0..<50).map { (Int($0) * 20, .audio(UInt16($0))) }
        schedule += (0..<20).map { (150 + Int($0) * 33, .video(UInt16($0))) }
        schedule.sort { $0.at < $1.at }
        var messages: [RTMPMessage] = []
        for (time, packet) in schedule {
            let bytes: ByteBuffer
            switch packet {
            case .audio(let index):
                bytes =
                    rtp(
                        1 + index,
                        timestamp: 1000 + UInt32(index) * 960,
                        marker: index == 0,
                        payloadType: 111,
                        ssrc: 0x2222,
                        payload: [0xFC]
                    )
                    .bytes
            case .video(let index):
                bytes =
                    rtp(
                        1 + index,
                        timestamp: 9000 + UInt32(index) * 3000,
                        marker: true,
                        payload: index == 0 ? stapA([testSPS, testPPS, idrSlice]) : interSlice
                    )
                    .bytes
            }
            messages += try ingest.receive(rtp: bytes, at: self.at(time)).messages
            while ingest.nextDeadline <= self.at(time) {
                messages += ingest.tick(at: self.at(time)).messages
            }
        }
        messages += ingest.finish(at: self.at(1000)).messages

        let kinds = messages.map { message -> MediaFrameKind? in
            switch message.type {
            case .video: MediaFrameKind.classify(video: message.payload)
            case .audio: MediaFrameKind.classify(audio: message.payload)
            default: nil
            }
        }
        // The stream opens as OBS opens one: metadata, the video's header and keyframe at 0, then the AAC header.
        #expect(messages.first?.type == .dataAMF0)
        #expect(Array(kinds.dropFirst().prefix(2)) == [.videoSequenceHeader, .videoKeyframe])
        #expect(messages[2].timestamp == 0)
        let audioHeader = try #require(kinds.firstIndex(of: .audioSequenceHeader))
        let firstAudio = try #require(kinds.firstIndex(of: .audioFrame))
        #expect(audioHeader < firstAudio)
        // Audio from the keyframe's moment on: the AAC frame that starts first at or after 150 ms of audio (its
        // samples from 170.7 ms), 20 ms into the stream; none from before.
        #expect(messages[firstAudio].timestamp == 20)
        // Each track in timestamp order; after a keyframe (where a target starts) no audio from before it. The
        // frames between keyframes need not wait for the AAC encoder's audio (MessageInterleaver).
        for type in [RTMPMessageType.audio, .video] {
            let timestamps = messages.filter { $0.type == type }.map(\.timestamp)
            #expect(timestamps == timestamps.sorted(), "\(type): \(timestamps)")
        }
        for (index, kind) in kinds.enumerated() where kind == .videoKeyframe {
            let earlier = messages[index...].filter { $0.type == .audio && $0.timestamp < messages[index].timestamp }
            #expect(earlier.isEmpty, "audio before the keyframe at \(messages[index].timestamp) follows it")
        }
        #expect(kinds.filter { $0 == .videoInterframe }.count == 19)
        // 50 packets of 20 ms, less the 170 ms before the first frame kept, in 21.3 ms AAC frames.
        #expect((36...39).contains(kinds.filter { $0 == .audioFrame }.count), "\(kinds)")
    }

    @Test func asksForAKeyframeBeforeTheGOPOutgrowsTheLimit() throws {
        var configuration = WebRTCIngest.Configuration(codecs: [Self.h264], localSSRC: 0xABCD, cname: "t")
        configuration.reportInterval = .seconds(3600)
        configuration.maximumKeyframeInterval = .seconds(2)
        configuration.keyframeRequestLead = .milliseconds(400)
        let ingest = try WebRTCIngest(configuration: configuration, now: self.start)
        var sequenceNumber: UInt16 = 0
        func picture(_ keyframe: Bool, at milliseconds: Int) throws -> WebRTCIngest.Output {
            sequenceNumber += 1
            return try ingest.receive(
                rtp: rtp(
                    sequenceNumber,
                    timestamp: UInt32(milliseconds * 90),
                    marker: true,
                    payload: keyframe ? stapA([testSPS, testPPS, idrSlice]) : interSlice
                )
                .bytes,
                at: self.at(milliseconds)
            )
        }
        // A browser's first picture is a keyframe: nothing to ask for yet.
        #expect(try picture(true, at: 0).rtcp.isEmpty)
        #expect(ingest.nextDeadline == self.at(1600))
        for time in stride(from: 100, through: 1500, by: 100) {
            #expect(try picture(false, at: time).rtcp.isEmpty)
        }
        // 1.6 s after the keyframe, 0.4 s before the GOP would outgrow 2 s: a PLI, repeated while none comes.
        let request = [RTCPPacket.pictureLossIndication(.init(senderSSRC: 0xABCD, mediaSSRC: 0x1111))]
        #expect(try self.feedback(ingest.tick(at: self.at(1600))) == request)
        #expect(try picture(false, at: 1700).rtcp.isEmpty)
        #expect(try self.feedback(ingest.tick(at: self.at(2100))) == request)
        // The keyframe came: the next request is due 1.6 s after it.
        #expect(try picture(true, at: 2150).rtcp.isEmpty)
        #expect(ingest.nextDeadline == self.at(3750))
        #expect(try self.feedback(ingest.tick(at: self.at(3700))).isEmpty)
        #expect(try self.feedback(ingest.tick(at: self.at(3750))) == request)
        #expect(ingest.statistics.keyframeRequests == 3)

        // Off: no request while no picture is missing.
        configuration.maximumKeyframeInterval = nil
        let unbounded = try WebRTCIngest(configuration: configuration, now: self.start)
        _ = try unbounded.receive(
            rtp: rtp(1, timestamp: 0, marker: true, payload: stapA([testSPS, testPPS, idrSlice])).bytes,
            at: self.at(0)
        )
        #expect(try self.feedback(unbounded.tick(at: self.at(10_000))).isEmpty)
        #expect(unbounded.statistics.keyframeRequests == 0)
    }
}
