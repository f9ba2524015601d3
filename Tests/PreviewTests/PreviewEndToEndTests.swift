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
import Logging
import NIOCore
import NIOHTTP1
import PeerTestSupport
import Preview
import Relay
import RelayAPI
import Testing

/// The live preview against real peers: ffmpeg publishes, ffprobe and ffmpeg read the HLS, headless Chromium plays
/// the fragmented MP4 through Media Source Extensions.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct PreviewEndToEndTests {
    @Test func hlsAndFragmentedMP4FromFFmpeg() async throws {
        try await withTemporaryDirectory { root in
            try await withPreviewRelay(configure: { $0.preview.directory = root }) { relay in
                #expect(try await relay.previewStatus().state == "waiting")
                try await FFmpeg.withPublisher(to: relay.publishURL, duration: 60, keyframeInterval: 1) { ffmpeg in
                    let status = try await eventually("the preview to be live") {
                        let status = try await relay.previewStatus()
                        return status.state == "live" ? status : nil
                    }
                    #expect(status.videoCodec == "h264")
                    #expect(status.audioCodec == "aac")
                    #expect(status.width == 320 && status.height == 240)
                    #expect(status.mimeType?.hasPrefix("video/mp4; codecs=\"avc1.") == true)
                    #expect(status.mimeType?.contains("mp4a.40.2") == true)
                    #expect(try await relay.streamStatus().preview?.state == "live")

                    try await self.checkHLS(relay, root: root)
                    try await self.checkFragmentedMP4(relay, root: root)

                    // The encoder goes away (a child of the test gets SIGINT and SIGTERM blocked, so it is killed).
                    ffmpeg.kill()
                    _ = await ffmpeg.waitForExit()
                }
                _ = try await eventually("the preview to end") {
                    try await relay.previewStatus().state == "ended" ? true : nil
                }
                #expect(try await relay.get("/preview/default/index.m3u8").status == 404)
                #expect(try await relay.get("/preview/default/live.mp4").status == 404)
                // Freed when the stream ends: the HLS directory is gone.
                _ = try await eventually("the HLS files to be removed") {
                    try FileManager.default.contentsOfDirectory(atPath: root).isEmpty ? true : nil
                }
            }
        }
    }

    private func checkHLS(_ relay: PreviewRelay, root: String) async throws {
        // A sliding window: once the first segments left the playlist, the media sequence moved on.
        let (playlist, headers) = try await eventually("the HLS window to slide", timeout: .seconds(20)) {
            () async throws -> (String, HTTPHeaders)? in
            let (status, headers, body) = try await relay.get(
                "/preview/default/index.m3u8",
                headers: [("Origin", "http://example.com")]
            )
            let text = String(buffer: body)
            guard status == 200, let sequence = Self.mediaSequence(text), sequence >= 1 else {
                return nil
            }
            return (text, headers)
        }
        #expect(headers.first(name: "Access-Control-Allow-Origin") == "*")
        #expect(headers.first(name: "Cache-Control") == "no-cache")
        #expect(headers.first(name: "Content-Type") == "application/vnd.apple.mpegurl")
        #expect(playlist.contains("#EXT-X-INDEPENDENT-SEGMENTS"))
        let segments = playlist.split(separator: "\n").filter { !$0.hasPrefix("#") && $0.hasSuffix(".ts") }
        #expect(segments.count == 6, "\(playlist)")
        // Segments are cut at keyframes (1 s apart here), and short.
        for line in playlist.split(separator: "\n") where line.hasPrefix("#EXTINF:") {
            let seconds = Double(line.dropFirst(8).split(separator: ",")[0]) ?? 0
            #expect(seconds > 0.9 && seconds < 1.1, "\(line)")
        }
        let segment = try #require(segments.last)
        // The same under the path of the stream's Ingress in a cluster, which the status's previewURL names.
        #expect(try await relay.get("/live/streams/default/index.m3u8").status == 200)
        #expect(try await relay.get("/live/streams/default/\(segment)").status == 200)
        #expect(try await relay.get("/live/streams/default/").status == 200)
        let (status, segmentHeaders, body) = try await relay.get("/preview/default/\(segment)")
        #expect(status == 200 && body.readableBytes > 1000)
        #expect(segmentHeaders.first(name: "Cache-Control")?.contains("immutable") == true)
        #expect(segmentHeaders.first(name: "Content-Type") == "video/mp2t")
        // Old segments are deleted: the window, the one being written and at most one kept for slow readers.
        let directory = try #require(try FileManager.default.contentsOfDirectory(atPath: root).first)
        let files = try FileManager.default.contentsOfDirectory(atPath: root + "/" + directory)
        #expect(files.filter { $0.hasSuffix(".ts") }.count <= 8, "\(files)")

        // ffprobe and ffmpeg read the live playlist over HTTP (4 s of it) and decode it without error.
        let url = relay.url("/preview/default/index.m3u8")
        let probe = try await self.run(
            "ffprobe",
            [
                "-v", "error", "-print_format", "json", "-show_streams", "-count_frames", "-read_intervals", "%+4",
                url,
            ]
        )
        #expect(probe.succeeded, "ffprobe: \(probe)")
        let streams =
            try #require(
                try JSONSerialization.jsonObject(with: Data(probe.standardOutput.utf8)) as? [String: Any]
            )["streams"] as? [[String: Any]]
        let video = streams?.first { $0["codec_type"] as? String == "video" }
        let audio = streams?.first { $0["codec_type"] as? String == "audio" }
        #expect(video?["codec_name"] as? String == "h264")
        #expect(video?["width"] as? Int == 320)
        #expect(audio?["codec_name"] as? String == "aac")
        #expect(Int(video?["nb_read_frames"] as? String ?? "") ?? 0 >= 50, "\(video ?? [:])")
        let decode = try await self.run(
            "ffmpeg",
            ["-hide_banner", "-nostdin", "-v", "error", "-i", url, "-t", "4", "-f", "null", "-"]
        )
        #expect(decode.succeeded && decode.standardError.isEmpty, "decoding the HLS preview: \(decode)")
    }

    private func run(_ tool: String, _ arguments: [String]) async throws -> ProcessExit {
        try await withRunningProcess(tool, arguments: arguments, standardOutput: .capture(limit: 1 << 20)) {
            await $0.waitForExit()
        }
    }

    private func checkFragmentedMP4(_ relay: PreviewRelay, root: String) async throws {
        let (initStatus, initHeaders, initSegment) = try await relay.get("/preview/default/init.mp4")
        #expect(initStatus == 200)
        #expect(initHeaders.first(name: "Content-Type") == "video/mp4")
        #expect(Self.boxes(initSegment).map(\.type) == ["ftyp", "moov"])

        // The live response: the init segment, then a fragment (moof + mdat) per 250 ms of video from a keyframe on.
        var request = HTTPClientRequest(url: relay.url("/preview/default/live.mp4"))
        request.headers.add(name: "Origin", value: "http://example.com")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.status == .ok)
        #expect(response.headers.first(name: "Access-Control-Allow-Origin") == "*")
        #expect(response.headers.first(name: "Cache-Control") == "no-store")
        var received = ByteBuffer()
        let start = ContinuousClock.now
        for try await chunk in response.body {
            received.writeImmutableBuffer(chunk)
            if ContinuousClock.now - start > .seconds(3) {
                break
            }
        }
        let boxes = Self.boxes(received)
        let types = boxes.map(\.type)
        #expect(Array(types.prefix(2)) == ["ftyp", "moov"])
        let fragments = types.filter { $0 == "moof" }.count
        // 3 s of 25 fps video in 250 ms fragments (the live response started up to a keyframe interval back).
        #expect(fragments >= 10, "\(fragments) fragments in 3 s")
        let complete = boxes.last.map { $0.end } ?? 0
        let path = root + "/../preview-\(UInt32.random(in: 0...UInt32.max)).mp4"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(received.getBytes(at: received.readerIndex, length: complete) ?? []).write(
            to: URL(fileURLWithPath: path)
        )
        let info = try await FFprobe.inspect(path)
        #expect(info.video?.codecName == "h264")
        #expect(info.audio?.codecName == "aac")
        let frames = info.video?.frameCount ?? 0
        #expect(frames >= 60)
        // Fragments gather frames (about 6 at 25 fps) instead of one each.
        #expect(fragments * 3 <= frames, "\(fragments) fragments for \(frames) frames")
        let errors = try await FFprobe.decodeErrors(path)
        #expect(errors.isEmpty, "decoding the fragmented MP4 preview: \(errors)")
    }

    static func mediaSequence(_ playlist: String) -> Int? {
        for line in playlist.split(separator: "\n") where line.hasPrefix("#EXT-X-MEDIA-SEQUENCE:") {
            return Int(line.dropFirst("#EXT-X-MEDIA-SEQUENCE:".count))
        }
        return nil
    }

    /// The complete top-level ISO BMFF boxes of `buffer`.
    static func boxes(_ buffer: ByteBuffer) -> [(type: String, end: Int)] {
        var boxes: [(type: String, end: Int)] = []
        var offset = 0
        while let size = buffer.getInteger(at: buffer.readerIndex + offset, as: UInt32.self),
            let type = buffer.getString(at: buffer.readerIndex + offset + 4, length: 4), size >= 8,
            offset + Int(size) <= buffer.readableBytes
        {
            offset += Int(size)
            boxes.append((type, offset))
        }
        return boxes
    }

    // MARK: In the browser

    enum Publisher: String, CaseIterable, Sendable {
        case audioAndVideo
        case videoOnly
        case lateKeyframe
        case reconnecting
    }

    @Test(arguments: Publisher.allCases)
    func browserPlaysThePreview(_ publisher: Publisher) async throws {
        try #require(Chromium.isAvailable, "headless Chromium (Debian's chromium) is needed at \(Chromium.executable)")
        try await withTemporaryDirectory { root in
            try await withPreviewRelay(configure: { $0.preview.directory = root }) { relay in
                try await Chromium.withPage(relay.pageURL) { _ in
                    _ = try await relay.waitForReport("the page to show the stream waiting") { $0.state == "waiting" }
                    switch publisher {
                    case .audioAndVideo, .videoOnly:
                        _ = try await FFmpeg.withPublisher(
                            to: relay.publishURL,
                            duration: 30,
                            audio: publisher == .audioAndVideo
                        ) { _ in
                            try await self.expectPlaying(relay, screenshot: "preview-\(publisher.rawValue)")
                        }
                    case .lateKeyframe:
                        try await self.publishStartingBetweenKeyframes(relay, root: root) {
                            try await self.expectPlaying(relay, screenshot: "preview-\(publisher.rawValue)")
                        }
                    case .reconnecting:
                        let first = try await FFmpeg.withPublisher(to: relay.publishURL, duration: 30) { ffmpeg in
                            let report = try await self.expectPlaying(relay, screenshot: nil)
                            // The encoder dies without unpublishing; it reconnects below.
                            ffmpeg.kill()
                            _ = await ffmpeg.waitForExit()
                            return report
                        }
                        _ = try await relay.waitForReport("the page to show the stream ended") {
                            $0.state == "ended" || $0.state == "waiting"
                        }
                        try await FFmpeg.withPublisher(to: relay.publishURL, duration: 30) { _ in
                            let again = try await self.expectPlaying(
                                relay,
                                after: first.generation,
                                screenshot: "preview-\(publisher.rawValue)"
                            )
                            #expect(again.sessions >= 2)
                        }
                    }
                }
            }
        }
    }

    /// Waits until the page plays: the video element is not paused, has a picture, its time advances by a second
    /// or more, and the frame it shows is not black. Saves that frame as a PNG.
    @discardableResult
    private func expectPlaying(
        _ relay: PreviewRelay,
        after generation: Int = 0,
        screenshot: String?
    ) async throws
        -> PageReport
    {
        let playing = try await relay.waitForReport("the video to play") {
            $0.state == "live" && $0.generation > generation && !$0.paused && $0.readyState >= 2 && $0.currentTime > 0
        }
        let later = try await relay.waitForReport("the video time to advance") {
            $0.generation == playing.generation && !$0.paused && $0.currentTime >= playing.currentTime + 1
                && ($0.frame?.brightness ?? 0) > 30
        }
        #expect(later.videoWidth == 320 && later.videoHeight == 240)
        #expect(later.supported == true)
        if let screenshot, let path = try saveFrame(later, name: screenshot) {
            print("preview frame saved to \(path)")
        }
        return later
    }

    /// Publishes a stream whose first video frames come before its first keyframe (as when an encoder's output is
    /// cut mid-GOP): ffmpeg copies a recording from 0.8 s on, non-keyframes included, so the first keyframe comes
    /// 1.2 s after the first frame.
    private func publishStartingBetweenKeyframes(
        _ relay: PreviewRelay,
        root: String,
        _ body: () async throws -> Void
    ) async throws {
        let recording = root + "/../late-keyframe-\(UInt32.random(in: 0...UInt32.max)).flv"
        defer { try? FileManager.default.removeItem(atPath: recording) }
        let encode = try RunningProcess.launch(
            "ffmpeg",
            arguments: [
                "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
                "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "30",
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
                "-c:a", "aac", "-b:a", "96k", "-f", "flv", recording,
            ]
        )
        let encoded = await encode.waitForExit()
        try #require(encoded.succeeded, "encoding the recording: \(encoded)")
        try await withRunningProcess(
            "ffmpeg",
            arguments: [
                "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-re", "-i", recording,
                "-ss", "0.8", "-c", "copy", "-copyinkf", "-flvflags", "no_duration_filesize", "-f", "flv",
                relay.publishURL,
            ]
        ) { _ in
            try await body()
        }
    }

    @Test func thePageIsServedAndADisabledPreviewIsNot() async throws {
        try await withPreviewRelay { relay in
            // Without the trailing slash, a relative redirect to the page (followed by the client).
            let (status, headers, body) = try await relay.get("/preview/default")
            #expect(status == 200)
            #expect(headers.first(name: "Content-Type") == "text/html; charset=utf-8")
            #expect(String(buffer: body).contains("<video"))
            var preflight = HTTPClientRequest(url: relay.url("/preview/default/index.m3u8"))
            preflight.method = .OPTIONS
            preflight.headers.add(name: "Origin", value: "https://example.com")
            preflight.headers.add(name: "Access-Control-Request-Method", value: "GET")
            preflight.headers.add(name: "Access-Control-Request-Headers", value: "range")
            let response = try await HTTPClient.shared.execute(preflight, timeout: .seconds(10))
            #expect(response.status.code < 300)
            #expect(response.headers.first(name: "Access-Control-Allow-Origin") == "*")
            #expect(try await relay.get("/preview/nosuchstream/").status == 404)
            #expect(try await relay.streamStatus().preview?.state == "waiting")
        }
        let disabled: @Sendable (inout RelayConfiguration) -> Void = { $0.streams[0].previewEnabled = false }
        try await withPreviewRelay(configure: disabled) { relay async throws in
            #expect(try await relay.get("/preview/default/").status == 404)
            #expect(try await relay.get("/preview/default/status").status == 404)
            #expect(try await relay.streamStatus().preview == nil)
        }
    }

    // MARK: Errors

    @Test func unplayableCodecIsReportedOnThePageAndInTheStats() async throws {
        try #require(Chromium.isAvailable, "headless Chromium (Debian's chromium) is needed at \(Chromium.executable)")
        try await withPreviewRelay { relay in
            try await Chromium.withPage(relay.pageURL) { _ in
                // Sorenson H.263, which FLV carries but neither MP4 nor any browser does.
                try await FFmpeg.withPublisher(to: relay.publishURL, duration: 30, extraArguments: ["-c:v", "flv"]) {
                    _ in
                    let status = try await eventually("the preview to report the codec") {
                        let status = try await relay.previewStatus()
                        return status.state == "unsupported" ? status : nil
                    }
                    #expect(status.error?.contains("H.263") == true, "\(status)")
                    let stats = try await relay.streamStatus()
                    #expect(stats.preview?.state == "unsupported")
                    #expect(stats.preview?.error?.contains("H.263") == true)
                    #expect(stats.state == "live")
                    let report = try await relay.waitForReport("the page to show the codec error") {
                        $0.state == "unsupported"
                    }
                    #expect(report.detail.contains("H.263"), "\(report.detail)")
                    #expect(relay.logs.contains("Preview: unsupported video codec"))
                }
            }
        }
    }

    /// HEVC, which Chromium here cannot play. ffmpeg 5.1 cannot publish HEVC over RTMP, so the test hands the
    /// preview enhanced-RTMP HEVC messages itself: a decoder configuration record and keyframes. libavformat packages
    /// them without decoding; the page must say that this browser cannot play them rather than show a black video.
    @Test func hevcIsReportedOnThePageAndInTheStats() async throws {
        try #require(Chromium.isAvailable, "headless Chromium (Debian's chromium) is needed at \(Chromium.executable)")
        try await withPreviewRelay { relay in
            let preview = try #require(relay.server.preview(stream: "default"))
            try await Chromium.withPage(relay.pageURL) { _ in
                let session = preview.startSession(logger: Logger(label: "hevc-test"))
                defer { session.finish() }
                // hvcC: version 1, Main profile, level 3.1, 4-byte NAL lengths, no parameter set arrays.
                let record: [UInt8] = [
                    0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5D, 0xF0, 0x00, 0xFC,
                    0xFD, 0xF8, 0xF8, 0x00, 0x00, 0x0F, 0x00,
                ]
                let hvc1: [UInt8] = Array("hvc1".utf8)
                // Enhanced RTMP: IsExHeader, key frame, SequenceStart / CodedFramesX, FOURCC.
                session.video(ByteBuffer(bytes: [0x90] + hvc1 + record), timestamp: 0, role: .sequenceHeader)
                let status = try await eventually("the HEVC preview to start") {
                    for frame in 0..<5 {
                        // An IDR_W_RADL NAL unit, length-prefixed (not decodable; muxers do not decode).
                        let nal: [UInt8] = [0x00, 0x00, 0x00, 0x05, 0x26, 0x01, 0xAF, 0x00, 0x00]
                        session.video(
                            ByteBuffer(bytes: [0x93] + hvc1 + nal),
                            timestamp: UInt32(frame * 40),
                            role: .keyframe
                        )
                    }
                    let status = try await relay.previewStatus()
                    return status.state == "live" ? status : nil
                }
                #expect(status.videoCodec == "hevc")
                #expect(status.mimeType?.contains("hvc1.") == true)
                #expect(status.error?.contains("HEVC") == true)
                #expect(try await relay.streamStatus().preview?.error?.contains("HEVC") == true)
                let report = try await relay.waitForReport("the page to say it cannot play HEVC") {
                    $0.state == "unsupported"
                }
                #expect(report.supported == false)
                #expect(report.detail.contains("hvc1"), "\(report.detail)")
            }
        }
    }

    @Test func aLibavformatFailureStopsOnlyThePreview() async throws {
        try await withNginxRTMP(applications: ["live"]) { nginx in
            let target = PushTargetConfiguration(
                name: "nginx",
                url: try RTMPURL(parsing: nginx.url(app: "live")),
                streamKey: Secret("copy")
            )
            // An HLS segment duration libavformat refuses: the hls muxer fails to start.
            try await withPreviewRelay(targets: [target], configure: { $0.preview.hlsSegmentSeconds = -1 }) { relay in
                try await FFmpeg.withPublisher(to: relay.publishURL, duration: 6) { ffmpeg in
                    let status = try await eventually("the preview to fail") {
                        let status = try await relay.previewStatus()
                        return status.state == "failed" ? status : nil
                    }
                    let error = try #require(status.error)
                    #expect(error.contains("hls"), "\(error)")
                    #expect(
                        relay.logs.all.contains {
                            $0.contains("Preview stopped: libavformat failed") && $0.contains("hls")
                        }
                    )
                    #expect(try await relay.get("/preview/default/live.mp4").status == 404)
                    let exit = await ffmpeg.waitForExit()
                    #expect(exit.succeeded, "ffmpeg: \(exit)")
                }
            }
            // The push went on regardless.
            let recording = try await FFprobe.inspect(nginx.recordingPath(app: "live", stream: "copy"))
            #expect((recording.video?.frameCount ?? 0) >= 100)
        }
    }
}
