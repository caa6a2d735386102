/*
 * changes.c - change sets: export (the outbox, or the full state) and apply
 * (merge each change into the store), the device id and the state hash.
 *
 * Export reads changes from a SQLite statement one at a time and hands them
 * to the streaming encoder (wire.c); apply is the decoder's sink, so neither
 * holds a change set in memory.  Apply runs in one transaction: a set is
 * applied whole or, on the first bad change, not at all.
 *
 * Per change, apply: checks the change against the catalogue and the
 * field's rules (the same validation as a local write), refuses a clock
 * beyond the drift bound, reads the field's current version and value,
 * asks the merge rule (merge.c) and then writes the value and version, logs
 * a conflict, and marks settled conflicts resolved.  Statements are
 * prepared once per (table, field) for the duration of one apply.
 */
#include "sync.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "custmerge.h"
#include "dedup.h"
#include "merge.h"
#include "platform.h"
#include "records.h"
#include "wire.h"

/* ---- values ------------------------------------------------------------ */

/* A stored column value as a change value (REF blobs become id text). */
static int column_to_change(sqlite3_stmt *s, int col, const fv__field *f, fv__change *c)
{
    c->kind = FV__VAL_NULL;
    c->len = 0;
    c->data[0] = '\0';
    switch (sqlite3_column_type(s, col)) {
    case SQLITE_NULL:
        return 0;
    case SQLITE_INTEGER:
    case SQLITE_FLOAT:
        c->kind = FV__VAL_REAL;
        c->real = sqlite3_column_double(s, col);
        return 0;
    case SQLITE_BLOB: {
        const void *b = sqlite3_column_blob(s, col);
        int n = sqlite3_column_bytes(s, col);
        if (f != NULL && f->type == FV_TYPE_REF) {
            if (n != 16) return -1;
            fv__uuid_format(b, (char *)c->data);
            c->kind = FV__VAL_TEXT;
            c->len = FV_ID_LEN;
            return 0;
        }
        if (n < 0 || (size_t)n > FV_SEALED_MAX) return -1;
        c->kind = FV__VAL_SEALED;
        c->len = (size_t)n;
        if (n > 0) memcpy(c->data, b, (size_t)n);
        return 0;
    }
    default: {
        const unsigned char *t = sqlite3_column_text(s, col);
        int n = sqlite3_column_bytes(s, col);
        if (t == NULL || n < 0 || (size_t)n > FV_SEALED_MAX) return -1;
        c->kind = FV__VAL_TEXT;
        c->len = (size_t)n;
        memcpy(c->data, t, (size_t)n);
        c->data[n] = '\0';
        return 0;
    }
    }
}

/* ---- export ------------------------------------------------------------- */


static fv_status prepare_table_scan(export_src *x)
{
    fv_db *db = x->db;
    const fv__table *t = &db->cat.tables[x->table];
    char sql[8192];
    size_t n = (size_t)snprintf(sql, sizeof sql,
                                "SELECT v.row_id, v.field, v.hlc, v.device, v.base_hlc, t.deleted");
    for (size_t i = 0; i < t->nfields && n < sizeof sql; i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, ", t.\"%s\"", t->fields[i].name);
    if (n < sizeof sql)
        snprintf(sql + n, sizeof sql - n,
                 " FROM fv_versions v JOIN \"%s\" t ON t.id = v.row_id WHERE v.tbl = ?1"
                 " ORDER BY v.row_id, v.field", t->name);
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, &x->s, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "reading the state");
    sqlite3_bind_text(x->s, 1, t->name, -1, SQLITE_STATIC);
    return FV_OK;
}

static int next_all(export_src *x, fv__change *c)
{
    fv_db *db = x->db;
    for (;;) {
        if (x->s == NULL) {
            if (x->table >= db->cat.ntables) return 0;
            if ((x->st = prepare_table_scan(x)) != FV_OK) return -1;
        }
        int rc = sqlite3_step(x->s);
        if (rc == SQLITE_DONE) {
            sqlite3_finalize(x->s);
            x->s = NULL;
            x->table++;
            continue;
        }
        if (rc != SQLITE_ROW) {
            x->st = fv__sqlerr(db, rc, "reading the state");
            return -1;
        }
        const fv__table *t = &db->cat.tables[x->table];
        const char *field = (const char *)sqlite3_column_text(x->s, 1);
        if (field == NULL || sqlite3_column_bytes(x->s, 0) != 16 ||
            sqlite3_column_bytes(x->s, 3) != 16) {
            x->st = fv__err(db, FV_ECORRUPT, "a version of %s is malformed", t->name);
            return -1;
        }
        memset(c, 0, offsetof(fv__change, data));
        snprintf(c->table, sizeof c->table, "%s", t->name);
        snprintf(c->field, sizeof c->field, "%s", field);
        memcpy(c->row_id, sqlite3_column_blob(x->s, 0), 16);
        memcpy(c->device, sqlite3_column_blob(x->s, 3), 16);
        c->hlc = (uint64_t)sqlite3_column_int64(x->s, 2);
        c->base_hlc = (uint64_t)sqlite3_column_int64(x->s, 4);
        if (strcmp(field, FV_FIELD_DELETED) == 0) {
            c->kind = FV__VAL_REAL;
            c->real = sqlite3_column_int(x->s, 5) ? 1.0 : 0.0;
            c->data[0] = '\0';
            return 1;
        }
        size_t idx;
        const fv__field *f = fv__schema_field(t, field, &idx);
        if (f == NULL) continue; /* a field no longer in the catalogue */
        if (column_to_change(x->s, 6 + (int)idx, f, c) != 0) {
            x->st = fv__err(db, FV_ECORRUPT, "a value of %s.%s is malformed", t->name, f->name);
            return -1;
        }
        return 1;
    }
}

static int next_pending(export_src *x, fv__change *c)
{
    fv_db *db = x->db;
    int rc = sqlite3_step(x->s);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) {
        x->st = fv__sqlerr(db, rc, "reading the outbox");
        return -1;
    }
    const char *tbl = (const char *)sqlite3_column_text(x->s, 0);
    const char *field = (const char *)sqlite3_column_text(x->s, 2);
    const fv__table *t = fv__schema_table(db, tbl);
    if (t == NULL || field == NULL || sqlite3_column_bytes(x->s, 1) != 16) {
        x->st = fv__err(db, FV_ECORRUPT, "an outbox entry is malformed");
        return -1;
    }
    memset(c, 0, offsetof(fv__change, data));
    snprintf(c->table, sizeof c->table, "%s", t->name);
    snprintf(c->field, sizeof c->field, "%s", field);
    memcpy(c->row_id, sqlite3_column_blob(x->s, 1), 16);
    memcpy(c->device, db->device, 16);
    c->hlc = (uint64_t)sqlite3_column_int64(x->s, 4);
    c->base_hlc = (uint64_t)sqlite3_column_int64(x->s, 5);
    c->device_seq = (uint64_t)sqlite3_column_int64(x->s, 6);
    x->last_seq = c->device_seq;
    const fv__field *f = fv__schema_field(t, field, NULL);
    if (column_to_change(x->s, 3, f, c) != 0) {
        x->st = fv__err(db, FV_ECORRUPT, "an outbox value of %s.%s is malformed", t->name, field);
        return -1;
    }
    return 1;
}

int fv__export_next(void *ctx, fv__change *c)
{
    export_src *x = ctx;
    return x->all ? next_all(x, c) : next_pending(x, c);
}

fv_status fv__outbox_source_init(export_src *x, fv_db *db, uint64_t since, uint64_t upto)
{
    memset(x, 0, sizeof *x);
    x->db = db;
    x->last_seq = since;
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT tbl, row_id, field, value, hlc, base_hlc, seq"
                                " FROM fv_outbox WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
                                -1, &x->s, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "reading the outbox");
    sqlite3_bind_int64(x->s, 1, (sqlite3_int64)since);
    sqlite3_bind_int64(x->s, 2, upto ? (sqlite3_int64)upto : INT64_MAX);
    return FV_OK;
}

void fv__outbox_source_done(export_src *x)
{
    sqlite3_finalize(x->s);
    x->s = NULL;
}

fv_status fv_changes_export(fv_db *db, unsigned flags, uint64_t since_seq, fv_write_fn w,
                            void *ctx, fv_export_info *info)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (w == NULL || (info != NULL && info->size < sizeof *info))
        return fv__err(db, FV_EMISUSE, "fv_changes_export: no writer, or info.size not set");
    if (flags & ~FV_EXPORT_ALL) return fv__err(db, FV_EINVAL, "unknown export flags 0x%x", flags);
    export_src x = {db, NULL, (flags & FV_EXPORT_ALL) != 0, 0, since_seq, FV_OK};
    int opened = 0;
    fv_status st = fv__tx_begin(db, &opened); /* one consistent snapshot */
    if (st != FV_OK) return st;
    if (!x.all) st = fv__outbox_source_init(&x, db, since_seq, 0);
    uint64_t count = 0;
    if (st == FV_OK) {
        char err[256] = "";
        st = fv__wire_encode_changeset(db->device, fv__export_next, &x, w, ctx, &count, err,
                                       sizeof err);
        if (st != FV_OK)
            st = x.st != FV_OK ? x.st : fv__err(db, st, "writing the change set: %s", err);
    }
    sqlite3_finalize(x.s);
    st = fv__tx_end(db, opened, st);
    if (st == FV_OK && info != NULL) {
        info->count = count;
        info->last_seq = x.last_seq;
    }
    return st;
}

typedef struct file_sink {
    FILE *f;
    int err;
} file_sink;

static int file_write(void *ctx, const unsigned char *buf, size_t len)
{
    file_sink *fs = ctx;
    if (fwrite(buf, 1, len, fs->f) != len) {
        fs->err = errno;
        return -1;
    }
    return 0;
}

fv_status fv_changes_export_file(fv_db *db, const char *path, unsigned flags, fv_export_info *info)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (path == NULL || *path == '\0') return fv__err(db, FV_EINVAL, "no file name given");
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (tmp == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
    snprintf(tmp, n, "%s.partial", path);
    file_sink fs = {fopen(tmp, "wb"), 0};
    if (fs.f == NULL) {
        fv_status st = fv__err(db, FV_EIO, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    fv_status st = fv_changes_export(db, flags, 0, file_write, &fs, info);
    if (st == FV_OK && fs.err == 0 && fflush(fs.f) != 0) fs.err = errno;
    if (st == FV_OK && fs.err == 0 && fv_platform_fsync_file(fs.f) != 0) fs.err = errno;
    if (fclose(fs.f) != 0 && fs.err == 0) fs.err = errno;
    if (st == FV_OK && fs.err != 0)
        st = fv__err(db, FV_EIO, "writing %s: %s", path, strerror(fs.err));
    if (st == FV_OK && rename(tmp, path) != 0)
        st = fv__err(db, FV_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (st != FV_OK) remove(tmp);
    free(tmp);
    return st;
}

/* ---- apply -------------------------------------------------------------- */

typedef struct field_stmts {
    sqlite3_stmt *read;   /* SELECT "f" FROM t WHERE id = ?1 */
    sqlite3_stmt *write;  /* UPDATE t SET "f" = ?2, updated_ms = ?3 WHERE id = ?1 */
} field_stmts;

typedef struct applier {
    fv_db *db;
    unsigned char (*moved)[16]; /* customers whose owner or team changed */
    size_t nmoved, capmoved;
    fv_status failed;      /* why the sink stopped the decode */
    int imported;          /* a change-set file: the user's rights apply (acl.c) */
    fv_apply_stats stats;
    int64_t now;
    field_stmts fs[FV_TABLES_MAX][FV_RECORD_FIELDS_MAX + 1]; /* last: _deleted */
    sqlite3_stmt *ensure_row[FV_TABLES_MAX];
} applier;

static void applier_free(applier *a)
{
    for (size_t t = 0; t < FV_TABLES_MAX; t++) {
        sqlite3_finalize(a->ensure_row[t]);
        for (size_t f = 0; f <= FV_RECORD_FIELDS_MAX; f++) {
            sqlite3_finalize(a->fs[t][f].read);
            sqlite3_finalize(a->fs[t][f].write);
        }
    }
}

static fv_status prep(fv_db *db, sqlite3_stmt **s, const char *sql)
{
    if (*s != NULL) {
        sqlite3_reset(*s);
        sqlite3_clear_bindings(*s);
        return FV_OK;
    }
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, s, NULL);
    return rc == SQLITE_OK ? FV_OK : fv__sqlerr(db, rc, "preparing the apply");
}

static fv_status field_stmts_for(applier *a, size_t ti, size_t fi, const char *col,
                                 field_stmts **out)
{
    fv_db *db = a->db;
    const fv__table *t = &db->cat.tables[ti];
    field_stmts *fs = &a->fs[ti][fi];
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM \"%s\" WHERE id = ?1", col, t->name);
    fv_status st = prep(db, &fs->read, sql);
    snprintf(sql, sizeof sql, "UPDATE \"%s\" SET %s = ?2, updated_ms = ?3 WHERE id = ?1", t->name,
             col);
    if (st == FV_OK) st = prep(db, &fs->write, sql);
    snprintf(sql, sizeof sql,
             "INSERT OR IGNORE INTO \"%s\"(id, deleted, created_ms, updated_ms) VALUES(?1, 0, ?2, ?2)",
             t->name);
    if (st == FV_OK) st = prep(db, &a->ensure_row[ti], sql);
    *out = fs;
    return st;
}

/* The incoming value, checked against the field's rules, as stored. */
typedef struct stored {
    fv__cval v;
    unsigned char ref[16];
    char norm[FV_ID_LEN + 24];
    int opened;                  /* plain holds an opened sealed value: wipe it */
    char plain[FV_SEALED_MAX + 1];
} stored;

static fv_status to_stored(fv_db *db, const fv__table *t, const fv__field *f, const fv__change *c,
                           stored *out)
{
    memset(&out->v, 0, sizeof out->v);
    out->v.type = SQLITE_NULL;
    out->opened = 0;
    if (f == NULL) { /* _deleted */
        if (c->kind != FV__VAL_REAL || (c->real != 0.0 && c->real != 1.0))
            return fv__err(db, FV_EPROTO, "%s._deleted must be 0 or 1", t->name);
        out->v.type = SQLITE_FLOAT;
        out->v.real = c->real;
        return FV_OK;
    }
    switch (c->kind) {
    case FV__VAL_NULL:
        if (f->required) return fv__err(db, FV_EPROTO, "%s.%s is required: it cannot be cleared",
                                        t->name, f->name);
        return FV_OK;
    case FV__VAL_REAL:
        if (f->type != FV_TYPE_REAL)
            return fv__err(db, FV_EPROTO, "%s.%s holds text, the change carries a number", t->name,
                           f->name);
        if (!isfinite(c->real))
            return fv__err(db, FV_EPROTO, "%s.%s must be a finite number", t->name, f->name);
        out->v.type = SQLITE_FLOAT;
        out->v.real = c->real;
        return FV_OK;
    case FV__VAL_TEXT: {
        if (f->type == FV_TYPE_REAL)
            return fv__err(db, FV_EPROTO, "%s.%s holds a number, the change carries text", t->name,
                           f->name);
        if (strlen((const char *)c->data) != c->len)
            return fv__err(db, FV_EPROTO, "%s.%s contains a NUL byte", t->name, f->name);
        fv_status st = fv__validate_text(db, t, f, (const char *)c->data, out->norm,
                                         sizeof out->norm);
        if (st != FV_OK) { /* the field's rule was broken: a protocol error */
            char msg[FV_ERRMSG_MAX];
            snprintf(msg, sizeof msg, "%s", fv_errmsg(db));
            fv__reset(db);
            return fv__err(db, FV_EPROTO, "%s", msg);
        }
        if (f->type == FV_TYPE_REF) {
            if (!fv__uuid_parse((const char *)c->data, out->ref))
                return fv__err(db, FV_EPROTO, "%s.%s is not a record id", t->name, f->name);
            out->v.type = SQLITE_BLOB;
            out->v.blob = out->ref;
            out->v.len = 16;
            return FV_OK;
        }
        out->v.type = SQLITE_TEXT;
        out->v.text = out->norm[0] != '\0' ? out->norm : (const char *)c->data;
        return FV_OK;
    }
    case FV__VAL_SEALED: {
        if (f->cls == FV_CLASS_PUBLIC || f->type == FV_TYPE_REF)
            return fv__err(db, FV_EPROTO, "%s.%s is public: it is never sealed", t->name, f->name);
        /* Opened with a key this device holds, it is checked and stored
         * like any value; else it is stored sealed: it reads as redacted
         * (no key yet, opened when a grant brings it) or as FV_ECORRUPT
         * (it fails authentication: moved or altered). */
        fv_status st = FV_OK;
        double real = 0;
        int k = fv__fkey_open(db, t->name, c->row_id, f, c->data, c->len, out->plain,
                              sizeof out->plain, &real, &st);
        if (st != FV_OK) return st;
        if (k == FV__OPEN_REAL) {
            if (!isfinite(real))
                return fv__err(db, FV_EPROTO, "%s.%s must be a finite number", t->name, f->name);
            out->v.type = SQLITE_FLOAT;
            out->v.real = real;
            return FV_OK;
        }
        if (k == FV__OPEN_TEXT) {
            out->opened = 1;
            fv_status vst = fv__validate_text(db, t, f, out->plain, out->norm, sizeof out->norm);
            if (vst != FV_OK) {
                char msg[FV_ERRMSG_MAX];
                snprintf(msg, sizeof msg, "%s", fv_errmsg(db));
                fv__reset(db);
                return fv__err(db, FV_EPROTO, "%s", msg);
            }
            out->v.type = SQLITE_TEXT;
            out->v.text = out->norm[0] != '\0' ? out->norm : out->plain;
            return FV_OK;
        }
        out->v.type = SQLITE_BLOB;
        out->v.blob = c->data;
        out->v.len = c->len;
        return FV_OK;
    }
    }
    return fv__err(db, FV_EPROTO, "%s.%s: unknown value kind", t->name, f->name);
}

static void bind_stored(sqlite3_stmt *s, int col, const fv__cval *v)
{
    switch (v->type) {
    case SQLITE_TEXT: sqlite3_bind_text(s, col, v->text, -1, SQLITE_TRANSIENT); break;
    case SQLITE_FLOAT: sqlite3_bind_double(s, col, v->real); break;
    case SQLITE_BLOB: sqlite3_bind_blob(s, col, v->blob, (int)v->len, SQLITE_TRANSIENT); break;
    default: sqlite3_bind_null(s, col); break;
    }
}

/* Is column 0 of s (a current value) equal to v? */
static int same_value(sqlite3_stmt *s, const fv__cval *v)
{
    int type = sqlite3_column_type(s, 0);
    if (type == SQLITE_INTEGER) type = SQLITE_FLOAT;
    if (type != v->type) return 0;
    switch (type) {
    case SQLITE_NULL: return 1;
    case SQLITE_FLOAT: return sqlite3_column_double(s, 0) == v->real;
    case SQLITE_BLOB:
        return (size_t)sqlite3_column_bytes(s, 0) == v->len &&
               memcmp(sqlite3_column_blob(s, 0), v->blob, v->len) == 0;
    default: {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        return t != NULL && strcmp(t, v->text) == 0;
    }
    }
}

static void conflict_id(const fv__change *c, const fv__ver *loser, unsigned char out[16])
{
    crypto_generichash_state h;
    unsigned char n[8];
    crypto_generichash_init(&h, NULL, 0, 16);
    crypto_generichash_update(&h, (const unsigned char *)c->table, strlen(c->table) + 1);
    crypto_generichash_update(&h, c->row_id, 16);
    crypto_generichash_update(&h, (const unsigned char *)c->field, strlen(c->field) + 1);
    for (int i = 0; i < 8; i++) n[i] = (unsigned char)(loser->hlc >> (56 - 8 * i));
    crypto_generichash_update(&h, n, 8);
    crypto_generichash_update(&h, loser->device, 16);
    crypto_generichash_final(&h, out, 16);
}

static fv_status log_conflict(applier *a, const fv__change *c, const fv__ver *local,
                              sqlite3_stmt *cur, const fv__cval *incoming, int take)
{
    fv_db *db = a->db;
    fv__ver inv = {c->hlc, {0}, c->base_hlc};
    memcpy(inv.device, c->device, 16);
    unsigned char id[16];
    conflict_id(c, take ? local : &inv, id);
    /* The same winner against the same losing value is logged already
     * (an equal value from another writer, seen in another order): one
     * entry, so applying a set again never adds one. */
    const fv__ver *w = take ? &inv : local;
    sqlite3_stmt *q = fv__stmt(db,
        "SELECT 1 FROM fv_conflicts WHERE tbl = ?1 AND row_id = ?2 AND field = ?3 AND"
        " ((winner_is_mine = 1 AND mine_hlc = ?4 AND mine_device = ?5 AND theirs_value IS ?6) OR"
        "  (winner_is_mine = 0 AND theirs_hlc = ?4 AND theirs_device = ?5 AND mine_value IS ?6))");
    if (q == NULL) return db->err;
    sqlite3_bind_text(q, 1, c->table, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, c->row_id, 16, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, c->field, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)w->hlc);
    sqlite3_bind_blob(q, 5, w->device, 16, SQLITE_STATIC);
    if (take) sqlite3_bind_value(q, 6, sqlite3_column_value(cur, 0)); /* the loser: local */
    else bind_stored(q, 6, incoming);                                 /* the loser: incoming */
    int qrc = sqlite3_step(q);
    sqlite3_reset(q);
    if (qrc == SQLITE_ROW) return FV_OK;
    if (qrc != SQLITE_DONE) return fv__sqlerr(db, qrc, "reading the conflict log");
    sqlite3_stmt *s = fv__stmt(db,
        "INSERT OR IGNORE INTO fv_conflicts(id, tbl, row_id, field, mine_value, mine_hlc,"
        " mine_device, theirs_value, theirs_hlc, theirs_device, winner_is_mine, detected_ms)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, c->table, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, c->row_id, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, c->field, -1, SQLITE_STATIC);
    sqlite3_bind_value(s, 5, sqlite3_column_value(cur, 0));
    sqlite3_bind_int64(s, 6, (sqlite3_int64)local->hlc);
    sqlite3_bind_blob(s, 7, local->device, 16, SQLITE_STATIC);
    bind_stored(s, 8, incoming);
    sqlite3_bind_int64(s, 9, (sqlite3_int64)c->hlc);
    sqlite3_bind_blob(s, 10, c->device, 16, SQLITE_STATIC);
    sqlite3_bind_int(s, 11, !take);
    sqlite3_bind_int64(s, 12, a->now);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return fv__sqlerr(db, rc, "logging a conflict");
    if (sqlite3_changes(db->sql) > 0) a->stats.conflicts++;
    return FV_OK;
}

static fv_status write_version(fv_db *db, const fv__change *c)
{
    sqlite3_stmt *s = fv__stmt(db, "INSERT OR REPLACE INTO fv_versions(tbl, row_id, field, hlc,"
                                   " device, base_hlc) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, c->table, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, c->row_id, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, c->field, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)c->hlc);
    sqlite3_bind_blob(s, 5, c->device, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)c->base_hlc);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return fv__sqlerr(db, rc, "writing a version");
    /* A change made after seeing a conflict's winner settles the conflict. */
    s = fv__stmt(db, "UPDATE fv_conflicts SET resolved_ms = ?5 WHERE tbl = ?1 AND row_id = ?2"
                     " AND field = ?3 AND resolved_ms IS NULL AND max(mine_hlc, theirs_hlc) <= ?4");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, c->table, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, c->row_id, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, c->field, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)c->base_hlc);
    sqlite3_bind_int64(s, 5, fv_platform_now_ms());
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "settling conflicts");
}

static fv_status read_version(fv_db *db, const fv__change *c, fv__ver *v, int *found)
{
    sqlite3_stmt *s = fv__stmt(db, "SELECT hlc, device, base_hlc FROM fv_versions WHERE tbl = ?1"
                                   " AND row_id = ?2 AND field = ?3");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, c->table, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, c->row_id, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, c->field, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    if (*found) {
        v->hlc = (uint64_t)sqlite3_column_int64(s, 0);
        memset(v->device, 0, 16);
        if (sqlite3_column_bytes(s, 1) == 16) memcpy(v->device, sqlite3_column_blob(s, 1), 16);
        v->base_hlc = (uint64_t)sqlite3_column_int64(s, 2);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading a version");
}

static fv_status apply_stored(applier *a, const fv__change *c, const fv__table *t, size_t ti,
                              size_t fi, const fv__field *f, const char *col, const stored *inp);

static fv_status apply_one(applier *a, const fv__change *c)
{
    fv_db *db = a->db;
    a->stats.received++;
    const fv__table *t = fv__schema_table(db, c->table);
    if (t == NULL) return fv__err(db, FV_EPROTO, "no table '%s' in this store's schema", c->table);
    size_t ti = (size_t)(t - db->cat.tables);
    size_t fi = FV_RECORD_FIELDS_MAX;
    const fv__field *f = NULL;
    char col[FV_NAME_MAX + 3];
    if (strcmp(c->field, FV_FIELD_DELETED) == 0) {
        snprintf(col, sizeof col, "deleted");
    } else {
        f = fv__schema_field(t, c->field, &fi);
        if (f == NULL)
            return fv__err(db, FV_EPROTO, "%s has no field '%s' in this store's schema", t->name,
                           c->field);
        snprintf(col, sizeof col, "\"%s\"", f->name);
    }
    static _Thread_local stored in; /* 4 KiB: not on the stack */
    fv_status st = a->imported ? fv__acl_import_note(db, t->name, c->row_id, c->field) : FV_OK;
    if (st != FV_OK) return st;
    st = to_stored(db, t, f, c, &in);
    if (st == FV_OK) st = fv__hlc_observe(db, c->hlc);
    if (st == FV_OK) st = apply_stored(a, c, t, ti, fi, f, col, &in);
    if (in.opened) sodium_memzero(in.plain, sizeof in.plain);
    return st;
}

static fv_status apply_stored(applier *a, const fv__change *c, const fv__table *t, size_t ti,
                              size_t fi, const fv__field *f, const char *col, const stored *inp)
{
    fv_db *db = a->db;
    const stored *in = inp;
    fv_status st;

    fv__ver local, incoming = {c->hlc, {0}, c->base_hlc};
    memcpy(incoming.device, c->device, 16);
    int found;
    field_stmts *fs;
    if ((st = read_version(db, c, &local, &found)) != FV_OK) return st;
    if ((st = field_stmts_for(a, ti, fi, col, &fs)) != FV_OK) return st;
    sqlite3_bind_blob(fs->read, 1, c->row_id, 16, SQLITE_STATIC);
    int rc = sqlite3_step(fs->read);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fv__sqlerr(db, rc, "reading a value");
    int equal = rc == SQLITE_ROW ? same_value(fs->read, &in->v) : in->v.type == SQLITE_NULL;
    fv__merge_result m = fv__merge(found ? &local : NULL, &incoming, equal);
    if (m.conflict && rc == SQLITE_ROW) st = log_conflict(a, c, &local, fs->read, &in->v, m.take);
    sqlite3_reset(fs->read);
    if (st != FV_OK) return st;
    if (!m.take) {
        a->stats.known++;
        return FV_OK;
    }
    sqlite3_stmt *e = a->ensure_row[ti];
    sqlite3_bind_blob(e, 1, c->row_id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(e, 2, a->now);
    rc = sqlite3_step(e);
    sqlite3_reset(e);
    if (rc != SQLITE_DONE) return fv__sqlerr(db, rc, "creating a row");
    sqlite3_bind_blob(fs->write, 1, c->row_id, 16, SQLITE_STATIC);
    if (f == NULL) sqlite3_bind_int(fs->write, 2, c->real != 0.0);
    else bind_stored(fs->write, 2, &in->v);
    sqlite3_bind_int64(fs->write, 3, a->now);
    rc = sqlite3_step(fs->write);
    sqlite3_reset(fs->write);
    if (rc != SQLITE_DONE) return fv__sqlerr(db, rc, "writing a value");
    if ((st = write_version(db, c)) != FV_OK) return st;
    /* the duplicate keys beside the value (dedup.c) follow it */
    if ((st = fv__dedup_row_written(db, t->name, c->row_id, c->field)) != FV_OK) return st;
    a->stats.applied++;
    if (db->enrolled && strcmp(t->name, "customer") == 0 &&
        (strcmp(c->field, "owner") == 0 || strcmp(c->field, "team") == 0)) {
        /* judged once the whole set is applied (owner and team may both
         * be on their way) */
        for (size_t i = 0; i < a->nmoved; i++)
            if (memcmp(a->moved[i], c->row_id, 16) == 0) return FV_OK;
        if (a->nmoved == a->capmoved) {
            size_t cap = a->capmoved ? a->capmoved * 2 : 16;
            void *p = realloc(a->moved, cap * sizeof *a->moved);
            if (p == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
            a->moved = p;
            a->capmoved = cap;
        }
        memcpy(a->moved[a->nmoved++], c->row_id, 16);
    }
    return FV_OK;
}

static int apply_sink(void *ctx, const fv__change *c, char *err, size_t errcap)
{
    applier *a = ctx;
    if ((a->failed = apply_one(a, c)) == FV_OK) return 0;
    snprintf(err, errcap, "change %llu (%s.%s): %s", (unsigned long long)a->stats.received,
             c->table, c->field, fv_errmsg(a->db));
    return -1;
}

static fv_status apply_set(fv_db *db, fv__decode_fn decode, void *dctx, fv_apply_stats *stats,
                           fv__before_commit_fn before_commit, void *bctx, int imported);

fv_status fv__apply_with(fv_db *db, fv__decode_fn decode, void *dctx, fv_apply_stats *stats,
                         fv__before_commit_fn before_commit, void *bctx)
{
    return apply_set(db, decode, dctx, stats, before_commit, bctx, 0);
}

static fv_status apply_set(fv_db *db, fv__decode_fn decode, void *dctx, fv_apply_stats *stats,
                           fv__before_commit_fn before_commit, void *bctx, int imported)
{
    if (db->in_batch) return fv__err(db, FV_EMISUSE, "finish the batch first");
    applier *a = calloc(1, sizeof *a);
    if (a == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
    a->db = db;
    a->now = fv_platform_now_ms();
    uint64_t clock_before = db->hlc_last;
    int opened;
    fv_status st = fv__tx_begin(db, &opened);
    a->imported = imported && db->enrolled;
    if (st == FV_OK && a->imported) st = fv__acl_import_begin(db);
    if (st == FV_OK) {
        char err[FV_ERRMSG_MAX] = "";
        fv_status dst = decode(dctx, apply_sink, a, err, sizeof err);
        if (dst != FV_OK && a->failed != FV_OK && a->failed != FV_EPROTO)
            st = fv__err(db, a->failed, "applying the change set: %s", err);
        else if (dst != FV_OK)
            st = fv__err(db, dst, "the change set was refused: %s", err);
        if (st == FV_OK && a->imported) st = fv__acl_import_check(db);
        /* customers that changed hands and left this user's scope leave
         * the device, with their contacts and visits */
        for (size_t i = 0; st == FV_OK && i < a->nmoved; i++) {
            int purged;
            st = fv__acl_purge_if_out(db, a->moved[i], &purged);
        }
        /* records that arrived pointing at a merged-away customer (or whose
         * customer's merge just arrived) move to the survivor, as local
         * writes that sync (custmerge.c) */
        if (st == FV_OK) st = fv__custmerge_repoint_all(db, NULL);
        if (st == FV_OK) st = fv__hlc_save(db);
        if (st == FV_OK && before_commit != NULL) st = before_commit(db, bctx);
    }
    applier_free(a);
    free(a->moved);
    st = fv__tx_end(db, opened, st);
    if (st != FV_OK) db->hlc_last = clock_before;
    else if (stats != NULL) {
        stats->received = a->stats.received;
        stats->applied = a->stats.applied;
        stats->known = a->stats.known;
        stats->conflicts = a->stats.conflicts;
    }
    free(a);
    return st;
}

typedef struct changeset_reader {
    fv_read_fn r;
    void *ctx;
} changeset_reader;

static fv_status decode_changeset(void *dctx, fv__change_sink sink, void *sctx, char *err,
                                  size_t errcap)
{
    changeset_reader *cr = dctx;
    fv__changeset_info info;
    return fv__wire_decode_changeset(cr->r, cr->ctx, sink, sctx, &info, err, errcap);
}

fv_status fv_changes_apply(fv_db *db, fv_read_fn r, void *ctx, fv_apply_stats *stats)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (r == NULL || (stats != NULL && stats->size < sizeof *stats))
        return fv__err(db, FV_EMISUSE, "fv_changes_apply: no reader, or stats.size not set");
    changeset_reader cr = {r, ctx};
    /* a file carried by hand: in an enrolled store, the user's rights */
    return apply_set(db, decode_changeset, &cr, stats, NULL, NULL, 1);
}

static long file_read(void *ctx, unsigned char *buf, size_t cap)
{
    FILE *f = ctx;
    size_t n = fread(buf, 1, cap, f);
    if (n == 0 && ferror(f)) return -1;
    return (long)n;
}

fv_status fv_changes_apply_file(fv_db *db, const char *path, fv_apply_stats *stats)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (path == NULL || *path == '\0') return fv__err(db, FV_EINVAL, "no file name given");
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return fv__err(db, errno == ENOENT ? FV_ENOTFOUND : FV_EIO, "cannot open %s: %s", path,
                       strerror(errno));
    fv_status st = fv_changes_apply(db, file_read, f, stats);
    fclose(f);
    return st;
}

/* ---- identity and state hash --------------------------------------------- */

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void fv__hex(const unsigned char *b, size_t n, char *out)
{
    hex(b, n, out);
}

fv_status fv_device_id(fv_db *db, char out[33])
{
    if (db == NULL || out == NULL) return FV_EMISUSE;
    fv__reset(db);
    hex(db->device, 16, out);
    return FV_OK;
}

static void hash_u64(crypto_generichash_state *h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (56 - 8 * i));
    crypto_generichash_update(h, b, 8);
}

fv_status fv_state_hash(fv_db *db, char out[65])
{
    if (db == NULL || out == NULL) return FV_EMISUSE;
    fv__reset(db);
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 32);
    fv_status st = FV_OK;
    for (size_t ti = 0; ti < db->cat.ntables && st == FV_OK; ti++) {
        const fv__table *t = &db->cat.tables[ti];
        char sql[8192];
        size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT ");
        n += fv__select_list(t, NULL, sql + n, sizeof sql - n);
        snprintf(sql + n, sizeof sql - n, " FROM \"%s\" WHERE deleted = 0 ORDER BY id", t->name);
        sqlite3_stmt *s;
        int rc = sqlite3_prepare_v2(db->sql, sql, -1, &s, NULL);
        if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "hashing the state");
        crypto_generichash_update(&h, (const unsigned char *)t->name, strlen(t->name) + 1);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            crypto_generichash_update(&h, sqlite3_column_blob(s, 0),
                                      (unsigned long long)sqlite3_column_bytes(s, 0));
            for (size_t i = 0; i < t->nfields; i++) {
                int c = (int)i + 1, type = sqlite3_column_type(s, c);
                if (type == SQLITE_NULL) continue; /* empty fields hash as absent */
                crypto_generichash_update(&h, (const unsigned char *)t->fields[i].name,
                                          strlen(t->fields[i].name) + 1);
                if (type == SQLITE_INTEGER || type == SQLITE_FLOAT) {
                    double d = sqlite3_column_double(s, c);
                    uint64_t bits;
                    memcpy(&bits, &d, sizeof bits);
                    hash_u64(&h, 1);
                    hash_u64(&h, bits);
                } else {
                    const void *p = type == SQLITE_BLOB ? sqlite3_column_blob(s, c)
                                                        : (const void *)sqlite3_column_text(s, c);
                    int len = sqlite3_column_bytes(s, c);
                    hash_u64(&h, type == SQLITE_BLOB ? 2 : 3);
                    hash_u64(&h, (uint64_t)len);
                    if (len > 0) crypto_generichash_update(&h, p, (unsigned long long)len);
                }
            }
            hash_u64(&h, 0xFFFFFFFFFFFFFFFFull); /* end of row */
        }
        if (rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "hashing the state");
        sqlite3_finalize(s);
    }
    unsigned char digest[32];
    crypto_generichash_final(&h, digest, sizeof digest);
    if (st == FV_OK) hex(digest, sizeof digest, out);
    return st;
}
