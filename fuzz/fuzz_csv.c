/*
 * fuzz_csv.c - fv import's CSV reader (tools/fv_csv.c) on hostile bytes,
 * and the normalisers on every cell it returns.
 *
 * Input: the bytes of a CSV file.  The reader must never crash, read out of
 * bounds or hold more than its bounds, and what it returns must keep its
 * contract:
 *  - a row has 1..FVCSV_COLUMNS_MAX cells, each at most FV_FIELD_MAX bytes
 *    of valid UTF-8 without NUL; rows start on non-decreasing lines;
 *  - an error has a "line N: " message and stays (every later call fails);
 *  - the writer and the reader agree: every row written back with
 *    fvcsv_put_cell/fvcsv_end_row reads back as the same cells;
 *  - the normalisers stay in their buffers: a date is 10 characters, a name
 *    key is no longer than its name and is valid UTF-8.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fv_csv.h"

#define MAX_ROWS 64 /* rows compared after the round trip */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    return 0;
}

static int utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0 || i + len > n) return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) return 0;
        i += len;
    }
    return 1;
}

static void check_normalisers(const char *cell)
{
    char copy[FV_FIELD_MAX + 1], out[FV_FIELD_MAX + 32], date[11];
    const char *rest;
    snprintf(copy, sizeof copy, "%s", cell);
    const char *t = fvcsv_trim(copy);
    FZ_CHECK(strlen(t) <= strlen(cell), "trim grew a cell");
    if (fvcsv_norm_date(t, date, &rest) == 1)
        FZ_CHECK(strlen(date) == 10 && rest >= t && rest <= t + strlen(t), "bad date '%s'", date);
    (void)fvcsv_norm_date_value(t, date);
    if (fvcsv_norm_time(t, out, sizeof out) == 1) FZ_CHECK(strlen(out) < sizeof out, "time overflow");
    (void)fvcsv_enum_label("grade", t);
    (void)fvcsv_enum_label("stage", t);
    char *key = fvcsv_name_key(t);
    FZ_CHECK(key != NULL, "out of memory");
    FZ_CHECK(strlen(key) <= strlen(t), "the name key grew");
    FZ_CHECK(utf8_ok((const unsigned char *)key, strlen(key)), "the name key is not UTF-8");
    free(key);
}

/* The cells of the first MAX_ROWS rows, NUL-separated, and their counts. */
typedef struct rows {
    char *buf;
    size_t len;
    FILE *f;
    size_t n, cells[MAX_ROWS];
} rows;

/* Read the written rows back and compare them with what was first read. */
static void check_round_trip(rows *got, char *csv, size_t csv_len)
{
    FILE *again = fmemopen(csv, csv_len, "rb");
    FZ_CHECK(again != NULL, "fmemopen");
    fvcsv_reader *r2 = fvcsv_reader_new(again);
    FZ_CHECK(r2 != NULL, "out of memory");
    const char *want = got->buf;
    for (size_t k = 0; k < got->n; k++) {
        FZ_CHECK(fvcsv_read_row(r2) == 1, "row %zu lost: %s", k, fvcsv_reader_error(r2));
        FZ_CHECK(fvcsv_row_cells(r2) == got->cells[k], "row %zu: %zu cells, was %zu", k,
                 fvcsv_row_cells(r2), got->cells[k]);
        for (size_t i = 0; i < got->cells[k]; i++) {
            FZ_CHECK(strcmp(fvcsv_row_cell(r2, i), want) == 0, "row %zu cell %zu changed", k, i);
            want += strlen(want) + 1;
        }
    }
    fvcsv_reader_free(r2);
    fclose(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > (1u << 20)) return 0;
    FILE *in = fmemopen((void *)data, size, "rb");
    FZ_CHECK(in != NULL, "fmemopen");
    fvcsv_reader *r = fvcsv_reader_new(in);
    FZ_CHECK(r != NULL, "out of memory");
    rows got = {0};
    got.f = open_memstream(&got.buf, &got.len);
    FZ_CHECK(got.f != NULL, "open_memstream");
    char *csv = NULL;
    size_t csv_len = 0;
    FILE *w = open_memstream(&csv, &csv_len);
    FZ_CHECK(w != NULL, "open_memstream");
    unsigned long last_line = 0;
    int rc;
    while ((rc = fvcsv_read_row(r)) == 1) {
        size_t n = fvcsv_row_cells(r);
        FZ_CHECK(n >= 1 && n <= FVCSV_COLUMNS_MAX, "%zu cells", n);
        FZ_CHECK(fvcsv_row_line(r) >= last_line && fvcsv_row_line(r) >= 1, "line went back");
        last_line = fvcsv_row_line(r);
        for (size_t i = 0; i < n; i++) {
            const char *c = fvcsv_row_cell(r, i);
            size_t len = strlen(c);
            FZ_CHECK(len <= FV_FIELD_MAX, "a cell of %zu bytes", len);
            FZ_CHECK(utf8_ok((const unsigned char *)c, len), "a cell is not UTF-8");
            FZ_CHECK(fvcsv_put_cell(w, c, i == 0) == 0, "write");
            if (got.n < MAX_ROWS) fwrite(c, 1, len + 1, got.f);
        }
        FZ_CHECK(fvcsv_end_row(w) == 0, "write");
        if (got.n < MAX_ROWS) got.cells[got.n++] = n;
        for (size_t i = 0; i < n && got.n <= 4; i++) check_normalisers(fvcsv_row_cell(r, i));
    }
    if (rc < 0) {
        FZ_CHECK(strncmp(fvcsv_reader_error(r), "line ", 5) == 0, "message '%s'",
                 fvcsv_reader_error(r));
        FZ_CHECK(fvcsv_read_row(r) == -1, "a failed reader recovered");
    } else {
        FZ_CHECK(fvcsv_read_row(r) == 0, "rows after the end");
    }
    fclose(w);
    fclose(got.f);
    fvcsv_reader_free(r);
    fclose(in);
    if (rc == 0 && csv_len > 0) check_round_trip(&got, csv, csv_len);
    free(got.buf);
    free(csv);
    return 0;
}
