/*
 * test_workflows.c - the playbook workflows of issue 9 (fieldvault.h,
 * "Workflows"): grade review, complaints with deadlines, important dates.
 * Real store files; devices syncing through a real fvd on loopback
 * (tests/fvdproc.c) where the point is what other devices end up with;
 * the fv binary where the command line is the subject.
 *
 *  1. a rep proposes S; the lead, who synced the proposal, rejects it
 *     while the rep edits offline: after both sync, both see the grade
 *     unchanged and the proposal rejected.  An approved proposal changes
 *     the grade on every device, and fv due's cadence with it;
 *  2. complaint deadlines with a fixed clock (the platform clock hook):
 *     one second before each deadline, exactly at it, one second after;
 *     the deadline policy is data (an urgency's own deadlines apply);
 *  3. a complaint resolved on one device and acknowledged later on
 *     another, both offline, is resolved on every device after sync;
 *  4. birthdays and anniversaries in fv due within three days, not on the
 *     fourth; MM-DD validated (02-30 refused);
 *  and rights: a rep cannot decide on a proposal or set a grade directly
 *  (FV_EACCES, exit 5 from fv), fvd refuses a crafted grade change from a
 *  rep's device, and a new customer's first grade is not a change (also
 *  with small push batches).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fieldvault.h"
#include "internal.h"
#include "platform.h"
#include "testutil.h"
#ifdef FVD_BIN
#include "fvdproc.h"
#endif

#define PASS "pw"

/* ---- devices ------------------------------------------------------------ */

typedef struct dev {
    char *path;
    fv_db *db;
} dev;

static char *scratch; /* the group's directory */

static void dev_open(dev *d, const char *name, const char *user)
{
    d->path = tu_path(scratch, name);
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = d->path;
    cfg.passphrase = PASS;
    cfg.passphrase_len = strlen(PASS);
    cfg.flags = FV_OPEN_CREATE;
    cfg.kdf_mem_kib = 8192;
    cfg.kdf_passes = 1;
    cfg.user = user;
    fv_status st = fv_open(&d->db, &cfg);
    if (st != FV_OK) fprintf(stderr, "open %s: %s\n", name, fv_errmsg(d->db));
    assert_int_equal(st, FV_OK);
}

static void dev_close(dev *d)
{
    if (d->db != NULL) assert_int_equal(fv_close(d->db), FV_OK);
    d->db = NULL;
    free(d->path);
    d->path = NULL;
}

static void expect_ok(fv_db *db, fv_status st, const char *what)
{
    if (st != FV_OK) fprintf(stderr, "%s: %s (%s)\n", what, fv_status_str(st), fv_errmsg(db));
    assert_int_equal(st, FV_OK);
}

static char *add_customer(fv_db *db, const char *name, const char *grade)
{
    fv_record *r;
    expect_ok(db, fv_record_new(db, "customer", &r), "customer new");
    expect_ok(db, fv_record_set_text(r, "name", name), "name");
    if (grade != NULL) expect_ok(db, fv_record_set_text(r, "grade", grade), "grade");
    expect_ok(db, fv_insert(db, r), "customer insert");
    char *id = strdup(fv_record_id(r));
    fv_record_free(r);
    return id;
}

static char *add_complaint(fv_db *db, const char *customer, const char *summary,
                           const char *urgency)
{
    fv_record *r;
    expect_ok(db, fv_record_new(db, "complaint", &r), "complaint new");
    expect_ok(db, fv_record_set_text(r, "customer_id", customer), "customer_id");
    expect_ok(db, fv_record_set_text(r, "summary", summary), "summary");
    if (urgency != NULL) expect_ok(db, fv_record_set_text(r, "urgency", urgency), "urgency");
    expect_ok(db, fv_insert(db, r), "complaint insert");
    char *id = strdup(fv_record_id(r));
    fv_record_free(r);
    return id;
}

static fv_grade_review review(fv_db *db, const char *id)
{
    fv_record *r;
    expect_ok(db, fv_get(db, "customer", id, &r), "get customer");
    fv_grade_review rv;
    rv.size = sizeof rv;
    expect_ok(db, fv_grade_review_of(r, &rv), "review");
    fv_record_free(r);
    return rv;
}

static fv_complaint_state complaint_state(fv_db *db, const char *id, int64_t now_ms)
{
    fv_record *r;
    expect_ok(db, fv_get(db, "complaint", id, &r), "get complaint");
    fv_complaint_state cs;
    cs.size = sizeof cs;
    expect_ok(db, fv_complaint_state_of(r, now_ms, &cs), "complaint state");
    fv_record_free(r);
    return cs;
}

static void set_field(fv_db *db, const char *table, const char *id, const char *field,
                      const char *value, fv_status want)
{
    fv_record *r;
    expect_ok(db, fv_get(db, table, id, &r), "get");
    expect_ok(db, fv_record_set_text(r, field, value), "set");
    fv_status st = fv_update(db, r);
    if (st != want) fprintf(stderr, "update %s.%s: %s\n", table, field, fv_errmsg(db));
    assert_int_equal(st, want);
    fv_record_free(r);
}

static void expect_text(fv_db *db, const char *table, const char *id, const char *field,
                        const char *want)
{
    fv_record *r;
    expect_ok(db, fv_get(db, table, id, &r), "get");
    const char *v = NULL;
    expect_ok(db, fv_record_get_text(r, field, &v), "get text");
    if (want == NULL) assert_null(v);
    else {
        assert_non_null(v);
        assert_string_equal(v, want);
    }
    fv_record_free(r);
}

/* Is customer id due on date (fv_list_due)? */
static int is_due(fv_db *db, const char *id, const char *date)
{
    fv_list *l;
    expect_ok(db, fv_list_due(db, date, &l), "due");
    const fv_record *r;
    int found = 0;
    while (fv_list_next(l, &r) == FV_OK && r != NULL)
        if (strcmp(fv_record_id(r), id) == 0) found = 1;
    fv_list_free(l);
    return found;
}

/* A date n days from now, YYYY-MM-DD (UTC). */
static void date_in(int n, char out[11])
{
    time_t t = time(NULL) + (time_t)n * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

/* ---- fv ------------------------------------------------------------------ */

static const char *const fv_env[] = {"FV_PASSPHRASE=" PASS, "FV_USER", "FV_CLOCK_SKEW_MS", NULL};

static tu_result fv_run(const char *const *args)
{
    const char *argv[24];
    size_t n = 0;
    argv[n++] = FV_BIN;
    for (size_t i = 0; args[i] != NULL && n < 23; i++) argv[n++] = args[i];
    argv[n] = NULL;
    return tu_run(argv, fv_env, NULL);
}

#define FV(...) fv_run((const char *const[]){__VA_ARGS__, NULL})

static void expect_exit(const tu_result *r, int code, const char *what)
{
    if (r->exit_code != code)
        fprintf(stderr, "%s: exit %d (wanted %d)\nstdout: %s\nstderr: %s\n", what, r->exit_code,
                code, r->out, r->err);
    assert_int_equal(r->exit_code, code);
}

/* The output of fv with its trailing newline removed (malloc'd). */
static char *fv_line(const char *const *args, const char *what)
{
    tu_result r = fv_run(args);
    expect_exit(&r, 0, what);
    size_t n = strlen(r.out);
    while (n > 0 && r.out[n - 1] == '\n') r.out[--n] = '\0';
    free(r.err);
    return r.out;
}

#define FV_LINE(what, ...) fv_line((const char *const[]){__VA_ARGS__, NULL}, what)

/* ---- fvd ----------------------------------------------------------------- */

#ifdef FVD_BIN
static fvdp_backend backend;
static fvdp_server server;

static void dev_enroll(dev *d, const char *user, const char *role, const char *team)
{
    char *code = fvdp_add_user(&backend, user, role, team);
    assert_non_null(code);
    fv_status st = fv_enroll(d->db, server.base, code, NULL);
    if (st != FV_OK) fprintf(stderr, "enroll %s: %s\n", user, fv_errmsg(d->db));
    assert_int_equal(st, FV_OK);
    free(code);
}

/* Sync until drained; batch: push batch size (0: the default). */
static fv_sync_result dev_sync(dev *d, uint32_t batch)
{
    fv_sync_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.batch_changes = batch;
    fv_sync_result r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    fv_status st = fv_sync(d->db, &cfg, &r);
    if (st != FV_OK) {
        fprintf(stderr, "sync %s: %s\n", d->path, fv_errmsg(d->db));
        fvdp_log_tail(&server, 20);
    }
    assert_int_equal(st, FV_OK);
    assert_true(r.drained);
    return r;
}

static void same_state(dev *a, dev *b)
{
    char ha[65], hb[65];
    expect_ok(a->db, fv_state_hash(a->db, ha), "hash");
    expect_ok(b->db, fv_state_hash(b->db, hb), "hash");
    assert_string_equal(ha, hb);
}
#endif

static int group_setup(void **state)
{
    (void)state;
    scratch = tu_mkdtemp("workflows");
#ifdef FVD_BIN
    memset(&backend, 0, sizeof backend);
    memset(&server, 0, sizeof server);
    backend.fvd_bin = FVD_BIN;
    backend.name = "sqlite";
    snprintf(backend.data, sizeof backend.data, "%s/fvd-data", scratch);
    snprintf(server.log, sizeof server.log, "%s/fvd.log", scratch);
    if (fvdp_start(&backend, &server, 0) != 0) return -1;
#endif
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
#ifdef FVD_BIN
    fvdp_kill(&server, SIGTERM);
#endif
    tu_rmtree(scratch);
    free(scratch);
    return 0;
}

/* ---- 1. grade review through fvd -------------------------------------- */

static void test_grade_review_through_fvd(void **state)
{
    (void)state;
#ifndef FVD_BIN
    skip();
#else
    dev rep, lead;
    dev_open(&rep, "g-rep.fv", "ana");
    dev_open(&lead, "g-lead.fv", "lee");
    dev_enroll(&rep, "ana", "rep", "north");
    dev_enroll(&lead, "lee", "lead", "north");

    /* a rep may give a new customer its first grade: the write creating it
     * is not a change of grade (pushed in batches of 2 changes: each
     * customer's insert in a batch of its own) */
    char *cid = add_customer(rep.db, "Acme Foods", "A");
    char *other = add_customer(rep.db, "Borealis Mills", "B");
    fv_sync_result res = dev_sync(&rep, 2);
    assert_int_equal(res.rejected, 0);
    dev_sync(&lead, 0);
    expect_text(lead.db, "customer", cid, "grade", "A");

    /* the rep proposes S; the lead syncs and sees the proposal */
    expect_ok(rep.db, fv_grade_propose(rep.db, cid, "S"), "propose");
    fv_grade_review rv = review(rep.db, cid);
    assert_int_equal(rv.state, FV_GRADE_PROPOSED);
    assert_string_equal(rv.grade, "A");
    dev_sync(&rep, 0);
    dev_sync(&lead, 0);
    rv = review(lead.db, cid);
    assert_int_equal(rv.state, FV_GRADE_PROPOSED);
    assert_string_equal(rv.proposed, "S");
    assert_string_equal(rv.proposed_by, "ana");
    assert_string_equal(rv.grade, "A");

    /* the rep may neither decide nor set the grade directly */
    assert_int_equal(fv_grade_decide(rep.db, cid, 1), FV_EACCES);
    assert_non_null(strstr(fv_errmsg(rep.db), "lead or director"));
    set_field(rep.db, "customer", cid, "grade", "S", FV_EACCES);
    assert_non_null(strstr(fv_errmsg(rep.db), "propose"));
    /* nor may the lead decide where nothing was proposed */
    assert_int_equal(fv_grade_decide(lead.db, other, 1), FV_EINVAL);
    assert_non_null(strstr(fv_errmsg(lead.db), "no grade proposal"));

    /* both offline: the lead rejects; the rep edits the customer meanwhile */
    expect_ok(lead.db, fv_grade_decide(lead.db, cid, 0), "reject");
    set_field(rep.db, "customer", cid, "stage", "negotiation", FV_OK);
    assert_int_equal(review(rep.db, cid).state, FV_GRADE_PROPOSED); /* not seen yet */
    dev_sync(&rep, 0);
    dev_sync(&lead, 0);
    dev_sync(&rep, 0);
    for (int k = 0; k < 2; k++) {
        dev *d = k == 0 ? &rep : &lead;
        rv = review(d->db, cid);
        assert_int_equal(rv.state, FV_GRADE_REJECTED);
        assert_string_equal(rv.grade, "A");
        assert_string_equal(rv.proposed, "S");
        assert_string_equal(rv.decided_by, "lee");
        expect_text(d->db, "customer", cid, "stage", "negotiation");
    }
    same_state(&rep, &lead);
    assert_int_equal(fv_grade_decide(lead.db, cid, 1), FV_EINVAL); /* decided already */
    assert_non_null(strstr(fv_errmsg(lead.db), "rejected by lee"));

    /* an approved proposal changes the grade everywhere, and the cadence of
     * fv due with it: A is due 14 days after creation, B 30 */
    char in20[11];
    date_in(20, in20);
    assert_true(is_due(rep.db, cid, in20));
    expect_ok(rep.db, fv_grade_propose(rep.db, cid, "B"), "propose B");
    dev_sync(&rep, 0);
    dev_sync(&lead, 0);
    assert_int_equal(review(lead.db, cid).state, FV_GRADE_PROPOSED);
    expect_ok(lead.db, fv_grade_decide(lead.db, cid, 1), "approve");
    dev_sync(&lead, 0);
    dev_sync(&rep, 0);
    for (int k = 0; k < 2; k++) {
        dev *d = k == 0 ? &rep : &lead;
        rv = review(d->db, cid);
        assert_int_equal(rv.state, FV_GRADE_APPROVED);
        assert_string_equal(rv.grade, "B");
        assert_false(is_due(d->db, cid, in20));
    }
    same_state(&rep, &lead);

    /* the same rights through fv, on the rep's store: exit 5, and why */
    dev_close(&rep);
    char *path = tu_path(scratch, "g-rep.fv");
    tu_result r = FV("customer", "update", path, cid, "--grade", "S");
    expect_exit(&r, 5, "fv customer update --grade as a rep");
    assert_non_null(strstr(r.err, "propose"));
    tu_result_free(&r);
    r = FV("customer", "grade", path, cid, "--propose", "S");
    expect_exit(&r, 0, "fv customer grade --propose as a rep");
    tu_result_free(&r);
    r = FV("customer", "grade", path, cid, "--approve");
    expect_exit(&r, 5, "fv customer grade --approve as a rep");
    assert_non_null(strstr(r.err, "lead or director"));
    tu_result_free(&r);
    r = FV("customer", "grade", path, cid, "--json");
    expect_exit(&r, 0, "fv customer grade --json");
    assert_non_null(strstr(r.out, "\"state\": \"proposed\""));
    assert_non_null(strstr(r.out, "\"grade\": \"B\""));
    tu_result_free(&r);
    r = FV("customer", "proposals", path, "--ids");
    expect_exit(&r, 0, "fv customer proposals");
    assert_non_null(strstr(r.out, cid));
    tu_result_free(&r);
    free(path);
    free(other);
    free(cid);
    dev_close(&lead);
#endif
}

/* fvd judges pushed changes by the same rule: a device that skips its own
 * check (a modified client) gets its grade changes refused. */
static void test_fvd_refuses_crafted_grade(void **state)
{
    (void)state;
#ifndef FVD_BIN
    skip();
#else
    dev rep, lead;
    dev_open(&rep, "c-rep.fv", "bo");
    dev_open(&lead, "c-lead.fv", "liu");
    dev_enroll(&rep, "bo", "rep", "south");
    dev_enroll(&lead, "liu", "lead", "south");
    char *cid = add_customer(rep.db, "Cedar Retail", "A");
    dev_sync(&rep, 0);
    dev_sync(&lead, 0);

    /* the rep's device writes grade S and an approval, skipping the check
     * the library makes on every write */
    rep.db->enrolled = 0;
    fv_record *r;
    expect_ok(rep.db, fv_get(rep.db, "customer", cid, &r), "get");
    expect_ok(rep.db, fv_record_set_text(r, "grade", "S"), "grade");
    expect_ok(rep.db, fv_record_set_text(r, "grade_decision", "approved"), "decision");
    expect_ok(rep.db, fv_record_set_text(r, "region", "South-East"), "region");
    expect_ok(rep.db, fv_update(rep.db, r), "crafted update");
    fv_record_free(r);
    rep.db->enrolled = 1;
    fv_sync_result res = dev_sync(&rep, 0);
    assert_int_equal(res.rejected, 2); /* grade and grade_decision; region applies */
    dev_sync(&lead, 0);
    expect_text(lead.db, "customer", cid, "grade", "A");
    expect_text(lead.db, "customer", cid, "grade_decision", NULL);
    expect_text(lead.db, "customer", cid, "region", "South-East");

    /* a lead changes a grade directly; it reaches the rep */
    set_field(lead.db, "customer", cid, "grade", "B", FV_OK);
    res = dev_sync(&lead, 0);
    assert_int_equal(res.rejected, 0);
    dev_sync(&rep, 0);
    expect_text(rep.db, "customer", cid, "grade", "B");
    free(cid);
    dev_close(&rep);
    dev_close(&lead);
#endif
}

/* ---- 2. deadlines with a fixed clock ----------------------------------- */

static int64_t fixed_now;

static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return fixed_now;
}

static fv_platform fixed_platform = {FV_PLATFORM_VERSION, NULL, fixed_clock, NULL, NULL, NULL,
                                     NULL, NULL, NULL, NULL, NULL, NULL};

typedef struct listed {
    size_t n;
    char ids[8][FV_ID_LEN + 1];
} listed;

static int collect(void *ctx, const fv_record *c, const fv_complaint_state *st)
{
    (void)st;
    listed *l = ctx;
    if (l->n < 8) snprintf(l->ids[l->n], sizeof l->ids[0], "%s", fv_record_id(c));
    l->n++;
    return 0;
}

/* complaint k's next deadline is due_ms: one second before it, exactly at
 * it and one second after, as fv_complaint_state_of and the overdue list
 * (both at the fixed clock) see it */
static void check_boundary(fv_db *db, const char *k, fv_complaint_status next, int64_t due_ms)
{
    static const int64_t offsets[] = {-1000, 0, 1000};
    for (size_t i = 0; i < 3; i++) {
        fixed_now = due_ms + offsets[i];
        fv_complaint_state cs = complaint_state(db, k, 0);
        assert_int_equal(cs.now_ms, fixed_now);
        assert_int_equal(cs.next, next);
        assert_int_equal(cs.next_due_ms, due_ms);
        assert_int_equal(cs.due_ms[next], due_ms);
        assert_int_equal(cs.left_ms, -offsets[i]);
        assert_int_equal(cs.overdue, offsets[i] > 0); /* exactly at it: not yet */
        listed l;
        memset(&l, 0, sizeof l);
        expect_ok(db, fv_complaints_each(db, FV_COMPLAINTS_OVERDUE, 0, collect, &l), "overdue");
        int found = 0;
        for (size_t j = 0; j < l.n && j < 8; j++) found |= strcmp(l.ids[j], k) == 0;
        assert_int_equal(found, offsets[i] > 0);
    }
}

static void test_deadline_boundaries(void **state)
{
    (void)state;
    /* 2026-03-02T10:00:00Z */
    const int64_t t0 = 1772445600LL * 1000;
    fixed_now = t0;
    assert_int_equal(fv_platform_set(&fixed_platform), FV_OK);
    dev d;
    dev_open(&d, "deadlines.fv", "sam");
    char *cid = add_customer(d.db, "Delta Foods", "A");

    /* the default policy, recorded in the store */
    fv_complaint_deadlines pol;
    pol.size = sizeof pol;
    expect_ok(d.db, fv_complaint_deadlines_get(d.db, NULL, &pol), "policy");
    assert_int_equal(pol.ack_s, 3600);
    assert_int_equal(pol.respond_s, 86400);
    assert_int_equal(pol.resolve_s, 172800);

    char *k = add_complaint(d.db, cid, "Late delivery", NULL);
    expect_text(d.db, "complaint", k, "received_at", "2026-03-02T10:00:00Z");
    expect_text(d.db, "complaint", k, "urgency", "normal");
    expect_text(d.db, "complaint", k, "ack_due", "2026-03-02T11:00:00Z");
    expect_text(d.db, "complaint", k, "respond_due", "2026-03-03T10:00:00Z");
    expect_text(d.db, "complaint", k, "resolve_due", "2026-03-04T10:00:00Z");
    fv_complaint_state cs = complaint_state(d.db, k, 0);
    assert_int_equal(cs.status, FV_COMPLAINT_OPEN);
    assert_int_equal(cs.due_ms[FV_COMPLAINT_OPEN], t0);

    /* acknowledge within the hour */
    check_boundary(d.db, k, FV_COMPLAINT_ACKNOWLEDGED, t0 + 3600 * 1000LL);
    fixed_now = t0 + 1800 * 1000LL;
    expect_ok(d.db, fv_complaint_advance(d.db, k, FV_COMPLAINT_ACKNOWLEDGED, "called back"),
              "ack");
    expect_text(d.db, "complaint", k, "acked_at", "2026-03-02T10:30:00Z");
    expect_text(d.db, "complaint", k, "acked_by", "sam");
    /* respond within 24 hours of reception */
    check_boundary(d.db, k, FV_COMPLAINT_RESPONDED, t0 + 86400 * 1000LL);
    expect_ok(d.db, fv_complaint_advance(d.db, k, FV_COMPLAINT_RESPONDED, NULL), "respond");
    /* resolve within 48 */
    check_boundary(d.db, k, FV_COMPLAINT_RESOLVED, t0 + 172800 * 1000LL);
    fixed_now = t0 + 172800 * 1000LL + 5000; /* resolved late: the state says so */
    expect_ok(d.db, fv_complaint_advance(d.db, k, FV_COMPLAINT_RESOLVED, "replaced"), "resolve");
    cs = complaint_state(d.db, k, 0);
    assert_int_equal(cs.status, FV_COMPLAINT_RESOLVED);
    assert_int_equal(cs.overdue, 0);
    assert_true(cs.done_ms[FV_COMPLAINT_RESOLVED] > cs.due_ms[FV_COMPLAINT_RESOLVED]);
    listed l;
    memset(&l, 0, sizeof l);
    expect_ok(d.db, fv_complaints_each(d.db, 0, 0, collect, &l), "open");
    assert_int_equal(l.n, 0); /* resolved: no longer listed... */
    expect_ok(d.db, fv_complaints_each(d.db, FV_COMPLAINTS_ALL, 0, collect, &l), "all");
    assert_int_equal(l.n, 1); /* ...but there */

    /* status only moves forward, on the device too */
    assert_int_equal(fv_complaint_advance(d.db, k, FV_COMPLAINT_ACKNOWLEDGED, NULL), FV_EINVAL);
    assert_non_null(strstr(fv_errmsg(d.db), "resolved already"));

    /* the policy is data: critical complaints get their own deadlines,
     * counted from when they were received (an explicit received_at) */
    fv_complaint_deadlines crit = {sizeof crit, 900, 4 * 3600, 24 * 3600};
    expect_ok(d.db, fv_complaint_deadlines_set(d.db, "critical", &crit), "set critical");
    fv_complaint_deadlines bad = {sizeof bad, 7200, 3600, 86400};
    assert_int_equal(fv_complaint_deadlines_set(d.db, "urgent", &bad), FV_EINVAL);
    assert_int_equal(fv_complaint_deadlines_set(d.db, "severe", &crit), FV_EINVAL);
    fv_record *r;
    expect_ok(d.db, fv_record_new(d.db, "complaint", &r), "new");
    expect_ok(d.db, fv_record_set_text(r, "customer_id", cid), "customer");
    expect_ok(d.db, fv_record_set_text(r, "summary", "Gas leak"), "summary");
    expect_ok(d.db, fv_record_set_text(r, "urgency", "critical"), "urgency");
    expect_ok(d.db, fv_record_set_text(r, "received_at", "2026-03-05T08:00:00+01:00"), "at");
    expect_ok(d.db, fv_insert(d.db, r), "insert");
    char *k2 = strdup(fv_record_id(r));
    fv_record_free(r);
    expect_text(d.db, "complaint", k2, "ack_due", "2026-03-05T07:15:00Z");
    const int64_t r2 = (1772445600LL + 3 * 86400 - 3 * 3600) * 1000; /* 2026-03-05T07:00:00Z */
    check_boundary(d.db, k2, FV_COMPLAINT_ACKNOWLEDGED, r2 + 900 * 1000LL);
    /* the store's default still applies to other urgencies; dropping
     * critical's own brings it back to the default */
    pol.size = sizeof pol;
    expect_ok(d.db, fv_complaint_deadlines_get(d.db, "urgent", &pol), "urgent");
    assert_int_equal(pol.ack_s, 3600);
    expect_ok(d.db, fv_complaint_deadlines_set(d.db, "critical", NULL), "drop critical");
    expect_ok(d.db, fv_complaint_deadlines_get(d.db, "critical", &pol), "critical");
    assert_int_equal(pol.ack_s, 3600);
    /* ...while the complaint keeps the deadlines it was given */
    check_boundary(d.db, k2, FV_COMPLAINT_ACKNOWLEDGED, r2 + 900 * 1000LL);

    /* a complaint lacking its deadlines (written by another writer) gets
     * them from this store's policy */
    set_field(d.db, "complaint", k2, "ack_due", NULL, FV_OK);
    check_boundary(d.db, k2, FV_COMPLAINT_ACKNOWLEDGED, r2 + 3600 * 1000LL);

    dev_close(&d);
    assert_int_equal(fv_platform_set(NULL), FV_OK);
    free(k);
    free(k2);
    free(cid);
}

/* fv complaints with a clock an hour and a half ahead of the received
 * time: the text and JSON say overdue and time left; --overdue filters. */
static void test_complaints_cli(void **state)
{
    (void)state;
    char *path = tu_path(scratch, "cli-complaints.fv");
    tu_result r = FV("init", path, "--kdf-mem", "8", "--kdf-passes", "1");
    expect_exit(&r, 0, "init");
    tu_result_free(&r);
    char *cid = FV_LINE("customer add", "customer", "add", path, "--name", "Echo Trading");
    char received[21];
    time_t now = time(NULL);
    struct tm tm;
    time_t then = now - 90 * 60;
    gmtime_r(&then, &tm);
    strftime(received, sizeof received, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char *late = FV_LINE("complaint add", "complaint", "add", path, "--customer", cid,
                         "--summary", "Broken seal", "--urgency", "urgent", "--channel", "phone",
                         "--received", received);
    char *fresh = FV_LINE("complaint add", "complaint", "add", path, "--customer", cid,
                          "--summary", "Slow reply");
    assert_int_equal(strlen(late), FV_ID_LEN);

    r = FV("complaints", path);
    expect_exit(&r, 0, "complaints");
    assert_non_null(strstr(r.out, late));
    assert_non_null(strstr(r.out, fresh));
    assert_non_null(strstr(r.out, "overdue by 30m")); /* acknowledge: due an hour after */
    assert_non_null(strstr(r.out, "59m"));            /* the fresh one: 59m and some left */
    assert_non_null(strstr(r.out, "Echo Trading: Broken seal"));
    assert_true(strstr(r.out, late) < strstr(r.out, fresh)); /* next deadline first */
    tu_result_free(&r);
    r = FV("complaints", path, "--overdue", "--json");
    expect_exit(&r, 0, "complaints --overdue --json");
    assert_non_null(strstr(r.out, late));
    assert_null(strstr(r.out, fresh));
    assert_non_null(strstr(r.out, "\"overdue\": true"));
    assert_non_null(strstr(r.out, "\"next_step\": \"acknowledge\""));
    assert_non_null(strstr(r.out, "\"seconds_left\": -18"));
    tu_result_free(&r);

    /* transitions: forward only */
    r = FV("complaint", "resolve", path, late, "--note", "New seal fitted", "--json");
    expect_exit(&r, 0, "resolve");
    assert_non_null(strstr(r.out, "\"status\": \"resolved\""));
    tu_result_free(&r);
    r = FV("complaint", "ack", path, late);
    expect_exit(&r, 1, "ack after resolve");
    assert_non_null(strstr(r.err, "resolved already"));
    tu_result_free(&r);
    r = FV("complaints", path, "--overdue");
    expect_exit(&r, 0, "complaints --overdue");
    assert_non_null(strstr(r.out, "no overdue complaints"));
    tu_result_free(&r);
    r = FV("complaint", "show", path, late);
    expect_exit(&r, 0, "show");
    assert_non_null(strstr(r.out, "status: resolved"));
    assert_non_null(strstr(r.out, "resolve_note: New seal fitted"));
    tu_result_free(&r);

    /* later in the day (the clock knob): the fresh one is overdue too */
    const char *const env2[] = {"FV_PASSPHRASE=" PASS, "FV_CLOCK_SKEW_MS=7200000", NULL};
    const char *argv[] = {FV_BIN, "complaints", path, "--overdue", "--ids", NULL};
    r = tu_run(argv, env2, NULL);
    expect_exit(&r, 0, "complaints --overdue, two hours later");
    assert_non_null(strstr(r.out, fresh));
    assert_null(strstr(r.out, late));
    tu_result_free(&r);

    /* the deadline policy from the command line */
    r = FV("complaint", "deadlines", path, "--urgency", "urgent", "--ack", "15m", "--respond",
           "4h");
    expect_exit(&r, 0, "deadlines set");
    assert_non_null(strstr(r.out, "urgent    15m          4h       48h"));
    tu_result_free(&r);
    r = FV("complaint", "deadlines", path, "--ack", "soon");
    expect_exit(&r, 2, "deadlines: a bad duration");
    tu_result_free(&r);
    r = FV("complaint", "deadlines", path, "--urgency", "urgent", "--ack", "5h");
    expect_exit(&r, 1, "deadlines: out of order");
    tu_result_free(&r);
    free(late);
    free(fresh);
    free(cid);
    free(path);
}

/* ---- 3. concurrent complaint transitions through fvd -------------------- */

static void test_complaint_transitions_converge(void **state)
{
    (void)state;
#ifndef FVD_BIN
    skip();
#else
    dev rep, svc, lead;
    dev_open(&rep, "t-rep.fv", "kim");
    dev_open(&svc, "t-svc.fv", "sun");
    dev_open(&lead, "t-lead.fv", "lin");
    dev_enroll(&rep, "kim", "rep", "east");
    dev_enroll(&svc, "sun", "service", "east");
    dev_enroll(&lead, "lin", "lead", "east");
    char *cid = add_customer(rep.db, "Foxtrot Metals", "A");
    dev_sync(&rep, 0);

    /* a service agent registers a complaint: it reaches the rep and lead */
    dev_sync(&svc, 0);
    char *k = add_complaint(svc.db, cid, "Rust on delivery", "urgent");
    dev_sync(&svc, 0);
    dev_sync(&rep, 0);
    dev_sync(&lead, 0);
    expect_text(rep.db, "complaint", k, "summary", "Rust on delivery");
    assert_int_equal(complaint_state(lead.db, k, 0).status, FV_COMPLAINT_OPEN);

    /* both offline: the rep resolves it; then the service agent, who has
     * not seen that, acknowledges it (a later clock) */
    expect_ok(rep.db, fv_complaint_advance(rep.db, k, FV_COMPLAINT_RESOLVED, "replaced"),
              "resolve");
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    expect_ok(svc.db, fv_complaint_advance(svc.db, k, FV_COMPLAINT_ACKNOWLEDGED, "on it"), "ack");
    assert_int_equal(complaint_state(svc.db, k, 0).status, FV_COMPLAINT_ACKNOWLEDGED);
    dev_sync(&svc, 0);
    dev_sync(&rep, 0);
    dev_sync(&svc, 0);
    dev_sync(&lead, 0);
    dev *all[] = {&rep, &svc, &lead};
    for (size_t i = 0; i < 3; i++) {
        fv_complaint_state cs = complaint_state(all[i]->db, k, 0);
        assert_int_equal(cs.status, FV_COMPLAINT_RESOLVED); /* the furthest, everywhere */
        assert_int_equal(cs.overdue, 0);
        expect_text(all[i]->db, "complaint", k, "acked_by", "sun");
        expect_text(all[i]->db, "complaint", k, "resolved_by", "kim");
        listed l;
        memset(&l, 0, sizeof l);
        expect_ok(all[i]->db, fv_complaints_each(all[i]->db, 0, 0, collect, &l), "open");
        assert_int_equal(l.n, 0);
    }
    same_state(&rep, &lead); /* the service agent sees every team's customers */
    assert_int_equal(fv_complaint_advance(svc.db, k, FV_COMPLAINT_RESPONDED, NULL), FV_EINVAL);
    free(k);
    free(cid);
    dev_close(&rep);
    dev_close(&svc);
    dev_close(&lead);
#endif
}

/* ---- 4. important dates ------------------------------------------------- */

typedef struct events {
    size_t n;
    char what[8][96];
} events;

static int on_event(void *ctx, const fv_date_event *e)
{
    events *ev = ctx;
    if (ev->n < 8)
        snprintf(ev->what[ev->n], sizeof ev->what[0], "%s %s %s +%d y%d (%s)", e->date, e->kind,
                 e->name, e->days, e->years, e->customer ? e->customer : "-");
    ev->n++;
    return 0;
}

static void test_dates_in_due(void **state)
{
    (void)state;
    char *path = tu_path(scratch, "dates.fv");
    tu_result r = FV("init", path, "--kdf-mem", "8", "--kdf-passes", "1");
    expect_exit(&r, 0, "init");
    tu_result_free(&r);
    char *cid = FV_LINE("customer add", "customer", "add", path, "--name", "Golf Supplies",
                        "--grade", "S");
    char *kid = FV_LINE("contact add", "contact", "add", path, "--customer", cid, "--name",
                        "Li Wei");
    char *leap = FV_LINE("contact add", "contact", "add", path, "--customer", cid, "--name",
                         "Zhao Lei", "--birthday", "02-29");

    /* MM-DD: a day of the year, nothing else */
    static const char *const bad[] = {"02-30", "13-01", "00-10", "04-31", "2-3", "1990-03-04",
                                      "03/04", "03-4x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = FV("contact", "update", path, kid, "--birthday", bad[i]);
        expect_exit(&r, 1, bad[i]);
        assert_non_null(strstr(r.err, "MM-DD"));
        tu_result_free(&r);
    }
    r = FV("contact", "update", path, kid, "--birthday", "03-04", "--json");
    expect_exit(&r, 0, "birthday 03-04");
    tu_result_free(&r);
    r = FV("customer", "update", path, cid, "--since", "2021-03-05");
    expect_exit(&r, 0, "since");
    tu_result_free(&r);
    r = FV("customer", "update", path, cid, "--since", "2021-02-30");
    expect_exit(&r, 1, "since 2021-02-30");
    tu_result_free(&r);

    /* from 03-01: the birthday (03-04) is three days away: listed; the
     * anniversary (03-05) is four away: not */
    r = FV("due", path, "--on", "2026-03-01");
    expect_exit(&r, 0, "due 03-01");
    assert_non_null(strstr(r.out, "2026-03-04  in 3 days"));
    assert_non_null(strstr(r.out, "Li Wei (Golf Supplies)"));
    assert_null(strstr(r.out, "anniversary"));
    tu_result_free(&r);
    /* from 03-02 both, with the years; and the follow-up due beside them */
    r = FV("due", path, "--on", "2026-03-02", "--json");
    expect_exit(&r, 0, "due 03-02 --json");
    assert_int_equal(r.out[0], '[');
    assert_non_null(strstr(r.out, "\"kind\": \"birthday\""));
    assert_non_null(strstr(r.out, "\"date\": \"2026-03-04\""));
    assert_non_null(strstr(r.out, "\"kind\": \"anniversary\""));
    assert_non_null(strstr(r.out, "\"date\": \"2026-03-05\""));
    assert_non_null(strstr(r.out, "\"years\": 5"));
    assert_non_null(strstr(r.out, "\"in_days\": 3"));
    assert_null(strstr(r.out, "\"kind\": \"follow-up\"")); /* created today: not due in March */
    tu_result_free(&r);
    r = FV("due", path, "--on", "2030-03-04", "--json");
    expect_exit(&r, 0, "due 2030");
    assert_non_null(strstr(r.out, "\"kind\": \"follow-up\""));
    assert_non_null(strstr(r.out, "\"in_days\": 0"));
    assert_non_null(strstr(r.out, "\"years\": 9"));
    tu_result_free(&r);
    /* --ids stays a list of the customers due */
    r = FV("due", path, "--on", "2026-03-02", "--ids");
    expect_exit(&r, 0, "due --ids");
    assert_string_equal(r.out, "");
    tu_result_free(&r);
    /* the day after the last one: nothing */
    r = FV("due", path, "--on", "2026-03-06");
    expect_exit(&r, 0, "due 03-06");
    assert_null(strstr(r.out, "important dates"));
    tu_result_free(&r);

    /* the API: 02-29 outside leap years falls on 02-28; a range over the
     * turn of the year; an anniversary only from the first year on */
    fv_db *db = NULL;
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.passphrase = PASS;
    cfg.passphrase_len = strlen(PASS);
    expect_ok(db, fv_open(&db, &cfg), "open");
    events ev;
    memset(&ev, 0, sizeof ev);
    expect_ok(db, fv_dates_each(db, "2027-02-26", 3, on_event, &ev), "dates 2027");
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.what[0], "2027-02-28 birthday Zhao Lei +2 y0 (Golf Supplies)");
    memset(&ev, 0, sizeof ev);
    expect_ok(db, fv_dates_each(db, "2028-02-26", 3, on_event, &ev), "dates 2028");
    assert_int_equal(ev.n, 1);
    assert_string_equal(ev.what[0], "2028-02-29 birthday Zhao Lei +3 y0 (Golf Supplies)");
    memset(&ev, 0, sizeof ev);
    expect_ok(db, fv_dates_each(db, "2020-12-30", 366, on_event, &ev), "a year");
    assert_int_equal(ev.n, 2); /* 2021: both birthdays; the anniversary is from 2022 */
    memset(&ev, 0, sizeof ev);
    expect_ok(db, fv_dates_each(db, "2022-03-02", 3, on_event, &ev), "first anniversary");
    assert_int_equal(ev.n, 2);
    assert_string_equal(ev.what[1], "2022-03-05 anniversary Golf Supplies +3 y1 (Golf Supplies)");
    assert_int_equal(fv_dates_each(db, "2022-02-30", 3, on_event, &ev), FV_EINVAL);
    assert_int_equal(fv_dates_each(db, NULL, 367, on_event, &ev), FV_EINVAL);
    fv_record *c;
    expect_ok(db, fv_get(db, "contact", kid, &c), "get");
    assert_int_equal(fv_record_set_text(c, "birthday", "11-31"), FV_EINVAL);
    assert_null(strstr(fv_errmsg(db), "11-31")); /* personal data: never quoted back */
    fv_record_free(c);
    expect_ok(db, fv_close(db), "close");

    free(leap);
    free(kid);
    free(cid);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grade_review_through_fvd),
        cmocka_unit_test(test_fvd_refuses_crafted_grade),
        cmocka_unit_test(test_deadline_boundaries),
        cmocka_unit_test(test_complaints_cli),
        cmocka_unit_test(test_complaint_transitions_converge),
        cmocka_unit_test(test_dates_in_due),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
