/*
 * sign.h - request signing for the sync protocol (docs/protocol.md,
 * "Request signing"), one implementation for both sides: the device signs
 * with fv__sign_request (sync/client.c), fvd checks with fv__verify_request
 * (server/auth.c), and the tests use both.
 *
 * The signed string is
 *
 *     "FV1\n" METHOD "\n" PATH "\n" TIMESTAMP "\n" NONCE "\n" BODYHASH
 *
 * TIMESTAMP: ms since the Unix epoch in canonical decimal ("%lld": no sign
 * for positive values, no leading zeros); NONCE: the 16 nonce bytes as 32
 * lowercase hex digits; BODYHASH: BLAKE2b-256 of the body (crypto_generichash,
 * no key) as 64 lowercase hex digits.  The signature is Ed25519
 * (crypto_sign_detached) with the device's key, sent as 128 lowercase hex
 * digits in X-FV-Signature.  The headers carry the same canonical texts
 * (X-FV-Timestamp, X-FV-Nonce); fvd parses them strictly and rebuilds the
 * string from the parsed values, so a header in any other spelling cannot
 * verify.
 *
 * Errors: FV_OK, FV_EINVAL (a method that is not 1..16 uppercase letters, a
 * path that is not 1..FV_SIGN_PATH_MAX printable ASCII bytes without space,
 * a negative timestamp, signature text that is not 128 hex digits),
 * FV_EMISUSE (NULL argument), FV_EACCES (fv__verify_request: the signature
 * does not verify).  No global state; thread-safe; nothing is printed.
 * Keys are the caller's: nothing here copies a secret key.
 */
#ifndef FV_SIGN_H
#define FV_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "fieldvault.h"

#define FV_SIGN_SK_LEN 64     /* crypto_sign_SECRETKEYBYTES */
#define FV_SIGN_PK_LEN 32     /* crypto_sign_PUBLICKEYBYTES */
#define FV_SIGN_NONCE_LEN 16  /* X-FV-Nonce, raw bytes */
#define FV_SIGN_SIG_LEN 64    /* crypto_sign_BYTES */
#define FV_SIGN_HEX_LEN 128   /* X-FV-Signature, hex digits (without the NUL) */
#define FV_SIGN_PATH_MAX 256  /* bytes of a signed path */
/* fvd refuses a timestamp further than this from its clock, either way. */
#define FV_SIGN_WINDOW_MS (5LL * 60 * 1000)
/* Bytes of the longest string to sign, with its NUL. */
#define FV_SIGN_STRING_MAX (4 + 16 + 1 + FV_SIGN_PATH_MAX + 1 + 20 + 1 + 32 + 1 + 64 + 1)

/*
 * Build the string to sign into out (cap bytes, at least
 * FV_SIGN_STRING_MAX is always enough), NUL-terminated; *outlen (may be
 * NULL) gets its length without the NUL.  body may be NULL when len is 0.
 */
FV_NODISCARD fv_status fv__sign_string(const char *method, const char *path, int64_t ts_ms,
                                       const unsigned char nonce[FV_SIGN_NONCE_LEN],
                                       const unsigned char *body, size_t len, char *out,
                                       size_t cap, size_t *outlen);

/*
 * Sign a request with the device's Ed25519 secret key sk (64 bytes, as
 * crypto_sign_keypair makes it) and write the signature as 128 lowercase
 * hex digits and a NUL into sig_hex.  On failure sig_hex is the empty
 * string.
 */
FV_NODISCARD fv_status fv__sign_request(const unsigned char sk[FV_SIGN_SK_LEN],
                                        const char *method, const char *path, int64_t ts_ms,
                                        const unsigned char nonce[FV_SIGN_NONCE_LEN],
                                        const unsigned char *body, size_t len,
                                        char sig_hex[FV_SIGN_HEX_LEN + 1]);

/*
 * Check sig_hex (the X-FV-Signature text: exactly 128 hex digits, either
 * case) against the request with the device's public key pk.  FV_OK if it
 * verifies, FV_EACCES if not, FV_EINVAL if sig_hex or the other inputs are
 * malformed.  The comparison is libsodium's (constant time).
 */
FV_NODISCARD fv_status fv__verify_request(const unsigned char pk[FV_SIGN_PK_LEN],
                                          const char *method, const char *path, int64_t ts_ms,
                                          const unsigned char nonce[FV_SIGN_NONCE_LEN],
                                          const unsigned char *body, size_t len,
                                          const char *sig_hex);

#endif /* FV_SIGN_H */
