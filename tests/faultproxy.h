/*
 * faultproxy.h - a small fault-injecting HTTP/1.1 proxy for tests: listens
 * on 127.0.0.1, forwards each request a device sends to fvd, and for each
 * request chooses, by a seeded random draw, to pass it through or to break
 * it in one of the ways a mobile network, a middlebox or a broken proxy
 * does.  The sequence of choices is a function of the seed and of the order
 * requests arrive in, so a single client's run replays from its seed.
 *
 * The proxy understands just enough HTTP to find request and response
 * boundaries (Content-Length bodies, as libcurl and libmicrohttpd send
 * them; "Expect: 100-continue" is answered by the proxy itself), so that a
 * fault hits one request and keep-alive connections carry many.  Every
 * request goes upstream on a fresh connection.
 *
 * Threads: one acceptor thread and one thread per client connection; the
 * functions below may be called from any thread.  fp_stop joins them all.
 */
#ifndef FV_FAULTPROXY_H
#define FV_FAULTPROXY_H

#include <stdint.h>

typedef enum fp_fault {
    FP_PASS = 0,          /* forwarded both ways untouched */
    FP_DELAY,             /* request and answer each held back a random while
                             (sometimes past the client's timeout) */
    FP_DROP_REQUEST,      /* part of the request reaches fvd, then both
                             connections are reset: no answer */
    FP_DROP_RESPONSE,     /* fvd handles the request; the client gets a part
                             of the answer (maybe none), then a reset */
    FP_TRUNCATE_REQUEST,  /* fvd gets a prefix of the request and end of
                             stream; the client gets whatever fvd says */
    FP_TRUNCATE_RESPONSE, /* the client gets a prefix of the answer, then an
                             orderly close */
    FP_DUPLICATE,         /* the request is sent upstream twice, on two
                             connections at once; the client gets one of the
                             two answers */
    FP_BAD_GATEWAY,       /* a 502 HTML page from the proxy, fvd never sees
                             the request */
    FP_GARBAGE,           /* a 200 whose body is an HTML page (a captive
                             portal); half the time after fvd handled the
                             request */
    FP_NFAULTS
} fp_fault;

typedef struct fp_config {
    uint64_t seed;
    /* Relative weight of each choice; all zero means pass everything. */
    unsigned weight[FP_NFAULTS];
    int delay_max_ms; /* FP_DELAY: uniform 0..delay_max_ms (0: 300) */
    int slow_ms;      /* FP_DELAY: one delay in eight is this long instead
                         (0: none); set it past the client's timeout */
    /* Deterministic tests: the first nscript requests get script[i] (no
     * random draw; the caller's array, which must outlive the proxy), the
     * later ones the weighted draw.  cut_at > 0 puts
     * every cut (truncation, drop) at that byte (at most the message's
     * length - 1) instead of a random one. */
    const fp_fault *script;
    unsigned nscript;
    unsigned cut_at;
} fp_config;

typedef struct fp_stats {
    uint64_t connections;        /* client connections accepted */
    uint64_t requests;           /* requests read from clients */
    uint64_t chosen[FP_NFAULTS]; /* how often each choice was made */
    uint64_t upstream_failures;  /* fvd could not be reached or answered
                                    nothing (e.g. while it was down) */
} fp_stats;

typedef struct fp_proxy fp_proxy;

/* Start a proxy to upstream_host:upstream_port (a numeric IPv4 address) on
 * a free port of 127.0.0.1.  0 and *out, or -1 with a message on stderr. */
int fp_start(const fp_config *cfg, const char *upstream_host, int upstream_port, fp_proxy **out);

/* The port it listens on. */
int fp_port(const fp_proxy *p);

/* Faults on (1, the default) or off (0: every request passes, no random
 * draw is made). */
void fp_set_faults(fp_proxy *p, int on);

/* Counters so far. */
void fp_get_stats(fp_proxy *p, fp_stats *out);

/* Injected faults so far (every choice but FP_PASS). */
uint64_t fp_faults_injected(const fp_stats *s);

/* Short fixed name of a choice ("drop-response"...).  Static storage. */
const char *fp_fault_name(fp_fault f);

/* Stop accepting, cut every connection, join the threads, free p.
 * NULL-safe. */
void fp_stop(fp_proxy *p);

#endif
