/*
 * test_keys.c - field keys on fvd, end to end: the real fvd binary (`fvd
 * serve` on loopback, started with tests/fvdproc.h, and the `fvd admin ...
 * keys` commands run with FV_ADMIN_PASSPHRASE), devices with Ed25519 keys
 * of their own enrolled over HTTP and signing their requests with
 * sync/sign.c, bodies built with the wire codec, the admin key file opened
 * in-process with server/adminkeys.h to check what it holds.
 *
 *  - keys init makes the admin key file (mode 0600) holding no key, no
 *    secret key and no team name in clear; a wrong passphrase fails (exit
 *    1) and leaves it byte for byte; no passphrase and no terminal fails;
 *    a second command while the file is open fails;
 *  - who is granted what after init: rep and lead of the team both
 *    classes, service pii only, a director of another team both, a rep of
 *    another team and an admin nothing; every grant verifies and opens
 *    with the device's secret key to the key in the file; a second grant
 *    issues nothing; a device enrolled later gets its grants at the next
 *    `keys grant`; rotation grants the new version to the same devices and
 *    keeps the old one listed; a revoked device gets nothing more;
 *  - paging: 35 grants for one device (a director: 17 teams x 2 classes,
 *    one rotated) arrive over two /v1/keys calls;
 *  - push: before init a plaintext budget is taken; after, it is refused
 *    (REASON_FORBIDDEN, the value never quoted; the rest of the batch
 *    applies); a sealed one is taken and pulled back byte for byte; sealed
 *    for the wrong class or malformed is REASON_MALFORMED; clearing is
 *    fine;
 *  - /v1/keys refuses a bad signature (401), another device's id (400) and
 *    a revoked device (403).
 *
 * Everything runs twice: fvd on SQLite (the key file at its default place,
 * DIR/fvd-admin.keys) and on PostgreSQL (a throwaway cluster,
 * tests/pgutil.h; the key file given with --admin-keys).
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
    puts("test_keys: built without fvd: skipped");
    return 0;
}
#else

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "adminkeys.h"
#include "change.h"
#include "fieldcrypt.h"
#include "fvd.h"
#include "fvdproc.h"
#include "internal.h"
#include "pgutil.h"
#include "platform.h"
#include "sign.h"
#include "testutil.h"
#include "wire.h"

#define ERRCAP 512
#define PASS "correct horse battery staple"
#define BUDGET "1234567 EUR (marker-budget)"
#define PII FV_CLASS_PII
#define CONF FV_CLASS_CONFIDENTIAL

/* Does needle occur in b? */
static int contains(const unsigned char *b, size_t n, const void *needle, size_t k)
{
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (memcmp(b + i, needle, k) == 0) return 1;
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Devices ---- */

typedef struct device {
    const char *user, *role, *team;
    unsigned char id[16], pk[32], sk[64];
    uint64_t acked_seq;           /* push chain */
    unsigned char acked_hash[32];
    uint64_t dseq, hlc_count;
    uint64_t grant_cursor;        /* the last grant seq fetched */
} device;

enum { REP_E, LEAD_E, SVC_E, DIR_N, REP_W, ADM, LEAD2_E, NDEV };

static const struct {
    const char *user, *role, *team;
} PEOPLE[NDEV] = {
    {"rita", "rep", "east"},      {"leo", "lead", "east"},      {"sam", "service", "east"},
    {"dora", "director", "north"}, {"walt", "rep", "west"},     {"ada", "admin", "east"},
    {"lena", "lead", "east"},
};

/* ---- The group's state: one fvd, its devices ---- */

static fvdp_backend BE;
static fvdp_server SV;
static pgu_cluster PG;
static char *DIR_;        /* temp dir: fvd.log, and the store with SQLite */
static char *KEYFILE;     /* the admin key file */
static device DEV[NDEV];
static unsigned char ROW_E[16], ROW_W[16], CONTACT_E[16]; /* east and west customers */

/* ---- fvd admin ---- */

/* fvd admin <store> [--admin-keys F] a... with FV_ADMIN_PASSPHRASE = pass
 * (unset when NULL); keyfile: pass --admin-keys (always with PostgreSQL). */
static tu_result admin(const char *pass, int keyfile, const char *a1, const char *a2,
                       const char *a3, const char *a4, const char *a5)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = FVD_BIN;
    argv[n++] = "admin";
    argv[n++] = BE.pg ? "--postgres" : "--data";
    argv[n++] = BE.pg ? BE.url : BE.data;
    if (keyfile || (BE.pg && strcmp(a1, "keys") == 0)) {
        argv[n++] = "--admin-keys";
        argv[n++] = KEYFILE;
    }
    const char *rest[] = {a1, a2, a3, a4, a5};
    for (int i = 0; i < 5; i++)
        if (rest[i] != NULL) argv[n++] = rest[i];
    argv[n] = NULL;
    char envvar[256];
    snprintf(envvar, sizeof envvar, "%s=%s", FVD_ADMIN_PASS_ENV, pass != NULL ? pass : "");
    const char *env[] = {pass != NULL ? envvar : FVD_ADMIN_PASS_ENV, NULL};
    return tu_run(argv, env, NULL);
}

/* A keys command that must succeed (NULL arguments left out): its stdout
 * (malloc'd). */
static char *keys_ok(const char *sub, const char *team, const char *cls)
{
    tu_result r = admin(PASS, 0, "keys", sub, team, cls, NULL);
    if (r.exit_code != 0)
        fprintf(stderr, "fvd admin keys %s %s: exit %d: %s\n", sub, team ? team : "",
                r.exit_code, r.err);
    assert_int_equal(r.exit_code, 0);
    free(r.err);
    return r.out;
}

static void expect_line(const char *sub, const char *team, const char *cls, const char *line)
{
    char *out = keys_ok(sub, team, cls);
    if (strcmp(out, line) != 0) fprintf(stderr, "expected \"%s\", got \"%s\"\n", line, out);
    assert_string_equal(out, line);
    free(out);
}

/* ---- HTTP ---- */

typedef struct resp {
    long status;
    unsigned char *body;
    size_t len;
} resp;

/* POST body to path, signed by d (with sk, d's own if NULL) or unsigned
 * when d is NULL. */
static resp post(const char *path, const unsigned char *body, size_t len, const device *d,
                 const unsigned char *sk)
{
    char url[128], dev[33], nhex[33], ts[24], sig[FV_SIGN_HEX_LEN + 1];
    snprintf(url, sizeof url, "%s%s", SV.base, path);
    fv_http_header h[5] = {{"Content-Type", "application/x-protobuf"}};
    size_t nh = 1;
    if (d != NULL) {
        unsigned char nonce[16];
        randombytes_buf(nonce, sizeof nonce);
        int64_t t = now_ms();
        fvd_hex(d->id, 16, dev);
        fvd_hex(nonce, 16, nhex);
        snprintf(ts, sizeof ts, "%lld", (long long)t);
        assert_int_equal(fv__sign_request(sk != NULL ? sk : d->sk, "POST", path, t, nonce, body,
                                          len, sig), FV_OK);
        h[nh++] = (fv_http_header){"X-FV-Device", dev};
        h[nh++] = (fv_http_header){"X-FV-Timestamp", ts};
        h[nh++] = (fv_http_header){"X-FV-Nonce", nhex};
        h[nh++] = (fv_http_header){"X-FV-Signature", sig};
    }
    fv_http_request rq;
    memset(&rq, 0, sizeof rq);
    rq.url = url;
    rq.headers = h;
    rq.nheaders = nh;
    rq.body = body;
    rq.body_len = len;
    rq.timeout_ms = 60000;
    rq.max_response = (size_t)16 << 20;
    fv_http_response rs;
    memset(&rs, 0, sizeof rs);
    char err[ERRCAP] = "";
    void *conn = fv__curl_open(NULL);
    assert_non_null(conn);
    int rc = fv__curl_post(conn, &rq, &rs, err, sizeof err);
    fv__curl_close(NULL, conn);
    if (rc != 0) fprintf(stderr, "POST %s: %s\n", path, err);
    assert_int_equal(rc, 0);
    return (resp){rs.status, rs.body, rs.body_len};
}

static void expect_error(const resp *r, long status, fieldvault_v1_ErrorCode code,
                         const char *phrase)
{
    fieldvault_v1_Error e;
    memset(&e, 0, sizeof e);
    char err[ERRCAP] = "";
    fv_status st = fv__wire_decode_error(r->body, r->len, &e, err, sizeof err);
    if (r->status != status || st != FV_OK || e.code != code || strstr(e.message, phrase) == NULL)
        fprintf(stderr, "expected %ld/%d \"%s\"; got %ld %d \"%s\" %s\n", status, (int)code,
                phrase, r->status, (int)e.code, e.message, err);
    assert_int_equal(r->status, status);
    assert_int_equal(st, FV_OK);
    assert_int_equal(e.code, code);
    assert_non_null(strstr(e.message, phrase));
}

static void enroll(device *d, const char *code)
{
    fieldvault_v1_EnrollRequest q = fieldvault_v1_EnrollRequest_init_zero;
    snprintf(q.code, sizeof q.code, "%s", code);
    memcpy(q.device_id, d->id, 16);
    memcpy(q.public_key, d->pk, 32);
    snprintf(q.device_name, sizeof q.device_name, "%s's phone", d->user);
    fv__membuf m;
    fv__membuf_init(&m, 0);
    char err[ERRCAP];
    assert_int_equal(fv__wire_encode_enroll_request(&q, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    resp r = post("/v1/enroll", m.data, m.len, NULL, NULL);
    if (r.status != 200) fprintf(stderr, "enroll %s: %ld\n", d->user, r.status);
    assert_int_equal(r.status, 200);
    free(r.body);
    fv__membuf_free(&m);
}

static void new_device(int i)
{
    device *d = &DEV[i];
    memset(d, 0, sizeof *d);
    d->user = PEOPLE[i].user;
    d->role = PEOPLE[i].role;
    d->team = PEOPLE[i].team;
    randombytes_buf(d->id, sizeof d->id);
    crypto_sign_keypair(d->pk, d->sk);
    char *code = fvdp_add_user(&BE, d->user, d->role, d->team);
    assert_non_null(code);
    enroll(d, code);
    free(code);
}

/* POST /v1/keys for d after `after`: the HTTP status, *out when 200. */
static long fetch_keys(const device *d, uint64_t after, fieldvault_v1_KeysResponse *out,
                       resp *keep)
{
    fieldvault_v1_KeysRequest q = fieldvault_v1_KeysRequest_init_zero;
    memcpy(q.device_id, d->id, 16);
    q.after = after;
    fv__membuf m;
    fv__membuf_init(&m, 0);
    char err[ERRCAP];
    assert_int_equal(fv__wire_encode_keys_request(&q, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    resp r = post("/v1/keys", m.data, m.len, d, NULL);
    fv__membuf_free(&m);
    long status = r.status;
    if (status == 200) {
        fv_status st = fv__wire_decode_keys_response(r.body, r.len, out, err, sizeof err);
        if (st != FV_OK) fprintf(stderr, "keys response: %s\n", err);
        assert_int_equal(st, FV_OK);
    }
    if (keep != NULL) *keep = r;
    else free(r.body);
    return status;
}

/* ---- The admin key file, in-process ---- */

static fvd_adminkeys *open_file(void)
{
    fvd_adminkeys *k = NULL;
    char err[ERRCAP];
    fv_status st = fvd_adminkeys_open(KEYFILE, PASS, &k, err, sizeof err);
    if (st != FV_OK) fprintf(stderr, "open %s: %s\n", KEYFILE, err);
    assert_int_equal(st, FV_OK);
    return k;
}

static const fvd_field_key *file_key(const fvd_adminkeys *k, const char *team, int cls,
                                     uint32_t v)
{
    for (size_t i = 0; i < fvd_adminkeys_count(k); i++) {
        const fvd_field_key *f = fvd_adminkeys_key(k, i);
        if (f->cls == cls && f->version == v && strcmp(f->team, team) == 0) return f;
    }
    return NULL;
}

/* d's grants after d->grant_cursor, all of them (following `more`); each
 * must verify and open to the key in the file.  Returns how many; *calls
 * counts the requests. */
typedef struct got_grant {
    char team[FVD_NAME_MAX + 1];
    int cls;
    uint32_t v;
} got_grant;

static size_t fetch_all(device *d, got_grant *out, size_t cap, int *calls)
{
    fvd_adminkeys *k = open_file();
    static fieldvault_v1_KeysResponse m;
    size_t n = 0;
    int more = 1;
    *calls = 0;
    while (more) {
        memset(&m, 0, sizeof m);
        assert_int_equal(fetch_keys(d, d->grant_cursor, &m, NULL), 200);
        (*calls)++;
        assert_int_equal(m.admin_public_key.size, 32);
        assert_memory_equal(m.admin_public_key.bytes, fvd_adminkeys_public(k), 32);
        assert_true(m.grants_count <= FV_WIRE_KEYS_MAX);
        if (m.more) assert_int_equal(m.grants_count, FV_WIRE_KEYS_MAX);
        for (pb_size_t i = 0; i < m.grants_count; i++) {
            const fieldvault_v1_Grant *g = &m.grants[i];
            assert_true(g->seq > d->grant_cursor);
            d->grant_cursor = g->seq;
            unsigned char key[FV_FKEY_LEN];
            int rc = fv__fc_grant_open(m.admin_public_key.bytes, d->id, d->sk, g->team,
                                       (int)g->field_class, g->version, g->sealed_key,
                                       g->signature, key);
            assert_int_equal(rc, 0);
            const fvd_field_key *f = file_key(k, g->team, (int)g->field_class, g->version);
            assert_non_null(f);
            assert_memory_equal(key, f->key, FV_FKEY_LEN);
            /* another device's key does not open it */
            const device *o = d == &DEV[REP_E] ? &DEV[LEAD_E] : &DEV[REP_E];
            assert_int_equal(fv__fc_grant_open(m.admin_public_key.bytes, d->id, o->sk, g->team,
                                               (int)g->field_class, g->version, g->sealed_key,
                                               g->signature, key), -2);
            if (n < cap) {
                snprintf(out[n].team, sizeof out[n].team, "%s", g->team);
                out[n].cls = (int)g->field_class;
                out[n].v = g->version;
            }
            n++;
        }
        more = m.more;
        assert_true(*calls < 100);
    }
    fvd_adminkeys_close(k);
    return n;
}

static int has_grant(const got_grant *g, size_t n, const char *team, int cls, uint32_t v)
{
    for (size_t i = 0; i < n; i++)
        if (g[i].cls == cls && g[i].v == v && strcmp(g[i].team, team) == 0) return 1;
    return 0;
}

/* d's new grants must be exactly the (cls, v) pairs listed, all of team
 * east (pairs end with cls 0). */
static void expect_grants(int who, const int *pairs)
{
    got_grant g[64];
    int calls;
    size_t n = fetch_all(&DEV[who], g, 64, &calls);
    size_t want = 0;
    for (; pairs[2 * want] != 0; want++) {
        if (!has_grant(g, n, "east", pairs[2 * want], (uint32_t)pairs[2 * want + 1]))
            fprintf(stderr, "%s (%s): no grant of class %d v%d\n", DEV[who].user, DEV[who].role,
                    pairs[2 * want], pairs[2 * want + 1]);
        assert_true(has_grant(g, n, "east", pairs[2 * want], (uint32_t)pairs[2 * want + 1]));
    }
    if (n != want) fprintf(stderr, "%s (%s): %zu grants, expected %zu\n", DEV[who].user,
                           DEV[who].role, n, want);
    assert_int_equal(n, want);
}

/* ---- Push and pull ---- */

static void change_init(fv__change *c, device *d, const char *table, const char *field,
                        const unsigned char row[16])
{
    memset(c, 0, sizeof *c);
    snprintf(c->table, sizeof c->table, "%s", table);
    snprintf(c->field, sizeof c->field, "%s", field);
    memcpy(c->row_id, row, 16);
    memcpy(c->device, d->id, 16);
    c->kind = FV__VAL_NULL;
    c->hlc = ((uint64_t)now_ms() << 16) | (d->hlc_count++ & 0xFFFF);
    c->device_seq = ++d->dseq;
}

static void set_text(fv__change *c, const char *s)
{
    c->kind = FV__VAL_TEXT;
    c->len = strlen(s);
    memcpy(c->data, s, c->len + 1);
}

/* Seal text into c with team's key (cls, v) from the key file, as a
 * device would (a cls other than the field's makes a mislabelled value). */
static void set_sealed(fv__change *c, const char *team, int cls, uint32_t v, const char *text)
{
    fvd_adminkeys *k = open_file();
    const fvd_field_key *f = file_key(k, team, cls, v);
    assert_non_null(f);
    size_t n = 0;
    assert_int_equal(fv__fc_seal(f->key, team, cls, v, c->table, c->row_id, c->field, text,
                                 strlen(text), 0, c->data, sizeof c->data, &n), 0);
    fvd_adminkeys_close(k);
    c->kind = FV__VAL_SEALED;
    c->len = n;
}

typedef struct vec_src {
    const fv__change *v;
    size_t n, i;
} vec_src;

static int vec_next(void *ctx, fv__change *out)
{
    vec_src *s = ctx;
    if (s->i == s->n) return 0;
    *out = s->v[s->i++];
    return 1;
}

static fieldvault_v1_Rejection REJ[16];

/* Push v as d's next batch; it must be answered 200. */
static fv__push_response push(device *d, const fv__change *v, size_t n)
{
    fv__push_info h;
    memset(&h, 0, sizeof h);
    memcpy(h.device_id, d->id, 16);
    h.batch_seq = d->acked_seq + 1;
    memcpy(h.prev_batch_hash, d->acked_hash, 32);
    fv__membuf m;
    fv__membuf_init(&m, 0);
    vec_src s = {v, n, 0};
    char err[ERRCAP];
    assert_int_equal(fv__wire_encode_push_request(&h, vec_next, &s, fv__membuf_write, &m, NULL,
                                                  err, sizeof err), FV_OK);
    resp r = post("/v1/push", m.data, m.len, d, NULL);
    if (r.status != 200) fprintf(stderr, "push: %ld %.*s\n", r.status, (int)r.len, r.body);
    assert_int_equal(r.status, 200);
    fv__push_response pr;
    memset(&pr, 0, sizeof pr);
    memset(REJ, 0, sizeof REJ);
    pr.rejections = REJ;
    pr.rejections_cap = sizeof REJ / sizeof *REJ;
    assert_int_equal(fv__wire_decode_push_response(r.body, r.len, &pr, err, sizeof err), FV_OK);
    d->acked_seq = h.batch_seq;
    crypto_generichash(d->acked_hash, 32, m.data, m.len, NULL, 0);
    free(r.body);
    fv__membuf_free(&m);
    return pr;
}

/* One rejection for change c, with reason and a message holding phrase
 * (and never the marker budget). */
static void expect_rejected(const fv__push_response *pr, const fv__change *c,
                            fieldvault_v1_Reason reason, const char *phrase)
{
    for (size_t i = 0; i < pr->nrejections; i++) {
        if (pr->rejections[i].device_seq != c->device_seq) continue;
        if (pr->rejections[i].reason != reason || strstr(pr->rejections[i].message, phrase) == NULL)
            fprintf(stderr, "rejection: %d \"%s\"; expected %d \"%s\"\n",
                    (int)pr->rejections[i].reason, pr->rejections[i].message, (int)reason,
                    phrase);
        assert_int_equal(pr->rejections[i].reason, reason);
        assert_non_null(strstr(pr->rejections[i].message, phrase));
        assert_null(strstr(pr->rejections[i].message, "marker"));
        return;
    }
    fprintf(stderr, "no rejection for %s.%s (%zu rejections)\n", c->table, c->field,
            pr->nrejections);
    fail();
}

typedef struct found_change {
    const fv__change *want;
    int found;
} found_change;

static int find_cb(void *ctx, const fv__change *c, char *err, size_t errcap)
{
    (void)err;
    (void)errcap;
    found_change *f = ctx;
    if (strcmp(c->table, f->want->table) == 0 && strcmp(c->field, f->want->field) == 0 &&
        memcmp(c->row_id, f->want->row_id, 16) == 0 && c->hlc == f->want->hlc) {
        assert_int_equal(c->kind, f->want->kind);
        assert_int_equal(c->len, f->want->len);
        assert_memory_equal(c->data, f->want->data, c->len);
        f->found = 1;
    }
    return 0;
}

/* d pulls everything; want must be among the changes, byte for byte. */
static void expect_pulled(const device *d, const fv__change *want)
{
    found_change f = {want, 0};
    uint64_t cursor = 0;
    int more = 1;
    while (more) {
        fieldvault_v1_PullRequest q = fieldvault_v1_PullRequest_init_zero;
        memcpy(q.device_id, d->id, 16);
        q.cursor = cursor;
        fv__membuf m;
        fv__membuf_init(&m, 0);
        char err[ERRCAP];
        assert_int_equal(fv__wire_encode_pull_request(&q, fv__membuf_write, &m, err, sizeof err),
                         FV_OK);
        resp r = post("/v1/pull", m.data, m.len, d, NULL);
        fv__membuf_free(&m);
        assert_int_equal(r.status, 200);
        fv__membuf in;
        fv__membuf_init_read(&in, r.body, r.len);
        fv__pull_info info;
        assert_int_equal(fv__wire_decode_pull_response(fv__membuf_read, &in, find_cb, &f, &info,
                                                       err, sizeof err), FV_OK);
        free(r.body);
        cursor = info.cursor;
        more = info.more;
    }
    assert_true(f.found);
}

/* ======================================================================== */

static void test_before_init(void **state)
{
    (void)state;
    for (int i = 0; i < NDEV; i++)
        if (i != LEAD2_E) new_device(i);
    /* no keys yet: nothing to grant or rotate, the list is empty */
    tu_result r = admin(PASS, 0, "keys", "grant", "east", NULL, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "keys init"));
    tu_result_free(&r);
    r = admin(PASS, 0, "keys", "rotate", "east", "pii", NULL);
    assert_int_equal(r.exit_code, 1);
    tu_result_free(&r);
    char *out = keys_ok("list", NULL, NULL);
    assert_null(strstr(out, "east"));
    free(out);
    fieldvault_v1_KeysResponse m;
    assert_int_equal(fetch_keys(&DEV[REP_E], 0, &m, NULL), 200);
    assert_int_equal(m.admin_public_key.size, 0);
    assert_int_equal(m.grants_count, 0);
    /* the key file's place is required with PostgreSQL */
    if (BE.pg) {
        const char *argv[] = {FVD_BIN, "admin", "--postgres", BE.url, "keys", "init", "east",
                              NULL};
        const char *env[] = {FVD_ADMIN_PASS_ENV "=" PASS, NULL};
        r = tu_run(argv, env, NULL);
        assert_int_equal(r.exit_code, 2);
        assert_non_null(strstr(r.err, "--admin-keys"));
        tu_result_free(&r);
    }

    /* Before keys exist, plaintext is taken; so is a sealed value of a
     * team without keys. */
    randombytes_buf(ROW_E, 16);
    randombytes_buf(ROW_W, 16);
    randombytes_buf(CONTACT_E, 16);
    char cust[FV_ID_LEN + 1];
    fv__uuid_format(ROW_E, cust);
    device *rita = &DEV[REP_E];
    fv__change v[7];
    change_init(&v[0], rita, "customer", "name", ROW_E);
    set_text(&v[0], "East Foods");
    change_init(&v[1], rita, "customer", "owner", ROW_E);
    set_text(&v[1], "rita");
    change_init(&v[2], rita, "customer", "team", ROW_E);
    set_text(&v[2], "east");
    change_init(&v[3], rita, "customer", "budget", ROW_E);
    set_text(&v[3], BUDGET);
    change_init(&v[4], rita, "contact", "customer_id", CONTACT_E);
    set_text(&v[4], cust);
    change_init(&v[5], rita, "contact", "name", CONTACT_E);
    set_text(&v[5], "Eve");
    change_init(&v[6], rita, "contact", "phone", CONTACT_E);
    set_text(&v[6], "+49 30 1234567");
    fv__push_response pr = push(rita, v, 7);
    assert_int_equal(pr.nrejections, 0);
    assert_int_equal(pr.accepted, 7);
    device *walt = &DEV[REP_W];
    change_init(&v[0], walt, "customer", "name", ROW_W);
    set_text(&v[0], "West Wood");
    change_init(&v[1], walt, "customer", "owner", ROW_W);
    set_text(&v[1], "walt");
    change_init(&v[2], walt, "customer", "team", ROW_W);
    set_text(&v[2], "west");
    change_init(&v[3], walt, "customer", "budget", ROW_W);
    v[3].kind = FV__VAL_SEALED;
    v[3].len = 120;
    randombytes_buf(v[3].data, 120); /* west has no keys: not checked */
    pr = push(walt, v, 4);
    assert_int_equal(pr.nrejections, 0);
    assert_int_equal(pr.accepted, 4);
}

static void test_init(void **state)
{
    (void)state;
    /* No passphrase and no terminal (a new session has none). */
    if (access("/usr/bin/setsid", X_OK) == 0) {
        const char *argv[] = {"/usr/bin/setsid", "-w", FVD_BIN, "admin",
                              BE.pg ? "--postgres" : "--data", BE.pg ? BE.url : BE.data,
                              "--admin-keys", KEYFILE, "keys", "init", "east", NULL};
        const char *env[] = {FVD_ADMIN_PASS_ENV, NULL};
        tu_result r = tu_run(argv, env, NULL);
        assert_int_equal(r.exit_code, 1);
        assert_non_null(strstr(r.err, FVD_ADMIN_PASS_ENV));
        tu_result_free(&r);
        assert_int_equal(access(KEYFILE, F_OK), -1);
    }

    expect_line("init", "east", NULL, "team east: pii v1, confidential v1; 7 grants issued\n");
    struct stat sb;
    assert_int_equal(stat(KEYFILE, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* Nothing secret in clear, not even the team's name. */
    size_t n = 0;
    unsigned char *bytes = tu_read_file(KEYFILE, &n);
    assert_non_null(bytes);
    assert_true(n > 8 && memcmp(bytes, "FVADMIN1", 8) == 0);
    fvd_adminkeys *k = open_file();
    assert_int_equal(fvd_adminkeys_count(k), 2);
    const unsigned char *sk = fvd_adminkeys_secret(k);
    assert_false(contains(bytes, n, sk, 32));      /* the seed */
    assert_false(contains(bytes, n, sk + 32, 32)); /* the public half */
    for (size_t i = 0; i < fvd_adminkeys_count(k); i++) {
        const fvd_field_key *f = fvd_adminkeys_key(k, i);
        assert_string_equal(f->team, "east");
        assert_false(contains(bytes, n, f->key, FV_FKEY_LEN));
        assert_false(contains(bytes, n, f->key, 8));
    }
    assert_false(contains(bytes, n, "east", 4));
    fvd_adminkeys_close(k);

    /* A wrong passphrase: exit 1, the file byte for byte as it was. */
    const char *subs[][2] = {{"init", NULL}, {"grant", NULL}, {"rotate", "pii"}};
    for (size_t i = 0; i < 3; i++) {
        tu_result r = admin("not the passphrase", 0, "keys", subs[i][0], "east", subs[i][1],
                            NULL);
        assert_int_equal(r.exit_code, 1);
        assert_non_null(strstr(r.err, "wrong admin passphrase or damaged key file"));
        assert_null(strstr(r.err, "not the passphrase"));
        tu_result_free(&r);
        size_t m = 0;
        unsigned char *again = tu_read_file(KEYFILE, &m);
        assert_int_equal(m, n);
        assert_memory_equal(again, bytes, n);
        free(again);
    }
    free(bytes);
    /* The file given explicitly works the same (SQLite: also with --data). */
    tu_result r = admin(PASS, 1, "keys", "grant", "east", NULL, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "team east: pii v1, confidential v1; 0 grants issued\n");
    tu_result_free(&r);
    /* one admin command at a time on a key file */
    fvd_adminkeys *held = open_file();
    r = admin(PASS, 0, "keys", "grant", "east", NULL, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "in use by another fvd admin command"));
    tu_result_free(&r);
    fvd_adminkeys_close(held);
    /* init of a team with keys only grants */
    expect_line("init", "east", NULL, "team east: pii v1, confidential v1; 0 grants issued\n");
    char *out = keys_ok("list", NULL, NULL);
    assert_non_null(strstr(out, "east"));
    assert_non_null(strstr(out, "confidential"));
    free(out);
}

static void test_who_gets_what(void **state)
{
    (void)state;
    static const int both[] = {PII, 1, CONF, 1, 0, 0}, pii[] = {PII, 1, 0, 0}, none[] = {0, 0};
    expect_grants(REP_E, both);
    expect_grants(LEAD_E, both);
    expect_grants(SVC_E, pii);
    expect_grants(DIR_N, both);
    expect_grants(REP_W, none);
    expect_grants(ADM, none);
    /* nothing new the second time */
    expect_line("grant", "east", NULL, "team east: pii v1, confidential v1; 0 grants issued\n");
    expect_grants(REP_E, none);
    expect_grants(DIR_N, none);
}

static void test_late_device(void **state)
{
    (void)state;
    new_device(LEAD2_E);
    static const int both[] = {PII, 1, CONF, 1, 0, 0}, none[] = {0, 0};
    expect_grants(LEAD2_E, none);
    /* its plaintext is refused, with the hint that it has no grant */
    device *lena = &DEV[LEAD2_E];
    fv__change c;
    change_init(&c, lena, "customer", "budget", ROW_E);
    set_text(&c, BUDGET);
    fv__push_response pr = push(lena, &c, 1);
    assert_int_equal(pr.accepted, 0);
    expect_rejected(&pr, &c, fieldvault_v1_Reason_REASON_FORBIDDEN,
                    "customer.budget must be sealed with team east's confidential key (this "
                    "device holds no grant yet: fvd admin keys grant east)");
    expect_line("grant", "east", NULL, "team east: pii v1, confidential v1; 2 grants issued\n");
    expect_grants(LEAD2_E, both);
}

static void test_rotate(void **state)
{
    (void)state;
    expect_line("rotate", "east", "confidential",
                "team east: pii v1, confidential v2; 4 grants issued\n");
    static const int conf2[] = {CONF, 2, 0, 0}, none[] = {0, 0};
    expect_grants(REP_E, conf2);
    expect_grants(LEAD_E, conf2);
    expect_grants(LEAD2_E, conf2);
    expect_grants(DIR_N, conf2);
    expect_grants(SVC_E, none);
    expect_grants(REP_W, none);
    expect_grants(ADM, none);
    /* v1 is still listed, with its grants */
    char *out = keys_ok("list", NULL, "--json");
    assert_non_null(strstr(out, "\"team\": \"east\", \"class\": \"confidential\", "
                                "\"version\": 1"));
    assert_non_null(strstr(out, "\"team\": \"east\", \"class\": \"confidential\", "
                                "\"version\": 2"));
    assert_non_null(strstr(out, "\"class\": \"pii\", \"version\": 1"));
    free(out);
    fvd_adminkeys *k = open_file();
    assert_int_equal(fvd_adminkeys_count(k), 3);
    assert_non_null(file_key(k, "east", CONF, 2));
    fvd_adminkeys_close(k);
}

static void test_push_rules(void **state)
{
    (void)state;
    device *rita = &DEV[REP_E];
    char cust[FV_ID_LEN + 1];
    fv__uuid_format(ROW_E, cust);
    /* plaintext refused (the rest of the batch applies), sealed taken */
    fv__change v[4];
    change_init(&v[0], rita, "customer", "budget", ROW_E);
    set_text(&v[0], BUDGET);
    change_init(&v[1], rita, "customer", "stage", ROW_E);
    set_text(&v[1], "negotiation");
    change_init(&v[2], rita, "contact", "phone", CONTACT_E);
    set_text(&v[2], "+49 30 7654321 marker");
    change_init(&v[3], rita, "customer", "decision_chain", ROW_E);
    set_sealed(&v[3], "east", CONF, 2, "CFO, then the board");
    fv__push_response pr = push(rita, v, 4);
    assert_int_equal(pr.accepted, 2);
    assert_int_equal(pr.nrejections, 2);
    expect_rejected(&pr, &v[0], fieldvault_v1_Reason_REASON_FORBIDDEN,
                    "customer.budget must be sealed with team east's confidential key");
    expect_rejected(&pr, &v[2], fieldvault_v1_Reason_REASON_FORBIDDEN,
                    "contact.phone must be sealed with team east's pii key");
    expect_pulled(&DEV[LEAD_E], &v[3]);

    /* sealed: taken and pulled back byte for byte, old versions too */
    change_init(&v[0], rita, "customer", "budget", ROW_E);
    set_sealed(&v[0], "east", CONF, 2, BUDGET);
    change_init(&v[1], rita, "contact", "phone", CONTACT_E);
    set_sealed(&v[1], "east", PII, 1, "+49 30 7654321");
    change_init(&v[2], rita, "customer", "decision_chain", ROW_E);
    set_sealed(&v[2], "east", CONF, 1, "CEO alone");
    pr = push(rita, v, 3);
    assert_int_equal(pr.nrejections, 0);
    assert_int_equal(pr.accepted, 3);
    expect_pulled(&DEV[LEAD_E], &v[0]);
    expect_pulled(&DEV[DIR_N], &v[0]);
    expect_pulled(&DEV[SVC_E], &v[1]);

    /* sealed for the wrong class, or not a sealed value at all: malformed */
    change_init(&v[0], rita, "customer", "budget", ROW_E);
    set_sealed(&v[0], "east", PII, 1, "12 EUR");
    change_init(&v[1], rita, "contact", "phone", CONTACT_E);
    v[1].kind = FV__VAL_SEALED;
    v[1].len = 100;
    randombytes_buf(v[1].data, 100);
    v[1].data[0] = 0x00; /* not the magic */
    change_init(&v[2], rita, "customer", "budget", ROW_E); /* cleared: fine */
    pr = push(rita, v, 3);
    assert_int_equal(pr.accepted, 1);
    expect_rejected(&pr, &v[0], fieldvault_v1_Reason_REASON_MALFORMED, "customer.budget");
    expect_rejected(&pr, &v[1], fieldvault_v1_Reason_REASON_MALFORMED, "contact.phone");
    expect_pulled(&DEV[LEAD_E], &v[2]);

    /* the serving fvd never logged the protected value */
    char *log = tu_path(DIR_, "fvd.log");
    size_t n = 0;
    unsigned char *text = tu_read_file(log, &n);
    if (text != NULL) assert_false(contains(text, n, "marker", 6));
    free(text);
    free(log);
}

static void test_paging(void **state)
{
    (void)state;
    /* a director of another team gets every team's keys, a service agent
     * every team's pii key (both have scope all): 16 more teams */
    for (int t = 1; t <= 16; t++) {
        char team[16], line[96];
        snprintf(team, sizeof team, "t%02d", t);
        snprintf(line, sizeof line, "team %s: pii v1, confidential v1; 3 grants issued\n", team);
        expect_line("init", team, NULL, line);
    }
    device *dora = &DEV[DIR_N];
    dora->grant_cursor = 0;
    got_grant g[64];
    int calls = 0;
    size_t n = fetch_all(dora, g, 64, &calls);
    assert_int_equal(n, 3 + 32);
    assert_int_equal(calls, 2);
    for (int t = 1; t <= 16; t++) {
        char team[16];
        snprintf(team, sizeof team, "t%02d", t);
        assert_true(has_grant(g, n, team, PII, 1));
        assert_true(has_grant(g, n, team, CONF, 1));
    }
    assert_true(has_grant(g, n, "east", CONF, 2));
    n = fetch_all(&DEV[SVC_E], g, 64, &calls);
    assert_int_equal(n, 16);
    for (int t = 1; t <= 16; t++) {
        char team[16];
        snprintf(team, sizeof team, "t%02d", t);
        assert_true(has_grant(g, n, team, PII, 1));
    }
    /* nobody else got them */
    static const int none[] = {0, 0};
    expect_grants(REP_E, none);
    expect_grants(LEAD_E, none);
    expect_grants(REP_W, none);
}

static void test_keys_refusals(void **state)
{
    (void)state;
    device *walt = &DEV[REP_W];
    fieldvault_v1_KeysRequest q = fieldvault_v1_KeysRequest_init_zero;
    memcpy(q.device_id, walt->id, 16);
    fv__membuf m;
    fv__membuf_init(&m, 0);
    char err[ERRCAP];
    assert_int_equal(fv__wire_encode_keys_request(&q, fv__membuf_write, &m, err, sizeof err),
                     FV_OK);
    /* signed with another key */
    resp r = post("/v1/keys", m.data, m.len, walt, DEV[REP_E].sk);
    expect_error(&r, 401, fieldvault_v1_ErrorCode_ERROR_CODE_UNAUTHENTICATED, "bad signature");
    free(r.body);
    /* another device's id in the body */
    r = post("/v1/keys", m.data, m.len, &DEV[REP_E], NULL);
    expect_error(&r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST, "another device");
    free(r.body);
    r = post("/v1/keys", (const unsigned char *)"\x0a\xff", 2, walt, NULL);
    expect_error(&r, 400, fieldvault_v1_ErrorCode_ERROR_CODE_BAD_REQUEST, "keys request");
    free(r.body);
    /* revoked: 403, and no grant for it any more */
    char hex[33];
    fvd_hex(DEV[LEAD2_E].id, 16, hex);
    tu_result t = admin(NULL, 0, "revoke-device", hex, NULL, NULL, NULL);
    assert_int_equal(t.exit_code, 0);
    tu_result_free(&t);
    fieldvault_v1_KeysRequest q2 = fieldvault_v1_KeysRequest_init_zero;
    memcpy(q2.device_id, DEV[LEAD2_E].id, 16);
    fv__membuf m2;
    fv__membuf_init(&m2, 0);
    assert_int_equal(fv__wire_encode_keys_request(&q2, fv__membuf_write, &m2, err, sizeof err),
                     FV_OK);
    r = post("/v1/keys", m2.data, m2.len, &DEV[LEAD2_E], NULL);
    expect_error(&r, 403, fieldvault_v1_ErrorCode_ERROR_CODE_REVOKED, "revoked");
    free(r.body);
    fv__membuf_free(&m2);
    fv__membuf_free(&m);
    expect_line("rotate", "east", "pii", "team east: pii v2, confidential v2; 4 grants issued\n");
    /* and an unknown team */
    tu_result u = admin(PASS, 0, "keys", "rotate", "nowhere", "pii", NULL);
    assert_int_equal(u.exit_code, 1);
    assert_non_null(strstr(u.err, "nowhere"));
    tu_result_free(&u);
}

/* ---- Groups ---- */

static int start(int pg)
{
    memset(&BE, 0, sizeof BE);
    memset(&SV, 0, sizeof SV);
    BE.fvd_bin = FVD_BIN;
    BE.name = pg ? "postgres" : "sqlite";
    BE.pg = pg;
    DIR_ = tu_mkdtemp(pg ? "keys-pg" : "keys");
    snprintf(BE.data, sizeof BE.data, "%s/store", DIR_);
    if (pg) {
        if (pgu_start(&PG) != 0) return -1;
        snprintf(BE.url, sizeof BE.url, "%s", pgu_url(&PG));
        KEYFILE = tu_path(DIR_, "admin.keys");
    } else {
        KEYFILE = tu_path(BE.data, FVD_ADMIN_KEYS_FILE);
    }
    char *log = tu_path(DIR_, "fvd.log");
    snprintf(SV.log, sizeof SV.log, "%s", log);
    free(log);
    return fvdp_start(&BE, &SV, 0);
}

static int setup_sqlite(void **state)
{
    (void)state;
    return start(0);
}

static int setup_pg(void **state)
{
    (void)state;
    return start(1);
}

static int teardown(void **state)
{
    (void)state;
    fvdp_kill(&SV, SIGTERM);
    /* under the sanitizers, the serving fvd reports (a leak at exit) here */
    char *log = tu_path(DIR_, "fvd.log");
    size_t n = 0;
    unsigned char *text = tu_read_file(log, &n);
    int bad = text != NULL && contains(text, n, "Sanitizer", 9);
    if (bad) fprintf(stderr, "fvd log:\n%.*s\n", (int)n, (const char *)text);
    free(text);
    free(log);
    if (BE.pg) pgu_stop(&PG);
    tu_rmtree(DIR_);
    free(DIR_);
    free(KEYFILE);
    DIR_ = KEYFILE = NULL;
    return bad ? -1 : 0;
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_before_init), cmocka_unit_test(test_init),
        cmocka_unit_test(test_who_gets_what), cmocka_unit_test(test_late_device),
        cmocka_unit_test(test_rotate),     cmocka_unit_test(test_push_rules),
        cmocka_unit_test(test_paging),     cmocka_unit_test(test_keys_refusals),
    };
    int failed = cmocka_run_group_tests_name("field keys on SQLite", tests, setup_sqlite,
                                             teardown);
    failed += cmocka_run_group_tests_name("field keys on PostgreSQL", tests, setup_pg, teardown);
    return failed ? 1 : 0;
}

#endif /* FVD_BIN */
