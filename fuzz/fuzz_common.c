/*
 * fuzz_common.c - helpers shared by the fuzz harnesses (see fuzz_common.h).
 * Test code: POSIX calls are used directly.
 */
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* straight to fd 2: the stderr stream may point at /dev/null */
    char line_buf[1024];
    int n = snprintf(line_buf, sizeof line_buf, "FUZZ CHECK FAILED %s:%d: %s: %s\n", file, line,
                     cond, msg);
    if (n > 0 && write(2, line_buf, (size_t)n) < 0) { /* nothing better to do */
    }
    abort();
}

/* ---- init and scratch directory ---- */

static char tmpdir[256];

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_tree(p);
            else unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static void cleanup(void)
{
    if (tmpdir[0] != '\0') rm_tree(tmpdir);
}

void fz_init(void)
{
    static int done;
    if (done) return;
    done = 1;
    if (sodium_init() < 0) abort();
    if (getenv("FV_FUZZ_VERBOSE") == NULL) {
        FILE *null = fopen("/dev/null", "w");
        if (null != NULL) {
            stdout = null;
            stderr = null;
        }
    }
}

const char *fz_tmpdir(void)
{
    if (tmpdir[0] != '\0') return tmpdir;
    const char *base = getenv("FV_FUZZ_TMP");
    if (base == NULL || access(base, W_OK) != 0) base = "/dev/shm";
    if (access(base, W_OK) != 0) base = getenv("TMPDIR");
    if (base == NULL || access(base, W_OK) != 0) base = "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/fvfuzz-XXXXXX", base);
    if (mkdtemp(tmpdir) == NULL) {
        fprintf(stderr, "fuzz: mkdtemp %s: %s\n", tmpdir, strerror(errno));
        abort();
    }
    atexit(cleanup);
    return tmpdir;
}

void fz_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", fz_tmpdir(), name);
}

void fz_write_file(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || (n > 0 && fwrite(b, 1, n, f) != n) || fclose(f) != 0) {
        char msg[600];
        int k = snprintf(msg, sizeof msg, "fuzz: cannot write %s\n", path);
        if (k > 0 && write(2, msg, (size_t)k) < 0) {
        }
        abort();
    }
}

void fz_remove(const char *path)
{
    if (unlink(path) != 0 && errno != ENOENT) abort();
}

unsigned char *fz_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 1 << 16, len = 0;
    unsigned char *b = malloc(cap);
    size_t k;
    while (b != NULL && (k = fread(b + len, 1, cap - len, f)) > 0) {
        len += k;
        if (len == cap) b = realloc(b, cap *= 2);
    }
    fclose(f);
    if (b == NULL) abort();
    *n = len;
    return b;
}

/* ---- the key store ---- */

#define XOR_BYTE 0x5a

static int ks_wrap(void *ctx, const unsigned char key[32], unsigned char *out, size_t *out_len)
{
    (void)ctx;
    for (size_t i = 0; i < 32; i++) out[i] = (unsigned char)(key[i] ^ XOR_BYTE);
    *out_len = 32;
    return 0;
}

static int ks_unwrap(void *ctx, const unsigned char *in, size_t in_len, unsigned char key[32])
{
    (void)ctx;
    if (in_len != 32) return -1;
    for (size_t i = 0; i < 32; i++) key[i] = (unsigned char)(in[i] ^ XOR_BYTE);
    return 0;
}

const fv_keystore fz_keystore = {sizeof(fv_keystore), NULL, ks_wrap, ks_unwrap};

fv_status fz_open(const char *path, unsigned flags, fv_db **db)
{
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.keystore = &fz_keystore;
    cfg.flags = flags;
    cfg.user = "fuzz";
    return fv_open(db, &cfg);
}

/* ---- input cursor ---- */

uint8_t fz_u8(fz_in *in)
{
    if (in->n == 0) return 0;
    uint8_t v = in->p[0];
    in->p++;
    in->n--;
    return v;
}

uint16_t fz_u16(fz_in *in)
{
    uint16_t lo = fz_u8(in);
    return (uint16_t)(lo | (uint16_t)(fz_u8(in) << 8));
}

uint32_t fz_u32(fz_in *in)
{
    uint32_t lo = fz_u16(in);
    return lo | ((uint32_t)fz_u16(in) << 16);
}

size_t fz_take(fz_in *in, size_t n, const uint8_t **out)
{
    if (n > in->n) n = in->n;
    *out = in->p;
    in->p += n;
    in->n -= n;
    return n;
}

void fz_src_init(fz_src *s, const uint8_t *p, size_t n, size_t chunk)
{
    s->p = p;
    s->n = n;
    s->pos = 0;
    s->chunk = chunk == 0 ? 1 : chunk;
}

long fz_src_read(void *ctx, unsigned char *buf, size_t cap)
{
    fz_src *s = ctx;
    size_t k = s->n - s->pos;
    if (k > cap) k = cap;
    if (k > s->chunk) k = s->chunk;
    if (k > 0) memcpy(buf, s->p + s->pos, k);
    s->pos += k;
    return (long)k;
}

/* ---- the fixed world ---- */

void fz_device_id(int i, unsigned char out[FV_DEVICE_LEN])
{
    for (size_t k = 0; k < FV_DEVICE_LEN; k++) out[k] = (unsigned char)(0xd0 + i);
}

void fz_row_id(int i, unsigned char out[FV_ROWID_LEN])
{
    /* UUIDv7-shaped: time, version 7, variant 10 */
    static const unsigned char base[16] = {0x01, 0x97, 0x73, 0x0e, 0x2c, 0x00, 0x70, 0x00,
                                           0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    memcpy(out, base, 16);
    out[5] = (unsigned char)i;
    out[15] = (unsigned char)(0x10 + i);
}

static void change_init(fv__change *c, const char *table, int row, const char *field, int device,
                        uint64_t hlc, uint64_t base_hlc)
{
    memset(c, 0, offsetof(fv__change, data));
    c->data[0] = '\0';
    snprintf(c->table, sizeof c->table, "%s", table);
    snprintf(c->field, sizeof c->field, "%s", field);
    fz_row_id(row, c->row_id);
    fz_device_id(device, c->device);
    c->hlc = hlc;
    c->base_hlc = base_hlc;
    c->device_seq = (hlc & 0xffff) + 1;
}

void fz_change_text(fv__change *c, const char *table, int row, const char *field,
                    const char *value, int device, uint64_t hlc, uint64_t base_hlc)
{
    change_init(c, table, row, field, device, hlc, base_hlc);
    if (value == NULL) {
        c->kind = FV__VAL_NULL;
        return;
    }
    c->kind = FV__VAL_TEXT;
    c->len = strlen(value);
    memcpy(c->data, value, c->len + 1);
}

void fz_change_real(fv__change *c, const char *table, int row, const char *field, double v,
                    int device, uint64_t hlc, uint64_t base_hlc)
{
    change_init(c, table, row, field, device, hlc, base_hlc);
    c->kind = FV__VAL_REAL;
    c->real = v;
}

/* Rows: 0-3 customers, 4 a contact of 0, 5-7 visits of 0 and 1. */
int fz_base_next(void *ctx, fv__change *out)
{
    fz_base_src *s = ctx;
    char ref0[FV_ID_LEN + 1], ref1[FV_ID_LEN + 1];
    unsigned char id[16];
    fz_row_id(0, id);
    snprintf(ref0, sizeof ref0,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0], id[1],
             id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13],
             id[14], id[15]);
    fz_row_id(1, id);
    snprintf(ref1, sizeof ref1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0], id[1],
             id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13],
             id[14], id[15]);
    size_t i = s->i++;
    uint64_t t = FZ_HLC(-60000 + (int64_t)i * 10, 0);
    switch (i) {
    case 0: fz_change_text(out, "customer", 0, "name", "Acme Foods", 0, t, 0); return 1;
    case 1: fz_change_text(out, "customer", 0, "grade", "A", 0, t, 0); return 1;
    case 2: fz_change_text(out, "customer", 0, "stage", "intent", 0, t, 0); return 1;
    case 3: fz_change_text(out, "customer", 0, "owner", "ana", 0, t, 0); return 1;
    case 4: fz_change_text(out, "customer", 1, "name", "Bolt Works", 1, t, 0); return 1;
    case 5: fz_change_text(out, "customer", 1, "grade", "S", 1, t, 0); return 1;
    case 6: fz_change_text(out, "customer", 1, "next_due", "2025-07-01", 1, t, 0); return 1;
    case 7: fz_change_text(out, "customer", 2, "name", "Cedar Ltd", 2, t, 0); return 1;
    case 8: fz_change_text(out, "customer", 2, "stage", "lost", 2, t, 0); return 1;
    case 9: fz_change_text(out, "customer", 3, "name", "Delta Gone", 0, t, 0); return 1;
    case 10: fz_change_real(out, "customer", 3, FV_FIELD_DELETED, 1.0, 0, t, 0); return 1;
    case 11: fz_change_text(out, "contact", 4, "customer_id", ref0, 0, t, 0); return 1;
    case 12: fz_change_text(out, "contact", 4, "name", "Li Wei", 0, t, 0); return 1;
    case 13: fz_change_text(out, "visit", 5, "customer_id", ref0, 0, t, 0); return 1;
    case 14: fz_change_text(out, "visit", 5, "method", "visit", 0, t, 0); return 1;
    case 15: fz_change_text(out, "visit", 5, "summary", "Trial of line 3", 0, t, 0); return 1;
    case 16: fz_change_text(out, "visit", 5, "at", "2025-06-14T09:30:00Z", 0, t, 0); return 1;
    case 17: fz_change_text(out, "visit", 6, "customer_id", ref1, 1, t, 0); return 1;
    case 18: fz_change_text(out, "visit", 6, "method", "phone", 1, t, 0); return 1;
    case 19: fz_change_real(out, "visit", 6, "lat", 48.85, 1, t, 0); return 1;
    case 20: fz_change_text(out, "visit", 7, "customer_id", ref1, 2, t, 0); return 1;
    case 21: fz_change_text(out, "visit", 7, "method", "email", 2, t, 0); return 1;
    case 22: fz_change_text(out, "visit", 7, "next_action_due", "2025-06-20", 2, t, 0); return 1;
    default: return 0;
    }
}

/* ---- reading everything ---- */

/* A protected field that arrived sealed reads as redacted (no key for it:
 * fv_record_redacted says so) or, when it fails authentication, as
 * FV_ECORRUPT: both are defined answers, not failures. */
static int sealed_state(const fv_record *r, const char *name, fv_status gs)
{
    int red = 0;
    if (gs == FV_ECORRUPT) return 1;
    return gs == FV_EACCES && fv_record_redacted(r, name, &red) == FV_OK && red;
}

static fv_status walk_list(fv_db *db, fv_list *l, fv_status st, int get_each)
{
    const fv_record *r;
    int n = 0;
    while (st == FV_OK && (st = fv_list_next(l, &r)) == FV_OK && r != NULL) {
        const char *id = fv_record_id(r);
        const char *tbl = fv_record_table(r);
        FZ_CHECK(id != NULL && tbl != NULL, "a listed record without id or table");
        /* every field of the record reads back */
        const char *name;
        fv_field_type type;
        for (size_t i = 0; fv_record_field(r, i, &name, &type) == FV_OK; i++) {
            if (type == FV_TYPE_REAL) {
                double v;
                int set;
                fv_status gs = fv_record_get_real(r, name, &v, &set);
                FZ_CHECK(gs == FV_OK || sealed_state(r, name, gs),
                         "%s.%s: a listed field does not read", tbl, name);
            } else {
                const char *v;
                fv_status gs = fv_record_get_text(r, name, &v);
                FZ_CHECK(gs == FV_OK || sealed_state(r, name, gs),
                         "%s.%s: a listed field does not read", tbl, name);
            }
        }
        if (get_each && n++ < 8) {
            fv_record *g = NULL;
            fv_status gs = fv_get(db, tbl, id, &g);
            FZ_CHECK(gs != FV_OK || g != NULL, "fv_get: FV_OK without a record");
            fv_record_free(g);
        }
    }
    fv_list_free(l);
    return st;
}

fv_status fz_read_all(fv_db *db)
{
    fv_list *l = NULL;
    fv_status st = fv_list_customers(db, NULL, &l);
    if (st == FV_OK) st = walk_list(db, l, st, 1);
    if (st == FV_OK && (st = fv_list_visits(db, NULL, &l)) == FV_OK) st = walk_list(db, l, st, 1);
    if (st == FV_OK && (st = fv_list_contacts(db, NULL, &l)) == FV_OK)
        st = walk_list(db, l, st, 1);
    if (st == FV_OK && (st = fv_list_due(db, "2025-12-31", &l)) == FV_OK)
        st = walk_list(db, l, st, 0);
    char h[65];
    if (st == FV_OK) st = fv_state_hash(db, h);
    fv_conflict_list *cl = NULL;
    if (st == FV_OK && (st = fv_conflicts_list(db, 1, &cl)) == FV_OK) {
        const fv_conflict *c;
        while ((st = fv_conflicts_next(cl, &c)) == FV_OK && c != NULL) {
        }
        fv_conflicts_free(cl);
    }
    return st;
}
