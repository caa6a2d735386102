/*
 * bench_memory.c - item 5: peak memory (resident set) of a
 * device syncing a backlog of about 10k, 100k and 1M changes (2k, 10k, 20k
 * with --quick), which must stay flat, and of fvd serving it (SQLite
 * backend).  Each step is its own process, so each peak (VmHWM, read by
 * the process itself at its end) is that step's:
 *
 *   fill: a device records the backlog (visits in transactions of 1,000);
 *   push: the same store reopened, one fv_sync time-boxed to 60 s (20 s
 *         with --quick): it pushes the whole backlog, or as much as fits -
 *         choosing each push batch scans the whole outbox (sync/client.c,
 *         plan_batch), so a 1M backlog cannot be pushed in minutes;
 *   seed: when the push stopped early, helper devices of at most 100k
 *         changes each push the rest, so that fvd holds the full backlog;
 *   pull: a second, new device (a director) enrols and pulls it all;
 *   fvd:  the server's peak over all of it, taken when it is stopped.
 *
 * The child side is `fv_bench mem-child fill|push|seed|pull ...`.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_fvd.h"

/* fv_bench mem-child STEP --store P [--server URL --code C] [--visits N]
 *                    [--max-ms T] */
int bench_memory_child(int argc, char **argv)
{
    const char *step = argc > 2 ? argv[2] : "", *store = NULL, *server = NULL, *code = NULL;
    long visits = 0, max_ms = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--max-ms") == 0) max_ms = atol(argv[i + 1]);
        if (strcmp(argv[i], "--store") == 0) store = argv[i + 1];
        else if (strcmp(argv[i], "--server") == 0) server = argv[i + 1];
        else if (strcmp(argv[i], "--code") == 0) code = argv[i + 1];
        else if (strcmp(argv[i], "--visits") == 0) visits = atol(argv[i + 1]);
    }
    if (store == NULL) return 2;
    fv_db *db = NULL;
    int create = strcmp(step, "push") != 0;
    if (bdev_open(store, create, &db) != FV_OK) {
        fv_close(db);
        return 1;
    }
    int rc = 1;
    double t0 = bench_now();
    uint64_t pushed = 0, pulled = 0;
    if (strcmp(step, "fill") == 0) {
        if (server && code && fv_enroll(db, server, code, NULL) == FV_OK &&
            bdev_fill(db, visits, g_cfg.seed ? g_cfg.seed : 20260301) == 0)
            rc = 0;
        else
            fprintf(stderr, "fill: %s\n", fv_errmsg(db));
    } else if (strcmp(step, "push") == 0) {
        fv_sync_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.size = sizeof cfg;
        cfg.max_ms = max_ms;
        rc = bdev_sync(db, &cfg, &pushed, &pulled) == FV_OK ? 0 : 1;
    } else if (strcmp(step, "seed") == 0) {
        if (server && code && fv_enroll(db, server, code, NULL) == FV_OK &&
            bdev_fill(db, visits, 77) == 0 && bdev_sync(db, NULL, &pushed, &pulled) == FV_OK)
            rc = 0;
        else
            fprintf(stderr, "seed: %s\n", fv_errmsg(db));
    } else if (strcmp(step, "pull") == 0) {
        if (server && code && fv_enroll(db, server, code, NULL) == FV_OK)
            rc = bdev_sync(db, NULL, &pushed, &pulled) == FV_OK ? 0 : 1;
        else
            fprintf(stderr, "pull: %s\n", fv_errmsg(db));
    }
    double secs = bench_now() - t0;
    if (fv_close(db) != FV_OK) rc = 1;
    if (rc == 0)
        printf("result pushed=%llu pulled=%llu seconds=%.3f hwm_kib=%ld\n", (unsigned long long)pushed,
               (unsigned long long)pulled, secs, bench_hwm_kib(0));
    return rc;
}

/* The push time box: 60 s (20 s with --quick); FV_BENCH_PUSH_MAX_MS
 * overrides it (to exercise the helper path). */
static long push_box_ms(void)
{
    const char *e = getenv("FV_BENCH_PUSH_MAX_MS");
    return e && atol(e) > 0 ? atol(e) : g_cfg.quick ? 20000 : 60000;
}

typedef struct mem_run {
    long fill_kib, push_kib, pull_kib, fvd_kib;
    double pushed, pulled, push_s, pull_s;
    int helpers;
} mem_run;

static int child(const char *step, const char *store, const char *server, const char *code,
                 long visits, long *kib, double *count, double *secs)
{
    char v[32], t[32];
    snprintf(v, sizeof v, "%ld", visits);
    snprintf(t, sizeof t, "%ld", push_box_ms());
    const char *argv[16];
    size_t n = 0;
    argv[n++] = g_cfg.self;
    argv[n++] = "mem-child";
    argv[n++] = step;
    argv[n++] = "--store";
    argv[n++] = store;
    if (server != NULL) {
        argv[n++] = "--server";
        argv[n++] = server;
        argv[n++] = "--code";
        argv[n++] = code;
    }
    argv[n++] = "--visits";
    argv[n++] = v;
    argv[n++] = "--max-ms";
    argv[n++] = t;
    argv[n] = NULL;
    bench_child c = bench_run(argv);
    int rc = c.status == 0 ? 0 : -1;
    if (rc != 0) bench_log("mem-child %s failed (%d): %s", step, c.status, c.err ? c.err : "");
    *kib = (long)bench_result_field(c.out, "hwm_kib");
    if (count) {
        double p = bench_result_field(c.out, strcmp(step, "push") == 0 ? "pushed" : "pulled");
        *count = p;
    }
    if (secs) *secs = bench_result_field(c.out, "seconds");
    bench_child_free(&c);
    return rc;
}

static int one_size(long visits, mem_run *m)
{
    memset(m, 0, sizeof *m);
    bfvd s;
    if (bfvd_start(&s, 0, "mem") != 0) return -1;
    char *dir = bench_tmpdir("mem-dev");
    char *pa = bench_path(dir, "a.fv"), *pb = bench_path(dir, "b.fv");
    char ca[64], cb[64];
    int rc = -1;
    if (bfvd_add_user(&s, "ana", "rep", "north", ca, sizeof ca) == 0 &&
        bfvd_add_user(&s, "dora", "director", "north", cb, sizeof cb) == 0 &&
        child("fill", pa, s.url, ca, visits, &m->fill_kib, NULL, NULL) == 0 &&
        child("push", pa, NULL, NULL, 0, &m->push_kib, &m->pushed, &m->push_s) == 0) {
        /* what the time box left: helpers push it, 100k changes at most each */
        long left = visits * 12 + 4 - (long)m->pushed;
        rc = 0;
        while (rc == 0 && left > 4) {
            long v = (left - 4 + 11) / 12;
            if (v > 8333) v = 8333;
            char name[32], code[64];
            snprintf(name, sizeof name, "seed%d", ++m->helpers);
            char *ph = bench_path(dir, name);
            long kib;
            rc = bfvd_add_user(&s, name, "rep", "north", code, sizeof code) == 0 &&
                         child("seed", ph, s.url, code, v, &kib, NULL, NULL) == 0
                     ? 0
                     : -1;
            free(ph);
            left -= v * 12 + 4;
        }
        if (rc == 0 && child("pull", pb, s.url, cb, 0, &m->pull_kib, &m->pulled, &m->pull_s) != 0)
            rc = -1;
    }
    bfvd_stop(&s);
    m->fvd_kib = s.maxrss_kib;
    bench_rmtree(dir);
    free(pa);
    free(pb);
    free(dir);
    return rc;
}

int bench_memory(void)
{
    static const long full[3] = {833, 8333, 83333}, quick[3] = {167, 833, 1667};
    const long *sizes = g_cfg.quick ? quick : full;
    mem_run m[3];
    int ok[3];
    for (int i = 0; i < 3; i++) {
        ok[i] = one_size(sizes[i], &m[i]) == 0;
        bench_log("memory %ld visits: fill %ld KiB, push %ld KiB (%.0f changes, %.1f s), %d helpers, "
                  "pull %ld KiB (%.0f changes, %.1f s), fvd %ld KiB%s",
                  sizes[i], m[i].fill_kib, m[i].push_kib, m[i].pushed, m[i].push_s, m[i].helpers,
                  m[i].pull_kib, m[i].pulled, m[i].pull_s, m[i].fvd_kib, ok[i] ? "" : " (FAILED)");
    }
    int failed = 0;
    for (int i = 0; i < 3; i++) {
        long changes = sizes[i] * 12 + 4;
        char bench[96], note[300];
        snprintf(bench, sizeof bench, "Peak memory, backlog of %ld changes (fvd on SQLite)", changes);
        if (!ok[i]) {
            br_missing("5", bench, "the run failed (see the log)");
            failed = 1;
            continue;
        }
        double base = (double)m[0].push_kib;
        if (m[i].helpers == 0)
            snprintf(note, sizeof note, "one fv_sync: the whole backlog (%.0f changes) pushed in %.1f s",
                     m[i].pushed, m[i].push_s);
        else
            snprintf(note, sizeof note,
                     "one fv_sync time-boxed to %.0f s: %.0f of %ld changes pushed (the outbox is scanned "
                     "per batch); %d helper devices pushed the rest",
                     (double)push_box_ms() / 1000, m[i].pushed, changes, m[i].helpers);
        br_row("5", bench, "device pushing it", (double)m[i].push_kib / 1024, "MiB peak RSS",
               ok[0] ? (double)m[i].push_kib / base : BR_NAN, "of the smallest", note);
        snprintf(note, sizeof note, "a new device enrols and pulls %.0f changes in %.1f s (%.0f/s)",
                 m[i].pulled, m[i].pull_s, m[i].pulled / m[i].pull_s);
        br_row("5", bench, "device pulling it", (double)m[i].pull_kib / 1024, "MiB peak RSS",
               ok[0] ? (double)m[i].pull_kib / (double)m[0].pull_kib : BR_NAN, "of the smallest", note);
        br_row("5", bench, "device recording it", (double)m[i].fill_kib / 1024, "MiB peak RSS", BR_NAN,
               NULL, "visits written in transactions of 1,000 (not a sync figure)");
        br_row("5", bench, "fvd serving the push and the pull", (double)m[i].fvd_kib / 1024,
               "MiB peak RSS", ok[0] ? (double)m[i].fvd_kib / (double)m[0].fvd_kib : BR_NAN,
               "of the smallest", "");
    }
    if (ok[0] && ok[2]) {
        long lo = m[0].push_kib > m[0].pull_kib ? m[0].push_kib : m[0].pull_kib;
        long hi = m[2].push_kib > m[2].pull_kib ? m[2].push_kib : m[2].pull_kib;
        double growth = (double)hi / (double)lo;
        char meas[300], t[200];
        snprintf(meas, sizeof meas,
                 "%.1f MB at %ld changes vs %.1f MB at %ld (%+.0f%%); the pull moved all of them, the "
                 "time-boxed push %.0f",
                 (double)hi * 1024 / 1e6, sizes[2] * 12 + 4, (double)lo * 1024 / 1e6, sizes[0] * 12 + 4,
                 (growth - 1) * 100, m[2].pushed);
        snprintf(t, sizeof t, "Peak device memory syncing %s changes: under 16 MB and within 10%% of the %s figure",
                 g_cfg.quick ? "the largest backlog (quick run: not 1M)" : "1M",
                 g_cfg.quick ? "smallest" : "10k");
        br_target(t, meas, (double)hi * 1024 < 16e6 && growth <= 1.10);
        br_chart("device memory: smallest / largest backlog", 1.0 / growth, 1.0 / 1.10);
    } else {
        br_target("Peak device memory syncing 1M changes: under 16 MB and within 10% of the 10k figure",
                  "not measured: a run failed", -1);
    }
    return failed ? -1 : 0;
}
