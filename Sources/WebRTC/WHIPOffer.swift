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

/// A codec this transport accepts.
public enum WebRTCCodec: Hashable, Sendable {
    /// H.264 with packetization-mode=1 (RFC 6184), constrained baseline, main or high.
    case h264
    /// Opus (RFC 7587).
    case opus
}

/// One media section of the offer that the answer accepts.
public struct NegotiatedMedia: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case audio
        case video
    }

    public var kind: Kind
    /// The offer's `a=mid`.
    public var mid: String
    public var codec: WebRTCCodec
    /// The payload type RTP packets of this codec carry, as the offer numbered it.
    public var payloadType: UInt8
    /// 90000 for H.264, 48000 for Opus.
    public var clockRate: Int
    /// 2 for Opus (RFC 7587 §7), 1 otherwise.
    public var channels: Int
    /// The offer's `a=fmtp` for the payload type, if any (`profile-level-id=...;packetization-mode=1`,
    /// `minptime=10;useinbandfec=1`).
    public var formatParameters: String?
    /// The RTCP feedback the answer accepts for this payload type: a subset of `nack`, `nack pli`, `ccm fir`.
    public var rtcpFeedback: [String]
    /// The SSRCs the offer announced with `a=ssrc` (may be empty: SSRCs then come with the packets).
    public var ssrcs: [UInt32]
}

/// A candidate the answer announces: one of our host addresses (RFC 8445 §5.1.1.1, RFC 6544 for TCP).
public struct ICECandidate: Hashable, Sendable {
    public enum Transport: String, Hashable, Sendable {
        case udp = "UDP"
        case tcp = "TCP"
    }

    public var address: String
    public var port: Int
    public var transport: Transport

    public init(address: String, port: Int, transport: Transport = .udp) {
        self.address = address
        self.port = port
        self.transport = transport
    }

    /// The `a=candidate` value, with the RFC 8445 §5.1.2.1 recommended host priority (TCP below UDP).
    func attributeValue(foundation: Int) -> String {
        let typePreference = 126
        let localPreference = self.transport == .udp ? 65535 : 32767
        let priority = (typePreference << 24) + (localPreference << 8) + 255
        var value = "\(foundation) 1 \(self.transport.rawValue) \(priority) \(self.address) \(self.port) typ host"
        if self.transport == .tcp { value += " tcptype passive" }
        return value
    }
}

/// A WHIP offer (RFC 9725 §4.2) read for what this transport needs: the peer's ICE credentials and DTLS fingerprint,
/// and the media it accepts.
public struct WHIPOffer: Hashable, Sendable {
    /// The peer's `a=ice-ufrag`.
    public var remoteUsernameFragment: String
    /// The peer's `a=ice-pwd`. Not written to logs.
    public var remotePassword: String
    /// The SHA-256 of the peer's DTLS certificate, from `a=fingerprint:sha-256`.
    public var remoteFingerprint: [UInt8]
    /// The accepted media, in the offer's order.
    public var media: [NegotiatedMedia]
    /// The parsed document, for the answer.
    public var description: SessionDescription

    /// Reads `text`. Throws ``WebRTCError/Code-swift.struct/noH264`` when no section offers H.264 as we take it.
    public init(parsing text: String, limits: SessionDescription.Limits = .init()) throws(WebRTCError) {
        let description = try SessionDescription(parsing: text, limits: limits)
        try self.init(description)
    }

    public init(_ description: SessionDescription) throws(WebRTCError) {
        self.description = description
        let bundle = description.sessionValue("group").flatMap { value -> [String]? in
            let fields = value.split(separator: " ").map(String.init)
            return fields.first == "BUNDLE" ? Array(fields.dropFirst()) : nil
        }
        var accepted: [NegotiatedMedia] = []
        var sawVideo = false
        for media in description.media {
            // Port 0 refuses a section, unless it is bundle-only (RFC 8843 §6): GStreamer's webrtcbin offers every
            // section but the first that way.
            guard media.port != 0 || media.has("bundle-only"),
                media.transportProtocol.uppercased().hasSuffix("RTP/SAVPF"),
                let kind = NegotiatedMedia.Kind(rawValue: media.kind),
                !accepted.contains(where: { $0.kind == kind })
            else { continue }
            if kind == .video { sawVideo = true }
            guard let mid = media.value("mid"), !mid.isEmpty else { continue }
            // One transport for everything: what is not in the bundle, or cannot share a port with RTCP, is refused.
            if let bundle, !bundle.contains(mid) { continue }
            if bundle == nil, !accepted.isEmpty { continue }
            guard media.has("rtcp-mux") else { continue }
            let direction = ["sendonly", "sendrecv", "recvonly", "inactive"].first { media.has($0) } ?? "sendrecv"
            guard direction == "sendonly" || direction == "sendrecv" else { continue }
            if let chosen = Self.choose(kind: kind, in: media, mid: mid) { accepted.append(chosen) }
        }
        guard accepted.contains(where: { $0.kind == .video }) else {
            throw .noH264(
                sawVideo
                    ? "the offer's video has no H.264 with packetization-mode=1 in constrained baseline, main or high"
                    : "the offer has no video"
            )
        }
        self.media = accepted

        // Credentials and fingerprint: the first accepted section's, or the session's.
        let first = description.media.first { $0.value("mid") == accepted[0].mid }
        func lookup(_ name: String) -> String? { first?.value(name) ?? description.sessionValue(name) }
        guard let ufrag = lookup("ice-ufrag"), ICECredentials.isICEString(ufrag, lengths: 4...256) else {
            throw .unsupportedOffer("no valid a=ice-ufrag")
        }
        guard let password = lookup("ice-pwd"), ICECredentials.isICEString(password, lengths: 22...256) else {
            throw .unsupportedOffer("no valid a=ice-pwd")
        }
        let fingerprints =
            (first?.values("fingerprint") ?? [])
            + description.sessionAttributes.compactMap {
                $0.name == "fingerprint" ? $0.value : nil
            }
        guard let sha256 = fingerprints.lazy.compactMap({ Self.parseFingerprint($0) }).first else {
            throw .unsupportedOffer("no a=fingerprint:sha-256")
        }
        let setup = lookup("setup") ?? "actpass"
        guard setup == "actpass" || setup == "active" else {
            throw .unsupportedOffer("a=setup:\(setup): we are the DTLS server, the offerer must be the client")
        }
        self.remoteUsernameFragment = ufrag
        self.remotePassword = password
        self.remoteFingerprint = sha256
    }

    // MARK: - The answer

    /// The SDP answer: ICE-lite, `a=setup:passive`, our fingerprint, our candidates, and only the accepted codecs;
    /// every other section refused with port 0 (RFC 8829 §5.3.1).
    public func answer(
        localUsernameFragment: String,
        localPassword: String,
        fingerprint: [UInt8],
        candidates: [ICECandidate],
        sessionID: UInt64
    ) -> String {
        var lines: [String] = [
            "v=0",
            "o=liverelay \(sessionID) 2 IN IP4 0.0.0.0",
            "s=-",
            "t=0 0",
        ]
        if !self.media.isEmpty {
            lines.append("a=group:BUNDLE " + self.media.map(\.mid).joined(separator: " "))
        }
        lines.append("a=ice-lite")
        lines.append("a=msid-semantic: WMS")
        let fingerprintText = fingerprint.map { hex2($0) }.joined(separator: ":")
        let connectionAddress = candidates.first?.address ?? "0.0.0.0"
        let addressType = connectionAddress.contains(":") ? "IP6" : "IP4"
        for section in self.description.media {
            let mid = section.value("mid")
            guard let accepted = self.media.first(where: { $0.mid == mid }),
                section.kind == accepted.kind.rawValue
            else {
                lines.append(
                    "m=\(section.kind) 0 \(section.transportProtocol) \(section.formats.joined(separator: " "))"
                )
                lines.append("c=IN IP4 0.0.0.0")
                if let mid { lines.append("a=mid:\(mid)") }
                lines.append("a=inactive")
                continue
            }
            let port = candidates.first?.port ?? 9
            lines.append("m=\(section.kind) \(port) \(section.transportProtocol) \(accepted.payloadType)")
            lines.append("c=IN \(addressType) \(connectionAddress)")
            lines.append("a=rtcp:\(port) IN \(addressType) \(connectionAddress)")
            lines.append("a=mid:\(accepted.mid)")
            lines.append("a=recvonly")
            lines.append("a=rtcp-mux")
            lines.append("a=ice-ufrag:\(localUsernameFragment)")
            lines.append("a=ice-pwd:\(localPassword)")
            lines.append("a=fingerprint:sha-256 \(fingerprintText)")
            lines.append("a=setup:passive")
            let name = accepted.codec == .h264 ? "H264" : "opus"
            let channels = accepted.channels > 1 ? "/\(accepted.channels)" : ""
            lines.append("a=rtpmap:\(accepted.payloadType) \(name)/\(accepted.clockRate)\(channels)")
            if let parameters = accepted.formatParameters {
                lines.append("a=fmtp:\(accepted.payloadType) \(parameters)")
            }
            for feedback in accepted.rtcpFeedback {
                lines.append("a=rtcp-fb:\(accepted.payloadType) \(feedback)")
            }
            for (index, candidate) in candidates.enumerated() {
                lines.append("a=candidate:\(candidate.attributeValue(foundation: index + 1))")
            }
            lines.append("a=end-of-candidates")
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    // MARK: - Codec choice

    /// The profile_idc values of RFC 6184's profile-level-id we take: baseline (constrained only), main, high.
    private static let h264Profiles: Set<UInt8> = [0x42, 0x4D, 0x64]

    private static func choose(
        kind: NegotiatedMedia.Kind,
        in media: SessionDescription.Media,
        mid: String
    )
        -> NegotiatedMedia?
    {
        var rtpmaps: [UInt8: (name: String, clockRate: Int, channels: Int)] = [:]
        for value in media.values("rtpmap") {
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let payloadType = UInt8(parts[0]), payloadType < 128 else { continue }
            let encoding = parts[1].split(separator: "/")
            guard encoding.count >= 2, let clockRate = Int(encoding[1]) else { continue }
            let channels = encoding.count >= 3 ? Int(encoding[2]) ?? 1 : 1
            rtpmaps[payloadType] = (encoding[0].lowercased(), clockRate, channels)
        }
        var fmtps: [UInt8: String] = [:]
        for value in media.values("fmtp") {
            let parts = value.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let payloadType = UInt8(parts[0]) else { continue }
            fmtps[payloadType] = String(parts[1])
        }
        // The offerer's preference is the m= line's order.
        for format in media.formats {
            guard let payloadType = UInt8(format), let map = rtpmaps[payloadType] else { continue }
            let fmtp = fmtps[payloadType]
            let codec: WebRTCCodec
            switch (kind, map.name, map.clockRate) {
            case (.video, "h264", 90000):
                guard Self.isAcceptableH264(fmtp) else { continue }
                codec = .h264
            case (.audio, "opus", 48000):
                codec = .opus
            default:
                continue
            }
            let offered = Set(
                media.values("rtcp-fb").compactMap { value -> String? in
                    let parts = value.split(separator: " ", maxSplits: 1)
                    guard parts.count == 2, parts[0] == format || parts[0] == "*" else { return nil }
                    return String(parts[1])
                }
            )
            // goog-remb (draft-alvestrand-rmcat-remb): the ingest sends REMB with its bitrate cap, and a browser
            // takes it only where this was negotiated. Not transport-cc: the ingest sends no transport-wide feedback.
            let supported = codec == .h264 ? ["goog-remb", "nack", "nack pli", "ccm fir"] : ["goog-remb", "nack"]
            let ssrcs = media.values("ssrc").compactMap { value -> UInt32? in
                value.split(separator: " ", maxSplits: 1).first.flatMap { UInt32($0) }
            }
            var unique: [UInt32] = []
            for ssrc in ssrcs where !unique.contains(ssrc) && unique.count < 16 { unique.append(ssrc) }
            return NegotiatedMedia(
                kind: kind,
                mid: mid,
                codec: codec,
                payloadType: payloadType,
                clockRate: map.clockRate,
                channels: codec == .opus ? 2 : 1,
                formatParameters: fmtp,
                rtcpFeedback: supported.filter { offered.contains($0) },
                ssrcs: unique
            )
        }
        return nil
    }

    /// packetization-mode=1 and a profile-level-id (RFC 6184 §8.1) of constrained baseline, main or high.
    static func isAcceptableH264(_ fmtp: String?) -> Bool {
        var parameters: [String: String] = [:]
        for pair in (fmtp ?? "").split(separator: ";") {
            let keyValue = pair.split(separator: "=", maxSplits: 1)
            guard keyValue.count == 2 else { continue }
            parameters[keyValue[0].trimmingSpaces.lowercased()] = String(keyValue[1].trimmingSpaces)
        }
        guard parameters["packetization-mode"] == "1" else { return false }
        guard let profile = parameters["profile-level-id"], profile.utf8.count == 6,
            let value = UInt32(profile, radix: 16)
        else { return false }
        let profileIDC = UInt8(value >> 16)
        let constraints = UInt8((value >> 8) & 0xFF)
        guard Self.h264Profiles.contains(profileIDC) else { return false }
        // Baseline only when constrained (constraint_set1_flag): no FMO, ASO or redundant slices.
        if profileIDC == 0x42 { return constraints & 0x40 != 0 }
        return true
    }

    /// `sha-256 AB:CD:...` into 32 bytes.
    static func parseFingerprint(_ value: String) -> [UInt8]? {
        let parts = value.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "sha-256" else { return nil }
        let octets = parts[1].split(separator: ":")
        guard octets.count == 32 else { return nil }
        var bytes: [UInt8] = []
        for octet in octets {
            guard octet.utf8.count == 2, let byte = UInt8(octet, radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}

private func hex2(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var result = self
        while result.first == " " { result = result.dropFirst() }
        while result.last == " " { result = result.dropLast() }
        return result
    }
}
