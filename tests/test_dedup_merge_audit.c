/*
 * test_dedup_merge_audit.c - issue 9's duplicates, customer merge and
 * sensitive-read audit, on real store files, through the fv binary where
 * the command line is the subject, and with devices syncing through a real
 * fvd (both backends) where it matters:
 *
 *  - normalised keys (fv_normalize);
 *  - duplicate warnings for name, phone and e-mail (normalised variants),
 *    none for distinct values, --json listing the candidates; the blind
 *    index never holds the plaintext and differs between two teams' keys;
 *    migration 7 indexes what a store held before;
 *  - merge: fields by the rule, records re-pointed, OTHER tombstoned with
 *    a pointer, fv_get naming the survivor, writes following the merge,
 *    all of it reaching a second store (change sets) and, through fvd, done
 *    means 4: a visit added offline to the merged-away customer ends on the
 *    kept one everywhere;
 *  - the read audit: one entry per record and field per read, none for
 *    other fields, refused writes, a read refused when it cannot be
 *    audited; done means 6: an intact log verifies, an edited and a removed
 *    entry each make `fv audit verify` fail naming the entry (id and
 *    position), on a copy of the log; entries reach fvd and another device
 *    of the same scope, a service agent's included.
 *
 * The fvd tests need FVD_BIN (FV_BUILD_SERVER); without it they are
 * skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "audit.h"
#include "fieldcrypt.h"
#include "fieldvault.h"
#include "internal.h"
#include "testutil.h"
#ifdef FVD_BIN
#include "fvdproc.h"
#include "pgutil.h"
#endif

#define PASS "pw"

/* ---- stores ---------------------------------------------------------- */

static fv_db *open_db(const char *path, int create, const char *user)
{
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.passphrase = PASS;
    cfg.passphrase_len = strlen(PASS);
    cfg.flags = create ? FV_OPEN_CREATE : 0;
    cfg.kdf_mem_kib = 8192;
    cfg.kdf_passes = 1;
    cfg.user = user;
    fv_db *db = NULL;
    fv_status st = fv_open(&db, &cfg);
    if (st != FV_OK) fprintf(stderr, "open %s: %s\n", path, fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    return db;
}

/* Insert a record of table with field, value pairs (NULL-terminated); its
 * id (malloc'd). */
static char *add(fv_db *db, const char *table, ...)
{
    fv_record *r;
    assert_int_equal(fv_record_new(db, table, &r), FV_OK);
    va_list ap;
    va_start(ap, table);
    for (const char *field; (field = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        fv_status st = fv_record_set_text(r, field, value);
        if (st != FV_OK) fprintf(stderr, "set %s.%s: %s\n", table, field, fv_errmsg(db));
        assert_int_equal(st, FV_OK);
    }
    va_end(ap);
    fv_status st = fv_insert(db, r);
    if (st != FV_OK) fprintf(stderr, "insert %s: %s\n", table, fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    char *id = strdup(fv_record_id(r));
    fv_record_free(r);
    return id;
}

/* The text of table.field of id (malloc'd; NULL when empty), read through
 * the API. */
static char *get(fv_db *db, const char *table, const char *id, const char *field)
{
    fv_record *r;
    fv_status st = fv_get(db, table, id, &r);
    if (st != FV_OK) fprintf(stderr, "get %s %s: %s\n", table, id, fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    const char *v = NULL;
    assert_int_equal(fv_record_get_text(r, field, &v), FV_OK);
    char *out = v ? strdup(v) : NULL;
    fv_record_free(r);
    return out;
}

/* One integer from SQL run on the store's own connection (tests only). */
static long long sql_int(fv_db *db, const char *sql)
{
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db->sql, sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    long long v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static void exec(fv_db *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db->sql, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) fprintf(stderr, "%s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    assert_int_equal(rc, SQLITE_OK);
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = tu_read_file(from, &n);
    assert_non_null(b);
    tu_write_file(to, b, n);
    free(b);
}

/* ---- fv ------------------------------------------------------------- */

static const char *const env_fv[] = {"FV_PASSPHRASE=" PASS, "FV_USER", NULL};

static tu_result fv_run(const char *const *args)
{
    const char *argv[32];
    size_t n = 0;
    argv[n++] = FV_BIN;
    for (size_t i = 0; args[i] != NULL && n < 31; i++) argv[n++] = args[i];
    argv[n] = NULL;
    return tu_run(argv, env_fv, NULL);
}

#define FV(...) fv_run((const char *const[]){__VA_ARGS__, NULL})

static void expect_exit(const tu_result *r, int want, const char *what)
{
    if (r->exit_code != want)
        fprintf(stderr, "%s: exit %d, want %d\n--- stdout:\n%s\n--- stderr:\n%s\n", what,
                r->exit_code, want, r->out, r->err);
    assert_int_equal(r->exit_code, want);
}

/* The id an add printed (text mode), malloc'd. */
static char *take_id(tu_result *r, const char *what)
{
    expect_exit(r, 0, what);
    size_t n = strlen(r->out);
    while (n > 0 && r->out[n - 1] == '\n') r->out[--n] = '\0';
    assert_int_equal(n, FV_ID_LEN);
    char *id = strdup(r->out);
    tu_result_free(r);
    return id;
}

/* ---- fv_normalize ------------------------------------------------------ */

static void test_normalize(void **state)
{
    (void)state;
    static const struct {
        fv_norm_kind kind;
        const char *in, *want;
    } cases[] = {
        {FV_NORM_NAME, "  Acme   Foods ", "acme foods"},
        {FV_NORM_NAME, "\xef\xbc\xa1\xef\xbd\x83\xef\xbd\x8d\xef\xbd\x85\xe3\x80\x80" "Foods",
         "acme foods"}, /* full-width "Acme" and an ideographic space */
        {FV_NORM_NAME, "\xe5\x8c\x97\xe4\xba\xac  \xe5\x85\xac\xe5\x8f\xb8", /* 北京  公司 */
         "\xe5\x8c\x97\xe4\xba\xac \xe5\x85\xac\xe5\x8f\xb8"},
        {FV_NORM_NAME, "A\xe2\x80\x8b" "B", "ab"}, /* a zero-width space is nothing */
        {FV_NORM_PHONE, "+86 138-0000-0000", "+8613800000000"},
        {FV_NORM_PHONE, "+8613800000000", "+8613800000000"},
        {FV_NORM_PHONE, "(021) 5555 0100", "02155550100"},
        {FV_NORM_PHONE, "\xef\xbc\x8b\xef\xbc\x98\xef\xbc\x96 1", "+861"}, /* full-width +86 */
        {FV_NORM_PHONE, "ext. none", ""},
        {FV_NORM_EMAIL, "Ana@Example.com ", "ana@example.com"},
        {FV_NORM_EMAIL, "  ana@example.com", "ana@example.com"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[128];
        assert_int_equal(fv_normalize(cases[i].kind, cases[i].in, out, sizeof out), FV_OK);
        if (strcmp(out, cases[i].want) != 0)
            fprintf(stderr, "case %zu: '%s' -> '%s', want '%s'\n", i, cases[i].in, out,
                    cases[i].want);
        assert_string_equal(out, cases[i].want);
    }
    char small[4];
    assert_int_equal(fv_normalize(FV_NORM_NAME, "long name", small, sizeof small), FV_EINVAL);
    assert_int_equal(fv_normalize((fv_norm_kind)7, "x", small, sizeof small), FV_EINVAL);
    assert_int_equal(fv_normalize(FV_NORM_NAME, NULL, small, sizeof small), FV_EMISUSE);
}

/* ---- duplicates -------------------------------------------------------- */

/* fv customer add / fv contact add: warnings for normalised variants, none
 * for distinct values, the candidates in --json, and what the blind index
 * column holds. */
static void test_duplicate_warnings_cli(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("dma-dups");
    char *path = tu_path(dir, "s.fv");
    tu_result r = FV("init", path, "--kdf-mem", "8", "--kdf-passes", "1");
    expect_exit(&r, 0, "init");
    tu_result_free(&r);

    r = FV("customer", "add", path, "--name", "Acme Foods", "--grade", "A");
    char *acme = take_id(&r, "customer add");
    /* a normalised variant of the name: warned, still added */
    r = FV("customer", "add", path, "--name", "  ACME   foods ");
    expect_exit(&r, 0, "customer add (duplicate name)");
    assert_non_null(strstr(r.err, "possible duplicate"));
    assert_non_null(strstr(r.err, acme));
    assert_int_equal(strlen(r.out), FV_ID_LEN + 1);
    char *acme2 = strndup(r.out, FV_ID_LEN);
    tu_result_free(&r);
    /* --json lists both candidates */
    r = FV("customer", "add", path, "--name", "acme FOODS", "--json");
    expect_exit(&r, 0, "customer add --json");
    assert_non_null(strstr(r.out, "\"duplicates\": [{"));
    assert_non_null(strstr(r.out, acme));
    assert_non_null(strstr(r.out, acme2));
    assert_non_null(strstr(r.out, "\"field\": \"name\""));
    tu_result_free(&r);
    /* a distinct name: no warning, an empty list */
    r = FV("customer", "add", path, "--name", "Acme Trading", "--json");
    expect_exit(&r, 0, "customer add (distinct)");
    assert_string_equal(r.err, "");
    assert_non_null(strstr(r.out, "\"duplicates\": []"));
    tu_result_free(&r);

    r = FV("contact", "add", path, "--customer", acme, "--name", "Li Wei", "--phone",
           "+86 138-0000-0000", "--email", "Ana@Example.com ");
    char *li = take_id(&r, "contact add");
    r = FV("contact", "add", path, "--customer", acme2, "--name", "Li W.", "--phone",
           "+8613800000000", "--json");
    expect_exit(&r, 0, "contact add (same phone)");
    assert_non_null(strstr(r.err, "possible duplicate"));
    assert_non_null(strstr(r.err, li));
    assert_non_null(strstr(r.out, "\"field\": \"phone\""));
    assert_non_null(strstr(r.out, li));
    tu_result_free(&r);
    r = FV("contact", "add", path, "--customer", acme2, "--name", "Ana", "--email",
           "ana@example.com", "--json");
    expect_exit(&r, 0, "contact add (same e-mail)");
    assert_non_null(strstr(r.err, li));
    assert_non_null(strstr(r.out, "\"field\": \"email\""));
    assert_null(strstr(r.out, "\"field\": \"phone\""));
    tu_result_free(&r);
    r = FV("contact", "add", path, "--customer", acme2, "--name", "Other", "--phone",
           "+86 139-0000-0000", "--email", "other@example.com", "--json");
    expect_exit(&r, 0, "contact add (distinct)");
    assert_string_equal(r.err, "");
    assert_non_null(strstr(r.out, "\"duplicates\": []"));
    tu_result_free(&r);

    /* the index column: 16 bytes, equal for equal keys, never the value */
    fv_db *db = open_db(path, 0, NULL);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM contact WHERE phone_bidx IS NOT NULL"), 3);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM contact WHERE phone_bidx IS NOT NULL"
                                 " AND length(phone_bidx) <> 16"), 0);
    assert_int_equal(sql_int(db, "SELECT count(DISTINCT phone_bidx) FROM contact"), 2);
    assert_int_equal(sql_int(db, "SELECT count(DISTINCT email_bidx) FROM contact"), 2);
    static const char *const plain[] = {"+8613800000000", "8613800000000", "13800000000",
                                        "+86 138-0000-0000", "ana@example.com",
                                        "Ana@Example.com", "example"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(db->sql,
            "SELECT count(*) FROM contact WHERE instr(phone_bidx, ?1) > 0 OR"
            " instr(email_bidx, ?1) > 0 OR instr(hex(phone_bidx), hex(?1)) > 0",
            -1, &q, NULL), SQLITE_OK);
        sqlite3_bind_blob(q, 1, plain[i], (int)strlen(plain[i]), SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), 0);
        sqlite3_finalize(q);
    }
    /* not a bare hash of the key either: it is keyed */
    unsigned char h[16];
    crypto_generichash(h, sizeof h, (const unsigned char *)"+8613800000000", 14, NULL, 0);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db->sql, "SELECT count(*) FROM contact WHERE phone_bidx = ?1",
                                        -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_blob(q, 1, h, sizeof h, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 0);
    sqlite3_finalize(q);
    assert_int_equal(fv_close(db), FV_OK);

    free(li);
    free(acme);
    free(acme2);
    free(path);
    tu_rmtree(dir);
    free(dir);
}

typedef struct dupseen {
    size_t n;
    char ids[8][FV_ID_LEN + 1];
    char fields[8][8];
} dupseen;

static int on_dup(void *ctx, const fv_duplicate *d)
{
    dupseen *s = ctx;
    if (s->n < 8) {
        snprintf(s->ids[s->n], sizeof s->ids[0], "%s", d->id);
        snprintf(s->fields[s->n], sizeof s->fields[0], "%s", d->field);
    }
    s->n++;
    return 0;
}

/* A candidate contact with phone (and customer cust): its duplicates. */
static dupseen find_phone(fv_db *db, const char *cust, const char *phone)
{
    fv_record *r;
    assert_int_equal(fv_record_new(db, "contact", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "customer_id", cust), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", "Candidate"), FV_OK);
    assert_int_equal(fv_record_set_text(r, "phone", phone), FV_OK);
    dupseen s;
    memset(&s, 0, sizeof s);
    assert_int_equal(fv_find_duplicates(db, r, on_dup, &s), FV_OK);
    fv_record_free(r);
    return s;
}

static void put_key(fv_db *db, const char *team, const unsigned char key[32])
{
    unsigned char id[FV_FKEY_ID_LEN];
    fv__fc_key_id(team, FV_CLASS_PII, 1, id);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db->sql,
        "INSERT INTO fv_field_keys(key_id, team, cls, version, key, grant_seq)"
        " VALUES(?1, ?2, 1, 1, ?3, 1)", -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_blob(q, 1, id, sizeof id, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, team, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 3, key, 32, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
}


/* contact.phone_bidx of id: 1 and out, or 0 when there is none. */
static int phone_bidx(fv_db *db, const char *id, unsigned char out[16])
{
    unsigned char key[16];
    assert_true(fv__uuid_parse(id, key));
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db->sql, "SELECT phone_bidx FROM contact WHERE id = ?1",
                                        -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_blob(q, 1, key, 16, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int have = sqlite3_column_bytes(q, 0) == 16;
    if (have) memcpy(out, sqlite3_column_blob(q, 0), 16);
    sqlite3_finalize(q);
    return have;
}

/* The index is computed under the contact's team's pii key when the store
 * holds one (so it differs between two teams' keys, and from the store's
 * own key), a lookup finds matches under every key, and a key that
 * arrives later re-indexes what is there. */
static void test_blind_index_keys(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("dma-bidx");
    char *path = tu_path(dir, "s.fv");
    fv_db *db = open_db(path, 1, "dee");
    unsigned char north[32], south[32];
    randombytes_buf(north, sizeof north);
    randombytes_buf(south, sizeof south);
    put_key(db, "north", north);
    char *cn = add(db, "customer", "name", "North Co", "team", "north", NULL);
    char *cs = add(db, "customer", "name", "South Co", "team", "south", NULL);
    char *cx = add(db, "customer", "name", "No Team Co", NULL);
    char *kn = add(db, "contact", "customer_id", cn, "name", "N", "phone", "+86 138-0000-0000", NULL);
    char *ks = add(db, "contact", "customer_id", cs, "name", "S", "phone", "+8613800000000", NULL);
    char *kx = add(db, "contact", "customer_id", cx, "name", "X", "phone", "+86 13800000000", NULL);
    unsigned char bn[16], bs[16], bx[16], want[16];
    assert_true(phone_bidx(db, kn, bn));
    assert_true(phone_bidx(db, ks, bs));
    assert_true(phone_bidx(db, kx, bx));
    /* north's under north's key: the keyed BLAKE2b of the normalised phone */
    fv__fc_blind(north, "phone", "+8613800000000", 14, want);
    assert_memory_equal(bn, want, 16);
    /* south holds no key yet: the store's own key, like the team-less one */
    assert_memory_equal(bs, bx, 16);
    assert_memory_not_equal(bn, bs, 16);
    /* a lookup finds all three, whichever key each is under */
    dupseen seen = find_phone(db, cx, "(+86) 138 0000 0000");
    assert_int_equal(seen.n, 3);
    /* south's key arrives: what it decides is indexed again under it */
    put_key(db, "south", south);
    assert_int_equal(fv__fkey_unseal_stored(db), FV_OK);
    assert_true(phone_bidx(db, ks, bs));
    fv__fc_blind(south, "phone", "+8613800000000", 14, want);
    assert_memory_equal(bs, want, 16);
    assert_memory_not_equal(bn, bs, 16); /* two teams' keys: two indexes */
    seen = find_phone(db, cx, "+86 138 0000 0000");
    assert_int_equal(seen.n, 3);
    /* a customer's team change moves its contacts' index to the new key */
    fv_record *r;
    assert_int_equal(fv_get(db, "customer", cx, &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "team", "north"), FV_OK);
    assert_int_equal(fv_update(db, r), FV_OK);
    fv_record_free(r);
    assert_true(phone_bidx(db, kx, bx));
    assert_memory_equal(bx, bn, 16);
    /* distinct, deleted and self: not candidates */
    seen = find_phone(db, cx, "+86 139 0000 0000");
    assert_int_equal(seen.n, 0);
    assert_int_equal(fv_delete(db, "contact", kx), FV_OK);
    seen = find_phone(db, cx, "+8613800000000");
    assert_int_equal(seen.n, 2);
    assert_int_equal(fv_close(db), FV_OK);
    free(cn);
    free(cs);
    free(cx);
    free(kn);
    free(ks);
    free(kx);
    free(path);
    tu_rmtree(dir);
    free(dir);
}

/* A store of schema version 6 (what migration 7 adds dropped) gets it all
 * back on open, and the customers and contacts it held are indexed. */
static void test_migration_7(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("dma-mig");
    char *path = tu_path(dir, "s.fv");
    fv_db *db = open_db(path, 1, NULL);
    char *c = add(db, "customer", "name", "Old  Customer", NULL);
    char *k = add(db, "contact", "customer_id", c, "name", "K", "phone", "+1 555 0100",
                  "email", "K@Example.com", NULL);
    exec(db, "DROP INDEX customer_by_name_key; DROP INDEX contact_by_phone_bidx;"
             "DROP INDEX contact_by_email_bidx; DROP INDEX customer_merged;"
             "DROP INDEX audit_by_device; DROP TABLE audit;"
             "ALTER TABLE customer DROP COLUMN name_key; ALTER TABLE customer DROP COLUMN merged_into;"
             "ALTER TABLE contact DROP COLUMN phone_bidx; ALTER TABLE contact DROP COLUMN email_bidx;"
             "DELETE FROM fv_fields WHERE tbl = 'audit' OR (tbl = 'customer' AND name = 'merged_into');"
             "DELETE FROM fv_meta WHERE key IN ('blind_key', 'audit_head');"
             "PRAGMA user_version = 6;");
    assert_int_equal(fv_close(db), FV_OK);
    db = open_db(path, 0, NULL);
    assert_int_equal(sql_int(db, "PRAGMA user_version"), fv_schema_version());
    assert_int_equal(sql_int(db, "SELECT count(*) FROM customer WHERE name_key = 'old customer'"), 1);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM contact WHERE length(phone_bidx) = 16"
                                 " AND length(email_bidx) = 16"), 1);
    dupseen seen = find_phone(db, c, "+15550100");
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.ids[0], k);
    /* the new catalogue works: an audited read, a merge */
    char *other = add(db, "customer", "name", "old customer", "budget", "5k", NULL);
    char *b = get(db, "customer", other, "budget");
    free(b);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM audit"), 1);
    assert_int_equal(fv_customer_merge(db, c, other, NULL), FV_OK);
    assert_int_equal(fv_close(db), FV_OK);
    free(other);
    free(c);
    free(k);
    free(path);
    tu_rmtree(dir);
    free(dir);
}

/* ---- merge ---------------------------------------------------------------- */

typedef struct idlist {
    size_t n;
    char ids[16][FV_ID_LEN + 1];
} idlist;

static idlist children(fv_db *db, const char *table, const char *cust)
{
    idlist l;
    memset(&l, 0, sizeof l);
    fv_list *li;
    assert_int_equal(strcmp(table, "visit") == 0 ? fv_list_visits(db, cust, &li)
                                                 : fv_list_contacts(db, cust, &li),
                     FV_OK);
    const fv_record *r;
    while (fv_list_next(li, &r) == FV_OK && r != NULL)
        if (l.n < 16) snprintf(l.ids[l.n++], FV_ID_LEN + 1, "%s", fv_record_id(r));
    fv_list_free(li);
    return l;
}

static int has_id(const idlist *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->ids[i], id) == 0) return 1;
    return 0;
}

/* Export db's pending changes (all with all) and apply them to into. */
static void carry(fv_db *from, fv_db *into, const char *dir, int all)
{
    char *f = tu_path(dir, "carry.fvc");
    assert_int_equal(fv_changes_export_file(from, f, all ? FV_EXPORT_ALL : 0, NULL), FV_OK);
    fv_status st = fv_changes_apply_file(into, f, NULL);
    if (st != FV_OK) fprintf(stderr, "apply: %s\n", fv_errmsg(into));
    assert_int_equal(st, FV_OK);
    unlink(f);
    free(f);
}

static void state_equal(fv_db *a, fv_db *b)
{
    char ha[65], hb[65];
    assert_int_equal(fv_state_hash(a, ha), FV_OK);
    assert_int_equal(fv_state_hash(b, hb), FV_OK);
    assert_string_equal(ha, hb);
}

/* fv_customer_merge on one store: the field rule, records re-pointed (a
 * deleted one too), OTHER tombstoned with merged_into, fv_get naming the
 * survivor, a later write to OTHER landing on KEEP; the errors; and all of
 * it reaching a second store as changes, where a visit added to OTHER
 * before the merge arrived ends on KEEP, on both (done means 4, without a
 * server). */
static void test_merge_local(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("dma-merge");
    char *pa = tu_path(dir, "a.fv"), *pb = tu_path(dir, "b.fv");
    fv_db *a = open_db(pa, 1, "ana"), *b = open_db(pb, 1, "ben");
    char *keep = add(a, "customer", "name", "Acme Foods", "grade", "A", "stage", "intent", NULL);
    char *other = add(a, "customer", "name", "ACME foods", "grade", "B", "region", "North",
                      "budget", "120k", "needs", "forklifts", NULL);
    char *k1 = add(a, "contact", "customer_id", keep, "name", "Kim", NULL);
    char *o1 = add(a, "contact", "customer_id", other, "name", "Oli", "phone", "+1 555 0101", NULL);
    char *v1 = add(a, "visit", "customer_id", other, "method", "visit", "summary", "first", NULL);
    char *v2 = add(a, "visit", "customer_id", other, "method", "phone", "summary", "gone", NULL);
    assert_int_equal(fv_delete(a, "visit", v2), FV_OK);
    carry(a, b, dir, 1); /* b holds everything so far */
    /* offline on b: a visit to OTHER, before the merge reaches it */
    char *vb = add(b, "visit", "customer_id", other, "method", "email", "summary", "from b", NULL);

    /* errors change nothing */
    assert_int_equal(fv_customer_merge(a, keep, keep, NULL), FV_EINVAL);
    assert_int_equal(fv_customer_merge(a, keep, "not-an-id", NULL), FV_EINVAL);
    assert_int_equal(fv_customer_merge(a, keep, "01234567-89ab-7def-8123-456789abcdef", NULL),
                     FV_ENOTFOUND);
    assert_non_null(strstr(fv_errmsg(a), "OTHER"));

    fv_merge_info info;
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    assert_int_equal(fv_customer_merge(a, keep, other, &info), FV_OK);
    assert_int_equal(info.fields_filled, 3); /* region, budget, needs; not the grade */
    assert_int_equal(info.contacts, 1);
    assert_int_equal(info.visits, 2); /* the deleted one too */
    char *v;
    assert_string_equal((v = get(a, "customer", keep, "grade")), "A");
    free(v);
    assert_string_equal((v = get(a, "customer", keep, "region")), "North");
    free(v);
    assert_string_equal((v = get(a, "customer", keep, "budget")), "120k");
    free(v);
    assert_string_equal((v = get(a, "customer", keep, "name")), "Acme Foods");
    free(v);
    idlist cs = children(a, "contact", keep), vs = children(a, "visit", keep);
    assert_int_equal(cs.n, 2);
    assert_true(has_id(&cs, k1) && has_id(&cs, o1));
    assert_int_equal(vs.n, 1);
    assert_true(has_id(&vs, v1));
    assert_int_equal(children(a, "visit", other).n, 0);
    /* OTHER: a tombstone that points at KEEP */
    fv_record *r;
    assert_int_equal(fv_get(a, "customer", other, &r), FV_ENOTFOUND);
    assert_non_null(strstr(fv_errmsg(a), "merged into"));
    assert_non_null(strstr(fv_errmsg(a), keep));
    char to[FV_ID_LEN + 1];
    assert_int_equal(fv_customer_merged_into(a, other, to), FV_OK);
    assert_string_equal(to, keep);
    assert_int_equal(fv_customer_merged_into(a, keep, to), FV_ENOTFOUND);
    /* the moves are captured: they sync */
    assert_int_equal(sql_int(a, "SELECT count(*) FROM fv_outbox WHERE tbl = 'visit' AND"
                                " field = 'customer_id'"), 4); /* two inserts, two moves */
    assert_int_equal(sql_int(a, "SELECT count(*) FROM fv_outbox WHERE tbl = 'customer' AND"
                                " field IN ('merged_into', '_deleted')"), 2);
    /* a write that names OTHER lands on KEEP */
    char *v3 = add(a, "visit", "customer_id", other, "method", "visit", "summary", "late", NULL);
    assert_string_equal((v = get(a, "visit", v3, "customer_id")), keep);
    free(v);
    /* merged customers are gone from lists, and not matched as duplicates */
    fv_list *li;
    const fv_record *lr;
    size_t n = 0;
    assert_int_equal(fv_list_customers(a, NULL, &li), FV_OK);
    while (fv_list_next(li, &lr) == FV_OK && lr != NULL) n++;
    fv_list_free(li);
    assert_int_equal(n, 1);

    /* b gets the merge: its own visit moves to KEEP, as a change of b's */
    carry(a, b, dir, 0);
    assert_string_equal((v = get(b, "visit", vb, "customer_id")), keep);
    free(v);
    assert_int_equal(children(b, "visit", keep).n, 3);
    assert_int_equal(fv_get(b, "customer", other, &r), FV_ENOTFOUND);
    assert_non_null(strstr(fv_errmsg(b), keep));
    /* and a gets b's changes: the visit is on KEEP there too, no conflict */
    carry(b, a, dir, 0);
    assert_string_equal((v = get(a, "visit", vb, "customer_id")), keep);
    free(v);
    carry(a, b, dir, 0);
    fv_conflict_list *cl;
    const fv_conflict *c;
    assert_int_equal(fv_conflicts_list(a, 1, &cl), FV_OK);
    assert_int_equal(fv_conflicts_next(cl, &c), FV_OK);
    assert_null(c);
    fv_conflicts_free(cl);
    state_equal(a, b);

    assert_int_equal(fv_close(a), FV_OK);
    assert_int_equal(fv_close(b), FV_OK);

    /* fv customer merge: exit 0 and a summary; the usage errors */
    char *pc = tu_path(dir, "c.fv");
    tu_result t = FV("init", pc, "--kdf-mem", "8", "--kdf-passes", "1");
    expect_exit(&t, 0, "init");
    tu_result_free(&t);
    t = FV("customer", "add", pc, "--name", "Delta");
    char *d1 = take_id(&t, "add");
    t = FV("customer", "add", pc, "--name", "delta", "--region", "South");
    char *d2 = take_id(&t, "add duplicate");
    t = FV("visit", "add", pc, "--customer", d2, "--method", "visit", "--summary", "x");
    char *dv = take_id(&t, "visit add");
    t = FV("customer", "merge", pc, d1, d2, "--json");
    expect_exit(&t, 0, "customer merge --json");
    assert_non_null(strstr(t.out, "\"fields_filled\": 1"));
    assert_non_null(strstr(t.out, "\"visits\": 1"));
    tu_result_free(&t);
    t = FV("customer", "show", pc, d2);
    expect_exit(&t, 1, "show merged");
    assert_non_null(strstr(t.err, d1));
    tu_result_free(&t);
    t = FV("visit", "list", pc, "--customer", d1, "--ids");
    expect_exit(&t, 0, "visit list");
    assert_non_null(strstr(t.out, dv));
    tu_result_free(&t);
    t = FV("customer", "merge", pc, d1);
    expect_exit(&t, 2, "merge with one id");
    assert_non_null(strstr(t.err, "OTHER_ID"));
    tu_result_free(&t);
    t = FV("customer", "merge", pc, d1, d1);
    expect_exit(&t, 1, "merge into itself");
    tu_result_free(&t);
    free(d1);
    free(d2);
    free(dv);
    free(pc);

    free(keep);
    free(other);
    free(k1);
    free(o1);
    free(v1);
    free(v2);
    free(v3);
    free(vb);
    free(pa);
    free(pb);
    tu_rmtree(dir);
    free(dir);
}

/* ---- the read audit ------------------------------------------------------- */

typedef struct auditseen {
    size_t n;
    char ids[32][FV_ID_LEN + 1];
    char fields[32][FV_NAME_MAX + 1];
    uint64_t seq[32];
} auditseen;

static int on_entry(void *ctx, const fv_audit_entry *e)
{
    auditseen *s = ctx;
    if (s->n < 32) {
        snprintf(s->ids[s->n], sizeof s->ids[0], "%s", e->id);
        snprintf(s->fields[s->n], sizeof s->fields[0], "%s", e->field);
        s->seq[s->n] = e->seq;
    }
    s->n++;
    return 0;
}

static auditseen entries(fv_db *db)
{
    auditseen s;
    memset(&s, 0, sizeof s);
    assert_int_equal(fv_audit_each(db, on_entry, &s), FV_OK);
    return s;
}

static uint64_t problems(fv_db *db)
{
    fv_audit_summary sum;
    memset(&sum, 0, sizeof sum);
    sum.size = sizeof sum;
    assert_int_equal(fv_audit_verify(db, NULL, NULL, &sum), FV_OK);
    return sum.problems;
}

/* `fv audit verify` on path: exit 1 naming id and its position. */
static void expect_verify_fails(const char *path, const char *id, const char *position,
                                const char *kind)
{
    tu_result r = FV("audit", "verify", path);
    expect_exit(&r, 1, "audit verify (tampered)");
    if (strstr(r.out, id) == NULL || strstr(r.out, position) == NULL || strstr(r.out, kind) == NULL)
        fprintf(stderr, "verify did not name %s (%s, %s):\n%s\n%s\n", id, position, kind, r.out,
                r.err);
    assert_non_null(strstr(r.out, id));
    assert_non_null(strstr(r.out, position));
    assert_non_null(strstr(r.out, kind));
    assert_non_null(strstr(r.err, id)); /* the first finding on stderr too */
    tu_result_free(&r);
    r = FV("audit", "verify", path, "--json");
    expect_exit(&r, 1, "audit verify --json (tampered)");
    assert_non_null(strstr(r.out, "\"ok\": false"));
    assert_non_null(strstr(r.out, id));
    tu_result_free(&r);
}

/* Edit entry seq of this store's chain (its user) and give it the hash the
 * library would compute, from the format documented in core/audit.c. */
static void put_be(crypto_generichash_state *h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (56 - 8 * i));
    crypto_generichash_update(h, b, 8);
}

static void put_text(crypto_generichash_state *h, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    unsigned char b[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    crypto_generichash_update(h, b, 4);
    if (n > 0) crypto_generichash_update(h, (const unsigned char *)s, n);
}

static void rehash(fv_db *db, int seq, const char *user)
{
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db->sql,
        "SELECT id, device, seq, at_ms, customer_id, tbl, row_id, field, prev_id, prev_hash"
        " FROM audit WHERE seq = ?1", -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_int(q, 1, seq);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    char id[FV_ID_LEN + 1], cust[FV_ID_LEN + 1] = "";
    fv__uuid_format(sqlite3_column_blob(q, 0), id);
    if (sqlite3_column_bytes(q, 4) == 16) fv__uuid_format(sqlite3_column_blob(q, 4), cust);
    unsigned char prev[32], d[32];
    size_t n;
    assert_int_equal(sodium_hex2bin(prev, 32, (const char *)sqlite3_column_text(q, 9), 64, NULL,
                                    &n, NULL), 0);
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 32);
    crypto_generichash_update(&h, prev, 32);
    crypto_generichash_update(&h, (const unsigned char *)"fieldvault audit v1", 20);
    put_text(&h, id);
    put_text(&h, (const char *)sqlite3_column_text(q, 1));
    put_be(&h, (uint64_t)sqlite3_column_double(q, 2));
    put_be(&h, (uint64_t)sqlite3_column_double(q, 3));
    put_text(&h, user);
    put_text(&h, cust);
    put_text(&h, (const char *)sqlite3_column_text(q, 5));
    put_text(&h, (const char *)sqlite3_column_text(q, 6));
    put_text(&h, (const char *)sqlite3_column_text(q, 7));
    put_text(&h, (const char *)sqlite3_column_text(q, 8));
    crypto_generichash_final(&h, d, sizeof d);
    sqlite3_finalize(q);
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    assert_int_equal(sqlite3_prepare_v2(db->sql,
        "UPDATE audit SET \"user\" = ?2, hash = ?3 WHERE seq = ?1", -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_int(q, 1, seq);
    sqlite3_bind_text(q, 2, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, hex, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
}

/* One entry per record and field per read, only for confidential values
 * handed out, chained; the table refuses the record API; a read that
 * cannot be audited is refused; inside a batch an entry goes with the
 * batch.  Then done means 6 on copies of the log. */
static void test_audit_local(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("dma-audit");
    char *path = tu_path(dir, "s.fv");
    fv_db *db = open_db(path, 1, "ana");
    char *c1 = add(db, "customer", "name", "Budget Co", "budget", "90k", "decision_chain", "CFO",
                   NULL);
    char *c2 = add(db, "customer", "name", "Plain Co", NULL);
    char *c3 = add(db, "customer", "name", "Third Co", "budget", "1k", NULL);
    assert_int_equal(entries(db).n, 0); /* writing is not reading */

    /* fv_get, then the budget twice, the name, the empty decision chain of c3 */
    fv_record *r;
    const char *v;
    assert_int_equal(fv_get(db, "customer", c1, &r), FV_OK);
    assert_int_equal(fv_record_get_text(r, "name", &v), FV_OK);
    assert_int_equal(entries(db).n, 0);
    assert_int_equal(fv_record_get_text(r, "budget", &v), FV_OK);
    assert_string_equal(v, "90k");
    assert_int_equal(fv_record_get_text(r, "budget", &v), FV_OK);
    auditseen s = entries(db);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.fields[0], "budget");
    assert_int_equal(s.seq[0], 1);
    /* a value the caller set is not a read of the store */
    assert_int_equal(fv_record_set_text(r, "decision_chain", "CEO"), FV_OK);
    assert_int_equal(fv_record_get_text(r, "decision_chain", &v), FV_OK);
    assert_int_equal(entries(db).n, 1);
    fv_record_free(r);
    /* a list: one entry per row and field read, none for rows not read */
    fv_list *l;
    const fv_record *lr;
    assert_int_equal(fv_list_customers(db, NULL, &l), FV_OK);
    while (fv_list_next(l, &lr) == FV_OK && lr != NULL) {
        assert_int_equal(fv_record_get_text(lr, "budget", &v), FV_OK);
        assert_int_equal(fv_record_get_text(lr, "budget", &v), FV_OK);
        assert_int_equal(fv_record_get_text(lr, "decision_chain", &v), FV_OK);
    }
    fv_list_free(l);
    s = entries(db);
    assert_int_equal(s.n, 4); /* + c1 budget, c1 decision_chain, c3 budget */
    for (size_t i = 0; i < s.n; i++) assert_int_equal(s.seq[i], i + 1);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM audit WHERE row_id = (SELECT '')"), 0);
    /* each entry is captured (it syncs) as one write */
    assert_int_equal(sql_int(db, "SELECT count(DISTINCT hlc) FROM fv_outbox WHERE tbl = 'audit'"), 4);
    assert_int_equal(problems(db), 0);

    /* inside a batch the entry is the batch's: rolled back with it */
    assert_int_equal(fv_begin(db), FV_OK);
    char *b = get(db, "customer", c3, "budget");
    free(b);
    assert_int_equal(entries(db).n, 5);
    assert_int_equal(fv_rollback(db), FV_OK);
    assert_int_equal(entries(db).n, 4);
    assert_int_equal(problems(db), 0);
    assert_int_equal(fv_begin(db), FV_OK);
    b = get(db, "customer", c3, "budget");
    free(b);
    assert_int_equal(fv_commit(db), FV_OK);
    assert_int_equal(entries(db).n, 5);
    assert_int_equal(problems(db), 0);

    /* the audit table is append-only for the record API */
    s = entries(db);
    assert_int_equal(fv_record_new(db, "audit", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "user", "mallory"), FV_OK);
    assert_int_equal(fv_insert(db, r), FV_EACCES);
    fv_record_free(r);
    assert_int_equal(fv_get(db, "audit", s.ids[0], &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "user", "mallory"), FV_OK);
    assert_int_equal(fv_update(db, r), FV_EACCES);
    fv_record_free(r);
    assert_int_equal(fv_delete(db, "audit", s.ids[0]), FV_EACCES);
    assert_int_equal(problems(db), 0);
    assert_int_equal(fv_close(db), FV_OK);

    /* done means 6, through fv on copies of the log */
    tu_result t = FV("audit", "verify", path);
    expect_exit(&t, 0, "audit verify (intact)");
    assert_non_null(strstr(t.out, "verifies: 5 entries from 1 device"));
    tu_result_free(&t);
    t = FV("audit", "list", path, "--json");
    expect_exit(&t, 0, "audit list --json");
    assert_non_null(strstr(t.out, s.ids[2]));
    assert_non_null(strstr(t.out, "\"field\": \"decision_chain\""));
    assert_null(strstr(t.out, "90k")); /* names fields, never values */
    tu_result_free(&t);
    t = FV("audit", "list", path);
    expect_exit(&t, 0, "audit list");
    assert_non_null(strstr(t.out, "read customer.budget"));
    tu_result_free(&t);
    t = FV("customer", "show", path, c1); /* fv reads are audited too */
    expect_exit(&t, 0, "customer show");
    tu_result_free(&t);
    db = open_db(path, 0, "ana");
    s = entries(db);
    assert_int_equal(s.n, 7);
    assert_int_equal(fv_close(db), FV_OK);

    static const struct {
        const char *name, *sql, *kind;
        size_t entry;         /* which entry is named (index into s) */
        const char *position; /* and at which position */
    } tamper[] = {
        /* an edited entry (its own hash no longer matches) */
        {"edit", "UPDATE audit SET \"user\" = 'mallory' WHERE seq = 3", "edited", 2, "position 3"},
        /* a removed entry, in the middle */
        {"remove", "DELETE FROM audit WHERE seq = 2", "removed", 1, "position 2"},
        /* removed with its changes too: the chain still tells */
        {"remove-all-trace", "DELETE FROM fv_versions WHERE tbl = 'audit' AND row_id ="
                             " (SELECT id FROM audit WHERE seq = 4);"
                             "DELETE FROM audit WHERE seq = 4", "removed", 3, "position 4"},
        /* the last one removed: the chain's recorded end tells */
        {"remove-last", "DELETE FROM audit WHERE seq = 7", "removed", 6, "position 7"},
        /* deleted as a tombstone */
        {"tombstone", "UPDATE audit SET deleted = 1 WHERE seq = 5", "deleted", 4, "position 5"},
        /* moved to another position */
        {"reorder", "UPDATE audit SET seq = 9 WHERE seq = 6", "edited", 5, "position 9"},
        /* edited, and its hash recomputed as the library would (rehash()
         * below): the next entry's link breaks */
        {"rehash", NULL, "edited", 2, "position 3"},
    };
    for (size_t i = 0; i < sizeof tamper / sizeof tamper[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "copy-%s.fv", tamper[i].name);
        char *copy = tu_path(dir, name);
        copy_file(path, copy);
        fv_db *cdb = open_db(copy, 0, "ana");
        if (tamper[i].sql != NULL) {
            exec(cdb, tamper[i].sql);
        } else {
            rehash(cdb, 3, "ana"); /* the same contents: the documented hash, no finding */
            assert_int_equal(problems(cdb), 0);
            rehash(cdb, 3, "mallory");
        }
        assert_true(problems(cdb) > 0);
        assert_int_equal(fv_close(cdb), FV_OK);
        expect_verify_fails(copy, s.ids[tamper[i].entry], tamper[i].position, tamper[i].kind);
        free(copy);
    }
    /* the original still verifies */
    t = FV("audit", "verify", path, "--json");
    expect_exit(&t, 0, "audit verify --json (intact)");
    assert_non_null(strstr(t.out, "\"ok\": true"));
    tu_result_free(&t);

    /* a read that cannot be audited is refused; other fields still read */
    db = open_db(path, 0, "ana");
    exec(db, "DROP TABLE audit");
    assert_int_equal(fv_get(db, "customer", c1, &r), FV_OK);
    v = "untouched";
    assert_int_not_equal(fv_record_get_text(r, "budget", &v), FV_OK);
    assert_null(v);
    assert_non_null(strstr(fv_errmsg(db), "could not be audited"));
    assert_int_equal(fv_record_get_text(r, "name", &v), FV_OK);
    assert_string_equal(v, "Budget Co");
    fv_record_free(r);
    assert_int_equal(fv_close(db), FV_OK);

    free(c1);
    free(c2);
    free(c3);
    free(path);
    tu_rmtree(dir);
    free(dir);
}

/* ---- through fvd ------------------------------------------------------------ */

#ifdef FVD_BIN
static pgu_cluster cluster;
static int cluster_up;
static int counter;

typedef struct fx {
    fvdp_backend b;
    fvdp_server s;
    char *dir;
} fx;

static int setup_backend(void **state, int pg)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp(pg ? "dma-pg" : "dma-sqlite");
    f->b.fvd_bin = FVD_BIN;
    f->b.name = pg ? "postgres" : "sqlite";
    f->b.pg = pg;
    if (pg) {
        if (!cluster_up) {
            assert_int_equal(pgu_start(&cluster), 0);
            cluster_up = 1;
        }
        char name[32];
        snprintf(name, sizeof name, "dma%d", ++counter);
        assert_int_equal(pgu_new_database(&cluster, name, f->b.url, sizeof f->b.url), 0);
    } else {
        snprintf(f->b.data, sizeof f->b.data, "%s/fvd-data", f->dir);
    }
    snprintf(f->s.log, sizeof f->s.log, "%s/fvd.log", f->dir);
    assert_int_equal(fvdp_start(&f->b, &f->s, 0), 0);
    *state = f;
    return 0;
}

static int setup_sqlite(void **state)
{
    return setup_backend(state, 0);
}

static int setup_pg(void **state)
{
    return setup_backend(state, 1);
}

static int teardown(void **state)
{
    fx *f = *state;
    fvdp_kill(&f->s, SIGTERM);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (cluster_up) pgu_stop(&cluster);
    return 0;
}

typedef struct dev {
    char *path;
    fv_db *db;
} dev;

static void dev_open(fx *f, dev *d, const char *user, const char *role, const char *team)
{
    char name[64];
    snprintf(name, sizeof name, "%s.fv", user);
    d->path = tu_path(f->dir, name);
    d->db = open_db(d->path, 1, user);
    char *code = fvdp_add_user(&f->b, user, role, team);
    assert_non_null(code);
    fv_status st = fv_enroll(d->db, f->s.base, code, NULL);
    if (st != FV_OK) fprintf(stderr, "enroll %s: %s\n", user, fv_errmsg(d->db));
    assert_int_equal(st, FV_OK);
    free(code);
}

static void dev_close(dev *d)
{
    if (d->db != NULL) assert_int_equal(fv_close(d->db), FV_OK);
    d->db = NULL;
    free(d->path);
    d->path = NULL;
}

/* Sync until drained; nothing may be refused by fvd. */
static void dev_sync(dev *d)
{
    fv_sync_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    fv_sync_result r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    fv_status st = fv_sync(d->db, &cfg, &r);
    if (st != FV_OK || r.rejected != 0)
        fprintf(stderr, "sync %s: status %d, %llu rejected: %s\n", d->path, st,
                (unsigned long long)r.rejected, fv_errmsg(d->db));
    assert_int_equal(st, FV_OK);
    assert_int_equal(r.rejected, 0);
    assert_true(r.drained);
}

static void keys_admin(fx *f, const char *verb, const char *team)
{
    char *keyfile = tu_path(f->dir, "fvd-admin.keys");
    const char *argv[] = {FVD_BIN, "admin", f->b.pg ? "--postgres" : "--data",
                          f->b.pg ? f->b.url : f->b.data, "--admin-keys", keyfile, "keys", verb,
                          team, NULL};
    const char *env[] = {"FV_ADMIN_PASSPHRASE=admin passphrase", NULL};
    tu_result r = tu_run(argv, env, NULL);
    if (r.exit_code != 0) fprintf(stderr, "keys %s %s: %s%s\n", verb, team, r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    tu_result_free(&r);
    free(keyfile);
}

static size_t count_conflicts(fv_db *db)
{
    fv_conflict_list *l;
    const fv_conflict *c;
    size_t n = 0;
    assert_int_equal(fv_conflicts_list(db, 1, &l), FV_OK);
    while (fv_conflicts_next(l, &c) == FV_OK && c != NULL) n++;
    fv_conflicts_free(l);
    return n;
}

/* Done means 4: a lead merges two of a rep's customers while the rep,
 * offline, adds a visit to the one merged away.  After both sync through
 * fvd, the visit is on the kept customer on both devices and on a device
 * that pulls everything afterwards; OTHER is gone everywhere, naming KEEP;
 * the re-points made on several devices are no conflict. */
static void test_merge_through_fvd(void **state)
{
    fx *f = *state;
    dev ana, lou, dee;
    dev_open(f, &ana, "ana", "rep", "north");
    dev_open(f, &lou, "lou", "lead", "north");
    char *keep = add(ana.db, "customer", "name", "Acme Foods", "grade", "A", NULL);
    char *other = add(ana.db, "customer", "name", "ACME Foods Ltd", "region", "North", NULL);
    char *contact = add(ana.db, "contact", "customer_id", other, "name", "Oli", NULL);
    dev_sync(&ana);
    dev_sync(&lou);
    /* ana, offline: a visit to OTHER */
    char *visit = add(ana.db, "visit", "customer_id", other, "method", "visit", "summary",
                      "offline visit", NULL);
    /* lou merges, syncs */
    fv_merge_info info;
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    assert_int_equal(fv_customer_merge(lou.db, keep, other, &info), FV_OK);
    assert_int_equal(info.contacts, 1);
    assert_int_equal(info.fields_filled, 1); /* region */
    dev_sync(&lou);
    /* ana comes online: her visit goes up, the merge comes down, her visit
     * moves to KEEP (her device's own change, pushed in the same sync) */
    dev_sync(&ana);
    char *v = get(ana.db, "visit", visit, "customer_id");
    assert_string_equal(v, keep);
    free(v);
    dev_sync(&lou);
    dev_sync(&ana);
    dev_sync(&lou);
    dev_open(f, &dee, "dee", "director", "hq");
    dev_sync(&dee);
    dev *all[] = {&ana, &lou, &dee};
    char hash0[65];
    assert_int_equal(fv_state_hash(ana.db, hash0), FV_OK);
    for (size_t i = 0; i < 3; i++) {
        fv_db *db = all[i]->db;
        v = get(db, "visit", visit, "customer_id");
        assert_string_equal(v, keep);
        free(v);
        v = get(db, "contact", contact, "customer_id");
        assert_string_equal(v, keep);
        free(v);
        v = get(db, "customer", keep, "region");
        assert_string_equal(v, "North");
        free(v);
        idlist vs = children(db, "visit", keep);
        assert_int_equal(vs.n, 1);
        assert_int_equal(children(db, "visit", other).n, 0);
        fv_record *r;
        assert_int_equal(fv_get(db, "customer", other, &r), FV_ENOTFOUND);
        assert_non_null(strstr(fv_errmsg(db), keep));
        assert_int_equal(count_conflicts(db), 0);
        char h[65];
        assert_int_equal(fv_state_hash(db, h), FV_OK);
        assert_string_equal(h, hash0);
    }
    dev_close(&ana);
    dev_close(&lou);
    dev_close(&dee);
    free(keep);
    free(other);
    free(contact);
    free(visit);
}

/* How many entries of device's chain a store holds. */
static size_t entries_of(fv_db *db, const char *device)
{
    size_t n = 0;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db->sql, "SELECT count(*) FROM audit WHERE device = ?1",
                                        -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_text(q, 1, device, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    n = (size_t)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return n;
}

/* Audit entries reach fvd and the devices of the same scope: a rep's (her
 * reads of a budget), a lead's, and a service agent's (accepted by fvd as
 * a visit would be).  Each device's chain verifies everywhere; on a copy of
 * the lead's log an edited and a removed entry of the rep's chain are
 * named. */
static void test_audit_through_fvd(void **state)
{
    fx *f = *state;
    dev ana, lou, sam;
    dev_open(f, &ana, "ana", "rep", "north");
    dev_open(f, &lou, "lou", "lead", "north");
    dev_open(f, &sam, "sam", "service", "north");
    keys_admin(f, "init", "north");
    dev_sync(&ana);
    dev_sync(&lou);
    dev_sync(&sam);
    char *cust = add(ana.db, "customer", "name", "Budget Co", "budget", "90k", NULL);
    dev_sync(&ana);
    char *b = get(ana.db, "customer", cust, "budget");
    assert_string_equal(b, "90k");
    free(b);
    b = get(ana.db, "customer", cust, "budget");
    free(b);
    dev_sync(&ana);
    char ana_dev[33], lou_dev[33], sam_dev[33];
    assert_int_equal(fv_device_id(ana.db, ana_dev), FV_OK);
    assert_int_equal(fv_device_id(lou.db, lou_dev), FV_OK);
    assert_int_equal(fv_device_id(sam.db, sam_dev), FV_OK);
    /* the lead gets them from fvd, and reads the budget too */
    dev_sync(&lou);
    assert_int_equal(entries_of(lou.db, ana_dev), 2);
    b = get(lou.db, "customer", cust, "budget");
    free(b);
    dev_sync(&lou);
    /* the service agent may not read the budget: no read, no entry */
    dev_sync(&sam);
    fv_record *r;
    const char *v;
    assert_int_equal(fv_get(sam.db, "customer", cust, &r), FV_OK);
    assert_int_equal(fv_record_get_text(r, "budget", &v), FV_EACCES);
    assert_int_equal(entries_of(sam.db, sam_dev), 0);
    /* an entry a service agent writes (under a policy that let it read a
     * confidential field) is accepted by fvd like a visit: appended here
     * through the internal hook, as a read of the field would */
    size_t ni;
    for (ni = 0; ni < 64; ni++) {
        const char *name;
        assert_int_equal(fv_record_field(r, ni, &name, NULL), FV_OK);
        if (strcmp(name, "name") == 0) break;
    }
    assert_int_equal(fv__audit_read(r, ni), FV_OK);
    fv_record_free(r);
    dev_sync(&sam); /* nothing refused */
    dev_sync(&ana);
    dev_sync(&lou);
    fv_db *dbs[] = {ana.db, lou.db, sam.db};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(entries_of(dbs[i], ana_dev), 2);
        assert_int_equal(entries_of(dbs[i], lou_dev), 1);
        assert_int_equal(entries_of(dbs[i], sam_dev), 1);
        assert_int_equal(problems(dbs[i]), 0);
    }
    /* a director enrolled later pulls every chain from fvd */
    dev dee;
    dev_open(f, &dee, "dee", "director", "hq");
    dev_sync(&dee);
    assert_int_equal(entries(dee.db).n, 4);
    assert_int_equal(problems(dee.db), 0);
    dev_close(&dee);

    /* done means 6 on a copy of the lead's log, for the rep's chain */
    auditseen s;
    memset(&s, 0, sizeof s);
    {
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(lou.db->sql,
            "SELECT id FROM audit WHERE device = ?1 ORDER BY seq", -1, &q, NULL), SQLITE_OK);
        sqlite3_bind_text(q, 1, ana_dev, -1, SQLITE_STATIC);
        while (sqlite3_step(q) == SQLITE_ROW && s.n < 2)
            fv__uuid_format(sqlite3_column_blob(q, 0), s.ids[s.n++]);
        sqlite3_finalize(q);
    }
    assert_int_equal(s.n, 2);
    char *lou_path = strdup(lou.path);
    dev_close(&lou);
    tu_result t = FV("audit", "verify", lou_path);
    expect_exit(&t, 0, "audit verify on the lead's store");
    tu_result_free(&t);
    static const struct {
        const char *name, *sql, *kind, *position;
        size_t entry;
    } tamper[] = {
        {"edit", "UPDATE audit SET field = 'decision_chain' WHERE device = ?1 AND seq = 1",
         "edited", "position 1", 0},
        {"remove", "DELETE FROM audit WHERE device = ?1 AND seq = 1", "removed", "position 1", 0},
        /* the last of a chain this store holds only part of: named by its
         * changes held here, its position unknown */
        {"remove-2", "DELETE FROM audit WHERE device = ?1 AND seq = 2", "removed", "", 1},
    };
    for (size_t i = 0; i < sizeof tamper / sizeof tamper[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "lou-%s.fv", tamper[i].name);
        char *copy = tu_path(f->dir, name);
        copy_file(lou_path, copy);
        fv_db *db = open_db(copy, 0, "lou");
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(db->sql, tamper[i].sql, -1, &q, NULL), SQLITE_OK);
        sqlite3_bind_text(q, 1, ana_dev, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_DONE);
        assert_int_equal(sqlite3_changes(db->sql), 1);
        sqlite3_finalize(q);
        assert_int_equal(fv_close(db), FV_OK);
        expect_verify_fails(copy, s.ids[tamper[i].entry], tamper[i].position, tamper[i].kind);
        free(copy);
    }
    free(lou_path);
    dev_close(&ana);
    dev_close(&sam);
    free(cust);
}

/* Blind indexes across devices: the same contact gets the same index on
 * every device holding its team's key, two teams' keys give two indexes,
 * a director's lookup finds both, and a device that gets the key later
 * indexes what it holds when the key arrives.  The index never holds the
 * phone. */
static void test_blind_index_through_fvd(void **state)
{
    fx *f = *state;
    dev ana, wes, dee, lea;
    dev_open(f, &ana, "ana", "rep", "north");
    dev_open(f, &wes, "wes", "rep", "south");
    dev_open(f, &dee, "dee", "director", "hq");
    keys_admin(f, "init", "north");
    keys_admin(f, "init", "south");
    dev_sync(&ana);
    dev_sync(&wes);
    dev_sync(&dee);
    char *cn = add(ana.db, "customer", "name", "North Co", NULL);
    char *kn = add(ana.db, "contact", "customer_id", cn, "name", "N", "phone", "+86 138-0000-0000",
                   NULL);
    char *cs = add(wes.db, "customer", "name", "South Co", NULL);
    char *ks = add(wes.db, "contact", "customer_id", cs, "name", "S", "phone", "+8613800000000",
                   NULL);
    dev_sync(&ana);
    dev_sync(&wes);
    dev_sync(&dee);
    unsigned char a_n[16], w_s[16], d_n[16], d_s[16];
    assert_true(phone_bidx(ana.db, kn, a_n));
    assert_true(phone_bidx(wes.db, ks, w_s));
    assert_true(phone_bidx(dee.db, kn, d_n));
    assert_true(phone_bidx(dee.db, ks, d_s));
    assert_memory_equal(a_n, d_n, 16);
    assert_memory_equal(w_s, d_s, 16);
    assert_memory_not_equal(d_n, d_s, 16);
    dupseen seen = find_phone(dee.db, cn, "+86 138 0000 0000");
    assert_int_equal(seen.n, 2);
    seen = find_phone(ana.db, cn, "+86 138 0000 0000");
    assert_int_equal(seen.n, 1); /* ana sees north only */
    assert_int_equal(sql_int(dee.db, "SELECT count(*) FROM contact WHERE instr(phone_bidx,"
                                     " '13800000000') > 0 OR instr(phone_bidx, x'3133383030')"
                                     " > 0"), 0);
    /* a lead of north enrolled after the grant: sealed, no index, until
     * the key arrives */
    dev_open(f, &lea, "lea", "lead", "north");
    dev_sync(&lea);
    unsigned char l_n[16];
    assert_false(phone_bidx(lea.db, kn, l_n));
    keys_admin(f, "grant", "north");
    dev_sync(&lea);
    assert_true(phone_bidx(lea.db, kn, l_n));
    assert_memory_equal(l_n, a_n, 16);
    dev_close(&ana);
    dev_close(&wes);
    dev_close(&dee);
    dev_close(&lea);
    free(cn);
    free(kn);
    free(cs);
    free(ks);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_duplicate_warnings_cli),
        cmocka_unit_test(test_blind_index_keys),
        cmocka_unit_test(test_migration_7),
        cmocka_unit_test(test_merge_local),
        cmocka_unit_test(test_audit_local),
#ifdef FVD_BIN
        cmocka_unit_test_setup_teardown(test_merge_through_fvd, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_audit_through_fvd, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_blind_index_through_fvd, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_merge_through_fvd, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_audit_through_fvd, setup_pg, teardown),
#endif
    };
#ifdef FVD_BIN
    return cmocka_run_group_tests(tests, NULL, group_teardown);
#else
    return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
