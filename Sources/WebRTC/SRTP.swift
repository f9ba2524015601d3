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

import CSRTP
public import NIOCore

/// One direction of SRTP and SRTCP (RFC 3711) with libsrtp2: inbound unprotects what the peer sends, outbound
/// protects what we send.
///
/// Owned by one event loop; not Sendable.
public final class SRTPContext {
    public enum Direction: Hashable, Sendable {
        case inbound
        case outbound
    }

    /// The replay window: packets this far behind the newest are still taken (NACK retransmissions and reordering).
    public static let replayWindow: UInt32 = 1024

    private let pointer: OpaquePointer
    public let direction: Direction

    /// `keyAndSalt` is the master key followed by the master salt, as ``SRTPKeyingMaterial`` holds them.
    public init(profile: SRTPProfile, keyAndSalt: [UInt8], direction: Direction) throws(WebRTCError) {
        guard keyAndSalt.count == profile.keyLength + profile.saltLength else {
            throw .srtpFailed("a key and salt of \(keyAndSalt.count) bytes for \(profile)")
        }
        let pointer = keyAndSalt.withUnsafeBufferPointer {
            lr_srtp_new(profile.rawValue, direction == .inbound ? 1 : 0, $0.baseAddress, $0.count, Self.replayWindow)
        }
        guard let pointer else { throw .srtpFailed("libsrtp2 refused the session") }
        self.pointer = pointer
        self.direction = direction
    }

    deinit { lr_srtp_free(self.pointer) }

    /// Decrypts and authenticates an SRTP packet.
    public func unprotectRTP(_ packet: ByteBuffer) throws(WebRTCError) -> ByteBuffer {
        try self.run(packet, room: 0, what: "SRTP") { lr_srtp_unprotect_rtp(self.pointer, $0, $1) }
    }

    /// Decrypts and authenticates an SRTCP packet.
    public func unprotectRTCP(_ packet: ByteBuffer) throws(WebRTCError) -> ByteBuffer {
        try self.run(packet, room: 0, what: "SRTCP") { lr_srtp_unprotect_rtcp(self.pointer, $0, $1) }
    }

    /// Protects an RTCP packet (compound or not) for sending.
    public func protectRTCP(_ packet: ByteBuffer) throws(WebRTCError) -> ByteBuffer {
        try self.run(packet, room: lr_srtp_max_trailer(), what: "RTCP") { lr_srtp_protect_rtcp(self.pointer, $0, $1) }
    }

    /// Protects an RTP packet for sending (for tests that play the publisher).
    public func protectRTP(_ packet: ByteBuffer) throws(WebRTCError) -> ByteBuffer {
        try self.run(packet, room: lr_srtp_max_trailer(), what: "RTP") { lr_srtp_protect_rtp(self.pointer, $0, $1) }
    }

    private func run(
        _ packet: ByteBuffer,
        room: Int,
        what: String,
        _ body: (UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<Int32>) -> Int32
    ) throws(WebRTCError) -> ByteBuffer {
        guard packet.readableBytes >= 8, packet.readableBytes <= 65536 else {
            throw .srtpFailed("\(what) packet of \(packet.readableBytes) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: packet.readableBytes + room)
        bytes.withUnsafeMutableBytes { packet.withUnsafeReadableBytes($0.copyMemory(from:)) }
        var length = Int32(packet.readableBytes)
        let status = bytes.withUnsafeMutableBufferPointer { body($0.baseAddress!, &length) }
        guard status == 0 else { throw .srtpFailed("libsrtp2 refused the \(what) packet (status \(status))") }
        return ByteBuffer(bytes: bytes[0..<Int(length)])
    }
}

@available(*, unavailable)
extension SRTPContext: Sendable {}
