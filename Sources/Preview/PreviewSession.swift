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

import Logging
import Media
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The preview of one live publish: the relay hands it every audio and video message (never waiting), and a thread
/// of its own remuxes them with libavformat into fragmented MP4 and HLS.
///
/// The queue between the two is bounded in bytes: when the thread falls behind (a slow disk), the queued media is
/// dropped and the preview resumes at the next keyframe, as a push target's queue does.
public final class PreviewSession: Sendable {
    private let queue: PreviewQueue
    private let logger: Logger

    init(stream: PreviewStream, id: UInt64, logger: Logger) {
        self.queue = PreviewQueue(
            maxBytes: stream.configuration.queueBytes,
            wakeSpan: UInt32(clamping: stream.configuration.fragmentMilliseconds)
        )
        self.logger = logger
        let queue = self.queue
        let name = "preview-\(stream.name)"
        // One thread for the session's life, from NIO's thread pool (Foundation's `Thread` is not in
        // FoundationEssentials): it blocks in libavformat's file writes, which must not run on an event loop. It
        // exists only while a publish with the preview enabled lasts, and ends with it.
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        thread.submit { state in
            defer { thread.shutdownGracefully { _ in } }
            guard case .active = state else {
                return
            }
            Self.nameCurrentThread(name)
            let packager = PreviewPackager(stream: stream, session: id, logger: logger)
            packager.run(queue)
        }
    }

    /// Names the calling thread as `top -H` and /proc/PID/task/TID/comm show it, through the file Linux names it by
    /// (it keeps 15 bytes). Elsewhere the thread keeps the pool's name.
    private static func nameCurrentThread(_ name: String) {
        let file = open("/proc/thread-self/comm", O_WRONLY)
        guard file >= 0 else {
            return
        }
        defer { close(file) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(file, $0.baseAddress, $0.count) }
    }

    /// What the queue needs to know of a message to drop media up to a keyframe and keep decoder configurations.
    /// The relay classified the message already; the queue does not parse it again.
    public enum Role: Sendable {
        case sequenceHeader
        case keyframe
        case frame
    }

    /// Queues an RTMP video message (an FLV `VIDEODATA` body) with its timestamp in milliseconds.
    public func video(_ payload: ByteBuffer, timestamp: UInt32, role: Role) {
        self.submit(.video(payload, timestamp, role))
    }

    /// Queues an RTMP audio message (an FLV `AUDIODATA` body) with its timestamp in milliseconds.
    public func audio(_ payload: ByteBuffer, timestamp: UInt32, role: Role) {
        self.submit(.audio(payload, timestamp, role))
    }

    private func submit(_ item: PreviewQueue.Item) {
        if case .startedDropping(let bytes) = self.queue.push(item) {
            self.logger.warning(
                "Preview is behind: dropping media up to the next keyframe",
                metadata: ["preview.queued_bytes": "\(bytes)"]
            )
        }
    }

    /// The publish ended: the thread writes what it has, ends the outputs and removes the HLS files.
    public func finish() {
        _ = self.queue.push(.end)
    }
}

/// The bounded queue from the relay's event loops to a preview thread.
final class PreviewQueue: @unchecked Sendable {
    enum Item {
        case video(ByteBuffer, UInt32, PreviewSession.Role)
        case audio(ByteBuffer, UInt32, PreviewSession.Role)
        case end

        var bytes: Int {
            switch self {
            case .video(let payload, _, _), .audio(let payload, _, _): payload.readableBytes
            case .end: 0
            }
        }

        var isKeyframe: Bool {
            guard case .video(_, _, .keyframe) = self else {
                return false
            }
            return true
        }

        var isHeader: Bool {
            switch self {
            case .video(_, _, let role), .audio(_, _, let role): role == .sequenceHeader
            case .end: true
            }
        }
    }

    enum PushResult {
        case queued
        case dropped
        case startedDropping(bytes: Int)
    }

    // Guarded by `condition`; its value says whether `items` holds something.
    private let condition = ConditionLock(value: false)
    private var items: [Item] = []
    private var bytes = 0
    private var dropping = false
    private var ended = false
    private var droppedMessages: UInt64 = 0
    /// The timestamp of the oldest message queued (in milliseconds), to wake the packager once per `wakeSpan`.
    private var oldestTimestamp: UInt32?
    private let maxBytes: Int
    private let wakeSpan: UInt32

    init(maxBytes: Int, wakeSpan: UInt32) {
        self.maxBytes = maxBytes
        self.wakeSpan = wakeSpan
    }

    func push(_ item: Item) -> PushResult {
        self.condition.lock()
        var result = PushResult.queued
        if self.ended {
            result = .dropped
        } else if self.dropping && !item.isKeyframe && !item.isHeader {
            self.droppedMessages += 1
            result = .dropped
        } else {
            if self.bytes + item.bytes > self.maxBytes && !item.isHeader {
                // Behind: drop what waits, keeping decoder configurations, and start again at a keyframe.
                let queued = self.bytes
                let kept = self.items.filter(\.isHeader)
                self.droppedMessages += UInt64(self.items.count - kept.count)
                self.items = kept
                self.bytes = kept.reduce(0) { $0 + $1.bytes }
                result = .startedDropping(bytes: queued)
                self.dropping = !item.isKeyframe
            } else if item.isKeyframe {
                self.dropping = false
            }
            if !self.dropping || item.isHeader {
                self.items.append(item)
                self.bytes += item.bytes
            } else {
                self.droppedMessages += 1
            }
            if case .end = item {
                self.ended = true
            }
        }
        // The packager's output is a fragment per `fragmentDuration`: waking it for each message would cost a
        // context switch per message for nothing. It wakes when the media queued spans a fragment (or a stream
        // without timestamps queues many messages), and at the end.
        switch item {
        case .end:
            self.condition.unlock(withValue: true)
        case .video(_, let timestamp, _), .audio(_, let timestamp, _):
            let oldest = self.oldestTimestamp ?? timestamp
            self.oldestTimestamp = self.items.isEmpty ? nil : oldest
            // Wrapping: timestamps that went back (an encoder restarted) wake it too.
            if !self.items.isEmpty && (timestamp &- oldest >= self.wakeSpan || self.items.count >= Self.maxBatch) {
                self.condition.unlock(withValue: true)
            } else {
                self.condition.unlock()
            }
        }
        return result
    }

    /// Whether ``pop()`` would return at once.
    var isReady: Bool { self.condition.value }

    /// Messages that wake the packager whatever their timestamps say.
    private static let maxBatch = 256

    /// Blocks until the packager has work (see ``push(_:)``), then takes everything queued, and how many messages
    /// were dropped since the last call.
    func pop() -> ([Item], UInt64) {
        self.condition.lock(whenValue: true)
        var items: [Item] = []
        swap(&items, &self.items)
        let dropped = self.droppedMessages
        self.oldestTimestamp = nil
        self.bytes = 0
        self.droppedMessages = 0
        self.condition.unlock(withValue: false)
        return (items, dropped)
    }
}

/// Runs on a preview thread: turns FLV video and audio bodies into packets, and feeds the two libavformat outputs.
final class PreviewPackager {
    private struct Output {
        var mp4: LibAVMuxer
        var hls: LibAVMuxer?
        var hlsDirectory: String?
        var tracks: [PreviewTrack]
        var audioTrack: Int?
        /// The RTMP timestamp of the first keyframe: the outputs start at 0.
        var base: Int64
        var lastDTS: [Int64]
        /// Video waits for the next frame, which gives its exact duration.
        var pendingVideo: (data: ByteBuffer, dts: Int64, pts: Int64, keyframe: Bool)?
        var lastVideoDuration: Int64 = 40
        /// Whether the first video frame reached the muxers. Audio waits for it (the preview loses the audio of
        /// that one frame): libavformat's mp4 muxer shifts every track by the first packet it sees (avoid_negative_ts
        /// make_zero, no edit list), so audio first with a decode time beyond the first video frame's duration gives
        /// that frame a negative duration, and a fragment that ends with it aborts the whole relay in movenc
        /// (`Assertion next_dts >= 0 failed`). A WHIP publisher under load, whose second frame is a keyframe asked
        /// for by PLI, did that (issue 24).
        var videoWritten = false
        /// The decode time of the open fragment's first video frame (`nil`: no fragment open), and whether that frame
        /// is a keyframe (a browser that joins starts with the fragments since it).
        var fragmentStart: Int64?
        var fragmentStartsAtKeyframe = false
        var hlsSegmentsSeen = 0
    }

    private let stream: PreviewStream
    private let session: UInt64
    private var logger: Logger
    private var video: PreviewTrack?
    private var videoDescription: String?
    private var audio: PreviewTrack?
    private var output: Output?
    /// Set when the preview stopped for good for this publish (a libavformat failure, an unsupported codec).
    private var stopped = false
    private var warnedAudio = false
    private var reportedMissingConfiguration = false

    init(stream: PreviewStream, session: UInt64, logger: Logger) {
        self.stream = stream
        self.session = session
        self.logger = logger
    }

    func run(_ queue: PreviewQueue) {
        while true {
            let (items, dropped) = queue.pop()
            if dropped > 0 {
                self.stream.dropped(session: self.session, messages: dropped)
            }
            for item in items {
                switch item {
                case .video(let payload, let timestamp, _):
                    self.video(payload, timestamp: Int64(timestamp))
                case .audio(let payload, let timestamp, _):
                    self.audio(payload, timestamp: Int64(timestamp))
                case .end:
                    self.endOutput()
                    self.stream.sessionEnded(session: self.session)
                    return
                }
            }
        }
    }

    // MARK: Input

    private func video(_ payload: ByteBuffer, timestamp: Int64) {
        guard !self.stopped, let header = try? VideoTagHeader(parsing: payload), !header.isMultitrack else {
            return
        }
        if header.isSequenceHeader {
            self.videoConfiguration(header, payload)
            return
        }
        guard header.packetType == .codedFrames || header.packetType == .codedFramesX,
            let data = header.codecData(in: payload), let video = self.video
        else {
            if header.isKeyframe && self.video == nil && (header.codec == .avc || header.codec == .hevc)
                && !self.reportedMissingConfiguration
            {
                self.reportedMissingConfiguration = true
                self.logger.notice("Preview: a keyframe without a usable decoder configuration; waiting for one")
                self.stream.waiting(
                    session: self.session,
                    reason: "the encoder sent no usable decoder configuration (sequence header) for its video"
                )
            }
            if !header.isSequenceHeader && !header.isCommand && !header.isMetadata,
                let codec = header.codec, codec != .avc && codec != .hevc
            {
                self.unsupported(video: codec)
            }
            return
        }
        if self.output == nil {
            guard header.isKeyframe else {
                // A browser (and an HLS segment) starts at a keyframe.
                return
            }
            self.startOutput(video: video, timestamp: timestamp)
        }
        guard var output = self.output else {
            return
        }
        var dts = timestamp - output.base
        if dts < output.lastDTS[0] - 1000 {
            // The timestamps went back (an encoder restarted without reconnecting): a new output at the next
            // keyframe.
            self.logger.notice("Preview: video timestamps went back; restarting the preview at the next keyframe")
            self.endOutput()
            self.stream.outputEnded(session: self.session)
            if header.isKeyframe {
                self.video(payload, timestamp: timestamp)
            }
            return
        }
        dts = max(dts, output.lastDTS[0] + 1)
        let pts = max(dts + Int64(header.compositionTimeOffset ?? 0), dts)
        output.lastDTS[0] = dts
        let previous = output.pendingVideo
        output.pendingVideo = (data, dts, pts, header.isKeyframe)
        self.output = output
        if let previous {
            self.writeVideo(previous, duration: dts - previous.dts)
        }
    }

    private func videoConfiguration(_ header: VideoTagHeader, _ payload: ByteBuffer) {
        guard let codec = header.codec, let record = header.codecData(in: payload) else {
            return
        }
        var track: PreviewTrack
        var description: String
        switch codec {
        case .avc:
            guard let configuration = try? AVCDecoderConfigurationRecord(parsing: record) else {
                self.logger.notice("Preview: the AVC decoder configuration does not parse")
                return
            }
            track = PreviewTrack(codec: .h264, extradata: record)
            if let sps = try? configuration.parseSequenceParameterSet() {
                track.width = sps.width
                track.height = sps.height
            }
            description = Self.hex(
                "avc1.",
                [configuration.profileIndication, configuration.profileCompatibility, configuration.levelIndication]
            )
        case .hevc:
            guard let configuration = try? HEVCDecoderConfigurationRecord(parsing: record) else {
                self.logger.notice("Preview: the HEVC decoder configuration does not parse")
                return
            }
            track = PreviewTrack(codec: .hevc, extradata: record)
            if let sps = try? configuration.parseSequenceParameterSet() {
                track.width = sps.width
                track.height = sps.height
            }
            description = Self.hevcCodecString(configuration)
        default:
            self.unsupported(video: codec)
            return
        }
        if track.width == 0 || track.height == 0 {
            // libavformat's mp4 muxer wants a size; the decoder reads the real one from the parameter sets.
            track.width = 16
            track.height = 16
        }
        if let current = self.video, current != track, self.output != nil {
            self.logger.info("Preview: the video configuration changed; restarting the preview at the next keyframe")
            self.endOutput()
            self.stream.outputEnded(session: self.session)
        }
        self.video = track
        self.videoDescription = description
    }

    private func audio(_ payload: ByteBuffer, timestamp: Int64) {
        guard !self.stopped, let header = try? AudioTagHeader(parsing: payload), !header.isMultitrack else {
            return
        }
        guard header.codec == .aac else {
            if !self.warnedAudio {
                self.warnedAudio = true
                self.logger.notice(
                    "Preview: audio codec not previewed (AAC only); the preview is video only",
                    metadata: ["preview.audio.codec": "\(header.codec.map { "\($0)" } ?? "?")"]
                )
            }
            return
        }
        guard let data = header.codecData(in: payload) else {
            return
        }
        if header.isSequenceHeader {
            guard let configuration = try? AudioSpecificConfig(parsing: data) else {
                self.logger.notice("Preview: the AAC AudioSpecificConfig does not parse")
                return
            }
            var track = PreviewTrack(codec: .aac, extradata: data)
            track.sampleRate = configuration.samplingFrequency
            track.channels = configuration.channelCount ?? 2
            self.audio = track
            return
        }
        guard header.packetType == .codedFrames, var output = self.output, let index = output.audioTrack,
            output.videoWritten
        else {
            return
        }
        let dts = timestamp - output.base
        guard dts >= 0 else {
            // Before the first keyframe: a browser starts with the video.
            return
        }
        let written = max(dts, output.lastDTS[index] + 1)
        output.lastDTS[index] = written
        self.output = output
        let sampleRate = Int64(max(self.audio?.sampleRate ?? 44100, 1))
        self.write(track: index, data: data, dts: written, pts: written, duration: 1024 * 1000 / sampleRate, key: true)
    }

    // MARK: Output

    /// The fragmented MP4 muxer's options: fragments cut by the packager (`frag_custom`), an init segment without
    /// samples, and no `mfra` index at the end (`skip_trailer`). A live response has no end to index; without the flag
    /// libavformat keeps one entry per fragment and track for that index (`frag_info`) for the whole session, about
    /// 1 MiB an hour at four fragments a second.
    static let liveMP4Options = [("movflags", "frag_custom+empty_moov+default_base_moof+skip_trailer")]

    private func startOutput(video: PreviewTrack, timestamp: Int64) {
        var tracks = [video]
        var audioTrack: Int?
        if let audio = self.audio {
            audioTrack = tracks.count
            tracks.append(audio)
        }
        let configuration = self.stream.configuration
        var codecs = [self.videoDescription ?? "avc1"]
        if let audio = self.audio, let config = try? AudioSpecificConfig(parsing: audio.extradata) {
            codecs.append("mp4a.40.\(config.audioObjectType)")
        }
        let mimeType = "video/mp4; codecs=\"\(codecs.joined(separator: ","))\""
        do throws(PreviewError) {
            let mp4 = try LibAVMuxer(
                format: "mp4",
                url: nil,
                tracks: tracks,
                options: Self.liveMP4Options
            )
            let initSegment = try mp4.takeOutput()
            let directory = try self.makeHLSDirectory(root: configuration.directory)
            let hls: LibAVMuxer
            do throws(PreviewError) {
                hls = try LibAVMuxer(
                    format: "hls",
                    url: directory + "/index.m3u8",
                    tracks: tracks,
                    options: [
                        ("hls_time", String(configuration.hlsSegmentSeconds)),
                        ("hls_list_size", String(configuration.hlsListSize)),
                        ("hls_flags", "delete_segments+independent_segments+temp_file"),
                        ("hls_segment_filename", directory + "/s\(self.session)-\(timestamp)-%d.ts"),
                    ]
                )
            } catch {
                try? FileManager.default.removeItem(atPath: directory)
                throw error
            }
            self.output = Output(
                mp4: mp4,
                hls: hls,
                hlsDirectory: directory,
                tracks: tracks,
                audioTrack: audioTrack,
                base: timestamp,
                lastDTS: Array(repeating: -1, count: tracks.count)
            )
            var description = PreviewOutputDescription(
                videoCodec: video.codec == .h264 ? "h264" : "hevc",
                audioCodec: audioTrack == nil ? nil : "aac",
                width: video.width,
                height: video.height
            )
            if video.codec == .hevc {
                description.error =
                    "the video is HEVC, which many browsers (Chromium on Linux, Firefox) cannot play; send H.264 for a preview that plays everywhere"
            }
            self.stream.outputStarted(
                session: self.session,
                initSegment: initSegment,
                mimeType: mimeType,
                description: description,
                hlsDirectory: directory
            )
            self.logger.info(
                "Preview is live",
                metadata: ["preview.mime_type": "\(mimeType)", "preview.hls.directory": "\(directory)"]
            )
        } catch {
            self.fail(error)
        }
    }

    private func makeHLSDirectory(root: String?) throws(PreviewError) -> String {
        let base: String
        if let root {
            base = root
        } else {
            base = try PrivateTemporaryDirectory.shared.path()
        }
        let directory = base + "/\(self.stream.name)-\(self.session)-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw PreviewError.io("cannot create the HLS directory \(directory): \(error)")
        }
        return directory
    }

    private func writeVideo(_ frame: (data: ByteBuffer, dts: Int64, pts: Int64, keyframe: Bool), duration: Int64) {
        guard var output = self.output else {
            return
        }
        let duration = max(duration, 1)
        output.lastVideoDuration = duration
        self.output = output
        if frame.keyframe {
            // A keyframe starts a fragment, so that a browser joining gets whole GOPs.
            self.flushFragment()
        }
        self.write(track: 0, data: frame.data, dts: frame.dts, pts: frame.pts, duration: duration, key: frame.keyframe)
        guard var output = self.output else {
            return
        }
        output.videoWritten = true
        let start = output.fragmentStart ?? frame.dts
        if output.fragmentStart == nil {
            output.fragmentStart = start
            output.fragmentStartsAtKeyframe = frame.keyframe
        }
        self.output = output
        // A fragment ends with the video frame that completes its duration (with the audio written before it).
        if frame.dts + duration - start >= self.stream.configuration.fragmentMilliseconds {
            self.flushFragment()
        }
        if frame.keyframe, let directory = output.hlsDirectory {
            self.countHLSSegments(directory)
        }
    }

    /// Ends the open fragment, if any, and hands it to the browsers.
    private func flushFragment() {
        guard var output = self.output, output.fragmentStart != nil else {
            return
        }
        let keyframe = output.fragmentStartsAtKeyframe
        output.fragmentStart = nil
        output.fragmentStartsAtKeyframe = false
        self.output = output
        do throws(PreviewError) {
            try output.mp4.flush()
            let fragment = try output.mp4.takeOutput()
            if fragment.readableBytes > 0,
                self.stream.fragmentWritten(session: self.session, fragment, keyframe: keyframe)
            {
                self.logger.notice(
                    "Preview: keyframe interval over the buffer limit; joining browsers wait for the next keyframe",
                    metadata: ["preview.max_buffered_bytes": "\(self.stream.configuration.maxBufferedBytes)"]
                )
            }
        } catch {
            self.fail(error)
        }
    }

    private func countHLSSegments(_ directory: String) {
        guard var output = self.output else {
            return
        }
        let segments = (try? FileManager.default.contentsOfDirectory(atPath: directory))?.filter {
            $0.hasSuffix(".ts")
        }
        let count = segments?.count ?? 0
        if count != output.hlsSegmentsSeen {
            output.hlsSegmentsSeen = count
            self.output = output
            self.stream.hlsSegmentWritten(session: self.session)
        }
    }

    private func write(track: Int, data: ByteBuffer, dts: Int64, pts: Int64, duration: Int64, key: Bool) {
        guard let output = self.output else {
            return
        }
        do throws(PreviewError) {
            let data = try LibAVPacketData(data)
            try output.mp4.write(track: track, data: data, dts: dts, pts: pts, duration: duration, keyframe: key)
            try output.hls?.write(track: track, data: data, dts: dts, pts: pts, duration: duration, keyframe: key)
        } catch {
            self.fail(error)
        }
    }

    /// Writes what is pending, ends both outputs and removes the HLS files.
    private func endOutput() {
        guard let current = self.output else {
            return
        }
        if let pending = current.pendingVideo {
            self.writeVideo(pending, duration: current.lastVideoDuration)
        }
        self.flushFragment()
        guard let output = self.output else {
            // libavformat failed on the last of it: `fail` ended the output.
            return
        }
        self.output = nil
        do throws(PreviewError) {
            try output.mp4.finish()
            try output.hls?.finish()
        } catch {
            self.logger.warning("Preview: libavformat failed ending the output", metadata: ["error": "\(error)"])
        }
        if let directory = output.hlsDirectory {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private func unsupported(video codec: VideoCodec) {
        guard !self.stopped else {
            return
        }
        self.stopped = true
        let name = Self.name(codec)
        let message =
            "the video codec \(name) cannot be packaged for the preview or played by browsers; send H.264 (or HEVC)"
        self.logger.warning("Preview: unsupported video codec", metadata: ["preview.video.codec": "\(name)"])
        self.stream.failed(session: self.session, state: "unsupported", error: message, videoCodec: name)
    }

    /// libavformat failed: the preview of this publish stops; the relay goes on.
    private func fail(_ error: PreviewError) {
        self.logger.error("Preview stopped: libavformat failed", metadata: ["error": "\(error.message)"])
        let output = self.output
        self.output = nil
        if let directory = output?.hlsDirectory {
            try? FileManager.default.removeItem(atPath: directory)
        }
        self.stopped = true
        self.stream.failed(session: self.session, state: "failed", error: error.message, videoCodec: nil)
    }

    // MARK: Codec strings (RFC 6381)

    private static func hex(_ prefix: String, _ bytes: [UInt8]) -> String {
        prefix
            + bytes.map { byte in
                let digits = String(byte, radix: 16, uppercase: true)
                return digits.count == 1 ? "0" + digits : digits
            }.joined()
    }

    /// ISO/IEC 14496-15 Annex E: `hvc1.<profile space><profile>.<compatibility, bit-reversed>.<tier><level>.<constraints>`.
    private static func hevcCodecString(_ configuration: HEVCDecoderConfigurationRecord) -> String {
        let space = ["", "A", "B", "C"][Int(configuration.generalProfileSpace & 3)]
        var reversed: UInt32 = 0
        for bit in 0..<32 where configuration.generalProfileCompatibilityFlags & (1 << bit) != 0 {
            reversed |= 1 << (31 - bit)
        }
        var constraints: [String] = []
        var flags = configuration.generalConstraintIndicatorFlags
        var bytes: [UInt8] = []
        for _ in 0..<6 {
            bytes.insert(UInt8(flags & 0xFF), at: 0)
            flags >>= 8
        }
        while let last = bytes.last, last == 0 {
            bytes.removeLast()
        }
        constraints = bytes.map { String($0, radix: 16, uppercase: true) }
        let tier = configuration.generalTierFlag ? "H" : "L"
        return
            ([
                "hvc1", "\(space)\(configuration.generalProfileIDC)", String(reversed, radix: 16, uppercase: true),
                "\(tier)\(configuration.generalLevelIDC)",
            ] + constraints).joined(separator: ".")
    }

    private static func name(_ codec: VideoCodec) -> String {
        switch codec {
        case .h263: "Sorenson H.263"
        case .screen: "Screen Video"
        case .vp6: "VP6"
        case .vp6Alpha: "VP6 with alpha"
        case .screenV2: "Screen Video 2"
        case .avc: "H.264"
        case .hevc: "HEVC"
        case .av1: "AV1"
        case .vp9: "VP9"
        case .vp8: "VP8"
        case .unknownCodecID(let id): "codec id \(id)"
        case .unknownFourCC(let fourCC): "\(fourCC)"
        }
    }
}

@available(*, unavailable)
extension PreviewPackager: Sendable {}

/// The process's own directory under the system's temporary directory, made once with `mkdtemp` (mode 0700, a
/// name no other user can take first). A fixed name such as `/tmp/liverelay-preview` is shared by every user of
/// the machine: whoever creates it first owns it, and every other user's preview then fails with EACCES.
final class PrivateTemporaryDirectory: Sendable {
    static let shared = PrivateTemporaryDirectory()

    private let made = NIOLockedValueBox<String?>(nil)

    func path() throws(PreviewError) -> String {
        let result: Result<String, PreviewError> = self.made.withLockedValue { made in
            if let made {
                return .success(made)
            }
            let temporary = FileManager.default.temporaryDirectory.path(percentEncoded: false)
            let base = temporary.hasSuffix("/") ? temporary : temporary + "/"
            var template = Array((base + "liverelay-preview-XXXXXX").utf8CString)
            let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
            guard created != nil else {
                let reason = String(cString: strerror(errno))
                return .failure(
                    .io("cannot create a directory for the preview in \(temporary): \(reason)")
                )
            }
            let path = String(
                decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) },
                as: UTF8.self
            )
            made = path
            return .success(path)
        }
        return try result.get()
    }
}
