/*
 * fieldcrypt.c - sealed values and key grants (see fieldcrypt.h).
 */
#include "fieldcrypt.h"

#include <string.h>

#include <sodium.h>

_Static_assert(FV_GRANT_SEALED_LEN == FV_FKEY_LEN + crypto_box_SEALBYTES, "grant box size");
_Static_assert(FV_GRANT_SIG_LEN == crypto_sign_BYTES, "signature size");
_Static_assert(FV_SEALED_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce");
_Static_assert(FV_SEALED_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag");
_Static_assert(FV_FKEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");

#define TEAM_MAX 64
#define AD_MAX (21 + 65 + 16 + 65 + FV_SEALED_HDR_LEN)

static const char AD_LABEL[] = "fieldvault sealed v1";    /* + NUL */
static const char GRANT_LABEL[] = "fieldvault grant v1";  /* + NUL */
static const char KEYID_LABEL[] = "fieldvault key id v1"; /* + NUL */

static int cls_ok(int cls) { return cls == 1 || cls == 2; }

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Append s with its NUL; 0 if s is too long. */
static size_t put_str(unsigned char *p, const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n > max) return 0;
    memcpy(p, s, n + 1);
    return n + 1;
}

void fv__fc_key_id(const char *team, int cls, uint32_t version,
                   unsigned char id[FV_FKEY_ID_LEN])
{
    unsigned char m[sizeof KEYID_LABEL + TEAM_MAX + 1 + 1 + 4];
    size_t n = 0;
    memcpy(m, KEYID_LABEL, sizeof KEYID_LABEL);
    n += sizeof KEYID_LABEL;
    size_t t = put_str(m + n, team, TEAM_MAX);
    if (t == 0) { /* an over-long team never matches a real key */
        memset(id, 0, FV_FKEY_ID_LEN);
        return;
    }
    n += t;
    m[n++] = (unsigned char)cls;
    put_be32(m + n, version);
    n += 4;
    crypto_generichash(id, FV_FKEY_ID_LEN, m, n, NULL, 0);
}

int fv__fc_parse(const unsigned char *b, size_t n, fv__sealed_hdr *h)
{
    if (b == NULL || n < FV_SEALED_OVERHEAD || b[0] != FV_SEALED_MAGIC || !cls_ok(b[1]))
        return -1;
    uint32_t v = get_be32(b + 2);
    if (v == 0) return -1;
    if (h != NULL) {
        h->cls = b[1];
        h->version = v;
        memcpy(h->key_id, b + 6, FV_FKEY_ID_LEN);
    }
    return 0;
}

/* The associated data for (table, row, field, header); 0 on bad names. */
static size_t make_ad(const char *table, const unsigned char row[16], const char *field,
                      const unsigned char hdr[FV_SEALED_HDR_LEN], unsigned char ad[AD_MAX])
{
    size_t n = 0, k;
    memcpy(ad, AD_LABEL, sizeof AD_LABEL);
    n += sizeof AD_LABEL;
    if ((k = put_str(ad + n, table, 64)) == 0) return 0;
    n += k;
    memcpy(ad + n, row, 16);
    n += 16;
    if ((k = put_str(ad + n, field, 64)) == 0) return 0;
    n += k;
    memcpy(ad + n, hdr, FV_SEALED_HDR_LEN);
    return n + FV_SEALED_HDR_LEN;
}

int fv__fc_seal(const unsigned char key[FV_FKEY_LEN], const char *team, int cls,
                uint32_t version, const char *table, const unsigned char row[16],
                const char *field, const char *text, size_t ptlen, double real,
                unsigned char *out, size_t cap, size_t *outlen)
{
    if (key == NULL || team == NULL || !cls_ok(cls) || version == 0 || table == NULL ||
        row == NULL || field == NULL || out == NULL || outlen == NULL)
        return -1;
    size_t vlen = text != NULL ? ptlen : 8;
    if (vlen > cap || cap - vlen < FV_SEALED_OVERHEAD) return -1;

    unsigned char *hdr = out;
    hdr[0] = FV_SEALED_MAGIC;
    hdr[1] = (unsigned char)cls;
    put_be32(hdr + 2, version);
    fv__fc_key_id(team, cls, version, hdr + 6);
    unsigned char ad[AD_MAX];
    size_t adlen = make_ad(table, row, field, hdr, ad);
    if (adlen == 0) return -1;

    unsigned char *nonce = out + FV_SEALED_HDR_LEN;
    randombytes_buf(nonce, FV_SEALED_NONCE_LEN);
    /* The plaintext is built in place where the ciphertext goes (libsodium
     * allows ciphertext == message). */
    unsigned char *ct = nonce + FV_SEALED_NONCE_LEN;
    if (text != NULL) {
        ct[0] = 't';
        memcpy(ct + 1, text, ptlen);
    } else {
        ct[0] = 'r';
        uint64_t bits;
        memcpy(&bits, &real, 8);
        for (int i = 0; i < 8; i++) ct[1 + i] = (unsigned char)(bits >> (56 - 8 * i));
    }
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen, ct, 1 + vlen, ad, adlen, NULL, nonce,
                                               key);
    *outlen = FV_SEALED_HDR_LEN + FV_SEALED_NONCE_LEN + (size_t)clen;
    return 0;
}

int fv__fc_open(const unsigned char key[FV_FKEY_LEN], const char *table,
                const unsigned char row[16], const char *field, const unsigned char *b,
                size_t n, int *is_text, char *text, size_t cap, size_t *len, double *real)
{
    if (key == NULL || table == NULL || row == NULL || field == NULL || is_text == NULL ||
        text == NULL || len == NULL || real == NULL || fv__fc_parse(b, n, NULL) != 0 || cap < n)
        return -1;
    unsigned char ad[AD_MAX];
    size_t adlen = make_ad(table, row, field, b, ad);
    if (adlen == 0) return -1;
    const unsigned char *nonce = b + FV_SEALED_HDR_LEN;
    const unsigned char *ct = nonce + FV_SEALED_NONCE_LEN;
    size_t ctlen = n - FV_SEALED_HDR_LEN - FV_SEALED_NONCE_LEN;
    unsigned long long mlen = 0;
    unsigned char *m = (unsigned char *)text;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, &mlen, NULL, ct, ctlen, ad, adlen, nonce,
                                                   key) != 0)
        return -1;
    int bad = 0;
    if (mlen >= 1 && m[0] == 't') {
        size_t k = (size_t)mlen - 1;
        memmove(m, m + 1, k);
        m[k] = 0;
        if (memchr(m, 0, k) != NULL) bad = 1;
        *is_text = 1;
        *len = k;
    } else if (mlen == 9 && m[0] == 'r') {
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = bits << 8 | m[1 + i];
        memcpy(real, &bits, 8);
        *is_text = 0;
        *len = 0;
        m[0] = 0;
    } else {
        bad = 1;
    }
    if (bad) {
        sodium_memzero(m, (size_t)mlen);
        return -1;
    }
    return 0;
}

size_t fv__fc_grant_message(const unsigned char device_id[16], const char *team, int cls,
                            uint32_t version, const unsigned char sealed[FV_GRANT_SEALED_LEN],
                            unsigned char *out)
{
    size_t n = 0, k;
    memcpy(out, GRANT_LABEL, sizeof GRANT_LABEL);
    n += sizeof GRANT_LABEL;
    memcpy(out + n, device_id, 16);
    n += 16;
    if ((k = put_str(out + n, team, TEAM_MAX)) == 0) return 0;
    n += k;
    out[n++] = (unsigned char)cls;
    put_be32(out + n, version);
    n += 4;
    memcpy(out + n, sealed, FV_GRANT_SEALED_LEN);
    return n + FV_GRANT_SEALED_LEN;
}

int fv__fc_grant_make(const unsigned char admin_sk[FV_ADMIN_SK_LEN],
                      const unsigned char device_id[16], const unsigned char device_pk[32],
                      const char *team, int cls, uint32_t version,
                      const unsigned char key[FV_FKEY_LEN],
                      unsigned char sealed[FV_GRANT_SEALED_LEN],
                      unsigned char sig[FV_GRANT_SIG_LEN])
{
    if (!cls_ok(cls) || version == 0) return -1;
    unsigned char xpk[crypto_box_PUBLICKEYBYTES];
    if (crypto_sign_ed25519_pk_to_curve25519(xpk, device_pk) != 0) return -1;
    if (crypto_box_seal(sealed, key, FV_FKEY_LEN, xpk) != 0) return -1;
    unsigned char msg[FV_GRANT_MSG_MAX];
    size_t n = fv__fc_grant_message(device_id, team, cls, version, sealed, msg);
    if (n == 0) return -1;
    crypto_sign_detached(sig, NULL, msg, n, admin_sk);
    return 0;
}

int fv__fc_grant_open(const unsigned char admin_pk[FV_ADMIN_PK_LEN],
                      const unsigned char device_id[16], const unsigned char device_sk[64],
                      const char *team, int cls, uint32_t version,
                      const unsigned char sealed[FV_GRANT_SEALED_LEN],
                      const unsigned char sig[FV_GRANT_SIG_LEN],
                      unsigned char key_out[FV_FKEY_LEN])
{
    if (!cls_ok(cls) || version == 0) return -1;
    unsigned char msg[FV_GRANT_MSG_MAX];
    size_t n = fv__fc_grant_message(device_id, team, cls, version, sealed, msg);
    if (n == 0 || crypto_sign_verify_detached(sig, msg, n, admin_pk) != 0) return -1;
    unsigned char xsk[crypto_box_SECRETKEYBYTES], xpk[crypto_box_PUBLICKEYBYTES];
    int rc = -2;
    if (crypto_sign_ed25519_sk_to_curve25519(xsk, device_sk) == 0 &&
        crypto_sign_ed25519_pk_to_curve25519(xpk, device_sk + 32) == 0 &&
        crypto_box_seal_open(key_out, sealed, FV_GRANT_SEALED_LEN, xpk, xsk) == 0)
        rc = 0;
    sodium_memzero(xsk, sizeof xsk);
    if (rc != 0) sodium_memzero(key_out, FV_FKEY_LEN);
    return rc;
}

void fv__fc_blind(const unsigned char key[FV_FKEY_LEN], const char *field, const char *norm,
                  size_t len, unsigned char out[FV_BLIND_LEN])
{
    unsigned char sub[crypto_generichash_KEYBYTES];
    crypto_kdf_derive_from_key(sub, sizeof sub, 1, "fvblind_", key);
    crypto_generichash_state st;
    crypto_generichash_init(&st, sub, sizeof sub, FV_BLIND_LEN);
    crypto_generichash_update(&st, (const unsigned char *)field, strlen(field) + 1);
    crypto_generichash_update(&st, (const unsigned char *)norm, len);
    crypto_generichash_final(&st, out, FV_BLIND_LEN);
    sodium_memzero(sub, sizeof sub);
    sodium_memzero(&st, sizeof st);
}
