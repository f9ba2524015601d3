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

import NIOCore

/// The client side of an RTMP publish session, as a push to a target runs it: `connect`, `releaseStream`,
/// `FCPublish`, `createStream`, `publish`, then media, then `FCUnpublish` and `deleteStream`.
///
/// A pure state machine. ``start()`` gives the first messages to send; each message from the server goes to
/// ``received(_:)``. Servers differ in what they answer: nginx-rtmp does not answer `releaseStream` or `FCPublish`,
/// YouTube and Twitch do, so the session never waits for those answers and matches `_result` by transaction id.
///
/// Error descriptions from a server are passed on with the stream key replaced by `***`, because some servers
/// echo the stream name.
public struct RTMPPublishClientStateMachine: Sendable {
    public struct Configuration: Sendable {
        /// The application, the first path segment of the target URL (`live2` for YouTube's ingest).
        public var app: String
        /// The URL the server sees as `tcUrl`: `rtmp://host:port/app`.
        public var tcURL: String
        /// The stream name, usually the target's stream key. Never logged.
        public var streamName: String
        /// The chunk size we write with once connected (section 5.4.1).
        public var chunkSize: UInt32 = 4096
        /// The `flashVer` we announce; ingest servers treat `FMLE/3.0` as a live encoder.
        public var flashVersion = "FMLE/3.0 (compatible; liverelay)"
        /// Whether to ask the server, in `connect`, for ``RTMPKeyframeRequest``s (a publisher that can make a
        /// keyframe on demand); each one that arrives is ``Action/keyframeRequested``.
        public var acceptsKeyframeRequests = false

        public init(app: String, tcURL: String, streamName: String) {
            self.app = app
            self.tcURL = tcURL
            self.streamName = streamName
        }
    }

    public enum Action: Sendable {
        case none
        case send([RTMPMessage])
        /// The server accepted the publish: media may flow on ``messageStreamID``.
        case publishing(send: [RTMPMessage])
        /// The server refused or failed; close the connection.
        case fail(RTMPError)
        /// The server asks for a keyframe (``RTMPKeyframeRequest``; only with
        /// ``Configuration/acceptsKeyframeRequests``).
        case keyframeRequested
    }

    private enum State: Sendable {
        case idle
        case connecting
        case creatingStream
        case publishing(streamID: UInt32)
        case started(streamID: UInt32)
        case closed
    }

    /// The commands ``received(_:)`` acts on; others are ignored, even malformed.
    private static let handledCommands: Set<String> = ["_result", "_error", "onStatus", "close"]

    private static let connectTransaction: Double = 1
    private static let createStreamTransaction: Double = 4

    private var state: State = .idle
    private let configuration: Configuration

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The message stream media is sent on, once publishing.
    public var messageStreamID: UInt32? {
        switch self.state {
        case .publishing(let id), .started(let id): id
        default: nil
        }
    }

    public var isPublishing: Bool {
        if case .started = self.state {
            return true
        }
        return false
    }

    /// The first messages of the session: our chunk size and `connect`.
    public mutating func start() -> [RTMPMessage] {
        precondition(self.isIdle, "start() called twice")
        self.state = .connecting
        var properties: [(key: String, value: AMF0Value)] = [
            (key: "app", value: .string(self.configuration.app)),
            (key: "type", value: .string("nonprivate")),
            (key: "flashVer", value: .string(self.configuration.flashVersion)),
            (key: "tcUrl", value: .string(self.configuration.tcURL)),
        ]
        if self.configuration.acceptsKeyframeRequests {
            properties.append((key: RTMPKeyframeRequest.connectProperty, value: .boolean(true)))
        }
        return [
            RTMPControlMessage.setChunkSize(self.configuration.chunkSize).message,
            RTMPCommand(
                name: "connect",
                transactionID: Self.connectTransaction,
                commandObject: .object(properties),
                arguments: []
            ).message(streamID: 0),
        ]
    }

    private var isIdle: Bool {
        if case .idle = self.state {
            return true
        }
        return false
    }

    public mutating func received(_ message: RTMPMessage) -> Action {
        guard message.type == .commandAMF0 || message.type == .commandAMF3 else {
            return .none
        }
        let command: RTMPCommand
        do {
            command = try RTMPCommand(message: message)
        } catch {
            // Servers send notifications the session does not need in shapes of their own (ffmpeg's listen mode
            // sends `onFCPublish` without a transaction id): only a malformed command the session acts on fails it.
            if let name = message.leadingAMF0String, !Self.handledCommands.contains(name) {
                return .none
            }
            return self.fail(error)
        }

        switch (self.state, command.name) {
        case (.connecting, "_result") where command.transactionID == Self.connectTransaction:
            self.state = .creatingStream
            let name = AMF0Value.string(self.configuration.streamName)
            return .send([
                RTMPCommand(name: "releaseStream", transactionID: 2, commandObject: .null, arguments: [name])
                    .message(streamID: 0),
                RTMPCommand(name: "FCPublish", transactionID: 3, commandObject: .null, arguments: [name])
                    .message(streamID: 0),
                RTMPCommand(
                    name: "createStream",
                    transactionID: Self.createStreamTransaction,
                    commandObject: .null,
                    arguments: []
                )
                .message(streamID: 0),
            ])

        case (.connecting, "_error") where command.transactionID == Self.connectTransaction:
            return self.fail(.commandFailed("connect refused: \(self.describe(command.arguments.first))"))

        case (.creatingStream, "_result") where command.transactionID == Self.createStreamTransaction:
            guard let number = command.arguments.first?.numberValue, number >= 1, number < 65536 else {
                return self.fail(.malformedMessage("createStream answered without a stream id"))
            }
            let id = UInt32(number)
            self.state = .publishing(streamID: id)
            return .send([
                RTMPCommand(
                    name: "publish",
                    transactionID: 5,
                    commandObject: .null,
                    arguments: [.string(self.configuration.streamName), .string("live")]
                ).message(streamID: id)
            ])

        case (.creatingStream, "_error") where command.transactionID == Self.createStreamTransaction:
            return self.fail(.commandFailed("createStream refused: \(self.describe(command.arguments.first))"))

        case (.publishing(let id), "onStatus"), (.started(let id), "onStatus"):
            let info = command.arguments.first
            let level = info?["level"]?.stringValue ?? ""
            let code = info?["code"]?.stringValue ?? ""
            if level == "error" {
                return self.fail(.commandFailed("publish refused: \(self.describe(info))"))
            }
            if code == "NetStream.Publish.Start", case .publishing = self.state {
                self.state = .started(streamID: id)
                return .publishing(send: [])
            }
            return .none

        case (.publishing, RTMPKeyframeRequest.commandName), (.started, RTMPKeyframeRequest.commandName):
            return self.configuration.acceptsKeyframeRequests ? .keyframeRequested : .none

        case (_, "_error"):
            return self.fail(.commandFailed("\(self.describe(command.arguments.first))"))

        case (_, "close"):
            return self.fail(.connectionClosed("the server closed the session"))

        default:
            // onBWDone, onFCPublish, answers to releaseStream and FCPublish: nothing to do.
            return .none
        }
    }

    /// The messages that end the publish cleanly: `FCUnpublish` and `deleteStream`. The session is closed after.
    public mutating func unpublish() -> [RTMPMessage] {
        defer { self.state = .closed }
        guard let id = self.messageStreamID else {
            return []
        }
        return Self.unpublishMessages(streamName: self.configuration.streamName, messageStreamID: id)
    }

    /// `FCUnpublish` and `deleteStream` for a publish on this message stream.
    public static func unpublishMessages(streamName: String, messageStreamID: UInt32) -> [RTMPMessage] {
        [
            RTMPCommand(name: "FCUnpublish", transactionID: 6, commandObject: .null, arguments: [.string(streamName)])
                .message(streamID: 0),
            RTMPCommand(
                name: "deleteStream",
                transactionID: 7,
                commandObject: .null,
                arguments: [.number(Double(messageStreamID))]
            ).message(streamID: 0),
        ]
    }

    private mutating func fail(_ error: RTMPError) -> Action {
        self.state = .closed
        return .fail(error)
    }

    /// `code: description` of a status object, with the stream key masked.
    private func describe(_ info: AMF0Value?) -> String {
        let code = info?["code"]?.stringValue ?? "no code"
        let description = info?["description"]?.stringValue ?? ""
        var text = description.isEmpty ? code : "\(code): \(description)"
        if !self.configuration.streamName.isEmpty {
            text = text.replacing(self.configuration.streamName, with: "***")
        }
        return text
    }
}
