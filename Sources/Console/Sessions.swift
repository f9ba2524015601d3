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

/// The console's sign-in sessions, as a value: the server keeps one in a `Mutex` and passes the time in, so tests
/// drive expiry without waiting.
///
/// A session is a random token (the cookie) with a CSRF token of its own, the user's name, and two deadlines: it
/// ends after ``idleTimeout`` without a request and after ``absoluteTimeout`` whatever happens. Sign-out removes it.
public struct ConsoleSessions: Sendable {
    public struct Session: Hashable, Sendable {
        public var user: String
        public var csrfToken: String
        /// The user's password hash at sign-in: a new password (`liverelay console users passwd`) ends the session.
        var credential: String
        var created: ContinuousClock.Instant
        var lastUsed: ContinuousClock.Instant
    }

    public var idleTimeout: Duration
    public var absoluteTimeout: Duration
    /// At most this many sessions at once; the least recently used goes first.
    public var maxSessions: Int
    private var sessions: [String: Session] = [:]

    public init(
        idleTimeout: Duration = .seconds(8 * 3600),
        absoluteTimeout: Duration = .seconds(7 * 86400),
        maxSessions: Int = 10_000
    ) {
        self.idleTimeout = idleTimeout
        self.absoluteTimeout = absoluteTimeout
        self.maxSessions = maxSessions
    }

    /// Starts a session for `user`, whose password hash is `credential`; returns its token (for the cookie) and the
    /// session.
    public mutating func start(
        user: String,
        credential: String = "",
        now: ContinuousClock.Instant
    ) -> (token: String, session: Session) {
        self.expire(now: now)
        if self.sessions.count >= self.maxSessions,
            let oldest = self.sessions.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key
        {
            self.sessions[oldest] = nil
        }
        let token = randomToken()
        let session = Session(
            user: user,
            csrfToken: randomToken(),
            credential: credential,
            created: now,
            lastUsed: now
        )
        self.sessions[token] = session
        return (token, session)
    }

    /// The session of `token` if it has not expired, which counts as a use of it.
    public mutating func use(_ token: String, now: ContinuousClock.Instant) -> Session? {
        guard var session = self.sessions[token] else {
            return nil
        }
        guard !self.expired(session, now: now) else {
            self.sessions[token] = nil
            return nil
        }
        session.lastUsed = now
        self.sessions[token] = session
        return session
    }

    /// Ends the session of `token`.
    public mutating func end(_ token: String) {
        self.sessions[token] = nil
    }

    /// Ends every session of `user` (removed, or a new password).
    public mutating func end(user: String) {
        self.sessions = self.sessions.filter { $0.value.user != user }
    }

    /// Sessions that have not expired.
    public var count: Int { self.sessions.count }

    private func expired(_ session: Session, now: ContinuousClock.Instant) -> Bool {
        now - session.lastUsed >= self.idleTimeout || now - session.created >= self.absoluteTimeout
    }

    private mutating func expire(now: ContinuousClock.Instant) {
        self.sessions = self.sessions.filter { !self.expired($0.value, now: now) }
    }
}

/// Failed sign-ins, counted per user name and per client address: after ``freeFailures`` failures in a row, each
/// further attempt for that name or from that address waits, doubling from ``baseDelay`` up to ``maxDelay``; a
/// success for the name clears its count. The server answers an attempt made too early with 429 and `Retry-After`,
/// without checking the password, so guessing costs time whatever the password.
public struct SignInThrottle: Sendable {
    private struct Record: Sendable {
        var failures: Int
        var notBefore: ContinuousClock.Instant
    }

    public var freeFailures: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// At most this many names and addresses are remembered; the oldest go first.
    public var maxRecords: Int
    private var records: [String: Record] = [:]

    public init(
        freeFailures: Int = 3,
        baseDelay: Duration = .seconds(1),
        maxDelay: Duration = .seconds(300),
        maxRecords: Int = 10_000
    ) {
        self.freeFailures = freeFailures
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRecords = maxRecords
    }

    /// How long the attempt for `user` from `address` (`nil` when unknown: the name alone counts) must wait still;
    /// `nil` when it may go ahead now.
    public func wait(user: String, address: String?, now: ContinuousClock.Instant) -> Duration? {
        let latest = Self.keys(user: user, address: address)
            .compactMap { self.records[$0]?.notBefore }
            .max()
        guard let latest, latest > now else {
            return nil
        }
        return latest - now
    }

    /// A failed attempt; returns the delay now imposed on the next one, if any.
    @discardableResult
    public mutating func failed(user: String, address: String?, now: ContinuousClock.Instant) -> Duration? {
        if self.records.count >= self.maxRecords,
            let oldest = self.records.min(by: { $0.value.notBefore < $1.value.notBefore })?.key
        {
            self.records[oldest] = nil
        }
        var longest: Duration?
        for key in Self.keys(user: user, address: address) {
            var record = self.records[key] ?? Record(failures: 0, notBefore: now)
            record.failures += 1
            let over = record.failures - self.freeFailures
            if over > 0 {
                var delay = self.baseDelay
                for _ in 1..<min(over, 20) {
                    delay = min(delay * 2, self.maxDelay)
                }
                delay = min(delay, self.maxDelay)
                record.notBefore = now + delay
                longest = max(longest ?? delay, delay)
            }
            self.records[key] = record
        }
        return longest
    }

    /// A successful sign-in clears the name's count (not the address's: one address may guess many names).
    public mutating func succeeded(user: String) {
        self.records[Self.key(user: user)] = nil
    }

    private static func key(user: String) -> String { "user:" + user }
    private static func keys(user: String, address: String?) -> [String] {
        [Self.key(user: user)] + (address.map { ["address:" + $0] } ?? [])
    }
}

/// 32 bytes from the system's cryptographic generator, as 64 hex digits.
func randomToken() -> String {
    var generator = SystemRandomNumberGenerator()
    var text = ""
    for _ in 0..<4 {
        let hex = String(generator.next() as UInt64, radix: 16)
        text += String(repeating: "0", count: 16 - hex.count) + hex
    }
    return text
}
