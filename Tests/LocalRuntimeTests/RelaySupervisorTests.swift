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

import Testing
import TimeSupport

@testable import LocalRuntime

/// A relay's life without processes or clocks: every relay is a value and every instant one the test makes up.
@Suite("RelaySupervisor")
struct RelaySupervisorTests {
    struct FakeRelay: SupervisedRelay {
        var generation: UInt64
    }

    typealias Supervisor = RelaySupervisor<FakeRelay>

    static let start = ContinuousClock.now
    static let ports = RelayProcess.Ports(rtmpPort: 41935, httpPort: 48080)
    static let crash = RelayExit(signalled: true, status: 11)
    /// Someone is connected: the relay is needed.
    static let connected = Supervisor.Demand(alwaysOn: false, idleSeconds: 60, connections: 1)
    /// Nobody is connected, and the stream scales to zero after a minute.
    static let nobody = Supervisor.Demand(alwaysOn: false, idleSeconds: 60, connections: 0)

    static func supervisor(maxRestartDelay: Duration = .seconds(10)) -> Supervisor {
        Supervisor(configuration: .init(maxRestartDelay: maxRestartDelay), now: Self.start)
    }

    static func at(_ seconds: Double) -> ContinuousClock.Instant {
        Self.start.advanced(by: .milliseconds(Int64(seconds * 1000)))
    }

    /// Spawns the relay of `generation` and reports it started.
    static func spawn(_ supervisor: inout Supervisor, generation: UInt64) {
        #expect(
            supervisor.relayStarted(FakeRelay(generation: generation)) == .started(FakeRelay(generation: generation))
        )
    }

    /// Activated, started and announced: a ready relay of `generation`.
    static func ready(_ supervisor: inout Supervisor, generation: UInt64, at now: ContinuousClock.Instant) {
        #expect(supervisor.activated(now: now) == .spawn)
        Self.spawn(&supervisor, generation: generation)
        let relay = FakeRelay(generation: generation)
        #expect(
            supervisor.announced(generation: generation, ports: Self.ports, now: now)
                == .ready(relay, ports: Self.ports)
        )
    }

    @Test func activationStartsARelayThatBecomesReady() {
        var supervisor = Self.supervisor()
        #expect(supervisor.stage == .stopped)
        #expect(supervisor.activated(now: Self.at(1)) == .spawn)
        #expect(supervisor.stage == .starting)
        #expect(supervisor.relay == nil)
        Self.spawn(&supervisor, generation: 1)
        #expect(supervisor.stage == .starting)
        #expect(supervisor.relay == FakeRelay(generation: 1))
        #expect(supervisor.readyPorts == nil)
        // A second connection while it starts changes nothing.
        #expect(supervisor.activated(now: Self.at(2)) == .none)
        #expect(
            supervisor.announced(generation: 1, ports: Self.ports, now: Self.at(3))
                == .ready(FakeRelay(generation: 1), ports: Self.ports)
        )
        #expect(supervisor.stage == .ready)
        #expect(supervisor.readyPorts == Self.ports)
        #expect(supervisor.lastActivity == Self.at(3))
        #expect(supervisor.activated(now: Self.at(4)) == .none)
    }

    @Test func anAlwaysOnStartOnlyStartsAStoppedRelay() {
        var supervisor = Self.supervisor()
        #expect(supervisor.startRequested() == .spawn)
        Self.spawn(&supervisor, generation: 1)
        #expect(supervisor.startRequested() == .none)
        _ = supervisor.announced(generation: 1, ports: Self.ports, now: Self.at(1))
        #expect(supervisor.startRequested() == .none)
    }

    @Test func aFailedSpawnLeavesTheRelayStopped() {
        var supervisor = Self.supervisor()
        #expect(supervisor.activated(now: Self.at(1)) == .spawn)
        supervisor.spawnFailed()
        #expect(supervisor.state == .stopped)
        #expect(supervisor.activated(now: Self.at(2)) == .spawn)
    }

    @Test func eventsOfAnotherGenerationAreIgnored() {
        var supervisor = Self.supervisor()
        _ = supervisor.activated(now: Self.at(1))
        Self.spawn(&supervisor, generation: 2)
        #expect(supervisor.announced(generation: 1, ports: Self.ports, now: Self.at(2)) == .none)
        #expect(supervisor.exited(generation: 1, exit: Self.crash, demand: Self.connected, now: Self.at(2)) == .none)
        #expect(supervisor.stopTimerFired(generation: 2) == .none)
        #expect(supervisor.restartTimerFired(generation: 2) == .none)
        #expect(supervisor.state == .starting(FakeRelay(generation: 2)))
    }

    // MARK: Crashes

    @Test func aCrashRestartsAtOnceThenAfterAGrowingDelayUpToTheMaximum() {
        var supervisor = Self.supervisor(maxRestartDelay: .seconds(3))
        var expected: [Duration] = [.zero, .milliseconds(500), .seconds(1), .seconds(2), .seconds(3), .seconds(3)]
        var generation: UInt64 = 1
        Self.ready(&supervisor, generation: generation, at: Self.at(0))
        while !expected.isEmpty {
            let delay = expected.removeFirst()
            let now = Self.at(Double(generation))
            let action = supervisor.exited(generation: generation, exit: Self.crash, demand: Self.connected, now: now)
            #expect(action == .crashed(FakeRelay(generation: generation), Self.crash, restartAfter: delay))
            #expect(supervisor.stage == .restarting)
            #expect(supervisor.crashes == Int(generation))
            #expect(supervisor.restartTimerFired(generation: generation) == .spawn)
            generation += 1
            Self.spawn(&supervisor, generation: generation)
            // It crashes before it is ready, as a relay that cannot start does, or a short while after.
            if generation.isMultiple(of: 2) {
                _ = supervisor.announced(generation: generation, ports: Self.ports, now: now)
            }
        }
    }

    @Test func aCrashAfterAStableRunCountsAsTheFirstAgain() {
        var supervisor = Self.supervisor()
        Self.ready(&supervisor, generation: 1, at: Self.at(0))
        _ = supervisor.exited(generation: 1, exit: Self.crash, demand: Self.connected, now: Self.at(1))
        _ = supervisor.restartTimerFired(generation: 1)
        Self.spawn(&supervisor, generation: 2)
        _ = supervisor.announced(generation: 2, ports: Self.ports, now: Self.at(2))
        // Ready for 31 s: stable.
        let action = supervisor.exited(generation: 2, exit: Self.crash, demand: Self.connected, now: Self.at(33))
        #expect(action == .crashed(FakeRelay(generation: 2), Self.crash, restartAfter: .zero))
        #expect(supervisor.crashes == 1)
    }

    @Test func aCrashWhenNobodyNeedsTheRelayStopsIt() {
        var supervisor = Self.supervisor()
        Self.ready(&supervisor, generation: 1, at: Self.at(0))
        // Nobody connected for longer than idleSeconds.
        let action = supervisor.exited(generation: 1, exit: Self.crash, demand: Self.nobody, now: Self.at(61))
        #expect(action == .crashed(FakeRelay(generation: 1), Self.crash, restartAfter: nil))
        #expect(supervisor.state == .stopped)
        #expect(supervisor.restartTimerFired(generation: 1) == .none)
    }

    @Test(arguments: [
        (Supervisor.Demand(alwaysOn: true, idleSeconds: 60, connections: 0), 61.0),
        (Supervisor.Demand(alwaysOn: false, idleSeconds: 60, connections: 2), 61.0),
        (Supervisor.Demand(alwaysOn: false, idleSeconds: 60, connections: 0), 59.0),
    ])
    func aCrashWhenSomeoneNeedsTheRelayRestartsIt(demand: Supervisor.Demand, seconds: Double) {
        var supervisor = Self.supervisor()
        Self.ready(&supervisor, generation: 1, at: Self.at(0))
        let action = supervisor.exited(generation: 1, exit: Self.crash, demand: demand, now: Self.at(seconds))
        #expect(action == .crashed(FakeRelay(generation: 1), Self.crash, restartAfter: .zero))
        #expect(supervisor.state == .restarting(after: 1))
    }

    @Test func anActivationDoesNotWaitOutACrashDelay() {
        var supervisor = Self.supervisor()
        Self.ready(&supervisor, generation: 1, at: Self.at(0))
        _ = supervisor.exited(generation: 1, exit: Self.crash, demand: Self.connected, now: Self.at(1))
        _ = supervisor.restartTimerFired(generation: 1)
        Self.spawn(&supervisor, generation: 2)
        let action = supervisor.exited(generation: 2, exit: Self.crash, demand: Self.connected, now: Self.at(2))
        #expect(action == .crashed(FakeRelay(generation: 2), Self.crash, restartAfter: .milliseconds(500)))
        #expect(supervisor.activated(now: Self.at(2.1)) == .spawn)
        Self.spawn(&supervisor, generation: 3)
        // The timer of the crash fires late: ignored.
        #expect(supervisor.restartTimerFired(generation: 2) == .none)
        #expect(supervisor.state == .starting(FakeRelay(generation: 3)))
    }

    // MARK: Stops

    @Test func aStopTerminatesThenKillsARelayThatDoesNotExit() {
        var supervisor = Self.supervisor()
        Self.ready(&supervisor, generation: 1, at: Self.at(0))
        #expect(supervisor.stopRequested(reason: "suspended", then: .nothing) == .terminate(FakeRelay(generation: 1)))
        #expect(supervisor.stage == .stopping)
        #expect(supervisor.relay == FakeRelay(generation: 1))
        #expect(supervisor.stopTimerFired(generation: 1) == .kill(FakeRelay(generation: 1)))
        let action = supervisor.exited(generation: 1, exit: Self.crash, demand: Self.connected, now: Self.at(11))
        #expect(action == .stopped(reason: "suspended", then: .nothing))
        #expect(supervisor.state == .stopped)
        #expect(supervisor.crashes == 0)
        // The timer of a relay that has exited: ignored.
        #expect(supervisor.stopTimerFired(generation: 1) == .none)
    }

    @Test func aStopOfAStartingRelayTerminatesIt() {
        var supervisor = Self.supervisor()
        _ = supervisor.activated(now: Self.at(0))
        Self.spawn(&supervisor, generation: 1)
        #expect(supervisor.stopRequested(reason: "changed", then: .startAgain) == .terminate(FakeRelay(generation: 1)))
        // Its announcement comes too late.
        #expect(supervisor.announced(generation: 1, ports: Self.ports, now: Self.at(1)) == .none)
    }

    @Test func stopThenStart() {
        var supervisor = Self.supervisor()
        Self.ready(&supervisor, generation: 1, at: Self.at(0))
        #expect(supervisor.stopRequested(reason: "changed", then: .startAgain) == .terminate(FakeRelay(generation: 1)))
        let action = supervisor.exited(generation: 1, exit: Self.crash, demand: Self.nobody, now: Self.at(1))
        #expect(action == .stopped(reason: "changed", then: .startAgain))
        #expect(supervisor.state == .spawning)
        Self.spawn(&supervisor, generation: 2)
    }

    @Test func anActivationWhileStoppingStartsAgainOnceStopped() {
        var supervisor = Self.supervisor()
        Self.ready(&supervisor, generation: 1, at: Self.at(0))
        _ = supervisor.tick(Self.nobody, now: Self.at(60))
        #expect(supervisor.state == .stopping(FakeRelay(generation: 1), reason: "idle for 60 s", then: .nothing))
        #expect(supervisor.activated(now: Self.at(61)) == .none)
        let action = supervisor.exited(generation: 1, exit: Self.crash, demand: Self.connected, now: Self.at(62))
        #expect(action == .stopped(reason: "idle for 60 s", then: .startAgain))
        #expect(supervisor.state == .spawning)
    }

    @Test func stopThenForget() {
        var supervisor = Self.supervisor()
        Self.ready(&supervisor, generation: 1, at: Self.at(0))
        _ = supervisor.stopRequested(reason: "changed", then: .startAgain)
        // A second stop while stopping: the later reason and outcome win; the relay is signalled once.
        #expect(supervisor.stopRequested(reason: "removed", then: .forget) == .none)
        let action = supervisor.exited(generation: 1, exit: Self.crash, demand: Self.nobody, now: Self.at(1))
        #expect(action == .stopped(reason: "removed", then: .forget))
        #expect(supervisor.state == .stopped)
    }

    @Test func aStopWithoutARelay() {
        var stopped = Self.supervisor()
        #expect(stopped.stopRequested(reason: "suspended", then: .nothing) == .none)
        #expect(stopped.stopRequested(reason: "removed", then: .forget) == .forget)

        var restarting = Self.supervisor()
        Self.ready(&restarting, generation: 1, at: Self.at(0))
        _ = restarting.exited(generation: 1, exit: Self.crash, demand: Self.connected, now: Self.at(1))
        #expect(restarting.stopRequested(reason: "suspended", then: .nothing) == .none)
        #expect(restarting.state == .stopped)
        #expect(restarting.restartTimerFired(generation: 1) == .none)
    }

    // MARK: Idle

    @Test func anIdleRelayStopsAfterIdleSeconds() {
        var supervisor = Self.supervisor()
        Self.ready(&supervisor, generation: 1, at: Self.at(0))
        #expect(supervisor.tick(Self.nobody, now: Self.at(59)) == .none)
        // A connection is activity: the idle time counts from the last tick that saw one.
        #expect(supervisor.tick(Self.connected, now: Self.at(30)) == .none)
        #expect(supervisor.lastActivity == Self.at(30))
        #expect(supervisor.tick(Self.nobody, now: Self.at(89)) == .none)
        #expect(supervisor.tick(Self.nobody, now: Self.at(90)) == .terminate(FakeRelay(generation: 1)))
        #expect(supervisor.state == .stopping(FakeRelay(generation: 1), reason: "idle for 60 s", then: .nothing))
    }

    @Test func anAlwaysOnRelayIsNeverIdle() {
        var supervisor = Self.supervisor()
        Self.ready(&supervisor, generation: 1, at: Self.at(0))
        let demand = Supervisor.Demand(alwaysOn: true, idleSeconds: 60, connections: 0)
        #expect(supervisor.tick(demand, now: Self.at(3600)) == .none)
        #expect(supervisor.stage == .ready)
    }

    @Test func onlyAReadyRelayStopsWhenIdle() {
        var supervisor = Self.supervisor()
        _ = supervisor.activated(now: Self.at(0))
        Self.spawn(&supervisor, generation: 1)
        #expect(supervisor.tick(Self.nobody, now: Self.at(120)) == .none)
        #expect(supervisor.stage == .starting)
    }
}
