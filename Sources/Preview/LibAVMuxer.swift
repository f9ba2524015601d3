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
import NIOCore

/// A track of the preview, as libavformat needs it described: codec, decoder configuration, picture size or audio
/// format. Timestamps of every track are in milliseconds, as RTMP has them.
struct PreviewTrack: Hashable, Sendable {
    enum Codec: Hashable, Sendable {
        case h264
        case hevc
        case aac
    }

    var codec: Codec
    /// The decoder configuration record (`avcC`, `hvcC`) or the AAC AudioSpecificConfig.
    var extradata: ByteBuffer
    var width = 0
    var height = 0
    var sampleRate = 0
    var channels = 0

    var isVideo: Bool { self.codec != .aac }
}

/// The text of a libav* error code, as `av_err2str` gives it.
func libavErrorText(_ code: Int32) -> String {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
        lr_strerror(code, buffer.baseAddress, 256)
        return String(cString: buffer.baseAddress!)
    }
}

/// One libavformat output context, remuxing (never transcoding) already-encoded packets.
///
/// Either into memory (``takeOutput()`` returns what the muxer wrote since the last call, through a custom
/// `AVIOContext`), or into files that the muxer opens itself (the `hls` muxer writes its playlist and segments).
/// Not thread-safe: one preview thread creates, feeds and closes it.
final class LibAVMuxer {
    private var context: UnsafeMutablePointer<AVFormatContext>?
    private var sink: UnsafeMutablePointer<lr_memory_sink>?
    private var avio: UnsafeMutablePointer<AVIOContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var headerWritten = false
    private let format: String
    private let millisecond = AVRational(num: 1, den: 1000)

    /// Sets up the muxer and writes the header.
    ///
    /// - Parameters:
    ///   - format: the libavformat muxer name (`mp4`, `hls`).
    ///   - url: where a muxer that opens its own files writes; `nil` to write into memory.
    ///   - tracks: the streams, in stream index order.
    ///   - options: the muxer's private options (`movflags`, `hls_time`...).
    init(format: String, url: String?, tracks: [PreviewTrack], options: [(String, String)]) throws(PreviewError) {
        try Self.loaded.get()
        self.format = format
        var context: UnsafeMutablePointer<AVFormatContext>?
        let created = lr_avformat_alloc_output_context2(&context, format, url)
        guard created >= 0, let context else {
            throw PreviewError.libav("cannot create the \(format) muxer", code: created)
        }
        self.context = context
        if url == nil {
            let sink = UnsafeMutablePointer<lr_memory_sink>.allocate(capacity: 1)
            sink.initialize(to: lr_memory_sink())
            self.sink = sink
            guard let avio = lr_memory_avio_alloc(sink) else {
                throw PreviewError.libav("cannot allocate the \(format) output", code: lr_averror(ENOMEM))
            }
            self.avio = avio
            context.pointee.pb = avio
            context.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        }
        for track in tracks {
            guard let stream = lr_avformat_new_stream(context), let parameters = stream.pointee.codecpar else {
                throw PreviewError.libav("cannot add a stream to the \(format) muxer", code: lr_averror(ENOMEM))
            }
            stream.pointee.time_base = self.millisecond
            switch track.codec {
            case .h264:
                parameters.pointee.codec_type = AVMEDIA_TYPE_VIDEO
                parameters.pointee.codec_id = AV_CODEC_ID_H264
            case .hevc:
                parameters.pointee.codec_type = AVMEDIA_TYPE_VIDEO
                parameters.pointee.codec_id = AV_CODEC_ID_HEVC
                if format == "mp4" {
                    // `hvc1` (parameter sets only in the sample entry) is what browsers that play HEVC expect.
                    parameters.pointee.codec_tag = Self.tag("hvc1")
                }
            case .aac:
                parameters.pointee.codec_type = AVMEDIA_TYPE_AUDIO
                parameters.pointee.codec_id = AV_CODEC_ID_AAC
                parameters.pointee.sample_rate = Int32(track.sampleRate)
                parameters.pointee.frame_size = 1024
                lr_av_channel_layout_default(&parameters.pointee.ch_layout, Int32(max(track.channels, 1)))
            }
            if track.isVideo {
                parameters.pointee.width = Int32(track.width)
                parameters.pointee.height = Int32(track.height)
            }
            let size = track.extradata.readableBytes
            guard let extradata = lr_av_mallocz(size + Int(AV_INPUT_BUFFER_PADDING_SIZE)) else {
                throw PreviewError.libav("cannot allocate codec extradata", code: lr_averror(ENOMEM))
            }
            track.extradata.withUnsafeReadableBytes { bytes in
                if let base = bytes.baseAddress {
                    extradata.copyMemory(from: base, byteCount: bytes.count)
                }
            }
            parameters.pointee.extradata = extradata.assumingMemoryBound(to: UInt8.self)
            parameters.pointee.extradata_size = Int32(size)
        }
        var dictionary: OpaquePointer?
        for (key, value) in options {
            _ = lr_av_dict_set(&dictionary, key, value)
        }
        let written = lr_avformat_write_header(context, &dictionary)
        lr_av_dict_free(&dictionary)
        guard written >= 0 else {
            throw PreviewError.libav("the \(format) muxer refused the stream header", code: written)
        }
        self.headerWritten = true
        guard let packet = lr_av_packet_alloc() else {
            throw PreviewError.libav("cannot allocate a packet", code: lr_averror(ENOMEM))
        }
        self.packet = packet
    }

    deinit {
        if let context {
            lr_avformat_free_context(context)
        }
        lr_memory_avio_free(&self.avio)
        if let sink {
            lr_av_free(sink.pointee.data)
            sink.deallocate()
        }
        lr_av_packet_free(&self.packet)
    }

    /// Loads libav* the first time a preview starts (see `CFFmpeg.h`). Without them the relay relays on, and the
    /// preview's status says why it does not play. libav* logs to standard error; only its errors belong there
    /// (failures reach the relay's log with their text through the return codes).
    private static let loaded: Result<Void, PreviewError> = withUnsafeTemporaryAllocation(
        of: CChar.self,
        capacity: 512
    ) { buffer in
        guard lr_libav_load(buffer.baseAddress, 512) == 0 else {
            return .failure(PreviewError.unavailable(String(cString: buffer.baseAddress!)))
        }
        lr_av_log_set_level(AV_LOG_ERROR)
        return .success(())
    }

    private static func tag(_ text: String) -> UInt32 {
        text.utf8.reversed().reduce(0) { ($0 << 8) | UInt32($1) }
    }

    /// Writes one packet; timestamps and duration are in milliseconds.
    func write(
        track: Int,
        data: LibAVPacketData,
        dts: Int64,
        pts: Int64,
        duration: Int64,
        keyframe: Bool
    ) throws(PreviewError) {
        guard let context, let packet, let stream = context.pointee.streams[track] else {
            return
        }
        guard let reference = lr_av_buffer_ref(data.buffer) else {
            throw PreviewError.libav("cannot reference a packet", code: lr_averror(ENOMEM))
        }
        packet.pointee.buf = reference
        packet.pointee.data = reference.pointee.data
        packet.pointee.size = Int32(data.size)
        defer { lr_av_packet_unref(packet) }
        let timeBase = stream.pointee.time_base
        packet.pointee.stream_index = Int32(track)
        packet.pointee.dts = lr_av_rescale_q(dts, self.millisecond, timeBase)
        packet.pointee.pts = lr_av_rescale_q(pts, self.millisecond, timeBase)
        packet.pointee.duration = lr_av_rescale_q(duration, self.millisecond, timeBase)
        packet.pointee.flags = keyframe ? AV_PKT_FLAG_KEY : 0
        let result = lr_av_write_frame(context, packet)
        guard result >= 0 else {
            throw PreviewError.libav("the \(self.format) muxer failed to write a packet", code: result)
        }
    }

    /// Ends the current fragment (for `mp4` with `movflags frag_custom`) and pushes it to the output.
    func flush() throws(PreviewError) {
        guard let context else {
            return
        }
        let result = lr_av_write_frame(context, nil)
        guard result >= 0 else {
            throw PreviewError.libav("the \(self.format) muxer failed to flush a fragment", code: result)
        }
        if let pb = context.pointee.pb {
            lr_avio_flush(pb)
        }
    }

    /// What the muxer wrote into memory since the last call.
    func takeOutput() throws(PreviewError) -> ByteBuffer {
        guard let sink else {
            return ByteBuffer()
        }
        if sink.pointee.failed != 0 {
            throw PreviewError.libav("out of memory for the \(self.format) output", code: lr_averror(ENOMEM))
        }
        let output = ByteBuffer(bytes: UnsafeRawBufferPointer(start: sink.pointee.data, count: sink.pointee.size))
        sink.pointee.size = 0
        return output
    }

    /// Writes the trailer (the `hls` muxer ends its playlist) and releases the muxer.
    func finish() throws(PreviewError) {
        guard let context, self.headerWritten else {
            return
        }
        self.headerWritten = false
        let result = lr_av_write_trailer(context)
        if let pb = context.pointee.pb, self.sink != nil {
            lr_avio_flush(pb)
        }
        guard result >= 0 else {
            throw PreviewError.libav("the \(self.format) muxer failed to write its trailer", code: result)
        }
    }
}

@available(*, unavailable)
extension LibAVMuxer: Sendable {}

/// A packet's bytes, copied once into a reference-counted libav buffer that every muxer of the preview references
/// (the mp4 and HLS muxers each keep what they need of it).
final class LibAVPacketData {
    fileprivate let buffer: UnsafeMutablePointer<AVBufferRef>
    let size: Int

    init(_ data: ByteBuffer) throws(PreviewError) {
        let size = data.readableBytes
        let padding = Int(AV_INPUT_BUFFER_PADDING_SIZE)
        guard let buffer = lr_av_buffer_alloc(size + padding) else {
            throw PreviewError.libav("cannot allocate a packet", code: lr_averror(ENOMEM))
        }
        let bytes = buffer.pointee.data!
        data.withUnsafeReadableBytes { source in
            if let base = source.baseAddress, size > 0 {
                bytes.update(from: base.assumingMemoryBound(to: UInt8.self), count: size)
            }
        }
        // libavcodec's parsers may read past the end: the padding is zeroed, as av_new_packet does.
        (bytes + size).initialize(repeating: 0, count: padding)
        self.buffer = buffer
        self.size = size
    }

    deinit {
        var buffer: UnsafeMutablePointer<AVBufferRef>? = self.buffer
        lr_av_buffer_unref(&buffer)
    }
}

@available(*, unavailable)
extension LibAVPacketData: Sendable {}
