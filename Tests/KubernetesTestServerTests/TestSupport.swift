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

import AsyncHTTPClient
import Foundation
import KubernetesTestServer
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing

/// Whether a test that needs a peer runs: when the peer is there, and always under `LIVERELAY_REQUIRE_PEERS=1`
/// (tools/test.sh), where a missing peer fails the test, saying what is missing, instead of skipping it.
func peerAvailable(_ available: Bool) -> Bool {
    available || ProcessInfo.processInfo.environment["LIVERELAY_REQUIRE_PEERS"] == "1"
}

/// A response: the status code, the parsed JSON body and the headers.
struct APIResponse {
    var status: Int
    var body: JSON
    var headers: [(String, String)]

    func header(_ name: String) -> String? {
        self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// A tiny client for the tests: raw HTTP through AsyncHTTPClient, bodies as ``JSON``.
struct TestClient {
    let baseURL: String
    var token: String?

    init(_ server: KubernetesTestServer, token: String? = nil) {
        self.baseURL = server.baseURL
        self.token = token
    }

    init(baseURL: String, token: String? = nil) {
        self.baseURL = baseURL
        self.token = token
    }

    func request(
        _ method: String,
        _ path: String,
        body: JSON? = nil,
        text: String? = nil,
        contentType: String = "application/json",
        accept: String? = nil,
        headers: [(String, String)] = [],
        bytes: [UInt8]? = nil,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> APIResponse {
        var request = HTTPClientRequest(url: self.baseURL + path)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let accept { request.headers.add(name: "Accept", value: accept) }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(data: body.encoded()))
        } else if let text {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(string: text))
        } else if let bytes {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: bytes))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
        let json = bytes.readableBytes == 0 ? JSON.null : try JSON(data: Data(buffer: bytes))
        return APIResponse(
            status: Int(response.status.code),
            body: json,
            headers: response.headers.map { ($0.name, $0.value) }
        )
    }

    func get(_ path: String) async throws -> APIResponse { try await self.request("GET", path) }

    func post(_ path: String, _ body: JSON) async throws -> APIResponse {
        try await self.request("POST", path, body: body)
    }

    func put(_ path: String, _ body: JSON) async throws -> APIResponse {
        try await self.request("PUT", path, body: body)
    }

    func patch(_ path: String, _ body: JSON, type: String = "application/merge-patch+json") async throws -> APIResponse
    {
        try await self.request("PATCH", path, body: body, contentType: type)
    }

    func delete(_ path: String) async throws -> APIResponse { try await self.request("DELETE", path) }

    /// Opens a watch and returns its events one by one.
    func watch(_ path: String) async throws -> WatchStream {
        var request = HTTPClientRequest(url: self.baseURL + path)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        #expect(response.status.code == 200)
        return WatchStream(body: response.body.makeAsyncIterator())
    }
}

/// The events of one watch, parsed from newline-delimited JSON.
struct WatchStream {
    var body: HTTPClientResponse.Body.AsyncIterator
    var buffer = Data()

    /// The next event, or `nil` when the server ended the stream.
    mutating func next() async throws -> JSON? {
        while true {
            if let newline = self.buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = self.buffer[self.buffer.startIndex..<newline]
                self.buffer = Data(self.buffer[self.buffer.index(after: newline)...])
                if line.isEmpty { continue }
                return try JSON(data: Data(line))
            }
            guard let chunk = try await self.body.next() else { return nil }
            self.buffer.append(contentsOf: chunk.readableBytesView)
        }
    }

    /// The next event that is not a bookmark.
    mutating func nextChange() async throws -> JSON? {
        while let event = try await self.next() {
            if event["type"] != "BOOKMARK" { return event }
        }
        return nil
    }
}

/// Runs `body` with a fresh server and a client for it.
func withServer<Result>(
    _ configuration: KubernetesTestServer.Configuration = .init(bookmarkInterval: .milliseconds(200)),
    _ body: (KubernetesTestServer, TestClient) async throws -> Result
) async throws -> Result {
    var logger = Logger(label: "kube-test-server")
    logger.logLevel = .warning
    return try await withKubernetesTestServer(configuration: configuration, logger: logger) { server in
        try await body(server, TestClient(server, token: configuration.bearerToken))
    }
}

/// A small CRD exercising the schema features, with status and scale subresources and printer columns.
let widgetCRD = """
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.example.com
    spec:
      group: example.com
      scope: Namespaced
      names: { plural: widgets, singular: widget, kind: Widget, shortNames: [wd] }
      versions:
      - name: v1
        served: true
        storage: true
        subresources:
          status: {}
          scale: { specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas }
        additionalPrinterColumns:
        - { name: Size, type: integer, jsonPath: .spec.size }
        - { name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status' }
        schema:
          openAPIV3Schema:
            type: object
            properties:
              spec:
                type: object
                required: [size]
                properties:
                  size: { type: integer, minimum: 1, maximum: 10 }
                  color: { type: string, enum: [red, blue], default: red }
                  name: { type: string, pattern: '^[a-z]+$', maxLength: 8 }
                  port: { x-kubernetes-int-or-string: true }
                  note: { type: string, nullable: true }
                  replicas: { type: integer }
                  tags: { type: array, items: { type: string }, maxItems: 3 }
                  labels: { type: object, additionalProperties: { type: string } }
                  extra: { type: object, x-kubernetes-preserve-unknown-fields: true }
              status:
                type: object
                properties:
                  replicas: { type: integer }
                  conditions:
                    type: array
                    items:
                      type: object
                      properties:
                        type: { type: string }
                        status: { type: string }
    """

func widget(_ name: String, size: Int64 = 3, extra: [String: JSON] = [:]) -> JSON {
    var spec: [String: JSON] = ["size": .int(size)]
    for (key, value) in extra { spec[key] = value }
    return [
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": ["name": .string(name)], "spec": .object(spec),
    ]
}

let widgets = "/apis/example.com/v1/namespaces/default/widgets"

extension JSON {
    var name: String? { self[path: ["metadata", "name"]]?.stringValue }
    var resourceVersion: String? { self[path: ["metadata", "resourceVersion"]]?.stringValue }
    var generation: Int64? { self[path: ["metadata", "generation"]]?.intValue }

    /// The `managedFields` entry of `manager` with `operation` (and `subresource`), if there is one.
    func managedFields(_ manager: String, _ operation: String, subresource: String? = nil) -> JSON? {
        self[path: ["metadata", "managedFields"]]?.arrayValue?.first {
            $0["manager"]?.stringValue == manager && $0["operation"]?.stringValue == operation
                && $0["subresource"]?.stringValue == subresource
        }
    }
}
