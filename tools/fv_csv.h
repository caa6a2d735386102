/*
 * fv_csv.h - spreadsheet import and export for the fv command (fv import,
 * fv export ... --csv): a streaming RFC 4180 reader with named bounds, a
 * CSV cell writer, the value normalisers the playbooks need (dates, enum
 * labels in Chinese and English, customer-name keys for duplicates), and
 * the two commands built on them.  Uses the public API (fieldvault.h) only.
 *
 * The reader holds one row at a time: a cell is at most FV_FIELD_MAX bytes
 * and a row at most FVCSV_COLUMNS_MAX cells, so it never holds more than
 * about 1 MiB whatever the file.  Malformed input (an unterminated quote, a
 * NUL byte, bytes that are not UTF-8, a cell or row over its bound) is an
 * error naming the physical line, never undefined behaviour: the security
 * model is nanopb's (first error wins; the reader stays failed).
 *
 * Not thread-safe; one reader per thread.
 */
#ifndef FV_CSV_H
#define FV_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "fieldvault.h"
#include "fv_json.h"

#define FVCSV_COLUMNS_MAX 256 /* cells in one row (the header included) */

/* ---- reader ---- */

typedef struct fvcsv_reader fvcsv_reader;

/* A reader over f (borrowed: read with getc, never closed here).  NULL when
 * out of memory.  A UTF-8 byte-order mark at the start is skipped. */
fvcsv_reader *fvcsv_reader_new(FILE *f);
/* Wipes the row buffer (cells may hold protected values) and frees.
 * NULL-safe. */
void fvcsv_reader_free(fvcsv_reader *r);

/* Read the next row: 1 when a row was read, 0 at the end of the input, -1
 * when the input is malformed or unreadable (fvcsv_reader_error says what,
 * with the line; every later call returns -1 too).  A blank line is a row
 * of one empty cell. */
int fvcsv_read_row(fvcsv_reader *r);

/* The current row: its number of cells, cell i (NUL-terminated, valid UTF-8
 * without NUL bytes; owned by the reader, writable in place, valid until
 * the next fvcsv_read_row), and the physical line (from 1) where it starts:
 * a line break inside a quoted cell counts, as do CRLF, LF and a lone CR. */
size_t fvcsv_row_cells(const fvcsv_reader *r);
char *fvcsv_row_cell(fvcsv_reader *r, size_t i);
unsigned long fvcsv_row_line(const fvcsv_reader *r);
/* The message of the error that failed the reader ("line 7: ...").  Owned
 * by the reader. */
const char *fvcsv_reader_error(const fvcsv_reader *r);

/* ---- writer ---- */

/* One cell of a row: a comma first unless it is the row's first cell, the
 * value quoted (quotes doubled) when it holds a comma, quote, CR or LF or
 * starts with U+FEFF (a BOM to a reader at the start of a file).
 * value NULL is an empty cell.  0, or -1 on an output error. */
int fvcsv_put_cell(FILE *f, const char *value, int first);
/* The row's end: CRLF, as RFC 4180 has it. */
int fvcsv_end_row(FILE *f);

/* ---- normalisers ----
 * These belong in the library in the end (see the notes in fv_csv.c); they
 * are pure functions on UTF-8 text. */

/* Trim white space (ASCII, U+00A0, U+3000, U+FEFF) from both ends of s in
 * place; returns the first kept byte. */
char *fvcsv_trim(char *s);

/* A date written YYYY-MM-DD, YYYY/M/D, YYYY.M.D or YYYY年M月D日 (号 too),
 * with one- or two-digit month and day, to YYYY-MM-DD in out; *rest gets
 * what follows the date (a time, say).  1 when converted, 0 when s is not
 * one of these forms, -1 when it is day and month with the year last
 * (05/03/2024: ambiguous, refused).  The calendar is not checked here: the
 * library's setter does that. */
int fvcsv_norm_date(const char *s, char out[11], const char **rest);

/* A date field's value: a date form above, alone or followed by a midnight
 * time (spreadsheets add " 0:00" to date cells).  Same returns. */
int fvcsv_norm_date_value(const char *s, char out[11]);

/* A time field's value: the date part as above and a one-digit hour padded
 * ("2024/3/5 9:30" -> "2024-03-05T09:30"), the rest kept for the library's
 * ISO 8601 parser.  1 converted into out (cap bytes), 0 not a known form
 * (use s as it is), -1 ambiguous date. */
int fvcsv_norm_time(const char *s, char *out, size_t cap);

/* The canonical value of an enum label of field (Chinese labels of the
 * playbooks: S级, 潜在, 电话...; full-width letters folded; ASCII case
 * ignored), or NULL when value is no known label. */
const char *fvcsv_enum_label(const char *field, const char *value);

/* The key under which two customer names are the same customer: the
 * library's (fv_normalize with FV_NORM_NAME: white space trimmed and inner
 * runs collapsed to one space, full-width ASCII folded to half-width, ASCII
 * letters lower-cased).  Malloc'd (caller frees); NULL when out of memory.
 * "" for a blank name. */
char *fvcsv_name_key(const char *name);

/* ---- the commands ---- */

/* One of fv's option names for a field ("decision-chain" -> decision_chain):
 * a CSV column may be named either way. */
typedef struct fvcsv_alias {
    const char *name;
    const char *field;
} fvcsv_alias;

typedef struct fvcsv_import_args {
    const char *table;           /* "customer", "contact" or "visit" */
    const char *path;            /* the CSV file */
    const char *const *maps;     /* nmaps "COL=field" (field empty: leave COL out) */
    size_t nmaps;
    const fvcsv_alias *aliases;  /* naliases option names of the table's fields */
    size_t naliases;
    int dry_run;                 /* check everything, write nothing */
} fvcsv_import_args;

/*
 * fv import: read a.path, map its header to the table's fields, build and
 * check every row through the API, and insert the accepted ones in one
 * batch (rolled back for a dry run).  The report goes to out (text), or to
 * j when j is not NULL (one JSON object).  Returns fv's exit code: 0 when no
 * row was rejected, 1 when some were (then *reported = 1: the report was
 * written and the accepted rows imported) or on a failure (nothing written,
 * message on stderr), 2 for a usage error (message on stderr; the caller
 * prints the synopsis), 3-5 for key, corrupt and access failures.
 */
int fvcsv_import(fv_db *db, const fvcsv_import_args *a, FILE *out, fvj_writer *j,
                 int *reported);

/*
 * fv export ... --csv: every row of table the user may read, as CSV with a
 * header of "id" and the table's field names; a field the user may not read
 * is an empty cell.  To path when not NULL (written whole or not at all: a
 * temporary file beside it, synced, renamed; mode 0600), and then a
 * one-line summary (or, with j, {"file":..,"count":..}) to out; else the CSV
 * itself to out.  Returns fv's exit code.
 */
int fvcsv_export(fv_db *db, const char *table, const char *path, FILE *out, fvj_writer *j);

#endif /* FV_CSV_H */
