/*
 * dedup.h - duplicate detection (dedup.c, normalize.c): the normalised keys
 * and the blind index kept beside contact phones and e-mails.
 *
 * Internal columns, not catalogue fields (they never sync; schema 7):
 * customer.name_key (the FV_NORM_NAME key: names are public), and
 * contact.phone_bidx, contact.email_bidx (FV_BLIND_LEN bytes: a keyed
 * BLAKE2b of the FV_NORM_PHONE / FV_NORM_EMAIL key under the newest pii
 * field key of the contact's customer's team when this store holds one,
 * else under fv_meta 'blind_key', a random key of this store).  NULL when
 * there is no value, or the value is held only sealed.
 */
#ifndef FV_DEDUP_H
#define FV_DEDUP_H

#include "internal.h"

/* The key of value into out (strlen(value) + 1 bytes); returns its length. */
size_t fv__normalize(fv_norm_kind kind, const char *value, char *out);

/* A row was written (a local write, an applied change): recompute what
 * depends on field (NULL: any field).  A customer's name gives its
 * name_key; its team decides its contacts' keys, so they are recomputed
 * too; a contact's phone, e-mail or customer gives its indexes.  Other
 * tables and fields: nothing.  Inside the caller's transaction. */
fv_status fv__dedup_row_written(fv_db *db, const char *table, const unsigned char row[16],
                                const char *field);

/* Recompute every customer's name key and every contact's indexes (schema
 * migration 7; field keys arrived).  Uses no catalogue: safe during
 * migrations. */
fv_status fv__dedup_reindex_all(fv_db *db);

#endif
