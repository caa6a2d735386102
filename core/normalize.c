/*
 * normalize.c - the keys under which two values are "the same" for
 * duplicate detection (fv_normalize): customer names, phone numbers and
 * e-mail addresses.  Pure functions on UTF-8 text, no allocation; the one
 * definition every path uses (fv customer add, fv import, sync, the Java
 * API), so a name imported from a spreadsheet and one typed on a phone get
 * the same key.
 *
 * Malformed UTF-8 is not refused here (the setters refuse it before a
 * value is stored): a byte that does not start a valid sequence is taken
 * as itself, one byte long, and copied.  Every normaliser only drops or
 * shortens characters, so out never needs more than strlen(value) + 1.
 */
#include "dedup.h"

#include <string.h>

/* The code point at s (NUL-terminated); *len its bytes.  A malformed byte
 * decodes as itself, one byte long. */
static uint32_t code_point(const unsigned char *s, size_t *len)
{
    size_t n = s[0] == 0 ? 1 : strnlen((const char *)s, 4);
    size_t k = fv__utf8_seq(s, n);
    if (k <= 1) {
        *len = 1;
        return s[0];
    }
    uint32_t cp = s[0] & (k == 2 ? 0x1fu : k == 3 ? 0x0fu : 0x07u);
    for (size_t i = 1; i < k; i++) cp = cp << 6 | (s[i] & 0x3fu);
    *len = k;
    return cp;
}

/* White space: ASCII, U+00A0 no-break space, U+3000 ideographic space,
 * U+FEFF (a stray BOM, which separates nothing). */
static int is_space(uint32_t cp)
{
    return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0xa0 || cp == 0x3000 || cp == 0xfeff;
}

/* Full-width ASCII (U+FF01..U+FF5E) to its half-width form. */
static uint32_t half_width(uint32_t cp)
{
    return cp >= 0xff01 && cp <= 0xff5e ? cp - 0xfee0 : cp;
}

static uint32_t ascii_lower(uint32_t cp)
{
    return cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp;
}

/* A name: white space trimmed and inner runs collapsed to one space (U+FEFF
 * and the zero-width space U+200B count for nothing), full-width ASCII
 * folded, ASCII letters lower-cased; other characters as they are. */
static size_t norm_name(const unsigned char *in, char *out)
{
    size_t o = 0, len;
    int gap = 0;
    for (const unsigned char *p = in; *p; p += len) {
        uint32_t cp = code_point(p, &len);
        if (cp == 0x200b || cp == 0xfeff) continue;
        if (is_space(cp)) {
            gap = 1;
            continue;
        }
        if (gap && o > 0) out[o++] = ' ';
        gap = 0;
        cp = ascii_lower(half_width(cp));
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else {
            memcpy(out + o, p, len);
            o += len;
        }
    }
    return o;
}

/* A phone number: its digits (full-width ones folded), with a '+' kept
 * only when it comes before the first digit ("+86 138-0000-0000" ->
 * "+8613800000000"; "(021) 5555 0100" -> "02155550100"). */
static size_t norm_phone(const unsigned char *in, char *out)
{
    size_t o = 0, len;
    int plus = 0;
    for (const unsigned char *p = in; *p; p += len) {
        uint32_t cp = half_width(code_point(p, &len));
        if (cp == '+' && o == 0) plus = 1;
        if (cp < '0' || cp > '9') continue;
        if (o == 0 && plus) out[o++] = '+';
        out[o++] = (char)cp;
    }
    return o;
}

/* An e-mail address: white space trimmed from both ends, full-width ASCII
 * folded, ASCII letters lower-cased ("Ana@Example.com " ->
 * "ana@example.com").  Inner characters are kept. */
static size_t norm_email(const unsigned char *in, char *out)
{
    size_t o = 0, end = 0, len;
    for (const unsigned char *p = in; *p; p += len) {
        uint32_t cp = code_point(p, &len);
        if (cp == 0x200b) continue;
        if (is_space(cp)) {
            if (o > 0) out[o++] = ' '; /* kept only if something follows */
            continue;
        }
        cp = ascii_lower(half_width(cp));
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else {
            memcpy(out + o, p, len);
            o += len;
        }
        end = o;
    }
    return end;
}

size_t fv__normalize(fv_norm_kind kind, const char *value, char *out)
{
    const unsigned char *in = (const unsigned char *)value;
    size_t n;
    switch (kind) {
    case FV_NORM_PHONE: n = norm_phone(in, out); break;
    case FV_NORM_EMAIL: n = norm_email(in, out); break;
    default: n = norm_name(in, out); break;
    }
    out[n] = '\0';
    return n;
}

fv_status fv_normalize(fv_norm_kind kind, const char *value, char *out, size_t cap)
{
    if (value == NULL || out == NULL || cap == 0) return FV_EMISUSE;
    if ((unsigned)kind > FV_NORM_EMAIL) return FV_EINVAL;
    if (strlen(value) >= cap) {
        out[0] = '\0';
        return FV_EINVAL;
    }
    (void)fv__normalize(kind, value, out);
    return FV_OK;
}
