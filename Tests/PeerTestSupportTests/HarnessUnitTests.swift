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

import Testing

@testable import PeerTestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The harness's pure parts: the access-log and statistics parsers, the configuration, ports and processes.
@Suite("Peer harness units")
struct HarnessUnitTests {
    @Test("Access-log lines parse; a partly written last line is skipped")
    func accessLog() {
        let log = "PUBLISH|live|smoke|176671|409|4\nPLAY|live|smoke|12|99000|3\nNONE|||0|0|0\nPUBLISH|live|par"
        let entries = RTMPSessionLogEntry.parse(log: log)
        #expect(entries.count == 3)
        #expect(
            entries.first
                == RTMPSessionLogEntry(
                    command: "PUBLISH",
                    app: "live",
                    stream: "smoke",
                    bytesReceived: 176_671,
                    bytesSent: 409,
                    sessionSeconds: 4
                )
        )
        #expect(entries[1].played && !entries[1].published)
        #expect(!entries[2].played && !entries[2].published)
    }

    @Test("The statistics page shows a stream as publishing only inside its own application")
    func statistics() {
        let xml = """
            <rtmp><server><application><name>live</name><live><stream><name>a</name><client><id>1</id>\
            <publishing/><active/></client><nclients>1</nclients><publishing/><active/></stream>\
            <stream><name>idle</name><nclients>1</nclients></stream></live></application>\
            <application><name>other</name><live></live></application></server></rtmp>
            """
        #expect(NginxRTMP.isPublishing(statistics: xml, app: "live", stream: "a"))
        #expect(!NginxRTMP.isPublishing(statistics: xml, app: "live", stream: "idle"))
        #expect(!NginxRTMP.isPublishing(statistics: xml, app: "other", stream: "a"))
        #expect(!NginxRTMP.isPublishing(statistics: xml, app: "live", stream: "b"))
    }

    @Test("The configuration loads the stream module and adds the TLS front only when asked")
    func configuration() throws {
        let modules = NginxRTMP.Modules(rtmp: "/m/rtmp.so", stream: "/m/stream.so")
        var ports = try NginxRTMP.Ports(tls: false)
        let plain = NginxRTMP.configuration(
            prefix: "/p",
            applications: ["live", "b"],
            ports: ports,
            modules: modules,
            tls: nil
        )
        #expect(plain.contains("load_module /m/rtmp.so;"))
        #expect(!plain.contains("stream.so"))
        #expect(!plain.contains("stream {"))
        #expect(plain.contains("record_path /p/records/b;"))
        #expect(plain.contains("listen 127.0.0.1:\(ports.rtmp);"))
        ports = try NginxRTMP.Ports(tls: true)
        let secure = NginxRTMP.configuration(
            prefix: "/p",
            applications: ["live"],
            ports: ports,
            modules: modules,
            tls: NginxRTMP.TLSFiles(certificate: "/p/tls/cert.pem", key: "/p/tls/key.pem")
        )
        #expect(secure.contains("load_module /m/stream.so;"))
        #expect(secure.contains("listen 127.0.0.1:\(ports.tls!) ssl;"))
        #expect(secure.contains("proxy_pass 127.0.0.1:\(ports.rtmp);"))
    }

    @Test("Free ports are distinct and bindable")
    func ports() throws {
        let ports = try freeTCPPorts(count: 3)
        #expect(Set(ports).count == 3)
        #expect(ports.allSatisfy { (1...65_535).contains($0) })
        #expect(try (1...65_535).contains(freeTCPPort()))
    }

    @Test("A free port stays reserved: a plain bind is refused, a server with SO_REUSEADDR listens and is reached")
    func reservedPort() throws {
        let port = try freeTCPPort()
        #expect(try bindAndListen(port, reuseAddress: false) == EADDRINUSE)
        #expect(!acceptsTCPConnection(port: port))
        let server = socket(AF_INET, streamSocketType, 0)
        defer { close(server) }
        #expect(try bindAndListen(port, reuseAddress: true, socket: server) == 0)
        #expect(acceptsTCPConnection(port: port))
    }

    /// Binds `socket` (a new one unless given) to 127.0.0.1:`port` and listens; returns 0 or the `errno` of the
    /// step that failed. A socket made here is closed before returning.
    private func bindAndListen(_ port: Int, reuseAddress: Bool, socket given: Int32? = nil) throws -> Int32 {
        let fd = given ?? socket(AF_INET, streamSocketType, 0)
        defer { if given == nil { close(fd) } }
        try #require(fd >= 0)
        var reuse: Int32 = reuseAddress ? 1 : 0
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 8) == 0 else { return errno }
        return 0
    }

    @Test("ffmpeg's publish arguments follow the requested GOP and pace")
    func publishArguments() throws {
        let arguments = FFmpeg.publishArguments(
            to: "rtmp://h/a/s",
            duration: 6,
            size: "320x240",
            rate: 30,
            keyframeInterval: 2,
            audio: false,
            realtime: false,
            extraArguments: ["-x", "y"]
        )
        #expect(!arguments.contains("-re"))
        #expect(!arguments.contains("aac"))
        let gop = try #require(arguments.firstIndex(of: "-g"))
        #expect(arguments[gop + 1] == "60")
        #expect(arguments[try #require(arguments.firstIndex(of: "-keyint_min")) + 1] == "60")
        #expect(arguments.contains("-x"))
        #expect(Array(arguments.suffix(3)) == ["-f", "flv", "rtmp://h/a/s"])
        #expect(arguments.contains("6.000"))
    }

    @Test("A process's output is captured, bounded, and its exit reported")
    func runningProcess() async throws {
        let process = try RunningProcess.launch(
            "sh",
            arguments: ["-c", "printf out; printf '%04000d' 0 >&2; exit 3"],
            standardOutput: .capture(limit: 1024),
            standardError: .capture(limit: 100)
        )
        let exit = await process.waitForExit()
        #expect(exit.reason == .exited && exit.status == 3)
        #expect(exit.standardOutput == "out")
        #expect(exit.standardError.hasSuffix(String(repeating: "0", count: 100)))
        #expect(exit.standardError.contains("3900 earlier bytes dropped"))
        #expect(process.exit == exit)
    }

    @Test("Cancelling a wait kills the process; a timed wait leaves it running")
    func cancellation() async throws {
        let process = try RunningProcess.launch("sleep", arguments: ["60"])
        #expect(await process.waitForExit(timeout: .milliseconds(50)) == nil)
        #expect(!process.hasExited)
        let waiter = Task { await process.waitForExit() }
        waiter.cancel()
        let exit = await waiter.value
        #expect(exit.reason == .signalled && exit.status == 9)
    }

    @Test("withRunningProcess kills what is still running when its body ends")
    func scopedProcess() async throws {
        let process = try await withRunningProcess("sleep", arguments: ["60"]) { $0 }
        #expect(process.hasExited)
        #expect(process.exit?.reason == .signalled)
    }
}
