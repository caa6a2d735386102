/*
 * fv_workflows.c - fv's workflow commands' output (fv_workflows.h): the
 * grade review, complaints and their deadlines, the important dates of
 * fv due.  The library computes everything (fieldvault.h, "Workflows");
 * this file words it.
 *
 * Text output keeps the values a user typed (names, summaries) in the
 * last column, with control characters as spaces, so that a stored value
 * can neither drive the terminal nor break the alignment of the columns
 * before it.  JSON goes through fv_json.c.
 */
#include "fv_workflows.h"

#include <stdlib.h>
#include <string.h>

/* ---- words and numbers ---- */

/* s with control characters (C0, DEL, C1) as spaces, cut (at a character
 * boundary, with "...") after max bytes. */
static void put_clean(FILE *f, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    for (size_t i = 0; p[i] != '\0'; i++) {
        if (i >= max && (p[i] & 0xc0) != 0x80) {
            fputs("...", f);
            return;
        }
        if (p[i] < 0x20 || p[i] == 0x7f) fputc(' ', f);
        else if (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
            fputc(' ', f);
            i++;
        } else fputc(p[i], f);
    }
}

/* "1d 2h", "3h 5m", "12m 30s", "45s": the two largest units. */
static void span(int64_t secs, char *buf, size_t cap)
{
    static const struct {
        int64_t secs;
        char unit;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
    size_t n = 0;
    int shown = 0;
    buf[0] = '\0';
    for (size_t u = 0; u < 4 && shown < 2; u++) {
        int64_t q = secs / units[u].secs;
        if (q == 0 && shown == 0 && u < 3) continue;
        if (q == 0 && shown > 0) break; /* "1d" rather than "1d 0h" */
        n += (size_t)snprintf(buf + n, cap > n ? cap - n : 0, "%s%lld%c", shown ? " " : "",
                              (long long)q, units[u].unit);
        secs -= q * units[u].secs;
        shown++;
    }
}

/* A policy's deadline as people write it: "1h", "24h", "48h", "30m", "7d". */
static void deadline_words(int64_t secs, char *buf, size_t cap)
{
    if (secs % 86400 == 0 && secs >= 3 * 86400)
        snprintf(buf, cap, "%lldd", (long long)(secs / 86400));
    else if (secs % 3600 == 0) snprintf(buf, cap, "%lldh", (long long)(secs / 3600));
    else if (secs % 60 == 0) snprintf(buf, cap, "%lldm", (long long)(secs / 60));
    else span(secs, buf, cap);
}

/* Time left until a deadline: "35m 10s left", "due now", "overdue by 2h 5m". */
static void left_words(int64_t left_ms, char *buf, size_t cap)
{
    char s[32];
    if (left_ms > 0 && left_ms / 1000 > 0) {
        span(left_ms / 1000, s, sizeof s);
        snprintf(buf, cap, "%s left", s);
    } else if (left_ms >= 0) {
        snprintf(buf, cap, "due now");
    } else {
        span((-left_ms + 999) / 1000, s, sizeof s);
        snprintf(buf, cap, "overdue by %s", s);
    }
}

static void iso(int64_t ms, char out[21])
{
    int64_t secs = ms / 1000, days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp + (mp < 10 ? 3 : -9);
    int64_t y = yoe + era * 400 + (m <= 2);
    if (y < 0 || y > 9999) y = y < 0 ? 0 : 9999;
    snprintf(out, 21, "%04u-%02u-%02uT%02u:%02u:%02uZ", (unsigned)(y % 10000),
             (unsigned)(m % 100), (unsigned)(d % 100), (unsigned)(rem / 3600 % 100),
             (unsigned)(rem % 3600 / 60 % 100), (unsigned)(rem % 60));
}

static const char *text_of(const fv_record *r, const char *field)
{
    const char *v = NULL;
    if (fv_record_get_text(r, field, &v) != FV_OK) return NULL;
    return v;
}

/* ---- grade review ---- */

static const char *const review_state[] = {"none", "proposed", "approved", "rejected"};

static void review_json(fvj_writer *j, const char *id, const char *name, const fv_grade_review *rv)
{
    fvj_member_string(j, "id", id);
    fvj_member_string(j, "name", name);
    fvj_member_string(j, "grade", rv->grade[0] ? rv->grade : NULL);
    fvj_member_string(j, "state", review_state[rv->state]);
    int any = rv->state != FV_GRADE_NONE, decided = rv->state >= FV_GRADE_APPROVED;
    fvj_member_string(j, "proposed", any ? rv->proposed : NULL);
    fvj_member_string(j, "proposed_by", any ? rv->proposed_by : NULL);
    fvj_member_string(j, "proposed_at", any ? rv->proposed_at : NULL);
    fvj_member_string(j, "decided_by", decided ? rv->decided_by : NULL);
    fvj_member_string(j, "decided_at", decided ? rv->decided_at : NULL);
}

/* "S proposed by ana at ...: approved by lee at ..." */
static void review_text(FILE *f, const fv_grade_review *rv)
{
    if (rv->state == FV_GRADE_NONE) {
        fputs("no grade proposal", f);
        return;
    }
    fprintf(f, "%s proposed by ", rv->proposed);
    put_clean(f, rv->proposed_by, 64);
    fprintf(f, " at %s: %s", rv->proposed_at, review_state[rv->state]);
    if (rv->state == FV_GRADE_PROPOSED) {
        fputs(", waiting for a lead or director", f);
        return;
    }
    fputs(" by ", f);
    put_clean(f, rv->decided_by, 64);
    fprintf(f, " at %s", rv->decided_at);
}

fv_status fvw_grade(fv_db *db, const char *id, int action, const char *grade, FILE *f,
                    fvj_writer *j)
{
    fv_status st = FV_OK;
    if (action == FVW_GRADE_PROPOSE) st = fv_grade_propose(db, id, grade);
    else if (action == FVW_GRADE_APPROVE || action == FVW_GRADE_REJECT)
        st = fv_grade_decide(db, id, action == FVW_GRADE_APPROVE);
    if (st != FV_OK) return st;
    fv_record *c = NULL;
    if ((st = fv_get(db, "customer", id, &c)) != FV_OK) return st;
    fv_grade_review rv;
    rv.size = sizeof rv;
    if ((st = fv_grade_review_of(c, &rv)) != FV_OK) {
        fv_record_free(c);
        return st;
    }
    const char *name = text_of(c, "name");
    if (j != NULL) {
        if (action != FVW_GRADE_SHOW) fvj_set_layout(j, FVJ_LINE);
        fvj_begin_object(j);
        review_json(j, fv_record_id(c), name, &rv);
        fvj_end_object(j);
    } else if (action == FVW_GRADE_SHOW) {
        fprintf(f, "customer: %s (", fv_record_id(c));
        put_clean(f, name, 80);
        fprintf(f, ")\ngrade:    %s\nproposal: ", rv.grade[0] ? rv.grade : "(none)");
        review_text(f, &rv);
        fputc('\n', f);
    } else {
        if (action == FVW_GRADE_PROPOSE)
            fprintf(f, "proposed grade %s (now %s): waiting for a lead or director\n", rv.proposed,
                    rv.grade[0] ? rv.grade : "no grade");
        else if (action == FVW_GRADE_APPROVE)
            fprintf(f, "approved: the grade is %s now\n", rv.grade);
        else
            fprintf(f, "rejected: the grade stays %s\n", rv.grade[0] ? rv.grade : "unset");
    }
    fv_record_free(c);
    return FV_OK;
}

typedef struct proposals_out {
    FILE *f;
    fvj_writer *j;
    int ids;
    size_t n;
} proposals_out;

static int on_review(void *ctx, const fv_record *c, const fv_grade_review *rv)
{
    proposals_out *o = ctx;
    o->n++;
    if (o->j != NULL) {
        fvj_begin_object(o->j);
        review_json(o->j, fv_record_id(c), text_of(c, "name"), rv);
        fvj_end_object(o->j);
    } else if (o->ids) {
        fprintf(o->f, "%s\n", fv_record_id(c));
    } else {
        if (o->n == 1) fprintf(o->f, "%-36s  %-5s  %s\n", "ID", "GRADE", "PROPOSAL  (CUSTOMER)");
        fprintf(o->f, "%-36s  %-5s  ", fv_record_id(c), rv->grade[0] ? rv->grade : "-");
        review_text(o->f, rv);
        fputs("  (", o->f);
        put_clean(o->f, text_of(c, "name"), 60);
        fputs(")\n", o->f);
    }
    return 0;
}

fv_status fvw_proposals(fv_db *db, int all, int ids, FILE *f, fvj_writer *j)
{
    proposals_out o = {f, j, ids, 0};
    if (j != NULL) fvj_begin_array(j);
    fv_status st = fv_grade_reviews_each(db, !all, on_review, &o);
    if (j != NULL) fvj_end_array(j);
    else if (st == FV_OK && o.n == 0 && !ids)
        fprintf(f, "%s\n", all ? "no grade proposals" : "no grade proposals waiting");
    return st;
}

/* ---- complaints ---- */

static const char *const status_names[] = {"open", "acknowledged", "responded", "resolved"};
static const char *const step_names[] = {"open", "acknowledge", "respond", "resolve"};

const char *fvw_status_name(fv_complaint_status s)
{
    return (unsigned)s <= FV_COMPLAINT_RESOLVED ? status_names[s] : "?";
}

const char *fvw_step_name(fv_complaint_status to)
{
    return (unsigned)to <= FV_COMPLAINT_RESOLVED ? step_names[to] : "?";
}

fv_status fvw_complaint_step(fv_db *db, const char *id, fv_complaint_status to, const char *note,
                             FILE *f, fvj_writer *j)
{
    fv_status st = fv_complaint_advance(db, id, to, note);
    if (st != FV_OK) return st;
    if (j != NULL) {
        fvj_set_layout(j, FVJ_LINE);
        fvj_begin_object(j);
        fvj_member_string(j, "id", id);
        fvj_member_string(j, "status", fvw_status_name(to));
        fvj_key(j, "ok");
        fvj_bool(j, 1);
        fvj_end_object(j);
    } else {
        fprintf(f, "complaint %s %s\n", id, fvw_status_name(to));
    }
    return FV_OK;
}

/* The computed members of a complaint object. */
static void state_json(fvj_writer *j, const fv_complaint_state *cs)
{
    char at[21];
    int open = cs->status != FV_COMPLAINT_RESOLVED && cs->next_due_ms != 0;
    fvj_member_string(j, "status", fvw_status_name(cs->status));
    fvj_member_string(j, "next_step",
                      cs->status != FV_COMPLAINT_RESOLVED ? fvw_step_name(cs->next) : NULL);
    if (open) iso(cs->next_due_ms, at);
    fvj_member_string(j, "due_at", open ? at : NULL);
    fvj_key(j, "seconds_left");
    if (open) /* whole seconds, rounded towards the overdue side */
        fvj_int(j, cs->left_ms >= 0 ? cs->left_ms / 1000 : -((-cs->left_ms + 999) / 1000));
    else fvj_null(j);
    fvj_key(j, "overdue");
    fvj_bool(j, cs->overdue);
}

fv_status fvw_complaint_state(fv_db *db, const fv_record *c, FILE *f, fvj_writer *j)
{
    (void)db;
    fv_complaint_state cs;
    cs.size = sizeof cs;
    fv_status st = fv_complaint_state_of(c, 0, &cs);
    if (st != FV_OK) return st;
    if (j != NULL) {
        state_json(j, &cs);
        return FV_OK;
    }
    fprintf(f, "status: %s\n", fvw_status_name(cs.status));
    for (int k = FV_COMPLAINT_ACKNOWLEDGED; k <= FV_COMPLAINT_RESOLVED; k++) {
        char due[21], left[48];
        if (cs.due_ms[k] == 0) continue;
        iso(cs.due_ms[k], due);
        fprintf(f, "%-11s  by %s", fvw_step_name((fv_complaint_status)k), due);
        if (cs.done_ms[k] != 0) {
            char done[21];
            iso(cs.done_ms[k], done);
            fprintf(f, "  done %s%s\n", done, cs.done_ms[k] > cs.due_ms[k] ? " (late)" : "");
        } else if (k == (int)cs.next) {
            left_words(cs.left_ms, left, sizeof left);
            fprintf(f, "  %s\n", left);
        } else {
            fputc('\n', f);
        }
    }
    return FV_OK;
}

typedef struct complaint_row {
    char id[FV_ID_LEN + 1];
    char urgency[16], status[16], next[16], due[21], left[48];
    char *who; /* "customer: summary" */
} complaint_row;

typedef struct complaints_out {
    fv_db *db;
    FILE *f;
    fvj_writer *j;
    int ids;
    fvw_record_json_fn record_json;
    complaint_row *rows;
    size_t n, cap;
    fv_status st;
} complaints_out;

/* The customer's name as the user may read it, or its id. */
static char *customer_label(fv_db *db, const char *cid)
{
    fv_record *c = NULL;
    const char *name = NULL;
    if (cid != NULL && fv_get(db, "customer", cid, &c) == FV_OK) name = text_of(c, "name");
    const char *v = name ? name : cid ? cid : "-";
    char *out = malloc(strlen(v) + 1);
    if (out != NULL) memcpy(out, v, strlen(v) + 1);
    fv_record_free(c);
    return out;
}

static int on_complaint(void *ctx, const fv_record *c, const fv_complaint_state *cs)
{
    complaints_out *o = ctx;
    if (o->ids) {
        fprintf(o->f, "%s\n", fv_record_id(c));
        return 0;
    }
    char *cust = customer_label(o->db, text_of(c, "customer_id"));
    if (cust == NULL) {
        o->st = FV_ENOMEM;
        return 1;
    }
    if (o->j != NULL) {
        fvj_begin_object(o->j);
        o->record_json(o->j, c);
        fvj_member_string(o->j, "customer", cust);
        state_json(o->j, cs);
        fvj_end_object(o->j);
        free(cust);
        return 0;
    }
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        complaint_row *v = realloc(o->rows, cap * sizeof *v);
        if (v == NULL) {
            free(cust);
            o->st = FV_ENOMEM;
            return 1;
        }
        o->rows = v;
        o->cap = cap;
    }
    complaint_row *r = &o->rows[o->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", fv_record_id(c));
    const char *urgency = text_of(c, "urgency");
    snprintf(r->urgency, sizeof r->urgency, "%s", urgency ? urgency : "-");
    snprintf(r->status, sizeof r->status, "%s", fvw_status_name(cs->status));
    int open = cs->status != FV_COMPLAINT_RESOLVED && cs->next_due_ms != 0;
    snprintf(r->next, sizeof r->next, "%s",
             cs->status != FV_COMPLAINT_RESOLVED ? fvw_step_name(cs->next) : "-");
    if (open) {
        iso(cs->next_due_ms, r->due);
        left_words(cs->left_ms, r->left, sizeof r->left);
    } else {
        snprintf(r->due, sizeof r->due, "-");
        snprintf(r->left, sizeof r->left, "-");
    }
    const char *summary = text_of(c, "summary");
    size_t len = strlen(cust) + 2 + (summary ? strlen(summary) : 0) + 1;
    r->who = malloc(len);
    if (r->who != NULL) snprintf(r->who, len, "%s: %s", cust, summary ? summary : "");
    free(cust);
    if (r->who == NULL) {
        o->st = FV_ENOMEM;
        return 1;
    }
    return 0;
}

fv_status fvw_complaints(fv_db *db, unsigned flags, int ids, FILE *f, fvj_writer *j,
                         fvw_record_json_fn record_json)
{
    complaints_out o;
    memset(&o, 0, sizeof o);
    o.db = db;
    o.f = f;
    o.j = j;
    o.ids = ids;
    o.record_json = record_json;
    if (j != NULL) fvj_begin_array(j);
    fv_status st = fv_complaints_each(db, flags, 0, on_complaint, &o);
    if (st == FV_OK) st = o.st;
    if (j != NULL) fvj_end_array(j);
    if (st == FV_OK && j == NULL && !ids) {
        if (o.n == 0) {
            fprintf(f, "%s\n", (flags & FV_COMPLAINTS_OVERDUE) ? "no overdue complaints"
                               : (flags & FV_COMPLAINTS_ALL) ? "no complaints"
                                                             : "no open complaints");
        } else {
            size_t wl = strlen("LEFT");
            for (size_t i = 0; i < o.n; i++)
                if (strlen(o.rows[i].left) > wl) wl = strlen(o.rows[i].left);
            fprintf(f, "%-36s  %-8s  %-12s  %-11s  %-20s  %-*s  %s\n", "ID", "URGENCY", "STATUS",
                    "NEXT", "DUE", (int)wl, "LEFT", "CUSTOMER: SUMMARY");
            for (size_t i = 0; i < o.n; i++) {
                complaint_row *r = &o.rows[i];
                fprintf(f, "%-36s  %-8s  %-12s  %-11s  %-20s  %-*s  ", r->id, r->urgency,
                        r->status, r->next, r->due, (int)wl, r->left);
                put_clean(f, r->who, 100);
                fputc('\n', f);
            }
        }
    }
    for (size_t i = 0; i < o.n; i++) free(o.rows[i].who);
    free(o.rows);
    return st;
}

int fvw_duration_parse(const char *s, int64_t *secs)
{
    int64_t total = 0;
    int parts = 0;
    const char *p = s;
    while (*p != '\0') {
        int64_t v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (v > FV_COMPLAINT_DEADLINE_MAX) return -1;
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        int64_t unit = *p == 'd' ? 86400 : *p == 'h' ? 3600 : *p == 'm' ? 60 : *p == 's' ? 1 : 0;
        if (digits == 0 || unit == 0) return -1;
        p++;
        total += v * unit;
        if (total > FV_COMPLAINT_DEADLINE_MAX) return -1;
        parts++;
    }
    if (parts == 0) return -1;
    *secs = total;
    return 0;
}

fv_status fvw_deadlines(fv_db *db, const char *urgency, const int64_t set[3], int drop, FILE *f,
                        fvj_writer *j)
{
    fv_status st = FV_OK;
    if (drop) {
        st = fv_complaint_deadlines_set(db, urgency, NULL);
    } else if (set[0] >= 0 || set[1] >= 0 || set[2] >= 0) {
        fv_complaint_deadlines d;
        d.size = sizeof d;
        st = fv_complaint_deadlines_get(db, urgency, &d);
        if (set[0] >= 0) d.ack_s = set[0];
        if (set[1] >= 0) d.respond_s = set[1];
        if (set[2] >= 0) d.resolve_s = set[2];
        if (st == FV_OK) st = fv_complaint_deadlines_set(db, urgency, &d);
    }
    if (st != FV_OK) return st;
    static const char *const names[] = {NULL, "normal", "urgent", "critical"};
    if (j != NULL) fvj_begin_object(j);
    else fprintf(f, "%-9s %-12s %-8s %s\n", "URGENCY", "ACKNOWLEDGE", "RESPOND", "RESOLVE");
    for (size_t i = 0; i < 4; i++) {
        fv_complaint_deadlines d;
        d.size = sizeof d;
        if ((st = fv_complaint_deadlines_get(db, names[i], &d)) != FV_OK) break;
        if (j != NULL) {
            fvj_key(j, names[i] ? names[i] : "default");
            fvj_begin_object(j);
            fvj_key(j, "ack_seconds");
            fvj_int(j, d.ack_s);
            fvj_key(j, "respond_seconds");
            fvj_int(j, d.respond_s);
            fvj_key(j, "resolve_seconds");
            fvj_int(j, d.resolve_s);
            fvj_end_object(j);
        } else {
            char a[32], r[32], s[32];
            deadline_words(d.ack_s, a, sizeof a);
            deadline_words(d.respond_s, r, sizeof r);
            deadline_words(d.resolve_s, s, sizeof s);
            fprintf(f, "%-9s %-12s %-8s %s\n", names[i] ? names[i] : "default", a, r, s);
        }
    }
    if (j != NULL) fvj_end_object(j);
    return st;
}

/* ---- important dates (fv due) ---- */

typedef struct dates_out {
    FILE *f;
    fvj_writer *j;
    size_t n;
    const char *from;
    int days;
} dates_out;

static int on_date(void *ctx, const fv_date_event *e)
{
    dates_out *o = ctx;
    o->n++;
    if (o->j != NULL) {
        fvj_begin_object(o->j);
        fvj_member_string(o->j, "kind", e->kind);
        fvj_member_string(o->j, "date", e->date);
        fvj_key(o->j, "in_days");
        fvj_int(o->j, e->days);
        fvj_member_string(o->j, "table", e->table);
        fvj_member_string(o->j, "id", e->id);
        fvj_member_string(o->j, "name", e->name);
        fvj_member_string(o->j, "customer_id", e->customer_id);
        fvj_member_string(o->j, "customer", e->customer);
        if (e->years > 0) {
            fvj_key(o->j, "years");
            fvj_int(o->j, e->years);
        }
        fvj_end_object(o->j);
        return 0;
    }
    if (o->n == 1)
        fprintf(o->f, "\nimportant dates, %s and the %d day%s after:\n%-10s  %-11s  %-22s  %s\n",
                o->from, o->days, o->days == 1 ? "" : "s", "DATE", "WHEN", "WHAT", "WHO");
    char when[24], what[40];
    if (e->days == 0) snprintf(when, sizeof when, "today");
    else if (e->days == 1) snprintf(when, sizeof when, "tomorrow");
    else snprintf(when, sizeof when, "in %d days", e->days);
    if (e->years > 0)
        snprintf(what, sizeof what, "anniversary, %d year%s", e->years, e->years == 1 ? "" : "s");
    else snprintf(what, sizeof what, "%s", e->kind);
    fprintf(o->f, "%-10s  %-11s  %-22s  ", e->date, when, what);
    put_clean(o->f, e->name, 60);
    if (strcmp(e->table, "contact") == 0) {
        fputs(" (", o->f);
        put_clean(o->f, e->customer ? e->customer : e->customer_id, 60);
        fputc(')', o->f);
    }
    fputc('\n', o->f);
    return 0;
}

fv_status fvw_dates(fv_db *db, const char *from, int days, FILE *f, fvj_writer *j)
{
    char today[11] = "today";
    dates_out o = {f, j, 0, from ? from : today, days};
    return fv_dates_each(db, from, days, on_date, &o);
}
