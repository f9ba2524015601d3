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
import Testing

/// The console by keyboard alone, in each browser: every step a key press the browser itself dispatches (Tab,
/// Shift-Tab, typing, Enter, Space, Escape); scripts only look at the page. Every control of every state it passes
/// through has an accessible name.
@Suite("Console by keyboard against local mode", .timeLimit(.minutes(10)))
struct ConsoleKeyboardTests {
    typealias B = BrowserSteps

    @Test(
        "Sign in, create a stream with a target, go live, switch the target off, edit, sign out: keys only",
        arguments: WebBrowser.allCases
    )
    func keyboardOnly(in browser: WebBrowser) async throws {
        try browser.require()
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("liverelay-console-keyboard-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let password = "pw-\(UInt64.random(in: 0...UInt64.max))"

        try await LocalModeProcess.with(in: directory, adminPassword: password) { local in
            try await browser.withPage(local.consoleURL, screenshotName: "console-keyboard-failure") { page in
                try await Self.journey(page, password: password, streamsFile: local.streamsFile)
            }
        }
    }

    static func journey(_ page: any BrowserPage, password: String, streamsFile: String) async throws {
        let card = #"[data-stream="default/keys"]"#
        try await B.waitFor(page, "the sign-in form", "!document.querySelector('#sign-in-view').hidden")

        // A wrong password first: the error is shown, the password selected for typing over.
        try await B.tab(page, to: "#username")
        try await page.press(.text("admin"), .tab, .text("wrong"), .enter)
        try await B.waitFor(page, "the sign-in error", "document.querySelector('#sign-in-error').textContent !== ''")
        try await B.expectAccessibleNames(page, "a failed sign-in")
        #expect(try await B.isFocused(page, "#password"))
        try await page.press(.text(password), .enter)
        try await B.waitFor(page, "the streams", "!document.querySelector('#streams-view').hidden")
        try await B.expectAccessibleNames(page, "no stream yet")

        // New stream: the editor opens with the focus on its first field.
        try await B.tab(page, to: "#new-stream")
        try await page.press(.enter)
        try await B.waitFor(page, "the editor", "document.querySelector('#editor').open")
        #expect(try await B.isFocused(page, "#edit-name"))
        try await B.expectAccessibleNames(page, "the editor of a new stream")

        // A name the server refuses: the error shows beside the field, the dialog stays open.
        try await page.press(.text("Not A Name"))
        try await B.tab(page, to: "#save-stream")
        try await page.press(.enter)
        try await B.waitFor(
            page,
            "the name's error",
            "document.querySelector('#edit-name-error').textContent !== ''"
        )
        #expect(try await page.evaluate("document.querySelector('#editor').open", as: Bool.self))
        try await B.expectAccessibleNames(page, "the editor showing an error")
        try await B.tab(page, to: "#edit-name", backward: true)
        try await page.press(Array(repeating: .backspace, count: 12) + [.text("keys")])
        #expect(try await page.evaluate("document.querySelector('#edit-name').value", as: String.self) == "keys")

        // A target: Add target moves the focus into the new row.
        try await B.tab(page, to: "#add-target")
        try await page.press(.space)
        try await B.waitFor(page, "the target's row", "document.activeElement?.classList.contains('t-name') ?? false")
        let targetKey = "k-\(UInt32.random(in: 0...UInt32.max))"
        try await page.press(.text("one"), .tab, .text("rtmp://127.0.0.1:9/one"), .tab, .text(targetKey))
        #expect(try await B.isFocused(page, "#edit-targets .t-key"))
        try await B.expectAccessibleNames(page, "the editor with a target")
        try await B.tab(page, to: "#save-stream")
        try await page.press(.enter)
        try await B.waitFor(page, "the new stream's card", "!!document.querySelector('\(card)')")
        try await B.waitFor(page, "the editor closed", "!document.querySelector('#editor').open")
        #expect(try await B.text(page, "\(card) .phase") == "Suspended")
        #expect(try await B.text(page, "\(card) li[data-target=\"one\"] code") == "rtmp://127.0.0.1:9/one")
        try await B.expectAccessibleNames(page, "a suspended stream")

        // Go Live with Enter, the target off with Space.
        try await B.tab(page, to: "\(card) .s-live")
        try await page.press(.enter)
        try await B.waitFor(page, "the stream idle", "document.querySelector('\(card) .phase').textContent === 'Idle'")
        try await B.tab(page, to: "\(card) li[data-target=\"one\"] .t-switch")
        try await page.press(.space)
        try await B.waitFor(
            page,
            "target one off",
            "document.querySelector('\(card) li[data-target=\"one\"] .t-state').dataset.state === 'disabled'"
        )
        #expect(try await B.isFocused(page, "\(card) li[data-target=\"one\"] .t-switch"))
        try await B.expectAccessibleNames(page, "an idle stream, its target off")
        let file = try String(contentsOfFile: streamsFile, encoding: .utf8)
        #expect(file.contains("name: keys"))
        #expect(file.contains("url: rtmp://127.0.0.1:9/one"))

        // The editor of an existing stream: Escape closes it.
        try await B.tab(page, to: "\(card) .s-edit", backward: true)
        try await page.press(.enter)
        try await B.waitFor(page, "the editor again", "document.querySelector('#editor').open")
        #expect(try await B.text(page, "#editor-title") == "Edit keys")
        try await B.expectAccessibleNames(page, "the editor of an existing stream")
        try await page.press(.escape)
        try await B.waitFor(page, "the editor closed again", "!document.querySelector('#editor').open")

        // Sign out, the first control of the page.
        try await B.tab(page, to: "#sign-out", backward: true)
        try await page.press(.enter)
        try await B.waitFor(page, "the sign-in form again", "!document.querySelector('#sign-in-view').hidden")
        try await B.expectAccessibleNames(page, "signed out")
    }
}
