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

public import KubernetesClient
public import KubernetesController
import LiveStreamModel
public import Logging
public import ServiceLifecycle

/// `liverelay operator`: turns every LiveStream into a port, a relay, a Service, an ingress path, a firewall and a
/// scale-to-zero rule, and keeps them so.
///
/// A ``Controller`` of LiveStreams (watching the relay Deployments it owns, so a relay becoming ready updates the
/// phase) with one reconcile per stream at a time, any number of streams at once. Run it in a `ServiceGroup`; with
/// leader election only the holder of the Lease reconciles.
public final class LiveStreamOperator: Service, Sendable {
    public let configuration: OperatorConfiguration
    private let reconciler: LiveStreamReconciler
    /// The underlying controller, for its cache and queue.
    public let controller: Controller<KubernetesObject>

    public init(client: KubernetesClient, configuration: OperatorConfiguration, logger: Logger) {
        self.configuration = configuration
        let reconciler = LiveStreamReconciler(client: client, configuration: configuration, logger: logger)
        self.reconciler = reconciler
        self.controller = Controller<KubernetesObject>(
            client: client,
            resource: .liveStreams,
            namespace: configuration.namespace,
            owns: [
                OwnedResource(
                    .deployments,
                    ownerKind: LiveStreamResource.kind,
                    labelSelector: RelayChildren.childLabelSelector
                )
            ],
            configuration: configuration.controller,
            logger: logger
        ) { key, object in
            try await reconciler.reconcile(key, object)
        }
        reconciler.attach(self.controller)
    }

    /// How many ports are allocated now.
    public var allocatedPorts: Int { self.reconciler.book.allocatedCount }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.reconciler.watchRelays() }
            defer { group.cancelAll() }
            try await self.controller.run()
        }
    }
}
