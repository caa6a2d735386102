/*
 * merge.h - the merge rule, a pure function shared by devices and fvd.
 *
 * Per field, last writer wins by (hlc, device id): a total order, so the
 * result does not depend on the order changes arrive in (commutative,
 * associative, idempotent).  A conflict is a pair of values written without
 * knowledge of each other: the winner's writer had not seen the loser
 * (winner.base_hlc < loser.hlc) and the values differ.  That depends only on
 * the pair, so every replica that sees both values logs the same conflict.
 */
#ifndef FV_MERGE_H
#define FV_MERGE_H

#include <stdint.h>

typedef struct fv__ver {
    uint64_t hlc;
    unsigned char device[16];
    uint64_t base_hlc;
} fv__ver;

/* <0, 0, >0 as a sorts before, equal to, after b. */
int fv__ver_cmp(const fv__ver *a, const fv__ver *b);

typedef struct fv__merge_result {
    int take;      /* the incoming change becomes the current value */
    int known;     /* the incoming change is the current version already */
    int conflict;  /* log the pair (the loser is the other side) */
} fv__merge_result;

/* local: the current version (NULL when the field has none); values_equal:
 * whether the two values are the same. */
fv__merge_result fv__merge(const fv__ver *local, const fv__ver *incoming, int values_equal);

#endif
