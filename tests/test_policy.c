/*
 * test_policy.c - the access-control policy module (core/policy.c) on its
 * own: DESIGN.md's default policy, role by role, field class by class, row
 * scope by owner and team, refusals that name the field and role, and the
 * policy as data (text for admins, bytes for stores and the wire).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
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

static void test_policy_as_data(void **state)
{
    (void)state;
    /* the default round-trips through text and bytes */
    char text[2048];
    size_t n = fv__policy_format(&P, text, sizeof text);
    assert_true(n > 0 && n < sizeof text);
    assert_non_null(strstr(text, "version 1"));
    assert_non_null(strstr(text, "service    all    rr-      rr-     www"));
    fv__policy q;
    char why[200];
    assert_true(fv__policy_parse(text, &q, why, sizeof why));
    assert_memory_equal(&q, &P, sizeof P);
    unsigned char b[FV_POLICY_BYTES_MAX];
    size_t len = fv__policy_encode(&P, b, sizeof b);
    assert_true(len > 6);
    assert_int_equal(fv__policy_decode(b, len, &q), 0);
    assert_memory_equal(&q, &P, sizeof P);
    /* every cut and every flipped byte is refused or decodes to a valid policy */
    for (size_t i = 0; i < len; i++) assert_int_equal(fv__policy_decode(b, i, &q), -1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c[FV_POLICY_BYTES_MAX];
        memcpy(c, b, len);
        c[i] ^= 0x81;
        if (fv__policy_decode(c, len, &q) == 0) assert_true(fv__policy_check(&q, why, sizeof why));
    }
    /* an admin's version 2: service agents no longer see pii */
    const char *v2 = "# stricter\nversion 2\n"
                     "rep own www www www\nlead team www www www\ndirector all www www www\n"
                     "service all r-- r-- www   # no contact details\nadmin none --- --- ---\n";
    assert_true(fv__policy_parse(v2, &q, why, sizeof why));
    assert_int_equal(q.version, 2);
    assert_int_equal(fv__policy_field(&q, "service", "contact", FV_CLASS_PII), FV__ACCESS_NONE);
    assert_int_equal(fv__policy_field(&q, "service", "visit", FV_CLASS_PUBLIC), FV__ACCESS_WRITE);
    /* widening: service may read pii again in v3, not in v2 */
    fv__policy v3 = q;
    v3.version = 3;
    v3.roles[3].access[1][FV_CLASS_PII] = FV__ACCESS_READ;
    assert_true(fv__policy_widens(&q, &v3, "service"));
    assert_false(fv__policy_widens(&v3, &q, "service"));
    assert_false(fv__policy_widens(&q, &v3, "rep"));
    /* format cuts at cap and says what it wrote */
    char small[16];
    size_t wrote = fv__policy_format(&P, small, sizeof small);
    assert_int_equal(wrote, strlen(small));
    assert_int_equal(wrote, sizeof small - 1);
    /* bad text names the line and what is wrong */
    static const struct { const char *text, *want; } bad[] = {
        {"version 0\nrep own www www www\n", "line 1"},
        {"version 2\nrep mine www www www\n", "line 2: scope 'mine'"},
        {"version 2\nrep own wwx www www\n", "line 2: customer access 'wwx'"},
        {"version 2\nrep own ww www www\n", "line 2: customer access 'ww'"},
        {"version 2\nrep own www www\n", "line 2: expected ROLE SCOPE"},
        {"version 2\nrep own www www www\nrep all www www www\n", "line 3: role rep is listed twice"},
        {"version 2\nversion 3\nrep own www www www\n", "line 2: the version is given twice"},
        {"rep own www www www\n", "no version"},
        {"version 2\n", "1 to 8 roles"},
        {"version 2\nRep own www www www\n", "line 2: role name 'Rep'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_false(fv__policy_parse(bad[i].text, &q, why, sizeof why));
        if (strstr(why, bad[i].want) == NULL) fprintf(stderr, "%zu: %s\n", i, why);
        assert_non_null(strstr(why, bad[i].want));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_default_field_access, setup),
        cmocka_unit_test_setup(test_scope, setup),
        cmocka_unit_test_setup(test_write_and_read_decisions, setup),
        cmocka_unit_test_setup(test_policy_as_data, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
