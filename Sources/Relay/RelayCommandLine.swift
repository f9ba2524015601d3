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
public import IngestTLS
public import LiveStreamModel

/// What `liverelay relay`'s flags say, as values, and the ``RelayConfiguration`` they make: on their own, or over a
/// `--config` file. The executable parses the flags; everything they mean is decided here, where it is tested.
public struct RelayCommandLine: Sendable {
    /// `--listen`, HOST:PORT.
    public var listen = "0.0.0.0:1935"
    /// `--app`: every stream's application.
    public var app: String?
    /// `--stream-key-file` / `--stream-key-env`: the publishers' key of every stream.
    public var streamKeyFile: String?
    public var streamKeyEnvironment: String?
    /// `--webhook`: authorize publishers with a webhook instead of a key.
    public var webhook: String?
    public var webhookTimeout: Duration = .seconds(LiveStreamSpec.Webhook.defaultTimeoutSeconds)
    /// `--target NAME=URL`, `--target-key-file NAME=FILE`, `--target-key-env NAME=VARIABLE`, each repeatable.
    public var targets: [String] = []
    public var targetKeyFiles: [String] = []
    public var targetKeyEnvironment: [String] = []
    /// `--config`: a LiveStream file; the flags override it.
    public var config: String?
    public var secretsDirectory = "/var/run/secrets/liverelay"
    public var caFile: String?
    public var tls: IngestTLSConfiguration?
    public var reconnectInitial: Duration = .milliseconds(500)
    public var reconnectMaximum: Duration = .seconds(30)
    public var targetQueueBytes = 16 << 20
    public var targetQueueDuration: Duration = .seconds(10)
    public var targetMaxBehind: Duration = .seconds(20)
    /// 0: the system's autotuning.
    public var targetSendBufferBytes = 512 << 10
    public var gopCache = GOPCachePolicy.joining.rawValue
    public var gopCacheBytes = 16 << 20
    /// `--ingest-read-bytes`: see ``RelayConfiguration/ingestReadBytes``.
    public var ingestReadBytes = 8 << 10
    /// `--[no-]ingest-copy-payloads` (hidden, for benchmarks): see ``RelayConfiguration/ingestCopiesPayloads``.
    public var ingestCopiesPayloads = true
    public var publisherTakeover = true
    public var publisherIdleTimeout: Duration = .seconds(10)
    public var maxConnections = 256
    public var shutdownGrace: Duration = .seconds(30)
    /// `--proxy-protocol-from`: comma-separated CIDR ranges.
    public var proxyProtocolFrom = ""
    public var maxKeyframeInterval: Duration?
    /// `--event-loops`: the event loops (threads) that serve every connection; nil for ``eventLoopCount(streams:cores:)``.
    public var eventLoops: Int?

    public init() {}

    /// The event loops a relay of `streams` streams runs when `--event-loops` does not say: one per stream, at most one
    /// per core. A relay in a pod serves one stream, and every loop beyond what its streams can keep busy is an idle
    /// thread with its own stack and malloc arena.
    public static func eventLoopCount(streams: Int, cores: Int) -> Int {
        max(1, min(streams, cores))
    }

    /// Whatever the flags get wrong, before anything is read: each error names its flag.
    public func validate() throws(RelayConfigurationError) {
        guard
            self.config != nil || self.streamKeyFile != nil || self.streamKeyEnvironment != nil
                || self.webhook != nil
        else {
            throw RelayConfigurationError(
                message: "Give the publishers' stream key with --stream-key-file or --stream-key-env, or authorize"
                    + " them with --webhook URL (or --config)."
            )
        }
        guard self.webhook == nil || (self.streamKeyFile == nil && self.streamKeyEnvironment == nil) else {
            throw RelayConfigurationError(
                message: "--webhook authorizes publishers instead of a stream key: give one or the other."
            )
        }
        guard self.maxConnections >= 1 else {
            throw RelayConfigurationError(message: "--max-connections must be at least 1, got \(self.maxConnections).")
        }
        guard self.reconnectInitial > .zero, self.reconnectMaximum >= self.reconnectInitial else {
            throw RelayConfigurationError(message: "--reconnect-min must be above 0 and at most --reconnect-max.")
        }
        guard GOPCachePolicy(rawValue: self.gopCache) != nil else {
            throw RelayConfigurationError(message: "--gop-cache must be always, joining or off, not '\(self.gopCache)'")
        }
        if let eventLoops = self.eventLoops, !(1...1024).contains(eventLoops) {
            throw RelayConfigurationError(message: "--event-loops must be 1 to 1024, got \(eventLoops).")
        }
        guard (1024...(1 << 20)).contains(self.ingestReadBytes) else {
            throw RelayConfigurationError(
                message: "--ingest-read-bytes must be from 1024 to 1048576, got \(self.ingestReadBytes)."
            )
        }
        _ = try Self.hostAndPort(self.listen, flag: "--listen")
        _ = try Self.ranges(self.proxyProtocolFrom, flag: "--proxy-protocol-from")
    }

    /// The relay's configuration: the `--config` file's streams (or one stream of the flags alone), with every
    /// flag applied. Keys come from files and `environment` (the process's by default); an error names the flag or
    /// file and never a key.
    public func makeConfiguration(environment: [String: String]? = nil) throws -> RelayConfiguration {
        try self.validate()
        let environment = environment ?? ProcessInfo.processInfo.environment
        let overrides: (inout RelayConfiguration) throws -> Void = { configuration in
            try self.apply(to: &configuration, environment: environment)
        }
        if let config = self.config {
            return try RelayConfiguration.load(
                yamlFile: config,
                secretsDirectory: self.secretsDirectory,
                overrides: overrides
            )
        }
        var configuration = RelayConfiguration(streamKey: Secret(""))
        try overrides(&configuration)
        try configuration.validate()
        return configuration
    }

    private func apply(to configuration: inout RelayConfiguration, environment: [String: String]) throws {
        (configuration.host, configuration.port) = try Self.hostAndPort(self.listen, flag: "--listen")
        configuration.caFile = self.caFile
        configuration.reconnectInitial = self.reconnectInitial
        configuration.reconnectMaximum = self.reconnectMaximum
        configuration.targetQueueBytes = self.targetQueueBytes
        configuration.targetQueueDuration = self.targetQueueDuration
        configuration.targetMaxBehind = self.targetMaxBehind
        configuration.targetSendBufferBytes = self.targetSendBufferBytes > 0 ? self.targetSendBufferBytes : nil
        configuration.gopCache = GOPCachePolicy(rawValue: self.gopCache) ?? .joining
        configuration.gopCacheBytes = self.gopCacheBytes
        configuration.ingestReadBytes = self.ingestReadBytes
        configuration.ingestCopiesPayloads = self.ingestCopiesPayloads
        configuration.publisherTakeover = self.publisherTakeover
        configuration.publisherIdleTimeout = self.publisherIdleTimeout
        configuration.maxConnections = self.maxConnections
        configuration.shutdownGrace = self.shutdownGrace
        configuration.proxyProtocolFrom = try Self.ranges(self.proxyProtocolFrom, flag: "--proxy-protocol-from")
        configuration.tls = self.tls
        // Stream flags apply to the one stream of a flag-only relay, or to every stream of a config file.
        let key = try self.ingestKey(environment: environment)
        let targets = try self.commandLineTargets(environment: environment)
        for index in configuration.streams.indices {
            if let app = self.app { configuration.streams[index].app = app }
            if let key { configuration.streams[index].authorization = .key(key) }
            if let webhook = self.webhook {
                configuration.streams[index].authorization = .webhook(url: webhook, timeout: self.webhookTimeout)
            }
            configuration.streams[index].targets += targets
            if let interval = self.maxKeyframeInterval {
                configuration.streams[index].rules.maxKeyframeInterval = interval
            }
        }
    }

    /// The publishers' key, from `--stream-key-file` or `--stream-key-env`, normalised as every reader does.
    private func ingestKey(environment: [String: String]) throws -> Secret? {
        if let file = self.streamKeyFile {
            return try readSecretFile(file, what: "ingest stream key")
        }
        if let variable = self.streamKeyEnvironment {
            return try Self.secret(variable, environment: environment, what: "the ingest stream key")
        }
        return nil
    }

    private static func secret(_ variable: String, environment: [String: String], what: String) throws -> Secret {
        let value = StreamKey.normalized(environment[variable] ?? "")
        guard !value.isEmpty else {
            throw RelayConfigurationError(message: "environment variable \(variable) (\(what)) is not set")
        }
        return Secret(value)
    }

    private func commandLineTargets(environment: [String: String]) throws -> [PushTargetConfiguration] {
        let urls = try Self.pairs(self.targets, "--target", example: "youtube=rtmp://a.rtmp.youtube.com/live2")
        let keyFiles = Dictionary(
            try Self.pairs(self.targetKeyFiles, "--target-key-file", example: "youtube=/secrets/youtube"),
            uniquingKeysWith: { $1 }
        )
        let keyVariables = Dictionary(
            try Self.pairs(self.targetKeyEnvironment, "--target-key-env", example: "youtube=YOUTUBE_KEY"),
            uniquingKeysWith: { $1 }
        )
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
                key = try Self.secret(variable, environment: environment, what: "stream key of target '\(name)'")
            }
            do {
                return PushTargetConfiguration(name: name, url: try RTMPURL(parsing: url), streamKey: key)
            } catch {
                throw RelayConfigurationError(message: "target '\(name)': \(error)")
            }
        }
    }

    /// `NAME=VALUE` pairs in order; an error names the flag and shows no value: a target URL may hold its key.
    private static func pairs(_ values: [String], _ flag: String, example: String) throws -> [(String, String)] {
        try values.map { value in
            guard let equals = value.firstIndex(of: "="), equals != value.startIndex else {
                throw RelayConfigurationError(
                    message:
                        "\(flag) takes NAME=VALUE, for example \(example): one of its values has no NAME= before it"
                )
            }
            return (String(value[..<equals]), String(value[value.index(after: equals)...]))
        }
    }

    /// Comma-separated CIDR ranges (or bare addresses); an error names the flag.
    public static func ranges(_ value: String, flag: String) throws(RelayConfigurationError) -> [IPRange] {
        do {
            return try value.split(separator: ",").map { try IPRange(String($0).trimmingCharacters(in: .whitespaces)) }
        } catch {
            throw RelayConfigurationError(message: "\(flag): \(error)")
        }
    }

    /// `HOST:PORT` (`[v6]:PORT` too; an empty host is every address); an error names the flag.
    public static func hostAndPort(
        _ value: String,
        flag: String
    ) throws(RelayConfigurationError) -> (
        host: String, port: Int
    ) {
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw RelayConfigurationError(message: "\(flag) must be HOST:PORT, for example 0.0.0.0:1935.")
        }
        var host = String(value[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}
