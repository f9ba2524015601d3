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

import LiveStreamModel
import Testing

@testable import LocalRuntime

@Suite("LocalStreamStatus")
struct LocalStreamStatusTests {
    typealias Phase = LiveStreamStatus.Phase

    static func phase(
        problem: String? = nil,
        suspended: Bool = false,
        _ relay: RelayStage,
        live: Int = 0,
        held: Int = 0
    ) -> Phase {
        LocalStreamStatus.phase(problem: problem, suspended: suspended, relay: relay, live: live, held: held)
    }

    @Test(arguments: [RelayStage.stopped, .restarting, .starting, .ready, .stopping])
    func aStreamWithAProblemHasFailedAndASuspendedOneIsSuspended(relay: RelayStage) {
        #expect(Self.phase(problem: "no Secret", relay, live: 1, held: 1) == .failed)
        #expect(Self.phase(problem: "no Secret", suspended: true, relay) == .failed)
        #expect(Self.phase(suspended: true, relay, live: 1, held: 1) == .suspended)
    }

    @Test func heldConnectionsKeepStarting() {
        #expect(Self.phase(.stopped, held: 1) == .starting)
        #expect(Self.phase(.stopping, held: 1) == .starting)
        // The relay is ready and the held connection is being handed over: not idle in between.
        #expect(Self.phase(.ready, held: 1) == .starting)
    }

    @Test func aStartingOrRestartingRelayIsStarting() {
        #expect(Self.phase(.starting) == .starting)
        #expect(Self.phase(.restarting) == .starting)
    }

    @Test func readyWithLiveConnectionsIsLive() {
        #expect(Self.phase(.ready, live: 1) == .live)
        #expect(Self.phase(.ready, live: 1, held: 1) == .live)
    }

    @Test func withoutConnectionsAStreamIsIdle() {
        #expect(Self.phase(.stopped) == .idle)
        #expect(Self.phase(.stopping) == .idle)
        #expect(Self.phase(.ready) == .idle)
    }

    @Test func anUpdateReturnsOnlyAChangedPhase() {
        var status = LocalStreamStatus()
        #expect(status.phase == nil)
        #expect(status.update(problem: nil, suspended: false, relay: .stopped, live: 0, held: 0) == .idle)
        #expect(status.update(problem: nil, suspended: false, relay: .stopped, live: 0, held: 0) == nil)
        #expect(status.update(problem: nil, suspended: false, relay: .starting, live: 0, held: 1) == .starting)
        #expect(status.update(problem: nil, suspended: false, relay: .ready, live: 1, held: 0) == .live)
        #expect(status.phase == .live)
    }

    @Test func targetsAreReportedWhenTheyChange() {
        typealias Target = LiveStreamStatus.TargetStatus
        var status = LocalStreamStatus()
        let pushing = Target(name: "youtube", state: "Pushing")
        let failing = Target(name: "twitch", state: "BackingOff", lastError: "connection refused")
        #expect(status.targetsRead([pushing, failing]) == [pushing, failing])
        // The same again, and a retry in between: nothing new.
        #expect(status.targetsRead([pushing, Target(name: "twitch", state: "Connecting")]) == [])
        #expect(status.targetsRead([pushing, failing]) == [])
        // Idle forgets, so the next publish reports the target again.
        #expect(status.targetsRead([Target(name: "youtube", state: "Idle"), failing]) == [])
        #expect(status.targets == ["twitch": failing])
        #expect(status.targetsRead([pushing]) == [pushing])
        // A new relay starts with none.
        status.relayReady()
        #expect(status.targets == [:])
        #expect(status.targetsRead([pushing, failing]) == [pushing, failing])
    }
}
