/*
 * custmerge.h - customer merge (custmerge.c): following merged customers
 * and re-pointing the records that still refer to one.
 *
 * A customer is merged away when it is deleted and its merged_into names
 * another; the survivor is found by following merged_into (at most
 * FV_MERGE_HOPS_MAX hops; a loop has no survivor).
 */
#ifndef FV_CUSTMERGE_H
#define FV_CUSTMERGE_H

#include "records.h"

#define FV_MERGE_HOPS_MAX 32

/* *merged = 1 and out = the survivor when customer id is merged away (the
 * survivor's row is held here), else *merged = 0. */
fv_status fv__custmerge_survivor(fv_db *db, const unsigned char id[16], unsigned char out[16],
                                 int *merged);

/* Before rec is written: its references to merged-away customers (set, and
 * to be written) become references to their survivors. */
fv_status fv__custmerge_follow(fv_record *rec);

/* Re-point every record (contact, visit, complaint...: the tables with a
 * customer_id reference, not audit) whose customer is merged away to the
 * survivor, as local writes (captured: they sync), where the acting user
 * may write it.  After an applied change set, inside its transaction.
 * *n (may be NULL) counts them. */
fv_status fv__custmerge_repoint_all(fv_db *db, size_t *n);

#endif
