/*
 * fuzz_fv_args.c - the `fv` command-line parser (tools/fv.c, built with
 * FV_FUZZ_PARSER: see tools/fv_fuzz.h) on hostile argument vectors.
 *
 * Input: the arguments after argv[0], separated by NUL bytes (at most 64,
 * at most 4 KiB in all).  The parser must return "run" (-1), 0 (help,
 * version) or 2 (usage error), never crash or read past an argument, and
 * never decide to run with a command line that misses its store or ID
 * (fv_fuzz_parse_args aborts then).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fv_fuzz.h"

#define MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    /* each argument in its own allocation, so reading past one is caught */
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = strdup("fv");
    size_t i = 0;
    while (size > 0 && argc <= MAX_ARGS) {
        size_t j = i;
        while (j < size && data[j] != 0) j++;
        char *a = malloc(j - i + 1);
        if (a == NULL) abort();
        memcpy(a, data + i, j - i);
        a[j - i] = '\0';
        argv[argc++] = a;
        if (j >= size) break;
        i = j + 1;
    }
    argv[argc] = NULL;
    int rc = fv_fuzz_parse_args(argc, argv);
    FZ_CHECK(rc == -1 || rc == 0 || rc == 2, "parse_args returned %d", rc);
    for (int k = 0; k < argc; k++) free(argv[k]);
    return 0;
}
