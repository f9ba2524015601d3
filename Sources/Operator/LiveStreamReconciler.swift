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
import KubernetesClient
import KubernetesController
import LiveStreamModel
import Logging
import Synchronization

/// Reconciles one LiveStream: level-based and idempotent, so running it again with nothing changed writes nothing.
///
/// The order matters. An invalid spec is reported and touches nothing. Then the finalizer (so a delete always
/// releases the port), the port (recorded in status before any child exists), the gateway Service's port list, the
/// stream key Secret, the children by server-side apply, the replica count, and last the status.
final class LiveStreamReconciler: Sendable {
    let client: KubernetesClient
    let configuration: OperatorConfiguration
    let book: PortBook
    let gateway: GatewayServiceWriter
    let events: EventRecorder
    let keda: KEDAProbe
    let logger: Logger
    private let controller = Mutex<Controller<KubernetesObject>?>(nil)
    /// Streams whose relay runs: what the relay last reported (`nil`: not read yet, or unreadable) and since when it
    /// runs. ``watchRelays()`` keeps one watch on each.
    private let relays = Mutex<[StreamID: KnownRelay]>([:])
    /// The streams ``watchRelays()`` watches now.
    private let watching = Mutex<Set<StreamID>>([])
    private let watchRequests = AsyncStream.makeStream(of: StreamID.self)
    /// How long a relay that became ready without a publisher still counts as starting: the gateway connects a
    /// held publisher once it sees the relay ready, a moment after the operator does.
    let startingGrace: Duration = .seconds(15)

    struct KnownRelay {
        var report: RelayStreamReport?
        var since: ContinuousClock.Instant
    }
    private let relayReader: RelayStatusReader
    /// Keeps the streams' keys for the gateway's shared ingest port, when configured.
    private let keyBook: IngestKeyBookWriter?
    /// Per stream, the fingerprint of the children last applied by this process, and when.
    private let applied = Mutex<[StreamID: (fingerprint: Int, at: ContinuousClock.Instant)]>([:])
    /// How long applied children are trusted before they are applied again (drift repair).
    let reapplyInterval: Duration = .seconds(300)

    init(client: KubernetesClient, configuration: OperatorConfiguration, logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.book = PortBook(range: configuration.portRange)
        self.relayReader = RelayStatusReader(urlTemplate: configuration.relayStatusURL, timeout: .seconds(2))
        self.keyBook = configuration.ingestKeyBookSecret.map {
            IngestKeyBookWriter(client: client, namespace: configuration.gatewayNamespace, name: $0)
        }
        self.gateway = GatewayServiceWriter(
            client: client,
            configuration: configuration,
            book: self.book,
            logger: logger
        )
        self.events = EventRecorder(
            client: client,
            controller: configuration.reportingController,
            instance: configuration.reportingInstance,
            logger: logger
        )
        self.keda = KEDAProbe(client: client)
    }

    func attach(_ controller: Controller<KubernetesObject>) {
        self.controller.withLock { $0 = controller }
    }

    // MARK: - Entry

    func reconcile(_ key: ObjectKey, _ object: KubernetesObject?) async throws -> ReconcileAction {
        var object = object
        if let reflector = try await self.rebuildIfNewTerm() {
            // The owned Deployments' watch can queue a key before the LiveStreams are listed: read the object
            // from the synced cache.
            object = reflector.get(key)
        }
        let id = StreamID(namespace: key.namespace, name: key.name)
        guard let object else {
            self.applied.withLock { $0[id] = nil }
            self.relays.withLock { _ = $0.removeValue(forKey: id) }
            // Gone without our finalizer having run (it was removed by hand): free what it held anyway.
            if self.book.release(id) != nil {
                try await self.gateway.sync()
                self.requeueStreamsWithoutPort()
            }
            try await self.keyBook?.remove(id)
            return .done
        }
        if object.metadata.deletionTimestamp != nil {
            return try await self.finalize(object, id: id)
        }
        do {
            return try await self.reconcileLive(object, id: id)
        } catch {
            if !(error is CancellationError) {
                await self.reportFailure(error, object: object, id: id)
            }
            throw error
        }
    }

    /// A reconcile that failed says so where the user looks: `Ready=False` with reason `ReconcileFailed` and the
    /// error (an event comes with the condition, once per new reason), written once while the failure stays the
    /// same. The controller retries with backoff and logs it. When the API server cannot take this write either,
    /// the log is all there is.
    private func reportFailure(_ error: any Error, object: KubernetesObject, id: StreamID) async {
        let previous = (try? object["status"].map { try JSONValue.decode(LiveStreamStatus.self, from: $0) }) ?? nil
        var status = previous ?? LiveStreamStatus()
        status.setCondition(
            Condition(
                type: Condition.Kind.ready,
                status: .false,
                reason: "ReconcileFailed",
                message: String("\(error)".prefix(1024)),
                lastTransitionTime: Timestamps.seconds(Date()),
                observedGeneration: object.metadata.generation
            )
        )
        try? await self.writeStatus(status, previous: previous, object: object, id: id)
    }

    /// At the first reconcile of a leadership term, once the reflector holds the complete first list, rebuild the
    /// allocator from every recorded port. Returns the synced reflector of the term.
    private func rebuildIfNewTerm() async throws -> Reflector<KubernetesObject>? {
        guard let reflector = self.controller.withLock({ $0?.reflector }) else { return nil }
        try await reflector.waitForSync()
        let displaced = self.book.rebuild(term: ObjectIdentifier(reflector)) {
            let claims = reflector.list().compactMap { object -> (PortClaimant, Int)? in
                guard let port = object["status"]?["port"]?.intValue else { return nil }
                return (Self.claimant(object), Int(port))
            }
            self.logger.debug(
                "port allocator rebuilt",
                metadata: ["k8s.count": "\(reflector.count)", "liverelay.ports": "\(claims.count)"]
            )
            return claims
        }
        for displacement in displaced {
            self.logger.info(
                "port conflict found at start",
                metadata: ["k8s.name": "\(displacement.stream)", "reason": "\(displacement)"]
            )
        }
        return reflector
    }

    static func claimant(_ object: KubernetesObject) -> PortClaimant {
        PortClaimant(
            stream: StreamID(namespace: object.metadata.namespace ?? "", name: object.metadata.name ?? ""),
            createdAt: object.metadata.creationTimestamp ?? ""
        )
    }

    /// Streams that wait for a port get another chance when one is freed.
    private func requeueStreamsWithoutPort() {
        guard let controller = self.controller.withLock({ $0 }), let reflector = controller.reflector,
            let queue = controller.queue
        else { return }
        for object in reflector.list() where object.metadata.deletionTimestamp == nil {
            let key = ObjectKey(object)
            if self.book.port(of: StreamID(namespace: key.namespace, name: key.name)) == nil {
                queue.add(key)
            }
        }
    }

    // MARK: - Delete

    private func finalize(_ object: KubernetesObject, id: StreamID) async throws -> ReconcileAction {
        let finalizers = object.metadata.finalizers ?? []
        self.applied.withLock { $0[id] = nil }
        self.relays.withLock { _ = $0.removeValue(forKey: id) }
        guard finalizers.contains(LiveStreamResource.finalizer) else { return .done }
        let port = self.book.release(id)
        try await self.gateway.sync()
        if port != nil { self.requeueStreamsWithoutPort() }
        try await self.keyBook?.remove(id)
        do {
            _ = try await self.client.patch(
                KubernetesObject.self,
                .liveStreams,
                name: id.name,
                namespace: id.namespace,
                mergePatch: [
                    "metadata": [
                        "finalizers": .array(
                            finalizers.filter { $0 != LiveStreamResource.finalizer }.map { .string($0) }
                        ),
                        "resourceVersion": .string(object.metadata.resourceVersion ?? ""),
                    ]
                ]
            )
        } catch let error as KubernetesError where error.isNotFound {
            return .done
        }
        self.logger.info(
            "livestream released",
            metadata: ["k8s.name": "\(id)", "liverelay.port": "\(port.map(String.init) ?? "none")"]
        )
        return .done
    }

    // MARK: - Create and update

    private func reconcileLive(_ object: KubernetesObject, id: StreamID) async throws -> ReconcileAction {
        let generation = object.metadata.generation
        let previous = (try? object["status"].map { try JSONValue.decode(LiveStreamStatus.self, from: $0) }) ?? nil
        var status = previous ?? LiveStreamStatus()
        // What the server holds now, after our own writes in this reconcile.
        var written = previous
        status.observedGeneration = generation
        let now = Timestamps.seconds(Date())
        func condition(_ type: String, _ value: Condition.Status, _ reason: String, _ message: String) {
            status.setCondition(
                Condition(
                    type: type,
                    status: value,
                    reason: reason,
                    message: message,
                    lastTransitionTime: now,
                    observedGeneration: generation
                )
            )
        }

        // 1. A spec the schema could not refuse, refused here: report and touch nothing.
        let spec: LiveStreamSpec
        let problems: [FieldError]
        do {
            spec = try JSONValue.decode(LiveStreamSpec.self, from: object["spec"] ?? [:])
            problems = spec.validate(name: id.name)
        } catch {
            spec = LiveStreamSpec()
            problems = [FieldError(field: "spec", message: "cannot be read: \(error)")]
        }
        if let first = problems.first {
            let more = problems.count > 1 ? " (and \(problems.count - 1) more)" : ""
            condition(Condition.Kind.ready, .false, "InvalidSpec", "\(first)\(more)")
            status.phase = .failed
            try await self.writeStatus(status, previous: previous, object: object, id: id)
            return .done
        }

        // 2. The finalizer, before anything that must be undone at delete.
        try await self.ensureFinalizer(object, id: id)

        // 3. The port, recorded in status before any child exists.
        let outcome = self.book.allocate(
            for: Self.claimant(object),
            requested: spec.ingest.port,
            recorded: previous?.port
        )
        let port: Int
        switch outcome {
        case .allocated(let allocated, let displaced):
            port = allocated
            if let displaced {
                await self.events.record(
                    .warning,
                    regarding: object,
                    reason: "PortReassigned",
                    action: "AllocatePort",
                    note: "\(displaced); the stream now has port \(allocated)"
                )
            }
            condition(
                Condition.Kind.portAllocated,
                .true,
                "Allocated",
                "port \(allocated) from the range \(self.book.range)"
            )
        case .failed(let error, let held):
            condition(Condition.Kind.portAllocated, .false, error.reason, error.description)
            guard let held else {
                condition(Condition.Kind.ready, .false, "PortUnavailable", error.description)
                status.phase = .failed
                try await self.writeStatus(status, previous: previous, object: object, id: id)
                if case .exhausted = error { return .requeue(after: .seconds(60)) }
                return .done
            }
            // A refused change of a fixed port keeps the stream on the port it has.
            port = held
        }
        status.port = port
        status.ingestURL = self.configuration.ingestURL(port: port, app: spec.ingest.app)
        if previous?.port != port {
            try await self.writeStatus(status, previous: written, object: object, id: id)
            written = status
            await self.events.record(
                .normal,
                regarding: object,
                reason: "PortAllocated",
                action: "AllocatePort",
                note: "Publish to \(status.ingestURL ?? "")"
            )
        }

        // 4. The stream's port on the gateway Service.
        try await self.gateway.ensure(port: port)

        // 5. Secrets: generate a missing stream key; report missing target keys.
        let children = RelayChildren(
            namespace: id.namespace,
            name: id.name,
            uid: object.metadata.uid ?? "",
            spec: spec,
            configuration: self.configuration
        )
        let manager = self.configuration.fieldManager
        func apply(_ value: JSONValue, _ resource: KubernetesResource) async throws -> KubernetesObject {
            try await self.client.apply(
                value,
                as: KubernetesObject.self,
                resource,
                name: children.childName,
                namespace: id.namespace,
                fieldManager: manager,
                force: true
            )
        }
        let kedaInstalled = await self.keda.installed(namespace: id.namespace)
        // What this process applied last for the stream: unchanged and recent, the children other than the
        // Deployment (whose status gives the phase) are not applied again; a resync every `reapplyInterval`
        // repairs drift in them.
        var hasher = Hasher()
        hasher.combine(children.configMap)
        hasher.combine(children.service)
        hasher.combine(children.networkPolicy)
        hasher.combine(children.ingress)
        hasher.combine(kedaInstalled ? children.scaledObject : nil)
        let fingerprint = hasher.finalize()
        var notReady: [String] = []
        let upToDate = self.applied.withLock { applied in
            guard let last = applied[id] else { return false }
            return last.fingerprint == fingerprint && ContinuousClock.now - last.at < self.reapplyInterval
        }
        if !upToDate {
            // 5. Secrets: generate a missing stream key; report missing target keys.
            if spec.ingest.webhook == nil {
                let (reason, message, key) = try await self.ensureStreamKey(children, object: object)
                condition(Condition.Kind.streamKey, key != nil ? .true : .false, reason, message)
                if let key {
                    try await self.keyBook?.set(id, app: spec.ingest.app, key: key)
                } else {
                    notReady.append(message)
                    try await self.keyBook?.remove(id)
                }
            } else {
                condition(Condition.Kind.streamKey, .true, "Webhook", "publishers are authorized by the webhook")
                // Nothing for the shared port to find it by: reachable on its own port.
                try await self.keyBook?.remove(id)
            }
            for (index, target) in spec.targets.enumerated() {
                guard let ref = target.streamKeySecretRef, target.enabled else { continue }
                if try await self.secretKeyMissing(ref, namespace: id.namespace) {
                    notReady.append(
                        "spec.targets[\(index)].streamKeySecretRef: Secret \(ref.name) with key \(ref.key) not found"
                    )
                }
            }

            // 6. The children.
            _ = try await apply(children.configMap, .configMaps)
            _ = try await apply(children.service, .services)
            _ = try await apply(children.networkPolicy, .networkPolicies)
            if let ingress = children.ingress {
                _ = try await apply(ingress, .ingresses)
            } else if self.configuration.ingressEnabled {
                try await self.deleteIfPresent(.ingresses, name: children.childName, namespace: id.namespace)
            }
            if let invalid = children.sourceRanges.invalid.first {
                self.logger.warning(
                    "invalid allowed source range left out of the NetworkPolicy",
                    metadata: ["k8s.name": "\(id)", "liverelay.range": "\(invalid)"]
                )
            }
            if kedaInstalled {
                _ = try await apply(children.scaledObject, .scaledObjects)
            }
        }
        try await self.createDeploymentIfAbsent(children, kedaInstalled: kedaInstalled)
        let deployment = try await apply(children.deployment, .deployments)

        // 7. Autoscaling and the replica count.
        if kedaInstalled {
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
        let replicas = try await self.ensureReplicas(
            children,
            suspended: spec.suspend,
            kedaInstalled: kedaInstalled,
            deployment: deployment
        )

        // 8. Status.
        if spec.preview.enabled, let base = self.configuration.effectivePreviewURLBase {
            status.previewURL = "\(base)\(children.previewPath)/index.m3u8"
        } else {
            status.previewURL = nil
        }
        let readyReplicas = deployment["status"]?["readyReplicas"]?.intValue ?? 0
        // A running relay is asked what it sees; ``pollRelays()`` asks again and reconciles when the answer changes.
        let relayRunning = readyReplicas > 0 && !spec.suspend && notReady.isEmpty
        if !relayRunning {
            self.relays.withLock { _ = $0.removeValue(forKey: id) }
        }
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
            if relayRunning {
                let (report, since) = await self.relayReport(id)
                if let report {
                    status.phase = report.live ? .live : .idle
                    status.targets = report.targets
                } else {
                    // Not known now: keep what was last seen rather than flap.
                    status.phase = written?.phase == .live ? .live : .idle
                    status.targets = written?.targets
                }
                // Ready, and the held publisher not through yet: still starting, for a while.
                let starting = since + self.startingGrace - ContinuousClock.now
                if status.phase == .idle, written?.phase == .starting, starting > .zero {
                    status.phase = .starting
                    requeue = starting
                }
            } else {
                status.phase = replicas > 0 ? .starting : .idle
            }
            condition(
                Condition.Kind.ready,
                .true,
                "Configured",
                "the relay is configured; publish to \(status.ingestURL ?? "")"
            )
        }
        if written?.phase != status.phase, status.phase == .suspended || written?.phase == .suspended {
            await self.events.record(
                .normal,
                regarding: object,
                reason: spec.suspend ? "Suspended" : "Resumed",
                action: "Scale",
                note: spec.suspend
                    ? "The stream is offline: the relay is at 0 replicas and the gateway refuses connections"
                    : "The stream is back online"
            )
        }
        try await self.writeStatus(status, previous: written, object: object, id: id)
        if !upToDate {
            // Missing Secrets are not watched: look again soon, and do not skip the check meanwhile.
            guard notReady.isEmpty else { return .requeue(after: .seconds(30)) }
            self.applied.withLock { $0[id] = (fingerprint, ContinuousClock.now) }
        }
        return requeue.map { .requeue(after: $0) } ?? .done
    }

    // MARK: - Running relays

    /// What the stream's running relay says, and since when it runs (in this process's view): as its watch last
    /// read it, or, for a relay not known yet, read now, and then watched (see ``watchRelays()``).
    private func relayReport(_ id: StreamID) async -> (RelayStreamReport?, since: ContinuousClock.Instant) {
        if let known = self.relays.withLock({ $0[id] }), known.report != nil {
            return (known.report, known.since)
        }
        let report: RelayStreamReport?
        do {
            report = try await self.relayReader.read(id)
        } catch {
            self.logger.debug("Cannot read the relay's status", metadata: ["k8s.name": "\(id)", "error": "\(error)"])
            report = nil
        }
        let since = self.relays.withLock { relays in
            let since = relays[id]?.since ?? .now
            relays[id] = KnownRelay(report: report, since: since)
            return since
        }
        self.watchRequests.continuation.yield(id)
        return (report, since)
    }

    /// Keeps one watch on each running relay (``watch(_:)``): the relay answers when what it says in a LiveStream's
    /// terms changes (a publisher came or went, a target changed state), and the stream is reconciled then, within
    /// a fraction of a second, with no request to the API server while nothing changes. Only the leader watches:
    /// a standby forgets the relays it knew, and the next leader learns them from its reconciles.
    func watchRelays() async {
        await withDiscardingTaskGroup { group in
            for await id in self.watchRequests.stream {
                guard self.watching.withLock({ $0.insert(id).inserted }) else { continue }
                group.addTask { await self.watch(id) }
            }
        }
    }

    /// Watches one relay while the stream's relay runs and this process leads.
    private func watch(_ id: StreamID) async {
        let reader = self.relayReader
        var tag = self.relays.withLock { $0[id]?.report?.entityTag }
        var failures = 0
        while !Task.isCancelled {
            guard let queue = self.controller.withLock({ $0?.queue }) else {
                self.relays.withLock { $0.removeAll() }
                break
            }
            guard self.relays.withLock({ $0[id] != nil }) else { break }
            do {
                guard
                    let (report, newTag) = try await reader.read(
                        id,
                        changedFrom: tag,
                        wait: self.configuration.relayStatusInterval
                    )
                else { continue }
                failures = 0
                tag = newTag ?? report.entityTag
                // The reconcile it queues uses this report. A stream whose relay stopped meanwhile is gone from the
                // map, and stays gone.
                let changed = self.relays.withLock { relays in
                    guard var known = relays[id], known.report != report else { return false }
                    known.report = report
                    relays[id] = known
                    return true
                }
                if changed {
                    queue.add(ObjectKey(namespace: id.namespace, name: id.name))
                }
            } catch {
                // Unreadable now (restarting, or not reachable yet): keep what was last seen rather than flap.
                failures += 1
                let delay = Duration.milliseconds(min(10_000, 250 << min(failures, 6)))
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    break
                }
            }
        }
        self.watching.withLock { _ = $0.remove(id) }
        // Running again since the loop looked: watched again.
        if self.relays.withLock({ $0[id] != nil }) {
            self.watchRequests.continuation.yield(id)
        }
    }

    // MARK: - Steps

    private func ensureFinalizer(_ object: KubernetesObject, id: StreamID) async throws {
        var finalizers = object.metadata.finalizers ?? []
        guard !finalizers.contains(LiveStreamResource.finalizer) else { return }
        finalizers.append(LiveStreamResource.finalizer)
        _ = try await self.client.patch(
            KubernetesObject.self,
            .liveStreams,
            name: id.name,
            namespace: id.namespace,
            mergePatch: [
                "metadata": [
                    "finalizers": .array(finalizers.map { .string($0) }),
                    "resourceVersion": .string(object.metadata.resourceVersion ?? ""),
                ]
            ]
        )
    }

    /// Creates the ingest key's Secret when it is missing. Returns the StreamKey condition, and the key when there is
    /// one (never logged: it goes to the ``IngestKeyBook`` only).
    private func ensureStreamKey(
        _ children: RelayChildren,
        object: KubernetesObject
    ) async throws -> (reason: String, message: String, key: String?) {
        let selector = children.streamKeySecret
        do {
            let secret = try await self.client.get(
                KubernetesObject.self,
                .secrets,
                name: selector.name,
                namespace: children.namespace
            )
            // As the relay reads the mounted file: without the line breaks around it.
            let key =
                (secret["data"]?[selector.key]?.stringValue.flatMap { Data(base64Encoded: $0) }
                .map { String(decoding: $0, as: UTF8.self) } ?? secret["stringData"]?[selector.key]?.stringValue)?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard let key else {
                return ("KeyMissing", "Secret \(selector.name) has no key \(selector.key)", nil)
            }
            let generated = secret.metadata.ownerReferences?.contains { $0.uid == children.uid } == true
            return (generated ? "Generated" : "Found", "the stream key is in Secret \(selector.name)", key)
        } catch let error as KubernetesError where error.isNotFound {
            let generated = StreamKey.generate()
            let secret = try JSONValue.decode(
                KubernetesObject.self,
                from: children.generatedStreamKeySecret(key: generated)
            )
            do {
                _ = try await self.client.create(secret, .secrets, namespace: children.namespace)
            } catch let error as KubernetesError where error.isConflict {
                // Made by another worker or a person meanwhile: theirs stands.
                return try await self.ensureStreamKey(children, object: object)
            }
            await self.events.record(
                .normal,
                regarding: object,
                reason: "StreamKeyGenerated",
                action: "CreateSecret",
                note: "Generated a stream key in Secret \(selector.name), key \(selector.key)"
            )
            return ("Generated", "the stream key is in Secret \(selector.name)", generated)
        }
    }

    private func secretKeyMissing(_ ref: LiveStreamSpec.SecretKeySelector, namespace: String) async throws -> Bool {
        do {
            let secret = try await self.client.get(
                KubernetesObject.self,
                .secrets,
                name: ref.name,
                namespace: namespace
            )
            return secret["data"]?[ref.key] == nil && secret["stringData"]?[ref.key] == nil
        } catch let error as KubernetesError where error.isNotFound {
            return true
        }
    }

    /// Creates the relay Deployment, the one time `spec.replicas` is written: 0 when KEDA scales it (or the stream
    /// is suspended), so no relay starts before a publisher comes; `minReplicas`, at least 1, without KEDA.
    ///
    /// A create, not an apply: the applies that follow leave `spec.replicas` out, and server-side apply removes a
    /// field its manager stops applying. The create's `Update` entry in `managedFields` keeps it, and KEDA (or the
    /// gateway, through the scale subresource) then owns the count. Absent means absent from the owned Deployments'
    /// cache; a create that meets one made meanwhile (409) leaves it to the apply.
    private func createDeploymentIfAbsent(_ children: RelayChildren, kedaInstalled: Bool) async throws {
        let key = ObjectKey(namespace: children.namespace, name: children.childName)
        guard let cache = self.controller.withLock({ $0?.ownedCache(.deployments) }), cache.get(key) == nil else {
            return
        }
        let replicas =
            children.spec.suspend
            ? 0 : kedaInstalled ? children.spec.scaling.minReplicas : max(1, children.spec.scaling.minReplicas)
        let deployment = try JSONValue.decode(
            KubernetesObject.self,
            from: children.deployment(replicas: replicas)
        )
        do {
            _ = try await self.client.create(
                deployment,
                .deployments,
                namespace: children.namespace,
                fieldManager: self.configuration.fieldManager
            )
            self.logger.debug(
                "relay deployment created",
                metadata: [
                    "k8s.name": "\(children.namespace)/\(children.childName)", "liverelay.replicas": "\(replicas)",
                ]
            )
        } catch let error as KubernetesError where error.isConflict {
            // Made by another worker or a person meanwhile: the apply takes it from here.
        }
    }

    private func deleteIfPresent(_ resource: KubernetesResource, name: String, namespace: String) async throws {
        do {
            try await self.client.delete(resource, name: name, namespace: namespace)
        } catch let error as KubernetesError where error.isNotFound {}
    }

    /// With KEDA the ScaledObject owns the count, a suspended stream's too (its paused-replicas annotation holds it
    /// at 0): the operator never writes it. Without KEDA: 0 while suspended, else at least 1, through the scale
    /// subresource. Returns the replica count the Deployment asks for now.
    private func ensureReplicas(
        _ children: RelayChildren,
        suspended: Bool,
        kedaInstalled: Bool,
        deployment: KubernetesObject
    ) async throws -> Int {
        let recorded = deployment["spec"]?["replicas"]?.intValue.map { Int($0) }
        if kedaInstalled {
            return recorded ?? 0
        }
        // An API server defaults `spec.replicas` to 1; without a value (a server that does not default) the scale
        // subresource says what the Deployment runs.
        let name = children.childName
        var scale: Scale? = nil
        if recorded == nil {
            scale = try await self.client.getScale(.deployments, name: name, namespace: children.namespace)
        }
        let current = recorded ?? scale?.spec.replicas ?? 1
        let wanted = suspended ? 0 : max(1, current)
        guard wanted != current else { return current }
        var update: Scale
        if let scale {
            update = scale
        } else {
            update = try await self.client.getScale(.deployments, name: name, namespace: children.namespace)
        }
        guard update.spec.replicas != wanted else { return wanted }
        update.spec.replicas = wanted
        _ = try await self.client.updateScale(update, .deployments, namespace: children.namespace)
        return wanted
    }

    /// Writes `status` if it differs from `previous`, as a merge patch (absent fields become `null`, so they are
    /// removed). Emits an event for a condition that turned bad.
    private func writeStatus(
        _ status: LiveStreamStatus,
        previous: LiveStreamStatus?,
        object: KubernetesObject,
        id: StreamID
    ) async throws {
        guard status != previous else { return }
        var body = try JSONValue.encode(status)
        for key in ["phase", "port", "ingestURL", "previewURL"] where body[key] == nil {
            body[key] = .null
        }
        _ = try await self.client.patchStatus(
            KubernetesObject.self,
            .liveStreams,
            name: id.name,
            namespace: id.namespace,
            mergePatch: ["status": body]
        )
        for condition in status.conditions ?? [] where condition.status == .false {
            let before = previous?.condition(condition.type)
            guard before?.status != .false || before?.reason != condition.reason else { continue }
            guard condition.reason != "Suspended", condition.reason != "KEDANotInstalled" || before == nil else {
                continue
            }
            await self.events.record(
                .warning,
                regarding: object,
                reason: condition.reason,
                action: "Reconcile",
                note: condition.message
            )
        }
    }
}

/// Whether KEDA's ScaledObject resource exists, asked at most every `interval`.
final class KEDAProbe: Sendable {
    private let client: KubernetesClient
    private let interval: Duration
    private let state = Mutex<(installed: Bool, at: ContinuousClock.Instant)?>(nil)

    init(client: KubernetesClient, interval: Duration = .seconds(30)) {
        self.client = client
        self.interval = interval
    }

    func installed(namespace: String) async -> Bool {
        if let cached = self.state.withLock({ $0 }), ContinuousClock.now - cached.at < self.interval {
            return cached.installed
        }
        let installed: Bool
        do {
            _ = try await self.client.list(
                KubernetesObject.self,
                .scaledObjects,
                namespace: namespace,
                options: ListOptions(limit: 1)
            )
            installed = true
        } catch let error as KubernetesError where error.isNotFound {
            installed = false
        } catch {
            return self.state.withLock { $0?.installed } ?? false
        }
        self.state.withLock { $0 = (installed, ContinuousClock.now) }
        return installed
    }
}
