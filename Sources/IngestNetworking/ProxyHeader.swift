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

/// The PROXY protocol's version 1 header (HAProxy's; nginx, Envoy and cloud load balancers speak it too): one line
/// of text before the proxied bytes that names the client the proxy serves, so that the server behind the proxy
/// logs, reports and hands to its webhook the client's address instead of the proxy's. The gateway writes it and
/// the relay reads it.
///
/// Written here: it is one line of text, and neither NIO nor NIO Extras has it.
public struct ProxyHeader: Hashable, Sendable {
    /// The client, as the proxy saw it.
    public var source: SocketAddress
    /// The address the client connected to.
    public var destination: SocketAddress

    /// The longest header the protocol allows, CRLF included.
    public static let maxLength = 107
    private static let signature = Array("PROXY ".utf8)

    public init(source: SocketAddress, destination: SocketAddress) {
        self.source = source
        self.destination = destination
    }

    /// `PROXY TCP4 192.0.2.7 10.0.0.1 51234 1935\r\n`, or `PROXY UNKNOWN\r\n` for addresses version 1 cannot carry
    /// (UNIX sockets, or two address families), which tells the reader to use the connection's own address.
    public var line: String {
        guard let sourceIP = self.source.ipAddress, let destinationIP = self.destination.ipAddress,
            let sourcePort = self.source.port, let destinationPort = self.destination.port
        else {
            return "PROXY UNKNOWN\r\n"
        }
        let family: String
        switch (self.source, self.destination) {
        case (.v4, .v4): family = "TCP4"
        case (.v6, .v6): family = "TCP6"
        default: return "PROXY UNKNOWN\r\n"
        }
        return "PROXY \(family) \(sourceIP) \(destinationIP) \(sourcePort) \(destinationPort)\r\n"
    }

    public enum Parsed: Hashable, Sendable {
        /// The bytes so far are the start of a header: read more.
        case needMoreBytes
        /// The bytes do not start with a header (a client that came without a proxy).
        case notAHeader
        /// A header of `length` bytes; `nil` for `PROXY UNKNOWN`, where the connection's own address stands.
        case header(ProxyHeader?, length: Int)
        /// It starts like a header but is not one; the reason says what is wrong.
        case malformed(String)
    }

    /// Reads a header at the start of `buffer` without consuming anything.
    public static func parse(_ buffer: ByteBuffer) -> Parsed {
        let available = buffer.readableBytesView
        let prefix = available.prefix(Self.signature.count)
        guard prefix.elementsEqual(Self.signature.prefix(prefix.count)) else {
            return .notAHeader
        }
        let window = available.prefix(Self.maxLength)
        guard let carriageReturn = window.firstIndex(of: UInt8(ascii: "\r")) else {
            return window.count < Self.maxLength
                ? .needMoreBytes : .malformed("no end of line within \(Self.maxLength) bytes")
        }
        let lineFeed = window.index(after: carriageReturn)
        guard lineFeed < window.endIndex else {
            return window.count < Self.maxLength ? .needMoreBytes : .malformed("no line feed after the carriage return")
        }
        guard window[lineFeed] == UInt8(ascii: "\n") else {
            return .malformed("a carriage return without a line feed")
        }
        let length = lineFeed - window.startIndex + 1
        let fields = String(decoding: window[window.startIndex..<carriageReturn], as: UTF8.self)
            .split(separator: " ", omittingEmptySubsequences: false)
            .map(String.init)
        if fields.count >= 2, fields[1] == "UNKNOWN" {
            return .header(nil, length: length)
        }
        guard fields.count == 6, fields[1] == "TCP4" || fields[1] == "TCP6" else {
            return .malformed("expected PROXY TCP4|TCP6 SOURCE DESTINATION SOURCE-PORT DESTINATION-PORT")
        }
        guard let sourcePort = Self.port(fields[4]), let destinationPort = Self.port(fields[5]) else {
            return .malformed("a port is not a number from 0 to 65535")
        }
        guard let source = try? SocketAddress(ipAddress: fields[2], port: sourcePort),
            let destination = try? SocketAddress(ipAddress: fields[3], port: destinationPort)
        else {
            return .malformed("an address is not an IP address")
        }
        switch (fields[1], source, destination) {
        case ("TCP4", .v4, .v4), ("TCP6", .v6, .v6):
            return .header(ProxyHeader(source: source, destination: destination), length: length)
        default:
            return .malformed("the addresses are not \(fields[1] == "TCP4" ? "IPv4" : "IPv6")")
        }
    }

    private static func port(_ text: String) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy(\.isASCII), let port = Int(text),
            (0...65535).contains(port)
        else {
            return nil
        }
        return port
    }
}
