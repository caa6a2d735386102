/*
 * dedup.c - duplicate detection: the keys kept beside the values
 * (customer.name_key, contact.phone_bidx and contact.email_bidx; see
 * dedup.h) and fv_find_duplicates.
 *
 * Layout: the keys the blind index is computed under (the store's own, a
 * team's pii field key), computing one row's keys, the hooks that keep
 * them current (a written row, everything at once), then the lookup.
 *
 * A phone or e-mail is matched by computing the candidate's index under
 * every key an index here may be under (the store's key and the newest pii
 * key of each team held: a handful) and asking the indexed column for it;
 * no stored value is decrypted or scanned.  Plaintext copies made to
 * compute an index are wiped.  Statements that iterate while others run
 * are prepared privately, never taken from the shared cache (which may
 * evict them).
 */
#include "dedup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fieldcrypt.h"
#include "records.h"

/* ---- keys ---- */

/* The store's own blind-index key (fv_meta 'blind_key', made by schema
 * migration 7; made here if missing). */
static fv_status store_key(fv_db *db, unsigned char key[FV_FKEY_LEN])
{
    sqlite3_stmt *s = fv__stmt(db, "SELECT value FROM fv_meta WHERE key = 'blind_key'");
    if (s == NULL) return db->err;
    int rc = sqlite3_step(s);
    int ok = rc == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_BLOB &&
             sqlite3_column_bytes(s, 0) == FV_FKEY_LEN;
    if (ok) memcpy(key, sqlite3_column_blob(s, 0), FV_FKEY_LEN);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fv__sqlerr(db, rc, "reading the blind-index key");
    if (ok) return FV_OK;
    randombytes_buf(key, FV_FKEY_LEN);
    s = fv__stmt(db, "INSERT OR REPLACE INTO fv_meta(key, value) VALUES('blind_key', ?1)");
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, key, FV_FKEY_LEN, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_clear_bindings(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "storing the blind-index key");
}

/* The key a contact of team's customer is indexed under: the newest pii
 * field key held for team, else the store's. */
static fv_status index_key(fv_db *db, const char *team, unsigned char key[FV_FKEY_LEN])
{
    if (team != NULL && team[0] != '\0') {
        sqlite3_stmt *s = fv__stmt(db, "SELECT key FROM fv_field_keys WHERE team = ?1 AND cls = ?2"
                                       " ORDER BY version DESC LIMIT 1");
        if (s == NULL) return db->err;
        sqlite3_bind_text(s, 1, team, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, FV_CLASS_PII);
        int rc = sqlite3_step(s);
        int found = rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == FV_FKEY_LEN;
        if (found) memcpy(key, sqlite3_column_blob(s, 0), FV_FKEY_LEN);
        sqlite3_reset(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fv__sqlerr(db, rc, "reading a field key");
        if (found) return FV_OK;
    }
    return store_key(db, key);
}

/* The blind index of a value of field ("phone" or "email") under key, into
 * out; 0 when the value has an empty key (no digits, say): no index. */
static int blind_of(const unsigned char key[FV_FKEY_LEN], const char *field, const char *value,
                    unsigned char out[FV_BLIND_LEN])
{
    static _Thread_local char norm[FV_FIELD_MAX + 1];
    if (strlen(value) >= sizeof norm) return 0; /* never: stored values are bounded */
    size_t n = fv__normalize(strcmp(field, "phone") == 0 ? FV_NORM_PHONE : FV_NORM_EMAIL, value,
                             norm);
    if (n > 0) fv__fc_blind(key, field, norm, n, out);
    sodium_memzero(norm, n + 1);
    return n > 0;
}

/* ---- one row ---- */

static fv_status customer_name_key(fv_db *db, const unsigned char row[16])
{
    sqlite3_stmt *s = fv__stmt(db, "SELECT name FROM customer WHERE id = ?1");
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, row, 16, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    char *key = NULL;
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_TEXT) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        key = malloc(strlen(name) + 1);
        if (key != NULL) (void)fv__normalize(FV_NORM_NAME, name, key);
    }
    int had = rc == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_TEXT;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fv__sqlerr(db, rc, "reading a customer");
    if (rc == SQLITE_DONE) return FV_OK;
    if (had && key == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
    s = fv__stmt(db, "UPDATE customer SET name_key = ?2 WHERE id = ?1");
    if (s == NULL) {
        free(key);
        return db->err;
    }
    sqlite3_bind_blob(s, 1, row, 16, SQLITE_STATIC);
    if (key != NULL && key[0] != '\0') sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_clear_bindings(s);
    sqlite3_reset(s);
    free(key);
    return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "writing a name key");
}

static fv_status contact_indexes(fv_db *db, const unsigned char row[16])
{
    sqlite3_stmt *s = fv__stmt(db, "SELECT x.phone, x.email, c.team FROM contact x"
                                   " LEFT JOIN customer c ON c.id = x.customer_id WHERE x.id = ?1");
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, row, 16, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading a contact");
    }
    char team[FV_NAME_MAX + 1] = "";
    if (sqlite3_column_type(s, 2) == SQLITE_TEXT)
        snprintf(team, sizeof team, "%s", (const char *)sqlite3_column_text(s, 2));
    unsigned char key[FV_FKEY_LEN], bidx[2][FV_BLIND_LEN];
    int have[2] = {0, 0};
    static const char *const fields[2] = {"phone", "email"};
    /* the values are read before the key, whose query resets nothing of s */
    static _Thread_local char value[2][FV_FIELD_MAX + 1];
    for (int k = 0; k < 2; k++) {
        value[k][0] = '\0';
        if (sqlite3_column_type(s, k) == SQLITE_TEXT) /* a sealed BLOB: no index */
            snprintf(value[k], sizeof value[k], "%s", (const char *)sqlite3_column_text(s, k));
    }
    sqlite3_reset(s);
    fv_status st = index_key(db, team, key);
    for (int k = 0; st == FV_OK && k < 2; k++)
        if (value[k][0] != '\0') have[k] = blind_of(key, fields[k], value[k], bidx[k]);
    sodium_memzero(key, sizeof key);
    sodium_memzero(value, sizeof value);
    if (st != FV_OK) return st;
    s = fv__stmt(db, "UPDATE contact SET phone_bidx = ?2, email_bidx = ?3 WHERE id = ?1");
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, row, 16, SQLITE_STATIC);
    for (int k = 0; k < 2; k++)
        if (have[k]) sqlite3_bind_blob(s, 2 + k, bidx[k], FV_BLIND_LEN, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_clear_bindings(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "writing a blind index");
}

/* Every id that sql (one blob column, optional blob parameter ?1) returns,
 * malloc'd in *ids (*n of them). */
static fv_status collect_ids(fv_db *db, const char *sql, const unsigned char *param,
                             unsigned char (**ids)[16], size_t *n)
{
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, &q, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "listing rows");
    if (param != NULL) sqlite3_bind_blob(q, 1, param, 16, SQLITE_STATIC);
    size_t cap = 0;
    fv_status st = FV_OK;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(q, 0) != 16) continue;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            void *p = realloc(*ids, ncap * sizeof **ids);
            if (p == NULL) {
                st = fv__err(db, FV_ENOMEM, "out of memory");
                break;
            }
            *ids = p;
            cap = ncap;
        }
        memcpy((*ids)[(*n)++], sqlite3_column_blob(q, 0), 16);
    }
    if (st == FV_OK && rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "listing rows");
    sqlite3_finalize(q);
    if (st != FV_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return st;
}

static fv_status reindex_contacts(fv_db *db, const char *sql, const unsigned char *param)
{
    unsigned char(*ids)[16];
    size_t n;
    fv_status st = collect_ids(db, sql, param, &ids, &n);
    for (size_t i = 0; st == FV_OK && i < n; i++) st = contact_indexes(db, ids[i]);
    free(ids);
    return st;
}

fv_status fv__dedup_row_written(fv_db *db, const char *table, const unsigned char row[16],
                                const char *field)
{
    if (strcmp(table, "customer") == 0) {
        fv_status st = FV_OK;
        if (field == NULL || strcmp(field, "name") == 0) st = customer_name_key(db, row);
        if (st == FV_OK && (field == NULL || strcmp(field, "team") == 0))
            st = reindex_contacts(db, "SELECT id FROM contact WHERE customer_id = ?1", row);
        return st;
    }
    if (strcmp(table, "contact") == 0 &&
        (field == NULL || strcmp(field, "phone") == 0 || strcmp(field, "email") == 0 ||
         strcmp(field, "customer_id") == 0))
        return contact_indexes(db, row);
    return FV_OK;
}

fv_status fv__dedup_reindex_all(fv_db *db)
{
    unsigned char(*ids)[16];
    size_t n;
    fv_status st = collect_ids(db, "SELECT id FROM customer", NULL, &ids, &n);
    for (size_t i = 0; st == FV_OK && i < n; i++) st = customer_name_key(db, ids[i]);
    free(ids);
    if (st == FV_OK) st = reindex_contacts(db, "SELECT id FROM contact", NULL);
    return st;
}

/* ---- the lookup ---- */

typedef struct match {
    unsigned char id[16];
    int field; /* 0 name, 1 phone, 2 email */
} match;

typedef struct matches {
    match *v;
    size_t n, cap;
} matches;

static fv_status add_match(fv_db *db, matches *m, const unsigned char id[16], int field)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].field == field && memcmp(m->v[i].id, id, 16) == 0) return FV_OK;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        void *p = realloc(m->v, cap * sizeof *m->v);
        if (p == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
        m->v = p;
        m->cap = cap;
    }
    memcpy(m->v[m->n].id, id, 16);
    m->v[m->n++].field = field;
    return FV_OK;
}

/* Live rows where column equals the blob or text value. */
static fv_status query_into(fv_db *db, const char *sql, const void *value, int len, int is_text,
                            int field, matches *m)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, &q, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "looking up duplicates");
    if (is_text) sqlite3_bind_text(q, 1, value, len, SQLITE_STATIC);
    else sqlite3_bind_blob(q, 1, value, len, SQLITE_STATIC);
    fv_status st = FV_OK;
    while (st == FV_OK && (rc = sqlite3_step(q)) == SQLITE_ROW)
        if (sqlite3_column_bytes(q, 0) == 16) st = add_match(db, m, sqlite3_column_blob(q, 0), field);
    if (st == FV_OK && rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "looking up duplicates");
    sqlite3_finalize(q);
    return st;
}

/* Contacts whose field has value's index under any key held here. */
static fv_status match_contacts(fv_db *db, int field, const char *value, matches *m)
{
    static const char *const names[] = {"", "phone", "email"};
    static const char *const sql[] = {
        "", "SELECT id FROM contact WHERE phone_bidx = ?1 AND deleted = 0",
        "SELECT id FROM contact WHERE email_bidx = ?1 AND deleted = 0"};
    unsigned char key[FV_FKEY_LEN], bidx[FV_BLIND_LEN];
    fv_status st = store_key(db, key);
    if (st != FV_OK) return st;
    if (!blind_of(key, names[field], value, bidx)) {
        sodium_memzero(key, sizeof key);
        return FV_OK; /* nothing to match: no digits, say */
    }
    st = query_into(db, sql[field], bidx, FV_BLIND_LEN, 0, field, m);
    /* the newest pii key of every team held */
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT k.key FROM fv_field_keys k WHERE k.cls = ?1 AND k.version ="
                                " (SELECT max(version) FROM fv_field_keys j WHERE j.team = k.team"
                                " AND j.cls = k.cls)",
                                -1, &q, NULL);
    if (st == FV_OK && rc != SQLITE_OK) st = fv__sqlerr(db, rc, "reading field keys");
    if (rc == SQLITE_OK) sqlite3_bind_int(q, 1, FV_CLASS_PII);
    while (st == FV_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(q, 0) != FV_FKEY_LEN) continue;
        memcpy(key, sqlite3_column_blob(q, 0), FV_FKEY_LEN);
        if (blind_of(key, names[field], value, bidx))
            st = query_into(db, sql[field], bidx, FV_BLIND_LEN, 0, field, m);
    }
    if (st == FV_OK && rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "reading field keys");
    sqlite3_finalize(q);
    sodium_memzero(key, sizeof key);
    return st;
}

static int match_cmp(const void *a, const void *b)
{
    const match *x = a, *y = b;
    int c = memcmp(x->id, y->id, 16);
    return c != 0 ? c : x->field - y->field;
}

/* The value of a field of rec to look up: set, readable text; else NULL. */
static const char *lookup_value(const fv_record *rec, const char *field)
{
    size_t i;
    if (fv__schema_field(rec->tbl, field, &i) == NULL) return NULL;
    const fv__val *v = &rec->vals[i];
    if (!v->set || v->redacted || v->corrupt || v->text == NULL || v->text[0] == '\0') return NULL;
    return v->text;
}

/* Report each match the acting user may see (fv_get decides, as for any
 * read), with its public name and, for a contact, its customer. */
static fv_status report(fv_db *db, const fv_record *rec, const char *table, matches *m,
                        fv_duplicate_fn fn, void *ctx)
{
    static const char *const fields[] = {"name", "phone", "email"};
    qsort(m->v, m->n, sizeof *m->v, match_cmp);
    fv_status st = FV_OK;
    for (size_t i = 0; st == FV_OK && i < m->n; i++) {
        if (rec->has_id && memcmp(m->v[i].id, rec->id, 16) == 0) continue;
        char id[FV_ID_LEN + 1];
        fv__uuid_format(m->v[i].id, id);
        fv_record *r = NULL;
        st = fv_get(db, table, id, &r);
        if (st == FV_ENOTFOUND) { /* out of this user's scope */
            fv__reset(db);
            st = FV_OK;
            continue;
        }
        if (st != FV_OK) break;
        fv_duplicate d = {table, id, fields[m->v[i].field], lookup_value(r, "name"),
                          strcmp(table, "contact") == 0 ? lookup_value(r, "customer_id") : NULL};
        int stop = fn(ctx, &d);
        fv_record_free(r);
        if (stop) break;
    }
    return st;
}

fv_status fv_find_duplicates(fv_db *db, const fv_record *rec, fv_duplicate_fn fn, void *ctx)
{
    if (db == NULL || rec == NULL || fn == NULL || rec->db != db) return FV_EMISUSE;
    fv__reset(db);
    const char *table = rec->tbl->name;
    matches m = {NULL, 0, 0};
    fv_status st = FV_OK;
    if (strcmp(table, "customer") == 0) {
        const char *name = lookup_value(rec, "name");
        char *key = name != NULL ? malloc(strlen(name) + 1) : NULL;
        if (name != NULL && key == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
        size_t n = key != NULL ? fv__normalize(FV_NORM_NAME, name, key) : 0;
        if (n > 0)
            st = query_into(db, "SELECT id FROM customer WHERE name_key = ?1 AND deleted = 0", key,
                            (int)n, 1, 0, &m);
        free(key);
    } else if (strcmp(table, "contact") == 0) {
        const char *phone = lookup_value(rec, "phone"), *email = lookup_value(rec, "email");
        if (phone != NULL) st = match_contacts(db, 1, phone, &m);
        if (st == FV_OK && email != NULL) st = match_contacts(db, 2, email, &m);
    }
    if (st == FV_OK && m.n > 0) st = report(db, rec, table, &m, fn, ctx);
    free(m.v);
    return st;
}
