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
import RelayAPI

/// The port a stream holds after its allocation step, with the `PortAllocated` condition to show.
struct PortClaim: Sendable, Hashable {
    var port: Int
    var status: Condition.Status
    var reason: String
    var message: String
}

/// What the reconcile found of a stream's ingest key.
enum StreamKeyObservation: Sendable, Hashable {
    /// A webhook authorizes publishers; there is no key.
    case webhook
    /// The key is in `secret`; `generated` when the operator made that Secret.
    case found(secret: String, generated: Bool)
    /// The Secret exists without the key.
    case missing(String)
}

/// A running relay as the operator last read it: its report (`nil`: not readable now) and since when it runs.
struct RelayObservation: Sendable {
    var report: RelayStreamReport?
    var since: ContinuousClock.Instant
}

/// Everything the status of a configured stream depends on, as one reconcile observed it.
struct LiveStreamObservation: Sendable {
    var generation: Int64?
    var spec: LiveStreamSpec
    var port: PortClaim
    var ingestURL: String
    /// The preview's URL, when the preview is on and reachable from outside.
    var previewURL: String?
    var streamKey: StreamKeyObservation
    /// One message per enabled target whose key Secret (or key) is missing.
    var missingTargetKeys: [String]
    var kedaInstalled: Bool
    /// The replica count the relay Deployment asks for.
    var replicas: Int
    var readyReplicas: Int
    /// The running relay, when ``LiveStreamStatusRules/relayRuns(spec:streamKey:missingTargetKeys:readyReplicas:)``.
    var relay: RelayObservation?
}

/// A stream's status as a pure function of what the reconcile observed, the status the server holds, and the time:
/// no API server, no relay, no clock of its own, so every rule is tested on its own.
///
/// Conditions keep their `lastTransitionTime` while their status stays (``LiveStreamStatus/setCondition(_:)``), so
/// the same observation gives the same status and a reconcile that finds nothing new writes nothing.
enum LiveStreamStatusRules {
    /// How long a relay that became ready without a publisher still counts as starting: the gateway connects a held
    /// publisher once it sees the relay ready, a moment after the operator does.
    static let startingGrace: Duration = .seconds(15)

    /// A spec the schema could not refuse, refused: `Ready=False InvalidSpec` naming the first problem.
    static func invalidSpec(
        _ problems: [FieldError],
        previous: LiveStreamStatus?,
        generation: Int64?,
        timestamp: String
    ) -> LiveStreamStatus {
        var status = Self.base(previous, generation: generation)
        let more = problems.count > 1 ? " (and \(problems.count - 1) more)" : ""
        let first = problems.first.map { "\($0)" } ?? "invalid"
        status.setCondition(
            Self.condition(Condition.Kind.ready, .false, "InvalidSpec", first + more, generation, timestamp)
        )
        status.phase = .failed
        return status
    }

    /// No port to give: `PortAllocated=False` with the allocator's reason, `Ready=False PortUnavailable`.
    static func portUnavailable(
        _ error: PortAllocationError,
        previous: LiveStreamStatus?,
        generation: Int64?,
        timestamp: String
    ) -> LiveStreamStatus {
        var status = Self.base(previous, generation: generation)
        status.setCondition(
            Self.condition(Condition.Kind.portAllocated, .false, error.reason, error.description, generation, timestamp)
        )
        status.setCondition(
            Self.condition(Condition.Kind.ready, .false, "PortUnavailable", error.description, generation, timestamp)
        )
        status.phase = .failed
        return status
    }

    /// The status that records the stream's port before any child exists: the port claim.
    static func claim(
        _ claim: PortClaim,
        ingestURL: String,
        previous: LiveStreamStatus?,
        generation: Int64?,
        timestamp: String
    ) -> LiveStreamStatus {
        var status = Self.base(previous, generation: generation)
        status.setCondition(
            Self.condition(
                Condition.Kind.portAllocated,
                claim.status,
                claim.reason,
                claim.message,
                generation,
                timestamp
            )
        )
        status.port = claim.port
        status.ingestURL = ingestURL
        return status
    }

    /// Whether the relay runs and so has something to say: ready, not suspended, and not missing a key.
    static func relayRuns(
        spec: LiveStreamSpec,
        streamKey: StreamKeyObservation,
        missingTargetKeys: [String],
        readyReplicas: Int
    ) -> Bool {
        if case .missing = streamKey { return false }
        return readyReplicas > 0 && !spec.suspend && missingTargetKeys.isEmpty
    }

    /// The status of a stream that has a port, and when to look again (a relay still starting).
    static func status(
        of observation: LiveStreamObservation,
        previous: LiveStreamStatus?,
        now: ContinuousClock.Instant,
        timestamp: String
    ) -> (status: LiveStreamStatus, requeueAfter: Duration?) {
        let spec = observation.spec
        let generation = observation.generation
        var status = Self.claim(
            observation.port,
            ingestURL: observation.ingestURL,
            previous: previous,
            generation: generation,
            timestamp: timestamp
        )
        func condition(_ type: String, _ value: Condition.Status, _ reason: String, _ message: String) {
            status.setCondition(Self.condition(type, value, reason, message, generation, timestamp))
        }

        var notReady: [String] = []
        switch observation.streamKey {
        case .webhook:
            condition(Condition.Kind.streamKey, .true, "Webhook", "publishers are authorized by the webhook")
        case .found(let secret, let generated):
            condition(
                Condition.Kind.streamKey,
                .true,
                generated ? "Generated" : "Found",
                "the stream key is in Secret \(secret)"
            )
        case .missing(let message):
            condition(Condition.Kind.streamKey, .false, "KeyMissing", message)
            notReady.append(message)
        }
        notReady += observation.missingTargetKeys

        if observation.kedaInstalled {
            condition(
                Condition.Kind.autoscaling,
                .true,
                spec.suspend ? "Paused" : "ScaledObjectReady",
                spec.suspend
                    ? "KEDA holds the relay at 0 replicas while the stream is suspended"
                    : "KEDA scales the relay from \(spec.scaling.minReplicas) to 1 on the gateway's connection count; "
                        + "idle after \(spec.scaling.idleSeconds)s"
            )
        } else {
            condition(
                Condition.Kind.autoscaling,
                .false,
                "KEDANotInstalled",
                "KEDA (keda.sh/v1alpha1 ScaledObject) is not installed: the relay runs with 1 replica and does not "
                    + "scale to zero"
            )
        }

        status.previewURL = observation.previewURL
        status.targets = nil
        var requeue: Duration?
        if spec.suspend {
            status.phase = .suspended
            condition(
                Condition.Kind.ready,
                .false,
                "Suspended",
                "spec.suspend is set: the relay is at 0 replicas and the gateway refuses connections"
            )
        } else if !notReady.isEmpty {
            status.phase = .failed
            condition(Condition.Kind.ready, .false, "SecretMissing", notReady.joined(separator: "; "))
        } else {
            if let relay = observation.relay {
                if let report = relay.report {
                    status.phase = report.live ? .live : .idle
                    status.targets = report.targets
                } else {
                    // Not known now: keep what was last seen rather than flap.
                    status.phase = previous?.phase == .live ? .live : .idle
                    status.targets = previous?.targets
                }
                // Ready, and the held publisher not through yet: still starting, for a while.
                let starting = relay.since + Self.startingGrace - now
                if status.phase == .idle, previous?.phase == .starting, starting > .zero {
                    status.phase = .starting
                    requeue = starting
                }
            } else {
                status.phase = observation.replicas > 0 ? .starting : .idle
            }
            condition(
                Condition.Kind.ready,
                .true,
                "Configured",
                "the relay is configured; publish to \(observation.ingestURL)"
            )
        }
        return (status, requeue)
    }

    private static func base(_ previous: LiveStreamStatus?, generation: Int64?) -> LiveStreamStatus {
        var status = previous ?? LiveStreamStatus()
        status.observedGeneration = generation
        return status
    }

    private static func condition(
        _ type: String,
        _ value: Condition.Status,
        _ reason: String,
        _ message: String,
        _ generation: Int64?,
        _ timestamp: String
    ) -> Condition {
        Condition(
            type: type,
            status: value,
            reason: reason,
            message: message,
            lastTransitionTime: timestamp,
            observedGeneration: generation
        )
    }
}
