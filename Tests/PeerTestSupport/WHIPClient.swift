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

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Debian's whip-client (simple-whip-client: GStreamer's webrtcbin over libnice) as a WHIP publisher of x264 video
/// and Opus audio, for every test that runs it.
public enum WHIPClient {
    /// Where Debian installs it; `WHIP_CLIENT` in the environment overrides it.
    public static var executable: String {
        ProcessInfo.processInfo.environment["WHIP_CLIENT"] ?? "/usr/bin/whip-client"
    }

    /// Whether the client is installed.
    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: self.executable)
    }

    /// The address a WebRTC transport under test binds for whip-client: libnice gathers loopback only on a host with
    /// no other interface, and pairs no loopback candidate of ours with its non-loopback ones, so a 127.0.0.1
    /// candidate never gets a check. The first non-loopback IPv4 address of an interface that is up, then, still on
    /// an ephemeral port and only for the seconds of a test; 127.0.0.1 when there is none.
    public static func hostAddress() -> String {
        var first: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&first) == 0 else { return "127.0.0.1" }
        defer { freeifaddrs(first) }
        var next = first
        while let entry = next {
            next = entry.pointee.ifa_next
            let flags = Int32(bitPattern: UInt32(entry.pointee.ifa_flags))
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0
            else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            let found = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { ipv4 in
                var bytes = ipv4.pointee.sin_addr
                return inet_ntop(AF_INET, &bytes, &text, socklen_t(text.count)) != nil
            }
            if found {
                return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        return "127.0.0.1"
    }

    /// A live 320x240 test pattern, x264 with a keyframe a second, H.264 payload type 96.
    public static let videoPipeline =
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240 ! x264enc tune=zerolatency key-int-max=30 ! "
        + "rtph264pay config-interval=-1 aggregate-mode=zero-latency ! "
        + "application/x-rtp,media=video,encoding-name=H264,payload=96"

    /// A live sine, Opus payload type 111.
    public static let audioPipeline =
        "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay ! "
        + "application/x-rtp,media=audio,encoding-name=OPUS,payload=111"

    /// The preload that lets Debian 12's whip-client start (libsoup 2 and 3 in one process): its source, shared with
    /// tools/bench-whip.sh, says why.
    static let soupProbeShim = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/whip-client-soup-shim.c").path

    /// Runs whip-client publishing to `url` with `token` as Bearer token while `body` runs, then stops it (its
    /// process group) and removes its directory, whether `body` returns or throws.
    ///
    /// With `trickle`, the offer goes without candidates and whip-client PATCHes them to the session's Location
    /// (RFC 9725 §4.3.2) every 100 ms; without, it waits for gathering and puts them in the offer. Its HOME is a
    /// directory of its own, with the preload that lets Debian 12's build start.
    public static func withPublisher<Result>(
        url: String,
        token: String,
        trickle: Bool = false,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RunningProcess) async throws -> Result
    ) async throws -> Result {
        // It encodes video like a browser: it takes its turn with them (see BrowserSlots).
        try await BrowserSlots.acquire()
        defer { BrowserSlots.release() }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("liverelay-whip-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let compiled = try await withRunningProcess(
            "cc",
            arguments: ["-shared", "-fPIC", "-o", "\(directory)/shim.so", self.soupProbeShim, "-ldl"],
            isolation: isolation
        ) { process in
            await process.waitForExit()
        }
        guard compiled.succeeded else {
            throw PeerError.startFailed("cc could not build whip-client's preload: \(compiled)")
        }
        var arguments = [
            "LD_PRELOAD=\(directory)/shim.so", "HOME=\(directory)", self.executable,
            "-u", url, "-t", token, "-o", "-l", "4", "-V", self.videoPipeline, "-A", self.audioPipeline,
        ]
        if !trickle { arguments.append("-n") }
        return try await withRunningProcess(
            "env",
            arguments: arguments,
            standardOutput: .capture(limit: 64 * 1024),
            isolation: isolation
        ) { client in
            do {
                return try await body(client)
            } catch {
                // What the client saw is half of every failure's story: on the test's output, the token hidden.
                let said = self.output(of: client, hiding: [token])
                FileHandle.standardError.write(Data("whip-client (\(url)) said:\n\(said)\n".utf8))
                throw error
            }
        }
    }

    /// whip-client's last 40 lines of output, without the ones that show the Bearer token or any of `secrets`.
    public static func output(of client: RunningProcess, hiding secrets: [String] = []) -> String {
        (client.standardOutputSoFar + client.standardErrorSoFar).split(separator: "\n")
            .filter { line in
                !line.contains("Bearer") && !line.contains("GLib") && !line.isEmpty
                    && !secrets.contains { !$0.isEmpty && line.contains($0) }
            }
            .suffix(40)
            .joined(separator: "\n")
    }
}
