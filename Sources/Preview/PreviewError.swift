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

/// Why the preview of a stream stopped. The relay's pushes never see it: only the preview stops.
public struct PreviewError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case libav
        case unsupportedCodec
        case io
    }

    private let code: Code
    /// What went wrong, with libavformat's own text when it comes from there.
    public let message: String

    private init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// A libavformat call failed; `code` is its negative `AVERROR`.
    @inline(never)
    static func libav(_ what: String, code: Int32) -> Self {
        Self(.libav, "\(what): \(libavErrorText(code)) (\(code))")
    }

    /// libavformat, libavcodec or libavutil could not be loaded.
    @inline(never)
    static func unavailable(_ reason: String) -> Self {
        Self(.libav, "libavformat is not available for the preview: \(reason)")
    }

    /// The stream's codec cannot be packaged for the preview.
    @inline(never)
    static func unsupportedCodec(_ message: String) -> Self {
        Self(.unsupportedCodec, message)
    }

    /// A file of the preview could not be written.
    @inline(never)
    static func io(_ message: String) -> Self {
        Self(.io, message)
    }

    public var description: String { self.message }
}
