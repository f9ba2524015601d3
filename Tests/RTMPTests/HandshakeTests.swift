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
import RTMP
import Testing

private typealias StateMachine = RTMPHandshakeStateMachine

@Suite("RTMP handshake")
struct HandshakeTests {
    // MARK: Our client against our server

    @Test("digest client and server agree", arguments: RTMPHandshake.DigestScheme.allCases)
    func digestHandshake(scheme: RTMPHandshake.DigestScheme) throws {
        var rng = SplitMix64(seed: 1)
        var client = StateMachine.client(epoch: 1234, digestScheme: scheme, using: &rng)
        var server = StateMachine.server(epoch: 5678, using: &rng)
        let transcript = try handshake(client: &client, server: &server)

        #expect(client.isComplete && server.isComplete)
        #expect(server.peerDigestScheme == scheme)
        #expect(client.peerDigestScheme == scheme, "the server answers in the client's scheme")
        #expect(server.peerResponseVerified, "our client signs C2")
        #expect(client.peerResponseVerified, "our server signs S2")

        // C1: version byte 3, our time, a nonzero version and a Flash Player digest in the chosen scheme.
        var c0c1 = transcript.c0c1
        #expect(c0c1.readInteger(as: UInt8.self) == 3)
        #expect(c0c1.getInteger(at: c0c1.readerIndex, as: UInt32.self) == 1234)
        #expect(c0c1.getInteger(at: c0c1.readerIndex + 4, as: UInt32.self) == RTMPHandshake.clientVersion)
        #expect(RTMPHandshake.findDigest(in: c0c1, signer: .client)?.scheme == scheme)

        // S1 and S2 as ffmpeg's player checks them.
        #expect(ffmpegPlayerAccepts(transcript.s0s1s2, c1: c0c1))
        var s0s1s2 = transcript.s0s1s2
        s0s1s2.moveReaderIndex(forwardBy: 1)
        let s1 = s0s1s2.readSlice(length: RTMPHandshake.packetSize)!
        #expect(s1.getInteger(at: s1.readerIndex, as: UInt32.self) == 5678)
        #expect(s1.getInteger(at: s1.readerIndex + 4, as: UInt32.self) == RTMPHandshake.serverVersion)

        // C2 as librtmp's server checks it: signed from S1's digest with the full Flash Player key.
        let serverDigest = try #require(RTMPHandshake.findDigest(in: s1, signer: .server))
        #expect(
            RTMPHandshake.isValidResponse(transcript.c2, challengeDigest: serverDigest.bytes, responder: .client)
        )
    }

    @Test("plain client gets a plain answer from our server")
    func plainClientAgainstServer() throws {
        var rng = SplitMix64(seed: 2)
        var client = StateMachine.client(digestScheme: nil, using: &rng)
        var server = StateMachine.server(using: &rng)
        let transcript = try handshake(client: &client, server: &server)

        #expect(!server.peerUsedDigest && !client.peerUsedDigest)
        #expect(server.peerResponseVerified && client.peerResponseVerified)
        var c0c1 = transcript.c0c1
        #expect(c0c1.getInteger(at: 5, as: UInt32.self) == 0, "a plain C1 has a zero version")
        c0c1.moveReaderIndex(forwardBy: 1)
        var s0s1s2 = transcript.s0s1s2
        #expect(s0s1s2.readInteger(as: UInt8.self) == 3)
        let s1 = s0s1s2.readSlice(length: RTMPHandshake.packetSize)!
        #expect(s1.getInteger(at: 4, as: UInt32.self) == 0, "a plain S1 has four zero bytes")
        #expect(s0s1s2 == c0c1, "a plain S2 echoes C1")
        #expect(transcript.c2 == s1, "a plain C2 echoes S1")
    }

    @Test("a hand-made plain C1 with a zero version is answered plainly")
    func handMadePlainClient() throws {
        var server = StateMachine.server()
        var c0c1 = ByteBuffer(bytes: [3, 0, 0, 0, 42, 0, 0, 0, 0])
        c0c1.writeBytes((0..<(RTMPHandshake.packetSize - 8)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        var input = c0c1
        let s0s1s2 = try #require(try server.bytesReceived(&input).written)
        #expect(s0s1s2.readableBytes == 1 + 2 * RTMPHandshake.packetSize)
        #expect(
            s0s1s2.getSlice(at: 1 + RTMPHandshake.packetSize, length: RTMPHandshake.packetSize)
                == c0c1.getSlice(at: 1, length: RTMPHandshake.packetSize)
        )
        #expect(!server.peerUsedDigest)

        // librtmp's plain client puts its own time into bytes 4..<8 of C2; that is still an echo.
        var c2 = s0s1s2.getSlice(at: 1, length: RTMPHandshake.packetSize)!
        c2.setInteger(UInt32(99), at: 4)
        #expect(try server.bytesReceived(&c2) == .complete(write: nil))
        #expect(server.peerResponseVerified)
    }

    // MARK: Our client against simulated servers

    @Test("our client against a plain server echoes S1")
    func clientAgainstPlainServer() throws {
        var client = StateMachine.client()
        let c0c1 = try #require(client.start().written)
        let c1 = c0c1.getSlice(at: 1, length: RTMPHandshake.packetSize)!

        // A plain server (RTMP 1.0 section 5.2): S1 = time, zeros, random; S2 = C1.
        var response = ByteBuffer(bytes: [3, 0, 0, 0, 7, 0, 0, 0, 0])
        response.writeBytes((0..<(RTMPHandshake.packetSize - 8)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) })
        let s1 = response.getSlice(at: 1, length: RTMPHandshake.packetSize)!
        response.writeImmutableBuffer(c1)

        let action = try client.bytesReceived(&response)
        #expect(action == .complete(write: s1))
        #expect(!client.peerUsedDigest)
        #expect(client.peerResponseVerified)
    }

    @Test("our client against a server that signs S1 but answers with an echo")
    func clientAgainstEchoingDigestServer() throws {
        var rng = SplitMix64(seed: 3)
        var client = StateMachine.client(using: &rng)
        let c0c1 = try #require(client.start().written)

        // A digest S1 (offset at 8, as nginx-rtmp always writes it), then S2 = C1 instead of a signed S2.
        var s1 = ByteBuffer(bytes: [0, 0, 0, 0, 1, 2, 3, 4])
        s1.writeBytes((0..<(RTMPHandshake.packetSize - 8)).map { UInt8(truncatingIfNeeded: $0 &* 13) })
        RTMPHandshake.imprintDigest(in: &s1, scheme: .offsetAt8, signer: .server)
        var response = ByteBuffer(bytes: [3])
        response.writeImmutableBuffer(s1)
        response.writeImmutableBuffer(c0c1.getSlice(at: 1, length: RTMPHandshake.packetSize)!)

        let c2 = try #require(try client.bytesReceived(&response).completedWrite)
        #expect(client.peerDigestScheme == .offsetAt8)
        #expect(client.peerResponseVerified, "an echo of C1 still answers our challenge")
        let serverDigest = try #require(RTMPHandshake.findDigest(in: s1, signer: .server))
        #expect(RTMPHandshake.isValidResponse(c2, challengeDigest: serverDigest.bytes, responder: .client))
    }

    // MARK: Framing

    @Test("bytes drip-fed one at a time", arguments: [true, false])
    func dripFed(digest: Bool) throws {
        var rng = SplitMix64(seed: 4)
        var client = StateMachine.client(digestScheme: digest ? .offsetAt8 : nil, using: &rng)
        var server = StateMachine.server(using: &rng)
        let transcript = try handshake(client: &client, server: &server, pieceSize: 1)
        #expect(server.peerUsedDigest == digest && client.peerUsedDigest == digest)
        #expect(server.peerResponseVerified && client.peerResponseVerified)

        // Same seed, whole packets: the same bytes on the wire.
        var rng2 = SplitMix64(seed: 4)
        var client2 = StateMachine.client(digestScheme: digest ? .offsetAt8 : nil, using: &rng2)
        var server2 = StateMachine.server(using: &rng2)
        #expect(try handshake(client: &client2, server: &server2) == transcript)
    }

    @Test("bytes in odd-sized pieces", arguments: [2, 7, 512, 1536, 1537, 1538, 3000])
    func oddPieces(pieceSize: Int) throws {
        var client = StateMachine.client()
        var server = StateMachine.server()
        _ = try handshake(client: &client, server: &server, pieceSize: pieceSize)
        #expect(server.peerUsedDigest && client.peerUsedDigest)
    }

    @Test("server leaves the chunks that follow C2 in the buffer")
    func serverLeavesTrailingBytes() throws {
        var rng = SplitMix64(seed: 5)
        var client = StateMachine.client(using: &rng)
        var server = StateMachine.server(using: &rng)
        var c0c1 = try #require(client.start().written)
        var s0s1s2 = try #require(try server.bytesReceived(&c0c1).written)
        #expect(c0c1.readableBytes == 0)
        var c2 = try #require(try client.bytesReceived(&s0s1s2).completedWrite)

        // An encoder sends C2 and its first chunks (connect) in one segment.
        let chunks: [UInt8] = [0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x99, 0x14]
        c2.writeBytes(chunks)
        #expect(try server.bytesReceived(&c2) == .complete(write: nil))
        #expect(c2 == ByteBuffer(bytes: chunks))
    }

    @Test("server takes C0, C1, C2 and chunks all in one read")
    func serverPipelinedInput() throws {
        var client = StateMachine.client(digestScheme: nil)
        var server = StateMachine.server()
        var input = try #require(client.start().written)
        // A client that does not wait for S1 cannot echo it; we read such a C2 anyway.
        input.writeRepeatingByte(0x5A, count: RTMPHandshake.packetSize)
        input.writeBytes([1, 2, 3])
        let s0s1s2 = try #require(try server.bytesReceived(&input).completedWrite)
        #expect(s0s1s2.readableBytes == 1 + 2 * RTMPHandshake.packetSize)
        #expect(input == ByteBuffer(bytes: [1, 2, 3]))
        #expect(server.isComplete)
        #expect(!server.peerResponseVerified)
    }

    @Test("client leaves the chunks that follow S2 in the buffer")
    func clientLeavesTrailingBytes() throws {
        var client = StateMachine.client()
        var server = StateMachine.server()
        var c0c1 = try #require(client.start().written)
        var input = try #require(try server.bytesReceived(&c0c1).written)
        // nginx-rtmp may send Window Acknowledgement Size right behind S2.
        let chunks: [UInt8] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x05]
        input.writeBytes(chunks)
        let c2 = try #require(try client.bytesReceived(&input).completedWrite)
        #expect(c2.readableBytes == RTMPHandshake.packetSize)
        #expect(input == ByteBuffer(bytes: chunks))
    }

    @Test("nothing is written before C0 and C1 are whole")
    func partialInputWaits() throws {
        var server = StateMachine.server()
        #expect(server.start() == .wait)
        var empty = ByteBuffer()
        #expect(try server.bytesReceived(&empty) == .wait)
        var partial = ByteBuffer(bytes: [3] + [UInt8](repeating: 0, count: 1000))
        #expect(try server.bytesReceived(&partial) == .wait)
        #expect(partial.readableBytes == 0)
        #expect(!server.isComplete)
    }

    // MARK: Versions

    @Test("C0 other than 3 is refused at the first byte", arguments: [0, 1, 6, 8, 9, 0x16, 0x47] as [UInt8])
    func serverRefusesVersion(version: UInt8) throws {
        var server = StateMachine.server()
        var c0 = ByteBuffer(bytes: [version])
        let error = #expect(throws: RTMPError.self) { try server.bytesReceived(&c0) }
        #expect(error?.code == .unsupportedVersion)
        #expect(error == RTMPError.unsupportedVersion(version))

        // Once failed, the machine keeps failing the same way.
        var more = ByteBuffer(bytes: [UInt8](repeating: 3, count: 2000))
        #expect(throws: RTMPError.unsupportedVersion(version)) { try server.bytesReceived(&more) }
    }

    @Test("RTMPE (C0 = 6) is refused even with a well-formed C1")
    func serverRefusesRTMPE() throws {
        var client = StateMachine.client()
        var c0c1 = try #require(client.start().written)
        c0c1.setInteger(RTMPHandshake.encryptedVersion, at: c0c1.readerIndex)
        var server = StateMachine.server()
        #expect(throws: RTMPError.unsupportedVersion(6)) { try server.bytesReceived(&c0c1) }
    }

    @Test("client refuses an S0 other than 3")
    func clientRefusesVersion() throws {
        var client = StateMachine.client()
        _ = client.start()
        var s0 = ByteBuffer(bytes: [6])
        #expect(throws: RTMPError.unsupportedVersion(6)) { try client.bytesReceived(&s0) }
    }

    @Test("a C2 that answers nothing still completes the handshake")
    func mismatchedC2() throws {
        var client = StateMachine.client()
        var server = StateMachine.server()
        var c0c1 = try #require(client.start().written)
        _ = try server.bytesReceived(&c0c1)
        var c2 = ByteBuffer(repeating: 0, count: RTMPHandshake.packetSize)
        #expect(try server.bytesReceived(&c2) == .complete(write: nil))
        #expect(server.peerUsedDigest)
        #expect(!server.peerResponseVerified)
    }

    // MARK: A real peer

    /// C0+C1 as ffmpeg 5.1 sends them when publishing (`ffmpeg -f lavfi -i testsrc -f flv rtmp://…`), captured
    /// from a socket. ffmpeg seeds its generator with a constant, so every ffmpeg sends these very bytes: time 0,
    /// version 9.0.124.2, digest at offset 494 in the scheme "offset at 8".
    static let ffmpegC0C1 = ByteBuffer(
        hex: """
            030000000009007c02f778551eceab8e1e362f07c5868a70b266d40220e5086118a22e3697d5fc2b6329c22ee7c7c9b0
            b5b345dfa8398fea3bc879208a1068425aa1174cb57258cfebe24da42ec4ff9da19c7b406f18c95bfdd04ee48b6f8332
            14a47b8bf68eb05254e25ae9a9a8b496c5496f6e9cd7c68cb6bcc84169e67f3e372ffe186da8513862c5afdeb5a1218a
            860baccdd869b253dbab8a0efb59a48c442099875e55b74fd07a1b69af303e099873cb77e2d9e2c4741eb1f506a7f0b2
            962af91f5051c890a320994f4c8b36a01fa9c0f15f4b7cf7b6c3817da60918611d3b02ff7cc94038937537d3382e416b
            d57577834df9caf748352150ce92d0dbb40e871fc364e18b7e3569e39876c1ae0cb79ff6d7ab32f9f011869c8da4191e
            f46d3c1bc6b72d83812f2243d1752a412632d66a2075f5d302f45cdf2b98b802b79805dc4837d84eded1cc42cba7eec3
            137bf86dd0b2d7f624d521a3ff655bcf0df4101341d230e94651628e45a7abf8183101ce981e5e86a6faec5c79aa7ec7
            181ea459ed966e0c932a6f9e4bf554ab7b1c905cde054ed40d2fb89bbfc65752e58cfde4f2a04dc3ad1e5ef4fc64d57b
            071c14146a451f6a043156d2880f5957d78dfd3ff2b880f624ac70f27094f37734eaf1924f66ac3d648ae232930544a4
            420b65eed4696f7f50fe05fc948516650bfb9b65f953d848e3456965d0d76b627a84e35e9ddabd8b43f0fadaee458cdf
            59ebd773922e0ae507d5e64092e90ec67ed8439e8f221c753a9f9216f1cb85b5107bc7cc7c4fb2c3eed1afc709b192f5
            0de69c1ffca5650efb523b5fab5997cac4b7ef5af2bf5973e6293bae1fc1da499be5515077de4ddb3f7fbcd741711c62
            b7d803b8d054cf578182714d1c445bd692ba1b839a09e7266fc85daa8fad433dabbd206cde1ea571770c6bfa7956c266
            ee8435eb01caa6f583c0d83c33eefcf3f97db917bdb299f8a89fb8860ab1cd644c1e82cce1323a9eb79d25f5dc570b70
            b40bb20061743353d0536ecdabd82f2277756228cb54fe6932c4c9bd130d2bfc700bf5d85da6946e96f82e0afd8e9c20
            cfeabf9a6a189bb17bbef539d1d9e73ee966fcb5d6bdbf98444de865be1605e34087b34cdf04e3aff55bd4137c522d2e
            3c7bf2634db326b22a474db7f8a0952ab3510de555396c18a378a8390b73bff7772fb2760fa5786a3b0459c45a1d1b0d
            ff4cbbb65da0ed34f32116c3c2cc2b95825111bcfbb246c1505aa00c970d06d76cc950ce368b220db20487cba02bb1fc
            54b36567b42913d6b885062cd7795601d31a4a8e6d56467fa5c52162676fd526122513c3e47f2e6d9d6a19c4f8795431
            a94ced039221d27ac68a7a770e9305252271459b71d05505c4977b70e96851208bacdcdf7e682b3848840880f1fec2a3
            2fb1406862bc83cad89adf729f3ba6ffd3fe808e8403e7c6a0f6dcda3211898f6f16505b078cc78b80db600ded2f200f
            25ff5dcb31d32cbe2056b8bdc31091631abbd2ac28d61fe32480ec5035bbf35f173393f0d59a21d2300b2db4b59eaa63
            ffe0f93d65dc028516905f22a9c7dff387c4eb78c6300e7ebbb2a6663cfbe5a9977caf5764ba3f0aba57db4e6051e0ae
            c6e05b1bdaa649a97875edbc40bcc4214bb7fef72730d4368acbd3e10ab4c7642a1c53f93ca26db9c766555be26fdff0
            e2a721425b95762b0b776fd3e3eb17313d53129c9f34003c99a5196a8c6aacb6d64b51dd98b27c5b59a70bd941a1ba03
            00fb744cfc499d997e6d93392d28a767d116dfbc2cb9eb40540d11eb304ad9322386fdc597d55d3d1c67bc54df35479a
            fb19ea2cd204dd331efb49c1e172f6bb89fbf58207dcae6c12f8a7598bef1e872c0c35f22b4c29df10f9bb1add3aeb88
            7ab5fb38c036b88346f761c42f295dfe0b437dfb4f30a71276ab7d409ce424963f9ebb4f1f47e52b18786f279b5a8722
            6f66981dd6d0ad11f49af31055ff69710fda3457c4b7852db2e3936d0778bf879f1734ad3a24ffb1ae9584760b9cb045
            2a53ba0962ffe2f605af52830bd211a5488894cc0b052255048711cd198510a9e943bf8b839198455fbd41073005d303
            990b88d9b63656d43cfec8ed83748f4b0f0fc5120216794b22a054e5bc58abd8c41096070884393453ce509694afbeab
            e0
            """
    )

    @Test("ffmpeg's C1 carries a digest our server validates")
    func ffmpegPublisher() throws {
        let fixture = Self.ffmpegC0C1
        #expect(fixture.readableBytes == 1 + RTMPHandshake.packetSize)
        let c1 = fixture.getSlice(at: 1, length: RTMPHandshake.packetSize)!
        let digest = try #require(RTMPHandshake.findDigest(in: c1, signer: .client))
        #expect(digest.scheme == .offsetAt8)
        #expect(digest.offset == 494)

        var rng = SplitMix64(seed: 6)
        var server = StateMachine.server(using: &rng)
        var input = fixture
        let s0s1s2 = try #require(try server.bytesReceived(&input).written)
        #expect(server.peerDigestScheme == .offsetAt8)
        #expect(ffmpegPlayerAccepts(s0s1s2, c1: c1))

        // ffmpeg publishing answers a digest S1 with a plain echo (rtmpproto.c signs C2 only when playing).
        var c2 = s0s1s2.getSlice(at: 1, length: RTMPHandshake.packetSize)!
        #expect(try server.bytesReceived(&c2) == .complete(write: nil))
        #expect(server.peerResponseVerified)
    }

    // MARK: Digest arithmetic, against values computed with Python's hmac module

    /// A packet whose byte `i` is `i % 256`: the digest offsets are 50 (8 + 9 + 10 + 11 + 12) and 798.
    static let countingPacket = ByteBuffer(bytes: (0..<RTMPHandshake.packetSize).map { UInt8(truncatingIfNeeded: $0) })

    @Test(
        "digest offsets and digests match an independent implementation",
        arguments: [
            (
                RTMPHandshake.DigestScheme.offsetAt8, RTMPHandshake.Signer.client, 50,
                "db8e5fd0b081979a4ede294f09b382fa04d10f66b27d6de0438960458b0a6a21"
            ),
            (.offsetAt772, .client, 798, "685dc77a71d721bb669803c62594b26a055f9828d776e7caf3a998edf0d2e48b"),
            (.offsetAt8, .server, 50, "1e6d8834a583f4a091060316489d65c1a526e1a096f748ffc684ae3619b78895"),
            (.offsetAt772, .server, 798, "8155a83bf5d6f7dc63ada1ce50e1879be4863afb5e38839d6858d92de87a17a6"),
        ]
    )
    func knownDigests(scheme: RTMPHandshake.DigestScheme, signer: RTMPHandshake.Signer, offset: Int, hex: String) {
        var packet = Self.countingPacket
        #expect(scheme.digestOffset(in: packet) == offset)
        let digest = RTMPHandshake.imprintDigest(in: &packet, scheme: scheme, signer: signer)
        #expect(digest.offset == offset)
        #expect(ByteBuffer(bytes: digest.bytes) == ByteBuffer(hex: hex))
        #expect(packet.getBytes(at: offset, length: 32) == digest.bytes)
        #expect(RTMPHandshake.findDigest(in: packet, signer: signer) == digest)

        let other: RTMPHandshake.Signer = signer == .client ? .server : .client
        #expect(RTMPHandshake.findDigest(in: packet, signer: other) == nil, "the other side's key does not fit")
        packet.setInteger(packet.getInteger(at: 1000, as: UInt8.self)! ^ 1, at: 1000)
        #expect(RTMPHandshake.findDigest(in: packet, signer: signer) == nil, "one flipped bit breaks the digest")
    }

    @Test(
        "response signatures match an independent implementation",
        arguments: [
            (RTMPHandshake.Signer.client, "0dcee1e74377344a9e600df0670f2cb589b01ec09d5b204906b4b329ec892aa6"),
            (.server, "61afa12680b6baa47d2f7e75eacd62efdf3beb95d38ea8f2f6f68e162cc384c2"),
        ]
    )
    func knownResponseSignatures(responder: RTMPHandshake.Signer, hex: String) {
        let challengeDigest = [UInt8](0..<32)
        var packet = Self.countingPacket
        let signature = RTMPHandshake.responseSignature(
            of: packet,
            challengeDigest: challengeDigest,
            responder: responder
        )
        #expect(ByteBuffer(bytes: signature) == ByteBuffer(hex: hex))
        RTMPHandshake.signResponse(&packet, challengeDigest: challengeDigest, responder: responder)
        #expect(packet.getBytes(at: RTMPHandshake.signedResponseDataLength, length: 32) == signature)
        #expect(RTMPHandshake.isValidResponse(packet, challengeDigest: challengeDigest, responder: responder))
    }

    @Test("digest offsets stay inside the packet")
    func offsetBounds() {
        for scheme in RTMPHandshake.DigestScheme.allCases {
            for fill in [0x00, 0xFF] as [UInt8] {
                let packet = ByteBuffer(repeating: fill, count: RTMPHandshake.packetSize)
                let offset = scheme.digestOffset(in: packet)
                #expect(offset >= 12 && offset + 32 <= RTMPHandshake.packetSize)
            }
        }
    }
}

// MARK: - Helpers

/// The bytes each side wrote.
private struct Transcript: Equatable {
    var c0c1: ByteBuffer
    var s0s1s2: ByteBuffer
    var c2: ByteBuffer
}

/// Runs a whole handshake between two machines, delivering every packet in pieces of `pieceSize` bytes and
/// checking that each side waits until the last piece.
private func handshake(
    client: inout StateMachine,
    server: inout StateMachine,
    pieceSize: Int = .max,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> Transcript {
    #expect(server.start() == .wait, sourceLocation: sourceLocation)
    let c0c1 = try #require(client.start().written, sourceLocation: sourceLocation)
    #expect(c0c1.readableBytes == 1 + RTMPHandshake.packetSize, sourceLocation: sourceLocation)
    let s0s1s2 = try #require(try feed(c0c1, to: &server, pieceSize: pieceSize).written, sourceLocation: sourceLocation)
    #expect(s0s1s2.readableBytes == 1 + 2 * RTMPHandshake.packetSize, sourceLocation: sourceLocation)
    let c2 = try #require(
        try feed(s0s1s2, to: &client, pieceSize: pieceSize).completedWrite,
        sourceLocation: sourceLocation
    )
    #expect(c2.readableBytes == RTMPHandshake.packetSize, sourceLocation: sourceLocation)
    #expect(try feed(c2, to: &server, pieceSize: pieceSize) == .complete(write: nil), sourceLocation: sourceLocation)
    #expect(client.isComplete && server.isComplete, sourceLocation: sourceLocation)
    return Transcript(c0c1: c0c1, s0s1s2: s0s1s2, c2: c2)
}

/// Feeds `bytes` in pieces, expecting `.wait` for all but the last piece and every byte to be taken.
private func feed(
    _ bytes: ByteBuffer,
    to machine: inout StateMachine,
    pieceSize: Int
) throws -> StateMachine.Action {
    var remaining = bytes
    var action = StateMachine.Action.wait
    while remaining.readableBytes > 0 {
        #expect(action == .wait)
        var piece = remaining.readSlice(length: min(pieceSize, remaining.readableBytes))!
        action = try machine.bytesReceived(&piece)
        #expect(piece.readableBytes == 0)
    }
    return action
}

/// What ffmpeg's `rtmp_handshake` checks when it plays a stream: S0 is 3; if S1's first version byte is 3 or
/// more, S1 carries a Flash Media Server digest (offset at 772 tried first, then at 8), and S2 ends with
/// `HMAC(HMAC(full FMS key, C1's digest), S2[0..<1504])`.
private func ffmpegPlayerAccepts(_ s0s1s2: ByteBuffer, c1: ByteBuffer) -> Bool {
    guard s0s1s2.readableBytes == 1 + 2 * RTMPHandshake.packetSize, s0s1s2.getInteger(at: 0, as: UInt8.self) == 3
    else { return false }
    let s1 = s0s1s2.getSlice(at: 1, length: RTMPHandshake.packetSize)!
    let s2 = s0s1s2.getSlice(at: 1 + RTMPHandshake.packetSize, length: RTMPHandshake.packetSize)!
    guard s1.getInteger(at: 4, as: UInt8.self)! >= 3 else { return true }  // ffmpeg would echo without checking
    guard RTMPHandshake.findDigest(in: s1, signer: .server) != nil,
        let clientDigest = RTMPHandshake.findDigest(in: c1, signer: .client)
    else { return false }
    return RTMPHandshake.isValidResponse(s2, challengeDigest: clientDigest.bytes, responder: .server)
}

extension StateMachine.Action {
    fileprivate var written: ByteBuffer? {
        if case .write(let bytes) = self { bytes } else { nil }
    }

    fileprivate var completedWrite: ByteBuffer? {
        if case .complete(let bytes) = self { bytes } else { nil }
    }
}

/// A small seeded generator, so that handshakes are reproducible (SplitMix64, Steele et al., 2014).
private struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
