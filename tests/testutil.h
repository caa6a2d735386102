/*
 * testutil.h - shared helpers for the cmocka test programs: scratch
 * directories, running the real `fv` binary, reading files.
 */
#ifndef FV_TESTUTIL_H
#define FV_TESTUTIL_H

#include <stddef.h>

/* A fresh empty directory under $FV_TEST_TMP (or /tmp), unique per call.
 * Returns a malloc'd path (caller frees).  Aborts the test on failure. */
char *tu_mkdtemp(const char *tag);

/* Remove a directory tree (best effort). */
void tu_rmtree(const char *path);

/* Join dir and name into a malloc'd path. */
char *tu_path(const char *dir, const char *name);

typedef struct tu_result {
    int exit_code;   /* exit status, or 128+signal if killed */
    char *out;       /* captured stdout, NUL-terminated, malloc'd */
    char *err;       /* captured stderr, NUL-terminated, malloc'd */
} tu_result;

/* Run argv (argv[0] a path) with extra environment entries ("K=V", NULL
 * terminated; may be NULL; a bare "K" unsets K) and optional stdin text.
 * Waits for it. */
tu_result tu_run(const char *const argv[], const char *const env[],
                 const char *stdin_text);
void tu_result_free(tu_result *r);

/* Read a whole file (malloc'd, *len set); NULL if it does not exist. */
unsigned char *tu_read_file(const char *path, size_t *len);
/* Overwrite a whole file. */
void tu_write_file(const char *path, const unsigned char *buf, size_t len);
/* An fv_write_fn writing to the FILE * in ctx. */
int tu_fwrite_fn(void *ctx, const unsigned char *buf, size_t len);
/* Does needle occur anywhere in any regular file of dir (tree: or of its
 * subdirectories, recursively)? */
int tu_dir_contains(const char *dir, const void *needle, size_t needle_len);
int tu_tree_contains(const char *dir, const void *needle, size_t needle_len);

#endif
