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
import NIOHTTP1
import PeerTestSupport
import Testing

/// What a person does in the console's page, and what the browser journeys (local mode, a cluster) check there, in
/// one place.
enum BrowserSteps {
    static func waitFor(
        _ page: DevToolsPage,
        _ what: String,
        timeout: Duration = .seconds(30),
        _ condition: String
    ) async throws {
        try await eventually(what, timeout: timeout, interval: .milliseconds(200)) {
            try await page.evaluate(condition, as: Bool.self)
        }
    }

    static func text(_ page: DevToolsPage, _ selector: String) async throws -> String {
        try await page.evaluate("document.querySelector(\(Self.quoted(selector)))?.textContent ?? ''", as: String.self)
    }

    static func quoted(_ text: String) -> String {
        String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
    }

    /// Types into a field as a person would: value set, `input` and `change` fired.
    static func type(_ page: DevToolsPage, _ selector: String, _ value: String) async throws {
        try await page.run(
            """
            const field = document.querySelector(\(Self.quoted(selector)));
            field.focus(); field.value = \(Self.quoted(value));
            field.dispatchEvent(new Event('input', { bubbles: true }));
            field.dispatchEvent(new Event('change', { bubbles: true }))
            """
        )
    }

    static func click(_ page: DevToolsPage, _ selector: String) async throws {
        try await page.run("document.querySelector(\(Self.quoted(selector))).click()")
    }

    static func signIn(_ page: DevToolsPage, _ user: String, _ password: String) async throws {
        try await Self.waitFor(page, "the sign-in form", "!document.querySelector('#sign-in-view').hidden")
        try await Self.type(page, "#username", user)
        try await Self.type(page, "#password", password)
        try await page.run("document.querySelector('#sign-in-form').requestSubmit()")
        try await Self.waitFor(page, "the streams of \(user)", "!document.querySelector('#streams-view').hidden")
    }

    /// The session cookie the browser holds (HttpOnly: the page cannot read it, DevTools can).
    static func sessionCookie(_ page: DevToolsPage) async throws -> String? {
        let data = try await page.send("Network.getCookies")
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let cookies = object?["cookies"] as? [[String: Any]] ?? []
        let session = cookies.first { $0["name"] as? String == "liverelay_session" }
        #expect(session?["httpOnly"] as? Bool == true)
        #expect(session?["sameSite"] as? String == "Strict")
        return session?["value"] as? String
    }

    /// Runs `body`; when it throws, saves a screenshot of the page (named in the test's issues) and rethrows.
    static func screenshotOnFailure(
        _ page: DevToolsPage,
        _ name: String,
        _ body: () async throws -> Void
    ) async throws {
        do {
            try await body()
        } catch {
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("\(name)-failure-\(UInt32.random(in: 0...UInt32.max)).png").path
            try? await page.screenshot(path)
            Issue.record("screenshot of the failure: \(path)")
            throw error
        }
    }

    /// New stream: the editor, a name, targets with their keys (in password fields), saved; its card appears.
    static func createStream(
        _ page: DevToolsPage,
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
        _ page: DevToolsPage,
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
    static func revealKey(_ page: DevToolsPage, card: String) async throws -> (ingest: String, key: String) {
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
    static func expectLive(_ page: DevToolsPage, card: String, nginx: NginxRTMP) async throws {
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
    static func expectPreviewPlaying(_ page: DevToolsPage, card: String) async throws {
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
    static func switchTargetOneOff(_ page: DevToolsPage, card: String, nginx: NginxRTMP) async throws {
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
    static func signOut(_ page: DevToolsPage, consoleURL: String) async throws {
        let session = try #require(try await Self.sessionCookie(page))
        #expect(try await consoleRequest(consoleURL + "api/streams", cookie: session).status == 200)
        try await Self.click(page, "#sign-out")
        try await Self.waitFor(page, "the sign-in form again", "!document.querySelector('#sign-in-view').hidden")
        #expect(try await consoleRequest(consoleURL + "api/streams", cookie: session).status == 401)
    }

    /// Another user sees none of the stream, in the page and through the API (404, as for no stream at all).
    static func expectHidden(
        _ page: DevToolsPage,
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
