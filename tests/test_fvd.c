/*
 * test_fvd.c - fvd end to end: a real fvd process on loopback with the
 * SQLite backend, real HTTP through libcurl (and raw sockets where curl is
 * too polite), devices with their own Ed25519 keys signing with
 * sync/sign.c, bodies built with the wire codec.
 *
 *  - enrolment: codes work once, answers carry user/role/team/time;
 *  - push then pull by another device returns exactly what was pushed;
 *  - exactly once: a byte-for-byte replay is 401, the same batch re-signed
 *    is acknowledged as a duplicate and applies nothing;
 *  - the batch chain: backwards, gap, broken chain, same seq with other
 *    content are 409 with "restored from an old copy";
 *  - signatures: bad, unknown device, stale or future timestamp (the answer
 *    carries X-FV-Server-Time), revoked (403 REVOKED; list-devices says so);
 *  - hostile input (garbage, truncated, oversized - refused early -, wrongly
 *    signed, slow, chunked past the bound) while another device keeps
 *    pushing and pulling in a thread; fvd stays up;
 *  - a change dated a year ahead refuses the batch, nothing stored;
 *  - pull in bounded batches: cursor semantics, `more`, nothing twice, the
 *    server's cap;
 *  - SIGKILL in the middle of applying a big push, restart on the same
 *    data: the retried batch is applied exactly once;
 *  - SIGTERM stops fvd cleanly (exit 0, which under LSan also means no
 *    leak).
 *
 * Everything but the crash test (which watches SQLite's WAL) runs a second
 * time with fvd on PostgreSQL (a throwaway cluster, tests/pgutil.h), when
 * the build has the PostgreSQL test helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "change.h"
#include "fvd.h"
#include "sign.h"
#include "testutil.h"
#include "wire.h"
#ifdef FVD_TEST_PG
#include "pgutil.h"
#endif

#ifndef FVD_BIN
#define FVD_BIN "fvd"
#endif

#define ERRCAP 512

/* ---- Clock ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- The fvd process ---- */

typedef struct server {
    char *dir;          /* --data, and where fvd.log goes */
    const char *pg_url; /* --postgres instead of --data when set */
    pid_t pid;
    unsigned port;
} server;

/* Start fvd serve on a free port and wait for its "listening" line. */
static void server_start(server *sv)
{
    int out[2];
    assert_int_equal(pipe(out), 0);
    char *log = tu_path(sv->dir, "fvd.log");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) dup2(fd, 2);
        close(out[0]);
        if (sv->pg_url != NULL)
            execl(FVD_BIN, FVD_BIN, "serve", "--postgres", sv->pg_url, "--listen",
                  "127.0.0.1:0", (char *)NULL);
        else
            execl(FVD_BIN, FVD_BIN, "serve", "--data", sv->dir, "--listen", "127.0.0.1:0",
                  (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[512];
    size_t n = 0;
    while (n + 1 < sizeof line) {
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 30000) <= 0) break;
        ssize_t r = read(out[0], line + n, 1);
        if (r <= 0 || line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    close(out[0]);
    unsigned port = 0;
    const char prefix[] = "fvd: listening on 127.0.0.1:";
    char suffix[600];
    if (sv->pg_url != NULL) snprintf(suffix, sizeof suffix, " (postgres)");
    else snprintf(suffix, sizeof suffix, " (sqlite %s)", sv->dir);
    char *end = NULL;
    if (strncmp(line, prefix, sizeof prefix - 1) == 0)
        port = (unsigned)strtoul(line + sizeof prefix - 1, &end, 10);
    if (port == 0 || port > 65535 || end == NULL || strcmp(end, suffix) != 0) {
        fprintf(stderr, "fvd said: \"%s\"\n", line);
        fail();
    }
    sv->pid = pid;
    sv->port = port;
    free(log);
}

/* Signal fvd and wait: its exit status, or 128 + signal. */
static int server_stop(server *sv, int sig)
{
    kill(sv->pid, sig);
    int status = 0;
    assert_int_equal(waitpid(sv->pid, &status, 0), sv->pid);
    sv->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int server_alive(const server *sv)
{
    return sv->pid > 0 && waitpid(sv->pid, NULL, WNOHANG) == 0 && kill(sv->pid, 0) == 0;
}

/* fvd admin --data DIR args...; returns the result (caller frees). */
static tu_result admin(const server *sv, const char *a1, const char *a2, const char *a3,
                       const char *a4, const char *a5, const char *a6)
{
    const char *argv[12] = {FVD_BIN, "admin", sv->pg_url != NULL ? "--postgres" : "--data",
                            sv->pg_url != NULL ? sv->pg_url : sv->dir, a1, a2, a3, a4, a5, a6,
                            NULL};
    return tu_run(argv, NULL, NULL);
}

/* A new user; returns its enrolment code (malloc'd). */
static char *add_user(const server *sv, const char *name, const char *role, const char *team)
{
    tu_result r = admin(sv, "add-user", name, "--role", role, "--team", team);
    if (r.exit_code != 0) fprintf(stderr, "add-user: %s\n", r.err);
    assert_int_equal(r.exit_code, 0);
    size_t n = strlen(r.out);
    assert_true(n == FVD_CODE_TEXT && r.out[n - 1] == '\n'); /* the code alone */
    r.out[n - 1] = '\0';
    char *code = strdup(r.out);
    tu_result_free(&r);
    return code;
}

/* ---- HTTP ---- */

typedef struct resp {
    long status;
    unsigned char *body;
    size_t len;
    int64_t server_time; /* 0 if the header was absent */
    CURLcode rc;
} resp;

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    resp *r = ctx;
    size_t k = size * n;
    unsigned char *b = realloc(r->body, r->len + k + 1);
    if (b == NULL) return 0;
    memcpy(b + r->len, p, k);
    r->body = b;
    r->len += k;
    return k;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    resp *r = ctx;
    size_t k = size * n;
    const char name[] = "X-FV-Server-Time:";
    if (k > sizeof name && strncasecmp(p, name, sizeof name - 1) == 0)
        r->server_time = strtoll(p + sizeof name - 1, NULL, 10);
    return k;
}

static void resp_free(resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* POST body to path with the extra headers (NULL-terminated list). */
static resp post(unsigned port, const char *path, const unsigned char *body, size_t len,
                 const char *const *headers)
{
    resp r;
    memset(&r, 0, sizeof r);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        h = curl_slist_append(h, headers[i]);
    static const unsigned char none[1];
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? (const void *)body : none);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    r.rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

/* The Error of a refusal: its message must contain phrase and its code
 * be code; the answer carries X-FV-Server-Time. */
static void expect_error(const resp *r, long status, fieldvault_v1_ErrorCode code,
                         const char *phrase)
{
    fieldvault_v1_Error e;
    memset(&e, 0, sizeof e);
    char err[ERRCAP] = "";
    fv_status st = fv__wire_decode_error(r->body, r->len, &e, err, sizeof err);
    if (r->status != status || st != FV_OK || e.code != code || strstr(e.message, phrase) == NULL)
        fprintf(stderr, "expected %ld/%d \"%s\"; got %ld (curl %d) %d \"%s\" %s\n", status,
                (int)code, phrase, r->status, (int)r->rc, (int)e.code, e.message, err);
    assert_int_equal(r->status, status);
    assert_int_equal(st, FV_OK);
    assert_int_equal(e.code, code);
    assert_non_null(strstr(e.message, phrase));
    assert_true(llabs(r->server_time - now_ms()) < 60000);
}

/* ---- Devices ---- */

typedef struct device {
    unsigned char id[16], pk[32], sk[64];
    uint64_t acked_seq;           /* last acknowledged batch */
    unsigned char acked_hash[32]; /* its body's hash */
    uint64_t dseq;                /* outbox sequence */
    uint64_t hlc_count;
} device;

static void device_new(device *d)
{
    memset(d, 0, sizeof *d);
    randombytes_buf(d->id, sizeof d->id);
    crypto_sign_keypair(d->pk, d->sk);
}

/* The four signature headers, kept so a request can be replayed. */
typedef struct sig_headers {
    char h[4][200];
    const char *list[5];
} sig_headers;

static void sign_headers(const device *d, const unsigned char *sk, const char *path,
                         const unsigned char *body, size_t len, int64_t ts, sig_headers *out)
{
    unsigned char nonce[16];
    randombytes_buf(nonce, sizeof nonce);
    char dev[33], nhex[33], sig[129];
    fvd_hex(d->id, 16, dev);
    fvd_hex(nonce, 16, nhex);
    assert_int_equal(fv__sign_request(sk != NULL ? sk : d->sk, "POST", path, ts, nonce, body,
                                      len, sig), FV_OK);
    snprintf(out->h[0], sizeof out->h[0], "X-FV-Device: %s", dev);
    snprintf(out->h[1], sizeof out->h[1], "X-FV-Timestamp: %lld", (long long)ts);
    snprintf(out->h[2], sizeof out->h[2], "X-FV-Nonce: %s", nhex);
    snprintf(out->h[3], sizeof out->h[3], "X-FV-Signature: %s", sig);
    for (int i = 0; i < 4; i++) out->list[i] = out->h[i];
    out->list[4] = NULL;
}

static resp signed_post(unsigned port, const device *d, const char *path,
                        const unsigned char *body, size_t len)
{
    sig_headers h;
    sign_headers(d, NULL, path, body, len, now_ms(), &h);
    return post(port, path, body, len, h.list);
}

static void enroll(unsigned port, device *d, const char *code, const char *user,
                   const char *role, const char *team)
{
    fieldvault_v1_EnrollRequest q = fieldvault_v1_EnrollRequest_init_zero;
    snprintf(q.code, sizeof q.code, "%s", code);
    memcpy(q.device_id, d->id, 16);
    memcpy(q.public_key, d->pk, 32);
    snprintf(q.device_name, sizeof q.device_name, "%s's phone", user);
    fv__membuf m;
    fv__membuf_init(&m, 0);
    char err[ERRCAP];
    assert_int_equal(fv__wire_encode_enroll_request(&q, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    resp r = post(port, "/v1/enroll", m.data, m.len, NULL);
    if (r.status != 200) fprintf(stderr, "enroll: %ld %.*s\n", r.status, (int)r.len, r.body);
    assert_int_equal(r.status, 200);
    fieldvault_v1_EnrollResponse a;
    assert_int_equal(fv__wire_decode_enroll_response(r.body, r.len, &a, err, sizeof err), FV_OK);
    assert_string_equal(a.user, user);
    assert_string_equal(a.role, role);
    assert_string_equal(a.team, team);
    assert_memory_equal(a.device_id, d->id, 16);
    assert_true(llabs(a.server_time_ms - now_ms()) < 60000);
    assert_true(r.server_time > 0);
    resp_free(&r);
    fv__membuf_free(&m);
}

/* ---- Changes and bodies ---- */

static void change_init(fv__change *c, const device *d, const char *table, const char *field,
                        const unsigned char row[16])
{
    memset(c, 0, sizeof *c);
    snprintf(c->table, sizeof c->table, "%s", table);
    snprintf(c->field, sizeof c->field, "%s", field);
    memcpy(c->row_id, row, 16);
    memcpy(c->device, d->id, 16);
    c->kind = FV__VAL_NULL;
}

/* Stamp c as the device's next write. */
static void stamp(device *d, fv__change *c)
{
    c->hlc = ((uint64_t)now_ms() << 16) | (d->hlc_count++ & 0xFFFF);
    c->device_seq = ++d->dseq;
}

static void set_text(fv__change *c, const char *s)
{
    c->kind = FV__VAL_TEXT;
    c->len = strlen(s);
    memcpy(c->data, s, c->len + 1);
}

static void set_real(fv__change *c, double v)
{
    c->kind = FV__VAL_REAL;
    c->real = v;
}

static void set_sealed(fv__change *c, size_t n)
{
    c->kind = FV__VAL_SEALED;
    c->len = n;
    randombytes_buf(c->data, n);
}

typedef struct vec_src {
    const fv__change *v;
    size_t n, i;
} vec_src;

static int vec_next(void *ctx, fv__change *out)
{
    vec_src *s = ctx;
    if (s->i == s->n) return 0;
    *out = s->v[s->i++];
    return 1;
}

/* A PushRequest body for batch seq of d (chained on its acked batch). */
static void push_body(const device *d, uint64_t seq, const unsigned char prev[32],
                      const fv__change *v, size_t n, fv__membuf *m)
{
    fv__push_info h;
    memset(&h, 0, sizeof h);
    memcpy(h.device_id, d->id, 16);
    h.batch_seq = seq;
    memcpy(h.prev_batch_hash, prev != NULL ? prev : d->acked_hash, 32);
    fv__membuf_init(m, 0);
    vec_src s = {v, n, 0};
    char err[ERRCAP];
    fv_status st = fv__wire_encode_push_request(&h, vec_next, &s, fv__membuf_write, m, NULL,
                                                err, sizeof err);
    if (st != FV_OK) fprintf(stderr, "encode push: %s\n", err);
    assert_int_equal(st, FV_OK);
}

static fv__push_response decode_push(const resp *r)
{
    fv__push_response pr;
    memset(&pr, 0, sizeof pr);
    char err[ERRCAP];
    if (r->status != 200) fprintf(stderr, "push: %ld %.*s\n", r->status, (int)r->len, r->body);
    assert_int_equal(r->status, 200);
    assert_int_equal(fv__wire_decode_push_response(r->body, r->len, &pr, err, sizeof err),
                     FV_OK);
    assert_true(r->server_time > 0);
    return pr;
}

static void ack(device *d, uint64_t seq, const fv__membuf *body)
{
    d->acked_seq = seq;
    crypto_generichash(d->acked_hash, 32, body->data, body->len, NULL, 0);
}

/* Push v as d's next batch; it must be accepted (not a duplicate). */
static fv__push_response push_ok(unsigned port, device *d, const fv__change *v, size_t n)
{
    fv__membuf m;
    push_body(d, d->acked_seq + 1, NULL, v, n, &m);
    resp r = signed_post(port, d, "/v1/push", m.data, m.len);
    fv__push_response pr = decode_push(&r);
    assert_int_equal(pr.duplicate, 0);
    assert_int_equal(pr.batch_seq, d->acked_seq + 1);
    ack(d, d->acked_seq + 1, &m);
    resp_free(&r);
    fv__membuf_free(&m);
    return pr;
}

/* ---- Pull ---- */

typedef struct pulled {
    fv__change *v;
    size_t n, cap;
    uint64_t cursor;
    int more;
} pulled;

static int collect(void *ctx, const fv__change *c, char *err, size_t errcap)
{
    (void)err;
    (void)errcap;
    pulled *p = ctx;
    if (p->n == p->cap) {
        size_t cap = p->cap > 0 ? p->cap * 2 : 64;
        fv__change *v = realloc(p->v, cap * sizeof *v);
        if (v == NULL) return -1;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = *c;
    return 0;
}

/* One pull; appends to *p; returns the number of changes it carried. */
static size_t pull_once(unsigned port, const device *d, uint64_t cursor, uint32_t max,
                        pulled *p)
{
    fieldvault_v1_PullRequest q = fieldvault_v1_PullRequest_init_zero;
    memcpy(q.device_id, d->id, 16);
    q.cursor = cursor;
    q.max_changes = max;
    fv__membuf m;
    fv__membuf_init(&m, 0);
    char err[ERRCAP];
    assert_int_equal(fv__wire_encode_pull_request(&q, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    resp r = signed_post(port, d, "/v1/pull", m.data, m.len);
    fv__membuf_free(&m);
    if (r.status != 200) fprintf(stderr, "pull: %ld %.*s\n", r.status, (int)r.len, r.body);
    assert_int_equal(r.status, 200);
    fv__membuf in;
    fv__membuf_init_read(&in, r.body, r.len);
    fv__pull_info info;
    size_t before = p->n;
    fv_status st = fv__wire_decode_pull_response(fv__membuf_read, &in, collect, p, &info, err,
                                                 sizeof err);
    if (st != FV_OK) fprintf(stderr, "pull response: %s\n", err);
    assert_int_equal(st, FV_OK);
    p->cursor = info.cursor;
    p->more = info.more;
    resp_free(&r);
    return p->n - before;
}

/* Pull everything after cursor in batches of max; returns the batches. */
static size_t pull_all(unsigned port, const device *d, uint64_t cursor, uint32_t max, pulled *p)
{
    size_t batches = 0;
    p->more = 1;
    p->cursor = cursor;
    while (p->more) {
        uint64_t before = p->cursor;
        size_t got = pull_once(port, d, p->cursor, max, p);
        batches++;
        assert_true(got <= max);
        if (p->more) assert_int_equal(got, max);
        assert_true(p->cursor >= before);
        assert_true(batches < 100000);
    }
    return batches;
}

static uint64_t head_of(unsigned port, const device *d)
{
    pulled p = {0};
    pull_all(port, d, 0, FVD_PULL_MAX, &p);
    free(p.v);
    return p.cursor;
}

static void assert_change_equal(const fv__change *a, const fv__change *b)
{
    assert_string_equal(a->table, b->table);
    assert_string_equal(a->field, b->field);
    assert_memory_equal(a->row_id, b->row_id, 16);
    assert_memory_equal(a->device, b->device, 16);
    assert_true(a->hlc == b->hlc);
    assert_true(a->base_hlc == b->base_hlc);
    assert_true(a->device_seq == b->device_seq);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->len, b->len);
    if (a->kind == FV__VAL_REAL) assert_memory_equal(&a->real, &b->real, sizeof a->real);
    if (a->len > 0) assert_memory_equal(a->data, b->data, a->len);
}

/* ---- Shared state: one fvd for most tests ---- */

static server SV;
static device A, B; /* anna and ben, directors (all rows: these tests are about the protocol, not the access policy, test_fvd_acl), enrolled by test_enroll */

static int group_setup(void **state)
{
    (void)state;
    memset(&SV, 0, sizeof SV);
    SV.dir = tu_mkdtemp("fvd");
    server_start(&SV);
    return 0;
}

#ifdef FVD_TEST_PG
static pgu_cluster PG;

static int group_setup_pg(void **state)
{
    (void)state;
    memset(&SV, 0, sizeof SV);
    if (pgu_start(&PG) != 0) return -1;
    SV.dir = tu_mkdtemp("fvd-pg");
    SV.pg_url = pgu_url(&PG);
    server_start(&SV);
    return 0;
}
#endif

static int group_teardown(void **state)
{
    (void)state;
    int rc = server_stop(&SV, SIGTERM);
    char *log = tu_path(SV.dir, "fvd.log");
    size_t n;
    unsigned char *text = tu_read_file(log, &n);
    if (rc != 0 && text != NULL) fprintf(stderr, "fvd log:\n%.*s\n", (int)n, text);
    free(text);
    free(log);
    tu_rmtree(SV.dir);
    free(SV.dir);
#ifdef FVD_TEST_PG
    if (SV.pg_url != NULL) pgu_stop(&PG);
#endif
    return rc == 0 ? 0 : -1; /* a clean stop, and no leak under LSan */
}

/* ======================================================================== */

static void test_enroll(void **state)
{
    (void)state;
    char *ca = add_user(&SV, "anna", "director", "north");
    char *cb = add_user(&SV, "ben", "director", "north");
    device_new(&A);
    device_new(&B);
    enroll(SV.port, &A, ca, "anna", "director", "north");
    /* typed sloppily: lower case, no dashes - same code */
    for (char *p = cb; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    enroll(SV.port, &B, cb, "ben", "director", "north");

    /* a code works once */
    device x;
    device_new(&x);
    fieldvault_v1_EnrollRequest q = fieldvault_v1_EnrollRequest_init_zero;
    snprintf(q.code, sizeof q.code, "%s", ca);
    memcpy(q.device_id, x.id, 16);
    memcpy(q.public_key, x.pk, 32);
    fv__membuf m;
    fv__membuf_init(&m, 0);
    char err[ERRCAP];
    assert_int_equal(fv__wire_encode_enroll_request(&q, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    resp r = post(SV.port, "/v1/enroll", m.data, m.len, NULL);
    expect_error(&r, 401, fieldvault_v1_ErrorCode_ERROR_CODE_UNAUTHENTICATED,
                 "unknown or already used enrolment code");
    resp_free(&r);
    fv__membuf_free(&m);
    /* a device id that is taken: 409, and the new code is not used up */
    char *cc = add_user(&SV, "cleo", "service", "south");
    snprintf(q.code, sizeof q.code, "%s", cc);
    memcpy(q.device_id, A.id, 16);
    fv__membuf_init(&m, 0);
    assert_int_equal(fv__wire_encode_enroll_request(&q, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    r = post(SV.port, "/v1/enroll", m.data, m.len, NULL);
    expect_error(&r, 409, fieldvault_v1_ErrorCode_ERROR_CODE_CONFLICT, "enrolled already");
    resp_free(&r);
    fv__membuf_free(&m);
    /* not a point on the curve */
    memcpy(q.device_id, x.id, 16);
    memset(q.public_key, 0xFF, 32);
    fv__membuf_init(&m, 0);
    assert_int_equal(fv__wire_encode_enroll_request(&q, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    r = post(SV.port, "/v1/enroll", m.data, m.len, NULL);
    expect_error(&r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST,
                 "not a valid Ed25519 public key");
    resp_free(&r);
    fv__membuf_free(&m);
    /* garbage */
    r = post(SV.port, "/v1/enroll", (const unsigned char *)"\x0a\xff\xff", 3, NULL);
    expect_error(&r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST,
                 "malformed enroll request");
    resp_free(&r);
    /* cleo's code still works */
    enroll(SV.port, &x, cc, "cleo", "service", "south");
    free(ca);
    free(cb);
    free(cc);
}

static void test_push_pull_exact(void **state)
{
    (void)state;
    unsigned char row[16], row2[16];
    randombytes_buf(row, 16);
    randombytes_buf(row2, 16);
    fv__change v[8];
    size_t n = 0;
    change_init(&v[n], &A, "customer", "name", row);
    set_text(&v[n], "Acme 食品 — Zürich 🚀");
    stamp(&A, &v[n++]);
    change_init(&v[n], &A, "customer", "budget", row);
    set_sealed(&v[n], 300);
    stamp(&A, &v[n++]);
    change_init(&v[n], &A, "customer", "region", row); /* cleared: null */
    stamp(&A, &v[n++]);
    change_init(&v[n], &A, "visit", "lat", row2);
    set_real(&v[n], 48.856613);
    stamp(&A, &v[n++]);
    change_init(&v[n], &A, "visit", "lon", row2);
    set_real(&v[n], -0.0);
    stamp(&A, &v[n++]);
    change_init(&v[n], &A, "customer", "industry", row);
    set_text(&v[n], "");
    v[n].base_hlc = 12345;
    stamp(&A, &v[n++]);
    change_init(&v[n], &A, "customer", "_deleted", row2);
    set_real(&v[n], 1.0);
    stamp(&A, &v[n++]);
    fv__push_response pr = push_ok(SV.port, &A, v, n);
    assert_int_equal(pr.accepted, n);
    assert_int_equal(pr.nrejections, 0);
    assert_true(pr.server_seq >= n);

    pulled p = {0};
    pull_all(SV.port, &B, pr.server_seq - n, FVD_PULL_MAX, &p);
    assert_int_equal(p.n, n);
    assert_int_equal(p.cursor, pr.server_seq);
    for (size_t i = 0; i < n; i++) assert_change_equal(&v[i], &p.v[i]);
    assert_true(signbit(p.v[4].real)); /* -0.0 stays -0.0 */
    free(p.v);

    /* an older write to a field loses on the server and is dropped; a newer
     * one wins */
    fv__change old = v[0], newer = v[0];
    set_text(&old, "older");
    old.hlc = v[0].hlc - 1000;
    old.device_seq = ++A.dseq;
    set_text(&newer, "newer");
    stamp(&A, &newer);
    fv__change two[2] = {old, newer};
    pr = push_ok(SV.port, &A, two, 2);
    assert_int_equal(pr.accepted, 1);
    memset(&p, 0, sizeof p);
    pull_all(SV.port, &B, pr.server_seq - 1, FVD_PULL_MAX, &p);
    assert_int_equal(p.n, 1);
    assert_string_equal((const char *)p.v[0].data, "newer");
    free(p.v);
}

static void test_replay_and_duplicate(void **state)
{
    (void)state;
    unsigned char row[16];
    randombytes_buf(row, 16);
    fv__change c;
    change_init(&c, &A, "customer", "name", row);
    set_text(&c, "Replay GmbH");
    stamp(&A, &c);
    fv__membuf m;
    uint64_t seq = A.acked_seq + 1;
    push_body(&A, seq, NULL, &c, 1, &m);
    sig_headers h;
    sign_headers(&A, NULL, "/v1/push", m.data, m.len, now_ms(), &h);
    resp r = post(SV.port, "/v1/push", m.data, m.len, h.list);
    fv__push_response first = decode_push(&r);
    assert_int_equal(first.accepted, 1);
    assert_int_equal(first.duplicate, 0);
    resp_free(&r);
    ack(&A, seq, &m);

    /* byte for byte, same headers: the nonce was seen */
    r = post(SV.port, "/v1/push", m.data, m.len, h.list);
    expect_error(&r, 401, fieldvault_v1_ErrorCode_ERROR_CODE_UNAUTHENTICATED, "replayed nonce");
    resp_free(&r);
    /* the same batch, re-signed (the response was lost): a duplicate */
    r = signed_post(SV.port, &A, "/v1/push", m.data, m.len);
    fv__push_response dup = decode_push(&r);
    assert_int_equal(dup.duplicate, 1);
    assert_int_equal(dup.batch_seq, seq);
    assert_int_equal(dup.accepted, 0);
    assert_int_equal(dup.server_seq, first.server_seq); /* nothing applied twice */
    resp_free(&r);
    assert_int_equal(head_of(SV.port, &B), first.server_seq);
    fv__membuf_free(&m);
}

static void expect_conflict(const device *d, uint64_t seq, const unsigned char *prev,
                            const char *phrase)
{
    unsigned char row[16];
    randombytes_buf(row, 16);
    fv__change c;
    change_init(&c, d, "customer", "name", row);
    set_text(&c, "Old Copy Ltd");
    c.hlc = (uint64_t)now_ms() << 16;
    c.device_seq = 1;
    fv__membuf m;
    push_body(d, seq, prev, &c, 1, &m);
    resp r = signed_post(SV.port, d, "/v1/push", m.data, m.len);
    expect_error(&r, 409, fieldvault_v1_ErrorCode_ERROR_CODE_CONFLICT, phrase);
    fieldvault_v1_Error e;
    char err[ERRCAP];
    assert_int_equal(fv__wire_decode_error(r.body, r.len, &e, err, sizeof err), FV_OK);
    assert_non_null(strstr(e.message, "restored from an old copy"));
    resp_free(&r);
    fv__membuf_free(&m);
}

static void test_chain_conflicts(void **state)
{
    (void)state;
    uint64_t head = head_of(SV.port, &B);
    assert_true(A.acked_seq >= 3);
    static const unsigned char zero[32];
    unsigned char wrong[32];
    memset(wrong, 0x77, 32);
    expect_conflict(&A, 1, zero, "batch 1 goes backwards");
    expect_conflict(&A, A.acked_seq - 1, NULL, "goes backwards");
    expect_conflict(&A, A.acked_seq + 2, NULL, "leaves a gap");
    expect_conflict(&A, A.acked_seq + 1, wrong, "does not chain on batch");
    expect_conflict(&A, A.acked_seq, NULL, "applied already with other content");
    assert_int_equal(head_of(SV.port, &B), head); /* nothing stored */
    /* the chain itself is intact: the real next batch goes in */
    unsigned char row[16];
    randombytes_buf(row, 16);
    fv__change c;
    change_init(&c, &A, "customer", "name", row);
    set_text(&c, "Next One");
    stamp(&A, &c);
    fv__push_response pr = push_ok(SV.port, &A, &c, 1);
    assert_int_equal(pr.server_seq, head + 1);
    /* fvd logged the conflicts */
    assert_true(tu_dir_contains(SV.dir, "push conflict from device", 25));
}

static void test_auth_refusals(void **state)
{
    (void)state;
    fieldvault_v1_PullRequest q = fieldvault_v1_PullRequest_init_zero;
    memcpy(q.device_id, B.id, 16);
    fv__membuf m;
    fv__membuf_init(&m, 0);
    char err[ERRCAP];
    assert_int_equal(fv__wire_encode_pull_request(&q, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    const fieldvault_v1_ErrorCode UN = fieldvault_v1_ErrorCode_ERROR_CODE_UNAUTHENTICATED;
    sig_headers h;
    /* signed with another key */
    device other;
    device_new(&other);
    sign_headers(&B, other.sk, "/v1/pull", m.data, m.len, now_ms(), &h);
    resp r = post(SV.port, "/v1/pull", m.data, m.len, h.list);
    expect_error(&r, 401, UN, "bad signature");
    resp_free(&r);
    /* signed for another path */
    sign_headers(&B, NULL, "/v1/push", m.data, m.len, now_ms(), &h);
    r = post(SV.port, "/v1/pull", m.data, m.len, h.list);
    expect_error(&r, 401, UN, "bad signature");
    resp_free(&r);
    /* unknown device */
    r = signed_post(SV.port, &other, "/v1/pull", m.data, m.len);
    expect_error(&r, 401, UN, "unknown device");
    resp_free(&r);
    /* stale and future timestamps; the answer says the server's time */
    sign_headers(&B, NULL, "/v1/pull", m.data, m.len, now_ms() - 10 * 60 * 1000, &h);
    r = post(SV.port, "/v1/pull", m.data, m.len, h.list);
    expect_error(&r, 401, UN, "timestamp");
    assert_true(llabs(r.server_time - now_ms()) < 5000);
    resp_free(&r);
    sign_headers(&B, NULL, "/v1/pull", m.data, m.len, now_ms() + 6 * 60 * 1000, &h);
    r = post(SV.port, "/v1/pull", m.data, m.len, h.list);
    expect_error(&r, 401, UN, "ahead of the server clock");
    resp_free(&r);
    /* a clock 4 minutes off is fine */
    sign_headers(&B, NULL, "/v1/pull", m.data, m.len, now_ms() - 4 * 60 * 1000, &h);
    r = post(SV.port, "/v1/pull", m.data, m.len, h.list);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* missing and malformed headers */
    r = post(SV.port, "/v1/pull", m.data, m.len, NULL);
    expect_error(&r, 401, UN, "missing header X-FV-Device");
    resp_free(&r);
    sign_headers(&B, NULL, "/v1/pull", m.data, m.len, now_ms(), &h);
    snprintf(h.h[1], sizeof h.h[1], "X-FV-Timestamp: 0%lld", (long long)now_ms());
    r = post(SV.port, "/v1/pull", m.data, m.len, h.list);
    expect_error(&r, 401, UN, "malformed X-FV-Timestamp");
    resp_free(&r);
    sign_headers(&B, NULL, "/v1/pull", m.data, m.len, now_ms(), &h);
    h.h[2][strlen(h.h[2]) - 1] = 'g';
    r = post(SV.port, "/v1/pull", m.data, m.len, h.list);
    expect_error(&r, 401, UN, "malformed X-FV-Nonce");
    resp_free(&r);
    /* the body is part of what is signed */
    sign_headers(&B, NULL, "/v1/pull", m.data, m.len, now_ms(), &h);
    m.data[m.len - 1] ^= 1;
    r = post(SV.port, "/v1/pull", m.data, m.len, h.list);
    expect_error(&r, 401, UN, "bad signature");
    resp_free(&r);
    fv__membuf_free(&m);
    /* paths and methods */
    r = post(SV.port, "/v1/nothing", NULL, 0, NULL);
    expect_error(&r, 404, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST, "no endpoint");
    resp_free(&r);
}

static void test_revoked(void **state)
{
    (void)state;
    char *code = add_user(&SV, "dora", "director", "east");
    device c;
    device_new(&c);
    enroll(SV.port, &c, code, "dora", "director", "east");
    free(code);
    unsigned char row[16];
    randombytes_buf(row, 16);
    fv__change ch;
    change_init(&ch, &c, "customer", "name", row);
    set_text(&ch, "Before Revocation");
    stamp(&c, &ch);
    push_ok(SV.port, &c, &ch, 1);
    char hex[33];
    fvd_hex(c.id, 16, hex);
    tu_result t = admin(&SV, "revoke-device", hex, NULL, NULL, NULL, NULL);
    assert_int_equal(t.exit_code, 0);
    tu_result_free(&t);
    stamp(&c, &ch);
    fv__membuf m;
    push_body(&c, c.acked_seq + 1, NULL, &ch, 1, &m);
    resp r = signed_post(SV.port, &c, "/v1/push", m.data, m.len);
    expect_error(&r, 403, fieldvault_v1_ErrorCode_ERROR_CODE_REVOKED, "revoked");
    resp_free(&r);
    fv__membuf_free(&m);
    fieldvault_v1_PullRequest q = fieldvault_v1_PullRequest_init_zero;
    memcpy(q.device_id, c.id, 16);
    fv__membuf_init(&m, 0);
    char err[ERRCAP];
    assert_int_equal(fv__wire_encode_pull_request(&q, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    r = signed_post(SV.port, &c, "/v1/pull", m.data, m.len);
    expect_error(&r, 403, fieldvault_v1_ErrorCode_ERROR_CODE_REVOKED, "revoked");
    resp_free(&r);
    fv__membuf_free(&m);
    /* list-devices says so, as a table and as JSON */
    t = admin(&SV, "list-devices", NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(t.exit_code, 0);
    const char *line = strstr(t.out, hex);
    assert_non_null(line);
    const char *eol = strchr(line, '\n');
    char *revoked = strstr(line, "revoked");
    assert_true(revoked != NULL && revoked < eol);
    char ahex[33];
    fvd_hex(A.id, 16, ahex);
    line = strstr(t.out, ahex);
    assert_non_null(line);
    eol = strchr(line, '\n');
    char *active = strstr(line, "active");
    assert_true(active != NULL && active < eol);
    tu_result_free(&t);
    t = admin(&SV, "list-devices", "--json", NULL, NULL, NULL, NULL);
    assert_int_equal(t.exit_code, 0);
    line = strstr(t.out, hex);
    assert_non_null(line);
    assert_non_null(strstr(line, "\"revoked\": true"));
    tu_result_free(&t);
    /* revoking an unknown device fails; a bad id is a usage error */
    t = admin(&SV, "revoke-device", "00112233445566778899aabbccddeeff", NULL, NULL, NULL, NULL);
    assert_int_equal(t.exit_code, 1);
    tu_result_free(&t);
    t = admin(&SV, "revoke-device", "xyz", NULL, NULL, NULL, NULL);
    assert_int_equal(t.exit_code, 2);
    tu_result_free(&t);
}

/* ---- Hostile clients while a good one works ---- */

typedef struct worker {
    device *d;
    unsigned port;
    atomic_int stop;
    int rounds, failures;
    uint64_t cursor;
    size_t pulled;
    char why[256];
} worker;

/* No cmocka assertions in here (not thread-safe): count and keep the first
 * failure. */
static void *work(void *arg)
{
    worker *w = arg;
    while (!atomic_load(&w->stop) || w->rounds < 3) {
        unsigned char row[16];
        randombytes_buf(row, 16);
        fv__change c;
        change_init(&c, w->d, "visit", "summary", row);
        set_text(&c, "worked while others misbehaved");
        stamp(w->d, &c);
        fv__push_info h;
        memset(&h, 0, sizeof h);
        memcpy(h.device_id, w->d->id, 16);
        h.batch_seq = w->d->acked_seq + 1;
        memcpy(h.prev_batch_hash, w->d->acked_hash, 32);
        fv__membuf m;
        fv__membuf_init(&m, 0);
        vec_src s = {&c, 1, 0};
        char err[ERRCAP];
        int ok = fv__wire_encode_push_request(&h, vec_next, &s, fv__membuf_write, &m, NULL, err,
                                              sizeof err) == FV_OK;
        sig_headers sh;
        unsigned char nonce[16];
        randombytes_buf(nonce, 16);
        char dev[33], nhex[33], sig[129];
        fvd_hex(w->d->id, 16, dev);
        fvd_hex(nonce, 16, nhex);
        int64_t ts = now_ms();
        ok = ok && fv__sign_request(w->d->sk, "POST", "/v1/push", ts, nonce, m.data, m.len,
                                    sig) == FV_OK;
        snprintf(sh.h[0], sizeof sh.h[0], "X-FV-Device: %s", dev);
        snprintf(sh.h[1], sizeof sh.h[1], "X-FV-Timestamp: %lld", (long long)ts);
        snprintf(sh.h[2], sizeof sh.h[2], "X-FV-Nonce: %s", nhex);
        snprintf(sh.h[3], sizeof sh.h[3], "X-FV-Signature: %s", sig);
        for (int i = 0; i < 4; i++) sh.list[i] = sh.h[i];
        sh.list[4] = NULL;
        resp r;
        memset(&r, 0, sizeof r);
        if (ok) r = post(w->port, "/v1/push", m.data, m.len, sh.list);
        fv__push_response pr;
        memset(&pr, 0, sizeof pr);
        ok = ok && r.status == 200 &&
             fv__wire_decode_push_response(r.body, r.len, &pr, err, sizeof err) == FV_OK &&
             pr.accepted == 1 && !pr.duplicate;
        if (ok) {
            w->d->acked_seq = h.batch_seq;
            crypto_generichash(w->d->acked_hash, 32, m.data, m.len, NULL, 0);
        } else if (w->failures++ == 0) {
            snprintf(w->why, sizeof w->why, "push: status %ld curl %d", r.status, (int)r.rc);
        }
        resp_free(&r);
        fv__membuf_free(&m);
        /* and a pull from where it was */
        fieldvault_v1_PullRequest q = fieldvault_v1_PullRequest_init_zero;
        memcpy(q.device_id, w->d->id, 16);
        q.cursor = w->cursor;
        q.max_changes = 50;
        fv__membuf_init(&m, 0);
        ok = fv__wire_encode_pull_request(&q, fv__membuf_write, &m, err, sizeof err) == FV_OK;
        ts = now_ms();
        randombytes_buf(nonce, 16);
        fvd_hex(nonce, 16, nhex);
        ok = ok && fv__sign_request(w->d->sk, "POST", "/v1/pull", ts, nonce, m.data, m.len,
                                    sig) == FV_OK;
        snprintf(sh.h[1], sizeof sh.h[1], "X-FV-Timestamp: %lld", (long long)ts);
        snprintf(sh.h[2], sizeof sh.h[2], "X-FV-Nonce: %s", nhex);
        snprintf(sh.h[3], sizeof sh.h[3], "X-FV-Signature: %s", sig);
        memset(&r, 0, sizeof r);
        if (ok) r = post(w->port, "/v1/pull", m.data, m.len, sh.list);
        fv__membuf_free(&m);
        pulled p = {0};
        fv__membuf in;
        fv__membuf_init_read(&in, r.body, r.len);
        fv__pull_info info;
        ok = ok && r.status == 200 &&
             fv__wire_decode_pull_response(fv__membuf_read, &in, collect, &p, &info, err,
                                           sizeof err) == FV_OK &&
             info.cursor >= w->cursor;
        if (ok) {
            w->cursor = info.cursor;
            w->pulled += p.n;
        } else if (w->failures++ == 0) {
            snprintf(w->why, sizeof w->why, "pull: status %ld curl %d", r.status, (int)r.rc);
        }
        free(p.v);
        resp_free(&r);
        w->rounds++;
    }
    return NULL;
}

static int connect_to(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k <= 0) return; /* the server may have hung up: fine */
        b += k;
        n -= (size_t)k;
    }
}

/* Read until the peer closes or stops (timeout); NUL-terminated. */
static size_t recv_some(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
        if (k <= 0) break;
        n += (size_t)k;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL) {
            /* headers in; give the body a moment */
            struct timeval tv = {0, 200000};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        }
    }
    buf[n] = '\0';
    return n;
}

static void test_hostile_bodies_parallel(void **state)
{
    (void)state;
    worker w;
    memset(&w, 0, sizeof w);
    w.d = &B;
    w.port = SV.port;
    atomic_init(&w.stop, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, work, &w), 0);
    const fieldvault_v1_ErrorCode BAD = fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST;

    /* slow clients: one sends its headers a byte at a time, another nothing */
    int slow = connect_to(SV.port), idle = connect_to(SV.port);
    const char *partial = "POST /v1/pull HTTP/1.1\r\nHost: x\r\n";

    /* garbage, signed correctly: 400 */
    unsigned char junk[4096];
    randombytes_buf(junk, sizeof junk);
    junk[0] = 0x0A; /* device_id, but not 16 bytes long */
    resp r = signed_post(SV.port, &A, "/v1/push", junk, sizeof junk);
    expect_error(&r, 400, BAD, "push refused, nothing applied");
    resp_free(&r);
    send_all(slow, partial, 5);

    /* truncated: a real batch cut short */
    unsigned char row[16];
    randombytes_buf(row, 16);
    fv__change c[3];
    for (int i = 0; i < 3; i++) {
        change_init(&c[i], &A, "customer", "needs", row);
        set_text(&c[i], "a need that is long enough to be cut in the middle");
        stamp(&A, &c[i]);
    }
    fv__membuf m;
    push_body(&A, A.acked_seq + 1, NULL, c, 3, &m);
    r = signed_post(SV.port, &A, "/v1/push", m.data, m.len - 20);
    expect_error(&r, 400, BAD, "truncated");
    resp_free(&r);
    send_all(slow, partial + 5, 10);

    /* wrongly signed: the signature is for other bytes of the same length */
    sig_headers h;
    sign_headers(&A, NULL, "/v1/push", junk, m.len, now_ms(), &h);
    r = post(SV.port, "/v1/push", m.data, m.len, h.list);
    expect_error(&r, 401, fieldvault_v1_ErrorCode_ERROR_CODE_UNAUTHENTICATED, "bad signature");
    resp_free(&r);

    /* oversized, through curl (Expect: 100-continue): 413 */
    size_t big = FVD_PUSH_BODY_MAX + 1;
    unsigned char *huge = calloc(1, big);
    assert_non_null(huge);
    r = signed_post(SV.port, &A, "/v1/push", huge, big);
    expect_error(&r, 413, fieldvault_v1_ErrorCode_ERROR_CODE_TOO_LARGE, "at most");
    resp_free(&r);
    free(huge);
    /* ... and early: the answer comes after the headers alone */
    int fd = connect_to(SV.port);
    const char *oversize = "POST /v1/push HTTP/1.1\r\nHost: x\r\n"
                           "Content-Length: 1000000000\r\n\r\n";
    send_all(fd, oversize, strlen(oversize));
    char buf[8192];
    recv_some(fd, buf, sizeof buf);
    close(fd);
    assert_non_null(strstr(buf, "HTTP/1.1 413"));
    assert_non_null(strstr(buf, "X-FV-Server-Time: "));
    /* a body without Content-Length that grows past the bound: 413 at its
     * end (enrolment takes 64 KiB) */
    fd = connect_to(SV.port);
    const char *chunked = "POST /v1/enroll HTTP/1.1\r\nHost: x\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n";
    send_all(fd, chunked, strlen(chunked));
    static char chunk[32768 + 16];
    int hl = snprintf(chunk, sizeof chunk, "8000\r\n");
    memset(chunk + hl, 'z', 32768);
    memcpy(chunk + hl + 32768, "\r\n", 2);
    for (int i = 0; i < 6; i++) send_all(fd, chunk, (size_t)hl + 32768 + 2);
    send_all(fd, "0\r\n\r\n", 5);
    recv_some(fd, buf, sizeof buf);
    close(fd);
    assert_non_null(strstr(buf, "HTTP/1.1 413"));
    send_all(slow, partial + 15, strlen(partial) - 15);

    /* not HTTP at all */
    fd = connect_to(SV.port);
    struct timeval tv2 = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv2, sizeof tv2);
    send_all(fd, junk, sizeof junk);
    send_all(fd, "\r\n\r\n", 4);
    recv_some(fd, buf, sizeof buf);
    close(fd);
    /* a request cut off in the middle of its body */
    fd = connect_to(SV.port);
    const char *cut = "POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc";
    send_all(fd, cut, strlen(cut));
    close(fd);
    /* wrong method, unknown path */
    r = post(SV.port, "/", NULL, 0, NULL);
    expect_error(&r, 404, BAD, "no endpoint");
    resp_free(&r);
    {
        CURL *cu = curl_easy_init();
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/pull", SV.port);
        resp g;
        memset(&g, 0, sizeof g);
        curl_easy_setopt(cu, CURLOPT_URL, url);
        curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(cu, CURLOPT_WRITEDATA, &g);
        curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(cu, CURLOPT_HEADERDATA, &g);
        g.rc = curl_easy_perform(cu);
        curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &g.status);
        curl_easy_cleanup(cu);
        expect_error(&g, 405, BAD, "takes POST only");
        resp_free(&g);
    }

    /* the real batch still goes in afterwards, untouched by all that */
    r = signed_post(SV.port, &A, "/v1/push", m.data, m.len);
    fv__push_response pr = decode_push(&r);
    assert_int_equal(pr.accepted, 3);
    ack(&A, A.acked_seq + 1, &m);
    resp_free(&r);
    fv__membuf_free(&m);

    close(slow);
    close(idle);
    atomic_store(&w.stop, 1);
    pthread_join(t, NULL);
    printf("test_fvd: the other device did %d push + pull rounds meanwhile (%zu changes "
           "pulled)\n", w.rounds, w.pulled);
    assert_true(w.pulled > 0);
    if (w.failures != 0) fprintf(stderr, "worker: %d failures, first: %s\n", w.failures, w.why);
    assert_int_equal(w.failures, 0);
    assert_true(w.rounds >= 3);
    assert_true(server_alive(&SV));
    /* and pulls still work for everyone */
    assert_true(head_of(SV.port, &A) > 0);
}

static void test_clock_ahead(void **state)
{
    (void)state;
    uint64_t head = head_of(SV.port, &B);
    unsigned char row[16];
    randombytes_buf(row, 16);
    fv__change c[2];
    change_init(&c[0], &A, "customer", "name", row);
    set_text(&c[0], "Now Inc");
    stamp(&A, &c[0]);
    change_init(&c[1], &A, "customer", "stage", row);
    set_text(&c[1], "won");
    c[1].hlc = (uint64_t)(now_ms() + 365LL * 24 * 3600 * 1000) << 16;
    c[1].device_seq = ++A.dseq;
    fv__membuf m;
    push_body(&A, A.acked_seq + 1, NULL, c, 2, &m);
    resp r = signed_post(SV.port, &A, "/v1/push", m.data, m.len);
    expect_error(&r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST, "ahead");
    fieldvault_v1_Error e;
    char err[ERRCAP];
    assert_int_equal(fv__wire_decode_error(r.body, r.len, &e, err, sizeof err), FV_OK);
    assert_non_null(strstr(e.message, "change #1"));
    resp_free(&r);
    fv__membuf_free(&m);
    assert_int_equal(head_of(SV.port, &B), head); /* not even change #0 */

    /* other invalid changes refuse the batch the same way */
    change_init(&c[1], &A, "nope", "name", row);
    set_text(&c[1], "x");
    stamp(&A, &c[1]);
    push_body(&A, A.acked_seq + 1, NULL, c, 2, &m);
    r = signed_post(SV.port, &A, "/v1/push", m.data, m.len);
    expect_error(&r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST, "no table 'nope'");
    resp_free(&r);
    fv__membuf_free(&m);
    change_init(&c[1], &B, "customer", "name", row); /* another device's change */
    set_text(&c[1], "x");
    stamp(&A, &c[1]);
    push_body(&A, A.acked_seq + 1, NULL, c, 2, &m);
    r = signed_post(SV.port, &A, "/v1/push", m.data, m.len);
    expect_error(&r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST,
                 "not by the pushing device");
    resp_free(&r);
    fv__membuf_free(&m);
    change_init(&c[1], &A, "customer", "stage", row);
    set_text(&c[1], "nonsense");
    stamp(&A, &c[1]);
    push_body(&A, A.acked_seq + 1, NULL, c, 2, &m);
    r = signed_post(SV.port, &A, "/v1/push", m.data, m.len);
    expect_error(&r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST, "must be one of");
    resp_free(&r);
    fv__membuf_free(&m);
    assert_int_equal(head_of(SV.port, &B), head);
    /* the batch seq was not used up */
    push_ok(SV.port, &A, c, 1);
    assert_int_equal(head_of(SV.port, &B), head + 1);
}

static void test_pull_batches(void **state)
{
    (void)state;
    /* enough changes to pass the server's cap */
    size_t n = 1500;
    fv__change *v = calloc(n, sizeof *v);
    assert_non_null(v);
    unsigned char row[16];
    for (size_t i = 0; i < n; i++) {
        randombytes_buf(row, 16);
        change_init(&v[i], &A, "customer", "name", row);
        char name[32];
        snprintf(name, sizeof name, "Customer %zu", i);
        set_text(&v[i], name);
        stamp(&A, &v[i]);
    }
    fv__push_response pr = push_ok(SV.port, &A, v, n);
    assert_int_equal(pr.accepted, n);
    uint64_t head = pr.server_seq;

    /* the server's cap and default */
    pulled p = {0};
    assert_int_equal(pull_once(SV.port, &B, 0, 5000, &p), FVD_PULL_MAX);
    assert_int_equal(p.more, 1);
    p.n = 0;
    assert_int_equal(pull_once(SV.port, &B, 0, 0, &p), FVD_PULL_MAX);
    p.n = 0;
    /* batches of 7: in order, nothing twice, nothing skipped */
    size_t batches = pull_all(SV.port, &B, 0, 7, &p);
    assert_int_equal(p.cursor, head);
    assert_int_equal(p.n, head); /* seqs are 1..head, one change each */
    assert_int_equal(batches, (head + 6) / 7);
    for (size_t i = 0; i < n; i++) assert_change_equal(&v[i], &p.v[head - n + i]);
    /* the cursor is the last sequence given: resuming mid-way gives the rest */
    pulled q = {0};
    pull_all(SV.port, &B, head - 10, 4, &q);
    assert_int_equal(q.n, 10);
    for (size_t i = 0; i < 10; i++) assert_change_equal(&v[n - 10 + i], &q.v[i]);
    /* at the head: nothing, no more, the cursor stays */
    q.n = 0;
    assert_int_equal(pull_once(SV.port, &B, head, 10, &q), 0);
    assert_int_equal(q.more, 0);
    assert_int_equal(q.cursor, head);
    /* past it too */
    assert_int_equal(pull_once(SV.port, &B, head + 1000, 10, &q), 0);
    assert_int_equal(q.cursor, head + 1000);
    /* a pull naming another device than the signer: 400 */
    fieldvault_v1_PullRequest pq = fieldvault_v1_PullRequest_init_zero;
    memcpy(pq.device_id, A.id, 16);
    fv__membuf m;
    fv__membuf_init(&m, 0);
    char err[ERRCAP];
    assert_int_equal(fv__wire_encode_pull_request(&pq, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    resp r = signed_post(SV.port, &B, "/v1/pull", m.data, m.len);
    expect_error(&r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST, "another device");
    resp_free(&r);
    fv__membuf_free(&m);
    free(q.v);
    free(p.v);
    free(v);
}

/* ---- Crash in the middle of a push ---- */

/* A big batch made on the fly (an array of 50,000 changes would be 220 MB):
 * change i of it, the same every time. */
typedef struct gen {
    const device *d;
    uint64_t hlc0, dseq0;
    size_t n, i;
} gen;

static void gen_change(const gen *g, size_t i, fv__change *c)
{
    unsigned char row[16];
    memset(row, 0x5A, sizeof row);
    memcpy(row, &i, sizeof i);
    change_init(c, g->d, "customer", "needs", row);
    char text[200];
    snprintf(text, sizeof text, "%-198zu!", i);
    set_text(c, text);
    c->hlc = g->hlc0 + i;
    c->device_seq = g->dseq0 + i;
}

static int gen_next(void *ctx, fv__change *out)
{
    gen *g = ctx;
    if (g->i == g->n) return 0;
    gen_change(g, g->i++, out);
    return 1;
}

static int same_change(const fv__change *a, const fv__change *b)
{
    return strcmp(a->table, b->table) == 0 && strcmp(a->field, b->field) == 0 &&
           memcmp(a->row_id, b->row_id, 16) == 0 && memcmp(a->device, b->device, 16) == 0 &&
           a->hlc == b->hlc && a->base_hlc == b->base_hlc && a->device_seq == b->device_seq &&
           a->kind == b->kind && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* A pull sink checking that change k of the pulls is gen change k. */
typedef struct verify {
    const gen *g;
    size_t k;
    int bad;
} verify;

static int verify_sink(void *ctx, const fv__change *c, char *err, size_t errcap)
{
    verify *v = ctx;
    fv__change want;
    gen_change(v->g, v->k, &want);
    if (v->k >= v->g->n || !same_change(c, &want)) {
        snprintf(err, errcap, "pulled change %zu is not the one pushed", v->k);
        v->bad = 1;
        return -1;
    }
    v->k++;
    return 0;
}

/* Pull everything after cursor into v: the final cursor. */
static uint64_t pull_verify(unsigned port, const device *d, uint64_t cursor, verify *v)
{
    for (int more = 1; more;) {
        fieldvault_v1_PullRequest q = fieldvault_v1_PullRequest_init_zero;
        memcpy(q.device_id, d->id, 16);
        q.cursor = cursor;
        fv__membuf m;
        fv__membuf_init(&m, 0);
        char err[ERRCAP];
        assert_int_equal(fv__wire_encode_pull_request(&q, fv__membuf_write, &m, err, sizeof err),
                         FV_OK);
        resp r = signed_post(port, d, "/v1/pull", m.data, m.len);
        fv__membuf_free(&m);
        assert_int_equal(r.status, 200);
        fv__membuf in;
        fv__membuf_init_read(&in, r.body, r.len);
        fv__pull_info info;
        fv_status st = fv__wire_decode_pull_response(fv__membuf_read, &in, verify_sink, v, &info,
                                                     err, sizeof err);
        if (st != FV_OK) fprintf(stderr, "pull: %s\n", err);
        assert_int_equal(st, FV_OK);
        resp_free(&r);
        cursor = info.cursor;
        more = info.more;
    }
    return cursor;
}

typedef struct bg_push {
    unsigned port;
    const device *d;
    const fv__membuf *body;
    resp r;
} bg_push;

static void *bg_push_run(void *arg)
{
    bg_push *b = arg;
    sig_headers h;
    unsigned char nonce[16];
    randombytes_buf(nonce, 16);
    char dev[33], nhex[33], sig[129];
    fvd_hex(b->d->id, 16, dev);
    fvd_hex(nonce, 16, nhex);
    int64_t ts = now_ms();
    if (fv__sign_request(b->d->sk, "POST", "/v1/push", ts, nonce, b->body->data, b->body->len,
                         sig) != FV_OK)
        return NULL;
    snprintf(h.h[0], sizeof h.h[0], "X-FV-Device: %s", dev);
    snprintf(h.h[1], sizeof h.h[1], "X-FV-Timestamp: %lld", (long long)ts);
    snprintf(h.h[2], sizeof h.h[2], "X-FV-Nonce: %s", nhex);
    snprintf(h.h[3], sizeof h.h[3], "X-FV-Signature: %s", sig);
    for (int i = 0; i < 4; i++) h.list[i] = h.h[i];
    h.list[4] = NULL;
    b->r = post(b->port, "/v1/push", b->body->data, b->body->len, h.list);
    return NULL;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void test_crash_mid_push(void **state)
{
    (void)state;
    server sv;
    memset(&sv, 0, sizeof sv);
    sv.dir = tu_mkdtemp("fvd-crash");
    server_start(&sv);
    char *code = add_user(&sv, "erik", "director", "west");
    device d;
    device_new(&d);
    enroll(sv.port, &d, code, "erik", "director", "west");
    free(code);
    /* some history first */
    unsigned char row[16];
    fv__change c;
    randombytes_buf(row, 16);
    change_init(&c, &d, "customer", "name", row);
    set_text(&c, "History");
    stamp(&d, &c);
    uint64_t head0 = push_ok(sv.port, &d, &c, 1).server_seq;

    /* a big batch, close to the body bound */
    gen g = {&d, (uint64_t)now_ms() << 16, d.dseq + 1, 50000, 0};
    fv__push_info ph;
    memset(&ph, 0, sizeof ph);
    memcpy(ph.device_id, d.id, 16);
    ph.batch_seq = d.acked_seq + 1;
    memcpy(ph.prev_batch_hash, d.acked_hash, 32);
    fv__membuf body;
    fv__membuf_init(&body, 0);
    char err[ERRCAP];
    assert_int_equal(fv__wire_encode_push_request(&ph, gen_next, &g, fv__membuf_write, &body,
                                                  NULL, err, sizeof err), FV_OK);
    assert_true(body.len < FVD_PUSH_BODY_MAX && body.len > FVD_PUSH_BODY_MAX / 2);
    char *wal = tu_path(sv.dir, "fvd.db-wal");
    long long wal0 = file_size(wal);

    bg_push b;
    memset(&b, 0, sizeof b);
    b.port = sv.port;
    b.d = &d;
    b.body = &body;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bg_push_run, &b), 0);
    /* the transaction spills pages into the WAL as it applies: kill fvd
     * once it has grown by 1 MiB, long before the commit */
    int64_t deadline = now_ms() + 120000;
    long long wal1 = wal0;
    while ((wal1 = file_size(wal)) < wal0 + (1 << 20) && now_ms() < deadline) sleep_ms(1);
    /* stop and join before any assertion: a failed one must not leave the
     * thread writing into this function's frame */
    int in_time = now_ms() < deadline;
    int stopped = server_stop(&sv, SIGKILL);
    pthread_join(t, NULL);
    assert_true(in_time);
    assert_int_equal(stopped, 128 + SIGKILL);
    assert_true(b.r.status != 200); /* the device never got an answer */
    resp_free(&b.r);

    /* restart on the same data: nothing of the batch is there */
    server_start(&sv);
    assert_int_equal(head_of(sv.port, &d), head0);
    /* the device retries the same batch (new signature): applied once */
    resp r = signed_post(sv.port, &d, "/v1/push", body.data, body.len);
    fv__push_response pr = decode_push(&r);
    resp_free(&r);
    assert_int_equal(pr.duplicate, 0);
    assert_int_equal(pr.accepted, g.n);
    assert_int_equal(pr.server_seq, head0 + g.n);
    ack(&d, d.acked_seq + 1, &body);
    /* and again (its answer lost too): a duplicate, nothing more */
    r = signed_post(sv.port, &d, "/v1/push", body.data, body.len);
    pr = decode_push(&r);
    resp_free(&r);
    assert_int_equal(pr.duplicate, 1);
    assert_int_equal(pr.server_seq, head0 + g.n);
    /* a pull sees each change of the batch exactly once, in order */
    verify v = {&g, 0, 0};
    assert_int_equal(pull_verify(sv.port, &d, head0, &v), head0 + g.n);
    assert_int_equal(v.bad, 0);
    assert_int_equal(v.k, g.n);
    printf("test_fvd: SIGKILL with the WAL at %lld bytes (was %lld), restarted, retried: "
           "%zu changes applied once\n", wal1, wal0, g.n);

    assert_int_equal(server_stop(&sv, SIGTERM), 0);
    fv__membuf_free(&body);
    free(wal);
    tu_rmtree(sv.dir);
    free(sv.dir);
}

static void test_usage(void **state)
{
    (void)state;
    const char *a1[] = {FVD_BIN, NULL};
    const char *a2[] = {FVD_BIN, "serve", "--listen", "127.0.0.1:0", NULL};
    const char *a3[] = {FVD_BIN, "admin", "--data", SV.dir, "add-user", "x", NULL};
    const char *a4[] = {FVD_BIN, "admin", "--data", SV.dir, "add-user", "x", "--role", "king",
                        NULL};
    const char *a5[] = {FVD_BIN, "serve", "--data", SV.dir, "--listen", "nowhere", NULL};
    const char *a6[] = {FVD_BIN, "frobnicate", NULL};
    const char *const *cases[] = {a1, a2, a3, a4, a5, a6};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tu_result r = tu_run(cases[i], NULL, NULL);
        if (r.exit_code != 2) fprintf(stderr, "case %zu: %d %s\n", i, r.exit_code, r.err);
        assert_int_equal(r.exit_code, 2);
        assert_non_null(strstr(r.err, "usage"));
        tu_result_free(&r);
    }
    /* a port in use: a failure, not a usage error */
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", SV.port);
    const char *a7[] = {FVD_BIN, "serve", "--data", SV.dir, "--listen", listen, NULL};
    tu_result r = tu_run(a7, NULL, NULL);
    assert_int_equal(r.exit_code, 1);
    tu_result_free(&r);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
#define PROTOCOL_TESTS                                                                         \
    cmocka_unit_test(test_enroll), cmocka_unit_test(test_push_pull_exact),                      \
        cmocka_unit_test(test_replay_and_duplicate), cmocka_unit_test(test_chain_conflicts),    \
        cmocka_unit_test(test_auth_refusals), cmocka_unit_test(test_revoked),                   \
        cmocka_unit_test(test_hostile_bodies_parallel), cmocka_unit_test(test_clock_ahead),     \
        cmocka_unit_test(test_pull_batches)
    const struct CMUnitTest sqlite_tests[] = {
        PROTOCOL_TESTS,
        cmocka_unit_test(test_crash_mid_push),
        cmocka_unit_test(test_usage),
    };
    int rc = cmocka_run_group_tests_name("fvd on SQLite", sqlite_tests, group_setup,
                                         group_teardown);
#ifdef FVD_TEST_PG
    const struct CMUnitTest pg_tests[] = {PROTOCOL_TESTS};
    rc |= cmocka_run_group_tests_name("fvd on PostgreSQL", pg_tests, group_setup_pg,
                                      group_teardown);
#endif
    curl_global_cleanup();
    return rc;
}
