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

import NIOCore

// Every parser in this module reads at offsets relative to the buffer's reader index with `getInteger(at:)`, which
// returns nil outside the readable bytes. Nothing is consumed and nothing is copied: the payload is shared with the
// relay's other subscribers.
extension ByteBuffer {
    @inline(__always)
    func mediaUInt8(at offset: Int) -> UInt8? {
        self.getInteger(at: self.readerIndex &+ offset, as: UInt8.self)
    }

    @inline(__always)
    func mediaUInt16(at offset: Int) -> UInt16? {
        self.getInteger(at: self.readerIndex &+ offset, as: UInt16.self)
    }

    @inline(__always)
    func mediaUInt32(at offset: Int) -> UInt32? {
        self.getInteger(at: self.readerIndex &+ offset, as: UInt32.self)
    }

    /// A big-endian signed 24-bit integer (FLV `SI24`), sign-extended.
    @inline(__always)
    func mediaInt24(at offset: Int) -> Int32? {
        guard let high = self.mediaUInt8(at: offset), let low = self.mediaUInt16(at: offset &+ 1) else {
            return nil
        }
        let raw = UInt32(high) << 16 | UInt32(low)
        return Int32(bitPattern: raw << 8) >> 8
    }
}
