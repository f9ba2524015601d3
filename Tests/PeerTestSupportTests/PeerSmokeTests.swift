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
import Testing

@testable import PeerTestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Proves the harness against the real peers: ffmpeg publishes straight to nginx-rtmp (plain and through the TLS
/// front), the harness sees the publish start and end, and ffprobe finds a complete, clean recording.
///
/// Serialized: each test runs real encoders for seconds, and CI has two cores.
@Suite("Real peers", .serialized, .timeLimit(.minutes(2)))
struct PeerSmokeTests {
    static let seconds = 6.0

    @Test("ffmpeg publishes over RTMP to nginx-rtmp, which records all of it")
    func publishOverRTMP() async throws {
        try await withNginxRTMP(applications: ["live"]) { nginx in
            try await FFmpeg.withPublisher(to: nginx.url(app: "live", stream: "plain"), duration: Self.seconds) {
                ffmpeg in
                try await nginx.waitForPublishStarted(app: "live", stream: "plain", timeout: .seconds(20))
                // On a loaded machine the wait can outlast the 6 s publish (it then counts the ended session): the
                // stream is live unless ffmpeg is done.
                let publishing = try nginx.isPublishing(app: "live", stream: "plain")
                #expect(publishing || ffmpeg.hasExited)
                let exit = await ffmpeg.waitForExit()
                #expect(exit.succeeded, "ffmpeg \(exit): \(exit.standardError)")
            }
            let session = try await nginx.waitForPublishEnded(app: "live", stream: "plain")
            #expect(session.command == "PUBLISH")
            #expect(session.bytesReceived > 50_000)
            try await expectCompleteRecording(at: nginx.recordingPath(app: "live", stream: "plain"))
        }
    }

    @Test("ffmpeg publishes over RTMPS through nginx's TLS front, verifying the harness's certificate")
    func publishOverRTMPS() async throws {
        try await withNginxRTMP(applications: ["live", "other"], tls: true) { nginx in
            let certificate = try #require(nginx.certificatePath)
            let ffmpeg = try FFmpeg.publish(
                to: nginx.rtmpsURL(app: "other", stream: "secure"),
                duration: Self.seconds,
                extraArguments: ["-tls_verify", "1", "-ca_file", certificate]
            )
            let exit = await ffmpeg.waitForExit()
            #expect(exit.succeeded, "ffmpeg \(exit): \(exit.standardError)")
            let session = try await nginx.waitForPublishEnded(app: "other", stream: "secure")
            #expect(session.sessionSeconds >= 5)
            try await expectCompleteRecording(at: nginx.recordingPath(app: "other", stream: "secure"))
        }
    }

    @Test("ffmpeg refuses the TLS front without the CA file, so the certificate is really checked")
    func rtmpsWithoutCAFileFails() async throws {
        try await withNginxRTMP(applications: ["live"], tls: true) { nginx in
            let ffmpeg = try FFmpeg.publish(
                to: nginx.rtmpsURL(app: "live", stream: "untrusted"),
                duration: 1,
                extraArguments: ["-tls_verify", "1"]
            )
            let exit = await ffmpeg.waitForExit()
            #expect(!exit.succeeded)
            #expect(exit.standardError.contains("verification"), "\(exit.standardError)")
            #expect(nginx.finishedSessions().isEmpty)
        }
    }

    @Test("A throwing test body leaves neither ffmpeg nor nginx running, and the publish still ends in the log")
    func failingBodyCleansUp() async throws {
        struct Failure: Error {}
        var ffmpegPID: Int32 = 0
        var nginxPID: Int32 = 0
        var prefix = ""
        await #expect(throws: Failure.self) {
            try await withNginxRTMP(applications: ["live"]) { nginx in
                nginxPID = nginx.processIdentifier
                prefix = nginx.prefix
                do {
                    try await FFmpeg.withPublisher(to: nginx.url(app: "live", stream: "killed"), duration: 60) {
                        ffmpeg in
                        ffmpegPID = ffmpeg.processIdentifier
                        try await nginx.waitForPublishStarted(app: "live", stream: "killed", timeout: .seconds(20))
                        throw Failure()
                    }
                } catch is Failure {
                    // A killed publisher is a disconnect without deleteStream; nginx-rtmp still logs the session.
                    let session = try await nginx.waitForPublishEnded(app: "live", stream: "killed")
                    #expect(session.published)
                    throw Failure()
                }
            }
        }
        #expect(ffmpegPID > 0 && !isAlive(ffmpegPID))
        #expect(nginxPID > 0 && !isAlive(nginxPID))
        #expect(FileManager.default.fileExists(atPath: prefix + "/logs/error.log"), "kept for a post-mortem")
        try? FileManager.default.removeItem(atPath: prefix)
    }

    @Test("stop() ends master and worker; a wait then fails fast with nginx's diagnostics")
    func stopEndsNginx() async throws {
        let nginx = try await NginxRTMP.start(applications: ["live"])
        let master = nginx.processIdentifier
        #expect(isAlive(master))
        await nginx.stop()
        await nginx.stop()
        #expect(!isAlive(master))
        #expect(sendSignal(-master, 0) == false, "no worker left in nginx's process group")
        let error = await #expect(throws: PeerError.self) {
            try await nginx.waitForPublishEnded(app: "live", stream: "never", timeout: .seconds(5))
        }
        #expect(error?.code == .processFailed)
        #expect(error?.message.contains("error log") == true)
        nginx.removeFiles()
        #expect(!FileManager.default.fileExists(atPath: nginx.prefix))
    }

    @Test("kill() ends nginx like a crash; restart() serves the same ports and certificate from a fresh prefix")
    func killAndRestart() async throws {
        try await withNginxRTMP(applications: ["live"], tls: true) { nginx in
            let certificate = try #require(nginx.certificatePath)
            nginx.kill()
            let restarted = try await nginx.restart()
            do {
                #expect(!isAlive(nginx.processIdentifier))
                #expect(restarted.rtmpPort == nginx.rtmpPort && restarted.tlsPort == nginx.tlsPort)
                #expect(restarted.prefix != nginx.prefix)
                let copied = try #require(restarted.certificatePath)
                #expect(FileManager.default.contentsEqual(atPath: certificate, andPath: copied))
                // A client that trusts the first server's certificate reaches the new server at the old URL.
                let ffmpeg = try FFmpeg.publish(
                    to: nginx.rtmpsURL(app: "live", stream: "again"),
                    duration: 2,
                    extraArguments: ["-tls_verify", "1", "-ca_file", certificate]
                )
                let exit = await ffmpeg.waitForExit()
                #expect(exit.succeeded, "ffmpeg \(exit): \(exit.standardError)")
                try await restarted.waitForPublishEnded(app: "live", stream: "again")
                #expect(nginx.finishedSessions().isEmpty)
            } catch {
                await restarted.stop()
                throw error
            }
            await restarted.stop()
            restarted.removeFiles()
        }
    }

    @Test("Waiting for a publish that never comes times out with the logs")
    func waitTimesOut() async throws {
        try await withNginxRTMP(applications: ["live"]) { nginx in
            let error = await #expect(throws: PeerError.self) {
                try await nginx.waitForPublishEnded(app: "live", stream: "absent", timeout: .milliseconds(200))
            }
            #expect(error?.code == .timeout)
            let started = await #expect(throws: PeerError.self) {
                try await nginx.waitForPublishStarted(app: "live", stream: "absent", timeout: .milliseconds(200))
            }
            #expect(started?.code == .timeout)
        }
    }

    @Test("Application names that would break nginx.conf are refused")
    func invalidApplicationName() async throws {
        let error = await #expect(throws: PeerError.self) {
            try await NginxRTMP.start(applications: ["live; }"])
        }
        #expect(error?.code == .invalidArgument)
    }
}

/// Checks what ``PeerSmokeTests`` publish: H.264 320x240 and AAC, at least 5.4 s, decoding without an error.
func expectCompleteRecording(
    at path: String,
    minimumSeconds: Double = 5.4,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let info = try await FFprobe.inspect(path)
    let video = try #require(info.video, "no video in \(path): \(info)", sourceLocation: sourceLocation)
    #expect(video.codecName == "h264", sourceLocation: sourceLocation)
    #expect(video.width == 320 && video.height == 240, sourceLocation: sourceLocation)
    #expect((video.frameCount ?? 0) >= Int(minimumSeconds * 25), "\(video)", sourceLocation: sourceLocation)
    #expect(info.audio?.codecName == "aac", "\(info)", sourceLocation: sourceLocation)
    #expect((info.duration ?? 0) >= minimumSeconds, "\(info)", sourceLocation: sourceLocation)
    let errors = try await FFprobe.decodeErrors(path)
    #expect(errors.isEmpty, "\(errors)", sourceLocation: sourceLocation)
}

/// Whether a process with this ID exists (a zombie counts; ours are reaped by Foundation).
func isAlive(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0
}
