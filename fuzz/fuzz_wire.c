/*
 * fuzz_wire.c - every top-level protobuf message a device or fvd accepts,
 * decoded from hostile bytes by sync/wire.c (and nanopb under it).
 *
 * Input: byte 0 picks the message (ChangeSet, PushRequest, PullResponse,
 * PushResponse, PullRequest, Error, EnrollRequest, EnrollResponse); byte 1
 * is the chunk size the streaming decoders are fed in (1..256, 0 = 64 KiB),
 * so refills happen at every possible offset; the rest is the message.
 *
 * Beyond "no crash, no leak, no undefined behaviour", each accepted message
 * must keep the decoder's promises:
 *  - every change handed to the sink passes fv__wire_check_change, and the
 *    count trailer equals the number of changes;
 *  - what was accepted re-encodes (the encoders check the same rules), and
 *    the re-encoded bytes decode to exactly the same message (round trip);
 *  - strings come out NUL-terminated, valid UTF-8 as documented.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "internal.h"
#include "wire.h"

#define KEEP 16 /* changes kept for the round trip; more are only counted */
#define REJ_CAP 8

enum { M_CHANGESET, M_PUSH_REQ, M_PULL_RESP, M_PUSH_RESP, M_PULL_REQ, M_ERROR, M_ENROLL_REQ,
       M_ENROLL_RESP, M_COUNT };

typedef struct kept {
    fv__change *v; /* KEEP entries */
    size_t n;      /* changes seen */
} kept;

static fv__change *keep_buf, *again_buf;

static int keep_sink(void *ctx, const fv__change *c, char *err, size_t errcap)
{
    kept *k = ctx;
    char why[256];
    FZ_CHECK(fv__wire_check_change(c, why, sizeof why) == FV_OK,
             "the decoder delivered an invalid change #%zu: %s", k->n, why);
    FZ_CHECK(c->len <= FV_SEALED_MAX, "change length %zu", c->len);
    if (k->n < KEEP) k->v[k->n] = *c;
    k->n++;
    (void)err;
    (void)errcap;
    return 0;
}

typedef struct vec_src {
    const fv__change *v;
    size_t n, i;
} vec_src;

static int vec_next(void *ctx, fv__change *out)
{
    vec_src *s = ctx;
    if (s->i == s->n) return 0;
    *out = s->v[s->i++];
    return 1;
}

static void same_change(const fv__change *a, const fv__change *b, size_t i)
{
    FZ_CHECK(strcmp(a->table, b->table) == 0 && strcmp(a->field, b->field) == 0,
             "round trip changed the names of change %zu", i);
    FZ_CHECK(memcmp(a->row_id, b->row_id, FV_ROWID_LEN) == 0 &&
                 memcmp(a->device, b->device, FV_DEVICE_LEN) == 0,
             "round trip changed the ids of change %zu", i);
    FZ_CHECK(a->hlc == b->hlc && a->base_hlc == b->base_hlc && a->device_seq == b->device_seq,
             "round trip changed the clocks of change %zu", i);
    FZ_CHECK(a->kind == b->kind, "round trip changed the kind of change %zu", i);
    if (a->kind == FV__VAL_REAL)
        FZ_CHECK(memcmp(&a->real, &b->real, sizeof a->real) == 0,
                 "round trip changed the real of change %zu", i);
    if (a->kind == FV__VAL_TEXT || a->kind == FV__VAL_SEALED)
        FZ_CHECK(a->len == b->len && memcmp(a->data, b->data, a->len) == 0,
                 "round trip changed the value of change %zu", i);
}

static int utf8_ok(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap) return 0; /* not terminated */
    return fv__utf8_valid(s, n);
}

/* ---- streaming messages ---- */

static void stream(int which, const uint8_t *p, size_t n, size_t chunk)
{
    char err[256] = "";
    kept k = {keep_buf, 0};
    fz_src src;
    fz_src_init(&src, p, n, chunk);
    fv__changeset_info cs;
    fv__push_info ph;
    fv__pull_info pl;
    fv_status st;
    uint64_t count;
    if (which == M_CHANGESET) {
        st = fv__wire_decode_changeset(fz_src_read, &src, keep_sink, &k, &cs, err, sizeof err);
        count = cs.count;
    } else if (which == M_PUSH_REQ) {
        st = fv__wire_decode_push_request(fz_src_read, &src, keep_sink, &k, &ph, err, sizeof err);
        count = ph.count;
    } else {
        st = fv__wire_decode_pull_response(fz_src_read, &src, keep_sink, &k, &pl, err,
                                           sizeof err);
        count = pl.count;
    }
    FZ_CHECK(st == FV_OK || st == FV_EPROTO, "decode returned %d (%s)", (int)st, err);
    FZ_CHECK(strnlen(err, sizeof err) < sizeof err, "unterminated message");
    if (st != FV_OK) return;
    FZ_CHECK(count == k.n, "count trailer %llu but %zu changes delivered",
             (unsigned long long)count, k.n);
    if (which == M_PULL_RESP) FZ_CHECK(pl.more == 0 || pl.more == 1, "more = %d", pl.more);
    if (k.n > KEEP) return;

    /* round trip */
    fv__membuf out;
    fv__membuf_init(&out, 0);
    vec_src vs = {keep_buf, k.n, 0};
    uint64_t wrote = 0;
    if (which == M_CHANGESET)
        st = fv__wire_encode_changeset(cs.origin, vec_next, &vs, fv__membuf_write, &out, &wrote,
                                       err, sizeof err);
    else if (which == M_PUSH_REQ)
        st = fv__wire_encode_push_request(&ph, vec_next, &vs, fv__membuf_write, &out, &wrote, err,
                                          sizeof err);
    else
        st = fv__wire_encode_pull_response(&pl, vec_next, &vs, fv__membuf_write, &out, &wrote,
                                           err, sizeof err);
    FZ_CHECK(st == FV_OK, "an accepted message does not re-encode: %s", err);
    FZ_CHECK(wrote == k.n, "re-encoded %llu of %zu changes", (unsigned long long)wrote, k.n);
    kept k2 = {again_buf, 0};
    fv__membuf in;
    fv__membuf_init_read(&in, fv__membuf_bytes(&out), out.len);
    fv__changeset_info cs2;
    fv__push_info ph2;
    fv__pull_info pl2;
    if (which == M_CHANGESET) {
        st = fv__wire_decode_changeset(fv__membuf_read, &in, keep_sink, &k2, &cs2, err,
                                       sizeof err);
        if (st == FV_OK)
            FZ_CHECK(cs2.version == cs.version && memcmp(cs2.origin, cs.origin, 16) == 0,
                     "round trip changed the set's header");
    } else if (which == M_PUSH_REQ) {
        st = fv__wire_decode_push_request(fv__membuf_read, &in, keep_sink, &k2, &ph2, err,
                                          sizeof err);
        if (st == FV_OK)
            FZ_CHECK(ph2.batch_seq == ph.batch_seq &&
                         memcmp(ph2.device_id, ph.device_id, 16) == 0 &&
                         memcmp(ph2.prev_batch_hash, ph.prev_batch_hash, 32) == 0,
                     "round trip changed the push header");
    } else {
        st = fv__wire_decode_pull_response(fv__membuf_read, &in, keep_sink, &k2, &pl2, err,
                                           sizeof err);
        if (st == FV_OK)
            FZ_CHECK(pl2.cursor == pl.cursor && pl2.more == pl.more,
                     "round trip changed the pull header");
    }
    FZ_CHECK(st == FV_OK, "our own encoding does not decode: %s", err);
    FZ_CHECK(k2.n == k.n, "round trip: %zu changes, then %zu", k.n, k2.n);
    for (size_t i = 0; i < k.n; i++) same_change(&keep_buf[i], &again_buf[i], i);
    fv__membuf_free(&in);
    fv__membuf_free(&out);
}

/* ---- whole messages ---- */

static void whole(int which, const uint8_t *p, size_t n)
{
    char err[256] = "";
    fv__membuf out;
    fv__membuf_init(&out, FV_WIRE_MESSAGE_MAX_BYTES);
    fv_status st = FV_OK, est = FV_OK;
    switch (which) {
    case M_PUSH_RESP: {
        fieldvault_v1_Rejection rej[REJ_CAP], rej2[REJ_CAP];
        fv__push_response m, m2;
        memset(&m, 0, sizeof m);
        m.rejections = rej;
        m.rejections_cap = REJ_CAP;
        st = fv__wire_decode_push_response(p, n, &m, err, sizeof err);
        if (st != FV_OK) break;
        FZ_CHECK(m.nrejections <= REJ_CAP, "%zu rejections in an array of %d", m.nrejections,
                 REJ_CAP);
        FZ_CHECK(m.duplicate == 0 || m.duplicate == 1, "duplicate = %d", m.duplicate);
        for (size_t i = 0; i < m.nrejections; i++)
            FZ_CHECK(utf8_ok(rej[i].message, sizeof rej[i].message), "rejection message");
        est = fv__wire_encode_push_response(&m, fv__membuf_write, &out, err, sizeof err);
        FZ_CHECK(est == FV_OK, "an accepted push response does not re-encode: %s", err);
        memset(&m2, 0, sizeof m2);
        m2.rejections = rej2;
        m2.rejections_cap = REJ_CAP;
        est = fv__wire_decode_push_response(fv__membuf_bytes(&out), out.len, &m2, err,
                                            sizeof err);
        FZ_CHECK(est == FV_OK, "our push response does not decode: %s", err);
        FZ_CHECK(m2.batch_seq == m.batch_seq && m2.accepted == m.accepted &&
                     m2.server_seq == m.server_seq && m2.duplicate == m.duplicate &&
                     m2.nrejections == m.nrejections,
                 "push response round trip");
        for (size_t i = 0; i < m.nrejections; i++)
            FZ_CHECK(rej2[i].device_seq == rej[i].device_seq && rej2[i].reason == rej[i].reason &&
                         strcmp(rej2[i].message, rej[i].message) == 0,
                     "rejection %zu round trip", i);
        break;
    }
    case M_PULL_REQ: {
        fieldvault_v1_PullRequest m, m2;
        st = fv__wire_decode_pull_request(p, n, &m, err, sizeof err);
        if (st != FV_OK) break;
        est = fv__wire_encode_pull_request(&m, fv__membuf_write, &out, err, sizeof err);
        FZ_CHECK(est == FV_OK, "an accepted pull request does not re-encode: %s", err);
        est = fv__wire_decode_pull_request(fv__membuf_bytes(&out), out.len, &m2, err, sizeof err);
        FZ_CHECK(est == FV_OK, "our pull request does not decode: %s", err);
        FZ_CHECK(memcmp(m.device_id, m2.device_id, 16) == 0 && m.cursor == m2.cursor &&
                     m.max_changes == m2.max_changes,
                 "pull request round trip");
        break;
    }
    case M_ERROR: {
        fieldvault_v1_Error m, m2;
        st = fv__wire_decode_error(p, n, &m, err, sizeof err);
        if (st != FV_OK) break;
        FZ_CHECK(utf8_ok(m.message, sizeof m.message), "error message");
        est = fv__wire_encode_error(&m, fv__membuf_write, &out, err, sizeof err);
        FZ_CHECK(est == FV_OK, "an accepted error does not re-encode: %s", err);
        est = fv__wire_decode_error(fv__membuf_bytes(&out), out.len, &m2, err, sizeof err);
        FZ_CHECK(est == FV_OK, "our error does not decode: %s", err);
        FZ_CHECK(m.code == m2.code && strcmp(m.message, m2.message) == 0, "error round trip");
        break;
    }
    case M_ENROLL_REQ: {
        fieldvault_v1_EnrollRequest m, m2;
        st = fv__wire_decode_enroll_request(p, n, &m, err, sizeof err);
        if (st != FV_OK) break;
        FZ_CHECK(utf8_ok(m.code, sizeof m.code) && m.code[0] != '\0', "enrol code");
        FZ_CHECK(utf8_ok(m.device_name, sizeof m.device_name), "device name");
        est = fv__wire_encode_enroll_request(&m, fv__membuf_write, &out, err, sizeof err);
        FZ_CHECK(est == FV_OK, "an accepted enrol request does not re-encode: %s", err);
        est = fv__wire_decode_enroll_request(fv__membuf_bytes(&out), out.len, &m2, err,
                                             sizeof err);
        FZ_CHECK(est == FV_OK, "our enrol request does not decode: %s", err);
        FZ_CHECK(strcmp(m.code, m2.code) == 0 && strcmp(m.device_name, m2.device_name) == 0 &&
                     memcmp(m.device_id, m2.device_id, 16) == 0 &&
                     memcmp(m.public_key, m2.public_key, 32) == 0,
                 "enrol request round trip");
        break;
    }
    case M_ENROLL_RESP: {
        fieldvault_v1_EnrollResponse m, m2;
        st = fv__wire_decode_enroll_response(p, n, &m, err, sizeof err);
        if (st != FV_OK) break;
        FZ_CHECK(utf8_ok(m.user, sizeof m.user) && m.user[0] != '\0' &&
                     utf8_ok(m.role, sizeof m.role) && m.role[0] != '\0' &&
                     utf8_ok(m.team, sizeof m.team),
                 "enrol response strings");
        est = fv__wire_encode_enroll_response(&m, fv__membuf_write, &out, err, sizeof err);
        FZ_CHECK(est == FV_OK, "an accepted enrol response does not re-encode: %s", err);
        est = fv__wire_decode_enroll_response(fv__membuf_bytes(&out), out.len, &m2, err,
                                              sizeof err);
        FZ_CHECK(est == FV_OK, "our enrol response does not decode: %s", err);
        FZ_CHECK(strcmp(m.user, m2.user) == 0 && strcmp(m.role, m2.role) == 0 &&
                     strcmp(m.team, m2.team) == 0 && m.server_time_ms == m2.server_time_ms &&
                     memcmp(m.device_id, m2.device_id, 16) == 0,
                 "enrol response round trip");
        break;
    }
    default:
        break;
    }
    FZ_CHECK(st == FV_OK || st == FV_EPROTO, "decode returned %d (%s)", (int)st, err);
    FZ_CHECK(strnlen(err, sizeof err) < sizeof err, "unterminated message");
    fv__membuf_free(&out);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    keep_buf = calloc(KEEP, sizeof *keep_buf);
    again_buf = calloc(KEEP, sizeof *again_buf);
    if (keep_buf == NULL || again_buf == NULL) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    int which = fz_u8(&in) % M_COUNT;
    uint8_t c = fz_u8(&in);
    size_t chunk = c == 0 ? (size_t)64 << 10 : c;
    if (which <= M_PULL_RESP) stream(which, in.p, in.n, chunk);
    else if (in.n <= FV_WIRE_MESSAGE_MAX_BYTES) whole(which, in.p, in.n);
    return 0;
}
