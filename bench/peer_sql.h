/*
 * peer_sql.h - the "record a visit" benchmark for peers that are plain
 * SQLite programs: plain SQLite, SQLite with the session extension, and
 * SQLCipher.  The same source is compiled twice: into fv_bench against the
 * system SQLite (with the session extension), and into peer_sqlcipher
 * against Debian's SQLCipher (the two libraries export the same symbols and
 * cannot share a process).
 *
 * Every peer gets fieldvault's own schema (the CREATE statements of the
 * domain tables and their indexes, read from a fieldvault store by
 * fv_bench), the same pragmas (WAL, synchronous NORMAL, exclusive locking,
 * temp_store MEMORY, no mmap, 4 KiB pages unless "as it comes"), the same
 * visits (visitgen) and the same UUIDv7 ids.
 */
#ifndef FV_BENCH_PEER_SQL_H
#define FV_BENCH_PEER_SQL_H

#include <stddef.h>

typedef struct peer_opts {
    const char *path;       /* database file to create (must not exist) */
    const char *schema_sql; /* fieldvault's domain schema, ;-separated */
    int batch;              /* 0: one transaction per visit; 1: all in one */
    long count;             /* visits to record */
    unsigned seed;          /* data set */
    int session;            /* session extension: capture each transaction's
                               changeset into an outbox table (system SQLite) */
    const char *key;        /* SQLCipher passphrase, or NULL (plain) */
    int page_size;          /* 0: the library's default ("as it comes") */
} peer_opts;

typedef struct peer_result {
    double seconds;         /* the timed loop only */
    long visits;
    long long file_bytes;   /* database + WAL after the run */
} peer_result;

/* Run one measurement.  0, or -1 with a message in err. */
int peer_sql_run(const peer_opts *o, peer_result *r, char *err, size_t errcap);

/* The timed loop; a named, never-inlined function so that callgrind can be
 * told to count only it (--toggle-collect=bench_measured_*). */
struct peer_ctx;
int bench_measured_sql(struct peer_ctx *c);

#endif
