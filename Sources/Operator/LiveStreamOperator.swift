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

public import CoreMetrics
public import KubernetesClient
public import KubernetesController
import LiveStreamModel
public import Logging
public import ServiceLifecycle

/// `liverelay operator`: turns every LiveStream into a port, a relay, a Service, an ingress path, a firewall and a
/// scale-to-zero rule, and keeps them so.
///
/// A ``Controller`` of LiveStreams that also watches every child it makes, the Secrets the streams name and the
/// gateway Service, so a change to any of them (a relay becoming ready, a child deleted by hand, a key Secret
/// created) reconciles the streams concerned within a moment, and nothing is written or read while nothing changes.
/// One reconcile per stream at a time, any number of streams at once. Run it in a `ServiceGroup`; with leader
/// election only the holder of the Lease reconciles.
public final class LiveStreamOperator: Service, Sendable {
    /// The prefix of the operator's metric names.
    public static let metricsPrefix = "liverelay_operator"

    public let configuration: OperatorConfiguration
    let reconciler: LiveStreamReconciler
    /// The underlying controller, for its cache and queue.
    public let controller: Controller<CachedLiveStream>
    /// Returns memory to the system once a burst of reconciles is over.
    let trimmer: MemoryTrimmer

    /// - Parameter metricsFactory: where the operator's metrics go (reconciles, failures, queue, API requests by
    ///   verb and code); the global `MetricsSystem.factory` by default.
    public init(
        client: KubernetesClient,
        configuration: OperatorConfiguration,
        metricsFactory: (any MetricsFactory)? = nil,
        logger: Logger
    ) {
        self.configuration = configuration
        let factory = metricsFactory ?? MetricsSystem.factory
        let client = client.adding(KubernetesRequestMetrics(prefix: Self.metricsPrefix, factory: factory))
        let reconciler = LiveStreamReconciler(client: client, configuration: configuration, logger: logger)
        self.reconciler = reconciler
        let (owned, watched) = reconciler.watches()
        let trimmer = MemoryTrimmer()
        self.trimmer = trimmer
        self.controller = Controller<CachedLiveStream>(
            client: client,
            resource: .liveStreams,
            namespace: configuration.namespace,
            owns: owned,
            watches: watched,
            configuration: configuration.controller,
            metrics: ControllerMetrics(prefix: Self.metricsPrefix, factory: factory),
            logger: logger
        ) { key, object in
            trimmer.noteReconcile()
            return try await reconciler.reconcile(key, object)
        }
        reconciler.attach(self.controller)
    }

    /// How many ports are allocated now.
    public var allocatedPorts: Int { self.reconciler.book.allocatedCount }

    /// Liveness and readiness, for `/healthz` and `/readyz` (see ``ControllerHealth``).
    public var health: ControllerHealth { self.controller.health }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.reconciler.relays.run() }
            group.addTask { await self.reconciler.syncGatewayOnChange() }
            group.addTask {
                await self.trimmer.run { [controller = self.controller] in
                    guard let counts = controller.queue?.counts else { return false }
                    return counts.queued == 0 && counts.inFlight == 0
                }
            }
            defer { group.cancelAll() }
            try await self.controller.run()
        }
    }
}
