/*
 * store_pg.c - fvd's store of record on PostgreSQL (libpq), the backend for
 * several fvd processes sharing one database.  Implements store.h.
 *
 * Layout: helpers (messages, binary parameters and columns, running a
 * prepared statement, reconnecting), the schema, then the operations in
 * store.h's order, then fvd_store_open_pg.
 *
 * What it relies on:
 *  - Every parameter and result is sent in binary (bytea, int8, float8,
 *    text as raw UTF-8): no escaping, no parsing of text numbers.  Statements
 *    are prepared once per connection, on first use, with explicit types.
 *  - uint64 hlc, sequence numbers and device_seq are stored as int8; values
 *    above INT64_MAX are refused (FV_EINVAL) and a negative stored value is
 *    reported as damage (FV_EIO).  An hlc is ms << 16 | counter, below 2^63
 *    until the year 6429.
 *  - Schema creation runs in one transaction holding a transaction-level
 *    advisory lock, so processes starting together create it one after the
 *    other (CREATE TABLE IF NOT EXISTS alone races on the catalogue).
 *  - A push is one transaction holding another advisory lock
 *    (pg_advisory_xact_lock): pushes from every process serialise, and the
 *    log's sequence numbers are assigned under it (max + 1), so they are
 *    gapless and commit in order.  PostgreSQL makes a commit visible before
 *    it releases the transaction's locks, so a pull can never see seq n + 1
 *    without n.
 *  - A broken connection is re-established once per call, before retrying
 *    the call, except inside a push (the transaction died with it).
 *  - Field keys (schema 2): admin_key, team_keys (public facts only) and
 *    grants.  Grant sequence numbers are assigned like the log's, max + 1
 *    under an advisory lock in a transaction of their own, so a device
 *    reading its grants after seq n never misses one committed later with
 *    a smaller number.
 *  - The access policy (schema 3): one row of table policy (version,
 *    fv__policy_encode bytes), replaced only by a higher version in one
 *    upsert, so two admins racing cannot store a lower version over a
 *    higher one.  A device's role and team are read through its user
 *    (the devices table's own role and team columns are what the user had
 *    at enrolment, kept in step by update_user but never read).
 *  - The log's customer scope (schema 4, store.h): per entry cust, owner
 *    and team (scope keys as bytea) and, on a customer's owner/team
 *    changes, prev_owner and prev_team.  A change that moves nothing
 *    inherits its row's scope inside the append statement (one round
 *    trip); an owner, team or customer_id change reads the row's scope,
 *    appends, and rewrites the earlier entries it concerns (log_by_cust,
 *    log_by_field).  Pulls read the head, then select by log_by_owner /
 *    log_by_team (and the small prev_ indexes) up to it.
 *  - An older database (1: before field keys, 2: before the policy, 3:
 *    before the log's scope) is upgraded when opened, under the schema
 *    lock in one transaction: the new tables, the log's scope columns
 *    back-filled from the log (MIGRATE_4), their indexes, version 4.
 *  - Messages carry PostgreSQL's primary message and SQLSTATE, never its
 *    DETAIL (which quotes key values such as a code hash) nor the URL.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "store.h"

/* Advisory lock keys (ASCII "fvdSchm1" and "fvdPush1"). */
#define LOCK_SCHEMA "7383198948433358129" /* 0x6676645363686d31 */
#define LOCK_PUSH INT64_C(0x6676645075736831)
/* ASCII "fvdGrnt1": numbering grants */
#define LOCK_GRANT INT64_C(0x66766447726e7431)
#define SCHEMA_VERSION 4
#define MAX_PARAMS 18

/* Type oids of the parameters, from pg_type.h (stable since forever). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_TEXT 25
#define OID_FLOAT8 701

typedef enum stmt_id {
    ST_ADD_USER,
    ST_ENROLL,
    ST_GET_DEVICE,
    ST_TOUCH,
    ST_REVOKE,
    ST_LIST,
    ST_NONCE,
    ST_LOCK_PUSH,
    ST_HEAD,
    ST_GET_VERSION,
    ST_APPEND,
    ST_ROW_SCOPE,
    ST_CUST_KEYS,
    ST_SET_OWNER,
    ST_SET_TEAM,
    ST_SET_ROW_CUST,
    ST_SET_BATCH,
    ST_PULL_ALL,
    ST_PULL_OWNER,
    ST_PULL_TEAM,
    ST_USER_MATCHES,
    ST_ENROLLED_WITH,
    ST_GET_VALUE,
    ST_GET_VALUE_BEFORE,
    ST_ROW_FIELDS,
    ST_CUSTOMER_ROWS,
    ST_ADMIN_SET,
    ST_ADMIN_GET,
    ST_TKEY_ADD,
    ST_TKEY_CUR,
    ST_TKEY_LIST,
    ST_GRANT_ADD,
    ST_GRANT_LIST,
    ST_UPDATE_USER,
    ST_SET_POLICY,
    ST_GET_POLICY,
    ST_COUNT
} stmt_id;

#define DEVICE_COLS                                                                      \
    "id, public_key, name, user_name, role, team, revoked, last_batch_seq, "             \
    "last_batch_hash, enrolled_ms, last_seen_ms"
/* The same with the user's current role and team (a device's own columns
 * hold what its user had at enrolment). */
#define DEVICE_JOIN                                                                      \
    "d.id, d.public_key, d.name, d.user_name, u.role, u.team, d.revoked, "               \
    "d.last_batch_seq, d.last_batch_hash, d.enrolled_ms, d.last_seen_ms"                 \
    " FROM devices d JOIN users u ON u.name = d.user_name"

#define PULL_COLS                                                                        \
    "seq, tbl, row_id, field, kind, text_value, real_value, blob_value, hlc, base_hlc,"  \
    " device, device_seq"

typedef struct stmt {
    const char *name;
    const char *types; /* one letter a parameter: b bytea, t text, 8 int8, 2 int2, f float8 */
    const char *sql;
} stmt;

static const stmt stmts[ST_COUNT] = {
    [ST_ADD_USER] = {"fvd_add_user", "tttb",
                     "INSERT INTO users (name, role, team, code_hash) VALUES ($1, $2, $3, $4)"},
    /* One statement: the code is consumed only if the device row goes in
     * (a duplicate id fails the whole statement), and a second enrolment
     * racing on the same code waits for the first and then finds it used. */
    [ST_ENROLL] = {"fvd_enroll", "bbbt8",
                   "WITH u AS (UPDATE users SET code_used = true"
                   " WHERE code_hash = $1 AND NOT code_used RETURNING name, role, team)"
                   " INSERT INTO devices (id, public_key, name, user_name, role, team,"
                   " enrolled_ms) SELECT $2, $3, $4, u.name, u.role, u.team, $5 FROM u"
                   " RETURNING " DEVICE_COLS},
    [ST_GET_DEVICE] = {"fvd_get_device", "b", "SELECT " DEVICE_JOIN " WHERE d.id = $1"},
    /* GREATEST: several processes may touch the same device out of order. */
    [ST_TOUCH] = {"fvd_touch", "b8",
                  "UPDATE devices SET last_seen_ms = GREATEST(last_seen_ms, $2) WHERE id = $1"},
    [ST_REVOKE] = {"fvd_revoke", "b", "UPDATE devices SET revoked = true WHERE id = $1"},
    [ST_LIST] = {"fvd_list", "", "SELECT " DEVICE_JOIN " ORDER BY d.enrol_seq"},
    /* $4 is the cutoff (now - window).  One round trip: purge expired
     * entries (except this key, which the INSERT handles), then record the
     * nonce; an expired entry with the same key is refreshed rather than a
     * replay.  No row returned = a live entry exists = replay. */
    [ST_NONCE] = {"fvd_nonce", "bb88",
                  "WITH purge AS (DELETE FROM nonces WHERE seen_ms < $4"
                  " AND NOT (device = $1 AND nonce = $2))"
                  " INSERT INTO nonces (device, nonce, seen_ms) VALUES ($1, $2, $3)"
                  " ON CONFLICT (device, nonce) DO UPDATE SET seen_ms = EXCLUDED.seen_ms"
                  " WHERE nonces.seen_ms < $4 RETURNING 1"},
    [ST_LOCK_PUSH] = {"fvd_lock_push", "8", "SELECT 1 FROM pg_advisory_xact_lock($1)"},
    [ST_HEAD] = {"fvd_head", "", "SELECT COALESCE(MAX(seq), 0) FROM log"},
    [ST_GET_VALUE] = {"fvd_get_value", "tbt",
                      "SELECT seq, tbl, row_id, field, kind, text_value, real_value, blob_value,"
                      " hlc, base_hlc, device, device_seq FROM log"
                      " WHERE tbl = $1 AND row_id = $2 AND field = $3 ORDER BY seq DESC LIMIT 1"},
    [ST_GET_VALUE_BEFORE] = {"fvd_get_value_before", "tbt8",
                      "SELECT seq, tbl, row_id, field, kind, text_value, real_value, blob_value,"
                      " hlc, base_hlc, device, device_seq FROM log WHERE tbl = $1 AND row_id = $2"
                      " AND field = $3 AND seq < $4 ORDER BY seq DESC LIMIT 1"},
    [ST_ROW_FIELDS] = {"fvd_row_fields", "tb",
                      "SELECT seq, tbl, row_id, field, kind, text_value, real_value, blob_value,"
                      " hlc, base_hlc, device, device_seq FROM log l WHERE tbl = $1 AND row_id = $2"
                      " AND seq = (SELECT max(seq) FROM log m WHERE m.tbl = l.tbl"
                      " AND m.row_id = l.row_id AND m.field = l.field)"},
    [ST_CUSTOMER_ROWS] = {"fvd_customer_rows", "t",
                      "SELECT DISTINCT tbl, row_id FROM log WHERE field = 'customer_id'"
                      " AND text_value = $1"},
    [ST_GET_VERSION] = {"fvd_get_version", "tbt",
                        "SELECT hlc, device, base_hlc FROM versions"
                        " WHERE tbl = $1 AND row_id = $2 AND field = $3"},
    /* $18 true: the entry inherits its row's scope (cust $13 if given),
     * in this one round trip - a change that moves nothing, the usual
     * case; false: $13..$17 are the scope (see pg_append). */
    [ST_APPEND] = {"fvd_append", "8tbt2tfb88b8bbbbbo",
                   "WITH cur AS (SELECT cust, owner, team FROM log"
                   " WHERE $18 AND tbl = $2 AND row_id = $3 LIMIT 1),"
                   " l AS (INSERT INTO log (seq, tbl, row_id, field, kind, text_value,"
                   " real_value, blob_value, hlc, base_hlc, device, device_seq, cust, owner,"
                   " team, prev_owner, prev_team)"
                   " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
                   " CASE WHEN $18 THEN COALESCE($13, (SELECT cust FROM cur)) ELSE $13 END,"
                   " CASE WHEN $18 THEN (SELECT owner FROM cur) ELSE $14 END,"
                   " CASE WHEN $18 THEN (SELECT team FROM cur) ELSE $15 END, $16, $17)"
                   " INSERT INTO versions (tbl, row_id, field, hlc, device, base_hlc)"
                   " VALUES ($2, $3, $4, $9, $11, $10)"
                   " ON CONFLICT (tbl, row_id, field) DO UPDATE SET hlc = EXCLUDED.hlc,"
                   " device = EXCLUDED.device, base_hlc = EXCLUDED.base_hlc"},
    /* Every entry of a row carries the row's current scope: any one will do. */
    [ST_ROW_SCOPE] = {"fvd_row_scope", "tb",
                      "SELECT cust, owner, team FROM log WHERE tbl = $1 AND row_id = $2 LIMIT 1"},
    [ST_CUST_KEYS] = {"fvd_cust_keys", "b", "SELECT owner, team FROM log WHERE cust = $1 LIMIT 1"},
    [ST_SET_OWNER] = {"fvd_set_owner", "bb",
                      "UPDATE log SET owner = $2 WHERE cust = $1 AND owner IS DISTINCT FROM $2"},
    [ST_SET_TEAM] = {"fvd_set_team", "bb",
                     "UPDATE log SET team = $2 WHERE cust = $1 AND team IS DISTINCT FROM $2"},
    [ST_SET_ROW_CUST] = {"fvd_set_row_cust", "tbbbb",
                         "UPDATE log SET cust = $3, owner = $4, team = $5"
                         " WHERE tbl = $1 AND row_id = $2"},
    [ST_SET_BATCH] = {"fvd_set_batch", "b8b",
                      "UPDATE devices SET last_batch_seq = $2, last_batch_hash = $3"
                      " WHERE id = $1"},
    /* $1 cursor, $2 head, $3 the scope key, last the limit.  The second
     * half of a scoped pull: a customer's owner/team changes that moved it
     * out of the user's scope (not given twice). */
    [ST_PULL_ALL] = {"fvd_pull_all", "888",
                     "SELECT " PULL_COLS " FROM log WHERE seq > $1 AND seq <= $2"
                     " ORDER BY seq LIMIT $3"},
    [ST_PULL_OWNER] = {"fvd_pull_owner", "88b8",
                       "(SELECT " PULL_COLS " FROM log WHERE seq > $1 AND seq <= $2"
                       " AND owner = $3 ORDER BY seq LIMIT $4) UNION ALL (SELECT " PULL_COLS
                       " FROM log WHERE seq > $1 AND seq <= $2 AND prev_owner = $3"
                       " AND owner IS DISTINCT FROM $3 ORDER BY seq LIMIT $4)"
                       " ORDER BY seq LIMIT $4"},
    [ST_PULL_TEAM] = {"fvd_pull_team", "88b8",
                      "(SELECT " PULL_COLS " FROM log WHERE seq > $1 AND seq <= $2"
                      " AND team = $3 ORDER BY seq LIMIT $4) UNION ALL (SELECT " PULL_COLS
                      " FROM log WHERE seq > $1 AND seq <= $2 AND prev_team = $3"
                      " AND team IS DISTINCT FROM $3 ORDER BY seq LIMIT $4)"
                      " ORDER BY seq LIMIT $4"},
    /* For a retry after a lost connection (see retry_add_user / retry_enroll). */
    [ST_USER_MATCHES] = {"fvd_user_matches", "tttb",
                         "SELECT 1 FROM users WHERE name = $1 AND role = $2 AND team = $3"
                         " AND code_hash = $4"},
    [ST_ENROLLED_WITH] = {"fvd_enrolled_with", "bbb",
                          "SELECT d.id FROM devices d JOIN users u ON u.name = d.user_name"
                          " WHERE d.id = $1 AND d.public_key = $2 AND u.code_hash = $3"
                          " AND u.code_used"},
    [ST_ADMIN_SET] = {"fvd_admin_set", "b",
                      "INSERT INTO admin_key (id, public_key) VALUES (1, $1)"
                      " ON CONFLICT (id) DO NOTHING"},
    [ST_ADMIN_GET] = {"fvd_admin_get", "", "SELECT public_key FROM admin_key WHERE id = 1"},
    [ST_TKEY_ADD] = {"fvd_tkey_add", "t28b8",
                     "INSERT INTO team_keys (team, cls, version, key_id, created_ms)"
                     " VALUES ($1, $2, $3, $4, $5)"},
    [ST_TKEY_CUR] = {"fvd_tkey_cur", "t2",
                     "SELECT COALESCE(MAX(version), 0)::int8 FROM team_keys"
                     " WHERE team = $1 AND cls = $2"},
    /* COLLATE "C": the same order as SQLite's (bytes), whatever the
     * database's collation. */
    [ST_TKEY_LIST] = {"fvd_tkey_list", "",
                      "SELECT k.team, k.cls, k.version, k.key_id, k.created_ms,"
                      " (SELECT count(*) FROM grants g WHERE g.team = k.team AND g.cls = k.cls"
                      " AND g.version = k.version) FROM team_keys k"
                      " ORDER BY k.team COLLATE \"C\", k.cls, k.version"},
    /* Inside a transaction holding LOCK_GRANT (see pg_put_grant). */
    [ST_GRANT_ADD] = {"fvd_grant_add", "bt28bb",
                      "INSERT INTO grants (seq, device, team, cls, version, sealed, sig)"
                      " SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3, $4, $5, $6 FROM grants"
                      " ON CONFLICT (device, team, cls, version) DO NOTHING RETURNING seq"},
    [ST_GRANT_LIST] = {"fvd_grant_list", "b88",
                       "SELECT seq, device, team, cls, version, sealed, sig FROM grants"
                       " WHERE device = $1 AND seq > $2 ORDER BY seq LIMIT $3"},
    /* $3 NULL: the team stays.  The devices' copies follow in the same
     * statement. */
    [ST_UPDATE_USER] = {"fvd_update_user", "ttt",
                        "WITH u AS (UPDATE users SET role = $2, team = COALESCE($3, team)"
                        " WHERE name = $1 RETURNING name, role, team),"
                        " d AS (UPDATE devices SET role = u.role, team = u.team FROM u"
                        " WHERE devices.user_name = u.name)"
                        " SELECT name, role, team FROM u"},
    /* Only a higher version replaces the row: no row back = refused. */
    [ST_SET_POLICY] = {"fvd_set_policy", "8b",
                       "INSERT INTO policy (id, version, body) VALUES (1, $1, $2)"
                       " ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version,"
                       " body = EXCLUDED.body WHERE policy.version < EXCLUDED.version"
                       " RETURNING version"},
    [ST_GET_POLICY] = {"fvd_get_policy", "", "SELECT version, body FROM policy WHERE id = 1"},
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS fvd_meta ("
    " key text PRIMARY KEY,"
    " value int8 NOT NULL);"
    "CREATE TABLE IF NOT EXISTS users ("
    " name text PRIMARY KEY,"
    " role text NOT NULL,"
    " team text NOT NULL,"
    " code_hash bytea NOT NULL UNIQUE,"
    " code_used boolean NOT NULL DEFAULT false);"
    "CREATE TABLE IF NOT EXISTS devices ("
    " id bytea PRIMARY KEY CHECK (length(id) = 16),"
    " public_key bytea NOT NULL CHECK (length(public_key) = 32),"
    " name text NOT NULL,"
    " user_name text NOT NULL REFERENCES users (name),"
    " role text NOT NULL,"
    " team text NOT NULL,"
    " revoked boolean NOT NULL DEFAULT false,"
    " last_batch_seq int8 NOT NULL DEFAULT 0,"
    " last_batch_hash bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex'),"
    " enrolled_ms int8 NOT NULL,"
    " last_seen_ms int8 NOT NULL DEFAULT 0,"
    " enrol_seq int8 GENERATED ALWAYS AS IDENTITY UNIQUE);"
    "CREATE TABLE IF NOT EXISTS nonces ("
    " device bytea NOT NULL,"
    " nonce bytea NOT NULL,"
    " seen_ms int8 NOT NULL,"
    " PRIMARY KEY (device, nonce));"
    "CREATE INDEX IF NOT EXISTS nonces_seen_ms ON nonces (seen_ms);"
    "CREATE TABLE IF NOT EXISTS versions ("
    " tbl text NOT NULL,"
    " row_id bytea NOT NULL,"
    " field text NOT NULL,"
    " hlc int8 NOT NULL,"
    " device bytea NOT NULL,"
    " base_hlc int8 NOT NULL,"
    " PRIMARY KEY (tbl, row_id, field));"
    "CREATE TABLE IF NOT EXISTS log ("
    " seq int8 PRIMARY KEY,"
    " tbl text NOT NULL,"
    " row_id bytea NOT NULL,"
    " field text NOT NULL,"
    " kind int2 NOT NULL CHECK (kind BETWEEN 0 AND 3),"
    " text_value text,"
    " real_value float8,"
    " blob_value bytea,"
    " hlc int8 NOT NULL,"
    " base_hlc int8 NOT NULL,"
    " device bytea NOT NULL,"
    " device_seq int8 NOT NULL,"
    /* schema 4: the entry's customer scope (store.h), scope keys as bytea;
     * an older database gets them from MIGRATE_4 */
    " cust bytea, owner bytea, team bytea, prev_owner bytea, prev_team bytea);"
    "CREATE INDEX IF NOT EXISTS log_by_field ON log (tbl, row_id, field, seq);"
    "CREATE INDEX IF NOT EXISTS log_by_customer ON log (text_value) WHERE field = 'customer_id';"
    /* schema 2: field keys */
    "CREATE TABLE IF NOT EXISTS admin_key ("
    " id int2 PRIMARY KEY CHECK (id = 1),"
    " public_key bytea NOT NULL CHECK (length(public_key) = 32));"
    "CREATE TABLE IF NOT EXISTS team_keys ("
    " team text NOT NULL,"
    " cls int2 NOT NULL CHECK (cls IN (1, 2)),"
    " version int8 NOT NULL CHECK (version BETWEEN 1 AND 4294967295),"
    " key_id bytea NOT NULL CHECK (length(key_id) = 8),"
    " created_ms int8 NOT NULL,"
    " PRIMARY KEY (team, cls, version));"
    "CREATE TABLE IF NOT EXISTS grants ("
    " seq int8 PRIMARY KEY,"
    " device bytea NOT NULL REFERENCES devices (id),"
    " team text NOT NULL,"
    " cls int2 NOT NULL,"
    " version int8 NOT NULL,"
    " sealed bytea NOT NULL CHECK (length(sealed) = 80),"
    " sig bytea NOT NULL CHECK (length(sig) = 64),"
    " UNIQUE (device, team, cls, version),"
    " FOREIGN KEY (team, cls, version) REFERENCES team_keys (team, cls, version));"
    "CREATE INDEX IF NOT EXISTS grants_by_device ON grants (device, seq);"
    "CREATE INDEX IF NOT EXISTS grants_by_key ON grants (team, cls, version);"
    /* schema 3: the access policy in force */
    "CREATE TABLE IF NOT EXISTS policy ("
    " id int2 PRIMARY KEY CHECK (id = 1),"
    " version int8 NOT NULL CHECK (version BETWEEN 1 AND 4294967295),"
    " body bytea NOT NULL);"
    "INSERT INTO fvd_meta (key, value) VALUES ('schema_version', 4)"
    " ON CONFLICT (key) DO NOTHING;"
    /* an older database gets the tables above and becomes version 3 */
    "UPDATE fvd_meta SET value = 3 WHERE key = 'schema_version' AND value IN (1, 2);";

/* Schema 3 -> 4: back-fill the log's scope columns from the log itself by
 * the rules append follows (server/store_scope.c, written in SQL: a scope
 * key is the text's first FVD_NAME_MAX bytes, none if empty; a customer_id
 * names a customer if its first 36 characters are a UUID), then index
 * them.  Under the schema lock, in the transaction of schema_sql. */
#define PG_KEY(v) "NULLIF(substring(convert_to(" v ", 'UTF8') from 1 for 64), ''::bytea)"
#define PG_UUID "'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'"
_Static_assert(FVD_NAME_MAX == 64 && FV_ID_LEN == 36, "MIGRATE_4 spells these out");
static const char MIGRATE_4[] =
    "ALTER TABLE log ADD COLUMN IF NOT EXISTS cust bytea,"
    " ADD COLUMN IF NOT EXISTS owner bytea, ADD COLUMN IF NOT EXISTS team bytea,"
    " ADD COLUMN IF NOT EXISTS prev_owner bytea, ADD COLUMN IF NOT EXISTS prev_team bytea;"
    "UPDATE log SET cust = row_id WHERE tbl = 'customer';"
    "UPDATE log l SET cust = c.id FROM (SELECT DISTINCT ON (tbl, row_id) tbl, row_id,"
    "  CASE WHEN kind = 1 AND substr(text_value, 1, 36) ~ " PG_UUID
    "  THEN decode(replace(substr(text_value, 1, 36), '-', ''), 'hex') END AS id"
    "  FROM log WHERE field = 'customer_id' AND tbl <> 'customer'"
    "  ORDER BY tbl, row_id, seq DESC) c"
    "  WHERE l.tbl = c.tbl AND l.row_id = c.row_id AND c.id IS NOT NULL;"
    "UPDATE log l SET owner = k.owner, team = k.team FROM (SELECT row_id,"
    "  (SELECT CASE WHEN m.kind = 1 THEN " PG_KEY("m.text_value") " END FROM log m"
    "   WHERE m.tbl = 'customer' AND m.row_id = c.row_id AND m.field = 'owner'"
    "   ORDER BY m.seq DESC LIMIT 1) AS owner,"
    "  (SELECT CASE WHEN m.kind = 1 THEN " PG_KEY("m.text_value") " END FROM log m"
    "   WHERE m.tbl = 'customer' AND m.row_id = c.row_id AND m.field = 'team'"
    "   ORDER BY m.seq DESC LIMIT 1) AS team"
    "  FROM (SELECT DISTINCT row_id FROM log WHERE tbl = 'customer') c) k"
    "  WHERE l.cust = k.row_id;"
    "UPDATE log l SET"
    "  prev_owner = (SELECT CASE WHEN m.kind = 1 THEN " PG_KEY("m.text_value") " END"
    "   FROM log m WHERE m.tbl = 'customer' AND m.row_id = l.row_id AND m.field = 'owner'"
    "   AND m.seq < l.seq ORDER BY m.seq DESC LIMIT 1),"
    "  prev_team = (SELECT CASE WHEN m.kind = 1 THEN " PG_KEY("m.text_value") " END"
    "   FROM log m WHERE m.tbl = 'customer' AND m.row_id = l.row_id AND m.field = 'team'"
    "   AND m.seq < l.seq ORDER BY m.seq DESC LIMIT 1)"
    "  WHERE l.tbl = 'customer' AND l.field IN ('owner', 'team');"
    "UPDATE fvd_meta SET value = 4 WHERE key = 'schema_version';";

/* The indexes pulls select by (schema 4), made after a back-fill. */
static const char scope_indexes_sql[] =
    "CREATE INDEX IF NOT EXISTS log_by_cust ON log (cust) WHERE cust IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS log_by_owner ON log (owner, seq) WHERE owner IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS log_by_team ON log (team, seq) WHERE team IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS log_by_prev_owner ON log (prev_owner, seq)"
    " WHERE prev_owner IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS log_by_prev_team ON log (prev_team, seq)"
    " WHERE prev_team IS NOT NULL;";

typedef struct pg_store {
    fvd_store base;
    PGconn *conn;
    char *url;          /* kept for reconnecting; wiped on close (may hold a password) */
    uint64_t prepared;  /* bit per stmt_id prepared on this connection */
    int in_push;
    uint64_t next_seq;  /* inside a push: the sequence number append gives next */
    fv__change row;     /* pull's scratch change (large: kept off the stack) */
} pg_store;

_Static_assert(ST_COUNT <= 64, "prepared is a 64-bit mask");

/* ---- messages ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errcap,
                                                          const char *fmt, ...)
{
    if (err == NULL || errcap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

/* libpq's messages end in a newline and may span lines: one line, trimmed. */
static void one_line(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    int space = 0;
    if (src == NULL) src = "";
    for (; *src && n + 1 < cap; src++) {
        if (*src == '\n' || *src == '\t' || *src == '\r' || *src == ' ') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < cap) dst[n++] = ' ';
        space = 0;
        dst[n++] = *src;
    }
    dst[n] = '\0';
}

static const char *conn_msg(const pg_store *s, char *buf, size_t cap)
{
    one_line(buf, cap, s->conn ? PQerrorMessage(s->conn) : "no connection");
    return buf;
}

static int conn_broken(const pg_store *s)
{
    return s->conn == NULL || PQstatus(s->conn) == CONNECTION_BAD;
}

/* Map a failed result (r may be NULL) to a status and a message. */
static fv_status fail(pg_store *s, const PGresult *r, const char *what, char *err,
                      size_t errcap)
{
    char msg[512];
    if (conn_broken(s)) {
        set_err(err, errcap, "%s: connection to PostgreSQL lost: %s", what,
                conn_msg(s, msg, sizeof msg));
        return FV_EBUSY;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary != NULL)
        one_line(msg, sizeof msg, primary);
    else
        conn_msg(s, msg, sizeof msg);
    set_err(err, errcap, "%s: PostgreSQL: %s (SQLSTATE %s)", what, msg, state ? state : "none");
    if (state == NULL) return FV_EIO;
    if (strcmp(state, "23505") == 0) return FV_EEXIST;
    if (strcmp(state, "23503") == 0) return FV_ENOTFOUND; /* a reference to nothing */
    if (strncmp(state, "22", 2) == 0) return FV_EINVAL;  /* data exception (bad UTF-8...) */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0) return FV_EBUSY;
    return FV_EIO;
}

/* ---- binary parameters and columns ---------------------------------------- */

typedef struct params {
    int n;
    const char *v[MAX_PARAMS];
    int len[MAX_PARAMS];
    int fmt[MAX_PARAMS];
    unsigned char num[MAX_PARAMS][8];
} params;

static void put_be(unsigned char *b, uint64_t x, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        b[i] = (unsigned char)(x & 0xffu);
        x >>= 8;
    }
}

static uint64_t get_be(const unsigned char *b, int n)
{
    uint64_t x = 0;
    for (int i = 0; i < n; i++) x = x << 8 | b[i];
    return x;
}

/* Bytes (bytea, or text as raw UTF-8).  len is bounded by the callers. */
static void p_bytes(params *p, const void *b, size_t len)
{
    p->v[p->n] = b ? (const char *)b : "";
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1;
    p->n++;
}

static void p_text(params *p, const char *s)
{
    p_bytes(p, s, strlen(s));
}

static void p_int(params *p, uint64_t bits, int width)
{
    put_be(p->num[p->n], bits, width);
    p_bytes(p, p->num[p->n], (size_t)width);
}

static void p_i8(params *p, int64_t x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    p_int(p, u, 8);
}

static void p_f8(params *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    p_int(p, u, 8);
}

static void p_null(params *p)
{
    p->v[p->n] = NULL;
    p->len[p->n] = 0;
    p->fmt[p->n] = 1;
    p->n++;
}

/* uint64 to int8: refuse what does not fit (see the file comment). */
static int to_i8(uint64_t u, int64_t *out)
{
    if (u > (uint64_t)INT64_MAX) return -1;
    *out = (int64_t)u;
    return 0;
}

/* Column readers: 0 on success, -1 if NULL or of an unexpected size. */
static int c_i8(const PGresult *r, int row, int col, int64_t *out)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8) return -1;
    uint64_t u = get_be((const unsigned char *)PQgetvalue(r, row, col), 8);
    memcpy(out, &u, sizeof u);
    return 0;
}

static int c_u64(const PGresult *r, int row, int col, uint64_t *out)
{
    int64_t x;
    if (c_i8(r, row, col, &x) != 0 || x < 0) return -1;
    *out = (uint64_t)x;
    return 0;
}

static int c_f8(const PGresult *r, int row, int col, double *out)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8) return -1;
    uint64_t u = get_be((const unsigned char *)PQgetvalue(r, row, col), 8);
    memcpy(out, &u, sizeof u);
    return 0;
}

static int c_i2(const PGresult *r, int row, int col, int *out)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 2) return -1;
    uint64_t u = get_be((const unsigned char *)PQgetvalue(r, row, col), 2);
    *out = (int)(int16_t)(uint16_t)u;
    return 0;
}

static int c_bool(const PGresult *r, int row, int col, int *out)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 1) return -1;
    *out = PQgetvalue(r, row, col)[0] != 0;
    return 0;
}

static int c_fixed(const PGresult *r, int row, int col, unsigned char *out, size_t n)
{
    if (PQgetisnull(r, row, col) || (size_t)PQgetlength(r, row, col) != n) return -1;
    memcpy(out, PQgetvalue(r, row, col), n);
    return 0;
}

/* Bytes into out (cap bytes, NUL added after them); *len gets their count. */
static int c_bytes(const PGresult *r, int row, int col, void *out, size_t cap, size_t *len)
{
    if (PQgetisnull(r, row, col)) return -1;
    size_t n = (size_t)PQgetlength(r, row, col);
    if (n >= cap) return -1;
    memcpy(out, PQgetvalue(r, row, col), n);
    ((char *)out)[n] = '\0';
    if (len) *len = n;
    return 0;
}

static int c_text(const PGresult *r, int row, int col, char *out, size_t cap)
{
    return c_bytes(r, row, col, out, cap, NULL);
}

/* ---- statements and the connection ---------------------------------------- */

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like: the library never prints */
}

/* A plain command (BEGIN, COMMIT...): its command tag into tag. */
static fv_status run_cmd(pg_store *s, const char *sql, char *tag, size_t tagcap,
                         const char *what, char *err, size_t errcap)
{
    PGresult *r = PQexec(s->conn, sql);
    fv_status st = FV_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        st = fail(s, r, what, err, errcap);
    else if (tag)
        snprintf(tag, tagcap, "%s", PQcmdStatus(r));
    PQclear(r);
    return st;
}

static fv_status connect_db(pg_store *s, char *err, size_t errcap)
{
    char msg[512];
    /* Entries before dbname are defaults the URL may override; the one
     * after it is forced (we send and expect UTF-8). */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname",
                                "client_encoding", NULL};
    const char *const vals[] = {"10", "fvd", s->url, "UTF8", NULL};
    if (s->conn) PQfinish(s->conn);
    s->prepared = 0;
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (s->conn == NULL) {
        set_err(err, errcap, "PostgreSQL: out of memory");
        return FV_ENOMEM;
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        set_err(err, errcap, "cannot connect to PostgreSQL: %s", conn_msg(s, msg, sizeof msg));
        PQfinish(s->conn);
        s->conn = NULL;
        return FV_EBUSY;
    }
    PQsetNoticeProcessor(s->conn, quiet_notices, NULL);
    if (PQserverVersion(s->conn) < 100000) {
        set_err(err, errcap, "PostgreSQL %d is too old: fvd needs 10 or later",
                PQserverVersion(s->conn) / 10000);
        PQfinish(s->conn);
        s->conn = NULL;
        return FV_EINVAL;
    }
    /* A push holds the lock every process's pushes wait for: if its fvd
     * hangs mid-push, the server ends that session after a minute rather
     * than let it block all pushes until TCP notices.  A SET rather than a
     * startup option, which connection poolers refuse. */
    fv_status st = run_cmd(s, "SET idle_in_transaction_session_timeout = 60000", NULL, 0,
                           "connecting", err, errcap);
    if (st != FV_OK) {
        PQfinish(s->conn);
        s->conn = NULL;
    }
    return st;
}

/* Before a call: reconnect if the connection is known to be broken.
 * Inside a push the transaction died with the connection: say so. */
static fv_status ensure_conn(pg_store *s, char *err, size_t errcap)
{
    if (!conn_broken(s)) return FV_OK;
    if (s->in_push) {
        set_err(err, errcap, "connection to PostgreSQL lost during a push (rolled back)");
        return FV_EBUSY;
    }
    return connect_db(s, err, errcap);
}

/* After a call: retry once if it failed because the connection broke (the
 * next ensure_conn reconnects).  Never inside a push. */
static int retry_after(const pg_store *s, fv_status st, int *attempt)
{
    if (st != FV_EBUSY || s->in_push || *attempt > 0 || !conn_broken(s)) return 0;
    (*attempt)++;
    return 1;
}

static fv_status prepare(pg_store *s, stmt_id id, const char *what, char *err, size_t errcap)
{
    if (s->prepared & (UINT64_C(1) << id)) return FV_OK;
    const stmt *t = &stmts[id];
    Oid types[MAX_PARAMS];
    int n = (int)strlen(t->types);
    for (int i = 0; i < n; i++) {
        switch (t->types[i]) {
        case 'b': types[i] = OID_BYTEA; break;
        case 't': types[i] = OID_TEXT; break;
        case '8': types[i] = OID_INT8; break;
        case '2': types[i] = OID_INT2; break;
        case 'f': types[i] = OID_FLOAT8; break;
        default: types[i] = OID_BOOL; break;
        }
    }
    PGresult *r = PQprepare(s->conn, t->name, t->sql, n, types);
    fv_status st = FV_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        st = fail(s, r, what, err, errcap);
    else
        s->prepared |= UINT64_C(1) << id;
    PQclear(r);
    return st;
}

/* Run statement id with p; the result (tuples in binary) or NULL with *st
 * and err set. */
static PGresult *run_stmt(pg_store *s, stmt_id id, const params *p, fv_status *st,
                          const char *what, char *err, size_t errcap)
{
    *st = prepare(s, id, what, err, errcap);
    if (*st != FV_OK) return NULL;
    PGresult *r = PQexecPrepared(s->conn, stmts[id].name, p->n, p->v, p->len, p->fmt, 1);
    ExecStatusType rs = PQresultStatus(r);
    if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) return r;
    *st = fail(s, r, what, err, errcap);
    PQclear(r);
    return NULL;
}

/* Create the schema if missing, one process at a time; refuse a newer one. */
static fv_status create_schema(pg_store *s, char *err, size_t errcap)
{
    const char *what = "creating the schema";
    fv_status st = run_cmd(s, "BEGIN", NULL, 0, what, err, errcap);
    if (st != FV_OK) return st;
    st = run_cmd(s, "SELECT pg_advisory_xact_lock(" LOCK_SCHEMA ")", NULL, 0, what, err, errcap);
    if (st == FV_OK) st = run_cmd(s, schema_sql, NULL, 0, what, err, errcap);
    long version = 0;
    if (st == FV_OK) {
        PGresult *r = PQexec(s->conn, "SELECT value FROM fvd_meta WHERE key = 'schema_version'");
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            st = fail(s, r, what, err, errcap);
        } else if (PQntuples(r) != 1 || (version = atol(PQgetvalue(r, 0, 0))) > SCHEMA_VERSION) {
            set_err(err, errcap,
                    "the database's fvd schema (version %s) is newer than this fvd's (%d)",
                    PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "?", SCHEMA_VERSION);
            st = FV_EINVAL;
        }
        PQclear(r);
    }
    if (st == FV_OK && version < 4)
        st = run_cmd(s, MIGRATE_4, NULL, 0, "upgrading the schema to 4 (the log's scope)", err,
                     errcap);
    if (st == FV_OK) st = run_cmd(s, scope_indexes_sql, NULL, 0, what, err, errcap);
    if (st == FV_OK) return run_cmd(s, "COMMIT", NULL, 0, what, err, errcap);
    if (!conn_broken(s)) PQclear(PQexec(s->conn, "ROLLBACK"));
    return st;
}

/* ---- argument checks ------------------------------------------------------ */

/* A NUL-terminated string of at most max bytes. */
static int bounded(const char *str, size_t max)
{
    return str != NULL && memchr(str, '\0', max + 1) != NULL;
}

static fv_status check_change(const fv__change *c, int64_t v[3], char *err, size_t errcap)
{
    if (c == NULL || !bounded(c->table, FV_NAME_MAX) || !bounded(c->field, FV_NAME_MAX)) {
        set_err(err, errcap, "change: bad table or field name");
        return FV_EINVAL;
    }
    if (to_i8(c->hlc, &v[0]) || to_i8(c->base_hlc, &v[1]) || to_i8(c->device_seq, &v[2])) {
        set_err(err, errcap, "change %s.%s: hlc or sequence beyond 2^63", c->table, c->field);
        return FV_EINVAL;
    }
    return FV_OK;
}

/* ---- devices --------------------------------------------------------------- */

static int read_device(const PGresult *r, int row, fvd_device *d)
{
    memset(d, 0, sizeof *d);
    uint64_t seq;
    if (c_fixed(r, row, 0, d->id, sizeof d->id) || c_fixed(r, row, 1, d->public_key, 32) ||
        c_text(r, row, 2, d->name, sizeof d->name) || c_text(r, row, 3, d->user, sizeof d->user) ||
        c_text(r, row, 4, d->role, sizeof d->role) || c_text(r, row, 5, d->team, sizeof d->team) ||
        c_bool(r, row, 6, &d->revoked) || c_u64(r, row, 7, &seq) ||
        c_fixed(r, row, 8, d->last_batch_hash, 32) || c_i8(r, row, 9, &d->enrolled_ms) ||
        c_i8(r, row, 10, &d->last_seen_ms))
        return -1;
    d->last_batch_seq = seq;
    return 0;
}

static fv_status device_row(const PGresult *r, fvd_device *out, const char *what, char *err,
                            size_t errcap)
{
    if (PQntuples(r) != 1) {
        set_err(err, errcap, "%s: no such device", what);
        return FV_ENOTFOUND;
    }
    if (read_device(r, 0, out) != 0) {
        set_err(err, errcap, "%s: malformed device row in PostgreSQL", what);
        return FV_EIO;
    }
    return FV_OK;
}

static fv_status add_user_once(pg_store *s, const fvd_user *u, const unsigned char hash[32],
                               int retry, char *err, size_t errcap)
{
    params p = {0};
    p_text(&p, u->name);
    p_text(&p, u->role);
    p_text(&p, u->team);
    p_bytes(&p, hash, 32);
    fv_status st;
    PGresult *r = run_stmt(s, ST_ADD_USER, &p, &st, "add user", err, errcap);
    if (r != NULL) {
        PQclear(r);
        return FV_OK;
    }
    if (st == FV_EEXIST && retry) {
        /* Our first attempt may have committed before the connection broke:
         * the very same user is not a conflict. */
        fv_status st2;
        PGresult *m = run_stmt(s, ST_USER_MATCHES, &p, &st2, "add user", err, errcap);
        int same = m != NULL && PQntuples(m) == 1;
        PQclear(m);
        if (same) return FV_OK;
    }
    if (st == FV_EEXIST)
        set_err(err, errcap, "add user \"%s\": the name (or the enrolment code) is taken", u->name);
    return st;
}

static fv_status pg_add_user(fvd_store *base, const fvd_user *u, const unsigned char code_hash[32],
                             char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (u == NULL || code_hash == NULL || !bounded(u->name, FVD_NAME_MAX) || u->name[0] == '\0' ||
        !bounded(u->role, FVD_ROLE_MAX) || !bounded(u->team, FVD_NAME_MAX)) {
        set_err(err, errcap, "add user: missing or overlong name, role or team");
        return FV_EINVAL;
    }
    fv_status st;
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st == FV_OK) st = add_user_once(s, u, code_hash, attempt, err, errcap);
    } while (retry_after(s, st, &attempt));
    return st;
}

static fv_status enroll_once(pg_store *s, const unsigned char hash[32],
                             const unsigned char id[FV_DEVICE_LEN], const unsigned char pk[32],
                             const char *name, int64_t now_ms, fvd_device *out, int retry,
                             char *err, size_t errcap)
{
    params p = {0};
    p_bytes(&p, hash, 32);
    p_bytes(&p, id, FV_DEVICE_LEN);
    p_bytes(&p, pk, 32);
    p_text(&p, name);
    p_i8(&p, now_ms);
    fv_status st;
    PGresult *r = run_stmt(s, ST_ENROLL, &p, &st, "enrol", err, errcap);
    if (r != NULL) {
        if (PQntuples(r) == 1) {
            st = device_row(r, out, "enrol", err, errcap);
        } else {
            set_err(err, errcap, "enrol: unknown or already used enrolment code");
            st = FV_ENOTFOUND;
        }
        PQclear(r);
    } else if (st == FV_EEXIST) {
        set_err(err, errcap, "enrol: the device id is already enrolled");
    }
    if ((st == FV_ENOTFOUND || st == FV_EEXIST) && retry) {
        /* The first attempt may have committed before the connection broke:
         * this device, with this key, enrolled with this code, is ours. */
        params q = {0};
        p_bytes(&q, id, FV_DEVICE_LEN);
        p_bytes(&q, pk, 32);
        p_bytes(&q, hash, 32);
        fv_status st2;
        PGresult *m = run_stmt(s, ST_ENROLLED_WITH, &q, &st2, "enrol", err, errcap);
        int ours = m != NULL && PQntuples(m) == 1;
        PQclear(m);
        if (ours) {
            params g = {0};
            p_bytes(&g, id, FV_DEVICE_LEN);
            PGresult *d = run_stmt(s, ST_GET_DEVICE, &g, &st, "enrol", err, errcap);
            if (d != NULL) st = device_row(d, out, "enrol", err, errcap);
            PQclear(d);
        }
    }
    return st;
}

static fv_status pg_enroll(fvd_store *base, const unsigned char code_hash[32],
                           const unsigned char id[FV_DEVICE_LEN], const unsigned char public_key[32],
                           const char *device_name, int64_t now_ms, fvd_device *out, char *err,
                           size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (device_name == NULL) device_name = "";
    if (code_hash == NULL || id == NULL || public_key == NULL || out == NULL ||
        !bounded(device_name, FVD_NAME_MAX)) {
        set_err(err, errcap, "enrol: missing argument or device name over %d bytes", FVD_NAME_MAX);
        return FV_EINVAL;
    }
    fv_status st;
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st == FV_OK)
            st = enroll_once(s, code_hash, id, public_key, device_name, now_ms, out, attempt, err,
                             errcap);
    } while (retry_after(s, st, &attempt));
    return st;
}

static fv_status get_device_once(pg_store *s, const unsigned char id[FV_DEVICE_LEN],
                                 fvd_device *out, const char *what, char *err, size_t errcap)
{
    params p = {0};
    p_bytes(&p, id, FV_DEVICE_LEN);
    fv_status st;
    PGresult *r = run_stmt(s, ST_GET_DEVICE, &p, &st, what, err, errcap);
    if (r == NULL) return st;
    st = device_row(r, out, what, err, errcap);
    PQclear(r);
    return st;
}

static fv_status pg_get_device(fvd_store *base, const unsigned char id[FV_DEVICE_LEN],
                               fvd_device *out, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (id == NULL || out == NULL) {
        set_err(err, errcap, "get device: missing argument");
        return FV_EINVAL;
    }
    fv_status st;
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st == FV_OK) st = get_device_once(s, id, out, "get device", err, errcap);
    } while (retry_after(s, st, &attempt));
    return st;
}

/* An UPDATE of one device (touch, revoke): FV_ENOTFOUND if no row. */
static fv_status update_device(pg_store *s, stmt_id id, const params *p, const char *what,
                               char *err, size_t errcap)
{
    fv_status st;
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, id, p, &st, what, err, errcap);
        if (r == NULL) continue;
        if (strcmp(PQcmdTuples(r), "0") == 0) {
            set_err(err, errcap, "%s: no such device", what);
            st = FV_ENOTFOUND;
        }
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    return st;
}

static fv_status pg_touch_device(fvd_store *base, const unsigned char id[FV_DEVICE_LEN],
                                 int64_t now_ms, char *err, size_t errcap)
{
    if (id == NULL) {
        set_err(err, errcap, "touch device: missing id");
        return FV_EINVAL;
    }
    params p = {0};
    p_bytes(&p, id, FV_DEVICE_LEN);
    p_i8(&p, now_ms);
    return update_device((pg_store *)base, ST_TOUCH, &p, "touch device", err, errcap);
}

static fv_status pg_revoke_device(fvd_store *base, const unsigned char id[FV_DEVICE_LEN],
                                  char *err, size_t errcap)
{
    if (id == NULL) {
        set_err(err, errcap, "revoke device: missing id");
        return FV_EINVAL;
    }
    params p = {0};
    p_bytes(&p, id, FV_DEVICE_LEN);
    return update_device((pg_store *)base, ST_REVOKE, &p, "revoke device", err, errcap);
}

static fv_status pg_list_devices(fvd_store *base, int (*cb)(void *ctx, const fvd_device *d),
                                 void *ctx, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (cb == NULL) {
        set_err(err, errcap, "list devices: missing callback");
        return FV_EINVAL;
    }
    fv_status st;
    PGresult *r = NULL;
    int attempt = 0;
    params p = {0};
    do {
        st = ensure_conn(s, err, errcap);
        if (st == FV_OK) r = run_stmt(s, ST_LIST, &p, &st, "list devices", err, errcap);
    } while (retry_after(s, st, &attempt));
    if (r == NULL) return st;
    /* The whole result is in memory: cb may call back into the store. */
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        fvd_device d;
        if (read_device(r, i, &d) != 0) {
            set_err(err, errcap, "list devices: malformed device row in PostgreSQL");
            st = FV_EIO;
            break;
        }
        if (cb(ctx, &d) != 0) break;
    }
    PQclear(r);
    return st;
}

static fv_status pg_update_user(fvd_store *base, const char *name, const char *role,
                                const char *team, fvd_user *out, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (!bounded(name, FVD_NAME_MAX) || name[0] == '\0' || !bounded(role, FVD_ROLE_MAX) ||
        role[0] == '\0' || (team != NULL && !bounded(team, FVD_NAME_MAX)) || s->in_push) {
        set_err(err, errcap, "update user: bad name, role or team, or a push is open");
        return FV_EINVAL;
    }
    params p = {0};
    p_text(&p, name);
    p_text(&p, role);
    if (team != NULL) p_text(&p, team);
    else p_null(&p);
    fvd_user now;
    fv_status st;
    int attempt = 0;
    /* A retry after a lost connection sets the same values again. */
    do {
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, ST_UPDATE_USER, &p, &st, "update user", err, errcap);
        if (r == NULL) continue;
        memset(&now, 0, sizeof now);
        if (PQntuples(r) == 0) {
            set_err(err, errcap, "no user '%s'", name);
            st = FV_ENOTFOUND;
        } else if (PQntuples(r) != 1 || c_text(r, 0, 0, now.name, sizeof now.name) ||
                   c_text(r, 0, 1, now.role, sizeof now.role) ||
                   c_text(r, 0, 2, now.team, sizeof now.team)) {
            set_err(err, errcap, "update user: malformed users row in PostgreSQL");
            st = FV_EIO;
        }
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    if (st == FV_OK && out != NULL) *out = now;
    return st;
}

/* ---- replay protection ---------------------------------------------------- */

static fv_status pg_use_nonce(fvd_store *base, const unsigned char device[FV_DEVICE_LEN],
                              const unsigned char nonce[16], int64_t now_ms, int64_t window_ms,
                              int *replay, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (device == NULL || nonce == NULL || replay == NULL || window_ms < 0) {
        set_err(err, errcap, "use nonce: missing argument or negative window");
        return FV_EINVAL;
    }
    int64_t cutoff = now_ms < INT64_MIN + window_ms ? INT64_MIN : now_ms - window_ms;
    params p = {0};
    p_bytes(&p, device, FV_DEVICE_LEN);
    p_bytes(&p, nonce, 16);
    p_i8(&p, now_ms);
    p_i8(&p, cutoff);
    /* A retry after a lost connection may report a replay of our own first
     * attempt: the request is refused (401) and the device retries with a
     * new nonce.  Never the other way round. */
    fv_status st;
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, ST_NONCE, &p, &st, "use nonce", err, errcap);
        if (r == NULL) continue;
        *replay = PQntuples(r) == 0;
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    return st;
}

/* ---- push -------------------------------------------------------------------- */

static fv_status push_begin_once(pg_store *s, const unsigned char device[FV_DEVICE_LEN],
                                 fvd_device *dev, char *err, size_t errcap)
{
    const char *what = "push begin";
    fv_status st = run_cmd(s, "BEGIN", NULL, 0, what, err, errcap);
    if (st != FV_OK) return st;
    params lock = {0};
    p_i8(&lock, LOCK_PUSH);
    PGresult *r = run_stmt(s, ST_LOCK_PUSH, &lock, &st, what, err, errcap);
    PQclear(r);
    if (st == FV_OK) st = get_device_once(s, device, dev, what, err, errcap);
    if (st == FV_OK) {
        params none = {0};
        r = run_stmt(s, ST_HEAD, &none, &st, what, err, errcap);
        if (r != NULL && (PQntuples(r) != 1 || c_u64(r, 0, 0, &s->next_seq) != 0)) {
            set_err(err, errcap, "%s: malformed log head in PostgreSQL", what);
            st = FV_EIO;
        }
        PQclear(r);
        s->next_seq++;
    }
    if (st == FV_OK) {
        s->in_push = 1;
        return FV_OK;
    }
    if (!conn_broken(s)) PQclear(PQexec(s->conn, "ROLLBACK"));
    return st;
}

static fv_status pg_push_begin(fvd_store *base, const unsigned char device[FV_DEVICE_LEN],
                               fvd_device *dev, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (s->in_push) {
        set_err(err, errcap, "push begin: a push is already in progress on this handle");
        return FV_EINVAL;
    }
    if (device == NULL || dev == NULL) {
        set_err(err, errcap, "push begin: missing argument");
        return FV_EINVAL;
    }
    fv_status st;
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st == FV_OK) st = push_begin_once(s, device, dev, err, errcap);
    } while (retry_after(s, st, &attempt));
    return st;
}

static fv_status pg_get_version(fvd_store *base, const fv__change *c, fv__ver *v, int *found,
                                char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    int64_t unused[3];
    if (v == NULL || found == NULL) {
        set_err(err, errcap, "get version: missing argument");
        return FV_EINVAL;
    }
    fv_status st = check_change(c, unused, err, errcap);
    if (st != FV_OK) return st;
    params p = {0};
    p_text(&p, c->table);
    p_bytes(&p, c->row_id, FV_ROWID_LEN);
    p_text(&p, c->field);
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, ST_GET_VERSION, &p, &st, "get version", err, errcap);
        if (r == NULL) continue;
        *found = PQntuples(r) == 1;
        memset(v, 0, sizeof *v);
        if (*found && (c_u64(r, 0, 0, &v->hlc) || c_fixed(r, 0, 1, v->device, sizeof v->device) ||
                       c_u64(r, 0, 2, &v->base_hlc))) {
            set_err(err, errcap, "get version: malformed version row in PostgreSQL");
            st = FV_EIO;
        }
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    return st;
}

/* ---- the log's customer scope (store.h) ---- */

static void p_key(params *p, const fvd_skey *k)
{
    if (k->n) p_bytes(p, k->b, k->n);
    else p_null(p);
}

/* Column col as a scope key: 0, or -1 if it is not one. */
static int c_key(const PGresult *r, int row, int col, fvd_skey *k)
{
    k->n = 0;
    if (PQgetisnull(r, row, col)) return 0;
    size_t n = (size_t)PQgetlength(r, row, col);
    if (n == 0 || n > FVD_NAME_MAX) return -1;
    memcpy(k->b, PQgetvalue(r, row, col), n);
    k->n = n;
    return 0;
}

/* The scope the entries of c's row carry; *found = 0 if it has none. */
static fv_status row_scope_of(pg_store *s, const fv__change *c, fvd_row_scope *out, int *found,
                              char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    *found = 0;
    params p = {0};
    p_text(&p, c->table);
    p_bytes(&p, c->row_id, FV_ROWID_LEN);
    fv_status st;
    PGresult *r = run_stmt(s, ST_ROW_SCOPE, &p, &st, "append: reading the row's scope", err,
                           errcap);
    if (r == NULL) return st;
    if (PQntuples(r) == 1) {
        out->has_cust = !PQgetisnull(r, 0, 0);
        if ((out->has_cust && c_fixed(r, 0, 0, out->cust, FV_ROWID_LEN)) ||
            c_key(r, 0, 1, &out->owner) || c_key(r, 0, 2, &out->team)) {
            set_err(err, errcap, "append: malformed log scope in PostgreSQL");
            st = FV_EIO;
        } else {
            *found = 1;
        }
    }
    PQclear(r);
    return st;
}

static fv_status customer_keys(void *ctx, const unsigned char cust[FV_ROWID_LEN],
                               fvd_skey *owner, fvd_skey *team, char *err, size_t errcap)
{
    pg_store *s = ctx;
    owner->n = team->n = 0;
    params p = {0};
    p_bytes(&p, cust, FV_ROWID_LEN);
    fv_status st;
    PGresult *r = run_stmt(s, ST_CUST_KEYS, &p, &st, "append: reading a customer's scope", err,
                           errcap);
    if (r == NULL) return st;
    if (PQntuples(r) == 1 && (c_key(r, 0, 0, owner) || c_key(r, 0, 1, team))) {
        set_err(err, errcap, "append: malformed log scope in PostgreSQL");
        st = FV_EIO;
    }
    PQclear(r);
    return st;
}

/* After c's entry: the earlier entries c's change concerns take the new
 * scope. */
static fv_status rescope(pg_store *s, const fv__change *c, const fvd_row_scope *mine, int moves,
                         char *err, size_t errcap)
{
    params p = {0};
    stmt_id id;
    if (moves == FVD_MOVES_NOTHING) return FV_OK;
    if (moves == FVD_MOVES_ROW) {
        id = ST_SET_ROW_CUST;
        p_text(&p, c->table);
        p_bytes(&p, c->row_id, FV_ROWID_LEN);
        if (mine->has_cust) p_bytes(&p, mine->cust, FV_ROWID_LEN);
        else p_null(&p);
        p_key(&p, &mine->owner);
        p_key(&p, &mine->team);
    } else {
        id = moves == FVD_MOVES_OWNER ? ST_SET_OWNER : ST_SET_TEAM;
        p_bytes(&p, c->row_id, FV_ROWID_LEN);
        p_key(&p, moves == FVD_MOVES_OWNER ? &mine->owner : &mine->team);
    }
    fv_status st;
    PGresult *r = run_stmt(s, id, &p, &st, "append: updating the log's scope", err, errcap);
    PQclear(r);
    return st;
}

static fv_status pg_append(fvd_store *base, const fv__change *c, uint64_t *server_seq,
                           char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    int64_t v[3], seq;
    if (!s->in_push) {
        set_err(err, errcap, "append: not inside a push (push_begin first)");
        return FV_EINVAL;
    }
    fv_status st = check_change(c, v, err, errcap);
    if (st != FV_OK) return st;
    if (server_seq == NULL || to_i8(s->next_seq, &seq) != 0) {
        set_err(err, errcap, "append: missing argument or log sequence exhausted");
        return FV_EINVAL;
    }
    fvd_row_scope cur, mine, prev;
    int found = 0, moves = FVD_MOVES_NOTHING;
    int is_cust = strcmp(c->table, "customer") == 0;
    /* Only these change scope; any other change inherits its row's. */
    int inherit = is_cust ? strcmp(c->field, "owner") != 0 && strcmp(c->field, "team") != 0
                          : strcmp(c->field, "customer_id") != 0;
    memset(&mine, 0, sizeof mine);
    memset(&prev, 0, sizeof prev);
    if (inherit) {
        mine.has_cust = is_cust;
        memcpy(mine.cust, c->row_id, FV_ROWID_LEN);
    } else {
        st = row_scope_of(s, c, &cur, &found, err, errcap);
        if (st == FV_OK)
            st = fvd_scope_for(c, &cur, found, customer_keys, s, &mine, &prev, &moves, err,
                               errcap);
        if (st != FV_OK) return st;
    }
    params p = {0};
    p_i8(&p, seq);
    p_text(&p, c->table);
    p_bytes(&p, c->row_id, FV_ROWID_LEN);
    p_text(&p, c->field);
    p_int(&p, (uint64_t)c->kind, 2);
    switch (c->kind) {
    case FV__VAL_NULL:
        p_null(&p);
        p_null(&p);
        p_null(&p);
        break;
    case FV__VAL_TEXT:
        if (c->len > FV_FIELD_MAX || memchr(c->data, '\0', c->len) != NULL) {
            set_err(err, errcap, "append %s.%s: text over %d bytes or with a NUL byte", c->table,
                    c->field, FV_FIELD_MAX);
            return FV_EINVAL;
        }
        p_bytes(&p, c->data, c->len);
        p_null(&p);
        p_null(&p);
        break;
    case FV__VAL_REAL:
        p_null(&p);
        p_f8(&p, c->real);
        p_null(&p);
        break;
    case FV__VAL_SEALED:
        if (c->len > FV_SEALED_MAX) {
            set_err(err, errcap, "append %s.%s: sealed value over %d bytes", c->table, c->field,
                    FV_SEALED_MAX);
            return FV_EINVAL;
        }
        p_null(&p);
        p_null(&p);
        p_bytes(&p, c->data, c->len);
        break;
    default:
        set_err(err, errcap, "append %s.%s: unknown value kind %d", c->table, c->field,
                (int)c->kind);
        return FV_EINVAL;
    }
    p_i8(&p, v[0]);
    p_i8(&p, v[1]);
    p_bytes(&p, c->device, FV_DEVICE_LEN);
    p_i8(&p, v[2]);
    if (mine.has_cust) p_bytes(&p, mine.cust, FV_ROWID_LEN);
    else p_null(&p);
    p_key(&p, &mine.owner);
    p_key(&p, &mine.team);
    if (prev.has_cust) {
        p_key(&p, &prev.owner);
        p_key(&p, &prev.team);
    } else {
        p_null(&p);
        p_null(&p);
    }
    p_int(&p, (uint64_t)inherit, 1);
    PGresult *r = run_stmt(s, ST_APPEND, &p, &st, "append", err, errcap);
    if (r == NULL) return st;
    PQclear(r);
    st = rescope(s, c, &mine, moves, err, errcap);
    if (st != FV_OK) return st;
    *server_seq = s->next_seq++;
    return FV_OK;
}

static fv_status pg_set_batch(fvd_store *base, const unsigned char device[FV_DEVICE_LEN],
                              uint64_t seq, const unsigned char hash[32], char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    int64_t seq8;
    if (!s->in_push) {
        set_err(err, errcap, "set batch: not inside a push (push_begin first)");
        return FV_EINVAL;
    }
    if (device == NULL || hash == NULL || to_i8(seq, &seq8) != 0) {
        set_err(err, errcap, "set batch: missing argument or batch seq beyond 2^63");
        return FV_EINVAL;
    }
    params p = {0};
    p_bytes(&p, device, FV_DEVICE_LEN);
    p_i8(&p, seq8);
    p_bytes(&p, hash, 32);
    return update_device(s, ST_SET_BATCH, &p, "set batch", err, errcap);
}

static fv_status pg_push_end(fvd_store *base, int commit, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (!s->in_push) {
        if (!commit) return FV_OK; /* rolling back nothing (push_begin failed) */
        set_err(err, errcap, "push end: no push in progress");
        return FV_EINVAL;
    }
    s->in_push = 0;
    if (conn_broken(s)) {
        /* The server rolled the transaction back when the connection went. */
        if (!commit) return FV_OK;
        set_err(err, errcap, "push commit: connection to PostgreSQL lost before the commit"
                             " (rolled back)");
        return FV_EBUSY;
    }
    char tag[32] = "";
    fv_status st = run_cmd(s, commit ? "COMMIT" : "ROLLBACK", tag, sizeof tag,
                           commit ? "push commit" : "push rollback", err, errcap);
    if (st == FV_EBUSY && commit) {
        /* The COMMIT may or may not have been applied: a device's retry of
         * the batch is then recognised by its batch hash. */
        set_err(err, errcap, "push commit: connection to PostgreSQL lost during the commit"
                             " (outcome unknown)");
    } else if (st == FV_OK && commit && strcmp(tag, "COMMIT") != 0) {
        /* COMMIT of a failed transaction "succeeds" with tag ROLLBACK. */
        set_err(err, errcap, "push commit: rolled back, a statement in the push failed");
        st = FV_EIO;
    }
    if (!conn_broken(s) && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    if (!commit && st == FV_EBUSY) st = FV_OK;
    return st;
}

/* ---- pull ---------------------------------------------------------------------- */

static int read_change_at(const PGresult *r, int row, fv__change *c, uint64_t *seq)
{
    memset(c, 0, sizeof *c);
    int kind;
    if (c_u64(r, row, 0, seq) || c_text(r, row, 1, c->table, sizeof c->table) ||
        c_fixed(r, row, 2, c->row_id, FV_ROWID_LEN) || c_text(r, row, 3, c->field, sizeof c->field) ||
        c_i2(r, row, 4, &kind) || c_u64(r, row, 8, &c->hlc) || c_u64(r, row, 9, &c->base_hlc) ||
        c_fixed(r, row, 10, c->device, FV_DEVICE_LEN) || c_u64(r, row, 11, &c->device_seq))
        return -1;
    switch (kind) {
    case FV__VAL_NULL:
        c->kind = FV__VAL_NULL;
        return 0;
    case FV__VAL_TEXT:
        c->kind = FV__VAL_TEXT;
        return c_bytes(r, row, 5, c->data, FV_FIELD_MAX + 1, &c->len);
    case FV__VAL_REAL:
        c->kind = FV__VAL_REAL;
        return c_f8(r, row, 6, &c->real);
    case FV__VAL_SEALED:
        c->kind = FV__VAL_SEALED;
        return c_bytes(r, row, 7, c->data, sizeof c->data, &c->len);
    default:
        return -1;
    }
}

static int read_change(const PGresult *r, fv__change *c, uint64_t *seq)
{
    return read_change_at(r, 0, c, seq);
}

/* Streams rows one at a time (libpq single-row mode), so memory stays flat
 * whatever max is; cb therefore must not call into this handle.  The head
 * is read first and nothing after it given: sequence numbers become
 * visible in order (file comment), so no entry up to it is skipped. */
static fv_status pull_once(pg_store *s, uint64_t cursor, uint32_t max,
                           const fvd_pull_filter *filter,
                           int (*cb)(void *ctx, const fv__change *c, uint64_t seq), void *ctx,
                           int *more, uint64_t *last_seq, uint32_t *given, char *err,
                           size_t errcap)
{
    const char *what = "pull";
    fvd_pull_scope scope = filter != NULL ? filter->scope : FVD_PULL_ALL;
    uint64_t head = 0;
    params none = {0};
    fv_status st;
    PGresult *h = run_stmt(s, ST_HEAD, &none, &st, what, err, errcap);
    if (h == NULL) return st;
    if (PQntuples(h) != 1 || c_u64(h, 0, 0, &head) != 0) {
        set_err(err, errcap, "%s: malformed log head in PostgreSQL", what);
        st = FV_EIO;
    }
    PQclear(h);
    if (st != FV_OK || head <= cursor) return st;
    if (scope == FVD_PULL_NOTHING) {
        *last_seq = head;
        return FV_OK;
    }
    stmt_id id = scope == FVD_PULL_ALL ? ST_PULL_ALL : scope == FVD_PULL_OWNER ? ST_PULL_OWNER
                                                                              : ST_PULL_TEAM;
    st = prepare(s, id, what, err, errcap);
    if (st != FV_OK) return st;
    params p = {0};
    p_i8(&p, (int64_t)cursor);
    p_i8(&p, (int64_t)head);
    if (scope != FVD_PULL_ALL) p_text(&p, filter->name);
    p_i8(&p, (int64_t)max + 1);
    if (!PQsendQueryPrepared(s->conn, stmts[id].name, p.n, p.v, p.len, p.fmt, 1) ||
        !PQsetSingleRowMode(s->conn)) {
        st = fail(s, NULL, what, err, errcap);
        /* Drain whatever was sent so the connection is usable again. */
        PGresult *r;
        while ((r = PQgetResult(s->conn)) != NULL) PQclear(r);
        return st;
    }
    int stopped = 0;
    PGresult *r;
    while ((r = PQgetResult(s->conn)) != NULL) {
        ExecStatusType rs = PQresultStatus(r);
        if (rs == PGRES_SINGLE_TUPLE && st == FV_OK && !stopped && !*more) {
            uint64_t seq;
            if (*given == max) {
                *more = 1;
            } else if (read_change(r, &s->row, &seq) != 0) {
                set_err(err, errcap, "%s: malformed log row in PostgreSQL", what);
                st = FV_EIO;
            } else {
                (*given)++;
                *last_seq = seq;
                if (cb(ctx, &s->row, seq) != 0) {
                    stopped = 1;
                    set_err(err, errcap, "%s: stopped by the callback", what);
                    st = FV_EIO;
                }
            }
        } else if (rs != PGRES_SINGLE_TUPLE && rs != PGRES_TUPLES_OK && st == FV_OK) {
            st = fail(s, r, what, err, errcap);
        }
        PQclear(r);
    }
    if (st == FV_OK && !*more) *last_seq = head;
    return st;
}

static fv_status pg_pull(fvd_store *base, uint64_t cursor, uint32_t max,
                         const fvd_pull_filter *filter,
                         int (*cb)(void *ctx, const fv__change *c, uint64_t seq), void *ctx,
                         int *more, uint64_t *last_seq, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (cb == NULL || more == NULL || last_seq == NULL) {
        set_err(err, errcap, "pull: missing argument");
        return FV_EINVAL;
    }
    fvd_pull_scope scope = filter != NULL ? filter->scope : FVD_PULL_ALL;
    if (scope == FVD_PULL_OWNER || scope == FVD_PULL_TEAM) {
        if (!bounded(filter->name, FVD_NAME_MAX) || filter->name[0] == '\0') {
            set_err(err, errcap, "pull: a filter by owner or team needs a name");
            return FV_EINVAL;
        }
    } else if (scope != FVD_PULL_ALL && scope != FVD_PULL_NOTHING) {
        set_err(err, errcap, "pull: unknown filter scope %d", (int)scope);
        return FV_EINVAL;
    }
    *more = 0;
    *last_seq = cursor;
    if (cursor > (uint64_t)INT64_MAX) return FV_OK; /* no sequence number is that large */
    fv_status st;
    int attempt = 0;
    uint32_t given = 0;
    do {
        *more = 0;
        *last_seq = cursor;
        st = ensure_conn(s, err, errcap);
        if (st == FV_OK)
            st = pull_once(s, cursor, max, filter, cb, ctx, more, last_seq, &given, err, errcap);
        /* Retrying after some changes were given would give them twice. */
    } while (given == 0 && retry_after(s, st, &attempt));
    if (st != FV_OK) *more = 0;
    return st;
}

/* Run statement id (retried like every read) and read its one log row, if any,
 * into *out (*found). */
static fv_status one_change(pg_store *s, stmt_id id, const params *p, fv__change *out, int *found,
                            char *err, size_t errcap)
{
    fv_status st;
    int attempt = 0;
    do {
        *found = 0;
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, id, p, &st, "get value", err, errcap);
        if (r == NULL) continue;
        uint64_t seq;
        if (PQntuples(r) == 1) {
            if (read_change(r, out, &seq) != 0) {
                set_err(err, errcap, "get value: malformed log row in PostgreSQL");
                st = FV_EIO;
            } else {
                *found = 1;
            }
        }
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    return st;
}

static fv_status pg_get_value(fvd_store *base, const char *tbl,
                              const unsigned char row[FV_ROWID_LEN], const char *field,
                              fv__change *out, int *found, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (tbl == NULL || row == NULL || field == NULL || out == NULL || found == NULL) {
        set_err(err, errcap, "get value: missing argument");
        return FV_EINVAL;
    }
    *found = 0;
    params p = {0};
    p_text(&p, tbl);
    p_bytes(&p, row, FV_ROWID_LEN);
    p_text(&p, field);
    return one_change(s, ST_GET_VALUE, &p, out, found, err, errcap);
}

static fv_status pg_get_value_before(fvd_store *base, const char *tbl,
                                     const unsigned char row[FV_ROWID_LEN], const char *field,
                                     uint64_t before_seq, fv__change *out, int *found, char *err,
                                     size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (tbl == NULL || row == NULL || field == NULL || out == NULL || found == NULL ||
        before_seq > (uint64_t)INT64_MAX) {
        set_err(err, errcap, "get value: bad argument");
        return FV_EINVAL;
    }
    *found = 0;
    params p = {0};
    p_text(&p, tbl);
    p_bytes(&p, row, FV_ROWID_LEN);
    p_text(&p, field);
    p_i8(&p, (int64_t)before_seq);
    return one_change(s, ST_GET_VALUE_BEFORE, &p, out, found, err, errcap);
}

static fv_status pg_row_fields(fvd_store *base, const char *tbl,
                               const unsigned char row[FV_ROWID_LEN], fv__change *out, size_t cap,
                               size_t *n, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    *n = 0;
    params p = {0};
    p_text(&p, tbl);
    p_bytes(&p, row, FV_ROWID_LEN);
    fv_status st;
    int attempt = 0;
    do {
        *n = 0;
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, ST_ROW_FIELDS, &p, &st, "read a row", err, errcap);
        if (r == NULL) continue;
        int rows = PQntuples(r);
        for (int i = 0; i < rows && st == FV_OK; i++) {
            uint64_t seq;
            if ((size_t)i >= cap || read_change_at(r, i, &out[i], &seq) != 0) {
                set_err(err, errcap, "read a row: too many or malformed fields in PostgreSQL");
                st = FV_EIO;
            } else {
                (*n)++;
            }
        }
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    return st;
}

static fv_status pg_customer_rows(fvd_store *base, const char *customer_id, fvd_row_ref **out,
                                  size_t *n, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    *out = NULL;
    *n = 0;
    params p = {0};
    p_text(&p, customer_id);
    fv_status st;
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, ST_CUSTOMER_ROWS, &p, &st, "read a customer's rows", err, errcap);
        if (r == NULL) continue;
        int rows = PQntuples(r);
        *out = rows > 0 ? calloc((size_t)rows, sizeof **out) : NULL;
        if (rows > 0 && *out == NULL) {
            set_err(err, errcap, "out of memory");
            st = FV_ENOMEM;
        }
        for (int i = 0; i < rows && st == FV_OK; i++) {
            char t[FV_NAME_MAX + 1];
            fvd_row_ref *ref = &(*out)[*n];
            if (c_text(r, i, 0, t, sizeof t) || c_fixed(r, i, 1, ref->id, FV_ROWID_LEN)) continue;
            static const char *const children[] = FVD_CHILD_TABLES;
            ref->table = -1;
            for (int k = 0; k < FVD_NCHILD_TABLES; k++)
                if (strcmp(t, children[k]) == 0) ref->table = k;
            if (ref->table >= 0) (*n)++;
        }
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    if (st != FV_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return st;
}

static fv_status pg_head(fvd_store *base, uint64_t *seq, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (seq == NULL) {
        set_err(err, errcap, "head: missing argument");
        return FV_EINVAL;
    }
    fv_status st;
    int attempt = 0;
    params none = {0};
    do {
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, ST_HEAD, &none, &st, "head", err, errcap);
        if (r == NULL) continue;
        if (PQntuples(r) != 1 || c_u64(r, 0, 0, seq) != 0) {
            set_err(err, errcap, "head: malformed log head in PostgreSQL");
            st = FV_EIO;
        }
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    return st;
}

/* ---- field keys ---------------------------------------------------------------- */

static int key_args_ok(const char *team, int cls, uint32_t version)
{
    return bounded(team, FVD_NAME_MAX) && team[0] != '\0' &&
           (cls == FV_CLASS_PII || cls == FV_CLASS_CONFIDENTIAL) && version >= 1;
}

static fv_status pg_get_admin_key(fvd_store *base, unsigned char pk[32], int *found, char *err,
                                  size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (pk == NULL || found == NULL) {
        set_err(err, errcap, "admin key: missing argument");
        return FV_EINVAL;
    }
    params none = {0};
    fv_status st;
    int attempt = 0;
    do {
        *found = 0;
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, ST_ADMIN_GET, &none, &st, "admin key", err, errcap);
        if (r == NULL) continue;
        if (PQntuples(r) == 1) {
            if (c_fixed(r, 0, 0, pk, 32) != 0) {
                set_err(err, errcap, "admin key: malformed row in PostgreSQL");
                st = FV_EIO;
            } else {
                *found = 1;
            }
        }
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    return st;
}

static fv_status pg_set_admin_key(fvd_store *base, const unsigned char pk[32], char *err,
                                  size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (pk == NULL) {
        set_err(err, errcap, "admin key: missing argument");
        return FV_EINVAL;
    }
    params p = {0};
    p_bytes(&p, pk, 32);
    fv_status st;
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, ST_ADMIN_SET, &p, &st, "admin key", err, errcap);
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    if (st != FV_OK) return st;
    /* Inserted, or there was one (perhaps just committed by another
     * process: a new statement sees it): the same key is fine. */
    unsigned char cur[32];
    int found = 0;
    st = pg_get_admin_key(base, cur, &found, err, errcap);
    if (st != FV_OK) return st;
    if (!found) {
        set_err(err, errcap, "admin key: not recorded");
        return FV_EIO;
    }
    if (sodium_memcmp(cur, pk, 32) != 0) {
        set_err(err, errcap, "this store has another admin key already");
        return FV_EEXIST;
    }
    return FV_OK;
}

static fv_status pg_put_team_key(fvd_store *base, const char *team, int cls, uint32_t version,
                                 const unsigned char key_id[8], int64_t created_ms, char *err,
                                 size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (!key_args_ok(team, cls, version) || key_id == NULL) {
        set_err(err, errcap, "team key: bad team, class, version or key id");
        return FV_EINVAL;
    }
    params p = {0};
    p_text(&p, team);
    p_int(&p, (uint64_t)cls, 2);
    p_i8(&p, (int64_t)version);
    p_bytes(&p, key_id, 8);
    p_i8(&p, created_ms);
    fv_status st;
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, ST_TKEY_ADD, &p, &st, "team key", err, errcap);
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    /* (A retry after a lost connection may find our own first attempt:
     * FV_EEXIST, which the admin commands take as "published".) */
    if (st == FV_EEXIST)
        set_err(err, errcap, "team %s has key version %u of class %d already", team,
                (unsigned)version, cls);
    return st;
}

static fv_status pg_current_key_version(fvd_store *base, const char *team, int cls,
                                        uint32_t *version, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (!bounded(team, FVD_NAME_MAX) || version == NULL ||
        (cls != FV_CLASS_PII && cls != FV_CLASS_CONFIDENTIAL)) {
        set_err(err, errcap, "key version: bad argument");
        return FV_EINVAL;
    }
    params p = {0};
    p_text(&p, team);
    p_int(&p, (uint64_t)cls, 2);
    fv_status st;
    int attempt = 0;
    do {
        *version = 0;
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, ST_TKEY_CUR, &p, &st, "key version", err, errcap);
        if (r == NULL) continue;
        uint64_t v;
        if (PQntuples(r) != 1 || c_u64(r, 0, 0, &v) != 0 || v > UINT32_MAX) {
            set_err(err, errcap, "key version: malformed answer from PostgreSQL");
            st = FV_EIO;
        } else {
            *version = (uint32_t)v;
        }
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    return st;
}

static fv_status pg_list_team_keys(fvd_store *base, int (*cb)(void *ctx, const fvd_team_key *k),
                                   void *ctx, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (cb == NULL) {
        set_err(err, errcap, "list keys: missing callback");
        return FV_EINVAL;
    }
    params none = {0};
    PGresult *r = NULL;
    fv_status st;
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st == FV_OK) r = run_stmt(s, ST_TKEY_LIST, &none, &st, "list keys", err, errcap);
    } while (retry_after(s, st, &attempt));
    if (r == NULL) return st;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        fvd_team_key k;
        memset(&k, 0, sizeof k);
        int cls;
        uint64_t v;
        if (c_text(r, i, 0, k.team, sizeof k.team) || c_i2(r, i, 1, &cls) ||
            c_u64(r, i, 2, &v) || v < 1 || v > UINT32_MAX || c_fixed(r, i, 3, k.key_id, 8) ||
            c_i8(r, i, 4, &k.created_ms) || c_u64(r, i, 5, &k.grants)) {
            set_err(err, errcap, "list keys: malformed team_keys row in PostgreSQL");
            st = FV_EIO;
            break;
        }
        k.cls = cls;
        k.version = (uint32_t)v;
        if (cb(ctx, &k) != 0) break;
    }
    PQclear(r);
    return st;
}

/* One attempt: a transaction of its own holding LOCK_GRANT, so grant
 * numbers become visible in order. */
static fv_status put_grant_once(pg_store *s, const params *p, int *inserted, char *err,
                                size_t errcap)
{
    const char *what = "put grant";
    fv_status st = run_cmd(s, "BEGIN", NULL, 0, what, err, errcap);
    if (st != FV_OK) return st;
    params lock = {0};
    p_i8(&lock, LOCK_GRANT);
    PGresult *r = run_stmt(s, ST_LOCK_PUSH, &lock, &st, what, err, errcap);
    PQclear(r);
    if (st == FV_OK) {
        r = run_stmt(s, ST_GRANT_ADD, p, &st, what, err, errcap);
        if (r != NULL) *inserted = PQntuples(r) == 1;
        PQclear(r);
    }
    if (st == FV_OK) {
        char tag[32] = "";
        st = run_cmd(s, "COMMIT", tag, sizeof tag, what, err, errcap);
        if (st == FV_OK && strcmp(tag, "COMMIT") != 0) {
            set_err(err, errcap, "%s: rolled back", what);
            st = FV_EIO;
        }
        if (st != FV_OK) *inserted = 0;
        return st;
    }
    *inserted = 0;
    if (!conn_broken(s)) PQclear(PQexec(s->conn, "ROLLBACK"));
    return st;
}

static fv_status pg_put_grant(fvd_store *base, const unsigned char device[FV_DEVICE_LEN],
                              const char *team, int cls, uint32_t version,
                              const unsigned char sealed[80], const unsigned char sig[64],
                              int *inserted, char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (device == NULL || !key_args_ok(team, cls, version) || sealed == NULL || sig == NULL ||
        inserted == NULL || s->in_push) {
        set_err(err, errcap, "put grant: bad argument or a push is open on this handle");
        return FV_EINVAL;
    }
    params p = {0};
    p_bytes(&p, device, FV_DEVICE_LEN);
    p_text(&p, team);
    p_int(&p, (uint64_t)cls, 2);
    p_i8(&p, (int64_t)version);
    p_bytes(&p, sealed, 80);
    p_bytes(&p, sig, 64);
    fv_status st;
    int attempt = 0;
    /* A retry after a lost connection may find our own first attempt
     * committed: *inserted = 0 then, and the grant is stored once. */
    do {
        *inserted = 0;
        st = ensure_conn(s, err, errcap);
        if (st == FV_OK) st = put_grant_once(s, &p, inserted, err, errcap);
    } while (retry_after(s, st, &attempt));
    if (st == FV_ENOTFOUND) {
        set_err(err, errcap, "put grant: unknown device, or team %s has no published key "
                "version %u of class %d", team, (unsigned)version, cls);
        st = FV_ENOTFOUND;
    }
    return st;
}

static fv_status pg_list_grants(fvd_store *base, const unsigned char device[FV_DEVICE_LEN],
                                uint64_t after_seq, uint32_t max,
                                int (*cb)(void *ctx, const fvd_grant *g), void *ctx, int *more,
                                char *err, size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (device == NULL || cb == NULL || more == NULL) {
        set_err(err, errcap, "list grants: missing argument");
        return FV_EINVAL;
    }
    *more = 0;
    if (after_seq > (uint64_t)INT64_MAX) return FV_OK; /* no seq is that large */
    params p = {0};
    p_bytes(&p, device, FV_DEVICE_LEN);
    p_i8(&p, (int64_t)after_seq);
    p_i8(&p, (int64_t)max + 1); /* one more: is there more? */
    PGresult *r = NULL;
    fv_status st;
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st == FV_OK) r = run_stmt(s, ST_GRANT_LIST, &p, &st, "list grants", err, errcap);
    } while (retry_after(s, st, &attempt));
    if (r == NULL) return st;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        if ((uint32_t)i == max) {
            *more = 1;
            break;
        }
        fvd_grant g;
        memset(&g, 0, sizeof g);
        int cls;
        uint64_t v;
        if (c_u64(r, i, 0, &g.seq) || c_fixed(r, i, 1, g.device, FV_DEVICE_LEN) ||
            c_text(r, i, 2, g.team, sizeof g.team) || c_i2(r, i, 3, &cls) ||
            c_u64(r, i, 4, &v) || v < 1 || v > UINT32_MAX || c_fixed(r, i, 5, g.sealed, 80) ||
            c_fixed(r, i, 6, g.sig, 64)) {
            set_err(err, errcap, "list grants: malformed grants row in PostgreSQL");
            st = FV_EIO;
            break;
        }
        g.cls = cls;
        g.version = (uint32_t)v;
        if (cb(ctx, &g) != 0) {
            set_err(err, errcap, "list grants: stopped by the callback at grant %llu",
                    (unsigned long long)g.seq);
            st = FV_EIO;
            break;
        }
    }
    PQclear(r);
    if (st != FV_OK) *more = 0;
    return st;
}

/* ---- the access policy ------------------------------------------------------- */

static fv_status get_policy_once(pg_store *s, fv__policy *out, int *found, char *err,
                                 size_t errcap)
{
    params none = {0};
    fv_status st;
    *found = 0;
    PGresult *r = run_stmt(s, ST_GET_POLICY, &none, &st, "get policy", err, errcap);
    if (r == NULL) return st;
    if (PQntuples(r) == 1) {
        unsigned char b[FV_POLICY_BYTES_MAX + 1]; /* c_bytes adds a NUL */
        size_t n = 0;
        uint64_t v;
        if (c_u64(r, 0, 0, &v) || c_bytes(r, 0, 1, b, sizeof b, &n) ||
            fv__policy_decode(b, n, out) != 0 || out->version != v) {
            set_err(err, errcap, "get policy: the stored policy is damaged");
            st = FV_EIO;
        } else {
            *found = 1;
        }
    }
    PQclear(r);
    return st;
}

static fv_status pg_get_policy(fvd_store *base, fv__policy *out, int *found, char *err,
                               size_t errcap)
{
    pg_store *s = (pg_store *)base;
    if (out == NULL || found == NULL) {
        set_err(err, errcap, "get policy: missing argument");
        return FV_EINVAL;
    }
    fv_status st;
    int attempt = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st == FV_OK) st = get_policy_once(s, out, found, err, errcap);
    } while (retry_after(s, st, &attempt));
    return st;
}

static fv_status pg_set_policy(fvd_store *base, const unsigned char *b, size_t n, char *err,
                               size_t errcap)
{
    pg_store *s = (pg_store *)base;
    fv__policy p;
    if (b == NULL || n == 0 || n > FV_POLICY_BYTES_MAX || fv__policy_decode(b, n, &p) != 0) {
        set_err(err, errcap, "set policy: not an encoded access policy");
        return FV_EINVAL;
    }
    if (s->in_push) {
        set_err(err, errcap, "set policy: a push is open on this handle");
        return FV_EINVAL;
    }
    params q = {0};
    p_i8(&q, (int64_t)p.version);
    p_bytes(&q, b, n);
    fv_status st;
    int attempt = 0, stored = 0;
    do {
        st = ensure_conn(s, err, errcap);
        if (st != FV_OK) continue;
        PGresult *r = run_stmt(s, ST_SET_POLICY, &q, &st, "set policy", err, errcap);
        if (r != NULL) stored = PQntuples(r) == 1;
        PQclear(r);
    } while (retry_after(s, st, &attempt));
    if (st != FV_OK) return st;
    if (!stored && attempt > 0) {
        /* Our first attempt may have committed before the connection
         * broke: the very same policy stored is not a refusal. */
        fv__policy cur;
        int found = 0;
        unsigned char mine[FV_POLICY_BYTES_MAX], theirs[FV_POLICY_BYTES_MAX];
        st = get_policy_once(s, &cur, &found, err, errcap);
        if (st != FV_OK) return st;
        size_t ln = found ? fv__policy_encode(&cur, theirs, sizeof theirs) : 0;
        if (ln > 0 && fv__policy_encode(&p, mine, sizeof mine) == ln &&
            memcmp(mine, theirs, ln) == 0)
            stored = 1;
    }
    if (!stored) {
        set_err(err, errcap, "the stored policy's version is %u or higher", (unsigned)p.version);
        return FV_EEXIST;
    }
    return FV_OK;
}

/* ---- open and close ----------------------------------------------------------- */

static void pg_close(fvd_store *base)
{
    pg_store *s = (pg_store *)base;
    if (s == NULL) return;
    if (s->conn) PQfinish(s->conn); /* an open push is rolled back by the server */
    if (s->url) {
        sodium_memzero(s->url, strlen(s->url));
        free(s->url);
    }
    free(s);
}

static const fvd_store_ops pg_ops = {
    .backend = "postgres",
    .close = pg_close,
    .add_user = pg_add_user,
    .enroll = pg_enroll,
    .get_device = pg_get_device,
    .touch_device = pg_touch_device,
    .revoke_device = pg_revoke_device,
    .list_devices = pg_list_devices,
    .update_user = pg_update_user,
    .use_nonce = pg_use_nonce,
    .push_begin = pg_push_begin,
    .get_version = pg_get_version,
    .append = pg_append,
    .set_batch = pg_set_batch,
    .push_end = pg_push_end,
    .pull = pg_pull,
    .head = pg_head,
    .get_value = pg_get_value,
    .get_value_before = pg_get_value_before,
    .row_fields = pg_row_fields,
    .customer_rows = pg_customer_rows,
    .set_admin_key = pg_set_admin_key,
    .get_admin_key = pg_get_admin_key,
    .put_team_key = pg_put_team_key,
    .current_key_version = pg_current_key_version,
    .list_team_keys = pg_list_team_keys,
    .put_grant = pg_put_grant,
    .list_grants = pg_list_grants,
    .set_policy = pg_set_policy,
    .get_policy = pg_get_policy,
};

fv_status fvd_store_open_pg(const char *url, fvd_store **out, char *err, size_t errcap)
{
    if (out == NULL) {
        set_err(err, errcap, "open PostgreSQL store: missing argument");
        return FV_EINVAL;
    }
    *out = NULL;
    if (url == NULL || *url == '\0') {
        set_err(err, errcap, "open PostgreSQL store: no connection URL");
        return FV_EINVAL;
    }
    pg_store *s = calloc(1, sizeof *s);
    if (s == NULL || (s->url = strdup(url)) == NULL) {
        free(s);
        set_err(err, errcap, "open PostgreSQL store: out of memory");
        return FV_ENOMEM;
    }
    s->base.ops = &pg_ops;
    fv_status st = connect_db(s, err, errcap);
    if (st == FV_OK) st = create_schema(s, err, errcap);
    if (st != FV_OK) {
        pg_close(&s->base);
        return st;
    }
    *out = &s->base;
    return FV_OK;
}
