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

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Gives back the pages of code a process ran once and will not run again soon.
///
/// Linux maps a binary's code into a process in blocks (64 KiB around each fault, or a whole large folio of the page
/// cache), and keeps them mapped: an idle relay held the code of argument parsing, configuration decoding and
/// start-up of every service for as long as it ran, about as much as the code it runs afterwards (BENCHMARKS.md,
/// "Relay memory"); an operator at rest held the code of the burst that created thousands of streams ("Operator
/// memory"). Once that phase is over, ``release(mappings:)`` unmaps (`MADV_DONTNEED`) every private file mapping
/// that is not writable and holds no page of its own: code and read-only data, exactly as the file has them. What
/// runs afterwards faults its pages back from the page cache (no disk read while the file's pages stay there), so
/// the resident set holds what the process runs from then on, not what it ran before.
///
/// A mapping with a page the process changed (`Anonymous` above 0: relocated read-only data after `mprotect`, code
/// patched at load) and a writable one are given back with `MADV_PAGEOUT` instead, which reclaims only the file's own
/// pages and keeps every page the process wrote (without swap it cannot reclaim those, and with swap it swaps them
/// out, their contents kept): nothing the loader or the program wrote is lost. `MADV_PAGEOUT` leaves alone a page
/// another process maps too (shared, so not this process's to give back), may take a page it reclaims out of the
/// page cache (read from the file again if ever needed), needs Linux 5.4, and reclaims a file's pages only for a
/// process that owns the file or may write it: not a relay in its image, which runs as another user than the
/// binary's owner. Where it fails nothing changes. A static Swift binary therefore keeps as little as it can in
/// writable segments: the toolchain's objects mark their statically initialized Swift objects as writable `.rodata`,
/// and a linker makes all of `.rodata` (37 MiB, ICU's data included) as writable as its most writable input; the
/// images' link (`tools/relay-sections.ld`) puts those objects beside `.data`, so `.rodata` is read-only and given
/// back with `MADV_DONTNEED` like code.
public enum CodePages {
    /// A private file mapping that ``release(mappings:)`` gives back.
    public struct Mapping: Hashable, Sendable {
        public var start: UInt
        public var end: UInt
        public var path: String
        /// Whether it may hold pages the process wrote (writable, or `Anonymous` above 0): then only the file's own
        /// pages go (`MADV_PAGEOUT`); otherwise all of them (`MADV_DONTNEED`).
        public var mayHoldWrites: Bool

        public init(start: UInt, end: UInt, path: String, mayHoldWrites: Bool = false) {
            self.start = start
            self.end = end
            self.path = path
            self.mayHoldWrites = mayHoldWrites
        }
    }

    /// The mappings of `/proc/self/smaps` (its text: `smaps`) that may be given back: private (`p`), readable, and
    /// backed by a file (an inode, a path that is not `[vdso]` and the like). Those that are writable or hold
    /// anonymous (written) pages are marked ``Mapping/mayHoldWrites``.
    public static func releasable(smaps: String) -> [Mapping] {
        var mappings: [Mapping] = []
        var candidate: Mapping?
        for line in smaps.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if let dash = first.firstIndex(of: "-"), fields.count >= 5,
                let start = UInt(first[..<dash], radix: 16),
                let end = UInt(first[first.index(after: dash)...], radix: 16)
            {
                // A mapping's header: start-end perms offset dev inode [path]. Its fields come on the lines after.
                let permissions = Array(fields[1].utf8)
                let path = fields.count >= 6 ? fields[5...].joined(separator: " ") : ""
                let eligible =
                    permissions.count == 4 && permissions[0] == UInt8(ascii: "r")
                    && permissions[3] == UInt8(ascii: "p") && fields[4] != "0" && path.hasPrefix("/")
                let writable = permissions.count == 4 && permissions[1] == UInt8(ascii: "w")
                candidate = eligible ? Mapping(start: start, end: end, path: path, mayHoldWrites: writable) : nil
            } else if first == "Anonymous:", var mapping = candidate {
                // The size of the mapping's anonymous (changed) pages: with any, only the file's pages may go.
                if !(fields.count >= 2 && fields[1] == "0") {
                    mapping.mayHoldWrites = true
                }
                mappings.append(mapping)
                candidate = nil
            }
        }
        return mappings
    }

    /// Reads `/proc/self/smaps`; `nil` where there is none (not Linux, no `/proc`).
    public static func ownMappings() -> String? {
        let fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Linux's `MADV_PAGEOUT` (5.4), which not every C library's headers name.
    static let pageOut: Int32 = 21

    /// Gives back the pages of `mappings` (see ``releasable(smaps:)``): all of a mapping's, or, where it may hold
    /// writes, the file's own; returns the bytes of the mappings it advised.
    @discardableResult
    public static func release(mappings: [Mapping]) -> Int {
        var bytes = 0
        for mapping in mappings where mapping.end > mapping.start {
            let length = Int(mapping.end - mapping.start)
            let advice = mapping.mayHoldWrites ? Self.pageOut : Int32(MADV_DONTNEED)
            if madvise(UnsafeMutableRawPointer(bitPattern: mapping.start), length, advice) == 0 {
                bytes += length
            }
        }
        return bytes
    }

    /// Unmaps the pages of every releasable mapping of this process; returns the bytes advised (0 without `/proc`).
    @discardableResult
    public static func release() -> Int {
        guard let smaps = Self.ownMappings() else { return 0 }
        return Self.release(mappings: Self.releasable(smaps: smaps))
    }
}
