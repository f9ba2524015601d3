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

@Suite("PROXY protocol header")
struct ProxyHeaderTests {
    @Test("Written and read back for IPv4 and IPv6, with the bytes after it untouched")
    func roundTrip() throws {
        let cases = [
            (
                try SocketAddress(ipAddress: "203.0.113.9", port: 51234),
                try SocketAddress(ipAddress: "10.0.0.1", port: 1935)
            ),
            (
                try SocketAddress(ipAddress: "2001:db8::9", port: 443),
                try SocketAddress(ipAddress: "2001:db8::1", port: 31000)
            ),
        ]
        for (source, destination) in cases {
            let header = ProxyHeader(source: source, destination: destination)
            var buffer = ByteBuffer(string: header.line)
            buffer.writeBytes([0x03, 0x00])
            guard case .header(let read?, let length) = ProxyHeader.parse(buffer) else {
                Issue.record("not read back: \(header.line)")
                continue
            }
            #expect(read == header)
            #expect(length == header.line.utf8.count)
            #expect(length <= ProxyHeader.maxLength)
        }
        let v4 = ProxyHeader(
            source: try SocketAddress(ipAddress: "203.0.113.9", port: 51234),
            destination: try SocketAddress(ipAddress: "10.0.0.1", port: 1935)
        )
        #expect(v4.line == "PROXY TCP4 203.0.113.9 10.0.0.1 51234 1935\r\n")
    }

    @Test("Mixed address families are written as UNKNOWN, which a reader takes as no address")
    func unknown() throws {
        let mixed = ProxyHeader(
            source: try SocketAddress(ipAddress: "203.0.113.9", port: 1),
            destination: try SocketAddress(ipAddress: "::1", port: 2)
        )
        #expect(mixed.line == "PROXY UNKNOWN\r\n")
        #expect(ProxyHeader.parse(ByteBuffer(string: mixed.line)) == .header(nil, length: 15))
    }

    @Test(
        "What is not a whole header: more bytes needed, not a header at all, or malformed with the reason",
        arguments: [
            ("PRO", ProxyHeader.Parsed.needMoreBytes),
            ("PROXY TCP4 203.0.113.9 10.0.0.1 5", .needMoreBytes),
            ("PROXY TCP4 203.0.113.9 10.0.0.1 51234 1935\r", .needMoreBytes),
            ("\u{03}\u{00}\u{00}", .notAHeader),
            ("PROXX", .notAHeader),
            ("", .needMoreBytes),
        ]
    )
    func incomplete(text: String, expected: ProxyHeader.Parsed) {
        #expect(ProxyHeader.parse(ByteBuffer(string: text)) == expected)
    }

    @Test(
        "Malformed headers are refused, saying what is wrong",
        arguments: [
            ("PROXY TCP4 203.0.113.9 10.0.0.1 51234\r\n", "TCP4|TCP6"),
            ("PROXY UDP4 203.0.113.9 10.0.0.1 51234 1935\r\n", "TCP4|TCP6"),
            ("PROXY TCP4 203.0.113.9 10.0.0.1 99999 1935\r\n", "port"),
            ("PROXY TCP4 somewhere 10.0.0.1 51234 1935\r\n", "not an IP address"),
            ("PROXY TCP4 2001:db8::9 10.0.0.1 51234 1935\r\n", "not IPv4"),
            ("PROXY TCP4 203.0.113.9 10.0.0.1 51234 1935\rX", "line feed"),
            ("PROXY " + String(repeating: "x", count: 120), "107 bytes"),
        ]
    )
    func malformed(text: String, reason: String) {
        guard case .malformed(let said) = ProxyHeader.parse(ByteBuffer(string: text)) else {
            Issue.record("accepted: \(text)")
            return
        }
        #expect(said.contains(reason), "\(said)")
    }
}
