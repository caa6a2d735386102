/*
 * history.c - reading the transitions of the followed fields (fv_history).
 *
 * The table is filled by triggers on fv_versions (schema migration 5,
 * schema.c), so every path that stores a new version of customer.stage or
 * customer.grade - a local write, a pulled or imported change that wins -
 * records it in the same transaction.  This file only reads it:
 * fv_history_each walks the entries of one field in a time range, oldest
 * first, and applies the access policy by asking fv_get for each entry's
 * record (so scope, deletion and field redaction are judged exactly as for
 * a read; the last answer is kept, since entries of one record tend to be
 * read together in a report).  The walk uses its own prepared statement,
 * not the shared cache, so the callback may call the reading functions.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Is the record (table, id) readable now, with field not redacted? */
static fv_status readable(fv_db *db, const char *table, const char *id, const char *field,
                          int *ok)
{
    fv_record *r = NULL;
    *ok = 0;
    fv_status st = fv_get(db, table, id, &r);
    if (st == FV_ENOTFOUND) {
        fv__reset(db); /* not an error of this call: the entry is skipped */
        return FV_OK;
    }
    if (st != FV_OK) return st;
    int red = 0;
    st = fv_record_redacted(r, field, &red);
    fv_record_free(r);
    if (st != FV_OK) return fv__err(db, st, "reading %s.%s of %s", table, field, id);
    *ok = !red;
    return FV_OK;
}

fv_status fv_history_each(fv_db *db, const char *table, const char *field, int64_t since_ms,
                          int64_t until_ms, fv_history_fn fn, void *ctx)
{
    if (db == NULL || fn == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (table == NULL || field == NULL || strcmp(table, "customer") != 0 ||
        (strcmp(field, "stage") != 0 && strcmp(field, "grade") != 0))
        return fv__err(db, FV_EINVAL, "history is kept for customer.stage and customer.grade only"
                                      " (asked for %.64s.%.64s)",
                       table ? table : "(null)", field ? field : "(null)");
    /* an hlc holds 48 bits of milliseconds; as an SQLite integer (signed
     * 64 bits) the bounds must stay below 2^47 ms */
    const int64_t ms_max = ((int64_t)1 << 47) - 1;
    if (since_ms < 0) since_ms = 0;
    if (until_ms <= 0 || until_ms > ms_max) until_ms = ms_max;
    if (since_ms > ms_max) since_ms = ms_max;
    if (since_ms >= until_ms) return FV_OK;

    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(db->sql,
        "SELECT row_id, old_value, new_value, hlc, device FROM fv_history"
        " WHERE tbl = ?1 AND field = ?2 AND hlc >= ?3 AND hlc < ?4 ORDER BY hlc, seq",
        -1, 0, &s, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "reading the history");
    sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, field, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)((uint64_t)since_ms << 16));
    sqlite3_bind_int64(s, 4, (sqlite3_int64)((uint64_t)until_ms << 16));

    fv_status st = FV_OK;
    char last_id[FV_ID_LEN + 1] = "";
    int last_ok = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        fv_history_entry e;
        char id[FV_ID_LEN + 1];
        memset(&e, 0, sizeof e);
        if (sqlite3_column_bytes(s, 0) != 16) {
            st = fv__err(db, FV_ECORRUPT, "a history entry has a malformed record id");
            break;
        }
        fv__uuid_format(sqlite3_column_blob(s, 0), id);
        if (strcmp(id, last_id) != 0) {
            st = readable(db, table, id, field, &last_ok);
            if (st != FV_OK) break;
            memcpy(last_id, id, sizeof id);
        }
        if (!last_ok) continue;
        e.table = table;
        e.row_id = id;
        e.field = field;
        e.old_value = (const char *)sqlite3_column_text(s, 1);
        e.new_value = (const char *)sqlite3_column_text(s, 2);
        e.hlc = (uint64_t)sqlite3_column_int64(s, 3);
        const unsigned char *dev = sqlite3_column_blob(s, 4);
        if (dev != NULL && sqlite3_column_bytes(s, 4) == 16)
            for (size_t i = 0; i < 16; i++) snprintf(e.device + 2 * i, 3, "%02x", dev[i]);
        if (fn(ctx, &e) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (st == FV_OK && rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "reading the history");
    sqlite3_finalize(s);
    if (st == FV_OK) fv__reset(db); /* a callback's own calls leave no stale error */
    return st;
}
