/*
 * fieldcrypt.h - field encryption: the sealed value format and key grants,
 * shared by the device (core/fieldkeys.c, sync/client.c) and fvd's admin
 * commands (server/keys.c).  Pure functions over bytes; libsodium only.
 *
 * Field keys.  One 32-byte key per (team, class, version); class is
 * FV_CLASS_PII or FV_CLASS_CONFIDENTIAL.  Its key id is the first 8 bytes
 * BLAKE2b output of ("fieldvault key id v1" 0 team 0 class version; the
 * hash asked for 8 bytes, not a longer hash cut short), so a sealed
 * value names its key without naming the team in clear.
 *
 * A sealed value (the bytes of Value.sealed on the wire):
 *
 *   magic 0xF5 | class (1) | version (4, big-endian) | key id (8)
 *   | nonce (24) | XChaCha20-Poly1305 ciphertext of (kind (1) | value) + tag (16)
 *
 * kind is 't' (UTF-8 text, no NUL) or 'r' (8-byte IEEE double, big-endian).
 * The associated data binds the value to its place:
 *
 *   "fieldvault sealed v1" 0 | table 0 | row id (16) | field 0 | header (14)
 *
 * so a ciphertext copied into another row, another field or another table,
 * or relabelled with another key version, fails authentication.
 *
 * A grant hands one field key to one device: the key sealed with
 * crypto_box_seal to the device's X25519 key (converted from the Ed25519
 * key it enrolled with), and an Ed25519 signature by the admin key over
 *
 *   "fieldvault grant v1" 0 | device id (16) | team 0 | class (1)
 *   | version (4, big-endian) | sealed key (80)
 *
 * since a sealed box alone does not say who sealed it.
 */
#ifndef FV_FIELDCRYPT_H
#define FV_FIELDCRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "fieldvault.h"

#define FV_FKEY_LEN 32
#define FV_FKEY_ID_LEN 8
#define FV_SEALED_MAGIC 0xF5
#define FV_SEALED_HDR_LEN 14 /* magic, class, version, key id */
#define FV_SEALED_NONCE_LEN 24
#define FV_SEALED_TAG_LEN 16
/* Bytes a sealed value adds to its plaintext value (kind byte included). */
#define FV_SEALED_OVERHEAD (FV_SEALED_HDR_LEN + FV_SEALED_NONCE_LEN + FV_SEALED_TAG_LEN + 1)
/* A buffer for the sealed form of the longest field value. */
#define FV_SEALED_BUF (FV_FIELD_MAX + FV_SEALED_OVERHEAD)
#define FV_GRANT_SEALED_LEN 80 /* FV_FKEY_LEN + crypto_box_SEALBYTES */
#define FV_GRANT_SIG_LEN 64
#define FV_ADMIN_PK_LEN 32
#define FV_ADMIN_SK_LEN 64
/* Bytes of a blind index (fv__fc_blind). */
#define FV_BLIND_LEN 16

typedef struct fv__sealed_hdr {
    int cls;          /* FV_CLASS_PII or FV_CLASS_CONFIDENTIAL */
    uint32_t version; /* >= 1 */
    unsigned char key_id[FV_FKEY_ID_LEN];
} fv__sealed_hdr;

/* The id of (team, cls, version). */
void fv__fc_key_id(const char *team, int cls, uint32_t version,
                   unsigned char id[FV_FKEY_ID_LEN]);

/* Parse the header of a sealed value: 0, or -1 if b is not a well-formed
 * sealed value (wrong magic, class, version 0, or shorter than the
 * smallest sealed value). */
int fv__fc_parse(const unsigned char *b, size_t n, fv__sealed_hdr *h);

/* Seal a text value (ptlen bytes, no NUL needed) or, with text NULL, the
 * real value.  out must hold ptlen + FV_SEALED_OVERHEAD bytes (8 + ... for
 * a real).  Returns 0, or -1 if cap is too small or an argument is bad. */
int fv__fc_seal(const unsigned char key[FV_FKEY_LEN], const char *team, int cls,
                uint32_t version, const char *table, const unsigned char row[16],
                const char *field, const char *text, size_t ptlen, double real,
                unsigned char *out, size_t cap, size_t *outlen);

/* Open a sealed value for (table, row, field) with key.  On success
 * returns 0 and sets *is_text; a text goes to text (NUL-terminated, *len
 * bytes without the NUL; cap must be >= n), a real to *real.  -1 if the
 * value fails authentication (altered, moved, or another key) or is
 * malformed.  Nothing of a failed open is left in text. */
int fv__fc_open(const unsigned char key[FV_FKEY_LEN], const char *table,
                const unsigned char row[16], const char *field, const unsigned char *b,
                size_t n, int *is_text, char *text, size_t cap, size_t *len, double *real);

/* The message a grant signature covers; out must hold
 * FV_GRANT_MSG_MAX bytes; returns its length, or 0 for a bad team. */
#define FV_GRANT_MSG_MAX (20 + 16 + 65 + 1 + 4 + FV_GRANT_SEALED_LEN)
size_t fv__fc_grant_message(const unsigned char device_id[16], const char *team, int cls,
                            uint32_t version, const unsigned char sealed[FV_GRANT_SEALED_LEN],
                            unsigned char *out);

/* Admin side: seal key to the device's Ed25519 public key and sign.
 * Returns 0, or -1 if the device key is not a valid Ed25519 point. */
int fv__fc_grant_make(const unsigned char admin_sk[FV_ADMIN_SK_LEN],
                      const unsigned char device_id[16], const unsigned char device_pk[32],
                      const char *team, int cls, uint32_t version,
                      const unsigned char key[FV_FKEY_LEN],
                      unsigned char sealed[FV_GRANT_SEALED_LEN],
                      unsigned char sig[FV_GRANT_SIG_LEN]);

/* Device side: verify the admin's signature, then open with the device's
 * Ed25519 secret key.  0 and key_out filled; -1 bad signature; -2 the box
 * does not open for this device.  Temporary secrets are wiped. */
int fv__fc_grant_open(const unsigned char admin_pk[FV_ADMIN_PK_LEN],
                      const unsigned char device_id[16], const unsigned char device_sk[64],
                      const char *team, int cls, uint32_t version,
                      const unsigned char sealed[FV_GRANT_SEALED_LEN],
                      const unsigned char sig[FV_GRANT_SIG_LEN],
                      unsigned char key_out[FV_FKEY_LEN]);

/* Blind index of a normalised value of field under the field key: keyed
 * BLAKE2b (subkey derived from key), FV_BLIND_LEN bytes.  Equal inputs
 * give equal outputs under one key; without the key it reveals nothing. */
void fv__fc_blind(const unsigned char key[FV_FKEY_LEN], const char *field, const char *norm,
                  size_t len, unsigned char out[FV_BLIND_LEN]);

#endif /* FV_FIELDCRYPT_H */
