/*
 * audit.c - the read audit: an entry appended whenever a confidential value
 * is handed to the caller, hash-chained per device, synced as rows of the
 * shipped table "audit", listed and verified.
 *
 * An entry (one row; every field public; schema 7):
 *
 *   id, user, tbl, row_id, field, customer_id, at_ms, device, seq,
 *   prev_id, prev_hash, hash
 *
 * seq is the entry's position in its device's chain (1, 2, ...), prev_id
 * and prev_hash name the entry before it (none and 32 zero bytes for the
 * first), and
 *
 *   hash = BLAKE2b-256(prev_hash (32 bytes) || "fieldvault audit v1" 0
 *          || id || device || seq || at_ms || user || customer_id || tbl
 *          || row_id || field || prev_id)
 *
 * with each string as a 4-byte big-endian length and its bytes, and each
 * number as 8 bytes big-endian.  Hashes travel as 64 hex characters.  The
 * head of this device's chain (position, hash, id) is kept in fv_meta
 * 'audit_head' in the same transaction as the entry, which anchors the
 * chain's end: an entry removed from the end is seen too.
 *
 * Layout: hashing, appending (fv__audit_read, called by the getters), the
 * atomic-unit helper, listing (fv_audit_each), verifying (fv_audit_verify).
 * Rows read back are untrusted: copied into bounded buffers, numbers
 * checked; anything odd simply fails its hash.
 */
#include "audit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "platform.h"

#define HASH_LEN 32
#define HEX_LEN (2 * HASH_LEN)
#define USER_MAX 256

static const char LABEL[] = "fieldvault audit v1"; /* hashed with its NUL */

typedef struct entry {
    char id[FV_ID_LEN + 1];
    char user[USER_MAX + 1];
    char tbl[FV_NAME_MAX + 1];
    char row_id[FV_ID_LEN + 1];
    char field[FV_NAME_MAX + 1];
    char customer_id[FV_ID_LEN + 1]; /* "" when none */
    int64_t at_ms;
    char device[33];
    uint64_t seq;
    char prev_id[FV_ID_LEN + 1];     /* "" for the first */
    char prev_hash[HEX_LEN + 1];
    char hash[HEX_LEN + 1];
    int deleted;
    int well_formed;                 /* numbers and hashes parse (read back) */
} entry;

/* ---- hashing ---- */

static void put_u64(crypto_generichash_state *h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (56 - 8 * i));
    crypto_generichash_update(h, b, 8);
}

static void put_str(crypto_generichash_state *h, const char *s)
{
    size_t n = strlen(s);
    unsigned char b[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    crypto_generichash_update(h, b, 4);
    crypto_generichash_update(h, (const unsigned char *)s, n);
}

/* The hash of e chained to prev (32 bytes), as hex into out. */
static void entry_hash(const entry *e, const unsigned char prev[HASH_LEN], char out[HEX_LEN + 1])
{
    crypto_generichash_state h;
    unsigned char d[HASH_LEN];
    crypto_generichash_init(&h, NULL, 0, HASH_LEN);
    crypto_generichash_update(&h, prev, HASH_LEN);
    crypto_generichash_update(&h, (const unsigned char *)LABEL, sizeof LABEL);
    put_str(&h, e->id);
    put_str(&h, e->device);
    put_u64(&h, e->seq);
    put_u64(&h, (uint64_t)e->at_ms);
    put_str(&h, e->user);
    put_str(&h, e->customer_id);
    put_str(&h, e->tbl);
    put_str(&h, e->row_id);
    put_str(&h, e->field);
    put_str(&h, e->prev_id);
    crypto_generichash_final(&h, d, sizeof d);
    sodium_bin2hex(out, HEX_LEN + 1, d, sizeof d);
}

/* 64 hex characters to 32 bytes: 0, or -1. */
static int unhex(const char *hex, unsigned char out[HASH_LEN])
{
    size_t n = 0;
    if (strlen(hex) != HEX_LEN) return -1;
    return sodium_hex2bin(out, HASH_LEN, hex, HEX_LEN, NULL, &n, NULL) == 0 && n == HASH_LEN ? 0
                                                                                            : -1;
}

/* ---- atomic units ---- */

fv_status fv__atomic_begin(fv_db *db, int *mode)
{
    *mode = 0;
    if (!sqlite3_get_autocommit(db->sql)) { /* a batch or an apply: nest */
        *mode = 2;
        return fv__exec(db, "SAVEPOINT fv_unit");
    }
    int opened = 0;
    fv_status st = fv__tx_begin(db, &opened);
    *mode = opened ? 1 : 0;
    return st;
}

fv_status fv__atomic_end(fv_db *db, int mode, fv_status st)
{
    if (mode == 2) {
        if (st != FV_OK) (void)sqlite3_exec(db->sql, "ROLLBACK TO fv_unit", NULL, NULL, NULL);
        int rc = sqlite3_exec(db->sql, "RELEASE fv_unit", NULL, NULL, NULL);
        if (st == FV_OK && rc != SQLITE_OK) st = fv__sqlerr(db, rc, "ending a savepoint");
        return st;
    }
    return fv__tx_end(db, mode == 1, st);
}

/* ---- appending ---- */

/* This device's chain head: position, hash (bytes) and id of its last
 * entry (0, zeros and "" before the first). */
static fv_status chain_head(fv_db *db, const char *device, uint64_t *seq,
                            unsigned char hash[HASH_LEN], char id[FV_ID_LEN + 1])
{
    *seq = 0;
    memset(hash, 0, HASH_LEN);
    id[0] = '\0';
    char text[128];
    fv_status st = fv__meta_text(db, "audit_head", text, sizeof text);
    if (st != FV_OK) return st;
    unsigned long long s = 0;
    char hex[HEX_LEN + 1] = "", idt[FV_ID_LEN + 1] = "";
    if (sscanf(text, "%llu %64s %36s", &s, hex, idt) == 3 && unhex(hex, hash) == 0) {
        *seq = s;
        snprintf(id, FV_ID_LEN + 1, "%s", idt);
        return FV_OK;
    }
    /* no head kept (it should be): continue from the last entry held */
    sqlite3_stmt *q = fv__stmt(db, "SELECT seq, hash, id FROM audit WHERE device = ?1"
                                   " ORDER BY seq DESC LIMIT 1");
    if (q == NULL) return db->err;
    sqlite3_bind_text(q, 1, device, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW && sqlite3_column_type(q, 1) == SQLITE_TEXT &&
        sqlite3_column_bytes(q, 2) == 16 &&
        unhex((const char *)sqlite3_column_text(q, 1), hash) == 0) {
        double d = sqlite3_column_double(q, 0);
        *seq = d >= 1 && d < 9e15 ? (uint64_t)d : 0;
        fv__uuid_format(sqlite3_column_blob(q, 2), id);
    }
    sqlite3_reset(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading the audit");
}

static fv_status insert_entry(fv_db *db, const entry *e, const unsigned char id[16],
                              const unsigned char *cust)
{
    sqlite3_stmt *s = fv__stmt(db,
        "INSERT INTO audit(id, deleted, created_ms, updated_ms, customer_id, \"user\", tbl,"
        " row_id, field, at_ms, device, seq, prev_id, prev_hash, hash)"
        " VALUES(?1, 0, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
    if (s == NULL) return db->err;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, e->at_ms);
    if (cust != NULL) sqlite3_bind_blob(s, 3, cust, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, e->user, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, e->tbl, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, e->row_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, e->field, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 8, (double)e->at_ms);
    sqlite3_bind_text(s, 9, e->device, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 10, (double)e->seq);
    if (e->prev_id[0] != '\0') sqlite3_bind_text(s, 11, e->prev_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 12, e->prev_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 13, e->hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_clear_bindings(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "appending to the audit");
}

/* The entry's fields as one local write (one clock value: one batch). */
static fv_status capture_entry(fv_db *db, const entry *e, const unsigned char id[16],
                               const unsigned char *cust)
{
    const struct {
        const char *name;
        fv__cval v;
    } f[] = {
        {"customer_id", {cust ? SQLITE_BLOB : SQLITE_NULL, NULL, cust, 16, 0.0}},
        {"user", {SQLITE_TEXT, e->user, NULL, 0, 0.0}},
        {"tbl", {SQLITE_TEXT, e->tbl, NULL, 0, 0.0}},
        {"row_id", {SQLITE_TEXT, e->row_id, NULL, 0, 0.0}},
        {"field", {SQLITE_TEXT, e->field, NULL, 0, 0.0}},
        {"at_ms", {SQLITE_FLOAT, NULL, NULL, 0, (double)e->at_ms}},
        {"device", {SQLITE_TEXT, e->device, NULL, 0, 0.0}},
        {"seq", {SQLITE_FLOAT, NULL, NULL, 0, (double)e->seq}},
        {"prev_id", {e->prev_id[0] ? SQLITE_TEXT : SQLITE_NULL, e->prev_id, NULL, 0, 0.0}},
        {"prev_hash", {SQLITE_TEXT, e->prev_hash, NULL, 0, 0.0}},
        {"hash", {SQLITE_TEXT, e->hash, NULL, 0, 0.0}},
    };
    uint64_t hlc;
    fv_status st = fv__hlc_next(db, &hlc);
    for (size_t i = 0; st == FV_OK && i < sizeof f / sizeof f[0]; i++)
        if (f[i].v.type != SQLITE_NULL) st = fv__capture(db, "audit", id, f[i].name, &f[i].v, hlc);
    return st;
}

fv_status fv__audit_read(fv_record *rec, size_t i)
{
    fv_db *db = rec->db;
    if (!rec->has_id || strcmp(rec->tbl->name, "audit") == 0 ||
        fv__schema_table(db, "audit") == NULL) {
        rec->vals[i].audited = 1;
        return FV_OK;
    }
    fv__reset(db);
    entry e;
    memset(&e, 0, sizeof e);
    unsigned char id[16], cust[16];
    const unsigned char *custp = NULL;
    fv__uuid7(db, id);
    fv__uuid_format(id, e.id);
    snprintf(e.user, sizeof e.user, "%s", fv__acl_default_owner(db));
    snprintf(e.tbl, sizeof e.tbl, "%s", rec->tbl->name);
    snprintf(e.row_id, sizeof e.row_id, "%s", rec->id_text);
    snprintf(e.field, sizeof e.field, "%s", rec->tbl->fields[i].name);
    if (strcmp(rec->tbl->name, "customer") == 0) {
        memcpy(cust, rec->id, 16);
        custp = cust;
    } else {
        size_t ci;
        const fv__field *cf = fv__schema_field(rec->tbl, "customer_id", &ci);
        if (cf != NULL && cf->type == FV_TYPE_REF && rec->vals[ci].set &&
            fv__uuid_parse(rec->vals[ci].text, cust))
            custp = cust;
    }
    if (custp != NULL) fv__uuid_format(custp, e.customer_id);
    e.at_ms = fv_platform_now_ms();
    sodium_bin2hex(e.device, sizeof e.device, db->device, 16);
    int mode;
    fv_status st = fv__atomic_begin(db, &mode);
    if (st != FV_OK) return st;
    unsigned char prev[HASH_LEN];
    uint64_t head;
    st = chain_head(db, e.device, &head, prev, e.prev_id);
    if (st == FV_OK) {
        e.seq = head + 1;
        sodium_bin2hex(e.prev_hash, sizeof e.prev_hash, prev, sizeof prev);
        entry_hash(&e, prev, e.hash);
        st = insert_entry(db, &e, id, custp);
    }
    if (st == FV_OK) st = capture_entry(db, &e, id, custp);
    if (st == FV_OK) {
        char text[128];
        snprintf(text, sizeof text, "%llu %s %s", (unsigned long long)e.seq, e.hash, e.id);
        sqlite3_stmt *s = fv__stmt(db, "INSERT OR REPLACE INTO fv_meta(key, value)"
                                       " VALUES('audit_head', ?1)");
        if (s == NULL) st = db->err;
        else {
            sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
            int rc = sqlite3_step(s);
            sqlite3_clear_bindings(s);
            sqlite3_reset(s);
            if (rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "keeping the audit head");
        }
    }
    st = fv__atomic_end(db, mode, st);
    if (st == FV_OK) rec->vals[i].audited = 1;
    else {
        char msg[FV_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", fv_errmsg(db));
        fv__reset(db);
        st = fv__err(db, st, "the read of %s.%s could not be audited, so it is refused: %s",
                     e.tbl, e.field, msg);
    }
    return st;
}

/* ---- reading entries back ---- */

#define ENTRY_COLUMNS                                                                            \
    "id, \"user\", tbl, row_id, field, customer_id, at_ms, device, seq, prev_id, prev_hash,"     \
    " hash, deleted"

static void copy_text(sqlite3_stmt *s, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_type(s, col) == SQLITE_NULL ? NULL
                                                                       : sqlite3_column_text(s, col);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* A whole number stored as REAL (or INTEGER): 1 and *out, else 0. */
static int whole(sqlite3_stmt *s, int col, double lo, uint64_t *out)
{
    int type = sqlite3_column_type(s, col);
    if (type != SQLITE_FLOAT && type != SQLITE_INTEGER) return 0;
    double d = sqlite3_column_double(s, col);
    if (!(d >= lo && d < 9007199254740992.0) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static void read_entry(sqlite3_stmt *s, entry *e)
{
    memset(e, 0, sizeof *e);
    if (sqlite3_column_bytes(s, 0) == 16) fv__uuid_format(sqlite3_column_blob(s, 0), e->id);
    copy_text(s, 1, e->user, sizeof e->user);
    copy_text(s, 2, e->tbl, sizeof e->tbl);
    copy_text(s, 3, e->row_id, sizeof e->row_id);
    copy_text(s, 4, e->field, sizeof e->field);
    if (sqlite3_column_bytes(s, 5) == 16) fv__uuid_format(sqlite3_column_blob(s, 5), e->customer_id);
    uint64_t at = 0, seq = 0;
    int ok = whole(s, 6, 0, &at) && whole(s, 8, 1, &seq);
    e->at_ms = (int64_t)at;
    e->seq = seq;
    copy_text(s, 7, e->device, sizeof e->device);
    copy_text(s, 9, e->prev_id, sizeof e->prev_id);
    copy_text(s, 10, e->prev_hash, sizeof e->prev_hash);
    copy_text(s, 11, e->hash, sizeof e->hash);
    e->deleted = sqlite3_column_int(s, 12) != 0;
    unsigned char tmp[HASH_LEN];
    e->well_formed = ok && unhex(e->prev_hash, tmp) == 0 && unhex(e->hash, tmp) == 0;
}

fv_status fv_audit_each(fv_db *db, fv_audit_fn fn, void *ctx)
{
    if (db == NULL || fn == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (fv__schema_table(db, "audit") == NULL) return FV_OK;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT " ENTRY_COLUMNS " FROM audit ORDER BY device, seq, id", -1,
                                &q, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "reading the audit");
    static _Thread_local entry e;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        read_entry(q, &e);
        fv_audit_entry pub = {e.id, e.user, e.tbl, e.row_id, e.field,
                              e.customer_id[0] ? e.customer_id : NULL, e.at_ms, e.device, e.seq,
                              e.prev_hash, e.hash, e.deleted};
        if (fn(ctx, &pub) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading the audit");
}

/* ---- verifying ---- */

typedef struct verifier {
    fv_db *db;
    fv_audit_problem_fn fn;
    void *ctx;
    int stopped;
    fv_audit_summary sum;
    char own[33];          /* this device */
    int full;              /* every entry of every chain reaches this store */
    uint64_t anchor_seq;   /* this device's head, as kept */
    char anchor_hash[HEX_LEN + 1], anchor_id[FV_ID_LEN + 1];
    int own_seen;
    /* the chain being walked */
    char device[33];
    uint64_t expect;       /* the next position */
    int have_prev, prev_flagged;
    entry prev;
    /* entries whose changes are held but whose rows are gone */
    unsigned char (*orphans)[16];
    int *orphan_named;
    size_t norphans;
} verifier;

__attribute__((format(printf, 6, 7))) static void problem(verifier *v, const char *device,
                                                          uint64_t pos, const char *id,
                                                          const char *kind, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    v->sum.problems++;
    if (v->fn == NULL || v->stopped) return;
    fv_audit_problem p = {device, pos, id != NULL && id[0] != '\0' ? id : NULL, kind, detail};
    if (v->fn(v->ctx, &p) != 0) v->stopped = 1;
}

/* Is id one whose changes are held but whose row is gone?  Marks it named. */
static int orphan(verifier *v, const char *id)
{
    unsigned char b[16];
    if (!fv__uuid_parse(id, b)) return 0;
    for (size_t i = 0; i < v->norphans; i++)
        if (memcmp(v->orphans[i], b, 16) == 0) {
            v->orphan_named[i] = 1;
            return 1;
        }
    return 0;
}

static void report_gap(verifier *v, uint64_t from, uint64_t to, const entry *next)
{
    int own = strcmp(v->device, v->own) == 0;
    int known = next != NULL && next->prev_id[0] != '\0' && orphan(v, next->prev_id);
    if (!own && !v->full && !known) return; /* perhaps never sent here: not a finding */
    const char *id = next != NULL ? next->prev_id : v->anchor_id;
    char range[96] = "";
    if (to > from) snprintf(range, sizeof range, " (positions %llu to %llu are all missing)",
                            (unsigned long long)from, (unsigned long long)to);
    if (next != NULL)
        problem(v, v->device, to, id, "removed",
                "entry %s (device %s, position %llu) was removed: entry %s at position %llu "
                "links to it%s", id[0] ? id : "(unknown id)", v->device, (unsigned long long)to,
                next->id, (unsigned long long)next->seq, range);
    else
        problem(v, v->device, to, id, "removed",
                "entry %s (device %s, position %llu) was removed: this device's chain ends "
                "there%s", id[0] ? id : "(unknown id)", v->device, (unsigned long long)to, range);
}

/* The end of the chain being walked: this device's is held to its head. */
static void finish_chain(verifier *v)
{
    if (v->device[0] == '\0' || strcmp(v->device, v->own) != 0) return;
    v->own_seen = 1;
    uint64_t last = v->expect - 1;
    if (v->anchor_seq > last) {
        report_gap(v, last + 1, v->anchor_seq, NULL);
    } else if (v->have_prev && v->anchor_seq == v->prev.seq && !v->prev_flagged &&
               strcmp(v->prev.hash, v->anchor_hash) != 0) {
        problem(v, v->device, v->prev.seq, v->prev.id, "edited",
                "entry %s (device %s, position %llu) was edited: the chain's recorded end has "
                "another hash (the entry, or the chain up to it, was rewritten)",
                v->prev.id, v->device, (unsigned long long)v->prev.seq);
    }
}

static void check_entry(verifier *v, const entry *e)
{
    if (strcmp(e->device, v->device) != 0) {
        finish_chain(v);
        snprintf(v->device, sizeof v->device, "%s", e->device);
        v->expect = 1;
        v->have_prev = 0;
    }
    unsigned long long pos = (unsigned long long)e->seq;
    int edited = !e->well_formed;
    if (!edited) {
        unsigned char prev[HASH_LEN];
        char h[HEX_LEN + 1];
        (void)unhex(e->prev_hash, prev);
        entry_hash(e, prev, h);
        edited = strcmp(h, e->hash) != 0;
    }
    if (e->deleted)
        problem(v, v->device, e->seq, e->id, "deleted",
                "entry %s (device %s, position %llu) was deleted", e->id, v->device, pos);
    if (edited)
        problem(v, v->device, e->seq, e->id, "edited",
                "entry %s (device %s, position %llu) was edited: its hash does not match its "
                "contents", e->id, v->device, pos);
    int own = strcmp(v->device, v->own) == 0;
    if (own && v->anchor_seq > 0 && e->seq > v->anchor_seq)
        problem(v, v->device, e->seq, e->id, "forged",
                "entry %s (device %s, position %llu) lies beyond the end this device recorded "
                "for its chain: it was not written by this library", e->id, v->device, pos);
    if (v->have_prev && e->seq == v->prev.seq) {
        problem(v, v->device, e->seq, e->id, "forged",
                "entry %s (device %s, position %llu) claims the position of entry %s", e->id,
                v->device, pos, v->prev.id);
        return;
    }
    if (e->seq > v->expect) {
        report_gap(v, v->expect, e->seq - 1, e);
        v->have_prev = 0;
    } else if (v->have_prev && !v->prev_flagged &&
               (strcmp(e->prev_hash, v->prev.hash) != 0 || strcmp(e->prev_id, v->prev.id) != 0)) {
        problem(v, v->device, v->prev.seq, v->prev.id, "edited",
                "entry %s (device %s, position %llu) was edited: the entry after it (%s) links "
                "to another entry or hash", v->prev.id, v->device,
                (unsigned long long)v->prev.seq, e->id);
    } else if (!v->have_prev && e->seq == 1 && !edited) {
        static const char zeros[HEX_LEN + 1] =
            "0000000000000000000000000000000000000000000000000000000000000000";
        if (strcmp(e->prev_hash, zeros) != 0 || e->prev_id[0] != '\0') {
            problem(v, v->device, 1, e->id, "edited",
                    "entry %s (device %s, position 1) was edited: the first entry links to a "
                    "predecessor", e->id, v->device);
            edited = 1;
        }
    }
    v->prev = *e;
    v->prev_flagged = edited;
    v->have_prev = 1;
    if (e->seq >= v->expect) v->expect = e->seq + 1;
}

static fv_status load_orphans(verifier *v)
{
    fv_db *db = v->db;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db->sql,
                                "SELECT DISTINCT row_id FROM fv_versions WHERE tbl = 'audit'"
                                " AND row_id NOT IN (SELECT id FROM audit) ORDER BY row_id",
                                -1, &q, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "reading the audit's versions");
    size_t cap = 0;
    fv_status st = FV_OK;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(q, 0) != 16) continue;
        if (v->norphans == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            void *p = realloc(v->orphans, ncap * sizeof *v->orphans);
            void *r = p != NULL ? realloc(v->orphan_named, ncap * sizeof *v->orphan_named) : NULL;
            if (p != NULL) v->orphans = p;
            if (r == NULL) {
                st = fv__err(db, FV_ENOMEM, "out of memory");
                break;
            }
            v->orphan_named = r;
            cap = ncap;
        }
        memcpy(v->orphans[v->norphans], sqlite3_column_blob(q, 0), 16);
        v->orphan_named[v->norphans++] = 0;
    }
    if (st == FV_OK && rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "reading the audit's versions");
    sqlite3_finalize(q);
    return st;
}

/* Does every entry of every chain reach this store?  Yes when it was never
 * enrolled (nothing is filtered) or its user's scope is all customers. */
static int full_view(const fv_db *db)
{
    if (!db->enrolled) return 1;
    for (size_t i = 0; i < db->policy.nroles && i < FV_POLICY_ROLES_MAX; i++)
        if (strcmp(db->policy.roles[i].name, db->acl_role) == 0)
            return db->policy.roles[i].scope == FV__SCOPE_ALL;
    return 0;
}

fv_status fv_audit_verify(fv_db *db, fv_audit_problem_fn fn, void *ctx, fv_audit_summary *sum)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (sum != NULL && sum->size < sizeof *sum)
        return fv__err(db, FV_EMISUSE, "fv_audit_verify: sum.size not set");
    if (fv__schema_table(db, "audit") == NULL) return fv__err(db, FV_EINTERNAL, "no audit table");
    verifier *v = calloc(1, sizeof *v);
    if (v == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
    v->db = db;
    v->fn = fn;
    v->ctx = ctx;
    v->full = full_view(db);
    sodium_bin2hex(v->own, sizeof v->own, db->device, 16);
    unsigned char h[HASH_LEN];
    fv_status st = chain_head(db, v->own, &v->anchor_seq, h, v->anchor_id);
    sodium_bin2hex(v->anchor_hash, sizeof v->anchor_hash, h, sizeof h);
    if (st == FV_OK) st = load_orphans(v);
    sqlite3_stmt *q = NULL;
    int rc = SQLITE_DONE;
    if (st == FV_OK) {
        rc = sqlite3_prepare_v2(db->sql,
                                "SELECT " ENTRY_COLUMNS " FROM audit ORDER BY device, seq, id", -1,
                                &q, NULL);
        if (rc != SQLITE_OK) st = fv__sqlerr(db, rc, "reading the audit");
    }
    entry *e = malloc(sizeof *e);
    if (st == FV_OK && e == NULL) st = fv__err(db, FV_ENOMEM, "out of memory");
    while (st == FV_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        read_entry(q, e);
        v->sum.entries++;
        if (strcmp(e->device, v->device) != 0) v->sum.devices++;
        check_entry(v, e);
    }
    if (st == FV_OK && rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "reading the audit");
    sqlite3_finalize(q);
    if (st == FV_OK) {
        finish_chain(v);
        if (!v->own_seen && v->anchor_seq > 0) { /* every entry of this device gone */
            snprintf(v->device, sizeof v->device, "%s", v->own);
            v->expect = 1;
            v->have_prev = 0;
            finish_chain(v);
        }
        for (size_t i = 0; i < v->norphans; i++) {
            if (v->orphan_named[i]) continue;
            char id[FV_ID_LEN + 1];
            fv__uuid_format(v->orphans[i], id);
            problem(v, "", 0, id, "removed",
                    "entry %s was removed: its changes are recorded in this store, its row is "
                    "gone (its position is not known)", id);
        }
    }
    if (st == FV_OK && sum != NULL) {
        size_t size = sum->size;
        *sum = v->sum;
        sum->size = size;
    }
    free(e);
    free(v->orphans);
    free(v->orphan_named);
    free(v);
    return st;
}
