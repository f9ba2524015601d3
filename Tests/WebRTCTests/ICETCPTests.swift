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

import Logging
import NIOCore
import NIOPosix
import NIOTestUtils
import Testing

@testable import WebRTC

private func framed(_ bytes: [UInt8]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(UInt16(bytes.count))
    buffer.writeBytes(bytes)
    return buffer
}

@Suite struct RFC4571FrameDecoderTests {
    @Test func decodesDripFedAndCoalescedFrames() throws {
        let packets: [[UInt8]] = [rfc5769Request, [0x80, 96] + [UInt8](repeating: 7, count: 100), [22, 0xFE, 0xFD]]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: packets.map { (framed($0), [ByteBuffer(bytes: $0)]) },
            decoderFactory: { RFC4571FrameDecoder() }
        )
    }

    @Test func refusesOversizedFrames() {
        var decoder = RFC4571FrameDecoder(maximumFrameLength: 100)
        var buffer = framed([UInt8](repeating: 0, count: 101))
        #expect {
            try decoder.decode(buffer: &buffer)
        } throws: { ($0 as? WebRTCError)?.code == .limitExceeded }
    }
}

@Suite struct ICETCPTests {
    private static func connect(
        to address: SocketAddress
    ) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RFC4571FrameDecoder()))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// A check over ICE-TCP (RFC 6544) is answered over the same connection, framed, and nominates the session; a
    /// connection that sends no valid check is closed after the check timeout, and an oversized frame ends only its
    /// own connection.
    @Test(.timeLimit(.minutes(1)))
    func answersChecksOverTCP() async throws {
        var configuration = WebRTCTransportConfiguration(host: "127.0.0.1", port: 0)
        configuration.tcpPort = 0
        configuration.tcpCheckTimeout = .milliseconds(300)
        let transport = try await WebRTCTransport.bind(
            configuration: configuration,
            logger: Logger(label: "ice-tcp-test") { _ in SwiftLogNoOpLogHandler() }
        )
        do {
            let tcpAddress = try #require(transport.tcpLocalAddress)
            #expect(transport.candidates.map(\.transport) == [.udp, .tcp])
            let offered = try SessionDescription(
                parsing: try await transport.register(offer: browserOffer()).answer
            )
            #expect(
                offered.media[0].values("candidate").contains { $0.contains("TCP") && $0.hasSuffix("tcptype passive") }
            )

            // A stranger's connection that never checks is closed.
            let idle = try await Self.connect(to: tcpAddress)
            try await idle.executeThenClose { inbound, _ in
                for try await _ in inbound {}
            }

            // An oversized frame ends its connection.
            let flooding = try await Self.connect(to: tcpAddress)
            try await flooding.executeThenClose { inbound, outbound in
                var frame = ByteBuffer()
                frame.writeInteger(UInt16(60000))
                frame.writeBytes([UInt8](repeating: 0, count: 100))
                // The server may have closed it already (the check timeout, on a loaded machine): either way the
                // connection must end.
                do {
                    try await outbound.write(frame)
                } catch ChannelError.ioOnClosedChannel {}
                for try await _ in inbound {}
            }

            // The check itself on a transport that waits longer for it: on a loaded machine the test's write may
            // come later than 300 ms after the connection.
            var patient = configuration
            patient.tcpCheckTimeout = .seconds(30)
            let checked = try await WebRTCTransport.bind(
                configuration: patient,
                logger: Logger(label: "ice-tcp-test") { _ in SwiftLogNoOpLogHandler() }
            )
            do {
                try await Self.check(checked)
            } catch {
                await checked.close()
                throw error
            }
            await checked.close()
        } catch {
            await transport.close()
            throw error
        }
        await transport.close()
    }

    /// A valid check over a new ICE-TCP connection to `transport` is answered, framed, and nominates the session;
    /// closing the session closes the connection.
    private static func check(_ transport: WebRTCTransport) async throws {
        let session = try await transport.register(offer: browserOffer())
        let answer = try SessionDescription(parsing: session.answer)
        let fragment = try #require(answer.media.first?.value("ice-ufrag"))
        let password = try #require(answer.media.first?.value("ice-pwd"))
        let client = try await Self.connect(to: try #require(transport.tcpLocalAddress))
        try await client.executeThenClose { inbound, outbound in
            let transactionID = [UInt8](repeating: 3, count: 12)
            try await outbound.write(
                framed(
                    bindingRequest(
                        username: "\(fragment):Qx7b",
                        password: password,
                        useCandidate: true,
                        transactionID: transactionID
                    )
                )
            )
            var responses = inbound.makeAsyncIterator()
            let response = Array(try #require(try await responses.next()).readableBytesView)
            #expect(STUNMessage.integrityIsValid(in: response, password: password))
            let decoded = try STUNMessage.decode(response)
            #expect(decoded.messageClass == .successResponse)
            #expect(decoded.transactionID == transactionID)
            var events = session.events.makeAsyncIterator()
            let first = try await events.next()
            guard case .iceConnected = first else {
                Issue.record("expected ICE to connect, got \(String(describing: first))")
                return
            }
            // Closing the session closes its ICE-TCP connection.
            session.close()
            while try await responses.next() != nil {}
        }
    }
}
