/*
 * store.c - the fv_db handle: open/create (keys, VFS, SQLite connection,
 * pragmas, migrations), close, transactions and batches, the prepared
 * statement cache, passphrase change, rekey and the full check.
 *
 * Open order matters: the key must be in place before SQLite opens the file
 * (WAL recovery reads pages during open), so keys.c unwraps the database key
 * from the vault header first, then a per-store VFS instance is registered
 * with it, then SQLite opens the file through that VFS.  The connection is
 * in exclusive locking mode (no -shm file: the VFS has no shared memory, and
 * nothing plaintext-derived sits in a mapped file), WAL journal, temp_store
 * in memory.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static fv_status set_pragmas(fv_db *db, unsigned flags)
{
    fv_status st = fv__exec(db, "PRAGMA locking_mode = EXCLUSIVE; PRAGMA temp_store = MEMORY;"
                                "PRAGMA mmap_size = 0; PRAGMA cell_size_check = ON;");
    if (st != FV_OK) return st;
    /* Force the first read now: it takes the lock and runs WAL recovery, so
     * a wrong key, a tampered page or a busy store is reported by open. */
    sqlite3_stmt *s = fv__stmt(db, "SELECT count(*) FROM sqlite_schema");
    if (s == NULL) return db->err;
    int rc = sqlite3_step(s);
    int empty = rc == SQLITE_ROW && sqlite3_column_int(s, 0) == 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return fv__sqlerr(db, rc, "opening the store");
    if (empty) {
        /* A new store: reserve room for nonce, tag and epoch in every page
         * before the first page is written. */
        int reserve = FV_PAGE_RESERVE;
        rc = sqlite3_file_control(db->sql, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
        if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "reserving page bytes");
        st = fv__exec(db, "PRAGMA page_size = 4096; PRAGMA auto_vacuum = NONE;");
        if (st != FV_OK) return st;
    }
    st = fv__exec(db, "PRAGMA journal_mode = WAL");
    if (st != FV_OK) return st;
    return fv__exec(db, (flags & FV_OPEN_SYNC_FULL) ? "PRAGMA synchronous = FULL"
                                                     : "PRAGMA synchronous = NORMAL");
}

static fv_status finish_rekey(fv_db *db);
static fv_status open_sqlite(fv_db *db, unsigned flags);
static void discard_new_store(fv_db *db);

fv_status fv_open(fv_db **out, const fv_open_config *cfg)
{
    if (out == NULL) return FV_EMISUSE;
    *out = NULL;
    if (sodium_init() < 0) return FV_EINTERNAL;
    fv_db *db = calloc(1, sizeof *db);
    if (db == NULL) return FV_ENOMEM;
    *out = db;
    if (cfg == NULL || cfg->size < sizeof(fv_open_config) || cfg->path == NULL ||
        cfg->path[0] == '\0')
        return fv__err(db, FV_EINVAL, "fv_open needs a config with its size set and a path");
    db->path = fv__strdup(cfg->path);
    db->user = fv__strdup(cfg->user ? cfg->user : "local");
    if (db->path == NULL || db->user == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
    if (strlen(db->user) > 256 || !fv__utf8_valid(db->user, strlen(db->user)))
        return fv__err(db, FV_EINVAL, "the user name is not valid UTF-8 of at most 256 bytes");

    int create = (cfg->flags & FV_OPEN_CREATE) != 0, created = 0;
    fv_status st = fv__keys_open(db, cfg, create, &created);
    if (st == FV_OK) st = open_sqlite(db, cfg->flags);
    if (st != FV_OK && created) discard_new_store(db);
    return st;
}

/* A store whose creation failed half way is removed, so that a retry of
 * "create" does not find a file that holds a key header and nothing else. */
static void discard_new_store(fv_db *db)
{
    for (size_t i = 0; i < db->nstmts; i++) {
        sqlite3_finalize(db->stmts[i].stmt);
        free((void *)db->stmts[i].sql);
    }
    db->nstmts = 0;
    if (db->sql != NULL) {
        sqlite3_close_v2(db->sql);
        db->sql = NULL;
    }
    sqlite3_vfs *base = sqlite3_vfs_find(NULL);
    size_t n = strlen(db->path) + 5;
    char *wal = malloc(n);
    if (wal != NULL) {
        snprintf(wal, n, "%s-wal", db->path);
        (void)base->xDelete(base, wal, 0);
        free(wal);
    }
    (void)base->xDelete(base, db->path, 1);
}

static fv_status open_sqlite(fv_db *db, unsigned flags)
{
    fv_status st;
    const fv__keyring *k = db->keys;
    size_t w = k->keys[0].epoch == k->write_epoch ? 0 : 1;
    int rc = fv__vfs_create(&db->vfs, k->keys[w].key, k->write_epoch);
    if (rc == SQLITE_OK && k->nkeys == 2)
        rc = fv__vfs_add_key(db->vfs, k->keys[1 - w].key, k->keys[1 - w].epoch, 0);
    if (rc != SQLITE_OK) return fv__err(db, FV_ENOMEM, "cannot set up the encrypting VFS");
    rc = sqlite3_open_v2(db->path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                         fv__vfs_name(db->vfs));
    /* The open reads page 1: keep the extended code (SQLITE_IOERR_DATA is
     * how the VFS reports a page that failed authentication). */
    if (rc != SQLITE_OK && db->sql != NULL) rc = sqlite3_extended_errcode(db->sql);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "opening the store");
    sqlite3_extended_result_codes(db->sql, 1);
    st = set_pragmas(db, flags);
    if (st == FV_OK && k->nkeys == 2) st = finish_rekey(db);
    if (st == FV_OK) st = fv__schema_migrate(db, fv_schema_version());
    if (st == FV_OK) st = fv__schema_load(db);
    if (st == FV_OK) st = fv__sync_state_load(db);
    if (st == FV_OK) st = fv__acl_load(db);
    return st;
}

fv_status fv_close(fv_db *db)
{
    if (db == NULL) return FV_OK;
    fv_status st = FV_OK;
    for (size_t i = 0; i < FV_INSERT_SQL_CACHE; i++) free(db->insert_sql[i].sql);
    if (db->in_batch) (void)sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
    for (size_t i = 0; i < db->nstmts; i++) {
        sqlite3_finalize(db->stmts[i].stmt);
        free((void *)db->stmts[i].sql);
    }
    if (db->sql != NULL && sqlite3_close(db->sql) != SQLITE_OK) {
        /* Lists still open: the contract was broken.  SQLite keeps the file
         * open until they are freed, so the VFS must outlive this handle:
         * leak it (and its keys) rather than pull it from under SQLite. */
        sqlite3_close_v2(db->sql);
        free(db->path);
        free(db->user);
        fv__schema_free(&db->cat);
        free(db);
        return FV_EMISUSE;
    }
    fv__vfs_destroy(db->vfs);
    fv__keys_free(db->keys);
    fv__schema_free(&db->cat);
    free(db->path);
    free(db->user);
    sodium_memzero(db, sizeof *db);
    free(db);
    return st;
}

/* ---- SQL helpers ---- */

/* Found by the caller's pointer first: nearly every call passes a literal
 * or records.c's cached INSERT text, so the slot last found through the
 * same pointer is the one, checked by content (a caller's buffer may hold
 * other SQL this time) with one strcmp instead of one per slot.  Then by
 * content alone. */
sqlite3_stmt *fv__stmt(fv_db *db, const char *sql)
{
    uintptr_t key = (uintptr_t)sql;
    size_t hit = db->nstmts;
    for (size_t i = 0; i < db->nstmts && hit == db->nstmts; i++)
        if (db->stmts[i].key == key && strcmp(db->stmts[i].sql, sql) == 0) hit = i;
    for (size_t i = 0; i < db->nstmts && hit == db->nstmts; i++)
        if (strcmp(db->stmts[i].sql, sql) == 0) {
            hit = i;
            db->stmts[i].key = key;
        }
    if (hit < db->nstmts) {
        sqlite3_stmt *s = db->stmts[hit].stmt;
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
    }
    if (db->nstmts == FV_STMT_CACHE) { /* evict the oldest */
        sqlite3_finalize(db->stmts[0].stmt);
        free((void *)db->stmts[0].sql);
        memmove(db->stmts, db->stmts + 1, (FV_STMT_CACHE - 1) * sizeof db->stmts[0]);
        db->nstmts--;
    }
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(db->sql, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        fv__sqlerr(db, rc, "preparing a statement");
        return NULL;
    }
    char *copy = fv__strdup(sql);
    if (copy == NULL) {
        sqlite3_finalize(s);
        fv__err(db, FV_ENOMEM, "out of memory");
        return NULL;
    }
    db->stmts[db->nstmts].sql = copy;
    db->stmts[db->nstmts].stmt = s;
    db->stmts[db->nstmts].key = key;
    db->nstmts++;
    return s;
}

fv_status fv__exec(fv_db *db, const char *sql)
{
    int rc = sqlite3_exec(db->sql, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? FV_OK : fv__sqlerr(db, rc, "writing to the store");
}

/* BEGIN IMMEDIATE and COMMIT run for every write: prepared once (the
 * statement cache) instead of parsed by sqlite3_exec each time.  SQLITE_OK
 * or the failing code (SQLITE_ERROR, error recorded, if the statement
 * cannot be prepared). */
static int run_tx_stmt(fv_db *db, const char *sql)
{
    sqlite3_stmt *s = fv__stmt(db, sql);
    if (s == NULL) return SQLITE_ERROR;
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

fv_status fv__tx_begin(fv_db *db, int *opened)
{
    *opened = 0;
    if (db->in_batch || !sqlite3_get_autocommit(db->sql)) return FV_OK;
    int rc = run_tx_stmt(db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "writing to the store");
    *opened = 1;
    return FV_OK;
}

/* COMMIT, with the clock made durable first (hlc.c: local writes leave it
 * to the commit).  Every commit of the store goes through here. */
static int commit(fv_db *db, fv_status *st)
{
    uint64_t saved;
    *st = fv__hlc_persist(db, &saved);
    if (*st != FV_OK) return SQLITE_ERROR;
    int rc = run_tx_stmt(db, "COMMIT");
    if (rc == SQLITE_OK) db->hlc_saved = saved;
    return rc;
}

/* A caller's batch keeps every page it dirties until its COMMIT; beyond
 * the page cache (SQLite's default, about 2 MB) they are spilled to the
 * WAL mid-transaction, then read back (decrypted) and rewritten: 10,000
 * visits in one batch cost 513k instructions a visit with the default
 * cache, 417k with 16 MiB (callgrind).  So a batch gets a larger cache
 * while it is open, and the previous size comes back when it ends: sync,
 * single writes and a store at rest keep their footprint (README's memory
 * figures).  Best effort: a pragma that fails changes only the speed, and
 * records no error. */
#define FV_BATCH_CACHE_KIB 16384

static void batch_cache(fv_db *db, int open)
{
    char sql[48];
    if (open) {
        sqlite3_stmt *s = NULL; /* once a batch: not worth a cache slot */
        db->cache_size_saved = 0;
        if (sqlite3_prepare_v2(db->sql, "PRAGMA cache_size", -1, &s, NULL) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
            db->cache_size_saved = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        if (db->cache_size_saved == 0) return;
        snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d", FV_BATCH_CACHE_KIB);
    } else {
        if (db->cache_size_saved == 0) return;
        snprintf(sql, sizeof sql, "PRAGMA cache_size = %d", db->cache_size_saved);
        db->cache_size_saved = 0;
    }
    (void)sqlite3_exec(db->sql, sql, NULL, NULL, NULL);
}

fv_status fv__tx_end(fv_db *db, int opened, fv_status st)
{
    if (!opened) return st;
    if (st == FV_OK) {
        int rc = commit(db, &st);
        if (rc == SQLITE_OK) return FV_OK;
        if (st == FV_OK) st = fv__sqlerr(db, rc, "committing");
    }
    (void)sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

fv_status fv_begin(fv_db *db)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (db->in_batch) return fv__err(db, FV_EMISUSE, "a batch is already open");
    int rc = run_tx_stmt(db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "writing to the store");
    db->in_batch = 1;
    batch_cache(db, 1);
    return FV_OK;
}

fv_status fv_commit(fv_db *db)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (!db->in_batch) return fv__err(db, FV_EMISUSE, "no batch is open");
    fv_status st = FV_OK;
    int rc = commit(db, &st);
    if (rc != SQLITE_OK) {
        if (st == FV_OK) st = fv__sqlerr(db, rc, "committing the batch");
        (void)sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        db->in_batch = 0;
        batch_cache(db, 0);
        return st;
    }
    db->in_batch = 0;
    batch_cache(db, 0);
    return FV_OK;
}

fv_status fv_rollback(fv_db *db)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (!db->in_batch) return fv__err(db, FV_EMISUSE, "no batch is open");
    db->in_batch = 0;
    fv_status st = fv__exec(db, "ROLLBACK");
    batch_cache(db, 0);
    return st;
}

/* ---- keys ---- */

fv_status fv_change_passphrase(fv_db *db, const char *passphrase, size_t len)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (db->in_batch) return fv__err(db, FV_EMISUSE, "finish the batch first");
    return fv__keys_set_passphrase(db, passphrase, len);
}

/* Rewrite every page under the write epoch, then forget the older key.
 * VACUUM rewrites every page (into the WAL, under the new epoch) in one
 * transaction; the checkpoint moves them into the database file; only then
 * does the header drop the old key.  A crash anywhere before the header
 * write leaves both keys in the header, and the next open comes back here. */
static fv_status finish_rekey(fv_db *db)
{
    fv__keyring *k = db->keys;
    fv_status st = fv__exec(db, "VACUUM");
    if (st == FV_OK) st = fv__exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    if (st != FV_OK) return st;
    int old = -1;
    int rc = sqlite3_file_control(db->sql, "main", FV_FCNTL_COUNT_OLD_EPOCH, &old);
    if (rc != SQLITE_OK || old != 0)
        return fv__err(db, FV_EINTERNAL, "rekey left %d pages under the old key", old);
    size_t keep = k->keys[0].epoch == k->write_epoch ? 0 : 1;
    uint32_t old_epoch = k->keys[1 - keep].epoch;
    if (keep == 1) memcpy(&k->keys[0], &k->keys[1], sizeof k->keys[0]);
    sodium_memzero(&k->keys[1], sizeof k->keys[1]);
    k->nkeys = 1;
    st = fv__keys_write_header(db);
    if (st == FV_OK) (void)fv__vfs_drop_key(db->vfs, old_epoch);
    return st;
}

fv_status fv_rekey(fv_db *db)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (db->in_batch) return fv__err(db, FV_EMISUSE, "finish the batch first");
    fv__keyring *k = db->keys;
    if (k->nkeys != 1) return fv__err(db, FV_EINTERNAL, "a rekey is already in progress");
    /* Step 1: both keys in the header, the new one current. */
    k->keys[1].epoch = k->write_epoch + 1;
    crypto_kdf_keygen(k->keys[1].key);
    k->nkeys = 2;
    uint32_t prev_epoch = k->write_epoch;
    k->write_epoch = k->keys[1].epoch;
    fv_status st = fv__keys_write_header(db);
    if (st != FV_OK) {
        sodium_memzero(&k->keys[1], sizeof k->keys[1]);
        k->nkeys = 1;
        k->write_epoch = prev_epoch;
        return st;
    }
    if (fv__vfs_add_key(db->vfs, k->keys[1].key, k->keys[1].epoch, 1) != SQLITE_OK)
        return fv__err(db, FV_EINTERNAL, "the VFS refused the new key");
    /* Step 2: rewrite every page and drop the old key. */
    return finish_rekey(db);
}

fv_status fv_check(fv_db *db)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    /* Move the WAL into the database file first: a page of the file left
     * torn by a killed checkpoint is still shadowed by its WAL frame, and the
     * checkpoint itself authenticates every frame it copies. */
    fv_status cst = fv__exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    if (cst != FV_OK) return cst;
    int result = SQLITE_OK;
    int rc = sqlite3_file_control(db->sql, "main", FV_FCNTL_VERIFY, &result);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "checking the store");
    if (result != SQLITE_OK) return fv__sqlerr(db, result, "checking the store");
    sqlite3_stmt *s = fv__stmt(db, "PRAGMA integrity_check");
    if (s == NULL) return db->err;
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) return fv__sqlerr(db, rc, "checking the store");
    const char *res = (const char *)sqlite3_column_text(s, 0);
    fv_status st = FV_OK;
    if (res == NULL || strcmp(res, "ok") != 0)
        st = fv__err(db, FV_ECORRUPT, "integrity check failed: %s", res ? res : "(no result)");
    sqlite3_reset(s);
    return st;
}
