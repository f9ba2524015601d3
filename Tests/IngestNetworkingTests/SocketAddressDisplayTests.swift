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
import Testing

@Suite("SocketAddress.displayed")
struct SocketAddressDisplayTests {
    @Test(
        "Writes an address as host:port, IPv6 in brackets, without NIO's family prefix",
        arguments: [
            ("192.0.2.7", 51234, "192.0.2.7:51234"),
            ("127.0.0.1", 1935, "127.0.0.1:1935"),
            ("2001:db8::7", 443, "[2001:db8::7]:443"),
            ("::1", 8080, "[::1]:8080"),
        ]
    )
    func hostAndPort(ip: String, port: Int, expected: String) throws {
        let address = try SocketAddress(ipAddress: ip, port: port)
        #expect(address.displayed == expected)
        #expect("\(address)" != expected, "NIO's own description differs, or this helper would not be needed")
    }

    @Test("A missing address reads as ?, a UNIX socket as its path")
    func others() throws {
        let none: SocketAddress? = nil
        #expect(none.displayed == "?")
        let socket = try SocketAddress(unixDomainSocketPath: "/run/liverelay.sock")
        #expect(socket.displayed == "/run/liverelay.sock")
    }
}
