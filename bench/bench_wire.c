/*
 * bench_wire.c - item 3: the wire format.  100,000 realistic changes (the
 * field changes that recording visits produces - twelve per visit, text of
 * the sizes reps type, coordinates as reals - plus customer edits carrying
 * a sealed confidential value) encoded and decoded with fieldvault's nanopb
 * codec (sync/wire.c, a ChangeSet) and as JSON with cJSON carrying the
 * same data the way a JSON sync protocol would: ids as UUID text, device
 * ids as hex, 64-bit clocks as decimal strings (a JSON number loses
 * precision past 2^53), sealed bytes as base64.
 *
 * Both decoders fill the same fv__change and run the same validation
 * (fv__wire_check_change; the nanopb decoder does it itself), and hand it
 * to the same sink.  Sizes are reported raw and compressed with zstd
 * (level 3, the library's default).
 */
#include "bench.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>
#include <zstd.h>

#include "visitgen.h"
#include "wire.h"

typedef struct wchange {
    const char *table, *field;
    unsigned char row_id[16];
    uint64_t hlc, base_hlc, seq;
    fv__val_kind kind;
    double real;
    const unsigned char *data; /* text (NUL-terminated) or sealed bytes */
    size_t len;
} wchange;

typedef struct dataset {
    wchange *c;
    size_t n;
    vg_visit *visits;
    unsigned char (*sealed)[48];
    char (*ids)[37];
    unsigned char device[16];
} dataset;

static const char *const visit_fields[] = {"customer_id", "at", "method", "participants",
                                           "summary", "feedback", "agreement", "next_action",
                                           "next_action_owner", "next_action_due", "lat", "lon"};

static int make_dataset(dataset *d, size_t n)
{
    memset(d, 0, sizeof *d);
    size_t nvis = n / 10 + 2; /* 9 of 10 units give 12 changes, 1 gives 2 */
    d->c = calloc(n, sizeof *d->c);
    d->visits = calloc(nvis, sizeof *d->visits);
    d->sealed = calloc(nvis, sizeof *d->sealed);
    d->ids = calloc(nvis, sizeof *d->ids);
    if (!d->c || !d->visits || !d->sealed || !d->ids) return -1;
    randombytes_buf(d->device, sizeof d->device);
    vg_uuid g = {0, 0};
    unsigned char customer[16];
    vg_uuid7(&g, customer);
    uint64_t hlc = (uint64_t)vg_now_ms() << 16;
    size_t k = 0;
    for (size_t v = 0; k < n; v++) {
        vg_visit *vis = &d->visits[v];
        vg_visit_make(g_cfg.seed, v, vis);
        unsigned char row[16];
        vg_uuid7(&g, row);
        if (v % 10 == 9) { /* a customer edit: stage and the sealed budget */
            randombytes_buf(d->sealed[v], sizeof d->sealed[v]);
            const char *fields[2] = {"stage", "budget"};
            for (int f = 0; f < 2 && k < n; f++, k++) {
                wchange *c = &d->c[k];
                c->table = "customer";
                c->field = fields[f];
                memcpy(c->row_id, customer, 16);
                c->hlc = ++hlc;
                c->base_hlc = hlc - 1000;
                c->seq = k + 1;
                c->kind = f == 0 ? FV__VAL_TEXT : FV__VAL_SEALED;
                c->data = f == 0 ? (const unsigned char *)"negotiation" : d->sealed[v];
                c->len = f == 0 ? strlen("negotiation") : sizeof d->sealed[v];
            }
            continue;
        }
        vg_uuid_text(customer, d->ids[v]);
        const char *vals[10] = {d->ids[v],          vis->at,          vis->method,
                                vis->participants,  vis->summary,     vis->feedback,
                                vis->agreement,     vis->next_action, vis->next_action_owner,
                                vis->next_action_due};
        ++hlc;
        for (int f = 0; f < 12 && k < n; f++, k++) {
            wchange *c = &d->c[k];
            c->table = "visit";
            c->field = visit_fields[f];
            memcpy(c->row_id, row, 16);
            c->hlc = hlc;
            c->seq = k + 1;
            if (f < 10) {
                c->kind = FV__VAL_TEXT;
                c->data = (const unsigned char *)vals[f];
                c->len = strlen(vals[f]);
            } else {
                c->kind = FV__VAL_REAL;
                c->real = f == 10 ? vis->lat : vis->lon;
            }
        }
    }
    d->n = n;
    return 0;
}

static void free_dataset(dataset *d)
{
    free(d->c);
    free(d->visits);
    free(d->sealed);
    free(d->ids);
}

static void fill(const dataset *d, const wchange *w, fv__change *out)
{
    snprintf(out->table, sizeof out->table, "%s", w->table);
    snprintf(out->field, sizeof out->field, "%s", w->field);
    memcpy(out->row_id, w->row_id, 16);
    memcpy(out->device, d->device, 16);
    out->hlc = w->hlc;
    out->base_hlc = w->base_hlc;
    out->device_seq = w->seq;
    out->kind = w->kind;
    out->real = w->real;
    out->len = w->len;
    if (w->kind == FV__VAL_TEXT || w->kind == FV__VAL_SEALED) {
        memcpy(out->data, w->data, w->len);
        out->data[w->len] = '\0';
    }
}

/* ---- nanopb ---- */

typedef struct src_ctx {
    const dataset *d;
    size_t i;
} src_ctx;

static int source(void *ctx, fv__change *out)
{
    src_ctx *s = ctx;
    if (s->i == s->d->n) return 0;
    fill(s->d, &s->d->c[s->i++], out);
    return 1;
}

typedef struct sink_ctx {
    uint64_t n, sum;
} sink_ctx;

static int sink(void *ctx, const fv__change *c, char *err, size_t errcap)
{
    (void)err;
    (void)errcap;
    sink_ctx *s = ctx;
    s->n++;
    s->sum += c->hlc + c->len + (unsigned char)c->field[0];
    return 0;
}

/* ---- JSON ---- */

static char *json_encode(const dataset *d)
{
    char hex[33], b64[128], num[24], id[37];
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "version", 1);
    sodium_bin2hex(hex, sizeof hex, d->device, 16);
    cJSON_AddStringToObject(root, "origin_device", hex);
    cJSON *arr = cJSON_AddArrayToObject(root, "changes");
    fv__change *c = malloc(sizeof *c);
    for (size_t i = 0; c != NULL && i < d->n; i++) {
        fill(d, &d->c[i], c); /* the same starting point as the nanopb source */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "table", c->table);
        vg_uuid_text(c->row_id, id);
        cJSON_AddStringToObject(o, "row_id", id);
        cJSON_AddStringToObject(o, "field", c->field);
        cJSON *v = cJSON_AddObjectToObject(o, "value");
        if (c->kind == FV__VAL_TEXT) cJSON_AddStringToObject(v, "text", (const char *)c->data);
        else if (c->kind == FV__VAL_REAL) cJSON_AddNumberToObject(v, "real", c->real);
        else if (c->kind == FV__VAL_SEALED) {
            sodium_bin2base64(b64, sizeof b64, c->data, c->len, sodium_base64_VARIANT_ORIGINAL);
            cJSON_AddStringToObject(v, "sealed", b64);
        }
        snprintf(num, sizeof num, "%" PRIu64, c->hlc);
        cJSON_AddStringToObject(o, "hlc", num);
        snprintf(num, sizeof num, "%" PRIu64, c->base_hlc);
        cJSON_AddStringToObject(o, "base_hlc", num);
        sodium_bin2hex(hex, sizeof hex, c->device, 16);
        cJSON_AddStringToObject(o, "device_id", hex);
        cJSON_AddNumberToObject(o, "device_seq", (double)c->device_seq);
        cJSON_AddItemToArray(arr, o);
    }
    free(c);
    cJSON_AddNumberToObject(root, "count", (double)d->n);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

static int str_field(const cJSON *o, const char *name, char *out, size_t cap)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(s) || strlen(s->valuestring) >= cap) return -1;
    memcpy(out, s->valuestring, strlen(s->valuestring) + 1);
    return 0;
}

static int hex_field(const cJSON *o, const char *name, unsigned char *out, size_t len,
                     const char *ignore)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, name);
    size_t got = 0;
    if (!cJSON_IsString(s)) return -1;
    if (sodium_hex2bin(out, len, s->valuestring, strlen(s->valuestring), ignore, &got, NULL) != 0)
        return -1;
    return got == len ? 0 : -1;
}

static int u64_field(const cJSON *o, const char *name, uint64_t *out)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(s)) return -1;
    char *end = NULL;
    *out = strtoull(s->valuestring, &end, 10);
    return end != NULL && *end == '\0' && end != s->valuestring ? 0 : -1;
}

/* Parse, check and deliver every change; the number of changes, or -1. */
static long json_decode(const char *text, size_t len, sink_ctx *sk)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (root == NULL) return -1;
    long n = -1;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "changes");
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(root, "count");
    fv__change *c = malloc(sizeof *c);
    char err[128];
    if (c != NULL && cJSON_IsArray(arr) && cJSON_IsNumber(count)) {
        n = 0;
        const cJSON *o;
        cJSON_ArrayForEach(o, arr)
        {
            memset(c, 0, offsetof(fv__change, data));
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
            const cJSON *seq = cJSON_GetObjectItemCaseSensitive(o, "device_seq");
            if (str_field(o, "table", c->table, sizeof c->table) != 0 ||
                str_field(o, "field", c->field, sizeof c->field) != 0 ||
                hex_field(o, "row_id", c->row_id, 16, "-") != 0 ||
                hex_field(o, "device_id", c->device, 16, NULL) != 0 ||
                u64_field(o, "hlc", &c->hlc) != 0 || u64_field(o, "base_hlc", &c->base_hlc) != 0 ||
                !cJSON_IsNumber(seq) || !cJSON_IsObject(v)) {
                n = -1;
                break;
            }
            c->device_seq = (uint64_t)seq->valuedouble;
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "text");
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(v, "real");
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, "sealed");
            if (cJSON_IsString(t)) {
                size_t tl = strlen(t->valuestring);
                if (tl > FV_FIELD_MAX) { n = -1; break; }
                c->kind = FV__VAL_TEXT;
                c->len = tl;
                memcpy(c->data, t->valuestring, tl + 1);
            } else if (cJSON_IsNumber(r)) {
                c->kind = FV__VAL_REAL;
                c->real = r->valuedouble;
            } else if (cJSON_IsString(s)) {
                size_t got = 0;
                if (sodium_base642bin(c->data, FV_SEALED_MAX, s->valuestring, strlen(s->valuestring),
                                      NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
                    n = -1;
                    break;
                }
                c->kind = FV__VAL_SEALED;
                c->len = got;
            } else {
                c->kind = FV__VAL_NULL;
            }
            if (fv__wire_check_change(c, err, sizeof err) != FV_OK) {
                n = -1;
                break;
            }
            sink(sk, c, err, sizeof err);
            n++;
        }
        if (n >= 0 && (double)n != count->valuedouble) n = -1;
    }
    free(c);
    cJSON_Delete(root);
    return n;
}

static size_t zstd_size(const void *buf, size_t n)
{
    size_t cap = ZSTD_compressBound(n);
    void *out = malloc(cap);
    if (out == NULL) return 0;
    size_t z = ZSTD_compress(out, cap, buf, n, 3);
    free(out);
    return ZSTD_isError(z) ? 0 : z;
}

int bench_wire(void)
{
    size_t n = g_cfg.quick ? 20000 : 100000;
    int reps = g_cfg.reps;
    dataset d;
    if (make_dataset(&d, n) != 0) {
        free_dataset(&d);
        br_missing("3", "Wire format", "out of memory building the data set");
        return -1;
    }
    double pe[16], pd[16], je[16], jd[16], pr[16], jr[16], ratio[16];
    size_t pbytes = 0, jbytes = 0, pz = 0, jz = 0;
    int failed = 0;
    char err[256] = "";
    for (int rep = 0; rep < reps; rep++) {
        /* nanopb */
        fv__membuf mb;
        fv__membuf_init(&mb, 0);
        src_ctx sc = {&d, 0};
        uint64_t cnt = 0;
        double t0 = bench_now();
        fv_status st = fv__wire_encode_changeset(d.device, source, &sc, fv__membuf_write, &mb, &cnt,
                                                 err, sizeof err);
        pe[rep] = bench_now() - t0;
        sink_ctx sk = {0, 0};
        fv__membuf rb;
        fv__membuf_init_read(&rb, mb.data, mb.len);
        fv__changeset_info info;
        t0 = bench_now();
        if (st == FV_OK)
            st = fv__wire_decode_changeset(fv__membuf_read, &rb, sink, &sk, &info, err, sizeof err);
        pd[rep] = bench_now() - t0;
        if (st != FV_OK || sk.n != n) {
            bench_log("wire: nanopb failed: %s", err);
            failed = 1;
        }
        pbytes = mb.len;
        if (rep == 0) pz = zstd_size(mb.data, mb.len);
        fv__membuf_free(&rb);
        fv__membuf_free(&mb);
        /* JSON */
        t0 = bench_now();
        char *json = json_encode(&d);
        je[rep] = bench_now() - t0;
        sink_ctx sj = {0, 0};
        size_t jl = json ? strlen(json) : 0;
        t0 = bench_now();
        long got = json ? json_decode(json, jl, &sj) : -1;
        jd[rep] = bench_now() - t0;
        if (got != (long)n || sj.sum != sk.sum) {
            bench_log("wire: JSON round trip failed (%ld changes)", got);
            failed = 1;
        }
        jbytes = jl;
        if (rep == 0 && json) jz = zstd_size(json, jl);
        cJSON_free(json);
        pr[rep] = (double)n / (pe[rep] + pd[rep]);
        jr[rep] = (double)n / (je[rep] + jd[rep]);
        ratio[rep] = pr[rep] / jr[rep];
        bench_log("wire rep %d: nanopb %.0f changes/s (%.0f B/change), JSON %.0f changes/s (%.0f B/change)",
                  rep + 1, pr[rep], (double)pbytes / (double)n, jr[rep], (double)jbytes / (double)n);
    }
    free_dataset(&d);
    br_raw("wire_nanopb_changes_per_s", pr, (size_t)reps);
    br_raw("wire_json_changes_per_s", jr, (size_t)reps);
    double mpr = bench_median(pr, (size_t)reps), mjr = bench_median(jr, (size_t)reps);
    double mratio = bench_median(ratio, (size_t)reps);
    double mpe = bench_median(pe, (size_t)reps), mpd = bench_median(pd, (size_t)reps);
    double mje = bench_median(je, (size_t)reps), mjd = bench_median(jd, (size_t)reps);
    double pb = (double)pbytes / (double)n, jb = (double)jbytes / (double)n;
    double pzb = (double)pz / (double)n, jzb = (double)jz / (double)n;
    char bench[96], note[300];
    snprintf(bench, sizeof bench, "Wire format: %zu changes encoded + decoded", n);
    snprintf(note, sizeof note, "encode %.0f ms, decode %.0f ms (validated); %.2fx JSON's rate",
             mpe * 1e3, mpd * 1e3, mratio);
    br_row("3", bench, "nanopb (fieldvault ChangeSet)", mpr, "changes/s", mratio, "of JSON", note);
    snprintf(note, sizeof note, "encode %.0f ms, decode %.0f ms (same checks)", mje * 1e3, mjd * 1e3);
    br_row("3", bench, "JSON (cJSON 1.7.15)", mjr, "changes/s", 1.0, "of JSON", note);
    br_row("3", "Wire format: bytes per change, raw", "nanopb", pb, "B/change", pb / jb, "of JSON", "");
    br_row("3", "Wire format: bytes per change, raw", "JSON", jb, "B/change", 1.0, "of JSON", "");
    br_row("3", "Wire format: bytes per change, zstd -3", "nanopb", pzb, "B/change", pzb / jzb,
           "of JSON", "whole set compressed");
    br_row("3", "Wire format: bytes per change, zstd -3", "JSON", jzb, "B/change", 1.0, "of JSON",
           "whole set compressed");
    br_chart("wire enc+dec rate vs JSON", mratio, 3.0);
    br_chart("wire size: JSON / nanopb (raw)", jb / pb, 2.5);
    br_chart("wire size: JSON / nanopb (zstd)", jzb / pzb, BR_NAN);
    char meas[300];
    snprintf(meas, sizeof meas, "%.0f%% raw (%.0f vs %.0f B/change); %.0f%% with zstd (%.0f vs %.0f)",
             100 * pb / jb, pb, jb, 100 * pzb / jzb, pzb, jzb);
    br_target("nanopb: at most 40% of JSON's bytes per change", meas, failed ? -1 : pb / jb <= 0.4);
    snprintf(meas, sizeof meas, "%.2fx (%.0f vs %.0f changes/s)", mratio, mpr, mjr);
    br_target("nanopb: at least 3x JSON's encode+decode rate", meas, failed ? -1 : mratio >= 3.0);
    return failed ? -1 : 0;
}
