/*
 * test_report.c - the stage history (fv_history_each) and `fv report`.
 *
 *  - history: local writes record each change of customer.stage and
 *    .grade once (old value, new value, the write's clock and device), a
 *    write that keeps the value records nothing, the time window and an
 *    early stop work, and access control applies (a deleted customer's
 *    entries are gone).  A change set imported into another store records
 *    the same transitions there, with the writer's clock and device; a
 *    pulled change that loses the merge records nothing, one that wins
 *    records the transition from the local value;
 *  - report: a small data set written with a fixed clock (the platform
 *    hook table), ten customers moved through their stages between January
 *    and April 2026, visits across the ISO weeks of March (one given with a
 *    time zone that moves it to another day, one of a deleted customer, one
 *    deleted), then `fv report --month 2026-03 --json` from the real binary:
 *    every figure is compared with the numbers worked out by hand in the
 *    comments below.  Then the same store enrolled as the rep "ana" (the
 *    enrolment written into fv_meta, as test_acl.c does): the report covers
 *    her customers only.  The text output (plain when piped, bars on a
 *    terminal through script(1) when it is installed) and the default month
 *    are checked too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fieldvault.h"
#include "internal.h"
#include "platform.h"
#include "testutil.h"

#define PASS "report test passphrase"

/* ---- a fixed clock ---- */

static int64_t clock_ms;

static int64_t fixed_now(void *ctx)
{
    (void)ctx;
    return clock_ms;
}

static const fv_platform fixed_platform = {.version = FV_PLATFORM_VERSION, .now_ms = fixed_now};

/* Noon UTC of a day, as the clock. */
static int64_t noon(int y, int m, int d)
{
    /* days since the epoch (proleptic Gregorian), without the TZ-dependent mktime */
    int64_t yy = y - (m <= 2), era = (yy >= 0 ? yy : yy - 399) / 400, yoe = yy - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    return days * 86400000LL + 12 * 3600000LL;
}

static void at(int y, int m, int d)
{
    clock_ms = noon(y, m, d);
}

/* ---- stores ---- */

static fv_db *open_store(const char *path, int create)
{
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.passphrase = PASS;
    cfg.passphrase_len = strlen(PASS);
    cfg.flags = create ? FV_OPEN_CREATE : 0;
    cfg.kdf_mem_kib = 8192;
    cfg.kdf_passes = 1;
    cfg.user = "local";
    fv_db *db = NULL;
    fv_status st = fv_open(&db, &cfg);
    if (st != FV_OK) fprintf(stderr, "open %s: %s\n", path, fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    return db;
}

/* Insert a record from NULL-terminated name/value pairs; its id (malloc'd). */
static char *add(fv_db *db, const char *table, const char *const *kv)
{
    fv_record *r;
    assert_int_equal(fv_record_new(db, table, &r), FV_OK);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        assert_int_equal(fv_record_set_text(r, kv[i], kv[i + 1]), FV_OK);
    fv_status st = fv_insert(db, r);
    if (st != FV_OK) fprintf(stderr, "insert %s: %s\n", table, fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    char *id = strdup(fv_record_id(r));
    fv_record_free(r);
    return id;
}

static void set(fv_db *db, const char *id, const char *field, const char *value)
{
    fv_record *r;
    assert_int_equal(fv_get(db, "customer", id, &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, field, value), FV_OK);
    assert_int_equal(fv_update(db, r), FV_OK);
    fv_record_free(r);
}

static char *customer(fv_db *db, const char *name, const char *owner, const char *stage,
                      const char *grade)
{
    const char *kv[] = {"name", name, "owner", owner, "team", "east", "stage", stage,
                        grade ? "grade" : NULL, grade, NULL};
    return add(db, "customer", kv);
}

static char *visit(fv_db *db, const char *cust, const char *when)
{
    const char *kv[] = {"customer_id", cust, "method", "visit", "summary", "met", "at", when, NULL};
    return add(db, "visit", kv);
}

/* ---- history ---- */

typedef struct seen {
    size_t n, stop_after;
    char old[16][16], new_[16][16], row[16][FV_ID_LEN + 1], device[16][33];
    int64_t ms[16];
} seen;

static int collect(void *ctx, const fv_history_entry *e)
{
    seen *s = ctx;
    assert_true(s->n < 16);
    assert_string_equal(e->table, "customer");
    snprintf(s->old[s->n], 16, "%s", e->old_value ? e->old_value : "-");
    snprintf(s->new_[s->n], 16, "%s", e->new_value ? e->new_value : "-");
    snprintf(s->row[s->n], sizeof s->row[0], "%s", e->row_id);
    snprintf(s->device[s->n], 33, "%s", e->device);
    s->ms[s->n] = (int64_t)(e->hlc >> 16);
    s->n++;
    return s->stop_after != 0 && s->n >= s->stop_after;
}

static seen history(fv_db *db, const char *field, int64_t since, int64_t until)
{
    seen s;
    memset(&s, 0, sizeof s);
    fv_status st = fv_history_each(db, "customer", field, since, until, collect, &s);
    if (st != FV_OK) fprintf(stderr, "history: %s\n", fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    return s;
}

static void expect_entry(const seen *s, size_t i, const char *old, const char *new_, int64_t ms)
{
    assert_true(i < s->n);
    assert_string_equal(s->old[i], old);
    assert_string_equal(s->new_[i], new_);
    assert_int_equal(s->ms[i], ms);
}

static void test_history(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("history");
    char *pa = tu_path(dir, "a.fv"), *pb = tu_path(dir, "b.fv"), *set_a = tu_path(dir, "a.fvc");
    char *set_a2 = tu_path(dir, "a2.fvc"), *set_b = tu_path(dir, "b.fvc");
    assert_int_equal(fv_platform_set(&fixed_platform), FV_OK);
    at(2026, 1, 10);
    fv_db *a = open_store(pa, 1);
    fv_db *b = open_store(pb, 1);
    char dev_a[33], dev_b[33];
    assert_int_equal(fv_device_id(a, dev_a), FV_OK);
    assert_int_equal(fv_device_id(b, dev_b), FV_OK);

    at(2026, 1, 10);
    char *c = customer(a, "Kilo", "ana", "lead", "B");
    at(2026, 1, 20);
    set(a, c, "stage", "intent");
    at(2026, 1, 21);
    set(a, c, "grade", "A");
    at(2026, 1, 22);
    set(a, c, "stage", "intent"); /* the same value: no transition */
    set(a, c, "needs", "a new line"); /* another field: none either */
    at(2026, 2, 3);
    set(a, c, "stage", "won");

    seen s = history(a, "stage", 0, 0);
    assert_int_equal(s.n, 3);
    expect_entry(&s, 0, "-", "lead", noon(2026, 1, 10));
    expect_entry(&s, 1, "lead", "intent", noon(2026, 1, 20));
    expect_entry(&s, 2, "intent", "won", noon(2026, 2, 3));
    for (size_t i = 0; i < s.n; i++) {
        assert_string_equal(s.row[i], c);
        assert_string_equal(s.device[i], dev_a);
    }
    s = history(a, "grade", 0, 0);
    assert_int_equal(s.n, 2);
    expect_entry(&s, 0, "-", "B", noon(2026, 1, 10));
    expect_entry(&s, 1, "B", "A", noon(2026, 1, 21));
    /* the window: since <= time < until */
    s = history(a, "stage", noon(2026, 1, 20), noon(2026, 2, 3));
    assert_int_equal(s.n, 1);
    expect_entry(&s, 0, "lead", "intent", noon(2026, 1, 20));
    /* an early stop is not an error */
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    assert_int_equal(fv_history_each(a, "customer", "stage", 0, 0, collect, &s), FV_OK);
    assert_int_equal(s.n, 1);
    /* only the followed fields */
    assert_int_equal(fv_history_each(a, "customer", "name", 0, 0, collect, &s), FV_EINVAL);
    assert_non_null(strstr(fv_errmsg(a), "stage"));
    assert_int_equal(fv_history_each(a, "visit", "stage", 0, 0, collect, &s), FV_EINVAL);
    assert_int_equal(fv_history_each(a, "customer", "stage", 0, 0, NULL, NULL), FV_EMISUSE);

    /* imported: the same transitions, with the writer's clock and device */
    assert_int_equal(fv_changes_export_file(a, set_a, 0, NULL), FV_OK);
    at(2026, 2, 4);
    fv_apply_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    assert_int_equal(fv_changes_apply_file(b, set_a, &st), FV_OK);
    s = history(b, "stage", 0, 0);
    assert_int_equal(s.n, 3);
    expect_entry(&s, 0, "-", "lead", noon(2026, 1, 10));
    expect_entry(&s, 1, "lead", "intent", noon(2026, 1, 20));
    expect_entry(&s, 2, "intent", "won", noon(2026, 2, 3));
    assert_string_equal(s.device[2], dev_a);
    /* again: nothing new */
    assert_int_equal(fv_changes_apply_file(b, set_a, &st), FV_OK);
    assert_int_equal(history(b, "stage", 0, 0).n, 3);

    /* concurrent edits: b's later one wins on both stores */
    uint64_t after_first = 0;
    fv_export_info info;
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    assert_int_equal(fv_changes_export_file(a, set_a, 0, &info), FV_OK);
    after_first = info.last_seq;
    at(2026, 2, 10);
    set(a, c, "stage", "service");
    at(2026, 2, 11);
    set(b, c, "stage", "lost");
    /* a's change reaches b: older than b's own, it loses: no entry */
    FILE *f = fopen(set_a2, "wb");
    assert_non_null(f);
    assert_int_equal(fv_changes_export(a, 0, after_first, tu_fwrite_fn, f, NULL), FV_OK);
    fclose(f);
    assert_int_equal(fv_changes_apply_file(b, set_a2, &st), FV_OK);
    s = history(b, "stage", 0, 0);
    assert_int_equal(s.n, 4);
    expect_entry(&s, 3, "won", "lost", noon(2026, 2, 11));
    assert_string_equal(s.device[3], dev_b);
    /* b's change reaches a: it wins: service -> lost, b's device */
    assert_int_equal(fv_changes_export_file(b, set_b, 0, NULL), FV_OK);
    assert_int_equal(fv_changes_apply_file(a, set_b, &st), FV_OK);
    s = history(a, "stage", 0, 0);
    assert_int_equal(s.n, 5);
    expect_entry(&s, 3, "won", "service", noon(2026, 2, 10));
    expect_entry(&s, 4, "service", "lost", noon(2026, 2, 11));
    assert_string_equal(s.device[4], dev_b);

    /* access control: a deleted customer's history is not shown */
    assert_int_equal(fv_delete(a, "customer", c), FV_OK);
    assert_int_equal(history(a, "stage", 0, 0).n, 0);
    assert_int_equal(fv_restore(a, "customer", c), FV_OK);
    assert_int_equal(history(a, "stage", 0, 0).n, 5);

    assert_int_equal(fv_close(a), FV_OK);
    assert_int_equal(fv_close(b), FV_OK);
    assert_int_equal(fv_platform_set(NULL), FV_OK);
    free(c);
    free(set_a);
    free(set_a2);
    free(set_b);
    free(pa);
    free(pb);
    tu_rmtree(dir);
    free(dir);
}

/* ---- a small JSON reader (enough for fv's output) ---- */

typedef struct jv {
    char type; /* 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null */
    char *str;
    double num;
    size_t n;
    char **keys;      /* objects */
    struct jv *items; /* objects and arrays */
} jv;

static const char *jws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    return p;
}

static const char *jparse(const char *p, jv *out);

static const char *jstring(const char *p, char **out)
{
    if (*p != '"') return NULL;
    p++;
    size_t cap = strlen(p) + 1, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    while (*p && *p != '"') {
        if (*p == '\\') {
            p++;
            char c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'u' ? '?' : *p;
            if (*p == 'u') p += 4;
            s[n++] = c;
            p++;
        } else {
            s[n++] = *p++;
        }
    }
    s[n] = '\0';
    *out = s;
    return *p == '"' ? p + 1 : NULL;
}

static const char *jparse(const char *p, jv *out)
{
    memset(out, 0, sizeof *out);
    p = jws(p);
    if (*p == '{' || *p == '[') {
        int obj = *p == '{';
        out->type = obj ? 'o' : 'a';
        p = jws(p + 1);
        size_t cap = 4;
        out->items = calloc(cap, sizeof *out->items);
        out->keys = calloc(cap, sizeof *out->keys);
        while (*p != (obj ? '}' : ']')) {
            if (out->n == cap) {
                cap *= 2;
                out->items = realloc(out->items, cap * sizeof *out->items);
                out->keys = realloc(out->keys, cap * sizeof *out->keys);
            }
            out->keys[out->n] = NULL;
            if (obj) {
                p = jstring(jws(p), &out->keys[out->n]);
                if (p == NULL) return NULL;
                p = jws(p);
                if (*p++ != ':') return NULL;
            }
            p = jparse(p, &out->items[out->n++]);
            if (p == NULL) return NULL;
            p = jws(p);
            if (*p == ',') p = jws(p + 1);
        }
        return p + 1;
    }
    if (*p == '"') {
        out->type = 's';
        return jstring(p, &out->str);
    }
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        out->type = 'b';
        out->num = *p == 't';
        return p + (*p == 't' ? 4 : 5);
    }
    if (strncmp(p, "null", 4) == 0) {
        out->type = 'z';
        return p + 4;
    }
    char *end;
    out->type = 'n';
    out->num = strtod(p, &end);
    return end == p ? NULL : end;
}

static void jfree(jv *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jfree(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

/* The value at a path of keys and [indexes]: "visits.weeks[2].visits". */
static const jv *jget(const jv *v, const char *path)
{
    char key[64];
    while (*path) {
        if (*path == '.') path++;
        if (*path == '[') {
            size_t i = strtoul(path + 1, (char **)&path, 10);
            path++; /* ] */
            if (v->type != 'a' || i >= v->n) return NULL;
            v = &v->items[i];
            continue;
        }
        size_t k = 0;
        while (*path && *path != '.' && *path != '[' && k + 1 < sizeof key) key[k++] = *path++;
        key[k] = '\0';
        const jv *next = NULL;
        for (size_t i = 0; v->type == 'o' && i < v->n; i++)
            if (strcmp(v->keys[i], key) == 0) next = &v->items[i];
        if (next == NULL) return NULL;
        v = next;
    }
    return v;
}

static void expect_num(const jv *root, const char *path, double want)
{
    const jv *v = jget(root, path);
    if (v == NULL || v->type != 'n' || fabs(v->num - want) > 1e-9)
        fprintf(stderr, "%s: got %s %g, want %g\n", path, v ? "" : "(missing)", v ? v->num : 0,
                want);
    assert_non_null(v);
    assert_int_equal(v->type, 'n');
    assert_true(fabs(v->num - want) <= 1e-9);
}

static void expect_str(const jv *root, const char *path, const char *want)
{
    const jv *v = jget(root, path);
    if (v == NULL || v->type != 's' || strcmp(v->str, want) != 0)
        fprintf(stderr, "%s: got '%s', want '%s'\n", path, v && v->str ? v->str : "(missing)",
                want);
    assert_non_null(v);
    assert_int_equal(v->type, 's');
    assert_string_equal(v->str, want);
}

static void expect_len(const jv *root, const char *path, size_t n)
{
    const jv *v = jget(root, path);
    assert_non_null(v);
    if (v->n != n) fprintf(stderr, "%s: %zu elements, want %zu\n", path, v->n, n);
    assert_int_equal(v->n, n);
}

/* ---- the report ---- */

typedef struct dataset {
    char *dir, *path;
    char *alpha, *bravo, *charlie, *delta, *echo, *foxtrot, *golf, *hotel, *india, *juliet;
} dataset;

/*
 * Customers (owner, team east), moves (noon UTC) and where they stand now:
 *   alpha   ana S  lead 02-10, intent 02-20, won 03-05          -> won
 *   bravo   ana A  intent 02-12, negotiation 03-10, won 03-20   -> won
 *   charlie ana B  intent 03-03, lost 03-25                     -> lost
 *   delta   ana A  negotiation 01-05, lost 03-15                -> lost
 *   echo    ana S  won 02-01, service 04-02                     -> service
 *   foxtrot ben A  intent 02-15, won 03-12                      -> won
 *   golf    ana -  lead 03-28                                   -> lead
 *   hotel   ana B  intent 02-01, lost 02-25                     -> lost
 *   india   ben S  intent 02-16, won 04-03; next-due 2026-03-20 -> won
 *   juliet  ana A  intent 02-01, won 03-06, deleted 04-05       (not visible)
 * March 2026: conversion (reached won in March after being in intent in
 * March, directly or through negotiation): alpha, bravo, foxtrot = 3, of
 * those in intent at some time of March: alpha, bravo, foxtrot, india (at
 * its start) and charlie (from 03-03) = 5, 0.6.  Churn (-> lost in March):
 * delta, charlie = 2.
 * Visits in March by ISO week (W09 02-23..03-01 ... W14 03-30..04-05):
 *   ana: alpha 03-01 (W09), alpha 03-04 (W10), golf 03-02 01:30Z (given as
 *   03-01 23:30-02:00: W10), bravo 03-10 (W11), delta 03-16 (W12)
 *        -> 1 2 1 1 0 0 = 5
 *   ben: foxtrot 03-11 (W11), foxtrot 03-31 23:30Z (W14) -> 0 0 1 0 0 1 = 2
 *   left out: india 02-28 and 04-01 (other months), juliet 03-20 (deleted
 *   customer), alpha 03-25 (a deleted visit).
 * Overdue before 04-01 (lost never due): echo (created 02-01 + 7 = 02-08),
 * alpha (last visit 03-04 + 7 = 03-11), india (next-due 03-20), bravo
 * (03-10 + 14 = 03-24); not golf (03-02 + 30 = 04-01) nor foxtrot (03-31 +
 * 14).  By grade S 3, A 1.
 */
static void make_dataset(dataset *d)
{
    d->dir = tu_mkdtemp("report");
    d->path = tu_path(d->dir, "r.fv");
    assert_int_equal(fv_platform_set(&fixed_platform), FV_OK);
    at(2026, 1, 5);
    fv_db *db = open_store(d->path, 1);
    d->delta = customer(db, "Delta", "ana", "negotiation", "A");
    at(2026, 2, 1);
    d->echo = customer(db, "Echo", "ana", "won", "S");
    d->hotel = customer(db, "Hotel", "ana", "intent", "B");
    d->juliet = customer(db, "Juliet", "ana", "intent", "A");
    at(2026, 2, 10);
    d->alpha = customer(db, "Alpha", "ana", "lead", "S");
    at(2026, 2, 12);
    d->bravo = customer(db, "Bravo", "ana", "intent", "A");
    at(2026, 2, 15);
    d->foxtrot = customer(db, "Foxtrot", "ben", "intent", "A");
    at(2026, 2, 16);
    d->india = customer(db, "India", "ben", "intent", "S");
    set(db, d->india, "next_due", "2026-03-20");
    at(2026, 2, 20);
    set(db, d->alpha, "stage", "intent");
    at(2026, 2, 25);
    set(db, d->hotel, "stage", "lost");
    at(2026, 3, 3);
    d->charlie = customer(db, "Charlie", "ana", "intent", "B");
    at(2026, 3, 5);
    set(db, d->alpha, "stage", "won");
    at(2026, 3, 6);
    set(db, d->juliet, "stage", "won");
    at(2026, 3, 10);
    set(db, d->bravo, "stage", "negotiation");
    at(2026, 3, 12);
    set(db, d->foxtrot, "stage", "won");
    at(2026, 3, 15);
    set(db, d->delta, "stage", "lost");
    at(2026, 3, 20);
    set(db, d->bravo, "stage", "won");
    at(2026, 3, 25);
    set(db, d->charlie, "stage", "lost");
    at(2026, 3, 28);
    d->golf = customer(db, "Golf", "ana", "lead", NULL);
    at(2026, 4, 2);
    set(db, d->echo, "stage", "service");
    at(2026, 4, 3);
    set(db, d->india, "stage", "won");
    at(2026, 4, 4);
    free(visit(db, d->alpha, "2026-03-01T09:00:00Z"));
    free(visit(db, d->alpha, "2026-03-04T10:00:00Z"));
    free(visit(db, d->golf, "2026-03-01T23:30:00-02:00"));
    free(visit(db, d->bravo, "2026-03-10T10:00:00Z"));
    free(visit(db, d->delta, "2026-03-16T10:00:00Z"));
    free(visit(db, d->foxtrot, "2026-03-11T10:00:00Z"));
    free(visit(db, d->foxtrot, "2026-03-31T23:30:00Z"));
    free(visit(db, d->india, "2026-02-28T10:00:00Z"));
    free(visit(db, d->india, "2026-04-01T10:00:00Z"));
    free(visit(db, d->juliet, "2026-03-20T10:00:00Z"));
    char *gone = visit(db, d->alpha, "2026-03-25T10:00:00Z");
    assert_int_equal(fv_delete(db, "visit", gone), FV_OK);
    free(gone);
    at(2026, 4, 5);
    assert_int_equal(fv_delete(db, "customer", d->juliet), FV_OK);
    assert_int_equal(fv_close(db), FV_OK);
    assert_int_equal(fv_platform_set(NULL), FV_OK);
}

static void free_dataset(dataset *d)
{
    char **ids[] = {&d->alpha, &d->bravo, &d->charlie, &d->delta, &d->echo,
                    &d->foxtrot, &d->golf, &d->hotel, &d->india, &d->juliet};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) free(*ids[i]);
    tu_rmtree(d->dir);
    free(d->dir);
    free(d->path);
}

static const char *const env_ok[] = {"FV_PASSPHRASE=" PASS, "FV_USER", NULL};

static tu_result run_report(const char *path, const char *const *extra)
{
    const char *argv[12] = {FV_BIN, "report", path};
    size_t n = 3;
    for (size_t i = 0; extra[i] != NULL && n < 11; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    tu_result r = tu_run(argv, env_ok, NULL);
    if (r.exit_code != 0) fprintf(stderr, "fv report: exit %d: %s\n", r.exit_code, r.err);
    assert_int_equal(r.exit_code, 0);
    return r;
}

static jv report_json(const char *path)
{
    tu_result r = run_report(path, (const char *const[]){"--month", "2026-03", "--json", NULL});
    jv root;
    const char *end = jparse(r.out, &root);
    if (end == NULL || *jws(end) != '\0') fprintf(stderr, "not one JSON document:\n%s\n", r.out);
    assert_non_null(end);
    assert_true(*jws(end) == '\0');
    tu_result_free(&r);
    return root;
}

static void expect_weeks(const jv *root)
{
    static const char *const weeks[][3] = {
        {"2026-W09", "2026-02-23", "2026-03-01"}, {"2026-W10", "2026-03-02", "2026-03-08"},
        {"2026-W11", "2026-03-09", "2026-03-15"}, {"2026-W12", "2026-03-16", "2026-03-22"},
        {"2026-W13", "2026-03-23", "2026-03-29"}, {"2026-W14", "2026-03-30", "2026-04-05"},
    };
    expect_len(root, "visits.weeks", 6);
    for (size_t i = 0; i < 6; i++) {
        char p[64];
        snprintf(p, sizeof p, "visits.weeks[%zu].week", i);
        expect_str(root, p, weeks[i][0]);
        snprintf(p, sizeof p, "visits.weeks[%zu].from", i);
        expect_str(root, p, weeks[i][1]);
        snprintf(p, sizeof p, "visits.weeks[%zu].to", i);
        expect_str(root, p, weeks[i][2]);
    }
}

static void expect_counts(const jv *root, const char *path, const char *const *names,
                          const int *want)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        char p[64];
        snprintf(p, sizeof p, "%s.%s", path, names[i]);
        expect_num(root, p, want[i]);
    }
}

static void expect_owner(const jv *root, size_t i, const char *owner, const int weeks[6])
{
    char p[64];
    int total = 0;
    snprintf(p, sizeof p, "visits.by_owner[%zu].owner", i);
    expect_str(root, p, owner);
    for (size_t w = 0; w < 6; w++) {
        snprintf(p, sizeof p, "visits.by_owner[%zu].weeks[%zu]", i, w);
        expect_num(root, p, weeks[w]);
        total += weeks[w];
    }
    snprintf(p, sizeof p, "visits.by_owner[%zu].total", i);
    expect_num(root, p, total);
}

static void expect_overdue(const jv *root, const char *const *ids, const char *const *dues)
{
    size_t n = 0;
    while (ids[n] != NULL) n++;
    expect_len(root, "overdue.customers", n);
    for (size_t i = 0; i < n; i++) {
        char p[64];
        snprintf(p, sizeof p, "overdue.customers[%zu].id", i);
        expect_str(root, p, ids[i]);
        snprintf(p, sizeof p, "overdue.customers[%zu].due", i);
        expect_str(root, p, dues[i]);
    }
}

static const char *const stage_names[] = {"lead", "intent", "negotiation", "won",
                                          "service", "lost", "none", NULL};
static const char *const grade_names[] = {"S", "A", "B", "none", NULL};

static void test_report_figures(void **state)
{
    (void)state;
    dataset d;
    make_dataset(&d);
    jv root = report_json(d.path);
    expect_str(&root, "month", "2026-03");
    expect_str(&root, "from", "2026-03-01");
    expect_str(&root, "to", "2026-03-31");
    expect_num(&root, "customers", 9);
    expect_counts(&root, "pipeline", stage_names, (const int[]){1, 0, 0, 4, 1, 3, 0});
    expect_counts(&root, "grades", grade_names, (const int[]){3, 3, 2, 1});
    expect_num(&root, "conversion.intent_to_won", 3);
    expect_num(&root, "conversion.in_intent", 5);
    expect_num(&root, "conversion.rate", 0.6);
    expect_num(&root, "churn.to_lost", 2);
    expect_num(&root, "visits.total", 7);
    expect_weeks(&root);
    const int week_totals[6] = {1, 2, 2, 1, 0, 1};
    for (size_t w = 0; w < 6; w++) {
        char p[64];
        snprintf(p, sizeof p, "visits.weeks[%zu].visits", w);
        expect_num(&root, p, week_totals[w]);
    }
    expect_len(&root, "visits.by_owner", 2);
    expect_owner(&root, 0, "ana", (const int[]){1, 2, 1, 1, 0, 0});
    expect_owner(&root, 1, "ben", (const int[]){0, 0, 1, 0, 0, 1});
    expect_str(&root, "overdue.due_before", "2026-04-01");
    expect_num(&root, "overdue.total", 4);
    expect_counts(&root, "overdue.by_grade", grade_names, (const int[]){3, 1, 0, 0});
    expect_overdue(&root, (const char *const[]){d.echo, d.alpha, d.india, d.bravo, NULL},
                   (const char *const[]){"2026-02-08", "2026-03-11", "2026-03-20", "2026-03-24"});
    expect_str(&root, "overdue.customers[0].name", "Echo");
    expect_str(&root, "overdue.customers[0].grade", "S");
    expect_str(&root, "overdue.customers[0].owner", "ana");
    jfree(&root);

    /* text, piped: the same figures, no bars */
    tu_result r = run_report(d.path, (const char *const[]){"--month", "2026-03", NULL});
    assert_non_null(
        strstr(r.out, "Report for 2026-03 (2026-03-01 to 2026-03-31, UTC): 9 customers"));
    assert_non_null(strstr(r.out, "\n  won             4\n"));
    assert_non_null(strstr(r.out, "Grades now: S 3, A 3, B 2, no grade 1"));
    assert_non_null(strstr(r.out, "Conversion in 2026-03: 3 went from intent to won, of 5 in intent "
                                  "during the month (60%)"));
    assert_non_null(strstr(r.out, "Churn in 2026-03: 2 moved to lost"));
    assert_non_null(strstr(r.out, "\n  2026-W11        2  03-09..03-15  ana 1, ben 1\n"));
    assert_non_null(strstr(r.out, "due before 2026-04-01"));
    assert_null(strstr(r.out, "\xe2\x96\x88")); /* U+2588 */
    tu_result_free(&r);

    /* on a terminal: bars (script(1) gives fv a pseudo-terminal) */
    if (access("/usr/bin/script", X_OK) == 0) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s' report '%s' --month 2026-03", FV_BIN, d.path);
        const char *argv[] = {"/usr/bin/script", "-qec", cmd, "/dev/null", NULL};
        r = tu_run(argv, env_ok, NULL);
        assert_int_equal(r.exit_code, 0);
        /* won, the longest bar: 30 full blocks */
        assert_non_null(strstr(r.out, "won          \xe2\x96\x88\xe2\x96\x88\xe2\x96\x88"));
        assert_non_null(strstr(r.out, "2026-W10     \xe2\x96\x88"));
        tu_result_free(&r);
    }

    /* the default month is the current one (UTC) */
    time_t before = time(NULL);
    r = run_report(d.path, (const char *const[]){"--json", NULL});
    time_t after = time(NULL);
    char m1[8], m2[8];
    struct tm tm;
    gmtime_r(&before, &tm);
    strftime(m1, sizeof m1, "%Y-%m", &tm);
    gmtime_r(&after, &tm);
    strftime(m2, sizeof m2, "%Y-%m", &tm);
    assert_true(strstr(r.out, m1) != NULL || strstr(r.out, m2) != NULL);
    tu_result_free(&r);
    /* a bad month is a usage error */
    const char *bad[] = {FV_BIN, "report", d.path, "--month", "2026-13", NULL};
    r = tu_run(bad, env_ok, NULL);
    assert_int_equal(r.exit_code, 2);
    tu_result_free(&r);

    /* the rep ana, enrolled: only her customers */
    fv_db *db = open_store(d.path, 0);
    assert_int_equal(fv__exec(db, "INSERT OR REPLACE INTO fv_meta(key, value) VALUES"
                                  " ('user', 'ana'), ('role', 'rep'), ('team', 'east')"),
                     FV_OK);
    assert_int_equal(fv_close(db), FV_OK);
    root = report_json(d.path);
    expect_num(&root, "customers", 7);
    expect_counts(&root, "pipeline", stage_names, (const int[]){1, 0, 0, 2, 1, 3, 0});
    expect_counts(&root, "grades", grade_names, (const int[]){2, 2, 2, 1});
    expect_num(&root, "conversion.intent_to_won", 2); /* alpha, bravo */
    expect_num(&root, "conversion.in_intent", 3);
    expect_num(&root, "conversion.rate", 2.0 / 3.0);
    expect_num(&root, "churn.to_lost", 2);
    expect_num(&root, "visits.total", 5);
    expect_weeks(&root);
    expect_len(&root, "visits.by_owner", 1);
    expect_owner(&root, 0, "ana", (const int[]){1, 2, 1, 1, 0, 0});
    expect_num(&root, "overdue.total", 3);
    expect_counts(&root, "overdue.by_grade", grade_names, (const int[]){2, 1, 0, 0});
    expect_overdue(&root, (const char *const[]){d.echo, d.alpha, d.bravo, NULL},
                   (const char *const[]){"2026-02-08", "2026-03-11", "2026-03-24"});
    jfree(&root);
    free_dataset(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_report_figures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
