/*
 * outbox.c - change capture: every local write of a field gets a version
 * (fv_versions: hlc, writing device, base = the version it replaced) and an
 * outbox entry (fv_outbox: the value as written, in write order), both in
 * the write's own transaction, so a change is never applied without being
 * captured nor captured without being applied.
 *
 * Tables (schema migration 3):
 *   fv_versions(tbl, row_id, field) -> hlc, device, base_hlc
 *   fv_outbox(seq) -> tbl, row_id, field, value, hlc, base_hlc
 * The pseudo-field "_deleted" carries a row's tombstone (1) or restore (0).
 */
#include "internal.h"

#include "fieldcrypt.h"

#include <string.h>

#include <sodium.h>

fv_status fv__sync_state_load(fv_db *db)
{
    sqlite3_stmt *s = fv__stmt(db, "SELECT value FROM fv_meta WHERE key = 'device_id'");
    if (s == NULL) return db->err;
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW || sqlite3_column_bytes(s, 0) != 16) {
        sqlite3_reset(s);
        return rc == SQLITE_ROW || rc == SQLITE_DONE
                   ? fv__err(db, FV_ECORRUPT, "the store has no valid device id")
                   : fv__sqlerr(db, rc, "reading the device id");
    }
    memcpy(db->device, sqlite3_column_blob(s, 0), 16);
    sqlite3_reset(s);

    /* The clock: the saved value, and never behind the last local write
     * (local writes do not save it: hlc.c, fv__hlc_persist). */
    s = fv__stmt(db, "SELECT coalesce((SELECT value FROM fv_meta WHERE key = 'hlc'), 0),"
                     " coalesce((SELECT hlc FROM fv_outbox ORDER BY seq DESC LIMIT 1), 0)");
    if (s == NULL) return db->err;
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return fv__sqlerr(db, rc, "reading the clock");
    }
    sqlite3_int64 meta = sqlite3_column_int64(s, 0), tail = sqlite3_column_int64(s, 1);
    db->hlc_saved = meta > 0 ? (uint64_t)meta : 0;
    db->hlc_last = tail > meta ? (uint64_t)tail : db->hlc_saved;
    sqlite3_reset(s);
    return FV_OK;
}

static void bind_cval(sqlite3_stmt *s, int col, const fv__cval *v)
{
    switch (v->type) {
    case SQLITE_TEXT: sqlite3_bind_text(s, col, v->text, -1, SQLITE_STATIC); break;
    case SQLITE_FLOAT: sqlite3_bind_double(s, col, v->real); break;
    case SQLITE_BLOB: sqlite3_bind_blob(s, col, v->blob, (int)v->len, SQLITE_STATIC); break;
    default: sqlite3_bind_null(s, col); break;
    }
}

/* The outbox entry of one field change (the version is already written). */
static fv_status put_outbox(fv_db *db, const char *tbl, const unsigned char id[16],
                            const char *field, const fv__cval *v, uint64_t hlc, uint64_t base)
{
    /* pii and confidential values leave the device sealed: the outbox
     * holds the ciphertext, so a retried batch re-sends the same bytes */
    static _Thread_local unsigned char sealed[FV_SEALED_BUF];
    fv__cval out = *v;
    fv_status st = fv__fkey_seal(db, tbl, id, field, &out, sealed, sizeof sealed);
    if (st != FV_OK) return st;
    v = &out;

    sqlite3_stmt *s = fv__stmt(db, "INSERT INTO fv_outbox(tbl, row_id, field, value, hlc, base_hlc)"
                                   " VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, tbl, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, id, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, field, -1, SQLITE_STATIC);
    bind_cval(s, 4, v);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)hlc);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)base);
    int rc = sqlite3_step(s);
    sqlite3_clear_bindings(s);
    sqlite3_reset(s);
    if (out.type == SQLITE_BLOB && out.blob == sealed) sodium_memzero(sealed, out.len);
    if (rc != SQLITE_DONE) return fv__sqlerr(db, rc, "writing the outbox");
    return FV_OK;
}

fv_status fv__capture(fv_db *db, const char *tbl, const unsigned char id[16], const char *field,
                      const fv__cval *v, uint64_t hlc)
{
    uint64_t base = 0;
    sqlite3_stmt *s = fv__stmt(db, "SELECT hlc FROM fv_versions WHERE tbl = ?1 AND row_id = ?2"
                                   " AND field = ?3");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, tbl, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, id, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, field, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) base = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fv__sqlerr(db, rc, "reading a version");

    s = fv__stmt(db, "INSERT OR REPLACE INTO fv_versions(tbl, row_id, field, hlc, device, base_hlc)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, tbl, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, id, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, field, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)hlc);
    sqlite3_bind_blob(s, 5, db->device, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)base);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return fv__sqlerr(db, rc, "writing a version");
    return put_outbox(db, tbl, id, field, v, hlc, base);
}

/* The versions of a new row, 1, 2, 4, 8 or 16 fields a statement: one
 * statement (one statement journal, one trigger check pass, one step)
 * where there was one per field.  ?1 tbl, ?2 row_id, ?3 hlc, ?4 device,
 * ?5... the field names; base 0 (nothing replaced). */
#define VERSIONS_INSERT "INSERT OR REPLACE INTO fv_versions(tbl, row_id, field, hlc, device, base_hlc) VALUES"
#define VROW(p) "(?1, ?2, ?" #p ", ?3, ?4, 0)"
#define VROWS2(a, b) VROW(a) "," VROW(b)
#define VROWS4(a, b, c, d) VROWS2(a, b) "," VROWS2(c, d)
static const char *const new_versions_sql[] = {
    VERSIONS_INSERT VROW(5),
    VERSIONS_INSERT VROWS2(5, 6),
    VERSIONS_INSERT VROWS4(5, 6, 7, 8),
    VERSIONS_INSERT VROWS4(5, 6, 7, 8) "," VROWS4(9, 10, 11, 12),
    VERSIONS_INSERT VROWS4(5, 6, 7, 8) "," VROWS4(9, 10, 11, 12) "," VROWS4(13, 14, 15, 16) ","
        VROWS4(17, 18, 19, 20),
};
#define NEW_VERSIONS_MAX 16 /* rows in the last statement above */

fv_status fv__capture_new_row(fv_db *db, const char *tbl, const unsigned char id[16], size_t n,
                              const char *const *fields, const fv__cval *vals, uint64_t hlc)
{
    for (size_t done = 0; done < n;) {
        size_t k = 0, rows = 1;
        while (rows * 2 <= n - done && rows * 2 <= NEW_VERSIONS_MAX) {
            rows *= 2;
            k++;
        }
        sqlite3_stmt *s = fv__stmt(db, new_versions_sql[k]);
        if (s == NULL) return db->err;
        sqlite3_bind_text(s, 1, tbl, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)hlc);
        sqlite3_bind_blob(s, 4, db->device, 16, SQLITE_STATIC);
        for (size_t j = 0; j < rows; j++)
            sqlite3_bind_text(s, 5 + (int)j, fields[done + j], -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return fv__sqlerr(db, rc, "writing a version");
        done += rows;
    }
    for (size_t j = 0; j < n; j++) {
        fv_status st = put_outbox(db, tbl, id, fields[j], &vals[j], hlc, 0);
        if (st != FV_OK) return st;
    }
    return FV_OK;
}
