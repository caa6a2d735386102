/*
 * fvdproc.h - fvd as a child process for the reliability tests (test_soak,
 * test_reliability): start `fvd serve` on loopback with either backend,
 * kill it, issue enrolment codes with `fvd admin`.  Part of the
 * fvreliability test library with faultproxy.c.
 *
 * Functions that fail print why on stderr and return -1 (or NULL); the
 * caller fails its test.  Not thread-safe (they fork).
 */
#ifndef FV_FVDPROC_H
#define FV_FVDPROC_H

#include <sys/types.h>

typedef struct fvdp_backend {
    const char *fvd_bin; /* path of the fvd executable */
    const char *name;    /* "sqlite" or "postgres" */
    int pg;
    char data[512];      /* --data DIR (sqlite) */
    char url[512];       /* --postgres URL */
} fvdp_backend;

typedef struct fvdp_server {
    pid_t pid;          /* 0 when not running */
    int port;
    char base[64];      /* http://127.0.0.1:PORT */
    char log[512];      /* fvd's stderr goes here (appended); "" = /dev/null */
} fvdp_server;

/* Start fvd serve on 127.0.0.1:port (0: a free port; a restart passes the
 * old one and is retried while the port lingers) and wait for its
 * "listening" line.  s->log must be set (or empty) by the caller. */
int fvdp_start(const fvdp_backend *b, fvdp_server *s, int port);

/* Send sig and reap the process. */
void fvdp_kill(fvdp_server *s, int sig);

/* `fvd admin add-user NAME --role ROLE --team TEAM`: the one-time code,
 * malloc'd, or NULL. */
char *fvdp_add_user(const fvdp_backend *b, const char *name, const char *role, const char *team);

/* The last lines of s->log on stderr (after a failure). */
void fvdp_log_tail(const fvdp_server *s, int lines);

#endif
