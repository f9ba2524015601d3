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

import ArgumentParser
import Gateway
import Logging
import NIOCore
import WebRTC

/// WebRTC ingest (WHIP) on the gateway's HTTP listener, for `liverelay gateway` and `liverelay local`.
struct WHIPOptions: ParsableArguments {
    @Option(
        name: .customLong("webrtc-udp-port"),
        help: "UDP port of WebRTC ingest (WHIP), one for every stream; 0 for an ephemeral one."
    )
    var webrtcUDPPort: Int = 8189

    @Option(
        name: .customLong("webrtc-listen-host"),
        help: "Address WebRTC ingest's ports listen on (default: the address the stream ports listen on)."
    )
    var webrtcListenHost: String?

    @Option(
        name: .customLong("webrtc-tcp-port"),
        help: "TCP port of WebRTC ingest's ICE-TCP fallback; none when not given."
    )
    var webrtcTCPPort: Int?

    @Option(
        name: .customLong("webrtc-announce"),
        help: ArgumentHelp(
            "Host or IP address WebRTC candidates announce (repeatable), for NAT or a load balancer.",
            discussion: "Default: the address the ports listen on (or this host's addresses when that is 0.0.0.0)."
        )
    )
    var webrtcAnnounce: [String] = []

    @Option(
        name: .customLong("whip-allow-origin"),
        help: "Access-Control-Allow-Origin of WHIP answers, so that pages on other origins can publish."
    )
    var whipAllowOrigin: String = "*"

    @Option(
        name: .customLong("whip-ice-server"),
        help: "ICE server URL announced to WHIP publishers as a Link header (stun: or turn:; repeatable)."
    )
    var whipICEServer: [String] = []

    @Option(
        name: .customLong("whip-max-bitrate"),
        help: "Bitrate (bits/s) WHIP publishers are allowed by REMB; the go-live page's choice stays below it."
    )
    var whipMaxBitrate: UInt64 = 8_000_000

    @Option(
        name: .customLong("whip-keyframe-interval"),
        help: ArgumentHelp(
            "Longest keyframe interval (seconds) sent on from a WHIP publisher; 0 for no limit.",
            discussion:
                "A browser makes keyframes only when asked: the gateway asks for one before the last is this old. "
                + "2 s keeps the strictest common ingest rule (AWS IVS)."
        )
    )
    var whipKeyframeInterval: Double = 2

    @Flag(name: .customLong("disable-whip"), help: "Turn WebRTC ingest (WHIP) off.")
    var disableWHIP = false

    func validate() throws {
        for port in [self.webrtcUDPPort] + (self.webrtcTCPPort.map { [$0] } ?? []) where !(0...65535).contains(port) {
            throw ValidationError("WebRTC port \(port) is out of range")
        }
        guard self.whipKeyframeInterval >= 0, self.whipKeyframeInterval <= 60 else {
            throw ValidationError("--whip-keyframe-interval must be between 0 and 60 seconds")
        }
        guard self.whipMaxBitrate >= 100_000 else {
            throw ValidationError("--whip-max-bitrate must be at least 100000 bits/s")
        }
    }

    /// Binds the WebRTC transport and returns the WHIP service, or nil when WHIP is off.
    ///
    /// - Parameters:
    ///   - listenHost: the stream ports' address, the default of `--webrtc-listen-host`.
    ///   - announce: what candidates announce when the transport listens on a wildcard address and
    ///     `--webrtc-announce` is not given.
    func makeService(
        gateway: Gateway,
        listenHost: String,
        announce: @autoclosure () -> [String],
        logger: Logger
    ) async throws -> WHIPService? {
        guard !self.disableWHIP else {
            return nil
        }
        let host = self.webrtcListenHost ?? listenHost
        let wildcard = host.isEmpty || host == "0.0.0.0" || host == "::"
        var configuration = WebRTCTransportConfiguration(
            host: host,
            port: self.webrtcUDPPort,
            announcedAddresses: self.webrtcAnnounce.isEmpty && wildcard ? announce() : self.webrtcAnnounce
        )
        configuration.tcpPort = self.webrtcTCPPort
        let transport: WebRTCTransport
        do {
            transport = try await WebRTCTransport.bind(
                configuration: configuration,
                logger: Logger(label: "liverelay.webrtc")
            )
        } catch {
            throw ValidationError("cannot open WebRTC ingest on \(host) UDP port \(self.webrtcUDPPort): \(error)")
        }
        logger.info(
            "WebRTC ingest (WHIP) listening",
            metadata: [
                "webrtc.udp": "\(transport.localAddress)",
                "webrtc.tcp": "\(transport.tcpLocalAddress.map { "\($0)" } ?? "-")",
                "webrtc.candidates":
                    "\(transport.candidates.map { "\($0.transport.rawValue) \($0.address):\($0.port)" })",
            ]
        )
        return WHIPService(
            gateway: gateway,
            transport: transport,
            configuration: WHIPConfiguration(
                allowOrigin: self.whipAllowOrigin,
                iceServers: self.whipICEServer,
                maximumBitrate: self.whipMaxBitrate,
                maximumKeyframeInterval: self.whipKeyframeInterval > 0
                    ? .milliseconds(Int64(self.whipKeyframeInterval * 1000)) : nil
            ),
            logger: Logger(label: "liverelay.whip")
        )
    }
}

extension WHIPOptions {
    /// This host's IPv4 addresses other than loopback: what a gateway on a wildcard address announces.
    static func hostAddresses() -> [String] {
        let addresses = ((try? System.enumerateDevices()) ?? []).compactMap { device -> String? in
            guard case .v4 = device.address, let ip = device.address?.ipAddress, !ip.hasPrefix("127.") else {
                return nil
            }
            return ip
        }
        return addresses.isEmpty ? ["127.0.0.1"] : Array(Set(addresses)).sorted()
    }
}
