/*
 * fv_json.h - a small streaming JSON writer for the fv command's --json
 * output.  One writer produces one document: objects, arrays, strings
 * (every control character, quote and backslash escaped; UTF-8 passed
 * through, invalid bytes replaced by U+FFFD so the output is always valid
 * JSON), numbers, booleans and null.
 *
 * Misuse (a value where a key is due, unbalanced ends, nesting deeper than
 * FVJ_DEPTH_MAX) is not undefined behaviour: it marks the writer failed and
 * fvj_finish() reports it.  Output errors (a full disk, a closed pipe) are
 * reported the same way.  Not thread-safe; one writer per thread.
 */
#ifndef FV_JSON_H
#define FV_JSON_H

#include <stdint.h>
#include <stdio.h>

#define FVJ_DEPTH_MAX 16

typedef struct fvj_writer {
    FILE *out;         /* borrowed; not closed by the writer */
    int pretty;        /* FVJ_COMPACT, FVJ_PRETTY or FVJ_LINE */
    int depth;         /* open containers */
    int failed;        /* misuse or output error seen */
    int key_pending;   /* a key was written, its value is due */
    int done;          /* the top-level value is complete */
    struct {
        char kind;     /* '{' or '[' */
        int count;     /* members written so far */
    } stack[FVJ_DEPTH_MAX];
} fvj_writer;

/* Layouts: no whitespace at all; a newline and a two-space indent per
 * level; or one line with a space after each ':' and ',' ({"id": "x",
 * "ok": true}), for results a shell script reads line by line. */
#define FVJ_COMPACT 0
#define FVJ_PRETTY 1
#define FVJ_LINE 2

/* Start a document on out (borrowed for the writer's life). */
void fvj_init(fvj_writer *w, FILE *out, int pretty);
/* Change the layout; only before the first value. */
void fvj_set_layout(fvj_writer *w, int pretty);

void fvj_begin_object(fvj_writer *w);
void fvj_end_object(fvj_writer *w);
void fvj_begin_array(fvj_writer *w);
void fvj_end_array(fvj_writer *w);

/* Inside an object: the next member's key (then exactly one value). */
void fvj_key(fvj_writer *w, const char *key);

/* Values.  fvj_string(w, NULL) writes null. */
void fvj_string(fvj_writer *w, const char *s);
void fvj_string_n(fvj_writer *w, const char *s, size_t len);
/* A finite double; NaN and infinities are written as null. */
void fvj_number(fvj_writer *w, double v);
void fvj_int(fvj_writer *w, int64_t v);
void fvj_bool(fvj_writer *w, int v);
void fvj_null(fvj_writer *w);

/* Convenience: key then string value (NULL value writes null). */
void fvj_member_string(fvj_writer *w, const char *key, const char *value);

/* End the document: writes the final newline and flushes.  Returns 0 when
 * one complete, well-formed document was written without an output error,
 * -1 otherwise. */
int fvj_finish(fvj_writer *w);

#endif /* FV_JSON_H */
