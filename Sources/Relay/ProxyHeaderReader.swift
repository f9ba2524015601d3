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

import IngestNetworking
import NIOCore
import Synchronization

/// A connection's client: the peer's own address, or, behind a trusted proxy (the gateway), the one its PROXY
/// header names. What the logs, the stats and the publish webhook say.
final class ClientAddress: Sendable {
    private let peer: SocketAddress?
    private let proxied = Mutex<SocketAddress?>(nil)

    init(peer: SocketAddress?) {
        self.peer = peer
    }

    var address: SocketAddress? { self.proxied.withLock { $0 } ?? self.peer }

    fileprivate func proxied(_ address: SocketAddress) {
        self.proxied.withLock { $0 = address }
    }
}

/// The first handler of a connection from a trusted proxy (`--proxy-protocol-from`): reads a PROXY protocol version
/// 1 header if the connection starts with one (``ProxyHeader``), records the client it names, and leaves the
/// pipeline. A connection that starts with anything else passes untouched: a trusted host may also publish
/// directly. A malformed header closes the connection with the reason.
///
/// Only connections from the trusted ranges get this handler, so nobody else can claim another address: their
/// `PROXY` would be read as an RTMP version byte and fail the handshake.
final class ProxyHeaderReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    struct Malformed: Error, CustomStringConvertible {
        var reason: String
        var description: String { "malformed PROXY protocol header: \(self.reason)" }
    }

    private let client: ClientAddress
    private var buffered: ByteBuffer?
    private var done = false

    init(client: ClientAddress) {
        self.client = client
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.done else {
            context.fireChannelRead(data)
            return
        }
        var buffer = Self.unwrapInboundIn(data)
        if var pending = self.buffered.take() {
            pending.writeBuffer(&buffer)
            buffer = pending
        }
        switch ProxyHeader.parse(buffer) {
        case .needMoreBytes:
            // At most 107 bytes: the parser says malformed past that.
            self.buffered = buffer
            return
        case .notAHeader:
            break
        case .header(let header, let length):
            if let header {
                self.client.proxied(header.source)
            }
            buffer.moveReaderIndex(forwardBy: length)
        case .malformed(let reason):
            self.done = true
            context.fireErrorCaught(Malformed(reason: reason))
            context.close(promise: nil)
            return
        }
        self.done = true
        if buffer.readableBytes > 0 {
            context.fireChannelRead(Self.wrapInboundOut(buffer))
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension ProxyHeaderReader: Sendable {}
