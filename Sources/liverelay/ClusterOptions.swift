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

import ArgumentParser
import KubernetesClient

/// How a command reaches the Kubernetes API: `--kubeconfig`, `--context`, `--in-cluster`. One group for the
/// operator, the gateway, the console and teardown, so they choose a cluster the same way.
struct ClusterOptions: ParsableArguments {
    @Option(help: "The kubeconfig to use (default: in-cluster when in a pod, else $KUBECONFIG or ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "The kubeconfig context to use.")
    var context: String?

    @Flag(help: "Use the pod's service account, and fail outside a pod.")
    var inCluster = false

    func kubernetesConfiguration() throws -> KubernetesConfiguration {
        if self.inCluster {
            return try .inCluster()
        }
        if self.kubeconfig != nil || self.context != nil {
            return try .kubeconfig(path: self.kubeconfig, context: self.context)
        }
        return try .automatic()
    }
}
