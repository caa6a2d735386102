/*
 * http_curl.c - the default HTTP transport: libcurl (the http_open /
 * http_close / http_post hooks of platform.h's default table).
 *
 * One CURL easy handle per sync (the context), reused for every request so
 * the connection is kept alive.  TLS peer and host verification stay on
 * (libcurl's defaults, never turned off); a pinned public key is honoured
 * when given.  The response body is collected up to the request's bound
 * and refused beyond it.  libcurl's global initialisation is left to
 * curl_easy_init, which performs it on first use (an app that uses curl
 * itself from several threads should call curl_global_init at start-up).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fieldvault.h"
#include "platform.h"

typedef struct body_buf {
    unsigned char *data;
    size_t len, cap, max;
    int too_big;
} body_buf;

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    body_buf *b = ctx;
    size_t len = size * n;
    if (b->len + len > b->max) {
        b->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + len) cap *= 2;
        unsigned char *d = realloc(b->data, cap);
        if (d == NULL) return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return len;
}

typedef struct head_state {
    int64_t *server_time;
    int complete;      /* the blank line that ends the headers was seen */
} head_state;

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    head_state *h = ctx;
    int64_t *server_time = h->server_time;
    size_t len = size * n;
    if ((len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n')) h->complete = 1;
    else h->complete = 0; /* a later block (after 100 Continue) starts over */
    static const char name[] = "x-fv-server-time:";
    if (len > sizeof name - 1) {
        size_t i = 0;
        for (; i < sizeof name - 1; i++) {
            char c = p[i];
            if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
            if (c != name[i]) break;
        }
        if (i == sizeof name - 1) {
            char v[32];
            size_t k = len - i < sizeof v - 1 ? len - i : sizeof v - 1;
            memcpy(v, p + i, k);
            v[k] = '\0';
            *server_time = strtoll(v, NULL, 10);
        }
    }
    return len;
}

void *fv__curl_open(void *ctx)
{
    (void)ctx;
    return curl_easy_init();
}

void fv__curl_close(void *ctx, void *conn)
{
    (void)ctx;
    if (conn != NULL) curl_easy_cleanup(conn);
}

int fv__curl_post(void *ctx, const fv_http_request *req, fv_http_response *resp, char *err,
                  size_t errcap)
{
    CURL *c = ctx;
    memset(resp, 0, sizeof *resp);
    if (c == NULL) {
        snprintf(err, errcap, "libcurl could not be initialised");
        return -1;
    }
    curl_easy_reset(c);
    struct curl_slist *hdrs = NULL;
    int rc = -1;
    body_buf b = {NULL, 0, 0, req->max_response, 0};
    char ebuf[CURL_ERROR_SIZE] = "";
    for (size_t i = 0; i < req->nheaders; i++) {
        char line[512];
        snprintf(line, sizeof line, "%s: %s", req->headers[i].name, req->headers[i].value);
        struct curl_slist *n = curl_slist_append(hdrs, line);
        if (n == NULL) {
            snprintf(err, errcap, "out of memory");
            goto done;
        }
        hdrs = n;
    }
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)req->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    head_state hs = {&resp->server_time_ms, 0};
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hs);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    if (req->pinned_public_key != NULL)
        curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, req->pinned_public_key);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        if (b.too_big)
            snprintf(err, errcap, "the response is larger than %zu bytes", req->max_response);
        else
            snprintf(err, errcap, "%s", ebuf[0] ? ebuf : curl_easy_strerror(cc));
        free(b.data);
        b.data = NULL;
        goto done;
    }
    if (!hs.complete) { /* the connection closed inside the headers: not an answer */
        snprintf(err, errcap, "the connection closed before the answer's headers ended");
        free(b.data);
        b.data = NULL;
        goto done;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body = b.data;
    resp->body_len = b.len;
    b.data = NULL;
    rc = 0;
done:
    curl_slist_free_all(hdrs);
    return rc;
}
