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
public import LiveStreamModel
import Yams

/// Edits a streams file (the YAML of `liverelay local -f`) one document at a time: a changed LiveStream or Secret
/// document is rewritten, every other document (and its comments) is kept as it was, and the result is checked with
/// `StreamFile.parse` before anyone writes it, so an invalid edit never reaches the file.
public struct StreamFileEditor: Sendable {
    /// One `---`-separated document: its text, and what it is when it is a LiveStream or a Secret.
    private struct Document: Sendable {
        enum Kind: Hashable, Sendable {
            case liveStream(StreamID)
            case secret(StreamID)
            case other
        }

        var text: String
        var kind: Kind
    }

    private var documents: [Document]
    /// Where the file is, for messages.
    public let source: String

    /// Splits `text` into documents. A file that does not parse at all is refused.
    public init(text: String, source: String) throws(StreamFileError) {
        self.source = source
        _ = try StreamFile.parse(yaml: text, source: source)
        var chunks: [String] = []
        var current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "---" || line.hasPrefix("--- ") {
                chunks.append(current.joined(separator: "\n"))
                current = []
            } else {
                current.append(line)
            }
        }
        chunks.append(current.joined(separator: "\n"))
        self.documents = chunks.map { chunk in
            Document(text: chunk, kind: Self.kind(of: chunk))
        }
    }

    private static func kind(of text: String) -> Document.Kind {
        guard let node = try? Yams.compose(yaml: text), let kind = node["kind"]?.string,
            let name = node["metadata"]?["name"]?.string
        else {
            return .other
        }
        let id = StreamID(namespace: node["metadata"]?["namespace"]?.string ?? "default", name: name)
        switch kind {
        case LiveStreamResource.kind: return .liveStream(id)
        case "Secret": return .secret(id)
        default: return .other
        }
    }

    /// The file as it is now.
    public var text: String {
        var text = ""
        for (index, document) in self.documents.enumerated() {
            if index > 0 {
                text += "---\n"
            }
            text += document.text
            if index < self.documents.count - 1, !document.text.hasSuffix("\n"), !document.text.isEmpty {
                text += "\n"
            }
        }
        return text.hasSuffix("\n") ? text : text + "\n"
    }

    /// The file parsed and validated as local mode will read it; throws what local mode would refuse.
    public func validated() throws(StreamFileError) -> StreamFile {
        try StreamFile.parse(yaml: self.text, source: self.source)
    }

    /// Adds the stream, or replaces the document that holds it. Its status is not written.
    public mutating func setStream(_ stream: LiveStream) throws(ConsoleStoreError) {
        var stream = stream
        stream.status = nil
        stream.metadata.namespace = stream.id.namespace
        let text: String
        do {
            text = try YAMLEncoder().encode(stream)
        } catch {
            throw .unavailable("cannot write LiveStream \(stream.id): \(error)")
        }
        self.set(Document(text: text, kind: .liveStream(stream.id)))
    }

    /// Removes the stream's document; nothing when there is none.
    public mutating func removeStream(_ id: StreamID) {
        self.documents.removeAll { $0.kind == .liveStream(id) }
    }

    /// Adds the Secret, or replaces the document that holds it (values as `stringData`).
    public mutating func setSecret(
        _ name: String,
        namespace: String,
        values: [String: String]
    ) throws(ConsoleStoreError) {
        struct SecretYAML: Encodable {
            struct Metadata: Encodable {
                var name: String
                var namespace: String
            }
            var apiVersion = "v1"
            var kind = "Secret"
            var metadata: Metadata
            var stringData: [String: String]
        }
        let text: String
        do {
            text = try YAMLEncoder().encode(
                SecretYAML(metadata: .init(name: name, namespace: namespace), stringData: values)
            )
        } catch {
            throw .unavailable("cannot write Secret \(namespace)/\(name): \(error)")
        }
        self.set(Document(text: text, kind: .secret(StreamID(namespace: namespace, name: name))))
    }

    /// Removes the Secret's document; nothing when there is none.
    public mutating func removeSecret(_ name: String, namespace: String) {
        self.documents.removeAll { $0.kind == .secret(StreamID(namespace: namespace, name: name)) }
    }

    private mutating func set(_ document: Document) {
        if let index = self.documents.firstIndex(where: { $0.kind == document.kind }) {
            // The comment lines that head the document it replaces stay above it.
            let heading = self.documents[index].text.split(separator: "\n", omittingEmptySubsequences: false)
                .prefix { $0.hasPrefix("#") || $0.trimmingCharacters(in: .whitespaces).isEmpty }
            var replacement = document
            if heading.contains(where: { $0.hasPrefix("#") }) {
                replacement.text = heading.joined(separator: "\n") + "\n" + document.text
            }
            self.documents[index] = replacement
        } else {
            // After the last document with content, so a trailing `---` stays trailing.
            if let last = self.documents.last, last.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
                self.documents.count > 1
            {
                self.documents.insert(document, at: self.documents.count - 1)
            } else if self.documents.count == 1,
                self.documents[0].text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            {
                self.documents[0] = document
            } else {
                self.documents.append(document)
            }
        }
    }
}
