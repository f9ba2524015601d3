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

// libsrtp2 (Debian's libsrtp2-dev) behind a small surface: one inbound or outbound SRTP session per key.

#ifndef CSRTP_H
#define CSRTP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lr_srtp lr_srtp;

enum {
    LR_SRTP_AES128_CM_SHA1_80 = 1,  ///< RFC 5764 profile 0x0001: 16-byte key, 14-byte salt.
    LR_SRTP_AEAD_AES_128_GCM = 7,   ///< RFC 7714 profile 0x0007: 16-byte key, 12-byte salt.
};

/// The bytes SRTP adds to a packet at most (libsrtp2's SRTP_MAX_TRAILER_LEN).
size_t lr_srtp_max_trailer(void);

/// A session for one direction. `key_and_salt` is the master key followed by the master salt. NULL on failure.
lr_srtp *lr_srtp_new(int profile, int inbound, const uint8_t *key_and_salt, size_t length, unsigned window_size);
void lr_srtp_free(lr_srtp *srtp);

/// In place; `length` in and out. Returns 0 on success or libsrtp2's srtp_err_status_t.
int lr_srtp_unprotect_rtp(lr_srtp *srtp, uint8_t *packet, int *length);
int lr_srtp_unprotect_rtcp(lr_srtp *srtp, uint8_t *packet, int *length);
/// In place; the buffer must have `lr_srtp_max_trailer()` bytes of room after the packet.
int lr_srtp_protect_rtcp(lr_srtp *srtp, uint8_t *packet, int *length);
int lr_srtp_protect_rtp(lr_srtp *srtp, uint8_t *packet, int *length);

#ifdef __cplusplus
}
#endif

#endif
