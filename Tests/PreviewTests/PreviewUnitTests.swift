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
import PeerTestSupport
import Relay
import RelayAPI
import Testing

@testable import Preview

@Suite struct PreviewQueueTests {
    // FLV video bodies: AVC keyframe, AVC inter frame, AVC sequence header (the relay classifies them; the queue
    // goes by the role it is given).
    let keyframe = ByteBuffer(bytes: [0x17, 0x01, 0, 0, 0] + Array(repeating: 0xAA, count: 1000))
    let interframe = ByteBuffer(bytes: [0x27, 0x01, 0, 0, 0] + Array(repeating: 0xBB, count: 1000))
    let header = ByteBuffer(bytes: [0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1F])

    @Test func behindItDropsToTheNextKeyframeAndKeepsHeaders() {
        let queue = PreviewQueue(maxBytes: 3000, wakeSpan: 1)
        #expect(self.push(queue, .video(self.header, 0, .sequenceHeader)) == "queued")
        #expect(self.push(queue, .video(self.keyframe, 0, .keyframe)) == "queued")
        #expect(self.push(queue, .video(self.interframe, 40, .frame)) == "queued")
        // Over the bound: what waits is dropped (the header stays), and so is everything up to a keyframe.
        #expect(self.push(queue, .video(self.interframe, 80, .frame)) == "startedDropping")
        #expect(self.push(queue, .video(self.interframe, 120, .frame)) == "dropped")
        #expect(self.push(queue, .audio(ByteBuffer(bytes: [0xAF, 0x01, 0x21]), 120, .frame)) == "dropped")
        #expect(self.push(queue, .video(self.keyframe, 160, .keyframe)) == "queued")
        let (items, dropped) = queue.pop()
        #expect(dropped == 5)
        #expect(items.count == 2)
        #expect(items.first?.isHeader == true)
        #expect(items.last?.isKeyframe == true)
        // The end is always queued, and nothing after it.
        #expect(self.push(queue, .end) == "queued")
        #expect(self.push(queue, .video(self.keyframe, 200, .keyframe)) == "dropped")
    }

    @Test func itWakesThePackagerOncePerFragmentOfMediaAndAtTheEnd() {
        let queue = PreviewQueue(maxBytes: 1 << 20, wakeSpan: 250)
        let audio = ByteBuffer(bytes: [0xAF, 0x01, 0x21])
        _ = queue.push(.video(self.keyframe, 1000, .keyframe))
        for frame in 1..<8 {
            _ = queue.push(.audio(audio, UInt32(1000 + frame * 23), .frame))
            _ = queue.push(.video(self.interframe, UInt32(1000 + frame * 33), .frame))
            #expect(!queue.isReady, "woken after \(frame * 33) ms of media")
        }
        _ = queue.push(.video(self.interframe, 1000 + 8 * 33, .frame))
        #expect(queue.isReady)
        #expect(queue.pop().0.count == 16)
        #expect(!queue.isReady)
        // Timestamps that go back (an encoder restarted) wake it, and so does the end.
        _ = queue.push(.video(self.keyframe, 2000, .keyframe))
        _ = queue.push(.video(self.keyframe, 0, .keyframe))
        #expect(queue.isReady)
        _ = queue.pop()
        _ = queue.push(.end)
        #expect(queue.isReady)
    }

    private func push(_ queue: PreviewQueue, _ item: PreviewQueue.Item) -> String {
        switch queue.push(item) {
        case .queued: "queued"
        case .dropped: "dropped"
        case .startedDropping: "startedDropping"
        }
    }

    @Test(arguments: [
        ("index.m3u8", true), ("s1-0-12.ts", true), ("../etc/passwd", false), (".hidden.ts", false),
        ("index.m3u8/x", false), ("segment.mp4", false), ("a b.ts", false),
    ])
    func onlyHLSFileNamesAreServed(_ name: String, _ allowed: Bool) {
        #expect(PreviewStream.isHLSFileName(name) == allowed)
    }

    @Test func thePageUsesRelativeURLsAndNoThirdPartyScript() {
        let html = PreviewPage.html
        #expect(html.contains("fetch(\"status\""))
        #expect(html.contains("fetch(\"live.mp4\""))
        #expect(!html.contains("\"/preview"))
        #expect(!html.contains("<script src"))
        #expect(html.contains("MediaSource.isTypeSupported"))
    }

    @Test func previewEnabledComesFromTheLiveStreamSpec() throws {
        let yaml = """
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: on }
            spec:
              ingest: { streamKeySecretRef: { name: keys, key: on } }
            ---
            apiVersion: liverelay.io/v1alpha1
            kind: LiveStream
            metadata: { name: off }
            spec:
              ingest: { streamKeySecretRef: { name: keys, key: off } }
              preview: { enabled: false }
            ---
            apiVersion: v1
            kind: Secret
            metadata: { name: keys }
            stringData: { on: key-one, off: key-two }
            """
        let streams = try RelayConfiguration.streams(yaml: yaml, source: "test", secretsDirectory: "/nonexistent")
        #expect(streams.map(\.previewEnabled) == [true, false])
    }
}

@Suite struct PreviewDirectoryTests {
    /// A fixed name such as `/tmp/liverelay-preview` belongs to whichever user made it first, and every other user's
    /// preview fails with EACCES; each process gets a directory of its own, private to its user.
    @Test func eachProcessGetsAPrivateDirectoryOfItsOwn() throws {
        let first = try PrivateTemporaryDirectory().path()
        let second = try PrivateTemporaryDirectory().path()
        defer {
            try? FileManager.default.removeItem(atPath: first)
            try? FileManager.default.removeItem(atPath: second)
        }
        #expect(first != second)
        #expect(URL(fileURLWithPath: first).lastPathComponent.hasPrefix("liverelay-preview-"))
        for path in [first, second] {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? Int) == 0o700, "\(path): \(attributes)")
            #expect((attributes[.ownerAccountID] as? Int).map(UInt32.init) == getuid())
        }
    }
}

/// avcC: version 1, constrained baseline 3.1, 4-byte lengths, one SPS (320x240) and one PPS.
private let smallAVCRecord: [UInt8] = {
    let sps: [UInt8] = [
        0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x05, 0x07, 0xE8, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0F, 0x23,
        0xC6, 0x0C, 0xA8,
    ]
    let pps: [UInt8] = [0x68, 0xCE, 0x3C, 0x80]
    return [0x01, 0x42, 0xC0, 0x1F, 0xFF, 0xE1, 0x00, UInt8(sps.count)] + sps + [0x01, 0x00, UInt8(pps.count)] + pps
}()

/// Issue 24: libavformat's mp4 muxer shifts every track by the first packet it sees (avoid_negative_ts make_zero, no
/// edit list). When that is audio from beyond the first video frame's duration, the first frame's duration comes out
/// negative, and a fragment that ends with it (the next frame a keyframe, as a PLI at a WHIP session's start makes
/// it) trips movenc's `av_assert0(next_dts >= 0)`: the relay aborted, and its WHIP session ended at once.
@Suite struct PreviewFirstPacketTests {
    @Test(.timeLimit(.minutes(1)))
    func audioAheadOfTheFirstFrameThenAKeyframe() async throws {
        let stream = PreviewStream(name: "late")
        let session = stream.startSession(logger: Logger(label: "preview-first-packet-test"))
        session.video(ByteBuffer(bytes: [0x17, 0x00, 0, 0, 0] + smallAVCRecord), timestamp: 0, role: .sequenceHeader)
        // AAC-LC, 48 kHz, stereo.
        session.audio(ByteBuffer(bytes: [0xAF, 0x00, 0x11, 0x90]), timestamp: 0, role: .sequenceHeader)
        func frame(_ keyframe: Bool, at timestamp: UInt32) {
            let nal: [UInt8] = keyframe ? [0x65, 0x88, 0x84, 0x00, 0x33] : [0x41, 0x9A, 0x02, 0x04]
            session.video(
                ByteBuffer(bytes: [keyframe ? 0x17 : 0x27, 0x01, 0, 0, 0, 0, 0, 0, UInt8(nal.count)] + nal),
                timestamp: timestamp,
                role: keyframe ? .keyframe : .frame
            )
        }
        func audio(at timestamp: UInt32) {
            session.audio(
                ByteBuffer(bytes: [0xAF, 0x01, 0x21, 0x10, 0x04, 0x60, 0x8C, 0x1C]),
                timestamp: timestamp,
                role: .frame
            )
        }
        frame(true, at: 1000)
        // Audio from 40 ms on reaches the packager before the second frame, a keyframe 33 ms after the first.
        for index in 0..<10 { audio(at: 1040 + UInt32(index) * 21) }
        frame(true, at: 1033)
        for index in 2..<60 {
            let time = 1000 + UInt32(index * 33)
            audio(at: time + 250)
            frame(index % 30 == 0, at: time)
        }
        session.finish()
        let fragments = try await eventually("the preview to have written fragments") {
            stream.status.fragments > 1 ? stream.status.fragments : nil
        }
        #expect(fragments > 1)
    }
}

/// Issue 25: the hour with a black-holed target grew by about 1.5 MiB with the preview on and stayed flat with it off.
/// libavformat's mp4 muxer keeps an index entry per fragment and track for the `mfra` box it writes at the end, unless
/// told to skip that trailer; a live preview cuts four fragments a second and never ends in a file.
@Suite struct PreviewMP4IndexTests {
    @Test func theLiveMuxerKeepsNoPerFragmentIndex() throws {
        // With the live options: no `mfra` at the end, however many fragments.
        let live = try Self.mux(fragments: 200, options: PreviewPackager.liveMP4Options)
        #expect(live.contains("moof"))
        #expect(!live.contains("mfra"), "\(live.suffix(3))")
        // The same stream without `skip_trailer` ends with the index the muxer kept in memory.
        let indexed = try Self.mux(
            fragments: 200,
            options: [("movflags", "frag_custom+empty_moov+default_base_moof")]
        )
        #expect(indexed.last == "mfra")
    }

    /// The top-level box types of an fMP4 stream of `fragments` one-keyframe fragments.
    static func mux(fragments: Int, options: [(String, String)]) throws -> [String] {
        let track = PreviewTrack(codec: .h264, extradata: ByteBuffer(bytes: smallAVCRecord), width: 320, height: 240)
        let muxer = try LibAVMuxer(format: "mp4", url: nil, tracks: [track], options: options)
        var output = try muxer.takeOutput()
        let frame = try LibAVPacketData(ByteBuffer(bytes: [0x00, 0x00, 0x00, 0x05, 0x65, 0x88, 0x84, 0x00, 0x33]))
        for index in 0..<Int64(fragments) {
            try muxer.write(track: 0, data: frame, dts: index * 40, pts: index * 40, duration: 40, keyframe: true)
            try muxer.flush()
            var taken = try muxer.takeOutput()
            output.writeBuffer(&taken)
        }
        try muxer.finish()
        var rest = try muxer.takeOutput()
        output.writeBuffer(&rest)
        return PreviewEndToEndTests.boxes(output).map(\.type)
    }
}
