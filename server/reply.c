/*
 * reply.c - the small things every handler uses (see fvd.h): replies and
 * refusals, the log line, hex.
 *
 * A refusal's message goes to the client in a protobuf Error, whose
 * message must be valid UTF-8 of at most FV_WIRE_TEXT_MAX bytes: messages
 * are formatted, cut to fit, and any invalid byte (a cut sequence, or
 * something a caller quoted) becomes '?'.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fvd.h"

void fvd_reply_init(fvd_reply *r)
{
    memset(r, 0, sizeof *r);
    fv__membuf_init(&r->body, FVD_PUSH_BODY_MAX);
}

void fvd_reply_free(fvd_reply *r)
{
    if (r == NULL) return;
    fv__membuf_free(&r->body);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    if ((c & 0xE0u) == 0xC0u) k = 1, cp = c & 0x1Fu, min = 0x80;
    else if ((c & 0xF0u) == 0xE0u) k = 2, cp = c & 0x0Fu, min = 0x800;
    else if ((c & 0xF8u) == 0xF0u) k = 3, cp = c & 0x07u, min = 0x10000;
    else return 0;
    if (n - 1 < k) return 0;
    for (size_t j = 1; j <= k; j++) {
        if ((s[j] & 0xC0u) != 0x80u) return 0;
        cp = (cp << 6) | (s[j] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) return 0;
    return k + 1;
}

void fvd_utf8_fix(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0) {
            p[i++] = '?';
        } else {
            i += k;
        }
    }
}

int fvd_refuse(fvd_reply *r, unsigned status, fieldvault_v1_ErrorCode code, const char *fmt,
               ...)
{
    r->status = status;
    r->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    fvd_utf8_fix(r->message);
    r->body.len = 0;
    return -1;
}

int fvd_refuse_store(fvd_reply *r, fv_status st, const char *what, const char *store_err)
{
    fvd_log("store error while %s: %s (%s)", what, store_err != NULL ? store_err : "",
            fv_status_str(st));
    if (st == FV_EBUSY)
        return fvd_refuse(r, 503, fieldvault_v1_ErrorCode_ERROR_CODE_UNAVAILABLE,
                          "the store of record is busy or unreachable (%s): retry later", what);
    return fvd_refuse(r, 500, fieldvault_v1_ErrorCode_ERROR_CODE_INTERNAL,
                      "server error while %s", what);
}

int fvd_name_ok(const char *s, size_t max, int allow_empty)
{
    size_t n = strnlen(s, max + 1);
    if (n > max || (n == 0 && !allow_empty)) return 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x20 || p[i] == 0x7f) return 0;
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0) return 0;
        i += k;
    }
    return 1;
}

void fvd_log(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fvd: %s\n", line);
}

void fvd_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int fvd_unhex(const char *s, unsigned char *out, size_t n)
{
    if (s == NULL || strnlen(s, 2 * n + 1) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}
