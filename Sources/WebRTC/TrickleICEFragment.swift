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

/// ICE credentials: a username fragment and a password (RFC 8839 §5.4). Its description shows no password.
public struct ICECredentials: Hashable, Sendable, CustomStringConvertible {
    public var usernameFragment: String
    /// Not written to logs.
    public var password: String

    public init(usernameFragment: String, password: String) {
        self.usernameFragment = usernameFragment
        self.password = password
    }

    public var description: String { "ICECredentials(\(self.usernameFragment), password redacted)" }

    /// RFC 8839 §5.4: ice-char is ALPHA / DIGIT / "+" / "/"; a ufrag has 4 to 256 of them, a password 22 to 256.
    static func isICEString(_ value: String, lengths: ClosedRange<Int>) -> Bool {
        lengths.contains(value.utf8.count)
            && value.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
            }
    }
}

/// A peer's candidate from an `a=candidate` line (RFC 8839 §5.1), read and checked, not used: an ICE-lite server
/// sends no checks, it answers the peer's.
public struct RemoteICECandidate: Hashable, Sendable {
    public var foundation: String
    public var component: Int
    /// `UDP` or `TCP` as written (RFC 6544 for TCP).
    public var transport: String
    public var priority: UInt32
    /// An IP address, or a host name such as a browser's mDNS `….local` name.
    public var address: String
    public var port: Int
    /// `host`, `srflx`, `prflx`, `relay`.
    public var type: String

    /// Reads the value of an `a=candidate` attribute: `foundation component transport priority address port typ type
    /// [extensions]`.
    public init(parsing value: String) throws(WebRTCError) {
        let fields = value.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 8 else {
            throw .malformedSDP("a=candidate has \(fields.count) fields, fewer than 8")
        }
        let foundation = String(fields[0])
        guard ICECredentials.isICEString(foundation, lengths: 1...32) else {
            throw .malformedSDP("a=candidate's foundation is not 1 to 32 ice-chars")
        }
        guard fields[1].utf8.count <= 3, let component = Int(fields[1]), (1...256).contains(component) else {
            throw .malformedSDP("a=candidate's component is not a number from 1 to 256")
        }
        let transport = fields[2].uppercased()
        guard transport == "UDP" || transport == "TCP" else {
            throw .malformedSDP("a=candidate's transport \(fields[2].prefix(16)) is neither UDP nor TCP")
        }
        guard fields[3].utf8.count <= 10, let priority = UInt32(fields[3]) else {
            throw .malformedSDP("a=candidate's priority is not a number from 0 to 2^32-1")
        }
        let address = String(fields[4])
        guard (1...253).contains(address.utf8.count),
            address.utf8.allSatisfy({ byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "-")
                    || byte == UInt8(ascii: "%")
            })
        else {
            throw .malformedSDP("a=candidate's address is neither an IP address nor a host name")
        }
        guard let port = Int(fields[5]), (0...65535).contains(port) else {
            throw .malformedSDP("a=candidate's port is not a number from 0 to 65535")
        }
        guard fields[6] == "typ", ["host", "srflx", "prflx", "relay"].contains(fields[7]) else {
            throw .malformedSDP("a=candidate has no typ host, srflx, prflx or relay")
        }
        self.foundation = foundation
        self.component = component
        self.transport = transport
        self.priority = priority
        self.address = address
        self.port = port
        self.type = String(fields[7])
    }
}

/// An `application/trickle-ice-sdpfrag` body (RFC 8840 §9), as a WHIP client PATCHes it to trickle candidates or
/// restart ICE (RFC 9725 §4.3), and as a WHIP session answers an ICE restart.
///
/// The fragment may carry the credentials at session level (whip-client) or in its media section (RFC 9725's
/// examples); either is read. Candidates are checked for shape, not used: an ICE-lite server needs none.
public struct TrickleICEFragment: Hashable, Sendable {
    /// Limits on what a peer may PATCH.
    public struct Limits: Hashable, Sendable {
        /// A fragment with a dozen candidates is about 1 KB.
        public var maximumBytes = 16 * 1024
        public var maximumCandidates = 64

        public init() {}
    }

    /// The `a=ice-ufrag` of the fragment, if any.
    public var usernameFragment: String?
    /// The `a=ice-pwd` of the fragment, if any. Not written to logs.
    public var password: String?
    /// The candidates, in order.
    public var candidates: [RemoteICECandidate]
    /// Whether the fragment says `a=end-of-candidates`.
    public var endOfCandidates: Bool
    /// The `a=mid` values of its media sections.
    public var mids: [String]

    /// The fragment's credentials when it has both.
    public var credentials: ICECredentials? {
        guard let usernameFragment, let password else { return nil }
        return ICECredentials(usernameFragment: usernameFragment, password: password)
    }

    /// Reads a fragment. Throws ``WebRTCError/Code-swift.struct/malformedSDP`` for a line that is not SDP, a
    /// malformed candidate or credentials, or credentials that differ between two places, and
    /// ``WebRTCError/Code-swift.struct/limitExceeded`` beyond `limits`.
    public init(parsing text: String, limits: Limits = Limits()) throws(WebRTCError) {
        guard text.utf8.count <= limits.maximumBytes else {
            throw .limitExceeded("a fragment of \(text.utf8.count) bytes, more than \(limits.maximumBytes)")
        }
        var sdpLimits = SessionDescription.Limits()
        sdpLimits.maximumBytes = limits.maximumBytes
        sdpLimits.maximumLines = limits.maximumCandidates + 64
        let description = try SessionDescription(parsingFragment: text, limits: sdpLimits)
        let attributes = description.sessionAttributes + description.media.flatMap(\.attributes)

        func single(_ name: String, lengths: ClosedRange<Int>) throws(WebRTCError) -> String? {
            var found: String?
            for attribute in attributes where attribute.name == name {
                let value = attribute.value ?? ""
                guard ICECredentials.isICEString(value, lengths: lengths) else {
                    throw .malformedSDP("a=\(name) is not \(lengths.lowerBound) to \(lengths.upperBound) ice-chars")
                }
                if let found, found != value {
                    throw .malformedSDP("the fragment has two different a=\(name)")
                }
                found = value
            }
            return found
        }
        self.usernameFragment = try single("ice-ufrag", lengths: 4...256)
        self.password = try single("ice-pwd", lengths: 22...256)
        var candidates: [RemoteICECandidate] = []
        for attribute in attributes where attribute.name == "candidate" {
            guard candidates.count < limits.maximumCandidates else {
                throw .limitExceeded("more than \(limits.maximumCandidates) candidates in one fragment")
            }
            candidates.append(try RemoteICECandidate(parsing: attribute.value ?? ""))
        }
        self.candidates = candidates
        self.endOfCandidates = attributes.contains { $0.name == "end-of-candidates" }
        self.mids = description.media.compactMap { $0.value("mid") }
    }

    /// Whether the fragment restarts ICE (RFC 8839 §4.4.1.1.1): it names credentials other than `current`.
    public func restarts(from current: ICECredentials) -> Bool {
        if let usernameFragment, usernameFragment != current.usernameFragment { return true }
        if let password, password != current.password { return true }
        return false
    }

    /// The fragment an ICE-lite WHIP session answers an ICE restart with (RFC 9725 §4.3.3): our new credentials and
    /// our candidates in the first media section of the bundle.
    public static func answer(
        credentials: ICECredentials,
        candidates: [ICECandidate],
        media: [NegotiatedMedia]
    ) -> String {
        var lines = ["a=ice-lite", "a=ice-ufrag:\(credentials.usernameFragment)", "a=ice-pwd:\(credentials.password)"]
        if let first = media.first {
            lines.append("a=group:BUNDLE " + media.map(\.mid).joined(separator: " "))
            lines.append("m=\(first.kind.rawValue) 9 UDP/TLS/RTP/SAVPF \(first.payloadType)")
            lines.append("a=mid:\(first.mid)")
        }
        for (index, candidate) in candidates.enumerated() {
            lines.append("a=candidate:\(candidate.attributeValue(foundation: index + 1))")
        }
        lines.append("a=end-of-candidates")
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}
