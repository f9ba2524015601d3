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

public import NIOCore

/// An AMF0 command message (message type 20; RTMP specification, section 7.1.1 and 7.2).
///
/// Every command is a name, a transaction id and a command object, followed by command-specific arguments:
/// `connect` carries its parameters in the command object, `publish` passes the stream key and publishing type as
/// arguments with a null command object, and `_result` answers the transaction id of the request.
public struct RTMPCommand: Hashable, Sendable {
    /// The command name, for example `connect`, `createStream`, `publish`, `_result` or `onStatus`.
    public var name: String
    /// Matches a response (`_result`, `_error`) to its request. Commands that expect no response use 0.
    public var transactionID: Double
    /// The command object: an ``AMF0Value/object(_:)`` for `connect` and its result, ``AMF0Value/null`` for most
    /// other commands.
    public var commandObject: AMF0Value
    /// The values after the command object.
    public var arguments: [AMF0Value]

    public init(name: String, transactionID: Double, commandObject: AMF0Value = .null, arguments: [AMF0Value] = []) {
        self.name = name
        self.transactionID = transactionID
        self.commandObject = commandObject
        self.arguments = arguments
    }

    /// Decodes the payload of a type-20 message.
    ///
    /// A payload that ends after the transaction id gets a ``AMF0Value/null`` command object: nothing in it could
    /// have differed, and rejecting it would only break odd but harmless peers.
    ///
    /// - Throws: ``RTMPError`` with code `malformedAMF` if the payload is not a sequence of complete AMF0 values, or
    ///   `malformedMessage` if it does not start with a name string and a transaction id number.
    public init(payload: ByteBuffer) throws {
        var payload = payload
        var values = try payload.readAMF0Values()[...]
        guard case .string(let name)? = values.popFirst() else {
            throw RTMPError.malformedMessage("AMF0 command does not start with a command name string")
        }
        guard case .number(let transactionID)? = values.popFirst() else {
            throw RTMPError.malformedMessage("AMF0 command \(name.debugDescription) has no transaction id number")
        }
        self.name = name
        self.transactionID = transactionID
        self.commandObject = values.popFirst() ?? .null
        self.arguments = Array(values)
    }

    /// Appends the command's AMF0 encoding to `buffer`.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeAMF0Value(.string(self.name))
        buffer.writeAMF0Value(.number(self.transactionID))
        buffer.writeAMF0Value(self.commandObject)
        for argument in self.arguments {
            buffer.writeAMF0Value(argument)
        }
    }

    /// The command's AMF0 encoding, ready to send as a type-20 message payload.
    public var payload: ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 128)
        self.encode(into: &buffer)
        return buffer
    }
}

/// An AMF0 data message (message type 18; RTMP specification, section 7.1.2): a plain sequence of AMF0 values.
///
/// Its main use is stream metadata, which comes in two forms. A publisher sends `"@setDataFrame", "onMetaData",
/// {…}`, asking the server to store the metadata; the server sends `"onMetaData", {…}` to each player. A relay that
/// re-publishes to another server is a publisher there, so it must send the `@setDataFrame` form: nginx-rtmp and
/// YouTube ignore a bare `onMetaData` from a publisher.
public struct RTMPDataMessage: Hashable, Sendable {
    /// The values in payload order.
    public var values: [AMF0Value]

    public init(values: [AMF0Value]) {
        self.values = values
    }

    /// Decodes the payload of a type-18 message.
    ///
    /// - Throws: ``RTMPError`` with code `malformedAMF` if the payload is not a sequence of complete AMF0 values.
    public init(payload: ByteBuffer) throws {
        var payload = payload
        self.values = try payload.readAMF0Values()
    }

    /// Appends the message's AMF0 encoding to `buffer`.
    public func encode(into buffer: inout ByteBuffer) {
        for value in self.values {
            buffer.writeAMF0Value(value)
        }
    }

    /// The message's AMF0 encoding, ready to send as a type-18 message payload.
    public var payload: ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        self.encode(into: &buffer)
        return buffer
    }

    /// The metadata object (an ``AMF0Value/ecmaArray(_:)`` as ffmpeg and OBS send it, or an
    /// ``AMF0Value/object(_:)``) of either `"@setDataFrame", "onMetaData", {…}` or `"onMetaData", {…}`; `nil` for any
    /// other data message.
    public var metadata: AMF0Value? {
        var values = self.values[...]
        if values.first == .string("@setDataFrame") {
            values = values.dropFirst()
        }
        guard values.popFirst() == .string("onMetaData"), let metadata = values.first else { return nil }
        switch metadata {
        case .object, .ecmaArray:
            return metadata
        case .number, .boolean, .string, .null, .undefined, .strictArray, .date, .xmlDocument, .typedObject:
            return nil
        }
    }

    /// The message a publisher sends to store `metadata` on the server: `"@setDataFrame", "onMetaData", metadata`.
    public static func setDataFrame(metadata: AMF0Value) -> RTMPDataMessage {
        RTMPDataMessage(values: ["@setDataFrame", "onMetaData", metadata])
    }

    /// The message a server sends to its players: `"onMetaData", metadata`.
    public static func onMetaData(_ metadata: AMF0Value) -> RTMPDataMessage {
        RTMPDataMessage(values: ["onMetaData", metadata])
    }
}
