/*
 * internal.h - the fv_db handle and the functions core/ files share.
 * Nothing here is public: fv__ names are internal, the public API is
 * include/fieldvault.h.
 */
#ifndef FV_INTERNAL_H
#define FV_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "fieldvault.h"
#include "policy.h"
#include "vault_vfs.h"

#define FV_ERRMSG_MAX 512
#define FV_STMT_CACHE 48
#define FV_ENUM_MAX 8

/* ---- catalogue (schema as data, loaded from fv_fields) ---- */
typedef struct fv__field {
    char name[FV_NAME_MAX + 1];
    fv_field_class cls;
    fv_field_type type;
    int required;
    size_t max_len;
    char *enum_values; /* "a|b|c" for FV_TYPE_ENUM, else NULL; owned */
    char ref_table[FV_NAME_MAX + 1];
} fv__field;

typedef struct fv__table {
    char name[FV_NAME_MAX + 1];
    size_t nfields;
    fv__field fields[FV_RECORD_FIELDS_MAX];
} fv__table;

#define FV_TABLES_MAX 8

typedef struct fv__catalogue {
    size_t ntables;
    fv__table tables[FV_TABLES_MAX];
} fv__catalogue;

/* ---- keys (vault header) ---- */
typedef enum fv__wrap_kind { FV_WRAP_PASSPHRASE = 1, FV_WRAP_KEYSTORE = 2 } fv__wrap_kind;

typedef struct fv__keyring {
    fv__wrap_kind kind;
    uint64_t seq;          /* sequence of the active header slot */
    int active_slot;       /* 0 or 1 */
    uint32_t kdf_passes;
    uint32_t kdf_mem_kib;
    unsigned char salt[16];
    unsigned char kek[32]; /* passphrase-derived key-encryption key */
    size_t nkeys;          /* 1, or 2 while a rekey is in progress */
    uint32_t write_epoch;
    struct {
        uint32_t epoch;
        unsigned char key[FV_DBKEY_LEN];
    } keys[2];
    const fv_keystore *keystore; /* borrowed from the open config */
} fv__keyring;

typedef struct fv__stmt_slot {
    const char *sql; /* owned copy */
    sqlite3_stmt *stmt;
    uintptr_t key;   /* the caller's pointer that last found it: compared, never read */
} fv__stmt_slot;

/* records.c's INSERT text for one table and set of fields, kept so that an
 * insert neither rebuilds it nor makes fv__stmt compare it by content. */
#define FV_INSERT_SQL_CACHE 8
_Static_assert(FV_RECORD_FIELDS_MAX <= 64, "a field set must fit a uint64_t mask");
typedef struct fv__insert_sql {
    const fv__table *tbl; /* NULL: an empty slot */
    size_t nfields;  /* the table's field count when built */
    uint64_t mask;   /* bit i: field i is in the INSERT */
    char *sql;       /* owned */
} fv__insert_sql;

struct fv_db {
    sqlite3 *sql;
    fv__vfs *vfs;
    char *path;
    char *user;
    fv_status err;
    char errmsg[FV_ERRMSG_MAX];
    int in_batch;
    int cache_size_saved; /* PRAGMA cache_size to restore when the batch ends (0: none) */
    fv__keyring *keys; /* sodium_malloc'd: locked, guarded, wiped on free */
    fv__catalogue cat;
    fv__stmt_slot stmts[FV_STMT_CACHE];
    size_t nstmts;
    fv__insert_sql insert_sql[FV_INSERT_SQL_CACHE];
    size_t insert_sql_next; /* the slot a miss replaces (round robin) */
    int64_t uuid_last_ms; /* UUIDv7 monotonicity within one millisecond */
    uint16_t uuid_seq;
    unsigned char device[16]; /* this replica's id (fv_meta 'device_id') */
    uint64_t hlc_last;        /* latest hybrid logical clock value seen */
    uint64_t hlc_saved;       /* a value fv_meta 'hlc' is known to hold (committed) */
    atomic_int cancel;        /* fv_sync_cancel (any thread) */
    int64_t observe_offset;   /* while applying a pull: the server's clock minus ours */
    int wiped;                /* revoked: the store was erased */
    /* access control (acl.c): set once enrolled */
    int enrolled;
    char acl_user[FV_NAME_MAX + 1], acl_role[FV_NAME_MAX + 1], acl_team[FV_NAME_MAX + 1];
    fv__policy policy;
};

/* ---- errors (util.c) ---- */
/* Start of a public call: clears the previous error. */
void fv__reset(fv_db *db);
/* Record an error (the first one of a call wins) and return code. */
fv_status fv__err(fv_db *db, fv_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Map an SQLite result code to fv_status and record a message with ctx. */
fv_status fv__sqlerr(fv_db *db, int rc, const char *ctx);

/* ---- SQL helpers (store.c) ---- */
/* A cached prepared statement for sql (compared by content; a string that
 * stays put, such as a literal, is found fastest), reset and with bindings
 * cleared.  NULL on failure (error recorded). */
sqlite3_stmt *fv__stmt(fv_db *db, const char *sql);
/* Run SQL without results. */
fv_status fv__exec(fv_db *db, const char *sql);
/* Transactions that nest inside a caller's batch: begin opens one only
 * when no batch is open; end commits (ok) or rolls back. */
fv_status fv__tx_begin(fv_db *db, int *opened);
fv_status fv__tx_end(fv_db *db, int opened, fv_status st);

/* ---- keys.c ---- */
/* Read (or with create, write) the vault header and unwrap the keys.
 * *created is set when this call created the file. */
fv_status fv__keys_open(fv_db *db, const fv_open_config *cfg, int create, int *created);
fv_status fv__keys_set_passphrase(fv_db *db, const char *pass, size_t len);
/* Write the header with the keyring's current keys (new slot, seq+1). */
fv_status fv__keys_write_header(fv_db *db);
void fv__keys_free(fv__keyring *k);

/* ---- schema.c ---- */
fv_status fv__schema_migrate(fv_db *db, int target_version);
fv_status fv__schema_load(fv_db *db);
const fv__table *fv__schema_table(const fv_db *db, const char *name);
const fv__field *fv__schema_field(const fv__table *t, const char *name,
                                  size_t *index);
void fv__schema_free(fv__catalogue *cat);
/* The shipped catalogue without a store (fvd validates changes with it):
 * 1 and *out filled (out may be NULL; its enum_values is static, never to
 * be freed) if table.field is shipped, else 0. */
int fv__shipped_field(const char *table, const char *field, fv__field *out);
int fv__shipped_table(const char *table);

/* ---- util.c ---- */
/* UUIDv7 (time-ordered) as 16 bytes. */
void fv__uuid7(fv_db *db, unsigned char out[16]);
void fv__uuid_format(const unsigned char in[16], char out[FV_ID_LEN + 1]);
int fv__uuid_parse(const char *text, unsigned char out[16]);
/* Validate YYYY-MM-DD (a real calendar date). */
int fv__date_valid(const char *s);
/* Parse an ISO 8601 instant, normalise to YYYY-MM-DDTHH:MM:SSZ (UTC). */
int fv__time_normalise(const char *s, char out[21]);
void fv__time_format_ms(int64_t ms, char out[21]);
int fv__utf8_valid(const char *s, size_t len);
/* Bytes of the well-formed UTF-8 sequence at s (n > 0 bytes left), 0 if
 * it is malformed, overlong, a surrogate or beyond U+10FFFF. */
size_t fv__utf8_seq(const unsigned char *s, size_t n);
int fv__name_valid(const char *s);
/* Is v one of the '|'-separated values of list (an enum field's)? */
int fv__enum_has(const char *list, const char *v);
char *fv__strdup(const char *s);

/* ---- hybrid logical clock (hlc.c) ----
 * hlc = milliseconds << 16 | counter.  Pure functions, plus the store's
 * clock: fv__hlc_next for a local write (inside its transaction; the write
 * must put the hlc in the outbox, or the clock is saved at commit),
 * fv__hlc_observe for a received change, fv__hlc_save to write fv_meta
 * now, and fv__hlc_persist, run by store.c just before every COMMIT: it
 * saves the clock if a reopen would load less than it (*saved: the value
 * fv_meta holds once the commit succeeds, for db->hlc_saved). */
#define FV_HLC_MS(h) ((int64_t)((h) >> 16))
uint64_t fv__hlc_tick(uint64_t last, int64_t wall_ms);
int fv__hlc_merge(uint64_t *last, uint64_t remote, int64_t wall_ms, int64_t max_drift_ms);
fv_status fv__hlc_next(fv_db *db, uint64_t *out);
fv_status fv__hlc_observe(fv_db *db, uint64_t remote);
fv_status fv__hlc_save(fv_db *db);
fv_status fv__hlc_persist(fv_db *db, uint64_t *saved);

/* ---- change capture (outbox.c) ---- */
typedef struct fv__cval {
    int type;                 /* SQLITE_NULL, SQLITE_TEXT, SQLITE_FLOAT, SQLITE_BLOB */
    const char *text;
    const unsigned char *blob;
    size_t len;               /* for blob */
    double real;
} fv__cval;
/* Load (after migrations) the device id and the clock. */
fv_status fv__sync_state_load(fv_db *db);
/* Load the enrolment (user, role, team) and the policy (acl.c). */
fv_status fv__acl_load(fv_db *db);
/* fv_meta's text value for key into out ("" if absent). */
fv_status fv__meta_text(fv_db *db, const char *key, char *out, size_t cap);
/* Record a local change of tbl.field of row id at hlc, inside the caller's
 * transaction: new version (base = the one replaced) and an outbox entry. */
fv_status fv__capture(fv_db *db, const char *tbl, const unsigned char id[16],
                      const char *field, const fv__cval *v, uint64_t hlc);
/* fv__capture of fields[0..n) := vals[0..n) of a row the caller's
 * transaction has just inserted under a new id (fv_insert): there is no
 * version to replace, so base is 0 without a look-up, and the versions are
 * written a few fields a statement; the outbox entries follow in field
 * order.  Not for a row that may already have versions. */
fv_status fv__capture_new_row(fv_db *db, const char *tbl, const unsigned char id[16], size_t n,
                              const char *const *fields, const fv__cval *vals, uint64_t hlc);

/* A row's customer owner and team as stored ("" when unknown: out are
 * FV_NAME_MAX + 1 bytes each); *exists = 0 for a row the store does not
 * hold.  A row with a customer_id is in the scope of that customer. */
fv_status fv__acl_row_scope(fv_db *db, const char *tbl, const unsigned char id[16], char *owner,
                            char *team, int *exists);

/* ---- change-set files imported into an enrolled store (acl.c) ----
 * begin before the set, note each change before it is applied, check once
 * it is all in (FV_EACCES naming the first change the user may not make).
 * No-ops in a store never enrolled. */
fv_status fv__acl_import_begin(fv_db *db);
fv_status fv__acl_import_note(fv_db *db, const char *tbl, const unsigned char id[16],
                              const char *field);
fv_status fv__acl_import_check(fv_db *db);

/* ---- field encryption (fieldkeys.c) ---- */
/* The team deciding a row's field keys: a customer's team, or the team of
 * the customer a row belongs to ("" when unknown). */
fv_status fv__fkey_row_team(fv_db *db, const char *tbl, const unsigned char row[16], char *team,
                            size_t cap);
/* In an enrolled store, seal *v (a text or real of a pii/confidential
 * field) with the newest key held for the row's team, into buf (cap >=
 * FV_SEALED_BUF, core/fieldcrypt.h): *v then points at the sealed bytes.  Left as it is when
 * the store is not enrolled, the field is public, or no key is held. */
fv_status fv__fkey_seal(fv_db *db, const char *tbl, const unsigned char row[16], const char *field,
                        fv__cval *v, unsigned char *buf, size_t cap);
/* Open sealed value b for tbl.f of row: FV__OPEN_TEXT (text filled,
 * NUL-terminated; cap >= n), FV__OPEN_REAL (*real), FV__OPEN_NOKEY (no key
 * held for it) or FV__OPEN_BAD (malformed, another class or field, or fails
 * authentication).  *st is set only by a store failure. */
enum { FV__OPEN_BAD = 0, FV__OPEN_NOKEY = 1, FV__OPEN_REAL = 2, FV__OPEN_TEXT = 3 };
struct fv__field;
int fv__fkey_open(fv_db *db, const char *tbl, const unsigned char row[16],
                  const struct fv__field *f, const unsigned char *b, size_t n, char *text,
                  size_t cap, double *real, fv_status *st);
/* Verify and open one grant, store its key. */
fv_status fv__fkey_install(fv_db *db, const unsigned char admin_pk[32],
                           const unsigned char sign_sk[64], const char *team, int cls,
                           uint32_t version, const unsigned char *sealed, const unsigned char *sig,
                           uint64_t seq);
/* Open stored values still sealed that the keys held now open. */
fv_status fv__fkey_unseal_stored(fv_db *db);
/* Seal outbox entries after after_seq still in plaintext, where a key is
 * held now (entries written before the key arrived). */
fv_status fv__fkey_seal_outbox(fv_db *db, uint64_t after_seq);

#endif /* FV_INTERNAL_H */
