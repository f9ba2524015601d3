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
import Logging
import NIOCore
import NIOPosix
import PeerTestSupport
import Testing

@testable import WebRTC

/// Debian 12's whip-client links libsoup 2, and GStreamer's webrtcbin pulls in libsoup 3 through libnice and
/// gupnp-igd; libsoup 3 aborts at load when it finds libsoup 2's `soup_uri_new` in the process ("libsoup2 symbols
/// detected"). This preload hides that one probe, so the packaged client runs; UPnP (the only libsoup 3 user) finds
/// nothing on 127.0.0.1 either way.
private let soupProbeShim = """
    #define _GNU_SOURCE
    #include <dlfcn.h>
    #include <string.h>
    typedef int gboolean;
    typedef void *gpointer;
    gboolean g_module_symbol(void *module, const char *name, gpointer *symbol) {
        static gboolean (*real)(void *, const char *, gpointer *);
        if (!real) real = (gboolean (*)(void *, const char *, gpointer *))dlsym(RTLD_NEXT, "g_module_symbol");
        if (strcmp(name, "soup_uri_new") == 0) { *symbol = 0; return 0; }
        return real(module, name, symbol);
    }
    """

private let whipClient = "/usr/bin/whip-client"

@Suite(.serialized) struct WHIPClientTests {
    /// Debian's whip-client (GStreamer webrtcbin, libnice) publishes x264 and Opus over WHIP: ICE, DTLS, and
    /// decrypted RTP of both payload types in sequence for seconds; on SIGINT it sends DELETE and the session ends.
    @Test(.timeLimit(.minutes(2)))
    func whipClientPublishes() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: whipClient), "whip-client (simple-whip-client)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "liverelay-whip-\(UInt64.random(in: 0...UInt64.max))"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try soupProbeShim.write(toFile: "\(directory)/shim.c", atomically: true, encoding: .utf8)
        try await withRunningProcess(
            "cc",
            arguments: ["-shared", "-fPIC", "-o", "\(directory)/shim.so", "\(directory)/shim.c", "-ldl"]
        ) { process in
            let exit = await process.waitForExit()
            try #require(exit.succeeded, "cc: \(exit)")
        }

        let transport = try await WebRTCTransport.bind(
            configuration: WebRTCTransportConfiguration(
                host: try Self.hostAddress(),
                port: 0
            ),
            logger: {
                var logger = Logger(label: "whip-client-test.transport")
                logger.logLevel = ProcessInfo.processInfo.environment["WEBRTC_TEST_DEBUG"] == nil ? .info : .trace
                return logger
            }()
        )
        let token = "test-\(UInt64.random(in: 0...UInt64.max))"
        let server = WHIPTestServer(transport: transport, token: token, page: "")
        do {
            try await server.run { port in
                try await withRunningProcess(
                    "env",
                    arguments: [
                        "LD_PRELOAD=\(directory)/shim.so", "HOME=\(directory)", whipClient,
                        "-u", "http://127.0.0.1:\(port)/whip/live/show", "-t", token, "-n", "-o", "-l", "4",
                        "-V",
                        "videotestsrc is-live=true ! video/x-raw,width=320,height=240 ! x264enc tune=zerolatency "
                            + "key-int-max=30 ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! "
                            + "application/x-rtp,media=video,encoding-name=H264,payload=96",
                        "-A",
                        "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! queue ! opusenc ! "
                            + "rtpopuspay ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111",
                    ],
                    standardOutput: .capture(limit: 64 * 1024)
                ) { client in
                    try await self.check(server: server, client: client)
                }
            }
        } catch {
            await transport.close()
            throw error
        }
        #expect(await transport.sessionCount() == 0)
        await transport.close()
    }

    /// The address to bind: libnice (webrtcbin's ICE agent) gathers loopback only on a host with no other interface,
    /// and pairs no loopback candidate of ours with its non-loopback ones, so a 127.0.0.1 candidate never gets a
    /// check. The first non-loopback IPv4 address of this host, then, still on an ephemeral port and only for the
    /// seconds of the test; 127.0.0.1 when there is none. (The Chromium test covers 127.0.0.1.)
    private static func hostAddress() throws -> String {
        let devices = try System.enumerateDevices()
        for device in devices {
            guard case .v4 = device.address, let ip = device.address?.ipAddress, !ip.hasPrefix("127.") else { continue }
            return ip
        }
        return "127.0.0.1"
    }

    /// whip-client's output without the line that shows the Bearer token.
    private static func output(of client: RunningProcess) -> String {
        (client.standardOutputSoFar + client.standardErrorSoFar).split(separator: "\n")
            .filter { !$0.contains("Bearer") && !$0.contains("GLib") && !$0.isEmpty }
            .suffix(40)
            .joined(separator: "\n")
    }

    private func check(server: WHIPTestServer, client: RunningProcess) async throws {
        let registered = await withTaskGroup(of: WebRTCSession?.self) { group in
            group.addTask {
                var iterator = server.sessions.makeAsyncIterator()
                return await iterator.next()?.session
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(30))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        let session = try #require(registered, "whip-client did not post an offer: \(Self.output(of: client))")
        let video = try #require(session.media.first { $0.codec == .h264 })
        let audio = try #require(session.media.first { $0.codec == .opus })

        var packets: [UInt8: Int] = [:]
        var lastSequence: [UInt32: UInt16] = [:]
        var backward = 0
        var start: ContinuousClock.Instant?
        var connected = false
        for try await event in session.events {
            switch event {
            case .iceConnected:
                break
            case .dtlsConnected:
                connected = true
            case .rtcp:
                break
            case .rtp(let packet):
                start = start ?? .now
                let bytes = Array(packet.readableBytesView.prefix(12))
                guard bytes.count == 12 else { continue }
                packets[bytes[1] & 0x7F, default: 0] += 1
                let sequence = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
                let ssrc = UInt32(bytes[8]) << 24 | UInt32(bytes[9]) << 16 | UInt32(bytes[10]) << 8 | UInt32(bytes[11])
                if let last = lastSequence[ssrc] {
                    let delta = sequence &- last
                    if delta == 0 || delta >= 0x8000 { backward += 1 }
                }
                lastSequence[ssrc] = sequence
            }
            if let start, ContinuousClock.now - start > .seconds(3) { break }
        }
        #expect(
            connected,
            "whip-client said: \(Self.output(of: client))"
        )
        #expect((packets[video.payloadType] ?? 0) > 30, "\(packets)")
        #expect((packets[audio.payloadType] ?? 0) > 100, "\(packets)")
        #expect(backward == 0)

        // Ctrl-C: whip-client sends DELETE to the Location, and the session's events end without an error.
        client.interrupt()
        for try await _ in session.events {}
        let exit = await client.waitForExit(timeout: .seconds(20))
        #expect(exit != nil, "whip-client did not exit after SIGINT")
    }
}
