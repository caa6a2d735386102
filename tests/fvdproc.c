/*
 * fvdproc.c - fvd as a child process (see fvdproc.h).
 */
#include "fvdproc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static const char *store_flag(const fvdp_backend *b)
{
    return b->pg ? "--postgres" : "--data";
}

static const char *store_arg(const fvdp_backend *b)
{
    return b->pg ? b->url : b->data;
}

static int try_start(const fvdp_backend *b, fvdp_server *s, int port)
{
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    int p[2];
    if (pipe(p) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        int fd = open(s->log[0] ? s->log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) dup2(fd, 2);
        execl(b->fvd_bin, b->fvd_bin, "serve", store_flag(b), store_arg(b), "--listen", listen,
              (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[512];
    size_t n = 0;
    while (n + 1 < sizeof line) {
        struct pollfd f = {p[0], POLLIN, 0};
        if (poll(&f, 1, 60000) <= 0) break;
        ssize_t k = read(p[0], line + n, 1);
        if (k <= 0 || line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    close(p[0]); /* fvd's later output (none) goes nowhere */
    const char *at = strstr(line, "listening on 127.0.0.1:");
    s->port = at != NULL ? atoi(at + strlen("listening on 127.0.0.1:")) : 0;
    if (s->port <= 0) {
        kill(pid, SIGKILL);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        s->pid = 0;
        return -1;
    }
    s->pid = pid;
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    return 0;
}

int fvdp_start(const fvdp_backend *b, fvdp_server *s, int port)
{
    for (int tries = 0; tries < 50; tries++) {
        if (try_start(b, s, port) == 0) return 0;
        struct timespec ts = {0, 100 * 1000000L}; /* the port may linger briefly */
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "fvd did not start (%s, port %d)\n", b->name, port);
    fvdp_log_tail(s, 20);
    return -1;
}

void fvdp_kill(fvdp_server *s, int sig)
{
    if (s->pid <= 0) return;
    kill(s->pid, sig);
    int st;
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR) {
    }
    s->pid = 0;
}

char *fvdp_add_user(const fvdp_backend *b, const char *name, const char *role, const char *team)
{
    const char *argv[] = {b->fvd_bin, "admin", store_flag(b), store_arg(b), "add-user", name,
                          "--role",   role,    "--team",      team,         NULL};
    tu_result r = tu_run(argv, NULL, NULL);
    if (r.exit_code != 0) {
        fprintf(stderr, "fvd admin add-user %s: exit %d: %s\n", name, r.exit_code, r.err);
        tu_result_free(&r);
        return NULL;
    }
    size_t n = strlen(r.out);
    while (n > 0 && (r.out[n - 1] == '\n' || r.out[n - 1] == ' ')) r.out[--n] = '\0';
    free(r.err);
    if (n == 0) {
        free(r.out);
        return NULL;
    }
    return r.out;
}

void fvdp_log_tail(const fvdp_server *s, int lines)
{
    if (s->log[0] == '\0') return;
    size_t n = 0;
    unsigned char *b = tu_read_file(s->log, &n);
    if (b == NULL) return;
    size_t i = n;
    int seen = 0;
    while (i > 0 && seen <= lines) {
        i--;
        if (b[i] == '\n') seen++;
    }
    fprintf(stderr, "---- the end of %s ----\n%.*s----\n", s->log, (int)(n - i), (char *)b + i);
    free(b);
}
