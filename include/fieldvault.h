/**
 * \file fieldvault.h
 * \brief fieldvault.h - the whole public API of fieldvault.
 *
 * fieldvault keeps a field-sales app's customers, contacts and visits in an
 * encrypted local SQLite store (every page of the database and its WAL is
 * sealed with XChaCha20-Poly1305 by fieldvault's own VFS) and, in later
 * layers, syncs them with a central endpoint.  This header is the
 * specification: every function documents its contract, and every pointer
 * that crosses it says who owns it and how long it lives.
 *
 * Conventions
 *  - Handles are opaque.  fv_open() creates an fv_db, fv_close() frees it
 *    (NULL-safe).
 *  - Every function that can fail returns fv_status.  On failure the handle
 *    keeps a human-readable message, read with fv_errmsg(); the first error
 *    of a call wins.  The library never aborts and never prints.
 *  - Config structs start with a size field (set it to sizeof the struct):
 *    they only ever grow.
 *  - Strings are UTF-8 and NUL-terminated.
 *
 * Threads: an fv_db and everything obtained from it may be used by one
 * thread at a time (the caller serialises).  Different fv_db handles are
 * independent; a store file can be open in one handle at a time (the store
 * is opened in exclusive locking mode, a second open gets FV_EBUSY).
 */
/**
 * \mainpage fieldvault: the C API
 *
 * fieldvault is a portable C11 library that field-sales apps embed to record
 * customers, contacts and visits offline in an encrypted store, with
 * field-level access control, and to sync them with fvd.  Everything an app
 * calls is declared in fieldvault.h (its opening comment gives the
 * conventions: handles, status codes and messages, config sizes, threads).
 * The reference is grouped as the header is (see Topics): opening a store,
 * the schema catalogue, records, lists and queries, the stage history,
 * change sets, conflicts, networked sync, field keys.
 */
#ifndef FIELDVAULT_H
#define FIELDVAULT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
/** Marks a public function: exported from the shared library (the library
 * is built with hidden visibility). */
#define FV_API __attribute__((visibility("default")))
/** Marks a function whose fv_status result must be looked at. */
#define FV_NODISCARD __attribute__((warn_unused_result))
#else
#define FV_API
#define FV_NODISCARD
#endif

/** Status codes.  Values are fixed forever; new codes are only appended. */
typedef enum fv_status {
    FV_OK = 0,        /**< success                                             */
    FV_EINVAL = 1,    /**< bad argument or input (message says which)          */
    FV_EKEY = 2,      /**< wrong passphrase or key-store key                     */
    FV_ECORRUPT = 3,  /**< a page failed authentication or the store is damaged */
    FV_EACCES = 4,    /**< the acting user may not do this                      */
    FV_EPROTO = 5,    /**< malformed or hostile protocol data                   */
    FV_ENET = 6,      /**< network failure                                      */
    FV_ENOMEM = 7,    /**< out of memory                                        */
    FV_EBUSY = 8,     /**< the store is in use by another handle or process     */
    FV_ENOTFOUND = 9, /**< no such record / file                                */
    FV_EIO = 10,      /**< operating-system I/O failure                         */
    FV_EEXIST = 11,   /**< already exists                                       */
    FV_EMISUSE = 12,  /**< API used in a way its contract forbids               */
    FV_EINTERNAL = 13 /**< an unexpected failure inside a dependency            */
} fv_status;

/** Fixed English text for a status code.  Static storage; never NULL. */
FV_API const char *fv_status_str(fv_status code);

/** Library version string ("MAJOR.MINOR.PATCH").  Static storage. */
FV_API const char *fv_version(void);

/** \defgroup limits Limits (named, checked on every path)
 * \{ */
#define FV_ID_LEN 36              /**< text form of a UUIDv7, without the NUL */
#define FV_FIELD_MAX 4096         /**< bytes of one text field value          */
#define FV_NAME_MAX 64            /**< bytes of a table or field name         */
#define FV_RECORD_FIELDS_MAX 64   /**< fields in one record                   */
#define FV_PASSPHRASE_MAX 1024    /**< bytes of a passphrase                  */
#define FV_WRAPPED_KEY_MAX 512    /**< bytes of a key-store-wrapped key       */

/** \} */

/** \defgroup opening_a_store Opening a store
 * \{ */

/** An open store: created by fv_open(), freed by fv_close().  Opaque. */
typedef struct fv_db fv_db;

/**
 * Platform key-store hook (Android Keystore, iOS Keychain, a TPM...).  The
 * store's random 32-byte database key is kept in the file only wrapped by
 * this hook.  wrap() writes at most FV_WRAPPED_KEY_MAX bytes to out and sets
 * *out_len; unwrap() reverses it.  Both return 0 on success, nonzero on
 * failure (a failed unwrap is reported as FV_EKEY).  fieldvault wipes the
 * plaintext key after each call; the hook must not keep it.
 */
typedef struct fv_keystore {
    size_t size; /**< sizeof(fv_keystore) */
    void *ctx;   /**< passed back to the callbacks; owned by the caller */
    /** Wrap key into out (at most FV_WRAPPED_KEY_MAX bytes), set *out_len. */
    int (*wrap)(void *ctx, const unsigned char key[32], unsigned char *out,
                size_t *out_len);
    /** Unwrap in_len bytes of in into key. */
    int (*unwrap)(void *ctx, const unsigned char *in, size_t in_len,
                  unsigned char key[32]);
} fv_keystore;

#define FV_OPEN_CREATE 0x01u    /**< create the store if it does not exist   */
#define FV_OPEN_EXCL 0x02u      /**< with CREATE: fail with FV_EEXIST if it does */
#define FV_OPEN_SYNC_FULL 0x04u /**< synchronous=FULL (default NORMAL)       */

/** How to open a store: the argument of fv_open().  Exactly one credential:
 * a passphrase (Argon2id) or a key store. */
typedef struct fv_open_config {
    size_t size;             /**< sizeof(fv_open_config) */
    const char *path;        /**< store file; -wal sits beside it */
    /* Exactly one credential: a passphrase (Argon2id) or a key store. */
    const char *passphrase;  /**< not NUL-terminated necessarily */
    size_t passphrase_len;   /**< 1..FV_PASSPHRASE_MAX */
    const fv_keystore *keystore; /**< the key-store hook, instead of a passphrase */
    unsigned flags;          /**< FV_OPEN_* */
    /** Argon2id cost for a new store (0 = defaults: 64 MiB, 3 passes).  Read
     * only at creation; the file records what was used.  Minimum 8 MiB/1. */
    uint32_t kdf_mem_kib;
    uint32_t kdf_passes;     /**< Argon2id passes for a new store (0 = default, 3) */
    /** The acting user (becomes the owner of customers it creates unless one
     * is given).  NULL = "local". */
    const char *user;
} fv_open_config;

/**
 * Open (or with FV_OPEN_CREATE, create) a store.  On success *out is a new
 * handle to be freed with fv_close().  On failure *out is still set when a
 * handle could be allocated (read the message with fv_errmsg(*out), then
 * fv_close() it), or NULL when even that failed.
 * Returns FV_EKEY for a wrong credential (the files are not modified),
 * FV_ECORRUPT for a damaged or tampered file, FV_EBUSY if open elsewhere.
 */
FV_API FV_NODISCARD fv_status fv_open(fv_db **out, const fv_open_config *cfg);

/** Close the handle and free everything obtained from it.  NULL-safe.
 * Unfinished batches are rolled back.  Keys are wiped. */
FV_API fv_status fv_close(fv_db *db);

/** Message for the last failed call on db (or "not an error").  Owned by db;
 * valid until the next call on db.  Never contains a key or a protected
 * value.  db may be NULL ("out of memory"). */
FV_API const char *fv_errmsg(const fv_db *db);

/** Status of the last failed call on db (FV_OK after a success). */
FV_API fv_status fv_errcode(const fv_db *db);

/** Change the passphrase: rewraps the database key only (no page is
 * rewritten).  Crash-safe: after a crash either credential opens the store,
 * never neither.  The store must have been opened with a passphrase. */
FV_API FV_NODISCARD fv_status fv_change_passphrase(fv_db *db,
                                                   const char *passphrase,
                                                   size_t passphrase_len);

/** Rekey: a new random database key and key epoch, and every page rewritten
 * under it.  Crash-safe: an interrupted rekey is finished on the next open. */
FV_API FV_NODISCARD fv_status fv_rekey(fv_db *db);

/** Authenticate every page of the database file and every frame of its WAL,
 * then run SQLite's integrity check.  FV_ECORRUPT names the first bad page. */
FV_API FV_NODISCARD fv_status fv_check(fv_db *db);

/** Batches: every write is its own transaction unless wrapped in
 * fv_begin()/fv_commit().  fv_rollback() undoes the batch.  Not nestable. */
FV_API FV_NODISCARD fv_status fv_begin(fv_db *db);
/** Commit the batch begun by fv_begin(): its writes become one transaction. */
FV_API FV_NODISCARD fv_status fv_commit(fv_db *db);
/** Undo the batch begun by fv_begin(): none of its writes happened. */
FV_API fv_status fv_rollback(fv_db *db);

/** \} */

/** \defgroup schema_catalogue Schema catalogue
 * \{ */

/** A field's class, which the access policy and field encryption go by. */
typedef enum fv_field_class {
    FV_CLASS_PUBLIC = 0,      /**< every role with access to the row reads it */
    FV_CLASS_PII = 1,         /**< personal data (phone, e-mail): sealed with a field key */
    FV_CLASS_CONFIDENTIAL = 2 /**< budget, decision chain: sealed with a field key */
} fv_field_class;

/** A field's type: what a value must be (checked by the setters). */
typedef enum fv_field_type {
    FV_TYPE_TEXT = 0, /**< free text, at most the field's max length         */
    FV_TYPE_ENUM = 1, /**< one of the catalogue's listed values               */
    FV_TYPE_DATE = 2, /**< YYYY-MM-DD                                         */
    FV_TYPE_TIME = 3, /**< ISO 8601 instant, stored as YYYY-MM-DDTHH:MM:SSZ   */
    FV_TYPE_REAL = 4, /**< a finite double (latitude, longitude)             */
    FV_TYPE_REF = 5   /**< the id of a record of another table               */
} fv_field_type;

/** Schema version this library writes (migrations run forward on open). */
FV_API int fv_schema_version(void);

/** Add an app-defined text field to a table of the catalogue (stored and
 * synced like the shipped ones).  FV_EEXIST if it exists. */
FV_API FV_NODISCARD fv_status fv_schema_add_field(fv_db *db, const char *table,
                                                  const char *field,
                                                  fv_field_class cls);

/** Class of table.field, or FV_ENOTFOUND. */
FV_API FV_NODISCARD fv_status fv_schema_field_class(fv_db *db,
                                                    const char *table,
                                                    const char *field,
                                                    fv_field_class *cls);

/** \} */

/** \defgroup records Records
 * \{ */

/**
 * An fv_record is an in-memory copy of one row of a catalogue table
 * ("customer", "contact", "visit"): its id and its field values.  Build a
 * new one with fv_record_new() and fv_insert() it, or fv_get() an existing
 * one, change fields with the setters and fv_update() it (only the fields
 * set since it was read are written).  A record belongs to the db it came
 * from and must be freed (fv_record_free) before fv_close.
 */
typedef struct fv_record fv_record;

/** A new, empty record of table, to be filled with the setters and
 * fv_insert()ed.  *out to be freed with fv_record_free. */
FV_API FV_NODISCARD fv_status fv_record_new(fv_db *db, const char *table,
                                            fv_record **out);
/** NULL-safe. */
FV_API fv_status fv_record_free(fv_record *rec);

/** Setters validate against the catalogue (name, type, enum values, length);
 * a bad value is FV_EINVAL with a message and leaves the record unchanged.
 * value NULL clears the field. */
FV_API FV_NODISCARD fv_status fv_record_set_text(fv_record *rec,
                                                 const char *field,
                                                 const char *value);
/** The setter of a number field (FV_TYPE_REAL): v must be finite. */
FV_API FV_NODISCARD fv_status fv_record_set_real(fv_record *rec,
                                                 const char *field, double v);

/** Getters.  *value is NULL when the field is empty.  The string is owned by
 * the record and valid until the field is set again or the record freed.
 * Reading a confidential field this way is audited: the first call that
 * hands a stored value of a confidential field of a record from fv_get() or
 * a list to the caller appends an entry to the read audit (see
 * fv_audit_each).  Should that append fail (a full disk, say), the getter
 * returns its status and not the value. */
FV_API FV_NODISCARD fv_status fv_record_get_text(const fv_record *rec,
                                                 const char *field,
                                                 const char **value);
/** In a store enrolled with a server, a field the user's role may not read
 * is redacted: the getters return FV_EACCES for it (never an empty value),
 * and fv_record_redacted says so.  Rows outside the user's scope are not
 * returned at all (FV_ENOTFOUND, absent from lists); a write the role may
 * not make is FV_EACCES with a message naming the field and role.
 * A pii or confidential value that arrived sealed with a team field key
 * this device does not hold (yet) is redacted too, until a grant brings the
 * key.  One that fails authentication under a key the device holds (a
 * ciphertext moved to another record or field, or altered) makes the
 * getters return FV_ECORRUPT for that field; the rest of the record reads. */
FV_API FV_NODISCARD fv_status fv_record_redacted(const fv_record *rec, const char *field,
                                                 int *redacted);
/** *is_set = 0 when the field is empty. */
FV_API FV_NODISCARD fv_status fv_record_get_real(const fv_record *rec,
                                                 const char *field, double *v,
                                                 int *is_set);

/** Id (FV_ID_LEN chars), table name, and a computed "due on" date for records
 * returned by fv_due().  Strings owned by the record; NULL when not known. */
FV_API const char *fv_record_id(const fv_record *rec);
/** The record's table name.  Owned by the record. */
FV_API const char *fv_record_table(const fv_record *rec);
/** The computed "due on" date (YYYY-MM-DD) of a record from fv_list_due();
 * NULL for others.  Owned by the record. */
FV_API const char *fv_record_due(const fv_record *rec);

/** Iterate the record's fields in catalogue order: i from 0 while FV_OK.
 * FV_ENOTFOUND past the end.  *name owned by the record. */
FV_API FV_NODISCARD fv_status fv_record_field(const fv_record *rec, size_t i,
                                              const char **name,
                                              fv_field_type *type);

/** Insert a new record: assigns a UUIDv7 id (read with fv_record_id).  One
 * transaction unless inside a batch.  A reference to a customer that was
 * merged into another (fv_customer_merge) is written as a reference to the
 * customer that survives: the record's field is changed accordingly.  The
 * "audit" table is written by the library only: FV_EACCES. */
FV_API FV_NODISCARD fv_status fv_insert(fv_db *db, fv_record *rec);
/** Write the fields set since the record was read or inserted (a merged
 * customer's reference followed as for fv_insert). */
FV_API FV_NODISCARD fv_status fv_update(fv_db *db, fv_record *rec);
/** Read one record.  FV_ENOTFOUND if absent or deleted; for a customer
 * merged into another the message names the survivor ("customer X was
 * merged into Y"), which fv_customer_merged_into() returns.  *out to be
 * freed with fv_record_free. */
FV_API FV_NODISCARD fv_status fv_get(fv_db *db, const char *table,
                                     const char *id, fv_record **out);
/** Delete: a tombstone (the row stays, hidden from reads and lists).  Not
 * for the append-only "audit" table: FV_EACCES. */
FV_API FV_NODISCARD fv_status fv_delete(fv_db *db, const char *table,
                                        const char *id);
/** Undo a delete: the row is live again (its fields as they were).  A
 * delete and an edit made concurrently elsewhere never revive a row; only a
 * restore does, and it wins over a delete only if it is later.  FV_ENOTFOUND
 * if there is no deleted row with that id. */
FV_API FV_NODISCARD fv_status fv_restore(fv_db *db, const char *table,
                                         const char *id);

/** \} */

/** \defgroup lists_and_queries Lists and queries
 * \{ */

/** A list of records being read (fv_list_next), made by the fv_list_*
 * functions and freed by fv_list_free.  Opaque. */
typedef struct fv_list fv_list;

/** Which customers fv_list_customers() returns: every field set must match. */
typedef struct fv_customer_filter {
    size_t size;       /**< sizeof(fv_customer_filter) */
    const char *stage; /**< NULL = any */
    const char *grade; /**< NULL = any */
    const char *owner; /**< NULL = any */
} fv_customer_filter;

/** Customers matching the filter (filter may be NULL), by name. */
FV_API FV_NODISCARD fv_status fv_list_customers(fv_db *db,
                                                const fv_customer_filter *f,
                                                fv_list **out);
/** Visits of one customer (or all when customer_id is NULL), newest first. */
FV_API FV_NODISCARD fv_status fv_list_visits(fv_db *db,
                                             const char *customer_id,
                                             fv_list **out);
/** Contacts of one customer (or all when NULL), by name. */
FV_API FV_NODISCARD fv_status fv_list_contacts(fv_db *db,
                                               const char *customer_id,
                                               fv_list **out);
/**
 * Follow-ups due on or before date (YYYY-MM-DD; NULL = today, UTC).  A
 * customer's due date is its next_due when set, else its last visit (or its
 * creation) plus the grade cadence: S 7 days, A 14, B 30 (no grade: 30).
 * Lost customers are never due.  Ordered by due date; fv_record_due() gives
 * the computed date.
 */
FV_API FV_NODISCARD fv_status fv_list_due(fv_db *db, const char *date,
                                          fv_list **out);

/** Next record: *rec is NULL at the end.  *rec is owned by the list and valid
 * until the next fv_list_next or fv_list_free. */
FV_API FV_NODISCARD fv_status fv_list_next(fv_list *list,
                                           const fv_record **rec);
/** NULL-safe. */
FV_API fv_status fv_list_free(fv_list *list);

/** \} */

/** \defgroup history History
 *
 * The store keeps the transitions of the fields reports follow: a
 * customer's stage and grade.  An entry is added, in the write's own
 * transaction, whenever a new value of one of them is stored: by a local
 * write, or by a pulled or imported change that wins the merge (a change
 * that loses adds nothing; a write that leaves the value as it was adds
 * nothing).  The history is this replica's: it holds the transitions this
 * device saw, so a device that received only the latest of several edits
 * made elsewhere sees one transition where the writer saw several.
 * \{
 */
/** One transition of a followed field, as fv_history_each() reports it. */
typedef struct fv_history_entry {
    const char *table;     /**< "customer" */
    const char *row_id;    /**< the record's id (FV_ID_LEN characters) */
    const char *field;     /**< "stage" or "grade" */
    const char *old_value; /**< the value before; NULL when it was empty (or unknown) */
    const char *new_value; /**< the value after; NULL when it was cleared */
    uint64_t hlc;          /**< the change's hybrid logical clock: milliseconds << 16 | counter */
    char device[33];       /**< the device that wrote the change: 32 hex characters */
} fv_history_entry;

/** Called once per entry.  e and its strings are owned by the iteration and
 * valid until the callback returns.  Return 0 to go on, nonzero to stop. */
typedef int (*fv_history_fn)(void *ctx, const fv_history_entry *e);

/** Call fn for each transition of table.field (only "customer" with "stage"
 * or "grade" are followed; others are FV_EINVAL) whose change is dated
 * since_ms <= time < until_ms (milliseconds since the Unix epoch, UTC, from
 * the hlc; until_ms 0 = no upper bound), oldest first.  Access control
 * applies as in fv_get: entries of records the acting user may not read,
 * or that are deleted, are skipped; so are those of a field the user's role
 * may not read.  fn may call the reading functions on db (fv_get, the
 * lists) but must not write through db or close it.  A callback that stops
 * the iteration is not an error: FV_OK. */
FV_API FV_NODISCARD fv_status fv_history_each(fv_db *db, const char *table, const char *field,
                                              int64_t since_ms, int64_t until_ms,
                                              fv_history_fn fn, void *ctx);

/** \} */

/** \defgroup duplicates_merge_audit Duplicates, customer merge, read audit
 *
 * Duplicates.  Two customers are the same when their names have the same
 * key (fv_normalize with FV_NORM_NAME); two contacts when their phone
 * numbers or e-mail addresses have the same key.  Phone and e-mail are
 * protected, so they are matched through a blind index kept beside each
 * value in this store (never synced): a keyed BLAKE2b of the key under the
 * team's pii field key when this device holds one, else under a random key
 * of this store; it is computed on every local write, every applied change
 * and whenever field keys arrive, and looked up by value, never by
 * decrypting the stored values.  A value this device holds only sealed (no
 * key yet) has no index until its key arrives.
 *
 * Merge.  fv_customer_merge() folds one customer into another in one
 * transaction of ordinary changes, so it syncs like any edit.  A device
 * that receives (or writes) a contact, visit or other record pointing at a
 * merged-away customer re-points it to the survivor as a change of its own,
 * so a record added offline to the merged-away customer ends on the
 * survivor on every replica.
 *
 * Read audit.  Every time a confidential value is handed to the caller (the
 * first fv_record_get_text or fv_record_get_real of the field on a record
 * from fv_get() or a list; fv_customer_merge moving a value never hands it
 * out) an entry is appended: who (the acting user), which record (table,
 * id, and its customer), which field, when (milliseconds), by which device.
 * Entries are hash-chained per device: each holds its position, the id and
 * hash of the previous entry of its device, and its own hash, BLAKE2b-256
 * of (previous hash || the entry's canonical bytes).  They are rows of the
 * shipped table "audit" (append-only: the record API refuses to write it),
 * synced like visits: to fvd and to the devices whose user may see the
 * customer read.  The entry is written before the value is handed out: a
 * read while a list is open or inside an fv_history_each callback is
 * audited like any other; inside a batch (fv_begin) the entry belongs to
 * the batch, and fv_rollback() discards it with the batch's writes; a
 * store that cannot be written (read-only media, a full disk) cannot hand
 * out confidential values at all: the getter fails with the write's status
 * (fail closed) while the other fields read as usual.
 * \{
 */

/** Which key fv_normalize() computes. */
typedef enum fv_norm_kind {
    FV_NORM_NAME = 0,  /**< white space trimmed and collapsed, full-width ASCII
                            folded to half-width, ASCII case folded */
    FV_NORM_PHONE = 1, /**< the digits, with a leading '+' kept:
                            "+86 138-0000-0000" -> "+8613800000000" */
    FV_NORM_EMAIL = 2  /**< trimmed, full-width ASCII folded, ASCII case folded */
} fv_norm_kind;

/** The duplicate-detection key of value into out (cap bytes; strlen(value)
 * + 1 always suffices: a key is never longer than its value).  No store is
 * needed: pure and thread-safe.  FV_EINVAL when cap is too small or kind
 * unknown, FV_EMISUSE for NULL arguments. */
FV_API FV_NODISCARD fv_status fv_normalize(fv_norm_kind kind, const char *value, char *out,
                                           size_t cap);

/** An existing record that matches the one looked up (fv_find_duplicates). */
typedef struct fv_duplicate {
    const char *table;       /**< "customer" or "contact" */
    const char *id;          /**< the matching record's id */
    const char *field;       /**< what matched: "name", "phone" or "email" */
    const char *name;        /**< the matching record's name (public) */
    const char *customer_id; /**< a contact's customer; NULL for a customer */
} fv_duplicate;

/** Called once per candidate; d and its strings are valid until the
 * callback returns.  Return 0 to go on, nonzero to stop. */
typedef int (*fv_duplicate_fn)(void *ctx, const fv_duplicate *d);

/** Look for stored live records that duplicate rec (a customer: same name
 * key; a contact: same phone or e-mail key, matched through the blind
 * index), typically before fv_insert()ing it.  rec itself (when stored) is
 * never a candidate; records the acting user may not see are not
 * reported.  Candidates come in id order, a contact once per matching
 * field.  Other tables have no duplicates (FV_OK, no call).  fn may read
 * through db but not write.  A callback that stops is not an error. */
FV_API FV_NODISCARD fv_status fv_find_duplicates(fv_db *db, const fv_record *rec,
                                                 fv_duplicate_fn fn, void *ctx);

/** What fv_customer_merge() did. */
typedef struct fv_merge_info {
    size_t size;            /**< sizeof(fv_merge_info) */
    size_t fields_filled;   /**< KEEP's empty fields filled from OTHER's */
    size_t contacts;        /**< contacts re-pointed to KEEP */
    size_t visits;          /**< visits re-pointed to KEEP */
    size_t others;          /**< records of other tables re-pointed (complaints) */
} fv_merge_info;

/**
 * Merge customer other_id into keep_id, in one transaction (or the caller's
 * batch).  Rule for fields: KEEP's value wins; an empty field of KEEP takes
 * OTHER's value (never owner, team or merged_into: who owns the merged
 * customer stays KEEP's).  Every record of another table that refers to
 * OTHER by customer_id (contacts, visits, complaints; deleted ones too; not
 * audit entries, which stay as written) is re-pointed to KEEP; OTHER gets
 * merged_into = KEEP and is deleted (a tombstone).  All of it is captured
 * as changes and syncs.  FV_EINVAL for the same id twice, FV_ENOTFOUND when
 * either is not a live customer this user sees, FV_EACCES (nothing
 * changed) when the user may not make one of the writes.  info may be NULL.
 */
FV_API FV_NODISCARD fv_status fv_customer_merge(fv_db *db, const char *keep_id,
                                                const char *other_id, fv_merge_info *info);

/** Where a merged customer went: out gets the customer that survives,
 * following merged_into through later merges.  FV_ENOTFOUND when id is not
 * a customer merged into another here (or the chain loops: two customers
 * merged into each other concurrently). */
FV_API FV_NODISCARD fv_status fv_customer_merged_into(fv_db *db, const char *id,
                                                      char out[FV_ID_LEN + 1]);

/** One entry of the read audit (fv_audit_each). */
typedef struct fv_audit_entry {
    const char *id;          /**< the entry's own id */
    const char *user;        /**< who read */
    const char *table;       /**< the record's table */
    const char *row_id;      /**< the record's id */
    const char *field;       /**< the confidential field read */
    const char *customer_id; /**< the record's customer (NULL if none) */
    int64_t at_ms;           /**< when, milliseconds since the Unix epoch */
    const char *device;      /**< the reading device: 32 hex characters */
    uint64_t seq;            /**< position in that device's chain, from 1 */
    const char *prev_hash;   /**< the previous entry's hash: 64 hex characters */
    const char *hash;        /**< this entry's hash: 64 hex characters */
    int deleted;             /**< the row was deleted (verify reports it) */
} fv_audit_entry;

/** Called once per entry; e and its strings are valid until the callback
 * returns.  Return 0 to go on, nonzero to stop. */
typedef int (*fv_audit_fn)(void *ctx, const fv_audit_entry *e);

/** The audit entries this store holds (its own and those synced to it), by
 * device, then position.  Entries are not filtered by scope: a store holds
 * only those of customers its user may see.  fn may call the reading
 * functions on db but must not write through it. */
FV_API FV_NODISCARD fv_status fv_audit_each(fv_db *db, fv_audit_fn fn, void *ctx);

/** One finding of fv_audit_verify(). */
typedef struct fv_audit_problem {
    const char *device;   /**< the chain: 32 hex characters */
    uint64_t position;    /**< the entry's position in it (from 1) */
    const char *entry_id; /**< the entry's id; NULL when it cannot be known */
    const char *kind;     /**< "edited", "removed", "deleted" or "forged" */
    const char *detail;   /**< one sentence naming the entry and what is wrong */
} fv_audit_problem;

/** Called once per problem; p is valid until the callback returns. */
typedef int (*fv_audit_problem_fn)(void *ctx, const fv_audit_problem *p);

/** What fv_audit_verify() checked. */
typedef struct fv_audit_summary {
    size_t size;        /**< sizeof(fv_audit_summary) */
    uint64_t entries;   /**< entries checked */
    uint64_t devices;   /**< chains (devices) */
    uint64_t problems;  /**< problems reported */
} fv_audit_summary;

/**
 * Recompute every device's chain.  An entry whose hash does not match its
 * contents, or whose successor does not link to it, is "edited"; a
 * deleted row is "deleted"; two entries at one position, "forged"; a
 * missing position is "removed" (named by the id its successor links to).
 * Missing positions are certain for this device's own chain (anchored in
 * the store, the last entry included) and for any chain when every entry
 * reaches this store (a store never enrolled, or a user whose scope is all
 * customers); a store that receives only some customers' entries cannot
 * tell a removed entry from one it was never sent, so there only entries
 * whose changes it holds count (a row removed behind the library's back
 * leaves its versions behind).  FV_OK when the check ran, whatever it
 * found: sum->problems says; fn may be NULL.
 */
FV_API FV_NODISCARD fv_status fv_audit_verify(fv_db *db, fv_audit_problem_fn fn, void *ctx,
                                              fv_audit_summary *sum);

/** \} */

/** \defgroup workflows Workflows: grade review, complaints, important dates
 *
 * The working rules of a sales team's playbook, on records that sync like
 * any other.  The store merges per field, last writer wins; so every step
 * of a workflow writes fields of its own, once, in one write: a replica
 * that has seen a step holds all of it, and concurrent steps made offline
 * never undo each other.
 *
 *  - Grade review: a grade proposal (customer.grade_proposed, _by, _at and
 *    its id grade_proposal_id) stays proposed until a decision that names
 *    it (customer.grade_decision approved|rejected, _decided_by, _decided_at,
 *    grade_decision_for = the proposal's id) exists.  An approval sets
 *    customer.grade to the proposed grade in the same write; a rejection
 *    writes the grade it leaves in place, so that of two concurrent
 *    decisions the one that wins also decides the grade.  In an enrolled
 *    store only the roles lead and director decide, and only they change a
 *    customer's grade directly (FV_EACCES for the others, on the device and
 *    in fvd); a customer may be given its first grade when it is created.
 *  - Complaints (table "complaint": customer_id, summary, channel, urgency
 *    normal|urgent|critical, received_at): acknowledging, responding and
 *    resolving each stamp their own fields (acked_at/_by/ack_note,
 *    responded_at/..., resolved_at/...).  The status is the furthest step
 *    stamped (open < acknowledged < responded < resolved), so it only moves
 *    forward on every replica whatever order the steps arrive in.  The
 *    deadlines (ack_due, respond_due, resolve_due) are set when the
 *    complaint is inserted, from received_at and the store's deadline
 *    policy for its urgency, and travel with it.
 *  - Important dates: a contact's birthday (contact.birthday, MM-DD, pii)
 *    and a customer's cooperation anniversary (customer.since, a date).
 *
 * Clocks: "now" is the platform clock (fv_platform_now_ms in platform.h)
 * unless a function takes a now_ms other than 0.
 * \{
 */

/** Where a customer's grade review stands (fv_grade_review.state). */
typedef enum fv_grade_review_state {
    FV_GRADE_NONE = 0,     /**< no proposal was ever made */
    FV_GRADE_PROPOSED = 1, /**< the latest proposal waits for a decision */
    FV_GRADE_APPROVED = 2, /**< the latest proposal was approved: it is the grade now */
    FV_GRADE_REJECTED = 3  /**< the latest proposal was rejected: the grade stayed */
} fv_grade_review_state;

/** A customer's grade and the latest proposal to change it
 * (fv_grade_review_of). */
typedef struct fv_grade_review {
    size_t size;                       /**< sizeof(fv_grade_review) */
    fv_grade_review_state state;       /**< of the latest proposal */
    char grade[2];                     /**< the grade in force ("" none) */
    char proposed[2];                  /**< the latest proposal's grade ("" none) */
    char proposed_by[257];             /**< who proposed it (at most 256 bytes) */
    char proposed_at[21];              /**< when: YYYY-MM-DDTHH:MM:SSZ */
    char decided_by[257];              /**< who decided on it ("" while proposed) */
    char decided_at[21];               /**< when ("" while proposed) */
} fv_grade_review;

/** Propose grade (S, A or B) for customer_id, as the acting user: one
 * write of the proposal's fields, which syncs like any change; the grade
 * itself does not change.  A proposal still waiting is replaced.
 * FV_EINVAL for a grade that is not S, A or B or is the customer's grade
 * already; FV_ENOTFOUND for a customer this user cannot see; FV_EACCES if
 * the user may not write the customer. */
FV_API FV_NODISCARD fv_status fv_grade_propose(fv_db *db, const char *customer_id,
                                               const char *grade);
/** Decide on the customer's waiting proposal, as the acting user: approve
 * (approve != 0: the grade becomes the proposed one) or reject (the grade
 * stays), one write.  FV_EINVAL when no proposal waits (none was made, or
 * the latest one was decided already: the message says by whom);
 * FV_EACCES in an enrolled store for a role other than lead and
 * director. */
FV_API FV_NODISCARD fv_status fv_grade_decide(fv_db *db, const char *customer_id, int approve);
/** The review state of a customer read with fv_get or from a list (set
 * out->size first).  Fields redacted for the user read as empty. */
FV_API FV_NODISCARD fv_status fv_grade_review_of(const fv_record *customer, fv_grade_review *out);
/** Called once per customer by fv_grade_reviews_each; customer and r are
 * owned by the iteration and valid until the callback returns.  Return 0
 * to go on, nonzero to stop. */
typedef int (*fv_grade_review_fn)(void *ctx, const fv_record *customer, const fv_grade_review *r);
/** Call fn for each customer the user can see that has a grade proposal
 * (with pending_only, only those waiting for a decision), latest proposal
 * first.  fn may read through db but must not write through it.  A
 * callback that stops the iteration is not an error. */
FV_API FV_NODISCARD fv_status fv_grade_reviews_each(fv_db *db, int pending_only,
                                                    fv_grade_review_fn fn, void *ctx);

/** The built-in complaint deadlines (seconds after reception): acknowledge
 * within an hour, respond within a day, resolve within two.  A new store
 * records them as its policy; fv_complaint_deadlines_set changes it. */
#define FV_COMPLAINT_ACK_S 3600
/** Respond within a day (built-in default). */
#define FV_COMPLAINT_RESPOND_S 86400
/** Resolve within two days (built-in default). */
#define FV_COMPLAINT_RESOLVE_S 172800
/** Longest deadline a policy may set: a year (seconds). */
#define FV_COMPLAINT_DEADLINE_MAX (366LL * 86400)

/** A complaint's status: the furthest step stamped. */
typedef enum fv_complaint_status {
    FV_COMPLAINT_OPEN = 0,         /**< received, nothing done yet */
    FV_COMPLAINT_ACKNOWLEDGED = 1, /**< acked_at set */
    FV_COMPLAINT_RESPONDED = 2,    /**< responded_at set */
    FV_COMPLAINT_RESOLVED = 3      /**< resolved_at set */
} fv_complaint_status;

/** The deadline policy of one urgency (fv_complaint_deadlines_get/_set):
 * seconds after reception, 0 < ack_s <= respond_s <= resolve_s <=
 * FV_COMPLAINT_DEADLINE_MAX. */
typedef struct fv_complaint_deadlines {
    size_t size;       /**< sizeof(fv_complaint_deadlines) */
    int64_t ack_s;     /**< to acknowledge */
    int64_t respond_s; /**< to respond */
    int64_t resolve_s; /**< to resolve */
} fv_complaint_deadlines;

/** The store's deadline policy for complaints of urgency (normal, urgent,
 * critical; NULL: the store's default), into *out (set out->size first).
 * An urgency without a policy of its own has the default's. */
FV_API FV_NODISCARD fv_status fv_complaint_deadlines_get(fv_db *db, const char *urgency,
                                                         fv_complaint_deadlines *out);
/** Set the policy of urgency (NULL: the default, which urgencies without
 * their own follow), or with d NULL drop urgency's own policy.  Kept in
 * this store (not synced): it applies to the complaints this store
 * registers from then on; each complaint keeps the deadlines it was given.
 * FV_EINVAL for an unknown urgency or deadlines out of order or range. */
FV_API FV_NODISCARD fv_status fv_complaint_deadlines_set(fv_db *db, const char *urgency,
                                                         const fv_complaint_deadlines *d);

/** Stamp the step of complaint id that reaches status to
 * (FV_COMPLAINT_ACKNOWLEDGED, _RESPONDED or _RESOLVED) with now, the
 * acting user and note (NULL: none): one write of that step's fields.
 * Steps may be skipped (a complaint may be resolved without a separate
 * acknowledgement) but never go back: FV_EINVAL, naming the status it has,
 * when it is at to or beyond. */
FV_API FV_NODISCARD fv_status fv_complaint_advance(fv_db *db, const char *id,
                                                   fv_complaint_status to, const char *note);

/** A complaint's status and deadlines at a moment (fv_complaint_state_of).
 * Times are milliseconds since the Unix epoch (UTC); indices of due_ms and
 * done_ms are the status a step reaches (FV_COMPLAINT_ACKNOWLEDGED..
 * FV_COMPLAINT_RESOLVED; index FV_COMPLAINT_OPEN holds the reception). */
typedef struct fv_complaint_state {
    size_t size;                /**< sizeof(fv_complaint_state) */
    fv_complaint_status status; /**< the furthest step stamped */
    int64_t now_ms;             /**< the moment it was computed for */
    int64_t due_ms[4];          /**< each step's deadline; [OPEN] = received_at */
    int64_t done_ms[4];         /**< when each step was stamped (0: not); [OPEN] = received_at */
    fv_complaint_status next;   /**< the status the next step reaches; = status when resolved */
    int64_t next_due_ms;        /**< its deadline (0 when resolved) */
    int64_t left_ms;            /**< next_due_ms - now_ms (negative: overdue; 0 when resolved) */
    int overdue;                /**< 1 when now_ms is past next_due_ms (exactly at it is not) */
} fv_complaint_state;

/** The state of a complaint record (from fv_get or fv_complaints_each) at
 * now_ms (0: the platform clock), into *out (set out->size first).  A
 * deadline the complaint lacks is computed from received_at with this
 * store's policy. */
FV_API FV_NODISCARD fv_status fv_complaint_state_of(const fv_record *complaint, int64_t now_ms,
                                                    fv_complaint_state *out);

#define FV_COMPLAINTS_OVERDUE 0x01u /**< only those past their next deadline */
#define FV_COMPLAINTS_ALL 0x02u     /**< resolved ones too (default: not resolved) */

/** Called once per complaint by fv_complaints_each; complaint and st are
 * owned by the iteration and valid until the callback returns.  Return 0
 * to go on, nonzero to stop. */
typedef int (*fv_complaint_fn)(void *ctx, const fv_record *complaint,
                               const fv_complaint_state *st);
/** Call fn for each complaint the user can see that is not resolved (with
 * FV_COMPLAINTS_ALL: every one; with FV_COMPLAINTS_OVERDUE: only those
 * past their next deadline), next deadline first, as of now_ms (0: the
 * platform clock, read once).  fn may read through db but must not write
 * through it.  A callback that stops the iteration is not an error. */
FV_API FV_NODISCARD fv_status fv_complaints_each(fv_db *db, unsigned flags, int64_t now_ms,
                                                 fv_complaint_fn fn, void *ctx);

/** A birthday or anniversary falling in a range of days (fv_dates_each). */
typedef struct fv_date_event {
    const char *kind;        /**< "birthday" (a contact's) or "anniversary" (a customer's) */
    const char *table;       /**< "contact" or "customer" */
    const char *id;          /**< the contact's or customer's id */
    const char *customer_id; /**< the customer (the record itself for an anniversary) */
    const char *name;        /**< the contact's or customer's name */
    const char *customer;    /**< the customer's name (NULL if it cannot be read) */
    char date[11];           /**< the day it falls on: YYYY-MM-DD */
    int days;                /**< days from the first day of the range (0: that day) */
    int years;               /**< anniversary: years since customer.since; birthday: 0 */
} fv_date_event;
/** Called once per event; e and its strings are owned by the iteration and
 * valid until the callback returns.  Return 0 to go on, nonzero to stop. */
typedef int (*fv_date_fn)(void *ctx, const fv_date_event *e);
/** Call fn for each contact birthday (contact.birthday, MM-DD; 02-29 falls
 * on 02-28 in other years) and customer anniversary (customer.since's
 * month and day, one year after it at the earliest) falling on one of the
 * days from (YYYY-MM-DD; NULL: today, UTC) to from + days (0..366), by
 * date, birthdays first on a day.  Rows the user cannot see are left out,
 * as are birthdays redacted for the user's role.  fn may read through db
 * but must not write through it. */
FV_API FV_NODISCARD fv_status fv_dates_each(fv_db *db, const char *from, int days,
                                            fv_date_fn fn, void *ctx);

/** \} */

/** \defgroup sync_change_sets Sync: change sets
 *
 * Every local write records, in the same transaction, one change per field
 * it changed (table, row id, field, value, hybrid-logical-clock time hlc,
 * the version the writer saw base_hlc, this device's id and sequence
 * number) in an outbox.  A change set is those changes as one protobuf
 * message (fieldvault.v1.ChangeSet, sync/fieldvault.proto).  Applying a
 * change set merges each change per field, last writer wins by (hlc, device
 * id), so replicas that have seen the same changes hold the same state in
 * any order; an overwritten concurrent value is kept in the conflict log.
 * Change sets stream: neither export nor apply holds the set in memory.
 * \{
 */

/** Byte streams for change sets.  A writer returns 0, or -1 to abort.  A
 * reader returns the number of bytes put in buf (at most cap), 0 at the end,
 * -1 on error. */
typedef int (*fv_write_fn)(void *ctx, const unsigned char *buf, size_t len);
/** A change-set reader: the number of bytes put in buf (at most cap), 0 at
 * the end, -1 on error. */
typedef long (*fv_read_fn)(void *ctx, unsigned char *buf, size_t cap);

#define FV_EXPORT_ALL 0x01u /**< the full state, not the pending outbox */

/** What fv_changes_export() wrote. */
typedef struct fv_export_info {
    size_t size;        /**< sizeof(fv_export_info) */
    uint64_t count;     /**< changes written */
    uint64_t last_seq;  /**< outbox sequence of the last change written */
} fv_export_info;

/** Write the changes of the outbox with sequence > since_seq (or, with
 * FV_EXPORT_ALL, the current version of every field of every row, deleted
 * rows as tombstones) as one change set to w.  info may be NULL. */
FV_API FV_NODISCARD fv_status fv_changes_export(fv_db *db, unsigned flags,
                                                uint64_t since_seq,
                                                fv_write_fn w, void *ctx,
                                                fv_export_info *info);
/** The same into a file, written whole or not at all (temporary file, sync,
 * rename). */
FV_API FV_NODISCARD fv_status fv_changes_export_file(fv_db *db,
                                                     const char *path,
                                                     unsigned flags,
                                                     fv_export_info *info);

/** What fv_changes_apply() did with a change set. */
typedef struct fv_apply_stats {
    size_t size;         /**< sizeof(fv_apply_stats) */
    uint64_t received;   /**< changes in the set */
    uint64_t applied;    /**< changes that became the current value */
    uint64_t known;      /**< already held, or older than what is held */
    uint64_t conflicts;  /**< new entries in the conflict log */
} fv_apply_stats;

/** Apply one change set read from r, in one transaction: a truncated,
 * oversized, wrong-typed or garbage set, a change to an unknown table or
 * field, an invalid value or a change dated beyond the clock-drift bound
 * (FV_HLC_MAX_DRIFT_MS ahead of this device's clock) is FV_EPROTO with a
 * message, and nothing of the set is applied.  Applying a set twice changes
 * nothing the second time.  stats may be NULL. */
FV_API FV_NODISCARD fv_status fv_changes_apply(fv_db *db, fv_read_fn r,
                                               void *ctx,
                                               fv_apply_stats *stats);
/** The same from a file (fv_changes_export_file's). */
FV_API FV_NODISCARD fv_status fv_changes_apply_file(fv_db *db,
                                                    const char *path,
                                                    fv_apply_stats *stats);

/** How far ahead of this device's clock a received change may be dated
 * (milliseconds): later ones are refused, not adopted. */
#define FV_HLC_MAX_DRIFT_MS (24LL * 3600 * 1000)

/** This device's id in the sync protocol: 32 hex characters + NUL. */
FV_API FV_NODISCARD fv_status fv_device_id(fv_db *db, char out[33]);

/** A hash of every visible record and field (not of metadata such as
 * timestamps or versions): 64 hex characters + NUL.  Equal on replicas that
 * hold the same data. */
FV_API FV_NODISCARD fv_status fv_state_hash(fv_db *db, char out[65]);

/** \} */

/** \defgroup conflicts Conflicts
 *
 * When a change overwrites (or loses to) a value written concurrently, both
 * are kept here.  "mine" is the value this store held when the conflict was
 * detected, "theirs" the one that arrived.  The same conflict has the same
 * id on every replica that saw both values.
 * \{
 */
/** One entry of the conflict log (fv_conflicts_list). */
typedef struct fv_conflict {
    char id[33];            /**< 32 hex characters */
    char table[FV_NAME_MAX + 1]; /**< the record's table */
    char row_id[FV_ID_LEN + 1];  /**< the record's id */
    char field[FV_NAME_MAX + 1]; /**< the field both changes wrote */
    const char *mine;       /**< value text; NULL = empty.  Owned by the list */
    const char *theirs;     /**< idem */
    uint64_t mine_hlc, theirs_hlc;          /**< the clock of the change that wrote theirs */
    char mine_device[33], theirs_device[33]; /**< the device that wrote theirs */
    int winner_is_mine;     /**< which value is now current */
    int resolved;           /**< a later change (or fv_conflict_resolve) settled it */
} fv_conflict;
/** \var fv_conflict::mine_hlc
 * the clock of the change that wrote mine
 * \var fv_conflict::mine_device
 * the device that wrote mine (32 hex characters) */

/** A conflict list being read (fv_conflicts_next).  Opaque. */
typedef struct fv_conflict_list fv_conflict_list;

/** Conflicts, newest first; unresolved only unless include_resolved. */
FV_API FV_NODISCARD fv_status fv_conflicts_list(fv_db *db,
                                                int include_resolved,
                                                fv_conflict_list **out);
/** *c is NULL at the end; owned by the list, valid until the next call or
 * fv_conflicts_free. */
FV_API FV_NODISCARD fv_status fv_conflicts_next(fv_conflict_list *l,
                                                const fv_conflict **c);
/** Free a conflict list.  NULL-safe. */
FV_API fv_status fv_conflicts_free(fv_conflict_list *l);

/** Which value fv_conflict_resolve() keeps. */
typedef enum fv_keep {
    FV_KEEP_MINE = 0,  /**< the value this store held when the conflict was found */
    FV_KEEP_THEIRS = 1 /**< the value that arrived */
} fv_keep;

/** Settle a conflict: writes the kept value as a new change (later than both)
 * so every replica converges on it, and marks the conflict resolved here
 * (and, when the change arrives, on every replica that logged it). */
FV_API FV_NODISCARD fv_status fv_conflict_resolve(fv_db *db, const char *id,
                                                  fv_keep keep);

/** \} */

/** \defgroup networked_sync_with_fvd Networked sync with fvd
 *
 * A device enrols once with a one-time code from the team's admin (an
 * Ed25519 key pair is made and kept in the encrypted store), then syncs
 * whenever it is online: it pushes its outbox in bounded, numbered batches
 * (each applied by the server exactly once, however often it is retried) and
 * pulls what others changed after its cursor, until both are drained or the
 * deadline comes.  Every request is signed.  docs/protocol.md is the wire
 * contract.
 * \{
 */

/** The transport.  The default is libcurl (TLS verification on); an app may
 * supply its own (OkHttp, URLSession) through fv_sync_config.http. */
typedef struct fv_http_header {
    const char *name;  /**< header name */
    const char *value; /**< header value */
} fv_http_header;

/** One request for the transport (fv_http_post_fn).  Owned by fieldvault;
 * valid during the call. */
typedef struct fv_http_request {
    const char *url;                 /**< absolute: server URL + path */
    const fv_http_header *headers;   /**< nheaders entries */
    size_t nheaders;                 /**< entries in headers */
    const unsigned char *body;       /**< POST body (protobuf) */
    size_t body_len;                 /**< bytes of body */
    long timeout_ms;                 /**< for the whole exchange */
    size_t max_response;             /**< refuse a longer response body */
    const char *pinned_public_key;   /**< curl-style "sha256//..." or NULL */
} fv_http_request;

/** The transport's answer to one request (fv_http_post_fn). */
typedef struct fv_http_response {
    long status;                     /**< HTTP status */
    unsigned char *body;             /**< malloc'd by the transport; freed by fieldvault */
    size_t body_len;                 /**< bytes of body */
    int64_t server_time_ms;          /**< X-FV-Server-Time, 0 if absent */
} fv_http_response;

/** Perform one POST.  0 when an HTTP response (any status) was received,
 * -1 on a network failure (message in err, errcap bytes). */
typedef int (*fv_http_post_fn)(void *ctx, const fv_http_request *req, fv_http_response *resp,
                               char *err, size_t errcap);

/** How far a running fv_sync() has got (fv_sync_config.progress). */
typedef struct fv_sync_progress {
    uint64_t pushed, pulled;         /**< changes received so far in this sync */
    uint64_t bytes_sent, bytes_received; /**< response bytes received so far */
} fv_sync_progress;
/** \var fv_sync_progress::pushed
 * changes pushed so far in this sync
 * \var fv_sync_progress::bytes_sent
 * request bytes sent so far */
/** Called by fv_sync() after each batch, on the syncing thread; p is valid
 * during the call. */
typedef void (*fv_progress_fn)(void *ctx, const fv_sync_progress *p);

/** How to sync (fv_sync) or enrol (fv_enroll): every field 0/NULL for the
 * defaults. */
typedef struct fv_sync_config {
    size_t size;                     /**< sizeof(fv_sync_config) */
    const char *server;              /**< NULL: the URL given at enrolment */
    int64_t max_ms;                  /**< time box; 0 = none */
    uint32_t batch_changes;          /**< push batch size; 0 = 500 */
    long request_timeout_ms;         /**< 0 = 30000 */
    int max_attempts;                /**< per request on network errors / 5xx; 0 = 4 */
    fv_http_post_fn http;            /**< NULL = libcurl */
    void *http_ctx;                  /**< passed to http */
    const char *pinned_public_key;   /**< for the default transport */
    fv_progress_fn progress;         /**< NULL = no progress reports */
    void *progress_ctx;              /**< passed to progress */
} fv_sync_config;

/** What one fv_sync() did. */
typedef struct fv_sync_result {
    size_t size;                     /**< sizeof(fv_sync_result) */
    uint64_t pushed, pulled, conflicts; /**< new entries in the conflict log */
    int drained;                     /**< 1: nothing left to push or pull */
    int stopped;                     /**< 1: stopped by the deadline or a cancel */
    int wiped;                       /**< 1: the device was revoked; the store is erased */
    uint64_t rejected;               /**< changes fvd refused (not allowed for this user);
                                        the rest of their batches applied */
} fv_sync_result;
/** \var fv_sync_result::pushed
 * changes pushed (accepted by fvd)
 * \var fv_sync_result::pulled
 * changes pulled from fvd */

/** Enrol with fvd at server (an http:// or https:// URL) using the one-time
 * code; keeps the server URL, identity and keys in the store.  FV_EACCES for
 * a refused code, FV_ENET if the server cannot be reached.  cfg may be NULL
 * (only its transport fields are used). */
FV_API FV_NODISCARD fv_status fv_enroll(fv_db *db, const char *server, const char *code,
                                        const fv_sync_config *cfg);

/** Sync until both directions are drained, the time box ends or fv_sync_cancel
 * is called; stops only at batch boundaries, so the next call resumes where
 * this one stopped.  res may be NULL.  FV_OK also when stopped early
 * (res->stopped); FV_ENET after the retries are spent; FV_EPROTO when fvd
 * refused a batch (a clock far ahead, a store put back from an old copy: the
 * message says which; the outbox is kept); FV_EACCES when the device was
 * revoked (res->wiped: the store is erased; close the handle).  Changes fvd
 * refused (res->rejected) and field-key grants this device refused (a bad
 * signature, or an admin key other than the one pinned at the first grant)
 * do not stop the sync: it returns FV_OK and fv_sync_status_get's last_error
 * says what was refused. */
FV_API FV_NODISCARD fv_status fv_sync(fv_db *db, const fv_sync_config *cfg, fv_sync_result *res);

/** Ask a running fv_sync on db to stop at the next batch boundary.  The only
 * call that may be made from another thread while db is in use. */
FV_API fv_status fv_sync_cancel(fv_db *db);

/** A store's sync state (fv_sync_status_get). */
typedef struct fv_sync_status {
    size_t size;                     /**< sizeof(fv_sync_status) */
    int enrolled;                    /**< 1 once fv_enroll succeeded */
    char server[256];                /**< the server's URL ("" before enrolment) */
    char user[FV_NAME_MAX + 1], role[FV_NAME_MAX + 1], team[FV_NAME_MAX + 1]; /**< the user's team */
    char device_id[33];              /**< 32 hex characters */
    uint64_t pending_changes;        /**< in the outbox */
    uint64_t pull_cursor;            /**< the server sequence pulled up to */
    int64_t last_sync_ms;            /**< last sync that drained both ways; 0 never */
    char last_error[256];            /**< of the last sync; empty if it succeeded */
    uint32_t policy_version;         /**< the access policy in force (0: not enrolled) */
} fv_sync_status;
/** \var fv_sync_status::user
 * the enrolled user ("" before enrolment)
 * \var fv_sync_status::role
 * the user's role: rep, lead, director, service or admin */

/** Fill *st (set st->size first) with the store's enrolment and sync state. */
FV_API FV_NODISCARD fv_status fv_sync_status_get(fv_db *db, fv_sync_status *st);

/** \} */

/** \defgroup field_keys Field keys (enrolled stores)
 * pii and confidential values are sealed on the writing device with its
 * team's field key for that class (XChaCha20-Poly1305, bound to table, row,
 * field and key version) and travel and rest on the server only as that
 * ciphertext.  Keys reach a device as grants from the admin, fetched by
 * fv_sync.
 * \{
 */
/** A field key this device holds (fv_field_keys): its identity, never the key. */
typedef struct fv_field_key_info {
    char team[FV_NAME_MAX + 1]; /**< the team whose values it seals */
    fv_field_class cls;   /**< FV_CLASS_PII or FV_CLASS_CONFIDENTIAL */
    uint32_t version;     /**< 1, 2, ...: rotation adds one; new writes use the newest */
    char key_id[17];      /**< 16 hex digits: the key's public id, never key material */
} fv_field_key_info;

/** The field keys this device holds: up to cap into out, *n = how many are
 * held (may exceed cap). */
FV_API FV_NODISCARD fv_status fv_field_keys(fv_db *db, fv_field_key_info *out, size_t cap,
                                            size_t *n);
/** The re-encryption pass after a key rotation: every pii/confidential value
 * this user may read and write is written again (the same value, a new
 * change), so it is sealed with the newest key of its team and the old
 * ciphertext is superseded everywhere at the next sync.  *rewritten counts
 * the values.  Values the user may read but not write are left as they are. */
FV_API FV_NODISCARD fv_status fv_field_reencrypt(fv_db *db, size_t *rewritten);

/** \} */

#ifdef __cplusplus
}
#endif
#endif /* FIELDVAULT_H */
