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

#include "CFFmpeg.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

// Each function: its pointer, typed from the header's own declaration so the call sites below are checked.
#define LR_LIBAV_FUNCTIONS(X) \
    X(avformat_alloc_output_context2) \
    X(avformat_new_stream) \
    X(avformat_write_header) \
    X(avformat_free_context) \
    X(av_write_frame) \
    X(av_write_trailer) \
    X(avio_flush) \
    X(avio_alloc_context) \
    X(avio_context_free) \
    X(av_packet_alloc) \
    X(av_packet_free) \
    X(av_packet_unref) \
    X(av_buffer_alloc) \
    X(av_buffer_ref) \
    X(av_buffer_unref) \
    X(av_malloc) \
    X(av_mallocz) \
    X(av_realloc) \
    X(av_free) \
    X(av_freep) \
    X(av_dict_free) \
    X(av_dict_set) \
    X(av_log_set_level) \
    X(av_rescale_q) \
    X(av_strerror) \
    X(av_channel_layout_default) \
    X(avcodec_find_decoder) \
    X(avcodec_find_encoder_by_name) \
    X(avcodec_alloc_context3) \
    X(avcodec_open2) \
    X(avcodec_free_context) \
    X(avcodec_send_packet) \
    X(avcodec_receive_frame) \
    X(avcodec_send_frame) \
    X(avcodec_receive_packet) \
    X(av_new_packet) \
    X(av_frame_alloc) \
    X(av_frame_free) \
    X(av_frame_unref) \
    X(av_frame_get_buffer) \
    X(av_audio_fifo_alloc) \
    X(av_audio_fifo_free) \
    X(av_audio_fifo_size) \
    X(av_audio_fifo_write) \
    X(av_audio_fifo_read) \
    X(av_audio_fifo_drain) \
    X(av_samples_alloc_array_and_samples) \
    X(av_samples_set_silence) \
    X(av_log_set_callback) \
    X(av_log_default_callback)

#define LR_DECLARE(name) static __typeof__(name) *p_##name;
LR_LIBAV_FUNCTIONS(LR_DECLARE)

#define LR_STRINGIFY_(x) #x
#define LR_STRINGIFY(x) LR_STRINGIFY_(x)

static pthread_once_t lr_once = PTHREAD_ONCE_INIT;
static int lr_result = -1;
static char lr_error[512];

static void lr_load_once(void) {
    // Each library's file name from the major version its headers declare: the ABI the types below assume.
    static const char *const names[] = {
        "libavutil.so." LR_STRINGIFY(LIBAVUTIL_VERSION_MAJOR),
        "libavcodec.so." LR_STRINGIFY(LIBAVCODEC_VERSION_MAJOR),
        "libavformat.so." LR_STRINGIFY(LIBAVFORMAT_VERSION_MAJOR),
    };
    void *handles[3];
    for (int index = 0; index < 3; index++) {
        handles[index] = dlopen(names[index], RTLD_NOW | RTLD_LOCAL);
        if (!handles[index]) {
            const char *reason = dlerror();
            snprintf(lr_error, sizeof lr_error, "cannot load %s: %s", names[index], reason ? reason : "unknown error");
            return;
        }
    }
#define LR_RESOLVE(name) \
    for (int index = 0; index < 3 && !p_##name; index++) { \
        p_##name = (__typeof__(name) *)dlsym(handles[index], #name); \
    } \
    if (!p_##name) { \
        snprintf(lr_error, sizeof lr_error, "libav* has no function %s", #name); \
        return; \
    }
    LR_LIBAV_FUNCTIONS(LR_RESOLVE)
    // Libraries stay loaded for the life of the process, as linked ones would.
    lr_result = 0;
}

int lr_libav_load(char *error, size_t size) {
    pthread_once(&lr_once, lr_load_once);
    if (lr_result != 0 && error && size > 0) {
        snprintf(error, size, "%s", lr_error);
    }
    return lr_result;
}

int lr_avformat_alloc_output_context2(AVFormatContext **context, const char *format, const char *filename) {
    return p_avformat_alloc_output_context2(context, NULL, format, filename);
}
AVStream *lr_avformat_new_stream(AVFormatContext *context) { return p_avformat_new_stream(context, NULL); }
int lr_avformat_write_header(AVFormatContext *context, AVDictionary **options) {
    return p_avformat_write_header(context, options);
}
void lr_avformat_free_context(AVFormatContext *context) { p_avformat_free_context(context); }
int lr_av_write_frame(AVFormatContext *context, AVPacket *packet) { return p_av_write_frame(context, packet); }
int lr_av_write_trailer(AVFormatContext *context) { return p_av_write_trailer(context); }
void lr_avio_flush(AVIOContext *avio) { p_avio_flush(avio); }
AVPacket *lr_av_packet_alloc(void) { return p_av_packet_alloc(); }
void lr_av_packet_free(AVPacket **packet) { p_av_packet_free(packet); }
void lr_av_packet_unref(AVPacket *packet) { p_av_packet_unref(packet); }
AVBufferRef *lr_av_buffer_alloc(size_t size) { return p_av_buffer_alloc(size); }
AVBufferRef *lr_av_buffer_ref(const AVBufferRef *buffer) { return p_av_buffer_ref(buffer); }
void lr_av_buffer_unref(AVBufferRef **buffer) { p_av_buffer_unref(buffer); }
void *lr_av_mallocz(size_t size) { return p_av_mallocz(size); }
void lr_av_free(void *pointer) { p_av_free(pointer); }
void lr_av_dict_free(AVDictionary **dictionary) { p_av_dict_free(dictionary); }
int lr_av_dict_set(AVDictionary **dictionary, const char *key, const char *value) {
    return p_av_dict_set(dictionary, key, value, 0);
}
void lr_av_log_set_level(int level) { p_av_log_set_level(level); }
int64_t lr_av_rescale_q(int64_t value, AVRational from, AVRational to) { return p_av_rescale_q(value, from, to); }
void lr_av_channel_layout_default(AVChannelLayout *layout, int channels) {
    p_av_channel_layout_default(layout, channels);
}

const AVCodec *lr_avcodec_find_decoder(enum AVCodecID id) { return p_avcodec_find_decoder(id); }
const AVCodec *lr_avcodec_find_encoder_by_name(const char *name) { return p_avcodec_find_encoder_by_name(name); }
AVCodecContext *lr_avcodec_alloc_context3(const AVCodec *codec) { return p_avcodec_alloc_context3(codec); }
int lr_avcodec_open2(AVCodecContext *context, const AVCodec *codec) { return p_avcodec_open2(context, codec, NULL); }
void lr_avcodec_free_context(AVCodecContext **context) { p_avcodec_free_context(context); }
int lr_avcodec_send_packet(AVCodecContext *context, const AVPacket *packet) {
    return p_avcodec_send_packet(context, packet);
}
int lr_avcodec_receive_frame(AVCodecContext *context, AVFrame *frame) { return p_avcodec_receive_frame(context, frame); }
int lr_avcodec_send_frame(AVCodecContext *context, const AVFrame *frame) { return p_avcodec_send_frame(context, frame); }
int lr_avcodec_receive_packet(AVCodecContext *context, AVPacket *packet) {
    return p_avcodec_receive_packet(context, packet);
}
int lr_av_new_packet(AVPacket *packet, int size) { return p_av_new_packet(packet, size); }
AVFrame *lr_av_frame_alloc(void) { return p_av_frame_alloc(); }
void lr_av_frame_free(AVFrame **frame) { p_av_frame_free(frame); }
void lr_av_frame_unref(AVFrame *frame) { p_av_frame_unref(frame); }

AVFrame *lr_audio_frame_alloc(enum AVSampleFormat format, int channels, int rate, int samples) {
    AVFrame *frame = p_av_frame_alloc();
    if (!frame) {
        return NULL;
    }
    frame->format = format;
    frame->sample_rate = rate;
    frame->nb_samples = samples;
    p_av_channel_layout_default(&frame->ch_layout, channels);
    if (p_av_frame_get_buffer(frame, 0) < 0) {
        p_av_frame_free(&frame);
        return NULL;
    }
    return frame;
}

AVAudioFifo *lr_av_audio_fifo_alloc(enum AVSampleFormat format, int channels, int samples) {
    return p_av_audio_fifo_alloc(format, channels, samples);
}
void lr_av_audio_fifo_free(AVAudioFifo *fifo) { p_av_audio_fifo_free(fifo); }
int lr_av_audio_fifo_size(AVAudioFifo *fifo) { return p_av_audio_fifo_size(fifo); }
int lr_av_audio_fifo_write_frame(AVAudioFifo *fifo, const AVFrame *frame) {
    return p_av_audio_fifo_write(fifo, (void **)frame->extended_data, frame->nb_samples);
}
int lr_av_audio_fifo_write_silence(AVAudioFifo *fifo, enum AVSampleFormat format, int channels, int samples) {
    uint8_t **data = NULL;
    int result = p_av_samples_alloc_array_and_samples(&data, NULL, channels, samples, format, 0);
    if (result < 0) {
        return result;
    }
    p_av_samples_set_silence(data, 0, samples, channels, format);
    result = p_av_audio_fifo_write(fifo, (void **)data, samples);
    p_av_freep(&data[0]);
    p_av_freep(&data);
    return result;
}
int lr_av_audio_fifo_read_frame(AVAudioFifo *fifo, AVFrame *frame) {
    return p_av_audio_fifo_read(fifo, (void **)frame->extended_data, frame->nb_samples);
}
int lr_av_audio_fifo_drain(AVAudioFifo *fifo, int samples) { return p_av_audio_fifo_drain(fifo, samples); }

// Contexts marked quiet carry this address in their `opaque` field, which libavcodec leaves to its user.
static const char lr_quiet_marker = 0;
static pthread_once_t lr_log_once = PTHREAD_ONCE_INIT;

static void lr_log_callback(void *object, int level, const char *format, va_list arguments) {
    if (object) {
        const AVClass *class = *(const AVClass **)object;
        if (class && class->class_name && strcmp(class->class_name, "AVCodecContext") == 0
            && ((AVCodecContext *)object)->opaque == &lr_quiet_marker) {
            return;
        }
    }
    p_av_log_default_callback(object, level, format, arguments);
}

static void lr_install_log_callback(void) { p_av_log_set_callback(lr_log_callback); }

void lr_avcodec_context_set_quiet(AVCodecContext *context) {
    pthread_once(&lr_log_once, lr_install_log_callback);
    context->opaque = (void *)&lr_quiet_marker;
}

void lr_strerror(int error, char *buffer, size_t size) {
    if (!p_av_strerror || p_av_strerror(error, buffer, size) < 0) {
        snprintf(buffer, size, "libav error %d", error);
    }
}

#if LIBAVFORMAT_VERSION_MAJOR >= 61
static int lr_memory_sink_write(void *opaque, const uint8_t *buffer, int size) {
#else
static int lr_memory_sink_write(void *opaque, uint8_t *buffer, int size) {
#endif
    lr_memory_sink *sink = (lr_memory_sink *)opaque;
    if (size <= 0) {
        return 0;
    }
    if (sink->size + (size_t)size > sink->capacity) {
        size_t capacity = sink->capacity ? sink->capacity : 65536;
        while (capacity < sink->size + (size_t)size) {
            capacity *= 2;
        }
        uint8_t *grown = p_av_realloc(sink->data, capacity);
        if (!grown) {
            sink->failed = 1;
            return AVERROR(ENOMEM);
        }
        sink->data = grown;
        sink->capacity = capacity;
    }
    memcpy(sink->data + sink->size, buffer, (size_t)size);
    sink->size += (size_t)size;
    return size;
}

AVIOContext *lr_memory_avio_alloc(lr_memory_sink *sink) {
    const int size = 64 * 1024;
    unsigned char *buffer = p_av_malloc(size);
    if (!buffer) {
        return NULL;
    }
    AVIOContext *avio = p_avio_alloc_context(buffer, size, 1, sink, NULL, lr_memory_sink_write, NULL);
    if (!avio) {
        p_av_free(buffer);
    }
    return avio;
}

void lr_memory_avio_free(AVIOContext **avio) {
    if (*avio) {
        p_av_freep(&(*avio)->buffer);
        p_avio_context_free(avio);
    }
}
