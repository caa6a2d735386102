/*
 * bench_fvd.h - fvd and devices for the sync benchmarks (items 4, 5, 6),
 * in the way tests/test_e2e.c drives them: fvd as a child process on a
 * free loopback port (SQLite file or a throwaway PostgreSQL database from
 * tests/pgutil.c), users added with `fvd admin add-user`, devices enrolled
 * with the one-time code and synced with fv_sync over libcurl.
 *
 * Devices open their store with a key-store hook (as a phone does, through
 * the Android Keystore or the iOS Keychain), not a passphrase: Argon2id's
 * 64 MiB would otherwise dominate both the open time and the peak memory.
 */
#ifndef FV_BENCH_FVD_H
#define FV_BENCH_FVD_H

#include <stdint.h>
#include <sys/types.h>

#include "fieldvault.h"
#include "pgutil.h"

typedef struct bfvd {
    int pg;              /* 0: SQLite (--data), 1: PostgreSQL (--postgres) */
    char store[600];     /* the data dir, or the database URL */
    pid_t pid;
    int port;
    char url[64];        /* http://127.0.0.1:PORT */
    long maxrss_kib;     /* after bfvd_stop: fvd's peak resident set (VmHWM) */
    char log[1200];      /* fvd's stderr */
} bfvd;

/* The PostgreSQL cluster for a benchmark item (started on first use). */
int bfvd_pg_cluster(pgu_cluster **out);
void bfvd_pg_stop(void);

/* A fresh store of record: a new directory (SQLite) or a new database on
 * the cluster (PostgreSQL), then fvd serving it.  0 or -1 (logged). */
int bfvd_start(bfvd *s, int pg, const char *tag);
/* SIGTERM, wait, and record its peak memory. */
void bfvd_stop(bfvd *s);

/* `fvd admin add-user NAME --role ROLE --team TEAM`: the one-time code
 * into code (cap bytes); 0 or -1. */
int bfvd_add_user(const bfvd *s, const char *name, const char *role, const char *team,
                  char *code, size_t cap);

/* Open (create) a device store at path with the benchmark key store. */
fv_status bdev_open(const char *path, int create, fv_db **out);
/* Add a customer and n visits of it (in batches of 1,000 per transaction,
 * as a day's backlog is written); 12 changes per visit, 4 for the
 * customer.  0 or -1. */
int bdev_fill(fv_db *db, long nvisits, unsigned seed);
/* Sync until drained (or an error): pushed/pulled counts summed.  With a
 * time box (cfg->max_ms), one fv_sync call that may stop early. */
fv_status bdev_sync(fv_db *db, const fv_sync_config *cfg, uint64_t *pushed, uint64_t *pulled);

#endif
