/*
 * custmerge.c - merging duplicate customers (fv_customer_merge) and keeping
 * every record on the surviving customer afterwards.
 *
 * A merge is ordinary changes in one atomic unit: KEEP's empty fields
 * filled from OTHER (KEEP's value wins), every record that refers to OTHER
 * by customer_id re-pointed to KEEP, OTHER's merged_into set to KEEP and
 * OTHER deleted.  So it syncs like any edit, and the merge rule (last
 * writer wins per field) is all the other replicas need.
 *
 * What makes it hold across devices: a record written to OTHER on a device
 * that had not seen the merge reaches the others still pointing at OTHER.
 * Each device that applies a change set then re-points every record whose
 * customer is merged away (fv__custmerge_repoint_all, run at the end of
 * every apply) as a local write, and local writes follow merged customers
 * before they are stored (fv__custmerge_follow).  Several devices may do
 * the same re-point: they write the same value, which the merge rule
 * never logs as a conflict.
 *
 * Which tables hold records of a customer is read from the catalogue at
 * run time: every table with a customer_id reference to customer, except
 * audit (its entries stay as written: they are hash-chained).
 */
#include "custmerge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "dedup.h"
#include "platform.h"

/* ---- following merges ---- */

/* Is customer id merged away?  *next = its merged_into; *held = the row is
 * here at all. */
static fv_status merged_step(fv_db *db, const unsigned char id[16], unsigned char next[16],
                             int *merged, int *held)
{
    sqlite3_stmt *s = fv__stmt(db, "SELECT deleted, merged_into FROM customer WHERE id = ?1");
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    *held = rc == SQLITE_ROW;
    *merged = rc == SQLITE_ROW && sqlite3_column_int(s, 0) != 0 &&
              sqlite3_column_bytes(s, 1) == 16;
    if (*merged) memcpy(next, sqlite3_column_blob(s, 1), 16);
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading a customer");
}

fv_status fv__custmerge_survivor(fv_db *db, const unsigned char id[16], unsigned char out[16],
                                 int *merged)
{
    unsigned char seen[FV_MERGE_HOPS_MAX][16], cur[16];
    size_t nseen = 0;
    *merged = 0;
    memcpy(cur, id, 16);
    for (;;) {
        unsigned char next[16];
        int is_merged, held;
        fv_status st = merged_step(db, cur, next, &is_merged, &held);
        if (st != FV_OK) return st;
        if (!held) return FV_OK; /* the survivor is not here: nothing to point at */
        if (!is_merged) break;
        for (size_t i = 0; i < nseen; i++)
            if (memcmp(seen[i], next, 16) == 0) return FV_OK; /* a loop: no survivor */
        if (nseen == FV_MERGE_HOPS_MAX) return FV_OK;
        memcpy(seen[nseen++], cur, 16);
        memcpy(cur, next, 16);
    }
    if (nseen == 0) return FV_OK; /* id itself is not merged away */
    memcpy(out, cur, 16);
    *merged = 1;
    return FV_OK;
}

/* Does table t hold records of a customer (a customer_id reference to
 * customer), and are they re-pointed by a merge? */
static int child_table(const fv__table *t)
{
    if (strcmp(t->name, "audit") == 0 || strcmp(t->name, "customer") == 0) return 0;
    const fv__field *f = fv__schema_field(t, "customer_id", NULL);
    return f != NULL && f->type == FV_TYPE_REF && strcmp(f->ref_table, "customer") == 0;
}

fv_status fv__custmerge_follow(fv_record *rec)
{
    fv_db *db = rec->db;
    if (strcmp(rec->tbl->name, "audit") == 0) return FV_OK;
    for (size_t i = 0; i < rec->tbl->nfields; i++) {
        const fv__field *f = &rec->tbl->fields[i];
        fv__val *v = &rec->vals[i];
        if (f->type != FV_TYPE_REF || strcmp(f->ref_table, "customer") != 0) continue;
        if (!v->set || v->text == NULL || (rec->has_id && !v->dirty)) continue;
        unsigned char id[16], to[16];
        int merged;
        if (!fv__uuid_parse(v->text, id)) continue; /* check_row reports it */
        fv_status st = fv__custmerge_survivor(db, id, to, &merged);
        if (st != FV_OK) return st;
        if (!merged) continue;
        char *text = malloc(FV_ID_LEN + 1);
        if (text == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
        fv__uuid_format(to, text);
        free(v->text);
        v->text = text;
        v->dirty = 1;
    }
    return FV_OK;
}

/* ---- access ---- */

/* Owner and team of a customer as stored ("" when unknown). */
static fv_status customer_owner(fv_db *db, const unsigned char id[16], char *owner, char *team)
{
    owner[0] = team[0] = '\0';
    sqlite3_stmt *s = fv__stmt(db, "SELECT owner, team FROM customer WHERE id = ?1");
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const unsigned char *o = sqlite3_column_text(s, 0), *t = sqlite3_column_text(s, 1);
        snprintf(owner, FV_NAME_MAX + 1, "%s", o ? (const char *)o : "");
        snprintf(team, FV_NAME_MAX + 1, "%s", t ? (const char *)t : "");
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading a customer");
}

/* May the acting user write table.field of a record of customer cust (as
 * fvd judges it: by the customer the record has now)?  *ok; why gets the
 * reason.  A store never enrolled may write everything. */
static fv_status may_write(fv_db *db, const char *table, const char *field,
                           const unsigned char cust[16], int *ok, char *why, size_t cap)
{
    *ok = 1;
    if (!db->enrolled) return FV_OK;
    char owner[FV_NAME_MAX + 1], team[FV_NAME_MAX + 1];
    fv_status st = customer_owner(db, cust, owner, team);
    if (st != FV_OK) return st;
    fv__actor a = {db->acl_user, db->acl_role, db->acl_team};
    fv__row_owner row = {owner, team};
    *ok = fv__policy_may_write(&db->policy, &a, table, field, FV_CLASS_PUBLIC, &row, why, cap);
    return FV_OK;
}

/* ---- writing ---- */

/* Point record id of table t at customer to: a captured local write. */
static fv_status repoint(fv_db *db, const fv__table *t, const unsigned char id[16],
                         const unsigned char to[16])
{
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE \"%s\" SET customer_id = ?2, updated_ms = ?3 WHERE id = ?1",
             t->name);
    sqlite3_stmt *s = fv__stmt(db, sql);
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, to, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, fv_platform_now_ms());
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return fv__sqlerr(db, rc, "re-pointing a record");
    uint64_t hlc;
    fv_status st = fv__hlc_next(db, &hlc);
    fv__cval cv = {SQLITE_BLOB, NULL, to, 16, 0.0};
    if (st == FV_OK) st = fv__capture(db, t->name, id, "customer_id", &cv, hlc);
    if (st == FV_OK) st = fv__dedup_row_written(db, t->name, id, "customer_id");
    return st;
}

/* The records of table t that refer to customer cust, malloc'd. */
static fv_status children_of(fv_db *db, const fv__table *t, const unsigned char cust[16],
                             unsigned char (**ids)[16], size_t *n)
{
    *ids = NULL;
    *n = 0;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT id FROM \"%s\" WHERE customer_id = ?1 ORDER BY id", t->name);
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, &q, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "listing a customer's records");
    sqlite3_bind_blob(q, 1, cust, 16, SQLITE_STATIC);
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
    if (st == FV_OK && rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "listing a customer's records");
    sqlite3_finalize(q);
    if (st != FV_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return st;
}

fv_status fv__custmerge_repoint_all(fv_db *db, size_t *count)
{
    if (count != NULL) *count = 0;
    if (fv__schema_table(db, "customer") == NULL ||
        fv__schema_field(fv__schema_table(db, "customer"), "merged_into", NULL) == NULL)
        return FV_OK;
    /* merged-away customers first (few, by the partial index), then their
     * records by each table's customer index */
    unsigned char(*gone)[16] = NULL;
    size_t ngone = 0, cap = 0;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT id FROM customer WHERE merged_into IS NOT NULL AND deleted = 1",
                                -1, &q, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "listing merged customers");
    fv_status st = FV_OK;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(q, 0) != 16) continue;
        if (ngone == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            void *p = realloc(gone, ncap * sizeof *gone);
            if (p == NULL) {
                st = fv__err(db, FV_ENOMEM, "out of memory");
                break;
            }
            gone = p;
            cap = ncap;
        }
        memcpy(gone[ngone++], sqlite3_column_blob(q, 0), 16);
    }
    if (st == FV_OK && rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "listing merged customers");
    sqlite3_finalize(q);
    for (size_t g = 0; st == FV_OK && g < ngone; g++) {
        unsigned char to[16];
        int merged;
        st = fv__custmerge_survivor(db, gone[g], to, &merged);
        if (st != FV_OK || !merged) continue;
        for (size_t ti = 0; st == FV_OK && ti < db->cat.ntables; ti++) {
            const fv__table *t = &db->cat.tables[ti];
            if (!child_table(t)) continue;
            unsigned char(*ids)[16];
            size_t n;
            if ((st = children_of(db, t, gone[g], &ids, &n)) != FV_OK || n == 0) {
                free(ids);
                continue;
            }
            char why[256];
            int ok;
            st = may_write(db, t->name, "customer_id", gone[g], &ok, why, sizeof why);
            /* not this user's to move: a device whose user may will */
            for (size_t i = 0; st == FV_OK && ok && i < n; i++) {
                st = repoint(db, t, ids[i], to);
                if (st == FV_OK && count != NULL) (*count)++;
            }
            free(ids);
        }
    }
    free(gone);
    return st;
}

/* ---- fv_customer_merge ---- */

/* Fill KEEP's empty fields from OTHER's, but only those the user may write
 * (each judged alone: a rep may not set a grade, say, and that one field is
 * left out, not the merge refused).  *filled counts them; they are left
 * marked for fv_update. */
static fv_status fill_fields(fv_db *db, fv_record *keep, const fv_record *other, size_t *filled)
{
    static const char *const never[] = {"owner", "team", "merged_into"};
    int fill[FV_RECORD_FIELDS_MAX] = {0};
    *filled = 0;
    for (size_t i = 0; i < keep->tbl->nfields; i++) {
        const fv__field *f = &keep->tbl->fields[i];
        fv__val *k = &keep->vals[i];
        const fv__val *o = &other->vals[i];
        int skip = 0;
        for (size_t n = 0; n < sizeof never / sizeof never[0]; n++)
            if (strcmp(f->name, never[n]) == 0) skip = 1;
        if (skip || k->set || k->redacted || k->corrupt || !o->set || o->redacted || o->corrupt)
            continue;
        if (o->text != NULL && (k->text = fv__strdup(o->text)) == NULL)
            return fv__err(db, FV_ENOMEM, "out of memory");
        k->real = o->real;
        k->set = 1;
        k->loaded = 0;
        for (size_t j = 0; j < keep->tbl->nfields; j++) keep->vals[j].dirty = j == i;
        fv_status st = fv__acl_check_write(keep, 0);
        if (st == FV_EACCES) {
            fv__reset(db);
            fv__wipe_str(k->text);
            k->text = NULL;
            k->set = 0;
            k->real = 0;
        } else if (st != FV_OK) {
            return st;
        } else {
            fill[i] = 1;
            (*filled)++;
        }
    }
    for (size_t i = 0; i < keep->tbl->nfields; i++) keep->vals[i].dirty = fill[i];
    return FV_OK;
}

static fv_status load_customer(fv_db *db, const char *id, const char *which, fv_record **out)
{
    fv_status st = fv_get(db, "customer", id, out);
    if (st == FV_ENOTFOUND) {
        fv__reset(db);
        return fv__err(db, FV_ENOTFOUND, "%s: no customer %.40s", which, id);
    }
    return st;
}

/* Everything the merge will write is allowed, or FV_EACCES naming what is
 * not: checked before anything is written. */
static fv_status check_merge(fv_db *db, const unsigned char other[16])
{
    char why[256];
    int ok;
    static const char *const fields[] = {"merged_into", "_deleted"};
    for (size_t i = 0; i < 2; i++) {
        fv_status st = may_write(db, "customer", fields[i], other, &ok, why, sizeof why);
        if (st != FV_OK) return st;
        if (!ok) return fv__err(db, FV_EACCES, "%s", why);
    }
    for (size_t ti = 0; ti < db->cat.ntables; ti++) {
        const fv__table *t = &db->cat.tables[ti];
        if (!child_table(t)) continue;
        fv_status st = may_write(db, t->name, "customer_id", other, &ok, why, sizeof why);
        if (st != FV_OK) return st;
        if (!ok) return fv__err(db, FV_EACCES, "%s", why);
    }
    return FV_OK;
}

/* OTHER's records to KEEP, counted by table. */
static fv_status move_records(fv_db *db, const unsigned char other[16],
                              const unsigned char keep[16], fv_merge_info *info)
{
    fv_status st = FV_OK;
    for (size_t ti = 0; st == FV_OK && ti < db->cat.ntables; ti++) {
        const fv__table *t = &db->cat.tables[ti];
        if (!child_table(t)) continue;
        unsigned char(*ids)[16];
        size_t n;
        if ((st = children_of(db, t, other, &ids, &n)) != FV_OK) break;
        for (size_t i = 0; st == FV_OK && i < n; i++) st = repoint(db, t, ids[i], keep);
        free(ids);
        if (strcmp(t->name, "contact") == 0) info->contacts += n;
        else if (strcmp(t->name, "visit") == 0) info->visits += n;
        else info->others += n;
    }
    return st;
}

/* OTHER: merged_into = KEEP, then its tombstone (two captured writes). */
static fv_status retire(fv_db *db, const unsigned char other[16], const unsigned char keep[16])
{
    sqlite3_stmt *s = fv__stmt(db, "UPDATE customer SET merged_into = ?2, deleted = 1,"
                                   " updated_ms = ?3 WHERE id = ?1 AND deleted = 0");
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, other, 16, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, keep, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, fv_platform_now_ms());
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return fv__sqlerr(db, rc, "retiring the merged customer");
    uint64_t hlc;
    fv__cval into = {SQLITE_BLOB, NULL, keep, 16, 0.0};
    fv__cval gone = {SQLITE_FLOAT, NULL, NULL, 0, 1.0};
    fv_status st = fv__hlc_next(db, &hlc);
    if (st == FV_OK) st = fv__capture(db, "customer", other, "merged_into", &into, hlc);
    if (st == FV_OK) st = fv__hlc_next(db, &hlc);
    if (st == FV_OK) st = fv__capture(db, "customer", other, "_deleted", &gone, hlc);
    return st;
}

fv_status fv_customer_merge(fv_db *db, const char *keep_id, const char *other_id,
                            fv_merge_info *info)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (info != NULL && info->size < sizeof *info)
        return fv__err(db, FV_EMISUSE, "fv_customer_merge: info.size not set");
    unsigned char keep[16], other[16];
    if (!fv__uuid_parse(keep_id, keep) || !fv__uuid_parse(other_id, other))
        return fv__err(db, FV_EINVAL, "a customer id is 36 characters (KEEP %.40s, OTHER %.40s)",
                       keep_id ? keep_id : "(null)", other_id ? other_id : "(null)");
    if (memcmp(keep, other, 16) == 0)
        return fv__err(db, FV_EINVAL, "a customer cannot be merged into itself");
    const fv__table *ct = fv__schema_table(db, "customer");
    if (ct == NULL || fv__schema_field(ct, "merged_into", NULL) == NULL)
        return fv__err(db, FV_EINTERNAL, "the catalogue has no customer.merged_into");
    fv_merge_info local = {sizeof local, 0, 0, 0, 0};
    fv_record *k = NULL, *o = NULL;
    int mode = 0, begun = 0;
    fv_status st = fv__atomic_begin(db, &mode);
    begun = st == FV_OK;
    if (st == FV_OK) st = load_customer(db, keep_id, "KEEP", &k);
    if (st == FV_OK) st = load_customer(db, other_id, "OTHER", &o);
    if (st == FV_OK) st = check_merge(db, other);
    if (st == FV_OK) st = fill_fields(db, k, o, &local.fields_filled);
    if (st == FV_OK && local.fields_filled > 0) st = fv_update(db, k);
    if (st == FV_OK) st = move_records(db, other, keep, &local);
    if (st == FV_OK) st = retire(db, other, keep);
    if (begun) st = fv__atomic_end(db, mode, st);
    fv_record_free(k);
    fv_record_free(o);
    if (st == FV_OK && info != NULL) {
        size_t size = info->size;
        *info = local;
        info->size = size;
    }
    return st;
}

fv_status fv_customer_merged_into(fv_db *db, const char *id, char out[FV_ID_LEN + 1])
{
    if (db == NULL || out == NULL) return FV_EMISUSE;
    fv__reset(db);
    out[0] = '\0';
    unsigned char key[16], to[16];
    if (!fv__uuid_parse(id, key))
        return fv__err(db, FV_EINVAL, "'%.40s' is not a customer id (36 characters)", id ? id : "");
    int merged;
    fv_status st = fv__custmerge_survivor(db, key, to, &merged);
    if (st != FV_OK) return st;
    if (!merged)
        return fv__err(db, FV_ENOTFOUND, "customer %s was not merged into another held here", id);
    fv__uuid_format(to, out);
    return FV_OK;
}
