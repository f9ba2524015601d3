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

/// An SDP document (RFC 8866) as lines: the session part and one part per `m=` line, each attribute in order.
///
/// This is the syntax only; ``WHIPOffer`` reads the WebRTC meaning out of it.
public struct SessionDescription: Hashable, Sendable {
    /// One `a=` line: `a=name` or `a=name:value`.
    public struct Attribute: Hashable, Sendable {
        public var name: String
        public var value: String?

        public init(_ name: String, _ value: String? = nil) {
            self.name = name
            self.value = value
        }
    }

    /// One media description: the `m=` line and what follows it up to the next.
    public struct Media: Hashable, Sendable {
        /// `audio`, `video`, `application`, ...
        public var kind: String
        public var port: Int
        /// `UDP/TLS/RTP/SAVPF` for WebRTC media.
        public var transportProtocol: String
        /// The payload types (or, for `application`, the format) as written.
        public var formats: [String]
        public var attributes: [Attribute] = []

        /// The values of every attribute named `name`.
        public func values(_ name: String) -> [String] {
            self.attributes.compactMap { $0.name == name ? ($0.value ?? "") : nil }
        }

        /// The first value of the attribute `name`.
        public func value(_ name: String) -> String? {
            self.attributes.first { $0.name == name }.map { $0.value ?? "" }
        }

        /// Whether a flag attribute such as `a=rtcp-mux` is present.
        public func has(_ name: String) -> Bool {
            self.attributes.contains { $0.name == name }
        }
    }

    /// Limits on what a peer may send; an offer beyond one is refused before it is looked at further.
    public struct Limits: Hashable, Sendable {
        /// A browser's offer with every codec is about 10 KB.
        public var maximumBytes = 64 * 1024
        public var maximumLines = 2000
        public var maximumLineLength = 4096
        public var maximumMediaSections = 16

        public init() {}
    }

    public var sessionAttributes: [Attribute] = []
    public var media: [Media] = []

    /// The first value of the session-level attribute `name`.
    public func sessionValue(_ name: String) -> String? {
        self.sessionAttributes.first { $0.name == name }.map { $0.value ?? "" }
    }

    public init() {}

    /// Parses SDP text. Lines end in CRLF or LF; types other than `v`, `m` and `a` are checked for shape and skipped.
    public init(parsing text: String, limits: Limits = Limits()) throws(WebRTCError) {
        try self.init(parsing: text, limits: limits, fragment: false)
    }

    /// Parses an SDP fragment (RFC 8840 §9.2, `application/trickle-ice-sdpfrag`): attribute lines at session level,
    /// then media descriptions, with no `v=` line; other line types are checked for shape and skipped.
    public init(parsingFragment text: String, limits: Limits = Limits()) throws(WebRTCError) {
        try self.init(parsing: text, limits: limits, fragment: true)
    }

    private init(parsing text: String, limits: Limits, fragment: Bool) throws(WebRTCError) {
        guard text.utf8.count <= limits.maximumBytes else {
            throw .limitExceeded("SDP of \(text.utf8.count) bytes, more than \(limits.maximumBytes)")
        }
        var lines = 0
        var sawVersion = false
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if line.isEmpty { continue }
            lines += 1
            guard lines <= limits.maximumLines else {
                throw .limitExceeded("SDP of more than \(limits.maximumLines) lines")
            }
            guard line.utf8.count <= limits.maximumLineLength else {
                throw .limitExceeded("SDP line of more than \(limits.maximumLineLength) bytes")
            }
            let utf8 = Array(line.utf8)
            guard utf8.count >= 2, utf8[1] == UInt8(ascii: "="), (97...122).contains(utf8[0]) else {
                throw .malformedSDP("line \(lines) is not <type>=<value>")
            }
            let value = String(line.dropFirst(2))
            switch utf8[0] {
            case UInt8(ascii: "v"):
                guard !fragment else { throw .malformedSDP("line \(lines): a fragment has no v= line") }
                guard lines == 1, value == "0" else { throw .malformedSDP("the first line must be v=0") }
                sawVersion = true
            case UInt8(ascii: "m"):
                guard self.media.count < limits.maximumMediaSections else {
                    throw .limitExceeded("more than \(limits.maximumMediaSections) media sections")
                }
                let fields = value.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 3, let port = Int(fields[1].split(separator: "/")[0]), (0...65535).contains(port)
                else { throw .malformedSDP("m= line \(lines) is not <media> <port> <proto> <fmt>...") }
                self.media.append(
                    Media(
                        kind: String(fields[0]),
                        port: port,
                        transportProtocol: String(fields[2]),
                        formats: fields.dropFirst(3).map(String.init)
                    )
                )
            case UInt8(ascii: "a"):
                let attribute: Attribute
                if let colon = value.firstIndex(of: ":") {
                    attribute = Attribute(String(value[..<colon]), String(value[value.index(after: colon)...]))
                } else {
                    attribute = Attribute(value)
                }
                guard !attribute.name.isEmpty else { throw .malformedSDP("line \(lines): empty attribute name") }
                if self.media.isEmpty {
                    self.sessionAttributes.append(attribute)
                } else {
                    self.media[self.media.count - 1].attributes.append(attribute)
                }
            default:
                guard sawVersion || fragment else { throw .malformedSDP("the first line must be v=0") }
            }
        }
        guard sawVersion || fragment else { throw .malformedSDP("no v=0 line") }
    }
}
