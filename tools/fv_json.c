/*
 * fv_json.c - the streaming JSON writer of fv_json.h.
 *
 * The writer keeps a stack of open containers and, for each, how many
 * members it has written, so it knows where commas and (in pretty mode)
 * newlines go.  Every value goes through begin_value(), which checks the
 * grammar (a value in an object needs a key first; nothing may follow the
 * top-level value) and marks the writer failed instead of writing invalid
 * JSON.  Strings are escaped per RFC 8259; bytes that are not well-formed
 * UTF-8 are replaced by U+FFFD so that a damaged value cannot break the
 * document.  Relies only on stdio.
 */
#include "fv_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void fvj_init(fvj_writer *w, FILE *out, int pretty)
{
    memset(w, 0, sizeof *w);
    w->out = out;
    w->pretty = pretty;
}

static void put(fvj_writer *w, const char *s, size_t n)
{
    if (n > 0 && fwrite(s, 1, n, w->out) != n) w->failed = 1;
}

static void puts_(fvj_writer *w, const char *s)
{
    put(w, s, strlen(s));
}

void fvj_set_layout(fvj_writer *w, int pretty)
{
    if (w->depth > 0 || w->done) {
        w->failed = 1;
        return;
    }
    w->pretty = pretty;
}

/* Between two members: one line keeps a space after the comma. */
static void comma(fvj_writer *w)
{
    puts_(w, w->pretty == FVJ_LINE ? ", " : ",");
}

static void newline_indent(fvj_writer *w, int depth)
{
    if (w->pretty != FVJ_PRETTY) return;
    put(w, "\n", 1);
    for (int i = 0; i < depth; i++) put(w, "  ", 2);
}

/* Comma, newline and indent before a value; 0 if a value may not go here. */
static int begin_value(fvj_writer *w)
{
    if (w->failed) return 0;
    if (w->depth == 0) {
        if (w->done) {
            w->failed = 1;
            return 0;
        }
        return 1;
    }
    if (w->stack[w->depth - 1].kind == '{') {
        if (!w->key_pending) {
            w->failed = 1;
            return 0;
        }
        w->key_pending = 0;
        return 1;
    }
    if (w->stack[w->depth - 1].count++ > 0) comma(w);
    newline_indent(w, w->depth);
    return 1;
}

/* After a scalar or a closed container: at depth 0 the document is done. */
static void end_value(fvj_writer *w)
{
    if (w->depth == 0) w->done = 1;
}

static void begin_container(fvj_writer *w, char kind)
{
    if (!begin_value(w)) return;
    if (w->depth == FVJ_DEPTH_MAX) {
        w->failed = 1;
        return;
    }
    put(w, &kind, 1);
    w->stack[w->depth].kind = kind;
    w->stack[w->depth].count = 0;
    w->depth++;
}

static void end_container(fvj_writer *w, char kind)
{
    if (w->failed) return;
    if (w->depth == 0 || w->stack[w->depth - 1].kind != kind || w->key_pending) {
        w->failed = 1;
        return;
    }
    int had_members = w->stack[w->depth - 1].count > 0;
    w->depth--;
    if (had_members) newline_indent(w, w->depth);
    put(w, kind == '{' ? "}" : "]", 1);
    end_value(w);
}

void fvj_begin_object(fvj_writer *w)
{
    begin_container(w, '{');
}

void fvj_end_object(fvj_writer *w)
{
    end_container(w, '{');
}

void fvj_begin_array(fvj_writer *w)
{
    begin_container(w, '[');
}

void fvj_end_array(fvj_writer *w)
{
    end_container(w, '[');
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1fu; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0fu; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07u; }
    else return 0;
    if (len > n) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3fu);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static void write_escaped(fvj_writer *w, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    put(w, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        const char *esc = NULL;
        char ubuf[7];
        size_t seq = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20 || c == 0x7f) {
            memcpy(ubuf, "\\u00", 4);
            ubuf[4] = hex[c >> 4];
            ubuf[5] = hex[c & 15];
            ubuf[6] = '\0';
            esc = ubuf;
        } else if (c >= 0x80) {
            seq = utf8_seq(s + i, n - i);
            if (seq == 0) {
                esc = "\xef\xbf\xbd"; /* U+FFFD for a byte that is not UTF-8 */
                seq = 1;
            }
        }
        if (esc != NULL) {
            put(w, str + run, i - run);
            puts_(w, esc);
            i += seq;
            run = i;
        } else {
            i += seq;
        }
    }
    put(w, str + run, n - run);
    put(w, "\"", 1);
}

void fvj_key(fvj_writer *w, const char *key)
{
    if (w->failed) return;
    if (w->depth == 0 || w->stack[w->depth - 1].kind != '{' || w->key_pending || key == NULL) {
        w->failed = 1;
        return;
    }
    if (w->stack[w->depth - 1].count++ > 0) comma(w);
    newline_indent(w, w->depth);
    write_escaped(w, key, strlen(key));
    puts_(w, w->pretty ? ": " : ":");
    w->key_pending = 1;
}

void fvj_string_n(fvj_writer *w, const char *s, size_t len)
{
    if (s == NULL) {
        fvj_null(w);
        return;
    }
    if (!begin_value(w)) return;
    write_escaped(w, s, len);
    end_value(w);
}

void fvj_string(fvj_writer *w, const char *s)
{
    fvj_string_n(w, s, s ? strlen(s) : 0);
}

void fvj_number(fvj_writer *w, double v)
{
    if (!isfinite(v)) {
        fvj_null(w);
        return;
    }
    if (!begin_value(w)) return;
    /* The shortest of 15 or 17 significant digits that reads back exactly
     * (C locale: fv never calls setlocale, so the point is '.'). */
    char buf[32];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.17g", v);
    puts_(w, buf);
    end_value(w);
}

void fvj_int(fvj_writer *w, int64_t v)
{
    if (!begin_value(w)) return;
    if (fprintf(w->out, "%lld", (long long)v) < 0) w->failed = 1;
    end_value(w);
}

void fvj_bool(fvj_writer *w, int v)
{
    if (!begin_value(w)) return;
    puts_(w, v ? "true" : "false");
    end_value(w);
}

void fvj_null(fvj_writer *w)
{
    if (!begin_value(w)) return;
    puts_(w, "null");
    end_value(w);
}

void fvj_member_string(fvj_writer *w, const char *key, const char *value)
{
    fvj_key(w, key);
    fvj_string(w, value);
}

int fvj_finish(fvj_writer *w)
{
    if (!w->failed && (!w->done || w->depth != 0)) w->failed = 1;
    if (!w->failed) put(w, "\n", 1);
    if (fflush(w->out) != 0 || ferror(w->out)) w->failed = 1;
    return w->failed ? -1 : 0;
}
