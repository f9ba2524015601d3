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

/// An `rtmp://` or `rtmps://` push target address: `rtmp[s]://host[:port]/app[/stream]`.
///
/// The stream name is the target's stream key when one is configured (YouTube: `rtmp://a.rtmp.youtube.com/live2`
/// plus the key), otherwise whatever follows the application in the URL (`rtmp://host/app/name`, as nginx-rtmp's
/// `push` takes it).
public struct RTMPURL: Hashable, Sendable, CustomStringConvertible {
    public var useTLS: Bool
    public var host: String
    public var port: Int
    public var app: String
    /// The stream name from the URL path, if it had one after the application.
    public var streamName: String?

    public init(parsing string: String) throws(RelayConfigurationError) {
        let scheme: Substring
        var rest: Substring
        if let range = string.firstRange(of: "://") {
            scheme = string[..<range.lowerBound]
            rest = string[range.upperBound...]
        } else {
            throw .invalid("target URL '\(Self.redacted(string))' has no scheme; expected rtmp:// or rtmps://")
        }
        switch scheme.lowercased() {
        case "rtmp": self.useTLS = false
        case "rtmps": self.useTLS = true
        default:
            throw .invalid("target URL scheme '\(scheme)' is not supported; expected rtmp:// or rtmps://")
        }
        let authority: Substring
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            rest = rest[rest.index(after: slash)...]
        } else {
            authority = rest
            rest = ""
        }
        var host = authority
        var port = self.useTLS ? 443 : 1935
        if authority.hasPrefix("[") {
            // An IPv6 literal: [::1]:1935
            guard let close = authority.firstIndex(of: "]") else {
                throw .invalid("target URL host '\(authority)' has an unclosed '['")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()), (1...65535).contains(value) else {
                    throw .invalid("target URL port '\(after.dropFirst())' is not a port number")
                }
                port = value
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let value = Int(authority[authority.index(after: colon)...]), (1...65535).contains(value) else {
                throw .invalid("target URL port '\(authority[authority.index(after: colon)...])' is not a port number")
            }
            port = value
        }
        guard !host.isEmpty else {
            throw .invalid("target URL '\(Self.redacted(string))' has no host")
        }
        self.host = String(host)
        self.port = port
        let segments = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let app = segments.first, !app.isEmpty else {
            throw .invalid("target URL '\(Self.redacted(string))' has no application path (rtmp://host/APP)")
        }
        self.app = String(app)
        if segments.count > 1 {
            let name = segments[1].trimmingSuffix("/")
            self.streamName = name.isEmpty ? nil : String(name)
        } else {
            self.streamName = nil
        }
    }

    /// `rtmp://host:port/app`, what the server sees as `tcUrl`.
    public var tcURL: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "\(self.useTLS ? "rtmps" : "rtmp")://\(host):\(self.port)/\(self.app)"
    }

    /// The URL without any stream name: safe to log.
    public var description: String { self.tcURL }

    /// A URL as given, cut after the application so a stream name in it is never printed.
    static func redacted(_ string: String) -> String {
        guard let range = string.firstRange(of: "://") else {
            return "***"
        }
        let parts = string[range.upperBound...].split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        return String(string[..<range.upperBound]) + parts.prefix(2).joined(separator: "/")
            + (parts.count > 2 ? "/***" : "")
    }
}

extension Substring {
    fileprivate func trimmingSuffix(_ character: Character) -> Substring {
        var result = self
        while result.hasSuffix(String(character)) {
            result = result.dropLast()
        }
        return result
    }
}
