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
import Console
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PeerTestSupport
import Testing

/// `liverelay local` as a user starts it, with its console, on ephemeral ports of 127.0.0.1.
struct LocalModeProcess: Sendable {
    let process: RunningProcess
    let consoleURL: String
    let stateDirectory: String
    let streamsFile: String

    static func with<Result: Sendable>(
        in directory: String,
        adminPassword: String,
        _ body: @Sendable (LocalModeProcess) async throws -> Result
    ) async throws -> Result {
        let streamsFile = directory + "/streams.yaml"
        try "# Streams made in the console\n".write(toFile: streamsFile, atomically: true, encoding: .utf8)
        let httpPort = try freeTCPPort()
        let base = try freeTCPPort()
        let portRange = base < 65000 ? "\(base)-\(base + 20)" : "\(base - 20)-\(base)"
        let arguments = [
            "local", "-f", streamsFile, "--state-dir", directory + "/state", "--listen-host", "127.0.0.1",
            "--http-listen", "127.0.0.1:\(httpPort)", "--port-range", portRange,
            "--console-admin-password", adminPassword, "--relay-log-level", "warning",
        ]
        return try await withRunningProcess(
            try liverelayExecutable(),
            arguments: arguments,
            standardOutput: .capture(limit: 256 * 1024)
        ) { process in
            let url = "http://127.0.0.1:\(httpPort)/"
            guard await process.waitForOutput(containing: "liverelay local: console \(url)") else {
                throw PeerError.startFailed(
                    "liverelay local printed no console URL: \(process.standardOutputSoFar) \(process.standardErrorSoFar)"
                )
            }
            let local = LocalModeProcess(
                process: process,
                consoleURL: url,
                stateDirectory: directory + "/state",
                streamsFile: streamsFile
            )
            let result: Result
            do {
                result = try await body(local)
            } catch {
                process.terminate()
                _ = await process.waitForExit(timeout: .seconds(20))
                throw error
            }
            process.terminate()
            let exit = await process.waitForExit(timeout: .seconds(20))
            #expect(exit?.succeeded == true, "liverelay local ended: \(exit.map { "\($0)" } ?? "not in time")")
            return result
        }
    }
}

/// An HTTP request to the console outside the browser, with a given session cookie.
func consoleRequest(
    _ url: String,
    method: HTTPMethod = .GET,
    cookie: String?,
    csrf: String? = nil,
    body: String? = nil
) async throws -> (status: Int, body: String) {
    var request = HTTPClientRequest(url: url)
    request.method = method
    if let cookie {
        request.headers.add(name: "Cookie", value: "liverelay_session=\(cookie)")
    }
    if let csrf {
        request.headers.add(name: "X-CSRF-Token", value: csrf)
    }
    if let body {
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
    }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let bytes = try await response.body.collect(upTo: 1 << 20)
    return (Int(response.status.code), String(buffer: bytes))
}

@Suite("Console in a real browser against local mode", .timeLimit(.minutes(6)))
struct ConsoleBrowserTests {
    /// Where the test saves README screenshots (`LIVERELAY_CONSOLE_SCREENSHOTS=docs`), if anywhere.
    static let screenshotDirectory = ProcessInfo.processInfo.environment["LIVERELAY_CONSOLE_SCREENSHOTS"]

    @Test(
        "Sign in, create a stream with two targets, go live, preview, switch a target, go offline, new key, sign out",
        arguments: WebBrowser.allCases
    )
    func journey(in browser: WebBrowser) async throws {
        try browser.require()
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("liverelay-console-journey-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        try await withNginxRTMP(applications: ["one", "two"]) { nginx in
            try await LocalModeProcess.with(in: directory, adminPassword: "admin-password-1") { local in
                // A second user, made as an operator would: `liverelay console users add`.
                let add = try RunningProcess.launch(
                    try liverelayExecutable(),
                    arguments: ["console", "users", "add", "bob", "--state-dir", local.stateDirectory],
                    standardOutput: .capture(limit: 64 * 1024)
                )
                let added = await add.waitForExit()
                #expect(added.succeeded, "\(added)")
                let bobPassword = try #require(
                    added.standardOutput.split(separator: "\n").first { $0.hasPrefix("password (shown once): ") }?
                        .dropFirst("password (shown once): ".count)
                )
                try await browser.withPage(local.consoleURL, screenshotName: "console-journey-failure") { page in
                    try await Self.journey(page, local: local, nginx: nginx, bobPassword: String(bobPassword))
                }
            }
        }
    }

    static func waitFor(
        _ page: any BrowserPage,
        _ what: String,
        timeout: Duration = .seconds(30),
        _ condition: String
    ) async throws {
        try await eventually(what, timeout: timeout, interval: .milliseconds(200)) {
            try await page.evaluate(condition, as: Bool.self)
        }
    }

    static func text(_ page: any BrowserPage, _ selector: String) async throws -> String {
        try await page.evaluate("document.querySelector(\(Self.quoted(selector)))?.textContent ?? ''", as: String.self)
    }

    static func quoted(_ text: String) -> String {
        String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
    }

    /// Types into a field as a person would: value set, `input` and `change` fired.
    static func type(_ page: any BrowserPage, _ selector: String, _ value: String) async throws {
        try await page.run(
            """
            const field = document.querySelector(\(Self.quoted(selector)));
            field.focus(); field.value = \(Self.quoted(value));
            field.dispatchEvent(new Event('input', { bubbles: true }));
            field.dispatchEvent(new Event('change', { bubbles: true }))
            """
        )
    }

    static func click(_ page: any BrowserPage, _ selector: String) async throws {
        try await page.run("document.querySelector(\(Self.quoted(selector))).click()")
    }

    /// Every input, select, textarea and button in the page (shown or hidden, and in same-origin frames) that has
    /// no accessible name: no `aria-labelledby` naming text, no `aria-label`, no label (`<label for>` or around it)
    /// with text, and for a button no text of its own. Each as the start of its HTML.
    static let unnamedControls = """
        (() => {
          const text = (e) => (e ? e.textContent : '').replace(/\\s+/g, ' ').trim();
          const named = (e) => {
            const ids = (e.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean);
            if (ids.map((id) => text(e.ownerDocument.getElementById(id))).join('')) return true;
            if ((e.getAttribute('aria-label') || '').trim()) return true;
            if ([...(e.labels || [])].map(text).join('')) return true;
            if (e.tagName === 'BUTTON' && text(e)) return true;
            return e.tagName === 'INPUT' && ['submit', 'reset', 'button'].includes(e.type) && !!e.value.trim();
          };
          const documents = [document, ...[...document.querySelectorAll('iframe')]
            .map((f) => { try { return f.contentDocument } catch { return null } }).filter(Boolean)];
          return documents.flatMap((d) => [...d.querySelectorAll('input, select, textarea, button')])
            .filter((e) => e.type !== 'hidden' && !named(e))
            .map((e) => e.outerHTML.slice(0, 300));
        })()
        """

    /// Expects every control of the page, in the state it is in now (`state`, for the message), to have an
    /// accessible name; names each one that has none.
    static func expectAccessibleNames(
        _ page: any BrowserPage,
        _ state: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let unnamed = try await page.evaluate(Self.unnamedControls, as: [String].self)
        #expect(
            unnamed.isEmpty,
            "controls without an accessible name in \(page.browserName), \(state): \(unnamed.joined(separator: "\n"))",
            sourceLocation: sourceLocation
        )
    }

    /// Whether the element with the keyboard focus matches `selector`.
    static func isFocused(_ page: any BrowserPage, _ selector: String) async throws -> Bool {
        try await page.evaluate("document.activeElement?.matches(\(Self.quoted(selector))) ?? false", as: Bool.self)
    }

    /// Presses Tab (Shift-Tab when `backward`) until the element matching `selector` has the focus, at most `limit`
    /// times; throws, naming where the focus went, when it never gets there.
    static func tab(
        _ page: any BrowserPage,
        to selector: String,
        backward: Bool = false,
        limit: Int = 30
    ) async throws {
        var visited: [String] = []
        for _ in 0...limit {
            if try await Self.isFocused(page, selector) {
                return
            }
            try await page.press(backward ? .shiftTab : .tab)
            visited.append(
                try await page.evaluate(
                    """
                    (() => { const e = document.activeElement; if (!e) return '(nothing)';
                      return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
                        (e.className ? '.' + String(e.className).split(' ').join('.') : '') })()
                    """,
                    as: String.self
                )
            )
        }
        throw BrowserTestError(
            "\(page.browserName): \(backward ? "Shift-Tab" : "Tab") never reached \(selector); the focus went "
                + visited.joined(separator: ", ")
        )
    }

    static func signIn(_ page: any BrowserPage, _ user: String, _ password: String) async throws {
        try await Self.waitFor(page, "the sign-in form", "!document.querySelector('#sign-in-view').hidden")
        try await Self.type(page, "#username", user)
        try await Self.type(page, "#password", password)
        try await page.run("document.querySelector('#sign-in-form').requestSubmit()")
        try await Self.waitFor(page, "the streams of \(user)", "!document.querySelector('#streams-view').hidden")
    }

    /// A screenshot for the README, taken in Chromium (the README shows one browser).
    static func screenshot(_ page: any BrowserPage, _ name: String) async throws {
        guard let directory = Self.screenshotDirectory, page is DevToolsPage else {
            return
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await page.screenshot(directory + "/" + name)
    }

    /// The session cookie the browser holds (HttpOnly: the page cannot read it, the browser's protocol can).
    static func sessionCookie(_ page: any BrowserPage) async throws -> String? {
        let session = try await page.cookie(named: "liverelay_session")
        #expect(session?.httpOnly == true, "in \(page.browserName)")
        #expect(session?.sameSite == "strict", "in \(page.browserName)")
        return session?.value
    }

    static func journey(
        _ page: any BrowserPage,
        local: LocalModeProcess,
        nginx: NginxRTMP,
        bobPassword: String
    ) async throws {
        let card = #"[data-stream="default/show"]"#
        try await Self.waitFor(page, "the sign-in form", "!document.querySelector('#sign-in-view').hidden")
        try await Self.expectAccessibleNames(page, "the sign-in form")
        try await Self.screenshot(page, "console-sign-in.png")
        try await Self.signIn(page, "admin", "admin-password-1")
        try await Self.expectAccessibleNames(page, "no stream yet")

        // Create a stream with two targets, keys in password fields.
        try await Self.click(page, "#new-stream")
        try await Self.waitFor(page, "the editor", "document.querySelector('#editor').open")
        try await Self.type(page, "#edit-name", "show")
        for (name, key) in [("one", "key-one"), ("two", "key-two")] {
            try await Self.click(page, "#add-target")
            let row = "#edit-targets li:last-child"
            try await Self.type(page, "\(row) .t-name", name)
            try await Self.type(page, "\(row) .t-url", nginx.url(app: name))
            try await Self.type(page, "\(row) .t-key", key)
        }
        #expect(
            try await page.evaluate("document.querySelector('#edit-targets .t-key').type", as: String.self)
                == "password"
        )
        try await Self.expectAccessibleNames(page, "the editor with two targets")
        try await Self.screenshot(page, "console-edit.png")
        try await page.run("document.querySelector('#edit-form').requestSubmit()")
        try await Self.waitFor(page, "the new stream's card", "!!document.querySelector('\(card)')")
        #expect(try await Self.text(page, "\(card) .phase") == "Suspended")
        try await Self.expectAccessibleNames(page, "a suspended stream")

        // Go Live allows publishing; the key is revealed only on request.
        try await Self.click(page, "\(card) .s-live")
        try await Self.waitFor(
            page,
            "the stream idle",
            "document.querySelector('\(card) .phase').textContent === 'Idle'"
        )
        #expect(try await page.evaluate("document.querySelector('\(card) .s-key').type", as: String.self) == "password")
        try await Self.click(page, "\(card) .s-reveal")
        try await Self.waitFor(page, "the key revealed", "document.querySelector('\(card) .s-key').type === 'text'")
        let key = try await page.evaluate("document.querySelector('\(card) .s-key').value", as: String.self)
        let ingest = try await Self.text(page, "\(card) .s-ingest")
        #expect(ingest.hasPrefix("rtmp://127.0.0.1:"))
        #expect(key.count == 64)
        try await Self.expectAccessibleNames(page, "an idle stream, its key revealed")

        try await FFmpeg.withPublisher(to: "\(ingest)/\(key)", duration: 300, size: "640x360") { ffmpeg in
            try await Self.waitFor(
                page,
                "the stream live in the page",
                timeout: .seconds(60),
                "document.querySelector('\(card) .phase').textContent === 'Live'"
            )
            try await nginx.waitForPublishStarted(app: "one", stream: "key-one", timeout: .seconds(60))
            try await nginx.waitForPublishStarted(app: "two", stream: "key-two", timeout: .seconds(60))
            try await Self.waitFor(
                page,
                "both targets pushing",
                "[...document.querySelectorAll('\(card) .t-state')].every(e => e.dataset.state === 'pushing')"
            )
            try await Self.waitFor(page, "live figures", "!!document.querySelector('\(card) .stat-frame-rate')")

            // The preview plays in the page: its time advances and its picture is not black.
            let video = "document.querySelector('\(card) .s-preview').contentDocument?.querySelector('video')"
            try await Self.waitFor(
                page,
                "the preview started",
                timeout: .seconds(60),
                "(\(video)?.currentTime ?? 0) > 0.5"
            )
            let first = try await page.evaluate("\(video).currentTime", as: Double.self)
            try await Self.waitFor(page, "the preview advancing", "\(video).currentTime > \(first + 1)")
            try await Self.waitFor(
                page,
                "a non-black frame",
                """
                (() => { const v = \(video); const c = document.createElement('canvas'); c.width = 64; c.height = 36;
                  const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 36);
                  const d = g.getImageData(0, 0, 64, 36).data; let sum = 0;
                  for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
                  return sum / (d.length / 4) / 3 > 20 })()
                """
            )

            // Switch target one off while live: its publish to nginx ends, the other goes on without a gap.
            let recording = nginx.recordingPath(app: "two", stream: "key-two")
            func size() -> Int {
                ((try? FileManager.default.attributesOfItem(atPath: recording))?[.size] as? Int) ?? 0
            }
            try await Self.click(page, "\(card) li[data-target=\"one\"] .t-switch")
            try await eventually("target one stopped", timeout: .seconds(30)) {
                try !nginx.isPublishing(app: "one", stream: "key-one")
            }
            let sizeAfterSwitch = size()
            #expect(try nginx.isPublishing(app: "two", stream: "key-two"))
            try await eventually("target two still recording", timeout: .seconds(20)) {
                size() > sizeAfterSwitch + 10_000
            }
            #expect(nginx.finishedSessions().filter { $0.app == "two" && $0.published }.isEmpty)
            try await Self.waitFor(
                page,
                "target one shown disabled",
                "document.querySelector('\(card) li[data-target=\"one\"] .t-state').dataset.state === 'disabled'"
            )
            #expect(ffmpeg.hasExited == false)
            // For the README: the key hidden again, one target off, the other pushing, the preview playing.
            try await Self.click(page, "\(card) .s-reveal")
            try await Self.waitFor(
                page,
                "the key hidden",
                "document.querySelector('\(card) .s-key').type === 'password'"
            )
            try await Self.expectAccessibleNames(page, "a live stream with its preview, one target off")
            try await Self.screenshot(page, "console-live.png")

            // Go Offline: the relay stops, a new publish is refused.
            try await Self.click(page, "\(card) .s-live")
            try await Self.waitFor(
                page,
                "the stream suspended",
                "document.querySelector('\(card) .phase').textContent === 'Suspended'"
            )
            _ = await ffmpeg.waitForExit(timeout: .seconds(30))
        }
        let refused = try FFmpeg.publish(to: "\(ingest)/\(key)", duration: 5)
        let refusal = try #require(await refused.waitForExit(timeout: .seconds(30)))
        #expect(!refusal.succeeded)

        // New key: once live again, the old key stops working at once and the new one works.
        try await Self.click(page, "\(card) .s-live")
        try await Self.waitFor(
            page,
            "the stream idle again",
            "document.querySelector('\(card) .phase').textContent === 'Idle'"
        )
        try await page.run("window.confirm = () => true")  // the page asks before replacing the key
        try await Self.click(page, "\(card) .s-new-key")
        try await Self.waitFor(
            page,
            "the key hidden after the new one",
            "document.querySelector('\(card) .s-key').type === 'password'"
        )
        try await Self.click(page, "\(card) .s-reveal")
        let newKey = try await eventually("the new key revealed", timeout: .seconds(30)) { () -> String? in
            let shown = try await page.evaluate(
                "document.querySelector('\(card) .s-key').type === 'text' ? document.querySelector('\(card) .s-key').value : ''",
                as: String.self
            )
            return shown.count == 64 && shown != key ? shown : nil
        }
        try await eventually("the old key refused", timeout: .seconds(60), interval: .milliseconds(500)) {
            let old = try FFmpeg.publish(to: "\(ingest)/\(key)", duration: 3)
            return !(await old.waitForExit(timeout: .seconds(30))?.succeeded ?? true)
        }
        let withNewKey = try FFmpeg.publish(to: "\(ingest)/\(newKey)", duration: 2)
        let accepted = await withNewKey.waitForExit(timeout: .seconds(60))
        #expect(accepted?.succeeded == true, "\(accepted.map { "\($0)" } ?? "no exit")")

        // Sign out: the session no longer works, from the browser or elsewhere.
        let admin = try #require(try await Self.sessionCookie(page))
        #expect(try await consoleRequest(local.consoleURL + "api/streams", cookie: admin).status == 200)
        try await Self.click(page, "#sign-out")
        try await Self.waitFor(page, "the sign-in form again", "!document.querySelector('#sign-in-view').hidden")
        try await Self.expectAccessibleNames(page, "signed out")
        #expect(try await consoleRequest(local.consoleURL + "api/streams", cookie: admin).status == 401)

        // Bob sees none of it, in the page and through the API.
        try await Self.signIn(page, "bob", bobPassword)
        try await Self.waitFor(page, "bob's empty list", "!document.querySelector('#no-streams').hidden")
        #expect(try await page.evaluate("!!document.querySelector('\(card)')", as: Bool.self) == false)
        let bob = try #require(try await Self.sessionCookie(page))
        let csrf = try await page.evaluate(
            "fetch('/api/session').then(r => r.json()).then(s => s.csrfToken)",
            as: String.self
        )
        let url = local.consoleURL + "api/streams/default/show"
        #expect(try await consoleRequest(url, cookie: bob).status == 404)
        #expect(try await consoleRequest(url, method: .DELETE, cookie: bob, csrf: csrf).status == 404)
        #expect(
            try await consoleRequest(url + "/live", method: .POST, cookie: bob, csrf: csrf, body: #"{"live":true}"#)
                .status == 404
        )
        #expect(
            try await consoleRequest(url + "/key/reveal", method: .POST, cookie: bob, csrf: csrf, body: "{}").status
                == 404
        )
        let file = try String(contentsOfFile: local.streamsFile, encoding: .utf8)
        #expect(file.contains("name: show"))
        #expect(try await page.evaluate("fetch('/api/streams/default/show').then(r => r.status)", as: Int.self) == 404)
    }
}
