/*
 * test_import.c - fv import and fv export --csv as users run them: the real
 * binary (FV_BIN) on real store files and real CSV files, through tu_run.
 *
 *  - bulk: a generated sheet of 3,000 customer rows (a BOM, CRLF, Chinese
 *    and English names, Chinese labels, a Chinese column mapped with --map,
 *    fv's option names as columns, quoted commas, doubled quotes and line
 *    breaks inside quotes, a blank line, bad and ambiguous dates, invalid
 *    enums, a missing name, a short row, duplicates of earlier rows and of
 *    a stored customer).  The generator knows every row's physical line and
 *    fate: the counts are exact, every rejected or duplicate row is
 *    reported once on its line with a reason naming the field (or the
 *    duplicate), nothing else is reported.  A dry run leaves the store's
 *    state hash as it was; the real run leaves exactly the accepted rows,
 *    with normalised values (checked through fv customer show --json); a
 *    second run finds every accepted row a duplicate.
 *  - references: contacts and visits naming their customer by id (any
 *    case) or by a unique exact name; an ambiguous or unknown one, a bad
 *    method, a non-number, an ambiguous time are rejected.
 *  - round trip: export (file and stdout, byte-identical) then import into
 *    a fresh store gives the same customers (the CSVs equal but for ids).
 *  - hostile input: an unterminated quote, a cell over FV_FIELD_MAX, a NUL
 *    byte, invalid UTF-8 (on the right physical line), UTF-16, too many
 *    cells, text after a closing quote, an empty file: exit 1 with the line,
 *    nothing on stdout, the store unchanged; unknown columns and bad --map
 *    options: exit 2 with the synopsis.
 *
 * Stores are made with a small KDF (8 MiB, 1 pass) to keep runs fast.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fieldvault.h"
#include "testutil.h"

#define PASS "import test passphrase"
#define NROWS 3000
#define KINDS 20

static const char *const env_ok[] = {"FV_PASSPHRASE=" PASS, NULL};

/* ---- running fv ---- */

static tu_result fv_run(const char *const *args)
{
    const char *argv[64];
    size_t n = 0;
    argv[n++] = FV_BIN;
    for (size_t i = 0; args[i] != NULL && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;
    return tu_run(argv, env_ok, NULL);
}

#define FV(...) fv_run((const char *const[]){__VA_ARGS__, NULL})

static void expect_exit(const tu_result *r, int want, const char *what)
{
    if (r->exit_code != want)
        fprintf(stderr, "%s: exit %d, want %d\n--- stdout:\n%.2000s\n--- stderr:\n%.2000s\n", what,
                r->exit_code, want, r->out, r->err);
    assert_int_equal(r->exit_code, want);
}

typedef struct store {
    char *dir;
    char *path;
} store;

static void store_new(store *s, const char *tag)
{
    s->dir = tu_mkdtemp(tag);
    s->path = tu_path(s->dir, "s.fv");
    tu_result r = FV("init", s->path, "--kdf-mem", "8", "--kdf-passes", "1");
    expect_exit(&r, 0, "fv init");
    tu_result_free(&r);
}

static void store_free(store *s)
{
    tu_rmtree(s->dir);
    free(s->path);
    free(s->dir);
}

static char *take_id(tu_result *r, const char *what)
{
    expect_exit(r, 0, what);
    size_t n = strlen(r->out);
    if (n > 0 && r->out[n - 1] == '\n') r->out[--n] = '\0';
    assert_int_equal(n, FV_ID_LEN);
    char *id = strdup(r->out);
    tu_result_free(r);
    return id;
}

static char *add_customer(const store *s, const char *name)
{
    tu_result r = FV("customer", "add", s->path, "--name", name);
    return take_id(&r, "customer add");
}

static char *state_hash(const store *s)
{
    tu_result r = FV("state-hash", s->path);
    expect_exit(&r, 0, "state-hash");
    char *h = strndup(r.out, 64);
    assert_int_equal(strlen(h), 64);
    tu_result_free(&r);
    return h;
}

static void write_text(const char *path, const char *text, size_t len)
{
    tu_write_file(path, (const unsigned char *)text, len);
}

/* ---- JSON without layout: whitespace outside strings removed ---- */

static char *json_compact(const char *in)
{
    size_t n = strlen(in), o = 0;
    char *out = malloc(n + 1);
    assert_non_null(out);
    int str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (str) {
            out[o++] = c;
            if (c == '\\' && i + 1 < n) out[o++] = in[++i];
            else if (c == '"') str = 0;
        } else if (c == '"') {
            str = 1;
            out[o++] = c;
        } else if (!isspace((unsigned char)c)) {
            out[o++] = c;
        }
    }
    out[o] = '\0';
    return out;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

/* The id of the object whose "name" is json_name (already JSON-escaped) in
 * a compact list; malloc'd. */
static char *id_by_name(const char *list, const char *json_name)
{
    char key[512];
    snprintf(key, sizeof key, "\"name\":\"%s\"", json_name);
    const char *p = strstr(list, key);
    if (p == NULL) fprintf(stderr, "no customer named %s\n", json_name);
    assert_non_null(p);
    const char *id = NULL;
    for (const char *q = list; q < p && (q = strstr(q, "\"id\":\"")) != NULL && q < p; q += 6) id = q + 6;
    assert_non_null(id);
    return strndup(id, FV_ID_LEN);
}

/* fv customer show --json, compacted. */
static char *show(const store *s, const char *table, const char *id)
{
    tu_result r = FV(table, "show", s->path, id, "--json");
    expect_exit(&r, 0, "show --json");
    char *c = json_compact(r.out);
    tu_result_free(&r);
    return c;
}

static void expect_has(const char *hay, const char *needle, const char *what)
{
    if (strstr(hay, needle) == NULL)
        fprintf(stderr, "%s: '%s' not found in:\n%.3000s\n", what, needle, hay);
    assert_non_null(strstr(hay, needle));
}

/* ---- 1. bulk customers ---- */

/* What the report must say about a line: a duplicate or a rejection,
 * with these words in the reason. */
typedef struct want {
    int kind; /* 0: no report; 'd' duplicate; 'r' rejected */
    char must[2][96];
    int seen;
} want;

typedef struct sheet {
    FILE *f;
    char *buf;
    size_t len;
    unsigned long line;          /* physical line of the next row */
    unsigned long row_line[NROWS];
    want *w;                     /* by line */
    size_t wcap;
    size_t imported, dups, rejected;
} sheet;

/* One row: its cells as written, then CRLF.  Line breaks inside the cells
 * (inside quotes) move the next row's line on. */
static unsigned long put_row(sheet *sh, const char *cells)
{
    unsigned long at = sh->line;
    fprintf(sh->f, "%s\r\n", cells);
    sh->line += 1 + count_of(cells, "\n");
    return at;
}

static void expect_report(sheet *sh, unsigned long line, int kind, const char *m0, const char *m1)
{
    assert_true(line < sh->wcap);
    want *w = &sh->w[line];
    w->kind = kind;
    snprintf(w->must[0], sizeof w->must[0], "%s", m0);
    snprintf(w->must[1], sizeof w->must[1], "%s", m1 ? m1 : "");
    if (kind == 'd') sh->dups++;
    else sh->rejected++;
}

/* Columns: 客户名称 (mapped to name), grade, stage, 行业 (-> industry),
 * next-due and decision-chain (fv's option names), budget, intent, needs. */
static void gen_row(sheet *sh, int i, const char *existing_id)
{
    char c[512], m[96];
    int k = i % KINDS;
    unsigned long at;
    switch (k) {
    case 0: snprintf(c, sizeof c, "Acme Trading %d,a,Intent,manufacturing,2026/3/5,,,,", i); break;
    case 1:
        snprintf(c, sizeof c, "华东贸易%d有限公司,S级,谈判,物流,2026年3月5日,,,高,", i);
        break;
    case 2: snprintf(c, sizeof c, "\"Smith, Jones & Co %d\",B,lead,,,\"1,000 EUR\",,,", i); break;
    case 3: snprintf(c, sizeof c, "Multi Line %d,,,,,,,,\"line one\r\nline two %d\"", i, i); break;
    case 4: snprintf(c, sizeof c, "Bad Date %d,A,,,2026-02-30,,,,", i); break;
    case 5: snprintf(c, sizeof c, "Ambiguous Date %d,A,,,05/03/2026,,,,", i); break;
    case 6: snprintf(c, sizeof c, "Bad Grade %d,C,,,,,,,", i); break;
    case 7: snprintf(c, sizeof c, "Bad Stage %d,,成交了,,,,,,", i); break;
    case 8: /* Acme Trading (i-8): full-width letters, case and spaces differ */
        snprintf(c, sizeof c, "\"  ＡＣＭＥ   trading %d \",B,,,,,,,", i - 8);
        break;
    case 9: snprintf(c, sizeof c, "EXISTING  Trading Co,A,,,,,,,"); break;
    case 10: snprintf(c, sizeof c, "\"The \"\"Best\"\" Shop %d\",,,,,,,,", i); break;
    case 11: snprintf(c, sizeof c, "Dotted %d,B,流失,,2026.12.1,,,,", i); break;
    case 12: snprintf(c, sizeof c, "Midnight %d,,,,2026-03-05 0:00,,,,", i); break;
    case 13:
        snprintf(c, sizeof c, "Bad Intent %d,,,,,,,maybe,\"first\nsecond\nthird %d\"", i, i);
        break;
    case 14: snprintf(c, sizeof c, "Spaced %d,  B级 , 意向 ,\xe3\x80\x80retail\xe3\x80\x80,,,,,", i); break;
    case 15: snprintf(c, sizeof c, "Budget %d,,,,,\"1,200万\",CEO → CFO,,", i); break;
    case 16: snprintf(c, sizeof c, ",A,lead,,,,,,"); break;
    case 17: snprintf(c, sizeof c, "Extra Cells %d,,,,,,,,,extra", i); break;
    case 18: snprintf(c, sizeof c, "华东贸易%d有限公司,A,,,,,,,", i - 17); break;
    default: snprintf(c, sizeof c, "Plain %d,,,,,,,,", i); break;
    }
    at = put_row(sh, c);
    sh->row_line[i] = at;
    switch (k) {
    case 4: expect_report(sh, at, 'r', "customer.next_due", NULL); break;
    case 5: expect_report(sh, at, 'r', "customer.next_due", "ambiguous"); break;
    case 6: expect_report(sh, at, 'r', "customer.grade", NULL); break;
    case 7: expect_report(sh, at, 'r', "customer.stage", NULL); break;
    case 8:
        snprintf(m, sizeof m, "duplicate of line %lu ", sh->row_line[i - 8]);
        expect_report(sh, at, 'd', m, NULL);
        break;
    case 9:
        snprintf(m, sizeof m, "duplicate of customer %s", existing_id);
        expect_report(sh, at, 'd', m, NULL);
        break;
    case 13: expect_report(sh, at, 'r', "customer.intent", NULL); break;
    case 16: expect_report(sh, at, 'r', "customer.name is required", NULL); break;
    case 17: expect_report(sh, at, 'r', "10 cells, but the header has 9", NULL); break;
    case 18:
        snprintf(m, sizeof m, "duplicate of line %lu ", sh->row_line[i - 17]);
        expect_report(sh, at, 'd', m, NULL);
        break;
    default: sh->imported++; break;
    }
}

static void gen_sheet(sheet *sh, const char *path, const char *existing_id)
{
    memset(sh, 0, sizeof *sh);
    sh->wcap = NROWS * 4 + 16;
    sh->w = calloc(sh->wcap, sizeof *sh->w);
    assert_non_null(sh->w);
    sh->f = open_memstream(&sh->buf, &sh->len);
    assert_non_null(sh->f);
    fputs("\xef\xbb\xbf", sh->f); /* a BOM, as Excel writes "CSV UTF-8" */
    sh->line = 1;
    put_row(sh, "客户名称,grade,stage,行业,next-due,budget,decision-chain,intent,needs");
    for (int i = 0; i < NROWS; i++) {
        gen_row(sh, i, existing_id);
        if (i == 1000) put_row(sh, ""); /* a blank line: no row */
    }
    fclose(sh->f);
    write_text(path, sh->buf, sh->len);
}

/* The text report: the counts line, then exactly the wanted lines. */
static void check_text_report(sheet *sh, const char *out, size_t read, size_t imported,
                              size_t dups, size_t rejected)
{
    char first[160];
    snprintf(first, sizeof first, "read %zu, imported %zu, duplicates %zu, rejected %zu\n", read,
             imported, dups, rejected);
    if (strncmp(out, first, strlen(first)) != 0) fprintf(stderr, "report starts:\n%.300s\n", out);
    assert_true(strncmp(out, first, strlen(first)) == 0);
    size_t issues = 0;
    for (const char *p = strchr(out, '\n') + 1; *p; p = strchr(p, '\n') + 1) {
        assert_true(strncmp(p, "line ", 5) == 0);
        char *end;
        unsigned long line = strtoul(p + 5, &end, 10);
        assert_true(end[0] == ':' && end[1] == ' ');
        const char *eol = strchr(end, '\n');
        assert_non_null(eol);
        char *reason = strndup(end + 2, (size_t)(eol - end - 2));
        if (line >= sh->wcap || sh->w[line].kind == 0) {
            fprintf(stderr, "unexpected report for line %lu: %s\n", line, reason);
            fail();
        }
        want *w = &sh->w[line];
        assert_int_equal(w->seen, 0);
        w->seen = 1;
        int is_dup = strncmp(reason, "duplicate of ", 13) == 0;
        if (is_dup != (w->kind == 'd') || strstr(reason, w->must[0]) == NULL ||
            strstr(reason, w->must[1]) == NULL) {
            fprintf(stderr, "line %lu: reason '%s', want %c with '%s' '%s'\n", line, reason,
                    w->kind, w->must[0], w->must[1]);
            fail();
        }
        free(reason);
        issues++;
    }
    assert_int_equal(issues, dups + rejected);
}

static size_t count_customers(const store *s)
{
    tu_result r = FV("customer", "list", s->path, "--json");
    expect_exit(&r, 0, "customer list --json");
    char *c = json_compact(r.out);
    size_t n = count_of(c, "{\"id\":");
    free(c);
    tu_result_free(&r);
    return n;
}

static void check_values(const store *s)
{
    tu_result r = FV("customer", "list", s->path, "--json");
    expect_exit(&r, 0, "customer list --json");
    char *list = json_compact(r.out);
    tu_result_free(&r);
    static const struct {
        const char *name;        /* JSON-escaped */
        const char *fields[4];   /* compact JSON members the record must have */
    } checks[] = {
        {"Acme Trading 0", {"\"grade\":\"A\"", "\"stage\":\"intent\"", "\"next_due\":\"2026-03-05\"",
                            "\"industry\":\"manufacturing\""}},
        {"华东贸易1有限公司", {"\"grade\":\"S\"", "\"stage\":\"negotiation\"", "\"intent\":\"high\"",
                               "\"industry\":\"物流\""}},
        {"华东贸易2981有限公司", {"\"grade\":\"S\"", "\"next_due\":\"2026-03-05\"", "", ""}},
        {"Smith, Jones & Co 2", {"\"budget\":\"1,000 EUR\"", "\"grade\":\"B\"", "\"stage\":\"lead\"", ""}},
        {"Multi Line 3", {"\"needs\":\"line one\\r\\nline two 3\"", "", "", ""}},
        {"The \\\"Best\\\" Shop 10", {"\"owner\":\"local\"", "", "", ""}},
        {"Dotted 11", {"\"stage\":\"lost\"", "\"next_due\":\"2026-12-01\"", "", ""}},
        {"Midnight 12", {"\"next_due\":\"2026-03-05\"", "", "", ""}},
        {"Spaced 14", {"\"grade\":\"B\"", "\"stage\":\"intent\"", "\"industry\":\"retail\"", ""}},
        {"Budget 2995", {"\"budget\":\"1,200万\"", "\"decision_chain\":\"CEO → CFO\"", "", ""}},
        {"Plain 2999", {"\"name\":\"Plain 2999\"", "", "", ""}},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        char *id = id_by_name(list, checks[i].name);
        char *rec = show(s, "customer", id);
        for (size_t f = 0; f < 4; f++)
            if (checks[i].fields[f][0]) expect_has(rec, checks[i].fields[f], checks[i].name);
        free(rec);
        free(id);
    }
    /* rejected and duplicate rows are not there */
    assert_null(strstr(list, "Bad Date"));
    assert_null(strstr(list, "Bad Intent"));
    assert_null(strstr(list, "Extra Cells"));
    assert_int_equal(count_of(list, "\"name\":\"Acme Trading 0\""), 1);
    free(list);
}

static void test_bulk_customers(void **state)
{
    (void)state;
    store s;
    store_new(&s, "imp-bulk");
    char *existing = add_customer(&s, "Existing Trading Co");
    char *csv = tu_path(s.dir, "customers.csv");
    sheet *sh = malloc(sizeof *sh);
    assert_non_null(sh);
    gen_sheet(sh, csv, existing);
    assert_int_equal(sh->imported + sh->dups + sh->rejected, NROWS);

    /* dry run: the same report, nothing written */
    char *before = state_hash(&s);
    tu_result r = FV("import", "customers", s.path, csv, "--map", "客户名称=name", "--dry-run",
                     "--map", "行业=industry", "--json");
    expect_exit(&r, 1, "dry run");
    char *doc = json_compact(r.out);
    char head[128];
    snprintf(head, sizeof head, "{\"read\":%d,\"imported\":%zu,\"duplicates\":[", NROWS,
             sh->imported);
    expect_has(doc, head, "dry run JSON");
    expect_has(doc, "\"dry_run\":true}", "dry run JSON");
    assert_int_equal(count_of(doc, "{\"line\":"), sh->dups + sh->rejected);
    char item[160];
    snprintf(item, sizeof item, "{\"line\":%lu,\"reason\":\"duplicate of line %lu ",
             sh->row_line[8], sh->row_line[0]);
    expect_has(doc, item, "dry run JSON duplicate");
    free(doc);
    tu_result_free(&r);
    char *after = state_hash(&s);
    assert_string_equal(before, after);
    free(after);
    assert_int_equal(count_customers(&s), 1);

    /* the real run: one transaction with exactly the accepted rows */
    r = FV("import", "customers", s.path, csv, "--map=客户名称=name", "--map", " 行业 = industry ");
    expect_exit(&r, 1, "import");
    check_text_report(sh, r.out, NROWS, sh->imported, sh->dups, sh->rejected);
    tu_result_free(&r);
    assert_int_equal(count_customers(&s), 1 + sh->imported);
    check_values(&s);

    /* again: every accepted row is now a stored customer */
    r = FV("import", "customers", s.path, csv, "--map", "客户名称=name", "--json", "--map",
           "行业=Industry");
    expect_exit(&r, 1, "second import");
    doc = json_compact(r.out);
    snprintf(head, sizeof head, "{\"read\":%d,\"imported\":0,", NROWS);
    expect_has(doc, head, "second import");
    assert_int_equal(count_of(doc, "\"reason\":\"duplicate of"), sh->imported + sh->dups);
    free(doc);
    tu_result_free(&r);
    assert_int_equal(count_customers(&s), 1 + sh->imported);

    free(sh->w);
    free(sh->buf);
    free(sh);
    free(before);
    free(csv);
    free(existing);
    store_free(&s);
}

/* ---- 2. contacts and visits: customers by id or by name ---- */

static void test_references(void **state)
{
    (void)state;
    store s;
    store_new(&s, "imp-refs");
    char *alpha = add_customer(&s, "Alpha Ltd");
    char *beta = add_customer(&s, "Beta 有限公司");
    char *twin1 = add_customer(&s, "Twin Co");
    char *twin2 = add_customer(&s, "Twin Co");
    char alpha_upper[FV_ID_LEN + 1];
    for (size_t i = 0; i <= FV_ID_LEN; i++) alpha_upper[i] = (char)toupper((unsigned char)alpha[i]);

    char *csv = tu_path(s.dir, "contacts.csv");
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "customer,name,title,phone,email\n"
                     "Alpha Ltd,Li Wei,CEO,+86 138 0000 0000,li@example.com\n" /* 2: by name */
                     "%s,王芳,经理,+86 139 1111 1111,wang@example.com\n"       /* 3: by id */
                     "Twin Co,Zhang San,,,\n"                                  /* 4: ambiguous */
                     "Nobody Inc,Zhao,,,\n"                                    /* 5: unknown */
                     "%s,\"Chen, Jr.\",CTO,,\n"                                /* 6: upper id */
                     "Alpha Ltd,,CFO,,\n",                                     /* 7: no name */
                     beta, alpha_upper);
    write_text(csv, text, (size_t)n);
    tu_result r = FV("import", "contacts", s.path, csv);
    expect_exit(&r, 1, "import contacts");
    expect_has(r.out, "read 6, imported 3, duplicates 0, rejected 3\n", "contacts");
    expect_has(r.out, "line 4: contact.customer_id: 2 customers are named 'Twin Co'", "contacts");
    expect_has(r.out, "line 5: contact.customer_id: no customer has the id or the name 'Nobody Inc'",
               "contacts");
    expect_has(r.out, "line 7: contact.name is required", "contacts");
    tu_result_free(&r);
    r = FV("contact", "list", s.path, "--customer", alpha, "--json");
    expect_exit(&r, 0, "contact list");
    char *doc = json_compact(r.out);
    expect_has(doc, "\"name\":\"Li Wei\"", "alpha's contacts");
    expect_has(doc, "\"phone\":\"+86 138 0000 0000\"", "alpha's contacts");
    expect_has(doc, "\"name\":\"Chen, Jr.\"", "alpha's contacts");
    free(doc);
    tu_result_free(&r);
    r = FV("contact", "list", s.path, "--customer", beta, "--json");
    expect_exit(&r, 0, "contact list");
    expect_has(r.out, "王芳", "beta's contacts");
    tu_result_free(&r);

    /* visits: labels, dates and times normalised, numbers checked */
    char *vcsv = tu_path(s.dir, "visits.csv");
    n = snprintf(text, sizeof text,
                 "customer_id,method,summary,at,next-due,lat,lon\r\n"
                 "Beta 有限公司,电话,\"Called about the order, again\",2026/3/5 9:30,"
                 "2026年4月1日,31.2304,121.4737\r\n"                                   /* 2 */
                 "%s,拜访,Site visit,2026-03-06T10:00:00+08:00,,,\r\n"               /* 3 */
                 "Alpha Ltd,fax,Sent a fax,,,,\r\n"                                    /* 4 */
                 "Alpha Ltd,视频,Call,,,north,\r\n"                                    /* 5 */
                 "Alpha Ltd,Email,Mail,05/03/2026 10:00,,,\r\n"                        /* 6 */
                 "%s,其他,Twin visit,,,,\r\n",                                         /* 7 */
                 alpha, twin2);
    write_text(vcsv, text, (size_t)n);
    r = FV("import", "visits", s.path, vcsv, "--json");
    expect_exit(&r, 1, "import visits");
    doc = json_compact(r.out);
    expect_has(doc, "{\"read\":6,\"imported\":3,\"duplicates\":[],\"rejected\":[", "visits");
    expect_has(doc, "{\"line\":4,\"reason\":\"visit.method must be one of", "visits");
    expect_has(doc, "{\"line\":5,\"reason\":\"visit.lat must be a number", "visits");
    expect_has(doc, "{\"line\":6,\"reason\":\"visit.at: '05/03/2026 10:00' is ambiguous", "visits");
    expect_has(doc, "\"dry_run\":false}", "visits");
    free(doc);
    tu_result_free(&r);
    r = FV("visit", "list", s.path, "--customer", beta, "--json");
    expect_exit(&r, 0, "visit list");
    doc = json_compact(r.out);
    expect_has(doc, "\"at\":\"2026-03-05T09:30:00Z\"", "beta's visit");
    expect_has(doc, "\"method\":\"phone\"", "beta's visit");
    expect_has(doc, "\"next_action_due\":\"2026-04-01\"", "beta's visit");
    expect_has(doc, "\"lat\":31.2304", "beta's visit");
    expect_has(doc, "\"summary\":\"Called about the order, again\"", "beta's visit");
    free(doc);
    tu_result_free(&r);
    r = FV("visit", "list", s.path, "--customer", alpha, "--json");
    expect_exit(&r, 0, "visit list");
    expect_has(r.out, "2026-03-06T02:00:00Z", "alpha's visit (UTC)");
    tu_result_free(&r);

    /* the export carries them back, numbers as numbers */
    r = FV("export", "visits", s.path, "--csv");
    expect_exit(&r, 0, "export visits");
    assert_true(strncmp(r.out, "id,customer_id,at,method,", 25) == 0);
    expect_has(r.out, ",31.2304,121.4737", "visits CSV");
    expect_has(r.out, "\"Called about the order, again\"", "visits CSV");
    tu_result_free(&r);
    r = FV("export", "contacts", s.path, "--csv");
    expect_exit(&r, 0, "export contacts");
    expect_has(r.out, ",\"Chen, Jr.\",CTO,", "contacts CSV");
    expect_has(r.out, "li@example.com", "contacts CSV");
    tu_result_free(&r);

    free(vcsv);
    free(csv);
    free(alpha);
    free(beta);
    free(twin1);
    free(twin2);
    store_free(&s);
}

/* ---- 3. export -> import round trip ---- */

/* Every UUID-shaped run of characters replaced by X's. */
static void mask_ids(char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    size_t n = strlen(s);
    for (size_t i = 0; i + FV_ID_LEN <= n; i++) {
        size_t k = 0;
        for (; k < FV_ID_LEN; k++)
            if (shape[k] == '-' ? s[i + k] != '-' : !isxdigit((unsigned char)s[i + k])) break;
        if (k == FV_ID_LEN) memset(s + i, 'X', FV_ID_LEN);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    store a, b;
    store_new(&a, "imp-rt-a");
    store_new(&b, "imp-rt-b");
    char *src = tu_path(a.dir, "src.csv");
    FILE *f = fopen(src, "wb");
    assert_non_null(f);
    fputs("name,grade,stage,needs,budget,next_due,region\n", f);
    for (int i = 0; i < 200; i++)
        fprintf(f, "\"客户 %d, \"\"引号\"\"\",%s,%s,\"needs %d\nsecond line\",%d万,2026-%02d-%02d,华东\n",
                i, i % 3 == 0 ? "S" : i % 3 == 1 ? "A级" : "b", i % 2 ? "成交" : "lead", i, i,
                1 + i % 12, 1 + i % 28);
    fclose(f);
    tu_result r = FV("import", "customers", a.path, src);
    expect_exit(&r, 0, "import source");
    expect_has(r.out, "read 200, imported 200, duplicates 0, rejected 0\n", "import source");
    tu_result_free(&r);
    char *one = add_customer(&a, "Added by hand, with a comma");
    free(one);

    char *file = tu_path(a.dir, "out.csv");
    r = FV("export", "customers", a.path, "--csv", file);
    expect_exit(&r, 0, "export to a file");
    expect_has(r.out, "201 customers written to", "export to a file");
    tu_result_free(&r);
    r = FV("export", "customers", a.path, "--csv");
    expect_exit(&r, 0, "export to stdout");
    size_t len = 0;
    char *exported = (char *)tu_read_file(file, &len);
    assert_non_null(exported);
    assert_int_equal(len, strlen(r.out));
    assert_memory_equal(exported, r.out, len);
    assert_true(strncmp(r.out, "id,name,", 8) == 0);
    tu_result_free(&r);

    r = FV("import", "customers", b.path, file);
    expect_exit(&r, 0, "import the export");
    expect_has(r.out, "read 201, imported 201, duplicates 0, rejected 0\n", "round trip");
    tu_result_free(&r);
    r = FV("export", "customers", b.path, "--csv");
    expect_exit(&r, 0, "export again");
    char *copy = realloc(exported, len + 1);
    assert_non_null(copy);
    copy[len] = '\0';
    mask_ids(copy);
    mask_ids(r.out);
    assert_string_equal(copy, r.out);
    tu_result_free(&r);

    /* --json with a FILE; without one it is a usage error (the CSV is stdout) */
    r = FV("export", "customers", a.path, "--csv", file, "--json");
    expect_exit(&r, 0, "export --json");
    char *doc = json_compact(r.out);
    expect_has(doc, "\"count\":201", "export --json");
    free(doc);
    tu_result_free(&r);
    r = FV("export", "customers", a.path, "--csv", "--json");
    expect_exit(&r, 2, "export --json to stdout");
    tu_result_free(&r);
    r = FV("export", "customers", a.path);
    expect_exit(&r, 2, "export without --csv");
    expect_has(r.err, "--csv is required", "export without --csv");
    tu_result_free(&r);

    free(copy);
    free(file);
    free(src);
    store_free(&a);
    store_free(&b);
}

/* ---- 4. hostile input ---- */

typedef struct hostile {
    const char *what;
    const char *text;
    size_t len;       /* 0: strlen */
    int want;         /* exit code */
    const char *err[2]; /* on stderr */
} hostile;

static void test_hostile(void **state)
{
    (void)state;
    store s;
    store_new(&s, "imp-hostile");
    char *id = add_customer(&s, "Only Customer");
    free(id);
    char *before = state_hash(&s);
    char *csv = tu_path(s.dir, "bad.csv");

    char *huge = malloc(FV_FIELD_MAX + 64);
    assert_non_null(huge);
    int hn = snprintf(huge, 32, "name\r\nok\r\n\"");
    memset(huge + hn, 'x', FV_FIELD_MAX + 1);
    memcpy(huge + hn + FV_FIELD_MAX + 1, "\"\r\n", 4);
    char *wide = malloc(8192);
    assert_non_null(wide);
    size_t wn = 0;
    for (int i = 0; i < 300; i++) wn += (size_t)snprintf(wide + wn, 8192 - wn, "%sc%d", i ? "," : "", i);
    wn += (size_t)snprintf(wide + wn, 8192 - wn, "\n");

    const hostile cases[] = {
        {"unterminated quote", "name\r\nok\r\n\"never closed,\r\nmore\r\n", 0, 1,
         {"line 3:", "not closed"}},
        {"cell over the limit", huge, 0, 1, {"line 3:", "longer than 4096 bytes"}},
        {"NUL byte", "name\nab\0c\n", 10, 1, {"line 2:", "NUL"}},
        {"invalid UTF-8", "name\nok\n\"multi\nline \xff\"\n", 0, 1, {"line 4:", "UTF-8"}},
        {"GBK", "name\n\xc9\xcf\xba\xa3\n", 0, 1, {"line 2:", "UTF-8"}},
        {"UTF-16", "\xff\xfen\0a\0m\0e\0", 10, 1, {"UTF-16", ""}},
        {"too many cells", wide, 0, 1, {"line 1:", "more than 256 cells"}},
        {"text after a quote", "name\n\"a\"b\n", 0, 1, {"line 2:", "after the closing quote"}},
        {"empty file", "", 0, 1, {"empty", ""}},
        {"blank lines only", "\r\n\r\n  \r\n", 0, 1, {"empty", ""}},
        {"unknown columns", "name,foo,grade,bar\nx,1,A,2\n", 0, 2, {"'foo', 'bar'", "usage: fv"}},
        {"two columns for one field", "name,Name\nx,y\n", 0, 2, {"both give customer.name", ""}},
        {"no name column", "grade\nA\n", 0, 2, {"customer.name", "usage: fv"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const hostile *c = &cases[i];
        write_text(csv, c->text, c->len ? c->len : strlen(c->text));
        tu_result r = FV("import", "customers", s.path, csv);
        expect_exit(&r, c->want, c->what);
        for (size_t k = 0; k < 2; k++)
            if (c->err[k][0]) expect_has(r.err, c->err[k], c->what);
        assert_true(strncmp(r.err, "fv: ", 4) == 0);
        assert_string_equal(r.out, "");
        tu_result_free(&r);
    }

    /* --map mistakes and a missing file */
    write_text(csv, "客户名称\nx\n", strlen("客户名称\nx\n"));
    static const char *const maps[][2] = {
        {"--map", "Nope=name"},     /* no such column */
        {"--map", "客户名称=nope"}, /* no such field */
        {"--map", "客户名称"},      /* no '=' */
        {"--map", NULL},            /* no value */
    };
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        const char *argv[8] = {"import", "customers", s.path, csv, maps[i][0], maps[i][1], NULL};
        tu_result r = fv_run(argv);
        expect_exit(&r, 2, "--map mistake");
        expect_has(r.err, "usage: fv import customers", "--map mistake");
        assert_string_equal(r.out, "");
        tu_result_free(&r);
    }
    tu_result r = FV("import", "customers", s.path);
    expect_exit(&r, 2, "no FILE");
    expect_has(r.err, "missing FILE", "no FILE");
    tu_result_free(&r);
    char *nofile = tu_path(s.dir, "absent.csv");
    r = FV("import", "customers", s.path, nofile);
    expect_exit(&r, 1, "absent file");
    expect_has(r.err, "cannot open", "absent file");
    tu_result_free(&r);
    free(nofile);

    /* a cell of exactly FV_FIELD_MAX bytes is read; the library judges it */
    memcpy(huge + hn + FV_FIELD_MAX, "\"\r\n", 4);
    write_text(csv, huge, strlen(huge));
    r = FV("import", "customers", s.path, csv);
    expect_exit(&r, 1, "cell at the limit");
    expect_has(r.out, "read 2, imported 1, duplicates 0, rejected 1\nline 3: customer.name is 4096 bytes",
               "cell at the limit");
    tu_result_free(&r);

    /* nothing above wrote anything but the one "ok" row of the last case */
    write_text(csv, "name\nok\n", 8);
    r = FV("import", "customers", s.path, csv, "--dry-run");
    expect_exit(&r, 0, "dry run of a duplicate");
    expect_has(r.out, "read 1, imported 0, duplicates 1, rejected 0 (dry run: nothing was written)",
               "dry run of a duplicate");
    tu_result_free(&r);
    assert_int_equal(count_customers(&s), 2);
    char *after = state_hash(&s);
    assert_string_not_equal(before, after); /* the "ok" row */
    free(after);

    free(before);
    free(huge);
    free(wide);
    free(csv);
    store_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bulk_customers),
        cmocka_unit_test(test_references),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
