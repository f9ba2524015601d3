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

public import NIOCore

/// The RTMP handshake of one connection, server or client side, as a pure state machine.
///
/// The machine owns no socket, clock or random source: bytes go in through ``bytesReceived(_:)``, bytes to send
/// come out as ``Action``s, the time field of C1/S1 is a parameter, and the random bytes are drawn from a generator
/// once, when the machine is made. That makes every handshake reproducible in tests.
///
/// Server side (``server(epoch:allocator:)``):
/// 1. C0+C1 (1537 bytes) arrive. C0 must be 3. If C1 carries a valid Flash Player digest (either
///    ``RTMPHandshake/DigestScheme``), the server answers in the digest form, signed in the client's scheme;
///    otherwise in the plain form, with S2 an echo of C1. The action is ``Action/write(_:)`` of S0+S1+S2.
/// 2. C2 (1536 bytes) arrives and the handshake is complete. C2 is read but never rejected; see
///    ``peerResponseVerified``.
///
/// Client side (``client(epoch:digestScheme:allocator:)``):
/// 1. ``start()`` returns C0+C1, in the digest form unless told otherwise.
/// 2. S0+S1+S2 (3073 bytes) arrive. S0 must be 3. If S1 carries a valid Flash Media Server digest, C2 is signed
///    from it; otherwise C2 echoes S1. The action is ``Action/complete(write:)`` of C2.
///
/// ``bytesReceived(_:)`` takes exactly the bytes the handshake needs and leaves the rest in the buffer: a peer may
/// send its first chunks in the same segment as C2 or S2, and those belong to the chunk decoder. Bytes may also
/// arrive one at a time; the machine collects them (never more than 1536 at once).
public struct RTMPHandshakeStateMachine: Sendable {
    /// What the owner of the connection has to do next.
    public enum Action: Hashable, Sendable {
        /// Read more bytes and call ``RTMPHandshakeStateMachine/bytesReceived(_:)`` again.
        case wait
        /// Write these bytes to the peer, then keep reading.
        case write(ByteBuffer)
        /// The handshake is complete: write these bytes, if any, then hand the connection (and whatever is left in
        /// the buffer) to the chunk decoder.
        case complete(write: ByteBuffer?)
    }

    /// Our own C1 or S1, kept to check the peer's C2 or S2 against.
    private struct Challenge: Sendable {
        var packet: ByteBuffer
        /// The digest we imprinted, or `nil` if we sent the plain form.
        var digest: [UInt8]?
    }

    /// Collects one handshake packet across reads.
    private struct PartialPacket: Sendable {
        private var collected = ByteBuffer()
        private let count: Int

        init(count: Int = RTMPHandshake.packetSize) {
            self.count = count
        }

        /// Moves up to the missing number of bytes out of `buffer`; returns the packet once it is whole.
        mutating func take(from buffer: inout ByteBuffer) -> ByteBuffer? {
            if self.collected.readableBytes == 0, buffer.readableBytes >= self.count {
                // The common case: the whole packet is in one read, so slice it without copying.
                return buffer.readSlice(length: self.count)!
            }
            let missing = self.count - self.collected.readableBytes
            var bytes = buffer.readSlice(length: min(missing, buffer.readableBytes))!
            if self.collected.capacity == 0 {
                self.collected.reserveCapacity(self.count)
            }
            self.collected.writeBuffer(&bytes)
            return self.collected.readableBytes == self.count ? self.collected : nil
        }
    }

    private enum State: Sendable, CustomStringConvertible {
        case serverAwaitingC0
        case serverAwaitingC1(PartialPacket)
        case serverAwaitingC2(PartialPacket, sent: Challenge)
        case clientInitial
        case clientAwaitingS0(sent: Challenge)
        case clientAwaitingS1(PartialPacket, sent: Challenge)
        case clientAwaitingS2(PartialPacket, sent: Challenge, c2: ByteBuffer)
        case complete
        case failed(RTMPError)
        /// Held only while a case's payload is being mutated, so that it is not copied on write.
        case modifying

        // A name without the payload: the payload holds up to 1.5 KiB of random bytes.
        var description: String {
            switch self {
            case .serverAwaitingC0: "serverAwaitingC0"
            case .serverAwaitingC1: "serverAwaitingC1"
            case .serverAwaitingC2: "serverAwaitingC2"
            case .clientInitial: "clientInitial"
            case .clientAwaitingS0: "clientAwaitingS0"
            case .clientAwaitingS1: "clientAwaitingS1"
            case .clientAwaitingS2: "clientAwaitingS2"
            case .complete: "complete"
            case .failed(let error): "failed(\(error))"
            case .modifying: "modifying"
            }
        }
    }

    /// The result of one step of ``bytesReceived(_:)``.
    private enum Step {
        case needMoreData
        case advanced(write: ByteBuffer?)
        case complete(write: ByteBuffer?)
    }

    /// Random bytes for our C1/S1 (1528) and our signed C2/S2 (1504), drawn when the machine is made.
    private static let randomByteCount = 2 * RTMPHandshake.packetSize - 8 - RTMPHandshake.digestLength

    private var state: State
    private let epoch: UInt32
    private let clientDigestScheme: RTMPHandshake.DigestScheme?
    private let allocator: ByteBufferAllocator
    private var randomBytes: ByteBuffer

    /// The scheme of the peer's digest, or `nil` if the peer used the plain handshake (or has not sent C1/S1
    /// yet). For logs and tests.
    public private(set) var peerDigestScheme: RTMPHandshake.DigestScheme?

    /// Whether the peer's C1/S1 carried a valid digest, so that we answered (server) or signed (client) in the
    /// digest form.
    public var peerUsedDigest: Bool { self.peerDigestScheme != nil }

    /// Whether the peer's C2/S2 answered our challenge: signed from our digest, or echoing the random part of our
    /// C1/S1. `false` until the handshake is complete.
    ///
    /// This is informational only; a mismatch never fails the handshake. ffmpeg publishing to a digest server
    /// answers with an unsigned echo of S1, Flash-era clients and servers put their own time into bytes 4..<8, and
    /// nginx-rtmp never checks C2. Rejecting such peers would gain no security (the keys are public) and break
    /// real encoders.
    public private(set) var peerResponseVerified = false

    /// Whether the handshake has completed.
    public var isComplete: Bool {
        if case .complete = self.state { return true }
        return false
    }

    private init(
        state: State,
        epoch: UInt32,
        clientDigestScheme: RTMPHandshake.DigestScheme?,
        allocator: ByteBufferAllocator,
        generator: inout some RandomNumberGenerator
    ) {
        self.state = state
        self.epoch = epoch
        self.clientDigestScheme = clientDigestScheme
        self.allocator = allocator
        var randomBytes = allocator.buffer(capacity: Self.randomByteCount)
        for _ in 0..<(Self.randomByteCount / 8) {
            randomBytes.writeInteger(generator.next() as UInt64)
        }
        self.randomBytes = randomBytes
    }

    /// A server-side handshake, with random bytes from the system's generator.
    ///
    /// - Parameters:
    ///   - epoch: The time field of S1: milliseconds since an epoch of the caller's choosing. Peers use it only
    ///     as a reference for later timestamps; 0 is common.
    ///   - allocator: Allocates the buffers to write.
    public static func server(epoch: UInt32 = 0, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> Self {
        var generator = SystemRandomNumberGenerator()
        return Self.server(epoch: epoch, allocator: allocator, using: &generator)
    }

    /// A server-side handshake, with random bytes from `generator` (for reproducible tests).
    public static func server(
        epoch: UInt32 = 0,
        allocator: ByteBufferAllocator = ByteBufferAllocator(),
        using generator: inout some RandomNumberGenerator
    ) -> Self {
        Self(
            state: .serverAwaitingC0,
            epoch: epoch,
            clientDigestScheme: nil,
            allocator: allocator,
            generator: &generator
        )
    }

    /// A client-side handshake, with random bytes from the system's generator.
    ///
    /// - Parameters:
    ///   - epoch: The time field of C1: milliseconds since an epoch of the caller's choosing; ffmpeg sends 0.
    ///   - digestScheme: Where to put the digest in C1, as ffmpeg does (``RTMPHandshake/DigestScheme/offsetAt8``),
    ///     or `nil` for a plain C1 with a zero version. Servers that know the digest form (nginx-rtmp, SRS, FMS and
    ///     the big ingest services) answer a digest C1 in kind, and plain servers ignore the digest.
    ///   - allocator: Allocates the buffers to write.
    public static func client(
        epoch: UInt32 = 0,
        digestScheme: RTMPHandshake.DigestScheme? = .offsetAt8,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> Self {
        var generator = SystemRandomNumberGenerator()
        return Self.client(epoch: epoch, digestScheme: digestScheme, allocator: allocator, using: &generator)
    }

    /// A client-side handshake, with random bytes from `generator` (for reproducible tests).
    public static func client(
        epoch: UInt32 = 0,
        digestScheme: RTMPHandshake.DigestScheme? = .offsetAt8,
        allocator: ByteBufferAllocator = ByteBufferAllocator(),
        using generator: inout some RandomNumberGenerator
    ) -> Self {
        Self(
            state: .clientInitial,
            epoch: epoch,
            clientDigestScheme: digestScheme,
            allocator: allocator,
            generator: &generator
        )
    }

    /// Starts the handshake when the connection is up.
    ///
    /// - Returns: For a client, ``Action/write(_:)`` of C0+C1; for a server, ``Action/wait``.
    public mutating func start() -> Action {
        switch self.state {
        case .serverAwaitingC0:
            return .wait

        case .clientInitial:
            let c1 = self.makeChallenge(
                version: self.clientDigestScheme == nil ? 0 : RTMPHandshake.clientVersion,
                digestScheme: self.clientDigestScheme,
                signer: .client
            )
            var out = self.allocator.buffer(capacity: 1 + RTMPHandshake.packetSize)
            out.writeInteger(RTMPHandshake.version)
            out.writeImmutableBuffer(c1.packet)
            self.state = .clientAwaitingS0(sent: c1)
            return .write(out)

        case .serverAwaitingC1, .serverAwaitingC2, .clientAwaitingS0, .clientAwaitingS1, .clientAwaitingS2,
            .complete, .failed, .modifying:
            preconditionFailure("Invalid state: \(self.state)")
        }
    }

    /// Feeds bytes read from the peer.
    ///
    /// Reads only what the handshake needs; anything after C2 (server) or S2 (client) stays in `buffer`. Once a
    /// call has thrown, every later call throws the same error.
    ///
    /// - Throws: ``RTMPError`` with code ``RTMPError/Code/unsupportedVersion`` if C0/S0 is not 3 (RTMPE's 6
    ///   included).
    public mutating func bytesReceived(_ buffer: inout ByteBuffer) throws -> Action {
        var pendingWrite: ByteBuffer?
        while true {
            let step: Step
            do {
                step = try self.step(&buffer)
            } catch {
                self.state = .failed(error)
                throw error
            }
            switch step {
            case .needMoreData:
                return pendingWrite.map { .write($0) } ?? .wait
            case .advanced(let write):
                pendingWrite = Self.concatenate(pendingWrite, write)
            case .complete(let write):
                return .complete(write: Self.concatenate(pendingWrite, write))
            }
        }
    }

    private mutating func step(_ buffer: inout ByteBuffer) throws(RTMPError) -> Step {
        switch self.state {
        case .serverAwaitingC0:
            // Checked on its own, before C1 arrives, so that a TLS ClientHello or an HTTP request fails at once.
            guard let version = buffer.readInteger(as: UInt8.self) else { return .needMoreData }
            try Self.checkVersion(version)
            self.state = .serverAwaitingC1(PartialPacket())
            return .advanced(write: nil)

        case .serverAwaitingC1(var partial):
            self.state = .modifying
            guard let c1 = partial.take(from: &buffer) else {
                self.state = .serverAwaitingC1(partial)
                return .needMoreData
            }
            let (s0s1s2, s1) = self.respond(toC1: c1)
            self.state = .serverAwaitingC2(PartialPacket(), sent: s1)
            return .advanced(write: s0s1s2)

        case .serverAwaitingC2(var partial, let s1):
            self.state = .modifying
            guard let c2 = partial.take(from: &buffer) else {
                self.state = .serverAwaitingC2(partial, sent: s1)
                return .needMoreData
            }
            self.peerResponseVerified = Self.answers(c2, challenge: s1, responder: .client)
            self.state = .complete
            return .complete(write: nil)

        case .clientAwaitingS0(let c1):
            guard let version = buffer.readInteger(as: UInt8.self) else { return .needMoreData }
            try Self.checkVersion(version)
            self.state = .clientAwaitingS1(PartialPacket(), sent: c1)
            return .advanced(write: nil)

        case .clientAwaitingS1(var partial, let c1):
            self.state = .modifying
            guard let s1 = partial.take(from: &buffer) else {
                self.state = .clientAwaitingS1(partial, sent: c1)
                return .needMoreData
            }
            let c2 = self.respond(toS1: s1)
            self.state = .clientAwaitingS2(PartialPacket(), sent: c1, c2: c2)
            return .advanced(write: nil)

        case .clientAwaitingS2(var partial, let c1, let c2):
            self.state = .modifying
            guard let s2 = partial.take(from: &buffer) else {
                self.state = .clientAwaitingS2(partial, sent: c1, c2: c2)
                return .needMoreData
            }
            self.peerResponseVerified = Self.answers(s2, challenge: c1, responder: .server)
            self.state = .complete
            // We send C2 only after S2, as ffmpeg and nginx-rtmp do: some servers read C2 only after writing S2.
            return .complete(write: c2)

        case .failed(let error):
            throw error

        case .clientInitial, .complete, .modifying:
            preconditionFailure("Invalid state: \(self.state)")
        }
    }

    /// Builds S0+S1+S2 for `c1`, and returns them with the S1 that C2 should answer.
    private mutating func respond(toC1 c1: ByteBuffer) -> (ByteBuffer, Challenge) {
        // A zero version means a plain client (RTMP 1.0 section 5.2.3); nginx-rtmp does not look for a digest then
        // either. Otherwise the client tells us its scheme only by the digest being valid in it.
        let clientVersion = c1.getInteger(at: c1.readerIndex + 4, as: UInt32.self)!
        let clientDigest = clientVersion == 0 ? nil : RTMPHandshake.findDigest(in: c1, signer: .client)
        self.peerDigestScheme = clientDigest?.scheme

        let s1: Challenge
        let s2: ByteBuffer
        if let clientDigest {
            // Answer in the client's scheme: ffmpeg and librtmp try both on S1, but Flash Player looked only in its
            // own. (nginx-rtmp always uses the offset at 8.)
            s1 = self.makeChallenge(
                version: RTMPHandshake.serverVersion,
                digestScheme: clientDigest.scheme,
                signer: .server
            )
            s2 = self.makeSignedResponse(challengeDigest: clientDigest.bytes, responder: .server)
        } else {
            s1 = self.makeChallenge(version: 0, digestScheme: nil, signer: .server)
            s2 = c1
        }

        var out = self.allocator.buffer(capacity: 1 + 2 * RTMPHandshake.packetSize)
        out.writeInteger(RTMPHandshake.version)
        out.writeImmutableBuffer(s1.packet)
        out.writeImmutableBuffer(s2)
        return (out, s1)
    }

    /// Builds the C2 that answers `s1`.
    private mutating func respond(toS1 s1: ByteBuffer) -> ByteBuffer {
        // Like nginx-rtmp, we look for a digest whenever the version is nonzero (ffmpeg only when its first byte is
        // 3 or more). A signed C2 costs nothing with a server that does not check it.
        let serverVersion = s1.getInteger(at: s1.readerIndex + 4, as: UInt32.self)!
        let serverDigest = serverVersion == 0 ? nil : RTMPHandshake.findDigest(in: s1, signer: .server)
        self.peerDigestScheme = serverDigest?.scheme
        guard let serverDigest else {
            // A plain server expects C2 to echo S1.
            return s1
        }
        return self.makeSignedResponse(challengeDigest: serverDigest.bytes, responder: .client)
    }

    /// Builds our C1 or S1: time, version, random bytes and, if `digestScheme` is set, the digest.
    private mutating func makeChallenge(
        version: UInt32,
        digestScheme: RTMPHandshake.DigestScheme?,
        signer: RTMPHandshake.Signer
    ) -> Challenge {
        var packet = self.allocator.buffer(capacity: RTMPHandshake.packetSize)
        packet.writeInteger(self.epoch)
        packet.writeInteger(version)
        packet.writeImmutableBuffer(self.randomBytes.readSlice(length: RTMPHandshake.packetSize - 8)!)
        guard let digestScheme else {
            return Challenge(packet: packet, digest: nil)
        }
        let digest = RTMPHandshake.imprintDigest(in: &packet, scheme: digestScheme, signer: signer)
        return Challenge(packet: packet, digest: digest.bytes)
    }

    /// Builds a digest-form C2 or S2: random bytes, then the signature derived from the peer's digest.
    private mutating func makeSignedResponse(
        challengeDigest: [UInt8],
        responder: RTMPHandshake.Signer
    ) -> ByteBuffer {
        var packet = self.allocator.buffer(capacity: RTMPHandshake.packetSize)
        packet.writeImmutableBuffer(self.randomBytes.readSlice(length: RTMPHandshake.signedResponseDataLength)!)
        packet.writeRepeatingByte(0, count: RTMPHandshake.digestLength)
        RTMPHandshake.signResponse(&packet, challengeDigest: challengeDigest, responder: responder)
        return packet
    }

    /// Whether `response` (the peer's C2/S2) answers `challenge` (our C1/S1), signed or echoed.
    private static func answers(
        _ response: ByteBuffer,
        challenge: Challenge,
        responder: RTMPHandshake.Signer
    ) -> Bool {
        if let digest = challenge.digest,
            RTMPHandshake.isValidResponse(response, challengeDigest: digest, responder: responder)
        {
            return true
        }
        // An echo: compare the random part only. Bytes 0..<8 may carry the peer's own times (RTMP 1.0 section
        // 5.2.6, "time2"), and ffmpeg's server compares from byte 8 as well.
        let randomLength = RTMPHandshake.packetSize - 8
        return response.getSlice(at: response.readerIndex + 8, length: randomLength)
            == challenge.packet.getSlice(at: challenge.packet.readerIndex + 8, length: randomLength)
    }

    private static func checkVersion(_ version: UInt8) throws(RTMPError) {
        // 6 (and 8, 9) would be RTMPE, Adobe's encrypted variant; relays use RTMPS instead and so do we.
        guard version == RTMPHandshake.version else {
            throw RTMPError.unsupportedVersion(version)
        }
    }

    private static func concatenate(_ first: ByteBuffer?, _ second: ByteBuffer?) -> ByteBuffer? {
        guard var first else { return second }
        guard var second else { return first }
        first.writeBuffer(&second)
        return first
    }
}
