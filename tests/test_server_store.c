/*
 * test_server_store.c - fvd's store of record (server/store.h): one
 * behavioural suite, run on both backends (SQLite in a temp dir, PostgreSQL
 * in a fresh database of a throwaway cluster, tests/pgutil.h), each test on
 * a store of its own:
 *
 *  - users and enrolment: a code works once, two threads racing with one
 *    code on two handles -> exactly one wins, unknown codes, duplicate
 *    device ids (the code is then not consumed), bad arguments;
 *  - devices: get, touch, revoke (twice), list in enrolment order;
 *  - nonces: replays detected, devices independent, expired entries free;
 *  - push transactions: get_version / append / set_batch / commit; a
 *    rollback leaves nothing; server sequence numbers gapless and in order;
 *  - pull: cursor, max, more, last_seq, exact values of every kind; head.
 *  - field keys: the admin key is set once (same key again fine, another
 *    refused); team key versions (duplicates refused, current version,
 *    listing in byte order with grant counts); grants idempotent per
 *    (device, team, class, version), numbered in order, listed per device
 *    after a cursor in pages with `more`; references to an unknown device or
 *    an unpublished key refused;
 *  - the access policy: nothing stored at first; bytes that are not a
 *    policy refused; stored and read back byte for byte; the same or a
 *    lower version refused (the stored one stays); another handle sees a
 *    new one at once; admins racing on handles of their own: of one version
 *    exactly one is stored, of several the highest ends up in force;
 *  - update_user: role and team change for every device of the user
 *    (get_device, list_devices, push_begin), a NULL team stays; unknown
 *    users, bad arguments, and a push open on the handle refused;
 *  - scoped pulls (owner, team, all, nothing; in pages): after each of
 *    three pushes (rows written before their customer, reassignments of
 *    owner, team and both, a contact re-pointed to another customer, a
 *    cleared owner, a long owner, a customer_id naming nothing) every
 *    filter gives exactly what fvd's former per-row check (get_value /
 *    get_value_before, re-implemented here as the oracle) gave, and the
 *    cursor ends at the head;
 *  - schema-1, -2 and -3 stores are upgraded to 4 when opened, the log's
 *    scope back-filled (scoped pulls match the oracle afterwards, and
 *    after a new append); a newer one is refused.
 *
 * PostgreSQL only: two handles (two fvd processes) pushing from two threads
 * while a third pulls -> every change lands, sequence numbers are unique
 * and a puller never skips one; several processes creating the schema at
 * once; reconnecting after the server drops the connection (and a push cut
 * by it stores nothing); purge of old nonces; misuse; a URL's password
 * never in a message.
 *
 * FV_STORE_BACKENDS=sqlite or =postgres runs one backend only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>
#include <sqlite3.h>

#include "internal.h" /* fv__uuid_parse, fv__uuid_format */
#include "pgutil.h"
#include "store.h"
#include "testutil.h"

/* ---- backends and fixtures ------------------------------------------------ */

typedef struct backend backend;

typedef struct fixture {
    const backend *be;
    fvd_store *s;
    char *dir;      /* SQLite: the store's directory */
    char url[256];  /* PostgreSQL: the test's own database */
} fixture;

struct backend {
    const char *name;
    /* Make a fresh empty store location for f (dir or database). */
    int (*create)(fixture *f);
    /* Open (another) handle on f's store. */
    fv_status (*open)(const fixture *f, fvd_store **out, char *err, size_t errcap);
    void (*destroy)(fixture *f);
};

static pgu_cluster cluster;
static int cluster_up;

static int sqlite_create(fixture *f)
{
    f->dir = tu_mkdtemp("fvdstore");
    return 0;
}

static fv_status sqlite_open(const fixture *f, fvd_store **out, char *err, size_t errcap)
{
    return fvd_store_open_sqlite(f->dir, out, err, errcap);
}

static void sqlite_destroy(fixture *f)
{
    if (f->dir) tu_rmtree(f->dir);
    free(f->dir);
    f->dir = NULL;
}

static int pg_create(fixture *f)
{
    static int counter;
    char name[64];
    if (!cluster_up) return -1;
    snprintf(name, sizeof name, "t%d_%d", (int)getpid(), ++counter);
    return pgu_new_database(&cluster, name, f->url, sizeof f->url);
}

static fv_status pg_open(const fixture *f, fvd_store **out, char *err, size_t errcap)
{
    return fvd_store_open_pg(f->url, out, err, errcap);
}

static void pg_destroy(fixture *f)
{
    (void)f; /* the cluster goes at the end of the group */
}

static const backend sqlite_backend = {"sqlite", sqlite_create, sqlite_open, sqlite_destroy};
static const backend pg_backend = {"postgres", pg_create, pg_open, pg_destroy};

#define CHECK(expected, call)                                                            \
    do {                                                                                 \
        err[0] = '\0';                                                                   \
        fv_status st_ = (call);                                                          \
        if (st_ != (expected))                                                           \
            fprintf(stderr, "%s:%d: %s\n  -> %s, expected %s: %s\n", __FILE__, __LINE__, \
                    #call, fv_status_str(st_), fv_status_str(expected), err);            \
        assert_int_equal(st_, (expected));                                               \
    } while (0)
#define E err, sizeof err

static fvd_store *open_handle(const fixture *f)
{
    char err[512];
    fvd_store *s = NULL;
    CHECK(FV_OK, f->be->open(f, &s, E));
    assert_non_null(s);
    return s;
}

static int setup_store(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->be = *state;
    if (f->be->create(f) != 0) {
        fprintf(stderr, "cannot create a %s store\n", f->be->name);
        free(f);
        return -1;
    }
    f->s = open_handle(f);
    assert_string_equal(f->s->ops->backend, f->be->name);
    *state = f;
    return 0;
}

static int teardown_store(void **state)
{
    fixture *f = *state;
    if (f->s) f->s->ops->close(f->s);
    f->be->destroy(f);
    free(f);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static void code_hash(const char *code, unsigned char out[32])
{
    crypto_generichash(out, 32, (const unsigned char *)code, strlen(code), NULL, 0);
}

static void make_id(unsigned char id[16], unsigned n)
{
    memset(id, 0, 16);
    id[0] = 0xd5;
    id[12] = (unsigned char)(n >> 24);
    id[13] = (unsigned char)(n >> 16);
    id[14] = (unsigned char)(n >> 8);
    id[15] = (unsigned char)n;
}

static void make_key(unsigned char pk[32], unsigned n)
{
    for (int i = 0; i < 32; i++) pk[i] = (unsigned char)(n * 31u + (unsigned)i);
}

static void add_user(fvd_store *s, const char *name, const char *role, const char *team,
                     const char *code)
{
    char err[512];
    fvd_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", name);
    snprintf(u.role, sizeof u.role, "%s", role);
    snprintf(u.team, sizeof u.team, "%s", team);
    unsigned char h[32];
    code_hash(code, h);
    CHECK(FV_OK, s->ops->add_user(s, &u, h, E));
}

static fv_status enrol(fvd_store *s, const char *code, unsigned dev, const char *name,
                       int64_t now, fvd_device *out, char *err, size_t errcap)
{
    unsigned char h[32], id[16], pk[32];
    code_hash(code, h);
    make_id(id, dev);
    make_key(pk, dev);
    fvd_device scratch;
    return s->ops->enroll(s, h, id, pk, name, now, out ? out : &scratch, err, errcap);
}

/* A user with one enrolled device (id dev). */
static void user_with_device(fvd_store *s, const char *user, unsigned dev)
{
    char err[512], code[64];
    snprintf(code, sizeof code, "code-%s-%u", user, dev);
    add_user(s, user, "rep", "north", code);
    CHECK(FV_OK, enrol(s, code, dev, "phone", 1000, NULL, E));
}

static void mk_change(fv__change *c, const char *table, unsigned row, const char *field,
                      unsigned dev, uint64_t hlc, uint64_t base, uint64_t dseq)
{
    memset(c, 0, sizeof *c);
    snprintf(c->table, sizeof c->table, "%s", table);
    snprintf(c->field, sizeof c->field, "%s", field);
    make_id(c->row_id, row);
    c->row_id[0] = 0x01;
    make_id(c->device, dev);
    c->hlc = hlc;
    c->base_hlc = base;
    c->device_seq = dseq;
    c->kind = FV__VAL_NULL;
}

static void set_text(fv__change *c, const char *text)
{
    c->kind = FV__VAL_TEXT;
    c->len = strlen(text);
    memcpy(c->data, text, c->len + 1);
}

static void assert_change_equal(const fv__change *a, const fv__change *b)
{
    assert_string_equal(a->table, b->table);
    assert_string_equal(a->field, b->field);
    assert_memory_equal(a->row_id, b->row_id, FV_ROWID_LEN);
    assert_memory_equal(a->device, b->device, FV_DEVICE_LEN);
    assert_true(a->hlc == b->hlc);
    assert_true(a->base_hlc == b->base_hlc);
    assert_true(a->device_seq == b->device_seq);
    assert_int_equal(a->kind, b->kind);
    switch (a->kind) {
    case FV__VAL_TEXT:
        assert_int_equal(a->len, b->len);
        assert_memory_equal(a->data, b->data, a->len);
        assert_int_equal(b->data[b->len], 0); /* NUL-terminated */
        break;
    case FV__VAL_SEALED:
        assert_int_equal(a->len, b->len);
        assert_memory_equal(a->data, b->data, a->len);
        break;
    case FV__VAL_REAL:
        assert_memory_equal(&a->real, &b->real, sizeof a->real); /* bit for bit */
        break;
    default:
        break;
    }
}

/* One committed push of n changes by device dev; seqs get their numbers. */
static void push(fvd_store *s, unsigned dev, const fv__change *cs, size_t n, uint64_t batch,
                 uint64_t *seqs)
{
    char err[512];
    unsigned char id[16], hash[32];
    fvd_device d;
    make_id(id, dev);
    memset(hash, (int)batch, sizeof hash);
    CHECK(FV_OK, s->ops->push_begin(s, id, &d, E));
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = 0;
        CHECK(FV_OK, s->ops->append(s, &cs[i], &seq, E));
        if (seqs) seqs[i] = seq;
    }
    CHECK(FV_OK, s->ops->set_batch(s, id, batch, hash, E));
    CHECK(FV_OK, s->ops->push_end(s, 1, E));
}

typedef struct collected {
    fv__change *c;
    uint64_t *seq;
    size_t n, cap;
    size_t stop_after; /* cb returns -1 after this many (0: never) */
} collected;

static int collect_cb(void *ctx, const fv__change *c, uint64_t seq)
{
    collected *k = ctx;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 16;
        k->c = realloc(k->c, k->cap * sizeof *k->c);
        k->seq = realloc(k->seq, k->cap * sizeof *k->seq);
        assert_non_null(k->c);
        assert_non_null(k->seq);
    }
    k->c[k->n] = *c;
    k->seq[k->n] = seq;
    k->n++;
    return k->stop_after && k->n >= k->stop_after ? -1 : 0;
}

static void collected_free(collected *k)
{
    free(k->c);
    free(k->seq);
    memset(k, 0, sizeof *k);
}

/* ---- users, enrolment, devices ------------------------------------------------ */

static void test_users_and_enrolment(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    unsigned char h[32];
    fvd_user u;

    add_user(s, "alice", "rep", "north", "code-a");
    add_user(s, "bob", "lead", "south", "code-b");
    add_user(s, "carol", "director", "", "code-c");

    /* The name is taken. */
    memset(&u, 0, sizeof u);
    strcpy(u.name, "alice");
    strcpy(u.role, "lead");
    code_hash("another code", h);
    CHECK(FV_EEXIST, s->ops->add_user(s, &u, h, E));
    assert_true(strlen(err) > 0);

    /* Bad arguments: no name, names not terminated within their bounds. */
    memset(&u, 0, sizeof u);
    strcpy(u.role, "rep");
    code_hash("code-x", h);
    CHECK(FV_EINVAL, s->ops->add_user(s, &u, h, E));
    memset(&u, 'n', sizeof u.name);
    strcpy(u.role, "rep");
    u.team[0] = '\0';
    CHECK(FV_EINVAL, s->ops->add_user(s, &u, h, E));

    /* Enrol: the device gets its user's role and team. */
    fvd_device d;
    const char *dname = "Ана's 电话 📱";
    CHECK(FV_OK, enrol(s, "code-a", 1, dname, 1700000000123, &d, E));
    unsigned char id[16], pk[32], zero[32] = {0};
    make_id(id, 1);
    make_key(pk, 1);
    assert_memory_equal(d.id, id, 16);
    assert_memory_equal(d.public_key, pk, 32);
    assert_string_equal(d.name, dname);
    assert_string_equal(d.user, "alice");
    assert_string_equal(d.role, "rep");
    assert_string_equal(d.team, "north");
    assert_int_equal(d.revoked, 0);
    assert_true(d.last_batch_seq == 0);
    assert_memory_equal(d.last_batch_hash, zero, 32);
    assert_true(d.enrolled_ms == 1700000000123);
    assert_true(d.last_seen_ms == 0);

    /* The code worked once. */
    CHECK(FV_ENOTFOUND, enrol(s, "code-a", 2, "tablet", 1700000000200, NULL, E));
    assert_true(strlen(err) > 0);
    /* Unknown code. */
    CHECK(FV_ENOTFOUND, enrol(s, "no such code", 3, "x", 1700000000300, NULL, E));
    /* Duplicate device id: refused, and bob's code is not consumed by it. */
    CHECK(FV_EEXIST, enrol(s, "code-b", 1, "dup", 1700000000400, NULL, E));
    assert_true(strlen(err) > 0);
    CHECK(FV_OK, enrol(s, "code-b", 4, "", 1700000000500, &d, E));
    assert_string_equal(d.user, "bob");
    assert_string_equal(d.role, "lead");
    assert_string_equal(d.team, "south");
    assert_string_equal(d.name, "");

    /* Device name bound: 64 bytes fit, 65 do not (and consume nothing). */
    char longname[FVD_NAME_MAX + 2];
    memset(longname, 'd', sizeof longname - 1);
    longname[FVD_NAME_MAX + 1] = '\0';
    CHECK(FV_EINVAL, enrol(s, "code-c", 5, longname, 1700000000600, NULL, E));
    longname[FVD_NAME_MAX] = '\0';
    CHECK(FV_OK, enrol(s, "code-c", 5, longname, 1700000000600, &d, E));
    assert_string_equal(d.name, longname);
    assert_string_equal(d.team, "");

    /* What enroll returned is what the store holds. */
    fvd_device g;
    make_id(id, 5);
    CHECK(FV_OK, s->ops->get_device(s, id, &g, E));
    assert_memory_equal(&g.id, &d.id, sizeof g.id);
    assert_string_equal(g.name, d.name);
    assert_string_equal(g.user, "carol");
    assert_string_equal(g.role, "director");
    assert_true(g.enrolled_ms == 1700000000600);
}

typedef struct race_arg {
    fvd_store *s;
    pthread_barrier_t *barrier;
    const char *code;
    unsigned dev;
    fv_status st;
    char err[512];
} race_arg;

static void *race_enrol(void *p)
{
    race_arg *a = p;
    fvd_device d;
    pthread_barrier_wait(a->barrier);
    a->st = enrol(a->s, a->code, a->dev, "racer", 2000, &d, a->err, sizeof a->err);
    return NULL;
}

static void test_enrol_race(void **state)
{
    fixture *f = *state;
    fvd_store *s2 = open_handle(f);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    for (unsigned round = 0; round < 20; round++) {
        char user[32], code[32];
        snprintf(user, sizeof user, "user%u", round);
        snprintf(code, sizeof code, "race-code-%u", round);
        add_user(f->s, user, "rep", "north", code);
        race_arg a[2] = {{f->s, &barrier, code, 100 + 2 * round, FV_EIO, ""},
                         {s2, &barrier, code, 101 + 2 * round, FV_EIO, ""}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, race_enrol, &a[i]), 0);
        for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
        int wins = (a[0].st == FV_OK) + (a[1].st == FV_OK);
        int lost = (a[0].st == FV_ENOTFOUND) + (a[1].st == FV_ENOTFOUND);
        if (wins != 1 || lost != 1)
            fprintf(stderr, "round %u: %s (%s) / %s (%s)\n", round, fv_status_str(a[0].st),
                    a[0].err, fv_status_str(a[1].st), a[1].err);
        assert_int_equal(wins, 1);
        assert_int_equal(lost, 1);
        /* Exactly one device holds the user. */
        char err[512];
        fvd_device d;
        unsigned char id[16];
        make_id(id, a[0].st == FV_OK ? a[0].dev : a[1].dev);
        CHECK(FV_OK, f->s->ops->get_device(f->s, id, &d, E));
        assert_string_equal(d.user, user);
        make_id(id, a[0].st == FV_OK ? a[1].dev : a[0].dev);
        CHECK(FV_ENOTFOUND, s2->ops->get_device(s2, id, &d, E));
    }
    pthread_barrier_destroy(&barrier);
    s2->ops->close(s2);
}

typedef struct listed {
    unsigned char ids[16][16];
    char names[16][FVD_NAME_MAX + 1];
    int n;
    int stop_at;
} listed;

static int list_cb(void *ctx, const fvd_device *d)
{
    listed *l = ctx;
    memcpy(l->ids[l->n], d->id, 16);
    snprintf(l->names[l->n], sizeof l->names[0], "%s", d->name);
    l->n++;
    return l->stop_at && l->n >= l->stop_at;
}

static void test_devices(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    unsigned char id[16], unknown[16];
    fvd_device d;
    make_id(unknown, 999);

    CHECK(FV_ENOTFOUND, s->ops->get_device(s, unknown, &d, E));
    CHECK(FV_ENOTFOUND, s->ops->touch_device(s, unknown, 5, E));
    CHECK(FV_ENOTFOUND, s->ops->revoke_device(s, unknown, E));

    /* Enrol in an order that is neither id order nor name order. */
    const unsigned devs[] = {7, 3, 9, 1, 5};
    for (unsigned i = 0; i < 5; i++) {
        char user[16], code[16], name[16];
        snprintf(user, sizeof user, "u%u", devs[i]);
        snprintf(code, sizeof code, "c%u", devs[i]);
        snprintf(name, sizeof name, "%c-dev", 'e' - (int)i);
        add_user(s, user, "rep", "t", code);
        CHECK(FV_OK, enrol(s, code, devs[i], name, 1000 + (int64_t)i, NULL, E));
    }
    listed l;
    memset(&l, 0, sizeof l);
    CHECK(FV_OK, s->ops->list_devices(s, list_cb, &l, E));
    assert_int_equal(l.n, 5);
    for (int i = 0; i < 5; i++) {
        make_id(id, devs[i]);
        assert_memory_equal(l.ids[i], id, 16);
    }
    /* The callback stops the listing. */
    memset(&l, 0, sizeof l);
    l.stop_at = 2;
    CHECK(FV_OK, s->ops->list_devices(s, list_cb, &l, E));
    assert_int_equal(l.n, 2);

    /* Touch. */
    make_id(id, 3);
    CHECK(FV_OK, s->ops->touch_device(s, id, 1700000001000, E));
    CHECK(FV_OK, s->ops->get_device(s, id, &d, E));
    assert_true(d.last_seen_ms == 1700000001000);
    CHECK(FV_OK, s->ops->touch_device(s, id, 1700000002000, E));
    CHECK(FV_OK, s->ops->get_device(s, id, &d, E));
    assert_true(d.last_seen_ms == 1700000002000);
    assert_int_equal(d.revoked, 0);

    /* Revoke, twice; others untouched. */
    CHECK(FV_OK, s->ops->revoke_device(s, id, E));
    CHECK(FV_OK, s->ops->get_device(s, id, &d, E));
    assert_int_equal(d.revoked, 1);
    CHECK(FV_OK, s->ops->revoke_device(s, id, E));
    CHECK(FV_OK, s->ops->get_device(s, id, &d, E));
    assert_int_equal(d.revoked, 1);
    make_id(id, 7);
    CHECK(FV_OK, s->ops->get_device(s, id, &d, E));
    assert_int_equal(d.revoked, 0);
    assert_true(d.last_seen_ms == 0);

    /* Another handle sees the same. */
    fvd_store *s2 = open_handle(f);
    make_id(id, 3);
    CHECK(FV_OK, s2->ops->get_device(s2, id, &d, E));
    assert_int_equal(d.revoked, 1);
    s2->ops->close(s2);
}

/* ---- nonces ------------------------------------------------------------------------ */

static void test_nonces(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    unsigned char d1[16], d2[16], n1[16], n2[16];
    make_id(d1, 1);
    make_id(d2, 2);
    memset(n1, 0xa1, 16);
    memset(n2, 0xa2, 16);
    const int64_t w = 300000, t0 = 1700000000000;
    int replay = -1;

    CHECK(FV_OK, s->ops->use_nonce(s, d1, n1, t0, w, &replay, E));
    assert_int_equal(replay, 0);
    CHECK(FV_OK, s->ops->use_nonce(s, d1, n1, t0 + 1000, w, &replay, E));
    assert_int_equal(replay, 1);
    /* Another device, another nonce: independent. */
    CHECK(FV_OK, s->ops->use_nonce(s, d2, n1, t0 + 1000, w, &replay, E));
    assert_int_equal(replay, 0);
    CHECK(FV_OK, s->ops->use_nonce(s, d1, n2, t0 + 1000, w, &replay, E));
    assert_int_equal(replay, 0);
    /* A second handle (another fvd process) sees the same cache. */
    fvd_store *s2 = open_handle(f);
    CHECK(FV_OK, s2->ops->use_nonce(s2, d2, n1, t0 + 2000, w, &replay, E));
    assert_int_equal(replay, 1);
    s2->ops->close(s2);
    /* Still inside the window: still a replay. */
    CHECK(FV_OK, s->ops->use_nonce(s, d1, n1, t0 + w - 1000, w, &replay, E));
    assert_int_equal(replay, 1);
    /* Long after the window the entries are gone: a nonce may come back
     * (the request's timestamp check refuses such an old request anyway). */
    CHECK(FV_OK, s->ops->use_nonce(s, d1, n2, t0 + 3 * w, w, &replay, E));
    assert_int_equal(replay, 0);
    CHECK(FV_OK, s->ops->use_nonce(s, d1, n1, t0 + 3 * w + 1, w, &replay, E));
    assert_int_equal(replay, 0);
    CHECK(FV_OK, s->ops->use_nonce(s, d2, n1, t0 + 3 * w + 2, w, &replay, E));
    assert_int_equal(replay, 0);
    /* And are recorded afresh. */
    CHECK(FV_OK, s->ops->use_nonce(s, d1, n1, t0 + 3 * w + 3, w, &replay, E));
    assert_int_equal(replay, 1);
}

/* ---- push ------------------------------------------------------------------------------ */

static void test_push_commit(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    unsigned char id[16], unknown[16], hash[32];
    fvd_device d;
    fv__ver v;
    int found = -1;
    uint64_t seq = 0, head = 99;

    user_with_device(s, "alice", 1);
    make_id(id, 1);
    make_id(unknown, 2);
    CHECK(FV_OK, s->ops->head(s, &head, E));
    assert_true(head == 0);

    /* Unknown device: refused, and no transaction is left open. */
    CHECK(FV_ENOTFOUND, s->ops->push_begin(s, unknown, &d, E));

    CHECK(FV_OK, s->ops->push_begin(s, id, &d, E));
    assert_string_equal(d.user, "alice");
    assert_true(d.last_batch_seq == 0);

    fv__change c[3];
    mk_change(&c[0], "customer", 1, "name", 1, (uint64_t)1700000000000 << 16 | 1, 0, 1);
    set_text(&c[0], "ACME");
    CHECK(FV_OK, s->ops->get_version(s, &c[0], &v, &found, E));
    assert_int_equal(found, 0);
    CHECK(FV_OK, s->ops->append(s, &c[0], &seq, E));
    assert_true(seq == 1);
    CHECK(FV_OK, s->ops->get_version(s, &c[0], &v, &found, E));
    assert_int_equal(found, 1);
    assert_true(v.hlc == c[0].hlc);
    assert_true(v.base_hlc == 0);
    assert_memory_equal(v.device, c[0].device, 16);

    /* A newer version of the same field replaces it. */
    mk_change(&c[1], "customer", 1, "name", 1, c[0].hlc + 5, c[0].hlc, 2);
    set_text(&c[1], "ACME Ltd");
    CHECK(FV_OK, s->ops->append(s, &c[1], &seq, E));
    assert_true(seq == 2);
    CHECK(FV_OK, s->ops->get_version(s, &c[0], &v, &found, E));
    assert_int_equal(found, 1);
    assert_true(v.hlc == c[1].hlc);
    assert_true(v.base_hlc == c[0].hlc);
    /* Another field, another row: separate versions. */
    mk_change(&c[2], "customer", 2, "name", 1, c[0].hlc + 9, 0, 3);
    CHECK(FV_OK, s->ops->get_version(s, &c[2], &v, &found, E));
    assert_int_equal(found, 0);
    CHECK(FV_OK, s->ops->append(s, &c[2], &seq, E));
    assert_true(seq == 3);

    memset(hash, 0x5a, sizeof hash);
    CHECK(FV_OK, s->ops->set_batch(s, id, 1, hash, E));
    CHECK(FV_OK, s->ops->push_end(s, 1, E));

    CHECK(FV_OK, s->ops->get_device(s, id, &d, E));
    assert_true(d.last_batch_seq == 1);
    assert_memory_equal(d.last_batch_hash, hash, 32);
    CHECK(FV_OK, s->ops->head(s, &head, E));
    assert_true(head == 3);

    /* Committed means visible to another handle. */
    fvd_store *s2 = open_handle(f);
    collected k;
    memset(&k, 0, sizeof k);
    int more = -1;
    uint64_t last = 0;
    CHECK(FV_OK, s2->ops->pull(s2, 0, 100, NULL, collect_cb, &k, &more, &last, E));
    assert_int_equal(k.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_true(k.seq[i] == i + 1);
        assert_change_equal(&c[i], &k.c[i]);
    }
    assert_int_equal(more, 0);
    assert_true(last == 3);
    CHECK(FV_OK, s2->ops->get_version(s2, &c[2], &v, &found, E));
    assert_int_equal(found, 1);
    collected_free(&k);
    s2->ops->close(s2);

    /* The next push re-reads the batch state. */
    CHECK(FV_OK, s->ops->push_begin(s, id, &d, E));
    assert_true(d.last_batch_seq == 1);
    assert_memory_equal(d.last_batch_hash, hash, 32);
    CHECK(FV_OK, s->ops->push_end(s, 1, E));
}

static void test_push_rollback(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    unsigned char id[16], hash[32], zero[32] = {0};
    fvd_device d;
    fv__ver v;
    int found = -1, more = -1;
    uint64_t seq = 0, head = 99, last = 99;

    user_with_device(s, "alice", 1);
    make_id(id, 1);
    fv__change c;
    mk_change(&c, "visit", 7, "summary", 1, (uint64_t)1700000000000 << 16, 0, 1);
    set_text(&c, "rolled back");

    CHECK(FV_OK, s->ops->push_begin(s, id, &d, E));
    CHECK(FV_OK, s->ops->append(s, &c, &seq, E));
    assert_true(seq == 1);
    memset(hash, 0x77, sizeof hash);
    CHECK(FV_OK, s->ops->set_batch(s, id, 1, hash, E));
    CHECK(FV_OK, s->ops->push_end(s, 0, E));

    /* Nothing of it is stored. */
    CHECK(FV_OK, s->ops->head(s, &head, E));
    assert_true(head == 0);
    CHECK(FV_OK, s->ops->get_version(s, &c, &v, &found, E));
    assert_int_equal(found, 0);
    CHECK(FV_OK, s->ops->get_device(s, id, &d, E));
    assert_true(d.last_batch_seq == 0);
    assert_memory_equal(d.last_batch_hash, zero, 32);
    collected k;
    memset(&k, 0, sizeof k);
    CHECK(FV_OK, s->ops->pull(s, 0, 10, NULL, collect_cb, &k, &more, &last, E));
    assert_int_equal(k.n, 0);
    assert_int_equal(more, 0);
    assert_true(last == 0);

    /* The next push gets the sequence number the rolled-back one had. */
    push(s, 1, &c, 1, 1, &seq);
    assert_true(seq == 1);
    collected_free(&k);
}

/* Pushes with rollbacks between them: the numbers pull sees are 1..n. */
static void test_seq_gapless(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    unsigned char id[16], hash[32];
    fvd_device d;
    uint64_t expect = 1, seq = 0;

    user_with_device(s, "alice", 1);
    make_id(id, 1);
    memset(hash, 1, sizeof hash);
    for (unsigned round = 0; round < 12; round++) {
        int commit = round % 3 != 1;
        CHECK(FV_OK, s->ops->push_begin(s, id, &d, E));
        uint64_t first = expect;
        for (unsigned i = 0; i < 1 + round % 4; i++) {
            fv__change c;
            mk_change(&c, "customer", round, "stage", 1, ((uint64_t)1700000000000 + round) << 16 | i,
                      0, round * 10 + i);
            set_text(&c, "lead");
            CHECK(FV_OK, s->ops->append(s, &c, &seq, E));
            assert_true(seq == first + i);
            if (commit) expect++;
        }
        CHECK(FV_OK, s->ops->push_end(s, commit, E));
    }
    collected k;
    memset(&k, 0, sizeof k);
    int more = -1;
    uint64_t last = 0, head = 0;
    CHECK(FV_OK, s->ops->pull(s, 0, 1000, NULL, collect_cb, &k, &more, &last, E));
    assert_true(k.n == expect - 1);
    for (size_t i = 0; i < k.n; i++) assert_true(k.seq[i] == i + 1);
    CHECK(FV_OK, s->ops->head(s, &head, E));
    assert_true(head == expect - 1);
    assert_true(last == head);
    collected_free(&k);
}

/* ---- pull ----------------------------------------------------------------------------------- */

/* 25 changes of every kind, with awkward values. */
static void build_log(fv__change *cs, size_t n)
{
    static const double reals[] = {3.141592653589793, -0.0, 1e-310, DBL_MAX, -123456.789};
    for (size_t i = 0; i < n; i++) {
        fv__change *c = &cs[i];
        mk_change(c, i % 2 ? "customer" : "visit", (unsigned)i / 3, "f", (unsigned)(i % 3) + 1,
                  ((uint64_t)1 << 62) + i * 7, i ? ((uint64_t)1 << 62) + i : 0, 1000000 + i);
        snprintf(c->field, sizeof c->field, "field_%zu", i);
        switch (i % 6) {
        case 0:
            set_text(c, "Zürich — 北京 🚀 \"quoted\" 'single' \\back\\slash");
            break;
        case 1: { /* FV_FIELD_MAX bytes of text, multibyte characters included */
            c->kind = FV__VAL_TEXT;
            c->len = FV_FIELD_MAX;
            for (size_t j = 0; j < FV_FIELD_MAX;) {
                if (j + 3 <= FV_FIELD_MAX - 1 && j % 10 == 0) {
                    memcpy(c->data + j, "\xe2\x82\xac", 3); /* euro sign */
                    j += 3;
                } else {
                    c->data[j] = (unsigned char)('a' + (i + j) % 26);
                    j++;
                }
            }
            c->data[FV_FIELD_MAX] = '\0';
            break;
        }
        case 2:
            c->kind = FV__VAL_REAL;
            c->real = reals[(i / 6) % 5];
            break;
        case 3: /* a sealed value: every byte value, NULs included, at the bound */
            c->kind = FV__VAL_SEALED;
            c->len = i == 3 ? FV_SEALED_MAX : 100 + i;
            for (size_t j = 0; j < c->len; j++) c->data[j] = (unsigned char)(j * 7 + i);
            break;
        case 4:
            c->kind = FV__VAL_NULL;
            break;
        default:
            set_text(c, i == 5 ? "" : "plain");
            break;
        }
    }
}

static void test_pull(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    enum { N = 25 };
    static fv__change cs[N]; /* static: no leak when an assertion fails */
    for (unsigned dev = 1; dev <= 3; dev++) {
        char name[16];
        snprintf(name, sizeof name, "user%u", dev);
        user_with_device(s, name, dev);
    }
    build_log(cs, N);
    uint64_t seqs[N];
    push(s, 1, cs, 10, 1, seqs);
    push(s, 2, cs + 10, N - 10, 1, seqs + 10);
    for (size_t i = 0; i < N; i++) assert_true(seqs[i] == i + 1);

    collected k;
    memset(&k, 0, sizeof k);
    int more = -1;
    uint64_t last = 0, cursor = 0, head = 0;
    CHECK(FV_OK, s->ops->head(s, &head, E));
    assert_true(head == N);

    /* Batches of 10: 10 (more), 10 (more), 5 (done). */
    const size_t expect_n[] = {10, 10, 5};
    for (int b = 0; b < 3; b++) {
        size_t before = k.n;
        CHECK(FV_OK, s->ops->pull(s, cursor, 10, NULL, collect_cb, &k, &more, &last, E));
        assert_int_equal(k.n - before, expect_n[b]);
        assert_int_equal(more, b < 2);
        assert_true(last == k.seq[k.n - 1]);
        cursor = last;
    }
    assert_int_equal(k.n, N);
    for (size_t i = 0; i < N; i++) {
        assert_true(k.seq[i] == i + 1);
        assert_change_equal(&cs[i], &k.c[i]);
    }
    /* Nothing after the end. */
    size_t before = k.n;
    CHECK(FV_OK, s->ops->pull(s, N, 10, NULL, collect_cb, &k, &more, &last, E));
    assert_int_equal(k.n, before);
    assert_int_equal(more, 0);
    assert_true(last == N);
    /* Exactly max left: more = 0. */
    CHECK(FV_OK, s->ops->pull(s, N - 5, 5, NULL, collect_cb, &k, &more, &last, E));
    assert_int_equal(k.n, before + 5);
    assert_int_equal(more, 0);
    assert_true(last == N);
    /* From the middle. */
    collected_free(&k);
    CHECK(FV_OK, s->ops->pull(s, 17, 3, NULL, collect_cb, &k, &more, &last, E));
    assert_int_equal(k.n, 3);
    assert_true(k.seq[0] == 18);
    assert_change_equal(&cs[17], &k.c[0]);
    assert_int_equal(more, 1);
    assert_true(last == 20);
    collected_free(&k);
    /* The callback stops the pull: FV_EIO. */
    k.stop_after = 2;
    CHECK(FV_EIO, s->ops->pull(s, 0, 10, NULL, collect_cb, &k, &more, &last, E));
    assert_int_equal(k.n, 2);
    collected_free(&k);
    /* The handle is still usable after a stopped pull. */
    CHECK(FV_OK, s->ops->pull(s, 0, 1, NULL, collect_cb, &k, &more, &last, E));
    assert_int_equal(k.n, 1);
    collected_free(&k);
    /* max = 0: nothing given, but there is more (store.h: "*more = 1 if
     * changes beyond the last one given exist"). */
    CHECK(FV_OK, s->ops->pull(s, 0, 0, NULL, collect_cb, &k, &more, &last, E));
    assert_int_equal(k.n, 0);
    assert_int_equal(more, 1);
    assert_true(last == 0);
}

static void test_empty(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    collected k;
    memset(&k, 0, sizeof k);
    int more = -1;
    uint64_t last = 99, head = 99;
    CHECK(FV_OK, s->ops->head(s, &head, E));
    assert_true(head == 0);
    CHECK(FV_OK, s->ops->pull(s, 0, 100, NULL, collect_cb, &k, &more, &last, E));
    assert_int_equal(k.n, 0);
    assert_int_equal(more, 0);
    assert_true(last == 0);
    CHECK(FV_OK, s->ops->pull(s, 42, 100, NULL, collect_cb, &k, &more, &last, E));
    assert_true(last == 42);
    listed l;
    memset(&l, 0, sizeof l);
    CHECK(FV_OK, s->ops->list_devices(s, list_cb, &l, E));
    assert_int_equal(l.n, 0);
    /* Reopening an existing store keeps it (the schema step is idempotent). */
    user_with_device(s, "alice", 1);
    s->ops->close(s);
    f->s = open_handle(f);
    s = f->s;
    unsigned char id[16];
    fvd_device d;
    make_id(id, 1);
    CHECK(FV_OK, s->ops->get_device(s, id, &d, E));
}

/* ---- scoped pulls (the log's customer scope) ------------------------------------ */

/* The current text of a field, "%.64s" into out ("" if none): how fvd's
 * pull resolved a row's scope before the store kept it. */
static void oracle_text(fvd_store *s, const char *tbl, const unsigned char row[16],
                        const char *field, uint64_t before, char *out, size_t cap)
{
    static fv__change c;
    char err[512];
    int found = 0;
    out[0] = '\0';
    if (before)
        CHECK(FV_OK, s->ops->get_value_before(s, tbl, row, field, before, &c, &found, E));
    else
        CHECK(FV_OK, s->ops->get_value(s, tbl, row, field, &c, &found, E));
    if (found && c.kind == FV__VAL_TEXT) snprintf(out, cap, "%.64s", (const char *)c.data);
}

static int oracle_match(const fvd_pull_filter *f, const char *owner, const char *team)
{
    const char *v = f->scope == FVD_PULL_OWNER ? owner : team;
    return v[0] != '\0' && strcmp(v, f->name) == 0;
}

/* Would fvd's former per-row check (acl.c, fvd_may_read) have given c to a
 * user of filter f? */
static int oracle(fvd_store *s, const fvd_pull_filter *f, const fv__change *c, uint64_t seq)
{
    if (f == NULL || f->scope == FVD_PULL_ALL) return 1;
    if (f->scope == FVD_PULL_NOTHING) return 0;
    char owner[65], team[65], cust_text[FV_ID_LEN + 1];
    unsigned char cust[16];
    int is_cust = strcmp(c->table, "customer") == 0;
    owner[0] = team[0] = '\0';
    if (is_cust) {
        memcpy(cust, c->row_id, 16);
    } else {
        oracle_text(s, c->table, c->row_id, "customer_id", 0, cust_text, sizeof cust_text);
        if (!fv__uuid_parse(cust_text, cust)) return oracle_match(f, owner, team);
    }
    oracle_text(s, "customer", cust, "owner", 0, owner, sizeof owner);
    oracle_text(s, "customer", cust, "team", 0, team, sizeof team);
    if (oracle_match(f, owner, team)) return 1;
    if (!is_cust || (strcmp(c->field, "owner") != 0 && strcmp(c->field, "team") != 0)) return 0;
    oracle_text(s, "customer", c->row_id, "owner", seq, owner, sizeof owner);
    oracle_text(s, "customer", c->row_id, "team", seq, team, sizeof team);
    return oracle_match(f, owner, team);
}

/* A scoped pull from cursor 0 in pages of max gives, in order, exactly the
 * changes the former per-row check gave, and the cursor ends at the head. */
static void expect_scoped(fvd_store *s, const fvd_pull_filter *f, uint32_t max)
{
    char err[512];
    collected all, got;
    memset(&all, 0, sizeof all);
    memset(&got, 0, sizeof got);
    int more = 1;
    uint64_t last = 0, cursor = 0, head = 0;
    CHECK(FV_OK, s->ops->head(s, &head, E));
    CHECK(FV_OK, s->ops->pull(s, 0, 100000, NULL, collect_cb, &all, &more, &last, E));
    assert_int_equal(all.n, head);
    more = 1;
    while (more) {
        size_t before = got.n;
        CHECK(FV_OK, s->ops->pull(s, cursor, max, f, collect_cb, &got, &more, &last, E));
        assert_true(got.n - before <= max);
        if (more) {
            assert_int_equal(got.n - before, max);
            assert_true(last == got.seq[got.n - 1]);
        } else {
            assert_true(last == head);
        }
        assert_true(last >= cursor);
        cursor = last;
    }
    size_t k = 0;
    for (size_t i = 0; i < all.n; i++) {
        if (!oracle(s, f, &all.c[i], all.seq[i])) continue;
        if (k >= got.n || got.seq[k] != all.seq[i])
            fail_msg("filter %d %s: expected seq %llu (%s.%s), got %llu", (int)f->scope,
                     f->name ? f->name : "-", (unsigned long long)all.seq[i], all.c[i].table,
                     all.c[i].field, k < got.n ? (unsigned long long)got.seq[k] : 0ULL);
        assert_change_equal(&all.c[i], &got.c[k]);
        k++;
    }
    if (k != got.n)
        fail_msg("filter %d %s: %zu changes more than expected, first seq %llu", (int)f->scope,
                 f->name ? f->name : "-", got.n - k, (unsigned long long)got.seq[k]);
    collected_free(&all);
    collected_free(&got);
}

static const fvd_pull_filter scope_filters[] = {
    {FVD_PULL_ALL, NULL},      {FVD_PULL_NOTHING, NULL}, {FVD_PULL_OWNER, "alice"},
    {FVD_PULL_OWNER, "bob"},   {FVD_PULL_OWNER, "carol"}, {FVD_PULL_TEAM, "east"},
    {FVD_PULL_TEAM, "west"},   {FVD_PULL_TEAM, "x"},
};
#define NFILTERS (sizeof scope_filters / sizeof scope_filters[0])

static void expect_all_scoped(fvd_store *s)
{
    for (size_t i = 0; i < NFILTERS; i++) {
        expect_scoped(s, &scope_filters[i], 1000);
        expect_scoped(s, &scope_filters[i], 2);
    }
}

/* A text change of row (kind 1 customer, 2 contact, 3 visit) n. */
static void scoped(fv__change *c, const char *table, unsigned kind, unsigned n, const char *field,
                   const char *text)
{
    static uint64_t hlc = (uint64_t)1700000000000 << 16, dseq;
    mk_change(c, table, n, field, 1, ++hlc, 0, ++dseq);
    c->row_id[0] = (unsigned char)kind;
    if (text != NULL) set_text(c, text);
}

static void cust_text(unsigned n, char out[FV_ID_LEN + 1])
{
    unsigned char id[16];
    make_id(id, n);
    id[0] = 1;
    fv__uuid_format(id, out);
}

/* A log of several customers, their contacts and visits, then
 * reassignments (owner, team, both), a contact re-pointed to another
 * customer, rows written before their customer, odd values: after each
 * step every filter gives what the per-row check gave. */
/* Step 1, 2 or 3 of the log (one push each). */
static void build_scoped_step(fvd_store *s, int step)
{
    fv__change c[16];
    char id1[FV_ID_LEN + 1], id2[FV_ID_LEN + 1], id3[FV_ID_LEN + 1], id4[FV_ID_LEN + 1];
    cust_text(1, id1);
    cust_text(2, id2);
    cust_text(3, id3);
    cust_text(4, id4);
    size_t n = 0;
    if (step == 1) {
    /* a visit written before its customer_id, in the batch creating the customer */
    scoped(&c[n++], "visit", 3, 1, "summary", "first");
    scoped(&c[n++], "customer", 1, 1, "name", "ACME");
    scoped(&c[n++], "customer", 1, 1, "owner", "alice");
    scoped(&c[n++], "customer", 1, 1, "team", "east");
    scoped(&c[n++], "visit", 3, 1, "customer_id", id1);
    scoped(&c[n++], "contact", 2, 1, "customer_id", id1);
    scoped(&c[n++], "contact", 2, 1, "name", "Ann");
    scoped(&c[n++], "customer", 1, 2, "owner", "bob");
    scoped(&c[n++], "customer", 1, 2, "team", "west");
    scoped(&c[n++], "contact", 2, 2, "customer_id", id2);
    /* a contact of a customer the log does not hold yet */
    scoped(&c[n++], "contact", 2, 3, "customer_id", id3);
    scoped(&c[n++], "contact", 2, 3, "phone", "+1");
    /* a customer_id that names nothing */
    scoped(&c[n++], "visit", 3, 9, "customer_id", "not-a-uuid");
    push(s, 1, c, n, 1, NULL);
    } else if (step == 2) {
    scoped(&c[n++], "customer", 1, 3, "name", "Late");
    scoped(&c[n++], "customer", 1, 3, "owner", "carol");
    scoped(&c[n++], "customer", 1, 3, "team", "west");
    /* alice's customer goes to bob (owner only) */
    scoped(&c[n++], "customer", 1, 1, "owner", "bob");
    scoped(&c[n++], "customer", 1, 1, "stage", "won");
    push(s, 1, c, n, 2, NULL);
    } else {
    /* bob's west customer moves to east and to alice in one batch */
    scoped(&c[n++], "customer", 1, 2, "team", "east");
    scoped(&c[n++], "customer", 1, 2, "owner", "alice");
    /* a contact re-pointed to another customer (a merge) */
    scoped(&c[n++], "contact", 2, 1, "customer_id", id3);
    /* an owner cleared, then the same owner again (a re-delivery) */
    scoped(&c[n++], "customer", 1, 3, "owner", NULL);
    scoped(&c[n++], "customer", 1, 3, "team", "west");
    /* a long owner: compared by its first 64 bytes, as before */
    scoped(&c[n++], "customer", 1, 4, "owner",
           "carol-with-a-very-long-name-that-goes-on-and-on-and-on-past-64-bytes-of-text");
    scoped(&c[n++], "visit", 3, 4, "customer_id", id4);
    push(s, 1, c, n, 3, NULL);
    }
}

static void test_pull_scoped(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    user_with_device(s, "alice", 1);
    for (int step = 1; step <= 3; step++) {
        build_scoped_step(s, step);
        expect_all_scoped(s);
    }
    /* another handle (another fvd process) sees the same */
    fvd_store *s2 = open_handle(f);
    expect_all_scoped(s2);
    s2->ops->close(s2);
    /* a bad filter is refused */
    collected k;
    memset(&k, 0, sizeof k);
    int more = 0;
    uint64_t last = 0;
    fvd_pull_filter bad = {FVD_PULL_OWNER, ""};
    CHECK(FV_EINVAL, s->ops->pull(s, 0, 10, &bad, collect_cb, &k, &more, &last, E));
    bad.name = NULL;
    CHECK(FV_EINVAL, s->ops->pull(s, 0, 10, &bad, collect_cb, &k, &more, &last, E));
    /* a filter past the head: nothing, the cursor stays */
    CHECK(FV_OK, s->ops->pull(s, 1000, 10, &scope_filters[2], collect_cb, &k, &more, &last, E));
    assert_int_equal(k.n, 0);
    assert_true(last == 1000);
    collected_free(&k);
}

/* ---- field keys ---------------------------------------------------------------- */

static void key_id_of(unsigned char id[8], const char *team, int cls, uint32_t v)
{
    memset(id, 0, 8);
    id[0] = (unsigned char)cls;
    id[1] = (unsigned char)v;
    memcpy(id + 2, team, strnlen(team, 6));
}

static void grant_bytes(unsigned char sealed[80], unsigned char sig[64], unsigned n)
{
    for (int i = 0; i < 80; i++) sealed[i] = (unsigned char)(n * 7u + (unsigned)i);
    for (int i = 0; i < 64; i++) sig[i] = (unsigned char)(n * 13u + (unsigned)i + 1);
}

typedef struct keys_seen {
    fvd_team_key k[16];
    size_t n, stop_after;
} keys_seen;

static int keys_cb(void *ctx, const fvd_team_key *k)
{
    keys_seen *l = ctx;
    if (l->n < 16) l->k[l->n] = *k;
    l->n++;
    return l->stop_after > 0 && l->n == l->stop_after;
}

typedef struct grants_seen {
    fvd_grant g[16];
    size_t n, stop_after;
} grants_seen;

static int grants_cb(void *ctx, const fvd_grant *g)
{
    grants_seen *l = ctx;
    if (l->stop_after > 0 && l->n == l->stop_after) return -1;
    if (l->n < 16) l->g[l->n] = *g;
    l->n++;
    return 0;
}

static void put_key(fvd_store *s, const char *team, int cls, uint32_t v, int64_t created)
{
    char err[512];
    unsigned char id[8];
    key_id_of(id, team, cls, v);
    CHECK(FV_OK, s->ops->put_team_key(s, team, cls, v, id, created, E));
}

/* Grant n of (team, cls, v) to device dev; returns *inserted. */
static int grant(fvd_store *s, unsigned dev, const char *team, int cls, uint32_t v, unsigned n)
{
    char err[512];
    unsigned char id[16], sealed[80], sig[64];
    make_id(id, dev);
    grant_bytes(sealed, sig, n);
    int inserted = -1;
    CHECK(FV_OK, s->ops->put_grant(s, id, team, cls, v, sealed, sig, &inserted, E));
    return inserted;
}

static void test_field_keys(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    const int PII = FV_CLASS_PII, CONF = FV_CLASS_CONFIDENTIAL;

    /* The admin key: none, then set once. */
    unsigned char pk[32], other[32], got[32];
    int found = -1;
    CHECK(FV_OK, s->ops->get_admin_key(s, got, &found, E));
    assert_int_equal(found, 0);
    memset(pk, 0xa1, sizeof pk);
    memset(other, 0xb2, sizeof other);
    CHECK(FV_OK, s->ops->set_admin_key(s, pk, E));
    CHECK(FV_OK, s->ops->set_admin_key(s, pk, E));
    CHECK(FV_EEXIST, s->ops->set_admin_key(s, other, E));
    assert_true(strlen(err) > 0);
    fvd_store *s2 = open_handle(f);
    CHECK(FV_EEXIST, s2->ops->set_admin_key(s2, other, E));
    CHECK(FV_OK, s2->ops->get_admin_key(s2, got, &found, E));
    assert_int_equal(found, 1);
    assert_memory_equal(got, pk, 32);

    /* Team keys. */
    uint32_t v = 99;
    CHECK(FV_OK, s->ops->current_key_version(s, "east", PII, &v, E));
    assert_true(v == 0);
    const char *sud = "S\xc3\xbc" "d \xe5\x8d\x97"; /* "Süd 南" */
    put_key(s, "east", PII, 1, 1000);
    put_key(s, "east", CONF, 1, 1001);
    put_key(s2, "east", CONF, 2, 2002);
    put_key(s, "west", PII, 1, 1003);
    put_key(s, sud, CONF, 1, 1004);
    unsigned char id[8];
    key_id_of(id, "east", PII, 1);
    CHECK(FV_EEXIST, s->ops->put_team_key(s, "east", PII, 1, id, 5, E));
    assert_true(strlen(err) > 0);
    char long_team[FVD_NAME_MAX + 2];
    memset(long_team, 't', sizeof long_team - 1);
    long_team[FVD_NAME_MAX + 1] = '\0';
    CHECK(FV_EINVAL, s->ops->put_team_key(s, "east", 0, 1, id, 5, E));
    CHECK(FV_EINVAL, s->ops->put_team_key(s, "east", 3, 1, id, 5, E));
    CHECK(FV_EINVAL, s->ops->put_team_key(s, "east", PII, 0, id, 5, E));
    CHECK(FV_EINVAL, s->ops->put_team_key(s, "", PII, 1, id, 5, E));
    CHECK(FV_EINVAL, s->ops->put_team_key(s, long_team, PII, 1, id, 5, E));
    CHECK(FV_EINVAL, s->ops->put_team_key(s, "east", PII, 1, NULL, 5, E));
    CHECK(FV_OK, s->ops->current_key_version(s, "east", PII, &v, E));
    assert_true(v == 1);
    CHECK(FV_OK, s2->ops->current_key_version(s2, "east", CONF, &v, E));
    assert_true(v == 2);
    CHECK(FV_OK, s->ops->current_key_version(s, "west", CONF, &v, E));
    assert_true(v == 0);
    CHECK(FV_OK, s->ops->current_key_version(s, "nobody", PII, &v, E));
    assert_true(v == 0);
    CHECK(FV_EINVAL, s->ops->current_key_version(s, "east", 0, &v, E));

    /* Grants: one per (device, team, class, version). */
    user_with_device(s, "alice", 1);
    user_with_device(s, "bob", 2);
    assert_int_equal(grant(s, 1, "east", PII, 1, 1), 1);
    assert_int_equal(grant(s, 1, "east", PII, 1, 99), 0); /* kept as it was */
    assert_int_equal(grant(s2, 2, "east", PII, 1, 2), 1);
    assert_int_equal(grant(s, 1, "east", CONF, 1, 3), 1);
    assert_int_equal(grant(s2, 1, "east", CONF, 2, 4), 1);
    assert_int_equal(grant(s, 1, "west", PII, 1, 5), 1);
    assert_int_equal(grant(s, 1, sud, CONF, 1, 6), 1);
    unsigned char dev1[16], nodev[16], sealed[80], sig[64];
    make_id(dev1, 1);
    make_id(nodev, 77);
    grant_bytes(sealed, sig, 7);
    int ins = -1;
    CHECK(FV_ENOTFOUND, s->ops->put_grant(s, nodev, "east", PII, 1, sealed, sig, &ins, E));
    CHECK(FV_ENOTFOUND, s->ops->put_grant(s, dev1, "east", PII, 7, sealed, sig, &ins, E));
    CHECK(FV_ENOTFOUND, s->ops->put_grant(s, dev1, "north", CONF, 1, sealed, sig, &ins, E));
    CHECK(FV_EINVAL, s->ops->put_grant(s, dev1, "east", 5, 1, sealed, sig, &ins, E));
    CHECK(FV_EINVAL, s->ops->put_grant(s, dev1, "east", PII, 0, sealed, sig, &ins, E));
    CHECK(FV_EINVAL, s->ops->put_grant(s, dev1, "", PII, 1, sealed, sig, &ins, E));
    CHECK(FV_EINVAL, s->ops->put_grant(s, dev1, "east", PII, 1, NULL, sig, &ins, E));

    /* Device 1's grants, in order, whole and in pages. */
    grants_seen g;
    memset(&g, 0, sizeof g);
    int more = -1;
    CHECK(FV_OK, s->ops->list_grants(s, dev1, 0, 100, grants_cb, &g, &more, E));
    assert_int_equal(g.n, 5);
    assert_int_equal(more, 0);
    static const struct {
        const char *team;
        int cls;
        uint32_t v;
        unsigned n;
    } want[5] = {{"east", 1, 1, 1}, {"east", 2, 1, 3}, {"east", 2, 2, 4}, {"west", 1, 1, 5},
                 {NULL, 2, 1, 6}};
    for (size_t i = 0; i < 5; i++) {
        unsigned char ws[80], wg[64];
        grant_bytes(ws, wg, want[i].n);
        assert_memory_equal(g.g[i].device, dev1, 16);
        assert_string_equal(g.g[i].team, want[i].team ? want[i].team : sud);
        assert_int_equal(g.g[i].cls, want[i].cls);
        assert_true(g.g[i].version == want[i].v);
        assert_memory_equal(g.g[i].sealed, ws, 80);
        assert_memory_equal(g.g[i].sig, wg, 64);
        if (i > 0) assert_true(g.g[i].seq > g.g[i - 1].seq);
    }
    grants_seen p;
    memset(&p, 0, sizeof p);
    CHECK(FV_OK, s->ops->list_grants(s, dev1, 0, 2, grants_cb, &p, &more, E));
    assert_int_equal(p.n, 2);
    assert_int_equal(more, 1);
    CHECK(FV_OK, s2->ops->list_grants(s2, dev1, p.g[1].seq, 2, grants_cb, &p, &more, E));
    assert_int_equal(p.n, 4);
    assert_int_equal(more, 1);
    CHECK(FV_OK, s->ops->list_grants(s, dev1, p.g[3].seq, 2, grants_cb, &p, &more, E));
    assert_int_equal(p.n, 5);
    assert_int_equal(more, 0);
    for (size_t i = 0; i < 5; i++) assert_true(p.g[i].seq == g.g[i].seq);
    CHECK(FV_OK, s->ops->list_grants(s, dev1, g.g[4].seq, 2, grants_cb, &p, &more, E));
    assert_int_equal(p.n, 5);
    assert_int_equal(more, 0);
    /* Device 2's one grant came between device 1's first two. */
    unsigned char dev2[16];
    make_id(dev2, 2);
    grants_seen q;
    memset(&q, 0, sizeof q);
    CHECK(FV_OK, s->ops->list_grants(s, dev2, 0, 100, grants_cb, &q, &more, E));
    assert_int_equal(q.n, 1);
    assert_true(q.g[0].seq > g.g[0].seq && q.g[0].seq < g.g[1].seq);
    CHECK(FV_OK, s->ops->list_grants(s, nodev, 0, 100, grants_cb, &q, &more, E));
    assert_int_equal(q.n, 1);
    /* A callback that stops. */
    memset(&q, 0, sizeof q);
    q.stop_after = 1;
    CHECK(FV_EIO, s->ops->list_grants(s, dev1, 0, 100, grants_cb, &q, &more, E));
    assert_int_equal(more, 0);

    /* The keys, in byte order of team, then class and version, with their
     * grant counts. */
    keys_seen l;
    memset(&l, 0, sizeof l);
    CHECK(FV_OK, s->ops->list_team_keys(s, keys_cb, &l, E));
    assert_int_equal(l.n, 5);
    assert_string_equal(l.k[0].team, sud);
    assert_string_equal(l.k[1].team, "east");
    assert_int_equal(l.k[1].cls, PII);
    assert_true(l.k[1].grants == 2);
    assert_true(l.k[1].created_ms == 1000);
    key_id_of(id, "east", PII, 1);
    assert_memory_equal(l.k[1].key_id, id, 8);
    assert_int_equal(l.k[2].cls, CONF);
    assert_true(l.k[2].version == 1 && l.k[2].grants == 1);
    assert_true(l.k[3].version == 2 && l.k[3].grants == 1 && l.k[3].created_ms == 2002);
    assert_string_equal(l.k[4].team, "west");
    assert_true(l.k[4].grants == 1);
    memset(&l, 0, sizeof l);
    l.stop_after = 2;
    CHECK(FV_OK, s->ops->list_team_keys(s, keys_cb, &l, E));
    assert_int_equal(l.n, 2);
    s2->ops->close(s2);

    /* All of it survives reopening. */
    s->ops->close(s);
    f->s = s = open_handle(f);
    CHECK(FV_OK, s->ops->get_admin_key(s, got, &found, E));
    assert_int_equal(found, 1);
    assert_memory_equal(got, pk, 32);
    memset(&g, 0, sizeof g);
    CHECK(FV_OK, s->ops->list_grants(s, dev1, 0, 100, grants_cb, &g, &more, E));
    assert_int_equal(g.n, 5);
    CHECK(FV_OK, s->ops->current_key_version(s, "east", CONF, &v, E));
    assert_true(v == 2);
}

/* ---- the access policy, users' roles and teams ---------------------------------- */

/* The default policy as version v, where service agents may or may not
 * read pii: its bytes into b (the length). */
static size_t policy_bytes(uint32_t v, int service_pii, unsigned char b[FV_POLICY_BYTES_MAX])
{
    fv__policy p;
    fv__policy_default(&p);
    p.version = v;
    for (size_t i = 0; i < p.nroles; i++)
        if (strcmp(p.roles[i].name, "service") == 0)
            for (int t = 0; t < 2; t++)
                p.roles[i].access[t][FV_CLASS_PII] =
                    service_pii ? FV__ACCESS_READ : FV__ACCESS_NONE;
    size_t n = fv__policy_encode(&p, b, FV_POLICY_BYTES_MAX);
    assert_true(n > 0);
    return n;
}

/* The stored policy's version (0: none stored). */
static uint32_t stored_version(fvd_store *s, fv__policy *out)
{
    char err[512];
    fv__policy p;
    int found = -1;
    CHECK(FV_OK, s->ops->get_policy(s, &p, &found, E));
    assert_true(found == 0 || found == 1);
    if (out != NULL) *out = p;
    return found ? p.version : 0;
}

static void test_policy(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    unsigned char b[FV_POLICY_BYTES_MAX], mine[FV_POLICY_BYTES_MAX];
    fv__policy got;

    /* Nothing stored: the built-in one is in force (the caller's business). */
    assert_true(stored_version(s, NULL) == 0);
    /* Not a policy: refused, nothing stored. */
    CHECK(FV_EINVAL, s->ops->set_policy(s, (const unsigned char *)"version 2", 9, E));
    CHECK(FV_EINVAL, s->ops->set_policy(s, NULL, 0, E));
    size_t n = policy_bytes(2, 0, b);
    CHECK(FV_EINVAL, s->ops->set_policy(s, b, n - 1, E));
    assert_true(stored_version(s, NULL) == 0);

    /* Version 2, service agents without pii: stored and read back as it
     * was, byte for byte. */
    CHECK(FV_OK, s->ops->set_policy(s, b, n, E));
    assert_true(stored_version(s, &got) == 2);
    assert_int_equal(fv__policy_encode(&got, mine, sizeof mine), n);
    assert_memory_equal(mine, b, n);
    assert_int_equal(fv__policy_field(&got, "service", "contact", FV_CLASS_PII), FV__ACCESS_NONE);
    assert_int_equal(fv__policy_field(&got, "service", "contact", FV_CLASS_PUBLIC),
                     FV__ACCESS_READ);

    /* The same version again, or a lower one: refused, the stored one stays. */
    size_t n1 = policy_bytes(1, 1, mine);
    CHECK(FV_EEXIST, s->ops->set_policy(s, mine, n1, E));
    size_t n2 = policy_bytes(2, 1, mine);
    CHECK(FV_EEXIST, s->ops->set_policy(s, mine, n2, E));
    assert_true(stored_version(s, &got) == 2);
    assert_int_equal(fv__policy_field(&got, "service", "contact", FV_CLASS_PII), FV__ACCESS_NONE);

    /* Another handle (another fvd process) sees it, and stores version 7
     * (versions need not be consecutive); the first handle sees 7 at once:
     * nothing is cached. */
    fvd_store *s2 = open_handle(f);
    assert_true(stored_version(s2, NULL) == 2);
    size_t n7 = policy_bytes(7, 1, mine);
    CHECK(FV_OK, s2->ops->set_policy(s2, mine, n7, E));
    s2->ops->close(s2);
    assert_true(stored_version(s, &got) == 7);
    assert_int_equal(fv__policy_field(&got, "service", "contact", FV_CLASS_PII), FV__ACCESS_READ);
    CHECK(FV_EEXIST, s->ops->set_policy(s, b, n, E)); /* version 2 */

    /* Kept across a reopen. */
    s->ops->close(s);
    f->s = s = open_handle(f);
    assert_true(stored_version(s, NULL) == 7);
}

typedef struct policy_racer {
    fvd_store *s;
    pthread_barrier_t *barrier;
    unsigned char b[FV_POLICY_BYTES_MAX];
    size_t n;
    fv_status st;
    char err[512];
} policy_racer;

static void *race_policy(void *p)
{
    policy_racer *a = p;
    pthread_barrier_wait(a->barrier);
    a->st = a->s->ops->set_policy(a->s, a->b, a->n, a->err, sizeof a->err);
    return NULL;
}

/* Admins racing on handles of their own: of one version exactly one is
 * stored; of several versions the highest ends up in force, whatever the
 * order. */
static void test_policy_race(void **state)
{
    fixture *f = *state;
    enum { RACERS = 4 };
    policy_racer a[RACERS];
    pthread_t t[RACERS];
    pthread_barrier_t barrier;
    for (int round = 0; round < 2; round++) {
        pthread_barrier_init(&barrier, NULL, RACERS);
        for (int i = 0; i < RACERS; i++) {
            memset(&a[i], 0, sizeof a[i]);
            a[i].s = open_handle(f);
            a[i].barrier = &barrier;
            /* round 0: everyone version 5; round 1: versions 6..9 */
            a[i].n = policy_bytes(round == 0 ? 5u : 6u + (uint32_t)i, i % 2, a[i].b);
            a[i].st = FV_EIO;
        }
        for (int i = 0; i < RACERS; i++)
            assert_int_equal(pthread_create(&t[i], NULL, race_policy, &a[i]), 0);
        for (int i = 0; i < RACERS; i++) pthread_join(t[i], NULL);
        pthread_barrier_destroy(&barrier);
        int ok = 0;
        for (int i = 0; i < RACERS; i++) {
            if (a[i].st != FV_OK && a[i].st != FV_EEXIST)
                fprintf(stderr, "racer %d: %s: %s\n", i, fv_status_str(a[i].st), a[i].err);
            assert_true(a[i].st == FV_OK || a[i].st == FV_EEXIST);
            ok += a[i].st == FV_OK;
            a[i].s->ops->close(a[i].s);
        }
        if (round == 0) {
            assert_int_equal(ok, 1);
            assert_true(stored_version(f->s, NULL) == 5);
        } else {
            assert_true(ok >= 1);
            assert_int_equal(a[RACERS - 1].st, FV_OK); /* the highest always gets in */
            assert_true(stored_version(f->s, NULL) == 6u + RACERS - 1);
        }
    }
}

typedef struct roles_seen {
    char user[8][FVD_NAME_MAX + 1], role[8][FVD_ROLE_MAX + 1], team[8][FVD_NAME_MAX + 1];
    int n;
} roles_seen;

static int roles_cb(void *ctx, const fvd_device *d)
{
    roles_seen *l = ctx;
    if (l->n == 8) return 1;
    snprintf(l->user[l->n], sizeof l->user[0], "%s", d->user);
    snprintf(l->role[l->n], sizeof l->role[0], "%s", d->role);
    snprintf(l->team[l->n], sizeof l->team[0], "%s", d->team);
    l->n++;
    return 0;
}

static void expect_device(fvd_store *s, unsigned dev, const char *role, const char *team)
{
    char err[512];
    unsigned char id[16];
    fvd_device d;
    make_id(id, dev);
    CHECK(FV_OK, s->ops->get_device(s, id, &d, E));
    assert_string_equal(d.role, role);
    assert_string_equal(d.team, team);
}

static void test_update_user(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    add_user(s, "ann", "rep", "east", "code-ann");
    add_user(s, "bob", "rep", "east", "code-bob");
    add_user(s, "cyd", "lead", "east", "code-cyd"); /* never enrols */
    CHECK(FV_OK, enrol(s, "code-ann", 1, "ann's phone", 1000, NULL, E));
    CHECK(FV_OK, enrol(s, "code-bob", 2, "bob's phone", 1000, NULL, E));

    /* ann: rep of east -> lead of west; her device follows, bob's not. */
    fvd_user u;
    memset(&u, 0x55, sizeof u);
    CHECK(FV_OK, s->ops->update_user(s, "ann", "lead", "west", &u, E));
    assert_string_equal(u.name, "ann");
    assert_string_equal(u.role, "lead");
    assert_string_equal(u.team, "west");
    expect_device(s, 1, "lead", "west");
    expect_device(s, 2, "rep", "east");
    roles_seen l;
    memset(&l, 0, sizeof l);
    CHECK(FV_OK, s->ops->list_devices(s, roles_cb, &l, E));
    assert_int_equal(l.n, 2);
    assert_string_equal(l.user[0], "ann");
    assert_string_equal(l.role[0], "lead");
    assert_string_equal(l.team[0], "west");
    assert_string_equal(l.role[1], "rep");
    assert_string_equal(l.team[1], "east");

    /* No team given: it stays.  An empty team is a team too (none). */
    CHECK(FV_OK, s->ops->update_user(s, "ann", "director", NULL, &u, E));
    assert_string_equal(u.team, "west");
    expect_device(s, 1, "director", "west");
    CHECK(FV_OK, s->ops->update_user(s, "bob", "service", "", NULL, E));
    expect_device(s, 2, "service", "");
    /* A user without a device. */
    CHECK(FV_OK, s->ops->update_user(s, "cyd", "rep", "north", &u, E));
    assert_string_equal(u.role, "rep");

    /* A push sees the device's current role (it re-reads the device). */
    unsigned char id[16];
    fvd_device d;
    make_id(id, 1);
    CHECK(FV_OK, s->ops->push_begin(s, id, &d, E));
    assert_string_equal(d.role, "director");
    assert_string_equal(d.team, "west");
    CHECK(FV_EINVAL, s->ops->update_user(s, "ann", "rep", "east", NULL, E)); /* not in a push */
    CHECK(FV_OK, s->ops->push_end(s, 0, E));

    /* Unknown users, bad arguments. */
    CHECK(FV_ENOTFOUND, s->ops->update_user(s, "nobody", "rep", "east", NULL, E));
    CHECK(FV_EINVAL, s->ops->update_user(s, "ann", "", "east", NULL, E));
    CHECK(FV_EINVAL, s->ops->update_user(s, "ann", "a-role-name-too-long", "east", NULL, E));
    char long_team[FVD_NAME_MAX + 2];
    memset(long_team, 't', sizeof long_team - 1);
    long_team[sizeof long_team - 1] = '\0';
    CHECK(FV_EINVAL, s->ops->update_user(s, "ann", "rep", long_team, NULL, E));
    CHECK(FV_EINVAL, s->ops->update_user(s, "", "rep", "east", NULL, E));
    CHECK(FV_EINVAL, s->ops->update_user(s, NULL, "rep", "east", NULL, E));
    expect_device(s, 1, "director", "west");

    /* Another handle (another fvd process) sees the change at once. */
    fvd_store *s2 = open_handle(f);
    CHECK(FV_OK, s2->ops->update_user(s2, "ann", "rep", "east", NULL, E));
    s2->ops->close(s2);
    expect_device(s, 1, "rep", "east");
}

/* The schema version of the SQLite store in dir. */
static int sqlite_schema(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema'", -1,
                                        &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void sqlite_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* What schema 4 added to the log (the scope columns and their indexes). */
#define SQLITE_UNSCOPE                                                                       \
    "DROP INDEX log_by_cust; DROP INDEX log_by_owner; DROP INDEX log_by_team; "             \
    "DROP INDEX log_by_prev_owner; DROP INDEX log_by_prev_team; "                          \
    "ALTER TABLE log DROP COLUMN cust; ALTER TABLE log DROP COLUMN owner; "                \
    "ALTER TABLE log DROP COLUMN team; ALTER TABLE log DROP COLUMN prev_owner; "           \
    "ALTER TABLE log DROP COLUMN prev_team; "

/* Stores made before field keys (schema 1, without their tables), before
 * the policy (schema 2, without its table) and before the log's scope
 * (schema 3, without its columns) are upgraded to 4 when opened; the scope
 * of the log they hold is back-filled, so scoped pulls give what the
 * per-row check gave. */
static void test_sqlite_upgrade(void **state)
{
    fixture *f = *state;
    char err[512];
    unsigned char b[FV_POLICY_BYTES_MAX];
    user_with_device(f->s, "alice", 1);
    for (int step = 1; step <= 3; step++) build_scoped_step(f->s, step);
    f->s->ops->close(f->s);
    f->s = NULL;
    char *path = tu_path(f->dir, "fvd.db");
    sqlite_exec(path, "DROP TABLE grants; DROP TABLE team_keys; DROP TABLE admin_key; "
                      "DROP TABLE policy; " SQLITE_UNSCOPE
                      "UPDATE meta SET value = 1 WHERE key = 'schema'");
    f->s = open_handle(f);
    expect_all_scoped(f->s);
    put_key(f->s, "east", FV_CLASS_PII, 1, 1);
    assert_int_equal(grant(f->s, 1, "east", FV_CLASS_PII, 1, 1), 1);
    CHECK(FV_OK, f->s->ops->set_policy(f->s, b, policy_bytes(2, 0, b), E));
    f->s->ops->close(f->s);
    f->s = NULL;
    assert_int_equal(sqlite_schema(path), 4);
    /* schema 2: field keys, no policy */
    sqlite_exec(path, "DROP TABLE policy; " SQLITE_UNSCOPE
                      "UPDATE meta SET value = 2 WHERE key = 'schema'");
    f->s = open_handle(f);
    assert_true(stored_version(f->s, NULL) == 0);
    CHECK(FV_OK, f->s->ops->set_policy(f->s, b, policy_bytes(2, 0, b), E));
    CHECK(FV_OK, f->s->ops->update_user(f->s, "alice", "lead", "east", NULL, E));
    expect_device(f->s, 1, "lead", "east");
    f->s->ops->close(f->s);
    f->s = NULL;
    assert_int_equal(sqlite_schema(path), 4);
    /* schema 3: the log without its scope; appends after the upgrade keep
     * the back-filled scope current */
    sqlite_exec(path, SQLITE_UNSCOPE "UPDATE meta SET value = 3 WHERE key = 'schema'");
    f->s = open_handle(f);
    expect_all_scoped(f->s);
    fv__change c;
    scoped(&c, "customer", 1, 1, "owner", "carol");
    push(f->s, 1, &c, 1, 4, NULL);
    expect_all_scoped(f->s);
    f->s->ops->close(f->s);
    f->s = NULL;
    assert_int_equal(sqlite_schema(path), 4);
    /* A newer fvd's store is refused, not trampled on. */
    sqlite_exec(path, "UPDATE meta SET value = 5 WHERE key = 'schema'");
    fvd_store *s = NULL;
    CHECK(FV_EIO, fvd_store_open_sqlite(f->dir, &s, E));
    assert_non_null(strstr(err, "schema version is 5"));
    assert_int_equal(sqlite_schema(path), 5);
    free(path);
}

/* ---- PostgreSQL only ------------------------------------------------------------------------------ */

/* Run SQL on f's database over a connection of our own; returns the first
 * value of the result as a number (-1 if none). */
static long long sql(const fixture *f, const char *q)
{
    PGconn *c = PQconnectdb(f->url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, q);
    ExecStatusType rs = PQresultStatus(r);
    if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK)
        fprintf(stderr, "%s: %s", q, PQerrorMessage(c));
    assert_true(rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK);
    long long v = -1;
    if (rs == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return v;
}

enum { PUSHERS = 2, PUSHES = 40, PER_PUSH = 5 };

typedef struct pusher_arg {
    fvd_store *s;
    unsigned dev;
    pthread_barrier_t *barrier;
    uint64_t seqs[PUSHES * PER_PUSH];
    size_t n;
    fv_status st;
    char err[512];
} pusher_arg;

static void *pusher(void *p)
{
    pusher_arg *a = p;
    unsigned char id[16], hash[32];
    fvd_device d;
    make_id(id, a->dev);
    pthread_barrier_wait(a->barrier);
    for (unsigned b = 1; b <= PUSHES && a->st == FV_OK; b++) {
        a->st = a->s->ops->push_begin(a->s, id, &d, a->err, sizeof a->err);
        if (a->st != FV_OK) break;
        uint64_t got[PER_PUSH];
        for (unsigned i = 0; i < PER_PUSH && a->st == FV_OK; i++) {
            fv__change c;
            mk_change(&c, "customer", a->dev * 1000 + b, "name", a->dev,
                      ((uint64_t)1700000000000 + b) << 16 | i, 0, (uint64_t)b * PER_PUSH + i);
            snprintf((char *)c.data, sizeof c.data, "dev %u batch %u change %u", a->dev, b, i);
            c.kind = FV__VAL_TEXT;
            c.len = strlen((char *)c.data);
            a->st = a->s->ops->append(a->s, &c, &got[i], a->err, sizeof a->err);
            /* Hold the transaction a little: let the other pusher queue up. */
            if (i == 1) nanosleep(&(struct timespec){0, 200000}, NULL);
        }
        memset(hash, (int)b, sizeof hash);
        if (a->st == FV_OK) a->st = a->s->ops->set_batch(a->s, id, b, hash, a->err, sizeof a->err);
        int commit = a->st == FV_OK && b % 7 != 0; /* every 7th push rolls back */
        fv_status end = a->s->ops->push_end(a->s, commit, a->err, sizeof a->err);
        if (a->st == FV_OK) a->st = end;
        if (commit && a->st == FV_OK)
            for (unsigned i = 0; i < PER_PUSH; i++) a->seqs[a->n++] = got[i];
    }
    return NULL;
}

typedef struct puller_arg {
    fvd_store *s;
    size_t want;
    size_t seen;
    uint64_t cursor;
    uint64_t last_dseq[PUSHERS + 1];
    int bad;           /* a skipped or repeated sequence number, or disorder */
    fv_status st;
    char err[512];
    char why[256];
} puller_arg;

static int puller_cb(void *ctx, const fv__change *c, uint64_t seq)
{
    puller_arg *a = ctx;
    if (seq != a->cursor + 1 && !a->bad) {
        a->bad = 1;
        snprintf(a->why, sizeof a->why, "after seq %llu came %llu",
                 (unsigned long long)a->cursor, (unsigned long long)seq);
    }
    unsigned dev = c->device[15];
    if (dev >= 1 && dev <= PUSHERS) {
        if (c->device_seq <= a->last_dseq[dev] && !a->bad) {
            a->bad = 1;
            snprintf(a->why, sizeof a->why, "device %u's changes out of order", dev);
        }
        a->last_dseq[dev] = c->device_seq;
    }
    a->cursor = seq;
    a->seen++;
    return 0;
}

static void *puller(void *p)
{
    puller_arg *a = p;
    time_t deadline = time(NULL) + 60;
    while (a->seen < a->want && time(NULL) < deadline && a->st == FV_OK) {
        int more = 0;
        uint64_t last = 0;
        a->st = a->s->ops->pull(a->s, a->cursor, 7, NULL, puller_cb, a, &more, &last, a->err,
                                sizeof a->err);
        if (a->st == FV_OK && last != a->cursor) {
            a->bad = 1;
            snprintf(a->why, sizeof a->why, "last_seq %llu, last given %llu",
                     (unsigned long long)last, (unsigned long long)a->cursor);
        }
        if (!more) nanosleep(&(struct timespec){0, 100000}, NULL);
    }
    return NULL;
}

static void test_pg_concurrent_pushes(void **state)
{
    fixture *f = *state;
    for (unsigned dev = 1; dev <= PUSHERS; dev++) {
        char name[16];
        snprintf(name, sizeof name, "pusher%u", dev);
        user_with_device(f->s, name, dev);
    }
    size_t committed_per = (size_t)(PUSHES - PUSHES / 7) * PER_PUSH;
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, PUSHERS);
    static pusher_arg pa[PUSHERS];
    static puller_arg pl;
    memset(pa, 0, sizeof pa);
    memset(&pl, 0, sizeof pl);
    pthread_t t[PUSHERS + 1];
    for (unsigned i = 0; i < PUSHERS; i++) {
        pa[i].s = open_handle(f);
        pa[i].dev = i + 1;
        pa[i].barrier = &barrier;
        pa[i].st = FV_OK;
    }
    pl.s = open_handle(f);
    pl.want = committed_per * PUSHERS;
    pl.st = FV_OK;
    assert_int_equal(pthread_create(&t[PUSHERS], NULL, puller, &pl), 0);
    for (unsigned i = 0; i < PUSHERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, pusher, &pa[i]), 0);
    for (unsigned i = 0; i <= PUSHERS; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);

    for (unsigned i = 0; i < PUSHERS; i++) {
        if (pa[i].st != FV_OK) fprintf(stderr, "pusher %u: %s\n", i, pa[i].err);
        assert_int_equal(pa[i].st, FV_OK);
        assert_int_equal(pa[i].n, committed_per);
        pa[i].s->ops->close(pa[i].s);
    }
    if (pl.st != FV_OK) fprintf(stderr, "puller: %s\n", pl.err);
    assert_int_equal(pl.st, FV_OK);
    if (pl.bad) fprintf(stderr, "puller: %s\n", pl.why);
    assert_int_equal(pl.bad, 0);
    assert_int_equal(pl.seen, pl.want);
    assert_true(pl.cursor == pl.want);
    pl.s->ops->close(pl.s);

    /* The numbers handed out are unique and exactly 1..total. */
    size_t total = pl.want;
    unsigned char *seen = calloc(total + 1, 1);
    assert_non_null(seen);
    for (unsigned i = 0; i < PUSHERS; i++)
        for (size_t j = 0; j < pa[i].n; j++) {
            assert_true(pa[i].seqs[j] >= 1 && pa[i].seqs[j] <= total);
            assert_int_equal(seen[pa[i].seqs[j]], 0);
            seen[pa[i].seqs[j]] = 1;
        }
    free(seen);
    /* Each device's batch state is its last committed push. */
    char err[512];
    fvd_device d;
    unsigned char id[16];
    make_id(id, 1);
    CHECK(FV_OK, f->s->ops->get_device(f->s, id, &d, E));
    assert_true(d.last_batch_seq == PUSHES - (PUSHES % 7 == 0));
}

typedef struct opener_arg {
    const fixture *f;
    pthread_barrier_t *barrier;
    fvd_store *s;
    fv_status st;
    char err[512];
} opener_arg;

static void *opener(void *p)
{
    opener_arg *a = p;
    pthread_barrier_wait(a->barrier);
    a->st = fvd_store_open_pg(a->f->url, &a->s, a->err, sizeof a->err);
    return NULL;
}

/* Several fvd processes starting at once on an empty database. */
static void test_pg_concurrent_open(void **state)
{
    fixture *f = *state;
    enum { OPENERS = 8 };
    fixture fresh = *f;
    assert_int_equal(pg_create(&fresh), 0);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, OPENERS);
    opener_arg a[OPENERS];
    pthread_t t[OPENERS];
    for (int i = 0; i < OPENERS; i++) {
        a[i] = (opener_arg){&fresh, &barrier, NULL, FV_EIO, ""};
        assert_int_equal(pthread_create(&t[i], NULL, opener, &a[i]), 0);
    }
    for (int i = 0; i < OPENERS; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < OPENERS; i++) {
        if (a[i].st != FV_OK) fprintf(stderr, "opener %d: %s\n", i, a[i].err);
        assert_int_equal(a[i].st, FV_OK);
    }
    /* All of them work on the one schema. */
    user_with_device(a[0].s, "alice", 1);
    char err[512];
    fvd_device d;
    unsigned char id[16];
    make_id(id, 1);
    for (int i = 0; i < OPENERS; i++) {
        CHECK(FV_OK, a[i].s->ops->get_device(a[i].s, id, &d, E));
        a[i].s->ops->close(a[i].s);
    }
    assert_true(sql(&fresh, "SELECT value FROM fvd_meta WHERE key = 'schema_version'") == 4);
}

/* What schema 4 added to the log (the scope columns; their indexes go
 * with them). */
#define PG_UNSCOPE                                                                          \
    "ALTER TABLE log DROP COLUMN cust, DROP COLUMN owner, DROP COLUMN team,"               \
    " DROP COLUMN prev_owner, DROP COLUMN prev_team;"

/* Databases made before field keys (schema 1, without their tables),
 * before the policy (schema 2, without its table) and before the log's
 * scope (schema 3) are upgraded to 4 when opened, the log's scope
 * back-filled. */
static void test_pg_upgrade(void **state)
{
    fixture *f = *state;
    char err[512];
    unsigned char b[FV_POLICY_BYTES_MAX];
    user_with_device(f->s, "alice", 1);
    for (int step = 1; step <= 3; step++) build_scoped_step(f->s, step);
    f->s->ops->close(f->s);
    f->s = NULL;
    sql(f, "DROP TABLE grants; DROP TABLE team_keys; DROP TABLE admin_key; DROP TABLE policy;"
           " " PG_UNSCOPE " UPDATE fvd_meta SET value = 1 WHERE key = 'schema_version'");
    f->s = open_handle(f);
    assert_true(sql(f, "SELECT value FROM fvd_meta WHERE key = 'schema_version'") == 4);
    expect_all_scoped(f->s);
    put_key(f->s, "east", FV_CLASS_PII, 1, 1);
    assert_int_equal(grant(f->s, 1, "east", FV_CLASS_PII, 1, 1), 1);
    CHECK(FV_OK, f->s->ops->set_policy(f->s, b, policy_bytes(2, 0, b), E));
    f->s->ops->close(f->s);
    f->s = NULL;
    /* schema 2 */
    sql(f, "DROP TABLE policy; " PG_UNSCOPE
           " UPDATE fvd_meta SET value = 2 WHERE key = 'schema_version'");
    f->s = open_handle(f);
    assert_true(sql(f, "SELECT value FROM fvd_meta WHERE key = 'schema_version'") == 4);
    expect_all_scoped(f->s);
    assert_true(stored_version(f->s, NULL) == 0);
    CHECK(FV_OK, f->s->ops->set_policy(f->s, b, policy_bytes(2, 0, b), E));
    /* A device's role and team are its user's, whatever its own columns
     * (what the user had at enrolment) say; update_user keeps them in step. */
    sql(f, "UPDATE devices SET role = 'stale', team = 'stale'");
    expect_device(f->s, 1, "rep", "north");
    CHECK(FV_OK, f->s->ops->update_user(f->s, "alice", "lead", "east", NULL, E));
    expect_device(f->s, 1, "lead", "east");
    assert_true(sql(f, "SELECT count(*) FROM devices WHERE role = 'lead' AND team = 'east'") == 1);
}

/* Drop every other connection to f's database (as a server restart or a
 * DBA's pg_terminate_backend would). */
static void kill_connections(const fixture *f)
{
    sql(f, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
           " WHERE datname = current_database() AND pid <> pg_backend_pid()");
    /* Termination is asynchronous: wait until they are gone. */
    for (int i = 0; i < 200; i++) {
        if (sql(f, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                   " AND pid <> pg_backend_pid()") == 0)
            return;
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    fail_msg("connections did not go away");
}

static void test_pg_reconnect(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    unsigned char id[16];
    fvd_device d;
    uint64_t seq = 0, head = 0;
    int replay = -1;
    user_with_device(s, "alice", 1);
    make_id(id, 1);

    /* Outside a push: the next call reconnects by itself. */
    kill_connections(f);
    CHECK(FV_OK, s->ops->get_device(s, id, &d, E));
    kill_connections(f);
    unsigned char n[16];
    memset(n, 3, sizeof n);
    CHECK(FV_OK, s->ops->use_nonce(s, id, n, 1000, 100, &replay, E));
    assert_int_equal(replay, 0);
    kill_connections(f);
    CHECK(FV_OK, s->ops->head(s, &head, E));
    unsigned char pb[FV_POLICY_BYTES_MAX];
    kill_connections(f);
    CHECK(FV_OK, s->ops->set_policy(s, pb, policy_bytes(2, 0, pb), E));
    kill_connections(f);
    assert_true(stored_version(s, NULL) == 2);
    kill_connections(f);
    CHECK(FV_OK, s->ops->update_user(s, "alice", "lead", "east", NULL, E));
    expect_device(s, 1, "lead", "east");

    /* Inside a push: the push fails and stores nothing, the next works. */
    fv__change c;
    mk_change(&c, "customer", 1, "name", 1, (uint64_t)1700000000000 << 16, 0, 1);
    set_text(&c, "cut");
    CHECK(FV_OK, s->ops->push_begin(s, id, &d, E));
    CHECK(FV_OK, s->ops->append(s, &c, &seq, E));
    kill_connections(f);
    CHECK(FV_EBUSY, s->ops->append(s, &c, &seq, E));
    assert_non_null(strstr(err, "connection"));
    CHECK(FV_OK, s->ops->push_end(s, 0, E));
    CHECK(FV_OK, s->ops->head(s, &head, E));
    assert_true(head == 0);

    /* A commit on a dropped connection fails; nothing stored. */
    CHECK(FV_OK, s->ops->push_begin(s, id, &d, E));
    CHECK(FV_OK, s->ops->append(s, &c, &seq, E));
    kill_connections(f);
    CHECK(FV_EBUSY, s->ops->push_end(s, 1, E));
    CHECK(FV_OK, s->ops->head(s, &head, E));
    assert_true(head == 0);

    push(s, 1, &c, 1, 1, &seq);
    assert_true(seq == 1);
}

static void test_pg_nonce_purge(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    unsigned char dev[16], n[16];
    int replay;
    make_id(dev, 1);
    for (int i = 0; i < 50; i++) {
        memset(n, i, sizeof n);
        CHECK(FV_OK, s->ops->use_nonce(s, dev, n, 1000 + i, 100, &replay, E));
        assert_int_equal(replay, 0);
    }
    assert_true(sql(f, "SELECT count(*) FROM nonces") == 50);
    /* At 1120 the entries before 1020 are expired: any call purges them. */
    memset(n, 0xee, sizeof n);
    CHECK(FV_OK, s->ops->use_nonce(s, dev, n, 1120, 100, &replay, E));
    assert_true(sql(f, "SELECT count(*) FROM nonces") == 31);
    assert_true(sql(f, "SELECT min(seen_ms) FROM nonces") == 1020);
    CHECK(FV_OK, s->ops->use_nonce(s, dev, n, 99999, 100, &replay, E));
    assert_int_equal(replay, 0);
    assert_true(sql(f, "SELECT count(*) FROM nonces") == 1);
}

static void test_pg_misuse(void **state)
{
    fixture *f = *state;
    fvd_store *s = f->s;
    char err[512];
    unsigned char id[16];
    fvd_device d;
    fv__ver v;
    int found;
    uint64_t seq = 0, head = 0;
    user_with_device(s, "alice", 1);
    make_id(id, 1);
    fv__change c;
    mk_change(&c, "customer", 1, "name", 1, (uint64_t)1700000000000 << 16, 0, 1);
    set_text(&c, "x");

    /* Push operations outside a push. */
    CHECK(FV_EINVAL, s->ops->append(s, &c, &seq, E));
    CHECK(FV_EINVAL, s->ops->set_batch(s, id, 1, id, E));
    CHECK(FV_EINVAL, s->ops->push_end(s, 1, E));
    CHECK(FV_OK, s->ops->push_end(s, 0, E));
    /* Nested push. */
    CHECK(FV_OK, s->ops->push_begin(s, id, &d, E));
    CHECK(FV_EINVAL, s->ops->push_begin(s, id, &d, E));
    /* Values that do not fit int8, or bad kinds and lengths. */
    c.hlc = UINT64_MAX;
    CHECK(FV_EINVAL, s->ops->append(s, &c, &seq, E));
    CHECK(FV_EINVAL, s->ops->get_version(s, &c, &v, &found, E));
    c.hlc = 1;
    c.kind = (fv__val_kind)9;
    CHECK(FV_EINVAL, s->ops->append(s, &c, &seq, E));
    c.kind = FV__VAL_TEXT;
    c.len = FV_FIELD_MAX + 1;
    CHECK(FV_EINVAL, s->ops->append(s, &c, &seq, E));
    c.len = 1;
    CHECK(FV_EINVAL, s->ops->set_batch(s, id, UINT64_MAX, id, E));
    /* None of that broke the push. */
    CHECK(FV_OK, s->ops->append(s, &c, &seq, E));
    assert_true(seq == 1);
    /* A statement PostgreSQL refuses (text that is not UTF-8) aborts the
     * transaction: the commit says so and nothing is stored. */
    set_text(&c, "bad \xff\xfe utf-8");
    CHECK(FV_EINVAL, s->ops->append(s, &c, &seq, E));
    CHECK(FV_EIO, s->ops->push_end(s, 1, E));
    assert_non_null(strstr(err, "rolled back"));
    CHECK(FV_OK, s->ops->head(s, &head, E));
    assert_true(head == 0);
    /* A device name that is not UTF-8. */
    add_user(s, "bob", "rep", "north", "code-bob");
    CHECK(FV_EINVAL, enrol(s, "code-bob", 2, "\xc3\x28", 1, NULL, E));
    CHECK(FV_OK, enrol(s, "code-bob", 2, "fine", 1, NULL, E));
    /* Bad nonce window. */
    int replay;
    CHECK(FV_EINVAL, s->ops->use_nonce(s, id, id, 1, -1, &replay, E));
}

static void test_pg_open_errors(void **state)
{
    fixture *f = *state;
    char err[512];
    fvd_store dummy;
    fvd_store *s = &dummy; /* must be reset to NULL */

    /* Nobody listens there: unreachable, and no password in the message. */
    CHECK(FV_EBUSY, fvd_store_open_pg("postgresql://fvtest:s3cr3t-pw@127.0.0.1:1/fvtest"
                                      "?connect_timeout=2", &s, E));
    assert_null(s);
    assert_null(strstr(err, "s3cr3t-pw"));
    assert_non_null(strstr(err, "connect"));
    /* No such database. */
    char url[300];
    snprintf(url, sizeof url, "%s_nonexistent", f->url);
    CHECK(FV_EBUSY, fvd_store_open_pg(url, &s, E));
    assert_non_null(strstr(err, "does not exist"));
    CHECK(FV_EINVAL, fvd_store_open_pg(NULL, &s, E));
    CHECK(FV_EINVAL, fvd_store_open_pg("", &s, E));
    /* A schema from a newer fvd is refused, not trampled on. */
    sql(f, "UPDATE fvd_meta SET value = 99 WHERE key = 'schema_version'");
    CHECK(FV_EINVAL, fvd_store_open_pg(f->url, &s, E));
    assert_non_null(strstr(err, "newer"));
    sql(f, "UPDATE fvd_meta SET value = 1 WHERE key = 'schema_version'");
    CHECK(FV_OK, fvd_store_open_pg(f->url, &s, E));
    s->ops->close(s);
}

/* ---- running ------------------------------------------------------------------------------------------ */

static int pg_group_setup(void **state)
{
    (void)state;
    if (pgu_start(&cluster) != 0) {
        fprintf(stderr, "test_server_store: cannot start PostgreSQL (see above)\n");
        return -1;
    }
    cluster_up = 1;
    fprintf(stderr, "test_server_store: PostgreSQL cluster (%s) ready in %.0f ms\n",
            cluster.bindir, cluster.start_ms);
    return 0;
}

static int pg_group_teardown(void **state)
{
    (void)state;
    pgu_stop(&cluster);
    cluster_up = 0;
    return 0;
}

static int wanted(const char *name)
{
    const char *env = getenv("FV_STORE_BACKENDS");
    return env == NULL || *env == '\0' || strstr(env, name) != NULL;
}

#define TEST(fn, be) cmocka_unit_test_prestate_setup_teardown(fn, setup_store, teardown_store, (void *)(be))
#define SHARED_TESTS(be)                                                                         \
    TEST(test_users_and_enrolment, be), TEST(test_enrol_race, be), TEST(test_devices, be),     \
        TEST(test_nonces, be), TEST(test_push_commit, be), TEST(test_push_rollback, be),       \
        TEST(test_seq_gapless, be), TEST(test_pull, be), TEST(test_empty, be),                 \
        TEST(test_field_keys, be), TEST(test_policy, be), TEST(test_policy_race, be),     \
        TEST(test_update_user, be), TEST(test_pull_scoped, be)

int main(void)
{
    int failed = 0;
    if (wanted("sqlite")) {
        const struct CMUnitTest sqlite_tests[] = {
            SHARED_TESTS(&sqlite_backend),
            TEST(test_sqlite_upgrade, &sqlite_backend),
        };
        failed += cmocka_run_group_tests_name("store on SQLite", sqlite_tests, NULL, NULL);
    }
    if (wanted("postgres")) {
        const struct CMUnitTest pg_tests[] = {
            SHARED_TESTS(&pg_backend),
            TEST(test_pg_concurrent_pushes, &pg_backend),
            TEST(test_pg_concurrent_open, &pg_backend),
            TEST(test_pg_reconnect, &pg_backend),
            TEST(test_pg_nonce_purge, &pg_backend),
            TEST(test_pg_misuse, &pg_backend),
            TEST(test_pg_open_errors, &pg_backend),
            TEST(test_pg_upgrade, &pg_backend),
        };
        failed += cmocka_run_group_tests_name("store on PostgreSQL", pg_tests, pg_group_setup,
                                              pg_group_teardown);
    }
    return failed ? 1 : 0;
}
