/*
 * test_fieldcrypt.c - field encryption without a server: the sealed value
 * format (core/fieldcrypt.c) and its binding to table, row, field and key
 * version; grants; and the device side (core/fieldkeys.c): values sealed at
 * capture, opened on apply, kept sealed (redacted) without a key and opened
 * when the key arrives, FV_ECORRUPT for a moved ciphertext.  Stores are
 * enrolled by writing fv_meta as fv_enroll does (see test_acl.c); keys
 * arrive as real grants made with a test admin key.  The networked story
 * (fvd, admin commands, HTTP bodies) is test_e2e's test_field_encryption.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fieldcrypt.h"
#include "internal.h"
#include "testutil.h"

/* Does needle occur in b? */
static int has(const void *b, size_t n, const void *needle, size_t len)
{
    for (size_t i = 0; i + len <= n; i++)
        if (memcmp((const char *)b + i, needle, len) == 0) return 1;
    return 0;
}

static const unsigned char ROW[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void test_seal_binds_its_place(void **state)
{
    (void)state;
    unsigned char key[FV_FKEY_LEN], other_key[FV_FKEY_LEN];
    randombytes_buf(key, sizeof key);
    randombytes_buf(other_key, sizeof other_key);
    unsigned char b[256], b2[256];
    size_t n = 0, n2 = 0;
    const char *v = "120k EUR";
    assert_int_equal(fv__fc_seal(key, "east", FV_CLASS_CONFIDENTIAL, 1, "customer", ROW, "budget",
                                 v, strlen(v), 0, b, sizeof b, &n), 0);
    assert_int_equal(n, strlen(v) + FV_SEALED_OVERHEAD);
    assert_false(has(b, n, v, strlen(v)));
    /* randomised: the same value seals differently */
    assert_int_equal(fv__fc_seal(key, "east", FV_CLASS_CONFIDENTIAL, 1, "customer", ROW, "budget",
                                 v, strlen(v), 0, b2, sizeof b2, &n2), 0);
    assert_int_equal(n, n2);
    assert_memory_not_equal(b, b2, n);
    fv__sealed_hdr h;
    assert_int_equal(fv__fc_parse(b, n, &h), 0);
    assert_int_equal(h.cls, FV_CLASS_CONFIDENTIAL);
    assert_int_equal(h.version, 1);
    unsigned char id[FV_FKEY_ID_LEN];
    fv__fc_key_id("east", FV_CLASS_CONFIDENTIAL, 1, id);
    assert_memory_equal(h.key_id, id, sizeof id);

    char out[256];
    size_t len;
    double real;
    int is_text;
    assert_int_equal(fv__fc_open(key, "customer", ROW, "budget", b, n, &is_text, out, sizeof out,
                                 &len, &real), 0);
    assert_true(is_text);
    assert_int_equal(len, strlen(v));
    assert_string_equal(out, v);
    /* another row, field, table or key: authentication fails */
    unsigned char row2[16];
    memcpy(row2, ROW, 16);
    row2[15] ^= 1;
    assert_int_equal(fv__fc_open(key, "customer", row2, "budget", b, n, &is_text, out, sizeof out,
                                 &len, &real), -1);
    assert_int_equal(fv__fc_open(key, "customer", ROW, "decision_chain", b, n, &is_text, out,
                                 sizeof out, &len, &real), -1);
    assert_int_equal(fv__fc_open(key, "contact", ROW, "budget", b, n, &is_text, out, sizeof out,
                                 &len, &real), -1);
    assert_int_equal(fv__fc_open(other_key, "customer", ROW, "budget", b, n, &is_text, out,
                                 sizeof out, &len, &real), -1);
    /* relabelled with another version, or any byte flipped */
    memcpy(b2, b, n);
    b2[5] ^= 3;
    assert_int_equal(fv__fc_open(key, "customer", ROW, "budget", b2, n, &is_text, out, sizeof out,
                                 &len, &real), -1);
    for (size_t i = 0; i < n; i++) {
        memcpy(b2, b, n);
        b2[i] ^= 0x40;
        assert_int_not_equal(fv__fc_open(key, "customer", ROW, "budget", b2, n, &is_text, out,
                                         sizeof out, &len, &real), 0);
    }
    /* cut short, empty, garbage */
    assert_int_equal(fv__fc_open(key, "customer", ROW, "budget", b, n - 1, &is_text, out,
                                 sizeof out, &len, &real), -1);
    assert_int_equal(fv__fc_parse(b, 3, NULL), -1);
    assert_int_equal(fv__fc_parse((const unsigned char *)"hello world, not sealed at all, no",
                                  34, NULL), -1);
    /* a real round-trips */
    assert_int_equal(fv__fc_seal(key, "east", FV_CLASS_PII, 2, "contact", ROW, "lat", NULL, 0,
                                 48.8566, b, sizeof b, &n), 0);
    assert_int_equal(fv__fc_open(key, "contact", ROW, "lat", b, n, &is_text, out, sizeof out,
                                 &len, &real), 0);
    assert_false(is_text);
    assert_true(real == 48.8566);
    /* too small an output buffer is refused, not overrun */
    assert_int_equal(fv__fc_seal(key, "east", FV_CLASS_PII, 1, "contact", ROW, "phone", v,
                                 strlen(v), 0, b, strlen(v) + FV_SEALED_OVERHEAD - 1, &n), -1);
}

static void test_grants(void **state)
{
    (void)state;
    unsigned char apk[32], ask[64], dpk[32], dsk[64], opk[32], osk[64];
    crypto_sign_keypair(apk, ask);
    crypto_sign_keypair(dpk, dsk);
    crypto_sign_keypair(opk, osk);
    unsigned char dev[16] = {9}, key[32], got[32], sealed[FV_GRANT_SEALED_LEN],
                  sig[FV_GRANT_SIG_LEN];
    randombytes_buf(key, sizeof key);
    assert_int_equal(fv__fc_grant_make(ask, dev, dpk, "east", 2, 1, key, sealed, sig), 0);
    assert_false(has(sealed, sizeof sealed, key, sizeof key));
    assert_int_equal(fv__fc_grant_open(apk, dev, dsk, "east", 2, 1, sealed, sig, got), 0);
    assert_memory_equal(got, key, 32);
    /* signed by someone else, relabelled, or for another device */
    assert_int_equal(fv__fc_grant_open(opk, dev, dsk, "east", 2, 1, sealed, sig, got), -1);
    assert_int_equal(fv__fc_grant_open(apk, dev, dsk, "west", 2, 1, sealed, sig, got), -1);
    assert_int_equal(fv__fc_grant_open(apk, dev, dsk, "east", 1, 1, sealed, sig, got), -1);
    assert_int_equal(fv__fc_grant_open(apk, dev, dsk, "east", 2, 2, sealed, sig, got), -1);
    /* the right signature, but the box is not this device's */
    assert_int_equal(fv__fc_grant_open(apk, dev, osk, "east", 2, 1, sealed, sig, got), -2);
    unsigned char zero[32] = {0};
    assert_memory_equal(got, zero, 32); /* nothing of a failed open is left */
    /* blind index: equal under one key, different under another */
    unsigned char x[FV_BLIND_LEN], y[FV_BLIND_LEN], z[FV_BLIND_LEN];
    fv__fc_blind(key, "phone", "+8613800000000", 14, x);
    fv__fc_blind(key, "phone", "+8613800000000", 14, y);
    fv__fc_blind(sealed, "phone", "+8613800000000", 14, z);
    assert_memory_equal(x, y, sizeof x);
    assert_memory_not_equal(x, z, sizeof x);
}

/* ---- the device ---- */

typedef struct admin {
    unsigned char pk[32], sk[64];
    unsigned char conf[32], pii[32];
} admin;

typedef struct dev {
    char *path;
    fv_db *db;
    unsigned char pk[32], sk[64];
} dev;

static fv_db *open_store(const char *path, int create)
{
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.passphrase = "pw";
    cfg.passphrase_len = 2;
    cfg.flags = create ? FV_OPEN_CREATE : 0;
    cfg.kdf_mem_kib = 8192;
    cfg.kdf_passes = 1;
    cfg.user = "local";
    fv_db *db = NULL;
    assert_int_equal(fv_open(&db, &cfg), FV_OK);
    return db;
}

/* A store enrolled as (user, role, team), as fv_enroll leaves it. */
static void dev_open(dev *d, const char *dir, const char *name, const char *role,
                     const char *team)
{
    d->path = tu_path(dir, name);
    d->db = open_store(d->path, 1);
    crypto_sign_keypair(d->pk, d->sk);
    if (role != NULL) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "INSERT OR REPLACE INTO fv_meta(key, value) VALUES('user', '%s'),"
                 " ('role', '%s'), ('team', '%s')",
                 name, role, team);
        assert_int_equal(fv__exec(d->db, sql), FV_OK);
        assert_int_equal(fv_close(d->db), FV_OK);
        d->db = open_store(d->path, 0);
    }
}

static void dev_close(dev *d)
{
    assert_int_equal(fv_close(d->db), FV_OK);
    free(d->path);
}

static void grant(const admin *a, dev *d, int cls, uint32_t version, const unsigned char *key)
{
    unsigned char sealed[FV_GRANT_SEALED_LEN], sig[FV_GRANT_SIG_LEN];
    assert_int_equal(fv__fc_grant_make(a->sk, d->db->device, d->pk, "east", cls, version, key,
                                       sealed, sig), 0);
    assert_int_equal(fv__fkey_install(d->db, a->pk, d->sk, "east", cls, version, sealed, sig, 1),
                     FV_OK);
    assert_int_equal(fv__fkey_unseal_stored(d->db), FV_OK);
}

static char *add_customer(fv_db *db, const char *name, const char *budget)
{
    fv_record *r;
    assert_int_equal(fv_record_new(db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", name), FV_OK);
    if (budget) assert_int_equal(fv_record_set_text(r, "budget", budget), FV_OK);
    fv_status st = fv_insert(db, r);
    if (st != FV_OK) fprintf(stderr, "insert: %s\n", fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    char *id = strdup(fv_record_id(r));
    fv_record_free(r);
    return id;
}

static fv_status budget_of(fv_db *db, const char *id, const char *want)
{
    fv_record *r;
    assert_int_equal(fv_get(db, "customer", id, &r), FV_OK);
    const char *v = NULL;
    fv_status st = fv_record_get_text(r, "budget", &v);
    if (st == FV_OK && want) assert_string_equal(v, want);
    fv_record_free(r);
    return st;
}

/* The outbox as a change-set file, applied to another store. */
static void carry(dev *from, dev *to, const char *file)
{
    assert_int_equal(fv_changes_export_file(from->db, file, 0, NULL), FV_OK);
    fv_apply_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    fv_status s = fv_changes_apply_file(to->db, file, &st);
    if (s != FV_OK) fprintf(stderr, "apply: %s\n", fv_errmsg(to->db));
    assert_int_equal(s, FV_OK);
}

static void test_device_seals_and_opens(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("fieldcrypt");
    char *file = tu_path(dir, "set.fvc");
    admin a;
    crypto_sign_keypair(a.pk, a.sk);
    randombytes_buf(a.conf, 32);
    randombytes_buf(a.pii, 32);
    dev rep, lead, late, plain;
    dev_open(&rep, dir, "ana", "rep", "east");
    dev_open(&lead, dir, "lou", "lead", "east");
    dev_open(&late, dir, "lea", "lead", "east");
    dev_open(&plain, dir, "solo", NULL, NULL); /* never enrolled */
    grant(&a, &rep, FV_CLASS_CONFIDENTIAL, 1, a.conf);
    grant(&a, &lead, FV_CLASS_CONFIDENTIAL, 1, a.conf);
    size_t n = 0;
    fv_field_key_info ki[4];
    assert_int_equal(fv_field_keys(rep.db, ki, 4, &n), FV_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ki[0].team, "east");
    assert_int_equal(ki[0].cls, FV_CLASS_CONFIDENTIAL);
    assert_int_equal(ki[0].version, 1);
    assert_int_equal(strlen(ki[0].key_id), 16);

    char *c = add_customer(rep.db, "Acme", "MARKER-BUDGET-41");
    assert_int_equal(budget_of(rep.db, c, "MARKER-BUDGET-41"), FV_OK); /* plaintext locally */
    /* the outbox, and so the change set, holds the budget sealed */
    assert_int_equal(fv_changes_export_file(rep.db, file, 0, NULL), FV_OK);
    size_t len;
    unsigned char *bytes = tu_read_file(file, &len);
    assert_false(has(bytes, len, "MARKER-BUDGET", 13));
    assert_true(has(bytes, len, "Acme", 4));
    free(bytes);
    /* a holder of the key opens it; a store without it keeps it sealed and
     * shows it redacted, never an error, until the key arrives */
    carry(&rep, &lead, file);
    assert_int_equal(budget_of(lead.db, c, "MARKER-BUDGET-41"), FV_OK);
    carry(&rep, &late, file);
    assert_int_equal(budget_of(late.db, c, NULL), FV_EACCES);
    grant(&a, &late, FV_CLASS_CONFIDENTIAL, 1, a.conf);
    assert_int_equal(budget_of(late.db, c, "MARKER-BUDGET-41"), FV_OK);
    carry(&rep, &plain, file);
    assert_int_equal(budget_of(plain.db, c, NULL), FV_EACCES);
    fv_record *r;
    int red = 0;
    assert_int_equal(fv_get(plain.db, "customer", c, &r), FV_OK);
    assert_int_equal(fv_record_redacted(r, "budget", &red), FV_OK);
    assert_int_equal(red, 1);
    fv_record_free(r);

    /* a ciphertext moved into another customer's budget fails
     * authentication: FV_ECORRUPT for that field, the rest reads */
    char *victim = add_customer(lead.db, "Victim", NULL);
    {
        char sql[1200];
        unsigned char id[16], vid[16];
        assert_true(fv__uuid_parse(c, id));
        assert_true(fv__uuid_parse(victim, vid));
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(rep.db->sql, "SELECT value FROM fv_outbox WHERE"
                                            " field = 'budget' AND row_id = ?1", -1, &q, NULL),
                         SQLITE_OK);
        sqlite3_bind_blob(q, 1, id, 16, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        char hex[2 * 512 + 1];
        size_t bl = (size_t)sqlite3_column_bytes(q, 0);
        assert_true(bl < 512);
        sodium_bin2hex(hex, sizeof hex, sqlite3_column_blob(q, 0), bl);
        sqlite3_finalize(q);
        char vhex[33];
        sodium_bin2hex(vhex, sizeof vhex, vid, 16);
        snprintf(sql, sizeof sql, "UPDATE customer SET budget = x'%s' WHERE id = x'%s'", hex, vhex);
        assert_int_equal(fv__exec(lead.db, sql), FV_OK);
    }
    assert_int_equal(budget_of(lead.db, victim, NULL), FV_ECORRUPT);
    assert_int_equal(budget_of(lead.db, c, "MARKER-BUDGET-41"), FV_OK);
    assert_int_equal(fv_get(lead.db, "customer", victim, &r), FV_OK);
    const char *name;
    assert_int_equal(fv_record_get_text(r, "name", &name), FV_OK);
    assert_string_equal(name, "Victim");
    fv_record_free(r);
    free(victim);

    /* a value written before its key arrived leaves sealed once it has */
    dev early;
    dev_open(&early, dir, "eve", "rep", "east");
    char *e = add_customer(early.db, "Early", "MARKER-EARLY-77");
    assert_int_equal(fv__fkey_seal_outbox(early.db, 0), FV_OK); /* no key: unchanged */
    assert_int_equal(fv_changes_export_file(early.db, file, 0, NULL), FV_OK);
    bytes = tu_read_file(file, &len);
    assert_true(has(bytes, len, "MARKER-EARLY", 12));
    free(bytes);
    grant(&a, &early, FV_CLASS_CONFIDENTIAL, 1, a.conf);
    assert_int_equal(fv__fkey_seal_outbox(early.db, 0), FV_OK);
    assert_int_equal(fv_changes_export_file(early.db, file, 0, NULL), FV_OK);
    bytes = tu_read_file(file, &len);
    assert_false(has(bytes, len, "MARKER-EARLY", 12));
    free(bytes);
    carry(&early, &lead, file);
    assert_int_equal(budget_of(lead.db, e, "MARKER-EARLY-77"), FV_OK);
    free(e);
    dev_close(&early);

    /* rotation: with v2 held, new values use it and v1 values still open */
    unsigned char conf2[32];
    randombytes_buf(conf2, 32);
    grant(&a, &rep, FV_CLASS_CONFIDENTIAL, 2, conf2);
    char *c2 = add_customer(rep.db, "Newer", "after rotation");
    assert_int_equal(fv_changes_export_file(rep.db, file, 0, NULL), FV_OK);
    assert_int_equal(budget_of(rep.db, c, "MARKER-BUDGET-41"), FV_OK);
    carry(&rep, &lead, file); /* the lead has v1 only: the new one is redacted */
    assert_int_equal(budget_of(lead.db, c2, NULL), FV_EACCES);
    grant(&a, &lead, FV_CLASS_CONFIDENTIAL, 2, conf2);
    assert_int_equal(budget_of(lead.db, c2, "after rotation"), FV_OK);
    assert_int_equal(budget_of(lead.db, c, "MARKER-BUDGET-41"), FV_OK);
    free(c2);

    for (dev *d = &rep; d != NULL; d = d == &rep ? &lead : d == &lead ? &late : d == &late ? &plain : NULL)
        dev_close(d);
    free(c);
    free(file);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    assert_true(sodium_init() >= 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_binds_its_place),
        cmocka_unit_test(test_grants),
        cmocka_unit_test(test_device_seals_and_opens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
