/*
 * platform.c - the hook table of platform.h: the defaults, the installed
 * table (one atomic pointer), and the fv_platform_* calls through which
 * core/ and sync/ reach the OS.
 *
 * Platform-neutral: no OS header.  The defaults it names are defined by
 * the files CMake picks (the files of platform/posix/, and platform/android/ for the
 * logger on Android); libsodium supplies the default random source.
 * Every call loads the installed pointer once and falls back, hook by
 * hook, to the default, so a table may replace just one hook.
 */
#include "platform.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

static void sodium_random(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    randombytes_buf(buf, len);
}

static const fv_platform defaults = {
    .version = FV_PLATFORM_VERSION,
    .ctx = NULL,
    .now_ms = fv__posix_now_ms,
    .sleep_ms = fv__posix_sleep_ms,
    .random = sodium_random,
    .log = fv__default_log,
    .fsync_file = fv__posix_fsync_file,
    .remove = fv__posix_remove,
    .http_open = fv__curl_open,
    .http_close = fv__curl_close,
    .http_post = fv__curl_post,
    .keystore = NULL,
};

static _Atomic(const fv_platform *) installed = NULL;

fv_status fv_platform_set(const fv_platform *p)
{
    if (p != NULL && (p->version < 1 || p->version > FV_PLATFORM_VERSION)) return FV_EINVAL;
    atomic_store(&installed, p);
    return FV_OK;
}

const fv_platform *fv_platform_default(void)
{
    return &defaults;
}

const fv_platform *fv_platform_get(void)
{
    const fv_platform *p = atomic_load(&installed);
    return p != NULL ? p : &defaults;
}

int64_t fv_platform_now_ms(void)
{
    const fv_platform *p = fv_platform_get();
    return p->now_ms ? p->now_ms(p->ctx) : defaults.now_ms(NULL);
}

void fv_platform_sleep_ms(int64_t ms)
{
    const fv_platform *p = fv_platform_get();
    if (p->sleep_ms) p->sleep_ms(p->ctx, ms);
    else defaults.sleep_ms(NULL, ms);
}

void fv_platform_random(void *buf, size_t len)
{
    const fv_platform *p = fv_platform_get();
    if (p->random) p->random(p->ctx, buf, len);
    else defaults.random(NULL, buf, len);
}

void fv_platform_log(int level, const char *fmt, ...)
{
    const fv_platform *p = fv_platform_get();
    void (*log)(void *, int, const char *) = p->log ? p->log : defaults.log;
    void *ctx = p->log ? p->ctx : NULL;
    if (log == fv__default_log && fv__default_log_discards) return;
    char msg[FV_LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    log(ctx, level, msg);
}

int fv_platform_fsync_file(FILE *f)
{
    const fv_platform *p = fv_platform_get();
    return p->fsync_file ? p->fsync_file(p->ctx, f) : defaults.fsync_file(NULL, f);
}

int fv_platform_remove(const char *path)
{
    const fv_platform *p = fv_platform_get();
    return p->remove ? p->remove(p->ctx, path) : defaults.remove(NULL, path);
}

const fv_keystore *fv_platform_keystore(void)
{
    return fv_platform_get()->keystore;
}

/* ---- the default HTTP transport, bound to one table for one sync ---- */

typedef struct http_conn {
    const fv_platform *p; /* the table whose three HTTP hooks are used */
    void *conn;
} http_conn;

void *fv_platform_http_open(void)
{
    const fv_platform *p = fv_platform_get();
    if (p->http_post == NULL) p = &defaults;
    http_conn *c = malloc(sizeof *c);
    if (c == NULL) return NULL;
    c->p = p;
    c->conn = p->http_open ? p->http_open(p->ctx) : p->ctx;
    if (p->http_open != NULL && c->conn == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

void fv_platform_http_close(void *ctx)
{
    http_conn *c = ctx;
    if (c == NULL) return;
    if (c->p->http_close) c->p->http_close(c->p->ctx, c->conn);
    free(c);
}

int fv_platform_http_post(void *ctx, const fv_http_request *req, fv_http_response *resp,
                          char *err, size_t errcap)
{
    http_conn *c = ctx;
    if (c == NULL) {
        snprintf(err, errcap, "the HTTP transport is not open");
        return -1;
    }
    return c->p->http_post(c->conn, req, resp, err, errcap);
}
