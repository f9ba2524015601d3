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
import Logging
import NIOCore
import NIOPosix
import PeerTestSupport
import Testing

@testable import WebRTC

/// A WHIP publisher page for headless Chromium: a canvas animation and an oscillator, sent with `sendonly`
/// transceivers over one bundled RTCPeerConnection per endpoint, non-trickle (candidates in the offer).
private func publisherPage(token: String, endpoints: [String]) -> String {
    """
    <!doctype html>
    <html><body><canvas id="c" width="320" height="240"></canvas><script>
    const report = (what) => fetch("/report", { method: "POST", body: what });
    async function publish(url, video, audio) {
      const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
      pc.addTransceiver(audio, { direction: "sendonly" });
      pc.addTransceiver(video, { direction: "sendonly" });
      pc.onconnectionstatechange = () => report(url + " connection " + pc.connectionState);
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
        setTimeout(resolve, 3000);
      });
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", "Authorization": "Bearer \(token)" },
        body: pc.localDescription.sdp,
      });
      if (response.status !== 201) throw new Error(url + ": POST answered " + response.status);
      await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
      report(url + " answered " + response.headers.get("Location"));
      return pc;
    }
    (async () => {
      try {
        const canvas = document.getElementById("c");
        const g = canvas.getContext("2d");
        let frame = 0;
        setInterval(() => {
          g.fillStyle = `hsl(${(frame * 7) % 360}, 80%, 50%)`;
          g.fillRect(0, 0, 320, 240);
          g.fillStyle = "#fff";
          g.font = "48px sans-serif";
          g.fillText(String(frame++), 20, 120);
        }, 33);
        const video = canvas.captureStream(30).getVideoTracks()[0];
        const context = new AudioContext();
        const oscillator = context.createOscillator();
        const destination = context.createMediaStreamDestination();
        oscillator.connect(destination);
        oscillator.start();
        const audio = destination.stream.getAudioTracks()[0];
        window.connections = [];
        for (const url of [\(endpoints.map { "\"\($0)\"" }.joined(separator: ", "))]) {
          window.connections.push(await publish(url, video.clone(), audio.clone()));
        }
      } catch (error) {
        report("error " + error);
      }
    })();
    </script></body></html>
    """
}

/// What the test saw of one session's RTP.
private struct RTPTally: Sendable {
    var packets: [UInt8: Int] = [:]
    var lastSequence: [UInt32: UInt16] = [:]
    var forward = 0
    var backward = 0
    /// Per 500 ms window since the first packet: the payload types seen.
    var windows: [Int: Set<UInt8>] = [:]
    var rtcp = 0

    mutating func add(_ packet: ByteBuffer, window: Int) {
        let bytes = Array(packet.readableBytesView.prefix(12))
        guard bytes.count == 12 else { return }
        let payloadType = bytes[1] & 0x7F
        let sequence = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        let ssrc = UInt32(bytes[8]) << 24 | UInt32(bytes[9]) << 16 | UInt32(bytes[10]) << 8 | UInt32(bytes[11])
        self.packets[payloadType, default: 0] += 1
        self.windows[window, default: []].insert(payloadType)
        if let last = self.lastSequence[ssrc] {
            let delta = sequence &- last
            if delta != 0, delta < 0x8000 { self.forward += 1 } else { self.backward += 1 }
        }
        self.lastSequence[ssrc] = sequence
    }
}

@Suite(.serialized) struct WHIPEndToEndTests {
    /// Headless Chromium publishes over WHIP to the transport on 127.0.0.1: ICE connects, DTLS completes, and
    /// decrypted H.264 and Opus RTP arrive for seconds in sequence, while garbage and a second session whose answer
    /// carries a wrong fingerprint are refused without disturbing it.
    @Test(.timeLimit(.minutes(10)))
    func chromiumPublishesOverWHIP() async throws {
        try #require(Chromium.isAvailable, "headless Chromium (Debian's chromium) is needed at \(Chromium.executable)")
        let transport = try await WebRTCTransport.bind(
            configuration: WebRTCTransportConfiguration(host: "127.0.0.1", port: 0),
            logger: Logger(label: "whip-test.transport")
        )
        let token = "test-\(UInt64.random(in: 0...UInt64.max))"
        let server = WHIPTestServer(
            transport: transport,
            token: token,
            page: publisherPage(token: token, endpoints: ["/whip/live/show", "/whip/live/show-tampered"])
        )
        do {
            try await server.run { port in
                try await Chromium.withPage("http://127.0.0.1:\(port)/publish.html") { _ in
                    try await self.checkSessions(server: server, transport: transport)
                }
            }
        } catch {
            await transport.close()
            throw error
        }
        #expect(await transport.sessionCount() == 0)
        await transport.close()
    }

    private func checkSessions(server: WHIPTestServer, transport: WebRTCTransport) async throws {
        // Both sessions, or whatever the page said went wrong after 30 seconds.
        let (good, tampered) = await withTaskGroup(of: (WebRTCSession?, WebRTCSession?).self) { group in
            group.addTask {
                var good: WebRTCSession?
                var tampered: WebRTCSession?
                for await registered in server.sessions {
                    if registered.path.hasSuffix("-tampered") {
                        tampered = registered.session
                    } else {
                        good = registered.session
                    }
                    if good != nil, tampered != nil { break }
                }
                return (good, tampered)
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(30))
                return (nil, nil)
            }
            let first = await group.next() ?? (nil, nil)
            group.cancelAll()
            return first
        }
        let session = try #require(good, "no session registered; the page said \(server.pageReports)")
        let refused = try #require(tampered)
        let video = try #require(session.media.first { $0.codec == .h264 })
        let audio = try #require(session.media.first { $0.codec == .opus })
        let answer = try SessionDescription(parsing: session.answer)
        let fragment = try #require(answer.media.first?.value("ice-ufrag"))

        // The session whose offer names another certificate ends with a fingerprint mismatch.
        let refusal = Task { () -> WebRTCError.Code? in
            do {
                for try await _ in refused.events {}
                return nil
            } catch {
                return (error as? WebRTCError)?.code
            }
        }

        var tally = RTPTally()
        var sawICE = false
        var dtlsProfile: SRTPProfile?
        var injected = false
        var garbage: Task<Void, any Error>?
        var afterGarbage = 0
        // Time is the media's own (each stream's RTP timestamp since its first packet), not when this loop gets to
        // an event: on a loaded machine the events queue up and are read in bursts.
        var firstTimestamps: [UInt8: UInt32] = [:]
        for try await event in session.events {
            var mediaTime = Duration.zero
            switch event {
            case .iceConnected:
                sawICE = true
            case .dtlsConnected(let profile):
                dtlsProfile = profile
            case .rtcp:
                tally.rtcp += 1
            case .rtp(let packet):
                let header = Array(packet.readableBytesView.prefix(8))
                guard header.count == 8 else { continue }
                let payloadType = header[1] & 0x7F
                let timestamp = header[4...7].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let first = firstTimestamps[payloadType] ?? timestamp
                firstTimestamps[payloadType] = first
                let rate: Int64 = payloadType == video.payloadType ? 90000 : 48000
                mediaTime = .microseconds(Int64(timestamp &- first) * 1_000_000 / rate)
                tally.add(packet, window: Int(mediaTime / .milliseconds(500)))
                if injected { afterGarbage += 1 }
                if !injected, mediaTime > .seconds(1) {
                    // Sent beside the loop, which goes on reading.
                    garbage = Task { try await self.sendGarbage(to: transport.localAddress, fragment: fragment) }
                    injected = true
                }
            }
            if mediaTime > .seconds(4) { break }
        }
        try await garbage?.value
        #expect(sawICE)
        #expect(dtlsProfile != nil)
        let videoPackets = tally.packets[video.payloadType] ?? 0
        let audioPackets = tally.packets[audio.payloadType] ?? 0
        #expect(videoPackets > 40, "H.264 packets: \(tally.packets)")
        #expect(audioPackets > 100, "Opus packets: \(tally.packets)")
        #expect(Set(tally.packets.keys).isSubset(of: [video.payloadType, audio.payloadType]), "\(tally.packets)")
        #expect(tally.backward == 0, "sequence numbers went back \(tally.backward) times")
        #expect(tally.forward > 150)
        for window in 0..<8 {
            #expect(
                tally.windows[window]?.isSuperset(of: [video.payloadType, audio.payloadType]) == true,
                "window \(window)"
            )
        }
        #expect(afterGarbage > 50, "RTP stopped after the garbage")
        let statistics = try #require(await session.statistics())
        #expect(statistics.rejectedSTUN >= 1)
        #expect(await refusal.value == .fingerprintMismatch)

        // RTCP we send reaches Chromium protected (a PLI for the video SSRC); then DELETE-equivalent close.
        if let ssrc = tally.lastSequence.keys.first {
            var pli = ByteBuffer(bytes: [0x81, 206, 0, 2, 0, 0, 0, 1])
            pli.writeInteger(ssrc)
            session.sendRTCP(pli)
            // Same event loop, in order: by the time the counters are read, the PLI was protected and sent.
            #expect(await session.statistics()?.sentRTCP == 1)
        }
        session.close()
        for try await _ in session.events {}
        let sent = await session.statistics()
        #expect(sent == nil, "the session is gone once closed")
    }

    /// Datagrams a stranger sends to the shared port: a check with the session's fragment and a wrong password,
    /// SRTP-looking and DTLS-looking noise, and a lone byte.
    private func sendGarbage(to address: SocketAddress, fragment: String) async throws {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let check = STUNMessage(
            method: STUNMessage.bindingMethod,
            messageClass: .request,
            transactionID: (0..<12).map { _ in UInt8.random(in: 0...255) },
            attributes: [.init(type: STUNAttributeType.username, value: Array("\(fragment):someone".utf8))]
        ).encode(integrityPassword: "not-the-session-password", fingerprint: true)
        let noise: [[UInt8]] = [
            check,
            [0x80, 96, 0, 1] + (0..<200).map { _ in UInt8.random(in: 0...255) },
            [22, 0xFE, 0xFD] + (0..<100).map { _ in UInt8.random(in: 0...255) },
            [0x81, 201] + (0..<50).map { _ in UInt8.random(in: 0...255) },
            [0xFF],
        ]
        for datagram in noise {
            try await channel.writeAndFlush(
                AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: datagram))
            )
        }
        try await channel.close()
    }
}

@Suite(.serialized) struct WHIPOverTCPEndToEndTests {
    /// Headless Chromium publishes with only our ICE-TCP candidate in the answer: it connects to the passive
    /// candidate on 127.0.0.1, and DTLS and decrypted RTP of both payload types arrive over RFC 4571 frames.
    @Test(.timeLimit(.minutes(10)))
    func chromiumPublishesOverICETCP() async throws {
        try #require(Chromium.isAvailable, "headless Chromium (Debian's chromium) is needed at \(Chromium.executable)")
        var configuration = WebRTCTransportConfiguration(host: "127.0.0.1", port: 0)
        configuration.tcpPort = 0
        configuration.announcesUDP = false
        let transport = try await WebRTCTransport.bind(
            configuration: configuration,
            logger: Logger(label: "whip-tcp-test.transport")
        )
        #expect(transport.candidates.map(\.transport) == [.tcp])
        let token = "test-\(UInt64.random(in: 0...UInt64.max))"
        let server = WHIPTestServer(
            transport: transport,
            token: token,
            page: publisherPage(token: token, endpoints: ["/whip/live/show"])
        )
        do {
            try await server.run { port in
                try await Chromium.withPage("http://127.0.0.1:\(port)/publish.html") { _ in
                    var iterator = server.sessions.makeAsyncIterator()
                    let session = try #require(await iterator.next()?.session)
                    var packets: [UInt8: Int] = [:]
                    var start: ContinuousClock.Instant?
                    var connected = false
                    for try await event in session.events {
                        if case .dtlsConnected = event { connected = true }
                        if case .rtp(let packet) = event, packet.readableBytes >= 12 {
                            start = start ?? .now
                            packets[
                                packet.getInteger(at: packet.readerIndex + 1, as: UInt8.self)! & 0x7F,
                                default: 0
                            ] += 1
                        }
                        if let start, ContinuousClock.now - start > .seconds(2) { break }
                    }
                    #expect(connected, "the page said \(server.pageReports)")
                    for media in session.media {
                        #expect((packets[media.payloadType] ?? 0) > 20, "\(media.codec): \(packets)")
                    }
                    session.close()
                }
            }
        } catch {
            await transport.close()
            throw error
        }
        await transport.close()
    }
}
