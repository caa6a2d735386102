/*
 * fuzz_fvd.c - fvd's request handling in-process, as server/http.c drives
 * it once a request is in: the signature headers through fvd_auth_precheck,
 * the body through fvd_auth_verify, then the endpoint handler (fvd_enroll,
 * fvd_push, fvd_pull) against a real SQLite store of record in a scratch
 * directory.  The store holds two enrolled devices whose keys the harness
 * knows (one of them revoked) and an unused enrolment code that the seed
 * corpus carries, so signed requests and enrolments get past the checks.
 *
 * Input: byte 0 = route (bits 0-1: enroll, push, pull) and mode (bits 2-3):
 *   0  signed by the harness with the active device's key: correct
 *      headers, so the body reaches the handler;
 *   1  the same with the revoked device;
 *   2  raw headers from the input: four NUL-terminated strings (device,
 *      timestamp, nonce, signature; a string "\x01" means absent);
 *   3  signed, then one header byte flipped (header u8 % 4, position u8,
 *      xor u8).
 * The rest is the body.  "Now" is fixed (FZ_NOW_MS) so that a timestamp in
 * the input can fall in the window.
 *
 * Properties beyond "no crash": every reply is decided (status set); a 200
 * carries a body the device's decoder accepts as the endpoint's response
 * (so fvd never answers what a client cannot read); a refusal is one of
 * the statuses docs/protocol.md lists, never a 500 (the store is healthy:
 * a 500 here means hostile input reached an internal error), and its
 * message encodes as a protobuf Error (valid UTF-8, bounded).
 *
 * Exactly-once state: after an accepted push the device's batch chain is
 * set back to "nothing applied" so the seed pushes (batch 1) keep applying;
 * the store is rebuilt after a successful enrolment (the code is used up)
 * and every RESET_EVERY inputs (the nonce cache and the log grow).
 * FV_FUZZ_TRACE=1 prints each reply's status (for looking after the corpus).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "auth.h"
#include "fuzz_common.h"
#include "fvd.h"
#include "wire.h"

#define RESET_EVERY 4000
#define HEADER_MAX 200

/* The seed corpus carries this code (gen_corpus.c). */
#define FREE_CODE "FUZZ-CODE-0000-0000-0001"

static fvd_store *store;
static char data_dir[512];
static unsigned char sk[2][64], pk[2][32];
static unsigned char dev_id[2][FV_DEVICE_LEN];
static uint64_t nonce_counter;
static unsigned long runs_since_reset;
static fieldvault_v1_Rejection *rejections; /* FV_WIRE_REJECTIONS_MAX */
static int trace; /* FV_FUZZ_TRACE: one line per reply on fd 2 */

static void store_reset(void);

static void seed_key(int i, unsigned char *pub, unsigned char *sec)
{
    unsigned char seed[32];
    memset(seed, 0x40 + i, sizeof seed);
    crypto_sign_seed_keypair(pub, sec, seed);
}

static void add_user(const char *name, const char *role, const char *code)
{
    fvd_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", name);
    snprintf(u.role, sizeof u.role, "%s", role);
    snprintf(u.team, sizeof u.team, "north");
    unsigned char h[32];
    char err[256];
    if (fvd_code_hash(code, h) != 0 || store->ops->add_user(store, &u, h, err, sizeof err) != FV_OK)
        abort();
}

static void enroll_device(int i, const char *code)
{
    fieldvault_v1_EnrollRequest q = fieldvault_v1_EnrollRequest_init_zero;
    snprintf(q.code, sizeof q.code, "%s", code);
    memcpy(q.device_id, dev_id[i], FV_DEVICE_LEN);
    memcpy(q.public_key, pk[i], 32);
    snprintf(q.device_name, sizeof q.device_name, "fuzz-%d", i);
    fv__membuf b;
    fv__membuf_init(&b, 4096);
    char err[256];
    if (fv__wire_encode_enroll_request(&q, fv__membuf_write, &b, err, sizeof err) != FV_OK) abort();
    fvd_reply r;
    fvd_reply_init(&r);
    fvd_enroll(store, fv__membuf_bytes(&b), b.len, FZ_NOW_MS, &r);
    if (r.status != 200) abort();
    fvd_reply_free(&r);
    fv__membuf_free(&b);
}

static void store_reset(void)
{
    if (store != NULL) store->ops->close(store);
    store = NULL;
    const char *names[] = {"fvd.db", "fvd.db-wal", "fvd.db-shm", "fvd.db-journal"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", data_dir, names[i]);
        fz_remove(p);
    }
    char err[256];
    if (fvd_store_open_sqlite(data_dir, &store, err, sizeof err) != FV_OK) abort();
    /* dev0 may write every row (so seed pushes apply); the others are reps */
    add_user("dev0", "director", "FUZZ-CODE-0000-0000-0A00");
    add_user("dev1", "rep", "FUZZ-CODE-0000-0000-0A01");
    add_user("newbie", "rep", FREE_CODE);
    enroll_device(0, "FUZZ-CODE-0000-0000-0A00");
    enroll_device(1, "FUZZ-CODE-0000-0000-0A01");
    if (store->ops->revoke_device(store, dev_id[1], err, sizeof err) != FV_OK) abort();
    runs_since_reset = 0;
}

/* After an accepted push: the device's chain back to "nothing applied". */
static void chain_reset(void)
{
    char err[256];
    fvd_device d;
    unsigned char zero[32] = {0};
    if (store->ops->push_begin(store, dev_id[0], &d, err, sizeof err) != FV_OK ||
        store->ops->set_batch(store, dev_id[0], 0, zero, err, sizeof err) != FV_OK ||
        store->ops->push_end(store, 1, err, sizeof err) != FV_OK)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    for (int i = 0; i < 2; i++) {
        seed_key(i, pk[i], sk[i]);
        fz_device_id(i, dev_id[i]);
    }
    trace = getenv("FV_FUZZ_TRACE") != NULL;
    rejections = calloc(FV_WIRE_REJECTIONS_MAX, sizeof *rejections);
    if (rejections == NULL) abort();
    fz_path(data_dir, sizeof data_dir, "fvd");
    mkdir(data_dir, 0700);
    store_reset();
    return 0;
}

/* A NUL-terminated string of at most HEADER_MAX bytes from the input (the
 * rest of an over-long one is skipped), or NULL for "\x01". */
static const char *take_header(fz_in *in, char *buf)
{
    size_t n = 0;
    while (in->n > 0) {
        uint8_t c = fz_u8(in);
        if (c == 0) break;
        if (n < HEADER_MAX) buf[n++] = (char)c;
    }
    buf[n] = '\0';
    return n == 1 && buf[0] == 1 ? NULL : buf;
}

static int count_sink(void *ctx, const fv__change *c, char *err, size_t errcap)
{
    (void)c;
    (void)err;
    (void)errcap;
    (*(size_t *)ctx)++;
    return 0;
}

static void check_reply(int route, fvd_reply *r)
{
    char err[256] = "";
    if (trace) {
        char line[512];
        int k = snprintf(line, sizeof line, "fuzz_fvd: route %d -> %u %s\n", route, r->status,
                         r->message);
        if (k > 0 && write(2, line, (size_t)k) < 0) abort();
    }
    FZ_CHECK(r->status != 0, "route %d: no answer", route);
    if (r->status == 200) {
        const unsigned char *b = fv__membuf_bytes(&r->body);
        size_t n = r->body.len;
        fv_status st;
        if (route == 0) {
            fieldvault_v1_EnrollResponse m;
            st = fv__wire_decode_enroll_response(b, n, &m, err, sizeof err);
        } else if (route == 1) {
            /* as sync/client.c decodes it */
            fv__push_response m;
            memset(&m, 0, sizeof m);
            m.rejections = rejections;
            m.rejections_cap = FV_WIRE_REJECTIONS_MAX;
            st = fv__wire_decode_push_response(b, n, &m, err, sizeof err);
        } else {
            fv__membuf in;
            fv__membuf_init_read(&in, b, n);
            size_t count = 0;
            fv__pull_info info;
            st = fv__wire_decode_pull_response(fv__membuf_read, &in, count_sink, &count, &info,
                                               err, sizeof err);
            fv__membuf_free(&in);
        }
        FZ_CHECK(st == FV_OK, "route %d: fvd answered 200 with a body its clients refuse: %s",
                 route, err);
        return;
    }
    static const unsigned ok[] = {400, 401, 403, 409, 413, 503};
    int listed = 0;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) listed |= r->status == ok[i];
    FZ_CHECK(listed, "route %d: status %u (%s)", route, r->status, r->message);
    fieldvault_v1_Error e = fieldvault_v1_Error_init_zero;
    e.code = r->code;
    snprintf(e.message, sizeof e.message, "%s", r->message);
    fv__membuf m;
    fv__membuf_init(&m, FV_WIRE_MESSAGE_MAX_BYTES);
    FZ_CHECK(fv__wire_encode_error(&e, fv__membuf_write, &m, err, sizeof err) == FV_OK,
             "route %d: the refusal cannot be sent as an Error: %s", route, err);
    fv__membuf_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (++runs_since_reset > RESET_EVERY) store_reset();
    fz_in in = {data, size};
    uint8_t b0 = fz_u8(&in);
    int route = (b0 & 3) % 3;
    int mode = (b0 >> 2) & 3;
    static const char *const paths[] = {"/v1/enroll", "/v1/push", "/v1/pull"};

    char hbuf[4][HEADER_MAX + 1];
    const char *hv[4] = {NULL, NULL, NULL, NULL};
    uint8_t flip_which = 0, flip_pos = 0, flip_xor = 0;
    if (mode == 2) {
        for (int i = 0; i < 4; i++) hv[i] = take_header(&in, hbuf[i]);
    } else if (mode == 3) {
        flip_which = fz_u8(&in) & 3;
        flip_pos = fz_u8(&in);
        flip_xor = fz_u8(&in) | 1;
    }
    /* http.c hands a handler no buffer at all for an empty body */
    const unsigned char *body = in.n > 0 ? in.p : NULL;
    size_t len = in.n;
    size_t max = route == 1 ? FVD_PUSH_BODY_MAX : FVD_SMALL_BODY_MAX;
    if (len > max) return 0; /* http.c answers 413 before the handler */

    fvd_reply r;
    fvd_reply_init(&r);
    if (route == 0) {
        fvd_enroll(store, body, len, FZ_NOW_MS, &r);
    } else {
        if (mode != 2) {
            int d = mode == 1;
            unsigned char nonce[FV_SIGN_NONCE_LEN] = {0};
            uint64_t c = ++nonce_counter;
            memcpy(nonce, &c, sizeof c);
            fvd_hex(dev_id[d], FV_DEVICE_LEN, hbuf[0]);
            snprintf(hbuf[1], sizeof hbuf[1], "%lld", (long long)FZ_NOW_MS);
            fvd_hex(nonce, sizeof nonce, hbuf[2]);
            if (fv__sign_request(sk[d], "POST", paths[route], FZ_NOW_MS, nonce, body, len,
                                 hbuf[3]) != FV_OK)
                abort();
            for (int i = 0; i < 4; i++) hv[i] = hbuf[i];
            if (mode == 3) {
                size_t hl = strlen(hbuf[flip_which]);
                if (flip_pos < hl) hbuf[flip_which][flip_pos] ^= (char)flip_xor;
            }
        }
        fvd_auth_headers h = {hv[0], hv[1], hv[2], hv[3]};
        fvd_auth a;
        fvd_device dev;
        if (fvd_auth_precheck(&h, FZ_NOW_MS, &a, &r) == 0 &&
            fvd_auth_verify(store, &a, "POST", paths[route], body, len, FZ_NOW_MS, &dev, &r) == 0) {
            if (route == 1) {
                unsigned char hash[32];
                static const unsigned char none[1];
                crypto_generichash(hash, sizeof hash, body != NULL ? body : none, len, NULL, 0);
                fvd_push(store, &dev, body, len, hash, FZ_NOW_MS, &r);
            } else {
                fvd_pull(store, &dev, body, len, &r);
            }
        }
    }
    check_reply(route, &r);
    int reset_store = route == 0 && r.status == 200;
    if (route == 1 && r.status == 200) chain_reset();
    fvd_reply_free(&r);
    if (reset_store) store_reset();
    return 0;
}
