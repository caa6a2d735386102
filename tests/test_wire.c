/*
 * test_wire.c - the sync wire codec (sync/wire.c) on real files: round
 * trips of every value kind and bound, Google's own tooling reading what we
 * write (protoc --decode, Python's protobuf runtime) and us reading what it
 * writes, constant memory over a million changes, and hostile input: every
 * truncation, bad headers, bad changes, trailing junk, lengths that lie,
 * seeded garbage.
 *
 * FV_SEED reproduces the garbage test (the seed is printed);
 * FV_WIRE_STREAM_N sets the size of the streaming test (default 1,000,000:
 * about 1 s, 3 s under ASan).  The streaming test runs first, so that the
 * peak RSS it reads is not an earlier test's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <pb_decode.h>

#include "change.h"
#include "testutil.h"
#include "wire.h"

#ifndef FV_PROTOC
#define FV_PROTOC "protoc"
#endif
#ifndef FV_PYTHON3
#define FV_PYTHON3 "/usr/bin/python3"
#endif

#define ERRCAP 512

/* ---- Change sources and sinks ---- */

/* Serves an array of changes. */
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

/* Keeps every change it receives (up to cap) and counts calls. */
typedef struct collect {
    fv__change *v;
    size_t cap, n;
    int fail_at;  /* refuse the change with this index (-1: never) */
} collect;

static void collect_init(collect *c, size_t cap)
{
    c->v = calloc(cap > 0 ? cap : 1, sizeof *c->v);
    assert_non_null(c->v);
    c->cap = cap;
    c->n = 0;
    c->fail_at = -1;
}

static int collect_sink(void *ctx, const fv__change *ch, char *err, size_t errcap)
{
    collect *c = ctx;
    if (c->fail_at >= 0 && (size_t)c->fail_at == c->n) {
        snprintf(err, errcap, "sink says no to %s.%s", ch->table, ch->field);
        c->n++;
        return -1;
    }
    if (c->n < c->cap) c->v[c->n] = *ch;
    c->n++;
    return 0;
}

/* ---- Files as byte streams ---- */

static int file_write(void *ctx, const unsigned char *buf, size_t len)
{
    return fwrite(buf, 1, len, ctx) == len ? 0 : -1;
}

static long file_read(void *ctx, unsigned char *buf, size_t cap)
{
    size_t n = fread(buf, 1, cap, ctx);
    if (n == 0 && ferror((FILE *)ctx)) return -1;
    return (long)n;
}

/* ---- Building changes ---- */

static void set_names(fv__change *c, const char *table, const char *field, int row)
{
    memset(c, 0, sizeof *c);
    snprintf(c->table, sizeof c->table, "%s", table);
    snprintf(c->field, sizeof c->field, "%s", field);
    memset(c->row_id, row, sizeof c->row_id);
}

static void set_text(fv__change *c, const char *s, size_t n)
{
    c->kind = FV__VAL_TEXT;
    memcpy(c->data, s, n);
    c->data[n] = '\0';
    c->len = n;
}

static void set_real(fv__change *c, double v)
{
    c->kind = FV__VAL_REAL;
    c->real = v;
}

static void set_sealed(fv__change *c, const unsigned char *b, size_t n)
{
    c->kind = FV__VAL_SEALED;
    memcpy(c->data, b, n);
    c->len = n;
}

static const unsigned char ORIGIN[16] = {0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
                                         0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF};
static const unsigned char DEVICE[16] = {0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7,
                                         0xD8, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF};
#define HLC0 (((uint64_t)1735689600000 << 16) | 1)

/* The same changes as tests/interop/fixture.py. */
static size_t interop_fixture(fv__change *v)
{
    size_t n = 0;
    set_names(&v[n], "customer", "name", 1);
    set_text(&v[n], "Acme 食品 — Zürich 🚀", strlen("Acme 食品 — Zürich 🚀"));
    v[n].hlc = HLC0, v[n].base_hlc = 0, v[n].device_seq = 1, n++;
    set_names(&v[n], "visit", "lat", 2);
    set_real(&v[n], 48.8566);
    v[n].hlc = HLC0 + 1, v[n].base_hlc = HLC0, v[n].device_seq = 2, n++;
    set_names(&v[n], "customer", "budget", 1);
    unsigned char b[512];
    for (size_t i = 0; i < sizeof b; i++) b[i] = (unsigned char)i;
    set_sealed(&v[n], b, sizeof b);
    v[n].hlc = HLC0 + 2, v[n].base_hlc = 0, v[n].device_seq = 3, n++;
    set_names(&v[n], "contact", "phone", 3); /* null */
    v[n].hlc = UINT64_MAX, v[n].base_hlc = UINT64_MAX - 1, v[n].device_seq = UINT64_MAX, n++;
    set_names(&v[n], "customer", "_deleted", 1);
    set_real(&v[n], 1.0);
    v[n].hlc = 0, v[n].base_hlc = 0, v[n].device_seq = 0, n++;
    set_names(&v[n], "customer", "notes", 4);
    char e[4097];
    for (size_t i = 0; i < 2048; i++) memcpy(e + 2 * i, "\xC3\xA9", 2); /* é */
    set_text(&v[n], e, 4096);
    v[n].hlc = HLC0 + 3, v[n].base_hlc = 0, v[n].device_seq = 5, n++;
    set_names(&v[n], "customer", "grade", 4);
    set_text(&v[n], "", 0);
    v[n].hlc = HLC0 + 4, v[n].base_hlc = 0, v[n].device_seq = 6, n++;
    for (size_t i = 0; i < n; i++) memcpy(v[i].device, DEVICE, 16);
    return n;
}

static void assert_change_equal(const fv__change *a, const fv__change *b)
{
    assert_string_equal(a->table, b->table);
    assert_string_equal(a->field, b->field);
    assert_memory_equal(a->row_id, b->row_id, 16);
    assert_memory_equal(a->device, b->device, 16);
    assert_true(a->hlc == b->hlc);
    assert_true(a->base_hlc == b->base_hlc);
    assert_true(a->device_seq == b->device_seq);
    assert_int_equal(a->kind, b->kind);
    switch (a->kind) {
    case FV__VAL_TEXT:
        assert_int_equal(a->len, b->len);
        assert_memory_equal(a->data, b->data, a->len);
        assert_int_equal(b->data[b->len], 0); /* NUL-terminated for C users */
        break;
    case FV__VAL_SEALED:
        assert_int_equal(a->len, b->len);
        if (a->len > 0) assert_memory_equal(a->data, b->data, a->len);
        break;
    case FV__VAL_REAL:
        assert_memory_equal(&a->real, &b->real, sizeof a->real); /* bit-exact, -0.0 too */
        break;
    case FV__VAL_NULL:
        assert_int_equal(b->len, 0);
        break;
    }
}

/* ---- Encoding and decoding helpers ---- */

static void encode_to_file(const char *path, const fv__change *v, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    vec_src s = {v, n, 0};
    uint64_t count = 0;
    char err[ERRCAP] = "";
    fv_status st = fv__wire_encode_changeset(ORIGIN, vec_next, &s, file_write, f, &count, err,
                                             sizeof err);
    if (st != FV_OK) fprintf(stderr, "encode: %s\n", err);
    assert_int_equal(st, FV_OK);
    assert_int_equal(count, n);
    assert_int_equal(fclose(f), 0);
}

static void encode_to_mem(fv__membuf *m, const fv__change *v, size_t n)
{
    fv__membuf_init(m, 0);
    vec_src s = {v, n, 0};
    char err[ERRCAP] = "";
    fv_status st = fv__wire_encode_changeset(ORIGIN, vec_next, &s, fv__membuf_write, m, NULL,
                                             err, sizeof err);
    if (st != FV_OK) fprintf(stderr, "encode: %s\n", err);
    assert_int_equal(st, FV_OK);
}

static fv_status decode_mem(const unsigned char *buf, size_t len, collect *c,
                            fv__changeset_info *info, char *err)
{
    fv__membuf m;
    fv__membuf_init_read(&m, buf, len);
    err[0] = '\0';
    fv_status st = fv__wire_decode_changeset(fv__membuf_read, &m, collect_sink, c, info, err,
                                             ERRCAP);
    fv__membuf_free(&m);
    return st;
}

/* Decoding buf must fail with FV_EPROTO, a message containing phrase, and
 * exactly `delivered` sink calls. */
static void expect_refused(const unsigned char *buf, size_t len, const char *phrase,
                           size_t delivered)
{
    collect c;
    collect_init(&c, 8);
    char err[ERRCAP];
    fv__changeset_info info;
    fv_status st = decode_mem(buf, len, &c, &info, err);
    if (st != FV_EPROTO || strstr(err, phrase) == NULL || c.n != delivered)
        fprintf(stderr, "expected \"%s\" after %zu changes; got status %d, %zu changes, "
                "\"%s\"\n", phrase, delivered, (int)st, c.n, err);
    assert_int_equal(st, FV_EPROTO);
    assert_non_null(strstr(err, phrase));
    assert_int_equal(c.n, delivered);
    free(c.v);
}

/* ---- A hand protobuf writer, for input our encoder refuses to make ---- */

typedef struct pbw {
    unsigned char *b;
    size_t n, cap;
} pbw;

static void pbw_raw(pbw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
        assert_non_null(w->b);
    }
    if (n > 0) memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void pbw_varint(pbw *w, uint64_t v)
{
    unsigned char b[10];
    size_t n = 0;
    do {
        b[n] = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v) b[n] |= 0x80;
        n++;
    } while (v);
    pbw_raw(w, b, n);
}

static void pbw_key(pbw *w, uint32_t tag, unsigned wt)
{
    pbw_varint(w, ((uint64_t)tag << 3) | wt);
}

static void pbw_bytes(pbw *w, uint32_t tag, const void *p, size_t n)
{
    pbw_key(w, tag, 2);
    pbw_varint(w, n);
    pbw_raw(w, p, n);
}

static void pbw_str(pbw *w, uint32_t tag, const char *s)
{
    pbw_bytes(w, tag, s, strlen(s));
}

static void pbw_fixed64(pbw *w, uint32_t tag, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    pbw_key(w, tag, 1);
    pbw_raw(w, b, 8);
}

static void pbw_uint(pbw *w, uint32_t tag, uint64_t v)
{
    pbw_key(w, tag, 0);
    pbw_varint(w, v);
}

static void pbw_free(pbw *w)
{
    free(w->b);
    memset(w, 0, sizeof *w);
}

static void pbw_header(pbw *w, uint64_t version)
{
    pbw_uint(w, 1, version);
    pbw_bytes(w, 2, ORIGIN, 16);
}

/* The body of a valid Change with text "hello", minus the fields whose
 * bit is set in `omit` (1 table, 2 row_id, 4 field, 8 value, 16 device_id). */
static void pbw_change_body(pbw *w, unsigned omit)
{
    unsigned char row[16];
    memset(row, 7, sizeof row);
    if (!(omit & 1)) pbw_str(w, 1, "customer");
    if (!(omit & 2)) pbw_bytes(w, 2, row, 16);
    if (!(omit & 4)) pbw_str(w, 3, "name");
    if (!(omit & 8)) {
        pbw v = {0};
        pbw_str(&v, 1, "hello");
        pbw_bytes(w, 4, v.b, v.n);
        pbw_free(&v);
    }
    pbw_fixed64(w, 5, HLC0);
    pbw_fixed64(w, 6, 0);
    if (!(omit & 16)) pbw_bytes(w, 7, DEVICE, 16);
    pbw_uint(w, 8, 42);
}

static void pbw_good_change(pbw *w)
{
    pbw c = {0};
    pbw_change_body(&c, 0);
    pbw_bytes(w, 3, c.b, c.n);
    pbw_free(&c);
}

/* A set: header, a good change, `bad` (a whole Change body) as change #1,
 * a good change, trailer 3.  Expect one delivery, then the refusal. */
static void expect_bad_change(const pbw *bad, const char *phrase)
{
    pbw w = {0};
    pbw_header(&w, 1);
    pbw_good_change(&w);
    pbw_bytes(&w, 3, bad->b, bad->n);
    pbw_good_change(&w);
    pbw_uint(&w, 15, 3);
    expect_refused(w.b, w.n, phrase, 1);
    pbw_free(&w);
}

/* A change body with one field replaced: the fields of pbw_change_body()
 * except those in omit, then `extra` appended. */
static void expect_bad_field(unsigned omit, const pbw *extra, const char *phrase)
{
    pbw c = {0};
    pbw_change_body(&c, omit);
    if (extra != NULL) pbw_raw(&c, extra->b, extra->n);
    expect_bad_change(&c, phrase);
    pbw_free(&c);
}

static void expect_bad_text(const void *text, size_t n, const char *phrase)
{
    pbw v = {0}, f = {0};
    pbw_bytes(&v, 1, text, n);
    pbw_bytes(&f, 4, v.b, v.n);
    expect_bad_field(8, &f, phrase);
    pbw_free(&v);
    pbw_free(&f);
}

/* ---- Running Google's tools ---- */

static tu_result run_sh(const char *cmd)
{
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    return tu_run(argv, NULL, NULL);
}

static void gen_python_module(const char *dir)
{
    char *out = malloc(strlen(dir) + 32);
    assert_non_null(out);
    sprintf(out, "--python_out=%s", dir);
    const char *argv[] = {FV_PROTOC, out, "--proto_path=" FV_SOURCE_DIR "/sync",
                          FV_SOURCE_DIR "/sync/fieldvault.proto", NULL};
    tu_result r = tu_run(argv, NULL, NULL);
    if (r.exit_code != 0) fprintf(stderr, "protoc --python_out: %s\n", r.err);
    assert_int_equal(r.exit_code, 0);
    tu_result_free(&r);
    free(out);
}

/* ======================================================================== */

static void test_roundtrip_file(void **state)
{
    (void)state;
    enum { N = 16 };
    fv__change *v = calloc(N, sizeof *v);
    assert_non_null(v);
    size_t n = interop_fixture(v);
    /* more edges: longest names, extreme reals, a full sealed value */
    char longname[FV_NAME_MAX + 1];
    memset(longname, 'z', FV_NAME_MAX);
    longname[0] = '_';
    longname[FV_NAME_MAX] = '\0';
    set_names(&v[n], longname, longname, 9);
    set_real(&v[n], -0.0), n++;
    set_names(&v[n], "visit", "lng", 9);
    set_real(&v[n], DBL_MAX), n++;
    set_names(&v[n], "visit", "lng", 9);
    set_real(&v[n], -DBL_MIN), n++;
    set_names(&v[n], "customer", "secret", 9);
    unsigned char big[FV_SEALED_MAX];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 31 + 7);
    set_sealed(&v[n], big, sizeof big), n++;
    set_names(&v[n], "customer", "secret", 9);
    set_sealed(&v[n], big, 0), n++; /* empty sealed: not null */
    set_names(&v[n], "customer", "_deleted", 9);
    set_real(&v[n], 0.0), n++;
    char maxtext[FV_FIELD_MAX];
    memset(maxtext, 'a', sizeof maxtext);
    memcpy(maxtext + FV_FIELD_MAX - 4, "\xF0\x9F\x9A\x80", 4); /* ends with a 4-byte char */
    set_names(&v[n], "customer", "notes", 9);
    set_text(&v[n], maxtext, sizeof maxtext), n++;
    for (size_t i = 7; i < n; i++) {
        memcpy(v[i].device, DEVICE, 16);
        v[i].hlc = HLC0 + i;
        v[i].device_seq = 1000 + i;
    }
    assert_true(n <= N);

    char *dir = tu_mkdtemp("wire");
    char *path = tu_path(dir, "set.fvcs");
    encode_to_file(path, v, n);

    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    collect c;
    collect_init(&c, N);
    fv__changeset_info info;
    char err[ERRCAP] = "";
    fv_status st = fv__wire_decode_changeset(file_read, f, collect_sink, &c, &info, err,
                                             sizeof err);
    fclose(f);
    if (st != FV_OK) fprintf(stderr, "decode: %s\n", err);
    assert_int_equal(st, FV_OK);
    assert_int_equal(info.version, FV_WIRE_VERSION);
    assert_memory_equal(info.origin, ORIGIN, 16);
    assert_int_equal(info.count, n);
    assert_int_equal(c.n, n);
    for (size_t i = 0; i < n; i++) assert_change_equal(&v[i], &c.v[i]);

    /* an empty set is valid too, and still carries its trailer */
    encode_to_file(path, v, 0);
    size_t len;
    unsigned char *b = tu_read_file(path, &len);
    assert_non_null(b);
    assert_int_equal(len, 2 + 18 + 2); /* version, origin, count 0 */
    assert_int_equal(b[len - 2], 0x78);
    assert_int_equal(b[len - 1], 0x00);
    c.n = 0;
    assert_int_equal(decode_mem(b, len, &c, &info, err), FV_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(info.count, 0);
    free(b);

    free(c.v);
    free(v);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

static void test_protoc_decodes_ours(void **state)
{
    (void)state;
    fv__change v[3];
    set_names(&v[0], "customer", "name", 1);
    set_text(&v[0], "Acme Foods", 10);
    v[0].hlc = 12345, v[0].device_seq = 7;
    set_names(&v[1], "visit", "lat", 2);
    set_real(&v[1], 48.5);
    set_names(&v[2], "contact", "phone", 3);
    for (int i = 0; i < 3; i++) memcpy(v[i].device, DEVICE, 16);
    char *dir = tu_mkdtemp("wire-protoc");
    char *path = tu_path(dir, "set.fvcs");
    encode_to_file(path, v, 3);

    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "exec '%s' --decode=fieldvault.v1.ChangeSet --proto_path='%s/sync' "
             "'%s/sync/fieldvault.proto' < '%s'",
             FV_PROTOC, FV_SOURCE_DIR, FV_SOURCE_DIR, path);
    tu_result r = run_sh(cmd);
    if (r.exit_code != 0) fprintf(stderr, "protoc: %s\n", r.err);
    assert_int_equal(r.exit_code, 0);
    const char *want[] = {"version: 1", "table: \"customer\"", "field: \"name\"",
                          "text: \"Acme Foods\"", "hlc: 12345", "device_seq: 7",
                          "table: \"visit\"", "real: 48.5", "table: \"contact\"",
                          "field: \"phone\"", "count: 3"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        if (strstr(r.out, want[i]) == NULL) fprintf(stderr, "missing %s in:\n%s", want[i], r.out);
        assert_non_null(strstr(r.out, want[i]));
    }
    /* the trailer is the last field protoc prints */
    const char *cnt = strstr(r.out, "count: 3");
    assert_null(strstr(cnt, "changes {"));
    /* the null value has no Value at all: only two "value {" blocks */
    const char *p = r.out;
    int values = 0;
    while ((p = strstr(p, "value {")) != NULL) values++, p++;
    assert_int_equal(values, 2);
    tu_result_free(&r);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

static void test_python_writes_we_read(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("wire-py");
    gen_python_module(dir);
    char *path = tu_path(dir, "py.fvcs");
    const char *argv[] = {FV_PYTHON3, FV_SOURCE_DIR "/tests/interop/make_changeset.py", dir,
                          path, NULL};
    tu_result r = tu_run(argv, NULL, NULL);
    if (r.exit_code != 0) fprintf(stderr, "make_changeset.py: %s%s\n", r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    tu_result_free(&r);

    fv__change want[8];
    size_t n = interop_fixture(want);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    collect c;
    collect_init(&c, 8);
    fv__changeset_info info;
    char err[ERRCAP] = "";
    fv_status st = fv__wire_decode_changeset(file_read, f, collect_sink, &c, &info, err,
                                             sizeof err);
    fclose(f);
    if (st != FV_OK) fprintf(stderr, "decode python's set: %s\n", err);
    assert_int_equal(st, FV_OK);
    assert_int_equal(info.count, n);
    assert_memory_equal(info.origin, ORIGIN, 16);
    assert_int_equal(c.n, n);
    for (size_t i = 0; i < n; i++) assert_change_equal(&want[i], &c.v[i]);
    free(c.v);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

static void test_python_reads_ours(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("wire-py");
    gen_python_module(dir);
    char *path = tu_path(dir, "c.fvcs");
    fv__change v[8];
    size_t n = interop_fixture(v);
    encode_to_file(path, v, n);
    const char *argv[] = {FV_PYTHON3, FV_SOURCE_DIR "/tests/interop/check_changeset.py", dir,
                          path, NULL};
    tu_result r = tu_run(argv, NULL, NULL);
    if (r.exit_code != 0) fprintf(stderr, "check_changeset.py: %s%s\n", r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "ok 7 changes"));
    tu_result_free(&r);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

/* ---- Streaming: memory does not grow with the count ---- */

typedef struct gen_src {
    uint64_t i, n;
} gen_src;

static void gen_change(uint64_t i, fv__change *c)
{
    memset(c, 0, offsetof(fv__change, data));
    memcpy(c->table, "visit", 6);
    memcpy(c->field, "summary", 8);
    memcpy(c->row_id, &i, sizeof i);
    memcpy(c->device, DEVICE, 16);
    c->hlc = HLC0 + i;
    c->device_seq = i + 1;
    c->kind = FV__VAL_TEXT;
    c->len = (size_t)snprintf((char *)c->data, 64, "visit note number %llu, all well",
                              (unsigned long long)i);
}

static int gen_next(void *ctx, fv__change *out)
{
    gen_src *g = ctx;
    if (g->i == g->n) return 0;
    gen_change(g->i++, out);
    return 1;
}

typedef struct count_sink {
    uint64_t n, seq_sum;
    int bad;
} count_sink;

static int count_change(void *ctx, const fv__change *c, char *err, size_t errcap)
{
    (void)err, (void)errcap;
    count_sink *s = ctx;
    if (c->device_seq != s->n + 1 || c->kind != FV__VAL_TEXT) s->bad = 1;
    s->seq_sum += c->device_seq;
    s->n++;
    return 0;
}

static long max_rss_kib(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

static void test_streaming_memory(void **state)
{
    (void)state;
    uint64_t n = 1000000;
    const char *e = getenv("FV_WIRE_STREAM_N");
    if (e != NULL && *e != '\0') n = strtoull(e, NULL, 10);
    char *dir = tu_mkdtemp("wire-stream");
    char *path = tu_path(dir, "big.fvcs");
    long rss0 = max_rss_kib();
    clock_t t0 = clock();

    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    gen_src g = {0, n};
    uint64_t count = 0;
    char err[ERRCAP] = "";
    assert_int_equal(fv__wire_encode_changeset(ORIGIN, gen_next, &g, file_write, f, &count, err,
                                               sizeof err), FV_OK);
    assert_int_equal(fclose(f), 0);
    assert_true(count == n);
    long rss1 = max_rss_kib();

    f = fopen(path, "rb");
    assert_non_null(f);
    count_sink cs = {0, 0, 0};
    fv__changeset_info info;
    fv_status st = fv__wire_decode_changeset(file_read, f, count_change, &cs, &info, err,
                                             sizeof err);
    fclose(f);
    if (st != FV_OK) fprintf(stderr, "decode: %s\n", err);
    assert_int_equal(st, FV_OK);
    long rss2 = max_rss_kib();
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;

    size_t bytes = 0;
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    bytes = (size_t)ftell(f);
    fclose(f);
    printf("test_wire: streamed %llu changes (%zu bytes) in %.2fs; peak RSS %ld KiB before, "
           "%ld KiB after encoding, %ld KiB after decoding\n",
           (unsigned long long)n, bytes, secs, rss0, rss1, rss2);
    assert_true(cs.n == n);
    assert_true(info.count == n);
    assert_int_equal(cs.bad, 0);
    assert_true(cs.seq_sum == n * (n + 1) / 2);
    assert_true(bytes > n * 40); /* the set really is that big */
    assert_true(rss2 - rss0 < 16 * 1024);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

/* ---- Push and pull, and the whole-message helpers ---- */

static void test_push_pull_roundtrip(void **state)
{
    (void)state;
    fv__change v[8];
    size_t n = interop_fixture(v);
    char err[ERRCAP];

    fv__push_info ph;
    memset(&ph, 0, sizeof ph);
    memcpy(ph.device_id, DEVICE, 16);
    ph.batch_seq = 77;
    for (int i = 0; i < 32; i++) ph.prev_batch_hash[i] = (unsigned char)(0x40 + i);
    fv__membuf m;
    fv__membuf_init(&m, 0);
    vec_src s = {v, n, 0};
    uint64_t count = 0;
    assert_int_equal(fv__wire_encode_push_request(&ph, vec_next, &s, fv__membuf_write, &m,
                                                  &count, err, sizeof err), FV_OK);
    assert_int_equal(count, n);
    collect c;
    collect_init(&c, 8);
    fv__push_info pi;
    assert_int_equal(fv__wire_decode_push_request(fv__membuf_read, &m, collect_sink, &c, &pi,
                                                  err, sizeof err), FV_OK);
    assert_memory_equal(pi.device_id, DEVICE, 16);
    assert_int_equal(pi.batch_seq, 77);
    assert_memory_equal(pi.prev_batch_hash, ph.prev_batch_hash, 32);
    assert_int_equal(pi.count, n);
    /* header first: device_id, batch_seq, prev_batch_hash, then change #0 */
    assert_int_equal(m.data[0], 0x0A);
    assert_int_equal(m.data[1], 16);
    assert_int_equal(m.data[18], 0x10);
    assert_int_equal(m.data[19], 77);
    assert_int_equal(m.data[20], 0x22);
    assert_int_equal(m.data[21], 32);
    assert_memory_equal(m.data + 22, ph.prev_batch_hash, 32);
    assert_int_equal(m.data[54], 0x1A);
    assert_int_equal(c.n, n);
    for (size_t i = 0; i < n; i++) assert_change_equal(&v[i], &c.v[i]);
    /* a push request is not a change set */
    m.pos = 0;
    c.n = 0;
    fv__changeset_info ci;
    assert_int_equal(fv__wire_decode_changeset(fv__membuf_read, &m, collect_sink, &c, &ci, err,
                                               sizeof err), FV_EPROTO);
    assert_non_null(strstr(err, "version"));
    assert_int_equal(c.n, 0);
    fv__membuf_free(&m);

    /* pull response: changes first (field 1), then cursor and more */
    fv__pull_info qh = {123456789, 1, 0};
    fv__membuf_init(&m, 0);
    s.i = 0;
    assert_int_equal(fv__wire_encode_pull_response(&qh, vec_next, &s, fv__membuf_write, &m,
                                                   &count, err, sizeof err), FV_OK);
    c.n = 0;
    fv__pull_info qi;
    assert_int_equal(fv__wire_decode_pull_response(fv__membuf_read, &m, collect_sink, &c, &qi,
                                                   err, sizeof err), FV_OK);
    assert_int_equal(qi.cursor, 123456789);
    assert_int_equal(qi.more, 1);
    assert_int_equal(qi.count, n);
    assert_int_equal(c.n, n);
    for (size_t i = 0; i < n; i++) assert_change_equal(&v[i], &c.v[i]);
    fv__membuf_free(&m);

    /* an empty pull response: just the trailer */
    fv__pull_info empty = {0, 0, 0};
    fv__membuf_init(&m, 0);
    s.i = s.n;
    assert_int_equal(fv__wire_encode_pull_response(&empty, vec_next, &s, fv__membuf_write, &m,
                                                   &count, err, sizeof err), FV_OK);
    assert_int_equal(m.len, 2);
    c.n = 0;
    assert_int_equal(fv__wire_decode_pull_response(fv__membuf_read, &m, collect_sink, &c, &qi,
                                                   err, sizeof err), FV_OK);
    assert_int_equal(qi.count, 0);
    assert_int_equal(qi.more, 0);
    fv__membuf_free(&m);

    /* a push request without its device id */
    pbw w = {0};
    pbw_uint(&w, 2, 5);
    pbw_good_change(&w);
    pbw_uint(&w, 15, 1);
    fv__membuf_init_read(&m, w.b, w.n);
    c.n = 0;
    assert_int_equal(fv__wire_decode_push_request(fv__membuf_read, &m, collect_sink, &c, &pi,
                                                  err, sizeof err), FV_EPROTO);
    assert_non_null(strstr(err, "device_id missing before the first change"));
    assert_int_equal(c.n, 0);
    pbw_free(&w);
    free(c.v);
}

static void test_small_messages_roundtrip(void **state)
{
    (void)state;
    char err[ERRCAP];
    fv__membuf m;

    fieldvault_v1_Rejection rej[3] = {
        {11, fieldvault_v1_Reason_REASON_FORBIDDEN, "role service may not write budget"},
        {12, fieldvault_v1_Reason_REASON_CLOCK_DRIFT, "hlc 3 days ahead — refusé"},
        {13, (fieldvault_v1_Reason)42, ""}, /* an enum value from the future */
    };
    fv__push_response pr = {9, 17, 1234, 1, rej, 3, 0};
    fv__membuf_init(&m, 0);
    assert_int_equal(fv__wire_encode_push_response(&pr, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    fieldvault_v1_Rejection got[4];
    fv__push_response out = {0, 0, 0, 0, got, 0, 4};
    assert_int_equal(fv__wire_decode_push_response(m.data, m.len, &out, err, sizeof err), FV_OK);
    assert_int_equal(out.batch_seq, 9);
    assert_int_equal(out.accepted, 17);
    assert_int_equal(out.server_seq, 1234);
    assert_int_equal(out.duplicate, 1);
    assert_int_equal(out.nrejections, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(got[i].device_seq, rej[i].device_seq);
        assert_int_equal(got[i].reason, rej[i].reason);
        assert_string_equal(got[i].message, rej[i].message);
    }
    /* more rejections than the caller's array: refused, not overflowed */
    out.rejections_cap = 2;
    assert_int_equal(fv__wire_decode_push_response(m.data, m.len, &out, err, sizeof err),
                     FV_EPROTO);
    assert_non_null(strstr(err, "more rejections than"));
    /* junk after a complete message (a zero byte, which nanopb could take
     * for the end of a 0-terminated message) */
    unsigned char junk[1024];
    memcpy(junk, m.data, m.len);
    junk[m.len] = 0;
    junk[m.len + 1] = 0x99;
    out.rejections_cap = 4;
    assert_int_equal(fv__wire_decode_push_response(junk, m.len + 2, &out, err, sizeof err),
                     FV_EPROTO);
    assert_non_null(strstr(err, "malformed push response"));
    fv__membuf_free(&m);
    /* a message that is not UTF-8 is refused on both sides */
    memcpy(rej[0].message, "bad \xFF", 6);
    fv__membuf_init(&m, 0);
    assert_int_equal(fv__wire_encode_push_response(&pr, fv__membuf_write, &m, err, sizeof err),
                     FV_EINVAL);
    assert_non_null(strstr(err, "rejection #0 message is not valid UTF-8"));
    assert_int_equal(m.len, 0);
    fv__membuf_free(&m);

    fieldvault_v1_PullRequest q = {{0}, 987654321, 500};
    memcpy(q.device_id, DEVICE, 16);
    fv__membuf_init(&m, 0);
    assert_int_equal(fv__wire_encode_pull_request(&q, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    fieldvault_v1_PullRequest qo;
    assert_int_equal(fv__wire_decode_pull_request(m.data, m.len, &qo, err, sizeof err), FV_OK);
    assert_memory_equal(qo.device_id, DEVICE, 16);
    assert_int_equal(qo.cursor, 987654321);
    assert_int_equal(qo.max_changes, 500);
    fv__membuf_free(&m);
    pbw w = {0};
    pbw_uint(&w, 2, 5);
    assert_int_equal(fv__wire_decode_pull_request(w.b, w.n, &qo, err, sizeof err), FV_EPROTO);
    assert_non_null(strstr(err, "device_id missing"));
    pbw_free(&w);

    fieldvault_v1_Error e = {fieldvault_v1_ErrorCode_ERROR_CODE_REVOKED, "device revoked"};
    fv__membuf_init(&m, 0);
    assert_int_equal(fv__wire_encode_error(&e, fv__membuf_write, &m, err, sizeof err), FV_OK);
    fieldvault_v1_Error eo;
    assert_int_equal(fv__wire_decode_error(m.data, m.len, &eo, err, sizeof err), FV_OK);
    assert_int_equal(eo.code, fieldvault_v1_ErrorCode_ERROR_CODE_REVOKED);
    assert_string_equal(eo.message, "device revoked");
    fv__membuf_free(&m);
    /* a message over its bound */
    char longmsg[400];
    memset(longmsg, 'x', sizeof longmsg);
    pbw_uint(&w, 1, 1);
    pbw_bytes(&w, 2, longmsg, sizeof longmsg);
    assert_int_equal(fv__wire_decode_error(w.b, w.n, &eo, err, sizeof err), FV_EPROTO);
    assert_non_null(strstr(err, "malformed error"));
    pbw_free(&w);
}

/* ---- PushRequest header rules, enrolment messages ---- */

static fv_status decode_push_mem(const unsigned char *buf, size_t len, collect *c,
                                 fv__push_info *info, char *err)
{
    fv__membuf m;
    fv__membuf_init_read(&m, buf, len);
    err[0] = '\0';
    fv_status st = fv__wire_decode_push_request(fv__membuf_read, &m, collect_sink, c, info, err,
                                                ERRCAP);
    fv__membuf_free(&m);
    return st;
}

static void expect_push_refused(const pbw *w, const char *phrase, size_t delivered)
{
    collect c;
    collect_init(&c, 8);
    char err[ERRCAP];
    fv__push_info info;
    fv_status st = decode_push_mem(w->b, w->n, &c, &info, err);
    if (st != FV_EPROTO || strstr(err, phrase) == NULL || c.n != delivered)
        fprintf(stderr, "expected \"%s\" after %zu changes; got status %d, %zu changes, "
                "\"%s\"\n", phrase, delivered, (int)st, c.n, err);
    assert_int_equal(st, FV_EPROTO);
    assert_non_null(strstr(err, phrase));
    assert_int_equal(c.n, delivered);
    free(c.v);
}

static void test_push_header_rules(void **state)
{
    (void)state;
    unsigned char hash[32];
    for (int i = 0; i < 32; i++) hash[i] = (unsigned char)(0xC0 + i);
    pbw w = {0};
    /* no prev_batch_hash at all */
    pbw_bytes(&w, 1, DEVICE, 16);
    pbw_uint(&w, 2, 3);
    pbw_good_change(&w);
    pbw_uint(&w, 15, 1);
    expect_push_refused(&w, "prev_batch_hash missing before the first change", 0);
    pbw_free(&w);
    /* after the changes (field-number order): too late */
    pbw_bytes(&w, 1, DEVICE, 16);
    pbw_uint(&w, 2, 3);
    pbw_good_change(&w);
    pbw_bytes(&w, 4, hash, 32);
    pbw_uint(&w, 15, 1);
    expect_push_refused(&w, "prev_batch_hash missing before the first change", 0);
    pbw_free(&w);
    /* an empty batch still needs it */
    pbw_bytes(&w, 1, DEVICE, 16);
    pbw_uint(&w, 15, 0);
    expect_push_refused(&w, "prev_batch_hash missing in the whole message", 0);
    pbw_free(&w);
    /* wrong lengths, wire type, duplicates */
    size_t lens[] = {0, 16, 31, 33, 64};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        unsigned char big[64] = {0};
        char want[64];
        pbw_bytes(&w, 1, DEVICE, 16);
        pbw_bytes(&w, 4, big, lens[i]);
        snprintf(want, sizeof want, "prev_batch_hash is %zu bytes, must be 32", lens[i]);
        expect_push_refused(&w, want, 0);
        pbw_free(&w);
    }
    pbw_bytes(&w, 1, DEVICE, 16);
    pbw_uint(&w, 4, 1);
    expect_push_refused(&w, "field prev_batch_hash at byte 18 has wire type 0 (varint)", 0);
    pbw_free(&w);
    pbw_bytes(&w, 1, DEVICE, 16);
    pbw_bytes(&w, 4, hash, 32);
    pbw_bytes(&w, 4, hash, 32);
    expect_push_refused(&w, "duplicate field prev_batch_hash", 0);
    pbw_free(&w);
    /* any header order is fine, as long as it precedes the changes */
    pbw_bytes(&w, 4, hash, 32);
    pbw_uint(&w, 2, 9);
    pbw_bytes(&w, 1, DEVICE, 16);
    pbw_good_change(&w);
    pbw_uint(&w, 15, 1);
    collect c;
    collect_init(&c, 4);
    char err[ERRCAP];
    fv__push_info info;
    assert_int_equal(decode_push_mem(w.b, w.n, &c, &info, err), FV_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(info.batch_seq, 9);
    assert_memory_equal(info.prev_batch_hash, hash, 32);
    pbw_free(&w);

    /* batch 1: 32 zero bytes are written (fixed length, never "default")
     * and an empty batch is header + trailer; protoc reads what we write */
    fv__push_info ph;
    memset(&ph, 0, sizeof ph);
    memcpy(ph.device_id, DEVICE, 16);
    ph.batch_seq = 1;
    fv__membuf m;
    fv__membuf_init(&m, 0);
    vec_src none = {NULL, 0, 0};
    assert_int_equal(fv__wire_encode_push_request(&ph, vec_next, &none, fv__membuf_write, &m,
                                                  NULL, err, sizeof err), FV_OK);
    assert_int_equal(m.len, 18 + 2 + 34 + 2);
    c.n = 0;
    memset(&info, 0xFF, sizeof info);
    assert_int_equal(decode_push_mem(m.data, m.len, &c, &info, err), FV_OK);
    static const unsigned char zero[32];
    assert_memory_equal(info.prev_batch_hash, zero, 32);
    assert_int_equal(info.count, 0);
    char *dir = tu_mkdtemp("wire-push");
    char *path = tu_path(dir, "push.bin");
    tu_write_file(path, m.data, m.len);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "exec '%s' --decode=fieldvault.v1.PushRequest --proto_path='%s/sync' "
             "'%s/sync/fieldvault.proto' < '%s'",
             FV_PROTOC, FV_SOURCE_DIR, FV_SOURCE_DIR, path);
    tu_result r = run_sh(cmd);
    if (r.exit_code != 0) fprintf(stderr, "protoc: %s\n", r.err);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "batch_seq: 1"));
    assert_non_null(strstr(r.out, "prev_batch_hash: \"\\000\\000"));
    assert_non_null(strstr(r.out, "count: 0"));
    tu_result_free(&r);
    tu_rmtree(dir);
    free(path);
    free(dir);
    fv__membuf_free(&m);
    free(c.v);
}

static fieldvault_v1_EnrollRequest good_enroll_request(void)
{
    fieldvault_v1_EnrollRequest q = fieldvault_v1_EnrollRequest_init_zero;
    snprintf(q.code, sizeof q.code, "%s", "K7QM-2XWD-9RTA-HB4E-PZ3C");
    memcpy(q.device_id, DEVICE, 16);
    for (int i = 0; i < 32; i++) q.public_key[i] = (unsigned char)(i + 1);
    snprintf(q.device_name, sizeof q.device_name, "%s", "Anna’s phone 📱");
    return q;
}

static void expect_enroll_request_refused(const pbw *w, const char *phrase)
{
    fieldvault_v1_EnrollRequest q;
    char err[ERRCAP];
    fv_status st = fv__wire_decode_enroll_request(w->b, w->n, &q, err, sizeof err);
    if (st != FV_EPROTO || strstr(err, phrase) == NULL)
        fprintf(stderr, "expected \"%s\"; got %d \"%s\"\n", phrase, (int)st, err);
    assert_int_equal(st, FV_EPROTO);
    assert_non_null(strstr(err, phrase));
}

/* A hand-written EnrollRequest: code, device_id, public_key, device_name
 * with the given lengths (SIZE_MAX: omit the field). */
static void pbw_enroll_request(pbw *w, const char *code, size_t idlen, size_t keylen,
                               const char *name)
{
    unsigned char b[64];
    memset(b, 0x5A, sizeof b);
    if (code != NULL) pbw_str(w, 1, code);
    if (idlen != SIZE_MAX) pbw_bytes(w, 2, b, idlen);
    if (keylen != SIZE_MAX) pbw_bytes(w, 3, b, keylen);
    if (name != NULL) pbw_str(w, 4, name);
}

static void test_enroll_messages(void **state)
{
    (void)state;
    char err[ERRCAP];
    fv__membuf m;

    /* round trips */
    fieldvault_v1_EnrollRequest q = good_enroll_request(), qo;
    fv__membuf_init(&m, 0);
    assert_int_equal(fv__wire_encode_enroll_request(&q, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    assert_int_equal(fv__wire_decode_enroll_request(m.data, m.len, &qo, err, sizeof err), FV_OK);
    assert_string_equal(qo.code, q.code);
    assert_memory_equal(qo.device_id, DEVICE, 16);
    assert_memory_equal(qo.public_key, q.public_key, 32);
    assert_string_equal(qo.device_name, q.device_name);
    /* junk after the message */
    unsigned char junk[512];
    memcpy(junk, m.data, m.len);
    junk[m.len] = 0;
    assert_int_equal(fv__wire_decode_enroll_request(junk, m.len + 1, &qo, err, sizeof err),
                     FV_EPROTO);
    assert_non_null(strstr(err, "malformed enroll request"));
    fv__membuf_free(&m);

    fieldvault_v1_EnrollResponse a = fieldvault_v1_EnrollResponse_init_zero, ao;
    snprintf(a.user, sizeof a.user, "%s", "anna.müller");
    snprintf(a.role, sizeof a.role, "%s", "rep");
    a.server_time_ms = -5; /* any int64 */
    memcpy(a.device_id, DEVICE, 16);
    fv__membuf_init(&m, 0);
    assert_int_equal(fv__wire_encode_enroll_response(&a, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    assert_int_equal(fv__wire_decode_enroll_response(m.data, m.len, &ao, err, sizeof err),
                     FV_OK);
    assert_string_equal(ao.user, "anna.müller");
    assert_string_equal(ao.role, "rep");
    assert_string_equal(ao.team, ""); /* may be empty */
    assert_true(ao.server_time_ms == -5);
    assert_memory_equal(ao.device_id, DEVICE, 16);
    fv__membuf_free(&m);

    /* the encoders refuse what the decoders would */
    fieldvault_v1_EnrollRequest b = good_enroll_request();
    b.code[0] = '\0';
    fv__membuf_init(&m, 0);
    assert_int_equal(fv__wire_encode_enroll_request(&b, fv__membuf_write, &m, err, sizeof err),
                     FV_EINVAL);
    assert_non_null(strstr(err, "code is empty"));
    b = good_enroll_request();
    memcpy(b.device_name, "bad \xC3(", 7);
    assert_int_equal(fv__wire_encode_enroll_request(&b, fv__membuf_write, &m, err, sizeof err),
                     FV_EINVAL);
    assert_non_null(strstr(err, "device_name is not valid UTF-8"));
    b = good_enroll_request();
    memset(b.device_id, 0, 16);
    assert_int_equal(fv__wire_encode_enroll_request(&b, fv__membuf_write, &m, err, sizeof err),
                     FV_EINVAL);
    assert_non_null(strstr(err, "device_id missing"));
    b = good_enroll_request();
    memset(b.public_key, 0, 32);
    assert_int_equal(fv__wire_encode_enroll_request(&b, fv__membuf_write, &m, err, sizeof err),
                     FV_EINVAL);
    assert_non_null(strstr(err, "public_key missing"));
    b = good_enroll_request();
    memset(b.code, 'x', sizeof b.code); /* no NUL within 65 bytes */
    assert_int_equal(fv__wire_encode_enroll_request(&b, fv__membuf_write, &m, err, sizeof err),
                     FV_EINVAL);
    assert_non_null(strstr(err, "code is not NUL-terminated"));
    fieldvault_v1_EnrollResponse ab = a;
    ab.role[0] = '\0';
    assert_int_equal(fv__wire_encode_enroll_response(&ab, fv__membuf_write, &m, err,
                                                     sizeof err), FV_EINVAL);
    assert_non_null(strstr(err, "role is empty"));
    ab = a;
    memset(ab.device_id, 0, 16);
    assert_int_equal(fv__wire_encode_enroll_response(&ab, fv__membuf_write, &m, err,
                                                     sizeof err), FV_EINVAL);
    assert_non_null(strstr(err, "device_id missing"));
    assert_int_equal(m.len, 0); /* nothing written on refusal */
    fv__membuf_free(&m);

    /* hostile requests, each refused with the field named */
    char c65[66];
    memset(c65, 'C', 65);
    c65[65] = '\0';
    const struct {
        const char *code;
        size_t idlen, keylen;
        const char *name;
        const char *phrase;
    } cases[] = {
        {"CODE", 16, 31, "n", "public_key is 31 bytes, must be 32"},
        {"CODE", 16, 33, "n", "public_key is 33 bytes, must be 32"},
        {"CODE", 15, 32, "n", "device_id is 15 bytes, must be 16"},
        {"CODE", 0, 32, "n", "device_id is 0 bytes, must be 16"},
        {"CODE", SIZE_MAX, 32, "n", "device_id missing"},
        {"CODE", 16, SIZE_MAX, "n", "public_key missing"},
        {NULL, 16, 32, "n", "code is empty"},
        {"", 16, 32, "n", "code is empty"},
        {c65, 16, 32, "n", "code is 65 bytes, over the limit of 64"},
        {"CODE", 16, 32, c65, "device_name is 65 bytes, over the limit of 64"},
        {"CODE", 16, 32, "\xED\xA0\x80", "device_name is not valid UTF-8 (at byte 0)"},
        {"CO\xC0\xAF", 16, 32, NULL, "code is not valid UTF-8 (at byte 2)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pbw w = {0};
        pbw_enroll_request(&w, cases[i].code, cases[i].idlen, cases[i].keylen, cases[i].name);
        expect_enroll_request_refused(&w, cases[i].phrase);
        pbw_free(&w);
    }
    pbw w = {0};
    pbw_bytes(&w, 1, "AB\0CD", 5); /* an embedded NUL */
    pbw_enroll_request(&w, NULL, 16, 32, NULL);
    expect_enroll_request_refused(&w, "code contains a NUL byte");
    pbw_free(&w);
    pbw_uint(&w, 1, 7);
    expect_enroll_request_refused(&w, "code has wire type 0 (varint), expected length-delimited");
    pbw_free(&w);
    pbw_enroll_request(&w, "CODE", 16, 32, NULL);
    pbw_key(&w, 3, 2);
    pbw_varint(&w, (uint64_t)1 << 40);
    expect_enroll_request_refused(&w, "public_key is 1099511627776 bytes, must be 32");
    pbw_free(&w);
    /* an unknown field from a later revision is skipped */
    pbw_enroll_request(&w, "CODE", 16, 32, "n");
    pbw_str(&w, 9, "future");
    assert_int_equal(fv__wire_decode_enroll_request(w.b, w.n, &qo, err, sizeof err), FV_OK);
    assert_string_equal(qo.code, "CODE");
    pbw_free(&w);
    /* the message bound comes before anything is read */
    unsigned char *huge = calloc(1, FV_WIRE_MESSAGE_MAX_BYTES + 1);
    assert_non_null(huge);
    assert_int_equal(fv__wire_decode_enroll_request(huge, FV_WIRE_MESSAGE_MAX_BYTES + 1, &qo,
                                                    err, sizeof err), FV_EPROTO);
    assert_non_null(strstr(err, "over the limit"));
    free(huge);
    /* hostile responses */
    pbw_str(&w, 1, "anna");
    pbw_str(&w, 2, "rep");
    expect_enroll_request_refused(&w, "malformed enroll request"); /* not a request */
    assert_int_equal(fv__wire_decode_enroll_response(w.b, w.n, &ao, err, sizeof err), FV_EPROTO);
    assert_non_null(strstr(err, "device_id missing"));
    pbw_bytes(&w, 5, DEVICE, 16);
    assert_int_equal(fv__wire_decode_enroll_response(w.b, w.n, &ao, err, sizeof err), FV_OK);
    pbw_bytes(&w, 3, "t\0", 2);
    assert_int_equal(fv__wire_decode_enroll_response(w.b, w.n, &ao, err, sizeof err), FV_EPROTO);
    assert_non_null(strstr(err, "team contains a NUL byte"));
    pbw_free(&w);
    pbw_str(&w, 2, "rep");
    pbw_bytes(&w, 5, DEVICE, 16);
    assert_int_equal(fv__wire_decode_enroll_response(w.b, w.n, &ao, err, sizeof err), FV_EPROTO);
    assert_non_null(strstr(err, "user is empty"));
    pbw_free(&w);
}

/* ---- Hostile input ---- */

/* Offsets where each Change of a valid encoding ends. */
static size_t change_ends(const unsigned char *b, size_t n, size_t *ends, size_t cap)
{
    pb_istream_t s = pb_istream_from_buffer(b, n);
    size_t k = 0;
    while (s.bytes_left > 0) {
        uint64_t key;
        assert_true(pb_decode_varint(&s, &key));
        pb_wire_type_t wt = (pb_wire_type_t)(key & 7);
        if ((key >> 3) == 3) {
            uint64_t len;
            assert_true(pb_decode_varint(&s, &len));
            assert_true(pb_read(&s, NULL, (size_t)len));
            assert_true(k < cap);
            ends[k++] = n - s.bytes_left;
        } else {
            assert_true(pb_skip_field(&s, wt));
        }
    }
    return k;
}

static void test_truncation_every_offset(void **state)
{
    (void)state;
    fv__change v[8];
    size_t n = interop_fixture(v);
    /* keep it small but varied: drop the 4 KiB text */
    v[5] = v[6];
    n = 6;
    fv__membuf m;
    encode_to_mem(&m, v, n);
    size_t ends[8];
    assert_int_equal(change_ends(m.data, m.len, ends, 8), n);
    for (size_t cut = 0; cut < m.len; cut++) {
        size_t whole = 0;
        while (whole < n && ends[whole] <= cut) whole++;
        expect_refused(m.data, cut, "truncated", whole);
    }
    /* and the whole thing is fine */
    collect c;
    collect_init(&c, 8);
    char err[ERRCAP];
    assert_int_equal(decode_mem(m.data, m.len, &c, NULL, err), FV_OK);
    assert_int_equal(c.n, n);
    printf("test_wire: all %zu truncations of a %zu-change set refused\n", m.len, n);
    free(c.v);
    fv__membuf_free(&m);
}

static void test_trailer_rules(void **state)
{
    (void)state;
    pbw w = {0};
    /* missing trailer: cut at a message boundary */
    pbw_header(&w, 1);
    pbw_good_change(&w);
    pbw_good_change(&w);
    expect_refused(w.b, w.n, "truncated: no count trailer after 2 changes", 2);
    /* a count that disagrees, either way */
    size_t body = w.n;
    pbw_uint(&w, 15, 3);
    expect_refused(w.b, w.n, "count mismatch: the trailer says 3 changes but 2", 2);
    w.n = body;
    pbw_uint(&w, 15, 1);
    expect_refused(w.b, w.n, "count mismatch: the trailer says 1 changes but 2", 2);
    /* a change after the trailer is trailing data */
    w.n = body;
    pbw_uint(&w, 15, 2);
    size_t whole = w.n;
    pbw_good_change(&w);
    expect_refused(w.b, w.n, "trailing data after the count trailer", 2);
    /* trailing bytes of any kind */
    w.n = whole;
    pbw_raw(&w, "\0", 1);
    expect_refused(w.b, w.n, "trailing data after the count trailer", 2);
    w.n = whole;
    pbw_uint(&w, 1, 1);
    expect_refused(w.b, w.n, "trailing data after the count trailer", 2);
    /* the count as a length-delimited field */
    w.n = body;
    pbw_bytes(&w, 15, "\x02", 1);
    expect_refused(w.b, w.n, "count trailer at byte", 2);
    pbw_free(&w);
}

static void test_bad_headers(void **state)
{
    (void)state;
    pbw w = {0};
    expect_refused((const unsigned char *)"", 0, "truncated: empty input", 0);
    /* unsupported versions */
    pbw_header(&w, 2);
    pbw_good_change(&w);
    pbw_uint(&w, 15, 1);
    expect_refused(w.b, w.n, "unsupported version 2 (this build reads version 1)", 0);
    pbw_free(&w);
    pbw_bytes(&w, 2, ORIGIN, 16); /* no version */
    pbw_good_change(&w);
    pbw_uint(&w, 15, 1);
    expect_refused(w.b, w.n, "unsupported version: no version field before the first change",
                   0);
    pbw_free(&w);
    pbw_bytes(&w, 2, ORIGIN, 16);
    pbw_uint(&w, 15, 0);
    expect_refused(w.b, w.n, "unsupported version: no version field", 0);
    pbw_free(&w);
    /* origin: wrong size, missing, duplicated, wrong wire type */
    pbw_uint(&w, 1, 1);
    pbw_bytes(&w, 2, ORIGIN, 15);
    expect_refused(w.b, w.n, "origin_device is 15 bytes, must be 16", 0);
    pbw_free(&w);
    pbw_uint(&w, 1, 1);
    pbw_good_change(&w);
    expect_refused(w.b, w.n, "origin_device missing before the first change", 0);
    pbw_free(&w);
    pbw_header(&w, 1);
    pbw_bytes(&w, 2, ORIGIN, 16);
    expect_refused(w.b, w.n, "duplicate field origin_device", 0);
    pbw_free(&w);
    pbw_bytes(&w, 1, "\x01", 1);
    expect_refused(w.b, w.n, "field version at byte 0 has wire type 2 (length-delimited), "
                   "expected varint", 0);
    pbw_free(&w);
    /* changes with the wrong wire type */
    pbw_header(&w, 1);
    pbw_uint(&w, 3, 5);
    expect_refused(w.b, w.n, "change #0 at byte 20 has wire type 0 (varint)", 0);
    pbw_free(&w);
    /* invalid keys */
    pbw_header(&w, 1);
    pbw_key(&w, 4, 3); /* a group */
    expect_refused(w.b, w.n, "invalid wire type 3", 0);
    pbw_free(&w);
    pbw_header(&w, 1);
    pbw_key(&w, 0, 0);
    expect_refused(w.b, w.n, "invalid field number 0", 0);
    pbw_free(&w);
    pbw_header(&w, 1);
    pbw_raw(&w, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
    expect_refused(w.b, w.n, "malformed field key at byte 20: varint overflow", 0);
    pbw_free(&w);
}

static void test_lying_lengths(void **state)
{
    (void)state;
    pbw w = {0};
    const uint64_t two_gib = (uint64_t)1 << 31;
    /* a change claiming 2 GiB */
    pbw_header(&w, 1);
    pbw_key(&w, 3, 2);
    pbw_varint(&w, two_gib);
    pbw_raw(&w, "abc", 3);
    expect_refused(w.b, w.n, "change #0 at byte 20 is 2147483648 bytes, over the limit of 8192",
                   0);
    pbw_free(&w);
    /* the origin claiming 2 GiB */
    pbw_uint(&w, 1, 1);
    pbw_key(&w, 2, 2);
    pbw_varint(&w, two_gib);
    expect_refused(w.b, w.n, "origin_device is 2147483648 bytes, must be 16", 0);
    pbw_free(&w);
    /* an unknown field claiming 2 GiB: past the input bound, nothing read */
    pbw_header(&w, 1);
    pbw_key(&w, 9, 2);
    pbw_varint(&w, two_gib);
    expect_refused(w.b, w.n, "exceeds 1073741824 bytes (FV_CHANGESET_MAX_BYTES)", 0);
    pbw_free(&w);
    /* ... and 2^64 - 1 */
    pbw_header(&w, 1);
    pbw_key(&w, 9, 2);
    pbw_varint(&w, UINT64_MAX);
    expect_refused(w.b, w.n, "exceeds 1073741824 bytes", 0);
    pbw_free(&w);
    /* a field inside a change claiming more than the change holds */
    pbw c = {0};
    pbw_change_body(&c, 0);
    pbw_key(&c, 1, 2);
    pbw_varint(&c, 60);
    pbw_raw(&c, "customer", 8);
    expect_bad_change(&c, "table name runs past the end of the change");
    pbw_free(&c);
    pbw_change_body(&c, 8);
    pbw_key(&c, 4, 2);
    pbw_varint(&c, two_gib);
    expect_bad_change(&c, "change #1 (at byte");
    pbw_free(&c);
}

static void test_bad_changes(void **state)
{
    (void)state;
    pbw f = {0};
    unsigned char row[20];
    memset(row, 7, sizeof row);

    pbw_bytes(&f, 2, row, 15);
    expect_bad_field(2, &f, "change #1 (at byte 103): row_id is 15 bytes, must be 16");
    pbw_free(&f);
    pbw_bytes(&f, 2, row, 17);
    expect_bad_field(2, &f, "row_id is 17 bytes, must be 16");
    pbw_free(&f);
    expect_bad_field(2, NULL, "row_id missing");
    pbw_bytes(&f, 7, row, 15);
    expect_bad_field(16, &f, "device_id is 15 bytes, must be 16");
    pbw_free(&f);
    expect_bad_field(16, NULL, "device_id missing");

    pbw_str(&f, 3, "Name");
    expect_bad_field(4, &f, "field name \"Name\" is not a valid name");
    pbw_free(&f);
    pbw_str(&f, 3, "9lives");
    expect_bad_field(4, &f, "field name \"9lives\" is not a valid name");
    pbw_free(&f);
    pbw_str(&f, 3, "na\xffme");
    expect_bad_field(4, &f, "field name \"na?me\" is not a valid name");
    pbw_free(&f);
    expect_bad_field(4, NULL, "field name is empty");
    pbw_str(&f, 1, "cust-omer");
    expect_bad_field(1, &f, "table name \"cust-omer\" is not a valid name");
    pbw_free(&f);
    char longname[FV_NAME_MAX + 2];
    memset(longname, 'a', FV_NAME_MAX + 1);
    longname[FV_NAME_MAX + 1] = '\0';
    pbw_str(&f, 1, longname);
    expect_bad_field(1, &f, "table name is 65 bytes, over the limit of 64");
    pbw_free(&f);

    expect_bad_text("bad \xC3\x28 utf8", 11, "text value is not valid UTF-8 (at byte 4)");
    expect_bad_text("\xC0\xAF", 2, "not valid UTF-8");         /* overlong '/' */
    expect_bad_text("\xED\xA0\x80", 3, "not valid UTF-8");     /* a surrogate */
    expect_bad_text("\xF4\x90\x80\x80", 4, "not valid UTF-8"); /* above U+10FFFF */
    expect_bad_text("abc\xE2\x82", 5, "not valid UTF-8");      /* cut short */
    expect_bad_text("a\0b", 3, "text value contains a NUL byte");
    char *big = malloc(FV_SEALED_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', FV_SEALED_MAX + 2);
    expect_bad_text(big, FV_FIELD_MAX + 1, "text value is 4097 bytes, over the limit of 4096");
    pbw v = {0};
    pbw_bytes(&v, 3, big, FV_SEALED_MAX + 1);
    pbw_bytes(&f, 4, v.b, v.n);
    expect_bad_field(8, &f, "sealed value is 4161 bytes, over the limit of 4160");
    pbw_free(&v);
    pbw_free(&f);
    free(big);

    /* wrong wire types */
    pbw_uint(&f, 5, 1);
    expect_bad_field(0, &f, "hlc has wire type 0 (varint), expected 64-bit");
    pbw_free(&f);
    pbw_uint(&f, 4, 1);
    expect_bad_field(8, &f, "value has wire type 0 (varint), expected length-delimited");
    pbw_free(&f);
    pbw_fixed64(&v, 1, 5);
    pbw_bytes(&f, 4, v.b, v.n);
    expect_bad_field(8, &f, "text value has wire type 1 (64-bit), expected length-delimited");
    pbw_free(&v);
    pbw_free(&f);
    pbw_bytes(&f, 8, "x", 1);
    expect_bad_field(0, &f, "device_seq has wire type 2");
    pbw_free(&f);

    /* values the rules refuse */
    double not_a_number = NAN;
    uint64_t bits;
    memcpy(&bits, &not_a_number, 8);
    pbw_fixed64(&v, 2, bits);
    pbw_bytes(&f, 4, v.b, v.n);
    expect_bad_field(8, &f, "real value is not finite");
    pbw_free(&v);
    pbw_free(&f);
    pbw_str(&f, 3, "_deleted");
    expect_bad_field(4, &f, "_deleted must be real 0 or 1");
    pbw_free(&f);

    /* the change itself: over its bound, a zero key inside */
    pbw c = {0};
    pbw_change_body(&c, 0);
    char pad[9000];
    memset(pad, 0, sizeof pad);
    pbw_bytes(&c, 99, pad, sizeof pad);
    expect_bad_change(&c, "bytes, over the limit of 8192");
    pbw_free(&c);
    pbw_change_body(&c, 0);
    pbw_raw(&c, "\0", 1);
    expect_bad_change(&c, "invalid field number 0");
    pbw_free(&c);
}

static void test_unknown_fields_skipped(void **state)
{
    (void)state;
    pbw w = {0}, c = {0};
    pbw_header(&w, 1);
    pbw_uint(&w, 9, 12345);                /* a later revision's fields */
    pbw_bytes(&w, 10, "future", 6);
    pbw_fixed64(&w, 11, 1);
    pbw_key(&w, 12, 5);
    pbw_raw(&w, "abcd", 4);
    pbw_change_body(&c, 0);
    pbw_bytes(&c, 20, "also future", 11);
    pbw_uint(&c, 21, 3);
    pbw_bytes(&w, 3, c.b, c.n);
    pbw_uint(&w, 15, 1);
    collect col;
    collect_init(&col, 2);
    char err[ERRCAP];
    fv__changeset_info info;
    fv_status st = decode_mem(w.b, w.n, &col, &info, err);
    if (st != FV_OK) fprintf(stderr, "%s\n", err);
    assert_int_equal(st, FV_OK);
    assert_int_equal(col.n, 1);
    assert_string_equal(col.v[0].table, "customer");
    assert_string_equal((char *)col.v[0].data, "hello");
    assert_true(col.v[0].device_seq == 42);
    free(col.v);
    pbw_free(&c);
    pbw_free(&w);
}

/* ---- The input bound, counted over a real stream ---- */

/* Header, then one unknown field of `pad` zero bytes, then the trailer. */
typedef struct pad_src {
    unsigned char head[64];
    size_t head_len;
    uint64_t pad, off; /* off: bytes served */
} pad_src;

static long pad_read(void *ctx, unsigned char *buf, size_t cap)
{
    pad_src *p = ctx;
    uint64_t total = p->head_len + p->pad + 2;
    if (p->off == total) return 0;
    size_t n = 0;
    while (n < cap && p->off < total) {
        if (p->off < p->head_len) {
            buf[n++] = p->head[p->off++];
        } else if (p->off < p->head_len + p->pad) {
            uint64_t left = p->head_len + p->pad - p->off;
            size_t k = cap - n < left ? cap - n : (size_t)left;
            memset(buf + n, 0, k);
            n += k;
            p->off += k;
        } else {
            buf[n++] = (unsigned char)(p->off == total - 2 ? 0x78 : 0x00); /* count: 0 */
            p->off++;
        }
    }
    return (long)n;
}

static void pad_init(pad_src *p, uint64_t total)
{
    pbw w = {0};
    pbw_header(&w, 1);
    /* the unknown field's key and length take 1 + 5 bytes for these sizes */
    uint64_t pad = total - w.n - 6 - 2;
    pbw_key(&w, 9, 2);
    pbw_varint(&w, pad);
    assert_int_equal(w.n, 20 + 6);
    memcpy(p->head, w.b, w.n);
    p->head_len = w.n;
    p->pad = pad;
    p->off = 0;
    pbw_free(&w);
}

static void test_input_bound(void **state)
{
    (void)state;
    collect c;
    collect_init(&c, 1);
    char err[ERRCAP];
    pad_src p;
    clock_t t0 = clock();
    /* exactly FV_CHANGESET_MAX_BYTES: accepted */
    pad_init(&p, FV_CHANGESET_MAX_BYTES);
    fv_status st = fv__wire_decode_changeset(pad_read, &p, collect_sink, &c, NULL, err,
                                             sizeof err);
    if (st != FV_OK) fprintf(stderr, "%s\n", err);
    assert_int_equal(st, FV_OK);
    assert_true(p.off == FV_CHANGESET_MAX_BYTES);
    /* one byte more: refused, and nothing past the bound is read */
    pad_init(&p, FV_CHANGESET_MAX_BYTES + 1);
    st = fv__wire_decode_changeset(pad_read, &p, collect_sink, &c, NULL, err, sizeof err);
    assert_int_equal(st, FV_EPROTO);
    assert_non_null(strstr(err, "exceeds 1073741824 bytes (FV_CHANGESET_MAX_BYTES)"));
    assert_true(p.off <= FV_CHANGESET_MAX_BYTES + 65536);
    printf("test_wire: 2 x 1 GiB through the decoder in %.2fs\n",
           (double)(clock() - t0) / CLOCKS_PER_SEC);
    free(c.v);
}

/* The encoder keeps the same bound: max-size sealed values until it would
 * pass FV_CHANGESET_MAX_BYTES, into a sink that only counts. */
static int big_next(void *ctx, fv__change *out)
{
    uint64_t *i = ctx;
    set_names(out, "customer", "secret", (int)(*i & 0x7f));
    memcpy(out->device, DEVICE, 16);
    out->kind = FV__VAL_SEALED;
    out->len = FV_SEALED_MAX;
    memset(out->data, (int)(*i & 0xff), FV_SEALED_MAX);
    out->device_seq = ++*i;
    return 1; /* never ends */
}

static int count_bytes(void *ctx, const unsigned char *buf, size_t len)
{
    (void)buf;
    *(uint64_t *)ctx += len;
    return 0;
}

static void test_encoder_bound(void **state)
{
    (void)state;
    uint64_t i = 0, bytes = 0, count = 0;
    char err[ERRCAP];
    clock_t t0 = clock();
    fv_status st = fv__wire_encode_changeset(ORIGIN, big_next, &i, count_bytes, &bytes, &count,
                                             err, sizeof err);
    printf("test_wire: encoder stopped after %llu changes, %llu bytes, in %.2fs\n",
           (unsigned long long)i, (unsigned long long)bytes,
           (double)(clock() - t0) / CLOCKS_PER_SEC);
    assert_int_equal(st, FV_EINVAL);
    assert_non_null(strstr(err, "would exceed 1073741824 bytes (FV_CHANGESET_MAX_BYTES)"));
    assert_true(bytes <= FV_CHANGESET_MAX_BYTES);
    assert_true(bytes > FV_CHANGESET_MAX_BYTES - 65536 - 8192);
}

/* ---- Garbage ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_garbage(void **state)
{
    (void)state;
    const char *s = getenv("FV_SEED");
    unsigned seed = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
    printf("test_wire: garbage with FV_SEED=%u\n", seed);
    rng_state = (uint64_t)seed * 2654435761u + 1;
    unsigned char buf[600];
    collect c;
    collect_init(&c, 8);
    char err[ERRCAP];
    const int iters = 50000;
    /* random bytes, bare or behind a valid header.  Bare garbage is refused
     * (being a valid set by chance takes a 1 in 2^32 start and more); a
     * random tail behind a header could by chance be unknown fields and a
     * trailer "count: 0", which is then a valid empty set. */
    int valid_tails = 0;
    for (int it = 0; it < iters; it++) {
        size_t off = 0;
        if (it & 1) {
            pbw w = {0};
            pbw_header(&w, 1);
            memcpy(buf, w.b, w.n);
            off = w.n;
            pbw_free(&w);
        }
        size_t n = off + (size_t)(rnd() % (sizeof buf - off));
        for (size_t i = off; i < n; i++) buf[i] = (unsigned char)rnd();
        c.n = 0;
        fv__changeset_info info;
        fv_status st = decode_mem(buf, n, &c, &info, err);
        if (st == FV_OK && off > 0 && c.n == info.count) {
            valid_tails++;
            continue;
        }
        if (st != FV_EPROTO) fprintf(stderr, "iteration %d: status %d: %s\n", it, (int)st, err);
        assert_int_equal(st, FV_EPROTO);
        assert_true(err[0] != '\0');
    }
    printf("test_wire: %d random inputs refused, %d random tails were valid sets\n",
           iters - valid_tails, valid_tails);
    /* a valid set with a few bytes changed: valid or refused, never worse */
    fv__change v[8];
    size_t n = interop_fixture(v);
    v[5] = v[6];
    n = 6;
    fv__membuf m;
    encode_to_mem(&m, v, n);
    unsigned char *mut = malloc(m.len);
    assert_non_null(mut);
    int ok = 0;
    for (int it = 0; it < iters; it++) {
        memcpy(mut, m.data, m.len);
        int flips = 1 + (int)(rnd() % 4);
        for (int k = 0; k < flips; k++) mut[rnd() % m.len] = (unsigned char)rnd();
        c.n = 0;
        fv__changeset_info info;
        fv_status st = decode_mem(mut, m.len, &c, &info, err);
        if (st == FV_OK) { /* e.g. a byte of a value changed */
            ok++;
            assert_true(c.n == info.count);
        } else {
            assert_int_equal(st, FV_EPROTO);
            assert_true(err[0] != '\0');
            assert_true(c.n <= n);
        }
    }
    printf("test_wire: %d of %d mutated sets still valid (values changed only)\n", ok, iters);
    free(mut);
    fv__membuf_free(&m);
    free(c.v);
}

/* ---- Callbacks that fail ---- */

static int failing_write(void *ctx, const unsigned char *buf, size_t len)
{
    (void)ctx, (void)buf, (void)len;
    return -1;
}

static long failing_read(void *ctx, unsigned char *buf, size_t cap)
{
    int *calls = ctx;
    if ((*calls)++ == 0) {
        memcpy(buf, "\x08\x01", cap < 2 ? cap : 2);
        return 2;
    }
    return -1;
}

static int failing_source(void *ctx, fv__change *out)
{
    int *left = ctx;
    if ((*left)-- > 0) {
        set_names(out, "customer", "name", 1);
        set_text(out, "x", 1);
        return 1;
    }
    return -1;
}

static void test_failing_callbacks(void **state)
{
    (void)state;
    char err[ERRCAP];
    fv__change v[8];
    size_t n = interop_fixture(v);
    vec_src s = {v, n, 0};
    assert_int_equal(fv__wire_encode_changeset(ORIGIN, vec_next, &s, failing_write, NULL, NULL,
                                               err, sizeof err), FV_EIO);
    assert_non_null(strstr(err, "byte sink failed"));

    int left = 2;
    fv__membuf m;
    fv__membuf_init(&m, 0);
    assert_int_equal(fv__wire_encode_changeset(ORIGIN, failing_source, &left, fv__membuf_write,
                                               &m, NULL, err, sizeof err), FV_EIO);
    assert_non_null(strstr(err, "the change source failed after 2 changes"));
    fv__membuf_free(&m);

    /* an invalid change from the source is not written */
    v[1].field[0] = 'X';
    s.i = 0;
    fv__membuf_init(&m, 0);
    assert_int_equal(fv__wire_encode_changeset(ORIGIN, vec_next, &s, fv__membuf_write, &m, NULL,
                                               err, sizeof err), FV_EINVAL);
    assert_non_null(strstr(err, "change #1: field name \"Xat\" is not a valid name"));
    v[1].field[0] = 'l';
    v[0].len = FV_FIELD_MAX + 1;
    s.i = 0;
    assert_int_equal(fv__wire_encode_changeset(ORIGIN, vec_next, &s, fv__membuf_write, &m, NULL,
                                               err, sizeof err), FV_EINVAL);
    assert_non_null(strstr(err, "change #0: text value is 4097 bytes"));
    fv__membuf_free(&m);
    n = interop_fixture(v);

    int calls = 0;
    collect c;
    collect_init(&c, 8);
    assert_int_equal(fv__wire_decode_changeset(failing_read, &calls, collect_sink, &c, NULL, err,
                                               sizeof err), FV_EIO);
    assert_non_null(strstr(err, "byte source failed"));

    /* the change sink says no: its message, and it is not called again */
    encode_to_mem(&m, v, n);
    c.fail_at = 2;
    c.n = 0;
    fv__membuf mr;
    fv__membuf_init_read(&mr, m.data, m.len);
    assert_int_equal(fv__wire_decode_changeset(fv__membuf_read, &mr, collect_sink, &c, NULL,
                                               err, sizeof err), FV_EPROTO);
    assert_string_equal(err, "sink says no to customer.budget");
    assert_int_equal(c.n, 3);
    fv__membuf_free(&mr);
    fv__membuf_free(&m);
    free(c.v);

    /* a membuf refuses to grow past its cap */
    fv__membuf_init(&m, 100);
    s.i = 0;
    assert_int_equal(fv__wire_encode_changeset(ORIGIN, vec_next, &s, fv__membuf_write, &m, NULL,
                                               err, sizeof err), FV_EIO);
    fv__membuf_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streaming_memory), /* first: it reads the peak RSS */
        cmocka_unit_test(test_roundtrip_file),
        cmocka_unit_test(test_protoc_decodes_ours),
        cmocka_unit_test(test_python_writes_we_read),
        cmocka_unit_test(test_python_reads_ours),
        cmocka_unit_test(test_push_pull_roundtrip),
        cmocka_unit_test(test_small_messages_roundtrip),
        cmocka_unit_test(test_push_header_rules),
        cmocka_unit_test(test_enroll_messages),
        cmocka_unit_test(test_truncation_every_offset),
        cmocka_unit_test(test_trailer_rules),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_lying_lengths),
        cmocka_unit_test(test_bad_changes),
        cmocka_unit_test(test_unknown_fields_skipped),
        cmocka_unit_test(test_input_bound),
        cmocka_unit_test(test_encoder_bound),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_failing_callbacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
