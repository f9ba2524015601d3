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

/// A key a test presses: the browser's own key events, as a person's keyboard sends them.
package enum Key: Sendable, Hashable {
    case tab
    case shiftTab
    case enter
    case space
    case escape
    case backspace
    /// Each character typed as its own key press.
    case text(String)
}

/// A cookie as the browser holds it (the page itself cannot read an HttpOnly one).
package struct BrowserCookie: Sendable, Hashable {
    package var value: String
    package var httpOnly: Bool
    /// `strict`, `lax` or `none`, lowercased.
    package var sameSite: String?

    package init(value: String, httpOnly: Bool, sameSite: String?) {
        self.value = value
        self.httpOnly = httpOnly
        self.sameSite = sameSite
    }
}

/// A page in a real browser that a test drives: Chromium through the DevTools protocol (``DevToolsPage``), Firefox
/// through WebDriver BiDi (``BiDiPage``). A journey written against this runs in both.
package protocol BrowserPage: Sendable {
    /// The browser's name, for messages.
    var browserName: String { get }
    /// Evaluates `expression` (it may `await`) in the page and decodes its value, passed through `JSON.stringify`.
    func evaluate<T: Decodable>(_ expression: String, as type: T.Type) async throws -> T
    /// Loads `url` in the page.
    func navigate(_ url: String) async throws
    /// Saves what the page shows as a PNG at `path`.
    func screenshot(_ path: String) async throws
    /// The cookie named `name` that the browser would send to the page's origin, if any.
    func cookie(named name: String) async throws -> BrowserCookie?
    /// Presses `keys` one after the other, as key events the browser dispatches to whatever has the focus.
    func press(_ keys: [Key]) async throws
}

extension BrowserPage {
    package func evaluate<T: Decodable>(_ expression: String) async throws -> T {
        try await self.evaluate(expression, as: T.self)
    }

    /// Runs `statement` in the page for its effect.
    package func run(_ statement: String) async throws {
        _ = try await self.evaluate("(async () => { \(statement); return true })()", as: Bool.self)
    }

    package func press(_ keys: Key...) async throws {
        try await self.press(keys)
    }
}

/// `expression` wrapped so that the page answers its awaited value as a JSON string.
package func browserPageExpression(_ expression: String) -> String {
    "(async () => JSON.stringify(await (async () => (\(expression)))()))()"
}

/// A browser test's failure, said in words.
package struct BrowserTestError: Error, CustomStringConvertible {
    package var description: String

    package init(_ description: String) {
        self.description = description
    }
}
