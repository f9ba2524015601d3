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
import Media
import NIOCore
import PeerTestSupport
import RTMP
import Testing
import WebRTCMedia

/// The ingest against a real sender: ffmpeg encodes H.264 (libx264, baseline, as a browser's encoder would) and Opus
/// (libopus) and sends them as RTP with RTCP sender reports to sockets on 127.0.0.1. On the way in the test delays,
/// reorders and withholds packets; withheld packets are sent again only when the ingest NACKs them, as a WebRTC
/// sender would. The ingest's RTMP messages go into an FLV file that ffprobe and ffmpeg then check.
@Suite struct FFmpegRTPIngestTests {
    /// How the way in treats video packets.
    enum Impairment: String, CaseIterable, Sendable {
        /// Every 7th packet held back behind the next two; every 40th withheld until NACKed.
        case reorderAndRecoverableLoss
        /// As above, plus one packet of an inter picture at about 1.5 s that is never sent: the pictures until
        /// the next keyframe are dropped, and the ingest asks for a keyframe.
        case unrecoverableLoss
    }

    static let seconds = 4
    static let frameRate = 30

    @Test(arguments: Impairment.allCases)
    func h264AndOpusFromFFmpegBecomeFLV(impairment: Impairment) async throws {
        let sockets = try await UDPSockets(count: 4)
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("webrtcmedia-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let arguments = [
            "-hide_banner", "-nostdin", "-nostats", "-v", "error", "-re",
            // The length on each input: an output's -t would end only that output.
            "-t", "\(Self.seconds)", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=\(Self.frameRate)",
            "-t", "\(Self.seconds)", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            // zerolatency: no lookahead and no B-frames, as a browser's real-time encoder; ultrafast, so that on a
            // loaded machine the encoder keeps up with -re and its sender reports stay true.
            "-map", "0:v", "-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast", "-tune", "zerolatency",
            "-g",
            "\(Self.frameRate)",
            "-bsf:v", "h264_mp4toannexb", "-payload_type", "102", "-ssrc", "4369",
            "-f", "rtp", "rtp://127.0.0.1:\(sockets.port(0))?rtcpport=\(sockets.port(1))&pkt_size=1200",
            "-map", "1:a", "-c:a", "libopus", "-ac", "2", "-b:a", "64k", "-payload_type", "111", "-ssrc", "8738",
            "-f", "rtp", "rtp://127.0.0.1:\(sockets.port(2))?rtcpport=\(sockets.port(3))&pkt_size=1200",
        ]
        var configuration = WebRTCIngest.Configuration(
            codecs: [
                RTPCodecParameters(
                    payloadType: 102,
                    name: "H264",
                    clockRate: 90000,
                    formatParameters: ["packetization-mode": "1"]
                ),
                RTPCodecParameters(payloadType: 111, name: "opus", clockRate: 48000, channels: 2),
            ],
            localSSRC: 0xABCD,
            cname: "liverelay-test"
        )
        configuration.initialRoundTripTime = .milliseconds(5)
        // The ingest's clock is the media's own: the time of the latest RTP packet by its timestamp (ffmpeg sends in
        // real time, -re), not the packet's arrival. On a loaded machine arrivals bunch up, and the jitter buffer would
        // give up on a packet the test is about to resend when it is NACKed: time injected, as in the unit tests.
        let start = ContinuousClock.now
        var clock = start
        var firstTimestamps: [Int: UInt32] = [:]
        func mediaTime(socket: Int, bytes: ByteBuffer) -> ContinuousClock.Instant {
            guard socket == 0 || socket == 2, let packet = try? RTPPacket(parsing: bytes) else {
                return clock
            }
            let first = firstTimestamps[socket] ?? packet.timestamp
            firstTimestamps[socket] = first
            let ticks = Int64(Int32(bitPattern: packet.timestamp &- first))
            let rate: Int64 = socket == 0 ? 90000 : 48000
            clock = max(clock, start + .microseconds(ticks * 1_000_000 / rate))
            return clock
        }
        let ingest = try WebRTCIngest(configuration: configuration, now: start)

        var messages: [RTMPMessage] = []
        var errors: [WebRTCMediaError] = []
        var nackedSequenceNumbers = 0
        var keyframeRequests = 0
        var reports = 0
        var withheld: [UInt16: ByteBuffer] = [:]
        var withheldTotal = 0
        var heldBack: [ByteBuffer] = []
        var heldBackAfter = 0
        var videoPackets = 0
        var droppedForGood = false
        var firstVideoTimestamp: UInt32?

        func take(_ output: WebRTCIngest.Output, now: ContinuousClock.Instant) throws {
            messages += output.messages
            errors += output.errors
            for rtcp in output.rtcp {
                for packet in try RTCPPacket.parseCompound(rtcp) {
                    switch packet {
                    case .genericNACK(let nack):
                        #expect(nack.mediaSSRC == 4369)
                        for sequenceNumber in nack.sequenceNumbers {
                            nackedSequenceNumbers += 1
                            // The sender answers a NACK with the packet.
                            if let packet = withheld.removeValue(forKey: sequenceNumber) {
                                try take(try ingest.receive(rtp: packet, at: now), now: now)
                            }
                        }
                    case .pictureLossIndication(let pli):
                        #expect(pli.mediaSSRC == 4369 && pli.senderSSRC == 0xABCD)
                        keyframeRequests += 1
                    case .receiverReport:
                        reports += 1
                    default:
                        break
                    }
                }
            }
        }

        let runResult: ProcessExit = try await withRunningProcess("ffmpeg", arguments: arguments) { ffmpeg in
            let closer = Task {
                // ffmpeg ends by itself after the input's length; one that hangs is killed, and the test fails.
                var exit = await ffmpeg.waitForExit(timeout: .seconds(60))
                if exit == nil {
                    ffmpeg.kill()
                    exit = await ffmpeg.waitForExit()
                }
                await sockets.close()
                return exit!
            }
            for await datagram in sockets.datagrams {
                let now = mediaTime(socket: datagram.socket, bytes: datagram.bytes)
                if now >= ingest.nextDeadline {
                    try take(ingest.tick(at: now), now: now)
                }
                switch datagram.socket {
                case 0:
                    videoPackets += 1
                    let packet = try RTPPacket(parsing: datagram.bytes)
                    let firstTimestamp = firstVideoTimestamp ?? packet.timestamp
                    firstVideoTimestamp = firstTimestamp
                    // Half-way between the keyframes at 1 s and 2 s: the ingest waits half a second for the next.
                    if impairment == .unrecoverableLoss && !droppedForGood
                        && packet.timestamp &- firstTimestamp >= 90000 * 3 / 2 && Self.carriesInterSlice(packet)
                    {
                        droppedForGood = true
                        continue
                    }
                    if videoPackets % 40 == 0 {
                        withheld[packet.sequenceNumber] = datagram.bytes
                        withheldTotal += 1
                        continue
                    }
                    if videoPackets % 7 == 0 {
                        heldBack.append(datagram.bytes)
                        heldBackAfter = 2
                        continue
                    }
                    try take(try ingest.receive(rtp: datagram.bytes, at: now), now: now)
                    if !heldBack.isEmpty {
                        heldBackAfter -= 1
                        if heldBackAfter == 0 {
                            for bytes in heldBack { try take(try ingest.receive(rtp: bytes, at: now), now: now) }
                            heldBack = []
                        }
                    }
                case 2:
                    try take(try ingest.receive(rtp: datagram.bytes, at: now), now: now)
                default:
                    try take(try ingest.receive(rtcp: datagram.bytes, at: now), now: now)
                }
            }
            return await closer.value
        }
        #expect(runResult.succeeded, "\(runResult)")
        try take(ingest.finish(at: clock), now: clock)

        #expect(errors.isEmpty, "\(errors)")
        #expect(withheldTotal >= 5 && nackedSequenceNumbers >= withheldTotal)
        #expect(withheld.isEmpty, "withheld packets never NACKed: \(withheld.keys.sorted())")
        #expect(keyframeRequests >= (impairment == .unrecoverableLoss ? 2 : 1))
        #expect(reports >= Self.seconds - 1)

        // Timestamps: monotonic per track, starting near 0, audio and video starting together.
        let video = messages.filter { $0.type == .video }
        let audio = messages.filter { $0.type == .audio }
        for track in [video, audio] {
            #expect(zip(track, track.dropFirst()).allSatisfy { $0.timestamp <= $1.timestamp })
        }
        let firstVideo = try #require(video.first)
        let firstAudio = try #require(audio.first)
        #expect(MediaFrameKind.classify(video: firstVideo.payload) == .videoSequenceHeader)
        #expect(MediaFrameKind.classify(audio: firstAudio.payload) == .audioSequenceHeader)
        #expect(min(firstVideo.timestamp, firstAudio.timestamp) == 0)
        #expect(abs(Int(firstVideo.timestamp) - Int(firstAudio.timestamp)) <= 100)
        let record = try AVCDecoderConfigurationRecord(
            parsing: try #require(VideoTagHeader(parsing: firstVideo.payload).codecData(in: firstVideo.payload))
        )
        let sps = try record.parseSequenceParameterSet()
        #expect(sps.width == 320 && sps.height == 240)

        var writer = FLVFileWriter()
        for message in messages { writer.append(message) }
        let path = directory.appendingPathComponent("out.flv").path
        try writer.write(to: path)

        let info = try await FFprobe.inspect(path)
        #expect(info.streams.count == 2)
        let videoStream = try #require(info.video)
        let audioStream = try #require(info.audio)
        #expect(videoStream.codecName == "h264")
        #expect(videoStream.width == 320 && videoStream.height == 240)
        #expect(audioStream.codecName == "aac")
        #expect(audioStream.profile == "LC")
        #expect(audioStream.sampleRate == 48000)
        #expect(audioStream.channels == 2)
        let duration = try #require(info.duration)
        #expect(abs(duration - Double(Self.seconds)) < 0.5, "duration \(duration)")
        let inputFrames = Self.seconds * Self.frameRate
        let frames = try #require(videoStream.frameCount)
        switch impairment {
        case .reorderAndRecoverableLoss:
            #expect(frames >= inputFrames - 3 && frames <= inputFrames, "\(frames) video frames")
        case .unrecoverableLoss:
            // One group of pictures (one second) at most is lost.
            #expect(frames >= inputFrames - Self.frameRate - 3 && frames < inputFrames, "\(frames) video frames")
        }
        let audioFrames = try #require(audioStream.frameCount)
        let expectedAudioFrames = Self.seconds * 48000 / 1024
        #expect(abs(audioFrames - expectedAudioFrames) <= 4, "\(audioFrames) AAC frames")
        let decodeErrors = try await FFprobe.decodeErrors(path)
        #expect(decodeErrors == "", "\(decodeErrors)")
        let starts = try await Self.streamStartTimes(path)
        #expect(starts.count == 2)
        if let videoStart = starts["video"], let audioStart = starts["audio"] {
            #expect(abs(videoStart - audioStart) <= 0.1, "video starts at \(videoStart), audio at \(audioStart)")
        }
    }

    /// Whether the packet carries (part of) a non-IDR slice: single NAL unit or FU-A of type 1.
    static func carriesInterSlice(_ packet: RTPPacket) -> Bool {
        let bytes = Array(packet.payload.readableBytesView.prefix(2))
        guard let first = bytes.first else { return false }
        if first & 0x1F == 28, bytes.count == 2 { return bytes[1] & 0x1F == 1 }
        return first & 0x1F == 1
    }

    /// Each stream's `start_time`, as ffprobe reports it.
    static func streamStartTimes(_ path: String) async throws -> [String: Double] {
        try await withRunningProcess(
            "ffprobe",
            arguments: ["-v", "error", "-show_entries", "stream=codec_type,start_time", "-of", "csv=p=0", path],
            standardOutput: .capture(limit: 64 * 1024)
        ) { process in
            let exit = await process.waitForExit()
            var starts: [String: Double] = [:]
            for line in exit.standardOutput.split(separator: "\n") {
                let fields = line.split(separator: ",")
                if fields.count == 2, let start = Double(fields[1]) {
                    starts[String(fields[0])] = start
                }
            }
            return starts
        }
    }
}
