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

import KubernetesClient
import KubernetesController
import KubernetesTestServer
import KubernetesTestSupport
import PeerTestSupport
import Synchronization
import Testing

/// client-go's leader election timing, on manual clocks: each test moves time itself, and waits for none of it.
@Suite("LeaderElector on a manual clock", .timeLimit(.minutes(3)))
struct LeaderElectorTests {
    static func configuration(_ lease: String, _ identity: String) -> LeaderElectionConfiguration {
        LeaderElectionConfiguration(
            leaseName: lease,
            identity: identity,
            leaseDuration: .seconds(10),
            renewDeadline: .seconds(5),
            retryPeriod: .seconds(1)
        )
    }

    /// Runs `elector.acquire()` to the lease, moving `clock` a retry period whenever it sleeps between attempts: a
    /// request that failed on a loaded machine then costs a retry, and the test does not wait forever on a clock that
    /// does not move. The clock stands still during an attempt, so the lease is taken at the clock's time on return.
    static func acquire(_ elector: LeaderElector, on clock: ManualClock) async throws {
        let acquiring = Task { try await elector.acquire() }
        let identity = elector.configuration.identity
        try await eventually("\(identity) leads", timeout: .seconds(60), interval: .milliseconds(5)) {
            if elector.isLeading { return true }
            if clock.sleepers > 0 { clock.advance(by: elector.configuration.retryPeriod) }
            return false
        }
        try await acquiring.value
    }

    @Test("a candidate takes over a lease whose record has not changed for leaseDuration on its own clock")
    func takeoverAfterExpiry() async throws {
        try await withTestCluster { cluster in
            let lease = uniqueName("lease")
            // Two processes, two clocks: neither reads the other's, nor the times written in the Lease.
            let (clockA, clockB) = (ManualClock(), ManualClock())
            let a = LeaderElector(
                client: cluster.client,
                configuration: Self.configuration(lease, "a"),
                clock: clockA,
                logger: quietLogger
            )
            let b = LeaderElector(
                client: cluster.client,
                configuration: Self.configuration(lease, "b"),
                clock: clockB,
                logger: quietLogger
            )
            try await Self.acquire(a, on: clockA)
            #expect(a.isLeading)
            #expect(try await !b.tryAcquireOrRenew(), "b first sees a's record now")

            clockB.advance(by: .milliseconds(9999))
            #expect(try await !b.tryAcquireOrRenew(), "a's record is not yet leaseDuration old on b's clock")
            // a renews: the record changes, and b counts leaseDuration again from when it sees the change.
            #expect(try await a.tryAcquireOrRenew())
            clockB.advance(by: .milliseconds(2))
            #expect(try await !b.tryAcquireOrRenew(), "a renewed")
            clockB.advance(by: .milliseconds(9999))
            #expect(try await !b.tryAcquireOrRenew(), "a's renewal is not yet leaseDuration old on b's clock")
            clockB.advance(by: .milliseconds(1))
            #expect(try await b.tryAcquireOrRenew(), "a's record unchanged for leaseDuration: b takes over")

            let taken = try await cluster.client.get(Lease.self, .leases, name: lease, namespace: cluster.namespace)
            #expect(taken.spec.holderIdentity == "b")
            #expect(taken.spec.leaseTransitions == 1)
            // a's clock never moved: a still believes in its lease until its renewDeadline, which is shorter than
            // b's wait, and its next renewal finds b holding the lease.
            #expect(try await !a.tryAcquireOrRenew())
        }
    }

    @Test("a released lease is taken at once, without waiting for expiry")
    func takeoverAfterRelease() async throws {
        try await withTestCluster { cluster in
            let lease = uniqueName("lease")
            let clock = ManualClock()
            let a = LeaderElector(
                client: cluster.client,
                configuration: Self.configuration(lease, "a"),
                clock: clock,
                logger: quietLogger
            )
            let b = LeaderElector(
                client: cluster.client,
                configuration: Self.configuration(lease, "b"),
                clock: clock,
                logger: quietLogger
            )
            try await Self.acquire(a, on: clock)
            #expect(try await !b.tryAcquireOrRenew())
            await a.release()
            #expect(try await b.tryAcquireOrRenew(), "the clock has not moved")
        }
    }

    @Test(
        "the leader steps down when no renewal succeeded within renewDeadline, judged on its clock",
        .disabled(if: isRealCluster, "refuses connections of the in-process server: not on a real cluster")
    )
    func stepDownAtRenewDeadline() async throws {
        try await withTestCluster { cluster in
            let server = try #require(cluster.server)
            let clock = ManualClock()
            let elector = LeaderElector(
                client: cluster.client,
                configuration: Self.configuration(uniqueName("lease"), "solo"),
                clock: clock,
                logger: quietLogger
            )
            try await Self.acquire(elector, on: clock)
            #expect(elector.isLeading)
            let stepped = Mutex(false)
            let holding = Task {
                try await elector.holdLease()
                stepped.withLock { $0 = true }
            }
            // The renewal loop sleeps a retry period; every renewal from now on is refused.
            await clock.waitForSleepers()
            server.refuseConnections(for: .seconds(600))
            defer { server.refuseConnections(for: .zero) }

            clock.advance(by: .milliseconds(4999))
            #expect(elector.isLeading, "renewDeadline has not passed since the lease was taken")
            clock.advance(by: .milliseconds(1))
            // The fence the workers check: false from the deadline on, whenever the renewal loop gets to run.
            #expect(!elector.isLeading, "renewDeadline passed without a renewal")
            try await eventually("the renewal loop gave up") {
                clock.advance(by: .seconds(1))
                return stepped.withLock { $0 }
            }
            try await holding.value
            #expect(!elector.isLeading)

            // Served again: the lease is still ours, and a renewal leads again for renewDeadline from its start.
            server.refuseConnections(for: .zero)
            // A first request on a connection the refusal closed may fail: acquire moves the clock only while the
            // elector sleeps between attempts, so the renewal that succeeds starts at the clock's time now.
            try await Self.acquire(elector, on: clock)
            clock.advance(by: .milliseconds(4999))
            #expect(elector.isLeading)
            clock.advance(by: .milliseconds(1))
            #expect(!elector.isLeading)
        }
    }
}
