/*
 * test_cli_sync.c - the sync commands of `fv`, exactly as acceptance checks
 * run them: changes export/import between two stores through a file,
 * state-hash, conflicts and conflicts resolve; and their bad inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *const env[] = {"FV_PASSPHRASE=sync test", NULL};

static tu_result fv(const char *const *args)
{
    const char *argv[24];
    size_t n = 0;
    argv[n++] = FV_BIN;
    for (size_t i = 0; args[i] != NULL && n < 23; i++) argv[n++] = args[i];
    argv[n] = NULL;
    return tu_run(argv, env, NULL);
}
#define FV(...) fv((const char *const[]){__VA_ARGS__, NULL})

/* Run, expect exit code want, return stdout without the trailing newline
 * (caller frees). */
static char *expect(int want, tu_result r)
{
    if (r.exit_code != want)
        fprintf(stderr, "exit %d (want %d)\nstdout: %s\nstderr: %s\n", r.exit_code, want, r.out,
                r.err);
    assert_int_equal(r.exit_code, want);
    if (want != 0) {
        assert_true(strncmp(r.err, "fv: ", 4) == 0 || strstr(r.err, "usage") != NULL);
    }
    char *out = r.out;
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '\n') out[--n] = '\0';
    free(r.err);
    return out;
}

typedef struct fx {
    char *dir, *a, *b, *set;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("clisync");
    f->a = tu_path(f->dir, "a.fv");
    f->b = tu_path(f->dir, "b.fv");
    f->set = tu_path(f->dir, "a.fvc");
    free(expect(0, FV("init", f->a, "--kdf-mem", "8", "--kdf-passes", "1")));
    free(expect(0, FV("init", f->b, "--kdf-mem", "8", "--kdf-passes", "1")));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->a);
    free(f->b);
    free(f->set);
    free(f);
    return 0;
}

static void sync_both(fx *f)
{
    char *fa = tu_path(f->dir, "x.fvc"), *fb = tu_path(f->dir, "y.fvc");
    free(expect(0, FV("changes", "export", f->a, fa)));
    free(expect(0, FV("changes", "export", f->b, fb)));
    free(expect(0, FV("changes", "import", f->b, fa)));
    free(expect(0, FV("changes", "import", f->a, fb)));
    free(fa);
    free(fb);
}

static void test_export_import_state_hash(void **state)
{
    fx *f = *state;
    char *id = expect(0, FV("customer", "add", f->a, "--name", "Acme", "--grade", "A"));
    free(expect(0, FV("visit", "add", f->a, "--customer", id, "--method", "visit", "--summary",
                      "met")));
    char *count = expect(0, FV("changes", "export", f->a, f->set));
    /* name, grade, owner; customer_id, method, summary, at */
    assert_string_equal(count, "7");
    free(count);
    char *res = expect(0, FV("changes", "import", f->b, f->set));
    assert_string_equal(res, "applied 7, already known 0, conflicts 0");
    free(res);
    res = expect(0, FV("changes", "import", f->b, f->set)); /* idempotent */
    assert_string_equal(res, "applied 0, already known 7, conflicts 0");
    free(res);
    res = expect(0, FV("--json", "changes", "import", f->b, f->set));
    assert_non_null(strstr(res, "\"known\": 7"));
    free(res);
    char *ha = expect(0, FV("state-hash", f->a)), *hb = expect(0, FV("state-hash", f->b));
    assert_int_equal(strlen(ha), 64);
    assert_string_equal(ha, hb);
    free(hb);
    char *name = expect(0, FV("customer", "show", f->b, id));
    assert_non_null(strstr(name, "Acme"));
    free(name);
    /* --all: the full state, into a third store */
    char *c = tu_path(f->dir, "c.fv"), *all = tu_path(f->dir, "all.fvc");
    free(expect(0, FV("init", c, "--kdf-mem", "8", "--kdf-passes", "1")));
    count = expect(0, FV("changes", "export", f->b, all, "--all"));
    assert_string_equal(count, "7");
    free(count);
    free(expect(0, FV("changes", "import", c, all)));
    char *hc = expect(0, FV("state-hash", c));
    assert_string_equal(ha, hc);
    free(hc);
    free(ha);
    free(c);
    free(all);
    free(id);
}

static void test_conflict_and_resolve(void **state)
{
    fx *f = *state;
    char *id = expect(0, FV("customer", "add", f->a, "--name", "Acme", "--stage", "lead"));
    sync_both(f);
    free(expect(0, FV("customer", "update", f->a, id, "--stage", "won")));
    free(expect(0, FV("customer", "update", f->b, id, "--stage", "lost")));
    sync_both(f);
    char *ja = expect(0, FV("conflicts", f->a, "--json"));
    char *jb = expect(0, FV("--json", "conflicts", f->b));
    assert_non_null(strstr(ja, "\"field\": \"stage\""));
    /* the same conflict id on both */
    const char *p = strstr(ja, "\"id\": \"");
    assert_non_null(p);
    char cid[33];
    memcpy(cid, p + 7, 32);
    cid[32] = '\0';
    assert_non_null(strstr(jb, cid));
    free(ja);
    free(jb);
    char *text = expect(0, FV("conflicts", f->a));
    assert_non_null(strstr(text, cid));
    assert_non_null(strstr(text, "<- current"));
    free(text);
    /* usage errors: exit 2, nothing changed */
    free(expect(2, FV("conflicts", "resolve", f->a, cid)));
    free(expect(2, FV("conflicts", "resolve", f->a, cid, "--keep", "both")));
    free(expect(2, FV("conflicts", "resolve", f->a, "--keep", "mine")));
    free(expect(1, FV("conflicts", "resolve", f->a, "0123", "--keep", "mine")));
    free(expect(0, FV("conflicts", "resolve", f->a, cid, "--keep", "mine")));
    free(expect(1, FV("conflicts", "resolve", f->a, cid, "--keep", "mine"))); /* already */
    sync_both(f);
    char *none = expect(0, FV("conflicts", f->b));
    assert_string_equal(none, "no conflicts");
    free(none);
    char *ha = expect(0, FV("state-hash", f->a)), *hb = expect(0, FV("state-hash", f->b));
    assert_string_equal(ha, hb);
    free(ha);
    free(hb);
    char *sa = expect(0, FV("--json", "customer", "show", f->b, id));
    assert_non_null(strstr(sa, "\"stage\": \"won\""));
    free(sa);
    free(id);
}

static void test_bad_change_sets(void **state)
{
    fx *f = *state;
    free(expect(0, FV("customer", "add", f->a, "--name", "Acme")));
    free(expect(0, FV("changes", "export", f->a, f->set)));
    char *before = expect(0, FV("state-hash", f->b));
    size_t len;
    unsigned char *b = tu_read_file(f->set, &len);
    char *bad = tu_path(f->dir, "bad.fvc");
    /* cut short, garbage, empty */
    tu_write_file(bad, b, len - 3);
    char *out = expect(1, FV("changes", "import", f->b, bad));
    free(out);
    tu_write_file(bad, (const unsigned char *)"this is not protobuf at all", 27);
    free(expect(1, FV("changes", "import", f->b, bad)));
    tu_write_file(bad, b, 0);
    free(expect(1, FV("changes", "import", f->b, bad)));
    char *none = tu_path(f->dir, "missing.fvc");
    free(expect(1, FV("changes", "import", f->b, none)));
    char *after = expect(0, FV("state-hash", f->b));
    assert_string_equal(before, after);
    /* usage */
    free(expect(2, FV("changes", "import", f->b)));
    free(expect(2, FV("changes", "export", f->a)));
    free(expect(2, FV("changes", "export", f->a, bad, "--all=yes")));
    free(expect(2, FV("changes", "frobnicate", f->a, bad)));
    free(expect(2, FV("state-hash")));
    /* a file that cannot be written: exit 1, nothing left behind */
    char *nodir = tu_path(f->dir, "no/such/dir.fvc");
    free(expect(1, FV("changes", "export", f->a, nodir)));
    free(nodir);
    free(none);
    free(before);
    free(after);
    free(bad);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_export_import_state_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_and_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_change_sets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
