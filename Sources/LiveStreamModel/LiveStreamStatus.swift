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

/// What is true of a `LiveStream` now, as the operator or local mode observed it. Never holds a key.
public struct LiveStreamStatus: Codable, Hashable, Sendable {
    public enum Phase: String, Codable, Hashable, Sendable, CaseIterable {
        /// Ready for a publisher; the relay may be scaled to zero.
        case idle = "Idle"
        /// The relay is starting (a connection is held, or children are being created).
        case starting = "Starting"
        /// A publisher is connected.
        case live = "Live"
        /// `spec.suspend` is set: the relay is at zero and the gateway refuses the stream.
        case suspended = "Suspended"
        /// Something a person must fix; a condition says what.
        case failed = "Failed"
    }

    /// The state of one push target, as the relay reports it.
    public struct TargetStatus: Codable, Hashable, Sendable {
        public var name: String
        /// The relay's state of the target, capitalized: `Connecting`, `Pushing`, `BackingOff` (after a failure,
        /// retrying; `lastError` says why), `Disabled`, `Idle` (no publisher) or `Stopped`.
        public var state: String
        public var lastError: String?

        public init(name: String, state: String, lastError: String? = nil) {
            self.name = name
            self.state = state
            self.lastError = lastError
        }
    }

    public var phase: Phase?
    public var port: Int?
    public var ingestURL: String?
    public var previewURL: String?
    public var targets: [TargetStatus]?
    public var conditions: [Condition]?
    public var observedGeneration: Int64?

    public init(
        phase: Phase? = nil,
        port: Int? = nil,
        ingestURL: String? = nil,
        previewURL: String? = nil,
        targets: [TargetStatus]? = nil,
        conditions: [Condition]? = nil,
        observedGeneration: Int64? = nil
    ) {
        self.phase = phase
        self.port = port
        self.ingestURL = ingestURL
        self.previewURL = previewURL
        self.targets = targets
        self.conditions = conditions
        self.observedGeneration = observedGeneration
    }

    /// The condition of `type`, if set.
    public func condition(_ type: String) -> Condition? {
        self.conditions?.first { $0.type == type }
    }

    /// Sets a condition the way `meta.SetStatusCondition` does: `lastTransitionTime` moves only when the status
    /// changes, so a reconcile that finds nothing new writes nothing new.
    public mutating func setCondition(_ condition: Condition) {
        var conditions = self.conditions ?? []
        if let index = conditions.firstIndex(where: { $0.type == condition.type }) {
            var updated = condition
            if conditions[index].status == condition.status {
                updated.lastTransitionTime = conditions[index].lastTransitionTime
            }
            conditions[index] = updated
        } else {
            conditions.append(condition)
        }
        self.conditions = conditions
    }
}

/// A `metav1.Condition`: one aspect of a stream's state, with a machine-readable reason and a message for people.
public struct Condition: Codable, Hashable, Sendable {
    public enum Status: String, Codable, Hashable, Sendable {
        case `true` = "True"
        case `false` = "False"
        case unknown = "Unknown"
    }

    /// The condition types a LiveStream carries.
    public enum Kind {
        public static let ready = "Ready"
        public static let portAllocated = "PortAllocated"
        public static let autoscaling = "Autoscaling"
        public static let streamKey = "StreamKey"
    }

    public var type: String
    public var status: Status
    /// CamelCase, as Kubernetes wants it (`PortAllocated`, `RangeExhausted`).
    public var reason: String
    public var message: String
    /// RFC 3339, seconds precision.
    public var lastTransitionTime: String
    public var observedGeneration: Int64?

    public init(
        type: String,
        status: Status,
        reason: String,
        message: String,
        lastTransitionTime: String,
        observedGeneration: Int64? = nil
    ) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
        self.observedGeneration = observedGeneration
    }
}
