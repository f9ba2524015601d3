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
import RTMP
import Testing

@Suite struct AMF0Tests {
    /// One value per AMF0 type, with its exact encoding.
    static let encodings: [(AMF0Value, String)] = [
        (.number(0), "00 0000000000000000"),
        (.number(1), "00 3FF0000000000000"),
        (.number(-2.5), "00 C004000000000000"),
        (.boolean(true), "01 01"),
        (.boolean(false), "01 00"),
        (.string(""), "02 0000"),
        (.string("live"), "02 0004 6C697665"),
        (.string("é"), "02 0002 C3A9"),
        (.object([]), "03 000009"),
        (.object([(key: "app", value: "live")]), "03 0003 617070 02 0004 6C697665 000009"),
        (.null, "05"),
        (.undefined, "06"),
        (.ecmaArray([(key: "a", value: 1)]), "08 00000001 0001 61 00 3FF0000000000000 000009"),
        (.strictArray([]), "0A 00000000"),
        (.strictArray([1, "a"]), "0A 00000002 00 3FF0000000000000 02 0001 61"),
        (.date(1_000, timeZone: 0), "0B 408F400000000000 0000"),
        (.date(0, timeZone: -60), "0B 0000000000000000 FFC4"),
        (.xmlDocument("<a/>"), "0F 00000004 3C612F3E"),
        (.typedObject(className: "C", properties: [(key: "x", value: nil)]), "10 0001 43 0001 78 05 000009"),
    ]

    @Test(arguments: Self.encodings)
    func encodesByteExact(value: AMF0Value, hex: String) throws {
        let expected = try ByteBuffer(plainHexEncodedBytes: hex)
        var buffer = ByteBuffer()
        let written = buffer.writeAMF0Value(value)
        #expect(buffer.hexDump(format: .plain) == expected.hexDump(format: .plain))
        #expect(written == expected.readableBytes)
    }

    @Test(arguments: Self.encodings)
    func decodesByteExact(value: AMF0Value, hex: String) throws {
        var buffer = try ByteBuffer(plainHexEncodedBytes: hex)
        #expect(try buffer.readAMF0Value() == value)
        #expect(buffer.readableBytes == 0)
    }

    @Test func stringsLongerThan65535BytesUseTheLongStringMarker() throws {
        let longest = String(repeating: "a", count: 65_535)
        var buffer = ByteBuffer()
        buffer.writeAMF0Value(.string(longest))
        #expect(Array(buffer.readableBytesView.prefix(3)) == [0x02, 0xFF, 0xFF])
        #expect(buffer.readableBytes == 3 + 65_535)
        #expect(try buffer.readAMF0Value() == .string(longest))

        let long = String(repeating: "a", count: 65_536)
        buffer.clear()
        buffer.writeAMF0Value(.string(long))
        #expect(Array(buffer.readableBytesView.prefix(5)) == [0x0C, 0x00, 0x01, 0x00, 0x00])
        #expect(buffer.readableBytes == 5 + 65_536)
        #expect(try buffer.readAMF0Value() == .string(long))
    }

    @Test func decodesNonCanonicalForms() throws {
        // A short string sent with the long-string marker, a boolean byte other than 1.
        var buffer = try ByteBuffer(plainHexEncodedBytes: "0C 00000002 6869 01 02")
        #expect(try buffer.readAMF0Value() == "hi")
        #expect(try buffer.readAMF0Value() == true)
    }

    static let roundTripValues: [AMF0Value] = [
        .number(.greatestFiniteMagnitude),
        .number(-0.0),
        .number(.infinity),
        "rtmp://127.0.0.1:1935/live",
        [:],
        ["app": "live", "type": "nonprivate", "flashVer": "FMLE/3.0", "audioCodecs": 3191, "fpad": false],
        ["": "empty key", "nested": ["deeper": [1, 2, ["x": nil]]]],
        .ecmaArray([(key: "duration", value: 0), (key: "encoder", value: "Lavf61.7.100")]),
        [nil, .undefined, true, 1.5, [], [:]],
        .date(1_700_000_000_000, timeZone: 0),
        .xmlDocument("<x a=\"1\">ü</x>"),
        .typedObject(className: "flex.messaging.Foo", properties: [(key: "a", value: [1])]),
    ]

    @Test(arguments: Self.roundTripValues + [.string(String(repeating: "é", count: 40_000))])
    func roundTrips(value: AMF0Value) throws {
        var buffer = ByteBuffer()
        let written = buffer.writeAMF0Value(value)
        #expect(written == buffer.readableBytes)
        #expect(try buffer.readAMF0Value() == value)
        #expect(buffer.readableBytes == 0)
    }

    /// Every proper prefix of a value is a short read that leaves the reader index alone.
    @Test(arguments: Self.roundTripValues)
    func dripFedPrefixesReturnNilWithoutMovingTheReaderIndex(value: AMF0Value) throws {
        var encoded = ByteBuffer()
        encoded.writeAMF0Value(value)
        // Start at a non-zero reader index, as a decoder's cumulation buffer would.
        var buffer = ByteBuffer(bytes: [0xEE, 0xEE])
        buffer.moveReaderIndex(forwardBy: 2)
        while let byte = encoded.readInteger(as: UInt8.self) {
            #expect(try buffer.readAMF0Value() == nil)
            #expect(buffer.readerIndex == 2)
            buffer.writeInteger(byte)
        }
        #expect(try buffer.readAMF0Value() == value)
        #expect(buffer.readableBytes == 0)
    }

    @Test func strictArrayCountBeyondTheReadableBytesIsAShortRead() throws {
        var buffer = try ByteBuffer(plainHexEncodedBytes: "0A FFFFFFFF 05 05")
        #expect(try buffer.readAMF0Value() == nil)
        #expect(buffer.readerIndex == 0)

        let error = #expect(throws: RTMPError.self) { try buffer.readAMF0Values() }
        #expect(error?.code == .malformedAMF)
        #expect(buffer.readerIndex == 0)
    }

    @Test func readsAllValuesOfAPayload() throws {
        var buffer = try ByteBuffer(plainHexEncodedBytes: "05 01 01 02 0001 61")
        #expect(try buffer.readAMF0Values() == [nil, true, "a"])
        #expect(buffer.readableBytes == 0)
        #expect(try buffer.readAMF0Values() == [])
    }

    @Test func truncatedTrailingValueThrowsAndRestoresTheReaderIndex() throws {
        var buffer = try ByteBuffer(plainHexEncodedBytes: "05 02 0004 6C69")
        let error = #expect(throws: RTMPError.self) { try buffer.readAMF0Values() }
        #expect(error?.code == .malformedAMF)
        #expect(buffer.readerIndex == 0)
    }

    /// `depth` strict arrays, each holding the next, around a null.
    private static func nestedArrays(depth: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        for _ in 0..<depth {
            buffer.writeBytes([0x0A, 0x00, 0x00, 0x00, 0x01])
        }
        buffer.writeInteger(0x05 as UInt8)
        return buffer
    }

    @Test func nestingUpToTheDepthLimitDecodes() throws {
        var buffer = Self.nestedArrays(depth: AMF0Limits.defaultMaxDepth)
        #expect(try buffer.readAMF0Value() != nil)
        #expect(buffer.readableBytes == 0)
    }

    @Test func nestingBeyondTheDepthLimitThrows() throws {
        var buffer = Self.nestedArrays(depth: AMF0Limits.defaultMaxDepth + 1)
        let error = #expect(throws: RTMPError.self) { try buffer.readAMF0Value() }
        #expect(error?.code == .limitExceeded)
        #expect(buffer.readerIndex == 0)

        // Deep nesting is rejected as soon as it is seen, before the rest arrives.
        var truncated = Self.nestedArrays(depth: 10_000)
        truncated.moveWriterIndex(to: truncated.writerIndex - 1)
        #expect(throws: RTMPError.self) { try truncated.readAMF0Value() }
    }

    @Test func depthLimitCountsEveryContainerType() throws {
        // {a: ecma{b: C{}}}
        var buffer = try ByteBuffer(
            plainHexEncodedBytes: "03 0001 61 08 00000000 0001 62 10 0001 43 000009 000009 000009"
        )
        #expect(throws: RTMPError.self) { try buffer.readAMF0Value(maxDepth: 2) }
        #expect(try buffer.readAMF0Value(maxDepth: 3) != nil)

        var scalar = try ByteBuffer(plainHexEncodedBytes: "05")
        #expect(try scalar.readAMF0Value(maxDepth: 0) == .null)
    }

    @Test(arguments: [
        "07 0000",  // reference
        "09",  // object end outside an object
        "11 01",  // AMF3 switch
        "04",  // movie clip (reserved)
        "0D",  // unsupported
        "0E",  // record set (reserved)
        "12",
        "FF",
        "03 0001 61 09",  // object end marker as a property value
    ])
    func invalidMarkersThrow(hex: String) throws {
        var buffer = try ByteBuffer(plainHexEncodedBytes: hex)
        let error = #expect(throws: RTMPError.self) { try buffer.readAMF0Value() }
        #expect(error?.code == .malformedAMF)
        #expect(buffer.readerIndex == 0)
    }

    @Test(arguments: [
        "02 0002 C328",  // invalid continuation byte
        "02 0001 FF",
        "0C 00000002 EDA080",  // the first two bytes of a UTF-16 surrogate
        "03 0001 C0 05 000009",  // overlong encoding in a key
        "0F 00000001 80",
    ])
    func invalidUTF8Throws(hex: String) throws {
        var buffer = try ByteBuffer(plainHexEncodedBytes: hex)
        let error = #expect(throws: RTMPError.self) { try buffer.readAMF0Value() }
        #expect(error?.code == .malformedAMF)
        #expect(buffer.readerIndex == 0)
    }

    /// Encoders that stream metadata write the ECMA array count before they know it; the decoder ignores it.
    @Test(arguments: ["00000000", "00000001", "00000064", "FFFFFFFF"])
    func ecmaArrayCountIsIgnored(count: String) throws {
        var buffer = try ByteBuffer(
            plainHexEncodedBytes: "08 \(count) 0001 61 00 3FF0000000000000 0001 62 01 00 000009 05"
        )
        #expect(try buffer.readAMF0Value() == .ecmaArray([(key: "a", value: 1), (key: "b", value: false)]))
        #expect(try buffer.readAMF0Value() == .null)
        #expect(buffer.readableBytes == 0)
    }

    @Test func emptyKeyWithAValueIsAProperty() throws {
        var buffer = try ByteBuffer(plainHexEncodedBytes: "03 0000 05 0000 09")
        #expect(try buffer.readAMF0Value() == .object([(key: "", value: .null)]))
    }

    @Test func accessors() {
        let object: AMF0Value = ["app": "live", "n": 3, "ok": true, "app": "other"]
        #expect(object["app"] == "other")  // the last duplicate wins, as in ActionScript, ffmpeg and nginx-rtmp
        #expect(object["missing"] == nil)
        #expect(object["n"]?.numberValue == 3)
        #expect(object["ok"]?.boolValue == true)
        #expect(object["app"]?.stringValue == "other")
        #expect(object["n"]?.stringValue == nil)
        #expect(AMF0Value.ecmaArray([(key: "k", value: 1)])["k"] == 1)
        #expect(AMF0Value.typedObject(className: "C", properties: [(key: "k", value: 1)])["k"] == 1)
        #expect(AMF0Value.strictArray([1])["k"] == nil)
        #expect(AMF0Value.string("x")["k"] == nil)
    }

    @Test func literals() {
        let null: AMF0Value = nil
        #expect(null == .null)
        #expect(("s" as AMF0Value) == .string("s"))
        #expect((1 as AMF0Value) == .number(1))
        #expect((1.5 as AMF0Value) == .number(1.5))
        #expect((false as AMF0Value) == .boolean(false))
        #expect(([1, nil] as AMF0Value) == .strictArray([.number(1), .null]))
        let object: AMF0Value = ["z": 1, "a": 2]
        guard case .object(let properties) = object else {
            Issue.record("dictionary literal is not an object: \(object)")
            return
        }
        #expect(properties.map(\.key) == ["z", "a"])
    }

    @Test func equalityAndHashingRespectOrderAndType() {
        let ab: AMF0Value = ["a": 1, "b": 2]
        let ba: AMF0Value = ["b": 2, "a": 1]
        #expect(ab != ba)
        #expect(ab != ["a": 1])  // a prefix is not equal
        #expect(AMF0Value.typedObject(className: "C", properties: []) != .typedObject(className: "D", properties: []))
        #expect(ab != .ecmaArray([(key: "a", value: 1), (key: "b", value: 2)]))
        #expect(AMF0Value.null != .undefined)
        #expect(AMF0Value.string("x") != .xmlDocument("x"))
        #expect(AMF0Value.date(1, timeZone: 0) != .date(1, timeZone: 1))
        let set: Set<AMF0Value> = [ab, ba, ["a": 1, "b": 2], .number(0), .number(-0.0)]
        #expect(set.count == 3)
    }

    @Test func description() {
        let value: AMF0Value = [
            "app": "live", "n": 1, "x": 1.5, "b": true, "z": nil, "u": .undefined, "arr": [1, "q\""],
            "e": .ecmaArray([(key: "k", value: 0)]),
        ]
        #expect(
            value.description
                == #"{app: "live", n: 1, x: 1.5, b: true, z: null, u: undefined, arr: [1, "q\""], e: ecma{k: 0}}"#
        )
        #expect(AMF0Value.typedObject(className: "C", properties: []).description == "C{}")
        #expect(AMF0Value.number(-3).description == "-3")
        #expect(AMF0Value.number(1e300).description == "1e+300")
    }
}

/// Payloads captured from ffmpeg 5.1.9 (libavformat 59.27.100) publishing to a fake server on 127.0.0.1:38991:
/// `ffmpeg -re -f lavfi -i testsrc=size=64x64:rate=5 -t 1 -c:v libx264 -f flv rtmp://127.0.0.1:38991/live/k`.
/// The server completed a plain handshake, answered connect, createStream and publish, and de-chunked what came in.
/// The connect message arrived on chunk stream 3 with chunk size 128, so its 140-byte payload was split by one 0xC3
/// byte, after "rtmp://127.0.0.1:3" (removed here).
enum FFmpegCapture {
    static let connect = """
        020007636f6e6e656374003ff00000000000000300036170700200046c69766500047479706502000a6e6f6e70726976617465\
        0008666c617368566572020024464d4c452f332e302028636f6d70617469626c653b204c61766635392e32372e313030290005\
        746355726c02001b72746d703a2f2f3132372e302e302e313a33383939312f6c697665000009
        """
    static let releaseStream = "02000d72656c6561736553747265616d004000000000000000050200016b"
    static let fcPublish = "02000946435075626c697368004008000000000000050200016b"
    static let createStream = "02000c63726561746553747265616d00401000000000000005"
    static let publish = "0200077075626c697368004014000000000000050200016b0200046c697665"
    static let setDataFrame = """
        02000d40736574446174614672616d6502000a6f6e4d65746144617461080000000800086475726174696f6e003ff00000000000\
        00000577696474680040500000000000000006686569676874004050000000000000000d766964656f6461746172617465000000\
        00000000000000096672616d6572617465004014000000000000000c766964656f636f646563696400401c000000000000000765\
        6e636f64657202000d4c61766635392e32372e313030000866696c6573697a65000000000000000000000009
        """
}

@Suite struct AMF0MessageTests {
    @Test func decodesFFmpegConnect() throws {
        let payload = try ByteBuffer(plainHexEncodedBytes: FFmpegCapture.connect)
        #expect(payload.readableBytes == 140)
        let command = try RTMPCommand(payload: payload)
        #expect(command.name == "connect")
        #expect(command.transactionID == 1)
        #expect(
            command.commandObject == [
                "app": "live",
                "type": "nonprivate",
                "flashVer": "FMLE/3.0 (compatible; Lavf59.27.100)",
                "tcUrl": "rtmp://127.0.0.1:38991/live",
            ]
        )
        #expect(command.arguments == [])
        #expect(command.commandObject["app"]?.stringValue == "live")
        // Re-encoding reproduces ffmpeg's bytes.
        #expect(command.payload == payload)
    }

    @Test(arguments: [
        (FFmpegCapture.releaseStream, RTMPCommand(name: "releaseStream", transactionID: 2, arguments: ["k"])),
        (FFmpegCapture.fcPublish, RTMPCommand(name: "FCPublish", transactionID: 3, arguments: ["k"])),
        (FFmpegCapture.createStream, RTMPCommand(name: "createStream", transactionID: 4)),
        (FFmpegCapture.publish, RTMPCommand(name: "publish", transactionID: 5, arguments: ["k", "live"])),
    ])
    func decodesFFmpegPublishSequence(hex: String, expected: RTMPCommand) throws {
        let payload = try ByteBuffer(plainHexEncodedBytes: hex)
        #expect(try RTMPCommand(payload: payload) == expected)
        #expect(expected.payload == payload)
    }

    @Test func decodesFFmpegSetDataFrame() throws {
        let payload = try ByteBuffer(plainHexEncodedBytes: FFmpegCapture.setDataFrame)
        let message = try RTMPDataMessage(payload: payload)
        let metadata: AMF0Value = .ecmaArray([
            (key: "duration", value: 1),
            (key: "width", value: 64),
            (key: "height", value: 64),
            (key: "videodatarate", value: 0),
            (key: "framerate", value: 5),
            (key: "videocodecid", value: 7),
            (key: "encoder", value: "Lavf59.27.100"),
            (key: "filesize", value: 0),
        ])
        #expect(message.values == ["@setDataFrame", "onMetaData", metadata])
        #expect(message.metadata == metadata)
        #expect(message == .setDataFrame(metadata: metadata))
        #expect(message.payload == payload)
    }

    @Test func metadataFromEitherForm() {
        let metadata: AMF0Value = ["width": 64]
        #expect(RTMPDataMessage.onMetaData(metadata).values == ["onMetaData", metadata])
        #expect(RTMPDataMessage.onMetaData(metadata).metadata == metadata)
        #expect(RTMPDataMessage.setDataFrame(metadata: metadata).metadata == metadata)
        #expect(RTMPDataMessage(values: ["onMetaData"]).metadata == nil)
        #expect(RTMPDataMessage(values: ["onMetaData", "not an object"]).metadata == nil)
        #expect(RTMPDataMessage(values: ["@setDataFrame", metadata]).metadata == nil)
        #expect(RTMPDataMessage(values: ["onCuePoint", metadata]).metadata == nil)
        #expect(RTMPDataMessage(values: []).metadata == nil)
    }

    @Test func commandRoundTrips() throws {
        let command = RTMPCommand(
            name: "_result",
            transactionID: 1,
            commandObject: ["fmsVer": "FMS/3,0,1,123", "capabilities": 31],
            arguments: [["level": "status", "code": "NetConnection.Connect.Success"]]
        )
        var buffer = ByteBuffer(bytes: [0xAA])
        command.encode(into: &buffer)
        #expect(buffer.readInteger(as: UInt8.self) == 0xAA)
        #expect(try RTMPCommand(payload: buffer) == command)
    }

    @Test func commandWithoutCommandObjectGetsNull() throws {
        let payload = try ByteBuffer(plainHexEncodedBytes: "02 0001 78 00 0000000000000000")
        #expect(try RTMPCommand(payload: payload) == RTMPCommand(name: "x", transactionID: 0, commandObject: nil))
    }

    @Test(arguments: [
        "",
        "05",
        "00 3FF0000000000000 02 0001 78",
        "02 0001 78",
        "02 0001 78 05",
        "02 0001 78 02 0001 31",
    ])
    func commandWithoutNameOrTransactionIDThrows(hex: String) throws {
        let payload = try ByteBuffer(plainHexEncodedBytes: hex)
        let error = #expect(throws: RTMPError.self) { try RTMPCommand(payload: payload) }
        #expect(error?.code == .malformedMessage)
    }

    @Test func truncatedCommandThrowsMalformedAMF() throws {
        var payload = try ByteBuffer(plainHexEncodedBytes: FFmpegCapture.connect)
        payload.moveWriterIndex(to: payload.writerIndex - 1)
        let error = #expect(throws: RTMPError.self) { try RTMPCommand(payload: payload) }
        #expect(error?.code == .malformedAMF)
        #expect(throws: RTMPError.self) { try RTMPDataMessage(payload: payload) }
    }
}
