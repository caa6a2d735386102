/*
 * fv_csv.c - fv import and fv export --csv: spreadsheets in and out of the
 * store, through the public API only (see fv_csv.h for the contracts).
 *
 * Layout, in reading order:
 *  - the reader: a byte source (stdio plus a few bytes of push-back for the
 *    BOM and CR LF), a state machine over RFC 4180 (START, PLAIN, QUOTED,
 *    QUOTE = a quote seen inside quotes, TAIL = spaces after the closing
 *    quote), one row at a time in a buffer bounded by FV_FIELD_MAX per cell
 *    and FVCSV_COLUMNS_MAX cells, each cell checked as UTF-8 when it ends;
 *  - the writer: one cell, quoted only when it must be;
 *  - normalisers: trimming, dates, enum labels, customer-name keys;
 *  - a small string hash map (customers by name key, id and exact name);
 *  - import: header -> fields (field names, fv's option names, --map),
 *    every row built as an fv_record so that the library's setters and
 *    fv_insert judge it (their message is the row's reason), all accepted
 *    rows in one fv_begin/fv_commit batch (fv_rollback for --dry-run, so a
 *    dry run checks exactly what a real run would), then the report;
 *  - export: a list, field by field, to a temporary file renamed at the end.
 *
 * Which of this belongs in the library: the date and enum-label
 * normalisers and the customer-name key.  The library already owns what a
 * value must be (fv_record_set_text checks it) and its own duplicate
 * detection (issue 9), so the customer-name key is the library's
 * (fv_normalize, core/normalize.c): every path (fv customer add, sync, the
 * Java API) uses the same one.  The date and enum-label normalisers are
 * kept here until core/ offers them.
 *
 * Messages never quote a pii or confidential value (the library's rule):
 * a rejected value is quoted only when its field is public and short.
 */
#include "fv_csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

enum { CSV_OK = 0, CSV_FAIL = 1, CSV_USAGE = 2, CSV_KEY = 3, CSV_CORRUPT = 4, CSV_ACCESS = 5 };

/* ---- messages (the conventions of fv.c) ---- */

static int exit_for(fv_status st)
{
    switch (st) {
    case FV_OK: return CSV_OK;
    case FV_EKEY: return CSV_KEY;
    case FV_ECORRUPT: return CSV_CORRUPT;
    case FV_EACCES: return CSV_ACCESS;
    default: return CSV_FAIL;
    }
}

static int lib_fail(const fv_db *db, fv_status st)
{
    const char *msg = (db != NULL && fv_errcode(db) == st) ? fv_errmsg(db) : fv_status_str(st);
    fprintf(stderr, "fv: %s\n", msg);
    return exit_for(st);
}

__attribute__((format(printf, 2, 0))) static int vmsg(int code, const char *fmt, va_list ap)
{
    fputs("fv: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    return code;
}

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vmsg(CSV_FAIL, fmt, ap);
    va_end(ap);
    return rc;
}

__attribute__((format(printf, 1, 2))) static int usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vmsg(CSV_USAGE, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- UTF-8 ---- */

/* Length of the well-formed sequence at s (n bytes left), 0 if malformed. */
static size_t u8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1fu; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0fu; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07u; }
    else return 0;
    if (n < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3fu);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* ---- reader ---- */

enum { S_START, S_PLAIN, S_QUOTED, S_QUOTE, S_TAIL };

struct fvcsv_reader {
    FILE *f;
    int started, failed, at_eof;
    unsigned char pend[4]; /* bytes read ahead: the BOM check, a CR's peek */
    size_t npend, ipend;
    unsigned long line;     /* physical line of the next byte */
    unsigned long row_line; /* where the current row starts */
    char *buf;              /* the row's cells, each NUL-terminated */
    size_t len, cap;
    size_t ncells;
    size_t start[FVCSV_COLUMNS_MAX];
    unsigned long cell_line[FVCSV_COLUMNS_MAX];
    char err[200];
};

fvcsv_reader *fvcsv_reader_new(FILE *f)
{
    fvcsv_reader *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->f = f;
    r->line = 1;
    return r;
}

void fvcsv_reader_free(fvcsv_reader *r)
{
    if (r == NULL) return;
    if (r->buf != NULL) sodium_memzero(r->buf, r->cap);
    free(r->buf);
    free(r);
}

size_t fvcsv_row_cells(const fvcsv_reader *r)
{
    return r->ncells;
}

char *fvcsv_row_cell(fvcsv_reader *r, size_t i)
{
    return i < r->ncells ? r->buf + r->start[i] : NULL;
}

unsigned long fvcsv_row_line(const fvcsv_reader *r)
{
    return r->row_line;
}

const char *fvcsv_reader_error(const fvcsv_reader *r)
{
    return r->failed ? r->err : "no error";
}

__attribute__((format(printf, 3, 4))) static int rfail(fvcsv_reader *r, unsigned long line,
                                                       const char *fmt, ...)
{
    if (!r->failed) {
        int n = snprintf(r->err, sizeof r->err, "line %lu: ", line);
        va_list ap;
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < sizeof r->err) vsnprintf(r->err + n, sizeof r->err - (size_t)n, fmt, ap);
        va_end(ap);
    }
    r->failed = 1;
    return -1;
}

static int next_byte(fvcsv_reader *r)
{
    if (r->ipend < r->npend) return r->pend[r->ipend++];
    r->ipend = r->npend = 0;
    return getc(r->f);
}

/* Give back the byte just read (never EOF). */
static void unread(fvcsv_reader *r, int c)
{
    if (r->ipend > 0) {
        r->pend[--r->ipend] = (unsigned char)c;
    } else {
        r->pend[0] = (unsigned char)c;
        r->npend = 1;
    }
}

/* The first bytes: a UTF-8 BOM is skipped; UTF-16 is named, not misread. */
static int start(fvcsv_reader *r)
{
    unsigned char b[3];
    size_t n = 0;
    int c;
    r->started = 1;
    while (n < 3 && (c = next_byte(r)) != EOF) b[n++] = (unsigned char)c;
    if (n >= 2 && ((b[0] == 0xff && b[1] == 0xfe) || (b[0] == 0xfe && b[1] == 0xff)))
        return rfail(r, 1, "the file is UTF-16 text: save it as UTF-8 CSV");
    if (n == 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf) return 0;
    memcpy(r->pend, b, n);
    r->npend = n;
    r->ipend = 0;
    return 0;
}

/* Room for one more byte and the cell's NUL.  The bounds on a cell and on
 * the cells of a row keep the buffer under FVCSV_COLUMNS_MAX *
 * (FV_FIELD_MAX + 1) bytes, doubled at most. */
static int reserve(fvcsv_reader *r)
{
    if (r->len + 2 <= r->cap) return 0;
    size_t cap = r->cap ? r->cap * 2 : 4096;
    char *b = malloc(cap);
    if (b == NULL) return rfail(r, r->line, "out of memory");
    if (r->len > 0) memcpy(b, r->buf, r->len);
    if (r->buf != NULL) sodium_memzero(r->buf, r->cap); /* cells may be protected values */
    free(r->buf);
    r->buf = b;
    r->cap = cap;
    return 0;
}

static int put_byte(fvcsv_reader *r, int c)
{
    if (r->len - r->start[r->ncells] >= FV_FIELD_MAX)
        return rfail(r, r->cell_line[r->ncells], "a cell is longer than %d bytes", FV_FIELD_MAX);
    if (reserve(r) != 0) return -1;
    r->buf[r->len++] = (char)c;
    return 0;
}

static int begin_cell(fvcsv_reader *r)
{
    if (r->ncells == FVCSV_COLUMNS_MAX)
        return rfail(r, r->row_line, "more than %d cells in one row", FVCSV_COLUMNS_MAX);
    r->start[r->ncells] = r->len;
    r->cell_line[r->ncells] = r->line;
    return 0;
}

/* Close the current cell: NUL-terminated and checked as UTF-8 (the line
 * of a bad byte counts the breaks inside the cell before it). */
static int end_cell(fvcsv_reader *r)
{
    if (reserve(r) != 0) return -1; /* also: buf is allocated, even for an empty first cell */
    size_t s = r->start[r->ncells], n = r->len - s;
    const unsigned char *p = (const unsigned char *)r->buf + s;
    for (size_t i = 0; i < n;) {
        size_t k = u8_seq(p + i, n - i);
        if (k > 0) {
            i += k;
            continue;
        }
        unsigned long line = r->cell_line[r->ncells];
        for (size_t j = 0; j < i; j++)
            if (p[j] == '\n' || (p[j] == '\r' && p[j + 1] != '\n')) line++;
        return rfail(r, line, "not valid UTF-8 (byte 0x%02x): save the sheet as UTF-8 CSV "
                              "(GBK and other encodings are not read)", p[i]);
    }
    r->buf[r->len++] = '\0';
    r->ncells++;
    return 0;
}

/* A line break ending a row: CR LF, LF or a lone CR. */
static void row_break(fvcsv_reader *r, int c)
{
    if (c == '\r') {
        int d = next_byte(r);
        if (d != '\n' && d != EOF) unread(r, d);
    }
    r->line++;
}

/* 0: go on; 1: the row is complete; -1: error. */
static int end_or_next(fvcsv_reader *r, int *state, int c)
{
    if (c == ',') {
        *state = S_START;
        return end_cell(r) == 0 && begin_cell(r) == 0 ? 0 : -1;
    }
    row_break(r, c);
    return end_cell(r) == 0 ? 1 : -1;
}

static int step(fvcsv_reader *r, int *state, int c)
{
    switch (*state) {
    case S_START:
        if (c == '"') {
            *state = S_QUOTED;
            return 0;
        }
        *state = S_PLAIN;
        break;
    case S_QUOTED:
        if (c == '"') {
            *state = S_QUOTE;
            return 0;
        }
        if (c == '\n') {
            r->line++;
        } else if (c == '\r') { /* CR LF inside quotes: one break, counted at the LF */
            int d = next_byte(r);
            if (d != '\n') r->line++;
            if (d != EOF) unread(r, d);
        }
        return put_byte(r, c);
    case S_QUOTE:
        if (c == '"') { /* "" inside quotes: one quote */
            *state = S_QUOTED;
            return put_byte(r, '"');
        }
        *state = S_TAIL;
        /* fall through */
    case S_TAIL:
        if (c == ' ' || c == '\t') return 0;
        if (c == ',' || c == '\n' || c == '\r') return end_or_next(r, state, c);
        return rfail(r, r->line, "text after the closing quote of a cell (a quote inside a "
                                 "quoted cell is written twice: \"\")");
    default:
        break;
    }
    /* S_PLAIN; a quote inside an unquoted cell is kept as it is */
    if (c == ',' || c == '\n' || c == '\r') return end_or_next(r, state, c);
    return put_byte(r, c);
}

int fvcsv_read_row(fvcsv_reader *r)
{
    if (r->failed) return -1;
    if (!r->started && start(r) != 0) return -1;
    if (r->at_eof) return 0;
    r->len = 0;
    r->ncells = 0;
    r->row_line = r->line;
    if (begin_cell(r) != 0) return -1;
    int state = S_START, any = 0;
    for (;;) {
        int c = next_byte(r);
        if (c == EOF) break;
        any = 1;
        if (c == 0) return rfail(r, r->line, "a NUL byte: this is not a text file");
        int rc = step(r, &state, c);
        if (rc != 0) return rc;
    }
    if (ferror(r->f)) return rfail(r, r->line, "reading failed: %s", strerror(errno));
    r->at_eof = 1;
    if (state == S_QUOTED)
        return rfail(r, r->cell_line[r->ncells],
                     "a quoted cell opened on this line is not closed before the end of the file");
    if (!any) return 0;
    return end_cell(r) == 0 ? 1 : -1;
}

/* ---- writer ---- */

int fvcsv_put_cell(FILE *f, const char *value, int first)
{
    if (!first && putc(',', f) == EOF) return -1;
    if (value == NULL || value[0] == '\0') return 0;
    /* quoted also when it starts with U+FEFF, which a reader takes for a BOM
     * at the start of a file */
    if (strpbrk(value, ",\"\r\n") == NULL && strncmp(value, "\xef\xbb\xbf", 3) != 0)
        return fputs(value, f) < 0 ? -1 : 0;
    if (putc('"', f) == EOF) return -1;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' && putc('"', f) == EOF) return -1;
        if (putc(*p, f) == EOF) return -1;
    }
    return putc('"', f) == EOF ? -1 : 0;
}

int fvcsv_end_row(FILE *f)
{
    return fputs("\r\n", f) < 0 ? -1 : 0;
}

/* ---- normalisers ---- */

/* Bytes of a white-space character at s (0 if none): ASCII, U+00A0 no-break
 * space, U+3000 ideographic space, U+FEFF (a stray BOM inside a sheet). */
static size_t space_at(const unsigned char *s)
{
    if (s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r')) return 1;
    if (s[0] == 0xc2 && s[1] == 0xa0) return 2;
    if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3;
    if (s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf) return 3;
    return 0;
}

char *fvcsv_trim(char *s)
{
    unsigned char *p = (unsigned char *)s, *end, *q;
    size_t k;
    while ((k = space_at(p)) > 0) p += k;
    end = q = p;
    while (*q) {
        k = space_at(q);
        if (k > 0) {
            q += k;
            continue;
        }
        q++;
        while ((*q & 0xc0) == 0x80) q++;
        end = q;
    }
    *end = '\0';
    return (char *)p;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* 1..max digits at s into *v; returns how many (0: none). */
static size_t take_digits(const char *s, size_t max, int *v)
{
    size_t n = 0;
    int x = 0;
    while (n < max && is_digit(s[n])) x = x * 10 + (s[n++] - '0');
    *v = x;
    return n;
}

/* "年", "月", "日", "号" in UTF-8 */
#define CJK_YEAR "\xe5\xb9\xb4"
#define CJK_MONTH "\xe6\x9c\x88"
#define CJK_DAY "\xe6\x97\xa5"
#define CJK_DAY_SPOKEN "\xe5\x8f\xb7"

/* After the year: -M-D, /M/D, .M.D or 年M月D日; *p moves past it. */
static int month_day(const char **p, int *m, int *d)
{
    const char *s = *p;
    size_t k;
    if (*s == '-' || *s == '/' || *s == '.') {
        char sep = *s++;
        if ((k = take_digits(s, 2, m)) == 0 || s[k] != sep) return 0;
        s += k + 1;
        if ((k = take_digits(s, 2, d)) == 0 || is_digit(s[k])) return 0;
        *p = s + k;
        return 1;
    }
    if (strncmp(s, CJK_YEAR, 3) != 0) return 0;
    s += 3;
    if ((k = take_digits(s, 2, m)) == 0 || strncmp(s + k, CJK_MONTH, 3) != 0) return 0;
    s += k + 3;
    if ((k = take_digits(s, 2, d)) == 0) return 0;
    s += k;
    if (strncmp(s, CJK_DAY, 3) != 0 && strncmp(s, CJK_DAY_SPOKEN, 3) != 0) return 0;
    *p = s + 3;
    return 1;
}

int fvcsv_norm_date(const char *s, char out[11], const char **rest)
{
    int y, m, d;
    if (take_digits(s, 4, &y) == 4 && !is_digit(s[4])) {
        const char *p = s + 4;
        if (!month_day(&p, &m, &d)) return 0;
        snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u,
                 (unsigned)d % 100u); /* at most 4, 2 and 2 digits were read */
        *rest = p;
        return 1;
    }
    /* D/M/YYYY or M/D/YYYY: which one cannot be told */
    size_t k = take_digits(s, 2, &d);
    if (k == 0 || (s[k] != '/' && s[k] != '.' && s[k] != '-')) return 0;
    char sep = s[k];
    const char *p = s + k + 1;
    if ((k = take_digits(p, 2, &m)) == 0 || p[k] != sep) return 0;
    p += k + 1;
    if (take_digits(p, 4, &y) != 4 || is_digit(p[4])) return 0;
    return -1;
}

/* " 0:00", " 00:00:00", "T00:00": what spreadsheets put after a date. */
static int is_midnight(const char *p)
{
    int h, mi, se = 0;
    size_t k;
    if (*p != ' ' && *p != 'T') return 0;
    p++;
    while (*p == ' ') p++;
    if ((k = take_digits(p, 2, &h)) == 0 || p[k] != ':') return 0;
    p += k + 1;
    if (take_digits(p, 2, &mi) != 2) return 0;
    p += 2;
    if (*p == ':') {
        if (take_digits(p + 1, 2, &se) != 2) return 0;
        p += 3;
    }
    return *p == '\0' && h == 0 && mi == 0 && se == 0;
}

int fvcsv_norm_date_value(const char *s, char out[11])
{
    const char *rest;
    int r = fvcsv_norm_date(s, out, &rest);
    if (r != 1) return r;
    return rest[0] == '\0' || is_midnight(rest) ? 1 : 0;
}

int fvcsv_norm_time(const char *s, char *out, size_t cap)
{
    char date[11];
    const char *rest;
    int r = fvcsv_norm_date(s, date, &rest);
    if (r != 1) return r;
    if (rest[0] == '\0') return (size_t)snprintf(out, cap, "%s", date) < cap ? 1 : 0;
    if (rest[0] != ' ' && rest[0] != 'T') return 0;
    const char *p = rest + 1;
    while (*p == ' ') p++;
    int h;
    size_t k = take_digits(p, 2, &h);
    if (k == 0 || p[k] != ':') return 0;
    int n = snprintf(out, cap, "%sT%02d%s", date, h, p + k);
    return n > 0 && (size_t)n < cap ? 1 : 0;
}

/* Labels of the playbooks, and the values themselves (for their case). */
static const struct {
    const char *field, *label, *value;
} enum_labels[] = {
    {"grade", "S", "S"},
    {"grade", "A", "A"},
    {"grade", "B", "B"},
    {"grade", "S\xe7\xba\xa7", "S"}, /* S级 */
    {"grade", "A\xe7\xba\xa7", "A"},
    {"grade", "B\xe7\xba\xa7", "B"},
    {"stage", "lead", "lead"},
    {"stage", "intent", "intent"},
    {"stage", "negotiation", "negotiation"},
    {"stage", "won", "won"},
    {"stage", "service", "service"},
    {"stage", "lost", "lost"},
    {"stage", "\xe6\xbd\x9c\xe5\x9c\xa8", "lead"},                     /* 潜在 */
    {"stage", "\xe6\x84\x8f\xe5\x90\x91", "intent"},                   /* 意向 */
    {"stage", "\xe8\xb0\x88\xe5\x88\xa4", "negotiation"},              /* 谈判 */
    {"stage", "\xe6\x88\x90\xe4\xba\xa4", "won"},                      /* 成交 */
    {"stage", "\xe6\x9c\x8d\xe5\x8a\xa1\xe4\xb8\xad", "service"},      /* 服务中 */
    {"stage", "\xe6\xb5\x81\xe5\xa4\xb1", "lost"},                     /* 流失 */
    {"intent", "high", "high"},
    {"intent", "mid", "mid"},
    {"intent", "low", "low"},
    {"intent", "\xe9\xab\x98", "high"}, /* 高 */
    {"intent", "\xe4\xb8\xad", "mid"},  /* 中 */
    {"intent", "\xe4\xbd\x8e", "low"},  /* 低 */
    {"method", "visit", "visit"},
    {"method", "phone", "phone"},
    {"method", "email", "email"},
    {"method", "video", "video"},
    {"method", "other", "other"},
    {"method", "\xe7\x94\xb5\xe8\xaf\x9d", "phone"}, /* 电话 */
    {"method", "\xe9\x82\xae\xe4\xbb\xb6", "email"}, /* 邮件 */
    {"method", "\xe6\x8b\x9c\xe8\xae\xbf", "visit"}, /* 拜访 */
    {"method", "\xe8\xa7\x86\xe9\xa2\x91", "video"}, /* 视频 */
    {"method", "\xe5\x85\xb6\xe4\xbb\x96", "other"}, /* 其他 */
};

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b)) return 0;
    return *a == *b;
}

const char *fvcsv_enum_label(const char *field, const char *value)
{
    /* the library's name key: trimmed, full-width ASCII folded (Ｓ级), case folded */
    char v[64];
    if (fv_normalize(FV_NORM_NAME, value, v, sizeof v) != FV_OK) return NULL;
    for (size_t i = 0; i < sizeof enum_labels / sizeof enum_labels[0]; i++)
        if (strcmp(enum_labels[i].field, field) == 0 && ascii_ieq(v, enum_labels[i].label))
            return enum_labels[i].value;
    return NULL;
}

char *fvcsv_name_key(const char *name)
{
    /* the library's key (fv_normalize), so an imported name and one typed
     * into fv customer add are compared alike */
    size_t n = strlen(name) + 1;
    char *out = malloc(n);
    if (out == NULL) return NULL;
    if (fv_normalize(FV_NORM_NAME, name, out, n) != FV_OK) {
        free(out);
        return NULL;
    }
    return out;
}

/* ---- a string map ---- */

typedef struct entry {
    char *key;              /* NULL: a free slot */
    char id[FV_ID_LEN + 1]; /* the (first) customer with this key */
    char *name;             /* its name, for messages */
    unsigned long line;     /* the row that imported it; 0: already stored */
    size_t count;           /* customers with this key */
} entry;

typedef struct smap {
    entry *v;
    size_t cap, n;
} smap;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static entry *smap_slot(entry *v, size_t cap, const char *key)
{
    size_t i = (size_t)(hash_str(key) & (cap - 1));
    while (v[i].key != NULL && strcmp(v[i].key, key) != 0) i = (i + 1) & (cap - 1);
    return &v[i];
}

static entry *smap_get(const smap *m, const char *key)
{
    if (m->cap == 0) return NULL;
    entry *e = smap_slot(m->v, m->cap, key);
    return e->key != NULL ? e : NULL;
}

/* The entry for key, added (zeroed, count 0) when new.  NULL: out of memory. */
static entry *smap_add(smap *m, const char *key)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        entry *v = calloc(cap, sizeof *v);
        if (v == NULL) return NULL;
        for (size_t i = 0; i < m->cap; i++)
            if (m->v[i].key != NULL) *smap_slot(v, cap, m->v[i].key) = m->v[i];
        free(m->v);
        m->v = v;
        m->cap = cap;
    }
    entry *e = smap_slot(m->v, m->cap, key);
    if (e->key == NULL) {
        size_t n = strlen(key) + 1;
        e->key = malloc(n);
        if (e->key == NULL) return NULL;
        memcpy(e->key, key, n);
        m->n++;
    }
    return e;
}

static void smap_free(smap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->v[i].key);
        free(m->v[i].name);
    }
    free(m->v);
    memset(m, 0, sizeof *m);
}

/* ---- import: state ---- */

#define COL_IGNORED (-1) /* the id column, or --map COL= */
#define COL_UNKNOWN (-2)

typedef struct field_info {
    const char *name; /* owned by the importer's proto record */
    fv_field_type type;
    fv_field_class cls;
} field_info;

typedef struct issue {
    unsigned long line;
    int duplicate;
    char *reason;
} issue;

typedef struct importer {
    fv_db *db;
    const fvcsv_import_args *a;
    fv_record *proto; /* an empty record: the table's fields */
    field_info fields[FV_RECORD_FIELDS_MAX];
    size_t nfields;
    int col[FVCSV_COLUMNS_MAX]; /* column -> field index, or COL_* */
    size_t ncols;
    int name_col;  /* customers: the column of the name (-1 none) */
    smap known;    /* customers: name keys of stored and imported customers */
    smap ids;      /* contacts, visits: customers by id ... */
    smap names;    /* ... and by exact name */
    issue *issues;
    size_t nissues, cap_issues;
    unsigned long read, imported, duplicates, rejected;
    char reason[640]; /* the current row's reason */
} importer;

/* A rejected value may be quoted only when public and short (as the
 * library does); a longer one is cut at a character boundary. */
static const char *quotable(const field_info *f, const char *v, char *buf, size_t cap)
{
    if (f != NULL && f->cls != FV_CLASS_PUBLIC) return "...";
    size_t n = strlen(v);
    if (n < cap) return v;
    size_t k = cap - 4;
    while (k > 0 && ((unsigned char)v[k] & 0xc0) == 0x80) k--;
    memcpy(buf, v, k);
    memcpy(buf + k, "...", 4);
    return buf;
}

__attribute__((format(printf, 2, 3))) static void set_reason(importer *im, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(im->reason, sizeof im->reason, fmt, ap);
    va_end(ap);
}

/* A library status for the current row: its message becomes the reason. */
static fv_status api(importer *im, fv_status st)
{
    if (st != FV_OK)
        set_reason(im, "%s", fv_errcode(im->db) == st ? fv_errmsg(im->db) : fv_status_str(st));
    return st;
}

/* A status that rejects the row; any other failure stops the import. */
static int row_level(fv_status st)
{
    return st == FV_EINVAL || st == FV_EACCES || st == FV_ENOTFOUND;
}

static int add_issue(importer *im, unsigned long line, int duplicate)
{
    if (im->nissues == im->cap_issues) {
        size_t cap = im->cap_issues ? im->cap_issues * 2 : 64;
        issue *v = realloc(im->issues, cap * sizeof *v);
        if (v == NULL) return fail("out of memory");
        im->issues = v;
        im->cap_issues = cap;
    }
    size_t n = strlen(im->reason) + 1;
    char *r = malloc(n);
    if (r == NULL) return fail("out of memory");
    memcpy(r, im->reason, n);
    im->issues[im->nissues++] = (issue){line, duplicate, r};
    if (duplicate) im->duplicates++;
    else im->rejected++;
    return 0;
}

static void importer_free(importer *im)
{
    for (size_t i = 0; i < im->nissues; i++) free(im->issues[i].reason);
    free(im->issues);
    smap_free(&im->known);
    smap_free(&im->ids);
    smap_free(&im->names);
    fv_record_free(im->proto);
}

/* ---- import: the header ---- */

static int load_fields(importer *im)
{
    fv_status st = fv_record_new(im->db, im->a->table, &im->proto);
    if (st != FV_OK) return lib_fail(im->db, st);
    const char *name;
    fv_field_type type;
    while (im->nfields < FV_RECORD_FIELDS_MAX &&
           fv_record_field(im->proto, im->nfields, &name, &type) == FV_OK) {
        field_info *f = &im->fields[im->nfields++];
        f->name = name;
        f->type = type;
        if (fv_schema_field_class(im->db, im->a->table, name, &f->cls) != FV_OK)
            f->cls = FV_CLASS_CONFIDENTIAL; /* unknown: never quoted */
    }
    return 0;
}

/* "Decision-Chain", "decision chain" -> "decision_chain" (ASCII only). */
static void column_key(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 1 < cap; s++)
        out[o++] = (*s == '-' || *s == ' ') ? '_' : (char)ascii_lower((unsigned char)*s);
    out[o] = '\0';
}

/* The field a column name (or a --map target) names: a field name, fv's
 * option name for it, in any ASCII case, with '-' or ' ' for '_'. */
static int field_named(const importer *im, const char *col)
{
    char key[FV_NAME_MAX * 2], k2[FV_NAME_MAX * 2];
    column_key(col, key, sizeof key);
    for (size_t i = 0; i < im->nfields; i++)
        if (strcmp(col, im->fields[i].name) == 0 || strcmp(key, im->fields[i].name) == 0)
            return (int)i;
    for (size_t a = 0; a < im->a->naliases; a++) {
        column_key(im->a->aliases[a].name, k2, sizeof k2);
        if (strcmp(key, k2) != 0) continue;
        for (size_t i = 0; i < im->nfields; i++)
            if (strcmp(im->a->aliases[a].field, im->fields[i].name) == 0) return (int)i;
    }
    if (strcmp(key, "id") == 0) return COL_IGNORED; /* ids are made by the store */
    return COL_UNKNOWN;
}

/* Parse --map COL=field into the column name (trimmed, in buf) and the
 * field (COL_IGNORED when empty).  Exit code. */
static int parse_map(const importer *im, const char *map, char *buf, size_t cap, int *field)
{
    const char *eq = strrchr(map, '=');
    if (eq == NULL || eq == map) return usage("--map takes COL=FIELD (got '%.60s')", map);
    size_t n = (size_t)(eq - map);
    if (n >= cap) return usage("--map: the column name is too long");
    memcpy(buf, map, n);
    buf[n] = '\0';
    char target[FV_NAME_MAX * 2];
    snprintf(target, sizeof target, "%s", eq + 1);
    char *t = fvcsv_trim(target);
    *field = t[0] == '\0' ? COL_IGNORED : field_named(im, t);
    if (*field == COL_UNKNOWN)
        return usage("--map %.60s: %s has no field '%.40s'", map, im->a->table, t);
    return 0;
}

/* Which --map names this header cell (exactly, else ignoring ASCII case). */
static int find_map(const importer *im, const char *col, int *used, int *field, int *rc)
{
    char name[512];
    int found = -1;
    *rc = 0;
    for (int pass = 0; pass < 2 && found < 0; pass++)
        for (size_t m = 0; m < im->a->nmaps && found < 0; m++) {
            int f;
            if ((*rc = parse_map(im, im->a->maps[m], name, sizeof name, &f)) != 0) return 0;
            const char *c = fvcsv_trim(name);
            if (pass == 0 ? strcmp(c, col) == 0 : ascii_ieq(c, col)) {
                found = (int)m;
                *field = f;
            }
        }
    if (found < 0) return 0;
    used[found] = 1;
    return 1;
}

/* Check every --map (well-formed, naming a column of the header). */
static int check_maps(const importer *im, const int *used)
{
    char name[512];
    for (size_t m = 0; m < im->a->nmaps; m++) {
        int f, rc = parse_map(im, im->a->maps[m], name, sizeof name, &f);
        if (rc != 0) return rc;
        if (!used[m])
            return usage("--map %.60s: %s has no column '%.60s'", im->a->maps[m], im->a->path,
                         fvcsv_trim(name));
    }
    return 0;
}

/* The header row -> im->col.  Unknown columns are all listed, then refused:
 * nothing of a sheet is dropped without the user saying so. */
static int map_header(importer *im, fvcsv_reader *rd)
{
    int used[FVCSV_COLUMNS_MAX + 64] = {0}, rc = 0;
    if (im->a->nmaps > FVCSV_COLUMNS_MAX + 64) return usage("too many --map options");
    size_t unknown = 0;
    char list[1024] = "";
    im->ncols = fvcsv_row_cells(rd);
    im->name_col = -1;
    for (size_t c = 0; c < im->ncols; c++) {
        const char *h = fvcsv_trim(fvcsv_row_cell(rd, c));
        int f = COL_UNKNOWN;
        if (!find_map(im, h, used, &f, &rc)) {
            if (rc != 0) return rc;
            f = field_named(im, h);
        }
        im->col[c] = f;
        if (f == COL_UNKNOWN) {
            size_t n = strlen(list);
            if (n + 80 < sizeof list)
                snprintf(list + n, sizeof list - n, "%s'%.60s'", unknown ? ", " : "",
                         h[0] ? h : "(empty)");
            unknown++;
            continue;
        }
        for (size_t p = 0; p < c && f >= 0; p++)
            if (im->col[p] == f)
                return usage("%s: columns %zu and %zu both give %s.%s", im->a->path, p + 1, c + 1,
                             im->a->table, im->fields[f].name);
        if (f >= 0 && strcmp(im->fields[f].name, "name") == 0) im->name_col = (int)c;
    }
    if ((rc = check_maps(im, used)) != 0) return rc;
    if (unknown > 0)
        return usage("%s: %zu column%s match%s no field of %s: %s (name a field with "
                     "--map COL=field, or leave a column out with --map COL=)",
                     im->a->path, unknown, unknown == 1 ? "" : "s", unknown == 1 ? "es" : "",
                     im->a->table, list);
    return 0;
}

/* The header must give what the rows are checked by. */
static int check_required(const importer *im)
{
    int ref = -1;
    for (size_t i = 0; i < im->nfields; i++)
        if (strcmp(im->fields[i].name, "customer_id") == 0) ref = (int)i;
    int customers = strcmp(im->a->table, "customer") == 0;
    if (customers && im->name_col < 0)
        return usage("%s has no column for customer.name (name one with --map COL=name)",
                     im->a->path);
    if (!customers && ref >= 0) {
        for (size_t c = 0; c < im->ncols; c++)
            if (im->col[c] == ref) return 0;
        return usage("%s has no column for the customer (a column 'customer' or 'customer_id' "
                     "with the customer's id or name, or --map COL=customer)", im->a->path);
    }
    return 0;
}

/* Existing customers the user may read: name keys (duplicates), or ids
 * and exact names (references from contacts and visits). */
static int load_customers(importer *im)
{
    int customers = strcmp(im->a->table, "customer") == 0;
    fv_list *l = NULL;
    const fv_record *r;
    fv_status st = fv_list_customers(im->db, NULL, &l);
    while (st == FV_OK && (st = fv_list_next(l, &r)) == FV_OK && r != NULL) {
        const char *name = NULL;
        if (fv_record_get_text(r, "name", &name) != FV_OK || name == NULL) name = "";
        entry *e;
        if (customers) {
            char *key = fvcsv_name_key(name);
            e = key != NULL ? smap_add(&im->known, key) : NULL;
            free(key);
        } else {
            e = smap_add(&im->ids, fv_record_id(r));
            if (e != NULL) e->count++;
            e = e != NULL ? smap_add(&im->names, name) : NULL;
        }
        if (e == NULL) {
            fv_list_free(l);
            return fail("out of memory");
        }
        if (e->count++ == 0) {
            snprintf(e->id, sizeof e->id, "%s", fv_record_id(r));
            size_t n = strlen(name) + 1;
            if ((e->name = malloc(n)) != NULL) memcpy(e->name, name, n);
        }
    }
    fv_list_free(l);
    return st == FV_OK ? 0 : lib_fail(im->db, st);
}

/* ---- import: one row ---- */

/* A customer reference: an id the user can read, else a unique exact name. */
static fv_status resolve_customer(importer *im, const char *v, char id[FV_ID_LEN + 1])
{
    char lower[FV_ID_LEN + 1], cut[64];
    if (strlen(v) == FV_ID_LEN) {
        for (size_t i = 0; i <= FV_ID_LEN; i++) lower[i] = (char)ascii_lower((unsigned char)v[i]);
        if (smap_get(&im->ids, lower) != NULL) {
            memcpy(id, lower, sizeof lower);
            return FV_OK;
        }
    }
    entry *e = smap_get(&im->names, v);
    if (e == NULL) {
        set_reason(im, "%s.customer_id: no customer has the id or the name '%s'", im->a->table,
                   quotable(NULL, v, cut, sizeof cut));
        return FV_ENOTFOUND;
    }
    if (e->count > 1) {
        set_reason(im, "%s.customer_id: %zu customers are named '%s': give the customer's id",
                   im->a->table, e->count, quotable(NULL, v, cut, sizeof cut));
        return FV_EINVAL;
    }
    memcpy(id, e->id, FV_ID_LEN + 1);
    return FV_OK;
}

/* An enum value: a playbook label, else as written, else in lower or upper
 * case (the catalogue's values are one or the other). */
static fv_status set_enum(importer *im, fv_record *rec, const field_info *f, const char *v)
{
    const char *canon = fvcsv_enum_label(f->name, v);
    if (canon != NULL) return api(im, fv_record_set_text(rec, f->name, canon));
    fv_status st = api(im, fv_record_set_text(rec, f->name, v));
    if (st != FV_EINVAL) return st;
    char alt[FV_FIELD_MAX + 1];
    size_t n = strlen(v);
    if (n > FV_FIELD_MAX) return st;
    for (int upper = 0; upper < 2; upper++) {
        for (size_t i = 0; i <= n; i++) {
            int c = (unsigned char)v[i];
            alt[i] = (char)(upper ? (c >= 'a' && c <= 'z' ? c - 32 : c) : ascii_lower(c));
        }
        if (strcmp(alt, v) != 0 && fv_record_set_text(rec, f->name, alt) == FV_OK) return FV_OK;
    }
    return st; /* the reason names the value as written */
}

static fv_status ambiguous_date(importer *im, const field_info *f, const char *v)
{
    char cut[48];
    set_reason(im, "%s.%s: '%s' is ambiguous (day/month or month/day): write the date as "
                   "YYYY-MM-DD", im->a->table, f->name, quotable(f, v, cut, sizeof cut));
    return FV_EINVAL;
}

/* One non-empty cell into its field.  FV_OK, a row-level status with
 * im->reason set, or a failure of the store. */
static fv_status set_cell(importer *im, fv_record *rec, const field_info *f, const char *v)
{
    char buf[FV_FIELD_MAX + 16], cut[48];
    int r;
    switch (f->type) {
    case FV_TYPE_ENUM:
        return set_enum(im, rec, f, v);
    case FV_TYPE_DATE:
        if ((r = fvcsv_norm_date_value(v, buf)) < 0) return ambiguous_date(im, f, v);
        return api(im, fv_record_set_text(rec, f->name, r == 1 ? buf : v));
    case FV_TYPE_TIME:
        if ((r = fvcsv_norm_time(v, buf, sizeof buf)) < 0) return ambiguous_date(im, f, v);
        return api(im, fv_record_set_text(rec, f->name, r == 1 ? buf : v));
    case FV_TYPE_REF:
        if (strcmp(f->name, "customer_id") == 0) {
            fv_status st = resolve_customer(im, v, buf);
            if (st != FV_OK) return st;
            return api(im, fv_record_set_text(rec, f->name, buf));
        }
        return api(im, fv_record_set_text(rec, f->name, v));
    case FV_TYPE_REAL: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (end == v || *end != '\0' || errno != 0) {
            set_reason(im, "%s.%s must be a number (got '%s')", im->a->table, f->name,
                       quotable(f, v, cut, sizeof cut));
            return FV_EINVAL;
        }
        return api(im, fv_record_set_real(rec, f->name, d));
    }
    default:
        return api(im, fv_record_set_text(rec, f->name, v));
    }
}

/* A customer row whose name is taken: the reason, and 1. */
static int is_duplicate(importer *im, const char *key)
{
    entry *e = key[0] != '\0' ? smap_get(&im->known, key) : NULL;
    if (e == NULL) return 0;
    char cut[64];
    if (e->line == 0)
        set_reason(im, "duplicate of customer %s '%s' (not imported)", e->id,
                   quotable(NULL, e->name ? e->name : "", cut, sizeof cut));
    else
        set_reason(im, "duplicate of line %lu '%s' (not imported)", e->line,
                   quotable(NULL, e->name ? e->name : "", cut, sizeof cut));
    return 1;
}

static int remember(importer *im, const char *key, const char *name, const fv_record *rec,
                    unsigned long line)
{
    if (key == NULL || key[0] == '\0') return 0;
    entry *e = smap_add(&im->known, key);
    if (e == NULL) return fail("out of memory");
    e->count++;
    e->line = line;
    snprintf(e->id, sizeof e->id, "%s", fv_record_id(rec));
    size_t n = strlen(name) + 1;
    if ((e->name = malloc(n)) == NULL) return fail("out of memory");
    memcpy(e->name, name, n);
    return 0;
}

/* Build the row's record and insert it (in the batch).  The record is
 * judged by the library: a setter's or fv_insert's message is the reason. */
static fv_status build_and_insert(importer *im, fvcsv_reader *rd, fv_record **out)
{
    fv_status st = api(im, fv_record_new(im->db, im->a->table, out));
    for (size_t c = 0; c < im->ncols && st == FV_OK; c++) {
        const char *v = fvcsv_row_cell(rd, c);
        if (im->col[c] < 0 || v[0] == '\0') continue; /* an empty cell sets nothing */
        st = set_cell(im, *out, &im->fields[im->col[c]], v);
    }
    if (st == FV_OK) st = api(im, fv_insert(im->db, *out));
    return st;
}

/* Exit code: 0 (the row was imported, rejected or skipped), else fatal. */
static int import_row(importer *im, fvcsv_reader *rd)
{
    unsigned long line = fvcsv_row_line(rd);
    size_t n = fvcsv_row_cells(rd);
    int blank = 1;
    for (size_t c = 0; c < n; c++)
        if (fvcsv_trim(fvcsv_row_cell(rd, c))[0] != '\0') blank = 0;
    if (blank) return 0; /* an empty line, or a row of empty cells: not a row */
    im->read++;
    for (size_t c = 0; c < n; c++) { /* trimmed in place: cells start where they were */
        char *cell = fvcsv_row_cell(rd, c), *t = fvcsv_trim(cell);
        if (t != cell) memmove(cell, t, strlen(t) + 1);
    }
    if (n != im->ncols) {
        set_reason(im, "%zu cells, but the header has %zu", n, im->ncols);
        return add_issue(im, line, 0);
    }
    char *key = NULL;
    const char *name = im->name_col >= 0 ? fvcsv_row_cell(rd, (size_t)im->name_col) : NULL;
    if (name != NULL) {
        if ((key = fvcsv_name_key(name)) == NULL) return fail("out of memory");
        if (is_duplicate(im, key)) {
            free(key);
            return add_issue(im, line, 1);
        }
    }
    fv_record *rec = NULL;
    fv_status st = build_and_insert(im, rd, &rec);
    int rc = 0;
    if (st == FV_OK) {
        im->imported++;
        rc = remember(im, key, name, rec, line);
    } else if (row_level(st)) {
        rc = add_issue(im, line, 0);
    } else {
        fprintf(stderr, "fv: %s: line %lu: %s\n", im->a->path, line, im->reason);
        rc = exit_for(st);
    }
    fv_record_free(rec);
    free(key);
    return rc;
}

/* Every row in one batch: committed, or rolled back for a dry run or a
 * failure (then nothing of the file is written). */
static int import_rows(importer *im, fvcsv_reader *rd)
{
    fv_status st = fv_begin(im->db);
    if (st != FV_OK) return lib_fail(im->db, st);
    int rc = 0, got = 0;
    while (rc == 0 && (got = fvcsv_read_row(rd)) == 1) rc = import_row(im, rd);
    if (rc == 0 && got < 0) rc = fail("%s: %s", im->a->path, fvcsv_reader_error(rd));
    if (rc == 0 && !im->a->dry_run) {
        st = fv_commit(im->db); /* a failed commit is rolled back */
        return st == FV_OK ? 0 : lib_fail(im->db, st);
    }
    (void)fv_rollback(im->db);
    return rc;
}

/* ---- import: the report ---- */

/* A reason on one line of text: control characters become spaces. */
static void put_reason(FILE *out, const char *s)
{
    for (; *s; s++) fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, out);
}

static void json_issues(const importer *im, fvj_writer *j, int duplicate)
{
    fvj_begin_array(j);
    for (size_t i = 0; i < im->nissues; i++) {
        if (im->issues[i].duplicate != duplicate) continue;
        fvj_begin_object(j);
        fvj_key(j, "line");
        fvj_int(j, (int64_t)im->issues[i].line);
        fvj_member_string(j, "reason", im->issues[i].reason);
        fvj_end_object(j);
    }
    fvj_end_array(j);
}

static void write_report(const importer *im, FILE *out, fvj_writer *j)
{
    if (j != NULL) {
        fvj_begin_object(j);
        fvj_key(j, "read");
        fvj_int(j, (int64_t)im->read);
        fvj_key(j, "imported");
        fvj_int(j, (int64_t)im->imported);
        fvj_key(j, "duplicates");
        json_issues(im, j, 1);
        fvj_key(j, "rejected");
        json_issues(im, j, 0);
        fvj_key(j, "dry_run");
        fvj_bool(j, im->a->dry_run);
        fvj_end_object(j);
        return;
    }
    fprintf(out, "read %lu, imported %lu, duplicates %lu, rejected %lu%s\n", im->read,
            im->imported, im->duplicates, im->rejected,
            im->a->dry_run ? " (dry run: nothing was written)" : "");
    for (size_t i = 0; i < im->nissues; i++) {
        fprintf(out, "line %lu: ", im->issues[i].line);
        put_reason(out, im->issues[i].reason);
        fputc('\n', out);
    }
}

int fvcsv_import(fv_db *db, const fvcsv_import_args *a, FILE *out, fvj_writer *j,
                 int *reported)
{
    *reported = 0;
    importer *im = calloc(1, sizeof *im);
    if (im == NULL) return fail("out of memory");
    im->db = db;
    im->a = a;
    FILE *f = fopen(a->path, "rb");
    if (f == NULL) {
        free(im);
        return fail("cannot open %s: %s", a->path, strerror(errno));
    }
    fvcsv_reader *rd = fvcsv_reader_new(f);
    int rc = rd != NULL ? load_fields(im) : fail("out of memory");
    int got = 0;
    while (rc == 0 && (got = fvcsv_read_row(rd)) == 1) { /* the header: the first row with text */
        int blank = 1;
        for (size_t c = 0; c < fvcsv_row_cells(rd); c++)
            if (fvcsv_trim(fvcsv_row_cell(rd, c))[0] != '\0') blank = 0;
        if (!blank) break;
    }
    if (rc == 0 && got < 0) rc = fail("%s: %s", a->path, fvcsv_reader_error(rd));
    if (rc == 0 && got == 0) rc = fail("%s is empty: the first row must name the columns", a->path);
    if (rc == 0) rc = map_header(im, rd);
    if (rc == 0) rc = check_required(im);
    if (rc == 0) rc = load_customers(im);
    if (rc == 0) rc = import_rows(im, rd);
    if (rc == 0) {
        write_report(im, out, j);
        *reported = 1;
        rc = im->rejected > 0 ? CSV_FAIL : CSV_OK;
    }
    fvcsv_reader_free(rd);
    fclose(f);
    importer_free(im);
    free(im);
    return rc;
}

/* ---- export ---- */

static fv_status list_all(fv_db *db, const char *table, fv_list **l)
{
    if (strcmp(table, "customer") == 0) return fv_list_customers(db, NULL, l);
    if (strcmp(table, "contact") == 0) return fv_list_contacts(db, NULL, l);
    if (strcmp(table, "visit") == 0) return fv_list_visits(db, NULL, l);
    return FV_EINVAL;
}

/* The shortest of %.15g..%.17g that reads back as the same double. */
static void format_real(double d, char buf[40])
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, 40, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) return;
    }
}

/* One record as a row.  A field the user may not read is an empty cell;
 * one that fails authentication stops the export (never shown as empty). */
static int put_record(FILE *f, const fv_record *r)
{
    const char *name;
    fv_field_type type;
    int bad = fvcsv_put_cell(f, fv_record_id(r), 1);
    for (size_t i = 0; bad == 0 && fv_record_field(r, i, &name, &type) == FV_OK; i++) {
        int red = 0;
        const char *v = NULL;
        char num[40];
        fv_status st = fv_record_redacted(r, name, &red);
        if (st == FV_OK && !red && type == FV_TYPE_REAL) {
            double d;
            int set = 0;
            st = fv_record_get_real(r, name, &d, &set);
            if (st == FV_OK && set) {
                format_real(d, num);
                v = num;
            }
        } else if (st == FV_OK && !red) {
            st = fv_record_get_text(r, name, &v);
        }
        if (st == FV_EACCES) { /* redacted: an empty cell */
            st = FV_OK;
            v = NULL;
        }
        if (st != FV_OK) {
            fprintf(stderr, "fv: %s %s: field %s: %s\n", fv_record_table(r), fv_record_id(r), name,
                    st == FV_ECORRUPT ? "the value failed authentication" : fv_status_str(st));
            return exit_for(st);
        }
        bad = fvcsv_put_cell(f, v, 0);
    }
    if (bad == 0) bad = fvcsv_end_row(f);
    return bad == 0 ? 0 : fail("writing the CSV failed: %s", strerror(errno));
}

static int write_csv(fv_db *db, const char *table, FILE *f, unsigned long *count)
{
    fv_record *proto = NULL;
    fv_list *l = NULL;
    const fv_record *r;
    const char *name;
    fv_status st = fv_record_new(db, table, &proto);
    if (st == FV_OK) st = list_all(db, table, &l);
    if (st != FV_OK) {
        fv_record_free(proto);
        return lib_fail(db, st);
    }
    int rc = fvcsv_put_cell(f, "id", 1);
    for (size_t i = 0; rc == 0 && fv_record_field(proto, i, &name, NULL) == FV_OK; i++)
        rc = fvcsv_put_cell(f, name, 0);
    if (rc == 0) rc = fvcsv_end_row(f);
    if (rc != 0) rc = fail("writing the CSV failed: %s", strerror(errno));
    while (rc == 0 && (st = fv_list_next(l, &r)) == FV_OK && r != NULL) {
        rc = put_record(f, r);
        (*count)++;
    }
    if (rc == 0 && st != FV_OK) rc = lib_fail(db, st);
    fv_list_free(l);
    fv_record_free(proto);
    return rc;
}

/* Write to a temporary file beside path, sync it, rename it over path. */
static int export_file(fv_db *db, const char *table, const char *path, unsigned long *count)
{
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n);
    if (tmp == NULL) return fail("out of memory");
    snprintf(tmp, n, "%s.XXXXXX", path);
    int fd = mkstemp(tmp); /* mode 0600: the file may hold protected values */
    if (fd < 0) {
        int rc = fail("cannot create a file beside %s: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    FILE *f = fdopen(fd, "wb");
    int rc = f != NULL ? write_csv(db, table, f, count) : fail("out of memory");
    if (rc == 0 && (fflush(f) != 0 || fsync(fd) != 0))
        rc = fail("writing %s failed: %s", path, strerror(errno));
    if (f != NULL ? fclose(f) != 0 : close(fd) != 0) {
        if (rc == 0) rc = fail("writing %s failed: %s", path, strerror(errno));
    }
    if (rc == 0 && rename(tmp, path) != 0)
        rc = fail("cannot write %s: %s", path, strerror(errno));
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}

int fvcsv_export(fv_db *db, const char *table, const char *path, FILE *out, fvj_writer *j)
{
    unsigned long count = 0;
    if (path == NULL) return write_csv(db, table, out, &count);
    int rc = export_file(db, table, path, &count);
    if (rc != 0) return rc;
    if (j != NULL) {
        fvj_begin_object(j);
        fvj_member_string(j, "file", path);
        fvj_key(j, "count");
        fvj_int(j, (int64_t)count);
        fvj_end_object(j);
    } else {
        fprintf(out, "%lu %s%s written to %s\n", count, table, count == 1 ? "" : "s", path);
    }
    return 0;
}
