/*
 * query.c - lists: customers by stage/grade/owner, visits and contacts of a
 * customer, and follow-ups due by grade cadence.  A list owns its own
 * prepared statement (not the shared cache, so two lists can be open at
 * once) and one record that fv_list_next refills row by row: memory does
 * not grow with the length of the list.
 */
#include "records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

#define SQL_MAX 8192

struct fv_list {
    fv_db *db;
    sqlite3_stmt *stmt;
    fv_record rec;
    int has_due; /* the last column is the computed due date */
    int done;
};

static fv_status list_open(fv_db *db, const char *table, const char *sql, fv_list **out)
{
    *out = NULL;
    fv_list *l = calloc(1, sizeof *l);
    if (l == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
    l->db = db;
    l->rec.db = db;
    l->rec.tbl = fv__schema_table(db, table);
    if (l->rec.tbl == NULL) {
        free(l);
        return fv__err(db, FV_EINTERNAL, "the catalogue has no %s table", table);
    }
    int rc = sqlite3_prepare_v3(db->sql, sql, -1, 0, &l->stmt, NULL);
    if (rc != SQLITE_OK) {
        free(l);
        return fv__sqlerr(db, rc, "preparing a list");
    }
    *out = l;
    return FV_OK;
}

static fv_status bind_opt_text(fv_list *l, int col, const char *v)
{
    if (v == NULL) return FV_OK;
    if (sqlite3_bind_text(l->stmt, col, v, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        return fv__err(l->db, FV_ENOMEM, "out of memory");
    return FV_OK;
}

static fv_status check_enum_filter(fv_db *db, const char *field, const char *v)
{
    if (v == NULL) return FV_OK;
    const fv__field *f = fv__schema_field(fv__schema_table(db, "customer"), field, NULL);
    if (f == NULL || f->enum_values == NULL) return FV_OK;
    if (fv__enum_has(f->enum_values, v)) return FV_OK;
    return fv__err(db, FV_EINVAL, "customer.%s must be one of %s", field, f->enum_values);
}

fv_status fv_list_customers(fv_db *db, const fv_customer_filter *f, fv_list **out)
{
    if (db == NULL || out == NULL) return FV_EMISUSE;
    fv__reset(db);
    *out = NULL;
    if (f != NULL && f->size < sizeof *f) return fv__err(db, FV_EINVAL, "filter size not set");
    const char *stage = f ? f->stage : NULL, *grade = f ? f->grade : NULL;
    const char *owner = f ? f->owner : NULL;
    fv_status st = check_enum_filter(db, "stage", stage);
    if (st == FV_OK) st = check_enum_filter(db, "grade", grade);
    if (st != FV_OK) return st;
    const fv__table *t = fv__schema_table(db, "customer");
    if (t == NULL) return fv__err(db, FV_EINTERNAL, "the catalogue has no customer table");
    char sql[SQL_MAX];
    size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT ");
    n += fv__select_list(t, NULL, sql + n, sizeof sql - n);
    snprintf(sql + n, sizeof sql - n,
             " FROM customer WHERE deleted = 0 AND (?1 IS NULL OR stage = ?1)"
             " AND (?2 IS NULL OR grade = ?2) AND (?3 IS NULL OR owner = ?3) ORDER BY name, id");
    st = list_open(db, "customer", sql, out);
    if (st == FV_OK) st = bind_opt_text(*out, 1, stage);
    if (st == FV_OK) st = bind_opt_text(*out, 2, grade);
    if (st == FV_OK) st = bind_opt_text(*out, 3, owner);
    if (st != FV_OK) {
        fv_list_free(*out);
        *out = NULL;
    }
    return st;
}

static fv_status list_children(fv_db *db, const char *table, const char *customer_id,
                               const char *order, fv_list **out)
{
    if (db == NULL || out == NULL) return FV_EMISUSE;
    fv__reset(db);
    *out = NULL;
    unsigned char key[16];
    if (customer_id != NULL && !fv__uuid_parse(customer_id, key))
        return fv__err(db, FV_EINVAL, "'%.40s' is not a customer id (36 characters)", customer_id);
    const fv__table *t = fv__schema_table(db, table);
    if (t == NULL) return fv__err(db, FV_EINTERNAL, "the catalogue has no %s table", table);
    char sql[SQL_MAX];
    size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT ");
    n += fv__select_list(t, NULL, sql + n, sizeof sql - n);
    snprintf(sql + n, sizeof sql - n,
             " FROM \"%s\" WHERE deleted = 0 AND (?1 IS NULL OR customer_id = ?1) ORDER BY %s",
             table, order);
    fv_status st = list_open(db, table, sql, out);
    if (st == FV_OK && customer_id != NULL &&
        sqlite3_bind_blob((*out)->stmt, 1, key, 16, SQLITE_TRANSIENT) != SQLITE_OK) {
        st = fv__err(db, FV_ENOMEM, "out of memory");
        fv_list_free(*out);
        *out = NULL;
    }
    return st;
}

fv_status fv_list_visits(fv_db *db, const char *customer_id, fv_list **out)
{
    return list_children(db, "visit", customer_id, "at DESC, id DESC", out);
}

fv_status fv_list_contacts(fv_db *db, const char *customer_id, fv_list **out)
{
    return list_children(db, "contact", customer_id, "name, id", out);
}

fv_status fv_list_due(fv_db *db, const char *date, fv_list **out)
{
    if (db == NULL || out == NULL) return FV_EMISUSE;
    fv__reset(db);
    *out = NULL;
    char today[21];
    if (date == NULL) {
        fv__time_format_ms(fv_platform_now_ms(), today);
        today[10] = '\0';
        date = today;
    } else if (!fv__date_valid(date)) {
        return fv__err(db, FV_EINVAL, "the due date must be YYYY-MM-DD");
    }
    const fv__table *t = fv__schema_table(db, "customer");
    if (t == NULL) return fv__err(db, FV_EINTERNAL, "the catalogue has no customer table");
    char sql[SQL_MAX];
    size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT * FROM (SELECT ");
    n += fv__select_list(t, "c", sql + n, sizeof sql - n);
    /* Cadence by grade: S weekly, A fortnightly, B (and ungraded) monthly,
     * counted from the last visit, or from creation if never visited. */
    snprintf(sql + n, sizeof sql - n,
             ", COALESCE(c.next_due, date(COALESCE("
             "(SELECT max(v.at) FROM visit v WHERE v.customer_id = c.id AND v.deleted = 0),"
             " datetime(c.created_ms / 1000, 'unixepoch')),"
             " '+' || CASE c.grade WHEN 'S' THEN 7 WHEN 'A' THEN 14 ELSE 30 END || ' days'))"
             " AS due_on FROM customer c"
             " WHERE c.deleted = 0 AND (c.stage IS NULL OR c.stage <> 'lost'))"
             " WHERE due_on <= ?1 ORDER BY due_on, name, id");
    fv_status st = list_open(db, "customer", sql, out);
    if (st == FV_OK) {
        (*out)->has_due = 1;
        st = bind_opt_text(*out, 1, date);
        if (st != FV_OK) {
            fv_list_free(*out);
            *out = NULL;
        }
    }
    return st;
}

fv_status fv_list_next(fv_list *l, const fv_record **rec)
{
    if (l == NULL || rec == NULL) return FV_EMISUSE;
    fv__reset(l->db);
    *rec = NULL;
again:
    if (l->done) return FV_OK;
    int rc = sqlite3_step(l->stmt);
    if (rc == SQLITE_DONE) {
        l->done = 1;
        fv__record_clear_values(&l->rec);
        return FV_OK;
    }
    if (rc != SQLITE_ROW) return fv__sqlerr(l->db, rc, "reading a list");
    fv_status st = fv__record_load_row(&l->rec, l->stmt, 0);
    int visible = 1;
    if (st == FV_OK) st = fv__acl_filter(&l->rec, &visible);
    if (st != FV_OK) return st;
    if (!visible) goto again; /* out of the user's scope: skip (a loop, not recursion) */
    if (l->has_due) {
        const unsigned char *d = sqlite3_column_text(l->stmt, (int)l->rec.tbl->nfields + 1);
        snprintf(l->rec.due, sizeof l->rec.due, "%s", d ? (const char *)d : "");
    }
    *rec = &l->rec;
    return FV_OK;
}

fv_status fv_list_free(fv_list *l)
{
    if (l == NULL) return FV_OK;
    sqlite3_finalize(l->stmt);
    fv__record_clear_values(&l->rec);
    free(l);
    return FV_OK;
}
