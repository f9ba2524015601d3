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
public import KubernetesClient
public import Logging
import Synchronization

/// Leader election settings (client-go's `LeaderElectionConfig`).
public struct LeaderElectionConfiguration: Sendable, Hashable {
    public var leaseName: String
    /// `nil`: the client's default namespace.
    public var leaseNamespace: String?
    /// Who we are in `holderIdentity`: unique per process (pod name plus a random suffix).
    public var identity: String
    /// How long a lease is valid after its last renewal; a candidate takes over a lease not renewed for this long.
    public var leaseDuration: Duration
    /// How long the leader keeps retrying to renew before it gives up leadership. Smaller than `leaseDuration`, so
    /// the old leader stops before anyone else may start.
    public var renewDeadline: Duration
    /// The interval between attempts to acquire or renew.
    public var retryPeriod: Duration

    public init(
        leaseName: String,
        leaseNamespace: String? = nil,
        identity: String,
        leaseDuration: Duration = .seconds(15),
        renewDeadline: Duration = .seconds(10),
        retryPeriod: Duration = .seconds(2)
    ) {
        self.leaseName = leaseName
        self.leaseNamespace = leaseNamespace
        self.identity = identity
        self.leaseDuration = leaseDuration
        self.renewDeadline = renewDeadline
        self.retryPeriod = retryPeriod
    }
}

/// Acquires, renews and releases a `coordination.k8s.io/v1` Lease.
///
/// Expiry is judged as client-go does, on our own clock: a lease held by someone else counts as expired when its
/// record (holder and renew time) has not changed for `leaseDuration` since we first saw it, so clock skew between
/// nodes does not matter. A new candidate therefore waits one full `leaseDuration` before it takes over a lease
/// whose holder died.
///
/// All of its timing (when it saw a record, when it last renewed, how long it sleeps between attempts) is on the
/// clock it is given: the continuous clock in production, a manual one in tests that check the timing without
/// waiting for it. The lease's `acquireTime` and `renewTime` are wall-clock times for people and other tools, and
/// judge nothing.
public final class LeaderElector: Sendable {
    private struct Observation {
        var record: Lease.Spec
        var at: ErasedClock.Instant
    }

    public let configuration: LeaderElectionConfiguration
    private let client: KubernetesClient
    private let observed = Mutex<Observation?>(nil)
    /// When the last successful acquire or renewal was sent; `nil` while we do not hold the lease. Leadership ends
    /// `renewDeadline` after it.
    private let lastRenewal = Mutex<ErasedClock.Instant?>(nil)
    private let clock: ErasedClock
    private let logger: Logger

    /// An elector that judges expiry and its own deadline on `clock`.
    public init(
        client: KubernetesClient,
        configuration: LeaderElectionConfiguration,
        clock: some Clock<Duration> = ContinuousClock(),
        logger: Logger
    ) {
        self.client = client
        self.configuration = configuration
        self.clock = ErasedClock(clock)
        self.logger = logger
    }

    private var namespace: String { self.configuration.leaseNamespace ?? self.client.namespace }

    /// Whether we may act as leader now: the fence a worker checks before each reconcile.
    ///
    /// Judged on our own clock from the start of the last successful write, not from when the renewal loop gets
    /// to run: on a starved machine that loop can wake late, but no reconcile starts after the deadline anyway,
    /// so another candidate (which waits the longer `leaseDuration`) never overlaps with us.
    public var isLeading: Bool {
        let now = self.clock.now
        return self.lastRenewal.withLock { last in last.map { now < $0 + self.configuration.renewDeadline } } ?? false
    }

    /// One attempt to take or renew the lease. Returns whether we hold it now.
    public func tryAcquireOrRenew() async throws -> Bool {
        let now = self.clock.now
        let timestamp = Self.microTime(Date())
        let durationSeconds = Int(self.configuration.leaseDuration.components.seconds.clamped(to: 1...Int64(Int32.max)))
        let lease: Lease
        do {
            lease = try await self.client.get(
                Lease.self,
                .leases,
                name: self.configuration.leaseName,
                namespace: self.namespace
            )
        } catch let error as KubernetesError where error.isNotFound {
            let fresh = Lease(
                metadata: ObjectMeta(name: self.configuration.leaseName, namespace: self.namespace),
                spec: Lease.Spec(
                    holderIdentity: self.configuration.identity,
                    leaseDurationSeconds: durationSeconds,
                    acquireTime: timestamp,
                    renewTime: timestamp,
                    leaseTransitions: 0
                )
            )
            do {
                let created = try await self.client.create(fresh, .leases, namespace: self.namespace)
                self.observed.withLock { $0 = Observation(record: created.spec, at: now) }
                return true
            } catch let error as KubernetesError where error.isConflict {
                return false
            }
        }

        let holder = lease.spec.holderIdentity ?? ""
        let isOurs = holder == self.configuration.identity
        if !isOurs && !holder.isEmpty {
            let observedAt = self.observed.withLock { observed -> ErasedClock.Instant in
                if let observed, observed.record == lease.spec {
                    return observed.at
                }
                observed = Observation(record: lease.spec, at: now)
                return now
            }
            let duration =
                lease.spec.leaseDurationSeconds.map { Duration.seconds($0) } ?? self.configuration.leaseDuration
            if observedAt.advanced(by: duration) > now {
                return false
            }
        }

        var updated = lease
        updated.spec.holderIdentity = self.configuration.identity
        updated.spec.leaseDurationSeconds = durationSeconds
        updated.spec.renewTime = timestamp
        if !isOurs {
            updated.spec.acquireTime = timestamp
            updated.spec.leaseTransitions = (lease.spec.leaseTransitions ?? 0) + 1
        }
        do {
            // PUT with the read resourceVersion: if another candidate wrote in between, we get 409 and lose.
            let written = try await self.client.update(updated, .leases, namespace: self.namespace)
            self.observed.withLock { $0 = Observation(record: written.spec, at: now) }
            if !isOurs {
                self.logger.info(
                    "k8s leader election: acquired lease",
                    metadata: [
                        "k8s.lease": "\(self.configuration.leaseName)",
                        "k8s.identity": "\(self.configuration.identity)",
                    ]
                )
            }
            return true
        } catch let error as KubernetesError where error.isConflict {
            return false
        }
    }

    /// Tries every `retryPeriod` until the lease is ours. Throws `CancellationError` when cancelled.
    public func acquire() async throws {
        while true {
            try Task.checkCancellation()
            let start = self.clock.now
            do {
                if try await self.tryAcquireOrRenew() {
                    self.lastRenewal.withLock { $0 = start }
                    return
                }
            } catch let error as CancellationError {
                throw error
            } catch {
                self.logger.debug("k8s leader election: acquire failed", metadata: ["error": "\(error)"])
            }
            try await self.clock.sleep(for: self.configuration.retryPeriod)
        }
    }

    /// Renews every `retryPeriod`; returns when the lease is lost: someone else holds it, or no renewal succeeded
    /// for `renewDeadline`. Throws `CancellationError` when cancelled.
    public func holdLease() async throws {
        defer { self.lastRenewal.withLock { $0 = nil } }
        while true {
            try await self.clock.sleep(for: self.configuration.retryPeriod)
            let start = self.clock.now
            let deadline = (self.lastRenewal.withLock { $0 } ?? start) + self.configuration.renewDeadline
            let renewed: Bool?
            do {
                // A hung request must not keep us leading past the deadline: race it against the deadline.
                renewed = try await self.withDeadline(deadline) { try await self.tryAcquireOrRenew() }
            } catch let error as CancellationError {
                throw error
            } catch {
                self.logger.debug("k8s leader election: renew failed", metadata: ["error": "\(error)"])
                renewed = nil
            }
            switch renewed {
            case true?:
                // From when the request was sent: the lease's renewTime is no later than that.
                self.lastRenewal.withLock { $0 = start }
            case false?:
                self.logger.info("k8s leader election: lease taken by another holder, stepping down")
                return
            case nil:
                if self.clock.now >= deadline {
                    self.logger.info("k8s leader election: renew deadline passed, stepping down")
                    return
                }
            }
        }
    }

    /// The result of `operation`, or `nil` when `deadline` comes first (the operation is then cancelled).
    private func withDeadline<T: Sendable>(
        _ deadline: ErasedClock.Instant,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T? {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try await self.clock.sleep(until: deadline)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// Gives the lease up (clears `holderIdentity`) so a standby takes over at once instead of after expiry.
    public func release() async {
        do {
            var lease = try await self.client.get(
                Lease.self,
                .leases,
                name: self.configuration.leaseName,
                namespace: self.namespace
            )
            guard lease.spec.holderIdentity == self.configuration.identity else { return }
            lease.spec.holderIdentity = nil
            lease.spec.leaseDurationSeconds = 1
            lease.spec.renewTime = Self.microTime(Date())
            _ = try await self.client.update(lease, .leases, namespace: self.namespace)
            self.logger.info("k8s leader election: released lease")
        } catch {
            self.logger.debug("k8s leader election: release failed", metadata: ["error": "\(error)"])
        }
    }

    /// `MicroTime`: RFC 3339 with exactly six fractional digits, as the API server writes it.
    static func microTime(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let seconds = formatter.string(from: Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)))
        let micros = Int((date.timeIntervalSince1970 - date.timeIntervalSince1970.rounded(.down)) * 1_000_000)
        let fraction = String(micros).leftPadded(to: 6)
        return seconds.replacingOccurrences(of: "Z", with: ".\(fraction)Z")
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        String(repeating: "0", count: max(0, length - self.count)) + self
    }
}

extension Comparable {
    fileprivate func clamped(to range: ClosedRange<Self>) -> Self {
        min(max(self, range.lowerBound), range.upperBound)
    }
}
