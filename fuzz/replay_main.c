/*
 * replay_main.c - a main() for the fuzz harnesses without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named on the command line (a
 * directory means every regular file in it, in name order; a directory
 * that does not exist is skipped).  The normal test build links each
 * harness with this file and replays the committed corpora and regression
 * inputs under ctest (fuzz/replay.cmake), so a harness keeps building and
 * every input ever committed keeps passing, with or without clang.
 *
 * Exit status 0 when every input ran (a finding aborts the process), 1 if
 * no input was found at all, 2 if a file could not be read.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_common.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return -1;
    size_t cap = 1 << 16, n = 0, k;
    unsigned char *b = malloc(cap);
    while (b != NULL && (k = fread(b + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) b = realloc(b, cap *= 2);
    }
    fclose(f);
    if (b == NULL) return -1;
    /* a copy of exactly n bytes, so a read past the input is caught */
    unsigned char *exact = malloc(n > 0 ? n : 1);
    if (exact == NULL) {
        free(b);
        return -1;
    }
    if (n > 0) memcpy(exact, b, n);
    free(b);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    /* the report goes to the real stderr: keep a handle before the harness
     * points the stream at /dev/null */
    FILE *out = fdopen(dup(2), "w");
    if (out == NULL) out = stderr;
    LLVMFuzzerInitialize(&argc, &argv);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t runs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue;
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) != 0) {
                fprintf(out, "replay: cannot read %s\n", argv[i]);
                return 2;
            }
            runs++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (d == NULL) continue;
        char **names = NULL;
        size_t nn = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            names = realloc(names, (nn + 1) * sizeof *names);
            size_t len = strlen(argv[i]) + strlen(e->d_name) + 2;
            names[nn] = malloc(len);
            snprintf(names[nn], len, "%s/%s", argv[i], e->d_name);
            nn++;
        }
        closedir(d);
        if (nn > 0) qsort(names, nn, sizeof *names, cmp);
        for (size_t k = 0; k < nn; k++) {
            struct stat fs;
            if (stat(names[k], &fs) == 0 && S_ISREG(fs.st_mode)) {
                if (run_file(names[k]) != 0) {
                    fprintf(out, "replay: cannot read %s\n", names[k]);
                    return 2;
                }
                runs++;
            }
            free(names[k]);
        }
        free(names);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    fprintf(out, "replay %s: %zu inputs, no finding (%.0f ms)\n", argv[0], runs, ms);
    if (out != stderr) fclose(out);
    return runs > 0 ? 0 : 1;
}
