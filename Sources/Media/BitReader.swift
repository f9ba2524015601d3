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

/// Reads bits, most significant first, from a range of a `ByteBuffer` without copying it.
///
/// For NAL units (`removingEmulationPrevention: true`) it also drops every `emulation_prevention_three_byte`: an
/// encoder inserts 0x03 after two zero bytes whenever the next byte would be 0x00 to 0x03, so that no start code
/// appears inside a NAL unit (H.264 7.3.1 and 7.4.1, H.265 7.3.1.1), and the syntax is defined on the bytes without
/// them (the RBSP). Parameter sets are tens of bytes and parsed once per sequence header, so bit-by-bit is enough.
struct BitReader {
    private let buffer: ByteBuffer
    private let what: StaticString
    private let startIndex: Int
    private let endIndex: Int
    private let removesEmulationPrevention: Bool
    private var nextIndex: Int
    private var currentByte: UInt8 = 0
    private var bitsLeftInCurrentByte = 0
    private var zeroBytesInARow = 0

    /// - Parameters:
    ///   - buffer: The buffer to read from; `offset` is relative to its reader index.
    ///   - what: Names the structure in the error thrown when the bits run out.
    init(_ buffer: ByteBuffer, from offset: Int = 0, removingEmulationPrevention: Bool, what: StaticString) {
        self.buffer = buffer
        self.what = what
        self.startIndex = buffer.readerIndex + offset
        self.endIndex = buffer.writerIndex
        self.nextIndex = self.startIndex
        self.removesEmulationPrevention = removingEmulationPrevention
    }

    private mutating func loadNextByte() throws(MediaError) {
        var byte = try self.nextRawByte()
        if self.removesEmulationPrevention && self.zeroBytesInARow >= 2 && byte == 0x03 {
            self.zeroBytesInARow = 0
            byte = try self.nextRawByte()
        }
        self.zeroBytesInARow = byte == 0 ? self.zeroBytesInARow + 1 : 0
        self.currentByte = byte
        self.bitsLeftInCurrentByte = 8
    }

    private mutating func nextRawByte() throws(MediaError) -> UInt8 {
        guard self.nextIndex < self.endIndex, let byte = self.buffer.getInteger(at: self.nextIndex, as: UInt8.self)
        else {
            let available = self.endIndex - self.startIndex
            throw .truncated("\(self.what)", needed: available + 1, available: available)
        }
        self.nextIndex += 1
        return byte
    }

    /// Reads one bit, `u(1)`.
    mutating func readFlag() throws(MediaError) -> Bool { try self.readBits(1) == 1 }

    /// Reads `count` bits (0 to 32) as an unsigned integer, `u(n)`.
    mutating func readBits(_ count: Int) throws(MediaError) -> UInt32 {
        assert((0...32).contains(count))
        var value: UInt32 = 0
        var remaining = count
        while remaining > 0 {
            if self.bitsLeftInCurrentByte == 0 {
                try self.loadNextByte()
            }
            let take = min(remaining, self.bitsLeftInCurrentByte)
            let shift = self.bitsLeftInCurrentByte - take
            let bits = (UInt32(self.currentByte) >> UInt32(shift)) & ((1 << UInt32(take)) - 1)
            value = value << UInt32(take) | bits
            self.bitsLeftInCurrentByte -= take
            remaining -= take
        }
        return value
    }

    /// Skips `count` bits.
    mutating func skipBits(_ count: Int) throws(MediaError) {
        var remaining = count
        while remaining > 0 {
            let step = min(remaining, 32)
            _ = try self.readBits(step)
            remaining -= step
        }
    }

    /// Reads an unsigned Exp-Golomb code, `ue(v)` (H.264 9.1). Codes longer than 32 bits are rejected: no syntax
    /// element read here can need them, and they would overflow.
    mutating func readUnsignedExpGolomb() throws(MediaError) -> UInt32 {
        var leadingZeroBits = 0
        while try !self.readFlag() {
            leadingZeroBits += 1
            guard leadingZeroBits < 32 else {
                throw .invalidParameterSet("\(self.what): Exp-Golomb code longer than 32 bits")
            }
        }
        guard leadingZeroBits > 0 else { return 0 }
        return (UInt32(1) << UInt32(leadingZeroBits)) - 1 + (try self.readBits(leadingZeroBits))
    }

    /// Reads a signed Exp-Golomb code, `se(v)` (H.264 9.1.1): 0, 1, -1, 2, -2, ...
    mutating func readSignedExpGolomb() throws(MediaError) -> Int32 {
        let codeNum = try self.readUnsignedExpGolomb()
        let magnitude = Int64(codeNum / 2) + Int64(codeNum % 2)
        return Int32(truncatingIfNeeded: codeNum % 2 == 1 ? magnitude : -magnitude)
    }
}
