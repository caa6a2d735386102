/*
 * test_help.c - `fv help` and every command's `--help`, and every example
 * those pages print, run as a reader would copy them.
 *
 *  - pages: the commands are read from `fv help` (so a command added later
 *    is checked too); for each, `fv WORDS --help` exits 0 with no store and
 *    no passphrase, and prints its synopsis, a description, its options and
 *    at least one example; `fv help WORDS` prints the same page;
 *  - examples: every line starting with "  $ " in every page, in the order
 *    `fv help` lists the commands, is run in one bash session (so the
 *    first example's `export FV_PASSPHRASE=...` holds for the rest) in an
 *    empty scratch directory, with fv on PATH and, for enroll and sync, a
 *    real fvd on loopback ($FV_SERVER) and a one-time code from `fvd admin
 *    add-user` ($FV_CODE).  Each example must exit 0 (pipefail on); the
 *    first that does not fails the test, named with its command.
 *
 * Without fvd (FV_BUILD_SERVER=OFF) the examples are skipped; the pages
 * are still checked.
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

#include "testutil.h"
#ifdef FVD_BIN
#include "fvdproc.h"
#endif

#define CMDS_MAX 128
#define WORDS_MAX 64

typedef struct cmdlist {
    size_t n;
    char words[CMDS_MAX][WORDS_MAX];
} cmdlist;

static const char *const env_clean[] = {"FV_PASSPHRASE", "FV_NEW_PASSPHRASE", "FV_USER", NULL};

/* Run fv with argv words split on spaces, then extra arguments. */
static tu_result fv_words(const char *words, const char *const *extra)
{
    char buf[WORDS_MAX];
    snprintf(buf, sizeof buf, "%s", words);
    const char *argv[16];
    size_t n = 0;
    argv[n++] = FV_BIN;
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w != NULL && n < 8;
         w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 15; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    return tu_run(argv, env_clean, NULL);
}

/* The commands `fv help` lists: the words of each "  fv WORDS DB ..." line. */
static void list_commands(cmdlist *cl)
{
    const char *argv[] = {FV_BIN, "help", NULL};
    tu_result r = tu_run(argv, env_clean, NULL);
    assert_int_equal(r.exit_code, 0);
    memset(cl, 0, sizeof *cl);
    for (char *save = NULL, *line = strtok_r(r.out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "  fv ", 5) != 0 || line[5] < 'a' || line[5] > 'z') continue;
        char words[WORDS_MAX] = "";
        size_t len = 0;
        const char *p = line + 5;
        while (*p >= 'a' && *p <= 'z') { /* lowercase words up to DB */
            const char *end = strchr(p, ' ');
            size_t wl = end ? (size_t)(end - p) : strlen(p);
            if (len + wl + 2 >= sizeof words) break;
            if (len > 0) words[len++] = ' ';
            memcpy(words + len, p, wl);
            len += wl;
            words[len] = '\0';
            p = end ? end + 1 : p + wl;
        }
        assert_true(len > 0);
        assert_true(cl->n < CMDS_MAX);
        snprintf(cl->words[cl->n++], WORDS_MAX, "%s", words);
    }
    tu_result_free(&r);
    assert_true(cl->n >= 27); /* the commands of issue 10, at least */
}

/* Every command has a full page, printed without a store or passphrase. */
static void test_every_command_has_help(void **state)
{
    (void)state;
    cmdlist cl;
    list_commands(&cl);
    for (size_t i = 0; i < cl.n; i++) {
        tu_result r = fv_words(cl.words[i], (const char *const[]){"--help", NULL});
        char usage[WORDS_MAX + 16];
        snprintf(usage, sizeof usage, "usage: fv %s ", cl.words[i]);
        int ok = r.exit_code == 0 && strncmp(r.out, usage, strlen(usage)) == 0 &&
                 strstr(r.out, "\nOptions:\n") != NULL &&
                 strstr(r.out, "\nExamples:\n  ") != NULL && strstr(r.out, "\n  $ ") != NULL &&
                 r.err[0] == '\0';
        if (!ok)
            fprintf(stderr, "fv %s --help: exit %d, not a full page:\n%s\n%s\n", cl.words[i],
                    r.exit_code, r.out, r.err);
        assert_true(ok);
        /* fv help WORDS: the same page */
        char words[WORDS_MAX + 8];
        snprintf(words, sizeof words, "help %s", cl.words[i]);
        tu_result h = fv_words(words, NULL);
        assert_int_equal(h.exit_code, 0);
        assert_string_equal(h.out, r.out);
        tu_result_free(&h);
        tu_result_free(&r);
    }
    /* --help wins over everything else on the line: no store is opened */
    tu_result r = fv_words("customer add", (const char *const[]){"no-such.fv", "--help", NULL});
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "Examples:"));
    tu_result_free(&r);
    r = fv_words("help no-such-command", NULL);
    assert_int_equal(r.exit_code, 2);
    tu_result_free(&r);
}

/* Append the page's "  $ " lines to the script, each followed by a check. */
static size_t add_examples(FILE *script, const char *words, size_t first)
{
    tu_result r = fv_words(words, (const char *const[]){"--help", NULL});
    assert_int_equal(r.exit_code, 0);
    size_t n = first;
    for (char *save = NULL, *line = strtok_r(r.out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "  $ ", 4) != 0) continue;
        n++;
        fprintf(script, "echo '== example %zu (fv %s)' >&2\n%s\n", n, words, line + 4);
        fprintf(script,
                "rc=$?; if [ $rc -ne 0 ]; then"
                " echo \"EXAMPLE %zu FAILED (exit $rc): fv %s\" >&2; exit 1; fi\n",
                n, words);
    }
    tu_result_free(&r);
    return n;
}

#ifdef FVD_BIN
/* The fvd of test_examples_run, stopped by its teardown even when an
 * assertion ends the test early. */
static fvdp_server server;

static int stop_server(void **state)
{
    (void)state;
    fvdp_kill(&server, SIGTERM);
    return 0;
}
#endif

static void test_examples_run(void **state)
{
    (void)state;
#ifndef FVD_BIN
    skip();
#else
    char *dir = tu_mkdtemp("help-examples");
    char *work = tu_path(dir, "work");
    assert_int_equal(mkdir(work, 0700), 0);

    fvdp_backend b;
    fvdp_server *sp = &server;
    memset(&b, 0, sizeof b);
    memset(sp, 0, sizeof *sp);
    b.fvd_bin = FVD_BIN;
    b.name = "sqlite";
    snprintf(b.data, sizeof b.data, "%s/fvd-data", dir);
    snprintf(sp->log, sizeof sp->log, "%s/fvd.log", dir);
    assert_int_equal(fvdp_start(&b, sp, 0), 0);
    char *code = fvdp_add_user(&b, "ana", "rep", "north");
    assert_non_null(code);

    cmdlist cl;
    list_commands(&cl);
    char *path = tu_path(dir, "examples.sh");
    FILE *script = fopen(path, "w");
    assert_non_null(script);
    char bindir[512];
    snprintf(bindir, sizeof bindir, "%s", FV_BIN);
    char *slash = strrchr(bindir, '/');
    assert_non_null(slash);
    *slash = '\0';
    fprintf(script, "set -o pipefail\ncd '%s' || exit 1\nexport PATH='%s':\"$PATH\"\n"
                    "export FV_SERVER='%s' FV_CODE='%s'\n"
                    "unset FV_PASSPHRASE FV_NEW_PASSPHRASE FV_USER\n",
            work, bindir, sp->base, code);
    size_t n = 0;
    for (size_t i = 0; i < cl.n; i++) n = add_examples(script, cl.words[i], n);
    fprintf(script, "echo \"== all %zu examples passed\" >&2\n", n);
    fclose(script);
    assert_true(n >= 50);

    const char *argv[] = {"/bin/bash", path, NULL};
    tu_result r = tu_run(argv, NULL, NULL);
    if (r.exit_code != 0) {
        /* the failing example's output is at the end of stderr */
        size_t len = strlen(r.err);
        fprintf(stderr, "examples: exit %d; the end of their output:\n%s\n", r.exit_code,
                r.err + (len > 4000 ? len - 4000 : 0));
        fvdp_log_tail(sp, 20);
    }
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.err, "examples passed"));
    tu_result_free(&r);

    stop_server(NULL);
    free(code);
    free(path);
    tu_rmtree(dir);
    free(work);
    free(dir);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_has_help),
#ifdef FVD_BIN
        cmocka_unit_test_teardown(test_examples_run, stop_server),
#else
        cmocka_unit_test(test_examples_run),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
