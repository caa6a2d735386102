/*
 * wire.c - the streaming codec for sync/fieldvault.proto (see wire.h).
 *
 * Layout: errors and validation shared by both directions; the encoder (a
 * nanopb output stream buffered into the byte sink, with the repeated
 * `changes` field as an encode callback that pulls from the change source
 * and writes one Change submessage at a time; a PushRequest's header is
 * written first, then its changes and trailer by hand, see
 * fieldvault.proto); the decoder; whole-message helpers (the enrolment
 * messages are walked by prescan() first, for messages that name the
 * field); memory buffers.
 *
 * The decoder drives the top level of a message itself, with nanopb's
 * primitives (pb_decode_varint, pb_read) on an input stream whose
 * bytes_left is the remaining budget of FV_CHANGESET_MAX_BYTES, so that
 * nanopb refuses any length that runs past it before reading anything.
 * Doing the top level by hand is what lets it require the header before
 * the first change, the count trailer last, and nothing after it (nanopb's
 * pb_decode accepts fields in any order, and a field after the trailer
 * would just be more message).  Each Change is length-delimited and bounded
 * (FV_WIRE_CHANGE_MAX_BYTES): it is read whole into a fixed buffer, walked
 * once by prescan() for field-by-field error messages (nanopb's own say
 * "string overflow" without saying which string), decoded by pb_decode with
 * the generated descriptor, converted to an fv__change and validated with
 * the same rules the encoder applies (fv__wire_check_change).
 *
 * Relies on: nanopb 0.4 (Debian's libprotobuf-nanopb.a: 16-bit field
 * sizes, no PB_VALIDATE_UTF8, so UTF-8 is checked here), the generated
 * fieldvault.pb.h, and the bounds in change.h / fieldvault.h, which the
 * _Static_asserts below tie to fieldvault.options.
 */
#include "wire.h"

#include "fieldcrypt.h"
#include "policy.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

/* ---- The options file and the C constants must agree ---- */

#define MEMBER_SIZE(type, member) sizeof(((type *)0)->member)
_Static_assert(MEMBER_SIZE(fieldvault_v1_Change, table) == FV_NAME_MAX + 1, "table bound");
_Static_assert(MEMBER_SIZE(fieldvault_v1_Change, field) == FV_NAME_MAX + 1, "field bound");
_Static_assert(MEMBER_SIZE(fieldvault_v1_Change, row_id) == FV_ROWID_LEN, "row_id length");
_Static_assert(MEMBER_SIZE(fieldvault_v1_Change, device_id) == FV_DEVICE_LEN, "device_id length");
_Static_assert(MEMBER_SIZE(fieldvault_v1_Value, kind.text) == FV_FIELD_MAX + 1, "text bound");
_Static_assert(MEMBER_SIZE(fieldvault_v1_Value, kind.sealed.bytes) == FV_SEALED_MAX, "sealed bound");
_Static_assert(MEMBER_SIZE(fieldvault_v1_ChangeSet, origin_device) == FV_DEVICE_LEN, "origin");
_Static_assert(MEMBER_SIZE(fieldvault_v1_PushRequest, device_id) == FV_DEVICE_LEN, "push id");
_Static_assert(MEMBER_SIZE(fieldvault_v1_PullRequest, device_id) == FV_DEVICE_LEN, "pull id");
_Static_assert(MEMBER_SIZE(fieldvault_v1_PushRequest, prev_batch_hash) == FV_WIRE_HASH_LEN,
               "prev_batch_hash length");
_Static_assert(MEMBER_SIZE(fv__push_info, prev_batch_hash) == FV_WIRE_HASH_LEN, "push info");
_Static_assert(MEMBER_SIZE(fieldvault_v1_EnrollRequest, code) == FV_WIRE_NAME_MAX + 1, "code");
_Static_assert(MEMBER_SIZE(fieldvault_v1_EnrollRequest, device_id) == FV_DEVICE_LEN, "enroll id");
_Static_assert(MEMBER_SIZE(fieldvault_v1_EnrollRequest, public_key) == FV_WIRE_PUBKEY_LEN,
               "public_key length");
_Static_assert(MEMBER_SIZE(fieldvault_v1_EnrollRequest, device_name) == FV_WIRE_NAME_MAX + 1,
               "device_name bound");
_Static_assert(MEMBER_SIZE(fieldvault_v1_EnrollResponse, user) == FV_WIRE_NAME_MAX + 1, "user");
_Static_assert(MEMBER_SIZE(fieldvault_v1_EnrollResponse, role) == FV_WIRE_NAME_MAX + 1, "role");
_Static_assert(MEMBER_SIZE(fieldvault_v1_EnrollResponse, team) == FV_WIRE_NAME_MAX + 1, "team");
_Static_assert(MEMBER_SIZE(fieldvault_v1_EnrollResponse, device_id) == FV_DEVICE_LEN, "echo id");
_Static_assert(MEMBER_SIZE(fieldvault_v1_Rejection, message) == FV_WIRE_TEXT_MAX + 1, "rejection");
_Static_assert(MEMBER_SIZE(fieldvault_v1_Error, message) == FV_WIRE_TEXT_MAX + 1, "error msg");
_Static_assert(fieldvault_v1_Change_size <= FV_WIRE_CHANGE_MAX_BYTES, "change bound");
_Static_assert(FV_WIRE_REJECTIONS_MAX * (fieldvault_v1_Rejection_size + 3) + 64 <=
                   FV_WIRE_MESSAGE_MAX_BYTES, "a full PushResponse fits the message bound");
_Static_assert(MEMBER_SIZE(fv__change, data) >= FV_SEALED_MAX + 1, "change.data");
_Static_assert(MEMBER_SIZE(fieldvault_v1_KeysResponse, grants) == FV_WIRE_KEYS_MAX * sizeof(fieldvault_v1_Grant), "keys max");
_Static_assert(MEMBER_SIZE(fieldvault_v1_Grant, team) == FV_NAME_MAX + 1, "grant team");
_Static_assert(FV_SEALED_MAX >= FV_FIELD_MAX, "data holds text and sealed");
_Static_assert(FV_SEALED_MAX >= FV_FIELD_MAX + FV_SEALED_OVERHEAD, "the longest text sealed");
_Static_assert(FV_CHANGESET_MAX_BYTES <= SIZE_MAX / 2, "budget fits size_t");
_Static_assert(FV_CHANGESET_MAX_BYTES <= LONG_MAX, "membuf reads fit long");

/* Bytes buffered between the codec and the byte sink / source. */
#define IO_BUF_BYTES 65536u
/* The largest field number protobuf allows. */
#define MAX_FIELD_NUMBER 536870911u

#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PRINTF_LIKE(fmt, args)
#endif

/* ---- Errors ---- */

PRINTF_LIKE(3, 0)
static void vput_err(char *err, size_t errcap, const char *fmt, va_list ap)
{
    if (err != NULL && errcap > 0) vsnprintf(err, errcap, fmt, ap);
}

PRINTF_LIKE(4, 5)
static fv_status fail(char *err, size_t errcap, fv_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vput_err(err, errcap, fmt, ap);
    va_end(ap);
    return st;
}

static void clear_err(char *err, size_t errcap)
{
    if (err != NULL && errcap > 0) err[0] = '\0';
}

static unsigned long long ull(uint64_t v)
{
    return (unsigned long long)v;
}

/* ---- Validation (both directions) ---- */

/* Well-formed UTF-8: no overlong forms, no surrogates, nothing above
 * U+10FFFF.  Returns n, or the offset of the first bad byte. */
static size_t utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0u) == 0xC0u) {
            k = 1;
            cp = c & 0x1Fu;
            min = 0x80;
        } else if ((c & 0xF0u) == 0xE0u) {
            k = 2;
            cp = c & 0x0Fu;
            min = 0x800;
        } else if ((c & 0xF8u) == 0xF0u) {
            k = 3;
            cp = c & 0x07u;
            min = 0x10000;
        } else {
            return i;
        }
        if (n - i - 1 < k) return i;
        for (size_t j = 1; j <= k; j++) {
            unsigned d = s[i + j];
            if ((d & 0xC0u) != 0x80u) return i;
            cp = (cp << 6) | (d & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) return i;
        i += k + 1;
    }
    return n;
}

/* A NUL-terminated string within cap bytes?  Its length, or cap if not. */
static size_t bounded_len(const char *s, size_t cap)
{
    const char *nul = memchr(s, '\0', cap);
    return nul == NULL ? cap : (size_t)(nul - s);
}

/* Copy a name for a message, printable ASCII only (it may be hostile). */
static void printable(const char *s, size_t n, char *out, size_t outcap)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < outcap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[j++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
    }
    out[j] = '\0';
}

static fv_status check_name(const char *label, const char *name, size_t cap, char *err,
                            size_t errcap)
{
    size_t n = bounded_len(name, cap);
    if (n == cap) return fail(err, errcap, FV_EINVAL, "%s is not NUL-terminated", label);
    if (n == 0) return fail(err, errcap, FV_EINVAL, "%s is empty", label);
    int ok = n <= FV_NAME_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    }
    if (ok) return FV_OK;
    char shown[FV_NAME_MAX + 1];
    printable(name, n, shown, sizeof shown);
    return fail(err, errcap, FV_EINVAL,
                "%s \"%s\" is not a valid name ([a-z_][a-z0-9_]*, at most %d bytes)", label,
                shown, FV_NAME_MAX);
}

static fv_status check_value(const fv__change *c, char *err, size_t errcap)
{
    switch (c->kind) {
    case FV__VAL_NULL:
        return FV_OK;
    case FV__VAL_REAL:
        if (!isfinite(c->real))
            return fail(err, errcap, FV_EINVAL, "real value is not finite");
        return FV_OK;
    case FV__VAL_TEXT: {
        if (c->len > FV_FIELD_MAX)
            return fail(err, errcap, FV_EINVAL, "text value is %zu bytes, over the limit of %d",
                        c->len, FV_FIELD_MAX);
        if (memchr(c->data, '\0', c->len) != NULL)
            return fail(err, errcap, FV_EINVAL, "text value contains a NUL byte");
        size_t bad = utf8_check(c->data, c->len);
        if (bad != c->len)
            return fail(err, errcap, FV_EINVAL, "text value is not valid UTF-8 (at byte %zu)",
                        bad);
        return FV_OK;
    }
    case FV__VAL_SEALED:
        if (c->len > FV_SEALED_MAX)
            return fail(err, errcap, FV_EINVAL,
                        "sealed value is %zu bytes, over the limit of %d", c->len,
                        FV_SEALED_MAX);
        return FV_OK;
    }
    return fail(err, errcap, FV_EINVAL, "unknown value kind %d", (int)c->kind);
}

fv_status fv__wire_check_change(const fv__change *c, char *err, size_t errcap)
{
    if (c == NULL) return fail(err, errcap, FV_EMISUSE, "no change");
    fv_status st = check_name("table name", c->table, sizeof c->table, err, errcap);
    if (st == FV_OK) st = check_name("field name", c->field, sizeof c->field, err, errcap);
    if (st == FV_OK) st = check_value(c, err, errcap);
    if (st == FV_OK && strcmp(c->field, FV_FIELD_DELETED) == 0 &&
        !(c->kind == FV__VAL_REAL && (c->real == 0.0 || c->real == 1.0)))
        st = fail(err, errcap, FV_EINVAL, "%s must be real 0 or 1", FV_FIELD_DELETED);
    return st;
}

/* ---- Conversions between fv__change and the generated struct ---- */

static void change_to_pb(const fv__change *c, fieldvault_v1_Change *p)
{
    memset(p, 0, sizeof *p);
    memcpy(p->table, c->table, sizeof p->table);
    memcpy(p->field, c->field, sizeof p->field);
    memcpy(p->row_id, c->row_id, sizeof p->row_id);
    memcpy(p->device_id, c->device, sizeof p->device_id);
    p->hlc = c->hlc;
    p->base_hlc = c->base_hlc;
    p->device_seq = c->device_seq;
    p->has_value = c->kind != FV__VAL_NULL;
    switch (c->kind) {
    case FV__VAL_TEXT:
        p->value.which_kind = fieldvault_v1_Value_text_tag;
        memcpy(p->value.kind.text, c->data, c->len);
        p->value.kind.text[c->len] = '\0';
        break;
    case FV__VAL_REAL:
        p->value.which_kind = fieldvault_v1_Value_real_tag;
        p->value.kind.real = c->real;
        break;
    case FV__VAL_SEALED:
        p->value.which_kind = fieldvault_v1_Value_sealed_tag;
        p->value.kind.sealed.size = (pb_size_t)c->len;
        memcpy(p->value.kind.sealed.bytes, c->data, c->len);
        break;
    case FV__VAL_NULL:
        break;
    }
}

/* text_len: the text's length on the wire (nanopb keeps an embedded NUL,
 * which strlen would hide; the check refuses it). */
static void pb_to_change(const fieldvault_v1_Change *p, size_t text_len, fv__change *c)
{
    memset(c, 0, offsetof(fv__change, data));
    memcpy(c->table, p->table, sizeof c->table);
    memcpy(c->field, p->field, sizeof c->field);
    memcpy(c->row_id, p->row_id, sizeof c->row_id);
    memcpy(c->device, p->device_id, sizeof c->device);
    c->hlc = p->hlc;
    c->base_hlc = p->base_hlc;
    c->device_seq = p->device_seq;
    c->kind = FV__VAL_NULL;
    c->len = 0;
    switch (p->has_value ? p->value.which_kind : 0) {
    case fieldvault_v1_Value_text_tag:
        c->kind = FV__VAL_TEXT;
        c->len = text_len;
        memcpy(c->data, p->value.kind.text, text_len);
        break;
    case fieldvault_v1_Value_real_tag:
        c->kind = FV__VAL_REAL;
        c->real = p->value.kind.real;
        break;
    case fieldvault_v1_Value_sealed_tag:
        c->kind = FV__VAL_SEALED;
        c->len = p->value.kind.sealed.size;
        memcpy(c->data, p->value.kind.sealed.bytes, c->len);
        break;
    default:
        break;
    }
    c->data[c->len] = '\0';
}

/* ---- Encoder ---- */

typedef struct enc {
    const char *what; /* "change set", for messages */
    fv__change_source src;
    void *src_ctx;
    fv__byte_sink sink;
    void *sink_ctx;
    uint64_t n;       /* changes written */
    uint64_t *count;  /* the message's trailer, set after the last change */
    bool *has_count;
    fv_status st;     /* first error */
    char *err;
    size_t errcap;
    size_t wlen;      /* bytes pending in wbuf */
    fv__change ch;
    fieldvault_v1_Change pb;
    unsigned char wbuf[IO_BUF_BYTES];
} enc;

PRINTF_LIKE(3, 4)
static void efail(enc *e, fv_status st, const char *fmt, ...)
{
    if (e->st != FV_OK) return;
    e->st = st;
    va_list ap;
    va_start(ap, fmt);
    vput_err(e->err, e->errcap, fmt, ap);
    va_end(ap);
}

static bool flush(enc *e)
{
    if (e->wlen == 0) return true;
    if (e->sink(e->sink_ctx, e->wbuf, e->wlen) != 0) {
        efail(e, FV_EIO, "writing the %s: the byte sink failed", e->what);
        return false;
    }
    e->wlen = 0;
    return true;
}

static bool write_cb(pb_ostream_t *s, const pb_byte_t *buf, size_t count)
{
    enc *e = s->state;
    while (count > 0) {
        if (e->wlen == sizeof e->wbuf && !flush(e)) return false;
        size_t n = sizeof e->wbuf - e->wlen;
        if (n > count) n = count;
        memcpy(e->wbuf + e->wlen, buf, n);
        e->wlen += n;
        buf += n;
        count -= n;
    }
    return true;
}

/* One Change submessage (field number tag) per change of the source;
 * pb_encode_submessage sizes each Change itself. */
static bool write_changes(pb_ostream_t *s, enc *e, uint32_t tag)
{
    for (;;) {
        int r = e->src(e->src_ctx, &e->ch);
        if (r == 0) break;
        if (r != 1) {
            efail(e, FV_EIO, "the change source failed after %llu changes", ull(e->n));
            return false;
        }
        char why[160];
        if (fv__wire_check_change(&e->ch, why, sizeof why) != FV_OK) {
            efail(e, FV_EINVAL, "change #%llu: %s", ull(e->n), why);
            return false;
        }
        change_to_pb(&e->ch, &e->pb);
        if (!pb_encode_tag(s, PB_WT_STRING, tag) ||
            !pb_encode_submessage(s, fieldvault_v1_Change_fields, &e->pb))
            return false;
        e->n++;
    }
    return true;
}

/* The `changes` field as a callback: the changes, then the trailer's
 * value.  pb_encode calls this once (a top-level callback is not sized). */
static bool encode_changes(pb_ostream_t *s, const pb_field_t *field, void *const *arg)
{
    enc *e = *arg;
    if (!write_changes(s, e, field->tag)) return false;
    *e->count = e->n;
    *e->has_count = true;
    return true;
}

/* How encode_stream lays out a message. */
typedef struct stream_layout {
    /* Field-number order: msg's `changes` callback (*changes) and `count`
     * trailer (*count, *has_count) are given and pb_encode writes them in
     * their place. */
    pb_callback_t *changes;
    uint64_t *count;
    bool *has_count;
    /* Header first (changes == NULL): msg holds the header fields only (its
     * changes callback unset, its trailer absent); pb_encode writes them,
     * then come the changes (changes_tag) and the trailer (count_tag). */
    uint32_t changes_tag, count_tag;
} stream_layout;

/* Encode msg (fields), pulling the changes from src, laid out as *lay
 * says. */
static fv_status encode_stream(const char *what, const pb_msgdesc_t *fields, const void *msg,
                               const stream_layout *lay, fv__change_source src, void *src_ctx,
                               fv__byte_sink sink, void *sink_ctx, uint64_t *count_out,
                               char *err, size_t errcap)
{
    clear_err(err, errcap);
    if (src == NULL || sink == NULL)
        return fail(err, errcap, FV_EMISUSE, "encoding a %s: no change source or byte sink",
                    what);
    enc *e = malloc(sizeof *e);
    if (e == NULL) return fail(err, errcap, FV_ENOMEM, "out of memory");
    e->what = what;
    e->src = src;
    e->src_ctx = src_ctx;
    e->sink = sink;
    e->sink_ctx = sink_ctx;
    e->n = 0;
    e->count = lay->count;
    e->has_count = lay->has_count;
    e->st = FV_OK;
    e->err = err;
    e->errcap = errcap;
    e->wlen = 0;
    if (lay->changes != NULL) {
        lay->changes->funcs.encode = encode_changes;
        lay->changes->arg = e;
    }

    pb_ostream_t os = {write_cb, e, FV_CHANGESET_MAX_BYTES, 0, NULL};
    bool ok = pb_encode(&os, fields, msg);
    if (ok && lay->changes == NULL)
        ok = write_changes(&os, e, lay->changes_tag) &&
             pb_encode_tag(&os, PB_WT_VARINT, lay->count_tag) && pb_encode_varint(&os, e->n);
    ok = ok && flush(e);
    fv_status st = e->st;
    if (ok) {
        st = FV_OK;
        if (count_out != NULL) *count_out = e->n;
    } else if (st == FV_OK && strcmp(PB_GET_ERROR(&os), "stream full") == 0) {
        st = fail(err, errcap, FV_EINVAL, "the %s would exceed %zu bytes "
                  "(FV_CHANGESET_MAX_BYTES) at change #%llu", what, FV_CHANGESET_MAX_BYTES,
                  ull(e->n));
    } else if (st == FV_OK) {
        st = fail(err, errcap, FV_EINTERNAL, "encoding the %s: %s", what, PB_GET_ERROR(&os));
    }
    free(e);
    return st;
}

fv_status fv__wire_encode_changeset(const unsigned char origin[FV_DEVICE_LEN],
                                    fv__change_source src, void *src_ctx, fv__byte_sink sink,
                                    void *sink_ctx, uint64_t *count_out, char *err,
                                    size_t errcap)
{
    if (origin == NULL) return fail(err, errcap, FV_EMISUSE, "no origin device");
    fieldvault_v1_ChangeSet m = fieldvault_v1_ChangeSet_init_zero;
    m.version = FV_WIRE_VERSION;
    memcpy(m.origin_device, origin, sizeof m.origin_device);
    stream_layout lay = {&m.changes, &m.count, &m.has_count, 0, 0};
    return encode_stream("change set", fieldvault_v1_ChangeSet_fields, &m, &lay, src, src_ctx,
                         sink, sink_ctx, count_out, err, errcap);
}

fv_status fv__wire_encode_push_request(const fv__push_info *hdr, fv__change_source src,
                                       void *src_ctx, fv__byte_sink sink, void *sink_ctx,
                                       uint64_t *count_out, char *err, size_t errcap)
{
    if (hdr == NULL) return fail(err, errcap, FV_EMISUSE, "no push header");
    fieldvault_v1_PushRequest m = fieldvault_v1_PushRequest_init_zero;
    memcpy(m.device_id, hdr->device_id, sizeof m.device_id);
    m.batch_seq = hdr->batch_seq;
    memcpy(m.prev_batch_hash, hdr->prev_batch_hash, sizeof m.prev_batch_hash);
    /* Header first: prev_batch_hash (4) is numbered after the changes (3)
     * but the decoder needs it before them. */
    stream_layout lay = {NULL, NULL, NULL, fieldvault_v1_PushRequest_changes_tag,
                         fieldvault_v1_PushRequest_count_tag};
    return encode_stream("push request", fieldvault_v1_PushRequest_fields, &m, &lay, src,
                         src_ctx, sink, sink_ctx, count_out, err, errcap);
}

fv_status fv__wire_encode_pull_response(const fv__pull_info *hdr, fv__change_source src,
                                        void *src_ctx, fv__byte_sink sink, void *sink_ctx,
                                        uint64_t *count_out, char *err, size_t errcap)
{
    if (hdr == NULL) return fail(err, errcap, FV_EMISUSE, "no pull header");
    fieldvault_v1_PullResponse m = fieldvault_v1_PullResponse_init_zero;
    m.cursor = hdr->cursor;
    m.more = hdr->more != 0;
    stream_layout lay = {&m.changes, &m.count, &m.has_count, 0, 0};
    return encode_stream("pull response", fieldvault_v1_PullResponse_fields, &m, &lay, src,
                         src_ctx, sink, sink_ctx, count_out, err, errcap);
}

/* ---- Decoder: the byte reader under nanopb's input stream ---- */

typedef struct reader {
    fv__byte_source src;
    void *ctx;
    size_t pos, len;  /* unread bytes: buf[pos..len) */
    size_t consumed;  /* bytes handed to the decoder so far */
    int eof, failed;
    unsigned char buf[IO_BUF_BYTES];
} reader;

/* Make a byte available: 1, or 0 at the end of the input, -1 on error. */
static int reader_fill(reader *r)
{
    if (r->pos < r->len) return 1;
    if (r->failed) return -1;
    if (r->eof) return 0;
    long n = r->src(r->ctx, r->buf, sizeof r->buf);
    if (n < 0 || (unsigned long)n > sizeof r->buf) {
        r->failed = 1;
        return -1;
    }
    if (n == 0) {
        r->eof = 1;
        return 0;
    }
    r->pos = 0;
    r->len = (size_t)n;
    return 1;
}

/* nanopb's read callback.  At the end of the input it sets bytes_left to 0
 * and fails, which nanopb reads as a clean EOF where one is allowed. */
static bool read_cb(pb_istream_t *s, pb_byte_t *out, size_t count)
{
    reader *r = s->state;
    while (count > 0) {
        int f = reader_fill(r);
        if (f <= 0) {
            if (f == 0) s->bytes_left = 0;
            return false;
        }
        size_t n = r->len - r->pos;
        if (n > count) n = count;
        if (out != NULL) {
            memcpy(out, r->buf + r->pos, n);
            out += n;
        }
        r->pos += n;
        r->consumed += n;
        count -= n;
    }
    return true;
}

/* ---- Decoder: message descriptions ---- */

/* HF_ID: FV_DEVICE_LEN bytes; HF_HASH: FV_WIRE_HASH_LEN bytes. */
typedef enum hf_type { HF_VERSION, HF_U64, HF_BOOL, HF_ID, HF_HASH } hf_type;

/* A header field: a scalar, an id or a hash stored at `off` in the info
 * struct. */
typedef struct hfield {
    uint32_t tag;
    hf_type type;
    const char *name;
    size_t off;
    int required; /* must come before the first change */
} hfield;

typedef struct stream_desc {
    const char *what;
    uint32_t changes_tag;
    uint32_t count_tag;
    size_t count_off;
    const hfield *fields;
    size_t nfields;
} stream_desc;

static const hfield changeset_fields[] = {
    {fieldvault_v1_ChangeSet_version_tag, HF_VERSION, "version",
     offsetof(fv__changeset_info, version), 1},
    {fieldvault_v1_ChangeSet_origin_device_tag, HF_ID, "origin_device",
     offsetof(fv__changeset_info, origin), 1},
};
static const stream_desc changeset_desc = {
    "change set", fieldvault_v1_ChangeSet_changes_tag, fieldvault_v1_ChangeSet_count_tag,
    offsetof(fv__changeset_info, count), changeset_fields, 2};

static const hfield push_fields[] = {
    {fieldvault_v1_PushRequest_device_id_tag, HF_ID, "device_id",
     offsetof(fv__push_info, device_id), 1},
    {fieldvault_v1_PushRequest_batch_seq_tag, HF_U64, "batch_seq",
     offsetof(fv__push_info, batch_seq), 0},
    {fieldvault_v1_PushRequest_prev_batch_hash_tag, HF_HASH, "prev_batch_hash",
     offsetof(fv__push_info, prev_batch_hash), 1},
};
static const stream_desc push_desc = {
    "push request", fieldvault_v1_PushRequest_changes_tag, fieldvault_v1_PushRequest_count_tag,
    offsetof(fv__push_info, count), push_fields, 3};

static const hfield pull_fields[] = {
    {fieldvault_v1_PullResponse_cursor_tag, HF_U64, "cursor", offsetof(fv__pull_info, cursor),
     0},
    {fieldvault_v1_PullResponse_more_tag, HF_BOOL, "more", offsetof(fv__pull_info, more), 0},
};
static const stream_desc pull_desc = {
    "pull response", fieldvault_v1_PullResponse_changes_tag,
    fieldvault_v1_PullResponse_count_tag, offsetof(fv__pull_info, count), pull_fields, 2};

/* Fields of a Change and of a Value, for prescan(). */
typedef struct pfield {
    uint32_t tag;
    pb_wire_type_t wt;
    size_t min, max; /* length bounds of a length-delimited field */
    const char *name;
} pfield;

/* Field numbers of a Change are below 32 (scan.seen is a bit set). */
_Static_assert(fieldvault_v1_Change_device_seq_tag < 32, "Change field numbers");
static const pfield change_pfields[] = {
    {fieldvault_v1_Change_table_tag, PB_WT_STRING, 0, FV_NAME_MAX, "table name"},
    {fieldvault_v1_Change_row_id_tag, PB_WT_STRING, FV_ROWID_LEN, FV_ROWID_LEN, "row_id"},
    {fieldvault_v1_Change_field_tag, PB_WT_STRING, 0, FV_NAME_MAX, "field name"},
    {fieldvault_v1_Change_value_tag, PB_WT_STRING, 0, FV_WIRE_CHANGE_MAX_BYTES, "value"},
    {fieldvault_v1_Change_hlc_tag, PB_WT_64BIT, 0, 0, "hlc"},
    {fieldvault_v1_Change_base_hlc_tag, PB_WT_64BIT, 0, 0, "base_hlc"},
    {fieldvault_v1_Change_device_id_tag, PB_WT_STRING, FV_DEVICE_LEN, FV_DEVICE_LEN,
     "device_id"},
    {fieldvault_v1_Change_device_seq_tag, PB_WT_VARINT, 0, 0, "device_seq"},
};

static const pfield value_pfields[] = {
    {fieldvault_v1_Value_text_tag, PB_WT_STRING, 0, FV_FIELD_MAX, "text value"},
    {fieldvault_v1_Value_real_tag, PB_WT_64BIT, 0, 0, "real value"},
    {fieldvault_v1_Value_sealed_tag, PB_WT_STRING, 0, FV_SEALED_MAX, "sealed value"},
};

static const char *wt_name(unsigned wt)
{
    switch (wt) {
    case PB_WT_VARINT: return "varint";
    case PB_WT_64BIT: return "64-bit";
    case PB_WT_STRING: return "length-delimited";
    case PB_WT_32BIT: return "32-bit";
    default: return "invalid";
    }
}

/* ---- Decoder: one Change ---- */

typedef struct scan {
    unsigned seen;   /* bit t: the message's field number t present */
    size_t text_len; /* length of the last text value on the wire */
    size_t lens[32]; /* wire length of the last length-delimited field t */
} scan;

/*
 * Walk one encoded Change (or, nested, its Value; or a whole-message
 * helper's message) in buf[0..len) and check every known field's wire type
 * and length against its bound, so that an error names the field.  Unknown
 * fields are skipped.  Nothing is copied.  Known field numbers are below 32
 * (out->seen and out->lens, which describe the outer message).
 */
static fv_status prescan(const unsigned char *buf, size_t len, const pfield *pf, size_t npf,
                         scan *out, char *err, size_t errcap)
{
    pb_istream_t s = pb_istream_from_buffer(buf, len);
    while (s.bytes_left > 0) {
        size_t at = len - s.bytes_left;
        uint64_t key;
        if (!pb_decode_varint(&s, &key))
            return fail(err, errcap, FV_EPROTO, "malformed field key at offset %zu: %s", at,
                        PB_GET_ERROR(&s));
        uint64_t tag = key >> 3;
        unsigned wt = (unsigned)(key & 7u);
        if (tag == 0)
            return fail(err, errcap, FV_EPROTO, "invalid field number 0 at offset %zu", at);
        size_t i = 0;
        while (i < npf && pf[i].tag != tag) i++;
        if (i == npf) { /* unknown: a later revision's field */
            if (!pb_skip_field(&s, (pb_wire_type_t)wt))
                return fail(err, errcap, FV_EPROTO, "unknown field %llu at offset %zu: %s",
                            ull(tag), at, PB_GET_ERROR(&s));
            continue;
        }
        if (wt != (unsigned)pf[i].wt)
            return fail(err, errcap, FV_EPROTO, "%s has wire type %u (%s), expected %s",
                        pf[i].name, wt, wt_name(wt), wt_name(pf[i].wt));
        bool ok = true;
        uint64_t n = 0;
        switch (pf[i].wt) {
        case PB_WT_VARINT: ok = pb_decode_varint(&s, &n); break;
        case PB_WT_64BIT: ok = pb_read(&s, NULL, 8); break;
        default:
            if (!pb_decode_varint(&s, &n)) {
                ok = false;
                break;
            }
            if (pf[i].min == pf[i].max && n != pf[i].min)
                return fail(err, errcap, FV_EPROTO, "%s is %llu bytes, must be %zu",
                            pf[i].name, ull(n), pf[i].min);
            if (n > pf[i].max)
                return fail(err, errcap, FV_EPROTO, "%s is %llu bytes, over the limit of %zu",
                            pf[i].name, ull(n), pf[i].max);
            if (n > s.bytes_left)
                return fail(err, errcap, FV_EPROTO, "%s runs past the end of the change",
                            pf[i].name);
            if (pf == change_pfields && tag == fieldvault_v1_Change_value_tag) {
                fv_status st = prescan(buf + (len - s.bytes_left), (size_t)n, value_pfields,
                                       sizeof value_pfields / sizeof *value_pfields, out, err,
                                       errcap);
                if (st != FV_OK) return st;
            } else if (pf == value_pfields && tag == fieldvault_v1_Value_text_tag) {
                out->text_len = (size_t)n;
            }
            if (pf != value_pfields) out->lens[tag] = (size_t)n;
            ok = pb_read(&s, NULL, (size_t)n);
        }
        if (!ok)
            return fail(err, errcap, FV_EPROTO, "malformed %s: %s", pf[i].name,
                        PB_GET_ERROR(&s));
        if (pf != value_pfields) out->seen |= 1u << tag;
    }
    return FV_OK;
}

/* buf[0..len) is one Change: check, decode and validate it into *c. */
static fv_status decode_one_change(const unsigned char *buf, size_t len, fieldvault_v1_Change *p,
                                   fv__change *c, char *err, size_t errcap)
{
    scan sc = {0, 0, {0}};
    fv_status st = prescan(buf, len, change_pfields,
                           sizeof change_pfields / sizeof *change_pfields, &sc, err, errcap);
    if (st != FV_OK) return st;
    if (!(sc.seen & (1u << fieldvault_v1_Change_row_id_tag)))
        return fail(err, errcap, FV_EPROTO, "row_id missing");
    if (!(sc.seen & (1u << fieldvault_v1_Change_device_id_tag)))
        return fail(err, errcap, FV_EPROTO, "device_id missing");
    pb_istream_t s = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&s, fieldvault_v1_Change_fields, p))
        return fail(err, errcap, FV_EPROTO, "malformed: %s", PB_GET_ERROR(&s));
    pb_to_change(p, sc.text_len, c);
    if (fv__wire_check_change(c, err, errcap) != FV_OK) return FV_EPROTO;
    return FV_OK;
}

/* ---- Decoder: the top level ---- */

typedef struct dec {
    const stream_desc *d;
    reader rd;
    pb_istream_t s; /* over rd; bytes_left = what remains of the budget */
    fv__change_sink sink;
    void *sink_ctx;
    uint64_t n;     /* changes delivered */
    unsigned seen;  /* bit i: d->fields[i] seen */
    int have_count;
    uint64_t count;
    fv_status st;
    char *err;
    size_t errcap;
    union {
        fv__changeset_info cs;
        fv__push_info push;
        fv__pull_info pull;
    } info;
    fieldvault_v1_Change pb;
    fv__change ch;
    unsigned char chbuf[FV_WIRE_CHANGE_MAX_BYTES];
} dec;

PRINTF_LIKE(3, 4)
static fv_status dfail(dec *x, fv_status st, const char *fmt, ...)
{
    if (x->st != FV_OK) return x->st;
    x->st = st;
    va_list ap;
    va_start(ap, fmt);
    vput_err(x->err, x->errcap, fmt, ap);
    va_end(ap);
    return st;
}

static fv_status too_big(dec *x)
{
    return dfail(x, FV_EPROTO, "the %s exceeds %zu bytes (FV_CHANGESET_MAX_BYTES)", x->d->what,
                 FV_CHANGESET_MAX_BYTES);
}

/* A read on the main stream failed while reading `what` (starting at byte
 * `at`): say why. */
static fv_status stream_fail(dec *x, const char *what, size_t at)
{
    if (x->rd.failed)
        return dfail(x, FV_EIO, "reading the %s: the byte source failed at byte %zu",
                     x->d->what, x->rd.consumed);
    if (x->rd.eof)
        return dfail(x, FV_EPROTO, "truncated: the input ends inside %s (which starts at byte "
                     "%zu; %zu bytes read)", what, at, x->rd.consumed);
    if (strcmp(PB_GET_ERROR(&x->s), "end-of-stream") == 0) return too_big(x);
    return dfail(x, FV_EPROTO, "malformed %s at byte %zu: %s", what, at, PB_GET_ERROR(&x->s));
}

/* The length of a length-delimited field (the caller checks it). */
static fv_status read_len(dec *x, const char *what, size_t at, uint64_t *len)
{
    if (!pb_decode_varint(&x->s, len)) return stream_fail(x, what, at);
    return FV_OK;
}

static fv_status require_header(dec *x, const char *when)
{
    for (size_t i = 0; i < x->d->nfields; i++)
        if (x->d->fields[i].required && !(x->seen & (1u << i))) {
            if (x->d->fields[i].type == HF_VERSION)
                return dfail(x, FV_EPROTO, "unsupported version: no version field %s (this "
                             "build reads version %u)", when, FV_WIRE_VERSION);
            return dfail(x, FV_EPROTO, "%s missing %s", x->d->fields[i].name, when);
        }
    return FV_OK;
}

static fv_status decode_change(dec *x, unsigned wt, size_t at)
{
    char what[48];
    snprintf(what, sizeof what, "change #%llu", ull(x->n));
    if (wt != PB_WT_STRING)
        return dfail(x, FV_EPROTO, "%s at byte %zu has wire type %u (%s), expected %s", what,
                     at, wt, wt_name(wt), wt_name(PB_WT_STRING));
    if (x->n == 0 && require_header(x, "before the first change") != FV_OK) return x->st;
    uint64_t len;
    if (read_len(x, what, at, &len) != FV_OK) return x->st;
    if (len > FV_WIRE_CHANGE_MAX_BYTES)
        return dfail(x, FV_EPROTO, "%s at byte %zu is %llu bytes, over the limit of %u", what,
                     at, ull(len), FV_WIRE_CHANGE_MAX_BYTES);
    if (len > x->s.bytes_left) return too_big(x);
    if (!pb_read(&x->s, x->chbuf, (size_t)len)) return stream_fail(x, what, at);
    char why[200];
    if (decode_one_change(x->chbuf, (size_t)len, &x->pb, &x->ch, why, sizeof why) != FV_OK)
        return dfail(x, FV_EPROTO, "%s (at byte %zu): %s", what, at, why);
    clear_err(x->err, x->errcap);
    if (x->sink(x->sink_ctx, &x->ch, x->err, x->errcap) != 0) {
        if (x->err != NULL && x->errcap > 0 && x->err[0] != '\0') /* the sink's message */
            return x->st = FV_EPROTO;
        return dfail(x, FV_EPROTO, "%s was refused by the change sink", what);
    }
    x->n++;
    return FV_OK;
}

static fv_status decode_count(dec *x, unsigned wt, size_t at)
{
    if (wt != PB_WT_VARINT)
        return dfail(x, FV_EPROTO, "count trailer at byte %zu has wire type %u (%s), "
                     "expected varint", at, wt, wt_name(wt));
    if (!pb_decode_varint(&x->s, &x->count)) return stream_fail(x, "count trailer", at);
    x->have_count = 1;
    return FV_OK;
}

static fv_status decode_header(dec *x, size_t i, unsigned wt, size_t at)
{
    const hfield *h = &x->d->fields[i];
    unsigned char *dst = (unsigned char *)&x->info + h->off;
    if (x->seen & (1u << i))
        return dfail(x, FV_EPROTO, "duplicate field %s at byte %zu", h->name, at);
    x->seen |= 1u << i;
    int bytes = h->type == HF_ID || h->type == HF_HASH;
    unsigned want = bytes ? PB_WT_STRING : PB_WT_VARINT;
    if (wt != want)
        return dfail(x, FV_EPROTO, "field %s at byte %zu has wire type %u (%s), expected %s",
                     h->name, at, wt, wt_name(wt), wt_name(want));
    uint64_t v;
    if (bytes) {
        size_t need = h->type == HF_ID ? FV_DEVICE_LEN : FV_WIRE_HASH_LEN;
        if (read_len(x, h->name, at, &v) != FV_OK) return x->st;
        if (v != need)
            return dfail(x, FV_EPROTO, "%s is %llu bytes, must be %zu", h->name, ull(v), need);
        if (!pb_read(&x->s, dst, need)) return stream_fail(x, h->name, at);
        return FV_OK;
    }
    if (!pb_decode_varint(&x->s, &v)) return stream_fail(x, h->name, at);
    if (h->type == HF_VERSION) {
        if (v != FV_WIRE_VERSION)
            return dfail(x, FV_EPROTO, "unsupported version %llu (this build reads version %u)",
                         ull(v), FV_WIRE_VERSION);
        uint32_t v32 = (uint32_t)v;
        memcpy(dst, &v32, sizeof v32);
    } else if (h->type == HF_BOOL) {
        int b = v != 0;
        memcpy(dst, &b, sizeof b);
    } else {
        memcpy(dst, &v, sizeof v);
    }
    return FV_OK;
}

/* A field this revision does not know: skip it, within the budget. */
static fv_status skip_unknown(dec *x, uint64_t tag, unsigned wt, size_t at)
{
    char what[48];
    snprintf(what, sizeof what, "field %llu", ull(tag));
    uint64_t len;
    switch (wt) {
    case PB_WT_VARINT:
        if (!pb_decode_varint(&x->s, &len)) return stream_fail(x, what, at);
        return FV_OK;
    case PB_WT_64BIT: len = 8; break;
    case PB_WT_32BIT: len = 4; break;
    default: /* PB_WT_STRING; the caller refused the others */
        if (read_len(x, what, at, &len) != FV_OK) return x->st;
        if (len > x->s.bytes_left) return too_big(x);
        break;
    }
    while (len > 0) {
        size_t n = len < sizeof x->chbuf ? (size_t)len : sizeof x->chbuf;
        if (!pb_read(&x->s, x->chbuf, n)) return stream_fail(x, what, at);
        len -= n;
    }
    return FV_OK;
}

static fv_status decode_field(dec *x, size_t at)
{
    uint64_t key;
    if (!pb_decode_varint(&x->s, &key)) return stream_fail(x, "field key", at);
    uint64_t tag = key >> 3;
    unsigned wt = (unsigned)(key & 7u);
    if (tag == 0 || tag > MAX_FIELD_NUMBER)
        return dfail(x, FV_EPROTO, "malformed input at byte %zu: invalid field number %llu", at,
                     ull(tag));
    if (wt != PB_WT_VARINT && wt != PB_WT_64BIT && wt != PB_WT_STRING && wt != PB_WT_32BIT)
        return dfail(x, FV_EPROTO, "malformed input at byte %zu: invalid wire type %u "
                     "(field %llu)", at, wt, ull(tag));
    if (tag == x->d->changes_tag) return decode_change(x, wt, at);
    if (tag == x->d->count_tag) return decode_count(x, wt, at);
    for (size_t i = 0; i < x->d->nfields; i++)
        if (x->d->fields[i].tag == tag) return decode_header(x, i, wt, at);
    return skip_unknown(x, tag, wt, at);
}

static fv_status decode_stream(dec *x)
{
    for (;;) {
        size_t at = x->rd.consumed;
        int f = reader_fill(&x->rd);
        if (f < 0) return stream_fail(x, "field key", at);
        if (f == 0) break;
        if (x->have_count)
            return dfail(x, FV_EPROTO, "trailing data after the count trailer (at byte %zu)",
                         at);
        if (x->s.bytes_left == 0) return too_big(x);
        if (decode_field(x, at) != FV_OK) return x->st;
    }
    if (x->rd.consumed == 0)
        return dfail(x, FV_EPROTO, "truncated: empty input (not a %s)", x->d->what);
    if (!x->have_count)
        return dfail(x, FV_EPROTO, "truncated: no count trailer after %llu changes "
                     "(%zu bytes read)", ull(x->n), x->rd.consumed);
    if (x->count != x->n)
        return dfail(x, FV_EPROTO, "count mismatch: the trailer says %llu changes but %llu "
                     "were read", ull(x->count), ull(x->n));
    if (require_header(x, "in the whole message") != FV_OK) return x->st;
    memcpy((unsigned char *)&x->info + x->d->count_off, &x->count, sizeof x->count);
    return FV_OK;
}

static fv_status decode_common(const stream_desc *d, void *info, size_t info_size,
                               fv__byte_source src, void *src_ctx, fv__change_sink sink,
                               void *sink_ctx, char *err, size_t errcap)
{
    clear_err(err, errcap);
    if (src == NULL || sink == NULL)
        return fail(err, errcap, FV_EMISUSE, "decoding a %s: no byte source or change sink",
                    d->what);
    dec *x = calloc(1, sizeof *x);
    if (x == NULL) return fail(err, errcap, FV_ENOMEM, "out of memory");
    x->d = d;
    x->rd.src = src;
    x->rd.ctx = src_ctx;
    x->s.callback = read_cb;
    x->s.state = &x->rd;
    x->s.bytes_left = FV_CHANGESET_MAX_BYTES;
    x->s.errmsg = NULL;
    x->sink = sink;
    x->sink_ctx = sink_ctx;
    x->st = FV_OK;
    x->err = err;
    x->errcap = errcap;
    fv_status st = decode_stream(x);
    if (st == FV_OK && info != NULL) memcpy(info, &x->info, info_size);
    free(x);
    return st;
}

fv_status fv__wire_decode_changeset(fv__byte_source src, void *src_ctx, fv__change_sink sink,
                                    void *sink_ctx, fv__changeset_info *info, char *err,
                                    size_t errcap)
{
    return decode_common(&changeset_desc, info, sizeof *info, src, src_ctx, sink, sink_ctx,
                         err, errcap);
}

fv_status fv__wire_decode_push_request(fv__byte_source src, void *src_ctx,
                                       fv__change_sink sink, void *sink_ctx,
                                       fv__push_info *info, char *err, size_t errcap)
{
    return decode_common(&push_desc, info, sizeof *info, src, src_ctx, sink, sink_ctx, err,
                         errcap);
}

fv_status fv__wire_decode_pull_response(fv__byte_source src, void *src_ctx,
                                        fv__change_sink sink, void *sink_ctx,
                                        fv__pull_info *info, char *err, size_t errcap)
{
    return decode_common(&pull_desc, info, sizeof *info, src, src_ctx, sink, sink_ctx, err,
                         errcap);
}

/* ---- Whole-message helpers ---- */

/* A message string: NUL-terminated within cap, valid UTF-8. */
static fv_status check_text(const char *what, const char *s, size_t cap, fv_status st,
                            char *err, size_t errcap)
{
    size_t n = bounded_len(s, cap);
    if (n == cap) return fail(err, errcap, st, "%s is not NUL-terminated", what);
    size_t bad = utf8_check((const unsigned char *)s, n);
    if (bad != n)
        return fail(err, errcap, st, "%s is not valid UTF-8 (at byte %zu)", what, bad);
    return FV_OK;
}

static fv_status check_rejections(const fieldvault_v1_Rejection *r, size_t n, fv_status st,
                                 char *err, size_t errcap)
{
    if (n > FV_WIRE_REJECTIONS_MAX)
        return fail(err, errcap, st, "%zu rejections, over the limit of %d", n,
                    FV_WIRE_REJECTIONS_MAX);
    for (size_t i = 0; i < n; i++) {
        char what[48];
        snprintf(what, sizeof what, "rejection #%zu message", i);
        fv_status res = check_text(what, r[i].message, sizeof r[i].message, st, err, errcap);
        if (res != FV_OK) return res;
    }
    return FV_OK;
}

/* PushResponse.rejections, from and to the caller's array. */
typedef struct rej_array {
    fieldvault_v1_Rejection *r;
    size_t n, cap;
} rej_array;

static bool encode_rejections(pb_ostream_t *s, const pb_field_t *field, void *const *arg)
{
    const rej_array *a = *arg;
    for (size_t i = 0; i < a->n; i++)
        if (!pb_encode_tag_for_field(s, field) ||
            !pb_encode_submessage(s, fieldvault_v1_Rejection_fields, &a->r[i]))
            return false;
    return true;
}

static bool decode_rejection(pb_istream_t *s, const pb_field_t *field, void **arg)
{
    (void)field;
    rej_array *a = *arg;
    if (a->n >= a->cap) PB_RETURN_ERROR(s, "more rejections than the caller's array holds");
    if (!pb_decode(s, fieldvault_v1_Rejection_fields, &a->r[a->n])) return false;
    a->n++;
    return true;
}

static fv_status encode_whole(const char *what, const pb_msgdesc_t *fields, const void *msg,
                              fv__byte_sink sink, void *sink_ctx, char *err, size_t errcap)
{
    size_t size;
    if (!pb_get_encoded_size(&size, fields, msg))
        return fail(err, errcap, FV_EINVAL, "encoding the %s: cannot size it", what);
    unsigned char *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL) return fail(err, errcap, FV_ENOMEM, "out of memory");
    pb_ostream_t os = pb_ostream_from_buffer(buf, size);
    fv_status st = FV_OK;
    if (!pb_encode(&os, fields, msg))
        st = fail(err, errcap, FV_EINVAL, "encoding the %s: %s", what, PB_GET_ERROR(&os));
    else if (sink(sink_ctx, buf, os.bytes_written) != 0)
        st = fail(err, errcap, FV_EIO, "writing the %s: the byte sink failed", what);
    free(buf);
    return st;
}

static fv_status decode_whole(const char *what, const pb_msgdesc_t *fields,
                              const unsigned char *buf, size_t len, void *out, char *err,
                              size_t errcap)
{
    if (len > FV_WIRE_MESSAGE_MAX_BYTES)
        return fail(err, errcap, FV_EPROTO, "the %s is %zu bytes, over the limit of %zu", what,
                    len, FV_WIRE_MESSAGE_MAX_BYTES);
    pb_istream_t s = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&s, fields, out))
        return fail(err, errcap, FV_EPROTO, "malformed %s: %s", what, PB_GET_ERROR(&s));
    /* pb_decode reads to the end of a buffer stream (a zero byte is a
     * "zero tag" error): belt and braces, anything left over is junk. */
    if (s.bytes_left != 0)
        return fail(err, errcap, FV_EPROTO, "malformed %s: trailing data at byte %zu", what,
                    len - s.bytes_left);
    return FV_OK;
}

fv_status fv__wire_encode_push_response(const fv__push_response *m, fv__byte_sink sink,
                                        void *sink_ctx, char *err, size_t errcap)
{
    clear_err(err, errcap);
    if (m == NULL || sink == NULL || (m->rejections == NULL && m->nrejections > 0))
        return fail(err, errcap, FV_EMISUSE, "no message or sink");
    fv_status st = check_rejections(m->rejections, m->nrejections, FV_EINVAL, err, errcap);
    if (st != FV_OK) return st;
    rej_array a = {m->rejections, m->nrejections, m->nrejections};
    fieldvault_v1_PushResponse p = fieldvault_v1_PushResponse_init_zero;
    p.batch_seq = m->batch_seq;
    p.accepted = m->accepted;
    p.server_seq = m->server_seq;
    p.duplicate = m->duplicate != 0;
    p.rejections.funcs.encode = encode_rejections;
    p.rejections.arg = &a;
    return encode_whole("push response", fieldvault_v1_PushResponse_fields, &p, sink, sink_ctx,
                        err, errcap);
}

fv_status fv__wire_encode_pull_request(const fieldvault_v1_PullRequest *m, fv__byte_sink sink,
                                       void *sink_ctx, char *err, size_t errcap)
{
    clear_err(err, errcap);
    if (m == NULL || sink == NULL) return fail(err, errcap, FV_EMISUSE, "no message or sink");
    return encode_whole("pull request", fieldvault_v1_PullRequest_fields, m, sink, sink_ctx,
                        err, errcap);
}

fv_status fv__wire_encode_error(const fieldvault_v1_Error *m, fv__byte_sink sink,
                                void *sink_ctx, char *err, size_t errcap)
{
    clear_err(err, errcap);
    if (m == NULL || sink == NULL) return fail(err, errcap, FV_EMISUSE, "no message or sink");
    fv_status st = check_text("error message", m->message, sizeof m->message, FV_EINVAL, err,
                              errcap);
    if (st != FV_OK) return st;
    return encode_whole("error", fieldvault_v1_Error_fields, m, sink, sink_ctx, err, errcap);
}

fv_status fv__wire_decode_push_response(const unsigned char *buf, size_t len,
                                        fv__push_response *out, char *err, size_t errcap)
{
    clear_err(err, errcap);
    if (out == NULL || (buf == NULL && len > 0) ||
        (out->rejections == NULL && out->rejections_cap > 0))
        return fail(err, errcap, FV_EMISUSE, "no buffer or output");
    rej_array a = {out->rejections, 0, out->rejections_cap};
    if (a.cap > FV_WIRE_REJECTIONS_MAX) a.cap = FV_WIRE_REJECTIONS_MAX;
    fieldvault_v1_PushResponse p = fieldvault_v1_PushResponse_init_zero;
    p.rejections.funcs.decode = decode_rejection;
    p.rejections.arg = &a;
    fv_status st = decode_whole("push response", fieldvault_v1_PushResponse_fields, buf, len, &p,
                                err, errcap);
    if (st == FV_OK) st = check_rejections(a.r, a.n, FV_EPROTO, err, errcap);
    if (st != FV_OK) return st;
    out->batch_seq = p.batch_seq;
    out->accepted = p.accepted;
    out->server_seq = p.server_seq;
    out->duplicate = p.duplicate;
    out->nrejections = a.n;
    return FV_OK;
}

fv_status fv__wire_decode_pull_request(const unsigned char *buf, size_t len,
                                       fieldvault_v1_PullRequest *out, char *err, size_t errcap)
{
    clear_err(err, errcap);
    if (out == NULL || (buf == NULL && len > 0))
        return fail(err, errcap, FV_EMISUSE, "no buffer or output");
    fv_status st = decode_whole("pull request", fieldvault_v1_PullRequest_fields, buf, len,
                                out, err, errcap);
    if (st != FV_OK) return st;
    /* fixed_length bytes decode an absent or empty field as zeros */
    static const unsigned char zero[FV_DEVICE_LEN];
    if (memcmp(out->device_id, zero, sizeof zero) == 0)
        return fail(err, errcap, FV_EPROTO, "malformed pull request: device_id missing");
    return FV_OK;
}

fv_status fv__wire_decode_error(const unsigned char *buf, size_t len, fieldvault_v1_Error *out,
                                char *err, size_t errcap)
{
    clear_err(err, errcap);
    if (out == NULL || (buf == NULL && len > 0))
        return fail(err, errcap, FV_EMISUSE, "no buffer or output");
    fv_status st = decode_whole("error", fieldvault_v1_Error_fields, buf, len, out, err, errcap);
    if (st == FV_OK)
        st = check_text("error message", out->message, sizeof out->message, FV_EPROTO, err,
                        errcap);
    return st;
}

/* ---- Whole-message helpers: enrolment ---- */

_Static_assert(fieldvault_v1_EnrollRequest_device_name_tag < 32, "EnrollRequest field numbers");
_Static_assert(fieldvault_v1_EnrollResponse_device_id_tag < 32, "EnrollResponse field numbers");

static const pfield enroll_request_pfields[] = {
    {fieldvault_v1_EnrollRequest_code_tag, PB_WT_STRING, 0, FV_WIRE_NAME_MAX, "code"},
    {fieldvault_v1_EnrollRequest_device_id_tag, PB_WT_STRING, FV_DEVICE_LEN, FV_DEVICE_LEN,
     "device_id"},
    {fieldvault_v1_EnrollRequest_public_key_tag, PB_WT_STRING, FV_WIRE_PUBKEY_LEN,
     FV_WIRE_PUBKEY_LEN, "public_key"},
    {fieldvault_v1_EnrollRequest_device_name_tag, PB_WT_STRING, 0, FV_WIRE_NAME_MAX,
     "device_name"},
};

static const pfield enroll_response_pfields[] = {
    {fieldvault_v1_EnrollResponse_user_tag, PB_WT_STRING, 0, FV_WIRE_NAME_MAX, "user"},
    {fieldvault_v1_EnrollResponse_role_tag, PB_WT_STRING, 0, FV_WIRE_NAME_MAX, "role"},
    {fieldvault_v1_EnrollResponse_team_tag, PB_WT_STRING, 0, FV_WIRE_NAME_MAX, "team"},
    {fieldvault_v1_EnrollResponse_server_time_ms_tag, PB_WT_VARINT, 0, 0, "server_time_ms"},
    {fieldvault_v1_EnrollResponse_device_id_tag, PB_WT_STRING, FV_DEVICE_LEN, FV_DEVICE_LEN,
     "device_id"},
    {fieldvault_v1_EnrollResponse_policy_tag, PB_WT_STRING, 0, 1024, "policy"},
};

static int all_zero(const unsigned char *b, size_t n)
{
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++) acc |= b[i];
    return acc == 0;
}

/* One string of an enrolment message.  sc (decode only, else NULL) gives
 * its length on the wire, which must be the C string's: nanopb would keep
 * an embedded NUL and strlen would silently cut there. */
static fv_status check_enroll_text(const char *what, const char *s, size_t cap, int required,
                                   const scan *sc, uint32_t tag, fv_status st, char *err,
                                   size_t errcap)
{
    fv_status res = check_text(what, s, cap, st, err, errcap);
    if (res != FV_OK) return res;
    size_t n = strlen(s);
    if (sc != NULL && (sc->seen & (1u << tag)) && sc->lens[tag] != n)
        return fail(err, errcap, st, "%s contains a NUL byte", what);
    if (required && n == 0) return fail(err, errcap, st, "%s is empty", what);
    return FV_OK;
}

static fv_status check_enroll_request(const fieldvault_v1_EnrollRequest *m, const scan *sc,
                                      fv_status st, char *err, size_t errcap)
{
    fv_status res = check_enroll_text("code", m->code, sizeof m->code, 1, sc,
                                      fieldvault_v1_EnrollRequest_code_tag, st, err, errcap);
    if (res == FV_OK)
        res = check_enroll_text("device_name", m->device_name, sizeof m->device_name, 0, sc,
                                fieldvault_v1_EnrollRequest_device_name_tag, st, err, errcap);
    if (res != FV_OK) return res;
    /* fixed_length bytes decode an absent field as zeros */
    if ((sc != NULL && !(sc->seen & (1u << fieldvault_v1_EnrollRequest_device_id_tag))) ||
        all_zero(m->device_id, sizeof m->device_id))
        return fail(err, errcap, st, "device_id missing");
    if ((sc != NULL && !(sc->seen & (1u << fieldvault_v1_EnrollRequest_public_key_tag))) ||
        all_zero(m->public_key, sizeof m->public_key))
        return fail(err, errcap, st, "public_key missing");
    return FV_OK;
}

static fv_status check_enroll_response(const fieldvault_v1_EnrollResponse *m, const scan *sc,
                                       fv_status st, char *err, size_t errcap)
{
    fv_status res = check_enroll_text("user", m->user, sizeof m->user, 1, sc,
                                      fieldvault_v1_EnrollResponse_user_tag, st, err, errcap);
    if (res == FV_OK)
        res = check_enroll_text("role", m->role, sizeof m->role, 1, sc,
                                fieldvault_v1_EnrollResponse_role_tag, st, err, errcap);
    if (res == FV_OK)
        res = check_enroll_text("team", m->team, sizeof m->team, 0, sc,
                                fieldvault_v1_EnrollResponse_team_tag, st, err, errcap);
    if (res != FV_OK) return res;
    if ((sc != NULL && !(sc->seen & (1u << fieldvault_v1_EnrollResponse_device_id_tag))) ||
        all_zero(m->device_id, sizeof m->device_id))
        return fail(err, errcap, st, "device_id missing");
    return FV_OK;
}

/* A whole message whose fields prescan() names: bound, prescan, decode. */
static fv_status decode_scanned(const char *what, const pfield *pf, size_t npf,
                                const pb_msgdesc_t *fields, const unsigned char *buf,
                                size_t len, void *out, scan *sc, char *err, size_t errcap)
{
    if (len > FV_WIRE_MESSAGE_MAX_BYTES)
        return fail(err, errcap, FV_EPROTO, "the %s is %zu bytes, over the limit of %zu", what,
                    len, FV_WIRE_MESSAGE_MAX_BYTES);
    char why[200];
    if (prescan(buf, len, pf, npf, sc, why, sizeof why) != FV_OK)
        return fail(err, errcap, FV_EPROTO, "malformed %s: %s", what, why);
    return decode_whole(what, fields, buf, len, out, err, errcap);
}

/* Prefix a checker's message with "malformed <what>: " (decode) or
 * "<what>: " (encode). */
static fv_status prefixed(fv_status st, const char *prefix, const char *why, char *err,
                          size_t errcap)
{
    return fail(err, errcap, st, "%s: %s", prefix, why);
}

fv_status fv__wire_encode_enroll_request(const fieldvault_v1_EnrollRequest *m,
                                         fv__byte_sink sink, void *sink_ctx, char *err,
                                         size_t errcap)
{
    clear_err(err, errcap);
    if (m == NULL || sink == NULL) return fail(err, errcap, FV_EMISUSE, "no message or sink");
    char why[160];
    if (check_enroll_request(m, NULL, FV_EINVAL, why, sizeof why) != FV_OK)
        return prefixed(FV_EINVAL, "enroll request", why, err, errcap);
    return encode_whole("enroll request", fieldvault_v1_EnrollRequest_fields, m, sink,
                        sink_ctx, err, errcap);
}

fv_status fv__wire_encode_enroll_response(const fieldvault_v1_EnrollResponse *m,
                                          fv__byte_sink sink, void *sink_ctx, char *err,
                                          size_t errcap)
{
    clear_err(err, errcap);
    if (m == NULL || sink == NULL) return fail(err, errcap, FV_EMISUSE, "no message or sink");
    char why[160];
    if (check_enroll_response(m, NULL, FV_EINVAL, why, sizeof why) != FV_OK)
        return prefixed(FV_EINVAL, "enroll response", why, err, errcap);
    return encode_whole("enroll response", fieldvault_v1_EnrollResponse_fields, m, sink,
                        sink_ctx, err, errcap);
}

fv_status fv__wire_decode_enroll_request(const unsigned char *buf, size_t len,
                                         fieldvault_v1_EnrollRequest *out, char *err,
                                         size_t errcap)
{
    clear_err(err, errcap);
    if (out == NULL || (buf == NULL && len > 0))
        return fail(err, errcap, FV_EMISUSE, "no buffer or output");
    scan sc = {0, 0, {0}};
    fv_status st = decode_scanned("enroll request", enroll_request_pfields,
                                  sizeof enroll_request_pfields / sizeof *enroll_request_pfields,
                                  fieldvault_v1_EnrollRequest_fields, buf, len, out, &sc, err,
                                  errcap);
    if (st != FV_OK) return st;
    char why[160];
    if (check_enroll_request(out, &sc, FV_EPROTO, why, sizeof why) != FV_OK)
        return prefixed(FV_EPROTO, "malformed enroll request", why, err, errcap);
    return FV_OK;
}

fv_status fv__wire_decode_enroll_response(const unsigned char *buf, size_t len,
                                          fieldvault_v1_EnrollResponse *out, char *err,
                                          size_t errcap)
{
    clear_err(err, errcap);
    if (out == NULL || (buf == NULL && len > 0))
        return fail(err, errcap, FV_EMISUSE, "no buffer or output");
    scan sc = {0, 0, {0}};
    fv_status st = decode_scanned(
        "enroll response", enroll_response_pfields,
        sizeof enroll_response_pfields / sizeof *enroll_response_pfields,
        fieldvault_v1_EnrollResponse_fields, buf, len, out, &sc, err, errcap);
    if (st != FV_OK) return st;
    char why[160];
    if (check_enroll_response(out, &sc, FV_EPROTO, why, sizeof why) != FV_OK)
        return prefixed(FV_EPROTO, "malformed enroll response", why, err, errcap);
    return FV_OK;
}

/* ---- Memory buffers ---- */

void fv__membuf_init(fv__membuf *m, size_t max)
{
    memset(m, 0, sizeof *m);
    m->max = max > 0 ? max : FV_CHANGESET_MAX_BYTES;
}

void fv__membuf_init_read(fv__membuf *m, const unsigned char *data, size_t len)
{
    memset(m, 0, sizeof *m);
    static const unsigned char none[1];
    m->borrowed = data != NULL ? data : none;
    m->len = data != NULL ? len : 0;
    m->max = m->len;
}

void fv__membuf_free(fv__membuf *m)
{
    if (m == NULL) return;
    free(m->data);
    memset(m, 0, sizeof *m);
}

const unsigned char *fv__membuf_bytes(const fv__membuf *m)
{
    return m->borrowed != NULL ? m->borrowed : m->data;
}

int fv__membuf_write(void *membuf, const unsigned char *buf, size_t len)
{
    fv__membuf *m = membuf;
    if (m->borrowed != NULL || len > m->max - m->len) return -1;
    if (len > m->cap - m->len) {
        size_t need = m->len + len, cap = m->cap > 0 ? m->cap : 4096;
        while (cap < need) cap = cap > m->max / 2 ? m->max : cap * 2;
        unsigned char *p = realloc(m->data, cap);
        if (p == NULL) return -1;
        m->data = p;
        m->cap = cap;
    }
    if (len > 0) memcpy(m->data + m->len, buf, len);
    m->len += len;
    return 0;
}

long fv__membuf_read(void *membuf, unsigned char *buf, size_t cap)
{
    fv__membuf *m = membuf;
    size_t n = m->len - m->pos;
    if (n > cap) n = cap;
    if (n > (size_t)LONG_MAX) n = (size_t)LONG_MAX;
    if (n > 0) memcpy(buf, fv__membuf_bytes(m) + m->pos, n);
    m->pos += n;
    return (long)n;
}

/* ---- Whole-message helpers: field keys ---- */

static fv_status check_keys_response(const fieldvault_v1_KeysResponse *m, fv_status st,
                                     char *err, size_t errcap)
{
    if (m->admin_public_key.size != 0 && m->admin_public_key.size != FV_WIRE_PUBKEY_LEN)
        return fail(err, errcap, st, "admin_public_key is %u bytes, not %d",
                    (unsigned)m->admin_public_key.size, FV_WIRE_PUBKEY_LEN);
    if (m->grants_count > 0 && m->admin_public_key.size == 0)
        return fail(err, errcap, st, "grants without an admin_public_key");
    fv_status rt = check_text("role", m->role, sizeof m->role, st, err, errcap);
    if (rt == FV_OK) rt = check_text("team", m->team, sizeof m->team, st, err, errcap);
    if (rt != FV_OK) return rt;
    uint64_t prev = 0;
    for (pb_size_t i = 0; i < m->grants_count; i++) {
        const fieldvault_v1_Grant *g = &m->grants[i];
        fv_status r = check_text("grant team", g->team, sizeof g->team, st, err, errcap);
        if (r != FV_OK) return r;
        if (g->team[0] == 0) return fail(err, errcap, st, "grant %u: team is empty", (unsigned)i);
        if (g->field_class != 1 && g->field_class != 2)
            return fail(err, errcap, st, "grant %u: field_class %u is not 1 or 2", (unsigned)i,
                        (unsigned)g->field_class);
        if (g->version == 0) return fail(err, errcap, st, "grant %u: version 0", (unsigned)i);
        if (g->seq <= prev)
            return fail(err, errcap, st, "grant %u: seq %llu not increasing", (unsigned)i,
                        (unsigned long long)g->seq);
        prev = g->seq;
        if (all_zero(g->sealed_key, sizeof g->sealed_key) ||
            all_zero(g->signature, sizeof g->signature))
            return fail(err, errcap, st, "grant %u: sealed_key or signature missing", (unsigned)i);
    }
    return FV_OK;
}

fv_status fv__wire_encode_keys_request(const fieldvault_v1_KeysRequest *m, fv__byte_sink sink,
                                       void *sink_ctx, char *err, size_t errcap)
{
    clear_err(err, errcap);
    if (m == NULL || sink == NULL) return fail(err, errcap, FV_EMISUSE, "no message or sink");
    if (all_zero(m->device_id, sizeof m->device_id))
        return fail(err, errcap, FV_EINVAL, "keys request: device_id missing");
    return encode_whole("keys request", fieldvault_v1_KeysRequest_fields, m, sink, sink_ctx,
                        err, errcap);
}

fv_status fv__wire_decode_keys_request(const unsigned char *buf, size_t len,
                                       fieldvault_v1_KeysRequest *out, char *err, size_t errcap)
{
    clear_err(err, errcap);
    if (out == NULL || (buf == NULL && len > 0))
        return fail(err, errcap, FV_EMISUSE, "no buffer or output");
    fv_status st = decode_whole("keys request", fieldvault_v1_KeysRequest_fields, buf, len, out,
                                err, errcap);
    if (st == FV_OK && all_zero(out->device_id, sizeof out->device_id))
        return fail(err, errcap, FV_EPROTO, "malformed keys request: device_id missing");
    return st;
}

fv_status fv__wire_encode_keys_response(const fieldvault_v1_KeysResponse *m,
                                        fv__byte_sink sink, void *sink_ctx, char *err,
                                        size_t errcap)
{
    clear_err(err, errcap);
    if (m == NULL || sink == NULL) return fail(err, errcap, FV_EMISUSE, "no message or sink");
    char why[160];
    if (check_keys_response(m, FV_EINVAL, why, sizeof why) != FV_OK)
        return prefixed(FV_EINVAL, "keys response", why, err, errcap);
    return encode_whole("keys response", fieldvault_v1_KeysResponse_fields, m, sink, sink_ctx,
                        err, errcap);
}

fv_status fv__wire_decode_keys_response(const unsigned char *buf, size_t len,
                                        fieldvault_v1_KeysResponse *out, char *err,
                                        size_t errcap)
{
    clear_err(err, errcap);
    if (out == NULL || (buf == NULL && len > 0))
        return fail(err, errcap, FV_EMISUSE, "no buffer or output");
    fv_status st = decode_whole("keys response", fieldvault_v1_KeysResponse_fields, buf, len,
                                out, err, errcap);
    if (st != FV_OK) return st;
    char why[160];
    if (check_keys_response(out, FV_EPROTO, why, sizeof why) != FV_OK)
        return prefixed(FV_EPROTO, "malformed keys response", why, err, errcap);
    return FV_OK;
}

/* ---- The access policy ---- */

_Static_assert(MEMBER_SIZE(fieldvault_v1_Policy, roles) ==
                   FV_POLICY_ROLES_MAX * sizeof(fieldvault_v1_PolicyRole), "policy roles");
_Static_assert(MEMBER_SIZE(fieldvault_v1_PolicyRole, name) == FV_POLICY_ROLE_MAX + 1, "role name");
_Static_assert(MEMBER_SIZE(fieldvault_v1_PolicyRole, access) == FV_POLICY_TABLES * 3, "access");

void fv__wire_policy_out(const fv__policy *p, fieldvault_v1_Policy *m)
{
    memset(m, 0, sizeof *m);
    m->version = p->version;
    for (size_t i = 0; i < p->nroles && i < FV_POLICY_ROLES_MAX; i++) {
        fieldvault_v1_PolicyRole *r = &m->roles[m->roles_count++];
        snprintf(r->name, sizeof r->name, "%s", p->roles[i].name);
        r->scope = (uint32_t)p->roles[i].scope;
        for (int t = 0; t < FV_POLICY_TABLES; t++)
            for (int c = 0; c < 3; c++) r->access[t * 3 + c] = p->roles[i].access[t][c];
    }
}

int fv__wire_policy_in(const fieldvault_v1_Policy *m, fv__policy *p, char *why, size_t why_cap)
{
    memset(p, 0, sizeof *p);
    p->version = m->version;
    for (pb_size_t i = 0; i < m->roles_count && i < FV_POLICY_ROLES_MAX; i++) {
        const fieldvault_v1_PolicyRole *r = &m->roles[i];
        fv__policy_role *x = &p->roles[p->nroles++];
        if (strnlen(r->name, sizeof r->name) == sizeof r->name) {
            snprintf(why, why_cap, "a role name is not terminated");
            return 0;
        }
        snprintf(x->name, sizeof x->name, "%s", r->name);
        x->scope = r->scope <= FV__SCOPE_ALL ? (fv__scope)r->scope : (fv__scope)99;
        for (int t = 0; t < FV_POLICY_TABLES; t++)
            for (int c = 0; c < 3; c++) x->access[t][c] = r->access[t * 3 + c];
    }
    return fv__policy_check(p, why, why_cap);
}
