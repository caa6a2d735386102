/*
 * store.h - fvd's store of record, behind one interface with two backends:
 * SQLite (store_sqlite.c: one file under --data, the embedded default) and
 * PostgreSQL (store_pg.c: libpq, --postgres URL, several fvd processes on
 * one database).  The protocol logic (server/push.c, pull, enrolment, auth)
 * is written once against these operations; tests/test_server_store.c runs
 * one behavioural suite on both backends.
 *
 * Nothing here keeps state another fvd process would need: users, devices,
 * batch chains, the nonce cache, the change log, the public side of field
 * keys (admin public key, key versions, sealed grants) and the access
 * policy in force all live in the backend.
 *
 * Conventions: every operation returns fv_status (FV_OK, FV_ENOTFOUND,
 * FV_EEXIST, FV_EIO for a backend failure, FV_EINVAL for bad arguments,
 * FV_EBUSY if the backend is unreachable) and on failure writes a message
 * into err (errcap bytes).  A store handle is used by one thread at a time;
 * fvd opens one per worker thread (or serialises).  Device ids are 16 raw
 * bytes; public keys 32 (Ed25519); hashes 32 (BLAKE2b-256).
 */
#ifndef FVD_STORE_H
#define FVD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "fieldvault.h"
#include "merge.h"
#include "policy.h"

#define FVD_NAME_MAX 64
#define FVD_ROLE_MAX 16

typedef struct fvd_device {
    unsigned char id[FV_DEVICE_LEN];
    unsigned char public_key[32];
    char name[FVD_NAME_MAX + 1];        /* the device's own label (may be empty) */
    char user[FVD_NAME_MAX + 1];
    /* The user's role and team as they are now (read through the user:
     * update_user changes them for every device of the user at once). */
    char role[FVD_ROLE_MAX + 1];        /* a role of the policy: rep, lead, ... */
    char team[FVD_NAME_MAX + 1];
    int revoked;
    uint64_t last_batch_seq;            /* 0: nothing pushed yet */
    unsigned char last_batch_hash[32];  /* zeros when last_batch_seq == 0 */
    int64_t enrolled_ms;
    int64_t last_seen_ms;               /* last authenticated request (0: never) */
} fvd_device;

typedef struct fvd_user {
    char name[FVD_NAME_MAX + 1];
    char role[FVD_ROLE_MAX + 1];
    char team[FVD_NAME_MAX + 1];
} fvd_user;

/* A field key as fvd knows it: its public facts, never the key bytes
 * (those live only in the admin key file, server/adminkeys.h). */
typedef struct fvd_team_key {
    char team[FVD_NAME_MAX + 1];
    int cls;                     /* FV_CLASS_PII or FV_CLASS_CONFIDENTIAL */
    uint32_t version;            /* 1, 2, ... */
    unsigned char key_id[8];     /* fv__fc_key_id(team, cls, version) */
    int64_t created_ms;
    uint64_t grants;             /* list_team_keys: grants of this version */
} fvd_team_key;

/* A field key sealed to one device and signed by the admin key
 * (fieldcrypt.h, fv__fc_grant_make). */
typedef struct fvd_grant {
    uint64_t seq;                /* the store's number, increasing */
    unsigned char device[FV_DEVICE_LEN];
    char team[FVD_NAME_MAX + 1];
    int cls;
    uint32_t version;
    unsigned char sealed[80];    /* FV_GRANT_SEALED_LEN */
    unsigned char sig[64];       /* FV_GRANT_SIG_LEN */
} fvd_grant;

typedef struct fvd_store fvd_store;

/* The tables whose rows belong to a customer (by customer_id), in the
 * order of fvd_row_ref.table. */
#define FVD_CHILD_TABLES {"contact", "visit", "complaint", "audit"}
#define FVD_NCHILD_TABLES 4

typedef struct fvd_row_ref {
    int table; /* index into FVD_CHILD_TABLES: contact, visit, complaint, audit */
    unsigned char id[FV_ROWID_LEN];
} fvd_row_ref;

/* The log's customer scope.  Besides each change, the log keeps, for every
 * entry, the scope of its row as it is now: its customer (a customer row's
 * own id; another row's customer_id, if it names one) and that customer's
 * owner and team.  append keeps them current, so they are what fvd_may_read
 * used to resolve row by row at pull time; a pull selects by them in the
 * store (an index per column) and costs what the user may see, not the
 * length of the log.  An entry changing a customer's owner or team also
 * keeps the owner and team the customer had just before it: that change
 * reaches the users whose scope held the row before (their devices then
 * drop it).  Owner and team are compared as fvd compared them before: the
 * value's text, its first FVD_NAME_MAX bytes; an empty one matches no one.
 *
 * A pull filter is a fact about the user (their name or team), never
 * stored: the role's scope is decided at pull time by the policy in force
 * and the user's current role and team (acl.h, fvd_pull_filter_of). */
typedef enum fvd_pull_scope {
    FVD_PULL_ALL = 0, /* every change */
    FVD_PULL_OWNER,   /* rows whose customer's owner is name (or was, just before
                       * an owner/team change of that customer: that change) */
    FVD_PULL_TEAM,    /* the same by the customer's team */
    FVD_PULL_NOTHING  /* no change (the cursor still moves to the head) */
} fvd_pull_scope;

typedef struct fvd_pull_filter {
    fvd_pull_scope scope;
    const char *name; /* OWNER: the user; TEAM: the team (1..FVD_NAME_MAX bytes) */
} fvd_pull_filter;

/* The scope key of an owner or team text (len bytes): what the log stores
 * and compares, its first FVD_NAME_MAX bytes up to a NUL; 0 = none. */
size_t fvd_scope_key(const char *text, size_t len);
/* The customer a customer_id text (len bytes) names, as fvd has always read
 * it (its first FV_ID_LEN bytes, fv__uuid_parse): 1 with out, else 0. */
int fvd_scope_customer(const char *text, size_t len, unsigned char out[FV_ROWID_LEN]);

/* For the backends' append: a scope key (n = 0: none, NULL in the log) and
 * the scope of a row as its log entries carry it. */
typedef struct fvd_skey {
    unsigned char b[FVD_NAME_MAX];
    size_t n;
} fvd_skey;

typedef struct fvd_row_scope {
    int has_cust; /* else no customer (cust unused) */
    unsigned char cust[FV_ROWID_LEN];
    fvd_skey owner, team;
} fvd_row_scope;

/* What an appended change does to the scope of earlier entries. */
enum {
    FVD_MOVES_NOTHING,
    FVD_MOVES_OWNER, /* every entry of customer c->row_id takes mine->owner */
    FVD_MOVES_TEAM,  /* ... mine->team */
    FVD_MOVES_ROW    /* every entry of c's row takes mine's cust, owner and team */
};

/* The scope c's log entry gets (*mine); for a change of a customer's owner
 * or team, the owner and team just before it (*prev, has_cust = 1; else
 * has_cust = 0); and what c moves (*moves, FVD_MOVES_*).  cur: the scope
 * the entries of c's row carry (found = 0: it has none yet).
 * customer_keys(ctx, ...) gives a customer's current keys (none if it has
 * no entry); its failure is returned. */
fv_status fvd_scope_for(const fv__change *c, const fvd_row_scope *cur, int found,
                        fv_status (*customer_keys)(void *ctx,
                                                   const unsigned char cust[FV_ROWID_LEN],
                                                   fvd_skey *owner, fvd_skey *team, char *err,
                                                   size_t errcap),
                        void *ctx, fvd_row_scope *mine, fvd_row_scope *prev, int *moves,
                        char *err, size_t errcap);

typedef struct fvd_store_ops {
    const char *backend; /* "sqlite" or "postgres" */
    void (*close)(fvd_store *s);

    /* ---- users, enrolment, devices ---- */

    /* Add a user (FV_EEXIST if the name is taken) with a one-time enrolment
     * code, stored only as its hash. */
    fv_status (*add_user)(fvd_store *s, const fvd_user *u, const unsigned char code_hash[32],
                          char *err, size_t errcap);
    /* Consume the enrolment code (atomically: two devices racing with one
     * code, one wins) and register the device for its user.  FV_ENOTFOUND
     * for an unknown or used code, FV_EEXIST if the device id is taken.
     * *out gets the new device (with its user's role and team). */
    fv_status (*enroll)(fvd_store *s, const unsigned char code_hash[32],
                        const unsigned char id[FV_DEVICE_LEN], const unsigned char public_key[32],
                        const char *device_name, int64_t now_ms, fvd_device *out, char *err,
                        size_t errcap);
    /* FV_ENOTFOUND if unknown. */
    fv_status (*get_device)(fvd_store *s, const unsigned char id[FV_DEVICE_LEN], fvd_device *out,
                            char *err, size_t errcap);
    fv_status (*touch_device)(fvd_store *s, const unsigned char id[FV_DEVICE_LEN],
                              int64_t now_ms, char *err, size_t errcap);
    /* FV_ENOTFOUND if unknown; revoking twice is FV_OK. */
    fv_status (*revoke_device)(fvd_store *s, const unsigned char id[FV_DEVICE_LEN], char *err,
                               size_t errcap);
    /* Every device, in enrolment order; cb returns 0 to go on, else stops. */
    fv_status (*list_devices)(fvd_store *s, int (*cb)(void *ctx, const fvd_device *d), void *ctx,
                              char *err, size_t errcap);
    /* Change user name's role (1..FVD_ROLE_MAX bytes) and team (at most
     * FVD_NAME_MAX bytes; NULL keeps the current one).  Every device of the
     * user has the new ones from the next get_device / list_devices / push
     * on.  *out (may be NULL) gets the user as stored afterwards.
     * FV_ENOTFOUND for an unknown user; not inside a push. */
    fv_status (*update_user)(fvd_store *s, const char *name, const char *role, const char *team,
                             fvd_user *out, char *err, size_t errcap);

    /* ---- replay protection ---- */

    /* Record nonce for device; *replay = 1 if it was already recorded (and
     * nothing is stored).  Entries older than now_ms - window_ms may be
     * purged by any call. */
    fv_status (*use_nonce)(fvd_store *s, const unsigned char device[FV_DEVICE_LEN],
                           const unsigned char nonce[16], int64_t now_ms, int64_t window_ms,
                           int *replay, char *err, size_t errcap);

    /* ---- push: one transaction, pushes serialised across processes ---- */

    /* Begin; from here until push_end no other push (of any process on the
     * same store of record) runs, so server sequence numbers become visible
     * in order.  Re-reads the device inside the transaction (*dev). */
    fv_status (*push_begin)(fvd_store *s, const unsigned char device[FV_DEVICE_LEN],
                            fvd_device *dev, char *err, size_t errcap);
    /* The server's current version of a field (*found = 0 if none). */
    fv_status (*get_version)(fvd_store *s, const fv__change *c, fv__ver *v, int *found,
                             char *err, size_t errcap);
    /* Append c to the change log with the next server sequence number
     * (*server_seq) and make it the field's current version.  Keeps the
     * log's customer scope (see "The log's customer scope" above) in step:
     * c's entry gets its row's, and a change of a customer's owner or team,
     * or of a row's customer_id, updates the scope of the earlier entries
     * it concerns. */
    fv_status (*append)(fvd_store *s, const fv__change *c, uint64_t *server_seq, char *err,
                        size_t errcap);
    /* Record the device's last applied batch. */
    fv_status (*set_batch)(fvd_store *s, const unsigned char device[FV_DEVICE_LEN], uint64_t seq,
                           const unsigned char hash[32], char *err, size_t errcap);
    /* Commit (commit != 0) or roll back.  After a failed commit nothing of
     * the push is stored. */
    fv_status (*push_end)(fvd_store *s, int commit, char *err, size_t errcap);

    /* ---- pull ---- */

    /* The changes with server sequence > cursor that filter selects (NULL:
     * every change), in order, at most max; cb gets each (return 0 to go
     * on, -1 to stop with FV_EIO).  The log head is read first and nothing
     * after it is given.  *more = 1 if further selected changes up to that
     * head exist; then *last_seq = the sequence of the last change given.
     * Otherwise *last_seq = the head (or cursor if that is higher): every
     * change up to it was considered, so the next pull starts there and a
     * device whose rows are a small part of the log does not walk the rest
     * of it batch by batch. */
    fv_status (*pull)(fvd_store *s, uint64_t cursor, uint32_t max, const fvd_pull_filter *filter,
                      int (*cb)(void *ctx, const fv__change *c, uint64_t seq), void *ctx,
                      int *more, uint64_t *last_seq, char *err, size_t errcap);
    /* The highest server sequence number (0 if the log is empty). */
    fv_status (*head)(fvd_store *s, uint64_t *seq, char *err, size_t errcap);

    /* The current value of a field (the latest change in the log for it):
     * *found = 0 if the field has none.  For access control: a customer's
     * owner and team, a contact's or visit's customer_id.  May be called
     * inside a push (it then sees the push's own changes) and between pull
     * calls, never from a pull callback. */
    fv_status (*get_value)(fvd_store *s, const char *tbl, const unsigned char row[FV_ROWID_LEN],
                           const char *field, fv__change *out, int *found, char *err,
                           size_t errcap);
    /* The same as it was just before log entry before_seq (the previous
     * value of a field: who owned a customer before a reassignment). */
    fv_status (*get_value_before)(fvd_store *s, const char *tbl,
                                  const unsigned char row[FV_ROWID_LEN], const char *field,
                                  uint64_t before_seq, fv__change *out, int *found, char *err,
                                  size_t errcap);
    /* The current change of every field of a row, into out (cap entries;
     * a row has at most FV_RECORD_FIELDS_MAX + 1 fields): *n of them. */
    fv_status (*row_fields)(fvd_store *s, const char *tbl, const unsigned char row[FV_ROWID_LEN],
                            fv__change *out, size_t cap, size_t *n, char *err, size_t errcap);
    /* The contacts and visits whose customer_id was ever customer_id (an id
     * as text): a malloc'd array of *n entries {table (0 contact, 1 visit),
     * row id}, freed by the caller. */
    fv_status (*customer_rows)(fvd_store *s, const char *customer_id, fvd_row_ref **out,
                               size_t *n, char *err, size_t errcap);

    /* ---- field keys (the admin's `keys` commands write, POST /v1/keys and
     * push read).  Team names are 1..FVD_NAME_MAX bytes; cls is
     * FV_CLASS_PII or FV_CLASS_CONFIDENTIAL; versions start at 1.  Nothing
     * here ever holds a field key in clear: grants are sealed boxes. ---- */

    /* Record the admin's Ed25519 public key, once: the same key again is
     * FV_OK, a different one FV_EEXIST (the store belongs to another admin
     * key file). */
    fv_status (*set_admin_key)(fvd_store *s, const unsigned char pk[32], char *err,
                               size_t errcap);
    /* The admin public key (*found = 0 while none was set). */
    fv_status (*get_admin_key)(fvd_store *s, unsigned char pk[32], int *found, char *err,
                               size_t errcap);
    /* Publish version of team's key of class cls: FV_EEXIST if that
     * (team, cls, version) is known already. */
    fv_status (*put_team_key)(fvd_store *s, const char *team, int cls, uint32_t version,
                              const unsigned char key_id[8], int64_t created_ms, char *err,
                              size_t errcap);
    /* The highest published version of team's key of class cls (0: none).
     * May be called inside a push. */
    fv_status (*current_key_version)(fvd_store *s, const char *team, int cls,
                                     uint32_t *version, char *err, size_t errcap);
    /* Every published key, by team (byte order), class and version, with
     * its grant count; cb returns 0 to go on, else stops (FV_OK).  cb must
     * not call into the store. */
    fv_status (*list_team_keys)(fvd_store *s, int (*cb)(void *ctx, const fvd_team_key *k),
                                void *ctx, char *err, size_t errcap);
    /* Store a grant for (device, team, cls, version) with the next grant
     * sequence number (increasing across the store, visible in order):
     * *inserted = 1.  If that device has a grant for it already, nothing
     * changes and *inserted = 0.  FV_ENOTFOUND if the device is unknown or
     * (team, cls, version) was not published (put_team_key). */
    fv_status (*put_grant)(fvd_store *s, const unsigned char device[FV_DEVICE_LEN],
                           const char *team, int cls, uint32_t version,
                           const unsigned char sealed[80], const unsigned char sig[64],
                           int *inserted, char *err, size_t errcap);
    /* The device's grants with seq > after_seq, in seq order, at most max
     * of them; cb gets each (0 to go on, else stop: FV_EIO); *more = 1 if
     * others follow the last one given.  cb must not call into the store.
     * May be called inside a push. */
    fv_status (*list_grants)(fvd_store *s, const unsigned char device[FV_DEVICE_LEN],
                             uint64_t after_seq, uint32_t max,
                             int (*cb)(void *ctx, const fvd_grant *g), void *ctx, int *more,
                             char *err, size_t errcap);

    /* ---- the access policy (`fvd admin policy set` writes; push, pull,
     * POST /v1/enroll, POST /v1/keys and the keys commands read) ---- */

    /* Store the policy whose fv__policy_encode bytes are b (n bytes) as
     * the one in force: FV_EINVAL if they do not decode (fv__policy_decode),
     * FV_EEXIST if its version is not above the stored one's (atomic: of
     * two admins racing with the same version, one wins).  Not inside a
     * push. */
    fv_status (*set_policy)(fvd_store *s, const unsigned char *b, size_t n, char *err,
                            size_t errcap);
    /* The stored policy into *out (decoded and checked), *found = 1; or
     * *found = 0 while none was set (the built-in fv__policy_default is
     * in force then).  FV_EIO if the stored bytes do not decode.  May be
     * called inside a push. */
    fv_status (*get_policy)(fvd_store *s, fv__policy *out, int *found, char *err,
                            size_t errcap);
} fvd_store_ops;

/* Every backend's handle starts with this. */
struct fvd_store {
    const fvd_store_ops *ops;
};

/* Open (creating if needed) the SQLite store of record in directory dir
 * (file dir/fvd.db; the directory is created). */
fv_status fvd_store_open_sqlite(const char *dir, fvd_store **out, char *err, size_t errcap);
/* Connect to PostgreSQL (a libpq connection URL) and create the schema if
 * missing (idempotent, safe when several processes start at once). */
fv_status fvd_store_open_pg(const char *url, fvd_store **out, char *err, size_t errcap);

#endif /* FVD_STORE_H */
