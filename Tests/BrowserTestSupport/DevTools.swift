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
package import Foundation
import Logging
import NIOCore
import NIOWebSocket
import PeerTestSupport
import Synchronization
import WSClient

/// A browser's remote protocol over a WebSocket, as the Chrome DevTools protocol and WebDriver BiDi both shape it:
/// JSON commands `{id, method, params}`, answered by a message with the same `id` and a `result` (or an `error`);
/// every other message is an event `{method, params}`.
package final class CommandConnection: Sendable {
    package struct ProtocolError: Error, CustomStringConvertible {
        package var description: String

        package init(description: String) {
            self.description = description
        }
    }

    private struct State {
        var nextID = 0
        var waiting: [Int: CheckedContinuation<Data, any Error>] = [:]
        var closed = false
    }

    private let outbound: WebSocketOutboundWriter
    private let onEvent: @Sendable (_ method: String, _ parameters: Data) -> Void
    private let state = Mutex(State())

    fileprivate init(
        outbound: WebSocketOutboundWriter,
        onEvent: @escaping @Sendable (_ method: String, _ parameters: Data) -> Void
    ) {
        self.outbound = outbound
        self.onEvent = onEvent
    }

    /// Sends one command; returns its `result` object as JSON.
    package func send(_ method: String, _ parameters: [String: any Sendable] = [:]) async throws -> Data {
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
                continuation.resume(throwing: ProtocolError(description: "the browser's connection is closed"))
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

    /// Sends one command and returns its result as a JSON object.
    package func object(_ method: String, _ parameters: [String: any Sendable] = [:]) async throws -> [String: Any] {
        let data = try await self.send(method, parameters)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ProtocolError(description: "\(method) answered no object")
        }
        return object
    }

    fileprivate func received(_ text: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            return
        }
        guard let id = object["id"] as? Int else {
            if let method = object["method"] as? String {
                let parameters = (try? JSONSerialization.data(withJSONObject: object["params"] ?? [:])) ?? Data()
                self.onEvent(method, parameters)
            }
            return
        }
        guard let continuation = self.state.withLock({ $0.waiting.removeValue(forKey: id) }) else {
            return
        }
        if let error = object["error"] {
            // DevTools: {code, message}; BiDi: an error code with a message beside it.
            let message = object["message"].map { ": \($0)" } ?? ""
            continuation.resume(throwing: ProtocolError(description: "\(error)\(message)"))
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
            continuation.resume(throwing: ProtocolError(description: "the browser's connection closed"))
        }
    }
}

/// Connects to a browser's protocol WebSocket at `url`, runs `body` with the connection, and closes it.
package func withCommandConnection<Result: Sendable>(
    _ url: String,
    onEvent: @escaping @Sendable (_ method: String, _ parameters: Data) -> Void = { _, _ in },
    _ body: @escaping @Sendable (CommandConnection) async throws -> Result
) async throws -> Result {
    let outcome = Mutex<Swift.Result<Result, any Error>?>(nil)
    try await WebSocketClient.connect(
        url: url,
        configuration: .init(maxFrameSize: 1 << 26),
        logger: Logger(label: "browser-protocol")
    ) { inbound, outbound, _ in
        let connection = CommandConnection(outbound: outbound, onEvent: onEvent)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await message in inbound.messages(maxSize: 1 << 26) {
                        if case .text(let text) = message {
                            connection.received(text)
                        }
                    }
                } catch {}
                connection.closed()
            }
            let result: Swift.Result<Result, any Error>
            do {
                result = .success(try await body(connection))
            } catch {
                result = .failure(error)
            }
            outcome.withLock { $0 = result }
            try? await outbound.close(.normalClosure, reason: nil)
        }
    }
    guard let result = outcome.withLock({ $0 }) else {
        throw CommandConnection.ProtocolError(description: "the connection to the browser ended early")
    }
    return try result.get()
}

/// A page of headless Chromium driven through the DevTools protocol over its WebSocket: scripts evaluated in the
/// page, key presses as the browser's own input, navigation, cookies, screenshots.
package struct DevToolsPage: BrowserPage {
    package let connection: CommandConnection

    package var browserName: String { "Chromium" }

    package func evaluate<T: Decodable>(_ expression: String, as type: T.Type) async throws -> T {
        let object = try await self.connection.object(
            "Runtime.evaluate",
            ["expression": browserPageExpression(expression), "awaitPromise": true, "returnByValue": true]
        )
        if let exception = object["exceptionDetails"] as? [String: Any] {
            let detail = (exception["exception"] as? [String: Any])?["description"] ?? exception["text"] ?? exception
            throw CommandConnection.ProtocolError(description: "the page threw: \(detail)")
        }
        guard let result = object["result"] as? [String: Any], let json = result["value"] as? String else {
            throw CommandConnection.ProtocolError(description: "no value from \(expression)")
        }
        return try JSONDecoder().decode(T.self, from: Data(json.utf8))
    }

    package func navigate(_ url: String) async throws {
        _ = try await self.connection.send("Page.navigate", ["url": url])
    }

    package func screenshot(_ path: String) async throws {
        let object = try await self.connection.object("Page.captureScreenshot", ["format": "png"])
        guard let base64 = object["data"] as? String, let png = Data(base64Encoded: base64) else {
            throw CommandConnection.ProtocolError(description: "no screenshot")
        }
        try png.write(to: URL(fileURLWithPath: path))
    }

    package func cookie(named name: String) async throws -> BrowserCookie? {
        let object = try await self.connection.object("Network.getCookies")
        let cookies = object["cookies"] as? [[String: Any]] ?? []
        return cookies.first { $0["name"] as? String == name }.map { cookie in
            BrowserCookie(
                value: cookie["value"] as? String ?? "",
                httpOnly: cookie["httpOnly"] as? Bool ?? false,
                sameSite: (cookie["sameSite"] as? String)?.lowercased()
            )
        }
    }

    /// Each key as `Input.dispatchKeyEvent` sends it: a key down (with the text it types, if any), then a key up.
    package func press(_ keys: [Key]) async throws {
        for key in keys {
            let events: [(key: String, code: String, keyCode: Int, text: String?, shift: Bool)]
            switch key {
            case .tab: events = [("Tab", "Tab", 9, nil, false)]
            case .shiftTab: events = [("Tab", "Tab", 9, nil, true)]
            case .enter: events = [("Enter", "Enter", 13, "\r", false)]
            case .space: events = [(" ", "Space", 32, " ", false)]
            case .escape: events = [("Escape", "Escape", 27, nil, false)]
            case .backspace: events = [("Backspace", "Backspace", 8, nil, false)]
            case .text(let text): events = text.map { (String($0), "", 0, String($0), false) }
            }
            for event in events {
                var down: [String: any Sendable] = [
                    "type": event.text == nil ? "rawKeyDown" : "keyDown", "key": event.key, "code": event.code,
                    "windowsVirtualKeyCode": event.keyCode, "modifiers": event.shift ? 8 : 0,
                ]
                if let text = event.text {
                    down["text"] = text
                }
                if event.shift {
                    _ = try await self.connection.send(
                        "Input.dispatchKeyEvent",
                        [
                            "type": "rawKeyDown", "key": "Shift", "code": "ShiftLeft", "windowsVirtualKeyCode": 16,
                            "modifiers": 8,
                        ]
                    )
                }
                _ = try await self.connection.send("Input.dispatchKeyEvent", down)
                var up = down
                up["type"] = "keyUp"
                up["text"] = nil
                _ = try await self.connection.send("Input.dispatchKeyEvent", up)
                if event.shift {
                    _ = try await self.connection.send(
                        "Input.dispatchKeyEvent",
                        ["type": "keyUp", "key": "Shift", "code": "ShiftLeft", "windowsVirtualKeyCode": 16]
                    )
                }
            }
        }
    }
}

/// Opens `url` in headless Chromium, connects to the page's DevTools WebSocket and runs `body` with it; stops the
/// browser afterwards, whatever happens.
package func withDevToolsPage<Result: Sendable>(
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
            throw CommandConnection.ProtocolError(description: "no port in \(line)")
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
        return try await withCommandConnection(pageSocket) { connection in
            _ = try await connection.send("Page.enable")
            _ = try await connection.send("Runtime.enable")
            return try await body(DevToolsPage(connection: connection))
        }
    }
}
