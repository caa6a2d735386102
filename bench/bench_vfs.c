/*
 * bench_vfs.c - item 2: page encryption alone.  The encrypting VFS (a
 * fieldvault store, used through its SQLite connection with a table of
 * blobs, so that nothing but pages is measured: no records, no capture)
 * against plain SQLite with the same pragmas, on a database of 100 MB
 * (16 MB with --quick):
 *
 *   write: insert the blobs in one transaction, commit, checkpoint the WAL
 *          into the database file (every page is sealed into the WAL,
 *          opened and sealed again by the checkpoint);
 *   read:  a full scan with SQLite's default 2 MB page cache, so every
 *          page comes through the VFS (from the OS cache: the CPU cost of
 *          the VFS is what is measured, not the disk).
 *
 * And the physical limit of the design: libsodium's XChaCha20-Poly1305 on
 * the page payload (4096 - 48 reserved bytes), with a random nonce per page
 * as the VFS draws it, sealing and opening.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fieldvault.h"
#include "internal.h"

#define ROW_BYTES 3000 /* one row per 4 KiB page, no overflow pages */

typedef struct vdb {
    fv_db *fv;     /* fieldvault, or */
    sqlite3 *sql;  /* plain SQLite */
} vdb;

static sqlite3 *conn(vdb *d)
{
    return d->fv ? d->fv->sql : d->sql;
}

static int ex(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        bench_log("vfs: %s: %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int vdb_open(vdb *d, const char *path, int fieldvault)
{
    memset(d, 0, sizeof *d);
    if (fieldvault) {
        fv_open_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.size = sizeof cfg;
        cfg.path = path;
        cfg.passphrase = "pw";
        cfg.passphrase_len = 2;
        cfg.flags = FV_OPEN_CREATE;
        cfg.kdf_mem_kib = 8192;
        cfg.kdf_passes = 1;
        if (fv_open(&d->fv, &cfg) != FV_OK) {
            bench_log("vfs: open: %s", fv_errmsg(d->fv));
            fv_close(d->fv);
            d->fv = NULL;
            return -1;
        }
        return 0;
    }
    if (sqlite3_open_v2(path, &d->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        return -1;
    /* fieldvault's pragmas (core/store.c) */
    return ex(d->sql, "PRAGMA page_size = 4096; PRAGMA locking_mode = EXCLUSIVE;"
                      "PRAGMA temp_store = MEMORY; PRAGMA mmap_size = 0;"
                      "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
}

static void vdb_close(vdb *d)
{
    if (d->fv) fv_close(d->fv);
    if (d->sql) sqlite3_close(d->sql);
    memset(d, 0, sizeof *d);
}

static void remove_files(const char *path)
{
    char p[1200];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
}

/* Write `rows` blobs and checkpoint: seconds, or NAN. */
static double timed_write(vdb *d, const unsigned char *data, long rows)
{
    sqlite3 *db = conn(d);
    if (ex(db, "CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB NOT NULL)") != 0) return BR_NAN;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO blobs(b) VALUES(?1)", -1, &s, NULL) != SQLITE_OK)
        return BR_NAN;
    double t0 = bench_now();
    int ok = ex(db, "BEGIN") == 0;
    for (long i = 0; ok && i < rows; i++) {
        sqlite3_bind_blob(s, 1, data + (size_t)(i % 1024) * 64, ROW_BYTES, SQLITE_STATIC);
        ok = sqlite3_step(s) == SQLITE_DONE;
        sqlite3_reset(s);
    }
    ok = ok && ex(db, "COMMIT") == 0 && ex(db, "PRAGMA wal_checkpoint(TRUNCATE)") == 0;
    double t = bench_now() - t0;
    sqlite3_finalize(s);
    return ok ? t : BR_NAN;
}

/* A full scan: seconds, or NAN. */
static double timed_read(vdb *d, long rows)
{
    sqlite3 *db = conn(d);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT count(*), sum(length(b)) FROM blobs", -1, &s, NULL) !=
        SQLITE_OK)
        return BR_NAN;
    double t0 = bench_now();
    int ok = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 0) == rows;
    double t = bench_now() - t0;
    sqlite3_finalize(s);
    return ok ? t : BR_NAN;
}

/* libsodium alone: MB/s sealing (random nonce each) and opening pages. */
static void raw_aead(long pages, double *seal_mbs, double *open_mbs)
{
    enum { PAYLOAD = 4096 - 48 };
    unsigned char key[32], nonce[24], tag[16], ad[13] = {1, 2, 3, 4, 5};
    unsigned char *page = malloc(PAYLOAD);
    if (page == NULL) {
        *seal_mbs = *open_mbs = BR_NAN;
        return;
    }
    crypto_aead_xchacha20poly1305_ietf_keygen(key);
    randombytes_buf(page, PAYLOAD);
    double t0 = bench_now();
    for (long i = 0; i < pages; i++) {
        randombytes_buf(nonce, sizeof nonce);
        ad[1] = (unsigned char)i;
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(page, tag, NULL, page, PAYLOAD, ad,
                                                            sizeof ad, NULL, nonce, key);
    }
    double ts = bench_now() - t0;
    /* open the last sealed page over and over (the work is the same) */
    unsigned char *copy = malloc(PAYLOAD);
    int bad = copy == NULL;
    t0 = bench_now();
    for (long i = 0; !bad && i < pages; i++) {
        memcpy(copy, page, PAYLOAD);
        if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(copy, NULL, copy, PAYLOAD, tag, ad,
                                                                sizeof ad, nonce, key) != 0)
            bad = 1;
    }
    double to = bench_now() - t0;
    *seal_mbs = (double)pages * 4096 / ts / 1e6;
    *open_mbs = bad ? BR_NAN : (double)pages * 4096 / to / 1e6;
    free(copy);
    free(page);
    sodium_memzero(key, sizeof key);
}

int bench_vfs(void)
{
    long mb = g_cfg.quick ? 16 : 100;
    long rows = mb * 1000 * 1000 / ROW_BYTES;
    int reps = g_cfg.reps;
    char *dir = bench_tmpdir("vfs");
    if (dir == NULL) return -1;
    unsigned char *data = malloc(ROW_BYTES + 1024 * 64);
    if (data == NULL) return -1;
    randombytes_buf(data, ROW_BYTES + 1024 * 64);
    double w[2][16], r[2][16], seal[16], open_[16];
    int failed = 0;
    for (int rep = 0; rep < reps; rep++) {
        for (int k = 0; k < 2; k++) {
            int fv = (k + rep) % 2 == 0; /* alternate which goes first */
            char *path = bench_path(dir, fv ? "vfs.fv" : "vfs.db");
            remove_files(path);
            vdb d;
            w[fv][rep] = r[fv][rep] = BR_NAN;
            if (vdb_open(&d, path, fv) == 0) {
                double tw = timed_write(&d, data, rows);
                double tr = timed_read(&d, rows);
                w[fv][rep] = (double)rows * ROW_BYTES / tw / 1e6;
                r[fv][rep] = (double)rows * ROW_BYTES / tr / 1e6;
            }
            vdb_close(&d);
            if (isnan(w[fv][rep]) || isnan(r[fv][rep])) failed = 1;
            bench_log("vfs rep %d: %-10s write %.0f MB/s, read %.0f MB/s", rep + 1,
                      fv ? "fieldvault" : "plain", w[fv][rep], r[fv][rep]);
            remove_files(path);
            free(path);
        }
        raw_aead(mb * 1000 * 1000 / 4096, &seal[rep], &open_[rep]);
        bench_log("vfs rep %d: libsodium seal %.0f MB/s, open %.0f MB/s", rep + 1, seal[rep],
                  open_[rep]);
    }
    free(data);
    bench_rmtree(dir);
    free(dir);
    double rw[16], rr[16], lim[16];
    for (int rep = 0; rep < reps; rep++) {
        rw[rep] = w[1][rep] / w[0][rep];
        rr[rep] = r[1][rep] / r[0][rep];
        /* the read limit: plain SQLite's read plus opening every page */
        lim[rep] = r[1][rep] / (1.0 / (1.0 / r[0][rep] + 1.0 / open_[rep]));
    }
    br_raw("vfs_write_fieldvault_MBps", w[1], (size_t)reps);
    br_raw("vfs_write_plain_MBps", w[0], (size_t)reps);
    br_raw("vfs_read_fieldvault_MBps", r[1], (size_t)reps);
    br_raw("vfs_read_plain_MBps", r[0], (size_t)reps);
    double mw1 = bench_median(w[1], (size_t)reps), mw0 = bench_median(w[0], (size_t)reps);
    double mr1 = bench_median(r[1], (size_t)reps), mr0 = bench_median(r[0], (size_t)reps);
    double mrw = bench_median(rw, (size_t)reps), mrr = bench_median(rr, (size_t)reps);
    double ms = bench_median(seal, (size_t)reps), mo = bench_median(open_, (size_t)reps);
    double mlim = bench_median(lim, (size_t)reps);
    char bench[96], note[300];
    snprintf(bench, sizeof bench, "Page encryption alone, %ld MB database", mb);
    br_row("2", bench, "fieldvault VFS: write (insert + commit + checkpoint)", mw1, "MB/s", mrw,
           "of plain", "every page sealed into the WAL, then opened and sealed again by the checkpoint");
    br_row("2", bench, "plain SQLite: write", mw0, "MB/s", 1.0, "of plain", "same pragmas, 4 KiB pages");
    snprintf(note, sizeof note, "full scan, 2 MB page cache: every page opened; %.0f%% of the limit below",
             mlim * 100);
    br_row("2", bench, "fieldvault VFS: read", mr1, "MB/s", mrr, "of plain", note);
    br_row("2", bench, "plain SQLite: read", mr0, "MB/s", 1.0, "of plain", "from the OS page cache");
    br_row("2", bench, "libsodium XChaCha20-Poly1305: seal 4 KiB pages (the limit)", ms, "MB/s",
           BR_NAN, NULL, "4048-byte payload, random 24-byte nonce per page, as the VFS does");
    br_row("2", bench, "libsodium XChaCha20-Poly1305: open 4 KiB pages (the limit)", mo, "MB/s",
           BR_NAN, NULL, "read limit = 1 / (1/plain read + 1/open)");
    br_chart("VFS read vs plain SQLite", mrr, 0.7);
    br_chart("VFS write vs plain SQLite", mrw, BR_NAN);
    br_chart("VFS read vs limit (plain + AEAD)", mlim, BR_NAN);
    char meas[300];
    snprintf(meas, sizeof meas, "%.2fx (%.0f vs %.0f MB/s)", mrr, mr1, mr0);
    br_target("VFS page throughput: at least 70% of plain SQLite on reads", meas,
              isnan(mrr) ? -1 : mrr >= 0.7);
    return failed ? -1 : 0;
}
