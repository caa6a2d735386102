/*
 * test_policy_server.c - the access policy and users' roles changed on a
 * running fvd, end to end: the real fvd binary (`fvd serve` on loopback,
 * started with tests/fvdproc.h; `fvd admin policy set|show` and `fvd admin
 * set-user` run as processes of their own while it serves) and real devices
 * (the public API: fv_enroll, fv_sync, records and lists), on both backends
 * (fvd's SQLite file; a throwaway PostgreSQL cluster, tests/pgutil.h), a
 * fresh store of record for each test.
 *
 *  (a) policy set: version 2 takes pii away from service agents
 *      (`service all r-- r-- www`).  Two fvd processes serve the one store;
 *      the service agent syncs through the one the admin command never
 *      touched.  After its next sync the service device holds version 2
 *      (fv_sync_status_get), a phone a rep writes after the change is in
 *      no answer fvd sends it (every response body captured) and not in its
 *      store, the contact itself arrives with the phone redacted, and the
 *      phone it had from before reads as redacted too (the device applies
 *      the policy).  A device enrolled afterwards has version 2 from its
 *      enrolment answer on.  The same or a lower version is refused (exit
 *      1), so is a malformed file (exit 1, the message names the line);
 *      neither changes what is in force.
 *  (b) set-user: a lead moved from team east to west holds none of east's
 *      customers after her next sync (not in lists, not in her store) and
 *      all of west's, with their visits, including those created before
 *      the move; she may write to them.  A rep promoted to lead of the same
 *      team (no --team: the team stays) receives the teammates' customers.
 *      An unknown user, or a role the policy does not have: exit 1.
 *  (c) policy show prints the policy in force: the built-in version 1
 *      before any set, then exactly what was set, in fv__policy_format's
 *      text form and as JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#ifndef FVD_BIN
/* A build without fvd (FV_BUILD_SERVER=OFF): nothing to test. */
#include <stdio.h>
int main(void)
{
    puts("test_policy_server: built without fvd: skipped");
    return 0;
}
#else

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fieldvault.h"
#include "fvdproc.h"
#include "internal.h"
#include "pgutil.h"
#include "platform.h"
#include "policy.h"
#include "testutil.h"

/* ---- fixtures: a fresh store of record and a serving fvd per test ---- */

static pgu_cluster PG;
static int pg_up;
static int db_counter;

typedef struct fx {
    fvdp_backend be;
    fvdp_server sv;
    char *dir; /* temp dir: devices, policy files, fvd.log, the SQLite store */
} fx;

static int setup(void **state, int pg)
{
    fx *f = calloc(1, sizeof *f);
    if (f == NULL) return -1;
    f->be.fvd_bin = FVD_BIN;
    f->be.name = pg ? "postgres" : "sqlite";
    f->be.pg = pg;
    f->dir = tu_mkdtemp(pg ? "policy-pg" : "policy");
    snprintf(f->be.data, sizeof f->be.data, "%s/store", f->dir);
    if (pg) {
        char name[32];
        snprintf(name, sizeof name, "policy%d", ++db_counter);
        if (pgu_new_database(&PG, name, f->be.url, sizeof f->be.url) != 0) return -1;
    }
    char *log = tu_path(f->dir, "fvd.log");
    snprintf(f->sv.log, sizeof f->sv.log, "%s", log);
    free(log);
    *state = f;
    return fvdp_start(&f->be, &f->sv, 0);
}

static int setup_sqlite(void **state)
{
    return setup(state, 0);
}

static int setup_pg(void **state)
{
    return setup(state, 1);
}

/* The log's sanitizer reports (a serving fvd built with them) fail the test. */
static int log_clean(const char *path)
{
    size_t n = 0;
    unsigned char *text = tu_read_file(path, &n);
    int bad = text != NULL && n > 0 && strstr((const char *)text, "Sanitizer") != NULL;
    if (bad) fprintf(stderr, "fvd log:\n%.*s\n", (int)n, (const char *)text);
    free(text);
    return !bad;
}

static int teardown(void **state)
{
    fx *f = *state;
    fvdp_kill(&f->sv, SIGTERM);
    int ok = log_clean(f->sv.log);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return ok ? 0 : -1;
}

static int group_setup_pg(void **state)
{
    (void)state;
    if (pgu_start(&PG) != 0) return -1;
    pg_up = 1;
    return 0;
}

static int group_teardown_pg(void **state)
{
    (void)state;
    if (pg_up) pgu_stop(&PG);
    pg_up = 0;
    return 0;
}

/* ---- fvd admin ---- */

/* fvd admin <store> a1 .. (NULL-terminated list, at most 8). */
static tu_result admin(const fx *f, const char *a1, const char *a2, const char *a3,
                       const char *a4, const char *a5, const char *a6, const char *a7)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = FVD_BIN;
    argv[n++] = "admin";
    argv[n++] = f->be.pg ? "--postgres" : "--data";
    argv[n++] = f->be.pg ? f->be.url : f->be.data;
    const char *rest[] = {a1, a2, a3, a4, a5, a6, a7};
    for (int i = 0; i < 7 && rest[i] != NULL; i++) argv[n++] = rest[i];
    argv[n] = NULL;
    return tu_run(argv, NULL, NULL);
}

/* An admin command that must print exactly want on stdout and exit 0. */
static void admin_ok(const fx *f, const char *want, const char *a1, const char *a2,
                     const char *a3, const char *a4, const char *a5, const char *a6)
{
    tu_result r = admin(f, a1, a2, a3, a4, a5, a6, NULL);
    if (r.exit_code != 0 || strcmp(r.out, want) != 0)
        fprintf(stderr, "fvd admin %s %s: exit %d\nstdout: %s\nstderr: %s\n", a1, a2 ? a2 : "",
                r.exit_code, r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, want);
    tu_result_free(&r);
}

/* An admin command that must fail (exit 1) saying each of says1, says2. */
static void admin_fails(const fx *f, const char *says1, const char *says2, const char *a1,
                        const char *a2, const char *a3, const char *a4, const char *a5)
{
    tu_result r = admin(f, a1, a2, a3, a4, a5, NULL, NULL);
    if (r.exit_code != 1 || strstr(r.err, says1) == NULL ||
        (says2 != NULL && strstr(r.err, says2) == NULL))
        fprintf(stderr, "fvd admin %s %s: exit %d (want 1, \"%s\")\nstderr: %s\n", a1,
                a2 ? a2 : "", r.exit_code, says1, r.err);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, says1));
    if (says2 != NULL) assert_non_null(strstr(r.err, says2));
    assert_string_equal(r.out, "");
    tu_result_free(&r);
}

/* Write text to dir/name; the path (malloc'd). */
static char *write_file(const fx *f, const char *name, const char *text)
{
    char *path = tu_path(f->dir, name);
    tu_write_file(path, (const unsigned char *)text, strlen(text));
    return path;
}

/* The policy text of version v: the built-in one, service agents as given. */
static void policy_text(char *out, size_t cap, unsigned v, const char *service)
{
    snprintf(out, cap,
             "# test policy\n"
             "version %u\n"
             "rep      own  www www www\n"
             "lead     team www www www\n"
             "director all  www www www\n"
             "service  all  %s www   # may add visits\n"
             "admin    none --- --- ---\n",
             v, service);
}

/* ---- devices ---- */

typedef struct device {
    char *path;
    fv_db *db;
} device;

static void device_enrol(const fx *f, const fvdp_server *sv, device *d, const char *user,
                         const char *role, const char *team)
{
    d->path = tu_path(f->dir, user);
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = d->path;
    cfg.passphrase = "pw";
    cfg.passphrase_len = 2;
    cfg.flags = FV_OPEN_CREATE;
    cfg.kdf_mem_kib = 8192;
    cfg.kdf_passes = 1;
    cfg.user = user;
    fv_status st = fv_open(&d->db, &cfg);
    if (st != FV_OK) fprintf(stderr, "open %s: %s\n", user, fv_errmsg(d->db));
    assert_int_equal(st, FV_OK);
    char *code = fvdp_add_user(&f->be, user, role, team);
    assert_non_null(code);
    st = fv_enroll(d->db, sv->base, code, NULL);
    if (st != FV_OK) fprintf(stderr, "enrol %s: %s\n", user, fv_errmsg(d->db));
    assert_int_equal(st, FV_OK);
    free(code);
}

static void device_close(device *d)
{
    if (d->db != NULL) assert_int_equal(fv_close(d->db), FV_OK);
    d->db = NULL;
    free(d->path);
    d->path = NULL;
}

/* Every response body fvd sent during the syncs that go through it. */
typedef struct capture {
    unsigned char *b;
    size_t len, cap;
} capture;

static int capture_post(void *ctx, const fv_http_request *req, fv_http_response *resp,
                        char *err, size_t errcap)
{
    capture *c = ctx;
    void *conn = fv_platform_http_open();
    if (conn == NULL) {
        snprintf(err, errcap, "cannot open a connection");
        return -1;
    }
    int rc = fv_platform_http_post(conn, req, resp, err, errcap);
    fv_platform_http_close(conn);
    if (rc == 0 && resp->body_len > 0) {
        if (c->len + resp->body_len > c->cap) {
            size_t cap = c->cap ? c->cap : 1 << 16;
            while (cap < c->len + resp->body_len) cap *= 2;
            unsigned char *nb = realloc(c->b, cap);
            assert_non_null(nb);
            c->b = nb;
            c->cap = cap;
        }
        memcpy(c->b + c->len, resp->body, resp->body_len);
        c->len += resp->body_len;
    }
    return rc;
}

/* Sync until drained (through cap when not NULL); the result. */
static fv_sync_result sync_dev(device *d, capture *cap)
{
    fv_sync_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    if (cap != NULL) {
        cfg.http = capture_post;
        cfg.http_ctx = cap;
    }
    fv_sync_result r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    fv_status st = fv_sync(d->db, &cfg, &r);
    if (st != FV_OK) fprintf(stderr, "sync: %s: %s\n", fv_status_str(st), fv_errmsg(d->db));
    assert_int_equal(st, FV_OK);
    assert_true(r.drained);
    return r;
}

static fv_sync_status status_of(device *d)
{
    fv_sync_status s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    assert_int_equal(fv_sync_status_get(d->db, &s), FV_OK);
    return s;
}

static int contains(const unsigned char *b, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i <= len - n; i++)
        if (memcmp(b + i, needle, n) == 0) return 1;
    return 0;
}

/* Does the device's full state (every row it holds, exported) mention text? */
static int holds(const fx *f, device *d, const char *text)
{
    char *file = tu_path(f->dir, "state.fvc");
    assert_int_equal(fv_changes_export_file(d->db, file, FV_EXPORT_ALL, NULL), FV_OK);
    size_t len = 0;
    unsigned char *b = tu_read_file(file, &len);
    assert_non_null(b);
    int found = contains(b, len, text);
    free(b);
    free(file);
    return found;
}

/* Does any row of table hold text in any column?  Straight from the
 * device's (decrypted) tables, past the API's redaction. */
static int raw_holds(device *d, const char *table, const char *column, const char *text)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM %s WHERE instr(CAST(%s AS BLOB), CAST(?1 AS BLOB)) > 0",
             table, column);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(d->db->sql, sql, -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return n > 0;
}

static char *new_customer(device *d, const char *name)
{
    fv_record *r;
    assert_int_equal(fv_record_new(d->db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", name), FV_OK);
    assert_int_equal(fv_insert(d->db, r), FV_OK);
    char *id = strdup(fv_record_id(r));
    fv_record_free(r);
    return id;
}

static void new_contact(device *d, const char *cust, const char *name, const char *phone)
{
    fv_record *r;
    assert_int_equal(fv_record_new(d->db, "contact", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "customer_id", cust), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", name), FV_OK);
    assert_int_equal(fv_record_set_text(r, "phone", phone), FV_OK);
    assert_int_equal(fv_insert(d->db, r), FV_OK);
    fv_record_free(r);
}

static void new_visit(device *d, const char *cust, const char *summary)
{
    fv_record *r;
    assert_int_equal(fv_record_new(d->db, "visit", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "customer_id", cust), FV_OK);
    assert_int_equal(fv_record_set_text(r, "method", "visit"), FV_OK);
    assert_int_equal(fv_record_set_text(r, "summary", summary), FV_OK);
    assert_int_equal(fv_insert(d->db, r), FV_OK);
    fv_record_free(r);
}

/* The customer names a device lists, sorted, joined with ", ". */
static void customer_names(device *d, char *out, size_t cap)
{
    char names[16][64];
    size_t n = 0;
    fv_list *l;
    const fv_record *r;
    assert_int_equal(fv_list_customers(d->db, NULL, &l), FV_OK);
    while (fv_list_next(l, &r) == FV_OK && r != NULL) {
        const char *v = NULL;
        assert_int_equal(fv_record_get_text(r, "name", &v), FV_OK);
        assert_true(n < 16);
        snprintf(names[n++], sizeof names[0], "%s", v);
    }
    fv_list_free(l);
    for (size_t i = 1; i < n; i++) /* insertion sort: a handful */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[64];
            memcpy(t, names[j], sizeof t);
            memcpy(names[j], names[j - 1], sizeof t);
            memcpy(names[j - 1], t, sizeof t);
        }
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%s", i > 0 ? ", " : "", names[i]);
}

static void expect_customers(device *d, const char *want)
{
    char got[1024];
    customer_names(d, got, sizeof got);
    if (strcmp(got, want) != 0) fprintf(stderr, "customers: [%s], want [%s]\n", got, want);
    assert_string_equal(got, want);
}

static size_t count_visits(device *d, const char *cust)
{
    fv_list *l;
    const fv_record *r;
    size_t n = 0;
    assert_int_equal(fv_list_visits(d->db, cust, &l), FV_OK);
    while (fv_list_next(l, &r) == FV_OK && r != NULL) n++;
    fv_list_free(l);
    return n;
}

/* ---- (a) policy set on a running fvd ---- */

#define PHONE_BEFORE "+49-PHONE-BEFORE-4411"
#define PHONE_AFTER "+49-PHONE-AFTER-7722"

/* The contact of cust named name on d: its phone's state (1 redacted, 0
 * readable with *phone set). */
static int phone_redacted(device *d, const char *cust, const char *name, char *phone,
                          size_t cap)
{
    fv_list *l;
    const fv_record *c;
    int found = 0, red = -1;
    assert_int_equal(fv_list_contacts(d->db, cust, &l), FV_OK);
    while (fv_list_next(l, &c) == FV_OK && c != NULL) {
        const char *v = NULL;
        assert_int_equal(fv_record_get_text(c, "name", &v), FV_OK);
        if (v == NULL || strcmp(v, name) != 0) continue;
        found = 1;
        assert_int_equal(fv_record_redacted(c, "phone", &red), FV_OK);
        fv_status st = fv_record_get_text(c, "phone", &v);
        if (red) {
            assert_int_equal(st, FV_EACCES); /* never an empty value */
        } else {
            assert_int_equal(st, FV_OK);
            snprintf(phone, cap, "%s", v != NULL ? v : "");
        }
    }
    fv_list_free(l);
    if (!found) fprintf(stderr, "no contact %s\n", name);
    assert_true(found);
    return red;
}

static void test_policy_set(void **state)
{
    fx *f = *state;
    /* A second fvd on the same store: the service agent syncs through it. */
    fvdp_server sv2;
    memset(&sv2, 0, sizeof sv2);
    snprintf(sv2.log, sizeof sv2.log, "%s", f->sv.log);
    assert_int_equal(fvdp_start(&f->be, &sv2, 0), 0);

    device rita, sam;
    device_enrol(f, &f->sv, &rita, "rita", "rep", "east");
    device_enrol(f, &sv2, &sam, "sam", "service", "east");
    assert_int_equal(status_of(&sam).policy_version, 1);
    char *cust = new_customer(&rita, "Acme Plant");
    new_contact(&rita, cust, "Li Wei", PHONE_BEFORE);
    (void)sync_dev(&rita, NULL);
    (void)sync_dev(&sam, NULL);
    char phone[64] = "";
    assert_int_equal(phone_redacted(&sam, cust, "Li Wei", phone, sizeof phone), 0);
    assert_string_equal(phone, PHONE_BEFORE);

    /* Version 2: service agents read public fields only. */
    char text[512];
    policy_text(text, sizeof text, 2, "r-- r--");
    char *v2 = write_file(f, "policy-v2.txt", text);
    admin_ok(f, "policy version 2 stored\n", "policy", "set", v2, NULL, NULL, NULL);

    /* A rep writes a new phone after the change. */
    new_contact(&rita, cust, "Ana Ruiz", PHONE_AFTER);
    (void)sync_dev(&rita, NULL);
    assert_int_equal(phone_redacted(&rita, cust, "Ana Ruiz", phone, sizeof phone), 0);

    /* The service agent's next sync, through the other fvd process. */
    capture cap = {NULL, 0, 0};
    fv_sync_result res = sync_dev(&sam, &cap);
    assert_true(res.pulled > 0); /* the new contact's public fields came */
    assert_int_equal(status_of(&sam).policy_version, 2);
    assert_true(cap.len > 0);
    assert_true(contains(cap.b, cap.len, "Ana Ruiz"));
    assert_false(contains(cap.b, cap.len, "PHONE-AFTER")); /* fvd never sent it */
    free(cap.b);
    assert_false(raw_holds(&sam, "contact", "phone", "PHONE-AFTER"));
    assert_false(holds(f, &sam, "PHONE-AFTER"));
    /* both contacts there, both phones redacted: the new one never came,
     * the old one the device no longer shows */
    assert_int_equal(phone_redacted(&sam, cust, "Ana Ruiz", phone, sizeof phone), 1);
    assert_int_equal(phone_redacted(&sam, cust, "Li Wei", phone, sizeof phone), 1);
    /* the rep is not affected */
    (void)sync_dev(&rita, NULL);
    assert_int_equal(status_of(&rita).policy_version, 2);
    assert_int_equal(phone_redacted(&rita, cust, "Li Wei", phone, sizeof phone), 0);
    assert_string_equal(phone, PHONE_BEFORE);

    /* A service device enrolled now has version 2 from its enrolment on,
     * and never receives a phone. */
    device sue;
    device_enrol(f, &f->sv, &sue, "sue", "service", "west");
    assert_int_equal(status_of(&sue).policy_version, 2);
    capture cap2 = {NULL, 0, 0};
    (void)sync_dev(&sue, &cap2);
    assert_true(contains(cap2.b, cap2.len, "Li Wei"));
    assert_false(contains(cap2.b, cap2.len, "PHONE-"));
    free(cap2.b);
    assert_int_equal(phone_redacted(&sue, cust, "Li Wei", phone, sizeof phone), 1);

    /* Refused: the same version, a lower one, a malformed file.  None of
     * them changes what is in force. */
    admin_fails(f, "version 2", "higher", "policy", "set", v2, NULL, NULL);
    policy_text(text, sizeof text, 1, "rr- rr-");
    char *v1 = write_file(f, "policy-v1.txt", text);
    admin_fails(f, "version 1", NULL, "policy", "set", v1, NULL, NULL);
    char *bad = write_file(f, "policy-bad.txt",
                           "version 3\n"
                           "rep      own  www www www\n"
                           "lead     everywhere www www www\n");
    admin_fails(f, "line 3", "everywhere", "policy", "set", bad, NULL, NULL);
    char *bad2 = write_file(f, "policy-bad2.txt", "version 3\nrep own www www\n");
    admin_fails(f, "line 2", NULL, "policy", "set", bad2, NULL, NULL);
    char *missing = tu_path(f->dir, "no-such-policy.txt");
    admin_fails(f, "no-such-policy.txt", NULL, "policy", "set", missing, NULL, NULL);
    tu_result show = admin(f, "policy", "show", NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(show.exit_code, 0);
    assert_non_null(strstr(show.out, "version 2\n"));
    tu_result_free(&show);
    (void)sync_dev(&sam, NULL);
    assert_int_equal(status_of(&sam).policy_version, 2);

    /* Version 3 gives pii back: a phone written from then on reaches the
     * agent, and the one it held from before reads again.  (One withheld
     * while version 2 was in force is not checked here: it lies behind the
     * device's pull cursor.) */
    policy_text(text, sizeof text, 3, "rr- rr-");
    char *v3 = write_file(f, "policy-v3.txt", text);
    admin_ok(f, "policy version 3 stored\n", "policy", "set", v3, NULL, NULL, NULL);
    new_contact(&rita, cust, "Kai Berg", "+49-PHONE-V3-1234");
    (void)sync_dev(&rita, NULL);
    (void)sync_dev(&sam, NULL);
    assert_int_equal(status_of(&sam).policy_version, 3);
    assert_int_equal(phone_redacted(&sam, cust, "Kai Berg", phone, sizeof phone), 0);
    assert_string_equal(phone, "+49-PHONE-V3-1234");
    assert_int_equal(phone_redacted(&sam, cust, "Li Wei", phone, sizeof phone), 0);
    assert_string_equal(phone, PHONE_BEFORE);

    free(v1);
    free(v2);
    free(v3);
    free(bad);
    free(bad2);
    free(missing);
    free(cust);
    device_close(&rita);
    device_close(&sam);
    device_close(&sue);
    fvdp_kill(&sv2, SIGTERM);
}

/* ---- (b) set-user ---- */

static void test_set_user(void **state)
{
    fx *f = *state;
    device rita, ezra, wade, lena, ron;
    device_enrol(f, &f->sv, &rita, "rita", "rep", "east");
    device_enrol(f, &f->sv, &ezra, "ezra", "rep", "east");
    device_enrol(f, &f->sv, &wade, "wade", "rep", "west");
    device_enrol(f, &f->sv, &lena, "lena", "lead", "east");
    device_enrol(f, &f->sv, &ron, "ron", "rep", "east");
    char *e1 = new_customer(&rita, "East One");
    new_visit(&rita, e1, "east visit");
    char *e2 = new_customer(&ezra, "East Two");
    char *w1 = new_customer(&wade, "West Before");
    new_visit(&wade, w1, "west visit 1");
    new_visit(&wade, w1, "west visit 2");
    char *r1 = new_customer(&ron, "Ron's Own");
    device *all[] = {&rita, &ezra, &wade, &ron, &lena}; /* lena last: she sees the rest */
    for (size_t i = 0; i < 5; i++) (void)sync_dev(all[i], NULL);
    expect_customers(&lena, "East One, East Two, Ron's Own");
    expect_customers(&ron, "Ron's Own");

    /* Lena moves to west; Ron becomes the lead of his own team. */
    admin_ok(f, "user lena: role lead, team west\n", "set-user", "lena", "--role", "lead",
             "--team", "west");
    admin_ok(f, "user ron: role lead, team east\n", "set-user", "ron", "--role", "lead", NULL,
             NULL);
    /* created after the change, on both sides */
    char *w2 = new_customer(&wade, "West After");
    char *e3 = new_customer(&rita, "East After");
    (void)sync_dev(&wade, NULL);
    (void)sync_dev(&rita, NULL);

    (void)sync_dev(&lena, NULL);
    fv_sync_status st = status_of(&lena);
    assert_string_equal(st.role, "lead");
    assert_string_equal(st.team, "west");
    expect_customers(&lena, "West After, West Before");
    assert_int_equal(count_visits(&lena, w1), 2);
    fv_record *r;
    assert_int_equal(fv_get(lena.db, "customer", e1, &r), FV_ENOTFOUND);
    assert_int_equal(count_visits(&lena, e1), 0);
    assert_false(holds(f, &lena, "East One")); /* gone from her store, not hidden */
    assert_false(holds(f, &lena, "east visit"));
    assert_false(holds(f, &lena, "East After"));
    /* she may work on west's customers: fvd judges her push as west's lead */
    new_visit(&lena, w1, "lead's visit");
    fv_sync_result res = sync_dev(&lena, NULL);
    assert_int_equal(res.rejected, 0);
    (void)sync_dev(&wade, NULL);
    assert_int_equal(count_visits(&wade, w1), 3);

    (void)sync_dev(&ron, NULL);
    st = status_of(&ron);
    assert_string_equal(st.role, "lead");
    assert_string_equal(st.team, "east");
    expect_customers(&ron, "East After, East One, East Two, Ron's Own");
    assert_int_equal(count_visits(&ron, e1), 1);

    /* The others see no difference. */
    (void)sync_dev(&ezra, NULL);
    expect_customers(&ezra, "East Two");

    /* Refused: an unknown user; a role the policy in force does not have. */
    admin_fails(f, "no user nobody", NULL, "set-user", "nobody", "--role", "rep", NULL);
    admin_fails(f, "role 'boss'", "rep, lead", "set-user", "ron", "--role", "boss", NULL);
    (void)sync_dev(&ron, NULL);
    assert_string_equal(status_of(&ron).role, "lead");

    free(e1);
    free(e2);
    free(e3);
    free(w1);
    free(w2);
    free(r1);
    for (size_t i = 0; i < 5; i++) device_close(all[i]);
}

/* ---- (c) policy show ---- */

static void test_policy_show(void **state)
{
    fx *f = *state;
    /* Nothing stored: the built-in version 1. */
    fv__policy p;
    char want[4096];
    fv__policy_default(&p);
    assert_true(fv__policy_format(&p, want, sizeof want) < sizeof want);
    admin_ok(f, want, "policy", "show", NULL, NULL, NULL, NULL);
    tu_result r = admin(f, "policy", "show", NULL, NULL, NULL, NULL, NULL);
    assert_non_null(strstr(r.err, "built-in"));
    tu_result_free(&r);

    char text[512];
    policy_text(text, sizeof text, 2, "r-- r--");
    char *v2 = write_file(f, "policy-v2.txt", text);
    admin_ok(f, "policy version 2 stored\n", "policy", "set", v2, NULL, NULL, NULL);
    char why[256];
    assert_int_equal(fv__policy_parse(text, &p, why, sizeof why), 1);
    assert_true(fv__policy_format(&p, want, sizeof want) < sizeof want);
    admin_ok(f, want, "policy", "show", NULL, NULL, NULL, NULL);
    assert_non_null(strstr(want, "service    all    r--      r--     www\n"));
    admin_ok(f,
             "{\"version\":2,\"roles\":["
             "{\"name\":\"rep\",\"scope\":\"own\",\"customer\":\"www\",\"contact\":\"www\","
             "\"visit\":\"www\"},"
             "{\"name\":\"lead\",\"scope\":\"team\",\"customer\":\"www\",\"contact\":\"www\","
             "\"visit\":\"www\"},"
             "{\"name\":\"director\",\"scope\":\"all\",\"customer\":\"www\",\"contact\":\"www\","
             "\"visit\":\"www\"},"
             "{\"name\":\"service\",\"scope\":\"all\",\"customer\":\"r--\",\"contact\":\"r--\","
             "\"visit\":\"www\"},"
             "{\"name\":\"admin\",\"scope\":\"none\",\"customer\":\"---\",\"contact\":\"---\","
             "\"visit\":\"---\"}]}\n",
             "policy", "show", "--json", NULL, NULL, NULL);
    /* What show prints is a policy file: with a higher version it is taken. */
    tu_result shown = admin(f, "policy", "show", NULL, NULL, NULL, NULL, NULL);
    char *v = strstr(shown.out, "version 2\n");
    assert_non_null(v);
    v[8] = '5';
    char *again = write_file(f, "policy-again.txt", shown.out);
    tu_result_free(&shown);
    admin_ok(f, "policy version 5 stored\n", "policy", "set", again, NULL, NULL, NULL);
    want[strstr(want, "version 2\n") - want + 8] = '5';
    admin_ok(f, want, "policy", "show", NULL, NULL, NULL, NULL);
    /* Usage errors exit 2. */
    r = admin(f, "policy", "frobnicate", NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(r.exit_code, 2);
    tu_result_free(&r);
    r = admin(f, "policy", "set", v2, "--json", NULL, NULL, NULL);
    assert_int_equal(r.exit_code, 2);
    tu_result_free(&r);
    free(again);
    free(v2);
}

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = {
        cmocka_unit_test_setup_teardown(test_policy_set, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_set_user, setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_policy_show, setup_sqlite, teardown),
    };
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test_setup_teardown(test_policy_set, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_set_user, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_policy_show, setup_pg, teardown),
    };
    int failed = cmocka_run_group_tests_name("policy and roles on fvd (SQLite)", sqlite_tests,
                                             NULL, NULL);
    failed += cmocka_run_group_tests_name("policy and roles on fvd (PostgreSQL)", pg_tests,
                                          group_setup_pg, group_teardown_pg);
    return failed ? 1 : 0;
}

#endif /* FVD_BIN */
