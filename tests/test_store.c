/*
 * test_store.c - the public API on real store files: records, validation
 * and bounds, lists and the due query, batches, schema migrations, the
 * catalogue, passphrase change, rekey and the key-store hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fieldvault.h"
#include "internal.h"
#include "testutil.h"

#define PASS "test passphrase"

typedef struct fixture {
    char *dir;
    char *path;
    fv_db *db;
} fixture;

static fv_status open_store(const char *path, const char *pass, unsigned flags, fv_db **db)
{
    fv_open_config cfg = {0};
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.passphrase = pass;
    cfg.passphrase_len = strlen(pass);
    cfg.flags = flags;
    cfg.kdf_mem_kib = 8 * 1024;
    cfg.kdf_passes = 1;
    cfg.user = "alice";
    return fv_open(db, &cfg);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("store");
    f->path = tu_path(f->dir, "s.fv");
    fv_status st = open_store(f->path, PASS, FV_OPEN_CREATE | FV_OPEN_EXCL, &f->db);
    if (st != FV_OK) fprintf(stderr, "open: %s\n", fv_errmsg(f->db));
    assert_int_equal(st, FV_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    assert_int_equal(fv_close(f->db), FV_OK);
    tu_rmtree(f->dir);
    free(f->path);
    free(f->dir);
    free(f);
    return 0;
}

static void reopen(fixture *f)
{
    assert_int_equal(fv_close(f->db), FV_OK);
    f->db = NULL;
    fv_status st = open_store(f->path, PASS, 0, &f->db);
    if (st != FV_OK) fprintf(stderr, "reopen: %s\n", fv_errmsg(f->db));
    assert_int_equal(st, FV_OK);
}

static char *add_customer(fv_db *db, const char *name, const char *grade, const char *stage)
{
    fv_record *r;
    assert_int_equal(fv_record_new(db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", name), FV_OK);
    if (grade) assert_int_equal(fv_record_set_text(r, "grade", grade), FV_OK);
    if (stage) assert_int_equal(fv_record_set_text(r, "stage", stage), FV_OK);
    assert_int_equal(fv_insert(db, r), FV_OK);
    char *id = strdup(fv_record_id(r));
    fv_record_free(r);
    return id;
}

static char *add_visit(fv_db *db, const char *cust, const char *at, const char *summary)
{
    fv_record *r;
    assert_int_equal(fv_record_new(db, "visit", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "customer_id", cust), FV_OK);
    assert_int_equal(fv_record_set_text(r, "method", "visit"), FV_OK);
    if (at) assert_int_equal(fv_record_set_text(r, "at", at), FV_OK);
    assert_int_equal(fv_record_set_text(r, "summary", summary), FV_OK);
    fv_status st = fv_insert(db, r);
    if (st != FV_OK) fprintf(stderr, "visit: %s\n", fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    char *id = strdup(fv_record_id(r));
    fv_record_free(r);
    return id;
}

static size_t count_list(fv_list *l)
{
    size_t n = 0;
    const fv_record *r;
    while (fv_list_next(l, &r) == FV_OK && r != NULL) n++;
    fv_list_free(l);
    return n;
}

static void test_crud_roundtrip(void **state)
{
    fixture *f = *state;
    fv_record *r;
    assert_int_equal(fv_record_new(f->db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", "Acme 食品"), FV_OK);
    assert_int_equal(fv_record_set_text(r, "budget", "120k"), FV_OK);
    assert_int_equal(fv_record_set_text(r, "next_due", "2026-12-01"), FV_OK);
    assert_int_equal(fv_insert(f->db, r), FV_OK);
    char id[FV_ID_LEN + 1];
    strcpy(id, fv_record_id(r));
    assert_int_equal(strlen(id), FV_ID_LEN);
    assert_int_equal(id[14], '7'); /* UUID version 7 */
    fv_record_free(r);

    reopen(f);
    assert_int_equal(fv_get(f->db, "customer", id, &r), FV_OK);
    const char *v;
    assert_int_equal(fv_record_get_text(r, "name", &v), FV_OK);
    assert_string_equal(v, "Acme 食品");
    assert_int_equal(fv_record_get_text(r, "owner", &v), FV_OK);
    assert_string_equal(v, "alice"); /* default owner: the acting user */
    assert_int_equal(fv_record_get_text(r, "grade", &v), FV_OK);
    assert_null(v);
    /* update only what changed */
    assert_int_equal(fv_record_set_text(r, "grade", "S"), FV_OK);
    assert_int_equal(fv_update(f->db, r), FV_OK);
    fv_record_free(r);
    assert_int_equal(fv_get(f->db, "customer", id, &r), FV_OK);
    assert_int_equal(fv_record_get_text(r, "grade", &v), FV_OK);
    assert_string_equal(v, "S");
    assert_int_equal(fv_record_get_text(r, "budget", &v), FV_OK);
    assert_string_equal(v, "120k");
    fv_record_free(r);

    /* delete is a tombstone: gone from reads and lists */
    assert_int_equal(fv_delete(f->db, "customer", id), FV_OK);
    assert_int_equal(fv_get(f->db, "customer", id, &r), FV_ENOTFOUND);
    assert_int_equal(fv_delete(f->db, "customer", id), FV_ENOTFOUND);
    fv_list *l;
    assert_int_equal(fv_list_customers(f->db, NULL, &l), FV_OK);
    assert_int_equal(count_list(l), 0);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(f->db->sql, "SELECT deleted FROM customer", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 1);
    sqlite3_finalize(s);
}

static void test_validation(void **state)
{
    fixture *f = *state;
    fv_record *r;
    assert_int_equal(fv_record_new(f->db, "nosuch", &r), FV_EINVAL);
    assert_int_equal(fv_record_new(f->db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "grade", "X"), FV_EINVAL);
    assert_non_null(strstr(fv_errmsg(f->db), "customer.grade must be one of S|A|B"));
    assert_int_equal(fv_record_set_text(r, "stage", "maybe"), FV_EINVAL);
    assert_int_equal(fv_record_set_text(r, "next_due", "2025-02-30"), FV_EINVAL);
    assert_int_equal(fv_record_set_text(r, "next_due", "tomorrow"), FV_EINVAL);
    assert_int_equal(fv_record_set_text(r, "nosuch", "x"), FV_EINVAL);
    assert_int_equal(fv_record_set_text(r, "name", "bad \xff utf8"), FV_EINVAL);
    char big[FV_FIELD_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(fv_record_set_text(r, "needs", big), FV_EINVAL);
    assert_non_null(strstr(fv_errmsg(f->db), "the limit is 4096"));
    /* a confidential value is never quoted in a message */
    assert_int_equal(fv_record_set_text(r, "budget", big), FV_EINVAL);
    assert_null(strstr(fv_errmsg(f->db), "aaaa"));
    /* required field missing: nothing written */
    assert_int_equal(fv_insert(f->db, r), FV_EINVAL);
    assert_non_null(strstr(fv_errmsg(f->db), "customer.name is required"));
    fv_record_free(r);

    /* a visit needs a live customer */
    assert_int_equal(fv_record_new(f->db, "visit", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "customer_id", "not-an-id"), FV_EINVAL);
    assert_int_equal(fv_record_set_text(r, "customer_id", "01890000-0000-7000-8000-000000000000"),
                     FV_OK);
    assert_int_equal(fv_record_set_text(r, "method", "visit"), FV_OK);
    assert_int_equal(fv_record_set_text(r, "at", "2026-13-01T00:00:00Z"), FV_EINVAL);
    assert_int_equal(fv_record_set_real(r, "lat", 1.0 / 0.0), FV_EINVAL);
    assert_int_equal(fv_insert(f->db, r), FV_ENOTFOUND);
    fv_record_free(r);
    fv_list *l;
    assert_int_equal(fv_list_visits(f->db, NULL, &l), FV_OK);
    assert_int_equal(count_list(l), 0);
    assert_int_equal(fv_list_customers(f->db, NULL, &l), FV_OK);
    assert_int_equal(count_list(l), 0);
}

static void test_time_normalised(void **state)
{
    fixture *f = *state;
    char *c = add_customer(f->db, "Zeta", NULL, NULL);
    fv_record *r;
    assert_int_equal(fv_record_new(f->db, "visit", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "customer_id", c), FV_OK);
    assert_int_equal(fv_record_set_text(r, "method", "phone"), FV_OK);
    assert_int_equal(fv_record_set_text(r, "at", "2026-03-01T09:30:00+08:00"), FV_OK);
    assert_int_equal(fv_record_set_real(r, "lat", 31.2304), FV_OK);
    assert_int_equal(fv_insert(f->db, r), FV_OK);
    char id[FV_ID_LEN + 1];
    strcpy(id, fv_record_id(r));
    fv_record_free(r);
    assert_int_equal(fv_get(f->db, "visit", id, &r), FV_OK);
    const char *at;
    double lat;
    int set;
    assert_int_equal(fv_record_get_text(r, "at", &at), FV_OK);
    assert_string_equal(at, "2026-03-01T01:30:00Z");
    assert_int_equal(fv_record_get_real(r, "lat", &lat, &set), FV_OK);
    assert_true(set);
    assert_true(lat > 31.2303 && lat < 31.2305);
    assert_int_equal(fv_record_get_real(r, "lon", &lat, &set), FV_OK);
    assert_false(set);
    fv_record_free(r);
    free(c);
}

static void test_lists_and_due(void **state)
{
    fixture *f = *state;
    char *s_recent = add_customer(f->db, "S recent", "S", "intent");
    char *s_old = add_customer(f->db, "S old", "S", "negotiation");
    char *a_mid = add_customer(f->db, "A mid", "A", "intent");
    char *b_lost = add_customer(f->db, "B lost", "B", "lost");
    char *b_explicit = add_customer(f->db, "B explicit", "B", "lead");
    free(add_visit(f->db, s_recent, "2026-03-07T10:00:00Z", "three days ago"));
    free(add_visit(f->db, s_old, "2026-03-02T10:00:00Z", "eight days ago"));
    free(add_visit(f->db, s_old, "2026-02-01T10:00:00Z", "older"));
    free(add_visit(f->db, a_mid, "2026-02-20T10:00:00Z", "18 days ago"));
    free(add_visit(f->db, b_lost, "2025-01-01T10:00:00Z", "long ago"));
    fv_record *r;
    assert_int_equal(fv_get(f->db, "customer", b_explicit, &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "next_due", "2026-03-09"), FV_OK);
    assert_int_equal(fv_update(f->db, r), FV_OK);
    fv_record_free(r);

    fv_list *l;
    assert_int_equal(fv_list_due(f->db, "2026-03-10", &l), FV_OK);
    const fv_record *it;
    const char *name;
    const char *want[] = {"A mid", "B explicit", "S old"}; /* due 03-06, 03-09, 03-09 */
    const char *want_due[] = {"2026-03-06", "2026-03-09", "2026-03-09"};
    size_t n = 0;
    while (fv_list_next(l, &it) == FV_OK && it != NULL) {
        assert_true(n < 3);
        assert_int_equal(fv_record_get_text(it, "name", &name), FV_OK);
        assert_string_equal(name, want[n]);
        assert_string_equal(fv_record_due(it), want_due[n]);
        n++;
    }
    assert_int_equal(n, 3);
    fv_list_free(l);
    assert_int_equal(fv_list_due(f->db, "2026-3-10", &l), FV_EINVAL);

    /* visits newest first */
    assert_int_equal(fv_list_visits(f->db, s_old, &l), FV_OK);
    const char *sum;
    assert_int_equal(fv_list_next(l, &it), FV_OK);
    assert_int_equal(fv_record_get_text(it, "summary", &sum), FV_OK);
    assert_string_equal(sum, "eight days ago");
    assert_int_equal(fv_list_next(l, &it), FV_OK);
    assert_int_equal(fv_record_get_text(it, "summary", &sum), FV_OK);
    assert_string_equal(sum, "older");
    assert_int_equal(fv_list_next(l, &it), FV_OK);
    assert_null(it);
    fv_list_free(l);

    fv_customer_filter cf = {sizeof cf, "intent", NULL, NULL};
    assert_int_equal(fv_list_customers(f->db, &cf, &l), FV_OK);
    assert_int_equal(count_list(l), 2);
    cf.stage = NULL;
    cf.grade = "B";
    assert_int_equal(fv_list_customers(f->db, &cf, &l), FV_OK);
    assert_int_equal(count_list(l), 2);
    cf.grade = "Q";
    assert_int_equal(fv_list_customers(f->db, &cf, &l), FV_EINVAL);
    cf.grade = NULL;
    cf.owner = "bob";
    assert_int_equal(fv_list_customers(f->db, &cf, &l), FV_OK);
    assert_int_equal(count_list(l), 0);
    free(s_recent);
    free(s_old);
    free(a_mid);
    free(b_lost);
    free(b_explicit);
}

static void test_batch(void **state)
{
    fixture *f = *state;
    assert_int_equal(fv_begin(f->db), FV_OK);
    assert_int_equal(fv_begin(f->db), FV_EMISUSE);
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "batch %d", i);
        free(add_customer(f->db, name, "B", NULL));
    }
    assert_int_equal(fv_rollback(f->db), FV_OK);
    fv_list *l;
    assert_int_equal(fv_list_customers(f->db, NULL, &l), FV_OK);
    assert_int_equal(count_list(l), 0);
    assert_int_equal(fv_begin(f->db), FV_OK);
    for (int i = 0; i < 100; i++) free(add_customer(f->db, "kept", "B", NULL));
    assert_int_equal(fv_commit(f->db), FV_OK);
    reopen(f);
    assert_int_equal(fv_list_customers(f->db, NULL, &l), FV_OK);
    assert_int_equal(count_list(l), 100);
}

static void test_ids_time_ordered(void **state)
{
    fixture *f = *state;
    char prev[FV_ID_LEN + 1] = "";
    for (int i = 0; i < 500; i++) {
        char *id = add_customer(f->db, "x", NULL, NULL);
        assert_true(strcmp(prev, id) < 0);
        strcpy(prev, id);
        free(id);
    }
}

static void test_schema_catalogue(void **state)
{
    fixture *f = *state;
    fv_field_class cls;
    assert_int_equal(fv_schema_field_class(f->db, "customer", "budget", &cls), FV_OK);
    assert_int_equal(cls, FV_CLASS_CONFIDENTIAL);
    assert_int_equal(fv_schema_field_class(f->db, "contact", "phone", &cls), FV_OK);
    assert_int_equal(cls, FV_CLASS_PII);
    assert_int_equal(fv_schema_field_class(f->db, "visit", "summary", &cls), FV_OK);
    assert_int_equal(cls, FV_CLASS_PUBLIC);
    assert_int_equal(fv_schema_field_class(f->db, "visit", "nope", &cls), FV_ENOTFOUND);

    assert_int_equal(fv_schema_add_field(f->db, "customer", "wechat", FV_CLASS_PII), FV_OK);
    assert_int_equal(fv_schema_add_field(f->db, "customer", "wechat", FV_CLASS_PII), FV_EEXIST);
    assert_int_equal(fv_schema_add_field(f->db, "customer", "Bad Name", FV_CLASS_PII), FV_EINVAL);
    assert_int_equal(fv_schema_add_field(f->db, "customer", "id", FV_CLASS_PII), FV_EINVAL);
    reopen(f);
    fv_record *r;
    assert_int_equal(fv_record_new(f->db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", "W"), FV_OK);
    assert_int_equal(fv_record_set_text(r, "wechat", "wx-123"), FV_OK);
    assert_int_equal(fv_insert(f->db, r), FV_OK);
    char id[FV_ID_LEN + 1];
    strcpy(id, fv_record_id(r));
    fv_record_free(r);
    assert_int_equal(fv_get(f->db, "customer", id, &r), FV_OK);
    const char *v;
    assert_int_equal(fv_record_get_text(r, "wechat", &v), FV_OK);
    assert_string_equal(v, "wx-123");
    fv_record_free(r);
    assert_int_equal(fv_schema_field_class(f->db, "customer", "wechat", &cls), FV_OK);
    assert_int_equal(cls, FV_CLASS_PII);
}

static int read_user_version(fv_db *db)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void test_migration_forward(void **state)
{
    fixture *f = *state;
    /* Make the store look like one written by schema version 1: drop what
     * migrations 2 to 5 add, then reopen: they run again, data kept, and
     * the old rows are captured for sync (versions and outbox backfilled)
     * and given their first stage and grade history entries. */
    char *c = add_customer(f->db, "Old", "A", "intent");
    char *gone = add_customer(f->db, "Gone", NULL, NULL);
    assert_int_equal(fv_delete(f->db, "customer", gone), FV_OK);
    free(gone);
    /* What migration 6 adds (grade review, dates, complaints): a migrated
     * store gets the catalogue rows a new store has, in the same order. */
    static const char v6_catalogue[] =
        "SELECT group_concat(tbl || '.' || name || ':' || ord || ':' || cls || ':' || type ||"
        " ':' || required || ':' || max_len || ':' || coalesce(enum_values, '') || ':' ||"
        " coalesce(ref_table, ''), ',') FROM (SELECT * FROM fv_fields WHERE tbl = 'complaint'"
        " OR (tbl = 'customer' AND (name = 'since' OR name LIKE 'grade\\_%' ESCAPE '\\'))"
        " OR (tbl = 'contact' AND name = 'birthday') ORDER BY tbl, ord)";
    char *catalogue_before = NULL;
    {
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(f->db->sql, v6_catalogue, -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        catalogue_before = strdup((const char *)sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
        assert_non_null(strstr(catalogue_before, "complaint.received_at:"));
        assert_non_null(strstr(catalogue_before, "contact.birthday:"));
    }
    assert_int_equal(fv__exec(f->db,
        "DROP INDEX complaint_by_customer; DROP TABLE complaint;"
        "ALTER TABLE customer DROP COLUMN since; ALTER TABLE customer DROP COLUMN grade_proposed;"
        "ALTER TABLE customer DROP COLUMN grade_proposed_by;"
        "ALTER TABLE customer DROP COLUMN grade_proposed_at;"
        "ALTER TABLE customer DROP COLUMN grade_proposal_id;"
        "ALTER TABLE customer DROP COLUMN grade_decision;"
        "ALTER TABLE customer DROP COLUMN grade_decided_by;"
        "ALTER TABLE customer DROP COLUMN grade_decided_at;"
        "ALTER TABLE customer DROP COLUMN grade_decision_for;"
        "ALTER TABLE contact DROP COLUMN birthday;"
        "DELETE FROM fv_fields WHERE tbl = 'complaint' OR (tbl = 'customer' AND (name = 'since'"
        " OR name LIKE 'grade\\_%' ESCAPE '\\')) OR (tbl = 'contact' AND name = 'birthday');"
        "DELETE FROM fv_meta WHERE key LIKE 'complaint_deadlines%';"), FV_OK);
    /* What migration 7 adds (duplicates, merge, the read audit): the audit
     * table and customer.merged_into in the catalogue, the store's own
     * duplicate-key columns and indexes, the blind-index key. */
    assert_int_equal(fv__exec(f->db,
        "DROP INDEX customer_by_name_key; DROP INDEX contact_by_phone_bidx;"
        "DROP INDEX contact_by_email_bidx; DROP INDEX customer_merged; DROP INDEX audit_by_device;"
        "DROP TABLE audit;"
        "ALTER TABLE customer DROP COLUMN name_key; ALTER TABLE customer DROP COLUMN merged_into;"
        "ALTER TABLE contact DROP COLUMN phone_bidx; ALTER TABLE contact DROP COLUMN email_bidx;"
        "DELETE FROM fv_fields WHERE tbl = 'audit' OR (tbl = 'customer' AND name = 'merged_into');"
        "DELETE FROM fv_meta WHERE key IN ('blind_key', 'audit_head');"), FV_OK);
    assert_int_equal(fv__exec(f->db,
        "DROP INDEX customer_by_stage; DROP INDEX customer_by_grade; DROP INDEX customer_by_owner;"
        "DROP INDEX visit_by_customer; DROP INDEX visit_by_time; DROP INDEX contact_by_customer;"
        "DROP TRIGGER fv_history_on_insert; DROP TRIGGER fv_history_on_update;"
        "DROP INDEX fv_history_by_row;"
        "DROP TABLE fv_versions; DROP TABLE fv_outbox; DROP TABLE fv_conflicts;"
        "DROP TABLE fv_field_keys; DROP TABLE fv_history;"
        "DELETE FROM fv_meta WHERE key IN ('device_id', 'hlc');"
        "PRAGMA user_version = 1;"), FV_OK);
    reopen(f);
    {
        sqlite3_stmt *q;
        /* Old: name, grade, stage, owner; Gone: name, owner, _deleted */
        assert_int_equal(sqlite3_prepare_v2(f->db->sql,
            "SELECT (SELECT count(*) FROM fv_versions), (SELECT count(*) FROM fv_outbox),"
            " (SELECT count(*) FROM fv_outbox WHERE field = '_deleted')", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), 7);
        assert_int_equal(sqlite3_column_int(q, 1), 7);
        assert_int_equal(sqlite3_column_int(q, 2), 1);
        sqlite3_finalize(q);
        /* Old's grade and stage: one history entry each, no old value */
        assert_int_equal(sqlite3_prepare_v2(f->db->sql,
            "SELECT (SELECT count(*) FROM fv_history WHERE old_value IS NULL),"
            " (SELECT group_concat(field || '=' || new_value, ',') FROM"
            "  (SELECT field, new_value FROM fv_history ORDER BY field)),"
            " (SELECT count(*) FROM sqlite_schema WHERE type = 'trigger')", -1, &q, NULL),
            SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), 2);
        assert_string_equal((const char *)sqlite3_column_text(q, 1), "grade=A,stage=intent");
        assert_int_equal(sqlite3_column_int(q, 2), 2);
        sqlite3_finalize(q);
    }
    assert_int_equal(read_user_version(f->db), fv_schema_version());
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(f->db->sql,
        "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'customer_by_stage'",
        -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 1);
    sqlite3_finalize(s);
    fv_record *r;
    assert_int_equal(fv_get(f->db, "customer", c, &r), FV_OK);
    fv_record_free(r);
    /* migration 6 ran again: its catalogue rows as a new store has them,
     * the complaint table and its index, the default deadlines; and they
     * work (a complaint gets its deadlines, a customer its since) */
    {
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(f->db->sql, v6_catalogue, -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(q, 0), catalogue_before);
        sqlite3_finalize(q);
        assert_int_equal(sqlite3_prepare_v2(f->db->sql,
            "SELECT (SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
            " AND name = 'complaint_by_customer'),"
            " (SELECT value FROM fv_meta WHERE key = 'complaint_deadlines')", -1, &q, NULL),
            SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), 1);
        assert_string_equal((const char *)sqlite3_column_text(q, 1), "3600 86400 172800");
        sqlite3_finalize(q);
    }
    free(catalogue_before);
    /* migration 7 ran again: its catalogue rows, columns and key, and the
     * name key of the customer already there */
    {
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(f->db->sql,
            "SELECT (SELECT count(*) FROM fv_fields WHERE tbl = 'audit'),"
            " (SELECT count(*) FROM fv_fields WHERE tbl = 'customer' AND name = 'merged_into'),"
            " (SELECT length(value) FROM fv_meta WHERE key = 'blind_key'),"
            " (SELECT name_key FROM customer WHERE name = 'Old'),"
            " (SELECT count(*) FROM pragma_table_info('contact') WHERE name IN"
            " ('phone_bidx', 'email_bidx'))", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), 11);
        assert_int_equal(sqlite3_column_int(q, 1), 1);
        assert_int_equal(sqlite3_column_int(q, 2), 32);
        assert_string_equal((const char *)sqlite3_column_text(q, 3), "old");
        assert_int_equal(sqlite3_column_int(q, 4), 2);
        sqlite3_finalize(q);
    }
    assert_int_equal(fv_get(f->db, "customer", c, &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "since", "2019-04-01"), FV_OK);
    assert_int_equal(fv_update(f->db, r), FV_OK);
    fv_record_free(r);
    assert_int_equal(fv_record_new(f->db, "complaint", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "customer_id", c), FV_OK);
    assert_int_equal(fv_record_set_text(r, "summary", "late"), FV_OK);
    assert_int_equal(fv_record_set_text(r, "received_at", "2026-03-01T10:00:00Z"), FV_OK);
    assert_int_equal(fv_insert(f->db, r), FV_OK);
    const char *due = NULL;
    assert_int_equal(fv_record_get_text(r, "ack_due", &due), FV_OK);
    assert_string_equal(due, "2026-03-01T11:00:00Z");
    fv_record_free(r);
    free(c);
    /* A store from a newer library is refused, not misread. */
    assert_int_equal(fv__exec(f->db, "PRAGMA user_version = 99"), FV_OK);
    assert_int_equal(fv_close(f->db), FV_OK);
    f->db = NULL;
    assert_int_equal(open_store(f->path, PASS, 0, &f->db), FV_EINVAL);
    assert_non_null(strstr(fv_errmsg(f->db), "newer"));
    fv_close(f->db);
    f->db = NULL;
    /* put it back so teardown can close a handle */
    assert_int_equal(open_store(f->path, PASS, FV_OPEN_CREATE, &f->db), FV_EINVAL);
    fv_close(f->db);
    f->db = NULL;
}

static void test_wrong_passphrase_and_change(void **state)
{
    fixture *f = *state;
    char *c = add_customer(f->db, "Keyed", NULL, NULL);
    assert_int_equal(fv_change_passphrase(f->db, "new secret", 10), FV_OK);
    assert_int_equal(fv_change_passphrase(f->db, "", 0), FV_EINVAL);
    assert_int_equal(fv_close(f->db), FV_OK);
    f->db = NULL;
    fv_db *db = NULL;
    assert_int_equal(open_store(f->path, PASS, 0, &db), FV_EKEY);
    assert_non_null(strstr(fv_errmsg(db), "wrong passphrase"));
    fv_close(db);
    assert_int_equal(open_store(f->path, "new secret", 0, &f->db), FV_OK);
    fv_record *r;
    assert_int_equal(fv_get(f->db, "customer", c, &r), FV_OK);
    fv_record_free(r);
    free(c);
    /* a second open of the same store is refused while the first is open */
    assert_int_equal(open_store(f->path, "new secret", 0, &db), FV_EBUSY);
    fv_close(db);
}

static void test_rekey(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 300; i++) free(add_customer(f->db, "rekey me", "A", "intent"));
    assert_int_equal(fv_rekey(f->db), FV_OK);
    assert_int_equal(f->db->keys->nkeys, 1);
    assert_int_equal(f->db->keys->write_epoch, 2);
    int old = -1;
    assert_int_equal(sqlite3_file_control(f->db->sql, "main", FV_FCNTL_COUNT_OLD_EPOCH, &old),
                     SQLITE_OK);
    assert_int_equal(old, 0);
    assert_int_equal(fv_check(f->db), FV_OK);
    reopen(f);
    fv_list *l;
    assert_int_equal(fv_list_customers(f->db, NULL, &l), FV_OK);
    assert_int_equal(count_list(l), 300);
    assert_int_equal(fv_rekey(f->db), FV_OK);
    assert_int_equal(f->db->keys->write_epoch, 3);
}

/* A key-store hook: wraps with a secretbox key held by the "platform". */
static unsigned char ks_key[crypto_secretbox_KEYBYTES];
static int ks_calls;
static int ks_wrap(void *ctx, const unsigned char key[32], unsigned char *out, size_t *out_len)
{
    (void)ctx;
    ks_calls++;
    randombytes_buf(out, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES, key, 32, out, ks_key);
    *out_len = crypto_secretbox_NONCEBYTES + 32 + crypto_secretbox_MACBYTES;
    return 0;
}
static int ks_unwrap(void *ctx, const unsigned char *in, size_t in_len, unsigned char key[32])
{
    (void)ctx;
    ks_calls++;
    if (in_len != crypto_secretbox_NONCEBYTES + 32 + crypto_secretbox_MACBYTES) return -1;
    return crypto_secretbox_open_easy(key, in + crypto_secretbox_NONCEBYTES,
                                      in_len - crypto_secretbox_NONCEBYTES, in, ks_key);
}

static void test_keystore_hook(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("ks");
    char *path = tu_path(dir, "k.fv");
    crypto_secretbox_keygen(ks_key);
    fv_keystore ks = {sizeof ks, NULL, ks_wrap, ks_unwrap};
    fv_open_config cfg = {0};
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.keystore = &ks;
    cfg.flags = FV_OPEN_CREATE;
    fv_db *db;
    assert_int_equal(fv_open(&db, &cfg), FV_OK);
    char *c = add_customer(db, "KS", NULL, NULL);
    assert_int_equal(fv_change_passphrase(db, "x", 1), FV_EMISUSE);
    assert_int_equal(fv_rekey(db), FV_OK);
    assert_int_equal(fv_close(db), FV_OK);
    cfg.flags = 0;
    ks_calls = 0;
    assert_int_equal(fv_open(&db, &cfg), FV_OK);
    assert_true(ks_calls >= 1);
    fv_record *r;
    assert_int_equal(fv_get(db, "customer", c, &r), FV_OK);
    fv_record_free(r);
    assert_int_equal(fv_close(db), FV_OK);
    /* another platform key: FV_EKEY; a passphrase on a key-store store: FV_EKEY */
    crypto_secretbox_keygen(ks_key);
    assert_int_equal(fv_open(&db, &cfg), FV_EKEY);
    fv_close(db);
    assert_int_equal(open_store(path, PASS, 0, &db), FV_EKEY);
    fv_close(db);
    free(c);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

static void test_bad_open_args(void **state)
{
    (void)state;
    fv_db *db;
    assert_int_equal(fv_open(NULL, NULL), FV_EMISUSE);
    assert_int_equal(fv_open(&db, NULL), FV_EINVAL);
    fv_close(db);
    fv_open_config cfg = {0};
    cfg.size = sizeof cfg;
    cfg.path = "/nonexistent-dir/x.fv";
    cfg.passphrase = "p";
    cfg.passphrase_len = 1;
    assert_int_equal(fv_open(&db, &cfg), FV_ENOTFOUND);
    fv_close(db);
    cfg.passphrase_len = FV_PASSPHRASE_MAX + 1;
    assert_int_equal(fv_open(&db, &cfg), FV_EINVAL);
    fv_close(db);
    /* a plain SQLite file is not a store */
    char *dir = tu_mkdtemp("plain");
    char *p = tu_path(dir, "plain.db");
    sqlite3 *s;
    assert_int_equal(sqlite3_open(p, &s), SQLITE_OK);
    assert_int_equal(sqlite3_exec(s, "CREATE TABLE t(x); INSERT INTO t VALUES(randomblob(9000));",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(s);
    cfg.path = p;
    cfg.passphrase_len = 1;
    assert_int_equal(fv_open(&db, &cfg), FV_ECORRUPT);
    assert_non_null(strstr(fv_errmsg(db), "plain SQLite database"));
    fv_close(db);
    tu_rmtree(dir);
    free(p);
    free(dir);
    assert_string_equal(fv_errmsg(NULL), "out of memory");
    assert_string_equal(fv_status_str(FV_EKEY), "wrong passphrase or key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_normalised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists_and_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_time_ordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_catalogue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_passphrase_and_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey, setup, teardown),
        cmocka_unit_test(test_keystore_hook),
        cmocka_unit_test(test_bad_open_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
