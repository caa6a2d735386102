/*
 * pull.c - POST /v1/pull: the changes after the device's cursor, one
 * bounded batch (docs/protocol.md, "Pull").
 *
 * Which rows a device may see is decided in the store: the role's scope,
 * by the policy in force and the user's role and team as they are now,
 * becomes a filter (acl.h, fvd_pull_filter_of) that the store applies with
 * the scope it keeps on every log entry (store.h), so a pull reads what
 * its user may see, not the whole log.  The field classes the role may not
 * read are dropped here.  The cursor returned is the last log sequence
 * the store considered: the last change given while there are more, else
 * the head it read.
 *
 * The response carries its cursor and `more` flag after the changes on the
 * wire, but the encoder takes them up front, so the batch is read from the
 * store first, then encoded.  It is kept packed - each change's fixed part
 * and only the value bytes it has, not the 4 KiB value buffer of an
 * fv__change - in a buffer that grows with what the store gives: memory
 * follows the size of the answer (at most max <= FVD_PULL_MAX changes).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "fvd.h"

/* The fixed part of a change, before its value bytes. */
#define HEAD_BYTES offsetof(fv__change, data)

typedef struct batch {
    fv__membuf packed; /* per change: HEAD_BYTES, then len value bytes */
    uint32_t n, max;
    int oom;
    const fv__policy *policy;
    const fvd_device *dev;
} batch;

static int collect(void *ctx, const fv__change *c, uint64_t seq)
{
    (void)seq;
    batch *b = ctx;
    if (!fvd_may_read_field(b->policy, b->dev, c)) return 0;
    if (b->n == b->max) return -1; /* the store gave more than asked */
    size_t len = c->kind == FV__VAL_TEXT || c->kind == FV__VAL_SEALED ? c->len : 0;
    if (fv__membuf_write(&b->packed, (const unsigned char *)c, HEAD_BYTES) != 0 ||
        fv__membuf_write(&b->packed, c->data, len) != 0) {
        b->oom = 1;
        return -1;
    }
    b->n++;
    return 0;
}

typedef struct source {
    const batch *b;
    size_t pos;
} source;

static int next(void *ctx, fv__change *out)
{
    source *s = ctx;
    const fv__membuf *m = &s->b->packed;
    if (s->pos == m->len) return 0;
    memcpy(out, m->data + s->pos, HEAD_BYTES);
    s->pos += HEAD_BYTES;
    size_t len = out->kind == FV__VAL_TEXT || out->kind == FV__VAL_SEALED ? out->len : 0;
    memcpy(out->data, m->data + s->pos, len);
    out->data[len] = '\0'; /* text is NUL-terminated */
    s->pos += len;
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
    /* only rows in the user's scope, only fields the role may read, by the
     * policy in force now */
    fv__policy policy;
    fv_status st = fvd_policy_current(s, &policy, NULL, err, sizeof err);
    if (st != FV_OK) {
        fvd_refuse_store(r, st, "reading the access policy", err);
        return;
    }
    fvd_pull_filter filter;
    fvd_pull_filter_of(&policy, dev, &filter);
    batch b;
    memset(&b, 0, sizeof b);
    /* at most max changes, each at most one fv__change */
    fv__membuf_init(&b.packed, (size_t)max * sizeof(fv__change));
    b.max = max;
    b.policy = &policy;
    b.dev = dev;
    int more = 0;
    uint64_t last = q.cursor;
    st = s->ops->pull(s, q.cursor, max, &filter, collect, &b, &more, &last, err, sizeof err);
    if (st != FV_OK) {
        fv__membuf_free(&b.packed);
        if (b.oom)
            fvd_refuse(r, 503, fieldvault_v1_ErrorCode_ERROR_CODE_UNAVAILABLE,
                       "out of memory: retry later");
        else
            fvd_refuse_store(r, st, "reading the log", err);
        return;
    }
    fv__pull_info hdr;
    memset(&hdr, 0, sizeof hdr);
    hdr.cursor = last;
    hdr.more = more;
    source src = {&b, 0};
    r->body.len = 0;
    st = fv__wire_encode_pull_response(&hdr, next, &src, fv__membuf_write, &r->body, NULL, err,
                                       sizeof err);
    fv__membuf_free(&b.packed);
    if (st != FV_OK) {
        fvd_log("cannot encode a pull answer: %s", err);
        fvd_refuse(r, 500, fieldvault_v1_ErrorCode_ERROR_CODE_INTERNAL,
                   "cannot encode the pull answer");
        return;
    }
    r->status = 200;
}
