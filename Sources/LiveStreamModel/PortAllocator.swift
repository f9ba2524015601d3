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

/// The ports streams may be given, inclusive at both ends (`31000-31999`).
public struct PortRange: Hashable, Sendable, CustomStringConvertible {
    public let lowerBound: Int
    public let upperBound: Int

    public init(_ range: ClosedRange<Int>) throws(FieldError) {
        guard range.lowerBound >= 1, range.upperBound <= 65535 else {
            throw FieldError(
                field: "portRange",
                message: "must lie within 1-65535, got \(range.lowerBound)-\(range.upperBound)"
            )
        }
        self.lowerBound = range.lowerBound
        self.upperBound = range.upperBound
    }

    /// Parses `LOW-HIGH` (or a single port).
    public init(parsing text: String) throws(FieldError) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard (1...2).contains(parts.count), let low = Int(parts[0]), let high = Int(parts[parts.count - 1]),
            low <= high
        else {
            throw FieldError(field: "portRange", message: "must be LOW-HIGH with LOW <= HIGH, got \"\(text)\"")
        }
        try self.init(low...high)
    }

    public static let operatorDefault = try! PortRange(31000...31999)

    public var count: Int { self.upperBound - self.lowerBound + 1 }

    public func contains(_ port: Int) -> Bool { (self.lowerBound...self.upperBound).contains(port) }

    public var description: String { "\(self.lowerBound)-\(self.upperBound)" }
}

/// A stream that holds or wants a port, with what decides conflicts: the older resource keeps its port.
public struct PortClaimant: Hashable, Sendable {
    public var stream: StreamID
    /// When the resource was created, as RFC 3339 (`metadata.creationTimestamp`); such strings sort by time.
    public var createdAt: String

    public init(stream: StreamID, createdAt: String) {
        self.stream = stream
        self.createdAt = createdAt
    }

    /// Whether this claimant wins a port over `other`: the older one, and between equals the one that sorts first
    /// by namespace and name, so every replica of the operator decides alike.
    public func precedes(_ other: PortClaimant) -> Bool {
        if self.createdAt != other.createdAt {
            return self.createdAt < other.createdAt
        }
        return (self.stream.namespace, self.stream.name) < (other.stream.namespace, other.stream.name)
    }
}

/// Why allocation failed, in words for a status condition.
public enum PortAllocationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Every port of the range is taken.
    case exhausted(PortRange)
    /// A fixed port outside the range.
    case outOfRange(port: Int, range: PortRange)
    /// A fixed port that an older stream holds.
    case taken(port: Int, by: StreamID)

    public var description: String {
        switch self {
        case .exhausted(let range):
            "all \(range.count) ports of the range \(range) are taken; widen the range or delete unused LiveStreams"
        case .outOfRange(let port, let range):
            "spec.ingest.port \(port) is outside the port range \(range)"
        case .taken(let port, let owner):
            "spec.ingest.port \(port) is already taken by LiveStream \(owner)"
        }
    }

    /// A CamelCase reason for the `PortAllocated` condition.
    public var reason: String {
        switch self {
        case .exhausted: "RangeExhausted"
        case .outOfRange: "PortOutOfRange"
        case .taken: "PortTaken"
        }
    }
}

/// A stream that lost a port it had recorded: to an older stream, or because the range no longer holds it.
public struct PortDisplacement: Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case keptBy(StreamID)
        case outOfRange(PortRange)
    }
    public var stream: StreamID
    public var port: Int
    public var reason: Reason

    public init(stream: StreamID, port: Int, reason: Reason) {
        self.stream = stream
        self.port = port
        self.reason = reason
    }

    public var description: String {
        switch self.reason {
        case .keptBy(let owner): "port \(self.port) is kept by the older LiveStream \(owner)"
        case .outOfRange(let range): "port \(self.port) is outside the port range \(range)"
        }
    }
}

/// Which stream holds which port of a range: a value, with no I/O, so one lock around it makes allocation atomic
/// for any number of workers.
///
/// Built from what every stream recorded (``record(_:port:)``, older wins), then kept current by ``allocate(for:requested:)``
/// and ``release(_:)``. A port is never held by two streams, and a stream holds at most one port.
public struct PortAllocator: Sendable {
    public let range: PortRange
    private var owners: [Int: PortClaimant] = [:]
    private var ports: [StreamID: Int] = [:]
    /// Where the search for a free port starts; moves on after each allocation, so a port just released is not the
    /// next one handed out (a stale encoder aimed at it would reach the wrong stream).
    private var cursor: Int

    public init(range: PortRange) {
        self.range = range
        self.cursor = range.lowerBound
    }

    /// The port `stream` holds.
    public func port(of stream: StreamID) -> Int? { self.ports[stream] }

    /// The stream holding `port`.
    public func owner(of port: Int) -> StreamID? { self.owners[port]?.stream }

    /// How many ports are held.
    public var allocatedCount: Int { self.owners.count }

    /// Takes note of a port a stream recorded earlier (its status), when rebuilding. On a conflict the older stream
    /// keeps the port and the other is displaced, whichever was recorded first; a port outside the range is not
    /// taken. Returns the stream that lost, if any.
    @discardableResult
    public mutating func record(_ claimant: PortClaimant, port: Int) -> PortDisplacement? {
        guard self.range.contains(port) else {
            return PortDisplacement(stream: claimant.stream, port: port, reason: .outOfRange(self.range))
        }
        if let held = self.ports[claimant.stream], held != port {
            self.owners[held] = nil
        }
        if let owner = self.owners[port], owner.stream != claimant.stream {
            if owner.precedes(claimant) {
                if self.ports[claimant.stream] == nil || self.ports[claimant.stream] == port {
                    self.ports[claimant.stream] = nil
                }
                return PortDisplacement(stream: claimant.stream, port: port, reason: .keptBy(owner.stream))
            }
            self.ports[owner.stream] = nil
            self.owners[port] = claimant
            self.ports[claimant.stream] = port
            return PortDisplacement(stream: owner.stream, port: port, reason: .keptBy(claimant.stream))
        }
        self.owners[port] = claimant
        self.ports[claimant.stream] = port
        return nil
    }

    /// The port for `claimant`: the one it holds, the `requested` one (0 = any), or the next free one. Idempotent: a
    /// stream asking again gets the same port. A stream that asks for a different fixed port moves to it and frees
    /// the old one, but only if the new one is free.
    public mutating func allocate(for claimant: PortClaimant, requested: Int = 0) throws(PortAllocationError) -> Int {
        let held = self.ports[claimant.stream]
        if let held, requested == 0 || requested == held {
            return held
        }
        if requested != 0 {
            guard self.range.contains(requested) else {
                throw .outOfRange(port: requested, range: self.range)
            }
            if let owner = self.owners[requested], owner.stream != claimant.stream {
                throw .taken(port: requested, by: owner.stream)
            }
            self.take(requested, for: claimant, releasing: held)
            return requested
        }
        guard self.owners.count < self.range.count else {
            throw .exhausted(self.range)
        }
        var port = self.cursor
        while self.owners[port] != nil {
            port = port == self.range.upperBound ? self.range.lowerBound : port + 1
        }
        self.take(port, for: claimant, releasing: held)
        self.cursor = port == self.range.upperBound ? self.range.lowerBound : port + 1
        return port
    }

    /// Frees the port `stream` holds, if any, and returns it.
    @discardableResult
    public mutating func release(_ stream: StreamID) -> Int? {
        guard let port = self.ports.removeValue(forKey: stream) else {
            return nil
        }
        self.owners[port] = nil
        return port
    }

    private mutating func take(_ port: Int, for claimant: PortClaimant, releasing held: Int?) {
        if let held {
            self.owners[held] = nil
        }
        self.owners[port] = claimant
        self.ports[claimant.stream] = port
    }
}
