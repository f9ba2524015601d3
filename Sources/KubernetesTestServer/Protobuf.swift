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

/// Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), for the kinds kubectl
/// sends that way: `kubectl create namespace|secret|configmap` (kubectl 1.32) encode the typed object in protobuf.
///
/// The encoding (https://kubernetes.io/docs/reference/using-api/api-concepts/#protobuf-encoding) is the four bytes
/// `k8s\0`, then a `runtime.Unknown` message: field 1 `TypeMeta` (`apiVersion` = 1, `kind` = 2), field 2 the raw
/// bytes of the typed object's message from `k8s.io/api`'s `generated.proto`, field 3 `contentEncoding`, field 4
/// `contentType`. The typed messages are decoded into the JSON the rest of the server works on, with the fields
/// named below; an unknown field number is skipped, as protobuf readers do.
///
/// The wire reader is written by hand, on purpose: the only protobuf library within reach, swift-protobuf, would
/// need a new dependency in the package manifest (shared by every target) and Swift types generated from
/// `generated.proto` with `protoc` and its plugin, to read three messages whose fields fit in a page. What is here
/// is the wire format's two primitives, varints and length-delimited fields, and nothing else.
enum KubernetesProtobuf {
    static let magic: [UInt8] = [0x6B, 0x38, 0x73, 0x00]

    /// Decodes an envelope into JSON; kinds other than Namespace, Secret and ConfigMap are 415.
    static func decode(_ body: Data) throws(APIError) -> JSON {
        let bytes = [UInt8](body)
        guard bytes.count >= 4, Array(bytes[0..<4]) == Self.magic else {
            throw APIError.badRequest("the protobuf body does not start with the Kubernetes magic number k8s\\0")
        }
        do {
            var apiVersion = ""
            var kind = ""
            var raw: [UInt8] = []
            var contentEncoding = ""
            try Reader.fields(bytes[4...]) { field, reader in
                switch field {
                case 1:
                    try Reader.fields(reader.bytes()) { field, reader in
                        switch field {
                        case 1: apiVersion = try reader.string()
                        case 2: kind = try reader.string()
                        default: try reader.skip()
                        }
                    }
                case 2: raw = Array(try reader.bytes())
                case 3: contentEncoding = try reader.string()
                default: try reader.skip()
                }
            }
            guard contentEncoding.isEmpty else {
                throw APIError(
                    code: 415,
                    reason: "UnsupportedMediaType",
                    message:
                        "the protobuf body has contentEncoding \(contentEncoding), which this test server does not read"
                )
            }
            var object: JSON
            switch (apiVersion, kind) {
            case ("v1", "Namespace"): object = try Self.namespace(raw[...])
            case ("v1", "Secret"): object = try Self.secret(raw[...])
            case ("v1", "ConfigMap"): object = try Self.configMap(raw[...])
            default:
                throw APIError(
                    code: 415,
                    reason: "UnsupportedMediaType",
                    message: "the body of the request was in an unknown format: application/vnd.kubernetes.protobuf: "
                        + "this test server decodes protobuf only for v1 Namespace, Secret and ConfigMap, "
                        + "not \(apiVersion.isEmpty ? "" : apiVersion + " ")\(kind.isEmpty ? "(no kind)" : kind)"
                )
            }
            object["apiVersion"] = .string(apiVersion)
            object["kind"] = .string(kind)
            return object
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.badRequest("the protobuf body cannot be read: \(error)")
        }
    }

    // MARK: k8s.io/api messages

    /// `ObjectMeta` (k8s.io/apimachinery/pkg/apis/meta/v1): name 1, generateName 2, namespace 3, labels 11 and
    /// annotations 12 (`map<string, string>`), finalizers 14.
    private static func objectMeta(_ bytes: ArraySlice<UInt8>) throws -> JSON {
        var metadata: [String: JSON] = [:]
        var labels: [String: JSON] = [:]
        var annotations: [String: JSON] = [:]
        var finalizers: [JSON] = []
        try Reader.fields(bytes) { field, reader in
            switch field {
            // Go's protobuf marshalling writes every string field, empty or not; JSON leaves the empty ones out.
            case 1: metadata["name"] = try Self.nonEmpty(reader.string())
            case 2: metadata["generateName"] = try Self.nonEmpty(reader.string())
            case 3: metadata["namespace"] = try Self.nonEmpty(reader.string())
            case 11:
                let (key, value) = try Self.mapEntry(reader.bytes())
                labels[key] = .string(String(decoding: value, as: UTF8.self))
            case 12:
                let (key, value) = try Self.mapEntry(reader.bytes())
                annotations[key] = .string(String(decoding: value, as: UTF8.self))
            case 14: finalizers.append(.string(try reader.string()))
            default: try reader.skip()
            }
        }
        if !labels.isEmpty { metadata["labels"] = .object(labels) }
        if !annotations.isEmpty { metadata["annotations"] = .object(annotations) }
        if !finalizers.isEmpty { metadata["finalizers"] = .array(finalizers) }
        return .object(metadata)
    }

    /// `Namespace`: metadata 1, spec 2 (`NamespaceSpec`: finalizers 1).
    private static func namespace(_ bytes: ArraySlice<UInt8>) throws -> JSON {
        var object: JSON = [:]
        try Reader.fields(bytes) { field, reader in
            switch field {
            case 1: object["metadata"] = try Self.objectMeta(reader.bytes())
            case 2:
                var finalizers: [JSON] = []
                try Reader.fields(reader.bytes()) { field, reader in
                    if field == 1 { finalizers.append(.string(try reader.string())) } else { try reader.skip() }
                }
                object["spec"] = finalizers.isEmpty ? [:] : ["finalizers": .array(finalizers)]
            default: try reader.skip()
            }
        }
        return object
    }

    /// `Secret`: metadata 1, data 2 (`map<string, bytes>`, base64 in JSON), type 3, stringData 4, immutable 5.
    private static func secret(_ bytes: ArraySlice<UInt8>) throws -> JSON {
        var object: JSON = [:]
        var data: [String: JSON] = [:]
        var stringData: [String: JSON] = [:]
        try Reader.fields(bytes) { field, reader in
            switch field {
            case 1: object["metadata"] = try Self.objectMeta(reader.bytes())
            case 2:
                let (key, value) = try Self.mapEntry(reader.bytes())
                data[key] = .string(Data(value).base64EncodedString())
            case 3: object["type"] = try Self.nonEmpty(reader.string())
            case 4:
                let (key, value) = try Self.mapEntry(reader.bytes())
                stringData[key] = .string(String(decoding: value, as: UTF8.self))
            case 5: object["immutable"] = .bool(try reader.varint() != 0)
            default: try reader.skip()
            }
        }
        if !data.isEmpty { object["data"] = .object(data) }
        if !stringData.isEmpty { object["stringData"] = .object(stringData) }
        return object
    }

    /// `ConfigMap`: metadata 1, data 2 (`map<string, string>`), binaryData 3 (`map<string, bytes>`), immutable 4.
    private static func configMap(_ bytes: ArraySlice<UInt8>) throws -> JSON {
        var object: JSON = [:]
        var data: [String: JSON] = [:]
        var binaryData: [String: JSON] = [:]
        try Reader.fields(bytes) { field, reader in
            switch field {
            case 1: object["metadata"] = try Self.objectMeta(reader.bytes())
            case 2:
                let (key, value) = try Self.mapEntry(reader.bytes())
                data[key] = .string(String(decoding: value, as: UTF8.self))
            case 3:
                let (key, value) = try Self.mapEntry(reader.bytes())
                binaryData[key] = .string(Data(value).base64EncodedString())
            case 4: object["immutable"] = .bool(try reader.varint() != 0)
            default: try reader.skip()
            }
        }
        if !data.isEmpty { object["data"] = .object(data) }
        if !binaryData.isEmpty { object["binaryData"] = .object(binaryData) }
        return object
    }

    private static func nonEmpty(_ string: String) -> JSON? {
        string.isEmpty ? nil : .string(string)
    }

    /// A map entry: key 1, value 2, either may be absent (the empty string).
    private static func mapEntry(_ bytes: ArraySlice<UInt8>) throws -> (String, ArraySlice<UInt8>) {
        var key = ""
        var value: ArraySlice<UInt8> = []
        try Reader.fields(bytes) { field, reader in
            switch field {
            case 1: key = try reader.string()
            case 2: value = try reader.bytes()
            default: try reader.skip()
            }
        }
        return (key, value)
    }

    // MARK: Wire format

    struct WireError: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads one message's fields: a varint key (field number << 3 | wire type), then the value.
    struct Reader {
        private var remaining: ArraySlice<UInt8>
        private var wireType: UInt64 = 0

        init(_ bytes: ArraySlice<UInt8>) {
            self.remaining = bytes
        }

        /// Reads every field of the message in `bytes`.
        static func fields(_ bytes: ArraySlice<UInt8>, _ body: (Int, inout Reader) throws -> Void) throws {
            var reader = Reader(bytes)
            try reader.forEachField(body)
        }

        /// Calls `body` with each field's number; `body` reads the value (or skips it) through the reader.
        mutating func forEachField(_ body: (Int, inout Reader) throws -> Void) throws {
            while !self.remaining.isEmpty {
                let key = try self.readVarint()
                self.wireType = key & 7
                guard key >> 3 > 0 else { throw WireError(description: "field number 0") }
                try body(Int(key >> 3), &self)
            }
        }

        mutating func varint() throws -> UInt64 {
            guard self.wireType == 0 else {
                throw WireError(description: "expected a varint, wire type \(self.wireType)")
            }
            return try self.readVarint()
        }

        mutating func bytes() throws -> ArraySlice<UInt8> {
            guard self.wireType == 2 else {
                throw WireError(description: "expected a length-delimited field, wire type \(self.wireType)")
            }
            let length = try self.readVarint()
            guard length <= UInt64(self.remaining.count) else {
                throw WireError(description: "a field runs past the end")
            }
            let value = self.remaining.prefix(Int(length))
            self.remaining = self.remaining.dropFirst(Int(length))
            return value
        }

        mutating func string() throws -> String {
            String(decoding: try self.bytes(), as: UTF8.self)
        }

        /// Skips a field of any wire type but the deprecated groups.
        mutating func skip() throws {
            switch self.wireType {
            case 0: _ = try self.readVarint()
            case 1: try self.drop(8)
            case 2: _ = try self.bytes()
            case 5: try self.drop(4)
            default: throw WireError(description: "unsupported wire type \(self.wireType)")
            }
        }

        private mutating func drop(_ count: Int) throws {
            guard self.remaining.count >= count else { throw WireError(description: "a field runs past the end") }
            self.remaining = self.remaining.dropFirst(count)
        }

        private mutating func readVarint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while let byte = self.remaining.first {
                self.remaining = self.remaining.dropFirst()
                guard shift < 64 else { throw WireError(description: "a varint longer than 10 bytes") }
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            throw WireError(description: "a varint runs past the end")
        }
    }
}
