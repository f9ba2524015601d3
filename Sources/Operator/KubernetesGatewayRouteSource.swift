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
import KubernetesController
import LiveStreamModel
public import Logging
public import ServiceLifecycle
import Synchronization

/// Feeds the gateway its routes from the cluster, read-only: the LiveStreams (their `status.port`,
/// `spec.ingest.allowedSourceRanges` and `spec.suspend`) and the EndpointSlices of their relay Services (whether a
/// relay is ready).
///
/// Every change recomputes the whole route table and hands it to ``GatewayRoutes/update(_:)`` when it differs, so
/// a relay that becomes ready releases the connections the gateway holds for it.
public final class KubernetesGatewayRouteSource: Service, Sendable {
    private let client: KubernetesClient
    private let namespace: String?
    private let routes: GatewayRoutes
    private let relayPort: Int
    private let sendsProxyHeader: Bool
    private let ingestKeyBook: (namespace: String, name: String)?
    private let logger: Logger
    private let options: ListWatchOptions
    private let state = Mutex<(published: [GatewayRoute]?, loggedInvalid: Set<String>)>((nil, []))

    /// Watches `namespace`, or every namespace when `nil`. With `sendsProxyHeader`, every connection to a relay
    /// starts with a PROXY protocol header naming the encoder; the relays must expect it from the gateway's pods
    /// (``OperatorConfiguration/relayProxyProtocolFrom``). With `ingestKeyBook`, the Secret the operator keeps the
    /// streams' keys in (``OperatorConfiguration/ingestKeyBookSecret``), each route carries its stream's key for the
    /// gateway's shared ingest port; that Secret is the only one read.
    public convenience init(
        client: KubernetesClient,
        namespace: String?,
        routes: GatewayRoutes,
        relayPort: Int = 1935,
        sendsProxyHeader: Bool = false,
        ingestKeyBook: (namespace: String, name: String)? = nil,
        logger: Logger
    ) {
        self.init(
            client: client,
            namespace: namespace,
            routes: routes,
            relayPort: relayPort,
            sendsProxyHeader: sendsProxyHeader,
            ingestKeyBook: ingestKeyBook,
            logger: logger,
            options: ListWatchOptions()
        )
    }

    /// As the public initializer, with list-watch options (tests use short timeouts and backoff).
    init(
        client: KubernetesClient,
        namespace: String?,
        routes: GatewayRoutes,
        relayPort: Int,
        sendsProxyHeader: Bool = false,
        ingestKeyBook: (namespace: String, name: String)? = nil,
        logger: Logger,
        options: ListWatchOptions
    ) {
        self.client = client
        self.namespace = namespace
        self.routes = routes
        self.relayPort = relayPort
        self.sendsProxyHeader = sendsProxyHeader
        self.ingestKeyBook = ingestKeyBook
        self.logger = logger
        self.options = options
    }

    public func run() async throws {
        let streams = Reflector<KubernetesObject>(
            client: self.client,
            resource: .liveStreams,
            namespace: self.namespace,
            options: self.options
        )
        var sliceOptions = self.options
        sliceOptions.labelSelector = "kubernetes.io/service-name"
        let slices = Reflector<KubernetesObject>(
            client: self.client,
            resource: .endpointSlices,
            namespace: self.namespace,
            options: sliceOptions
        )
        // The one Secret of the key book, by name: what RBAC `resourceNames` allows a list and watch of.
        let keys = self.ingestKeyBook.map { book in
            var keyOptions = self.options
            keyOptions.fieldSelector = "metadata.name=\(book.name)"
            return Reflector<KubernetesObject>(
                client: self.client,
                resource: .secrets,
                namespace: book.namespace,
                options: keyOptions
            )
        }
        let publish = { @Sendable in self.publish(streams: streams, slices: slices, keys: keys) }
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask { try await streams.run { _ in publish() } }
                    group.addTask { try await slices.run { _ in publish() } }
                    if let keys {
                        group.addTask { try await keys.run { _ in publish() } }
                    }
                }
            }
        } catch is CancellationError {
            // Graceful shutdown (or cancellation) ends the watches; that is a normal end.
        }
    }

    /// Recomputes the routes and publishes them if they changed. Serialized by the lock, so a computation from an
    /// older view never overwrites one from a newer view.
    private func publish(
        streams: Reflector<KubernetesObject>,
        slices: Reflector<KubernetesObject>,
        keys: Reflector<KubernetesObject>?
    ) {
        self.state.withLock { state in
            let (routes, invalid) = self.compute(streams: streams, slices: slices, keys: keys)
            for (stream, text) in invalid where state.loggedInvalid.insert("\(stream)|\(text)").inserted {
                self.logger.warning(
                    "invalid allowed source range ignored",
                    metadata: ["liverelay.stream": "\(stream)", "liverelay.range": "\(text)"]
                )
            }
            guard state.published != routes else { return }
            state.published = routes
            self.routes.update(routes)
        }
    }

    private func compute(
        streams: Reflector<KubernetesObject>,
        slices: Reflector<KubernetesObject>,
        keys: Reflector<KubernetesObject>?
    ) -> (routes: [GatewayRoute], invalid: [(StreamID, String)]) {
        var ingestKeys: [StreamID: GatewayRoute.IngestKey] = [:]
        for secret in keys?.list() ?? [] where secret.metadata.name == self.ingestKeyBook?.name {
            guard case .object(let entries) = secret["data"] ?? [:] else { continue }
            for (entry, value) in entries {
                guard let stream = IngestKeyBook.stream(forEntry: entry),
                    let (app, key) = value.stringValue.flatMap(IngestKeyBook.decode)
                else { continue }
                ingestKeys[stream] = GatewayRoute.IngestKey(app: app, key: key)
            }
        }
        // Services with at least one ready endpoint, as namespace/name.
        var ready = Set<String>()
        for slice in slices.list() {
            guard let service = slice.metadata.labels?["kubernetes.io/service-name"],
                case .array(let endpoints) = slice["endpoints"] ?? []
            else { continue }
            // `ready` absent means ready, as the EndpointSlice API says.
            if endpoints.contains(where: { $0["conditions"]?["ready"]?.boolValue ?? true }) {
                ready.insert("\(slice.metadata.namespace ?? "")/\(service)")
            }
        }
        var routes: [GatewayRoute] = []
        var invalid: [(StreamID, String)] = []
        for object in streams.list() where object.metadata.deletionTimestamp == nil {
            guard let port = object["status"]?["port"]?.intValue, let name = object.metadata.name else { continue }
            let namespace = object.metadata.namespace ?? ""
            let stream = StreamID(namespace: namespace, name: name)
            let spec = object["spec"]
            var texts = LiveStreamSpec.Ingest.defaultAllowedSourceRanges
            if case .array(let values) = spec?["ingest"]?["allowedSourceRanges"] {
                texts = values.compactMap(\.stringValue)
            }
            var ranges: [IPRange] = []
            for text in texts {
                if let range = try? IPRange(text) {
                    ranges.append(range)
                } else {
                    invalid.append((stream, text))
                }
            }
            let service = RelayChildren.childName(name)
            routes.append(
                GatewayRoute(
                    stream: stream,
                    listenPort: Int(port),
                    upstream: ready.contains("\(namespace)/\(service)")
                        ? GatewayRoute.Upstream(
                            host: "\(service).\(namespace).svc",
                            port: self.relayPort,
                            sendsProxyHeader: self.sendsProxyHeader
                        ) : nil,
                    allowedSourceRanges: ranges,
                    suspended: spec?["suspend"]?.boolValue ?? false,
                    ingestKey: ingestKeys[stream],
                    app: spec?["ingest"]?["app"]?.stringValue
                )
            )
        }
        routes.sort { $0.listenPort < $1.listenPort }
        return (routes, invalid)
    }
}
