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
import LiveStreamModel
import RelayAPI

// The JSON the browser and the server exchange. Requests are decoded strictly: an unknown field, a wrong type or
// a missing field is a 400 naming the field, before anything is changed.

/// Any key, to list the keys an object has.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = "\(intValue)"
        self.intValue = intValue
    }
}

extension Decoder {
    /// Throws for the first key of this object that `Keys` does not list.
    func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws {
        try self.rejectUnknownKeys(Set(Keys.allCases.map(\.stringValue)))
    }

    /// Throws for the first key of this object that `known` does not hold.
    func rejectUnknownKeys(_ known: Set<String>) throws {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        if let unknown = container.allKeys.first(where: { !known.contains($0.stringValue) }) {
            throw DecodingError.dataCorrupted(
                .init(codingPath: self.codingPath + [unknown], debugDescription: "unknown field")
            )
        }
    }
}

struct SignInRequest: Decodable {
    var username: String
    var password: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case username, password
    }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.username = try container.decode(String.self, forKey: .username)
        self.password = try container.decode(String.self, forKey: .password)
    }
}

/// The name of the one member of a ``SwitchRequest``.
protocol SwitchField {
    static var name: String { get }
}

/// A request that sets one Boolean and nothing else (`{"live": true}`), decoded as strictly as every request.
struct SwitchRequest<Field: SwitchField>: Decodable {
    var value: Bool

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys([Field.name])
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        self.value = try container.decode(Bool.self, forKey: AnyCodingKey(stringValue: Field.name))
    }
}

/// `PUT /api/settings`: the user's "one stream live at a time".
enum OneLiveAtATimeField: SwitchField { static let name = "oneLiveAtATime" }
/// `POST /api/streams/NS/NAME/live`: Go Live (`true`) or Go Offline.
enum LiveField: SwitchField { static let name = "live" }
/// `PUT /api/streams/NS/NAME/targets/TARGET/enabled`: a target's switch.
enum EnabledField: SwitchField { static let name = "enabled" }

/// A stream as the edit form sends it, to create one (`namespace` optional: the user's own) or to change one
/// (`name` different from the current one renames it).
struct StreamEditRequest: Decodable {
    struct Target: Decodable {
        var name: String
        var url: String
        var enabled: Bool
        /// A new key; absent or empty keeps the key the target of this name has.
        var key: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, url, enabled, key
        }

        init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.name = try container.decode(String.self, forKey: .name)
            self.url = try container.decode(String.self, forKey: .url)
            self.enabled = try container.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
            self.key = try container.decodeIfPresent(String.self, forKey: .key)
        }
    }

    var namespace: String?
    var name: String
    var app: String?
    var preview: Bool?
    /// `spec.rules.maxKeyframeIntervalSeconds`: absent keeps it, `null` removes it.
    var maxKeyframeIntervalSeconds: Double??
    var targets: [Target]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case namespace, name, app, preview, maxKeyframeIntervalSeconds, targets
    }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.namespace = try container.decodeIfPresent(String.self, forKey: .namespace)
        self.name = try container.decode(String.self, forKey: .name)
        self.app = try container.decodeIfPresent(String.self, forKey: .app)
        self.preview = try container.decodeIfPresent(Bool.self, forKey: .preview)
        if container.contains(.maxKeyframeIntervalSeconds) {
            self.maxKeyframeIntervalSeconds = .some(
                try container.decodeIfPresent(Double.self, forKey: .maxKeyframeIntervalSeconds)
            )
        }
        self.targets = try container.decodeIfPresent([Target].self, forKey: .targets) ?? []
    }
}

struct SessionView: Encodable {
    var user: String
    var admin: Bool
    var namespace: String
    var csrfToken: String
    var oneLiveAtATime: Bool
}

/// A stream as the page shows it. Never a key: only whether a target has one.
struct StreamView: Encodable {
    struct Target: Encodable {
        var name: String
        var url: String
        var enabled: Bool
        var hasKey: Bool
        /// The relay's state, lower camel case (`pushing`, `backingOff`, `disabled`, `connecting`, `idle`,
        /// `stopped`); `nil` when no relay reports it.
        var state: String?
        var lastError: String?
        var nextRetrySeconds: Double?
        var attempt: Int?
    }

    struct Stats: Encodable {
        var bitrate: Double
        var frameRate: Double
        var width: Int?
        var height: Int?
        var videoCodec: String?
        var audioCodec: String?
        var keyframeIntervalSeconds: Double?
        var liveSeconds: Double?
    }

    struct Warning: Encodable {
        var rule: String
        var message: String
    }

    var namespace: String
    var name: String
    var phase: String
    var suspended: Bool
    var app: String
    var preview: Bool
    var maxKeyframeIntervalSeconds: Double?
    var ingestURL: String?
    var previewURL: String?
    /// The stream's go-live page (see ``ConsoleServer/Configuration/goLiveBase``).
    var goLiveURL: String?
    var conditions: [String]
    var targets: [Target]
    var stats: Stats?
    var warnings: [Warning]

    init(_ stream: ConsoleStream, goLiveBase: String? = nil) {
        let resource = stream.resource
        if let goLiveBase {
            let base = goLiveBase.hasSuffix("/") ? String(goLiveBase.dropLast()) : goLiveBase
            let path = [resource.id.namespace, resource.id.name].map {
                $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? $0
            }
            self.goLiveURL = "\(base)/go-live/\(path[0])/\(path[1])"
        }
        let status = resource.status
        self.namespace = resource.id.namespace
        self.name = resource.id.name
        self.phase = (status?.phase ?? (resource.spec.suspend ? .suspended : .idle)).rawValue
        self.suspended = resource.spec.suspend
        self.app = resource.spec.ingest.app
        self.preview = resource.spec.preview.enabled
        self.maxKeyframeIntervalSeconds = resource.spec.rules?.maxKeyframeIntervalSeconds
        self.ingestURL = status?.ingestURL
        self.previewURL = resource.spec.preview.enabled ? status?.previewURL : nil
        self.conditions = (status?.conditions ?? []).filter { $0.status != .true && $0.type == "Ready" }.map(\.message)
        let relayTargets = Dictionary(
            (stream.relay?.targets ?? []).map { ($0.name, $0) },
            uniquingKeysWith: { first, _ in first }
        )
        let statusTargets = Dictionary(
            (status?.targets ?? []).map { ($0.name, $0) },
            uniquingKeysWith: { first, _ in first }
        )
        self.targets = resource.spec.targets.map { target in
            var view = Target(
                name: target.name,
                url: target.url,
                enabled: target.enabled,
                hasKey: target.streamKeySecretRef != nil
            )
            if let relay = relayTargets[target.name] {
                view.state = relay.state
                view.lastError = relay.lastError
                view.nextRetrySeconds = relay.nextRetrySeconds
                view.attempt = relay.attempt
            } else if let reported = statusTargets[target.name] {
                view.state = reported.state.prefix(1).lowercased() + reported.state.dropFirst()
                view.lastError = reported.lastError
            } else if !target.enabled {
                view.state = "disabled"
            }
            return view
        }
        if let relay = stream.relay, relay.state == "live", let ingest = relay.ingest {
            self.stats = Stats(
                bitrate: ingest.bitrate,
                frameRate: ingest.frameRate,
                width: ingest.width,
                height: ingest.height,
                videoCodec: ingest.videoCodec,
                audioCodec: ingest.audioCodec,
                keyframeIntervalSeconds: ingest.keyframeIntervalSeconds,
                liveSeconds: relay.publisher?.liveSeconds
            )
        }
        self.warnings = (stream.relay?.warnings ?? []).map { Warning(rule: $0.rule, message: $0.message) }
    }
}

struct FieldErrorView: Encodable {
    var field: String
    var message: String
}

struct ErrorView: Encodable {
    var error: String
    var fields: [FieldErrorView]?
}
