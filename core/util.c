/*
 * util.c - small pieces shared by core/: the error state kept on the handle
 * (first error of a call wins, SQLite codes mapped to fv_status), UUIDv7
 * ids, date/time validation and normalisation, UTF-8 and name checks.
 * Relies on libsodium for randomness and platform.h for the clock.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "platform.h"

static const char *const status_text[] = {
    "ok",
    "invalid argument or input",
    "wrong passphrase or key",
    "store is corrupt or has been tampered with",
    "access denied",
    "protocol error",
    "network error",
    "out of memory",
    "store is busy",
    "not found",
    "I/O error",
    "already exists",
    "API misuse",
    "internal error",
};

const char *fv_status_str(fv_status code)
{
    size_t i = (size_t)code;
    if (i >= sizeof status_text / sizeof status_text[0]) return "unknown status";
    return status_text[i];
}

const char *fv_version(void)
{
    return "0.1.0";
}

const char *fv_errmsg(const fv_db *db)
{
    if (db == NULL) return "out of memory";
    if (db->err == FV_OK) return "not an error";
    return db->errmsg[0] ? db->errmsg : fv_status_str(db->err);
}

fv_status fv_errcode(const fv_db *db)
{
    return db == NULL ? FV_ENOMEM : db->err;
}

void fv__reset(fv_db *db)
{
    db->err = FV_OK;
    db->errmsg[0] = '\0';
}

fv_status fv__err(fv_db *db, fv_status code, const char *fmt, ...)
{
    if (db->err != FV_OK) return db->err; /* first error wins */
    db->err = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

fv_status fv__sqlerr(fv_db *db, int rc, const char *ctx)
{
    const char *detail = db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return fv__err(db, FV_ENOMEM, "%s: out of memory", ctx);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return fv__err(db, FV_EBUSY, "%s: the store is in use by another handle or process", ctx);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return fv__err(db, FV_ECORRUPT, "%s: the store is damaged (%s)", ctx, detail);
    case SQLITE_IOERR:
        if (rc == SQLITE_IOERR_DATA && db->vfs != NULL) {
            const char *what = fv__vfs_last_failure(db->vfs);
            return fv__err(db, FV_ECORRUPT, "%s: %s failed authentication (tampered or damaged)",
                           ctx, (what && *what) ? what : "a page");
        }
        return fv__err(db, FV_EIO, "%s: I/O error (%s)", ctx, detail);
    case SQLITE_FULL:
        return fv__err(db, FV_EIO, "%s: disk full", ctx);
    case SQLITE_CANTOPEN:
        return fv__err(db, FV_EIO, "%s: cannot open the store file", ctx);
    case SQLITE_READONLY:
        return fv__err(db, FV_EIO, "%s: the store is read-only", ctx);
    case SQLITE_CONSTRAINT:
        return fv__err(db, FV_EINVAL, "%s: constraint failed (%s)", ctx, detail);
    default:
        return fv__err(db, FV_EINTERNAL, "%s: SQLite error %d (%s)", ctx, rc, detail);
    }
}

/* ---- ids ---- */

void fv__uuid7(fv_db *db, unsigned char out[16])
{
    int64_t ms = fv_platform_now_ms();
    /* Monotonic within the handle: the same (or an earlier: the clock went
     * back) millisecond continues the previous one with a counter, so ids
     * made by one device always sort in creation order. */
    if (ms <= db->uuid_last_ms) {
        ms = db->uuid_last_ms;
        if (++db->uuid_seq > 0x0fff) { /* counter exhausted: borrow a ms */
            ms++;
            db->uuid_seq = 0;
        }
    } else {
        db->uuid_seq = 0;
    }
    db->uuid_last_ms = ms;
    uint64_t t = (uint64_t)ms;
    for (int i = 0; i < 6; i++) out[i] = (unsigned char)(t >> (40 - 8 * i));
    randombytes_buf(out + 6, 10);
    out[6] = (unsigned char)(0x70 | ((db->uuid_seq >> 8) & 0x0f));
    out[7] = (unsigned char)(db->uuid_seq & 0xff);
    out[8] = (unsigned char)(0x80 | (out[8] & 0x3f));
}

void fv__uuid_format(const unsigned char in[16], char out[FV_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[in[i] >> 4];
        out[o++] = hex[in[i] & 15];
    }
    out[o] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int fv__uuid_parse(const char *s, unsigned char out[16])
{
    if (s == NULL || strlen(s) != FV_ID_LEN) return 0;
    size_t o = 0;
    for (size_t i = 0; i < FV_ID_LEN;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
            i++;
            continue;
        }
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0) return 0;
        out[o++] = (unsigned char)(hi << 4 | lo);
        i += 2;
    }
    return 1;
}

/* ---- dates ---- */

static int digits(const char *s, size_t n, int *v)
{
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 1;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return d[m - 1];
}

static int ymd(const char *s, int *y, int *m, int *d)
{
    if (!digits(s, 4, y) || s[4] != '-' || !digits(s + 5, 2, m) || s[7] != '-' ||
        !digits(s + 8, 2, d))
        return 0;
    return *y >= 1900 && *y <= 9999 && *m >= 1 && *m <= 12 && *d >= 1 &&
           *d <= days_in_month(*y, *m);
}

int fv__date_valid(const char *s)
{
    int y, m, d;
    return s != NULL && strlen(s) == 10 && ymd(s, &y, &m, &d);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void fv__time_format_ms(int64_t ms, char out[21])
{
    int64_t secs = ms / 1000;
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) { rem += 86400; days--; }
    /* civil_from_days */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp + (mp < 10 ? 3 : -9);
    y += m <= 2;
    if (y < 0 || y > 9999) y = y < 0 ? 0 : 9999; /* outside ISO 8601's four digits */
    snprintf(out, 21, "%04u-%02u-%02uT%02u:%02u:%02uZ", (unsigned)(y % 10000),
             (unsigned)(m % 100), (unsigned)(d % 100), (unsigned)(rem / 3600 % 100),
             (unsigned)(rem % 3600 / 60 % 100), (unsigned)(rem % 60));
}

int fv__time_normalise(const char *s, char out[21])
{
    int y, mo, d, h = 0, mi = 0, se = 0;
    size_t n = s ? strlen(s) : 0;
    if (n < 10 || n > 40 || !ymd(s, &y, &mo, &d)) return 0;
    const char *p = s + 10;
    int64_t off_min = 0;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!digits(p, 2, &h) || p[2] != ':' || !digits(p + 3, 2, &mi)) return 0;
        p += 5;
        if (*p == ':') {
            if (!digits(p + 1, 2, &se)) return 0;
            p += 3;
            if (*p == '.' || *p == ',') { /* fraction: dropped */
                p++;
                if (*p < '0' || *p > '9') return 0;
                while (*p >= '0' && *p <= '9') p++;
            }
        }
        if (h > 23 || mi > 59 || se > 60) return 0;
        if (se == 60) se = 59; /* leap second: clamp */
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            int sign = *p == '-' ? -1 : 1;
            if (!digits(p + 1, 2, &oh)) return 0;
            if (p[3] == ':') {
                if (!digits(p + 4, 2, &om)) return 0;
                p += 6;
            } else {
                if (!digits(p + 3, 2, &om)) return 0;
                p += 5;
            }
            if (oh > 14 || om > 59) return 0;
            off_min = sign * (oh * 60 + om);
        }
    }
    if (*p != '\0') return 0;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off_min * 60;
    fv__time_format_ms(secs * 1000, out);
    return 1;
}

/* ---- text ---- */

size_t fv__utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0; /* truncated sequence */
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, out of range, or a surrogate */
    return len;
}

int fv__utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0, k; i < len; i += k)
        if ((k = fv__utf8_seq(s + i, len - i)) == 0) return 0;
    return 1;
}

int fv__name_valid(const char *s)
{
    if (s == NULL || !(s[0] >= 'a' && s[0] <= 'z')) return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return n <= FV_NAME_MAX;
}

char *fv__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL) memcpy(p, s, n);
    return p;
}
