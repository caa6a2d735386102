/*
 * test_hooks.c - the platform hooks, exercised for real (issue 8, done
 * means 3): devices that sync with a real fvd on loopback through an HTTP
 * transport written here (a plain socket, not libcurl) and keep their
 * database key wrapped by a key store written here.
 *
 *  1. a key-store device enrols and syncs through the per-sync HTTP hook
 *     (fv_sync_config.http); every request goes through the test's
 *     transport (counted), the key store wraps once and unwraps on reopen,
 *     a key store with another key-encryption key is FV_EKEY;
 *  2. a second device, whose sync config names no transport, syncs through
 *     the platform table's HTTP hook (fv_platform_set), with the table's
 *     clock, sleep and logger hooks replaced too; both devices converge;
 *  3. faults injected through the hooks: a transport that fails the first
 *     requests (the client retries, sleeping through the table's sleep
 *     hook: no real sleep), a response over the bound, a transport that
 *     never answers;
 *  4. the table itself: a bad version is refused, NULL hooks keep their
 *     defaults, the default table is restored by fv_platform_set(NULL);
 *  5. the thread contract of fieldvault.h: handles used from several
 *     threads at once (one handle per thread), one handle shared under the
 *     caller's lock, and fv_sync_cancel from another thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "fieldvault.h"
#include "platform.h"
#include "testutil.h"

/* ---- fvd on loopback --------------------------------------------------- */

typedef struct server {
    pid_t pid;
    int port;
    char data[512];
    char base[64];
} server;

static void server_start(server *s, const char *dir)
{
    snprintf(s->data, sizeof s->data, "%s/fvd-data", dir);
    for (int tries = 0; tries < 20; tries++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dup2(p[1], 1);
            close(p[0]);
            close(p[1]);
            execl(FVD_BIN, FVD_BIN, "serve", "--data", s->data, "--listen", "127.0.0.1:0",
                  (char *)NULL);
            _exit(127);
        }
        close(p[1]);
        FILE *f = fdopen(p[0], "r");
        char line[256];
        s->port = 0;
        while (fgets(line, sizeof line, f) != NULL) {
            const char *at = strstr(line, "listening on 127.0.0.1:");
            if (at != NULL) {
                s->port = atoi(at + strlen("listening on 127.0.0.1:"));
                break;
            }
        }
        fclose(f);
        if (s->port > 0) {
            s->pid = pid;
            snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
            return;
        }
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fail_msg("fvd did not start");
}

static void server_stop(server *s)
{
    if (s->pid <= 0) return;
    kill(s->pid, SIGTERM);
    int st;
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR) {}
    s->pid = 0;
}

static char *add_user(const server *s, const char *name, const char *role)
{
    const char *argv[] = {FVD_BIN, "admin", "--data", s->data, "add-user", name, "--role", role,
                          "--team",  "north", NULL};
    tu_result r = tu_run(argv, NULL, NULL);
    if (r.exit_code != 0) fprintf(stderr, "add-user: %s\n", r.err);
    assert_int_equal(r.exit_code, 0);
    size_t n = strlen(r.out);
    while (n > 0 && (r.out[n - 1] == '\n' || r.out[n - 1] == ' ')) r.out[--n] = '\0';
    assert_true(n > 0);
    free(r.err);
    return r.out;
}

/* ---- the test's HTTP transport: HTTP/1.1 over a plain socket ---------------
 * One connection per request (Connection: close), the response read to
 * the end of the stream.  Enough for fvd (it always answers with a
 * Content-Length); counts what passes through it. */

typedef struct transport {
    atomic_int requests;      /* calls made */
    atomic_int fail_first;    /* fail this many calls with -1 first */
    atomic_int failed;
    int opened, closed;       /* platform-table connections */
    size_t bytes_out, bytes_in;
    char last_path[128];
    int never_answer;         /* connect nowhere: a dead network */
} transport;

static int parse_url(const char *url, char *host, size_t hcap, int *port, const char **path)
{
    if (strncmp(url, "http://", 7) != 0) return -1;
    const char *h = url + 7, *colon = strchr(h, ':'), *slash = strchr(h, '/');
    if (colon == NULL || slash == NULL || colon > slash) return -1;
    size_t hl = (size_t)(colon - h);
    if (hl >= hcap) return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = atoi(colon + 1);
    *path = slash;
    return 0;
}

static int send_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

static int socket_post(void *ctx, const fv_http_request *req, fv_http_response *resp, char *err,
                       size_t errcap)
{
    transport *t = ctx;
    memset(resp, 0, sizeof *resp);
    atomic_fetch_add(&t->requests, 1);
    if (atomic_load(&t->fail_first) > 0) {
        atomic_fetch_sub(&t->fail_first, 1);
        atomic_fetch_add(&t->failed, 1);
        snprintf(err, errcap, "injected network failure");
        return -1;
    }
    char host[64];
    int port;
    const char *path;
    if (parse_url(req->url, host, sizeof host, &port, &path) != 0) {
        snprintf(err, errcap, "unsupported URL %s", req->url);
        return -1;
    }
    snprintf(t->last_path, sizeof t->last_path, "%s", path);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return -1;
    }
    long ms = req->timeout_ms > 0 ? req->timeout_ms : 30000;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)(t->never_answer ? 1 : port)); /* port 1: refused */
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        snprintf(err, errcap, "connect %s:%d: %s", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n",
                     path, host, port, req->body_len);
    for (size_t i = 0; i < req->nheaders && n > 0 && (size_t)n < sizeof head; i++)
        n += snprintf(head + n, sizeof head - (size_t)n, "%s: %s\r\n", req->headers[i].name,
                      req->headers[i].value);
    if (n <= 0 || (size_t)n + 3 > sizeof head) {
        close(fd);
        snprintf(err, errcap, "request head too long");
        return -1;
    }
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if (send_all(fd, head, (size_t)n) != 0 || send_all(fd, req->body, req->body_len) != 0) {
        snprintf(err, errcap, "send: %s", strerror(errno));
        close(fd);
        return -1;
    }
    t->bytes_out += (size_t)n + req->body_len;
    /* read everything: head + body, bounded by max_response + 16 KiB */
    size_t cap = 16384, len = 0, limit = req->max_response + 16384;
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (len == cap) {
            if (cap >= limit) {
                free(buf);
                close(fd);
                snprintf(err, errcap, "the response is larger than %zu bytes", req->max_response);
                return -1;
            }
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t k = recv(fd, buf + len, cap - len, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            snprintf(err, errcap, "recv: %s", strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (k == 0) break;
        len += (size_t)k;
    }
    close(fd);
    t->bytes_in += len;
    /* status line, headers, body */
    unsigned char *end = NULL;
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            end = buf + i;
            break;
        }
    if (end == NULL || len < 12 || memcmp(buf, "HTTP/1.", 7) != 0) {
        free(buf);
        snprintf(err, errcap, "malformed HTTP response");
        return -1;
    }
    *end = '\0';
    resp->status = strtol((char *)buf + 9, NULL, 10);
    long content_length = -1;
    for (char *line = strstr((char *)buf, "\r\n"); line != NULL && line < (char *)end;
         line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, "Content-Length:", 15) == 0) content_length = strtol(h + 15, NULL, 10);
        if (strncasecmp(h, "X-FV-Server-Time:", 17) == 0)
            resp->server_time_ms = strtoll(h + 17, NULL, 10);
    }
    size_t body_off = (size_t)(end + 4 - buf), body_len = len - body_off;
    if (content_length >= 0 && (size_t)content_length != body_len) {
        free(buf);
        snprintf(err, errcap, "truncated response");
        return -1;
    }
    if (body_len > req->max_response) {
        free(buf);
        snprintf(err, errcap, "the response is larger than %zu bytes", req->max_response);
        return -1;
    }
    resp->body = malloc(body_len ? body_len : 1);
    assert_non_null(resp->body);
    memcpy(resp->body, buf + body_off, body_len);
    resp->body_len = body_len;
    free(buf);
    return 0;
}

/* A transport that only answers with a huge body: the client must refuse
 * it (the transport is told the bound and honours it). */
static int huge_post(void *ctx, const fv_http_request *req, fv_http_response *resp, char *err,
                     size_t errcap)
{
    transport *t = ctx;
    atomic_fetch_add(&t->requests, 1);
    memset(resp, 0, sizeof *resp);
    (void)err;
    (void)errcap;
    resp->status = 200;
    resp->body_len = req->max_response + 1;
    resp->body = calloc(1, resp->body_len);
    return resp->body != NULL ? 0 : -1;
}

/* ---- the test's key store: XChaCha20-Poly1305 under a key-encryption key ---- */

typedef struct keystore_ctx {
    unsigned char kek[32];
    int wraps, unwraps, unwrap_failures;
} keystore_ctx;

static int ks_wrap(void *ctx, const unsigned char key[32], unsigned char *out, size_t *out_len)
{
    keystore_ctx *k = ctx;
    k->wraps++;
    const size_t nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    randombytes_buf(out, nb);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + nb, &clen, key, 32,
                                               (const unsigned char *)"fv-test-ks", 10, NULL, out,
                                               k->kek);
    *out_len = nb + (size_t)clen;
    assert_true(*out_len <= FV_WRAPPED_KEY_MAX);
    return 0;
}

static int ks_unwrap(void *ctx, const unsigned char *in, size_t in_len, unsigned char key[32])
{
    keystore_ctx *k = ctx;
    k->unwraps++;
    const size_t nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    unsigned long long mlen = 0;
    if (in_len != nb + 32 + crypto_aead_xchacha20poly1305_ietf_ABYTES ||
        crypto_aead_xchacha20poly1305_ietf_decrypt(key, &mlen, NULL, in + nb, in_len - nb,
                                                   (const unsigned char *)"fv-test-ks", 10, in,
                                                   k->kek) != 0) {
        k->unwrap_failures++;
        return -1;
    }
    return mlen == 32 ? 0 : -1;
}

static fv_keystore keystore_for(keystore_ctx *k)
{
    fv_keystore ks = {sizeof ks, k, ks_wrap, ks_unwrap};
    return ks;
}

/* ---- platform table hooks: clock, sleep, logger ------------------------------ */

typedef struct hooks_ctx {
    atomic_int now_calls, sleeps, logs, opens, closes;
    atomic_llong slept_ms;
    transport *t;
} hooks_ctx;

static int64_t hk_now(void *ctx)
{
    hooks_ctx *h = ctx;
    atomic_fetch_add(&h->now_calls, 1);
    return fv__posix_now_ms(NULL);
}

static void hk_sleep(void *ctx, int64_t ms)
{
    hooks_ctx *h = ctx;
    atomic_fetch_add(&h->sleeps, 1);
    atomic_fetch_add(&h->slept_ms, (long long)ms);
}

static void hk_log(void *ctx, int level, const char *msg)
{
    hooks_ctx *h = ctx;
    (void)level;
    (void)msg;
    atomic_fetch_add(&h->logs, 1);
}

static void *hk_http_open(void *ctx)
{
    hooks_ctx *h = ctx;
    atomic_fetch_add(&h->opens, 1);
    return h->t;
}

static void hk_http_close(void *ctx, void *conn)
{
    hooks_ctx *h = ctx;
    assert_ptr_equal(conn, h->t);
    atomic_fetch_add(&h->closes, 1);
}

/* ---- devices ---------------------------------------------------------------- */

static fv_status open_ks(fv_db **db, const char *path, keystore_ctx *k, int create)
{
    fv_keystore ks = keystore_for(k);
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.keystore = &ks; /* read during fv_open only */
    cfg.flags = create ? FV_OPEN_CREATE : 0;
    cfg.user = "ana";
    return fv_open(db, &cfg);
}

static fv_db *open_pass(const char *path, const char *user)
{
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.passphrase = "pw";
    cfg.passphrase_len = 2;
    cfg.flags = FV_OPEN_CREATE;
    cfg.kdf_mem_kib = 8192;
    cfg.kdf_passes = 1;
    cfg.user = user;
    fv_db *db = NULL;
    fv_status st = fv_open(&db, &cfg);
    if (st != FV_OK) fprintf(stderr, "open: %s\n", fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    return db;
}

static char *new_customer(fv_db *db, const char *name)
{
    fv_record *r;
    assert_int_equal(fv_record_new(db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", name), FV_OK);
    assert_int_equal(fv_insert(db, r), FV_OK);
    char *id = strdup(fv_record_id(r));
    fv_record_free(r);
    return id;
}

static void new_visit(fv_db *db, const char *cust, const char *summary)
{
    fv_record *r;
    assert_int_equal(fv_record_new(db, "visit", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "customer_id", cust), FV_OK);
    assert_int_equal(fv_record_set_text(r, "method", "visit"), FV_OK);
    assert_int_equal(fv_record_set_text(r, "summary", summary), FV_OK);
    assert_int_equal(fv_insert(db, r), FV_OK);
    fv_record_free(r);
}

static fv_sync_config sync_cfg(transport *t)
{
    fv_sync_config c;
    memset(&c, 0, sizeof c);
    c.size = sizeof c;
    if (t != NULL) {
        c.http = socket_post;
        c.http_ctx = t;
    }
    c.request_timeout_ms = 10000;
    return c;
}

static fv_sync_result do_sync(fv_db *db, const fv_sync_config *cfg, fv_status want)
{
    fv_sync_result r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    fv_status st = fv_sync(db, cfg, &r);
    if (st != want) fprintf(stderr, "sync: %d %s\n", st, fv_errmsg(db));
    assert_int_equal(st, want);
    return r;
}

/* ---- fixture ------------------------------------------------------------------ */

typedef struct fx {
    char *dir;
    server s;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("hooks");
    server_start(&f->s, f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    assert_int_equal(fv_platform_set(NULL), FV_OK);
    server_stop(&f->s);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- 1 + 2: sync through the HTTP hooks with a key-store device ---------------- */

static void test_sync_through_hooks(void **state)
{
    fx *f = *state;
    char *pa = tu_path(f->dir, "a.fv"), *pb = tu_path(f->dir, "b.fv");
    keystore_ctx kc;
    memset(&kc, 0, sizeof kc);
    randombytes_buf(kc.kek, sizeof kc.kek);

    /* device a: key store, per-sync transport */
    fv_db *a = NULL;
    fv_status st = open_ks(&a, pa, &kc, 1);
    if (st != FV_OK) fprintf(stderr, "open: %s\n", fv_errmsg(a));
    assert_int_equal(st, FV_OK);
    assert_int_equal(kc.wraps, 1);
    transport ta;
    memset(&ta, 0, sizeof ta);
    fv_sync_config ca = sync_cfg(&ta);
    char *code = add_user(&f->s, "ana", "lead");
    st = fv_enroll(a, f->s.base, code, &ca);
    if (st != FV_OK) fprintf(stderr, "enroll: %s\n", fv_errmsg(a));
    assert_int_equal(st, FV_OK);
    free(code);
    int after_enroll = atomic_load(&ta.requests);
    assert_true(after_enroll >= 1);

    char *cust = new_customer(a, "Acme Foods");
    new_visit(a, cust, "trial of line 3");
    new_visit(a, cust, "quote sent");
    fv_sync_result r = do_sync(a, &ca, FV_OK);
    assert_true(r.drained);
    assert_true(r.pushed >= 3);
    assert_true(atomic_load(&ta.requests) > after_enroll);
    assert_true(ta.bytes_out > 0 && ta.bytes_in > 0);
    fprintf(stderr, "test_hooks: device a: %d requests through the socket transport, "
                    "%zu bytes out, %zu in; last %s\n",
            atomic_load(&ta.requests), ta.bytes_out, ta.bytes_in, ta.last_path);
    fv_sync_status ss;
    memset(&ss, 0, sizeof ss);
    ss.size = sizeof ss;
    assert_int_equal(fv_sync_status_get(a, &ss), FV_OK);
    assert_int_equal(ss.pending_changes, 0);
    assert_string_equal(ss.server, f->s.base);

    /* device b: a passphrase, no transport in its sync config: the platform
     * table's HTTP hook (and its clock, sleep and logger) carry the sync */
    transport tb;
    memset(&tb, 0, sizeof tb);
    hooks_ctx hk;
    memset(&hk, 0, sizeof hk);
    hk.t = &tb;
    fv_platform table;
    memset(&table, 0, sizeof table);
    table.version = FV_PLATFORM_VERSION;
    table.ctx = &hk;
    table.now_ms = hk_now;
    table.sleep_ms = hk_sleep;
    table.log = hk_log;
    table.http_open = hk_http_open;
    table.http_close = hk_http_close;
    table.http_post = socket_post;
    assert_int_equal(fv_platform_set(&table), FV_OK);
    assert_ptr_equal(fv_platform_get(), &table);
    fv_db *b = open_pass(pb, "ben");
    code = add_user(&f->s, "ben", "lead");
    st = fv_enroll(b, f->s.base, code, NULL);
    if (st != FV_OK) fprintf(stderr, "enroll: %s\n", fv_errmsg(b));
    assert_int_equal(st, FV_OK);
    free(code);
    fv_sync_config cb = sync_cfg(NULL);
    r = do_sync(b, &cb, FV_OK);
    assert_true(r.drained);
    assert_true(r.pulled >= 3);
    assert_true(atomic_load(&tb.requests) >= 2);
    assert_int_equal(atomic_load(&hk.opens), atomic_load(&hk.closes)); /* nothing leaked */
    assert_true(atomic_load(&hk.opens) >= 2);                           /* enrol + sync */
    assert_true(atomic_load(&hk.now_calls) > 0);                        /* the table's clock */
    fv_platform_log(FV_LOG_INFO, "synced %d", 1);
    assert_int_equal(atomic_load(&hk.logs), 1);
    int a_requests = atomic_load(&ta.requests);

    /* b edits, a pulls it through its own transport: converged */
    fv_record *rec;
    assert_int_equal(fv_get(b, "customer", cust, &rec), FV_OK);
    assert_int_equal(fv_record_set_text(rec, "stage", "negotiation"), FV_OK);
    assert_int_equal(fv_update(b, rec), FV_OK);
    fv_record_free(rec);
    (void)do_sync(b, &cb, FV_OK);
    assert_int_equal(atomic_load(&ta.requests), a_requests); /* b never used a's transport */
    r = do_sync(a, &ca, FV_OK);
    assert_true(r.pulled >= 1);
    char ha[65], hb[65];
    assert_int_equal(fv_state_hash(a, ha), FV_OK);
    assert_int_equal(fv_state_hash(b, hb), FV_OK);
    assert_string_equal(ha, hb);

    /* the key store: reopen unwraps; another key-encryption key is FV_EKEY
     * and touches nothing */
    assert_int_equal(fv_close(a), FV_OK);
    a = NULL;
    assert_int_equal(open_ks(&a, pa, &kc, 0), FV_OK);
    assert_true(kc.unwraps >= 1);
    assert_int_equal(kc.unwrap_failures, 0);
    assert_int_equal(fv_state_hash(a, ha), FV_OK);
    assert_string_equal(ha, hb);
    assert_int_equal(fv_close(a), FV_OK);
    keystore_ctx other;
    memset(&other, 0, sizeof other);
    randombytes_buf(other.kek, sizeof other.kek);
    fv_db *bad = NULL;
    assert_int_equal(open_ks(&bad, pa, &other, 0), FV_EKEY);
    assert_true(other.unwrap_failures >= 1);
    fv_close(bad);
    assert_int_equal(open_ks(&a, pa, &kc, 0), FV_OK); /* still fine */
    assert_int_equal(fv_close(a), FV_OK);

    assert_int_equal(fv_close(b), FV_OK);
    assert_int_equal(fv_platform_set(NULL), FV_OK);
    free(cust);
    free(pa);
    free(pb);
}

/* ---- 3: faults through the hooks ------------------------------------------------ */

static void test_faults_through_hooks(void **state)
{
    fx *f = *state;
    char *pa = tu_path(f->dir, "f.fv");
    hooks_ctx hk;
    memset(&hk, 0, sizeof hk);
    fv_platform table;
    memset(&table, 0, sizeof table);
    table.version = FV_PLATFORM_VERSION;
    table.ctx = &hk;
    table.sleep_ms = hk_sleep; /* backoff without waiting */
    assert_int_equal(fv_platform_set(&table), FV_OK);

    fv_db *a = open_pass(pa, "fay");
    transport t;
    memset(&t, 0, sizeof t);
    fv_sync_config c = sync_cfg(&t);
    char *code = add_user(&f->s, "fay", "rep");
    assert_int_equal(fv_enroll(a, f->s.base, code, &c), FV_OK);
    free(code);
    char *cust = new_customer(a, "Retry Ltd");
    free(cust);

    /* the first two requests fail: retried with backoff (through the sleep
     * hook), the sync completes */
    atomic_store(&t.fail_first, 2);
    c.max_attempts = 4;
    fv_sync_result r = do_sync(a, &c, FV_OK);
    assert_true(r.drained);
    assert_int_equal(atomic_load(&t.failed), 2);
    assert_true(atomic_load(&hk.sleeps) >= 2);
    assert_true(atomic_load(&hk.slept_ms) >= 200 + 400);

    /* more failures than attempts: FV_ENET, the outbox is kept */
    cust = new_customer(a, "Offline GmbH");
    free(cust);
    atomic_store(&t.fail_first, 100);
    c.max_attempts = 3;
    (void)do_sync(a, &c, FV_ENET);
    assert_non_null(strstr(fv_errmsg(a), "injected network failure"));
    fv_sync_status ss;
    memset(&ss, 0, sizeof ss);
    ss.size = sizeof ss;
    assert_int_equal(fv_sync_status_get(a, &ss), FV_OK);
    assert_true(ss.pending_changes >= 1);
    atomic_store(&t.fail_first, 0);

    /* a dead network (connection refused) */
    t.never_answer = 1;
    (void)do_sync(a, &c, FV_ENET);
    t.never_answer = 0;

    /* a response over the bound the client set */
    transport th;
    memset(&th, 0, sizeof th);
    fv_sync_config ch = sync_cfg(NULL);
    ch.http = huge_post;
    ch.http_ctx = &th;
    ch.max_attempts = 1;
    fv_status st = fv_sync(a, &ch, NULL);
    assert_true(st == FV_EPROTO || st == FV_ENET);
    assert_true(atomic_load(&th.requests) >= 1);

    /* and back to normal: everything pending goes */
    r = do_sync(a, &c, FV_OK);
    assert_true(r.drained);
    assert_int_equal(fv_sync_status_get(a, &ss), FV_OK);
    assert_int_equal(ss.pending_changes, 0);
    assert_int_equal(fv_close(a), FV_OK);
    assert_int_equal(fv_platform_set(NULL), FV_OK);
    free(pa);
}

/* ---- 4: the table ---------------------------------------------------------------- */

static int64_t fixed_now(void *ctx)
{
    (void)ctx;
    return 1700000000000LL;
}

static void test_table(void **state)
{
    (void)state;
    fv_platform t;
    memset(&t, 0, sizeof t);
    t.version = FV_PLATFORM_VERSION + 1;
    assert_int_equal(fv_platform_set(&t), FV_EINVAL);
    t.version = 0;
    assert_int_equal(fv_platform_set(&t), FV_EINVAL);
    assert_ptr_equal(fv_platform_get(), fv_platform_default());

    /* an all-NULL table: every default still answers */
    t.version = FV_PLATFORM_VERSION;
    assert_int_equal(fv_platform_set(&t), FV_OK);
    int64_t now = fv_platform_now_ms();
    assert_true(now > 1600000000000LL);
    unsigned char r1[16] = {0}, r2[16] = {0};
    fv_platform_random(r1, sizeof r1);
    fv_platform_random(r2, sizeof r2);
    assert_memory_not_equal(r1, r2, sizeof r1);
    fv_platform_log(FV_LOG_ERROR, "discarded %s", "quietly");
    assert_null(fv_platform_keystore());
    void *conn = fv_platform_http_open(); /* libcurl by default */
    assert_non_null(conn);
    fv_platform_http_close(conn);

    /* one hook replaced: the clock; records take their times from it */
    t.now_ms = fixed_now;
    assert_int_equal(fv_platform_set(&t), FV_OK);
    assert_int_equal(fv_platform_now_ms(), 1700000000000LL);
    char *dir = tu_mkdtemp("hooks-clock");
    char *p = tu_path(dir, "c.fv");
    fv_db *db = open_pass(p, "cal");
    char *cust = new_customer(db, "Clockwork");
    fv_list *l;
    const fv_record *rec;
    assert_int_equal(fv_list_due(db, "2023-12-31", &l), FV_OK);
    assert_int_equal(fv_list_next(l, &rec), FV_OK);
    assert_non_null(rec); /* created "2023-11-14" by the table's clock, due 30 days on */
    assert_string_equal(fv_record_due(rec), "2023-12-14");
    fv_list_free(l);
    assert_int_equal(fv_close(db), FV_OK);
    assert_int_equal(fv_platform_set(NULL), FV_OK);
    assert_ptr_equal(fv_platform_get(), fv_platform_default());
    assert_true(fv_platform_now_ms() > 1700000000000LL);
    tu_rmtree(dir);
    free(cust);
    free(p);
    free(dir);
}

/* ---- 5: threads -------------------------------------------------------------------- */

typedef struct worker {
    pthread_t th;
    char *path;
    fv_db *db;             /* shared handle (with lock) or NULL: own handle */
    pthread_mutex_t *lock;
    int n, ok;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    fv_db *db = w->db;
    if (db == NULL) {
        fv_open_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.size = sizeof cfg;
        cfg.path = w->path;
        cfg.passphrase = "pw";
        cfg.passphrase_len = 2;
        cfg.flags = FV_OPEN_CREATE;
        cfg.kdf_mem_kib = 8192;
        cfg.kdf_passes = 1;
        if (fv_open(&db, &cfg) != FV_OK) {
            fv_close(db);
            return NULL;
        }
    }
    int ok = 0;
    for (int i = 0; i < w->n; i++) {
        if (w->lock) pthread_mutex_lock(w->lock);
        fv_record *r = NULL;
        char name[32];
        snprintf(name, sizeof name, "t-%d", i);
        if (fv_record_new(db, "customer", &r) == FV_OK &&
            fv_record_set_text(r, "name", name) == FV_OK && fv_insert(db, r) == FV_OK)
            ok++;
        fv_record_free(r);
        if (w->lock) pthread_mutex_unlock(w->lock);
    }
    w->ok = ok;
    if (w->db == NULL) fv_close(db);
    return NULL;
}

static size_t count_customers(fv_db *db)
{
    fv_list *l;
    const fv_record *r;
    size_t n = 0;
    assert_int_equal(fv_list_customers(db, NULL, &l), FV_OK);
    while (fv_list_next(l, &r) == FV_OK && r != NULL) n++;
    fv_list_free(l);
    return n;
}

/* A transport that blocks until cancelled from another thread would be
 * the app's problem; what the contract promises is that fv_sync_cancel
 * may be called from another thread while fv_sync runs: the sync stops at
 * its next batch boundary. */
typedef struct slow_ctx {
    transport *t;
    atomic_int calls;
} slow_ctx;

static int slow_post(void *ctx, const fv_http_request *req, fv_http_response *resp, char *err,
                     size_t errcap)
{
    slow_ctx *s = ctx;
    atomic_fetch_add(&s->calls, 1);
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    return socket_post(s->t, req, resp, err, errcap);
}

typedef struct canceller {
    fv_db *db;
    slow_ctx *s;
} canceller;

static void *cancel_soon(void *arg)
{
    canceller *c = arg;
    while (atomic_load(&c->s->calls) < 2) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fv_sync_cancel(c->db);
    return NULL;
}

static void test_threads(void **state)
{
    fx *f = *state;
    enum { NT = 4, N = 40 };
    worker w[NT];
    /* one handle per thread, all at once */
    for (int i = 0; i < NT; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%d.fv", i);
        memset(&w[i], 0, sizeof w[i]);
        w[i].path = tu_path(f->dir, name);
        w[i].n = N;
        assert_int_equal(pthread_create(&w[i].th, NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        assert_int_equal(pthread_join(w[i].th, NULL), 0);
        assert_int_equal(w[i].ok, N);
        fv_db *db = open_pass(w[i].path, "t");
        assert_int_equal(count_customers(db), N);
        assert_int_equal(fv_close(db), FV_OK);
        free(w[i].path);
    }
    /* one handle shared by threads that serialise (the caller's lock) */
    char *shared = tu_path(f->dir, "shared.fv");
    fv_db *db = open_pass(shared, "sam"); /* the user enrolled below */
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    for (int i = 0; i < NT; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].db = db;
        w[i].lock = &lock;
        w[i].n = N;
        assert_int_equal(pthread_create(&w[i].th, NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        assert_int_equal(pthread_join(w[i].th, NULL), 0);
        assert_int_equal(w[i].ok, N);
    }
    assert_int_equal(count_customers(db), (size_t)NT * N);

    /* fv_sync_cancel from another thread stops a sync at a batch boundary;
     * the next sync finishes the work */
    transport t;
    memset(&t, 0, sizeof t);
    fv_sync_config c = sync_cfg(&t);
    char *code = add_user(&f->s, "sam", "rep");
    assert_int_equal(fv_enroll(db, f->s.base, code, &c), FV_OK);
    free(code);
    slow_ctx sc;
    memset(&sc, 0, sizeof sc);
    sc.t = &t;
    c.http = slow_post;
    c.http_ctx = &sc;
    c.batch_changes = 10; /* 160 customers: many batches */
    canceller cc = {db, &sc};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cancel_soon, &cc), 0);
    fv_sync_result r = do_sync(db, &c, FV_OK);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(r.stopped);
    assert_false(r.drained);
    c.http = socket_post;
    c.http_ctx = &t;
    c.batch_changes = 0;
    r = do_sync(db, &c, FV_OK);
    assert_true(r.drained);
    assert_int_equal(fv_close(db), FV_OK);
    free(shared);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sync_through_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults_through_hooks, setup, teardown),
        cmocka_unit_test(test_table),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
