/*
 * bench_fvd.c - fvd as a child process, users, and devices (see
 * bench_fvd.h).  Patterned on tests/test_e2e.c.
 */
#define _GNU_SOURCE
#include "bench_fvd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "visitgen.h"

static pgu_cluster cluster;
static int cluster_up;
static int dbcounter;

int bfvd_pg_cluster(pgu_cluster **out)
{
    if (!cluster_up) {
        if (pgu_start(&cluster) != 0) return -1;
        cluster_up = 1;
    }
    *out = &cluster;
    return 0;
}

void bfvd_pg_stop(void)
{
    if (cluster_up) pgu_stop(&cluster);
    cluster_up = 0;
}

static int spawn(bfvd *s)
{
    int p[2];
    if (pipe(p) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) dup2(fd, 2);
        execl(FVD_BIN, FVD_BIN, "serve", s->pg ? "--postgres" : "--data", s->store, "--listen",
              "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    char line[256];
    s->pid = pid;
    s->port = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        const char *at = strstr(line, "listening on 127.0.0.1:");
        if (at != NULL) {
            s->port = atoi(at + strlen("listening on 127.0.0.1:"));
            break;
        }
    }
    if (f != NULL) fclose(f); /* fvd's later stdout goes nowhere */
    if (s->port <= 0) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        s->pid = 0;
        return -1;
    }
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    return 0;
}

int bfvd_start(bfvd *s, int pg, const char *tag)
{
    memset(s, 0, sizeof *s);
    s->pg = pg;
    char *dir = bench_tmpdir(tag);
    if (dir == NULL) return -1;
    snprintf(s->log, sizeof s->log, "%s/fvd.log", dir);
    if (pg) {
        pgu_cluster *c;
        if (bfvd_pg_cluster(&c) != 0) {
            free(dir);
            return -1;
        }
        char name[32];
        snprintf(name, sizeof name, "bench%d", ++dbcounter);
        if (pgu_new_database(c, name, s->store, sizeof s->store) != 0) {
            free(dir);
            return -1;
        }
    } else {
        snprintf(s->store, sizeof s->store, "%s/fvd-data", dir);
    }
    free(dir);
    for (int tries = 0; tries < 20; tries++) {
        if (spawn(s) == 0) return 0;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    bench_log("fvd did not start (%s); its log: %s", pg ? "postgres" : "sqlite", s->log);
    return -1;
}

void bfvd_stop(bfvd *s)
{
    if (s->pid <= 0) return;
    s->maxrss_kib = bench_hwm_kib(s->pid);
    kill(s->pid, SIGTERM);
    int st;
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR) {}
    s->pid = 0;
}

int bfvd_add_user(const bfvd *s, const char *name, const char *role, const char *team, char *code,
                  size_t cap)
{
    const char *argv[] = {FVD_BIN, "admin", s->pg ? "--postgres" : "--data", s->store, "add-user",
                          name, "--role", role, "--team", team, NULL};
    bench_child c = bench_run(argv);
    int rc = -1;
    if (c.status == 0 && c.out != NULL) {
        size_t n = strcspn(c.out, " \r\n");
        if (n > 0 && n < cap) {
            memcpy(code, c.out, n);
            code[n] = '\0';
            rc = 0;
        }
    }
    if (rc != 0) bench_log("add-user %s: %s", name, c.err ? c.err : "");
    bench_child_free(&c);
    return rc;
}

/* The benchmark's key store: the key is kept XORed with a constant (a
 * phone keeps it in hardware; what matters here is that no KDF runs). */
static int ks_wrap(void *ctx, const unsigned char key[32], unsigned char *out, size_t *out_len)
{
    (void)ctx;
    for (int i = 0; i < 32; i++) out[i] = (unsigned char)(key[i] ^ 0xa5);
    *out_len = 32;
    return 0;
}

static int ks_unwrap(void *ctx, const unsigned char *in, size_t in_len, unsigned char key[32])
{
    (void)ctx;
    if (in_len != 32) return -1;
    for (int i = 0; i < 32; i++) key[i] = (unsigned char)(in[i] ^ 0xa5);
    return 0;
}

static const fv_keystore keystore = {sizeof(fv_keystore), NULL, ks_wrap, ks_unwrap};

fv_status bdev_open(const char *path, int create, fv_db **out)
{
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.keystore = &keystore;
    cfg.flags = create ? FV_OPEN_CREATE : 0;
    fv_status st = fv_open(out, &cfg);
    if (st != FV_OK) bench_log("open %s: %s", path, fv_errmsg(*out));
    return st;
}

static int set(fv_db *db, fv_record *r, const char *f, const char *v)
{
    if (fv_record_set_text(r, f, v) == FV_OK) return 0;
    bench_log("set %s: %s", f, fv_errmsg(db));
    return -1;
}

int bdev_fill(fv_db *db, long nvisits, unsigned seed)
{
    fv_record *r = NULL;
    char name[64], cust[FV_ID_LEN + 1];
    vg_customer_name(seed, 1, name, sizeof name);
    if (fv_record_new(db, "customer", &r) != FV_OK || set(db, r, "name", name) != 0 ||
        set(db, r, "region", "North") != 0 || fv_insert(db, r) != FV_OK) {
        bench_log("customer: %s", fv_errmsg(db));
        fv_record_free(r);
        return -1;
    }
    snprintf(cust, sizeof cust, "%s", fv_record_id(r));
    fv_record_free(r);
    int rc = 0;
    for (long i = 0; rc == 0 && i < nvisits; i++) {
        if (i % 1000 == 0 && fv_begin(db) != FV_OK) return -1;
        vg_visit v;
        vg_visit_make(seed, (uint64_t)i, &v);
        r = NULL;
        rc = fv_record_new(db, "visit", &r) == FV_OK ? 0 : -1;
        if (rc == 0) rc = set(db, r, "customer_id", cust);
        if (rc == 0) rc = set(db, r, "at", v.at);
        if (rc == 0) rc = set(db, r, "method", v.method);
        if (rc == 0) rc = set(db, r, "participants", v.participants);
        if (rc == 0) rc = set(db, r, "summary", v.summary);
        if (rc == 0) rc = set(db, r, "feedback", v.feedback);
        if (rc == 0) rc = set(db, r, "agreement", v.agreement);
        if (rc == 0) rc = set(db, r, "next_action", v.next_action);
        if (rc == 0) rc = set(db, r, "next_action_owner", v.next_action_owner);
        if (rc == 0) rc = set(db, r, "next_action_due", v.next_action_due);
        if (rc == 0 && fv_record_set_real(r, "lat", v.lat) != FV_OK) rc = -1;
        if (rc == 0 && fv_record_set_real(r, "lon", v.lon) != FV_OK) rc = -1;
        if (rc == 0 && fv_insert(db, r) != FV_OK) rc = -1;
        if (rc != 0) bench_log("visit %ld: %s", i, fv_errmsg(db));
        fv_record_free(r);
        if ((i % 1000 == 999 || i == nvisits - 1) && fv_commit(db) != FV_OK) rc = -1;
    }
    if (rc != 0) (void)fv_rollback(db);
    return rc;
}

fv_status bdev_sync(fv_db *db, const fv_sync_config *cfg, uint64_t *pushed, uint64_t *pulled)
{
    *pushed = *pulled = 0;
    /* a time-boxed sync is one call: it stops at the deadline */
    int rounds = cfg != NULL && cfg->max_ms > 0 ? 1 : 1000;
    for (int round = 0; round < rounds; round++) {
        fv_sync_result r;
        memset(&r, 0, sizeof r);
        r.size = sizeof r;
        fv_status st = fv_sync(db, cfg, &r);
        *pushed += r.pushed;
        *pulled += r.pulled;
        if (st != FV_OK) {
            bench_log("sync: %s", fv_errmsg(db));
            return st;
        }
        if (r.drained || rounds == 1) return FV_OK;
    }
    return FV_EINTERNAL;
}
