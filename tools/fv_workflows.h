/*
 * fv_workflows.h - the output of fv's workflow commands (issue 9): the
 * grade review (`fv customer grade`, `fv customer proposals`), complaints
 * (`fv complaint ...`, `fv complaints`) and the important dates of `fv
 * due`.  fv.c parses the command line and calls these; each writes text
 * to f, or JSON through j when j is not NULL, and returns FV_OK or the
 * status of the library call that failed (its message is on db).
 */
#ifndef FV_WORKFLOWS_H
#define FV_WORKFLOWS_H

#include <stdint.h>
#include <stdio.h>

#include "fieldvault.h"
#include "fv_json.h"

/* Writes a record's members into the JSON object open on j (fv.c's). */
typedef void (*fvw_record_json_fn)(fvj_writer *j, const fv_record *r);

enum { FVW_GRADE_SHOW = 0, FVW_GRADE_PROPOSE, FVW_GRADE_APPROVE, FVW_GRADE_REJECT };

/* fv customer grade: do action (proposing grade), then show the review. */
fv_status fvw_grade(fv_db *db, const char *id, int action, const char *grade, FILE *f,
                    fvj_writer *j);
/* fv customer proposals: the waiting proposals (all: decided ones too);
 * ids: only the customers' ids, one a line. */
fv_status fvw_proposals(fv_db *db, int all, int ids, FILE *f, fvj_writer *j);

/* "acknowledged", ... and the step that reaches a status: "acknowledge". */
const char *fvw_status_name(fv_complaint_status s);
const char *fvw_step_name(fv_complaint_status to);

/* fv complaint ack|respond|resolve. */
fv_status fvw_complaint_step(fv_db *db, const char *id, fv_complaint_status to, const char *note,
                             FILE *f, fvj_writer *j);
/* The status and deadlines of complaint c (fv complaint show): text lines,
 * or members of the JSON object open on j. */
fv_status fvw_complaint_state(fv_db *db, const fv_record *c, FILE *f, fvj_writer *j);
/* fv complaints: flags FV_COMPLAINTS_*; ids: only the ids, one a line. */
fv_status fvw_complaints(fv_db *db, unsigned flags, int ids, FILE *f, fvj_writer *j,
                         fvw_record_json_fn record_json);

/* A duration such as 90m, 1h, 24h, 2d or 1h30m into seconds: 0, or -1. */
int fvw_duration_parse(const char *s, int64_t *secs);
/* fv complaint deadlines: set[] (acknowledge, respond, resolve; -1: keep)
 * for urgency (NULL: the default), or drop urgency's own; then show all. */
fv_status fvw_deadlines(fv_db *db, const char *urgency, const int64_t set[3], int drop, FILE *f,
                        fvj_writer *j);

/* fv due's important dates: the birthdays and anniversaries of the days
 * from (NULL: today) to from + days.  Text: a section after the
 * follow-ups (nothing when there are none); JSON: one object per event,
 * appended to the array open on j. */
fv_status fvw_dates(fv_db *db, const char *from, int days, FILE *f, fvj_writer *j);

#endif /* FV_WORKFLOWS_H */
