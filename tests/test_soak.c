/*
 * test_soak.c - a convergence soak under network faults: five enrolled
 * devices make random offline edits (customers, visits, updates, deletes,
 * restores) and sync, round after round, with fvd through the fault proxy
 * (tests/faultproxy.h: delays, connections dropped mid-request and
 * mid-response, truncation, duplicated requests, 502s, captive-portal
 * garbage), devices sometimes "restarting" (store closed and reopened).
 * Then every device syncs with fvd directly, and:
 *
 *  - every store checks clean (fv_check) and all state hashes are equal,
 *    also to a fresh device's that pulls everything (the server's view);
 *  - the visits are exactly those created minus those deleted: none lost,
 *    none twice;
 *  - every conflict-log entry, on every device, pairs two edits that were
 *    really concurrent.  The test keeps, per device, what it is certain the
 *    device had seen when it made each edit (a vector of edit counts: its
 *    own edits, and everyone's edits confirmed on the server by a drained
 *    sync before the device's last drained sync), and each conflict names
 *    its two versions by (device, hlc): if the writer of one had certainly
 *    seen the other, the entry is spurious and the test fails;
 *  - no sync ever failed with anything but a network error, a malformed
 *    answer or a refused (replayed) signature, i.e. nothing the proxy could
 *    not cause: a 409 (batch chain) or a corrupt store is a failure.
 *
 * Runs on fvd's SQLite backend and on PostgreSQL.  The seed, rounds and
 * faults injected are printed as "summary:" lines.  Environment:
 *   FV_SEED=N              replay a run
 *   FV_SOAK_ROUNDS=N       rounds per backend (default 30; 10 under ASan)
 *   FV_SOAK_BACKENDS=LIST  "sqlite,postgres" (default), or one of them
 *   FV_SOAK_FAULT_PCT=N    percentage of requests that get a fault (45)
 * e.g. a long run:  FV_SOAK_ROUNDS=400 build/test_soak
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faultproxy.h"
#include "fieldvault.h"
#include "fvdproc.h"
#include "internal.h"
#include "pgutil.h"
#include "testutil.h"

#define NDEV 5
#define MAX_OPS 200000

static uint64_t seed;
static int rounds = 30;
static int fault_pct = 45;

/* ---- the edit log (what each device had certainly seen) ---- */

typedef struct op {
    int dev;
    int idx;          /* 1-based, per device */
    uint64_t hlc;
    int knew[NDEV];   /* edits of each device this device had certainly seen */
} op;

typedef struct device {
    char name[16];
    char *path;
    fv_db *db;
    char id_hex[33];
} device;

typedef struct world {
    fvdp_backend b;
    fvdp_server s;
    fp_proxy *px;
    char proxy_url[64];
    char *dir;
    device d[NDEV];
    int nops[NDEV];
    int knew[NDEV][NDEV];
    int on_server[NDEV]; /* edits confirmed on the server by a drained sync */
    op *ops;
    size_t nop;
    size_t visits_created;
    char **visits_deleted;
    size_t nvisits_deleted;
    char **customers_deleted;
    size_t ncustomers_deleted;
    /* statistics */
    unsigned long syncs, drained, stopped, failed, restarts, edits, conflicts_checked;
    unsigned long fail_net, fail_proto, fail_auth;
    char first_errors[8][160];
    int nfirst;
} world;

static uint64_t rnd_state;

static uint64_t rnd(void)
{
    uint64_t z = (rnd_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t pick(size_t n)
{
    return (size_t)(rnd() % n);
}

/* ---- devices ---- */

static void device_open(world *w, int i, int create)
{
    device *d = &w->d[i];
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = d->path;
    cfg.passphrase = "pw";
    cfg.passphrase_len = 2;
    cfg.flags = create ? FV_OPEN_CREATE : 0;
    cfg.kdf_mem_kib = 8192;
    cfg.kdf_passes = 1;
    cfg.user = d->name;
    fv_status st = fv_open(&d->db, &cfg);
    if (st != FV_OK) fprintf(stderr, "open %s: %s\n", d->name, fv_errmsg(d->db));
    assert_int_equal(st, FV_OK);
}

static void device_close(device *d)
{
    if (d->db != NULL) assert_int_equal(fv_close(d->db), FV_OK);
    d->db = NULL;
}

static void enroll(world *w, device *d, const char *role)
{
    char *code = fvdp_add_user(&w->b, d->name, role, "north");
    assert_non_null(code);
    fv_status st = fv_enroll(d->db, w->s.base, code, NULL);
    if (st != FV_OK) fprintf(stderr, "enroll %s: %s\n", d->name, fv_errmsg(d->db));
    assert_int_equal(st, FV_OK);
    free(code);
}

/* The hlc of the newest version of a row: right after a local write, that
 * write's (the local clock is ahead of everything the store holds). */
static uint64_t row_hlc(fv_db *db, const char *table, const char *id)
{
    unsigned char key[16];
    assert_true(fv__uuid_parse(id, key));
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db->sql,
                                        "SELECT max(hlc) FROM fv_versions WHERE tbl = ?1 AND"
                                        " row_id = ?2",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, key, 16, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    uint64_t h = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    assert_true(h != 0);
    return h;
}

static void log_op(world *w, int i, const char *table, const char *id)
{
    assert_true(w->nop < MAX_OPS);
    op *o = &w->ops[w->nop++];
    o->dev = i;
    o->idx = ++w->nops[i];
    w->knew[i][i] = o->idx;
    o->hlc = row_hlc(w->d[i].db, table, id);
    memcpy(o->knew, w->knew[i], sizeof o->knew);
    w->edits++;
}

/* A random visible record of table (visits, customers), malloc'd id, or NULL. */
static char *random_id(fv_db *db, const char *table)
{
    fv_list *l;
    fv_status st = strcmp(table, "visit") == 0 ? fv_list_visits(db, NULL, &l)
                                               : fv_list_customers(db, NULL, &l);
    assert_int_equal(st, FV_OK);
    char **ids = NULL;
    size_t n = 0;
    const fv_record *r;
    while (fv_list_next(l, &r) == FV_OK && r != NULL) {
        ids = realloc(ids, (n + 1) * sizeof *ids);
        ids[n++] = strdup(fv_record_id(r));
    }
    fv_list_free(l);
    char *out = NULL;
    if (n > 0) {
        size_t k = pick(n);
        out = ids[k];
        ids[k] = NULL;
    }
    for (size_t k = 0; k < n; k++) free(ids[k]);
    free(ids);
    return out;
}

static void remember(char ***set, size_t *n, const char *id)
{
    for (size_t k = 0; k < *n; k++)
        if (strcmp((*set)[k], id) == 0) return;
    *set = realloc(*set, (*n + 1) * sizeof **set);
    (*set)[(*n)++] = strdup(id);
}

static const char *const STAGES[] = {"lead", "intent", "negotiation", "won", "service", "lost"};
static const char *const GRADES[] = {"S", "A", "B"};

static void edit(world *w, int i)
{
    fv_db *db = w->d[i].db;
    unsigned k = (unsigned)pick(100);
    char text[64];
    snprintf(text, sizeof text, "%s-%lu", w->d[i].name, w->edits);
    fv_record *r = NULL;
    if (k < 14) { /* a new customer */
        assert_int_equal(fv_record_new(db, "customer", &r), FV_OK);
        assert_int_equal(fv_record_set_text(r, "name", text), FV_OK);
        assert_int_equal(fv_record_set_text(r, "grade", GRADES[pick(3)]), FV_OK);
        assert_int_equal(fv_insert(db, r), FV_OK);
        log_op(w, i, "customer", fv_record_id(r));
        fv_record_free(r);
        return;
    }
    char *cust = random_id(db, "customer");
    if (cust == NULL) return;
    if (k < 50) { /* edit one or two fields of a customer (others may too) */
        assert_int_equal(fv_get(db, "customer", cust, &r), FV_OK);
        unsigned f = (unsigned)pick(4);
        if (f == 0) assert_int_equal(fv_record_set_text(r, "stage", STAGES[pick(6)]), FV_OK);
        if (f == 1) assert_int_equal(fv_record_set_text(r, "grade", GRADES[pick(3)]), FV_OK);
        if (f == 2) assert_int_equal(fv_record_set_text(r, "needs", text), FV_OK);
        if (f == 3) {
            assert_int_equal(fv_record_set_text(r, "region", pick(2) ? "North" : "South"), FV_OK);
            assert_int_equal(fv_record_set_text(r, "urgency", text), FV_OK);
        }
        assert_int_equal(fv_update(db, r), FV_OK);
        log_op(w, i, "customer", cust);
        fv_record_free(r);
    } else if (k < 78) { /* a visit */
        assert_int_equal(fv_record_new(db, "visit", &r), FV_OK);
        assert_int_equal(fv_record_set_text(r, "customer_id", cust), FV_OK);
        assert_int_equal(fv_record_set_text(r, "method", pick(2) ? "visit" : "phone"), FV_OK);
        assert_int_equal(fv_record_set_text(r, "summary", text), FV_OK);
        assert_int_equal(fv_insert(db, r), FV_OK);
        log_op(w, i, "visit", fv_record_id(r));
        fv_record_free(r);
        w->visits_created++;
    } else if (k < 90) { /* edit a visit */
        char *v = random_id(db, "visit");
        if (v != NULL) {
            assert_int_equal(fv_get(db, "visit", v, &r), FV_OK);
            assert_int_equal(fv_record_set_text(r, "feedback", text), FV_OK);
            assert_int_equal(fv_update(db, r), FV_OK);
            log_op(w, i, "visit", v);
            fv_record_free(r);
            free(v);
        }
    } else if (k < 94) { /* delete a visit */
        char *v = random_id(db, "visit");
        if (v != NULL) {
            assert_int_equal(fv_delete(db, "visit", v), FV_OK);
            log_op(w, i, "visit", v);
            remember(&w->visits_deleted, &w->nvisits_deleted, v);
            free(v);
        }
    } else if (k < 97) { /* delete a customer */
        assert_int_equal(fv_delete(db, "customer", cust), FV_OK);
        log_op(w, i, "customer", cust);
        remember(&w->customers_deleted, &w->ncustomers_deleted, cust);
    } else if (w->ncustomers_deleted > 0) { /* restore one deleted somewhere */
        const char *c = w->customers_deleted[pick(w->ncustomers_deleted)];
        if (fv_restore(db, "customer", c) == FV_OK) log_op(w, i, "customer", c);
    }
    free(cust);
}

/* ---- syncing ---- */

static int acceptable_failure(fv_status st, const char *msg)
{
    if (strstr(msg, "old copy") != NULL || strstr(msg, "409") != NULL) return 0;
    if (st == FV_ENET) return 1;
    if (st == FV_EPROTO && strstr(msg, "malformed") != NULL) return 1;
    /* a duplicated request: the copy that lost the race was answered "replayed
     * nonce", and the client's one retry met another fault */
    if (st == FV_EACCES && strstr(msg, "replayed nonce") != NULL) return 1;
    return 0;
}

static fv_status sync_dev(world *w, int i, const char *server, int faulty)
{
    fv_sync_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.server = server;
    cfg.request_timeout_ms = faulty ? 2000 : 30000;
    cfg.max_attempts = faulty ? 3 : 4;
    cfg.batch_changes = 40; /* several batches per sync */
    fv_sync_result r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    int before = w->nops[i];
    fv_status st = fv_sync(w->d[i].db, &cfg, &r);
    w->syncs++;
    if (st == FV_OK && r.drained) {
        w->drained++;
        /* everything this device wrote is on the server; it holds everything
         * the server held when earlier drained syncs confirmed it */
        w->on_server[i] = before;
        for (int j = 0; j < NDEV; j++)
            if (w->on_server[j] > w->knew[i][j]) w->knew[i][j] = w->on_server[j];
    } else if (st == FV_OK) {
        w->stopped++;
    } else {
        const char *msg = fv_errmsg(w->d[i].db);
        w->failed++;
        if (st == FV_ENET) w->fail_net++;
        else if (st == FV_EPROTO) w->fail_proto++;
        else if (st == FV_EACCES) w->fail_auth++;
        int seen = 0;
        char line[sizeof w->first_errors[0]];
        snprintf(line, sizeof line, "%d: %s", (int)st, msg);
        for (int k = 0; k < w->nfirst; k++)
            if (strncmp(w->first_errors[k], line, 50) == 0) seen = 1;
        if (!seen && w->nfirst < 8)
            memcpy(w->first_errors[w->nfirst++], line, sizeof line);
        if (!acceptable_failure(st, msg) || !faulty) {
            fprintf(stderr, "%s: sync %s failed (status %d): %s\n", w->b.name, w->d[i].name, st,
                    msg);
            fvdp_log_tail(&w->s, 15);
            fail();
        }
    }
    assert_int_equal(r.rejected, 0); /* directors may write everything */
    return st;
}

/* ---- the final checks ---- */

static int device_of(const world *w, const char *hex)
{
    for (int i = 0; i < NDEV; i++)
        if (strcmp(w->d[i].id_hex, hex) == 0) return i;
    return -1;
}

static const op *find_op(const world *w, int dev, uint64_t hlc)
{
    for (size_t k = 0; k < w->nop; k++)
        if (w->ops[k].dev == dev && w->ops[k].hlc == hlc) return &w->ops[k];
    return NULL;
}

static void check_conflicts(world *w, int i)
{
    fv_conflict_list *l;
    assert_int_equal(fv_conflicts_list(w->d[i].db, 1, &l), FV_OK);
    const fv_conflict *c;
    while (fv_conflicts_next(l, &c) == FV_OK && c != NULL) {
        int dm = device_of(w, c->mine_device), dt = device_of(w, c->theirs_device);
        const op *a = dm >= 0 ? find_op(w, dm, c->mine_hlc) : NULL;
        const op *b = dt >= 0 ? find_op(w, dt, c->theirs_hlc) : NULL;
        if (a == NULL || b == NULL) {
            fprintf(stderr, "%s: conflict %s on %s: %s.%s names a version no device wrote\n",
                    w->b.name, c->id, w->d[i].name, c->table, c->field);
            fail();
        }
        if (a->knew[b->dev] >= b->idx || b->knew[a->dev] >= a->idx) {
            fprintf(stderr,
                    "%s: spurious conflict %s on %s: %s.%s %s: edit %d of %s (hlc %llu) and edit "
                    "%d of %s (hlc %llu), but one writer had seen the other's edit\n",
                    w->b.name, c->id, w->d[i].name, c->table, c->row_id, c->field, a->idx,
                    w->d[a->dev].name, (unsigned long long)a->hlc, b->idx, w->d[b->dev].name,
                    (unsigned long long)b->hlc);
            fail();
        }
        w->conflicts_checked++;
    }
    fv_conflicts_free(l);
}

static size_t count_visits(fv_db *db)
{
    fv_list *l;
    const fv_record *r;
    size_t n = 0;
    assert_int_equal(fv_list_visits(db, NULL, &l), FV_OK);
    while (fv_list_next(l, &r) == FV_OK && r != NULL) n++;
    fv_list_free(l);
    return n;
}

/* ---- the soak ---- */

static pgu_cluster cluster;
static int cluster_up;

static void soak(int pg)
{
#ifndef FVD_BIN
    (void)pg;
    skip();
#else
    world *w = calloc(1, sizeof *w);
    w->ops = calloc(MAX_OPS, sizeof *w->ops);
    rnd_state = seed ^ (pg ? 0x5151 : 0);
    w->dir = tu_mkdtemp(pg ? "soak-pg" : "soak-sqlite");
    w->b.fvd_bin = FVD_BIN;
    w->b.name = pg ? "postgres" : "sqlite";
    w->b.pg = pg;
    if (pg) {
        if (!cluster_up) {
            assert_int_equal(pgu_start(&cluster), 0);
            cluster_up = 1;
        }
        assert_int_equal(pgu_new_database(&cluster, "soak", w->b.url, sizeof w->b.url), 0);
    } else {
        snprintf(w->b.data, sizeof w->b.data, "%s/fvd-data", w->dir);
    }
    snprintf(w->s.log, sizeof w->s.log, "%s/fvd.log", w->dir);
    assert_int_equal(fvdp_start(&w->b, &w->s, 0), 0);

    fp_config pc;
    memset(&pc, 0, sizeof pc);
    pc.seed = seed;
    pc.weight[FP_PASS] = (unsigned)(100 - fault_pct) * 8;
    static const unsigned share[FP_NFAULTS] = {0, 14, 10, 16, 10, 12, 16, 12, 10}; /* of 100 */
    for (int f = 1; f < FP_NFAULTS; f++) pc.weight[f] = (unsigned)fault_pct * share[f] * 8 / 100;
    pc.delay_max_ms = 150;
    pc.slow_ms = 2300; /* past the client's 2 s timeout */
    assert_int_equal(fp_start(&pc, "127.0.0.1", w->s.port, &w->px), 0);
    snprintf(w->proxy_url, sizeof w->proxy_url, "http://127.0.0.1:%d", fp_port(w->px));

    for (int i = 0; i < NDEV; i++) {
        snprintf(w->d[i].name, sizeof w->d[i].name, "rep%d", i);
        w->d[i].path = tu_path(w->dir, w->d[i].name);
        device_open(w, i, 1);
        enroll(w, &w->d[i], "director");
        assert_int_equal(fv_device_id(w->d[i].db, w->d[i].id_hex), FV_OK);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < NDEV; i++) {
            int n = (int)pick(7);
            for (int k = 0; k < n; k++) edit(w, i);
            if (pick(10) == 0) { /* the app was closed and started again */
                device_close(&w->d[i]);
                device_open(w, i, 0);
                w->restarts++;
            }
        }
        int order[NDEV];
        for (int i = 0; i < NDEV; i++) order[i] = i;
        for (int i = NDEV - 1; i > 0; i--) {
            int j = (int)pick((size_t)i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int k = 0; k < NDEV; k++)
            if (pick(10) < 7) (void)sync_dev(w, order[k], w->proxy_url, 1);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fp_stats ps;
    fp_get_stats(w->px, &ps);
    unsigned long faulty_syncs = w->syncs, faulty_failed = w->failed;

    /* the clean final sync, straight to fvd: twice round, so everyone has
     * everyone's last edits */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < NDEV; i++) assert_int_equal(sync_dev(w, i, w->s.base, 0), FV_OK);
    char h0[65], h[65];
    for (int i = 0; i < NDEV; i++) {
        fv_status st = fv_check(w->d[i].db);
        if (st != FV_OK) fprintf(stderr, "check %s: %s\n", w->d[i].name, fv_errmsg(w->d[i].db));
        assert_int_equal(st, FV_OK);
        assert_int_equal(fv_state_hash(w->d[i].db, i == 0 ? h0 : h), FV_OK);
        if (i > 0 && strcmp(h, h0) != 0) {
            fprintf(stderr, "%s: %s and %s differ after the final sync\n", w->b.name,
                    w->d[0].name, w->d[i].name);
            fail();
        }
        fv_sync_status ss;
        memset(&ss, 0, sizeof ss);
        ss.size = sizeof ss;
        assert_int_equal(fv_sync_status_get(w->d[i].db, &ss), FV_OK);
        assert_int_equal(ss.pending_changes, 0);
    }
    size_t expect_visits = w->visits_created - w->nvisits_deleted;
    for (int i = 0; i < NDEV; i++) {
        size_t n = count_visits(w->d[i].db);
        if (n != expect_visits)
            fprintf(stderr, "%s: %s holds %zu visits, %zu created - %zu deleted = %zu\n",
                    w->b.name, w->d[i].name, n, w->visits_created, w->nvisits_deleted,
                    expect_visits);
        assert_int_equal(n, expect_visits);
        check_conflicts(w, i);
    }
    /* the server's view */
    device v;
    memset(&v, 0, sizeof v);
    snprintf(v.name, sizeof v.name, "viewer");
    v.path = tu_path(w->dir, "viewer");
    {
        fv_open_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.size = sizeof cfg;
        cfg.path = v.path;
        cfg.passphrase = "pw";
        cfg.passphrase_len = 2;
        cfg.flags = FV_OPEN_CREATE;
        cfg.kdf_mem_kib = 8192;
        cfg.kdf_passes = 1;
        assert_int_equal(fv_open(&v.db, &cfg), FV_OK);
    }
    enroll(w, &v, "director");
    assert_int_equal(fv_sync(v.db, NULL, NULL), FV_OK);
    assert_int_equal(fv_state_hash(v.db, h), FV_OK);
    assert_string_equal(h, h0);
    assert_int_equal(count_visits(v.db), expect_visits);
    device_close(&v);
    free(v.path);

    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("summary: soak %s: FV_SEED=%llu rounds=%d devices=%d edits=%lu visits=%zu "
           "syncs=%lu (failed %lu: net %lu, malformed %lu, auth %lu; drained %lu) "
           "requests=%llu faults_injected=%llu restarts=%lu conflicts_checked=%lu; "
           "visits lost 0, twice 0, store checks failed 0 (%.0f s)\n",
           w->b.name, (unsigned long long)seed, rounds, NDEV, w->edits, expect_visits,
           faulty_syncs, faulty_failed, w->fail_net, w->fail_proto, w->fail_auth, w->drained,
           (unsigned long long)ps.requests, (unsigned long long)fp_faults_injected(&ps),
           w->restarts, w->conflicts_checked, secs);
    printf("summary: soak %s faults:", w->b.name);
    for (int f = 1; f < FP_NFAULTS; f++)
        printf(" %s=%llu", fp_fault_name((fp_fault)f), (unsigned long long)ps.chosen[f]);
    printf("\n");
    for (int k = 0; k < w->nfirst; k++) printf("  a failed sync said: %s\n", w->first_errors[k]);
    fflush(stdout);

    fp_stop(w->px);
    for (int i = 0; i < NDEV; i++) {
        device_close(&w->d[i]);
        free(w->d[i].path);
    }
    fvdp_kill(&w->s, SIGTERM);
    tu_rmtree(w->dir);
    free(w->dir);
    for (size_t k = 0; k < w->nvisits_deleted; k++) free(w->visits_deleted[k]);
    for (size_t k = 0; k < w->ncustomers_deleted; k++) free(w->customers_deleted[k]);
    free(w->visits_deleted);
    free(w->customers_deleted);
    free(w->ops);
    free(w);
#endif
}

static int want_backend(const char *name)
{
    const char *e = getenv("FV_SOAK_BACKENDS");
    return e == NULL || strstr(e, name) != NULL;
}

static void test_soak_sqlite(void **state)
{
    (void)state;
    if (!want_backend("sqlite")) skip();
    soak(0);
}

static void test_soak_postgres(void **state)
{
    (void)state;
    if (!want_backend("postgres")) skip();
    soak(1);
}

static int group_teardown(void **state)
{
    (void)state;
#ifdef FVD_BIN
    if (cluster_up) pgu_stop(&cluster);
#endif
    return 0;
}

int main(void)
{
#ifndef FVD_BIN
    printf("test_soak: built without fvd (FV_BUILD_SERVER=OFF): skipped\n");
    return 77;
#endif
    const char *e = getenv("FV_SEED");
    seed = e ? strtoull(e, NULL, 10) : (uint64_t)time(NULL);
#if defined(__SANITIZE_ADDRESS__)
    rounds = 10;
#endif
    if ((e = getenv("FV_SOAK_ROUNDS")) != NULL) rounds = atoi(e);
    if ((e = getenv("FV_SOAK_FAULT_PCT")) != NULL) fault_pct = atoi(e);
    if (fault_pct < 0 || fault_pct > 100) fault_pct = 45;
    printf("test_soak: FV_SEED=%llu FV_SOAK_ROUNDS=%d FV_SOAK_FAULT_PCT=%d\n",
           (unsigned long long)seed, rounds, fault_pct);
    fflush(stdout);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soak_sqlite),
        cmocka_unit_test(test_soak_postgres),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
