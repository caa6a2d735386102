/*
 * change.h - one field change, the unit of capture, transport and merge.
 *
 * Shared by the outbox (core), the wire codec (sync/wire.c), the merge rules
 * (sync/merge.c) and later fvd.  Fixed-size so that decoding a hostile
 * change set never allocates per change: every length is bounded by a
 * named constant and checked before use.
 */
#ifndef FV_CHANGE_H
#define FV_CHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "fieldvault.h"

#define FV_ROWID_LEN 16
#define FV_DEVICE_LEN 16
/* A value sealed with a field key (issue: field-level access control):
 * the plaintext bound plus nonce, tag and key version. */
#define FV_SEALED_MAX (FV_FIELD_MAX + 64)
/* The pseudo-field carrying a row's tombstone: value REAL 1 = deleted,
 * 0 = live (a restore).  Merged by the same last-writer-wins rule. */
#define FV_FIELD_DELETED "_deleted"
/* Format version written in every change set. */
#define FV_WIRE_VERSION 1u

typedef enum fv__val_kind {
    FV__VAL_NULL = 0,   /* the field was cleared */
    FV__VAL_TEXT = 1,   /* data[0..len) UTF-8, NUL-terminated */
    FV__VAL_REAL = 2,   /* real */
    FV__VAL_SEALED = 3  /* data[0..len) opaque ciphertext */
} fv__val_kind;

typedef struct fv__change {
    char table[FV_NAME_MAX + 1];
    char field[FV_NAME_MAX + 1];
    unsigned char row_id[FV_ROWID_LEN];
    unsigned char device[FV_DEVICE_LEN];  /* the writing device */
    uint64_t hlc;         /* when written: ms << 16 | counter */
    uint64_t base_hlc;    /* the version the writer saw (0: none) */
    uint64_t device_seq;  /* the writer's outbox sequence number */
    fv__val_kind kind;
    double real;
    size_t len;
    unsigned char data[FV_SEALED_MAX + 1];
} fv__change;

#endif /* FV_CHANGE_H */
