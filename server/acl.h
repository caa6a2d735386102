/*
 * acl.h - fvd's half of field-level access control: the policy
 * (core/policy.c, the same module devices use) applied to pushed changes
 * (each change the device's user may not make is rejected, the rest of the
 * batch applies) and to pulls (only rows in the user's scope, only fields
 * the role may read).
 *
 * The policy in force is the one `fvd admin policy set` stored, else the
 * built-in version 1 (fv__policy_default).  Every request reads it from the
 * store (fvd_policy_current: one small row), so a policy set by another
 * process applies from the next request on, on every fvd sharing the store.
 *
 * Row scope needs a row's customer owner and team.  For a push they are
 * resolved for every row of the batch before anything of it is applied
 * (fvd_rows_*): a row the store knows is judged as it stands before the
 * batch, a new row as the batch creates it, so a reassignment in the batch
 * is judged by who may write the row now.
 *
 * A pull's row scope is decided in the store (store.h, "The log's customer
 * scope"): fvd_pull_filter_of turns the role's scope into the filter, and
 * only the field classes are checked here.
 */
#ifndef FVD_ACL_H
#define FVD_ACL_H

#include <stddef.h>

#include "change.h"
#include "policy.h"
#include "store.h"

typedef struct fvd_rows fvd_rows;

/* The policy in force into *p: the stored one, else fv__policy_default.
 * *stored (may be NULL) = 1 if it came from the store.  Store failures as
 * the store reports them. */
fv_status fvd_policy_current(fvd_store *s, fv__policy *p, int *stored, char *err,
                             size_t errcap);

/* A map of the rows of one batch.  NULL on allocation failure. */
fvd_rows *fvd_rows_new(void);
void fvd_rows_free(fvd_rows *m);
/* Note c's row (and, for owner/team/customer_id, the value the batch gives).
 * 0, or -1 when out of memory. */
int fvd_rows_note(fvd_rows *m, const fv__change *c);
/* Resolve every noted row's owner and team against the store (call inside
 * the push transaction, before the first append). */
fv_status fvd_rows_resolve(fvd_rows *m, fvd_store *s, char *err, size_t errcap);
/* May dev write c?  1, or 0 with why. */
int fvd_rows_may_write(const fvd_rows *m, const fv__policy *p, const fvd_device *dev,
                       const fv__change *c, char *why, size_t why_cap);
/* The team of c's row as fvd_rows_resolve found it (a contact's or visit's:
 * its customer's); "" if it has none.  Owned by m, valid until
 * fvd_rows_free. */
const char *fvd_rows_team(const fvd_rows *m, const fv__change *c);

/* The class of c's field in the shipped catalogue: public for "_deleted"
 * and for a field the catalogue does not have. */
fv_field_class fvd_field_class(const fv__change *c);

/* Pull: the rows dev's user may see, as a store filter (store.h): the
 * scope of the user's role under policy p, with the user's name or team as
 * they are now.  A role the policy lacks, scope none, or own/team without
 * a name or team: FVD_PULL_NOTHING.  f->name points into dev. */
void fvd_pull_filter_of(const fv__policy *p, const fvd_device *dev, fvd_pull_filter *f);
/* May dev's role read c's field (its table known, its class readable)?
 * The row's scope is the store's filter's part. */
int fvd_may_read_field(const fv__policy *p, const fvd_device *dev, const fv__change *c);

#endif
