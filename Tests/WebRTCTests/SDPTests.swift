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
import Testing

@testable import WebRTC

private let fingerprint =
    "sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F"

/// An offer shaped like a browser's WHIP offer: BUNDLE, Opus first, then video with VP8, an unconstrained baseline
/// H.264 (refused), constrained baseline H.264 with RTX, and a data channel section.
func browserOffer(video formats: String = "96 97 102 103 104", h264: Bool = true) -> String {
    var lines = [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1 2",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Qx7b",
        "a=ice-pwd:k9n2J+/pQ0rS1tU2vW3xY4zA",
        "a=ice-options:trickle",
        "a=fingerprint:\(fingerprint)",
        "a=setup:actpass",
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=sendonly",
        "a=msid:- a0b1",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "a=rtpmap:9 G722/8000",
        "a=ssrc:1111 cname:abc",
        "m=video 9 UDP/TLS/RTP/SAVPF \(formats)",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:Qx7b",
        "a=ice-pwd:k9n2J+/pQ0rS1tU2vW3xY4zA",
        "a=fingerprint:\(fingerprint)",
        "a=setup:actpass",
        "a=mid:1",
        "a=sendonly",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
    ]
    if h264 {
        lines += [
            "a=rtpmap:102 H264/90000",
            "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
            "a=rtpmap:103 H264/90000",
            "a=rtcp-fb:103 goog-remb",
            "a=rtcp-fb:103 nack",
            "a=rtcp-fb:103 nack pli",
            "a=rtcp-fb:103 ccm fir",
            "a=fmtp:103 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            "a=rtpmap:104 rtx/90000",
            "a=fmtp:104 apt=103",
        ]
    }
    lines += [
        "a=ssrc:2222 cname:abc",
        "a=ssrc:2222 msid:- v0",
        "a=ssrc:3333 cname:abc",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=mid:2",
        "a=sctp-port:5000",
    ]
    return lines.joined(separator: "\r\n") + "\r\n"
}

@Suite struct SDPTests {
    @Test func readsABrowserOffer() throws {
        let offer = try WHIPOffer(parsing: browserOffer())
        #expect(offer.remoteUsernameFragment == "Qx7b")
        #expect(offer.remoteFingerprint.count == 32)
        #expect(offer.remoteFingerprint.first == 0xD2)
        #expect(offer.media.count == 2)
        let audio = try #require(offer.media.first { $0.kind == .audio })
        #expect(audio.codec == .opus)
        #expect(audio.payloadType == 111)
        #expect(audio.mid == "0")
        #expect(audio.formatParameters == "minptime=10;useinbandfec=1")
        #expect(audio.ssrcs == [1111])
        let video = try #require(offer.media.first { $0.kind == .video })
        #expect(video.codec == .h264)
        // 102 is unconstrained baseline: passed over for 103.
        #expect(video.payloadType == 103)
        #expect(video.clockRate == 90000)
        #expect(video.rtcpFeedback == ["goog-remb", "nack", "nack pli", "ccm fir"])
        #expect(video.ssrcs == [2222, 3333])
    }

    @Test func answersWithICELiteAndOnlyTheChosenCodecs() throws {
        let offer = try WHIPOffer(parsing: browserOffer())
        let answer = offer.answer(
            localUsernameFragment: "MiNe",
            localPassword: "our-password-0123456789",
            fingerprint: [UInt8](repeating: 0xAB, count: 32),
            candidates: [
                ICECandidate(address: "127.0.0.1", port: 4567),
                .init(address: "127.0.0.1", port: 4568, transport: .tcp),
            ],
            sessionID: 42
        )
        let parsed = try SessionDescription(parsing: answer)
        #expect(parsed.sessionValue("ice-lite") != nil)
        #expect(parsed.sessionValue("group") == "BUNDLE 0 1")
        #expect(parsed.media.count == 3)
        let audio = parsed.media[0]
        #expect(audio.formats == ["111"])
        #expect(audio.port == 4567)
        #expect(audio.value("setup") == "passive")
        #expect(audio.has("recvonly"))
        #expect(audio.has("rtcp-mux"))
        #expect(audio.value("ice-ufrag") == "MiNe")
        #expect(audio.value("rtpmap") == "111 opus/48000/2")
        #expect(audio.value("fingerprint") == "sha-256 " + Array(repeating: "AB", count: 32).joined(separator: ":"))
        let video = parsed.media[1]
        #expect(video.formats == ["103"])
        #expect(video.values("rtpmap") == ["103 H264/90000"])
        #expect(video.values("fmtp") == ["103 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"])
        // REMB is offered back, so that the browser takes the REMB the ingest sends; transport-cc is not (the audio
        // offered it): the ingest sends no transport-wide feedback.
        #expect(video.values("rtcp-fb") == ["103 goog-remb", "103 nack", "103 nack pli", "103 ccm fir"])
        #expect(!answer.contains("transport-cc"))
        #expect(
            video.values("candidate") == [
                "1 1 UDP 2130706431 127.0.0.1 4567 typ host",
                "2 1 TCP 2122317823 127.0.0.1 4568 typ host tcptype passive",
            ]
        )
        // The data channel is refused with port 0 and keeps its mid.
        #expect(parsed.media[2].port == 0)
        #expect(parsed.media[2].value("mid") == "2")
        #expect(answer.hasSuffix("\r\n"))
        #expect(!answer.contains("VP8"))
    }

    @Test func refusesAVP8OnlyOffer() {
        #expect {
            try WHIPOffer(parsing: browserOffer(video: "96 97", h264: false))
        } throws: { ($0 as? WebRTCError)?.code == .noH264 }
    }

    @Test func refusesPacketizationModeZeroAndUnknownProfiles() {
        #expect(!WHIPOffer.isAcceptableH264("packetization-mode=0;profile-level-id=42e01f"))
        #expect(!WHIPOffer.isAcceptableH264("profile-level-id=42e01f"))
        #expect(!WHIPOffer.isAcceptableH264("packetization-mode=1;profile-level-id=f4001f"))
        #expect(!WHIPOffer.isAcceptableH264("packetization-mode=1;profile-level-id=zz"))
        #expect(!WHIPOffer.isAcceptableH264(nil))
        #expect(WHIPOffer.isAcceptableH264("packetization-mode=1;profile-level-id=4d001f"))
        #expect(WHIPOffer.isAcceptableH264("profile-level-id=640c1f; packetization-mode=1"))
    }

    @Test func refusesOffersWithoutCredentialsOrFingerprint() {
        for removed in ["a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:"] {
            let text = browserOffer().split(separator: "\r\n").filter { !$0.hasPrefix(removed) }.joined(
                separator: "\r\n"
            )
            #expect {
                try WHIPOffer(parsing: text)
            } throws: { ($0 as? WebRTCError)?.code == .unsupportedOffer }
        }
        let passive = browserOffer().replacingOccurrences(of: "a=setup:actpass", with: "a=setup:passive")
        #expect {
            try WHIPOffer(parsing: passive)
        } throws: { ($0 as? WebRTCError)?.code == .unsupportedOffer }
    }

    @Test func enforcesLimits() {
        var limits = SessionDescription.Limits()
        limits.maximumLines = 20
        #expect {
            try SessionDescription(parsing: browserOffer(), limits: limits)
        } throws: { ($0 as? WebRTCError)?.code == .limitExceeded }
        #expect {
            try SessionDescription(parsing: "v=0\r\n" + String(repeating: "a=x\r\n", count: 20000))
        } throws: { ($0 as? WebRTCError)?.code == .limitExceeded }
        #expect {
            try SessionDescription(parsing: "v=0\r\na=" + String(repeating: "x", count: 5000))
        } throws: { ($0 as? WebRTCError)?.code == .limitExceeded }
        #expect {
            try SessionDescription(parsing: "v=0\r\n" + String(repeating: "m=video 9 RTP/AVP 96\r\n", count: 17))
        } throws: { ($0 as? WebRTCError)?.code == .limitExceeded }
    }

    @Test(arguments: [
        "", "hello", "v=1\r\n", "a=foo\r\nv=0\r\n", "v=0\r\nm=video\r\n", "v=0\r\nm=video x RTP/AVP 96\r\n",
        "v=0\r\nbad\r\n",
    ])
    func refusesMalformedSDP(_ text: String) {
        #expect {
            try SessionDescription(parsing: text)
        } throws: { ($0 as? WebRTCError)?.code == .malformedSDP }
    }
}

/// whip-client's offer (GStreamer 1.22 webrtcbin, Debian 12), captured; credentials and candidates replaced. Audio
/// is `m=audio 0` with `a=bundle-only`, as webrtcbin offers every section after the first.
let gstreamerOffer =
    [
        "v=0",
        "o=- 6282219486409880383 0 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=ice-options:trickle",
        "a=group:BUNDLE video0 audio1",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 0.0.0.0",
        "a=setup:actpass",
        "a=ice-ufrag:GStreamerOfferFragmentFixture000",
        "a=ice-pwd:GStreamerOfferPasswordFixture000",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=sendonly",
        "a=rtpmap:96 H264/90000",
        "a=rtcp-fb:96 nack pli",
        "a=rtcp-fb:96 ccm fir",
        "a=rtcp-fb:96 transport-cc",
        "a=framerate:30",
        "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAFdkBQfsBagwMDUoAAAMAAgAAAwB5HixckA==,aMuMsg==;"
            + "profile-level-id=42c015;level-asymmetry-allowed=1",
        "a=ssrc:3667773075 msid:user1687964791@host-7e501340 webrtctransceiver0",
        "a=ssrc:3667773075 cname:user1687964791@host-7e501340",
        "a=mid:video0",
        "a=fingerprint:\(fingerprint)",
        "a=rtcp-mux-only",
        "a=candidate:1 1 UDP 2015363327 192.0.2.2 40895 typ host",
        "a=candidate:3 1 TCP 1010827519 192.0.2.2 55831 typ host tcptype passive",
        "a=end-of-candidates",
        "m=audio 0 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=setup:actpass",
        "a=ice-ufrag:GStreamerOfferFragmentFixture000",
        "a=ice-pwd:GStreamerOfferPasswordFixture000",
        "a=bundle-only",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=sendonly",
        "a=rtpmap:111 OPUS/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 sprop-stereo=0;sprop-maxcapturerate=48000",
        "a=ssrc:3158250554 msid:user1687964791@host-7e501340 webrtctransceiver1",
        "a=ssrc:3158250554 cname:user1687964791@host-7e501340",
        "a=mid:audio1",
        "a=fingerprint:\(fingerprint)",
        "a=rtcp-mux-only",
        "a=end-of-candidates",
    ].joined(separator: "\r\n") + "\r\n"

@Suite struct GStreamerOfferTests {
    @Test func acceptsBundleOnlyAudio() throws {
        let offer = try WHIPOffer(parsing: gstreamerOffer)
        #expect(offer.remoteUsernameFragment == "GStreamerOfferFragmentFixture000")
        #expect(offer.media.map(\.mid) == ["video0", "audio1"])
        #expect(offer.media.map(\.codec) == [.h264, .opus])
        #expect(offer.media[0].rtcpFeedback == ["nack pli", "ccm fir"])
        #expect(offer.media[1].ssrcs == [3_158_250_554])
        let answer = try SessionDescription(
            parsing: offer.answer(
                localUsernameFragment: "MiNe",
                localPassword: "our-password-0123456789",
                fingerprint: [UInt8](repeating: 1, count: 32),
                candidates: [ICECandidate(address: "127.0.0.1", port: 4567)],
                sessionID: 1
            )
        )
        #expect(answer.sessionValue("group") == "BUNDLE video0 audio1")
        #expect(answer.media.map(\.port) == [4567, 4567])
        #expect(answer.media[1].value("rtpmap") == "111 opus/48000/2")
    }
}
