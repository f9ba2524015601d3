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

/// Which session a datagram on the shared port belongs to: STUN by the local ICE username fragment in USERNAME
/// (RFC 8445 §7.2.2), everything else by the remote address that passed a check for that session.
public struct SessionRouter<SessionID: Hashable & Sendable>: Sendable {
    private var byFragment: [String: SessionID] = [:]
    private var byAddress: [SocketAddress: SessionID] = [:]
    private var addressesOf: [SessionID: Set<SocketAddress>] = [:]

    public init() {}

    /// The number of sessions.
    public var count: Int { self.byFragment.count }

    /// Adds a session under its local username fragment; false when the fragment is taken.
    public mutating func register(_ id: SessionID, localUsernameFragment: String) -> Bool {
        guard self.byFragment[localUsernameFragment] == nil else { return false }
        self.byFragment[localUsernameFragment] = id
        self.addressesOf[id] = []
        return true
    }

    /// Moves a session to a new local username fragment (an ICE restart): STUN naming the old one no longer reaches
    /// it, the addresses that passed a check stay its own. False, and nothing changed, for an unknown session or a
    /// fragment another session has.
    public mutating func rekey(_ id: SessionID, localUsernameFragment: String) -> Bool {
        guard self.addressesOf[id] != nil else { return false }
        if let owner = self.byFragment[localUsernameFragment] { return owner == id }
        self.byFragment = self.byFragment.filter { $0.value != id }
        self.byFragment[localUsernameFragment] = id
        return true
    }

    /// The session a STUN request with this USERNAME ("local:remote") is for.
    public func session(forUsername username: String) -> SessionID? {
        guard let colon = username.firstIndex(of: ":") else { return nil }
        return self.byFragment[String(username[..<colon])]
    }

    /// The session that owns datagrams from `address`.
    public func session(for address: SocketAddress) -> SessionID? {
        self.byAddress[address]
    }

    /// Records that `address` passed a check for `id`. An address belongs to one session: the latest check wins
    /// (a peer that restarts from the same port).
    public mutating func bind(_ address: SocketAddress, to id: SessionID) {
        guard self.addressesOf[id] != nil else { return }
        if let previous = self.byAddress[address], previous != id {
            self.addressesOf[previous]?.remove(address)
        }
        self.byAddress[address] = id
        self.addressesOf[id]?.insert(address)
    }

    /// Forgets an address of `id` (the agent evicted it).
    public mutating func unbind(_ address: SocketAddress, from id: SessionID) {
        guard self.byAddress[address] == id else { return }
        self.byAddress[address] = nil
        self.addressesOf[id]?.remove(address)
    }

    /// Removes a session and all its addresses.
    public mutating func remove(_ id: SessionID) {
        for address in self.addressesOf.removeValue(forKey: id) ?? [] where self.byAddress[address] == id {
            self.byAddress[address] = nil
        }
        self.byFragment = self.byFragment.filter { $0.value != id }
    }
}
