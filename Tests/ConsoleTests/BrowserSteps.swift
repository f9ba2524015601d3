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
import NIOHTTP1
import PeerTestSupport
import Testing

/// What a person does in the console's page, and what the browser journeys (local mode, a cluster) check there, in
/// one place.
enum BrowserSteps {
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
        guard let directory = ConsoleBrowserTests.screenshotDirectory, page is DevToolsPage else {
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

    /// New stream: the editor, a name, targets with their keys (in password fields), saved; its card appears.
    static func createStream(
        _ page: any BrowserPage,
        card: String,
        name: String,
        targets: [(name: String, url: String, key: String)],
        beforeSaving: () async throws -> Void = {}
    ) async throws {
        try await Self.click(page, "#new-stream")
        try await Self.waitFor(page, "the editor", "document.querySelector('#editor').open")
        try await Self.type(page, "#edit-name", name)
        for target in targets {
            try await Self.click(page, "#add-target")
            let row = "#edit-targets li:last-child"
            try await Self.type(page, "\(row) .t-name", target.name)
            try await Self.type(page, "\(row) .t-url", target.url)
            try await Self.type(page, "\(row) .t-key", target.key)
        }
        #expect(
            try await page.evaluate("document.querySelector('#edit-targets .t-key').type", as: String.self)
                == "password"
        )
        try await beforeSaving()
        try await page.run("document.querySelector('#edit-form').requestSubmit()")
        try await Self.waitFor(page, "the new stream's card", "!!document.querySelector('\(card)')")
    }

    /// The stream's phase in its card, once it is `phase`.
    static func waitForPhase(
        _ page: any BrowserPage,
        card: String,
        _ phase: String,
        timeout: Duration = .seconds(30)
    ) async throws {
        try await Self.waitFor(
            page,
            "the stream \(phase) in the page",
            timeout: timeout,
            "document.querySelector('\(card) .phase').textContent === '\(phase)'"
        )
    }

    /// The ingest URL and the stream key, revealed on request only.
    static func revealKey(_ page: any BrowserPage, card: String) async throws -> (ingest: String, key: String) {
        #expect(try await page.evaluate("document.querySelector('\(card) .s-key').type", as: String.self) == "password")
        try await Self.click(page, "\(card) .s-reveal")
        try await Self.waitFor(page, "the key revealed", "document.querySelector('\(card) .s-key').type === 'text'")
        let key = try await page.evaluate("document.querySelector('\(card) .s-key').value", as: String.self)
        let ingest = try await Self.text(page, "\(card) .s-ingest")
        #expect(ingest.hasPrefix("rtmp://127.0.0.1:"))
        #expect(key.count == 64)
        return (ingest, key)
    }

    /// Live with a publisher: Live in the page, both targets (nginx applications `one` and `two`) receiving and
    /// shown pushing.
    static func expectLive(_ page: any BrowserPage, card: String, nginx: NginxRTMP) async throws {
        try await Self.waitForPhase(page, card: card, "Live", timeout: .seconds(60))
        try await nginx.waitForPublishStarted(app: "one", stream: "key-one", timeout: .seconds(60))
        try await nginx.waitForPublishStarted(app: "two", stream: "key-two", timeout: .seconds(60))
        try await Self.waitFor(
            page,
            "both targets pushing",
            "[...document.querySelectorAll('\(card) .t-state')].every(e => e.dataset.state === 'pushing')"
        )
    }

    /// The preview plays in the page: its time advances and its picture is not black.
    static func expectPreviewPlaying(_ page: any BrowserPage, card: String) async throws {
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
    }

    /// Switches target `one` off while live: its publish to nginx ends, `two` goes on without a gap, and the page
    /// shows `one` disabled.
    static func switchTargetOneOff(_ page: any BrowserPage, card: String, nginx: NginxRTMP) async throws {
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
    }

    /// After Go Offline: a publish to the stream is refused, with the reason the encoder shows.
    static func expectPublishRefusedOffline(to url: String) async throws {
        let refused = try FFmpeg.publish(to: url, duration: 5)
        let refusal = try #require(await refused.waitForExit(timeout: .seconds(30)))
        #expect(!refusal.succeeded)
        #expect(refusal.standardError.contains("The stream is offline: it is suspended."), "\(refusal)")
    }

    /// Sign out: the session no longer works, from the browser or elsewhere.
    static func signOut(_ page: any BrowserPage, consoleURL: String) async throws {
        let session = try #require(try await Self.sessionCookie(page))
        #expect(try await consoleRequest(consoleURL + "api/streams", cookie: session).status == 200)
        try await Self.click(page, "#sign-out")
        try await Self.waitFor(page, "the sign-in form again", "!document.querySelector('#sign-in-view').hidden")
        #expect(try await consoleRequest(consoleURL + "api/streams", cookie: session).status == 401)
    }

    /// Another user sees none of the stream, in the page and through the API (404, as for no stream at all).
    static func expectHidden(
        _ page: any BrowserPage,
        card: String,
        streamURL url: String,
        from user: String,
        password: String
    ) async throws {
        try await Self.signIn(page, user, password)
        try await Self.waitFor(page, "\(user)'s empty list", "!document.querySelector('#no-streams').hidden")
        #expect(try await page.evaluate("!!document.querySelector('\(card)')", as: Bool.self) == false)
        let session = try #require(try await Self.sessionCookie(page))
        let csrf = try await page.evaluate(
            "fetch('/api/session').then(r => r.json()).then(s => s.csrfToken)",
            as: String.self
        )
        #expect(try await consoleRequest(url, cookie: session).status == 404)
        #expect(try await consoleRequest(url, method: .DELETE, cookie: session, csrf: csrf).status == 404)
        #expect(
            try await consoleRequest(url + "/live", method: .POST, cookie: session, csrf: csrf, body: #"{"live":true}"#)
                .status == 404
        )
        #expect(
            try await consoleRequest(url + "/key/reveal", method: .POST, cookie: session, csrf: csrf, body: "{}")
                .status == 404
        )
    }
}
