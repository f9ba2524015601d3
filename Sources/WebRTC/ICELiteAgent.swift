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

/// The ICE-lite side of one session (RFC 8445 §2.5): it answers the peer's Binding requests, takes the pair the
/// peer nominates with USE-CANDIDATE, and gives up when the peer stops checking and sending (consent freshness, RFC 7675).
///
/// A value with no I/O and no clock: the caller passes every datagram and the time, and sends what it returns.
public struct ICELiteAgent: Sendable {
    /// Timeouts and limits.
    public struct Configuration: Hashable, Sendable {
        /// How long after ``ICELiteAgent/init(localUsernameFragment:localPassword:remoteUsernameFragment:now:configuration:)``
        /// a pair must be nominated.
        public var connectTimeout: TimeAmount = .seconds(30)
        /// How long a nominated session stays alive without a valid check or authenticated traffic from the peer
        /// (RFC 7675 §5.1's 30 seconds; see ``ICELiteAgent/receivedTraffic(from:now:)``).
        public var consentTimeout: TimeAmount = .seconds(30)
        /// How many remote addresses may pass a check; a peer cannot make the session remember more.
        public var maximumRemoteAddresses = 8

        public init() {}
    }

    /// Where the session is.
    public enum State: Hashable, Sendable {
        /// Waiting for a nominated pair.
        case checking
        /// The peer nominated a pair.
        case connected
        /// Timed out; the session is over.
        case failed(WebRTCError)
    }

    /// What the caller does with a STUN datagram.
    public enum Action: Hashable, Sendable {
        /// Send these bytes back to the address the request came from.
        case respond([UInt8])
        /// Ignore the datagram, for this reason (for a debug log).
        case drop(WebRTCError)
    }

    public private(set) var localUsernameFragment: String
    public private(set) var localPassword: String
    public private(set) var remoteUsernameFragment: String?
    public let configuration: Configuration
    public private(set) var state: State = .checking
    /// The address the peer nominated (the latest one, should it nominate again).
    public private(set) var selectedAddress: SocketAddress?
    /// Addresses that have passed a check, oldest first; DTLS and SRTP are only taken from these.
    public private(set) var validatedAddresses: [SocketAddress] = []
    private var created: NIODeadline
    private var lastConsent: NIODeadline

    public init(
        localUsernameFragment: String,
        localPassword: String,
        remoteUsernameFragment: String?,
        now: NIODeadline,
        configuration: Configuration = Configuration()
    ) {
        self.localUsernameFragment = localUsernameFragment
        self.localPassword = localPassword
        self.remoteUsernameFragment = remoteUsernameFragment
        self.configuration = configuration
        self.created = now
        self.lastConsent = now
    }

    /// Whether DTLS and SRTP from `address` belong to this session.
    public func accepts(from address: SocketAddress) -> Bool {
        self.validatedAddresses.contains(address)
    }

    /// Handles one STUN datagram from `address`.
    public mutating func receive(stun bytes: [UInt8], from address: SocketAddress, now: NIODeadline) -> Action {
        if case .failed(let error) = self.state { return .drop(error) }
        let message: STUNMessage
        do {
            message = try STUNMessage.decode(bytes)
        } catch {
            return .drop(error)
        }
        guard message.method == STUNMessage.bindingMethod, message.messageClass == .request else {
            return .drop(.malformedSTUN("not a Binding request"))
        }
        guard STUNMessage.fingerprintIsValid(in: bytes) else { return .drop(.integrityFailed("bad FINGERPRINT")) }
        guard let username = message.username else { return .drop(.malformedSTUN("no USERNAME")) }
        let parts = username.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == self.localUsernameFragment else {
            return .drop(.integrityFailed("USERNAME is not for this session"))
        }
        if let remote = self.remoteUsernameFragment, parts[1] != remote {
            return .drop(.integrityFailed("USERNAME names another remote fragment"))
        }
        guard STUNMessage.integrityIsValid(in: bytes, password: self.localPassword) else {
            return .drop(.integrityFailed("bad MESSAGE-INTEGRITY"))
        }

        self.lastConsent = now
        if !self.validatedAddresses.contains(address) {
            if self.validatedAddresses.count >= self.configuration.maximumRemoteAddresses,
                let evict = self.validatedAddresses.firstIndex(where: { $0 != self.selectedAddress })
            {
                self.validatedAddresses.remove(at: evict)
            }
            self.validatedAddresses.append(address)
        }
        if message.attribute(STUNAttributeType.useCandidate) != nil {
            self.selectedAddress = address
            self.state = .connected
        }

        var response = STUNMessage(
            method: STUNMessage.bindingMethod,
            messageClass: .successResponse,
            transactionID: message.transactionID
        )
        if let (ip, port) = address.stunAddress {
            response.attributes.append(
                .init(
                    type: STUNAttributeType.xorMappedAddress,
                    value: STUNMessage.xorMappedAddress(address: ip, port: port, transactionID: message.transactionID)
                )
            )
        }
        return .respond(response.encode(integrityPassword: self.localPassword, fingerprint: true))
    }

    /// Restarts ICE (RFC 8445 §9, RFC 8839 §4.4.1.1.1) with new credentials on both sides: checks must use them
    /// from now on. The pair in use and the addresses that passed a check stay valid, so DTLS and SRTP continue on
    /// them until the peer nominates a pair under the new credentials; the peer has a full consent (or, before a
    /// nomination, connect) timeout from `now` to do so. False, and nothing changed, once the session has failed.
    public mutating func restart(
        localUsernameFragment: String,
        localPassword: String,
        remoteUsernameFragment: String?,
        now: NIODeadline
    ) -> Bool {
        if case .failed = self.state { return false }
        self.localUsernameFragment = localUsernameFragment
        self.localPassword = localPassword
        self.remoteUsernameFragment = remoteUsernameFragment
        self.lastConsent = now
        if self.state == .checking { self.created = now }
        return true
    }

    /// Whether the peer has nominated a pair and the session has not failed.
    public var isConnected: Bool { self.state == .connected }

    /// Records authenticated traffic from the peer (an SRTP or SRTCP packet that unprotected, a DTLS record that
    /// OpenSSL took) on an address that passed a check: the session is alive as long as the peer sends, checks or not.
    ///
    /// RFC 7675 makes consent the *sender's* duty: an agent that sends media checks that its peer still wants it.
    /// This ICE-lite side only receives, so what it needs to know is that the publisher is still there. Browsers
    /// check every few seconds; libnice (GStreamer's webrtcbin, whip-client) does not once connected unless its
    /// `consent-freshness` is switched on, and would be cut off after 30 s of media. As with pion's and libwebrtc's
    /// ICE, traffic that authenticates keeps the session; a peer that neither sends nor checks still times out.
    public mutating func receivedTraffic(from address: SocketAddress, now: NIODeadline) {
        guard self.state == .connected, self.validatedAddresses.contains(address) else { return }
        self.lastConsent = now
    }

    /// Advances time: fails the session when the peer did not nominate, or stopped checking, in time.
    public mutating func tick(now: NIODeadline) -> State {
        switch self.state {
        case .checking where now - self.created > self.configuration.connectTimeout:
            self.state = .failed(.timeout("no ICE pair nominated in \(self.configuration.connectTimeout)"))
        case .connected where now - self.lastConsent > self.configuration.consentTimeout:
            self.state = .failed(
                .timeout("no ICE consent and no media from the peer in \(self.configuration.consentTimeout)")
            )
        default:
            break
        }
        return self.state
    }
}

extension SocketAddress {
    /// The IP address as bytes in network order and the port, for XOR-MAPPED-ADDRESS.
    var stunAddress: (address: [UInt8], port: UInt16)? {
        guard let port = self.port else { return nil }
        // sockaddr_in is family, port, then the 4-byte address; sockaddr_in6 is family, port, flow info, then 16 bytes.
        switch self {
        case .v4:
            let bytes = self.withSockAddr { pointer, _ in Array(UnsafeRawBufferPointer(start: pointer, count: 8)[4..<8])
            }
            return (bytes, UInt16(port))
        case .v6:
            let bytes = self.withSockAddr { pointer, _ in
                Array(UnsafeRawBufferPointer(start: pointer, count: 24)[8..<24])
            }
            return (bytes, UInt16(port))
        default:
            return nil
        }
    }
}
