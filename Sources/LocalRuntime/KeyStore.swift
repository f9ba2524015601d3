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
import LiveStreamModel

/// Stream keys that local mode generated for Secrets missing from the file, kept as
/// `<state>/secrets/<namespace>/<secret>/<key>` (files 0600, folders 0700): the same layout Kubernetes mounts
/// Secrets in, so a key survives restarts and is printed only when it is made.
struct KeyStore {
    let directory: String

    func path(namespace: String, secret: String, key: String) -> String {
        "\(self.directory)/secrets/\(namespace)/\(secret)/\(key)"
    }

    /// The stored key, if one was generated before.
    func read(namespace: String, secret: String, key: String) -> String? {
        guard
            let text = try? String(
                contentsOfFile: self.path(namespace: namespace, secret: secret, key: key),
                encoding: .utf8
            )
        else {
            return nil
        }
        let trimmed = StreamKey.normalized(text)
        return trimmed.isEmpty ? nil : trimmed
    }

    /// Generates and stores a key; returns it with its path.
    func generate(namespace: String, secret: String, key: String) throws -> (value: String, path: String) {
        let path = self.path(namespace: namespace, secret: secret, key: key)
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(
            atPath: folder,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        let value = StreamKey.generate()
        try writePrivateFile(path, contents: value + "\n")
        return (value, path)
    }
}

/// Writes `contents` to `path` readable by the owner only, replacing the file atomically: the file never exists
/// with wider permissions, even for a moment.
func writePrivateFile(_ path: String, contents: String) throws {
    let temporary = path + ".tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else {
        throw LocalRuntimeError("cannot write \(temporary): \(String(cString: strerror(errno)))")
    }
    let bytes = Array(contents.utf8)
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    guard written == bytes.count else {
        unlink(temporary)
        throw LocalRuntimeError("cannot write \(temporary): short write")
    }
    guard rename(temporary, path) == 0 else {
        unlink(temporary)
        throw LocalRuntimeError("cannot move \(temporary) to \(path): \(String(cString: strerror(errno)))")
    }
}

/// A failure of local mode that stops it from starting (a state directory it cannot create, say).
public struct LocalRuntimeError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { self.message }
}
