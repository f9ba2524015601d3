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
import TimeSupport

/// A controller's metrics, made through an injected `MetricsFactory` (swift-prometheus' in production, a test
/// factory in tests), named `<prefix>_...`:
///
/// - `reconciles_total{result}`: `success` (done), `requeue` (done, asked to run again later), `deferred` (the
///   cache lagged behind the controller's own write: judged later) or `error`.
/// - `reconcile_failures_total{reason}`: failed reconciles by a bounded reason: the API server's `Status.reason`
///   (`Conflict`, `Forbidden`, `Invalid`, ...), `Transport`, `Decoding`, or the error's type name. Never an
///   object's name or an error message: those are in the log and the object's conditions.
/// - `reconcile_duration_seconds`: a histogram of reconcile durations.
/// - `workqueue_depth`: keys ready to be reconciled (client-go's `workqueue_depth`).
/// - `workqueue_latency_seconds`: a histogram of how long a key waited in the queue before a worker took it
///   (client-go's `workqueue_queue_duration_seconds`).
/// - `leader`: 1 while this process leads (or runs without leader election), else 0.
///
/// ``KubernetesRequestMetrics`` counts API requests under the same prefix.
public struct ControllerMetrics: Sendable {
    public let prefix: String
    let factory: any MetricsFactory
    let succeeded: Counter
    let requeued: Counter
    let errored: Counter
    let deferred: Counter
    let duration: Timer
    let leading: Gauge
    let queue: WorkQueueMetrics

    public init(prefix: String, factory: any MetricsFactory = MetricsSystem.factory) {
        self.prefix = prefix
        self.factory = factory
        let reconciles = "\(prefix)_reconciles_total"
        self.succeeded = Counter(label: reconciles, dimensions: [("result", "success")], factory: factory)
        self.requeued = Counter(label: reconciles, dimensions: [("result", "requeue")], factory: factory)
        self.errored = Counter(label: reconciles, dimensions: [("result", "error")], factory: factory)
        self.deferred = Counter(label: reconciles, dimensions: [("result", "deferred")], factory: factory)
        self.duration = Timer(label: "\(prefix)_reconcile_duration_seconds", dimensions: [], factory: factory)
        self.leading = Gauge(label: "\(prefix)_leader", dimensions: [], factory: factory)
        self.queue = WorkQueueMetrics(
            depth: Gauge(label: "\(prefix)_workqueue_depth", dimensions: [], factory: factory),
            latency: Timer(label: "\(prefix)_workqueue_latency_seconds", dimensions: [], factory: factory)
        )
    }

    func reconciled(_ action: ReconcileAction, after duration: Duration) {
        switch action {
        case .done: self.succeeded.increment()
        case .requeue: self.requeued.increment()
        case .deferred: self.deferred.increment()
        }
        self.duration.recordNanoseconds(duration.inNanoseconds)
    }

    func failed(_ error: any Error, after duration: Duration) {
        self.errored.increment()
        Counter(
            label: "\(self.prefix)_reconcile_failures_total",
            dimensions: [("reason", Self.reason(of: error))],
            factory: self.factory
        ).increment()
        self.duration.recordNanoseconds(duration.inNanoseconds)
    }

    /// A label value for `error` from a small, fixed set: never a name, a message or anything a user wrote.
    public static func reason(of error: any Error) -> String {
        guard let error = error as? KubernetesError else {
            return String(describing: type(of: error))
        }
        if let reason = error.status?.reason, !reason.isEmpty, reason.allSatisfy({ $0.isLetter }) {
            return reason
        }
        if let code = error.statusCode {
            return "HTTP\(code)"
        }
        switch error.code {
        case .transport: return "Transport"
        case .decoding: return "Decoding"
        case .authentication: return "Authentication"
        case .configuration: return "Configuration"
        default: return "Other"
        }
    }
}

/// The work queue's share of ``ControllerMetrics``.
public struct WorkQueueMetrics: Sendable {
    let depth: Gauge
    let latency: Timer

    public init(depth: Gauge, latency: Timer) {
        self.depth = depth
        self.latency = latency
    }
}

/// Counts every request a client sends, as `<prefix>_kubernetes_requests_total{verb, resource, code}`: the verb in
/// RBAC's terms (`get`, `list`, `watch`, `create`, `update`, `patch`, `apply` for a server-side apply, `delete`),
/// the resource (`deployments`, `livestreams/status`, ...) and the HTTP status code, or `error` when no response
/// came. Add it with `KubernetesClient.adding(_:)`; it sees the retries of the client's own retry middleware as one
/// request with its final code.
public struct KubernetesRequestMetrics: KubernetesMiddleware {
    let label: String
    let factory: any MetricsFactory

    public init(prefix: String, factory: any MetricsFactory = MetricsSystem.factory) {
        self.label = "\(prefix)_kubernetes_requests_total"
        self.factory = factory
    }

    public func intercept(
        _ request: KubernetesRequest,
        body: KubernetesBody?,
        next: @Sendable (KubernetesRequest, KubernetesBody?) async throws -> (KubernetesResponse, KubernetesBody)
    ) async throws -> (KubernetesResponse, KubernetesBody) {
        let (verb, resource) = Self.describe(request)
        do {
            let (response, responseBody) = try await next(request, body)
            self.count(verb, resource, "\(response.status)")
            return (response, responseBody)
        } catch {
            self.count(verb, resource, "error")
            throw error
        }
    }

    private func count(_ verb: String, _ resource: String, _ code: String) {
        Counter(
            label: self.label,
            dimensions: [("verb", verb), ("resource", resource), ("code", code)],
            factory: self.factory
        ).increment()
    }

    /// The request's verb and resource, as RBAC names them; `("get", "discovery")` for non-resource paths.
    public static func describe(_ request: KubernetesRequest) -> (verb: String, resource: String) {
        var parts = request.path.split(separator: "/").map(String.init)
        if parts.first == "api", parts.count >= 2 {
            parts.removeFirst(2)
        } else if parts.first == "apis", parts.count >= 3 {
            parts.removeFirst(3)
        } else {
            return (request.method.rawValue.lowercased(), "discovery")
        }
        if parts.count > 2, parts[0] == "namespaces" {
            parts.removeFirst(2)
        }
        guard let plural = parts.first else {
            return (request.method.rawValue.lowercased(), "discovery")
        }
        let hasName = parts.count >= 2
        let resource = parts.count >= 3 ? "\(plural)/\(parts[2])" : plural
        let verb: String
        switch request.method {
        case .get:
            let watch = request.queryValue("watch")
            verb = hasName ? "get" : (watch == "true" || watch == "1") ? "watch" : "list"
        case .post: verb = "create"
        case .put: verb = "update"
        case .patch:
            verb = request.header("Content-Type") == "application/apply-patch+yaml" ? "apply" : "patch"
        case .delete: verb = hasName ? "delete" : "deletecollection"
        }
        return (verb, resource)
    }
}
