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

extension SocketAddress {
    /// A peer's or a listener's address as people and other tools write it: `192.0.2.7:51234`, `[2001:db8::7]:51234`,
    /// or a socket's path. NIO's own description (`[IPv4]192.0.2.7/192.0.2.7:51234`) names the family and repeats the
    /// address, which reads badly in a log line, a stats field or an event.
    public var displayed: String {
        switch self {
        case .v4:
            return "\(self.ipAddress ?? "?"):\(self.port ?? 0)"
        case .v6:
            return "[\(self.ipAddress ?? "?")]:\(self.port ?? 0)"
        case .unixDomainSocket:
            return self.pathname ?? "a UNIX socket"
        }
    }
}

extension Optional where Wrapped == SocketAddress {
    /// ``SocketAddress/displayed``, or `?` for a channel that has no address (any more).
    public var displayed: String {
        self?.displayed ?? "?"
    }
}
