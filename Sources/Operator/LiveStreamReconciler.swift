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

/// Reconciles one LiveStream: level-based and idempotent, so running it again with nothing changed writes nothing
/// and reads nothing from the API server.
///
/// It reads the stream, its children, the Secrets it names and the gateway Service from the controller's caches
/// (every one of them watched, so a change to any queues the stream), compares what it wants with what they hold,
/// and writes only the difference. The steps, in order: the spec (an invalid one is reported and touches nothing);
/// the finalizer (so a delete always releases the port); the port (recorded in status before any child exists); the
/// gateway Service's port list; the ingest key (generated when missing) and the targets' keys; the children; the
/// replica count; the relay's own report; and last the status, computed by ``LiveStreamStatusRules`` from all that.
final class LiveStreamReconciler: Sendable {
    /// The cache ids of the watches that are not owned children.
    static let gatewayServiceCache = "gateway-service"
    /// How long the gateway loop waits after a request for more before it applies, at least.
    static let gatewayGathering: Duration = .milliseconds(200)
    /// How long it waits at most, however long the last apply took.
    static let gatewayGatheringLimit: Duration = .seconds(5)

    /// How long to gather requests for the next apply of the gateway Service's ports after one that took
    /// `lastApply`: four times as long (so the gateway Service takes at most a fifth of the time, and of the API
    /// server's, whatever its size), within ``gatewayGathering`` and ``gatewayGatheringLimit``.
    ///
    /// Each apply carries every port: ten thousand streams make a Service of ten thousand ports, and applying it as
    /// often as with a hundred would cost the API server ten thousand times a hundred entries in a burst of creates.
    /// Gathering longer when an apply is slow makes each one carry more of the new ports instead.
    static func gatewayGathering(after lastApply: Duration) -> Duration {
        min(max(Self.gatewayGathering, lastApply * 4), Self.gatewayGatheringLimit)
    }

    let client: KubernetesClient
    let configuration: OperatorConfiguration
    let book: PortBook
    let gateway: GatewayServiceWriter
    let events: EventRecorder
    let logger: Logger
    let references = SecretReferences()
    /// Streams whose port is not on the gateway Service yet.
    let portWaiters = PortWaiters()
    private let controller = ControllerReference()
    let relays: RelayReports
    /// Keeps the streams' keys for the gateway's shared ingest port, when configured.
    private let keyBook: IngestKeyBookWriter?
    /// Per stream, what its key book entry was last made from (app and the key Secret's version, or `nil` for no
    /// entry), so the key is read again only when its Secret changed.
    private let bookEntries = Mutex<[StreamID: String?]>([:])
    /// Wakes ``syncGatewayOnChange()`` when the gateway Service changed.
    private let gatewayChanges = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))

    init(client: KubernetesClient, configuration: OperatorConfiguration, logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        let book = PortBook(range: configuration.portRange)
        self.book = book
        let controller = self.controller
        let queue: @Sendable () -> WorkQueue<ObjectKey>? = { controller.value?.queue }
        self.relays = RelayReports(
            reader: RelayStatusReader(urlTemplate: configuration.relayStatusURL, timeout: .seconds(2)),
            interval: configuration.relayStatusInterval,
            logger: logger,
            queue: queue
        )
        self.keyBook = configuration.ingestKeyBookSecret.map {
            IngestKeyBookWriter(client: client, namespace: configuration.gatewayNamespace, name: $0)
        }
        let gatewayKey = ObjectKey(namespace: configuration.gatewayNamespace, name: configuration.gatewayServiceName)
        self.gateway = GatewayServiceWriter(
            client: client,
            configuration: configuration,
            book: book,
            logger: logger,
            view: {
                // Nothing is known of the ports before the first reconcile of a term has rebuilt the allocator.
                guard let controller = controller.value, let streams = controller.reflector,
                    book.isRebuilt(for: ObjectIdentifier(streams)),
                    let cache = controller.cache(Self.gatewayServiceCache, as: GatewayServicePorts.self),
                    cache.hasSynced
                else { return .unknown }
                guard let service = cache.get(gatewayKey) else { return .absent }
                let behind = controller.expectations.isBehind(
                    .services,
                    gatewayKey,
                    cachedVersion: service.metadata.resourceVersion
                )
                return .present(service, behind: behind)
            },
            written: { service in
                controller.value?.expectations.expect(.services, written: service)
            }
        )
        self.events = EventRecorder(
            client: client,
            controller: configuration.reportingController,
            instance: configuration.reportingInstance,
            logger: logger
        )
    }

    func attach(_ controller: Controller<CachedLiveStream>) {
        self.controller.value = controller
    }

    // MARK: - Watches

    /// Every resource the reconcile reads besides LiveStreams, watched so that any change queues the streams it
    /// concerns: the children (by the operator's labels; Ingresses only when the operator makes them, ScaledObjects
    /// only while KEDA's CRD is served), every Secret as a key index (see ``SecretIndex``), and the gateway Service.
    func watches() -> (owned: [OwnedResource], other: [WatchedResource]) {
        let kind = LiveStreamResource.kind
        let selector = RelayChildren.childLabelSelector
        // Children are cached as summaries: what ``DesiredChild`` compares, not the objects.
        func child(_ resource: KubernetesResource, isOptional: Bool = false) -> OwnedResource {
            OwnedResource(
                resource,
                caching: ObjectSummary.self,
                ownerKind: kind,
                labelSelector: selector,
                isOptional: isOptional
            )
        }
        var owned = [child(.deployments), child(.configMaps), child(.services), child(.networkPolicies)]
        if self.configuration.ingressEnabled {
            owned.append(child(.ingresses))
        }
        owned.append(child(.scaledObjects, isOptional: true))
        let references = self.references
        let waiters = self.portWaiters
        let changes = self.gatewayChanges.continuation
        let other = [
            WatchedResource(
                id: SecretIndex.id,
                .secrets,
                caching: IndexedSecret.self,
                fieldSelector: SecretIndex.fieldSelector,
                pageSize: 100
            ) { secret in
                // The streams that name it, and the one that owns it (a generated key).
                let owners = (secret.metadata.ownerReferences ?? []).filter { $0.kind == kind }.map {
                    ObjectKey(namespace: secret.metadata.namespace, name: $0.name)
                }
                return references.streams(referring: ObjectKey(secret)) + owners
            },
            WatchedResource(
                id: Self.gatewayServiceCache,
                .services,
                caching: GatewayServicePorts.self,
                scope: .namespace(self.configuration.gatewayNamespace),
                fieldSelector: "metadata.name=\(self.configuration.gatewayServiceName)"
            ) { service in
                changes.yield()
                // The streams whose port it lists now.
                return waiters.satisfied(by: service.streamPorts.map(\.port))
            },
        ]
        return (owned, other)
    }

    /// Syncs the gateway Service's ports whenever it changes (created, edited by hand), until cancelled.
    ///
    /// Streams waiting for their port ask for a sync through the same signal; while one apply is in flight the
    /// signals of every stream that asked meanwhile fold into the next one.
    func syncGatewayOnChange() async {
        var lastError: String?
        var gathering = Self.gatewayGathering
        for await _ in self.gatewayChanges.stream {
            // Gather: the streams created with this one ask within moments, and one apply takes them all.
            try? await Task.sleep(for: gathering)
            let start = ContinuousClock.now
            do {
                try await self.gateway.sync()
                gathering = Self.gatewayGathering(after: ContinuousClock.now - start)
                lastError = nil
            } catch {
                // A warning when the failure is new; the same one again only at debug level.
                let message = "\(error)"
                self.logger.log(
                    level: message == lastError ? .debug : .warning,
                    "gateway service ports not applied; retrying",
                    metadata: ["error": "\(message)"]
                )
                lastError = message
                try? await Task.sleep(for: .seconds(1))
                self.gatewayChanges.continuation.yield()
            }
        }
    }

    // MARK: - Entry

    func reconcile(_ key: ObjectKey, _ object: CachedLiveStream?) async throws -> ReconcileAction {
        var object = object
        if let reflector = try await self.rebuildIfNewTerm() {
            // An owned object's watch can queue a key before the LiveStreams are listed: read the object from the
            // synced cache.
            object = reflector.get(key)
        }
        let id = StreamID(namespace: key.namespace, name: key.name)
        guard let object else {
            self.forget(id)
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
        guard let controller = self.controller.value else { return .done }
        // A cached stream older than this process's last write of it: the event that brings the write is on its way
        // and queues the stream again; reconciling the old copy would only write again.
        if controller.expectations.isBehind(.liveStreams, key, cachedVersion: object.metadata.resourceVersion) {
            return .deferred(after: controller.expectations.timeout)
        }
        let ledger = StatusLedger(Self.status(of: object))
        do {
            return try await self.reconcileLive(object, id: id, ledger: ledger, controller: controller)
        } catch {
            if !(error is CancellationError) {
                await self.reportFailure(error, object: object, id: id, ledger: ledger)
            }
            throw error
        }
    }

    /// A reconcile that failed says so where the user looks: `Ready=False` with reason `ReconcileFailed` and the
    /// error (an event comes with the condition, once per new reason), written once while the failure stays the
    /// same. The controller retries with backoff and logs it. When the API server cannot take this write either,
    /// the log is all there is.
    private func reportFailure(_ error: any Error, object: CachedLiveStream, id: StreamID, ledger: StatusLedger) async {
        // Onto the status as this reconcile left it (its port claim included), not as it found it.
        var status = ledger.written ?? LiveStreamStatus()
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
        try? await self.writeStatus(status, ledger: ledger, object: object, id: id)
    }

    /// At the first reconcile of a leadership term, once the reflector holds the complete first list, rebuild the
    /// allocator from every recorded port. Returns the synced reflector of the term.
    private func rebuildIfNewTerm() async throws -> Reflector<CachedLiveStream>? {
        guard let reflector = self.controller.value?.reflector else { return nil }
        try await reflector.waitForSync()
        let displaced = self.book.rebuild(term: ObjectIdentifier(reflector)) {
            let claims = reflector.list().compactMap { object -> (PortClaimant, Int)? in
                guard let port = object.status?.port else { return nil }
                return (Self.claimant(object), Int(port))
            }
            self.logger.debug(
                "port allocator rebuilt",
                metadata: ["k8s.count": "\(reflector.count)", "liverelay.ports": "\(claims.count)"]
            )
            // The gateway Service's ports can be judged now: drop those of streams deleted meanwhile.
            self.gatewayChanges.continuation.yield()
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

    static func claimant(_ object: CachedLiveStream) -> PortClaimant {
        PortClaimant(
            stream: StreamID(namespace: object.metadata.namespace ?? "", name: object.metadata.name ?? ""),
            createdAt: object.metadata.creationTimestamp ?? ""
        )
    }

    static func status(of object: CachedLiveStream) -> LiveStreamStatus? {
        object.status
    }

    /// Streams that wait for a port get another chance when one is freed.
    private func requeueStreamsWithoutPort() {
        guard let controller = self.controller.value, let reflector = controller.reflector,
            let queue = controller.queue
        else { return }
        for object in reflector.list() where object.metadata.deletionTimestamp == nil {
            let key = ObjectKey(object)
            if self.book.port(of: StreamID(namespace: key.namespace, name: key.name)) == nil {
                queue.add(key)
            }
        }
    }

    /// Forgets what this process knows of a stream that is gone or going.
    private func forget(_ id: StreamID) {
        self.relays.forget(id)
        self.portWaiters.forget(id)
        self.references.remove(id)
        self.bookEntries.withLock { _ = $0.removeValue(forKey: id) }
    }

    // MARK: - Delete

    private func finalize(_ object: CachedLiveStream, id: StreamID) async throws -> ReconcileAction {
        let finalizers = object.metadata.finalizers ?? []
        self.forget(id)
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

    private func reconcileLive(
        _ object: CachedLiveStream,
        id: StreamID,
        ledger: StatusLedger,
        controller: Controller<CachedLiveStream>
    ) async throws -> ReconcileAction {
        let timestamp = Timestamps.seconds(Date())
        // 1. The spec: one the schema could not refuse is refused here, and touches nothing.
        guard let spec = try await self.validSpec(object, id: id, ledger: ledger, timestamp: timestamp) else {
            return .done
        }
        var children = self.children(of: object, id: id, spec: spec)
        // 2. The finalizer, before anything that must be undone at delete.
        try await self.ensureFinalizer(object, id: id, controller: controller)
        // 3. The port, recorded in status before any child exists.
        let claim: PortClaim
        switch try await self.claimPort(object, spec: spec, id: id, ledger: ledger, timestamp: timestamp) {
        case .claimed(let claimed): claim = claimed
        case .unavailable(let action): return action
        }
        let claimed = ledger.written
        // 4. The stream's port on the gateway Service.
        let exposed = await self.requestGatewayPort(id, port: claim.port)
        // 5. Secrets: generate a missing stream key; find missing target keys.
        guard let keys = try await self.observeKeys(children, object: object, controller: controller) else {
            return .done
        }
        children.streamKeyVersion = keys.streamKeyVersion
        // 6. The children and 7. the replica count.
        guard let workload = try await self.ensureWorkload(children, controller: controller) else {
            // Created by this process a moment ago and not in the cache yet: its event queues the stream again.
            return .deferred(after: controller.expectations.timeout)
        }
        // 8. What the running relay says.
        let relay = await self.observeRelay(id, spec: spec, keys: keys, readyReplicas: workload.readyReplicas)
        // 9. The status, once the port is exposed.
        guard exposed else { return .deferred(after: controller.expectations.timeout) }
        let observation = LiveStreamObservation(
            generation: object.metadata.generation,
            spec: spec,
            port: claim,
            ingestURL: self.configuration.ingestURL(port: claim.port, app: spec.ingest.app),
            previewURL: self.previewURL(spec, children: children),
            streamKey: keys.streamKey,
            missingTargetKeys: keys.missingTargetKeys,
            kedaInstalled: workload.kedaInstalled,
            replicas: workload.replicas,
            readyReplicas: workload.readyReplicas,
            relay: relay
        )
        return try await self.writeObservedStatus(
            observation,
            claimed: claimed,
            object: object,
            id: id,
            ledger: ledger,
            timestamp: timestamp
        )
    }

    // MARK: - Steps

    /// The stream's spec when it is valid; otherwise writes `Ready=False InvalidSpec`, forgets the Secrets it named,
    /// and returns `nil`.
    private func validSpec(
        _ object: CachedLiveStream,
        id: StreamID,
        ledger: StatusLedger,
        timestamp: String
    ) async throws -> LiveStreamSpec? {
        switch Self.spec(of: object, name: id.name) {
        case .success(let spec):
            return spec
        case .failure(let invalid):
            self.references.remove(id)
            let status = LiveStreamStatusRules.invalidSpec(
                invalid.problems,
                previous: ledger.written,
                generation: object.metadata.generation,
                timestamp: timestamp
            )
            try await self.writeStatus(status, ledger: ledger, object: object, id: id)
            return nil
        }
    }

    /// The stream's children as desired, and the Secrets they name noted (a change of one queues the stream).
    private func children(of object: CachedLiveStream, id: StreamID, spec: LiveStreamSpec) -> RelayChildren {
        let children = RelayChildren(
            namespace: id.namespace,
            name: id.name,
            uid: object.metadata.uid ?? "",
            spec: spec,
            configuration: self.configuration
        )
        self.references.set(id, names: Set(children.secretNames))
        return children
    }

    /// What step 5 found of the stream's keys.
    struct Keys {
        var streamKey: StreamKeyObservation
        /// One message per enabled target whose key Secret (or key) is missing.
        var missingTargetKeys: [String]
        /// The stream key Secret's `resourceVersion`, when the index has it with the key.
        var streamKeyVersion: String?
    }

    /// Generates a missing stream key (``ensureStreamKey(_:object:secrets:controller:)``) and finds missing target
    /// keys, from the Secret index; `nil` without the index (not leading).
    private func observeKeys(
        _ children: RelayChildren,
        object: CachedLiveStream,
        controller: Controller<CachedLiveStream>
    ) async throws -> Keys? {
        guard let secrets = controller.cache(SecretIndex.id, as: IndexedSecret.self) else { return nil }
        let (streamKey, version) = try await self.ensureStreamKey(
            children,
            object: object,
            secrets: secrets,
            controller: controller
        )
        let missing = Self.missingTargetKeys(children.spec, namespace: children.namespace, secrets: secrets)
        return Keys(streamKey: streamKey, missingTargetKeys: missing, streamKeyVersion: version)
    }

    /// Asks for the stream's port on the gateway Service and returns whether it is there already.
    ///
    /// The gateway loop writes it with every port asked for meanwhile (one apply for many streams, not one per
    /// stream, each carrying every port). The stream is Ready once its port is there; the Service's event queues it
    /// then.
    private func requestGatewayPort(_ id: StreamID, port: Int) async -> Bool {
        self.portWaiters.wait(id, port: port)
        let exposed = await self.gateway.isExposed(port)
        if exposed {
            self.portWaiters.forget(id)
        } else {
            self.gatewayChanges.continuation.yield()
        }
        return exposed
    }

    /// The running relay's report, when ``LiveStreamStatusRules/relayRuns(spec:streamKey:missingTargetKeys:readyReplicas:)``;
    /// otherwise forgets it (and stops reading it).
    private func observeRelay(
        _ id: StreamID,
        spec: LiveStreamSpec,
        keys: Keys,
        readyReplicas: Int
    ) async -> RelayObservation? {
        let runs = LiveStreamStatusRules.relayRuns(
            spec: spec,
            streamKey: keys.streamKey,
            missingTargetKeys: keys.missingTargetKeys,
            readyReplicas: readyReplicas
        )
        guard runs else {
            self.relays.forget(id)
            return nil
        }
        return await self.relays.observe(id)
    }

    /// The preview's URL, when the preview is on and reachable from outside.
    private func previewURL(_ spec: LiveStreamSpec, children: RelayChildren) -> String? {
        guard spec.preview.enabled, let base = self.configuration.effectivePreviewURLBase else { return nil }
        return "\(base)\(children.previewPath)/index.m3u8"
    }

    /// Computes the status from `observation` (``LiveStreamStatusRules``) onto the status as the port claim left it,
    /// records an event when the stream is suspended or resumed, writes the status when it differs, and says when to
    /// look again.
    private func writeObservedStatus(
        _ observation: LiveStreamObservation,
        claimed: LiveStreamStatus?,
        object: CachedLiveStream,
        id: StreamID,
        ledger: StatusLedger,
        timestamp: String
    ) async throws -> ReconcileAction {
        let (status, requeue) = LiveStreamStatusRules.status(
            of: observation,
            previous: claimed,
            now: .now,
            timestamp: timestamp
        )
        if claimed?.phase != status.phase, status.phase == .suspended || claimed?.phase == .suspended {
            let suspended = observation.spec.suspend
            await self.events.record(
                .normal,
                regarding: object,
                reason: suspended ? "Suspended" : "Resumed",
                action: "Scale",
                note: suspended
                    ? "The stream is offline: the relay is at 0 replicas and the gateway refuses connections"
                    : "The stream is back online"
            )
        }
        try await self.writeStatus(status, ledger: ledger, object: object, id: id)
        return requeue.map { .requeue(after: $0) } ?? .done
    }

    struct InvalidSpec: Error {
        var problems: [FieldError]
    }

    /// The stream's spec, or what is wrong with it.
    static func spec(of object: CachedLiveStream, name: String) -> Result<LiveStreamSpec, InvalidSpec> {
        do {
            let spec = try object.readSpec()
            let problems = spec.validate(name: name)
            return problems.isEmpty ? .success(spec) : .failure(InvalidSpec(problems: problems))
        } catch {
            return .failure(InvalidSpec(problems: [FieldError(field: "spec", message: "cannot be read: \(error)")]))
        }
    }

    private func ensureFinalizer(
        _ object: CachedLiveStream,
        id: StreamID,
        controller: Controller<CachedLiveStream>
    ) async throws {
        var finalizers = object.metadata.finalizers ?? []
        guard !finalizers.contains(LiveStreamResource.finalizer) else { return }
        finalizers.append(LiveStreamResource.finalizer)
        let patched = try await self.client.patch(
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
        controller.expectations.expect(.liveStreams, written: patched)
    }

    private enum PortStep {
        /// The stream holds a port (recorded in status).
        case claimed(PortClaim)
        /// No port: the status says so; the reconcile ends with this.
        case unavailable(ReconcileAction)
    }

    /// Allocates the stream's port and, when it is new, records it in status (the claim) with an event.
    private func claimPort(
        _ object: CachedLiveStream,
        spec: LiveStreamSpec,
        id: StreamID,
        ledger: StatusLedger,
        timestamp: String
    ) async throws -> PortStep {
        let previous = ledger.written
        let outcome = self.book.allocate(
            for: Self.claimant(object),
            requested: spec.ingest.port,
            recorded: previous?.port
        )
        let claim: PortClaim
        switch outcome {
        case .allocated(let port, let displaced):
            if let displaced {
                await self.events.record(
                    .warning,
                    regarding: object,
                    reason: "PortReassigned",
                    action: "AllocatePort",
                    note: "\(displaced); the stream now has port \(port)"
                )
            }
            claim = PortClaim(
                port: port,
                status: .true,
                reason: "Allocated",
                message: "port \(port) from the range \(self.book.range)"
            )
        case .failed(let error, let held):
            guard let held else {
                let status = LiveStreamStatusRules.portUnavailable(
                    error,
                    previous: previous,
                    generation: object.metadata.generation,
                    timestamp: timestamp
                )
                try await self.writeStatus(status, ledger: ledger, object: object, id: id)
                if case .exhausted = error { return .unavailable(.requeue(after: .seconds(60))) }
                return .unavailable(.done)
            }
            // A refused change of a fixed port keeps the stream on the port it has.
            claim = PortClaim(port: held, status: .false, reason: error.reason, message: error.description)
        }
        guard previous?.port != claim.port else { return .claimed(claim) }
        try await self.recordClaim(claim, object: object, spec: spec, id: id, ledger: ledger, timestamp: timestamp)
        return .claimed(claim)
    }

    /// Records a stream's new port in status (the claim, before any child exists), with a `PortAllocated` event.
    private func recordClaim(
        _ claim: PortClaim,
        object: CachedLiveStream,
        spec: LiveStreamSpec,
        id: StreamID,
        ledger: StatusLedger,
        timestamp: String
    ) async throws {
        let ingestURL = self.configuration.ingestURL(port: claim.port, app: spec.ingest.app)
        let status = LiveStreamStatusRules.claim(
            claim,
            ingestURL: ingestURL,
            previous: ledger.written,
            generation: object.metadata.generation,
            timestamp: timestamp
        )
        try await self.writeStatus(status, ledger: ledger, object: object, id: id)
        await self.events.record(
            .normal,
            regarding: object,
            reason: "PortAllocated",
            action: "AllocatePort",
            note: "Publish to \(ingestURL)"
        )
    }

    /// Creates the ingest key's Secret when the index has none, and keeps the key book entry. The index knows which
    /// Secrets exist with which keys; a key itself is read only for the key book (never logged: it goes there only),
    /// once per version of its Secret.
    private func ensureStreamKey(
        _ children: RelayChildren,
        object: CachedLiveStream,
        secrets: Reflector<IndexedSecret>,
        controller: Controller<CachedLiveStream>
    ) async throws -> (StreamKeyObservation, version: String?) {
        let id = StreamID(namespace: children.namespace, name: children.name)
        guard children.spec.ingest.webhook == nil else {
            // Nothing for the shared port to find it by: reachable on its own port.
            try await self.setBookEntry(id, from: nil)
            return (.webhook, nil)
        }
        let selector = children.streamKeySecret
        let key = ObjectKey(namespace: children.namespace, name: selector.name)
        if let secret = secrets.get(key) {
            guard SecretIndex.has(secret, key: selector.key) else {
                try await self.setBookEntry(id, from: nil)
                return (.missing("Secret \(selector.name) has no key \(selector.key)"), nil)
            }
            try await self.setBookEntry(id, from: (secret, selector, children.spec.ingest.app))
            let generated = secret.metadata.ownerReferences?.contains { $0.uid == children.uid } == true
            return (.found(secret: selector.name, generated: generated), secret.metadata.resourceVersion)
        }
        if case .some(let version) = controller.expectations.pendingWrite(.secrets, key, cachedVersion: nil) {
            // Generated by this process a moment ago (the expectation's note is its version); the index shows it soon.
            return (.found(secret: selector.name, generated: true), version)
        }
        let generated = StreamKey.generate()
        let secret = try JSONValue.decode(
            KubernetesObject.self,
            from: children.generatedStreamKeySecret(key: generated)
        )
        let created: KubernetesObject
        do {
            created = try await self.client.create(secret, .secrets, namespace: children.namespace)
        } catch let error as KubernetesError where error.isConflict {
            // Made by another worker or a person meanwhile: theirs stands, and its event queues the stream again.
            return (.found(secret: selector.name, generated: false), nil)
        }
        controller.expectations.expect(.secrets, written: created, note: created.metadata.resourceVersion)
        await self.events.record(
            .normal,
            regarding: object,
            reason: "StreamKeyGenerated",
            action: "CreateSecret",
            note: "Generated a stream key in Secret \(selector.name), key \(selector.key)"
        )
        // The key book gets the key as it gets any: when the index shows the Secret (its event queues the stream).
        // The relay's pod template records the version just created, so the Deployment is written once.
        return (.found(secret: selector.name, generated: true), created.metadata.resourceVersion)
    }

    private static func bookSource(app: String, secret: IndexedSecret) -> String {
        "\(app) \(secret.metadata.uid ?? "") \(secret.metadata.resourceVersion ?? "")"
    }

    /// Makes the stream's key book entry hold the key of `source` (none when `nil`), unless it was last made from
    /// the same Secret version. Reads the key (one GET) only then.
    private func setBookEntry(
        _ id: StreamID,
        from source: (secret: IndexedSecret, selector: LiveStreamSpec.SecretKeySelector, app: String)?
    ) async throws {
        guard let keyBook = self.keyBook else { return }
        let wanted = source.map { Self.bookSource(app: $0.app, secret: $0.secret) }
        if let known = self.bookEntries.withLock({ $0[id] }), known == wanted { return }
        if let source {
            let secret = try await self.client.get(
                KubernetesObject.self,
                .secrets,
                name: source.selector.name,
                namespace: id.namespace
            )
            // As the relay reads the mounted file and local mode the Secret: `StreamKey.normalized`.
            let key =
                (secret["data"]?[source.selector.key]?.stringValue.flatMap { Data(base64Encoded: $0) }
                .map { String(decoding: $0, as: UTF8.self) } ?? secret["stringData"]?[source.selector.key]?.stringValue)
                .map(StreamKey.normalized)
            if let key {
                try await keyBook.set(id, app: source.app, key: key)
            } else {
                try await keyBook.remove(id)
            }
        } else {
            try await keyBook.remove(id)
        }
        self.bookEntries.withLock { $0[id] = .some(wanted) }
    }

    /// One message per enabled target whose key Secret, or key, the index does not have.
    static func missingTargetKeys(
        _ spec: LiveStreamSpec,
        namespace: String,
        secrets: Reflector<IndexedSecret>
    ) -> [String] {
        var missing: [String] = []
        for (index, target) in spec.targets.enumerated() {
            guard let ref = target.streamKeySecretRef, target.enabled else { continue }
            let secret = secrets.get(ObjectKey(namespace: namespace, name: ref.name))
            if secret.map({ SecretIndex.has($0, key: ref.key) }) != true {
                missing.append(
                    "spec.targets[\(index)].streamKeySecretRef: Secret \(ref.name) with key \(ref.key) not found"
                )
            }
        }
        return missing
    }

    /// What the relay's workload is after steps 6 and 7.
    struct Workload {
        var kedaInstalled: Bool
        /// The replica count the Deployment asks for.
        var replicas: Int
        var readyReplicas: Int
    }

    /// Makes every child as desired (``ensureChildren(_:kedaInstalled:controller:)``) and the replica count
    /// (``ensureReplicas(_:suspended:kedaInstalled:deployment:)``); `nil` when the Deployment was created by this
    /// process a moment ago and is not in the cache yet.
    private func ensureWorkload(
        _ children: RelayChildren,
        controller: Controller<CachedLiveStream>
    ) async throws -> Workload? {
        let kedaInstalled = controller.isCaching(KubernetesResource.scaledObjects.plural)
        guard
            let deployment = try await self.ensureChildren(
                children,
                kedaInstalled: kedaInstalled,
                controller: controller
            )
        else { return nil }
        let replicas = try await self.ensureReplicas(
            children,
            suspended: children.spec.suspend,
            kedaInstalled: kedaInstalled,
            deployment: deployment
        )
        return Workload(
            kedaInstalled: kedaInstalled,
            replicas: replicas,
            readyReplicas: Int(deployment.statusCounts["readyReplicas"] ?? 0)
        )
    }

    /// Makes every child as desired, writing only those that differ from the cache: the ConfigMap, Service and
    /// NetworkPolicy, the Ingress (or its deletion), the ScaledObject with KEDA, and last the Deployment, which it
    /// returns (`nil`: created by this process a moment ago, not in the cache yet).
    private func ensureChildren(
        _ children: RelayChildren,
        kedaInstalled: Bool,
        controller: Controller<CachedLiveStream>
    ) async throws -> ObjectSummary? {
        var desired = [
            DesiredChild(.configMaps, children.configMap),
            DesiredChild(.services, children.service),
            DesiredChild(.networkPolicies, children.networkPolicy),
        ]
        if let ingress = children.ingress {
            desired.append(DesiredChild(.ingresses, ingress))
        } else if self.configuration.ingressEnabled {
            try await self.deleteIfPresent(.ingresses, children, controller: controller)
        }
        if kedaInstalled {
            desired.append(DesiredChild(.scaledObjects, children.scaledObject))
        }
        for child in desired {
            let written = try await self.ensure(child, controller: controller)
            if written, child.resource == .networkPolicies, let invalid = children.sourceRanges.invalid.first {
                self.logger.warning(
                    "invalid allowed source range left out of the NetworkPolicy",
                    metadata: ["k8s.name": "\(children.namespace)/\(children.name)", "liverelay.range": "\(invalid)"]
                )
            }
        }
        return try await self.ensureDeployment(children, kedaInstalled: kedaInstalled, controller: controller)
    }

    /// Applies `child` unless the cache shows it as desired (or shows an older copy of this process's own write of
    /// it). Returns whether it wrote.
    @discardableResult
    private func ensure(_ child: DesiredChild, controller: Controller<CachedLiveStream>) async throws -> Bool {
        let key = ObjectKey(namespace: child.namespace, name: child.name)
        let cached = controller.ownedCache(child.resource, as: ObjectSummary.self)?.get(key)
        if let cached, child.isSatisfied(by: cached) { return false }
        let pending = controller.expectations.pendingWrite(
            child.resource,
            key,
            cachedVersion: cached?.metadata.resourceVersion
        )
        if pending == .some(child.hash) { return false }
        let answer = try await self.apply(child)
        controller.expectations.expect(child.resource, written: answer, note: child.hash)
        return true
    }

    private func apply(_ child: DesiredChild) async throws -> KubernetesObject {
        try await self.client.apply(
            child.object,
            as: KubernetesObject.self,
            child.resource,
            name: child.name,
            namespace: child.namespace,
            fieldManager: self.configuration.fieldManager,
            force: true
        )
    }

    /// The relay Deployment as desired. Created (POST) when absent, the one time `spec.replicas` is written: 0 when
    /// KEDA scales it (or the stream is suspended), so no relay starts before a publisher comes; `minReplicas`, at
    /// least 1, without KEDA.
    ///
    /// A create, not an apply: the applies that follow leave `spec.replicas` out, and server-side apply removes a
    /// field its manager stops applying. The create's `Update` entry in `managedFields` keeps it, and KEDA (or the
    /// gateway, through the scale subresource) then owns the count. A create that meets one made meanwhile (409)
    /// applies instead.
    private func ensureDeployment(
        _ children: RelayChildren,
        kedaInstalled: Bool,
        controller: Controller<CachedLiveStream>
    ) async throws -> ObjectSummary? {
        let child = DesiredChild(.deployments, children.deployment)
        let key = ObjectKey(namespace: child.namespace, name: child.name)
        let cached = controller.ownedCache(.deployments, as: ObjectSummary.self)?.get(key)
        if let cached, child.isSatisfied(by: cached) { return cached }
        let pending = controller.expectations.pendingWrite(
            .deployments,
            key,
            cachedVersion: cached?.metadata.resourceVersion
        )
        if pending == .some(child.hash) { return cached }
        let answer: KubernetesObject
        if cached == nil {
            let replicas =
                children.spec.suspend
                ? 0 : kedaInstalled ? children.spec.scaling.minReplicas : max(1, children.spec.scaling.minReplicas)
            var body = children.deployment(replicas: replicas)
            body["metadata"] = child.object["metadata"]
            do {
                answer = try await self.client.create(
                    try JSONValue.decode(KubernetesObject.self, from: body),
                    .deployments,
                    namespace: children.namespace,
                    fieldManager: self.configuration.fieldManager
                )
                self.logger.debug(
                    "relay deployment created",
                    metadata: ["k8s.name": "\(key)", "liverelay.replicas": "\(replicas)"]
                )
            } catch let error as KubernetesError where error.isConflict {
                answer = try await self.apply(child)
            }
        } else {
            answer = try await self.apply(child)
        }
        controller.expectations.expect(.deployments, written: answer, note: child.hash)
        return ObjectSummary(answer)
    }

    /// Deletes the child of `resource` when the cache has it.
    private func deleteIfPresent(
        _ resource: KubernetesResource,
        _ children: RelayChildren,
        controller: Controller<CachedLiveStream>
    ) async throws {
        let key = ObjectKey(namespace: children.namespace, name: children.childName)
        guard let cached = controller.ownedCache(resource, as: ObjectSummary.self)?.get(key),
            !controller.expectations.isBehind(resource, key, cachedVersion: cached.metadata.resourceVersion)
        else { return }
        do {
            try await self.client.delete(resource, name: key.name, namespace: key.namespace)
        } catch let error as KubernetesError where error.isNotFound {}
        controller.expectations.expectDeletion(resource, key)
    }

    /// With KEDA the ScaledObject owns the count, a suspended stream's too (its paused-replicas annotation holds it
    /// at 0): the operator never writes it. Without KEDA: 0 while suspended, else at least 1, through the scale
    /// subresource. Returns the replica count the Deployment asks for now.
    private func ensureReplicas(
        _ children: RelayChildren,
        suspended: Bool,
        kedaInstalled: Bool,
        deployment: ObjectSummary
    ) async throws -> Int {
        let recorded = deployment.replicas.map { Int($0) }
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

    /// Writes `status` if it differs from the ledger's (what the server holds), as a merge patch (absent fields
    /// become `null`, so they are removed), and records it in the ledger. Emits an event for a condition that turned
    /// bad.
    private func writeStatus(
        _ status: LiveStreamStatus,
        ledger: StatusLedger,
        object: CachedLiveStream,
        id: StreamID
    ) async throws {
        let previous = ledger.written
        guard status != previous else { return }
        var body = try JSONValue.encode(status)
        for key in ["phase", "port", "ingestURL", "previewURL"] where body[key] == nil {
            body[key] = .null
        }
        let written = try await self.client.patchStatus(
            KubernetesObject.self,
            .liveStreams,
            name: id.name,
            namespace: id.namespace,
            mergePatch: ["status": body]
        )
        ledger.written = status
        self.controller.value?.expectations.expect(.liveStreams, written: written)
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

/// The streams waiting for their port to be on the gateway Service.
final class PortWaiters: Sendable {
    private let waiting = Mutex<[StreamID: Int]>([:])

    func wait(_ stream: StreamID, port: Int) {
        self.waiting.withLock { $0[stream] = port }
    }

    func forget(_ stream: StreamID) {
        self.waiting.withLock { _ = $0.removeValue(forKey: stream) }
    }

    /// Removes and returns the streams waiting for one of `ports`.
    func satisfied(by ports: some Sequence<Int>) -> [ObjectKey] {
        let listed = Set(ports)
        return self.waiting.withLock { waiting in
            let done = waiting.filter { listed.contains($0.value) }
            for stream in done.keys { waiting[stream] = nil }
            return done.keys.map { ObjectKey(namespace: $0.namespace, name: $0.name) }
        }
    }
}

/// The status the server holds for the stream being reconciled: as the reconcile found it, then as it wrote it. One
/// reconcile's, in one task.
final class StatusLedger {
    var written: LiveStreamStatus?

    init(_ written: LiveStreamStatus?) {
        self.written = written
    }
}

/// The controller a reconciler works for, set once it exists (it is made with the reconciler's closure).
private final class ControllerReference: Sendable {
    private let controller = Mutex<Controller<CachedLiveStream>?>(nil)

    var value: Controller<CachedLiveStream>? {
        get { self.controller.withLock { $0 } }
        set { self.controller.withLock { $0 = newValue } }
    }
}
