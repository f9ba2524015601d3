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
#elseif canImport(Darwin)
import Darwin
#endif

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding a socket to `127.0.0.1:0`, reading the port the kernel chose, and closing the socket.
/// This has a small, unavoidable race: between the close and the moment the caller binds the port, another process
/// (or another test running in parallel) may take it. Callers that start a server on the port must treat "address
/// already in use" as retryable and ask again; ``NginxRTMP/start(applications:tls:timeout:)`` does exactly that.
/// Servers written in Swift should rather bind port 0 themselves and report the port they got.
public func freeTCPPort() throws -> Int {
    try freeTCPPorts(count: 1)[0]
}

/// Returns `count` distinct TCP ports on 127.0.0.1 that were free a moment ago.
///
/// All sockets are held open until every port is known, so the ports are distinct from each other. The race
/// described at ``freeTCPPort()`` applies to each of them.
func freeTCPPorts(count: Int) throws -> [Int] {
    var sockets: [Int32] = []
    defer {
        for socket in sockets { close(socket) }
    }
    var ports: [Int] = []
    for _ in 0..<count {
        let fd = socket(AF_INET, streamSocketType, 0)
        guard fd >= 0 else { throw PeerError.startFailed("socket() failed: \(errnoDescription())") }
        sockets.append(fd)
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
    return ports
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
private let streamSocketType = Int32(SOCK_STREAM.rawValue)
#else
private let streamSocketType = SOCK_STREAM
#endif

/// The current `errno`, as text.
func errnoDescription() -> String {
    let code = errno
    return "\(String(cString: strerror(code))) (errno \(code))"
}
