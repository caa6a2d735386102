/*
 * pgutil.h - a throwaway PostgreSQL cluster for tests (library fvpgutil).
 *
 * pgu_start runs initdb and `pg_ctl start` from Debian's postgresql package
 * (/usr/lib/postgresql/<newest>/bin, or $FV_PG_BINDIR) into a fresh
 * directory under /tmp, listening only on 127.0.0.1 on a free port, with
 * fsync off; pgu_stop stops it (`-m immediate`: the data is thrown away)
 * and removes the directory.  PostgreSQL refuses to run as root, so a root
 * test process runs the server as the unprivileged system user `fvtest`
 * (created on first use).  A watchdog process stops the cluster if the test
 * process dies without calling pgu_stop (a crash, an abort, a kill).
 *
 * Every connection is as the superuser `fvtest` with trust authentication:
 * fine for a cluster that lives for one test run and holds only test data.
 *
 * Not thread-safe: call pgu_start and pgu_stop from one thread, before
 * starting threads of your own (pgu_start forks).  pgu_new_database may be
 * called from any thread once the cluster runs.  Missing PostgreSQL is a
 * failure (pgu_start returns -1 with a message on stderr), never a skip:
 * scripts/install-deps installs it.
 */
#ifndef FV_PGUTIL_H
#define FV_PGUTIL_H

#include <stddef.h>
#include <sys/types.h>

#define PGU_PATH_MAX 512

typedef struct pgu_cluster {
    char dir[PGU_PATH_MAX];     /* the temp dir: data/, the socket, logs */
    char bindir[PGU_PATH_MAX];  /* where initdb and pg_ctl are */
    char url[128];              /* postgresql://fvtest@127.0.0.1:PORT/fvtest */
    int port;
    int as_fvtest;              /* commands run through `runuser -u fvtest` */
    int running;
    pid_t watchdog;             /* stops the cluster if we die */
    int watchdog_fd;            /* its pipe; -1 when none */
    double start_ms;            /* how long initdb + start took */
} pgu_cluster;

/* Create and start a cluster with a database `fvtest`.  0 on success; on
 * failure -1, a message (with the server's log tail) on stderr and nothing
 * left behind.  c needs no initialisation. */
int pgu_start(pgu_cluster *c);

/* The libpq URL of the database `fvtest`; owned by c, valid until pgu_stop. */
const char *pgu_url(const pgu_cluster *c);

/* Create database name ([a-z_][a-z0-9_]*, at most 63 bytes, not existing)
 * and write its URL into url_out (cap bytes).  0 on success, -1 with a
 * message on stderr. */
int pgu_new_database(pgu_cluster *c, const char *name, char *url_out, size_t cap);

/* Stop the cluster (immediate shutdown) and remove its directory.  Safe to
 * call twice or after a failed pgu_start. */
void pgu_stop(pgu_cluster *c);

#endif
