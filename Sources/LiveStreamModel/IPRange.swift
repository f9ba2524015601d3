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

/// A CIDR block of IPv4 or IPv6 addresses, as a `LiveStream`'s `allowedSourceRanges` lists them.
///
/// Parsed from `"10.0.0.0/8"`, `"2001:db8::/32"` or `"::/0"`; a bare address is a single host (`/32` or `/128`).
/// Host bits under the mask are cleared, as Go's `net.ParseCIDR` (and so `kubectl`) does, so `"10.1.2.3/8"` is
/// `10.0.0.0/8`. The two families never match each other, except that an IPv4 range matches an IPv4-mapped IPv6
/// address (`::ffff:10.1.2.3`): a gateway listening on `::` sees IPv4 clients that way.
public struct IPRange: Hashable, Sendable, CustomStringConvertible {
    private enum Network: Hashable, Sendable {
        case v4(UInt32)
        case v6(UInt128)
    }
    private let network: Network

    /// The number of leading bits that must match: 0...32 for IPv4, 0...128 for IPv6.
    public let prefixLength: Int

    /// Parses a CIDR block or a bare address.
    ///
    /// - Throws: ``IPRangeError`` that names the input and what is wrong with it (not an address, prefix not a
    ///   number, prefix too long for the family).
    public init(_ text: String) throws(IPRangeError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let addressText = String(parts[0])
        guard !addressText.isEmpty else {
            throw IPRangeError(text, "no address before the prefix length")
        }
        // `inet_pton` through NIO: the one parser every client of this socket address agrees with.
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: addressText, port: 0)
        } catch {
            throw IPRangeError(text, "\"\(addressText)\" is not an IPv4 or IPv6 address")
        }
        guard let network = Self.network(of: address) else {
            throw IPRangeError(text, "\"\(addressText)\" is not an IPv4 or IPv6 address")
        }
        let maximum: Int
        switch network {
        case .v4: maximum = 32
        case .v6: maximum = 128
        }
        var prefixLength = maximum
        if parts.count == 2 {
            let prefixText = parts[1]
            guard !prefixText.isEmpty, prefixText.allSatisfy({ $0.isASCII && $0.isNumber }), prefixText.count <= 3,
                let parsed = Int(prefixText)
            else {
                throw IPRangeError(text, "prefix length \"\(prefixText)\" is not a number")
            }
            guard parsed <= maximum else {
                throw IPRangeError(
                    text,
                    "prefix length \(parsed) is longer than the \(maximum) bits of an \(maximum == 32 ? "IPv4" : "IPv6") address"
                )
            }
            prefixLength = parsed
        }
        self.prefixLength = prefixLength
        switch network {
        case .v4(let bits): self.network = .v4(bits & Self.mask32(prefixLength))
        case .v6(let bits): self.network = .v6(bits & Self.mask128(prefixLength))
        }
    }

    /// Whether `address` lies in this range. Unix-domain addresses are never in a range.
    public func contains(_ address: SocketAddress) -> Bool {
        guard let other = Self.network(of: address) else {
            return false
        }
        switch (self.network, other) {
        case (.v4(let network), .v4(let bits)):
            return bits & Self.mask32(self.prefixLength) == network
        case (.v6(let network), .v6(let bits)):
            return bits & Self.mask128(self.prefixLength) == network
        case (.v4(let network), .v6(let bits)):
            // ::ffff:a.b.c.d, the IPv4-mapped form (RFC 4291 §2.5.5.2).
            guard bits >> 32 == 0xffff else {
                return false
            }
            return UInt32(truncatingIfNeeded: bits) & Self.mask32(self.prefixLength) == network
        case (.v6, .v4):
            return false
        }
    }

    /// The network as people write it: `10.0.0.0/8`, and IPv6 in RFC 5952's form (`2001:db8::/32`), which is what
    /// NIO's `SocketAddress` gives (through `inet_ntop`), the same type that parses it in ``init(_:)``.
    public var description: String {
        var packed = ByteBuffer()
        switch self.network {
        case .v4(let bits): packed.writeInteger(bits)
        case .v6(let bits): packed.writeInteger(bits)
        }
        let address = (try? SocketAddress(packedIPAddress: packed, port: 0))?.ipAddress ?? "?"
        return "\(address)/\(self.prefixLength)"
    }

    private static func mask32(_ prefixLength: Int) -> UInt32 {
        prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - prefixLength)
    }

    private static func mask128(_ prefixLength: Int) -> UInt128 {
        prefixLength == 0 ? 0 : UInt128.max << UInt128(128 - prefixLength)
    }

    private static func network(of address: SocketAddress) -> Network? {
        // The address bytes sit at the same offsets of `sockaddr_in` (4) and `sockaddr_in6` (8) on Linux and on
        // Darwin (where a length byte and a one-byte family replace the two-byte family), in network byte order.
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address) { raw in
                .v4(raw[4..<8].reduce(0) { $0 << 8 | UInt32($1) })
            }
        case .v6(let v6):
            return withUnsafeBytes(of: v6.address) { raw in
                .v6(raw[8..<24].reduce(0) { $0 << 8 | UInt128($1) })
            }
        case .unixDomainSocket:
            return nil
        }
    }
}

/// A source range that is not an IPv4 or IPv6 CIDR block.
public struct IPRangeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The text as given.
    public var text: String
    /// What is wrong with it.
    public var reason: String

    init(_ text: String, _ reason: String) {
        self.text = text
        self.reason = reason
    }

    public var description: String { "invalid IP range \"\(self.text)\": \(self.reason)" }
}
