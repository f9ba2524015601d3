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
import PeerTestSupport
import Testing

@testable import WebRTC

/// What the DTLS server saw once the handshake completed.
private struct HandshakeResult: Sendable {
    var peerFingerprint: [UInt8]?
    var keys: SRTPKeyingMaterial
    var wrongFingerprintRefused: Bool
    /// What each of ``DTLSGarbage/records`` did once the handshake was done.
    var afterGarbage: [String] = []
    var finishedAfterGarbage = false
}

/// A UDP socket that runs one ``DTLSServerConnection`` for whichever peer writes first: the DTLS wrapper alone,
/// with no ICE in front.
private final class DTLSEchoHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let connection: DTLSServerConnection
    let done: EventLoopPromise<HandshakeResult>
    var timer: Scheduled<Void>?

    init(connection: DTLSServerConnection, done: EventLoopPromise<HandshakeResult>) {
        self.connection = connection
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = self.unwrapInboundIn(data)
        do {
            let event = try self.connection.receive(Array(envelope.data.readableBytesView))
            self.flush(context: context, to: envelope.remoteAddress)
            if event == .handshakeCompleted {
                var refused = false
                do { try self.connection.verifyPeer(fingerprint: [UInt8](repeating: 0, count: 32)) } catch {
                    refused = error.code == .fingerprintMismatch
                }
                var result = HandshakeResult(
                    peerFingerprint: self.connection.peerFingerprint,
                    keys: try self.connection.exportSRTPKeyingMaterial(),
                    wrongFingerprintRefused: refused
                )
                for datagram in DTLSGarbage.records {
                    do {
                        result.afterGarbage.append("\(try self.connection.receive(datagram))")
                    } catch {
                        result.afterGarbage.append("\(error)")
                    }
                }
                result.finishedAfterGarbage = self.connection.isFinished
                self.done.succeed(result)
            }
        } catch {
            self.done.fail(error)
        }
    }

    private func flush(context: ChannelHandlerContext, to address: SocketAddress) {
        for datagram in self.connection.outgoingDatagrams() {
            let buffer = context.channel.allocator.buffer(bytes: datagram)
            context.writeAndFlush(
                self.wrapOutboundOut(AddressedEnvelope(remoteAddress: address, data: buffer)),
                promise: nil
            )
        }
        self.timer?.cancel()
        if let timeout = self.connection.nextTimeout {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            self.timer = context.eventLoop.scheduleTask(in: timeout) {
                let (handler, context) = bound.value
                try? handler.connection.handleTimeout()
                handler.flush(context: context, to: address)
            }
        }
    }
}

@Suite struct DTLSTests {
    @Test func certificateHasAStableFingerprint() throws {
        let certificate = try DTLSCertificate.generate()
        #expect(certificate.fingerprint.count == 32)
        #expect(certificate.fingerprintText.split(separator: ":").count == 32)
        let other = try DTLSCertificate.generate()
        #expect(other.fingerprint != certificate.fingerprint)
    }

    @Test func refusesGarbageAsAHandshake() throws {
        let context = try DTLSServerContext(certificate: try DTLSCertificate.generate())
        let connection = try DTLSServerConnection(context: context)
        // A DTLS record header with a nonsense handshake: OpenSSL drops it or fails; it must not crash, and nothing
        // is sent.
        var garbage: [UInt8] = [22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20]
        garbage += [UInt8](repeating: 0xEE, count: 20)
        _ = try? connection.receive(garbage)
        _ = try? connection.receive([23, 0xFE, 0xFD])
        #expect(!connection.isEstablished)
        #expect(throws: WebRTCError.self) { try connection.exportSRTPKeyingMaterial() }
    }

    /// `openssl s_client -dtls1_2 -use_srtp` against our DTLS server: the handshake completes, the profile is the one
    /// asked for, the peer's certificate is the one on its command line, and both sides export the same SRTP keys.
    /// Then records the peer did not send (``DTLSGarbage``) are dropped without ending the association.
    @Test(.timeLimit(.minutes(1)), arguments: [SRTPProfile.aes128CMSHA1_80, .aeadAES128GCM])
    func handshakesWithOpenSSLClient(profile: SRTPProfile) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "liverelay-dtls-\(UInt64.random(in: 0...UInt64.max))"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificatePath = "\(directory)/client.pem"
        let keyPath = "\(directory)/client.key"
        try await withRunningProcess(
            "openssl",
            arguments: [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", "/CN=whip-test-client", "-keyout", keyPath, "-out", certificatePath,
            ]
        ) { process in
            let exit = await process.waitForExit()
            try #require(exit.succeeded, "openssl req: \(exit)")
        }
        let clientCertificate = try DTLSCertificate.load(
            certificatePEM: try String(contentsOfFile: certificatePath, encoding: .utf8),
            privateKeyPEM: try String(contentsOfFile: keyPath, encoding: .utf8)
        )

        let context = try DTLSServerContext(certificate: try DTLSCertificate.generate(), profiles: [profile])
        let group = MultiThreadedEventLoopGroup.singleton
        let done = group.next().makePromise(of: HandshakeResult.self)
        let channel = try await DatagramBootstrap(group: done.futureResult.eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        DTLSEchoHandler(connection: try DTLSServerConnection(context: context), done: done)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        defer {
            done.fail(WebRTCError(code: .sessionClosed, message: "the test ended"))
            channel.close(promise: nil)
        }
        let port = try #require(channel.localAddress?.port)

        let keyLength = 2 * (profile.keyLength + profile.saltLength)
        try await withRunningProcess(
            "openssl",
            arguments: [
                "s_client", "-dtls1_2", "-use_srtp", profile.openSSLName, "-connect", "127.0.0.1:\(port)",
                "-cert", certificatePath, "-key", keyPath, "-keymatexport", "EXTRACTOR-dtls_srtp",
                "-keymatexportlen", "\(keyLength)", "-ign_eof",
            ],
            standardOutput: .capture(limit: 256 * 1024)
        ) { process in
            let result = try await done.futureResult.get()
            #expect(result.peerFingerprint == clientCertificate.fingerprint)
            #expect(result.wrongFingerprintRefused)
            // Records no peer with the keys sent, from its address (a spoofer's): dropped, the association stays.
            #expect(result.afterGarbage == Array(repeating: "none", count: DTLSGarbage.records.count))
            #expect(!result.finishedAfterGarbage)
            #expect(result.keys.profile == profile)
            // s_client prints the keying material once the handshake is done; wait for it, then compare without
            // printing keys.
            #expect(await process.waitForOutput(containing: "Keying material:", timeout: .seconds(20)))
            let output = process.standardOutputSoFar
            #expect(output.contains("SRTP Extension negotiated, profile=\(profile.openSSLName)"))
            let line = output.split(separator: "\n").first { $0.contains("Keying material:") }
            let theirs = line.map { hex(String($0.split(separator: ":").last ?? "")) } ?? []
            let k = profile.keyLength
            let ours =
                Array(result.keys.clientKeyAndSalt[..<k]) + Array(result.keys.serverKeyAndSalt[..<k])
                + Array(result.keys.clientKeyAndSalt[k...]) + Array(result.keys.serverKeyAndSalt[k...])
            let same = theirs == ours
            #expect(same, "the keys OpenSSL's client exported differ from ours")
        }
    }
}

/// DTLS 1.2 records (RFC 6347 §4.1) that pass RFC 7983's first-byte demultiplexing as DTLS but that the peer of an
/// established association did not send: application data and a handshake message of epoch 1 with a MAC that does not
/// verify, plaintext alerts (a fatal handshake_failure) of epoch 0 and 1, a ClientHello-shaped record of epoch 0, a
/// ChangeCipherSpec, a length beyond the datagram, a content type no one defines, a truncated header. RFC 6347
/// §4.1.2.7: invalid records are discarded.
enum DTLSGarbage {
    static let records: [[UInt8]] = [
        [23, 254, 253, 0, 1, 0, 0, 0, 0, 0, 9, 0, 16] + [UInt8](repeating: 7, count: 16),
        [21, 254, 253, 0, 0, 0, 0, 0, 0, 0, 9, 0, 2, 2, 40],
        [21, 254, 253, 0, 1, 0, 0, 0, 0, 0, 10, 0, 2, 2, 40],
        [22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 11, 0, 12, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [22, 254, 253, 0, 1, 0, 0, 0, 0, 0, 12, 0, 40] + [UInt8](repeating: 9, count: 40),
        [20, 254, 253, 0, 1, 0, 0, 0, 0, 0, 13, 0, 1, 1],
        [23, 254, 253, 0, 1, 0, 0, 0, 0, 0, 14, 255, 255, 1, 2, 3],
        [63] + [UInt8](repeating: 0, count: 60),
        [23, 1, 1, 0, 1],
    ]
}
