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
import LiveStreamModel
import Logging
import Metrics
import NIOCore
import Prometheus
import Relay
import ResidentMemory
import ServiceLifecycle
import Synchronization
import TimeSupport
import UnixSignals

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The Relay module's defaults of every flag: the help shows them, and there is one place to change them.
private let defaults = RelayCommandLine()

struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Accept one publisher and re-stream it to every target.",
        discussion: """
            A publisher (OBS, ffmpeg) publishes to rtmp://HOST:PORT/APP/KEY. Every target receives the stream \
            unchanged, from a keyframe, with its metadata; a target that fails reconnects with backoff while the \
            publisher is live. Keys are read from files or the environment and never printed.

            Example:
              liverelay relay --listen 0.0.0.0:1935 --app live --stream-key-file /secrets/key \\
                --target youtube=rtmp://a.rtmp.youtube.com/live2 --target-key-file youtube=/secrets/yt
            """
    )

    @Option(help: "Address to listen on for publishers, HOST:PORT (port 0 picks a free one).")
    var listen: String = defaults.listen

    @Option(help: "The application publishers connect to: rtmp://HOST:PORT/<app>/<key>.")
    var app: String?

    @Option(help: "File holding the stream key publishers must use.")
    var streamKeyFile: String?

    @Option(help: "Environment variable holding the stream key publishers must use.")
    var streamKeyEnv: String?

    @Option(name: .customLong("target"), help: "A push target, NAME=rtmp[s]://host[:port]/app[/stream]. Repeatable.")
    var targets: [String] = []

    @Option(name: .customLong("target-key-file"), help: "NAME=FILE: the stream key of target NAME. Repeatable.")
    var targetKeyFiles: [String] = []

    @Option(name: .customLong("target-key-env"), help: "NAME=VARIABLE: the stream key of target NAME. Repeatable.")
    var targetKeyEnvironment: [String] = []

    @Option(help: "A file of LiveStreams and their Secrets, as YAML or JSON (the operator's); flags override it.")
    var config: String?

    @Option(help: "Where Secrets named in --config are mounted, as <dir>/<secret>/<key>.")
    var secretsDir: String = defaults.secretsDirectory

    @Option(help: "PEM file of extra certificate authorities to trust for rtmps:// targets.")
    var caFile: String?

    @OptionGroup(title: "rtmps://")
    var tls: IngestTLSOptions

    @Option(help: "First reconnect delay for a failed target, in seconds (doubles up to --reconnect-max).")
    var reconnectMin: Double = defaults.reconnectInitial.inSeconds

    @Option(help: "Longest reconnect delay for a failed target, in seconds.")
    var reconnectMax: Double = defaults.reconnectMaximum.inSeconds

    @Option(help: "Bytes a target may fall behind before it restarts at the next keyframe.")
    var targetQueueBytes: Int = defaults.targetQueueBytes

    @Option(help: "HTTP address for /metrics, /healthz, /readyz and the stream API, HOST:PORT, or 'none'.")
    var httpListen: String = "0.0.0.0:8080"

    @Option(
        help: """
            Comma-separated CIDR ranges whose clients may enable and disable targets over HTTP; the read-only \
            endpoints answer everyone. Loopback by default, which `kubectl port-forward` reaches.
            """
    )
    var controlFrom: String = RelayHTTPContext.loopbackRanges.joined(separator: ",")

    @Option(
        help: """
            Comma-separated CIDR ranges of proxies (the gateway) whose PROXY protocol v1 header is believed: the \
            client it names is the publisher's address in logs, stats and the webhook. None by default.
            """
    )
    var proxyProtocolFrom: String = defaults.proxyProtocolFrom

    @Option(help: "Authorize publishers with this webhook (POST, 2xx admits) instead of a key.")
    var webhook: String?

    @Option(help: "Seconds the webhook has to answer; slower means refused.")
    var webhookTimeout: Double = defaults.webhookTimeout.inSeconds

    @Option(help: "Warn when the incoming keyframe interval exceeds this many seconds (AWS IVS requires 2).")
    var maxKeyframeInterval: Double?

    @Flag(inversion: .prefixedNo, help: "Let a new publisher with a valid key take over a stream that has one.")
    var takeover = defaults.publisherTakeover

    @Option(help: "Seconds of silence after which a publisher is dropped.")
    var publisherIdleTimeout: Double = defaults.publisherIdleTimeout.inSeconds

    @Option(help: "Connections served at once, publishers and clients not yet publishing; more are refused and logged.")
    var maxConnections: Int = defaults.maxConnections

    @Option(help: "Seconds a live publisher may go on after SIGTERM before the relay ends its stream.")
    var shutdownGrace: Double = defaults.shutdownGrace.inSeconds

    @Option(help: "Seconds of media a target may fall behind before its video is dropped to the next keyframe.")
    var targetQueueSeconds: Double = defaults.targetQueueDuration.inSeconds

    @Option(help: "Seconds a target may stay behind before it is disconnected and restarted.")
    var targetMaxBehind: Double = defaults.targetMaxBehind.inSeconds

    @Option(help: "Kernel send buffer of each target connection, in bytes (0: the system's autotuning).")
    var targetSendBuffer: Int = defaults.targetSendBufferBytes

    @Option(
        help: ArgumentHelp(
            "When each stream keeps its current GOP, so that a target that joins or rejoins starts at once: always, "
                + "joining (while a target is connecting or backing off), or off. It costs about one GOP of memory.",
            valueName: "policy"
        )
    )
    var gopCache: String = defaults.gopCache

    @Option(help: "Most bytes of one stream's GOP cache; a larger GOP is not cached.")
    var gopCacheBytes: Int = defaults.gopCacheBytes

    @Option(
        help: ArgumentHelp(
            "Event loops (threads) serving the relay's connections. By default one per stream, at most one per core.",
            valueName: "count"
        )
    )
    var eventLoops: Int?

    @Option(help: "Largest read from a publisher's connection, in bytes (the receive buffer adapts up to it).")
    var ingestReadBytes: Int = defaults.ingestReadBytes

    @Flag(
        inversion: .prefixedNo,
        help: ArgumentHelp(
            "Copy single-chunk ingest payloads instead of slicing them (benchmarks).",
            visibility: .hidden
        )
    )
    var ingestCopyPayloads = defaults.ingestCopiesPayloads

    @Flag(
        help: ArgumentHelp(
            "Print one JSON line to standard output when the RTMP and HTTP listeners are up, with their ports.",
            discussion: "For a supervisor (local mode) that starts the relay on port 0 and must learn where it listens."
        )
    )
    var announce = false

    @Flag(
        inversion: .prefixedNo,
        help: ArgumentHelp(
            "Once listening, unmap the code and read-only data that start-up ran (they come back if run again).",
            visibility: .hidden
        )
    )
    var releaseStartupPages = true

    @Option(help: ArgumentHelp("Exit when this process (the supervisor) is gone.", visibility: .hidden))
    var parentPid: Int32?

    @OptionGroup(title: "Logging")
    var log: LogOptions

    func validate() throws {
        do {
            try self.commandLine.validate()
        } catch {
            throw ValidationError(error.message)
        }
        _ = try Self.ranges(self.controlFrom, flag: "--control-from")
    }

    /// The flags as the Relay module takes them; it decides what they mean (``RelayCommandLine``).
    var commandLine: RelayCommandLine {
        var line = RelayCommandLine()
        line.listen = self.listen
        line.app = self.app
        line.streamKeyFile = self.streamKeyFile
        line.streamKeyEnvironment = self.streamKeyEnv
        line.webhook = self.webhook
        line.webhookTimeout = .seconds(self.webhookTimeout)
        line.targets = self.targets
        line.targetKeyFiles = self.targetKeyFiles
        line.targetKeyEnvironment = self.targetKeyEnvironment
        line.config = self.config
        line.secretsDirectory = self.secretsDir
        line.caFile = self.caFile
        line.tls = self.tls.configuration
        line.reconnectInitial = .seconds(self.reconnectMin)
        line.reconnectMaximum = .seconds(self.reconnectMax)
        line.targetQueueBytes = self.targetQueueBytes
        line.targetQueueDuration = .seconds(self.targetQueueSeconds)
        line.targetMaxBehind = .seconds(self.targetMaxBehind)
        line.targetSendBufferBytes = self.targetSendBuffer
        line.gopCache = self.gopCache
        line.gopCacheBytes = self.gopCacheBytes
        line.ingestReadBytes = self.ingestReadBytes
        line.ingestCopiesPayloads = self.ingestCopyPayloads
        line.publisherTakeover = self.takeover
        line.publisherIdleTimeout = .seconds(self.publisherIdleTimeout)
        line.maxConnections = self.maxConnections
        line.shutdownGrace = .seconds(self.shutdownGrace)
        line.proxyProtocolFrom = self.proxyProtocolFrom
        line.maxKeyframeInterval = self.maxKeyframeInterval.map { .seconds($0) }
        line.eventLoops = self.eventLoops
        return line
    }

    func run() async throws {
        self.log.bootstrap()
        let logger = Logger(label: "liverelay.relay")
        let configuration: RelayConfiguration
        do {
            configuration = try self.commandLine.makeConfiguration()
        } catch let error as RelayConfigurationError {
            throw ValidationError(error.message)
        }
        // NIO's shared event loops and blocking pool start on first use, sized by these suggestions, which may be set
        // once, before that use: the relay, its HTTP server and its webhook client all run on them. A pod's relay
        // serves one stream, so it runs one loop; nothing in the relay blocks a pool thread for long.
        NIOSingletons.groupLoopCountSuggestion =
            self.eventLoops
            ?? RelayCommandLine.eventLoopCount(streams: configuration.streams.count, cores: System.coreCount)
        NIOSingletons.blockingPoolThreadCountSuggestion = 1
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        // Once both listeners are up, start-up is over: its code need not stay resident (``CodePages``).
        let releaseStartupPages = self.releaseStartupPages
        let announcer = ListenAnnouncer(enabled: self.announce, expectsHTTP: self.httpListen != "none") {
            if releaseStartupPages {
                let bytes = CodePages.release()
                logger.debug("Start-up pages released", metadata: ["relay.startup.releasedBytes": "\(bytes)"])
            }
        }
        let relay = try RelayServer(configuration: configuration, logger: logger) { address in
            announcer.rtmp(address.port ?? 0)
        }
        // The HTTP endpoints come first so they stop last: /readyz answers 503 while the relay drains.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if self.httpListen != "none" {
            let (host, port) = try Self.hostAndPort(self.httpListen, flag: "--http-listen")
            let http = makeRelayHTTPApplication(
                relay: relay,
                registry: registry,
                host: host,
                port: port,
                controlFrom: try Self.ranges(self.controlFrom, flag: "--control-from"),
                logger: Logger(label: "liverelay.http"),
                onServerRunning: { announcer.http($0) }
            )
            services.append(.init(service: http))
        }
        services.append(.init(service: relay))
        if let config = self.config {
            services.append(
                .init(
                    service: ConfigurationReloader(
                        path: config,
                        secretsDirectory: self.secretsDir,
                        relay: relay,
                        logger: logger
                    )
                )
            )
        }
        if let parentPid {
            services.append(.init(service: ParentWatch(parent: parentPid, logger: logger)))
        }
        // LIVERELAY_MALLOC_TRIM=0 turns it off, as for the operator.
        if Heap.canTrim && ProcessInfo.processInfo.environment["LIVERELAY_MALLOC_TRIM"] != "0" {
            let trim = HeapTrimService(interval: .seconds(60), isLive: { relay.hasPublisher }, trim: Heap.trim)
            services.append(.init(service: trim))
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }

    /// Comma-separated CIDR ranges (or bare addresses); an error names the flag.
    static func ranges(_ value: String, flag: String) throws -> [IPRange] {
        do {
            return try RelayCommandLine.ranges(value, flag: flag)
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// `HOST:PORT`; an error names the flag.
    static func hostAndPort(_ value: String, flag: String) throws -> (host: String, port: Int) {
        do {
            return try RelayCommandLine.hostAndPort(value, flag: flag)
        } catch {
            throw ValidationError(error.message)
        }
    }
}

/// Prints `{"rtmpPort":N,"httpPort":M}` once both listeners are up (`--announce`), and then calls `onListening` once.
final class ListenAnnouncer: Sendable {
    private struct Ports {
        var rtmp: Int?
        var http: Int?
        var announced = false
    }
    private let enabled: Bool
    private let expectsHTTP: Bool
    private let onListening: @Sendable () -> Void
    private let ports = Mutex(Ports())

    init(enabled: Bool, expectsHTTP: Bool, onListening: @escaping @Sendable () -> Void = {}) {
        self.enabled = enabled
        self.expectsHTTP = expectsHTTP
        self.onListening = onListening
    }

    func rtmp(_ port: Int) { self.update { $0.rtmp = port } }

    func http(_ port: Int) { self.update { $0.http = port } }

    private func update(_ change: (inout Ports) -> Void) {
        let line: String? = self.ports.withLock { ports in
            change(&ports)
            guard !ports.announced, let rtmp = ports.rtmp, ports.http != nil || !self.expectsHTTP else {
                return nil
            }
            ports.announced = true
            return "{\"rtmpPort\":\(rtmp),\"httpPort\":\(ports.http ?? 0)}\n"
        }
        guard let line else { return }
        if self.enabled {
            // Standard output is a pipe to the supervisor: flushed at once, not when a buffer fills.
            print(line, terminator: "")
            fflush(nil)
        }
        self.onListening()
    }
}

/// Ends the relay when its supervisor is gone (`--parent-pid`), so a killed `liverelay local` leaves no relay
/// behind: Linux re-parents an orphan, and `getppid()` then changes. Checked once a second; that is how long an
/// orphan may live.
struct ParentWatch: Service {
    let parent: Int32
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while getppid() == self.parent {
                try await Task.sleep(for: .seconds(1))
            }
            self.logger.notice("The supervisor is gone: stopping", metadata: ["relay.parent_pid": "\(self.parent)"])
            kill(getpid(), SIGTERM)
        }
    }
}
