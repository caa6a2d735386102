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
    fv__policy_default(&db->policy);
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
                                char *team, size_t tcap)
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
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading a customer");
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
        if (stored) return customer_owner(db, r->id, owner, ocap, team, tcap);
        const char *o = value_of(r, "owner"), *t = value_of(r, "team");
        snprintf(owner, ocap, "%s", o ? o : "");
        snprintf(team, tcap, "%s", t ? t : "");
        return FV_OK;
    }
    owner[0] = team[0] = '\0';
    const char *c = value_of(r, "customer_id");
    if (c == NULL || !fv__uuid_parse(c, cust)) return FV_OK;
    return customer_owner(db, cust, owner, ocap, team, tcap);
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
        if (!fv__policy_may_write(&db->policy, &a, r->tbl->name, f->name, f->cls, &row, why,
                                  sizeof why))
            return fv__err(db, FV_EACCES, "%s", why);
    }
    return FV_OK;
}

fv_status fv__acl_check_delete(fv_db *db, const fv__table *t, const unsigned char id[16])
{
    if (!db->enrolled) return FV_OK;
    char owner[FV_NAME_MAX + 1], team[FV_NAME_MAX + 1];
    fv_status st;
    if (strcmp(t->name, "customer") == 0) {
        st = customer_owner(db, id, owner, sizeof owner, team, sizeof team);
    } else {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT customer_id FROM \"%s\" WHERE id = ?1", t->name);
        sqlite3_stmt *s = fv__stmt(db, sql);
        if (s == NULL) return db->err;
        sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        unsigned char cust[16] = {0};
        int have = rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 16;
        if (have) memcpy(cust, sqlite3_column_blob(s, 0), 16);
        sqlite3_reset(s);
        owner[0] = team[0] = '\0';
        st = have ? customer_owner(db, cust, owner, sizeof owner, team, sizeof team) : FV_OK;
    }
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
    fv_status st = customer_owner(db, id, owner, sizeof owner, team, sizeof team);
    if (st != FV_OK) return st;
    fv__actor a = actor(db);
    fv__row_owner row = {owner, team};
    if (fv__policy_in_scope(&db->policy, &a, &row)) return FV_OK;
    /* The customer left this user's scope (reassigned): its row, contacts
     * and visits leave the device.  Not a deletion: nothing is captured. */
    static const char *const sql[] = {
        "DELETE FROM fv_versions WHERE tbl = 'contact' AND row_id IN"
        " (SELECT id FROM contact WHERE customer_id = ?1)",
        "DELETE FROM fv_versions WHERE tbl = 'visit' AND row_id IN"
        " (SELECT id FROM visit WHERE customer_id = ?1)",
        "DELETE FROM contact WHERE customer_id = ?1",
        "DELETE FROM visit WHERE customer_id = ?1",
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
