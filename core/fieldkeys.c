/*
 * fieldkeys.c - field encryption on the device: the team field keys this
 * device holds, sealing protected values when they are captured, opening
 * them when they arrive or are read, installing grants, and the
 * re-encryption pass after a key rotation.
 *
 * Values of pii and confidential fields of an enrolled store are sealed
 * (core/fieldcrypt.h) with the newest key this device holds for the row's
 * team (a customer's team; a contact's or visit's customer's team) when the
 * write is captured, so the outbox, every push and fvd's store hold only
 * ciphertext, and a retried batch re-sends the same bytes.  The store keeps
 * the plaintext of what its user may read (the store is encrypted at rest);
 * a sealed value this device cannot open stays stored sealed and reads as
 * redacted (no key yet: it opens once a grant arrives) or, when a key is
 * held but the value fails authentication (moved to another row or field,
 * or altered), as FV_ECORRUPT naming the field.
 *
 * Keys live in fv_field_keys (schema 4); a key read for one operation is
 * copied to the stack and wiped right after.  A store never enrolled has
 * no keys and writes plaintext (personal use, tests); so does an enrolled
 * store for a team it holds no key of - fvd refuses such a change when
 * the team has keys (the device learns it from the rejection), and
 * fv__fkey_seal_outbox seals such entries once the key arrives.
 */
#include "records.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "dedup.h"
#include "fieldcrypt.h"


fv_status fv__fkey_row_team(fv_db *db, const char *tbl, const unsigned char row[16], char *team,
                            size_t cap)
{
    /* a customer, or a row that belongs to one; an app's own table without
     * a customer has no team (its values are never sealed) */
    team[0] = '\0';
    char owner[FV_NAME_MAX + 1], tm[FV_NAME_MAX + 1];
    int exists;
    fv_status st = fv__acl_row_scope(db, tbl, row, owner, tm, &exists);
    if (st == FV_OK) snprintf(team, cap, "%s", tm);
    return st;
}

/* The newest key held for (team, cls): *found, key, *version. */
static fv_status key_current(fv_db *db, const char *team, int cls, unsigned char key[FV_FKEY_LEN],
                             uint32_t *version, int *found)
{
    *found = 0;
    sqlite3_stmt *s = fv__stmt(db, "SELECT key, version FROM fv_field_keys WHERE team = ?1 AND"
                                   " cls = ?2 ORDER BY version DESC LIMIT 1");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, team, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, cls);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == FV_FKEY_LEN) {
        memcpy(key, sqlite3_column_blob(s, 0), FV_FKEY_LEN);
        *version = (uint32_t)sqlite3_column_int64(s, 1);
        *found = 1;
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading a field key");
}

static fv_status key_by_id(fv_db *db, const unsigned char id[FV_FKEY_ID_LEN],
                           unsigned char key[FV_FKEY_LEN], int *found)
{
    *found = 0;
    sqlite3_stmt *s = fv__stmt(db, "SELECT key FROM fv_field_keys WHERE key_id = ?1");
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, id, FV_FKEY_ID_LEN, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == FV_FKEY_LEN) {
        memcpy(key, sqlite3_column_blob(s, 0), FV_FKEY_LEN);
        *found = 1;
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading a field key");
}

fv_status fv__fkey_seal(fv_db *db, const char *tbl, const unsigned char row[16], const char *field,
                        fv__cval *v, unsigned char *buf, size_t cap)
{
    if (!db->enrolled || v->type == SQLITE_NULL || strcmp(field, "_deleted") == 0)
        return FV_OK;
    const fv__table *t = fv__schema_table(db, tbl);
    const fv__field *f = t != NULL ? fv__schema_field(t, field, NULL) : NULL;
    if (f == NULL || f->cls == FV_CLASS_PUBLIC || f->type == FV_TYPE_REF) return FV_OK;
    if (v->type != SQLITE_TEXT && v->type != SQLITE_FLOAT) return FV_OK; /* sealed already */
    char team[FV_NAME_MAX + 1];
    fv_status st = fv__fkey_row_team(db, tbl, row, team, sizeof team);
    if (st != FV_OK || team[0] == '\0') return st;
    unsigned char key[FV_FKEY_LEN];
    uint32_t version = 0;
    int found;
    if ((st = key_current(db, team, (int)f->cls, key, &version, &found)) != FV_OK || !found)
        return st;
    size_t n = 0;
    int rc = v->type == SQLITE_TEXT
                 ? fv__fc_seal(key, team, (int)f->cls, version, tbl, row, field, v->text,
                               strlen(v->text), 0.0, buf, cap, &n)
                 : fv__fc_seal(key, team, (int)f->cls, version, tbl, row, field, NULL, 0, v->real,
                               buf, cap, &n);
    sodium_memzero(key, sizeof key);
    if (rc != 0) return fv__err(db, FV_EINVAL, "%s.%s: the value is too long to seal", tbl, field);
    v->type = SQLITE_BLOB;
    v->blob = buf;
    v->len = n;
    v->text = NULL;
    return FV_OK;
}

int fv__fkey_open(fv_db *db, const char *tbl, const unsigned char row[16], const fv__field *f,
                  const unsigned char *b, size_t n, char *text, size_t cap, double *real,
                  fv_status *st)
{
    *st = FV_OK;
    fv__sealed_hdr h;
    if (fv__fc_parse(b, n, &h) != 0 || (int)f->cls != h.cls) return FV__OPEN_BAD;
    unsigned char key[FV_FKEY_LEN];
    int found;
    if ((*st = key_by_id(db, h.key_id, key, &found)) != FV_OK) return FV__OPEN_BAD;
    if (!found) return FV__OPEN_NOKEY;
    int is_text = 0;
    size_t len = 0;
    int rc = fv__fc_open(key, tbl, row, f->name, b, n, &is_text, text, cap, &len, real);
    sodium_memzero(key, sizeof key);
    if (rc != 0) return FV__OPEN_BAD;
    if (is_text != (f->type != FV_TYPE_REAL)) {
        sodium_memzero(text, len);
        return FV__OPEN_BAD;
    }
    return FV__OPEN_TEXT - !is_text; /* FV__OPEN_TEXT or FV__OPEN_REAL */
}

/* ---- grants ---- */

fv_status fv__fkey_install(fv_db *db, const unsigned char admin_pk[32],
                           const unsigned char sign_sk[64], const char *team, int cls,
                           uint32_t version, const unsigned char *sealed,
                           const unsigned char *sig, uint64_t seq)
{
    unsigned char key[FV_FKEY_LEN];
    int rc = fv__fc_grant_open(admin_pk, db->device, sign_sk, team, cls, version, sealed, sig, key);
    if (rc == -1)
        return fv__err(db, FV_EPROTO, "a field-key grant for team %s is not signed by the admin key",
                       team);
    if (rc != 0)
        return fv__err(db, FV_EPROTO, "a field-key grant for team %s is not sealed to this device",
                       team);
    unsigned char id[FV_FKEY_ID_LEN];
    fv__fc_key_id(team, cls, version, id);
    sqlite3_stmt *s = fv__stmt(db, "INSERT OR REPLACE INTO fv_field_keys(key_id, team, cls,"
                                   " version, key, grant_seq) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    if (s == NULL) {
        sodium_memzero(key, sizeof key);
        return db->err;
    }
    sqlite3_bind_blob(s, 1, id, sizeof id, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, team, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, cls);
    sqlite3_bind_int64(s, 4, version);
    sqlite3_bind_blob(s, 5, key, sizeof key, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)seq);
    int step = sqlite3_step(s);
    sqlite3_clear_bindings(s);
    sqlite3_reset(s);
    sodium_memzero(key, sizeof key);
    return step == SQLITE_DONE ? FV_OK : fv__sqlerr(db, step, "storing a field key");
}

/* Open, in place, the stored values of tbl.field that are still sealed
 * and that a key held now opens. */
static fv_status unseal_column(fv_db *db, const fv__table *t, const fv__field *f)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT id, \"%s\" FROM \"%s\" WHERE typeof(\"%s\") = 'blob'",
             f->name, t->name, f->name);
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, &q, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "reading sealed values");
    snprintf(sql, sizeof sql, "UPDATE \"%s\" SET \"%s\" = ?2 WHERE id = ?1", t->name, f->name);
    sqlite3_stmt *u;
    rc = sqlite3_prepare_v2(db->sql, sql, -1, &u, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(q);
        return fv__sqlerr(db, rc, "opening sealed values");
    }
    fv_status st = FV_OK;
    static _Thread_local char text[FV_SEALED_BUF + 1];
    while (st == FV_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(q, 0) != 16) continue;
        double real = 0;
        int k = fv__fkey_open(db, t->name, sqlite3_column_blob(q, 0), f,
                              sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1), text,
                              sizeof text, &real, &st);
        if (k != FV__OPEN_TEXT && k != FV__OPEN_REAL) continue;
        sqlite3_bind_blob(u, 1, sqlite3_column_blob(q, 0), 16, SQLITE_TRANSIENT);
        if (k == FV__OPEN_TEXT) sqlite3_bind_text(u, 2, text, -1, SQLITE_TRANSIENT);
        else sqlite3_bind_double(u, 2, real);
        int w = sqlite3_step(u);
        sqlite3_reset(u);
        sqlite3_clear_bindings(u);
        sodium_memzero(text, sizeof text);
        if (w != SQLITE_DONE) st = fv__sqlerr(db, w, "opening a sealed value");
    }
    if (st == FV_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) st = fv__sqlerr(db, rc, "reading sealed values");
    sqlite3_finalize(q);
    sqlite3_finalize(u);
    return st;
}

fv_status fv__fkey_unseal_stored(fv_db *db)
{
    fv_status st = FV_OK;
    for (size_t ti = 0; st == FV_OK && ti < db->cat.ntables; ti++) {
        const fv__table *t = &db->cat.tables[ti];
        for (size_t fi = 0; st == FV_OK && fi < t->nfields; fi++)
            if (t->fields[fi].cls != FV_CLASS_PUBLIC && t->fields[fi].type != FV_TYPE_REF)
                st = unseal_column(db, t, &t->fields[fi]);
    }
    /* values just opened get their blind index, and a team's new key
     * changes the key indexes are computed under (dedup.c) */
    if (st == FV_OK) st = fv__dedup_reindex_all(db);
    return st;
}

fv_status fv__fkey_seal_outbox(fv_db *db, uint64_t after_seq)
{
    if (!db->enrolled) return FV_OK;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT seq, tbl, row_id, field, value FROM fv_outbox WHERE seq > ?1"
                                " AND typeof(value) IN ('text', 'real', 'integer') ORDER BY seq",
                                -1, &q, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "reading the outbox");
    sqlite3_bind_int64(q, 1, (sqlite3_int64)after_seq);
    fv_status st = FV_OK;
    static _Thread_local unsigned char buf[FV_SEALED_BUF];
    static _Thread_local char text[FV_FIELD_MAX + 1];
    while (st == FV_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *tbl = (const char *)sqlite3_column_text(q, 1);
        const char *field = (const char *)sqlite3_column_text(q, 3);
        if (tbl == NULL || field == NULL || sqlite3_column_bytes(q, 2) != 16) continue;
        const fv__table *t = fv__schema_table(db, tbl);
        const fv__field *f = t != NULL ? fv__schema_field(t, field, NULL) : NULL;
        if (f == NULL || f->cls == FV_CLASS_PUBLIC) continue;
        fv__cval v = {SQLITE_NULL, NULL, NULL, 0, 0.0};
        if (sqlite3_column_type(q, 4) == SQLITE_TEXT) {
            snprintf(text, sizeof text, "%s", (const char *)sqlite3_column_text(q, 4));
            v.type = SQLITE_TEXT;
            v.text = text;
        } else {
            v.type = SQLITE_FLOAT;
            v.real = sqlite3_column_double(q, 4);
        }
        unsigned char row[16];
        memcpy(row, sqlite3_column_blob(q, 2), 16);
        st = fv__fkey_seal(db, t->name, row, f->name, &v, buf, sizeof buf);
        sodium_memzero(text, sizeof text);
        if (st != FV_OK || v.type != SQLITE_BLOB) continue;
        sqlite3_stmt *u = fv__stmt(db, "UPDATE fv_outbox SET value = ?2 WHERE seq = ?1");
        if (u == NULL) {
            st = db->err;
            break;
        }
        sqlite3_bind_int64(u, 1, sqlite3_column_int64(q, 0));
        sqlite3_bind_blob(u, 2, v.blob, (int)v.len, SQLITE_STATIC);
        int w = sqlite3_step(u);
        sqlite3_reset(u);
        if (w != SQLITE_DONE) st = fv__sqlerr(db, w, "sealing the outbox");
    }
    if (st == FV_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) st = fv__sqlerr(db, rc, "reading the outbox");
    sqlite3_finalize(q);
    return st;
}

/* ---- public ---- */

fv_status fv_field_keys(fv_db *db, fv_field_key_info *out, size_t cap, size_t *n)
{
    if (db == NULL || n == NULL || (out == NULL && cap > 0)) return FV_EMISUSE;
    fv__reset(db);
    *n = 0;
    sqlite3_stmt *s = fv__stmt(db, "SELECT team, cls, version, key_id FROM fv_field_keys"
                                   " ORDER BY team, cls, version");
    if (s == NULL) return db->err;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n < cap) {
            fv_field_key_info *k = &out[*n];
            memset(k, 0, sizeof *k);
            const unsigned char *team = sqlite3_column_text(s, 0);
            snprintf(k->team, sizeof k->team, "%s", team ? (const char *)team : "");
            k->cls = (fv_field_class)sqlite3_column_int(s, 1);
            k->version = (uint32_t)sqlite3_column_int64(s, 2);
            if (sqlite3_column_bytes(s, 3) == FV_FKEY_ID_LEN)
                sodium_bin2hex(k->key_id, sizeof k->key_id, sqlite3_column_blob(s, 3),
                               FV_FKEY_ID_LEN);
        }
        (*n)++;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "listing field keys");
}

fv_status fv_field_reencrypt(fv_db *db, size_t *rewritten)
{
    if (db == NULL || rewritten == NULL) return FV_EMISUSE;
    fv__reset(db);
    *rewritten = 0;
    if (!db->enrolled) return FV_OK;
    if (db->in_batch) return fv__err(db, FV_EMISUSE, "finish the batch first");
    /* Every protected value this device holds in plaintext is written
     * again (the same value, a new change) and so sealed with the newest
     * key; values the user may not write are left alone. */
    fv_status st = FV_OK;
    for (size_t ti = 0; st == FV_OK && ti < db->cat.ntables; ti++) {
        const fv__table *t = &db->cat.tables[ti];
        int protected_fields = 0;
        for (size_t i = 0; i < t->nfields; i++)
            if (t->fields[i].cls != FV_CLASS_PUBLIC) protected_fields = 1;
        if (!protected_fields) continue;
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT id FROM \"%s\" WHERE deleted = 0 ORDER BY id", t->name);
        sqlite3_stmt *q;
        int rc = sqlite3_prepare_v2(db->sql, sql, -1, &q, NULL);
        if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "listing rows");
        while (st == FV_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
            if (sqlite3_column_bytes(q, 0) != 16) continue;
            char id[FV_ID_LEN + 1];
            fv__uuid_format(sqlite3_column_blob(q, 0), id);
            fv_record *r = NULL;
            st = fv_get(db, t->name, id, &r);
            if (st == FV_ENOTFOUND) { /* out of this user's scope */
                fv__reset(db);
                st = FV_OK;
                continue;
            }
            size_t marked = 0;
            for (size_t i = 0; st == FV_OK && i < t->nfields; i++) {
                fv__val *v = &r->vals[i];
                if (t->fields[i].cls == FV_CLASS_PUBLIC || !v->set || v->redacted || v->corrupt)
                    continue;
                v->dirty = 1;
                marked++;
            }
            if (st == FV_OK && marked > 0) {
                st = fv_update(db, r);
                if (st == FV_EACCES) { /* a field this user may read, not write */
                    fv__reset(db);
                    st = FV_OK;
                } else if (st == FV_OK) {
                    *rewritten += marked;
                }
            }
            fv_record_free(r);
        }
        if (st == FV_OK && rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "listing rows");
        sqlite3_finalize(q);
    }
    return st;
}
