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

/// What a datagram on the shared WebRTC port is, by its first byte (RFC 7983 §7) and, for RTP and RTCP on one
/// port, by its second (RFC 5761 §4).
public enum PacketKind: Hashable, Sendable {
    /// 0–3: STUN (ICE checks).
    case stun
    /// 20–63: DTLS.
    case dtls
    /// 128–191 with a packet type of 192–223 (payload types 64–95 with the marker bit): SRTCP.
    case rtcp
    /// 128–191 otherwise: SRTP.
    case rtp
    /// ZRTP (16–19), TURN channels (64–79) and everything no range claims: dropped.
    case unknown

    /// The smallest RTP header (RFC 3550 §5.1) and the smallest SRTCP packet both have at least this many bytes.
    static let minimumRTPLength = 12

    /// Classifies one datagram.
    public init(classifying bytes: some Collection<UInt8>) {
        guard let first = bytes.first else {
            self = .unknown
            return
        }
        switch first {
        case 0...3:
            self = .stun
        case 20...63:
            self = .dtls
        case 128...191:
            guard bytes.count >= Self.minimumRTPLength else {
                self = .unknown
                return
            }
            let second = bytes[bytes.index(after: bytes.startIndex)]
            self = (192...223).contains(second) ? .rtcp : .rtp
        default:
            self = .unknown
        }
    }
}
