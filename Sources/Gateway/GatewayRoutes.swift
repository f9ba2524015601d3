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

public import LiveStreamModel
import Synchronization

/// Where the gateway sends one stream's connections, and on what terms.
///
/// A route source (the Kubernetes watch, local mode) builds these from `LiveStream`s and their relays' endpoints and
/// hands the whole set to ``GatewayRoutes/update(_:)``.
public struct GatewayRoute: Hashable, Sendable {
    /// A relay endpoint that is ready to take connections.
    public struct Upstream: Hashable, Sendable, CustomStringConvertible {
        public var host: String
        public var port: Int
        /// Whether the relay reads a PROXY protocol v1 header (`liverelay relay --proxy-protocol-from`): the
        /// gateway then sends one before the client's bytes, so the relay knows the client's address, not the
        /// gateway's. A relay that does not expect it would fail the RTMP handshake.
        public var sendsProxyHeader: Bool

        public init(host: String, port: Int, sendsProxyHeader: Bool = false) {
            self.host = host
            self.port = port
            self.sendsProxyHeader = sendsProxyHeader
        }

        public var description: String { "\(self.host):\(self.port)" }
    }

    /// What an encoder names in `rtmp://GATEWAY:SHARED-PORT/APP/KEY` to reach this stream on the gateway's shared
    /// ingest port (``GatewayConfiguration/sharedIngestPort``): the stream's application and its stream key.
    ///
    /// The key is a secret: the description shows the application alone, so a route can be logged or printed.
    public struct IngestKey: Hashable, Sendable, CustomStringConvertible {
        public var app: String
        private let key: String

        public init(app: String, key: String) {
            self.app = app
            self.key = key
        }

        public var description: String { "\(self.app)/<key>" }
    }

    public var stream: StreamID
    /// The port the gateway listens on for this stream; one stream per port.
    public var listenPort: Int
    /// The relay to proxy to, or `nil` while the relay has no ready endpoint (scaled to zero, or starting): the
    /// gateway then holds new connections until it has one.
    public var upstream: Upstream?
    /// The source addresses allowed to connect. Empty allows nobody: a route that forgot its ranges fails closed.
    public var allowedSourceRanges: [IPRange]
    /// A suspended stream ("go offline") refuses every connection.
    public var suspended: Bool
    /// How an encoder reaches the stream on the shared ingest port, or `nil` if it cannot (a stream authorized by
    /// webhook has no key the gateway could know). Its own port works either way.
    public var ingestKey: IngestKey?
    /// The stream's RTMP application (`spec.ingest.app`): what a WHIP session publishes to on the relay.
    public var app: String

    public init(
        stream: StreamID,
        listenPort: Int,
        upstream: Upstream? = nil,
        allowedSourceRanges: [IPRange],
        suspended: Bool = false,
        ingestKey: IngestKey? = nil,
        app: String? = nil
    ) {
        self.stream = stream
        self.listenPort = listenPort
        self.upstream = upstream
        self.allowedSourceRanges = allowedSourceRanges
        self.suspended = suspended
        self.ingestKey = ingestKey
        self.app = app ?? ingestKey?.app ?? "live"
    }
}

/// The routes the gateway serves: written by a route source, read by the gateway on every connection.
///
/// Thread-safe. A connection held for a stream waits on ``upstream(for:)``, which resumes on the ``update(_:)`` that
/// gives the stream an upstream: an event, not a poll, so a held client is proxied the moment the relay is ready.
public final class GatewayRoutes: Sendable {
    /// What a waiter learns: a ready route, or that there will be none (route gone or suspended).
    typealias Waiter = @Sendable (GatewayRoute?) -> Void

    private struct State {
        var byPort: [Int: GatewayRoute] = [:]
        var byStream: [StreamID: GatewayRoute] = [:]
        var byIngestKey: [GatewayRoute.IngestKey: StreamID] = [:]
        var nextID: UInt64 = 0
        var waiters: [UInt64: (stream: StreamID, resume: Waiter)] = [:]
        // Ids handed out but not yet waiting; a cancellation that comes first removes its id here, so the wait that
        // follows finishes at once. Resumed ids are in neither set, so nothing accumulates.
        var pending: Set<UInt64> = []
        var subscribers: [UInt64: AsyncStream<[GatewayRoute]>.Continuation] = [:]

        mutating func index(_ routes: [GatewayRoute]) {
            self.byPort = [:]
            self.byStream = [:]
            self.byIngestKey = [:]
            var ambiguous: Set<GatewayRoute.IngestKey> = []
            for route in routes {
                self.byPort[route.listenPort] = route
                self.byStream[route.stream] = route
                if let key = route.ingestKey, self.byIngestKey.updateValue(route.stream, forKey: key) != nil {
                    ambiguous.insert(key)
                }
            }
            // Two streams with one application and key: neither is reachable by it, rather than a publish going to
            // whichever came last (each still has its own port).
            for key in ambiguous {
                self.byIngestKey[key] = nil
            }
        }
    }
    private let state: Mutex<State>
    /// Held while routes are handed to subscribers, so that they see updates in order; never taken under `state`.
    private let delivery = Mutex(())

    public init(_ routes: [GatewayRoute] = []) {
        var state = State()
        state.index(routes)
        self.state = Mutex(state)
    }

    /// Replaces every route. A port or stream listed twice keeps the last entry.
    public func update(_ routes: [GatewayRoute]) {
        var resumed: [(Waiter, GatewayRoute?)] = []
        self.delivery.withLock { _ in
            let (subscribers, current) = self.replace(routes, resuming: &resumed)
            // Outside the state lock: a yield resumes the reader's task under that task's status lock, and a
            // cancelled reader's termination handler takes the state lock under the same status lock.
            for subscriber in subscribers {
                subscriber.yield(current)
            }
        }
        // Outside the lock: a waiter may hop to an event loop or take other locks.
        for (resume, route) in resumed {
            resume(route)
        }
    }

    private func replace(
        _ routes: [GatewayRoute],
        resuming resumed: inout [(Waiter, GatewayRoute?)]
    ) -> ([AsyncStream<[GatewayRoute]>.Continuation], [GatewayRoute]) {
        self.state.withLock { state in
            state.index(routes)
            for (id, waiter) in state.waiters {
                let route = state.byStream[waiter.stream]
                if route == nil || route?.suspended == true {
                    resumed.append((waiter.resume, nil))
                    state.waiters[id] = nil
                } else if route?.upstream != nil {
                    resumed.append((waiter.resume, route))
                    state.waiters[id] = nil
                }
            }
            return (Array(state.subscribers.values), Array(state.byPort.values))
        }
    }

    /// Every route, in no particular order.
    public var routes: [GatewayRoute] {
        self.state.withLock { Array($0.byPort.values) }
    }

    /// The route listening on `port`, if any.
    public func route(forPort port: Int) -> GatewayRoute? {
        self.state.withLock { $0.byPort[port] }
    }

    /// The route an encoder names on the shared ingest port, if any.
    public func route(forIngest key: GatewayRoute.IngestKey) -> GatewayRoute? {
        self.state.withLock { state in state.byIngestKey[key].flatMap { state.byStream[$0] } }
    }

    /// The route of `stream`, if any.
    public func route(for stream: StreamID) -> GatewayRoute? {
        self.state.withLock { $0.byStream[stream] }
    }

    /// Waits until `stream`'s route has an upstream and returns it; `nil` when the route is removed or suspended
    /// first, or when the task is cancelled.
    public func upstream(for stream: StreamID) async -> GatewayRoute? {
        let id = self.allocateWait()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<GatewayRoute?, Never>) in
                self.wait(for: stream, id: id) { continuation.resume(returning: $0) }
            }
        } onCancel: {
            self.cancelWait(id)?(nil)
        }
    }

    /// Calls `resume` once: at once if the route is ready or gone, otherwise from the ``update(_:)`` that decides.
    /// Returns the id to pass to ``cancelWait(_:)``.
    @discardableResult
    func wait(for stream: StreamID, resume: @escaping Waiter) -> UInt64 {
        let id = self.allocateWait()
        self.wait(for: stream, id: id, resume: resume)
        return id
    }

    private func allocateWait() -> UInt64 {
        self.state.withLock { state in
            state.nextID += 1
            state.pending.insert(state.nextID)
            return state.nextID
        }
    }

    private func wait(for stream: StreamID, id: UInt64, resume: @escaping Waiter) {
        enum Now {
            case waiting
            case resume(GatewayRoute?)
        }
        let now: Now = self.state.withLock { state in
            guard state.pending.remove(id) != nil else {
                // Cancelled before it started.
                return .resume(nil)
            }
            guard let route = state.byStream[stream], !route.suspended else {
                return .resume(nil)
            }
            if route.upstream != nil {
                return .resume(route)
            }
            state.waiters[id] = (stream, resume)
            return .waiting
        }
        if case .resume(let route) = now {
            resume(route)
        }
    }

    /// Stops a wait; returns its callback if it had not run yet, so the caller can finish it.
    @discardableResult
    func cancelWait(_ id: UInt64) -> Waiter? {
        self.state.withLock { state in
            guard let waiter = state.waiters.removeValue(forKey: id) else {
                state.pending.remove(id)
                return nil
            }
            return waiter.resume
        }
    }

    /// The current routes, then the routes after every ``update(_:)``; when updates come faster than the reader,
    /// only the newest set is kept.
    func changes() -> AsyncStream<[GatewayRoute]> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: [GatewayRoute].self,
            bufferingPolicy: .bufferingNewest(1)
        )
        let id = self.delivery.withLock { _ in
            let (id, current) = self.state.withLock { state in
                state.nextID += 1
                state.subscribers[state.nextID] = continuation
                return (state.nextID, Array(state.byPort.values))
            }
            continuation.yield(current)
            return id
        }
        continuation.onTermination = { _ in
            _ = self.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }
}
