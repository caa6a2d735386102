/*
 * fv_report.h - `fv report`: a month's figures computed on the device from
 * what its user can see (the records API, so access control applies), as
 * text (with bar charts on a terminal) or one JSON document.
 */
#ifndef FV_REPORT_H
#define FV_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fieldvault.h"
#include "fv_json.h"

/* "YYYY-MM" (years 1970-9999) into *year, *month: 0, or -1 if malformed. */
int fvr_month_parse(const char *s, int *year, int *month);

/*
 * Compute the report of month (year, month) on db and write it: as one
 * JSON document through j when j is not NULL, else as text to f, with bar
 * charts when chart is set (a terminal: UTF-8 block characters).  now_ms
 * (milliseconds since the epoch, UTC) decides "today" for the overdue
 * follow-ups.  Returns FV_OK, or the status of the library call that
 * failed (its message is on db); nothing complete is written then.
 */
fv_status fvr_report(fv_db *db, int year, int month, int64_t now_ms, FILE *f, fvj_writer *j,
                     int chart);

/* A horizontal bar of width cells for value out of max, in eighths of a
 * cell (U+2588 and U+258F..U+2589), padded with spaces to width cells.
 * buf gets at most cap bytes (3 per cell, plus the NUL, is enough). */
void fvr_bar(uint64_t value, uint64_t max, size_t width, char *buf, size_t cap);

#endif /* FV_REPORT_H */
