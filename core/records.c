/*
 * records.c - fv_record: an in-memory copy of one row of a catalogue table,
 * with setters that validate against the catalogue, and insert, update, get
 * and delete (a tombstone).  Every write is one transaction unless the
 * caller holds a batch.  SQL text is built from the catalogue (names are
 * validated identifiers, values are always bound) and cached by store.c.
 *
 * Error messages name the table, field and rule, and quote a rejected value
 * only for short public fields: a pii or confidential value never appears
 * in a message.
 */
#include "records.h"

#include "fieldcrypt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit.h"
#include "custmerge.h"
#include "dedup.h"
#include "platform.h"

#define SQL_MAX 8192

fv_status fv_record_new(fv_db *db, const char *table, fv_record **out)
{
    if (db == NULL || out == NULL) return FV_EMISUSE;
    fv__reset(db);
    *out = NULL;
    const fv__table *t = fv__schema_table(db, table);
    if (t == NULL) return fv__err(db, FV_EINVAL, "no table '%s'", table ? table : "(null)");
    fv_record *r = calloc(1, sizeof *r);
    if (r == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
    r->db = db;
    r->tbl = t;
    *out = r;
    return FV_OK;
}

void fv__wipe_str(char *s)
{
    if (s == NULL) return;
    sodium_memzero(s, strlen(s));
    free(s);
}

void fv__record_clear_values(fv_record *r)
{
    for (size_t i = 0; i < FV_RECORD_FIELDS_MAX; i++) {
        if (r->vals[i].text != NULL) /* values may be protected: wipe, then free */
            sodium_memzero(r->vals[i].text, strlen(r->vals[i].text));
        free(r->vals[i].text);
        memset(&r->vals[i], 0, sizeof r->vals[i]);
    }
    r->has_id = 0;
    r->id_text[0] = '\0';
    r->due[0] = '\0';
}

fv_status fv_record_free(fv_record *rec)
{
    if (rec == NULL) return FV_OK;
    fv__record_clear_values(rec);
    free(rec);
    return FV_OK;
}

const char *fv_record_id(const fv_record *rec)
{
    return rec && rec->has_id ? rec->id_text : NULL;
}

const char *fv_record_table(const fv_record *rec)
{
    return rec ? rec->tbl->name : NULL;
}

const char *fv_record_due(const fv_record *rec)
{
    return rec && rec->due[0] ? rec->due : NULL;
}

fv_status fv_record_field(const fv_record *rec, size_t i, const char **name, fv_field_type *type)
{
    if (rec == NULL) return FV_EMISUSE;
    if (i >= rec->tbl->nfields) return FV_ENOTFOUND;
    if (name) *name = rec->tbl->fields[i].name;
    if (type) *type = rec->tbl->fields[i].type;
    return FV_OK;
}

/* ---- validation ---- */

int fv__enum_has(const char *list, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = list; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, v, n) == 0) return 1;
        if (bar == NULL) break;
        p = bar + 1;
    }
    return 0;
}

/* A rejected value may be quoted only when public and short. */
static const char *quotable(const fv__field *f, const char *v)
{
    return f->cls == FV_CLASS_PUBLIC && strlen(v) <= 40 && fv__utf8_valid(v, strlen(v)) ? v : "...";
}

static fv_status lookup(fv_record *r, const char *field, const fv__field **f, size_t *idx)
{
    *f = fv__schema_field(r->tbl, field, idx);
    if (*f == NULL)
        return fv__err(r->db, FV_EINVAL, "%s has no field '%s'", r->tbl->name,
                       field ? field : "(null)");
    return FV_OK;
}

static fv_status validate_text(fv_record *r, const fv__field *f, const char *v, char *norm,
                               size_t norm_cap)
{
    fv_db *db = r->db;
    const char *t = r->tbl->name;
    size_t len = strlen(v);
    (void)norm_cap;
    norm[0] = '\0'; /* set below for normalising types (callers pass norm_cap > 0) */
    if (!fv__utf8_valid(v, len)) return fv__err(db, FV_EINVAL, "%s.%s is not valid UTF-8", t, f->name);
    switch (f->type) {
    case FV_TYPE_TEXT:
        if (len > f->max_len)
            return fv__err(db, FV_EINVAL, "%s.%s is %zu bytes; the limit is %zu", t, f->name, len,
                           f->max_len);
        return FV_OK;
    case FV_TYPE_ENUM:
        if (!fv__enum_has(f->enum_values, v))
            return fv__err(db, FV_EINVAL, "%s.%s must be one of %s (got '%s')", t, f->name,
                           f->enum_values, quotable(f, v));
        return FV_OK;
    case FV_TYPE_DATE:
        if (!fv__date_valid(v))
            return fv__err(db, FV_EINVAL, "%s.%s must be a date YYYY-MM-DD (got '%s')", t, f->name,
                           quotable(f, v));
        return FV_OK;
    case FV_TYPE_TIME:
        if (!fv__time_normalise(v, norm))
            return fv__err(db, FV_EINVAL,
                           "%s.%s must be an ISO 8601 time such as 2026-03-01T14:30:00Z (got '%s')",
                           t, f->name, quotable(f, v));
        return FV_OK;
    case FV_TYPE_REF: {
        unsigned char id[16];
        if (!fv__uuid_parse(v, id))
            return fv__err(db, FV_EINVAL, "%s.%s must be a record id (36 characters, got '%s')", t,
                           f->name, quotable(f, v));
        fv__uuid_format(id, norm);
        return FV_OK;
    }
    case FV_TYPE_REAL:
        return fv__err(db, FV_EINVAL, "%s.%s is a number: use fv_record_set_real", t, f->name);
    }
    return fv__err(db, FV_EINTERNAL, "%s.%s has an unknown type", t, f->name);
}

fv_status fv__validate_text(fv_db *db, const fv__table *t, const fv__field *f, const char *v,
                            char *norm, size_t norm_cap)
{
    fv_record tmp;
    tmp.db = db;
    tmp.tbl = t;
    return validate_text(&tmp, f, v, norm, norm_cap);
}

fv_status fv_record_set_text(fv_record *rec, const char *field, const char *value)
{
    if (rec == NULL) return FV_EMISUSE;
    fv__reset(rec->db);
    const fv__field *f;
    size_t i;
    fv_status st = lookup(rec, field, &f, &i);
    if (st != FV_OK) return st;
    char norm[FV_ID_LEN + 8];
    char *copy = NULL;
    if (value != NULL) {
        st = fv__workflow_check_text(rec->db, rec->tbl, f, value);
        if (st == FV_OK) st = validate_text(rec, f, value, norm, sizeof norm);
        if (st != FV_OK) return st;
        copy = fv__strdup(norm[0] ? norm : value);
        if (copy == NULL) return fv__err(rec->db, FV_ENOMEM, "out of memory");
    }
    free(rec->vals[i].text);
    rec->vals[i].text = copy;
    rec->vals[i].set = value != NULL;
    rec->vals[i].dirty = 1;
    rec->vals[i].loaded = rec->vals[i].audited = 0; /* the caller's own value now */
    return FV_OK;
}

fv_status fv_record_set_real(fv_record *rec, const char *field, double v)
{
    if (rec == NULL) return FV_EMISUSE;
    fv__reset(rec->db);
    const fv__field *f;
    size_t i;
    fv_status st = lookup(rec, field, &f, &i);
    if (st != FV_OK) return st;
    if (f->type != FV_TYPE_REAL)
        return fv__err(rec->db, FV_EINVAL, "%s.%s is not a number field", rec->tbl->name, f->name);
    if (!isfinite(v))
        return fv__err(rec->db, FV_EINVAL, "%s.%s must be a finite number", rec->tbl->name, f->name);
    free(rec->vals[i].text);
    rec->vals[i].text = NULL;
    rec->vals[i].real = v;
    rec->vals[i].set = 1;
    rec->vals[i].dirty = 1;
    rec->vals[i].loaded = rec->vals[i].audited = 0;
    return FV_OK;
}

/* A stored confidential value is about to be handed to the caller: its
 * read audit entry first (once per record and field; audit.c).  The record
 * is the caller's const view of it; the flag is ours to set. */
static fv_status audit_if_needed(const fv_record *rec, const fv__field *f, size_t i)
{
    const fv__val *v = &rec->vals[i];
    if (f->cls != FV_CLASS_CONFIDENTIAL || !v->set || !v->loaded || v->audited) return FV_OK;
    return fv__audit_read((fv_record *)rec, i);
}

fv_status fv_record_get_text(const fv_record *rec, const char *field, const char **value)
{
    if (rec == NULL || value == NULL) return FV_EMISUSE;
    size_t i;
    const fv__field *f = fv__schema_field(rec->tbl, field, &i);
    *value = NULL;
    if (f == NULL) return FV_ENOTFOUND;
    if (f->type == FV_TYPE_REAL) return FV_EINVAL;
    if (rec->vals[i].corrupt) return FV_ECORRUPT;
    if (rec->vals[i].redacted) return FV_EACCES;
    fv_status st = audit_if_needed(rec, f, i);
    if (st != FV_OK) return st;
    *value = rec->vals[i].set ? rec->vals[i].text : NULL;
    return FV_OK;
}

fv_status fv_record_redacted(const fv_record *rec, const char *field, int *redacted)
{
    if (rec == NULL || redacted == NULL) return FV_EMISUSE;
    size_t i;
    *redacted = 0;
    if (fv__schema_field(rec->tbl, field, &i) == NULL) return FV_ENOTFOUND;
    *redacted = rec->vals[i].redacted;
    return FV_OK;
}

fv_status fv_record_get_real(const fv_record *rec, const char *field, double *v, int *is_set)
{
    if (rec == NULL || v == NULL || is_set == NULL) return FV_EMISUSE;
    size_t i;
    const fv__field *f = fv__schema_field(rec->tbl, field, &i);
    *v = 0;
    *is_set = 0;
    if (f == NULL) return FV_ENOTFOUND;
    if (f->type != FV_TYPE_REAL) return FV_EINVAL;
    if (rec->vals[i].corrupt) return FV_ECORRUPT;
    if (rec->vals[i].redacted) return FV_EACCES;
    fv_status st = audit_if_needed(rec, f, i);
    if (st != FV_OK) return st;
    *is_set = rec->vals[i].set;
    *v = rec->vals[i].real;
    return FV_OK;
}

/* ---- reading rows ---- */

size_t fv__select_list(const fv__table *t, const char *alias, char *buf, size_t cap)
{
    const char *a = alias ? alias : "";
    const char *dot = alias ? "." : "";
    size_t n = (size_t)snprintf(buf, cap, "%s%sid", a, dot);
    for (size_t i = 0; i < t->nfields && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, ", %s%s\"%s\"", a, dot, t->fields[i].name);
    return n;
}

fv_status fv__record_load_row(fv_record *r, sqlite3_stmt *s, int col)
{
    fv__record_clear_values(r);
    const void *id = sqlite3_column_blob(s, col);
    if (id == NULL || sqlite3_column_bytes(s, col) != 16)
        return fv__err(r->db, FV_ECORRUPT, "a %s row has a malformed id", r->tbl->name);
    memcpy(r->id, id, 16);
    fv__uuid_format(r->id, r->id_text);
    r->has_id = 1;
    for (size_t i = 0; i < r->tbl->nfields; i++) {
        int c = col + 1 + (int)i;
        fv__val *v = &r->vals[i];
        if (sqlite3_column_type(s, c) == SQLITE_NULL) continue;
        const fv__field *f = &r->tbl->fields[i];
        if (sqlite3_column_type(s, c) == SQLITE_BLOB && f->type != FV_TYPE_REF) {
            /* a value still sealed: no key for it yet, or a bad one */
            static _Thread_local char plain[FV_SEALED_BUF];
            fv_status st = FV_OK;
            int k = fv__fkey_open(r->db, r->tbl->name, r->id, f, sqlite3_column_blob(s, c),
                                  (size_t)sqlite3_column_bytes(s, c), plain, sizeof plain,
                                  &v->real, &st);
            if (st != FV_OK) return st;
            if (k == FV__OPEN_TEXT) {
                v->text = fv__strdup(plain);
                sodium_memzero(plain, sizeof plain);
                if (v->text == NULL) return fv__err(r->db, FV_ENOMEM, "out of memory");
            } else if (k == FV__OPEN_NOKEY) {
                v->redacted = 1;
                continue;
            } else if (k == FV__OPEN_BAD) {
                v->corrupt = 1;
                continue;
            }
        } else if (f->type == FV_TYPE_REAL) {
            v->real = sqlite3_column_double(s, c);
        } else if (f->type == FV_TYPE_REF) {
            if (sqlite3_column_bytes(s, c) != 16) continue;
            v->text = malloc(FV_ID_LEN + 1);
            if (v->text == NULL) return fv__err(r->db, FV_ENOMEM, "out of memory");
            fv__uuid_format(sqlite3_column_blob(s, c), v->text);
        } else {
            const unsigned char *txt = sqlite3_column_text(s, c);
            v->text = fv__strdup(txt ? (const char *)txt : "");
            if (v->text == NULL) return fv__err(r->db, FV_ENOMEM, "out of memory");
        }
        v->set = 1;
        v->loaded = 1;
    }
    return FV_OK;
}

/* FV_ENOTFOUND for a record not held live; a customer merged into
 * another says where it went. */
static fv_status not_found(fv_db *db, const fv__table *t, const unsigned char key[16],
                           const char *id)
{
    unsigned char to[16];
    int merged = 0;
    if (strcmp(t->name, "customer") == 0 && fv__schema_field(t, "merged_into", NULL) != NULL) {
        fv_status st = fv__custmerge_survivor(db, key, to, &merged);
        if (st != FV_OK) return st;
    }
    if (!merged) return fv__err(db, FV_ENOTFOUND, "no %s %s", t->name, id);
    char text[FV_ID_LEN + 1];
    fv__uuid_format(to, text);
    return fv__err(db, FV_ENOTFOUND, "customer %s was merged into %s", id, text);
}

fv_status fv_get(fv_db *db, const char *table, const char *id, fv_record **out)
{
    if (db == NULL || out == NULL) return FV_EMISUSE;
    fv__reset(db);
    *out = NULL;
    unsigned char key[16];
    const fv__table *t = fv__schema_table(db, table);
    if (t == NULL) return fv__err(db, FV_EINVAL, "no table '%s'", table ? table : "(null)");
    if (!fv__uuid_parse(id, key))
        return fv__err(db, FV_EINVAL, "'%.40s' is not a record id (36 characters)", id ? id : "");
    char sql[SQL_MAX];
    size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT ");
    n += fv__select_list(t, NULL, sql + n, sizeof sql - n);
    snprintf(sql + n, sizeof sql - n, " FROM \"%s\" WHERE id = ?1 AND deleted = 0", t->name);
    sqlite3_stmt *s = fv__stmt(db, sql);
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, key, 16, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        return not_found(db, t, key, id);
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return fv__sqlerr(db, rc, "reading a record");
    }
    fv_record *r = calloc(1, sizeof *r);
    fv_status st = FV_ENOMEM;
    if (r != NULL) {
        r->db = db;
        r->tbl = t;
        st = fv__record_load_row(r, s, 0);
    } else {
        fv__err(db, FV_ENOMEM, "out of memory");
    }
    sqlite3_reset(s);
    int visible = 1;
    if (st == FV_OK) st = fv__acl_filter(r, &visible);
    if (st == FV_OK && !visible) st = fv__err(db, FV_ENOTFOUND, "no %s %s", t->name, id);
    if (st != FV_OK) {
        fv_record_free(r);
        return st;
    }
    *out = r;
    return FV_OK;
}

/* ---- writing ---- */

static fv_status bind_value(fv_db *db, sqlite3_stmt *s, int col, const fv__field *f,
                            const fv__val *v)
{
    int rc;
    if (!v->set) {
        rc = sqlite3_bind_null(s, col);
    } else if (f->type == FV_TYPE_REAL) {
        rc = sqlite3_bind_double(s, col, v->real);
    } else if (f->type == FV_TYPE_REF) {
        unsigned char id[16];
        if (!fv__uuid_parse(v->text, id)) return fv__err(db, FV_EINVAL, "bad reference");
        rc = sqlite3_bind_blob(s, col, id, 16, SQLITE_TRANSIENT);
    } else {
        rc = sqlite3_bind_text(s, col, v->text, -1, SQLITE_STATIC);
    }
    return rc == SQLITE_OK ? FV_OK : fv__sqlerr(db, rc, "binding a value");
}

/* Capture the changed fields of r (all set ones, or only the dirty ones)
 * as one local write at a single hlc.  dirty_only is 0 exactly for
 * fv_insert, whose row is new (fresh UUIDv7): its fields go to
 * fv__capture_new_row together (no versions to look up). */
static fv_status capture_fields(fv_record *r, int dirty_only)
{
    fv_db *db = r->db;
    uint64_t hlc;
    const char *names[FV_RECORD_FIELDS_MAX];
    fv__cval cvs[FV_RECORD_FIELDS_MAX];
    unsigned char refs[FV_RECORD_FIELDS_MAX][16];
    size_t n = 0;
    fv_status st = fv__hlc_next(db, &hlc);
    for (size_t i = 0; i < r->tbl->nfields && st == FV_OK; i++) {
        const fv__field *f = &r->tbl->fields[i];
        const fv__val *v = &r->vals[i];
        if (dirty_only ? !v->dirty : !v->set) continue;
        fv__cval cv = {SQLITE_NULL, NULL, NULL, 0, 0.0};
        if (v->set && f->type == FV_TYPE_REAL) {
            cv.type = SQLITE_FLOAT;
            cv.real = v->real;
        } else if (v->set && f->type == FV_TYPE_REF) {
            if (!fv__uuid_parse(v->text, refs[n])) return fv__err(db, FV_EINVAL, "bad reference");
            cv.type = SQLITE_BLOB;
            cv.blob = refs[n];
            cv.len = 16;
        } else if (v->set) {
            cv.type = SQLITE_TEXT;
            cv.text = v->text;
        }
        if (dirty_only) {
            st = fv__capture(db, r->tbl->name, r->id, f->name, &cv, hlc);
        } else {
            names[n] = f->name;
            cvs[n++] = cv;
        }
    }
    if (st == FV_OK && n > 0) st = fv__capture_new_row(db, r->tbl->name, r->id, n, names, cvs, hlc);
    return st;
}

static fv_status capture_deleted(fv_db *db, const char *tbl, const unsigned char id[16],
                                 int deleted)
{
    uint64_t hlc;
    fv_status st = fv__hlc_next(db, &hlc);
    fv__cval cv = {SQLITE_FLOAT, NULL, NULL, 0, deleted ? 1.0 : 0.0};
    if (st == FV_OK) st = fv__capture(db, tbl, id, "_deleted", &cv, hlc);
    return st;
}

/* Required fields present and references pointing at live records.  An
 * update checks only the fields it writes: a row that arrived through sync
 * may still lack a field whose change is on its way, and an edit of another
 * field must not be refused for that. */
static fv_status check_row(fv_record *r)
{
    fv_db *db = r->db;
    for (size_t i = 0; i < r->tbl->nfields; i++) {
        const fv__field *f = &r->tbl->fields[i];
        const fv__val *v = &r->vals[i];
        if (r->has_id && !v->dirty) continue;
        if (f->required && (!v->set || (v->text != NULL && v->text[0] == '\0')))
            return fv__err(db, FV_EINVAL, "%s.%s is required", r->tbl->name, f->name);
        if (f->type == FV_TYPE_REF && v->set && v->dirty) {
            unsigned char id[16];
            char sql[160];
            if (!fv__uuid_parse(v->text, id)) return fv__err(db, FV_EINVAL, "bad reference");
            snprintf(sql, sizeof sql, "SELECT 1 FROM \"%s\" WHERE id = ?1 AND deleted = 0",
                     f->ref_table);
            sqlite3_stmt *s = fv__stmt(db, sql);
            if (s == NULL) return db->err;
            sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
            int rc = sqlite3_step(s);
            sqlite3_reset(s);
            if (rc == SQLITE_DONE)
                return fv__err(db, FV_ENOTFOUND, "no %s %s (referenced by %s.%s)", f->ref_table,
                               v->text, r->tbl->name, f->name);
            if (rc != SQLITE_ROW) return fv__sqlerr(db, rc, "checking a reference");
        }
    }
    return FV_OK;
}

static void apply_defaults(fv_record *r)
{
    size_t i;
    const fv__field *f;
    if (strcmp(r->tbl->name, "visit") == 0 && (f = fv__schema_field(r->tbl, "at", &i)) != NULL &&
        !r->vals[i].set) {
        char now[21];
        fv__time_format_ms(fv_platform_now_ms(), now);
        r->vals[i].text = fv__strdup(now);
        r->vals[i].set = r->vals[i].dirty = r->vals[i].text != NULL;
    }
    if (strcmp(r->tbl->name, "customer") == 0 &&
        (f = fv__schema_field(r->tbl, "owner", &i)) != NULL && !r->vals[i].set) {
        r->vals[i].text = fv__strdup(fv__acl_default_owner(r->db));
        r->vals[i].set = r->vals[i].dirty = r->vals[i].text != NULL;
    }
    if (strcmp(r->tbl->name, "customer") == 0 && fv__acl_default_team(r->db) != NULL &&
        (f = fv__schema_field(r->tbl, "team", &i)) != NULL && !r->vals[i].set) {
        r->vals[i].text = fv__strdup(fv__acl_default_team(r->db));
        r->vals[i].set = r->vals[i].dirty = r->vals[i].text != NULL;
    }
}

/* The INSERT for r's table naming exactly r's set fields (an unset field is
 * left out, not bound to NULL, so a column default would still apply).
 * Built once per table and field set and kept on the handle (a few apps'
 * forms give a few sets): the text stays put, so fv__stmt finds it by
 * pointer.  NULL on failure (error recorded). */
static const char *insert_sql(fv_record *r)
{
    fv_db *db = r->db;
    uint64_t mask = 0;
    for (size_t i = 0; i < r->tbl->nfields; i++)
        if (r->vals[i].set) mask |= (uint64_t)1 << i;
    for (size_t c = 0; c < FV_INSERT_SQL_CACHE; c++) {
        const fv__insert_sql *e = &db->insert_sql[c];
        if (e->tbl == r->tbl && e->nfields == r->tbl->nfields && e->mask == mask) return e->sql;
    }
    char sql[SQL_MAX];
    size_t n = (size_t)snprintf(sql, sizeof sql,
                                "INSERT INTO \"%s\"(id, deleted, created_ms, updated_ms", r->tbl->name);
    size_t nset = 0;
    for (size_t i = 0; i < r->tbl->nfields; i++)
        if (r->vals[i].set) {
            n += (size_t)snprintf(sql + n, sizeof sql - n, ", \"%s\"", r->tbl->fields[i].name);
            nset++;
        }
    n += (size_t)snprintf(sql + n, sizeof sql - n, ") VALUES(?1, 0, ?2, ?2");
    for (size_t k = 0; k < nset; k++) n += (size_t)snprintf(sql + n, sizeof sql - n, ", ?%zu", k + 3);
    snprintf(sql + n, sizeof sql - n, ")");
    char *copy = fv__strdup(sql);
    if (copy == NULL) {
        fv__err(db, FV_ENOMEM, "out of memory");
        return NULL;
    }
    fv__insert_sql *e = &db->insert_sql[db->insert_sql_next];
    db->insert_sql_next = (db->insert_sql_next + 1) % FV_INSERT_SQL_CACHE;
    free(e->sql);
    e->tbl = r->tbl;
    e->nfields = r->tbl->nfields;
    e->mask = mask;
    e->sql = copy;
    return copy;
}

static fv_status insert_row(fv_record *r, int64_t now)
{
    fv_db *db = r->db;
    const char *sql = insert_sql(r);
    if (sql == NULL) return db->err;
    sqlite3_stmt *s = fv__stmt(db, sql);
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, r->id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    int col = 3;
    fv_status st = FV_OK;
    for (size_t i = 0; i < r->tbl->nfields && st == FV_OK; i++)
        if (r->vals[i].set) st = bind_value(db, s, col++, &r->tbl->fields[i], &r->vals[i]);
    if (st == FV_OK) {
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "inserting a record");
    }
    sqlite3_reset(s);
    return st;
}

/* The read audit is append-only: written by the library (audit.c) alone. */
static fv_status audit_refused(fv_db *db)
{
    return fv__err(db, FV_EACCES,
                   "the audit table is append-only: its entries are written by the library when "
                   "confidential fields are read");
}

fv_status fv_insert(fv_db *db, fv_record *rec)
{
    if (db == NULL || rec == NULL || rec->db != db) return FV_EMISUSE;
    fv__reset(db);
    if (rec->has_id) return fv__err(db, FV_EMISUSE, "this record is already stored: use fv_update");
    if (strcmp(rec->tbl->name, "audit") == 0) return audit_refused(db);
    apply_defaults(rec);
    fv_status st = fv__workflow_defaults(rec);
    if (st == FV_OK) st = fv__custmerge_follow(rec);
    if (st == FV_OK) st = check_row(rec);
    if (st == FV_OK) st = fv__acl_check_write(rec, 1);
    if (st != FV_OK) return st;
    int opened;
    st = fv__tx_begin(db, &opened);
    if (st != FV_OK) return st;
    fv__uuid7(db, rec->id);
    st = insert_row(rec, fv_platform_now_ms());
    if (st == FV_OK) st = capture_fields(rec, 0);
    /* a new customer has no contacts yet: its name key is all there is */
    if (st == FV_OK)
        st = fv__dedup_row_written(db, rec->tbl->name, rec->id,
                                   strcmp(rec->tbl->name, "customer") == 0 ? "name" : NULL);
    st = fv__tx_end(db, opened, st);
    if (st != FV_OK) return st;
    fv__uuid_format(rec->id, rec->id_text);
    rec->has_id = 1;
    for (size_t i = 0; i < FV_RECORD_FIELDS_MAX; i++) rec->vals[i].dirty = 0;
    return FV_OK;
}

fv_status fv_update(fv_db *db, fv_record *rec)
{
    if (db == NULL || rec == NULL || rec->db != db) return FV_EMISUSE;
    fv__reset(db);
    if (!rec->has_id) return fv__err(db, FV_EMISUSE, "this record is not stored yet: use fv_insert");
    if (strcmp(rec->tbl->name, "audit") == 0) return audit_refused(db);
    fv_status st = fv__custmerge_follow(rec);
    if (st == FV_OK) st = check_row(rec);
    if (st == FV_OK) st = fv__acl_check_write(rec, 0);
    if (st != FV_OK) return st;
    char sql[SQL_MAX];
    size_t n = (size_t)snprintf(sql, sizeof sql, "UPDATE \"%s\" SET updated_ms = ?2", rec->tbl->name);
    size_t ndirty = 0;
    for (size_t i = 0; i < rec->tbl->nfields; i++)
        if (rec->vals[i].dirty)
            n += (size_t)snprintf(sql + n, sizeof sql - n, ", \"%s\" = ?%zu",
                                  rec->tbl->fields[i].name, 3 + ndirty++);
    if (ndirty == 0) return FV_OK;
    snprintf(sql + n, sizeof sql - n, " WHERE id = ?1 AND deleted = 0");
    int opened;
    st = fv__tx_begin(db, &opened);
    if (st != FV_OK) return st;
    sqlite3_stmt *s = fv__stmt(db, sql);
    if (s == NULL) st = db->err;
    if (st == FV_OK) {
        sqlite3_bind_blob(s, 1, rec->id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, fv_platform_now_ms());
        int col = 3;
        for (size_t i = 0; i < rec->tbl->nfields && st == FV_OK; i++)
            if (rec->vals[i].dirty) st = bind_value(db, s, col++, &rec->tbl->fields[i], &rec->vals[i]);
        if (st == FV_OK) {
            int rc = sqlite3_step(s);
            if (rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "updating a record");
            else if (sqlite3_changes(db->sql) == 0)
                st = fv__err(db, FV_ENOTFOUND, "no %s %s", rec->tbl->name, rec->id_text);
        }
        sqlite3_reset(s);
    }
    int moved = 0;
    if (st == FV_OK && strcmp(rec->tbl->name, "customer") == 0)
        for (size_t i = 0; i < rec->tbl->nfields; i++)
            if (rec->vals[i].dirty && (strcmp(rec->tbl->fields[i].name, "owner") == 0 ||
                                       strcmp(rec->tbl->fields[i].name, "team") == 0))
                moved = 1;
    if (st == FV_OK) st = capture_fields(rec, 1);
    if (st == FV_OK) st = fv__dedup_row_written(db, rec->tbl->name, rec->id, NULL);
    if (st == FV_OK && moved) { /* handed to someone else: it leaves this device */
        int purged;
        st = fv__acl_purge_if_out(db, rec->id, &purged);
    }
    st = fv__tx_end(db, opened, st);
    if (st == FV_OK)
        for (size_t i = 0; i < FV_RECORD_FIELDS_MAX; i++) rec->vals[i].dirty = 0;
    return st;
}

static fv_status set_deleted(fv_db *db, const char *table, const char *id, int deleted)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    const fv__table *t = fv__schema_table(db, table);
    unsigned char key[16];
    if (t == NULL) return fv__err(db, FV_EINVAL, "no table '%s'", table ? table : "(null)");
    if (!fv__uuid_parse(id, key))
        return fv__err(db, FV_EINVAL, "'%.40s' is not a record id (36 characters)", id ? id : "");
    if (strcmp(t->name, "audit") == 0) return audit_refused(db);
    fv_status ast = fv__acl_check_delete(db, t, key);
    if (ast != FV_OK) return ast;
    char sql[160];
    snprintf(sql, sizeof sql,
             "UPDATE \"%s\" SET deleted = %d, updated_ms = ?2 WHERE id = ?1 AND deleted = %d",
             t->name, deleted, !deleted);
    int opened;
    fv_status st = fv__tx_begin(db, &opened);
    if (st != FV_OK) return st;
    sqlite3_stmt *s = fv__stmt(db, sql);
    if (s == NULL) st = db->err;
    if (st == FV_OK) {
        sqlite3_bind_blob(s, 1, key, 16, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, fv_platform_now_ms());
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE) st = fv__sqlerr(db, rc, deleted ? "deleting a record" : "restoring a record");
        else if (sqlite3_changes(db->sql) == 0)
            st = fv__err(db, FV_ENOTFOUND, deleted ? "no %s %s" : "no deleted %s %s", t->name, id);
        sqlite3_reset(s);
    }
    if (st == FV_OK) st = capture_deleted(db, t->name, key, deleted);
    return fv__tx_end(db, opened, st);
}

fv_status fv_delete(fv_db *db, const char *table, const char *id)
{
    return set_deleted(db, table, id, 1);
}

fv_status fv_restore(fv_db *db, const char *table, const char *id)
{
    return set_deleted(db, table, id, 0);
}
