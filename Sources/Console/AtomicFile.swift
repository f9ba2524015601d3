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
#elseif canImport(Darwin)
import Darwin
#endif

/// Replaces a file's contents all at once: written to a temporary file beside it, flushed, then renamed over it, so a
/// reader (local mode polling the streams file, another `liverelay console users`) sees the old file or the new one,
/// never half of one.
public enum AtomicFile {
    /// Writes `contents` to `path` with `mode` (0600 by default; an existing file keeps the mode it had).
    public static func replace(_ path: String, with contents: String, mode: UInt32 = 0o600) throws(ConsoleStoreError) {
        var mode = mode_t(mode)
        var status = stat()
        if stat(path, &status) == 0 {
            // An existing file keeps its permissions: the person who made it chose them.
            mode = status.st_mode & 0o7777
        }
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else {
            throw .unavailable("cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        fchmod(fd, mode)
        let bytes = Array(contents.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else {
                close(fd)
                unlink(temporary)
                throw .unavailable("cannot write \(temporary): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        fsync(fd)
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .unavailable("cannot replace \(path): \(reason)")
        }
    }
}
