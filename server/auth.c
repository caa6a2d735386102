/*
 * auth.c - the signed-request checks (see auth.h).  Header parsing is
 * strict (exact digit counts, canonical decimal) because the signed string
 * is rebuilt from the parsed values: a header in any other spelling could
 * not have been signed by sync/sign.c and fails there anyway; refusing it
 * here gives a clearer message.
 */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "sign.h"

#define UNAUTH fieldvault_v1_ErrorCode_ERROR_CODE_UNAUTHENTICATED
/* Refresh last_seen_ms at most this often (it costs a write). */
#define TOUCH_EVERY_MS 60000

/* Canonical decimal, 1..19 digits, no leading zero, at most INT64_MAX. */
static int parse_ms(const char *s, int64_t *out)
{
    size_t n = strnlen(s, 21);
    if (n == 0 || n > 19 || (n > 1 && s[0] == '0')) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX) return -1;
    *out = (int64_t)v;
    return 0;
}

static int window_check(int64_t ts, int64_t now_ms, fvd_reply *r)
{
    int64_t d = ts - now_ms;
    if (d > FV_SIGN_WINDOW_MS || d < -FV_SIGN_WINDOW_MS)
        return fvd_refuse(r, 401, UNAUTH,
                          "stale timestamp: X-FV-Timestamp is %lld ms %s the server clock "
                          "(allowed: %lld ms either way); correct the clock offset from "
                          "X-FV-Server-Time",
                          (long long)(d > 0 ? d : -d), d > 0 ? "ahead of" : "behind",
                          (long long)FV_SIGN_WINDOW_MS);
    return 0;
}

int fvd_auth_precheck(const fvd_auth_headers *h, int64_t now_ms, fvd_auth *a, fvd_reply *r)
{
    memset(a, 0, sizeof *a);
    const char *missing = h->device == NULL      ? "X-FV-Device"
                          : h->timestamp == NULL ? "X-FV-Timestamp"
                          : h->nonce == NULL     ? "X-FV-Nonce"
                          : h->signature == NULL ? "X-FV-Signature"
                                                 : NULL;
    if (missing != NULL)
        return fvd_refuse(r, 401, UNAUTH, "missing header %s: this endpoint takes signed "
                          "requests", missing);
    if (fvd_unhex(h->device, a->device, sizeof a->device) != 0)
        return fvd_refuse(r, 401, UNAUTH, "malformed X-FV-Device: expected 32 hex digits");
    if (parse_ms(h->timestamp, &a->ts_ms) != 0)
        return fvd_refuse(r, 401, UNAUTH, "malformed X-FV-Timestamp: expected milliseconds "
                          "since the epoch in decimal");
    if (fvd_unhex(h->nonce, a->nonce, sizeof a->nonce) != 0)
        return fvd_refuse(r, 401, UNAUTH, "malformed X-FV-Nonce: expected 32 hex digits");
    unsigned char sig[FV_SIGN_SIG_LEN];
    if (fvd_unhex(h->signature, sig, sizeof sig) != 0)
        return fvd_refuse(r, 401, UNAUTH, "malformed X-FV-Signature: expected 128 hex digits");
    memcpy(a->sig, h->signature, FV_SIGN_HEX_LEN);
    a->sig[FV_SIGN_HEX_LEN] = '\0';
    return window_check(a->ts_ms, now_ms, r);
}

int fvd_auth_verify(fvd_store *s, const fvd_auth *a, const char *method, const char *path,
                    const unsigned char *body, size_t len, int64_t now_ms, fvd_device *dev,
                    fvd_reply *r)
{
    char err[256] = "";
    char hex[2 * FV_DEVICE_LEN + 1];
    fvd_hex(a->device, sizeof a->device, hex);
    fv_status st = s->ops->get_device(s, a->device, dev, err, sizeof err);
    if (st == FV_ENOTFOUND)
        return fvd_refuse(r, 401, UNAUTH, "unknown device %s: enrol it first", hex);
    if (st != FV_OK) return fvd_refuse_store(r, st, "reading the device", err);
    st = fv__verify_request(dev->public_key, method, path, a->ts_ms, a->nonce, body, len,
                            a->sig);
    if (st == FV_EACCES || st == FV_EINVAL)
        return fvd_refuse(r, 401, UNAUTH, "bad signature for device %s on %s %s", hex, method,
                          path);
    if (st != FV_OK)
        return fvd_refuse(r, 500, fieldvault_v1_ErrorCode_ERROR_CODE_INTERNAL,
                          "cannot check the signature (%s)", fv_status_str(st));
    if (dev->revoked)
        return fvd_refuse(r, 403, fieldvault_v1_ErrorCode_ERROR_CODE_REVOKED,
                          "device %s was revoked: erase its store", hex);
    /* The body may have taken a while to arrive: the window again. */
    if (window_check(a->ts_ms, now_ms, r) != 0) return -1;
    int replay = 0;
    st = s->ops->use_nonce(s, a->device, a->nonce, now_ms, FVD_NONCE_KEEP_MS, &replay, err,
                           sizeof err);
    if (st != FV_OK) return fvd_refuse_store(r, st, "recording the nonce", err);
    if (replay)
        return fvd_refuse(r, 401, UNAUTH, "replayed nonce: device %s already sent this "
                          "X-FV-Nonce; every request needs a new one", hex);
    if (now_ms - dev->last_seen_ms >= TOUCH_EVERY_MS) {
        st = s->ops->touch_device(s, a->device, now_ms, err, sizeof err);
        if (st != FV_OK) fvd_log("device %s: cannot record last seen: %s", hex, err);
        else dev->last_seen_ms = now_ms;
    }
    return 0;
}
