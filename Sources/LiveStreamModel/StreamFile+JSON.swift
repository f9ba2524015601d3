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

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// The JSON form of a streams file, read with FoundationEssentials' `JSONDecoder` and nothing of Yams: the operator
// writes a relay's LiveStream as JSON, and a relay that reads it so never runs the YAML parser, whose scalar
// resolution is Foundation's `NSRegularExpression` (ICU). What a relay runs stays resident (BENCHMARKS.md, "Relay
// memory").

extension StreamFile {
    /// Parses JSON: one document (an object), or an array of documents, each a `LiveStream` or a `Secret` as
    /// `kubectl apply -f` takes them; `null` entries are skipped as YAML's empty documents are. Decoded, validated
    /// and refused exactly as ``parse(yaml:source:)`` does, with the same messages; a document's number is its
    /// 1-based place in the array.
    public static func parse(json text: String, source: String) throws(StreamFileError) -> StreamFile {
        switch Self.parseJSON(text, source: source) {
        case .success(let file): return file
        case .failure(.document(let error)): throw error
        case .failure(.notJSON(let message)):
            throw StreamFileError(source: source, document: nil, message: "not valid JSON: \(message)")
        }
    }

    enum JSONFailure: Error {
        /// The text is not JSON (or its root is neither an object nor an array): the YAML parser may still read it.
        case notJSON(String)
        /// The text is JSON and a document in it is wrong.
        case document(StreamFileError)
    }

    /// Whether the text's first character other than white space opens a JSON object or array.
    static func looksLikeJSON(_ text: String) -> Bool {
        Self.firstByte(text).map { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "[") } ?? false
    }

    private static func firstByte(_ text: String) -> UInt8? {
        text.utf8.first { byte in
            byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") && byte != UInt8(ascii: "\n")
                && byte != UInt8(ascii: "\r")
        }
    }

    static func parseJSON(_ text: String, source: String) -> Result<StreamFile, JSONFailure> {
        let documents: [JSONDocument?]
        let decoder = JSONDecoder()
        let data = Data(text.utf8)
        do {
            if Self.firstByte(text) == UInt8(ascii: "[") {
                documents = try decoder.decode([JSONDocument?].self, from: data)
            } else {
                documents = [try decoder.decode(JSONDocument.self, from: data)]
            }
        } catch DecodingError.dataCorrupted(let context) {
            return .failure(.notJSON(context.underlyingError.map { "\($0)" } ?? context.debugDescription))
        } catch {
            return .failure(.notJSON(Self.describe(error)))
        }
        do {
            return .success(try Self.assemble(documents.map { $0?.document }, source: source))
        } catch {
            return .failure(.document(error))
        }
    }
}

/// One JSON document as it decodes: its kind, and the LiveStream or Secret it holds, or why it does not. Decoding
/// never fails past the kind, so that ``StreamFile/assemble(_:source:)`` reports what is wrong with the document
/// that has it, by number.
private struct JSONDocument: Decodable {
    var kind: String?
    var apiVersion: String?
    var liveStream: Result<LiveStream, any Error>?
    var secret: Result<SecretFields, any Error>?

    private enum CodingKeys: String, CodingKey {
        case kind, apiVersion
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.kind = try? container.decodeIfPresent(String.self, forKey: .kind)
        self.apiVersion = try? container.decodeIfPresent(String.self, forKey: .apiVersion)
        switch self.kind {
        case LiveStreamResource.kind: self.liveStream = Result { try LiveStream(from: decoder) }
        case "Secret": self.secret = Result { try SecretFields(from: decoder) }
        default: break
        }
    }

    var document: StreamFile.Document {
        StreamFile.Document(
            kind: self.kind,
            apiVersion: self.apiVersion,
            liveStream: { [liveStream] in
                guard let liveStream else { throw JSONDocumentError.notDecoded }
                return try liveStream.get()
            },
            secret: { [secret] fail throws(StreamFileError) in
                switch secret {
                case .success(let fields)?: return try fields.document(fail: fail)
                case .failure(let error)?: throw fail("a Secret: \(StreamFile.describe(error))")
                case nil: throw fail("a Secret: not decoded")
                }
            }
        )
    }
}

private enum JSONDocumentError: Error, CustomStringConvertible {
    case notDecoded
    var description: String { "not decoded" }
}

/// A `Secret` document's fields as JSON holds them: `data` as base64, `stringData` as text.
private struct SecretFields: Decodable {
    struct Metadata: Decodable {
        var name: String?
        var namespace: String?
    }
    var metadata: Metadata?
    var data: [String: String]?
    var stringData: [String: String]?

    func document(fail: (String) -> StreamFileError) throws(StreamFileError) -> SecretDocument {
        guard let name = self.metadata?.name, !name.isEmpty else {
            throw fail("a Secret needs metadata.name")
        }
        var values: [String: String] = [:]
        // `data` first, then `stringData` over it: the API server merges them the same way.
        for (key, encoded) in self.data ?? [:] {
            guard let decoded = Data(base64Encoded: encoded.filter { !$0.isWhitespace }),
                let text = String(validating: decoded, as: UTF8.self)
            else {
                throw fail("Secret \(name): data.\(key) is not base64-encoded UTF-8")
            }
            values[key] = StreamKey.normalized(text)
        }
        for (key, text) in self.stringData ?? [:] {
            values[key] = StreamKey.normalized(text)
        }
        return SecretDocument(name: name, namespace: self.metadata?.namespace ?? "default", values: values)
    }
}
