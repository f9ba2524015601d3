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
import NIOTestUtils
import Testing

@testable import RTMP

private func message(
    cs: UInt32 = 3,
    ts: UInt32 = 0,
    type: RTMPMessageType = .video,
    stream: UInt32 = 1,
    payload: [UInt8]
) -> RTMPMessage {
    RTMPMessage(
        chunkStreamID: cs,
        timestamp: ts,
        type: type,
        messageStreamID: stream,
        payload: ByteBuffer(bytes: payload)
    )
}

private func encode(_ messages: [RTMPMessage], encoder: inout RTMPChunkEncoder) throws -> ByteBuffer {
    var out = ByteBuffer()
    for message in messages {
        try encoder.encode(data: message, out: &out)
    }
    return out
}

private func decodeAll(_ bytes: ByteBuffer, decoder: inout RTMPChunkDecoder) throws -> [RTMPMessage] {
    var buffer = bytes
    var result: [RTMPMessage] = []
    while let message = try decoder.decode(buffer: &buffer) {
        result.append(message)
    }
    #expect(buffer.readableBytes == 0, "bytes left over after decoding")
    return result
}

private func hex(_ string: String) -> ByteBuffer { ByteBuffer(hex: string) }

@Suite("RTMP chunk encoder")
struct ChunkEncoderTests {
    @Test("Set Chunk Size on chunk stream 2 is a 12-byte format 0 header and 4 bytes")
    func setChunkSizeBytes() throws {
        var encoder = RTMPChunkEncoder()
        let bytes = try encode([RTMPControlMessage.setChunkSize(4096).message], encoder: &encoder)
        #expect(bytes == hex("02 000000 000004 01 00000000 00001000"))
        #expect(encoder.chunkSize == 4096)
    }

    @Test("Header formats: 0 for a new chunk stream, 1 on length change, 2 on delta change, 3 on same delta")
    func formatSelection() throws {
        var encoder = RTMPChunkEncoder()
        let bytes = try encode(
            [
                message(cs: 6, ts: 1000, type: .video, stream: 1, payload: [0xAA]),
                message(cs: 6, ts: 1040, type: .video, stream: 1, payload: [0xBB, 0xBB]),
                message(cs: 6, ts: 1080, type: .video, stream: 1, payload: [0xCC, 0xCC]),
                message(cs: 6, ts: 1100, type: .video, stream: 1, payload: [0xDD, 0xDD]),
                message(cs: 6, ts: 1120, type: .video, stream: 1, payload: [0xEE, 0xEE]),
            ],
            encoder: &encoder
        )
        let expected = hex(
            """
            06 0003E8 000001 09 01000000 AA
            46 000028 000002 09 BBBB
            C6 CCCC
            86 000014 DDDD
            C6 EEEE
            """
        )
        #expect(bytes == expected)
    }

    @Test("A timestamp that goes backwards or another message stream forces format 0")
    func backwardsTimestamp() throws {
        var encoder = RTMPChunkEncoder()
        let bytes = try encode(
            [
                message(cs: 4, ts: 500, type: .audio, stream: 1, payload: [1]),
                message(cs: 4, ts: 400, type: .audio, stream: 1, payload: [2]),
                message(cs: 4, ts: 400, type: .audio, stream: 2, payload: [3]),
            ],
            encoder: &encoder
        )
        #expect(
            bytes
                == hex(
                    """
                    04 0001F4 000001 08 01000000 01
                    04 000190 000001 08 01000000 02
                    04 000190 000001 08 02000000 03
                    """
                )
        )
    }

    @Test("Messages longer than the chunk size are split with format 3 continuation headers")
    func continuation() throws {
        var encoder = RTMPChunkEncoder()
        let payload = [UInt8](repeating: 0x11, count: 128) + [UInt8](repeating: 0x22, count: 72)
        let bytes = try encode(
            [message(cs: 3, ts: 0, type: .commandAMF0, stream: 0, payload: payload)],
            encoder: &encoder
        )
        var expected = hex("03 000000 0000C8 14 00000000")
        expected.writeBytes(payload[0..<128])
        expected.writeInteger(UInt8(0xC3))
        expected.writeBytes(payload[128...])
        #expect(bytes == expected)
    }

    @Test("Extended timestamps are written on the first chunk and repeated on every continuation")
    func extendedTimestamp() throws {
        var encoder = RTMPChunkEncoder()
        let payload = [UInt8](repeating: 7, count: 130)
        let bytes = try encode(
            [message(cs: 6, ts: 0x0100_0000, type: .video, stream: 1, payload: payload)],
            encoder: &encoder
        )
        var expected = hex("06 FFFFFF 000082 09 01000000 01000000")
        expected.writeBytes(payload[0..<128])
        expected.writeBytes([0xC6, 0x01, 0x00, 0x00, 0x00])
        expected.writeBytes(payload[128...])
        #expect(bytes == expected)
    }

    @Test(
        "Chunk stream ids use the one, two and three byte basic header forms",
        arguments: [
            (UInt32(2), "02"), (63, "3F"), (64, "0000"), (319, "00FF"), (320, "01 0001"), (65599, "01 FFFF"),
        ]
    )
    func basicHeaderWidths(id: UInt32, basicHeader: String) throws {
        var encoder = RTMPChunkEncoder()
        let bytes = try encode([message(cs: id, ts: 0, type: .audio, stream: 0, payload: [])], encoder: &encoder)
        var expected = hex(basicHeader)
        expected.writeImmutableBuffer(hexBody)
        #expect(bytes == expected)
    }

    private var hexBody = hex("000000 000000 08 00000000")
}

@Suite("A payload chunked once for many connections")
struct ChunkedPayloadTests {
    /// Encodes `messages` in full with one encoder, and as header + shared chunked payload with another, and
    /// returns both byte streams.
    private func both(
        _ messages: [RTMPMessage],
        chunkSize: Int
    ) throws -> (full: ByteBuffer, shared: ByteBuffer, used: Int) {
        var full = RTMPChunkEncoder()
        var shared = RTMPChunkEncoder()
        var setup = ByteBuffer()
        if chunkSize != 128 {
            try full.encode(data: RTMPControlMessage.setChunkSize(UInt32(chunkSize)).message, out: &setup)
            try shared.encode(data: RTMPControlMessage.setChunkSize(UInt32(chunkSize)).message, out: &setup)
        }
        var fullBytes = ByteBuffer()
        var sharedBytes = ByteBuffer()
        var used = 0
        for message in messages {
            try full.encode(data: message, out: &fullBytes)
            let chunked = RTMPChunkedPayload(
                payload: message.payload,
                chunkStreamID: message.chunkStreamID,
                chunkSize: chunkSize
            )
            if try shared.encodeHeader(of: message, chunked: chunked, out: &sharedBytes) {
                sharedBytes.writeImmutableBuffer(chunked.bytes)
                used += 1
            } else {
                try shared.encode(data: message, out: &sharedBytes)
            }
        }
        return (fullBytes, sharedBytes, used)
    }

    @Test(
        "header + shared chunks are byte for byte the full encoding, for every header format and chunk stream id width",
        arguments: [2, 63, 64, 319, 320, 65599],
        [128, 4096]
    )
    func sameBytes(chunkStreamID: UInt32, chunkSize: Int) throws {
        let messages = [
            message(cs: chunkStreamID, ts: 0, payload: [UInt8](repeating: 1, count: 9000)),
            message(cs: chunkStreamID, ts: 33, payload: [UInt8](repeating: 2, count: 9000)),
            message(cs: chunkStreamID, ts: 66, payload: [UInt8](repeating: 3, count: 9000)),
            message(cs: chunkStreamID, ts: 100, payload: [UInt8](repeating: 4, count: 100)),
            message(cs: chunkStreamID, ts: 90, payload: [UInt8](repeating: 5, count: chunkSize)),
            message(cs: chunkStreamID, ts: 91, payload: [UInt8](repeating: 6, count: chunkSize + 1)),
            message(cs: chunkStreamID, ts: 91, payload: []),
        ]
        let (full, shared, used) = try self.both(messages, chunkSize: chunkSize)
        #expect(used == messages.count)
        #expect(full == shared)
        var decoder = RTMPChunkDecoder()
        var setup = ByteBuffer()
        if chunkSize != 128 {
            var encoder = RTMPChunkEncoder()
            try encoder.encode(data: RTMPControlMessage.setChunkSize(UInt32(chunkSize)).message, out: &setup)
        }
        #expect(try decodeAll(setup + shared, decoder: &decoder).dropFirst(chunkSize != 128 ? 1 : 0) == messages[...])
    }

    @Test("another chunk size, another chunk stream or an extended timestamp on continuations: encoded in full")
    func fallsBack() throws {
        var encoder = RTMPChunkEncoder()
        var out = ByteBuffer()
        let long = message(cs: 6, ts: 0, payload: [UInt8](repeating: 1, count: 300))
        let at4096 = RTMPChunkedPayload(payload: long.payload, chunkStreamID: 6, chunkSize: 4096)
        #expect(try !encoder.encodeHeader(of: long, chunked: at4096, out: &out))
        let onCS4 = RTMPChunkedPayload(payload: long.payload, chunkStreamID: 4, chunkSize: 128)
        #expect(try !encoder.encodeHeader(of: long, chunked: onCS4, out: &out))
        let extended = message(cs: 6, ts: 0x0100_0000, payload: [UInt8](repeating: 1, count: 300))
        let chunked = RTMPChunkedPayload(payload: extended.payload, chunkStreamID: 6, chunkSize: 128)
        #expect(try !encoder.encodeHeader(of: extended, chunked: chunked, out: &out))
        #expect(out.readableBytes == 0, "wrote something it then refused")
        // A single chunk carries its extended timestamp in its one header: shared.
        let short = message(cs: 6, ts: 0x0100_0000, payload: [UInt8](repeating: 1, count: 100))
        let one = RTMPChunkedPayload(payload: short.payload, chunkStreamID: 6, chunkSize: 128)
        #expect(try encoder.encodeHeader(of: short, chunked: one, out: &out))
        #expect(out.readableBytes == 16)
    }

    @Test("a payload that fits in one chunk is used as it is, not copied")
    func oneChunkNotCopied() {
        let payload = ByteBuffer(bytes: [UInt8](repeating: 7, count: 4096))
        let chunked = RTMPChunkedPayload(payload: payload, chunkStreamID: 6, chunkSize: 4096)
        #expect(chunked.bytes == payload)
        payload.withUnsafeReadableBytes { payload in
            chunked.bytes.withUnsafeReadableBytes { #expect($0.baseAddress == payload.baseAddress) }
        }
    }
}

@Suite("RTMP chunk decoder")
struct ChunkDecoderTests {
    @Test(
        "Round trip over header formats, chunk sizes, cs-id widths and extended timestamps",
        arguments: [1, 128, 4096, 65536],
        [UInt32(2), 3, 63, 64, 300, 319, 320, 4000, 65599]
    )
    func roundTrip(chunkSize: Int, chunkStreamID: UInt32) throws {
        var encoder = RTMPChunkEncoder()
        var decoder = RTMPChunkDecoder()
        var messages: [RTMPMessage] = []
        if chunkSize != 128 {
            messages.append(RTMPControlMessage.setChunkSize(UInt32(chunkSize)).message)
        }
        let timestamps: [UInt32] = [0, 40, 80, 120, 0xFF_FFFE, 0xFF_FFFF, 0x0100_0000, 0x0100_0028, 0xFFFF_FFF0]
        for (index, timestamp) in timestamps.enumerated() {
            let length = [0, 1, 127, 128, 129, 300, 5000, 20000][index % 8]
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            messages.append(
                message(
                    cs: chunkStreamID,
                    ts: timestamp,
                    type: index % 2 == 0 ? .video : .audio,
                    stream: 1,
                    payload: payload
                )
            )
        }
        let bytes = try encode(messages, encoder: &encoder)
        let decoded = try decodeAll(bytes, decoder: &decoder)
        #expect(decoded.count == messages.count)
        for (got, want) in zip(decoded, messages) {
            #expect(got.timestamp == want.timestamp)
            #expect(got.type == want.type)
            #expect(got.messageStreamID == want.messageStreamID)
            #expect(got.payload == want.payload)
            #expect(got.chunkStreamID == want.chunkStreamID)
        }
        #expect(decoder.chunkSize == chunkSize)
    }

    @Test("Interleaved chunk streams reassemble independently")
    func interleaved() throws {
        // Two 200-byte messages on chunk streams 4 and 6, their chunks interleaved at chunk size 128.
        let audio = [UInt8](repeating: 0xA0, count: 200)
        let video = [UInt8](repeating: 0xB0, count: 200)
        var bytes = hex("04 000010 0000C8 08 01000000")
        bytes.writeBytes(audio[0..<128])
        bytes.writeImmutableBuffer(hexVideoHeader)
        bytes.writeBytes(video[0..<128])
        bytes.writeInteger(UInt8(0xC4))
        bytes.writeBytes(audio[128...])
        bytes.writeInteger(UInt8(0xC6))
        bytes.writeBytes(video[128...])
        var decoder = RTMPChunkDecoder()
        let decoded = try decodeAll(bytes, decoder: &decoder)
        #expect(decoded.map(\.chunkStreamID) == [4, 6])
        #expect(decoded[0].payload == ByteBuffer(bytes: audio))
        #expect(decoded[1].payload == ByteBuffer(bytes: video))
        #expect(decoded[1].timestamp == 0x20)
    }

    private var hexVideoHeader = hex("06 000020 0000C8 09 01000000")

    @Test("A type 3 continuation without the repeated extended timestamp is read as payload")
    func continuationWithoutExtendedTimestamp() throws {
        let payload = [UInt8](repeating: 9, count: 140)
        var bytes = hex("06 FFFFFF 00008C 09 01000000 01000000")
        bytes.writeBytes(payload[0..<128])
        bytes.writeInteger(UInt8(0xC6))  // no extended timestamp follows
        bytes.writeBytes(payload[128...])
        var decoder = RTMPChunkDecoder()
        let decoded = try decodeAll(bytes, decoder: &decoder)
        #expect(decoded.count == 1)
        #expect(decoded.first?.payload == ByteBuffer(bytes: payload))
        #expect(decoded.first?.timestamp == 0x0100_0000)
    }

    @Test("Set Chunk Size applies to the very next chunk in the same buffer")
    func setChunkSizeInBuffer() throws {
        var bytes = hex("02 000000 000004 01 00000000 00000100")
        let payload = [UInt8](repeating: 0x42, count: 200)
        bytes.writeImmutableBuffer(hexCommandHeader)
        bytes.writeBytes(payload)  // one chunk at the new size of 256
        var decoder = RTMPChunkDecoder()
        let decoded = try decodeAll(bytes, decoder: &decoder)
        #expect(decoded.count == 2)
        #expect(decoded[1].payload == ByteBuffer(bytes: payload))
    }

    private var hexCommandHeader = hex("03 000000 0000C8 14 00000000")

    @Test("Abort drops the partial message of its chunk stream")
    func abort() throws {
        var bytes = hex("06 000000 000100 09 01000000")
        bytes.writeBytes([UInt8](repeating: 1, count: 128))
        bytes.writeImmutableBuffer(hexAbort)
        bytes.writeImmutableBuffer(hexFreshVideo)
        var decoder = RTMPChunkDecoder()
        let decoded = try decodeAll(bytes, decoder: &decoder)
        #expect(decoded.map(\.type) == [.abort, .video])
        #expect(decoded[1].payload == ByteBuffer(bytes: [0x17]))
    }

    private var hexAbort = hex("02 000000 000004 02 00000000 00000006")
    private var hexFreshVideo = hex("06 000000 000001 09 01000000 17")

    @Test("A single-chunk message is a slice of the read buffer, no copy; compacted() gives it storage of its own")
    func singleChunkSliced() throws {
        var bytes = ByteBufferAllocator().buffer(capacity: 64 << 10)
        bytes.writeImmutableBuffer(hex("06 000000 000003 09 01000000 170100"))
        var decoder = RTMPChunkDecoder()
        var buffer = bytes
        let decoded = try #require(try decoder.decode(buffer: &buffer))
        #expect(decoded.payload == ByteBuffer(bytes: [0x17, 0x01, 0x00]))
        func pointsIntoInput(_ payload: ByteBuffer) -> Bool {
            payload.withUnsafeReadableBytes { payload in
                bytes.withUnsafeReadableBytes { input in
                    let start = input.baseAddress!
                    return (start..<start + input.count).contains(payload.baseAddress!)
                }
            }
        }
        #expect(pointsIntoInput(decoded.payload), "copied out of the read buffer")
        let compacted = decoded.compacted()
        #expect(compacted == decoded)
        #expect(!pointsIntoInput(compacted.payload), "compacted() still holds the read buffer")
        #expect(compacted.payload.storageCapacity < 1024)
        // A payload of its own is left as it is.
        #expect(compacted.compacted().payload.storageCapacity == compacted.payload.storageCapacity)
    }

    @Test("A chunk's payload is taken as it arrives: only a partial header is ever left in the input")
    func payloadTakenAsItArrives() throws {
        var encoder = RTMPChunkEncoder()
        let video = message(cs: 6, ts: 0, type: .video, stream: 1, payload: [UInt8](repeating: 7, count: 100))
        let bytes = try encode([video], encoder: &encoder)
        var decoder = RTMPChunkDecoder()
        // The 12-byte header and 40 bytes of the payload: all consumed, nothing decoded yet.
        var first = bytes.getSlice(at: 0, length: 52)!
        #expect(try decoder.decode(buffer: &first) == nil)
        #expect(first.readableBytes == 0)
        // Half a header of the next message stays, the rest of the payload completes the first.
        var rest = bytes.getSlice(at: 52, length: bytes.readableBytes - 52)!
        rest.writeBytes([0x06, 0x00])
        #expect(try decoder.decode(buffer: &rest) == video)
        #expect(try decoder.decode(buffer: &rest) == nil)
        #expect(rest.readableBytes == 2)
    }

    @Test("Drip-fed and coalesced input decode the same (NIO's decoder verifier)")
    func verifier() throws {
        var encoder = RTMPChunkEncoder()
        let messages = [
            RTMPControlMessage.setChunkSize(200).message,
            message(cs: 6, ts: 0, type: .video, stream: 1, payload: [UInt8](repeating: 1, count: 450)),
            message(cs: 4, ts: 10, type: .audio, stream: 1, payload: [UInt8](repeating: 2, count: 30)),
            message(cs: 6, ts: 40, type: .video, stream: 1, payload: [UInt8](repeating: 3, count: 450)),
            message(cs: 6, ts: 0x0100_0000, type: .video, stream: 1, payload: [UInt8](repeating: 4, count: 201)),
        ]
        // The verifier shuffles its pairs, and RTMP headers compress against the previous ones on the same chunk
        // stream, so the whole session is one pair. It is still fed byte by byte and all at once.
        let bytes = try encode(messages, encoder: &encoder)
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: [(bytes, messages)]) { RTMPChunkDecoder() }
    }
}

@Suite("RTMP chunk decoder limits")
struct ChunkDecoderLimitTests {
    @Test("A message longer than maxMessageLength closes the connection")
    func messageTooLong() throws {
        var decoder = RTMPChunkDecoder(limits: .init(maxMessageLength: 1000))
        var bytes = hex("06 000000 0003E9 09 01000000")
        #expect(throws: RTMPError.limitExceeded("maxMessageLength", value: 1001, maximum: 1000)) {
            _ = try decoder.decode(buffer: &bytes)
        }
    }

    @Test("Opening more than maxChunkStreams chunk streams fails")
    func tooManyChunkStreams() throws {
        var decoder = RTMPChunkDecoder(limits: .init(maxChunkStreams: 3))
        var bytes = ByteBuffer()
        for id in UInt8(3)...UInt8(6) {
            bytes.writeInteger(id)
            bytes.writeImmutableBuffer(emptyVideo)
        }
        #expect(throws: RTMPError.limitExceeded("maxChunkStreams", value: 4, maximum: 3)) {
            while try decoder.decode(buffer: &bytes) != nil {}
        }
    }

    private var emptyVideo = hex("000000 000000 09 01000000")

    @Test("Partial messages over maxBufferedBytes fail")
    func bufferedBytes() throws {
        var decoder = RTMPChunkDecoder(limits: .init(maxMessageLength: 1000, maxBufferedBytes: 1500))
        var bytes = hex("04 000000 0003E8 09 01000000")
        bytes.writeBytes([UInt8](repeating: 0, count: 128))
        bytes.writeImmutableBuffer(secondStream)
        #expect(throws: RTMPError.limitExceeded("maxBufferedBytes", value: 2000, maximum: 1500)) {
            while try decoder.decode(buffer: &bytes) != nil {}
        }
    }

    private var secondStream = hex("06 000000 0003E8 09 01000000") + ByteBuffer(repeating: 0, count: 128)

    @Test("A chunk size above maxChunkSize is refused", arguments: [UInt32(0x7FFF_FFFF), 20_000_000])
    func chunkSizeTooLarge(size: UInt32) throws {
        var decoder = RTMPChunkDecoder()
        var bytes = hex("02 000000 000004 01 00000000")
        bytes.writeInteger(size)
        #expect(throws: RTMPError.self) {
            _ = try decoder.decode(buffer: &bytes)
        }
    }

    @Test("A chunk size of zero is refused")
    func chunkSizeZero() throws {
        var decoder = RTMPChunkDecoder()
        var bytes = hex("02 000000 000004 01 00000000 00000000")
        #expect(throws: RTMPError.malformedMessage("Set Chunk Size of 0")) {
            _ = try decoder.decode(buffer: &bytes)
        }
    }

    @Test("A compressed header on a chunk stream never opened is malformed", arguments: ["86 000014 00", "C6 00"])
    func compressedHeaderFirst(bytes: String) throws {
        var decoder = RTMPChunkDecoder()
        var buffer = hex(bytes)
        #expect(throws: RTMPError.self) {
            _ = try decoder.decode(buffer: &buffer)
        }
    }

    @Test("A new header before the message in flight finished is malformed")
    func headerMidMessage() throws {
        var decoder = RTMPChunkDecoder()
        var bytes = hex("06 000000 000100 09 01000000")
        bytes.writeBytes([UInt8](repeating: 0, count: 128))
        bytes.writeImmutableBuffer(midMessageHeader)
        #expect(throws: RTMPError.self) {
            while try decoder.decode(buffer: &bytes) != nil {}
        }
    }

    private var midMessageHeader = hex("46 000028 000002 09 0000")

    @Test("Random bytes only ever throw or wait, and never take more than the limits allow")
    func fuzz() throws {
        var generator = FuzzGenerator(seed: 0x5EED)
        for _ in 0..<3000 {
            var decoder = RTMPChunkDecoder(
                limits: .init(maxMessageLength: 4096, maxChunkStreams: 8, maxChunkSize: 8192, maxBufferedBytes: 16384)
            )
            let length = Int.random(in: 1...600, using: &generator)
            var buffer = ByteBuffer(bytes: (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })
            do {
                while let message = try decoder.decode(buffer: &buffer) {
                    #expect(message.payload.readableBytes <= 4096)
                }
            } catch is RTMPError {
                // A clear error is the expected outcome for garbage.
            }
        }
    }
}

/// A small deterministic generator, so a failing fuzz case can be replayed.
private struct FuzzGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func + (lhs: ByteBuffer, rhs: ByteBuffer) -> ByteBuffer {
    var result = lhs
    var rhs = rhs
    result.writeBuffer(&rhs)
    return result
}
