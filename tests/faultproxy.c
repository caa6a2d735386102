/*
 * faultproxy.c - the fault-injecting proxy (see faultproxy.h).
 *
 * Layout: the random draw; socket helpers that give up when the proxy
 * stops (every wait polls a stop pipe too); reading one HTTP message; one
 * upstream exchange; the per-connection worker and its faults; start and
 * stop.
 *
 * Connection bookkeeping: the acceptor keeps a list of workers.  A worker
 * never closes its client socket itself: it marks itself done and the
 * acceptor (or fp_stop) joins it and closes the socket, so fp_stop can
 * shut sockets down without racing a close and a reused descriptor.
 */
#define _GNU_SOURCE /* accept4, pipe2 */
#include "faultproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX ((size_t)64 << 10)
#define BODY_MAX ((size_t)64 << 20)
#define IO_TIMEOUT_MS 120000

typedef struct conn {
    int fd;
    pthread_t th;
    int done;
    struct fp_proxy *p;
    struct conn *next;
} conn;

struct fp_proxy {
    fp_config cfg;
    struct sockaddr_in up;
    int lfd;
    int port;
    int stop_pipe[2];
    pthread_t acceptor;
    pthread_mutex_t mu;
    uint64_t rng;
    int faults_on;
    int stopping;
    fp_stats st;
    conn *conns;
};

static const char *const NAMES[FP_NFAULTS] = {
    "pass", "delay", "drop-request", "drop-response", "truncate-request", "truncate-response",
    "duplicate", "bad-gateway", "garbage",
};

const char *fp_fault_name(fp_fault f)
{
    return f < FP_NFAULTS ? NAMES[f] : "?";
}

uint64_t fp_faults_injected(const fp_stats *s)
{
    uint64_t n = 0;
    for (int i = 1; i < FP_NFAULTS; i++) n += s->chosen[i];
    return n;
}

/* ---- the random draw (splitmix64; under p->mu) ---- */

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct draw {
    fp_fault f;
    uint64_t r1, r2, r3;
} draw;

static draw choose(fp_proxy *p)
{
    draw d = {FP_PASS, 0, 0, 0};
    pthread_mutex_lock(&p->mu);
    uint64_t nth = p->st.requests++;
    unsigned total = 0;
    for (int i = 0; i < FP_NFAULTS; i++) total += p->cfg.weight[i];
    if (p->faults_on && nth < p->cfg.nscript) {
        d.f = p->cfg.script[nth];
    } else if (p->faults_on && total > 0) {
        uint64_t x = next_rand(&p->rng) % total;
        for (int i = 0; i < FP_NFAULTS; i++) {
            if (x < p->cfg.weight[i]) {
                d.f = (fp_fault)i;
                break;
            }
            x -= p->cfg.weight[i];
        }
    }
    if (d.f != FP_PASS) {
        d.r1 = next_rand(&p->rng);
        d.r2 = next_rand(&p->rng);
        d.r3 = next_rand(&p->rng);
    }
    p->st.chosen[d.f]++;
    pthread_mutex_unlock(&p->mu);
    return d;
}

/* Where to cut a message of n bytes (n > 0): 0..n-1. */
static size_t cut(const fp_proxy *p, const draw *d, size_t n)
{
    if (p->cfg.cut_at > 0) return p->cfg.cut_at < n ? p->cfg.cut_at : n - 1;
    return (size_t)(d->r1 % n);
}

/* ---- sockets that give up when the proxy stops ---- */

/* Wait until fd has the events (or ms passed): 1 ready, 0 timeout, -1
 * stopping or error. */
static int wait_fd(fp_proxy *p, int fd, short events, int ms)
{
    struct pollfd f[2] = {{fd, events, 0}, {p->stop_pipe[0], POLLIN, 0}};
    for (;;) {
        int n = poll(f, 2, ms);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || f[1].revents) return -1;
        return n == 0 ? 0 : 1;
    }
}

static int sleep_ms(fp_proxy *p, int ms)
{
    struct pollfd f = {p->stop_pipe[0], POLLIN, 0};
    for (;;) {
        int n = poll(&f, 1, ms);
        if (n < 0 && errno == EINTR) continue;
        return n == 0 ? 0 : -1;
    }
}

static int send_all(fp_proxy *p, int fd, const unsigned char *b, size_t n)
{
    while (n > 0) {
        if (wait_fd(p, fd, POLLOUT, IO_TIMEOUT_MS) <= 0) return -1;
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Close with a reset (SO_LINGER 0) rather than an orderly FIN. */
static void reset_close(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

/* ---- one HTTP message ---- */

typedef struct msg {
    unsigned char *b;
    size_t len, cap;
    size_t head; /* bytes of the head, CRLFCRLF included */
    int has_length;
    size_t body;
    int expect_continue;
    int conn_close;
} msg;

static void msg_free(msg *m)
{
    free(m->b);
    memset(m, 0, sizeof *m);
}

static int grow(msg *m, size_t need)
{
    if (need <= m->cap) return 0;
    size_t c = m->cap ? m->cap : 16384;
    while (c < need) c *= 2;
    unsigned char *b = realloc(m->b, c);
    if (b == NULL) return -1;
    m->b = b;
    m->cap = c;
    return 0;
}

/* Value of header name in the head (case-insensitive), copied into out. */
static int header_value(const msg *m, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *h = (const char *)m->b;
    size_t i = 0;
    while (i < m->head && h[i] != '\n') i++; /* skip the start line */
    for (i++; i + nl + 1 < m->head;) {
        size_t e = i;
        while (e < m->head && h[e] != '\n') e++;
        if (e - i > nl && strncasecmp(h + i, name, nl) == 0 && h[i + nl] == ':') {
            size_t v = i + nl + 1;
            while (v < e && (h[v] == ' ' || h[v] == '\t')) v++;
            size_t ve = e;
            while (ve > v && (h[ve - 1] == '\r' || h[ve - 1] == ' ')) ve--;
            size_t n = ve - v < cap - 1 ? ve - v : cap - 1;
            memcpy(out, h + v, n);
            out[n] = '\0';
            return 1;
        }
        i = e + 1;
    }
    return 0;
}

/* Read a message's head and (Content-Length) body from fd.  A response
 * without a Content-Length runs to the end of the stream.  0, or -1 (the
 * peer closed first, or malformed, or stopping); *got_any says whether any
 * byte came.  For a request with "Expect: 100-continue", on_continue is
 * called once the head is in. */
static int read_msg(fp_proxy *p, int fd, msg *m, int is_response, int *got_any,
                    int (*on_continue)(fp_proxy *p, int fd), int timeout_ms)
{
    memset(m, 0, sizeof *m);
    *got_any = 0;
    char *end = NULL;
    while (end == NULL) {
        if (m->len >= HEAD_MAX || grow(m, m->len + 4096 + 1) != 0) return -1;
        if (wait_fd(p, fd, POLLIN, timeout_ms) <= 0) return -1;
        ssize_t k = recv(fd, m->b + m->len, m->cap - m->len - 1, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        *got_any = 1;
        m->len += (size_t)k;
        m->b[m->len] = '\0';
        end = strstr((char *)m->b, "\r\n\r\n");
    }
    m->head = (size_t)(end - (char *)m->b) + 4;
    char v[64];
    if (header_value(m, "Content-Length", v, sizeof v)) {
        char *e;
        unsigned long long n = strtoull(v, &e, 10);
        if (*e != '\0' || n > BODY_MAX) return -1;
        m->has_length = 1;
        m->body = (size_t)n;
    }
    if (header_value(m, "Transfer-Encoding", v, sizeof v)) return -1; /* not spoken here */
    if (header_value(m, "Connection", v, sizeof v) && strcasecmp(v, "close") == 0)
        m->conn_close = 1;
    if (!is_response && header_value(m, "Expect", v, sizeof v) &&
        strcasecmp(v, "100-continue") == 0) {
        m->expect_continue = 1;
        if (on_continue != NULL && m->len == m->head && on_continue(p, fd) != 0) return -1;
    }
    if (is_response && !m->has_length) {
        /* 1xx/204/304 have no body; others run to the close */
        int code = 0;
        if (sscanf((char *)m->b, "HTTP/%*d.%*d %d", &code) == 1 &&
            (code / 100 == 1 || code == 204 || code == 304))
            return 0;
        for (;;) {
            if (grow(m, m->len + 65536) != 0) return -1;
            int w = wait_fd(p, fd, POLLIN, timeout_ms);
            if (w <= 0) return -1;
            ssize_t k = recv(fd, m->b + m->len, m->cap - m->len, 0);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) return -1;
            if (k == 0) break;
            m->len += (size_t)k;
            if (m->len - m->head > BODY_MAX) return -1;
        }
        m->body = m->len - m->head;
        return 0;
    }
    size_t want = m->head + m->body;
    if (grow(m, want + 1) != 0) return -1;
    while (m->len < want) {
        if (wait_fd(p, fd, POLLIN, timeout_ms) <= 0) return -1;
        ssize_t k = recv(fd, m->b + m->len, want - m->len, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        m->len += (size_t)k;
    }
    return m->len == want ? 0 : -1;
}

static int send_continue(fp_proxy *p, int fd)
{
    static const char c[] = "HTTP/1.1 100 Continue\r\n\r\n";
    return send_all(p, fd, (const unsigned char *)c, sizeof c - 1);
}

/* The request as it goes upstream: the Expect header removed (the proxy
 * answered it). */
static unsigned char *upstream_bytes(const msg *req, size_t *n)
{
    unsigned char *out = malloc(req->len + 1);
    if (out == NULL) return NULL;
    size_t o = 0;
    const char *h = (const char *)req->b;
    for (size_t i = 0; i < req->head;) {
        size_t e = i;
        while (e < req->head && h[e] != '\n') e++;
        size_t line = e - i + 1;
        if (!(req->expect_continue && strncasecmp(h + i, "Expect:", 7) == 0)) {
            memcpy(out + o, h + i, line);
            o += line;
        }
        i = e + 1;
    }
    memcpy(out + o, req->b + req->head, req->len - req->head);
    o += req->len - req->head;
    *n = o;
    return out;
}

/* ---- upstream ---- */

static int connect_up(fp_proxy *p)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&p->up, sizeof p->up) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void upstream_failed(fp_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    p->st.upstream_failures++;
    pthread_mutex_unlock(&p->mu);
}

/* Send the request on a new upstream connection and read the answer: 0
 * with *resp, or -1. */
static int exchange(fp_proxy *p, const unsigned char *req, size_t n, msg *resp)
{
    int fd = connect_up(p);
    int any = 0;
    int rc = fd >= 0 && send_all(p, fd, req, n) == 0 &&
                     read_msg(p, fd, resp, 1, &any, NULL, IO_TIMEOUT_MS) == 0
                 ? 0
                 : -1;
    if (fd >= 0) close(fd);
    if (rc != 0) {
        msg_free(resp);
        upstream_failed(p);
    }
    return rc;
}

/* ---- the faults ---- */

static const char PORTAL[] =
    "<html><head><title>Sign in to the network</title></head><body>"
    "<h1>Welcome!</h1><p>Accept the terms to continue browsing.</p></body></html>\n";

static int send_canned(fp_proxy *p, int fd, int status, const char *reason)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/html\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, sizeof PORTAL - 1);
    if (send_all(p, fd, (const unsigned char *)head, (size_t)n) != 0) return -1;
    return send_all(p, fd, (const unsigned char *)PORTAL, sizeof PORTAL - 1);
}

/* Both copies at once: send on two connections, then read both. */
static int duplicate(fp_proxy *p, const unsigned char *req, size_t n, int pick, msg *resp)
{
    int fd[2] = {connect_up(p), connect_up(p)};
    msg r[2];
    memset(r, 0, sizeof r);
    int ok[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        if (fd[i] >= 0 && send_all(p, fd[i], req, n) != 0) {
            close(fd[i]);
            fd[i] = -1;
        }
    for (int i = 0; i < 2; i++) {
        int any;
        if (fd[i] >= 0) {
            ok[i] = read_msg(p, fd[i], &r[i], 1, &any, NULL, IO_TIMEOUT_MS) == 0;
            close(fd[i]);
        }
    }
    int use = ok[pick] ? pick : ok[1 - pick] ? 1 - pick : -1;
    for (int i = 0; i < 2; i++)
        if (i != use) msg_free(&r[i]);
    if (use < 0) {
        upstream_failed(p);
        return -1;
    }
    *resp = r[use];
    return 0;
}

/* Handle one request already read from the client.  1 to keep the client
 * connection, 0 to end it (closed orderly by the caller), -1 when it was
 * reset here. */
/* FV_PROXY_TRACE: one line per request on stderr. */
static void trace(const draw *d, const msg *req, const msg *resp, const char *what)
{
    static int on = -1;
    if (on < 0) on = getenv("FV_PROXY_TRACE") != NULL;
    if (!on) return;
    int rl = 0, sl = 0;
    while (rl < 60 && (size_t)rl < req->len && req->b[rl] != '\r') rl++;
    while (resp != NULL && sl < 40 && (size_t)sl < resp->len && resp->b[sl] != '\r') sl++;
    fprintf(stderr, "proxy: %-17s %.*s -> %.*s %s (%zu bytes)\n", fp_fault_name(d->f), rl,
            (const char *)req->b, sl, resp != NULL ? (const char *)resp->b : "", what,
            resp != NULL ? resp->len : 0);
}

static int handle(fp_proxy *p, int cfd, const msg *req)
{
    draw d = choose(p);
    size_t n;
    unsigned char *up = upstream_bytes(req, &n);
    if (up == NULL) return 0;
    msg resp;
    memset(&resp, 0, sizeof resp);
    int keep = 0;
    switch (d.f) {
    case FP_PASS:
    case FP_DELAY: {
        int delay_max = p->cfg.delay_max_ms > 0 ? p->cfg.delay_max_ms : 300;
        int before = 0, after = 0;
        if (d.f == FP_DELAY) {
            before = (int)(d.r1 % (uint64_t)(delay_max + 1));
            after = (int)(d.r2 % (uint64_t)(delay_max + 1));
            if (p->cfg.slow_ms > 0 && d.r3 % 8 == 0) after = p->cfg.slow_ms;
        }
        if (before > 0 && sleep_ms(p, before) != 0) break;
        if (exchange(p, up, n, &resp) != 0) break;
        if (after > 0 && sleep_ms(p, after) != 0) break;
        keep = send_all(p, cfd, resp.b, resp.len) == 0 && !resp.conn_close && !req->conn_close;
        break;
    }
    case FP_DROP_REQUEST: {
        int fd = connect_up(p);
        if (fd >= 0) {
            (void)send_all(p, fd, up, cut(p, &d, n));
            reset_close(fd);
        }
        keep = -1;
        break;
    }
    case FP_DROP_RESPONSE:
    case FP_TRUNCATE_RESPONSE:
        if (exchange(p, up, n, &resp) != 0) break;
        (void)send_all(p, cfd, resp.b, cut(p, &d, resp.len));
        keep = d.f == FP_DROP_RESPONSE ? -1 : 0;
        break;
    case FP_TRUNCATE_REQUEST: {
        int fd = connect_up(p);
        if (fd < 0) {
            upstream_failed(p);
            break;
        }
        if (send_all(p, fd, up, cut(p, &d, n)) == 0) {
            shutdown(fd, SHUT_WR);
            int any;
            if (read_msg(p, fd, &resp, 1, &any, NULL, 5000) == 0)
                (void)send_all(p, cfd, resp.b, resp.len);
        }
        close(fd);
        break;
    }
    case FP_DUPLICATE:
        if (duplicate(p, up, n, (int)(d.r1 & 1), &resp) != 0) break;
        keep = send_all(p, cfd, resp.b, resp.len) == 0 && !resp.conn_close && !req->conn_close;
        break;
    case FP_BAD_GATEWAY:
        (void)send_canned(p, cfd, 502, "Bad Gateway");
        break;
    case FP_GARBAGE:
        if (d.r1 & 1) { /* fvd handled it; the answer is lost in the portal */
            if (exchange(p, up, n, &resp) != 0) break;
        }
        (void)send_canned(p, cfd, 200, "OK");
        break;
    case FP_NFAULTS:
        break;
    }
    trace(&d, req, &resp, keep > 0 ? "" : keep < 0 ? "[reset]" : "[closed]");
    msg_free(&resp);
    free(up);
    return keep;
}

static void *worker(void *arg)
{
    conn *c = arg;
    fp_proxy *p = c->p;
    int reset = 0;
    for (;;) {
        msg req;
        int any;
        if (read_msg(p, c->fd, &req, 0, &any, send_continue, IO_TIMEOUT_MS) != 0) {
            msg_free(&req);
            break;
        }
        int keep = handle(p, c->fd, &req);
        msg_free(&req);
        if (keep <= 0) {
            reset = keep < 0;
            break;
        }
    }
    /* closed under the lock, so fp_stop never shuts down a reused fd */
    pthread_mutex_lock(&p->mu);
    if (reset) reset_close(c->fd);
    else close(c->fd);
    c->fd = -1;
    c->done = 1;
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Join and free finished workers (all of them when all != 0). */
static void reap(fp_proxy *p, int all)
{
    for (;;) {
        conn *victim = NULL;
        pthread_mutex_lock(&p->mu);
        for (conn **pp = &p->conns; *pp != NULL; pp = &(*pp)->next)
            if ((*pp)->done || all) {
                victim = *pp;
                *pp = victim->next;
                break;
            }
        pthread_mutex_unlock(&p->mu);
        if (victim == NULL) return;
        pthread_join(victim->th, NULL);
        free(victim);
    }
}

static void *acceptor(void *arg)
{
    fp_proxy *p = arg;
    for (;;) {
        int w = wait_fd(p, p->lfd, POLLIN, 1000);
        if (w < 0) break;
        reap(p, 0);
        if (w == 0) continue;
        int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->p = p;
        pthread_mutex_lock(&p->mu);
        if (pthread_create(&c->th, NULL, worker, c) != 0) {
            pthread_mutex_unlock(&p->mu);
            close(fd);
            free(c);
            continue;
        }
        p->st.connections++;
        c->next = p->conns;
        p->conns = c;
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

/* ---- start and stop ---- */

int fp_start(const fp_config *cfg, const char *upstream_host, int upstream_port, fp_proxy **out)
{
    *out = NULL;
    fp_proxy *p = calloc(1, sizeof *p);
    if (p == NULL) return -1;
    p->cfg = *cfg;
    p->rng = cfg->seed;
    p->faults_on = 1;
    p->up.sin_family = AF_INET;
    p->up.sin_port = htons((uint16_t)upstream_port);
    if (inet_pton(AF_INET, upstream_host, &p->up.sin_addr) != 1) {
        fprintf(stderr, "faultproxy: bad upstream address %s\n", upstream_host);
        free(p);
        return -1;
    }
    if (pipe2(p->stop_pipe, O_CLOEXEC) != 0) {
        free(p);
        return -1;
    }
    pthread_mutex_init(&p->mu, NULL);
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(p->lfd, 128) != 0 || getsockname(p->lfd, (struct sockaddr *)&a, &al) != 0 ||
        pthread_create(&p->acceptor, NULL, acceptor, p) != 0) {
        fprintf(stderr, "faultproxy: cannot listen: %s\n", strerror(errno));
        if (p->lfd >= 0) close(p->lfd);
        close(p->stop_pipe[0]);
        close(p->stop_pipe[1]);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return -1;
    }
    p->port = ntohs(a.sin_port);
    *out = p;
    return 0;
}

int fp_port(const fp_proxy *p)
{
    return p->port;
}

void fp_set_faults(fp_proxy *p, int on)
{
    pthread_mutex_lock(&p->mu);
    p->faults_on = on;
    pthread_mutex_unlock(&p->mu);
}

void fp_get_stats(fp_proxy *p, fp_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    pthread_mutex_unlock(&p->mu);
}

void fp_stop(fp_proxy *p)
{
    if (p == NULL) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_mutex_unlock(&p->mu);
    /* the pipe stays readable: every wait in every thread gives up */
    if (write(p->stop_pipe[1], "x", 1) != 1) abort();
    pthread_join(p->acceptor, NULL);
    /* wake every worker blocked on its client */
    pthread_mutex_lock(&p->mu);
    for (conn *c = p->conns; c != NULL; c = c->next)
        if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&p->mu);
    reap(p, 1);
    close(p->lfd);
    close(p->stop_pipe[0]);
    close(p->stop_pipe[1]);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
