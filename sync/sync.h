/*
 * sync.h - what the files of sync/ share: core's internals, the change
 * struct, small helpers.
 */
#ifndef FV_SYNC_H
#define FV_SYNC_H

#include "change.h"
#include "internal.h"

/* n bytes as 2n lowercase hex digits + NUL. */
void fv__hex(const unsigned char *b, size_t n, char *out);

#endif
