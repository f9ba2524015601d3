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

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The options that matter on a TCP socket this process holds: what a server in a test set on its connections.
public struct TCPSocketOptions: Sendable, Hashable, CustomStringConvertible {
    public var localPort: Int
    public var remotePort: Int
    /// `TCP_NODELAY` at `IPPROTO_TCP`.
    public var noDelay: Bool
    /// `SO_DEBUG` at `SOL_SOCKET`: set where `TCP_NODELAY`'s number (1) was given at the socket level, which only
    /// root may do (an unprivileged process gets EACCES, which ends the connection).
    public var debug: Bool

    public var description: String {
        "127.0.0.1:\(self.localPort) → :\(self.remotePort) TCP_NODELAY=\(self.noDelay) SO_DEBUG=\(self.debug)"
    }
}

/// Every connected IPv4 TCP socket of this process (from `/proc/self/fd`) whose local or remote port is `port`, with
/// its options read by `getsockopt`: how a test checks the options a server in the same process set on the
/// connections it accepted or made.
public func tcpSocketOptions(port: Int) -> [TCPSocketOptions] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return [] }
    var found: [TCPSocketOptions] = []
    for entry in entries {
        guard let fd = Int32(entry),
            let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)"),
            target.hasPrefix("socket:")
        else { continue }
        guard let local = socketPort(fd, peer: false), let remote = socketPort(fd, peer: true),
            local == port || remote == port
        else { continue }
        found.append(
            TCPSocketOptions(
                localPort: local,
                remotePort: remote,
                noDelay: intOption(fd, level: Int32(IPPROTO_TCP), name: TCP_NODELAY) != 0,
                debug: intOption(fd, level: SOL_SOCKET, name: SO_DEBUG) != 0
            )
        )
    }
    return found
}

private func socketPort(_ fd: Int32, peer: Bool) -> Int? {
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let result = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
        }
    }
    guard result == 0, address.sin_family == sa_family_t(AF_INET) else { return nil }
    return Int(UInt16(bigEndian: address.sin_port))
}

private func intOption(_ fd: Int32, level: Int32, name: Int32) -> Int32 {
    var value: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    guard getsockopt(fd, level, name, &value, &length) == 0 else { return -1 }
    return value
}
