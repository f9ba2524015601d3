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

#include "CSRTP.h"

#include <pthread.h>
#include <srtp2/srtp.h>
#include <stdlib.h>
#include <string.h>

struct lr_srtp {
    srtp_t session;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status = -1;

static void initialize(void) { init_status = srtp_init() == srtp_err_status_ok ? 0 : -1; }

size_t lr_srtp_max_trailer(void) { return SRTP_MAX_TRAILER_LEN; }

lr_srtp *lr_srtp_new(int profile, int inbound, const uint8_t *key_and_salt, size_t length, unsigned window_size) {
    pthread_once(&init_once, initialize);
    if (init_status != 0) return NULL;
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    size_t expected;
    switch (profile) {
    case LR_SRTP_AES128_CM_SHA1_80:
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
        expected = 30;
        break;
    case LR_SRTP_AEAD_AES_128_GCM:
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
        expected = 28;
        break;
    default:
        return NULL;
    }
    if (length != expected) return NULL;
    // libsrtp2 reads the key while creating the session; a copy of ours keeps it alive that long.
    uint8_t key[64];
    memcpy(key, key_and_salt, length);
    policy.key = key;
    policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
    policy.window_size = window_size;
    policy.allow_repeat_tx = 1;
    policy.next = NULL;
    lr_srtp *srtp = calloc(1, sizeof *srtp);
    if (srtp == NULL) return NULL;
    srtp_err_status_t status = srtp_create(&srtp->session, &policy);
    memset(key, 0, sizeof key);
    if (status != srtp_err_status_ok) {
        free(srtp);
        return NULL;
    }
    return srtp;
}

void lr_srtp_free(lr_srtp *srtp) {
    if (srtp == NULL) return;
    srtp_dealloc(srtp->session);
    free(srtp);
}

int lr_srtp_unprotect_rtp(lr_srtp *srtp, uint8_t *packet, int *length) {
    return (int)srtp_unprotect(srtp->session, packet, length);
}

int lr_srtp_unprotect_rtcp(lr_srtp *srtp, uint8_t *packet, int *length) {
    return (int)srtp_unprotect_rtcp(srtp->session, packet, length);
}

int lr_srtp_protect_rtcp(lr_srtp *srtp, uint8_t *packet, int *length) {
    return (int)srtp_protect_rtcp(srtp->session, packet, length);
}

int lr_srtp_protect_rtp(lr_srtp *srtp, uint8_t *packet, int *length) {
    return (int)srtp_protect(srtp->session, packet, length);
}
