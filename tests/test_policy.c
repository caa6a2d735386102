/*
 * test_policy.c - the access-control policy module (sync/policy.c) on its
 * own: DESIGN.md's default policy, role by role, field class by class, row
 * scope by owner and team, and refusals that name the field and role.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "policy.h"

static fv__policy P;

static int setup(void **state)
{
    (void)state;
    fv__policy_default(&P);
    return 0;
}

static const fv__row_owner ana_east = {"ana", "east"};
static const fv__row_owner ben_east = {"ben", "east"};
static const fv__row_owner wes_west = {"wes", "west"};

static void test_default_field_access(void **state)
{
    (void)state;
    const char *full[] = {"rep", "lead", "director"};
    for (size_t i = 0; i < 3; i++)
        for (int c = 0; c < 3; c++) {
            assert_int_equal(fv__policy_field(&P, full[i], "customer", (fv_field_class)c), FV__ACCESS_WRITE);
            assert_int_equal(fv__policy_field(&P, full[i], "contact", (fv_field_class)c), FV__ACCESS_WRITE);
        }
    /* service: customers and contact details read, never a budget; adds visits */
    assert_int_equal(fv__policy_field(&P, "service", "customer", FV_CLASS_PUBLIC), FV__ACCESS_READ);
    assert_int_equal(fv__policy_field(&P, "service", "contact", FV_CLASS_PII), FV__ACCESS_READ);
    assert_int_equal(fv__policy_field(&P, "service", "customer", FV_CLASS_CONFIDENTIAL), FV__ACCESS_NONE);
    assert_int_equal(fv__policy_field(&P, "service", "visit", FV_CLASS_PUBLIC), FV__ACCESS_WRITE);
    /* admin: user management only */
    for (int c = 0; c < 3; c++)
        assert_int_equal(fv__policy_field(&P, "admin", "customer", (fv_field_class)c), FV__ACCESS_NONE);
    /* unknown role or table: nothing */
    assert_int_equal(fv__policy_field(&P, "intern", "customer", FV_CLASS_PUBLIC), FV__ACCESS_NONE);
    assert_int_equal(fv__policy_field(&P, "rep", "payroll", FV_CLASS_PUBLIC), FV__ACCESS_NONE);
    assert_int_equal(fv__policy_field(&P, NULL, "customer", FV_CLASS_PUBLIC), FV__ACCESS_NONE);
}

static void test_scope(void **state)
{
    (void)state;
    fv__actor ana = {"ana", "rep", "east"}, ben = {"ben", "rep", "east"};
    fv__actor lead_east = {"lou", "lead", "east"}, dir_west = {"dee", "director", "west"};
    fv__actor rep_west = {"wes", "rep", "west"}, svc = {"sam", "service", "east"};
    fv__actor admin = {"root", "admin", "east"};
    /* rep A sees her customers, not rep B's */
    assert_true(fv__policy_in_scope(&P, &ana, &ana_east));
    assert_false(fv__policy_in_scope(&P, &ben, &ana_east));
    /* the lead of east sees all of east, not west */
    assert_true(fv__policy_in_scope(&P, &lead_east, &ana_east));
    assert_true(fv__policy_in_scope(&P, &lead_east, &ben_east));
    assert_false(fv__policy_in_scope(&P, &lead_east, &wes_west));
    /* a director of another team sees them too */
    assert_true(fv__policy_in_scope(&P, &dir_west, &ana_east));
    /* a rep of west nothing of east */
    assert_false(fv__policy_in_scope(&P, &rep_west, &ana_east));
    assert_true(fv__policy_in_scope(&P, &svc, &wes_west));
    assert_false(fv__policy_in_scope(&P, &admin, &ana_east));
    /* unknown owner or team (a row not seen yet) is nobody's by owner/team */
    fv__row_owner unknown = {NULL, NULL}, empty = {"", ""};
    assert_false(fv__policy_in_scope(&P, &ana, &unknown));
    assert_false(fv__policy_in_scope(&P, &lead_east, &empty));
    assert_true(fv__policy_in_scope(&P, &dir_west, &unknown));
}

static void test_write_and_read_decisions(void **state)
{
    (void)state;
    char why[160];
    fv__actor svc = {"sam", "service", "east"}, ana = {"ana", "rep", "east"};
    fv__actor ben = {"ben", "rep", "east"};
    assert_false(fv__policy_may_write(&P, &svc, "customer", "budget", FV_CLASS_CONFIDENTIAL,
                                      &ana_east, why, sizeof why));
    assert_string_equal(why, "role service may not write customer.budget");
    assert_true(fv__policy_may_write(&P, &svc, "visit", "summary", FV_CLASS_PUBLIC, &ana_east,
                                     why, sizeof why));
    assert_true(fv__policy_may_write(&P, &ana, "customer", "budget", FV_CLASS_CONFIDENTIAL,
                                     &ana_east, why, sizeof why));
    assert_false(fv__policy_may_write(&P, &ben, "customer", "stage", FV_CLASS_PUBLIC, &ana_east,
                                      why, sizeof why));
    assert_non_null(strstr(why, "outside the scope of user ben"));
    fv__actor ghost = {"gus", "ghost", "east"};
    assert_false(fv__policy_may_write(&P, &ghost, "visit", "summary", FV_CLASS_PUBLIC, &ana_east,
                                      why, sizeof why));
    assert_non_null(strstr(why, "role ghost"));
    /* reads */
    assert_true(fv__policy_may_read(&P, &svc, "contact", FV_CLASS_PII, &ana_east));
    assert_false(fv__policy_may_read(&P, &svc, "customer", FV_CLASS_CONFIDENTIAL, &ana_east));
    assert_false(fv__policy_may_read(&P, &ben, "customer", FV_CLASS_PUBLIC, &ana_east));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_default_field_access, setup),
        cmocka_unit_test_setup(test_scope, setup),
        cmocka_unit_test_setup(test_write_and_read_decisions, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
