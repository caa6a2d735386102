/*
 * sign.c - request signing, both sides (see sign.h).
 *
 * Layout: input checks, the string builder, sign, verify.  Relies on
 * libsodium only (crypto_generichash for the body hash, crypto_sign_* for
 * Ed25519, sodium_bin2hex / sodium_hex2bin).  Built into the fieldvault
 * library (server/server.cmake adds it), so that the client, fvd and the
 * tests link the same code.
 */
#include "sign.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

_Static_assert(FV_SIGN_SK_LEN == crypto_sign_SECRETKEYBYTES, "secret key size");
_Static_assert(FV_SIGN_PK_LEN == crypto_sign_PUBLICKEYBYTES, "public key size");
_Static_assert(FV_SIGN_SIG_LEN == crypto_sign_BYTES, "signature size");
_Static_assert(FV_SIGN_HEX_LEN == 2 * FV_SIGN_SIG_LEN, "signature hex size");

static int method_ok(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > 16) return 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z') return 0;
    return 1;
}

static int path_ok(const char *p)
{
    size_t n = strnlen(p, FV_SIGN_PATH_MAX + 1);
    if (n == 0 || n > FV_SIGN_PATH_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f) return 0;
    return 1;
}

fv_status fv__sign_string(const char *method, const char *path, int64_t ts_ms,
                          const unsigned char nonce[FV_SIGN_NONCE_LEN],
                          const unsigned char *body, size_t len, char *out, size_t cap,
                          size_t *outlen)
{
    if (out != NULL && cap > 0) out[0] = '\0';
    if (method == NULL || path == NULL || nonce == NULL || out == NULL ||
        (body == NULL && len > 0))
        return FV_EMISUSE;
    if (!method_ok(method) || !path_ok(path) || ts_ms < 0) return FV_EINVAL;
    unsigned char h[crypto_generichash_BYTES];
    static const unsigned char none[1];
    if (crypto_generichash(h, sizeof h, body != NULL ? body : none, len, NULL, 0) != 0)
        return FV_EINTERNAL;
    char nonce_hex[2 * FV_SIGN_NONCE_LEN + 1], hash_hex[2 * sizeof h + 1];
    sodium_bin2hex(nonce_hex, sizeof nonce_hex, nonce, FV_SIGN_NONCE_LEN);
    sodium_bin2hex(hash_hex, sizeof hash_hex, h, sizeof h);
    int n = snprintf(out, cap, "FV1\n%s\n%s\n%lld\n%s\n%s", method, path, (long long)ts_ms,
                     nonce_hex, hash_hex);
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0) out[0] = '\0';
        return FV_EINVAL;
    }
    if (outlen != NULL) *outlen = (size_t)n;
    return FV_OK;
}

fv_status fv__sign_request(const unsigned char sk[FV_SIGN_SK_LEN], const char *method,
                           const char *path, int64_t ts_ms,
                           const unsigned char nonce[FV_SIGN_NONCE_LEN],
                           const unsigned char *body, size_t len,
                           char sig_hex[FV_SIGN_HEX_LEN + 1])
{
    if (sig_hex == NULL) return FV_EMISUSE;
    sig_hex[0] = '\0';
    if (sk == NULL) return FV_EMISUSE;
    char msg[FV_SIGN_STRING_MAX];
    size_t mlen;
    fv_status st = fv__sign_string(method, path, ts_ms, nonce, body, len, msg, sizeof msg,
                                   &mlen);
    if (st != FV_OK) return st;
    unsigned char sig[FV_SIGN_SIG_LEN];
    if (crypto_sign_detached(sig, NULL, (const unsigned char *)msg, mlen, sk) != 0)
        return FV_EINTERNAL;
    sodium_bin2hex(sig_hex, FV_SIGN_HEX_LEN + 1, sig, sizeof sig);
    return FV_OK;
}

fv_status fv__verify_request(const unsigned char pk[FV_SIGN_PK_LEN], const char *method,
                             const char *path, int64_t ts_ms,
                             const unsigned char nonce[FV_SIGN_NONCE_LEN],
                             const unsigned char *body, size_t len, const char *sig_hex)
{
    if (pk == NULL || sig_hex == NULL) return FV_EMISUSE;
    size_t hexlen = strnlen(sig_hex, FV_SIGN_HEX_LEN + 1);
    if (hexlen != FV_SIGN_HEX_LEN) return FV_EINVAL;
    unsigned char sig[FV_SIGN_SIG_LEN];
    size_t got = 0;
    const char *end = NULL;
    if (sodium_hex2bin(sig, sizeof sig, sig_hex, hexlen, NULL, &got, &end) != 0 ||
        got != sizeof sig || end != sig_hex + hexlen)
        return FV_EINVAL;
    char msg[FV_SIGN_STRING_MAX];
    size_t mlen;
    fv_status st = fv__sign_string(method, path, ts_ms, nonce, body, len, msg, sizeof msg,
                                   &mlen);
    if (st != FV_OK) return st;
    if (crypto_sign_verify_detached(sig, (const unsigned char *)msg, mlen, pk) != 0)
        return FV_EACCES;
    return FV_OK;
}
