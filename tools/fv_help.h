/*
 * fv_help.h - the per-command help pages of fv (`fv COMMAND --help`,
 * `fv help COMMAND`): a description, the options and what they do, and
 * examples, keyed by the command's words ("customer add", "sync").
 *
 * Examples are printed as lines that start with "  $ " (a command to type)
 * or "  # " (what the next command does).  They are written to work when
 * copied in order, in one shell, into an empty directory: the first one
 * (fv init's) sets FV_PASSPHRASE and creates shop.fv, and later ones
 * obtain ids with shell substitution.  enroll's and sync's need a server:
 * they use $FV_SERVER and $FV_CODE.  tests/test_help.c runs every one.
 */
#ifndef FV_HELP_H
#define FV_HELP_H

#include <stdio.h>

typedef struct fvh_page {
    const char *words;       /* "customer add", "init" */
    const char *description; /* one paragraph, wrapped, ends with a newline */
    const char *options;     /* "  --opt VALUE   what it does\n" lines; NULL: none */
    const char *examples;    /* "  # ...\n  $ fv ...\n" lines */
} fvh_page;

/* The page of the command named by words, or NULL.  Static storage. */
const fvh_page *fvh_find(const char *words);

/* Print a command's help: its synopsis (after "fv "), then its page, or
 * the one-line summary when it has none.  Returns 0, or -1 when the
 * command has no page. */
int fvh_print(FILE *f, const char *words, const char *synopsis, const char *summary);

#endif /* FV_HELP_H */
