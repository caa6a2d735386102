/*
 * store_sqlite.c - fvd's store of record on one SQLite file, DIR/fvd.db
 * (see store.h for the contract of every operation).
 *
 * This is plain SQLite through the system library and its default VFS: the
 * server's store of record is not a device's encrypted vault (no field
 * keys, no vault VFS; protect it with the host's disk encryption and file
 * permissions).  Values of protected fields arrive sealed by the devices,
 * so the server never holds their plaintext anyway.
 *
 * Layout: schema; the handle and its prepared statements; row readers
 * (every value read back is checked against its bound: the file is
 * ours, but a damaged file must give an error, not a crash); the
 * operations in store.h order; the open function.
 *
 * Concurrency: WAL mode, so readers (pulls) never wait for the writer; a
 * busy timeout; every write that must be atomic runs in BEGIN IMMEDIATE,
 * which takes the database's one write lock up front - that is what
 * serialises pushes, across threads (one handle each) and across several
 * fvd processes on the same file.  synchronous=FULL: an acknowledged push
 * survives a power cut.
 *
 * Tables: users (name, role, team, code_hash, code_used); devices (enrolment
 * order = rowid); nonces (device, nonce, seen_ms); log (seq INTEGER PRIMARY
 * KEY = the server sequence number; rows are never deleted, so a new seq is
 * always above every earlier one); versions ((tbl, row_id, field) -> hlc,
 * device, base_hlc: each field's current version).  Field keys (schema 2):
 * admin_key (one row: the admin's public key); team_keys ((team, cls,
 * version) -> key id, created_ms: public facts only); grants (seq INTEGER
 * PRIMARY KEY, numbered like the log; one per (device, team, cls,
 * version); sealed boxes and signatures, never a key in clear).  The
 * access policy (schema 3): policy (one row: version, fv__policy_encode
 * bytes), replaced only by a higher version.  A device's role and team are
 * always read through its user (users), so update_user moves every device
 * of the user at once.
 *
 * The log's customer scope (schema 4, store.h): per entry cust (the row's
 * customer id), owner and team (that customer's, as scope keys: blobs of
 * the value's first FVD_NAME_MAX bytes), and on a customer's owner/team
 * changes prev_owner and prev_team; NULL for none.  append keeps them
 * current (a reassignment rewrites the customer's entries through
 * log_by_cust); pulls select by log_by_owner / log_by_team (and the small
 * prev_ indexes), so a scoped pull reads the entries it gives.
 *
 * Schema versions: meta('schema') is 4.  An older file (1: before field
 * keys, 2: before the policy table, 3: before the log's scope) is upgraded
 * when opened, in one write transaction: the new tables are created (every
 * statement of the schema is IF NOT EXISTS), the log gets its scope
 * columns, back-filled from the log itself by the rules append follows
 * (MIGRATE_4), then their indexes, and the version becomes 4; a file of a
 * newer fvd is refused.  Values are stored
 * typed - kind plus a text, real or blob (sealed) or NULL, in a column
 * without affinity - so a pull returns exactly what was pushed.  64-bit
 * unsigned quantities (hlc, device_seq, batch seq) are stored as their
 * two's-complement int64; nothing compares them in SQL.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>
#include <sqlite3.h>

#include "store.h"
#include "wire.h"

#define BUSY_TIMEOUT_MS 30000
#define SCHEMA_VERSION 4
/* Purge old nonces at most this often per handle. */
#define NONCE_PURGE_EVERY_MS 30000

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);"
    "CREATE TABLE IF NOT EXISTS users("
    "  name TEXT PRIMARY KEY, role TEXT NOT NULL, team TEXT NOT NULL,"
    "  code_hash BLOB NOT NULL UNIQUE, code_used INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS devices("
    "  seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, public_key BLOB NOT NULL,"
    "  name TEXT NOT NULL, user TEXT NOT NULL REFERENCES users(name),"
    "  revoked INTEGER NOT NULL DEFAULT 0, last_batch_seq INTEGER NOT NULL DEFAULT 0,"
    "  last_batch_hash BLOB NOT NULL, enrolled_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS nonces("
    "  device BLOB NOT NULL, nonce BLOB NOT NULL, seen_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(device, nonce)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS nonces_seen ON nonces(seen_ms);"
    "CREATE TABLE IF NOT EXISTS log("
    "  seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, row_id BLOB NOT NULL,"
    "  field TEXT NOT NULL, kind INTEGER NOT NULL, value, hlc INTEGER NOT NULL,"
    "  base_hlc INTEGER NOT NULL, device BLOB NOT NULL, device_seq INTEGER NOT NULL,"
    /* schema 4: the entry's customer scope (store.h), scope keys as blobs */
    "  cust BLOB, owner BLOB, team BLOB, prev_owner BLOB, prev_team BLOB);"
    "CREATE INDEX IF NOT EXISTS log_by_field ON log(tbl, row_id, field, seq);"
    "CREATE INDEX IF NOT EXISTS log_by_customer ON log(value) WHERE field = 'customer_id';"
    "CREATE TABLE IF NOT EXISTS versions("
    "  tbl TEXT NOT NULL, row_id BLOB NOT NULL, field TEXT NOT NULL,"
    "  hlc INTEGER NOT NULL, device BLOB NOT NULL, base_hlc INTEGER NOT NULL,"
    "  PRIMARY KEY(tbl, row_id, field)) WITHOUT ROWID;"
    /* schema 2: field keys */
    "CREATE TABLE IF NOT EXISTS admin_key("
    "  id INTEGER PRIMARY KEY CHECK (id = 1), public_key BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS team_keys("
    "  team TEXT NOT NULL, cls INTEGER NOT NULL, version INTEGER NOT NULL,"
    "  key_id BLOB NOT NULL, created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(team, cls, version)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS grants("
    "  seq INTEGER PRIMARY KEY, device BLOB NOT NULL REFERENCES devices(id),"
    "  team TEXT NOT NULL, cls INTEGER NOT NULL, version INTEGER NOT NULL,"
    "  sealed BLOB NOT NULL, sig BLOB NOT NULL,"
    "  UNIQUE(device, team, cls, version),"
    "  FOREIGN KEY(team, cls, version) REFERENCES team_keys(team, cls, version));"
    "CREATE INDEX IF NOT EXISTS grants_by_device ON grants(device, seq);"
    "CREATE INDEX IF NOT EXISTS grants_by_key ON grants(team, cls, version);"
    /* schema 3: the access policy in force */
    "CREATE TABLE IF NOT EXISTS policy("
    "  id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL,"
    "  body BLOB NOT NULL);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema', 4);";

/* Schema 4 on an older store (1..3, which got the tables above): the log's
 * scope columns, back-filled from the log itself as append would have kept
 * them (fvd_key and fvd_customer are this handle's SQL functions for
 * fvd_scope_key and fvd_scope_customer).  In the transaction of SCHEMA. */
static const char MIGRATE_4[] =
    "ALTER TABLE log ADD COLUMN cust BLOB;"
    "ALTER TABLE log ADD COLUMN owner BLOB;"
    "ALTER TABLE log ADD COLUMN team BLOB;"
    "ALTER TABLE log ADD COLUMN prev_owner BLOB;"
    "ALTER TABLE log ADD COLUMN prev_team BLOB;"
    "UPDATE log SET cust = row_id WHERE tbl = 'customer';"
    "UPDATE log SET cust = (SELECT fvd_customer(m.kind, m.value) FROM log m"
    "  WHERE m.tbl = log.tbl AND m.row_id = log.row_id AND m.field = 'customer_id'"
    "  ORDER BY m.seq DESC LIMIT 1) WHERE tbl <> 'customer';"
    "UPDATE log SET"
    "  owner = (SELECT fvd_key(m.kind, m.value) FROM log m WHERE m.tbl = 'customer'"
    "    AND m.row_id = log.cust AND m.field = 'owner' ORDER BY m.seq DESC LIMIT 1),"
    "  team = (SELECT fvd_key(m.kind, m.value) FROM log m WHERE m.tbl = 'customer'"
    "    AND m.row_id = log.cust AND m.field = 'team' ORDER BY m.seq DESC LIMIT 1)"
    "  WHERE cust IS NOT NULL;"
    "UPDATE log SET"
    "  prev_owner = (SELECT fvd_key(m.kind, m.value) FROM log m WHERE m.tbl = 'customer'"
    "    AND m.row_id = log.row_id AND m.field = 'owner' AND m.seq < log.seq"
    "    ORDER BY m.seq DESC LIMIT 1),"
    "  prev_team = (SELECT fvd_key(m.kind, m.value) FROM log m WHERE m.tbl = 'customer'"
    "    AND m.row_id = log.row_id AND m.field = 'team' AND m.seq < log.seq"
    "    ORDER BY m.seq DESC LIMIT 1)"
    "  WHERE tbl = 'customer' AND field IN ('owner', 'team');"
    "UPDATE meta SET value = 4 WHERE key = 'schema';";

/* The indexes pulls select by (schema 4), made after a back-fill. */
static const char SCOPE_INDEXES[] =
    "CREATE INDEX IF NOT EXISTS log_by_cust ON log(cust) WHERE cust IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS log_by_owner ON log(owner, seq) WHERE owner IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS log_by_team ON log(team, seq) WHERE team IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS log_by_prev_owner ON log(prev_owner, seq)"
    "  WHERE prev_owner IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS log_by_prev_team ON log(prev_team, seq)"
    "  WHERE prev_team IS NOT NULL;";

#define DEVICE_COLUMNS                                                                         \
    "d.id, d.public_key, d.name, d.user, u.role, u.team, d.revoked, d.last_batch_seq, "       \
    "d.last_batch_hash, d.enrolled_ms, d.last_seen_ms FROM devices d JOIN users u ON "        \
    "u.name = d.user"

#define PULL_COLUMNS                                                                   \
    "seq, tbl, row_id, field, kind, value, hlc, base_hlc, device, device_seq"

enum {
    S_USER_ADD,
    S_CODE_FIND,
    S_CODE_USE,
    S_DEV_EXISTS,
    S_DEV_ADD,
    S_DEV_GET,
    S_DEV_TOUCH,
    S_DEV_REVOKE,
    S_DEV_LIST,
    S_NONCE_PURGE,
    S_NONCE_ADD,
    S_VER_GET,
    S_VER_PUT,
    S_LOG_ADD,
    S_ROW_SCOPE,
    S_CUST_KEYS,
    S_SET_OWNER,
    S_SET_TEAM,
    S_SET_ROW_CUST,
    S_BATCH_SET,
    S_PULL_ALL,
    S_PULL_OWNER,
    S_PULL_TEAM,
    S_HEAD,
    S_VALUE,
    S_VALUE_BEFORE,
    S_ROW_FIELDS,
    S_CUSTOMER_ROWS,
    S_ADMIN_SET,
    S_ADMIN_GET,
    S_TKEY_ADD,
    S_TKEY_CUR,
    S_TKEY_LIST,
    S_GRANT_ADD,
    S_GRANT_LIST,
    S_USER_UPDATE,
    S_USER_GET,
    S_POLICY_SET,
    S_POLICY_GET,
    S_COUNT
};

static const char *const SQL[S_COUNT] = {
    [S_USER_ADD] = "INSERT INTO users(name, role, team, code_hash, code_used) "
                   "VALUES(?1, ?2, ?3, ?4, 0)",
    [S_CODE_FIND] = "SELECT name, role, team FROM users WHERE code_hash = ?1 AND code_used = 0",
    [S_CODE_USE] = "UPDATE users SET code_used = 1 WHERE name = ?1",
    [S_DEV_EXISTS] = "SELECT 1 FROM devices WHERE id = ?1",
    [S_DEV_ADD] = "INSERT INTO devices(id, public_key, name, user, revoked, last_batch_seq, "
                  "last_batch_hash, enrolled_ms, last_seen_ms) "
                  "VALUES(?1, ?2, ?3, ?4, 0, 0, zeroblob(32), ?5, 0)",
    [S_DEV_GET] = "SELECT " DEVICE_COLUMNS " WHERE d.id = ?1",
    [S_DEV_TOUCH] = "UPDATE devices SET last_seen_ms = max(last_seen_ms, ?2) WHERE id = ?1",
    [S_DEV_REVOKE] = "UPDATE devices SET revoked = 1 WHERE id = ?1",
    [S_DEV_LIST] = "SELECT " DEVICE_COLUMNS " ORDER BY d.seq",
    [S_NONCE_PURGE] = "DELETE FROM nonces WHERE seen_ms < ?1",
    [S_NONCE_ADD] = "INSERT INTO nonces(device, nonce, seen_ms) VALUES(?1, ?2, ?3) "
                    "ON CONFLICT DO NOTHING",
    [S_VER_GET] = "SELECT hlc, device, base_hlc FROM versions "
                  "WHERE tbl = ?1 AND row_id = ?2 AND field = ?3",
    [S_VER_PUT] = "INSERT INTO versions(tbl, row_id, field, hlc, device, base_hlc) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(tbl, row_id, field) DO UPDATE "
                  "SET hlc = excluded.hlc, device = excluded.device, "
                  "base_hlc = excluded.base_hlc",
    [S_LOG_ADD] = "INSERT INTO log(tbl, row_id, field, kind, value, hlc, base_hlc, device, "
                  "device_seq, cust, owner, team, prev_owner, prev_team) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    /* Every entry of a row carries the row's current scope: any one will do. */
    [S_ROW_SCOPE] = "SELECT cust, owner, team FROM log WHERE tbl = ?1 AND row_id = ?2 LIMIT 1",
    [S_CUST_KEYS] = "SELECT owner, team FROM log WHERE cust = ?1 LIMIT 1",
    [S_SET_OWNER] = "UPDATE log SET owner = ?2 WHERE cust = ?1 AND owner IS NOT ?2",
    [S_SET_TEAM] = "UPDATE log SET team = ?2 WHERE cust = ?1 AND team IS NOT ?2",
    [S_SET_ROW_CUST] = "UPDATE log SET cust = ?3, owner = ?4, team = ?5 "
                       "WHERE tbl = ?1 AND row_id = ?2",
    [S_BATCH_SET] = "UPDATE devices SET last_batch_seq = ?2, last_batch_hash = ?3 WHERE id = ?1",
    /* ?1 cursor, ?2 head, ?3 the scope key, last the limit.  The second
     * half of a scoped pull: a customer's owner/team changes that moved it
     * out of the user's scope (not given twice). */
    [S_PULL_ALL] = "SELECT " PULL_COLUMNS " FROM log WHERE seq > ?1 AND seq <= ?2 "
                   "ORDER BY seq LIMIT ?3",
    [S_PULL_OWNER] = "SELECT " PULL_COLUMNS " FROM log WHERE seq > ?1 AND seq <= ?2 "
                     "AND owner = ?3 UNION ALL SELECT " PULL_COLUMNS " FROM log "
                     "WHERE seq > ?1 AND seq <= ?2 AND prev_owner = ?3 AND owner IS NOT ?3 "
                     "ORDER BY seq LIMIT ?4",
    [S_PULL_TEAM] = "SELECT " PULL_COLUMNS " FROM log WHERE seq > ?1 AND seq <= ?2 "
                    "AND team = ?3 UNION ALL SELECT " PULL_COLUMNS " FROM log "
                    "WHERE seq > ?1 AND seq <= ?2 AND prev_team = ?3 AND team IS NOT ?3 "
                    "ORDER BY seq LIMIT ?4",
    [S_HEAD] = "SELECT coalesce(max(seq), 0) FROM log",
    [S_VALUE] = "SELECT seq, tbl, row_id, field, kind, value, hlc, base_hlc, device, device_seq "
                "FROM log WHERE tbl = ?1 AND row_id = ?2 AND field = ?3 ORDER BY seq DESC LIMIT 1",
    [S_VALUE_BEFORE] = "SELECT seq, tbl, row_id, field, kind, value, hlc, base_hlc, device, device_seq "
                       "FROM log WHERE tbl = ?1 AND row_id = ?2 AND field = ?3 AND seq < ?4 "
                       "ORDER BY seq DESC LIMIT 1",
    [S_ROW_FIELDS] = "SELECT seq, tbl, row_id, field, kind, value, hlc, base_hlc, device, device_seq "
                     "FROM log l WHERE tbl = ?1 AND row_id = ?2 AND seq = (SELECT max(seq) FROM log m "
                     "WHERE m.tbl = l.tbl AND m.row_id = l.row_id AND m.field = l.field)",
    [S_CUSTOMER_ROWS] = "SELECT DISTINCT tbl, row_id FROM log WHERE field = 'customer_id' "
                        "AND value = ?1",
    [S_ADMIN_SET] = "INSERT INTO admin_key(id, public_key) VALUES(1, ?1) "
                    "ON CONFLICT(id) DO NOTHING",
    [S_ADMIN_GET] = "SELECT public_key FROM admin_key WHERE id = 1",
    [S_TKEY_ADD] = "INSERT INTO team_keys(team, cls, version, key_id, created_ms) "
                   "VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_TKEY_CUR] = "SELECT coalesce(max(version), 0) FROM team_keys WHERE team = ?1 AND cls = ?2",
    [S_TKEY_LIST] = "SELECT k.team, k.cls, k.version, k.key_id, k.created_ms, "
                    "(SELECT count(*) FROM grants g WHERE g.team = k.team AND g.cls = k.cls "
                    "AND g.version = k.version) FROM team_keys k ORDER BY k.team, k.cls, k.version",
    [S_GRANT_ADD] = "INSERT INTO grants(device, team, cls, version, sealed, sig) "
                    "VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
                    "ON CONFLICT(device, team, cls, version) DO NOTHING",
    [S_GRANT_LIST] = "SELECT seq, device, team, cls, version, sealed, sig FROM grants "
                     "WHERE device = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    /* ?3 NULL: the team stays */
    [S_USER_UPDATE] = "UPDATE users SET role = ?2, team = coalesce(?3, team) WHERE name = ?1",
    [S_USER_GET] = "SELECT name, role, team FROM users WHERE name = ?1",
    /* Only a higher version replaces the row: no change = refused. */
    [S_POLICY_SET] = "INSERT INTO policy(id, version, body) VALUES(1, ?1, ?2) "
                     "ON CONFLICT(id) DO UPDATE SET version = excluded.version, "
                     "body = excluded.body WHERE excluded.version > policy.version",
    [S_POLICY_GET] = "SELECT version, body FROM policy WHERE id = 1",
};

typedef struct sq_store {
    fvd_store base;
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    int in_push;          /* between push_begin and push_end */
    int64_t last_purge_ms;
    fv__change ch;        /* pull's row, handed to the callback */
} sq_store;

/* ---- Errors and statements ---- */

#if defined(__GNUC__) || defined(__clang__)
#define SQ_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SQ_PRINTF(fmt, args)
#endif

SQ_PRINTF(4, 5)
static fv_status fail(char *err, size_t errcap, fv_status st, const char *fmt, ...)
{
    if (err != NULL && errcap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* A failed SQLite call: busy (another writer held the lock past the busy
 * timeout) is FV_EBUSY, anything else FV_EIO; the message keeps SQLite's. */
static fv_status sqfail(sq_store *q, int rc, const char *what, char *err, size_t errcap)
{
    int prim = rc & 0xff;
    fv_status st = (prim == SQLITE_BUSY || prim == SQLITE_LOCKED) ? FV_EBUSY : FV_EIO;
    return fail(err, errcap, st, "sqlite store: %s: %s (%d)", what, sqlite3_errmsg(q->db), rc);
}

/* Statement i, reset and unbound, ready for binding. */
static sqlite3_stmt *stmt(sq_store *q, int i)
{
    sqlite3_stmt *s = q->st[i];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static void done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
}

static fv_status exec(sq_store *q, const char *sql, const char *what, char *err, size_t errcap)
{
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? FV_OK : sqfail(q, rc, what, err, errcap);
}

static void rollback(sq_store *q)
{
    /* Nothing to report: if the transaction is already gone this fails
     * harmlessly. */
    (void)sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

static int bind_blob(sqlite3_stmt *s, int i, const void *b, size_t n)
{
    return sqlite3_bind_blob(s, i, b, (int)n, SQLITE_TRANSIENT);
}

static int bind_text(sqlite3_stmt *s, int i, const char *t)
{
    return sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
}

static int bind_u64(sqlite3_stmt *s, int i, uint64_t v)
{
    return sqlite3_bind_int64(s, i, (sqlite3_int64)v);
}

/* ---- Row readers ---- */

/* Column col as a blob of exactly n bytes into out: 0, or -1. */
static int col_blob(sqlite3_stmt *s, int col, unsigned char *out, size_t n)
{
    if (sqlite3_column_type(s, col) != SQLITE_BLOB) return -1;
    const void *b = sqlite3_column_blob(s, col);
    if ((size_t)sqlite3_column_bytes(s, col) != n || b == NULL) return -1;
    memcpy(out, b, n);
    return 0;
}

/* Column col as text of at most cap - 1 bytes, NUL-terminated: 0, or -1. */
static int col_text(sqlite3_stmt *s, int col, char *out, size_t cap)
{
    if (sqlite3_column_type(s, col) != SQLITE_TEXT) return -1;
    const unsigned char *t = sqlite3_column_text(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    if (t == NULL || n >= cap) return -1;
    memcpy(out, t, n);
    out[n] = '\0';
    return 0;
}

static uint64_t col_u64(sqlite3_stmt *s, int col)
{
    return (uint64_t)sqlite3_column_int64(s, col);
}

/* A DEVICE_COLUMNS row: 0, or -1 if a column is out of its bounds. */
static int read_device(sqlite3_stmt *s, fvd_device *d)
{
    memset(d, 0, sizeof *d);
    if (col_blob(s, 0, d->id, sizeof d->id) != 0 ||
        col_blob(s, 1, d->public_key, sizeof d->public_key) != 0 ||
        col_text(s, 2, d->name, sizeof d->name) != 0 ||
        col_text(s, 3, d->user, sizeof d->user) != 0 ||
        col_text(s, 4, d->role, sizeof d->role) != 0 ||
        col_text(s, 5, d->team, sizeof d->team) != 0 ||
        col_blob(s, 8, d->last_batch_hash, sizeof d->last_batch_hash) != 0)
        return -1;
    d->revoked = sqlite3_column_int64(s, 6) != 0;
    d->last_batch_seq = col_u64(s, 7);
    d->enrolled_ms = sqlite3_column_int64(s, 9);
    d->last_seen_ms = sqlite3_column_int64(s, 10);
    return 0;
}

/* An S_PULL row into *c: 0, or -1 if out of bounds. */
static int read_change(sqlite3_stmt *s, fv__change *c)
{
    memset(c, 0, offsetof(fv__change, data));
    c->data[0] = '\0';
    if (col_text(s, 1, c->table, sizeof c->table) != 0 ||
        col_blob(s, 2, c->row_id, sizeof c->row_id) != 0 ||
        col_text(s, 3, c->field, sizeof c->field) != 0 ||
        col_blob(s, 8, c->device, sizeof c->device) != 0)
        return -1;
    c->hlc = col_u64(s, 6);
    c->base_hlc = col_u64(s, 7);
    c->device_seq = col_u64(s, 9);
    int type = sqlite3_column_type(s, 5);
    switch (sqlite3_column_int64(s, 4)) {
    case FV__VAL_NULL:
        c->kind = FV__VAL_NULL;
        return type == SQLITE_NULL ? 0 : -1;
    case FV__VAL_REAL:
        c->kind = FV__VAL_REAL;
        if (type != SQLITE_FLOAT) return -1;
        c->real = sqlite3_column_double(s, 5);
        return 0;
    case FV__VAL_TEXT: {
        c->kind = FV__VAL_TEXT;
        if (type != SQLITE_TEXT) return -1;
        const unsigned char *t = sqlite3_column_text(s, 5);
        size_t n = (size_t)sqlite3_column_bytes(s, 5);
        if (t == NULL || n > FV_FIELD_MAX) return -1;
        memcpy(c->data, t, n);
        c->data[n] = '\0';
        c->len = n;
        return 0;
    }
    case FV__VAL_SEALED: {
        c->kind = FV__VAL_SEALED;
        if (type != SQLITE_BLOB) return -1;
        const void *b = sqlite3_column_blob(s, 5);
        size_t n = (size_t)sqlite3_column_bytes(s, 5);
        if (n > FV_SEALED_MAX || (b == NULL && n > 0)) return -1;
        if (n > 0) memcpy(c->data, b, n);
        c->len = n;
        return 0;
    }
    default:
        return -1;
    }
}

/* Bind the value of c at parameter i (kind at i - 1 is the caller's). */
static int bind_value(sqlite3_stmt *s, int i, const fv__change *c)
{
    switch (c->kind) {
    case FV__VAL_TEXT:
        return sqlite3_bind_text(s, i, (const char *)c->data, (int)c->len, SQLITE_TRANSIENT);
    case FV__VAL_REAL:
        return sqlite3_bind_double(s, i, c->real);
    case FV__VAL_SEALED:
        /* a zero-length blob must stay a blob, not become NULL */
        return c->len == 0 ? sqlite3_bind_zeroblob(s, i, 0) : bind_blob(s, i, c->data, c->len);
    case FV__VAL_NULL:
        return sqlite3_bind_null(s, i);
    }
    return SQLITE_MISUSE;
}

/* ---- Users, enrolment, devices ---- */

static int name_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    return n > 0 && n <= max;
}

static void sq_close(fvd_store *s)
{
    sq_store *q = (sq_store *)s;
    if (q == NULL) return;
    if (q->in_push) rollback(q);
    for (int i = 0; i < S_COUNT; i++) sqlite3_finalize(q->st[i]);
    sqlite3_close_v2(q->db);
    free(q);
}

static fv_status sq_add_user(fvd_store *s, const fvd_user *u, const unsigned char code_hash[32],
                             char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (u == NULL || code_hash == NULL || !name_ok(u->name, FVD_NAME_MAX) ||
        !name_ok(u->role, FVD_ROLE_MAX) || strnlen(u->team, FVD_NAME_MAX + 1) > FVD_NAME_MAX)
        return fail(err, errcap, FV_EINVAL, "add user: bad name, role or team");
    sqlite3_stmt *st = stmt(q, S_USER_ADD);
    bind_text(st, 1, u->name);
    bind_text(st, 2, u->role);
    bind_text(st, 3, u->team);
    bind_blob(st, 4, code_hash, 32);
    int rc = sqlite3_step(st);
    done(st);
    if (rc == SQLITE_DONE) return FV_OK;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return fail(err, errcap, FV_EEXIST, "a user named '%s' exists already", u->name);
    return sqfail(q, rc, "adding a user", err, errcap);
}

static fv_status sq_enroll(fvd_store *s, const unsigned char code_hash[32],
                           const unsigned char id[FV_DEVICE_LEN],
                           const unsigned char public_key[32], const char *device_name,
                           int64_t now_ms, fvd_device *out, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (code_hash == NULL || id == NULL || public_key == NULL || out == NULL)
        return fail(err, errcap, FV_EINVAL, "enroll: missing argument");
    if (device_name == NULL) device_name = "";
    if (strnlen(device_name, FVD_NAME_MAX + 1) > FVD_NAME_MAX)
        return fail(err, errcap, FV_EINVAL, "enroll: device name over %d bytes", FVD_NAME_MAX);
    if (q->in_push) return fail(err, errcap, FV_EINVAL, "enroll: a push is open on this handle");
    /* One write transaction: of two devices racing with one code, the
     * second finds it used. */
    fv_status st = exec(q, "BEGIN IMMEDIATE", "enroll: begin", err, errcap);
    if (st != FV_OK) return st;
    fvd_device d;
    memset(&d, 0, sizeof d);
    sqlite3_stmt *f = stmt(q, S_CODE_FIND);
    bind_blob(f, 1, code_hash, 32);
    int rc = sqlite3_step(f);
    if (rc == SQLITE_ROW) {
        if (col_text(f, 0, d.user, sizeof d.user) != 0 ||
            col_text(f, 1, d.role, sizeof d.role) != 0 ||
            col_text(f, 2, d.team, sizeof d.team) != 0)
            st = fail(err, errcap, FV_EIO, "sqlite store: a users row is out of bounds");
    } else if (rc == SQLITE_DONE) {
        st = fail(err, errcap, FV_ENOTFOUND, "unknown or already used enrolment code");
    } else {
        st = sqfail(q, rc, "enroll: finding the code", err, errcap);
    }
    done(f);
    if (st == FV_OK) {
        sqlite3_stmt *e = stmt(q, S_DEV_EXISTS);
        bind_blob(e, 1, id, FV_DEVICE_LEN);
        rc = sqlite3_step(e);
        done(e);
        if (rc == SQLITE_ROW) st = fail(err, errcap, FV_EEXIST, "the device id is enrolled already");
        else if (rc != SQLITE_DONE) st = sqfail(q, rc, "enroll: checking the id", err, errcap);
    }
    if (st == FV_OK) {
        sqlite3_stmt *u = stmt(q, S_CODE_USE);
        bind_text(u, 1, d.user);
        rc = sqlite3_step(u);
        done(u);
        if (rc != SQLITE_DONE) st = sqfail(q, rc, "enroll: using the code", err, errcap);
    }
    if (st == FV_OK) {
        sqlite3_stmt *a = stmt(q, S_DEV_ADD);
        bind_blob(a, 1, id, FV_DEVICE_LEN);
        bind_blob(a, 2, public_key, 32);
        bind_text(a, 3, device_name);
        bind_text(a, 4, d.user);
        sqlite3_bind_int64(a, 5, now_ms);
        rc = sqlite3_step(a);
        done(a);
        if (rc != SQLITE_DONE) st = sqfail(q, rc, "enroll: adding the device", err, errcap);
    }
    if (st == FV_OK) st = exec(q, "COMMIT", "enroll: commit", err, errcap);
    if (st != FV_OK) {
        rollback(q);
        return st;
    }
    memcpy(d.id, id, FV_DEVICE_LEN);
    memcpy(d.public_key, public_key, 32);
    snprintf(d.name, sizeof d.name, "%s", device_name);
    d.enrolled_ms = now_ms;
    *out = d;
    return FV_OK;
}

static fv_status sq_get_device(fvd_store *s, const unsigned char id[FV_DEVICE_LEN],
                               fvd_device *out, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (id == NULL || out == NULL) return fail(err, errcap, FV_EINVAL, "get device: no id");
    sqlite3_stmt *g = stmt(q, S_DEV_GET);
    bind_blob(g, 1, id, FV_DEVICE_LEN);
    int rc = sqlite3_step(g);
    fv_status st = FV_OK;
    if (rc == SQLITE_ROW) {
        if (read_device(g, out) != 0)
            st = fail(err, errcap, FV_EIO, "sqlite store: a devices row is out of bounds");
    } else if (rc == SQLITE_DONE) {
        st = fail(err, errcap, FV_ENOTFOUND, "unknown device");
    } else {
        st = sqfail(q, rc, "reading a device", err, errcap);
    }
    done(g);
    return st;
}

/* Run a one-row UPDATE keyed by device id (bound at 1) whose other
 * parameters the caller bound: FV_ENOTFOUND if no such device. */
static fv_status update_device(sq_store *q, sqlite3_stmt *u, const char *what, char *err,
                               size_t errcap)
{
    int rc = sqlite3_step(u);
    done(u);
    if (rc != SQLITE_DONE) return sqfail(q, rc, what, err, errcap);
    if (sqlite3_changes(q->db) == 0) return fail(err, errcap, FV_ENOTFOUND, "unknown device");
    return FV_OK;
}

static fv_status sq_touch_device(fvd_store *s, const unsigned char id[FV_DEVICE_LEN],
                                 int64_t now_ms, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (id == NULL) return fail(err, errcap, FV_EINVAL, "touch device: no id");
    sqlite3_stmt *u = stmt(q, S_DEV_TOUCH);
    bind_blob(u, 1, id, FV_DEVICE_LEN);
    sqlite3_bind_int64(u, 2, now_ms);
    return update_device(q, u, "touching a device", err, errcap);
}

static fv_status sq_revoke_device(fvd_store *s, const unsigned char id[FV_DEVICE_LEN],
                                  char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (id == NULL) return fail(err, errcap, FV_EINVAL, "revoke device: no id");
    sqlite3_stmt *u = stmt(q, S_DEV_REVOKE);
    bind_blob(u, 1, id, FV_DEVICE_LEN);
    return update_device(q, u, "revoking a device", err, errcap);
}

static fv_status sq_list_devices(fvd_store *s, int (*cb)(void *ctx, const fvd_device *d),
                                 void *ctx, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (cb == NULL) return fail(err, errcap, FV_EINVAL, "list devices: no callback");
    sqlite3_stmt *l = stmt(q, S_DEV_LIST);
    fv_status st = FV_OK;
    for (;;) {
        int rc = sqlite3_step(l);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) {
            st = sqfail(q, rc, "listing devices", err, errcap);
            break;
        }
        fvd_device d;
        if (read_device(l, &d) != 0) {
            st = fail(err, errcap, FV_EIO, "sqlite store: a devices row is out of bounds");
            break;
        }
        if (cb(ctx, &d) != 0) break;
    }
    done(l);
    return st;
}

static fv_status sq_update_user(fvd_store *s, const char *name, const char *role,
                                const char *team, fvd_user *out, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (name == NULL || role == NULL || !name_ok(name, FVD_NAME_MAX) ||
        !name_ok(role, FVD_ROLE_MAX) ||
        (team != NULL && strnlen(team, FVD_NAME_MAX + 1) > FVD_NAME_MAX))
        return fail(err, errcap, FV_EINVAL, "update user: bad name, role or team");
    if (q->in_push) return fail(err, errcap, FV_EINVAL, "update user: a push is open");
    fv_status st = exec(q, "BEGIN IMMEDIATE", "update user: begin", err, errcap);
    if (st != FV_OK) return st;
    sqlite3_stmt *u = stmt(q, S_USER_UPDATE);
    bind_text(u, 1, name);
    bind_text(u, 2, role);
    if (team != NULL) bind_text(u, 3, team); /* else NULL: kept */
    int rc = sqlite3_step(u);
    done(u);
    if (rc != SQLITE_DONE) st = sqfail(q, rc, "updating a user", err, errcap);
    else if (sqlite3_changes(q->db) == 0)
        st = fail(err, errcap, FV_ENOTFOUND, "no user '%s'", name);
    fvd_user now;
    memset(&now, 0, sizeof now);
    if (st == FV_OK) {
        sqlite3_stmt *g = stmt(q, S_USER_GET);
        bind_text(g, 1, name);
        rc = sqlite3_step(g);
        if (rc != SQLITE_ROW) st = sqfail(q, rc, "reading a user", err, errcap);
        else if (col_text(g, 0, now.name, sizeof now.name) != 0 ||
                 col_text(g, 1, now.role, sizeof now.role) != 0 ||
                 col_text(g, 2, now.team, sizeof now.team) != 0)
            st = fail(err, errcap, FV_EIO, "sqlite store: a users row is out of bounds");
        done(g);
    }
    if (st == FV_OK) st = exec(q, "COMMIT", "update user: commit", err, errcap);
    if (st != FV_OK) {
        rollback(q);
        return st;
    }
    if (out != NULL) *out = now;
    return FV_OK;
}

/* ---- Replay protection ---- */

static fv_status sq_use_nonce(fvd_store *s, const unsigned char device[FV_DEVICE_LEN],
                              const unsigned char nonce[16], int64_t now_ms, int64_t window_ms,
                              int *replay, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (device == NULL || nonce == NULL || replay == NULL || window_ms < 0)
        return fail(err, errcap, FV_EINVAL, "use nonce: bad argument");
    if (q->in_push) return fail(err, errcap, FV_EINVAL, "use nonce: a push is open");
    *replay = 0;
    fv_status st = exec(q, "BEGIN IMMEDIATE", "nonce: begin", err, errcap);
    if (st != FV_OK) return st;
    int rc = SQLITE_DONE;
    if (now_ms - q->last_purge_ms >= NONCE_PURGE_EVERY_MS || now_ms < q->last_purge_ms) {
        sqlite3_stmt *p = stmt(q, S_NONCE_PURGE);
        sqlite3_bind_int64(p, 1, now_ms - window_ms);
        rc = sqlite3_step(p);
        done(p);
        if (rc != SQLITE_DONE) st = sqfail(q, rc, "purging nonces", err, errcap);
        else q->last_purge_ms = now_ms;
    }
    if (st == FV_OK) {
        sqlite3_stmt *a = stmt(q, S_NONCE_ADD);
        bind_blob(a, 1, device, FV_DEVICE_LEN);
        bind_blob(a, 2, nonce, 16);
        sqlite3_bind_int64(a, 3, now_ms);
        rc = sqlite3_step(a);
        done(a);
        if (rc != SQLITE_DONE) st = sqfail(q, rc, "recording a nonce", err, errcap);
        else *replay = sqlite3_changes(q->db) == 0;
    }
    if (st == FV_OK) st = exec(q, "COMMIT", "nonce: commit", err, errcap);
    if (st != FV_OK) {
        rollback(q);
        *replay = 0;
    }
    return st;
}

/* ---- Push ---- */

static fv_status sq_push_begin(fvd_store *s, const unsigned char device[FV_DEVICE_LEN],
                               fvd_device *dev, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (device == NULL || dev == NULL) return fail(err, errcap, FV_EINVAL, "push: no device");
    if (q->in_push) return fail(err, errcap, FV_EINVAL, "push: already open on this handle");
    fv_status st = exec(q, "BEGIN IMMEDIATE", "push: begin", err, errcap);
    if (st != FV_OK) return st;
    st = sq_get_device(s, device, dev, err, errcap);
    if (st != FV_OK) {
        rollback(q);
        return st;
    }
    q->in_push = 1;
    return FV_OK;
}

static fv_status sq_get_version(fvd_store *s, const fv__change *c, fv__ver *v, int *found,
                                char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (c == NULL || v == NULL || found == NULL)
        return fail(err, errcap, FV_EINVAL, "get version: bad argument");
    *found = 0;
    sqlite3_stmt *g = stmt(q, S_VER_GET);
    bind_text(g, 1, c->table);
    bind_blob(g, 2, c->row_id, FV_ROWID_LEN);
    bind_text(g, 3, c->field);
    int rc = sqlite3_step(g);
    fv_status st = FV_OK;
    if (rc == SQLITE_ROW) {
        memset(v, 0, sizeof *v);
        v->hlc = col_u64(g, 0);
        v->base_hlc = col_u64(g, 2);
        if (col_blob(g, 1, v->device, sizeof v->device) != 0)
            st = fail(err, errcap, FV_EIO, "sqlite store: a versions row is out of bounds");
        else *found = 1;
    } else if (rc != SQLITE_DONE) {
        st = sqfail(q, rc, "reading a version", err, errcap);
    }
    done(g);
    return st;
}

/* ---- The log's customer scope (store.h) ---- */

static int bind_key(sqlite3_stmt *s, int i, const fvd_skey *k)
{
    return k->n ? bind_blob(s, i, k->b, k->n) : sqlite3_bind_null(s, i);
}

/* Column col as a scope key: 0, or -1 if it is not one. */
static int col_key(sqlite3_stmt *s, int col, fvd_skey *k)
{
    k->n = 0;
    if (sqlite3_column_type(s, col) == SQLITE_NULL) return 0;
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    if (sqlite3_column_type(s, col) != SQLITE_BLOB || n == 0 || n > FVD_NAME_MAX) return -1;
    memcpy(k->b, sqlite3_column_blob(s, col), n);
    k->n = n;
    return 0;
}

/* The scope the entries of (tbl, row) carry; *found = 0 if it has none. */
static fv_status row_scope_of(sq_store *q, const char *tbl, const unsigned char row[FV_ROWID_LEN],
                              fvd_row_scope *out, int *found, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    *found = 0;
    sqlite3_stmt *g = stmt(q, S_ROW_SCOPE);
    bind_text(g, 1, tbl);
    bind_blob(g, 2, row, FV_ROWID_LEN);
    int rc = sqlite3_step(g);
    fv_status st = FV_OK;
    if (rc == SQLITE_ROW) {
        int t = sqlite3_column_type(g, 0);
        out->has_cust = t != SQLITE_NULL;
        if ((out->has_cust && col_blob(g, 0, out->cust, FV_ROWID_LEN) != 0) ||
            col_key(g, 1, &out->owner) != 0 || col_key(g, 2, &out->team) != 0)
            st = fail(err, errcap, FV_EIO, "sqlite store: a log row's scope is out of bounds");
        else *found = 1;
    } else if (rc != SQLITE_DONE) {
        st = sqfail(q, rc, "reading a row's scope", err, errcap);
    }
    done(g);
    return st;
}

/* A customer's current owner and team keys (none if it has no entry). */
static fv_status customer_keys(sq_store *q, const unsigned char cust[FV_ROWID_LEN], fvd_skey *owner,
                               fvd_skey *team, char *err, size_t errcap)
{
    owner->n = team->n = 0;
    sqlite3_stmt *g = stmt(q, S_CUST_KEYS);
    bind_blob(g, 1, cust, FV_ROWID_LEN);
    int rc = sqlite3_step(g);
    fv_status st = FV_OK;
    if (rc == SQLITE_ROW) {
        if (col_key(g, 0, owner) != 0 || col_key(g, 1, team) != 0)
            st = fail(err, errcap, FV_EIO, "sqlite store: a log row's scope is out of bounds");
    } else if (rc != SQLITE_DONE) {
        st = sqfail(q, rc, "reading a customer's scope", err, errcap);
    }
    done(g);
    return st;
}

static fv_status sq_customer_keys(void *ctx, const unsigned char cust[FV_ROWID_LEN],
                                 fvd_skey *owner, fvd_skey *team, char *err, size_t errcap)
{
    return customer_keys(ctx, cust, owner, team, err, errcap);
}

/* After c's entry: the earlier entries c's change concerns take the new
 * scope. */
static fv_status rescope(sq_store *q, const fv__change *c, const fvd_row_scope *mine, int moves,
                         char *err, size_t errcap)
{
    sqlite3_stmt *u;
    if (moves == FVD_MOVES_NOTHING) return FV_OK;
    if (moves == FVD_MOVES_ROW) {
        u = stmt(q, S_SET_ROW_CUST);
        bind_text(u, 1, c->table);
        bind_blob(u, 2, c->row_id, FV_ROWID_LEN);
        if (mine->has_cust) bind_blob(u, 3, mine->cust, FV_ROWID_LEN);
        bind_key(u, 4, &mine->owner);
        bind_key(u, 5, &mine->team);
    } else {
        u = stmt(q, moves == FVD_MOVES_OWNER ? S_SET_OWNER : S_SET_TEAM);
        bind_blob(u, 1, c->row_id, FV_ROWID_LEN);
        bind_key(u, 2, moves == FVD_MOVES_OWNER ? &mine->owner : &mine->team);
    }
    int rc = sqlite3_step(u);
    done(u);
    return rc == SQLITE_DONE ? FV_OK : sqfail(q, rc, "updating the log's scope", err, errcap);
}

static fv_status sq_append(fvd_store *s, const fv__change *c, uint64_t *server_seq, char *err,
                           size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (!q->in_push) return fail(err, errcap, FV_EINVAL, "append outside a push");
    if (c == NULL || server_seq == NULL)
        return fail(err, errcap, FV_EINVAL, "append: bad argument");
    char why[160];
    if (fv__wire_check_change(c, why, sizeof why) != FV_OK)
        return fail(err, errcap, FV_EINVAL, "append: %s", why);
    fvd_row_scope cur, mine, prev;
    int found = 0, moves = FVD_MOVES_NOTHING;
    fv_status st = row_scope_of(q, c->table, c->row_id, &cur, &found, err, errcap);
    if (st == FV_OK)
        st = fvd_scope_for(c, &cur, found, sq_customer_keys, q, &mine, &prev, &moves, err,
                           errcap);
    if (st != FV_OK) return st;
    sqlite3_stmt *a = stmt(q, S_LOG_ADD);
    bind_text(a, 1, c->table);
    bind_blob(a, 2, c->row_id, FV_ROWID_LEN);
    bind_text(a, 3, c->field);
    sqlite3_bind_int(a, 4, (int)c->kind);
    bind_value(a, 5, c);
    bind_u64(a, 6, c->hlc);
    bind_u64(a, 7, c->base_hlc);
    bind_blob(a, 8, c->device, FV_DEVICE_LEN);
    bind_u64(a, 9, c->device_seq);
    if (mine.has_cust) bind_blob(a, 10, mine.cust, FV_ROWID_LEN);
    bind_key(a, 11, &mine.owner);
    bind_key(a, 12, &mine.team);
    if (prev.has_cust) {
        bind_key(a, 13, &prev.owner);
        bind_key(a, 14, &prev.team);
    }
    int rc = sqlite3_step(a);
    done(a);
    if (rc != SQLITE_DONE) return sqfail(q, rc, "appending to the log", err, errcap);
    *server_seq = (uint64_t)sqlite3_last_insert_rowid(q->db);
    st = rescope(q, c, &mine, moves, err, errcap);
    if (st != FV_OK) return st;
    sqlite3_stmt *v = stmt(q, S_VER_PUT);
    bind_text(v, 1, c->table);
    bind_blob(v, 2, c->row_id, FV_ROWID_LEN);
    bind_text(v, 3, c->field);
    bind_u64(v, 4, c->hlc);
    bind_blob(v, 5, c->device, FV_DEVICE_LEN);
    bind_u64(v, 6, c->base_hlc);
    rc = sqlite3_step(v);
    done(v);
    if (rc != SQLITE_DONE) return sqfail(q, rc, "recording a version", err, errcap);
    return FV_OK;
}

static fv_status sq_set_batch(fvd_store *s, const unsigned char device[FV_DEVICE_LEN],
                              uint64_t seq, const unsigned char hash[32], char *err,
                              size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (!q->in_push) return fail(err, errcap, FV_EINVAL, "set batch outside a push");
    if (device == NULL || hash == NULL) return fail(err, errcap, FV_EINVAL, "set batch: bad argument");
    sqlite3_stmt *u = stmt(q, S_BATCH_SET);
    bind_blob(u, 1, device, FV_DEVICE_LEN);
    bind_u64(u, 2, seq);
    bind_blob(u, 3, hash, 32);
    return update_device(q, u, "recording the batch", err, errcap);
}

static fv_status sq_push_end(fvd_store *s, int commit, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (!q->in_push) return fail(err, errcap, FV_EINVAL, "push end without a push");
    q->in_push = 0;
    if (!commit) {
        rollback(q);
        return FV_OK;
    }
    fv_status st = exec(q, "COMMIT", "push: commit", err, errcap);
    if (st != FV_OK) rollback(q); /* nothing of the push is stored */
    return st;
}

/* ---- Pull ---- */

static fv_status sq_head(fvd_store *s, uint64_t *seq, char *err, size_t errcap);

static fv_status sq_pull(fvd_store *s, uint64_t cursor, uint32_t max,
                         const fvd_pull_filter *filter,
                         int (*cb)(void *ctx, const fv__change *c, uint64_t seq), void *ctx,
                         int *more, uint64_t *last_seq, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (cb == NULL || more == NULL || last_seq == NULL)
        return fail(err, errcap, FV_EINVAL, "pull: bad argument");
    *more = 0;
    *last_seq = cursor;
    fvd_pull_scope scope = filter != NULL ? filter->scope : FVD_PULL_ALL;
    if (scope == FVD_PULL_OWNER || scope == FVD_PULL_TEAM) {
        if (filter->name == NULL || !name_ok(filter->name, FVD_NAME_MAX))
            return fail(err, errcap, FV_EINVAL, "pull: a filter by owner or team needs a name");
    } else if (scope != FVD_PULL_ALL && scope != FVD_PULL_NOTHING) {
        return fail(err, errcap, FV_EINVAL, "pull: unknown filter scope %d", (int)scope);
    }
    /* No sequence number is that large (they are positive int64s). */
    if (cursor > (uint64_t)INT64_MAX) return FV_OK;
    /* The head first: a pull given nothing past it cannot skip an entry
     * committed between the two reads (sequence numbers become visible in
     * order). */
    uint64_t head = 0;
    fv_status st = sq_head(s, &head, err, errcap);
    if (st != FV_OK || head <= cursor) return st;
    if (scope == FVD_PULL_NOTHING) {
        *last_seq = head;
        return FV_OK;
    }
    sqlite3_stmt *p = stmt(q, scope == FVD_PULL_ALL     ? S_PULL_ALL
                              : scope == FVD_PULL_OWNER ? S_PULL_OWNER
                                                        : S_PULL_TEAM);
    int arg = 3;
    sqlite3_bind_int64(p, 1, (sqlite3_int64)cursor);
    bind_u64(p, 2, head);
    if (scope != FVD_PULL_ALL) bind_blob(p, arg++, filter->name, strlen(filter->name));
    sqlite3_bind_int64(p, arg, (sqlite3_int64)max + 1); /* one more: is there more? */
    uint32_t n = 0;
    for (;;) {
        int rc = sqlite3_step(p);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) {
            st = sqfail(q, rc, "reading the log", err, errcap);
            break;
        }
        if (n == max) {
            *more = 1;
            break;
        }
        uint64_t seq = col_u64(p, 0);
        if (read_change(p, &q->ch) != 0) {
            st = fail(err, errcap, FV_EIO, "sqlite store: log row %llu is out of bounds",
                      (unsigned long long)seq);
            break;
        }
        if (cb(ctx, &q->ch, seq) != 0) {
            st = fail(err, errcap, FV_EIO, "pull: the callback stopped at log row %llu",
                      (unsigned long long)seq);
            break;
        }
        *last_seq = seq;
        n++;
    }
    done(p);
    if (st != FV_OK) *more = 0;
    else if (!*more) *last_seq = head;
    return st;
}

/* Step v (bound) and read its one log row, if any, into *out (*found). */
static fv_status one_change(sq_store *q, sqlite3_stmt *v, fv__change *out, int *found, char *err,
                            size_t errcap)
{
    int rc = sqlite3_step(v);
    fv_status st = FV_OK;
    if (rc == SQLITE_ROW) {
        if (read_change(v, out) != 0) st = fail(err, errcap, FV_EIO, "sqlite store: a log row is out of bounds");
        else *found = 1;
    } else if (rc != SQLITE_DONE) {
        st = sqfail(q, rc, "reading a value", err, errcap);
    }
    done(v);
    return st;
}

static fv_status sq_get_value(fvd_store *s, const char *tbl, const unsigned char row[FV_ROWID_LEN],
                              const char *field, fv__change *out, int *found, char *err,
                              size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (tbl == NULL || row == NULL || field == NULL || out == NULL || found == NULL)
        return fail(err, errcap, FV_EINVAL, "get value: bad argument");
    *found = 0;
    sqlite3_stmt *v = stmt(q, S_VALUE);
    bind_text(v, 1, tbl);
    bind_blob(v, 2, row, FV_ROWID_LEN);
    bind_text(v, 3, field);
    return one_change(q, v, out, found, err, errcap);
}

static fv_status sq_get_value_before(fvd_store *s, const char *tbl,
                                     const unsigned char row[FV_ROWID_LEN], const char *field,
                                     uint64_t before_seq, fv__change *out, int *found, char *err,
                                     size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (tbl == NULL || row == NULL || field == NULL || out == NULL || found == NULL)
        return fail(err, errcap, FV_EINVAL, "get value: bad argument");
    *found = 0;
    sqlite3_stmt *v = stmt(q, S_VALUE_BEFORE);
    bind_text(v, 1, tbl);
    bind_blob(v, 2, row, FV_ROWID_LEN);
    bind_text(v, 3, field);
    bind_u64(v, 4, before_seq);
    return one_change(q, v, out, found, err, errcap);
}

static fv_status sq_row_fields(fvd_store *s, const char *tbl, const unsigned char row[FV_ROWID_LEN],
                               fv__change *out, size_t cap, size_t *n, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    *n = 0;
    sqlite3_stmt *v = stmt(q, S_ROW_FIELDS);
    bind_text(v, 1, tbl);
    bind_blob(v, 2, row, FV_ROWID_LEN);
    fv_status st = FV_OK;
    int rc;
    while ((rc = sqlite3_step(v)) == SQLITE_ROW) {
        if (*n == cap || read_change(v, &out[*n]) != 0) {
            st = fail(err, errcap, FV_EIO, "sqlite store: a row has too many or malformed fields");
            break;
        }
        (*n)++;
    }
    if (st == FV_OK && rc != SQLITE_DONE) st = sqfail(q, rc, "reading a row", err, errcap);
    done(v);
    return st;
}

static fv_status sq_customer_rows(fvd_store *s, const char *customer_id, fvd_row_ref **out,
                                  size_t *n, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    sqlite3_stmt *v = stmt(q, S_CUSTOMER_ROWS);
    bind_text(v, 1, customer_id);
    fv_status st = FV_OK;
    int rc;
    while ((rc = sqlite3_step(v)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(v, 0);
        static const char *const children[] = FVD_CHILD_TABLES;
        int table = -1;
        for (int k = 0; t != NULL && k < FVD_NCHILD_TABLES; k++)
            if (strcmp(t, children[k]) == 0) table = k;
        if (table < 0 || sqlite3_column_bytes(v, 1) != FV_ROWID_LEN) continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            fvd_row_ref *p = realloc(*out, nc * sizeof *p);
            if (p == NULL) {
                st = fail(err, errcap, FV_ENOMEM, "out of memory");
                break;
            }
            *out = p;
            cap = nc;
        }
        (*out)[*n].table = table;
        memcpy((*out)[*n].id, sqlite3_column_blob(v, 1), FV_ROWID_LEN);
        (*n)++;
    }
    if (st == FV_OK && rc != SQLITE_DONE) st = sqfail(q, rc, "reading a customer's rows", err, errcap);
    done(v);
    if (st != FV_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return st;
}

static fv_status sq_head(fvd_store *s, uint64_t *seq, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (seq == NULL) return fail(err, errcap, FV_EINVAL, "head: bad argument");
    sqlite3_stmt *h = stmt(q, S_HEAD);
    int rc = sqlite3_step(h);
    fv_status st = FV_OK;
    if (rc == SQLITE_ROW) *seq = col_u64(h, 0);
    else st = sqfail(q, rc, "reading the head", err, errcap);
    done(h);
    return st;
}

/* ---- Field keys ---- */

static int key_args_ok(const char *team, int cls, uint32_t version)
{
    return team != NULL && name_ok(team, FVD_NAME_MAX) && (cls == FV_CLASS_PII ||
           cls == FV_CLASS_CONFIDENTIAL) && version >= 1;
}

static fv_status sq_get_admin_key(fvd_store *s, unsigned char pk[32], int *found, char *err,
                                  size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (pk == NULL || found == NULL) return fail(err, errcap, FV_EINVAL, "admin key: bad argument");
    *found = 0;
    sqlite3_stmt *g = stmt(q, S_ADMIN_GET);
    int rc = sqlite3_step(g);
    fv_status st = FV_OK;
    if (rc == SQLITE_ROW) {
        if (col_blob(g, 0, pk, 32) != 0)
            st = fail(err, errcap, FV_EIO, "sqlite store: the admin key row is out of bounds");
        else *found = 1;
    } else if (rc != SQLITE_DONE) {
        st = sqfail(q, rc, "reading the admin key", err, errcap);
    }
    done(g);
    return st;
}

static fv_status sq_set_admin_key(fvd_store *s, const unsigned char pk[32], char *err,
                                  size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (pk == NULL) return fail(err, errcap, FV_EINVAL, "admin key: no key");
    sqlite3_stmt *a = stmt(q, S_ADMIN_SET);
    bind_blob(a, 1, pk, 32);
    int rc = sqlite3_step(a);
    done(a);
    if (rc != SQLITE_DONE) return sqfail(q, rc, "recording the admin key", err, errcap);
    /* inserted, or there was one: the same key is fine, another is not */
    unsigned char cur[32];
    int found = 0;
    fv_status st = sq_get_admin_key(s, cur, &found, err, errcap);
    if (st != FV_OK) return st;
    if (!found) return fail(err, errcap, FV_EIO, "sqlite store: the admin key did not stick");
    if (sodium_memcmp(cur, pk, 32) != 0)
        return fail(err, errcap, FV_EEXIST, "this store has another admin key already");
    return FV_OK;
}

static fv_status sq_put_team_key(fvd_store *s, const char *team, int cls, uint32_t version,
                                 const unsigned char key_id[8], int64_t created_ms, char *err,
                                 size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (!key_args_ok(team, cls, version) || key_id == NULL)
        return fail(err, errcap, FV_EINVAL, "team key: bad team, class, version or key id");
    sqlite3_stmt *a = stmt(q, S_TKEY_ADD);
    bind_text(a, 1, team);
    sqlite3_bind_int(a, 2, cls);
    sqlite3_bind_int64(a, 3, (sqlite3_int64)version);
    bind_blob(a, 4, key_id, 8);
    sqlite3_bind_int64(a, 5, created_ms);
    int rc = sqlite3_step(a);
    done(a);
    if (rc == SQLITE_DONE) return FV_OK;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return fail(err, errcap, FV_EEXIST, "team %s has key version %u of class %d already",
                    team, (unsigned)version, cls);
    return sqfail(q, rc, "recording a team key", err, errcap);
}

static fv_status sq_current_key_version(fvd_store *s, const char *team, int cls,
                                        uint32_t *version, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (team == NULL || version == NULL || (cls != FV_CLASS_PII && cls != FV_CLASS_CONFIDENTIAL))
        return fail(err, errcap, FV_EINVAL, "key version: bad argument");
    *version = 0;
    sqlite3_stmt *g = stmt(q, S_TKEY_CUR);
    bind_text(g, 1, team);
    sqlite3_bind_int(g, 2, cls);
    int rc = sqlite3_step(g);
    fv_status st = FV_OK;
    if (rc == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(g, 0);
        if (v < 0 || v > (sqlite3_int64)UINT32_MAX)
            st = fail(err, errcap, FV_EIO, "sqlite store: a key version is out of bounds");
        else *version = (uint32_t)v;
    } else {
        st = sqfail(q, rc, "reading a key version", err, errcap);
    }
    done(g);
    return st;
}

static fv_status sq_list_team_keys(fvd_store *s, int (*cb)(void *ctx, const fvd_team_key *k),
                                   void *ctx, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (cb == NULL) return fail(err, errcap, FV_EINVAL, "list keys: no callback");
    sqlite3_stmt *l = stmt(q, S_TKEY_LIST);
    fv_status st = FV_OK;
    for (;;) {
        int rc = sqlite3_step(l);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) {
            st = sqfail(q, rc, "listing team keys", err, errcap);
            break;
        }
        fvd_team_key k;
        memset(&k, 0, sizeof k);
        sqlite3_int64 v = sqlite3_column_int64(l, 2);
        k.cls = sqlite3_column_int(l, 1);
        if (col_text(l, 0, k.team, sizeof k.team) != 0 || col_blob(l, 3, k.key_id, 8) != 0 ||
            v < 1 || v > (sqlite3_int64)UINT32_MAX) {
            st = fail(err, errcap, FV_EIO, "sqlite store: a team_keys row is out of bounds");
            break;
        }
        k.version = (uint32_t)v;
        k.created_ms = sqlite3_column_int64(l, 4);
        k.grants = col_u64(l, 5);
        if (cb(ctx, &k) != 0) break;
    }
    done(l);
    return st;
}

static fv_status sq_put_grant(fvd_store *s, const unsigned char device[FV_DEVICE_LEN],
                              const char *team, int cls, uint32_t version,
                              const unsigned char sealed[80], const unsigned char sig[64],
                              int *inserted, char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (device == NULL || !key_args_ok(team, cls, version) || sealed == NULL || sig == NULL ||
        inserted == NULL)
        return fail(err, errcap, FV_EINVAL, "put grant: bad argument");
    *inserted = 0;
    /* One statement: the writer lock numbers grants in commit order. */
    sqlite3_stmt *a = stmt(q, S_GRANT_ADD);
    bind_blob(a, 1, device, FV_DEVICE_LEN);
    bind_text(a, 2, team);
    sqlite3_bind_int(a, 3, cls);
    sqlite3_bind_int64(a, 4, (sqlite3_int64)version);
    bind_blob(a, 5, sealed, 80);
    bind_blob(a, 6, sig, 64);
    int rc = sqlite3_step(a);
    done(a);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return fail(err, errcap, FV_ENOTFOUND, "put grant: unknown device, or team %s has no "
                    "published key version %u of class %d", team, (unsigned)version, cls);
    if (rc != SQLITE_DONE) return sqfail(q, rc, "recording a grant", err, errcap);
    *inserted = sqlite3_changes(q->db) > 0;
    return FV_OK;
}

static fv_status sq_list_grants(fvd_store *s, const unsigned char device[FV_DEVICE_LEN],
                                uint64_t after_seq, uint32_t max,
                                int (*cb)(void *ctx, const fvd_grant *g), void *ctx, int *more,
                                char *err, size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (device == NULL || cb == NULL || more == NULL)
        return fail(err, errcap, FV_EINVAL, "list grants: bad argument");
    *more = 0;
    if (after_seq > (uint64_t)INT64_MAX) return FV_OK; /* no seq is that large */
    sqlite3_stmt *l = stmt(q, S_GRANT_LIST);
    bind_blob(l, 1, device, FV_DEVICE_LEN);
    sqlite3_bind_int64(l, 2, (sqlite3_int64)after_seq);
    sqlite3_bind_int64(l, 3, (sqlite3_int64)max + 1); /* one more: is there more? */
    fv_status st = FV_OK;
    uint32_t n = 0;
    for (;;) {
        int rc = sqlite3_step(l);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) {
            st = sqfail(q, rc, "listing grants", err, errcap);
            break;
        }
        if (n == max) {
            *more = 1;
            break;
        }
        fvd_grant g;
        memset(&g, 0, sizeof g);
        g.seq = col_u64(l, 0);
        g.cls = sqlite3_column_int(l, 3);
        sqlite3_int64 v = sqlite3_column_int64(l, 4);
        if (col_blob(l, 1, g.device, sizeof g.device) != 0 ||
            col_text(l, 2, g.team, sizeof g.team) != 0 || col_blob(l, 5, g.sealed, 80) != 0 ||
            col_blob(l, 6, g.sig, 64) != 0 || v < 1 || v > (sqlite3_int64)UINT32_MAX) {
            st = fail(err, errcap, FV_EIO, "sqlite store: grant %llu is out of bounds",
                      (unsigned long long)g.seq);
            break;
        }
        g.version = (uint32_t)v;
        if (cb(ctx, &g) != 0) {
            st = fail(err, errcap, FV_EIO, "list grants: the callback stopped at grant %llu",
                      (unsigned long long)g.seq);
            break;
        }
        n++;
    }
    done(l);
    if (st != FV_OK) *more = 0;
    return st;
}

/* ---- The access policy ---- */

static fv_status sq_set_policy(fvd_store *s, const unsigned char *b, size_t n, char *err,
                               size_t errcap)
{
    sq_store *q = (sq_store *)s;
    fv__policy p;
    if (b == NULL || n == 0 || n > FV_POLICY_BYTES_MAX || fv__policy_decode(b, n, &p) != 0)
        return fail(err, errcap, FV_EINVAL, "set policy: not an encoded access policy");
    if (q->in_push) return fail(err, errcap, FV_EINVAL, "set policy: a push is open");
    /* One statement: the write lock makes "higher than the stored one"
     * hold across processes. */
    sqlite3_stmt *a = stmt(q, S_POLICY_SET);
    sqlite3_bind_int64(a, 1, (sqlite3_int64)p.version);
    bind_blob(a, 2, b, n);
    int rc = sqlite3_step(a);
    done(a);
    if (rc != SQLITE_DONE) return sqfail(q, rc, "storing the policy", err, errcap);
    if (sqlite3_changes(q->db) == 0)
        return fail(err, errcap, FV_EEXIST, "the stored policy's version is %u or higher",
                    (unsigned)p.version);
    return FV_OK;
}

static fv_status sq_get_policy(fvd_store *s, fv__policy *out, int *found, char *err,
                               size_t errcap)
{
    sq_store *q = (sq_store *)s;
    if (out == NULL || found == NULL)
        return fail(err, errcap, FV_EINVAL, "get policy: bad argument");
    *found = 0;
    sqlite3_stmt *g = stmt(q, S_POLICY_GET);
    int rc = sqlite3_step(g);
    fv_status st = FV_OK;
    if (rc == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(g, 0);
        const void *b = sqlite3_column_blob(g, 1);
        int n = sqlite3_column_bytes(g, 1);
        if (sqlite3_column_type(g, 1) != SQLITE_BLOB || b == NULL || n <= 0 ||
            n > FV_POLICY_BYTES_MAX || fv__policy_decode(b, (size_t)n, out) != 0 ||
            (sqlite3_int64)out->version != v)
            st = fail(err, errcap, FV_EIO, "sqlite store: the stored policy is damaged");
        else *found = 1;
    } else if (rc != SQLITE_DONE) {
        st = sqfail(q, rc, "reading the policy", err, errcap);
    }
    done(g);
    return st;
}

static const fvd_store_ops sqlite_ops = {
    .backend = "sqlite",
    .close = sq_close,
    .add_user = sq_add_user,
    .enroll = sq_enroll,
    .get_device = sq_get_device,
    .touch_device = sq_touch_device,
    .revoke_device = sq_revoke_device,
    .list_devices = sq_list_devices,
    .update_user = sq_update_user,
    .use_nonce = sq_use_nonce,
    .push_begin = sq_push_begin,
    .get_version = sq_get_version,
    .append = sq_append,
    .set_batch = sq_set_batch,
    .push_end = sq_push_end,
    .pull = sq_pull,
    .head = sq_head,
    .get_value = sq_get_value,
    .get_value_before = sq_get_value_before,
    .row_fields = sq_row_fields,
    .customer_rows = sq_customer_rows,
    .set_admin_key = sq_set_admin_key,
    .get_admin_key = sq_get_admin_key,
    .put_team_key = sq_put_team_key,
    .current_key_version = sq_current_key_version,
    .list_team_keys = sq_list_team_keys,
    .put_grant = sq_put_grant,
    .list_grants = sq_list_grants,
    .set_policy = sq_set_policy,
    .get_policy = sq_get_policy,
};

/* ---- Open ---- */

/* SQL functions of this handle for the schema-4 back-fill: fvd_key(kind,
 * value) and fvd_customer(kind, value) are fvd_scope_key and
 * fvd_scope_customer of a text value (NULL for none, or another kind). */
static void sql_key(sqlite3_context *x, int argc, sqlite3_value **v)
{
    (void)argc;
    if (sqlite3_value_int64(v[0]) != FV__VAL_TEXT || sqlite3_value_type(v[1]) != SQLITE_TEXT)
        return; /* NULL */
    const char *t = (const char *)sqlite3_value_text(v[1]);
    size_t n = fvd_scope_key(t, (size_t)sqlite3_value_bytes(v[1]));
    if (n > 0) sqlite3_result_blob(x, t, (int)n, SQLITE_TRANSIENT);
}

static void sql_customer(sqlite3_context *x, int argc, sqlite3_value **v)
{
    (void)argc;
    unsigned char id[FV_ROWID_LEN];
    if (sqlite3_value_int64(v[0]) != FV__VAL_TEXT || sqlite3_value_type(v[1]) != SQLITE_TEXT)
        return;
    const char *t = (const char *)sqlite3_value_text(v[1]);
    if (fvd_scope_customer(t, (size_t)sqlite3_value_bytes(v[1]), id))
        sqlite3_result_blob(x, id, FV_ROWID_LEN, SQLITE_TRANSIENT);
}

/* In the schema transaction, after SCHEMA: bring a store of schema 1..3 to
 * 4, and make the scope indexes.  A newer store is left alone (refused
 * after the commit). */
static fv_status migrate(sq_store *q, char *err, size_t errcap)
{
    sqlite3_stmt *v = NULL;
    int rc = sqlite3_prepare_v2(q->db, "SELECT value FROM meta WHERE key = 'schema'", -1, &v,
                                NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(v);
    sqlite3_int64 version = rc == SQLITE_ROW ? sqlite3_column_int64(v, 0) : -1;
    sqlite3_finalize(v);
    if (rc != SQLITE_ROW) return sqfail(q, rc, "reading the schema version", err, errcap);
    if (version > SCHEMA_VERSION) return FV_OK;
    fv_status st = FV_OK;
    if (version < 4) {
        rc = sqlite3_create_function(q->db, "fvd_key", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                     NULL, sql_key, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_create_function(q->db, "fvd_customer", 2,
                                         SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_customer,
                                         NULL, NULL);
        if (rc != SQLITE_OK) return sqfail(q, rc, "upgrading the schema to 4", err, errcap);
        st = exec(q, MIGRATE_4, "upgrading the schema to 4 (the log's scope)", err, errcap);
    }
    if (st == FV_OK) st = exec(q, SCOPE_INDEXES, "indexing the log's scope", err, errcap);
    return st;
}

/* mkdir -p dir, mode 0700 for what it creates. */
static int make_dirs(const char *dir)
{
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (p == NULL) return -1;
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        p[i] = c;
    }
    free(p);
    struct stat sb;
    return stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) ? 0 : -1;
}

fv_status fvd_store_open_sqlite(const char *dir, fvd_store **out, char *err, size_t errcap)
{
    if (out == NULL) return fail(err, errcap, FV_EINVAL, "no output handle");
    *out = NULL;
    if (dir == NULL || dir[0] == '\0') return fail(err, errcap, FV_EINVAL, "no data directory");
    if (make_dirs(dir) != 0)
        return fail(err, errcap, FV_EIO, "cannot create the data directory %s: %s", dir,
                    strerror(errno));
    sq_store *q = calloc(1, sizeof *q);
    if (q == NULL) return fail(err, errcap, FV_ENOMEM, "out of memory");
    q->base.ops = &sqlite_ops;
    size_t plen = strlen(dir) + sizeof "/fvd.db";
    char *path = malloc(plen);
    if (path == NULL) {
        free(q);
        return fail(err, errcap, FV_ENOMEM, "out of memory");
    }
    snprintf(path, plen, "%s/fvd.db", dir);
    int rc = sqlite3_open_v2(path, &q->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    fv_status st = FV_OK;
    if (rc != SQLITE_OK) {
        st = fail(err, errcap, FV_EIO, "cannot open %s: %s", path,
                  q->db != NULL ? sqlite3_errmsg(q->db) : "out of memory");
    }
    free(path);
    if (st == FV_OK) {
        sqlite3_extended_result_codes(q->db, 1);
        sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
        st = exec(q, "PRAGMA journal_mode=WAL", "setting WAL mode", err, errcap);
    }
    if (st == FV_OK) st = exec(q, "PRAGMA synchronous=FULL", "setting synchronous", err, errcap);
    if (st == FV_OK) st = exec(q, "PRAGMA foreign_keys=ON", "setting foreign keys", err, errcap);
    /* Idempotent and in one write transaction: safe when several fvd
     * processes start on one file at once. */
    if (st == FV_OK) st = exec(q, "BEGIN IMMEDIATE", "creating the schema", err, errcap);
    if (st == FV_OK) {
        st = exec(q, SCHEMA, "creating the schema", err, errcap);
        if (st == FV_OK) st = migrate(q, err, errcap);
        if (st == FV_OK) st = exec(q, "COMMIT", "creating the schema", err, errcap);
        if (st != FV_OK) rollback(q);
    }
    if (st == FV_OK) {
        sqlite3_stmt *v = NULL;
        rc = sqlite3_prepare_v2(q->db, "SELECT value FROM meta WHERE key = 'schema'", -1, &v,
                                NULL);
        if (rc == SQLITE_OK) rc = sqlite3_step(v);
        if (rc != SQLITE_ROW) st = sqfail(q, rc, "reading the schema version", err, errcap);
        else if (sqlite3_column_int64(v, 0) != SCHEMA_VERSION)
            st = fail(err, errcap, FV_EIO, "the store's schema version is %lld; this fvd "
                      "knows %d", (long long)sqlite3_column_int64(v, 0), SCHEMA_VERSION);
        sqlite3_finalize(v);
    }
    for (int i = 0; st == FV_OK && i < S_COUNT; i++) {
        rc = sqlite3_prepare_v3(q->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL);
        if (rc != SQLITE_OK) st = sqfail(q, rc, "preparing a statement", err, errcap);
    }
    if (st != FV_OK) {
        sq_close(&q->base);
        return st;
    }
    *out = &q->base;
    return FV_OK;
}
