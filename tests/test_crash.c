/*
 * test_crash.c - SIGKILL at random moments, many times: during local
 * writes, during a passphrase change and during a rekey.  After each kill
 * the store must open, pass fv_check, and hold every write whose API call
 * returned success exactly once.  The child reports each acknowledged write
 * through a pipe before doing the next one.
 *
 * FV_SEED reproduces a run (the seed is printed); FV_CRASH_ITERS scales it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fieldvault.h"
#include "internal.h"
#include "testutil.h"

static unsigned seed;
static int iters = 25;

static fv_status open_store(const char *path, const char *pass, unsigned flags, fv_db **db)
{
    fv_open_config cfg = {0};
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.passphrase = pass;
    cfg.passphrase_len = strlen(pass);
    cfg.flags = flags;
    cfg.kdf_mem_kib = 8 * 1024;
    cfg.kdf_passes = 1;
    return fv_open(db, &cfg);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Read everything the (now dead) child wrote to the pipe. */
static char *drain(int fd)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap) buf = realloc(buf, cap *= 2);
        ssize_t k = read(fd, buf + len, cap - len - 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        len += (size_t)k;
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

/* Wait (up to 60 s: qemu is slow) until the writer has acknowledged a
 * first visit, so that every kill lands among writes however long opening
 * the store takes; the bytes read go to *got (malloc'd). */
static void wait_first_ack(int fd, char **got)
{
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, 60000);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (len + 1 >= cap) buf = realloc(buf, cap *= 2);
        ssize_t k = read(fd, buf + len, 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        len += (size_t)k;
        if (buf[len - 1] == '\n') break;
    }
    buf[len] = '\0';
    *got = buf;
}

static pid_t spawn(int *rfd, void (*body)(int wfd, void *arg), void *arg)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        body(p[1], arg);
        _exit(0);
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

static void kill_and_wait(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
}

/* ---- writes ---- */

typedef struct writer_arg {
    const char *path;
    int iter;
} writer_arg;

static void writer(int wfd, void *argp)
{
    writer_arg *a = argp;
    fv_db *db;
    if (open_store(a->path, "pw", 0, &db) != FV_OK) _exit(3);
    fv_record *r;
    /* Each visit its own transaction: the ack follows fv_insert's success. */
    for (int k = 0;; k++) {
        const char *cust = getenv("FV_CRASH_CUSTOMER");
        char summary[64];
        snprintf(summary, sizeof summary, "ack-%d-%d", a->iter, k);
        if (fv_record_new(db, "visit", &r) != FV_OK) _exit(4);
        if (fv_record_set_text(r, "customer_id", cust) != FV_OK ||
            fv_record_set_text(r, "method", "visit") != FV_OK ||
            fv_record_set_text(r, "summary", summary) != FV_OK || fv_insert(db, r) != FV_OK)
            _exit(5);
        fv_record_free(r);
        char line[80];
        int n = snprintf(line, sizeof line, "%s\n", summary);
        if (write(wfd, line, (size_t)n) != n) _exit(6);
    }
}

static void test_kill_during_writes(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("crash-w");
    char *path = tu_path(dir, "w.fv");
    fv_db *db;
    assert_int_equal(open_store(path, "pw", FV_OPEN_CREATE, &db), FV_OK);
    fv_record *r;
    assert_int_equal(fv_record_new(db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", "Crash Test Co"), FV_OK);
    assert_int_equal(fv_insert(db, r), FV_OK);
    setenv("FV_CRASH_CUSTOMER", fv_record_id(r), 1);
    fv_record_free(r);
    assert_int_equal(fv_close(db), FV_OK);

    size_t total_acked = 0;
    char **acked = NULL;
    size_t nacked = 0;
    for (int it = 0; it < iters; it++) {
        writer_arg a = {path, it};
        int rfd;
        pid_t pid = spawn(&rfd, writer, &a);
        char *first;
        wait_first_ack(rfd, &first);
        sleep_ms((long)(rand_r(&seed) % 120));
        kill_and_wait(pid);
        char *rest = drain(rfd);
        char *acks = malloc(strlen(first) + strlen(rest) + 1);
        strcpy(acks, first);
        strcat(acks, rest);
        free(first);
        free(rest);
        for (char *line = strtok(acks, "\n"); line; line = strtok(NULL, "\n")) {
            acked = realloc(acked, (nacked + 1) * sizeof *acked);
            acked[nacked++] = strdup(line);
        }
        free(acks);

        /* After every kill: opens, checks clean, holds every ack exactly once. */
        fv_status st = open_store(path, "pw", 0, &db);
        if (st != FV_OK) fprintf(stderr, "iteration %d: %s\n", it, fv_errmsg(db));
        assert_int_equal(st, FV_OK);
        st = fv_check(db);
        if (st != FV_OK) fprintf(stderr, "iteration %d: %s\n", it, fv_errmsg(db));
        assert_int_equal(st, FV_OK);
        for (size_t i = total_acked; i < nacked; i++) {
            sqlite3_stmt *s;
            assert_int_equal(sqlite3_prepare_v2(db->sql,
                "SELECT count(*) FROM visit WHERE summary = ?1 AND deleted = 0", -1, &s, NULL),
                SQLITE_OK);
            sqlite3_bind_text(s, 1, acked[i], -1, SQLITE_STATIC);
            assert_int_equal(sqlite3_step(s), SQLITE_ROW);
            if (sqlite3_column_int(s, 0) != 1)
                fprintf(stderr, "iteration %d: %s found %d times\n", it, acked[i],
                        sqlite3_column_int(s, 0));
            assert_int_equal(sqlite3_column_int(s, 0), 1);
            sqlite3_finalize(s);
        }
        total_acked = nacked;
        assert_int_equal(fv_close(db), FV_OK);
    }
    /* Earlier acks survive later crashes too. */
    assert_int_equal(open_store(path, "pw", 0, &db), FV_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db->sql, "SELECT count(*) FROM visit", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_true((size_t)sqlite3_column_int(s, 0) >= nacked);
    sqlite3_finalize(s);
    assert_int_equal(fv_close(db), FV_OK);
    printf("kill during writes: %d kills, %zu acknowledged visits, all present once\n", iters,
           nacked);
    assert_true(nacked > 0);
    for (size_t i = 0; i < nacked; i++) free(acked[i]);
    free(acked);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

/* ---- passphrase change ---- */

typedef struct passwd_arg {
    const char *path, *from, *to;
} passwd_arg;

static void passwd_child(int wfd, void *argp)
{
    passwd_arg *a = argp;
    fv_db *db;
    if (open_store(a->path, a->from, 0, &db) != FV_OK) _exit(3);
    if (fv_change_passphrase(db, a->to, strlen(a->to)) != FV_OK) _exit(4);
    if (write(wfd, "ok\n", 3) != 3) _exit(5);
    fv_close(db);
}

static int count_customers(fv_db *db)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db->sql, "SELECT count(*) FROM customer WHERE deleted = 0",
                                        -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return n;
}

static void fill(const char *path, const char *pass, int n)
{
    fv_db *db;
    assert_int_equal(open_store(path, pass, FV_OPEN_CREATE, &db), FV_OK);
    assert_int_equal(fv_begin(db), FV_OK);
    for (int i = 0; i < n; i++) {
        fv_record *r;
        assert_int_equal(fv_record_new(db, "customer", &r), FV_OK);
        assert_int_equal(fv_record_set_text(r, "name", "Fill Co with a reasonably long name"), FV_OK);
        assert_int_equal(fv_record_set_text(r, "needs", "needs text that takes up space in pages"),
                         FV_OK);
        assert_int_equal(fv_insert(db, r), FV_OK);
        fv_record_free(r);
    }
    assert_int_equal(fv_commit(db), FV_OK);
    assert_int_equal(fv_close(db), FV_OK);
}

static void test_kill_during_passwd(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("crash-p");
    char *path = tu_path(dir, "p.fv");
    fill(path, "pass-0", 50);
    int cur = 0, changed = 0, interrupted = 0;
    for (int it = 0; it < iters; it++) {
        char from[32], to[32];
        snprintf(from, sizeof from, "pass-%d", cur);
        snprintf(to, sizeof to, "pass-%d", cur + 1);
        passwd_arg a = {path, from, to};
        int rfd;
        pid_t pid = spawn(&rfd, passwd_child, &a);
        sleep_ms((long)(rand_r(&seed) % 60));
        kill_and_wait(pid);
        char *ack = drain(rfd);
        int acked = strcmp(ack, "ok\n") == 0;
        free(ack);
        fv_db *db;
        fv_status old_st = open_store(path, from, 0, &db);
        if (old_st == FV_OK) {
            assert_false(acked); /* an acknowledged change must not be undone */
            interrupted++;
        } else {
            assert_int_equal(old_st, FV_EKEY);
            fv_close(db);
            assert_int_equal(open_store(path, to, 0, &db), FV_OK);
            cur++;
            changed++;
        }
        assert_int_equal(fv_check(db), FV_OK);
        assert_int_equal(count_customers(db), 50);
        assert_int_equal(fv_close(db), FV_OK);
    }
    printf("kill during passwd: %d kills, %d changes completed, %d interrupted; "
           "exactly one passphrase opened the store every time\n", iters, changed, interrupted);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

/* ---- rekey ---- */

static void rekey_child(int wfd, void *argp)
{
    const char *path = argp;
    fv_db *db;
    if (open_store(path, "pw", 0, &db) != FV_OK) _exit(3);
    if (fv_rekey(db) != FV_OK) _exit(4);
    if (write(wfd, "ok\n", 3) != 3) _exit(5);
    fv_close(db);
}

static void test_kill_during_rekey(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("crash-r");
    char *path = tu_path(dir, "r.fv");
    fill(path, "pw", 3000);
    uint32_t epoch = 1;
    for (int it = 0; it < iters; it++) {
        int rfd;
        pid_t pid = spawn(&rfd, rekey_child, path);
        sleep_ms((long)(rand_r(&seed) % 150));
        kill_and_wait(pid);
        free(drain(rfd));
        fv_db *db;
        fv_status st = open_store(path, "pw", 0, &db);
        if (st != FV_OK) fprintf(stderr, "iteration %d: %s\n", it, fv_errmsg(db));
        assert_int_equal(st, FV_OK);
        assert_int_equal(db->keys->nkeys, 1); /* open finished any interrupted rekey */
        assert_true(db->keys->write_epoch >= epoch);
        epoch = db->keys->write_epoch;
        int old = -1;
        assert_int_equal(sqlite3_file_control(db->sql, "main", FV_FCNTL_COUNT_OLD_EPOCH, &old),
                         SQLITE_OK);
        assert_int_equal(old, 0);
        assert_int_equal(fv_check(db), FV_OK);
        assert_int_equal(count_customers(db), 3000);
        assert_int_equal(fv_close(db), FV_OK);
    }
    printf("kill during rekey: %d kills, now at key epoch %u; every page under one key each time\n",
           iters, (unsigned)epoch);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

int main(void)
{
    const char *s = getenv("FV_SEED");
    seed = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
    const char *n = getenv("FV_CRASH_ITERS");
    if (n) iters = atoi(n);
    printf("test_crash: FV_SEED=%u FV_CRASH_ITERS=%d\n", seed, iters);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_during_writes),
        cmocka_unit_test(test_kill_during_passwd),
        cmocka_unit_test(test_kill_during_rekey),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
