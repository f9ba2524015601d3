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

import CFFmpeg
public import Media
public import NIOCore

/// One AAC-LC frame of 1024 samples.
public struct AACFrame: Sendable, Hashable {
    /// The raw AAC frame (no ADTS header), as the body of an FLV AAC raw packet.
    public var data: ByteBuffer
    /// The time of the frame's first sample, in 48 kHz units on the RTP timeline of the Opus stream (extended to
    /// 64 bits). The encoder's first frame (its priming, 1024 samples) starts 1024 before the first Opus sample.
    public var timestamp: Int64
}

/// Opus in, AAC-LC out, with libavcodec: its native Opus decoder and its native `aac` encoder, through an
/// `AVAudioFifo` that turns Opus's 960-sample (20 ms) frames into AAC's 1024-sample ones.
///
/// Time stays exact: every AAC frame's timestamp is the RTP timestamp of its first sample, counted in samples
/// from the first Opus packet. A gap in the Opus timestamps (lost packets, discontinuous transmission) of up to
/// ``maximumSilence`` is filled with silence, so the AAC stream stays continuous and in sync; a longer one
/// restarts the timeline at the new timestamp.
///
/// A class: it owns libavcodec contexts. Not thread-safe; use it from one task or event loop at a time.
public final class OpusToAACTranscoder {
    /// The Opus and AAC sample rate: WebRTC's Opus runs at 48 kHz (RFC 7587), and AAC stays there.
    public static let sampleRate = 48000
    /// AAC-LC's frame length.
    public static let frameLength = 1024
    /// The longest gap filled with silence (one second).
    public let maximumSilence: Int64 = 48000

    /// The AudioSpecificConfig of the AAC stream, for the AAC sequence header.
    public let audioSpecificConfig: ByteBuffer
    /// The parsed ``audioSpecificConfig``.
    public let config: AudioSpecificConfig
    public let channels: Int

    private let decoder: UnsafeMutablePointer<AVCodecContext>
    private let encoder: UnsafeMutablePointer<AVCodecContext>
    private let fifo: OpaquePointer
    private let packet: UnsafeMutablePointer<AVPacket>
    private let frame: UnsafeMutablePointer<AVFrame>

    /// The RTP time of the first sample in the FIFO.
    private var fifoStart: Int64?
    /// The RTP time the next decoded sample belongs at.
    private var nextSample: Int64 = 0

    /// Opens the decoder and the encoder.
    ///
    /// - Parameters:
    ///   - channels: AAC channels, 1 or 2. Opus is decoded to this many (a mono Opus stream is upmixed).
    ///   - bitRate: The AAC bit rate in bits per second.
    /// - Throws: ``WebRTCMediaError`` with code ``WebRTCMediaError/Code/codecFailure`` if libavcodec cannot be
    ///   loaded or has no Opus decoder or `aac` encoder.
    public init(channels: Int = 2, bitRate: Int = 128_000) throws(WebRTCMediaError) {
        guard channels == 1 || channels == 2 else {
            throw WebRTCMediaError(code: .invalidConfiguration, message: "AAC channels \(channels), expected 1 or 2")
        }
        try Self.load()
        self.channels = channels

        guard let opus = lr_avcodec_find_decoder(AV_CODEC_ID_OPUS) else {
            throw .codec("libavcodec has no Opus decoder")
        }
        guard let decoder = lr_avcodec_alloc_context3(opus) else {
            throw .codec("cannot allocate the Opus decoder")
        }
        decoder.pointee.sample_rate = Int32(Self.sampleRate)
        lr_av_channel_layout_default(&decoder.pointee.ch_layout, Int32(channels))
        decoder.pointee.request_sample_fmt = AV_SAMPLE_FMT_FLTP
        // The peer controls what the decoder sees: its complaints come back as errors, not as log lines.
        lr_avcodec_context_set_quiet(decoder)
        var result = lr_avcodec_open2(decoder, opus)
        guard result >= 0 else {
            var context: UnsafeMutablePointer<AVCodecContext>? = decoder
            lr_avcodec_free_context(&context)
            throw .codec("cannot open the Opus decoder: \(Self.errorText(result))")
        }

        guard let aac = lr_avcodec_find_encoder_by_name("aac"), let encoder = lr_avcodec_alloc_context3(aac) else {
            var context: UnsafeMutablePointer<AVCodecContext>? = decoder
            lr_avcodec_free_context(&context)
            throw .codec("libavcodec has no aac encoder")
        }
        encoder.pointee.sample_rate = Int32(Self.sampleRate)
        encoder.pointee.sample_fmt = AV_SAMPLE_FMT_FLTP
        encoder.pointee.bit_rate = Int64(bitRate)
        encoder.pointee.time_base = AVRational(num: 1, den: Int32(Self.sampleRate))
        encoder.pointee.profile = FF_PROFILE_AAC_LOW
        encoder.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        lr_av_channel_layout_default(&encoder.pointee.ch_layout, Int32(channels))
        lr_avcodec_context_set_quiet(encoder)
        result = lr_avcodec_open2(encoder, aac)
        let extradataSize = Int(encoder.pointee.extradata_size)
        guard result >= 0, encoder.pointee.frame_size == Int32(Self.frameLength), extradataSize > 0,
            let extradata = encoder.pointee.extradata,
            let fifo = lr_av_audio_fifo_alloc(AV_SAMPLE_FMT_FLTP, Int32(channels), Int32(4 * Self.frameLength)),
            let packet = lr_av_packet_alloc(), let frame = lr_av_frame_alloc()
        else {
            var decoderContext: UnsafeMutablePointer<AVCodecContext>? = decoder
            var encoderContext: UnsafeMutablePointer<AVCodecContext>? = encoder
            lr_avcodec_free_context(&decoderContext)
            lr_avcodec_free_context(&encoderContext)
            throw .codec("cannot open the aac encoder: \(result < 0 ? Self.errorText(result) : "no AAC-LC setup")")
        }
        var config = ByteBufferAllocator().buffer(capacity: extradataSize)
        config.writeBytes(UnsafeBufferPointer(start: extradata, count: extradataSize))
        self.audioSpecificConfig = config
        self.decoder = decoder
        self.encoder = encoder
        self.fifo = fifo
        self.packet = packet
        self.frame = frame
        do {
            self.config = try AudioSpecificConfig(parsing: config)
        } catch {
            throw .codec("the aac encoder's AudioSpecificConfig does not parse: \(error)")
        }
    }

    deinit {
        var decoder: UnsafeMutablePointer<AVCodecContext>? = self.decoder
        var encoder: UnsafeMutablePointer<AVCodecContext>? = self.encoder
        var packet: UnsafeMutablePointer<AVPacket>? = self.packet
        var frame: UnsafeMutablePointer<AVFrame>? = self.frame
        lr_avcodec_free_context(&decoder)
        lr_avcodec_free_context(&encoder)
        lr_av_packet_free(&packet)
        lr_av_frame_free(&frame)
        lr_av_audio_fifo_free(self.fifo)
    }

    /// Decodes one Opus packet and returns the AAC frames that became complete.
    ///
    /// - Parameters:
    ///   - opus: The RTP payload (RFC 7587: one Opus packet).
    ///   - timestamp: The packet's RTP timestamp, extended to 64 bits (48 kHz units).
    /// - Throws: ``WebRTCMediaError`` with code ``WebRTCMediaError/Code/codecFailure`` if the packet does not
    ///   decode; the transcoder stays usable and fills the packet's time with silence once the next one arrives.
    public func transcode(_ opus: ByteBuffer, timestamp: Int64) throws(WebRTCMediaError) -> [AACFrame] {
        var output: [AACFrame] = []
        if self.fifoStart == nil {
            self.fifoStart = timestamp
            self.nextSample = timestamp
        } else if timestamp > self.nextSample {
            let gap = timestamp - self.nextSample
            if gap <= self.maximumSilence {
                try self.check(
                    lr_av_audio_fifo_write_silence(self.fifo, AV_SAMPLE_FMT_FLTP, Int32(self.channels), Int32(gap)),
                    "writing silence"
                )
                self.nextSample = timestamp
            } else {
                // Too long to fill: finish the frame in progress and restart the timeline.
                try self.padToFrame()
                try self.encodeAvailable(into: &output)
                self.fifoStart = timestamp
                self.nextSample = timestamp
            }
        } else if timestamp < self.nextSample {
            // Behind what was already decoded: a repeat. The jitter buffer lets none through; drop it.
            return []
        }
        try self.encodeAvailable(into: &output)

        guard opus.readableBytes > 0, opus.readableBytes < 1 << 20 else {
            throw .malformed("Opus packet of \(opus.readableBytes) bytes")
        }
        try self.check(lr_av_new_packet(self.packet, Int32(opus.readableBytes)), "allocating a packet")
        opus.withUnsafeReadableBytes { bytes in
            self.packet.pointee.data.update(from: bytes.bindMemory(to: UInt8.self).baseAddress!, count: bytes.count)
        }
        let sent = lr_avcodec_send_packet(self.decoder, self.packet)
        lr_av_packet_unref(self.packet)
        guard sent >= 0 else {
            throw .codec("Opus packet does not decode: \(Self.errorText(sent))")
        }
        while true {
            let received = lr_avcodec_receive_frame(self.decoder, self.frame)
            if received == lr_averror(EAGAIN) || received == lr_averror_eof() { break }
            try self.check(received, "decoding Opus")
            defer { lr_av_frame_unref(self.frame) }
            guard self.frame.pointee.format == AV_SAMPLE_FMT_FLTP.rawValue,
                self.frame.pointee.ch_layout.nb_channels == Int32(self.channels),
                self.frame.pointee.sample_rate == Int32(Self.sampleRate)
            else {
                throw .codec(
                    "the Opus decoder gave format \(self.frame.pointee.format), "
                        + "\(self.frame.pointee.ch_layout.nb_channels) channels at \(self.frame.pointee.sample_rate) Hz"
                )
            }
            try self.check(lr_av_audio_fifo_write_frame(self.fifo, self.frame), "buffering samples")
            self.nextSample += Int64(self.frame.pointee.nb_samples)
        }
        try self.encodeAvailable(into: &output)
        return output
    }

    /// Encodes what is left, padded with silence to a whole frame, and drains the encoder. The transcoder is done.
    public func finish() throws(WebRTCMediaError) -> [AACFrame] {
        var output: [AACFrame] = []
        guard self.fifoStart != nil else { return [] }
        try self.padToFrame()
        try self.encodeAvailable(into: &output)
        try self.check(lr_avcodec_send_frame(self.encoder, nil), "draining the encoder")
        try self.receivePackets(into: &output)
        return output
    }

    private func padToFrame() throws(WebRTCMediaError) {
        let remainder = Int(lr_av_audio_fifo_size(self.fifo)) % Self.frameLength
        if remainder > 0 {
            let padding = Self.frameLength - remainder
            try self.check(
                lr_av_audio_fifo_write_silence(self.fifo, AV_SAMPLE_FMT_FLTP, Int32(self.channels), Int32(padding)),
                "writing silence"
            )
        }
    }

    private func encodeAvailable(into output: inout [AACFrame]) throws(WebRTCMediaError) {
        while lr_av_audio_fifo_size(self.fifo) >= Int32(Self.frameLength) {
            guard
                let frame = lr_audio_frame_alloc(
                    AV_SAMPLE_FMT_FLTP,
                    Int32(self.channels),
                    Int32(Self.sampleRate),
                    Int32(Self.frameLength)
                )
            else {
                throw .codec("cannot allocate an audio frame")
            }
            defer {
                var pointer: UnsafeMutablePointer<AVFrame>? = frame
                lr_av_frame_free(&pointer)
            }
            try self.check(lr_av_audio_fifo_read_frame(self.fifo, frame), "reading samples")
            frame.pointee.pts = self.fifoStart!
            self.fifoStart! += Int64(Self.frameLength)
            try self.check(lr_avcodec_send_frame(self.encoder, frame), "encoding AAC")
            try self.receivePackets(into: &output)
        }
    }

    private func receivePackets(into output: inout [AACFrame]) throws(WebRTCMediaError) {
        while true {
            let received = lr_avcodec_receive_packet(self.encoder, self.packet)
            if received == lr_averror(EAGAIN) || received == lr_averror_eof() { return }
            try self.check(received, "encoding AAC")
            defer { lr_av_packet_unref(self.packet) }
            let size = Int(self.packet.pointee.size)
            var data = ByteBufferAllocator().buffer(capacity: size)
            if size > 0, let bytes = self.packet.pointee.data {
                data.writeBytes(UnsafeBufferPointer(start: bytes, count: size))
            }
            output.append(AACFrame(data: data, timestamp: self.packet.pointee.pts))
        }
    }

    private func check(_ result: Int32, _ what: String) throws(WebRTCMediaError) {
        guard result >= 0 else {
            throw .codec("\(what): \(Self.errorText(result))")
        }
    }

    static func errorText(_ code: Int32) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
            lr_strerror(code, buffer.baseAddress, 256)
            return String(cString: buffer.baseAddress!)
        }
    }

    private static let loaded: Result<Void, WebRTCMediaError> = withUnsafeTemporaryAllocation(
        of: CChar.self,
        capacity: 512
    ) { buffer in
        guard lr_libav_load(buffer.baseAddress, 512) == 0 else {
            return .failure(.codec("cannot load libavcodec: \(String(cString: buffer.baseAddress!))"))
        }
        lr_av_log_set_level(AV_LOG_ERROR)
        return .success(())
    }

    private static func load() throws(WebRTCMediaError) {
        try Self.loaded.get()
    }
}

@available(*, unavailable)
extension OpusToAACTranscoder: Sendable {}
