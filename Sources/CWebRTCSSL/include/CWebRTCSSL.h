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

// A small C surface over the system's OpenSSL 3 (libssl, libcrypto) and zlib for WebRTC: a self-signed ECDSA
// certificate, a DTLS 1.2 server with use_srtp driven through memory (no sockets), SRTP key export, certificate
// fingerprints, and CRC-32 for STUN's FINGERPRINT. No OpenSSL header is exposed: NIOSSL brings BoringSSL with the
// same header names, and a Swift module must not see both.

#ifndef CWEBRTCSSL_H
#define CWEBRTCSSL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A certificate and its private key. Immutable once made; safe to share between threads.
typedef struct lr_certificate lr_certificate;
/// A DTLS server context (one certificate, the SRTP profiles). Immutable once made; safe to share.
typedef struct lr_dtls_context lr_dtls_context;
/// One DTLS server connection. Not thread-safe: one owner at a time.
typedef struct lr_dtls lr_dtls;

/// Makes a self-signed ECDSA P-256 certificate valid from a day ago for `days` days. NULL on failure.
lr_certificate *lr_certificate_generate(const char *common_name, int days);
/// Loads a certificate and key from PEM text (for tests and configured certificates). NULL on failure.
lr_certificate *lr_certificate_from_pem(const char *certificate_pem, const char *key_pem);
void lr_certificate_free(lr_certificate *certificate);
/// Writes the SHA-256 digest of the certificate's DER encoding (32 bytes) to `out`. 0 on success.
int lr_certificate_sha256(const lr_certificate *certificate, uint8_t out[32]);

/// `profiles` is OpenSSL's colon-separated list, e.g. "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80".
lr_dtls_context *lr_dtls_context_new(const lr_certificate *certificate, const char *profiles);
void lr_dtls_context_free(lr_dtls_context *context);

/// A server connection with datagrams of at most `mtu` bytes.
lr_dtls *lr_dtls_new(lr_dtls_context *context, int mtu);
void lr_dtls_free(lr_dtls *dtls);

enum {
    LR_DTLS_OK = 0,          ///< Nothing more to do now (waiting for the peer, or data read).
    LR_DTLS_DONE = 1,        ///< The handshake has completed.
    LR_DTLS_CLOSED = 2,      ///< The peer sent close_notify.
    LR_DTLS_ERROR = -1,      ///< A fatal error; see lr_dtls_error.
};

/// Feeds one datagram received from the peer and advances the handshake. Returns an LR_DTLS_ value.
int lr_dtls_feed(lr_dtls *dtls, const uint8_t *datagram, size_t length);
/// Reads application data (WebRTC sends none over DTLS-SRTP; it is drained and dropped). Returns an LR_DTLS_ value.
int lr_dtls_drain(lr_dtls *dtls);
/// Whether the handshake has completed.
int lr_dtls_is_established(const lr_dtls *dtls);
/// The next datagram to send: its length (at most `capacity`), 0 when none is pending.
size_t lr_dtls_next_datagram(lr_dtls *dtls, uint8_t *buffer, size_t capacity);
/// Microseconds until the retransmission timer fires, or -1 when none is running.
int64_t lr_dtls_timeout_microseconds(lr_dtls *dtls);
/// Lets OpenSSL retransmit if its timer has expired. Returns an LR_DTLS_ value.
int lr_dtls_handle_timeout(lr_dtls *dtls);
/// Sends close_notify (queued as a datagram).
void lr_dtls_shutdown(lr_dtls *dtls);
/// The SHA-256 of the peer's certificate into `out`; 0 on success, -1 when the peer sent none.
int lr_dtls_peer_sha256(const lr_dtls *dtls, uint8_t out[32]);
/// The negotiated SRTP protection profile id (RFC 5764 §4.1.2: 1 = AES128_CM_SHA1_80, 7 = AEAD_AES_128_GCM), 0 if none.
int lr_dtls_srtp_profile(const lr_dtls *dtls);
/// RFC 5705 exporter with the label "EXTRACTOR-dtls_srtp" and no context. 0 on success.
int lr_dtls_export_srtp_keying_material(lr_dtls *dtls, uint8_t *out, size_t length);
/// The last error, as OpenSSL describes it, into `buffer` (NUL-terminated).
void lr_dtls_error(uint8_t *buffer, size_t capacity);

/// zlib's CRC-32 (ISO 3309, the one STUN's FINGERPRINT uses).
uint32_t lr_crc32(const uint8_t *bytes, size_t length);

#ifdef __cplusplus
}
#endif

#endif
