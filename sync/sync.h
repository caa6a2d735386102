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

/* ---- changes.c, shared with the networked client ---- */

/* A source of changes for the encoder (fv__change_source): the outbox
 * entries with since < seq <= upto (upto 0: no limit), or (all) the state. */
typedef struct export_src {
    fv_db *db;
    sqlite3_stmt *s;
    int all;
    size_t table;      /* all: current table of the catalogue */
    uint64_t last_seq; /* outbox seq of the last change produced */
    fv_status st;      /* why the source failed */
} export_src;
fv_status fv__outbox_source_init(export_src *x, fv_db *db, uint64_t since, uint64_t upto);
int fv__export_next(void *ctx, fv__change *c);
void fv__outbox_source_done(export_src *x);

/* Runs a decoder that hands changes to sink (sctx). */
typedef int (*fv__change_sink_fn)(void *ctx, const fv__change *c, char *err, size_t errcap);
/* (the same type as wire.h's fv__change_sink) */
typedef fv_status (*fv__decode_fn)(void *dctx, fv__change_sink_fn sink, void *sctx, char *err,
                                   size_t errcap);
typedef fv_status (*fv__before_commit_fn)(fv_db *db, void *ctx);
/* Apply what decode yields in one transaction (merge, conflicts, clock);
 * before_commit (may be NULL) runs inside it last, e.g. to store a pull
 * cursor with the changes it covers. */
fv_status fv__apply_with(fv_db *db, fv__decode_fn decode, void *dctx, fv_apply_stats *stats,
                         fv__before_commit_fn before_commit, void *bctx);

#endif
