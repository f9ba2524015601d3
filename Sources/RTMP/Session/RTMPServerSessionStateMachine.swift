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

/// What a publisher asked to publish, once its `publish` command arrived.
public struct RTMPPublishRequest: Hashable, Sendable {
    /// The application from `connect` (for `rtmp://host/live/key`, `live`).
    public var app: String
    /// The stream name without its query string: the stream key. Never log it.
    public var streamName: String
    /// The query string after `?` in the stream name, if any (without the `?`).
    public var query: String?
    /// The `tcUrl` the client connected to, as it sent it.
    public var tcURL: String?
    /// The publishing type: `live`, `record` or `append`.
    public var publishingType: String
    /// The message stream the publisher publishes on.
    public var messageStreamID: UInt32
    /// Whether the publisher asked, in `connect`, for ``RTMPKeyframeRequest``s.
    public var acceptsKeyframeRequests = false
}

/// The server side of an RTMP session that accepts one publisher: `connect`, `releaseStream`, `FCPublish`,
/// `createStream`, `publish`, then media until `FCUnpublish`/`deleteStream` or the connection closes.
///
/// A pure state machine: it is given each message and returns what to do. The owner sends the messages it returns,
/// checks the stream key when asked (``Action/authorize(_:)``), and reports the answer with ``publishAccepted()`` or
/// ``publishRefused(code:description:)``. The command names and status codes are those of Flash Media Server that
/// encoders check (ffmpeg's `rtmpproto.c`, OBS through librtmp, nginx-rtmp).
public struct RTMPServerSessionStateMachine: Sendable {
    /// How the server introduces itself to a publisher.
    public struct Configuration: Hashable, Sendable {
        /// The applications a publisher may connect to; empty accepts any.
        public var applications: Set<String>
        /// The chunk size we write with (section 5.4.1). Larger chunks mean fewer headers on the wire.
        public var chunkSize: UInt32 = 4096
        /// The window after which the publisher should acknowledge what we sent.
        public var windowAcknowledgementSize: UInt32 = 2_500_000
        /// The bandwidth we let the publisher assume (dynamic limit).
        public var peerBandwidth: UInt32 = 2_500_000

        public init(applications: Set<String>) {
            self.applications = applications
        }
    }

    /// What the owner does next.
    public enum Action: Sendable {
        /// Nothing to do.
        case none
        /// Send these messages, in order.
        case send([RTMPMessage])
        /// Check whether this publisher may publish; answer with ``publishAccepted()`` or ``publishRefused(code:description:)``.
        case authorize(RTMPPublishRequest)
        /// A media or data message of the live stream, to pass on.
        case media(RTMPMessage)
        /// The publisher ended its stream cleanly; send these messages (possibly none).
        case unpublished(send: [RTMPMessage])
        /// Send these messages (possibly none), then close the connection with this error.
        case close(send: [RTMPMessage], RTMPError)
    }

    private enum State: Sendable {
        case awaitingConnect
        case connected(app: String, tcURL: String?)
        case authorizing(app: String, tcURL: String?, request: RTMPPublishRequest, transactionID: Double)
        case publishing(app: String, tcURL: String?, request: RTMPPublishRequest)
        case closed
    }

    private var state: State = .awaitingConnect
    private var nextStreamID: UInt32 = 1
    /// What the peer's `connect` said about ``RTMPKeyframeRequest``s.
    private var peerAcceptsKeyframeRequests = false
    private let configuration: Configuration

    /// The longest command message accepted, in bytes.
    public static let maxCommandLength = RTMPCommand.maxMessageLength

    /// The most message streams a peer may create; an encoder needs one.
    public static let maxMessageStreams: UInt32 = 8

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// A request for a keyframe (``RTMPKeyframeRequest``) for the publisher, if it is publishing and asked for them
    /// in `connect`; `nil` otherwise.
    public var keyframeRequest: RTMPMessage? {
        guard case .publishing(_, _, let request) = self.state, request.acceptsKeyframeRequests else {
            return nil
        }
        return RTMPKeyframeRequest.message(streamID: request.messageStreamID)
    }

    /// The request being published, once authorized.
    public var publishing: RTMPPublishRequest? {
        if case .publishing(_, _, let request) = self.state {
            return request
        }
        return nil
    }

    /// Handles one message from the peer.
    public mutating func received(_ message: RTMPMessage) -> Action {
        switch message.type {
        case .audio, .video, .dataAMF0, .dataAMF3, .aggregate:
            return self.mediaReceived(message)
        case .commandAMF0, .commandAMF3:
            let command: RTMPCommand
            do {
                command = try RTMPCommand(message: message)
            } catch {
                return self.close(error)
            }
            return self.commandReceived(command, on: message.messageStreamID)
        default:
            return .none
        }
    }

    private mutating func mediaReceived(_ message: RTMPMessage) -> Action {
        guard case .publishing(_, _, let request) = self.state else {
            // Media before the publish was accepted is dropped: nothing reaches a target before the key is checked.
            return .none
        }
        guard message.messageStreamID == request.messageStreamID else {
            return .none
        }
        return .media(message)
    }

    private mutating func commandReceived(_ command: RTMPCommand, on streamID: UInt32) -> Action {
        switch (self.state, command.name) {
        case (.awaitingConnect, "connect"):
            let app = Self.applicationName(command.commandObject["app"]?.stringValue ?? "")
            let tcURL = command.commandObject["tcUrl"]?.stringValue
            if !self.configuration.applications.isEmpty, !self.configuration.applications.contains(app) {
                let error = Self.command(
                    "_error",
                    transactionID: command.transactionID,
                    arguments: [
                        Self.status(
                            level: "error",
                            code: "NetConnection.Connect.Rejected",
                            description: "Unknown application."
                        )
                    ]
                )
                return self.close(send: [error], .commandFailed("connect to unknown application '\(app)' refused"))
            }
            self.state = .connected(app: app, tcURL: tcURL)
            self.peerAcceptsKeyframeRequests =
                command.commandObject[RTMPKeyframeRequest.connectProperty]?.boolValue == true
            return .send(self.connectAccepted(transactionID: command.transactionID))

        case (.awaitingConnect, _):
            return self.close(.unexpectedMessage("'\(command.name)' before 'connect'"))

        case (.connected, "releaseStream"), (.connected, "FCPublish"), (.publishing, "releaseStream"):
            // Flash Media Live Encoder's preparation commands: answer so that encoders waiting for them go on.
            return .send([Self.command("_result", transactionID: command.transactionID, arguments: [.undefined])])

        case (.connected, "createStream"), (.publishing, "createStream"):
            guard self.nextStreamID <= Self.maxMessageStreams else {
                return self.close(
                    .limitExceeded(
                        "maxMessageStreams",
                        value: Int(self.nextStreamID),
                        maximum: Int(Self.maxMessageStreams)
                    )
                )
            }
            let id = self.nextStreamID
            self.nextStreamID += 1
            return .send([
                Self.command("_result", transactionID: command.transactionID, arguments: [.number(Double(id))])
            ])

        case (.connected(let app, let tcURL), "publish"):
            guard streamID != 0, streamID < self.nextStreamID else {
                return self.close(.unexpectedMessage("'publish' on message stream \(streamID), which was not created"))
            }
            guard let rawName = command.arguments.first?.stringValue, !rawName.isEmpty else {
                let refusal = Self.onStatus(
                    streamID: streamID,
                    level: "error",
                    code: "NetStream.Publish.BadName",
                    description: "No stream key given."
                )
                return self.close(send: [refusal], .commandFailed("publish without a stream name"))
            }
            let name: Substring
            let query: Substring?
            if let mark = rawName.firstIndex(of: "?") {
                name = rawName[..<mark]
                query = rawName[rawName.index(after: mark)...]
            } else {
                name = rawName[...]
                query = nil
            }
            let request = RTMPPublishRequest(
                app: app,
                streamName: String(name),
                query: query.map(String.init),
                tcURL: tcURL,
                publishingType: command.arguments.dropFirst().first?.stringValue ?? "live",
                messageStreamID: streamID,
                acceptsKeyframeRequests: self.peerAcceptsKeyframeRequests
            )
            self.state = .authorizing(app: app, tcURL: tcURL, request: request, transactionID: command.transactionID)
            return .authorize(request)

        case (.publishing(_, _, let request), "FCUnpublish"), (.publishing(_, _, let request), "deleteStream"),
            (.publishing(_, _, let request), "closeStream"):
            self.state = .closed
            let status = Self.onStatus(
                streamID: request.messageStreamID,
                level: "status",
                code: "NetStream.Unpublish.Success",
                description: "Stream unpublished."
            )
            return .unpublished(send: [status])

        case (.connected, "deleteStream"), (.connected, "closeStream"), (.connected, "FCUnpublish"):
            return .none

        case (.connected, "play"), (.connected, "play2"):
            let refusal = Self.onStatus(
                streamID: streamID,
                level: "error",
                code: "NetStream.Play.Failed",
                description: "This relay accepts publishers only."
            )
            return self.close(send: [refusal], .commandFailed("a client tried to play; only publishing is accepted"))

        case (.authorizing, _):
            // The encoder may pipeline commands while its key is checked; none of them needs an answer first.
            return .none

        case (_, "_result"), (_, "_error"), (_, "onStatus"), (_, "_checkbw"), (_, "getStreamLength"):
            return .none

        case (.closed, _):
            return .none

        default:
            // Unknown commands get an error answer when the peer waits for one (a transaction id other than 0).
            guard command.transactionID != 0 else {
                return .none
            }
            return .send([
                Self.command(
                    "_error",
                    transactionID: command.transactionID,
                    arguments: [
                        Self.status(level: "error", code: "NetConnection.Call.Failed", description: "Unknown command.")
                    ]
                )
            ])
        }
    }

    /// The stream key was accepted: start publishing.
    ///
    /// The answer to an ``Action/authorize(_:)`` comes after an await (a webhook, a takeover), so the session may
    /// have moved on meanwhile (closed, say): then there is nothing to send, and the session stays as it is.
    public mutating func publishAccepted() -> [RTMPMessage] {
        guard case .authorizing(let app, let tcURL, let request, _) = self.state else {
            return []
        }
        self.state = .publishing(app: app, tcURL: tcURL, request: request)
        return [
            RTMPControlMessage.userControl(.streamBegin(streamID: request.messageStreamID)).message,
            Self.onStatus(
                streamID: request.messageStreamID,
                level: "status",
                code: "NetStream.Publish.Start",
                description: "Publishing started."
            ),
        ]
    }

    /// The publish was refused; send the returned messages, then close. The description goes to the encoder,
    /// which shows it to the streamer: it must not contain the key.
    public mutating func publishRefused(
        code: String = "NetStream.Publish.BadName",
        description: String
    ) -> [RTMPMessage] {
        guard case .authorizing(_, _, let request, _) = self.state else {
            // No publish pending (see publishAccepted()): nothing to answer; the caller closes anyway.
            self.state = .closed
            return []
        }
        self.state = .closed
        return [Self.onStatus(streamID: request.messageStreamID, level: "error", code: code, description: description)]
    }

    private mutating func close(send messages: [RTMPMessage] = [], _ error: RTMPError) -> Action {
        self.state = .closed
        return .close(send: messages, error)
    }

    private func connectAccepted(transactionID: Double) -> [RTMPMessage] {
        [
            RTMPControlMessage.windowAcknowledgementSize(self.configuration.windowAcknowledgementSize).message,
            RTMPControlMessage.setPeerBandwidth(size: self.configuration.peerBandwidth, limitType: 2).message,
            RTMPControlMessage.setChunkSize(self.configuration.chunkSize).message,
            Self.command(
                "_result",
                transactionID: transactionID,
                commandObject: .object([
                    (key: "fmsVer", value: .string("FMS/3,0,1,123")),
                    (key: "capabilities", value: .number(31)),
                ]),
                arguments: [
                    .object([
                        (key: "level", value: .string("status")),
                        (key: "code", value: .string("NetConnection.Connect.Success")),
                        (key: "description", value: .string("Connection succeeded.")),
                        (key: "objectEncoding", value: .number(0)),
                    ])
                ]
            ),
        ]
    }

    /// `rtmp://host/live/key` arrives as app `live`; some encoders send `live/` or `live?query`.
    static func applicationName(_ raw: String) -> String {
        var app = Substring(raw)
        if let mark = app.firstIndex(of: "?") {
            app = app[..<mark]
        }
        while app.hasSuffix("/") {
            app = app.dropLast()
        }
        return String(app)
    }

    static func status(level: String, code: String, description: String) -> AMF0Value {
        .object([
            (key: "level", value: .string(level)),
            (key: "code", value: .string(code)),
            (key: "description", value: .string(description)),
        ])
    }

    static func command(
        _ name: String,
        transactionID: Double,
        commandObject: AMF0Value = .null,
        arguments: [AMF0Value],
        streamID: UInt32 = 0
    ) -> RTMPMessage {
        RTMPCommand(name: name, transactionID: transactionID, commandObject: commandObject, arguments: arguments)
            .message(streamID: streamID)
    }

    /// An `onStatus` command on a message stream: what a server tells a publisher (`level` `error` ends a publish in
    /// ffmpeg, which prints the description, and in OBS).
    public static func onStatus(streamID: UInt32, level: String, code: String, description: String) -> RTMPMessage {
        Self.command(
            "onStatus",
            transactionID: 0,
            arguments: [Self.status(level: level, code: code, description: description)],
            streamID: streamID
        )
    }
}
