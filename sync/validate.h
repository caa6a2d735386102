/*
 * validate.h - a change checked against the shipped catalogue without a
 * store: what fvd accepts (a device checks against its own catalogue when
 * it applies, changes.c).
 */
#ifndef FV_VALIDATE_H
#define FV_VALIDATE_H

#include <stddef.h>

#include "change.h"

/* FV_OK, or FV_EINVAL with a message naming the table, field and rule
 * (never quoting a value): unknown table or field, wrong value kind, a
 * required field cleared, text breaking the field's rules (length, enum,
 * date, time, record id).  Sealed values are accepted for pii and
 * confidential fields only. */
fv_status fv__change_validate_shipped(const fv__change *c, char *err, size_t errcap);

#endif
