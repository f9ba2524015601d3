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

@testable import Gateway

/// Records the reads that reach the head of a pipeline, so a test can see whether the glue let one through.
private final class ReadRecorder: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var reads = 0

    func read(context: ChannelHandlerContext) {
        self.reads += 1
        context.read()
    }
}

/// Records close modes. EmbeddedChannel closes fully whatever the mode, so an output close stops here.
private final class CloseRecorder: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var modes: [CloseMode] = []

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        self.modes.append(mode)
        if mode == .output {
            promise?.succeed(())
        } else {
            context.close(mode: mode, promise: promise)
        }
    }
}

@Suite("GlueHandler")
struct GlueHandlerTests {
    private struct Pair {
        let loop = EmbeddedEventLoop()
        let client: EmbeddedChannel
        let upstream: EmbeddedChannel
        let clientReads = ReadRecorder()
        let upstreamCloses = CloseRecorder()
        let bytesIn = GatewayAccounting.ByteMeter()
        let bytesOut = GatewayAccounting.ByteMeter()

        init() throws {
            self.client = EmbeddedChannel(loop: self.loop)
            self.upstream = EmbeddedChannel(loop: self.loop)
            let (clientGlue, upstreamGlue) = GlueHandler.matchedPair(inbound: self.bytesIn, outbound: self.bytesOut)
            try self.client.pipeline.syncOperations.addHandler(self.clientReads)
            try self.client.pipeline.syncOperations.addHandler(clientGlue)
            try self.upstream.pipeline.syncOperations.addHandler(self.upstreamCloses)
            try self.upstream.pipeline.syncOperations.addHandler(upstreamGlue)
            // An EmbeddedChannel is active only once connected.
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1935)
            try self.client.connect(to: address).wait()
            try self.upstream.connect(to: address).wait()
        }
    }

    @Test("Passes bytes across and counts them per direction")
    func passesBytes() throws {
        let pair = try Pair()
        try pair.client.writeInbound(ByteBuffer(string: "C0C1"))
        #expect(try pair.upstream.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "C0C1"))
        try pair.upstream.writeInbound(ByteBuffer(string: "S0S1S2"))
        #expect(try pair.client.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "S0S1S2"))
        #expect(pair.bytesIn.value == 4)
        #expect(pair.bytesOut.value == 6)
    }

    @Test("Holds back the client's reads while the upstream is not writable, and resumes them after")
    func backpressure() throws {
        let pair = try Pair()
        pair.client.read()
        #expect(pair.clientReads.reads == 1)

        pair.upstream.isWritable = false
        pair.upstream.pipeline.fireChannelWritabilityChanged()
        pair.client.read()
        #expect(pair.clientReads.reads == 1)

        pair.upstream.isWritable = true
        pair.upstream.pipeline.fireChannelWritabilityChanged()
        #expect(pair.clientReads.reads == 2)
    }

    @Test("End of input on one side closes only the other side's output; a full close closes both")
    func halfClose() throws {
        let pair = try Pair()
        pair.client.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(pair.upstreamCloses.modes == [.output])
        #expect(pair.client.isActive)
        // The relay's answer still reaches the client.
        try pair.upstream.writeInbound(ByteBuffer(string: "answer"))
        #expect(try pair.client.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "answer"))

        // The relay hangs up: the client is closed too.
        try pair.upstream.close().wait()
        #expect(!pair.client.isActive)
        #expect(pair.upstreamCloses.modes.first == .output)
    }

    @Test("One way: the relay's bytes go up its own pipeline, the client's to the relay, and the relay reads first")
    func oneWay() throws {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop)
        let upstream = EmbeddedChannel(loop: loop)
        let upstreamReads = ReadRecorder()
        let bytesIn = GatewayAccounting.ByteMeter()
        let bytesOut = GatewayAccounting.ByteMeter()
        let (clientGlue, upstreamGlue) = OneWayGlueHandler.matchedPair(inbound: bytesIn, outbound: bytesOut)
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1935)
        try upstream.pipeline.syncOperations.addHandler(upstreamReads)
        try upstream.pipeline.syncOperations.addHandler(upstreamGlue)
        try upstream.connect(to: address).wait()

        // The client's half is not in place yet: the relay's side reads anyway (the gateway's RTMP handshake with
        // the relay comes first), and what it reads goes on up the relay's pipeline.
        upstream.read()
        #expect(upstreamReads.reads == 1)
        try upstream.writeInbound(ByteBuffer(string: "S0S1S2"))
        #expect(try upstream.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "S0S1S2"))

        try client.pipeline.syncOperations.addHandler(clientGlue)
        try client.connect(to: address).wait()
        try client.writeInbound(ByteBuffer(string: "publish"))
        #expect(try upstream.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "publish"))
        try upstream.writeInbound(ByteBuffer(string: "onStatus"))
        #expect(try upstream.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "onStatus"))
        #expect(try client.readOutbound(as: ByteBuffer.self) == nil)
        #expect(bytesIn.value == 7)
        #expect(bytesOut.value == 14)

        // The relay hangs up: the client is closed too.
        try upstream.close().wait()
        #expect(!client.isActive)
    }
}
