/*
 * test_vfs.c - the encrypting VFS on real files: data left in the WAL by a
 * process that never closed the store, a torn WAL tail (dropped, as SQLite
 * does), tampering anywhere in a WAL frame or the WAL header (refused,
 * naming the frame), a transaction large enough to spill pages into the WAL
 * and overwrite them in place, a kill in the middle of such a transaction,
 * and what a stock SQLite sees of the file.
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

#include <sqlite3.h>

#include "fieldvault.h"
#include "testutil.h"

#define PS 4096
#define WAL_HDR 32
#define WAL_FRAME (24 + PS)

typedef struct fixture {
    char *dir;
    char *path;
    char *wal;
} fixture;

static fv_status open_store(const char *path, unsigned flags, fv_db **db)
{
    fv_open_config cfg = {0};
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.passphrase = "pw";
    cfg.passphrase_len = 2;
    cfg.flags = flags;
    cfg.kdf_mem_kib = 8192;
    cfg.kdf_passes = 1;
    cfg.user = "tester";
    return fv_open(db, &cfg);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("vfs");
    f->path = tu_path(f->dir, "s.fv");
    f->wal = tu_path(f->dir, "s.fv-wal");
    fv_db *db;
    assert_int_equal(open_store(f->path, FV_OPEN_CREATE | FV_OPEN_EXCL, &db), FV_OK);
    assert_int_equal(fv_close(db), FV_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->path);
    free(f->wal);
    free(f);
    return 0;
}

static void add_customer(fv_db *db, const char *name, const char *needs)
{
    fv_record *r;
    assert_int_equal(fv_record_new(db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", name), FV_OK);
    if (needs) assert_int_equal(fv_record_set_text(r, "needs", needs), FV_OK);
    fv_status st = fv_insert(db, r);
    if (st != FV_OK) fprintf(stderr, "insert: %s\n", fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    fv_record_free(r);
}

/* Count customers; FV_OK or the failing status (message to stderr). */
static fv_status count_customers(fv_db *db, int *n)
{
    fv_list *l;
    const fv_record *r;
    *n = 0;
    fv_status st = fv_list_customers(db, NULL, &l);
    if (st != FV_OK) return st;
    while ((st = fv_list_next(l, &r)) == FV_OK && r != NULL) (*n)++;
    fv_list_free(l);
    return st;
}

/* A child process writes n customers, one transaction each, and dies
 * without closing the store: everything stays in the WAL. */
static void write_and_die(const char *path, int n)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fv_db *db;
        if (open_store(path, 0, &db) != FV_OK) _exit(3);
        for (int i = 0; i < n; i++) {
            char name[32];
            snprintf(name, sizeof name, "cust-%03d", i);
            fv_record *r;
            if (fv_record_new(db, "customer", &r) != FV_OK ||
                fv_record_set_text(r, "name", name) != FV_OK || fv_insert(db, r) != FV_OK)
                _exit(4);
            fv_record_free(r);
        }
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static long wal_frames(const fixture *f)
{
    size_t len = 0;
    unsigned char *b = tu_read_file(f->wal, &len);
    assert_non_null(b);
    free(b);
    assert_true(len > WAL_HDR);
    return (long)((len - WAL_HDR) / WAL_FRAME);
}

static void flip(const char *path, long off)
{
    size_t len = 0;
    unsigned char *b = tu_read_file(path, &len);
    assert_non_null(b);
    assert_true((size_t)off < len);
    b[off] ^= 0x20;
    tu_write_file(path, b, len);
    free(b);
}

/* Open and list; expect corruption naming what. */
static void expect_corrupt(const fixture *f, const char *what)
{
    fv_db *db = NULL;
    fv_status st = open_store(f->path, 0, &db);
    if (st == FV_OK) {
        int n;
        st = count_customers(db, &n);
    }
    if (st != FV_ECORRUPT) fprintf(stderr, "status %d: %s\n", st, fv_errmsg(db));
    assert_int_equal(st, FV_ECORRUPT);
    const char *msg = fv_errmsg(db);
    if (strstr(msg, what) == NULL) fprintf(stderr, "message: %s\n", msg);
    assert_non_null(strstr(msg, what));
    fv_close(db);
}

static void expect_count(const fixture *f, int want)
{
    fv_db *db;
    int n = -1;
    fv_status st = open_store(f->path, 0, &db);
    if (st != FV_OK) fprintf(stderr, "open: %s\n", fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    assert_int_equal(count_customers(db, &n), FV_OK);
    assert_int_equal(n, want);
    st = fv_check(db);
    if (st != FV_OK) fprintf(stderr, "check: %s\n", fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    assert_int_equal(fv_close(db), FV_OK);
}

static void test_wal_recovered(void **state)
{
    fixture *f = *state;
    write_and_die(f->path, 5);
    assert_true(wal_frames(f) >= 5);
    expect_count(f, 5);
}

/* A write cut short (power loss) at the end of the WAL: the last
 * transaction is dropped, every earlier one reads back, the store is clean. */
static void test_wal_torn_tail(void **state)
{
    fixture *f = *state;
    write_and_die(f->path, 5);
    size_t len = 0;
    unsigned char *b = tu_read_file(f->wal, &len);
    assert_non_null(b);
    tu_write_file(f->wal, b, len - 1000);
    free(b);
    expect_count(f, 4);
}

/* A damaged last commit frame cannot be told from a torn write: dropped. */
static void test_wal_last_frame_damaged(void **state)
{
    fixture *f = *state;
    write_and_die(f->path, 5);
    long n = wal_frames(f);
    flip(f->wal, WAL_HDR + (n - 1) * WAL_FRAME + 24 + 100);
    expect_count(f, 4);
}

static void test_wal_tamper_page(void **state)
{
    fixture *f = *state;
    write_and_die(f->path, 5);
    flip(f->wal, WAL_HDR + 24 + 2000); /* frame 1's page image */
    expect_corrupt(f, "WAL frame 1");
}

static void test_wal_tamper_frame_header(void **state)
{
    fixture *f = *state;
    /* every byte of a frame header is authenticated: page number, commit
     * size, salts, checksum */
    const int offs[] = {2, 6, 9, 14, 17, 23};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        write_and_die(f->path, 3);
        unsigned char *orig;
        size_t len;
        orig = tu_read_file(f->wal, &len);
        flip(f->wal, WAL_HDR + WAL_FRAME + offs[i]); /* frame 2 */
        expect_corrupt(f, "WAL frame 2");
        tu_write_file(f->wal, orig, len); /* repair and go on */
        free(orig);
        expect_count(f, 3 * (int)(i + 1));
    }
}

static void test_wal_tamper_trailer(void **state)
{
    fixture *f = *state;
    /* nonce, tag, epoch and check bytes at the end of frame 1's page */
    const int offs[] = {PS - 48, PS - 30, PS - 10, PS - 6, PS - 1};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        write_and_die(f->path, 2);
        size_t len;
        unsigned char *orig = tu_read_file(f->wal, &len);
        flip(f->wal, WAL_HDR + 24 + offs[i]);
        expect_corrupt(f, "WAL frame 1");
        tu_write_file(f->wal, orig, len);
        free(orig);
        expect_count(f, 2 * (int)(i + 1));
    }
}

/* SQLite ignores a WAL with a bad header; that would silently drop every
 * commit in it, so it must be refused. */
static void test_wal_tamper_header(void **state)
{
    fixture *f = *state;
    write_and_die(f->path, 4);
    flip(f->wal, 17); /* salt-1 */
    expect_corrupt(f, "WAL header");
}

static void test_db_page_tamper(void **state)
{
    fixture *f = *state;
    fv_db *db;
    assert_int_equal(open_store(f->path, 0, &db), FV_OK);
    for (int i = 0; i < 50; i++) add_customer(db, "c", NULL);
    assert_int_equal(fv_close(db), FV_OK); /* checkpointed into the db file */
    size_t len;
    unsigned char *b = tu_read_file(f->path, &len);
    free(b);
    long pages = (long)((len - 4096) / PS);
    assert_true(pages >= 3);
    flip(f->path, 4096 + (pages - 1) * PS + 1234);
    char want[32];
    snprintf(want, sizeof want, "database page %ld", pages);
    fv_status st = open_store(f->path, 0, &db);
    if (st == FV_OK) st = fv_check(db);
    assert_int_equal(st, FV_ECORRUPT);
    if (strstr(fv_errmsg(db), want) == NULL) fprintf(stderr, "message: %s\n", fv_errmsg(db));
    assert_non_null(strstr(fv_errmsg(db), want));
    fv_close(db);
}

/* A transaction bigger than the page cache spills pages into the WAL before
 * commit; pages changed again are then overwritten in place and the frame
 * checksums rewritten: every one of those frames must be re-sealed. */
static void big_batch(fv_db *db, int n)
{
    char needs[1500];
    memset(needs, 'n', sizeof needs - 1);
    needs[sizeof needs - 1] = '\0';
    char (*ids)[FV_ID_LEN + 1] = calloc((size_t)n, sizeof *ids);
    assert_int_equal(fv_begin(db), FV_OK);
    for (int i = 0; i < n; i++) {
        fv_record *r;
        char name[32];
        snprintf(name, sizeof name, "big-%05d", i);
        assert_int_equal(fv_record_new(db, "customer", &r), FV_OK);
        assert_int_equal(fv_record_set_text(r, "name", name), FV_OK);
        assert_int_equal(fv_record_set_text(r, "needs", needs), FV_OK);
        assert_int_equal(fv_insert(db, r), FV_OK);
        strcpy(ids[i], fv_record_id(r));
        fv_record_free(r);
    }
    for (int i = 0; i < n; i += 7) {
        fv_record *r;
        assert_int_equal(fv_get(db, "customer", ids[i], &r), FV_OK);
        assert_int_equal(fv_record_set_text(r, "region", "updated"), FV_OK);
        assert_int_equal(fv_update(db, r), FV_OK);
        fv_record_free(r);
    }
    assert_int_equal(fv_commit(db), FV_OK);
    free(ids);
}

static int count_region(fv_db *db, const char *region)
{
    fv_list *l;
    const fv_record *r;
    int n = 0;
    assert_int_equal(fv_list_customers(db, NULL, &l), FV_OK);
    while (fv_list_next(l, &r) == FV_OK && r != NULL) {
        const char *v = NULL;
        if (fv_record_get_text(r, "region", &v) == FV_OK && v && strcmp(v, region) == 0) n++;
    }
    fv_list_free(l);
    return n;
}

static void test_spill_and_overwrite(void **state)
{
    fixture *f = *state;
    const int n = 4000; /* ~6 MB of rows against SQLite's 2 MB default cache */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fv_db *db;
        if (open_store(f->path, 0, &db) != FV_OK) _exit(3);
        big_batch(db, n);
        _exit(0); /* leave it all in the WAL */
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    fv_db *db;
    assert_int_equal(open_store(f->path, 0, &db), FV_OK);
    int c;
    assert_int_equal(count_customers(db, &c), FV_OK);
    assert_int_equal(c, n);
    assert_int_equal(count_region(db, "updated"), (n + 6) / 7);
    assert_int_equal(fv_check(db), FV_OK);
    assert_int_equal(fv_close(db), FV_OK);
    expect_count(f, n);
}

/* SIGKILL in the middle of a big batch: all of it or none of it. */
static void test_kill_mid_batch(void **state)
{
    fixture *f = *state;
    unsigned seed = (unsigned)time(NULL);
    const char *e = getenv("FV_SEED");
    if (e) seed = (unsigned)strtoul(e, NULL, 10);
    fprintf(stderr, "test_kill_mid_batch: FV_SEED=%u\n", seed);
    srand(seed);
    int expected = 0, interrupted = 0;
    for (int it = 0; it < 10; it++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            fv_db *db;
            if (open_store(f->path, 0, &db) != FV_OK) _exit(3);
            big_batch(db, 2000);
            fv_close(db);
            _exit(0);
        }
        /* the batch takes ~0.2 s here (longer under sanitizers) */
        struct timespec ts = {0, (long)(30 + rand() % 250) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        fv_db *db;
        fv_status s = open_store(f->path, 0, &db);
        if (s != FV_OK) fprintf(stderr, "open after kill %d: %s\n", it, fv_errmsg(db));
        assert_int_equal(s, FV_OK);
        int c;
        assert_int_equal(count_customers(db, &c), FV_OK);
        assert_true(c == expected || c == expected + 2000);
        if (c == expected) interrupted++;
        expected = c;
        s = fv_check(db);
        if (s != FV_OK) fprintf(stderr, "check after kill %d: %s\n", it, fv_errmsg(db));
        assert_int_equal(s, FV_OK);
        assert_int_equal(fv_close(db), FV_OK);
    }
    fprintf(stderr, "test_kill_mid_batch: %d of 10 batches interrupted, none partly applied\n",
            interrupted);
}

/* What a stock SQLite (and anyone reading the bytes) sees. */
static void test_stock_sqlite_cannot_read(void **state)
{
    fixture *f = *state;
    fv_db *db;
    assert_int_equal(open_store(f->path, 0, &db), FV_OK);
    add_customer(db, "Plainly Visible Ltd", NULL);
    assert_int_equal(fv_close(db), FV_OK);

    size_t len;
    unsigned char *b = tu_read_file(f->path, &len);
    assert_non_null(b);
    assert_true(len >= 4096 + PS && (len - 4096) % PS == 0);
    assert_true(memcmp(b, "SQLite format 3", 15) != 0);
    assert_true(memcmp(b + 4096, "SQLite format 3", 15) != 0);
    free(b);
    assert_false(tu_dir_contains(f->dir, "Plainly Visible", 15));

    sqlite3 *s;
    assert_int_equal(sqlite3_open_v2(f->path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int rc = sqlite3_exec(s, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    assert_int_equal(rc, SQLITE_NOTADB);
    sqlite3_close(s);
}

/* Rekey re-seals every page (new key, new nonces); the data reads back. */
static void test_rekey_rewrites_every_page(void **state)
{
    fixture *f = *state;
    fv_db *db;
    assert_int_equal(open_store(f->path, 0, &db), FV_OK);
    add_customer(db, "same", NULL);
    assert_int_equal(fv_close(db), FV_OK);
    size_t l1, l2;
    unsigned char *a = tu_read_file(f->path, &l1);
    assert_int_equal(open_store(f->path, 0, &db), FV_OK);
    assert_int_equal(fv_rekey(db), FV_OK);
    assert_int_equal(fv_close(db), FV_OK);
    unsigned char *b = tu_read_file(f->path, &l2);
    assert_int_equal(l1, l2);
    for (size_t p = 4096; p + PS <= l1; p += PS) assert_true(memcmp(a + p, b + p, PS) != 0);
    free(a);
    free(b);
    expect_count(f, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wal_recovered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_last_frame_damaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_tamper_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_tamper_frame_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_tamper_trailer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_tamper_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_page_tamper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spill_and_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_mid_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stock_sqlite_cannot_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_rewrites_every_page, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
