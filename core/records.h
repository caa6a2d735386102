/*
 * records.h - the fv_record layout and the row helpers shared by
 * records.c and query.c.
 */
#ifndef FV_RECORDS_H
#define FV_RECORDS_H

#include "internal.h"

typedef struct fv__val {
    int set;      /* has a value (else empty) */
    int dirty;    /* set since read or last write */
    int redacted; /* the acting user may not read it (enrolled stores), or no key */
    int corrupt;  /* a sealed value that failed authentication */
    int loaded;   /* read from the store (fv_get, a list), not set since */
    int audited;  /* a confidential value handed out: its audit entry is written */
    char *text; /* owned; NULL for REAL */
    double real;
} fv__val;

struct fv_record {
    fv_db *db;
    const fv__table *tbl; /* points into db->cat, which keeps its order */
    unsigned char id[16];
    char id_text[FV_ID_LEN + 1];
    int has_id;
    char due[11]; /* fv_list_due only */
    fv__val vals[FV_RECORD_FIELDS_MAX];
};

/* "id, "f1", "f2"..." for t (columns prefixed by alias when given). */
size_t fv__select_list(const fv__table *t, const char *alias, char *buf, size_t cap);
/* Fill r from a row whose column col is the id, followed by the fields. */
fv_status fv__record_load_row(fv_record *r, sqlite3_stmt *s, int col);
void fv__record_clear_values(fv_record *r);
/* Wipe and free a value string. */
void fv__wipe_str(char *s);

/* ---- access control on records (acl.c) ---- */
/* Apply the policy to a row just read: *visible = 0 if out of scope; fields
 * the role may not read are cleared and marked redacted. */
fv_status fv__acl_filter(fv_record *r, int *visible);
/* FV_EACCES (message naming field and role) if the acting user may not
 * write r's set (insert) or dirty (update) fields. */
fv_status fv__acl_check_write(fv_record *r, int is_insert);
fv_status fv__acl_check_delete(fv_db *db, const fv__table *t, const unsigned char id[16]);
const char *fv__acl_default_owner(const fv_db *db);
/* After a pulled change of a customer's owner or team: if the customer left
 * the user's scope, remove it with its contacts, visits and complaints
 * (*purged = 1). */
fv_status fv__acl_purge_if_out(fv_db *db, const unsigned char id[16], int *purged);
const char *fv__acl_default_team(const fv_db *db);
/* Validate a text value for t.f as fv_record_set_text does (FV_EINVAL with a
 * message); norm receives the normalised form for times and ids ("" when
 * the value is stored as given). */
fv_status fv__validate_text(fv_db *db, const fv__table *t, const fv__field *f, const char *v,
                            char *norm, size_t norm_cap);

/* ---- workflow rules on records (workflows.c) ---- */
/* The setter's extra check of a value for t.f beyond its type (a contact's
 * birthday is a month-day MM-DD): FV_EINVAL with a message. */
fv_status fv__workflow_check_text(fv_db *db, const fv__table *t, const fv__field *f,
                                  const char *v);
/* Defaults of a record about to be inserted (a complaint: received now,
 * urgency normal, its deadlines from the store's policy). */
fv_status fv__workflow_defaults(fv_record *r);

#endif
