/*
 * testutil.c - helpers shared by the test programs (see testutil.h).  Tests
 * run real processes and real files; nothing here mocks the library.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what)
{
    fprintf(stderr, "testutil: %s: %s\n", what, strerror(errno));
    abort();
}

char *tu_mkdtemp(const char *tag)
{
    const char *base = getenv("FV_TEST_TMP");
    if (base == NULL || *base == '\0') base = "/tmp";
    mkdir(base, 0700);
    size_t n = strlen(base) + strlen(tag) + 32;
    char *p = malloc(n);
    if (p == NULL) die("malloc");
    snprintf(p, n, "%s/%s-XXXXXX", base, tag);
    if (mkdtemp(p) == NULL) die("mkdtemp");
    return p;
}

void tu_rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *c = tu_path(path, e->d_name);
            struct stat st;
            if (lstat(c, &st) == 0 && S_ISDIR(st.st_mode))
                tu_rmtree(c);
            else
                unlink(c);
            free(c);
        }
        closedir(d);
    }
    rmdir(path);
}

char *tu_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p == NULL) die("malloc");
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

tu_result tu_run(const char *const argv[], const char *const env[],
                 const char *stdin_text)
{
    int out[2], err[2], in[2];
    if (pipe(out) || pipe(err) || pipe(in)) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(in[1]); close(out[0]); close(err[0]);
        if (env != NULL)
            for (size_t i = 0; env[i] != NULL; i++) {
                /* "K=V" sets K; a bare "K" removes it from the environment */
                const char *eq = strchr(env[i], '=');
                if (eq == NULL) { unsetenv(env[i]); continue; }
                char key[256];
                size_t kl = (size_t)(eq - env[i]);
                if (kl >= sizeof key) _exit(126);
                memcpy(key, env[i], kl);
                key[kl] = '\0';
                setenv(key, eq + 1, 1);
            }
        execv(argv[0], (char *const *)argv);
        /* Cross-built tests run under qemu-user, whose exec cannot start
         * another target program: FV_TEST_EXEC_WRAPPER (set by the cross
         * build's ctest, e.g. "/usr/bin/qemu-aarch64") runs it instead. */
        const char *wrap = getenv("FV_TEST_EXEC_WRAPPER");
        if (errno == ENOEXEC && wrap != NULL && *wrap != '\0') {
            const char *wargv[64];
            size_t n = 0;
            wargv[n++] = wrap;
            for (size_t i = 0; argv[i] != NULL && n < 63; i++) wargv[n++] = argv[i];
            wargv[n] = NULL;
            execv(wrap, (char *const *)wargv);
        }
        _exit(127);
    }
    close(in[0]); close(out[1]); close(err[1]);
    if (stdin_text != NULL) {
        size_t n = strlen(stdin_text);
        if (write(in[1], stdin_text, n) < 0) { /* child may have exited */ }
    }
    close(in[1]);
    /* Read both pipes without deadlock: stderr is small in practice, but
     * poll anyway. */
    tu_result r = {0, NULL, NULL};
    size_t cap[2] = {4096, 4096}, len[2] = {0, 0};
    char *buf[2] = {malloc(cap[0]), malloc(cap[1])};
    int fds[2] = {out[0], err[0]};
    int open_n = 2;
    while (open_n > 0) {
        struct pollfd p[2];
        int np = 0, map[2];
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0) { p[np].fd = fds[i]; p[np].events = POLLIN; map[np++] = i; }
        if (poll(p, (nfds_t)np, -1) < 0) { if (errno == EINTR) continue; die("poll"); }
        for (int j = 0; j < np; j++) {
            if (!(p[j].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            int i = map[j];
            if (len[i] + 4096 >= cap[i]) { cap[i] *= 2; buf[i] = realloc(buf[i], cap[i]); }
            ssize_t k = read(fds[i], buf[i] + len[i], cap[i] - len[i] - 1);
            if (k <= 0) { close(fds[i]); fds[i] = -1; open_n--; }
            else len[i] += (size_t)k;
        }
    }
    buf[0][len[0]] = '\0';
    buf[1][len[1]] = '\0';
    r.out = buf[0];
    r.err = buf[1];
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

void tu_result_free(tu_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

unsigned char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 65536, n = 0;
    unsigned char *b = malloc(cap);
    if (b == NULL) die("malloc");
    size_t k;
    while ((k = fread(b + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) { cap *= 2; b = realloc(b, cap); if (b == NULL) die("realloc"); }
    }
    fclose(f);
    *len = n;
    return b;
}

void tu_write_file(const char *path, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) die("fopen");
    if (len > 0 && fwrite(buf, 1, len, f) != len) die("fwrite");
    fclose(f);
}

static int dir_contains(const char *dir, const void *needle, size_t needle_len, int deep)
{
    DIR *d = opendir(dir);
    if (d == NULL) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *p = tu_path(dir, e->d_name);
        struct stat st;
        if (deep && stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            found = dir_contains(p, needle, needle_len, deep);
        } else if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            size_t n = 0;
            unsigned char *b = tu_read_file(p, &n);
            if (b != NULL && n >= needle_len)
                for (size_t i = 0; i + needle_len <= n && !found; i++)
                    if (memcmp(b + i, needle, needle_len) == 0) found = 1;
            free(b);
        }
        free(p);
    }
    closedir(d);
    return found;
}

int tu_dir_contains(const char *dir, const void *needle, size_t needle_len)
{
    return dir_contains(dir, needle, needle_len, 0);
}

int tu_tree_contains(const char *dir, const void *needle, size_t needle_len)
{
    return dir_contains(dir, needle, needle_len, 1);
}

int tu_fwrite_fn(void *ctx, const unsigned char *buf, size_t len)
{
    return fwrite(buf, 1, len, (FILE *)ctx) == len ? 0 : -1;
}
