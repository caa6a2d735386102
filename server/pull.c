/*
 * pull.c - POST /v1/pull: the changes after the device's cursor, one
 * bounded batch (docs/protocol.md, "Pull").
 *
 * The response carries its cursor and `more` flag after the changes on the
 * wire, but the encoder takes them up front, so the batch is read from the
 * store first into an array of at most max changes (max <= FVD_PULL_MAX:
 * about 4.4 MiB at most), then encoded from it.  Memory is bounded by the
 * batch cap whatever the log holds.
 */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "fvd.h"

typedef struct batch {
    fv__change *v;
    uint64_t *seq;
    uint32_t n, cap;
} batch;

static int collect(void *ctx, const fv__change *c, uint64_t seq)
{
    batch *b = ctx;
    if (b->n == b->cap) return -1; /* the store gave more than asked */
    b->seq[b->n] = seq;
    b->v[b->n++] = *c;
    return 0;
}

typedef struct source {
    const batch *b;
    uint32_t i;
} source;

static int next(void *ctx, fv__change *out)
{
    source *s = ctx;
    if (s->i == s->b->n) return 0;
    *out = s->b->v[s->i++];
    return 1;
}

void fvd_pull(fvd_store *s, const fvd_device *dev, const unsigned char *body, size_t len,
              fvd_reply *r)
{
    fieldvault_v1_PullRequest q;
    char err[256] = "";
    if (fv__wire_decode_pull_request(body, len, &q, err, sizeof err) != FV_OK) {
        fvd_refuse(r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST, "%s", err);
        return;
    }
    if (memcmp(q.device_id, dev->id, FV_DEVICE_LEN) != 0) {
        fvd_refuse(r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST,
                   "the pull request names another device than the one that signed it");
        return;
    }
    uint32_t max = q.max_changes == 0 || q.max_changes > FVD_PULL_MAX ? FVD_PULL_MAX
                                                                       : q.max_changes;
    batch b = {calloc(max, sizeof *b.v), calloc(max, sizeof *b.seq), 0, max};
    if (b.v == NULL || b.seq == NULL) {
        free(b.v);
        free(b.seq);
        fvd_refuse(r, 503, fieldvault_v1_ErrorCode_ERROR_CODE_UNAVAILABLE,
                   "out of memory: retry later");
        return;
    }
    int more = 0;
    uint64_t last = q.cursor;
    fv_status st = s->ops->pull(s, q.cursor, max, collect, &b, &more, &last, err, sizeof err);
    if (st != FV_OK) {
        free(b.v);
        free(b.seq);
        fvd_refuse_store(r, st, "reading the log", err);
        return;
    }
    /* only rows in the user's scope, only fields the role may read, by the
     * policy in force now */
    fv__policy policy;
    st = fvd_policy_current(s, &policy, NULL, err, sizeof err);
    if (st != FV_OK) {
        free(b.v);
        free(b.seq);
        fvd_refuse_store(r, st, "reading the access policy", err);
        return;
    }
    fvd_read_cache cache;
    memset(&cache, 0, sizeof cache);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < b.n; i++) {
        int ok = 0;
        st = fvd_may_read(s, &policy, dev, &b.v[i], b.seq[i], &cache, &ok, err, sizeof err);
        if (st != FV_OK) {
            free(b.v);
            free(b.seq);
            fvd_refuse_store(r, st, "checking access", err);
            return;
        }
        if (ok) {
            if (kept != i) b.v[kept] = b.v[i];
            kept++;
        }
    }
    b.n = kept;
    fv__pull_info hdr;
    memset(&hdr, 0, sizeof hdr);
    hdr.cursor = last;
    hdr.more = more;
    source src = {&b, 0};
    r->body.len = 0;
    st = fv__wire_encode_pull_response(&hdr, next, &src, fv__membuf_write, &r->body, NULL, err,
                                       sizeof err);
    free(b.v);
    free(b.seq);
    if (st != FV_OK) {
        fvd_log("cannot encode a pull answer: %s", err);
        fvd_refuse(r, 500, fieldvault_v1_ErrorCode_ERROR_CODE_INTERNAL,
                   "cannot encode the pull answer");
        return;
    }
    r->status = 200;
}
