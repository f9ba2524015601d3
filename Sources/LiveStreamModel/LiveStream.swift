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
import Yams

/// A `LiveStream` as a document: what local mode reads from its file. The operator reads the same spec and status
/// from the API server, with the full Kubernetes metadata around them.
public struct LiveStream: Codable, Hashable, Sendable {
    public struct Metadata: Codable, Hashable, Sendable {
        public var name: String
        public var namespace: String?
        public var creationTimestamp: String?
        public var generation: Int64?
        public var labels: [String: String]?

        public init(name: String, namespace: String? = nil, creationTimestamp: String? = nil) {
            self.name = name
            self.namespace = namespace
            self.creationTimestamp = creationTimestamp
        }
    }

    public var apiVersion: String
    public var kind: String
    public var metadata: Metadata
    public var spec: LiveStreamSpec
    public var status: LiveStreamStatus?

    public init(metadata: Metadata, spec: LiveStreamSpec, status: LiveStreamStatus? = nil) {
        self.apiVersion = LiveStreamResource.apiVersion
        self.kind = LiveStreamResource.kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    /// Namespace (`default` when the document names none, as `kubectl apply` would) and name.
    public var id: StreamID {
        StreamID(namespace: self.metadata.namespace ?? "default", name: self.metadata.name)
    }
}

/// A Kubernetes `Secret` document: `stringData` as text, `data` as base64. The values are secrets: this type never
/// prints them.
public struct SecretDocument: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var namespace: String
    private var values: [String: String]

    public init(name: String, namespace: String = "default", values: [String: String]) {
        self.name = name
        self.namespace = namespace
        self.values = values
    }

    /// The value of `key`, without the whitespace and line breaks around it (``StreamKey/normalized(_:)``), as
    /// `echo key | kubectl create secret --from-file` leaves one.
    public func value(_ key: String) -> String? { self.values[key] }

    public var keys: [String] { self.values.keys.sorted() }

    public var description: String {
        "Secret \(self.namespace)/\(self.name) (keys: \(self.keys.joined(separator: ", ")))"
    }
}

/// An error in a streams file: which document, and what is wrong with it.
public struct StreamFileError: Error, Hashable, Sendable, CustomStringConvertible {
    public var source: String
    /// 1-based, as a person counts the `---`-separated documents; `nil` for the file as a whole.
    public var document: Int?
    public var message: String

    public init(source: String, document: Int?, message: String) {
        self.source = source
        self.document = document
        self.message = message
    }

    public var description: String {
        if let document {
            return "\(self.source), document \(document): \(self.message)"
        }
        return "\(self.source): \(self.message)"
    }
}

/// A file of `LiveStream` and `Secret` documents, exactly as they would be applied to a cluster.
public struct StreamFile: Sendable {
    public var liveStreams: [LiveStream]
    public var secrets: [SecretDocument]

    public init(liveStreams: [LiveStream], secrets: [SecretDocument]) {
        self.liveStreams = liveStreams
        self.secrets = secrets
    }

    /// The Secret `name` in `namespace`.
    public func secret(_ name: String, namespace: String) -> SecretDocument? {
        self.secrets.first { $0.name == name && $0.namespace == namespace }
    }

    /// Parses the documents: every `LiveStream` is decoded with the CRD's defaults and validated; a stream named
    /// twice, or a document that is neither kind, is an error that names the document. Other kinds are refused
    /// rather than ignored, so a typo in `kind` does not silently drop a stream.
    ///
    /// Text that is JSON (a document, or an array of documents, as the operator writes a relay's file) is read by
    /// ``parse(json:source:)``, without the YAML parser: JSON is YAML, so both read it alike, and the JSON decoder
    /// is the smaller part of the binary to run. Text that starts like JSON but is not JSON (YAML's flow style,
    /// `{kind: LiveStream, ...}`) is read as YAML.
    public static func parse(yaml text: String, source: String) throws(StreamFileError) -> StreamFile {
        if Self.looksLikeJSON(text) {
            switch Self.parseJSON(text, source: source) {
            case .success(let file): return file
            case .failure(.document(let error)): throw error
            case .failure(.notJSON): break
            }
        }
        var nodes: [Yams.Node] = []
        do {
            // `Parser.nextRoot` rather than `compose_all`, whose sequence ends quietly at a syntax error.
            let parser = try Parser(yaml: text)
            while let node = try parser.nextRoot() {
                nodes.append(node)
            }
        } catch {
            throw StreamFileError(source: source, document: nil, message: "not valid YAML: \(error)")
        }
        return try Self.assemble(
            nodes.map { node -> Document? in
                if case .scalar(let scalar) = node, scalar.string.isEmpty || scalar.tag == .init(.null) {
                    return nil  // an empty document, as a trailing `---` makes
                }
                return Document(
                    kind: node["kind"]?.string,
                    apiVersion: node["apiVersion"]?.string,
                    liveStream: { try YAMLDecoder().decode(LiveStream.self, from: node) },
                    secret: { fail throws(StreamFileError) in try Self.secret(node, fail: fail) }
                )
            },
            source: source
        )
    }

    /// One document of a file, read as far as the parser reads it: its kind, and how to decode it as either kind.
    struct Document {
        var kind: String?
        var apiVersion: String?
        var liveStream: () throws -> LiveStream
        var secret: ((String) -> StreamFileError) throws(StreamFileError) -> SecretDocument
    }

    /// The file from its documents, whichever parser read them: the kinds checked, every LiveStream decoded and
    /// validated, each stream named once. An empty document (`nil`) still counts in the documents' numbers.
    static func assemble(_ documents: [Document?], source: String) throws(StreamFileError) -> StreamFile {
        var file = StreamFile(liveStreams: [], secrets: [])
        var seen: [StreamID: Int] = [:]
        for (index, document) in documents.enumerated() {
            guard let document else { continue }
            let number = index + 1
            func fail(_ message: String) -> StreamFileError {
                StreamFileError(source: source, document: number, message: message)
            }
            let kind = document.kind
            let apiVersion = document.apiVersion
            switch kind {
            case LiveStreamResource.kind:
                guard apiVersion == LiveStreamResource.apiVersion else {
                    throw fail("apiVersion must be \(LiveStreamResource.apiVersion), got \(apiVersion ?? "none")")
                }
                let stream: LiveStream
                do {
                    stream = try document.liveStream()
                } catch {
                    throw fail(Self.describe(error))
                }
                let errors = stream.spec.validate(name: stream.metadata.name)
                if !errors.isEmpty {
                    throw fail(
                        "LiveStream \(stream.metadata.name) is invalid: "
                            + errors.map(\.description).joined(separator: "; ")
                    )
                }
                if let first = seen[stream.id] {
                    throw fail("LiveStream \(stream.id) is already defined in document \(first)")
                }
                seen[stream.id] = number
                file.liveStreams.append(stream)
            case "Secret":
                guard apiVersion == "v1" else {
                    throw fail("a Secret's apiVersion must be v1, got \(apiVersion ?? "none")")
                }
                file.secrets.append(try document.secret(fail))
            case nil:
                throw fail("no kind; expected LiveStream or Secret")
            case let other?:
                throw fail("kind \(other) is not supported here; expected LiveStream or Secret")
            }
        }
        return file
    }

    /// Reads and parses a file; see ``parse(yaml:source:)``.
    public static func load(path: String) throws(StreamFileError) -> StreamFile {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw StreamFileError(source: path, document: nil, message: "cannot read: \(error.localizedDescription)")
        }
        return try Self.parse(yaml: text, source: path)
    }

    private static func secret(
        _ node: Yams.Node,
        fail: (String) -> StreamFileError
    ) throws(StreamFileError) -> SecretDocument {
        guard let name = node["metadata"]?["name"]?.string, !name.isEmpty else {
            throw fail("a Secret needs metadata.name")
        }
        let namespace = node["metadata"]?["namespace"]?.string ?? "default"
        var values: [String: String] = [:]
        // `data` first, then `stringData` over it: the API server merges them the same way.
        if let data = node["data"]?.mapping {
            for (key, value) in data {
                guard let key = key.string, let encoded = value.string,
                    let decoded = Data(base64Encoded: encoded.filter { !$0.isWhitespace }),
                    let text = String(data: decoded, encoding: .utf8)
                else {
                    throw fail("Secret \(name): data.\(key.string ?? "?") is not base64-encoded UTF-8")
                }
                values[key] = StreamKey.normalized(text)
            }
        }
        if let stringData = node["stringData"]?.mapping {
            for (key, value) in stringData {
                guard let key = key.string, let text = value.string else {
                    throw fail("Secret \(name): every stringData value must be a string")
                }
                values[key] = StreamKey.normalized(text)
            }
        }
        return SecretDocument(name: name, namespace: namespace, values: values)
    }

    static func describe(_ error: any Error) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            var text = ""
            for key in keys {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text
        }
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing field \(path(context.codingPath + [key]))"
        case DecodingError.typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(Self.typeName(type))"
        case DecodingError.valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(Self.typeName(type)), found null"
        case DecodingError.dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: "\(type)"
        }
    }
}
