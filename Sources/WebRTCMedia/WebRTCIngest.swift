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
import Media
public import NIOCore
public import RTMP

/// A payload format the session negotiated (an SDP `a=rtpmap` with its `a=fmtp`), as the transport hands it over.
public struct RTPCodecParameters: Sendable, Hashable {
    public var payloadType: UInt8
    /// The encoding name: `H264`, `opus`, `VP8`, ... (compared without regard to case).
    public var name: String
    public var clockRate: Int
    /// The audio channel count of `a=rtpmap` (2 for Opus, always).
    public var channels: Int?
    /// The `a=fmtp` parameters (`packetization-mode`, `profile-level-id`, `sprop-parameter-sets`, ...).
    public var formatParameters: [String: String]

    public init(
        payloadType: UInt8,
        name: String,
        clockRate: Int,
        channels: Int? = nil,
        formatParameters: [String: String] = [:]
    ) {
        self.payloadType = payloadType
        self.name = name
        self.clockRate = clockRate
        self.channels = channels
        self.formatParameters = formatParameters
    }

    /// Parses an `a=fmtp` value (`key=value;key=value`).
    public static func parseFormatParameters(_ fmtp: String) -> [String: String] {
        var parameters: [String: String] = [:]
        for part in fmtp.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1)
            let key = pair[0].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { continue }
            parameters[key] = pair.count > 1 ? pair[1].trimmingCharacters(in: .whitespaces) : ""
        }
        return parameters
    }
}

/// One WHIP session's media path: decrypted RTP and RTCP in; out, the RTMP messages an encoder such as OBS would
/// publish (H.264 in AVC tags, AAC-LC transcoded from Opus, millisecond timestamps on one clock), and the RTCP to
/// send back to the browser.
///
/// It ties together a ``JitterBuffer`` and ``ReceptionStatistics`` per track, the ``H264Depacketizer`` and
/// ``H264FLVPackager``, the ``OpusToAACTranscoder``, the ``MediaSynchronizer`` and the ``MessageInterleaver``.
///
/// The RTMP stream starts, as OBS starts one, at the first video keyframe, at time 0: audio from before it is held
/// until the keyframe places it and then left out, so both tracks begin together. Messages leave in timestamp order
/// across the tracks (``MessageInterleaver``).
///
/// What it sends:
/// - PLI (RFC 4585) when the video starts, after any loss or damaged picture until a keyframe arrives (repeated
///   every ``Configuration/keyframeRequestInterval``), when the last keyframe is about to be older than
///   ``Configuration/maximumKeyframeInterval``, and on ``requestKeyframe(at:)``; also FIR (RFC 5104) when
///   ``Configuration/sendFIR`` is set.
///
///   Why a bounded GOP rather than a request when a target joins: the gateway that runs this ingest publishes into
///   the stream's relay and knows nothing of the relay's targets, and RTMP has no keyframe request to carry one
///   back. The relay keeps a GOP cache from which a joining or rejoining target starts at once; bounding every GOP
///   keeps the strictest target's rule (AWS IVS: a keyframe every 2 s) and bounds what a target that finds no
///   cache waits for.
/// - Generic NACKs for missing packets, paced by ``roundTripTime``.
/// - Every ``Configuration/reportInterval``: RR with a report block per track, SDES CNAME, and REMB announcing
///   ``Configuration/maximumBitrate`` (REMB, not transport-cc: this receiver does no bandwidth estimation, it only
///   caps what the browser sends, and browsers honour REMB when `goog-remb` is negotiated).
///
/// Time is an input: each call takes `now`, and ``nextDeadline`` says when to call ``tick(at:)``. It owns
/// libavcodec contexts, so it is a class, used from one event loop or task at a time.
public final class WebRTCIngest {
    public struct Configuration: Sendable {
        /// The negotiated payload formats. Video must include H.264 (packetization-mode 0 or 1); audio may
        /// include Opus; `rtx` (RFC 4588) with an `apt` of an H.264 payload type carries retransmissions. Other
        /// codecs are refused when their packets arrive.
        public var codecs: [RTPCodecParameters]
        /// The SSRC of our RTCP packets.
        public var localSSRC: UInt32
        /// Our SDES CNAME.
        public var cname: String
        /// The message stream the RTMP messages carry (the gateway's publish stream).
        public var messageStreamID: UInt32 = 1
        public var videoJitterBuffer = JitterBuffer.Configuration()
        public var audioJitterBuffer: JitterBuffer.Configuration = {
            var configuration = JitterBuffer.Configuration()
            configuration.latency = .milliseconds(150)
            configuration.maximumPackets = 512
            configuration.maximumBytes = 512 * 1024
            return configuration
        }()
        public var depacketizer = H264Depacketizer.Configuration()
        /// The largest RTP or RTCP packet taken; WebRTC keeps packets under the path MTU.
        public var maximumPacketSize = 4096
        public var reportInterval: Duration = .seconds(1)
        /// The least time between two keyframe requests.
        public var keyframeRequestInterval: Duration = .milliseconds(500)
        /// The longest GOP the output should have; nil for no limit. A browser's encoder makes keyframes only when
        /// asked, so the ingest asks for one ``keyframeRequestLead`` before the last keyframe gets this old. The
        /// default, 2 s, is the strictest rule common ingests set (AWS IVS requires it; YouTube and Twitch recommend
        /// it); it also bounds how long a target that joins or rejoins without the relay's GOP cache waits.
        public var maximumKeyframeInterval: Duration? = .seconds(2)
        /// How long before ``maximumKeyframeInterval`` runs out the request goes: the time for it to reach the
        /// browser, its encoder's next frame, and the keyframe's packets to arrive.
        public var keyframeRequestLead: Duration = .milliseconds(500)
        /// How the two tracks are put in timestamp order.
        public var interleaver = MessageInterleaver.Configuration()
        public var sendFIR = false
        /// The REMB cap, in bits per second.
        public var maximumBitrate: UInt64 = 8_000_000
        public var aacBitRate = 128_000
        public var aacChannels = 2
        /// The round trip time until the transport measures one.
        public var initialRoundTripTime: Duration = .milliseconds(100)

        public init(codecs: [RTPCodecParameters], localSSRC: UInt32, cname: String) {
            self.codecs = codecs
            self.localSSRC = localSSRC
            self.cname = cname
        }
    }

    /// What a call produced.
    public struct Output: Sendable {
        /// The RTMP messages to publish, in order.
        public var messages: [RTMPMessage] = []
        /// Compound RTCP packets to send to the browser.
        public var rtcp: [ByteBuffer] = []
        /// Problems with the input that did not stop the session (a packet that did not depacketize or decode).
        public var errors: [WebRTCMediaError] = []

        public init() {}
    }

    /// Counters for logs and metrics.
    public struct Statistics: Sendable, Hashable {
        public var rtpPackets = 0
        public var rtcpPackets = 0
        public var refusedPackets = 0
        public var videoMessages = 0
        public var audioMessages = 0
        public var droppedPictures = 0
        public var keyframeRequests = 0
        public var nacks = 0
        /// RTX packets taken (RFC 4588).
        public var retransmissions = 0
    }

    private struct Track {
        var ssrc: UInt32?
        var jitterBuffer: JitterBuffer
        var reception: ReceptionStatistics
    }

    public let configuration: Configuration
    /// The round trip time that paces NACKs; the transport updates it when it measures one.
    public var roundTripTime: Duration
    public private(set) var statistics = Statistics()

    private let videoPayloadTypes: Set<UInt8>
    private let audioPayloadTypes: Set<UInt8>
    /// RTX payload types (RFC 4588) and the H.264 payload type each retransmits (`apt`).
    private let retransmissionPayloadTypes: [UInt8: UInt8]
    private let otherCodecs: [UInt8: String]
    private let epoch: ContinuousClock.Instant
    private var video: Track
    private var audio: Track
    private var depacketizer: H264Depacketizer
    private var packager: H264FLVPackager
    private var transcoder: OpusToAACTranscoder?
    private var audioSequenceHeaderSent = false
    private var metadataSent = false
    /// The timestamps of the last video message and the last AAC frame.
    private var lastVideoTimestamp: UInt32?
    private var lastAudioTimestamp: UInt32?
    private var synchronizer: MediaSynchronizer
    private var interleaver: MessageInterleaver
    /// AAC frames from before the first keyframe, until it places them (the keyframe often arrives after the audio
    /// of its moment); bounded by ``maximumPendingAudio``.
    private var pendingAudio: [AACFrame] = []
    /// Three seconds of AAC frames.
    private static let maximumPendingAudio = 3 * OpusToAACTranscoder.sampleRate / OpusToAACTranscoder.frameLength
    /// When the last keyframe left the depacketizer, for ``Configuration/maximumKeyframeInterval``.
    private var lastKeyframe: ContinuousClock.Instant?
    private var pendingSenderReports: [UInt32: (ntp: UInt64, rtp: UInt32, arrival: ContinuousClock.Instant)] = [:]
    private var keyframeWanted = true
    private var lastKeyframeRequest: ContinuousClock.Instant?
    private var firSequenceNumber: UInt8 = 0
    private var nextReport: ContinuousClock.Instant

    /// Sets up the session for the negotiated codecs.
    ///
    /// - Throws: ``WebRTCMediaError`` with code ``WebRTCMediaError/Code/unsupportedCodec`` when no H.264 video was
    ///   negotiated (naming what was), ``WebRTCMediaError/Code/invalidConfiguration`` for a bad
    ///   `sprop-parameter-sets` or interleaved H.264 only, ``WebRTCMediaError/Code/codecFailure`` when Opus was
    ///   negotiated and libavcodec cannot be opened.
    public init(configuration: Configuration, now: ContinuousClock.Instant) throws(WebRTCMediaError) {
        var video: Set<UInt8> = []
        var audio: Set<UInt8> = []
        var others: [UInt8: String] = [:]
        var parameterSets: [ByteBuffer] = []
        var retransmissions: [RTPCodecParameters] = []
        for codec in configuration.codecs {
            switch codec.name.lowercased() {
            case "h264":
                let mode = codec.formatParameters["packetization-mode"] ?? "0"
                guard mode == "0" || mode == "1" else {
                    others[codec.payloadType] = "H264 packetization-mode=\(mode)"
                    continue
                }
                guard codec.clockRate == 90000 else {
                    throw WebRTCMediaError(
                        code: .invalidConfiguration,
                        message: "H264 payload type \(codec.payloadType) has clock rate \(codec.clockRate), not 90000"
                    )
                }
                video.insert(codec.payloadType)
                if let sprop = codec.formatParameters["sprop-parameter-sets"] {
                    parameterSets += try Self.parseSpropParameterSets(sprop)
                }
            case "rtx":
                retransmissions.append(codec)
            case "opus":
                guard codec.clockRate == 48000 else {
                    throw WebRTCMediaError(
                        code: .invalidConfiguration,
                        message: "opus payload type \(codec.payloadType) has clock rate \(codec.clockRate), not 48000"
                    )
                }
                audio.insert(codec.payloadType)
            default:
                others[codec.payloadType] = codec.name
            }
        }
        var retransmissionPayloadTypes: [UInt8: UInt8] = [:]
        for codec in retransmissions {
            if let apt = codec.formatParameters["apt"].flatMap(UInt8.init), video.contains(apt) {
                retransmissionPayloadTypes[codec.payloadType] = apt
            } else {
                others[codec.payloadType] = "rtx for payload type \(codec.formatParameters["apt"] ?? "none")"
            }
        }
        guard !video.isEmpty else {
            let names = Set(others.values).sorted().joined(separator: ", ")
            throw WebRTCMediaError(
                code: .unsupportedCodec,
                message:
                    "WebRTC ingest needs H.264 video (packetization-mode 0 or 1); the session negotiated "
                    + (names.isEmpty ? "no video codec" : names)
            )
        }
        self.configuration = configuration
        self.roundTripTime = configuration.initialRoundTripTime
        self.videoPayloadTypes = video
        self.audioPayloadTypes = audio
        self.otherCodecs = others
        self.retransmissionPayloadTypes = retransmissionPayloadTypes
        self.epoch = now
        self.video = Track(
            jitterBuffer: JitterBuffer(configuration: configuration.videoJitterBuffer),
            reception: ReceptionStatistics(clockRate: 90000, epoch: now)
        )
        self.audio = Track(
            jitterBuffer: JitterBuffer(configuration: configuration.audioJitterBuffer),
            reception: ReceptionStatistics(clockRate: 48000, epoch: now)
        )
        self.depacketizer = H264Depacketizer(configuration: configuration.depacketizer)
        self.packager = H264FLVPackager(parameterSets: parameterSets)
        self.synchronizer = MediaSynchronizer(epoch: now)
        self.interleaver = MessageInterleaver(interleaves: !audio.isEmpty, configuration: configuration.interleaver)
        self.nextReport = now + configuration.reportInterval
        if !audio.isEmpty {
            self.transcoder = try OpusToAACTranscoder(
                channels: configuration.aacChannels,
                bitRate: configuration.aacBitRate
            )
        }
    }

    /// Decodes `sprop-parameter-sets` (RFC 6184 8.1: base64 NAL units, comma-separated).
    public static func parseSpropParameterSets(_ value: String) throws(WebRTCMediaError) -> [ByteBuffer] {
        var sets: [ByteBuffer] = []
        for part in value.split(separator: ",") where !part.isEmpty {
            guard let data = Data(base64Encoded: String(part)), !data.isEmpty, data.count <= 0xFFFF else {
                throw WebRTCMediaError(
                    code: .invalidConfiguration,
                    message: "sprop-parameter-sets entry \"\(part.prefix(40))\" is not a base64 NAL unit"
                )
            }
            sets.append(ByteBuffer(bytes: data))
        }
        return sets
    }

    /// When ``tick(at:)`` next has something to do.
    public var nextDeadline: ContinuousClock.Instant {
        var deadline = self.nextReport
        for track in [self.video, self.audio] {
            if let next = track.jitterBuffer.nextDeadline(roundTripTime: self.roundTripTime) {
                deadline = min(deadline, next)
            }
        }
        if self.keyframeWanted, self.video.ssrc != nil, let last = self.lastKeyframeRequest {
            deadline = min(deadline, last + self.configuration.keyframeRequestInterval)
        }
        if !self.keyframeWanted, let due = self.keyframeDue {
            deadline = min(deadline, due)
        }
        if let next = self.interleaver.nextDeadline {
            deadline = min(deadline, next)
        }
        return deadline
    }

    /// Takes a datagram that may be RTP or RTCP (RFC 5761 multiplexing).
    public func receive(datagram: ByteBuffer, at now: ContinuousClock.Instant) throws(WebRTCMediaError) -> Output {
        switch RTPDemultiplexer.classify(datagram) {
        case .rtp: return try self.receive(rtp: datagram, at: now)
        case .rtcp: return try self.receive(rtcp: datagram, at: now)
        case .neither:
            self.statistics.refusedPackets += 1
            throw .malformed("a \(datagram.readableBytes)-byte datagram is neither RTP nor RTCP")
        }
    }

    /// Takes one decrypted RTP packet.
    ///
    /// - Throws: ``WebRTCMediaError`` for a packet that is refused before it enters the pipeline: too large, not
    ///   RTP, a payload type not negotiated, or one of a codec this ingest does not take (VP8, ...). The session
    ///   goes on.
    public func receive(rtp bytes: ByteBuffer, at now: ContinuousClock.Instant) throws(WebRTCMediaError) -> Output {
        guard bytes.readableBytes <= self.configuration.maximumPacketSize else {
            self.statistics.refusedPackets += 1
            throw .limit(
                "RTP packet of \(bytes.readableBytes) bytes exceeds the \(self.configuration.maximumPacketSize)-byte limit"
            )
        }
        let packet: RTPPacket
        do {
            packet = try RTPPacket(parsing: bytes)
        } catch {
            self.statistics.refusedPackets += 1
            throw error
        }
        if let originalPayloadType = self.retransmissionPayloadTypes[packet.payloadType] {
            return self.retransmission(packet, payloadType: originalPayloadType, at: now)
        }
        let isVideo = self.videoPayloadTypes.contains(packet.payloadType)
        guard isVideo || self.audioPayloadTypes.contains(packet.payloadType) else {
            self.statistics.refusedPackets += 1
            if let name = self.otherCodecs[packet.payloadType] {
                throw WebRTCMediaError(
                    code: .unsupportedCodec,
                    message:
                        "RTP payload type \(packet.payloadType) is \(name); WebRTC ingest takes H.264 video and Opus audio"
                )
            }
            throw WebRTCMediaError(
                code: .unknownPayloadType,
                message: "RTP payload type \(packet.payloadType) was not negotiated"
            )
        }
        self.statistics.rtpPackets += 1
        var output = Output()
        if isVideo {
            self.adopt(ssrc: packet.ssrc, video: true)
            self.video.reception.received(packet, at: now)
            _ = self.video.jitterBuffer.insert(packet, at: now)
        } else {
            self.adopt(ssrc: packet.ssrc, video: false)
            self.audio.reception.received(packet, at: now)
            _ = self.audio.jitterBuffer.insert(packet, at: now)
        }
        self.drain(at: now, into: &output)
        self.sendFeedback(at: now, into: &output)
        return output
    }

    /// An RTX packet (RFC 4588 4): the original sequence number, then the original payload, on a stream of its own.
    /// It goes into the video jitter buffer as the packet it repeats; the reception statistics are the media
    /// stream's alone. RTX packets without a payload are padding (bandwidth probes) and are dropped.
    private func retransmission(_ packet: RTPPacket, payloadType: UInt8, at now: ContinuousClock.Instant) -> Output {
        var output = Output()
        var payload = packet.payload
        guard let ssrc = self.video.ssrc, let sequenceNumber = payload.readInteger(as: UInt16.self),
            payload.readableBytes > 0
        else {
            return output
        }
        self.statistics.rtpPackets += 1
        self.statistics.retransmissions += 1
        var original = packet
        original.payloadType = payloadType
        original.sequenceNumber = sequenceNumber
        original.ssrc = ssrc
        original.payload = payload
        _ = self.video.jitterBuffer.insert(original, at: now)
        self.drain(at: now, into: &output)
        self.sendFeedback(at: now, into: &output)
        return output
    }

    /// Takes one decrypted RTCP compound packet: sender reports feed A/V sync and receiver reports' LSR/DLSR.
    public func receive(rtcp bytes: ByteBuffer, at now: ContinuousClock.Instant) throws(WebRTCMediaError) -> Output {
        guard bytes.readableBytes <= self.configuration.maximumPacketSize else {
            self.statistics.refusedPackets += 1
            throw .limit(
                "RTCP packet of \(bytes.readableBytes) bytes exceeds the \(self.configuration.maximumPacketSize)-byte limit"
            )
        }
        let packets: [RTCPPacket]
        do {
            packets = try RTCPPacket.parseCompound(bytes)
        } catch {
            self.statistics.refusedPackets += 1
            throw error
        }
        self.statistics.rtcpPackets += 1
        for case .senderReport(let report) in packets {
            self.senderReport(ssrc: report.ssrc, ntp: report.ntpTimestamp, rtp: report.rtpTimestamp, at: now)
        }
        var output = Output()
        self.drain(at: now, into: &output)
        self.sendFeedback(at: now, into: &output)
        return output
    }

    /// Does what is due: gives up on gaps, NACKs, repeats keyframe requests, sends reports.
    public func tick(at now: ContinuousClock.Instant) -> Output {
        var output = Output()
        self.drain(at: now, into: &output)
        self.sendFeedback(at: now, into: &output)
        return output
    }

    /// Asks the browser for a keyframe, for example because a target joined and should start soon. Requests
    /// closer together than ``Configuration/keyframeRequestInterval`` are merged into one.
    public func requestKeyframe(at now: ContinuousClock.Instant) -> Output {
        self.keyframeWanted = true
        var output = Output()
        self.sendFeedback(at: now, into: &output)
        return output
    }

    /// Ends the session: everything held is given up on, the picture in progress is dropped, and the AAC encoder
    /// is drained. Later calls produce nothing useful.
    public func finish(at now: ContinuousClock.Instant) -> Output {
        var output = Output()
        self.drain(at: now + .seconds(3600), into: &output)
        if let transcoder = self.transcoder {
            do {
                self.emit(audio: try transcoder.finish(), at: now, into: &output)
            } catch {
                output.errors.append(error)
            }
        }
        output.messages += self.interleaver.flush()
        return output
    }

    /// When the next keyframe must be asked for (``Configuration/maximumKeyframeInterval``), once one came.
    private var keyframeDue: ContinuousClock.Instant? {
        guard let interval = self.configuration.maximumKeyframeInterval, let last = self.lastKeyframe else {
            return nil
        }
        return last + max(.zero, interval - self.configuration.keyframeRequestLead)
    }

    // MARK: - Internals

    private func adopt(ssrc: UInt32, video: Bool) {
        if video {
            guard self.video.ssrc != ssrc else { return }
            if self.video.ssrc != nil {
                // The sender restarted the stream: a new sequence space, and nothing decodes until a keyframe.
                self.video.jitterBuffer = JitterBuffer(configuration: self.configuration.videoJitterBuffer)
                self.video.reception = ReceptionStatistics(clockRate: 90000, epoch: self.epoch)
                self.depacketizer = H264Depacketizer(configuration: self.configuration.depacketizer)
                _ = self.packager.lost()
                self.keyframeWanted = true
            }
            self.video.ssrc = ssrc
        } else {
            guard self.audio.ssrc != ssrc else { return }
            if self.audio.ssrc != nil {
                self.audio.jitterBuffer = JitterBuffer(configuration: self.configuration.audioJitterBuffer)
                self.audio.reception = ReceptionStatistics(clockRate: 48000, epoch: self.epoch)
            }
            self.audio.ssrc = ssrc
        }
        if let pending = self.pendingSenderReports.removeValue(forKey: ssrc) {
            self.senderReport(ssrc: ssrc, ntp: pending.ntp, rtp: pending.rtp, at: pending.arrival)
        }
    }

    private func senderReport(ssrc: UInt32, ntp: UInt64, rtp: UInt32, at now: ContinuousClock.Instant) {
        let track: MediaSynchronizer.Track
        if ssrc == self.video.ssrc {
            track = .video
            self.video.reception.receivedSenderReport(ntpTimestamp: ntp, at: now)
        } else if ssrc == self.audio.ssrc {
            track = .audio
            self.audio.reception.receivedSenderReport(ntpTimestamp: ntp, at: now)
        } else {
            // A report can come before the source's first packet (ffmpeg sends it first); keep a few.
            if self.pendingSenderReports.count < 8 || self.pendingSenderReports[ssrc] != nil {
                self.pendingSenderReports[ssrc] = (ntp, rtp, now)
            }
            return
        }
        self.synchronizer.senderReport(ntpTimestamp: ntp, rtpTimestamp: rtp, track: track, at: now)
    }

    private func drain(at now: ContinuousClock.Instant, into output: inout Output) {
        for event in self.video.jitterBuffer.drain(at: now) {
            switch event {
            case .packet(let packet, let arrival):
                self.synchronizer.observe(packet.timestamp, track: .video, arrival: arrival)
                let result = self.depacketizer.push(packet)
                if let error = result.error { output.errors.append(error) }
                for unit in result.accessUnits {
                    self.package(unit, at: now, into: &output)
                }
            case .lost:
                self.depacketizer.lost()
                if self.packager.lost().needsKeyframe { self.keyframeWanted = true }
            }
        }
        for event in self.audio.jitterBuffer.drain(at: now) {
            guard case .packet(let packet, let arrival) = event, let transcoder = self.transcoder else { continue }
            // Lost audio needs nothing: the transcoder fills the gap with silence when the next packet comes.
            let timestamp = self.synchronizer.observe(packet.timestamp, track: .audio, arrival: arrival)
            do {
                self.emit(audio: try transcoder.transcode(packet.payload, timestamp: timestamp), at: now, into: &output)
            } catch {
                output.errors.append(error)
            }
        }
        output.messages += self.interleaver.pop(at: now)
    }

    private func package(_ unit: H264AccessUnit, at now: ContinuousClock.Instant, into output: inout Output) {
        let result = self.packager.package(unit)
        if result.needsKeyframe { self.keyframeWanted = true }
        if result.dropped { self.statistics.droppedPictures += 1 }
        if let error = result.error {
            output.errors.append(WebRTCMediaError(code: .malformedPacket, message: "H.264 parameter sets: \(error)"))
        }
        for payload in result.payloads {
            if !self.synchronizer.hasStarted {
                // The stream starts at its first keyframe (the packager's first payloads are the sequence header and
                // the keyframe, at one time): audio from before it is left out.
                guard payload.isKeyframe || payload.isSequenceHeader else { continue }
                self.synchronizer.start(atRTPTimestamp: payload.rtpTimestamp, track: .video)
            }
            var milliseconds = self.synchronizer.milliseconds(forRTPTimestamp: payload.rtpTimestamp, track: .video)
            if payload.isSequenceHeader {
                // Not a frame: it may share the time of the frame before it.
                milliseconds = max(milliseconds, self.lastVideoTimestamp ?? 0)
            } else {
                milliseconds = self.strictlyIncreasing(milliseconds, after: &self.lastVideoTimestamp)
            }
            if payload.isSequenceHeader && !self.metadataSent {
                self.interleaver.push(self.metadata(sequenceHeader: payload.body), track: .video, at: now)
                self.metadataSent = true
            }
            self.interleaver.push(
                RTMPMessage(
                    chunkStreamID: RTMPChunkStreamID.video,
                    timestamp: milliseconds,
                    type: .video,
                    messageStreamID: self.configuration.messageStreamID,
                    payload: payload.body
                ),
                track: .video,
                at: now
            )
            self.statistics.videoMessages += 1
            if payload.isKeyframe {
                self.keyframeWanted = false
                self.lastKeyframe = now
            }
        }
        if self.synchronizer.hasStarted, !self.pendingAudio.isEmpty {
            let pending = self.pendingAudio
            self.pendingAudio = []
            self.emit(audio: pending, at: now, into: &output)
        }
    }

    /// `@setDataFrame onMetaData`, as OBS sends it before the media: what the stream is, for targets and players
    /// that read it. Sent once, with the first video sequence header, when the picture size is known; at time 0,
    /// where an FLV reader takes it for the stream's header rather than a data track.
    private func metadata(sequenceHeader: ByteBuffer) -> RTMPMessage {
        var properties: [(key: String, value: AMF0Value)] = []
        if let header = try? VideoTagHeader(parsing: sequenceHeader), let data = header.codecData(in: sequenceHeader),
            let record = try? AVCDecoderConfigurationRecord(parsing: data),
            let sps = try? record.parseSequenceParameterSet()
        {
            properties.append((key: "width", value: .number(Double(sps.width))))
            properties.append((key: "height", value: .number(Double(sps.height))))
            if let frameRate = sps.frameRate {
                properties.append((key: "framerate", value: .number(frameRate)))
            }
        }
        properties.append((key: "videocodecid", value: .number(7)))
        if let transcoder = self.transcoder {
            properties += [
                (key: "audiocodecid", value: .number(10)),
                (key: "audiosamplerate", value: .number(Double(OpusToAACTranscoder.sampleRate))),
                (key: "audiosamplesize", value: .number(16)),
                (key: "audiochannels", value: .number(Double(transcoder.channels))),
                (key: "stereo", value: .boolean(transcoder.channels == 2)),
                (key: "audiodatarate", value: .number(Double(self.configuration.aacBitRate) / 1000)),
            ]
        }
        properties.append((key: "encoder", value: .string("liverelay WHIP ingest")))
        var payload = ByteBufferAllocator().buffer(capacity: 256)
        payload.writeAMF0Value(.string("@setDataFrame"))
        payload.writeAMF0Value(.string("onMetaData"))
        payload.writeAMF0Value(.ecmaArray(properties))
        return RTMPMessage(
            chunkStreamID: RTMPChunkStreamID.data,
            timestamp: 0,
            type: .dataAMF0,
            messageStreamID: self.configuration.messageStreamID,
            payload: payload
        )
    }

    /// Audio goes out from the stream's start (its first keyframe) on: frames before are held until the keyframe
    /// places them, and those that begin before it are left out.
    private func emit(audio frames: [AACFrame], at now: ContinuousClock.Instant, into output: inout Output) {
        guard let transcoder = self.transcoder else { return }
        for frame in frames {
            guard self.synchronizer.hasStarted else {
                if self.pendingAudio.count >= Self.maximumPendingAudio {
                    self.pendingAudio.removeFirst()
                }
                self.pendingAudio.append(frame)
                continue
            }
            if self.lastAudioTimestamp == nil,
                self.synchronizer.precedesStart(extendedTimestamp: frame.timestamp, track: .audio)
            {
                continue
            }
            var milliseconds = self.synchronizer.milliseconds(forExtendedTimestamp: frame.timestamp, track: .audio)
            if !self.audioSequenceHeaderSent {
                var body = ByteBufferAllocator().buffer(capacity: 2 + transcoder.audioSpecificConfig.readableBytes)
                body.writeInteger(Self.aacTagFlags)
                body.writeInteger(AudioPacketType.sequenceStart.rawValue)
                body.writeImmutableBuffer(transcoder.audioSpecificConfig)
                self.interleaver.push(self.audioMessage(body, milliseconds), track: .audio, at: now)
                self.audioSequenceHeaderSent = true
            }
            milliseconds = self.strictlyIncreasing(milliseconds, after: &self.lastAudioTimestamp)
            var body = ByteBufferAllocator().buffer(capacity: 2 + frame.data.readableBytes)
            body.writeInteger(Self.aacTagFlags)
            body.writeInteger(AudioPacketType.codedFrames.rawValue)
            body.writeImmutableBuffer(frame.data)
            self.interleaver.push(self.audioMessage(body, milliseconds), track: .audio, at: now)
            self.statistics.audioMessages += 1
        }
    }

    /// Two frames of a track must not share a millisecond: players and muxers take equal decoding times as an
    /// error. The synchronizer never goes back, but holding it where a track's mapping moved back (arrival time
    /// giving way to sender reports) repeats a value; such a frame goes 1 ms after the previous one instead.
    private func strictlyIncreasing(_ milliseconds: UInt32, after last: inout UInt32?) -> UInt32 {
        var value = milliseconds
        if let previous = last, value <= previous {
            value = previous &+ 1
        }
        last = value
        return value
    }

    /// FLV 10.1 E.4.2.1: AAC (10), and the 44 kHz, 16-bit, stereo flags every AAC tag carries (the
    /// AudioSpecificConfig is what describes the stream).
    private static let aacTagFlags: UInt8 = 10 << 4 | 3 << 2 | 1 << 1 | 1

    private func audioMessage(_ body: ByteBuffer, _ milliseconds: UInt32) -> RTMPMessage {
        RTMPMessage(
            chunkStreamID: RTMPChunkStreamID.audio,
            timestamp: milliseconds,
            type: .audio,
            messageStreamID: self.configuration.messageStreamID,
            payload: body
        )
    }

    private func sendFeedback(at now: ContinuousClock.Instant, into output: inout Output) {
        let local = self.configuration.localSSRC
        // NACKs, per track.
        for isVideo in [true, false] {
            guard let ssrc = isVideo ? self.video.ssrc : self.audio.ssrc else { continue }
            let missing =
                isVideo
                ? self.video.jitterBuffer.nacks(at: now, roundTripTime: self.roundTripTime)
                : self.audio.jitterBuffer.nacks(at: now, roundTripTime: self.roundTripTime)
            guard !missing.isEmpty else { continue }
            self.statistics.nacks += missing.count
            // Keep each packet well under the MTU: 200 FCI entries is 812 bytes.
            var start = 0
            while start < missing.count {
                let end = min(missing.count, start + 200 * 17)
                var nack = RTCPGenericNACK(
                    senderSSRC: local,
                    mediaSSRC: ssrc,
                    sequenceNumbers: Array(missing[start..<end])
                )
                while nack.entries.count > 200 { nack.sequenceNumbers.removeLast(17) }
                let taken = nack.sequenceNumbers.count
                output.rtcp.append(self.feedback([.genericNACK(nack)]))
                start += taken
            }
        }
        // Keyframe requests: wanted, or due so that the GOP stays within the configured bound.
        if !self.keyframeWanted, let due = self.keyframeDue, now >= due {
            self.keyframeWanted = true
        }
        if self.keyframeWanted, let ssrc = self.video.ssrc,
            self.lastKeyframeRequest.map({ now >= $0 + self.configuration.keyframeRequestInterval }) ?? true
        {
            var packets: [RTCPPacket] = [
                .pictureLossIndication(RTCPPictureLossIndication(senderSSRC: local, mediaSSRC: ssrc))
            ]
            if self.configuration.sendFIR {
                self.firSequenceNumber &+= 1
                packets.append(
                    .fullIntraRequest(
                        RTCPFullIntraRequest(
                            senderSSRC: local,
                            entries: [RTCPFullIntraRequest.Entry(ssrc: ssrc, sequenceNumber: self.firSequenceNumber)]
                        )
                    )
                )
            }
            output.rtcp.append(self.feedback(packets))
            self.lastKeyframeRequest = now
            self.statistics.keyframeRequests += 1
        }
        // Reports.
        if now >= self.nextReport {
            self.nextReport = now + self.configuration.reportInterval
            var blocks: [RTCPReportBlock] = []
            var sources: [UInt32] = []
            if let ssrc = self.video.ssrc, let block = self.video.reception.reportBlock(ssrc: ssrc, at: now) {
                blocks.append(block)
                sources.append(ssrc)
            }
            if let ssrc = self.audio.ssrc, let block = self.audio.reception.reportBlock(ssrc: ssrc, at: now) {
                blocks.append(block)
                sources.append(ssrc)
            }
            var packets: [RTCPPacket] = [
                .receiverReport(RTCPReceiverReport(ssrc: local, reports: blocks)),
                .sourceDescription(
                    RTCPSourceDescription(chunks: [.init(ssrc: local, items: [.cname(self.configuration.cname)])])
                ),
            ]
            if !sources.isEmpty {
                packets.append(
                    .receiverEstimatedMaximumBitrate(
                        RTCPReceiverEstimatedMaximumBitrate(
                            senderSSRC: local,
                            bitrate: self.configuration.maximumBitrate,
                            ssrcs: sources
                        )
                    )
                )
            }
            output.rtcp.append(RTCPPacket.compound(packets))
        }
    }

    /// Feedback as a reduced-size packet (RFC 5506), which WebRTC always negotiates (`a=rtcp-rsize`).
    private func feedback(_ packets: [RTCPPacket]) -> ByteBuffer {
        RTCPPacket.compound(packets)
    }
}

@available(*, unavailable)
extension WebRTCIngest: Sendable {}
