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
import LiveStreamModel
import Testing

@testable import Relay

@Suite("Target URLs")
struct RTMPURLTests {
    @Test("YouTube's ingest URL: app live2, default port, no stream name")
    func youtube() throws {
        let url = try RTMPURL(parsing: "rtmp://a.rtmp.youtube.com/live2")
        #expect(url.host == "a.rtmp.youtube.com" && url.port == 1935 && url.app == "live2" && !url.useTLS)
        #expect(url.streamName == nil)
        #expect(url.tcURL == "rtmp://a.rtmp.youtube.com:1935/live2")
    }

    @Test("An IVS RTMPS URL with a trailing slash: TLS on 443, app 'app'")
    func ivs() throws {
        let url = try RTMPURL(parsing: "rtmps://example.global-contribute.live-video.net:443/app/")
        #expect(url.useTLS && url.port == 443 && url.app == "app" && url.streamName == nil)
        #expect(try RTMPURL(parsing: "rtmps://h/app").port == 443)
    }

    @Test("A stream name after the application is kept, and never printed")
    func streamNameInURL() throws {
        let url = try RTMPURL(parsing: "rtmp://127.0.0.1:19350/app/secret-name")
        #expect(url.streamName == "secret-name")
        #expect(!"\(url)".contains("secret-name"))
        #expect(RTMPURL.redacted("rtmp://h/app/secret-name") == "rtmp://h/app/***")
    }

    @Test("IPv6 literals")
    func ipv6() throws {
        let url = try RTMPURL(parsing: "rtmp://[::1]:1936/live")
        #expect(url.host == "::1" && url.port == 1936)
        #expect(url.tcURL == "rtmp://[::1]:1936/live")
    }

    @Test(
        "Bad URLs say what is wrong without printing a stream name",
        arguments: [
            ("a.rtmp.youtube.com/live2", "no scheme"), ("http://h/app", "not supported"),
            ("rtmp://h", "no application"),
            ("rtmp://h:99999/app", "not a port"), ("rtmp:///app/secret-name", "no host"),
        ]
    )
    func invalid(url: String, message: String) {
        do {
            _ = try RTMPURL(parsing: url)
            Issue.record("\(url) was accepted")
        } catch {
            #expect(error.message.contains(message))
            #expect(!error.message.contains("secret-name"))
        }
    }
}

@Suite("Secrets")
struct SecretTests {
    @Test("A secret matches only its exact value and prints as ***")
    func matching() {
        let secret = Secret("live_key_1")
        #expect(secret.matches("live_key_1"))
        #expect(!secret.matches("live_key_2"))
        #expect(!secret.matches("live_key_"))
        #expect(!secret.matches("live_key_12"))
        #expect(!secret.matches(""))
        #expect(!Secret("").matches(""))
        #expect("\(secret)" == "***")
        #expect(String(reflecting: secret) == "Secret(***)")
    }
}

@Suite("Relay configuration")
struct RelayConfigurationTests {
    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("liverelay-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("A LiveStream spec resolves its Secret references under the secrets directory")
    func liveStreamYAML() throws {
        let directory = try self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, key, value) in [("alice-key", "streamKey", "ingest-secret\n"), ("yt", "key", "yt-secret")] {
            let folder = directory.appendingPathComponent("secrets/\(name)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try value.write(to: folder.appendingPathComponent(key), atomically: true, encoding: .utf8)
        }
        let yaml = """
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: alice }
            spec:
              ingest:
                app: studio
                streamKeySecretRef: { name: alice-key, key: streamKey }
              targets:
                - name: youtube
                  url: rtmp://a.rtmp.youtube.com/live2
                  streamKeySecretRef: { name: yt, key: key }
                - name: archive
                  url: rtmp://127.0.0.1/app/archive-name
                  enabled: false
            """
        let file = directory.appendingPathComponent("stream.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let configuration = try RelayConfiguration.load(
            yamlFile: file.path,
            secretsDirectory: directory.appendingPathComponent("secrets").path
        )
        let stream = try #require(configuration.streams.first)
        #expect(stream.name == "alice")
        #expect(stream.app == "studio")
        #expect(stream.authorization == .key(Secret("ingest-secret")))
        #expect(stream.targets.map(\.name) == ["youtube", "archive"])
        #expect(stream.targets[0].streamKey?.matches("yt-secret") == true)
        #expect(stream.targets[1].enabled == false)
        #expect(stream.targets[1].streamName == "archive-name")
    }

    @Test("A missing Secret file names the Secret and key, not a value")
    func missingSecret() throws {
        let directory = try self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("stream.yaml")
        let yaml = """
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: alice }
            spec: { ingest: { streamKeySecretRef: { name: nope, key: streamKey } } }
            """
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        #expect {
            _ = try RelayConfiguration.load(yamlFile: file.path, secretsDirectory: directory.path)
        } throws: { error in
            "\(error)".contains("spec.ingest.streamKeySecretRef: Secret nope, key streamKey")
        }
    }

    @Test("Without a key Secret reference the key is where the operator and local mode default it")
    func defaultKeySecret() throws {
        let directory = try self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = "default-\(UUID().uuidString)"
        let folder = directory.appendingPathComponent("alice-stream-key")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "\(key)\n".write(to: folder.appendingPathComponent("streamKey"), atomically: true, encoding: .utf8)
        let yaml = """
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: alice }
            spec: {}
            """
        let streams = try RelayConfiguration.streams(yaml: yaml, source: "test.yaml", secretsDirectory: directory.path)
        #expect(streams.map(\.name) == ["alice"])
        #expect(streams[0].app == LiveStreamSpec.Ingest.defaultApp)
        #expect(streams[0].authorization == .key(Secret(key)))
        #expect(streams[0].previewEnabled)
        #expect {
            _ = try RelayConfiguration.streams(yaml: yaml, source: "test.yaml", secretsDirectory: "/nonexistent")
        } throws: { error in
            "\(error)".contains("spec.ingest.streamKeySecretRef, defaulted: Secret alice-stream-key, key streamKey")
        }
    }

    @Test("A stream key in a Secret or a file is read without the whitespace and line breaks around it")
    func keyNormalization() throws {
        let directory = try self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (ingest, target) = ("ingest-\(UUID().uuidString)", "target-\(UUID().uuidString)")
        let folder = directory.appendingPathComponent("files")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try " \(target) \r\n".write(to: folder.appendingPathComponent("target"), atomically: true, encoding: .utf8)
        let encoded = Data("\(target)\t\n".utf8).base64EncodedString()
        let yaml = """
            apiVersion: v1
            kind: Secret
            metadata: { name: keys }
            stringData: { ingest: "\(ingest) \\n" }
            data: { target: \(encoded) }
            ---
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: one }
            spec:
              ingest: { streamKeySecretRef: { name: keys, key: ingest } }
              targets:
                - { name: a, url: "rtmp://h/app", streamKeySecretRef: { name: keys, key: target } }
                - { name: b, url: "rtmp://h/app", streamKeySecretRef: { name: files, key: target } }
            """
        let streams = try RelayConfiguration.streams(yaml: yaml, source: "test.yaml", secretsDirectory: directory.path)
        #expect(StreamKey.normalized("\(ingest) \n") == ingest)
        #expect(streams[0].authorization == .key(Secret(ingest)))
        guard case .key(let secret) = streams[0].authorization else {
            Issue.record("the stream has no key")
            return
        }
        #expect(secret.matches(ingest) && !secret.matches(ingest + " "))
        #expect(streams[0].targets.map(\.streamKey) == [Secret(target), Secret(target)])
    }

    @Test(
        "The relay refuses what local mode and the operator refuse, naming the document and the field",
        arguments: [
            (
                "kind: LiveStream\nmetadata: { name: a }\nspec: {}\n",
                "test.yaml, document 1: apiVersion must be liverelay.io/v1alpha1"
            ),
            ("ingest: { app: live }\n", "test.yaml, document 1: no kind"),
            (
                "apiVersion: liverelay.io/v1alpha1\nkind: LiveStream\nmetadata: { name: a }\n"
                    + "spec: { targets: [{ name: t, url: \"http://h/app\" }] }\n",
                "LiveStream a is invalid: spec.targets[0].url: must be a URL starting with rtmp:// or rtmps://"
            ),
            (
                "apiVersion: liverelay.io/v1alpha1\nkind: LiveStream\nmetadata: { name: a }\n"
                    + "spec: { ingest: { port: \"x\" } }\n",
                "test.yaml, document 1: spec.ingest.port: expected an integer"
            ),
            (
                "apiVersion: liverelay.io/v1alpha1\nkind: LiveStream\nmetadata: { name: Bad_Name }\nspec: {}\n",
                "LiveStream Bad_Name is invalid: metadata.name"
            ),
        ]
    )
    func sameValidation(yaml: String, message: String) {
        #expect {
            _ = try RelayConfiguration.streams(yaml: yaml, source: "test.yaml", secretsDirectory: "/nonexistent")
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test("Duplicate target names and targets without a stream name are refused")
    func validation() throws {
        let url = try RTMPURL(parsing: "rtmp://h/app")
        var configuration = RelayConfiguration(streamKey: Secret("k"))
        configuration.streams[0].targets = [
            .init(name: "a", url: url, streamKey: Secret("x")), .init(name: "a", url: url, streamKey: Secret("y")),
        ]
        #expect(throws: RelayConfigurationError.invalid("stream 'default': target name 'a' is used twice")) {
            try configuration.validate()
        }
        configuration.streams[0].targets = [.init(name: "b", url: url)]
        #expect(throws: RelayConfigurationError.self) { try configuration.validate() }
        configuration.streams[0].targets = []
        configuration.streams[0].authorization = .key(Secret(""))
        #expect(throws: RelayConfigurationError.invalid("stream 'default': the ingest stream key is empty")) {
            try configuration.validate()
        }
        let other = StreamConfiguration(name: "other", app: "live", authorization: .key(Secret("k")))
        configuration.streams = [StreamConfiguration(name: "one", authorization: .key(Secret("k"))), other]
        #expect(throws: RelayConfigurationError.invalid("streams 'one' and 'other' share app 'live' and key")) {
            try configuration.validate()
        }
    }

    @Test("Many LiveStreams and the Secrets they reference in one file, as applied to a cluster")
    func multiDocument() throws {
        let yaml = """
            apiVersion: v1
            kind: Secret
            metadata: { name: keys }
            stringData: { one: first-key, two: second-key }
            data: { target: dGFyZ2V0LWtleQ== }
            ---
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: one }
            spec:
              ingest: { streamKeySecretRef: { name: keys, key: one } }
              targets: [{ name: t, url: "rtmp://h/app", streamKeySecretRef: { name: keys, key: target } }]
              rules: { maxKeyframeIntervalSeconds: 2 }
            ---
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: two }
            spec:
              ingest: { app: other, streamKeySecretRef: { name: keys, key: two } }
            ---
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: hooked }
            spec:
              ingest: { app: hooked, webhook: { url: "http://127.0.0.1:9/auth", timeoutSeconds: 1.5 } }
            """
        let streams = try RelayConfiguration.streams(yaml: yaml, source: "test.yaml", secretsDirectory: "/nonexistent")
        #expect(streams.map(\.name) == ["one", "two", "hooked"])
        #expect(streams[0].authorization == .key(Secret("first-key")))
        #expect(streams[0].targets.first?.streamKey == Secret("target-key"))
        #expect(streams[0].rules.maxKeyframeInterval == .seconds(2))
        #expect(streams[1].app == "other")
        #expect(streams[2].authorization == .webhook(url: "http://127.0.0.1:9/auth", timeout: .milliseconds(1500)))
        try RelayConfiguration(streams: streams).validate()
    }

    @Test("A Secret reference to a key the Secret lacks names both, and no value")
    func secretWithoutKey() {
        let yaml = """
            apiVersion: v1
            kind: Secret
            metadata: { name: keys }
            stringData: { one: first-key }
            ---
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: one }
            spec: { ingest: { streamKeySecretRef: { name: keys, key: missing } } }
            """
        #expect {
            _ = try RelayConfiguration.streams(yaml: yaml, source: "test.yaml", secretsDirectory: "/nonexistent")
        } throws: { error in
            "\(error)".contains("Secret keys in test.yaml has no key missing") && !"\(error)".contains("first-key")
        }
    }
}
