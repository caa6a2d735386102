/*
 * workflows.c - the playbook workflows on records (fieldvault.h,
 * "Workflows"): grade review, complaints with deadlines, important dates.
 *
 * Nothing here changes the merge rule.  Each step of a workflow is one
 * write, through fv_update, of fields only that step writes, so the store's
 * per-field last-writer-wins keeps every step whole and the derived state
 * (a proposal's fate, a complaint's status) is the same on every replica
 * that has seen the same steps.  Rights are the access policy's: the
 * writes go through fv_update, whose check (core/acl.c) applies
 * fv__policy_may_change, the rule fvd applies to the same changes.
 *
 * Layout: time and date helpers; the record hooks records.c calls (a
 * birthday's format, a complaint's defaults); the complaint deadline
 * policy (fv_meta); complaints; grade review; important dates.  The
 * iterations prepare their own statements (not the shared cache), so
 * their callbacks may call the reading functions.
 */
#include "records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

#define SQL_MAX 8192

/* ---- time and dates ---- */

static int leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int num(const char *s, size_t n, int *v)
{
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 1;
}

/* YYYY-MM-DD into y, m, d (a real calendar date). */
static int parse_date(const char *s, int *y, int *m, int *d)
{
    return s != NULL && strlen(s) == 10 && num(s, 4, y) && s[4] == '-' && num(s + 5, 2, m) &&
           s[7] == '-' && num(s + 8, 2, d) && *m >= 1 && *m <= 12 && *d >= 1 &&
           *d <= month_days(*y, *m);
}

/* MM-DD (a day of some year: 02-29 is one) into m, d. */
static int parse_month_day(const char *s, int *m, int *d)
{
    return s != NULL && strlen(s) == 5 && num(s, 2, m) && s[2] == '-' && num(s + 3, 2, d) &&
           *m >= 1 && *m <= 12 && *d >= 1 && *d <= month_days(2000, *m);
}

/* A stored time (YYYY-MM-DDTHH:MM:SSZ, as the setters normalise it) in
 * milliseconds; 0 when absent or malformed. */
static int64_t time_ms(const char *s)
{
    int y, mo, d, h, mi, se;
    if (s == NULL || strlen(s) != 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != 'Z')
        return 0;
    char date[11];
    memcpy(date, s, 10);
    date[10] = '\0';
    if (!parse_date(date, &y, &mo, &d) || !num(s + 11, 2, &h) || !num(s + 14, 2, &mi) ||
        !num(s + 17, 2, &se) || h > 23 || mi > 59 || se > 59)
        return 0;
    return (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * 1000;
}

static void now_text(char out[21])
{
    fv__time_format_ms(fv_platform_now_ms(), out);
}

/* A record's text field: NULL when empty, redacted, corrupt or absent. */
static const char *text_of(const fv_record *r, const char *field)
{
    const char *v = NULL;
    if (fv_record_get_text(r, field, &v) != FV_OK) return NULL;
    return v;
}

/* Set a field of r from code (never refused for a shipped field holding a
 * valid value): the message of a failure is the setter's. */
static fv_status set(fv_record *r, const char *field, const char *v)
{
    return fv_record_set_text(r, field, v);
}

/* ---- hooks of records.c ---- */

fv_status fv__workflow_check_text(fv_db *db, const fv__table *t, const fv__field *f,
                                  const char *v)
{
    int m, d;
    if (strcmp(t->name, "contact") != 0 || strcmp(f->name, "birthday") != 0) return FV_OK;
    if (parse_month_day(v, &m, &d)) return FV_OK;
    /* a birthday is personal data: the value is not quoted */
    return fv__err(db, FV_EINVAL,
                   "contact.birthday must be a day of the year as MM-DD, such as 07-14 "
                   "(02-29 is one, 02-30 is not)");
}

/* fv_meta key of urgency's deadline policy ("complaint_deadlines" for the
 * store's default). */
static void policy_key(const char *urgency, char *key, size_t cap)
{
    if (urgency == NULL) snprintf(key, cap, "complaint_deadlines");
    else snprintf(key, cap, "complaint_deadlines.%s", urgency);
}

static int parse_policy(const char *text, fv_complaint_deadlines *d)
{
    long long a, b, c;
    char end;
    if (sscanf(text, "%lld %lld %lld %c", &a, &b, &c, &end) != 3) return 0;
    d->ack_s = a;
    d->respond_s = b;
    d->resolve_s = c;
    return a > 0 && b >= a && c >= b && c <= FV_COMPLAINT_DEADLINE_MAX;
}

static int urgency_known(const char *u)
{
    return u == NULL || strcmp(u, "normal") == 0 || strcmp(u, "urgent") == 0 ||
           strcmp(u, "critical") == 0;
}

/* The policy for urgency: its own, else the store's default, else the
 * built-in one (a store whose default was removed behind its back). */
static fv_status read_policy(fv_db *db, const char *urgency, fv_complaint_deadlines *d)
{
    char key[64], text[128];
    d->ack_s = FV_COMPLAINT_ACK_S;
    d->respond_s = FV_COMPLAINT_RESPOND_S;
    d->resolve_s = FV_COMPLAINT_RESOLVE_S;
    for (int pass = urgency != NULL ? 0 : 1; pass < 2; pass++) {
        policy_key(pass == 0 ? urgency : NULL, key, sizeof key);
        fv_status st = fv__meta_text(db, key, text, sizeof text);
        if (st != FV_OK) return st;
        if (text[0] == '\0') continue;
        fv_complaint_deadlines got;
        if (!parse_policy(text, &got))
            return fv__err(db, FV_ECORRUPT,
                           "the complaint deadline policy (fv_meta %s) is malformed", key);
        d->ack_s = got.ack_s;
        d->respond_s = got.respond_s;
        d->resolve_s = got.resolve_s;
        break;
    }
    return FV_OK;
}

fv_status fv__workflow_defaults(fv_record *r)
{
    if (strcmp(r->tbl->name, "complaint") != 0) return FV_OK;
    fv_status st = FV_OK;
    char now[21];
    if (text_of(r, "received_at") == NULL) {
        now_text(now);
        st = set(r, "received_at", now);
    }
    if (st == FV_OK && text_of(r, "urgency") == NULL) st = set(r, "urgency", "normal");
    if (st != FV_OK) return st;
    fv_complaint_deadlines d;
    st = read_policy(r->db, text_of(r, "urgency"), &d);
    int64_t received = time_ms(text_of(r, "received_at"));
    static const char *const due[] = {"ack_due", "respond_due", "resolve_due"};
    const int64_t secs[] = {d.ack_s, d.respond_s, d.resolve_s};
    for (size_t i = 0; st == FV_OK && received > 0 && i < 3; i++) {
        if (text_of(r, due[i]) != NULL) continue; /* given by the caller */
        char at[21];
        fv__time_format_ms(received + secs[i] * 1000, at);
        st = set(r, due[i], at);
    }
    return st;
}

/* ---- the complaint deadline policy ---- */

fv_status fv_complaint_deadlines_get(fv_db *db, const char *urgency, fv_complaint_deadlines *out)
{
    if (db == NULL || out == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (out->size < sizeof *out)
        return fv__err(db, FV_EMISUSE, "fv_complaint_deadlines_get: out->size not set");
    if (!urgency_known(urgency))
        return fv__err(db, FV_EINVAL, "urgency must be normal, urgent or critical (got '%.20s')",
                       urgency);
    return read_policy(db, urgency, out);
}

fv_status fv_complaint_deadlines_set(fv_db *db, const char *urgency,
                                     const fv_complaint_deadlines *d)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (d != NULL && d->size < sizeof *d)
        return fv__err(db, FV_EMISUSE, "fv_complaint_deadlines_set: d->size not set");
    if (!urgency_known(urgency))
        return fv__err(db, FV_EINVAL, "urgency must be normal, urgent or critical (got '%.20s')",
                       urgency);
    if (d == NULL && urgency == NULL)
        return fv__err(db, FV_EINVAL, "the default complaint deadlines cannot be dropped");
    char key[64], text[128];
    policy_key(urgency, key, sizeof key);
    sqlite3_stmt *s;
    if (d != NULL) {
        if (!(d->ack_s > 0 && d->respond_s >= d->ack_s && d->resolve_s >= d->respond_s &&
              d->resolve_s <= FV_COMPLAINT_DEADLINE_MAX))
            return fv__err(db, FV_EINVAL,
                           "complaint deadlines must satisfy 0 < acknowledge <= respond <= "
                           "resolve <= %lld seconds", (long long)FV_COMPLAINT_DEADLINE_MAX);
        snprintf(text, sizeof text, "%lld %lld %lld", (long long)d->ack_s,
                 (long long)d->respond_s, (long long)d->resolve_s);
        s = fv__stmt(db, "INSERT OR REPLACE INTO fv_meta(key, value) VALUES(?1, ?2)");
        if (s == NULL) return db->err;
        sqlite3_bind_text(s, 2, text, -1, SQLITE_TRANSIENT);
    } else {
        s = fv__stmt(db, "DELETE FROM fv_meta WHERE key = ?1");
        if (s == NULL) return db->err;
    }
    sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? FV_OK : fv__sqlerr(db, rc, "writing the complaint deadlines");
}

/* ---- complaints ---- */

/* Per status reached: the stamp, who, note and deadline fields. */
static const char *const step_at[] = {"received_at", "acked_at", "responded_at", "resolved_at"};
static const char *const step_by[] = {NULL, "acked_by", "responded_by", "resolved_by"};
static const char *const step_note[] = {NULL, "ack_note", "respond_note", "resolve_note"};
static const char *const step_due[] = {NULL, "ack_due", "respond_due", "resolve_due"};
static const char *const status_name[] = {"open", "acknowledged", "responded", "resolved"};
static const char *const step_verb[] = {"opened", "acknowledged", "responded to", "resolved"};

static fv_status complaint_state(fv_db *db, const fv_record *c, int64_t now_ms,
                                 fv_complaint_state *out)
{
    memset((char *)out + sizeof out->size, 0, sizeof *out - sizeof out->size);
    out->now_ms = now_ms;
    out->status = FV_COMPLAINT_OPEN;
    for (int k = 0; k < 4; k++) {
        out->done_ms[k] = time_ms(text_of(c, step_at[k]));
        if (k > 0 && text_of(c, step_at[k]) != NULL) out->status = (fv_complaint_status)k;
    }
    int64_t received = out->done_ms[FV_COMPLAINT_OPEN];
    out->due_ms[FV_COMPLAINT_OPEN] = received;
    fv_complaint_deadlines d;
    int have_policy = 0;
    for (int k = 1; k < 4; k++) {
        out->due_ms[k] = time_ms(text_of(c, step_due[k]));
        if (out->due_ms[k] != 0 || received == 0) continue;
        if (!have_policy) { /* a deadline it lacks: from this store's policy */
            fv_status st = read_policy(db, text_of(c, "urgency"), &d);
            if (st != FV_OK) return st;
            have_policy = 1;
        }
        int64_t secs = k == 1 ? d.ack_s : k == 2 ? d.respond_s : d.resolve_s;
        out->due_ms[k] = received + secs * 1000;
    }
    if (out->status == FV_COMPLAINT_RESOLVED) {
        out->next = FV_COMPLAINT_RESOLVED;
        return FV_OK;
    }
    out->next = (fv_complaint_status)(out->status + 1);
    out->next_due_ms = out->due_ms[out->next];
    if (out->next_due_ms != 0) {
        out->left_ms = out->next_due_ms - now_ms;
        out->overdue = now_ms > out->next_due_ms;
    }
    return FV_OK;
}

fv_status fv_complaint_state_of(const fv_record *complaint, int64_t now_ms,
                                fv_complaint_state *out)
{
    if (complaint == NULL || out == NULL) return FV_EMISUSE;
    fv_db *db = complaint->db;
    fv__reset(db);
    if (out->size < sizeof *out)
        return fv__err(db, FV_EMISUSE, "fv_complaint_state_of: out->size not set");
    if (strcmp(complaint->tbl->name, "complaint") != 0)
        return fv__err(db, FV_EINVAL, "fv_complaint_state_of takes a complaint, not a %s",
                       complaint->tbl->name);
    return complaint_state(db, complaint, now_ms != 0 ? now_ms : fv_platform_now_ms(), out);
}

fv_status fv_complaint_advance(fv_db *db, const char *id, fv_complaint_status to,
                               const char *note)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (to < FV_COMPLAINT_ACKNOWLEDGED || to > FV_COMPLAINT_RESOLVED)
        return fv__err(db, FV_EINVAL, "a complaint is advanced to acknowledged, responded or "
                                      "resolved");
    fv_record *c = NULL;
    fv_status st = fv_get(db, "complaint", id, &c);
    if (st != FV_OK) return st;
    fv_complaint_state cs;
    cs.size = sizeof cs;
    st = complaint_state(db, c, fv_platform_now_ms(), &cs);
    if (st == FV_OK && cs.status >= to) {
        /* the step, or a later one, is taken already: status never goes back */
        const char *by = text_of(c, step_by[cs.status]), *at = text_of(c, step_at[cs.status]);
        st = fv__err(db, FV_EINVAL,
                     "complaint %s is %s already (%s%s%s%s%s): it cannot be %s now", id,
                     status_name[cs.status], step_verb[cs.status], by ? " by " : "",
                     by ? by : "", at ? " at " : "", at ? at : "", step_verb[to]);
    }
    char now[21];
    now_text(now);
    if (st == FV_OK) st = set(c, step_at[to], now);
    if (st == FV_OK) st = set(c, step_by[to], fv__acl_default_owner(db));
    if (st == FV_OK && note != NULL) st = set(c, step_note[to], note[0] != '\0' ? note : NULL);
    if (st == FV_OK) st = fv_update(db, c);
    fv_record_free(c);
    return st;
}

/* An iteration over the rows of table chosen by where (after "WHERE
 * deleted = 0"), in order: each visible one loaded into a record owned by
 * the iteration and passed to each(); 1 from each() stops. */
typedef fv_status (*row_fn)(void *ctx, fv_record *r, int *stop);

static fv_status each_row(fv_db *db, const char *table, const char *where, const char *order,
                          row_fn each, void *ctx)
{
    const fv__table *t = fv__schema_table(db, table);
    if (t == NULL) return fv__err(db, FV_EINTERNAL, "the catalogue has no %s table", table);
    char *sql = malloc(SQL_MAX);
    fv_record *r = calloc(1, sizeof *r);
    if (sql == NULL || r == NULL) {
        free(sql);
        free(r);
        return fv__err(db, FV_ENOMEM, "out of memory");
    }
    r->db = db;
    r->tbl = t;
    size_t n = (size_t)snprintf(sql, SQL_MAX, "SELECT ");
    n += fv__select_list(t, NULL, sql + n, SQL_MAX - n);
    snprintf(sql + n, SQL_MAX - n, " FROM \"%s\" WHERE deleted = 0%s%s ORDER BY %s", table,
             where[0] ? " AND " : "", where, order);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(db->sql, sql, -1, 0, &s, NULL);
    free(sql);
    fv_status st = rc == SQLITE_OK ? FV_OK : fv__sqlerr(db, rc, "preparing a workflow query");
    int stop = 0;
    while (st == FV_OK && !stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        int visible = 1;
        st = fv__record_load_row(r, s, 0);
        if (st == FV_OK) st = fv__acl_filter(r, &visible);
        if (st == FV_OK && visible) st = each(ctx, r, &stop);
    }
    if (st == FV_OK && !stop && rc != SQLITE_DONE) st = fv__sqlerr(db, rc, "reading records");
    sqlite3_finalize(s);
    fv_record_free(r);
    if (st == FV_OK) fv__reset(db); /* a callback's own calls leave no stale error */
    return st;
}

typedef struct complaints_walk {
    unsigned flags;
    int64_t now_ms;
    fv_complaint_fn fn;
    void *ctx;
} complaints_walk;

static fv_status complaint_row(void *ctx, fv_record *r, int *stop)
{
    complaints_walk *w = ctx;
    fv_complaint_state cs;
    cs.size = sizeof cs;
    fv_status st = complaint_state(r->db, r, w->now_ms, &cs);
    if (st != FV_OK) return st;
    if (!(w->flags & FV_COMPLAINTS_ALL) && cs.status == FV_COMPLAINT_RESOLVED) return FV_OK;
    if ((w->flags & FV_COMPLAINTS_OVERDUE) && !cs.overdue) return FV_OK;
    *stop = w->fn(w->ctx, r, &cs) != 0;
    return FV_OK;
}

fv_status fv_complaints_each(fv_db *db, unsigned flags, int64_t now_ms, fv_complaint_fn fn,
                             void *ctx)
{
    if (db == NULL || fn == NULL) return FV_EMISUSE;
    fv__reset(db);
    complaints_walk w = {flags, now_ms != 0 ? now_ms : fv_platform_now_ms(), fn, ctx};
    /* next deadline first: the stamped one of the step after the furthest
     * taken (a complaint lacking it sorts by its reception) */
    return each_row(db, "complaint", (flags & FV_COMPLAINTS_ALL) ? "" : "resolved_at IS NULL",
                    "resolved_at IS NOT NULL, COALESCE(CASE WHEN resolved_at IS NOT NULL THEN"
                    " resolved_at WHEN responded_at IS NOT NULL THEN resolve_due"
                    " WHEN acked_at IS NOT NULL THEN respond_due ELSE ack_due END, received_at),"
                    " received_at, id",
                    complaint_row, &w);
}

/* ---- grade review ---- */

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static void review_of(const fv_record *c, fv_grade_review *out)
{
    memset((char *)out + sizeof out->size, 0, sizeof *out - sizeof out->size);
    copy(out->grade, sizeof out->grade, text_of(c, "grade"));
    const char *proposed = text_of(c, "grade_proposed");
    if (proposed == NULL) return; /* FV_GRADE_NONE */
    copy(out->proposed, sizeof out->proposed, proposed);
    copy(out->proposed_by, sizeof out->proposed_by, text_of(c, "grade_proposed_by"));
    copy(out->proposed_at, sizeof out->proposed_at, text_of(c, "grade_proposed_at"));
    const char *decision = text_of(c, "grade_decision");
    const char *pid = text_of(c, "grade_proposal_id"), *for_id = text_of(c, "grade_decision_for");
    out->state = FV_GRADE_PROPOSED;
    /* a decision counts for the proposal it names, not for a later one */
    if (decision == NULL || strcmp(pid ? pid : "", for_id ? for_id : "") != 0) return;
    out->state = strcmp(decision, "approved") == 0 ? FV_GRADE_APPROVED : FV_GRADE_REJECTED;
    copy(out->decided_by, sizeof out->decided_by, text_of(c, "grade_decided_by"));
    copy(out->decided_at, sizeof out->decided_at, text_of(c, "grade_decided_at"));
}

fv_status fv_grade_review_of(const fv_record *customer, fv_grade_review *out)
{
    if (customer == NULL || out == NULL) return FV_EMISUSE;
    fv_db *db = customer->db;
    fv__reset(db);
    if (out->size < sizeof *out)
        return fv__err(db, FV_EMISUSE, "fv_grade_review_of: out->size not set");
    if (strcmp(customer->tbl->name, "customer") != 0)
        return fv__err(db, FV_EINVAL, "fv_grade_review_of takes a customer, not a %s",
                       customer->tbl->name);
    review_of(customer, out);
    return FV_OK;
}

fv_status fv_grade_propose(fv_db *db, const char *customer_id, const char *grade)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    if (grade == NULL || (strcmp(grade, "S") != 0 && strcmp(grade, "A") != 0 &&
                          strcmp(grade, "B") != 0))
        return fv__err(db, FV_EINVAL, "a proposed grade is S, A or B (got '%.8s')",
                       grade ? grade : "");
    fv_record *c = NULL;
    fv_status st = fv_get(db, "customer", customer_id, &c);
    if (st != FV_OK) return st;
    const char *current = text_of(c, "grade");
    if (current != NULL && strcmp(current, grade) == 0)
        st = fv__err(db, FV_EINVAL, "customer %s is grade %s already: nothing to propose",
                     customer_id, grade);
    char now[21], pid[FV_ID_LEN + 1];
    unsigned char raw[16];
    now_text(now);
    fv__uuid7(db, raw);
    fv__uuid_format(raw, pid);
    if (st == FV_OK) st = set(c, "grade_proposed", grade);
    if (st == FV_OK) st = set(c, "grade_proposed_by", fv__acl_default_owner(db));
    if (st == FV_OK) st = set(c, "grade_proposed_at", now);
    if (st == FV_OK) st = set(c, "grade_proposal_id", pid);
    if (st == FV_OK) st = fv_update(db, c);
    fv_record_free(c);
    return st;
}

fv_status fv_grade_decide(fv_db *db, const char *customer_id, int approve)
{
    if (db == NULL) return FV_EMISUSE;
    fv__reset(db);
    fv_record *c = NULL;
    fv_status st = fv_get(db, "customer", customer_id, &c);
    if (st != FV_OK) return st;
    fv_grade_review rv;
    rv.size = sizeof rv;
    review_of(c, &rv);
    if (rv.state == FV_GRADE_NONE) {
        st = fv__err(db, FV_EINVAL, "customer %s has no grade proposal to decide on", customer_id);
    } else if (rv.state != FV_GRADE_PROPOSED) {
        st = fv__err(db, FV_EINVAL,
                     "no grade proposal of customer %s waits for a decision: the latest (%s, "
                     "proposed by %s) was %s by %s at %s", customer_id, rv.proposed,
                     rv.proposed_by, rv.state == FV_GRADE_APPROVED ? "approved" : "rejected",
                     rv.decided_by, rv.decided_at);
    }
    char now[21];
    now_text(now);
    const char *pid = text_of(c, "grade_proposal_id");
    if (st == FV_OK) st = set(c, "grade_decision", approve ? "approved" : "rejected");
    if (st == FV_OK) st = set(c, "grade_decided_by", fv__acl_default_owner(db));
    if (st == FV_OK) st = set(c, "grade_decided_at", now);
    if (st == FV_OK) st = set(c, "grade_decision_for", pid);
    /* The grade is written either way, with the decision: of two decisions
     * made concurrently, the one that wins the merge also decides the
     * grade (a rejection writes the grade it leaves in place). */
    if (st == FV_OK) st = set(c, "grade", approve ? rv.proposed : (rv.grade[0] ? rv.grade : NULL));
    if (st == FV_OK) st = fv_update(db, c);
    fv_record_free(c);
    return st;
}

typedef struct reviews_walk {
    int pending_only;
    fv_grade_review_fn fn;
    void *ctx;
} reviews_walk;

static fv_status review_row(void *ctx, fv_record *r, int *stop)
{
    reviews_walk *w = ctx;
    fv_grade_review rv;
    rv.size = sizeof rv;
    review_of(r, &rv);
    if (rv.state == FV_GRADE_NONE || (w->pending_only && rv.state != FV_GRADE_PROPOSED))
        return FV_OK;
    *stop = w->fn(w->ctx, r, &rv) != 0;
    return FV_OK;
}

fv_status fv_grade_reviews_each(fv_db *db, int pending_only, fv_grade_review_fn fn, void *ctx)
{
    if (db == NULL || fn == NULL) return FV_EMISUSE;
    fv__reset(db);
    reviews_walk w = {pending_only, fn, ctx};
    return each_row(db, "customer", "grade_proposed IS NOT NULL",
                    "grade_proposed_at DESC, name, id", review_row, &w);
}

/* ---- important dates ---- */

typedef struct date_item {
    int kind; /* 0 birthday, 1 anniversary: birthdays first on a day */
    int64_t day;
    int years;
    char id[FV_ID_LEN + 1], customer_id[FV_ID_LEN + 1];
    char *name, *customer;
} date_item;

typedef struct dates_walk {
    fv_db *db;
    int64_t first, last; /* days since the epoch, inclusive */
    int first_year;
    date_item *v;
    size_t n, cap;
} dates_walk;

static void items_free(dates_walk *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->v[i].name);
        free(w->v[i].customer);
    }
    free(w->v);
}

/* The customer's name as the user may read it (NULL if not). */
static fv_status customer_name(fv_db *db, const char *id, char **out)
{
    *out = NULL;
    fv_record *c = NULL;
    fv_status st = fv_get(db, "customer", id, &c);
    if (st == FV_ENOTFOUND || st == FV_EINVAL) {
        fv__reset(db);
        return FV_OK;
    }
    if (st != FV_OK) return st;
    const char *name = text_of(c, "name");
    if (name != NULL && (*out = fv__strdup(name)) == NULL)
        st = fv__err(db, FV_ENOMEM, "out of memory");
    fv_record_free(c);
    return st;
}

/* Record the occurrences of month m, day d (from year since_year on, for
 * an anniversary) within the walk's range. */
static fv_status add_occurrences(dates_walk *w, const fv_record *r, int kind, int m, int d,
                                 int since_year)
{
    fv_status st = FV_OK;
    /* the range spans at most 367 days: three calendar years at most */
    for (int y = w->first_year; st == FV_OK && y <= w->first_year + 2; y++) {
        int dd = m == 2 && d == 29 && !leap(y) ? 28 : d; /* a 29 February outside leap years */
        int64_t day = days_from_civil(y, m, dd);
        if (day < w->first || day > w->last) continue;
        if (kind == 1 && y - since_year < 1) continue; /* no anniversary before a year */
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 16;
            date_item *v = realloc(w->v, cap * sizeof *v);
            if (v == NULL) return fv__err(w->db, FV_ENOMEM, "out of memory");
            w->v = v;
            w->cap = cap;
        }
        date_item *it = &w->v[w->n];
        memset(it, 0, sizeof *it);
        it->kind = kind;
        it->day = day;
        it->years = kind == 1 ? y - since_year : 0;
        copy(it->id, sizeof it->id, fv_record_id(r));
        copy(it->customer_id, sizeof it->customer_id,
             kind == 1 ? fv_record_id(r) : text_of(r, "customer_id"));
        const char *name = text_of(r, "name");
        it->name = fv__strdup(name ? name : "");
        if (it->name == NULL) return fv__err(w->db, FV_ENOMEM, "out of memory");
        w->n++;
        if (kind == 1) {
            it->customer = fv__strdup(it->name);
            if (it->customer == NULL) st = fv__err(w->db, FV_ENOMEM, "out of memory");
        } else if (it->customer_id[0] != '\0') {
            st = customer_name(w->db, it->customer_id, &it->customer);
        }
    }
    return st;
}

static fv_status birthday_row(void *ctx, fv_record *r, int *stop)
{
    (void)stop;
    int m, d;
    /* a value that is not a month-day (arrived from elsewhere) is skipped */
    if (!parse_month_day(text_of(r, "birthday"), &m, &d)) return FV_OK;
    return add_occurrences(ctx, r, 0, m, d, 0);
}

static fv_status anniversary_row(void *ctx, fv_record *r, int *stop)
{
    (void)stop;
    int y, m, d;
    if (!parse_date(text_of(r, "since"), &y, &m, &d)) return FV_OK;
    return add_occurrences(ctx, r, 1, m, d, y);
}

static int item_cmp(const void *a, const void *b)
{
    const date_item *x = a, *y = b;
    if (x->day != y->day) return x->day < y->day ? -1 : 1;
    if (x->kind != y->kind) return x->kind - y->kind;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->id, y->id);
}

fv_status fv_dates_each(fv_db *db, const char *from, int days, fv_date_fn fn, void *ctx)
{
    if (db == NULL || fn == NULL) return FV_EMISUSE;
    fv__reset(db);
    char today[21];
    if (from == NULL) {
        now_text(today);
        today[10] = '\0';
        from = today;
    }
    int y, m, d;
    if (!parse_date(from, &y, &m, &d))
        return fv__err(db, FV_EINVAL, "the first day must be a date YYYY-MM-DD (got '%.20s')",
                       from);
    if (days < 0 || days > 366)
        return fv__err(db, FV_EINVAL, "the range of days is 0 to 366 (got %d)", days);
    dates_walk w;
    memset(&w, 0, sizeof w);
    w.db = db;
    w.first = days_from_civil(y, m, d);
    w.last = w.first + days;
    w.first_year = y;
    fv_status st = FV_OK;
    const fv__table *ct = fv__schema_table(db, "contact");
    if (fv__schema_field(ct, "birthday", NULL) != NULL)
        st = each_row(db, "contact", "birthday IS NOT NULL", "id", birthday_row, &w);
    if (st == FV_OK && fv__schema_field(fv__schema_table(db, "customer"), "since", NULL) != NULL)
        st = each_row(db, "customer", "since IS NOT NULL", "id", anniversary_row, &w);
    if (st == FV_OK && w.n > 1) qsort(w.v, w.n, sizeof *w.v, item_cmp);
    for (size_t i = 0; st == FV_OK && i < w.n; i++) {
        const date_item *it = &w.v[i];
        fv_date_event e;
        memset(&e, 0, sizeof e);
        e.kind = it->kind == 0 ? "birthday" : "anniversary";
        e.table = it->kind == 0 ? "contact" : "customer";
        e.id = it->id;
        e.customer_id = it->customer_id;
        e.name = it->name;
        e.customer = it->customer;
        fv__time_format_ms(it->day * 86400 * 1000, today);
        memcpy(e.date, today, 10);
        e.date[10] = '\0';
        e.days = (int)(it->day - w.first);
        e.years = it->years;
        if (fn(ctx, &e) != 0) break;
    }
    items_free(&w);
    if (st == FV_OK) fv__reset(db);
    return st;
}
