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

import LiveStreamModel
import NIOCore
import Testing

@Suite("IPRange")
struct IPRangeTests {
    private func address(_ text: String) throws -> SocketAddress {
        try SocketAddress(ipAddress: text, port: 1935)
    }

    @Test(
        "Parses CIDR blocks and bare addresses, clearing host bits",
        arguments: [
            ("10.0.0.0/8", "10.0.0.0/8", 8),
            ("10.1.2.3/8", "10.0.0.0/8", 8),
            ("0.0.0.0/0", "0.0.0.0/0", 0),
            ("192.168.1.7", "192.168.1.7/32", 32),
            ("192.168.1.7/32", "192.168.1.7/32", 32),
            // IPv6 as RFC 5952 writes it: the longest run of zero groups (the first of equal ones) as `::`.
            ("::/0", "::/0", 0),
            ("2001:db8::1/32", "2001:db8::/32", 32),
            ("::1", "::1/128", 128),
            ("fe80::1/127", "fe80::/127", 127),
            ("2001:DB8:0:1:0:0:0:1", "2001:db8:0:1::1/128", 128),
            ("2001:0:0:1:0:0:0:0", "2001:0:0:1::/128", 128),
            ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4/128", 128),
            ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7/128", 128),
            ("fd00:10:244::/56", "fd00:10:244::/56", 56),
        ]
    )
    func parses(text: String, description: String, prefixLength: Int) throws {
        let range = try IPRange(text)
        #expect(range.description == description)
        #expect(range.prefixLength == prefixLength)
    }

    @Test(
        "Refuses malformed ranges and says what is wrong",
        arguments: [
            ("", "no address"),
            ("/8", "no address"),
            ("10.0.0.0/", "is not a number"),
            ("10.0.0.0/x", "is not a number"),
            ("10.0.0.0/-1", "is not a number"),
            ("10.0.0.0/33", "longer than the 32 bits"),
            ("::/129", "longer than the 128 bits"),
            ("10.0.0/8", "is not an IPv4 or IPv6 address"),
            ("example.com", "is not an IPv4 or IPv6 address"),
            ("10.0.0.0/8/8", "is not a number"),
        ]
    )
    func refuses(text: String, reason: String) {
        #expect {
            try IPRange(text)
        } throws: { error in
            guard let error = error as? IPRangeError else {
                return false
            }
            return error.text == text && error.reason.contains(reason)
                && error.description.contains("\"\(text)\"")
        }
    }

    @Test("Matches IPv4 addresses, edges included")
    func matchesIPv4() throws {
        let range = try IPRange("10.0.0.0/8")
        #expect(range.contains(try self.address("10.0.0.0")))
        #expect(range.contains(try self.address("10.255.255.255")))
        #expect(!range.contains(try self.address("11.0.0.0")))
        #expect(!range.contains(try self.address("9.255.255.255")))
        #expect(try IPRange("0.0.0.0/0").contains(try self.address("203.0.113.9")))
        #expect(try IPRange("203.0.113.9").contains(try self.address("203.0.113.9")))
        #expect(!(try IPRange("203.0.113.9")).contains(try self.address("203.0.113.10")))
        #expect(try IPRange("128.0.0.0/1").contains(try self.address("255.1.1.1")))
        #expect(!(try IPRange("128.0.0.0/1")).contains(try self.address("127.255.255.255")))
    }

    @Test("Matches IPv6 addresses, and IPv4 ranges match IPv4-mapped addresses")
    func matchesIPv6() throws {
        let range = try IPRange("2001:db8::/32")
        #expect(range.contains(try self.address("2001:db8:ffff::1")))
        #expect(!range.contains(try self.address("2001:db9::1")))
        #expect(try IPRange("::/0").contains(try self.address("fe80::1")))
        #expect(try IPRange("::1").contains(try self.address("::1")))
        #expect(!(try IPRange("::1")).contains(try self.address("::2")))
        // The families do not mix, except for the IPv4-mapped form a dual-stack listener reports.
        #expect(!(try IPRange("::/0")).contains(try self.address("10.0.0.1")))
        #expect(!(try IPRange("0.0.0.0/0")).contains(try self.address("2001:db8::1")))
        #expect(try IPRange("10.0.0.0/8").contains(try self.address("::ffff:10.1.2.3")))
        #expect(!(try IPRange("10.0.0.0/8")).contains(try self.address("::ffff:11.1.2.3")))
    }
}
