/*
 * auth.h - fvd's check of a signed request (docs/protocol.md, "Request
 * signing"), in two steps so that most refusals come before the body is
 * even received:
 *
 *  1. fvd_auth_precheck, on the headers alone: all four present and well
 *     formed, the timestamp within FV_SIGN_WINDOW_MS of the server clock.
 *  2. fvd_auth_verify, once the body is complete: the device is known, the
 *     Ed25519 signature verifies (sync/sign.c, the same code the client
 *     signs with), the device is not revoked, the timestamp is still in the
 *     window, and the nonce is new (store->use_nonce, so the cache is shared
 *     by every fvd process on the store of record).
 *
 * Refusals: 401 UNAUTHENTICATED with a message saying which check failed
 * ("missing header", "malformed", "timestamp", "unknown device", "bad
 * signature", "replayed nonce"); 403 REVOKED for a revoked device (only
 * after its signature verified, so nobody else learns it).  The 401 for a
 * timestamp says "timestamp": the client then re-learns its clock offset
 * from X-FV-Server-Time and retries once.
 */
#ifndef FVD_AUTH_H
#define FVD_AUTH_H

#include <stdint.h>

#include "fvd.h"

/* The raw header values (NULL when absent), as the HTTP layer found them. */
typedef struct fvd_auth_headers {
    const char *device;    /* X-FV-Device */
    const char *timestamp; /* X-FV-Timestamp */
    const char *nonce;     /* X-FV-Nonce */
    const char *signature; /* X-FV-Signature */
} fvd_auth_headers;

/* The parsed headers. */
typedef struct fvd_auth {
    unsigned char device[FV_DEVICE_LEN];
    int64_t ts_ms;
    unsigned char nonce[FV_SIGN_NONCE_LEN];
    char sig[FV_SIGN_HEX_LEN + 1];
} fvd_auth;

/* Step 1.  0, or -1 with r a 401 refusal. */
int fvd_auth_precheck(const fvd_auth_headers *h, int64_t now_ms, fvd_auth *a, fvd_reply *r);

/* Step 2, for METHOD path with the complete body.  0 with *dev the device
 * (its last_seen_ms updated, at most once a minute), or -1 with r a 401 or
 * 403 refusal, or a 500/503 if the store failed. */
int fvd_auth_verify(fvd_store *s, const fvd_auth *a, const char *method, const char *path,
                    const unsigned char *body, size_t len, int64_t now_ms, fvd_device *dev,
                    fvd_reply *r);

#endif /* FVD_AUTH_H */
