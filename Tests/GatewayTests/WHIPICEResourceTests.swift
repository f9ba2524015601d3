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
import Testing
import WebRTC

@testable import Gateway

private let offered = ICECredentials(usernameFragment: "Qx7b", password: "k9n2J+/pQ0rS1tU2vW3xY4zA")
private let trickle =
    "a=ice-ufrag:Qx7b\r\na=ice-pwd:k9n2J+/pQ0rS1tU2vW3xY4zA\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
    + "a=candidate:1 1 UDP 2015363327 192.0.2.7 43110 typ host\r\na=end-of-candidates\r\n"
private let restart =
    "a=ice-ufrag:NeW1\r\na=ice-pwd:aNewPasswordOf22Chars+/\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
    + "a=candidate:1 1 UDP 2015363327 192.0.2.9 43112 typ host\r\n"

/// RFC 9725 §4.3 as a table: what each PATCH comes to, and what it leaves behind.
@Suite struct WHIPICEResourceTests {
    private func resource() -> WHIPICEResource {
        WHIPICEResource(entityTag: "\"one\"", remote: offered)
    }

    @Test(arguments: [nil, "\"one\"", "*", "\"zero\", \"one\""] as [String?])
    func candidatesOfTheCurrentSessionAreTaken(ifMatch: String?) {
        var resource = self.resource()
        let outcome = resource.patch(ifMatch: ifMatch, fragment: trickle, newEntityTag: { "\"two\"" })
        #expect(outcome == .trickle(candidates: 1, endOfCandidates: true))
        #expect(resource.entityTag == "\"one\"")
        #expect(resource.remote == offered)
    }

    @Test(arguments: ["*", "\"one\""])
    func aRestartTakesNewCredentialsAndTag(ifMatch: String) {
        var resource = self.resource()
        let outcome = resource.patch(ifMatch: ifMatch, fragment: restart, newEntityTag: { "\"two\"" })
        let expected = ICECredentials(usernameFragment: "NeW1", password: "aNewPasswordOf22Chars+/")
        #expect(outcome == .restart(expected))
        #expect(resource.entityTag == "\"two\"")
        #expect(resource.remote == expected)
        // Candidates of the old ICE session, with its tag, come too late: 412.
        let stale = resource.patch(ifMatch: "\"one\"", fragment: trickle, newEntityTag: { "\"three\"" })
        guard case .refused(let status, _) = stale else {
            Issue.record("stale candidates were taken: \(stale)")
            return
        }
        #expect(status == .preconditionFailed)
        // The new session's candidates with the new tag are taken.
        let fresh = restart.replacingOccurrences(of: "192.0.2.9", with: "192.0.2.10")
        let taken = resource.patch(ifMatch: "\"two\"", fragment: fresh, newEntityTag: { "\"three\"" })
        #expect(taken == .trickle(candidates: 1, endOfCandidates: false))
    }

    @Test func refusals() {
        func refusal(_ ifMatch: String?, _ fragment: String) -> (HTTPResponse.Status, String)? {
            var resource = self.resource()
            guard
                case .refused(let status, let message) = resource.patch(
                    ifMatch: ifMatch,
                    fragment: fragment,
                    newEntityTag: { "\"two\"" }
                )
            else { return nil }
            #expect(resource.entityTag == "\"one\"", "a refusal changes nothing")
            #expect(resource.remote == offered)
            return (status, message)
        }
        #expect(refusal("\"zero\"", trickle)?.0 == .preconditionFailed)
        #expect(refusal("W/\"one\"", trickle)?.0 == .preconditionFailed, "a weak tag never matches")
        #expect(refusal("\"zero\"", restart)?.0 == .preconditionFailed)
        #expect(refusal(nil, restart)?.0 == .preconditionRequired)
        let malformed = refusal("*", "a=candidate:1 1 UDP 1 192.0.2.7 5000\r\n")
        #expect(malformed?.0 == .badRequest)
        #expect(malformed?.1.contains("fewer than 8") == true, "\(String(describing: malformed))")
        let half = refusal("*", "a=ice-ufrag:NeW1\r\n")
        #expect(half?.0 == .badRequest)
        #expect(half?.1.contains("a=ice-pwd") == true)
        #expect(!(half?.1.contains(offered.password) ?? true))
    }
}
