/*
 * test_acl.c - the access policy enforced by the records API of an enrolled
 * store: rows outside the user's scope do not exist for reads, lists and
 * writes; a field the role may not read comes back redacted (a distinct
 * state); a forbidden write is FV_EACCES naming the field and role and
 * changes nothing; a store never enrolled keeps full rights.
 *
 * The enrolment is written straight into fv_meta (what fv_enroll stores),
 * so the test needs no server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fieldvault.h"
#include "internal.h"
#include "testutil.h"

typedef struct fx {
    char *dir, *path;
    fv_db *db;
    char *ana_cust, *ben_cust, *west_cust, *ana_contact, *ana_visit;
} fx;

static fv_db *open_as(const char *path, int create)
{
    fv_open_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.path = path;
    cfg.passphrase = "pw";
    cfg.passphrase_len = 2;
    cfg.flags = create ? FV_OPEN_CREATE : 0;
    cfg.kdf_mem_kib = 8192;
    cfg.kdf_passes = 1;
    cfg.user = "local";
    fv_db *db = NULL;
    assert_int_equal(fv_open(&db, &cfg), FV_OK);
    return db;
}

/* Become (user, role, team) as an enrolment would make us: reopen. */
static void become(fx *f, const char *user, const char *role, const char *team)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT OR REPLACE INTO fv_meta(key, value) VALUES('user', '%s'), ('role', '%s'),"
             " ('team', '%s')", user, role, team);
    assert_int_equal(fv__exec(f->db, sql), FV_OK);
    assert_int_equal(fv_close(f->db), FV_OK);
    f->db = open_as(f->path, 0);
}

static char *add(fv_db *db, const char *table, const char *const *kv)
{
    fv_record *r;
    assert_int_equal(fv_record_new(db, table, &r), FV_OK);
    for (size_t i = 0; kv[i] != NULL; i += 2) assert_int_equal(fv_record_set_text(r, kv[i], kv[i + 1]), FV_OK);
    fv_status st = fv_insert(db, r);
    if (st != FV_OK) fprintf(stderr, "insert: %s\n", fv_errmsg(db));
    assert_int_equal(st, FV_OK);
    char *id = strdup(fv_record_id(r));
    fv_record_free(r);
    return id;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("acl");
    f->path = tu_path(f->dir, "s.fv");
    f->db = open_as(f->path, 1);
    /* written before enrolment (full rights): customers of three owners */
    f->ana_cust = add(f->db, "customer", (const char *const[]){"name", "Ana's plant", "owner", "ana",
                                                                "team", "east", "budget", "BUDGET-MARKER-1",
                                                                NULL});
    f->ben_cust = add(f->db, "customer", (const char *const[]){"name", "Ben's shop", "owner", "ben",
                                                                "team", "east", NULL});
    f->west_cust = add(f->db, "customer", (const char *const[]){"name", "West mill", "owner", "wes",
                                                                 "team", "west", NULL});
    f->ana_contact = add(f->db, "contact", (const char *const[]){"customer_id", f->ana_cust, "name",
                                                                  "Li", "phone", "+86 1", NULL});
    f->ana_visit = add(f->db, "visit", (const char *const[]){"customer_id", f->ana_cust, "method",
                                                              "visit", "summary", "met", NULL});
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    fv_close(f->db);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->path);
    free(f->ana_cust);
    free(f->ben_cust);
    free(f->west_cust);
    free(f->ana_contact);
    free(f->ana_visit);
    free(f);
    return 0;
}

static size_t count(fv_db *db, const char *what)
{
    fv_list *l;
    const fv_record *r;
    size_t n = 0;
    if (strcmp(what, "customer") == 0) assert_int_equal(fv_list_customers(db, NULL, &l), FV_OK);
    else if (strcmp(what, "visit") == 0) assert_int_equal(fv_list_visits(db, NULL, &l), FV_OK);
    else assert_int_equal(fv_list_contacts(db, NULL, &l), FV_OK);
    while (fv_list_next(l, &r) == FV_OK && r != NULL) n++;
    fv_list_free(l);
    return n;
}

static void test_never_enrolled_full_rights(void **state)
{
    fx *f = *state;
    assert_int_equal(count(f->db, "customer"), 3);
    fv_record *r;
    assert_int_equal(fv_get(f->db, "customer", f->west_cust, &r), FV_OK);
    int red = 1;
    assert_int_equal(fv_record_redacted(r, "budget", &red), FV_OK);
    assert_int_equal(red, 0);
    fv_record_free(r);
}

static void test_rep_scope(void **state)
{
    fx *f = *state;
    become(f, "ben", "rep", "east");
    assert_int_equal(count(f->db, "customer"), 1); /* only his own */
    assert_int_equal(count(f->db, "visit"), 0);    /* Ana's visit is hers */
    assert_int_equal(count(f->db, "contact"), 0);
    fv_record *r;
    assert_int_equal(fv_get(f->db, "customer", f->ana_cust, &r), FV_ENOTFOUND);
    assert_int_equal(fv_get(f->db, "visit", f->ana_visit, &r), FV_ENOTFOUND);
    /* nor may he write to her rows */
    assert_int_equal(fv_delete(f->db, "customer", f->ana_cust), FV_EACCES);
    assert_non_null(strstr(fv_errmsg(f->db), "outside the scope of user ben"));
    assert_int_equal(fv_record_new(f->db, "visit", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "customer_id", f->ana_cust), FV_OK);
    assert_int_equal(fv_record_set_text(r, "method", "phone"), FV_OK);
    assert_int_equal(fv_insert(f->db, r), FV_EACCES);
    fv_record_free(r);
    /* his new customers are his and his team's by default */
    char *mine = add(f->db, "customer", (const char *const[]){"name", "New", NULL});
    assert_int_equal(fv_get(f->db, "customer", mine, &r), FV_OK);
    const char *v;
    assert_int_equal(fv_record_get_text(r, "owner", &v), FV_OK);
    assert_string_equal(v, "ben");
    assert_int_equal(fv_record_get_text(r, "team", &v), FV_OK);
    assert_string_equal(v, "east");
    fv_record_free(r);
    /* creating one for somebody else is outside his scope */
    assert_int_equal(fv_record_new(f->db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", "Not mine"), FV_OK);
    assert_int_equal(fv_record_set_text(r, "owner", "ana"), FV_OK);
    assert_int_equal(fv_insert(f->db, r), FV_EACCES);
    fv_record_free(r);
    free(mine);
}

static void test_lead_director_other_rep(void **state)
{
    fx *f = *state;
    become(f, "lou", "lead", "east");
    assert_int_equal(count(f->db, "customer"), 2);
    fv_record *r;
    assert_int_equal(fv_get(f->db, "customer", f->ana_cust, &r), FV_OK);
    const char *v;
    assert_int_equal(fv_record_get_text(r, "budget", &v), FV_OK); /* leads see budgets */
    assert_string_equal(v, "BUDGET-MARKER-1");
    fv_record_free(r);
    become(f, "dee", "director", "west");
    assert_int_equal(count(f->db, "customer"), 3);
    become(f, "wes", "rep", "west");
    assert_int_equal(count(f->db, "customer"), 1);
    assert_int_equal(fv_get(f->db, "customer", f->ana_cust, &r), FV_ENOTFOUND);
}

static void test_service_redaction_and_writes(void **state)
{
    fx *f = *state;
    become(f, "sam", "service", "east");
    fv_record *r;
    assert_int_equal(fv_get(f->db, "customer", f->ana_cust, &r), FV_OK);
    int red = 0;
    assert_int_equal(fv_record_redacted(r, "budget", &red), FV_OK);
    assert_int_equal(red, 1);
    const char *v = "x";
    assert_int_equal(fv_record_get_text(r, "budget", &v), FV_EACCES); /* not "" */
    assert_null(v);
    assert_int_equal(fv_record_get_text(r, "name", &v), FV_OK);
    assert_string_equal(v, "Ana's plant");
    /* a forbidden write names the field and role, and changes nothing */
    assert_int_equal(fv_record_set_text(r, "stage", "won"), FV_OK);
    assert_int_equal(fv_update(f->db, r), FV_EACCES);
    assert_non_null(strstr(fv_errmsg(f->db), "role service may not write customer.stage"));
    fv_record_free(r);
    /* the phone (pii) is readable */
    assert_int_equal(fv_get(f->db, "contact", f->ana_contact, &r), FV_OK);
    assert_int_equal(fv_record_get_text(r, "phone", &v), FV_OK);
    assert_string_equal(v, "+86 1");
    fv_record_free(r);
    /* may add visits, not customers */
    free(add(f->db, "visit", (const char *const[]){"customer_id", f->ana_cust, "method", "phone",
                                                   "summary", "service call", NULL}));
    assert_int_equal(fv_record_new(f->db, "customer", &r), FV_OK);
    assert_int_equal(fv_record_set_text(r, "name", "Nope"), FV_OK);
    assert_int_equal(fv_insert(f->db, r), FV_EACCES);
    fv_record_free(r);
    assert_int_equal(fv_delete(f->db, "customer", f->ana_cust), FV_EACCES);
    /* and nothing changed: back as the owner, the stage is unset, all rows there */
    become(f, "ana", "rep", "east");
    assert_int_equal(fv_get(f->db, "customer", f->ana_cust, &r), FV_OK);
    assert_int_equal(fv_record_get_text(r, "stage", &v), FV_OK);
    assert_null(v);
    fv_record_free(r);
    assert_int_equal(count(f->db, "visit"), 2);
}

/* fv shows a redacted field as such: "[redacted]", and in JSON a list of
 * redacted field names with the fields themselves absent; fv whoami. */
static void test_cli_redaction_and_whoami(void **state)
{
    fx *f = *state;
    become(f, "sam", "service", "east");
    assert_int_equal(fv_close(f->db), FV_OK);
    f->db = NULL;
    const char *env[] = {"FV_PASSPHRASE=pw", NULL};
    const char *show[] = {FV_BIN, "customer", "show", f->path, f->ana_cust, NULL};
    tu_result r = tu_run(show, env, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "budget: [redacted]"));
    assert_null(strstr(r.out, "BUDGET-MARKER-1"));
    tu_result_free(&r);
    const char *showj[] = {FV_BIN, "customer", "show", f->path, f->ana_cust, "--json", NULL};
    r = tu_run(showj, env, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "\"redacted\""));
    assert_null(strstr(r.out, "\"budget\": "));
    assert_non_null(strstr(r.out, "\"name\": \"Ana's plant\""));
    tu_result_free(&r);
    const char *who[] = {FV_BIN, "whoami", f->path, "--json", NULL};
    r = tu_run(who, env, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "\"role\": \"service\""));
    assert_non_null(strstr(r.out, "\"policy_version\": 1"));
    tu_result_free(&r);
    /* a forbidden write through fv: exit 5, the message names field and role */
    const char *upd[] = {FV_BIN, "customer", "update", f->path, f->ana_cust, "--budget", "1", NULL};
    r = tu_run(upd, env, NULL);
    assert_int_equal(r.exit_code, 5);
    assert_non_null(strstr(r.err, "role service may not write customer.budget"));
    tu_result_free(&r);
    f->db = open_as(f->path, 0);
}

/* A new store enrolled as (user, role, team), as fv_enroll leaves it. */
static fv_db *enrolled(const char *dir, const char *user, const char *role, const char *team)
{
    char *path = tu_path(dir, user);
    fv_db *db = open_as(path, 1);
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT OR REPLACE INTO fv_meta(key, value) VALUES('user', '%s'), ('role', '%s'),"
             " ('team', '%s')", user, role, team);
    assert_int_equal(fv__exec(db, sql), FV_OK);
    assert_int_equal(fv_close(db), FV_OK);
    db = open_as(path, 0);
    free(path);
    return db;
}

/* Change-set files carried by hand into an enrolled store: a change the
 * importing user may not make refuses the whole set, nothing applied. */
static void test_imported_sets_obey_rights(void **state)
{
    fx *f = *state;
    char *file = tu_path(f->dir, "ana.fvc");
    fv_db *ana = enrolled(f->dir, "ana", "rep", "east");
    char *c = add(ana, "customer", (const char *const[]){"name", "Carried", "budget", "9k", NULL});
    free(add(ana, "visit", (const char *const[]){"customer_id", c, "method", "phone", "summary", "hi",
                                            NULL}));
    assert_int_equal(fv_changes_export_file(ana, file, 0, NULL), FV_OK);
    fv_apply_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    /* another rep of the team: not his customer */
    fv_db *ben = enrolled(f->dir, "ben", "rep", "east");
    assert_int_equal(fv_changes_apply_file(ben, file, &st), FV_EACCES);
    assert_non_null(strstr(fv_errmsg(ben), "the change set was refused"));
    assert_non_null(strstr(fv_errmsg(ben), "role rep"));
    assert_int_equal(count(ben, "customer"), 0);
    assert_int_equal(count(ben, "visit"), 0);
    /* a service agent may not write a customer (nor its budget) */
    fv_db *sam = enrolled(f->dir, "sam", "service", "east");
    assert_int_equal(fv_changes_apply_file(sam, file, &st), FV_EACCES);
    assert_int_equal(count(sam, "customer"), 0);
    /* the team's lead may: all of it applies */
    fv_db *lou = enrolled(f->dir, "lou", "lead", "east");
    fv_status lst = fv_changes_apply_file(lou, file, &st);
    if (lst != FV_OK) fprintf(stderr, "lou: %s\n", fv_errmsg(lou));
    assert_int_equal(lst, FV_OK);
    assert_int_equal(count(lou, "customer"), 1);
    assert_int_equal(count(lou, "visit"), 1);
    /* a lead of another team may not */
    fv_db *wil = enrolled(f->dir, "wil", "lead", "west");
    assert_int_equal(fv_changes_apply_file(wil, file, &st), FV_EACCES);
    assert_int_equal(count(wil, "customer"), 0);
    /* a store never enrolled keeps full rights: f->db applies it */
    assert_int_equal(fv_changes_apply_file(f->db, file, &st), FV_OK);
    fv_db *dbs[] = {ana, ben, sam, lou, wil};
    for (size_t i = 0; i < 5; i++) assert_int_equal(fv_close(dbs[i]), FV_OK);
    free(c);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_never_enrolled_full_rights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rep_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lead_director_other_rep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_redaction_and_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_redaction_and_whoami, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imported_sets_obey_rights, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
