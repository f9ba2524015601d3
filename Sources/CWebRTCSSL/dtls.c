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

#include "CWebRTCSSL.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <dlfcn.h>

// MARK: - OpenSSL, loaded when first used

// OpenSSL is loaded the first time a certificate or a DTLS context is made, not when the process starts: the binary
// is also every relay, which never runs WebRTC, and libcrypto alone is 0.4 MiB written at load (its relocations) in
// each (BENCHMARKS.md, "Relay memory"). The functions this file calls, found with `nm -u` on its object.
#define LR_OPENSSL_FUNCTIONS(X) \
    X(BIO_ctrl) \
    X(BIO_free) \
    X(BIO_get_data) \
    X(BIO_get_new_index) \
    X(BIO_meth_new) \
    X(BIO_meth_set_create) \
    X(BIO_meth_set_ctrl) \
    X(BIO_meth_set_destroy) \
    X(BIO_meth_set_write) \
    X(BIO_new) \
    X(BIO_new_mem_buf) \
    X(BIO_s_mem) \
    X(BIO_set_data) \
    X(BIO_set_init) \
    X(BIO_write) \
    X(BN_bin2bn) \
    X(BN_free) \
    X(BN_to_ASN1_INTEGER) \
    X(DTLS_server_method) \
    X(ERR_clear_error) \
    X(ERR_error_string_n) \
    X(ERR_peek_last_error) \
    X(EVP_PKEY_Q_keygen) \
    X(EVP_PKEY_free) \
    X(EVP_sha256) \
    X(PEM_read_bio_PrivateKey) \
    X(PEM_read_bio_X509) \
    X(RAND_bytes) \
    X(SSL_CTX_check_private_key) \
    X(SSL_CTX_ctrl) \
    X(SSL_CTX_free) \
    X(SSL_CTX_new) \
    X(SSL_CTX_set_cipher_list) \
    X(SSL_CTX_set_options) \
    X(SSL_CTX_set_tlsext_use_srtp) \
    X(SSL_CTX_set_verify) \
    X(SSL_CTX_use_PrivateKey) \
    X(SSL_CTX_use_certificate) \
    X(SSL_ctrl) \
    X(SSL_do_handshake) \
    X(SSL_export_keying_material) \
    X(SSL_free) \
    X(SSL_get0_peer_certificate) \
    X(SSL_get_error) \
    X(SSL_get_selected_srtp_profile) \
    X(SSL_is_init_finished) \
    X(SSL_new) \
    X(SSL_read) \
    X(SSL_set_accept_state) \
    X(SSL_set_bio) \
    X(SSL_shutdown) \
    X(X509_NAME_add_entry_by_txt) \
    X(X509_check_private_key) \
    X(X509_digest) \
    X(X509_free) \
    X(X509_get_serialNumber) \
    X(X509_get_subject_name) \
    X(X509_getm_notAfter) \
    X(X509_getm_notBefore) \
    X(X509_gmtime_adj) \
    X(X509_new) \
    X(X509_set_issuer_name) \
    X(X509_set_pubkey) \
    X(X509_set_version) \
    X(X509_sign)

#define X(name) static __typeof__(name) *lr_openssl_##name;
LR_OPENSSL_FUNCTIONS(X)
#undef X

// Every call below goes through the pointers above, bound by the loader.
#define BIO_ctrl (*lr_openssl_BIO_ctrl)
#define BIO_free (*lr_openssl_BIO_free)
#define BIO_get_data (*lr_openssl_BIO_get_data)
#define BIO_get_new_index (*lr_openssl_BIO_get_new_index)
#define BIO_meth_new (*lr_openssl_BIO_meth_new)
#define BIO_meth_set_create (*lr_openssl_BIO_meth_set_create)
#define BIO_meth_set_ctrl (*lr_openssl_BIO_meth_set_ctrl)
#define BIO_meth_set_destroy (*lr_openssl_BIO_meth_set_destroy)
#define BIO_meth_set_write (*lr_openssl_BIO_meth_set_write)
#define BIO_new (*lr_openssl_BIO_new)
#define BIO_new_mem_buf (*lr_openssl_BIO_new_mem_buf)
#define BIO_s_mem (*lr_openssl_BIO_s_mem)
#define BIO_set_data (*lr_openssl_BIO_set_data)
#define BIO_set_init (*lr_openssl_BIO_set_init)
#define BIO_write (*lr_openssl_BIO_write)
#define BN_bin2bn (*lr_openssl_BN_bin2bn)
#define BN_free (*lr_openssl_BN_free)
#define BN_to_ASN1_INTEGER (*lr_openssl_BN_to_ASN1_INTEGER)
#define DTLS_server_method (*lr_openssl_DTLS_server_method)
#define ERR_clear_error (*lr_openssl_ERR_clear_error)
#define ERR_error_string_n (*lr_openssl_ERR_error_string_n)
#define ERR_peek_last_error (*lr_openssl_ERR_peek_last_error)
#define EVP_PKEY_Q_keygen (*lr_openssl_EVP_PKEY_Q_keygen)
#define EVP_PKEY_free (*lr_openssl_EVP_PKEY_free)
#define EVP_sha256 (*lr_openssl_EVP_sha256)
#define PEM_read_bio_PrivateKey (*lr_openssl_PEM_read_bio_PrivateKey)
#define PEM_read_bio_X509 (*lr_openssl_PEM_read_bio_X509)
#define RAND_bytes (*lr_openssl_RAND_bytes)
#define SSL_CTX_check_private_key (*lr_openssl_SSL_CTX_check_private_key)
#define SSL_CTX_ctrl (*lr_openssl_SSL_CTX_ctrl)
#define SSL_CTX_free (*lr_openssl_SSL_CTX_free)
#define SSL_CTX_new (*lr_openssl_SSL_CTX_new)
#define SSL_CTX_set_cipher_list (*lr_openssl_SSL_CTX_set_cipher_list)
#define SSL_CTX_set_options (*lr_openssl_SSL_CTX_set_options)
#define SSL_CTX_set_tlsext_use_srtp (*lr_openssl_SSL_CTX_set_tlsext_use_srtp)
#define SSL_CTX_set_verify (*lr_openssl_SSL_CTX_set_verify)
#define SSL_CTX_use_PrivateKey (*lr_openssl_SSL_CTX_use_PrivateKey)
#define SSL_CTX_use_certificate (*lr_openssl_SSL_CTX_use_certificate)
#define SSL_ctrl (*lr_openssl_SSL_ctrl)
#define SSL_do_handshake (*lr_openssl_SSL_do_handshake)
#define SSL_export_keying_material (*lr_openssl_SSL_export_keying_material)
#define SSL_free (*lr_openssl_SSL_free)
#define SSL_get0_peer_certificate (*lr_openssl_SSL_get0_peer_certificate)
#define SSL_get_error (*lr_openssl_SSL_get_error)
#define SSL_get_selected_srtp_profile (*lr_openssl_SSL_get_selected_srtp_profile)
#define SSL_is_init_finished (*lr_openssl_SSL_is_init_finished)
#define SSL_new (*lr_openssl_SSL_new)
#define SSL_read (*lr_openssl_SSL_read)
#define SSL_set_accept_state (*lr_openssl_SSL_set_accept_state)
#define SSL_set_bio (*lr_openssl_SSL_set_bio)
#define SSL_shutdown (*lr_openssl_SSL_shutdown)
#define X509_NAME_add_entry_by_txt (*lr_openssl_X509_NAME_add_entry_by_txt)
#define X509_check_private_key (*lr_openssl_X509_check_private_key)
#define X509_digest (*lr_openssl_X509_digest)
#define X509_free (*lr_openssl_X509_free)
#define X509_get_serialNumber (*lr_openssl_X509_get_serialNumber)
#define X509_get_subject_name (*lr_openssl_X509_get_subject_name)
#define X509_getm_notAfter (*lr_openssl_X509_getm_notAfter)
#define X509_getm_notBefore (*lr_openssl_X509_getm_notBefore)
#define X509_gmtime_adj (*lr_openssl_X509_gmtime_adj)
#define X509_new (*lr_openssl_X509_new)
#define X509_set_issuer_name (*lr_openssl_X509_set_issuer_name)
#define X509_set_pubkey (*lr_openssl_X509_set_pubkey)
#define X509_set_version (*lr_openssl_X509_set_version)
#define X509_sign (*lr_openssl_X509_sign)

static pthread_once_t lr_openssl_once = PTHREAD_ONCE_INIT;
static const char *lr_openssl_missing = "OpenSSL was not loaded";

static void lr_openssl_load(void) {
    void *ssl = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (ssl == NULL) {
        lr_openssl_missing = "cannot load OpenSSL 3 (libssl.so.3 and libcrypto.so.3: Debian's libssl3)";
        return;
    }
#define X(name)                                                                                                        \
    lr_openssl_##name = (__typeof__(lr_openssl_##name))dlsym(ssl, #name);                                               \
    if (lr_openssl_##name == NULL) {                                                                                   \
        lr_openssl_missing = "OpenSSL 3 lacks " #name;                                                                  \
        return;                                                                                                        \
    }
    LR_OPENSSL_FUNCTIONS(X)
#undef X
    lr_openssl_missing = NULL;
}

/// Loads OpenSSL once; whether it is there.
static int lr_openssl_ready(void) {
    pthread_once(&lr_openssl_once, lr_openssl_load);
    return lr_openssl_missing == NULL;
}

struct lr_certificate {
    X509 *x509;
    EVP_PKEY *key;
};

struct lr_dtls_context {
    SSL_CTX *ctx;
};

// Outgoing DTLS records as OpenSSL writes them, one per BIO_write, kept apart so that a datagram never splits one.
#define LR_MAX_RECORDS 64
#define LR_MAX_QUEUED_BYTES (256 * 1024)

typedef struct {
    uint8_t *bytes;
    size_t length;
} lr_record;

typedef struct {
    lr_record records[LR_MAX_RECORDS];
    size_t head;
    size_t count;
    size_t queued_bytes;
} lr_outbox;

struct lr_dtls {
    SSL *ssl;
    BIO *incoming;
    lr_outbox *outbox;
    int mtu;
};

// MARK: - Certificates

lr_certificate *lr_certificate_generate(const char *common_name, int days) {
    if (!lr_openssl_ready()) return NULL;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (key == NULL) return NULL;
    X509 *x509 = X509_new();
    if (x509 == NULL) {
        EVP_PKEY_free(key);
        return NULL;
    }
    int ok = X509_set_version(x509, 2);
    uint8_t serial_bytes[16];
    ok = ok && RAND_bytes(serial_bytes, sizeof serial_bytes) == 1;
    serial_bytes[0] &= 0x7f;
    BIGNUM *serial = ok ? BN_bin2bn(serial_bytes, sizeof serial_bytes, NULL) : NULL;
    ok = ok && serial != NULL && BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x509)) != NULL;
    BN_free(serial);
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x509), -86400) != NULL;
    ok = ok && X509_gmtime_adj(X509_getm_notAfter(x509), (long)days * 86400) != NULL;
    X509_NAME *name = X509_get_subject_name(x509);
    ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1, -1, 0);
    ok = ok && X509_set_issuer_name(x509, name);
    ok = ok && X509_set_pubkey(x509, key);
    ok = ok && X509_sign(x509, key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x509);
        EVP_PKEY_free(key);
        return NULL;
    }
    lr_certificate *certificate = calloc(1, sizeof *certificate);
    if (certificate == NULL) {
        X509_free(x509);
        EVP_PKEY_free(key);
        return NULL;
    }
    certificate->x509 = x509;
    certificate->key = key;
    return certificate;
}

lr_certificate *lr_certificate_from_pem(const char *certificate_pem, const char *key_pem) {
    if (!lr_openssl_ready()) return NULL;
    BIO *cbio = BIO_new_mem_buf(certificate_pem, -1);
    BIO *kbio = BIO_new_mem_buf(key_pem, -1);
    X509 *x509 = cbio ? PEM_read_bio_X509(cbio, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = kbio ? PEM_read_bio_PrivateKey(kbio, NULL, NULL, NULL) : NULL;
    BIO_free(cbio);
    BIO_free(kbio);
    lr_certificate *certificate = NULL;
    if (x509 != NULL && key != NULL && X509_check_private_key(x509, key) == 1) {
        certificate = calloc(1, sizeof *certificate);
    }
    if (certificate == NULL) {
        X509_free(x509);
        EVP_PKEY_free(key);
        return NULL;
    }
    certificate->x509 = x509;
    certificate->key = key;
    return certificate;
}

void lr_certificate_free(lr_certificate *certificate) {
    if (certificate == NULL) return;
    X509_free(certificate->x509);
    EVP_PKEY_free(certificate->key);
    free(certificate);
}

int lr_certificate_sha256(const lr_certificate *certificate, uint8_t out[32]) {
    unsigned int length = 32;
    return X509_digest(certificate->x509, EVP_sha256(), out, &length) == 1 && length == 32 ? 0 : -1;
}

// MARK: - The outgoing BIO

static void outbox_clear(lr_outbox *outbox) {
    while (outbox->count > 0) {
        free(outbox->records[outbox->head].bytes);
        outbox->head = (outbox->head + 1) % LR_MAX_RECORDS;
        outbox->count -= 1;
    }
    outbox->queued_bytes = 0;
}

static int outbox_write(BIO *bio, const char *data, int length) {
    lr_outbox *outbox = BIO_get_data(bio);
    if (outbox == NULL || length < 0) return -1;
    // A peer that never reads cannot make us queue without bound: the oldest records go (DTLS retransmits).
    if (outbox->count == LR_MAX_RECORDS || outbox->queued_bytes + (size_t)length > LR_MAX_QUEUED_BYTES) {
        return length;
    }
    uint8_t *copy = malloc(length > 0 ? (size_t)length : 1);
    if (copy == NULL) return -1;
    memcpy(copy, data, (size_t)length);
    size_t slot = (outbox->head + outbox->count) % LR_MAX_RECORDS;
    outbox->records[slot].bytes = copy;
    outbox->records[slot].length = (size_t)length;
    outbox->count += 1;
    outbox->queued_bytes += (size_t)length;
    return length;
}

static long outbox_ctrl(BIO *bio, int command, long number, void *pointer) {
    (void)bio;
    (void)number;
    (void)pointer;
    switch (command) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_WPENDING:
    case BIO_CTRL_PENDING:
        return 0;
    default:
        return 0;
    }
}

static int outbox_create(BIO *bio) {
    BIO_set_init(bio, 1);
    return 1;
}

static int outbox_destroy(BIO *bio) {
    lr_outbox *outbox = BIO_get_data(bio);
    if (outbox != NULL) {
        outbox_clear(outbox);
        free(outbox);
        BIO_set_data(bio, NULL);
    }
    return 1;
}

static BIO_METHOD *outbox_method = NULL;
static pthread_once_t outbox_once = PTHREAD_ONCE_INIT;

static void outbox_method_init(void) {
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "liverelay dtls outbox");
    if (method == NULL) return;
    BIO_meth_set_write(method, outbox_write);
    BIO_meth_set_ctrl(method, outbox_ctrl);
    BIO_meth_set_create(method, outbox_create);
    BIO_meth_set_destroy(method, outbox_destroy);
    outbox_method = method;
}

// MARK: - Contexts

// WebRTC peers present self-signed certificates; what authenticates them is the fingerprint in their SDP, which the
// caller checks once the handshake is done (lr_dtls_peer_sha256). Chain verification is therefore off, but a
// certificate is required.
static int accept_any_certificate(int preverify, X509_STORE_CTX *store) {
    (void)preverify;
    (void)store;
    return 1;
}

lr_dtls_context *lr_dtls_context_new(const lr_certificate *certificate, const char *profiles) {
    if (!lr_openssl_ready()) return NULL;
    SSL_CTX *ctx = SSL_CTX_new(DTLS_server_method());
    if (ctx == NULL) return NULL;
    int ok = SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) == 1;
    ok = ok && SSL_CTX_use_certificate(ctx, certificate->x509) == 1;
    ok = ok && SSL_CTX_use_PrivateKey(ctx, certificate->key) == 1;
    ok = ok && SSL_CTX_check_private_key(ctx) == 1;
    // Returns 0 on success, unlike most of OpenSSL.
    ok = ok && SSL_CTX_set_tlsext_use_srtp(ctx, profiles) == 0;
    ok = ok && SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:"
                                            "ECDHE-ECDSA-AES256-SHA") == 1;
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any_certificate);
    SSL_CTX_set_options(ctx, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET);
    SSL_CTX_set_read_ahead(ctx, 1);
    lr_dtls_context *context = calloc(1, sizeof *context);
    if (context == NULL) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    context->ctx = ctx;
    return context;
}

void lr_dtls_context_free(lr_dtls_context *context) {
    if (context == NULL) return;
    SSL_CTX_free(context->ctx);
    free(context);
}

// MARK: - Connections

lr_dtls *lr_dtls_new(lr_dtls_context *context, int mtu) {
    pthread_once(&outbox_once, outbox_method_init);
    if (outbox_method == NULL) return NULL;
    lr_dtls *dtls = calloc(1, sizeof *dtls);
    if (dtls == NULL) return NULL;
    dtls->mtu = mtu;
    dtls->ssl = SSL_new(context->ctx);
    dtls->incoming = BIO_new(BIO_s_mem());
    BIO *outgoing = BIO_new(outbox_method);
    dtls->outbox = calloc(1, sizeof(lr_outbox));
    if (dtls->ssl == NULL || dtls->incoming == NULL || outgoing == NULL || dtls->outbox == NULL) {
        SSL_free(dtls->ssl);
        BIO_free(dtls->incoming);
        BIO_free(outgoing);
        free(dtls->outbox);
        free(dtls);
        return NULL;
    }
    BIO_set_mem_eof_return(dtls->incoming, -1);
    BIO_set_data(outgoing, dtls->outbox);
    // SSL_set_bio takes both references.
    SSL_set_bio(dtls->ssl, dtls->incoming, outgoing);
    SSL_set_mtu(dtls->ssl, mtu);
    DTLS_set_link_mtu(dtls->ssl, mtu);
    SSL_set_accept_state(dtls->ssl);
    return dtls;
}

void lr_dtls_free(lr_dtls *dtls) {
    if (dtls == NULL) return;
    SSL_free(dtls->ssl);
    free(dtls);
}

static int classify(lr_dtls *dtls, int result) {
    int error = SSL_get_error(dtls->ssl, result);
    switch (error) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return LR_DTLS_OK;
    case SSL_ERROR_ZERO_RETURN:
        return LR_DTLS_CLOSED;
    default:
        return LR_DTLS_ERROR;
    }
}

int lr_dtls_drain(lr_dtls *dtls) {
    uint8_t scratch[2048];
    for (;;) {
        int result = SSL_read(dtls->ssl, scratch, sizeof scratch);
        if (result > 0) continue;
        return classify(dtls, result);
    }
}

static int advance(lr_dtls *dtls) {
    if (!SSL_is_init_finished(dtls->ssl)) {
        ERR_clear_error();
        int result = SSL_do_handshake(dtls->ssl);
        if (result == 1) return LR_DTLS_DONE;
        return classify(dtls, result);
    }
    ERR_clear_error();
    return lr_dtls_drain(dtls);
}

int lr_dtls_feed(lr_dtls *dtls, const uint8_t *datagram, size_t length) {
    if (length > 0 && BIO_write(dtls->incoming, datagram, (int)length) != (int)length) return LR_DTLS_ERROR;
    int was_established = SSL_is_init_finished(dtls->ssl);
    int status = advance(dtls);
    // Whatever the read left behind is not a whole record: drop it, so one datagram never bleeds into the next.
    (void)BIO_reset(dtls->incoming);
    if (status == LR_DTLS_OK && !was_established && SSL_is_init_finished(dtls->ssl)) return LR_DTLS_DONE;
    return status;
}

int lr_dtls_is_established(const lr_dtls *dtls) { return SSL_is_init_finished(dtls->ssl); }

size_t lr_dtls_next_datagram(lr_dtls *dtls, uint8_t *buffer, size_t capacity) {
    lr_outbox *outbox = dtls->outbox;
    size_t used = 0;
    // Coalesce whole records up to the capacity; a record never splits across datagrams.
    while (outbox->count > 0) {
        lr_record *record = &outbox->records[outbox->head];
        if (used + record->length > capacity) {
            if (used == 0) {
                // Larger than the caller's buffer: it cannot be sent, drop it.
                outbox->queued_bytes -= record->length;
                free(record->bytes);
                outbox->head = (outbox->head + 1) % LR_MAX_RECORDS;
                outbox->count -= 1;
                continue;
            }
            break;
        }
        memcpy(buffer + used, record->bytes, record->length);
        used += record->length;
        outbox->queued_bytes -= record->length;
        free(record->bytes);
        outbox->head = (outbox->head + 1) % LR_MAX_RECORDS;
        outbox->count -= 1;
        if (used >= (size_t)dtls->mtu) break;
    }
    return used;
}

int64_t lr_dtls_timeout_microseconds(lr_dtls *dtls) {
    struct timeval timeout;
    if (DTLSv1_get_timeout(dtls->ssl, &timeout) != 1) return -1;
    return (int64_t)timeout.tv_sec * 1000000 + (int64_t)timeout.tv_usec;
}

int lr_dtls_handle_timeout(lr_dtls *dtls) {
    ERR_clear_error();
    int result = DTLSv1_handle_timeout(dtls->ssl);
    return result < 0 ? LR_DTLS_ERROR : LR_DTLS_OK;
}

void lr_dtls_shutdown(lr_dtls *dtls) {
    ERR_clear_error();
    if (SSL_is_init_finished(dtls->ssl)) (void)SSL_shutdown(dtls->ssl);
}

int lr_dtls_peer_sha256(const lr_dtls *dtls, uint8_t out[32]) {
    X509 *peer = SSL_get0_peer_certificate(dtls->ssl);
    if (peer == NULL) return -1;
    unsigned int length = 32;
    return X509_digest(peer, EVP_sha256(), out, &length) == 1 && length == 32 ? 0 : -1;
}

int lr_dtls_srtp_profile(const lr_dtls *dtls) {
    SRTP_PROTECTION_PROFILE *profile = SSL_get_selected_srtp_profile(dtls->ssl);
    return profile == NULL ? 0 : (int)profile->id;
}

int lr_dtls_export_srtp_keying_material(lr_dtls *dtls, uint8_t *out, size_t length) {
    static const char label[] = "EXTRACTOR-dtls_srtp";
    return SSL_export_keying_material(dtls->ssl, out, length, label, sizeof label - 1, NULL, 0, 0) == 1 ? 0 : -1;
}

void lr_dtls_error(uint8_t *buffer, size_t capacity) {
    if (capacity == 0) return;
    if (!lr_openssl_ready()) {
        snprintf((char *)buffer, capacity, "%s", lr_openssl_missing);
        return;
    }
    unsigned long code = ERR_peek_last_error();
    if (code == 0) {
        snprintf((char *)buffer, capacity, "no OpenSSL error recorded");
    } else {
        ERR_error_string_n(code, (char *)buffer, capacity);
    }
    ERR_clear_error();
}

uint32_t lr_crc32(const uint8_t *bytes, size_t length) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (length > 0) {
        uInt chunk = length > 0x40000000 ? 0x40000000 : (uInt)length;
        crc = crc32(crc, bytes, chunk);
        bytes += chunk;
        length -= chunk;
    }
    return (uint32_t)crc;
}
