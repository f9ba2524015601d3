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
public import LiveStreamModel

/// How local mode runs: where the streams file is, which ports it hands out, how relays are started.
public struct LocalConfiguration: Sendable {
    /// The YAML file of `LiveStream` and `Secret` documents; reloaded when it changes.
    public var streamsFile: String
    /// The ports streams get (as the operator's range in a cluster).
    public var portRange: PortRange
    /// The host that ingest URLs name: what an encoder on this machine or the network connects to.
    public var advertisedHost: String
    /// The gateway's listeners and limits; its `host` is the address the stream ports bind.
    public var gateway: GatewayConfiguration
    /// The `liverelay` executable started as `liverelay relay` for each stream.
    public var relayExecutable: String
    /// Extra arguments for every relay (`--log-level debug`, `--ca-file ...`).
    public var relayArguments: [String]
    /// Where generated stream keys are kept (so a key is generated and printed once, not at every start) and where
    /// each relay's configuration is written. Created with mode 0700.
    public var stateDirectory: String
    /// How often the file is checked for changes and idle relays are looked for.
    public var pollInterval: Duration
    /// How long a relay may take to stop (drain) before it is killed.
    public var relayStopTimeout: Duration
    /// The longest wait before restarting a relay that keeps crashing.
    public var maxRestartDelay: Duration

    public init(
        streamsFile: String,
        portRange: PortRange = .operatorDefault,
        advertisedHost: String = "127.0.0.1",
        gateway: GatewayConfiguration = GatewayConfiguration(),
        relayExecutable: String,
        relayArguments: [String] = [],
        stateDirectory: String,
        pollInterval: Duration = .seconds(1),
        relayStopTimeout: Duration = .seconds(10),
        maxRestartDelay: Duration = .seconds(10)
    ) {
        self.streamsFile = streamsFile
        self.portRange = portRange
        self.advertisedHost = advertisedHost
        self.gateway = gateway
        self.relayExecutable = relayExecutable
        self.relayArguments = relayArguments
        self.stateDirectory = stateDirectory
        self.pollInterval = pollInterval
        self.relayStopTimeout = relayStopTimeout
        self.maxRestartDelay = maxRestartDelay
    }
}

/// What happens in local mode, for the console and for tests. Never carries a key.
public enum LocalEvent: Sendable, Hashable, CustomStringConvertible {
    /// A stream from the file is served: its ingest URL (without key) and where its key is.
    case streamAdded(StreamID, ingestURL: String, keySource: String)
    /// A stream changed in the file; `restartsRelay` when its relay must restart to apply it.
    case streamChanged(StreamID, ingestURL: String, restartsRelay: Bool)
    case streamRemoved(StreamID)
    /// A stream that cannot run, and why (a missing Secret, a port that is taken).
    case streamFailed(StreamID, reason: String)
    /// A stream key Secret was missing: a key was generated and stored in `path` (mode 0600).
    case keyGenerated(StreamID, secret: String, path: String)
    case phaseChanged(StreamID, LiveStreamStatus.Phase)
    case relayStarting(StreamID, pid: Int32)
    case relayReady(StreamID, pid: Int32, rtmpPort: Int, httpPort: Int)
    /// The stream's live preview has this address on local mode's HTTP listener for as long as local mode runs,
    /// whether its relay runs or not (``LocalRuntime/addPreviewRoutes(to:)``).
    case previewAvailable(StreamID, url: String)
    /// The stream takes WebRTC publishers (WHIP, RFC 9725) at this address on local mode's HTTP listener, with its
    /// stream key as Bearer token.
    case whipAvailable(StreamID, url: String)
    /// A relay stopped because it was asked to (`idle`, `suspended`, `removed`, `changed`, `shutdown`).
    case relayStopped(StreamID, reason: String)
    /// A relay ended on its own; `restartIn` is when it comes back, `nil` when nobody needs it now.
    case relayCrashed(StreamID, exit: String, restartIn: Duration?)
    /// A target of the stream's relay changed state, as the relay reports it: `Pushing`, `BackingOff` with the error
    /// (once, not at every retry) or `Disabled`. `Connecting`, `Idle` and `Stopped` are not reported.
    case targetChanged(StreamID, LiveStreamStatus.TargetStatus)
    /// The gateway listens on these ports now (after every change).
    case listening(ports: [Int])
    /// The shared ingest port listens: every stream with a key is reachable at `url`, `…/APP/KEY`.
    case sharedIngest(url: String)
    /// The file changed but could not be used; the streams as they were keep running.
    case reloadFailed(String)
    case reloaded(streams: Int)

    public var description: String {
        switch self {
        case .streamAdded(let id, let url, let keySource):
            "\(id): ingest \(url) (stream key: \(keySource))"
        case .streamChanged(let id, let url, let restarts):
            "\(id): changed\(restarts ? ", relay restarts" : ""); ingest \(url)"
        case .streamRemoved(let id):
            "\(id): removed"
        case .streamFailed(let id, let reason):
            "\(id): cannot run: \(reason)"
        case .keyGenerated(let id, let secret, let path):
            "\(id): no Secret \(secret) in the file: generated a stream key, stored in \(path)"
        case .phaseChanged(let id, let phase):
            "\(id): \(phase.rawValue)"
        case .relayStarting(let id, let pid):
            "\(id): relay starting (pid \(pid))"
        case .relayReady(let id, let pid, let rtmpPort, let httpPort):
            "\(id): relay ready (pid \(pid), RTMP on 127.0.0.1:\(rtmpPort), HTTP on 127.0.0.1:\(httpPort))"
        case .previewAvailable(let id, let url):
            "\(id): live preview \(url)"
        case .whipAvailable(let id, let url):
            "\(id): WHIP (WebRTC) ingest \(url) (Bearer token: the stream key)"
        case .relayStopped(let id, let reason):
            "\(id): relay stopped (\(reason))"
        case .relayCrashed(let id, let exit, let restartIn):
            "\(id): relay \(exit)" + (restartIn.map { "; restarting in \($0)" } ?? "; restarts on the next connection")
        case .targetChanged(let id, let target):
            "\(id): target \(target.name) \(Self.words(target.state))"
                + (target.state == "Pushing" ? "" : target.lastError.map { ": \($0)" } ?? "")
        case .listening(let ports):
            ports.isEmpty
                ? "gateway listens on no port" : "gateway listens on \(ports.map(String.init).joined(separator: ", "))"
        case .sharedIngest(let url):
            "every stream with a key is also at \(url)"
        case .reloadFailed(let reason):
            "streams file not reloaded, the streams keep running as they were: \(reason)"
        case .reloaded(let count):
            "streams file reloaded: \(count) stream\(count == 1 ? "" : "s")"
        }
    }

    /// `BackingOff` as `backing off`.
    private static func words(_ state: String) -> String {
        state.reduce(into: "") { text, character in
            if character.isUppercase, !text.isEmpty {
                text.append(" ")
            }
            text.append(contentsOf: character.lowercased())
        }
    }
}
