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

@testable import Relay

@Suite("PROXY header reader")
struct ProxyHeaderReaderTests {
    private let gateway = try! SocketAddress(ipAddress: "127.0.0.1", port: 40000)

    /// A channel from the gateway with the reader in front, as the relay sets it up for a trusted peer.
    private func channel() throws -> (EmbeddedChannel, ClientAddress) {
        let client = ClientAddress(peer: self.gateway)
        let channel = EmbeddedChannel(handler: ProxyHeaderReader(client: client))
        return (channel, client)
    }

    private func readAll(_ channel: EmbeddedChannel) throws -> String {
        var all = ByteBuffer()
        while var next = try channel.readInbound(as: ByteBuffer.self) {
            all.writeBuffer(&next)
        }
        return String(buffer: all)
    }

    @Test("A header cut across reads names the client; the bytes after it pass on, and the reader leaves")
    func headerAcrossReads() throws {
        let (channel, client) = try self.channel()
        try channel.writeInbound(ByteBuffer(string: "PROXY TCP4 203.0.113.9 10.0."))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        #expect(client.address == self.gateway)
        try channel.writeInbound(ByteBuffer(string: "0.1 51234 1935\r\nrtmp"))
        #expect(try self.readAll(channel) == "rtmp")
        #expect(client.address == (try SocketAddress(ipAddress: "203.0.113.9", port: 51234)))
        #expect(throws: ChannelPipelineError.self) {
            try channel.pipeline.syncOperations.handler(type: ProxyHeaderReader.self)
        }
        try channel.writeInbound(ByteBuffer(string: "PROXY TCP4 192.0.2.1 10.0.0.1 1 2\r\n"))
        #expect(try self.readAll(channel) == "PROXY TCP4 192.0.2.1 10.0.0.1 1 2\r\n", "a second header is data")
        #expect(try channel.finish().isClean)
    }

    @Test("A connection that starts without a header passes untouched, with the peer's own address")
    func noHeader() throws {
        let (channel, client) = try self.channel()
        try channel.writeInbound(ByteBuffer(bytes: [0x03, 0x01, 0x02]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: [0x03, 0x01, 0x02]))
        #expect(client.address == self.gateway)
        #expect(try channel.finish().isClean)
    }

    @Test("PROXY UNKNOWN keeps the peer's own address")
    func unknown() throws {
        let (channel, client) = try self.channel()
        try channel.writeInbound(ByteBuffer(string: "PROXY UNKNOWN\r\n\u{03}"))
        #expect(try self.readAll(channel) == "\u{03}")
        #expect(client.address == self.gateway)
    }

    @Test("A malformed header closes the connection with the reason, and passes nothing on")
    func malformed() throws {
        let (channel, client) = try self.channel()
        #expect {
            try channel.writeInbound(ByteBuffer(string: "PROXY TCP4 nowhere 10.0.0.1 1 2\r\n\u{03}"))
        } throws: { error in
            "\(error)".contains("malformed PROXY protocol header") && "\(error)".contains("not an IP address")
        }
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        #expect(!channel.isActive)
        #expect(client.address == self.gateway)
    }
}
