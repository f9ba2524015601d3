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

/// What ffprobe says about a media file.
public struct MediaInfo: Sendable, Hashable {
    /// One stream of the file.
    public struct Stream: Sendable, Hashable {
        /// The stream's index in the file.
        public var index: Int
        /// `video`, `audio`, `data` or `subtitle`.
        public var codecType: String
        /// The codec, as ffmpeg names it: `h264`, `hevc`, `aac`, `mp3`, ….
        public var codecName: String?
        /// The codec profile, such as `High` or `LC`.
        public var profile: String?
        /// The video width in pixels.
        public var width: Int?
        /// The video height in pixels.
        public var height: Int?
        /// The audio sample rate in hertz.
        public var sampleRate: Int?
        /// The number of audio channels.
        public var channels: Int?
        /// The number of frames decoded, when ffprobe was asked to count them.
        public var frameCount: Int?
        /// The average frame rate, for video.
        public var averageFrameRate: Double?
        /// When the stream's first packet is presented, in seconds.
        public var startTime: Double?

        public init(index: Int, codecType: String) {
            self.index = index
            self.codecType = codecType
        }
    }

    /// The container, as ffmpeg names it (`flv`).
    public var formatName: String
    /// The duration in seconds, if ffprobe could tell.
    public var duration: Double?
    /// The streams, in file order.
    public var streams: [Stream]

    public init(formatName: String, duration: Double?, streams: [Stream]) {
        self.formatName = formatName
        self.duration = duration
        self.streams = streams
    }

    /// The first video stream.
    public var video: Stream? { self.streams.first { $0.codecType == "video" } }
    /// The first audio stream.
    public var audio: Stream? { self.streams.first { $0.codecType == "audio" } }
}

/// ffprobe and ffmpeg as checkers of what a test produced.
public enum FFprobe {
    /// How long one ffprobe or ffmpeg run may take before it is killed.
    static let runTimeout = Duration.seconds(120)

    /// Runs `ffprobe -v error -print_format json -show_streams -show_format` on `path`.
    ///
    /// - Parameters:
    ///   - path: The media file.
    ///   - countFrames: Whether to decode the file to count frames (`-count_frames`), which fills
    ///     ``MediaInfo/Stream/frameCount``. It costs a full decode: about a tenth of a second for ten seconds of
    ///     320x240.
    /// - Throws: ``PeerError`` with ffprobe's error output when the file cannot be read.
    public static func inspect(_ path: String, countFrames: Bool = true) async throws -> MediaInfo {
        var arguments = ["-v", "error", "-print_format", "json", "-show_streams", "-show_format"]
        if countFrames { arguments.append("-count_frames") }
        arguments.append(path)
        let exit = try await run("ffprobe", arguments: arguments, captureStandardOutput: true)
        guard exit.succeeded else {
            throw PeerError.processFailed("ffprobe \(path) failed (\(exit)): \(exit.standardError)")
        }
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let report = try decoder.decode(ProbeReport.self, from: Data(exit.standardOutput.utf8))
            return MediaInfo(report)
        } catch {
            throw PeerError.malformedOutput("cannot decode ffprobe's JSON for \(path): \(error)")
        }
    }

    /// The presentation times, in seconds, of the first video stream's keyframes in `path`, in file order
    /// (`ffprobe -show_entries packet=pts_time,flags`).
    public static func keyframeTimes(_ path: String) async throws -> [Double] {
        let exit = try await run(
            "ffprobe",
            arguments: [
                "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0",
                path,
            ],
            captureStandardOutput: true
        )
        guard exit.succeeded else {
            throw PeerError.processFailed("ffprobe \(path) failed (\(exit)): \(exit.standardError)")
        }
        return exit.standardOutput.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ",")
            guard fields.count >= 2, fields[1].hasPrefix("K"), let time = Double(fields[0]) else { return nil }
            return time
        }
    }

    /// Decodes all of `path` with `ffmpeg -v error -i PATH -enc_time_base -1 -f null -` and returns what ffmpeg
    /// reported, trimmed.
    ///
    /// An empty string means a clean decode: no corrupt packets, no missing references, no timestamp errors that
    /// ffmpeg considers errors. `-enc_time_base -1` keeps the input's time base (FLV's milliseconds): by default
    /// ffmpeg re-times decoded video in 1/frame rate, where two frames of a variable-rate stream less than one frame
    /// apart (a WebRTC ingest catching up with its sender's clock) land on one tick, which the null muxer reports as
    /// "non monotonically increasing dts" though the file's own times increase.
    public static func decodeErrors(_ path: String) async throws -> String {
        let exit = try await run(
            "ffmpeg",
            arguments: [
                "-hide_banner", "-nostdin", "-nostats", "-v", "error", "-i", path, "-enc_time_base", "-1", "-f", "null",
                "-",
            ],
            captureStandardOutput: false
        )
        let errors = exit.standardError.trimmingCharacters(in: .whitespacesAndNewlines)
        if !exit.succeeded && errors.isEmpty {
            return "ffmpeg exited (\(exit)) decoding \(path)"
        }
        return errors
    }

    private static func run(
        _ executable: String,
        arguments: [String],
        captureStandardOutput: Bool
    ) async throws -> ProcessExit {
        let process = try RunningProcess.launch(
            executable,
            arguments: arguments,
            standardOutput: captureStandardOutput ? .capture(limit: 16 * 1024 * 1024) : .discard
        )
        return try await withEndedProcess(process) { process in
            guard let exit = await process.waitForExit(timeout: runTimeout) else {
                try Task.checkCancellation()
                throw PeerError.timeout("\(process.commandLine) did not finish within \(runTimeout)")
            }
            return exit
        }
    }
}

// MARK: - ffprobe's JSON

private struct ProbeReport: Decodable {
    struct Stream: Decodable {
        var index: Int
        var codecType: String
        var codecName: String?
        var profile: String?
        var width: Int?
        var height: Int?
        var sampleRate: String?
        var channels: Int?
        var nbReadFrames: String?
        var avgFrameRate: String?
        var startTime: String?
    }

    struct Format: Decodable {
        var formatName: String
        var duration: String?
    }

    var streams: [Stream]
    var format: Format
}

extension MediaInfo {
    fileprivate init(_ report: ProbeReport) {
        self.init(
            formatName: report.format.formatName,
            duration: report.format.duration.flatMap(Double.init),
            streams: report.streams.map { stream in
                var result = Stream(index: stream.index, codecType: stream.codecType)
                result.codecName = stream.codecName
                result.profile = stream.profile
                result.width = stream.width
                result.height = stream.height
                result.sampleRate = stream.sampleRate.flatMap { Int($0) }
                result.channels = stream.channels
                result.frameCount = stream.nbReadFrames.flatMap { Int($0) }
                result.averageFrameRate = stream.avgFrameRate.flatMap(parseRational)
                result.startTime = stream.startTime.flatMap(Double.init)
                return result
            }
        )
    }
}

/// `"25/1"` → 25; `nil` for `"0/0"` and anything unparsable.
private func parseRational(_ text: String) -> Double? {
    let parts = text.split(separator: "/")
    guard parts.count == 2, let numerator = Double(parts[0]), let denominator = Double(parts[1]), denominator != 0
    else { return nil }
    return numerator / denominator
}
