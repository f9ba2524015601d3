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

// libavformat, libavcodec and libavutil for the live preview and for WebRTC ingest's Opus to AAC transcoding, loaded
// with dlopen the first time either starts.
//
// The relay links none of them: linked, they and their dependencies (about 150 shared objects on Debian) cost every
// relay process 23 MiB of resident memory at idle, preview or not. Their headers give the types; the functions the
// preview calls are the lr_ wrappers below, which call through pointers that lr_libav_load fills. A call to any
// other libav* function from Swift fails at link time, so none can bypass the loader.

#ifndef LIVERELAY_CFFMPEG_H
#define LIVERELAY_CFFMPEG_H

#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/error.h>
#include <libavutil/mathematics.h>
#include <libavutil/log.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/frame.h>
#include <libavutil/samplefmt.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/// Loads the libraries once (later calls return the first result). Returns 0, or -1 with the reason in `error`.
int lr_libav_load(char *error, size_t size);

// Function-like macros Swift cannot import.
static inline int lr_averror(int posix_error) { return AVERROR(posix_error); }
static inline int lr_averror_eof(void) { return AVERROR_EOF; }
static inline int64_t lr_nopts_value(void) { return AV_NOPTS_VALUE; }

// The libav* functions the preview uses, through the loaded libraries. Call lr_libav_load first.
int lr_avformat_alloc_output_context2(AVFormatContext **context, const char *format, const char *filename);
AVStream *lr_avformat_new_stream(AVFormatContext *context);
int lr_avformat_write_header(AVFormatContext *context, AVDictionary **options);
void lr_avformat_free_context(AVFormatContext *context);
int lr_av_write_frame(AVFormatContext *context, AVPacket *packet);
int lr_av_write_trailer(AVFormatContext *context);
void lr_avio_flush(AVIOContext *avio);
AVPacket *lr_av_packet_alloc(void);
void lr_av_packet_free(AVPacket **packet);
void lr_av_packet_unref(AVPacket *packet);
AVBufferRef *lr_av_buffer_alloc(size_t size);
AVBufferRef *lr_av_buffer_ref(const AVBufferRef *buffer);
void lr_av_buffer_unref(AVBufferRef **buffer);
void *lr_av_mallocz(size_t size);
void lr_av_free(void *pointer);
void lr_av_dict_free(AVDictionary **dictionary);
int lr_av_dict_set(AVDictionary **dictionary, const char *key, const char *value);
void lr_av_log_set_level(int level);
int64_t lr_av_rescale_q(int64_t value, AVRational from, AVRational to);
void lr_av_channel_layout_default(AVChannelLayout *layout, int channels);

// The libav* functions WebRTC ingest's audio transcoder (Opus to AAC) uses.
const AVCodec *lr_avcodec_find_decoder(enum AVCodecID id);
const AVCodec *lr_avcodec_find_encoder_by_name(const char *name);
AVCodecContext *lr_avcodec_alloc_context3(const AVCodec *codec);
int lr_avcodec_open2(AVCodecContext *context, const AVCodec *codec);
void lr_avcodec_free_context(AVCodecContext **context);
int lr_avcodec_send_packet(AVCodecContext *context, const AVPacket *packet);
int lr_avcodec_receive_frame(AVCodecContext *context, AVFrame *frame);
int lr_avcodec_send_frame(AVCodecContext *context, const AVFrame *frame);
int lr_avcodec_receive_packet(AVCodecContext *context, AVPacket *packet);
int lr_av_new_packet(AVPacket *packet, int size);
AVFrame *lr_av_frame_alloc(void);
void lr_av_frame_free(AVFrame **frame);
void lr_av_frame_unref(AVFrame *frame);
/// A frame of `samples` samples in `format` and `channels` default-layout channels at `rate`, with buffers.
AVFrame *lr_audio_frame_alloc(enum AVSampleFormat format, int channels, int rate, int samples);
AVAudioFifo *lr_av_audio_fifo_alloc(enum AVSampleFormat format, int channels, int samples);
void lr_av_audio_fifo_free(AVAudioFifo *fifo);
int lr_av_audio_fifo_size(AVAudioFifo *fifo);
/// Appends all of `frame`'s samples (its format and channel count must be the FIFO's).
int lr_av_audio_fifo_write_frame(AVAudioFifo *fifo, const AVFrame *frame);
/// Appends `samples` samples of silence.
int lr_av_audio_fifo_write_silence(AVAudioFifo *fifo, enum AVSampleFormat format, int channels, int samples);
/// Moves `frame->nb_samples` samples from the FIFO into `frame`'s buffers.
int lr_av_audio_fifo_read_frame(AVAudioFifo *fifo, AVFrame *frame);
/// Drops the first `samples` samples of the FIFO.
int lr_av_audio_fifo_drain(AVAudioFifo *fifo, int samples);

/// Keeps libav*'s log quiet about `context`: its decoder or encoder reports through return codes instead. A codec
/// fed by a remote peer would otherwise write a line to standard error for every bad packet the peer chooses to send.
/// Other contexts log as before.
void lr_avcodec_context_set_quiet(AVCodecContext *context);

/// The text of a libav* error code (av_err2str is a macro with a compound literal).
void lr_strerror(int error, char *buffer, size_t size);

/// A growable in-memory sink for a muxer's output, behind a custom AVIOContext.
typedef struct lr_memory_sink {
    uint8_t *data;
    size_t size;
    size_t capacity;
    int failed;
} lr_memory_sink;

/// An AVIOContext that writes into `sink`; free it with lr_memory_avio_free.
AVIOContext *lr_memory_avio_alloc(lr_memory_sink *sink);
void lr_memory_avio_free(AVIOContext **avio);

#endif
