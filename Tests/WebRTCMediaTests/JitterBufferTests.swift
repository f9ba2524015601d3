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
import Testing

@testable import WebRTCMedia

@Suite struct JitterBufferTests {
    let start = ContinuousClock.now

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { self.start + .milliseconds(milliseconds) }

    func sequenceNumbers(_ events: [JitterBuffer.Event]) -> [String] {
        events.map { event in
            switch event {
            case .packet(let packet, _): "\(packet.sequenceNumber)"
            case .lost(let count): "lost \(count)"
            }
        }
    }

    @Test func deliversInOrderAcrossTheSequenceNumberWrap() {
        var buffer = JitterBuffer()
        var delivered: [String] = []
        for (index, sequenceNumber) in [UInt16(65534), 65535, 0, 1].enumerated() {
            #expect(buffer.insert(rtp(sequenceNumber), at: self.at(index)) == .accepted)
            delivered += self.sequenceNumbers(buffer.drain(at: self.at(index)))
        }
        #expect(delivered == ["65534", "65535", "0", "1"])
    }

    @Test func reordersAndRefusesDuplicatesAndLatePackets() {
        var buffer = JitterBuffer()
        _ = buffer.insert(rtp(10), at: self.at(0))
        #expect(self.sequenceNumbers(buffer.drain(at: self.at(0))) == ["10"])
        _ = buffer.insert(rtp(13), at: self.at(1))
        _ = buffer.insert(rtp(12), at: self.at(2))
        #expect(buffer.insert(rtp(13), at: self.at(3)) == .duplicate)
        #expect(buffer.drain(at: self.at(3)).isEmpty)
        _ = buffer.insert(rtp(11), at: self.at(4))
        #expect(self.sequenceNumbers(buffer.drain(at: self.at(4))) == ["11", "12", "13"])
        #expect(buffer.insert(rtp(12), at: self.at(5)) == .late)
        #expect(buffer.statistics.duplicates == 1 && buffer.statistics.late == 1)
    }

    @Test func nacksAfterTheReorderDelayThenOncePerRoundTripUpToTheLimit() {
        var configuration = JitterBuffer.Configuration()
        configuration.latency = .seconds(10)
        configuration.reorderDelay = .milliseconds(10)
        configuration.maximumNACKs = 3
        configuration.minimumNACKInterval = .milliseconds(20)
        var buffer = JitterBuffer(configuration: configuration)
        _ = buffer.insert(rtp(1), at: self.at(0))
        _ = buffer.insert(rtp(4), at: self.at(0))
        #expect(buffer.nacks(at: self.at(5), roundTripTime: .milliseconds(50)).isEmpty)
        #expect(buffer.nextDeadline(roundTripTime: .milliseconds(50)) == self.at(10))
        #expect(buffer.nacks(at: self.at(10), roundTripTime: .milliseconds(50)) == [2, 3])
        // Not again before a round trip has passed.
        #expect(buffer.nacks(at: self.at(59), roundTripTime: .milliseconds(50)).isEmpty)
        #expect(buffer.nextDeadline(roundTripTime: .milliseconds(50)) == self.at(60))
        _ = buffer.insert(rtp(2), at: self.at(59))
        #expect(buffer.nacks(at: self.at(60), roundTripTime: .milliseconds(50)) == [3])
        // A short round trip is spaced by the minimum interval.
        #expect(buffer.nacks(at: self.at(70), roundTripTime: .milliseconds(1)).isEmpty)
        #expect(buffer.nacks(at: self.at(80), roundTripTime: .milliseconds(1)) == [3])
        // Three times at most.
        #expect(buffer.nacks(at: self.at(500), roundTripTime: .milliseconds(1)).isEmpty)
        #expect(buffer.statistics.nacked == 4 && buffer.statistics.recovered == 1)
    }

    @Test func givesUpOnAGapAfterTheLatency() {
        var configuration = JitterBuffer.Configuration()
        configuration.latency = .milliseconds(100)
        var buffer = JitterBuffer(configuration: configuration)
        _ = buffer.insert(rtp(1), at: self.at(0))
        _ = buffer.insert(rtp(4), at: self.at(10))
        _ = buffer.insert(rtp(5), at: self.at(20))
        #expect(self.sequenceNumbers(buffer.drain(at: self.at(109))) == ["1"])
        #expect(buffer.nextDeadline(roundTripTime: .seconds(1)) == self.at(20))  // the first NACK
        _ = buffer.nacks(at: self.at(20), roundTripTime: .seconds(1))
        #expect(buffer.nextDeadline(roundTripTime: .seconds(1)) == self.at(110))
        #expect(self.sequenceNumbers(buffer.drain(at: self.at(110))) == ["lost 2", "4", "5"])
        #expect(buffer.insert(rtp(3), at: self.at(111)) == .late)
        #expect(buffer.statistics.lost == 2)
        #expect(buffer.nextDeadline(roundTripTime: .seconds(1)) == nil)
    }

    @Test func boundsWhatAPeerCanMakeItHold() {
        var configuration = JitterBuffer.Configuration()
        configuration.latency = .seconds(10)
        configuration.maximumPackets = 4
        configuration.maximumMissing = 8
        var buffer = JitterBuffer(configuration: configuration)
        _ = buffer.insert(rtp(0), at: self.at(0))
        #expect(self.sequenceNumbers(buffer.drain(at: self.at(0))) == ["0"])
        // A gap of 1 holding back more packets than allowed: given up at once.
        for sequenceNumber in UInt16(2)...6 {
            _ = buffer.insert(rtp(sequenceNumber), at: self.at(1))
        }
        #expect(self.sequenceNumbers(buffer.drain(at: self.at(1))) == ["lost 1", "2", "3", "4", "5", "6"])
        // A jump longer than the NACK window is not NACKed but given up on at the next drain.
        _ = buffer.insert(rtp(1000), at: self.at(2))
        #expect(buffer.nacks(at: self.at(100), roundTripTime: .milliseconds(1)).isEmpty)
        #expect(self.sequenceNumbers(buffer.drain(at: self.at(2))) == ["lost 993", "1000"])
        #expect(buffer.count == 0)
    }
}

@Suite struct ReceptionStatisticsTests {
    @Test func reportsLossAndJitter() {
        let start = ContinuousClock.now
        var statistics = ReceptionStatistics(clockRate: 90000, epoch: start)
        // Packets every 10 ms (900 ticks), one missing, one arriving 1 ms late.
        for (index, sequenceNumber) in [UInt16(100), 101, 103, 104].enumerated() {
            let late = sequenceNumber == 103 ? 1 : 0
            let packet = rtp(sequenceNumber, timestamp: UInt32(sequenceNumber - 100) * 900)
            statistics.received(packet, at: start + .milliseconds(10 * Int(sequenceNumber - 100) + late))
            _ = index
        }
        statistics.receivedSenderReport(ntpTimestamp: 0x1234_5678_9ABC_DEF0, at: start + .milliseconds(10))
        let block = statistics.reportBlock(ssrc: 7, at: start + .milliseconds(1010))!
        #expect(block.ssrc == 7)
        #expect(block.cumulativeLost == 1)
        #expect(block.fractionLost == 51)  // 1 of 5, in 1/256
        #expect(block.extendedHighestSequenceNumber == 104)
        #expect(block.jitter == 10)  // two 90-tick deviations through the 1/16 filter of RFC 3550 A.8
        #expect(block.lastSenderReport == 0x5678_9ABC)
        #expect(block.delaySinceLastSenderReport == 65536)
        // The fraction covers only the time since the last report.
        #expect(statistics.reportBlock(ssrc: 7, at: start + .seconds(2))!.fractionLost == 0)
    }
}

extension JitterBufferTests {
    @Test func startsOverWhenTheSenderJumpsItsSequenceNumbersBack() {
        var configuration = JitterBuffer.Configuration()
        configuration.maximumConsecutiveLate = 3
        var buffer = JitterBuffer(configuration: configuration)
        _ = buffer.insert(rtp(20000), at: self.at(0))
        _ = buffer.drain(at: self.at(0))
        var results: [JitterBuffer.InsertResult] = []
        for sequenceNumber in UInt16(100)...103 {
            results.append(buffer.insert(rtp(sequenceNumber), at: self.at(1)))
        }
        #expect(results == [.late, .late, .late, .accepted])
        _ = buffer.insert(rtp(104), at: self.at(2))
        #expect(self.sequenceNumbers(buffer.drain(at: self.at(2))) == ["lost 1", "103", "104"])
    }
}
