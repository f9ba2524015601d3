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

import NIOCore
import NIOEmbedded
import Testing

@testable import RTMP

/// The connection handler on an `EmbeddedChannel`, fed the bytes a real ffmpeg sends.
@Suite("RTMP connection handler")
struct ConnectionHandlerTests {
    /// ffmpeg's `connect` as it arrives on the wire: chunk stream 3, a format 0 header, chunk size 128, so the
    /// 140-byte payload is split by one 0xC3 byte.
    static var ffmpegConnectChunks: ByteBuffer {
        let payload = ByteBuffer(hex: FFmpegCapture.connect)
        var wire = ByteBuffer(hex: "03 000000 00008C 14 00000000")
        wire.writeImmutableBuffer(payload.getSlice(at: 0, length: 128)!)
        wire.writeInteger(UInt8(0xC3))
        wire.writeImmutableBuffer(payload.getSlice(at: 128, length: payload.readableBytes - 128)!)
        return wire
    }

    private func serverChannel(passesAcknowledgements: Bool = false) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(
            handler: RTMPConnectionHandler(role: .server, passesAcknowledgements: passesAcknowledgements)
        )
        try channel.connect(to: .init(ipAddress: "127.0.0.1", port: 1935)).wait()
        return channel
    }

    /// Completes a server handshake with ffmpeg's C0+C1 and a C2; returns S0+S1+S2.
    private func handshake(_ channel: EmbeddedChannel) throws -> ByteBuffer {
        try channel.writeInbound(HandshakeTests.ffmpegC0C1)
        let response = try #require(try channel.readOutbound(as: ByteBuffer.self))
        try channel.writeInbound(ByteBuffer(repeating: 0, count: 1536))
        return response
    }

    @Test("ffmpeg's handshake and chunked connect come out as one connect command")
    func ffmpegConnect() throws {
        let channel = try self.serverChannel()
        let response = try self.handshake(channel)
        #expect(response.readableBytes == 3073)
        #expect(response.getInteger(at: 0, as: UInt8.self) == 3)
        // ffmpeg used the digest form, so the server answers with a digest S1 that ffmpeg's player would check.
        #expect(RTMPHandshake.findDigest(in: response.getSlice(at: 1, length: 1536)!, signer: .server) != nil)

        try channel.writeInbound(Self.ffmpegConnectChunks)
        let message = try #require(try channel.readInbound(as: RTMPMessage.self))
        #expect(message.type == .commandAMF0 && message.chunkStreamID == 3 && message.messageStreamID == 0)
        let command = try RTMPCommand(payload: message.payload)
        #expect(command.name == "connect")
        #expect(command.commandObject["app"]?.stringValue == "live")
        #expect(try channel.readInbound(as: RTMPMessage.self) == nil)
        _ = try channel.finish()
    }

    @Test("A batch is headers in one buffer and shared payloads as they are: one gathering write, the same bytes")
    func batchWithSharedPayloads() throws {
        let channel = try self.serverChannel()
        _ = try self.handshake(channel)
        while try channel.readOutbound(as: ByteBuffer.self) != nil {}
        let handler = try channel.pipeline.syncOperations.handler(type: RTMPConnectionHandler.self)
        let context = try channel.pipeline.syncOperations.context(handler: handler)
        func media(_ type: RTMPMessageType, ts: UInt32, bytes: Int) -> RTMPMessage {
            RTMPMessage(
                chunkStreamID: type == .audio ? 4 : 6,
                timestamp: ts,
                type: type,
                messageStreamID: 1,
                payload: ByteBuffer(bytes: (0..<bytes).map { UInt8(truncatingIfNeeded: $0) })
            )
        }
        // Outgoing chunks are 128 bytes until a Set Chunk Size: the large payloads are chunked at 128.
        let messages = [
            media(.audio, ts: 0, bytes: 100),
            media(.video, ts: 0, bytes: 5000),
            media(.audio, ts: 21, bytes: 100),
            media(.video, ts: 33, bytes: 3000),
        ]
        let chunked = messages.map {
            RTMPChunkedPayload(payload: $0.payload, chunkStreamID: $0.chunkStreamID, chunkSize: 128)
        }
        try handler.write(Array(zip(messages, chunked.map { Optional($0) })), context: context)
        channel.flush()
        var writes: [ByteBuffer] = []
        while let bytes = try channel.readOutbound(as: ByteBuffer.self) {
            writes.append(bytes)
        }
        // Header + small audio + video header; the video's chunks; the next header + audio + header; the chunks.
        #expect(writes.count == 4)
        #expect(writes[1] == chunked[1].bytes && writes[3] == chunked[3].bytes)
        writes[1].withUnsafeReadableBytes { written in
            chunked[1].bytes.withUnsafeReadableBytes { #expect(written.baseAddress == $0.baseAddress, "copied") }
        }
        var expected = ByteBuffer()
        var encoder = RTMPChunkEncoder()
        for message in messages {
            try encoder.encode(data: message, out: &expected)
        }
        var all = ByteBuffer()
        for var write in writes {
            all.writeBuffer(&write)
        }
        #expect(all == expected)
        _ = try channel.finish()
    }

    @Test("Handshake and first chunks in one read: nothing is lost")
    func coalesced() throws {
        let channel = try self.serverChannel()
        try channel.writeInbound(HandshakeTests.ffmpegC0C1)
        _ = try channel.readOutbound(as: ByteBuffer.self)
        var both = ByteBuffer(repeating: 0, count: 1536)
        both.writeImmutableBuffer(Self.ffmpegConnectChunks)
        try channel.writeInbound(both)
        #expect(try channel.readInbound(as: RTMPMessage.self)?.type == .commandAMF0)
        _ = try channel.finish()
    }

    @Test("The chunk stream split into two reads at every byte (inside headers too) decodes the same")
    func splitAtEveryByte() throws {
        var encoder = RTMPChunkEncoder()
        var wire = Self.ffmpegConnectChunks
        // A video message over three 128-byte chunks, then an audio message with an extended timestamp.
        let video = RTMPMessage(
            chunkStreamID: 6,
            timestamp: 40,
            type: .video,
            messageStreamID: 1,
            payload: ByteBuffer(bytes: (0..<300).map { UInt8(truncatingIfNeeded: $0) })
        )
        let audio = RTMPMessage(
            chunkStreamID: 4,
            timestamp: 0x0100_0000,
            type: .audio,
            messageStreamID: 1,
            payload: ByteBuffer(bytes: [0xAF, 0x01, 0x21, 0x10])
        )
        try encoder.encode(data: video, out: &wire)
        try encoder.encode(data: audio, out: &wire)
        for split in 1..<wire.readableBytes {
            let channel = try self.serverChannel()
            _ = try self.handshake(channel)
            try channel.writeInbound(wire.getSlice(at: wire.readerIndex, length: split)!)
            try channel.writeInbound(wire.getSlice(at: wire.readerIndex + split, length: wire.readableBytes - split)!)
            var received: [RTMPMessage] = []
            while let message = try channel.readInbound(as: RTMPMessage.self) {
                received.append(message)
            }
            #expect(received.map(\.type) == [.commandAMF0, .video, .audio], "split at \(split)")
            #expect(received.dropFirst().first == video, "split at \(split)")
            #expect(received.last == audio, "split at \(split)")
            _ = try channel.finish()
        }
    }

    @Test("A Ping Request is answered with a Ping Response and not passed on")
    func ping() throws {
        let channel = try self.serverChannel()
        _ = try self.handshake(channel)
        try channel.writeInbound(ByteBuffer(hex: "02 000000 000006 04 00000000 0006 0000ABCD"))
        #expect(try channel.readInbound(as: RTMPMessage.self) == nil)
        let pong = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(pong == ByteBuffer(hex: "02 000000 000006 04 00000000 0007 0000ABCD"))
        _ = try channel.finish()
    }

    @Test("After the peer's Window Acknowledgement Size, an Acknowledgement follows each window of bytes")
    func acknowledgement() throws {
        let channel = try self.serverChannel()
        _ = try self.handshake(channel)
        // Window of 100 bytes (16 bytes of message), then a 100-byte audio message (12 + 100 bytes).
        try channel.writeInbound(ByteBuffer(hex: "02 000000 000004 05 00000000 00000064"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        var audio = ByteBuffer(hex: "04 000000 000064 08 01000000")
        audio.writeRepeatingByte(0xAF, count: 100)
        try channel.writeInbound(audio)
        let ack = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(ack == ByteBuffer(hex: "02 000000 000004 03 00000000 00000080"))  // 16 + 112 = 128 bytes
        _ = try channel.finish()
    }

    @Test(
        "The peer's Acknowledgement is kept back, or passed on for a proxy that asked for it",
        arguments: [false, true]
    )
    func peerAcknowledgement(passed: Bool) throws {
        let channel = try self.serverChannel(passesAcknowledgements: passed)
        _ = try self.handshake(channel)
        try channel.writeInbound(ByteBuffer(hex: "02 000000 000004 03 00000000 00012345"))
        let message = try channel.readInbound(as: RTMPMessage.self)
        #expect((message != nil) == passed)
        if let message {
            #expect(try RTMPControlMessage(message) == .acknowledgement(sequenceNumber: 0x12345))
        }
        _ = try channel.finish()
    }

    @Test("Our writes are chunked with our chunk size once we announced it")
    func outboundChunking() throws {
        let channel = try self.serverChannel()
        _ = try self.handshake(channel)
        try channel.writeOutbound(RTMPControlMessage.setChunkSize(4096).message)
        #expect(
            try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(hex: "02 000000 000004 01 00000000 00001000")
        )
        let video = RTMPMessage(
            chunkStreamID: 6,
            timestamp: 0,
            type: .video,
            messageStreamID: 1,
            payload: ByteBuffer(repeating: 1, count: 3000)
        )
        try channel.writeOutbound(video)
        let bytes = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(bytes.readableBytes == 12 + 3000)  // one chunk at 4096
        _ = try channel.finish()
    }

    @Test("A client sends C0+C1 when active and holds its writes until the handshake completes")
    func clientHoldsWrites() throws {
        let channel = EmbeddedChannel(handler: RTMPConnectionHandler(role: .client))
        try channel.connect(to: .init(ipAddress: "127.0.0.1", port: 1935)).wait()
        let c0c1 = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(c0c1.readableBytes == 1537 && c0c1.getInteger(at: 0, as: UInt8.self) == 3)
        channel.writeAndFlush(RTMPControlMessage.setChunkSize(4096).message, promise: nil)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)

        // A plain server: S0, S1 with zero version, S2 echoing C1.
        var server = ByteBuffer(bytes: [3])
        server.writeRepeatingByte(0, count: 1536)
        server.writeImmutableBuffer(c0c1.getSlice(at: 1, length: 1536)!)
        try channel.writeInbound(server)
        let c2 = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(c2.readableBytes == 1536)
        #expect(
            try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(hex: "02 000000 000004 01 00000000 00001000")
        )
        _ = try channel.finish()
    }

    @Test(
        "Garbage instead of a handshake fires an RTMPError and closes the channel",
        arguments: ["474554202F", "16030100"]
    )
    func garbage(bytes: String) throws {
        let channel = try self.serverChannel()
        #expect(throws: RTMPError.self) {
            try channel.writeInbound(ByteBuffer(hex: bytes))
        }
        #expect(!channel.isActive)
    }

    @Test("A malformed chunk after the handshake fires an RTMPError and closes the channel")
    func malformedChunk() throws {
        let channel = try self.serverChannel()
        _ = try self.handshake(channel)
        #expect(throws: RTMPError.self) {
            try channel.writeInbound(ByteBuffer(hex: "C6 00 01"))
        }
        #expect(!channel.isActive)
    }

    @Test("A peer that went quiet (an IdleStateHandler read event) is closed with a timeout error")
    func idlePeer() throws {
        let channel = try self.serverChannel()
        _ = try self.handshake(channel)
        channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
        #expect(throws: RTMPError.timeout("the peer sent nothing for the idle timeout")) {
            try channel.throwIfErrorCaught()
        }
        #expect(!channel.isActive)
    }

    @Test("A tap takes what it wants as it is decoded, in order; the rest goes down the pipeline")
    func tap() throws {
        final class VideoTap: RTMPMessageTap {
            var taken: [RTMPMessage] = []
            func take(_ message: RTMPMessage) -> Bool {
                guard message.type == .video else { return false }
                self.taken.append(message)
                return true
            }
        }
        let handler = RTMPConnectionHandler(role: .server)
        let tap = VideoTap()
        handler.tap = tap
        let channel = EmbeddedChannel(handler: handler)
        try channel.connect(to: .init(ipAddress: "127.0.0.1", port: 1935)).wait()
        _ = try self.handshake(channel)
        // Video, audio, video, a ping (a control message: answered by the handler, never offered to the tap).
        var wire = ByteBuffer(hex: "06 000000 000003 09 01000000 170001")
        wire.writeImmutableBuffer(ByteBuffer(hex: "04 000000 000002 08 01000000 AF01"))
        wire.writeImmutableBuffer(ByteBuffer(hex: "06 000021 000003 09 01000000 270001"))
        wire.writeImmutableBuffer(ByteBuffer(hex: "02 000000 000006 04 00000000 0006 0000ABCD"))
        try channel.writeInbound(wire)
        #expect(tap.taken.map(\.timestamp) == [0, 0x21])
        #expect(tap.taken.map { Array($0.payload.readableBytesView) } == [[0x17, 0x00, 0x01], [0x27, 0x00, 0x01]])
        let passed = try #require(try channel.readInbound(as: RTMPMessage.self))
        #expect(passed.type == .audio)
        #expect(try channel.readInbound(as: RTMPMessage.self) == nil)
        #expect(try channel.readOutbound(as: ByteBuffer.self) != nil, "the ping was not answered")
        _ = try channel.finish()
    }
}
