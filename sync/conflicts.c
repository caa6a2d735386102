/*
 * conflicts.c - the conflict log: listing and resolving.
 *
 * apply (changes.c) writes an entry when a change and the current value were
 * written without knowledge of each other (merge.h).  Resolving writes the
 * kept value as a new local change, later than both sides, whose base is
 * the current version: every replica that logged the conflict marks it
 * resolved when that change arrives (changes.c, write_version).
 */
#include "sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

struct fv_conflict_list {
    fv_db *db;
    sqlite3_stmt *s;
    fv_conflict cur;
    char *mine, *theirs;
};

fv_status fv_conflicts_list(fv_db *db, int include_resolved, fv_conflict_list **out)
{
    if (db == NULL || out == NULL) return FV_EMISUSE;
    fv__reset(db);
    *out = NULL;
    fv_conflict_list *l = calloc(1, sizeof *l);
    if (l == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
    l->db = db;
    int rc = sqlite3_prepare_v2(db->sql,
        "SELECT id, tbl, row_id, field, mine_value, mine_hlc, mine_device, theirs_value,"
        " theirs_hlc, theirs_device, winner_is_mine, resolved_ms IS NOT NULL"
        " FROM fv_conflicts WHERE ?1 OR resolved_ms IS NULL"
        " ORDER BY detected_ms DESC, max(mine_hlc, theirs_hlc) DESC, id", -1, &l->s, NULL);
    if (rc != SQLITE_OK) {
        free(l);
        return fv__sqlerr(db, rc, "listing conflicts");
    }
    sqlite3_bind_int(l->s, 1, include_resolved != 0);
    *out = l;
    return FV_OK;
}

/* A stored value as text for display: REF ids formatted, numbers %.17g. */
static char *value_text(sqlite3_stmt *s, int col, const fv__field *f)
{
    char buf[64];
    switch (sqlite3_column_type(s, col)) {
    case SQLITE_NULL:
        return NULL;
    case SQLITE_INTEGER:
    case SQLITE_FLOAT:
        snprintf(buf, sizeof buf, "%.17g", sqlite3_column_double(s, col));
        return fv__strdup(buf);
    case SQLITE_BLOB:
        if (f != NULL && f->type == FV_TYPE_REF && sqlite3_column_bytes(s, col) == 16) {
            fv__uuid_format(sqlite3_column_blob(s, col), buf);
            return fv__strdup(buf);
        }
        return fv__strdup("(sealed)");
    default:
        return fv__strdup((const char *)sqlite3_column_text(s, col));
    }
}

fv_status fv_conflicts_next(fv_conflict_list *l, const fv_conflict **c)
{
    if (l == NULL || c == NULL) return FV_EMISUSE;
    fv_db *db = l->db;
    fv__reset(db);
    *c = NULL;
    free(l->mine);
    free(l->theirs);
    l->mine = l->theirs = NULL;
    int rc = sqlite3_step(l->s);
    if (rc == SQLITE_DONE) return FV_OK;
    if (rc != SQLITE_ROW) return fv__sqlerr(db, rc, "listing conflicts");
    fv_conflict *k = &l->cur;
    memset(k, 0, sizeof *k);
    if (sqlite3_column_bytes(l->s, 0) != 16 || sqlite3_column_bytes(l->s, 2) != 16 ||
        sqlite3_column_bytes(l->s, 6) != 16 || sqlite3_column_bytes(l->s, 9) != 16)
        return fv__err(db, FV_ECORRUPT, "a conflict log entry is malformed");
    fv__hex(sqlite3_column_blob(l->s, 0), 16, k->id);
    snprintf(k->table, sizeof k->table, "%s", (const char *)sqlite3_column_text(l->s, 1));
    fv__uuid_format(sqlite3_column_blob(l->s, 2), k->row_id);
    snprintf(k->field, sizeof k->field, "%s", (const char *)sqlite3_column_text(l->s, 3));
    const fv__table *t = fv__schema_table(db, k->table);
    const fv__field *f = t ? fv__schema_field(t, k->field, NULL) : NULL;
    l->mine = value_text(l->s, 4, f);
    l->theirs = value_text(l->s, 7, f);
    k->mine = l->mine;
    k->theirs = l->theirs;
    k->mine_hlc = (uint64_t)sqlite3_column_int64(l->s, 5);
    k->theirs_hlc = (uint64_t)sqlite3_column_int64(l->s, 8);
    fv__hex(sqlite3_column_blob(l->s, 6), 16, k->mine_device);
    fv__hex(sqlite3_column_blob(l->s, 9), 16, k->theirs_device);
    k->winner_is_mine = sqlite3_column_int(l->s, 10);
    k->resolved = sqlite3_column_int(l->s, 11);
    *c = k;
    return FV_OK;
}

fv_status fv_conflicts_free(fv_conflict_list *l)
{
    if (l == NULL) return FV_OK;
    sqlite3_finalize(l->s);
    free(l->mine);
    free(l->theirs);
    free(l);
    return FV_OK;
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
    if (s == NULL || strlen(s) != 2 * n) return 0;
    for (size_t i = 0; i < 2 * n; i++) {
        char ch = s[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
              : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (v < 0) return 0;
        if (i % 2 == 0) out[i / 2] = (unsigned char)(v << 4);
        else out[i / 2] |= (unsigned char)v;
    }
    return 1;
}

fv_status fv_conflict_resolve(fv_db *db, const char *id, fv_keep keep)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    unsigned char key[16];
    if (!unhex(id, key, 16))
        return fv__err(db, FV_EINVAL, "'%.40s' is not a conflict id (32 hex characters)",
                       id ? id : "");
    if (keep != FV_KEEP_MINE && keep != FV_KEEP_THEIRS)
        return fv__err(db, FV_EINVAL, "keep must be mine or theirs");
    if (db->in_batch) return fv__err(db, FV_EMISUSE, "finish the batch first");
    int opened;
    fv_status st = fv__tx_begin(db, &opened);
    if (st != FV_OK) return st;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db->sql,
        "SELECT tbl, row_id, field, CASE WHEN ?2 THEN theirs_value ELSE mine_value END,"
        " resolved_ms IS NOT NULL FROM fv_conflicts WHERE id = ?1", -1, &s, NULL);
    if (rc != SQLITE_OK) st = fv__sqlerr(db, rc, "reading a conflict");
    if (st == FV_OK) {
        sqlite3_bind_blob(s, 1, key, 16, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, keep == FV_KEEP_THEIRS);
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) st = fv__err(db, FV_ENOTFOUND, "no conflict %s", id);
        else if (rc != SQLITE_ROW) st = fv__sqlerr(db, rc, "reading a conflict");
        else if (sqlite3_column_int(s, 4)) st = fv__err(db, FV_EINVAL, "conflict %s is already resolved", id);
    }
    const fv__table *t = NULL;
    const fv__field *f = NULL;
    const char *field = NULL;
    if (st == FV_OK) {
        t = fv__schema_table(db, (const char *)sqlite3_column_text(s, 0));
        field = (const char *)sqlite3_column_text(s, 2);
        if (t != NULL && field != NULL && strcmp(field, FV_FIELD_DELETED) != 0)
            f = fv__schema_field(t, field, NULL);
        if (t == NULL || field == NULL || (f == NULL && strcmp(field, FV_FIELD_DELETED) != 0) ||
            sqlite3_column_bytes(s, 1) != 16)
            st = fv__err(db, FV_ECORRUPT, "conflict %s names an unknown field", id);
    }
    if (st == FV_OK) {
        unsigned char row[16];
        memcpy(row, sqlite3_column_blob(s, 1), 16);
        char sql[256];
        snprintf(sql, sizeof sql, "UPDATE \"%s\" SET %s%s%s = ?2, updated_ms = ?3 WHERE id = ?1",
                 t->name, f ? "\"" : "", f ? f->name : "deleted", f ? "\"" : "");
        sqlite3_stmt *u = fv__stmt(db, sql);
        if (u == NULL) st = db->err;
        if (st == FV_OK) {
            sqlite3_bind_blob(u, 1, row, 16, SQLITE_STATIC);
            sqlite3_bind_value(u, 2, sqlite3_column_value(s, 3));
            sqlite3_bind_int64(u, 3, fv_platform_now_ms());
            rc = sqlite3_step(u);
            sqlite3_reset(u);
            if (rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "writing the kept value");
        }
        uint64_t hlc = 0;
        if (st == FV_OK) st = fv__hlc_next(db, &hlc);
        if (st == FV_OK) {
            fv__cval cv = {sqlite3_column_type(s, 3), NULL, NULL, 0, 0.0};
            if (cv.type == SQLITE_INTEGER) cv.type = SQLITE_FLOAT;
            if (cv.type == SQLITE_TEXT) cv.text = (const char *)sqlite3_column_text(s, 3);
            if (cv.type == SQLITE_FLOAT) cv.real = sqlite3_column_double(s, 3);
            if (cv.type == SQLITE_BLOB) {
                cv.blob = sqlite3_column_blob(s, 3);
                cv.len = (size_t)sqlite3_column_bytes(s, 3);
            }
            char tname[FV_NAME_MAX + 1], fname[FV_NAME_MAX + 1];
            snprintf(tname, sizeof tname, "%s", t->name);
            snprintf(fname, sizeof fname, "%s", field);
            st = fv__capture(db, tname, row, fname, &cv, hlc);
        }
        if (st == FV_OK) {
            sqlite3_stmt *m = fv__stmt(db, "UPDATE fv_conflicts SET resolved_ms = ?2 WHERE id = ?1");
            if (m == NULL) st = db->err;
            if (st == FV_OK) {
                sqlite3_bind_blob(m, 1, key, 16, SQLITE_STATIC);
                sqlite3_bind_int64(m, 2, fv_platform_now_ms());
                rc = sqlite3_step(m);
                sqlite3_reset(m);
                if (rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "marking the conflict resolved");
            }
        }
    }
    sqlite3_finalize(s);
    return fv__tx_end(db, opened, st);
}
