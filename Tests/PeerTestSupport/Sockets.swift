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
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Returns a TCP port on 127.0.0.1 that is reserved for the caller until the test process ends.
///
/// The port is found by binding a socket with `SO_REUSEADDR` to `127.0.0.1:0`, and that socket stays open, bound
/// but never listening. While it is open the kernel gives the port to no other `bind(0)` and to no outgoing
/// connection, so neither another test running in parallel nor a client's ephemeral port can take it. A server that
/// sets `SO_REUSEADDR` can still bind and listen on it: NIO's `ServerBootstrap` with `.so_reuseaddr` (the relay, the
/// gateway), Hummingbird, nginx, ffmpeg's listen mode and Go's `net.Listen` all do. A server without it gets
/// "address already in use", and a connection to a port with no server is refused at once, as it would be anyway.
///
/// Closing the socket right away (the usual way) leaves a window in which the kernel may give the port to someone
/// else; a server that then fails to bind leaves a test waiting for a listener that never comes.
public func freeTCPPort() throws -> Int {
    try freeTCPPorts(count: 1)[0]
}

/// Returns `count` distinct TCP ports on 127.0.0.1, each reserved as ``freeTCPPort()`` describes.
func freeTCPPorts(count: Int) throws -> [Int] {
    var sockets: [Int32] = []
    var ports: [Int] = []
    do {
        for _ in 0..<count {
            let fd = socket(AF_INET, streamSocketType, 0)
            guard fd >= 0 else { throw PeerError.startFailed("socket() failed: \(errnoDescription())") }
            sockets.append(fd)
            // Not inherited by the processes the tests start: the reservation is this process's alone.
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var reuse: Int32 = 1
            guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                throw PeerError.startFailed("setsockopt(SO_REUSEADDR) failed: \(errnoDescription())")
            }
            var address = loopbackAddress(port: 0)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0 else { throw PeerError.startFailed("bind(127.0.0.1:0) failed: \(errnoDescription())") }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let named = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            guard named == 0 else { throw PeerError.startFailed("getsockname() failed: \(errnoDescription())") }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
    } catch {
        for socket in sockets { close(socket) }
        throw error
    }
    keepReserved(sockets)
    return ports
}

/// The sockets that hold the ports handed out by ``freeTCPPorts(count:)``, oldest first.
private let portReservations = Mutex<[Int32]>([])

/// Keeps `sockets` open. At most 512 are kept; beyond that the oldest is closed, long after the test that asked for
/// it has ended. The rest close when the process exits.
private func keepReserved(_ sockets: [Int32]) {
    let expired = portReservations.withLock { kept in
        kept.append(contentsOf: sockets)
        let excess = max(0, kept.count - 512)
        defer { kept.removeFirst(excess) }
        return Array(kept.prefix(excess))
    }
    for socket in expired { close(socket) }
}

/// Whether something accepts TCP connections on `127.0.0.1:port` right now. The connection is closed at once.
///
/// Connecting to a loopback port either succeeds or is refused immediately, so this does not block for long.
func acceptsTCPConnection(port: Int) -> Bool {
    guard let fd = connectedLoopbackSocket(port: port, timeoutSeconds: 1) else { return false }
    close(fd)
    return true
}

/// A minimal HTTP/1.0 GET against `127.0.0.1:port`, returning the body of a `200` response.
///
/// The harness uses it only to read nginx-rtmp's `/stat` page; it exists so that this target needs neither
/// FoundationNetworking (libcurl) nor a client library. Reads and writes time out after `timeoutSeconds`.
func httpGet(port: Int, path: String, timeoutSeconds: Int = 2) throws -> String {
    guard let fd = connectedLoopbackSocket(port: port, timeoutSeconds: timeoutSeconds) else {
        throw PeerError.processFailed("cannot connect to 127.0.0.1:\(port): \(errnoDescription())")
    }
    defer { close(fd) }
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    var sent = 0
    while sent < request.count {
        let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, 0) }
        guard n > 0 else { throw PeerError.processFailed("sending to 127.0.0.1:\(port) failed: \(errnoDescription())") }
        sent += n
    }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { break }
        guard n > 0 else { throw PeerError.processFailed("reading 127.0.0.1:\(port) failed: \(errnoDescription())") }
        response.append(contentsOf: buffer[0..<n])
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let headerEnd = text.range(of: "\r\n\r\n") else {
        throw PeerError.malformedOutput("no HTTP header in response from 127.0.0.1:\(port)\(path)")
    }
    let statusLine = text[..<headerEnd.lowerBound].prefix { $0 != "\r" }
    guard statusLine.split(separator: " ").dropFirst().first == "200" else {
        throw PeerError.processFailed("GET 127.0.0.1:\(port)\(path) answered '\(statusLine)'")
    }
    return String(text[headerEnd.upperBound...])
}

private func connectedLoopbackSocket(port: Int, timeoutSeconds: Int) -> Int32? {
    let fd = socket(AF_INET, streamSocketType, 0)
    guard fd >= 0 else { return nil }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = loopbackAddress(port: port)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else {
        let saved = errno
        close(fd)
        errno = saved
        return nil
    }
    return fd
}

private func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    #if canImport(Darwin)
    address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
    #endif
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    return address
}

#if canImport(Glibc)
let streamSocketType = Int32(SOCK_STREAM.rawValue)
#else
let streamSocketType = SOCK_STREAM
#endif

/// The current `errno`, as text.
func errnoDescription() -> String {
    let code = errno
    return "\(String(cString: strerror(code))) (errno \(code))"
}
