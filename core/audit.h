/*
 * audit.h - the read audit (audit.c): appending an entry when a
 * confidential value is handed to the caller, and the savepoint helper
 * the merge shares.
 */
#ifndef FV_AUDIT_H
#define FV_AUDIT_H

#include "records.h"

/* The value of field i of rec (confidential, stored, readable) is about to
 * be handed to the caller: append its entry, once per record and field
 * (rec->vals[i].audited).  A failure is the getter's status. */
fv_status fv__audit_read(fv_record *rec, size_t i);

/* A unit of writes that is atomic whether or not a transaction is open: a
 * transaction of its own when none is, else a savepoint in the caller's
 * (a batch, an apply), rolled back to on failure.  *mode for the end. */
fv_status fv__atomic_begin(fv_db *db, int *mode);
fv_status fv__atomic_end(fv_db *db, int mode, fv_status st);

#endif
