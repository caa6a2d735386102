/*
 * http.c - fvd's HTTP front on libmicrohttpd (see http.h).
 *
 * Layout: routes; the store handle pool; the body budget; replies; the
 * access handler; start and stop.
 *
 * A request's life.  libmicrohttpd calls the access handler once when the
 * headers are in, once per chunk of body, and once more when the body is
 * complete.  On the first call everything that needs no body is decided,
 * and a refusal is sent at once - libmicrohttpd then discards the rest of
 * the upload (without sending "100 Continue") and closes the connection:
 * unknown path (404), not POST (405), a Content-Length over the path's
 * bound (413), missing or malformed signature headers or a timestamp out
 * of the window (401), the server-wide body budget exhausted (503).  The
 * body is then accumulated, never past the path's bound: a body without a
 * Content-Length that grows past it is dropped as it arrives and refused
 * with 413 when it ends (libmicrohttpd 0.9.75 cannot answer in the middle
 * of an upload), and the connection is cut if the client keeps sending
 * more than another bound's worth.  On the last call the request is
 * handled with a store handle from the pool and answered.
 *
 * Every answer carries X-FV-Server-Time (ms since the epoch, taken when the
 * answer is made) and Cache-Control: no-store; a refusal's body is a
 * protobuf Error.
 *
 * Relies on: libmicrohttpd >= 0.9.71 (enum MHD_Result,
 * MHD_create_response_from_buffer_with_free_callback, MHD_DAEMON_INFO_BIND_PORT),
 * POSIX threads and sockets.
 */
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <sodium.h>

#include "auth.h"
#include "platform.h"

/* A client that keeps sending after its body went over the bound is cut
 * off after this many more bytes. */
#define DISCARD_MAX ((uint64_t)FVD_PUSH_BODY_MAX)
#define CONNECTION_MEMORY ((size_t)64 << 10)

/* ---- Routes ---- */

typedef enum endpoint { EP_ENROLL, EP_PUSH, EP_PULL, EP_KEYS } endpoint;

typedef struct route {
    const char *path;
    size_t max;  /* body bound */
    int signed_; /* needs the X-FV-* signature headers */
    endpoint ep;
} route;

static const route ROUTES[] = {
    {"/v1/enroll", FVD_SMALL_BODY_MAX, 0, EP_ENROLL},
    {"/v1/push", FVD_PUSH_BODY_MAX, 1, EP_PUSH},
    {"/v1/pull", FVD_SMALL_BODY_MAX, 1, EP_PULL},
    {"/v1/keys", FVD_SMALL_BODY_MAX, 1, EP_KEYS},
};

static const route *find_route(const char *url)
{
    for (size_t i = 0; i < sizeof ROUTES / sizeof *ROUTES; i++)
        if (strcmp(url, ROUTES[i].path) == 0) return &ROUTES[i];
    return NULL;
}

struct fvd_http {
    struct MHD_Daemon *d;
    uint16_t port;
    fvd_store_open_fn open;
    void *open_ctx;
    /* the pool */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fvd_store **idle;
    size_t nidle, nopen, max;
    /* bytes of bodies held, all requests together */
    atomic_size_t held;
};

/* ---- The store handle pool ---- */

/* A handle for this request: an idle one, a new one if fewer than max are
 * open, else wait for one.  NULL (with *st, err) if opening failed. */
static fvd_store *pool_get(fvd_http *h, fv_status *st, char *err, size_t errcap)
{
    pthread_mutex_lock(&h->mu);
    for (;;) {
        if (h->nidle > 0) {
            fvd_store *s = h->idle[--h->nidle];
            pthread_mutex_unlock(&h->mu);
            return s;
        }
        if (h->nopen < h->max) break;
        pthread_cond_wait(&h->cv, &h->mu);
    }
    h->nopen++;
    pthread_mutex_unlock(&h->mu);
    fvd_store *s = NULL;
    *st = h->open(h->open_ctx, &s, err, errcap);
    if (*st == FV_OK && s != NULL) return s;
    if (*st == FV_OK) *st = FV_EINTERNAL;
    pthread_mutex_lock(&h->mu);
    h->nopen--;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Give the handle back; discard it (close, so a new one is opened when
 * needed) after a server-side failure, which may have been the handle's. */
static void pool_put(fvd_http *h, fvd_store *s, int discard)
{
    pthread_mutex_lock(&h->mu);
    if (discard) h->nopen--;
    else h->idle[h->nidle++] = s;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (discard) s->ops->close(s);
}

/* ---- The body budget ---- */

static int budget_take(fvd_http *h, size_t n)
{
    size_t cur = atomic_load(&h->held);
    do {
        if (n > FVD_HTTP_BODY_BUDGET - cur) return -1;
    } while (!atomic_compare_exchange_weak(&h->held, &cur, cur + n));
    return 0;
}

static void budget_give(fvd_http *h, size_t n)
{
    if (n > 0) atomic_fetch_sub(&h->held, n);
}

/* ---- Requests ---- */

typedef struct request {
    fvd_http *h;
    const route *route;
    unsigned char *buf;
    size_t len, cap;    /* cap bytes of the budget are held */
    int too_large;      /* the body went over the bound: dropping it */
    int busy;           /* no budget for it: dropping it */
    uint64_t dropped;
    fvd_auth auth;
} request;

static void request_free(request *q)
{
    if (q == NULL) return;
    budget_give(q->h, q->cap);
    free(q->buf);
    free(q);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    request_free(*con_cls);
    *con_cls = NULL;
}

/* Room for n more bytes, within the route's bound and the budget: 0, or
 * -1 (q->too_large or q->busy set, the buffer released).  exact: allocate
 * no more than asked (the Content-Length is known). */
static int reserve(request *q, size_t n, int exact)
{
    if (n > q->route->max - q->len) {
        q->too_large = 1;
    } else if (n <= q->cap - q->len) {
        return 0;
    } else {
        size_t want = exact ? q->len + n : q->cap > 0 ? q->cap : 16384;
        while (want < q->len + n) want = want > q->route->max / 2 ? q->route->max : want * 2;
        if (budget_take(q->h, want - q->cap) == 0) {
            unsigned char *p = realloc(q->buf, want);
            if (p != NULL) {
                q->buf = p;
                q->cap = want;
                return 0;
            }
            budget_give(q->h, want - q->cap);
        }
        q->busy = 1;
    }
    budget_give(q->h, q->cap);
    free(q->buf);
    q->buf = NULL;
    q->len = q->cap = 0;
    return -1;
}

/* ---- Replies ---- */

static enum MHD_Result send_reply(struct MHD_Connection *c, fvd_reply *r, int allow_post)
{
    unsigned char *data = NULL;
    size_t len = 0;
    unsigned status = r->status;
    if (status == 200) {
        /* take the encoded message from the membuf */
        data = r->body.data;
        len = r->body.len;
        r->body.data = NULL;
        r->body.len = r->body.cap = 0;
    } else {
        fieldvault_v1_Error e = fieldvault_v1_Error_init_zero;
        e.code = r->code;
        snprintf(e.message, sizeof e.message, "%s", r->message);
        fv__membuf m;
        fv__membuf_init(&m, FV_WIRE_MESSAGE_MAX_BYTES);
        char err[128];
        if (fv__wire_encode_error(&e, fv__membuf_write, &m, err, sizeof err) == FV_OK) {
            data = m.data;
            len = m.len;
            m.data = NULL;
        }
        fv__membuf_free(&m);
        if (status < 400 || status > 599) status = 500;
    }
    struct MHD_Response *resp =
        data != NULL ? MHD_create_response_from_buffer_with_free_callback(len, data, free)
                     : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(data);
        return MHD_NO;
    }
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)fv_platform_now_ms());
    enum MHD_Result ok = MHD_YES;
    if (MHD_add_response_header(resp, "X-FV-Server-Time", now) != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/x-protobuf") != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
        (allow_post && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST") != MHD_YES))
        ok = MHD_NO;
    if (ok == MHD_YES) ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ok;
}

FVD_PRINTF(4, 5)
static enum MHD_Result refuse_now(struct MHD_Connection *c, unsigned status,
                                  fieldvault_v1_ErrorCode code, const char *fmt, ...)
{
    fvd_reply r;
    fvd_reply_init(&r);
    r.status = status;
    r.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.message, sizeof r.message, fmt, ap);
    va_end(ap);
    enum MHD_Result ok = send_reply(c, &r, status == 405);
    fvd_reply_free(&r);
    return ok;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Content-Length as a number: 1 and *n, 0 if absent, -1 if malformed. */
static int content_length(struct MHD_Connection *c, uint64_t *n)
{
    const char *v = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (v == NULL) return 0;
    uint64_t x = 0;
    if (*v == '\0') return -1;
    for (; *v != '\0'; v++) {
        if (*v < '0' || *v > '9' || x > (UINT64_MAX - 9) / 10) return -1;
        x = x * 10 + (uint64_t)(*v - '0');
    }
    *n = x;
    return 1;
}

/* ---- The access handler ---- */

/* First call: the headers are in. */
static enum MHD_Result begin(fvd_http *h, struct MHD_Connection *c, const char *url,
                             const char *method, void **con_cls)
{
    const route *rt = find_route(url);
    if (rt == NULL)
        return refuse_now(c, 404, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST,
                          "no endpoint here: fvd serves POST /v1/enroll, /v1/push, "
                          "/v1/pull and /v1/keys");
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return refuse_now(c, 405, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST,
                          "%s takes POST only", rt->path);
    uint64_t cl = 0;
    int has_cl = content_length(c, &cl);
    if (has_cl < 0)
        return refuse_now(c, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST,
                          "malformed Content-Length");
    if (has_cl > 0 && cl > rt->max)
        return refuse_now(c, 413, fieldvault_v1_ErrorCode_ERROR_CODE_TOO_LARGE,
                          "the body is %llu bytes; %s takes at most %zu",
                          (unsigned long long)cl, rt->path, rt->max);
    request *q = calloc(1, sizeof *q);
    if (q == NULL)
        return refuse_now(c, 503, fieldvault_v1_ErrorCode_ERROR_CODE_UNAVAILABLE,
                          "out of memory: retry later");
    q->h = h;
    q->route = rt;
    if (rt->signed_) {
        fvd_auth_headers ah = {header(c, "X-FV-Device"), header(c, "X-FV-Timestamp"),
                               header(c, "X-FV-Nonce"), header(c, "X-FV-Signature")};
        fvd_reply r;
        fvd_reply_init(&r);
        if (fvd_auth_precheck(&ah, fv_platform_now_ms(), &q->auth, &r) != 0) {
            free(q);
            enum MHD_Result ok = send_reply(c, &r, 0);
            fvd_reply_free(&r);
            return ok;
        }
        fvd_reply_free(&r);
    }
    if (has_cl > 0 && cl > 0 && reserve(q, (size_t)cl, 1) != 0) {
        free(q);
        return refuse_now(c, 503, fieldvault_v1_ErrorCode_ERROR_CODE_UNAVAILABLE,
                          "the server is busy with other uploads: retry later");
    }
    *con_cls = q;
    return MHD_YES;
}

/* Last call: the body is complete. */
static void handle(request *q, fvd_reply *r)
{
    fvd_http *h = q->h;
    char err[256] = "";
    fv_status st = FV_OK;
    fvd_store *s = pool_get(h, &st, err, sizeof err);
    if (s == NULL) {
        fvd_log("cannot open a store handle: %s", err);
        fvd_refuse(r, 503, fieldvault_v1_ErrorCode_ERROR_CODE_UNAVAILABLE,
                   "the store of record is unavailable: retry later");
        return;
    }
    int64_t now = fv_platform_now_ms();
    if (!q->route->signed_) {
        fvd_enroll(s, q->buf, q->len, now, r);
    } else {
        fvd_device dev;
        if (fvd_auth_verify(s, &q->auth, "POST", q->route->path, q->buf, q->len, now, &dev,
                            r) == 0) {
            if (q->route->ep == EP_PUSH) {
                unsigned char hash[32];
                static const unsigned char none[1];
                crypto_generichash(hash, sizeof hash, q->buf != NULL ? q->buf : none, q->len,
                                   NULL, 0);
                fvd_push(s, &dev, q->buf, q->len, hash, now, r);
            } else if (q->route->ep == EP_KEYS) {
                fvd_keys(s, &dev, q->buf, q->len, r);
            } else {
                fvd_pull(s, &dev, q->buf, q->len, r);
            }
        }
    }
    pool_put(h, s, r->status >= 500);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    fvd_http *h = cls;
    request *q = *con_cls;
    if (q == NULL) return begin(h, c, url, method, con_cls);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!q->too_large && !q->busy && reserve(q, n, 0) == 0) {
            memcpy(q->buf + q->len, upload_data, n);
            q->len += n;
            return MHD_YES;
        }
        q->dropped += n;
        return q->dropped > DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (q->too_large)
        return refuse_now(c, 413, fieldvault_v1_ErrorCode_ERROR_CODE_TOO_LARGE,
                          "the body is over the %zu bytes %s takes", q->route->max,
                          q->route->path);
    if (q->busy)
        return refuse_now(c, 503, fieldvault_v1_ErrorCode_ERROR_CODE_UNAVAILABLE,
                          "the server is busy with other uploads: retry later");
    fvd_reply r;
    fvd_reply_init(&r);
    handle(q, &r);
    if (r.status == 0)
        fvd_refuse(&r, 500, fieldvault_v1_ErrorCode_ERROR_CODE_INTERNAL, "no answer");
    /* the body is no longer needed: give its memory back before sending */
    budget_give(h, q->cap);
    free(q->buf);
    q->buf = NULL;
    q->len = q->cap = 0;
    enum MHD_Result ok = send_reply(c, &r, 0);
    fvd_reply_free(&r);
    return ok;
}

/* ---- Start and stop ---- */

static int parse_listen(const char *s, struct sockaddr_storage *ss, int *v6)
{
    memset(ss, 0, sizeof *ss);
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon[1] == '\0') return -1;
    unsigned long port = 0;
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') return -1;
        port = port * 10 + (unsigned long)(*p - '0');
        if (port > 65535) return -1;
    }
    char host[64];
    size_t n = (size_t)(colon - s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        if (n - 2 >= sizeof host) return -1;
        memcpy(host, s + 1, n - 2);
        host[n - 2] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -1;
        *v6 = 1;
        return 0;
    }
    if (n == 0 || n >= sizeof host) return -1;
    memcpy(host, s, n);
    host[n] = '\0';
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return -1;
    *v6 = 0;
    return 0;
}

fv_status fvd_http_start(const fvd_http_config *cfg, fvd_http **out, char *err, size_t errcap)
{
    if (out == NULL || cfg == NULL || cfg->listen == NULL || cfg->open_store == NULL) {
        snprintf(err, errcap, "fvd_http_start: missing argument");
        return FV_EMISUSE;
    }
    *out = NULL;
    struct sockaddr_storage ss;
    int v6 = 0;
    if (parse_listen(cfg->listen, &ss, &v6) != 0) {
        snprintf(err, errcap, "bad listen address '%s' (expected HOST:PORT, an IPv4 address "
                 "or [IPv6])", cfg->listen);
        return FV_EINVAL;
    }
    fvd_http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(err, errcap, "out of memory");
        return FV_ENOMEM;
    }
    h->open = cfg->open_store;
    h->open_ctx = cfg->open_ctx;
    h->max = cfg->store_handles > 0 ? cfg->store_handles : FVD_HTTP_STORE_HANDLES;
    atomic_init(&h->held, 0);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->idle = calloc(h->max, sizeof *h->idle);
    fvd_store *first = NULL;
    fv_status st = h->idle == NULL ? FV_ENOMEM : h->open(h->open_ctx, &first, err, errcap);
    if (st != FV_OK) {
        if (h->idle == NULL) snprintf(err, errcap, "out of memory");
        fvd_http_stop(h);
        return st;
    }
    h->idle[h->nidle++] = first;
    h->nopen = 1;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    unsigned conns = cfg->max_connections > 0 ? cfg->max_connections : FVD_HTTP_MAX_CONNECTIONS;
    unsigned timeout = cfg->idle_timeout_s > 0 ? cfg->idle_timeout_s : FVD_HTTP_IDLE_TIMEOUT_S;
    uint16_t port = v6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    h->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, conns,
                            MHD_OPTION_CONNECTION_TIMEOUT, timeout,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, h,
                            MHD_OPTION_END);
    if (h->d == NULL) {
        snprintf(err, errcap, "cannot listen on %s (in use, or not an address of this host?)",
                 cfg->listen);
        fvd_http_stop(h);
        return FV_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info != NULL && info->port != 0 ? info->port : port;
    *out = h;
    return FV_OK;
}

uint16_t fvd_http_port(const fvd_http *h)
{
    return h != NULL ? h->port : 0;
}

void fvd_http_stop(fvd_http *h)
{
    if (h == NULL) return;
    if (h->d != NULL) MHD_stop_daemon(h->d); /* waits for the connection threads */
    for (size_t i = 0; i < h->nidle; i++) h->idle[i]->ops->close(h->idle[i]);
    free(h->idle);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
