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
public import Preview
public import RTMP

/// A configuration the relay refuses, with a message that says what to fix. It never contains a key.
public struct RelayConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    static func invalid(_ message: String) -> Self { Self(message: message) }
    public var description: String { self.message }
}

/// One place the relay pushes a stream to.
public struct PushTargetConfiguration: Hashable, Sendable {
    /// A name for logs, stats and metrics (`youtube`), never the URL's key.
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

/// How a publisher proves it may publish a stream.
public enum StreamAuthorization: Hashable, Sendable {
    /// The stream name must be this key (compared in constant time).
    case key(Secret)
    /// A webhook decides: the relay POSTs the app, stream name, query and client address as JSON and admits the
    /// publisher on a 2xx answer only. Unreachable, slow or any other answer means refused.
    case webhook(url: String, timeout: Duration)
}

/// Checks on the incoming stream that raise a warning when broken (in the log, the stats and the metrics).
public struct IngestRules: Hashable, Sendable {
    /// The longest keyframe interval allowed; AWS IVS requires 2 s, YouTube recommends 2 s and allows 4 s.
    public var maxKeyframeInterval: Duration?

    public init(maxKeyframeInterval: Duration? = nil) {
        self.maxKeyframeInterval = maxKeyframeInterval
    }
}

/// One stream the relay serves: its application and authorization on the way in, and its targets on the way out.
public struct StreamConfiguration: Hashable, Sendable {
    /// A name for logs, stats and metrics: the LiveStream's name. Never the key.
    public var name: String
    /// The application publishers connect to: `rtmp://HOST:PORT/<app>/<key>`.
    public var app: String
    public var authorization: StreamAuthorization
    public var targets: [PushTargetConfiguration]
    public var rules: IngestRules
    /// Whether the relay packages a live preview (HLS and fragmented MP4) of this stream: `spec.preview.enabled`.
    public var previewEnabled: Bool

    public init(
        name: String,
        app: String = "live",
        authorization: StreamAuthorization,
        targets: [PushTargetConfiguration] = [],
        rules: IngestRules = IngestRules(),
        previewEnabled: Bool = true
    ) {
        self.name = name
        self.app = app
        self.authorization = authorization
        self.targets = targets
        self.rules = rules
        self.previewEnabled = previewEnabled
    }

    func validate() throws(RelayConfigurationError) {
        guard RelayConfiguration.isValidName(self.name) else {
            throw .invalid("stream name '\(self.name)' must be 1 to 63 letters, digits, '-' or '_'")
        }
        guard !self.app.isEmpty, !self.app.contains("/") else {
            throw .invalid("stream '\(self.name)': app '\(self.app)' must be one non-empty path segment")
        }
        switch self.authorization {
        case .key(let key):
            guard !key.isEmpty else {
                throw .invalid("stream '\(self.name)': the ingest stream key is empty")
            }
        case .webhook(let url, _):
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw .invalid("stream '\(self.name)': the webhook URL must start with http:// or https://")
            }
        }
        var names = Set<String>()
        for target in self.targets {
            guard RelayConfiguration.isValidName(target.name) else {
                throw .invalid("target name '\(target.name)' must be 1 to 63 letters, digits, '-' or '_'")
            }
            guard names.insert(target.name).inserted else {
                throw .invalid("stream '\(self.name)': target name '\(target.name)' is used twice")
            }
            guard target.streamName != nil else {
                throw .invalid(
                    "stream '\(self.name)': target '\(target.name)' has neither a stream key nor a stream name in its URL"
                )
            }
        }
    }
}

/// Everything `liverelay relay` needs to run: where to listen, the streams, and the limits.
public struct RelayConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var streams: [StreamConfiguration]
    /// PEM file of extra certificate authorities to trust for `rtmps://` targets, besides the system store.
    public var caFile: String?
    public var chunkLimits: RTMPChunkLimits = .default
    /// The largest read from a publisher's connection, in bytes: the receive buffer grows to it when reads fill
    /// it (NIO's adaptive allocator, from 4 KiB) and shrinks after a run of short reads. A 720p30 stream at
    /// 3 Mbit/s sends about 12 KB a frame and a keyframe ten times that, so at 8 KiB a frame takes two reads and a
    /// keyframe a dozen.
    public var ingestReadBytes: Int = 8 << 10
    /// Whether an ingest message that arrives in one chunk is copied out of the read buffer rather than sliced.
    /// Copied by default: in a side-by-side run (BENCHMARKS.md, run H) slices saved no CPU that the run could tell
    /// from noise, and cost 0.19 against 0.12 MiB per stream at 50 streams (the receive buffer pool of each
    /// connection grows while slices of earlier reads are still queued).
    public var ingestCopiesPayloads = true
    /// Bytes a target may fall behind before the relay drops its video up to the next keyframe.
    public var targetQueueBytes: Int = 16 << 20
    /// Media time a target may fall behind before the relay drops its video up to the next keyframe.
    public var targetQueueDuration: Duration = .seconds(10)
    /// How long a target may stay behind (dropping) before it is disconnected and restarted.
    public var targetMaxBehind: Duration = .seconds(20)
    /// The kernel send buffer of each target connection. Left to itself Linux grows it to 4 MiB, which at 3 Mbit/s
    /// hides ten seconds of stale media from the relay's queue, where dropping is GOP-aware; bounded, a slow target
    /// shows up as queue growth within a second.
    public var targetSendBufferBytes: Int? = 512 << 10
    /// When the current GOP is kept for targets that join or rejoin, so they start at once.
    public var gopCache: GOPCachePolicy = .joining
    /// Most bytes of the current GOP kept; a larger GOP is not cached.
    public var gopCacheBytes: Int = 16 << 20
    /// How streams with `preview.enabled` are packaged for browsers (HLS directory, buffer bounds).
    public var preview = PreviewConfiguration()
    public var reconnectInitial: Duration = .milliseconds(500)
    public var reconnectMaximum: Duration = .seconds(30)
    /// Longest a target may take to connect, handshake and accept the publish.
    public var targetConnectTimeout: Duration = .seconds(10)
    /// Longest the relay waits, after a publisher ends, for targets to send what they hold.
    public var drainTimeout: Duration = .seconds(5)
    /// Most RTMP connections (publishers and would-be publishers) at once.
    public var maxConnections: Int = 256
    /// Longest a connection may take from TCP accept to an accepted or refused `publish`.
    public var sessionSetupTimeout: Duration = .seconds(15)
    /// A publisher that sends nothing for this long is dropped.
    public var publisherIdleTimeout: Duration = .seconds(10)
    /// Whether a new publisher with a valid key takes over a stream that already has one (an encoder that
    /// reconnects before the relay noticed its old connection died). When false, it is refused.
    public var publisherTakeover = true
    /// After SIGTERM, how long a live publisher may go on before the relay ends the stream itself.
    public var shutdownGrace: Duration = .seconds(30)
    /// Proxies whose PROXY protocol header is believed (the gateway): a connection from these ranges may start with
    /// one, and the client it names is the publisher's address in logs, stats and the webhook. Empty: nobody's.
    public var proxyProtocolFrom: [IPRange] = []
    /// The certificate for encoders that publish with `rtmps://` straight to the relay (not through the gateway,
    /// which terminates TLS itself), or `nil` for `rtmp://` only. `rtmp://` works on the same port either way.
    public var tls: IngestTLSConfiguration?

    public init(host: String = "0.0.0.0", port: Int = 1935, streams: [StreamConfiguration]) {
        self.host = host
        self.port = port
        self.streams = streams
    }

    /// One stream named `default`, as `liverelay relay` runs it from flags.
    public init(
        host: String = "0.0.0.0",
        port: Int = 1935,
        app: String = "live",
        streamKey: Secret,
        targets: [PushTargetConfiguration] = []
    ) {
        self.init(
            host: host,
            port: port,
            streams: [StreamConfiguration(name: "default", app: app, authorization: .key(streamKey), targets: targets)]
        )
    }

    /// Checks what a parser cannot: names, keys, unique targets, and that no two streams share an app and key.
    public func validate() throws(RelayConfigurationError) {
        guard (0...65535).contains(self.port) else {
            throw .invalid("port \(self.port) is not a port number")
        }
        guard !self.streams.isEmpty else {
            throw .invalid("no stream is configured")
        }
        var names = Set<String>()
        for stream in self.streams {
            try stream.validate()
            guard names.insert(stream.name).inserted else {
                throw .invalid("stream name '\(stream.name)' is used twice")
            }
        }
        // Two streams on one app need different keys, or a publisher could not be told apart.
        for (index, stream) in self.streams.enumerated() {
            for other in self.streams[(index + 1)...] where other.app == stream.app {
                switch (stream.authorization, other.authorization) {
                case (.key(let a), .key(let b)) where a.matches(b.revealed):
                    throw .invalid("streams '\(stream.name)' and '\(other.name)' share app '\(stream.app)' and key")
                case (.webhook, _), (_, .webhook):
                    throw .invalid(
                        "stream '\(stream.name)' or '\(other.name)' uses a webhook on app '\(stream.app)', "
                            + "which another stream shares: give a webhook stream its own app"
                    )
                default:
                    continue
                }
            }
        }
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 63
            && name.utf8.allSatisfy {
                $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || (48...57).contains($0) || (65...90).contains($0)
                    || (97...122).contains($0)
            }
    }
}

// MARK: - YAML: LiveStreams and Secrets, as applied to a cluster

extension RelayConfiguration {
    /// Reads the streams from YAML: one or many `LiveStream` documents and the `Secret` documents they reference,
    /// separated by `---`, exactly as they would be applied to a cluster; or from their JSON form (one document or
    /// an array), which the operator writes into a relay's ConfigMap and which is read without the YAML parser.
    ///
    /// The documents are decoded and validated by LiveStreamModel's ``StreamFile``, as local mode and the operator
    /// decode and validate them: the same defaults (the ingest key in the Secret `<name>-stream-key`, key `streamKey`,
    /// when `spec.ingest.streamKeySecretRef` is absent) and the same errors, naming the document and the field. A
    /// Secret reference resolves to a `Secret` document of the stream's namespace in the same text first, then to a
    /// file under `secretsDirectory` laid out as Kubernetes mounts Secrets (`<dir>/<secret>/<key>`), so the same YAML
    /// runs in a cluster, in a pod and on a laptop. Keys are read with ``StreamKey/normalized(_:)``, as everywhere.
    public static func streams(
        yaml text: String,
        source: String,
        secretsDirectory: String
    ) throws(RelayConfigurationError) -> [StreamConfiguration] {
        let file: StreamFile
        do {
            file = try StreamFile.parse(yaml: text, source: source)
        } catch {
            throw .invalid(error.description)
        }
        guard !file.liveStreams.isEmpty else {
            throw .invalid("\(source) holds no LiveStream")
        }
        var streams: [StreamConfiguration] = []
        for stream in file.liveStreams {
            streams.append(try Self.stream(stream, in: file, source: source, secretsDirectory: secretsDirectory))
        }
        return streams
    }

    /// One validated LiveStream as the relay serves it, its Secret references resolved.
    private static func stream(
        _ stream: LiveStream,
        in file: StreamFile,
        source: String,
        secretsDirectory: String
    ) throws(RelayConfigurationError) -> StreamConfiguration {
        let name = stream.metadata.name
        let spec = stream.spec

        func resolve(
            _ ref: LiveStreamSpec.SecretKeySelector,
            field: String,
            what: String
        ) throws(RelayConfigurationError) -> Secret {
            let what = "\(what) of stream '\(name)'"
            if let secret = file.secret(ref.name, namespace: stream.id.namespace) {
                guard let value = secret.value(ref.key) else {
                    throw .invalid("the \(what) (\(field)): Secret \(ref.name) in \(source) has no key \(ref.key)")
                }
                guard !value.isEmpty else {
                    throw .invalid("the \(what) (\(field)): Secret \(ref.name), key \(ref.key), in \(source) is empty")
                }
                return Secret(value)
            }
            let path = URL(fileURLWithPath: secretsDirectory).appendingPathComponent(ref.name)
                .appendingPathComponent(ref.key).path
            return try readSecretFile(path, what: "\(what) (\(field): Secret \(ref.name), key \(ref.key))")
        }

        let authorization: StreamAuthorization
        if let webhook = spec.ingest.webhook {
            let seconds = webhook.timeoutSeconds ?? LiveStreamSpec.Webhook.defaultTimeoutSeconds
            authorization = .webhook(url: webhook.url, timeout: .milliseconds(Int64(seconds * 1000)))
        } else {
            let ref = spec.streamKeySecret(streamName: name)
            // Absent, the reference defaults as the operator and local mode default it.
            let field = "spec.ingest.streamKeySecretRef" + (spec.ingest.streamKeySecretRef == nil ? ", defaulted" : "")
            authorization = .key(try resolve(ref, field: field, what: "ingest stream key"))
        }
        var targets: [PushTargetConfiguration] = []
        for (index, target) in spec.targets.enumerated() {
            let field = "spec.targets[\(index)]"
            let url: RTMPURL
            do {
                url = try RTMPURL(parsing: target.url)
            } catch {
                throw .invalid("stream '\(name)', target '\(target.name)' (\(field).url): \(error)")
            }
            var key: Secret?
            if let ref = target.streamKeySecretRef {
                key = try resolve(
                    ref,
                    field: "\(field).streamKeySecretRef",
                    what: "stream key of target '\(target.name)'"
                )
            }
            targets.append(
                PushTargetConfiguration(name: target.name, url: url, streamKey: key, enabled: target.enabled)
            )
        }
        let rules = IngestRules(
            maxKeyframeInterval: spec.rules?.maxKeyframeIntervalSeconds.map { .milliseconds(Int64($0 * 1000)) }
        )
        return StreamConfiguration(
            name: name,
            app: spec.ingest.app,
            authorization: authorization,
            targets: targets,
            rules: rules,
            previewEnabled: spec.preview.enabled
        )
    }

    /// Reads a YAML file of LiveStreams (see ``streams(yaml:source:secretsDirectory:)``) into a configuration.
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
        var configuration = RelayConfiguration(
            streams: try Self.streams(yaml: text, source: path, secretsDirectory: secretsDirectory)
        )
        try apply(&configuration)
        try configuration.validate()
        return configuration
    }
}

/// Reads a secret from a file, without the whitespace and line breaks around it (``StreamKey/normalized(_:)``; as
/// `echo key > file` writes it).
public func readSecretFile(_ path: String, what: String) throws(RelayConfigurationError) -> Secret {
    let text: String
    do {
        text = try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        throw .invalid("cannot read the \(what) from \(path): \(error.localizedDescription)")
    }
    let trimmed = StreamKey.normalized(text)
    guard !trimmed.isEmpty else {
        throw .invalid("the \(what) in \(path) is empty")
    }
    return Secret(trimmed)
}
