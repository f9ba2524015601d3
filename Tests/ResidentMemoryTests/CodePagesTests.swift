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
import ResidentMemory
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite("Code pages")
struct CodePagesTests {
    @Test("Private file mappings are released; those that may hold writes only by their file's pages")
    func releasable() {
        // As /proc/self/smaps writes them (fields cut to those the parser reads, plus a few it skips).
        let smaps = """
            55d0c0000000-55d0c0400000 r--p 00000000 fe:00 1234   /usr/local/bin/liverelay
            Rss:                 800 kB
            Anonymous:             0 kB
            55d0c0400000-55d0c2000000 r-xp 00400000 fe:00 1234   /usr/local/bin/liverelay
            Rss:               18000 kB
            Anonymous:             0 kB
            55d0c2000000-55d0c2100000 r--p 02000000 fe:00 1234   /usr/local/bin/liverelay
            Anonymous:           700 kB
            55d0c2100000-55d0c2200000 rw-p 02100000 fe:00 1234   /usr/local/bin/liverelay
            Anonymous:           900 kB
            7f0000000000-7f0000100000 r-xp 00000000 fe:00 99     /lib/x86_64-linux-gnu/libc with space.so.6
            Anonymous:             0 kB
            7f0000100000-7f0000200000 r--s 00000000 fe:00 77     /dev/shm/shared
            Anonymous:             0 kB
            7f0000200000-7f0000300000 rw-p 00000000 00:00 0
            Anonymous:          1024 kB
            7f0000300000-7f0000301000 r--p 00000000 00:00 0      [vvar]
            Anonymous:             0 kB
            7f0000301000-7f0000302000 r-xp 00000000 00:00 0      [vdso]
            Anonymous:             0 kB
            7f0000400000-7f0000500000 r-xp 00000000 fe:00 55     /lib/no-anonymous-line.so
            VmFlags: rd ex mr mw me
            """
        #expect(
            CodePages.releasable(smaps: smaps) == [
                .init(start: 0x55d0_c000_0000, end: 0x55d0_c040_0000, path: "/usr/local/bin/liverelay"),
                .init(start: 0x55d0_c040_0000, end: 0x55d0_c200_0000, path: "/usr/local/bin/liverelay"),
                .init(
                    start: 0x55d0_c200_0000,
                    end: 0x55d0_c210_0000,
                    path: "/usr/local/bin/liverelay",
                    mayHoldWrites: true
                ),
                .init(
                    start: 0x55d0_c210_0000,
                    end: 0x55d0_c220_0000,
                    path: "/usr/local/bin/liverelay",
                    mayHoldWrites: true
                ),
                .init(
                    start: 0x7f00_0000_0000,
                    end: 0x7f00_0010_0000,
                    path: "/lib/x86_64-linux-gnu/libc with space.so.6"
                ),
            ]
        )
    }

    @Test("Released pages leave the resident set and read back as the file has them")
    func release() throws {
        let size = 256 * 1024
        let contents = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 / 4096) }
        try Self.withPrivateMapping("code-pages", contents: contents, protection: PROT_READ) { path, bytes in
            #expect(Array(bytes) == contents)  // reads every page: all resident
            #expect(Self.residentKiB(path) == size / 1024)

            let smaps = try #require(CodePages.ownMappings())
            let mappings = CodePages.releasable(smaps: smaps).filter { $0.path == path }
            #expect(mappings.count == 1)
            #expect(CodePages.release(mappings: mappings) == size)
            #expect(Self.residentKiB(path) == 0)
            #expect(Array(bytes) == contents)
            #expect(Self.residentKiB(path) == size / 1024)
        }
    }

    @Test("A writable private file mapping keeps every page the process wrote; the file's own pages leave")
    func releaseKeepsWrites() throws {
        let size = 256 * 1024
        let contents = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 / 4096) }
        try Self.withPrivateMapping("code-pages-rw", contents: contents, protection: PROT_READ | PROT_WRITE) {
            path,
            bytes in
            #expect(Array(bytes) == contents)  // every page resident, the file's
            // Two pages written: private copies, which only this process has.
            bytes[5] = 0xAB
            bytes[200 * 1024] = 0xCD
            var expected = contents
            expected[5] = 0xAB
            expected[200 * 1024] = 0xCD

            let smaps = try #require(CodePages.ownMappings())
            let mappings = CodePages.releasable(smaps: smaps).filter { $0.path == path }
            #expect(mappings.map(\.mayHoldWrites) == [true])
            #expect(CodePages.release(mappings: mappings) == size)
            // On a file system of files (not tmpfs, whose pages count as the process's until swapped out), the file's
            // pages have left; the two written pages stay, with what was written.
            let tmpfs = try Self.fileSystemType(of: path) == "tmpfs"
            let resident = try #require(Self.residentKiB(path))
            if tmpfs {
                #expect(resident == size / 1024)
            } else {
                #expect(resident == 8, "the two written pages")
            }
            #expect(Array(bytes) == expected)
        }
    }

    /// Writes `contents` to a file of its own, maps it privately with `protection`, and runs `body` with the file's
    /// path and the mapping; removes both after.
    static func withPrivateMapping(
        _ name: String,
        contents: [UInt8],
        protection: Int32,
        _ body: (String, UnsafeMutableRawBufferPointer) throws -> Void
    ) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid())").path
        defer { unlink(path) }
        try Data(contents).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let address = try #require(mmap(nil, contents.count, protection, MAP_PRIVATE, fd, 0))
        try #require(address != MAP_FAILED)
        defer { munmap(address, contents.count) }
        try body(path, UnsafeMutableRawBufferPointer(start: address, count: contents.count))
    }

    /// The type of the file system `path` is on, from `/proc/self/mounts` (the longest mount point above it).
    static func fileSystemType(of path: String) throws -> String {
        let mounts = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
        var best: (point: String, type: String) = ("", "")
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            let point = String(fields[1])
            let inside = point == "/" || path == point || path.hasPrefix(point + "/")
            if inside, point.count >= best.point.count {
                best = (point, String(fields[2]))
            }
        }
        return best.type
    }

    /// The resident KiB of this process's mappings of `path`.
    static func residentKiB(_ path: String) -> Int? {
        guard let smaps = CodePages.ownMappings() else { return nil }
        var inside = false
        var total = 0
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 5, fields[0].contains("-"), fields[0].first?.isHexDigit == true,
                !fields[0].hasSuffix(":")
            {
                inside = fields.count >= 6 && fields[5...].joined(separator: " ") == path
            } else if inside, fields.first == "Rss:", fields.count >= 2, let kib = Int(fields[1]) {
                total += kib
            }
        }
        return total
    }
}
