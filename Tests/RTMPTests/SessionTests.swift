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
import Testing

@testable import RTMP

private func command(
    _ name: String,
    _ transactionID: Double,
    _ object: AMF0Value = .null,
    _ arguments: [AMF0Value] = [],
    stream: UInt32 = 0
) -> RTMPMessage {
    RTMPCommand(name: name, transactionID: transactionID, commandObject: object, arguments: arguments).message(
        streamID: stream
    )
}

private func decodeCommand(_ message: RTMPMessage) throws -> RTMPCommand {
    #expect(message.type == .commandAMF0)
    return try RTMPCommand(payload: message.payload)
}

private func sent(_ action: RTMPServerSessionStateMachine.Action) -> [RTMPMessage] {
    if case .send(let messages) = action {
        return messages
    }
    Issue.record("expected .send, got \(action)")
    return []
}

private let connect = command(
    "connect",
    1,
    [
        "app": "live", "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; Lavf59.27.100)",
        "tcUrl": "rtmp://127.0.0.1:1935/live",
    ]
)

/// A video message on message stream 1, the stream a publish in these tests is given.
private let videoOnStreamOne = RTMPMessage(
    chunkStreamID: 6,
    timestamp: 0,
    type: .video,
    messageStreamID: 1,
    payload: ByteBuffer(bytes: [0x17, 0])
)

@Suite("Server session (publisher side)")
struct ServerSessionTests {
    private func connected() -> RTMPServerSessionStateMachine {
        var session = RTMPServerSessionStateMachine(configuration: .init(applications: ["live"]))
        _ = session.received(connect)
        return session
    }

    private func authorizing(
        name: String = "secret-key?token=1"
    ) throws -> (RTMPServerSessionStateMachine, RTMPPublishRequest) {
        var session = self.connected()
        _ = session.received(command("createStream", 4))
        guard
            case .authorize(let request) = session.received(
                command("publish", 5, .null, [.string(name), "live"], stream: 1)
            )
        else {
            Issue.record("publish did not ask for authorization")
            throw RTMPError.unexpectedMessage("test")
        }
        return (session, request)
    }

    @Test("connect is answered with window, bandwidth, chunk size and NetConnection.Connect.Success")
    func connectAccepted() throws {
        var session = RTMPServerSessionStateMachine(configuration: .init(applications: ["live"]))
        let messages = sent(session.received(connect))
        #expect(messages.map(\.type) == [.windowAcknowledgementSize, .setPeerBandwidth, .setChunkSize, .commandAMF0])
        #expect(try RTMPControlMessage(messages[2]) == .setChunkSize(4096))
        let result = try decodeCommand(messages[3])
        #expect(result.name == "_result")
        #expect(result.transactionID == 1)
        #expect(result.arguments.first?["code"]?.stringValue == "NetConnection.Connect.Success")
    }

    @Test("connect to an unknown application is rejected and closes", arguments: ["other", ""])
    func unknownApp(app: String) throws {
        var session = RTMPServerSessionStateMachine(configuration: .init(applications: ["live"]))
        guard case .close(let messages, let error) = session.received(command("connect", 1, ["app": .string(app)]))
        else {
            Issue.record("expected close")
            return
        }
        #expect(error.code == .commandFailed)
        #expect(
            try decodeCommand(messages[0]).arguments.first?["code"]?.stringValue == "NetConnection.Connect.Rejected"
        )
    }

    @Test("App names with a trailing slash or a query are normalised", arguments: ["live/", "live?x=1", "live"])
    func appNormalised(app: String) {
        var session = RTMPServerSessionStateMachine(configuration: .init(applications: ["live"]))
        guard case .send = session.received(command("connect", 1, ["app": .string(app)])) else {
            Issue.record("connect to \(app) was not accepted")
            return
        }
    }

    @Test("A command before connect closes the connection")
    func commandBeforeConnect() {
        var session = RTMPServerSessionStateMachine(configuration: .init(applications: []))
        guard case .close(_, let error) = session.received(command("publish", 5, .null, ["k"], stream: 1)) else {
            Issue.record("expected close")
            return
        }
        #expect(error.code == .unexpectedMessage)
    }

    @Test("createStream answers stream ids 1, 2, ... and publish asks to authorize the key without its query")
    func publishAsksForAuthorization() throws {
        var session = self.connected()
        #expect(sent(session.received(command("releaseStream", 2, .null, ["secret-key"]))).count == 1)
        #expect(sent(session.received(command("FCPublish", 3, .null, ["secret-key"]))).count == 1)
        let created = try decodeCommand(sent(session.received(command("createStream", 4)))[0])
        #expect(created.name == "_result" && created.transactionID == 4 && created.arguments == [.number(1)])
        guard
            case .authorize(let request) = session.received(
                command("publish", 5, .null, ["secret-key?token=1", "live"], stream: 1)
            )
        else {
            Issue.record("publish did not ask for authorization")
            return
        }
        #expect(request.app == "live")
        #expect(request.streamName == "secret-key")
        #expect(request.query == "token=1")
        #expect(request.messageStreamID == 1)
        #expect(request.tcURL == "rtmp://127.0.0.1:1935/live")
    }

    @Test("Media before the publish is accepted is dropped; after, it passes on its stream only")
    func mediaGate() throws {
        var (session, _) = try self.authorizing()
        let video = videoOnStreamOne
        guard case .none = session.received(video) else {
            Issue.record("media passed before authorization")
            return
        }
        let accepted = session.publishAccepted()
        #expect(try RTMPControlMessage(accepted[0]) == .userControl(.streamBegin(streamID: 1)))
        let status = try decodeCommand(accepted[1])
        #expect(status.name == "onStatus" && status.arguments.first?["code"]?.stringValue == "NetStream.Publish.Start")
        #expect(accepted[1].messageStreamID == 1)
        guard case .media(let passed) = session.received(video) else {
            Issue.record("media did not pass after authorization")
            return
        }
        #expect(passed == video)
        var elsewhere = video
        elsewhere.messageStreamID = 2
        guard case .none = session.received(elsewhere) else {
            Issue.record("media on another message stream passed")
            return
        }
    }

    @Test("A refused publish answers NetStream.Publish.BadName without echoing the key")
    func refused() throws {
        var (session, _) = try self.authorizing()
        let messages = session.publishRefused(description: "Invalid stream key.")
        let status = try decodeCommand(messages[0])
        #expect(status.arguments.first?["level"]?.stringValue == "error")
        #expect(status.arguments.first?["code"]?.stringValue == "NetStream.Publish.BadName")
        #expect(!"\(status)".contains("secret-key"))
    }

    @Test("FCUnpublish or deleteStream end the publish cleanly", arguments: ["FCUnpublish", "deleteStream"])
    func unpublish(name: String) throws {
        var (session, _) = try self.authorizing()
        _ = session.publishAccepted()
        guard case .unpublished(let messages) = session.received(command(name, 6, .null, [1])) else {
            Issue.record("\(name) did not end the publish")
            return
        }
        #expect(try decodeCommand(messages[0]).arguments.first?["code"]?.stringValue == "NetStream.Unpublish.Success")
    }

    @Test("An answer to authorize that comes after the session moved on sends nothing and never traps")
    func lateAuthorizationAnswer() throws {
        // Accepted twice: the second finds the session publishing, not authorizing.
        var (session, _) = try self.authorizing()
        #expect(!session.publishAccepted().isEmpty)
        #expect(session.publishAccepted().isEmpty)
        #expect(session.publishRefused(description: "late").isEmpty)
        // The refusal closed the session: media no longer passes.
        let video = videoOnStreamOne
        guard case .none = session.received(video) else {
            Issue.record("media passed after a late refusal")
            return
        }

        // Closed while authorizing (the publisher asked to publish again on the same connection, say).
        var (closing, _) = try self.authorizing()
        _ = closing.publishRefused(description: "Invalid stream key.")
        #expect(closing.publishAccepted().isEmpty)
        #expect(closing.publishRefused(description: "again").isEmpty)
    }

    @Test("play is refused: the relay takes publishers only")
    func play() {
        var session = self.connected()
        _ = session.received(command("createStream", 4))
        guard case .close(_, let error) = session.received(command("play", 5, .null, ["x"], stream: 1)) else {
            Issue.record("play was not refused")
            return
        }
        #expect(error.code == .commandFailed)
    }

    @Test("A command longer than maxCommandLength closes before it is decoded")
    func oversizedCommand() {
        var session = RTMPServerSessionStateMachine(configuration: .init(applications: []))
        let huge = RTMPMessage(
            chunkStreamID: 3,
            timestamp: 0,
            type: .commandAMF0,
            messageStreamID: 0,
            payload: ByteBuffer(repeating: 0x05, count: RTMPServerSessionStateMachine.maxCommandLength + 1)
        )
        guard case .close(_, let error) = session.received(huge) else {
            Issue.record("expected close")
            return
        }
        #expect(error.code == .limitExceeded)
    }

    @Test("Garbage in a command message closes with a malformed-message error")
    func garbageCommand() {
        var session = RTMPServerSessionStateMachine(configuration: .init(applications: []))
        let garbage = RTMPMessage(
            chunkStreamID: 3,
            timestamp: 0,
            type: .commandAMF0,
            messageStreamID: 0,
            payload: ByteBuffer(bytes: [0x42, 0x42])
        )
        guard case .close(_, let error) = session.received(garbage) else {
            Issue.record("expected close")
            return
        }
        #expect(error.code == .malformedAMF || error.code == .malformedMessage)
    }

    @Test("No more than maxMessageStreams streams can be created")
    func streamLimit() {
        var session = self.connected()
        for id in 1...RTMPServerSessionStateMachine.maxMessageStreams {
            guard case .send = session.received(command("createStream", Double(id))) else {
                Issue.record("createStream \(id) refused")
                return
            }
        }
        guard case .close(_, let error) = session.received(command("createStream", 99)) else {
            Issue.record("expected close")
            return
        }
        #expect(error.code == .limitExceeded)
    }
}

@Suite("Publish client session (push side), against our server session")
struct PublishClientTests {
    /// Runs the client against the server, message by message, until neither has anything to send.
    private func run(
        client: inout RTMPPublishClientStateMachine,
        server: inout RTMPServerSessionStateMachine,
        accept: Bool
    ) throws -> RTMPPublishClientStateMachine.Action? {
        var toServer = client.start()
        var last: RTMPPublishClientStateMachine.Action?
        var rounds = 0
        while !toServer.isEmpty {
            rounds += 1
            #expect(rounds < 20)
            var toClient: [RTMPMessage] = []
            for message in toServer where !message.type.isProtocolControl {
                switch server.received(message) {
                case .send(let messages): toClient += messages
                case .authorize:
                    toClient +=
                        accept ? server.publishAccepted() : server.publishRefused(description: "Invalid stream key.")
                case .close(let messages, _): toClient += messages
                default: break
                }
            }
            toServer = []
            for message in toClient where !message.type.isProtocolControl {
                let action = client.received(message)
                switch action {
                case .send(let messages): toServer += messages
                case .publishing, .fail, .keyframeRequested: last = action
                case .none: break
                }
            }
        }
        return last
    }

    @Test("connect, releaseStream, FCPublish, createStream, publish end in publishing on stream 1")
    func publishes() throws {
        var client = RTMPPublishClientStateMachine(
            configuration: .init(app: "live", tcURL: "rtmp://h:1935/live", streamName: "target-key")
        )
        var server = RTMPServerSessionStateMachine(configuration: .init(applications: ["live"]))
        guard case .publishing = try self.run(client: &client, server: &server, accept: true) else {
            Issue.record("client did not reach publishing")
            return
        }
        #expect(client.isPublishing)
        #expect(client.messageStreamID == 1)
        #expect(server.publishing?.streamName == "target-key")
        let goodbye = client.unpublish().map { try? RTMPCommand(payload: $0.payload).name }
        #expect(goodbye == ["FCUnpublish", "deleteStream"])
    }

    @Test("A notification the session does not need is ignored even malformed; a malformed answer fails it")
    func malformedNotificationIgnored() {
        func command(_ values: [AMF0Value]) -> RTMPMessage {
            var payload = ByteBuffer()
            for value in values {
                payload.writeAMF0Value(value)
            }
            return RTMPMessage(chunkStreamID: 3, timestamp: 0, type: .commandAMF0, messageStreamID: 0, payload: payload)
        }
        var client = RTMPPublishClientStateMachine(
            configuration: .init(app: "live", tcURL: "rtmp://h/live", streamName: "target-key")
        )
        _ = client.start()
        // ffmpeg's listen mode: onFCPublish with an object where the transaction id belongs.
        let onFCPublish = command([.string("onFCPublish"), .object([(key: "code", value: .string("x"))])])
        guard case .none = client.received(onFCPublish) else {
            Issue.record("a malformed onFCPublish failed the session")
            return
        }
        guard case .fail(let error) = client.received(command([.string("_result"), .null])) else {
            Issue.record("a malformed _result did not fail the session")
            return
        }
        #expect(error.code == .malformedMessage)
    }

    @Test("A refused publish fails with the server's code, and the key is masked in the reason")
    func refusedPublish() throws {
        var client = RTMPPublishClientStateMachine(
            configuration: .init(app: "live", tcURL: "rtmp://h:1935/live", streamName: "target-key")
        )
        var server = RTMPServerSessionStateMachine(configuration: .init(applications: ["live"]))
        guard case .fail(let error) = try self.run(client: &client, server: &server, accept: false) else {
            Issue.record("client did not fail")
            return
        }
        #expect(error.code == .commandFailed)
        #expect(error.message.contains("NetStream.Publish.BadName"))
    }

    @Test("A server that echoes the key in an error gets it masked")
    func masksKey() {
        var client = RTMPPublishClientStateMachine(
            configuration: .init(app: "live", tcURL: "rtmp://h/live", streamName: "sk-123")
        )
        _ = client.start()
        let error = command(
            "_error",
            1,
            .null,
            [["level": "error", "code": "NetConnection.Connect.Rejected", "description": "bad key sk-123"]]
        )
        guard case .fail(let failure) = client.received(error) else {
            Issue.record("expected failure")
            return
        }
        #expect(!failure.message.contains("sk-123"))
        #expect(failure.message.contains("***"))
    }

    @Test("nginx-rtmp answers neither releaseStream nor FCPublish: the client does not wait for them")
    func doesNotWaitForFCPublish() {
        var client = RTMPPublishClientStateMachine(configuration: .init(app: "a", tcURL: "rtmp://h/a", streamName: "k"))
        _ = client.start()
        guard
            case .send(let next) = client.received(
                command("_result", 1, ["fmsVer": "FMS/3,0,1,123"], [["code": "NetConnection.Connect.Success"]])
            )
        else {
            Issue.record("connect result not handled")
            return
        }
        #expect(
            next.compactMap { try? RTMPCommand(payload: $0.payload).name } == [
                "releaseStream", "FCPublish", "createStream",
            ]
        )
        guard case .send(let publish) = client.received(command("_result", 4, .null, [1])) else {
            Issue.record("createStream result not handled")
            return
        }
        #expect(publish.first?.messageStreamID == 1)
    }

    @Test(
        "A publisher that opts in at connect gets keyframe requests on its stream; one that does not, none",
        arguments: [true, false]
    )
    func keyframeRequests(optedIn: Bool) throws {
        var configuration = RTMPPublishClientStateMachine.Configuration(
            app: "live",
            tcURL: "rtmp://h/live",
            streamName: "k"
        )
        configuration.acceptsKeyframeRequests = optedIn
        var client = RTMPPublishClientStateMachine(configuration: configuration)
        var server = RTMPServerSessionStateMachine(configuration: .init(applications: ["live"]))
        #expect(server.keyframeRequest == nil, "before the publish")
        guard case .publishing = try self.run(client: &client, server: &server, accept: true) else {
            Issue.record("client did not reach publishing")
            return
        }
        #expect(server.publishing?.acceptsKeyframeRequests == optedIn)
        guard optedIn else {
            #expect(server.keyframeRequest == nil)
            // A request the client did not ask for (from a server that sends it anyway) is ignored.
            guard case .none = client.received(RTMPKeyframeRequest.message(streamID: 1)) else {
                Issue.record("an unrequested keyframe request was acted on")
                return
            }
            return
        }
        let request = try #require(server.keyframeRequest)
        #expect(request.messageStreamID == 1 && request.type == .commandAMF0)
        let decoded = try RTMPCommand(message: request)
        #expect(decoded.name == "requestKeyframe" && decoded.transactionID == 0)
        guard case .keyframeRequested = client.received(request) else {
            Issue.record("the keyframe request was not recognised")
            return
        }
        #expect(client.isPublishing, "a keyframe request does not change the session")
    }
}
