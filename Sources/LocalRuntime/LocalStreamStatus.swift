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

/// The status derivation: what local mode reports of one stream (its phase, its targets), as a function of the
/// stream, its relay's stage and the gateway's connection counts. ``LocalController`` emits what changes.
struct LocalStreamStatus: Hashable, Sendable {
    /// The phase last derived; `nil` before the first derivation.
    private(set) var phase: LiveStreamStatus.Phase?
    /// Each target's state as last reported (``LocalEvent/targetChanged(_:_:)``) by the running relay; a relay that
    /// becomes ready starts with none.
    private(set) var targets: [String: LiveStreamStatus.TargetStatus] = [:]

    /// The stream's phase: failed with a problem, suspended, else what its relay and the gateway's connections say.
    static func phase(
        problem: String?,
        suspended: Bool,
        relay: RelayStage,
        live: Int,
        held: Int
    ) -> LiveStreamStatus.Phase {
        if problem != nil {
            return .failed
        }
        if suspended {
            return .suspended
        }
        switch relay {
        // Ready with a held connection that is being handed over: still starting, not idle in between.
        case .ready: return live > 0 ? .live : held > 0 ? .starting : .idle
        case .starting, .restarting: return .starting
        case .stopped, .stopping: return held > 0 ? .starting : .idle
        }
    }

    /// Derives the phase again; returns it when it changed.
    mutating func update(
        problem: String?,
        suspended: Bool,
        relay: RelayStage,
        live: Int,
        held: Int
    ) -> LiveStreamStatus.Phase? {
        let phase = Self.phase(problem: problem, suspended: suspended, relay: relay, live: live, held: held)
        guard phase != self.phase else {
            return nil
        }
        self.phase = phase
        return phase
    }

    /// A new relay is ready: its targets have reported nothing yet.
    mutating func relayReady() {
        self.targets = [:]
    }

    /// Takes the targets a read of the running relay reported; returns those whose state or error changed since
    /// the last read. `Connecting` is passed over, so a target that keeps failing with the same error is reported
    /// once, not at every retry; so are `Idle` and `Stopped` (no publisher: the stream's phase says so), which
    /// forget the last state, so that the next publish reports its targets again.
    mutating func targetsRead(_ report: [LiveStreamStatus.TargetStatus]) -> [LiveStreamStatus.TargetStatus] {
        var changed: [LiveStreamStatus.TargetStatus] = []
        for target in report {
            switch target.state {
            case "Connecting":
                continue
            case "Idle", "Stopped":
                self.targets[target.name] = nil
            default:
                if self.targets[target.name] != target {
                    self.targets[target.name] = target
                    changed.append(target)
                }
            }
        }
        return changed
    }
}
