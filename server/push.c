/*
 * push.c - POST /v1/push: one batch of a device's outbox, applied exactly
 * once (docs/protocol.md, "Exactly once" and "Merge on the server").
 *
 * Two passes over the body, which http.c holds whole (at most
 * FVD_PUSH_BODY_MAX bytes):
 *
 *  1. Outside any transaction, decode the PushRequest and check every
 *     change: written by the pushing device, valid for the shipped
 *     catalogue (fv__change_validate_shipped), its clock at most
 *     FV_HLC_MAX_DRIFT_MS ahead of the server's.  One bad change refuses
 *     the whole batch (400, the message names the change); nothing is
 *     stored.
 *  2. In the store's push transaction (push_begin .. push_end: one push at
 *     a time per store of record), check the batch chain against the
 *     device's last applied (seq, hash), then decode again and merge each
 *     change with the device's rule (fv__merge against get_version): a
 *     change that wins is appended to the log; one that loses, or is
 *     already the current version, is dropped.  Record the batch, commit.
 *
 * Access control refuses single changes in pass 2, the rest of the batch
 * applies (a Rejection each, the first FV_WIRE_REJECTIONS_MAX kept): a
 * change the device's user may not write (acl.h: REASON_FORBIDDEN), and a
 * protected value that is not sealed although its row's team has a field
 * key of the field's class (REASON_FORBIDDEN; a cleared value is fine),
 * or is sealed but not a well-formed sealed value of that class
 * (REASON_MALFORMED).  fvd cannot check more of a sealed value: it holds no
 * field key.  A sealed value for a team without keys is taken as it is (a
 * row may have moved from a team that has keys).  Rejection messages name
 * fields and teams, never a value.  The policy is the one in force when
 * the batch applies (acl.h: read in the push transaction).
 *
 * A crash or a failure anywhere before the commit leaves nothing of the
 * batch stored; the device retries the same bytes and it is applied then.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "fieldcrypt.h"
#include "fvd.h"
#include "internal.h"
#include "merge.h"
#include "validate.h"

#define BAD_REQUEST fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST

static unsigned long long ull(uint64_t v)
{
    return (unsigned long long)v;
}

/* ---- Pass 1: checks ---- */

typedef struct check_ctx {
    const fvd_device *dev;
    int64_t now_ms;
    uint64_t n;
    fvd_rows *rows;    /* every row of the batch, for access decisions */
} check_ctx;

static int check_sink(void *ctx, const fv__change *c, char *err, size_t errcap)
{
    check_ctx *x = ctx;
    uint64_t i = x->n++;
    if (memcmp(c->device, x->dev->id, FV_DEVICE_LEN) != 0) {
        char mine[2 * FV_DEVICE_LEN + 1], theirs[2 * FV_DEVICE_LEN + 1];
        fvd_hex(x->dev->id, FV_DEVICE_LEN, mine);
        fvd_hex(c->device, FV_DEVICE_LEN, theirs);
        snprintf(err, errcap, "change #%llu (%s.%s) was written by device %s, not by the "
                 "pushing device %s", ull(i), c->table, c->field, theirs, mine);
        return -1;
    }
    char why[200];
    if (fv__change_validate_shipped(c, why, sizeof why) != FV_OK) {
        snprintf(err, errcap, "change #%llu (device_seq %llu): %s", ull(i), ull(c->device_seq),
                 why);
        return -1;
    }
    int64_t ms = (int64_t)(c->hlc >> 16);
    if (ms > x->now_ms + FV_HLC_MAX_DRIFT_MS) {
        int64_t ahead = ms - x->now_ms;
        snprintf(err, errcap, "change #%llu (%s.%s, device_seq %llu): its clock is %lld h "
                 "ahead of the server's (at most %lld h is allowed): fix the device clock",
                 ull(i), c->table, c->field, ull(c->device_seq),
                 (long long)(ahead / 3600000), (long long)(FV_HLC_MAX_DRIFT_MS / 3600000));
        return -1;
    }
    if (fvd_rows_note(x->rows, c) != 0) {
        snprintf(err, errcap, "out of memory noting the rows of the batch");
        return -1;
    }
    return 0;
}

/* ---- Pass 2: merge and append ---- */

/* What the store says about one (team, class) during a push: its current
 * key version and whether the pushing device holds a grant for it. */
typedef struct key_seen {
    char team[FVD_NAME_MAX + 1];
    int cls;
    uint32_t version;
    int holds; /* -1: not looked up yet */
} key_seen;

#define KEYS_SEEN_MAX 16

typedef struct apply_ctx {
    fvd_store *s;
    uint32_t accepted;
    fv_status st;      /* the store's failure, if any */
    char err[256];
    const fvd_rows *rows;
    const fv__policy *policy;
    const fvd_device *dev;
    fieldvault_v1_Rejection *rej; /* FV_WIRE_REJECTIONS_MAX */
    size_t nrej;
    uint64_t refused;  /* all refused changes (nrej keeps the first ones) */
    unsigned char (*moved)[FV_ROWID_LEN]; /* customers whose owner or team changed */
    size_t nmoved, capmoved;
    key_seen seen[KEYS_SEEN_MAX]; /* the first (team, class) pairs of the batch */
    size_t nseen;
} apply_ctx;

FVD_PRINTF(4, 5)
static void reject(apply_ctx *x, const fv__change *c, fieldvault_v1_Reason reason,
                   const char *fmt, ...)
{
    if (x->nrej < FV_WIRE_REJECTIONS_MAX) {
        fieldvault_v1_Rejection *r = &x->rej[x->nrej++];
        memset(r, 0, sizeof *r);
        r->device_seq = c->device_seq;
        r->reason = reason;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->message, sizeof r->message, fmt, ap);
        va_end(ap);
        fvd_utf8_fix(r->message); /* a cut name must not make the answer invalid */
    }
    x->refused++;
}

/* The entry for (team, cls), looked up in the store if new; NULL with
 * x->st set on a store failure.  Past KEYS_SEEN_MAX pairs, the last slot
 * is reused. */
static key_seen *key_of(apply_ctx *x, const char *team, int cls)
{
    for (size_t i = 0; i < x->nseen; i++)
        if (x->seen[i].cls == cls && strcmp(x->seen[i].team, team) == 0) return &x->seen[i];
    key_seen *k = &x->seen[x->nseen < KEYS_SEEN_MAX ? x->nseen++ : KEYS_SEEN_MAX - 1];
    memset(k, 0, sizeof *k);
    snprintf(k->team, sizeof k->team, "%s", team);
    k->cls = cls;
    k->holds = -1;
    x->st = x->s->ops->current_key_version(x->s, team, cls, &k->version, x->err, sizeof x->err);
    if (x->st != FV_OK) {
        k->team[0] = '\0'; /* not a valid entry */
        k->cls = -1;
        return NULL;
    }
    return k;
}

typedef struct holds_ctx {
    const key_seen *k;
    int holds;
    uint64_t last;
} holds_ctx;

static int holds_cb(void *ctx, const fvd_grant *g)
{
    holds_ctx *h = ctx;
    h->last = g->seq;
    if (g->cls == h->k->cls && strcmp(g->team, h->k->team) == 0) h->holds = 1;
    return 0;
}

/* Does the pushing device hold any grant of k's team and class?  (Only for
 * a refusal's hint.)  -1 on a store failure (x->st). */
static int device_holds(apply_ctx *x, key_seen *k)
{
    if (k->holds >= 0) return k->holds;
    holds_ctx h = {k, 0, 0};
    int more = 1;
    while (more && !h.holds) {
        uint64_t after = h.last;
        x->st = x->s->ops->list_grants(x->s, x->dev->id, after, 256, holds_cb, &h, &more, x->err,
                                       sizeof x->err);
        if (x->st != FV_OK) return -1;
        if (h.last == after) break;
    }
    k->holds = h.holds;
    return k->holds;
}

/* A pii or confidential value c of a row whose team has a key of that
 * class must be sealed with such a key.  1 to apply c, 0 when it was
 * refused, -1 on a store failure (x->st). */
static int sealing_ok(apply_ctx *x, const fv__change *c, fv_field_class cls)
{
    if (cls == FV_CLASS_PUBLIC || c->kind == FV__VAL_NULL) return 1;
    const char *team = fvd_rows_team(x->rows, c);
    if (team[0] == '\0') return 1; /* no team: no key */
    key_seen *k = key_of(x, team, (int)cls);
    if (k == NULL) return -1;
    const char *name = cls == FV_CLASS_PII ? "pii" : "confidential";
    if (c->kind == FV__VAL_SEALED) {
        fv__sealed_hdr h;
        if (fv__fc_parse(c->data, c->len, &h) != 0) {
            if (k->version == 0) return 1; /* no keys: taken as it is */
            reject(x, c, fieldvault_v1_Reason_REASON_MALFORMED,
                   "%s.%s: not a well-formed sealed value", c->table, c->field);
            return 0;
        }
        if (h.cls != (int)cls && k->version > 0) {
            reject(x, c, fieldvault_v1_Reason_REASON_MALFORMED,
                   "%s.%s is %s but its value is sealed with a %s key", c->table, c->field,
                   name, h.cls == FV_CLASS_PII ? "pii" : "confidential");
            return 0;
        }
        return 1;
    }
    if (k->version == 0) return 1; /* the team has no key of this class (yet) */
    int holds = device_holds(x, k);
    if (holds < 0) return -1;
    if (holds)
        reject(x, c, fieldvault_v1_Reason_REASON_FORBIDDEN,
               "%s.%s must be sealed with team %s's %s key (current version %u)", c->table,
               c->field, team, name, (unsigned)k->version);
    else
        reject(x, c, fieldvault_v1_Reason_REASON_FORBIDDEN,
               "%s.%s must be sealed with team %s's %s key (this device holds no grant yet: "
               "fvd admin keys grant %s)", c->table, c->field, team, name, team);
    return 0;
}

/* Note a customer whose owner or team the batch changed. */
static int note_moved(apply_ctx *x, const unsigned char id[FV_ROWID_LEN])
{
    for (size_t i = 0; i < x->nmoved; i++)
        if (memcmp(x->moved[i], id, FV_ROWID_LEN) == 0) return 0;
    if (x->nmoved == x->capmoved) {
        size_t cap = x->capmoved ? x->capmoved * 2 : 16;
        void *p = realloc(x->moved, cap * sizeof *x->moved);
        if (p == NULL) return -1;
        x->moved = p;
        x->capmoved = cap;
    }
    memcpy(x->moved[x->nmoved++], id, FV_ROWID_LEN);
    return 0;
}

/* Append the current change of every field of a row again, with a new
 * sequence number: users who just came into the row's scope pull it. */
static fv_status redeliver_row(fvd_store *s, const char *tbl, const unsigned char id[FV_ROWID_LEN],
                               fv__change *buf, char *err, size_t errcap)
{
    size_t n = 0;
    fv_status st = s->ops->row_fields(s, tbl, id, buf, FV_RECORD_FIELDS_MAX + 1, &n, err, errcap);
    for (size_t i = 0; st == FV_OK && i < n; i++) {
        uint64_t seq;
        st = s->ops->append(s, &buf[i], &seq, err, errcap);
    }
    return st;
}

/* A customer moved to another owner or team: its new scope receives the
 * whole current row, its contacts and its visits on the next pull. */
static fv_status redeliver_moved(apply_ctx *x, char *err, size_t errcap)
{
    fv__change *buf = calloc(FV_RECORD_FIELDS_MAX + 1, sizeof *buf);
    if (buf == NULL) return FV_ENOMEM;
    fv_status st = FV_OK;
    for (size_t i = 0; st == FV_OK && i < x->nmoved; i++) {
        st = redeliver_row(x->s, "customer", x->moved[i], buf, err, errcap);
        char text[FV_ID_LEN + 1];
        fv__uuid_format(x->moved[i], text);
        fvd_row_ref *rows = NULL;
        size_t n = 0;
        if (st == FV_OK) st = x->s->ops->customer_rows(x->s, text, &rows, &n, err, errcap);
        static const char *const children[] = FVD_CHILD_TABLES;
        for (size_t k = 0; st == FV_OK && k < n; k++)
            if (rows[k].table >= 0 && rows[k].table < FVD_NCHILD_TABLES)
                st = redeliver_row(x->s, children[rows[k].table], rows[k].id, buf, err, errcap);
        free(rows);
    }
    free(buf);
    return st;
}

static int apply_sink(void *ctx, const fv__change *c, char *err, size_t errcap)
{
    apply_ctx *x = ctx;
    char why[200];
    if (!fvd_rows_may_write(x->rows, x->policy, x->dev, c, why, sizeof why)) {
        /* refused alone: the rest of the batch applies */
        reject(x, c, fieldvault_v1_Reason_REASON_FORBIDDEN, "%s", why);
        return 0;
    }
    int sealed = sealing_ok(x, c, fvd_field_class(c));
    if (sealed < 0) {
        snprintf(err, errcap, "store failure");
        return -1;
    }
    if (sealed == 0) return 0;
    fv__ver cur, in;
    int found = 0;
    x->st = x->s->ops->get_version(x->s, c, &cur, &found, x->err, sizeof x->err);
    if (x->st != FV_OK) {
        snprintf(err, errcap, "store failure");
        return -1;
    }
    memset(&in, 0, sizeof in);
    in.hlc = c->hlc;
    in.base_hlc = c->base_hlc;
    memcpy(in.device, c->device, sizeof in.device);
    /* values_equal only decides whether to log a conflict, which the
     * server does not keep: the devices log theirs. */
    fv__merge_result m = fv__merge(found ? &cur : NULL, &in, 0);
    if (!m.take) return 0;
    uint64_t seq;
    x->st = x->s->ops->append(x->s, c, &seq, x->err, sizeof x->err);
    if (x->st != FV_OK) {
        snprintf(err, errcap, "store failure");
        return -1;
    }
    x->accepted++;
    /* a customer changing hands (not one being created: found) */
    if (found && strcmp(c->table, "customer") == 0 &&
        (strcmp(c->field, "owner") == 0 || strcmp(c->field, "team") == 0) &&
        note_moved(x, c->row_id) != 0) {
        x->st = FV_ENOMEM;
        snprintf(x->err, sizeof x->err, "out of memory");
        snprintf(err, errcap, "store failure");
        return -1;
    }
    return 0;
}

/* ---- The chain ---- */

/* 0 to apply, 1 for a duplicate, -1 for a conflict (why says which). */
static int chain_check(const fvd_device *cur, const fv__push_info *info,
                       const unsigned char body_hash[32], char *why, size_t cap)
{
    uint64_t seq = info->batch_seq, last = cur->last_batch_seq;
    if (seq == last + 1) {
        if (memcmp(info->prev_batch_hash, cur->last_batch_hash, 32) == 0) return 0;
        snprintf(why, cap, "batch %llu does not chain on batch %llu, the last one applied "
                 "(its prev_batch_hash differs)", ull(seq), ull(last));
    } else if (seq == last && last > 0) {
        if (memcmp(body_hash, cur->last_batch_hash, 32) == 0) return 1;
        snprintf(why, cap, "batch %llu was applied already with other content", ull(seq));
    } else if (seq < last) {
        snprintf(why, cap, "batch %llu goes backwards: batches up to %llu from this device "
                 "are applied already", ull(seq), ull(last));
    } else {
        snprintf(why, cap, "batch %llu leaves a gap: the last batch applied from this device "
                 "is %llu", ull(seq), ull(last));
    }
    return -1;
}

static void reply_push(fvd_reply *r, uint64_t seq, uint32_t accepted, uint64_t head,
                       int duplicate, fieldvault_v1_Rejection *rej, size_t nrej)
{
    fv__push_response pr;
    memset(&pr, 0, sizeof pr);
    pr.batch_seq = seq;
    pr.accepted = accepted;
    pr.server_seq = head;
    pr.duplicate = duplicate;
    pr.rejections = rej;
    pr.nrejections = nrej;
    pr.rejections_cap = nrej;
    char err[256];
    r->body.len = 0;
    if (fv__wire_encode_push_response(&pr, fv__membuf_write, &r->body, err, sizeof err) != FV_OK) {
        fvd_refuse(r, 500, fieldvault_v1_ErrorCode_ERROR_CODE_INTERNAL,
                   "cannot encode the push answer: %s", err);
        return;
    }
    r->status = 200;
}

/* Pass 1: decode and check the whole batch; 0 with *info, or -1 with r
 * a refusal. */
static int check_batch(const fvd_device *dev, const unsigned char *body, size_t len,
                       int64_t now_ms, fv__push_info *info, fvd_reply *r, fvd_rows *rows)
{
    char err[512] = "";
    check_ctx cx = {dev, now_ms, 0, rows};
    fv__membuf in;
    fv__membuf_init_read(&in, body, len);
    fv_status st = fv__wire_decode_push_request(fv__membuf_read, &in, check_sink, &cx, info,
                                                err, sizeof err);
    fv__membuf_free(&in);
    if (st == FV_EPROTO)
        return fvd_refuse(r, 400, BAD_REQUEST, "push refused, nothing applied: %s", err);
    if (st != FV_OK)
        return fvd_refuse(r, 500, fieldvault_v1_ErrorCode_ERROR_CODE_INTERNAL,
                          "cannot decode the push (%s)", fv_status_str(st));
    if (memcmp(info->device_id, dev->id, FV_DEVICE_LEN) != 0) {
        char mine[2 * FV_DEVICE_LEN + 1], other[2 * FV_DEVICE_LEN + 1];
        fvd_hex(dev->id, FV_DEVICE_LEN, mine);
        fvd_hex(info->device_id, FV_DEVICE_LEN, other);
        return fvd_refuse(r, 400, BAD_REQUEST, "the push request names device %s but was "
                          "signed by device %s", other, mine);
    }
    if (info->batch_seq == 0) return fvd_refuse(r, 400, BAD_REQUEST, "batch_seq must be 1 or more");
    return 0;
}

static void push_with(fvd_store *s, const fvd_device *dev, const unsigned char *body, size_t len,
                      const unsigned char body_hash[32], int64_t now_ms, fvd_reply *r,
                      fvd_rows *rows, fieldvault_v1_Rejection *rej)
{
    char err[512] = "";
    char hex[2 * FV_DEVICE_LEN + 1];
    fvd_hex(dev->id, FV_DEVICE_LEN, hex);
    fv__push_info info;
    if (check_batch(dev, body, len, now_ms, &info, r, rows) != 0) return;

    /* pass 2 */
    fvd_device cur;
    fv_status st = s->ops->push_begin(s, dev->id, &cur, err, sizeof err);
    if (st == FV_ENOTFOUND) {
        fvd_refuse(r, 401, fieldvault_v1_ErrorCode_ERROR_CODE_UNAUTHENTICATED,
                   "unknown device %s", hex);
        return;
    }
    if (st != FV_OK) {
        fvd_refuse_store(r, st, "starting the push", err);
        return;
    }
    if (cur.revoked) {
        if (s->ops->push_end(s, 0, err, sizeof err) != FV_OK)
            fvd_log("rolling back a push: %s", err);
        fvd_refuse(r, 403, fieldvault_v1_ErrorCode_ERROR_CODE_REVOKED,
                   "device %s was revoked: erase its store", hex);
        return;
    }
    char why[256];
    int chain = chain_check(&cur, &info, body_hash, why, sizeof why);
    uint64_t head = 0;
    if (chain != 0) {
        fv_status hst = chain > 0 ? s->ops->head(s, &head, err, sizeof err) : FV_OK;
        fv_status est = s->ops->push_end(s, 0, err, sizeof err);
        if (chain > 0 && hst == FV_OK && est == FV_OK) {
            reply_push(r, info.batch_seq, 0, head, 1, NULL, 0);
        } else if (chain > 0) {
            fvd_refuse_store(r, hst != FV_OK ? hst : est, "answering a retried batch", err);
        } else {
            fvd_log("push conflict from device %s (user %s): %s", hex, cur.user, why);
            fvd_refuse(r, 409, fieldvault_v1_ErrorCode_ERROR_CODE_CONFLICT,
                       "%s: this device's store looks restored from an old copy; "
                       "do not retry", why);
        }
        return;
    }
    /* who may write each row: judged before anything of the batch applies */
    st = fvd_rows_resolve(rows, s, err, sizeof err);
    if (st != FV_OK) {
        char end_err[256];
        if (s->ops->push_end(s, 0, end_err, sizeof end_err) != FV_OK)
            fvd_log("rolling back a push: %s", end_err);
        fvd_refuse_store(r, st, "reading the rows of the batch", err);
        return;
    }
    /* the policy in force, read inside the push transaction */
    fv__policy policy;
    st = fvd_policy_current(s, &policy, NULL, err, sizeof err);
    if (st != FV_OK) {
        char end_err[256];
        if (s->ops->push_end(s, 0, end_err, sizeof end_err) != FV_OK)
            fvd_log("rolling back a push: %s", end_err);
        fvd_refuse_store(r, st, "reading the access policy", err);
        return;
    }
    apply_ctx ax;
    memset(&ax, 0, sizeof ax);
    ax.s = s;
    ax.rows = rows;
    ax.policy = &policy;
    ax.dev = &cur;
    ax.rej = rej;
    fv__membuf in;
    fv__membuf_init_read(&in, body, len);
    st = fv__wire_decode_push_request(fv__membuf_read, &in, apply_sink, &ax, NULL, err,
                                      sizeof err);
    fv__membuf_free(&in);
    const char *what = "applying the batch";
    if (st == FV_OK && ax.st == FV_OK && ax.nmoved > 0) {
        what = "delivering reassigned customers";
        st = redeliver_moved(&ax, err, sizeof err);
    }
    free(ax.moved);
    ax.moved = NULL;
    if (st == FV_OK && ax.st == FV_OK) {
        what = "recording the batch";
        st = s->ops->set_batch(s, dev->id, info.batch_seq, body_hash, err, sizeof err);
        if (st == FV_OK) st = s->ops->head(s, &head, err, sizeof err);
        if (st == FV_OK) {
            what = "committing the batch";
            st = s->ops->push_end(s, 1, err, sizeof err);
            if (st == FV_OK) {
                if (ax.refused > 0)
                    fvd_log("device %s (user %s, role %s): %llu change(s) refused, first: %s",
                            hex, cur.user, cur.role, ull(ax.refused), ax.rej[0].message);
                reply_push(r, info.batch_seq, ax.accepted, head, 0, ax.rej, ax.nrej);
                return;
            }
            fvd_refuse_store(r, st, what, err);
            return;
        }
    } else if (ax.st != FV_OK) {
        st = ax.st;
        snprintf(err, sizeof err, "%s", ax.err);
    }
    char end_err[256];
    fv_status est = s->ops->push_end(s, 0, end_err, sizeof end_err);
    if (est != FV_OK) fvd_log("rolling back a push: %s", end_err);
    if (st == FV_OK) st = FV_EINTERNAL; /* pass 2 decoded differently: cannot happen */
    fvd_refuse_store(r, st, what, err);
}

void fvd_push(fvd_store *s, const fvd_device *dev, const unsigned char *body, size_t len,
              const unsigned char body_hash[32], int64_t now_ms, fvd_reply *r)
{
    fvd_rows *rows = fvd_rows_new();
    fieldvault_v1_Rejection *rej = calloc(FV_WIRE_REJECTIONS_MAX, sizeof *rej);
    if (rows == NULL || rej == NULL)
        fvd_refuse(r, 503, fieldvault_v1_ErrorCode_ERROR_CODE_UNAVAILABLE,
                   "out of memory: retry later");
    else
        push_with(s, dev, body, len, body_hash, now_ms, r, rows, rej);
    fvd_rows_free(rows);
    free(rej);
}
