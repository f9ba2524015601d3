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
#include <dlfcn.h>

// libsrtp2 is loaded when the first SRTP session is made, not when the process starts: the binary is also every
// relay, which never runs WebRTC, and Debian's libsrtp2 brings NSS with it. The functions this file calls, found with
// `nm -u` on its object.
#define LR_SRTP_FUNCTIONS(X) \
    X(srtp_create) \
    X(srtp_crypto_policy_set_aes_gcm_128_16_auth) \
    X(srtp_crypto_policy_set_rtp_default) \
    X(srtp_dealloc) \
    X(srtp_init) \
    X(srtp_protect) \
    X(srtp_protect_rtcp) \
    X(srtp_unprotect) \
    X(srtp_unprotect_rtcp)

#define X(name) static __typeof__(name) *lr_srtp_fn_##name;
LR_SRTP_FUNCTIONS(X)
#undef X

// Every call below goes through the pointers above, bound by the loader.
#define srtp_create (*lr_srtp_fn_srtp_create)
#define srtp_crypto_policy_set_aes_gcm_128_16_auth (*lr_srtp_fn_srtp_crypto_policy_set_aes_gcm_128_16_auth)
#define srtp_crypto_policy_set_rtp_default (*lr_srtp_fn_srtp_crypto_policy_set_rtp_default)
#define srtp_dealloc (*lr_srtp_fn_srtp_dealloc)
#define srtp_init (*lr_srtp_fn_srtp_init)
#define srtp_protect (*lr_srtp_fn_srtp_protect)
#define srtp_protect_rtcp (*lr_srtp_fn_srtp_protect_rtcp)
#define srtp_unprotect (*lr_srtp_fn_srtp_unprotect)
#define srtp_unprotect_rtcp (*lr_srtp_fn_srtp_unprotect_rtcp)

struct lr_srtp {
    srtp_t session;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status = -1;

static void initialize(void) {
    void *library = dlopen("libsrtp2.so.1", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) return;
#define X(name)                                                                                                        \
    lr_srtp_fn_##name = (__typeof__(lr_srtp_fn_##name))dlsym(library, #name);                                           \
    if (lr_srtp_fn_##name == NULL) return;
    LR_SRTP_FUNCTIONS(X)
#undef X
    init_status = srtp_init() == srtp_err_status_ok ? 0 : -1;
}

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
