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
import Foundation
import LiveStreamModel
import Logging
import Metrics
import NIOCore
import Prometheus
import Relay
import ServiceLifecycle
import Synchronization
import UnixSignals

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
    var listen: String = "0.0.0.0:1935"

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

    @Option(help: "A YAML file in the shape of a LiveStream's spec (or a whole LiveStream); flags override it.")
    var config: String?

    @Option(help: "Where Secrets named in --config are mounted, as <dir>/<secret>/<key>.")
    var secretsDir: String = "/var/run/secrets/liverelay"

    @Option(help: "PEM file of extra certificate authorities to trust for rtmps:// targets.")
    var caFile: String?

    @OptionGroup(title: "rtmps://")
    var tls: IngestTLSOptions

    @Option(help: "First reconnect delay for a failed target, in seconds (doubles up to --reconnect-max).")
    var reconnectMin: Double = 0.5

    @Option(help: "Longest reconnect delay for a failed target, in seconds.")
    var reconnectMax: Double = 30

    @Option(help: "Bytes a target may fall behind before it restarts at the next keyframe.")
    var targetQueueBytes: Int = 16 << 20

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
    var proxyProtocolFrom: String = ""

    @Option(help: "Authorize publishers with this webhook (POST, 2xx admits) instead of a key.")
    var webhook: String?

    @Option(help: "Seconds the webhook has to answer; slower means refused.")
    var webhookTimeout: Double = LiveStreamSpec.Webhook.defaultTimeoutSeconds

    @Option(help: "Warn when the incoming keyframe interval exceeds this many seconds (AWS IVS requires 2).")
    var maxKeyframeInterval: Double?

    @Flag(inversion: .prefixedNo, help: "Let a new publisher with a valid key take over a stream that has one.")
    var takeover = true

    @Option(help: "Seconds of silence after which a publisher is dropped.")
    var publisherIdleTimeout: Double = 10

    @Option(help: "Connections served at once, publishers and clients not yet publishing; more are refused and logged.")
    var maxConnections: Int = 256

    @Option(help: "Seconds a live publisher may go on after SIGTERM before the relay ends its stream.")
    var shutdownGrace: Double = 30

    @Option(help: "Seconds of media a target may fall behind before its video is dropped to the next keyframe.")
    var targetQueueSeconds: Double = 10

    @Option(help: "Seconds a target may stay behind before it is disconnected and restarted.")
    var targetMaxBehind: Double = 20

    @Option(help: "Kernel send buffer of each target connection, in bytes (0: the system's autotuning).")
    var targetSendBuffer: Int = 512 << 10

    @Option(
        help: ArgumentHelp(
            "When each stream keeps its current GOP, so that a target that joins or rejoins starts at once: always, "
                + "joining (while a target is connecting or backing off), or off. It costs about one GOP of memory.",
            valueName: "policy"
        )
    )
    var gopCache: String = GOPCachePolicy.joining.rawValue

    @Option(help: "Most bytes of one stream's GOP cache; a larger GOP is not cached.")
    var gopCacheBytes: Int = 16 << 20

    @Flag(
        help: ArgumentHelp(
            "Print one JSON line to standard output when the RTMP and HTTP listeners are up, with their ports.",
            discussion: "For a supervisor (local mode) that starts the relay on port 0 and must learn where it listens."
        )
    )
    var announce = false

    @Option(help: ArgumentHelp("Exit when this process (the supervisor) is gone.", visibility: .hidden))
    var parentPid: Int32?

    @OptionGroup(title: "Logging")
    var log: LogOptions

    func validate() throws {
        guard self.config != nil || self.streamKeyFile != nil || self.streamKeyEnv != nil || self.webhook != nil else {
            throw ValidationError(
                "Give the publishers' stream key with --stream-key-file or --stream-key-env, or authorize them with"
                    + " --webhook URL (or --config)."
            )
        }
        guard self.webhook == nil || (self.streamKeyFile == nil && self.streamKeyEnv == nil) else {
            throw ValidationError("--webhook authorizes publishers instead of a stream key: give one or the other.")
        }
        guard self.maxConnections >= 1 else {
            throw ValidationError("--max-connections must be at least 1, got \(self.maxConnections).")
        }
        guard self.reconnectMin > 0, self.reconnectMax >= self.reconnectMin else {
            throw ValidationError("--reconnect-min must be above 0 and at most --reconnect-max.")
        }
        _ = try self.listenAddress()
        _ = try self.controlRanges()
        _ = try self.proxyRanges()
    }

    func run() async throws {
        self.log.bootstrap()
        let logger = Logger(label: "liverelay.relay")
        let configuration: RelayConfiguration
        do {
            configuration = try self.makeConfiguration()
        } catch let error as RelayConfigurationError {
            throw ValidationError(error.message)
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let announcer = ListenAnnouncer(enabled: self.announce, expectsHTTP: self.httpListen != "none")
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
                controlFrom: try self.controlRanges(),
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
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }

    func listenAddress() throws -> (host: String, port: Int) {
        try Self.hostAndPort(self.listen, flag: "--listen")
    }

    func controlRanges() throws -> [IPRange] {
        try Self.ranges(self.controlFrom, flag: "--control-from")
    }

    func proxyRanges() throws -> [IPRange] {
        try Self.ranges(self.proxyProtocolFrom, flag: "--proxy-protocol-from")
    }

    /// Comma-separated CIDR ranges (or bare addresses); an error names the flag.
    static func ranges(_ value: String, flag: String) throws -> [IPRange] {
        do {
            return try value.split(separator: ",").map {
                try IPRange(String($0).trimmingCharacters(in: .whitespaces))
            }
        } catch {
            throw ValidationError("\(flag): \(error)")
        }
    }

    static func hostAndPort(_ value: String, flag: String) throws -> (host: String, port: Int) {
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw ValidationError("\(flag) must be HOST:PORT, for example 0.0.0.0:1935.")
        }
        var host = String(value[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    func makeConfiguration() throws -> RelayConfiguration {
        let (host, port) = try self.listenAddress()
        let overrides: (inout RelayConfiguration) throws -> Void = { configuration in
            configuration.host = host
            configuration.port = port
            configuration.caFile = self.caFile
            configuration.reconnectInitial = .milliseconds(Int64(self.reconnectMin * 1000))
            configuration.reconnectMaximum = .milliseconds(Int64(self.reconnectMax * 1000))
            configuration.targetQueueBytes = self.targetQueueBytes
            configuration.targetQueueDuration = .milliseconds(Int64(self.targetQueueSeconds * 1000))
            configuration.targetMaxBehind = .milliseconds(Int64(self.targetMaxBehind * 1000))
            configuration.targetSendBufferBytes = self.targetSendBuffer > 0 ? self.targetSendBuffer : nil
            guard let gopCache = GOPCachePolicy(rawValue: self.gopCache) else {
                throw ValidationError("--gop-cache must be always, joining or off, not '\(self.gopCache)'")
            }
            configuration.gopCache = gopCache
            configuration.gopCacheBytes = self.gopCacheBytes
            configuration.publisherTakeover = self.takeover
            configuration.publisherIdleTimeout = .milliseconds(Int64(self.publisherIdleTimeout * 1000))
            configuration.maxConnections = self.maxConnections
            configuration.shutdownGrace = .milliseconds(Int64(self.shutdownGrace * 1000))
            configuration.proxyProtocolFrom = try self.proxyRanges()
            configuration.tls = self.tls.configuration
            // Stream flags apply to the one stream of a flag-only relay, or to every stream of a config file.
            let key = try self.ingestKey()
            let targets = try self.commandLineTargets()
            for index in configuration.streams.indices {
                if let app = self.app { configuration.streams[index].app = app }
                if let key { configuration.streams[index].authorization = .key(key) }
                if let webhook = self.webhook {
                    configuration.streams[index].authorization = .webhook(
                        url: webhook,
                        timeout: .milliseconds(Int64(self.webhookTimeout * 1000))
                    )
                }
                configuration.streams[index].targets += targets
                if let seconds = self.maxKeyframeInterval {
                    configuration.streams[index].rules.maxKeyframeInterval = .milliseconds(Int64(seconds * 1000))
                }
            }
        }
        if let config = self.config {
            return try RelayConfiguration.load(
                yamlFile: config,
                secretsDirectory: self.secretsDir,
                overrides: overrides
            )
        }
        var configuration = RelayConfiguration(streamKey: Secret(""))
        try overrides(&configuration)
        try configuration.validate()
        return configuration
    }

    private func ingestKey() throws -> Secret? {
        if let file = self.streamKeyFile {
            return try readSecretFile(file, what: "ingest stream key")
        }
        if let variable = self.streamKeyEnv {
            guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
                throw RelayConfigurationError(
                    message: "environment variable \(variable) (the ingest stream key) is not set"
                )
            }
            return Secret(value)
        }
        return nil
    }

    private func commandLineTargets() throws -> [PushTargetConfiguration] {
        func pairs(_ values: [String], _ flag: String) throws -> [String: String] {
            var result: [String: String] = [:]
            for value in values {
                guard let equals = value.firstIndex(of: "="), equals != value.startIndex else {
                    throw RelayConfigurationError(
                        message: "\(flag) takes NAME=VALUE, got '\(value.prefix(while: { $0 != "=" }))...'"
                    )
                }
                result[String(value[..<equals])] = String(value[value.index(after: equals)...])
            }
            return result
        }
        let urls = try self.targets.map { value -> (String, String) in
            guard let equals = value.firstIndex(of: "="), equals != value.startIndex else {
                throw RelayConfigurationError(
                    message: "--target takes NAME=URL, for example youtube=rtmp://a.rtmp.youtube.com/live2"
                )
            }
            return (String(value[..<equals]), String(value[value.index(after: equals)...]))
        }
        let keyFiles = try pairs(self.targetKeyFiles, "--target-key-file")
        let keyVariables = try pairs(self.targetKeyEnvironment, "--target-key-env")
        for name in Set(keyFiles.keys).union(keyVariables.keys) where !urls.contains(where: { $0.0 == name }) {
            throw RelayConfigurationError(
                message: "a key is given for target '\(name)', but there is no --target \(name)=URL"
            )
        }
        return try urls.map { name, url in
            var key: Secret?
            if let file = keyFiles[name] {
                key = try readSecretFile(file, what: "stream key of target '\(name)'")
            } else if let variable = keyVariables[name] {
                guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
                    throw RelayConfigurationError(
                        message: "environment variable \(variable) (stream key of target '\(name)') is not set"
                    )
                }
                key = Secret(value)
            }
            do {
                return PushTargetConfiguration(name: name, url: try RTMPURL(parsing: url), streamKey: key)
            } catch {
                throw RelayConfigurationError(message: "target '\(name)': \(error)")
            }
        }
    }
}

/// Prints `{"rtmpPort":N,"httpPort":M}` once both listeners are up (`--announce`).
final class ListenAnnouncer: Sendable {
    private struct Ports {
        var rtmp: Int?
        var http: Int?
        var announced = false
    }
    private let enabled: Bool
    private let expectsHTTP: Bool
    private let ports = Mutex(Ports())

    init(enabled: Bool, expectsHTTP: Bool) {
        self.enabled = enabled
        self.expectsHTTP = expectsHTTP
    }

    func rtmp(_ port: Int) { self.update { $0.rtmp = port } }

    func http(_ port: Int) { self.update { $0.http = port } }

    private func update(_ change: (inout Ports) -> Void) {
        guard self.enabled else {
            return
        }
        let line: String? = self.ports.withLock { ports in
            change(&ports)
            guard !ports.announced, let rtmp = ports.rtmp, ports.http != nil || !self.expectsHTTP else {
                return nil
            }
            ports.announced = true
            return "{\"rtmpPort\":\(rtmp),\"httpPort\":\(ports.http ?? 0)}\n"
        }
        if let line {
            FileHandle.standardOutput.write(Data(line.utf8))
        }
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
