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

/// ffmpeg as a test peer: a publisher of synthetic audio and video, and a recorder of what a server sends.
public enum FFmpeg {
    /// Starts ffmpeg publishing a synthetic stream to `url` for `duration` seconds, then exiting.
    ///
    /// Video is lavfi's `testsrc2` (a moving pattern with a frame counter) encoded with libx264 (`veryfast`, so with
    /// B-frames and composition time offsets, as a real encoder sends them), a keyframe exactly every
    /// `keyframeInterval` seconds (`-g`, `-keyint_min`, `-sc_threshold 0`). Audio is a 440 Hz `sine` encoded as
    /// stereo AAC-LC at 44.1 kHz. The container is FLV over RTMP (`rtmp://`) or RTMPS (`rtmps://`).
    ///
    /// For RTMPS against ``NginxRTMP``'s self-signed certificate, pass
    /// `extraArguments: ["-tls_verify", "1", "-ca_file", nginx.certificatePath!]`; ffmpeg's default is not to verify.
    ///
    /// - Parameters:
    ///   - url: Where to publish, including the stream name.
    ///   - duration: Seconds of media to send.
    ///   - size: The video size, `WIDTHxHEIGHT`.
    ///   - rate: Video frames per second.
    ///   - keyframeInterval: Seconds between keyframes.
    ///   - audio: Whether to send an audio track.
    ///   - realtime: Whether to send at the media's own pace (`-re`), as a live encoder does. Without it ffmpeg sends
    ///     as fast as it encodes.
    ///   - extraArguments: Output options inserted just before `-f flv URL`, such as protocol options.
    /// - Returns: The running ffmpeg; its standard error (warnings and errors only) is captured.
    public static func publish(
        to url: String,
        duration: Double,
        size: String = "320x240",
        rate: Int = 25,
        keyframeInterval: Double = 2,
        audio: Bool = true,
        realtime: Bool = true,
        extraArguments: [String] = []
    ) throws -> RunningProcess {
        try RunningProcess.launch(
            "ffmpeg",
            arguments: self.publishArguments(
                to: url,
                duration: duration,
                size: size,
                rate: rate,
                keyframeInterval: keyframeInterval,
                audio: audio,
                realtime: realtime,
                extraArguments: extraArguments
            )
        )
    }

    /// Publishes like ``publish(to:duration:size:rate:keyframeInterval:audio:realtime:extraArguments:)``, runs `body`
    /// with the running ffmpeg, and kills ffmpeg if it still runs when `body` returns or throws.
    public static func withPublisher<Result>(
        to url: String,
        duration: Double,
        size: String = "320x240",
        rate: Int = 25,
        keyframeInterval: Double = 2,
        audio: Bool = true,
        realtime: Bool = true,
        extraArguments: [String] = [],
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RunningProcess) async throws -> Result
    ) async throws -> Result {
        let process = try self.publish(
            to: url,
            duration: duration,
            size: size,
            rate: rate,
            keyframeInterval: keyframeInterval,
            audio: audio,
            realtime: realtime,
            extraArguments: extraArguments
        )
        return try await withEndedProcess(process, isolation: isolation, body)
    }

    /// Starts ffmpeg playing `url` and copying what arrives, unchanged, into the FLV file at `path`.
    ///
    /// It stops after `duration` seconds of media when given, else when the server ends the stream. Stop it early
    /// with ``RunningProcess/interrupt()``, which makes ffmpeg finish the file cleanly.
    public static func record(
        from url: String,
        to path: String,
        duration: Double? = nil,
        extraArguments: [String] = []
    ) throws -> RunningProcess {
        var arguments = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning", "-y"]
        arguments += extraArguments
        arguments += ["-i", url]
        if let duration {
            arguments += ["-t", formatSeconds(duration)]
        }
        arguments += ["-map", "0", "-c", "copy", "-f", "flv", path]
        return try RunningProcess.launch("ffmpeg", arguments: arguments)
    }

    /// The command-line arguments of
    /// ``publish(to:duration:size:rate:keyframeInterval:audio:realtime:extraArguments:)``.
    static func publishArguments(
        to url: String,
        duration: Double,
        size: String,
        rate: Int,
        keyframeInterval: Double,
        audio: Bool,
        realtime: Bool,
        extraArguments: [String]
    ) -> [String] {
        let gop = String(max(Int((Double(rate) * keyframeInterval).rounded()), 1))
        var arguments = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning"]
        if realtime { arguments.append("-re") }
        arguments += ["-f", "lavfi", "-i", "testsrc2=size=\(size):rate=\(rate)"]
        if audio {
            if realtime { arguments.append("-re") }
            arguments += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
        }
        arguments += ["-t", formatSeconds(duration), "-map", "0:v"]
        arguments += [
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
        ]
        if audio {
            arguments += ["-map", "1:a", "-c:a", "aac", "-b:a", "96k", "-ar", "44100", "-ac", "2"]
        }
        arguments += extraArguments
        // The FLV muxer cannot seek back over RTMP to write duration and file size; say so instead of warning.
        arguments += ["-flvflags", "no_duration_filesize", "-f", "flv", url]
        return arguments
    }
}

/// Seconds for ffmpeg's `-t`, with a decimal point whatever the locale.
func formatSeconds(_ seconds: Double) -> String {
    String(format: "%.3f", seconds)
}
