/*
 * test_cli.c - the `fv` command as users and the acceptance checks run it:
 * the real binary (FV_BIN) on real store files, through tu_run.
 *
 *  - quick path: every command in text and --json (the JSON is parsed);
 *  - marker: a marker string in names, budgets, phones and summaries is in
 *    no file of the store's folder, with data in the WAL, after a
 *    checkpoint, after many writes and after close;
 *  - wrong passphrase: exit 3 and not one byte of the folder changes;
 *  - tamper: a flipped byte in any page of the database file is exit 4
 *    naming that page, in fv check and in reading commands; a flipped byte
 *    in the WAL's first frame is exit 4, in its last frame exit 0 or 4 with
 *    every earlier commit intact;
 *  - passwd and rekey: the old passphrase stops working, every page is
 *    rewritten, the data reads back the same;
 *  - bad input to every command: exit 2 (usage) or 1 (bad value), a
 *    message on stderr, nothing on stdout, the folder byte-identical.
 *
 * Stores are made with a small KDF (8 MiB, 1 pass) to keep runs fast.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fieldvault.h"
#include "testutil.h"

#define PASS "cli test passphrase"
#define MARKER "ZQXMARKER7731"
#define HDR 4096
#define PAGE 4096
#define WAL_HDR 32
#define FRAME_HDR 24

static const char *const env_ok[] = {"FV_PASSPHRASE=" PASS, NULL};
static const char *const env_wrong[] = {"FV_PASSPHRASE=not the passphrase", NULL};
static const char *const env_none[] = {"FV_PASSPHRASE=", "FV_NEW_PASSPHRASE=", NULL};

/* ---- running fv ---- */

static tu_result fv_run(const char *const *env, const char *stdin_text, const char *const *args)
{
    const char *argv[64];
    size_t n = 0;
    argv[n++] = FV_BIN;
    for (size_t i = 0; args[i] != NULL && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;
    return tu_run(argv, env, stdin_text);
}

#define FV(env, ...) fv_run((env), NULL, (const char *const[]){__VA_ARGS__, NULL})

static void expect_exit(const tu_result *r, int want, const char *what)
{
    if (r->exit_code != want)
        fprintf(stderr, "%s: exit %d, want %d\n--- stdout:\n%s\n--- stderr:\n%s\n", what,
                r->exit_code, want, r->out, r->err);
    assert_int_equal(r->exit_code, want);
}

/* fv must never die by a signal or a sanitizer: only its own exit codes. */
static void expect_clean_exit(const tu_result *r, const char *what)
{
    if (r->exit_code > 5)
        fprintf(stderr, "%s: exit %d\n--- stderr:\n%s\n", what, r->exit_code, r->err);
    assert_in_range(r->exit_code, 0, 5);
}

/* ---- stores ---- */

typedef struct store {
    char *dir;
    char *path;
} store;

static void store_new(store *s, const char *tag)
{
    s->dir = tu_mkdtemp(tag);
    s->path = tu_path(s->dir, "s.fv");
    tu_result r = FV(env_ok, "init", s->path, "--kdf-mem", "8", "--kdf-passes", "1");
    expect_exit(&r, 0, "fv init");
    tu_result_free(&r);
}

static void store_free(store *s)
{
    tu_rmtree(s->dir);
    free(s->path);
    free(s->dir);
}

/* stdout of a successful add: the id alone.  Returns a malloc'd copy. */
static char *take_id(tu_result *r, const char *what)
{
    expect_exit(r, 0, what);
    size_t n = strlen(r->out);
    if (n > 0 && r->out[n - 1] == '\n') r->out[--n] = '\0';
    if (n != FV_ID_LEN) fprintf(stderr, "%s printed '%s'\n", what, r->out);
    assert_int_equal(n, FV_ID_LEN);
    char *id = strdup(r->out);
    tu_result_free(r);
    return id;
}

static char *add_customer(const store *s, const char *name)
{
    tu_result r = FV(env_ok, "customer", "add", s->path, "--name", name, "--grade", "A");
    return take_id(&r, "customer add");
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- folder snapshots ---- */

#define SNAP_MAX 16

typedef struct snapshot {
    size_t n;
    char *name[SNAP_MAX];
    unsigned char *data[SNAP_MAX];
    size_t len[SNAP_MAX];
} snapshot;

static void snap_take(snapshot *s, const char *dir)
{
    memset(s, 0, sizeof *s);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        assert_true(s->n < SNAP_MAX);
        char *p = tu_path(dir, e->d_name);
        s->name[s->n] = strdup(e->d_name);
        s->data[s->n] = tu_read_file(p, &s->len[s->n]);
        assert_non_null(s->data[s->n]);
        s->n++;
        free(p);
    }
    closedir(d);
}

static void snap_free(snapshot *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->name[i]);
        free(s->data[i]);
    }
    s->n = 0;
}

/* Same files with the same bytes?  Says what differs on stderr. */
static int snap_equal(const snapshot *a, const snapshot *b, const char *what)
{
    int same = a->n == b->n;
    for (size_t i = 0; i < a->n; i++) {
        size_t j = 0;
        while (j < b->n && strcmp(a->name[i], b->name[j]) != 0) j++;
        if (j == b->n) {
            fprintf(stderr, "%s: %s disappeared\n", what, a->name[i]);
            same = 0;
        } else if (a->len[i] != b->len[j] || memcmp(a->data[i], b->data[j], a->len[i]) != 0) {
            fprintf(stderr, "%s: %s changed\n", what, a->name[i]);
            same = 0;
        }
    }
    if (a->n != b->n) fprintf(stderr, "%s: %zu files before, %zu after\n", what, a->n, b->n);
    return same;
}

/* ---- a minimal JSON validator (RFC 8259 grammar) ---- */

static const char *js_value(const char *p, int depth);

static const char *js_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    return p;
}

static const char *js_string(const char *p)
{
    if (*p++ != '"') return NULL;
    while (*p != '"') {
        if (*p == '\0' || (unsigned char)*p < 0x20) return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || p[i] == '\0') return NULL;
                p += 4;
            } else if (*p == '\0' || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return p + 1;
}

static const char *js_number(const char *p)
{
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (*p >= '0' && *p <= '9') p++;
    else return NULL;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    return p;
}

static const char *js_container(const char *p, int depth, char close)
{
    p = js_ws(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
        if (close == '}') {
            p = js_string(js_ws(p));
            if (p == NULL) return NULL;
            p = js_ws(p);
            if (*p++ != ':') return NULL;
        }
        p = js_value(p, depth + 1);
        if (p == NULL) return NULL;
        p = js_ws(p);
        if (*p == close) return p + 1;
        if (*p++ != ',') return NULL;
    }
}

static const char *js_value(const char *p, int depth)
{
    if (depth > 64) return NULL;
    p = js_ws(p);
    if (*p == '{') return js_container(p, depth, '}');
    if (*p == '[') return js_container(p, depth, ']');
    if (*p == '"') return js_string(p);
    if (strncmp(p, "true", 4) == 0) return p + 4;
    if (strncmp(p, "false", 5) == 0) return p + 5;
    if (strncmp(p, "null", 4) == 0) return p + 4;
    return js_number(p);
}

/* Exactly one JSON document, starting with the given bracket. */
static void expect_json(const char *out, char first, const char *what)
{
    const char *p = js_ws(out);
    const char *end = js_value(p, 0);
    int ok = *p == first && end != NULL && *js_ws(end) == '\0';
    if (!ok) fprintf(stderr, "%s: not one JSON document starting with %c:\n%s\n", what, first, out);
    assert_true(ok);
}

/* ---- 1. quick path ---- */

static void quick_reads(const store *s, const char *cid, const char *kid, const char *vid);
static void quick_writes(const store *s, const char *cid);

static void test_quick_path(void **state)
{
    (void)state;
    store s;
    store_new(&s, "cli-quick");
    tu_result r = FV(env_ok, "customer", "add", s.path, "--name", "Acme Foods", "--grade", "A",
                     "--stage", "intent", "--industry", "food processing", "--region", "North",
                     "--budget", "120k EUR", "--decision-chain", "CFO signs",
                     "--needs=line one\nline two \"quoted\" back\\slash\ttab\x01");
    char *cid = take_id(&r, "customer add");
    r = FV(env_ok, "contact", "add", s.path, "--customer", cid, "--name", "Li Wei", "--phone",
           "+86 138 0000 0000", "--email", "li@example.com");
    char *kid = take_id(&r, "contact add");
    r = FV(env_ok, "visit", "add", s.path, "--customer", cid, "--method", "visit", "--summary",
           "Trial of line 3", "--at", "2026-03-01T10:00:00+02:00", "--next-action", "Send quote",
           "--next-owner", "me", "--next-due", "2026-12-01");
    char *vid = take_id(&r, "visit add");

    quick_reads(&s, cid, kid, vid);
    quick_writes(&s, cid);
    free(cid);
    free(kid);
    free(vid);
    store_free(&s);
}

/* Every reading command, text and JSON, on the quick path's records. */
static void quick_reads(const store *sp, const char *cid, const char *kid, const char *vid)
{
    store s = *sp;
    tu_result r;
    /* customer list, text and JSON */
    r = FV(env_ok, "customer", "list", s.path);
    expect_exit(&r, 0, "customer list");
    assert_non_null(strstr(r.out, "NAME"));
    assert_non_null(strstr(r.out, "Acme Foods"));
    assert_non_null(strstr(r.out, cid));
    tu_result_free(&r);
    r = FV(env_ok, "customer", "list", s.path, "--json", "--stage", "intent");
    expect_exit(&r, 0, "customer list --json");
    expect_json(r.out, '[', "customer list --json");
    assert_non_null(strstr(r.out, "\"Acme Foods\""));
    assert_non_null(strstr(r.out, "\"120k EUR\""));
    tu_result_free(&r);
    r = FV(env_ok, "customer", "list", s.path, "--stage", "lost", "--json");
    expect_exit(&r, 0, "customer list --stage lost --json");
    expect_json(r.out, '[', "empty list");
    assert_null(strstr(r.out, "Acme"));
    tu_result_free(&r);

    /* customer show: "field: value" lines; JSON escapes every control
     * character, quotes and backslashes */
    r = FV(env_ok, "customer", "show", s.path, cid);
    expect_exit(&r, 0, "customer show");
    assert_non_null(strstr(r.out, "name: Acme Foods\n"));
    assert_non_null(strstr(r.out, "budget: 120k EUR\n"));
    assert_non_null(strstr(r.out, "decision_chain: CFO signs\n"));
    assert_null(strchr(r.out, '\x01')); /* controls never reach the terminal */
    tu_result_free(&r);
    r = FV(env_ok, "--json", "customer", "show", s.path, cid);
    expect_exit(&r, 0, "customer show --json");
    expect_json(r.out, '{', "customer show --json");
    assert_non_null(strstr(r.out, "\"line one\\nline two \\\"quoted\\\" back\\\\slash\\ttab\\u0001\""));
    assert_non_null(strstr(r.out, cid));
    tu_result_free(&r);

    /* contacts, visits, due */
    r = FV(env_ok, "contact", "list", s.path, "--customer", cid, "--json");
    expect_exit(&r, 0, "contact list --json");
    expect_json(r.out, '[', "contact list --json");
    assert_non_null(strstr(r.out, "Li Wei"));
    assert_non_null(strstr(r.out, kid));
    tu_result_free(&r);
    r = FV(env_ok, "visit", "list", s.path);
    expect_exit(&r, 0, "visit list");
    assert_non_null(strstr(r.out, "Trial of line 3"));
    assert_non_null(strstr(r.out, "2026-03-01T08:00:00Z")); /* normalised to UTC */
    assert_non_null(strstr(r.out, "Acme Foods"));           /* the customer's name */
    tu_result_free(&r);
    r = FV(env_ok, "visit", "list", s.path, "--customer", cid, "--json");
    expect_exit(&r, 0, "visit list --json");
    expect_json(r.out, '[', "visit list --json");
    assert_non_null(strstr(r.out, "\"Trial of line 3\""));
    assert_non_null(strstr(r.out, vid));
    tu_result_free(&r);
    r = FV(env_ok, "due", s.path, "--on", "2026-03-20");
    expect_exit(&r, 0, "due");
    assert_non_null(strstr(r.out, "Acme Foods"));
    assert_non_null(strstr(r.out, "2026-03-15")); /* grade A: 14 days after the visit... */
    assert_non_null(strstr(r.out, "grade A"));    /* ...and the reason says so */
    tu_result_free(&r);
    r = FV(env_ok, "due", s.path, "--on=2026-03-14", "--json");
    expect_exit(&r, 0, "due --json (not yet due)");
    expect_json(r.out, '[', "due --json");
    assert_null(strstr(r.out, "Acme Foods")); /* ...so not due the day before */
    tu_result_free(&r);
    r = FV(env_ok, "due", "--json", s.path, "--on", "2026-03-15");
    expect_exit(&r, 0, "due --json");
    expect_json(r.out, '[', "due --json");
    assert_non_null(strstr(r.out, "\"Acme Foods\""));
    assert_non_null(strstr(r.out, "\"2026-03-15\""));
    tu_result_free(&r);

}

/* update, then delete: show is "not found", exit 1; check, help, version */
static void quick_writes(const store *sp, const char *cid)
{
    store s = *sp;
    tu_result r;
    r = FV(env_ok, "customer", "update", s.path, cid, "--grade", "S", "--stage=negotiation",
           "--budget", "");
    expect_exit(&r, 0, "customer update");
    tu_result_free(&r);
    r = FV(env_ok, "customer", "show", s.path, cid, "--json");
    expect_exit(&r, 0, "customer show after update");
    expect_json(r.out, '{', "show after update");
    assert_non_null(strstr(r.out, "\"S\""));
    assert_non_null(strstr(r.out, "\"negotiation\""));
    assert_null(strstr(r.out, "120k EUR")); /* an empty value clears the field */
    tu_result_free(&r);
    r = FV(env_ok, "customer", "delete", s.path, cid);
    expect_exit(&r, 0, "customer delete");
    tu_result_free(&r);
    r = FV(env_ok, "customer", "show", s.path, cid);
    expect_exit(&r, 1, "customer show after delete");
    assert_non_null(strstr(r.err, "fv: "));
    assert_non_null(strstr(r.err, "no customer"));
    assert_string_equal(r.out, "");
    tu_result_free(&r);
    r = FV(env_ok, "customer", "list", s.path);
    expect_exit(&r, 0, "customer list after delete");
    assert_null(strstr(r.out, "Acme Foods"));
    tu_result_free(&r);

    /* check, help, version */
    r = FV(env_ok, "check", s.path);
    expect_exit(&r, 0, "check");
    assert_string_equal(r.out, "ok\n");
    tu_result_free(&r);
    r = FV(env_none, "--help");
    expect_exit(&r, 0, "--help");
    assert_non_null(strstr(r.out, "customer add"));
    tu_result_free(&r);
    r = FV(env_none, "help");
    expect_exit(&r, 0, "help");
    assert_non_null(strstr(r.out, "visit add"));
    tu_result_free(&r);
    r = FV(env_none, "--version");
    expect_exit(&r, 0, "--version");
    assert_non_null(strstr(r.out, fv_version()));
    tu_result_free(&r);
}

/* ---- 2. marker: no plaintext anywhere in the folder ---- */

static fv_status api_open(const char *path, fv_db **db)
{
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.passphrase = PASS;
    cfg.passphrase_len = strlen(PASS);
    return fv_open(db, &cfg);
}

static void api_add_customer(fv_db *db, const char *name, const char *budget)
{
    fv_record *r;
    assert_int_equal(fv_record_new(db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", name), FV_OK);
    if (budget != NULL) assert_int_equal(fv_record_set_text(r, "budget", budget), FV_OK);
    fv_status st = fv_insert(db, r);
    if (st != FV_OK) fprintf(stderr, "insert: %s\n", fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    fv_record_free(r);
}

static void expect_no_plaintext(const store *s, const char *when)
{
    int found = tu_dir_contains(s->dir, MARKER, strlen(MARKER));
    int header = tu_dir_contains(s->dir, "SQLite format 3", 15);
    if (found) fprintf(stderr, "%s: the marker is in a file of %s\n", when, s->dir);
    if (header) fprintf(stderr, "%s: an SQLite header is in a file of %s\n", when, s->dir);
    assert_false(found);
    assert_false(header);
    size_t n = 0;
    unsigned char *b = tu_read_file(s->path, &n);
    assert_non_null(b);
    assert_true(n >= HDR + PAGE);
    assert_true(memcmp(b, "SQLite format 3", 15) != 0);
    free(b);
}

static void test_marker(void **state)
{
    (void)state;
    store s;
    store_new(&s, "cli-marker");
    tu_result r = FV(env_ok, "customer", "add", s.path, "--name", MARKER " Trading",
                     "--budget", "budget " MARKER, "--decision-chain", MARKER " signs");
    char *cid = take_id(&r, "customer add");
    r = FV(env_ok, "contact", "add", s.path, "--customer", cid, "--name", "Wang Fang", "--phone",
           "+86 " MARKER, "--email", MARKER "@example.com");
    free(take_id(&r, "contact add"));
    r = FV(env_ok, "visit", "add", s.path, "--customer", cid, "--method", "phone", "--summary",
           "summary " MARKER, "--agreement", MARKER);
    free(take_id(&r, "visit add"));
    expect_no_plaintext(&s, "after fv commands (closed, checkpointed)");

    /* The data in the WAL, the store still open. */
    fv_db *db = NULL;
    fv_status st = api_open(s.path, &db);
    if (st != FV_OK) fprintf(stderr, "open: %s\n", fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    api_add_customer(db, MARKER " in the WAL", MARKER);
    char *wal = tu_path(s.dir, "s.fv-wal");
    size_t wal_len = 0;
    unsigned char *w = tu_read_file(wal, &wal_len);
    assert_non_null(w); /* the write sits in the WAL... */
    assert_true(wal_len > WAL_HDR);
    free(w);
    expect_no_plaintext(&s, "with data in the WAL");

    /* Many writes: enough WAL frames for SQLite's automatic checkpoint. */
    char name[64];
    for (int i = 0; i < 400; i++) {
        snprintf(name, sizeof name, "%s %04d", MARKER, i);
        api_add_customer(db, name, MARKER);
    }
    expect_no_plaintext(&s, "after many writes, still open");
    assert_int_equal(fv_close(db), FV_OK);
    expect_no_plaintext(&s, "after close");

    /* ...and every one of them reads back. */
    r = FV(env_ok, "customer", "list", s.path, "--json");
    expect_exit(&r, 0, "customer list");
    expect_json(r.out, '[', "customer list");
    assert_non_null(strstr(r.out, MARKER " 0399"));
    assert_non_null(strstr(r.out, MARKER " in the WAL"));
    tu_result_free(&r);
    expect_no_plaintext(&s, "after a read");

    free(wal);
    free(cid);
    store_free(&s);
}

/* ---- 3. wrong passphrase ---- */

static void test_wrong_passphrase(void **state)
{
    (void)state;
    store s;
    store_new(&s, "cli-wrongpass");
    char *cid = add_customer(&s, "Wrong Pass Co");
    snapshot before, after;
    snap_take(&before, s.dir);
    const char *const *cases[] = {
        (const char *const[]){"customer", "list", s.path, NULL},
        (const char *const[]){"customer", "add", s.path, "--name", "Intruder", NULL},
        (const char *const[]){"customer", "delete", s.path, cid, NULL},
        (const char *const[]){"check", s.path, NULL},
        (const char *const[]){"rekey", s.path, NULL},
        (const char *const[]){"passwd", s.path, NULL},
    };
    const char *const env_passwd[] = {"FV_PASSPHRASE=not the passphrase",
                                      "FV_NEW_PASSPHRASE=new one", NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_result r = fv_run(i == 5 ? env_passwd : env_wrong, NULL, cases[i]);
        expect_exit(&r, 3, cases[i][0]);
        assert_non_null(strstr(r.err, "fv: "));
        assert_non_null(strstr(r.err, "wrong passphrase"));
        assert_string_equal(r.out, "");
        tu_result_free(&r);
        snap_take(&after, s.dir);
        assert_true(snap_equal(&before, &after, "wrong passphrase"));
        snap_free(&after);
    }
    /* The right one still works and the customer is there. */
    tu_result r = FV(env_ok, "customer", "show", s.path, cid);
    expect_exit(&r, 0, "show with the right passphrase");
    assert_non_null(strstr(r.out, "Wrong Pass Co"));
    tu_result_free(&r);
    snap_free(&before);
    free(cid);
    store_free(&s);
}

/* ---- 4. tamper ---- */

/* Does msg name "page N" (N not a prefix of a longer number)? */
static int names_page(const char *msg, long n)
{
    for (const char *p = strstr(msg, "page "); p != NULL; p = strstr(p + 1, "page ")) {
        char *end;
        long v = strtol(p + 5, &end, 10);
        if (end != p + 5 && v == n) return 1;
    }
    return 0;
}

static void flip(unsigned char *buf, size_t off)
{
    buf[off] ^= 0x5a;
}

static void test_tamper_pages(void **state)
{
    (void)state;
    store s;
    store_new(&s, "cli-tamper");
    char name[64];
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "Tamper Co %02d", i);
        free(add_customer(&s, name));
    }
    size_t len = 0;
    unsigned char *orig = tu_read_file(s.path, &len);
    assert_non_null(orig);
    assert_true(len >= HDR + 3 * PAGE);
    assert_int_equal((len - HDR) % PAGE, 0);
    size_t npages = (len - HDR) / PAGE;
    unsigned char *bad = malloc(len);
    assert_non_null(bad);

    /* Every page: fv check is exit 4 naming the page; customer list is
     * exit 4 naming it, or 0 (a page it does not read), never a crash; at
     * least the pages holding customers make it exit 4.  Every page is
     * tried before the verdict, so a failure lists all the bad pages. */
    size_t list_failed = 0, wrong = 0;
    for (size_t n = 1; n <= npages; n++) {
        memcpy(bad, orig, len);
        flip(bad, HDR + (n - 1) * PAGE + PAGE / 2);
        tu_write_file(s.path, bad, len);
        tu_result r = FV(env_ok, "check", s.path);
        expect_clean_exit(&r, "check");
        if (r.exit_code != 4 || !names_page(r.err, (long)n) || r.out[0] != '\0') {
            fprintf(stderr, "page %zu flipped: fv check exit %d (want 4 naming page %zu): %s\n",
                    n, r.exit_code, n, r.err);
            wrong++;
        }
        tu_result_free(&r);

        tu_write_file(s.path, bad, len);
        r = FV(env_ok, "customer", "list", s.path);
        expect_clean_exit(&r, "customer list");
        if (r.exit_code == 4 && names_page(r.err, (long)n) && r.out[0] == '\0') {
            list_failed++;
        } else if (r.exit_code != 0 || strstr(r.out, "Tamper Co 29") == NULL) {
            fprintf(stderr, "page %zu flipped: customer list exit %d (want 4 naming the page, "
                    "or 0 with the data): %s\n", n, r.exit_code, r.err);
            wrong++;
        }
        tu_result_free(&r);
    }
    assert_int_equal(wrong, 0);
    assert_true(list_failed > 0);

    /* The brief's cases spelled out: page 1 and page 2. */
    for (long n = 1; n <= 2; n++) {
        memcpy(bad, orig, len);
        flip(bad, HDR + (size_t)(n - 1) * PAGE + PAGE / 2);
        tu_write_file(s.path, bad, len);
        tu_result r = FV(env_ok, "check", s.path);
        expect_exit(&r, 4, "check");
        assert_true(names_page(r.err, n));
        tu_result_free(&r);
        tu_write_file(s.path, bad, len);
        r = FV(env_ok, "customer", "list", s.path, "--json");
        expect_clean_exit(&r, "customer list --json");
        if (r.exit_code == 4) assert_string_equal(r.out, ""); /* no half document */
        else expect_json(r.out, '[', "customer list --json");
        tu_result_free(&r);
    }
    tu_write_file(s.path, bad, len); /* page 2 still flipped */
    tu_result r = FV(env_ok, "customer", "show", s.path, "01234567-89ab-7def-8123-456789abcdef");
    expect_clean_exit(&r, "show with page 2 flipped");
    tu_result_free(&r);

    /* Put it back: the same store checks clean again. */
    tu_write_file(s.path, orig, len);
    r = FV(env_ok, "check", s.path);
    expect_exit(&r, 0, "check after restoring");
    tu_result_free(&r);

    free(bad);
    free(orig);
    store_free(&s);
}

/* A child that writes n customers, one transaction each, and exits
 * without closing: the commits stay in the WAL. */
static void leave_wal(const char *path, int n)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fv_db *db = NULL;
        if (api_open(path, &db) != FV_OK) _exit(3);
        for (int i = 0; i < n; i++) {
            char name[32];
            fv_record *r;
            snprintf(name, sizeof name, "walrec-%02d", i);
            if (fv_record_new(db, "customer", &r) != FV_OK ||
                fv_record_set_text(r, "name", name) != FV_OK || fv_insert(db, r) != FV_OK)
                _exit(4);
            fv_record_free(r);
        }
        _exit(0); /* no fv_close: no checkpoint */
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

typedef struct files {
    unsigned char *db, *wal;
    size_t db_len, wal_len;
} files;

static void put_files(const store *s, const char *wal, const files *f)
{
    tu_write_file(s->path, f->db, f->db_len);
    tu_write_file(wal, f->wal, f->wal_len);
}

static void test_tamper_wal(void **state)
{
    (void)state;
    store s;
    store_new(&s, "cli-tamper-wal");
    enum { N = 6 };
    leave_wal(s.path, N);
    char *wal = tu_path(s.dir, "s.fv-wal");
    files orig;
    orig.db = tu_read_file(s.path, &orig.db_len);
    orig.wal = tu_read_file(wal, &orig.wal_len);
    assert_non_null(orig.db);
    assert_non_null(orig.wal);
    size_t frame = FRAME_HDR + PAGE;
    assert_true(orig.wal_len >= WAL_HDR + 2 * frame);
    assert_int_equal((orig.wal_len - WAL_HDR) % frame, 0);
    size_t nframes = (orig.wal_len - WAL_HDR) / frame;
    files bad = orig;
    bad.wal = malloc(orig.wal_len);
    assert_non_null(bad.wal);

    /* Untouched: opens, checks clean, holds all N. */
    put_files(&s, wal, &orig);
    tu_result r = FV(env_ok, "check", s.path);
    expect_exit(&r, 0, "check with the WAL intact");
    tu_result_free(&r);
    put_files(&s, wal, &orig);
    r = FV(env_ok, "customer", "list", s.path);
    expect_exit(&r, 0, "list with the WAL intact");
    assert_non_null(strstr(r.out, "walrec-00"));
    assert_non_null(strstr(r.out, "walrec-05"));
    tu_result_free(&r);

    /* Frame 1 (not the last of a multi-frame WAL): tampering, exit 4. */
    memcpy(bad.wal, orig.wal, orig.wal_len);
    flip(bad.wal, WAL_HDR + FRAME_HDR + PAGE / 2);
    put_files(&s, wal, &bad);
    r = FV(env_ok, "check", s.path);
    expect_exit(&r, 4, "check with WAL frame 1 flipped");
    assert_true(strstr(r.err, "frame") != NULL || strstr(r.err, "page") != NULL);
    tu_result_free(&r);
    put_files(&s, wal, &bad);
    r = FV(env_ok, "customer", "list", s.path);
    expect_exit(&r, 4, "list with WAL frame 1 flipped");
    assert_string_equal(r.out, "");
    tu_result_free(&r);

    /* The last frame: may pass as a torn write (exit 0, every earlier
     * commit intact) or be refused (exit 4); never a crash. */
    memcpy(bad.wal, orig.wal, orig.wal_len);
    flip(bad.wal, WAL_HDR + (nframes - 1) * frame + FRAME_HDR + PAGE / 2);
    put_files(&s, wal, &bad);
    r = FV(env_ok, "check", s.path);
    expect_clean_exit(&r, "check with the last WAL frame flipped");
    assert_true(r.exit_code == 0 || r.exit_code == 4);
    tu_result_free(&r);
    put_files(&s, wal, &bad);
    r = FV(env_ok, "customer", "list", s.path);
    expect_clean_exit(&r, "list with the last WAL frame flipped");
    assert_true(r.exit_code == 0 || r.exit_code == 4);
    if (r.exit_code == 0)
        for (int i = 0; i < N - 1; i++) {
            char name[32];
            snprintf(name, sizeof name, "walrec-%02d", i);
            if (strstr(r.out, name) == NULL) fprintf(stderr, "%s lost:\n%s", name, r.out);
            assert_non_null(strstr(r.out, name));
        }
    tu_result_free(&r);

    free(bad.wal);
    free(orig.db);
    free(orig.wal);
    free(wal);
    store_free(&s);
}

/* ---- 5. passwd and rekey ---- */

static void test_passwd(void **state)
{
    (void)state;
    store s;
    store_new(&s, "cli-passwd");
    char *cid = add_customer(&s, "Passwd Co");
    const char *const env_change[] = {"FV_PASSPHRASE=" PASS, "FV_NEW_PASSPHRASE=brand new pass",
                                      NULL};
    const char *const env_new[] = {"FV_PASSPHRASE=brand new pass", NULL};
    tu_result r = FV(env_change, "passwd", s.path);
    expect_exit(&r, 0, "passwd");
    tu_result_free(&r);
    r = FV(env_ok, "customer", "list", s.path);
    expect_exit(&r, 3, "old passphrase after passwd");
    assert_non_null(strstr(r.err, "wrong passphrase"));
    tu_result_free(&r);
    r = FV(env_new, "customer", "show", s.path, cid);
    expect_exit(&r, 0, "new passphrase after passwd");
    assert_non_null(strstr(r.out, "name: Passwd Co"));
    tu_result_free(&r);
    r = FV(env_new, "check", s.path);
    expect_exit(&r, 0, "check after passwd");
    tu_result_free(&r);
    /* No new passphrase and no terminal: a usage error, nothing changes. */
    snapshot before, after;
    snap_take(&before, s.dir);
    r = FV(env_new, "passwd", s.path);
    expect_exit(&r, 2, "passwd without a new passphrase");
    assert_non_null(strstr(r.err, "FV_NEW_PASSPHRASE"));
    tu_result_free(&r);
    snap_take(&after, s.dir);
    assert_true(snap_equal(&before, &after, "passwd without a new passphrase"));
    snap_free(&before);
    snap_free(&after);
    free(cid);
    store_free(&s);
}

static void test_rekey(void **state)
{
    (void)state;
    store s;
    store_new(&s, "cli-rekey");
    char name[64];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "Rekey Co %02d with a longer name to fill pages", i);
        free(add_customer(&s, name));
    }
    tu_result list1 = FV(env_ok, "customer", "list", s.path, "--json");
    expect_exit(&list1, 0, "list before rekey");
    size_t len1 = 0, len2 = 0;
    unsigned char *before = tu_read_file(s.path, &len1);
    assert_non_null(before);

    tu_result r = FV(env_ok, "rekey", s.path);
    expect_exit(&r, 0, "rekey");
    tu_result_free(&r);
    unsigned char *after = tu_read_file(s.path, &len2);
    assert_non_null(after);
    size_t n1 = (len1 - HDR) / PAGE, n2 = (len2 - HDR) / PAGE;
    size_t n = n1 < n2 ? n1 : n2;
    assert_true(n >= 2);
    for (size_t p = 0; p < n; p++) {
        int same = memcmp(before + HDR + p * PAGE, after + HDR + p * PAGE, PAGE) == 0;
        if (same) fprintf(stderr, "page %zu is unchanged by rekey\n", p + 1);
        assert_false(same);
    }
    tu_result list2 = FV(env_ok, "customer", "list", s.path, "--json");
    expect_exit(&list2, 0, "list after rekey");
    assert_string_equal(list1.out, list2.out);
    r = FV(env_ok, "check", s.path);
    expect_exit(&r, 0, "check after rekey");
    tu_result_free(&r);
    tu_result_free(&list1);
    tu_result_free(&list2);
    free(before);
    free(after);
    store_free(&s);
}

/* ---- 6. bad input ---- */

typedef struct bad_case {
    int want; /* 1 bad value, 2 usage */
    const char *args[16];
} bad_case;

#define DB "@DB"     /* replaced by the store's path */
#define CID "@CID"   /* replaced by a live customer id */
#define NEWDB "@NEW" /* replaced by a path in the folder that does not exist */
#define BIG "@BIG"   /* replaced by FV_FIELD_MAX + 1 bytes */

static const bad_case bad_cases[] = {
    {2, {"frob", DB}},
    {2, {"customer", "frob", DB}},
    {2, {"customer"}},
    {2, {"--frob", "customer", "list", DB}},
    {2, {"customer", "add", DB, "--name", "X", "--bogus", "1"}},
    {2, {"customer", "add", DB, "--name", "X", "-n", "Y"}},
    {2, {"customer", "add", DB, "--grade", "A"}},
    {2, {"customer", "add", DB, "--name"}},
    {2, {"customer", "add", DB, "--name", "--grade", "A"}},
    {2, {"customer", "add", "--name", "X"}},
    {2, {"customer", "add", DB, "extra", "--name", "X"}},
    {2, {"customer", "list"}},
    {2, {"customer", "list", DB, "extra"}},
    {2, {"customer", "show", DB}},
    {2, {"customer", "show", DB, CID, "extra"}},
    {2, {"customer", "update", DB, CID}},
    {2, {"customer", "delete", DB, CID, CID}},
    {2, {"customer", "list", DB, "--json=yes"}},
    {2, {"contact", "add", DB, "--name", "No Customer"}},
    {2, {"contact", "list", DB}},
    {2, {"visit", "add", DB, "--customer", CID, "--method", "visit"}},
    {2, {"visit", "add", DB, "--customer", CID, "--summary", "s"}},
    {2, {"visit", "list", DB, "--customer"}},
    {2, {"due", DB, "--on"}},
    {2, {"check"}},
    {2, {"check", DB, DB}},
    {2, {"rekey", DB, "--json", "x"}},
    {2, {"init"}},
    {2, {"init", NEWDB, "--kdf-mem", "2"}},
    {2, {"init", NEWDB, "--kdf-mem", "lots"}},
    {2, {"init", NEWDB, "--kdf-passes", "0"}},
    {2, {"init", NEWDB, "--bogus"}},
    {2, {"customer", "add", DB, "--name", "X", "--kdf-mem", "8"}},
    {1, {"init", DB}},
    {1, {"init", DB, "--kdf-mem", "8", "--kdf-passes", "1"}},
    {1, {"customer", "add", DB, "--name", "X", "--grade", "Z"}},
    {1, {"customer", "add", DB, "--name", "X", "--grade", "s"}},
    {1, {"customer", "add", DB, "--name", "X", "--stage", "maybe"}},
    {1, {"customer", "add", DB, "--name", "X", "--next-due", "2026-02-30"}},
    {1, {"customer", "add", DB, "--name", "X", "--next-due", "tomorrow"}},
    {1, {"customer", "add", DB, "--name", BIG}},
    {1, {"customer", "add", DB, "--name", "X", "--needs", BIG}},
    {1, {"customer", "add", DB, "--name", "bad \xff\xfe utf-8"}},
    {1, {"customer", "add", DB, "--name", "X", "--budget", "\xc3\x28"}},
    {1, {"customer", "add", DB, "--name", ""}},
    {1, {"customer", "update", DB, CID, "--grade", "Q"}},
    {1, {"customer", "update", DB, CID, "--name", "Y", "--next-due", "2026-1-1"}},
    {1, {"customer", "update", DB, "not-an-id", "--name", "Y"}},
    {1, {"customer", "update", DB, "01234567-89ab-7def-8123-456789abcdef", "--name", "Y"}},
    {1, {"customer", "show", DB, "not-an-id"}},
    {1, {"customer", "show", DB, "01234567-89ab-7def-8123-456789abcdef"}},
    {1, {"customer", "delete", DB, "not-an-id"}},
    {1, {"customer", "delete", DB, "01234567-89ab-7def-8123-456789abcdef"}},
    {1, {"customer", "list", DB, "--stage", "maybe"}},
    {1, {"customer", "list", DB, "--grade", "Z"}},
    {1, {"contact", "add", DB, "--customer", "01234567-89ab-7def-8123-456789abcdef", "--name", "N"}},
    {1, {"contact", "add", DB, "--customer", "nope", "--name", "N"}},
    {1, {"contact", "add", DB, "--customer", CID, "--name", "N", "--phone", BIG}},
    {1, {"contact", "list", DB, "--customer", "nope"}},
    {1, {"visit", "add", DB, "--customer", "01234567-89ab-7def-8123-456789abcdef", "--method",
         "visit", "--summary", "s"}},
    {1, {"visit", "add", DB, "--customer", CID, "--method", "walk", "--summary", "s"}},
    {1, {"visit", "add", DB, "--customer", CID, "--method", "visit", "--summary", "s", "--at",
         "yesterday"}},
    {1, {"visit", "add", DB, "--customer", CID, "--method", "visit", "--summary", "s", "--at",
         "2026-02-29T10:00:00Z"}},
    {1, {"visit", "add", DB, "--customer", CID, "--method", "visit", "--summary", "s",
         "--next-due", "2026-13-01"}},
    {1, {"visit", "add", DB, "--customer", CID, "--method", "visit", "--summary", BIG}},
    {1, {"visit", "add", DB, "--customer", CID, "--method", "visit", "--summary", "\xed\xa0\x80"}},
    {1, {"visit", "add", DB, "--customer", CID, "--method", "visit", "--summary", "s", "--lat",
         "north"}},
    {1, {"visit", "list", DB, "--customer", "nope"}},
    {1, {"due", DB, "--on", "2026-13-01"}},
    {1, {"due", DB, "--on", "01/03/2026"}},
    {1, {"customer", "list", "@DIR/missing.fv"}},
};

static const char *subst(const char *a, const store *s, const char *cid, const char *newdb,
                         const char *big, char *buf, size_t cap)
{
    if (strcmp(a, DB) == 0) return s->path;
    if (strcmp(a, CID) == 0) return cid;
    if (strcmp(a, NEWDB) == 0) return newdb;
    if (strcmp(a, BIG) == 0) return big;
    if (strncmp(a, "@DIR/", 5) == 0) {
        snprintf(buf, cap, "%s/%s", s->dir, a + 5);
        return buf;
    }
    return a;
}

static void test_bad_input(void **state)
{
    (void)state;
    store s;
    store_new(&s, "cli-bad");
    char *cid = add_customer(&s, "Bad Input Co");
    char *newdb = tu_path(s.dir, "new.fv");
    char *big = malloc(FV_FIELD_MAX + 2);
    assert_non_null(big);
    memset(big, 'x', FV_FIELD_MAX + 1);
    big[FV_FIELD_MAX + 1] = '\0';

    snapshot before, after;
    snap_take(&before, s.dir);
    assert_false(file_exists(newdb));
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        const char *args[17];
        char bufs[16][512];
        size_t n = 0;
        for (; n < 16 && c->args[n] != NULL; n++)
            args[n] = subst(c->args[n], &s, cid, newdb, big, bufs[n], sizeof bufs[n]);
        args[n] = NULL;
        char what[128];
        snprintf(what, sizeof what, "bad case %zu (fv %s %s ...)", i, c->args[0],
                 c->args[1] ? c->args[1] : "");
        tu_result r = fv_run(env_ok, NULL, args);
        expect_exit(&r, c->want, what);
        if (strncmp(r.err, "fv: ", 4) != 0 || strlen(r.err) <= 5)
            fprintf(stderr, "%s: stderr is '%s'\n", what, r.err);
        assert_true(strncmp(r.err, "fv: ", 4) == 0 && strlen(r.err) > 5);
        if (c->want == 2) assert_non_null(strstr(r.err, "usage: fv"));
        assert_string_equal(r.out, "");
        assert_null(strstr(r.err, PASS));
        tu_result_free(&r);
        snap_take(&after, s.dir);
        if (!snap_equal(&before, &after, what)) fail_msg("%s changed the folder", what);
        snap_free(&after);
    }

    /* No passphrase and no terminal: exit 2, no file made or touched. */
    const char *const *nopass[] = {
        (const char *const[]){"customer", "list", s.path, NULL},
        (const char *const[]){"init", newdb, NULL},
    };
    for (size_t i = 0; i < 2; i++) {
        tu_result r = fv_run(env_none, PASS "\n", nopass[i]);
        expect_exit(&r, 2, "no passphrase");
        assert_non_null(strstr(r.err, "FV_PASSPHRASE"));
        assert_string_equal(r.out, "");
        tu_result_free(&r);
        snap_take(&after, s.dir);
        assert_true(snap_equal(&before, &after, "no passphrase"));
        snap_free(&after);
    }
    assert_false(file_exists(newdb));

    /* The store still works, with only the one customer. */
    tu_result r = FV(env_ok, "customer", "list", s.path, "--json");
    expect_exit(&r, 0, "list after bad input");
    expect_json(r.out, '[', "list after bad input");
    assert_non_null(strstr(r.out, "Bad Input Co"));
    assert_null(strstr(r.out, "\"X\""));
    tu_result_free(&r);

    snap_free(&before);
    free(big);
    free(newdb);
    free(cid);
    store_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quick_path),    cmocka_unit_test(test_marker),
        cmocka_unit_test(test_wrong_passphrase), cmocka_unit_test(test_tamper_pages),
        cmocka_unit_test(test_tamper_wal),    cmocka_unit_test(test_passwd),
        cmocka_unit_test(test_rekey),         cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
