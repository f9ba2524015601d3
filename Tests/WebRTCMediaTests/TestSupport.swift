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
import NIOCore
import NIOPosix
import RTMP
import WebRTCMedia

/// A tiny FLV file writer for tests (FLV 10.1, E.2 and E.3): the project relays RTMP and has tag parsers, but no
/// file writer, and ffprobe reads FLV.
struct FLVFileWriter {
    private(set) var bytes: [UInt8] = []

    init(audio: Bool = true, video: Bool = true) {
        // "FLV", version 1, flags (audio 0x04, video 0x01), header size 9, then PreviousTagSize0.
        self.bytes = [0x46, 0x4C, 0x56, 0x01, (audio ? 0x04 : 0) | (video ? 0x01 : 0), 0, 0, 0, 9, 0, 0, 0, 0]
    }

    mutating func append(_ message: RTMPMessage) {
        var payload = Array(message.payload.readableBytesView)
        // An FLV file's script tags start with onMetaData: drop RTMP's @setDataFrame, as nginx-rtmp's recorder does.
        let setDataFrame: [UInt8] = [0x02, 0x00, 0x0D] + Array("@setDataFrame".utf8)
        if message.type == .dataAMF0 && payload.starts(with: setDataFrame) {
            payload.removeFirst(setDataFrame.count)
        }
        let size = payload.count
        let timestamp = message.timestamp
        self.bytes += [message.type.rawValue, UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF)]
        self.bytes += [
            UInt8(timestamp >> 16 & 0xFF), UInt8(timestamp >> 8 & 0xFF), UInt8(timestamp & 0xFF),
            UInt8(timestamp >> 24 & 0xFF),
        ]
        self.bytes += [0, 0, 0]
        self.bytes += payload
        let tagSize = UInt32(11 + size)
        self.bytes += [
            UInt8(tagSize >> 24), UInt8(tagSize >> 16 & 0xFF), UInt8(tagSize >> 8 & 0xFF), UInt8(tagSize & 0xFF),
        ]
    }

    func write(to path: String) throws {
        try Data(self.bytes).write(to: URL(fileURLWithPath: path))
    }
}

/// One datagram a test socket received, with the time it arrived.
struct ReceivedDatagram: Sendable {
    var socket: Int
    var bytes: ByteBuffer
    var arrival: ContinuousClock.Instant
}

/// UDP sockets on 127.0.0.1 with ephemeral ports, all delivering into one stream, as a WebRTC transport would hand
/// decrypted packets to the media path.
final class UDPSockets: Sendable {
    let channels: [any Channel]
    let datagrams: AsyncStream<ReceivedDatagram>
    private let continuation: AsyncStream<ReceivedDatagram>.Continuation

    private final class Receiver: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let socket: Int
        let continuation: AsyncStream<ReceivedDatagram>.Continuation

        init(socket: Int, continuation: AsyncStream<ReceivedDatagram>.Continuation) {
            self.socket = socket
            self.continuation = continuation
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = Self.unwrapInboundIn(data)
            self.continuation.yield(
                ReceivedDatagram(socket: self.socket, bytes: envelope.data, arrival: ContinuousClock.now)
            )
        }
    }

    init(count: Int) async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: ReceivedDatagram.self)
        self.datagrams = stream
        self.continuation = continuation
        var channels: [any Channel] = []
        for index in 0..<count {
            let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.so_rcvbuf), value: 4 * 1024 * 1024)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            Receiver(socket: index, continuation: continuation)
                        )
                    }
                }
                .bind(host: "127.0.0.1", port: 0)
                .get()
            channels.append(channel)
        }
        self.channels = channels
    }

    func port(_ index: Int) -> Int { self.channels[index].localAddress!.port! }

    /// Closes every socket and ends ``datagrams``.
    func close() async {
        for channel in self.channels {
            try? await channel.close()
        }
        self.continuation.finish()
    }
}

/// RTP packets for unit tests.
func rtp(
    _ sequenceNumber: UInt16,
    timestamp: UInt32 = 0,
    marker: Bool = false,
    payloadType: UInt8 = 102,
    ssrc: UInt32 = 0x1111,
    payload: [UInt8] = [0x41, 0x9A]
) -> RTPPacket {
    RTPPacket(
        payloadType: payloadType,
        marker: marker,
        sequenceNumber: sequenceNumber,
        timestamp: timestamp,
        ssrc: ssrc,
        payload: ByteBuffer(bytes: payload)
    )
}

extension RTPPacket {
    var bytes: ByteBuffer {
        var buffer = ByteBuffer()
        self.write(to: &buffer)
        return buffer
    }
}

func hex(_ string: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var iterator = string.filter { !$0.isWhitespace }.makeIterator()
    while let high = iterator.next(), let low = iterator.next() {
        bytes.append(UInt8(String([high, low]), radix: 16)!)
    }
    return bytes
}

/// A real SPS and PPS, from libx264 (baseline, 64x48).
let testSPS = hex("6742c00ad9047b0110000003001000000303c8f1226480")
let testPPS = hex("68cb83cb20")
