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

public import NIOCore

/// One value in Action Message Format version 0 (AMF0), the encoding of RTMP command (type 20) and data (type 18)
/// messages.
///
/// The specification is Adobe's "Action Message Format -- AMF 0" (December 2007). Objects and ECMA arrays keep
/// their properties in wire order: peers such as Flash Media Server compare `connect` objects key by key, and a relay
/// that forwards metadata should not reshuffle it. Lookups with ``subscript(_:)`` are linear, which is fine for the
/// handful of keys a command carries.
///
/// Literals build values directly: `"live"` is ``string(_:)``, `1` and `1.5` are ``number(_:)``, `true` is
/// ``boolean(_:)``, `nil` is ``null``, `[1, 2]` is ``strictArray(_:)`` and `["app": "live"]` is ``object(_:)`` in
/// literal order. Where the expected type is `AMF0Value?`, `nil` keeps meaning "absent", not AMF0 null.
public enum AMF0Value: Sendable {
    /// An IEEE 754 double (marker 0x00). AMF0 has no integer type: transaction ids and stream ids are numbers too.
    case number(Double)
    /// Marker 0x01.
    case boolean(Bool)
    /// A string (marker 0x02 with a 16-bit length, or 0x0C "long string" with a 32-bit length). The encoder picks
    /// the long form only when the UTF-8 length exceeds 65535 bytes, so decoders that know only 0x02 keep working.
    case string(String)
    /// An anonymous object (marker 0x03): ordered key-value pairs.
    case object([(key: String, value: AMF0Value)])
    /// Marker 0x05.
    case null
    /// Marker 0x06.
    case undefined
    /// An associative array (marker 0x08). On the wire it carries a 32-bit count, which the decoder ignores; the
    /// encoder writes the true count.
    case ecmaArray([(key: String, value: AMF0Value)])
    /// A dense array (marker 0x0A).
    case strictArray([AMF0Value])
    /// A date (marker 0x0B): milliseconds since the Unix epoch (UTC) and a time zone that the specification
    /// reserves and says should be 0. The time zone is kept so that a decoded date re-encodes to the same bytes.
    case date(Double, timeZone: Int16)
    /// An XML document (marker 0x0F), kept as text.
    case xmlDocument(String)
    /// An object of a registered ActionScript class (marker 0x10).
    case typedObject(className: String, properties: [(key: String, value: AMF0Value)])
}

/// The limits the AMF0 decoder enforces, so that a peer cannot make it recurse without bound.
public enum AMF0Limits {
    /// How many containers (objects, ECMA arrays, strict arrays, typed objects) may enclose each other.
    ///
    /// The decoder recurses once per level, so without a limit a few kilobytes of `0x0A 00 00 00 01` would overflow
    /// the stack. No real command or metadata message nests deeper than three levels; 32 leaves ample room.
    public static let defaultMaxDepth = 32
}

// MARK: - Accessors

extension AMF0Value {
    /// The string of a ``string(_:)``, otherwise `nil`.
    public var stringValue: String? {
        if case .string(let value) = self { value } else { nil }
    }

    /// The number of a ``number(_:)``, otherwise `nil`.
    public var numberValue: Double? {
        if case .number(let value) = self { value } else { nil }
    }

    /// The value of a ``boolean(_:)``, otherwise `nil`.
    public var boolValue: Bool? {
        if case .boolean(let value) = self { value } else { nil }
    }

    /// The value of the property named `key` of an object, ECMA array or typed object; `nil` if there is no such
    /// property or this value has no properties.
    ///
    /// If a key occurs more than once, the last occurrence wins. That is what ActionScript's property assignment,
    /// ffmpeg and nginx-rtmp do, so every hop of a relay chain reads the same value from the same bytes.
    public subscript(key: String) -> AMF0Value? {
        switch self {
        case .object(let properties), .ecmaArray(let properties), .typedObject(_, let properties):
            properties.last(where: { $0.key == key })?.value
        case .number, .boolean, .string, .null, .undefined, .strictArray, .date, .xmlDocument:
            nil
        }
    }
}

// MARK: - Equatable and Hashable

// Tuples are neither Equatable nor Hashable, so the ordered property lists need these by hand. Numbers compare with
// `Double.==`, as synthesised conformance would: `.number(.nan) != .number(.nan)` and `0.0 == -0.0`.
extension AMF0Value: Hashable {
    public static func == (lhs: AMF0Value, rhs: AMF0Value) -> Bool {
        switch (lhs, rhs) {
        case (.number(let l), .number(let r)):
            l == r
        case (.boolean(let l), .boolean(let r)):
            l == r
        case (.string(let l), .string(let r)):
            l == r
        case (.object(let l), .object(let r)):
            Self.propertiesEqual(l, r)
        case (.null, .null), (.undefined, .undefined):
            true
        case (.ecmaArray(let l), .ecmaArray(let r)):
            Self.propertiesEqual(l, r)
        case (.strictArray(let l), .strictArray(let r)):
            l == r
        case (.date(let l, let lZone), .date(let r, let rZone)):
            l == r && lZone == rZone
        case (.xmlDocument(let l), .xmlDocument(let r)):
            l == r
        case (.typedObject(let lName, let l), .typedObject(let rName, let r)):
            lName == rName && Self.propertiesEqual(l, r)
        case (.number, _), (.boolean, _), (.string, _), (.object, _), (.null, _), (.undefined, _), (.ecmaArray, _),
            (.strictArray, _), (.date, _), (.xmlDocument, _), (.typedObject, _):
            false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .number(let value):
            hasher.combine(0 as UInt8)
            hasher.combine(value)
        case .boolean(let value):
            hasher.combine(1 as UInt8)
            hasher.combine(value)
        case .string(let value):
            hasher.combine(2 as UInt8)
            hasher.combine(value)
        case .object(let properties):
            hasher.combine(3 as UInt8)
            Self.hashProperties(properties, into: &hasher)
        case .null:
            hasher.combine(5 as UInt8)
        case .undefined:
            hasher.combine(6 as UInt8)
        case .ecmaArray(let properties):
            hasher.combine(8 as UInt8)
            Self.hashProperties(properties, into: &hasher)
        case .strictArray(let values):
            hasher.combine(10 as UInt8)
            hasher.combine(values)
        case .date(let milliseconds, let timeZone):
            hasher.combine(11 as UInt8)
            hasher.combine(milliseconds)
            hasher.combine(timeZone)
        case .xmlDocument(let value):
            hasher.combine(15 as UInt8)
            hasher.combine(value)
        case .typedObject(let className, let properties):
            hasher.combine(16 as UInt8)
            hasher.combine(className)
            Self.hashProperties(properties, into: &hasher)
        }
    }
}

extension AMF0Value {
    private static func propertiesEqual(
        _ lhs: [(key: String, value: AMF0Value)],
        _ rhs: [(key: String, value: AMF0Value)]
    ) -> Bool {
        lhs.count == rhs.count && zip(lhs, rhs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    private static func hashProperties(_ properties: [(key: String, value: AMF0Value)], into hasher: inout Hasher) {
        hasher.combine(properties.count)
        for (key, value) in properties {
            hasher.combine(key)
            hasher.combine(value)
        }
    }
}

// MARK: - Literals

extension AMF0Value: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension AMF0Value: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .number(value) }
}

extension AMF0Value: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
}

extension AMF0Value: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .boolean(value) }
}

extension AMF0Value: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .null }
}

extension AMF0Value: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: AMF0Value...) { self = .strictArray(elements) }
}

extension AMF0Value: ExpressibleByDictionaryLiteral {
    /// Builds an ``object(_:)`` whose properties keep the order in which the literal lists them.
    public init(dictionaryLiteral elements: (String, AMF0Value)...) {
        self = .object(elements.map { (key: $0.0, value: $0.1) })
    }
}

// MARK: - Description

extension AMF0Value: CustomStringConvertible {
    /// A compact, single-line rendering for logs, for example `{app: "live", tcUrl: "rtmp://host/live"}`.
    ///
    /// Strings are printed in full: a `publish` or `play` command's arguments contain the stream key, so redact
    /// those before logging a whole command.
    public var description: String {
        switch self {
        case .number(let value):
            // Integral numbers (transaction ids, stream ids, sizes) print without a trailing ".0".
            if value.rounded(.towardZero) == value, abs(value) < 9_007_199_254_740_992 {
                "\(Int64(value))"
            } else {
                "\(value)"
            }
        case .boolean(let value):
            "\(value)"
        case .string(let value):
            value.debugDescription
        case .object(let properties):
            "{\(Self.describe(properties))}"
        case .null:
            "null"
        case .undefined:
            "undefined"
        case .ecmaArray(let properties):
            "ecma{\(Self.describe(properties))}"
        case .strictArray(let values):
            "[\(values.map(\.description).joined(separator: ", "))]"
        case .date(let milliseconds, let timeZone):
            "date(\(milliseconds), timeZone: \(timeZone))"
        case .xmlDocument(let value):
            "xml(\(value.debugDescription))"
        case .typedObject(let className, let properties):
            "\(className){\(Self.describe(properties))}"
        }
    }
}

extension AMF0Value {
    private static func describe(_ properties: [(key: String, value: AMF0Value)]) -> String {
        properties.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    }
}

// MARK: - Codec

extension ByteBuffer {
    /// The next AMF0 value if it is a string (either form), without moving the reader index and without decoding
    /// anything else: nil for any other value, or a truncated one.
    public func getLeadingAMF0String() -> String? {
        guard let marker = self.getInteger(at: self.readerIndex, as: UInt8.self),
            marker == AMF0Marker.string || marker == AMF0Marker.longString
        else {
            return nil
        }
        var value = self
        return (try? value.readAMF0Value())?.stringValue
    }
}

/// AMF0 type markers (AMF0 specification, section 2.1).
private enum AMF0Marker {
    static let number: UInt8 = 0x00
    static let boolean: UInt8 = 0x01
    static let string: UInt8 = 0x02
    static let object: UInt8 = 0x03
    static let movieClip: UInt8 = 0x04
    static let null: UInt8 = 0x05
    static let undefined: UInt8 = 0x06
    static let reference: UInt8 = 0x07
    static let ecmaArray: UInt8 = 0x08
    static let objectEnd: UInt8 = 0x09
    static let strictArray: UInt8 = 0x0A
    static let date: UInt8 = 0x0B
    static let longString: UInt8 = 0x0C
    static let unsupported: UInt8 = 0x0D
    static let recordSet: UInt8 = 0x0E
    static let xmlDocument: UInt8 = 0x0F
    static let typedObject: UInt8 = 0x10
    static let avmPlusObject: UInt8 = 0x11
}

extension ByteBuffer {
    /// Reads one AMF0 value.
    ///
    /// Returns `nil`, leaving the reader index where it was, if the readable bytes end before the value does. An RTMP
    /// message payload is always complete, so callers that decode a whole payload should use
    /// ``readAMF0Values(maxDepth:)``, which turns such a truncation into an error.
    ///
    /// Reference values (marker 0x07) are rejected: they point back at an earlier object of the same message, and
    /// resolving them into value types copies that object once per reference, which lets a small message expand
    /// into a huge tree. ffmpeg, OBS, librtmp and nginx-rtmp never write them.
    ///
    /// - Parameter maxDepth: How many containers may enclose each other; see ``AMF0Limits/defaultMaxDepth``.
    /// - Throws: ``RTMPError`` with code `malformedAMF` for an unknown, reserved or unsupported type marker
    ///   (including the AMF3 switch 0x11), an object end marker outside an object, or a string that is not valid
    ///   UTF-8; with code `limitExceeded` when nesting exceeds `maxDepth`. The reader index does not move.
    public mutating func readAMF0Value(maxDepth: Int = AMF0Limits.defaultMaxDepth) throws -> AMF0Value? {
        let start = self.readerIndex
        do {
            guard let value = try self.readAMF0ValueBody(depth: 0, maxDepth: maxDepth) else {
                self.moveReaderIndex(to: start)
                return nil
            }
            return value
        } catch {
            self.moveReaderIndex(to: start)
            throw error
        }
    }

    /// Reads AMF0 values until no readable bytes are left, as a command or data message payload requires.
    ///
    /// - Throws: ``RTMPError`` as ``readAMF0Value(maxDepth:)`` does, and `malformedAMF` if the bytes end in the
    ///   middle of a value. On error the reader index does not move.
    public mutating func readAMF0Values(maxDepth: Int = AMF0Limits.defaultMaxDepth) throws -> [AMF0Value] {
        let start = self.readerIndex
        var values: [AMF0Value] = []
        while self.readableBytes > 0 {
            guard let value = try self.readAMF0Value(maxDepth: maxDepth) else {
                let offset = self.readerIndex - start
                self.moveReaderIndex(to: start)
                throw RTMPError.malformedAMF("AMF0 value at offset \(offset) is truncated")
            }
            values.append(value)
        }
        return values
    }

    /// Writes `value` in AMF0 and returns the number of bytes written.
    ///
    /// Property keys, class names and strings longer than their length fields allow (keys and class names: 65535
    /// UTF-8 bytes; strings and XML: 2³² − 1) are a programming error and stop the process: the decoder can never
    /// produce them, so they can only come from our own code.
    @discardableResult
    public mutating func writeAMF0Value(_ value: AMF0Value) -> Int {
        let start = self.writerIndex
        switch value {
        case .number(let number):
            self.writeInteger(AMF0Marker.number)
            self.writeInteger(number.bitPattern)
        case .boolean(let bool):
            self.writeInteger(AMF0Marker.boolean)
            self.writeInteger(bool ? 1 : 0 as UInt8)
        case .string(let string):
            if string.utf8.count <= Int(UInt16.max) {
                self.writeInteger(AMF0Marker.string)
                self.writeAMF0UTF8(string, lengthAs: UInt16.self)
            } else {
                self.writeInteger(AMF0Marker.longString)
                self.writeAMF0UTF8(string, lengthAs: UInt32.self)
            }
        case .object(let properties):
            self.writeInteger(AMF0Marker.object)
            self.writeAMF0Properties(properties)
        case .null:
            self.writeInteger(AMF0Marker.null)
        case .undefined:
            self.writeInteger(AMF0Marker.undefined)
        case .ecmaArray(let properties):
            self.writeInteger(AMF0Marker.ecmaArray)
            self.writeInteger(UInt32(properties.count))
            self.writeAMF0Properties(properties)
        case .strictArray(let values):
            self.writeInteger(AMF0Marker.strictArray)
            self.writeInteger(UInt32(values.count))
            for element in values {
                self.writeAMF0Value(element)
            }
        case .date(let milliseconds, let timeZone):
            self.writeInteger(AMF0Marker.date)
            self.writeInteger(milliseconds.bitPattern)
            self.writeInteger(timeZone)
        case .xmlDocument(let xml):
            self.writeInteger(AMF0Marker.xmlDocument)
            self.writeAMF0UTF8(xml, lengthAs: UInt32.self)
        case .typedObject(let className, let properties):
            self.writeInteger(AMF0Marker.typedObject)
            self.writeAMF0UTF8(className, lengthAs: UInt16.self)
            self.writeAMF0Properties(properties)
        }
        return self.writerIndex - start
    }

    // The helpers below move the reader index freely; `readAMF0Value` restores it on nil or throw.

    private mutating func readAMF0ValueBody(depth: Int, maxDepth: Int) throws -> AMF0Value? {
        guard let marker = self.readInteger(as: UInt8.self) else { return nil }
        switch marker {
        case AMF0Marker.number:
            return self.readInteger(as: UInt64.self).map { .number(Double(bitPattern: $0)) }
        case AMF0Marker.boolean:
            // The specification says 0 is false and anything else is true.
            return self.readInteger(as: UInt8.self).map { .boolean($0 != 0) }
        case AMF0Marker.string:
            return try self.readAMF0UTF8(lengthAs: UInt16.self).map { .string($0) }
        case AMF0Marker.longString:
            return try self.readAMF0UTF8(lengthAs: UInt32.self).map { .string($0) }
        case AMF0Marker.xmlDocument:
            return try self.readAMF0UTF8(lengthAs: UInt32.self).map { .xmlDocument($0) }
        case AMF0Marker.null:
            return .null
        case AMF0Marker.undefined:
            return .undefined
        case AMF0Marker.date:
            guard let milliseconds = self.readInteger(as: UInt64.self),
                let timeZone = self.readInteger(as: Int16.self)
            else { return nil }
            return .date(Double(bitPattern: milliseconds), timeZone: timeZone)
        case AMF0Marker.object:
            let depth = try Self.enterAMF0Container(depth: depth, maxDepth: maxDepth)
            return try self.readAMF0Properties(depth: depth, maxDepth: maxDepth).map { .object($0) }
        case AMF0Marker.ecmaArray:
            let depth = try Self.enterAMF0Container(depth: depth, maxDepth: maxDepth)
            // The count is only a hint. Encoders that stream metadata write it before they know the real number
            // (and some always write 0), so ffmpeg ("skip 32-bit max array index" in flvdec.c) and nginx-rtmp
            // (ngx_rtmp_amf.c) skip it and read properties up to the object end marker. So do we.
            guard self.readInteger(as: UInt32.self) != nil else { return nil }
            return try self.readAMF0Properties(depth: depth, maxDepth: maxDepth).map { .ecmaArray($0) }
        case AMF0Marker.typedObject:
            let depth = try Self.enterAMF0Container(depth: depth, maxDepth: maxDepth)
            guard let className = try self.readAMF0UTF8(lengthAs: UInt16.self),
                let properties = try self.readAMF0Properties(depth: depth, maxDepth: maxDepth)
            else { return nil }
            return .typedObject(className: className, properties: properties)
        case AMF0Marker.strictArray:
            let depth = try Self.enterAMF0Container(depth: depth, maxDepth: maxDepth)
            guard let count = self.readInteger(as: UInt32.self) else { return nil }
            // Every element takes at least its marker byte, so a count beyond the readable bytes cannot be
            // complete yet. The count never sizes an allocation: a forged one would cost 24 bytes per byte sent.
            guard UInt64(count) <= UInt64(self.readableBytes) else { return nil }
            var values: [AMF0Value] = []
            for _ in 0..<count {
                guard let element = try self.readAMF0ValueBody(depth: depth, maxDepth: maxDepth) else { return nil }
                values.append(element)
            }
            return .strictArray(values)
        case AMF0Marker.reference:
            throw RTMPError.malformedAMF("AMF0 reference values (marker 0x07) are not supported")
        case AMF0Marker.objectEnd:
            throw RTMPError.malformedAMF("AMF0 object end marker (0x09) outside an object")
        case AMF0Marker.avmPlusObject:
            throw RTMPError.malformedAMF("AMF3 values (switch marker 0x11) are not supported in AMF0 messages")
        case AMF0Marker.movieClip, AMF0Marker.unsupported, AMF0Marker.recordSet:
            throw RTMPError.malformedAMF("AMF0 type marker \(Self.amf0MarkerHex(marker)) is reserved or unsupported")
        default:
            throw RTMPError.malformedAMF("unknown AMF0 type marker \(Self.amf0MarkerHex(marker))")
        }
    }

    private static func amf0MarkerHex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return byte < 0x10 ? "0x0\(digits)" : "0x\(digits)"
    }

    private static func enterAMF0Container(depth: Int, maxDepth: Int) throws -> Int {
        let depth = depth + 1
        guard depth <= maxDepth else {
            throw RTMPError.limitExceeded("AMF0 nesting depth (maxDepth)", value: depth, maximum: maxDepth)
        }
        return depth
    }

    /// Reads properties up to and including the object end, `00 00 09` (an empty key, then marker 0x09).
    ///
    /// An empty key followed by any other marker is an ordinary property with an empty name, which the grammar
    /// in the specification (section 2.5) allows.
    private mutating func readAMF0Properties(
        depth: Int,
        maxDepth: Int
    ) throws -> [(key: String, value: AMF0Value)]? {
        var properties: [(key: String, value: AMF0Value)] = []
        while true {
            guard let key = try self.readAMF0UTF8(lengthAs: UInt16.self) else { return nil }
            if key.isEmpty {
                guard let next = self.getInteger(at: self.readerIndex, as: UInt8.self) else { return nil }
                if next == AMF0Marker.objectEnd {
                    self.moveReaderIndex(forwardBy: 1)
                    return properties
                }
            }
            guard let value = try self.readAMF0ValueBody(depth: depth, maxDepth: maxDepth) else { return nil }
            properties.append((key: key, value: value))
        }
    }

    /// Reads a length-prefixed UTF-8 string, rejecting invalid UTF-8 rather than repairing it: a repaired
    /// stream key or app name would silently name a different stream.
    private mutating func readAMF0UTF8<Length: FixedWidthInteger & UnsignedInteger>(
        lengthAs: Length.Type
    ) throws -> String? {
        guard let length = self.readInteger(as: Length.self) else { return nil }
        // Compare before converting: a 32-bit length does not fit `Int` on 32-bit platforms.
        guard UInt64(length) <= UInt64(self.readableBytes) else { return nil }
        do {
            return try self.readUTF8ValidatedString(length: Int(length))
        } catch {
            throw RTMPError.malformedAMF("AMF0 string of \(length) bytes is not valid UTF-8")
        }
    }

    private mutating func writeAMF0UTF8<Length: FixedWidthInteger & UnsignedInteger>(
        _ string: String,
        lengthAs: Length.Type
    ) {
        let count = string.utf8.count
        precondition(count <= Length.max, "AMF0 string of \(count) bytes does not fit its length field")
        self.writeInteger(Length(count))
        self.writeString(string)
    }

    private mutating func writeAMF0Properties(_ properties: [(key: String, value: AMF0Value)]) {
        for (key, value) in properties {
            self.writeAMF0UTF8(key, lengthAs: UInt16.self)
            self.writeAMF0Value(value)
        }
        self.writeInteger(0 as UInt16)
        self.writeInteger(AMF0Marker.objectEnd)
    }
}
