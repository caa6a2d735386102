/*
 * pgutil.c - a throwaway PostgreSQL cluster for tests (see pgutil.h).
 *
 * Layout: small process helpers (run a program, optionally as `fvtest`,
 * with its output in a log file), then pgu_start (find the binaries, make
 * the user and the directory, initdb, configure, start on a free port,
 * create the database, arm the watchdog), pgu_new_database (libpq) and
 * pgu_stop.  Relies on Debian's postgresql package layout, util-linux
 * `runuser` and shadow's `useradd` when running as root.
 *
 * The cluster directory is under /tmp, not $FV_TEST_TMP: the server runs as
 * `fvtest`, which must reach its data directory, and the test tree is
 * created 0700 for root.
 */
#include "pgutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libpq-fe.h>

#define PGU_USER "fvtest"
#define PGU_START_ATTEMPTS 5

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static const char *first_existing(const char *const *paths)
{
    for (; *paths != NULL; paths++)
        if (access(*paths, X_OK) == 0) return *paths;
    return NULL;
}

static const char *const runuser_paths[] = {"/usr/sbin/runuser", "/sbin/runuser",
                                            "/usr/bin/runuser", NULL};
static const char *const useradd_paths[] = {"/usr/sbin/useradd", "/sbin/useradd", NULL};

/* Run argv[0] (an absolute path) with stdout and stderr appended to log
 * (NULL: discarded), as `fvtest` when as_user.  Returns the exit status,
 * 128+signal if killed, -1 if it could not be started. */
static int run(const pgu_cluster *c, int as_user, const char *log, const char *const argv[])
{
    const char *full[40];
    size_t n = 0;
    if (as_user) {
        const char *ru = first_existing(runuser_paths);
        if (ru == NULL) {
            fprintf(stderr, "pgutil: runuser not found (util-linux)\n");
            return -1;
        }
        full[n++] = ru;
        full[n++] = "-u";
        full[n++] = PGU_USER;
        full[n++] = "--";
    }
    for (size_t i = 0; argv[i] != NULL && n < sizeof full / sizeof full[0] - 1; i++)
        full[n++] = argv[i];
    full[n] = NULL;

    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "pgutil: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644)
                      : open("/dev/null", O_WRONLY);
        if (in >= 0) dup2(in, 0);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        if (chdir(c->dir[0] ? c->dir : "/") != 0) _exit(126);
        execv(full[0], (char *const *)full);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

static void rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char child[PGU_PATH_MAX + 256];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
                rmtree(child);
            else
                unlink(child);
        }
        closedir(d);
    }
    rmdir(path);
}

/* Print the last part of a log file to stderr, for a failure message. */
static void print_tail(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return;
    char buf[3000];
    long start = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > (long)sizeof buf - 1) start = size - (long)sizeof buf + 1;
    }
    fseek(f, start, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "---- %s (%s) ----\n%s---- end ----\n", path,
            start ? "tail" : "whole", buf);
}

/* The newest /usr/lib/postgresql/N/bin holding initdb and pg_ctl, or
 * $FV_PG_BINDIR. */
static int find_bindir(pgu_cluster *c)
{
    const char *env = getenv("FV_PG_BINDIR");
    if (env != NULL && *env != '\0') {
        snprintf(c->bindir, sizeof c->bindir, "%s", env);
        return 0;
    }
    glob_t g;
    long best = -1;
    if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *p = g.gl_pathv[i] + strlen("/usr/lib/postgresql/");
            long v = strtol(p, NULL, 10);
            char initdb[PGU_PATH_MAX];
            snprintf(initdb, sizeof initdb, "/usr/lib/postgresql/%ld/bin/initdb", v);
            if (v > best && access(initdb, X_OK) == 0) {
                best = v;
                snprintf(c->bindir, sizeof c->bindir, "/usr/lib/postgresql/%ld/bin", v);
            }
        }
        globfree(&g);
    }
    if (best < 0) {
        fprintf(stderr, "pgutil: no PostgreSQL server found (no initdb/pg_ctl under "
                        "/usr/lib/postgresql/*/bin): install the Debian package "
                        "`postgresql` (scripts/install-deps does)\n");
        return -1;
    }
    return 0;
}

/* As root: make sure the unprivileged user exists (initdb and postgres
 * refuse to run as root).  Two test programs may race here: whoever loses
 * finds the user made by the other. */
static int ensure_user(pgu_cluster *c, uid_t *uid, gid_t *gid)
{
    c->as_fvtest = geteuid() == 0;
    if (!c->as_fvtest) return 0;
    struct passwd *pw = getpwnam(PGU_USER);
    if (pw == NULL) {
        const char *ua = first_existing(useradd_paths);
        if (ua == NULL) {
            fprintf(stderr, "pgutil: running as root and useradd is missing: cannot "
                            "create the user " PGU_USER " to run PostgreSQL as\n");
            return -1;
        }
        const char *argv[] = {ua, "--system", "--no-create-home", "--home-dir",
                              "/nonexistent", "--shell", "/usr/sbin/nologin", PGU_USER,
                              NULL};
        int rc = run(c, 0, NULL, argv);
        pw = getpwnam(PGU_USER);
        if (pw == NULL) {
            fprintf(stderr, "pgutil: useradd %s failed (status %d)\n", PGU_USER, rc);
            return -1;
        }
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

/* A port nobody listens on right now (the kernel's pick for port 0).  It
 * may be taken again before the server binds it: the caller retries. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int append_conf(const pgu_cluster *c)
{
    char path[PGU_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/data/postgresql.conf", c->dir);
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        fprintf(stderr, "pgutil: %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* Loopback only, the socket in our own directory (the system one may
     * not be writable for fvtest, and must not collide), and no durability:
     * the data dies with the test. */
    fprintf(f,
            "\n# pgutil: a throwaway test cluster\n"
            "listen_addresses = '127.0.0.1'\n"
            "unix_socket_directories = '%s'\n"
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
            "max_connections = 60\n"
            "shared_buffers = 32MB\n"
            "huge_pages = off\n",
            c->dir);
    return fclose(f) == 0 ? 0 : -1;
}

/* A child that waits for EOF on a pipe whose other end only we hold: if we
 * die without pgu_stop, it stops the server and removes the directory, so a
 * crashed test leaves no postgres running. */
static void start_watchdog(pgu_cluster *c)
{
    int p[2];
    c->watchdog_fd = -1;
    c->watchdog = -1;
    if (pipe(p) != 0) return;
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        close(p[1]);
        /* Let go of the test's output (a runner waiting for EOF on it must
         * not wait for us) and leave its process group (^C must not kill
         * us before the cluster is stopped). */
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        setsid();
        signal(SIGINT, SIG_IGN);
        char b;
        ssize_t r;
        do {
            r = read(p[0], &b, 1);
        } while (r < 0 && errno == EINTR);
        if (r != 1) {
            char data[PGU_PATH_MAX + 8], pg_ctl[PGU_PATH_MAX + 8];
            snprintf(data, sizeof data, "%s/data", c->dir);
            snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", c->bindir);
            const char *argv[] = {pg_ctl, "-D", data, "-m", "immediate", "-w", "stop", NULL};
            run(c, c->as_fvtest, NULL, argv);
            rmtree(c->dir);
        }
        _exit(0);
    }
    close(p[0]);
    c->watchdog = pid;
    c->watchdog_fd = p[1];
}

static int create_database(const pgu_cluster *c, const char *name)
{
    for (const char *p = name; *p; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || *p == '_' || (p != name && *p >= '0' && *p <= '9');
        if (!ok) {
            fprintf(stderr, "pgutil: bad database name \"%s\"\n", name);
            return -1;
        }
    }
    if (*name == '\0' || strlen(name) > 63) {
        fprintf(stderr, "pgutil: bad database name \"%s\"\n", name);
        return -1;
    }
    char url[160];
    snprintf(url, sizeof url, "postgresql://" PGU_USER "@127.0.0.1:%d/postgres", c->port);
    PGconn *conn = PQconnectdb(url);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "pgutil: connect %s: %s", url, PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    /* FILE_COPY: with fsync off its checkpoints are cheap, and copying the
     * small template's files beats WAL-logging them block by block. */
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s STRATEGY = FILE_COPY", name);
    if (PQserverVersion(conn) < 150000)
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "pgutil: %s: %s", sql, PQerrorMessage(conn));
    PQclear(r);
    PQfinish(conn);
    return ok ? 0 : -1;
}

int pgu_start(pgu_cluster *c)
{
    double t0 = mono_ms();
    memset(c, 0, sizeof *c);
    c->watchdog = -1;
    c->watchdog_fd = -1;
    uid_t uid = 0;
    gid_t gid = 0;
    if (find_bindir(c) != 0 || ensure_user(c, &uid, &gid) != 0) return -1;

    snprintf(c->dir, sizeof c->dir, "/tmp/fvpg-XXXXXX");
    if (mkdtemp(c->dir) == NULL) {
        fprintf(stderr, "pgutil: mkdtemp: %s\n", strerror(errno));
        c->dir[0] = '\0';
        return -1;
    }
    if (c->as_fvtest && chown(c->dir, uid, gid) != 0) {
        fprintf(stderr, "pgutil: chown %s: %s\n", c->dir, strerror(errno));
        goto fail;
    }

    char data[PGU_PATH_MAX + 8], initdb[PGU_PATH_MAX + 8], pg_ctl[PGU_PATH_MAX + 8];
    char initlog[PGU_PATH_MAX + 16], serverlog[PGU_PATH_MAX + 16], ctllog[PGU_PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/data", c->dir);
    snprintf(initdb, sizeof initdb, "%s/initdb", c->bindir);
    snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", c->bindir);
    snprintf(initlog, sizeof initlog, "%s/initdb.log", c->dir);
    snprintf(serverlog, sizeof serverlog, "%s/server.log", c->dir);
    snprintf(ctllog, sizeof ctllog, "%s/pg_ctl.log", c->dir);

    const char *init_argv[] = {initdb, "-D", data, "-U", PGU_USER, "-A", "trust",
                               "-E", "UTF8", "--locale=C", "--no-sync", NULL};
    int rc = run(c, c->as_fvtest, initlog, init_argv);
    if (rc != 0) {
        fprintf(stderr, "pgutil: %s failed (status %d)\n", initdb, rc);
        print_tail(initlog);
        goto fail;
    }
    if (append_conf(c) != 0) goto fail;

    for (int attempt = 0; attempt < PGU_START_ATTEMPTS && !c->running; attempt++) {
        c->port = free_port();
        if (c->port <= 0) {
            fprintf(stderr, "pgutil: no free loopback port: %s\n", strerror(errno));
            goto fail;
        }
        char opts[32];
        snprintf(opts, sizeof opts, "-p %d", c->port);
        const char *start_argv[] = {pg_ctl, "-D", data, "-l", serverlog, "-o", opts,
                                    "-w", "-t", "60", "start", NULL};
        rc = run(c, c->as_fvtest, ctllog, start_argv);
        if (rc == 0) c->running = 1;
    }
    if (!c->running) {
        fprintf(stderr, "pgutil: pg_ctl start failed %d times (last status %d)\n",
                PGU_START_ATTEMPTS, rc);
        print_tail(ctllog);
        print_tail(serverlog);
        goto fail;
    }
    snprintf(c->url, sizeof c->url, "postgresql://" PGU_USER "@127.0.0.1:%d/" PGU_USER,
             c->port);
    start_watchdog(c);
    if (create_database(c, PGU_USER) != 0) {
        print_tail(serverlog);
        goto fail;
    }
    c->start_ms = mono_ms() - t0;
    return 0;

fail:
    pgu_stop(c);
    return -1;
}

const char *pgu_url(const pgu_cluster *c)
{
    return c->url;
}

int pgu_new_database(pgu_cluster *c, const char *name, char *url_out, size_t cap)
{
    if (!c->running) {
        fprintf(stderr, "pgutil: pgu_new_database: the cluster is not running\n");
        return -1;
    }
    if (create_database(c, name) != 0) return -1;
    int n = snprintf(url_out, cap, "postgresql://" PGU_USER "@127.0.0.1:%d/%s", c->port, name);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "pgutil: pgu_new_database: url buffer too small\n");
        return -1;
    }
    return 0;
}

void pgu_stop(pgu_cluster *c)
{
    if (c->running) {
        char data[PGU_PATH_MAX + 8], pg_ctl[PGU_PATH_MAX + 8];
        snprintf(data, sizeof data, "%s/data", c->dir);
        snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", c->bindir);
        const char *argv[] = {pg_ctl, "-D", data, "-m", "immediate", "-w", "stop", NULL};
        int rc = run(c, c->as_fvtest, NULL, argv);
        if (rc != 0) fprintf(stderr, "pgutil: pg_ctl stop: status %d\n", rc);
        c->running = 0;
    }
    if (c->watchdog_fd >= 0) {
        ssize_t w;
        do {
            w = write(c->watchdog_fd, "q", 1);
        } while (w < 0 && errno == EINTR);
        close(c->watchdog_fd);
        c->watchdog_fd = -1;
    }
    if (c->watchdog > 0) {
        while (waitpid(c->watchdog, NULL, 0) < 0 && errno == EINTR) {
        }
        c->watchdog = -1;
    }
    if (c->dir[0] != '\0') {
        rmtree(c->dir);
        c->dir[0] = '\0';
    }
    c->url[0] = '\0';
}
