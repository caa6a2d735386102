/*
 * client.c - networked sync with fvd: enrolment, the push/pull loop, the
 * time box and cancel, status, and erasing a revoked device's store.
 *
 * State lives in fv_meta (inside the encrypted store, written in the same
 * transactions as what it describes):
 *   server, sign_sk (Ed25519, 64 bytes), user, role, team  - enrolment
 *   push_seq, push_hash     - the last batch the server acknowledged
 *   pending_seq, pending_to - the batch in flight: outbox seq <= pending_to;
 *                             recorded before it is first sent, so a retry
 *                             (even after a crash) re-sends the same bytes
 *   pull_cursor             - the last server sequence applied (stored with
 *                             the changes it covers, one transaction)
 *   clock_offset            - server clock minus ours, for signing
 *   policy                  - the server's access policy (core/policy.h bytes),
 *                             adopted at enrolment and whenever a newer one
 *                             comes with the field keys answer
 *   admin_pk, grant_seq     - the admin key pinned at the first grant, and the
 *                             last field-key grant installed (core/fieldkeys.c)
 *   last_sync_ms, last_error
 * docs/protocol.md is the wire contract; every request is signed
 * (sync/sign.c), every response body is bounded.
 */
#include "sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "platform.h"
#include "policy.h"
#include "records.h"
#include "sign.h"
#include "wire.h"

#define PULL_MAX 1000u
#define RESPONSE_MAX ((size_t)16 << 20)
#define BATCH_DEFAULT 500u

/* ---- fv_meta helpers ------------------------------------------------------ */

static fv_status meta_get(fv_db *db, const char *key, unsigned char *buf, size_t cap, size_t *len,
                          int *found)
{
    *found = 0;
    if (len) *len = 0;
    sqlite3_stmt *s = fv__stmt(db, "SELECT value FROM fv_meta WHERE key = ?1");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
    size_t n = 0;
    if (*found) {
        n = (size_t)sqlite3_column_bytes(s, 0);
        const void *p = sqlite3_column_blob(s, 0);
        if (n > cap) n = cap;
        if (n > 0) memcpy(buf, p, n);
    }
    if (len) *len = n;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading sync state");
}


static fv_status meta_u64(fv_db *db, const char *key, uint64_t *v)
{
    sqlite3_stmt *s = fv__stmt(db, "SELECT value FROM fv_meta WHERE key = ?1");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    *v = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "reading sync state");
}

static fv_status meta_put(fv_db *db, const char *key, int type, const void *p, size_t len,
                          int64_t i)
{
    sqlite3_stmt *s = fv__stmt(db, "INSERT OR REPLACE INTO fv_meta(key, value) VALUES(?1, ?2)");
    if (s == NULL) return db->err;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if (type == SQLITE_BLOB) sqlite3_bind_blob(s, 2, p, (int)len, SQLITE_TRANSIENT);
    else if (type == SQLITE_TEXT) sqlite3_bind_text(s, 2, p, (int)len, SQLITE_TRANSIENT);
    else if (type == SQLITE_INTEGER) sqlite3_bind_int64(s, 2, i);
    else sqlite3_bind_null(s, 2);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "saving sync state");
}

#define PUT_TEXT(db, k, v) meta_put((db), (k), SQLITE_TEXT, (v), strlen(v), 0)
#define PUT_U64(db, k, v) meta_put((db), (k), SQLITE_INTEGER, NULL, 0, (int64_t)(v))
#define PUT_BLOB(db, k, v, n) meta_put((db), (k), SQLITE_BLOB, (v), (n), 0)

/* ---- the session ---------------------------------------------------------- */

typedef struct session {
    fv_db *db;
    char server[256];
    unsigned char *sk;           /* sodium_malloc'd signing key (64) */
    int64_t clock_offset;
    fv_http_post_fn http;
    void *http_ctx;
    int own_http;
    long timeout_ms;
    int max_attempts;
    const char *pin;
    int64_t deadline;            /* absolute ms, 0 = none */
    int64_t slowest;             /* the slowest round trip so far */
    fv_sync_progress prog;
    fv_progress_fn progress;
    void *progress_ctx;
    char rejection[256];         /* the first change the server refused */
    char key_problem[256];       /* the first field-key grant refused (the sync goes on) */
    int keys_refused;            /* the server's admin key is not the pinned one */
} session;

static void session_free(session *s)
{
    if (s->sk != NULL) sodium_free(s->sk);
    s->sk = NULL;
    if (s->own_http) fv_platform_http_close(s->http_ctx);
}

static fv_status session_transport(session *s, const fv_sync_config *cfg)
{
    fv_db *db = s->db;
    s->timeout_ms = cfg && cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 30000;
    s->max_attempts = cfg && cfg->max_attempts > 0 ? cfg->max_attempts : 4;
    s->pin = cfg ? cfg->pinned_public_key : NULL;
    if (cfg && cfg->http) {
        s->http = cfg->http;
        s->http_ctx = cfg->http_ctx;
        return FV_OK;
    }
    s->http = fv_platform_http_post;
    s->http_ctx = fv_platform_http_open();
    s->own_http = 1;
    if (s->http_ctx == NULL) return fv__err(db, FV_ENOMEM, "cannot start the HTTP transport");
    return FV_OK;
}

/* Would a request started now end after the deadline? */
static int out_of_time(const session *s)
{
    if (atomic_load(&s->db->cancel)) return 1;
    return s->deadline > 0 && fv_platform_now_ms() + s->slowest > s->deadline;
}

/* The server's Error message from a non-200 body, or a generic text. */
static void error_text(const fv_http_response *r, char *out, size_t cap)
{
    fieldvault_v1_Error e;
    char err[64];
    if (r->body_len > 0 && fv__wire_decode_error(r->body, r->body_len, &e, err, sizeof err) == FV_OK &&
        e.message[0] != '\0')
        snprintf(out, cap, "%s", e.message);
    else
        snprintf(out, cap, "HTTP status %ld", r->status);
}

static int error_code(const fv_http_response *r)
{
    fieldvault_v1_Error e;
    char err[64];
    if (r->body_len > 0 && fv__wire_decode_error(r->body, r->body_len, &e, err, sizeof err) == FV_OK)
        return (int)e.code;
    return 0;
}

/* POST path with body; signed unless sign == 0.  Retries network failures
 * and 5xx with exponential backoff and jitter (within the time box); one
 * retry after a 401 that says our clock is off, with the offset learnt
 * from the answer.  *resp is the final answer (body to be freed). */
static fv_status post(session *s, const char *path, const unsigned char *body, size_t len, int sign,
                      fv_http_response *resp, int *stopped)
{
    fv_db *db = s->db;
    char url[320];
    snprintf(url, sizeof url, "%s%s", s->server, path);
    int clock_retry = 0;
    *stopped = 0;
    memset(resp, 0, sizeof *resp);
    for (int attempt = 0;; attempt++) {
        fv_http_header h[6];
        size_t nh = 0;
        char dev[33], ts[24], nonce_hex[33], sig[129];
        h[nh++] = (fv_http_header){"Content-Type", "application/x-protobuf"};
        if (sign) {
            unsigned char nonce[16];
            randombytes_buf(nonce, sizeof nonce);
            int64_t t = fv_platform_now_ms() + s->clock_offset;
            fv__hex(db->device, 16, dev);
            fv__hex(nonce, 16, nonce_hex);
            snprintf(ts, sizeof ts, "%lld", (long long)t);
            if (fv__sign_request(s->sk, "POST", path, t, nonce, body, len, sig) != FV_OK)
                return fv__err(db, FV_EINTERNAL, "cannot sign the request");
            h[nh++] = (fv_http_header){"X-FV-Device", dev};
            h[nh++] = (fv_http_header){"X-FV-Timestamp", ts};
            h[nh++] = (fv_http_header){"X-FV-Nonce", nonce_hex};
            h[nh++] = (fv_http_header){"X-FV-Signature", sig};
        }
        fv_http_request req = {url, h, nh, body, len, s->timeout_ms, RESPONSE_MAX, s->pin};
        char err[256] = "";
        int64_t t0 = fv_platform_now_ms();
        int rc = s->http(s->http_ctx, &req, resp, err, sizeof err);
        int64_t took = fv_platform_now_ms() - t0;
        if (took > s->slowest) s->slowest = took;
        s->prog.bytes_sent += len;
        if (rc == 0) s->prog.bytes_received += resp->body_len;
        if (rc == 0 && resp->server_time_ms > 0)
            s->clock_offset = resp->server_time_ms - (t0 + took / 2);
        if (rc == 0 && resp->status == 401 && sign && !clock_retry && resp->server_time_ms > 0) {
            /* perhaps only our clock: the offset is learnt now, try once more */
            clock_retry = 1;
            free(resp->body);
            memset(resp, 0, sizeof *resp);
            attempt--;
            continue;
        }
        /* "replayed nonce": a copy of this very request (a middlebox sent
         * it twice) was answered first, and this answer to the other copy
         * is lost for nothing: every endpoint is idempotent, so ask again
         * with a new nonce, as after a network error */
        int replayed = 0;
        if (rc == 0 && resp->status == 401 && sign) {
            char why[256];
            error_text(resp, why, sizeof why);
            replayed = strstr(why, "replayed nonce") != NULL;
        }
        if (rc == 0 && resp->status < 500 && !replayed) return FV_OK;
        char why[256];
        if (rc == 0) error_text(resp, why, sizeof why);
        else snprintf(why, sizeof why, "%s", err);
        free(resp->body);
        memset(resp, 0, sizeof *resp);
        if (attempt + 1 >= s->max_attempts)
            return fv__err(db, FV_ENET, "%s: %s (after %d attempts)", url, why, attempt + 1);
        int64_t base = 200LL << (attempt < 6 ? attempt : 6);
        int64_t wait = base + (int64_t)randombytes_uniform((uint32_t)base);
        if (atomic_load(&db->cancel) ||
            (s->deadline > 0 && fv_platform_now_ms() + wait + s->slowest > s->deadline)) {
            *stopped = 1;
            return fv__err(db, FV_ENET, "%s: %s", url, why);
        }
        fv_platform_sleep_ms(wait);
    }
}

/* ---- loading the enrolment ------------------------------------------------ */

static fv_status session_load(session *s, fv_db *db, const fv_sync_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->db = db;
    fv_status st = fv__meta_text(db, "server", s->server, sizeof s->server);
    if (st != FV_OK) return st;
    if (s->server[0] == '\0')
        return fv__err(db, FV_EINVAL, "this store is not enrolled with a server: enrol it first");
    if (cfg && cfg->server && cfg->server[0]) snprintf(s->server, sizeof s->server, "%s", cfg->server);
    s->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    if (s->sk == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
    size_t n;
    int found;
    st = meta_get(db, "sign_sk", s->sk, crypto_sign_SECRETKEYBYTES, &n, &found);
    if (st == FV_OK && (!found || n != crypto_sign_SECRETKEYBYTES))
        st = fv__err(db, FV_ECORRUPT, "the store's signing key is missing");
    uint64_t off = 0;
    if (st == FV_OK) st = meta_u64(db, "clock_offset", &off);
    s->clock_offset = (int64_t)off;
    if (st == FV_OK) st = session_transport(s, cfg);
    return st;
}

static int valid_url(const char *u)
{
    if (u == NULL) return 0;
    size_t n = strlen(u);
    if (n < 8 || n > 200) return 0;
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= ' ' || (unsigned char)u[i] >= 0x7f) return 0;
    return 1;
}

/* ---- enrolment ------------------------------------------------------------ */

/* ---- the access policy ------------------------------------------------------ */

/* Adopt the server's policy when it is newer than the one held (inside the
 * caller's transaction): stored in fv_meta as data, in force at once;
 * customers that leave the user's scope under it leave the device. */
static fv_status purge_out_of_scope(fv_db *db);

static fv_status adopt_policy(fv_db *db, const fieldvault_v1_Policy *m)
{
    fv__policy p;
    char why[160];
    if (!fv__wire_policy_in(m, &p, why, sizeof why))
        return fv__err(db, FV_EPROTO, "the server's access policy is malformed: %s", why);
    if (db->enrolled && p.version <= db->policy.version) return FV_OK;
    unsigned char b[FV_POLICY_BYTES_MAX];
    size_t n = fv__policy_encode(&p, b, sizeof b);
    if (n == 0) return fv__err(db, FV_EINTERNAL, "cannot store the access policy");
    fv_status st = PUT_BLOB(db, "policy", b, n);
    if (st != FV_OK || !db->enrolled) return st;
    /* more rights: what fvd withheld so far is behind the cursor */
    int widens = fv__policy_widens(&db->policy, &p, db->acl_role);
    db->policy = p;
    if (widens) st = PUT_U64(db, "pull_cursor", 0);
    return st == FV_OK ? purge_out_of_scope(db) : st;
}

/* The user's role or team changed on the server (inside the caller's
 * transaction): take them, drop what left the scope, and pull again from
 * the start so that what came into it arrives (changes already held apply
 * as known). */
static fv_status adopt_role(fv_db *db, const char *role, const char *team)
{
    if (role[0] == '\0' || !db->enrolled ||
        (strcmp(role, db->acl_role) == 0 && strcmp(team, db->acl_team) == 0))
        return FV_OK;
    fv_status st = PUT_TEXT(db, "role", role);
    if (st == FV_OK) st = PUT_TEXT(db, "team", team);
    if (st == FV_OK) st = fv__acl_load(db);
    if (st == FV_OK) st = purge_out_of_scope(db);
    if (st == FV_OK) st = PUT_U64(db, "pull_cursor", 0);
    return st;
}

static fv_status purge_out_of_scope(fv_db *db)
{
    fv_status st = FV_OK;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db->sql, "SELECT id FROM customer", -1, &q, NULL);
    if (rc != SQLITE_OK) return fv__sqlerr(db, rc, "reading customers");
    while (st == FV_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(q, 0) != 16) continue;
        unsigned char id[16];
        int purged;
        memcpy(id, sqlite3_column_blob(q, 0), 16);
        st = fv__acl_purge_if_out(db, id, &purged);
    }
    sqlite3_finalize(q);
    return st;
}

fv_status fv_enroll(fv_db *db, const char *server, const char *code, const fv_sync_config *cfg)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (db->wiped) return fv__err(db, FV_EACCES, "this store was erased");
    if (cfg != NULL && cfg->size < sizeof *cfg)
        return fv__err(db, FV_EMISUSE, "fv_enroll: set cfg.size to sizeof(fv_sync_config)");
    if (!valid_url(server))
        return fv__err(db, FV_EINVAL, "the server must be an http:// or https:// URL");
    if (code == NULL || code[0] == '\0' || strlen(code) > 64 || !fv__utf8_valid(code, strlen(code)))
        return fv__err(db, FV_EINVAL, "the enrolment code must be 1 to 64 characters");
    char have[256];
    fv_status st = fv__meta_text(db, "server", have, sizeof have);
    if (st != FV_OK) return st;
    if (have[0] != '\0') return fv__err(db, FV_EEXIST, "this store is already enrolled with %s", have);

    session s;
    memset(&s, 0, sizeof s);
    s.db = db;
    snprintf(s.server, sizeof s.server, "%s", server);
    size_t sl = strlen(s.server);
    if (sl > 0 && s.server[sl - 1] == '/') s.server[sl - 1] = '\0';
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    s.sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    if (s.sk == NULL) return fv__err(db, FV_ENOMEM, "out of memory");
    /* The key pair is kept (in the encrypted store) before the request
     * leaves: if the answer is lost, trying again sends the same key and
     * fvd recognises the enrolment it already made. */
    size_t kn = 0;
    int have_key = 0;
    st = meta_get(db, "enroll_sk", s.sk, crypto_sign_SECRETKEYBYTES, &kn, &have_key);
    if (st == FV_OK && have_key && kn == crypto_sign_SECRETKEYBYTES) {
        crypto_sign_ed25519_sk_to_pk(pk, s.sk);
    } else if (st == FV_OK) {
        crypto_sign_keypair(pk, s.sk);
        st = PUT_BLOB(db, "enroll_sk", s.sk, crypto_sign_SECRETKEYBYTES);
    }
    if (st == FV_OK) st = session_transport(&s, cfg);

    fieldvault_v1_EnrollRequest rq = fieldvault_v1_EnrollRequest_init_zero;
    snprintf(rq.code, sizeof rq.code, "%s", code);
    memcpy(rq.device_id, db->device, 16);
    memcpy(rq.public_key, pk, 32);
    snprintf(rq.device_name, sizeof rq.device_name, "%s", db->user ? db->user : "");
    fv__membuf body;
    fv__membuf_init(&body, 4096);
    char err[256] = "";
    if (st == FV_OK && fv__wire_encode_enroll_request(&rq, fv__membuf_write, &body, err, sizeof err) != FV_OK)
        st = fv__err(db, FV_EINTERNAL, "encoding the enrolment: %s", err);
    sodium_memzero(rq.code, sizeof rq.code);
    fv_http_response r;
    memset(&r, 0, sizeof r);
    int stopped;
    if (st == FV_OK) st = post(&s, "/v1/enroll", fv__membuf_bytes(&body), body.len, 0, &r, &stopped);
    fieldvault_v1_EnrollResponse rs;
    if (st == FV_OK && r.status != 200) {
        char why[256];
        error_text(&r, why, sizeof why);
        st = fv__err(db, r.status == 400 ? FV_EPROTO : FV_EACCES, "enrolment refused: %s", why);
    }
    if (st == FV_OK && fv__wire_decode_enroll_response(r.body, r.body_len, &rs, err, sizeof err) != FV_OK)
        st = fv__err(db, FV_EPROTO, "the server's enrolment answer is malformed: %s", err);
    if (st == FV_OK) {
        int opened;
        st = fv__tx_begin(db, &opened);
        if (st == FV_OK) st = PUT_TEXT(db, "server", s.server);
        if (st == FV_OK) st = PUT_BLOB(db, "sign_sk", s.sk, crypto_sign_SECRETKEYBYTES);
        if (st == FV_OK) st = PUT_TEXT(db, "user", rs.user);
        if (st == FV_OK) st = PUT_TEXT(db, "role", rs.role);
        if (st == FV_OK) st = PUT_TEXT(db, "team", rs.team);
        if (st == FV_OK && rs.has_policy) st = adopt_policy(db, &rs.policy);
        if (st == FV_OK) st = PUT_U64(db, "clock_offset", (uint64_t)s.clock_offset);
        if (st == FV_OK) st = meta_put(db, "enroll_sk", SQLITE_NULL, NULL, 0, 0);
        st = fv__tx_end(db, opened, st);
        /* from now on the server's policy applies to this store */
        if (st == FV_OK) st = fv__acl_load(db);
    }
    free(r.body);
    fv__membuf_free(&body);
    session_free(&s);
    return st;
}

/* ---- erasing a revoked store ---------------------------------------------- */

static fv_status wipe(fv_db *db)
{
    /* Crypto-erase first: with both header slots overwritten the wrapped
     * key is gone, so every page is unreadable even if a file survives. */
    unsigned char junk[FV_VAULT_SLOT_SIZE];
    int bad = 0;
    for (int slot = 0; slot < 2; slot++) {
        randombytes_buf(junk, sizeof junk);
        if (fv__vault_header_write_slot(db->path, slot, junk) != SQLITE_OK) bad = 1;
    }
    size_t n = strlen(db->path) + 8;
    char *wal = malloc(n);
    if (wal != NULL) {
        snprintf(wal, n, "%s-wal", db->path);
        if (fv_platform_remove(wal) != 0) bad = 1;
        free(wal);
    }
    if (fv_platform_remove(db->path) != 0) bad = 1;
    db->wiped = 1;
    return fv__err(db, FV_EACCES,
                   "this device was revoked by the server: its store has been erased%s",
                   bad ? " (its key is destroyed; a file could not be removed)" : "");
}

/* ---- push ----------------------------------------------------------------- */

typedef struct push_state {
    uint64_t acked_seq, pending_seq, pending_to;
    unsigned char acked_hash[32];
} push_state;

static fv_status load_push(fv_db *db, push_state *p)
{
    memset(p, 0, sizeof *p);
    size_t n;
    int found;
    fv_status st = meta_u64(db, "push_seq", &p->acked_seq);
    if (st == FV_OK) st = meta_u64(db, "pending_seq", &p->pending_seq);
    if (st == FV_OK) st = meta_u64(db, "pending_to", &p->pending_to);
    if (st == FV_OK) st = meta_get(db, "push_hash", p->acked_hash, 32, &n, &found);
    return st;
}

/* Choose the next batch (the first n outbox entries) and record it. */
static fv_status plan_batch(fv_db *db, push_state *p, uint32_t n, int *have)
{
    *have = 0;
    /* The first n entries, extended to the end of the local write the last
     * one belongs to (entries of one write share its hlc and are
     * consecutive, at most a record's fields): a record and its fields
     * always travel in one batch.  Seq ranges only: no scan of the outbox. */
    sqlite3_stmt *s = fv__stmt(db, "SELECT seq, hlc FROM fv_outbox ORDER BY seq LIMIT 1 OFFSET ?1");
    if (s == NULL) return db->err;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)n - 1);
    int rc = sqlite3_step(s);
    sqlite3_int64 nth = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_int64 hlc = rc == SQLITE_ROW ? sqlite3_column_int64(s, 1) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fv__sqlerr(db, rc, "reading the outbox");
    s = fv__stmt(db, rc == SQLITE_ROW
                         ? "SELECT max(seq) FROM fv_outbox WHERE seq BETWEEN ?1 AND ?1 + 256"
                           " AND hlc = ?2"
                         : "SELECT max(seq) FROM fv_outbox");
    if (s == NULL) return db->err;
    if (rc == SQLITE_ROW) {
        sqlite3_bind_int64(s, 1, nth);
        sqlite3_bind_int64(s, 2, hlc);
    }
    rc = sqlite3_step(s);
    uint64_t to = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return fv__sqlerr(db, rc, "reading the outbox");
    if (to == 0) return FV_OK;
    int opened;
    fv_status st = fv__tx_begin(db, &opened);
    if (st == FV_OK) st = PUT_U64(db, "pending_seq", p->acked_seq + 1);
    if (st == FV_OK) st = PUT_U64(db, "pending_to", to);
    st = fv__tx_end(db, opened, st);
    if (st == FV_OK) {
        p->pending_seq = p->acked_seq + 1;
        p->pending_to = to;
        *have = 1;
    }
    return st;
}

static fv_status push_one(session *s, push_state *p, fv_sync_result *res, int *stopped)
{
    fv_db *db = s->db;
    fv__push_info hdr;
    memset(&hdr, 0, sizeof hdr);
    memcpy(hdr.device_id, db->device, 16);
    hdr.batch_seq = p->pending_seq;
    memcpy(hdr.prev_batch_hash, p->acked_hash, 32);
    export_src x;
    fv__membuf body;
    fv__membuf_init(&body, 0);
    fv_status st = fv__outbox_source_init(&x, db, 0, p->pending_to);
    uint64_t count = 0;
    char err[256] = "";
    if (st == FV_OK) {
        fv_status est = fv__wire_encode_push_request(&hdr, fv__export_next, &x, fv__membuf_write,
                                                     &body, &count, err, sizeof err);
        if (est != FV_OK) st = x.st != FV_OK ? x.st : fv__err(db, est, "encoding a batch: %s", err);
    }
    fv__outbox_source_done(&x);
    fv_http_response r;
    memset(&r, 0, sizeof r);
    if (st == FV_OK) st = post(s, "/v1/push", fv__membuf_bytes(&body), body.len, 1, &r, stopped);
    if (st == FV_OK && r.status == 403 && error_code(&r) == fieldvault_v1_ErrorCode_ERROR_CODE_REVOKED) {
        res->wiped = 1;
        st = wipe(db);
    } else if (st == FV_OK && r.status != 200) {
        char why[256];
        error_text(&r, why, sizeof why);
        st = fv__err(db, r.status == 401 ? FV_EACCES : FV_EPROTO,
                     "the server refused batch %llu: %s", (unsigned long long)p->pending_seq, why);
    }
    fv__push_response pr;
    memset(&pr, 0, sizeof pr);
    pr.rejections = calloc(FV_WIRE_REJECTIONS_MAX, sizeof *pr.rejections);
    pr.rejections_cap = FV_WIRE_REJECTIONS_MAX;
    if (st == FV_OK && pr.rejections == NULL) st = fv__err(db, FV_ENOMEM, "out of memory");
    if (st == FV_OK && fv__wire_decode_push_response(r.body, r.body_len, &pr, err, sizeof err) != FV_OK)
        st = fv__err(db, FV_EPROTO, "the server's push answer is malformed: %s", err);
    if (st == FV_OK && pr.nrejections > 0) {
        /* changes the user may not make: refused alone, the rest applied;
         * they stay in this store but never reach the others */
        res->rejected += pr.nrejections;
        snprintf(s->rejection, sizeof s->rejection, "%s", pr.rejections[0].message);
    }
    if (st == FV_OK && pr.batch_seq != p->pending_seq)
        st = fv__err(db, FV_EPROTO, "the server acknowledged batch %llu, not %llu",
                     (unsigned long long)pr.batch_seq, (unsigned long long)p->pending_seq);
    if (st == FV_OK) {
        unsigned char h[32];
        crypto_generichash(h, sizeof h, fv__membuf_bytes(&body), body.len, NULL, 0);
        int opened;
        st = fv__tx_begin(db, &opened);
        sqlite3_stmt *d = st == FV_OK ? fv__stmt(db, "DELETE FROM fv_outbox WHERE seq <= ?1") : NULL;
        if (st == FV_OK && d == NULL) st = db->err;
        if (st == FV_OK) {
            sqlite3_bind_int64(d, 1, (sqlite3_int64)p->pending_to);
            int rc = sqlite3_step(d);
            sqlite3_reset(d);
            if (rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "clearing the outbox");
        }
        if (st == FV_OK) st = PUT_U64(db, "push_seq", p->pending_seq);
        if (st == FV_OK) st = PUT_BLOB(db, "push_hash", h, 32);
        if (st == FV_OK) st = PUT_U64(db, "pending_seq", 0);
        if (st == FV_OK) st = PUT_U64(db, "pending_to", 0);
        st = fv__tx_end(db, opened, st);
        if (st == FV_OK) {
            p->acked_seq = p->pending_seq;
            memcpy(p->acked_hash, h, 32);
            p->pending_seq = p->pending_to = 0;
            res->pushed += count;
            s->prog.pushed += count;
        }
    }
    free(pr.rejections);
    free(r.body);
    fv__membuf_free(&body);
    return st;
}

/* ---- pull ----------------------------------------------------------------- */

typedef struct pull_apply {
    fv__membuf in;
    fv__pull_info info;
} pull_apply;

static fv_status decode_pull(void *dctx, fv__change_sink_fn sink, void *sctx, char *err,
                             size_t errcap)
{
    pull_apply *pa = dctx;
    return fv__wire_decode_pull_response(fv__membuf_read, &pa->in, sink, sctx, &pa->info, err,
                                         errcap);
}

static fv_status save_cursor(fv_db *db, void *ctx)
{
    pull_apply *pa = ctx;
    return PUT_U64(db, "pull_cursor", pa->info.cursor);
}

static fv_status pull_one(session *s, fv_sync_result *res, int *more, int *stopped)
{
    fv_db *db = s->db;
    uint64_t cursor;
    fv_status st = meta_u64(db, "pull_cursor", &cursor);
    fieldvault_v1_PullRequest rq = fieldvault_v1_PullRequest_init_zero;
    memcpy(rq.device_id, db->device, 16);
    rq.cursor = cursor;
    rq.max_changes = PULL_MAX;
    fv__membuf body;
    fv__membuf_init(&body, 4096);
    char err[256] = "";
    if (st == FV_OK && fv__wire_encode_pull_request(&rq, fv__membuf_write, &body, err, sizeof err) != FV_OK)
        st = fv__err(db, FV_EINTERNAL, "encoding a pull: %s", err);
    fv_http_response r;
    memset(&r, 0, sizeof r);
    if (st == FV_OK) st = post(s, "/v1/pull", fv__membuf_bytes(&body), body.len, 1, &r, stopped);
    if (st == FV_OK && r.status == 403 && error_code(&r) == fieldvault_v1_ErrorCode_ERROR_CODE_REVOKED) {
        res->wiped = 1;
        st = wipe(db);
    } else if (st == FV_OK && r.status != 200) {
        char why[256];
        error_text(&r, why, sizeof why);
        st = fv__err(db, r.status == 401 ? FV_EACCES : FV_EPROTO, "the server refused a pull: %s",
                     why);
    }
    if (st == FV_OK) {
        pull_apply pa;
        memset(&pa, 0, sizeof pa);
        fv__membuf_init_read(&pa.in, r.body, r.body_len);
        fv_apply_stats stats;
        memset(&stats, 0, sizeof stats);
        stats.size = sizeof stats;
        db->observe_offset = s->clock_offset;
        st = fv__apply_with(db, decode_pull, &pa, &stats, save_cursor, &pa);
        db->observe_offset = 0;
        fv__membuf_free(&pa.in);
        if (st == FV_OK && pa.info.cursor < cursor)
            st = fv__err(db, FV_EPROTO, "the server moved the cursor backwards");
        if (st == FV_OK) {
            res->pulled += stats.received;
            res->conflicts += stats.conflicts;
            s->prog.pulled += stats.received;
            *more = pa.info.more;
        }
    }
    free(r.body);
    fv__membuf_free(&body);
    return st;
}

/* ---- field keys ----------------------------------------------------------- */

/* Install the grants of one KeysResponse, pin the admin key, open what the
 * new keys open (stored values, plaintext outbox entries not yet in a
 * batch): one transaction. */
static fv_status install_grants(session *s, const fieldvault_v1_KeysResponse *kr,
                                uint64_t after_batch, uint64_t *after)
{
    fv_db *db = s->db;
    {
        int opened;
        fv_status st = fv__tx_begin(db, &opened);
        if (st == FV_OK && kr->has_policy) st = adopt_policy(db, &kr->policy);
        if (st == FV_OK) st = adopt_role(db, kr->role, kr->team);
        if ((st = fv__tx_end(db, opened, st)) != FV_OK) return st;
    }
    if (kr->admin_public_key.size == 0) return FV_OK;
    unsigned char pinned[32];
    size_t n;
    int found;
    fv_status st = meta_get(db, "admin_pk", pinned, sizeof pinned, &n, &found);
    if (st != FV_OK) return st;
    if (found && (n != 32 || memcmp(pinned, kr->admin_public_key.bytes, 32) != 0)) {
        /* not a reason to hold back the device's own work: the sync goes
         * on, the refusal is its last error */
        s->keys_refused = 1;
        snprintf(s->key_problem, sizeof s->key_problem,
                 "the server presents another admin key than the one this device trusts: its "
                 "field-key grants are refused (re-enrol the device if the admin key was "
                 "replaced on purpose)");
        return FV_OK;
    }
    int opened;
    st = fv__tx_begin(db, &opened);
    if (st == FV_OK && !found) st = PUT_BLOB(db, "admin_pk", kr->admin_public_key.bytes, 32);
    for (pb_size_t i = 0; st == FV_OK && i < kr->grants_count; i++) {
        const fieldvault_v1_Grant *g = &kr->grants[i];
        if (g->seq <= *after) {
            st = fv__err(db, FV_EPROTO, "the server sent a grant out of order");
            break;
        }
        st = fv__fkey_install(db, kr->admin_public_key.bytes, s->sk, g->team, (int)g->field_class,
                              g->version, g->sealed_key, g->signature, g->seq);
        if (st == FV_EPROTO) { /* a forged or damaged grant: skipped, reported, the rest go on */
            if (s->key_problem[0] == '\0')
                snprintf(s->key_problem, sizeof s->key_problem, "%s", fv_errmsg(db));
            fv__reset(db);
            st = FV_OK;
        }
        if (st == FV_OK) *after = g->seq;
    }
    if (st == FV_OK && kr->grants_count > 0) st = PUT_U64(db, "grant_seq", *after);
    if (st == FV_OK && kr->grants_count > 0) st = fv__fkey_unseal_stored(db);
    if (st == FV_OK && kr->grants_count > 0) st = fv__fkey_seal_outbox(db, after_batch);
    return fv__tx_end(db, opened, st);
}

/* Fetch the field-key grants made for this device since the last ones. */
static fv_status fetch_keys(session *s, fv_sync_result *res, uint64_t after_batch, int *stopped)
{
    fv_db *db = s->db;
    uint64_t after;
    fv_status st = meta_u64(db, "grant_seq", &after);
    static _Thread_local fieldvault_v1_KeysResponse kr; /* 32 grants: ~7 KiB */
    for (int more = 1; st == FV_OK && more;) {
        fieldvault_v1_KeysRequest rq = fieldvault_v1_KeysRequest_init_zero;
        memcpy(rq.device_id, db->device, 16);
        rq.after = after;
        fv__membuf body;
        fv__membuf_init(&body, 256);
        char err[256] = "";
        if (fv__wire_encode_keys_request(&rq, fv__membuf_write, &body, err, sizeof err) != FV_OK)
            st = fv__err(db, FV_EINTERNAL, "encoding a keys request: %s", err);
        fv_http_response r;
        memset(&r, 0, sizeof r);
        if (st == FV_OK) st = post(s, "/v1/keys", fv__membuf_bytes(&body), body.len, 1, &r, stopped);
        fv__membuf_free(&body);
        if (st == FV_OK && r.status == 403 &&
            error_code(&r) == fieldvault_v1_ErrorCode_ERROR_CODE_REVOKED) {
            res->wiped = 1;
            st = wipe(db);
        } else if (st == FV_OK && r.status == 404) { /* a server without field keys */
            free(r.body);
            break;
        } else if (st == FV_OK && r.status != 200) {
            char why[256];
            error_text(&r, why, sizeof why);
            st = fv__err(db, r.status == 401 ? FV_EACCES : FV_EPROTO,
                         "the server refused the field-key request: %s", why);
        }
        if (st == FV_OK &&
            fv__wire_decode_keys_response(r.body, r.body_len, &kr, err, sizeof err) != FV_OK)
            st = fv__err(db, FV_EPROTO, "%s", err);
        free(r.body);
        if (st == FV_OK) st = install_grants(s, &kr, after_batch, &after);
        more = st == FV_OK && kr.more && kr.grants_count > 0 && !s->keys_refused;
        if (more && out_of_time(s)) {
            *stopped = 1;
            break;
        }
    }
    sodium_memzero(&kr, sizeof kr);
    return st;
}

/* ---- the loop ------------------------------------------------------------- */

static fv_status outbox_count(fv_db *db, uint64_t *n)
{
    sqlite3_stmt *s = fv__stmt(db, "SELECT count(*) FROM fv_outbox");
    if (s == NULL) return db->err;
    int rc = sqlite3_step(s);
    *n = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? FV_OK : fv__sqlerr(db, rc, "counting the outbox");
}

static void report(session *s)
{
    if (s->progress) s->progress(s->progress_ctx, &s->prog);
}

fv_status fv_sync(fv_db *db, const fv_sync_config *cfg, fv_sync_result *res)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (cfg != NULL && cfg->size < sizeof *cfg)
        return fv__err(db, FV_EMISUSE, "fv_sync: set cfg.size to sizeof(fv_sync_config)");
    if (res != NULL && res->size < sizeof *res)
        return fv__err(db, FV_EMISUSE, "fv_sync: set res.size to sizeof(fv_sync_result)");
    fv_sync_result local;
    if (res == NULL) {
        res = &local;
        res->size = sizeof local;
    }
    size_t rsize = res->size;
    memset(res, 0, sizeof *res);
    res->size = rsize;
    if (db->wiped) return fv__err(db, FV_EACCES, "this store was erased");
    if (db->in_batch) return fv__err(db, FV_EMISUSE, "finish the batch first");
    atomic_store(&db->cancel, 0);
    session s;
    fv_status st = session_load(&s, db, cfg);
    if (st == FV_OK) {
        int64_t now = fv_platform_now_ms();
        s.deadline = cfg && cfg->max_ms > 0 ? now + cfg->max_ms : 0;
        s.progress = cfg ? cfg->progress : NULL;
        s.progress_ctx = cfg ? cfg->progress_ctx : NULL;
    }
    uint32_t batch = cfg && cfg->batch_changes ? cfg->batch_changes : BATCH_DEFAULT;
    push_state p;
    if (st == FV_OK) st = load_push(db, &p);
    int more = 1, stopped = 0;
    /* keys first: a value written before its key arrived is sealed before
     * its first push, and pulled values open as they arrive */
    if (st == FV_OK) st = fetch_keys(&s, res, p.pending_seq != 0 ? p.pending_to : 0, &stopped);
    while (st == FV_OK && !stopped) {
        int have = p.pending_seq != 0;
        if (!have) st = plan_batch(db, &p, batch, &have);
        if (st != FV_OK) break;
        if (have) {
            if (out_of_time(&s)) {
                stopped = 1;
                break;
            }
            st = push_one(&s, &p, res, &stopped);
            report(&s);
            if (st != FV_OK) break;
        }
        if (more || !have) {
            if (out_of_time(&s)) {
                stopped = 1;
                break;
            }
            st = pull_one(&s, res, &more, &stopped);
            report(&s);
            if (st != FV_OK) break;
        }
        uint64_t pending;
        if ((st = outbox_count(db, &pending)) != FV_OK) break;
        if (pending == 0 && !more) break; /* drained */
    }
    if (stopped && st == FV_ENET) st = FV_OK; /* the time box ended during a retry */
    res->stopped = stopped;
    if (st == FV_OK && !stopped) res->drained = 1;
    if (!db->wiped) {
        fv_status keep = st;
        char msg[FV_ERRMSG_MAX];
        if (st == FV_OK && res->rejected > 0)
            snprintf(msg, sizeof msg, "the server refused %llu change(s) this user may not make, "
                     "e.g. %s", (unsigned long long)res->rejected, s.rejection);
        else if (st == FV_OK && s.key_problem[0] != '\0')
            snprintf(msg, sizeof msg, "field keys: %s", s.key_problem);
        else
            snprintf(msg, sizeof msg, "%s", st == FV_OK ? "" : fv_errmsg(db));
        int opened;
        if (fv__tx_begin(db, &opened) == FV_OK) {
            fv_status w = PUT_TEXT(db, "last_error", msg);
            if (w == FV_OK && res->drained) w = PUT_U64(db, "last_sync_ms", fv_platform_now_ms());
            if (w == FV_OK) w = PUT_U64(db, "clock_offset", (uint64_t)s.clock_offset);
            (void)fv__tx_end(db, opened, w);
        }
        if (keep != FV_OK) (void)fv__err(db, keep, "%s", msg);
        st = keep;
    }
    session_free(&s);
    return st;
}

fv_status fv_sync_cancel(fv_db *db)
{
    if (db == NULL) return FV_EMISUSE;
    atomic_store(&db->cancel, 1);
    return FV_OK;
}

fv_status fv_sync_status_get(fv_db *db, fv_sync_status *out)
{
    if (db == NULL || out == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (out->size < sizeof *out) return fv__err(db, FV_EMISUSE, "set fv_sync_status.size");
    size_t size = out->size;
    memset(out, 0, sizeof *out);
    out->size = size;
    if (db->wiped) return fv__err(db, FV_EACCES, "this store was erased");
    fv_status st = fv__meta_text(db, "server", out->server, sizeof out->server);
    if (st == FV_OK) st = fv__meta_text(db, "user", out->user, sizeof out->user);
    if (st == FV_OK) st = fv__meta_text(db, "role", out->role, sizeof out->role);
    if (st == FV_OK) st = fv__meta_text(db, "team", out->team, sizeof out->team);
    if (st == FV_OK) st = fv__meta_text(db, "last_error", out->last_error, sizeof out->last_error);
    uint64_t v = 0;
    if (st == FV_OK) st = meta_u64(db, "pull_cursor", &out->pull_cursor);
    if (st == FV_OK) st = meta_u64(db, "last_sync_ms", &v);
    out->last_sync_ms = (int64_t)v;
    if (st == FV_OK) st = outbox_count(db, &out->pending_changes);
    out->enrolled = out->server[0] != '\0';
    out->policy_version = db->enrolled ? db->policy.version : 0;
    fv__hex(db->device, 16, out->device_id);
    return st;
}
