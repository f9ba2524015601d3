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

import Media
import NIOCore
import Testing
import WebRTCMedia

/// Slices for tests: an IDR and a non-IDR slice whose slice header starts with first_mb_in_slice 0 (bit 1), and a
/// non-IDR slice that is not the first of its picture (first_mb_in_slice 1: bits 010).
let idrSlice: [UInt8] = [0x65, 0x88, 0x84, 0x00, 0x10]
let interSlice: [UInt8] = [0x41, 0x9A, 0x02, 0x03]
let secondSlice: [UInt8] = [0x41, 0x40, 0x02, 0x03]

func stapA(_ nalUnits: [[UInt8]]) -> [UInt8] {
    var payload: [UInt8] = [0x78]  // F=0, NRI=3, type 24
    for nal in nalUnits {
        payload += [UInt8(nal.count >> 8), UInt8(nal.count & 0xFF)] + nal
    }
    return payload
}

func fuA(_ nal: [UInt8], pieces: Int) -> [[UInt8]] {
    let body = Array(nal.dropFirst())
    let size = (body.count + pieces - 1) / pieces
    return stride(from: 0, to: body.count, by: size).map { offset in
        var header = nal[0] & 0x1F
        if offset == 0 { header |= 0x80 }
        if offset + size >= body.count { header |= 0x40 }
        return [(nal[0] & 0xE0) | 28, header] + body[offset..<min(body.count, offset + size)]
    }
}

@Suite struct H264DepacketizerTests {
    @Test func singleNALUnitsSTAPAAndFUAMakeAccessUnits() {
        var depacketizer = H264Depacketizer()
        let bigIDR = idrSlice + [UInt8](repeating: 0xAB, count: 3000)
        var units: [H264AccessUnit] = []
        units += depacketizer.push(rtp(1, timestamp: 3000, payload: stapA([testSPS, testPPS]))).accessUnits
        for (index, fragment) in fuA(bigIDR, pieces: 3).enumerated() {
            units +=
                depacketizer.push(rtp(UInt16(2 + index), timestamp: 3000, marker: index == 2, payload: fragment))
                .accessUnits
        }
        units += depacketizer.push(rtp(5, timestamp: 6000, marker: true, payload: interSlice)).accessUnits
        #expect(units.count == 2)
        #expect(units[0].nalUnits.map { Array($0.readableBytesView) } == [testSPS, testPPS, bigIDR])
        #expect(units[0].isKeyframe && !units[0].isDamaged)
        #expect(units[1].nalUnits.map { Array($0.readableBytesView) } == [interSlice])
        #expect(!units[1].isKeyframe && !units[1].isDamaged && units[1].rtpTimestamp == 6000)
    }

    @Test func aLostMarkerEndsTheAccessUnitAtTheNextTimestamp() {
        var depacketizer = H264Depacketizer()
        #expect(depacketizer.push(rtp(1, timestamp: 3000, payload: interSlice)).accessUnits.isEmpty)
        let units = depacketizer.push(rtp(2, timestamp: 6000, payload: interSlice)).accessUnits
        #expect(units.map(\.rtpTimestamp) == [3000])
        #expect(depacketizer.flush()?.rtpTimestamp == 6000)
    }

    @Test func lossDamagesTheAccessUnitItHitAndOneThatMayHaveLostItsStart() {
        var depacketizer = H264Depacketizer()
        let fragments = fuA(idrSlice + [UInt8](repeating: 1, count: 100), pieces: 3)
        _ = depacketizer.push(rtp(1, timestamp: 3000, payload: fragments[0]))
        depacketizer.lost()
        let first = depacketizer.push(rtp(3, timestamp: 3000, marker: true, payload: fragments[2])).accessUnits
        #expect(first.count == 1 && first[0].isDamaged)
        // After a loss, a picture that starts with its first slice is whole...
        depacketizer.lost()
        let second = depacketizer.push(rtp(6, timestamp: 6000, marker: true, payload: interSlice)).accessUnits
        #expect(second.count == 1 && !second[0].isDamaged)
        // ...and one that starts with a later slice is not.
        depacketizer.lost()
        let third = depacketizer.push(rtp(9, timestamp: 9000, marker: true, payload: secondSlice)).accessUnits
        #expect(third.count == 1 && third[0].isDamaged)
    }

    @Test(arguments: [
        ([UInt8(0x79), 0x00, 0x01, 0x02, 0x00, 0x02, 0x41, 0x9A], "STAP-B"),
        ([0x7A, 0x00, 0x01, 0x02], "MTAP16"),
        ([0x7B, 0x00, 0x01, 0x02], "MTAP24"),
        ([0x7D, 0x85, 0x00, 0x01, 0x02], "FU-B"),
    ])
    func refusesInterleavedModeClearly(payload: [UInt8], name: String) {
        var depacketizer = H264Depacketizer()
        let output = depacketizer.push(rtp(1, timestamp: 3000, marker: true, payload: payload))
        #expect(output.error?.code == .unsupportedPacketization)
        #expect(output.error?.message.contains(name) == true)
        #expect(output.error?.message.contains("packetization-mode=1") == true)
        #expect(output.accessUnits.count == 1 && output.accessUnits[0].isDamaged)
    }

    @Test(arguments: [
        ([UInt8](), "empty"),
        ([0xE5, 0x00], "forbidden_zero_bit"),
        ([0x78, 0x00, 0x09, 0x41], "STAP-A unit size"),
        ([0x7C, 0xC5, 0x00], "both start and end"),
        ([0x60], "reserved NAL unit type 0"),
        ([0x7E], "reserved NAL unit type 30"),
    ])
    func refusesMalformedPayloads(payload: [UInt8], reason: String) {
        var depacketizer = H264Depacketizer()
        let output = depacketizer.push(rtp(1, timestamp: 3000, payload: payload))
        #expect(output.error?.code == .malformedPacket)
        #expect(output.error?.message.contains(reason) == true, "\(String(describing: output.error))")
    }

    @Test func boundsFragmentReassembly() {
        var configuration = H264Depacketizer.Configuration()
        configuration.maximumNALUnitSize = 1000
        var depacketizer = H264Depacketizer(configuration: configuration)
        let fragments = fuA(idrSlice + [UInt8](repeating: 1, count: 2000), pieces: 4)
        var errors: [WebRTCMediaError] = []
        var units: [H264AccessUnit] = []
        for (index, fragment) in fragments.enumerated() {
            let output = depacketizer.push(rtp(UInt16(index), timestamp: 3000, marker: index == 3, payload: fragment))
            errors += output.error.map { [$0] } ?? []
            units += output.accessUnits
        }
        #expect(errors.map(\.code) == [.limitExceeded])
        #expect(units.count == 1 && units[0].isDamaged)
    }
}

@Suite struct H264FLVPackagerTests {
    func unit(_ nalUnits: [[UInt8]], timestamp: UInt32 = 3000, damaged: Bool = false) -> H264AccessUnit {
        H264AccessUnit(rtpTimestamp: timestamp, nalUnits: nalUnits.map { ByteBuffer(bytes: $0) }, isDamaged: damaged)
    }

    @Test func waitsForAKeyframeThenSendsTheSequenceHeaderAndAVCCFrames() throws {
        var packager = H264FLVPackager()
        let early = packager.package(self.unit([interSlice]))
        #expect(early.dropped && early.needsKeyframe && early.payloads.isEmpty)

        let key = packager.package(self.unit([[0x09, 0xF0], testSPS, testPPS, idrSlice], timestamp: 6000))
        #expect(!key.dropped && !key.needsKeyframe)
        #expect(key.payloads.count == 2)
        let header = try VideoTagHeader(parsing: key.payloads[0].body)
        #expect(header.isSequenceHeader && header.codec == .avc && header.frameType == .keyFrame)
        let record = try AVCDecoderConfigurationRecord(parsing: header.codecData(in: key.payloads[0].body)!)
        #expect(record.sequenceParameterSets == [ByteBuffer(bytes: testSPS)])
        #expect(record.pictureParameterSets == [ByteBuffer(bytes: testPPS)])
        #expect(record.nalUnitLengthSize == 4 && record.profileIndication == 66)
        #expect(try record.parseSequenceParameterSet().width == 64)
        // The picture: the IDR slice alone (delimiter and parameter sets removed), 4-byte length first.
        #expect(
            Array(key.payloads[1].body.readableBytesView)
                == [0x17, 0x01, 0x00, 0x00, 0x00] + [0, 0, 0, UInt8(idrSlice.count)] + idrSlice
        )
        #expect(key.payloads[1].isKeyframe && key.payloads[1].rtpTimestamp == 6000)

        let inter = packager.package(self.unit([interSlice, secondSlice], timestamp: 9000))
        #expect(
            Array(try #require(inter.payloads.first).body.readableBytesView)
                == [0x27, 0x01, 0x00, 0x00, 0x00] + [0, 0, 0, 4] + interSlice + [0, 0, 0, 4] + secondSlice
        )
    }

    @Test func dropsUntilTheNextKeyframeAfterALossOrADamagedPicture() {
        var packager = H264FLVPackager(parameterSets: [ByteBuffer(bytes: testSPS), ByteBuffer(bytes: testPPS)])
        #expect(packager.package(self.unit([idrSlice])).payloads.count == 2)  // sprop-parameter-sets suffice
        #expect(packager.lost().needsKeyframe)
        #expect(packager.package(self.unit([interSlice])).dropped)
        #expect(packager.package(self.unit([idrSlice])).payloads.count == 1)  // same parameter sets: no header
        let damaged = packager.package(self.unit([idrSlice], damaged: true))
        #expect(damaged.dropped && damaged.needsKeyframe)
        #expect(packager.package(self.unit([interSlice])).dropped)
    }

    @Test func resendsTheSequenceHeaderWhenTheParameterSetsChange() throws {
        var packager = H264FLVPackager()
        #expect(packager.package(self.unit([testSPS, testPPS, idrSlice])).payloads.count == 2)
        #expect(packager.package(self.unit([testSPS, testPPS, idrSlice])).payloads.count == 1)
        // A PPS with other content (same id 0): a new sequence header before the picture.
        let otherPPS: [UInt8] = [0x68, 0xCE, 0x38, 0x80]
        let changed = packager.package(self.unit([otherPPS, idrSlice]))
        #expect(changed.payloads.count == 2 && changed.payloads[0].isSequenceHeader)
        let header = try VideoTagHeader(parsing: changed.payloads[0].body)
        let record = try AVCDecoderConfigurationRecord(parsing: header.codecData(in: changed.payloads[0].body)!)
        #expect(record.pictureParameterSets == [ByteBuffer(bytes: otherPPS)])
    }

    @Test func withoutParameterSetsAKeyframeIsNotEnough() {
        var packager = H264FLVPackager()
        let output = packager.package(self.unit([idrSlice]))
        #expect(output.dropped && output.needsKeyframe && output.error != nil)
    }

    @Test func spropParameterSetsDecode() throws {
        let sets = try WebRTCIngest.parseSpropParameterSets("Z0LACtkEewEQAAADABAAAAMDyPEiZIA=,aMuDyyA=")
        #expect(sets == [ByteBuffer(bytes: testSPS), ByteBuffer(bytes: testPPS)])
        #expect(throws: WebRTCMediaError.self) { try WebRTCIngest.parseSpropParameterSets("not base64!") }
    }
}
