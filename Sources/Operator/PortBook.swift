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

import LiveStreamModel
import Synchronization

/// The operator's one ``PortAllocator``, behind a lock, so that any number of workers allocate atomically.
///
/// It is rebuilt from the ports every LiveStream recorded in its status at the start of each leadership term (the
/// first reconcile of a term sees the reflector's complete first list), so a restart, even one in the middle of a
/// reconcile, never hands out a port twice: a port is recorded in status before any child of the stream exists.
final class PortBook: Sendable {
    /// What a reconcile learns about its stream's port.
    enum Outcome: Sendable {
        /// The stream holds `port`; `displaced` says which recorded port it lost on the way (an older stream kept
        /// it, or the range no longer holds it).
        case allocated(port: Int, displaced: PortDisplacement?)
        /// No port could be given; the stream may still hold an earlier one.
        case failed(PortAllocationError, held: Int?)
    }

    private struct State {
        var allocator: PortAllocator
        var term: ObjectIdentifier?
        var displaced: [StreamID: PortDisplacement] = [:]
    }

    let range: PortRange
    private let state: Mutex<State>

    init(range: PortRange) {
        self.range = range
        self.state = Mutex(State(allocator: PortAllocator(range: range)))
    }

    /// Rebuilds the allocator from `claims` (every stream's recorded port) unless it was already rebuilt for `term`.
    /// Returns the displacements found, which the displaced streams' reconciles report.
    @discardableResult
    func rebuild(term: ObjectIdentifier, claims: () -> [(PortClaimant, Int)]) -> [PortDisplacement] {
        self.state.withLock { state in
            guard state.term != term else { return [] }
            var allocator = PortAllocator(range: self.range)
            var displaced: [StreamID: PortDisplacement] = [:]
            // Oldest first: a displacement then only ever hits the newer claimant.
            let sorted = claims().sorted { $0.0.precedes($1.0) }
            for (claimant, port) in sorted {
                if let displacement = allocator.record(claimant, port: port) {
                    displaced[displacement.stream] = displacement
                }
            }
            state.allocator = allocator
            state.displaced = displaced
            state.term = term
            return Array(displaced.values)
        }
    }

    /// Whether the allocator holds the recorded ports of `term`: until then it knows none of them, and what it says
    /// must not be written anywhere (the gateway Service would lose every port).
    func isRebuilt(for term: ObjectIdentifier) -> Bool {
        self.state.withLock { $0.term == term }
    }

    /// The port of `claimant`: the one it holds; else `requested` (its fixed `spec.ingest.port`, 0 for any); else,
    /// for any port, the one it recorded earlier (`recorded`) if that is still free, else the next free one.
    func allocate(for claimant: PortClaimant, requested: Int, recorded: Int?) -> Outcome {
        self.state.withLock { state in
            let displaced = state.displaced.removeValue(forKey: claimant.stream)
            if let held = state.allocator.port(of: claimant.stream), requested == 0 || requested == held {
                return .allocated(port: held, displaced: displaced)
            }
            do throws(PortAllocationError) {
                if requested == 0, displaced == nil, let recorded, self.range.contains(recorded),
                    state.allocator.owner(of: recorded) == nil
                {
                    return .allocated(
                        port: try state.allocator.allocate(for: claimant, requested: recorded),
                        displaced: nil
                    )
                }
                return .allocated(
                    port: try state.allocator.allocate(for: claimant, requested: requested),
                    displaced: displaced
                )
            } catch {
                return .failed(error, held: state.allocator.port(of: claimant.stream))
            }
        }
    }

    /// Frees the port of `stream`; returns it.
    @discardableResult
    func release(_ stream: StreamID) -> Int? {
        self.state.withLock {
            $0.displaced[stream] = nil
            return $0.allocator.release(stream)
        }
    }

    func port(of stream: StreamID) -> Int? {
        self.state.withLock { $0.allocator.port(of: stream) }
    }

    /// Every allocated port with its stream, by port.
    var allocations: [(port: Int, stream: StreamID)] {
        self.state.withLock { state in
            (self.range.lowerBound...self.range.upperBound).compactMap { port in
                state.allocator.owner(of: port).map { (port, $0) }
            }
        }
    }

    var allocatedCount: Int { self.state.withLock { $0.allocator.allocatedCount } }
}
