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
import Logging
import NIOCore
import NIOWebSocket
import PeerTestSupport
import Synchronization
import WSClient

/// A page of headless Chromium driven through the DevTools protocol over its WebSocket: scripts evaluated in the
/// page (typing and clicking as the page's own event handlers see them), navigation, screenshots.
final class DevToolsPage: Sendable {
    struct ProtocolError: Error, CustomStringConvertible {
        var description: String
    }

    private struct State {
        var nextID = 0
        var waiting: [Int: CheckedContinuation<Data, any Error>] = [:]
        var closed = false
    }

    private let outbound: WebSocketOutboundWriter
    private let state = Mutex(State())

    fileprivate init(outbound: WebSocketOutboundWriter) {
        self.outbound = outbound
    }

    /// Sends one command; returns its `result` object as JSON.
    func send(_ method: String, _ parameters: [String: any Sendable] = [:]) async throws -> Data {
        let id = self.state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        let message = try JSONSerialization.data(
            withJSONObject: ["id": id, "method": method, "params": parameters as [String: Any]]
        )
        return try await withCheckedThrowingContinuation { continuation in
            let closed = self.state.withLock { state in
                if !state.closed {
                    state.waiting[id] = continuation
                }
                return state.closed
            }
            if closed {
                continuation.resume(throwing: ProtocolError(description: "the DevTools connection is closed"))
                return
            }
            Task {
                do {
                    try await self.outbound.write(.text(String(decoding: message, as: UTF8.self)))
                } catch {
                    self.state.withLock { $0.waiting.removeValue(forKey: id) }?.resume(throwing: error)
                }
            }
        }
    }

    fileprivate func received(_ text: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let id = object["id"] as? Int,
            let continuation = self.state.withLock({ $0.waiting.removeValue(forKey: id) })
        else {
            return  // an event
        }
        if let error = object["error"] {
            continuation.resume(throwing: ProtocolError(description: "\(error)"))
        } else {
            let result = (try? JSONSerialization.data(withJSONObject: object["result"] ?? [:])) ?? Data("{}".utf8)
            continuation.resume(returning: result)
        }
    }

    fileprivate func closed() {
        let waiting = self.state.withLock { state in
            state.closed = true
            defer { state.waiting = [:] }
            return Array(state.waiting.values)
        }
        for continuation in waiting {
            continuation.resume(throwing: ProtocolError(description: "the DevTools connection closed"))
        }
    }

    /// Evaluates `expression` (it may `await`) in the page and decodes its value, passed through `JSON.stringify`.
    func evaluate<T: Decodable>(_ expression: String, as type: T.Type = T.self) async throws -> T {
        let wrapped = "(async () => JSON.stringify(await (async () => (\(expression)))()))()"
        let data = try await self.send(
            "Runtime.evaluate",
            ["expression": wrapped, "awaitPromise": true, "returnByValue": true]
        )
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        if let exception = object?["exceptionDetails"] as? [String: Any] {
            let detail = (exception["exception"] as? [String: Any])?["description"] ?? exception["text"] ?? exception
            throw ProtocolError(description: "the page threw: \(detail)")
        }
        guard let result = object?["result"] as? [String: Any], let json = result["value"] as? String else {
            throw ProtocolError(description: "no value from \(expression)")
        }
        return try JSONDecoder().decode(T.self, from: Data(json.utf8))
    }

    /// Runs `statement` in the page for its effect.
    func run(_ statement: String) async throws {
        _ = try await self.evaluate("(async () => { \(statement); return true })()", as: Bool.self)
    }

    func navigate(_ url: String) async throws {
        _ = try await self.send("Page.navigate", ["url": url])
    }

    /// Saves what the page shows as a PNG at `path`.
    func screenshot(_ path: String) async throws {
        let data = try await self.send("Page.captureScreenshot", ["format": "png"])
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        guard let base64 = object?["data"] as? String, let png = Data(base64Encoded: base64) else {
            throw ProtocolError(description: "no screenshot")
        }
        try png.write(to: URL(fileURLWithPath: path))
    }
}

/// Opens `url` in headless Chromium, connects to the page's DevTools WebSocket and runs `body` with it; stops the
/// browser afterwards, whatever happens.
func withDevToolsPage<Result: Sendable>(
    _ url: String,
    _ body: @escaping @Sendable (DevToolsPage) async throws -> Result
) async throws -> Result {
    try await Chromium.withPage(url) { browser in
        let line = try await eventually("Chromium's DevTools address", timeout: .seconds(30)) { () -> String? in
            browser.standardErrorSoFar.split(separator: "\n").first { $0.contains("DevTools listening on ws://") }
                .map(String.init)
        }
        guard let start = line.range(of: "ws://127.0.0.1:"),
            let port = Int(line[start.upperBound...].prefix { $0.isNumber })
        else {
            throw DevToolsPage.ProtocolError(description: "no port in \(line)")
        }
        let pageSocket = try await eventually("the page's DevTools target") { () -> String? in
            let response = try await HTTPClient.shared.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(port)/json/list"),
                timeout: .seconds(5)
            )
            let body = try await response.body.collect(upTo: 1 << 20)
            let targets = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [[String: Any]]
            return targets?.first { $0["type"] as? String == "page" }?["webSocketDebuggerUrl"] as? String
        }
        let outcome = Mutex<Swift.Result<Result, any Error>?>(nil)
        try await WebSocketClient.connect(
            url: pageSocket,
            configuration: .init(maxFrameSize: 1 << 26),
            logger: Logger(label: "devtools")
        ) { inbound, outbound, _ in
            let page = DevToolsPage(outbound: outbound)
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        for try await message in inbound.messages(maxSize: 1 << 26) {
                            if case .text(let text) = message {
                                page.received(text)
                            }
                        }
                    } catch {}
                    page.closed()
                }
                let result: Swift.Result<Result, any Error>
                do {
                    _ = try await page.send("Page.enable")
                    _ = try await page.send("Runtime.enable")
                    result = .success(try await body(page))
                } catch {
                    result = .failure(error)
                }
                outcome.withLock { $0 = result }
                try? await outbound.close(.normalClosure, reason: nil)
            }
        }
        guard let result = outcome.withLock({ $0 }) else {
            throw DevToolsPage.ProtocolError(description: "the DevTools connection ended early")
        }
        return try result.get()
    }
}
