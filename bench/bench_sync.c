/*
 * bench_sync.c - item 4: end-to-end sync on loopback.  One device records
 * a backlog of about 100,000 changes (8,334 visits of 12 fields and their
 * customer; 20,000 with --quick), pushes it through fvd with fv_sync, and
 * a second device (a director: it may read every row) pulls it all; on
 * fvd's SQLite backend and on PostgreSQL (a throwaway cluster).  Default
 * client settings (push batches of 500, pull batches of 1,000), libcurl
 * over 127.0.0.1.  Each repetition gets a fresh store of record and fresh
 * devices; the recording is not timed.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_fvd.h"

typedef struct sync_run {
    double push_s, pull_s;
    uint64_t pushed, pulled, pulled_back;
} sync_run;

static int one_run(int pg, long nvisits, sync_run *out)
{
    memset(out, 0, sizeof *out);
    bfvd s;
    if (bfvd_start(&s, pg, pg ? "sync-pg" : "sync-sqlite") != 0) return -1;
    char *dir = bench_tmpdir("sync-dev");
    char *pa = bench_path(dir, "a.fv"), *pb = bench_path(dir, "b.fv");
    char ca[64], cb[64];
    fv_db *a = NULL, *b = NULL;
    int rc = -1;
    if (bfvd_add_user(&s, "ana", "rep", "north", ca, sizeof ca) == 0 &&
        bfvd_add_user(&s, "dora", "director", "north", cb, sizeof cb) == 0 &&
        bdev_open(pa, 1, &a) == FV_OK && bdev_open(pb, 1, &b) == FV_OK &&
        fv_enroll(a, s.url, ca, NULL) == FV_OK && fv_enroll(b, s.url, cb, NULL) == FV_OK &&
        bdev_fill(a, nvisits, g_cfg.seed) == 0) {
        double t0 = bench_now();
        fv_status st = bdev_sync(a, NULL, &out->pushed, &out->pulled_back);
        out->push_s = bench_now() - t0;
        uint64_t pushed_b = 0;
        t0 = bench_now();
        if (st == FV_OK) st = bdev_sync(b, NULL, &pushed_b, &out->pulled);
        out->pull_s = bench_now() - t0;
        if (st == FV_OK && out->pulled == out->pushed) rc = 0;
        else bench_log("sync: pushed %llu, pulled %llu", (unsigned long long)out->pushed,
                       (unsigned long long)out->pulled);
    } else {
        bench_log("sync: setup failed: %s / %s", a ? fv_errmsg(a) : "-", b ? fv_errmsg(b) : "-");
    }
    fv_close(a);
    fv_close(b);
    bfvd_stop(&s);
    bench_rmtree(dir);
    free(pa);
    free(pb);
    free(dir);
    return rc;
}

int bench_sync(void)
{
    long nvisits = g_cfg.quick ? 1667 : 8334; /* x12 + 4: 20,008 / 100,012 changes */
    /* at most 3 repetitions: each records and moves 100k changes twice */
    int reps = g_cfg.reps < 3 ? g_cfg.reps : 3;
    int failed = 0;
    double e2e_sqlite = BR_NAN;
    for (int pg = 0; pg < 2; pg++) {
        const char *name = pg ? "PostgreSQL" : "SQLite";
        double push[16], pull[16], e2e[16], total[16];
        uint64_t n = 0, back = 0;
        int ok = 0;
        for (int r = 0; r < reps; r++) {
            sync_run run;
            if (one_run(pg, nvisits, &run) != 0) {
                bench_log("sync %s rep %d failed", name, r + 1);
                continue;
            }
            n = run.pushed;
            back = run.pulled_back;
            push[ok] = (double)run.pushed / run.push_s;
            pull[ok] = (double)run.pulled / run.pull_s;
            total[ok] = run.push_s + run.pull_s;
            e2e[ok] = (double)run.pushed / total[ok];
            bench_log("sync %s rep %d: %llu changes, push %.0f/s, pull %.0f/s, total %.1f s "
                      "(the pusher pulled back %llu)",
                      name, r + 1, (unsigned long long)n, push[ok], pull[ok], total[ok],
                      (unsigned long long)back);
            ok++;
        }
        if (pg) bfvd_pg_stop();
        char bench[96];
        snprintf(bench, sizeof bench, "End-to-end sync, %llu changes, fvd on %s",
                 (unsigned long long)n, name);
        if (ok == 0) {
            br_missing("4", bench, "every run failed (see the log)");
            failed = 1;
            continue;
        }
        double mpush = bench_median(push, (size_t)ok), mpull = bench_median(pull, (size_t)ok);
        double me2e = bench_median(e2e, (size_t)ok), mtot = bench_median(total, (size_t)ok);
        char note[300];
        snprintf(note, sizeof note, "push then pull, %.1f s in all (median of %d)", mtot, ok);
        br_row("4", bench, "device -> fvd -> device", me2e, "changes/s", BR_NAN, NULL, note);
        snprintf(note, sizeof note,
                 "fv_sync of the recording device, batches of 500; it also pulled back %llu of its own changes",
                 (unsigned long long)back);
        br_row("4", bench, "push", mpush, "changes/s", BR_NAN, NULL, note);
        br_row("4", bench, "pull", mpull, "changes/s", BR_NAN, NULL, "fv_sync of a second device, batches of 1,000");
        char raw[64];
        snprintf(raw, sizeof raw, "sync_%s_e2e_changes_per_s", pg ? "pg" : "sqlite");
        br_raw(raw, e2e, (size_t)ok);
        if (!pg) e2e_sqlite = me2e;
        char label[64];
        snprintf(label, sizeof label, "e2e sync (%s) / 50k target", name);
        br_chart(label, me2e / 50000.0, 1.0);
    }
    char meas[200];
    snprintf(meas, sizeof meas, "%.0f changes/s (push + pull, SQLite backend)", e2e_sqlite);
    br_target("End-to-end sync: at least 50,000 changes/s on loopback (SQLite backend)", meas,
              isnan(e2e_sqlite) ? -1 : e2e_sqlite >= 50000);
    return failed ? -1 : 0;
}
