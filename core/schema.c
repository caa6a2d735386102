/*
 * schema.c - the schema catalogue (tables, fields, field classes) and the
 * forward migrations of the store's schema.
 *
 * The catalogue is data: table fv_fields lists every field with its class
 * (public, pii, confidential), type, bounds and enum values.  Migration 1
 * writes the shipped catalogue of DESIGN.md and creates one table per
 * catalogue table from it; apps add fields at run time with
 * fv_schema_add_field().  The schema version is SQLite's user_version, and
 * every migration runs in one transaction with its version bump, so a crash
 * leaves the store at the old or the new version, never between.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedup.h"

#define FV_SCHEMA_VERSION 7

typedef struct shipped_field {
    const char *table, *name;
    fv_field_class cls;
    fv_field_type type;
    int required;
    size_t max_len;
    const char *enums;
    const char *ref;
} shipped_field;

#define SHORT 256
#define LONG FV_FIELD_MAX
#define PUB FV_CLASS_PUBLIC
#define PII FV_CLASS_PII
#define CONF FV_CLASS_CONFIDENTIAL

static const shipped_field shipped[] = {
    {"customer", "name", PUB, FV_TYPE_TEXT, 1, SHORT, NULL, NULL},
    {"customer", "industry", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"customer", "size", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"customer", "region", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"customer", "source", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"customer", "grade", PUB, FV_TYPE_ENUM, 0, 1, "S|A|B", NULL},
    {"customer", "stage", PUB, FV_TYPE_ENUM, 0, 16,
     "lead|intent|negotiation|won|service|lost", NULL},
    {"customer", "intent", PUB, FV_TYPE_ENUM, 0, 8, "high|mid|low", NULL},
    {"customer", "status", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"customer", "owner", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"customer", "team", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"customer", "needs", PUB, FV_TYPE_TEXT, 0, LONG, NULL, NULL},
    {"customer", "urgency", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"customer", "next_due", PUB, FV_TYPE_DATE, 0, 10, NULL, NULL},
    {"customer", "budget", CONF, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"customer", "decision_chain", CONF, FV_TYPE_TEXT, 0, LONG, NULL, NULL},
    {"contact", "customer_id", PUB, FV_TYPE_REF, 1, FV_ID_LEN, NULL, "customer"},
    {"contact", "name", PUB, FV_TYPE_TEXT, 1, SHORT, NULL, NULL},
    {"contact", "title", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"contact", "phone", PII, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"contact", "email", PII, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"contact", "im_handle", PII, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"visit", "customer_id", PUB, FV_TYPE_REF, 1, FV_ID_LEN, NULL, "customer"},
    {"visit", "at", PUB, FV_TYPE_TIME, 0, 20, NULL, NULL},
    {"visit", "method", PUB, FV_TYPE_ENUM, 1, 8, "visit|phone|email|video|other", NULL},
    {"visit", "participants", PUB, FV_TYPE_TEXT, 0, LONG, NULL, NULL},
    {"visit", "summary", PUB, FV_TYPE_TEXT, 0, LONG, NULL, NULL},
    {"visit", "feedback", PUB, FV_TYPE_TEXT, 0, LONG, NULL, NULL},
    {"visit", "agreement", PUB, FV_TYPE_TEXT, 0, LONG, NULL, NULL},
    {"visit", "next_action", PUB, FV_TYPE_TEXT, 0, LONG, NULL, NULL},
    {"visit", "next_action_owner", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"visit", "next_action_due", PUB, FV_TYPE_DATE, 0, 10, NULL, NULL},
    {"visit", "lat", PUB, FV_TYPE_REAL, 0, 0, NULL, NULL},
    {"visit", "lon", PUB, FV_TYPE_REAL, 0, 0, NULL, NULL},
    /* Schema version 6 (issue 9; migrate_6 adds them to older stores).
     * Grade review: a proposal and the decision on it are fields of their
     * own, each written once by one write, so last-writer-wins merges them
     * whole; grade_decision_for names the proposal (its
     * grade_proposal_id) a decision answers. */
    {"customer", "since", PUB, FV_TYPE_DATE, 0, 10, NULL, NULL},
    {"customer", "grade_proposed", PUB, FV_TYPE_ENUM, 0, 1, "S|A|B", NULL},
    {"customer", "grade_proposed_by", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"customer", "grade_proposed_at", PUB, FV_TYPE_TIME, 0, 20, NULL, NULL},
    {"customer", "grade_proposal_id", PUB, FV_TYPE_TEXT, 0, FV_ID_LEN, NULL, NULL},
    {"customer", "grade_decision", PUB, FV_TYPE_ENUM, 0, 8, "approved|rejected", NULL},
    {"customer", "grade_decided_by", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"customer", "grade_decided_at", PUB, FV_TYPE_TIME, 0, 20, NULL, NULL},
    {"customer", "grade_decision_for", PUB, FV_TYPE_TEXT, 0, FV_ID_LEN, NULL, NULL},
    /* a contact's birthday, MM-DD (checked by the setter: workflows.c) */
    {"contact", "birthday", PII, FV_TYPE_TEXT, 0, 5, NULL, NULL},
    /* Complaints: each transition stamps fields of its own; the status is
     * derived from the furthest one stamped, so it only moves forward.
     * The deadlines are computed when the complaint is registered, from
     * the registering store's policy, and travel with it. */
    {"complaint", "customer_id", PUB, FV_TYPE_REF, 1, FV_ID_LEN, NULL, "customer"},
    {"complaint", "summary", PUB, FV_TYPE_TEXT, 1, LONG, NULL, NULL},
    {"complaint", "channel", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"complaint", "urgency", PUB, FV_TYPE_ENUM, 1, 8, "normal|urgent|critical", NULL},
    {"complaint", "received_at", PUB, FV_TYPE_TIME, 1, 20, NULL, NULL},
    {"complaint", "ack_due", PUB, FV_TYPE_TIME, 0, 20, NULL, NULL},
    {"complaint", "respond_due", PUB, FV_TYPE_TIME, 0, 20, NULL, NULL},
    {"complaint", "resolve_due", PUB, FV_TYPE_TIME, 0, 20, NULL, NULL},
    {"complaint", "acked_at", PUB, FV_TYPE_TIME, 0, 20, NULL, NULL},
    {"complaint", "acked_by", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"complaint", "ack_note", PUB, FV_TYPE_TEXT, 0, LONG, NULL, NULL},
    {"complaint", "responded_at", PUB, FV_TYPE_TIME, 0, 20, NULL, NULL},
    {"complaint", "responded_by", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"complaint", "respond_note", PUB, FV_TYPE_TEXT, 0, LONG, NULL, NULL},
    {"complaint", "resolved_at", PUB, FV_TYPE_TIME, 0, 20, NULL, NULL},
    {"complaint", "resolved_by", PUB, FV_TYPE_TEXT, 0, SHORT, NULL, NULL},
    {"complaint", "resolve_note", PUB, FV_TYPE_TEXT, 0, LONG, NULL, NULL},
    /* Schema version 7 (issue 9; migrate_7 adds them to older stores).  A
     * customer merged into another is deleted and names the survivor. */
    {"customer", "merged_into", PUB, FV_TYPE_REF, 0, FV_ID_LEN, NULL, "customer"},
    /* The read audit (core/audit.c): one entry per confidential value
     * handed to a caller, hash-chained per device; public, so any role
     * that sees the customer read sees who read it (never the value). */
    {"audit", "customer_id", PUB, FV_TYPE_REF, 0, FV_ID_LEN, NULL, "customer"},
    {"audit", "user", PUB, FV_TYPE_TEXT, 1, SHORT, NULL, NULL},
    {"audit", "tbl", PUB, FV_TYPE_TEXT, 1, FV_NAME_MAX, NULL, NULL},
    {"audit", "row_id", PUB, FV_TYPE_TEXT, 1, FV_ID_LEN, NULL, NULL},
    {"audit", "field", PUB, FV_TYPE_TEXT, 1, FV_NAME_MAX, NULL, NULL},
    {"audit", "at_ms", PUB, FV_TYPE_REAL, 0, 0, NULL, NULL},
    {"audit", "device", PUB, FV_TYPE_TEXT, 1, 32, NULL, NULL},
    {"audit", "seq", PUB, FV_TYPE_REAL, 0, 0, NULL, NULL},
    {"audit", "prev_id", PUB, FV_TYPE_TEXT, 0, FV_ID_LEN, NULL, NULL},
    {"audit", "prev_hash", PUB, FV_TYPE_TEXT, 1, 64, NULL, NULL},
    {"audit", "hash", PUB, FV_TYPE_TEXT, 1, 64, NULL, NULL},
};

static const char *const shipped_tables[] = {"customer", "contact", "visit", "complaint",
                                             "audit"};

int fv__shipped_field(const char *table, const char *field, fv__field *out)
{
    for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
        if (strcmp(shipped[i].table, table) != 0 || strcmp(shipped[i].name, field) != 0) continue;
        if (out != NULL) {
            memset(out, 0, sizeof *out);
            snprintf(out->name, sizeof out->name, "%s", shipped[i].name);
            out->cls = shipped[i].cls;
            out->type = shipped[i].type;
            out->required = shipped[i].required;
            out->max_len = shipped[i].max_len;
            out->enum_values = (char *)shipped[i].enums; /* static: never freed */
            if (shipped[i].ref) snprintf(out->ref_table, sizeof out->ref_table, "%s", shipped[i].ref);
        }
        return 1;
    }
    return 0;
}

int fv__shipped_table(const char *table)
{
    for (size_t t = 0; t < sizeof shipped_tables / sizeof *shipped_tables; t++)
        if (strcmp(shipped_tables[t], table) == 0) return 1;
    return 0;
}

int fv_schema_version(void)
{
    return FV_SCHEMA_VERSION;
}

/* ---- migrations ---- */

static fv_status create_table(fv_db *db, const char *table)
{
    char sql[4096];
    int n = snprintf(sql, sizeof sql,
                     "CREATE TABLE \"%s\"(id BLOB PRIMARY KEY NOT NULL, "
                     "deleted INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, "
                     "updated_ms INTEGER NOT NULL",
                     table);
    for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
        if (strcmp(shipped[i].table, table) != 0) continue;
        const char *type = shipped[i].type == FV_TYPE_REAL  ? " REAL"
                           : shipped[i].type == FV_TYPE_REF ? " BLOB"
                                                            : " TEXT";
        n += snprintf(sql + n, sizeof sql - (size_t)n, ", \"%s\"%s", shipped[i].name, type);
    }
    snprintf(sql + n, sizeof sql - (size_t)n, ") WITHOUT ROWID");
    return fv__exec(db, sql);
}

static fv_status migrate_1(fv_db *db)
{
    fv_status st = fv__exec(db,
        "CREATE TABLE fv_meta(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;"
        "CREATE TABLE fv_fields(tbl TEXT NOT NULL, name TEXT NOT NULL, ord INTEGER NOT NULL,"
        " cls INTEGER NOT NULL, type INTEGER NOT NULL, required INTEGER NOT NULL,"
        " max_len INTEGER NOT NULL, enum_values TEXT, ref_table TEXT,"
        " PRIMARY KEY(tbl, name)) WITHOUT ROWID;");
    for (size_t t = 0; st == FV_OK && t < sizeof shipped_tables / sizeof *shipped_tables; t++)
        st = create_table(db, shipped_tables[t]);
    for (size_t i = 0; st == FV_OK && i < sizeof shipped / sizeof shipped[0]; i++) {
        sqlite3_stmt *s = fv__stmt(db,
            "INSERT INTO fv_fields(tbl,name,ord,cls,type,required,max_len,enum_values,ref_table)"
            " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)");
        if (s == NULL) return db->err;
        const shipped_field *f = &shipped[i];
        sqlite3_bind_text(s, 1, f->table, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, f->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
        sqlite3_bind_int(s, 4, (int)f->cls);
        sqlite3_bind_int(s, 5, (int)f->type);
        sqlite3_bind_int(s, 6, f->required);
        sqlite3_bind_int64(s, 7, (sqlite3_int64)f->max_len);
        if (f->enums) sqlite3_bind_text(s, 8, f->enums, -1, SQLITE_STATIC);
        if (f->ref) sqlite3_bind_text(s, 9, f->ref, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "writing the schema catalogue");
    }
    return st;
}

/* Version 2: indexes for the list and due queries. */
static fv_status migrate_2(fv_db *db)
{
    return fv__exec(db,
        "CREATE INDEX customer_by_stage ON customer(stage, name) WHERE deleted = 0;"
        "CREATE INDEX customer_by_grade ON customer(grade, name) WHERE deleted = 0;"
        "CREATE INDEX customer_by_owner ON customer(owner, name) WHERE deleted = 0;"
        "CREATE INDEX visit_by_customer ON visit(customer_id, at);"
        "CREATE INDEX visit_by_time ON visit(at);"
        "CREATE INDEX contact_by_customer ON contact(customer_id, name);");
}

/* Version 3: sync.  The device id, per-field versions, the outbox and the
 * conflict log; rows written before are captured as if written now (their
 * updated time as the clock), so they sync too. */
static fv_status migrate_3(fv_db *db)
{
    fv_status st = fv__exec(db,
        "INSERT INTO fv_meta(key, value) VALUES('device_id', randomblob(16));"
        "CREATE TABLE fv_versions(tbl TEXT NOT NULL, row_id BLOB NOT NULL, field TEXT NOT NULL,"
        " hlc INTEGER NOT NULL, device BLOB NOT NULL, base_hlc INTEGER NOT NULL,"
        " PRIMARY KEY(tbl, row_id, field)) WITHOUT ROWID;"
        "CREATE TABLE fv_outbox(seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, row_id BLOB NOT NULL,"
        " field TEXT NOT NULL, value, hlc INTEGER NOT NULL, base_hlc INTEGER NOT NULL);"
        "CREATE TABLE fv_conflicts(id BLOB PRIMARY KEY NOT NULL, tbl TEXT NOT NULL,"
        " row_id BLOB NOT NULL, field TEXT NOT NULL,"
        " mine_value, mine_hlc INTEGER NOT NULL, mine_device BLOB NOT NULL,"
        " theirs_value, theirs_hlc INTEGER NOT NULL, theirs_device BLOB NOT NULL,"
        " winner_is_mine INTEGER NOT NULL, detected_ms INTEGER NOT NULL, resolved_ms INTEGER)"
        " WITHOUT ROWID;"
        "CREATE INDEX fv_conflicts_by_field ON fv_conflicts(tbl, row_id, field);");
    sqlite3_stmt *s = fv__stmt(db, "SELECT tbl, name FROM fv_fields ORDER BY tbl, ord");
    if (s == NULL) return db->err;
    char tbls[FV_TABLES_MAX][FV_NAME_MAX + 1];
    size_t ntbl = 0;
    int rc;
    while (st == FV_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        const char *f = (const char *)sqlite3_column_text(s, 1);
        if (t == NULL || f == NULL || !fv__name_valid(t) || !fv__name_valid(f)) {
            st = fv__err(db, FV_ECORRUPT, "the schema catalogue has an invalid name");
            break;
        }
        if (ntbl == 0 || strcmp(tbls[ntbl - 1], t) != 0) {
            if (ntbl == FV_TABLES_MAX) break;
            snprintf(tbls[ntbl++], FV_NAME_MAX + 1, "%s", t);
        }
        char sql[2048];
        snprintf(sql, sizeof sql,
                 "INSERT INTO fv_versions SELECT '%s', id, '%s', updated_ms << 16,"
                 " (SELECT value FROM fv_meta WHERE key = 'device_id'), 0"
                 " FROM \"%s\" WHERE \"%s\" IS NOT NULL;"
                 "INSERT INTO fv_outbox(tbl, row_id, field, value, hlc, base_hlc)"
                 " SELECT '%s', id, '%s', \"%s\", updated_ms << 16, 0"
                 " FROM \"%s\" WHERE \"%s\" IS NOT NULL ORDER BY id;",
                 t, f, t, f, t, f, f, t, f);
        st = fv__exec(db, sql);
    }
    sqlite3_reset(s);
    for (size_t i = 0; st == FV_OK && i < ntbl; i++) {
        char sql[2048];
        snprintf(sql, sizeof sql,
                 "INSERT INTO fv_versions SELECT '%.64s', id, '_deleted', updated_ms << 16,"
                 " (SELECT value FROM fv_meta WHERE key = 'device_id'), 0"
                 " FROM \"%.64s\" WHERE deleted = 1;"
                 "INSERT INTO fv_outbox(tbl, row_id, field, value, hlc, base_hlc)"
                 " SELECT '%.64s', id, '_deleted', 1.0, updated_ms << 16, 0"
                 " FROM \"%.64s\" WHERE deleted = 1 ORDER BY id;",
                 tbls[i], tbls[i], tbls[i], tbls[i]);
        st = fv__exec(db, sql);
    }
    return st;
}

/* Version 4: field keys and history.  fv_field_keys holds the team field
 * keys granted to this device (opened from their grants; the store itself
 * is encrypted at rest), fv_key_grants_seq in fv_meta is the grant cursor.
 * fv_history keeps the transitions of the fields reports follow (a
 * customer's stage and grade): old and new value, the change's clock and
 * writing device, for local writes and for pulled changes that win. */
static fv_status migrate_4(fv_db *db)
{
    return fv__exec(db,
        "CREATE TABLE fv_field_keys(key_id BLOB PRIMARY KEY NOT NULL, team TEXT NOT NULL,"
        " cls INTEGER NOT NULL, version INTEGER NOT NULL, key BLOB NOT NULL,"
        " grant_seq INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE INDEX fv_field_keys_by_team ON fv_field_keys(team, cls, version);"
        "CREATE TABLE fv_history(seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL,"
        " row_id BLOB NOT NULL, field TEXT NOT NULL, old_value, new_value,"
        " hlc INTEGER NOT NULL, device BLOB NOT NULL);"
        "CREATE INDEX fv_history_by_field ON fv_history(tbl, field, hlc);");
}

/* Version 5: fill fv_history.  Triggers on fv_versions record a transition
 * of customer.stage or customer.grade whenever a new version of it is
 * stored: a local write (records.c writes the row, then captures the
 * version) or a pulled or imported change that wins the merge (changes.c
 * writes the value, then the version; a change that loses never reaches
 * fv_versions).  So when a trigger runs, the row already holds the new
 * value; old_value is the previous entry's new_value for that row and
 * field (entries of one field are stored in clock order, since only a
 * later version wins).  A write that leaves the value as it was adds no
 * entry.  Rows written before this version get one entry each (no old
 * value) at the clock of their current version. */
#define HISTORY_TRIGGER(name, event)                                                         \
    "CREATE TRIGGER " name " AFTER " event " ON fv_versions"                                 \
    " WHEN NEW.tbl = 'customer' AND NEW.field IN ('stage', 'grade') BEGIN"                   \
    " INSERT INTO fv_history(tbl, row_id, field, old_value, new_value, hlc, device)"        \
    " SELECT 'customer', NEW.row_id, NEW.field, o.v, n.v, NEW.hlc, NEW.device"               \
    " FROM (SELECT (SELECT h.new_value FROM fv_history h WHERE h.tbl = 'customer'"           \
    " AND h.row_id = NEW.row_id AND h.field = NEW.field ORDER BY h.seq DESC LIMIT 1) AS v) o," \
    " (SELECT CASE NEW.field WHEN 'stage' THEN c.stage ELSE c.grade END AS v"                \
    " FROM customer c WHERE c.id = NEW.row_id) n"                                           \
    " WHERE o.v IS NOT n.v; END;"

static fv_status migrate_5(fv_db *db)
{
    return fv__exec(db,
        "CREATE INDEX fv_history_by_row ON fv_history(tbl, row_id, field);"
        "INSERT INTO fv_history(tbl, row_id, field, old_value, new_value, hlc, device)"
        " SELECT 'customer', v.row_id, v.field, NULL,"
        " CASE v.field WHEN 'stage' THEN c.stage ELSE c.grade END, v.hlc, v.device"
        " FROM fv_versions v JOIN customer c ON c.id = v.row_id"
        " WHERE v.tbl = 'customer' AND v.field IN ('stage', 'grade')"
        " AND (CASE v.field WHEN 'stage' THEN c.stage ELSE c.grade END) IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM fv_history h WHERE h.tbl = 'customer'"
        " AND h.row_id = v.row_id AND h.field = v.field)"
        " ORDER BY v.hlc, v.row_id, v.field;"
        HISTORY_TRIGGER("fv_history_on_insert", "INSERT")
        HISTORY_TRIGGER("fv_history_on_update", "UPDATE"));
}

/* Give the store shipped field i if it lacks it: the column (creating the
 * table, with the columns every table has, when the store has none) and
 * the catalogue row, ordered as migration 1 orders it so that a migrated
 * store's catalogue is a new store's.  A field already there (a store
 * created at a later version got every shipped field from migration 1; an
 * app may have added one of the name) is left as it is. */
static fv_status add_shipped_field(fv_db *db, size_t i)
{
    const shipped_field *f = &shipped[i];
    char sql[512];
    sqlite3_stmt *s = fv__stmt(db, "SELECT (SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                                   " AND name = ?1), (SELECT count(*) FROM pragma_table_info(?1)"
                                   " WHERE name = ?2)");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, f->table, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, f->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int has_table = rc == SQLITE_ROW && sqlite3_column_int(s, 0) > 0;
    int has_column = rc == SQLITE_ROW && sqlite3_column_int(s, 1) > 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return fv__sqlerr(db, rc, "reading the schema");
    fv_status st = FV_OK;
    if (!has_table) {
        snprintf(sql, sizeof sql,
                 "CREATE TABLE \"%s\"(id BLOB PRIMARY KEY NOT NULL, deleted INTEGER NOT NULL"
                 " DEFAULT 0, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)"
                 " WITHOUT ROWID", f->table);
        st = fv__exec(db, sql);
    }
    if (st == FV_OK && !has_column) {
        snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" ADD COLUMN \"%s\"%s", f->table, f->name,
                 f->type == FV_TYPE_REAL ? " REAL" : f->type == FV_TYPE_REF ? " BLOB" : " TEXT");
        st = fv__exec(db, sql);
    }
    if (st != FV_OK) return st;
    s = fv__stmt(db, "INSERT OR IGNORE INTO fv_fields(tbl,name,ord,cls,type,required,max_len,"
                     "enum_values,ref_table) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, f->table, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, f->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
    sqlite3_bind_int(s, 4, (int)f->cls);
    sqlite3_bind_int(s, 5, (int)f->type);
    sqlite3_bind_int(s, 6, f->required);
    sqlite3_bind_int64(s, 7, (sqlite3_int64)f->max_len);
    if (f->enums) sqlite3_bind_text(s, 8, f->enums, -1, SQLITE_STATIC);
    if (f->ref) sqlite3_bind_text(s, 9, f->ref, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "writing the schema catalogue");
}

/* Version 6: grade review, complaints, important dates (issue 9).  The
 * customer fields of a grade proposal and of the decision on it, the
 * cooperation start (customer.since), a contact's birthday, the complaint
 * table, and the default complaint deadlines (fv_meta
 * 'complaint_deadlines': seconds to acknowledge, respond, resolve;
 * fv_complaint_deadlines_set changes them). */
static fv_status migrate_6(fv_db *db)
{
    static const char *const added[] = {
        "customer.since", "customer.grade_proposed", "customer.grade_proposed_by",
        "customer.grade_proposed_at", "customer.grade_proposal_id", "customer.grade_decision",
        "customer.grade_decided_by", "customer.grade_decided_at", "customer.grade_decision_for",
        "contact.birthday", "complaint.*"};
    fv_status st = FV_OK;
    for (size_t i = 0; st == FV_OK && i < sizeof shipped / sizeof shipped[0]; i++) {
        char name[2 * FV_NAME_MAX + 2], all[FV_NAME_MAX + 3];
        snprintf(name, sizeof name, "%s.%s", shipped[i].table, shipped[i].name);
        snprintf(all, sizeof all, "%s.*", shipped[i].table);
        for (size_t k = 0; k < sizeof added / sizeof added[0]; k++)
            if (strcmp(added[k], name) == 0 || strcmp(added[k], all) == 0) {
                st = add_shipped_field(db, i);
                break;
            }
    }
    if (st != FV_OK) return st;
    char sql[256];
    snprintf(sql, sizeof sql,
             "CREATE INDEX IF NOT EXISTS complaint_by_customer"
             " ON complaint(customer_id, received_at);"
             "INSERT OR IGNORE INTO fv_meta(key, value)"
             " VALUES('complaint_deadlines', '%lld %lld %lld');",
             (long long)FV_COMPLAINT_ACK_S, (long long)FV_COMPLAINT_RESPOND_S,
             (long long)FV_COMPLAINT_RESOLVE_S);
    return fv__exec(db, sql);
}

/* A column of the store's own beside a table's fields (not in the
 * catalogue: never synced), unless it is there. */
static fv_status add_internal_column(fv_db *db, const char *table, const char *column,
                                     const char *type)
{
    sqlite3_stmt *s = fv__stmt(db, "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, column, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int has = rc == SQLITE_ROW && sqlite3_column_int(s, 0) > 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return fv__sqlerr(db, rc, "reading the schema");
    if (has) return FV_OK;
    char sql[256];
    snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" ADD COLUMN \"%s\" %s", table, column, type);
    return fv__exec(db, sql);
}

/* Version 7: duplicates, customer merge, the read audit (issue 9).
 * Catalogue: customer.merged_into and the audit table.  The store's own
 * columns for duplicate detection (core/dedup.h: customer.name_key,
 * contact.phone_bidx and email_bidx, each indexed), the blind-index key of
 * a store that holds no team key (fv_meta 'blind_key', random), an index
 * of merged customers (what every apply looks for, custmerge.c) and of
 * each device's audit chain; then the keys of the rows already here. */
static fv_status migrate_7(fv_db *db)
{
    fv_status st = FV_OK;
    for (size_t i = 0; st == FV_OK && i < sizeof shipped / sizeof shipped[0]; i++)
        if (strcmp(shipped[i].table, "audit") == 0 ||
            (strcmp(shipped[i].table, "customer") == 0 && strcmp(shipped[i].name, "merged_into") == 0))
            st = add_shipped_field(db, i);
    if (st == FV_OK) st = add_internal_column(db, "customer", "name_key", "TEXT");
    if (st == FV_OK) st = add_internal_column(db, "contact", "phone_bidx", "BLOB");
    if (st == FV_OK) st = add_internal_column(db, "contact", "email_bidx", "BLOB");
    if (st == FV_OK)
        st = fv__exec(db,
            "CREATE INDEX IF NOT EXISTS customer_by_name_key ON customer(name_key)"
            " WHERE name_key IS NOT NULL;"
            "CREATE INDEX IF NOT EXISTS contact_by_phone_bidx ON contact(phone_bidx)"
            " WHERE phone_bidx IS NOT NULL;"
            "CREATE INDEX IF NOT EXISTS contact_by_email_bidx ON contact(email_bidx)"
            " WHERE email_bidx IS NOT NULL;"
            "CREATE INDEX IF NOT EXISTS customer_merged ON customer(merged_into)"
            " WHERE merged_into IS NOT NULL;"
            "CREATE INDEX IF NOT EXISTS audit_by_device ON audit(device, seq);"
            "INSERT OR IGNORE INTO fv_meta(key, value) VALUES('blind_key', randomblob(32));");
    if (st == FV_OK) st = fv__dedup_reindex_all(db);
    return st;
}

typedef fv_status (*migration_fn)(fv_db *);
static const migration_fn migrations[FV_SCHEMA_VERSION] = {migrate_1, migrate_2, migrate_3,
                                                           migrate_4, migrate_5, migrate_6,
                                                           migrate_7};

static fv_status read_version(fv_db *db, int *version)
{
    sqlite3_stmt *s = fv__stmt(db, "PRAGMA user_version");
    if (s == NULL) return db->err;
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) return fv__sqlerr(db, rc, "reading the schema version");
    *version = sqlite3_column_int(s, 0);
    sqlite3_reset(s);
    return FV_OK;
}

fv_status fv__schema_migrate(fv_db *db, int target)
{
    int version = 0;
    fv_status st = read_version(db, &version);
    if (st != FV_OK) return st;
    if (version > FV_SCHEMA_VERSION)
        return fv__err(db, FV_EINVAL,
                       "%s has schema version %d, newer than this library's %d: upgrade fieldvault",
                       db->path, version, FV_SCHEMA_VERSION);
    if (target > FV_SCHEMA_VERSION) target = FV_SCHEMA_VERSION;
    while (st == FV_OK && version < target) {
        int opened = 0;
        st = fv__tx_begin(db, &opened);
        if (st != FV_OK) break;
        st = migrations[version](db);
        if (st == FV_OK) {
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
            st = fv__exec(db, sql);
        }
        st = fv__tx_end(db, opened, st);
        if (st == FV_OK) version++;
    }
    return st;
}

/* ---- the in-memory catalogue ---- */

void fv__schema_free(fv__catalogue *cat)
{
    for (size_t t = 0; t < cat->ntables; t++)
        for (size_t f = 0; f < cat->tables[t].nfields; f++) free(cat->tables[t].fields[f].enum_values);
    memset(cat, 0, sizeof *cat);
}

static void copy_name(char dst[FV_NAME_MAX + 1], const unsigned char *src)
{
    snprintf(dst, FV_NAME_MAX + 1, "%s", src ? (const char *)src : "");
}

fv_status fv__schema_load(fv_db *db)
{
    fv__schema_free(&db->cat);
    sqlite3_stmt *s = fv__stmt(db,
        "SELECT tbl, name, cls, type, required, max_len, enum_values, ref_table"
        " FROM fv_fields ORDER BY tbl, ord");
    if (s == NULL) return db->err;
    int rc;
    fv__catalogue *cat = &db->cat;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *tname = (const char *)sqlite3_column_text(s, 0);
        fv__table *t = NULL;
        for (size_t i = 0; i < cat->ntables; i++)
            if (strcmp(cat->tables[i].name, tname) == 0) t = &cat->tables[i];
        if (t == NULL) {
            if (cat->ntables == FV_TABLES_MAX) break;
            t = &cat->tables[cat->ntables++];
            copy_name(t->name, sqlite3_column_text(s, 0));
        }
        if (t->nfields == FV_RECORD_FIELDS_MAX) continue;
        fv__field *f = &t->fields[t->nfields++];
        copy_name(f->name, sqlite3_column_text(s, 1));
        f->cls = (fv_field_class)sqlite3_column_int(s, 2);
        f->type = (fv_field_type)sqlite3_column_int(s, 3);
        f->required = sqlite3_column_int(s, 4);
        f->max_len = (size_t)sqlite3_column_int64(s, 5);
        copy_name(f->ref_table, sqlite3_column_text(s, 7));
        if (sqlite3_column_type(s, 6) != SQLITE_NULL) {
            f->enum_values = fv__strdup((const char *)sqlite3_column_text(s, 6));
            if (f->enum_values == NULL) {
                sqlite3_reset(s);
                return fv__err(db, FV_ENOMEM, "out of memory loading the catalogue");
            }
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fv__sqlerr(db, rc, "loading the catalogue");
    return FV_OK;
}

const fv__table *fv__schema_table(const fv_db *db, const char *name)
{
    if (name == NULL) return NULL;
    for (size_t i = 0; i < db->cat.ntables; i++)
        if (strcmp(db->cat.tables[i].name, name) == 0) return &db->cat.tables[i];
    return NULL;
}

const fv__field *fv__schema_field(const fv__table *t, const char *name, size_t *index)
{
    if (t == NULL || name == NULL) return NULL;
    for (size_t i = 0; i < t->nfields; i++)
        if (strcmp(t->fields[i].name, name) == 0) {
            if (index) *index = i;
            return &t->fields[i];
        }
    return NULL;
}

fv_status fv_schema_field_class(fv_db *db, const char *table, const char *field,
                                fv_field_class *cls)
{
    if (db == NULL || cls == NULL) return FV_EMISUSE;
    fv__reset(db);
    const fv__field *f = fv__schema_field(fv__schema_table(db, table), field, NULL);
    if (f == NULL)
        return fv__err(db, FV_ENOTFOUND, "no field %s.%s", table ? table : "(null)",
                       field ? field : "(null)");
    *cls = f->cls;
    return FV_OK;
}

fv_status fv_schema_add_field(fv_db *db, const char *table, const char *field,
                              fv_field_class cls)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    const fv__table *t = fv__schema_table(db, table);
    if (t == NULL) return fv__err(db, FV_ENOTFOUND, "no table %s", table ? table : "(null)");
    if (!fv__name_valid(field) || strcmp(field, "id") == 0 || strcmp(field, "deleted") == 0 ||
        strcmp(field, "created_ms") == 0 || strcmp(field, "updated_ms") == 0)
        return fv__err(db, FV_EINVAL,
                       "a field name is a lowercase letter then up to %d of a-z 0-9 _, not a reserved name",
                       FV_NAME_MAX - 1);
    if ((unsigned)cls > FV_CLASS_CONFIDENTIAL) return fv__err(db, FV_EINVAL, "unknown field class");
    if (fv__schema_field(t, field, NULL) != NULL)
        return fv__err(db, FV_EEXIST, "%s.%s already exists", table, field);
    if (t->nfields >= FV_RECORD_FIELDS_MAX)
        return fv__err(db, FV_EINVAL, "%s already has %d fields", table, FV_RECORD_FIELDS_MAX);
    int opened = 0;
    fv_status st = fv__tx_begin(db, &opened);
    if (st != FV_OK) return st;
    sqlite3_stmt *s = fv__stmt(db,
        "INSERT INTO fv_fields(tbl,name,ord,cls,type,required,max_len)"
        " VALUES(?1,?2,(SELECT max(ord)+1 FROM fv_fields),?3,0,0,?4)");
    if (s == NULL) st = db->err;
    if (st == FV_OK) {
        sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, field, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, (int)cls);
        sqlite3_bind_int(s, 4, FV_FIELD_MAX);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "adding a field");
    }
    if (st == FV_OK) {
        char sql[256];
        snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" ADD COLUMN \"%s\" TEXT", table, field);
        st = fv__exec(db, sql);
    }
    st = fv__tx_end(db, opened, st);
    if (st == FV_OK) st = fv__schema_load(db);
    return st;
}
