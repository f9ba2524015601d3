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

import NIOCore

/// Puts the RTP packets of one source back in order, asks for the missing ones, and gives up on them in bounded
/// time.
///
/// A value-typed state machine: time comes in as an argument, nothing here reads a clock or sends anything. The
/// owner calls ``insert(_:at:)`` for each packet of the source, then ``drain(at:)`` for what can go out, and calls
/// ``nacks(at:roundTripTime:)`` and ``drain(at:)`` again at ``nextDeadline``.
///
/// - Packets leave in extended sequence number order (RFC 3550, A.1: the 16-bit number unwrapped against the
///   highest seen).
/// - A gap waits for at most ``Configuration/latency`` from the moment it was seen; then the buffer gives up and
///   reports ``Event/lost(count:)``, so the owner can ask for a keyframe and skip to it.
/// - Each missing sequence number is NACKed (RFC 4585) after ``Configuration/reorderDelay``, again after one round
///   trip (never sooner than ``Configuration/minimumNACKInterval``), at most ``Configuration/maximumNACKs`` times.
/// - What a peer controls is bounded: the packets held (``Configuration/maximumPackets``), their bytes
///   (``Configuration/maximumBytes``) and the gap tracked for NACKs (``Configuration/maximumMissing``). Past a
///   bound the buffer gives up on the oldest gap at once rather than grow.
public struct JitterBuffer: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// How long a gap may hold back the packets after it.
        public var latency: Duration = .milliseconds(300)
        /// The packets held at most.
        public var maximumPackets = 2048
        /// The payload bytes held at most.
        public var maximumBytes = 8 * 1024 * 1024
        /// The longest gap whose sequence numbers are NACKed; a longer one (a sender that skipped ahead) is given
        /// up at once.
        public var maximumMissing = 512
        /// How long a gap may be mere reordering before the first NACK.
        public var reorderDelay: Duration = .milliseconds(10)
        /// How many times one sequence number is NACKed.
        public var maximumNACKs = 5
        /// The least time between two NACKs of one sequence number, whatever the round trip.
        public var minimumNACKInterval: Duration = .milliseconds(20)
        /// How many packets in a row may arrive behind what already left before the buffer takes them as a new
        /// sequence (a sender that jumped its sequence numbers back) and starts over from the next one.
        public var maximumConsecutiveLate = 50

        public init() {}
    }

    /// What leaves the buffer.
    public enum Event: Sendable, Hashable {
        /// The next packet in order, with the time it arrived.
        case packet(RTPPacket, arrival: ContinuousClock.Instant)
        /// `count` packets before the next one never came (or came too late).
        case lost(count: Int)
    }

    /// What became of an inserted packet.
    public enum InsertResult: Sendable, Hashable {
        case accepted
        /// Already held.
        case duplicate
        /// Behind what already left the buffer: it was given up on, or it is a duplicate of something delivered.
        case late
    }

    /// Counters for reports and metrics.
    public struct Statistics: Sendable, Hashable {
        public var accepted = 0
        public var duplicates = 0
        public var late = 0
        /// Packets given up on.
        public var lost = 0
        /// NACK requests made, one per sequence number per request.
        public var nacked = 0
        /// Packets that arrived after they had been NACKed.
        public var recovered = 0
    }

    private struct Missing: Sendable {
        var detected: ContinuousClock.Instant
        var lastNACK: ContinuousClock.Instant?
        var nackCount = 0
    }

    public let configuration: Configuration
    public private(set) var statistics = Statistics()

    /// The extended sequence number of the next packet to leave, once the first packet came.
    private var nextOut: Int64?
    /// The highest extended sequence number received.
    private var highest: Int64 = 0
    private var held: [Int64: (packet: RTPPacket, arrival: ContinuousClock.Instant)] = [:]
    private var heldBytes = 0
    private var missing: [Int64: Missing] = [:]
    private var consecutiveLate = 0
    /// Packets dropped by a restart, reported as lost by the next drain.
    private var pendingLoss = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The number of packets held.
    public var count: Int { self.held.count }

    /// The highest sequence number received, extended with the wraparound count (for receiver reports).
    public var highestExtendedSequenceNumber: Int64? { self.nextOut == nil ? nil : self.highest }

    /// Unwraps a 16-bit sequence number against `reference`: the extended number closest to it.
    static func extend(_ sequenceNumber: UInt16, near reference: Int64) -> Int64 {
        let delta = Int16(bitPattern: sequenceNumber &- UInt16(truncatingIfNeeded: reference))
        return reference + Int64(delta)
    }

    /// Takes in one packet of the source.
    public mutating func insert(_ packet: RTPPacket, at now: ContinuousClock.Instant) -> InsertResult {
        guard let nextOut = self.nextOut else {
            let first = Int64(packet.sequenceNumber) + (1 << 16)  // room below for packets reordered before it
            self.nextOut = first
            self.highest = first
            self.hold(packet, at: first, arrival: now)
            return .accepted
        }
        let sequence = Self.extend(packet.sequenceNumber, near: self.highest)
        if sequence < nextOut {
            self.statistics.late += 1
            self.consecutiveLate += 1
            if self.consecutiveLate > self.configuration.maximumConsecutiveLate {
                // The sender's sequence numbers jumped back: start over, and report what was held as lost.
                self.pendingLoss += max(1, self.held.count)
                self.statistics.lost += self.held.count
                self.held = [:]
                self.heldBytes = 0
                self.missing = [:]
                self.nextOut = nil
                self.consecutiveLate = 0
                return self.insert(packet, at: now)
            }
            return .late
        }
        self.consecutiveLate = 0
        if self.held[sequence] != nil {
            self.statistics.duplicates += 1
            return .duplicate
        }
        if sequence > self.highest {
            let gap = sequence - self.highest - 1
            if gap > 0 && gap <= Int64(self.configuration.maximumMissing) {
                for missingSequence in (self.highest + 1)..<sequence {
                    self.missing[missingSequence] = Missing(detected: now)
                }
            }
            // A longer gap gets no entries: drain(at:) gives up at once on a gap without one.
            self.highest = sequence
        } else if let entry = self.missing.removeValue(forKey: sequence), entry.nackCount > 0 {
            self.statistics.recovered += 1
        }
        self.hold(packet, at: sequence, arrival: now)
        return .accepted
    }

    private mutating func hold(_ packet: RTPPacket, at sequence: Int64, arrival: ContinuousClock.Instant) {
        self.held[sequence] = (packet, arrival)
        self.heldBytes += packet.payload.readableBytes
        self.statistics.accepted += 1
    }

    /// Everything that can leave now: packets in order, and the gaps given up on.
    public mutating func drain(at now: ContinuousClock.Instant) -> [Event] {
        var events: [Event] = []
        if self.pendingLoss > 0 {
            events.append(.lost(count: self.pendingLoss))
            self.pendingLoss = 0
        }
        while let next = self.nextOut {
            if let entry = self.held.removeValue(forKey: next) {
                self.heldBytes -= entry.packet.payload.readableBytes
                events.append(.packet(entry.packet, arrival: entry.arrival))
                self.nextOut = next + 1
                continue
            }
            guard !self.held.isEmpty else { break }
            // A gap at `next` with packets waiting behind it.
            let overBounds =
                self.held.count > self.configuration.maximumPackets
                || self.heldBytes > self.configuration.maximumBytes
            let expired = self.missing[next].map { now >= $0.detected + self.configuration.latency } ?? true
            guard overBounds || expired else { break }
            let resume = self.held.keys.min()!
            for sequence in next..<resume {
                self.missing.removeValue(forKey: sequence)
            }
            let count = Int(resume - next)
            self.statistics.lost += count
            events.append(.lost(count: count))
            self.nextOut = resume
        }
        return events
    }

    /// The sequence numbers to NACK now, oldest first; each one returned counts as sent.
    ///
    /// - Parameter roundTripTime: The current estimate, from the transport; a NACK is repeated once a
    ///   retransmission had time to arrive.
    public mutating func nacks(at now: ContinuousClock.Instant, roundTripTime: Duration) -> [UInt16] {
        let interval = max(roundTripTime, self.configuration.minimumNACKInterval)
        var due: [UInt16] = []
        for sequence in self.missing.keys.sorted() {
            var entry = self.missing[sequence]!
            guard entry.nackCount < self.configuration.maximumNACKs,
                now >= entry.detected + self.configuration.reorderDelay
            else { continue }
            if let last = entry.lastNACK, now < last + interval { continue }
            entry.nackCount += 1
            entry.lastNACK = now
            self.missing[sequence] = entry
            due.append(UInt16(truncatingIfNeeded: sequence))
        }
        self.statistics.nacked += due.count
        return due
    }

    /// When ``drain(at:)`` or ``nacks(at:roundTripTime:)`` next has something to do, or `nil` while nothing is
    /// missing.
    public func nextDeadline(roundTripTime: Duration) -> ContinuousClock.Instant? {
        let interval = max(roundTripTime, self.configuration.minimumNACKInterval)
        var deadline: ContinuousClock.Instant? = nil
        for entry in self.missing.values {
            var candidate = entry.detected + self.configuration.latency
            if entry.nackCount < self.configuration.maximumNACKs {
                let nack = entry.lastNACK.map { $0 + interval } ?? entry.detected + self.configuration.reorderDelay
                candidate = min(candidate, nack)
            }
            deadline = min(deadline ?? candidate, candidate)
        }
        return deadline
    }
}

/// What a receiver report says about one source (RFC 3550, 6.4.1 and appendix A.3 and A.8), kept as packets arrive.
public struct ReceptionStatistics: Sendable {
    public let clockRate: Int
    private var baseSequence: Int64?
    private var highestSequence: Int64 = 0
    private var received: Int64 = 0
    private var expectedPrior: Int64 = 0
    private var receivedPrior: Int64 = 0
    private var lastTransit: Int64?
    /// The interarrival jitter, in timestamp units, times 16 (A.8 keeps it scaled to avoid rounding).
    private var jitterTimes16: Int64 = 0
    private var lastSenderReport: (middle: UInt32, arrival: ContinuousClock.Instant)?
    private let epoch: ContinuousClock.Instant

    public init(clockRate: Int, epoch: ContinuousClock.Instant) {
        self.clockRate = clockRate
        self.epoch = epoch
    }

    /// Counts one arriving packet (duplicates and reordering included, as A.3 does).
    public mutating func received(_ packet: RTPPacket, at arrival: ContinuousClock.Instant) {
        let sequence: Int64
        if self.baseSequence != nil {
            sequence = JitterBuffer.extend(packet.sequenceNumber, near: self.highestSequence)
        } else {
            sequence = Int64(packet.sequenceNumber) + (1 << 16)
            self.baseSequence = sequence
        }
        self.highestSequence = max(self.highestSequence, sequence)
        self.received += 1

        // A.8: the difference of relative transit times, in timestamp units.
        let arrivalUnits = (arrival - self.epoch).nanoseconds * Int64(self.clockRate) / 1_000_000_000
        let transit = arrivalUnits - Int64(packet.timestamp)
        if let lastTransit = self.lastTransit {
            let raw = transit - lastTransit
            // Timestamps wrap at 2^32: take the difference modulo that.
            let difference = abs(Int64(Int32(truncatingIfNeeded: raw)))
            self.jitterTimes16 += difference - ((self.jitterTimes16 + 8) >> 4)
        }
        self.lastTransit = transit
    }

    /// Notes a sender report from the source, for LSR and DLSR.
    public mutating func receivedSenderReport(ntpTimestamp: UInt64, at arrival: ContinuousClock.Instant) {
        self.lastSenderReport = (UInt32(truncatingIfNeeded: ntpTimestamp >> 16), arrival)
    }

    /// The report block for a receiver report sent now; the fraction lost covers the time since the previous call.
    public mutating func reportBlock(ssrc: UInt32, at now: ContinuousClock.Instant) -> RTCPReportBlock? {
        guard let base = self.baseSequence else { return nil }
        let expected = self.highestSequence - base + 1
        let lost = expected - self.received
        let expectedInterval = expected - self.expectedPrior
        let receivedInterval = self.received - self.receivedPrior
        self.expectedPrior = expected
        self.receivedPrior = self.received
        let lostInterval = expectedInterval - receivedInterval
        let fraction: UInt8 =
            expectedInterval <= 0 || lostInterval <= 0 ? 0 : UInt8(min(255, (lostInterval << 8) / expectedInterval))
        var delay: UInt32 = 0
        var middle: UInt32 = 0
        if let report = self.lastSenderReport {
            middle = report.middle
            delay = UInt32(clamping: (now - report.arrival).nanoseconds * 65536 / 1_000_000_000)
        }
        return RTCPReportBlock(
            ssrc: ssrc,
            fractionLost: fraction,
            cumulativeLost: Int32(clamping: lost),
            extendedHighestSequenceNumber: UInt32(truncatingIfNeeded: self.highestSequence - (1 << 16)),
            jitter: UInt32(clamping: self.jitterTimes16 >> 4),
            lastSenderReport: middle,
            delaySinceLastSenderReport: delay
        )
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating far beyond any media timescale).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }
}
