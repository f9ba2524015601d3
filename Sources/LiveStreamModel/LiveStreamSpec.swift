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

/// The `LiveStream` resource's group, version and names (`liverelay.io/v1alpha1`).
public enum LiveStreamResource {
    public static let group = "liverelay.io"
    public static let version = "v1alpha1"
    public static let apiVersion = "liverelay.io/v1alpha1"
    public static let kind = "LiveStream"
    public static let plural = "livestreams"
    /// The finalizer that releases a stream's port and gateway entry before the resource goes away.
    public static let finalizer = "liverelay.io/release-port"
}

/// What a `LiveStream` asks for: how encoders reach it, where it re-streams, preview, scaling, and whether it is on.
///
/// Decoding fills in the defaults of the CRD's schema for every field that is absent, so a spec read from a YAML file
/// (local mode) means the same as one the API server defaulted.
public struct LiveStreamSpec: Codable, Hashable, Sendable {
    /// A key in a `Secret` of the stream's namespace.
    public struct SecretKeySelector: Codable, Hashable, Sendable {
        public var name: String
        public var key: String

        public init(name: String, key: String) {
            self.name = name
            self.key = key
        }
    }

    /// An HTTP endpoint that decides whether a publish is allowed, instead of a stream key Secret.
    public struct Webhook: Codable, Hashable, Sendable {
        public var url: String
        /// How long the relay waits for the answer; ``defaultTimeoutSeconds`` when absent.
        public var timeoutSeconds: Double?

        public static let defaultTimeoutSeconds = 3.0

        public init(url: String, timeoutSeconds: Double? = nil) {
            self.url = url
            self.timeoutSeconds = timeoutSeconds
        }
    }

    public struct Ingest: Codable, Hashable, Sendable {
        /// The RTMP application: encoders publish to `rtmp://HOST:PORT/APP/KEY`.
        public var app: String
        /// Where the stream key is; generated (and owned by the stream) when the Secret does not exist. Absent: the
        /// key is in the Secret `<name>-stream-key`, key `streamKey`.
        public var streamKeySecretRef: SecretKeySelector?
        /// 0 allocates from the operator's (or local mode's) range; anything else asks for that port.
        public var port: Int
        /// CIDR blocks allowed to connect; everything else is refused by the gateway and the NetworkPolicy.
        public var allowedSourceRanges: [String]
        /// Authorization by webhook instead of a key.
        public var webhook: Webhook?

        public static let defaultApp = "live"
        public static let defaultAllowedSourceRanges = ["0.0.0.0/0", "::/0"]

        public init(
            app: String = Self.defaultApp,
            streamKeySecretRef: SecretKeySelector? = nil,
            port: Int = 0,
            allowedSourceRanges: [String] = Self.defaultAllowedSourceRanges,
            webhook: Webhook? = nil
        ) {
            self.app = app
            self.streamKeySecretRef = streamKeySecretRef
            self.port = port
            self.allowedSourceRanges = allowedSourceRanges
            self.webhook = webhook
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.app = try container.decodeIfPresent(String.self, forKey: .app) ?? Self.defaultApp
            self.streamKeySecretRef = try container.decodeIfPresent(SecretKeySelector.self, forKey: .streamKeySecretRef)
            self.port = try container.decodeIfPresent(Int.self, forKey: .port) ?? 0
            self.allowedSourceRanges =
                try container.decodeIfPresent([String].self, forKey: .allowedSourceRanges)
                ?? Self.defaultAllowedSourceRanges
            self.webhook = try container.decodeIfPresent(Webhook.self, forKey: .webhook)
        }
    }

    /// One place the relay re-streams to.
    public struct Target: Codable, Hashable, Sendable {
        /// Unique within the stream; it names the target in status, logs and metrics.
        public var name: String
        /// `rtmp://` or `rtmps://` server and application, without the key.
        public var url: String
        /// The target's stream key, appended to the URL's path.
        public var streamKeySecretRef: SecretKeySelector?
        public var enabled: Bool

        public init(name: String, url: String, streamKeySecretRef: SecretKeySelector? = nil, enabled: Bool = true) {
            self.name = name
            self.url = url
            self.streamKeySecretRef = streamKeySecretRef
            self.enabled = enabled
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.name = try container.decode(String.self, forKey: .name)
            self.url = try container.decode(String.self, forKey: .url)
            self.streamKeySecretRef = try container.decodeIfPresent(SecretKeySelector.self, forKey: .streamKeySecretRef)
            self.enabled = try container.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
        }
    }

    public struct Preview: Codable, Hashable, Sendable {
        public var enabled: Bool

        public init(enabled: Bool = true) {
            self.enabled = enabled
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.enabled = try container.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
        }
    }

    public struct Scaling: Codable, Hashable, Sendable {
        /// 0 lets the relay scale to zero when idle; 1 keeps it running. A relay serves one publisher, so it never
        /// runs more than one replica.
        public var minReplicas: Int
        /// How long the relay stays up without a connection before it scales to zero.
        public var idleSeconds: Int

        public static let defaultIdleSeconds = 60

        public init(minReplicas: Int = 0, idleSeconds: Int = Self.defaultIdleSeconds) {
            self.minReplicas = minReplicas
            self.idleSeconds = idleSeconds
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.minReplicas = try container.decodeIfPresent(Int.self, forKey: .minReplicas) ?? 0
            self.idleSeconds = try container.decodeIfPresent(Int.self, forKey: .idleSeconds) ?? Self.defaultIdleSeconds
        }
    }

    /// Ingest rules the relay enforces.
    public struct Rules: Codable, Hashable, Sendable {
        /// Longest allowed gap between keyframes; a publisher that exceeds it is told so in the log and the stats.
        public var maxKeyframeIntervalSeconds: Double?

        public init(maxKeyframeIntervalSeconds: Double? = nil) {
            self.maxKeyframeIntervalSeconds = maxKeyframeIntervalSeconds
        }
    }

    public var ingest: Ingest
    public var targets: [Target]
    public var preview: Preview
    public var scaling: Scaling
    public var rules: Rules?
    /// "Go offline": the relay is scaled to zero and the gateway refuses the stream's connections.
    public var suspend: Bool

    public init(
        ingest: Ingest = Ingest(),
        targets: [Target] = [],
        preview: Preview = Preview(),
        scaling: Scaling = Scaling(),
        rules: Rules? = nil,
        suspend: Bool = false
    ) {
        self.ingest = ingest
        self.targets = targets
        self.preview = preview
        self.scaling = scaling
        self.rules = rules
        self.suspend = suspend
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.ingest = try container.decodeIfPresent(Ingest.self, forKey: .ingest) ?? Ingest()
        self.targets = try container.decodeIfPresent([Target].self, forKey: .targets) ?? []
        self.preview = try container.decodeIfPresent(Preview.self, forKey: .preview) ?? Preview()
        self.scaling = try container.decodeIfPresent(Scaling.self, forKey: .scaling) ?? Scaling()
        self.rules = try container.decodeIfPresent(Rules.self, forKey: .rules)
        self.suspend = try container.decodeIfPresent(Bool.self, forKey: .suspend) ?? false
    }

    /// The Secret and key that hold the ingest stream key of the stream called `name`.
    public func streamKeySecret(streamName name: String) -> SecretKeySelector {
        self.ingest.streamKeySecretRef ?? SecretKeySelector(name: "\(name)-stream-key", key: "streamKey")
    }
}
