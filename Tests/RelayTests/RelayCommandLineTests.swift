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
import Relay
import Testing

@Suite("liverelay relay's flags, as the Relay module reads them")
struct RelayCommandLineTests {
    /// A command line with the publishers' key in `INGEST` of the environment the tests give.
    private func keyed() -> RelayCommandLine {
        var line = RelayCommandLine()
        line.streamKeyEnvironment = "INGEST"
        return line
    }

    @Test("flags alone make one stream: listen address, app, key and targets from the environment, durations")
    func flagsAlone() throws {
        var line = self.keyed()
        line.listen = "[::1]:1936"
        line.app = "show"
        line.targets = ["yt=rtmp://a.example.com/live2", "tw=rtmps://b.example.com:443/app/tw-stream"]
        line.targetKeyEnvironment = ["yt=YT_KEY"]
        line.reconnectInitial = .milliseconds(250)
        line.maxKeyframeInterval = .seconds(2)
        line.gopCache = "always"
        let configuration = try line.makeConfiguration(environment: ["INGEST": "ingest-key\n", "YT_KEY": " yt-key "])
        #expect(configuration.host == "::1" && configuration.port == 1936)
        #expect(configuration.reconnectInitial == .milliseconds(250))
        #expect(configuration.gopCache == .always)
        let stream = try #require(configuration.streams.first)
        #expect(configuration.streams.count == 1)
        #expect(stream.app == "show")
        guard case .key(let key) = stream.authorization else {
            Issue.record("not authorized by key: \(stream.authorization)")
            return
        }
        #expect(key.matches("ingest-key"), "the key read as every reader reads it: without the line break")
        #expect(stream.targets.map(\.name) == ["yt", "tw"])
        #expect(stream.targets[0].streamKey?.matches("yt-key") == true)
        #expect(stream.targets[1].streamKey == nil, "its stream name is in its URL")
        #expect(stream.rules.maxKeyframeInterval == .seconds(2))
    }

    @Test("a webhook authorizes instead of a key; both, or neither, are refused with the reason")
    func authorization() throws {
        var webhook = RelayCommandLine()
        webhook.webhook = "http://127.0.0.1:9/admit"
        webhook.webhookTimeout = .seconds(3)
        let configuration = try webhook.makeConfiguration(environment: [:])
        guard case .webhook(let url, let timeout) = configuration.streams.first?.authorization else {
            Issue.record("not authorized by webhook")
            return
        }
        #expect(url == "http://127.0.0.1:9/admit" && timeout == .seconds(3))

        #expect(throws: RelayConfigurationError.self) { try RelayCommandLine().makeConfiguration(environment: [:]) }
        var both = self.keyed()
        both.webhook = "http://127.0.0.1:9/admit"
        let error = #expect(throws: RelayConfigurationError.self) { try both.validate() }
        #expect(error?.message.contains("one or the other") == true)
    }

    @Test("every mistake names its flag and never shows a key")
    func mistakes() throws {
        let environment = ["INGEST": "ingest-key"]
        func message(_ change: (inout RelayCommandLine) -> Void) -> String {
            var line = self.keyed()
            change(&line)
            do {
                _ = try line.makeConfiguration(environment: environment)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(message { $0.listen = "1935" }.contains("--listen must be HOST:PORT"))
        #expect(message { $0.gopCache = "sometimes" }.contains("--gop-cache"))
        #expect(message { $0.proxyProtocolFrom = "10.0.0.0/40" }.contains("--proxy-protocol-from"))
        #expect(message { $0.reconnectInitial = .zero }.contains("--reconnect-min"))
        #expect(message { $0.maxConnections = 0 }.contains("--max-connections"))
        let pair = message { $0.targets = ["rtmp://a.example.com/live/secret-key-in-url"] }
        #expect(pair.contains("--target takes NAME=VALUE"))
        #expect(!pair.contains("secret-key-in-url"), "the value reached the error: \(pair)")
        let orphan = message {
            $0.targets = ["yt=rtmp://a.example.com/live2"]
            $0.targetKeyFiles = ["tw=/nonexistent"]
        }
        #expect(orphan.contains("a key is given for target 'tw', but there is no --target tw=URL"))
        let unset = message {
            $0.targets = ["yt=rtmp://a.example.com/live2"]
            $0.targetKeyEnvironment = ["yt=UNSET_VARIABLE"]
        }
        #expect(unset.contains("environment variable UNSET_VARIABLE (stream key of target 'yt') is not set"))
        var blank = self.keyed()
        blank.streamKeyEnvironment = "BLANK"
        #expect(throws: RelayConfigurationError.self) { try blank.makeConfiguration(environment: ["BLANK": " \n"]) }
    }

    @Test("a key file is read, trimmed, and a missing one is named", arguments: ["key-from-file\n", "key-from-file"])
    func keyFile(contents: String) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("relay-key-\(UUID().uuidString)").path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var line = RelayCommandLine()
        line.streamKeyFile = path
        guard case .key(let key) = try line.makeConfiguration(environment: [:]).streams.first?.authorization else {
            Issue.record("not authorized by key")
            return
        }
        #expect(key.matches("key-from-file"))
        line.streamKeyFile = path + ".missing"
        let error = #expect(throws: RelayConfigurationError.self) { try line.makeConfiguration(environment: [:]) }
        #expect(error?.message.contains(".missing") == true)
    }
}
