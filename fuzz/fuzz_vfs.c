/*
 * fuzz_vfs.c - the encrypting VFS (core/vault_vfs.c) and the key header
 * (core/keys.c) reading a store whose bytes the fuzzer controls: the store
 * file (vault header + pages) and its WAL are written from the input, the
 * store is opened under a known key (fz_keystore: no key derivation, so
 * this is fast), read through the public API, checked with fv_check, and
 * optionally written to and rekeyed.  Whatever the bytes, every call must
 * return a status - never crash, hang, leak or read out of bounds - and
 * opening must fail only with a documented status.
 *
 * Byte 0 holds flags:
 *   0x01  recompute both header slots' BLAKE2b checksums after the input is
 *         in place, so mutations reach the header's fields (KDF cost, key
 *         count, epochs, wrapped-key lengths) instead of stopping at the
 *         checksum;
 *   0x02  after reading, write (insert a customer and a visit, update,
 *         delete);
 *   0x04  after that, rekey (every page rewritten);
 *   0x08  op mode (below); otherwise raw mode;
 *   0x10  op mode: start from the template with a live WAL.
 * Raw mode: u32 LE length of the store file, the store file, the WAL.
 * Op mode: 8-byte operations {code, a, x (u32 LE), y (u16 LE)} applied to
 * a template store made at start-up (records committed; a second template
 * snapshotted with committed frames still in its WAL, as after a crash):
 * flip bytes, copy/swap/duplicate authentic pages and WAL frames to other
 * positions, truncate, drop the WAL, swap header slots...  Random bytes
 * never authenticate, so this is how authentic-but-misplaced data (the
 * interesting case for the associated data) gets in front of the VFS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fuzz_common.h"
#include "vault_vfs.h"

#define WAL_HDR 32
#define WAL_FRAME (24 + FV_PAGE_SIZE)
#define SLOT_SUM 2016
#define MAX_OPS 32
#define MAX_FILE (4u << 20)

static unsigned char *tpl_db[2], *tpl_wal[2];
static size_t tpl_db_len[2], tpl_wal_len[2];
static char path[512], wal_path[600], journal_path[600];

static void must(fv_status st, fv_db *db, const char *what)
{
    if (st != FV_OK) {
        fprintf(stderr, "fuzz_vfs: template: %s: %s\n", what, fv_errmsg(db));
        abort();
    }
}

static char *add(fv_db *db, const char *table, const char *f1, const char *v1, const char *f2,
                 const char *v2, const char *f3, const char *v3)
{
    fv_record *r;
    must(fv_record_new(db, table, &r), db, "new");
    must(fv_record_set_text(r, f1, v1), db, f1);
    if (f2 != NULL) must(fv_record_set_text(r, f2, v2), db, f2);
    if (f3 != NULL) must(fv_record_set_text(r, f3, v3), db, f3);
    must(fv_insert(db, r), db, "insert");
    char *id = strdup(fv_record_id(r));
    fv_record_free(r);
    return id;
}

static void make_templates(void)
{
    char tpl[512], tpl_wal_path[600];
    fz_path(tpl, sizeof tpl, "template.fv");
    snprintf(tpl_wal_path, sizeof tpl_wal_path, "%s-wal", tpl);
    fv_db *db;
    must(fz_open(tpl, FV_OPEN_CREATE, &db), db, "create");
    char *c1 = add(db, "customer", "name", "Acme Foods", "grade", "A", "stage", "intent");
    char *c2 = add(db, "customer", "name", "Bolt Works", "grade", "S", "next_due", "2025-07-01");
    free(add(db, "contact", "customer_id", c1, "name", "Li Wei", "phone", "+86 138"));
    free(add(db, "visit", "customer_id", c1, "method", "visit", "summary", "Trial of line 3"));
    free(add(db, "visit", "customer_id", c2, "method", "phone", "summary", "Called back"));
    must(fv_close(db), NULL, "close");
    tpl_db[0] = fz_read_file(tpl, &tpl_db_len[0]);
    tpl_wal[0] = NULL;
    tpl_wal_len[0] = 0;

    /* a store with committed frames still in its WAL: snapshot while open */
    must(fz_open(tpl, 0, &db), db, "reopen");
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "Later %d", i);
        free(add(db, "customer", "name", name, "needs", "needs text that takes up some room",
                 NULL, NULL));
    }
    free(add(db, "visit", "customer_id", c2, "method", "email", "summary", "Quote sent"));
    must(fv_delete(db, "customer", c1), db, "delete");
    tpl_db[1] = fz_read_file(tpl, &tpl_db_len[1]);
    tpl_wal[1] = fz_read_file(tpl_wal_path, &tpl_wal_len[1]);
    if (tpl_wal[1] == NULL) abort();
    must(fv_close(db), NULL, "close");
    fz_remove(tpl);
    fz_remove(tpl_wal_path);
    free(c1);
    free(c2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    fz_path(path, sizeof path, "v.fv");
    snprintf(wal_path, sizeof wal_path, "%s-wal", path);
    snprintf(journal_path, sizeof journal_path, "%s-journal", path);
    make_templates();
    return 0;
}

/* ---- op mode ---- */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void buf_set(buf *b, const unsigned char *p, size_t n)
{
    b->cap = n + 8 * (size_t)WAL_FRAME;
    b->p = malloc(b->cap);
    if (b->p == NULL) abort();
    if (n > 0) memcpy(b->p, p, n);
    b->n = n;
}

static size_t db_pages(const buf *b)
{
    return b->n > FV_VAULT_HDR_SIZE ? (b->n - FV_VAULT_HDR_SIZE) / FV_PAGE_SIZE : 0;
}

static unsigned char *db_page(buf *b, size_t i)
{
    return b->p + FV_VAULT_HDR_SIZE + i * FV_PAGE_SIZE;
}

static size_t wal_frames(const buf *b)
{
    return b->n > WAL_HDR ? (b->n - WAL_HDR) / WAL_FRAME : 0;
}

static unsigned char *wal_frame(buf *b, size_t i)
{
    return b->p + WAL_HDR + i * WAL_FRAME;
}

static void swap_bytes(unsigned char *a, unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

static void apply_op(buf *db, buf *wal, uint8_t code, uint8_t a, uint32_t x, uint16_t y)
{
    size_t np = db_pages(db), nf = wal_frames(wal);
    switch (code % 14) {
    case 0: /* flip a byte of the store file */
        if (db->n > 0) db->p[x % db->n] ^= (unsigned char)(a | 1);
        break;
    case 1: /* flip a byte of the WAL */
        if (wal->n > 0) wal->p[x % wal->n] ^= (unsigned char)(a | 1);
        break;
    case 2: /* an authentic page at another page number */
        if (np > 0) memcpy(db_page(db, y % np), db_page(db, x % np), FV_PAGE_SIZE);
        break;
    case 3: /* swap two pages */
        if (np > 0) {
            size_t i = x % np, j = y % np;
            if (i != j) swap_bytes(db_page(db, i), db_page(db, j), FV_PAGE_SIZE);
        }
        break;
    case 4: /* an authentic frame at another position */
        if (nf > 0) memcpy(wal_frame(wal, y % nf), wal_frame(wal, x % nf), WAL_FRAME);
        break;
    case 5: /* swap two frames */
        if (nf > 0) {
            size_t i = x % nf, j = y % nf;
            if (i != j) swap_bytes(wal_frame(wal, i), wal_frame(wal, j), WAL_FRAME);
        }
        break;
    case 6: /* append a copy of a frame */
        if (nf > 0 && wal->n + WAL_FRAME <= wal->cap) {
            memcpy(wal->p + wal->n, wal_frame(wal, x % nf), WAL_FRAME);
            wal->n += WAL_FRAME;
        }
        break;
    case 7: /* truncate the store file */
        db->n = db->n > 0 ? x % (db->n + 1) : 0;
        break;
    case 8: /* truncate the WAL (a torn tail, or a cut inside a frame) */
        wal->n = wal->n > 0 ? x % (wal->n + 1) : 0;
        break;
    case 9: /* drop the WAL */
        wal->n = 0;
        break;
    case 10: /* a page image from the store file into a frame's page */
        if (np > 0 && nf > 0)
            memcpy(wal_frame(wal, y % nf) + 24, db_page(db, x % np), FV_PAGE_SIZE);
        break;
    case 11: /* flip a byte of a header slot's fields */
        if (db->n >= FV_VAULT_HDR_SIZE) db->p[x % FV_VAULT_HDR_SIZE] ^= (unsigned char)(a | 1);
        break;
    case 12: /* swap the header slots */
        if (db->n >= FV_VAULT_HDR_SIZE)
            swap_bytes(db->p, db->p + FV_VAULT_SLOT_SIZE, FV_VAULT_SLOT_SIZE);
        break;
    case 13: /* append a copy of a page */
        if (np > 0 && db->n + FV_PAGE_SIZE <= db->cap) {
            memcpy(db->p + db->n, db_page(db, x % np), FV_PAGE_SIZE);
            db->n += FV_PAGE_SIZE;
        }
        break;
    }
}

static void fix_checksums(buf *db)
{
    if (db->n < FV_VAULT_HDR_SIZE) return;
    for (int s = 0; s < 2; s++) {
        unsigned char *slot = db->p + s * FV_VAULT_SLOT_SIZE;
        crypto_generichash(slot + SLOT_SUM, 32, slot, SLOT_SUM, NULL, 0);
    }
}

/* ---- using the store ---- */

static void write_some(fv_db *db)
{
    fv_record *r = NULL;
    if (fv_record_new(db, "customer", &r) != FV_OK) return;
    fv_status st = fv_record_set_text(r, "name", "Fuzzed Co");
    if (st == FV_OK) st = fv_insert(db, r);
    if (st == FV_OK) {
        char id[FV_ID_LEN + 1];
        snprintf(id, sizeof id, "%s", fv_record_id(r));
        fv_record *v = NULL;
        if (fv_record_new(db, "visit", &v) == FV_OK) {
            if (fv_record_set_text(v, "customer_id", id) == FV_OK &&
                fv_record_set_text(v, "method", "visit") == FV_OK)
                fz_ignore(fv_insert(db, v));
            fv_record_free(v);
        }
        if (fv_record_set_text(r, "stage", "won") == FV_OK) fz_ignore(fv_update(db, r));
        fz_ignore(fv_delete(db, "customer", id));
    }
    fv_record_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t flags = fz_u8(&in);
    buf db, wal;
    if (flags & 0x08) {
        int t = (flags & 0x10) ? 1 : 0;
        buf_set(&db, tpl_db[t], tpl_db_len[t]);
        buf_set(&wal, tpl_wal[t], tpl_wal_len[t]);
        for (int i = 0; i < MAX_OPS && in.n >= 8; i++) {
            uint8_t code = fz_u8(&in), a = fz_u8(&in);
            uint32_t x = fz_u32(&in);
            uint16_t y = fz_u16(&in);
            apply_op(&db, &wal, code, a, x, y);
        }
    } else {
        uint32_t dlen = fz_u32(&in);
        const uint8_t *p;
        size_t n = fz_take(&in, dlen, &p);
        if (n > MAX_FILE || in.n > MAX_FILE) return 0;
        buf_set(&db, p, n);
        buf_set(&wal, in.p, in.n);
    }
    if (flags & 0x01) fix_checksums(&db);

    fz_remove(wal_path);
    fz_remove(journal_path);
    fz_write_file(path, db.p, db.n);
    if (wal.n > 0) fz_write_file(wal_path, wal.p, wal.n);
    free(db.p);
    free(wal.p);

    fv_db *h = NULL;
    fv_status st = fz_open(path, 0, &h);
    FZ_CHECK(st == FV_OK || st == FV_EKEY || st == FV_ECORRUPT || st == FV_EIO ||
                 st == FV_ENOMEM,
             "opening a damaged store: status %d (%s)", (int)st,
             h != NULL ? fv_errmsg(h) : "no handle");
    if (st != FV_OK) {
        FZ_CHECK(fv_errmsg(h) != NULL, "no message");
        fv_close(h);
        return 0;
    }
    fz_ignore(fz_read_all(h));
    fz_ignore(fv_check(h));
    if (flags & 0x02) write_some(h);
    if (flags & 0x04) fz_ignore(fv_rekey(h));
    fz_ignore(fv_close(h));
    return 0;
}
