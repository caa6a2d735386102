/*
 * test_merge.c - the merge rule (sync/merge.c) on its own: for random
 * sets of versions of one field, folding them in any order, grouped any way,
 * with repeats, ends in the same state (commutative, associative,
 * idempotent); the conflict verdict for a pair does not depend on which side
 * arrives first; and the hybrid logical clock's rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "merge.h"

typedef struct state {
    int has;
    fv__ver v;
    int value;
} state;

typedef struct change {
    fv__ver v;
    int value;
} change;

/* The fold step: what apply does with one change. */
static void step(state *s, const change *c)
{
    fv__merge_result m = fv__merge(s->has ? &s->v : NULL, &c->v, s->has && s->value == c->value);
    if (m.take) {
        s->has = 1;
        s->v = c->v;
        s->value = c->value;
    }
}

static int same(const state *a, const state *b)
{
    return a->has == b->has &&
           (!a->has || (fv__ver_cmp(&a->v, &b->v) == 0 && a->value == b->value));
}

static unsigned seed_from_env(const char *name)
{
    const char *e = getenv("FV_SEED");
    unsigned seed = e ? (unsigned)strtoul(e, NULL, 10) : (unsigned)time(NULL);
    fprintf(stderr, "%s: FV_SEED=%u\n", name, seed);
    return seed;
}

static void random_change(change *c, unsigned *r)
{
    memset(c, 0, sizeof *c);
    /* few distinct times and devices, so ties and duplicates happen */
    c->v.hlc = (uint64_t)(rand_r(r) % 6) << 16 | (uint64_t)(rand_r(r) % 3);
    c->v.device[15] = (unsigned char)(rand_r(r) % 3);
    c->v.base_hlc = c->v.hlc > 0 ? (uint64_t)rand_r(r) % c->v.hlc : 0;
    /* one version, one value: the same (hlc, device) is the same change */
    c->value = (int)(c->v.hlc * 7 + c->v.device[15]);
}

static void test_fold_any_order(void **state_)
{
    (void)state_;
    unsigned r = seed_from_env("test_fold_any_order");
    for (int iter = 0; iter < 2000; iter++) {
        change cs[12];
        size_t n = 1 + (size_t)(rand_r(&r) % 12);
        for (size_t i = 0; i < n; i++) random_change(&cs[i], &r);
        state ref = {0};
        for (size_t i = 0; i < n; i++) step(&ref, &cs[i]);
        /* the result is the maximum under (hlc, device) */
        const change *max = &cs[0];
        for (size_t i = 1; i < n; i++)
            if (fv__ver_cmp(&cs[i].v, &max->v) > 0) max = &cs[i];
        assert_int_equal(ref.value, max->value);
        for (int perm = 0; perm < 8; perm++) {
            size_t order[12];
            for (size_t i = 0; i < n; i++) order[i] = i;
            for (size_t i = n - 1; i > 0; i--) {
                size_t j = (size_t)rand_r(&r) % (i + 1);
                size_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            /* associativity: merge two halves separately, then the halves */
            size_t cut = (size_t)rand_r(&r) % (n + 1);
            state left = {0}, right = {0};
            for (size_t i = 0; i < cut; i++) step(&left, &cs[order[i]]);
            for (size_t i = cut; i < n; i++) step(&right, &cs[order[i]]);
            /* idempotence: repeats anywhere change nothing */
            if (n > 0) step(&right, &cs[order[(size_t)rand_r(&r) % n]]);
            state all = left;
            if (right.has) {
                change rc = {right.v, right.value};
                step(&all, &rc);
            }
            assert_true(same(&all, &ref));
            state again = ref;
            for (size_t i = 0; i < n; i++) step(&again, &cs[i]);
            assert_true(same(&again, &ref));
        }
    }
}

static void test_conflict_verdict_symmetric(void **state_)
{
    (void)state_;
    unsigned r = seed_from_env("test_conflict_verdict_symmetric");
    for (int iter = 0; iter < 20000; iter++) {
        change a, b;
        random_change(&a, &r);
        random_change(&b, &r);
        int eq = a.value == b.value;
        fv__merge_result ab = fv__merge(&a.v, &b.v, eq);
        fv__merge_result ba = fv__merge(&b.v, &a.v, eq);
        assert_int_equal(ab.conflict, ba.conflict);
        assert_int_equal(ab.known, ba.known);
        if (!ab.known) assert_int_equal(ab.take, !ba.take);
        if (fv__ver_cmp(&a.v, &b.v) == 0) assert_true(ab.known && !ab.conflict);
    }
}

static void test_conflict_rule(void **state_)
{
    (void)state_;
    fv__ver v1 = {10 << 16, {0}, 0}, v2 = {20 << 16, {0}, 10 << 16}, v3 = {15 << 16, {0}, 0};
    v1.device[0] = 1;
    v2.device[0] = 2;
    v3.device[0] = 3;
    /* v2 was written after seeing v1: a sequence, not a conflict */
    fv__merge_result m = fv__merge(&v1, &v2, 0);
    assert_true(m.take && !m.conflict);
    m = fv__merge(&v2, &v1, 0);
    assert_true(!m.take && !m.conflict);
    /* v3 saw nothing: concurrent with v1 (and v2 never saw v3) */
    m = fv__merge(&v1, &v3, 0);
    assert_true(m.take && m.conflict);
    m = fv__merge(&v2, &v3, 0);
    assert_true(!m.take && m.conflict);
    /* concurrent but equal values: nothing was lost */
    m = fv__merge(&v1, &v3, 1);
    assert_true(m.take && !m.conflict);
    /* same hlc: the device id decides, the same way everywhere */
    fv__ver a = {5 << 16, {0}, 0}, b = {5 << 16, {0}, 0};
    a.device[15] = 1;
    b.device[15] = 2;
    assert_true(fv__merge(&a, &b, 0).take);
    assert_false(fv__merge(&b, &a, 0).take);
    /* nothing held yet: take, no conflict */
    m = fv__merge(NULL, &a, 0);
    assert_true(m.take && !m.conflict && !m.known);
}

static void test_hlc(void **state_)
{
    (void)state_;
    /* follows the wall clock when it moves forward */
    assert_int_equal(fv__hlc_tick(0, 1000), (uint64_t)1000 << 16);
    /* same millisecond or clock stepping back: strictly increasing */
    uint64_t h = (uint64_t)1000 << 16;
    uint64_t h2 = fv__hlc_tick(h, 1000);
    assert_true(h2 > h);
    uint64_t h3 = fv__hlc_tick(h2, 500);
    assert_true(h3 > h2);
    /* a full counter borrows the next millisecond, never wraps */
    uint64_t full = ((uint64_t)1000 << 16) | 0xFFFF;
    assert_int_equal(fv__hlc_tick(full, 1000), (uint64_t)1001 << 16);
    /* a received time moves the clock past it... */
    uint64_t last = (uint64_t)1000 << 16;
    assert_int_equal(fv__hlc_merge(&last, (uint64_t)5000 << 16, 1000, 10000), 0);
    assert_int_equal(last, (uint64_t)5000 << 16);
    assert_true(fv__hlc_tick(last, 1000) > ((uint64_t)5000 << 16));
    /* ...but one beyond the drift bound is refused and not adopted */
    assert_int_equal(fv__hlc_merge(&last, (uint64_t)20000 << 16, 1000, 10000), -1);
    assert_int_equal(last, (uint64_t)5000 << 16);
    /* an older one leaves it alone */
    assert_int_equal(fv__hlc_merge(&last, (uint64_t)10 << 16, 1000, 10000), 0);
    assert_int_equal(last, (uint64_t)5000 << 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_any_order),
        cmocka_unit_test(test_conflict_verdict_symmetric),
        cmocka_unit_test(test_conflict_rule),
        cmocka_unit_test(test_hlc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
