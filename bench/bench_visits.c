/*
 * bench_visits.c - item 1: record a visit, one transaction per visit and N
 * in one batch, through the fieldvault API and through the peers (plain
 * SQLite, SQLite + session extension, SQLCipher as it comes and with 4 KiB
 * pages), on fieldvault's own schema, the same pragmas, the same data and
 * UUIDv7 ids.
 *
 * Every measurement is a fresh process on a fresh database ("fv_bench
 * peer ..." or peer_sqlcipher), so no peer inherits another's heap or page
 * cache.  Repetitions interleave the peers (rotating their order) so that
 * a noisy moment on the shared machine hits them all alike; ratios are
 * taken within a repetition and their median reported.  Instruction
 * counts come from callgrind, counting only the timed loop.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fieldvault.h"
#include "internal.h"
#include "peer_sql.h"
#include "visitgen.h"

#define PASS "correct horse battery staple"

/* ---- the fieldvault peer (runs in a child: fv_bench peer --peer fieldvault) ---- */

typedef struct fv_ctx {
    fv_db *db;
    int batch;
    long count;
    vg_visit *visits;
    char customer[FV_ID_LEN + 1];
    char err[512];
} fv_ctx;

static int fv_fail(fv_ctx *c, const char *what)
{
    snprintf(c->err, sizeof c->err, "%s: %s", what, fv_errmsg(c->db));
    return -1;
}

static int fv_set(fv_ctx *c, fv_record *r, const char *field, const char *v)
{
    return fv_record_set_text(r, field, v) == FV_OK ? 0 : fv_fail(c, field);
}

/* One visit, as an app records it. */
static int fv_visit(fv_ctx *c, const vg_visit *v)
{
    fv_record *r = NULL;
    if (fv_record_new(c->db, "visit", &r) != FV_OK) return fv_fail(c, "fv_record_new");
    int rc = fv_set(c, r, "customer_id", c->customer);
    if (rc == 0) rc = fv_set(c, r, "at", v->at);
    if (rc == 0) rc = fv_set(c, r, "method", v->method);
    if (rc == 0) rc = fv_set(c, r, "participants", v->participants);
    if (rc == 0) rc = fv_set(c, r, "summary", v->summary);
    if (rc == 0) rc = fv_set(c, r, "feedback", v->feedback);
    if (rc == 0) rc = fv_set(c, r, "agreement", v->agreement);
    if (rc == 0) rc = fv_set(c, r, "next_action", v->next_action);
    if (rc == 0) rc = fv_set(c, r, "next_action_owner", v->next_action_owner);
    if (rc == 0) rc = fv_set(c, r, "next_action_due", v->next_action_due);
    if (rc == 0 && fv_record_set_real(r, "lat", v->lat) != FV_OK) rc = fv_fail(c, "lat");
    if (rc == 0 && fv_record_set_real(r, "lon", v->lon) != FV_OK) rc = fv_fail(c, "lon");
    if (rc == 0 && fv_insert(c->db, r) != FV_OK) rc = fv_fail(c, "fv_insert");
    fv_record_free(r);
    return rc;
}

__attribute__((noinline)) int bench_measured_fv(fv_ctx *c);
__attribute__((noinline)) int bench_measured_fv(fv_ctx *c)
{
    if (c->batch && fv_begin(c->db) != FV_OK) return fv_fail(c, "fv_begin");
    for (long i = 0; i < c->count; i++)
        if (fv_visit(c, &c->visits[i]) != 0) return -1;
    if (c->batch && fv_commit(c->db) != FV_OK) return fv_fail(c, "fv_commit");
    return 0;
}

static fv_status open_store(const char *path, fv_db **db)
{
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.passphrase = PASS;
    cfg.passphrase_len = strlen(PASS);
    cfg.flags = FV_OPEN_CREATE;
    cfg.kdf_mem_kib = 8192; /* the minimum: key derivation is not what is measured */
    cfg.kdf_passes = 1;
    cfg.user = "bench";
    return fv_open(db, &cfg);
}

static int fv_peer_run(const char *path, int batch, long count, unsigned seed, double *secs,
                       char *err, size_t errcap)
{
    fv_ctx c;
    memset(&c, 0, sizeof c);
    c.batch = batch;
    c.count = count;
    if (open_store(path, &c.db) != FV_OK) {
        snprintf(err, errcap, "open: %s", fv_errmsg(c.db));
        fv_close(c.db);
        return -1;
    }
    fv_record *cu = NULL;
    char name[64];
    vg_customer_name(seed, 0, name, sizeof name);
    if (fv_record_new(c.db, "customer", &cu) != FV_OK || fv_record_set_text(cu, "name", name) != FV_OK ||
        fv_insert(c.db, cu) != FV_OK) {
        snprintf(err, errcap, "customer: %s", fv_errmsg(c.db));
        fv_record_free(cu);
        fv_close(c.db);
        return -1;
    }
    snprintf(c.customer, sizeof c.customer, "%s", fv_record_id(cu));
    fv_record_free(cu);
    c.visits = calloc((size_t)count, sizeof *c.visits);
    if (c.visits == NULL) {
        fv_close(c.db);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    for (long i = 0; i < count; i++) vg_visit_make(seed, (uint64_t)i, &c.visits[i]);
    double t0 = bench_now();
    int rc = bench_measured_fv(&c);
    *secs = bench_now() - t0;
    if (rc != 0) snprintf(err, errcap, "%s", c.err);
    if (fv_close(c.db) != FV_OK && rc == 0) {
        snprintf(err, errcap, "close failed");
        rc = -1;
    }
    free(c.visits);
    return rc;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b != NULL) b[n] = '\0';
    fclose(f);
    return b;
}

/* fv_bench peer --peer fieldvault|plain|session --db P --schema F --mode M
 *                --count N --seed S */
int bench_peer_main(int argc, char **argv)
{
    const char *peer = NULL, *db = NULL, *schema = NULL, *mode = "single";
    long count = 1000;
    unsigned seed = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--peer") == 0) peer = argv[i + 1];
        else if (strcmp(argv[i], "--db") == 0) db = argv[i + 1];
        else if (strcmp(argv[i], "--schema") == 0) schema = argv[i + 1];
        else if (strcmp(argv[i], "--mode") == 0) mode = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0) count = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0) seed = (unsigned)strtoul(argv[i + 1], NULL, 10);
    }
    if (peer == NULL || db == NULL || count <= 0) {
        fprintf(stderr, "usage: fv_bench peer --peer NAME --db PATH [--schema FILE] ...\n");
        return 2;
    }
    int batch = strcmp(mode, "batch") == 0;
    char err[512] = "";
    double secs = 0;
    int rc;
    if (strcmp(peer, "fieldvault") == 0) {
        rc = fv_peer_run(db, batch, count, seed, &secs, err, sizeof err);
    } else {
        char *sql = schema ? slurp(schema) : NULL;
        if (sql == NULL) {
            fprintf(stderr, "error: cannot read the schema file\n");
            return 1;
        }
        peer_opts o;
        memset(&o, 0, sizeof o);
        o.path = db;
        o.schema_sql = sql;
        o.batch = batch;
        o.count = count;
        o.seed = seed;
        o.session = strcmp(peer, "session") == 0;
        o.page_size = 4096;
        peer_result r;
        rc = peer_sql_run(&o, &r, err, sizeof err);
        secs = r.seconds;
        free(sql);
    }
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    char wal[1100];
    snprintf(wal, sizeof wal, "%s-wal", db);
    printf("result visits=%ld seconds=%.9f bytes=%lld\n", count, secs,
           bench_file_size(db) + bench_file_size(wal));
    return 0;
}

/* ---- the schema every peer gets: fieldvault's own ---- */

static int dump_schema(const char *dir, const char *out)
{
    char *path = bench_path(dir, "schema.fv");
    fv_db *db = NULL;
    int rc = -1;
    if (path != NULL && open_store(path, &db) == FV_OK) {
        sqlite3_stmt *s = NULL;
        FILE *f = fopen(out, "w");
        /* the domain tables (not fieldvault's own fv_* tables) and their
         * indexes, tables first */
        if (f != NULL &&
            sqlite3_prepare_v2(db->sql,
                               "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND"
                               " name NOT LIKE 'fv\\_%' ESCAPE '\\' ORDER BY type DESC, rowid",
                               -1, &s, NULL) == SQLITE_OK) {
            int n = 0;
            while (sqlite3_step(s) == SQLITE_ROW) {
                fprintf(f, "%s;\n", (const char *)sqlite3_column_text(s, 0));
                n++;
            }
            rc = n >= 3 ? 0 : -1;
        }
        sqlite3_finalize(s);
        if (f != NULL && fclose(f) != 0) rc = -1;
    } else {
        bench_log("cannot create a store for the schema: %s", fv_errmsg(db));
    }
    fv_close(db);
    free(path);
    return rc;
}

/* ---- orchestration ---- */

enum { P_FV, P_PLAIN, P_SESSION, P_CIPHER, P_CIPHER4K, NPEERS };

static const struct {
    const char *name, *label, *short_label;
} peers[NPEERS] = {
    {"fieldvault", "fieldvault (encrypted pages + change capture)", "fieldvault"},
    {"plain", "plain SQLite (no encryption, no capture)", "plain SQLite"},
    {"session", "SQLite + session extension (capture, no encryption)", "SQLite+session"},
    {"sqlcipher", "SQLCipher 3.4.1 as it comes (1 KiB pages)", "SQLCipher 1K"},
    {"sqlcipher4k", "SQLCipher 3.4.1 tuned (4 KiB pages)", "SQLCipher 4K"},
};

/* argv for one measurement of peer p into a[] (strings in store[]). */
static void peer_argv(int p, const char *db, const char *schema, const char *mode, long count,
                      const char **a, char store[4][64])
{
    size_t n = 0;
    snprintf(store[0], 64, "%ld", count);
    snprintf(store[1], 64, "%u", g_cfg.seed);
    if (p == P_CIPHER || p == P_CIPHER4K) {
        a[n++] = FV_BENCH_SQLCIPHER;
    } else {
        a[n++] = g_cfg.self;
        a[n++] = "peer";
        a[n++] = "--peer";
        a[n++] = peers[p].name;
    }
    a[n++] = "--db";
    a[n++] = db;
    a[n++] = "--schema";
    a[n++] = schema;
    a[n++] = "--mode";
    a[n++] = mode;
    a[n++] = "--count";
    a[n++] = store[0];
    a[n++] = "--seed";
    a[n++] = store[1];
    if (p == P_CIPHER4K) {
        a[n++] = "--page-size";
        a[n++] = "4096";
    }
    a[n] = NULL;
}

static void remove_db(const char *db)
{
    char wal[1100];
    unlink(db);
    snprintf(wal, sizeof wal, "%s-wal", db);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-journal", db);
    unlink(wal);
}

/* One timed run: visits per second, or NAN. */
static double run_peer(int p, const char *dir, const char *schema, const char *mode, long count,
                       long long *bytes)
{
    char *db = bench_path(dir, "peer.db");
    const char *argv[24];
    char store[4][64];
    remove_db(db);
    peer_argv(p, db, schema, mode, count, argv, store);
    bench_child c = bench_run(argv);
    double secs = bench_result_field(c.out, "seconds");
    if (bytes) *bytes = (long long)bench_result_field(c.out, "bytes");
    if (c.status != 0 || isnan(secs) || secs <= 0) {
        bench_log("%s (%s) failed (status %d): %s", peers[p].name, mode, c.status,
                  c.err ? c.err : "");
        secs = BR_NAN;
    }
    bench_child_free(&c);
    remove_db(db);
    free(db);
    return (double)count / secs;
}

/* Instructions in the timed loop per visit, under callgrind; NAN if not
 * available. */
static double run_callgrind(int p, const char *dir, const char *schema, const char *mode,
                            long count)
{
    char *db = bench_path(dir, "cg.db");
    char *out = bench_path(dir, "callgrind.out");
    char outarg[1200];
    snprintf(outarg, sizeof outarg, "--callgrind-out-file=%s", out);
    const char *pa[24];
    char store[4][64];
    remove_db(db);
    unlink(out);
    peer_argv(p, db, schema, mode, count, pa, store);
    const char *argv[32];
    size_t n = 0;
    argv[n++] = "/usr/bin/valgrind";
    argv[n++] = "--tool=callgrind";
    argv[n++] = "--collect-atstart=no";
    argv[n++] = "--toggle-collect=bench_measured_*";
    argv[n++] = outarg;
    for (size_t k = 0; pa[k] != NULL; k++) argv[n++] = pa[k];
    argv[n] = NULL;
    bench_child c = bench_run(argv);
    double ir = BR_NAN;
    char *text = NULL;
    if (c.status == 0) {
        FILE *f = fopen(out, "r");
        if (f != NULL) {
            char line[512];
            while (fgets(line, sizeof line, f) != NULL) {
                if (strncmp(line, "summary:", 8) == 0 || strncmp(line, "totals:", 7) == 0) {
                    ir = strtod(strchr(line, ':') + 1, NULL);
                    break;
                }
            }
            fclose(f);
        }
    } else {
        bench_log("callgrind %s (%s) failed (status %d): %s", peers[p].name, mode, c.status,
                  c.err ? c.err : "");
    }
    free(text);
    bench_child_free(&c);
    remove_db(db);
    unlink(out);
    free(db);
    free(out);
    return ir / (double)count;
}

static void ratio_text(double r, char *buf, size_t cap)
{
    if (isnan(r)) snprintf(buf, cap, "n/a");
    else snprintf(buf, cap, "%.2fx", r);
}

static void one_mode(const char *dir, const char *schema, int batch)
{
    const char *mode = batch ? "batch" : "single";
    long count = batch ? (g_cfg.quick ? 1000 : 10000) : (g_cfg.quick ? 300 : 3000);
    int reps = g_cfg.reps;
    double rate[NPEERS][16];
    long long bytes[NPEERS] = {0};
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < NPEERS; k++) {
            int p = (k + r) % NPEERS;
            rate[p][r] = run_peer(p, dir, schema, mode, count, &bytes[p]);
            bench_log("visits %s rep %d: %-12s %10.0f visits/s", mode, r + 1, peers[p].name,
                      rate[p][r]);
        }
    }
    double med[NPEERS], vs_plain[NPEERS], fv_over[NPEERS];
    for (int p = 0; p < NPEERS; p++) {
        double rp[16], rf[16];
        for (int r = 0; r < reps; r++) {
            rp[r] = rate[p][r] / rate[P_PLAIN][r];
            rf[r] = rate[P_FV][r] / rate[p][r];
        }
        med[p] = bench_median(rate[p], (size_t)reps);
        vs_plain[p] = bench_median(rp, (size_t)reps);
        fv_over[p] = bench_median(rf, (size_t)reps);
        char name[96];
        snprintf(name, sizeof name, "visits_%s_%s_per_s", mode, peers[p].name);
        br_raw(name, rate[p], (size_t)reps);
    }
    char bench[96];
    snprintf(bench, sizeof bench, batch ? "Record a visit: %ld in one batch"
                                        : "Record a visit: one transaction each (%ld)",
             count);
    for (int p = 0; p < NPEERS; p++) {
        char note[300];
        if (p == P_FV)
            snprintf(note, sizeof note, "median of %d; %lld bytes on disk after", reps, bytes[p]);
        else
            snprintf(note, sizeof note, "fieldvault / this: %.2fx; %lld bytes on disk after",
                     fv_over[p], bytes[p]);
        br_row("1", bench, peers[p].label, med[p], "visits/s", vs_plain[p], "of plain", note);
    }
    const char *m = batch ? "batch" : "1 tx";
    char label[64];
    snprintf(label, sizeof label, "visit %s vs plain SQLite", m);
    br_chart(label, fv_over[P_PLAIN], batch ? 0.6 : 0.5);
    snprintf(label, sizeof label, "visit %s vs SQLite+session", m);
    br_chart(label, fv_over[P_SESSION], BR_NAN);
    snprintf(label, sizeof label, "visit %s vs SQLCipher 1K", m);
    br_chart(label, fv_over[P_CIPHER], 2.0);
    snprintf(label, sizeof label, "visit %s vs SQLCipher 4K", m);
    br_chart(label, fv_over[P_CIPHER4K], 0.85);

    /* targets */
    char t[200], meas[300], a[32], b[32];
    double floor_ = batch ? 0.6 : 0.5;
    snprintf(t, sizeof t, "%s visit: at least %.0f%% of plain SQLite's rate",
             batch ? "Batched" : "Single-transaction", floor_ * 100);
    ratio_text(fv_over[P_PLAIN], a, sizeof a);
    snprintf(meas, sizeof meas, "%s (%.0f vs %.0f visits/s)", a, med[P_FV], med[P_PLAIN]);
    br_target(t, meas, isnan(fv_over[P_PLAIN]) ? -1 : fv_over[P_PLAIN] >= floor_);
    snprintf(t, sizeof t, "%s: at least 0.85x tuned SQLCipher (4 KiB)", batch ? "Batched" : "Single-transaction");
    ratio_text(fv_over[P_CIPHER4K], a, sizeof a);
    snprintf(meas, sizeof meas, "%s (%.0f vs %.0f visits/s)", a, med[P_FV], med[P_CIPHER4K]);
    br_target(t, meas, isnan(fv_over[P_CIPHER4K]) ? -1 : fv_over[P_CIPHER4K] >= 0.85);
    snprintf(t, sizeof t, "%s: at least 2x SQLCipher as it comes (1 KiB)", batch ? "Batched" : "Single-transaction");
    ratio_text(fv_over[P_CIPHER], b, sizeof b);
    snprintf(meas, sizeof meas, "%s (%.0f vs %.0f visits/s)", b, med[P_FV], med[P_CIPHER]);
    br_target(t, meas, isnan(fv_over[P_CIPHER]) ? -1 : fv_over[P_CIPHER] >= 2.0);

    if (!g_cfg.callgrind) return;
    long cg = batch ? (g_cfg.quick ? 200 : 2000) : (g_cfg.quick ? 100 : 1000);
    double ir[NPEERS];
    for (int p = 0; p < NPEERS; p++) {
        ir[p] = run_callgrind(p, dir, schema, mode, cg);
        bench_log("callgrind %s: %-12s %.0f instructions/visit", mode, peers[p].name, ir[p]);
    }
    snprintf(bench, sizeof bench, "Instructions per visit, %s (callgrind, %ld visits)",
             batch ? "batched" : "one transaction each", cg);
    for (int p = 0; p < NPEERS; p++) {
        char note[200];
        snprintf(note, sizeof note, "user-space instructions in the timed loop; fieldvault / this: %.2fx",
                 ir[P_FV] / ir[p]);
        br_row("1", bench, peers[p].label, ir[p], "instr/visit", ir[p] / ir[P_PLAIN],
               "of plain", p == P_FV ? "user-space instructions in the timed loop (stable figure)" : note);
    }
    snprintf(label, sizeof label, "instr. %s: plain / fieldvault", m);
    br_chart(label, ir[P_PLAIN] / ir[P_FV], BR_NAN);
    snprintf(label, sizeof label, "instr. %s: SQLCipher 4K / fieldvault", m);
    br_chart(label, ir[P_CIPHER4K] / ir[P_FV], BR_NAN);
}

int bench_visits(void)
{
    char *dir = bench_tmpdir("visits");
    if (dir == NULL) return -1;
    char *schema = bench_path(dir, "schema.sql");
    int rc = dump_schema(dir, schema);
    if (rc != 0) {
        bench_log("cannot dump fieldvault's schema");
        br_missing("1", "Record a visit", "fieldvault's schema could not be read");
    } else {
        one_mode(dir, schema, 0);
        one_mode(dir, schema, 1);
    }
    bench_rmtree(dir);
    free(schema);
    free(dir);
    return rc;
}
