/*
 * gen_corpus.c - writes the seed corpora of the fuzz harnesses:
 *
 *     fuzz_gen_corpus fuzz/corpus
 *
 * (re)creates fuzz/corpus/{wire,fvd,vfs,apply,fv_args,csv}/ with a few dozen
 * small, valid-or-nearly-valid inputs each, in the input formats the
 * harnesses document: every message type with each streaming chunk size
 * class, signed and unsigned fvd requests that reach each handler, store
 * images (raw) and operation lists (op mode), change sets that merge,
 * conflict, delete and restore against the apply harness's base rows,
 * fv command lines, and CSV sheets for fv import's reader.  The committed corpora were made with it; regenerate
 * after a format change.  Store images differ from run to run (random keys
 * and nonces); everything else is deterministic.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "fuzz_common.h"
#include "wire.h"

static const char *root;
static int written;

static void put(const char *dir, const char *name, const unsigned char *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", root, dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "gen_corpus: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    written++;
}

/* prefix bytes + body */
static void put2(const char *dir, const char *name, const unsigned char *pre, size_t npre,
                 const unsigned char *body, size_t n)
{
    unsigned char *b = malloc(npre + n + 1);
    if (b == NULL) exit(1);
    memcpy(b, pre, npre);
    if (n > 0) memcpy(b + npre, body, n);
    put(dir, name, b, npre + n);
    free(b);
}

static void check(fv_status st, const char *what, const char *err)
{
    if (st != FV_OK) {
        fprintf(stderr, "gen_corpus: %s: %s\n", what, err);
        exit(1);
    }
}

/* ---- change vectors ---- */

typedef struct vec {
    fv__change v[24];
    size_t n, i;
} vec;

static int vec_next(void *ctx, fv__change *out)
{
    vec *s = ctx;
    if (s->i == s->n) return 0;
    *out = s->v[s->i++];
    return 1;
}

static void ref_text(int row, char out[FV_ID_LEN + 1])
{
    unsigned char id[16];
    fz_row_id(row, id);
    snprintf(out, FV_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0], id[1],
             id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13],
             id[14], id[15]);
}

/* A few changes by device dev: an edit of customer 0, a new visit, a sealed
 * pii value, a cleared field, a tombstone. */
static void some_changes(vec *v, int dev, int64_t ms)
{
    char ref[FV_ID_LEN + 1];
    ref_text(0, ref);
    v->n = v->i = 0;
    fz_change_text(&v->v[v->n++], "customer", 0, "stage", "negotiation", dev, FZ_HLC(ms, 0),
                   FZ_HLC(-60000, 0));
    fz_change_text(&v->v[v->n++], "visit", 10 + dev, "customer_id", ref, dev, FZ_HLC(ms, 1), 0);
    fz_change_text(&v->v[v->n++], "visit", 10 + dev, "method", "video", dev, FZ_HLC(ms, 1), 0);
    fz_change_text(&v->v[v->n++], "visit", 10 + dev, "summary", "Demo \xe2\x9c\x93 done", dev,
                   FZ_HLC(ms, 1), 0);
    fz_change_real(&v->v[v->n++], "visit", 10 + dev, "lon", -3.5, dev, FZ_HLC(ms, 1), 0);
    fv__change *s = &v->v[v->n++];
    fz_change_text(s, "contact", 4, "phone", "x", dev, FZ_HLC(ms, 2), 0);
    s->kind = FV__VAL_SEALED;
    s->len = 48;
    for (size_t i = 0; i < s->len; i++) s->data[i] = (unsigned char)(i * 7);
    fz_change_text(&v->v[v->n++], "customer", 1, "next_due", NULL, dev, FZ_HLC(ms, 3),
                   FZ_HLC(-59960, 0));
    fz_change_real(&v->v[v->n++], "customer", 2, FV_FIELD_DELETED, 1.0, dev, FZ_HLC(ms, 4), 0);
}

/* ---- wire ---- */

static void gen_wire(void)
{
    char err[256];
    unsigned char origin[16], hash[32];
    fz_device_id(0, origin);
    memset(hash, 0x33, sizeof hash);
    static const uint8_t chunks[] = {0, 1, 7, 200};
    for (size_t k = 0; k < sizeof chunks; k++) {
        fv__membuf b;
        fv__membuf_init(&b, 0);
        fz_base_src src = {0};
        check(fv__wire_encode_changeset(origin, fz_base_next, &src, fv__membuf_write, &b, NULL,
                                        err, sizeof err),
              "changeset", err);
        unsigned char pre[2] = {0, chunks[k]};
        char name[64];
        snprintf(name, sizeof name, "changeset-base-chunk%u", chunks[k]);
        put2("wire", name, pre, 2, fv__membuf_bytes(&b), b.len);
        fv__membuf_free(&b);
    }
    vec v;
    fv__membuf b;
    /* an empty set, a set of assorted kinds */
    some_changes(&v, 1, 1000);
    size_t counts[] = {0, 8};
    for (size_t k = 0; k < 2; k++) {
        fv__membuf_init(&b, 0);
        v.n = counts[k];
        v.i = 0;
        check(fv__wire_encode_changeset(origin, vec_next, &v, fv__membuf_write, &b, NULL, err,
                                        sizeof err),
              "changeset", err);
        unsigned char pre[2] = {0, 3};
        put2("wire", k == 0 ? "changeset-empty" : "changeset-kinds", pre, 2,
             fv__membuf_bytes(&b), b.len);
        fv__membuf_free(&b);
    }
    /* push request, pull response */
    some_changes(&v, 0, 2000);
    fv__push_info ph;
    memset(&ph, 0, sizeof ph);
    memcpy(ph.device_id, origin, 16);
    ph.batch_seq = 7;
    memcpy(ph.prev_batch_hash, hash, 32);
    fv__membuf_init(&b, 0);
    check(fv__wire_encode_push_request(&ph, vec_next, &v, fv__membuf_write, &b, NULL, err,
                                       sizeof err),
          "push", err);
    unsigned char pre_push[2] = {1, 5};
    put2("wire", "push-request", pre_push, 2, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);
    fv__pull_info pl = {123456, 1, 0};
    v.i = 0;
    fv__membuf_init(&b, 0);
    check(fv__wire_encode_pull_response(&pl, vec_next, &v, fv__membuf_write, &b, NULL, err,
                                        sizeof err),
          "pull response", err);
    unsigned char pre_pull[2] = {2, 64};
    put2("wire", "pull-response", pre_pull, 2, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);
    fv__pull_info empty = {9, 0, 0};
    v.n = v.i = 0;
    fv__membuf_init(&b, 0);
    check(fv__wire_encode_pull_response(&empty, vec_next, &v, fv__membuf_write, &b, NULL, err,
                                        sizeof err),
          "pull response", err);
    put2("wire", "pull-response-empty", pre_pull, 2, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);

    /* whole messages */
    fieldvault_v1_Rejection rej[2];
    memset(rej, 0, sizeof rej);
    rej[0].device_seq = 3;
    rej[0].reason = fieldvault_v1_Reason_REASON_FORBIDDEN;
    snprintf(rej[0].message, sizeof rej[0].message, "role service may not write budget");
    rej[1].device_seq = 9;
    rej[1].reason = fieldvault_v1_Reason_REASON_CLOCK_DRIFT;
    fv__push_response pr = {7, 40, 99, 0, rej, 2, 0};
    fv__membuf_init(&b, 0);
    check(fv__wire_encode_push_response(&pr, fv__membuf_write, &b, err, sizeof err), "pr", err);
    unsigned char pre3[2] = {3, 0};
    put2("wire", "push-response", pre3, 2, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);
    fv__push_response dup = {7, 0, 99, 1, NULL, 0, 0};
    fv__membuf_init(&b, 0);
    check(fv__wire_encode_push_response(&dup, fv__membuf_write, &b, err, sizeof err), "pr", err);
    put2("wire", "push-response-duplicate", pre3, 2, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);

    fieldvault_v1_PullRequest pq = fieldvault_v1_PullRequest_init_zero;
    memcpy(pq.device_id, origin, 16);
    pq.cursor = 77;
    pq.max_changes = 1000;
    fv__membuf_init(&b, 0);
    check(fv__wire_encode_pull_request(&pq, fv__membuf_write, &b, err, sizeof err), "pq", err);
    unsigned char pre4[2] = {4, 0};
    put2("wire", "pull-request", pre4, 2, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);

    fieldvault_v1_Error e = fieldvault_v1_Error_init_zero;
    e.code = fieldvault_v1_ErrorCode_ERROR_CODE_CONFLICT;
    snprintf(e.message, sizeof e.message, "batch 3 goes backwards: caf\xc3\xa9");
    fv__membuf_init(&b, 0);
    check(fv__wire_encode_error(&e, fv__membuf_write, &b, err, sizeof err), "error", err);
    unsigned char pre5[2] = {5, 0};
    put2("wire", "error", pre5, 2, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);

    fieldvault_v1_EnrollRequest er = fieldvault_v1_EnrollRequest_init_zero;
    snprintf(er.code, sizeof er.code, "ABCD-EFGH-JKMN-PQRS-TVWX");
    memcpy(er.device_id, origin, 16);
    memset(er.public_key, 0x42, 32);
    snprintf(er.device_name, sizeof er.device_name, "ana's phone");
    fv__membuf_init(&b, 0);
    check(fv__wire_encode_enroll_request(&er, fv__membuf_write, &b, err, sizeof err), "er", err);
    unsigned char pre6[2] = {6, 0};
    put2("wire", "enroll-request", pre6, 2, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);

    fieldvault_v1_EnrollResponse es = fieldvault_v1_EnrollResponse_init_zero;
    snprintf(es.user, sizeof es.user, "ana");
    snprintf(es.role, sizeof es.role, "rep");
    snprintf(es.team, sizeof es.team, "north");
    es.server_time_ms = FZ_NOW_MS;
    memcpy(es.device_id, origin, 16);
    fv__membuf_init(&b, 0);
    check(fv__wire_encode_enroll_response(&es, fv__membuf_write, &b, err, sizeof err), "es", err);
    unsigned char pre7[2] = {7, 0};
    put2("wire", "enroll-response", pre7, 2, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);
}

/* ---- fvd ---- */

static void push_body(fv__membuf *b, int dev, uint64_t seq, vec *v)
{
    char err[256];
    fv__push_info ph;
    memset(&ph, 0, sizeof ph);
    fz_device_id(dev, ph.device_id);
    ph.batch_seq = seq;
    v->i = 0;
    fv__membuf_init(b, 0);
    check(fv__wire_encode_push_request(&ph, vec_next, v, fv__membuf_write, b, NULL, err,
                                       sizeof err),
          "push", err);
}

static void pull_body(fv__membuf *b, int dev, uint64_t cursor, uint32_t max)
{
    char err[256];
    fieldvault_v1_PullRequest q = fieldvault_v1_PullRequest_init_zero;
    fz_device_id(dev, q.device_id);
    q.cursor = cursor;
    q.max_changes = max;
    fv__membuf_init(b, 0);
    check(fv__wire_encode_pull_request(&q, fv__membuf_write, b, err, sizeof err), "pull", err);
}

static void gen_fvd(void)
{
    char err[256];
    fv__membuf b;
    /* enrolment: the free code (a new device), a wrong code */
    unsigned char pk[32], sk[64], seed[32];
    memset(seed, 0x77, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    const char *codes[] = {"FUZZ-CODE-0000-0000-0001", "fuzz code 0000 0000 0001",
                           "WRNG-CODE-0000-0000-0000"};
    const char *names[] = {"enroll-ok", "enroll-ok-sloppy-code", "enroll-bad-code"};
    for (int k = 0; k < 3; k++) {
        fieldvault_v1_EnrollRequest er = fieldvault_v1_EnrollRequest_init_zero;
        snprintf(er.code, sizeof er.code, "%s", codes[k]);
        fz_device_id(5, er.device_id);
        memcpy(er.public_key, pk, 32);
        snprintf(er.device_name, sizeof er.device_name, "seed phone");
        fv__membuf_init(&b, 0);
        check(fv__wire_encode_enroll_request(&er, fv__membuf_write, &b, err, sizeof err), "er",
              err);
        unsigned char pre = 0x00;
        put2("fvd", names[k], &pre, 1, fv__membuf_bytes(&b), b.len);
        fv__membuf_free(&b);
    }
    /* signed pushes (mode 0): batch 1 applies; others refused */
    vec v;
    some_changes(&v, 0, 1000);
    unsigned char pre = 0x01;
    push_body(&b, 0, 1, &v);
    put2("fvd", "push-signed-batch1", &pre, 1, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);
    push_body(&b, 0, 3, &v);
    put2("fvd", "push-signed-gap", &pre, 1, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);
    some_changes(&v, 1, 1000); /* changes written by another device */
    push_body(&b, 0, 1, &v);
    put2("fvd", "push-signed-foreign-change", &pre, 1, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);
    some_changes(&v, 0, 3LL * 24 * 3600 * 1000); /* beyond the drift bound */
    push_body(&b, 0, 1, &v);
    put2("fvd", "push-signed-future", &pre, 1, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);
    /* the revoked device (mode 1) */
    unsigned char pre_rev = 0x01 | (1 << 2);
    some_changes(&v, 1, 1000);
    push_body(&b, 1, 1, &v);
    put2("fvd", "push-revoked", &pre_rev, 1, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);
    /* signed pulls */
    unsigned char pre_pull = 0x02;
    pull_body(&b, 0, 0, 0);
    put2("fvd", "pull-signed", &pre_pull, 1, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);
    pull_body(&b, 0, 3, 2);
    put2("fvd", "pull-signed-cursor", &pre_pull, 1, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);
    /* raw headers (mode 2) */
    char hex[33];
    unsigned char id[16];
    fz_device_id(0, id);
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", id[i]);
    char sig[129];
    memset(sig, 'a', 128);
    sig[128] = '\0';
    char raw[512];
    int n = snprintf(raw, sizeof raw, "%c%s%c%lld%c%s%c%s%c", 0x02 | (2 << 2), hex, 0,
                     (long long)FZ_NOW_MS, 0, "00112233445566778899aabbccddeeff", 0, sig, 0);
    pull_body(&b, 0, 0, 10);
    put2("fvd", "pull-raw-bad-signature", (unsigned char *)raw, (size_t)n, fv__membuf_bytes(&b),
         b.len);
    fv__membuf_free(&b);
    n = snprintf(raw, sizeof raw, "%c%s%c%s%c%s%c\x01%c", 0x01 | (2 << 2), hex, 0, "17", 0,
                 "0011", 0, 0);
    put("fvd", "push-raw-malformed-headers", (unsigned char *)raw, (size_t)n);
    /* signed, then a header byte flipped (mode 3) */
    for (int h = 0; h < 4; h++) {
        unsigned char fl[4] = {(unsigned char)(0x02 | (3 << 2)), (unsigned char)h, 5, 0x01};
        pull_body(&b, 0, 0, 10);
        char nm[64];
        snprintf(nm, sizeof nm, "pull-flipped-header%d", h);
        put2("fvd", nm, fl, 4, fv__membuf_bytes(&b), b.len);
        fv__membuf_free(&b);
    }
    unsigned char garbage[] = {0x01, 0x0a, 0xff, 0xff, 0x12, 0x00};
    put("fvd", "push-signed-garbage", garbage, sizeof garbage);
}

/* ---- vfs ---- */

static void gen_vfs(void)
{
    char path[512], wal[600];
    fz_path(path, sizeof path, "seed.fv");
    snprintf(wal, sizeof wal, "%s-wal", path);
    fv_db *db;
    if (fz_open(path, FV_OPEN_CREATE, &db) != FV_OK) exit(1);
    fv_record *r;
    if (fv_record_new(db, "customer", &r) != FV_OK || fv_record_set_text(r, "name", "Acme") ||
        fv_record_set_text(r, "grade", "S") || fv_insert(db, r) != FV_OK)
        exit(1);
    char id[FV_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", fv_record_id(r));
    fv_record_free(r);
    if (fv_close(db) != FV_OK) exit(1);
    size_t n, nw = 0;
    unsigned char *img = fz_read_file(path, &n);
    unsigned char pre[5] = {0x00, (unsigned char)n, (unsigned char)(n >> 8),
                            (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
    put2("vfs", "raw-checkpointed", pre, 5, img, n);
    free(img);
    /* with committed frames in the WAL, as after a crash */
    if (fz_open(path, 0, &db) != FV_OK) exit(1);
    if (fv_record_new(db, "visit", &r) != FV_OK || fv_record_set_text(r, "customer_id", id) ||
        fv_record_set_text(r, "method", "visit") || fv_insert(db, r) != FV_OK)
        exit(1);
    fv_record_free(r);
    img = fz_read_file(path, &n);
    unsigned char *w = fz_read_file(wal, &nw);
    unsigned char *both = malloc(n + nw);
    memcpy(both, img, n);
    if (nw > 0) memcpy(both + n, w, nw);
    unsigned char pre2[5] = {0x02, (unsigned char)n, (unsigned char)(n >> 8),
                             (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
    put2("vfs", "raw-with-wal-then-write", pre2, 5, both, n + nw);
    free(both);
    free(img);
    free(w);
    fv_close(db);
    fz_remove(path);
    fz_remove(wal);

    /* op mode: {code, a, x u32, y u16} */
    struct {
        const char *name;
        uint8_t flags;
        uint8_t ops[4][8];
        int nops;
    } o[] = {
        {"op-none", 0x08, {{0}}, 0},
        {"op-wal-none-write-rekey", 0x18 | 0x02 | 0x04, {{0}}, 0},
        {"op-flip-page", 0x08, {{0, 0x40, 0x00, 0x30, 0, 0, 0, 0}}, 1},
        {"op-copy-page", 0x08, {{2, 0, 1, 0, 0, 0, 3, 0}}, 1},
        {"op-swap-pages", 0x08, {{3, 0, 2, 0, 0, 0, 5, 0}}, 1},
        {"op-wal-swap-frames", 0x18, {{5, 0, 0, 0, 0, 0, 1, 0}}, 1},
        {"op-wal-copy-frame", 0x18, {{4, 0, 2, 0, 0, 0, 0, 0}}, 1},
        {"op-wal-dup-last-frame", 0x18, {{6, 0, 0xff, 0xff, 0, 0, 0, 0}}, 1},
        {"op-wal-torn-tail", 0x18, {{8, 0, 0x00, 0x10, 0x01, 0, 0, 0}}, 1},
        {"op-wal-flip-header", 0x18, {{1, 0x01, 0x05, 0, 0, 0, 0, 0}}, 1},
        {"op-wal-drop", 0x18, {{9, 0, 0, 0, 0, 0, 0, 0}}, 1},
        {"op-page-into-frame", 0x18, {{10, 0, 1, 0, 0, 0, 0, 0}}, 1},
        {"op-header-field-fixed", 0x09, {{11, 0x02, 60, 0, 0, 0, 0, 0}}, 1},
        {"op-header-kdf-fixed", 0x09, {{11, 0x01, 40, 0, 0, 0, 0, 0}}, 1},
        {"op-swap-slots", 0x08, {{12, 0, 0, 0, 0, 0, 0, 0}}, 1},
        {"op-truncate-db", 0x08, {{7, 0, 0x00, 0x30, 0, 0, 0, 0}}, 1},
        {"op-append-page-write", 0x0a, {{13, 0, 1, 0, 0, 0, 0, 0}}, 1},
        {"op-mixed", 0x18,
         {{5, 0, 1, 0, 0, 0, 2, 0}, {2, 0, 4, 0, 0, 0, 1, 0}, {8, 0, 0x77, 0x77, 0, 0, 0, 0}},
         3},
    };
    for (size_t k = 0; k < sizeof o / sizeof *o; k++) {
        unsigned char in[1 + 4 * 8];
        in[0] = o[k].flags;
        for (int i = 0; i < o[k].nops; i++) memcpy(in + 1 + 8 * i, o[k].ops[i], 8);
        put("vfs", o[k].name, in, 1 + 8 * (size_t)o[k].nops);
    }
}

/* ---- apply ---- */

static void put_set(const char *name, uint8_t chunk, vec *v)
{
    char err[256];
    unsigned char origin[16];
    fz_device_id(1, origin);
    fv__membuf b;
    fv__membuf_init(&b, 0);
    v->i = 0;
    check(fv__wire_encode_changeset(origin, vec_next, v, fv__membuf_write, &b, NULL, err,
                                    sizeof err),
          name, err);
    put2("apply", name, &chunk, 1, fv__membuf_bytes(&b), b.len);
    fv__membuf_free(&b);
}

static void gen_apply(void)
{
    vec v;
    char ref[FV_ID_LEN + 1];
    ref_text(1, ref);
    uint64_t base = FZ_HLC(-60000, 0);
    /* the base set again: all known */
    {
        char err[256];
        unsigned char origin[16];
        fz_device_id(0, origin);
        fv__membuf b;
        fv__membuf_init(&b, 0);
        fz_base_src src = {0};
        check(fv__wire_encode_changeset(origin, fz_base_next, &src, fv__membuf_write, &b, NULL,
                                        err, sizeof err),
              "base", err);
        unsigned char c = 0;
        put2("apply", "base-again", &c, 1, fv__membuf_bytes(&b), b.len);
        fv__membuf_free(&b);
    }
    some_changes(&v, 1, 1000);
    v.n = 5; /* no sealed value: a device without field keys refuses those */
    put_set("edits-and-new-visit", 0, &v);
    put_set("edits-and-new-visit-chunk1", 1, &v);
    some_changes(&v, 2, 1000);
    put_set("with-sealed-refused", 9, &v);

    /* a concurrent edit of a field (base 0 < the base row's version): a
     * conflict, winner by hlc; and one that lost (older) */
    v.n = v.i = 0;
    fz_change_text(&v.v[v.n++], "customer", 0, "stage", "won", 1, FZ_HLC(5000, 0), 0);
    fz_change_text(&v.v[v.n++], "customer", 0, "grade", "B", 2, FZ_HLC(-70000, 0), 0);
    fz_change_text(&v.v[v.n++], "customer", 0, "name", "Acme Foods", 2, FZ_HLC(6000, 0), 0);
    put_set("conflicts", 0, &v);
    /* delete then restore (later), an edit of a deleted row */
    v.n = v.i = 0;
    fz_change_real(&v.v[v.n++], "customer", 1, FV_FIELD_DELETED, 1.0, 1, FZ_HLC(100, 0), base);
    fz_change_text(&v.v[v.n++], "customer", 1, "stage", "service", 2, FZ_HLC(200, 0), base);
    fz_change_real(&v.v[v.n++], "customer", 3, FV_FIELD_DELETED, 0.0, 2, FZ_HLC(300, 0),
                   FZ_HLC(-59900, 0));
    put_set("delete-restore", 4, &v);
    /* a field the catalogue lacks, a bad enum, a cleared required field, a
     * clock days ahead of now: each refuses the whole set */
    v.n = v.i = 0;
    fz_change_text(&v.v[v.n++], "customer", 0, "stage", "won", 1, FZ_HLC(5000, 0), base);
    fz_change_text(&v.v[v.n++], "customer", 0, "favourite_colour", "red", 1, FZ_HLC(5000, 1),
                   0);
    put_set("unknown-field", 0, &v);
    v.n = v.i = 0;
    fz_change_text(&v.v[v.n++], "customer", 0, "grade", "Z", 1, FZ_HLC(5000, 0), base);
    put_set("bad-enum", 0, &v);
    v.n = v.i = 0;
    fz_change_text(&v.v[v.n++], "visit", 5, "method", NULL, 1, FZ_HLC(5000, 0), base);
    put_set("required-cleared", 0, &v);
    v.n = v.i = 0;
    fz_change_text(&v.v[v.n++], "visit", 12, "customer_id", ref, 1, FZ_HLC(5000, 0), 0);
    fz_change_text(&v.v[v.n++], "visit", 12, "at", "2025-06-14T09:30:00+02:00", 1,
                   FZ_HLC(5000, 0), 0);
    fz_change_text(&v.v[v.n++], "visit", 12, "next_action_due", "2025-02-29", 1,
                   FZ_HLC(5000, 0), 0);
    put_set("bad-date", 2, &v);
    v.n = v.i = 0;
    fz_change_text(&v.v[v.n++], "visit", 13, "customer_id", ref, 1, FZ_HLC(5000, 0), 0);
    fz_change_text(&v.v[v.n++], "visit", 13, "method", "other", 1, FZ_HLC(5000, 0), 0);
    fz_change_text(&v.v[v.n++], "visit", 13, "at", "2025-06-14T09:30:00+02:00", 1,
                   FZ_HLC(5000, 0), 0);
    fz_change_real(&v.v[v.n++], "visit", 13, "lat", 91.5, 1, FZ_HLC(5000, 0), 0);
    put_set("new-visit-odd-values", 0, &v);
    v.n = v.i = 0;
    fz_change_text(&v.v[v.n++], "customer", 7, "name", "Far Future", 1,
                   (uint64_t)(4102444800000LL) << 16, 0);
    put_set("clock-far-ahead", 0, &v);
    /* the same version twice with different values */
    v.n = v.i = 0;
    fz_change_text(&v.v[v.n++], "customer", 2, "region", "North", 1, FZ_HLC(7000, 0), 0);
    fz_change_text(&v.v[v.n++], "customer", 2, "region", "South", 1, FZ_HLC(7000, 0), 0);
    put_set("same-version-twice", 0, &v);
    unsigned char cut[] = {0x00, 0x08, 0x01, 0x12, 0x10};
    put("apply", "truncated", cut, sizeof cut);
}

/* ---- fv args ---- */

static void gen_args(void)
{
    /* each line: the arguments after argv[0], NULL-terminated */
    static const char *const lines[][12] = {
        {"init", "db.fv", "--kdf-mem", "8", "--kdf-passes=1", NULL},
        {"customer", "add", "db.fv", "--name", "Acme Foods", "--grade=A", "--stage", "intent",
         "--budget", "120k", NULL},
        {"customer", "update", "db.fv", "01a214c9-ed30-7000-acc1-f39208ea2398", "--stage=", NULL},
        {"customer", "update", "db.fv", "ID", NULL},
        {"--json", "customer", "list", "db.fv", "--stage", "intent", "--owner", "ana", NULL},
        {"contact", "add", "db.fv", "--customer", "ID", "--name", "Li", "--phone", "+86", NULL},
        {"visit", "add", "db.fv", "--customer", "ID", "--method", "visit", "--summary",
         "--opt=--text", NULL},
        {"visit", "add", "db.fv", "--customer", "ID", "--method", "visit", "--summary", NULL},
        {"visit", "list", "db.fv", "--json", "--", "--not-an-option", NULL},
        {"due", "db.fv", "--on=2026-12-05", NULL},
        {"conflicts", "resolve", "db.fv", "abcdef", "--keep", "theirs", NULL},
        {"conflicts", "db.fv", "--all", "--json", NULL},
        {"conflicts", NULL},
        {"changes", "export", "db.fv", "out.fvc", "--all", NULL},
        {"changes", "import", "db.fv", NULL},
        {"enroll", "db.fv", "--server", "http://127.0.0.1:8700", "--code", "ABCD-EFGH", NULL},
        {"sync", "db.fv", "--max-seconds", "25", "--json", NULL},
        {"status", "--json", "db.fv", NULL},
        {"--help", NULL},
        {"--version", NULL},
        {"help", "extra", NULL},
        {"-V", NULL},
        {"-x", "init", NULL},
        {"customer", "frobnicate", "db.fv", NULL},
        {"passwd", "db.fv", "--json=1", NULL},
        {"check", "", NULL},
        {"customer", "show", "db.fv", "ID", "extra", NULL},
        {"import", "customers", "db.fv", "in.csv", "--map", "\xe5\xae\xa2\xe6\x88\xb7=name",
         "--map=Grade=grade", "--dry-run", "--json", NULL},
        {"import", "visits", "db.fv", NULL},
        {"export", "contacts", "db.fv", "--csv", NULL},
        {"export", "customers", "db.fv", "--csv", "out.csv", "--json", NULL},
        {"export", "visits", "db.fv", "out.csv", NULL},
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        unsigned char buf[512];
        size_t n = 0;
        for (size_t k = 0; lines[i][k] != NULL; k++) {
            size_t len = strlen(lines[i][k]);
            if (k > 0) buf[n++] = 0;
            memcpy(buf + n, lines[i][k], len);
            n += len;
        }
        char name[32];
        snprintf(name, sizeof name, "args-%02zu", i);
        put("fv_args", name, buf, n);
    }
}

/* ---- CSV sheets (fv import's reader) ---- */

static void gen_csv(void)
{
    static const struct {
        const char *name, *text;
        size_t len; /* 0: strlen */
    } sheets[] = {
        {"bom-crlf", "\xef\xbb\xbfname,grade,stage\r\nAcme,A,lead\r\n"
                     "\"Smith, Jones\",S\xe7\xba\xa7,\xe8\xb0\x88\xe5\x88\xa4\r\n", 0},
        {"quoted-newlines", "name,needs\n\"a\",\"line one\r\nline two\"\n\"b \"\"q\"\"\",x\n", 0},
        {"dates", "name,next_due\nA,2026/3/5\nB,2026\xe5\xb9\xb4" "3\xe6\x9c\x88" "5\xe6\x97\xa5\n"
                  "C,05/03/2026\nD,2026.12.1 0:00\nE,2026-02-30\n", 0},
        {"times", "customer,method,at\nAcme,\xe7\x94\xb5\xe8\xaf\x9d,2026/3/5 9:30\n"
                  "Acme,visit,2026-03-06T10:00:00+08:00\n", 0},
        {"blank-and-short", "name,grade\n\n   \nx\ny,A,extra\n,,\n", 0},
        {"lone-cr", "name\rA\rB\r", 0},
        {"unterminated", "name\nok\n\"never closed,\nmore\n", 0},
        {"after-quote", "name\n\"a\" ,b\n\"a\"b\n", 0},
        {"bad-utf8", "name\n\"multi\nline \xff\"\n", 0},
        {"utf16", "\xff\xfen\x00" "a\x00", 6},
        {"fullwidth", "name\n\"  \xef\xbc\xa1\xef\xbc\xa3\xef\xbc\xad\xef\xbc\xa5   co \"\n"
                      "\xe3\x80\x80x\xe3\x80\x80\n", 0},
    };
    for (size_t i = 0; i < sizeof sheets / sizeof *sheets; i++)
        put("csv", sheets[i].name, (const unsigned char *)sheets[i].text,
            sheets[i].len ? sheets[i].len : strlen(sheets[i].text));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_gen_corpus DIR   (DIR: fuzz/corpus)\n");
        return 2;
    }
    root = argv[1];
    mkdir(root, 0755);
    if (sodium_init() < 0) return 1;
    gen_wire();
    gen_fvd();
    gen_vfs();
    gen_apply();
    gen_args();
    gen_csv();
    printf("gen_corpus: %d seeds written under %s\n", written, root);
    return 0;
}
