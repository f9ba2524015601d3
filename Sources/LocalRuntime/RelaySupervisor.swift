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

import TimeSupport

/// A relay child process as ``RelaySupervisor`` sees it: ``RelayProcess`` in local mode, a plain value in tests.
protocol SupervisedRelay: Hashable, Sendable {
    /// Distinguishes this start from every other, so a late event of a replaced relay is recognised and ignored.
    var generation: UInt64 { get }
}

/// Where a stream's relay is in its life, for the status derivation (``LocalStreamStatus``).
enum RelayStage: Hashable, Sendable {
    case stopped
    /// Waiting to start again after a crash.
    case restarting
    /// Asked to start, or started and not yet announced its ports.
    case starting
    /// Announced its ports: the gateway proxies to it.
    case ready
    /// Asked to stop, not yet exited.
    case stopping
}

/// The life of one stream's relay in local mode, as events in and actions out, for ``LocalController`` to perform.
///
/// The supervisor reads no clock and starts no process: every event that depends on time takes `now`, and every
/// process or timer it wants comes back as an action. The controller spawns the process and reports it with
/// ``relayStarted(_:)`` (or ``spawnFailed()``) at once, schedules the timers and reports them when they fire. Events
/// of a relay that was replaced since (an older `generation`) and timers whose moment has passed are ignored, so
/// the controller's cancelling a timer is an economy, never a condition of being right.
///
///     stopped ─start or activated─▶ spawning ─started─▶ starting ─announced─▶ ready
///     starting or ready ─stop─▶ stopping ─exited─▶ stopped (then nothing, spawning again, or forgotten)
///     starting or ready ─exited─▶ restarting ─restart timer─▶ spawning       (while someone needs it)
///     starting or ready ─exited─▶ stopped                                     (nobody needs it)
///
/// A relay that crashes is restarted at once the first time (an encoder is probably reconnecting now), then after
/// the restart backoff's delays: 0.5 s, 1 s, 2 s, ... up to the maximum. A relay that ran ready for longer than
/// ``Configuration/stableAfter`` before it crashed starts the count again.
struct RelaySupervisor<Relay: SupervisedRelay>: Sendable {
    struct Configuration: Hashable, Sendable {
        /// The delay before the restart that follows the `n`-th consecutive crash is this backoff's nominal delay
        /// after `n - 1` failures (the first restart is immediate).
        var restartBackoff: Backoff
        /// How long a relay must have been ready for its crash to count as the first again.
        var stableAfter: Duration

        init(restartBackoff: Backoff, stableAfter: Duration = .seconds(30)) {
            self.restartBackoff = restartBackoff
            self.stableAfter = stableAfter
        }

        /// 0.5 s, doubling, up to `maxRestartDelay`, without jitter (one relay per stream: nobody to spread from).
        init(maxRestartDelay: Duration) {
            self.init(restartBackoff: Backoff(initial: .milliseconds(500), maximum: maxRestartDelay, jitter: .none))
        }
    }

    /// What to do once a relay that was asked to stop has exited.
    enum AfterStop: Hashable, Sendable {
        case nothing
        case startAgain
        /// The stream is gone: the controller forgets it.
        case forget
    }

    /// Whether someone needs the stream's relay now: the "needed" half of a crash or an idle relay.
    struct Demand: Hashable, Sendable {
        /// The stream keeps a relay with nobody connected (`spec.scaling.minReplicas > 0`).
        var alwaysOn: Bool
        /// How long a relay runs on after its last connection (`spec.scaling.idleSeconds`).
        var idleSeconds: Int
        /// The gateway's connections for the stream: proxied to the relay, and held waiting for it.
        var connections: Int
    }

    enum State: Hashable, Sendable {
        case stopped
        /// Waiting for the restart timer of the crashed relay of this generation.
        case restarting(after: UInt64)
        /// ``Action/spawn`` was returned; the controller reports the outcome before any other event.
        case spawning
        case starting(Relay)
        case ready(Relay, ports: RelayProcess.Ports)
        case stopping(Relay, reason: String, then: AfterStop)
    }

    /// What the controller does next.
    enum Action: Hashable, Sendable {
        case none
        /// Start a relay process and report it with ``RelaySupervisor/relayStarted(_:)``, or
        /// ``RelaySupervisor/spawnFailed()`` when it cannot be started.
        case spawn
        /// The relay process runs (``LocalEvent/relayStarting(_:pid:)``).
        case started(Relay)
        /// The relay announced its ports: the gateway routes to it (``LocalEvent/relayReady(_:pid:rtmpPort:httpPort:)``).
        case ready(Relay, ports: RelayProcess.Ports)
        /// Ask the relay to drain and stop (SIGTERM), and report ``RelaySupervisor/stopTimerFired(generation:)``
        /// after the stop timeout.
        case terminate(Relay)
        /// The relay did not stop within the stop timeout: end it at once (SIGKILL).
        case kill(Relay)
        /// The relay exited as asked (``LocalEvent/relayStopped(_:reason:)``); with `startAgain`, also spawn a new
        /// one (the supervisor is ``State/spawning``), with `forget`, forget the stream.
        case stopped(reason: String, then: AfterStop)
        /// The relay ended on its own (``LocalEvent/relayCrashed(_:exit:restartIn:)``). With a delay, report
        /// ``RelaySupervisor/restartTimerFired(generation:)`` with this relay's generation after it; without, nobody
        /// needs the relay and it stays stopped.
        case crashed(Relay, RelayExit, restartAfter: Duration?)
        /// A stream without a relay was asked to stop and be forgotten: forget it now.
        case forget
    }

    let configuration: Configuration
    private(set) var state: State = .stopped
    /// Consecutive crashes, counting from the last that followed a stable run.
    private(set) var crashes = 0
    private var readySince: ContinuousClock.Instant?
    /// The last time someone needed the relay: a connection, an activation, the relay becoming ready.
    private(set) var lastActivity: ContinuousClock.Instant

    init(configuration: Configuration, now: ContinuousClock.Instant) {
        self.configuration = configuration
        self.lastActivity = now
    }

    /// The relay process, from its start until it has exited.
    var relay: Relay? {
        switch self.state {
        case .starting(let relay), .ready(let relay, _), .stopping(let relay, _, _): relay
        case .stopped, .restarting, .spawning: nil
        }
    }

    /// The ports of a ready relay.
    var readyPorts: RelayProcess.Ports? {
        guard case .ready(_, let ports) = self.state else {
            return nil
        }
        return ports
    }

    var stage: RelayStage {
        switch self.state {
        case .stopped: .stopped
        case .restarting: .restarting
        case .spawning, .starting: .starting
        case .ready: .ready
        case .stopping: .stopping
        }
    }

    // MARK: Starting

    /// The gateway holds a connection for the stream: start a relay unless one is on its way, without waiting out a
    /// crash delay.
    mutating func activated(now: ContinuousClock.Instant) -> Action {
        self.lastActivity = now
        switch self.state {
        case .stopped, .restarting:
            self.state = .spawning
            return .spawn
        case .stopping(let relay, let reason, _):
            self.state = .stopping(relay, reason: reason, then: .startAgain)
            return .none
        case .spawning, .starting, .ready:
            return .none
        }
    }

    /// Start a relay if none runs or is on its way (a stream that is always on).
    mutating func startRequested() -> Action {
        guard case .stopped = self.state else {
            return .none
        }
        self.state = .spawning
        return .spawn
    }

    /// The process of ``Action/spawn`` runs.
    mutating func relayStarted(_ relay: Relay) -> Action {
        precondition(self.state == .spawning, "relayStarted in \(self.state)")
        self.state = .starting(relay)
        return .started(relay)
    }

    /// The process of ``Action/spawn`` could not be started (the stream has a problem now).
    mutating func spawnFailed() {
        precondition(self.state == .spawning, "spawnFailed in \(self.state)")
        self.state = .stopped
    }

    mutating func announced(generation: UInt64, ports: RelayProcess.Ports, now: ContinuousClock.Instant) -> Action {
        guard case .starting(let relay) = self.state, relay.generation == generation else {
            return .none
        }
        self.state = .ready(relay, ports: ports)
        self.readySince = now
        self.lastActivity = now
        return .ready(relay, ports: ports)
    }

    mutating func restartTimerFired(generation: UInt64) -> Action {
        guard case .restarting(let crashed) = self.state, crashed == generation else {
            return .none
        }
        self.state = .spawning
        return .spawn
    }

    // MARK: Stopping

    mutating func stopRequested(reason: String, then: AfterStop) -> Action {
        switch self.state {
        case .starting(let relay), .ready(let relay, _):
            self.state = .stopping(relay, reason: reason, then: then)
            return .terminate(relay)
        case .stopping(let relay, _, _):
            self.state = .stopping(relay, reason: reason, then: then)
            return .none
        case .stopped, .restarting, .spawning:
            self.state = .stopped
            return then == .forget ? .forget : .none
        }
    }

    mutating func stopTimerFired(generation: UInt64) -> Action {
        guard case .stopping(let relay, _, _) = self.state, relay.generation == generation else {
            return .none
        }
        return .kill(relay)
    }

    /// The relay of `generation` exited: as asked, or on its own (a crash, or a relay that could not start).
    mutating func exited(
        generation: UInt64,
        exit: RelayExit,
        demand: Demand,
        now: ContinuousClock.Instant
    ) -> Action {
        guard let relay = self.relay, relay.generation == generation else {
            return .none
        }
        if case .stopping(_, let reason, let then) = self.state {
            self.state = then == .startAgain ? .spawning : .stopped
            return .stopped(reason: reason, then: then)
        }
        if let readySince = self.readySince, now - readySince > self.configuration.stableAfter {
            self.crashes = 0
        }
        self.crashes += 1
        self.readySince = nil
        guard self.isNeeded(demand, now: now) else {
            self.state = .stopped
            return .crashed(relay, exit, restartAfter: nil)
        }
        let delay =
            self.crashes <= 1 ? .zero : self.configuration.restartBackoff.nominalDelay(afterFailures: self.crashes - 1)
        self.state = .restarting(after: generation)
        return .crashed(relay, exit, restartAfter: delay)
    }

    /// Runs every poll interval: notes activity, and stops a relay idle for the stream's `idleSeconds`.
    mutating func tick(_ demand: Demand, now: ContinuousClock.Instant) -> Action {
        if demand.connections > 0 {
            self.lastActivity = now
            return .none
        }
        guard case .ready = self.state, !demand.alwaysOn,
            now - self.lastActivity >= .seconds(demand.idleSeconds)
        else {
            return .none
        }
        return self.stopRequested(reason: "idle for \(demand.idleSeconds) s", then: .nothing)
    }

    private func isNeeded(_ demand: Demand, now: ContinuousClock.Instant) -> Bool {
        demand.alwaysOn || demand.connections > 0 || now - self.lastActivity < .seconds(demand.idleSeconds)
    }
}
