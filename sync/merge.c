/*
 * merge.c - see merge.h.  No I/O, no allocation: fvd and devices link the
 * same code, and tests drive it directly.
 */
#include "merge.h"

#include <string.h>

int fv__ver_cmp(const fv__ver *a, const fv__ver *b)
{
    if (a->hlc != b->hlc) return a->hlc < b->hlc ? -1 : 1;
    return memcmp(a->device, b->device, sizeof a->device);
}

fv__merge_result fv__merge(const fv__ver *local, const fv__ver *incoming, int values_equal)
{
    fv__merge_result r = {0, 0, 0};
    if (local == NULL) {
        r.take = 1;
        return r;
    }
    int c = fv__ver_cmp(incoming, local);
    if (c == 0) {
        r.known = 1;
        return r;
    }
    const fv__ver *winner = c > 0 ? incoming : local;
    const fv__ver *loser = c > 0 ? local : incoming;
    r.take = c > 0;
    r.conflict = !values_equal && winner->base_hlc < loser->hlc;
    return r;
}
