// libavformat, libavcodec and libavutil, as Debian's libavformat-dev installs them.
#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/error.h>
#include <libavutil/mathematics.h>
#include <libavutil/opt.h>
#include <libavutil/log.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

// Function-like macros and small helpers Swift cannot import or call directly.

static inline int lr_averror(int posix_error) { return AVERROR(posix_error); }
static inline int lr_averror_eof(void) { return AVERROR_EOF; }
static inline int64_t lr_nopts_value(void) { return AV_NOPTS_VALUE; }

/// The text of a libav* error code (av_err2str is a macro with a compound literal).
static inline void lr_strerror(int error, char *buffer, size_t size) {
    if (av_strerror(error, buffer, size) < 0) {
        snprintf(buffer, size, "libav error %d", error);
    }
}

/// A growable in-memory sink for a muxer's output, behind a custom AVIOContext.
typedef struct lr_memory_sink {
    uint8_t *data;
    size_t size;
    size_t capacity;
    int failed;
} lr_memory_sink;

#if LIBAVFORMAT_VERSION_MAJOR >= 61
static inline int lr_memory_sink_write(void *opaque, const uint8_t *buffer, int size) {
#else
static inline int lr_memory_sink_write(void *opaque, uint8_t *buffer, int size) {
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
        uint8_t *grown = av_realloc(sink->data, capacity);
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

/// An AVIOContext that writes into `sink`; free it with lr_memory_avio_free.
static inline AVIOContext *lr_memory_avio_alloc(lr_memory_sink *sink) {
    const int size = 64 * 1024;
    unsigned char *buffer = av_malloc(size);
    if (!buffer) {
        return NULL;
    }
    AVIOContext *avio = avio_alloc_context(buffer, size, 1, sink, NULL, lr_memory_sink_write, NULL);
    if (!avio) {
        av_free(buffer);
    }
    return avio;
}

static inline void lr_memory_avio_free(AVIOContext **avio) {
    if (*avio) {
        av_freep(&(*avio)->buffer);
        avio_context_free(avio);
    }
}

static inline int lr_dict_set(AVDictionary **dictionary, const char *key, const char *value) {
    return av_dict_set(dictionary, key, value, 0);
}
