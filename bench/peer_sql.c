/*
 * peer_sql.c - "record a visit" through plain SQLite calls (see
 * peer_sql.h): open with the shared pragmas, create fieldvault's domain
 * schema, insert one customer, then time N visit inserts, each its own
 * transaction or all in one.
 *
 * With the session extension (PEER_HAVE_SESSION, the system SQLite only) a
 * session is attached to the domain tables for each transaction and its
 * changeset is written, in that same transaction, into an outbox table: the
 * durable change capture that the built-in extension offers, comparable to
 * fieldvault's outbox.  Without it, nothing is captured.
 *
 * The visits are generated before the clock starts; ids are made inside
 * the loop (as fieldvault makes them inside fv_insert).
 */
#include "peer_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "visitgen.h"

struct peer_ctx {
    const peer_opts *o;
    sqlite3 *db;
    sqlite3_stmt *ins, *begin, *commit, *outbox;
    vg_visit *visits;
    unsigned char customer[16];
    vg_uuid ids;
    char err[256];
};

static int fail_db(struct peer_ctx *c, const char *what)
{
    snprintf(c->err, sizeof c->err, "%s: %s", what, c->db ? sqlite3_errmsg(c->db) : "no db");
    return -1;
}

static int exec(struct peer_ctx *c, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(c->err, sizeof c->err, "%.60s: %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int step_done(struct peer_ctx *c, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : fail_db(c, what);
}

#ifdef PEER_HAVE_SESSION
/* Capture the changes made since the session was created into the outbox
 * (inside the open transaction). */
static int session_flush(struct peer_ctx *c, sqlite3_session *s)
{
    int n = 0;
    void *p = NULL;
    if (sqlite3session_changeset(s, &n, &p) != SQLITE_OK) return fail_db(c, "changeset");
    sqlite3_bind_blob(c->outbox, 1, p, n, SQLITE_STATIC);
    int rc = step_done(c, c->outbox, "writing the outbox");
    sqlite3_free(p);
    return rc;
}

static int session_new(struct peer_ctx *c, sqlite3_session **s)
{
    if (sqlite3session_create(c->db, "main", s) != SQLITE_OK) return fail_db(c, "session");
    static const char *const tables[] = {"customer", "contact", "visit"};
    for (size_t i = 0; i < 3; i++)
        if (sqlite3session_attach(*s, tables[i]) != SQLITE_OK) return fail_db(c, "attach");
    return 0;
}
#endif

static int insert_visit(struct peer_ctx *c, long i)
{
    const vg_visit *v = &c->visits[i];
    unsigned char id[16];
    vg_uuid7(&c->ids, id);
    sqlite3_stmt *s = c->ins;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, vg_now_ms());
    sqlite3_bind_blob(s, 3, c->customer, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, v->at, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, v->method, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, v->participants, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, v->summary, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, v->feedback, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, v->agreement, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, v->next_action, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 11, v->next_action_owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 12, v->next_action_due, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 13, v->lat);
    sqlite3_bind_double(s, 14, v->lon);
    return step_done(c, s, "inserting a visit");
}

__attribute__((noinline)) int bench_measured_sql(struct peer_ctx *c)
{
    const peer_opts *o = c->o;
    long per_tx = o->batch ? o->count : 1;
    for (long i = 0; i < o->count; i += per_tx) {
#ifdef PEER_HAVE_SESSION
        sqlite3_session *sess = NULL;
        if (o->session && session_new(c, &sess) != 0) return -1;
#endif
        if (step_done(c, c->begin, "begin") != 0) return -1;
        for (long k = i; k < i + per_tx && k < o->count; k++)
            if (insert_visit(c, k) != 0) return -1;
#ifdef PEER_HAVE_SESSION
        if (sess != NULL) {
            int rc = session_flush(c, sess);
            sqlite3session_delete(sess);
            if (rc != 0) return -1;
        }
#endif
        if (step_done(c, c->commit, "commit") != 0) return -1;
    }
    return 0;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

static int setup(struct peer_ctx *c)
{
    const peer_opts *o = c->o;
    if (sqlite3_open_v2(o->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        return fail_db(c, "open");
    char sql[256];
    if (o->key != NULL) {
        /* SQLCipher: the key first; the tuned variant sets 4 KiB cipher
         * pages (which is also SQLite's page size) before the first access. */
        char *q = sqlite3_mprintf("PRAGMA key = %Q", o->key);
        int rc = exec(c, q);
        sqlite3_free(q);
        if (rc != 0) return -1;
        if (o->page_size > 0) {
            snprintf(sql, sizeof sql, "PRAGMA cipher_page_size = %d", o->page_size);
            if (exec(c, sql) != 0) return -1;
        }
    } else if (o->page_size > 0) {
        snprintf(sql, sizeof sql, "PRAGMA page_size = %d", o->page_size);
        if (exec(c, sql) != 0) return -1;
    }
    /* The key derivation (SQLCipher) happens on this first access, before
     * the clock starts. */
    if (exec(c, "PRAGMA locking_mode = EXCLUSIVE; PRAGMA temp_store = MEMORY;"
                "PRAGMA mmap_size = 0; SELECT count(*) FROM sqlite_master;"
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;") != 0)
        return -1;
    if (exec(c, o->schema_sql) != 0) return -1;
    if (o->session && exec(c, "CREATE TABLE bench_outbox(seq INTEGER PRIMARY KEY, "
                              "changeset BLOB NOT NULL)") != 0)
        return -1;
    if (sqlite3_prepare_v2(c->db,
                           "INSERT INTO visit(id, deleted, created_ms, updated_ms, customer_id, at,"
                           " method, participants, summary, feedback, agreement, next_action,"
                           " next_action_owner, next_action_due, lat, lon)"
                           " VALUES(?1, 0, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                           -1, &c->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "BEGIN IMMEDIATE", -1, &c->begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "COMMIT", -1, &c->commit, NULL) != SQLITE_OK)
        return fail_db(c, "prepare");
    if (o->session && sqlite3_prepare_v2(c->db, "INSERT INTO bench_outbox(changeset) VALUES(?1)",
                                         -1, &c->outbox, NULL) != SQLITE_OK)
        return fail_db(c, "prepare");
    /* The customer the visits belong to. */
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(c->db,
                           "INSERT INTO customer(id, deleted, created_ms, updated_ms, name, owner)"
                           " VALUES(?1, 0, ?2, ?2, ?3, 'bench')",
                           -1, &s, NULL) != SQLITE_OK)
        return fail_db(c, "prepare");
    char name[64];
    vg_customer_name(o->seed, 0, name, sizeof name);
    vg_uuid7(&c->ids, c->customer);
    sqlite3_bind_blob(s, 1, c->customer, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, vg_now_ms());
    sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
    int rc = step_done(c, s, "inserting the customer");
    sqlite3_finalize(s);
    return rc;
}

int peer_sql_run(const peer_opts *o, peer_result *r, char *err, size_t errcap)
{
    struct peer_ctx c;
    memset(&c, 0, sizeof c);
    memset(r, 0, sizeof *r);
    c.o = o;
#ifndef PEER_HAVE_SESSION
    if (o->session) {
        snprintf(err, errcap, "this build has no session extension");
        return -1;
    }
#endif
    c.visits = calloc((size_t)(o->count > 0 ? o->count : 1), sizeof *c.visits);
    if (c.visits == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    for (long i = 0; i < o->count; i++) vg_visit_make(o->seed, (uint64_t)i, &c.visits[i]);
    int rc = setup(&c);
    if (rc == 0) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = bench_measured_sql(&c);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        r->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        r->visits = o->count;
    }
    if (rc != 0) snprintf(err, errcap, "%s", c.err);
    sqlite3_finalize(c.ins);
    sqlite3_finalize(c.begin);
    sqlite3_finalize(c.commit);
    sqlite3_finalize(c.outbox);
    if (sqlite3_close(c.db) != SQLITE_OK && rc == 0) {
        snprintf(err, errcap, "close failed");
        rc = -1;
    }
    char wal[1024];
    snprintf(wal, sizeof wal, "%s-wal", o->path);
    r->file_bytes = file_size(o->path) + file_size(wal);
    free(c.visits);
    return rc;
}
