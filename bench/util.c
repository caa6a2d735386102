/*
 * util.c - fv_bench's plumbing: time, statistics, scratch directories and
 * running child programs with their output and peak memory (wait4).
 */
#define _GNU_SOURCE
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

bench_cfg g_cfg;

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(const double *v, size_t n)
{
    if (n == 0) return BR_NAN;
    double *c = malloc(n * sizeof *c);
    if (c == NULL) return BR_NAN;
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

double bench_percentile(double *v, size_t n, double p)
{
    if (n == 0) return BR_NAN;
    qsort(v, n, sizeof *v, cmp_double);
    /* nearest rank */
    size_t k = (size_t)ceil(p / 100.0 * (double)n);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

void bench_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

char *bench_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *bench_tmpdir(const char *tag)
{
    static unsigned counter;
    char name[128];
    snprintf(name, sizeof name, "%s-%d-%u", tag, (int)getpid(), ++counter);
    char *p = bench_path(g_cfg.work, name);
    if (p == NULL) return NULL;
    bench_rmtree(p);
    if (mkdir(p, 0777) != 0) {
        bench_log("cannot create %s: %s", p, strerror(errno));
        free(p);
        return NULL;
    }
    chmod(p, 0777); /* PostgreSQL's unprivileged user may need to enter */
    return p;
}

void bench_rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *p = bench_path(path, e->d_name);
        if (p == NULL) continue;
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) bench_rmtree(p);
        else unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(path);
}

long long bench_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void buf_add(buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) return;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

bench_child bench_run(const char *const argv[])
{
    bench_child c = {-1, NULL, NULL, 0};
    int po[2], pe[2];
    if (pipe(po) != 0) return c;
    if (pipe(pe) != 0) {
        close(po[0]);
        close(po[1]);
        return c;
    }
    double t0 = bench_now();
    pid_t pid = fork();
    if (pid < 0) return c;
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    buf out = {0}, err = {0};
    buf_add(&out, "", 0);
    buf_add(&err, "", 0);
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int k = 0; k < 2; k++) {
            if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char tmp[8192];
            ssize_t n = read(fds[k].fd, tmp, sizeof tmp);
            if (n <= 0) {
                close(fds[k].fd);
                fds[k].fd = -1;
                open_fds--;
                continue;
            }
            buf_add(k == 0 ? &out : &err, tmp, (size_t)n);
        }
    }
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {}
    c.seconds = bench_now() - t0;
    c.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    c.out = out.p;
    /* keep the tail of stderr: that is where the error is */
    if (err.p != NULL && err.n > 4000) memmove(err.p, err.p + err.n - 4000, 4001);
    c.err = err.p;
    return c;
}

long bench_hwm_kib(pid_t pid)
{
    char path[64], line[256];
    if (pid > 0) snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    else snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    if (f != NULL) fclose(f);
    return kib;
}

void bench_child_free(bench_child *c)
{
    free(c->out);
    free(c->err);
    c->out = c->err = NULL;
}

double bench_result_field(const char *out, const char *key)
{
    if (out == NULL) return BR_NAN;
    const char *line = strstr(out, "result ");
    if (line == NULL) return BR_NAN;
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(line, pat);
    if (p == NULL) return BR_NAN;
    return strtod(p + strlen(pat), NULL);
}

const char *bench_fmt(double v, char *b, size_t cap)
{
    if (isnan(v)) {
        snprintf(b, cap, "n/a");
        return b;
    }
    double a = fabs(v);
    if (a >= 1e6) snprintf(b, cap, "%.2f M", v / 1e6);
    else if (a >= 1e4) snprintf(b, cap, "%.0f", v);
    else if (a >= 100) snprintf(b, cap, "%.0f", v);
    else if (a >= 10) snprintf(b, cap, "%.1f", v);
    else snprintf(b, cap, "%.2f", v);
    /* thousands separators for plain integers */
    if (a >= 1e4 && a < 1e6) {
        char t[64];
        snprintf(t, sizeof t, "%s", b);
        size_t len = strlen(t), o = 0;
        for (size_t i = 0; i < len && o + 2 < cap; i++) {
            b[o++] = t[i];
            size_t left = len - 1 - i;
            if (left > 0 && left % 3 == 0 && t[i] != '-') b[o++] = ',';
        }
        b[o] = '\0';
    }
    return b;
}
