/*
 * enroll.c - POST /v1/enroll, and the one-time enrolment codes that
 * `fvd admin add-user` issues (see fvd.h).
 *
 * A code is 20 random characters of Crockford's base32 (100 bits), printed
 * in groups of four.  Only its hash is stored: BLAKE2b-256 of the code's
 * canonical text (separators dropped, upper case, the look-alikes I/L and O
 * read as 1 and 0), so a code typed in lower case or without dashes still
 * works.  The request is not signed: the code is the credential, and the
 * store consumes it atomically (store->enroll), so a code enrols one device.
 * The answer carries the access policy in force (acl.h), read before the
 * code is consumed, so a store failure leaves the code usable.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "acl.h"
#include "fvd.h"

static const char ALPHABET[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void fvd_code_new(char out[FVD_CODE_TEXT], unsigned char hash[32])
{
    size_t j = 0;
    for (size_t i = 0; i < FVD_CODE_CHARS; i++) {
        if (i > 0 && i % 4 == 0) out[j++] = '-';
        out[j++] = ALPHABET[randombytes_uniform(32)];
    }
    out[j] = '\0';
    int ok = fvd_code_hash(out, hash);
    (void)ok; /* our own alphabet: always canonical */
}

int fvd_code_hash(const char *code, unsigned char hash[32])
{
    char canon[FV_WIRE_NAME_MAX + 1];
    size_t n = 0;
    for (const char *p = code; *p != '\0'; p++) {
        char c = *p;
        if (c == '-' || c == ' ' || c == '\t') continue;
        if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        if (c == 'I' || c == 'L') c = '1';
        if (c == 'O') c = '0';
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) return -1;
        if (n == FV_WIRE_NAME_MAX) return -1;
        canon[n++] = c;
    }
    if (n == 0) return -1;
    crypto_generichash(hash, 32, (const unsigned char *)canon, n, NULL, 0);
    sodium_memzero(canon, sizeof canon);
    return 0;
}

void fvd_enroll(fvd_store *s, const unsigned char *body, size_t len, int64_t now_ms,
                fvd_reply *r)
{
    fieldvault_v1_EnrollRequest q;
    char err[256] = "";
    if (fv__wire_decode_enroll_request(body, len, &q, err, sizeof err) != FV_OK) {
        fvd_refuse(r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST, "%s", err);
        return;
    }
    unsigned char hash[32];
    int bad_code = fvd_code_hash(q.code, hash) != 0;
    sodium_memzero(q.code, sizeof q.code);
    if (bad_code) {
        fvd_refuse(r, 401, fieldvault_v1_ErrorCode_ERROR_CODE_UNAUTHENTICATED,
                   "unknown or already used enrolment code");
        return;
    }
    if (crypto_core_ed25519_is_valid_point(q.public_key) != 1) {
        fvd_refuse(r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST,
                   "public_key is not a valid Ed25519 public key");
        return;
    }
    fv__policy policy;
    fv_status st = fvd_policy_current(s, &policy, NULL, err, sizeof err);
    if (st != FV_OK) {
        fvd_refuse_store(r, st, "reading the access policy", err);
        return;
    }
    fvd_device d;
    st = s->ops->enroll(s, hash, q.device_id, q.public_key, q.device_name, now_ms, &d, err,
                        sizeof err);
    char hex[2 * FV_DEVICE_LEN + 1];
    fvd_hex(q.device_id, FV_DEVICE_LEN, hex);
    if (st == FV_ENOTFOUND || st == FV_EEXIST) {
        /* The same enrolment again (its answer was lost): the device is
         * there with the same key.  Answer it as the first time; nothing
         * is granted that the first answer did not. */
        fvd_device prior;
        char perr[128];
        if (s->ops->get_device(s, q.device_id, &prior, perr, sizeof perr) == FV_OK &&
            !prior.revoked && sodium_memcmp(prior.public_key, q.public_key, 32) == 0) {
            d = prior;
            st = FV_OK;
        }
    }
    if (st == FV_ENOTFOUND) {
        fvd_refuse(r, 401, fieldvault_v1_ErrorCode_ERROR_CODE_UNAUTHENTICATED,
                   "unknown or already used enrolment code");
        return;
    }
    if (st == FV_EEXIST) {
        fvd_refuse(r, 409, fieldvault_v1_ErrorCode_ERROR_CODE_CONFLICT,
                   "device %s is enrolled already (the code was not used)", hex);
        return;
    }
    if (st != FV_OK) {
        fvd_refuse_store(r, st, "enrolling a device", err);
        return;
    }
    fieldvault_v1_EnrollResponse a = fieldvault_v1_EnrollResponse_init_zero;
    snprintf(a.user, sizeof a.user, "%s", d.user);
    snprintf(a.role, sizeof a.role, "%s", d.role);
    snprintf(a.team, sizeof a.team, "%s", d.team);
    a.server_time_ms = now_ms;
    memcpy(a.device_id, q.device_id, FV_DEVICE_LEN);
    a.has_policy = true;
    fv__wire_policy_out(&policy, &a.policy);
    r->body.len = 0;
    if (fv__wire_encode_enroll_response(&a, fv__membuf_write, &r->body, err, sizeof err) != FV_OK) {
        /* the device is enrolled; a retry gets 409 and the admin re-issues */
        fvd_log("enrolled device %s for %s but cannot answer: %s", hex, d.user, err);
        fvd_refuse(r, 500, fieldvault_v1_ErrorCode_ERROR_CODE_INTERNAL,
                   "cannot encode the enrolment answer");
        return;
    }
    fvd_log("enrolled device %s for user %s", hex, d.user);
    r->status = 200;
}
