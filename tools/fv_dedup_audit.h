/*
 * fv_dedup_audit.h - the output of fv's duplicate warnings (`fv customer
 * add`, `fv contact add`), `fv customer merge` and the read audit (`fv
 * audit list`, `fv audit verify`) (issue 9).  fv.c parses the command line
 * and calls these; each writes text to f, or JSON through j when j is not
 * NULL, and returns FV_OK or the status of the library call that failed
 * (its message is on db).
 */
#ifndef FV_DEDUP_AUDIT_H
#define FV_DEDUP_AUDIT_H

#include <stdint.h>
#include <stdio.h>

#include "fieldvault.h"
#include "fv_json.h"

/* One candidate duplicate (fv_find_duplicates), copied. */
typedef struct fvda_dup {
    char table[16];
    char id[FV_ID_LEN + 1];
    char field[8];                   /* name, phone or email */
    char *name;                      /* owned; NULL when unknown */
    char customer_id[FV_ID_LEN + 1]; /* a contact's customer; "" otherwise */
} fvda_dup;

typedef struct fvda_dups {
    fvda_dup *v;
    size_t n, cap;
} fvda_dups;

/* The stored records r (not yet inserted) duplicates, into d (zeroed
 * first; free with fvda_dups_free). */
fv_status fvda_dups_find(fv_db *db, const fv_record *r, fvda_dups *d);
/* One warning line per candidate to err ("fv: warning: ..."). */
void fvda_dups_warn(FILE *err, const fvda_dups *d);
/* The candidates as a JSON array value on j. */
void fvda_dups_json(fvj_writer *j, const fvda_dups *d);
void fvda_dups_free(fvda_dups *d);

/* fv customer merge: other into keep, then what was done. */
fv_status fvda_merge(fv_db *db, const char *keep, const char *other, FILE *f, fvj_writer *j);

/* fv audit list: every entry held, by device and position. */
fv_status fvda_audit_list(fv_db *db, FILE *f, fvj_writer *j);

/* fv audit verify: the check and its findings (text lines, or one JSON
 * object with "ok" and "problems"); *problems how many, *first the first
 * one's sentence (first_cap bytes; "" when none). */
fv_status fvda_audit_verify(fv_db *db, FILE *f, fvj_writer *j, uint64_t *problems, char *first,
                            size_t first_cap);

#endif /* FV_DEDUP_AUDIT_H */
