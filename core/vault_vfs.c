/*
 * vault_vfs.c - the encrypting SQLite VFS shim.
 *
 * One instance per open store wraps the "unix" (default) VFS and seals every
 * page that reaches the disk with XChaCha20-Poly1305 (libsodium):
 *   - main database: logical offset x lives at file offset x + 4096 (the
 *     vault header, read and written by keys.c through the helpers at the
 *     end of this file); every 4096-byte page is sealed, AD = role, page
 *     number, epoch, check.
 *   - WAL: the 32-byte WAL header is stored as is (magic, salts, no data);
 *     every frame's page image is sealed with AD = role, frame index, the
 *     whole 24-byte frame header (page number, commit size, salts and
 *     checksum), epoch, check, so every byte of a frame is authenticated; the
 *     frame checksums (computed by SQLite over plaintext) are stored XOR-masked
 *     with a keyed BLAKE2b of (salts, frame index) so they confirm no guesses.
 *     SQLite writes a frame as header then page: the header is held until its
 *     page arrives and both go out in one write.  A header rewritten alone
 *     (SQLite recomputing checksums after overwriting a page in place) makes
 *     us re-seal that frame.
 *   - rollback journal (only ever used briefly while a new store switches to
 *     WAL): page-sized I/O is sealed (AD = role, file offset), the small
 *     records between pages (page numbers, checksums, header) are XORed with
 *     a keyed stream.
 *   - temporary files (no name / delete-on-close / temp kinds) live in heap
 *     memory and never touch the disk.
 * The last 48 bytes of every page (SQLite's reserved bytes) hold
 * nonce(24) | tag(16) | epoch(u32 LE) | check(u32 LE); reads return them
 * zeroed.  Nonces are random per write: a counter could repeat after a crash.
 *
 * Torn WAL tail vs tampering.  During WAL recovery SQLite reads whole frames
 * and stops at the first one whose checksum is wrong: that is how a torn last
 * write is dropped.  A frame that fails authentication in such a read is
 * presented as an invalid frame (zeroed header) only if no later frame of the
 * same WAL generation is an authentic commit frame; otherwise committed data
 * after it would be silently lost, so it is an I/O error naming the frame.
 * Likewise a damaged WAL header (SQLite would ignore the whole WAL) followed
 * by authentic commit frames is an error, not a silent loss.  What remains
 * undetectable is, by nature, a damaged or removed *last* commit: that looks
 * exactly like a torn write (docs/security.md).  Every other authentication
 * failure is SQLITE_IOERR_DATA, with fv__vfs_last_failure() naming the page.
 *
 * Relies on: SQLite >= 3.34 public VFS API; exclusive locking mode (this VFS
 * is iVersion 1: no shared memory, no mmap), page size 4096 with 48 reserved
 * bytes (set by store.c before the first write).
 */
#include "vault_vfs.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PS FV_PAGE_SIZE
#define HDR FV_VAULT_HDR_SIZE
#define PAYLOAD (FV_PAGE_SIZE - FV_PAGE_RESERVE)
#define OFF_NONCE PAYLOAD
#define OFF_TAG (PAYLOAD + 24)
#define OFF_EPOCH (PAYLOAD + 40)
#define OFF_CHECK (PAYLOAD + 44)
#define WAL_HDR 32
#define WAL_FHDR 24
#define WAL_FRAME (WAL_FHDR + PS)
#define MAX_AD 40 /* largest position AD (29) + epoch + check */

_Static_assert(FV_PAGE_RESERVE == 24 + 16 + 4 + 4, "reserve layout");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == 24, "nonce size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == 16, "tag size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32, "key size");

enum { ROLE_DB = 1, ROLE_WAL = 2, ROLE_JOURNAL = 3, ROLE_MEM = 4 };

typedef struct vkey {
    uint32_t epoch;
    int used;
    unsigned char page[32];    /* AEAD key for page images */
    unsigned char mask[32];    /* keyed hash for WAL checksum masks */
    unsigned char stream[32];  /* keystream for journal records */
} vkey;

typedef struct vfile vfile;

struct fv__vfs {
    sqlite3_vfs base;     /* first: SQLite hands us this pointer */
    sqlite3_vfs *root;
    vkey *keys;           /* 2 entries, sodium_malloc'd */
    int cur;              /* index of the write key */
    vfile *db;            /* the open main database file, if any */
    vfile *wal;           /* the open WAL, if any */
    char name[48];
    char failure[96];
};

struct vfile {
    sqlite3_file base;    /* first */
    fv__vfs *vfs;
    sqlite3_file *real;   /* the root VFS's file (not for ROLE_MEM) */
    int role;
    unsigned char *scratch;         /* WAL_FRAME bytes */
    int pending;                    /* WAL: a frame header waits for its page */
    sqlite3_int64 pending_off;
    unsigned char pending_hdr[WAL_FHDR];
    unsigned char *mem;             /* ROLE_MEM contents */
    size_t mem_len, mem_cap;
};

/* ---- small helpers --------------------------------------------------- */

static uint32_t get32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put32le(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
static uint32_t get32be(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static void put64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static int rread(vfile *f, void *buf, int amt, sqlite3_int64 off)
{
    return f->real->pMethods->xRead(f->real, buf, amt, off);
}
static int rwrite(vfile *f, const void *buf, int amt, sqlite3_int64 off)
{
    return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

static vkey *key_for(fv__vfs *v, uint32_t epoch)
{
    for (int i = 0; i < 2; i++)
        if (v->keys[i].used && v->keys[i].epoch == epoch) return &v->keys[i];
    return NULL;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void fail(fv__vfs *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->failure, sizeof v->failure, fmt, ap);
    va_end(ap);
}

/* ---- sealing ----------------------------------------------------------- */

/* Seal the first PAYLOAD bytes of in into out (may alias), filling the
 * reserve.  ad holds adlen bytes of position; epoch and check are appended. */
static void seal(const vkey *k, unsigned char *out, const unsigned char *in,
                 const unsigned char *ad, size_t adlen, uint32_t check)
{
    unsigned char full[MAX_AD];
    memcpy(full, ad, adlen);
    put32le(full + adlen, k->epoch);
    put32le(full + adlen + 4, check);
    randombytes_buf(out + OFF_NONCE, 24);
    put32le(out + OFF_EPOCH, k->epoch);
    put32le(out + OFF_CHECK, check);
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
        out, out + OFF_TAG, NULL, in, PAYLOAD, full, adlen + 8, NULL,
        out + OFF_NONCE, k->page);
}

/* Authenticate and decrypt a sealed page in place; zero its reserve.
 * Returns 0, or -1 (the page is then zeroed). *epoch_out gets the epoch. */
static int unseal(fv__vfs *v, unsigned char *page, const unsigned char *ad,
                  size_t adlen, uint32_t *epoch_out)
{
    unsigned char full[MAX_AD];
    uint32_t epoch = get32le(page + OFF_EPOCH);
    const vkey *k = key_for(v, epoch);
    if (epoch_out) *epoch_out = epoch;
    int rc = -1;
    if (k != NULL) {
        memcpy(full, ad, adlen);
        memcpy(full + adlen, page + OFF_EPOCH, 8);
        rc = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            page, NULL, page, PAYLOAD, page + OFF_TAG, full, adlen + 8,
            page + OFF_NONCE, k->page);
    }
    if (rc != 0) memset(page, 0, PS);
    else memset(page + PAYLOAD, 0, FV_PAGE_RESERVE);
    return rc;
}

static size_t db_ad(unsigned char *ad, sqlite3_int64 pgno)
{
    ad[0] = ROLE_DB;
    put32le(ad + 1, (uint32_t)pgno);
    return 5;
}

/* frame: the 24-byte frame header with its checksum unmasked; all of it
 * (page number, commit size, salts, checksum) is authenticated. */
static size_t wal_ad(unsigned char *ad, uint32_t idx, const unsigned char *frame)
{
    ad[0] = ROLE_WAL;
    put32le(ad + 1, idx);
    memcpy(ad + 5, frame, WAL_FHDR);
    return 5 + WAL_FHDR;
}

static size_t journal_ad(unsigned char *ad, sqlite3_int64 off)
{
    ad[0] = ROLE_JOURNAL;
    put64le(ad + 1, (uint64_t)off);
    return 9;
}

/* XOR bytes 16..23 of a frame header with the keyed mask of (salts, idx). */
static void wal_mask(const vkey *k, unsigned char *fhdr, uint32_t idx)
{
    unsigned char in[12], m[8];
    memcpy(in, fhdr + 8, 8);
    put32le(in + 8, idx);
    crypto_generichash(m, sizeof m, in, sizeof in, k->mask, sizeof k->mask);
    for (int i = 0; i < 8; i++) fhdr[16 + i] ^= m[i];
}

static void xor_stream(const vkey *k, sqlite3_int64 off, unsigned char *buf, int n)
{
    static const unsigned char nonce[24] = {0};
    while (n > 0) {
        unsigned char ks[64] = {0};
        uint64_t blk = (uint64_t)off / 64;
        int in = (int)(off % 64);
        int m = 64 - in < n ? 64 - in : n;
        crypto_stream_xchacha20_xor_ic(ks, ks, sizeof ks, nonce, blk, k->stream);
        for (int i = 0; i < m; i++) buf[i] ^= ks[in + i];
        sodium_memzero(ks, sizeof ks);
        buf += m; off += m; n -= m;
    }
}

/* ---- main database file ----------------------------------------------- */

static int db_read(vfile *f, unsigned char *out, int amt, sqlite3_int64 off)
{
    int short_read = 0;
    while (amt > 0) {
        sqlite3_int64 pg = off / PS;
        int in = (int)(off % PS);
        int n = PS - in < amt ? PS - in : amt;
        unsigned char *page = (in == 0 && n == PS) ? out : f->scratch;
        int rc = rread(f, page, PS, HDR + pg * PS);
        if (rc == SQLITE_IOERR_SHORT_READ) {
            /* absent (or torn-off) page: SQLite treats a short read as zeros */
            memset(page, 0, PS);
            short_read = 1;
        } else if (rc != SQLITE_OK) {
            return rc;
        } else {
            unsigned char ad[MAX_AD];
            if (unseal(f->vfs, page, ad, db_ad(ad, pg + 1), NULL) != 0) {
                fail(f->vfs, "database page %lld", (long long)pg + 1);
                memset(out, 0, (size_t)amt);
                return SQLITE_IOERR_DATA;
            }
        }
        if (page != out) memcpy(out, f->scratch + in, (size_t)n);
        out += n; off += n; amt -= n;
    }
    return short_read ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

static int db_write(vfile *f, const unsigned char *buf, int amt, sqlite3_int64 off)
{
    fv__vfs *v = f->vfs;
    if (off % PS != 0 || amt % PS != 0) {
        fail(v, "a write of %d bytes at offset %lld (the page size is fixed)", amt, (long long)off);
        return SQLITE_IOERR_WRITE;
    }
    for (; amt > 0; amt -= PS, off += PS, buf += PS) {
        unsigned char ad[MAX_AD];
        seal(&v->keys[v->cur], f->scratch, buf, ad, db_ad(ad, off / PS + 1), 0);
        int rc = rwrite(f, f->scratch, PS, HDR + off);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

/* ---- WAL ----------------------------------------------------------------- */

static sqlite3_int64 frame_off(uint32_t idx)
{
    return WAL_HDR + (sqlite3_int64)(idx - 1) * WAL_FRAME;
}

/* Authenticate + decrypt the frame in buf (WAL_FRAME bytes as on disk) and
 * unmask its checksum: buf then holds what SQLite wrote.  0 or -1. */
static int frame_open(fv__vfs *v, uint32_t idx, unsigned char *buf)
{
    const vkey *k = key_for(v, get32le(buf + WAL_FHDR + OFF_EPOCH));
    if (k == NULL) {
        memset(buf, 0, WAL_FRAME);
        return -1;
    }
    unsigned char ad[MAX_AD];
    wal_mask(k, buf, idx);
    return unseal(v, buf + WAL_FHDR, ad, wal_ad(ad, idx, buf), NULL);
}

/* SQLite's WAL checksum (wal.c, walChecksumBytes) over n bytes, n % 8 == 0. */
static void wal_checksum(int big_endian, const unsigned char *a, size_t n, uint32_t s[2])
{
    for (size_t i = 0; i < n; i += 8) {
        uint32_t x0 = big_endian ? get32be(a + i) : get32le(a + i);
        uint32_t x1 = big_endian ? get32be(a + i + 4) : get32le(a + i + 4);
        s[0] += x0 + s[1];
        s[1] += x1 + s[0];
    }
}

/* Is hdr (32 bytes) a WAL header SQLite would accept? */
static int wal_header_valid(const unsigned char *hdr)
{
    uint32_t magic = get32be(hdr);
    if ((magic & 0xFFFFFFFEu) != 0x377f0682u) return 0;
    uint32_t s[2] = {0, 0};
    wal_checksum((int)(magic & 1), hdr, 24, s);
    return s[0] == get32be(hdr + 24) && s[1] == get32be(hdr + 28);
}

/* Is there, after frame idx, an authentic commit frame (of the generation
 * whose salts are given, or of any generation if salts is NULL)?  Scans the
 * rest of the file once; only ever runs after a failure.  Uses scratch. */
static int later_commit_exists(vfile *f, uint32_t idx, const unsigned char *salts)
{
    for (uint32_t j = idx + 1;; j++) {
        if (rread(f, f->scratch, WAL_FRAME, frame_off(j)) != SQLITE_OK) return 0;
        if (salts != NULL && memcmp(f->scratch + 8, salts, 8) != 0) continue;
        if (get32be(f->scratch + 4) == 0) continue;
        if (frame_open(f->vfs, j, f->scratch) == 0) return 1;
    }
}

/* Seal frame idx (header hdr as SQLite made it, page plaintext) and write
 * the whole frame: header (checksum masked) and sealed page in one write. */
static int wal_put_frame(vfile *f, uint32_t idx, const unsigned char *hdr,
                         const unsigned char *page)
{
    fv__vfs *v = f->vfs;
    const vkey *k = &v->keys[v->cur];
    unsigned char ad[MAX_AD];
    memcpy(f->scratch, hdr, WAL_FHDR);
    seal(k, f->scratch + WAL_FHDR, page, ad, wal_ad(ad, idx, hdr), get32be(hdr + 8));
    wal_mask(k, f->scratch, idx);
    return rwrite(f, f->scratch, WAL_FRAME, frame_off(idx));
}

/* Re-seal frame idx already on disk with a new header (hdr) and/or a new page
 * (page, or NULL to keep the one on disk).  SQLite does this when a page is
 * written twice in one transaction (page overwritten in place, then the
 * checksums of the following frames rewritten). */
static int wal_reseal(vfile *f, uint32_t idx, const unsigned char *hdr,
                      const unsigned char *page)
{
    unsigned char *frame = malloc(WAL_FRAME);
    if (frame == NULL) return SQLITE_IOERR_NOMEM;
    int rc = rread(f, frame, WAL_FRAME, frame_off(idx));
    if (rc == SQLITE_OK && frame_open(f->vfs, idx, frame) != 0) {
        fail(f->vfs, "WAL frame %u (page %u)", (unsigned)idx, (unsigned)get32be(frame));
        rc = SQLITE_IOERR_DATA;
    }
    if (rc == SQLITE_OK)
        rc = wal_put_frame(f, idx, hdr ? hdr : frame, page ? page : frame + WAL_FHDR);
    sodium_memzero(frame, WAL_FRAME);
    free(frame);
    return rc;
}

/* A frame header written alone: either the first half of a new frame (its
 * page follows at once) or a checksum rewrite of an existing frame. */
static int wal_flush(vfile *f)
{
    if (!f->pending) return SQLITE_OK;
    f->pending = 0;
    uint32_t idx = (uint32_t)((f->pending_off - WAL_HDR) / WAL_FRAME) + 1;
    return wal_reseal(f, idx, f->pending_hdr, NULL);
}

static int wal_read(vfile *f, unsigned char *out, int amt, sqlite3_int64 off)
{
    fv__vfs *v = f->vfs;
    int rc = wal_flush(f);
    if (rc != SQLITE_OK) return rc;
    if (off < WAL_HDR) {
        int n = (int)(WAL_HDR - off) < amt ? (int)(WAL_HDR - off) : amt;
        rc = rread(f, out, n, off);
        if (rc != SQLITE_OK) {
            if (rc == SQLITE_IOERR_SHORT_READ) memset(out, 0, (size_t)amt);
            return rc;
        }
        /* SQLite ignores a WAL whose header is damaged, losing every
         * commit in it: if authentic commits follow, that is tampering. */
        if (off == 0 && n == WAL_HDR && !wal_header_valid(out) &&
            later_commit_exists(f, 0, NULL)) {
            fail(v, "the WAL header");
            memset(out, 0, (size_t)amt);
            return SQLITE_IOERR_DATA;
        }
        out += n; off += n; amt -= n;
    }
    while (amt > 0) {
        uint32_t idx = (uint32_t)((off - WAL_HDR) / WAL_FRAME) + 1;
        int in = (int)((off - WAL_HDR) % WAL_FRAME);
        int n = WAL_FRAME - in < amt ? WAL_FRAME - in : amt;
        rc = rread(f, f->scratch, WAL_FRAME, frame_off(idx));
        if (rc == SQLITE_IOERR_SHORT_READ) {
            /* a frame cut short at the end of the file: not there */
            memset(out, 0, (size_t)amt);
            return rc;
        }
        if (rc != SQLITE_OK) return rc;
        uint32_t pgno = get32be(f->scratch);
        if (frame_open(v, idx, f->scratch) != 0) {
            unsigned char whdr[WAL_HDR];
            int whole = in == 0 && n == WAL_FRAME;
            if (whole && rread(f, whdr, WAL_HDR, 0) == SQLITE_OK &&
                !later_commit_exists(f, idx, whdr + 16)) {
                /* recovery read of a torn or stale tail: an invalid frame */
                memset(out, 0, (size_t)n);
                out += n; off += n; amt -= n;
                continue;
            }
            fail(v, "WAL frame %u (page %u)", (unsigned)idx, (unsigned)pgno);
            memset(out, 0, (size_t)amt);
            return SQLITE_IOERR_DATA;
        }
        memcpy(out, f->scratch + in, (size_t)n);
        out += n; off += n; amt -= n;
    }
    return SQLITE_OK;
}

static int wal_write(vfile *f, const unsigned char *buf, int amt, sqlite3_int64 off)
{
    fv__vfs *v = f->vfs;
    int rc = SQLITE_OK;
    if (off < WAL_HDR) {
        if ((rc = wal_flush(f)) != SQLITE_OK) return rc;
        if (off + amt > WAL_HDR) goto odd;
        return rwrite(f, buf, amt, off);
    }
    uint32_t idx = (uint32_t)((off - WAL_HDR) / WAL_FRAME) + 1;
    int in = (int)((off - WAL_HDR) % WAL_FRAME);
    if (in == 0 && amt == WAL_FHDR) {
        if ((rc = wal_flush(f)) != SQLITE_OK) return rc;
        f->pending = 1;
        f->pending_off = off;
        memcpy(f->pending_hdr, buf, WAL_FHDR);
        return SQLITE_OK;
    }
    if (in == 0 && amt == WAL_FRAME) {
        if ((rc = wal_flush(f)) != SQLITE_OK) return rc;
        return wal_put_frame(f, idx, buf, buf + WAL_FHDR);
    }
    if (in == WAL_FHDR && amt == PS) {
        if (f->pending && f->pending_off == off - WAL_FHDR) {
            f->pending = 0;
            return wal_put_frame(f, idx, f->pending_hdr, buf);
        }
        if ((rc = wal_flush(f)) != SQLITE_OK) return rc;
        return wal_reseal(f, idx, NULL, buf);  /* page overwritten in place */
    }
odd:
    fail(v, "an unexpected WAL write of %d bytes at offset %lld", amt, (long long)off);
    return SQLITE_IOERR_WRITE;
}

/* ---- rollback journal ---------------------------------------------------- */

static int journal_read(vfile *f, unsigned char *out, int amt, sqlite3_int64 off)
{
    fv__vfs *v = f->vfs;
    int rc = rread(f, out, amt, off);
    if (rc != SQLITE_OK) return rc;
    if (amt == PS) {
        unsigned char ad[MAX_AD];
        if (unseal(v, out, ad, journal_ad(ad, off), NULL) != 0) {
            fail(v, "the rollback journal at offset %lld", (long long)off);
            return SQLITE_IOERR_DATA;
        }
        return SQLITE_OK;
    }
    xor_stream(&v->keys[v->cur], off, out, amt);
    return SQLITE_OK;
}

static int journal_write(vfile *f, const unsigned char *buf, int amt, sqlite3_int64 off)
{
    fv__vfs *v = f->vfs;
    if (amt == PS) {
        unsigned char ad[MAX_AD];
        seal(&v->keys[v->cur], f->scratch, buf, ad, journal_ad(ad, off), 0);
        return rwrite(f, f->scratch, PS, off);
    }
    while (amt > 0) {
        int n = amt < WAL_FRAME ? amt : WAL_FRAME;
        memcpy(f->scratch, buf, (size_t)n);
        xor_stream(&v->keys[v->cur], off, f->scratch, n);
        int rc = rwrite(f, f->scratch, n, off);
        if (rc != SQLITE_OK) return rc;
        buf += n; off += n; amt -= n;
    }
    return SQLITE_OK;
}

/* ---- io methods: sealed files ------------------------------------------ */

static int v_close(sqlite3_file *file)
{
    vfile *f = (vfile *)file;
    int rc = SQLITE_OK;
    if (f->role == ROLE_WAL) rc = wal_flush(f);
    int rc2 = f->real->pMethods->xClose(f->real);
    if (rc == SQLITE_OK) rc = rc2;
    sqlite3_free(f->real);
    f->real = NULL;
    if (f->scratch != NULL) {
        sodium_memzero(f->scratch, WAL_FRAME);
        free(f->scratch);
        f->scratch = NULL;
    }
    if (f->vfs->db == f) f->vfs->db = NULL;
    if (f->vfs->wal == f) f->vfs->wal = NULL;
    return rc;
}

static int v_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
    vfile *f = (vfile *)file;
    switch (f->role) {
    case ROLE_DB: return db_read(f, buf, amt, off);
    case ROLE_WAL: return wal_read(f, buf, amt, off);
    default: return journal_read(f, buf, amt, off);
    }
}

static int v_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
    vfile *f = (vfile *)file;
    switch (f->role) {
    case ROLE_DB: return db_write(f, buf, amt, off);
    case ROLE_WAL: return wal_write(f, buf, amt, off);
    default: return journal_write(f, buf, amt, off);
    }
}

static int v_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    vfile *f = (vfile *)file;
    if (f->role == ROLE_WAL) {
        int rc = wal_flush(f);
        if (rc != SQLITE_OK) return rc;
    }
    return f->real->pMethods->xTruncate(f->real, size + (f->role == ROLE_DB ? HDR : 0));
}

static int v_sync(sqlite3_file *file, int flags)
{
    vfile *f = (vfile *)file;
    if (f->role == ROLE_WAL) {
        int rc = wal_flush(f);
        if (rc != SQLITE_OK) return rc;
    }
    return f->real->pMethods->xSync(f->real, flags);
}

static int v_size(sqlite3_file *file, sqlite3_int64 *size)
{
    vfile *f = (vfile *)file;
    if (f->role == ROLE_WAL) {
        int rc = wal_flush(f);
        if (rc != SQLITE_OK) return rc;
    }
    int rc = f->real->pMethods->xFileSize(f->real, size);
    if (rc == SQLITE_OK && f->role == ROLE_DB) *size = *size > HDR ? *size - HDR : 0;
    return rc;
}

static int v_lock(sqlite3_file *file, int lock)
{
    vfile *f = (vfile *)file;
    return f->real->pMethods->xLock(f->real, lock);
}
static int v_unlock(sqlite3_file *file, int lock)
{
    vfile *f = (vfile *)file;
    return f->real->pMethods->xUnlock(f->real, lock);
}
static int v_reserved(sqlite3_file *file, int *out)
{
    vfile *f = (vfile *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

/* Authenticate every page of the database file and every frame of the
 * current WAL generation (fv check). */
static int verify(vfile *f, int *result)
{
    fv__vfs *v = f->vfs;
    sqlite3_int64 size;
    *result = SQLITE_OK;
    int rc = f->real->pMethods->xFileSize(f->real, &size);
    if (rc != SQLITE_OK) return rc;
    size -= HDR;
    if (size % PS != 0) {
        fail(v, "database page %lld (cut short)", (long long)(size / PS + 1));
        *result = SQLITE_IOERR_DATA;
        return SQLITE_OK;
    }
    for (sqlite3_int64 pg = 0; pg < size / PS; pg++) {
        unsigned char ad[MAX_AD];
        if ((rc = rread(f, f->scratch, PS, HDR + pg * PS)) != SQLITE_OK) return rc;
        if (unseal(v, f->scratch, ad, db_ad(ad, pg + 1), NULL) != 0) {
            fail(v, "database page %lld", (long long)pg + 1);
            *result = SQLITE_IOERR_DATA;
            return SQLITE_OK;
        }
    }
    vfile *w = v->wal;
    if (w == NULL) return SQLITE_OK;
    if ((rc = wal_flush(w)) != SQLITE_OK) return rc;
    unsigned char whdr[WAL_HDR];
    if (rread(w, whdr, WAL_HDR, 0) != SQLITE_OK) return SQLITE_OK; /* empty WAL */
    if (!wal_header_valid(whdr)) {
        if (later_commit_exists(w, 0, NULL)) {
            fail(v, "the WAL header");
            *result = SQLITE_IOERR_DATA;
        }
        return SQLITE_OK;
    }
    for (uint32_t idx = 1;; idx++) {
        if (rread(w, w->scratch, WAL_FRAME, frame_off(idx)) != SQLITE_OK) break;
        if (memcmp(w->scratch + 8, whdr + 16, 8) != 0) break;
        uint32_t pgno = get32be(w->scratch);
        if (frame_open(v, idx, w->scratch) != 0) {
            if (!later_commit_exists(w, idx, whdr + 16)) break;
            fail(v, "WAL frame %u (page %u)", (unsigned)idx, (unsigned)pgno);
            *result = SQLITE_IOERR_DATA;
            break;
        }
    }
    return SQLITE_OK;
}

static int count_old_epoch(vfile *f, int *result)
{
    fv__vfs *v = f->vfs;
    sqlite3_int64 size;
    int rc = f->real->pMethods->xFileSize(f->real, &size);
    if (rc != SQLITE_OK) return rc;
    int n = 0;
    for (sqlite3_int64 pg = 0; pg < (size - HDR) / PS; pg++) {
        unsigned char ep[4];
        if ((rc = rread(f, ep, 4, HDR + pg * PS + OFF_EPOCH)) != SQLITE_OK) return rc;
        if (get32le(ep) != v->keys[v->cur].epoch) n++;
    }
    *result = n;
    return SQLITE_OK;
}

static int v_fcntl(sqlite3_file *file, int op, void *arg)
{
    vfile *f = (vfile *)file;
    if (op == FV_FCNTL_VERIFY && f->role == ROLE_DB) return verify(f, arg);
    if (op == FV_FCNTL_COUNT_OLD_EPOCH && f->role == ROLE_DB) return count_old_epoch(f, arg);
    if (op == SQLITE_FCNTL_SIZE_HINT) return SQLITE_OK;  /* would pre-extend with zero pages */
    if (op == SQLITE_FCNTL_MMAP_SIZE) {                    /* pages must pass through xRead */
        if (arg != NULL) *(sqlite3_int64 *)arg = 0;
        return SQLITE_OK;
    }
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int v_sector(sqlite3_file *file)
{
    (void)file;
    return 512;  /* keeps journal headers apart from page-sized records */
}

static int v_devchar(sqlite3_file *file)
{
    vfile *f = (vfile *)file;
    /* Never split a frame write at a sector boundary (sealed frames are
     * written whole); never assume atomic page writes of ciphertext. */
    int c = f->real->pMethods->xDeviceCharacteristics(f->real);
    c &= ~(SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_ATOMIC512 | SQLITE_IOCAP_ATOMIC1K |
           SQLITE_IOCAP_ATOMIC2K | SQLITE_IOCAP_ATOMIC4K | SQLITE_IOCAP_ATOMIC8K |
           SQLITE_IOCAP_ATOMIC16K | SQLITE_IOCAP_ATOMIC32K | SQLITE_IOCAP_ATOMIC64K |
           SQLITE_IOCAP_BATCH_ATOMIC);
    return c | SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

static const sqlite3_io_methods vault_methods = {
    1, v_close, v_read, v_write, v_truncate, v_sync, v_size, v_lock, v_unlock,
    v_reserved, v_fcntl, v_sector, v_devchar,
    NULL, NULL, NULL, NULL, NULL, NULL,
};

/* ---- io methods: memory files (temp files never reach the disk) ---------- */

static int m_close(sqlite3_file *file)
{
    vfile *f = (vfile *)file;
    if (f->mem != NULL) {
        sodium_memzero(f->mem, f->mem_cap);
        free(f->mem);
    }
    f->mem = NULL;
    f->mem_len = f->mem_cap = 0;
    return SQLITE_OK;
}

static int m_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
    vfile *f = (vfile *)file;
    size_t have = (size_t)off < f->mem_len ? f->mem_len - (size_t)off : 0;
    size_t n = have < (size_t)amt ? have : (size_t)amt;
    if (n > 0) memcpy(buf, f->mem + off, n);
    if (n < (size_t)amt) {
        memset((unsigned char *)buf + n, 0, (size_t)amt - n);
        return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
}

static int m_grow(vfile *f, size_t need)
{
    if (need <= f->mem_cap) return SQLITE_OK;
    size_t cap = f->mem_cap ? f->mem_cap : 65536;
    while (cap < need) {
        if (cap > ((size_t)1 << 40)) return SQLITE_FULL;
        cap *= 2;
    }
    unsigned char *p = malloc(cap);
    if (p == NULL) return SQLITE_IOERR_NOMEM;
    if (f->mem_len) memcpy(p, f->mem, f->mem_len);
    memset(p + f->mem_len, 0, cap - f->mem_len);
    if (f->mem) {
        sodium_memzero(f->mem, f->mem_cap);
        free(f->mem);
    }
    f->mem = p;
    f->mem_cap = cap;
    return SQLITE_OK;
}

static int m_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
    vfile *f = (vfile *)file;
    size_t end = (size_t)off + (size_t)amt;
    int rc = m_grow(f, end);
    if (rc != SQLITE_OK) return rc;
    memcpy(f->mem + off, buf, (size_t)amt);
    if (end > f->mem_len) f->mem_len = end;
    return SQLITE_OK;
}

static int m_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    vfile *f = (vfile *)file;
    if ((size_t)size < f->mem_len) {
        sodium_memzero(f->mem + size, f->mem_len - (size_t)size);
        f->mem_len = (size_t)size;
    }
    return SQLITE_OK;
}

static int m_sync(sqlite3_file *file, int flags)
{
    (void)file; (void)flags;
    return SQLITE_OK;
}
static int m_size(sqlite3_file *file, sqlite3_int64 *size)
{
    *size = (sqlite3_int64)((vfile *)file)->mem_len;
    return SQLITE_OK;
}
static int m_lock(sqlite3_file *file, int lock)
{
    (void)file; (void)lock;
    return SQLITE_OK;
}
static int m_reserved(sqlite3_file *file, int *out)
{
    (void)file;
    *out = 0;
    return SQLITE_OK;
}
static int m_fcntl(sqlite3_file *file, int op, void *arg)
{
    (void)file; (void)op; (void)arg;
    return SQLITE_NOTFOUND;
}
static int m_devchar(sqlite3_file *file)
{
    (void)file;
    return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

static const sqlite3_io_methods mem_methods = {
    1, m_close, m_read, m_write, m_truncate, m_sync, m_size, m_lock, m_lock,
    m_reserved, m_fcntl, v_sector, m_devchar,
    NULL, NULL, NULL, NULL, NULL, NULL,
};

/* ---- the VFS ------------------------------------------------------------ */

static int x_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                  int *out_flags)
{
    fv__vfs *v = (fv__vfs *)vfs;
    vfile *f = (vfile *)file;
    memset(f, 0, sizeof *f);
    f->vfs = v;
    const int temp = SQLITE_OPEN_DELETEONCLOSE | SQLITE_OPEN_TEMP_DB |
                     SQLITE_OPEN_TEMP_JOURNAL | SQLITE_OPEN_SUBJOURNAL |
                     SQLITE_OPEN_TRANSIENT_DB;
    if (name == NULL || (flags & temp) != 0) {
        f->role = ROLE_MEM;
        f->base.pMethods = &mem_methods;
        if (out_flags) *out_flags = flags;
        return SQLITE_OK;
    }
    if (flags & SQLITE_OPEN_MAIN_DB) f->role = ROLE_DB;
    else if (flags & SQLITE_OPEN_WAL) f->role = ROLE_WAL;
    else if (flags & SQLITE_OPEN_MAIN_JOURNAL) f->role = ROLE_JOURNAL;
    else return SQLITE_CANTOPEN;  /* no attached or super-journal files */
    if ((f->role == ROLE_DB && v->db != NULL) || (f->role == ROLE_WAL && v->wal != NULL))
        return SQLITE_CANTOPEN;   /* one store per VFS instance */

    f->scratch = malloc(WAL_FRAME);
    f->real = sqlite3_malloc(v->root->szOsFile);
    if (f->scratch == NULL || f->real == NULL) {
        free(f->scratch);
        sqlite3_free(f->real);
        f->scratch = NULL;
        f->real = NULL;
        return SQLITE_NOMEM;
    }
    memset(f->real, 0, (size_t)v->root->szOsFile);
    int rc = v->root->xOpen(v->root, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods != NULL) f->real->pMethods->xClose(f->real);
        sqlite3_free(f->real);
        free(f->scratch);
        f->real = NULL;
        f->scratch = NULL;
        return rc;
    }
    if (f->role == ROLE_DB) v->db = f;
    if (f->role == ROLE_WAL) v->wal = f;
    f->base.pMethods = &vault_methods;
    return SQLITE_OK;
}

static int x_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    sqlite3_vfs *root = ((fv__vfs *)vfs)->root;
    return root->xDelete(root, name, sync_dir);
}
static int x_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    sqlite3_vfs *root = ((fv__vfs *)vfs)->root;
    return root->xAccess(root, name, flags, out);
}
static int x_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    sqlite3_vfs *root = ((fv__vfs *)vfs)->root;
    return root->xFullPathname(root, name, n, out);
}
static void *x_dlopen(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs; (void)name;
    return NULL;  /* no loadable extensions inside a vault */
}
static void x_dlerror(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    if (n > 0) snprintf(out, (size_t)n, "extensions are not available");
}
static void (*x_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs; (void)h; (void)sym;
    return NULL;
}
static void x_dlclose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs; (void)h;
}
static int x_random(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    randombytes_buf(out, (size_t)n);
    return n;
}
static int x_sleep(sqlite3_vfs *vfs, int us)
{
    sqlite3_vfs *root = ((fv__vfs *)vfs)->root;
    return root->xSleep(root, us);
}
static int x_time(sqlite3_vfs *vfs, double *out)
{
    sqlite3_vfs *root = ((fv__vfs *)vfs)->root;
    return root->xCurrentTime(root, out);
}
static int x_lasterr(sqlite3_vfs *vfs, int n, char *out)
{
    sqlite3_vfs *root = ((fv__vfs *)vfs)->root;
    return root->xGetLastError ? root->xGetLastError(root, n, out) : 0;
}
static int x_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    sqlite3_vfs *root = ((fv__vfs *)vfs)->root;
    if (root->iVersion >= 2 && root->xCurrentTimeInt64) return root->xCurrentTimeInt64(root, out);
    double d;
    int rc = root->xCurrentTime(root, &d);
    *out = (sqlite3_int64)(d * 86400000.0);
    return rc;
}

static sqlite3_vfs *root_vfs(void)
{
    sqlite3_vfs *r = sqlite3_vfs_find("unix");
    return r ? r : sqlite3_vfs_find(NULL);
}

static void derive(vkey *k, const unsigned char key[FV_DBKEY_LEN], uint32_t epoch)
{
    static const char ctx[crypto_kdf_CONTEXTBYTES] = {'f', 'v', 'p', 'a', 'g', 'e', 's', '_'};
    crypto_kdf_derive_from_key(k->page, sizeof k->page, 1, ctx, key);
    crypto_kdf_derive_from_key(k->mask, sizeof k->mask, 2, ctx, key);
    crypto_kdf_derive_from_key(k->stream, sizeof k->stream, 3, ctx, key);
    k->epoch = epoch;
    k->used = 1;
}

int fv__vfs_create(fv__vfs **out, const unsigned char key[FV_DBKEY_LEN], uint32_t epoch)
{
    *out = NULL;
    sqlite3_vfs *root = root_vfs();
    if (root == NULL) return SQLITE_ERROR;
    fv__vfs *v = calloc(1, sizeof *v);
    if (v == NULL) return SQLITE_NOMEM;
    v->keys = sodium_malloc(2 * sizeof *v->keys);
    if (v->keys == NULL) {
        free(v);
        return SQLITE_NOMEM;
    }
    sodium_memzero(v->keys, 2 * sizeof *v->keys);
    derive(&v->keys[0], key, epoch);
    v->cur = 0;
    v->root = root;
    snprintf(v->name, sizeof v->name, "fieldvault-%p", (void *)v);
    v->base.iVersion = 2;
    v->base.szOsFile = (int)sizeof(vfile);
    v->base.mxPathname = root->mxPathname;
    v->base.zName = v->name;
    v->base.pAppData = v;
    v->base.xOpen = x_open;
    v->base.xDelete = x_delete;
    v->base.xAccess = x_access;
    v->base.xFullPathname = x_fullpath;
    v->base.xDlOpen = x_dlopen;
    v->base.xDlError = x_dlerror;
    v->base.xDlSym = x_dlsym;
    v->base.xDlClose = x_dlclose;
    v->base.xRandomness = x_random;
    v->base.xSleep = x_sleep;
    v->base.xCurrentTime = x_time;
    v->base.xGetLastError = x_lasterr;
    v->base.xCurrentTimeInt64 = x_time64;
    int rc = sqlite3_vfs_register(&v->base, 0);
    if (rc != SQLITE_OK) {
        sodium_free(v->keys);
        free(v);
        return rc;
    }
    *out = v;
    return SQLITE_OK;
}

void fv__vfs_destroy(fv__vfs *v)
{
    if (v == NULL) return;
    sqlite3_vfs_unregister(&v->base);
    sodium_free(v->keys);  /* wipes */
    sodium_memzero(v, sizeof *v);
    free(v);
}

const char *fv__vfs_name(const fv__vfs *v)
{
    return v->name;
}

int fv__vfs_add_key(fv__vfs *v, const unsigned char key[FV_DBKEY_LEN], uint32_t epoch,
                    int make_current)
{
    int slot = -1;
    for (int i = 0; i < 2; i++)
        if (v->keys[i].used && v->keys[i].epoch == epoch) slot = i;
    if (slot < 0)
        for (int i = 0; i < 2; i++)
            if (!v->keys[i].used) { slot = i; break; }
    if (slot < 0) return SQLITE_FULL;
    derive(&v->keys[slot], key, epoch);
    if (make_current) v->cur = slot;
    return SQLITE_OK;
}

int fv__vfs_drop_key(fv__vfs *v, uint32_t epoch)
{
    for (int i = 0; i < 2; i++) {
        if (v->keys[i].used && v->keys[i].epoch == epoch) {
            if (i == v->cur) return SQLITE_MISUSE;  /* never drop the write key */
            sodium_memzero(&v->keys[i], sizeof v->keys[i]);
            return SQLITE_OK;
        }
    }
    return SQLITE_NOTFOUND;
}

const char *fv__vfs_last_failure(const fv__vfs *v)
{
    return v->failure;
}

/* ---- vault header I/O --------------------------------------------------- */

/* Open path through the root VFS (so its POSIX-lock bookkeeping, which
 * tracks every descriptor of a file per process, stays right while SQLite
 * holds the store open). */
static int header_open(const char *path, int flags, sqlite3_file **out, sqlite3_filename *fname)
{
    sqlite3_vfs *root = root_vfs();
    *out = NULL;
    *fname = NULL;
    if (root == NULL) return SQLITE_ERROR;
    sqlite3_filename fn = sqlite3_create_filename(path, "", "", 0, NULL);
    sqlite3_file *f = sqlite3_malloc(root->szOsFile);
    if (fn == NULL || f == NULL) {
        sqlite3_free_filename(fn);
        sqlite3_free(f);
        return SQLITE_NOMEM;
    }
    memset(f, 0, (size_t)root->szOsFile);
    int rc = root->xOpen(root, fn, f, flags | SQLITE_OPEN_MAIN_DB, NULL);
    if (rc != SQLITE_OK) {
        if (f->pMethods != NULL) f->pMethods->xClose(f);
        sqlite3_free(f);
        sqlite3_free_filename(fn);
        return rc;
    }
    *out = f;
    *fname = fn;
    return SQLITE_OK;
}

static void header_close(sqlite3_file *f, sqlite3_filename fn)
{
    f->pMethods->xClose(f);
    sqlite3_free(f);
    sqlite3_free_filename(fn);
}

int fv__vault_header_read(const char *path, unsigned char buf[FV_VAULT_HDR_SIZE])
{
    sqlite3_file *f;
    sqlite3_filename fn;
    int rc = header_open(path, SQLITE_OPEN_READONLY, &f, &fn);
    if (rc != SQLITE_OK) return rc;
    rc = f->pMethods->xRead(f, buf, FV_VAULT_HDR_SIZE, 0);
    header_close(f, fn);
    if (rc == SQLITE_IOERR_SHORT_READ) return SQLITE_NOTADB;
    return rc;
}

int fv__vault_header_write_slot(const char *path, int slot,
                                const unsigned char data[FV_VAULT_SLOT_SIZE])
{
    if (slot != 0 && slot != 1) return SQLITE_MISUSE;
    sqlite3_file *f;
    sqlite3_filename fn;
    int rc = header_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &f, &fn);
    if (rc != SQLITE_OK) return rc;
    sqlite3_int64 size = 0;
    rc = f->pMethods->xFileSize(f, &size);
    if (rc == SQLITE_OK && size <= (1 - slot) * FV_VAULT_SLOT_SIZE) {
        /* a new file: the other slot reads as zeros, never as a gap */
        unsigned char zero[FV_VAULT_SLOT_SIZE] = {0};
        rc = f->pMethods->xWrite(f, zero, FV_VAULT_SLOT_SIZE, (1 - slot) * FV_VAULT_SLOT_SIZE);
    }
    if (rc == SQLITE_OK)
        rc = f->pMethods->xWrite(f, data, FV_VAULT_SLOT_SIZE, slot * FV_VAULT_SLOT_SIZE);
    if (rc == SQLITE_OK) rc = f->pMethods->xSync(f, SQLITE_SYNC_FULL);
    header_close(f, fn);
    return rc;
}
