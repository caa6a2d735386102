/*
 * fv_report.c - `fv report DB [--month YYYY-MM]` (fv_report.h).
 *
 * Everything is read through the public records API, so the report holds
 * exactly what the acting user may see: the visible customers
 * (fv_list_customers), their visits (fv_list_visits), the stage
 * transitions (fv_history_each, which applies the same access rules) and
 * the follow-ups due (fv_list_due, the same query as `fv due`).
 *
 * Figures, for a month [first day, first day of the next month) in UTC:
 *  - pipeline and grades: the visible customers by stage and by grade, now;
 *  - conversion: customers that reached won in the month after being in
 *    intent in it (directly or through negotiation: the funnel), and the
 *    customers that were in intent at some time of the month (their stage
 *    at its start, or a transition into or out of intent during it): the
 *    share is the first over the second;
 *  - churn: customers with a transition into lost dated in the month;
 *  - visits per ISO week (weeks that overlap the month, counting only the
 *    month's days) and per owner of the visited customer; visits of a
 *    customer the user cannot see (deleted, or out of scope) are left out;
 *  - overdue follow-ups: customers due (fv due's rule: next-due date, else
 *    the last visit plus the grade cadence) before today, or, for a month
 *    that is over, before the first day of the next month.
 *
 * Layout: load (customers, history, visits, overdue) into a report struct,
 * then write it as JSON or text.  Dates are handled as days since the
 * epoch (proleptic Gregorian), so no time-zone or locale state is used.
 */
#include "fv_report.h"

#include <stdlib.h>
#include <string.h>

#define NSTAGES 6
#define NGRADES 3
#define WEEKS_MAX 6  /* ISO weeks that can overlap one month */
#define BAR_CELLS 30 /* width of a full bar on a terminal */
#define DAY_MS 86400000LL

static const char *const stages[NSTAGES] = {"lead", "intent", "negotiation", "won", "service",
                                            "lost"};
static const char *const grades[NGRADES] = {"S", "A", "B"};
enum { INTENT = 1, WON = 3, LOST = 5 };

typedef struct cust {
    char id[FV_ID_LEN + 1];
    char *owner;     /* malloc'd; NULL when the customer has none */
    int start_stage; /* stage when the month began (-1: none or not yet recorded) */
    int in_intent, converted, churned;
} cust;

typedef struct owner_row {
    char *owner; /* malloc'd; NULL: customers without an owner */
    uint64_t weeks[WEEKS_MAX], total;
} owner_row;

typedef struct overdue_row {
    char id[FV_ID_LEN + 1];
    char due[11];
    char *name, *grade, *owner; /* malloc'd; NULL when empty */
} overdue_row;

typedef struct report {
    fv_db *db;
    int year, month;
    int64_t first_day, end_day; /* days since the epoch: [first, end) */
    cust *custs;
    size_t ncust, capcust;
    uint64_t by_stage[NSTAGES + 1], by_grade[NGRADES + 1]; /* last: none */
    uint64_t converted, in_intent, churned;
    size_t nweeks;
    int64_t week_monday[WEEKS_MAX];
    char week_label[WEEKS_MAX][12];
    uint64_t week_visits[WEEKS_MAX], visits;
    owner_row *owners;
    size_t nowners, capowners;
    int64_t due_before; /* day */
    overdue_row *overdue;
    size_t noverdue, capoverdue;
    uint64_t overdue_by_grade[NGRADES + 1];
} report;

/* ---- dates ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *year, int *month, int *day)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (m <= 2));
    *month = m;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
}

static void format_day(int64_t days, char out[11])
{
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u,
             (unsigned)d % 100u);
}

/* Monday of the ISO week of a day (1970-01-01 was a Thursday). */
static int64_t iso_monday(int64_t days)
{
    int64_t wd = ((days % 7) + 7 + 3) % 7; /* 0 = Monday */
    return days - wd;
}

/* "2026-W10" for the ISO week that starts on monday. */
static void iso_week_label(int64_t monday, char out[12])
{
    int y, m, d;
    civil_from_days(monday + 3, &y, &m, &d); /* the week's Thursday names its year */
    int64_t week = (monday + 3 - days_from_civil(y, 1, 1)) / 7 + 1;
    snprintf(out, 12, "%04u-W%02u", (unsigned)y % 10000u, (unsigned)week % 100u);
}

int fvr_month_parse(const char *s, int *year, int *month)
{
    if (s == NULL || strlen(s) != 7 || s[4] != '-') return -1;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9')) return -1;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    if (y < 1970 || m < 1 || m > 12) return -1;
    *year = y;
    *month = m;
    return 0;
}

/* ---- small helpers ---- */

static int index_of(const char *const *list, size_t n, const char *v)
{
    if (v == NULL) return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], v) == 0) return (int)i;
    return -1;
}

/* A field's text, NULL when empty or unreadable (redacted). */
static const char *text_of(const fv_record *r, const char *field)
{
    const char *v = NULL;
    if (fv_record_get_text(r, field, &v) != FV_OK) return NULL;
    return v;
}

/* A malloc'd copy of s (NULL stays NULL). */
static fv_status dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL) return FV_OK;
    size_t n = strlen(s) + 1;
    *out = malloc(n);
    if (*out == NULL) return FV_ENOMEM;
    memcpy(*out, s, n);
    return FV_OK;
}

/* Make room for one more element of size sz in *arr (count n, capacity *cap). */
static int grow(void **arr, size_t n, size_t *cap, size_t sz)
{
    if (n < *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * sz);
    if (p == NULL) return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int cust_cmp(const void *a, const void *b)
{
    return strcmp(((const cust *)a)->id, ((const cust *)b)->id);
}

static cust *find_cust(report *rp, const char *id)
{
    cust key;
    if (rp->ncust == 0) return NULL; /* bsearch wants an array */
    snprintf(key.id, sizeof key.id, "%s", id ? id : "");
    return bsearch(&key, rp->custs, rp->ncust, sizeof *rp->custs, cust_cmp);
}

/* "2026-03" */
static void format_month(const report *rp, char out[8])
{
    snprintf(out, 8, "%04u-%02u", (unsigned)rp->year % 10000u, (unsigned)rp->month % 100u);
}

static void report_free(report *rp)
{
    for (size_t i = 0; i < rp->ncust; i++) free(rp->custs[i].owner);
    free(rp->custs);
    for (size_t i = 0; i < rp->nowners; i++) free(rp->owners[i].owner);
    free(rp->owners);
    for (size_t i = 0; i < rp->noverdue; i++) {
        free(rp->overdue[i].name);
        free(rp->overdue[i].grade);
        free(rp->overdue[i].owner);
    }
    free(rp->overdue);
}

/* ---- loading ---- */

static fv_status load_customers(report *rp)
{
    fv_list *l = NULL;
    fv_status st = fv_list_customers(rp->db, NULL, &l);
    const fv_record *r;
    while (st == FV_OK && (st = fv_list_next(l, &r)) == FV_OK && r != NULL) {
        int s = index_of(stages, NSTAGES, text_of(r, "stage"));
        int g = index_of(grades, NGRADES, text_of(r, "grade"));
        rp->by_stage[s < 0 ? NSTAGES : s]++;
        rp->by_grade[g < 0 ? NGRADES : g]++;
        if (grow((void **)&rp->custs, rp->ncust, &rp->capcust, sizeof *rp->custs) != 0) {
            st = FV_ENOMEM;
            break;
        }
        cust *c = &rp->custs[rp->ncust];
        memset(c, 0, sizeof *c);
        snprintf(c->id, sizeof c->id, "%s", fv_record_id(r));
        c->start_stage = -1;
        if ((st = dup_opt(text_of(r, "owner"), &c->owner)) != FV_OK) break;
        rp->ncust++;
    }
    fv_list_free(l);
    if (st == FV_OK && rp->ncust > 1) qsort(rp->custs, rp->ncust, sizeof *rp->custs, cust_cmp);
    return st;
}

static int on_stage(void *ctx, const fv_history_entry *e)
{
    report *rp = ctx;
    cust *c = find_cust(rp, e->row_id);
    if (c == NULL) return 0;
    int from = index_of(stages, NSTAGES, e->old_value);
    int to = index_of(stages, NSTAGES, e->new_value);
    int64_t ms = (int64_t)(e->hlc >> 16);
    if (ms < rp->first_day * DAY_MS) { /* before the month: where it stood */
        c->start_stage = to;
        return 0;
    }
    if (c->start_stage == INTENT || from == INTENT || to == INTENT) c->in_intent = 1;
    /* converted: reached won in the month after being in intent in it,
     * directly or through negotiation (the funnel, not one step of it) */
    if (to == WON && c->in_intent) c->converted = 1;
    if (to == LOST && from != LOST) c->churned = 1;
    return 0;
}

static fv_status load_history(report *rp)
{
    fv_status st = fv_history_each(rp->db, "customer", "stage", 0, rp->end_day * DAY_MS, on_stage,
                                   rp);
    if (st != FV_OK) return st;
    for (size_t i = 0; i < rp->ncust; i++) {
        cust *c = &rp->custs[i];
        if (c->start_stage == INTENT) c->in_intent = 1;
        rp->in_intent += (uint64_t)c->in_intent;
        rp->converted += (uint64_t)c->converted;
        rp->churned += (uint64_t)c->churned;
    }
    return FV_OK;
}

static owner_row *owner_for(report *rp, const char *owner)
{
    for (size_t i = 0; i < rp->nowners; i++) {
        const char *o = rp->owners[i].owner;
        if ((o == NULL && owner == NULL) || (o != NULL && owner != NULL && strcmp(o, owner) == 0))
            return &rp->owners[i];
    }
    if (grow((void **)&rp->owners, rp->nowners, &rp->capowners, sizeof *rp->owners) != 0)
        return NULL;
    owner_row *w = &rp->owners[rp->nowners];
    memset(w, 0, sizeof *w);
    if (dup_opt(owner, &w->owner) != FV_OK) return NULL;
    rp->nowners++;
    return w;
}

static int owner_cmp(const void *a, const void *b)
{
    const char *x = ((const owner_row *)a)->owner, *y = ((const owner_row *)b)->owner;
    if (x == NULL || y == NULL) return (x == NULL) - (y == NULL); /* no owner last */
    return strcmp(x, y);
}

static fv_status load_visits(report *rp)
{
    int64_t first_monday = iso_monday(rp->first_day);
    rp->nweeks = (size_t)((iso_monday(rp->end_day - 1) - first_monday) / 7 + 1);
    for (size_t w = 0; w < rp->nweeks; w++) {
        rp->week_monday[w] = first_monday + 7 * (int64_t)w;
        iso_week_label(rp->week_monday[w], rp->week_label[w]);
    }
    char prefix[8];
    format_month(rp, prefix);
    fv_list *l = NULL;
    fv_status st = fv_list_visits(rp->db, NULL, &l);
    const fv_record *r;
    while (st == FV_OK && (st = fv_list_next(l, &r)) == FV_OK && r != NULL) {
        const char *at = text_of(r, "at"); /* stored as YYYY-MM-DDTHH:MM:SSZ (UTC) */
        if (at == NULL || strlen(at) < 10 || strncmp(at, prefix, 7) != 0 || at[8] < '0' ||
            at[8] > '9' || at[9] < '0' || at[9] > '9')
            continue;
        cust *c = find_cust(rp, text_of(r, "customer_id"));
        if (c == NULL) continue; /* its customer is not visible */
        int day = (at[8] - '0') * 10 + (at[9] - '0');
        int64_t d = days_from_civil(rp->year, rp->month, day);
        size_t w = (size_t)((iso_monday(d) - first_monday) / 7);
        if (d < rp->first_day || d >= rp->end_day || w >= rp->nweeks) continue;
        owner_row *o = owner_for(rp, c->owner);
        if (o == NULL) {
            st = FV_ENOMEM;
            break;
        }
        o->weeks[w]++;
        o->total++;
        rp->week_visits[w]++;
        rp->visits++;
    }
    fv_list_free(l);
    if (st == FV_OK && rp->nowners > 1)
        qsort(rp->owners, rp->nowners, sizeof *rp->owners, owner_cmp);
    return st;
}

static fv_status load_overdue(report *rp)
{
    char on[11];
    format_day(rp->due_before - 1, on); /* fv due lists those due on or before */
    fv_list *l = NULL;
    fv_status st = fv_list_due(rp->db, on, &l);
    const fv_record *r;
    while (st == FV_OK && (st = fv_list_next(l, &r)) == FV_OK && r != NULL) {
        if (grow((void **)&rp->overdue, rp->noverdue, &rp->capoverdue, sizeof *rp->overdue) != 0) {
            st = FV_ENOMEM;
            break;
        }
        overdue_row *o = &rp->overdue[rp->noverdue];
        memset(o, 0, sizeof *o);
        rp->noverdue++;
        snprintf(o->id, sizeof o->id, "%s", fv_record_id(r));
        snprintf(o->due, sizeof o->due, "%s", fv_record_due(r) ? fv_record_due(r) : "");
        int g = index_of(grades, NGRADES, text_of(r, "grade"));
        rp->overdue_by_grade[g < 0 ? NGRADES : g]++;
        if ((st = dup_opt(text_of(r, "name"), &o->name)) == FV_OK &&
            (st = dup_opt(text_of(r, "grade"), &o->grade)) == FV_OK)
            st = dup_opt(text_of(r, "owner"), &o->owner);
    }
    fv_list_free(l);
    return st;
}

/* ---- writing ---- */

void fvr_bar(uint64_t value, uint64_t max, size_t width, char *buf, size_t cap)
{
    static const char *const eighths[] = {"",         "\u258f", "\u258e", "\u258d",
                                          "\u258c", "\u258b", "\u258a", "\u2589"};
    uint64_t units = max == 0 ? 0 : (value >= max ? width * 8 : value * width * 8 / max);
    if (units == 0 && value > 0 && width > 0) units = 1; /* something is not nothing */
    size_t n = 0, cells = 0;
    if (cap == 0) return;
    buf[0] = '\0';
    for (; cells < units / 8 && n + 4 <= cap; cells++) {
        memcpy(buf + n, "\u2588", 3);
        n += 3;
    }
    if (units % 8 && cells < width && n + 4 <= cap) {
        size_t k = strlen(eighths[units % 8]);
        memcpy(buf + n, eighths[units % 8], k);
        n += k;
        cells++;
    }
    for (; cells < width && n + 2 <= cap; cells++) buf[n++] = ' ';
    buf[n] = '\0';
}

/* s with control characters (C0, DEL, C1) as spaces: a stored name must not
 * drive the terminal. */
static void put_clean(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    for (size_t i = 0; p[i] != '\0'; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) fputc(' ', f);
        else if (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
            fputc(' ', f);
            i++;
        } else fputc(p[i], f);
    }
}

static void json_counts(fvj_writer *j, const char *const *names, size_t n, const uint64_t *counts)
{
    fvj_begin_object(j);
    for (size_t i = 0; i < n; i++) {
        fvj_key(j, names[i]);
        fvj_int(j, (int64_t)counts[i]);
    }
    fvj_key(j, "none");
    fvj_int(j, (int64_t)counts[n]);
    fvj_end_object(j);
}

static void json_int_member(fvj_writer *j, const char *key, uint64_t v)
{
    fvj_key(j, key);
    fvj_int(j, (int64_t)v);
}

static void write_json(const report *rp, fvj_writer *j)
{
    char day[11], month[8];
    format_month(rp, month);
    fvj_begin_object(j);
    fvj_member_string(j, "month", month);
    format_day(rp->first_day, day);
    fvj_member_string(j, "from", day);
    format_day(rp->end_day - 1, day);
    fvj_member_string(j, "to", day);
    json_int_member(j, "customers", rp->ncust);
    fvj_key(j, "pipeline");
    json_counts(j, stages, NSTAGES, rp->by_stage);
    fvj_key(j, "grades");
    json_counts(j, grades, NGRADES, rp->by_grade);

    fvj_key(j, "conversion");
    fvj_begin_object(j);
    json_int_member(j, "intent_to_won", rp->converted);
    json_int_member(j, "in_intent", rp->in_intent);
    fvj_key(j, "rate");
    if (rp->in_intent > 0) fvj_number(j, (double)rp->converted / (double)rp->in_intent);
    else fvj_null(j);
    fvj_end_object(j);
    fvj_key(j, "churn");
    fvj_begin_object(j);
    json_int_member(j, "to_lost", rp->churned);
    fvj_end_object(j);

    fvj_key(j, "visits");
    fvj_begin_object(j);
    json_int_member(j, "total", rp->visits);
    fvj_key(j, "weeks");
    fvj_begin_array(j);
    for (size_t w = 0; w < rp->nweeks; w++) {
        fvj_begin_object(j);
        fvj_member_string(j, "week", rp->week_label[w]);
        format_day(rp->week_monday[w], day);
        fvj_member_string(j, "from", day);
        format_day(rp->week_monday[w] + 6, day);
        fvj_member_string(j, "to", day);
        json_int_member(j, "visits", rp->week_visits[w]);
        fvj_end_object(j);
    }
    fvj_end_array(j);
    fvj_key(j, "by_owner");
    fvj_begin_array(j);
    for (size_t i = 0; i < rp->nowners; i++) {
        fvj_begin_object(j);
        fvj_member_string(j, "owner", rp->owners[i].owner);
        json_int_member(j, "total", rp->owners[i].total);
        fvj_key(j, "weeks");
        fvj_begin_array(j);
        for (size_t w = 0; w < rp->nweeks; w++) fvj_int(j, (int64_t)rp->owners[i].weeks[w]);
        fvj_end_array(j);
        fvj_end_object(j);
    }
    fvj_end_array(j);
    fvj_end_object(j);

    fvj_key(j, "overdue");
    fvj_begin_object(j);
    format_day(rp->due_before, day);
    fvj_member_string(j, "due_before", day);
    json_int_member(j, "total", rp->noverdue);
    fvj_key(j, "by_grade");
    json_counts(j, grades, NGRADES, rp->overdue_by_grade);
    fvj_key(j, "customers");
    fvj_begin_array(j);
    for (size_t i = 0; i < rp->noverdue; i++) {
        const overdue_row *o = &rp->overdue[i];
        fvj_begin_object(j);
        fvj_member_string(j, "id", o->id);
        fvj_member_string(j, "name", o->name);
        fvj_member_string(j, "grade", o->grade);
        fvj_member_string(j, "owner", o->owner);
        fvj_member_string(j, "due", o->due);
        fvj_end_object(j);
    }
    fvj_end_array(j);
    fvj_end_object(j);
    fvj_end_object(j);
}

/* "  label       [bar]  n" : the bar only on a terminal. */
static void count_line(FILE *f, const char *label, uint64_t n, uint64_t max, int chart)
{
    fprintf(f, "  %-12s ", label);
    if (chart) {
        char bar[BAR_CELLS * 3 + 1];
        fvr_bar(n, max, BAR_CELLS, bar, sizeof bar);
        fprintf(f, "%s ", bar);
    }
    fprintf(f, "%4llu", (unsigned long long)n);
}

static void write_text(const report *rp, FILE *f, int chart)
{
    char from[11], to[11], month[8];
    format_month(rp, month);
    format_day(rp->first_day, from);
    format_day(rp->end_day - 1, to);
    fprintf(f, "Report for %s (%s to %s, UTC): %llu customers visible\n\n", month, from, to,
            (unsigned long long)rp->ncust);

    uint64_t max = 0;
    for (size_t i = 0; i <= NSTAGES; i++)
        if (rp->by_stage[i] > max) max = rp->by_stage[i];
    fprintf(f, "Pipeline now (customers by stage)\n");
    for (size_t i = 0; i <= NSTAGES; i++) {
        if (i == NSTAGES && rp->by_stage[i] == 0) continue;
        count_line(f, i < NSTAGES ? stages[i] : "(no stage)", rp->by_stage[i], max, chart);
        fputc('\n', f);
    }
    fprintf(f, "\nGrades now: S %llu, A %llu, B %llu, no grade %llu\n\n",
            (unsigned long long)rp->by_grade[0], (unsigned long long)rp->by_grade[1],
            (unsigned long long)rp->by_grade[2], (unsigned long long)rp->by_grade[3]);

    fprintf(f, "Conversion in %s: %llu went from intent to won, of %llu in intent during the month",
            month, (unsigned long long)rp->converted, (unsigned long long)rp->in_intent);
    if (rp->in_intent > 0)
        fprintf(f, " (%.0f%%)\n", 100.0 * (double)rp->converted / (double)rp->in_intent);
    else fputc('\n', f);
    fprintf(f, "Churn in %s: %llu moved to lost\n\n", month, (unsigned long long)rp->churned);

    max = 0;
    for (size_t w = 0; w < rp->nweeks; w++)
        if (rp->week_visits[w] > max) max = rp->week_visits[w];
    fprintf(f, "Visits per ISO week, by the customer's owner: %llu in all\n",
            (unsigned long long)rp->visits);
    for (size_t w = 0; w < rp->nweeks; w++) {
        char mon[11], sun[11];
        format_day(rp->week_monday[w], mon);
        format_day(rp->week_monday[w] + 6, sun);
        char label[32];
        snprintf(label, sizeof label, "%s", rp->week_label[w]);
        count_line(f, label, rp->week_visits[w], max, chart);
        fprintf(f, "  %s..%s", mon + 5, sun + 5);
        const char *sep = "  ";
        for (size_t i = 0; i < rp->nowners; i++) {
            if (rp->owners[i].weeks[w] == 0) continue;
            fputs(sep, f);
            if (rp->owners[i].owner) put_clean(f, rp->owners[i].owner);
            else fputs("(no owner)", f);
            fprintf(f, " %llu", (unsigned long long)rp->owners[i].weeks[w]);
            sep = ", ";
        }
        fputc('\n', f);
    }

    char before[11];
    format_day(rp->due_before, before);
    fprintf(f, "\nFollow-ups overdue (due before %s; S every 7 days, A 14, B 30): %zu"
               "  (S %llu, A %llu, B %llu, no grade %llu)\n",
            before, rp->noverdue, (unsigned long long)rp->overdue_by_grade[0],
            (unsigned long long)rp->overdue_by_grade[1],
            (unsigned long long)rp->overdue_by_grade[2],
            (unsigned long long)rp->overdue_by_grade[3]);
    for (size_t i = 0; i < rp->noverdue; i++) {
        const overdue_row *o = &rp->overdue[i];
        fprintf(f, "  %s  %-5s  %s  ", o->due, o->grade ? o->grade : "-", o->id);
        put_clean(f, o->name);
        if (o->owner) {
            fputs(" (", f);
            put_clean(f, o->owner);
            fputc(')', f);
        }
        fputc('\n', f);
    }
}

fv_status fvr_report(fv_db *db, int year, int month, int64_t now_ms, FILE *f, fvj_writer *j,
                     int chart)
{
    report rp;
    memset(&rp, 0, sizeof rp);
    rp.db = db;
    rp.year = year;
    rp.month = month;
    rp.first_day = days_from_civil(year, month, 1);
    rp.end_day = month == 12 ? days_from_civil(year + 1, 1, 1)
                             : days_from_civil(year, month + 1, 1);
    int64_t today = now_ms / DAY_MS;
    rp.due_before = rp.end_day <= today ? rp.end_day : today;
    fv_status st = load_customers(&rp);
    if (st == FV_OK) st = load_history(&rp);
    if (st == FV_OK) st = load_visits(&rp);
    if (st == FV_OK) st = load_overdue(&rp);
    if (st == FV_OK) {
        if (j != NULL) write_json(&rp, j);
        else write_text(&rp, f, chart);
    }
    report_free(&rp);
    return st;
}
