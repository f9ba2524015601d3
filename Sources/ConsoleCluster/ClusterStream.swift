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

public import LiveStreamModel

/// Who is asking: a signed-in console user, as the Console module's session knows them.
///
/// Ownership is by namespace: a user's streams are the LiveStreams in the user's namespace. An admin sees and
/// changes the streams of every namespace, but reveals only the keys of streams in their own namespace.
public struct ConsoleViewer: Sendable, Hashable, CustomStringConvertible {
    public var username: String
    /// The namespace whose LiveStreams are this user's.
    public var namespace: String
    public var isAdmin: Bool

    public init(username: String, namespace: String, isAdmin: Bool = false) {
        self.username = username
        self.namespace = namespace
        self.isAdmin = isAdmin
    }

    /// Whether this user may see and change the streams of `namespace`.
    public func canAccess(namespace: String) -> Bool {
        self.isAdmin || namespace == self.namespace
    }

    /// Whether the stream `id` is this user's own (in their namespace): only the owner may reveal its key.
    public func owns(_ id: StreamID) -> Bool {
        id.namespace == self.namespace
    }

    public var description: String {
        "\(self.username) (namespace \(self.namespace)\(self.isAdmin ? ", admin" : ""))"
    }
}

/// A LiveStream as the console shows it: the spec and the status, and never a key.
///
/// The spec names the Secrets that hold the ingest key and each target's key (`streamKeySecretRef`), never their
/// values; a target whose `streamKeySecretRef` is set has a key. ``resourceVersion`` is what an edit passes back as
/// `expectedResourceVersion`, so an edit made on a stale page is refused instead of overwriting a newer one.
public struct ClusterStream: Sendable, Hashable {
    public var id: StreamID
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int64?
    public var creationTimestamp: String?
    /// Set while the stream is being deleted (its finalizer still runs).
    public var deletionTimestamp: String?
    /// The name people see (annotation `liverelay.io/display-name`); `nil` shows ``id``'s name.
    public var displayName: String?
    public var spec: LiveStreamSpec
    public var status: LiveStreamStatus?

    public init(
        id: StreamID,
        uid: String? = nil,
        resourceVersion: String? = nil,
        generation: Int64? = nil,
        creationTimestamp: String? = nil,
        deletionTimestamp: String? = nil,
        displayName: String? = nil,
        spec: LiveStreamSpec,
        status: LiveStreamStatus? = nil
    ) {
        self.id = id
        self.uid = uid
        self.resourceVersion = resourceVersion
        self.generation = generation
        self.creationTimestamp = creationTimestamp
        self.deletionTimestamp = deletionTimestamp
        self.displayName = displayName
        self.spec = spec
        self.status = status
    }

    /// `spec.suspend` is false: the stream takes publishers ("live" in the console's Go Live sense).
    public var isOnline: Bool { !self.spec.suspend }
}

/// The JSON a browser gets: `namespace`, `name`, `displayName`, `resourceVersion`, `generation`,
/// `creationTimestamp`, `deletionTimestamp`, `spec` (Secret names, never values) and `status`.
extension ClusterStream: Encodable {
    private enum CodingKeys: String, CodingKey {
        case namespace, name, displayName, resourceVersion, generation, creationTimestamp, deletionTimestamp, spec
        case status
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id.namespace, forKey: .namespace)
        try container.encode(self.id.name, forKey: .name)
        try container.encodeIfPresent(self.displayName, forKey: .displayName)
        try container.encodeIfPresent(self.resourceVersion, forKey: .resourceVersion)
        try container.encodeIfPresent(self.generation, forKey: .generation)
        try container.encodeIfPresent(self.creationTimestamp, forKey: .creationTimestamp)
        try container.encodeIfPresent(self.deletionTimestamp, forKey: .deletionTimestamp)
        try container.encode(self.spec, forKey: .spec)
        try container.encodeIfPresent(self.status, forKey: .status)
    }
}

/// What an edit does with one target's stream key.
///
/// The value of ``set(_:)`` is a secret: ``description`` never shows it.
public enum TargetKeyChange: Sendable, Hashable, CustomStringConvertible {
    /// Keep the target's key as it is (none for a new target).
    case keep
    /// Store this key (written to a new Secret the stream owns; the old one is deleted once the edit is applied).
    case set(String)
    /// The target has no key any more (its URL carries everything).
    case remove

    public var description: String {
        switch self {
        case .keep: "keep"
        case .set: "set(***)"
        case .remove: "remove"
        }
    }
}

/// A stream as a person edits it: a new stream, or the whole of an existing one.
///
/// The store fills in what a person does not edit: the ingest key's Secret (`spec.ingest.streamKeySecretRef`) and
/// webhook are kept as they are (the operator generates the key of a new stream), and each target's
/// `streamKeySecretRef` follows from ``targetKeys``: a new key goes to a new Secret; a kept key stays in the Secret
/// the target's `streamKeySecretRef` names when that is one of the stream's targets' Secrets now (so a target
/// renamed in a spec as read keeps its key), else in the Secret of the target of the same name, or of its name
/// in ``renamedTargets``; any other Secret name is dropped, so an edit cannot point a target at an arbitrary
/// Secret. On an update, `spec.suspend` is kept as it is: Go Live and Go Offline are
/// ``KubernetesStreamStore/setLive(_:live:oneLiveAtATime:force:for:)``.
public struct StreamDraft: Sendable, Hashable, CustomStringConvertible {
    /// The LiveStream's name (a DNS label of at most 60 characters); an update must name the stream it updates.
    public var name: String
    /// The name people see; `nil` or empty for none. At most ``StreamDraft/maxDisplayNameLength`` characters.
    public var displayName: String?
    public var spec: LiveStreamSpec
    /// By target name (as in ``spec``): what happens to that target's key. A target not named keeps its key.
    public var targetKeys: [String: TargetKeyChange]
    /// New target name → the name it had, so that a renamed target keeps its key.
    public var renamedTargets: [String: String]

    /// The longest display name taken.
    public static let maxDisplayNameLength = 100
    /// The longest target key taken (IVS's, YouTube's and Twitch's are far shorter).
    public static let maxTargetKeyLength = 1024

    public init(
        name: String,
        displayName: String? = nil,
        spec: LiveStreamSpec,
        targetKeys: [String: TargetKeyChange] = [:],
        renamedTargets: [String: String] = [:]
    ) {
        self.name = name
        self.displayName = displayName
        self.spec = spec
        self.targetKeys = targetKeys
        self.renamedTargets = renamedTargets
    }

    public var description: String {
        let targets = self.spec.targets.map { "\($0.name): \(self.targetKeys[$0.name] ?? .keep)" }
        return "StreamDraft(\(self.name), targets: [\(targets.joined(separator: ", "))])"
    }
}

/// One change to the streams a viewer sees, from the store's one watch of LiveStreams.
public enum StreamChange: Sendable, Hashable {
    /// The stream is new, changed, or seen again (a relist, or the snapshot a subscription starts with).
    case upserted(ClusterStream)
    /// The stream is gone.
    case deleted(StreamID)

    public var id: StreamID {
        switch self {
        case .upserted(let stream): stream.id
        case .deleted(let id): id
        }
    }
}

/// What Go Live or Go Offline did.
public struct GoLiveResult: Sendable, Hashable {
    /// The stream as written.
    public var stream: ClusterStream
    /// The user's other streams that were taken offline ("one stream live at a time").
    public var suspended: [StreamID]

    public init(stream: ClusterStream, suspended: [StreamID]) {
        self.stream = stream
        self.suspended = suspended
    }
}
