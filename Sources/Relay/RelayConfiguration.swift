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
public import RTMP
import Yams

/// A configuration the relay refuses, with a message that says what to fix. It never contains a key.
public struct RelayConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    static func invalid(_ message: String) -> Self { Self(message: message) }
    public var description: String { self.message }
}

/// One place the relay pushes the stream to.
public struct PushTargetConfiguration: Sendable {
    /// A name for logs, status and metrics (`youtube`), never the URL's key.
    public var name: String
    public var url: RTMPURL
    /// The stream key; when nil, the stream name in the URL is used.
    public var streamKey: Secret?
    public var enabled: Bool

    public init(name: String, url: RTMPURL, streamKey: Secret? = nil, enabled: Bool = true) {
        self.name = name
        self.url = url
        self.streamKey = streamKey
        self.enabled = enabled
    }

    /// The stream name the target is published to.
    var streamName: String? {
        if let streamKey, !streamKey.isEmpty {
            return streamKey.revealed
        }
        return self.url.streamName
    }
}

/// Everything `liverelay relay` needs to run.
public struct RelayConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// The application publishers connect to: `rtmp://HOST:PORT/<app>/<key>`.
    public var app: String
    /// The key a publisher must use as its stream name.
    public var streamKey: Secret
    public var targets: [PushTargetConfiguration]
    /// PEM file of extra certificate authorities to trust for `rtmps://` targets, besides the system store.
    public var caFile: String?
    public var chunkLimits: RTMPChunkLimits = .default
    /// Bytes a target may fall behind before the relay drops its queue and restarts it at the next keyframe.
    public var targetQueueBytes: Int = 16 << 20
    public var reconnectInitial: Duration = .milliseconds(500)
    public var reconnectMaximum: Duration = .seconds(30)
    /// Longest a target may take to connect, handshake and accept the publish.
    public var targetConnectTimeout: Duration = .seconds(10)
    /// Longest the relay waits, after a publisher ends, for targets to send what they hold.
    public var drainTimeout: Duration = .seconds(5)
    /// Most RTMP connections (publishers and would-be publishers) at once.
    public var maxConnections: Int = 64
    /// Longest a connection may take from TCP accept to an accepted or refused `publish`.
    public var sessionSetupTimeout: Duration = .seconds(15)

    public init(
        host: String = "0.0.0.0",
        port: Int = 1935,
        app: String = "live",
        streamKey: Secret,
        targets: [PushTargetConfiguration] = []
    ) {
        self.host = host
        self.port = port
        self.app = app
        self.streamKey = streamKey
        self.targets = targets
    }

    /// Checks what a parser cannot: non-empty key, unique target names, a stream name for every target.
    public func validate() throws(RelayConfigurationError) {
        guard !self.app.isEmpty, !self.app.contains("/") else {
            throw .invalid("app '\(self.app)' must be one non-empty path segment")
        }
        guard !self.streamKey.isEmpty else {
            throw .invalid("the ingest stream key is empty")
        }
        guard (0...65535).contains(self.port) else {
            throw .invalid("port \(self.port) is not a port number")
        }
        var names = Set<String>()
        for target in self.targets {
            guard Self.isValidName(target.name) else {
                throw .invalid("target name '\(target.name)' must be 1 to 63 letters, digits or '-'")
            }
            guard names.insert(target.name).inserted else {
                throw .invalid("target name '\(target.name)' is used twice")
            }
            guard target.streamName != nil else {
                throw .invalid("target '\(target.name)' has neither a stream key nor a stream name in its URL")
            }
        }
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 63
            && name.utf8.allSatisfy {
                $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || (48...57).contains($0) || (65...90).contains($0)
                    || (97...122).contains($0)
            }
    }
}

// MARK: - YAML, in the shape of a LiveStream's spec

/// The part of a `LiveStream` spec that the relay reads. Secret references resolve to files under a directory
/// laid out as Kubernetes mounts Secrets (`<dir>/<secret name>/<key>`), so the same spec runs in a pod and locally.
struct LiveStreamSpecDocument: Decodable {
    struct SecretKeyRef: Decodable {
        var name: String
        var key: String
    }
    struct Ingest: Decodable {
        var app: String?
        var port: Int?
        var streamKeySecretRef: SecretKeyRef?
        /// Extension for running without Secrets: a file that holds the key.
        var streamKeyFile: String?
    }
    struct Target: Decodable {
        var name: String
        var url: String
        var streamKeySecretRef: SecretKeyRef?
        var streamKeyFile: String?
        var enabled: Bool?
    }
    var ingest: Ingest?
    var targets: [Target]?
}

extension RelayConfiguration {
    /// Reads a YAML file holding a LiveStream `spec` (or a whole LiveStream, whose `spec` is used).
    public static func load(
        yamlFile path: String,
        secretsDirectory: String,
        overrides apply: (inout RelayConfiguration) throws -> Void = { _ in }
    ) throws -> RelayConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RelayConfigurationError.invalid("cannot read config file \(path): \(error.localizedDescription)")
        }
        let spec: LiveStreamSpecDocument
        do {
            struct Wrapped: Decodable { var spec: LiveStreamSpecDocument? }
            let decoder = YAMLDecoder()
            if let wrapped = try? decoder.decode(Wrapped.self, from: text), let inner = wrapped.spec {
                spec = inner
            } else {
                spec = try decoder.decode(LiveStreamSpecDocument.self, from: text)
            }
        } catch {
            throw RelayConfigurationError.invalid("config file \(path) is not a LiveStream spec: \(error)")
        }
        func resolve(_ ref: LiveStreamSpecDocument.SecretKeyRef?, file: String?, what: String) throws -> Secret? {
            if let file {
                return try readSecretFile(file, what: what)
            }
            guard let ref else {
                return nil
            }
            let path = URL(fileURLWithPath: secretsDirectory).appendingPathComponent(ref.name).appendingPathComponent(
                ref.key
            ).path
            return try readSecretFile(path, what: "\(what) (Secret \(ref.name), key \(ref.key))")
        }
        guard
            let key = try resolve(
                spec.ingest?.streamKeySecretRef,
                file: spec.ingest?.streamKeyFile,
                what: "ingest stream key"
            )
        else {
            throw RelayConfigurationError.invalid(
                "config file \(path) has no ingest.streamKeySecretRef or ingest.streamKeyFile"
            )
        }
        var configuration = RelayConfiguration(streamKey: key)
        if let app = spec.ingest?.app { configuration.app = app }
        if let port = spec.ingest?.port, port != 0 { configuration.port = port }
        for target in spec.targets ?? [] {
            let url: RTMPURL
            do {
                url = try RTMPURL(parsing: target.url)
            } catch {
                throw RelayConfigurationError.invalid("target '\(target.name)': \(error)")
            }
            configuration.targets.append(
                PushTargetConfiguration(
                    name: target.name,
                    url: url,
                    streamKey: try resolve(
                        target.streamKeySecretRef,
                        file: target.streamKeyFile,
                        what: "stream key of target '\(target.name)'"
                    ),
                    enabled: target.enabled ?? true
                )
            )
        }
        try apply(&configuration)
        try configuration.validate()
        return configuration
    }
}

/// Reads a secret from a file, trimming one trailing newline (as `echo key > file` writes it).
public func readSecretFile(_ path: String, what: String) throws(RelayConfigurationError) -> Secret {
    let text: String
    do {
        text = try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        throw .invalid("cannot read the \(what) from \(path): \(error.localizedDescription)")
    }
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !trimmed.isEmpty else {
        throw .invalid("the \(what) in \(path) is empty")
    }
    return Secret(trimmed)
}
