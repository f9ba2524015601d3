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

import BrowserTestSupport
import Foundation
import PeerTestSupport
import Synchronization

/// A top-level browsing context of headless Firefox driven through WebDriver BiDi (W3C), which Firefox serves itself
/// on its remote-debugging port: scripts evaluated in the page, key presses through `input.performActions`,
/// navigation, cookies, screenshots.
struct BiDiPage: BrowserPage {
    let connection: CommandConnection
    /// The browsing context's id.
    let context: String
    /// What the page logged (console messages and uncaught errors), the last ones, for failure reports.
    let log: PageLog

    var browserName: String { "Firefox" }

    func evaluate<T: Decodable>(_ expression: String, as type: T.Type) async throws -> T {
        let object = try await self.connection.object(
            "script.evaluate",
            [
                "expression": browserPageExpression(expression), "target": ["context": self.context],
                "awaitPromise": true, "resultOwnership": "none",
            ]
        )
        if object["type"] as? String == "exception" {
            let details = object["exceptionDetails"] as? [String: Any]
            throw CommandConnection.ProtocolError(
                description: "the page threw: \(details?["text"] ?? details ?? [:])"
            )
        }
        guard let result = object["result"] as? [String: Any], let json = result["value"] as? String else {
            throw CommandConnection.ProtocolError(description: "no value from \(expression)")
        }
        return try JSONDecoder().decode(T.self, from: Data(json.utf8))
    }

    func navigate(_ url: String) async throws {
        _ = try await self.connection.send(
            "browsingContext.navigate",
            ["context": self.context, "url": url, "wait": "complete"]
        )
    }

    func screenshot(_ path: String) async throws {
        let object = try await self.connection.object("browsingContext.captureScreenshot", ["context": self.context])
        guard let base64 = object["data"] as? String, let png = Data(base64Encoded: base64) else {
            throw CommandConnection.ProtocolError(description: "no screenshot")
        }
        try png.write(to: URL(fileURLWithPath: path))
    }

    func cookie(named name: String) async throws -> BrowserCookie? {
        let object = try await self.connection.object(
            "storage.getCookies",
            ["filter": ["name": name], "partition": ["type": "context", "context": self.context]]
        )
        let cookies = object["cookies"] as? [[String: Any]] ?? []
        return cookies.first.map { cookie in
            BrowserCookie(
                value: (cookie["value"] as? [String: Any])?["value"] as? String ?? "",
                httpOnly: cookie["httpOnly"] as? Bool ?? false,
                sameSite: (cookie["sameSite"] as? String)?.lowercased()
            )
        }
    }

    /// The keys as one key input source's actions: WebDriver's key values for the special keys, each pressed and
    /// released.
    func press(_ keys: [Key]) async throws {
        var actions: [[String: any Sendable]] = []
        func stroke(_ value: String) {
            actions.append(["type": "keyDown", "value": value])
            actions.append(["type": "keyUp", "value": value])
        }
        for key in keys {
            switch key {
            case .tab: stroke("\u{E004}")
            case .shiftTab:
                actions.append(["type": "keyDown", "value": "\u{E008}"])
                stroke("\u{E004}")
                actions.append(["type": "keyUp", "value": "\u{E008}"])
            case .enter: stroke("\u{E007}")
            case .space: stroke(" ")
            case .escape: stroke("\u{E00C}")
            case .backspace: stroke("\u{E003}")
            case .text(let text):
                for character in text {
                    stroke(String(character))
                }
            }
        }
        let source: [String: any Sendable] = ["type": "key", "id": "keyboard", "actions": actions]
        _ = try await self.connection.send("input.performActions", ["context": self.context, "actions": [source]])
    }
}

/// The last messages a page logged, as BiDi's `log.entryAdded` events report them.
final class PageLog: Sendable {
    private let entries = Mutex<[String]>([])

    func add(_ parameters: Data) {
        guard let object = try? JSONSerialization.jsonObject(with: parameters) as? [String: Any] else {
            return
        }
        let entry = "\(object["level"] ?? "?"): \(object["text"] ?? "")"
        self.entries.withLock { entries in
            entries.append(entry)
            if entries.count > 50 {
                entries.removeFirst()
            }
        }
    }

    var lines: [String] { self.entries.withLock { $0 } }
}

/// Starts headless Firefox, opens a WebDriver BiDi session, loads `url` in its tab and runs `body` with it; stops
/// the browser afterwards, whatever happens.
func withBiDiPage<Result: Sendable>(
    _ url: String,
    _ body: @escaping @Sendable (BiDiPage) async throws -> Result
) async throws -> Result {
    try await Firefox.withBrowser { browser in
        let port = try await eventually("Firefox's WebDriver BiDi address", timeout: .seconds(60)) { () -> Int? in
            if browser.hasExited {
                throw CommandConnection.ProtocolError(
                    description: "Firefox ended: \(browser.exit.map { "\($0)" } ?? "")"
                )
            }
            return Firefox.webDriverBiDiPort(in: browser.standardErrorSoFar)
        }
        let log = PageLog()
        return try await withCommandConnection(
            "ws://127.0.0.1:\(port)/session",
            onEvent: { method, parameters in
                if method == "log.entryAdded" {
                    log.add(parameters)
                }
            }
        ) { connection in
            _ = try await connection.send("session.new", ["capabilities": [:] as [String: any Sendable]])
            _ = try await connection.send("session.subscribe", ["events": ["log.entryAdded"]])
            // The window Firefox opens at start never has the focus when headless (`document.hasFocus()` stays
            // false, whatever `browsingContext.activate` does), and without it Firefox dispatches key events but
            // does not activate a focused button on Enter or Space: its focus manager has no focused element in an
            // unfocused window. A window opened through BiDi has the focus, so the page goes there.
            let tree = try await connection.object("browsingContext.getTree", ["maxDepth": 0])
            let first = (tree["contexts"] as? [[String: Any]])?.first?["context"] as? String
            let created = try await connection.object("browsingContext.create", ["type": "window"])
            guard let context = created["context"] as? String else {
                throw CommandConnection.ProtocolError(description: "Firefox opened no window")
            }
            if let first {
                _ = try await connection.send("browsingContext.close", ["context": first])
            }
            _ = try await connection.send(
                "browsingContext.setViewport",
                ["context": context, "viewport": ["width": 1280, "height": 800] as [String: any Sendable]]
            )
            let page = BiDiPage(connection: connection, context: context, log: log)
            try await page.navigate(url)
            let result = try await body(page)
            _ = try? await connection.send("session.end")
            return result
        }
    }
}
