/*
 * acl.c - the access policy (policy.c) applied to the records API of an
 * enrolled store.
 *
 * A store that was never enrolled keeps full rights over its own data.
 * Once enrolled (user, role and team in fv_meta, written by fv_enroll), the
 * policy decides: a row outside the user's scope does not exist for reads
 * and lists and cannot be written; a field the role may not read comes back
 * redacted (a distinct state, never an empty string); a write the role may
 * not make is FV_EACCES naming the field and role, and changes nothing.
 * Contacts and visits are in the scope of their customer.
 */
#include "records.h"

#include <stdio.h>
#include <string.h>

fv_status fv__meta_text(fv_db *db, const char *key, char *out, size_t cap)
{
    sqlite3_stmt *s = fv__stmt(db, "SELECT value FROM fv_meta WHERE key = ?1");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    const unsigned char *v = rc == SQLITE_ROW ? sqlite3_column_text(s, 0) : NULL;
    snprintf(out, cap, "%s", v ? (const char *)v : "");
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading the enrolment");
}

fv_status fv__acl_load(fv_db *db)
{
    /* the server's policy as delivered (sync/client.c), else the built-in */
    fv__policy_default(&db->policy);
    sqlite3_stmt *s = fv__stmt(db, "SELECT value FROM fv_meta WHERE key = 'policy'");
    if (s == NULL) return db->err;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_BLOB) {
        fv__policy p;
        if (fv__policy_decode(sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0), &p) != 0) {
            sqlite3_reset(s);
            return fv__err(db, FV_ECORRUPT, "the stored access policy is malformed");
        }
        db->policy = p;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fv__sqlerr(db, rc, "reading the access policy");
    fv_status st = fv__meta_text(db, "user", db->acl_user, sizeof db->acl_user);
    if (st == FV_OK) st = fv__meta_text(db, "role", db->acl_role, sizeof db->acl_role);
    if (st == FV_OK) st = fv__meta_text(db, "team", db->acl_team, sizeof db->acl_team);
    db->enrolled = st == FV_OK && db->acl_role[0] != '\0';
    return st;
}

static fv__actor actor(const fv_db *db)
{
    fv__actor a = {db->acl_user, db->acl_role, db->acl_team};
    return a;
}

/* Owner and team of a customer row from the store ("" when unknown). */
static fv_status customer_owner(fv_db *db, const unsigned char id[16], char *owner, size_t ocap,
                                char *team, size_t tcap, int *found)
{
    owner[0] = team[0] = '\0';
    sqlite3_stmt *s = fv__stmt(db, "SELECT owner, team FROM customer WHERE id = ?1");
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const unsigned char *o = sqlite3_column_text(s, 0), *t = sqlite3_column_text(s, 1);
        snprintf(owner, ocap, "%s", o ? (const char *)o : "");
        snprintf(team, tcap, "%s", t ? (const char *)t : "");
    }
    if (found != NULL) *found = rc == SQLITE_ROW;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading a customer");
}

/* A row's customer owner and team as stored ("" when unknown); *exists = 0
 * for a row the store does not hold.  A contact, visit or other child row
 * is in the scope of its customer; a row of a table without customer_id
 * has no scope (and counts as not held). */
fv_status fv__acl_row_scope(fv_db *db, const char *tbl, const unsigned char id[16], char *owner,
                            char *team, int *exists)
{
    owner[0] = team[0] = '\0';
    *exists = 0;
    unsigned char cust[16];
    const fv__table *t = fv__schema_table(db, tbl);
    if (strcmp(tbl, "customer") == 0) {
        memcpy(cust, id, 16);
    } else if (t == NULL || fv__schema_field(t, "customer_id", NULL) == NULL) {
        return FV_OK; /* an app's own table: no customer, no scope */
    } else {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT customer_id FROM \"%s\" WHERE id = ?1", tbl);
        sqlite3_stmt *s = fv__stmt(db, sql);
        if (s == NULL) return db->err;
        sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        int have = rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 16;
        *exists = rc == SQLITE_ROW;
        if (have) memcpy(cust, sqlite3_column_blob(s, 0), 16);
        sqlite3_reset(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fv__sqlerr(db, rc, "reading a row");
        if (!have) return FV_OK;
    }
    int found = 0;
    fv_status st = customer_owner(db, cust, owner, FV_NAME_MAX + 1, team, FV_NAME_MAX + 1, &found);
    if (strcmp(tbl, "customer") == 0) *exists = found;
    return st;
}

static const char *value_of(const fv_record *r, const char *field)
{
    size_t i;
    const fv__field *f = fv__schema_field(r->tbl, field, &i);
    return f != NULL && r->vals[i].set ? r->vals[i].text : NULL;
}

/* The owner and team that decide about r's row.  stored: use the row as
 * stored (an update), else r's own values (an insert, or a row just read). */
static fv_status row_owner_of(fv_record *r, int stored, char *owner, size_t ocap, char *team,
                              size_t tcap)
{
    fv_db *db = r->db;
    unsigned char cust[16];
    if (strcmp(r->tbl->name, "customer") == 0) {
        if (stored) return customer_owner(db, r->id, owner, ocap, team, tcap, NULL);
        const char *o = value_of(r, "owner"), *t = value_of(r, "team");
        snprintf(owner, ocap, "%s", o ? o : "");
        snprintf(team, tcap, "%s", t ? t : "");
        return FV_OK;
    }
    owner[0] = team[0] = '\0';
    const char *c = value_of(r, "customer_id");
    if (c == NULL || !fv__uuid_parse(c, cust)) return FV_OK;
    return customer_owner(db, cust, owner, ocap, team, tcap, NULL);
}

fv_status fv__acl_filter(fv_record *r, int *visible)
{
    fv_db *db = r->db;
    *visible = 1;
    if (!db->enrolled) return FV_OK;
    char owner[FV_NAME_MAX + 1], team[FV_NAME_MAX + 1];
    fv_status st = row_owner_of(r, 0, owner, sizeof owner, team, sizeof team);
    if (st != FV_OK) return st;
    fv__actor a = actor(db);
    fv__row_owner row = {owner, team};
    if (!fv__policy_in_scope(&db->policy, &a, &row)) {
        *visible = 0;
        return FV_OK;
    }
    for (size_t i = 0; i < r->tbl->nfields; i++) {
        const fv__field *f = &r->tbl->fields[i];
        if (fv__policy_field(&db->policy, a.role, r->tbl->name, f->cls) >= FV__ACCESS_READ) continue;
        fv__val *v = &r->vals[i];
        if (v->text) {
            fv__wipe_str(v->text);
            v->text = NULL;
        }
        v->set = 0;
        v->real = 0;
        v->redacted = 1;
    }
    return FV_OK;
}

fv_status fv__acl_check_write(fv_record *r, int is_insert)
{
    fv_db *db = r->db;
    if (!db->enrolled) return FV_OK;
    char owner[FV_NAME_MAX + 1], team[FV_NAME_MAX + 1];
    fv_status st = row_owner_of(r, !is_insert, owner, sizeof owner, team, sizeof team);
    if (st != FV_OK) return st;
    fv__actor a = actor(db);
    fv__row_owner row = {owner, team};
    char why[256];
    for (size_t i = 0; i < r->tbl->nfields; i++) {
        const fv__field *f = &r->tbl->fields[i];
        const fv__val *v = &r->vals[i];
        if (is_insert ? !v->set : !v->dirty) continue;
        if (!fv__policy_may_change(&db->policy, &a, r->tbl->name, f->name, f->cls, &row,
                                   is_insert, why, sizeof why))
            return fv__err(db, FV_EACCES, "%s", why);
    }
    return FV_OK;
}

fv_status fv__acl_check_delete(fv_db *db, const fv__table *t, const unsigned char id[16])
{
    if (!db->enrolled) return FV_OK;
    char owner[FV_NAME_MAX + 1], team[FV_NAME_MAX + 1];
    int exists;
    fv_status st = fv__acl_row_scope(db, t->name, id, owner, team, &exists);
    if (st != FV_OK) return st;
    fv__actor a = actor(db);
    fv__row_owner row = {owner, team};
    char why[256];
    if (!fv__policy_may_write(&db->policy, &a, t->name, "_deleted", FV_CLASS_PUBLIC, &row, why,
                              sizeof why))
        return fv__err(db, FV_EACCES, "%s", why);
    return FV_OK;
}

const char *fv__acl_default_owner(const fv_db *db)
{
    return db->enrolled ? db->acl_user : db->user;
}

const char *fv__acl_default_team(const fv_db *db)
{
    return db->enrolled && db->acl_team[0] ? db->acl_team : NULL;
}

fv_status fv__acl_purge_if_out(fv_db *db, const unsigned char id[16], int *purged)
{
    *purged = 0;
    if (!db->enrolled) return FV_OK;
    char owner[FV_NAME_MAX + 1], team[FV_NAME_MAX + 1];
    fv_status st = customer_owner(db, id, owner, sizeof owner, team, sizeof team, NULL);
    if (st != FV_OK) return st;
    fv__actor a = actor(db);
    fv__row_owner row = {owner, team};
    if (fv__policy_in_scope(&db->policy, &a, &row)) return FV_OK;
    /* The customer left this user's scope (reassigned): its row, contacts,
     * visits and complaints leave the device.  Not a deletion: nothing is captured. */
    static const char *const sql[] = {
        "DELETE FROM fv_versions WHERE tbl = 'contact' AND row_id IN"
        " (SELECT id FROM contact WHERE customer_id = ?1)",
        "DELETE FROM fv_versions WHERE tbl = 'visit' AND row_id IN"
        " (SELECT id FROM visit WHERE customer_id = ?1)",
        "DELETE FROM fv_versions WHERE tbl = 'complaint' AND row_id IN"
        " (SELECT id FROM complaint WHERE customer_id = ?1)",
        "DELETE FROM contact WHERE customer_id = ?1",
        "DELETE FROM visit WHERE customer_id = ?1",
        "DELETE FROM complaint WHERE customer_id = ?1",
        "DELETE FROM fv_versions WHERE tbl = 'customer' AND row_id = ?1",
        "DELETE FROM customer WHERE id = ?1",
    };
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        sqlite3_stmt *s = fv__stmt(db, sql[i]);
        if (s == NULL) return db->err;
        sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return fv__sqlerr(db, rc, "removing a reassigned customer");
    }
    *purged = 1;
    return FV_OK;
}

/* ---- change-set files imported into an enrolled store ----
 *
 * A change of a file is judged as fvd judges a pushed one: a row the store
 * held before the set by its owner and team then, a row the set creates by
 * what the set makes of it.  Every change's row is noted (with its scope
 * before the set) in a temporary table as it is applied; once the whole
 * set is in, each noted field is checked, and one the user may not write
 * refuses the whole set (the caller rolls back: nothing of it stays). */

fv_status fv__acl_import_begin(fv_db *db)
{
    if (!db->enrolled) return FV_OK;
    return fv__exec(db, "CREATE TEMP TABLE IF NOT EXISTS fv_import_rows(tbl TEXT NOT NULL,"
                        " row_id BLOB NOT NULL, existed INTEGER NOT NULL, owner TEXT, team TEXT,"
                        " PRIMARY KEY(tbl, row_id));"
                        "CREATE TEMP TABLE IF NOT EXISTS fv_import(tbl TEXT NOT NULL,"
                        " row_id BLOB NOT NULL, field TEXT NOT NULL,"
                        " PRIMARY KEY(tbl, row_id, field));"
                        "DELETE FROM temp.fv_import_rows; DELETE FROM temp.fv_import;");
}

fv_status fv__acl_import_note(fv_db *db, const char *tbl, const unsigned char id[16],
                              const char *field)
{
    if (!db->enrolled) return FV_OK;
    /* the row as it was before the set: at its first change only */
    sqlite3_stmt *s = fv__stmt(db, "SELECT 1 FROM temp.fv_import_rows WHERE tbl = ?1 AND"
                                   " row_id = ?2");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, tbl, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, id, 16, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fv__sqlerr(db, rc, "noting an imported change");
    if (rc == SQLITE_DONE) {
        char owner[FV_NAME_MAX + 1], team[FV_NAME_MAX + 1];
        int exists;
        fv_status st = fv__acl_row_scope(db, tbl, id, owner, team, &exists);
        if (st != FV_OK) return st;
        s = fv__stmt(db, "INSERT INTO temp.fv_import_rows(tbl, row_id, existed, owner, team)"
                         " VALUES(?1, ?2, ?3, ?4, ?5)");
        if (s == NULL) return db->err;
        sqlite3_bind_text(s, 1, tbl, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, id, 16, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, exists);
        sqlite3_bind_text(s, 4, owner, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, team, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return fv__sqlerr(db, rc, "noting an imported change");
    }
    s = fv__stmt(db, "INSERT OR IGNORE INTO temp.fv_import(tbl, row_id, field) VALUES(?1, ?2, ?3)");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, tbl, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, id, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, field, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "noting an imported change");
}

fv_status fv__acl_import_check(fv_db *db)
{
    if (!db->enrolled) return FV_OK;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db->sql, "SELECT i.tbl, i.row_id, i.field, r.existed, r.owner,"
                                         " r.team FROM temp.fv_import i JOIN temp.fv_import_rows r"
                                         " ON r.tbl = i.tbl AND r.row_id = i.row_id"
                                         " ORDER BY i.tbl, i.row_id, i.field",
                                -1, &q, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "checking imported changes");
    fv__actor a = actor(db);
    fv_status st = FV_OK;
    while (st == FV_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *tbl = (const char *)sqlite3_column_text(q, 0);
        const char *field = (const char *)sqlite3_column_text(q, 2);
        if (tbl == NULL || field == NULL || sqlite3_column_bytes(q, 1) != 16) continue;
        unsigned char id[16];
        memcpy(id, sqlite3_column_blob(q, 1), 16);
        char owner[FV_NAME_MAX + 1], team[FV_NAME_MAX + 1];
        if (sqlite3_column_int(q, 3)) {
            const unsigned char *o = sqlite3_column_text(q, 4), *t = sqlite3_column_text(q, 5);
            snprintf(owner, sizeof owner, "%s", o ? (const char *)o : "");
            snprintf(team, sizeof team, "%s", t ? (const char *)t : "");
        } else {
            int exists;
            if ((st = fv__acl_row_scope(db, tbl, id, owner, team, &exists)) != FV_OK) break;
        }
        fv_field_class cls = FV_CLASS_PUBLIC;
        const fv__table *t = fv__schema_table(db, tbl);
        const fv__field *f = t != NULL ? fv__schema_field(t, field, NULL) : NULL;
        if (f != NULL) cls = f->cls;
        fv__row_owner row = {owner, team};
        char why[256], idtext[FV_ID_LEN + 1];
        if (!fv__policy_may_change(&db->policy, &a, tbl, field, cls, &row,
                                   !sqlite3_column_int(q, 3), why, sizeof why)) {
            fv__uuid_format(id, idtext);
            st = fv__err(db, FV_EACCES,
                         "the change set was refused (nothing of it applied): it changes %s %s, "
                         "and %s", tbl, idtext, why);
        }
    }
    if (st == FV_OK && rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "checking imported changes");
    sqlite3_finalize(q);
    return st;
}
