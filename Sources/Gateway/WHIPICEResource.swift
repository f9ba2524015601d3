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
import Hummingbird
import WebRTC

/// The ICE side of one WHIP session's resource (RFC 9725 §4.3): the entity tag of the current ICE session and the
/// peer's credentials, and what a PATCH with an `application/trickle-ice-sdpfrag` body does to them.
///
/// A value with no I/O: ``patch(ifMatch:fragment:newEntityTag:)`` decides, and on an ICE restart takes the new state;
/// the caller restarts the transport's session and answers.
struct WHIPICEResource: Sendable {
    /// The quoted entity tag (`"…"`) of the current ICE session, sent as `ETag`.
    private(set) var entityTag: String
    /// The peer's credentials of the current ICE session.
    private(set) var remote: ICECredentials

    /// What a PATCH comes to.
    enum Outcome: Hashable, Sendable {
        /// Candidates of the current ICE session (RFC 9725 §4.3.2): 204 No Content. An ICE-lite server sends no
        /// checks, so they were only checked.
        case trickle(candidates: Int, endOfCandidates: Bool)
        /// An ICE restart (RFC 9725 §4.3.3) with the peer's new credentials: 200 OK with ours and the new ``entityTag``.
        case restart(ICECredentials)
        /// Refused with this status and reason; nothing changed.
        case refused(HTTPResponse.Status, String)
    }

    init(entityTag: String, remote: ICECredentials) {
        self.entityTag = entityTag
        self.remote = remote
    }

    /// Decides a PATCH from its `If-Match` field and body. A restart takes the peer's new credentials and
    /// `newEntityTag()` at once, so a second PATCH sees the new ICE session.
    ///
    /// `If-Match` (RFC 9110 §13.1.1): `*` or the current entity tag passes; any other tag is a PATCH for an ICE
    /// session that a restart has replaced, 412. A restart needs the field (RFC 9725 makes it `*`), 428 without it;
    /// candidates without it are taken, since they name the ICE session by its credentials anyway.
    mutating func patch(
        ifMatch: String?,
        fragment text: String,
        newEntityTag: () -> String,
        limits: TrickleICEFragment.Limits = .init()
    ) -> Outcome {
        let fragment: TrickleICEFragment
        do {
            fragment = try TrickleICEFragment(parsing: text, limits: limits)
        } catch {
            return .refused(.badRequest, "The ICE fragment is malformed: \(error.message).")
        }
        if let ifMatch, !Self.matches(ifMatch, entityTag: self.entityTag) {
            return .refused(
                .preconditionFailed,
                "If-Match does not name the current ICE session: an ICE restart has replaced it."
            )
        }
        guard fragment.restarts(from: self.remote) else {
            return .trickle(candidates: fragment.candidates.count, endOfCandidates: fragment.endOfCandidates)
        }
        guard let credentials = fragment.credentials else {
            return .refused(
                .badRequest,
                "An ICE restart needs both a=ice-ufrag and a=ice-pwd; the fragment has other credentials than the "
                    + "session's and not both."
            )
        }
        guard ifMatch != nil else {
            return .refused(.preconditionRequired, "An ICE restart needs If-Match: *.")
        }
        self.remote = credentials
        self.entityTag = newEntityTag()
        return .restart(credentials)
    }

    /// Whether an `If-Match` value (`*`, or a list of entity tags) matches `entityTag` by strong comparison: a weak
    /// tag (`W/"…"`) never does.
    static func matches(_ ifMatch: String, entityTag: String) -> Bool {
        let trimmed = ifMatch.trimmingCharacters(in: .whitespaces)
        if trimmed == "*" { return true }
        return trimmed.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == entityTag }
    }
}
