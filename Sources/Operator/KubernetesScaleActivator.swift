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

public import Gateway
public import KubernetesClient
public import LiveStreamModel
public import Logging

/// Wakes a relay scaled to zero as soon as the gateway holds a connection for it: one replica through the relay
/// Deployment's scale subresource, at once, instead of at KEDA's next poll. KEDA then sees the connection in the
/// gateway's metric and keeps the replica.
public struct KubernetesScaleActivator: GatewayActivator {
    private let client: KubernetesClient
    private let logger: Logger

    public init(client: KubernetesClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Sets the relay's replicas to 1 if they are 0. Errors are logged, never thrown: the gateway keeps holding the
    /// connection, and KEDA still wakes the relay at its next poll.
    public func activate(_ stream: StreamID) async {
        let name = RelayChildren.childName(stream.name)
        do {
            var scale = try await self.client.getScale(.deployments, name: name, namespace: stream.namespace)
            guard (scale.spec.replicas ?? 0) == 0 else { return }
            scale.spec.replicas = 1
            _ = try await self.client.updateScale(scale, .deployments, namespace: stream.namespace)
            self.logger.info("relay activated", metadata: ["liverelay.stream": "\(stream)"])
        } catch let error as KubernetesError where error.isConflict {
            // Someone (KEDA, another gateway pod) changed the scale meanwhile: they are waking it too.
            self.logger.debug("relay activation raced", metadata: ["liverelay.stream": "\(stream)"])
        } catch {
            self.logger.warning(
                "relay activation failed",
                metadata: ["liverelay.stream": "\(stream)", "error": "\(error)"]
            )
        }
    }
}
