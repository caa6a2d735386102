/*
 * test_reliability.c - device-side crash and fault tests against a real fvd
 * (tests/fvdproc.h) that the other suites do not cover, and the regression
 * tests for the bugs the fuzzers and the soak found (issue 7).
 *
 *  - SIGKILL of a device process while it applies pulled batches (many
 *    kills at random moments; the first sync is timed to spread them over
 *    the pull): after each kill the store opens, checks clean, holds every
 *    acknowledged local write exactly once, and the next sync converges;
 *  - clock faults by process (FV_CLOCK_SKEW_MS through the fv binary):
 *    minutes (inside and outside the 5-minute signing window), hours, and
 *    a day either way: the ones within the drift bound sync and converge,
 *    a causally later edit wins even from a clock that is a day behind, one
 *    beyond the bound is refused clearly and keeps its outbox;
 *  - regression tests, one per bug found (each names it).
 *
 * FV_SEED reproduces a run (printed); FV_CRASH_ITERS scales the kill loop.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "faultproxy.h"
#include "fieldvault.h"
#include "fvdproc.h"
#include "internal.h"
#include "testutil.h"
#include "wire.h"

static unsigned seed, seed0;
static int iters = 26;

/* ---- helpers ---- */

typedef struct fx {
    char *dir;
    fvdp_backend b;
    fvdp_server s;
} fx;

static fv_status open_dev(const char *path, const char *user, unsigned flags, fv_db **db)
{
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.passphrase = "pw";
    cfg.passphrase_len = 2;
    cfg.flags = flags;
    cfg.kdf_mem_kib = 8192;
    cfg.kdf_passes = 1;
    cfg.user = user;
    return fv_open(db, &cfg);
}

static int setup(void **state)
{
#ifndef FVD_BIN
    (void)state;
    return -1;
#else
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("reliability");
    f->b.fvd_bin = FVD_BIN;
    f->b.name = "sqlite";
    snprintf(f->b.data, sizeof f->b.data, "%s/fvd-data", f->dir);
    snprintf(f->s.log, sizeof f->s.log, "%s/fvd.log", f->dir);
    if (fvdp_start(&f->b, &f->s, 0) != 0) return -1;
    *state = f;
    return 0;
#endif
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f == NULL) return 0;
    fvdp_kill(&f->s, SIGTERM);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void enroll_via(fx *f, fv_db *db, const char *user, const char *role, const char *server)
{
    char *code = fvdp_add_user(&f->b, user, role, "north");
    assert_non_null(code);
    fv_status st = fv_enroll(db, server, code, NULL);
    if (st != FV_OK) fprintf(stderr, "enroll %s: %s\n", user, fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    free(code);
}

static fv_status sync_via(fv_db *db, const char *server, fv_sync_result *res)
{
    fv_sync_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.server = server;
    cfg.request_timeout_ms = 5000;
    fv_sync_result local;
    if (res == NULL) res = &local;
    memset(res, 0, sizeof *res);
    res->size = sizeof *res;
    return fv_sync(db, &cfg, res);
}

static void sync_ok(fv_db *db, const char *what)
{
    fv_sync_result r;
    fv_status st = sync_via(db, NULL, &r);
    if (st != FV_OK) fprintf(stderr, "sync %s: %s\n", what, fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    assert_true(r.drained);
}

static char *add_customer(fv_db *db, const char *name)
{
    fv_record *r;
    assert_int_equal(fv_record_new(db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", name), FV_OK);
    assert_int_equal(fv_insert(db, r), FV_OK);
    char *id = strdup(fv_record_id(r));
    fv_record_free(r);
    return id;
}

static int count_where(fv_db *db, const char *sql, const char *arg)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db->sql, sql, -1, &s, NULL), SQLITE_OK);
    if (arg != NULL) sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return n;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- SIGKILL while applying pulled batches ---- */

typedef struct child_arg {
    const char *path;
    const char *customer;
    int iter;
} child_arg;

/* The device process: three acknowledged visits, then a sync that mostly
 * pulls (other devices pushed thousands of changes).  Lines on wfd:
 * "ack SUMMARY" after each visit commits, "sync" before fv_sync, "done"
 * after it. */
static void device_child(int wfd, const child_arg *a)
{
    fv_db *db;
    if (open_dev(a->path, "ben", 0, &db) != FV_OK) _exit(3);
    for (int k = 0; k < 3; k++) {
        char summary[64];
        snprintf(summary, sizeof summary, "ben-%d-%d", a->iter, k);
        fv_record *r;
        if (fv_record_new(db, "visit", &r) != FV_OK ||
            fv_record_set_text(r, "customer_id", a->customer) != FV_OK ||
            fv_record_set_text(r, "method", "visit") != FV_OK ||
            fv_record_set_text(r, "summary", summary) != FV_OK || fv_insert(db, r) != FV_OK)
            _exit(4);
        fv_record_free(r);
        char line[80];
        int n = snprintf(line, sizeof line, "ack %s\n", summary);
        if (write(wfd, line, (size_t)n) != n) _exit(5);
    }
    if (write(wfd, "sync\n", 5) != 5) _exit(5);
    fv_sync_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    fv_sync_result r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    fv_status st = fv_sync(db, &cfg, &r);
    if (st == FV_OK && write(wfd, "done\n", 5) != 5) _exit(5);
    fv_close(db);
    _exit(st == FV_OK ? 0 : 6);
}

/* Read lines from fd until one equals stop (or EOF); acks are appended. */
static int read_until(int fd, const char *stop, char ***acks, size_t *nacks)
{
    char line[128];
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t k = read(fd, &c, 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return 0;
        if (c != '\n') {
            if (n + 1 < sizeof line) line[n++] = c;
            continue;
        }
        line[n] = '\0';
        n = 0;
        if (strncmp(line, "ack ", 4) == 0) {
            *acks = realloc(*acks, (*nacks + 1) * sizeof **acks);
            (*acks)[(*nacks)++] = strdup(line + 4);
        }
        if (stop != NULL && strcmp(line, stop) == 0) return 1;
    }
}

static void check_acks(fv_db *db, char **acks, size_t nacks, const char *where)
{
    for (size_t i = 0; i < nacks; i++) {
        int n = count_where(db, "SELECT count(*) FROM visit WHERE summary = ?1 AND deleted = 0",
                            acks[i]);
        if (n != 1)
            fprintf(stderr, "%s: acknowledged visit %s found %d times\n", where, acks[i], n);
        assert_int_equal(n, 1);
    }
}

static void test_kill_during_pull_apply(void **state)
{
    fx *f = *state;
    char *apath = tu_path(f->dir, "ana"), *bpath = tu_path(f->dir, "ben");
    fv_db *a, *b;
    assert_int_equal(open_dev(apath, "ana", FV_OPEN_CREATE, &a), FV_OK);
    assert_int_equal(open_dev(bpath, "ben", FV_OPEN_CREATE, &b), FV_OK);
    enroll_via(f, a, "ana", "director", f->s.base);
    enroll_via(f, b, "ben", "director", f->s.base);
    char *cust = add_customer(a, "Shared Plant");
    sync_ok(a, "ana");
    sync_ok(b, "ben");
    assert_int_equal(fv_close(b), FV_OK);

    char **acks = NULL;
    size_t nacks = 0;
    int64_t sync_ms = 0;
    int mid = 0, late = 0;
    long per_iter = 600; /* customers ana adds before each of ben's syncs: 5 changes each */
#if defined(__SANITIZE_ADDRESS__)
    per_iter = 300;
#endif
    for (int it = 0; it < iters; it++) {
        assert_int_equal(fv_begin(a), FV_OK);
        for (long k = 0; k < per_iter; k++) {
            fv_record *r;
            char name[48];
            snprintf(name, sizeof name, "bulk %d-%ld", it, k);
            assert_int_equal(fv_record_new(a, "customer", &r), FV_OK);
            assert_int_equal(fv_record_set_text(r, "name", name), FV_OK);
            assert_int_equal(fv_record_set_text(r, "stage", "lead"), FV_OK);
            assert_int_equal(fv_record_set_text(r, "grade", "B"), FV_OK);
            assert_int_equal(fv_record_set_text(r, "region", "North"), FV_OK);
            assert_int_equal(fv_insert(a, r), FV_OK);
            fv_record_free(r);
        }
        assert_int_equal(fv_commit(a), FV_OK);
        sync_ok(a, "ana");

        int p[2];
        assert_int_equal(pipe(p), 0);
        child_arg ca = {bpath, cust, it};
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            device_child(p[1], &ca);
        }
        close(p[1]);
        assert_true(read_until(p[0], "sync", &acks, &nacks));
        int64_t t0 = now_ms();
        int killed = 0;
        if (it == 0) {
            /* the first sync runs to the end: its length spreads the kills */
            assert_true(read_until(p[0], "done", &acks, &nacks));
            sync_ms = now_ms() - t0;
            if (sync_ms < 10) sync_ms = 10;
        } else {
            sleep_ms((long)(rand_r(&seed) % (unsigned)sync_ms));
            kill(pid, SIGKILL);
            killed = 1;
        }
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        int done = read_until(p[0], "done", &acks, &nacks);
        close(p[0]);
        if (killed) {
            if (done) late++;
            else mid++;
        } else {
            assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }

        /* after every kill: opens, checks clean, acks present once */
        fv_status os = open_dev(bpath, "ben", 0, &b);
        if (os != FV_OK) fprintf(stderr, "iteration %d: %s\n", it, fv_errmsg(b));
        assert_int_equal(os, FV_OK);
        fv_status cs = fv_check(b);
        if (cs != FV_OK) fprintf(stderr, "iteration %d: %s\n", it, fv_errmsg(b));
        assert_int_equal(cs, FV_OK);
        check_acks(b, acks, nacks, "after the kill");
        fv_sync_status ss;
        memset(&ss, 0, sizeof ss);
        ss.size = sizeof ss;
        assert_int_equal(fv_sync_status_get(b, &ss), FV_OK);
        assert_int_equal(fv_close(b), FV_OK);
    }

    /* the next sync converges: ben, then ana, then a fresh device */
    assert_int_equal(open_dev(bpath, "ben", 0, &b), FV_OK);
    sync_ok(b, "ben");
    sync_ok(a, "ana");
    check_acks(b, acks, nacks, "ben after the final sync");
    check_acks(a, acks, nacks, "ana after the final sync");
    char ha[65], hb[65], hv[65];
    assert_int_equal(fv_state_hash(a, ha), FV_OK);
    assert_int_equal(fv_state_hash(b, hb), FV_OK);
    assert_string_equal(ha, hb);
    char *vpath = tu_path(f->dir, "viewer");
    fv_db *v;
    assert_int_equal(open_dev(vpath, "viewer", FV_OPEN_CREATE, &v), FV_OK);
    enroll_via(f, v, "viewer", "director", f->s.base);
    sync_ok(v, "viewer");
    assert_int_equal(fv_state_hash(v, hv), FV_OK);
    assert_string_equal(hv, ha);
    int customers = count_where(v, "SELECT count(*) FROM customer WHERE deleted = 0", NULL);
    assert_int_equal(customers, 1 + iters * per_iter);
    printf("summary: kill during pull apply: FV_SEED=%u %d kills (%d mid-sync, %d after it "
           "ended), %ld changes pulled per sync (first sync %lld ms), %zu acknowledged visits "
           "present once, stores checked clean %d times, converged\n",
           seed0, iters - 1, mid, late, per_iter * 5, (long long)sync_ms, nacks, iters);
    assert_true(mid > 0);
    fflush(stdout);
    assert_int_equal(fv_close(v), FV_OK);
    assert_int_equal(fv_close(a), FV_OK);
    assert_int_equal(fv_close(b), FV_OK);
    for (size_t i = 0; i < nacks; i++) free(acks[i]);
    free(acks);
    free(cust);
    free(apath);
    free(bpath);
    free(vpath);
}

/* ---- clock faults ---- */

static tu_result fv_cli(long long skew_ms, const char *const *args)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = FV_BIN;
    for (size_t i = 0; args[i] != NULL && n < 15; i++) argv[n++] = args[i];
    argv[n] = NULL;
    char env_skew[64];
    snprintf(env_skew, sizeof env_skew, "FV_CLOCK_SKEW_MS=%lld", skew_ms);
    const char *env[] = {"FV_PASSPHRASE=pw", env_skew, NULL};
    return tu_run(argv, env, NULL);
}

static char *cli_ok(long long skew, const char *const *args)
{
    tu_result r = fv_cli(skew, args);
    if (r.exit_code != 0)
        fprintf(stderr, "fv %s %s (skew %lld ms): exit %d: %s\n", args[0], args[1], skew,
                r.exit_code, r.err);
    assert_int_equal(r.exit_code, 0);
    free(r.err);
    size_t n = strlen(r.out);
    while (n > 0 && r.out[n - 1] == '\n') r.out[--n] = '\0';
    return r.out;
}

static void test_clock_faults(void **state)
{
    fx *f = *state;
    const long long MIN = 60 * 1000LL, HOUR = 60 * MIN;
    /* within the signing window, outside it, hours, most of a day behind;
     * and one a day and an hour ahead: beyond the 24-hour drift bound (a
     * day behind: test_clock_day_behind_can_pull) */
    const long long skews[] = {4 * MIN, -4 * MIN, 10 * MIN, -10 * MIN, 3 * HOUR, -3 * HOUR,
                               -20 * HOUR, 25 * HOUR};
    enum { N = sizeof skews / sizeof *skews, AHEAD = N - 1 };
    char *paths[N];
    char *shared = NULL;
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "clock%d", i);
        paths[i] = tu_path(f->dir, name);
        const char *init[] = {"init", paths[i], "--kdf-mem", "8", "--kdf-passes", "1", NULL};
        free(cli_ok(skews[i], init));
        char *code = fvdp_add_user(&f->b, name, "director", "north");
        assert_non_null(code);
        const char *en[] = {"enroll", paths[i], "--server", f->s.base, "--code", code, NULL};
        free(cli_ok(skews[i], en));
        free(code);
        if (i == 0) {
            const char *add[] = {"customer", "add", paths[0], "--name", "Clockwork Co", NULL};
            shared = cli_ok(skews[0], add);
            const char *sy[] = {"sync", paths[0], NULL};
            free(cli_ok(skews[0], sy));
        }
    }
    /* everyone (but the one too far ahead) edits the shared customer and
     * records a visit, then syncs */
    int visits = 0;
    for (int i = 0; i < N; i++) {
        const char *sy[] = {"sync", paths[i], NULL};
        tu_result r = fv_cli(skews[i], sy);
        if (i != AHEAD) {
            if (r.exit_code != 0) fprintf(stderr, "sync (skew %lld): %s\n", skews[i], r.err);
            assert_int_equal(r.exit_code, 0);
        }
        tu_result_free(&r);
        char needs[32];
        snprintf(needs, sizeof needs, "needs from clock%d", i);
        const char *up[] = {"customer", "update", paths[i], shared, "--needs", needs, NULL};
        free(cli_ok(skews[i], up));
        const char *va[] = {"visit", "add", paths[i], "--customer", shared, "--method", "phone",
                            "--summary", needs, NULL};
        free(cli_ok(skews[i], va));
        visits++;
        r = fv_cli(skews[i], sy);
        if (i == AHEAD) {
            /* refused, clearly, and the outbox is kept */
            assert_int_not_equal(r.exit_code, 0);
            assert_non_null(strstr(r.err, "ahead"));
            tu_result_free(&r);
            const char *stj[] = {"status", paths[i], "--json", NULL};
            r = fv_cli(skews[i], stj);
            assert_int_equal(r.exit_code, 0);
            assert_null(strstr(r.out, "\"pending_changes\": 0"));
        } else {
            if (r.exit_code != 0) fprintf(stderr, "sync (skew %lld): %s\n", skews[i], r.err);
            assert_int_equal(r.exit_code, 0);
        }
        tu_result_free(&r);
    }
    /* causality beats a slow clock: the device 20 hours behind pulls the
     * latest stage, then changes it; its change wins everywhere */
    const int BEHIND = 6;
    const char *sy0[] = {"sync", paths[0], NULL}, *syb[] = {"sync", paths[BEHIND], NULL};
    const char *won[] = {"customer", "update", paths[0], shared, "--stage", "won", NULL};
    free(cli_ok(skews[0], won));
    free(cli_ok(skews[0], sy0));
    free(cli_ok(skews[BEHIND], syb));
    const char *lost[] = {"customer", "update", paths[BEHIND], shared, "--stage", "lost", NULL};
    free(cli_ok(skews[BEHIND], lost));
    free(cli_ok(skews[BEHIND], syb));
    /* two rounds so that everyone has everything */
    char *hash0 = NULL;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < N; i++) {
            if (i == AHEAD) continue;
            const char *sy[] = {"sync", paths[i], NULL};
            free(cli_ok(skews[i], sy));
        }
    for (int i = 0; i < N; i++) {
        if (i == AHEAD) continue;
        const char *ck[] = {"check", paths[i], NULL};
        free(cli_ok(skews[i], ck));
        const char *sh[] = {"state-hash", paths[i], NULL};
        char *h = cli_ok(skews[i], sh);
        if (hash0 == NULL) hash0 = h;
        else {
            assert_string_equal(h, hash0);
            free(h);
        }
        const char *show[] = {"customer", "show", paths[i], shared, "--json", NULL};
        char *js = cli_ok(skews[i], show);
        assert_non_null(strstr(js, "\"stage\": \"lost\""));
        free(js);
        const char *vl[] = {"visit", "list", paths[i], "--json", NULL};
        char *vs = cli_ok(skews[i], vl);
        int n = 0;
        for (const char *p = vs; (p = strstr(p, "\"method\"")) != NULL; p++) n++;
        assert_int_equal(n, visits - 1); /* all but the refused device's */
        free(vs);
    }
    printf("summary: clock faults: skews of +-4 min, +-10 min, +-3 h, -20 h synced and "
           "converged; a causally later edit from the clock 20 h behind won; +25 h refused "
           "(\"ahead\") with its outbox kept\n");
    fflush(stdout);
    free(hash0);
    free(shared);
    for (int i = 0; i < N; i++) free(paths[i]);
}

/* ---- regression tests ---- */

/*
 * Bug (found by the soak; fixed in 208fa44): platform/posix/http_curl.c,
 * fv_platform_http_post: an answer whose connection closes inside its
 * headers (after the status line) is returned as a complete response
 * (libcurl reports success: a response without a Content-Length yet runs to
 * the close), so a push acknowledgement cut by the network becomes "200,
 * empty body" and fv_sync fails with FV_EPROTO "the server acknowledged
 * batch 0, not 1" (a pull: "the change set was refused: truncated: empty
 * input") instead of retrying the network failure.  Expected: the cut
 * answer is a network error, retried; the sync completes.
 */
static void test_truncated_headers_are_a_network_error(void **state)
{
    fx *f = *state;
    static const fp_fault script[] = {FP_TRUNCATE_RESPONSE};
    fp_config pc;
    memset(&pc, 0, sizeof pc);
    pc.script = script;
    pc.nscript = 1;
    pc.cut_at = 20; /* "HTTP/1.1 200 OK\r\nX-F" */
    pc.weight[FP_PASS] = 1;
    fv_status st[2];
    char msg[2][FV_ERRMSG_MAX];
    for (int k = 0; k < 2; k++) {
        /* k = 0: the first request is a push; k = 1: a device with nothing
         * to push, so it is a pull */
        fp_proxy *px;
        assert_int_equal(fp_start(&pc, "127.0.0.1", f->s.port, &px), 0);
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d", fp_port(px));
        char name[16];
        snprintf(name, sizeof name, "cut%d", k);
        char *path = tu_path(f->dir, name);
        fv_db *db;
        assert_int_equal(open_dev(path, name, FV_OPEN_CREATE, &db), FV_OK);
        enroll_via(f, db, name, "director", f->s.base);
        if (k == 0) free(add_customer(db, "Cut Short Ltd"));
        fv_sync_result r;
        st[k] = sync_via(db, url, &r);
        snprintf(msg[k], sizeof msg[k], "%s", st[k] == FV_OK ? "" : fv_errmsg(db));
        if (st[k] != FV_OK)
            fprintf(stderr, "%s answer cut in its headers: %s\n", k ? "pull" : "push", msg[k]);
        else
            assert_true(r.drained);
        assert_int_equal(fv_close(db), FV_OK);
        fp_stop(px);
        free(path);
    }
    assert_int_equal(st[0], FV_OK);
    assert_int_equal(st[1], FV_OK);
}

/*
 * Bug (found by the fault proxy; fixed in 208fa44): sync/client.c fv_enroll
 * with server/enroll.c: enrolment is not idempotent.  If the answer to
 * POST /v1/enroll is lost (connection reset after fvd committed the
 * enrolment), the client's retry of the same request (same code, device id
 * and key) is refused "unknown or already used enrolment code" (401), and
 * fv_enroll fails with FV_EACCES; the device id is now registered with a
 * key the device threw away, so even a new code gets 409 "device ... is
 * enrolled already": the store can never enrol.  Expected: the retry of an
 * identical enrolment is recognised and answered (or the client recovers),
 * and fv_enroll succeeds.
 */
static void test_enroll_survives_lost_answer(void **state)
{
    fx *f = *state;
    static const fp_fault script[] = {FP_DROP_RESPONSE};
    fp_config pc;
    memset(&pc, 0, sizeof pc);
    pc.script = script;
    pc.nscript = 1;
    pc.cut_at = 1; /* one byte of the answer, then a reset */
    pc.weight[FP_PASS] = 1;
    fp_proxy *px;
    assert_int_equal(fp_start(&pc, "127.0.0.1", f->s.port, &px), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fp_port(px));
    char *path = tu_path(f->dir, "lost");
    fv_db *db;
    assert_int_equal(open_dev(path, "lost", FV_OPEN_CREATE, &db), FV_OK);
    char *code = fvdp_add_user(&f->b, "lost", "rep", "north");
    assert_non_null(code);
    fv_status st = fv_enroll(db, url, code, NULL);
    if (st != FV_OK) {
        fprintf(stderr, "enrol with a lost answer: %s\n", fv_errmsg(db));
        st = fv_enroll(db, url, code, NULL); /* the user tries again */
        if (st != FV_OK) fprintf(stderr, "and again: %s\n", fv_errmsg(db));
    }
    fv_status sst = FV_OK;
    if (st == FV_OK) {
        free(add_customer(db, "Enrolled At Last"));
        sst = sync_via(db, url, NULL);
    }
    /* cleaned up before asserting: a failure leaks nothing (valgrind) */
    assert_int_equal(fv_close(db), FV_OK);
    fp_stop(px);
    free(code);
    free(path);
    assert_int_equal(st, FV_OK);
    assert_int_equal(sst, FV_OK);
}

/*
 * Finding (the 5-device soak, 4 in ~2,270 requests; fixed with this test):
 * sync/client.c post(): when a middlebox sends one signed request twice,
 * fvd answers one copy and refuses the other "replayed nonce" (401); if
 * the refusal is the answer that reaches the device, fv_sync failed with
 * FV_EACCES (the code of a revoked or unknown device).  Expected: the
 * refusal of a copy is retried with a new nonce like a network error
 * (every endpoint is idempotent); the sync completes.  Each duplicated
 * request has an even chance of handing back the refusal, so 10 of them
 * failed the old client all but surely (1 in 1024 to pass).
 */
static void test_duplicated_request_is_retried(void **state)
{
    fx *f = *state;
    /* a duplicate, then a clean pass: a retry after a refusal always gets
     * through (all duplicates in a row could hand one request the refusal
     * as often as the client tries, 1 in 16 each time) */
    static const fp_fault script[20] = {
        FP_DUPLICATE, FP_PASS, FP_DUPLICATE, FP_PASS, FP_DUPLICATE, FP_PASS, FP_DUPLICATE,
        FP_PASS,      FP_DUPLICATE, FP_PASS, FP_DUPLICATE, FP_PASS, FP_DUPLICATE, FP_PASS,
        FP_DUPLICATE, FP_PASS, FP_DUPLICATE, FP_PASS, FP_DUPLICATE, FP_PASS};
    fp_config pc;
    memset(&pc, 0, sizeof pc);
    pc.script = script;
    pc.nscript = 20;
    pc.weight[FP_PASS] = 1;
    fp_proxy *px;
    assert_int_equal(fp_start(&pc, "127.0.0.1", f->s.port, &px), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fp_port(px));
    char *path = tu_path(f->dir, "dup");
    fv_db *db;
    assert_int_equal(open_dev(path, "dup", FV_OPEN_CREATE, &db), FV_OK);
    enroll_via(f, db, "dup", "director", f->s.base);
    fv_status st = FV_OK;
    for (int i = 0; i < 5 && st == FV_OK; i++) { /* keys, push, pull: 3 requests each */
        free(add_customer(db, "Twice Sent Ltd"));
        st = sync_via(db, url, NULL);
        if (st != FV_OK) fprintf(stderr, "sync %d through duplicates: %s\n", i, fv_errmsg(db));
    }
    assert_int_equal(fv_close(db), FV_OK);
    fp_stop(px);
    free(path);
    assert_int_equal(st, FV_OK);
}

/*
 * Finding (clock faults; fixed in 208fa44): a device whose
 * clock is more than FV_HLC_MAX_DRIFT_MS (24 h) *behind* can never pull:
 * sync/changes.c (fv__apply_with -> fv__hlc_observe) refuses every pulled
 * change made at the right time, "a change is dated ..., more than 24 hours
 * ahead of this device's clock", although sync/client.c has just learnt the
 * server's clock (X-FV-Server-Time, clock_offset) and fvd already refused
 * anything beyond the bound by *its* clock.  Its own pushes go through
 * (nothing is lost), but it receives nothing until its clock is fixed, and
 * the message blames the change.  Expected: a pulled batch is
 * checked against the server-corrected clock (or the error says this
 * device's clock is behind the server's by N hours); the sync completes.
 */
static void test_clock_day_behind_can_pull(void **state)
{
    fx *f = *state;
    const long long behind = -25LL * 3600 * 1000;
    char *right = tu_path(f->dir, "right"), *slow = tu_path(f->dir, "slow");
    char *paths[2] = {right, slow};
    long long skew[2] = {0, behind};
    for (int i = 0; i < 2; i++) {
        const char *init[] = {"init", paths[i], "--kdf-mem", "8", "--kdf-passes", "1", NULL};
        free(cli_ok(skew[i], init));
        char *code = fvdp_add_user(&f->b, i ? "slow" : "right", "director", "north");
        assert_non_null(code);
        const char *en[] = {"enroll", paths[i], "--server", f->s.base, "--code", code, NULL};
        free(cli_ok(skew[i], en));
        free(code);
    }
    const char *add[] = {"customer", "add", right, "--name", "On Time Inc", NULL};
    free(cli_ok(0, add));
    const char *sy0[] = {"sync", right, NULL};
    free(cli_ok(0, sy0));
    const char *sy1[] = {"sync", slow, NULL};
    tu_result r = fv_cli(behind, sy1);
    int rc = r.exit_code;
    if (rc != 0) fprintf(stderr, "a device a day behind: %s", r.err);
    tu_result_free(&r);
    int same = 0;
    if (rc == 0) {
        const char *h0[] = {"state-hash", right, NULL}, *h1[] = {"state-hash", slow, NULL};
        char *a = cli_ok(0, h0), *b = cli_ok(behind, h1);
        same = strcmp(a, b) == 0;
        free(a);
        free(b);
    }
    free(right);
    free(slow);
    assert_int_equal(rc, 0);
    assert_true(same);
}

/*
 * Bug (found by fuzz_apply; fixed in 208fa44): sync/changes.c to_stored: a
 * change whose value breaks its field's rules (an enum value not listed, an impossible date)
 * makes fv_changes_apply return FV_EINVAL, while include/fieldvault.h says
 * "an invalid value ... is FV_EPROTO".  fv__validate_text records FV_EINVAL
 * first, and the FV_EPROTO that to_stored then asks for loses to "first
 * error wins" (fv__err returns the recorded code).  The set is refused
 * whole, as it should be; only the status is wrong.  Inputs:
 * fuzz/corpus/apply/bad-enum and bad-date.
 */
static void test_apply_invalid_value_is_eproto(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("apply-eproto");
    char *src = tu_path(dir, "src"), *dst = tu_path(dir, "dst"), *set = tu_path(dir, "set.fvc");
    fv_db *a, *b;
    assert_int_equal(open_dev(src, "a", FV_OPEN_CREATE, &a), FV_OK);
    assert_int_equal(open_dev(dst, "b", FV_OPEN_CREATE, &b), FV_OK);
    char *id = add_customer(a, "Valid Co");
    fv_record *r;
    assert_int_equal(fv_get(a, "customer", id, &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "grade", "A"), FV_OK);
    assert_int_equal(fv_update(a, r), FV_OK);
    fv_record_free(r);
    /* the exported set, with the grade's value made invalid on the way */
    assert_int_equal(fv_changes_export_file(a, set, 0, NULL), FV_OK);
    size_t n;
    unsigned char *bytes = tu_read_file(set, &n);
    assert_non_null(bytes);
    /* Value.text is field 1 of Value: "A" is 0x0a 0x01 'A' */
    int patched = 0;
    for (size_t i = 0; i + 2 < n && !patched; i++)
        if (bytes[i] == 0x0a && bytes[i + 1] == 0x01 && bytes[i + 2] == 'A') {
            bytes[i + 2] = 'Z';
            patched = 1;
        }
    assert_true(patched);
    tu_write_file(set, bytes, n);
    free(bytes);
    char before[65], after[65];
    assert_int_equal(fv_state_hash(b, before), FV_OK);
    fv_status st = fv_changes_apply_file(b, set, NULL);
    fprintf(stderr, "apply of a set with grade 'Z': status %d: %s\n", (int)st, fv_errmsg(b));
    assert_int_equal(fv_state_hash(b, after), FV_OK);
    assert_int_equal(fv_close(a), FV_OK);
    assert_int_equal(fv_close(b), FV_OK);
    tu_rmtree(dir);
    free(id);
    free(src);
    free(dst);
    free(set);
    free(dir);
    assert_string_equal(before, after); /* refused whole */
    assert_int_equal(st, FV_EPROTO);
}

/*
 * Bug (found by fuzz_apply; fixed in 208fa44): sync/changes.c apply_one: which
 * conflicts get logged depends on the order changes arrive in, so applying
 * the same change set a second time logs a new conflict (fv_changes_apply's
 * contract: "applying a set twice changes nothing the second time"; and
 * merge.h: "every replica that sees both values logs the same conflict").
 * A change that loses to the current version with an equal value is
 * dropped without a conflict; the same change compared later against a
 * newer, different value (base 0) is a conflict.  Input: the store holds
 * customer.stage = "intent" (device X, t1); the set carries A = "intent"
 * (device Z, t0 < t1, base 0) then B = "lost" (device Y, t2 > t1, base 0).
 * First apply: A is dropped (equal), B wins and logs (X vs B): 1 conflict.
 * Second apply: A now loses to B with another value: a new conflict (B vs
 * A).  Expected: the second apply reports 0 conflicts and the log is
 * unchanged.  Input: fuzz/regressions/apply/apply-twice-new-conflict.
 */
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

static void text_change(fv__change *c, const unsigned char row[16], const char *field,
                        const char *value, unsigned char dev, uint64_t hlc)
{
    memset(c, 0, sizeof *c);
    snprintf(c->table, sizeof c->table, "customer");
    snprintf(c->field, sizeof c->field, "%s", field);
    memcpy(c->row_id, row, 16);
    memset(c->device, dev, 16);
    c->hlc = hlc;
    c->device_seq = 1;
    c->kind = FV__VAL_TEXT;
    c->len = strlen(value);
    memcpy(c->data, value, c->len + 1);
}

static fv_status apply_vec(fv_db *db, const fv__change *v, size_t n, fv_apply_stats *st)
{
    unsigned char origin[16];
    memset(origin, 0xee, sizeof origin);
    vec_src src = {v, n, 0};
    fv__membuf b;
    fv__membuf_init(&b, 0);
    char err[256];
    assert_int_equal(fv__wire_encode_changeset(origin, vec_next, &src, fv__membuf_write, &b, NULL,
                                               err, sizeof err),
                     FV_OK);
    fv__membuf in;
    fv__membuf_init_read(&in, fv__membuf_bytes(&b), b.len);
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
    fv_status s = fv_changes_apply(db, fv__membuf_read, &in, st);
    fv__membuf_free(&in);
    fv__membuf_free(&b);
    return s;
}

static size_t conflicts_logged(fv_db *db)
{
    fv_conflict_list *l;
    assert_int_equal(fv_conflicts_list(db, 1, &l), FV_OK);
    const fv_conflict *c;
    size_t n = 0;
    while (fv_conflicts_next(l, &c) == FV_OK && c != NULL) n++;
    fv_conflicts_free(l);
    return n;
}

static void test_apply_twice_logs_no_new_conflict(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("apply-twice");
    char *path = tu_path(dir, "s");
    fv_db *db;
    assert_int_equal(open_dev(path, "s", FV_OPEN_CREATE, &db), FV_OK);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t ms = (uint64_t)now.tv_sec * 1000 - 60000;
    uint64_t t0 = (ms - 1000) << 16, t1 = ms << 16, t2 = (ms + 1000) << 16;
    unsigned char row[16] = {0x01, 0x97, 0x73, 0x0e, 0x2c, 0x00, 0x70, 0x00,
                             0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x42};
    fv__change base[2], set[2];
    text_change(&base[0], row, "name", "Twice Co", 0xa1, t1);
    text_change(&base[1], row, "stage", "intent", 0xa1, t1);
    fv_apply_stats st;
    assert_int_equal(apply_vec(db, base, 2, &st), FV_OK);
    text_change(&set[0], row, "stage", "intent", 0xa3, t0); /* older, equal value */
    text_change(&set[1], row, "stage", "lost", 0xa2, t2);   /* newer, concurrent */
    assert_int_equal(apply_vec(db, set, 2, &st), FV_OK);
    size_t first = conflicts_logged(db);
    fprintf(stderr, "first apply: %llu applied, %llu conflicts (%zu logged)\n",
            (unsigned long long)st.applied, (unsigned long long)st.conflicts, first);
    assert_int_equal(st.applied, 1);
    assert_int_equal(apply_vec(db, set, 2, &st), FV_OK);
    size_t second = conflicts_logged(db);
    fprintf(stderr, "second apply: %llu applied, %llu conflicts (%zu logged)\n",
            (unsigned long long)st.applied, (unsigned long long)st.conflicts, second);
    assert_int_equal(fv_close(db), FV_OK);
    tu_rmtree(dir);
    free(path);
    free(dir);
    assert_int_equal(st.applied, 0);
    assert_int_equal(st.conflicts, 0);
    assert_int_equal(second, first);
}

/*
 * Bug (found by scripts/valgrind-tests on test_e2e; fixed in 47196a5):
 * sync/client.c fv_sync with res == NULL: `fv_sync_result local; if (res == NULL) res = &local;`
 * then `res->size < sizeof *res` reads local.size uninitialised (memcheck:
 * "Conditional jump or move depends on uninitialised value(s)" in fv_sync).
 * And when res is NULL a cfg whose size is too small is not refused: the
 * same test that returns FV_EMISUSE with a result struct falls through and
 * reads the whole (caller's, smaller) config.  Expected: FV_EMISUSE for a
 * bad cfg.size whether or not res is given, and no uninitialised read
 * (this test under scripts/valgrind-tests).
 */
static void test_sync_argument_checks(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("sync-args");
    char *path = tu_path(dir, "s");
    fv_db *db;
    assert_int_equal(open_dev(path, "s", FV_OPEN_CREATE, &db), FV_OK);
    /* not enrolled: a clear refusal, result or not */
    assert_int_equal(fv_sync(db, NULL, NULL), FV_EINVAL);
    fv_sync_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = 1; /* not a size this library knows */
    fv_sync_result r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    assert_int_equal(fv_sync(db, &cfg, &r), FV_EMISUSE);
    fv_status st = fv_sync(db, &cfg, NULL);
    fprintf(stderr, "fv_sync with cfg.size 1 and no result: status %d (%s)\n", (int)st,
            fv_errmsg(db));
    assert_int_equal(st, FV_EMISUSE);
    assert_int_equal(fv_close(db), FV_OK);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

int main(void)
{
#ifndef FVD_BIN
    printf("test_reliability: built without fvd (FV_BUILD_SERVER=OFF): skipped\n");
    return 77;
#endif
    const char *e = getenv("FV_SEED");
    seed = e ? (unsigned)strtoul(e, NULL, 10) : (unsigned)time(NULL);
    seed0 = seed;
#if defined(__SANITIZE_ADDRESS__)
    iters = 9;
#endif
    if ((e = getenv("FV_CRASH_ITERS")) != NULL) iters = atoi(e) + 1;
    if (iters < 2) iters = 2;
    printf("test_reliability: FV_SEED=%u kills=%d\n", seed, iters - 1);
    fflush(stdout);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill_during_pull_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_day_behind_can_pull, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_headers_are_a_network_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_enroll_survives_lost_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicated_request_is_retried, setup, teardown),
        cmocka_unit_test(test_apply_invalid_value_is_eproto),
        cmocka_unit_test(test_apply_twice_logs_no_new_conflict),
        cmocka_unit_test(test_sync_argument_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
