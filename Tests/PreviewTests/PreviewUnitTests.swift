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
import NIOCore
import Relay
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
