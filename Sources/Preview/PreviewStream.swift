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

public import Logging
public import NIOCore
public import RelayAPI
import Synchronization
import TimeSupport

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How the relay packages a stream's preview.
public struct PreviewConfiguration: Hashable, Sendable {
    /// The directory under which each live publish gets its own HLS directory, removed when the publish ends.
    /// `nil` is the system's temporary directory.
    public var directory: String?
    /// The HLS segment duration libavformat aims at (`hls_time`); segments are cut at keyframes, so a segment lasts
    /// at least one keyframe interval.
    public var hlsSegmentSeconds: Double = 1
    /// How many segments the HLS playlist lists (`hls_list_size`); older segments are deleted.
    public var hlsListSize: Int = 6
    /// The media duration a fragmented MP4 fragment gathers before it is sent to browsers (a keyframe always starts
    /// a new one). Shorter brings the preview closer to the publisher; longer costs less CPU (each fragment is one
    /// `moof`, one write to every browser and one wake of its response task).
    public var fragmentDuration: Duration = .milliseconds(250)

    var fragmentMilliseconds: Int64 {
        max(self.fragmentDuration.inMilliseconds, 1)
    }
    /// How many bytes of media may wait for the preview thread; past it the preview drops media up to the next
    /// keyframe (the relay's pushes are never affected).
    public var queueBytes: Int = 8 << 20
    /// How many bytes of fragmented MP4 are kept for browsers that join (the fragments since the latest keyframe).
    public var maxBufferedBytes: Int = 32 << 20
    /// How many fragments a browser may be behind before its live response is ended (it reconnects at the live
    /// edge).
    public var maxClientBacklog: Int = 512

    public init(directory: String? = nil) {
        self.directory = directory
    }
}

/// The preview of one configured stream, across its publish sessions: the current output (init segment, recent
/// fragments, HLS directory) that the HTTP server reads, and the browsers following it live.
///
/// Each live publish runs its own ``PreviewSession``, which packages on its own thread and hands its output here.
public final class PreviewStream: Sendable {
    private struct Output {
        var session: UInt64
        var initSegment: ByteBuffer
        var mimeType: String
        /// The fragments since the latest keyframe.
        var fragments: [ByteBuffer] = []
        var bytes = 0
        var hlsDirectory: String?
    }

    private struct State {
        var session: UInt64 = 0
        var status = PreviewStatus.waiting()
        var output: Output?
        var clients: [UInt64: AsyncStream<ByteBuffer>.Continuation] = [:]
        var nextClient: UInt64 = 0
    }

    public let name: String
    public let configuration: PreviewConfiguration
    private let state = Mutex(State())

    public init(name: String, configuration: PreviewConfiguration = PreviewConfiguration()) {
        self.name = name
        self.configuration = configuration
    }

    /// Starts the preview of a new publish; the previous one, if still running, no longer updates the output.
    public func startSession(logger: Logger) -> PreviewSession {
        let (id, stale) = self.state.withLock { state in
            state.session += 1
            state.status.state = "waiting"
            state.status.error = nil
            state.status.droppedMessages = 0
            let stale = Self.takeOutput(&state)
            return (state.session, stale)
        }
        Self.finish(stale)
        return PreviewSession(stream: self, id: id, logger: logger)
    }

    public var status: PreviewStatus {
        self.state.withLock { state in
            var status = state.status
            status.bufferedBytes = state.output?.bytes ?? 0
            return status
        }
    }

    /// The init segment of the current output, or `nil` when not live.
    public var initSegment: ByteBuffer? { self.state.withLock { $0.output?.initSegment } }

    /// The current output as one live fragmented MP4 stream: the init segment, the fragments from the latest
    /// keyframe, then each new fragment as it is written. It ends when the output ends or restarts (a new
    /// generation), or when the client falls ``PreviewConfiguration/maxClientBacklog`` fragments behind.
    /// `nil` when not live.
    public func subscribe() -> (mimeType: String, generation: Int, body: AsyncStream<ByteBuffer>)? {
        let limit = self.configuration.maxClientBacklog
        return self.state.withLock { state in
            guard let output = state.output else {
                return nil
            }
            // Room for what it starts with (the keyframe interval so far) and then for the backlog limit.
            let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream(
                bufferingPolicy: .bufferingOldest(limit + output.fragments.count + 1)
            )
            continuation.yield(output.initSegment)
            for fragment in output.fragments {
                continuation.yield(fragment)
            }
            let id = state.nextClient
            state.nextClient += 1
            state.clients[id] = continuation
            continuation.onTermination = { [weak self] _ in
                _ = self?.state.withLock { $0.clients.removeValue(forKey: id) }
            }
            return (output.mimeType, state.status.generation, stream)
        }
    }

    /// A file of the current HLS output (`index.m3u8` or a segment), or `nil`.
    public func hlsFile(_ name: String) -> ByteBuffer? {
        guard Self.isHLSFileName(name), let directory = self.state.withLock({ $0.output?.hlsDirectory }) else {
            return nil
        }
        guard let data = FileManager.default.contents(atPath: directory + "/" + name) else {
            return nil
        }
        return ByteBuffer(bytes: data)
    }

    static func isHLSFileName(_ name: String) -> Bool {
        guard name.hasSuffix(".m3u8") || name.hasSuffix(".ts") else {
            return false
        }
        return !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2D || byte == 0x5F || byte == 0x2E
            } && !name.hasPrefix(".")
    }

    // MARK: From the session's thread

    func outputStarted(
        session: UInt64,
        initSegment: ByteBuffer,
        mimeType: String,
        description: PreviewOutputDescription,
        hlsDirectory: String?
    ) {
        let stale = self.state.withLock { state -> [AsyncStream<ByteBuffer>.Continuation] in
            guard state.session == session else {
                return []
            }
            let stale = Self.takeOutput(&state)
            state.output = Output(
                session: session,
                initSegment: initSegment,
                mimeType: mimeType,
                hlsDirectory: hlsDirectory
            )
            state.status.generation += 1
            state.status.state = "live"
            state.status.mimeType = mimeType
            state.status.videoCodec = description.videoCodec
            state.status.audioCodec = description.audioCodec
            state.status.width = description.width
            state.status.height = description.height
            state.status.error = description.error
            return stale
        }
        Self.finish(stale)
    }

    /// Returns whether the fragments since the keyframe outgrew ``PreviewConfiguration/maxBufferedBytes``.
    func fragmentWritten(session: UInt64, _ fragment: ByteBuffer, keyframe: Bool) -> Bool {
        let maxBytes = self.configuration.maxBufferedBytes
        let (clients, overflow) = self.state.withLock {
            state -> ([UInt64: AsyncStream<ByteBuffer>.Continuation], Bool) in
            guard state.session == session, var output = state.output else {
                return ([:], false)
            }
            state.output = nil
            var overflow = false
            if keyframe {
                output.fragments.removeAll(keepingCapacity: true)
                output.bytes = 0
            }
            if output.bytes + fragment.readableBytes > maxBytes {
                // A keyframe interval too long to keep: joining browsers wait for the next keyframe.
                overflow = !output.fragments.isEmpty
                output.fragments.removeAll()
                output.bytes = 0
            } else if keyframe || !output.fragments.isEmpty {
                output.fragments.append(fragment)
                output.bytes += fragment.readableBytes
            }
            state.output = output
            state.status.fragments += 1
            return (state.clients, overflow)
        }
        for (_, client) in clients {
            if case .dropped = client.yield(fragment) {
                // Too far behind to catch up: it reconnects at the live edge.
                client.finish()
            }
        }
        return overflow
    }

    /// Still waiting, for `reason`.
    func waiting(session: UInt64, reason: String) {
        self.state.withLock { state in
            if state.session == session && state.status.state == "waiting" {
                state.status.error = reason
            }
        }
    }

    func hlsSegmentWritten(session: UInt64) {
        self.state.withLock { state in
            if state.session == session {
                state.status.hlsSegments += 1
            }
        }
    }

    func dropped(session: UInt64, messages: UInt64) {
        self.state.withLock { state in
            if state.session == session {
                state.status.droppedMessages += messages
            }
        }
    }

    /// The codec is one the preview cannot package (or the output failed): no output, the reason in the status.
    func failed(session: UInt64, state newState: String, error: String, videoCodec: String?) {
        let stale = self.state.withLock { state -> [AsyncStream<ByteBuffer>.Continuation] in
            guard state.session == session else {
                return []
            }
            state.status.state = newState
            state.status.error = error
            if let videoCodec {
                state.status.videoCodec = videoCodec
            }
            state.status.mimeType = nil
            return Self.takeOutput(&state)
        }
        Self.finish(stale)
    }

    /// The output stopped (the codec changed, the timestamps jumped back); a new one starts at the next keyframe.
    func outputEnded(session: UInt64) {
        let stale = self.state.withLock { state -> [AsyncStream<ByteBuffer>.Continuation] in
            guard state.session == session, state.output?.session == session else {
                return []
            }
            return Self.takeOutput(&state)
        }
        Self.finish(stale)
    }

    /// The publish ended.
    func sessionEnded(session: UInt64) {
        let stale = self.state.withLock { state -> [AsyncStream<ByteBuffer>.Continuation] in
            guard state.session == session else {
                return []
            }
            if state.status.state == "live" || state.status.state == "waiting" {
                state.status.state = "ended"
            }
            return Self.takeOutput(&state)
        }
        Self.finish(stale)
    }

    private static func takeOutput(_ state: inout State) -> [AsyncStream<ByteBuffer>.Continuation] {
        state.output = nil
        let clients = Array(state.clients.values)
        state.clients.removeAll()
        return clients
    }

    private static func finish(_ clients: [AsyncStream<ByteBuffer>.Continuation]) {
        for client in clients {
            client.finish()
        }
    }
}

/// What an output carries, for the status.
struct PreviewOutputDescription: Sendable {
    var videoCodec: String?
    var audioCodec: String?
    var width: Int?
    var height: Int?
    /// Set when browsers are unlikely to play it (HEVC), though it is packaged.
    var error: String?
}
