/*
 * http.h - fvd's HTTP front (libmicrohttpd): routes POST /v1/enroll,
 * /v1/push, /v1/pull and /v1/keys to the handlers of fvd.h, with bounded
 * request bodies, signed-request checks (auth.h) and a pool of store
 * handles.
 *
 * Threads: one thread per connection (a slow or hostile client holds only
 * its own thread and at most one bounded body; the number of connections
 * is capped), and a pool of store handles, each used by one request at a
 * time: a request takes a handle only once its body is complete, so slow
 * uploads hold no handle.
 */
#ifndef FVD_HTTP_H
#define FVD_HTTP_H

#include <stdint.h>

#include "fvd.h"

/* Opens one more store handle for the pool (called from any thread). */
typedef fv_status (*fvd_store_open_fn)(void *ctx, fvd_store **out, char *err, size_t errcap);

typedef struct fvd_http_config {
    /* "A.B.C.D:PORT" or "[IPv6]:PORT"; PORT 0 takes a free port
     * (fvd_http_port says which). */
    const char *listen;
    fvd_store_open_fn open_store;
    void *open_ctx;
    unsigned store_handles;   /* 0: FVD_HTTP_STORE_HANDLES */
    unsigned max_connections; /* 0: FVD_HTTP_MAX_CONNECTIONS */
    unsigned idle_timeout_s;  /* 0: FVD_HTTP_IDLE_TIMEOUT_S */
} fvd_http_config;

#define FVD_HTTP_STORE_HANDLES 8
#define FVD_HTTP_MAX_CONNECTIONS 256
#define FVD_HTTP_IDLE_TIMEOUT_S 60
/* Bytes of request bodies held at once, all connections together: past
 * it, a request gets 503 UNAVAILABLE (retry later) instead of memory. */
#define FVD_HTTP_BODY_BUDGET ((size_t)256 << 20)

typedef struct fvd_http fvd_http;

/* Open the first store handle (so a bad store fails here), bind and start
 * serving.  *out to be stopped with fvd_http_stop.  FV_EINVAL (bad listen
 * address), FV_EIO (cannot bind or start), or the store's status. */
FV_NODISCARD fv_status fvd_http_start(const fvd_http_config *cfg, fvd_http **out, char *err,
                                      size_t errcap);
/* The port it listens on. */
uint16_t fvd_http_port(const fvd_http *h);
/* Stop accepting, wait for the requests in progress, close the store
 * handles, free h (NULL-safe). */
void fvd_http_stop(fvd_http *h);

#endif /* FVD_HTTP_H */
